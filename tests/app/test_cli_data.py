"""simulate, convert, evaluate and the error paths of train/infer/demo (no backend needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest


def _one_error_line(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.error_lines) == 1, result.stderr
    return result.error_lines[0]


def test_simulate_writes_split_files(cli, tmp_path):
    result = cli("simulate", "-o", "sim", "--n-images", "40", "--object-size", "160", "--seed", "1")
    assert result.returncode == 0, result.stderr
    from ptychopinn.data import load

    full, train, test = (load(tmp_path / "sim" / f"{n}.npz") for n in ("data", "train", "test"))
    assert full.n_positions == 40 and train.n_positions + test.n_positions == 40
    assert train.ycoords.max() <= test.ycoords.min()  # spatial split: test rows are below
    assert full.object is not None and full.N == 64
    assert (tmp_path / "sim" / "object.png").stat().st_size > 1000


def test_simulate_with_probe_file_and_grid(cli, tmp_path, tiny_data):
    from ptychopinn.data import load

    probe = load(tiny_data["data"]).probe
    np.save(tmp_path / "probe.npy", probe * 2)
    result = cli(
        "simulate", "-o", "g", "--scan", "grid", "--n-images", "16", "--probe", "probe.npy"
    )
    assert result.returncode == 0, result.stderr
    assert np.allclose(load(tmp_path / "g" / "data.npz").probe, probe * 2)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-N", "100"], "N=100"),
        (["--probe", "missing.npy"], "missing.npy: no such file"),
        (["--probe", "bad.npy"], "cannot read a probe"),
        (["--probe", "small.npy"], "does not match N=64"),
    ],
)
def test_simulate_bad_input(inproc, tmp_path, args, expected):
    (tmp_path / "bad.npy").write_text("not numpy")
    np.save(tmp_path / "small.npy", np.ones((32, 32), np.complex64))
    line = _one_error_line(inproc("simulate", "-o", "x", "--n-images", "8", *args))
    assert expected in line


def test_convert_round_trip_through_product_and_legacy(cli, tmp_path, tiny_data):
    from ptychopinn.data import load, load_product

    src = tiny_data["test"]
    assert cli("convert", src, "p.h5").returncode == 0
    assert cli("convert", "p.h5", "p.npz", "--to", "product").returncode == 0
    assert cli("convert", "p.h5", "back.npz").returncode == 0
    assert cli("convert", "back.npz", "legacy.npz", "--to", "legacy-npz").returncode == 0
    assert cli("convert", "legacy.npz", "canon.npz").returncode == 0
    original, final = load(src), load(tmp_path / "canon.npz")
    np.testing.assert_array_equal(original.diffraction, final.diffraction)
    np.testing.assert_allclose(original.xcoords, final.xcoords)
    with np.load(tmp_path / "legacy.npz") as npz:
        assert "diff3d" in npz.files and "diffraction" not in npz.files
    assert load_product(tmp_path / "p.npz").object.shape == original.object.shape


def test_convert_intensity_legacy_input(cli, tmp_path, tiny_data):
    from ptychopinn.data import load

    scan = load(tiny_data["test"])
    np.savez(
        tmp_path / "intensity.npz",
        diff3d=np.transpose(scan.diffraction.astype(np.float64) ** 2, (1, 2, 0)),  # (H, W, M)
        probeGuess=scan.probe,
        xcoords=scan.xcoords,
        ycoords=scan.ycoords,
    )
    result = cli("convert", "intensity.npz", "amp.npz", "--measurement", "intensity")
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(load(tmp_path / "amp.npz").diffraction, scan.diffraction, rtol=1e-5)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["nothing.npz", "out.npz"], "nothing.npz: no such file"),
        (["garbage.npz", "out.npz"], "not a zip archive"),
        (["nokeys.npz", "out.npz"], "diffraction"),
        (["garbage.h5", "out.npz"], "garbage.h5"),
        (["TINY", "out.txt", "--to", "npz"], ".npz suffix"),
    ],
)
def test_convert_bad_input(inproc, tmp_path, tiny_data, args, expected):
    (tmp_path / "garbage.npz").write_bytes(b"\x00" * 100)
    (tmp_path / "garbage.h5").write_bytes(b"not hdf5 at all")
    np.savez(tmp_path / "nokeys.npz", a=np.zeros(3))
    args = [str(tiny_data["test"]) if a == "TINY" else a for a in args]
    assert expected in _one_error_line(inproc("convert", *args))


def test_unknown_backend_is_one_line_exit_2(cli, tiny_data):
    for args in (
        ["demo", "--backend", "caffe"],
        ["train", "--train-data", tiny_data["train"], "--backend", "caffe"],
        ["train", "--train-data", tiny_data["train"], "--set", "training.backend=caffe"],
    ):
        line = _one_error_line(cli(*args))
        assert "caffe" in line and "tensorflow" in line and "pytorch" in line


@pytest.mark.parametrize(
    ("backend", "expected"),
    [("pytorch", "PyTorch backend selected"), ("tensorflow", "TensorFlow backend selected")],
)
def test_missing_backend_is_actionable_exit_2(cli, tiny_data, hidden_frameworks, backend, expected):
    for args in (
        ["demo", "--backend", backend],
        ["train", "--train-data", tiny_data["train"], "--backend", backend],
    ):
        line = _one_error_line(cli(*args, env=hidden_frameworks))
        assert expected in line and "install" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train"], "no training data"),
        (["train", "--train-data", "missing.npz"], "missing.npz: no such file"),
        (["train", "--train-data", "."], "is a directory"),
        (["train", "--train-data", "garbage.npz"], "not a zip archive"),
        (["train", "--train-data", "TRAIN", "--config", "missing.yaml"], "missing.yaml"),
        (["train", "--train-data", "TRAIN", "--set", "model.N=100"], "N=100"),
        (["train", "--train-data", "TRAIN", "--precision", "8"], "precision"),
        (["train", "--train-data", "TRAIN", "--set", "training.nepochz=1"], "nepochs"),
        (["infer", "--model", "missing.zip", "--data", "TRAIN"], "missing.zip: no such file"),
        (["infer", "--model", "garbage.npz", "--data", "TRAIN"], "not a readable bundle"),
    ],
)
def test_train_and_infer_bad_input(inproc, tmp_path, tiny_data, args, expected):
    (tmp_path / "garbage.npz").write_bytes(b"\x00" * 100)
    args = [str(tiny_data["train"]) if a == "TRAIN" else a for a in args]
    assert expected.lower() in _one_error_line(inproc(*args)).lower()


def test_evaluate_perfect_reconstruction_and_errors(cli, tmp_path, tiny_data):
    from ptychopinn.data import load

    truth = load(tiny_data["data"]).object
    # A "reconstruction" that is the truth itself, on a canvas with its origin at (10, 12).
    np.savez(tmp_path / "recon.npz", object=truth[12:112, 10:130], origin=np.array([10.0, 12.0]))
    result = cli("evaluate", "--recon", "recon.npz", "--truth", tiny_data["data"], "-o", "ev")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["amplitude"]["ssim"] > 0.99
    assert (tmp_path / "ev" / "evaluation.png").exists()
    assert (tmp_path / "ev" / "evaluation.md").exists()

    np.savez(tmp_path / "wrong.npz", something=np.zeros(3))
    assert "'object'" in _one_error_line(
        cli("evaluate", "--recon", "wrong.npz", "--truth", tiny_data["data"])
    )
    assert "objectGuess" in _one_error_line(
        cli("evaluate", "--recon", "recon.npz", "--truth", "wrong.npz")
    )
    assert "no such file" in _one_error_line(
        cli("evaluate", "--recon", "nope.npz", "--truth", tiny_data["data"])
    )
    np.savez(tmp_path / "far.npz", object=truth[:50, :50], origin=np.array([5000.0, 5000.0]))
    assert "outside the truth" in _one_error_line(
        cli("evaluate", "--recon", "far.npz", "--truth", tiny_data["data"])
    )


def test_bad_paths_in_a_real_process(cli, tmp_path):
    """The same one-line, exit-2 answers from the installed command, one per subcommand."""
    (tmp_path / "garbage.npz").write_bytes(b"\x00" * 100)
    cases = [
        (["simulate", "--probe", "nope.npy"], "nope.npy: no such file"),
        (["train", "--train-data", "garbage.npz"], "not a zip archive"),
        (["infer", "--model", "garbage.npz", "--data", "garbage.npz"], "bundle"),
        (["evaluate", "--recon", "garbage.npz", "--truth", "nope.npz"], "nope.npz: no such file"),
        (["evaluate", "--recon", "garbage.npz", "--truth", "garbage.npz"], "not an NPZ"),
        (["convert", "garbage.npz", "out.npz"], "not a zip archive"),
    ]
    for args, expected in cases:
        assert expected in _one_error_line(cli(*args)), args


def test_simulate_probe_defocus_curves_the_built_in_probe(cli, tmp_path):
    from ptychopinn.data import default_probe, load

    result = cli(
        "simulate", "-o", "d", "--scan", "grid", "--n-images", "16", "--probe-defocus", "4"
    )
    assert result.returncode == 0, result.stderr
    probe = load(tmp_path / "d" / "data.npz").probe
    np.testing.assert_allclose(probe, default_probe(64, 4.0), atol=1e-6)
    assert np.ptp(np.angle(probe[np.abs(probe) > 0.5])) > 1.0  # a curved, not flat, wavefront


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--probe-defocus", "nan"], "must be finite"),
        (["--probe-defocus", "x"], "not a number"),
    ],
)
def test_simulate_bad_probe_defocus(inproc, args, expected):
    result = inproc("simulate", "-o", "x", "--n-images", "8", *args)
    assert result.returncode == 2 and expected in result.stderr, result.stderr
