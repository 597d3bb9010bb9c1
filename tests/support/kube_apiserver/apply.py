"""Server-side apply, approximated: the applied configuration's fields are merged into the
object and owned by fieldManager (operation Apply); a field another manager owns with a
different value is a 409 conflict unless force=true; fields this manager applied before and
no longer applies are removed when nobody else owns them. Lists are atomic."""
import copy
import json

import metadata as md
from errors import ApiError, bad_request
from patches import delete_path, get_path, merge_patch, object_fields, overlaps

try:
    import yaml  # Debian's python3-yaml; without it the body must be JSON (YAML's subset)
except ImportError:
    yaml = None


def _decode(body):
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    try:
        return json.loads(text)
    except ValueError:
        if yaml is None:
            raise bad_request("error decoding YAML: only JSON is accepted without python3-yaml")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise bad_request("error decoding YAML: %s" % e)


def _conflicts(entries, manager, sub, config, current, fields):
    found = []
    for m, op, s, api_version, _, owned in entries:
        if (m, op, s) == (manager, "Apply", sub):
            continue
        for f in fields:
            if any(overlaps(f, o) for o in owned) and get_path(config, f) != get_path(current, f):
                found.append((m, api_version, "." + ".".join(f)))
    return found


def _conflict_error(found):
    managers = sorted({m for m, _, _ in found})
    if len(found) == 1:
        m, api_version, field = found[0]
        msg = 'Apply failed with 1 conflict: conflict with "%s" using %s: %s' % (m, api_version,
                                                                                 field)
    else:
        parts = ['conflicts with "%s":\n' % m + "".join(
            "- %s\n" % f for mm, _, f in found if mm == m) for m in managers]
        msg = "Apply failed with %d conflicts: %s" % (len(found), "".join(parts).rstrip("\n"))
    causes = [{"reason": "FieldManagerConflict", "message": 'conflict with "%s"' % m,
               "field": f} for m, _, f in found]
    return ApiError(409, "Conflict", msg, {"causes": causes})


def _check(req, config):
    rt = req.rt
    if not req.manager_explicit:
        raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                       'Required value: is required for apply patch', {})
    if not isinstance(config, dict):
        raise bad_request("the applied configuration must be an object")
    if config.get("apiVersion") != rt.api_version or config.get("kind") != rt.kind:
        raise bad_request("the applied configuration's apiVersion/kind (%s, %s) must be %s, %s"
                          % (config.get("apiVersion"), config.get("kind"), rt.api_version,
                             rt.kind))
    meta = config.setdefault("metadata", {})
    if meta.get("name") and meta["name"] != req.name:
        raise bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                          % (meta["name"], req.name))


def apply(objects, req, body):
    config = _decode(body)
    _check(req, config)
    status_separate = req.rt.status_subresource and req.sub != "status"
    old = objects.store.get(req.rt.key, req.ns or "", req.name)
    if old is None:
        if req.sub:
            raise objects_not_found(req)
        created = objects.create(req, _for_create(config, status_separate), operation="Apply")
        return created, True
    fields = object_fields(config, status_separate)
    if req.sub == "status":
        fields = {f for f in fields if f[0] == "status"}
    entries = md.read_managers(old)
    found = _conflicts(entries, req.manager, req.sub or "", config, old, fields)
    if found and req.query.get("force", [""])[0] != "true":
        raise _conflict_error(found)
    new = copy.deepcopy(old)
    mine = [e for e in entries if (e[0], e[1], e[2]) == (req.manager, "Apply", req.sub or "")]
    for gone in (mine[0][5] - fields) if mine else ():
        others = [e for e in entries if e is not mine[0]]
        if not any(overlaps(gone, o) for e in others for o in e[5]):
            delete_path(new, gone)
    applied = {k: v for k, v in config.items() if k not in ("apiVersion", "kind")}
    new = merge_patch(new, _nulls_kept(applied))
    # force takes the conflicting fields; shared (equal) fields stay co-owned
    steal = {tuple(f[2][1:].split(".")) for f in found}
    for e in entries:
        e[5] = {p for p in e[5] if not any(overlaps(p, s) for s in steal)}
    md.own(entries, req.manager, "Apply", req.sub or "", req.rt.api_version, fields, steal=False)
    md.write_managers(new, entries)
    managed = new["metadata"].get("managedFields", [])
    rv = config["metadata"].get("resourceVersion")
    return objects.finish_update(req, old, new, rv, managed=managed), False


def _nulls_kept(d):
    """Apply sets what it is given; a merge patch would read a null as `remove`."""
    return {k: (_nulls_kept(v) if isinstance(v, dict) else v) for k, v in d.items()
            if v is not None}


def _for_create(config, status_separate):
    c = copy.deepcopy(config)
    c["metadata"].pop("resourceVersion", None)
    if status_separate:
        c.pop("status", None)
    return c


def objects_not_found(req):
    from errors import not_found
    return not_found(req.rt, req.name)
