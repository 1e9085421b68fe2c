"""ptychopinn.data.files: input checks before any open, atomic writes, stale temporaries."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ptychopinn.data import (
    DataContractError,
    atomic_write,
    check_input_file,
    declared_measurement,
    remove_stale_temporaries,
    write_text_atomic,
)


def test_check_input_file_kinds(tmp_path: Path) -> None:
    regular = tmp_path / "a.npz"
    regular.write_bytes(b"x")
    assert check_input_file(regular) == regular
    with pytest.raises(FileNotFoundError):
        check_input_file(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError):
        check_input_file(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(DataContractError, match=r"pipe: expected a regular file, found a FIFO"):
        check_input_file(fifo)


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = write_text_atomic(tmp_path / "sub" / "report.md", "old")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.md"]
    old_umask = os.umask(0o027)
    try:
        write_text_atomic(target, "new")
    finally:
        os.umask(old_umask)
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o640


def test_remove_stale_temporaries_keeps_live_writers(tmp_path: Path) -> None:
    target = tmp_path / "data.npz"
    live = tmp_path / f".data.npz.{os.getpid()}-0a1b2c3d.tmp.npz"
    dead = tmp_path / ".data.npz.999999999-0a1b2c3d.tmp.npz"
    other = tmp_path / ".other.npz.999999999-0a1b2c3d.tmp.npz"
    for p in (live, dead, other):
        p.write_bytes(b"")
    assert remove_stale_temporaries(target) == [dead]
    assert live.exists() and other.exists()


def test_declared_measurement(tmp_path: Path) -> None:
    base = {"diffraction": np.ones((2, 4, 4)), "xcoords": np.zeros(2)}
    np.savez(tmp_path / "key.npz", **base, measurement="intensity")
    np.savez(tmp_path / "meta.npz", **base, metadata='{"measurement": "amplitude"}')
    np.savez(tmp_path / "none.npz", **base)
    np.savez(tmp_path / "bad.npz", **base, measurement=np.zeros(2))
    assert declared_measurement(tmp_path / "key.npz") == "intensity"
    assert declared_measurement(tmp_path / "meta.npz") == "amplitude"
    assert declared_measurement(tmp_path / "none.npz") is None
    assert declared_measurement(tmp_path / "p.h5") is None
    with pytest.raises(DataContractError, match="'measurement': expected a string"):
        declared_measurement(tmp_path / "bad.npz")
