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
        tmp_path / "l.png",
        {"train_loss": [3.0, 2.0, 1.5], "val_loss": [3.5, 2.5, 2.0], "lr": [1e-3] * 3},
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


def _smooth(seed: int, shape=(48, 56)) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    amp = 0.5 + gaussian_filter(rng.random(shape), 2)
    phase = gaussian_filter(rng.random(shape), 2) - 0.5
    return amp * np.exp(1j * phase)


def test_reconstruction_figure_scales_the_amplitude_as_the_metrics_do():
    """A reconstruction 100x too faint used to draw a black panel (it shared the truth's
    colour limits unscaled) and an amplitude 'error' map that was the truth itself."""
    truth = _smooth(3)
    recon = 0.01 * truth  # right structure, arbitrary scale (as a network may give)
    scaled, factor = reports.match_amplitude(recon, truth)
    assert factor == pytest.approx(100.0)
    assert reports.match_amplitude(scaled, truth)[1] == pytest.approx(1.0)  # idempotent
    fig = reports._reconstruction_figure(recon, truth, "reconstruction")
    panels = [ax for ax in fig.axes if ax.images]  # the six image panels, row by row
    amp_recon, amp_truth, amp_error = (ax.images[0] for ax in panels[:3])
    np.testing.assert_allclose(amp_recon.get_array(), np.abs(truth), rtol=1e-6)
    low, high = amp_recon.get_clim()
    assert low < np.median(np.asarray(amp_recon.get_array())) < high  # inside the limits: not black
    assert amp_recon.get_clim() == amp_truth.get_clim()
    # |scaled recon - truth|, not |recon - truth| (which is 0.99 |truth|)
    assert float(np.max(amp_error.get_array())) < 1e-6
    assert "x100" in panels[0].get_title()
    phase_error = panels[5].images[0].get_array()
    assert float(np.max(phase_error)) < 1e-6
    # a real error shows as itself
    worse = truth.copy()
    worse[10:20, 10:20] *= 1.5
    fig = reports._reconstruction_figure(0.01 * worse, truth, "r")
    err = [ax for ax in fig.axes if ax.images][2].images[0].get_array()
    assert float(np.max(err[:8, :])) < 0.05 * float(np.max(err[10:20, 10:20]))
