"""The targets of `[notify] urls`: Apprise, imported only here and only when notifications are on.

Apprise (the `notify` extra) speaks ntfy, Telegram, e-mail, Pushover, Home Assistant, plain
JSON/form webhooks and a hundred more, one URL per target. It stays an optional extra: the
edge imports it lazily, so a station without notifications never loads it, and a station with
them but without the package is refused at start with the key to fix (`edge check`, `edge run`).

A URL may hold a token or a password, so a target is named in the database, the logs and
`edge status` by its scheme and a short hash of the URL (`target_id`), never by the URL.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

MISSING = ("Apprise is not installed: pip install 'trailcam[notify]' (or apprise) into the daemon's "
           "environment, or set notify.enabled = false")


class TargetError(Exception):
    """A target that cannot be used: Apprise missing, or a URL it does not understand."""


def target_id(url: str) -> str:
    """The name of a target that does not give its secrets away: "<scheme>:<sha256[:10]>"."""
    scheme = urlsplit(url).scheme or "url"
    return f"{scheme}:{hashlib.sha256(url.encode()).hexdigest()[:10]}"


def _apprise():
    try:
        import apprise  # the `notify` extra
    except ImportError:
        raise TargetError(MISSING) from None
    return apprise


def check_urls(urls: Sequence[str]) -> list[tuple[int, str]]:
    """(index, problem) for each URL Apprise does not understand; raises TargetError when Apprise
    itself is missing. The URL is not repeated in the problem (it may hold a token)."""
    apprise = _apprise()
    problems = []
    for index, url in enumerate(urls):
        if apprise.Apprise.instantiate(url) is None:
            problems.append((index, f"Apprise does not understand this {urlsplit(url).scheme or 'scheme-less'}:// "
                                    "URL (a misspelt scheme, or a required part missing): see "
                                    "https://github.com/caronc/apprise/wiki"))
    return problems


@dataclass(frozen=True)
class Delivery:
    """What one try to one target came to."""

    ok: bool
    error: str | None = None


class Target:
    """One configured URL, ready to send to."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.id = target_id(url)
        self._url = _with_timeouts(url, timeout_s)
        self._apprise = _apprise()
        if self._apprise.Apprise.instantiate(self._url) is None:
            raise TargetError(f"{self.id}: Apprise does not understand this URL")

    def send(self, title: str, body: str, attachments: Sequence[Path] = ()) -> Delivery:
        """One try; never raises for a network or target failure (it is said in the result)."""
        apprise = self._apprise
        sender = apprise.Apprise()
        sender.add(self._url)
        attach = None
        if attachments:
            attach = apprise.AppriseAttachment()
            for path in attachments:
                attach.add(str(path))
        try:
            with apprise.LogCapture(level=logging.WARNING) as captured:
                ok = bool(sender.notify(body=body, title=title, attach=attach))
                said = captured.getvalue()
        except Exception as error:  # noqa: BLE001 - a plugin's own bug must not end the delivery thread
            return Delivery(False, f"{type(error).__name__}: {error}".replace(self._url, self.id)[:300])
        if ok:
            return Delivery(True)
        lines = [line.strip() for line in said.splitlines() if line.strip()]
        reason = lines[-1] if lines else "the target refused it or could not be reached"
        return Delivery(False, reason.replace(self._url, self.id)[:300])


def _with_timeouts(url: str, timeout_s: float) -> str:
    """Apprise's connect and read timeouts (`cto`, `rto`) on the URL, unless it sets its own."""
    query = urlsplit(url).query
    keys = {part.split("=", 1)[0] for part in query.split("&") if part}
    extra = [f"{key}={timeout_s:g}" for key in ("cto", "rto") if key not in keys]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)
