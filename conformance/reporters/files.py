"""Writing report files safely: whole or not at all, never through a symbolic link.

The tool runs as root and the report folder may be shared, so a report is never
written through a name someone else prepared:

* the folder a report goes into is opened with ``O_DIRECTORY | O_NOFOLLOW``
  (a symbolic link there is refused); the folders above it are the user's path
  and are followed;
* the report is written to a new temporary file in that folder (``O_EXCL |
  O_NOFOLLOW``, mode 0644), fsynced, then renamed over the final name with
  :func:`os.replace`, which replaces a symbolic link itself instead of writing
  through it;
* until the rename the previous report stays as it was: a full disk, or any
  other error, leaves it intact and removes the temporary file.

A failure is a :class:`~conformance.core.errors.HarnessError` that says what to do.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

from ..core.errors import HarnessError

#: Mode of every report file (the umask does not apply).
FILE_MODE = 0o644
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _kind(mode: int) -> str:
    """What a file of `mode` is, in words."""
    kinds = (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISREG, "a file"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((word for test, word in kinds if test(mode)), "not a regular file")


def _lstat(path: Path, dir_fd: int | None = None) -> os.stat_result | None:
    try:
        return os.lstat(path, dir_fd=dir_fd)
    except OSError:  # missing, or a component is not a folder
        return None


def open_folder(folder: Path) -> int:
    """A file descriptor of `folder`, created if missing; refused when it is a symbolic link or not a folder."""
    folder = Path(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(folder)  # never follows a symbolic link: it fails with EEXIST
        except FileExistsError:
            pass
        return os.open(folder, _DIR_FLAGS)
    except OSError as exc:
        raise _folder_error(folder, exc) from None


def _folder_error(folder: Path, exc: OSError) -> HarnessError:
    found = _lstat(folder) if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST) else None
    if found is not None and stat.S_ISLNK(found.st_mode):
        real = os.path.realpath(folder)
        return HarnessError(
            f"{folder} is a symbolic link (to {real}): reports are never written through one",
            f"name the real folder ({real}), or remove the link",
        )
    if found is not None and not stat.S_ISDIR(found.st_mode):
        return HarnessError(
            f"{folder} is {_kind(found.st_mode)}, not a folder: reports cannot be written into it",
            "name a folder (it is created if missing)",
        )
    where = f" ({exc.filename})" if exc.filename and Path(exc.filename) != folder else ""
    return HarnessError(
        f"cannot use {folder} as a report folder: {exc.strerror or exc}{where}",
        "name a folder on a writable file system that you may write to",
    )


def check_replaceable(path: Path, dir_fd: int | None = None) -> None:
    """Refuse to replace anything but a regular file or a symbolic link (a folder, /dev/null...)."""
    found = _lstat(Path(path.name) if dir_fd is not None else path, dir_fd)
    if found is not None and not (stat.S_ISREG(found.st_mode) or stat.S_ISLNK(found.st_mode)):
        raise HarnessError(
            f"{path} is {_kind(found.st_mode)}: a report can only replace a file",
            "name a file (a new one, or an earlier report)",
        )


def write_file(path: Path, data: bytes | str) -> None:
    """Write `data` (text is UTF-8) to `path` whole or not at all, without following a symbolic link."""
    path = Path(path)
    body = data.encode("utf-8") if isinstance(data, str) else data
    folder = open_folder(path.parent)
    try:
        check_replaceable(path, folder)
        _replace(folder, path, body)
    finally:
        os.close(folder)


def _replace(folder: int, path: Path, body: bytes) -> None:
    """Write `body` to a temporary file in `folder`, then rename it over `path`'s name."""
    temp = f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(temp, _NEW_FILE_FLAGS, FILE_MODE, dir_fd=folder)
    except OSError as exc:
        raise _write_error(path, body, exc, folder) from None
    try:
        try:
            os.fchmod(fd, FILE_MODE)
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path.name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException as exc:
        try:
            os.unlink(temp, dir_fd=folder)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _write_error(path, body, exc, folder) from None
        raise
    os.fsync(folder)  # the rename itself reaches the disk


def _write_error(path: Path, body: bytes, exc: OSError, folder: int) -> HarnessError:
    kept = _lstat(Path(path.name), folder) is not None
    previous = "the previous report is kept" if kept else "no report was written there"
    if exc.errno in _DISK_FULL:
        return HarnessError(
            f"the disk holding {path.parent} is full: could not write {path} ({len(body)} bytes); {previous}",
            "free some space on that disk, or write the reports elsewhere (--reports DIR, --junit PATH, --html PATH)",
        )
    return HarnessError(
        f"could not write {path}: {exc.strerror or exc}; {previous}",
        "check that you may write to that folder, or write the reports elsewhere (--reports DIR)",
    )


def check_folder(folder: Path) -> None:
    """Create `folder` if missing and make sure a report can be written into it (a probe file, removed)."""
    fd = open_folder(folder)
    try:
        temp = f".probe.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(temp, _NEW_FILE_FLAGS, FILE_MODE, dir_fd=fd))
            os.unlink(temp, dir_fd=fd)
        except OSError as exc:
            raise HarnessError(
                f"cannot write into {folder}: {exc.strerror or exc}",
                "name a folder on a writable file system that you may write to",
            ) from None
    finally:
        os.close(fd)


def check_subfolder(folder: Path) -> None:
    """A folder the tool will create later (ladders/, pcap/): if it exists, a real folder, not a link."""
    found = _lstat(folder)
    if found is None or stat.S_ISDIR(found.st_mode):
        return
    if stat.S_ISLNK(found.st_mode):
        raise _folder_error(folder, OSError(errno.ELOOP, os.strerror(errno.ELOOP)))
    raise _folder_error(folder, OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)))
