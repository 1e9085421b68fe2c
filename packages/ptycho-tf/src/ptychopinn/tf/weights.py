"""Portable weights: every parameter under its canonical name and layout (INTERFACES.md).

Canonical layouts: conv ``<name>.weight`` (out, in, kh, kw) float32 (Keras stores
(kh, kw, in, out), so it is transposed), ``<name>.bias`` (out,), ``log_scale`` ()
float32 and ``probe`` (N, N) complex64.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ptychopinn.core.errors import ModelMismatchError

from .model import PtychoModel

__all__ = ["export_weights", "import_weights"]


def export_weights(model: PtychoModel) -> dict[str, np.ndarray]:
    """Return every canonical parameter of ``model`` as a NumPy array (copies)."""
    out: dict[str, np.ndarray] = {}
    for spec in model.plan.conv_layers():
        kernel, bias = model.conv(spec.name).get_weights()
        out[f"{spec.name}.weight"] = np.ascontiguousarray(
            np.transpose(kernel, (3, 2, 0, 1)), dtype=np.float32
        )
        out[f"{spec.name}.bias"] = np.asarray(bias, dtype=np.float32)
    out["log_scale"] = np.asarray(model.scaler.log_scale.numpy(), dtype=np.float32).reshape(())
    out["probe"] = model.probe
    return out


def import_weights(
    model: PtychoModel, weights: Mapping[str, np.ndarray], strict: bool = True
) -> None:
    """Set ``model``'s parameters from canonical names and layouts.

    Every expected key must be present with its exact shape and finite values;
    with ``strict`` an unexpected key is an error too. Nothing is assigned unless
    every check passes.
    """
    expected = model.plan.parameter_shapes()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or (strict and unexpected):
        raise ModelMismatchError(
            f"portable weights do not match the model (N={model.N}, gridsize={model.gridsize}): "
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
        if not np.all(np.isfinite(value)):
            raise ModelMismatchError(f"portable weight {name!r} contains NaN or infinite values")
        if name != "probe" and np.iscomplexobj(value):
            raise ModelMismatchError(f"portable weight {name!r} must be real, found {value.dtype}")
        checked[name] = value
    for spec in model.plan.conv_layers():
        kernel = np.transpose(checked[f"{spec.name}.weight"], (2, 3, 1, 0)).astype(np.float32)
        model.conv(spec.name).set_weights([kernel, checked[f"{spec.name}.bias"].astype(np.float32)])
    model.scaler.log_scale.assign(np.float32(checked["log_scale"]))
    model.illumination.set_probe(checked["probe"].astype(np.complex64))
