"""Create, update, patch, apply and delete with the API server's rules: server-owned metadata,
optimistic concurrency on metadata.resourceVersion, the status subresource's isolation,
generation on spec changes, no-op writes that change nothing, finalizers, and dryRun."""
import copy
import uuid

import apply
import metadata as md
import schema
from errors import (ApiError, already_exists, bad_request, conflict, invalid, not_found,
                    unsupported_media)
from patches import json_patch, merge_patch, object_fields, strip_directives

IMMUTABLE_META = ("name", "namespace", "uid", "creationTimestamp", "generation",
                  "deletionTimestamp", "deletionGracePeriodSeconds")


class Request:
    """What an object operation needs from the HTTP request."""

    def __init__(self, rt, ns, name, sub, query, manager, dry_run, manager_explicit=True):
        self.rt, self.ns, self.name, self.sub = rt, ns, name, sub
        self.query, self.manager, self.dry_run = query, manager, dry_run
        self.manager_explicit = manager_explicit
        self.warnings = []  # Warning headers for the response


def check_type(rt, obj):
    if not isinstance(obj, dict):
        raise bad_request("the body of the request must be a JSON object")
    if obj.get("apiVersion") not in (None, rt.api_version):
        raise bad_request("the API version in the data (%s) does not match the expected API "
                          "version (%s)" % (obj.get("apiVersion"), rt.api_version))
    if obj.get("kind") not in (None, rt.kind):
        raise bad_request("the kind in the data (%s) does not match the expected kind (%s)"
                          % (obj.get("kind"), rt.kind))
    if not isinstance(obj.setdefault("metadata", {}), dict):
        raise bad_request("metadata must be an object")
    obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind


def check_namespace(req, obj):
    meta = obj["metadata"]
    if not req.rt.namespaced:
        meta.pop("namespace", None)
        return
    if meta.get("namespace") and meta["namespace"] != req.ns:
        raise bad_request("the namespace of the provided object does not match the namespace "
                          "sent on the request")
    meta["namespace"] = req.ns


