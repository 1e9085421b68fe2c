"""Benchmark the TensorFlow backend; prints one JSON object.

Measures (medians of ``--repeats`` runs, N=64, n_filters_scale 2, batch 16):
- training throughput in groups/s at gridsize 1 and 2, float32 (with and without XLA)
  and bf16-mixed: optimizer steps of the full training path (network + merge/re-extract
  + illuminate + diffract + Poisson NLL + backward + Adam), compiled as ``train()``
  compiles them (``tf.function``, ``jit_compile`` for XLA);
- the same steps with the network alone (physics replaced by an MAE on the heads), so
  the physics overhead is a measured ratio;
- inference end to end (grouping + forward + stitching) in patterns/s;
- peak RSS of an inference pass over ``--infer-patterns`` patterns (fresh process);
- first-step overhead: the first optimizer step (trace/compile) minus a steady step.

Usage: ``python benchmarks/bench_tf.py [--quick] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
from _rss import run_on_measured_scan

from ptychopinn.config import ModelConfig
from ptychopinn.data import group, simulate
from ptychopinn.tf import physics
from ptychopinn.tf.model import build_model
from ptychopinn.tf.workflow import predict, stitch


def _batches(data, batch_size, steps, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        idx = rng.choice(len(data), batch_size, replace=False)
        yield tf.constant(data.X[idx]), tf.constant(data.coords_relative[idx])


def _train_rate(data, gridsize, precision, physics_on, xla, steps, batch_size=16, nfs=2):
    """Groups per second of full optimizer steps; also the first-step overhead (s)."""
    cfg = ModelConfig(N=64, gridsize=gridsize, n_filters_scale=nfs)
    canvas = physics.merge_size(data.coords_relative, 64) if xla else None
    net = build_model(
        cfg, data.probe, data.intensity_scale, precision=precision, canvas_size=canvas
    )
    model = net.training_model
    opt = keras.optimizers.Adam(1e-3)
    variables = model.trainable_variables
    opt.build(variables)
    s0 = float(data.intensity_scale)

    @tf.function(jit_compile=xla)
    def step(x, rel):
        with tf.GradientTape() as tape:
            _, pred_amp, _, _, amp, phase = model([x, rel], training=True)
            if physics_on:
                loss = physics.poisson_nll(pred_amp, s0 * x)
            else:
                loss = tf.reduce_mean(tf.abs(amp - x[..., :1])) + tf.reduce_mean(tf.abs(phase))
        grads = tape.gradient(loss, variables)
        opt.apply_gradients(zip(grads, variables, strict=True))
        return loss

    times = []
    for x, rel in _batches(data, batch_size, steps + 1):
        t0 = time.perf_counter()
        float(step(x, rel))
        times.append(time.perf_counter() - t0)
    steady = statistics.median(times[1:])
    return batch_size / steady, times[0] - steady


def _infer_rate(scan, gridsize, precision, nfs=2):
    """Patterns per second for grouping + forward + stitching (the model is built first)."""
    cfg = ModelConfig(N=64, gridsize=gridsize, n_filters_scale=nfs)
    warm = group(scan, gridsize=gridsize, n_groups=64, seed=0)
    model = build_model(cfg, warm.probe, warm.intensity_scale, precision=precision)
    predict(model, warm, batch_size=64)  # trace once, as a long-lived service would
    t0 = time.perf_counter()
    data = group(scan, gridsize=gridsize, seed=0)
    patches = predict(model, data, batch_size=64)
    stitch(patches, data)
    return len(data) / (time.perf_counter() - t0)


def _rss_child(n_patterns: int) -> float:
    """Peak RSS (MiB) of a fresh process doing what ``ptychopinn infer`` does on measured
    data: load ``n_patterns`` patterns from NPZ, group, infer, stitch."""
    body = (
        "import os\n"
        "os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
        "from ptychopinn.config import ModelConfig\n"
        "from ptychopinn.data import group, load_npz\n"
        "from ptychopinn.tf.model import build_model\n"
        "from ptychopinn.tf.workflow import predict, stitch\n"
        "data = group(load_npz(PATH), seed=0)\n"
        "m = build_model(ModelConfig(N=64, n_filters_scale=2), data.probe, data.intensity_scale)\n"
        "stitch(predict(m, data, batch_size=64), data)\n"
        "print(hwm())\n"
    )
    return float(run_on_measured_scan(n_patterns, body)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--infer-patterns", type=int, default=8000)
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16-mixed runs")
    args = parser.parse_args()
    steps = 3 if args.quick else 8
    scan = simulate("lines", n_images=512, N=64, object_size=384, seed=0)
    data = {1: group(scan, gridsize=1, seed=0), 2: group(scan, gridsize=2, seed=0)}
    result: dict = {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cpu_count": os.cpu_count(),
        "N": 64,
        "n_filters_scale": 2,
        "batch_size": 16,
        "repeats": args.repeats,
        "load_average_1min_start": os.getloadavg()[0],
    }
    variants = [("fp32", "32", False), ("fp32_xla", "32", True)]
    if not args.no_bf16:
        variants.append(("bf16", "bf16-mixed", False))
    for gs in (1, 2):
        for label, precision, xla in variants:
            full, net, first = [], [], []
            for _ in range(args.repeats):
                rate, overhead = _train_rate(data[gs], gs, precision, True, xla, steps)
                full.append(rate)
                first.append(overhead)
                net.append(_train_rate(data[gs], gs, precision, False, xla, steps)[0])
            key = f"gridsize{gs}_{label}"
            result[f"train_groups_per_s_{key}"] = statistics.median(full)
            result[f"train_groups_per_s_network_only_{key}"] = statistics.median(net)
            result[f"physics_overhead_{key}"] = statistics.median(net) / statistics.median(full) - 1
            result[f"first_step_overhead_s_{key}"] = statistics.median(first)
            print(f"[bench_tf] {key}: {statistics.median(full):.1f} groups/s", file=sys.stderr)
    infer_variants = [("fp32", "32")] + ([] if args.no_bf16 else [("bf16", "bf16-mixed")])
    for gs in (1, 2):
        for label, precision in infer_variants:
            rates = [_infer_rate(scan, gs, precision) for _ in range(args.repeats)]
            result[f"infer_groups_per_s_end_to_end_gridsize{gs}_{label}"] = statistics.median(rates)
    result["infer_patterns_for_rss"] = args.infer_patterns if not args.quick else 1000
    result["peak_rss_mib_inference"] = _rss_child(result["infer_patterns_for_rss"])
    result["peak_rss_mib_this_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["load_average_1min_end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
