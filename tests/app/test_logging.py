"""Logging of the command line: console levels (-q/-v), warnings as one line, the
<output>/ptychopinn.log file, nothing left configured afterwards, inference progress."""

from __future__ import annotations

import io
import logging
import sys
import warnings

import numpy as np
import pytest

from ptychopinn.app import logs, pipeline


def _emit_all() -> None:
    logging.getLogger("ptychopinn.app.test").info("own info")
    logging.getLogger("ptychopinn.app.test").debug("own debug")
    logging.getLogger("somelib").info("library info")
    logging.getLogger("somelib").warning("library warning")
    warnings.warn("a user warning", UserWarning, stacklevel=1)
    warnings.warn("an old API", DeprecationWarning, stacklevel=1)


@pytest.mark.parametrize(
    ("verbosity", "shown", "hidden"),
    [
        (0, ["own info", "warning: library warning", "warning: a user warning"],
         ["own debug", "library info", "an old API"]),
        (-1, ["warning: library warning", "warning: a user warning"],
         ["own info", "own debug", "library info", "an old API"]),
        (1, ["own info", "own debug", "library info", "an old API", "warning: a user warning"],
         []),
    ],
)  # fmt: skip
def test_console_levels(verbosity, shown, hidden):
    stream = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with logs.configure_logging(verbosity, stream=stream):
            _emit_all()
    text = stream.getvalue()
    for line in shown:
        assert line in text, (line, text)
    for line in hidden:
        assert line not in text, (line, text)
    # One line per warning, none of Python's raw "file:line: UserWarning: ..." + source.
    assert "UserWarning: a user warning" not in text
    assert "warning: a user warning (UserWarning, test_logging.py:" in text


def test_nothing_stays_configured():
    root = logging.getLogger()
    before = (list(root.handlers), root.level, warnings.showwarning)
    lib = logging.getLogger("noisy.framework")
    own_handler = logging.StreamHandler(sys.stderr)
    lib.addHandler(own_handler)
    try:
        with logs.configure_logging(0, stream=io.StringIO()) as session:
            assert len(root.handlers) == len(before[0]) + 1
            assert warnings.showwarning is not before[2]
            assert session.adopt_library_handlers() >= 1
            assert own_handler not in lib.handlers  # routed through the session meanwhile
        assert (list(root.handlers), root.level, warnings.showwarning) == before
        assert own_handler in lib.handlers
    finally:
        lib.removeHandler(own_handler)


def test_log_file_waits_for_the_jobs_folder(tmp_path):
    folder = tmp_path / "out"
    with logs.configure_logging(0, header="ptychopinn test", stream=io.StringIO()) as session:
        path = session.log_to(folder)
        logging.getLogger("ptychopinn.app.test").info("before the folder")
        assert not folder.exists()  # logging never creates the job's folder
        folder.mkdir()
        logging.getLogger("ptychopinn.app.test").info("after the folder")
        assert "after the folder" in path.read_text()  # written as it happens
        logging.getLogger("somelib").info("library info goes to the file")
        session.record(logging.ERROR, "the job failed")
    text = path.read_text().splitlines()
    assert text[0].endswith("INFO    ptychopinn.app: ptychopinn test")
    assert [ln.split(": ", 1)[1] for ln in text[1:]] == [
        "before the folder",
        "after the folder",
        "library info goes to the file",
        "the job failed",
    ]
    # A refused job whose folder never appears leaves nothing behind.
    with logs.configure_logging(0, stream=io.StringIO()) as session:
        session.log_to(tmp_path / "never")
        logging.getLogger("ptychopinn.app.test").info("lost")
    assert not (tmp_path / "never").exists()


def test_train_writes_its_log_and_quiet_hides_progress(inproc, numpy_backend, tiny_data, tmp_path):
    args = (
        "train",
        "--train-data",
        tiny_data["train"],
        "--nepochs",
        "2",
        "--backend",
        "tensorflow",
    )
    loud = inproc(*args, "-o", "run")
    assert loud.returncode == 0, loud.stderr
    assert "training on" in loud.stderr and "trained in" in loud.stderr
    log = (tmp_path / "run" / logs.LOG_NAME).read_text()
    assert "ptychopinn train --train-data" in log.splitlines()[0]
    assert "ptychopinn.app.pipeline: training on" in log and "trained in" in log
    quiet = inproc(*args, "-o", "run2", "-q")
    assert quiet.returncode == 0
    assert quiet.stderr == ""
    assert "trained in" in (tmp_path / "run2" / logs.LOG_NAME).read_text()


