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

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from ptychopinn.config import TrainingConfig
from ptychopinn.core import check_data, stitch_at_group_centres
from ptychopinn.core.bundle import (
    build_manifest,
    check_native_matches_portable,
    open_model_bundle,
    package_versions,
    write_model_bundle,
)
from ptychopinn.core.constants import BUNDLE_NAME
from ptychopinn.core.errors import ModelMismatchError
from ptychopinn.data import BundleError, GroupedData

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

    Atomic (temporary file + rename): an existing bundle at ``path`` is replaced only
    by a complete new one. Manifest and members: ``ptychopinn.core.bundle``.
    """
    net = _as_model(model)
    portable = export_weights(net)
    manifest = build_manifest(
        backend=BACKEND_NAME,
        config=_training_config(net),
        intensity_scale=float(net.intensity_scale),
        intensity_scale_trained=math.exp(float(portable["log_scale"])),
        norm_factor=float(net.norm_factor),
        versions=package_versions({"tensorflow": tf.__version__}, ("ptycho-tf", "keras")),
    )
    return write_model_bundle(path, manifest, NATIVE_MEMBER, _native_bytes(net), portable)


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

    Strict and safe (``ptychopinn.core.bundle.open_model_bundle``): hashes verified and
    pickles refused, the model rebuilt from the manifest's config (no code
    deserialised), every canonical weight checked, native weights cross-checked
    against ``portable.npz``. ``expect_N`` / ``expect_gridsize`` turn a mismatch with
    the data into an error at load time.

    Raises:
        FileNotFoundError: no file at ``path``.
        BundleError: corrupt, truncated, tampered, pickled or inconsistent bundle.
        ModelMismatchError: weights that do not fit the configured model.
    """
    loaded = open_model_bundle(
        path,
        backend=BACKEND_NAME,
        native_member=NATIVE_MEMBER,
        expect_N=expect_N,
        expect_gridsize=expect_gridsize,
    )
    config = loaded.config
    net = build_model(
        config.model,
        None,
        loaded.intensity_scale,
        loaded.norm_factor,
        probe_trainable=config.probe_trainable,
        intensity_scale_trainable=config.intensity_scale_trainable,
        seed=config.seed,
    )
    net.metadata["training_config"] = config.to_dict()
    net.metadata["source_backend"] = loaded.backend
    try:
        import_weights(net, loaded.portable)
    except ModelMismatchError as exc:
        raise ModelMismatchError(f"{loaded.path}: {exc}") from None
    if loaded.native is not None:
        _load_native(net, loaded.native, loaded.path)
        check_native_matches_portable(
            export_weights(net), loaded.portable, loaded.path, NATIVE_MEMBER
        )
    return net


#: ``stitch(patches, data, crop)``: the patches at the group centres (``ptychopinn.core``).
stitch = stitch_at_group_centres
