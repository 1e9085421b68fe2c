"""strategy='ddp' with 2 CPU processes (gloo): identical weights, only rank 0 writes the bundle.

Slow-ish (two Python processes each importing torch and Lightning: ~20-40 s on 2 cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def test_ddp_two_cpu_processes(tmp_path):
    script = Path(__file__).with_name("ddp_train.py")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOCAL_RANK", "WORLD_SIZE", "MASTER_", "NODE_RANK", "RANK"))
    }
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    info = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [i["world_size"] for i in info] == [2, 2]
    w0, w1 = np.load(tmp_path / "rank0.npz"), np.load(tmp_path / "rank1.npz")
    assert set(w0.files) == set(w1.files)
    for name in w0.files:
        np.testing.assert_array_equal(w0[name], w1[name], err_msg=name)
    assert info[0]["bundle_path"] == str(tmp_path / "run" / "wts.h5.zip")
    assert info[1]["bundle_path"] is None
    assert (tmp_path / "run" / "wts.h5.zip").is_file()
    assert len(info[0]["history"]["train_loss"]) == 2
    assert info[0]["history"]["train_loss"] == info[1]["history"]["train_loss"]