def test_refused_job_creates_no_folder(inproc, tmp_path):
    result = inproc("train", "--train-data", tmp_path / "missing.npz", "-o", "out")
    assert result.returncode == 2
    assert not (tmp_path / "out").exists()


def test_failed_job_is_in_the_log(inproc, numpy_backend, tiny_data, tmp_path, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("the backend broke")

    monkeypatch.setattr(numpy_backend, "train", broken)
    args = ("train", "--train-data", tiny_data["train"], "--backend", "tensorflow", "-o", "r")
    result = inproc(*args)
    assert result.returncode == 1
    assert result.error_lines == [
        "ptychopinn: error: RuntimeError: the backend broke (run with --verbose for the traceback)"
    ]
    log = (tmp_path / "r" / logs.LOG_NAME).read_text()
    assert "ERROR   ptychopinn.app: RuntimeError: the backend broke" in log
    assert "Traceback" in log  # the file keeps the traceback of a failed job


def test_early_stop_is_said(inproc, numpy_backend, tiny_data, monkeypatch):
    real = numpy_backend.train

    def stops_early(train, test, config, execution=None):
        result = real(train, test, config.replace(nepochs=2), execution)
        return result

    monkeypatch.setattr(numpy_backend, "train", stops_early)
    args = ("train", "--train-data", tiny_data["train"], "--backend", "tensorflow", "-o", "r")
    result = inproc(*args, "--nepochs", "5")
    assert "training stopped after 2 of 5 epochs" in result.stderr


class _Counting:
    def __init__(self, inner):
        self.inner = inner
        self.sizes: list[int] = []

    def predict(self, model, data, batch_size=None):
        self.sizes.append(len(data))
        return self.inner.predict(model, data, batch_size)


def test_predict_patches_chunks_and_shows_progress(numpy_backend, tiny_data, capsys):
    from ptychopinn.config import ModelConfig, TrainingConfig

    scan = pipeline.read_scan(tiny_data["data"])
    training = TrainingConfig(model=ModelConfig(N=64, gridsize=1))
    data = pipeline.group_for_model(scan, training.model, training, None)
    model = numpy_backend.train(data, None, training).model
    whole = numpy_backend.predict(model, data)
    counting = _Counting(numpy_backend)
    capsys.readouterr()
    chunked = pipeline.predict_patches(counting, model, data, batch_size=2, progress=True)
    np.testing.assert_array_equal(chunked, whole)
    chunk = 2 * pipeline.PREDICT_CHUNK_BATCHES
    assert len(data) > chunk
    assert counting.sizes == [min(chunk, len(data) - i) for i in range(0, len(data), chunk)]
    bar = capsys.readouterr().err
    assert "inference" in bar and f"{len(data)}/{len(data)}" in bar
    pipeline.predict_patches(counting, model, data, batch_size=2, progress=False)
    assert capsys.readouterr().err == ""


def test_quiet_framework_environment_is_the_one_tf_log_policy(monkeypatch):
    from ptychopinn.app import environment
    from ptychopinn.app.logs import quiet_framework_environment

    env: dict[str, str] = {}
    assert quiet_framework_environment(env) is env and env == {"TF_CPP_MIN_LOG_LEVEL": "3"}
    mine = {"TF_CPP_MIN_LOG_LEVEL": "0"}  # a value the user set is kept
    assert quiet_framework_environment(mine)["TF_CPP_MIN_LOG_LEVEL"] == "0"
    # the device probe's subprocess gets the same environment
    seen = {}

    def fake_run(cmd, **kwargs):
        seen.update(kwargs["env"])
        raise environment.subprocess.TimeoutExpired(cmd, 0)

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setattr(environment.subprocess, "run", fake_run)
    assert environment.query_devices("tensorflow").startswith("no answer")
    assert seen["TF_CPP_MIN_LOG_LEVEL"] == "3"
