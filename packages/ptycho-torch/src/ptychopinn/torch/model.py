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
from ptychopinn.config.layers import CONV2D, MAXPOOL2D, UPSAMPLE2D, LayerPlan, LayerSpec
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
    def _run(self, specs: tuple[LayerSpec, ...], x: torch.Tensor) -> torch.Tensor:
        for spec in specs:
            if spec.kind == CONV2D:
                x = activation(spec.activation, _lookup(self, spec.name)(x))
            elif spec.kind == MAXPOOL2D:
                x = F.max_pool2d(x, spec.kernel_size)
            elif spec.kind == UPSAMPLE2D:
                x = F.interpolate(x, scale_factor=spec.kernel_size, mode="nearest")
            else:
                raise ValueError(f"layer {spec.name}: unknown kind {spec.kind!r}")
        return x

    def _branch(self, kind: str, features: torch.Tensor) -> torch.Tensor:
        plan = self.plan
        dec = self._run(plan.stage(f"decoder_{kind}"), features)
        if not plan.pad_object:
            return self._run(plan.stage(f"{kind}_outer"), dec)
        split = dec.shape[1] - 4
        head = self._run(plan.stage(f"{kind}_head"), dec[:, :split])
        q = self.N // 4
        out = F.pad(head, (q, q, q, q))
        if plan.probe_big:
            outer = self._run(plan.stage(f"{kind}_outer"), dec[:, split:])
            out = out + outer * self._outside_centre.to(outer.dtype)
        return out

    def network(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder and both decoders: (B, C, N, N) -> amplitude, phase (B, C_out, N, N) float32."""
        x = x.contiguous(memory_format=torch.channels_last)
        features = self._run(self.plan.stage("encoder"), x)
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
