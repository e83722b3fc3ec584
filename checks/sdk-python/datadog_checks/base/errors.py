"""`datadog_checks.base.errors`, as a Datadog check imports it."""

from adrt_check.check import CheckException, ConfigurationError

__all__ = ["CheckException", "ConfigurationError"]
