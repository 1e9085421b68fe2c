"""Build the PtychoPINN Keras models from ``ptychopinn.config.layer_plan`` (METHOD.md §5).

Three functional models share one set of layers (so one set of weights):

- ``autoencoder``: inputs ``input`` (B, N, N, C) float32 and ``input_positions``
  (B, 1, 2, C) float32 (``coords_relative``); outputs the object (B, N, N, 1)
  complex64, the scaled predicted amplitude (B, N, N, C) and its intensity.
- ``diffraction_to_obj``: the same inputs, output the object (B, N, N, 1) complex64.
- ``training_model``: the autoencoder's outputs plus the raw object patches
  (B, N, N, C_out) and their amplitude and phase, for real-space losses and
  supervised training.

Every convolution is a ``keras.layers.Conv2D`` named by its canonical plan name
(``encoder.0.conv0`` ...), Glorot-uniform (seeded), zero bias. Nothing here is
module-level state: each call of :func:`build_model` makes new, independent models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from ptychopinn.config import ModelConfig, layer_plan
from ptychopinn.config.layers import ADD, CONV2D, MAXPOOL2D, UPSAMPLE2D, LayerPlan, LayerSpec

from .layers import (
    ChannelSlice,
    CombineComplex,
    Diffraction,
    IntensityScale,
    MergeReextract,
    ObjectCentre,
    OuterCombine,
    PlanActivation,
    ProbeIllumination,
    Square,
)

__all__ = ["PtychoModel", "build_model", "compute_dtype_policy"]

_OUTER = 4


def compute_dtype_policy(precision: str) -> str:
    """Return the Keras dtype policy for the network layers for an ExecutionConfig precision."""
    if precision in ("bf16-mixed",):
        return "mixed_bfloat16"
    if precision in ("16-mixed",):
        return "mixed_float16"
    if precision in ("32", "32-true"):
        return "float32"
    raise ValueError(
        f"precision {precision!r} is not supported by the TensorFlow backend; "
        "choose '32', 'bf16-mixed' or '16-mixed'"
    )


@dataclass
class PtychoModel:
    """The trained (or untrained) TensorFlow PtychoPINN: models, config and data scales.

    ``intensity_scale`` is s0 (``log_scale`` starts at log s0 and the network input is
    ``X · s0 / s``); ``norm_factor`` is the training data's input normalisation.
    """

    config: ModelConfig
    plan: LayerPlan
    autoencoder: keras.Model
    diffraction_to_obj: keras.Model
    training_model: keras.Model
    intensity_scale: float
    norm_factor: float
    probe_trainable: bool = False
    intensity_scale_trainable: bool = True
    precision: str = "32"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def N(self) -> int:
        """Patch side N."""
        return self.config.N

    @property
    def gridsize(self) -> int:
        """Group side (C = gridsize²)."""
        return self.config.gridsize

    @property
    def scaler(self) -> IntensityScale:
        """The layer owning ``log_scale``."""
        return self.autoencoder.get_layer("intensity_scale")

    @property
    def illumination(self) -> ProbeIllumination:
        """The layer owning the probe."""
        return self.training_model.get_layer("probe_illumination")

    def conv(self, name: str) -> keras.layers.Conv2D:
        """The Conv2D layer with this canonical plan name."""
        return self.training_model.get_layer(name)

    @property
    def probe(self) -> np.ndarray:
        """The stored (N, N) complex64 probe (unsmoothed, unmasked)."""
        ill = self.illumination
        return (np.asarray(ill.probe_real) + 1j * np.asarray(ill.probe_imag)).astype(np.complex64)


def _conv_layer(spec: LayerSpec, seed: int, dtype: str) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(
        spec.out_channels,
        spec.kernel_size,
        padding="same",
        activation="relu" if spec.activation == "relu" else None,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        bias_initializer="zeros",
        name=spec.name,
        dtype=dtype,
    )


def _run(
    specs: tuple[LayerSpec, ...],
    x: Any,
    seeds: dict[str, int],
    dtype: str,
    outputs: dict[str, Any] | None = None,
) -> Any:
    """Apply ``specs`` to ``x``; ``outputs`` collects each layer's output for ``add`` layers."""
    for spec in specs:
        if spec.kind == CONV2D:
            x = _conv_layer(spec, seeds[spec.name], dtype)(x)
            if spec.activation not in (None, "relu"):
                x = PlanActivation(spec.activation, name=f"{spec.name}.act", dtype="float32")(x)
        elif spec.kind == MAXPOOL2D:
            x = keras.layers.MaxPooling2D(spec.kernel_size, name=spec.name, dtype=dtype)(x)
        elif spec.kind == UPSAMPLE2D:
            x = keras.layers.UpSampling2D(
                spec.kernel_size, interpolation="nearest", name=spec.name, dtype=dtype
            )(x)
        elif spec.kind == ADD:
            if outputs is None or spec.source not in outputs:
                raise ValueError(f"layer {spec.name}: its source {spec.source!r} has not run")
            x = keras.layers.Add(name=spec.name, dtype=dtype)([x, outputs[spec.source]])
            if spec.activation is not None:
                x = keras.layers.Activation(spec.activation, name=f"{spec.name}.act", dtype=dtype)(
                    x
                )
        else:
            raise ValueError(f"layer {spec.name}: unknown kind {spec.kind!r}")
        if outputs is not None:
            outputs[spec.name] = x
    return x


