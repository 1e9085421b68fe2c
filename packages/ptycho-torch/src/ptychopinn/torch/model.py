"""The PtychoPINN network (METHOD.md §5) built from ``ptychopinn.config.layer_plan``.

The module hierarchy mirrors the canonical layer names, so the ``state_dict`` key
of every convolution parameter *is* its canonical name (``encoder.0.conv0.weight``,
``amp_outer.out.bias``, ...); ``log_scale`` and ``probe`` are canonical too.
Tensors are channels-first inside (``(B, C, N, N)``, channels-last memory format
for the convolutions); positions are ``(B, 2, C)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

import torch
import torch.nn.functional as F
from ptychopinn.config import ModelConfig, TrainingConfig, layer_plan
from ptychopinn.config.layers import ADD, CONV2D, MAXPOOL2D, UPSAMPLE2D, LayerPlan, LayerSpec
from torch import nn

from . import physics

__all__ = ["ForwardOutput", "PtychoPINN", "activation"]


def activation(name: str | None, x: torch.Tensor) -> torch.Tensor:
    """Apply a layer-plan activation by name (``None`` is the identity)."""
    if name is None:
        return x
    if name == "relu":
        return F.relu(x, inplace=True)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "swish":
        return F.silu(x)
    if name == "softplus":
        return F.softplus(x)
    if name == "pi_tanh":
        return math.pi * torch.tanh(x)
    raise ValueError(
        f"unknown activation {name!r}; expected relu, sigmoid, swish, softplus or pi_tanh"
    )


def _complex_object(amp: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """``O = A · exp(iφ)`` for real A of either sign.

    Not ``torch.polar``: its backward assumes ``A >= 0`` and flips the sign of dL/dA
    where A < 0 (the probe_big border and swish amplitudes are negative there).
    """
    return torch.complex(amp * torch.cos(phase), amp * torch.sin(phase))


# A nearest upsampling followed by a convolution with at most this many output channels
# runs as one sub-pixel convolution: oneDNN is slow for very thin convolutions (64 -> 1
# at 64x64 ran at ~12 GFLOP/s against ~200 for wide ones), and the folded form also
# skips materialising the upsampled input. Wider convolutions gain nothing (measured).
_FOLD_MAX_OUT = 4

# Row (and column) tap maps of the sub-pixel form: after nearest upsampling by 2, output
# row 2i+a of a 3-tap 'same' convolution reads original rows i-1, i, i+1 with these
# weights (a = 0: w0, w1+w2, 0; a = 1: 0, w0+w1, w2); zero padding stays zero padding.
_PHASE_TAPS = ((( 1.0, 0.0, 0.0), (0.0, 1.0, 1.0), (0.0, 0.0, 0.0)),
               (( 0.0, 0.0, 0.0), (1.0, 1.0, 0.0), (0.0, 0.0, 1.0)))  # fmt: skip


def _upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Nearest upsampling by an integer ``factor`` (1: unchanged)."""
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")


def _upsampled_conv(x: torch.Tensor, conv: nn.Conv2d, factor: int) -> torch.Tensor:
    """``conv(upsample(x, factor))`` without forming the upsampled input.

    For factor 2 and a 3x3 'same' convolution, each of the four output phases
    (row parity a, column parity b) is a 3x3 convolution of ``x`` with the folded kernel
    ``R_a W C_b^T``; the phases are computed as 4·C_out channels and interleaved by
    ``pixel_shuffle``. The same arithmetic up to summation order; differentiable in the
    weights, so training uses it too. Other factors/kernels fall back to the plain path.
    """
    w = conv.weight
    if factor != 2 or tuple(w.shape[-2:]) != (3, 3) or conv.padding != (1, 1):
        return conv(_upsample(x, factor))
    taps = torch.tensor(_PHASE_TAPS, dtype=w.dtype, device=w.device)  # (a, tap, k)
    # folded[o, a, b, c, p, q] = sum_{k,l} taps[a, p, k] * w[o, c, k, l] * taps[b, q, l]
    folded = torch.einsum("apk,ockl,bql->oabcpq", taps, w, taps)
    folded = folded.reshape(w.shape[0] * 4, w.shape[1], 3, 3)
    bias = conv.bias.repeat_interleave(4) if conv.bias is not None else None
    y = F.conv2d(x, folded.contiguous(memory_format=torch.channels_last), bias, padding=1)
    return F.pixel_shuffle(y, 2)


