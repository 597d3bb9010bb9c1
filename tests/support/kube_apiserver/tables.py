"""meta.k8s.io/v1 Table responses (what `kubectl get` asks for) and the JSONPath subset that
printer columns use: .a.b, [N], [-1:], [?(@.k=="v")]."""
import datetime
import json
import re

_TOKEN = re.compile(r'\.([A-Za-z0-9_-]+)|\[(-?\d+)(:?)\]'
                    r'|\[\?\(@\.([A-Za-z0-9_]+)\s*==\s*"([^"]*)"\)\]')


def jsonpath(obj, path):
    """The values path selects in obj (a list: filters and slices may select several)."""
    cur = [obj]
    pos = 0
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            return []
        pos = m.end()
        name, index, colon, fkey, fval = m.groups()
        nxt = []
        for c in cur:
            if name is not None and isinstance(c, dict) and name in c:
                nxt.append(c[name])
            elif index is not None and isinstance(c, list):
                i = int(index)
                if colon:
                    nxt.extend(c[i:])
                elif -len(c) <= i < len(c):
                    nxt.append(c[i])
            elif fkey is not None and isinstance(c, list):
                nxt.extend(e for e in c if isinstance(e, dict) and str(e.get(fkey)) == fval)
        cur = nxt
    return cur


def parse_time(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


def human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    if seconds < -1:
        return "<invalid>"
    s = max(int(seconds), 0)
    if s < 120:
        return "%ds" % s
    m = s // 60
    if m < 10:
        return "%dm%ds" % (m, s % 60) if s % 60 else "%dm" % m
    if m < 180:
        return "%dm" % m
    h = s // 3600
    if h < 8:
        return "%dh%dm" % (h, (s % 3600) // 60) if (s % 3600) // 60 else "%dh" % h
    if h < 48:
        return "%dh" % h
    if h < 24 * 8:
        return "%dd%dh" % (h // 24, h % 24) if h % 24 else "%dd" % (h // 24)
    if h < 24 * 365 * 2:
        return "%dd" % (h // 24)
    return "%dy" % (h // (24 * 365))


def _age(ts):
    if not ts:
        return "<unknown>"
    now = datetime.datetime.now(datetime.timezone.utc)
    return human_duration((now - parse_time(ts)).total_seconds())


AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def columns(rt):
    cols = [{"name": "Name", "type": "string", "format": "name", "priority": 0,
             "description": "Name must be unique within a namespace."}]
    for c in rt.printer_columns or [AGE]:
        cols.append({"name": c["name"], "type": c.get("type", "string"), "format": "",
                     "priority": c.get("priority", 0), "description": c.get("description", "")})
    return cols


def _cell(obj, col):
    vals = jsonpath(obj, col["jsonPath"])
    if not vals:
        return None
    v = vals[0]
    if col.get("type") == "date" and isinstance(v, str):
        try:
            return _age(v)
        except ValueError:
            return v
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return v


def row(rt, obj, include):
    cells = [obj.get("metadata", {}).get("name")]
    cells += [_cell(obj, c) for c in rt.printer_columns or [AGE]]
    r = {"cells": cells}
    if include == "Object":
        r["object"] = obj
    elif include != "None":
        r["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                       "metadata": obj.get("metadata", {})}
    return r


def table(rt, objs, include, list_meta):
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": columns(rt), "rows": [row(rt, o, include) for o in objs]}
