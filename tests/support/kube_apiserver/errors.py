"""Kubernetes Status objects for errors, shaped as the real API server sends them."""


class ApiError(Exception):
    """An error answered to the client as a meta/v1 Status object."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": {},
              "status": "Failure", "message": self.message, "reason": self.reason}
        if self.details is not None:
            st["details"] = self.details
        st["code"] = self.code
        return st


def qualified(rt):
    """`plural.group` as the server names a resource in messages (`plural` for core)."""
    return rt.plural if not rt.group else rt.plural + "." + rt.group


def _details(rt, name, kind=None):
    d = {}
    if name:
        d["name"] = name
    if rt.group:
        d["group"] = rt.group
    d["kind"] = kind if kind is not None else rt.plural
    return d


def not_found(rt, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (qualified(rt), name),
                    _details(rt, name))


def already_exists(rt, name):
    return ApiError(409, "AlreadyExists", '%s "%s" already exists' % (qualified(rt), name),
                    _details(rt, name))


def conflict(rt, name, why="the object has been modified; please apply your changes to the "
             "latest version and try again"):
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s'
                    % (qualified(rt), name, why), _details(rt, name))


def gone(message):
    return ApiError(410, "Expired", message)


def too_large(rv, current):
    return ApiError(504, "Timeout", "Too large resource version: %d, current: %d" % (rv, current),
                    {"causes": [{"reason": "ResourceVersionTooLarge",
                                 "message": "Too large resource version"}],
                     "retryAfterSeconds": 1})


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def method_not_allowed(message="the server does not allow this method on the requested resource"):
    return ApiError(405, "MethodNotAllowed", message, {})


def unsupported_media(accepted):
    return ApiError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    "include: " + ", ".join(accepted), {})


def invalid(rt, name, causes):
    """422 Invalid; causes is a list of (field, message); details.kind is the Kind here."""
    group_kind = rt.kind if not rt.group else rt.kind + "." + rt.group
    text = "; ".join("%s: %s" % (f, m) for f, m in causes)
    if len(causes) > 1:
        text = "[" + ", ".join("%s: %s" % (f, m) for f, m in causes) + "]"
    d = _details(rt, name, kind=rt.kind)
    d["causes"] = [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes]
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (group_kind, name, text), d)


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(user, verb, rt, subresource, namespace, name):
    resource = rt.plural + ("/" + subresource if subresource else "")
    scope = ('in the namespace "%s"' % namespace) if namespace else "at the cluster scope"
    subject = qualified(rt) + (' "%s"' % name if name else "")
    msg = ('%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s'
           % (subject, user, verb, resource, rt.group, scope))
    return ApiError(403, "Forbidden", msg, _details(rt, name))


def forbidden_path(user, verb, path):
    return ApiError(403, "Forbidden", 'forbidden: User "%s" cannot %s path "%s"'
                    % (user, verb, path), {})


def not_found_path():
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


INJECTED = {
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected by the test"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted, but may "
          "still be processing the request"),
}


def injected(code):
    reason, message = INJECTED.get(code, ("InternalError", "injected error %d" % code))
    details = {"retryAfterSeconds": 1} if code == 429 else {}
    return ApiError(code, reason, message, details)
