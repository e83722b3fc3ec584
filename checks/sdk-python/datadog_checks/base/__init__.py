"""The names a Datadog custom check imports from `datadog_checks.base`, backed by adrt's SDK, so
such a check builds for adrt unchanged."""

from adrt_check.check import AgentCheck, ConfigurationError
from adrt_check.utils import ensure_bytes, ensure_unicode, is_affirmative, to_native_string, to_string

__all__ = ["AgentCheck", "ConfigurationError", "ensure_bytes", "ensure_unicode", "is_affirmative",
           "to_native_string", "to_string"]
