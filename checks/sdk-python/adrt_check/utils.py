"""The small helpers `datadog_checks.base` exports, with its semantics."""


def is_affirmative(value):
    """True for `yes`, `true`, `1`, `y`, `on` (any case) and truthy non-strings."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "true", "1", "y", "on")
    return bool(value)


def ensure_bytes(value):
    return value.encode("utf-8") if isinstance(value, str) else value


def ensure_unicode(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


to_native_string = ensure_unicode
to_string = ensure_unicode
