"""Run by test_ddp.py: train with strategy='ddp' on 2 CPU processes (gloo).

Lightning re-launches this script for rank 1; each rank writes its final weights
and what ``train`` returned to ``<out>/rank<r>.npz`` / ``.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from ptychopinn.config import ExecutionConfig, ModelConfig, TrainingConfig
from ptychopinn.data import group, simulate
from ptychopinn.torch import export_weights, save_bundle, train


def main(out: Path) -> None:
    torch.set_num_threads(1)
    scan = simulate("lines", n_images=32, N=64, object_size=128, nphotons=1e6, seed=5)
    data = group(scan, gridsize=1, seed=0, nphotons=1e6)
    config = TrainingConfig(
        model=ModelConfig(N=64, n_filters_scale=1),
        nepochs=2,
        batch_size=8,
        validation_fraction=0.25,
        backend="pytorch",
        output_dir=out / "run",
    )
    execution = ExecutionConfig(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        enable_progress_bar=False,
        logger="csv",
    )
    result = train(data, None, config, execution)
    rank = int(result.extras["global_rank"])
    bundle = save_bundle(result.model, out / "run" / "wts.h5.zip") if rank == 0 else None
    np.savez(out / f"rank{rank}.npz", **export_weights(result.model))
    info = {
        "rank": rank,
        "world_size": int(result.extras["trainer"].world_size),
        "bundle_path": str(bundle) if bundle else None,
        "history": result.history,
    }
    (out / f"rank{rank}.json").write_text(json.dumps(info))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
