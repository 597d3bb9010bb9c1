"""The stand-in's state and its test-only control endpoints under /_standin/ (admin tokens)."""
import json
import threading

import auth
import crds
from errors import ApiError, unauthorized
from objects import Objects, Request
from resources import Registry
from store import Store


class App:
    def __init__(self, options):
        self.options = options
        self.registry = Registry()
        initial = []
        for path in options.resources:
            initial += self.registry.load_file(path)
        self.store = Store(options.data_dir)
        self.objects = Objects(self.registry, self.store)
        crds.load(self.registry, self.store)
        self.objects.on_prepare.append(crds.prepare)
        self.objects.on_commit.append(
            lambda rt, event, obj: crds.register(self.registry, self.store, rt, event, obj))
        if self.store.rv == 1:  # a fresh store: the objects every cluster starts with
            self._seed(initial)
        if options.compact_at_start:
            with self.store.cond:
                self.store.compact()
        self.auth = auth.Authenticator(options.tokens)
        self.log_lock = threading.Lock()
        self.log_file = open(options.request_log, "a") if options.request_log else None
        self.faults = []

    def take_fault(self, method, path):
        """The injected fault this request meets, if any (each answers `count` requests)."""
        with self.store.cond:
            for f in self.faults:
                if (f["count"] > 0 and path.startswith(f.get("path", ""))
                        and f.get("method", method) == method):
                    f["count"] -= 1
                    return f
        return None

    def _seed(self, objs):
        with self.store.cond:
            for obj in objs:
                rt = self.registry.for_object(obj)
                if rt is None:
                    raise SystemExit("initial object of unknown kind: %s" % json.dumps(obj))
                ns = obj["metadata"].get("namespace") if rt.namespaced else None
                self.objects.create(Request(rt, ns, None, "", {}, "kube-apiserver", False), obj)

    def log_request(self, entry):
        if self.log_file is None:
            return
        with self.log_lock:
            self.log_file.write(json.dumps(entry) + "\n")
            self.log_file.flush()

    def admin(self, handler, path):
        """POST /_standin/compact {"resourceVersion": N?} -> {"compacted": N}
        POST /_standin/close-watches -> {}   GET /_standin/state -> {"resourceVersion", ...}
        POST /_standin/faults {"code": 503, "count": 2, "path": "/apis/", "method": "GET"}:
        the next `count` matching requests get that error (code 0: the connection is dropped)."""
        ident = self.auth.identify(handler.headers.get("Authorization"), None)
        if ident is None or not ident.admin:
            raise unauthorized()
        body = json.loads(handler.body or b"{}")
        with self.store.cond:
            if path == "/_standin/compact" and handler.method == "POST":
                out = {"compacted": self.store.compact(body.get("resourceVersion"))}
            elif path == "/_standin/faults" and handler.method == "POST":
                self.faults.append({k: body[k] for k in ("code", "count", "path", "method")
                                    if k in body})
                out = {}
            elif path == "/_standin/close-watches" and handler.method == "POST":
                self.store.close_watches()
                out = {}
            elif path == "/_standin/state" and handler.method == "GET":
                out = {"resourceVersion": self.store.rv, "compacted": self.store.compacted}
            else:
                raise ApiError(404, "NotFound", "no such control endpoint", {})
        handler.send_json(200, out)
