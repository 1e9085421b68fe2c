"""ptychodus adapter: ptychopinn as a trainable reconstructor inside ptychodus (>= 1.7).

ptychodus has no reconstructor plugin mechanism: start it with ``ptychopinn ptychodus
[ptychodus arguments]`` (:mod:`ptychopinn.app.ptychodus_launcher`), which adds this
library to ptychodus's reconstructor list at run time, or patch ``ptychodus/model/core.py``
with an *aliased* import (ptychodus's own ``PtychoPINNReconstructorLibrary`` already has
that name there; see the README). The library offers two reconstructors, ``PINN``
(unsupervised, Poisson likelihood) and ``Supervised``, configured by the settings group
``PtychoPINNApp`` (:class:`PtychoPINNAppSettings`). ptychodus is an optional dependency:
only this module and the launcher import it.

Conventions, and where they differ from upstream's ptychodus integration:

- ptychodus hands over processed detector **intensities**; the network reads
  **amplitudes**, so the adapter takes ``sqrt`` (after inpainting bad pixels).
- Positions are metres; the adapter converts them to object pixels with the object's
  own geometry. ptychodus places probe pixel ``(N-1)/2`` on the position, ptychopinn
  places pixel ``N/2`` (METHOD.md §2), so ptychopinn's pixel coordinate is ptychodus's
  plus one half (:func:`positions_to_pixels`, :func:`pixels_to_positions`).
- The model has one coherent probe: the first OPR mode's first incoherent mode is used,
  and a log line says so when other modes are dropped.
- The scan index of every point is kept (upstream wrote zeros).
- ``train`` reads, from a file or a directory: ptychopinn NPZs, ptychodus's own
  PtychoPINN training export (intensities, (modes, N, N) probe, coordinates without the
  half pixel: :func:`scan_from_ptychodus_export`), or, as ``ptychodus -b train`` hands
  over, a folder with ``diffraction.h5`` + ``product.h5`` (:func:`scan_from_directory`).
  It writes ``wts.h5.zip``, the same bundle as ``model.zip`` (the name ``ptychodus -b
  reconstruct`` loads from its input folder) and ``history.json``; reported progress is
  per epoch, and closing the ``train`` generator (ptychodus's *Stop*) stops training
  after the current epoch with the model saved.
- The backend (``tensorflow`` or ``pytorch``) is a setting. Each ``reconstruct`` and
  ``train`` call runs the backend in a fresh spawned process (setting ``subprocess``),
  as ptychodus does for its own reconstructors: ptychodus never imports a deep-learning
  framework, and TensorFlow and Lightning never meet in one process.
- The reconstruction is stitched onto the input object's pixel grid: the returned
  object has the input's shape, pixel size and centre; pixels that no patch covers keep
  the input object's values.
"""

from __future__ import annotations

import builtins
import json
import logging
import math
import multiprocessing
import queue
import shutil
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ptychodus.api.object import Object
from ptychodus.api.observer import Observable, Observer
from ptychodus.api.preprocess.diffraction import inpaint_bad_pixels
from ptychodus.api.product import LossValue, Product
from ptychodus.api.reconstruct import (
    ReconstructInput,
    Reconstructor,
    ReconstructorLibrary,
    ReconstructOutput,
    TrainableReconstructor,
    TrainOutput,
)
from ptychodus.api.settings import SettingsRegistry

from ptychopinn.config import ExecutionConfig, ModelConfig, TrainingConfig
from ptychopinn.core import BUNDLE_NAME, stitch_phase_weight
from ptychopinn.core.history import TRAIN_LOSS, VAL_LOSS
from ptychopinn.data import (
    DataContractError,
    ScanData,
    group,
    group_for_config,
    load_npz,
    photon_count,
    save_npz,
)
from ptychopinn.data.bundle import read_bundle
from ptychopinn.data.files import atomic_write, write_text_atomic

from .logs import quiet_framework_environment

__all__ = [
    "BUNDLE_NAME",
    "MODEL_FILE_NAME",
    "PtychoPINNAppSettings",
    "PtychoPINNReconstructorLibrary",
    "PtychoPINNTrainableReconstructor",
    "pixels_to_positions",
    "positions_to_pixels",
    "scan_from_directory",
    "scan_from_input",
    "scan_from_ptychodus_export",
    "stitch_onto_object",
]

logger = logging.getLogger(__name__)

#: The model file ``ptychodus -b reconstruct`` loads from its input folder
#: (``StandardFileLayout.MODEL_BASENAME`` + :meth:`get_model_file_extension`); ``train``
#: writes the bundle under this name too.
MODEL_FILE_NAME = "model.zip"
#: The training history ``train`` writes next to the bundle (``ptychopinn.core.history``).
HISTORY_FILE_NAME = "history.json"
#: Names ``train`` looks for in an input directory (upstream's names first).
TRAIN_FILE_NAMES = ("train_data.npz", "train.npz")
TEST_FILE_NAMES = ("test_data.npz", "test.npz")
#: ptychopinn pixel coordinate = ptychodus pixel coordinate + this (see module docstring).
PIXEL_CONVENTION_OFFSET = 0.5


