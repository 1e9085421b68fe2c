"""Plain-dict forms of the configs: ``to_dict``/``from_dict`` and upstream's flat legacy dict."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from .configs import ExecutionConfig, InferenceConfig, ModelConfig, TrainingConfig
from .errors import ConfigError, UnknownKeyError, suggest

__all__ = [
    "CONFIG_CLASSES",
    "LEGACY_KEY_NAMES",
    "accepted_keys",
    "from_dict",
    "to_dict",
    "to_legacy_dict",
]

Config = ModelConfig | TrainingConfig | InferenceConfig | ExecutionConfig
C = TypeVar("C", ModelConfig, TrainingConfig, InferenceConfig, ExecutionConfig)

CONFIG_CLASSES: tuple[type, ...] = (ModelConfig, TrainingConfig, InferenceConfig, ExecutionConfig)

#: Field name -> upstream ``params.cfg`` name, where they differ.
LEGACY_KEY_NAMES: dict[str, str] = {
    "object_big": "object.big",
    "probe_big": "probe.big",
    "probe_mask": "probe.mask",
    "probe_trainable": "probe.trainable",
    "intensity_scale_trainable": "intensity_scale.trainable",
    "positions_provided": "positions.provided",
    "output_dir": "output_prefix",
    "train_data_file": "train_data_file_path",
    "test_data_file": "test_data_file_path",
    "logger": "logger_backend",
}

#: Deprecated init-only keys that ``from_dict`` still accepts.
_DEPRECATED_KEYS: dict[type, tuple[str, ...]] = {
    TrainingConfig: ("n_images",),
    InferenceConfig: ("n_images",),
}


def _check_class(cls: Any) -> None:
    if cls not in CONFIG_CLASSES:
        names = ", ".join(c.__name__ for c in CONFIG_CLASSES)
        raise TypeError(f"expected one of {names}, got {cls!r}")


def accepted_keys(cls: type) -> tuple[str, ...]:
    """Return the keys ``from_dict(cls, ...)`` accepts: the fields plus deprecated aliases."""
    _check_class(cls)
    names = tuple(f.name for f in dataclasses.fields(cls))
    return names + _DEPRECATED_KEYS.get(cls, ())


def _float_fields(cls: type) -> frozenset[str]:
    hints = typing.get_type_hints(cls)
    out = set()
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if hint is float or float in typing.get_args(hint):
            out.add(f.name)
    return frozenset(out)


_FLOAT_FIELDS: dict[type, frozenset[str]] = {cls: _float_fields(cls) for cls in CONFIG_CLASSES}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, ModelConfig):
        return to_dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def to_dict(config: Config) -> dict[str, Any]:
    """Return a JSON-safe dict of every field (paths as str, the model config nested)."""
    _check_class(type(config))
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _coerce_float(value: Any) -> Any:
    # PyYAML reads "1e-3" (no dot) as a string; accept any string that is a number.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def from_dict(cls: type[C], data: Mapping[str, Any], *, where: str = "") -> C:
    """Build ``cls`` from a dict written by ``to_dict``; missing keys take defaults, unknown keys fail."""
    _check_class(cls)
    label = f"{where}: " if where else ""
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}{cls.__name__} needs a mapping, got {type(data).__name__}")
    allowed = accepted_keys(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in allowed:
            raise UnknownKeyError(
                f"{label}unknown {cls.__name__} key {key!r}{suggest(str(key), allowed)}; "
                f"allowed keys: {', '.join(allowed)}"
            )
        if key == "model" and not isinstance(value, ModelConfig):
            inner = f"{where}.model" if where else "model"
            value = from_dict(ModelConfig, value, where=inner)
        elif key in _FLOAT_FIELDS[cls]:
            value = _coerce_float(value)
        kwargs[key] = value
    return cls(**kwargs)


def to_legacy_dict(config: Config) -> dict[str, Any]:
    """Return upstream's flat ``params.cfg`` dict (e.g. ``object_big`` -> ``object.big``)."""
    _check_class(type(config))
    flat: dict[str, Any] = {}
    for key, value in to_dict(config).items():
        if key == "model":
            flat.update(to_legacy_dict(config.model))  # type: ignore[union-attr]
            continue
        if key == "logger" and value == "none":
            value = None
        flat[LEGACY_KEY_NAMES.get(key, key)] = value
    return flat
