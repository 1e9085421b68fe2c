"""Training of the TensorFlow PtychoPINN: tf.data pipeline, losses, callbacks, distribution.

``train(train, test, TrainingConfig, ExecutionConfig) -> TrainResult``.

- Batches follow ``GroupedData.batch_order(shuffle=True, seed + epoch)``, the order the
  PyTorch backend uses; the validation set is ``train.split(validation_fraction, seed)``'s
  held-out part; ``test`` (if given) is evaluated once at the end (``test_loss``).
- Adam, ReduceLROnPlateau and EarlyStopping on the validation loss (the training loss
  when there is no validation split), best/last checkpoints
  (``output_dir/checkpoints/{best,last}.weights.h5``, written atomically), a CSV log of
  every epoch (``output_dir/metrics.csv``), optional XLA (``jit_compile``).
- Training health after every epoch (``ExecutionConfig.collapse_check``,
  ``stall_patience``; policy ``ptychopinn.data.health``): a constant predicted object
  raises ``TrainingCollapsedError``; a flat monitored loss stops training with a
  ``TrainingStalledWarning`` (``TrainResult.extras["stopped_reason"]``).
- Seeded and deterministic on CPU: ``keras.utils.set_random_seed`` and (when
  ``ExecutionConfig.deterministic``) TensorFlow op determinism are switched on inside
  :func:`train`, never at import.
- ``tf.distribute.MirroredStrategy`` over the devices named by ExecutionConfig.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ptychopinn.config import ExecutionConfig, TrainingConfig
from ptychopinn.core import TrainResult, check_data
from ptychopinn.core.errors import (
    BadInputError,
    DataError,
    NonFiniteLossError,
    TrainingStalledWarning,
    UnsupportedOptionError,
)
from ptychopinn.core.history import (
    LR,
    History,
    epoch_line,
    history_key,
    loss_terms,
    record_epoch,
)
from ptychopinn.data import GroupedData
from ptychopinn.data.health import (
    CollapseVerdict,
    check_collapse,
    check_stall,
    fixed_batch_indices,
    result_extras,
)

from . import physics
from .model import PtychoModel, build_model

__all__ = [
    "EpochLines",
    "TrainResult",
    "check_data",
    "make_dataset",
    "make_strategy",
    "train",
]

CHECKPOINT_DIR = "checkpoints"
BEST_NAME = "best.weights.h5"
LAST_NAME = "last.weights.h5"
CSV_NAME = "metrics.csv"


# ------------------------------------------------------------------------ devices
def _device_names(execution: ExecutionConfig) -> list[str]:
    """Resolve ExecutionConfig accelerator/devices to TensorFlow logical device names."""
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    if execution.accelerator in ("gpu", "cuda"):
        if not gpus:
            raise UnsupportedOptionError(
                f"ExecutionConfig.accelerator={execution.accelerator!r} but TensorFlow sees no GPU"
            )
        pool = gpus
    elif execution.accelerator == "mps":
        raise UnsupportedOptionError(
            "ExecutionConfig.accelerator='mps' is not supported by TensorFlow"
        )
    elif execution.accelerator == "cpu":
        pool = cpus
    else:
        pool = gpus or cpus
    names = [d.name for d in pool]
    devices = execution.devices
    if devices in ("auto", -1, "-1"):
        return names if pool is gpus else names[:1]
    if isinstance(devices, str):
        try:
            devices = int(devices)
        except ValueError:
            raise UnsupportedOptionError(
                f"ExecutionConfig.devices={devices!r} is not understood; use 'auto', a count or indices"
            ) from None
    if isinstance(devices, int):
        if devices > len(names):
            raise UnsupportedOptionError(
                f"ExecutionConfig.devices={devices} but only {len(names)} device(s) are visible: {names}"
            )
        return names[:devices]
    chosen = []
    for index in devices:
        if not 0 <= int(index) < len(names):
            raise UnsupportedOptionError(
                f"ExecutionConfig.devices={list(devices)} names device {index}; visible: {names}"
            )
        chosen.append(names[int(index)])
    return chosen


def make_strategy(execution: ExecutionConfig) -> tf.distribute.Strategy:
    """Return the distribution strategy: MirroredStrategy over >1 device, else the default."""
    if execution.num_nodes > 1:
        raise UnsupportedOptionError(
            "ExecutionConfig.num_nodes > 1: for several machines run one process per worker with "
            "TF_CONFIG set and tf.distribute.MultiWorkerMirroredStrategy (see the ptycho-tf README)"
        )
    if execution.strategy not in ("auto", "mirrored", "single_device", "ddp"):
        raise UnsupportedOptionError(
            f"ExecutionConfig.strategy={execution.strategy!r} is not available in TensorFlow; "
            "choose 'auto', 'mirrored' or 'single_device'"
        )
    names = _device_names(execution)
    if execution.strategy == "single_device" or (
        len(names) == 1 and execution.strategy != "mirrored"
    ):
        return tf.distribute.OneDeviceStrategy(names[0])
    return tf.distribute.MirroredStrategy(
        names, cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


# ----------------------------------------------------------------------- datasets
def _inputs(data: GroupedData, with_truth: bool) -> dict[str, np.ndarray]:
    arrays = {
        "input": data.X.astype(np.float32, copy=False),
        "input_positions": data.coords_relative.astype(np.float32, copy=False),
    }
    if with_truth:
        arrays["Y"] = data.Y.astype(np.complex64, copy=False)
    return arrays


def make_dataset(
    data: GroupedData,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    epochs: int = 1,
    with_truth: bool = False,
) -> tf.data.Dataset:
    """A tf.data pipeline of dict batches {input, input_positions[, Y]} over ``epochs`` epochs.

    Epoch e visits the groups in ``data.batch_order(shuffle, seed + e)``, cut into
    consecutive batches (the last may be smaller), exactly as ``GroupedData.batches``.
    """
    arrays = {k: tf.constant(v) for k, v in _inputs(data, with_truth).items()}
    per_epoch = [
        tf.data.Dataset.from_tensor_slices(data.batch_order(shuffle, seed + e)).batch(batch_size)
        for e in range(epochs)
    ]
    indices = per_epoch[0]
    for extra in per_epoch[1:]:
        indices = indices.concatenate(extra)

    def gather(idx: tf.Tensor) -> dict[str, tf.Tensor]:
        return {k: tf.gather(v, idx) for k, v in arrays.items()}

    return indices.map(gather).prefetch(2)


# ------------------------------------------------------------------------- losses
def _total_variation(obj: tf.Tensor) -> tf.Tensor:
    dy = obj[:, 1:, :, :] - obj[:, :-1, :, :]
    dx = obj[:, :, 1:, :] - obj[:, :, :-1, :]
    return tf.reduce_mean(tf.abs(dy)) + tf.reduce_mean(tf.abs(dx))


logger = logging.getLogger(__name__)


class EpochLines(keras.callbacks.Callback):
    """One log line per finished epoch (``logging``, INFO): the progress report where the
    console is not a terminal, instead of Keras's bar (carriage-return frames)."""

    def __init__(self, max_epochs: int) -> None:
        super().__init__()
        self.max_epochs = max_epochs
        self._started = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._started
        logger.info(epoch_line(epoch + 1, self.max_epochs, logs or {}, seconds))


