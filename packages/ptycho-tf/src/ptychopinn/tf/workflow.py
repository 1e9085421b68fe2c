"""The public workflow of the TensorFlow backend: predict and bundles.

``run_cdi_example`` is the generic ``ptychopinn.core.run_cdi_example`` bound to this
backend (``ptychopinn.tf.backend``).

The surface is the PyTorch backend's (INTERFACES.md "Backends"); arrays cross it
channels-last as NumPy ``(B, N, N, C)``.

Bundles (``wts.h5.zip``, via ``ptychopinn.core.bundle.BundleFormat``): ``manifest.json`` (backend,
the full TrainingConfig, s0, norm factor, N, gridsize, versions, layer plan),
``weights.weights.h5`` (Keras native, HDF5: no code is ever deserialised — the model
is rebuilt from the manifest's config), ``portable.npz`` (canonical names/layouts)
and ``probe.npy``. Loading is strict and safe: member hashes are verified, pickles
refused, every weight checked for name/shape/finiteness, and the native weights must
agree with ``portable.npz``. A PyTorch bundle loads through ``portable.npz``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from ptychopinn.config import TrainingConfig
from ptychopinn.core import check_data, stitch_at_group_centres
from ptychopinn.core.bundle import BundleFormat, LoadedBundle, package_versions
from ptychopinn.core.constants import BUNDLE_NAME
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
class _KerasBundle(BundleFormat[PtychoModel]):
    """The Keras side of a bundle (the rest is ``ptychopinn.core.bundle.BundleFormat``)."""

    # Framework hooks that are the backend's public functions already.
    as_model = staticmethod(_as_model)
    export_weights = staticmethod(export_weights)
    import_weights = staticmethod(import_weights)
    backend = BACKEND_NAME
    native_member = NATIVE_MEMBER

    def versions(self) -> dict[str, str]:
        return package_versions({"tensorflow": tf.__version__}, ("ptycho-tf", "keras"))

    def manifest_values(self, model: PtychoModel) -> tuple[TrainingConfig, float, float]:
        stored = model.metadata.get("training_config")
        config = (
            TrainingConfig.from_dict(stored)
            if stored is not None
            else TrainingConfig(
                model=model.config,
                probe_trainable=model.probe_trainable,
                intensity_scale_trainable=model.intensity_scale_trainable,
                backend=BACKEND_NAME,
            )
        )
        return config, float(model.intensity_scale), float(model.norm_factor)

    def native_bytes(self, model: PtychoModel) -> bytes:
        with tempfile.TemporaryDirectory(prefix="ptychopinn-tf-") as tmp:
            path = Path(tmp) / NATIVE_MEMBER
            model.autoencoder.save_weights(path)
            return path.read_bytes()

    def build(self, loaded: LoadedBundle) -> PtychoModel:
        args, kwargs = loaded.model_arguments()
        net = build_model(*args, **kwargs)
        net.metadata["training_config"] = loaded.config.to_dict()
        net.metadata["source_backend"] = loaded.backend
        return net

    def load_native(self, model: PtychoModel, data: bytes, path: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="ptychopinn-tf-") as tmp:
            file = Path(tmp) / NATIVE_MEMBER
            file.write_bytes(data)
            try:
                model.autoencoder.load_weights(file)
            except Exception as exc:  # h5py/Keras raise many types for a bad file
                raise BundleError(
                    f"{path}: member {NATIVE_MEMBER!r} does not fit this model: "
                    f"{type(exc).__name__}: {exc}"
                ) from None


_BUNDLE = _KerasBundle()
save_bundle = _BUNDLE.save
load_bundle = _BUNDLE.load


#: ``stitch(patches, data, crop)``: the patches at the group centres (``ptychopinn.core``).
stitch = stitch_at_group_centres
