"""adrt's Python check SDK: Datadog's custom-check API (`AgentCheck`) over the agent's sandbox.

A check is a module defining one subclass of `AgentCheck` (importable from here or, unchanged
from a Datadog custom check, from `datadog_checks.base`); `adrt build` makes it a WebAssembly
component. See checks/sdk-python/README.md.
"""

from .check import AgentCheck, CheckException, ConfigurationError
from .http import HTTPError, RequestException

__all__ = ["AgentCheck", "CheckException", "ConfigurationError", "HTTPError", "RequestException"]
