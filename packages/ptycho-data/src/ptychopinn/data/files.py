"""Files on disk: input checks made before a file is opened, and atomic output writes."""

from __future__ import annotations

import glob
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path

from ptychopinn.data.errors import DataContractError

__all__ = ["atomic_write", "check_input_file", "remove_stale_temporaries", "write_text_atomic"]

STALE_UNNAMED_SECONDS = 3600.0
"""A temporary of an older writer (no process id in its name) is stale after an hour."""

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_input_file(path: str | PathLike[str]) -> Path:
    """Return ``path`` if it is a readable regular file; refuse anything else up front.

    A FIFO would block the reader forever and a device such as ``/dev/zero`` would be
    read without end, so both are refused from ``os.stat`` alone, before any ``open``.

    Raises:
        FileNotFoundError: nothing at ``path``.
        IsADirectoryError: ``path`` is a directory.
        DataContractError: not a regular file (FIFO, device, socket), or not readable
            (permission denied: named as such, with the file's mode).
    """
    p = Path(path)
    try:
        info = os.stat(p)  # follows symlinks: a link to /dev/zero is a device
    except FileNotFoundError:
        raise FileNotFoundError(2, "No such file", str(p)) from None
    except PermissionError:
        raise DataContractError(
            p, None, "a readable file", "permission denied on a folder above it"
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(21, "Is a directory, expected a file", str(p))
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
        raise DataContractError(p, None, "a regular file", kind)
    try:
        os.close(os.open(p, os.O_RDONLY))
    except PermissionError:
        raise DataContractError(
            p,
            None,
            "a readable file",
            f"permission denied (mode {stat.filemode(info.st_mode)}, owner uid {info.st_uid})",
        ) from None
    return p


def _temporary(path: Path) -> Path:
    """``.<name>.<pid>-<token>.tmp<suffix>`` beside ``path`` (the suffix keeps writers
    that choose a format by suffix, such as matplotlib, working)."""
    token = secrets.token_hex(4)
    return path.with_name(f".{path.name}.{os.getpid()}-{token}.tmp{path.suffix}")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path: str | PathLike[str]) -> list[Path]:
    """Delete the temporaries that killed writes of ``path`` left beside it; return them.

    A temporary named by :func:`atomic_write` carries its writer's process id and is
    stale once that process is gone; one of an older writer (``mkstemp``'s
    ``.<name>.<8 random>.tmp`` or ``.<name>.<8 random><suffix>``, ptycho-data <= 0.1.2)
    is stale after ``STALE_UNNAMED_SECONDS``. Temporaries of live writers are kept.
    """
    path = Path(path)
    name = re.escape(path.name)
    ours = re.compile(rf"\.{name}\.(\d+)-[0-9a-f]+\.tmp.*")
    older = re.compile(rf"\.{name}\.[a-z0-9_]{{8}}(\.tmp|{re.escape(path.suffix)})")
    removed = []
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*"):
        match = ours.fullmatch(candidate.name)
        try:
            if match is not None:
                stale = not _alive(int(match[1]))
            elif older.fullmatch(candidate.name):
                stale = time.time() - candidate.stat().st_mtime > STALE_UNNAMED_SECONDS
            else:
                continue
            if stale and candidate.is_file():
                candidate.unlink()
                removed.append(candidate)
        except OSError:  # gone meanwhile, or not ours to delete
            continue
    return removed


@contextmanager
def atomic_write(path: str | PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is flushed to disk and
    renamed onto ``path``, so ``path`` is always the old file or the complete new one.

    The temporary is created with mode 0o666 filtered by the process umask (the
    permissions of an ordinary ``open(path, "w")``, not ``mkstemp``'s 0600); writers
    reopen it by name. Stale temporaries of killed writes of ``path`` are removed
    first; on an exception (or Ctrl-C) the temporary is deleted and ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = _temporary(path)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`; return ``path``."""
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
