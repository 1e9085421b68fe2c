"""Benchmark the PyTorch backend; prints one JSON object.

Measures (medians of ``--repeats`` runs, N=64, n_filters_scale 2, batch 16):
- training throughput in groups/s at gridsize 1 and 2, float32 and bf16-mixed
  (optimizer steps of the full training path: network + merge + illuminate +
  diffract + Poisson NLL + backward + Adam);
- the same steps with the network alone (physics replaced by an MAE on the heads),
  so the physics overhead is a measured ratio;
- inference end to end (grouping + forward + stitching) in patterns/s, float32 and bf16;
- peak RSS of an inference pass over ``--infer-patterns`` patterns (streamed);
- first-step overhead (the first optimizer step minus a steady-state step);
- the roofline of this CPU for this network (``_ceiling.py``): measured 3x3-convolution
  GFLOP/s in float32 and bf16 and the implied best patterns/s.

Usage: ``python benchmarks/bench_torch.py [--quick]`` (``--quick``: fewer steps).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

import numpy as np
import torch
from _ceiling import ceiling
from _rss import run_on_measured_scan

from ptychopinn.config import ModelConfig, TrainingConfig
from ptychopinn.data import group, simulate
from ptychopinn.torch import PtychoPINN, predict
from ptychopinn.torch.training import compute_loss
from ptychopinn.torch.workflow import stitch


def _batches(data, batch_size, steps, seed=0):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(data.X).permute(0, 3, 1, 2)
    rel = torch.from_numpy(np.ascontiguousarray(data.coords_relative[:, 0]))
    for _ in range(steps):
        idx = torch.from_numpy(rng.choice(len(data), batch_size, replace=False))
        yield x[idx], rel[idx]


def _train_rate(data, gridsize, precision, physics, steps, batch_size=16, nfs=2):
    """Groups per second of full optimizer steps; also the first-step time."""
    cfg = TrainingConfig(model=ModelConfig(N=64, gridsize=gridsize, n_filters_scale=nfs))
    model = PtychoPINN(cfg.model, data.probe, data.intensity_scale, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    bf16 = precision == "bf16-mixed"
    times = []
    for x, rel in _batches(data, batch_size, steps + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if physics:
                out = model(x, rel)
                loss = compute_loss(model, out, {"x": x, "relative": rel}, cfg)["loss"]
            else:
                amp, phase = model.network(model.scaled_input(x))
                loss = (amp - x[:, :1]).abs().mean() + phase.abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    steady = statistics.median(times[1:])
    return batch_size / steady, times[0] - steady


def _infer_rate(scan, gridsize, precision, batch_size, nfs=2):
    """Patterns per second for grouping + forward + stitching."""
    t0 = time.perf_counter()
    data = group(scan, gridsize=gridsize, seed=0)
    model = PtychoPINN(
        ModelConfig(N=64, gridsize=gridsize, n_filters_scale=nfs),
        data.probe,
        data.intensity_scale,
    )
    patches = predict(model, data, batch_size=batch_size, precision=precision)
    stitch(patches, data)
    return scan.n_positions / (time.perf_counter() - t0)


def _rss_child(n_patterns: int, batch_size: int) -> tuple[float, float]:
    """Peak RSS (MiB) of a fresh process doing what ``ptychopinn infer`` does on measured
    data: load ``n_patterns`` patterns from NPZ and group them (first value), then infer
    and stitch (second value)."""
    body = (
        "import torch\n"
        f"torch.set_num_threads({torch.get_num_threads()})\n"
        "from ptychopinn.config import ModelConfig\n"
        "from ptychopinn.data import group, load_npz\n"
        "from ptychopinn.torch import PtychoPINN, predict\n"
        "from ptychopinn.torch.workflow import stitch\n"
        "data = group(load_npz(PATH), seed=0)\n"
        "before = hwm()\n"
        "m = PtychoPINN(ModelConfig(N=64, n_filters_scale=2), data.probe, data.intensity_scale)\n"
        f"stitch(predict(m, data, batch_size={batch_size}), data)\n"
        "print(before, hwm())\n"
    )
    before, after = run_on_measured_scan(n_patterns, body)
    return float(before), float(after)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--infer-patterns", type=int, default=8000)
    # 16, the batch: on 2 CPU cores smaller batches infer faster (activations stay
    # in cache; measured gs1 fp32 121/119/112 and bf16 229/220/206 patterns/s at 16/32/64).
    parser.add_argument("--infer-batch", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = 3 if args.quick else 8
    scan = simulate("lines", n_images=512, N=64, object_size=384, seed=0)
    data = {1: group(scan, gridsize=1, seed=0), 2: group(scan, gridsize=2, seed=0)}
    result: dict = {
        "torch": torch.__version__,
        "threads": args.threads,
        "N": 64,
        "n_filters_scale": 2,
        "batch_size": 16,
        "infer_batch_size": args.infer_batch,
        "repeats": args.repeats,
        "load_average_1min": os.getloadavg()[0],
    }
    first_step = []
    for gs in (1, 2):
        for precision in ("32", "bf16-mixed"):
            full, net = [], []
            for _ in range(args.repeats):
                rate, first = _train_rate(data[gs], gs, precision, True, steps)
                full.append(rate)
                first_step.append(first)
                net.append(_train_rate(data[gs], gs, precision, False, steps)[0])
            key = f"gridsize{gs}_{'fp32' if precision == '32' else 'bf16'}"
            result[f"train_groups_per_s_{key}"] = statistics.median(full)
            result[f"train_groups_per_s_network_only_{key}"] = statistics.median(net)
            result[f"physics_overhead_{key}"] = statistics.median(net) / statistics.median(full) - 1
    for gs in (1, 2):
        for precision in ("32", "bf16-mixed"):
            rates = [
                _infer_rate(scan, gs, precision, args.infer_batch) for _ in range(args.repeats)
            ]
            key = f"gridsize{gs}_{'fp32' if precision == '32' else 'bf16'}"
            result[f"infer_patterns_per_s_end_to_end_{key}"] = statistics.median(rates)
    result["first_step_overhead_s"] = statistics.median(first_step)
    x = torch.from_numpy(data[1].X[:16]).permute(0, 3, 1, 2)
    result.update(ceiling(PtychoPINN(ModelConfig(N=64, n_filters_scale=2)), x))
    result["infer_patterns_for_rss"] = args.infer_patterns if not args.quick else 1000
    data_rss, total_rss = _rss_child(result["infer_patterns_for_rss"], args.infer_batch)
    result["peak_rss_mib_after_load_and_group"] = data_rss
    result["peak_rss_mib_inference_end_to_end"] = total_rss
    result["peak_rss_mib_this_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
