"""Download a catalogue model into the model folder, checked, and all or nothing.

`pull` streams each file into a staging folder beside the target (`.NAME.*.partial`, same file
system), hashes while it streams, extracts archive members, compares every sha256, records what
it got in `pulled.json`, and only then moves the folder into place with one `os.replace`. Any
failure (HTTP error, no network, a connection closed before Content-Length, a wrong digest)
removes the staging folder: the model folder never holds half a model, so `edge run` can never
load one. HTTP is the standard library's urllib on purpose: the edge stays light.

`verify` re-hashes pulled models against the catalogue (or, for a file the catalogue has no
digest for, against the digest recorded when it was pulled).

A mirror (`mirror=` or TRAILCAM_MODEL_MIRROR) is a base URL under which every file is served
by its `download_name` in one flat folder: `https://mirror.example/models/` or, for an offline
install from a USB stick, `file:///media/usb/models/`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from edge import __version__
from edge.classify.catalogue import CATALOGUE, CatalogueEntry, ModelFile
from edge.classify.model import sha256_file

MIRROR_ENV = "TRAILCAM_MODEL_MIRROR"
RECORD_NAME = "pulled.json"
_BLOCK = 1 << 16
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# (download name, bytes so far, total bytes or None, finished)
Progress = Callable[[str, int, int | None, bool], None]


class ModelDownloadError(Exception):
    """A pull or a check that failed; the message names the URL or file and what to do."""


class PullRefused(ModelDownloadError):
    """A pull that was not attempted: not pullable, no checksum to check against, already there."""


@dataclass(frozen=True)
class VerifyResult:
    name: str
    ok: bool
    message: str


def parse_sha256(text: str) -> str:
    """A sha256 as 64 hex digits (any case), or ValueError."""
    value = text.strip().lower()
    if not _HEX64.match(value):
        raise ValueError(f"{text!r} is not a sha256 (64 hexadecimal digits)")
    return value


def source_url(file: ModelFile, mirror: str | None) -> str:
    """Where `file` is fetched from: the publisher's URL, or `<mirror>/<download_name>`."""
    if not mirror:
        return file.url
    return mirror.rstrip("/") + "/" + quote(file.download_name)


def _offline_hint(entry: CatalogueEntry, file: ModelFile) -> str:
    return (f"if this machine is offline: download {file.url} on a connected machine, copy it as "
            f"{file.download_name} into a folder here and run `{MIRROR_ENV}=file:///that/folder "
            f"edge models pull {entry.name}` (or set {MIRROR_ENV} to a reachable mirror URL)")


def _expected_digests(entry: CatalogueEntry, sha256: Mapping[str, str], trust_on_first_use: bool) -> dict[str, str | None]:
    """store_as → the digest the file must have (None: trust on first use)."""
    unverified = [f.store_as for f in entry.files if not f.sha256]
    for store_as in sha256:
        if store_as not in unverified:
            raise PullRefused(f"{entry.name}: --sha256 applies only to a file the catalogue has no digest for "
                              f"({', '.join(unverified) or 'this model has none'}), not to {store_as}")
    missing = [name for name in unverified if name not in sha256]
    if missing and not trust_on_first_use:
        raise PullRefused(
            f"{entry.name}: the catalogue has no sha256 for {', '.join(missing)}, so the download could not be "
            f"checked. Give the digest published for it with --sha256 HEX, or pass --trust-on-first-use to "
            f"accept whatever arrives (its digest is then recorded and later checked by `edge models verify`)")
    return {f.store_as: f.sha256 or sha256.get(f.store_as) for f in entry.files}


