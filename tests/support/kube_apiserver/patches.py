"""JSON merge patch (RFC 7386), JSON patch (RFC 6902), and field ownership for server-side apply.

Field sets are sets of paths (tuples of keys) to leaves; lists are atomic leaves, as they are
for a custom resource whose schema declares no list type.
"""
import copy

from errors import ApiError, bad_request


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strip_directives(patch):
    """Strategic-merge directives ($patch, $retainKeys, ...) have no merge-patch meaning."""
    if isinstance(patch, dict):
        return {k: strip_directives(v) for k, v in patch.items() if not k.startswith("$")}
    return patch


def _unprocessable(msg):
    return ApiError(422, "Invalid", msg, {})


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise _unprocessable('invalid JSON pointer "%s"' % path)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, parts):
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise _unprocessable("doc is missing path: /" + "/".join(parts))
    return cur


def _add(doc, parts, value):
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        idx = len(parent) if last == "-" else int(last) if last.isdigit() else -1
        if not 0 <= idx <= len(parent):
            raise _unprocessable("add operation does not apply: index out of bounds")
        parent.insert(idx, value)
    else:
        raise _unprocessable("add operation does not apply: doc is missing path")
    return doc


def _remove(doc, parts):
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise _unprocessable("remove operation does not apply: doc is missing path: /"
                         + "/".join(parts))


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise bad_request("json patch must be an array of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind = op.get("op") if isinstance(op, dict) else None
        path = _pointer(op.get("path", "")) if kind else None
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            src = _pointer(op.get("from", ""))
            val = _remove(doc, src) if kind == "move" else copy.deepcopy(_walk(doc, src))
            doc = _add(doc, path, val)
        elif kind == "test":
            if _walk(doc, path) != op.get("value"):
                raise _unprocessable("testing value %s failed" % op.get("path"))
        else:
            raise bad_request("unexpected kind of json patch operation: %r" % kind)
    return doc


# --- field sets ---

def leaves(obj, prefix=()):
    out = set()
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            out |= leaves(v, prefix + (k,))
    elif prefix:
        out.add(prefix)
    return out


def object_fields(obj, status_separate):
    """The fields a manager can own: everything but identity and server-set metadata."""
    fields = set()
    for path in leaves(obj):
        if path[0] in ("apiVersion", "kind"):
            continue
        if path[0] == "metadata" and (len(path) < 3 or path[1] not in ("labels", "annotations",
                                                                         "finalizers")):
            continue
        if status_separate and path[0] == "status":
            continue
        fields.add(path)
    return fields


def get_path(obj, path):
    cur = obj
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def delete_path(obj, path):
    parents = []
    cur = obj
    for p in path[:-1]:
        if not isinstance(cur, dict) or p not in cur:
            return
        parents.append((cur, p))
        cur = cur[p]
    if isinstance(cur, dict):
        cur.pop(path[-1], None)
    for parent, key in reversed(parents):  # a map the removal emptied goes too
        if parent[key] == {}:
            del parent[key]


def overlaps(a, b):
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def changed_fields(old, new, status_separate):
    """Leaf paths whose value differs between old and new (added, changed or removed)."""
    o, n = object_fields(old or {}, status_separate), object_fields(new, status_separate)
    return {p for p in o | n if get_path(old or {}, p) != get_path(new, p)}


def to_fields_v1(paths):
    root = {}
    for path in sorted(paths):
        cur = root
        for p in path:
            cur = cur.setdefault("f:" + p, {})
    return root


def from_fields_v1(fields, prefix=()):
    out = set()
    for k, v in (fields or {}).items():
        if not k.startswith("f:"):
            continue
        p = prefix + (k[2:],)
        sub = from_fields_v1(v, p)
        out |= sub if sub else {p}
    return out
