"""ptychodus adapter: ptychopinn as a trainable reconstructor inside ptychodus (>= 1.7).

ptychodus has no reconstructor plugin mechanism; add one line to the list of
reconstructor libraries that ``ptychodus/model/core.py`` hands to ``ProcessingCore``::

    PtychoPINNReconstructorLibrary(self.settings_registry, self.is_developer_mode_enabled),

(with ``from ptychopinn.app.ptychodus import PtychoPINNReconstructorLibrary``). The
library offers two reconstructors, ``PINN`` (unsupervised, Poisson likelihood) and
``Supervised``, configured by the settings group ``PtychoPINNApp``
(:class:`PtychoPINNAppSettings`). ptychodus is an optional dependency: only this
module imports it.

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
- The backend (``tensorflow`` or ``pytorch``) is a setting. Each ``reconstruct`` and
  ``train`` call runs the backend in a fresh spawned process (setting ``subprocess``),
  as ptychodus does for its own reconstructors: ptychodus never imports a deep-learning
  framework, and TensorFlow and Lightning never meet in one process.
- The reconstruction is stitched onto the input object's pixel grid: the returned
  object has the input's shape, pixel size and centre; pixels that no patch covers keep
  the input object's values.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
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
from ptychopinn.core import BUNDLE_NAME
from ptychopinn.core.history import TRAIN_LOSS, VAL_LOSS
from ptychopinn.data import ScanData, group, group_for_config, load_npz, photon_count, save_npz
from ptychopinn.data.bundle import read_bundle

__all__ = [
    "BUNDLE_NAME",
    "PtychoPINNAppSettings",
    "PtychoPINNReconstructorLibrary",
    "PtychoPINNTrainableReconstructor",
    "pixels_to_positions",
    "positions_to_pixels",
    "scan_from_input",
    "stitch_onto_object",
]

logger = logging.getLogger(__name__)

#: File name of the model bundle ``train`` writes into its output directory.
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


def stitch_onto_object(
    patches: np.ndarray, offsets: np.ndarray, object_in: Object, crop: int = 20
) -> Object:
    """Stitch patches (B, N, N[, 1]) centred on offsets (B, 2) [x, y] (object pixels) onto
    ``object_in``'s grid: the result has its shape, pixel size and centre (one layer);
    pixels no patch covers keep ``object_in``'s layer-0 values."""
    from ptychopinn.stitch import reassemble

    background = np.asarray(object_in.get_layer(0))
    # The canvas is the object's own pixel grid: its pixel (0, 0) is object pixel (0, 0).
    stitched = reassemble(patches, offsets, crop=crop, shape=background.shape, origin=(0.0, 0.0))
    array = np.where(stitched.covered, stitched.image, background).astype(np.complex64)
    return Object(
        array=array[np.newaxis],
        pixel_geometry=object_in.get_pixel_geometry().copy(),
        center=object_in.get_center().copy(),
        layer_spacing_m=[],
    )


# -- child-process jobs (pure functions of picklable arguments) -----------------------


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


def _predict_job(backend_name: str, bundle: str, grouped: Any, batch_size: int) -> np.ndarray:
    from ptychopinn.core import get_backend

    _check_framework(backend_name)
    backend = get_backend(backend_name)
    model = backend.load_bundle(bundle)
    return np.asarray(backend.predict(model, grouped, batch_size=batch_size))


def _train_job(
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
    result = backend.train(train, test, config, execution)
    backend.save_bundle(result.model, bundle)
    return result.history


# -- the reconstructor -----------------------------------------------------------------


class PtychoPINNTrainableReconstructor(TrainableReconstructor):
    """ptychopinn (``model_type`` ``pinn`` or ``supervised``) as a ptychodus reconstructor."""

    RECONSTRUCT_STEPS = 2

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

    def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        if not self._settings.subprocess.get_value():
            return function(*args)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            return pool.submit(function, *args).result()

    # -- reconstruct -----------------------------------------------------------
    def reconstruct(self, parameters: ReconstructInput) -> Iterator[ReconstructOutput]:
        if self._model_path is None or self._manifest is None:
            raise RuntimeError(
                f"ptychopinn {self._name}: no model loaded; open a model bundle "
                f"({BUNDLE_NAME}) or train one first."
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
            yield ReconstructOutput(parameters.product, progress=1)
            patches = self._call(
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
            )
            product = Product(
                metadata=parameters.product.metadata,
                probe_positions=parameters.product.probe_positions,
                probes=parameters.product.probes,
                object_=object_out,
                losses=parameters.product.losses,
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
        """(train, test) files for ``input_path``: an NPZ file, or a directory holding them.

        In a directory: ``train_data.npz``/``test_data.npz`` (or ``train.npz``/``test.npz``);
        otherwise its only ``*.npz`` file, validated on a split of it.
        """
        path = Path(input_path)
        if path.is_file():
            return path, None
        if not path.is_dir():
            raise FileNotFoundError(f"No training data at {path}")
        train = next((path / n for n in TRAIN_FILE_NAMES if (path / n).is_file()), None)
        test = next((path / n for n in TEST_FILE_NAMES if (path / n).is_file()), None)
        if train is None:
            candidates = sorted(p for p in path.glob("*.npz") if p != test)
            if len(candidates) != 1:
                raise FileNotFoundError(
                    f"{path} must hold {TRAIN_FILE_NAMES[0]} (and optionally "
                    f"{TEST_FILE_NAMES[0]}) or exactly one .npz file; found "
                    f"{[p.name for p in candidates]}"
                )
            train = candidates[0]
        return train, test

    def train(self, input_path: Path, output_path: Path) -> Iterator[TrainOutput]:
        train_file, test_file = self.training_files(input_path)
        scan = load_npz(train_file)
        test_scan = None if test_file is None else load_npz(test_file)
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
        history = self._call(
            _train_job,
            config.backend,
            train_data,
            test_data,
            config,
            self._settings.execution_config(),
            str(bundle),
        )
        self.load_model_from_file(bundle)
        yield TrainOutput(
            training_loss=_losses(history.get(TRAIN_LOSS, [])),
            validation_loss=_losses(history.get(VAL_LOSS, [])),
            progress=config.nepochs,
        )


def _losses(values: Sequence[float]) -> list[LossValue]:
    return [LossValue(epoch=i, value=float(v)) for i, v in enumerate(values) if math.isfinite(v)]


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
