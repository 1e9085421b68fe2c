"""How failures reach the user: one readable line and an exit code.

Exit code 2 means bad usage or bad input (a missing file, a malformed file, an invalid
configuration value, an unknown or uninstalled backend); exit code 1 means the job
itself failed. ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import zipfile

from ptychopinn.config import BadInput

__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "InputError", "exit_code_for", "one_line"]

EXIT_FAILURE = 1
EXIT_USAGE = 2


class InputError(BadInput, ValueError):
    """A file or argument given to the application cannot be used (exit code 2)."""


def exit_code_for(exc: BaseException) -> int:
    """Return 2 for bad usage or bad data, 1 for any other failure.

    Bad input is what carries the ``BadInput`` marker (every package's input errors:
    configuration, backend registry, ``ptychopinn.core`` errors such as
    ``DataError``/``ModelMismatchError``/``UnsupportedOptionError``), plus the standard
    library's ways of saying the same (``ValueError``, a missing/unreadable file, a
    broken zip).
    """
    if isinstance(exc, BadInput | ValueError):
        return EXIT_USAGE
    if isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError):
        return EXIT_USAGE
    if isinstance(exc, PermissionError | zipfile.BadZipFile):
        return EXIT_USAGE
    return EXIT_FAILURE


def one_line(exc: BaseException) -> str:
    """Render an exception as a single line: its message with whitespace runs collapsed."""
    if isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError) and (
        exc.filename is not None
    ):
        reason = exc.strerror or type(exc).__name__
        text = f"{exc.filename}: {reason.lower()}"
    else:
        text = str(exc)
        if isinstance(exc, KeyError) and exc.args:
            text = str(exc.args[0])
    text = " ".join(text.split())
    return text or type(exc).__name__