class _Trainer(keras.Model):
    """Wraps the shared-weight training model with the loss of METHOD.md §6."""

    def __init__(
        self, net: PtychoModel, config: TrainingConfig, with_truth: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.net = net.training_model
        self.s0 = float(net.intensity_scale)
        self.supervised = config.model.model_type == "supervised"
        self.weights_ = {
            "nll": float(config.nll_weight),
            "mae": float(config.mae_weight),
            "realspace_mae": float(config.realspace_mae_weight),
            "tv": float(config.realspace_weight),
        }
        # The terms computed and logged: one policy for both backends (zero weight: neither).
        self.terms = loss_terms(config, has_truth=with_truth)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", *self.terms)}

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.net([inputs["input"], inputs["input_positions"]], training=training)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self.trackers.values())

    def _loss_parts(self, batch: dict[str, tf.Tensor], training: bool) -> dict[str, tf.Tensor]:
        _, pred_amp, _, obj, amp, phase = self(batch, training=training)
        x = batch["input"]
        target = self.s0 * x
        k = obj.shape[-1]
        parts: dict[str, tf.Tensor] = {}
        if self.supervised:
            truth = batch["Y"][..., :k]
            parts["amp_mae"] = tf.reduce_mean(tf.abs(amp - tf.abs(truth)))
            parts["phase_mae"] = tf.reduce_mean(tf.abs(phase - tf.math.angle(truth)))
            parts["loss"] = parts["amp_mae"] + parts["phase_mae"]
            return parts
        w = self.weights_
        total = tf.zeros((), tf.float32)
        if "nll" in self.terms:
            parts["nll"] = physics.poisson_nll(pred_amp, target)
            total += w["nll"] * parts["nll"]
        if "mae" in self.terms:
            parts["mae"] = tf.reduce_mean(tf.abs(pred_amp - target))
            total += w["mae"] * parts["mae"]
        if "realspace_mae" in self.terms and "Y" in batch:
            parts["realspace_mae"] = tf.reduce_mean(tf.abs(obj - batch["Y"][..., :k]))
            total += w["realspace_mae"] * parts["realspace_mae"]
        if "tv" in self.terms:
            parts["tv"] = _total_variation(obj)
            total += w["tv"] * parts["tv"]
        parts["loss"] = total
        return parts

    def _report(
        self, parts: dict[str, tf.Tensor], batch: dict[str, tf.Tensor]
    ) -> dict[str, tf.Tensor]:
        # Epoch values are means over samples (each batch weighted by its size), as the
        # torch backend logs them: a short last batch must not count as much as a full one.
        n = tf.cast(tf.shape(batch["input"])[0], tf.float32)
        for name, value in parts.items():
            self.trackers[name].update_state(value, sample_weight=n)
        return {name: self.trackers[name].result() for name in parts}

    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            parts = self._loss_parts(batch, training=True)
            # Gradients are summed over replicas: scale so the update is the mean.
            scaled = parts["loss"] / tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        return self._report(parts, batch)

    def test_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self._report(self._loss_parts(batch, training=False), batch)


