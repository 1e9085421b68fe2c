"""Jobs on valid but awkward inputs, with the NumPy test backend (tests/conftest.py):
optional steps never fail the job, nothing already written is lost."""

from __future__ import annotations

import pytest

import ptychopinn.config
from ptychopinn.app import pipeline


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    """`simulate --n-images 128`: its test split is too sparse for a covered rectangle."""
    out = tmp_path_factory.mktemp("sparse")
    return pipeline.simulate_files(out / "sim", n_images=128, seed=0)


def _train(tmp_path, data, **overrides):
    configs = ptychopinn.config.load_config(
        None,
        {"training.nepochs": 2, "training.output_dir": str(tmp_path / "run"), **overrides},
    )
    return pipeline.train(configs, data)


def test_infer_on_sparse_data_still_writes_product_and_report(tmp_path, sparse, numpy_backend):
    run = _train(tmp_path, sparse["train"])
    with pytest.warns(UserWarning, match="comparison with the truth skipped"):
        result = pipeline.infer(run.bundle_path, sparse["test"], output_dir=tmp_path / "inf")
    for name in ("recon.npz", "product.h5", "report.md", "reconstruction.png"):
        assert (tmp_path / "inf" / name).exists(), name
    assert result.metrics is None and "covered" in result.truth_skipped
    assert not (tmp_path / "inf" / "metrics.json").exists()
    assert "truth comparison" in (tmp_path / "inf" / "report.md").read_text()


# ------------------------------------------------------------- output folders (#17.8)


def _digest(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_previous_run_is_refused_unless_overwrite(tmp_path, tiny_data, numpy_backend):
    from ptychopinn.app.errors import InputError

    first = _train(tmp_path, tiny_data["train"])
    before = _digest(first.bundle_path)
    stale = tmp_path / "run" / "checkpoints"
    stale.mkdir()
    (stale / "last.ckpt").write_bytes(b"from the first run")
    with pytest.raises(InputError, match=r"holds a previous run .*wts\.h5\.zip.*--overwrite"):
        _train(tmp_path, tiny_data["train"], **{"training.nepochs": 3})
    assert _digest(first.bundle_path) == before  # nothing of the first run was touched
    second = pipeline.train(
        ptychopinn.config.load_config(
            None, {"training.nepochs": 3, "training.output_dir": str(tmp_path / "run")}
        ),
        tiny_data["train"],
        overwrite=True,
    )
    assert len(second.history["train_loss"]) == 3
    assert not stale.exists()  # a resume could not pick up the first run's last.ckpt


def test_cli_refuses_a_used_folder_with_one_line(inproc, tmp_path, tiny_data, numpy_backend):
    args = ["train", "--train-data", str(tiny_data["train"]), "-o", "run", "--nepochs", "1"]
    assert inproc(*args).returncode == 0
    refused = inproc(*args)
    assert refused.returncode == 2 and len(refused.error_lines) == 1
    assert "--overwrite" in refused.error_lines[0]
    assert inproc(*args, "--overwrite").returncode == 0


def test_a_folder_in_use_by_another_run_is_refused_until_it_ends(
    tmp_path, tiny_data, numpy_backend
):
    import subprocess
    import sys

    from ptychopinn.app.errors import InputError

    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
            "f.write('pid 4242'); f.flush(); print('held', flush=True); time.sleep(120)\n",
            str(run / pipeline.LOCK_NAME),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=r"in use by another training run \(pid 4242"):
            _train(tmp_path, tiny_data["train"])
        assert not (run / "wts.h5.zip").exists()
    finally:
        holder.kill()  # kill -9: the kernel releases the lock with the process
        holder.wait()
    assert _train(tmp_path, tiny_data["train"]).bundle_path.exists()


# ------------------------------------------------------- implausible positions (#17.9)


@pytest.fixture
def far_apart(tmp_path, tiny_data):
    """The tiny test scan with positions ×1000 (e.g. nanometres taken for pixels)."""
    from ptychopinn.data import load, save_npz

    scan = load(tiny_data["test"])
    scan.xcoords, scan.ycoords = scan.xcoords * 1000, scan.ycoords * 1000
    scan.xcoords_start, scan.ycoords_start = scan.xcoords.copy(), scan.ycoords.copy()
    scan.object = None
    return save_npz(scan, tmp_path / "far.npz")


def test_implausible_positions_are_refused_naming_range_and_canvas(
    inproc, tmp_path, tiny_data, far_apart, numpy_backend
):
    assert inproc("train", "--train-data", str(tiny_data["train"]), "-o", "run").returncode == 0
    result = inproc("infer", "--model", "run/wts.h5.zip", "--data", str(far_apart), "-o", "inf")
    assert result.returncode == 2 and len(result.error_lines) == 1, result.stderr
    line = result.error_lines[0]
    assert "far.npz" in line and "'xcoords'" in line and "--allow-large-canvas" in line
    assert "8192 x 8192" in line and "px canvas" in line
    assert not (tmp_path / "inf").exists()  # refused before anything was computed


def test_large_canvas_override(tmp_path, tiny_data, numpy_backend, monkeypatch):
    from ptychopinn.app.errors import InputError

    run = _train(tmp_path, tiny_data["train"])
    monkeypatch.setattr(pipeline, "MAX_CANVAS_SIDE_PX", 64)  # the tiny scan needs ~130 px
    with pytest.raises(InputError, match="64 x 64 px"):
        pipeline.infer(run.bundle_path, tiny_data["test"], output_dir=tmp_path / "a")
    result = pipeline.infer(
        run.bundle_path, tiny_data["test"], output_dir=tmp_path / "b", allow_large_canvas=True
    )
    assert result.recon_path.exists()
