"""Server-owned metadata: uid, timestamps, generation, names, and managedFields bookkeeping."""
import copy
import datetime
import random
import re

from errors import invalid
from patches import changed_fields, from_fields_v1, object_fields, overlaps, to_fields_v1

SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
             "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
             "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_name(rt, name):
    if not name:
        raise invalid(rt, "", [("metadata.name",
                                "Required value: name or generateName is required")])
    label = rt.plural == "namespaces"
    ok = LABEL.match(name) and len(name) <= 63 if label else \
        SUBDOMAIN.match(name) and len(name) <= 253
    if not ok:
        raise invalid(rt, name, [("metadata.name", 'Invalid value: "%s": %s'
                                  % (name, LABEL_MSG if label else SUBDOMAIN_MSG))])


def generate_name(prefix):
    return prefix + "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))


def strip_for_compare(obj):
    o = copy.deepcopy(obj)
    o.get("metadata", {}).pop("managedFields", None)
    o.get("metadata", {}).pop("resourceVersion", None)
    return o


def spec_changed(rt, old, new):
    """Whether generation moves: anything but metadata (and status with a status subresource)."""
    skip = {"metadata", "status"} if rt.status_subresource else {"metadata"}
    return ({k: v for k, v in old.items() if k not in skip}
            != {k: v for k, v in new.items() if k not in skip})


# --- managedFields ---

def read_managers(obj):
    """[(manager, operation, subresource, apiVersion, time, set_of_paths)]"""
    out = []
    for e in obj.get("metadata", {}).get("managedFields") or []:
        out.append([e.get("manager", ""), e.get("operation", "Update"), e.get("subresource", ""),
                    e.get("apiVersion", ""), e.get("time", ""), from_fields_v1(e.get("fieldsV1"))])
    return out


def write_managers(obj, entries):
    mf = []
    for manager, op, sub, api_version, time, fields in entries:
        if not fields:
            continue
        e = {"manager": manager, "operation": op, "apiVersion": api_version, "time": time,
             "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(fields)}
        if sub:
            e["subresource"] = sub
        mf.append(e)
    if mf:
        obj["metadata"]["managedFields"] = mf
    else:
        obj["metadata"].pop("managedFields", None)


def own(entries, manager, op, sub, api_version, fields, steal=True):
    """Gives `fields` to (manager, op, sub); with steal, removes them from every other entry."""
    if steal:
        for e in entries:
            if (e[0], e[1], e[2]) != (manager, op, sub):
                e[5] = {p for p in e[5] if not any(overlaps(p, f) for f in fields)}
    for e in entries:
        if (e[0], e[1], e[2]) == (manager, op, sub):
            e[5] = (e[5] | fields) if op == "Update" else set(fields)
            e[3], e[4] = api_version, now()
            return entries
    entries.append([manager, op, sub, api_version, now(), set(fields)])
    return entries


def record_update(rt, old, new, manager, sub):
    """managedFields of new after a create/update/patch by manager (operation Update)."""
    entries = read_managers(old or {})
    changed = changed_fields(old, new, status_separate=False)
    present = object_fields(new, status_separate=False)
    gone = changed - present
    for e in entries:  # a removed field has no owner left
        e[5] = {p for p in e[5] if not any(overlaps(p, g) for g in gone)}
    if changed & present:
        own(entries, manager, "Update", sub, rt.api_version, changed & present)
    write_managers(new, entries)
