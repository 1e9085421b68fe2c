"""The error hierarchy of ptychopinn.config."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "BackendNotInstalledError",
    "BadInput",
    "ConfigError",
    "ConfigFileError",
    "UnknownBackendError",
    "UnknownKeyError",
    "suggest",
]


class BadInput(Exception):
    """Marker of every error that means "the caller's input cannot be used".

    Configuration values, files, data, backend names: whatever the user gave. The
    application maps any exception carrying this marker to exit code 2 (bad input),
    every other failure to 1. It lives here, in the lowest package, so that errors of
    every package (``ConfigError``, ``BackendNotInstalledError``, ``ptychopinn.core``'s
    ``BadInputError``) can carry it; mix it in next to a built-in base
    (``class X(BadInput, ValueError)``).
    """


class ConfigError(BadInput, ValueError):
    """A configuration value, key or file is invalid."""


class UnknownKeyError(ConfigError):
    """A mapping holds a key that no configuration field accepts."""


class ConfigFileError(ConfigError):
    """A configuration file cannot be read, parsed or understood."""


class UnknownBackendError(ConfigError):
    """A backend name that no known or registered backend answers to."""


class BackendNotInstalledError(BadInput, RuntimeError):
    """A known backend was selected but its package is not installed (bad input: exit 2)."""


def suggest(word: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    matches = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in choices}
        if str(word).lower() in lowered:
            matches = [lowered[str(word).lower()]]
    return f" (did you mean {matches[0]!r}?)" if matches else ""
