"""Reading and writing scans: upstream NPZ (DATA-001) and ptychodus HDF5/NPZ products."""

from __future__ import annotations

import json
import logging
import math
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ptychopinn.data.errors import DataContractError
from ptychopinn.data.files import atomic_write, check_input_file
from ptychopinn.data.scan import ScanData, describe

__all__ = [
    "LAYOUT_KEY",
    "Product",
    "declared_measurement",
    "load",
    "load_npz",
    "load_product",
    "product_from_scan",
    "save_npz",
    "save_product",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_INTEGER_AMPLITUDE_MAX = 64.0
_ROOT_REQUIRED = (
    "name",
    "comments",
    "detector_object_distance_m",
    "probe_energy_eV",
    "exposure_time_s",
)
_ROOT_OPTIONAL = ("probe_photon_count", "mass_attenuation_m2_kg", "tomography_angle_deg")
_ROOT_DEFAULTS: dict[str, Any] = {
    "name": "ptychopinn",
    "comments": "",
    "detector_object_distance_m": 1.0,
    "probe_energy_eV": 10000.0,
    "exposure_time_s": 1.0,
    "probe_photon_count": 0.0,
    "mass_attenuation_m2_kg": 0.0,
    "tomography_angle_deg": 0.0,
}
_DEFAULT_PIXEL_M = 1e-8
# ptychodus 1.7 renamed two root attributes (it still reads the old names); read either
# and write both, so files move both ways between this package and ptychodus.
_ROOT_ALIASES: dict[str, str] = {
    "probe_energy_eV": "photon_energy_eV",
    "mass_attenuation_m2_kg": "mass_attenuation_m2_per_kg",
}


def _root_key(present: Any, key: str) -> str | None:
    """The name under which root attribute ``key`` is stored (canonical or ptychodus 1.7)."""
    if key in present:
        return key
    alias = _ROOT_ALIASES.get(key)
    return alias if alias is not None and alias in present else None


def _guard(path: Path, what: str, fn: Callable[[], _T]) -> _T:
    """Run a loader so that every failure on malformed input surfaces as DataContractError."""
    try:
        return fn()
    except DataContractError:
        raise
    except Exception as exc:  # malformed files fail in many library-specific ways
        raise DataContractError(path, None, what, f"{type(exc).__name__}: {exc}") from None


# --------------------------------------------------------------------------- NPZ (DATA-001)


def _npz_get(npz: Any, path: Path, key: str) -> np.ndarray:
    """Read one member of an open NPZ, refusing object (pickled) arrays."""
    try:
        return np.asarray(npz[key])
    except ValueError as exc:
        raise DataContractError(
            path, key, "a numeric array (no pickled objects)", str(exc)
        ) from None


_LAYOUTS = {"MNN": "(M, N, N)", "HWM": "legacy (H, W, M)"}
LAYOUT_KEY = "diffraction_layout"
"""NPZ key (top level or in the ``metadata`` JSON) that declares a diffraction stack's
axis order, ``'MNN'`` or ``'HWM'``: needed only when M == N makes the shape ambiguous."""


def _canonical_diffraction(
    raw: np.ndarray, m: int, path: Path, key: str, layout: str | None = None
) -> np.ndarray:
    """Bring a diffraction stack to (M, N, N): squeeze (M, N, N, 1), transpose legacy (H, W, M).

    ``layout`` ('MNN' or 'HWM') is the file's declared axis order; without it an
    (M, M, M) stack (M == N positions) is ambiguous and refused, never guessed.
    """
    if layout is not None and layout not in _LAYOUTS:
        raise DataContractError(path, LAYOUT_KEY, "'MNN' or 'HWM'", repr(layout))
    if raw.ndim == 4 and raw.shape[-1] == 1:
        logger.info(
            "%s: %r has shape %s; squeezing the trailing axis to (M, N, N)", path, key, raw.shape
        )
        raw = raw[..., 0]
    if layout is None and raw.ndim == 3 and raw.shape == (m, m, m):
        raise DataContractError(
            path,
            key,
            f"a stack whose axis order can be told apart: (M, N, N), or legacy (H, W, M) "
            f"with M != N (M={m} = len(xcoords))",
            f"shape {raw.shape}, which is both (M, N, N) and (H, W, M) with M = N = {m}; "
            f"declare the order with key {LAYOUT_KEY!r} = 'MNN' or 'HWM' "
            "(top level or in the 'metadata' JSON)",
        )
    legacy = layout == "HWM" or (layout is None and raw.ndim == 3 and raw.shape[0] != m)
    if legacy and raw.ndim == 3 and raw.shape[-1] == m:
        logger.info(
            "%s: %r has legacy (H, W, M) layout %s; transposing to (M, H, W)", path, key, raw.shape
        )
        raw = np.transpose(raw, (2, 0, 1))
    elif layout == "HWM":
        raise DataContractError(
            path, key, f"legacy (H, W, M) with M={m} (declared {LAYOUT_KEY}='HWM')", describe(raw)
        )
    if raw.ndim != 3 or raw.shape[0] != m:
        raise DataContractError(path, key, f"(M, N, N) with M={m} (len(xcoords))", describe(raw))
    return np.ascontiguousarray(raw)


def _to_amplitude(raw: np.ndarray, measurement: str, path: Path, key: str) -> np.ndarray:
    """Convert intensity to amplitude when asked; warn when 'amplitude' looks like counts."""
    if raw.dtype.kind == "c" or raw.dtype.kind not in "biuf":
        raise DataContractError(path, key, "real diffraction (float or integer)", describe(raw))
    if raw.size == 0:
        raise DataContractError(path, key, "a non-empty diffraction stack", describe(raw))
    if measurement == "intensity":
        data = raw.astype(np.float64)
        if not np.all(np.isfinite(data)) or np.any(data < 0):
            raise DataContractError(
                path, key, "finite non-negative intensity", "negative, NaN or inf values"
            )
        return np.sqrt(data).astype(np.float32)
    if measurement != "amplitude":
        raise DataContractError(
            path, "measurement", "'amplitude' or 'intensity'", repr(measurement)
        )
    head = raw[: min(len(raw), 8)]  # a cheap probe first: real amplitudes are rarely integers
    if raw.dtype.kind in "biu" or (
        np.all(head == np.round(head)) and np.all(np.isfinite(raw)) and np.all(raw == np.round(raw))
    ):
        peak = float(np.max(raw))
        if peak > _INTEGER_AMPLITUDE_MAX:
            warnings.warn(
                f"{path}: {key!r} is integer-valued with max {peak:g}, far above typical amplitudes; "
                "it is probably intensity (photon counts) — pass measurement='intensity' to convert",
                UserWarning,
                stacklevel=4,
            )
    return raw


def _npz_metadata(npz: Any, files: set[str], path: Path) -> dict[str, Any]:
    """The ``metadata`` JSON object of an open NPZ ({} without one)."""
    if "metadata" not in files:
        return {}
    text = _npz_get(npz, path, "metadata")
    try:
        loaded = json.loads(str(text.item()) if text.size == 1 else "")
    except json.JSONDecodeError as exc:
        raise DataContractError(path, "metadata", "a JSON object string", str(exc)) from None
    if not isinstance(loaded, dict):
        raise DataContractError(path, "metadata", "a JSON object", type(loaded).__name__)
    return loaded


def _declared(
    npz: Any, files: set[str], metadata: dict[str, Any], path: Path, key: str
) -> str | None:
    """What the file declares under ``key``: the top-level NPZ key, else the metadata field."""
    if key in files:
        value = _npz_get(npz, path, key)
        if value.size != 1 or value.dtype.kind not in "SU":
            raise DataContractError(path, key, "a string", describe(value))
        return _as_str(value)
    found = metadata.get(key)
    return None if found is None else str(found)


def declared_measurement(path: str | PathLike[str]) -> str | None:
    """What an upstream NPZ says its diffraction holds ('amplitude' or 'intensity'), or None.

    Read from the top-level ``measurement`` key, else the ``metadata`` JSON; products
    (which always hold amplitudes) and files that say nothing give None.
    """
    p = Path(path)

    def read() -> str | None:
        check_input_file(p)
        if "probe_position_x_m" in _npz_keys(p):
            return None
        with np.load(p, allow_pickle=False) as npz:
            files = set(npz.files)
            return _declared(npz, files, _npz_metadata(npz, files, p), p, "measurement")

    if p.suffix.lower() in (".h5", ".hdf5"):
        return None
    return _guard(p, "a readable NPZ archive", read)


def _read_npz(path: Path, measurement: str | None) -> ScanData:
    """Parse an upstream NPZ into ScanData (see :func:`load_npz`)."""
    check_input_file(path)
    if not zipfile.is_zipfile(path):
        raise DataContractError(
            path, None, "an NPZ (zip) archive", "a file that is not a zip archive"
        )
    with np.load(path, allow_pickle=False) as npz:
        files = set(npz.files)
        key = "diffraction" if "diffraction" in files else "diff3d" if "diff3d" in files else None
        if key is None:
            raise DataContractError(
                path,
                "diffraction",
                "key 'diffraction' (or alias 'diff3d')",
                f"keys {sorted(files)}",
            )
        for required in ("xcoords", "ycoords", "probeGuess"):
            if required not in files:
                raise DataContractError(path, required, "a required key", f"keys {sorted(files)}")
        x = _npz_get(npz, path, "xcoords")
        if x.ndim != 1 or x.size == 0:
            raise DataContractError(path, "xcoords", "a non-empty (M,) array", describe(x))
        m = int(x.shape[0])
        metadata = _npz_metadata(npz, files, path)
        if measurement is None:
            measurement = _declared(npz, files, metadata, path, "measurement") or "amplitude"
        layout = _declared(npz, files, metadata, path, LAYOUT_KEY)
        metadata.pop(LAYOUT_KEY, None)
        raw = _canonical_diffraction(_npz_get(npz, path, key), m, path, key, layout)
        diffraction = _to_amplitude(raw, measurement, path, key)
        if "nphotons" in metadata:
            metadata["nphotons"] = _photon_count(metadata["nphotons"], path, "metadata.nphotons")
        if "nphotons" in files:
            metadata["nphotons"] = _photon_count(_npz_get(npz, path, "nphotons"), path, "nphotons")
        y_true = _npz_get(npz, path, "Y") if "Y" in files else None
        if y_true is not None and y_true.ndim == 4 and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        metadata["source"] = str(path)
        metadata["measurement"] = "amplitude"
        opt = {
            k: _npz_get(npz, path, k)
            for k in ("objectGuess", "scan_index", "xcoords_start", "ycoords_start")
            if k in files
        }
        scan = ScanData(
            xcoords=x,
            ycoords=_npz_get(npz, path, "ycoords"),
            diffraction=diffraction,
            probe=_npz_get(npz, path, "probeGuess"),
            object=opt.get("objectGuess"),
            scan_index=opt.get("scan_index"),
            xcoords_start=opt.get("xcoords_start"),
            ycoords_start=opt.get("ycoords_start"),
            metadata=metadata,
            Y=y_true,
        )
        return _with_signal(scan, path, key, "probeGuess")


def _photon_count(value: Any, path: Path, key: str) -> float:
    """A file's photon count: one finite number > 0 (it sets the intensity scale)."""
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "biuf":
        raise DataContractError(path, key, "one photon count (a number > 0)", describe(arr))
    count = float(arr.reshape(()))
    if not (math.isfinite(count) and count > 0):
        raise DataContractError(path, key, "a finite photon count > 0", repr(count))
    return count


def _with_signal(scan: ScanData, path: Path, diffraction_key: str, probe_key: str) -> ScanData:
    """Refuse a scan whose probe or diffraction is all zeros (nothing to reconstruct from)."""
    if not np.any(scan.probe):
        raise DataContractError(
            path, probe_key, "a probe with non-zero values", f"all zeros, {describe(scan.probe)}"
        )
    if not np.any(scan.diffraction):
        raise DataContractError(
            path,
            diffraction_key,
            "diffraction with some signal (max > 0)",
            f"all zeros, {describe(scan.diffraction)}",
        )
    return scan


def load_npz(path: str | PathLike[str], measurement: str | None = None) -> ScanData:
    """Load an upstream NPZ (DATA-001) as validated ScanData with amplitude (M, N, N).

    Keys: ``diffraction`` (alias ``diff3d``; legacy (H, W, M) is transposed and
    (M, N, N, 1) squeezed, each with a logged note), ``probeGuess``, ``xcoords``,
    ``ycoords``; optional ``objectGuess``, ``xcoords_start``/``ycoords_start``
    (default: xcoords/ycoords), ``scan_index`` (default zeros), ``Y``,
    ``nphotons``, ``metadata`` (JSON). ``measurement`` 'intensity' takes the
    square root; None uses the file's ``measurement`` key, else 'amplitude'.
    Never unpickles. Every malformed input raises DataContractError.
    """
    p = Path(path)
    return _guard(p, "a readable upstream NPZ scan", lambda: _read_npz(p, measurement))


def _json_default(value: Any) -> Any:
    """Make numpy scalars, arrays and paths JSON-serialisable."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def save_npz(
    scan: ScanData, path: str | PathLike[str], diffraction_key: str = "diffraction"
) -> Path:
    """Write ScanData to an upstream-compatible NPZ atomically; :func:`load_npz` round-trips it exactly.

    ``diffraction_key="diff3d"`` writes the legacy upstream name (also read back).
    """
    if diffraction_key not in ("diffraction", "diff3d"):
        raise ValueError(
            f"diffraction_key must be 'diffraction' or 'diff3d', got {diffraction_key!r}"
        )
    p = Path(path)
    if p.suffix != ".npz":
        p = p.with_name(p.name + ".npz")
    arrays: dict[str, np.ndarray] = {
        diffraction_key: scan.diffraction,
        "probeGuess": scan.probe,
        "xcoords": scan.xcoords,
        "ycoords": scan.ycoords,
        "xcoords_start": scan.xcoords_start,
        "ycoords_start": scan.ycoords_start,
        "scan_index": scan.scan_index,
    }
    if scan.object is not None:
        arrays["objectGuess"] = scan.object
    if scan.Y is not None:
        arrays["Y"] = scan.Y
    if scan.n_positions == scan.N:  # (M, M, M) would read as ambiguous: say which it is
        arrays[LAYOUT_KEY] = np.asarray("MNN")
    meta = {k: v for k, v in scan.metadata.items() if k != "source"}
    if "nphotons" in meta:
        arrays["nphotons"] = np.asarray(float(meta["nphotons"]))
    arrays["metadata"] = np.asarray(json.dumps(meta, default=_json_default, sort_keys=True))
    with atomic_write(p) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return p


# --------------------------------------------------------------------------- ptychodus products


@dataclass
class Product:
    """A ptychodus product: metadata, probe, object with geometry, positions in metres, losses.

    ``scan`` holds the optional embedded raw data (``/raw_data``) as ScanData.
    """

    metadata: dict[str, Any]
    probe: np.ndarray  # (H, W) | (I, H, W) | (C, I, H, W) complex64
    probe_pixel_width_m: float
    probe_pixel_height_m: float
    object: np.ndarray  # (H, W) or (L, H, W) complex64
    object_center_x_m: float
    object_center_y_m: float
    object_pixel_width_m: float
    object_pixel_height_m: float
    object_layer_spacing_m: np.ndarray  # (L-1,)
    probe_position_indexes: np.ndarray  # (M,) int
    probe_position_x_m: np.ndarray  # (M,) float64
    probe_position_y_m: np.ndarray  # (M,) float64
    loss_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    loss_epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    opr_weights: np.ndarray | None = None
    scan: ScanData | None = None

    def positions_px(self) -> tuple[np.ndarray, np.ndarray]:
        """Return positions (M,), (M,) in object pixels: x_px = (x_m - centre_x_m)/pixel_width_m + W/2."""
        h, w = self.object.shape[-2:]
        x = (self.probe_position_x_m - self.object_center_x_m) / self.object_pixel_width_m + w / 2
        y = (self.probe_position_y_m - self.object_center_y_m) / self.object_pixel_height_m + h / 2
        return x, y


def _attr_float(attrs: Any, key: str, path: Path, where: str) -> float:
    """Read a required positive-or-any float attribute."""
    if key not in attrs:
        raise DataContractError(path, f"{where}@{key}", "a float attribute", "missing")
    value = np.asarray(attrs[key])
    if value.dtype.kind not in "biuf" or value.size != 1 or not np.isfinite(value).all():
        raise DataContractError(path, f"{where}@{key}", "a finite real scalar", describe(value))
    return float(value.reshape(()))


def _as_str(value: Any) -> str:
    """Decode an HDF5/NPZ string attribute."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _as_str(value.reshape(()).item())
    return str(value)


def _check_product(prod: Product, path: Path) -> Product:
    """Validate shapes and units of a parsed product."""
    m = prod.probe_position_x_m.shape
    if len(m) != 1 or prod.probe_position_y_m.shape != m or prod.probe_position_indexes.shape != m:
        raise DataContractError(
            path,
            "probe_position_x_m",
            "probe_position_indexes/x_m/y_m of equal length (M,)",
            f"{prod.probe_position_indexes.shape}, {m}, {prod.probe_position_y_m.shape}",
        )
    for key in ("probe_position_x_m", "probe_position_y_m"):
        arr = getattr(prod, key)
        if arr.dtype.kind not in "biuf" or not np.all(np.isfinite(arr)):
            raise DataContractError(path, key, "finite real positions", describe(arr))
    if prod.probe_position_indexes.dtype.kind not in "biu":
        raise DataContractError(
            path, "probe_position_indexes", "integer indexes", describe(prod.probe_position_indexes)
        )
    if (
        prod.probe.ndim not in (2, 3, 4)
        or prod.probe.dtype.kind not in "biufc"
        or prod.probe.size == 0
    ):
        raise DataContractError(
            path, "probe", "complex (H, W), (I, H, W) or (C, I, H, W)", describe(prod.probe)
        )
    if (
        prod.object.ndim not in (2, 3)
        or prod.object.dtype.kind not in "biufc"
        or prod.object.size == 0
    ):
        raise DataContractError(
            path, "object", "complex (H, W) or (L, H, W)", describe(prod.object)
        )
    for key in (
        "probe_pixel_width_m",
        "probe_pixel_height_m",
        "object_pixel_width_m",
        "object_pixel_height_m",
    ):
        if not getattr(prod, key) > 0:
            raise DataContractError(path, key, "a pixel size > 0 m", repr(getattr(prod, key)))
    prod.probe = prod.probe.astype(np.complex64, copy=False)
    prod.object = prod.object.astype(np.complex64, copy=False)
    prod.probe_position_x_m = prod.probe_position_x_m.astype(np.float64, copy=False)
    prod.probe_position_y_m = prod.probe_position_y_m.astype(np.float64, copy=False)
    prod.probe_position_indexes = prod.probe_position_indexes.astype(np.int64, copy=False)
    return prod


def _read_h5_product(path: Path) -> Product:
    """Parse a ptychodus HDF5 product (specs/data_contracts.md)."""
    import h5py

    check_input_file(path)
    with h5py.File(path, "r") as f:
        meta: dict[str, Any] = {}
        for key in _ROOT_REQUIRED:
            if _root_key(f.attrs, key) is None:
                raise DataContractError(path, f"/@{key}", "a required root attribute", "missing")
        for key in _ROOT_REQUIRED + _ROOT_OPTIONAL:
            stored = _root_key(f.attrs, key)
            if stored is not None:
                meta[key] = (
                    _as_str(f.attrs[stored])
                    if key in ("name", "comments")
                    else _attr_float(f.attrs, stored, path, "/")
                )
        for key in (
            "probe",
            "object",
            "probe_position_indexes",
            "probe_position_x_m",
            "probe_position_y_m",
        ):
            if key not in f or not isinstance(f[key], h5py.Dataset):
                raise DataContractError(path, key, "a required dataset", "missing")
        probe_ds, obj_ds = f["probe"], f["object"]
        if "loss_values" in f:
            losses = np.asarray(f["loss_values"][()], dtype=np.float64)
        elif "costs" in f:
            losses = np.asarray(f["costs"][()], dtype=np.float64)
        else:
            losses = np.zeros(0)
        epochs = np.asarray(f["loss_epochs"][()]) if "loss_epochs" in f else np.arange(losses.size)
        opr = np.asarray(probe_ds.attrs["opr_weights"]) if "opr_weights" in probe_ds.attrs else None
        spacing = (
            np.asarray(f["object_layer_spacing_m"][()])
            if "object_layer_spacing_m" in f
            else np.zeros(0)
        )
        prod = Product(
            metadata=meta,
            probe=np.asarray(probe_ds[()]),
            probe_pixel_width_m=_attr_float(probe_ds.attrs, "pixel_width_m", path, "probe"),
            probe_pixel_height_m=_attr_float(probe_ds.attrs, "pixel_height_m", path, "probe"),
            object=np.asarray(obj_ds[()]),
            object_center_x_m=_attr_float(obj_ds.attrs, "center_x_m", path, "object"),
            object_center_y_m=_attr_float(obj_ds.attrs, "center_y_m", path, "object"),
            object_pixel_width_m=_attr_float(obj_ds.attrs, "pixel_width_m", path, "object"),
            object_pixel_height_m=_attr_float(obj_ds.attrs, "pixel_height_m", path, "object"),
            object_layer_spacing_m=spacing.astype(np.float64),
            probe_position_indexes=np.asarray(f["probe_position_indexes"][()]),
            probe_position_x_m=np.asarray(f["probe_position_x_m"][()]),
            probe_position_y_m=np.asarray(f["probe_position_y_m"][()]),
            loss_values=losses,
            loss_epochs=epochs.astype(np.int64),
            opr_weights=opr,
        )
        prod = _check_product(prod, path)
        if "raw_data" in f:
            prod.scan = _read_raw_group(f["raw_data"], prod, path)
    return prod


def _read_raw_group(group: Any, prod: Product, path: Path) -> ScanData:
    """Parse the optional /raw_data group into ScanData."""
    for key in ("diffraction", "xcoords", "ycoords"):
        if key not in group:
            raise DataContractError(
                path, f"raw_data/{key}", "a dataset of the raw_data group", "missing"
            )
    metadata: dict[str, Any] = {}
    if "_metadata" in group:
        loaded = json.loads(_as_str(group["_metadata"][()]))
        if not isinstance(loaded, dict):
            raise DataContractError(
                path, "raw_data/_metadata", "a JSON object", type(loaded).__name__
            )
        metadata.update(loaded)
    x = np.asarray(group["xcoords"][()])
    dataset = group["diffraction"]
    axes = _as_str(dataset.attrs["axis_canonical"]) if "axis_canonical" in dataset.attrs else None
    raw = _canonical_diffraction(
        np.asarray(dataset[()]),
        int(x.shape[0]) if x.ndim == 1 else -1,
        path,
        "raw_data/diffraction",
        "MNN" if axes == "NHW" else None,
    )
    probe = (
        np.asarray(group["probeGuess"][()])
        if "probeGuess" in group
        else prod.probe.reshape(-1, *prod.probe.shape[-2:])[0]
    )
    obj = (
        np.asarray(group["objectGuess"][()])
        if "objectGuess" in group
        else prod.object.reshape(-1, *prod.object.shape[-2:])[0]
    )
    metadata["source"] = str(path)
    if "nphotons" in metadata:
        metadata["nphotons"] = _photon_count(
            metadata["nphotons"], path, "raw_data/_metadata.nphotons"
        )
    scan = ScanData(
        xcoords=x,
        ycoords=np.asarray(group["ycoords"][()]),
        diffraction=_to_amplitude(raw, "amplitude", path, "raw_data/diffraction"),
        probe=probe,
        object=obj,
        scan_index=np.asarray(group["scan_index"][()]) if "scan_index" in group else None,
        metadata=metadata,
    )
    probe_key = "raw_data/probeGuess" if "probeGuess" in group else "probe"
    return _with_signal(scan, path, "raw_data/diffraction", probe_key)


def _read_npz_product(path: Path) -> Product:
    """Parse a ptychodus NPZ product (flat keys, pixel sizes as scalars)."""
    check_input_file(path)
    if not zipfile.is_zipfile(path):
        raise DataContractError(
            path, None, "an NPZ (zip) archive", "a file that is not a zip archive"
        )
    with np.load(path, allow_pickle=False) as npz:
        files = set(npz.files)
        required = (
            *_ROOT_REQUIRED,
            "probe",
            "probe_pixel_width_m",
            "probe_pixel_height_m",
            "probe_position_indexes",
            "probe_position_x_m",
            "probe_position_y_m",
            "object",
            "object_center_x_m",
            "object_center_y_m",
            "object_pixel_width_m",
            "object_pixel_height_m",
        )
        for key in required:
            if _root_key(files, key) is None:
                raise DataContractError(
                    path, key, "a required product key", f"keys {sorted(files)}"
                )
        get = {k: _npz_get(npz, path, k) for k in files}

        def scalar(key: str) -> float:
            value = get[key]
            if value.dtype.kind not in "biuf" or value.size != 1:
                raise DataContractError(path, key, "a real scalar", describe(value))
            return float(value.reshape(()))

        meta: dict[str, Any] = {k: _as_str(get[k]) for k in ("name", "comments")}
        for key in _ROOT_REQUIRED[2:] + _ROOT_OPTIONAL:
            stored = _root_key(files, key)
            if stored is not None:
                meta[key] = scalar(stored)
        losses = get.get("loss_values", get.get("costs", np.zeros(0))).astype(np.float64)
        prod = Product(
            metadata=meta,
            probe=get["probe"],
            probe_pixel_width_m=scalar("probe_pixel_width_m"),
            probe_pixel_height_m=scalar("probe_pixel_height_m"),
            object=get["object"],
            object_center_x_m=scalar("object_center_x_m"),
            object_center_y_m=scalar("object_center_y_m"),
            object_pixel_width_m=scalar("object_pixel_width_m"),
            object_pixel_height_m=scalar("object_pixel_height_m"),
            object_layer_spacing_m=get.get("object_layer_spacing_m", np.zeros(0)).astype(
                np.float64
            ),
            probe_position_indexes=get["probe_position_indexes"],
            probe_position_x_m=get["probe_position_x_m"],
            probe_position_y_m=get["probe_position_y_m"],
            loss_values=losses,
            loss_epochs=get.get("loss_epochs", np.arange(losses.size)).astype(np.int64),
            opr_weights=get.get("opr_weights"),
        )
        return _check_product(prod, path)


def load_product(path: str | PathLike[str]) -> Product:
    """Load a ptychodus product (HDF5 ``*.h5``/``*.hdf5`` or NPZ ``*.npz``) as a validated Product."""
    p = Path(path)
    if p.suffix.lower() == ".npz":
        return _guard(p, "a readable ptychodus NPZ product", lambda: _read_npz_product(p))
    return _guard(p, "a readable ptychodus HDF5 product", lambda: _read_h5_product(p))


def product_from_scan(
    scan: ScanData,
    loss_values: np.ndarray | None = None,
    **metadata: Any,
) -> Product:
    """Build a Product from ScanData; geometry/metadata come from kwargs, then scan.metadata, then defaults.

    Pixel positions map to metres by x_m = (x_px - W/2)·pixel_width_m + centre_x_m.
    Without an object, an all-ones object covering every patch is used.
    """
    meta = {
        **_ROOT_DEFAULTS,
        **{k: v for k, v in scan.metadata.items() if k in _ROOT_DEFAULTS},
        **metadata,
    }
    if "nphotons" in scan.metadata and "probe_photon_count" not in metadata:
        meta["probe_photon_count"] = float(scan.metadata["nphotons"])

    def geom(key: str, default: float) -> float:
        return float(metadata.get(key, scan.metadata.get(key, default)))

    pw = geom("object_pixel_width_m", _DEFAULT_PIXEL_M)
    ph = geom("object_pixel_height_m", pw)
    cx, cy = geom("object_center_x_m", 0.0), geom("object_center_y_m", 0.0)
    if scan.object is not None:
        obj = scan.object
    else:
        n = scan.N
        h = math.ceil(float(np.max(scan.ycoords)) + n / 2 + 1)
        w = math.ceil(float(np.max(scan.xcoords)) + n / 2 + 1)
        obj = np.ones((h, w), dtype=np.complex64)
    h, w = obj.shape
    losses = np.zeros(0) if loss_values is None else np.asarray(loss_values, dtype=np.float64)
    return Product(
        metadata={k: meta[k] for k in _ROOT_REQUIRED + _ROOT_OPTIONAL},
        probe=scan.probe,
        probe_pixel_width_m=geom("probe_pixel_width_m", pw),
        probe_pixel_height_m=geom("probe_pixel_height_m", ph),
        object=obj,
        object_center_x_m=cx,
        object_center_y_m=cy,
        object_pixel_width_m=pw,
        object_pixel_height_m=ph,
        object_layer_spacing_m=np.zeros(0),
        probe_position_indexes=np.arange(scan.n_positions, dtype=np.int64),
        probe_position_x_m=(scan.xcoords - w / 2) * pw + cx,
        probe_position_y_m=(scan.ycoords - h / 2) * ph + cy,
        loss_values=losses,
        loss_epochs=np.arange(losses.size, dtype=np.int64),
        scan=scan,
    )


def _write_h5_product(prod: Product, path: Path, include_raw: bool) -> None:
    """Write a Product with the exact dataset/attribute names of specs/data_contracts.md."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["format_id"] = "ptychodus.product.hdf5"
        f.attrs["format_version"] = "1.0"
        for key, value in prod.metadata.items():
            f.attrs[key] = str(value) if key in ("name", "comments") else np.float64(value)
            if key in _ROOT_ALIASES:
                f.attrs[_ROOT_ALIASES[key]] = np.float64(value)
        probe = f.create_dataset("probe", data=prod.probe.astype(np.complex64))
        probe.attrs["pixel_width_m"] = np.float64(prod.probe_pixel_width_m)
        probe.attrs["pixel_height_m"] = np.float64(prod.probe_pixel_height_m)
        if prod.opr_weights is not None:
            probe.attrs["opr_weights"] = np.asarray(prod.opr_weights, dtype=np.float64)
        obj = f.create_dataset("object", data=prod.object.astype(np.complex64))
        obj.attrs["center_x_m"] = np.float64(prod.object_center_x_m)
        obj.attrs["center_y_m"] = np.float64(prod.object_center_y_m)
        obj.attrs["pixel_width_m"] = np.float64(prod.object_pixel_width_m)
        obj.attrs["pixel_height_m"] = np.float64(prod.object_pixel_height_m)
        f.create_dataset(
            "object_layer_spacing_m", data=np.asarray(prod.object_layer_spacing_m, dtype=np.float64)
        )
        f.create_dataset(
            "probe_position_indexes", data=prod.probe_position_indexes.astype(np.int64)
        )
        f.create_dataset("probe_position_x_m", data=prod.probe_position_x_m.astype(np.float64))
        f.create_dataset("probe_position_y_m", data=prod.probe_position_y_m.astype(np.float64))
        f.create_dataset("loss_values", data=np.asarray(prod.loss_values, dtype=np.float64))
        f.create_dataset("loss_epochs", data=np.asarray(prod.loss_epochs, dtype=np.int64))
        if include_raw and prod.scan is not None:
            scan = prod.scan
            raw = f.create_group("raw_data")
            d = raw.create_dataset("diffraction", data=scan.diffraction)
            d.attrs["axis_canonical"] = "NHW"
            raw.create_dataset("xcoords", data=scan.xcoords)
            raw.create_dataset("ycoords", data=scan.ycoords)
            raw.create_dataset("scan_index", data=scan.scan_index)
            if np.array_equal(scan.probe, prod.probe):
                raw["probeGuess"] = probe  # hard link, as the spec allows
            else:
                raw.create_dataset("probeGuess", data=scan.probe)
            if (
                scan.object is not None
                and scan.object.shape == prod.object.shape
                and np.array_equal(scan.object, prod.object)
            ):
                raw["objectGuess"] = obj
            elif scan.object is not None:
                raw.create_dataset("objectGuess", data=scan.object)
            meta = {k: v for k, v in scan.metadata.items() if k != "source"}
            raw.create_dataset(
                "_metadata", data=json.dumps(meta, default=_json_default, sort_keys=True)
            )


def _write_npz_product(prod: Product, fh: Any) -> None:
    """Write a Product with the key names of ptychodus's NPZ product reader."""
    contents: dict[str, Any] = {k: np.asarray(v) for k, v in prod.metadata.items()}
    contents.update(
        probe=prod.probe,
        probe_pixel_width_m=np.float64(prod.probe_pixel_width_m),
        probe_pixel_height_m=np.float64(prod.probe_pixel_height_m),
        probe_position_indexes=prod.probe_position_indexes,
        probe_position_x_m=prod.probe_position_x_m,
        probe_position_y_m=prod.probe_position_y_m,
        object=prod.object,
        object_center_x_m=np.float64(prod.object_center_x_m),
        object_center_y_m=np.float64(prod.object_center_y_m),
        object_pixel_width_m=np.float64(prod.object_pixel_width_m),
        object_pixel_height_m=np.float64(prod.object_pixel_height_m),
        object_layer_spacing_m=np.asarray(prod.object_layer_spacing_m, dtype=np.float64),
        loss_epochs=np.asarray(prod.loss_epochs, dtype=np.int64),
        loss_values=np.asarray(prod.loss_values, dtype=np.float64),
    )
    if prod.opr_weights is not None:
        contents["opr_weights"] = np.asarray(prod.opr_weights)
    np.savez(fh, **contents)


def save_product(
    product: Product | ScanData,
    path: str | PathLike[str],
    include_raw: bool = True,
    **metadata: Any,
) -> Path:
    """Write a ptychodus product atomically: HDF5 for ``.h5``/``.hdf5`` (with /raw_data), NPZ for ``.npz``.

    A ScanData is first converted with :func:`product_from_scan` (kwargs: root
    attributes and geometry such as ``object_pixel_width_m``).
    """
    p = Path(path)
    prod = product if isinstance(product, Product) else product_from_scan(product, **metadata)
    with atomic_write(p) as tmp:
        if p.suffix.lower() == ".npz":
            with open(tmp, "wb") as fh:
                _write_npz_product(prod, fh)
        else:
            _write_h5_product(prod, tmp, include_raw)
    return p


def load(path: str | PathLike[str], measurement: str | None = None) -> ScanData:
    """Load ScanData from an upstream NPZ, or from a product file that embeds raw data."""
    p = Path(path)
    if p.suffix.lower() in (".h5", ".hdf5"):
        prod = load_product(p)
    else:
        keys = _guard(p, "a readable NPZ archive", lambda: _npz_keys(p))
        if "probe_position_x_m" not in keys:
            return load_npz(p, measurement)
        prod = load_product(p)
    if prod.scan is None:
        raise DataContractError(
            p, "raw_data", "embedded raw diffraction data", "a product without raw data"
        )
    return prod.scan


def _npz_keys(path: Path) -> set[str]:
    """List the member names of an NPZ without reading any array."""
    check_input_file(path)
    if not zipfile.is_zipfile(path):
        raise DataContractError(
            path, None, "an NPZ (zip) archive", "a file that is not a zip archive"
        )
    with zipfile.ZipFile(path) as archive:
        return {n[:-4] if n.endswith(".npy") else n for n in archive.namelist()}
