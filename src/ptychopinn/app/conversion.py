"""``ptychopinn convert``: between upstream NPZ, legacy NPZ layouts and ptychodus products,
and to ptychodus's measured-data file ``diffraction.h5`` (or a whole ptychodus workflow
folder: ``diffraction.h5`` + ``product.h5``, what ``ptychodus -b train`` reads)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

__all__ = [
    "DIFFRACTION_FILE_NAME",
    "FORMATS",
    "PRODUCT_FILE_NAME",
    "convert",
    "detect_format",
    "save_legacy_npz",
    "save_ptychodus_diffraction",
    "save_ptychodus_folder",
]

FORMATS = ("npz", "legacy-npz", "product", "diffraction", "ptychodus")
#: ptychodus's names in a workflow folder (``ptychodus.api.io.StandardFileLayout``).
DIFFRACTION_FILE_NAME = "diffraction.h5"
PRODUCT_FILE_NAME = "product.h5"
#: h·c in eV·m: the photon wavelength is this over the photon energy.
_HC_EV_M = 1.239841984e-6
_PRODUCT_SUFFIXES = (".h5", ".hdf5")


def detect_format(path: Path) -> str:
    """'product' for HDF5 files and NPZ products, 'npz' for upstream/legacy scan NPZs."""
    path = Path(path)
    if path.suffix.lower() in _PRODUCT_SUFFIXES:
        return "product"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = {n.removesuffix(".npy") for n in archive.namelist()}
        if "probe_position_x_m" in names:
            return "product"
    return "npz"


def save_legacy_npz(scan, path: Path) -> Path:
    """Write the legacy upstream layout: ``diff3d`` (M, N, N) amplitude plus the scan keys."""
    from ptychopinn.data import save_npz

    return save_npz(scan, path, diffraction_key="diff3d")


def save_ptychodus_diffraction(scan: Any, path: Path, **metadata: Any) -> Path:
    """Write ``scan`` as ptychodus's assembled diffraction file (``diffraction.h5``).

    The datasets and attributes of ``ptychodus.api.io.save_diffraction_data``:
    ``indexes`` (M,) = 0..M-1 (the probe-position indexes :func:`ptychopinn.data.
    save_product` writes, so the two files pair), ``patterns`` (M, N, N) float32
    **intensities** (amplitude squared: ptychodus holds detector counts), ``bad_pixels``
    (N, N) all False, and the detector pixel size (attributes of ``patterns``) that makes
    the far-field object pixel ``wavelength · distance / (N · detector pixel)`` equal
    the product's object pixel size. ``metadata``: as :func:`ptychopinn.data.
    product_from_scan` (e.g. ``object_pixel_width_m``).
    """
    import h5py

    from ptychopinn.data import atomic_write, product_from_scan

    product = product_from_scan(scan, **metadata)
    wavelength_m = _HC_EV_M / float(product.metadata["probe_energy_eV"])
    distance_m = float(product.metadata["detector_object_distance_m"])
    n = scan.N
    amplitude = np.asarray(scan.diffraction, dtype=np.float64)
    path = Path(path)
    with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("indexes", data=np.arange(scan.n_positions, dtype=np.int64))
        patterns = f.create_dataset("patterns", data=np.square(amplitude).astype(np.float32))
        patterns.attrs["detector_pixel_width_m"] = np.float64(
            wavelength_m * distance_m / (n * product.object_pixel_width_m)
        )
        patterns.attrs["detector_pixel_height_m"] = np.float64(
            wavelength_m * distance_m / (n * product.object_pixel_height_m)
        )
        f.create_dataset("bad_pixels", data=np.zeros((n, n), dtype=bool))
    return path


def save_ptychodus_folder(scan: Any, directory: Path, **metadata: Any) -> Path:
    """Write a ptychodus workflow folder: ``diffraction.h5`` + ``product.h5`` (the input
    of ``ptychodus -b train`` / ``-b reconstruct``); returns the folder."""
    from ptychopinn.data import save_product

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory}: a ptychodus output is a folder; found a file")
    save_ptychodus_diffraction(scan, directory / DIFFRACTION_FILE_NAME, **metadata)
    save_product(scan, directory / PRODUCT_FILE_NAME, **metadata)
    return directory


def convert(
    source: Path,
    target: Path,
    to: str | None = None,
    measurement: str | None = None,
    pixel_size_m: float | None = None,
) -> Path:
    """Convert `source` to `target`; the format is `to`, else guessed from the target suffix.

    NPZ inputs may use the legacy layouts (``diff3d``, (H, W, M), intensity); they are
    written canonically. What the diffraction holds is the file's own ``measurement``
    key (as ``train`` reads it), else 'amplitude'; ``measurement`` is for files that do
    not say, and contradicting the file's key is an error, never a silent relabel.
    Products keep their reconstruction when converted to another product container.
    """
    from ptychopinn.data import (
        check_input_file,
        declared_measurement,
        load,
        load_product,
        save_npz,
        save_product,
    )

    source, target = check_input_file(source), Path(target)
    if to is None and target.name == DIFFRACTION_FILE_NAME:
        to = "diffraction"  # ptychodus's name for measured data, never a product
    if to is None:
        to = "product" if target.suffix.lower() in _PRODUCT_SUFFIXES else "npz"
    if to not in FORMATS:
        raise InputError(f"unknown output format {to!r}; choose {', '.join(FORMATS)}")
    if to in ("npz", "legacy-npz") and target.suffix.lower() != ".npz":
        raise InputError(f"{target}: an {to} output needs the .npz suffix")
    if to == "diffraction" and target.suffix.lower() not in _PRODUCT_SUFFIXES:
        raise InputError(f"{target}: a diffraction output needs the .h5 suffix")
    if source.resolve() == target.resolve():
        raise InputError(f"{target}: the output would overwrite the input")
    geometry: dict[str, Any] = (
        {} if pixel_size_m is None else {"object_pixel_width_m": float(pixel_size_m)}
    )
    if measurement is not None:
        if detect_format(source) == "product":
            raise InputError(
                f"{source}: --measurement applies to NPZ scans; a product holds amplitudes"
            )
        declared = declared_measurement(source)
        if declared is not None and declared != measurement:
            raise InputError(
                f"{source}, key 'measurement': expected {measurement!r} (--measurement), "
                f"found {declared!r}; drop --measurement to use the file's own key, or fix the file"
            )
    if to == "product" and detect_format(source) == "product":
        product = load_product(source)
        return save_product(product, target)
    scan = load(source, measurement)
    if to == "diffraction":
        return save_ptychodus_diffraction(scan, target, **geometry)
    if to == "ptychodus":
        return save_ptychodus_folder(scan, target, **geometry)
    if to == "product":
        return save_product(scan, target, **geometry)
    if pixel_size_m is not None:
        scan.metadata["object_pixel_width_m"] = float(pixel_size_m)
    if to == "legacy-npz":
        return save_legacy_npz(scan, target)
    return save_npz(scan, target)
