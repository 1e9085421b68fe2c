"""Data contracts, file formats, simulation, grouping and the NumPy reference physics for ptychopinn."""

from importlib.metadata import version as _version

from ptychopinn.data import health, physics
from ptychopinn.data.bundle import (
    Bundle,
    BundleError,
    load_portable,
    read_bundle,
    save_portable,
    write_bundle,
)
from ptychopinn.data.errors import (
    DataContractError,
    TrainingCollapsedError,
    TrainingStalledWarning,
)
from ptychopinn.data.files import (
    atomic_write,
    check_input_file,
    remove_stale_temporaries,
    write_text_atomic,
)
from ptychopinn.data.grouping import GroupedData, group, group_for_config, neighbour_groups
from ptychopinn.data.health import (
    CollapseVerdict,
    StallVerdict,
    check_collapse,
    check_object_collapse,
    check_stall,
)
from ptychopinn.data.io import (
    LAYOUT_KEY,
    Product,
    declared_measurement,
    load,
    load_npz,
    load_product,
    product_from_scan,
    save_npz,
    save_product,
)
from ptychopinn.data.photons import PhotonCount, PhotonCountWarning, pattern_counts, photon_count
from ptychopinn.data.probe import default_probe, infer_probe_size, normalise_probe
from ptychopinn.data.scan import ScanData
from ptychopinn.data.simulation import OBJECT_KINDS, make_object, simulate

__version__ = _version("ptycho-data")

__all__ = [
    "LAYOUT_KEY",
    "OBJECT_KINDS",
    "Bundle",
    "BundleError",
    "CollapseVerdict",
    "DataContractError",
    "GroupedData",
    "PhotonCount",
    "PhotonCountWarning",
    "Product",
    "ScanData",
    "StallVerdict",
    "TrainingCollapsedError",
    "TrainingStalledWarning",
    "__version__",
    "atomic_write",
    "check_collapse",
    "check_input_file",
    "check_object_collapse",
    "check_stall",
    "declared_measurement",
    "default_probe",
    "group",
    "group_for_config",
    "health",
    "infer_probe_size",
    "load",
    "load_npz",
    "load_portable",
    "load_product",
    "make_object",
    "neighbour_groups",
    "normalise_probe",
    "pattern_counts",
    "photon_count",
    "physics",
    "product_from_scan",
    "read_bundle",
    "remove_stale_temporaries",
    "save_npz",
    "save_portable",
    "save_product",
    "simulate",
    "write_bundle",
    "write_text_atomic",
]