class ForwardOutput(NamedTuple):
    """Training-path outputs, all channels-first.

    ``pred_amp`` (B, C, N, N) predicted diffraction amplitude in counts units
    (``s · |F(P·O)|/N``); ``obj`` (B, C_out, N, N) complex network object patches;
    ``amp``/``phase`` (B, C_out, N, N) the two network heads.
    """

    pred_amp: torch.Tensor
    obj: torch.Tensor
    amp: torch.Tensor
    phase: torch.Tensor


def _insert(root: nn.Module, dotted: str, module: nn.Module) -> None:
    """Place ``module`` at ``root.<dotted>``, creating ModuleDicts along the way."""
    parts = dotted.split(".")
    node = root
    for part in parts[:-1]:
        if not hasattr(node, part) or getattr(node, part) is None:
            child = nn.ModuleDict()
            if isinstance(node, nn.ModuleDict):
                node[part] = child
            else:
                node.add_module(part, child)
        node = node[part] if isinstance(node, nn.ModuleDict) else getattr(node, part)
    if isinstance(node, nn.ModuleDict):
        node[parts[-1]] = module
    else:
        node.add_module(parts[-1], module)


def _lookup(root: nn.Module, dotted: str) -> nn.Module:
    node = root
    for part in dotted.split("."):
        node = node[part] if isinstance(node, nn.ModuleDict) else getattr(node, part)
    return node