def _fetch(url: str, dest: Path, *, label: str, timeout_s: float, progress: Progress | None,
           hint: str) -> tuple[str, int]:
    """Stream `url` into `dest` (created new); return (sha256, bytes). Every failure is a
    ModelDownloadError naming the URL."""
    request = urllib.request.Request(url, headers={"User-Agent": f"trailcam-edge/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)  # http(s):// or file://
    except urllib.error.HTTPError as error:
        raise ModelDownloadError(f"{url}: HTTP {error.code} {error.reason}; the file may have moved "
                                 f"(check docs/models.md for the current URL); {hint}") from None
    except urllib.error.URLError as error:
        reason = error.reason
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
        if isinstance(reason, socket.gaierror):
            text = f"cannot resolve {urlsplit(url).hostname} ({text})"
        raise ModelDownloadError(f"{url}: cannot download: {text}; {hint}") from None
    except (TimeoutError, OSError, http.client.HTTPException) as error:
        raise ModelDownloadError(f"{url}: cannot download: {error or type(error).__name__}; {hint}") from None
    digest = hashlib.sha256()
    done = 0
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with open(dest, "xb") as out:
            while True:
                try:
                    block = response.read(_BLOCK)
                except (http.client.IncompleteRead, http.client.HTTPException, TimeoutError, OSError) as error:
                    raise ModelDownloadError(
                        f"{url}: the download broke off after {done} of {total or '?'} bytes "
                        f"({type(error).__name__}); nothing was installed, run the pull again") from None
                if not block:
                    break
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress is not None:
                    progress(label, done, total, False)
            out.flush()
            os.fsync(out.fileno())
    if total is not None and done != total:
        raise ModelDownloadError(f"{url}: the download broke off after {done} of {total} bytes; "
                                 f"nothing was installed, run the pull again")
    if progress is not None:
        progress(label, done, total, True)
    return digest.hexdigest(), done


def _extract(archive: Path, member: str, dest: Path, url: str) -> tuple[str, int]:
    """Copy one member out of a zip, hashing it; return (sha256, bytes)."""
    digest = hashlib.sha256()
    size = 0
    try:
        with zipfile.ZipFile(archive) as zipped:
            try:
                source = zipped.open(member)
            except KeyError:
                held = ", ".join(zipped.namelist()[:10])
                raise ModelDownloadError(f"{url}: the archive has no {member} (it holds: {held})") from None
            with source, open(dest, "xb") as out:
                for block in iter(lambda: source.read(_BLOCK), b""):
                    out.write(block)
                    digest.update(block)
                    size += len(block)
    except zipfile.BadZipFile:
        raise ModelDownloadError(f"{url}: not a zip archive (a proxy's or captive portal's page instead of the "
                                 f"file?); nothing was installed") from None
    return digest.hexdigest(), size


def _check(file: ModelFile, url: str, expected: str | None, got: str) -> None:
    if expected is not None and got != expected:
        raise ModelDownloadError(
            f"{url}: sha256 of {file.store_as} is {got}, expected {expected}: this is not the file the "
            f"catalogue knows (a changed upload, a proxy, or a corrupt copy); nothing was installed")


def pull(entry: CatalogueEntry, models_dir: Path, *, mirror: str | None = None,
         sha256: Mapping[str, str] | None = None, trust_on_first_use: bool = False, force: bool = False,
         progress: Progress | None = None, timeout_s: float = 60.0) -> Path:
    """Download `entry` into models_dir/NAME/ and return that folder.

    `mirror` None reads TRAILCAM_MODEL_MIRROR ("" = the publisher's URLs). `sha256` maps a
    file's store_as to the digest the user vouches for (only files the catalogue has none for).
    An existing folder is replaced only with `force` (atomically: the old one stays until the
    new one is complete and checked).
    """
    if not entry.pullable:
        raise PullRefused(f"{entry.name}: {entry.notes or 'not downloadable'}")
    expected = _expected_digests(entry, dict(sha256 or {}), trust_on_first_use)
    mirror = os.environ.get(MIRROR_ENV, "") if mirror is None else mirror
    models_dir = Path(models_dir)
    target = models_dir / entry.name
    if target.exists() and not force:
        raise PullRefused(f"{target} already exists: `edge models verify` checks it, --force replaces it")
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".partial", dir=models_dir))
    except OSError as error:
        raise ModelDownloadError(f"{models_dir}: cannot write the model folder: {error.strerror or error}; "
                                 f"choose another with --dir, or run as the user the daemon runs as") from None
    try:
        record: dict[str, dict[str, object]] = {}
        downloads: dict[str, tuple[Path, str, int]] = {}  # url → (file, sha256, bytes)
        for file in entry.files:
            url = source_url(file, mirror)
            if url not in downloads:
                part = staging / (f"download-{len(downloads)}.partial")
                digest, size = _fetch(url, part, label=file.download_name, timeout_s=timeout_s,
                                      progress=progress, hint=_offline_hint(entry, file))
                downloads[url] = (part, digest, size)
            part, digest, size = downloads[url]
            if file.member is not None:
                digest, size = _extract(part, file.member, staging / file.store_as, url)
            else:  # a plain file is its own download: move it, do not copy 4 MB on an SD card
                os.replace(part, staging / file.store_as)
            _check(file, url, expected[file.store_as], digest)
            trust = "catalogue" if file.sha256 else ("user" if expected[file.store_as] else "first-use")
            record[file.store_as] = {"sha256": digest, "size": size, "url": url, "trust": trust}
        for part, _, _ in downloads.values():
            part.unlink(missing_ok=True)
        (staging / RECORD_NAME).write_text(json.dumps(
            {"name": entry.name, "kind": entry.kind, "licence": entry.licence,
             "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": record},
            indent=2) + "\n")
        _install(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _install(staging: Path, target: Path) -> None:
    """Move the checked folder into place; a folder already there is kept until then."""
    os.chmod(staging, 0o755)  # mkdtemp made it 0700: the daemon may run as another user
    if not target.exists():
        os.replace(staging, target)
        return
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def read_record(folder: Path) -> dict[str, dict[str, object]]:
    """The per-file record `pull` wrote ({} when absent or unreadable)."""
    try:
        data = json.loads((folder / RECORD_NAME).read_text())
        files = data.get("files", {})
        return files if isinstance(files, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def verify_entry(entry: CatalogueEntry, folder: Path) -> VerifyResult:
    """Re-hash one pulled model folder."""
    record = read_record(folder)
    problems: list[str] = []
    first_use: list[str] = []
    for file in entry.files:
        path = folder / file.store_as
        if not path.is_file():
            problems.append(f"{file.store_as} is missing")
            continue
        recorded = record.get(file.store_as, {})
        expected = file.sha256 or (recorded.get("sha256") if isinstance(recorded, dict) else None)
        if not expected:
            problems.append(f"{file.store_as}: no digest to check against (pull it again with --sha256)")
            continue
        got = sha256_file(path)
        if got != expected:
            origin = "the catalogue's" if file.sha256 else "the one recorded when it was pulled"
            problems.append(f"{file.store_as}: sha256 {got} differs from {origin} ({expected})")
        elif not file.sha256 and isinstance(recorded, dict) and recorded.get("trust") == "first-use":
            first_use.append(file.store_as)
    if problems:
        return VerifyResult(entry.name, False, "; ".join(problems))
    message = f"{len(entry.files)} file(s) match"
    if first_use:
        message += f" ({', '.join(first_use)}: against the digest recorded on first use, not a published one)"
    return VerifyResult(entry.name, True, message)


def verify(models_dir: Path) -> list[VerifyResult]:
    """Check every catalogue model present in `models_dir` (absent ones are not listed)."""
    return [verify_entry(entry, Path(models_dir) / entry.name) for entry in CATALOGUE
            if entry.pullable and (Path(models_dir) / entry.name).is_dir()]
