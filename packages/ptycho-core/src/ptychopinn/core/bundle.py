"""The model bundle (``wts.h5.zip``) written once for every backend.

A backend supplies only its framework code: the bytes of its native weights (Keras
``.weights.h5``, torch safetensors) and how to put weights into its model. This module
owns the rest: the manifest (:func:`build_manifest`), the members
(:func:`write_model_bundle`), the strict reading of a bundle up to the point where a
model is built (:func:`open_model_bundle`), the validation of portable weights
(:func:`validate_portable`, so an import checks everything before it assigns
anything) and the native-vs-portable cross-check (:func:`check_native_matches_portable`).
The container itself (hashes, pickle refusal, atomic write) is
``ptychopinn.data.bundle``.
"""

from __future__ import annotations

import io
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from ptychopinn.config import TrainingConfig, layer_plan
from ptychopinn.data import BundleError, load_portable, read_bundle, save_portable, write_bundle

from .constants import PORTABLE_MEMBER, PROBE_MEMBER
from .errors import ModelMismatchError

__all__ = [
    "BACKEND_NAMES",
    "BundleFormat",
    "LoadedBundle",
    "build_manifest",
    "check_native_matches_portable",
    "manifest_float",
    "npy_bytes",
    "open_model_bundle",
    "package_versions",
    "validate_portable",
    "write_model_bundle",
]

#: The backends that exchange bundles (through ``portable.npz``), for error messages.
BACKEND_NAMES = {"tensorflow": "TensorFlow", "pytorch": "PyTorch"}

_SHARED_DISTRIBUTIONS = ("ptycho-config", "ptycho-data", "ptycho-core")

ModelT = TypeVar("ModelT")


