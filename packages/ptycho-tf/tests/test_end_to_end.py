"""End to end: simulate 'lines' → train → save → load in a fresh process → infer → stitch → evaluate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from ptychopinn.config import ExecutionConfig, ModelConfig, TrainingConfig
from ptychopinn.data import group, save_npz, simulate
from ptychopinn.tf.model import build_model
from ptychopinn.tf.training import train
from ptychopinn.tf.workflow import save_bundle

# The unsupervised (PINN) loss does not beat an untrained network on stitched SSIM
# reliably within a 2-minute CPU budget: at gridsize 1 single-pattern phase retrieval
# stalls; with the recipe that learns (gridsize 2, dense grid, amplitude-only object,
# lr 3e-3 -- `ptychopinn demo`, 30 epochs: SSIM 0.23 -> 0.33) 12 epochs gave +0.02 on one
# simulated object and -0.03 on another. The supervised mode trains the same network,
# physics layers included, through the same train/save/load/predict/stitch path.
MODEL = "supervised"

_INFER = textwrap.dedent(
    """
    import json, sys
    from ptychopinn.data import group, load_npz
    from ptychopinn.stitch import evaluate, reassemble
    from ptychopinn.tf.workflow import load_bundle, predict
    scan = load_npz(sys.argv[1])
    out = {}
    for name in sys.argv[2:]:
        model = load_bundle(name, expect_N=64, expect_gridsize=1)
        data = group(scan, gridsize=1, seed=1, probe_scale=2.0)
        patches = predict(model, data, batch_size=32)
        stitched = reassemble(patches[..., 0], data.coords_offsets[:, 0, :, 0], crop=20)
        metrics = evaluate(stitched, scan.object)
        out[name] = metrics["amplitude"]["ssim"]
    print(json.dumps(out))
    """
)


def test_trained_beats_untrained_after_a_fresh_process_load(tmp_path):
    # One small, densely scanned object: trained on, then reconstructed from a fresh process.
    train_scan = simulate("lines", n_images=160, N=64, object_size=128, seed=12)
    test_scan = train_scan
    cfg = TrainingConfig(
        model=ModelConfig(N=64, gridsize=1, n_filters_scale=1, probe_scale=2.0, model_type=MODEL),
        nepochs=6,
        batch_size=8,
        learning_rate=3e-3,
        validation_fraction=0.0,
        output_dir=tmp_path / "run",
        seed=0,
    )
    # probe_scale 2 puts the NLL optimum at s ≈ s0 for simulated 'lines' (at the default 4
    # the optimum needs s ≈ 2·s0, which log_scale reaches only after many epochs while the
    # sigmoid amplitude saturates meanwhile).
    data = group(train_scan, gridsize=1, seed=1, probe_scale=2.0)
    ex = ExecutionConfig(enable_progress_bar=False, logger="none", early_stop_patience=None)
    result = train(data, None, cfg, ex)
    assert result.history["loss"][-1] < result.history["loss"][0]
    trained = save_bundle(result.model, tmp_path / "trained.zip")
    fresh = build_model(cfg.model, data.probe, data.intensity_scale, data.norm_factor, seed=0)
    untrained = save_bundle(fresh, tmp_path / "untrained.zip")
    scan_path = save_npz(test_scan, tmp_path / "test.npz")
    proc = subprocess.run(
        [sys.executable, "-c", _INFER, str(scan_path), str(trained), str(untrained)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ssim = json.loads(proc.stdout.strip().splitlines()[-1])
    assert np.isfinite(ssim[str(trained)])
    # Measured here: 0.160 trained vs 0.148 untrained (deterministic: seeded, op determinism).
    assert ssim[str(trained)] > ssim[str(untrained)] + 0.005, ssim
