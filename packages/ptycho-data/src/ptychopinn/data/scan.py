"""ScanData: one validated raw ptychographic scan (METHOD.md §2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ptychopinn.data.errors import DataContractError

__all__ = ["ScanData", "describe"]


def describe(value: Any) -> str:
    """Return a short 'shape dtype' description of an array-like for error messages."""
    arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
    return f"shape {tuple(arr.shape)} dtype {arr.dtype}"


def _all_finite(arr: np.ndarray) -> bool:
    """Return True when no element is NaN or inf (one pass: a float64 sum propagates them)."""
    acc = np.complex128 if arr.dtype.kind == "c" else np.float64
    return bool(np.isfinite(np.sum(arr, dtype=acc)))


def _real_array(
    value: Any, source: str, key: str, shape: tuple[int | None, ...], dtype: type
) -> np.ndarray:
    """Validate a finite real array of the given shape pattern (None = any) and cast it."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged or otherwise unconvertible input
        raise DataContractError(
            source, key, f"a numeric array of rank {len(shape)}", repr(exc)
        ) from None
    expected = f"real array of shape {_pattern(shape)}"
    if arr.dtype.kind not in "biuf" or arr.ndim != len(shape):
        raise DataContractError(source, key, expected, describe(arr))
    if any(s is not None and s != a for s, a in zip(shape, arr.shape)) or arr.size == 0:
        raise DataContractError(source, key, expected + " (non-empty)", describe(arr))
    arr = arr.astype(dtype, copy=False)
    if arr.dtype.kind == "f" and not _all_finite(arr):
        raise DataContractError(source, key, "finite values", f"NaN or inf in {describe(arr)}")
    return arr


def _complex_array(value: Any, source: str, key: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """Validate a finite (real or complex) array of the given shape pattern, cast to complex64."""
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise DataContractError(
            source, key, f"a numeric array of rank {len(shape)}", repr(exc)
        ) from None
    expected = f"complex array of shape {_pattern(shape)}"
    if arr.dtype.kind not in "biufc" or arr.ndim != len(shape) or arr.size == 0:
        raise DataContractError(source, key, expected, describe(arr))
    if any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        raise DataContractError(source, key, expected, describe(arr))
    arr = arr.astype(np.complex64, copy=False)
    if not _all_finite(arr):
        raise DataContractError(source, key, "finite values", f"NaN or inf in {describe(arr)}")
    return arr


def _pattern(shape: tuple[int | None, ...]) -> str:
    """Format a shape pattern such as (M, 64, 64)."""
    names = iter("MHWK")
    return "(" + ", ".join(str(s) if s is not None else next(names) for s in shape) + ")"


@dataclass
class ScanData:
    """A validated raw scan: positions (M,) px, amplitude (M, N, N), probe (N, N), optional object.

    Construction coerces dtypes (float64 positions, float32 amplitude, complex64
    probe/object/Y, int64 scan_index) and raises :class:`DataContractError` on any
    contract violation. ``metadata['source']`` (if set) names the file in errors.
    """

    xcoords: np.ndarray
    ycoords: np.ndarray
    diffraction: np.ndarray
    probe: np.ndarray
    object: np.ndarray | None = None
    scan_index: np.ndarray | None = None
    xcoords_start: np.ndarray | None = None
    ycoords_start: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    Y: np.ndarray | None = None

    def __post_init__(self) -> None:
        """Validate and coerce every field."""
        if not isinstance(self.metadata, dict):
            raise DataContractError(None, "metadata", "a dict", type(self.metadata).__name__)
        src = str(self.metadata.get("source", "<in-memory ScanData>"))
        diff = np.asarray(self.diffraction)
        if diff.dtype.kind == "c":
            raise DataContractError(src, "diffraction", "real amplitude (M, N, N)", describe(diff))
        diff = _real_array(diff, src, "diffraction", (None, None, None), np.float32)
        m, n, n2 = diff.shape
        if n != n2:
            raise DataContractError(src, "diffraction", "square patterns (M, N, N)", describe(diff))
        if diff.min() < 0:
            raise DataContractError(
                src, "diffraction", "non-negative amplitude", f"min {diff.min()}"
            )
        self.diffraction = diff
        self.xcoords = _real_array(self.xcoords, src, "xcoords", (m,), np.float64)
        self.ycoords = _real_array(self.ycoords, src, "ycoords", (m,), np.float64)
        self.xcoords_start = (
            self.xcoords.copy()
            if self.xcoords_start is None
            else _real_array(self.xcoords_start, src, "xcoords_start", (m,), np.float64)
        )
        self.ycoords_start = (
            self.ycoords.copy()
            if self.ycoords_start is None
            else _real_array(self.ycoords_start, src, "ycoords_start", (m,), np.float64)
        )
        if self.scan_index is None:
            self.scan_index = np.zeros(m, dtype=np.int64)
        else:
            idx = np.asarray(self.scan_index)
            if idx.dtype.kind not in "biu" or idx.shape != (m,):
                raise DataContractError(
                    src, "scan_index", f"integer array of shape ({m},)", describe(idx)
                )
            self.scan_index = idx.astype(np.int64, copy=False)
        probe = np.asarray(self.probe)
        if probe.shape != (n, n):
            raise DataContractError(
                src,
                "probeGuess",
                f"probe of shape ({n}, {n}) matching the patterns",
                describe(probe),
            )
        self.probe = _complex_array(probe, src, "probeGuess", (n, n))
        if self.object is not None:
            self.object = _complex_array(self.object, src, "objectGuess", (None, None))
        if self.Y is not None:
            self.Y = _complex_array(self.Y, src, "Y", (m, n, n))

    @property
    def n_positions(self) -> int:
        """Number of scan positions M."""
        return int(self.diffraction.shape[0])

    @property
    def N(self) -> int:
        """Pattern side N in pixels."""
        return int(self.diffraction.shape[1])

    def subset(self, indices: np.ndarray) -> ScanData:
        """Return a new ScanData holding the positions ``indices`` (K,) in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        return ScanData(
            xcoords=self.xcoords[idx],
            ycoords=self.ycoords[idx],
            diffraction=self.diffraction[idx],
            probe=self.probe,
            object=self.object,
            scan_index=self.scan_index[idx],
            xcoords_start=self.xcoords_start[idx],
            ycoords_start=self.ycoords_start[idx],
            metadata=dict(self.metadata),
            Y=None if self.Y is None else self.Y[idx],
        )
