"""simulate `lines` -> train -> save bundle -> load in a fresh process -> infer -> stitch -> evaluate.

Trained on the `ptychopinn demo` recipe for 8 epochs (structured defocus-8 probe,
1089-pattern step-4 grid scan of an amplitude-only `lines` object, gridsize 1, amplitude
MAE, lr 1e-3); the TensorFlow backend's end-to-end test runs the same recipe.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from ptychopinn.data import default_probe, group_for_config, save_npz, simulate
from ptychopinn.stitch import evaluate
from ptychopinn.torch import PtychoPINN, predict, save_bundle, train
from ptychopinn.torch.workflow import stitch

# Measured with this recipe (seed 0): see the CHANGELOG. The issue asks for >= 0.2; the
# defocus-8 probe leaves room for a stronger margin.
MARGIN = 0.3


def test_pinn_beats_untrained_after_a_fresh_process_load(tmp_path, make_config, make_execution):
    scan = simulate("lines", n_images=1089, N=64, nphotons=1e9, seed=0, scan="grid", step=4.0,
                    phase=False, probe=default_probe(64, 8.0))  # fmt: skip
    config = make_config(tmp_path / "run", gridsize=1, probe_big=False, nepochs=8,
                         batch_size=16, learning_rate=1e-3, validation_fraction=0.0,
                         nphotons=1e9, nll_weight=0.0, mae_weight=1.0)  # fmt: skip
    data = group_for_config(scan, config.model, config, nphotons=1e9)
    untrained = PtychoPINN(config.model, data.probe, data.intensity_scale, seed=config.seed)
    before = evaluate(stitch(predict(untrained, data), data), scan.object)["amplitude"]["ssim"]
    result = train(data, None, config, make_execution(logger="none", early_stop_patience=None))
    bundle = save_bundle(result.model, tmp_path / "run" / "wts.h5.zip")
    assert result.history["train_loss"][-1] < result.history["train_loss"][0]
    scan_path = save_npz(scan, tmp_path / "scan.npz")
    out = tmp_path / "metrics.json"
    script = Path(__file__).with_name("e2e_infer.py")
    proc = subprocess.run(
        [sys.executable, str(script), str(bundle), str(scan_path), str(out), "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = json.loads(out.read_text())
    in_process = evaluate(stitch(predict(result.model, data), data), scan.object)
    assert abs(after["ssim"] - in_process["amplitude"]["ssim"]) < 1e-6
    assert np.isfinite(before)
    print(f"stitched amplitude SSIM: untrained {before:.3f}, trained {after['ssim']:.3f}")
    assert after["ssim"] > before + MARGIN, {"untrained": before, "trained": after["ssim"]}
