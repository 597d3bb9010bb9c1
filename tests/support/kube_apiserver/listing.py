"""LIST: selectors, resourceVersion semantics, limit/continue, and 410 for compacted revisions."""
import base64
import copy
import json

import selection as sel
from errors import bad_request, gone, too_large

CONTINUE_TOO_OLD = ("The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use the "
                    "continue token in this response to retrieve the remainder of the results. "
                    "Continuing with the provided token results in an inconsistent list - objects "
                    "that were created, modified, or deleted between the time the first chunk was "
                    "returned and now may show up in the list.")


def _param(query, name):
    return query.get(name, [""])[0]


def matcher(t, query):
    labels = sel.parse_labels(_param(query, "labelSelector"))
    fields = sel.parse_fields(_param(query, "fieldSelector"), t.rt.field_selectors)
    return lambda o: labels(o["metadata"].get("labels")) and fields(o)


def _at_revision(store, key, rv):
    """The objects as they were at rv, replayed from a history that reaches back to the start."""
    if rv < store.compacted or store.compacted > 0:
        raise gone("too old resource version: %d (%d)" % (rv, store.compacted))
    state = {}
    for hrv, hkey, event, obj in store.history:
        if hrv > rv:
            break
        if hkey != key:
            continue
        oid = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if event == "DELETED":
            state.pop(oid, None)
        else:
            state[oid] = obj
    return [state[k] for k in sorted(state)]


def _snapshot(store, t, query):
    rv_text, match = _param(query, "resourceVersion"), _param(query, "resourceVersionMatch")
    if rv_text in ("", "0"):
        if match == "Exact":
            raise bad_request("resourceVersionMatch: Forbidden: resourceVersionMatch \"Exact\" "
                              "is forbidden for resourceVersion \"0\"")
        return store.list(t.rt.key), store.rv
    try:
        rv = int(rv_text)
    except ValueError:
        raise bad_request('invalid resourceVersion "%s"' % rv_text)
    if rv > store.rv:
        raise too_large(rv, store.rv)
    if match == "Exact":
        return _at_revision(store, t.rt.key, rv), rv
    return store.list(t.rt.key), store.rv


def _decode_continue(token, store):
    try:
        c = json.loads(base64.b64decode(token).decode())
        rv, start = int(c["rv"]), c["start"]
    except (ValueError, KeyError, TypeError):
        raise bad_request("continue key is not valid")
    if rv < store.compacted:
        raise gone(CONTINUE_TOO_OLD)
    return rv, start


def list_objects(store, t, query):
    """(items, list metadata) for a LIST; the caller holds the store lock."""
    cont = _param(query, "continue")
    if cont:
        rv, start = _decode_continue(cont, store)
        objs = store.list(t.rt.key)
    else:
        objs, rv = _snapshot(store, t, query)
        start = None
    match = matcher(t, query)
    items = [copy.deepcopy(o) for o in objs
             if (t.ns is None or o["metadata"].get("namespace") == t.ns) and match(o)]
    if start is not None:
        items = [o for o in items if _oid(o) > start]
    meta = {"resourceVersion": str(rv)}
    limit = _param(query, "limit")
    if limit and limit != "0" and len(items) > int(limit):
        remaining = len(items) - int(limit)
        items = items[: int(limit)]
        token = json.dumps({"rv": rv, "start": _oid(items[-1])})
        meta["continue"] = base64.b64encode(token.encode()).decode()
        meta["remainingItemCount"] = remaining
    return items, meta


def _oid(o):
    return o["metadata"].get("namespace", "") + "/" + o["metadata"]["name"]
