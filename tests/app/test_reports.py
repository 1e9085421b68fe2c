"""The report figures and report.md (in-process: matplotlib only, no backend)."""

from __future__ import annotations

import numpy as np
import pytest

from ptychopinn.app import reports


def _image(seed: int, shape=(40, 48)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random(shape) * np.exp(1j * rng.random(shape))).astype(np.complex64)


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reconstruction_figure_with_and_without_truth(tmp_path):
    with_truth = reports.save_reconstruction_figure(tmp_path / "a.png", _image(0), _image(1))
    alone = reports.save_reconstruction_figure(tmp_path / "sub" / "b.png", _image(0))
    assert _is_png(with_truth) and _is_png(alone)
    # the 2 x 3 grid is wider than the 1 x 2 one
    assert with_truth.stat().st_size > alone.stat().st_size


def test_reconstruction_figure_rejects_mismatched_shapes(tmp_path):
    with pytest.raises(ValueError, match="differs"):
        reports.save_reconstruction_figure(tmp_path / "a.png", _image(0), _image(1, (10, 10)))
    with pytest.raises(ValueError, match="2-D"):
        reports.save_image_figure(tmp_path / "a.png", np.zeros((2, 3, 4)))


def test_comparison_frc_and_loss_figures(tmp_path):
    comp = reports.save_comparison_figure(
        tmp_path / "c.png",
        {"untrained": _image(0), "trained": _image(1), "truth": _image(2)},
        {"trained": "SSIM 0.9"},
    )
    frc = reports.save_frc_figure(tmp_path / "f.png", {"amplitude": np.linspace(1, 0, 20)})
    loss = reports.save_loss_figure(
        tmp_path / "l.png", {"loss": [3.0, 2.0, 1.5], "val_loss": [3.5, 2.5, 2.0], "lr": [1e-3] * 3}
    )
    assert all(_is_png(p) for p in (comp, frc, loss))
    with pytest.raises(ValueError, match="no loss"):
        reports.save_loss_figure(tmp_path / "x.png", {"lr": [0.1]})
    with pytest.raises(ValueError):
        reports.save_frc_figure(tmp_path / "x.png", {})


def test_write_report_links_pictures_and_lists_metrics(tmp_path):
    fig = reports.save_image_figure(tmp_path / "figs" / "r.png", _image(0))
    path = reports.write_report(
        tmp_path / "report.md",
        "Run",
        summary={"backend": "pytorch", "time_s": 12.345},
        metrics={
            "untrained": {"amplitude": {"ssim": 0.1}},
            "trained": {"amplitude": {"ssim": 0.8}},
        },
        figures={"reconstruction": fig},
        config={"training": {"nepochs": 3}},
    )
    text = path.read_text()
    assert "](figs/r.png)" in text
    assert "| amplitude.ssim | 0.1 | 0.8 |" in text
    assert '"nepochs": 3' in text
    assert "12.35" in text
