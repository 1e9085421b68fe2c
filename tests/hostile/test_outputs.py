"""Outputs: written atomically with the umask's permissions; a killed save loses nothing
already on disk and its temporary is cleaned up by the next save."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ptychopinn.config
from ptychopinn.app import pipeline


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield 0o644
    os.umask(old)


def test_every_output_gets_the_umask_permissions(tmp_path, tiny_data, numpy_backend, umask_022):
    configs = ptychopinn.config.load_config(
        None, {"training.nepochs": 2, "training.output_dir": str(tmp_path / "run")}
    )
    run = pipeline.train(configs, tiny_data["train"])
    result = pipeline.infer(run.bundle_path, tiny_data["test"], output_dir=tmp_path / "inf")
    sim = pipeline.simulate_files(tmp_path / "sim", n_images=16, object_size=120)
    written = [
        run.bundle_path,
        tmp_path / "run" / "history.json",
        tmp_path / "run" / "report.md",
        tmp_path / "run" / "loss.png",
        result.recon_path,
        result.product_path,
        result.report_path,
        tmp_path / "inf" / "metrics.json",
        sim["train"],
    ]
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in written}
    assert set(modes.values()) == {oct(umask_022)}, modes
    leftovers = [p.name for p in tmp_path.rglob(".*.tmp*")]
    assert not leftovers


_KILLED_SAVE = textwrap.dedent(
    """
    import os, signal, sys, zipfile
    import numpy as np
    from ptychopinn.data import ScanData, save_npz, write_bundle

    target, kind = sys.argv[1], sys.argv[2]
    calls = []

    def die_midway(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # after the first member: a truncated file on disk
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    if kind == "bundle":
        real = zipfile.ZipFile.writestr
        zipfile.ZipFile.writestr = lambda self, *a, **k: die_midway(self, *a, **k)
        write_bundle(target, {"run": 2}, {"a.bin": b"a" * 1000, "b.bin": b"b" * 1000})
    else:
        real = zipfile.ZipFile.open
        zipfile.ZipFile.open = lambda self, *a, **k: die_midway(self, *a, **k)
        scan = ScanData(xcoords=[1.0, 2.0], ycoords=[1.0, 2.0],
                        diffraction=np.ones((2, 8, 8)), probe=np.ones((8, 8)))
        save_npz(scan, target)
    """
)


def _killed_save(target: Path, kind: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_SAVE, str(target), kind],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _scan(m: int):
    from ptychopinn.data import ScanData

    rng = np.random.default_rng(m)
    return ScanData(
        xcoords=rng.uniform(4, 8, m),
        ycoords=rng.uniform(4, 8, m),
        diffraction=rng.uniform(0.1, 1, (m, 8, 8)),
        probe=np.ones((8, 8)),
    )


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_killed_bundle_save_keeps_the_old_bundle_and_the_next_save_cleans_up(tmp_path):
    from ptychopinn.data import read_bundle, write_bundle

    path = write_bundle(tmp_path / "wts.h5.zip", {"run": 1}, {"a.bin": b"1"})
    _killed_save(path, "bundle")
    assert read_bundle(path).manifest["run"] == 1  # nothing already on disk was lost
    assert len(_temporaries(tmp_path)) == 1  # the killed save's truncated temporary
    write_bundle(path, {"run": 3}, {"a.bin": b"3"})
    assert read_bundle(path).manifest["run"] == 3
    assert _temporaries(tmp_path) == []


def test_killed_npz_save_keeps_the_old_file_and_the_next_save_cleans_up(tmp_path):
    from ptychopinn.data import load_npz, save_npz

    path = save_npz(_scan(3), tmp_path / "data.npz")
    _killed_save(path, "npz")
    assert load_npz(path).n_positions == 3
    assert len(_temporaries(tmp_path)) == 1
    save_npz(_scan(5), path)
    assert load_npz(path).n_positions == 5
    assert _temporaries(tmp_path) == []


def test_a_live_writers_temporary_is_kept(tmp_path):
    from ptychopinn.data import remove_stale_temporaries

    target = tmp_path / "recon.npz"
    mine = tmp_path / f".recon.npz.{os.getpid()}-abcd1234.tmp.npz"
    mine.write_bytes(b"in progress")
    dead = tmp_path / ".recon.npz.999999999-abcd1234.tmp.npz"  # beyond any pid_max
    dead.write_bytes(b"killed")
    assert remove_stale_temporaries(target) == [dead]
    assert mine.exists()


def test_an_older_writers_temporary_is_removed_once_it_is_old(tmp_path):
    from ptychopinn.data import remove_stale_temporaries

    target = tmp_path / "wts.h5.zip"
    fresh = tmp_path / ".wts.h5.zip.abcd1234.tmp"  # mkstemp's name, ptycho-data <= 0.1.2
    old = tmp_path / ".wts.h5.zip.wxyz9876.tmp"
    unrelated = tmp_path / ".wts.h5.zip.notes"
    for p in (fresh, old, unrelated):
        p.write_bytes(b"x")
    os.utime(old, (0, 0))
    assert remove_stale_temporaries(target) == [old]
    assert fresh.exists() and unrelated.exists()