def _branch(plan: LayerPlan, kind: str, features: Any, seeds: dict[str, int], dtype: str) -> Any:
    dec = _run(plan.stage(f"decoder_{kind}"), features, seeds, dtype)
    if not plan.pad_object:
        return _run(plan.stage(f"{kind}_outer"), dec, seeds, dtype)
    inner = ChannelSlice(None, -_OUTER, name=f"{kind}_inner_channels", dtype=dtype)(dec)
    head = _run(plan.stage(f"{kind}_head"), inner, seeds, dtype)
    q = plan.N // 4
    padded = keras.layers.ZeroPadding2D(q, name=f"{kind}_padded", dtype="float32")(head)
    if not plan.probe_big:
        return padded
    last = ChannelSlice(-_OUTER, None, name=f"{kind}_outer_channels", dtype=dtype)(dec)
    outer = _run(plan.stage(f"{kind}_outer"), last, seeds, dtype)
    return OuterCombine(plan.N, name=f"{kind}_combined", dtype="float32")(padded, outer)


def build_model(
    config: ModelConfig,
    probe: np.ndarray | None = None,
    intensity_scale: float = 1.0,
    norm_factor: float = 1.0,
    *,
    probe_trainable: bool = False,
    intensity_scale_trainable: bool = True,
    seed: int = 0,
    precision: str = "32",
    canvas_size: int | None = None,
) -> PtychoModel:
    """Build new autoencoder / diffraction_to_obj / training models for one ModelConfig.

    Args:
        config: architecture and physics options.
        probe: (N, N) complex normalised probe (zeros when None; a bundle fills it).
        intensity_scale: s0 > 0; ``log_scale`` is initialised to log(s0).
        norm_factor: the input normalisation of the data (kept for bundles).
        probe_trainable / intensity_scale_trainable: which physics weights train.
        seed: seeds the Glorot-uniform initialisers (one derived seed per conv).
        precision: ExecutionConfig precision; bf16-mixed runs the convolutions in
            bfloat16 while merge, FFT and loss stay float32.
        canvas_size: static merge canvas side P (XLA); None computes it per batch.
    """
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model needs a ModelConfig, got {type(config).__name__}")
    plan = layer_plan(config)
    n, c = config.N, config.gridsize**2
    dtype = compute_dtype_policy(precision)
    convs = plan.conv_layers()
    seeds = {spec.name: int(seed) * 1000 + i for i, spec in enumerate(convs)}

    x_in = keras.Input((n, n, c), name="input", dtype="float32")
    pos_in = keras.Input((1, 2, c), name="input_positions", dtype="float32")
    scaler = IntensityScale(
        intensity_scale, intensity_scale_trainable, name="intensity_scale", dtype="float32"
    )
    features = _run(plan.stage("encoder"), scaler(x_in), seeds, dtype)
    trunk = plan.stage("bottleneck")
    if trunk:
        outputs = {plan.stage("encoder")[-1].name: features}
        features = _run(trunk, features, seeds, dtype, outputs)
    amp = _branch(plan, "amp", features, seeds, dtype)
    phase = _branch(plan, "phase", features, seeds, dtype)
    obj = CombineComplex(name="obj", dtype="float32")(amp, phase)
    centre = ObjectCentre(config.probe_big, config.object_big, name="trimmed_obj")(obj, pos_in)
    patches = MergeReextract(
        config.probe_big, config.object_big, canvas_size, name="padded_objs_with_offsets"
    )(obj, pos_in)
    illumination = ProbeIllumination(
        n,
        config.probe_mask,
        config.gaussian_smoothing_sigma,
        probe_trainable,
        name="probe_illumination",
        dtype="float32",
    )
    psi = illumination(patches)
    amplitude = Diffraction(name="pred_diffraction", dtype="float32")(psi)
    pred_amp = scaler(amplitude, inverse=True)
    intensity = Square(name="pred_intensity", dtype="float32")(pred_amp)
    if probe is not None:
        illumination.set_probe(probe)

    autoencoder = keras.Model([x_in, pos_in], [centre, pred_amp, intensity], name="autoencoder")
    d2o = keras.Model([x_in, pos_in], centre, name="diffraction_to_obj")
    training = keras.Model(
        [x_in, pos_in], [centre, pred_amp, intensity, obj, amp, phase], name="training_model"
    )
    return PtychoModel(
        config=config,
        plan=plan,
        autoencoder=autoencoder,
        diffraction_to_obj=d2o,
        training_model=training,
        intensity_scale=float(intensity_scale),
        norm_factor=float(norm_factor),
        probe_trainable=probe_trainable,
        intensity_scale_trainable=intensity_scale_trainable,
        precision=precision,
    )
