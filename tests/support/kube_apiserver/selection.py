"""labelSelector and fieldSelector as the API server parses them (the common subset)."""
import re

from errors import bad_request

_SET = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split_terms(text):
    """Splits on commas outside parentheses."""
    terms, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        terms.append(cur)
    return terms


def parse_labels(text):
    """A predicate over a labels dict; raises 400 BadRequest on a malformed selector."""
    preds = []
    for term in _split_terms(text or ""):
        m = _EQ.match(term)
        if m:
            key, op, val = m.groups()
            if op == "!=":
                preds.append(lambda l, k=key, v=val: l.get(k) != v)
            else:
                preds.append(lambda l, k=key, v=val: l.get(k) == v)
            continue
        m = _SET.match(term)
        if not m:
            raise bad_request('unable to parse requirement: invalid label selector "%s"' % text)
        neg, key, op, values = m.groups()
        vals = {v.strip() for v in (values or "").split(",") if v.strip()}
        if op == "in":
            preds.append(lambda l, k=key, vs=vals: l.get(k) in vs)
        elif op == "notin":
            preds.append(lambda l, k=key, vs=vals: l.get(k) not in vs)
        elif neg:
            preds.append(lambda l, k=key: k not in l)
        else:
            preds.append(lambda l, k=key: k in l)
    return lambda labels: all(p(labels or {}) for p in preds)


def _field(obj, path):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return "" if cur is None else str(cur)


SUPPORTED_FIELDS = ("metadata.name", "metadata.namespace")


def parse_fields(text, extra=()):
    """metadata.name and metadata.namespace (plus the resource's own selectable `extra` fields,
    e.g. an Event's involvedObject.name) with =, ==, !=."""
    preds = []
    for term in _split_terms(text or ""):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise bad_request('invalid field selector "%s"' % text)
        path, op, val = m.groups()
        if path not in SUPPORTED_FIELDS and path not in extra:
            raise bad_request('"%s" is not a known field selector: only "%s"'
                              % (path, '", "'.join(SUPPORTED_FIELDS + tuple(extra))))
        if op == "!=":
            preds.append(lambda o, p=path, v=val: _field(o, p) != v)
        else:
            preds.append(lambda o, p=path, v=val: _field(o, p) == v)
    return lambda obj: all(p(obj) for p in preds)