class Objects:
    def __init__(self, registry, store):
        self.registry, self.store = registry, store
        self.on_prepare = []  # callbacks (rt, obj) before an object is stored; may raise
        self.on_commit = []  # callbacks (rt, event, obj) run under the store lock

    def _commit(self, req, name, obj, event):
        if req.dry_run:
            return obj
        recorded = self.store.commit(req.rt.key, req.ns or "", name, obj, event)
        for cb in self.on_commit:
            cb(req.rt, event, recorded)
        return obj if obj is not None else recorded

    def _namespace_exists(self, ns):
        nsrt = self.registry.lookup("", "v1", "namespaces")
        return nsrt is None or self.store.get(nsrt.key, "", ns) is not None

    def create(self, req, body, operation="Update"):
        rt = req.rt
        obj = copy.deepcopy(body)
        check_type(rt, obj)
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = md.generate_name(meta["generateName"])
        md.validate_name(rt, meta.get("name"))
        check_namespace(req, obj)
        if rt.namespaced and not self._namespace_exists(req.ns):
            raise not_found(self.registry.lookup("", "v1", "namespaces"), req.ns)
        if self.store.get(rt.key, req.ns or "", meta["name"]) is not None:
            raise already_exists(rt, meta["name"])
        if rt.status_subresource:
            obj.pop("status", None)
        obj = merge_patch(rt.defaults, obj) if rt.defaults else obj
        meta = obj["metadata"]
        for k in ("deletionTimestamp", "managedFields", "selfLink"):
            meta.pop(k, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = md.now()
        if rt.generation:
            meta["generation"] = 1
        self._normalize(obj)
        self._apply_schema(req, obj)
        for cb in self.on_prepare:
            cb(rt, obj)
        if operation == "Apply":
            fields = object_fields(obj, rt.status_subresource)
            md.write_managers(obj, md.own([], req.manager, "Apply", "", rt.api_version, fields))
        else:
            md.record_update(rt, None, obj, req.manager, "")
        return self._commit(req, meta["name"], obj, "ADDED")

    @staticmethod
    def _normalize(obj):
        """Empty metadata maps and lists are omitted, as ObjectMeta's JSON form omits them."""
        meta = obj["metadata"]
        for k in ("labels", "annotations", "finalizers", "ownerReferences"):
            if k in meta and not meta[k]:
                del meta[k]

    @staticmethod
    def _apply_schema(req, obj):
        """Prunes and validates obj against the CRD schema, if its kind came with one."""
        if not req.rt.schema:
            return
        unknown, errors = schema.check(req.rt.schema, obj)
        mode = req.query.get("fieldValidation", ["Warn"])[0]
        if unknown and mode == "Strict":
            raise bad_request("strict decoding error: " +
                              ", ".join('unknown field "%s"' % u for u in unknown))
        if mode != "Ignore":
            req.warnings += ['unknown field "%s"' % u for u in unknown]
        if errors:
            raise invalid(req.rt, obj["metadata"].get("name", ""), errors)

    def current(self, req):
        old = self.store.get(req.rt.key, req.ns or "", req.name)
        if old is None:
            raise not_found(req.rt, req.name)
        return old

    def update(self, req, body):
        rt = req.rt
        new = copy.deepcopy(body)
        check_type(rt, new)
        if new["metadata"].get("name") and new["metadata"]["name"] != req.name:
            raise bad_request("the name of the object (%s) does not match the name on the URL "
                              "(%s)" % (new["metadata"]["name"], req.name))
        old = self.current(req)
        rv = new["metadata"].get("resourceVersion")
        if not rv and not rt.unconditional_update:
            raise invalid(rt, req.name, [("metadata.resourceVersion",
                                          "Invalid value: 0x0: must be specified for an update")])
        return self.finish_update(req, old, new, rv)

    def finish_update(self, req, old, new, rv, managed=None):
        """Applies the update rules to `new` (a full object) and commits it unless a no-op."""
        rt = req.rt
        if rv and rv != old["metadata"].get("resourceVersion"):
            raise conflict(rt, req.name)
        uid = new["metadata"].get("uid")
        if uid and uid != old["metadata"].get("uid"):
            raise conflict(rt, req.name, "Precondition failed: UID in precondition: %s, UID in "
                           "object meta: %s" % (uid, old["metadata"].get("uid")))
        check_namespace(req, new)
        result = self._isolate(req, old, new)
        for k in IMMUTABLE_META:
            if k in old["metadata"]:
                result["metadata"][k] = old["metadata"][k]
            else:
                result["metadata"].pop(k, None)
        self._normalize(result)
        self._apply_schema(req, result)
        for cb in self.on_prepare:
            cb(rt, result)
        if rt.generation and md.spec_changed(rt, old, result):
            result["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        if managed is not None:
            result["metadata"]["managedFields"] = managed
        else:
            md.record_update(rt, old, result, req.manager, req.sub or "")
        if md.strip_for_compare(result) == md.strip_for_compare(old):
            return copy.deepcopy(old)  # nothing changed: no new resourceVersion, no event
        if result["metadata"].get("deletionTimestamp") and not result["metadata"].get("finalizers"):
            return self._commit(req, req.name, None, "DELETED")
        return self._commit(req, req.name, result, "MODIFIED")

    def _isolate(self, req, old, new):
        """A status write changes only status; a main write leaves status alone (when separate)."""
        if req.sub == "status":
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            result["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return result
        result = copy.deepcopy(new)
        if req.rt.status_subresource:
            if "status" in old:
                result["status"] = copy.deepcopy(old["status"])
            else:
                result.pop("status", None)
        return result

    def patch(self, req, content_type, body):
        kinds = ["application/json-patch+json", "application/merge-patch+json"]
        if req.rt.strategic_merge:
            kinds.append("application/strategic-merge-patch+json")
        kinds.append("application/apply-patch+yaml")
        if content_type not in kinds:
            raise unsupported_media(kinds)
        if content_type == "application/apply-patch+yaml":
            return apply.apply(self, req, body)
        old = self.current(req)
        doc = decode_json(body)
        if content_type == "application/json-patch+json":
            new = json_patch(old, doc)
        else:
            if not isinstance(doc, dict):
                raise bad_request("the patch must be a JSON object")
            new = merge_patch(old, strip_directives(doc) if "strategic" in content_type else doc)
        if not isinstance(new, dict):
            raise bad_request("the patched document is not an object")
        new.setdefault("metadata", {})
        check_type(req.rt, new)
        return self.finish_update(req, old, new, new["metadata"].get("resourceVersion")), False

    def delete(self, req, options):
        old = self.current(req)
        pre = (options or {}).get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old["metadata"].get("uid"):
            raise conflict(req.rt, req.name, "Precondition failed: UID in precondition: %s, UID "
                           "in object meta: %s" % (pre["uid"], old["metadata"].get("uid")))
        if pre.get("resourceVersion") and pre["resourceVersion"] != \
                old["metadata"].get("resourceVersion"):
            raise conflict(req.rt, req.name, "Precondition failed: ResourceVersion in "
                           "precondition: %s, ResourceVersion in object meta: %s"
                           % (pre["resourceVersion"], old["metadata"].get("resourceVersion")))
        if old["metadata"].get("finalizers"):
            if old["metadata"].get("deletionTimestamp"):
                return copy.deepcopy(old)
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = md.now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            return self._commit(req, req.name, new, "MODIFIED")
        if req.rt.plural == "namespaces" and req.rt.group == "" and not req.dry_run:
            self._delete_namespace_contents(req)
        return self._commit(req, req.name, None, "DELETED")

    def _delete_namespace_contents(self, req):
        for rt in self.registry.storage_types().values():
            if not rt.namespaced:
                continue
            for o in list(self.store.list(rt.key, req.name)):
                r = Request(rt, req.name, o["metadata"]["name"], "", {}, req.manager, False)
                self._commit(r, r.name, None, "DELETED")


def decode_json(body):
    import json
    try:
        return json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request("error decoding JSON body: %s" % e)


__all__ = ["Objects", "Request", "ApiError", "decode_json"]
