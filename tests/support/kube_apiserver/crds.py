"""CustomResourceDefinitions created through the API register their resources at once (and
report Established), as the apiextensions server does; deleting one removes them."""
import metadata as md
from errors import invalid
from resources import types_from_crd

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")


def _validate(rt, crd):
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    name = crd["metadata"].get("name", "")
    causes = []
    for field, value in (("spec.group", spec.get("group")), ("spec.names.plural",
                         names.get("plural")), ("spec.names.kind", names.get("kind"))):
        if not value:
            causes.append((field, "Required value"))
    if spec.get("scope") not in ("Cluster", "Namespaced"):
        causes.append(("spec.scope", 'Unsupported value: "%s": supported values: "Cluster", '
                       '"Namespaced"' % spec.get("scope")))
    if not spec.get("versions"):
        causes.append(("spec.versions", "Invalid value: null: must have exactly one version "
                       "marked as storage version"))
    if not causes and name != names["plural"] + "." + spec["group"]:
        causes.append(("metadata.name", 'Invalid value: "%s": must be spec.names.plural+"."+'
                       'spec.group' % name))
    if causes:
        raise invalid(rt, name, causes)


def prepare(rt, crd):
    """Before a CRD is stored: checked, and its status says the names are accepted."""
    if rt.key != CRD_KEY:
        return
    _validate(rt, crd)
    spec = crd["spec"]
    status = crd.setdefault("status", {})
    status["acceptedNames"] = spec["names"]
    status["storedVersions"] = [v["name"] for v in spec["versions"] if v.get("storage")]
    if not status.get("conditions"):
        now = md.now()
        status["conditions"] = [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now}]


def register(registry, store, rt, event, crd):
    """After a CRD is stored or deleted (the store lock held)."""
    if rt.key != CRD_KEY:
        return
    name = crd["metadata"]["name"]
    gone = {t.key for t in registry.types.values() if t.from_crd == name}
    registry.remove_crd(name)
    if event != "DELETED":
        for t in types_from_crd(crd):
            registry.add(t)
    kept = set() if event == "DELETED" else {t.key for t in registry.types.values()}
    for key in gone - kept:  # a deleted CRD takes its objects along
        store.objects.pop(key, None)


def load(registry, store):
    for crd in store.list(CRD_KEY):
        for t in types_from_crd(crd):
            registry.add(t)
