"""The error hierarchy of ptychopinn.config."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "BackendNotInstalledError",
    "ConfigError",
    "ConfigFileError",
    "UnknownBackendError",
    "UnknownKeyError",
    "suggest",
]


class ConfigError(ValueError):
    """A configuration value, key or file is invalid."""


class UnknownKeyError(ConfigError):
    """A mapping holds a key that no configuration field accepts."""


class ConfigFileError(ConfigError):
    """A configuration file cannot be read, parsed or understood."""


class UnknownBackendError(ConfigError):
    """A backend name that no known or registered backend answers to."""


class BackendNotInstalledError(RuntimeError):
    """A known backend was selected but its package is not installed."""


def suggest(word: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    matches = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in choices}
        if str(word).lower() in lowered:
            matches = [lowered[str(word).lower()]]
    return f" (did you mean {matches[0]!r}?)" if matches else ""
