"""Where the command line's messages go: the console (``-q``/``-v``) and ``<output>/ptychopinn.log``.

The libraries only log (``logging.getLogger(__name__)``) and warn; handlers are
attached here, by :func:`configure_logging`, for the duration of one command and removed
afterwards: importing any ptychopinn module configures nothing.

Console: the ptychopinn loggers at INFO (DEBUG with ``-v``; WARNING and above with
``-q``), other libraries' loggers (Lightning, TensorFlow) at WARNING unless ``-v``, and
every ``warnings.warn`` as one ``warning: ...`` line (no raw ``UserWarning`` text with
source lines; deprecation notices only with ``-v``). The log file gets everything at INFO and above (DEBUG with ``-v``), with
time, level and logger name.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "LOG_NAME",
    "DeferredFileHandler",
    "LogSession",
    "configure_logging",
    "quiet_framework_environment",
]


def quiet_framework_environment(environ: Any = None) -> Any:
    """Before a framework is imported: TensorFlow's C++ logging to fatal-only.

    Without it a CPU-only machine prints TensorFlow's ``failed call to cuInit`` error
    line (and its start-up notices) on every start; a value the user set is kept.
    ``environ``: a mapping to update (default ``os.environ``); returned.
    """
    import os

    env = os.environ if environ is None else environ
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


LOG_NAME = "ptychopinn.log"
FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
WARNINGS_LOGGER = "py.warnings"
DEPRECATIONS_LOGGER = "py.deprecations"
_OWN = ("ptychopinn", WARNINGS_LOGGER)


class _ConsoleFormatter(logging.Formatter):
    """Plain messages; warnings and errors say so in front."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            message += "\n" + self.formatException(record.exc_info)
        if record.levelno >= logging.ERROR:
            return f"error: {message}"
        if record.levelno >= logging.WARNING:
            return f"warning: {message}"
        return message


