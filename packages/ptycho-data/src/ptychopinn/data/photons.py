"""The photon-count policy: how many photons per pattern the intensity scale assumes.

One function decides it for every caller (``group``, the application, the generic
``run_cdi_example``, the demo and the ptychodus adapter): a count given explicitly
wins, else the scan's own ``metadata["nphotons"]`` (written by ``simulate`` and by
files that record it), else the mean measured counts per pattern, mean_m Σ_HW amp²,
with a :class:`PhotonCountWarning` saying so. The intensity scale is then
``sqrt(nphotons) / (N/2)`` (METHOD.md §4).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ptychopinn.data.errors import DataContractError
from ptychopinn.data.scan import ScanData

__all__ = ["PhotonCount", "PhotonCountWarning", "pattern_counts", "photon_count"]

PhotonSource = Literal["given", "metadata", "mean counts"]


class PhotonCountWarning(UserWarning):
    """The photon count was not given nor recorded: the mean measured counts are used."""


@dataclass(frozen=True)
class PhotonCount:
    """A photon count per pattern and where it came from."""

    value: float
    """Mean photons per diffraction pattern, finite and > 0."""
    source: PhotonSource
    """``"given"`` (the caller's value), ``"metadata"`` (the scan's ``nphotons``) or
    ``"mean counts"`` (mean_m Σ_HW amplitude² of the scan)."""

    def describe(self) -> str:
        """One line for logs and reports, e.g. ``nphotons 1e+06 (from the data's metadata)``."""
        where = {
            "given": "as configured",
            "metadata": "from the data's metadata",
            "mean counts": "the mean measured counts per pattern",
        }[self.source]
        return f"nphotons {self.value:.6g} ({where})"


def pattern_counts(diffraction: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Counts per pattern, Σ_HW amplitude², of an amplitude stack (M, N, N) -> (M,) float64.

    Accumulated in float64 a chunk at a time, so memory does not grow by a float64
    copy of the whole stack (integer input is safe).
    """
    out = np.empty(diffraction.shape[0], dtype=np.float64)
    for i in range(0, diffraction.shape[0], chunk):
        block = diffraction[i : i + chunk].astype(np.float64)
        out[i : i + chunk] = np.einsum("mij,mij->m", block, block)
    return out


def _positive(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def photon_count(
    scan: ScanData, nphotons: float | None = None, counts: np.ndarray | None = None
) -> PhotonCount:
    """Decide the photon count per pattern for ``scan`` (the module's policy).

    ``nphotons`` (e.g. ``TrainingConfig.nphotons``) wins when given; None means "from
    the data": ``scan.metadata["nphotons"]``, else the mean counts per pattern of the
    whole scan (with a :class:`PhotonCountWarning`). ``counts``: the scan's
    :func:`pattern_counts`, when the caller has them already (not computed twice).

    Raises:
        DataContractError: ``nphotons`` or the metadata value is not a finite number
            > 0, or the scan's patterns hold no counts at all.
    """
    source = scan.metadata.get("source")
    if nphotons is not None:
        value = _positive(nphotons)
        if value is None:
            raise DataContractError(source, "nphotons", "a finite number > 0", repr(nphotons))
        return PhotonCount(value, "given")
    if "nphotons" in scan.metadata:
        recorded = scan.metadata["nphotons"]
        value = _positive(recorded)
        if value is None:
            raise DataContractError(
                source, "metadata.nphotons", "a finite number > 0", repr(recorded)
            )
        return PhotonCount(value, "metadata")
    mean = float(np.mean(pattern_counts(scan.diffraction) if counts is None else counts))
    if not (math.isfinite(mean) and mean > 0):
        raise DataContractError(
            source, "diffraction", "patterns with counts (Σ amplitude² > 0)", f"mean {mean}"
        )
    warnings.warn(
        f"{source or 'the data'}: no photon count given (training.nphotons) nor recorded "
        f"(metadata 'nphotons'); using the mean measured counts per pattern, {mean:.6g}",
        PhotonCountWarning,
        stacklevel=2,
    )
    return PhotonCount(mean, "mean counts")
