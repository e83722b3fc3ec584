"""The Datadog agent 5 import, `from checks import AgentCheck`, still found in custom checks."""

from adrt_check.check import AgentCheck

__all__ = ["AgentCheck"]
