"""Keras 3 layers of the PtychoPINN network: physics, scaling and small glue layers.

Every layer is registered serializable under the package ``ptychopinn_tf``, holds
its configuration in ``get_config`` and contains no Lambda and no closure, so a
model config round-trips through ``keras.saving`` in safe mode. No layer reads
global state: N, gridsize and every option arrive as constructor arguments.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from . import physics

__all__ = [
    "ChannelSlice",
    "CombineComplex",
    "Diffraction",
    "IntensityScale",
    "MergeReextract",
    "ObjectCentre",
    "OuterCombine",
    "PlanActivation",
    "ProbeIllumination",
    "Square",
    "apply_activation",
    "gaussian_smooth",
]

_PACKAGE = "ptychopinn_tf"


def apply_activation(name: str | None, x: tf.Tensor) -> tf.Tensor:
    """Apply a layer-plan activation by name (``None`` is the identity)."""
    if name is None:
        return x
    if name == "relu":
        return tf.nn.relu(x)
    if name == "sigmoid":
        return tf.sigmoid(x)
    if name == "swish":
        return tf.nn.silu(x)
    if name == "softplus":
        return tf.nn.softplus(x)
    if name == "pi_tanh":
        return math.pi * tf.tanh(x)
    raise ValueError(
        f"unknown activation {name!r}; expected relu, sigmoid, swish, softplus or pi_tanh"
    )


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PlanActivation(keras.layers.Layer):
    """A layer-plan activation (relu, sigmoid, swish, softplus, pi_tanh) as a layer."""

    def __init__(self, activation: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        apply_activation(activation, tf.zeros(()))  # validate the name early
        self.activation = activation

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return apply_activation(self.activation, x)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ChannelSlice(keras.layers.Layer):
    """Keep channels ``[start:stop]`` of a channels-last tensor (``stop=None`` is the end)."""

    def __init__(self, start: int | None = None, stop: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start = start
        self.stop = stop

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return x[..., self.start : self.stop]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class OuterCombine(keras.layers.Layer):
    """``head + outer · (1 - centre)``: the probe_big outer branch kept outside the central N/2."""

    def __init__(self, N: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.N = N
        border = np.ones((N, N, 1), np.float32)
        border[N // 4 : N // 4 + N // 2, N // 4 : N // 4 + N // 2] = 0
        self._border = border

    def call(self, head: tf.Tensor, outer: tf.Tensor) -> tf.Tensor:
        return head + outer * tf.cast(self._border, outer.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "N": self.N}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CombineComplex(keras.layers.Layer):
    """Object patch ``O = A · exp(iφ)`` (complex64) from amplitude and phase (B, N, N, K)."""

    def call(self, amp: tf.Tensor, phase: tf.Tensor) -> tf.Tensor:
        amp = tf.cast(amp, tf.float32)
        phase = tf.cast(phase, tf.float32)
        return tf.complex(amp * tf.cos(phase), amp * tf.sin(phase))

    def compute_output_spec(self, amp: Any, phase: Any) -> Any:
        return keras.KerasTensor(amp.shape, dtype="complex64")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IntensityScale(keras.layers.Layer):
    """Owns ``log_scale`` (log s) and the fixed ``s0``.

    ``call(x)`` gives the network input ``x · s0 / s``; ``call(x, inverse=True)``
    gives ``s · x`` (the predicted amplitude in counts units).
    """

    def __init__(self, s0: float, scale_trainable: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not (s0 > 0 and math.isfinite(s0)):
            raise ValueError(f"intensity scale s0 must be finite and > 0, got {s0}")
        self.s0 = float(s0)
        self.scale_trainable = bool(scale_trainable)
        self.log_scale = self.add_weight(
            name="log_scale",
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.s0)),
            trainable=self.scale_trainable,
            dtype="float32",
        )

    def call(self, x: tf.Tensor, inverse: bool = False) -> tf.Tensor:
        s = tf.exp(tf.cast(self.log_scale, tf.float32))
        x = tf.cast(x, tf.float32)
        if inverse:
            return s * x
        return x * (self.s0 / s)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "s0": self.s0, "scale_trainable": self.scale_trainable}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MergeReextract(keras.layers.Layer):
    """Training-path overlap constraint: (obj (B,N,N,K), offsets (B,1,2,C)) -> (B,N,N,C) complex.

    object_big: merge the C patches of each group and re-extract at each member's
    offset; otherwise zero-pad the single patch and re-extract it at every offset.
    ``canvas_size`` fixes P statically (needed by XLA); None computes it per batch.
    """

    def __init__(
        self, probe_big: bool, object_big: bool, canvas_size: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.probe_big = bool(probe_big)
        self.object_big = bool(object_big)
        self.canvas_size = canvas_size

    def call(self, obj: tf.Tensor, offsets: tf.Tensor) -> tf.Tensor:
        n = obj.shape[1]
        offsets = tf.cast(offsets, tf.float32)
        if self.object_big:
            canvas = physics.merge(obj, offsets, probe_big=self.probe_big, P=self._size(offsets, n))
            return physics.reextract(canvas, offsets, n)
        return physics.pad_reextract(obj[..., :1], offsets)

    def _size(self, offsets: tf.Tensor, n: int) -> int | tf.Tensor:
        if self.canvas_size is not None:
            return int(self.canvas_size)
        reach = tf.reduce_max(tf.abs(offsets))
        p = n + 2 * tf.cast(tf.math.ceil(reach), tf.int32)
        return p + p % 2

    def compute_output_spec(self, obj: Any, offsets: Any) -> Any:
        return keras.KerasTensor(
            (obj.shape[0], obj.shape[1], obj.shape[2], offsets.shape[-1]), "complex64"
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "probe_big": self.probe_big,
            "object_big": self.object_big,
            "canvas_size": self.canvas_size,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ObjectCentre(keras.layers.Layer):
    """Inference-path object (B, N, N, 1): merged group centre crop (object_big, C>1) or channel 0."""

    def __init__(self, probe_big: bool, object_big: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.probe_big = bool(probe_big)
        self.object_big = bool(object_big)

    def call(self, obj: tf.Tensor, offsets: tf.Tensor) -> tf.Tensor:
        if self.object_big and offsets.shape[-1] > 1:
            return physics.merge_centre(obj, tf.cast(offsets, tf.float32), self.probe_big)
        return obj[..., :1]

    def compute_output_spec(self, obj: Any, offsets: Any) -> Any:
        return keras.KerasTensor((obj.shape[0], obj.shape[1], obj.shape[2], 1), "complex64")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "probe_big": self.probe_big, "object_big": self.object_big}


def gaussian_smooth(field: tf.Tensor, sigma: float) -> tf.Tensor:
    """Gaussian-blur a real or complex (N, N) field: zero-padded, kernel truncated at 4σ, unit sum.

    ``sigma <= 0`` returns the input unchanged.
    """
    if sigma <= 0:
        return field
    n_h, n_w = field.shape[-2], field.shape[-1]
    radius = math.ceil(4.0 * sigma)
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()

    def band(n: int) -> np.ndarray:
        d = np.arange(n)[None, :] - np.arange(n)[:, None] + radius
        valid = (d >= 0) & (d <= 2 * radius)
        return np.where(valid, kernel[np.clip(d, 0, 2 * radius)], 0.0).astype(np.float32)

    k_y, k_x = tf.constant(band(n_h)), tf.constant(band(n_w))

    def apply(real: tf.Tensor) -> tf.Tensor:
        return tf.matmul(k_y, tf.matmul(real, k_x, transpose_b=True))

    if field.dtype.is_complex:
        return tf.complex(apply(tf.math.real(field)), apply(tf.math.imag(field)))
    return apply(field)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ProbeIllumination(keras.layers.Layer):
    """Multiply patches (B, N, N, C) by the probe (optionally Gaussian-smoothed, masked).

    The complex (N, N) probe is held as two float32 weights ``probe_real`` and
    ``probe_imag`` (trainable only when ``probe_trainable``).
    """

    def __init__(
        self,
        N: int,
        probe_mask: bool = False,
        smoothing_sigma: float = 0.0,
        probe_trainable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.N = int(N)
        self.probe_mask = bool(probe_mask)
        self.smoothing_sigma = float(smoothing_sigma)
        self.probe_trainable = bool(probe_trainable)
        self.probe_real = self.add_weight(
            name="probe_real", shape=(N, N), initializer="zeros", trainable=self.probe_trainable
        )
        self.probe_imag = self.add_weight(
            name="probe_imag", shape=(N, N), initializer="zeros", trainable=self.probe_trainable
        )

    def probe(self) -> tf.Tensor:
        """The effective (N, N) complex64 probe: smoothed if configured (masking is in ``call``)."""
        raw = tf.complex(tf.cast(self.probe_real, tf.float32), tf.cast(self.probe_imag, tf.float32))
        return gaussian_smooth(raw, self.smoothing_sigma)

    def set_probe(self, probe: np.ndarray) -> None:
        """Set the probe from an (N, N) complex array."""
        probe = np.asarray(probe)
        if probe.shape != (self.N, self.N):
            raise ValueError(f"probe must be (N, N) = {(self.N, self.N)}, got {probe.shape}")
        if not np.all(np.isfinite(probe)):
            raise ValueError("probe contains NaN or infinite values")
        self.probe_real.assign(np.real(probe).astype(np.float32))
        self.probe_imag.assign(np.imag(probe).astype(np.float32))

    def call(self, patches: tf.Tensor) -> tf.Tensor:
        return physics.illuminate(patches, self.probe(), mask=self.probe_mask)

    def compute_output_spec(self, patches: Any) -> Any:
        return keras.KerasTensor(patches.shape, "complex64")

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "N": self.N,
            "probe_mask": self.probe_mask,
            "smoothing_sigma": self.smoothing_sigma,
            "probe_trainable": self.probe_trainable,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Diffraction(keras.layers.Layer):
    """Far-field amplitude ``|fftshift(fft2(psi))| / N`` (B, N, N, C) float32."""

    def call(self, psi: tf.Tensor) -> tf.Tensor:
        return physics.diffract(psi)

    def compute_output_spec(self, psi: Any) -> Any:
        return keras.KerasTensor(psi.shape, "float32")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Square(keras.layers.Layer):
    """Elementwise square (amplitude -> intensity)."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.square(x)
