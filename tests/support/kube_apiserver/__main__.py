"""A Kubernetes API server stand-in for tests: python3 tests/support/kube_apiserver --help.

Generic: every resource comes from --resources JSON files (or CRD objects created through it).
Listens with TLS on 127.0.0.1; writes --ready-file (its port) once it accepts connections.
"""
import argparse
import os
import signal
import ssl
import sys
from http.server import ThreadingHTTPServer

from app import App
from handler import Handler


def parse_args(argv):
    p = argparse.ArgumentParser(prog="kube_apiserver")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--cert", required=True, help="server certificate (PEM)")
    p.add_argument("--key", required=True, help="server key (PEM)")
    p.add_argument("--client-ca", help="CA that signs accepted client certificates")
    p.add_argument("--tokens", required=True, help="tokens JSON, re-read when it changes")
    p.add_argument("--resources", action="append", default=[], help="resource types JSON")
    p.add_argument("--data-dir", help="keeps objects and resourceVersions across restarts")
    p.add_argument("--request-log", help="one JSON line per request")
    p.add_argument("--ready-file", help="written with the port once listening")
    p.add_argument("--bookmark-interval", type=float, default=60.0)
    p.add_argument("--watch-timeout", type=int, default=1800,
                   help="seconds a watch lasts without timeoutSeconds")
    p.add_argument("--compact-at-start", action="store_true",
                   help="forget the watch history, as a restarted API server's watch cache does")
    return p.parse_args(argv)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that rejects our certificate or hangs up: one line, not a traceback.
        err = sys.exc_info()[1]
        sys.stderr.write("kube_apiserver: connection from %s: %s: %s\n"
                         % (client_address[0], type(err).__name__, err))


def tls_context(opts):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(opts.cert, opts.key)
    ctx.set_alpn_protocols(["http/1.1"])
    if opts.client_ca:
        ctx.load_verify_locations(opts.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def main(argv):
    opts = parse_args(argv)
    server = Server((opts.bind, opts.port), Handler)
    server.app = App(opts)
    server.socket = tls_context(opts).wrap_socket(server.socket, server_side=True,
                                                  do_handshake_on_connect=False)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if opts.ready_file:
        tmp = opts.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % server.server_port)
        os.replace(tmp, opts.ready_file)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
