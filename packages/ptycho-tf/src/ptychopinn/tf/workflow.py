"""The public workflow of the TensorFlow backend: predict and bundles.

``run_cdi_example`` is the generic ``ptychopinn.core.run_cdi_example`` bound to this
backend (``ptychopinn.tf.backend``).

The surface is the PyTorch backend's (INTERFACES.md "Backends"); arrays cross it
channels-last as NumPy ``(B, N, N, C)``.

Bundles (``wts.h5.zip``, via ``ptychopinn.data.bundle``): ``manifest.json`` (backend,
the full TrainingConfig, s0, norm factor, N, gridsize, versions, layer plan),
``weights.weights.h5`` (Keras native, HDF5: no code is ever deserialised — the model
is rebuilt from the manifest's config), ``portable.npz`` (canonical names/layouts)
and ``probe.npy``. Loading is strict and safe: member hashes are verified, pickles
refused, every weight checked for name/shape/finiteness, and the native weights must
agree with ``portable.npz``. A PyTorch bundle loads through ``portable.npz``.
"""

from __future__ import annotations

import io
import math
import tempfile
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from ptychopinn.config import TrainingConfig, layer_plan
from ptychopinn.core import check_data, stitch_at_group_centres
from ptychopinn.core.constants import BUNDLE_NAME, PORTABLE_MEMBER, PROBE_MEMBER
from ptychopinn.core.errors import ModelMismatchError
from ptychopinn.data import BundleError, GroupedData, read_bundle, write_bundle
from ptychopinn.data.bundle import load_portable, save_portable

from .model import PtychoModel, build_model
from .weights import export_weights, import_weights

__all__ = [
    "BACKEND_NAME",
    "BUNDLE_NAME",
    "load_bundle",
    "predict",
    "save_bundle",
    "stitch",
]

BACKEND_NAME = "tensorflow"
NATIVE_MEMBER = "weights.weights.h5"
_PORTABLE_ATOL = 0.0


# ------------------------------------------------------------------------ predict
def _as_model(model: Any) -> PtychoModel:
    inner = getattr(model, "model", model)  # a TrainResult works too
    if not isinstance(inner, PtychoModel):
        raise TypeError(f"expected a ptychopinn.tf PtychoModel, got {type(model).__name__}")
    return inner


def _inference_fn(net: PtychoModel) -> Any:
    """A traced-once (per model) inference function over any batch size."""
    fn = net.metadata.get("_inference_fn")
    if fn is None:
        n, c = net.N, net.gridsize**2
        d2o = net.diffraction_to_obj

        @tf.function(
            input_signature=[
                tf.TensorSpec((None, n, n, c), tf.float32),
                tf.TensorSpec((None, 1, 2, c), tf.float32),
            ],
            reduce_retracing=True,
        )
        def fn(x: tf.Tensor, rel: tf.Tensor) -> tf.Tensor:
            return d2o([x, rel], training=False)

        net.metadata["_inference_fn"] = fn
    return fn


def predict(
    model: Any, data: GroupedData, batch_size: int | None = None, *, progress: bool = False
) -> np.ndarray:
    """Object patches for every group: ``(B, N, N, 1)`` complex64 (the inference path).

    Streams ``batch_size`` groups at a time (default 64): memory is the output plus
    one batch. ``progress`` shows a tqdm progress bar over the batches.
    """
    net = _as_model(model)
    check_data(data, net.config, "data")
    bs = int(batch_size) if batch_size else 64
    if bs < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    fn = _inference_fn(net)
    out = np.empty((len(data), data.N, data.N, 1), dtype=np.complex64)
    starts = range(0, len(data), bs)
    for start in tqdm(starts, desc="predict", unit="batch", disable=not progress):
        stop = min(start + bs, len(data))
        x = np.ascontiguousarray(data.X[start:stop], dtype=np.float32)
        rel = np.ascontiguousarray(data.coords_relative[start:stop], dtype=np.float32)
        out[start:stop] = fn(tf.constant(x), tf.constant(rel)).numpy()
    return out


# ------------------------------------------------------------------------ bundles
def _versions() -> dict[str, str]:
    versions = {"tensorflow": tf.__version__}
    for dist in ("ptycho-tf", "ptycho-config", "ptycho-data", "keras"):
        try:
            versions[dist] = _dist_version(dist)
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            versions[dist] = "unknown"
    return versions


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _training_config(net: PtychoModel) -> TrainingConfig:
    stored = net.metadata.get("training_config")
    if stored is not None:
        return TrainingConfig.from_dict(stored)
    return TrainingConfig(
        model=net.config,
        probe_trainable=net.probe_trainable,
        intensity_scale_trainable=net.intensity_scale_trainable,
        backend=BACKEND_NAME,
    )


def _native_bytes(net: PtychoModel) -> bytes:
    with tempfile.TemporaryDirectory(prefix="ptychopinn-tf-") as tmp:
        path = Path(tmp) / NATIVE_MEMBER
        net.autoencoder.save_weights(path)
        return path.read_bytes()


