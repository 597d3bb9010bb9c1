"""Objects, the global resourceVersion, the event history watches replay, and compaction.

Every mutation bumps one global counter (as etcd's revision does) and is appended to the
history; a compaction drops history up to a revision, so a watch or list from an older
resourceVersion gets 410 Gone. With a data dir the whole state is written atomically after each
mutation, so a restarted server keeps its objects and resourceVersions.
"""
import copy
import json
import os
import threading

HISTORY_LIMIT = 5000


class Store:
    def __init__(self, data_dir=None):
        self.cond = threading.Condition()
        self.rv = 1
        self.compacted = 0
        self.objects = {}   # (group, plural) -> {(namespace, name): obj}
        self.history = []   # [(rv, (group, plural), type, obj)]
        self.closed_epoch = 0  # bumped to end every open watch
        self.path = os.path.join(data_dir, "state.json") if data_dir else None
        if self.path and os.path.exists(self.path):
            self._load()

    def _load(self):
        with open(self.path) as f:
            doc = json.load(f)
        self.rv, self.compacted = doc["rv"], doc["compacted"]
        for o in doc["objects"]:
            self.objects.setdefault(tuple(o["key"]), {})[(o["ns"], o["name"])] = o["obj"]
        self.history = [(h[0], tuple(h[1]), h[2], h[3]) for h in doc["history"]]

    def _save(self):
        if not self.path:
            return
        doc = {"rv": self.rv, "compacted": self.compacted,
               "objects": [{"key": list(k), "ns": ns, "name": n, "obj": o}
                           for k, objs in self.objects.items() for (ns, n), o in objs.items()],
               "history": [[h[0], list(h[1]), h[2], h[3]] for h in self.history]}
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, self.path)

    # All methods below expect the caller to hold self.cond.
    def get(self, key, ns, name):
        return self.objects.get(key, {}).get((ns, name))

    def list(self, key, ns=None):
        objs = self.objects.get(key, {})
        return [o for (ons, _), o in sorted(objs.items()) if ns is None or ons == ns]

    def commit(self, key, ns, name, obj, event):
        """Stores obj (None deletes) under a new resourceVersion and records the event."""
        self.rv += 1
        if obj is not None:
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self.objects.setdefault(key, {})[(ns, name)] = obj
            recorded = obj
        else:
            recorded = self.objects.get(key, {}).pop((ns, name))
            recorded = copy.deepcopy(recorded)
            recorded["metadata"]["resourceVersion"] = str(self.rv)
        self.history.append((self.rv, key, event, copy.deepcopy(recorded)))
        if len(self.history) > HISTORY_LIMIT:
            dropped = self.history[: len(self.history) - HISTORY_LIMIT]
            self.history = self.history[len(dropped):]
            self.compacted = max(self.compacted, dropped[-1][0])
        self._save()
        self.cond.notify_all()
        return recorded

    def compact(self, rv=None):
        target = self.rv if rv is None else min(int(rv), self.rv)
        self.compacted = max(self.compacted, target)
        self.history = [h for h in self.history if h[0] > self.compacted]
        self._save()
        self.cond.notify_all()
        return self.compacted

    def events_after(self, rv, key):
        return [h for h in self.history if h[0] > rv and h[1] == key]

    def close_watches(self):
        self.closed_epoch += 1
        self.cond.notify_all()
