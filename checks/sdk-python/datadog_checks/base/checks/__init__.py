"""`datadog_checks.base.checks`, as a Datadog check imports it."""

from adrt_check.check import AgentCheck

__all__ = ["AgentCheck"]
