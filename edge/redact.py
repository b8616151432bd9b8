"""Credentials out of everything people and other machines read: the one redaction of URLs.

IP cameras are addressed as `rtsp://user:password@host/stream` (and many HTTP MJPEG cameras take
`?user=…&pwd=…` in the query). Such a URL is configuration, never output: the log, status.json,
`edge status`, `edge check`, MQTT and the web app show it through `redact_url`, and text that may
quote it (an FFmpeg error names the URL it failed on) goes through `redact_text`. One function, at
the package root, so that every layer uses the same rule and a test can hold them all to it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

MASK = "***"

# scheme://userinfo@ anywhere in a text; userinfo = anything up to the last '@' before the host
# (a password may itself hold '@' when not percent-encoded) without whitespace, quotes or '/'.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/'\"<>]*@)")
# Query parameters that carry credentials on cameras that take them in the URL (Foscam `pwd`,
# Hikvision/Amcrest `password`, tokens); their values are masked, the names kept.
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;](?:user|username|usr|login|password|passwd|pass|pwd|psw|token|auth|key|secret|"
    r"signature|sig|apikey|api_key|access_token)=)(?P<value>[^&#\s'\"<>]*)",
    re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL as it may be shown: `user:password@` becomes `***@` (so one can still tell that
    credentials are configured) and credential-like query values become `***`."""
    return redact_text(url)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every URL's credentials masked, and every one of `secrets` (the passwords
    `url_secrets` took from the configured URLs) replaced wherever it stands alone too: a
    library may quote a URL's parts separately."""
    text = _USERINFO.sub(lambda m: m["scheme"] + MASK + "@", text)
    text = _SECRET_PARAM.sub(lambda m: m["key"] + MASK, text)
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret and len(secret) >= 4:  # a one-letter password would mask every such letter
            text = text.replace(secret, MASK)
    return text


def url_secrets(url: str) -> list[str]:
    """The password (as written and percent-decoded) and credential query values of a URL: what
    `redact_text` must also mask when it stands outside the URL."""
    found: list[str] = []
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        password = None
        parts = None
    if password:
        found += [password, unquote(password)]
    for match in _SECRET_PARAM.finditer(url):
        value = match["value"]
        if value and not match["key"].lower().lstrip("?&;").startswith(("user", "usr", "login")):
            found += [value, unquote(value)]
    return list(dict.fromkeys(found))


def has_credentials(url: str) -> bool:
    """Whether the URL carries a user, a password or a credential query value."""
    return redact_url(url) != url


class RedactingFilter(logging.Filter):
    """A log handler's filter that masks URL credentials and the given secrets in every record,
    whoever logged it: the last line of defence behind each module's own `redact_url`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the formatter's to report
            return True
        masked = redact_text(message, self.secrets)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_redaction(secrets: Iterable[str], logger: logging.Logger | None = None) -> RedactingFilter:
    """Add (or update) the RedactingFilter on every handler of `logger` (the root logger)."""
    secrets = list(secrets)
    handlers = (logger or logging.getLogger()).handlers
    for handler in handlers:
        for existing in handler.filters:
            if isinstance(existing, RedactingFilter):
                existing.secrets = list(dict.fromkeys(existing.secrets + secrets))
                break
        else:
            handler.addFilter(RedactingFilter(secrets))
    return RedactingFilter(secrets)
