"""stub_status: nginx's stub_status page as metrics, written as a Datadog custom check."""

import re

from datadog_checks.base import AgentCheck, ConfigurationError

__version__ = "1.0.0"

PAGE = re.compile(
    r"Active connections:\s*(?P<active>\d+)\s+"
    r"server accepts handled requests\s+(?P<accepted>\d+)\s+(?P<handled>\d+)\s+(?P<requests>\d+)\s+"
    r"Reading:\s*(?P<reading>\d+)\s+Writing:\s*(?P<writing>\d+)\s+Waiting:\s*(?P<waiting>\d+)"
)


class StubStatusCheck(AgentCheck):
    def check(self, instance):
        url = instance.get("url")
        if not url:
            raise ConfigurationError("instance key `url` is required")
        tags = [f"url:{url}"]
        try:
            response = self.http.get(url)
            response.raise_for_status()
        except Exception as error:
            self.service_check("stub_status.can_connect", AgentCheck.CRITICAL, tags=tags, message=str(error))
            raise
        page = PAGE.search(response.text)
        if page is None:
            raise ValueError(f"{url}: not a stub_status page")
        self.service_check("stub_status.can_connect", AgentCheck.OK, tags=tags)
        for name in ("active", "reading", "writing", "waiting"):
            self.gauge(f"stub_status.connections.{name}", int(page[name]), tags=tags)
        self.monotonic_count("stub_status.connections.accepted", int(page["accepted"]), tags=tags)
        self.monotonic_count("stub_status.connections.handled", int(page["handled"]), tags=tags)
        self.monotonic_count("stub_status.requests", int(page["requests"]), tags=tags)
