"""The backend registry over the entry-point group ``ptychopinn.backends``.

``get_backend(name)`` imports only the backend it is asked for: importing this
module imports no deep-learning framework. The typed ``Backend`` protocol the loaded
objects implement is ``ptychopinn.core.Backend`` (ptycho-core); ``ptychopinn.core``
re-exports this registry with ``get_backend`` typed to return it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib import import_module, metadata
from typing import Any

from .errors import BackendNotInstalledError, UnknownBackendError, suggest

__all__ = [
    "ALIASES",
    "ENTRY_POINT_GROUP",
    "KNOWN_BACKENDS",
    "BackendInfo",
    "available_backends",
    "get_backend",
    "install_hint",
]

ENTRY_POINT_GROUP = "ptychopinn.backends"


@dataclass(frozen=True)
class BackendInfo:
    """What the project knows about a first-party backend before it is installed."""

    name: str
    display_name: str
    distribution: str
    app_extra: str
    entry_point: str


KNOWN_BACKENDS: dict[str, BackendInfo] = {
    "tensorflow": BackendInfo(
        "tensorflow", "TensorFlow", "ptycho-tf", "tf", "ptychopinn.tf.backend:TensorFlowBackend"
    ),
    "pytorch": BackendInfo(
        "pytorch", "PyTorch", "ptycho-torch", "torch", "ptychopinn.torch.backend:TorchBackend"
    ),
}

#: Other spellings accepted by ``get_backend``.
ALIASES: dict[str, str] = {"tf": "tensorflow", "torch": "pytorch"}


def __getattr__(name: str) -> Any:
    """``Backend`` moved to ``ptychopinn.core`` (ptycho-core); this name is a deprecated alias.

    The protocol's types (GroupedData, TrainResult) live above this package, so the
    typed protocol cannot be defined here. Resolved lazily, and only on request, so
    that importing ptychopinn.config never imports ptycho-core (which depends on it).
    """
    if name != "Backend":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        "ptychopinn.config.Backend moved to ptychopinn.core.Backend (package ptycho-core); "
        "the alias will be removed in ptycho-config 0.2",
        DeprecationWarning,
        stacklevel=2,
    )
    try:
        protocol = import_module("ptychopinn.core.protocol")
    except ImportError as exc:
        raise ImportError(
            "ptychopinn.config.Backend moved to ptychopinn.core.Backend: install ptycho-core "
            "(`pip install ptycho-core`)"
        ) from exc
    return protocol.Backend


def _entry_points() -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def _canonical(name: str) -> str:
    key = str(name).strip().lower()
    return ALIASES.get(key, key)


def install_hint(name: str) -> str:
    """Return the 'X backend selected, ... install with ...' message for a known backend."""
    info = KNOWN_BACKENDS[_canonical(name)]
    return (
        f"{info.display_name} backend selected, but its package {info.distribution} is not "
        f"installed. Install it with `pip install {info.distribution}` (or "
        f"`uv add {info.distribution}`); for the application: "
        f"`pip install 'ptychopinn-app[{info.app_extra}]'`."
    )


def available_backends() -> tuple[str, ...]:
    """Return the names of the installed (registered) backends, without importing them."""
    return tuple(sorted(_entry_points()))


def get_backend(name: str) -> Any:
    """Load and return the backend registered under ``name`` (instantiated if it is a class).

    Raises ``UnknownBackendError`` (a ``ValueError``) for a name no backend answers
    to, and ``BackendNotInstalledError`` (a ``RuntimeError``) with the install
    command for a known backend that is not installed or cannot be imported.
    """
    key = _canonical(name)
    registered = _entry_points()
    if key not in KNOWN_BACKENDS and key not in registered:
        valid = sorted(set(KNOWN_BACKENDS) | set(registered))
        raise UnknownBackendError(
            f"unknown backend {name!r}{suggest(key, valid + list(ALIASES))}; "
            f"valid backends: {', '.join(valid)}"
        )
    ep = registered.get(key)
    if ep is None:
        raise BackendNotInstalledError(install_hint(key))
    try:
        loaded = ep.load()
    except ImportError as exc:
        if key in KNOWN_BACKENDS:
            info = KNOWN_BACKENDS[key]
            message = (
                f"{info.display_name} backend selected, but importing {ep.value} failed "
                f"({type(exc).__name__}: {exc}): {info.distribution} or one of its dependencies "
                f"is missing or broken. Install it with `pip install {info.distribution}` (or "
                f"`uv add {info.distribution}`); for the application: "
                f"`pip install 'ptychopinn-app[{info.app_extra}]'`."
            )
        else:
            message = f"backend {key!r} is registered but importing {ep.value} failed: {exc}"
        raise BackendNotInstalledError(message) from exc
    return loaded() if isinstance(loaded, type) else loaded
