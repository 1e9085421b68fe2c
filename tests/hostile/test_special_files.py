"""Inputs that are not regular files (FIFO, devices) or cannot be read: refused up front
with one line that says what the file is, never a hang, an endless read or a wrong name."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.npz"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--train-data", "{}"],
        ["infer", "--model", "{}", "--data", "{}"],
        ["convert", "{}", "out.npz"],
        ["evaluate", "--recon", "{}", "--truth", "{}"],
    ],
    ids=["train", "infer", "convert", "evaluate"],
)
def test_fifo_is_refused_not_waited_on(cli, fifo, command):
    # A reader that opens a FIFO blocks until a writer appears: the old code hung here.
    line = cli(*[a.format(fifo) for a in command], timeout=60).one_error_line()
    assert str(fifo) in line and "regular file" in line and "FIFO" in line


def test_bundle_reader_refuses_a_fifo(fifo):
    from ptychopinn.data import BundleError, read_bundle

    with pytest.raises(BundleError, match="FIFO"):
        read_bundle(fifo)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_device_is_refused_with_bounded_memory(tmp_path, device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")

    def limit_memory() -> None:  # the old code read /dev/zero without end
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    proc = subprocess.run(
        [sys.executable, "-m", "ptychopinn.app", "train", "--train-data", device],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_memory,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "OPENBLAS_NUM_THREADS": "1"},
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{device}: expected a regular file, found a character device" in proc.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files of any mode")
def test_unreadable_file_is_named_permission_denied(inproc, tmp_path, tiny_data):
    locked = tmp_path / "locked.npz"
    locked.write_bytes(open(tiny_data["test"], "rb").read())
    locked.chmod(0)
    line = inproc("convert", "locked.npz", "out.npz").one_error_line()
    assert "locked.npz" in line and "permission denied" in line
    assert "zip" not in line


def test_permission_error_is_named_as_such(inproc, tmp_path, tiny_data, monkeypatch):
    """The same as the test above, for a root run: the kernel's refusal is simulated."""
    locked = tmp_path / "locked.npz"
    locked.write_bytes(open(tiny_data["test"], "rb").read())
    real_open = os.open

    def deny(path, flags, *args, **kwargs):
        if os.fspath(path).endswith("locked.npz"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    for command in (["convert", "locked.npz", "out.npz"], ["train", "--train-data", "locked.npz"]):
        line = inproc(*command).one_error_line()
        assert "locked.npz" in line and "permission denied" in line and "zip" not in line
