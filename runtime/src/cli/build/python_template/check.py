"""{{name}}: a check written with Datadog's custom-check API, run by adrt in its sandbox."""

from datadog_checks.base import AgentCheck, ConfigurationError

# Shown by `adrt check` and `adrt info`.
__version__ = "0.1.0"


class Check(AgentCheck):
    def check(self, instance):
        url = instance.get("url")
        if not url:
            raise ConfigurationError("instance key `url` is required")
        try:
            response = self.http.get(url)
            response.raise_for_status()
        except Exception as error:
            self.service_check("{{name}}.can_connect", AgentCheck.CRITICAL, message=str(error))
            raise
        self.service_check("{{name}}.can_connect", AgentCheck.OK)
        self.gauge("{{name}}.response_bytes", len(response.content))