# ---------------------------------------------------------------------- callbacks
class _Checkpoints(keras.callbacks.Callback):
    """Best (by ``monitor``) and last weights, written atomically; stops on a non-finite loss."""

    def __init__(self, net: PtychoModel, directory: Path | None, monitor: str) -> None:
        super().__init__()
        self.ptycho = net
        self.directory = directory
        self.monitor = monitor
        self.best_value = math.inf
        self.best: Path | None = None
        self.last: Path | None = None
        self.failed_epoch: int | None = None
        self.failed_logs: dict[str, float] = {}
        self.failed_step = 0
        self.epochs_done = 0
        self.steps_done = 0

    def _save(self, name: str) -> Path:
        assert self.directory is not None
        target = self.directory / name
        tmp = self.directory / f".tmp-{os.getpid()}-{name}"
        self.ptycho.autoencoder.save_weights(tmp)
        os.replace(tmp, target)
        return target

    def _finite(self, logs: dict[str, Any]) -> bool:
        return all(math.isfinite(float(v)) for k, v in logs.items() if "loss" in k)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if logs and not self._finite(logs):
            if self.failed_epoch is None:
                self.failed_epoch = self.epochs_done + 1
                self.failed_step = self.steps_done
                self.failed_logs = {k: float(v) for k, v in logs.items()}
            self.model.stop_training = True
            return
        self.steps_done += 1

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.failed_epoch is not None or not self._finite(logs):
            if self.failed_epoch is None:
                self.failed_step = self.steps_done
            self.failed_epoch = self.failed_epoch or epoch + 1
            self.failed_logs = self.failed_logs or {k: float(v) for k, v in logs.items()}
            self.model.stop_training = True
            return
        self.epochs_done = epoch + 1
        if self.directory is None:
            return
        self.last = self._save(LAST_NAME)
        value = float(logs.get(self.monitor, math.inf))
        if value < self.best_value:
            self.best_value = value
            self.best = self._save(BEST_NAME)


def _history_name(keras_key: str) -> str:
    """The ``ptychopinn.core.history`` key of a Keras log key (``loss`` -> ``train_loss``,
    ``nll`` -> ``train_nll``, ``val_nll`` as is, ``learning_rate`` -> ``lr``)."""
    if keras_key == "learning_rate":
        return LR
    if keras_key.startswith("val_"):
        return keras_key
    return history_key("train", keras_key)


