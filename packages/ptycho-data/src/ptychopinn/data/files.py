"""Files on disk: input checks made before a file is opened, and atomic output writes."""

from __future__ import annotations

import os
import stat
from os import PathLike
from pathlib import Path

from ptychopinn.data.errors import DataContractError

__all__ = ["check_input_file"]

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
