"""Probe tools: default probe, normalisation (METHOD.md §4) and probe-size inference."""

from __future__ import annotations

import zipfile
from os import PathLike
from pathlib import Path

import numpy as np
from scipy import ndimage

from ptychopinn.data.errors import DataContractError
from ptychopinn.data.physics import probe_mask

__all__ = ["default_probe", "infer_probe_size", "normalise_probe"]


def default_probe(N: int, defocus: float = 0.0) -> np.ndarray:
    """Return the default (N, N) complex64 probe: a σ=1-smoothed disk of radius ≈ 0.17·N.

    The disk is the outer product of a Gaussian window (std N/(0.7·π²))
    thresholded at half its maximum. ``defocus`` adds a quadratic phase
    ``π·defocus·(r/(N/4))²`` rad (r in px from the centre; ``defocus`` radians/π at
    r = N/4): a real, centrosymmetric probe cannot tell a patch from its conjugate
    twin ``conj(O(-r))`` from one diffraction pattern, a curved wavefront can.
    """
    if N < 4:
        raise ValueError(f"N must be >= 4, got {N}")
    if not np.isfinite(defocus):
        raise ValueError(f"defocus must be finite, got {defocus}")
    std = N / (0.7 * np.pi**2)
    t = np.arange(N) - (N - 1) / 2
    window = np.exp(-(t**2) / (2 * std**2))
    disk = (np.outer(window, window) > 0.5).astype(np.float64)
    probe = ndimage.gaussian_filter(disk, sigma=1.0).astype(np.complex128)
    if defocus:
        r2 = (t[:, None] ** 2 + t[None, :] ** 2) / (N / 4) ** 2
        probe = probe * np.exp(1j * np.pi * defocus * r2)
    return probe.astype(np.complex64)


def normalise_probe(probe: np.ndarray, probe_scale: float = 4.0) -> np.ndarray:
    """Return ``P / (probe_scale · mean(|M·P|))`` (N, N) complex64, M the N/4 disk mask."""
    probe = np.asarray(probe)
    if probe.ndim != 2 or probe.shape[0] != probe.shape[1]:
        raise ValueError(f"probe must be square (N, N), got {probe.shape}")
    if probe_scale <= 0:
        raise ValueError(f"probe_scale must be > 0, got {probe_scale}")
    norm = float(np.mean(np.abs(probe.astype(np.complex128) * probe_mask(probe.shape[0]))))
    if not np.isfinite(norm) or norm <= 0:
        raise ValueError("probe is zero inside the N/4 disk mask; cannot normalise it")
    return (probe.astype(np.complex128) / (probe_scale * norm)).astype(np.complex64)


def _npy_member_shape(archive: zipfile.ZipFile, member: str) -> tuple[int, ...]:
    """Read only the .npy header of an NPZ member and return its shape."""
    with archive.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, _ = np.lib.format.read_array_header_2_0(fh)
    return tuple(int(s) for s in shape)


def infer_probe_size(path: str | PathLike[str]) -> int:
    """Return the probe side N of an NPZ or HDF5 file without loading the diffraction stack."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
                for key in ("probeGuess", "probe"):
                    if f"{key}.npy" in names:
                        return int(_npy_member_shape(archive, f"{key}.npy")[-1])
                for key in ("diffraction", "diff3d"):
                    if f"{key}.npy" in names:
                        shape = _npy_member_shape(archive, f"{key}.npy")
                        if len(shape) not in (3, 4) or min(shape) == 0:
                            raise DataContractError(
                                path, key, "a (M, N, N) or (H, W, M) stack", f"shape {shape}"
                            )
                        return int(shape[1] if shape[1] == shape[2] else shape[0])
            raise DataContractError(path, "probeGuess", "a probe or diffraction array", "neither")
        import h5py

        with h5py.File(path, "r") as f:
            for key in ("probe", "raw_data/probeGuess", "raw_data/diffraction"):
                if key in f:
                    return int(f[key].shape[-1])
        raise DataContractError(path, "probe", "a probe dataset", "none")
    except DataContractError:
        raise
    except Exception as exc:  # malformed files fail in many library-specific ways
        raise DataContractError(path, None, "a readable NPZ or HDF5 file", repr(exc)) from None
