"""The application's jobs against the Backend protocol, in process, with a NumPy backend.

The backend (``numpy_backend`` in tests/conftest.py) is test code: it "predicts" the
ground-truth patches once trained and a flat object before, so these tests check the
application's wiring (grouping, stitching at the right place, alignment with the truth,
bundles, products, reports, exit codes) in the light ``tests-ptychopinn`` session where no real backend is installed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import ptychopinn.config
import ptychopinn.core
from ptychopinn.app import demo, pipeline
from ptychopinn.app.cli import main


def test_train_then_infer_places_patches_on_the_truth(tmp_path, tiny_data, numpy_backend):
    configs = ptychopinn.config.load_config(
        None, {"training.nepochs": 3, "training.output_dir": str(tmp_path / "run")}
    )
    run = pipeline.train(configs, tiny_data["train"], tiny_data["test"])
    assert run.bundle_path.exists() and run.history["train_loss"][-1] == 1.0
    for name in ("config.yaml", "history.json", "loss.png", "report.md"):
        assert (tmp_path / "run" / name).exists(), name
    loaded = ptychopinn.config.load_config(tmp_path / "run" / "config.yaml")
    assert loaded["training"].nepochs == 3  # the saved config reloads

    result = pipeline.infer(run.bundle_path, tiny_data["test"], output_dir=tmp_path / "inf")
    # Ground-truth patches stitched at the group centres must reproduce the truth there.
    assert result.metrics["amplitude"]["ssim"] > 0.95
    assert result.metrics["phase"]["ssim"] > 0.95
    from ptychopinn.data import load_product

    product = load_product(result.product_path)
    assert list(product.loss_values) == run.history["train_loss"]
    with np.load(result.recon_path) as recon:
        assert product.object.shape == recon["object"].shape
    evaluated = pipeline.evaluate_files(result.recon_path, tiny_data["data"], tmp_path / "ev")
    assert evaluated.metrics["amplitude"]["ssim"] == pytest.approx(
        result.metrics["amplitude"]["ssim"]
    )
    assert (tmp_path / "ev" / "frc.png").exists()


def test_infer_pixel_size_gives_positions_in_metres(tmp_path, tiny_data, numpy_backend):
    configs = ptychopinn.config.load_config(None, {"training.output_dir": str(tmp_path / "r")})
    run = pipeline.train(configs, tiny_data["train"])
    result = pipeline.infer(
        run.bundle_path, tiny_data["test"], output_dir=tmp_path / "i", pixel_size_m=5e-9
    )
    from ptychopinn.data import load, load_product

    product = load_product(result.product_path)
    scan = load(tiny_data["test"])
    spacing = np.diff(np.sort(product.probe_position_x_m))
    np.testing.assert_allclose(spacing, np.diff(np.sort(scan.xcoords)) * 5e-9, rtol=1e-6)


def test_cli_train_and_infer_in_process(tmp_path, tiny_data, numpy_backend, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("training:\n  nepochs: 2\n  batch_size: 4\n")
    code = main(
        ["train", "--train-data", str(tiny_data["train"]), "--config", "c.yaml",
         "--set", "training.nepochs=4", "-o", "run", "--quiet", "--accelerator", "cpu"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())["train_loss"]) == 4
    code = main(
        ["infer", "--model", "run/wts.h5.zip", "--data", str(tiny_data["test"]), "-o", "inf",
         "--batch-size", "7", "--stitch-crop", "24"]
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "product.h5" in out.out
    code = main(["evaluate", "--recon", "inf/recon.npz", "--truth", str(tiny_data["data"])])
    assert code == 0
    assert "amplitude: ssim" in capsys.readouterr().out
    # --stitch-weight uniform: the same modulus, the phase no longer probe-weighted
    code = main(
        ["infer", "--model", "run/wts.h5.zip", "--data", str(tiny_data["test"]), "-o", "uni",
         "--stitch-crop", "24", "--stitch-weight", "uniform"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with (
        np.load(tmp_path / "inf" / "recon.npz") as probe,
        np.load(tmp_path / "uni" / "recon.npz") as uni,
    ):
        np.testing.assert_allclose(probe["amplitude"], uni["amplitude"], rtol=1e-4, atol=1e-6)
        assert not np.allclose(probe["phase"], uni["phase"], atol=1e-4)
    with pytest.raises(SystemExit) as exit_info:
        main(["infer", "--model", "run/wts.h5.zip", "--data", str(tiny_data["test"]),
              "--stitch-weight", "gauss"])  # fmt: skip
    assert exit_info.value.code == 2
    assert "choose from 'probe', 'uniform'" in capsys.readouterr().err


def test_model_N_mismatch_is_a_clear_error(tmp_path, tiny_data, numpy_backend, capsys):
    code = main(
        ["train", "--train-data", str(tiny_data["train"]), "--set", "model.N=128",
         "-o", str(tmp_path / "r")]
    )  # fmt: skip
    assert code == 2
    assert "model expects N=128" in capsys.readouterr().err


def test_demo_reports_better_after_training(tmp_path, numpy_backend, monkeypatch):
    summary = demo.run_demo(
        backend="pytorch", output_dir=tmp_path / "d", nepochs=2, n_images=48, log=lambda m: None
    )
    assert summary.after["amplitude"]["ssim"] > 0.95 > summary.before["amplitude"]["ssim"]
    text = demo.format_summary(summary)
    assert "backend pytorch, 2 epochs" in text and "untrained" in text
    for name in ("comparison.png", "reconstruction.png", "frc.png", "loss.png"):
        assert (tmp_path / "d" / "pictures" / name).exists()
    assert "pictures/comparison.png" in (tmp_path / "d" / "report.md").read_text()


def test_initial_weights_are_glorot_with_zero_biases():
    shapes = {"a.weight": (8, 4, 3, 3), "a.bias": (8,), "log_scale": (), "probe": (2, 2)}
    reference = {
        "a.weight": np.ones(shapes["a.weight"], np.float32),
        "a.bias": np.ones(8, np.float32),
        "log_scale": np.asarray(3.0, np.float32),
        "probe": np.full((2, 2), 1 + 1j, np.complex64),
    }
    w = demo.initial_weights(shapes, reference, seed=1)
    limit = np.sqrt(6 / ((4 + 8) * 9))
    assert np.abs(w["a.weight"]).max() <= limit and w["a.weight"].std() > limit / 4
    assert not w["a.bias"].any() and w["log_scale"] == 3.0 and w["probe"].dtype == np.complex64


def _write_recon(path, image, origin):
    np.savez(path, object=image.astype(np.complex64), origin=np.asarray(origin, dtype=np.float64))
    return path


def test_evaluate_registers_scales_and_draws_what_it_measured(tmp_path, tiny_data):
    """evaluate: a sub-pixel-shifted, scaled reconstruction with a fractional origin is
    registered (shift reported), scaled, and the figure shows the images measured."""
    from ptychopinn.data import load
    from ptychopinn.stitch import apply_shift

    truth = load(tiny_data["data"]).object.astype(np.complex128)
    x0, y0 = 10.25, 12.0
    # the truth moved by (0.6, -0.8) px, 20x too faint, sampled at a fractional origin
    moved = apply_shift(truth, (0.6 - (y0 - round(y0)), -0.8 - (x0 - round(x0))), edge="reflect")
    image = 0.05 * moved[12:112, 10:130]
    recon = _write_recon(tmp_path / "recon.npz", image, (x0, y0))
    result = pipeline.evaluate_files(recon, tiny_data["data"], tmp_path / "ev")
    metrics = result.metrics
    assert metrics["shift"] == pytest.approx([-0.6, 0.8], abs=0.05)
    assert metrics["amplitude_scale"] == pytest.approx(20.0, rel=0.02)
    assert metrics["amplitude"]["ssim"] > 0.95 and metrics["phase"]["ssim"] > 0.95
    assert metrics["phase_note"] is None and metrics["registration_note"] is None
    saved = json.loads(result.metrics_path.read_text())
    assert saved["shift"] == pytest.approx(metrics["shift"])
    assert (tmp_path / "ev" / "evaluation.png").exists()
    plain = pipeline.evaluate_files(recon, tiny_data["data"], tmp_path / "ev2", register=False)
    assert plain.metrics["shift"] is None
    assert plain.metrics["amplitude"]["ssim"] < metrics["amplitude"]["ssim"] - 0.05
    # what the figure draws: the aligned images, amplitude scaled to the truth's
    aligned = pipeline.align_to_truth(pipeline._read_recon(recon), truth)
    assert aligned.alignment.amplitude_scale == pytest.approx(metrics["amplitude_scale"])
    again = pipeline.evaluate_aligned(aligned)
    assert again["amplitude"]["mse"] == pytest.approx(metrics["amplitude"]["mse"], rel=1e-5)
    mse = float(np.mean((np.abs(aligned.recon) - np.abs(aligned.truth)) ** 2))
    assert mse == pytest.approx(metrics["amplitude"]["mse"], rel=1e-3)


def test_evaluate_without_truth_phase_structure_says_so(tmp_path, tiny_data, capsys):
    from ptychopinn.data import load

    truth = np.abs(load(tiny_data["data"]).object).astype(np.complex64)  # amplitude only
    np.save(tmp_path / "truth.npy", truth)
    rng = np.random.default_rng(0)
    recon = truth[12:112, 10:130] * np.exp(0.2j * rng.standard_normal((100, 120)))
    _write_recon(tmp_path / "recon.npz", recon, (10.0, 12.0))
    code = main(["evaluate", "--recon", str(tmp_path / "recon.npz"),
                 "--truth", str(tmp_path / "truth.npy"), "-o", str(tmp_path / "ev")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "note: truth has no phase structure" in out and "registration shift" in out
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["phase"]["ssim"] is None and metrics["phase"]["frc_curve"] is None
    assert metrics["phase"]["mae"] > 0.1
    assert "no phase structure" in (tmp_path / "ev" / "evaluation.md").read_text()
    code = main(["evaluate", "--recon", str(tmp_path / "recon.npz"), "--no-register",
                 "--truth", str(tmp_path / "truth.npy"), "-o", str(tmp_path / "ev2")])  # fmt: skip
    assert code == 0 and "registration shift" not in capsys.readouterr().out
    assert json.loads((tmp_path / "ev2" / "metrics.json").read_text())["shift"] is None


def test_train_takes_the_photon_count_from_the_data_unless_given(tmp_path, numpy_backend):
    """The one policy (``ptychopinn.data.photon_count``): a 1e6-photon scan trains at
    s0 = sqrt(1e6)/32 by default, and a typed 1e9 (the old default) is honoured."""
    from ptychopinn.data.physics import intensity_scale_closed_form

    paths = pipeline.simulate_files(
        tmp_path / "sim", n_images=32, N=64, object_size=160, nphotons=1e6, seed=1
    )
    logged: list[str] = []
    for name, nphotons, want in (("auto", None, 1e6), ("typed", 1e9, 1e9)):
        overrides = {"training.nepochs": 1, "training.output_dir": str(tmp_path / name)}
        if nphotons is not None:
            overrides["training.nphotons"] = nphotons
        configs = ptychopinn.config.load_config(None, overrides)
        run = pipeline.train(configs, paths["train"], log=logged.append)
        assert run.model.intensity_scale == pytest.approx(intensity_scale_closed_form(want, 64))
    assert any("nphotons 1e+06 (from the data's metadata)" in line for line in logged), logged
    assert any("nphotons 1e+09 (as configured)" in line for line in logged), logged
