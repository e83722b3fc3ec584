"""`self.http`: a `requests`-like client over the host's `http` import.

It reads the instance options Datadog's `RequestsWrapper` reads (`timeout`, `headers`,
`extra_headers`, `username`/`password`, `tls_verify`, `tls_ca_cert`) and takes the per-call
keywords checks pass to it (`params`, `headers`, `data`, `json`, `timeout`, `verify`, `auth`).
Requests go out through the agent, under the check's egress policy: there is no proxy setting,
and redirects are always followed by the host.
"""

import base64
import email.message
import http.client
import json as jsonlib
import urllib.parse

from . import host as hostmod

DEFAULT_TIMEOUT_SECONDS = 10


class RequestException(IOError):
    """Base of every error of `self.http` (as `requests.exceptions.RequestException`)."""

    def __init__(self, *args, response=None):
        super().__init__(*args)
        self.response = response


class HTTPError(RequestException):
    """Raised by `Response.raise_for_status()` for a 4xx or 5xx status."""


class ConnectionError(RequestException):  # noqa: A001 - the name requests uses
    """The host could not connect, or refused the request under the check's policy."""


class SSLError(ConnectionError):
    """TLS handshake or certificate failure."""


class Timeout(RequestException):
    """No response within the timeout or the run's deadline."""


class InvalidURL(RequestException, ValueError):
    """The URL or a header is malformed."""


class CaseInsensitiveDict(dict):
    """Response headers: looked up whatever the case, keeping the server's spelling."""

    def __init__(self, pairs=()):
        super().__init__()
        self._keys = {}
        for name, value in pairs:
            # Repeated headers are joined as requests does.
            if name.lower() in self._keys:
                name = self._keys[name.lower()]
                value = f"{dict.__getitem__(self, name)}, {value}"
            self[name] = value

    def __setitem__(self, key, value):
        self._keys[key.lower()] = key
        super().__setitem__(key, value)

    def __getitem__(self, key):
        return super().__getitem__(self._keys[key.lower()])

    def __contains__(self, key):
        return isinstance(key, str) and key.lower() in self._keys

    def get(self, key, default=None):
        return self[key] if key in self else default


class Response:
    """What `self.http.get(...)` returns, as a `requests.Response`."""

    def __init__(self, url, status_code, headers, content):
        self.url = url
        self.status_code = status_code
        self.headers = CaseInsensitiveDict(headers)
        self.content = content
        self.reason = http.client.responses.get(status_code, "")

    @property
    def encoding(self):
        message = email.message.Message()
        message["content-type"] = self.headers.get("content-type", "")
        return message.get_content_charset() or "utf-8"

    @property
    def text(self):
        return self.content.decode(self.encoding, errors="replace")

    def json(self, **kwargs):
        return jsonlib.loads(self.text, **kwargs)

    @property
    def ok(self):
        return self.status_code < 400

    def raise_for_status(self):
        if 400 <= self.status_code < 600:
            side = "Client" if self.status_code < 500 else "Server"
            raise HTTPError(f"{self.status_code} {side} Error: {self.reason} for url: {self.url}", response=self)

    def iter_lines(self, decode_unicode=False):
        for line in self.content.splitlines():
            yield line.decode(self.encoding, errors="replace") if decode_unicode else line

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __repr__(self):
        return f"<Response [{self.status_code}]>"


class RequestsWrapper:
    """`self.http` of a check: its instance's HTTP options, and `get`/`post`/... over the host."""

    def __init__(self, instance, init_config):
        def option(key, default=None):
            return instance.get(key, init_config.get(key, default))

        self.timeout = float(option("timeout", DEFAULT_TIMEOUT_SECONDS))
        self.headers = dict(option("headers") or {})
        self.headers.update(option("extra_headers") or {})
        self.tls_verify = bool(option("tls_verify", True))
        self.tls_ca_cert = option("tls_ca_cert")
        username, password = option("username"), option("password")
        self.auth = (username, password) if username is not None and password is not None else None

    def get(self, url, **options):
        return self.request("GET", url, **options)

    def post(self, url, **options):
        return self.request("POST", url, **options)

    def put(self, url, **options):
        return self.request("PUT", url, **options)

    def patch(self, url, **options):
        return self.request("PATCH", url, **options)

    def delete(self, url, **options):
        return self.request("DELETE", url, **options)

    def head(self, url, **options):
        return self.request("HEAD", url, **options)

    def options_method(self, url, **options):
        return self.request("OPTIONS", url, **options)

    def request(self, method, url, params=None, headers=None, data=None, json=None, timeout=None, verify=None,
                auth=None, allow_redirects=True, **unsupported):
        if unsupported:
            raise TypeError(f"self.http.{method.lower()}: unsupported argument(s) {', '.join(sorted(unsupported))}")
        if not allow_redirects:
            raise TypeError("self.http: allow_redirects=False is not supported: the agent follows redirects")
        if params:
            query = urllib.parse.urlencode(params, doseq=True)
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        merged = dict(self.headers)
        merged.update(headers or {})
        body = None
        if json is not None:
            body = jsonlib.dumps(json).encode()
            merged.setdefault("Content-Type", "application/json")
        elif isinstance(data, dict):
            body = urllib.parse.urlencode(data, doseq=True).encode()
            merged.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif isinstance(data, str):
            body = data.encode()
        elif data is not None:
            body = bytes(data)
        auth = auth if auth is not None else self.auth
        if auth is not None:
            user, password = auth
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            merged["Authorization"] = f"Basic {token}"
        timeout = self.timeout if timeout is None else timeout
        if isinstance(timeout, tuple):
            timeout = sum(t for t in timeout if t is not None)
        if verify is None:
            verify = self.tls_verify
        ca_file = verify if isinstance(verify, str) else self.tls_ca_cert
        try:
            status, response_headers, content = hostmod.current().http_send(
                method, url, [(str(k), str(v)) for k, v in merged.items()], body,
                int(timeout * 1000) if timeout else None, bool(verify), ca_file)
        except hostmod.HostHTTPError as error:
            raise _ERRORS.get(error.kind, RequestException)(str(error)) from None
        return Response(url, status, response_headers, content)


_ERRORS = {
    "invalid-request": InvalidURL,
    "denied": ConnectionError,
    "timeout": Timeout,
    "connect": ConnectionError,
    "tls": SSLError,
    "other": RequestException,
}
