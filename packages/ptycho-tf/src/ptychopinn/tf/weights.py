"""Portable weights: every parameter under its canonical name and layout (INTERFACES.md).

Canonical layouts: conv ``<name>.weight`` (out, in, kh, kw) float32 (Keras stores
(kh, kw, in, out), so it is transposed), ``<name>.bias`` (out,), ``log_scale`` ()
float32 and ``probe`` (N, N) complex64.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ptychopinn.core.bundle import validate_portable

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
    with ``strict`` an unexpected key is an error too
    (``ptychopinn.core.bundle.validate_portable``). Nothing is assigned unless every
    check passes.
    """
    checked = validate_portable(
        weights,
        model.plan.parameter_shapes(),
        model=f"N={model.N}, gridsize={model.gridsize}",
        strict=strict,
    )
    for spec in model.plan.conv_layers():
        kernel = np.transpose(checked[f"{spec.name}.weight"], (2, 3, 1, 0)).astype(np.float32)
        model.conv(spec.name).set_weights([kernel, checked[f"{spec.name}.bias"].astype(np.float32)])
    model.scaler.log_scale.assign(np.float32(checked["log_scale"]))
    model.illumination.set_probe(checked["probe"].astype(np.complex64))
