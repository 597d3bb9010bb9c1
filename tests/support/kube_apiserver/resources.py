"""The registered resource types (from JSON config and from CRD objects) and discovery documents.

Nothing here knows a particular resource: every kind, group and scope comes from configuration.
"""
import json

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUB_VERBS = ["get", "patch", "update"]


class ResourceType:
    def __init__(self, spec):
        self.group = spec.get("group", "")
        self.version = spec["version"]
        self.kind = spec["kind"]
        self.plural = spec["plural"]
        self.singular = spec.get("singular", self.kind.lower())
        self.short_names = spec.get("shortNames", [])
        self.categories = spec.get("categories", [])
        self.namespaced = bool(spec.get("namespaced", False))
        subs = spec.get("subresources", {})
        self.status_subresource = bool(subs.get("status", False)) if isinstance(subs, dict) \
            else "status" in subs
        core = self.group == ""
        # Built-in kinds accept strategic merge (approximated as merge patch) and unconditional
        # PUT; custom resources refuse the first (415) and need metadata.resourceVersion on PUT.
        self.strategic_merge = bool(spec.get("strategicMerge", core))
        self.unconditional_update = bool(spec.get("allowUnconditionalUpdate", core))
        self.generation = bool(spec.get("generation", not core))
        self.printer_columns = spec.get("printerColumns", [])
        self.defaults = spec.get("defaults", {})
        self.from_crd = spec.get("fromCRD")
        self.schema = spec.get("schema")  # a CRD version's openAPIV3Schema
        # dotted paths a fieldSelector may name besides metadata.name/namespace
        self.field_selectors = tuple(spec.get("fieldSelectors", []))

    @property
    def api_version(self):
        return self.version if not self.group else self.group + "/" + self.version

    @property
    def key(self):
        return (self.group, self.plural)

    def describe(self):
        r = {"name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
             "kind": self.kind, "verbs": VERBS}
        if self.short_names:
            r["shortNames"] = self.short_names
        if self.categories:
            r["categories"] = self.categories
        out = [r]
        if self.status_subresource:
            out.append({"name": self.plural + "/status", "singularName": "",
                        "namespaced": self.namespaced, "kind": self.kind, "verbs": SUB_VERBS})
        return out


class Registry:
    """Resource types by (group, version, plural); groups keep their configured version order."""

    def __init__(self):
        self.types = {}      # (group, version, plural) -> ResourceType
        self.group_versions = {}  # group -> [versions], first is preferred
        self.shadowed = {}  # resource-file kinds a CRD replaced, back when it goes

    # Copy-on-write: request threads read the maps without the store lock.
    def add(self, rt):
        types = dict(self.types)
        k = (rt.group, rt.version, rt.plural)
        if k in types and types[k].from_crd is None and rt.from_crd is not None:
            self.shadowed[k] = types[k]  # a CRD for a kind from a resource file wins...
        types[k] = rt
        gvs = {g: list(v) for g, v in self.group_versions.items()}
        if rt.version not in gvs.setdefault(rt.group, []):
            gvs[rt.group].append(rt.version)
        self.types, self.group_versions = types, gvs

    def remove_crd(self, crd_name):
        types = {k: rt for k, rt in self.types.items() if rt.from_crd != crd_name}
        for k in [k for k in self.shadowed if k not in types]:
            types[k] = self.shadowed.pop(k)  # ...until it is deleted
        gvs = {}
        for g, versions in self.group_versions.items():
            left = [v for v in versions if any(k[0] == g and k[1] == v for k in types)]
            if left:
                gvs[g] = left
        self.types, self.group_versions = types, gvs

    def load_file(self, path):
        """Registers the file's resources; returns its initial objects (for a fresh store)."""
        with open(path) as f:
            doc = json.load(f)
        for spec in doc.get("resources", []):
            self.add(ResourceType(spec))
        return doc.get("objects", [])

    def for_object(self, obj):
        group, _, version = obj.get("apiVersion", "").rpartition("/")
        for rt in self.by_kind(group, obj.get("kind")):
            if rt.version == version:
                return rt
        return None

    def lookup(self, group, version, plural):
        return self.types.get((group, version, plural))

    def by_kind(self, group, kind):
        return [rt for rt in self.types.values() if rt.group == group and rt.kind == kind]

    def storage_types(self):
        """One ResourceType per (group, plural): the preferred version stores the objects."""
        seen = {}
        for rt in self.types.values():
            if rt.key not in seen or self._rank(rt) < self._rank(seen[rt.key]):
                seen[rt.key] = rt
        return seen

    def _rank(self, rt):
        return self.group_versions[rt.group].index(rt.version)

    # --- discovery documents ---
    def api_versions(self, server_address):
        return {"kind": "APIVersions", "versions": self.group_versions.get("", ["v1"]),
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": server_address}]}

    def api_group(self, group):
        versions = self.group_versions.get(group)
        if not versions or not group:
            return None
        gvs = [{"groupVersion": group + "/" + v, "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs,
                "preferredVersion": gvs[0]}

    def api_group_list(self):
        groups = [self.api_group(g) for g in sorted(self.group_versions) if g]
        for g in groups:
            del g["kind"], g["apiVersion"]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def resource_list(self, group, version):
        rts = [rt for (g, v, _), rt in sorted(self.types.items()) if g == group and v == version]
        if not rts:
            return None
        resources = [r for rt in rts for r in rt.describe()]
        gv = version if not group else group + "/" + version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": resources}


def types_from_crd(crd):
    """ResourceTypes for an apiextensions.k8s.io/v1 CustomResourceDefinition's served versions."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    out = []
    for ver in spec.get("versions", []):
        if not ver.get("served", True):
            continue
        columns = [{"name": c.get("name"), "type": c.get("type", "string"),
                    "jsonPath": c.get("jsonPath"), "priority": c.get("priority", 0),
                    "description": c.get("description", "")}
                   for c in ver.get("additionalPrinterColumns", [])]
        out.append(ResourceType({
            "group": spec.get("group"), "version": ver.get("name"), "kind": names.get("kind"),
            "plural": names.get("plural"), "singular": names.get("singular"),
            "shortNames": names.get("shortNames", []), "categories": names.get("categories", []),
            "namespaced": spec.get("scope") == "Namespaced",
            "subresources": {"status": "status" in (ver.get("subresources") or {})},
            "printerColumns": columns, "fromCRD": crd["metadata"]["name"],
            "schema": (ver.get("schema") or {}).get("openAPIV3Schema"),
            "fieldSelectors": [f.get("jsonPath", "").lstrip(".")
                               for f in ver.get("selectableFields", [])]}))
    return out
