"""What this CPU can do for this network at best: the roofline the backend numbers sit under.

The network is ~all 3x3 convolutions, so its best possible rate is
(convolution GFLOP/s of this CPU) / (GFLOP per pattern). Both are measured here with
torch/oneDNN: the network's wide 3x3 convolution shapes (64/128/256 channels at
64/32/16 px, batch 16, channels-last), forward alone and forward + both backward
passes, in float32 and bfloat16; the fastest shape sets the ceiling. The performance
targets of the backend issues assume AMX-bf16 (~550 GFLOP/s); ``cpu_amx_bf16`` says
whether this CPU has it.
"""

from __future__ import annotations

import time

import torch
from torch import nn


def cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def forward_gflop_per_pattern(model: nn.Module, x: torch.Tensor) -> float:
    """Convolution GFLOP of one ``model.network`` forward, per sample of ``x``.

    Counted from the layer shapes (2·k²·C_in·C_out per output pixel), hooks on every
    ``nn.Conv2d``; folded upsample+conv layers count the FLOPs of the unfolded form.
    """
    total = 0

    def hook(mod: nn.Conv2d, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        total += (
            2
            * out.shape[0]
            * out.shape[2]
            * out.shape[3]
            * mod.weight[0].numel()
            * mod.weight.shape[0]
        )

    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    handles = [m.register_forward_hook(hook) for m in convs]
    fold = model.fold_max_out
    model.fold_max_out = 0  # every conv through its module, so that the hooks count it
    try:
        with torch.inference_mode():
            model.network(x)
    finally:
        model.fold_max_out = fold
        for h in handles:
            h.remove()
    return total / x.shape[0] / 1e9


# The network's 3x3 convolution shapes (channels, side) at n_filters_scale 2, N=64.
SHAPES = ((64, 64), (128, 32), (256, 16))


def conv_gflops(
    dtype: torch.dtype, train: bool, channels: int = 64, side: int = 64, repeats: int = 20
) -> float:
    """GFLOP/s of a ``channels -> channels`` 3x3 channels-last convolution, batch 16.

    The fastest of ``repeats`` calls (after 3 warm-up calls): a ceiling, not a typical
    rate; the median moved by 20 % between runs on a shared 2-core machine.
    """
    x = torch.randn(16, channels, side, side, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    conv = nn.Conv2d(channels, channels, 3, padding=1)
    conv = conv.to(dtype=dtype, memory_format=torch.channels_last)
    flop = 2 * 16 * side * side * channels * channels * 9 * (3 if train else 1)
    x.requires_grad_(train)
    times = []
    for i in range(repeats + 3):
        t0 = time.perf_counter()
        if train:
            conv.zero_grad(set_to_none=True)
            conv(x).sum().backward()
        else:
            with torch.inference_mode():
                conv(x)
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return flop / min(times) / 1e9


def ceiling(model: nn.Module, x: torch.Tensor) -> dict[str, float | bool]:
    """Measured conv GFLOP/s and the implied upper bounds for ``model`` (patterns/s)."""
    flags = cpu_flags()
    per_pattern = forward_gflop_per_pattern(model, x)
    out: dict[str, float | bool] = {
        "cpu_avx512_bf16": "avx512_bf16" in flags,
        "cpu_amx_bf16": "amx_bf16" in flags,
        "network_forward_gflop_per_pattern": per_pattern,
    }
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        # The best of the network's layer shapes: an upper bound for the whole network.
        fwd = max(conv_gflops(dtype, False, c, s) for c, s in SHAPES)
        step = max(conv_gflops(dtype, True, c, s) for c, s in SHAPES)
        out[f"conv_gflops_forward_{name}"] = fwd
        out[f"conv_gflops_train_{name}"] = step
        # Upper bounds: every FLOP of the network at the rate of its best layer shape;
        # a training step is ~3x the forward FLOPs (forward, grad-input, grad-weight).
        out[f"ceiling_infer_patterns_per_s_{name}"] = fwd / per_pattern
        out[f"ceiling_train_groups_per_s_gridsize1_{name}"] = step / (3 * per_pattern)
    return out
