"""The four configuration dataclasses: model, training, inference and execution."""

import math
import os
import warnings
from dataclasses import InitVar, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Self

from .errors import ConfigError

__all__ = [
    "ACCELERATORS",
    "AMP_ACTIVATIONS",
    "ARCHITECTURES",
    "BACKENDS",
    "GRADIENT_CLIP_ALGORITHMS",
    "LOGGERS",
    "MODEL_TYPES",
    "PRECISIONS",
    "STRATEGIES",
    "SUPPORTED_N",
    "ExecutionConfig",
    "InferenceConfig",
    "ModelConfig",
    "TrainingConfig",
]

SUPPORTED_N = (64, 128, 256)
MODEL_TYPES = ("pinn", "supervised")
AMP_ACTIVATIONS = ("sigmoid", "swish", "softplus", "relu")
#: Network architectures of the layer plan (METHOD.md §5): the upstream CNN, or the CNN
#: with a trunk of residual blocks at the bottleneck.
ARCHITECTURES = ("cnn", "resnet")
BACKENDS = ("tensorflow", "pytorch")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
STRATEGIES = ("auto", "single_device", "ddp", "ddp_spawn", "fsdp", "deepspeed", "mirrored")
PRECISIONS = ("32", "32-true", "64", "64-true", "16-mixed", "bf16-mixed")
GRADIENT_CLIP_ALGORITHMS = ("norm", "value")
LOGGERS = ("csv", "tensorboard", "mlflow", "none")
# "probe": each patch's pixels weighted by the probe intensity |P|^2 when stitching
# (METHOD.md §7); "uniform": every cropped pixel alike (upstream's stitching).
STITCH_WEIGHTS = ("probe", "uniform")


# --- validation helpers: each raises ConfigError naming field, value and what is allowed ---