class _History(keras.callbacks.Callback):
    """Per-epoch logs (floats) under the ``ptychopinn.core.history`` names, ``lr`` included."""

    def __init__(self) -> None:
        super().__init__()
        self.history: History = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        logs.setdefault("learning_rate", float(self.model.optimizer.learning_rate.numpy()))
        record_epoch(self.history, {_history_name(k): v for k, v in logs.items()})


class _EpochHook(keras.callbacks.Callback):
    """Calls the caller's ``on_epoch_end(epoch, net)``; a True return stops training."""

    def __init__(self, net: PtychoModel, hook: Callable[[int, Any], bool | None]) -> None:
        super().__init__()
        self.net = net
        self.hook = hook

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.hook(int(epoch), self.net):
            self.model.stop_training = True


class _Health(keras.callbacks.Callback):
    """Collapse and stall checks after every epoch (policy: ``ptychopinn.data.health``).

    Collapse: the network's amplitude and phase (every channel, before merging;
    ``training=False``) on a fixed batch of at most 16 groups of ``probe`` (the
    validation data, else the training data) -- one small forward pass per epoch;
    a constant object raises
    :class:`TrainingCollapsedError` naming the epoch, the measured spread and what to
    try. Stall: ``monitor`` moved by at most ``stall_tolerance`` (relative) over
    ``stall_patience`` epochs -- training stops with a :class:`TrainingStalledWarning`;
    ``stopped_reason``/``stopped_epoch`` say why.
    """

    def __init__(
        self,
        net: PtychoModel,
        probe: GroupedData | None,
        monitor: str,
        config: TrainingConfig,
        execution: ExecutionConfig,
    ) -> None:
        super().__init__()
        self.net = net
        self.monitor = monitor
        self.config = config
        self.patience = execution.stall_patience
        self.tolerance = execution.stall_tolerance
        self.batch: tuple[tf.Tensor, tf.Tensor] | None = None
        if execution.collapse_check and probe is not None and len(probe) > 0:
            idx = fixed_batch_indices(len(probe))
            self.batch = (
                tf.constant(np.ascontiguousarray(probe.X[idx], dtype=np.float32)),
                tf.constant(np.ascontiguousarray(probe.coords_relative[idx], dtype=np.float32)),
            )
        self.losses: list[float] = []
        self.stopped_reason: str | None = None
        self.stopped_epoch: int | None = None
        self.last_collapse: CollapseVerdict | None = None

    def extras(self) -> dict[str, Any]:
        """``TrainResult.extras`` entries (see ``ptychopinn.data.health.result_extras``)."""
        return result_extras(self.stopped_reason, self.stopped_epoch, self.last_collapse)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        e = int(epoch) + 1
        logs = logs or {}
        if not all(math.isfinite(float(v)) for k, v in logs.items() if "loss" in k):
            return  # a non-finite loss: _Checkpoints raises NonFiniteLossError after fit
        if self.batch is not None:
            outputs = self.net.training_model(list(self.batch), training=False)
            amp, phase = np.asarray(outputs[4]), np.asarray(outputs[5])
            verdict = check_collapse(amp, phase, e, config=self.config)
            self.last_collapse = verdict
            if verdict.collapsed:
                self.model.stop_training = True
                raise verdict.error()
        if self.patience is None:
            return
        value = logs.get(self.monitor)
        if value is None:
            return
        self.losses.append(float(value))
        stall = check_stall(
            self.losses,
            e,
            patience=self.patience,
            rtol=self.tolerance,
            monitor=self.monitor,
            config=self.config,
        )
        if stall.stalled:
            self.stopped_reason = stall.message
            self.stopped_epoch = e
            self.model.stop_training = True
            warnings.warn(stall.message, TrainingStalledWarning, stacklevel=2)


