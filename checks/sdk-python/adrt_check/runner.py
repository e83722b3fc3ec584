"""Runs a check module's `AgentCheck` subclass as the agent's exports do: `info`, `init`, `run`,
`validate`. The componentize-py glue (`adrt_check.component`) and the test helper
(`adrt_check.testing`) both go through it, so a check's tests run it as the agent does."""

import copy
import inspect
import json
import traceback

from . import host as hostmod
from .check import AgentCheck, ConfigurationError


class CheckFailed(Exception):
    """How a call failed: `kind` is `config` or `run`, as the WIT `check-error`."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


def find_check_class(module):
    """The one `AgentCheck` subclass `module` defines (or imports, when it defines none)."""
    classes = [c for c in vars(module).values()
               if inspect.isclass(c) and issubclass(c, AgentCheck) and c.__module__ not in _SDK_MODULES]
    own = [c for c in classes if c.__module__ == module.__name__] or classes
    # A subclass of another listed class is the check; its bases are helpers.
    leaves = [c for c in own if not any(other is not c and issubclass(other, c) for other in own)]
    if len(leaves) != 1:
        found = ", ".join(sorted(c.__name__ for c in leaves)) or "none"
        raise TypeError(f"{module.__name__}: expected one subclass of AgentCheck, found {found}")
    return leaves[0]


_SDK_MODULES = {"adrt_check.check", "datadog_checks.base", "datadog_checks.base.checks", "checks"}


def _parse(what, text):
    try:
        value = json.loads(text) if text else {}
    except ValueError as error:
        raise CheckFailed("config", f"{what} is not JSON: {error}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CheckFailed("config", f"{what} must be a mapping, got {type(value).__name__}")
    return value


def _message(error):
    text = str(error)
    if isinstance(error, KeyError) and error.args:
        return f"missing key {error.args[0]!r}"
    return text or type(error).__name__


class CheckRunner:
    """One check module, called as the agent calls a component."""

    def __init__(self, module, name):
        self.check_class = find_check_class(module)
        self.name = name
        self.version = str(getattr(module, "__version__", "0.0.0"))
        self.init_config = {}

    def info(self):
        return self.name, self.version

    def init(self, init_config_json):
        self.init_config = _parse("init_config", init_config_json)

    def run(self, instance_id, instance_json):
        """One run; raises CheckFailed. An unexpected exception's traceback goes to the log."""
        instance = _parse("instance", instance_json)
        try:
            check = self.check_class(self.name, self.init_config, [instance])
            check.check_id = instance_id
            check.check(copy.deepcopy(instance))
        except ConfigurationError as error:
            raise CheckFailed("config", _message(error)) from None
        except CheckFailed:
            raise
        except Exception as error:
            hostmod.current().log("error", "".join(traceback.format_exception(type(error), error, error.__traceback__)))
            raise CheckFailed("run", _message(error)) from None

    def validate(self, init_config_json, instance_json):
        """Builds the check as a run would, without running it: a constructor that checks its
        config (Datadog's checks raise ConfigurationError in `__init__`) refuses it here."""
        init_config = _parse("init_config", init_config_json)
        instance = _parse("instance", instance_json)
        try:
            self.check_class(self.name, init_config, [instance])
        except ConfigurationError as error:
            raise CheckFailed("config", _message(error)) from None
        except Exception as error:
            raise CheckFailed("run", _message(error)) from None
        return []
