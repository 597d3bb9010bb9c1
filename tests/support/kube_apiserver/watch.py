"""WATCH: a chunked stream of JSON events (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR) replayed
from the store's history after a resourceVersion, as the API server's watch cache does."""
import copy
import json
import time

import tables
from errors import bad_request, gone, too_large


class Watch:
    def __init__(self, app, rt, ns, query, match, include):
        self.app, self.rt, self.ns, self.match, self.include = app, rt, ns, match, include
        self.store = app.store
        self.rv_param = query.get("resourceVersion", [""])[0]
        self.bookmarks = query.get("allowWatchBookmarks", [""])[0] == "true"
        self.initial = query.get("sendInitialEvents", [""])[0] == "true"
        timeout = query.get("timeoutSeconds", [""])[0]
        try:
            seconds = int(timeout) if timeout else app.options.watch_timeout
        except ValueError:
            raise bad_request('invalid timeoutSeconds "%s"' % timeout)
        self.deadline = time.monotonic() + seconds
        self.visible = set()

    def _matches(self, obj):
        meta = obj["metadata"]
        return (self.ns is None or meta.get("namespace") == self.ns) and self.match(obj)

    def _view(self, obj):
        return tables.table(self.rt, [obj], self.include, {}) if self.include else obj

    def start(self):
        """Under the store lock: the first events and the revision to continue after."""
        st = self.store
        if self.rv_param and self.rv_param != "0" and not self.initial:
            try:
                last = int(self.rv_param)
            except ValueError:
                raise bad_request('invalid resourceVersion "%s"' % self.rv_param)
            if last < st.compacted:
                err = gone("too old resource version: %d (%d)" % (last, st.compacted))
                return [{"type": "ERROR", "object": err.status()}], None
            if last > st.rv:  # a revision this server never had (its storage was replaced)
                err = too_large(last, st.rv)
                return [{"type": "ERROR", "object": err.status()}], None
            self.visible = {self._id(o) for o in st.list(self.rt.key) if self._matches(o)}
            return [], last
        events = []
        for o in st.list(self.rt.key):
            if self._matches(o):
                self.visible.add(self._id(o))
                events.append({"type": "ADDED", "object": self._view(copy.deepcopy(o))})
        if self.initial:
            events.append(self._bookmark(st.rv, initial_end=True))
        return events, st.rv

    @staticmethod
    def _id(obj):
        return (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])

    def _bookmark(self, rv, initial_end=False):
        meta = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"type": "BOOKMARK",
                "object": {"kind": self.rt.kind, "apiVersion": self.rt.api_version,
                           "metadata": meta}}

    def translate(self, event, obj):
        """The event this watcher sees, given which objects it has seen match."""
        oid, now = self._id(obj), self._matches(obj)
        was = oid in self.visible
        if event == "DELETED":
            self.visible.discard(oid)
            return "DELETED" if was or now else None
        if now:
            self.visible.add(oid)
            return "MODIFIED" if was and event == "MODIFIED" else "ADDED"
        if was:
            self.visible.discard(oid)
            return "DELETED"
        return None

    def next_events(self, last, last_sent):
        """Waits (under the lock) for events after `last`; returns (events, new_last, done)."""
        st = self.store
        epoch = st.closed_epoch
        interval = self.app.options.bookmark_interval
        while True:
            if st.closed_epoch != epoch or time.monotonic() >= self.deadline:
                return ([self._bookmark(st.rv)] if self.bookmarks else []), st.rv, True
            if last < st.compacted:  # compacted past an undelivered event: the client relists
                err = gone("too old resource version: %d (%d)" % (last, st.compacted))
                return [{"type": "ERROR", "object": err.status()}], last, True
            out = []
            for rv, _, event, obj in st.events_after(last, self.rt.key):
                seen = self.translate(event, obj)
                if seen:
                    out.append({"type": seen, "object": self._view(copy.deepcopy(obj))})
            if out:
                return out, st.rv, False
            last = st.rv
            if self.bookmarks and time.monotonic() - last_sent >= interval:
                return [self._bookmark(st.rv)], st.rv, False
            wait = self.deadline - time.monotonic()
            if self.bookmarks:
                wait = min(wait, interval - (time.monotonic() - last_sent))
            st.cond.wait(timeout=max(wait, 0.01))


def encode(event):
    return (json.dumps(event, separators=(",", ":")) + "\n").encode("utf-8")