def _callbacks(
    config: TrainingConfig,
    execution: ExecutionConfig,
    output_dir: Path,
    monitor: str,
    checkpoints: _Checkpoints,
    history: _History,
    *,
    net: PtychoModel | None = None,
    probe: GroupedData | None = None,
) -> list[keras.callbacks.Callback]:
    found: list[keras.callbacks.Callback] = [
        history,
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor,
            factor=config.lr_factor,
            patience=config.lr_patience,
            min_lr=config.min_lr,
            verbose=0,
        ),
    ]
    if execution.early_stop_patience is not None:
        found.append(
            keras.callbacks.EarlyStopping(monitor=monitor, patience=execution.early_stop_patience)
        )
    if execution.logger == "csv":
        found.append(keras.callbacks.CSVLogger(str(output_dir / CSV_NAME)))
    elif execution.logger == "tensorboard":
        found.append(keras.callbacks.TensorBoard(log_dir=str(output_dir / "tensorboard")))
    elif execution.logger == "mlflow":
        raise UnsupportedOptionError(
            "ExecutionConfig.logger='mlflow' is not supported by the TensorFlow backend; "
            "choose 'csv', 'tensorboard' or 'none'"
        )
    if net is not None and (execution.collapse_check or execution.stall_patience is not None):
        found.append(_Health(net, probe, monitor, config, execution))
    found.append(checkpoints)  # last: sees the learning rate the others logged
    return found


def _health_extras(callbacks: list[keras.callbacks.Callback]) -> dict[str, Any]:
    for cb in callbacks:
        if isinstance(cb, _Health):
            return cb.extras()
    return {"stopped_reason": None, "stopped_epoch": None}


def _optimizer(config: TrainingConfig, execution: ExecutionConfig) -> keras.optimizers.Optimizer:
    kwargs: dict[str, Any] = {"learning_rate": config.learning_rate}
    if execution.gradient_clip_val is not None:
        key = "global_clipnorm" if execution.gradient_clip_algorithm == "norm" else "clipvalue"
        kwargs[key] = float(execution.gradient_clip_val)
    if execution.accumulate_grad_batches > 1:
        kwargs["gradient_accumulation_steps"] = int(execution.accumulate_grad_batches)
    return keras.optimizers.Adam(**kwargs)


def _canvas_size(datasets: list[GroupedData], n: int) -> int:
    return max(int(physics.merge_size(d.coords_relative, n)) for d in datasets)


def _set_determinism(execution: ExecutionConfig) -> None:
    """Switch TensorFlow op determinism on (deterministic) or off (XLA needs it off in Keras)."""
    from tensorflow.python.framework import config as tf_config

    if execution.deterministic and not execution.jit_compile:
        tf.config.experimental.enable_op_determinism()
        return
    if execution.deterministic:
        warnings.warn(
            "ExecutionConfig.jit_compile=True: Keras does not run XLA with TensorFlow op "
            "determinism, so op determinism is off for this run (results stay seeded but "
            "may differ in the last bits between runs)",
            stacklevel=3,
        )
    tf_config.disable_op_determinism()