class _ConsoleFilter(logging.Filter):
    """Own loggers at the console level; other libraries' chatter only from WARNING (or -v)."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbose or record.levelno >= logging.WARNING:
            return True
        return record.name.startswith(_OWN)


class DeferredFileHandler(logging.Handler):
    """Append records to ``path`` once its folder exists; hold them in memory until then.

    The job creates its output folder, never the logging: a job refused before it made
    its folder leaves no folder behind. Appending keeps the log of earlier runs in the
    same folder (each run starts with a header line from the command line).
    """

    def __init__(self, path: Path, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.path = Path(path)
        self._held: list[str] = []
        self._stream: TextIO | None = None
        self.setFormatter(logging.Formatter(FILE_FORMAT))

    def _open(self) -> bool:
        if self._stream is None and self.path.parent.is_dir():
            try:
                self._stream = self.path.open("a", encoding="utf-8")
            except OSError:
                return False
            self._stream.writelines(self._held)
            self._held.clear()
        return self._stream is not None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:  # pragma: no cover - logging's own convention
            self.handleError(record)
            return
        if self._open():
            assert self._stream is not None
            self._stream.write(line)
            self._stream.flush()
        else:
            self._held.append(line)

    def close(self) -> None:
        """Write what is held if the folder exists by now; close the file."""
        self.acquire()
        try:
            self._open()
            if self._stream is not None:
                self._stream.close()
                self._stream = None
            self._held.clear()
        finally:
            self.release()
            super().close()


class LogSession:
    """The handlers of one command; :meth:`log_to` adds ``<folder>/ptychopinn.log``."""

    def __init__(self, root: logging.Logger, verbose: bool, header: str) -> None:
        self._root = root
        self._verbose = verbose
        self._header = header
        self.files: list[DeferredFileHandler] = []
        self._detached: list[tuple[logging.Logger, logging.Handler, bool]] = []

    def log_to(self, folder: str | Path | None) -> Path | None:
        """Also write this command's log to ``folder/ptychopinn.log`` (once per folder)."""
        if folder is None:
            return None
        path = Path(folder) / LOG_NAME
        if any(h.path == path for h in self.files):
            return path
        handler = DeferredFileHandler(path, logging.DEBUG if self._verbose else logging.INFO)
        handler.handle(
            logging.makeLogRecord(
                {"name": "ptychopinn.app", "levelno": logging.INFO, "levelname": "INFO",
                 "msg": self._header}
            )
        )  # fmt: skip
        self._root.addHandler(handler)
        self.files.append(handler)
        return path

    def adopt_library_handlers(self) -> int:
        """Detach other libraries' own console handlers until the command ends.

        Lightning attaches a stderr handler to its ``lightning`` logger when imported;
        its records then reach the console twice, once unfiltered. Detached, they go
        through this session's console filter (warnings, or everything with ``-v``) and
        into the log file. Call after the backend is imported; returns how many were
        detached. They are put back when the command ends.
        """
        detached = 0
        for name, candidate in list(logging.Logger.manager.loggerDict.items()):
            if not isinstance(candidate, logging.Logger) or name.startswith("ptychopinn"):
                continue
            for handler in list(candidate.handlers):
                if type(handler) is logging.StreamHandler and handler.stream in (
                    sys.stderr,
                    sys.stdout,
                    sys.__stderr__,
                    sys.__stdout__,
                ):
                    candidate.removeHandler(handler)
                    self._detached.append((candidate, handler, candidate.propagate))
                    candidate.propagate = True
                    detached += 1
        return detached

    def restore_library_handlers(self) -> None:
        """Put back what :meth:`adopt_library_handlers` detached."""
        while self._detached:
            owner, handler, propagate = self._detached.pop()
            owner.addHandler(handler)
            owner.propagate = propagate

    def record(self, level: int, message: str, exc: BaseException | None = None) -> None:
        """Write one record to the log files only (the console has its own error line)."""
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        record = logging.makeLogRecord(
            {"name": "ptychopinn.app", "levelno": level, "levelname": logging.getLevelName(level),
             "msg": message, "exc_info": exc_info}
        )  # fmt: skip
        for handler in self.files:
            if level >= handler.level:
                handler.handle(record)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` for the duration of a command: one log record per warning.

    Deprecation notices (``DeprecationWarning``, ``FutureWarning``) mostly come from one
    library calling another: they go to the log file, and to the console only with -v.
    """
    args = (message, category.__name__, Path(filename).name, lineno)
    if issubclass(category, DeprecationWarning | PendingDeprecationWarning | FutureWarning):
        logging.getLogger(DEPRECATIONS_LOGGER).info("%s (%s, %s:%d)", *args)
    else:
        logging.getLogger(WARNINGS_LOGGER).warning("%s (%s, %s:%d)", *args)


@contextmanager
def configure_logging(
    verbosity: int = 0, header: str = "ptychopinn", stream: TextIO | None = None
) -> Iterator[LogSession]:
    """Attach the console handler (and, via the session, log files) for one command.

    `verbosity`: -1 quiet (warnings and errors only), 0 normal, 1 verbose (debug, other
    libraries' info, tracebacks). Everything is restored on exit: the root logger's level
    and handlers and ``warnings.showwarning``.
    """
    root = logging.getLogger()
    saved: dict[str, Any] = {"level": root.level, "showwarning": warnings.showwarning}
    verbose = verbosity > 0
    console = logging.StreamHandler(stream if stream is not None else sys.stderr)
    console.setLevel(
        logging.WARNING if verbosity < 0 else logging.DEBUG if verbose else logging.INFO
    )
    console.setFormatter(_ConsoleFormatter())
    console.addFilter(_ConsoleFilter(verbose))
    root.addHandler(console)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    warnings.showwarning = _show_warning
    session = LogSession(root, verbose, header)
    try:
        yield session
    finally:
        warnings.showwarning = saved["showwarning"]
        session.restore_library_handlers()
        for handler in [console, *session.files]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(saved["level"])
