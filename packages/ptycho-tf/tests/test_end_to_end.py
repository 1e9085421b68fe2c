"""End to end: simulate 'lines' → train → save → load in a fresh process → infer → stitch → evaluate.

The physics-informed (unsupervised) model is trained on the `ptychopinn demo` recipe
for fewer epochs: a 33x33 grid scan (step 4 px) of an amplitude-only `lines` object under
the structured (defocus-8) probe, gridsize 1, probe_big off, n_filters_scale 1, the
diffraction-amplitude MAE objective, lr 1e-3, 8 epochs (about the group-steps of the
earlier gridsize-2 test) -- and then reconstructs the scan it was trained on, as at a
beamline. With the flat-disk probe the same run stays a blur (the conjugate-twin
ambiguity, docs/METHOD.md section 4).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from ptychopinn.config import ExecutionConfig, ModelConfig, TrainingConfig
from ptychopinn.data import default_probe, group_for_config, save_npz, simulate
from ptychopinn.tf.model import build_model
from ptychopinn.tf.training import train
from ptychopinn.tf.workflow import save_bundle

# Measured with this recipe (seed 0): see the CHANGELOG. The issue asks for >= 0.2; the
# defocus-8 probe leaves room for a stronger margin.
MARGIN = 0.3

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
        data = group(scan, gridsize=1, seed=0, nphotons=1e9)
        patches = predict(model, data, batch_size=32)
        stitched = reassemble(patches[..., 0], data.coords_offsets[:, 0, :, 0], crop=20)
        metrics = evaluate(stitched, scan.object)
        out[name] = metrics["amplitude"]["ssim"]
    print(json.dumps(out))
    """
)


def test_pinn_beats_untrained_after_a_fresh_process_load(tmp_path):
    scan = simulate("lines", n_images=1089, N=64, nphotons=1e9, seed=0, scan="grid", step=4.0,
                    phase=False, probe=default_probe(64, 8.0))  # fmt: skip
    cfg = TrainingConfig(
        model=ModelConfig(N=64, gridsize=1, n_filters_scale=1, probe_big=False),
        nepochs=8,
        batch_size=16,
        learning_rate=1e-3,
        nll_weight=0.0,
        mae_weight=1.0,
        validation_fraction=0.0,
        nphotons=1e9,
        output_dir=tmp_path / "run",
        seed=0,
    )
    data = group_for_config(scan, cfg.model, cfg, nphotons=1e9)
    ex = ExecutionConfig(enable_progress_bar=False, logger="none", early_stop_patience=None)
    result = train(data, None, cfg, ex)
    assert result.history["train_loss"][-1] < result.history["train_loss"][0]
    trained = save_bundle(result.model, tmp_path / "trained.zip")
    fresh = build_model(cfg.model, data.probe, data.intensity_scale, data.norm_factor, seed=0)
    untrained = save_bundle(fresh, tmp_path / "untrained.zip")
    scan_path = save_npz(scan, tmp_path / "scan.npz")
    proc = subprocess.run(
        [sys.executable, "-c", _INFER, str(scan_path), str(trained), str(untrained)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ssim = json.loads(proc.stdout.strip().splitlines()[-1])
    assert np.isfinite(ssim[str(untrained)])
    print(f"stitched amplitude SSIM: untrained {ssim[str(untrained)]:.3f}, "
          f"trained {ssim[str(trained)]:.3f}")  # fmt: skip
    assert ssim[str(trained)] > ssim[str(untrained)] + MARGIN, ssim
