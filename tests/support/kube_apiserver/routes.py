"""URL paths to resources: /api/v1/..., /apis/<group>/<version>/..., namespaced or not."""
from errors import not_found_path


class Target:
    def __init__(self, rt, ns, name, sub):
        self.rt, self.ns, self.name, self.sub = rt, ns, name, sub


def parse(registry, parts):
    """parts after the group/version prefix, e.g. ["namespaces", "ns", "configmaps", "x"]."""
    group, version, rest = parts
    look = lambda plural: registry.lookup(group, version, plural)
    ns = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        rt = look(rest[2])
        if rt is not None and rt.namespaced:
            ns, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise not_found_path()
    rt = look(rest[0])
    if rt is None:
        raise not_found_path()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    if rt.namespaced and ns is None and name is not None:
        raise not_found_path()
    if sub and not (sub == "status" and rt.status_subresource):
        raise not_found_path()
    return Target(rt, ns, name, sub)


def split(path):
    """(group, version, rest) for a resource path, or None for anything else."""
    segs = [s for s in path.split("/") if s]
    if len(segs) >= 3 and segs[0] == "api":
        return "", segs[1], segs[2:]
    if len(segs) >= 4 and segs[0] == "apis":
        return segs[1], segs[2], segs[3:]
    return None