def _default_backend_name() -> str:
    """The settings' default backend: the only installed one, else tensorflow."""
    from ptychopinn.config import BackendNotInstalledError

    from .environment import DEFAULT_BACKEND, choose_backend

    try:
        return choose_backend().name
    except BackendNotInstalledError:
        return DEFAULT_BACKEND  # reconstruct/train then say what to install


class PtychoPINNAppSettings(Observable, Observer):
    """The adapter's settings: ptychodus settings group ``PtychoPINNApp``.

    ``backend`` selects ``tensorflow`` or ``pytorch`` (default: the only installed one,
    else tensorflow); ``nphotons`` 0 means "from the data" (``ptychopinn.data.photon_count``:
    the file's metadata, else the mean counts per pattern of the training data);
    ``n_groups`` 0 means one group per scan
    point; ``subprocess`` runs each call in a fresh spawned process.
    """

    GROUP = "PtychoPINNApp"

    def __init__(self, registry: SettingsRegistry) -> None:
        super().__init__()
        self._group = registry.create_group(self.GROUP)
        self._group.add_observer(self)
        g = self._group
        self.backend = g.create_string_parameter("backend", _default_backend_name())
        # model
        self.gridsize = g.create_integer_parameter("gridsize", 1, minimum=1)
        self.n_filters_scale = g.create_integer_parameter("n_filters_scale", 2, minimum=1)
        self.amp_activation = g.create_string_parameter("amp_activation", "sigmoid")
        self.object_big = g.create_boolean_parameter("object_big", True)
        self.probe_big = g.create_boolean_parameter("probe_big", True)
        self.probe_mask = g.create_boolean_parameter("probe_mask", False)
        self.pad_object = g.create_boolean_parameter("pad_object", True)
        self.probe_scale = g.create_real_parameter("probe_scale", 4.0, minimum=0.0)
        self.gaussian_smoothing_sigma = g.create_real_parameter(
            "gaussian_smoothing_sigma", 0.0, minimum=0.0
        )
        self.architecture = g.create_string_parameter("architecture", "cnn")
        self.res_blocks = g.create_integer_parameter("res_blocks", 4, minimum=1)
        # training
        self.nepochs = g.create_integer_parameter("nepochs", 50, minimum=1)
        self.batch_size = g.create_integer_parameter("batch_size", 16, minimum=1)
        self.learning_rate = g.create_real_parameter("learning_rate", 1e-3, minimum=0.0)
        self.nphotons = g.create_real_parameter("nphotons", 0.0, minimum=0.0)
        self.n_groups = g.create_integer_parameter("n_groups", 0, minimum=0)
        self.neighbor_count = g.create_integer_parameter("neighbor_count", 4, minimum=1)
        self.nll_weight = g.create_real_parameter("nll_weight", 1.0, minimum=0.0)
        self.mae_weight = g.create_real_parameter("mae_weight", 0.0, minimum=0.0)
        self.realspace_mae_weight = g.create_real_parameter(
            "realspace_mae_weight", 0.0, minimum=0.0
        )
        self.realspace_weight = g.create_real_parameter("realspace_weight", 0.0, minimum=0.0)
        self.probe_trainable = g.create_boolean_parameter("probe_trainable", False)
        self.intensity_scale_trainable = g.create_boolean_parameter(
            "intensity_scale_trainable", True
        )
        self.validation_fraction = g.create_real_parameter(
            "validation_fraction", 0.05, minimum=0.0, maximum=0.9
        )
        self.seed = g.create_integer_parameter("seed", 0, minimum=0)
        # execution and inference
        self.accelerator = g.create_string_parameter("accelerator", "auto")
        self.inference_batch_size = g.create_integer_parameter(
            "inference_batch_size", 64, minimum=1
        )
        self.stitch_crop = g.create_integer_parameter("stitch_crop", 20, minimum=1)
        # "probe" (|probe|² weights, InferenceConfig's default) or "uniform"
        self.stitch_weight = g.create_string_parameter("stitch_weight", "probe")
        self.subprocess = g.create_boolean_parameter("subprocess", True)

    def _update(self, observable: Observable) -> None:
        if observable is self._group:
            self.notify_observers()

    # -- ptychopinn configs -------------------------------------------------------
    def model_config(self, N: int, model_type: str) -> ModelConfig:
        return ModelConfig(
            N=N,
            gridsize=self.gridsize.get_value(),
            n_filters_scale=self.n_filters_scale.get_value(),
            model_type=model_type,
            amp_activation=self.amp_activation.get_value(),
            object_big=self.object_big.get_value(),
            probe_big=self.probe_big.get_value(),
            probe_mask=self.probe_mask.get_value(),
            pad_object=self.pad_object.get_value(),
            probe_scale=self.probe_scale.get_value(),
            gaussian_smoothing_sigma=self.gaussian_smoothing_sigma.get_value(),
            architecture=self.architecture.get_value(),
            res_blocks=self.res_blocks.get_value(),
        )

    def training_config(
        self,
        model: ModelConfig,
        *,
        nphotons: float | None,
        train_file: Path | None,
        test_file: Path | None,
        output_dir: Path,
    ) -> TrainingConfig:
        n_groups = self.n_groups.get_value()
        return TrainingConfig(
            model=model,
            train_data_file=train_file,
            test_data_file=test_file,
            batch_size=self.batch_size.get_value(),
            nepochs=self.nepochs.get_value(),
            learning_rate=self.learning_rate.get_value(),
            nll_weight=self.nll_weight.get_value(),
            mae_weight=self.mae_weight.get_value(),
            realspace_mae_weight=self.realspace_mae_weight.get_value(),
            realspace_weight=self.realspace_weight.get_value(),
            nphotons=nphotons,
            n_groups=n_groups if n_groups > 0 else None,
            neighbor_count=self.neighbor_count.get_value(),
            probe_trainable=self.probe_trainable.get_value(),
            intensity_scale_trainable=self.intensity_scale_trainable.get_value(),
            validation_fraction=self.validation_fraction.get_value(),
            output_dir=output_dir,
            backend=self.backend.get_value().strip().lower(),
            seed=self.seed.get_value(),
        )

    def execution_config(self) -> ExecutionConfig:
        return ExecutionConfig(
            accelerator=self.accelerator.get_value(),
            logger="none",
            enable_progress_bar=False,
            enable_checkpointing=False,
            inference_batch_size=self.inference_batch_size.get_value(),
        )