def package_versions(
    framework: Mapping[str, str], distributions: Iterable[str] = ()
) -> dict[str, str]:
    """The versions a manifest records: ``framework`` (e.g. ``{"torch": torch.__version__}``),
    then each of ``distributions`` and the light ptycho packages ("unknown" when absent)."""
    versions = dict(framework)
    for dist in (*distributions, *_SHARED_DISTRIBUTIONS):
        try:
            versions[dist] = _dist_version(dist)
        except PackageNotFoundError:
            versions[dist] = "unknown"
    return versions


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as ``.npy`` bytes, never pickled (object arrays are refused)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def manifest_float(manifest: Mapping[str, Any], key: str, path: str | PathLike[str]) -> float:
    """``manifest[key]`` as a finite float > 0.

    Raises:
        BundleError: the key is missing, not a number, not finite or not > 0 (names
            the file, the key and what was found).
    """
    try:
        value = float(manifest[key])
    except (KeyError, TypeError, ValueError):
        raise BundleError(f"{path}: manifest key {key!r} is missing or not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise BundleError(f"{path}: manifest key {key!r} must be finite and > 0, got {value}")
    return value


def build_manifest(
    *,
    backend: str,
    config: TrainingConfig,
    intensity_scale: float,
    intensity_scale_trained: float,
    norm_factor: float,
    versions: Mapping[str, str],
) -> dict[str, Any]:
    """The manifest of a bundle (``ptychopinn.data.write_bundle`` adds format and hashes).

    ``config`` is the full TrainingConfig of the run (its model builds the network on
    load); ``intensity_scale`` is s0, the scale the model was built with,
    ``intensity_scale_trained`` the learned ``exp(log_scale)``.
    """
    return {
        "backend": backend,
        "config": config.to_dict(),
        "intensity_scale": float(intensity_scale),
        "intensity_scale_trained": float(intensity_scale_trained),
        "norm_factor": float(norm_factor),
        "N": config.model.N,
        "gridsize": config.model.gridsize,
        "package_versions": dict(versions),
        "layer_plan": layer_plan(config.model).to_dict(),
    }


def write_model_bundle(
    path: str | PathLike[str],
    manifest: Mapping[str, Any],
    native_member: str,
    native: bytes,
    portable: Mapping[str, np.ndarray],
) -> Path:
    """Write a bundle atomically: manifest, the native weights under ``native_member``,
    ``portable.npz`` (``portable``) and ``probe.npy`` (``portable["probe"]``)."""
    members = {
        native_member: native,
        PORTABLE_MEMBER: save_portable(dict(portable)),
        PROBE_MEMBER: npy_bytes(portable["probe"]),
    }
    return write_bundle(path, dict(manifest), members)


@dataclass(frozen=True)
class LoadedBundle:
    """A verified bundle, read as far as a backend needs to build and fill its model."""

    path: Path
    backend: str | None
    """The backend that wrote it (manifest ``backend``)."""
    config: TrainingConfig
    intensity_scale: float
    """s0 the model is built with."""
    norm_factor: float
    portable: dict[str, np.ndarray]
    """``portable.npz``: every parameter under its canonical name (not yet checked
    against a model; :func:`validate_portable` does that)."""
    native: bytes | None
    """The native weights when the bundle was written by the loading backend, else None."""

    def model_arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` for both backends' model constructors:
        ``(model config, probe=None, s0, norm factor)`` and the trainability flags and
        seed of the config (the probe comes with the portable weights)."""
        config = self.config
        args = (config.model, None, self.intensity_scale, self.norm_factor)
        kwargs = {
            "probe_trainable": config.probe_trainable,
            "intensity_scale_trainable": config.intensity_scale_trainable,
            "seed": config.seed,
        }
        return args, kwargs


def open_model_bundle(
    path: str | PathLike[str],
    *,
    backend: str,
    native_member: str,
    expect_N: int | None = None,
    expect_gridsize: int | None = None,
) -> LoadedBundle:
    """Read a bundle for ``backend``: verify it, parse its config and scales, pick its members.

    A bundle of ``backend`` must hold ``native_member`` and ``portable.npz`` (they are
    cross-checked after loading); one of another backend loads through
    ``portable.npz``. ``expect_N`` / ``expect_gridsize`` turn a mismatch with the data
    into an error here.

    Raises:
        FileNotFoundError: no file at ``path``.
        BundleError: corrupt, truncated, tampered or pickled bundle (``read_bundle``), a
            manifest without a valid config, N/gridsize that disagree with it, a scale
            that is not finite and > 0, a missing member.
        ModelMismatchError: the bundle's N or gridsize is not ``expect_N``/``expect_gridsize``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model bundle not found: {path}")
    bundle = read_bundle(path)
    manifest = bundle.manifest
    source = manifest.get("backend")
    try:
        config = TrainingConfig.from_dict(manifest["config"])
    except KeyError:
        raise BundleError(f"{path}: manifest has no 'config'") from None
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{path}: manifest 'config' is invalid: {exc}") from None
    for key, want in (("N", expect_N), ("gridsize", expect_gridsize)):
        have = getattr(config.model, key)
        if manifest.get(key, have) != have:
            raise BundleError(
                f"{path}: manifest {key}={manifest.get(key)} disagrees with its config ({have})"
            )
        if want is not None and want != have:
            raise ModelMismatchError(
                f"{path}: the bundle was trained with {key}={have}, but {key}={want} was expected"
            )
    s0 = manifest_float(manifest, "intensity_scale", path)
    nf = manifest_float(manifest, "norm_factor", path)
    if PORTABLE_MEMBER not in bundle.members:
        loader = BACKEND_NAMES.get(backend, backend)
        raise BundleError(
            f"{path}: a {source!r} bundle without {PORTABLE_MEMBER!r} cannot be loaded by the "
            f"{loader} backend; the TensorFlow ('tensorflow') and PyTorch ('pytorch') backends "
            f"exchange weights only through {PORTABLE_MEMBER!r}"
        )
    native = None
    if source == backend:
        if native_member not in bundle.members:
            raise BundleError(f"{path}: member {native_member!r} is missing")
        native = bundle.members[native_member]
    return LoadedBundle(
        path=path,
        backend=source if isinstance(source, str) else None,
        config=config,
        intensity_scale=s0,
        norm_factor=nf,
        portable=load_portable(bundle.members[PORTABLE_MEMBER]),
        native=native,
    )


def validate_portable(
    weights: Mapping[str, Any],
    expected: Mapping[str, tuple[int, ...]],
    *,
    model: str,
    strict: bool = True,
) -> dict[str, np.ndarray]:
    """Check portable weights against a model's canonical shapes; return them as arrays.

    ``expected`` is ``layer_plan(config).parameter_shapes()`` (name -> shape); ``model``
    describes the model in messages (e.g. ``"N=64, gridsize=1"``). Every expected name
    must be present with its exact shape and finite values, and every one but
    ``probe`` must be real; with ``strict`` an unexpected name is an error too. A
    backend's ``import_weights`` calls this before it assigns anything, so a failed
    import leaves the model unchanged.

    Raises:
        ModelMismatchError: naming the weight, the expected and the found shape/values.
    """
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or (strict and unexpected):
        raise ModelMismatchError(
            f"portable weights do not match the model ({model}): "
            f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        )
    checked: dict[str, np.ndarray] = {}
    for name, shape in expected.items():
        value = np.asarray(weights[name])
        if value.shape != tuple(shape):
            raise ModelMismatchError(
                f"portable weight {name!r}: expected shape {tuple(shape)}, found {value.shape}"
            )
        if value.dtype.kind not in "biufc":
            raise ModelMismatchError(
                f"portable weight {name!r}: expected numbers, found dtype {value.dtype}"
            )
        if name != "probe" and np.iscomplexobj(value):
            raise ModelMismatchError(f"portable weight {name!r} must be real, found {value.dtype}")
        if not np.all(np.isfinite(value)):
            raise ModelMismatchError(
                f"portable weight {name!r} holds non-finite values (NaN or inf)"
            )
        checked[name] = value
    return checked


def check_native_matches_portable(
    native: Mapping[str, np.ndarray],
    portable: Mapping[str, np.ndarray],
    path: str | PathLike[str],
    native_member: str,
) -> None:
    """Refuse a bundle whose native weights (exported canonically after loading them)
    differ from its ``portable.npz``: one bundle must give one model on either backend.

    Raises:
        BundleError: naming both members and the first weight that differs.
    """
    for name, value in portable.items():
        if name not in native or not np.array_equal(native[name], value):
            raise BundleError(
                f"{path}: members {native_member!r} and {PORTABLE_MEMBER!r} disagree on {name!r}"
            )


class BundleFormat(ABC, Generic[ModelT]):
    """How one backend's models go into and out of a bundle: the framework hooks.

    A backend subclasses this with its name, its native member and the framework
    code (build a model, native weight bytes in and out, canonical weights in and
    out); :meth:`save` and :meth:`load` are the rest, written once here. The
    subclass is stateless: each backend keeps one module-level instance.
    """

    backend: ClassVar[str]
    """The backend's registry name (manifest ``backend``)."""
    native_member: ClassVar[str]
    """The bundle member with the backend's native weights."""

    def as_model(self, model: Any) -> ModelT:
        """``model`` as the backend's model type (e.g. unwrapping a TrainResult); raise
        TypeError for anything else. The identity unless a backend overrides it."""
        return model  # type: ignore[no-any-return]

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """The manifest's ``package_versions`` (:func:`package_versions`)."""

    @abstractmethod
    def manifest_values(self, model: ModelT) -> tuple[TrainingConfig, float, float]:
        """``(training config, s0, norm factor)`` of ``model``."""

    @abstractmethod
    def native_bytes(self, model: ModelT) -> bytes:
        """``model``'s weights in the backend's safe native form (no pickle)."""

    @abstractmethod
    def build(self, loaded: LoadedBundle) -> ModelT:
        """A fresh model of ``loaded.config`` at ``loaded.intensity_scale``/``norm_factor``."""

    @abstractmethod
    def load_native(self, model: ModelT, data: bytes, path: Path) -> None:
        """Load native weight bytes into ``model``; raise BundleError/ModelMismatchError
        naming ``path`` and the member when they are invalid or do not fit."""

    @abstractmethod
    def export_weights(self, model: ModelT) -> dict[str, np.ndarray]:
        """Every parameter under its canonical name and layout."""

    @abstractmethod
    def import_weights(self, model: ModelT, weights: Mapping[str, np.ndarray]) -> None:
        """Set canonical weights (strict and atomic, :func:`validate_portable`)."""

    def save(self, model: Any, path: str | PathLike[str]) -> Path:
        """Write ``wts.h5.zip`` atomically: manifest, native weights, ``portable.npz``,
        ``probe.npy``; the trained scale is ``exp(log_scale)`` of the portable weights.
        An existing file at ``path`` is replaced only by a complete new bundle."""
        model = self.as_model(model)
        config, s0, norm_factor = self.manifest_values(model)
        portable = self.export_weights(model)
        manifest = build_manifest(
            backend=self.backend,
            config=config,
            intensity_scale=s0,
            intensity_scale_trained=math.exp(float(portable["log_scale"])),
            norm_factor=norm_factor,
            versions=self.versions(),
        )
        return write_model_bundle(
            path, manifest, self.native_member, self.native_bytes(model), portable
        )

    def load(
        self,
        path: str | PathLike[str],
        *,
        expect_N: int | None = None,
        expect_gridsize: int | None = None,
    ) -> ModelT:
        """Load a bundle of either backend (another backend's through ``portable.npz``).

        Strict and safe: :func:`open_model_bundle` (hashes, pickles, config, scales,
        members), the portable weights imported into a model built from the
        manifest's config (no code deserialised), then for the backend's own bundles
        the native weights loaded and cross-checked against ``portable.npz``.

        Raises:
            FileNotFoundError: no file at ``path``.
            BundleError: corrupt, truncated, tampered, pickled or inconsistent bundle.
            ModelMismatchError: weights that do not fit the configured model, or an
                N/gridsize other than ``expect_N``/``expect_gridsize``.
        """
        loaded = open_model_bundle(
            path,
            backend=self.backend,
            native_member=self.native_member,
            expect_N=expect_N,
            expect_gridsize=expect_gridsize,
        )
        model = self.build(loaded)
        try:
            self.import_weights(model, loaded.portable)
        except ModelMismatchError as exc:
            raise ModelMismatchError(f"{loaded.path}: {exc}") from None
        if loaded.native is not None:
            self.load_native(model, loaded.native, loaded.path)
            check_native_matches_portable(
                self.export_weights(model), loaded.portable, loaded.path, self.native_member
            )
        return model
