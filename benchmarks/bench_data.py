"""Benchmarks of ptychopinn.data; prints one JSON object (median of 3 runs per timing)."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ptychopinn.data import ScanData, group, load_npz, neighbour_groups, save_npz, simulate


def _median_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """Return the median wall time in seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_grouping(m: int = 100_000) -> dict[str, float]:
    """Group m random positions into m groups, gridsize 2 (indices only, and full group() at N=8)."""
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 2000, m), rng.uniform(0, 2000, m)
    scan = ScanData(
        xcoords=x,
        ycoords=y,
        diffraction=np.ones((m, 8, 8), dtype=np.float32),
        probe=np.ones((8, 8)),
    )
    return {
        "points": m,
        "neighbour_groups_s": _median_time(lambda: neighbour_groups(x, y, gridsize=2, seed=0)),
        "group_N8_s": _median_time(lambda: group(scan, gridsize=2, seed=0)),
    }


def bench_simulation(n: int = 10_000, N: int = 64) -> dict[str, float]:
    """Simulate n patterns at N; time and tracemalloc peak versus output size."""
    seconds = _median_time(lambda: simulate("lines", n_images=n, N=N, seed=0))
    tracemalloc.start()
    scan = simulate("lines", n_images=n, N=N, seed=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    output = scan.diffraction.nbytes + scan.Y.nbytes + scan.object.nbytes
    return {
        "patterns": n,
        "N": N,
        "seconds": seconds,
        "peak_MiB": peak / 2**20,
        "output_MiB": output / 2**20,
        "peak_over_output": peak / output,
    }


def bench_npz_load(n: int = 10_000, N: int = 64) -> dict[str, float]:
    """Compare load_npz of an n-pattern file with a plain np.load of the same arrays."""
    scan = simulate("lines", n_images=n, N=N, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_npz(scan, Path(tmp) / "scan.npz")
        del scan

        def plain() -> None:
            with np.load(path, allow_pickle=False) as npz:
                {k: npz[k] for k in npz.files}

        plain()  # warm the page cache so neither side pays the first disk read
        ours = _median_time(lambda: load_npz(path))
        base = _median_time(plain)
        size = os.path.getsize(path)
    return {
        "patterns": n,
        "file_MiB": size / 2**20,
        "load_npz_s": ours,
        "np_load_s": base,
        "ratio": ours / base,
    }


def main() -> None:
    """Run every benchmark and print JSON."""
    result = {
        "cpus": os.cpu_count(),
        "grouping_100k_gridsize2": bench_grouping(),
        "simulation_10k_N64": bench_simulation(),
        "npz_load_10k_N64": bench_npz_load(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
