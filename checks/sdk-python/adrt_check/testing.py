"""Testing a check natively (`python3 -m unittest`), without the agent: a fake host that answers
HTTP from a map and records what the check submits, and `run` to call the check as the agent does.

    host = FakeHost(http={"http://nginx/status": (200, "Active connections: 1 ...")})
    host.run(check_module, {"url": "http://nginx/status"})
    self.assertEqual(host.metric("my.metric").value, 1)

Metrics of kind `rate` and `monotonic_count` are recorded as submitted (the raw counter): the agent
turns them into rates and deltas between runs.
"""

import collections
import json
import sys

from . import host as hostmod
from .runner import CheckFailed, CheckRunner

Metric = collections.namedtuple("Metric", "kind name value tags hostname device")
ServiceCheck = collections.namedtuple("ServiceCheck", "name status tags hostname message")
Event = collections.namedtuple("Event", "title text alert_type tags aggregation_key source_type_name timestamp")
Request = collections.namedtuple("Request", "method url headers body timeout_ms tls_verify ca_file")


class FakeHost(hostmod.Host):
    """`http` maps a URL to `(status, body)` or `(status, body, headers)` (body `str` or `bytes`),
    or to an `HostHTTPError` to raise (a refused connection, say); an unknown URL is a connection
    error, as a peer that is not there. `state` is the instance's persistent cache."""

    def __init__(self, http=None, state=None, hostname="test-host"):
        self.responses = dict(http or {})
        self.state = dict(state or {})
        self.host_name = hostname
        self.clear()

    def clear(self):
        """Forgets what was submitted, logged and requested (the state stays)."""
        self.metrics, self.service_checks, self.events, self.logs, self.requests = [], [], [], [], []

    def run(self, module, instance, init_config=None, name=None, instance_id="test:0"):
        """Runs `module`'s check once on `instance`. Raises `CheckFailed` (`.kind` `config` or
        `run`, `.message`) when the run fails, as the agent would report it."""
        runner = CheckRunner(module, name or module.__name__.rpartition(".")[2])
        previous = hostmod.install(self)
        try:
            runner.init(json.dumps(init_config or {}))
            runner.run(instance_id, json.dumps(instance))
        finally:
            hostmod.install(previous)

    def metric(self, name, tags=None):
        """The one metric submitted as `name` (with exactly `tags`, when given)."""
        found = [m for m in self.metrics if m.name == name and (tags is None or sorted(m.tags) == sorted(tags))]
        if len(found) != 1:
            raise AssertionError(f"expected one metric {name!r}{'' if tags is None else f' tagged {tags}'}, "
                                 f"found {len(found)} in {[m.name for m in self.metrics]}")
        return found[0]

    def service_check(self, name):
        found = [c for c in self.service_checks if c.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one service check {name!r}, found {len(found)}")
        return found[0]

    def emit_metric(self, kind, name, value, tags, hostname, device):
        self.metrics.append(Metric(kind, name, value, list(tags), hostname, device))

    def emit_service_check(self, name, status, tags, hostname, message):
        self.service_checks.append(ServiceCheck(name, status, list(tags), hostname, message))

    def emit_event(self, title, text, alert_type, tags, aggregation_key, source_type_name, timestamp):
        self.events.append(Event(title, text, alert_type, list(tags), aggregation_key, source_type_name, timestamp))

    def log(self, level, message):
        self.logs.append((level, message))
        print(f"[{level}] {message}", file=sys.stderr)

    def http_send(self, method, url, headers, body, timeout_ms, tls_verify, ca_file):
        self.requests.append(Request(method, url, headers, body, timeout_ms, tls_verify, ca_file))
        answer = self.responses.get(url)
        if answer is None:
            raise hostmod.HostHTTPError("connect", f"{url}: connection refused (no answer given to FakeHost)")
        if isinstance(answer, Exception):
            raise answer
        status, content, *rest = answer
        headers = list((rest[0] if rest else {}).items())
        return status, headers, content.encode() if isinstance(content, str) else content

    def state_get(self, key):
        return self.state.get(key)

    def state_set(self, key, value):
        if value is None:
            self.state.pop(key, None)
        else:
            self.state[key] = value

    def hostname(self):
        return self.host_name


__all__ = ["FakeHost", "CheckFailed", "Metric", "ServiceCheck", "Event", "Request"]
