"""train → infer → evaluate and the demo on each installed backend, one process per command.

Skipped (not failed) where a backend is not installed, e.g. in the light
``tests-ptychopinn`` session. Tiny data and one epoch: these check the wiring and the
outputs, not the learning (the demo's quality is measured in the CHANGELOG).
"""

from __future__ import annotations

import json

import numpy as np


def test_train_infer_evaluate(cli, tmp_path, tiny_data, backend):
    train = cli(
        "train", "--train-data", tiny_data["train"], "--test-data", tiny_data["test"],
        "--backend", backend, "--nepochs", "1", "--batch-size", "8", "--n-filters-scale", "1",
        "-o", "model", "--logger", "none", "--quiet",
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    model = tmp_path / "model"
    for name in ("wts.h5.zip", "history.json", "config.yaml", "report.md", "loss.png"):
        assert (model / name).exists(), name
    history = json.loads((model / "history.json").read_text())
    assert history and all(len(v) >= 1 for v in history.values())

    infer = cli("infer", "--model", model / "wts.h5.zip", "--data", tiny_data["test"], "-o", "inf")
    assert infer.returncode == 0, infer.stderr[-3000:]
    out = tmp_path / "inf"
    with np.load(out / "recon.npz") as recon:
        image = recon["object"]
        assert image.ndim == 2 and np.iscomplexobj(image) and np.isfinite(image).all()
        assert np.abs(image).max() > 0
    for name in ("reconstruction.png", "comparison.png", "metrics.json", "report.md"):
        assert (out / name).exists(), name
    from ptychopinn.data import load_product

    product = load_product(out / "product.h5")
    assert product.object.shape == image.shape
    assert product.probe_position_x_m.shape == (len(product.probe_position_indexes),)
    assert len(product.loss_values) >= 1  # the training history travels with the product

    evaluate = cli("evaluate", "--recon", out / "recon.npz", "--truth", tiny_data["data"])
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    assert "amplitude: ssim" in evaluate.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["amplitude"]["ssim"] <= 1
    assert (out / "frc.png").exists()


def test_demo_small(cli, tmp_path, backend):
    result = cli(
        "demo", "--backend", backend, "--nepochs", "1", "--n-images", "96", "-o", "d", "--quiet"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"backend {backend}, 1 epochs" in result.stdout
    assert "untrained" in result.stdout and "trained" in result.stdout
    out = tmp_path / "d"
    for name in ("comparison.png", "reconstruction.png", "frc.png", "loss.png"):
        assert (out / "pictures" / name).stat().st_size > 1000, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"untrained", "trained"}
    report = (out / "report.md").read_text()
    assert "pictures/comparison.png" in report and "| amplitude.ssim |" in report


def test_info_lists_devices_of_installed_backends(cli):
    from ptychopinn.config import available_backends

    result = cli("info", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    for name in available_backends():
        devices = data["backends"][name]["devices"]
        assert isinstance(devices, list) and devices, (name, devices)
        assert any("cpu" in d.lower() for d in devices)
