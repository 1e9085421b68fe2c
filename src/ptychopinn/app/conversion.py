"""``ptychopinn convert``: between upstream NPZ, legacy NPZ layouts and ptychodus products."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = ["FORMATS", "convert", "detect_format", "save_legacy_npz"]

FORMATS = ("npz", "legacy-npz", "product")
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
    if to is None:
        to = "product" if target.suffix.lower() in _PRODUCT_SUFFIXES else "npz"
    if to not in FORMATS:
        raise InputError(f"unknown output format {to!r}; choose {', '.join(FORMATS)}")
    if to in ("npz", "legacy-npz") and target.suffix.lower() != ".npz":
        raise InputError(f"{target}: an {to} output needs the .npz suffix")
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
    if to == "product":
        return save_product(scan, target, **geometry)
    if pixel_size_m is not None:
        scan.metadata["object_pixel_width_m"] = float(pixel_size_m)
    if to == "legacy-npz":
        return save_legacy_npz(scan, target)
    return save_npz(scan, target)