def _fail(owner: str, name: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{owner}.{name}={value!r} is not supported; {allowed}")


def _choices_text(choices: tuple[Any, ...]) -> str:
    shown = [repr(c) if isinstance(c, str) else str(c) for c in choices]
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " or " + shown[-1]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_choice(owner: str, name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if _is_int(value) or isinstance(value, str):
        if value in choices:
            return
    _fail(owner, name, value, f"choose {_choices_text(choices)}")


def _check_bool(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(owner, name, value, "choose true or false")


def _check_int(owner: str, name: str, value: Any, minimum: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not _is_int(value) or value < minimum:
        extra = " or null" if optional else ""
        _fail(owner, name, value, f"use an integer >= {minimum}{extra}")


def _check_float(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float = 0.0,
    low_inclusive: bool = True,
    high: float | None = None,
    high_inclusive: bool = True,
    optional: bool = False,
) -> float | None:
    """Check a finite number in a range and return it as float (None passes when optional)."""
    if optional and value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok:
        number = float(value)
        ok = math.isfinite(number)
        ok = ok and (number >= low if low_inclusive else number > low)
        if high is not None:
            ok = ok and (number <= high if high_inclusive else number < high)
    if not ok:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        upper = "inf)" if high is None else f"{high:g}{right}"
        extra = " or null" if optional else ""
        _fail(owner, name, value, f"use a finite number in {left}{low:g}, {upper}{extra}")
    return float(value)


def _as_path(owner: str, name: str, value: Any, optional: bool) -> Path | None:
    if value is None:
        if optional:
            return None
        _fail(owner, name, value, "use a file system path")
    if isinstance(value, str | os.PathLike) and str(value) != "":
        return Path(value)
    _fail(owner, name, value, "use a non-empty file system path" + (" or null" if optional else ""))
    return None  # pragma: no cover - _fail always raises


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _fold_n_images(obj: Any, owner: str, n_images: Any) -> None:
    """Accept the deprecated ``n_images`` alias of ``n_groups``, with a DeprecationWarning."""
    if n_images is None:
        return
    warnings.warn(
        f"{owner}: 'n_images' is deprecated; use 'n_groups' (the number of groups, "
        "whatever the gridsize)",
        DeprecationWarning,
        stacklevel=4,
    )
    if obj.n_groups is None:
        _set(obj, "n_groups", n_images)
    elif obj.n_groups != n_images:
        raise ConfigError(
            f"{owner}.n_images={n_images!r} conflicts with n_groups={obj.n_groups!r}; "
            "give only n_groups"
        )


class _ConfigBase:
    """Shared convenience methods of the configuration dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        """Return this config as a JSON-safe dict (see ``ptychopinn.config.to_dict``)."""
        from .serialization import to_dict

        return to_dict(self)  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Build this config from a dict written by ``to_dict`` (see ``ptychopinn.config.from_dict``)."""
        from .serialization import from_dict

        return from_dict(cls, data)  # type: ignore[arg-type,return-value]

    def replace(self, **changes: Any) -> Self:
        """Return a validated copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Return the names of this config's stored fields, in order."""
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]


@dataclass(frozen=True)
class ModelConfig(_ConfigBase):
    """Network architecture and physics settings (METHOD.md §4-§5)."""

    N: int = 64
    gridsize: int = 1
    n_filters_scale: int = 2
    model_type: str = "pinn"
    amp_activation: str = "sigmoid"
    object_big: bool = True
    probe_big: bool = True
    probe_mask: bool = False
    pad_object: bool = True
    probe_scale: float = 4.0
    gaussian_smoothing_sigma: float = 0.0
    architecture: str = "cnn"
    res_blocks: int = 4

    def __post_init__(self) -> None:
        o = "ModelConfig"
        if self.N not in SUPPORTED_N or not _is_int(self.N):
            _fail(o, "N", self.N, "choose 64, 128 or 256")
        _check_int(o, "gridsize", self.gridsize, 1)
        _check_int(o, "n_filters_scale", self.n_filters_scale, 1)
        _check_choice(o, "model_type", self.model_type, MODEL_TYPES)
        _check_choice(o, "amp_activation", self.amp_activation, AMP_ACTIVATIONS)
        _check_choice(o, "architecture", self.architecture, ARCHITECTURES)
        _check_int(o, "res_blocks", self.res_blocks, 1)
        for name in ("object_big", "probe_big", "probe_mask", "pad_object"):
            _check_bool(o, name, getattr(self, name))
        _set(
            self,
            "probe_scale",
            _check_float(o, "probe_scale", self.probe_scale, low_inclusive=False),
        )
        _set(
            self,
            "gaussian_smoothing_sigma",
            _check_float(o, "gaussian_smoothing_sigma", self.gaussian_smoothing_sigma),
        )

    @property
    def C(self) -> int:
        """Channels per group, gridsize**2."""
        return self.gridsize**2


def _check_sampling(obj: Any, owner: str) -> None:
    """Validate the grouping fields shared by training and inference."""
    _check_int(owner, "n_groups", obj.n_groups, 1, optional=True)
    _check_int(owner, "n_subsample", obj.n_subsample, 1, optional=True)
    _check_int(owner, "subsample_seed", obj.subsample_seed, 0, optional=True)
    _check_int(owner, "neighbor_count", obj.neighbor_count, 1)
    needed = obj.model.gridsize**2 - 1
    if obj.neighbor_count < needed:
        raise ConfigError(
            f"{owner}.neighbor_count={obj.neighbor_count} is too small for "
            f"model.gridsize={obj.model.gridsize}; use neighbor_count >= gridsize**2 - 1 = {needed}"
        )
    _check_choice(owner, "backend", obj.backend, BACKENDS)
    _check_int(owner, "seed", obj.seed, 0)


@dataclass(frozen=True)
class TrainingConfig(_ConfigBase):
    """Training settings: data, optimisation, loss weights, grouping (METHOD.md §4, §6)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train_data_file: Path | None = None
    test_data_file: Path | None = None
    batch_size: int = 16
    nepochs: int = 50
    learning_rate: float = 1e-3
    nll_weight: float = 1.0
    mae_weight: float = 0.0
    realspace_mae_weight: float = 0.0
    realspace_weight: float = 0.0
    nphotons: float | None = None
    n_groups: int | None = None
    n_subsample: int | None = None
    subsample_seed: int | None = None
    neighbor_count: int = 4
    positions_provided: bool = True
    probe_trainable: bool = False
    intensity_scale_trainable: bool = True
    validation_fraction: float = 0.05
    lr_patience: int = 2
    lr_factor: float = 0.5
    min_lr: float = 1e-4
    output_dir: Path = Path("training_outputs")
    backend: str = "tensorflow"
    seed: int = 0
    n_images: InitVar[int | None] = None

    def __post_init__(self, n_images: int | None) -> None:
        o = "TrainingConfig"
        if not isinstance(self.model, ModelConfig):
            _fail(o, "model", self.model, "use a ModelConfig")
        _fold_n_images(self, o, n_images)
        _set(self, "train_data_file", _as_path(o, "train_data_file", self.train_data_file, True))
        _set(self, "test_data_file", _as_path(o, "test_data_file", self.test_data_file, True))
        _set(self, "output_dir", _as_path(o, "output_dir", self.output_dir, False))
        _check_int(o, "batch_size", self.batch_size, 1)
        _check_int(o, "nepochs", self.nepochs, 1)
        _set(
            self,
            "learning_rate",
            _check_float(o, "learning_rate", self.learning_rate, low_inclusive=False),
        )
        weights = ("nll_weight", "mae_weight", "realspace_mae_weight", "realspace_weight")
        for name in weights:
            _set(self, name, _check_float(o, name, getattr(self, name)))
        if self.model.model_type == "pinn" and sum(getattr(self, w) for w in weights) <= 0:
            raise ConfigError(
                f"{o}: all loss weights are 0 ({', '.join(weights)}); a 'pinn' model needs "
                "at least one positive weight, e.g. nll_weight=1.0"
            )
        _set(
            self,
            "nphotons",
            _check_float(o, "nphotons", self.nphotons, low_inclusive=False, optional=True),
        )
        _check_sampling(self, o)
        for name in ("positions_provided", "probe_trainable", "intensity_scale_trainable"):
            _check_bool(o, name, getattr(self, name))
        _set(
            self,
            "validation_fraction",
            _check_float(
                o, "validation_fraction", self.validation_fraction, high=1.0, high_inclusive=False
            ),
        )
        _check_int(o, "lr_patience", self.lr_patience, 0)
        _set(
            self,
            "lr_factor",
            _check_float(
                o, "lr_factor", self.lr_factor, low_inclusive=False, high=1.0, high_inclusive=False
            ),
        )
        _set(self, "min_lr", _check_float(o, "min_lr", self.min_lr))


@dataclass(frozen=True)
class InferenceConfig(_ConfigBase):
    """Inference settings: the model bundle, the data, grouping and stitching (METHOD.md §7)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    model_path: Path | None = None
    test_data_file: Path | None = None
    n_groups: int | None = None
    n_subsample: int | None = None
    subsample_seed: int | None = None
    neighbor_count: int = 4
    output_dir: Path = Path("inference_outputs")
    backend: str = "tensorflow"
    seed: int = 0
    stitch_crop: int = 20
    stitch_weight: str = "probe"
    n_images: InitVar[int | None] = None

    def __post_init__(self, n_images: int | None) -> None:
        o = "InferenceConfig"
        if not isinstance(self.model, ModelConfig):
            _fail(o, "model", self.model, "use a ModelConfig")
        _fold_n_images(self, o, n_images)
        _set(self, "model_path", _as_path(o, "model_path", self.model_path, True))
        _set(self, "test_data_file", _as_path(o, "test_data_file", self.test_data_file, True))
        _set(self, "output_dir", _as_path(o, "output_dir", self.output_dir, False))
        _check_sampling(self, o)
        _check_int(o, "stitch_crop", self.stitch_crop, 1)
        if self.stitch_crop > self.model.N:
            raise ConfigError(
                f"{o}.stitch_crop={self.stitch_crop} is larger than the patch "
                f"(model.N={self.model.N}); use 1 <= stitch_crop <= N"
            )
        _check_choice(o, "stitch_weight", self.stitch_weight, STITCH_WEIGHTS)


@dataclass(frozen=True)
class ExecutionConfig(_ConfigBase):
    """Where and how to run: devices, precision, data loading, logging, checkpoints."""

    accelerator: str = "auto"
    devices: int | str | tuple[int, ...] = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32"
    deterministic: bool = True
    num_workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str = "norm"
    accumulate_grad_batches: int = 1
    logger: str = "csv"
    enable_progress_bar: bool = True
    enable_checkpointing: bool = True
    early_stop_patience: int | None = 5
    inference_batch_size: int = 64
    jit_compile: bool = False
    #: After every epoch, stop with TrainingCollapsedError when the object predicted for
    #: a fixed batch of <= 16 groups is constant (ptychopinn.data.health).
    collapse_check: bool = True
    #: Stop early (with a warning) when the monitored loss moved by at most
    #: ``stall_tolerance`` (relative) over this many epochs; None disables the check.
    stall_patience: int | None = 10
    stall_tolerance: float = 1e-5

    def __post_init__(self) -> None:
        o = "ExecutionConfig"
        _check_choice(o, "accelerator", self.accelerator, ACCELERATORS)
        self._check_devices(o)
        _check_int(o, "num_nodes", self.num_nodes, 1)
        _check_choice(o, "strategy", self.strategy, STRATEGIES)
        if _is_int(self.precision):  # YAML reads `precision: 32` as an int
            _set(self, "precision", str(self.precision))
        _check_choice(o, "precision", self.precision, PRECISIONS)
        if self.accelerator == "cpu" and self.precision == "16-mixed":
            raise ConfigError(
                f"{o}.precision='16-mixed' is not supported with accelerator='cpu'; "
                "choose '32' or 'bf16-mixed'"
            )
        for name in (
            "deterministic",
            "pin_memory",
            "persistent_workers",
            "enable_progress_bar",
            "enable_checkpointing",
            "jit_compile",
            "collapse_check",
        ):
            _check_bool(o, name, getattr(self, name))
        _check_int(o, "num_workers", self.num_workers, 0)
        if self.persistent_workers and self.num_workers == 0:
            raise ConfigError(
                f"{o}.persistent_workers=True needs worker processes but num_workers=0; "
                "set num_workers > 0 or persistent_workers=False"
            )
        _set(
            self,
            "gradient_clip_val",
            _check_float(
                o, "gradient_clip_val", self.gradient_clip_val, low_inclusive=False, optional=True
            ),
        )
        _check_choice(
            o, "gradient_clip_algorithm", self.gradient_clip_algorithm, GRADIENT_CLIP_ALGORITHMS
        )
        _check_int(o, "accumulate_grad_batches", self.accumulate_grad_batches, 1)
        _check_choice(o, "logger", self.logger, LOGGERS)
        _check_int(o, "early_stop_patience", self.early_stop_patience, 1, optional=True)
        _check_int(o, "inference_batch_size", self.inference_batch_size, 1)
        _check_int(o, "stall_patience", self.stall_patience, 1, optional=True)
        _set(self, "stall_tolerance", _check_float(o, "stall_tolerance", self.stall_tolerance))

    def _check_devices(self, o: str) -> None:
        devices = self.devices
        if devices == "auto" or (_is_int(devices) and devices >= 1):
            return
        if isinstance(devices, list | tuple) and devices:
            ids = tuple(devices)
            if all(_is_int(d) and d >= 0 for d in ids) and len(set(ids)) == len(ids):
                _set(self, "devices", ids)
                return
        _fail(
            o,
            "devices",
            devices,
            "use 'auto', a device count >= 1, or a non-empty list of distinct device ids >= 0",
        )
