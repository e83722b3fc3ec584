"""The componentize-py glue: the `adrt:check` world's exports over a check module, and the SDK's
host over the world's imports. `adrt build` generates the app module that imports the check and
calls `register`; componentize-py runs that import at build time and snapshots the result, so an
instance starts with the interpreter, the SDK and the check already loaded."""

import io
import sys

import wit_world
from componentize_py_types import Err
from wit_world.imports import http, log, state, submit, types, agent

from . import host as hostmod
from .runner import CheckFailed, CheckRunner

_KINDS = {
    "gauge": types.MetricKind.GAUGE,
    "count": types.MetricKind.COUNT,
    "monotonic_count": types.MetricKind.MONOTONIC_COUNT,
    "rate": types.MetricKind.RATE,
    "histogram": types.MetricKind.HISTOGRAM,
}
_STATUSES = [types.Status.OK, types.Status.WARNING, types.Status.CRITICAL, types.Status.UNKNOWN]
_ALERTS = {"info": types.AlertType.INFO, "success": types.AlertType.SUCCESS, "warning": types.AlertType.WARNING,
           "error": types.AlertType.ERROR}
_LEVELS = {"trace": log.Level.TRACE, "debug": log.Level.DEBUG, "info": log.Level.INFO, "warn": log.Level.WARN,
           "error": log.Level.ERROR}
_HTTP_ERRORS = {
    http.Error_InvalidRequest: "invalid-request",
    http.Error_Denied: "denied",
    http.Error_Timeout: "timeout",
    http.Error_Connect: "connect",
    http.Error_Tls: "tls",
    http.Error_Other: "other",
}


class WitHost(hostmod.Host):
    def emit_metric(self, kind, name, value, tags, hostname, device):
        submit.emit_metric(types.Metric(name, _KINDS[kind], value, tags, hostname, device))

    def emit_service_check(self, name, status, tags, hostname, message):
        submit.emit_service_check(types.ServiceCheck(name, _STATUSES[status], tags, hostname, message))

    def emit_event(self, title, text, alert_type, tags, aggregation_key, source_type_name, timestamp):
        submit.emit_event(types.Event(title, text, _ALERTS[alert_type], tags, aggregation_key, source_type_name,
                                      timestamp))

    def log(self, level, message):
        log.write(_LEVELS[level], message)

    def http_send(self, method, url, headers, body, timeout_ms, tls_verify, ca_file):
        request = http.Request(method, url, headers, body, timeout_ms, tls_verify, ca_file, None)
        try:
            response = http.send(request)
        except Err as error:
            raise hostmod.HostHTTPError(_HTTP_ERRORS.get(type(error.value), "other"), error.value.value) from None
        return response.status, response.headers, response.body

    def state_get(self, key):
        return state.get(key)

    def state_set(self, key, value):
        state.set(key, value)

    def hostname(self):
        return agent.context().hostname


class _LogLines(io.TextIOBase):
    """sys.stdout / sys.stderr of the check: each line to the host's log, with the instance."""

    def __init__(self, level):
        self.level = level
        self.pending = ""

    def writable(self):
        return True

    def write(self, text):
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            log.write(_LEVELS[self.level], line)
        return len(text)

    def flush(self):
        if self.pending:
            line, self.pending = self.pending, ""
            log.write(_LEVELS[self.level], line)


_runner = None


def register(module, name):
    """Called by the generated app module, at build time, with the check module."""
    global _runner
    _runner = CheckRunner(module, name)
    hostmod.install(WitHost())
    sys.stdout = _LogLines("info")
    sys.stderr = _LogLines("error")


def _call(function, *args):
    try:
        return function(*args)
    except CheckFailed as failed:
        error = types.CheckError_Config(failed.message) if failed.kind == "config" else types.CheckError_Run(failed.message)
        raise Err(error) from None
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


class WitWorld(wit_world.WitWorld):
    def info(self):
        name, version = _runner.info()
        return types.CheckInfo(name, version)

    def init(self, init_config):
        _call(_runner.init, init_config)

    def run(self, instance_id, instance):
        _call(_runner.run, instance_id, instance)

    def validate(self, init_config, instance):
        return _call(_runner.validate, init_config, instance)
