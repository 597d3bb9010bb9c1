"""Authentication (bearer tokens, client certificates) and a deny-list authorizer.

The tokens file is re-read whenever it changes, so a test revokes a token or forbids a verb by
rewriting it. Its shape:
  {"tokens": {"<token>": {"user": "name", "groups": [...], "admin": false,
                          "deny": [{"verbs": ["patch"], "apiGroups": ["g"],
                                    "resources": ["plural", "plural/status"]}]}},
   "certUsers": {"<CN>": {"deny": [...]}}, "revokedCertUsers": ["<CN>"]}
A missing rule field matches everything; "*" too. Absent tokens and users are unauthenticated.
"""
import json
import os
import threading


class Identity:
    def __init__(self, user, groups, deny, admin):
        self.user, self.groups, self.deny, self.admin = user, groups, deny, admin


def _matches(values, value):
    return values is None or "*" in values or value in values


class Authenticator:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.stamp = None
        self.doc = {}

    def _current(self):
        with self.lock:
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except FileNotFoundError:
                return {}
            if stamp != self.stamp:
                with open(self.path) as f:
                    self.doc = json.load(f)
                self.stamp = stamp
            return self.doc

    def identify(self, auth_header, cert_cn):
        """The Identity for a request, or None (401)."""
        doc = self._current()
        if auth_header:
            scheme, _, token = auth_header.partition(" ")
            entry = doc.get("tokens", {}).get(token.strip()) if scheme.lower() == "bearer" \
                else None
            if entry is None:
                return None  # a wrong token is 401 even when a certificate is also presented
            return Identity(entry.get("user", "user"), entry.get("groups", []),
                            entry.get("deny", []), bool(entry.get("admin")))
        if cert_cn and cert_cn not in doc.get("revokedCertUsers", []):
            entry = doc.get("certUsers", {}).get(cert_cn, {})
            return Identity(cert_cn, entry.get("groups", []), entry.get("deny", []), False)
        return None


def allowed(identity, verb, group, resource):
    """resource is `plural` or `plural/subresource`."""
    for rule in identity.deny:
        if (_matches(rule.get("verbs"), verb) and _matches(rule.get("apiGroups"), group)
                and _matches(rule.get("resources"), resource)):
            return False
    return True
