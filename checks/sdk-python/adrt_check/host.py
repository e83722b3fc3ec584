"""What a check reaches outside itself, behind one small interface.

In the agent, `adrt_check.component` implements it over the WIT imports of `adrt:check`; in a
check's own tests, `adrt_check.testing.FakeHost` implements it and records what was submitted.
The SDK finds the host of the run in progress with `current()`.
"""

METRIC_KINDS = ("gauge", "count", "monotonic_count", "rate", "histogram")
LOG_LEVELS = ("trace", "debug", "info", "warn", "error")


class HostHTTPError(Exception):
    """A request the host could not complete. `kind` is the WIT error's case (`invalid-request`,
    `denied`, `timeout`, `connect`, `tls`, `other`); the message starts with the URL."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class Host:
    """The host's calls. Every method is implemented by the agent's and the fake host."""

    def emit_metric(self, kind, name, value, tags, hostname, device):
        raise NotImplementedError

    def emit_service_check(self, name, status, tags, hostname, message):
        raise NotImplementedError

    def emit_event(self, title, text, alert_type, tags, aggregation_key, source_type_name, timestamp):
        raise NotImplementedError

    def log(self, level, message):
        raise NotImplementedError

    def http_send(self, method, url, headers, body, timeout_ms, tls_verify, ca_file):
        """Returns (status, [(name, value)], body bytes) or raises HostHTTPError."""
        raise NotImplementedError

    def state_get(self, key):
        raise NotImplementedError

    def state_set(self, key, value):
        raise NotImplementedError

    def hostname(self):
        raise NotImplementedError


_current = None


def current():
    if _current is None:
        raise RuntimeError("no adrt host: a check's methods are called by the agent or by adrt_check.testing")
    return _current


def install(host):
    """Makes `host` the one the SDK talks to; returns the one it replaces."""
    global _current
    previous, _current = _current, host
    return previous
