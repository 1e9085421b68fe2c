"""Run by test_end_to_end.py in a fresh process: load a bundle, infer, stitch, evaluate.

``python e2e_infer.py BUNDLE SCAN.npz OUT.json GRIDSIZE``: groups the scan as the test
grouped its training data (seed 0, 1e9 photons, the bundle's intensity scale).
"""

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
    bundle, scan_path, out, gridsize = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    model = load_bundle(bundle, expect_N=64, expect_gridsize=gridsize)
    scan = load_npz(scan_path)
    data = group(scan, gridsize=gridsize, seed=0, nphotons=1e9, intensity_scale=float(model.s0))
    stitched = stitch(predict(model, data, batch_size=32), data)
    metrics = evaluate(stitched, scan.object)
    with open(out, "w") as fh:
        json.dump({"ssim": metrics["amplitude"]["ssim"], "shape": list(stitched.shape)}, fh)
