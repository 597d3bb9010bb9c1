"""The OpenAPI v3 index and per-group-version documents, only as far as kubectl reads them: its
create/apply validation asks whether a PATCH path of the kind accepts `fieldValidation`.
No schemas: objects are not validated against any (see README)."""
import hashlib
import json

QUERY_PARAMS = ["dryRun", "fieldManager", "fieldValidation", "force", "pretty"]


def _gv_path(group, version):
    return "api/" + version if not group else "apis/%s/%s" % (group, version)


def index(registry):
    paths = {}
    for group, versions in registry.group_versions.items():
        for v in versions:
            doc = json.dumps(group_version(registry, group, v), sort_keys=True).encode()
            digest = hashlib.sha512(doc).hexdigest()[:32].upper()
            paths[_gv_path(group, v)] = {
                "serverRelativeURL": "/openapi/v3/%s?hash=%s" % (_gv_path(group, v), digest)}
    return {"paths": paths}


def _operations(rt):
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    params = [{"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
              for p in QUERY_PARAMS]
    op = lambda verb: {"operationId": verb + rt.kind, "x-kubernetes-action": verb,
                       "x-kubernetes-group-version-kind": gvk, "parameters": params,
                       "responses": {"200": {"description": "OK"}}}
    return {"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete"),
            "parameters": params}


def group_version(registry, group, version):
    paths = {}
    for (g, v, _), rt in sorted(registry.types.items()):
        if (g, v) != (group, version):
            continue
        base = "/" + _gv_path(g, v)
        if rt.namespaced:
            base += "/namespaces/{namespace}"
        paths["%s/%s/{name}" % (base, rt.plural)] = _operations(rt)
        if rt.status_subresource:
            paths["%s/%s/{name}/status" % (base, rt.plural)] = _operations(rt)
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths, "components": {"schemas": {}}}
