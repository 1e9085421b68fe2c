"""Benchmark ptychopinn.stitch.reassemble; prints one JSON object.

100 000 complex64 patches of N=64, crop 20, random sub-pixel offsets over a
2000 x 2000 region (issue 4 targets: >= 100 000 patches/s, < 200 MB peak memory
beyond the inputs). Throughput is the median of ``--repeats`` runs; a plain
per-patch Python loop runs on a subset beside it and is extrapolated. Memory is
measured in a separate run under tracemalloc (numpy reports its buffers to it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import tracemalloc

import numpy as np

from ptychopinn.stitch import reassemble


def make_inputs(n: int, size: int, side: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size) complex64 patches and (n, 2) float64 offsets in [0, side)."""
    rng = np.random.default_rng(seed)
    patches = np.empty((n, size, size), dtype=np.complex64)
    real = patches.view(np.float32).reshape(n, size, 2 * size)
    step = 4096
    for i in range(0, n, step):
        real[i : i + step] = rng.random((min(step, n - i), size, 2 * size), dtype=np.float32)
    offsets = rng.uniform(0.0, side, size=(n, 2))
    return patches, offsets


def loop_reassemble(patches: np.ndarray, offsets: np.ndarray, crop: int) -> np.ndarray:
    """The plain approach: one bilinear splat per patch with four slice additions."""
    centre = np.round(offsets.mean(axis=0))
    pad = int(np.ceil(np.abs(offsets - centre).max()))
    side = crop + 2 * pad + 1
    num = np.zeros((side, side), dtype=np.complex128)
    den = np.zeros((side, side))
    s0 = patches.shape[1] // 2 - crop // 2
    ones = np.ones((crop, crop))
    for patch, (x, y) in zip(patches, offsets):
        px = x - centre[0] + pad
        py = y - centre[1] + pad
        kx, ky = int(np.floor(px)), int(np.floor(py))
        fx, fy = px - kx, py - ky
        tile = patch[s0 : s0 + crop, s0 : s0 + crop]
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                num[ky + dy : ky + dy + crop, kx + dx : kx + dx + crop] += wy * wx * tile
                den[ky + dy : ky + dy + crop, kx + dx : kx + dx + crop] += wy * wx * ones
    return np.where(den > 1e-6, num / np.where(den > 1e-6, den, 1), 0)


def timed(fn, repeats: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median wall seconds and median CPU seconds of this process over repeats."""
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--crop", type=int, default=20)
    parser.add_argument("--side", type=float, default=2000.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-n", type=int, default=2000)
    parser.add_argument("--fourier-n", type=int, default=10_000)
    args = parser.parse_args()

    patches, offsets = make_inputs(args.n, args.size, args.side, seed=0)
    reassemble(patches[:1000], offsets[:1000], crop=args.crop)  # warm-up

    wall, cpu = timed(lambda: reassemble(patches, offsets, crop=args.crop), args.repeats)

    tracemalloc.start()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    result = reassemble(patches, offsets, crop=args.crop)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result_bytes = result.image.nbytes + result.weights.nbytes

    m = min(args.loop_n, args.n)
    loop_wall, loop_cpu = timed(
        lambda: loop_reassemble(patches[:m], offsets[:m], args.crop), args.repeats
    )
    f = min(args.fourier_n, args.n)
    four_wall, four_cpu = timed(
        lambda: reassemble(patches[:f], offsets[:f], crop=args.crop, method="fourier"), 1
    )
    # Same geometry, so the two images agree where both are defined.
    check_m = min(500, args.n)
    ref = loop_reassemble(patches[:check_m], offsets[:check_m], args.crop)
    got = reassemble(patches[:check_m], offsets[:check_m], crop=args.crop).image
    h = min(ref.shape[0], got.shape[0])
    max_diff = float(np.abs(ref[:h, :h] - got[:h, :h]).max())

    report = {
        "benchmark": "ptychopinn.stitch.reassemble",
        "n_patches": args.n,
        "N": args.size,
        "crop": args.crop,
        "region_px": args.side,
        "dtype": str(patches.dtype),
        "canvas": list(result.shape),
        "input_mb": round((patches.nbytes + offsets.nbytes) / 2**20, 1),
        "repeats": args.repeats,
        "bilinear": {
            "seconds_median": round(wall, 3),
            "patches_per_s": round(args.n / wall),
            "cpu_seconds_median": round(cpu, 3),
            "patches_per_cpu_s": round(args.n / cpu),
            "peak_extra_mb": round((peak - before) / 2**20, 1),
            "result_mb": round(result_bytes / 2**20, 1),
        },
        "per_patch_loop": {
            "patches_timed": m,
            "patches_per_s": round(m / loop_wall),
            "patches_per_cpu_s": round(m / loop_cpu),
            "extrapolated_seconds": round(loop_wall * args.n / m, 2),
            "vectorised_speedup": round((args.n / wall) / (m / loop_wall), 1),
        },
        "fourier": {
            "patches_timed": f,
            "patches_per_s": round(f / four_wall),
            "patches_per_cpu_s": round(f / four_cpu),
        },
        "loop_vs_vectorised_max_abs_diff": max_diff,
        "targets": {"patches_per_s": 100_000, "peak_extra_mb": 200},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "load_avg_1min": round(os.getloadavg()[0], 2),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