# -------------------------------------------------------------------------- train
def train(
    train: GroupedData,
    test: GroupedData | None,
    config: TrainingConfig,
    execution: ExecutionConfig | None = None,
    *,
    on_epoch_end: Callable[[int, Any], bool | None] | None = None,
) -> TrainResult:
    """Train a PtychoPINN on ``train``; validation split per config; ``test`` evaluated at the end.

    Args:
        train: grouped training data (B, N, N, C) (its probe, s0 and norm factor seed the model).
        test: grouped test data or None; its final loss is ``history['test_loss']``.
        config: training configuration; ``output_dir`` receives ``metrics.csv`` and
            ``checkpoints/{best,last}.weights.h5``.
        execution: devices, precision, logging, XLA; defaults to ``ExecutionConfig()``.
        on_epoch_end: called as ``on_epoch_end(epoch, model)`` (epoch from 0) after every
            epoch with the model being trained (usable with :func:`predict`); returning
            True stops training after that epoch (e.g. a benchmark's time budget).

    Returns:
        :class:`TrainResult`; ``extras["stopped_reason"]`` is the stall check's message
        when it stopped training early (else None), ``extras["collapse_check"]`` the
        last collapse-check numbers (``ExecutionConfig.collapse_check``/``stall_patience``).

    Raises:
        DataError, ModelMismatchError: data that is unusable or does not fit the model.
        UnsupportedOptionError: options this backend cannot honour.
        NonFiniteLossError: the loss became NaN/inf; names the epoch and the last good
            checkpoint (which is left untouched on disk).
        TrainingCollapsedError: the predicted object became constant (names the epoch,
            the measured spread and what to try).
    """
    execution = execution if execution is not None else ExecutionConfig()
    if not isinstance(config, TrainingConfig):
        raise BadInputError(f"config must be a TrainingConfig, got {type(config).__name__}")
    check_data(train, config.model, "train")
    if test is not None:
        check_data(test, config.model, "test")
    supervised = config.model.model_type == "supervised"
    with_truth = train.Y is not None and (supervised or config.realspace_mae_weight > 0)
    if supervised and train.Y is None:
        raise DataError("model_type='supervised' needs ground-truth patches: train.Y is None")
    keras.utils.set_random_seed(config.seed)
    _set_determinism(execution)

    fit_data, val_data = train, None
    if config.validation_fraction > 0:
        rest, held = train.split(config.validation_fraction, config.seed)
        if len(held) > 0 and len(rest) > 0:
            fit_data, val_data = rest, held
    monitor = "val_loss" if val_data is not None else "loss"
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = output_dir / CHECKPOINT_DIR if execution.enable_checkpointing else None
    if ckpt_dir is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)

    strategy = make_strategy(execution)
    evaluated = [d for d in (fit_data, val_data, test) if d is not None]
    canvas = _canvas_size(evaluated, config.model.N) if execution.jit_compile else None
    with strategy.scope():
        net = build_model(
            config.model,
            train.probe,
            train.intensity_scale,
            train.norm_factor,
            probe_trainable=config.probe_trainable,
            intensity_scale_trainable=config.intensity_scale_trainable,
            seed=config.seed,
            precision=execution.precision,
            canvas_size=canvas,
        )
        trainer = _Trainer(net, config, with_truth, name="ptychopinn_trainer")
        trainer.compile(optimizer=_optimizer(config, execution), jit_compile=execution.jit_compile)

    steps = math.ceil(len(fit_data) / config.batch_size)
    fit_ds = make_dataset(
        fit_data,
        config.batch_size,
        shuffle=True,
        seed=config.seed,
        epochs=config.nepochs,
        with_truth=with_truth,
    )
    val_ds = (
        make_dataset(val_data, config.batch_size, shuffle=False, with_truth=with_truth)
        if val_data is not None
        else None
    )
    checkpoints = _Checkpoints(net, ckpt_dir, monitor)
    history = _History()
    probe = val_data if val_data is not None else fit_data
    callbacks = _callbacks(
        config, execution, output_dir, monitor, checkpoints, history, net=net, probe=probe
    )
    if on_epoch_end is not None:
        callbacks.append(_EpochHook(net, on_epoch_end))
    # Keras's bar redraws with carriage returns: where stdout is not a terminal (a piped
    # log), one logged line per epoch instead.
    bar = execution.enable_progress_bar and sys.stdout.isatty()
    if execution.enable_progress_bar and not bar:
        callbacks.append(EpochLines(config.nepochs))
    trainer.fit(
        fit_ds,
        validation_data=val_ds,
        epochs=config.nepochs,
        steps_per_epoch=steps,
        callbacks=callbacks,
        shuffle=False,
        verbose=1 if bar else 0,
    )
    if checkpoints.failed_epoch is not None:
        raise NonFiniteLossError(
            checkpoints.failed_epoch,
            checkpoints.failed_step,
            checkpoints.last,
            detail=", ".join(f"{k}={v:.4g}" for k, v in checkpoints.failed_logs.items()),
        )
    if test is not None and (not with_truth or test.Y is not None):
        test_ds = make_dataset(test, config.batch_size, shuffle=False, with_truth=with_truth)
        result = trainer.evaluate(test_ds, verbose=0, return_dict=True)
        record_epoch(history.history, {history_key("test", k): v for k, v in result.items()})
    net.metadata["training_config"] = config.to_dict()
    return TrainResult(
        model=net,
        history=history.history,
        output_dir=output_dir,
        best_checkpoint=checkpoints.best,
        last_checkpoint=checkpoints.last,
        extras={
            "strategy": strategy.__class__.__name__,
            "replicas": strategy.num_replicas_in_sync,
            **_health_extras(callbacks),
        },
    )
