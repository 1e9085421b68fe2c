"""The backend-neutral workflow: input checks, grouping, stitching, ``run_cdi_example``.

Written once for every backend: a backend supplies ``train`` and ``predict`` (the
:class:`~ptychopinn.core.Backend` protocol, whose ``run_cdi_example`` method calls
:func:`run_cdi_example`) and re-exports :func:`run_cdi_example` bound to itself
(:func:`bind_run_cdi_example`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ptychopinn.config import ExecutionConfig, ModelConfig, TrainingConfig
from ptychopinn.config.configs import STITCH_WEIGHTS
from ptychopinn.data import GroupedData, ScanData, group_for_config, photon_count
from ptychopinn.stitch import Stitched, evaluate_if_possible, probe_weight, reassemble

from .errors import DataError, ModelMismatchError
from .results import CDIResults

if TYPE_CHECKING:
    from .protocol import Backend

__all__ = [
    "bind_run_cdi_example",
    "check_data",
    "group_input",
    "run_cdi_example",
    "stitch_at_group_centres",
    "stitch_phase_weight",
]

CDIOutput = tuple[np.ndarray | None, np.ndarray | None, CDIResults]


def check_data(data: GroupedData, model: ModelConfig, name: str = "data") -> None:
    """Raise unless ``data`` is usable by a model of configuration ``model``.

    Raises:
        DataError: not a GroupedData, no groups, non-finite ``X``/``coords_relative``/
            ``probe``, or an intensity scale that is not finite and > 0.
        ModelMismatchError: the data's N or channel count (gridsize²) differs from the model's.
    """
    if not isinstance(data, GroupedData):
        raise DataError(f"{name} must be a ptychopinn.data.GroupedData, got {type(data).__name__}")
    if len(data) == 0:
        raise DataError(f"{name} holds no groups")
    n, c = data.X.shape[1], data.X.shape[3]
    if n != model.N or c != model.gridsize**2:
        raise ModelMismatchError(
            f"{name} has N={n} and C={c} channels (gridsize {math.isqrt(c)}), but the model "
            f"expects N={model.N} and gridsize={model.gridsize} (C={model.gridsize**2})"
        )
    for key in ("X", "coords_relative", "probe"):
        arr = getattr(data, key)
        if not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise DataError(f"{name}.{key} holds {bad} non-finite values (NaN/inf)")
    if not (math.isfinite(data.intensity_scale) and data.intensity_scale > 0):
        raise DataError(
            f"{name}.intensity_scale must be finite and > 0, got {data.intensity_scale}"
        )


def _check_scan(scan: object) -> None:
    if not isinstance(scan, ScanData):
        raise DataError(f"expected ScanData or GroupedData, got {type(scan).__name__}")
    if not np.all(np.isfinite(scan.diffraction)):
        raise DataError("diffraction holds non-finite values (NaN/inf)")


def group_input(
    scan: ScanData | GroupedData,
    config: TrainingConfig,
    seed: int,
    nphotons: float | None = None,
) -> GroupedData:
    """``scan`` grouped as ``config`` says (``group_for_config``); GroupedData passes through.

    The photon count is ``nphotons`` when given, else ``config.nphotons`` (None: from
    the data, ``ptychopinn.data.photon_count``). Raises DataError for anything but
    ScanData/GroupedData, or for a scan whose diffraction is not finite.
    """
    if isinstance(scan, GroupedData):
        return scan
    _check_scan(scan)
    photons = config.nphotons if nphotons is None else nphotons
    return group_for_config(scan, config.model, config, nphotons=photons, seed=seed)


def stitch_phase_weight(weight: str, data: GroupedData) -> np.ndarray | None:
    """``reassemble``'s ``phase_weight`` for ``InferenceConfig.stitch_weight`` on ``data``.

    ``"probe"``: the probe intensity ``|data.probe|²`` -- the phase is averaged with it
    as weight, the modulus uniformly (METHOD.md §7). ``"uniform"``: None (both uniform).
    Groups of more than one pattern (gridsize > 1) are merged patches whose
    illumination is not one probe: always None.
    """
    if weight not in STITCH_WEIGHTS:
        raise DataError(f"stitch weight must be one of {STITCH_WEIGHTS}, found {weight!r}")
    if weight == "uniform" or data.X.shape[3] != 1:
        return None
    return probe_weight(data.probe)


def stitch_at_group_centres(
    patches: np.ndarray, data: GroupedData, crop: int = 20, weight: str = "probe"
) -> Stitched:
    """Reassemble object patches (B, N, N[, 1]) at the group centres of ``data``.

    The centres are ``data.coords_offsets[:, 0, :, 0]`` (B, 2) [x, y] in object
    pixels; ``crop`` is the central M×M of each patch used (``ptychopinn.stitch.reassemble``);
    ``weight`` is ``InferenceConfig.stitch_weight`` (:func:`stitch_phase_weight`).
    """
    offsets = np.asarray(data.coords_offsets[:, 0, :, 0], dtype=np.float64)
    return reassemble(patches, offsets, crop=crop, phase_weight=stitch_phase_weight(weight, data))


def run_cdi_example(
    backend: Backend,
    train_data: ScanData | GroupedData,
    test_data: ScanData | GroupedData,
    config: TrainingConfig,
    do_stitching: bool = True,
    execution: ExecutionConfig | None = None,
    stitch_crop: int = 20,
) -> CDIOutput:
    """Train with ``backend``, predict on the test scan and (optionally) stitch.

    Scans are grouped with ``config`` (seeds ``config.seed`` and ``config.seed + 1``),
    both at the photon count ``ptychopinn.data.photon_count`` decides for the training
    scan from ``config.nphotons`` (None: the scan's metadata, else its mean counts),
    as ``ptychopinn train`` does;
    ``execution`` (default ``ExecutionConfig()``) goes to training and sets the
    inference batch size. Returns ``(amplitude, phase, results)``: the stitched
    images (None without stitching) and :class:`~ptychopinn.core.CDIResults` with
    ``results["backend"] == backend.name``.
    """
    ex = execution if execution is not None else ExecutionConfig()
    nphotons = config.nphotons
    if not isinstance(train_data, GroupedData):
        _check_scan(train_data)
        nphotons = photon_count(train_data, config.nphotons).value
    train_g = group_input(train_data, config, config.seed, nphotons)
    test_g = group_input(test_data, config, config.seed + 1, nphotons)
    result = backend.train(train_g, test_g, config, ex)
    patches = backend.predict(result.model, test_g, ex.inference_batch_size)
    results: CDIResults = {
        "backend": backend.name,
        "patches": patches,
        "history": result.history,
        "train_result": result,
        "test_data": test_g,
    }
    amplitude = phase = None
    if do_stitching:
        stitched = stitch_at_group_centres(patches, test_g, stitch_crop)
        results["stitched"] = stitched
        amplitude = np.abs(stitched.image)
        phase = np.angle(stitched.image)
        results.update(evaluate_if_possible(stitched, test_g.object))  # type: ignore[typeddict-item]
    return amplitude, phase, results


def bind_run_cdi_example(backend_class: type[Backend]) -> Callable[..., CDIOutput]:
    """:func:`run_cdi_example` bound to a backend class (what each backend re-exports as
    its own ``run_cdi_example``); a fresh, stateless instance is made per call."""

    def bound(*args: Any, **kwargs: Any) -> CDIOutput:
        return run_cdi_example(backend_class(), *args, **kwargs)

    signature = inspect.signature(run_cdi_example)
    bound.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=list(signature.parameters.values())[1:]
    )
    bound.__name__ = bound.__qualname__ = "run_cdi_example"
    bound.__module__ = backend_class.__module__
    bound.__doc__ = (
        f"``ptychopinn.core.run_cdi_example`` with the {backend_class.__name__}.\n\n"
        + (run_cdi_example.__doc__ or "")
    )
    return bound
