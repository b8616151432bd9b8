"""Opening a frame file so that nothing placed in a camera folder can block, mislead or flood us.

A camera folder is written by other programs (uploaders, sync tools, people), so a name ending
in `.jpg` proves nothing about what is behind it:

- a FIFO blocks a plain `open()` until someone writes to it: the processing loop (and with it
  the systemd watchdog ping) would stop;
- a device such as /dev/zero never ends: an unbounded `read()` eats all memory;
- a symbolic link may point anywhere the service user can read (/etc/shadow, another camera's
  archive); the backlog scan has always ignored symlinks, and live watching must agree.

So a frame is opened with O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, its type is checked on
the open descriptor (fstat, not the path: the path can be swapped between a check and the open),
only regular files are read, and every read stops at the size limit + 1 byte whatever fstat said
(procfs files say 0 bytes; a file can grow while it is read).

Refusals are typed: `SymlinkRefused` and `NotRegularFile` (nothing was read: not a frame at all),
`FrameTooLarge` (a regular file over the limit). Other failures are the OSError the kernel gave
(FileNotFoundError when the file vanished).
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
from pathlib import Path

_OPEN_FLAGS = (os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
               | getattr(os, "O_NOCTTY", 0))  # O_NOCTTY: a terminal device never becomes ours
_CHUNK = 1 << 20


class FrameRefused(Exception):
    """A path that is not read as a frame; `reason` is a short label for logs and metrics."""

    reason = "refused"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class SymlinkRefused(FrameRefused):
    """A symbolic link, and the camera does not allow it (or its target is outside the folder)."""

    reason = "symlink"


class NotRegularFile(FrameRefused):
    """A FIFO, device, socket or folder under an image name: never opened for reading."""

    reason = "not_regular"


class FrameTooLarge(FrameRefused):
    """A regular file over the size limit. `size` is what fstat said; `read_more` is True when
    fstat said less but the read went past the limit (a growing file, a procfs-like file)."""

    reason = "too_large"

    def __init__(self, path: str, message: str, size: int, read_more: bool = False) -> None:
        super().__init__(path, message)
        self.size = size
        self.read_more = read_more


def _kind(mode: int) -> str:
    for test, name in ((stat_module.S_ISFIFO, "a FIFO"), (stat_module.S_ISCHR, "a character device"),
                       (stat_module.S_ISBLK, "a block device"), (stat_module.S_ISSOCK, "a socket"),
                       (stat_module.S_ISDIR, "a folder"), (stat_module.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return f"not a regular file (mode {mode:o})"


def _inside(path: str, root: str) -> bool:
    return path != root and path.startswith(root.rstrip(os.sep) + os.sep)


class FrameFile:
    """An open regular file: `stat` is the descriptor's fstat; `read()` is bounded."""

    def __init__(self, path: str, fd: int, stat: os.stat_result) -> None:
        self.path = path
        self.fd = fd
        self.stat = stat

    def read(self, max_bytes: int) -> bytes:
        """The whole file, or FrameTooLarge: never more than max_bytes + 1 bytes are read."""
        if self.stat.st_size > max_bytes:
            raise FrameTooLarge(self.path, f"file too large for a frame ({self.stat.st_size} bytes > {max_bytes})",
                                self.stat.st_size)
        limit = max_bytes + 1
        # One read for an honest file (size + 1 also sees EOF, or growth); then chunks.
        want = min(limit, self.stat.st_size + 1)
        parts: list[bytes] = []
        total = 0
        while total < limit:
            chunk = os.read(self.fd, min(limit - total, max(want, 64 * 1024)))
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
            want = _CHUNK
        if total > max_bytes:
            raise FrameTooLarge(self.path, f"file too large for a frame (more than {max_bytes} bytes read, "
                                           f"{self.stat.st_size} announced)", self.stat.st_size, read_more=True)
        return b"".join(parts)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> FrameFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_frame(path: str | Path, *, allow_symlink_inside: Path | None = None) -> FrameFile:
    """Open a frame file without blocking and without following a symlink out of its folder.

    `allow_symlink_inside`: None refuses every symlink (the default, `symlinks = "skip"`); a
    folder allows a symlink whose target, fully resolved, is a regular file inside that folder.
    The type is checked with lstat first (a device is never even opened) and again with fstat
    on the descriptor (what was actually opened).
    """
    path = os.fspath(path)
    info = os.lstat(path)  # FileNotFoundError: vanished
    target, via_symlink = path, stat_module.S_ISLNK(info.st_mode)
    if via_symlink:
        target = _symlink_target(path, allow_symlink_inside)
    elif not stat_module.S_ISREG(info.st_mode):
        raise NotRegularFile(path, f"{_kind(info.st_mode)}, not a regular file: not read")
    try:
        fd = os.open(target, _OPEN_FLAGS)
    except OSError as error:
        if error.errno == errno.ELOOP:  # O_NOFOLLOW: swapped for a symlink since lstat
            raise SymlinkRefused(path, "symbolic link (appeared while opening): not followed") from None
        if error.errno in (errno.ENXIO, errno.EOPNOTSUPP):  # a socket, a device without a driver
            raise NotRegularFile(path, f"cannot be opened as a file ({error.strerror}): not read") from None
        raise
    try:
        fstat = os.fstat(fd)
        if not stat_module.S_ISREG(fstat.st_mode):
            raise NotRegularFile(path, f"{_kind(fstat.st_mode)}, not a regular file: not read")
        if via_symlink and allow_symlink_inside is not None:
            _check_opened_inside(path, fd, allow_symlink_inside)
    except BaseException:
        os.close(fd)
        raise
    return FrameFile(path, fd, fstat)


def read_frame(path: str | Path, *, max_bytes: int,
               allow_symlink_inside: Path | None = None) -> tuple[bytes, os.stat_result]:
    """(content, fstat of the descriptor it was read from): open_frame + a bounded read."""
    with open_frame(path, allow_symlink_inside=allow_symlink_inside) as handle:
        return handle.read(max_bytes), handle.stat


def _symlink_target(path: str, root: Path | None) -> str:
    try:
        link = os.readlink(path)
    except OSError:
        link = "?"
    if root is None:
        raise SymlinkRefused(path, f"symbolic link (→ {link}) not followed (camera symlinks = \"skip\")")
    resolved = os.path.realpath(path)
    real_root = os.path.realpath(root)
    if not _inside(resolved, real_root):
        raise SymlinkRefused(path, f"symbolic link (→ {link}) resolves to {resolved}, outside the camera "
                                   f"folder {real_root}: not followed")
    return resolved


def _check_opened_inside(path: str, fd: int, root: Path) -> None:
    """What was opened is still inside the folder (a folder on the way may have been replaced by
    a symlink after realpath() looked); /proc tells where the descriptor really points."""
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return  # no procfs: the realpath() check before the open stands alone
    real_root = os.path.realpath(root)
    if not _inside(opened, real_root):
        raise SymlinkRefused(path, f"symbolic link opened {opened}, outside the camera folder {real_root}: not read")
