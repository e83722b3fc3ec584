"""`AgentCheck`: the base class of a Python check, as Datadog's custom-check API documents it."""

import logging

from . import host as hostmod
from .http import RequestsWrapper


class ConfigurationError(Exception):
    """The check's init_config or instance is invalid: the run fails as a configuration error."""


class CheckException(Exception):
    """A run that failed (as `datadog_checks.base.errors.CheckException`)."""


class _HostLogHandler(logging.Handler):
    """Sends `self.log` records to the host's log, which adds the check and the instance."""

    LEVELS = ((logging.ERROR, "error"), (logging.WARNING, "warn"), (logging.INFO, "info"), (logging.DEBUG, "debug"))

    def emit(self, record):
        try:
            message = self.format(record)
        except Exception as error:  # a bad format string must not fail the run
            message = f"{record.msg!r} (unformattable: {error})"
        level = next((name for number, name in self.LEVELS if record.levelno >= number), "trace")
        hostmod.current().log(level, message)


_handler = _HostLogHandler()
_handler.setFormatter(logging.Formatter("%(message)s"))
_checks_logger = logging.getLogger("adrt_check.checks")
_checks_logger.addHandler(_handler)
_checks_logger.setLevel(logging.DEBUG)
_checks_logger.propagate = False


class AgentCheck:
    """Subclass it and implement `check(self, instance)`.

    The agent builds one object per run with the check's name, its init_config and a one-element
    list holding the instance (`self.instance`), then calls `check`. Nothing kept on `self`
    survives to the next run: keep what must in `write_persistent_cache`.
    """

    OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
    HTTP_CONFIG_REMAPPER = None
    __NAMESPACE__ = ""

    def __init__(self, *args, **kwargs):
        name = kwargs.get("name", args[0] if len(args) > 0 else "")
        init_config = kwargs.get("init_config", args[1] if len(args) > 1 else {})
        instances = kwargs.get("instances", args[2] if len(args) > 2 else [])
        # Datadog's old-style (name, init_config, agentConfig, instances).
        if len(args) > 3:
            instances = args[3]
        self.name = name
        self.init_config = init_config if init_config is not None else {}
        self.instances = list(instances or [])
        self.instance = self.instances[0] if self.instances else None
        self.check_id = ""
        self.warnings = []
        self.log = _checks_logger.getChild(name or "check")
        self._http = None

    @property
    def http(self):
        if self._http is None:
            self._http = RequestsWrapper(self.instance or {}, self.init_config)
        return self._http

    @property
    def hostname(self):
        return hostmod.current().hostname()

    def check(self, instance):
        raise NotImplementedError("a check implements check(self, instance)")

    def _name(self, name, raw):
        return name if raw or not self.__NAMESPACE__ else f"{self.__NAMESPACE__}.{name}"

    def _submit(self, kind, name, value, tags, hostname, device_name, raw):
        if not isinstance(name, str) or not name:
            raise ValueError(f"metric name must be a non-empty string, got {name!r}")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"metric {name!r}: value {value!r} is not a number") from None
        hostmod.current().emit_metric(kind, self._name(name, raw), value, _tags(tags), hostname or None,
                                      device_name or None)

    def gauge(self, name, value, tags=None, hostname=None, device_name=None, raw=False):
        self._submit("gauge", name, value, tags, hostname, device_name, raw)

    def count(self, name, value, tags=None, hostname=None, device_name=None, raw=False):
        self._submit("count", name, value, tags, hostname, device_name, raw)

    def monotonic_count(self, name, value, tags=None, hostname=None, device_name=None, raw=False,
                        flush_first_value=False):
        # The host emits the delta between runs; the first run emits nothing (its first value is
        # never flushed, so `flush_first_value` cannot be honoured and is accepted as Datadog's default).
        self._submit("monotonic_count", name, value, tags, hostname, device_name, raw)

    def rate(self, name, value, tags=None, hostname=None, device_name=None, raw=False):
        self._submit("rate", name, value, tags, hostname, device_name, raw)

    def histogram(self, name, value, tags=None, hostname=None, device_name=None, raw=False):
        self._submit("histogram", name, value, tags, hostname, device_name, raw)

    def service_check(self, name, status, tags=None, hostname=None, message=None, raw=False):
        if status not in (self.OK, self.WARNING, self.CRITICAL, self.UNKNOWN):
            raise ValueError(f"service check {name!r}: status {status!r} is not one of AgentCheck.OK/WARNING/CRITICAL/UNKNOWN")
        message = None if message is None else str(message)
        hostmod.current().emit_service_check(self._name(name, raw), status, _tags(tags), hostname or None,
                                             message or None)

    def event(self, event):
        """Datadog's event dict: msg_title, msg_text, alert_type, tags, aggregation_key,
        source_type_name, timestamp (`event_type`, `host`, `priority` and `api_key` are accepted and
        not sent: the agent's intake does not take them from checks)."""
        alert_type = event.get("alert_type") or "info"
        if alert_type not in ("info", "success", "warning", "error"):
            raise ValueError(f"event alert_type {alert_type!r} is not one of info, success, warning, error")
        timestamp = event.get("timestamp")
        hostmod.current().emit_event(
            str(event.get("msg_title") or ""), str(event.get("msg_text") or ""), alert_type, _tags(event.get("tags")),
            event.get("aggregation_key") or None, event.get("source_type_name") or self.__NAMESPACE__ or None,
            int(timestamp) if timestamp else None)

    def warning(self, warning_message, *args, **kwargs):
        """Logs a warning; the run is reported as WARNING with it (as in the agent's status)."""
        message = str(warning_message) % args if args else str(warning_message)
        self.warnings.append(message)
        hostmod.current().log("warn", message)

    def read_persistent_cache(self, key):
        """What `write_persistent_cache` stored for this instance under `key`, or `''`."""
        value = hostmod.current().state_get(str(key))
        return "" if value is None else value

    def write_persistent_cache(self, key, value):
        hostmod.current().state_set(str(key), None if value is None else str(value))

    def set_metadata(self, name, value, **options):
        # The agent has no inventory of check metadata: a check's metadata is dropped.
        pass

    def cancel(self):
        pass


def _tags(tags):
    if tags is None:
        return []
    if isinstance(tags, (str, bytes)):
        raise TypeError(f"tags must be a list of strings, got {type(tags).__name__}")
    return [tag.decode() if isinstance(tag, bytes) else str(tag) for tag in tags if tag is not None]
