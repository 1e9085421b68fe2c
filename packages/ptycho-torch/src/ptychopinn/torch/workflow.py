"""The public workflow of the PyTorch backend: train, predict, bundles, portable weights.

``run_cdi_example`` is the generic ``ptychopinn.core.run_cdi_example`` bound to this
backend (``ptychopinn.torch.backend``).

The surface is the same as the TensorFlow backend's (INTERFACES.md "Backends").
Arrays cross this boundary channels-last as NumPy: ``(B, N, N, C)``.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import torch
from ptychopinn.config import ExecutionConfig, TrainingConfig
from ptychopinn.core import TrainResult, check_data, stitch_at_group_centres
from ptychopinn.core.bundle import (
    BundleFormat,
    LoadedBundle,
    package_versions,
    validate_portable,
)
from ptychopinn.core.constants import BUNDLE_NAME
from ptychopinn.core.history import record_epoch
from ptychopinn.data import BundleError, GroupedData, read_bundle

from .errors import ModelMismatchError
from .model import PtychoPINN

__all__ = [
    "BUNDLE_NAME",
    "TrainResult",
    "check_data",
    "export_weights",
    "import_weights",
    "load_bundle",
    "predict",
    "save_bundle",
    "train",
]

NATIVE_MEMBER = "weights.safetensors"
BACKEND_NAME = "pytorch"


# -------------------------------------------------------------------------- train
def _fit_interruptible(trainer: Any, module: Any, **kwargs: Any) -> None:
    """``trainer.fit`` with Ctrl-C kept a KeyboardInterrupt.

    On SIGINT Lightning shuts down, sets SIGINT to *ignored* and calls ``sys.exit(1)``:
    a caller (the CLI's exit 130, a notebook) would see an ordinary failure and lose
    Ctrl-C for the rest of the process. Here that exit becomes a KeyboardInterrupt
    again and the default SIGINT handler is restored.
    """
    try:
        trainer.fit(module, **kwargs)
    except SystemExit as exc:
        if not trainer.interrupted:
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt(
            f"training interrupted at epoch {trainer.current_epoch + 1}"
        ) from exc


def train(
    train: GroupedData,
    test: GroupedData | None,
    config: TrainingConfig,
    execution: ExecutionConfig | None = None,
    *,
    ckpt_path: str | Path | None = None,
    on_epoch_end: Callable[[int, Any], bool | None] | None = None,
) -> TrainResult:
    """Train a PtychoPINN on ``train`` (validation split per config), evaluate on ``test``.

    Args:
        train: grouped training data (B, N, N, C).
        test: grouped test data or None; its loss is logged as ``test_loss`` in the history.
        config: training configuration (its ``output_dir`` receives logs and checkpoints;
            the bundle is the caller's to write, :func:`save_bundle`).
        execution: devices, precision, logging; defaults to ``ExecutionConfig()``.
        ckpt_path: resume from this checkpoint; ``"last"`` means ``output_dir/checkpoints/last.ckpt``.
        on_epoch_end: called as ``on_epoch_end(epoch, model)`` (epoch from 0) after every
            training epoch with the :class:`PtychoPINN` being trained (usable with
            :func:`predict`); returning True stops training after that epoch.

    Returns:
        :class:`TrainResult`; ``extras["stopped_reason"]`` is the stall check's message
        when it stopped training early (else None), ``extras["collapse_check"]`` the
        last collapse-check numbers (``ExecutionConfig.collapse_check``/``stall_patience``).

    Raises:
        NonFiniteLossError: the loss became NaN/inf (names the epoch and last good checkpoint).
        TrainingCollapsedError: the predicted object became constant (names the epoch,
            the measured spread and what to try).
    """
    from .training import (
        EpochHook,
        HistoryCallback,
        PtychoDataModule,
        PtychoLightningModule,
        build_trainer,
    )

    execution = execution if execution is not None else ExecutionConfig()
    check_data(train, config.model, "train")
    if test is not None:
        check_data(test, config.model, "test")
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    cfg = config if config.backend == BACKEND_NAME else config.replace(backend=BACKEND_NAME)
    module = PtychoLightningModule(
        cfg.to_dict(), intensity_scale=float(train.intensity_scale), norm_factor=train.norm_factor
    )
    module.set_probe(train.probe)
    datamodule = PtychoDataModule(train, test, cfg, execution)
    monitor = "val_loss" if datamodule.has_validation else "train_loss"
    module.monitor = monitor
    if execution.jit_compile:
        module.compiled = torch.compile(module.model)
    history = HistoryCallback()
    extra: list[Any] = [history]
    if on_epoch_end is not None:
        extra.append(EpochHook(on_epoch_end))
    trainer = build_trainer(execution, output_dir, cfg.nepochs, monitor, extra)
    if ckpt_path == "last":
        ckpt_path = output_dir / "checkpoints" / "last.ckpt"
    if ckpt_path is not None and not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"checkpoint to resume from does not exist: {ckpt_path}")
    _fit_interruptible(
        trainer,
        module,
        datamodule=datamodule,
        ckpt_path=str(ckpt_path) if ckpt_path is not None else None,
        weights_only=True,
    )
    if test is not None and len(test) > 0:
        metrics = trainer.validate(module, dataloaders=datamodule.test_dataloader(), verbose=False)
        if metrics:
            # Lightning's validate() logs under the val_ names: these are the test data's.
            test_values = {"test_" + k.removeprefix("val_"): v for k, v in metrics[0].items()}
            record_epoch(history.history, test_values)
    cb = trainer.checkpoint_callback
    best = Path(cb.best_model_path) if cb is not None and cb.best_model_path else None
    last = Path(cb.last_model_path) if cb is not None and cb.last_model_path else None
    model = module.model.cpu()
    model.training_config = cfg
    return TrainResult(
        model=model,
        history=history.history,
        output_dir=output_dir,
        best_checkpoint=best,
        last_checkpoint=last,
        extras={"trainer": trainer, "global_rank": trainer.global_rank, **_health_extras(trainer)},
    )


def _health_extras(trainer: Any) -> dict[str, Any]:
    """``stopped_reason``/``stopped_epoch``/``collapse_check`` of the run's HealthCallback."""
    from .training import HealthCallback

    for cb in trainer.callbacks:
        if isinstance(cb, HealthCallback):
            return cb.extras()
    return {"stopped_reason": None, "stopped_epoch": None}


# ------------------------------------------------------------------------ predict
def _as_model(model: Any) -> PtychoPINN:
    inner = getattr(model, "model", model)
    if not isinstance(inner, PtychoPINN):
        raise TypeError(
            f"expected a PtychoPINN (or its LightningModule), got {type(model).__name__}"
        )
    return inner


def predict(
    model: Any,
    data: GroupedData,
    batch_size: int | None = None,
    *,
    precision: str = "32",
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Object patches for every group: ``(B, N, N, 1)`` complex64 (the inference path).

    Streams ``batch_size`` groups at a time (default 16 on CPU, where small batches keep
    the activations in cache -- 8 % faster than 64 on 2 cores -- and 64 on accelerators)
    under ``torch.inference_mode``;
    memory is the output plus one batch. ``precision="bf16-mixed"`` runs the network
    in bfloat16 (physics and the complex object stay float32).
    """
    net = _as_model(model)
    check_data(data, net.config, "data")
    dev = torch.device(device) if device is not None else next(net.parameters()).device
    bs = int(batch_size) if batch_size else (16 if dev.type == "cpu" else 64)
    out = np.empty((len(data), data.N, data.N, 1), dtype=np.complex64)
    was_training = net.training
    net.eval()
    use_bf16 = precision == "bf16-mixed"
    with torch.inference_mode():
        for start in range(0, len(data), bs):
            stop = min(start + bs, len(data))
            x = torch.from_numpy(np.ascontiguousarray(data.X[start:stop])).to(dev)
            rel = torch.from_numpy(np.ascontiguousarray(data.coords_relative[start:stop, 0]))
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                obj = net.diffraction_to_obj(x.permute(0, 3, 1, 2), rel.to(dev))
            out[start:stop] = obj.permute(0, 2, 3, 1).cpu().numpy()
    net.train(was_training)
    return out


# ------------------------------------------------------------------------ weights
def export_weights(model: Any) -> dict[str, np.ndarray]:
    """Every canonical parameter as NumPy: conv ``(out, in, kh, kw)``/``(out,)`` float32,
    ``log_scale`` () float32, ``probe`` (N, N) complex64."""
    net = _as_model(model)
    out: dict[str, np.ndarray] = {}
    for name, tensor in net.canonical_parameters().items():
        t = tensor.detach().cpu()
        if name == "probe":
            out[name] = t.to(torch.complex64).numpy().copy()
        else:
            out[name] = t.to(torch.float32).contiguous().numpy().copy()
    return out


def import_weights(model: Any, weights: Mapping[str, np.ndarray]) -> None:
    """Load canonical weights (exactly the plan's names and shapes) into ``model``; strict.

    Every weight is checked first (``ptychopinn.core.bundle.validate_portable``):
    a failed import leaves the model unchanged.
    """
    net = _as_model(model)
    checked = validate_portable(
        weights,
        net.plan.parameter_shapes(),
        model=f"N={net.N}, gridsize={net.config.gridsize}",
    )
    with torch.no_grad():
        for name, target in net.canonical_parameters().items():
            dtype = torch.complex64 if name == "probe" else torch.float32
            target.copy_(torch.as_tensor(checked[name], dtype=dtype).to(target.dtype))


# ------------------------------------------------------------------------ bundles
class _TorchBundle(BundleFormat[PtychoPINN]):
    """The torch side of a bundle (the rest is ``ptychopinn.core.bundle.BundleFormat``)."""

    backend = BACKEND_NAME
    native_member = NATIVE_MEMBER
    as_model = staticmethod(_as_model)
    export_weights = staticmethod(export_weights)
    import_weights = staticmethod(import_weights)

    def versions(self) -> dict[str, str]:
        extra = ("ptycho-torch", "lightning", "safetensors")
        return package_versions({"torch": torch.__version__}, extra)

    def manifest_values(self, model: PtychoPINN) -> tuple[TrainingConfig, float, float]:
        config = model.training_config or TrainingConfig(model=model.config, backend=BACKEND_NAME)
        return config, float(model.s0), float(model.norm_factor)

    def native_bytes(self, model: PtychoPINN) -> bytes:
        return st_save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})

    def build(self, loaded: LoadedBundle) -> PtychoPINN:
        args, kwargs = loaded.model_arguments()
        net = PtychoPINN(*args, **kwargs)
        net.training_config = loaded.config
        return net.eval()

    def load_native(self, model: PtychoPINN, data: bytes, path: Path) -> None:
        """The safetensors state, refused when invalid, non-finite or misfitting."""
        try:
            state = st_load(data)
        except (SafetensorError, ValueError, RuntimeError) as exc:
            raise BundleError(
                f"{path}: member {NATIVE_MEMBER!r} is not valid safetensors: {exc}"
            ) from None
        for name, value in state.items():
            if (value.is_floating_point() or value.is_complex()) and not bool(
                torch.isfinite(value).all()
            ):
                raise BundleError(
                    f"{path}: member {NATIVE_MEMBER!r}, tensor {name!r}: expected finite "
                    f"weights, found NaN or inf in shape {tuple(value.shape)}"
                )
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelMismatchError(
                f"{path}: member {NATIVE_MEMBER!r} does not fit: {exc}"
            ) from None


_BUNDLE = _TorchBundle()
save_bundle = _BUNDLE.save
load_bundle = _BUNDLE.load


#: ``stitch(patches, data, crop)``: the patches at the group centres (``ptychopinn.core``).
stitch = stitch_at_group_centres


def manifest_of(path: str | Path) -> dict[str, Any]:
    """The verified manifest of a bundle (for reports)."""
    return json.loads(json.dumps(read_bundle(path).manifest))
