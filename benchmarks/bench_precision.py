"""Does bf16 mixed precision cost reconstruction quality? Prints one JSON object.

Trains the `ptychopinn demo` recipe (17x17 grid scan of an amplitude-only 'lines'
object, gridsize 2, n_filters_scale 1, lr 3e-3, 30 epochs) in float32 and in
bf16-mixed, reconstructs the scan and reports the stitched amplitude
SSIM/PSNR of each and their difference (the backend issues ask for |dSSIM| <= 0.02).
In bf16-mixed only the network runs in bfloat16; merge, the FFT and the Poisson loss
stay float32 in both backends. The demo's recipe because it learns: with
n_filters_scale 2 at lr 3e-3 the sigmoid amplitude saturates within the first epochs
and both precisions return the same stuck image (measured), which would compare nothing.

Usage: ``python benchmarks/bench_precision.py [--backend tensorflow|pytorch|all]
[--epochs 30] [--quick]``.
Each backend runs in its own process (TensorFlow and Lightning must not share one).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run_backend(backend: str, epochs: int, seed: int) -> dict:
    """Train/reconstruct/evaluate in float32 and bf16-mixed with one backend, here."""
    from ptychopinn.app import pipeline
    from ptychopinn.app.demo import DEMO_DEFAULTS, demo_overrides
    from ptychopinn.config import get_backend, load_config
    from ptychopinn.data import simulate

    d = DEMO_DEFAULTS
    chosen = get_backend(backend)
    scan = simulate("lines", n_images=d["n_images"], N=d["N"], nphotons=d["nphotons"],
                    seed=seed, scan=d["scan"], step=d["step"], phase=d["phase"])  # fmt: skip
    out: dict = {
        "backend": backend,
        "epochs": epochs,
        "seed": seed,
        "n_filters_scale": d["n_filters_scale"],
    }
    out_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "bench_precision"
    data = None
    for precision in ("32", "bf16-mixed"):
        overrides = demo_overrides(backend, epochs, seed, out_dir)
        overrides.update({
            "execution.precision": precision,
            "execution.enable_progress_bar": False,
            "execution.logger": "none",
            "execution.enable_checkpointing": False,
        })  # fmt: skip
        configs = load_config(None, overrides)
        if data is None:  # the same groups for both precisions
            data = pipeline.group_for_model(
                scan, configs["model"], configs["training"], d["nphotons"]
            )
        t0 = time.perf_counter()
        result = chosen.train(data, None, configs["training"], configs["execution"])
        seconds = time.perf_counter() - t0
        model = result.model if hasattr(result, "model") else result["model"]
        stitched = pipeline.stitch_patches(
            chosen.predict(model, data), data, configs["inference"].stitch_crop
        )
        aligned = pipeline.align_to_truth(stitched, scan.object)
        metrics = pipeline.evaluate_aligned(aligned)["amplitude"]
        key = "fp32" if precision == "32" else "bf16"
        out[f"amplitude_ssim_{key}"] = metrics["ssim"]
        out[f"amplitude_psnr_{key}"] = metrics["psnr"]
        out[f"train_seconds_{key}"] = seconds
    out["ssim_bf16_minus_fp32"] = out["amplitude_ssim_bf16"] - out["amplitude_ssim_fp32"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="all", choices=("tensorflow", "pytorch", "all"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2 epochs (smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.epochs = 2
    if args.backend != "all":
        print(json.dumps(run_backend(args.backend, args.epochs, args.seed), indent=2))
        return
    results = []
    for backend in ("tensorflow", "pytorch"):
        cmd = [sys.executable, __file__, "--backend", backend, "--epochs", str(args.epochs),
               "--seed", str(args.seed)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            results.append({"backend": backend, "error": proc.stderr.strip().splitlines()[-1:]})
            continue
        results.append(json.loads(proc.stdout[proc.stdout.index("{") :]))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
