"""Objects, the global resourceVersion, the event history watches replay, and compaction.

Every mutation bumps one global counter (as etcd's revision does) and is appended to the
history; a compaction drops history up to a revision, so a watch or list from an older
resourceVersion gets 410 Gone. With a data dir every mutation is appended to a journal (JSON
lines) that a restarted server replays, so it keeps its objects, resourceVersions, watch history
and compaction point.
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
        self.path = os.path.join(data_dir, "journal.jsonl") if data_dir else None
        if self.path and os.path.exists(self.path):
            self._load()
        self.journal = open(self.path, "a") if self.path else None

    def _load(self):
        """Replays the journal: every event, and the compactions between them."""
        with open(self.path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # the tail of a write cut short by a kill
                rec = json.loads(line)
                if rec["op"] == "compact":
                    self._forget(rec["rv"])
                    continue
                key, obj = tuple(rec["key"]), rec["obj"]
                oid = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                if rec["type"] == "DELETED":
                    self.objects.get(key, {}).pop(oid, None)
                else:
                    self.objects.setdefault(key, {})[oid] = obj
                self.rv = rec["rv"]
                self.history.append((rec["rv"], key, rec["type"], obj))

    def _write(self, rec):
        if self.journal is not None:
            self.journal.write(json.dumps(rec) + "\n")
            self.journal.flush()

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
            recorded = copy.deepcopy(self.objects.get(key, {}).pop((ns, name)))
            recorded["metadata"]["resourceVersion"] = str(self.rv)
        recorded = copy.deepcopy(recorded)
        self.history.append((self.rv, key, event, recorded))
        self._write({"op": "event", "rv": self.rv, "key": list(key), "type": event,
                     "obj": recorded})
        if len(self.history) > HISTORY_LIMIT:
            self.compact(self.history[len(self.history) - HISTORY_LIMIT - 1][0])
        self.cond.notify_all()
        return recorded

    def _forget(self, rv):
        self.compacted = max(self.compacted, rv)
        self.history = [h for h in self.history if h[0] > self.compacted]

    def compact(self, rv=None):
        target = self.rv if rv is None else min(int(rv), self.rv)
        self._forget(target)
        self._write({"op": "compact", "rv": self.compacted})
        self.cond.notify_all()
        return self.compacted

    def events_after(self, rv, key):
        return [h for h in self.history if h[0] > rv and h[1] == key]

    def close_watches(self):
        self.closed_epoch += 1
        self.cond.notify_all()