# -- conversions between ptychodus products and ptychopinn data ---------------------


def positions_to_pixels(product: Product) -> tuple[np.ndarray, np.ndarray]:
    """Probe positions (metres) → ptychopinn object-pixel coordinates (x column, y row)."""
    geometry = product.object_.get_geometry()
    x = geometry.map_probe_positions_to_object_x_px(product.probe_positions)
    y = geometry.map_probe_positions_to_object_y_px(product.probe_positions)
    return (
        np.asarray(x, dtype=np.float64) + PIXEL_CONVENTION_OFFSET,
        np.asarray(y, dtype=np.float64) + PIXEL_CONVENTION_OFFSET,
    )


def pixels_to_positions(
    x_px: np.ndarray,
    y_px: np.ndarray,
    *,
    width_px: int,
    height_px: int,
    pixel_width_m: float,
    pixel_height_m: float,
    center_x_m: float = 0.0,
    center_y_m: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """ptychopinn object-pixel coordinates → metres in ptychodus's object frame (inverse)."""
    x = np.asarray(x_px, dtype=np.float64) - PIXEL_CONVENTION_OFFSET
    y = np.asarray(y_px, dtype=np.float64) - PIXEL_CONVENTION_OFFSET
    x_m = center_x_m + pixel_width_m * (x - (width_px - 1) / 2)
    y_m = center_y_m + pixel_height_m * (y - (height_px - 1) / 2)
    return x_m, y_m


def _first_probe_mode(product: Product, log: logging.Logger) -> np.ndarray:
    probes = product.probes
    n_opr, n_modes = probes.num_coherent_modes, probes.num_incoherent_modes
    if n_opr > 1 or n_modes > 1 or probes.get_opr_weights_or_none() is not None:
        log.info(
            "ptychopinn models one coherent probe: using OPR mode 0, incoherent mode 0 of "
            "the %d x %d probe modes; the other modes are dropped.",
            n_opr,
            n_modes,
        )
    return np.asarray(probes.get_array()[0, 0], dtype=np.complex64)


def scan_from_input(parameters: ReconstructInput, log: logging.Logger = logger) -> ScanData:
    """A ptychodus ``ReconstructInput`` as a validated ptychopinn ``ScanData``.

    Bad pixels are inpainted (as ptychodus's own exporters do), intensities become
    amplitudes, positions become object pixels, the probe is its first mode, the object
    (layer 0) travels as the object guess and the scan indexes are kept.
    """
    product = parameters.product
    patterns = inpaint_bad_pixels(parameters.diffraction_patterns, parameters.bad_pixels)
    intensity = np.asarray(patterns, dtype=np.float64)
    if np.any(intensity < 0):
        log.info("Clipping %d negative intensities to zero.", int(np.sum(intensity < 0)))
    amplitude = np.sqrt(np.clip(intensity, 0.0, None)).astype(np.float32)
    x, y = positions_to_pixels(product)
    obj = product.object_
    if obj.num_layers > 1:
        log.info("ptychopinn reconstructs one object layer: using layer 0 of %d.", obj.num_layers)
    object_geometry = obj.get_geometry()
    probe_pixel = product.probes.get_pixel_geometry()
    for axis, p_m, o_m in (
        ("width", probe_pixel.width_m, object_geometry.pixel_width_m),
        ("height", probe_pixel.height_m, object_geometry.pixel_height_m),
    ):
        if o_m > 0 and abs(p_m / o_m - 1.0) > 1e-3:
            log.warning(
                "Probe pixel %s %.4g m differs from the object pixel %s %.4g m; ptychopinn "
                "assumes they are equal.",
                axis,
                p_m,
                axis,
                o_m,
            )
    metadata = {
        "source": f"ptychodus product {product.metadata.name!r}",
        "measurement": "amplitude",
        "object_pixel_width_m": object_geometry.pixel_width_m,
        "object_pixel_height_m": object_geometry.pixel_height_m,
        "object_center_x_m": object_geometry.center_x_m,
        "object_center_y_m": object_geometry.center_y_m,
        "probe_pixel_width_m": probe_pixel.width_m,
        "probe_pixel_height_m": probe_pixel.height_m,
        "photon_energy_eV": product.metadata.photon_energy_eV,
        "detector_distance_m": product.metadata.detector_distance_m,
    }
    return ScanData(
        xcoords=x,
        ycoords=y,
        diffraction=amplitude,
        probe=_first_probe_mode(product, log),
        object=np.asarray(obj.get_layer(0), dtype=np.complex64),
        scan_index=np.asarray(product.probe_positions.get_indexes(), dtype=np.int64),
        metadata=metadata,
    )


#: Keys of ptychodus's own PtychoPINN training export (``ptychodus.api.io.
#: save_ptychopinn_training_data``); ``bad_pixels`` is the key ptychopinn's NPZs never hold.
PTYCHODUS_EXPORT_KEYS = frozenset({"diff3d", "probeGuess", "xcoords", "ycoords", "bad_pixels"})


def _shape(array: np.ndarray) -> str:
    return f"shape {tuple(array.shape)} {array.dtype}"


def is_ptychodus_export(path: Path) -> bool:
    """True when ``path`` is an NPZ written by ptychodus's built-in PtychoPINN exporter."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = set(npz.files)
    except (OSError, ValueError):
        return False  # load_npz then reports what is wrong with the file
    return PTYCHODUS_EXPORT_KEYS <= files and "metadata" not in files


def scan_from_ptychodus_export(path: Path, log: logging.Logger = logger) -> ScanData:
    """ptychodus's own PtychoPINN training export (NPZ) as a ptychopinn ``ScanData``.

    That file holds detector **intensities** in ``diff3d`` (bad pixels already
    inpainted), the probe as a (modes, N, N) stack (the first mode is used), zero scan
    indexes, and ``xcoords``/``ycoords`` from ``ObjectGeometry.map_probe_positions_to_
    object_x_px``, which puts the object centre at pixel ``(W-1)/2``: half a pixel lower
    than ptychopinn's coordinate (:data:`PIXEL_CONVENTION_OFFSET`), which is added here.
    """
    path = Path(path)
    src = str(path)
    with np.load(path, allow_pickle=False) as npz:
        intensity = np.asarray(npz["diff3d"])
        probe = np.asarray(npz["probeGuess"])
        x = np.asarray(npz["xcoords"], dtype=np.float64)
        y = np.asarray(npz["ycoords"], dtype=np.float64)
        obj = np.asarray(npz["objectGuess"]) if "objectGuess" in npz.files else None
        index = np.asarray(npz["scan_index"]) if "scan_index" in npz.files else None
    if intensity.ndim != 3 or intensity.dtype.kind not in "uif":
        raise DataContractError(src, "diff3d", "real intensities (M, N, N)", _shape(intensity))
    n = intensity.shape[-1]
    if probe.ndim == 3 and probe.shape[1:] == (n, n) and probe.shape[0] >= 1:
        if probe.shape[0] > 1:
            log.info(
                "%s: ptychopinn models one coherent probe: using mode 0 of %d.",
                path,
                probe.shape[0],
            )
        probe = probe[0]
    elif probe.shape != (n, n):
        raise DataContractError(
            src, "probeGuess", f"(modes, {n}, {n}) or ({n}, {n})", _shape(probe)
        )
    if np.any(intensity < 0):
        log.info("%s: clipping %d negative intensities to zero.", path, int(np.sum(intensity < 0)))
    amplitude = np.sqrt(np.clip(intensity.astype(np.float64), 0.0, None)).astype(np.float32)
    return ScanData(
        xcoords=x + PIXEL_CONVENTION_OFFSET,
        ycoords=y + PIXEL_CONVENTION_OFFSET,
        diffraction=amplitude,
        probe=probe,
        object=obj,
        scan_index=index,
        metadata={"source": src, "measurement": "amplitude", "exported_by": "ptychodus"},
    )


def _read_with(reader: Callable[[Path], Any], path: Path, what: str) -> Any:
    """``reader(path)``, its failure as one line naming the file, what was expected and found."""
    try:
        return reader(path)
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: expected {what}, found {type(exc).__name__}: {exc}") from exc


def scan_from_directory(directory: Path, log: logging.Logger = logger) -> ScanData:
    """A ptychodus workflow folder (``diffraction.h5`` + ``product.h5``, what ``ptychodus -b
    train`` hands over) as ``ScanData``, read with ptychodus's own readers and paired by
    scan index as ptychodus pairs them for a reconstruction."""
    from ptychodus.api.io import StandardFileLayout, load_diffraction_data, load_product
    from ptychodus.api.reconstruct import prepare_reconstruct_input

    diffraction_path = StandardFileLayout.DIFFRACTION.path(Path(directory))
    product_path = StandardFileLayout.PRODUCT.path(Path(directory))
    data = _read_with(load_diffraction_data, diffraction_path, "a ptychodus diffraction file")
    product = _read_with(load_product, product_path, "a ptychodus product file")
    parameters = prepare_reconstruct_input(data, product)
    scan = scan_from_input(parameters, log)
    scan.metadata["source"] = f"{diffraction_path} + {product_path.name}"
    return scan


def stitch_onto_object(
    patches: np.ndarray,
    offsets: np.ndarray,
    object_in: Object,
    crop: int = 20,
    phase_weight: np.ndarray | None = None,
) -> Object:
    """Stitch patches (B, N, N[, 1]) centred on offsets (B, 2) [x, y] (object pixels) onto
    ``object_in``'s grid: the result has its shape, pixel size and centre (one layer);
    pixels no patch covers keep ``object_in``'s layer-0 values. ``phase_weight``: the
    (N, N) weight of the phase average (``ptychopinn.core.stitch_phase_weight``); None
    is uniform."""
    from ptychopinn.stitch import reassemble

    background = np.asarray(object_in.get_layer(0))
    # The canvas is the object's own pixel grid: its pixel (0, 0) is object pixel (0, 0).
    stitched = reassemble(
        patches,
        offsets,
        crop=crop,
        shape=background.shape,
        origin=(0.0, 0.0),
        phase_weight=phase_weight,
    )
    array = np.where(stitched.covered, stitched.image, background).astype(np.complex64)
    return Object(
        array=array[np.newaxis],
        pixel_geometry=object_in.get_pixel_geometry().copy(),
        center=object_in.get_center().copy(),
        layer_spacing_m=[],
    )


# -- child-process jobs (pure functions of picklable arguments) -----------------------
#
# A job runs in a fresh spawned process (or, with the ``subprocess`` setting off, a
# thread) and talks to the parent over two queues: ``events`` carries ('log', level,
# name, message), ('epoch', n), ('result', value), ('error', type, message, traceback)
# and a final None; ``control`` answers each ('epoch', n) with True (go on) or False
# (stop after this epoch), so a stop takes effect at the next epoch boundary.

#: Exceptions re-raised in the parent under their own type (the rest as RuntimeError).
_PORTABLE_ERRORS = frozenset(
    {"ValueError", "FileNotFoundError", "RuntimeError", "MemoryError", "TypeError", "KeyError"}
)


def _check_framework(backend: str) -> None:
    """Refuse to import a backend into a process that already holds the other framework."""
    other = {"tensorflow": ("lightning", "torch"), "pytorch": ("tensorflow", "keras")}
    for module in other.get(backend, ()):
        if module in sys.modules:
            raise RuntimeError(
                f"The {backend} backend cannot run in this process: {module} is already "
                "imported (TensorFlow and Lightning must not share a process). Enable the "
                "'subprocess' setting."
            )


class _QueueLogHandler(logging.Handler):
    """Forwards the job's log records to the parent, which re-emits them by name."""

    def __init__(self, events: Any) -> None:
        super().__init__()
        self._events = events

    def emit(self, record: logging.LogRecord) -> None:
        # ptychopinn's own records; the frameworks' chatter only from warnings up (they
        # print their informational lines to the console themselves).
        if not record.name.startswith("ptychopinn") and record.levelno < logging.WARNING:
            return
        try:
            self._events.put(("log", record.levelno, record.name, record.getMessage()))
        except Exception:  # a logging failure must never break the job
            pass


def _job_main(
    function: Callable[..., Any], args: tuple[Any, ...], events: Any, control: Any, forward: bool
) -> None:
    """Entry of a job (child process or thread): run ``function``, report its outcome."""
    handler = None
    if forward:  # a spawned child: its logs would otherwise be lost
        quiet_framework_environment()
        handler = _QueueLogHandler(events)
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
    try:
        events.put(("result", function(events, control, *args)))
    except BaseException as exc:  # every failure goes back to the parent
        events.put(("error", type(exc).__name__, str(exc), traceback.format_exc()))
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
        events.put(None)


class _Job:
    """One backend call in a spawned process (or a thread) and its stream of events."""

    POLL_S = 1.0

    def __init__(
        self, what: str, function: Callable[..., Any], args: tuple[Any, ...], *, spawn: bool
    ) -> None:
        self._what = what
        self._worker: Any
        if spawn:
            context = multiprocessing.get_context("spawn")
            self._events: Any = context.Queue()
            self._control: Any = context.Queue()
            self._worker = context.Process(
                target=_job_main,
                args=(function, args, self._events, self._control, True),
                name=f"ptychopinn-{what}",
            )
        else:
            self._events, self._control = queue.Queue(), queue.Queue()
            self._worker = threading.Thread(
                target=_job_main,
                args=(function, args, self._events, self._control, False),
                name=f"ptychopinn-{what}",
                daemon=True,
            )
        self._worker.start()
        self.finished = False

    def _next(self) -> Any:
        while True:
            try:
                return self._events.get(timeout=self.POLL_S)
            except queue.Empty:
                if not self._worker.is_alive():
                    try:  # its last words may have arrived just now
                        return self._events.get(timeout=self.POLL_S)
                    except queue.Empty:
                        code = getattr(self._worker, "exitcode", None)
                        raise RuntimeError(
                            f"the ptychopinn {self._what} process ended (exit code {code}) "
                            "without a result (killed, or out of memory?)"
                        ) from None

    def events(self, log: logging.Logger) -> Iterator[tuple[Any, ...]]:
        """The job's ('epoch', n) and ('result', value) events; logs are re-emitted to
        their loggers (``log`` for the job's own), a failure is raised here."""
        while True:
            item = self._next()
            if item is None:
                self.finished = True
                return
            tag = item[0]
            if tag == "log":
                _, level, name, message = item
                target = log if name.startswith("ptychopinn") else logging.getLogger(name)
                target.log(level, message)
            elif tag == "error":
                self.finished = True
                _, type_name, message, trace = item
                log.debug("ptychopinn %s failed:\n%s", self._what, trace)
                if type_name in _PORTABLE_ERRORS:
                    raise getattr(builtins, type_name)(message)
                raise RuntimeError(f"{type_name}: {message}")
            else:
                yield item

    def reply(self, go_on: bool) -> None:
        self._control.put(go_on)

    def close(self) -> None:
        """Wait briefly for the worker, then end it (a spawned process only)."""
        self._worker.join(timeout=10.0)
        if isinstance(self._worker, threading.Thread):
            return
        if self._worker.is_alive():
            self._worker.terminate()
            self._worker.join(timeout=10.0)
        if self._worker.is_alive():
            self._worker.kill()
            self._worker.join()


def _predict_job(
    events: Any, control: Any, backend_name: str, bundle: str, grouped: Any, batch_size: int
) -> np.ndarray:
    from ptychopinn.core import get_backend

    _check_framework(backend_name)
    backend = get_backend(backend_name)
    model = backend.load_bundle(bundle)
    return np.asarray(backend.predict(model, grouped, batch_size=batch_size))


def _train_job(
    events: Any,
    control: Any,
    backend_name: str,
    train: Any,
    test: Any,
    config: TrainingConfig,
    execution: ExecutionConfig,
    bundle: str,
) -> dict[str, list[float]]:
    from ptychopinn.core import get_backend

    _check_framework(backend_name)
    backend = get_backend(backend_name)

    def on_epoch_end(epoch: int, model: Any) -> bool:
        events.put(("epoch", epoch + 1))
        return not control.get()  # the parent's answer: go on (True) or stop

    result = backend.train(train, test, config, execution, on_epoch_end=on_epoch_end)
    backend.save_bundle(result.model, bundle)
    return {k: [float(v) for v in values] for k, values in result.history.items()}


# -- the reconstructor -----------------------------------------------------------------


class PtychoPINNTrainableReconstructor(TrainableReconstructor):
    """ptychopinn (``model_type`` ``pinn`` or ``supervised``) as a ptychodus reconstructor."""

    #: One yielded output per reconstruction: ptychodus's batch mode writes each yielded
    #: product as ``product.<progress>.h5``, so an intermediate yield would save the
    #: unreconstructed input as if it were a result.
    RECONSTRUCT_STEPS = 1

    def __init__(
        self,
        name: str,
        model_type: str,
        settings: PtychoPINNAppSettings,
        log: logging.Logger = logger,
    ) -> None:
        super().__init__()
        self._name = name
        self._model_type = model_type
        self._settings = settings
        self._log = log
        self._model_path: Path | None = None
        self._manifest: dict[str, Any] | None = None
        self._goal: int | None = None
        self._losses: list[LossValue] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def model_path(self) -> Path | None:
        """The bundle ``reconstruct`` uses (opened or just trained), if any."""
        return self._model_path

    def get_progress_goal(self) -> int:
        return self._goal if self._goal is not None else self._settings.nepochs.get_value()

    def _backend(self) -> str:
        return self._settings.backend.get_value().strip().lower()

    def _job(self, what: str, function: Callable[..., Any], *args: Any) -> _Job:
        return _Job(what, function, args, spawn=self._settings.subprocess.get_value())

    def _run(self, what: str, function: Callable[..., Any], *args: Any) -> Any:
        """Run a job without epochs to its result."""
        job = self._job(what, function, *args)
        try:
            for event in job.events(self._log):
                if event[0] == "result":
                    return event[1]
        finally:
            job.close()
        raise RuntimeError(f"the ptychopinn {what} job ended without a result")

    # -- reconstruct -----------------------------------------------------------
    def reconstruct(self, parameters: ReconstructInput) -> Iterator[ReconstructOutput]:
        if self._model_path is None or self._manifest is None:
            raise RuntimeError(
                f"ptychopinn {self._name}: no model loaded; open a model bundle or train one "
                f"first (batch mode loads INPUT_DIR/{MODEL_FILE_NAME}: training writes it, or "
                f"copy or rename a {BUNDLE_NAME} to that name)."
            )
        self._goal = self.RECONSTRUCT_STEPS
        try:
            scan = scan_from_input(parameters, self._log)
            model = dict(self._manifest.get("config", {})).get("model", {})
            gridsize = int(model.get("gridsize", self._manifest.get("gridsize", 1)))
            n_model = int(model.get("N", self._manifest.get("N", scan.N)))
            if n_model != scan.N:
                raise ValueError(
                    f"The model expects {n_model}x{n_model} diffraction patterns; the "
                    f"input has {scan.N}x{scan.N} (crop or bin the patterns in ptychodus)."
                )
            intensity_scale = self._manifest.get("intensity_scale")
            grouped = group(
                scan,
                gridsize=gridsize,
                n_groups=None,
                neighbor_count=max(self._settings.neighbor_count.get_value(), gridsize**2 - 1),
                seed=self._settings.seed.get_value(),
                probe_scale=float(model.get("probe_scale", self._settings.probe_scale.get_value())),
                intensity_scale=None if intensity_scale is None else float(intensity_scale),
            )
            self._log.info(
                "ptychopinn %s: %d patterns (N=%d, gridsize %d) with the %s backend.",
                self._name,
                scan.n_positions,
                scan.N,
                gridsize,
                self._backend(),
            )
            patches = self._run(
                "reconstruct",
                _predict_job,
                self._backend(),
                str(self._model_path),
                grouped,
                self._settings.inference_batch_size.get_value(),
            )
            object_out = stitch_onto_object(
                np.asarray(patches),
                grouped.coords_offsets[:, 0, :, 0],
                parameters.product.object_,
                crop=self._settings.stitch_crop.get_value(),
                phase_weight=stitch_phase_weight(self._settings.stitch_weight.get_value(), grouped),
            )
            product = Product(
                metadata=parameters.product.metadata,
                probe_positions=parameters.product.probe_positions,
                probes=parameters.product.probes,
                object_=object_out,
                # The model's training losses, where ptychodus keeps a product's losses
                # (product.h5 loss_epochs/loss_values, the GUI's loss plot).
                losses=self._losses or parameters.product.losses,
            )
            yield ReconstructOutput(product, progress=self.RECONSTRUCT_STEPS)
        finally:
            self._goal = None

    # -- models ------------------------------------------------------------------
    def is_model_loaded(self) -> bool:
        return self._model_path is not None

    def get_model_file_filter(self) -> str:
        return "ptychopinn Model Bundles (*.h5.zip *.zip)"

    def get_model_file_extension(self) -> str:
        return ".zip"

    def load_model_from_file(self, file_path: Path) -> None:
        """Open a bundle: verified (hashes, format) without importing any framework."""
        path = Path(file_path)
        bundle = read_bundle(path)
        self._manifest = dict(bundle.manifest)
        self._model_path = path
        self._losses = _read_losses(path.parent / HISTORY_FILE_NAME, self._log)
        self._log.info(
            "Opened ptychopinn model %s (trained with the %s backend).",
            path,
            self._manifest.get("backend", "unknown"),
        )

    def save_model(self, file_path: Path) -> None:
        """Copy the current bundle (``wts.h5.zip``) to ``file_path``."""
        if self._model_path is None:
            raise RuntimeError(f"Cannot save ptychopinn {self._name} model: none is loaded.")
        dest = Path(file_path)
        if dest.resolve() != self._model_path.resolve():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._model_path, dest)

    # -- training ----------------------------------------------------------------
    def get_training_data_file_filter(self) -> str:
        return "NumPy Zipped Archive (*.npz)"

    def export_training_data(self, file_path: Path, parameters: ReconstructInput) -> None:
        """Write the input as a ptychopinn NPZ (amplitude) that ``train`` reads directly."""
        path = Path(file_path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
            self._log.info("Training data file name gets the .npz suffix: %s", path)
        save_npz(scan_from_input(parameters, self._log), path)

    @staticmethod
    def training_files(input_path: Path) -> tuple[Path, Path | None]:
        """(train, test) files for ``input_path``: a file, or a directory holding them.

        In a directory: ``train_data.npz``/``test_data.npz`` (or ``train.npz``/``test.npz``);
        otherwise its only ``*.npz`` file, validated on a split of it; otherwise
        ptychodus's workflow pair ``diffraction.h5`` + ``product.h5`` (what ``ptychodus -b
        train`` hands over), returned as the ``diffraction.h5`` path.
        """
        from ptychodus.api.io import StandardFileLayout

        path = Path(input_path)
        if path.is_file():
            return path, None
        if not path.is_dir():
            raise FileNotFoundError(f"No training data at {path}")
        train = next((path / n for n in TRAIN_FILE_NAMES if (path / n).is_file()), None)
        test = next((path / n for n in TEST_FILE_NAMES if (path / n).is_file()), None)
        if train is None:
            candidates = sorted(p for p in path.glob("*.npz") if p != test)
            diffraction = StandardFileLayout.DIFFRACTION.path(path)
            pair = diffraction.is_file() and StandardFileLayout.PRODUCT.path(path).is_file()
            if not candidates and test is None and pair:
                return diffraction, None
            if len(candidates) != 1:
                raise FileNotFoundError(
                    f"{path} must hold {TRAIN_FILE_NAMES[0]} (and optionally "
                    f"{TEST_FILE_NAMES[0]}), exactly one .npz file, or "
                    f"{StandardFileLayout.DIFFRACTION} + {StandardFileLayout.PRODUCT}; found "
                    f"{sorted(p.name for p in path.iterdir())}"
                )
            train = candidates[0]
        return train, test

    def load_training_scan(self, path: Path) -> ScanData:
        """One training file (see :meth:`training_files`) as ``ScanData``: a ptychopinn
        NPZ, ptychodus's own PtychoPINN export, or a ptychodus ``diffraction.h5`` read
        with the ``product.h5`` beside it."""
        from ptychodus.api.io import StandardFileLayout

        path = Path(path)
        if path.name == StandardFileLayout.DIFFRACTION:
            return scan_from_directory(path.parent, self._log)
        if path.suffix == ".npz" and is_ptychodus_export(path):
            self._log.info("%s: reading ptychodus's PtychoPINN training export.", path)
            return scan_from_ptychodus_export(path, self._log)
        return load_npz(path)

    def train(self, input_path: Path, output_path: Path) -> Iterator[TrainOutput]:
        """Train, yielding progress after every epoch; closing this generator (ptychodus's
        Stop) ends training after the current epoch and keeps the model trained so far."""
        train_file, test_file = self.training_files(input_path)
        scan = self.load_training_scan(train_file)
        test_scan = None if test_file is None else self.load_training_scan(test_file)
        setting = self._settings.nphotons.get_value()
        # 0 = "from the data": the one policy (metadata, else the mean counts per pattern).
        photons = photon_count(scan, setting if setting > 0 else None)
        self._log.info("ptychopinn %s: %s.", self._name, photons.describe())
        output = Path(output_path)
        output.mkdir(parents=True, exist_ok=True)
        config = self._settings.training_config(
            self._settings.model_config(scan.N, self._model_type),
            nphotons=photons.value,
            train_file=train_file,
            test_file=test_file,
            output_dir=output,
        )
        train_data = group_for_config(scan, config.model, config, nphotons=photons.value)
        test_data = (
            None
            if test_scan is None
            else group_for_config(test_scan, config.model, config, nphotons=photons.value)
        )
        bundle = output / BUNDLE_NAME
        self._log.info(
            "ptychopinn %s: training on %d groups for %d epochs with the %s backend.",
            self._name,
            len(train_data),
            config.nepochs,
            config.backend,
        )
        yield TrainOutput(progress=0)
        job = self._job(
            "train",
            _train_job,
            config.backend,
            train_data,
            test_data,
            config,
            self._settings.execution_config(),
            str(bundle),
        )
        history: dict[str, list[float]] | None = None
        epochs = 0
        answer_owed = False
        try:
            events = job.events(self._log)
            for event in events:
                if event[0] == "epoch":
                    epochs, answer_owed = int(event[1]), True
                    self._log.info(
                        "ptychopinn %s: epoch %d/%d done.", self._name, epochs, config.nepochs
                    )
                    yield TrainOutput(progress=epochs)  # GeneratorExit here on a stop
                    job.reply(True)
                    answer_owed = False
                elif event[0] == "result":
                    history = event[1]
        finally:
            if history is None and not job.finished:
                # Stopped by the consumer: end after this epoch, keep what was trained.
                self._log.info("ptychopinn %s: stopping after epoch %d.", self._name, epochs)
                if answer_owed:
                    job.reply(False)
                for event in events:
                    if event[0] == "epoch":
                        epochs = int(event[1])
                        job.reply(False)
                    elif event[0] == "result":
                        history = event[1]
            job.close()
            if history is not None:
                self._publish(bundle, history)
        yield TrainOutput(
            training_loss=_losses(history.get(TRAIN_LOSS, [])) if history else [],
            validation_loss=_losses(history.get(VAL_LOSS, [])) if history else [],
            progress=epochs,
        )

    def _publish(self, bundle: Path, history: dict[str, list[float]]) -> None:
        """After training: history.json, the bundle also as model.zip, the model loaded."""
        write_text_atomic(bundle.parent / HISTORY_FILE_NAME, json.dumps(history, indent=1))
        alias = bundle.parent / MODEL_FILE_NAME
        with atomic_write(alias) as tmp:  # a killed copy never leaves a truncated model.zip
            shutil.copyfile(bundle, tmp)
        self.load_model_from_file(bundle)
        self._log.info(
            "ptychopinn %s: model written to %s (and %s, the name ptychodus -b reconstruct loads).",
            self._name,
            bundle,
            alias.name,
        )


def _losses(values: Sequence[float]) -> list[LossValue]:
    return [LossValue(epoch=i, value=float(v)) for i, v in enumerate(values) if math.isfinite(v)]


def _read_losses(path: Path, log: logging.Logger) -> list[LossValue]:
    """The training losses in a history.json next to a bundle (none when absent)."""
    if not path.is_file():
        return []
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
        return _losses([float(v) for v in history.get(TRAIN_LOSS, [])])
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        log.warning("%s: expected a training history, found %s; losses not shown.", path, exc)
        return []


class PtychoPINNReconstructorLibrary(ReconstructorLibrary):
    """ptychopinn's reconstructors (``PINN``, ``Supervised``) for ptychodus's processing list.

    The library name is distinct from ptychodus's built-in ``PtychoPINN`` library (which
    looks for upstream's ``ptycho`` package), so both can be listed side by side.
    """

    NAME = "PtychoPINN-App"

    def __init__(
        self, settings_registry: SettingsRegistry, is_developer_mode_enabled: bool = False
    ) -> None:
        super().__init__(__name__)
        self.settings = PtychoPINNAppSettings(settings_registry)
        self._reconstructors: list[PtychoPINNTrainableReconstructor] = [
            PtychoPINNTrainableReconstructor("PINN", "pinn", self.settings, self.get_logger()),
            PtychoPINNTrainableReconstructor(
                "Supervised", "supervised", self.settings, self.get_logger()
            ),
        ]

    @property
    def name(self) -> str:
        return self.NAME

    def __iter__(self) -> Iterator[Reconstructor]:
        return iter(self._reconstructors)
