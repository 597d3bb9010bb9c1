"""HTTP/1.1 request handling: authentication, discovery, resource verbs, the request log."""
import json
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler

import auth
import listing
import openapi
import routes
import tables
from errors import (ApiError, forbidden, injected, method_not_allowed, not_found_path,
                    unauthorized)
from objects import Request, decode_json
from watch import Watch, encode

VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-standin",
           "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
           "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc",
           "platform": "linux/amd64"}


# What system:public-info-viewer lets an anonymous client read; everything else needs a
# credential (anonymous requests elsewhere are 401 here, where a real server says 403).
PUBLIC = ("/healthz", "/readyz", "/livez", "/version", "/version/")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-standin"
    sys_version = ""

    def log_message(self, fmt, *args):  # the request log replaces stderr chatter
        pass

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_PATCH(self):
        self._serve("PATCH")

    def do_DELETE(self):
        self._serve("DELETE")

    @property
    def app(self):
        return self.server.app

    def _serve(self, method):
        url = urllib.parse.urlsplit(self.path)
        self.query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        self.url = url
        self.method = method
        self.identity = None
        self.extra_headers = []
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        try:
            if url.path.startswith("/_standin/"):
                return self.app.admin(self, url.path)
            fault = self.app.take_fault(method, url.path)
            if fault is not None:
                return self._fail(fault["code"])
            header = self.headers.get("Authorization")
            self.identity = self.app.auth.identify(header, self._cert_user())
            if self.identity is None and not (header is None and url.path in PUBLIC):
                raise unauthorized()
            self._route(url.path)
        except ApiError as e:
            self.send_json(e.code, e.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a stand-in bug: answer like the API server, and say so
            traceback.print_exc()
            self.send_json(500, ApiError(500, "InternalError", "Internal error occurred: %s: %s"
                                         % (type(e).__name__, e), {}).status())

    def _fail(self, code):
        if code == 0:  # as if the network dropped the connection
            self._log(0)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if code == 429:
            self.extra_headers = [("Retry-After", "1")]
        raise injected(code)

    def _cert_user(self):
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError):
            return None
        for rdn in (cert or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    return v
        return None

    def _route(self, path):
        reg = self.app.registry
        p = path.rstrip("/") or "/"
        simple = {"/version": lambda: VERSION,
                  "/api": lambda: reg.api_versions("127.0.0.1:%d" % self.server.server_port),
                  "/apis": reg.api_group_list}
        if p in ("/healthz", "/readyz", "/livez"):
            return self.send_body(200, b"ok", "text/plain; charset=utf-8")
        if p in simple:
            return self._get_only(simple[p]())
        segs = [s for s in p.split("/") if s]
        if segs[:1] == ["openapi"]:
            return self._openapi(segs[1:])
        if len(segs) == 2 and segs[0] == "apis":
            return self._get_only(reg.api_group(segs[1]))
        if len(segs) == 2 and segs[0] == "api":
            return self._get_only(reg.resource_list("", segs[1]))
        if len(segs) == 3 and segs[0] == "apis":
            return self._get_only(reg.resource_list(segs[1], segs[2]))
        parts = routes.split(p)
        if parts is None:
            raise not_found_path()
        self._resource(routes.parse(reg, parts))

    def _openapi(self, segs):
        reg = self.app.registry
        if segs == ["v3"]:
            return self._get_only(openapi.index(reg))
        if segs[:1] == ["v3"] and len(segs) == 3 and segs[1] == "api":
            return self._get_only(openapi.group_version(reg, "", segs[2])
                                  if segs[2] in reg.group_versions.get("", []) else None)
        if segs[:1] == ["v3"] and len(segs) == 4 and segs[1] == "apis":
            return self._get_only(openapi.group_version(reg, segs[2], segs[3])
                                  if segs[3] in reg.group_versions.get(segs[2], []) else None)
        raise not_found_path()

    def _get_only(self, doc):
        if doc is None:
            raise not_found_path()
        if self.method != "GET":
            raise method_not_allowed()
        self.send_json(200, doc)

    def _verb(self, t):
        if self.method == "GET":
            if t.name is not None:
                return "get"
            return "watch" if self.query.get("watch", [""])[0] in ("true", "1") else "list"
        verbs = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
        verb = verbs[self.method]
        if t.name is None:
            if verb == "delete":
                return "deletecollection"
            if verb != "create":
                raise method_not_allowed()
        elif verb == "create":
            raise method_not_allowed()
        return verb

    def _resource(self, t):
        verb = self._verb(t)
        resource = t.rt.plural + ("/" + t.sub if t.sub else "")
        if not auth.allowed(self.identity, verb, t.rt.group, resource):
            raise forbidden(self.identity.user, verb, t.rt, t.sub, t.ns, t.name)
        getattr(self, "_do_" + verb)(t)

    def _request(self, t):
        dry = self.query.get("dryRun", [])
        for d in dry:
            if d != "All":
                raise ApiError(422, "Invalid", 'dryRun: Unsupported value: "%s": supported '
                               'values: "All"' % d, {})
        manager = self.query.get("fieldManager", [""])[0]
        agent = (self.headers.get("User-Agent") or "unknown").split("/")[0][:128]
        return Request(t.rt, t.ns, t.name, t.sub, self.query, manager or agent, bool(dry),
                       manager_explicit=bool(manager))

    def _table_include(self):
        accept = self.headers.get("Accept") or ""
        if "as=Table" not in accept:
            return None
        return self.query.get("includeObject", ["Metadata"])[0]

    def _do_get(self, t):
        with self.app.store.cond:
            obj = self.app.objects.current(self._request(t))
        include = self._table_include()
        if include:
            return self.send_json(200, tables.table(t.rt, [obj], include, {
                "resourceVersion": obj["metadata"].get("resourceVersion", "")}))
        self.send_json(200, obj)

    def _do_list(self, t):
        include = self._table_include()
        with self.app.store.cond:
            items, meta = listing.list_objects(self.app.store, t, self.query)
        if include:
            return self.send_json(200, tables.table(t.rt, items, include, meta))
        self.send_json(200, {"kind": t.rt.kind + "List", "apiVersion": t.rt.api_version,
                             "metadata": meta, "items": items})

    def _do_watch(self, t):
        w = Watch(self.app, t.rt, t.ns, self.query, listing.matcher(t, self.query),
                  self._table_include())
        with self.app.store.cond:
            first, last = w.start()
        self.start_stream()
        self.write_chunk(b"".join(encode(e) for e in first))
        sent = time.monotonic()
        while last is not None:
            with self.app.store.cond:
                events, last, done = w.next_events(last, sent)
            if events:
                self.write_chunk(b"".join(encode(e) for e in events))
                sent = time.monotonic()
            if done:
                break
        self.end_stream()

    def _mutate(self, t, fn, code):
        req = self._request(t)
        try:
            with self.app.store.cond:
                result = fn(req)
        finally:
            self.extra_headers += [("Warning", '299 - "%s"' % w.replace('"', '\\"'))
                                   for w in req.warnings]
        created = False
        if isinstance(result, tuple):
            result, created = result
        self.send_json(201 if created else code, result)

    def _do_create(self, t):
        body = self._decode_body()
        self._mutate(t, lambda req: self.app.objects.create(req, body), 201)

    def _do_update(self, t):
        body = self._decode_body()
        self._mutate(t, lambda req: self.app.objects.update(req, body), 200)

    def _do_patch(self, t):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        self._mutate(t, lambda req: self.app.objects.patch(req, ctype, self.body), 200)

    def _do_delete(self, t):
        opts = decode_json(self.body) if self.body.strip() else {}
        self._mutate(t, lambda req: self.app.objects.delete(req, opts), 200)

    def _do_deletecollection(self, t):
        def run(req):
            items, meta = listing.list_objects(self.app.store, t, self.query)
            for o in items:
                req.ns, req.name = o["metadata"].get("namespace"), o["metadata"]["name"]
                self.app.objects.delete(req, {})
            return {"kind": t.rt.kind + "List", "apiVersion": t.rt.api_version,
                    "metadata": meta, "items": items}
        self._mutate(t, run, 200)

    def _decode_body(self):
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if ctype not in ("application/json", "application/yaml", "*/*"):
            raise ApiError(415, "UnsupportedMediaType", 'the body of the request was in an '
                           'unknown format - accepted media types include: application/json, '
                           'application/yaml', {})
        if ctype == "application/yaml":
            import apply
            return apply._decode(self.body)
        return decode_json(self.body)

    # --- response writing ---
    def send_json(self, code, doc):
        self.send_body(code, json.dumps(doc).encode("utf-8"), "application/json")

    def send_body(self, code, data, ctype):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in getattr(self, "extra_headers", []):
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self._log(code)

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self._log(200)

    def write_chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def _log(self, code):
        if self.url.path.startswith("/_standin/"):
            return
        self.app.log_request({
            "time": time.time(), "method": self.method, "path": self.url.path,
            "query": self.url.query, "code": code,
            "user": self.identity.user if self.identity else "",
            "userAgent": self.headers.get("User-Agent") or "",
            "watch": self.query.get("watch", [""])[0] in ("true", "1")})