class PtychoPINN(nn.Module):
    """Physics-informed ptychography network with the training and inference call paths.

    Args:
        model: architecture and physics settings.
        probe: (N, N) complex normalised probe; zeros when None (a checkpoint fills it).
        intensity_scale: s0, the initial intensity scale; ``log_scale`` starts at log(s0).
        norm_factor: the input normalisation factor of the training data (kept for bundles).
        probe_trainable: make the probe a trainable parameter.
        intensity_scale_trainable: make ``log_scale`` trainable.
        seed: seed of the Glorot-uniform initialisation.
    """

    def __init__(
        self,
        model: ModelConfig,
        probe: np.ndarray | torch.Tensor | None = None,
        intensity_scale: float = 1.0,
        norm_factor: float = 1.0,
        *,
        probe_trainable: bool = False,
        intensity_scale_trainable: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.config = model
        #: The full training configuration, when known (written into bundles).
        self.training_config: TrainingConfig | None = None
        self.plan: LayerPlan = layer_plan(model)
        self.N = model.N
        self.C = model.gridsize**2
        #: Upsample + conv with at most this many outputs runs folded (0: never; same values).
        self.fold_max_out = _FOLD_MAX_OUT
        n = self.N
        for spec in self.plan.conv_layers():
            k = spec.kernel_size
            conv = nn.Conv2d(spec.in_channels, spec.out_channels, k, padding=(k[0] // 2, k[1] // 2))
            _insert(self, spec.name, conv)
        self.reset_parameters(seed)

        if probe is None:
            probe_t = torch.zeros((n, n), dtype=torch.complex64)
        else:
            probe_t = torch.as_tensor(np.asarray(probe), dtype=torch.complex64).clone()
            if probe_t.shape != (n, n):
                raise ValueError(f"probe must be (N, N) = {(n, n)}, got {tuple(probe_t.shape)}")
        if probe_trainable:
            self.probe = nn.Parameter(probe_t)
        else:
            self.register_buffer("probe", probe_t)
        if not (intensity_scale > 0 and math.isfinite(intensity_scale)):
            raise ValueError(f"intensity_scale must be finite and > 0, got {intensity_scale}")
        self.log_scale = nn.Parameter(
            torch.tensor(math.log(intensity_scale), dtype=torch.float32),
            requires_grad=intensity_scale_trainable,
        )
        self.register_buffer("s0", torch.tensor(float(intensity_scale), dtype=torch.float32))
        self.register_buffer("norm_factor", torch.tensor(float(norm_factor), dtype=torch.float64))
        centre = torch.zeros((n, n), dtype=torch.float32)
        centre[n // 4 : n // 4 + n // 2, n // 4 : n // 4 + n // 2] = 1.0
        self.register_buffer("_outside_centre", 1.0 - centre, persistent=False)
        self.to(memory_format=torch.channels_last)

    # ----------------------------------------------------------------- weights
    def reset_parameters(self, seed: int = 0) -> None:
        """Glorot-uniform kernels and zero biases, from a generator seeded with ``seed``."""
        gen = torch.Generator().manual_seed(int(seed))
        for spec in self.plan.conv_layers():
            conv = _lookup(self, spec.name)
            with torch.no_grad():
                # Draw in the canonical (out, in, kh, kw) layout; fans as Keras computes them.
                w = torch.empty(conv.weight.shape, dtype=torch.float32)
                nn.init.xavier_uniform_(w, generator=gen)
                conv.weight.copy_(w)
                conv.bias.zero_()

    def canonical_parameters(self) -> dict[str, torch.Tensor]:
        """Canonical name -> tensor (parameters and the probe), in the plan's layouts."""
        out: dict[str, torch.Tensor] = {}
        for spec in self.plan.conv_layers():
            conv = _lookup(self, spec.name)
            out[f"{spec.name}.weight"] = conv.weight
            out[f"{spec.name}.bias"] = conv.bias
        out["log_scale"] = self.log_scale
        out["probe"] = self.probe
        return out

    @property
    def intensity_scale(self) -> torch.Tensor:
        """The current intensity scale ``s = exp(log_scale)``."""
        return torch.exp(self.log_scale)

    # ----------------------------------------------------------------- network
    def _run(
        self,
        specs: tuple[LayerSpec, ...],
        x: torch.Tensor,
        pending: int = 1,
        outputs: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, int]:
        """Run ``specs`` on ``x``; returns ``(y, pending)``.

        A nearest upsampling is deferred (``pending`` is its factor, 1 = none) until the
        next operation needs it, so that an upsampling followed by a thin convolution
        runs as one sub-pixel convolution (:func:`_upsampled_conv`). Nearest upsampling
        commutes with channel slicing, so callers may slice a pending result.
        ``outputs`` collects each layer's output by name for later ``add`` layers.
        """
        for spec in specs:
            if spec.kind == CONV2D:
                conv = _lookup(self, spec.name)
                if pending > 1 and spec.out_channels <= self.fold_max_out:
                    y = _upsampled_conv(x, conv, pending)
                else:
                    y = conv(_upsample(x, pending))
                if spec.activation not in (None, "relu"):
                    # The output activations (sigmoid, pi*tanh, swish, softplus) run in
                    # float32 under bf16 autocast, as in the TensorFlow backend, so the
                    # object's amplitude and phase are not rounded to 8-bit mantissas.
                    y = y.float()
                x, pending = activation(spec.activation, y), 1
            elif spec.kind == MAXPOOL2D:
                x = F.max_pool2d(_upsample(x, pending), spec.kernel_size)
                pending = 1
            elif spec.kind == UPSAMPLE2D:
                ky, kx = spec.kernel_size
                if ky != kx:
                    x, pending = F.interpolate(_upsample(x, pending), scale_factor=(ky, kx)), 1
                else:
                    pending *= ky
            elif spec.kind == ADD:
                if outputs is None or spec.source not in outputs:
                    raise ValueError(f"layer {spec.name}: its source {spec.source!r} has not run")
                x = activation(spec.activation, _upsample(x, pending) + outputs[spec.source])
                pending = 1
            else:
                raise ValueError(f"layer {spec.name}: unknown kind {spec.kind!r}")
            if outputs is not None:
                outputs[spec.name] = _upsample(x, pending)
        return x, pending

    def _branch(self, kind: str, features: torch.Tensor) -> torch.Tensor:
        plan = self.plan
        dec, pending = self._run(plan.stage(f"decoder_{kind}"), features)
        if not plan.pad_object:
            return _upsample(*self._run(plan.stage(f"{kind}_outer"), dec, pending))
        split = dec.shape[1] - 4
        head = _upsample(*self._run(plan.stage(f"{kind}_head"), dec[:, :split], pending))
        q = self.N // 4
        out = F.pad(head, (q, q, q, q))
        if plan.probe_big:
            outer = _upsample(*self._run(plan.stage(f"{kind}_outer"), dec[:, split:], pending))
            out = out + outer * self._outside_centre.to(outer.dtype)
        return out

    def network(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder and both decoders: (B, C, N, N) -> amplitude, phase (B, C_out, N, N) float32."""
        x = x.contiguous(memory_format=torch.channels_last)
        features = _upsample(*self._run(self.plan.stage("encoder"), x))
        trunk = self.plan.stage("bottleneck")
        if trunk:
            outputs = {self.plan.stage("encoder")[-1].name: features}
            features = _upsample(*self._run(trunk, features, outputs=outputs))
        amp = self._branch("amp", features)
        phase = self._branch("phase", features)
        return amp.float(), phase.float()

    def scaled_input(self, x: torch.Tensor) -> torch.Tensor:
        """``X · s0 / s``: what the network sees (INTERFACES.md model forward)."""
        return x * (self.s0 / torch.exp(self.log_scale))

    def effective_probe(self) -> torch.Tensor:
        """The illumination: the probe, Gaussian-smoothed if configured (masking is in illuminate)."""
        return physics.gaussian_smooth(self.probe, self.config.gaussian_smoothing_sigma)

    # --------------------------------------------------------------- call paths
    def forward(self, x: torch.Tensor, relative: torch.Tensor) -> ForwardOutput:
        """Training path: network → merge/re-extract → illuminate → diffract → scale.

        Args:
            x: (B, C, N, N) float32 normalised amplitude X.
            relative: (B, 2, C) float ``coords_relative`` ([x, y]).

        Returns:
            :class:`ForwardOutput`; ``pred_amp`` is to be compared with ``s0 · X``.
        """
        amp, phase = self.network(self.scaled_input(x))
        device_type = x.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            relative = relative.float()
            obj = _complex_object(amp, phase)
            n = self.N
            P = physics.merge_size(relative, n)
            if self.config.object_big:
                canvas = physics.merge(obj, relative, probe_big=self.config.probe_big, P=P)
            else:
                pad = (P - n) // 2
                canvas = F.pad(obj[:, :1], (pad, P - n - pad, pad, P - n - pad))
            patches = physics.reextract(canvas, relative, n)
            psi = physics.illuminate(patches, self.effective_probe(), mask=self.config.probe_mask)
            pred = physics.diffract(psi) * torch.exp(self.log_scale)
        return ForwardOutput(pred, obj, amp, phase)

    def diffraction_to_obj(self, x: torch.Tensor, relative: torch.Tensor) -> torch.Tensor:
        """Inference path: (B, C, N, N) amplitude, (B, 2, C) offsets -> (B, 1, N, N) complex64.

        The merged group's centre crop when object_big and C > 1, else channel 0.
        """
        amp, phase = self.network(self.scaled_input(x))
        with torch.autocast(device_type=x.device.type, enabled=False):
            obj = _complex_object(amp, phase)
            if self.config.object_big and self.C > 1:
                merged = physics.merge(obj, relative.float(), probe_big=self.config.probe_big)
                return physics.centre_crop(merged, self.N)
            return obj[:, :1]
