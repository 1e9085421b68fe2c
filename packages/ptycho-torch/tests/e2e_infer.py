"""Run by test_end_to_end.py in a fresh process: load a bundle, infer, stitch, evaluate."""

from __future__ import annotations

import json
import sys

import torch

from ptychopinn.data import group, load_npz
from ptychopinn.stitch import evaluate
from ptychopinn.torch import load_bundle, predict
from ptychopinn.torch.workflow import stitch

if __name__ == "__main__":
    torch.set_num_threads(2)
    bundle, scan_path, out = sys.argv[1:4]
    model = load_bundle(bundle, expect_N=64, expect_gridsize=1)
    scan = load_npz(scan_path)
    data = group(scan, gridsize=1, seed=0, intensity_scale=float(model.s0))
    stitched = stitch(predict(model, data, batch_size=32), data)
    metrics = evaluate(stitched, scan.object)
    with open(out, "w") as fh:
        json.dump({"ssim": metrics["amplitude"]["ssim"], "shape": list(stitched.shape)}, fh)
