"""Configuration files: ``load_config`` (YAML/JSON, overrides > file > defaults) and ``save_config``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .configs import ExecutionConfig, InferenceConfig, ModelConfig, TrainingConfig
from .errors import ConfigError, ConfigFileError, UnknownKeyError, suggest
from .serialization import accepted_keys, from_dict, to_dict

__all__ = ["SECTIONS", "load_config", "parse_overrides", "save_config", "to_file_dict"]

#: Top-level sections of a config file and the class each one builds.
SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "training": TrainingConfig,
    "inference": InferenceConfig,
    "execution": ExecutionConfig,
}
_SUFFIXES = (".yaml", ".yml", ".json")

Overrides = Mapping[str, Any] | Iterable[str] | None


def _section_of(key: str) -> list[str]:
    return [s for s, cls in SECTIONS.items() if key in accepted_keys(cls) and key != "model"]


def _read(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ConfigFileError(
            f"{path}: unsupported config file type {suffix or '(none)'!r}; use .yaml, .yml or .json"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise ConfigFileError(f"{path}: cannot read config file: {exc}") from exc
    try:
        if suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{path}: invalid YAML: {exc}") from exc


def _split_sections(raw: Any, source: str) -> dict[str, dict[str, Any]]:
    """Check the top level of a file (sections only) and return a copy of each section."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigFileError(
            f"{source}: the top level must be a mapping of sections "
            f"({', '.join(SECTIONS)}), got {type(raw).__name__}"
        )
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for key, body in raw.items():
        if key not in SECTIONS:
            owners = _section_of(str(key))
            if owners:
                hint = (
                    f" ({key!r} belongs under the {' or '.join(repr(o) for o in owners)} section)"
                )
            else:
                hint = suggest(str(key), SECTIONS)
            raise UnknownKeyError(
                f"{source}: unknown top-level key {key!r}{hint}; "
                f"allowed sections: {', '.join(SECTIONS)}"
            )
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise ConfigFileError(
                f"{source}: section {key!r} must be a mapping, got {type(body).__name__}"
            )
        sections[key] = dict(body)
    return sections


def parse_overrides(overrides: Overrides) -> list[tuple[str, str, Any]]:
    """Normalise overrides to ``(section, key, value)`` triples.

    Accepts a mapping of dotted keys (``{"training.nepochs": 5}``) or of sections
    (``{"training": {"nepochs": 5}}``), or strings ``"training.nepochs=5"`` whose
    value is parsed as YAML.
    """
    if overrides is None:
        return []
    pairs: list[tuple[str, Any]] = []
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            if key in SECTIONS and isinstance(value, Mapping):
                pairs += [(f"{key}.{k}", v) for k, v in value.items()]
            else:
                pairs.append((str(key), value))
    elif isinstance(overrides, str):
        raise ConfigError(f"override {overrides!r}: pass a list of 'section.key=value' strings")
    else:
        for item in overrides:
            text = str(item)
            key, sep, value_text = text.partition("=")
            if not sep:
                raise ConfigError(f"override {text!r} is not 'section.key=value'")
            try:
                value = yaml.safe_load(value_text)
            except yaml.YAMLError as exc:
                raise ConfigError(f"override {text!r}: cannot parse value: {exc}") from exc
            pairs.append((key.strip(), value))
    triples = []
    for dotted, value in pairs:
        section, dot, key = dotted.partition(".")
        if not dot or section not in SECTIONS:
            owners = _section_of(dotted)
            hint = f" (did you mean {owners[0] + '.' + dotted!r}?)" if owners else ""
            raise UnknownKeyError(
                f"override {dotted!r}: use 'section.key' with a section in "
                f"{', '.join(SECTIONS)}{hint}"
            )
        allowed = [k for k in accepted_keys(SECTIONS[section]) if k != "model"]
        if key not in allowed:
            raise UnknownKeyError(
                f"override {dotted!r}: unknown {section} key {key!r}{suggest(key, allowed)}"
            )
        triples.append((section, key, value))
    return triples


def _build(sections: dict[str, dict[str, Any]], source: str) -> dict[str, Any]:
    for name in ("training", "inference"):
        if "model" in sections[name]:
            raise UnknownKeyError(
                f"{source}: {name}.model is not a key here; put model settings in the "
                "top-level 'model' section (shared by training and inference)"
            )
    try:
        model = from_dict(ModelConfig, sections["model"], where=f"{source} [model]")
        out: dict[str, Any] = {"model": model}
        for name in ("training", "inference"):
            body = dict(sections[name], model=model)
            out[name] = from_dict(SECTIONS[name], body, where=f"{source} [{name}]")
        out["execution"] = from_dict(
            ExecutionConfig, sections["execution"], where=f"{source} [execution]"
        )
    except UnknownKeyError:
        raise
    except ConfigError as exc:
        message = str(exc)
        if not message.startswith(source):
            message = f"{source}: {message}"
        raise type(exc)(message) from exc
    return out


def load_config(path: str | os.PathLike[str] | None, overrides: Overrides = None) -> dict[str, Any]:
    """Load a YAML/JSON config file into ``{"model", "training", "inference", "execution"}`` configs.

    Precedence: ``overrides`` > the file > the dataclass defaults. ``path=None``
    gives the defaults plus overrides. Unknown keys are errors naming the file and
    suggesting the closest valid key.
    """
    if path is None:
        source = "<defaults>"
        sections = _split_sections({}, source)
    else:
        file = Path(path)
        source = str(file)
        sections = _split_sections(_read(file), source)
    triples = parse_overrides(overrides)
    for section, key, value in triples:
        sections[section][key] = value
    return _build(sections, f"{source} (with overrides)" if triples else source)


def to_file_dict(configs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the sectioned, JSON-safe form of ``load_config``'s result (the file layout)."""
    unknown = [k for k in configs if k not in SECTIONS]
    if unknown:
        raise UnknownKeyError(
            f"unknown section {unknown[0]!r}{suggest(str(unknown[0]), SECTIONS)}; "
            f"allowed sections: {', '.join(SECTIONS)}"
        )
    out: dict[str, dict[str, Any]] = {}
    model = configs.get("model")
    for name in SECTIONS:
        if name not in configs:
            continue
        body = to_dict(from_dict(SECTIONS[name], configs[name]))
        if name in ("training", "inference"):
            inner = body.pop("model")
            if model is None:
                model = from_dict(ModelConfig, inner)
                out["model"] = to_dict(model)
            elif inner != to_dict(model):
                raise ConfigError(
                    f"{name}.model differs from the model section; a config file holds one "
                    "model shared by training and inference"
                )
        out[name] = body
    if "model" in out:
        out = {"model": out["model"], **{k: v for k, v in out.items() if k != "model"}}
    return out


def save_config(configs: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write configs in the file layout that ``load_config`` reads (.yaml/.yml/.json by suffix)."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ConfigFileError(
            f"{file}: unsupported config file type {suffix or '(none)'!r}; use .yaml, .yml or .json"
        )
    data = to_file_dict(configs)
    if suffix == ".json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False)
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, file)
    return file
