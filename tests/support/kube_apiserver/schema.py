"""A CRD's openAPIV3Schema applied as the apiextensions server does, for the common keywords:
unknown fields pruned (reported as warnings, or 400 with fieldValidation=Strict), then type,
enum, required, pattern, min/max length/items, minimum/maximum, nullable,
x-kubernetes-int-or-string and x-kubernetes-preserve-unknown-fields checked (422 Invalid).
CEL rules (x-kubernetes-validations), formats, defaults and list types are not evaluated."""
import json
import re

TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _show(v):
    return json.dumps(v) if isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def _type_ok(t, v):
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, TYPES.get(t, object))


def _type_name(v):
    for name, py in (("boolean", bool), ("integer", int), ("number", float), ("string", str),
                     ("array", list), ("object", dict)):
        if isinstance(v, py):
            return name
    return "null"


def prune(schema, value, path, unknown):
    """Drops fields the schema does not declare; their paths go to `unknown`."""
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict) and schema.get("type", "object") == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
            for k in list(value):
                if k not in props and not extra:
                    unknown.append(path + [k])
                    del value[k]
        for k, v in value.items():
            sub = (props or {}).get(k, extra if isinstance(extra, dict) else None)
            prune(sub, v, path + [k], unknown)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            prune(schema["items"], v, path + [str(i)], unknown)


def _scalar_errors(s, v, field):
    out = []
    if "enum" in s and v not in s["enum"]:
        out.append((field, "Unsupported value: %s: supported values: %s"
                    % (_show(v), ", ".join(_show(e) for e in s["enum"]))))
    if isinstance(v, str):
        if "pattern" in s and not re.search(s["pattern"], v):
            out.append((field, "Invalid value: %s: %s in body should match '%s'"
                        % (_show(v), field, s["pattern"])))
        if "minLength" in s and len(v) < s["minLength"]:
            out.append((field, "Invalid value: %s: %s in body should be at least %d chars long"
                        % (_show(v), field, s["minLength"])))
        if "maxLength" in s and len(v) > s["maxLength"]:
            out.append((field, "Too long: may not be more than %d bytes" % s["maxLength"]))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if "minimum" in s and v < s["minimum"]:
            out.append((field, "Invalid value: %s: %s in body should be greater than or equal "
                        "to %s" % (_show(v), field, _show(s["minimum"]))))
        if "maximum" in s and v > s["maximum"]:
            out.append((field, "Invalid value: %s: %s in body should be less than or equal to %s"
                        % (_show(v), field, _show(s["maximum"]))))
    return out


def validate(s, v, field):
    """[(field, message)] for value v at `field` (dotted) against schema s."""
    if not isinstance(s, dict):
        return []
    if v is None:
        return [] if s.get("nullable") else [(field, "Invalid value: \"null\": %s in body must "
                                              "be of type %s: \"null\"" % (field, s.get("type")))]
    t = s.get("type")
    if s.get("x-kubernetes-int-or-string"):
        if not (_type_ok("integer", v) or isinstance(v, str)):
            return [(field, "Invalid value: %s: %s in body must be of type integer,string"
                     % (_show(v), field))]
    elif t and not _type_ok(t, v):
        return [(field, "Invalid value: \"%s\": %s in body must be of type %s: \"%s\""
                 % (_type_name(v), field, t, _type_name(v)))]
    out = _scalar_errors(s, v, field)
    if isinstance(v, dict):
        for r in s.get("required", []):
            if r not in v:
                out.append((_join(field, r), "Required value"))
        props, extra = s.get("properties") or {}, s.get("additionalProperties")
        for k, sub in v.items():
            out += validate(props.get(k, extra if isinstance(extra, dict) else None), sub,
                            _join(field, k))
    if isinstance(v, list):
        if "minItems" in s and len(v) < s["minItems"]:
            out.append((field, "Invalid value: %d: %s in body should have at least %d items"
                        % (len(v), field, s["minItems"])))
        if "maxItems" in s and len(v) > s["maxItems"]:
            out.append((field, "Too many: %d: must have at most %d items"
                        % (len(v), s["maxItems"])))
        for i, sub in enumerate(v):
            out += validate(s.get("items"), sub, "%s[%d]" % (field, i))
    return out


def _join(field, key):
    return key if not field else field + "." + key


def check(schema, obj):
    """Prunes obj in place; returns (unknown field paths, validation errors)."""
    unknown = []
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    root = dict(schema)
    props = dict(root.get("properties") or {})
    for k in ("apiVersion", "kind", "metadata"):
        props.pop(k, None)
    root["properties"] = props
    root["required"] = [r for r in root.get("required", []) if r not in props and r not in
                        ("apiVersion", "kind", "metadata")] + [r for r in root.get("required", [])
                                                               if r in props]
    prune(root, body, [], unknown)
    for k in list(obj):
        if k not in ("apiVersion", "kind", "metadata") and k not in body:
            del obj[k]
    errors = validate(root, body, "")
    return [".".join(p) for p in unknown], errors