def save_bundle(model: Any, path: str | Path) -> Path:
    """Write ``wts.h5.zip``: manifest, ``weights.weights.h5``, ``portable.npz``, ``probe.npy``.

    Atomic (temporary file + rename, via ``ptychopinn.data.bundle.write_bundle``): an
    existing bundle at ``path`` is replaced only by a complete new one.
    """
    net = _as_model(model)
    tc = _training_config(net)
    portable = export_weights(net)
    manifest = {
        "backend": BACKEND_NAME,
        "config": tc.to_dict(),
        "intensity_scale": float(net.intensity_scale),
        "intensity_scale_trained": float(math.exp(float(portable["log_scale"]))),
        "norm_factor": float(net.norm_factor),
        "N": net.N,
        "gridsize": net.gridsize,
        "package_versions": _versions(),
        "layer_plan": layer_plan(net.config).to_dict(),
    }
    members = {
        NATIVE_MEMBER: _native_bytes(net),
        PORTABLE_MEMBER: save_portable(portable),
        PROBE_MEMBER: _npy_bytes(portable["probe"]),
    }
    return write_bundle(path, manifest, members)


def _manifest_float(manifest: dict[str, Any], key: str, path: Path) -> float:
    try:
        value = float(manifest[key])
    except (KeyError, TypeError, ValueError):
        raise BundleError(f"{path}: manifest key {key!r} is missing or not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise BundleError(f"{path}: manifest key {key!r} must be finite and > 0, got {value}")
    return value


def _load_native(net: PtychoModel, data: bytes, path: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="ptychopinn-tf-") as tmp:
        file = Path(tmp) / NATIVE_MEMBER
        file.write_bytes(data)
        try:
            net.autoencoder.load_weights(file)
        except Exception as exc:  # h5py/Keras raise many types for a bad file
            raise BundleError(
                f"{path}: member {NATIVE_MEMBER!r} does not fit this model: {type(exc).__name__}: {exc}"
            ) from None


def load_bundle(
    path: str | Path, *, expect_N: int | None = None, expect_gridsize: int | None = None
) -> PtychoModel:
    """Load a bundle written by either backend (PyTorch ones through ``portable.npz``).

    Strict and safe: hashes verified and pickles refused (``read_bundle``), the model
    rebuilt from the manifest's config (no code deserialised), every canonical weight
    checked, native weights cross-checked against ``portable.npz``. ``expect_N`` /
    ``expect_gridsize`` turn a mismatch with the data into an error at load time.

    Raises:
        FileNotFoundError: no file at ``path``.
        BundleError: corrupt, truncated, tampered, pickled or inconsistent bundle.
        ModelMismatchError: weights that do not fit the configured model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model bundle not found: {path}")
    bundle = read_bundle(path)
    manifest = bundle.manifest
    backend = manifest.get("backend")
    try:
        config = TrainingConfig.from_dict(manifest["config"])
    except KeyError:
        raise BundleError(f"{path}: manifest has no 'config'") from None
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{path}: manifest 'config' is invalid: {exc}") from None
    mc = config.model
    for key, want in (("N", expect_N), ("gridsize", expect_gridsize)):
        have = getattr(mc, key)
        if manifest.get(key, have) != have:
            raise BundleError(
                f"{path}: manifest {key}={manifest.get(key)} disagrees with its config"
            )
        if want is not None and want != have:
            raise ModelMismatchError(
                f"{path}: the bundle was trained with {key}={have}, but {key}={want} was expected"
            )
    s0 = _manifest_float(manifest, "intensity_scale", path)
    nf = _manifest_float(manifest, "norm_factor", path)
    if PORTABLE_MEMBER not in bundle.members:
        raise BundleError(
            f"{path}: a {backend!r} bundle without {PORTABLE_MEMBER!r} cannot be loaded by the "
            f"TensorFlow backend; the TensorFlow ('tensorflow') and PyTorch ('pytorch') backends "
            f"exchange weights only through {PORTABLE_MEMBER!r}"
        )
    portable = load_portable(bundle.members[PORTABLE_MEMBER])
    net = build_model(
        mc,
        None,
        s0,
        nf,
        probe_trainable=config.probe_trainable,
        intensity_scale_trainable=config.intensity_scale_trainable,
        seed=config.seed,
    )
    net.metadata["training_config"] = config.to_dict()
    net.metadata["source_backend"] = backend
    try:
        import_weights(net, portable)
    except ModelMismatchError as exc:
        raise ModelMismatchError(f"{path}: {exc}") from None
    if backend == BACKEND_NAME:
        if NATIVE_MEMBER not in bundle.members:
            raise BundleError(f"{path}: member {NATIVE_MEMBER!r} is missing")
        _load_native(net, bundle.members[NATIVE_MEMBER], path)
        native = export_weights(net)
        for name, value in portable.items():
            if not np.array_equal(native[name], value):
                raise BundleError(
                    f"{path}: members {NATIVE_MEMBER!r} and {PORTABLE_MEMBER!r} disagree on {name!r}"
                )
    return net


#: ``stitch(patches, data, crop)``: the patches at the group centres (``ptychopinn.core``).
stitch = stitch_at_group_centres
