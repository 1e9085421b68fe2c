"""The shared bundle container: atomic, hashed, pickle-free."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ptychopinn.data.bundle import (
    FORMAT_VERSION,
    BundleError,
    load_portable,
    read_bundle,
    save_portable,
    write_bundle,
)


def _members() -> dict[str, bytes]:
    buf = io.BytesIO()
    np.save(buf, np.ones((4, 4), dtype=np.complex64))
    return {
        "portable.npz": save_portable({"log_scale": np.array(1.5), "enc.weight": np.ones((2, 3))}),
        "probe.npy": buf.getvalue(),
    }


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "wts.h5.zip"
    write_bundle(path, {"backend": "tensorflow", "N": 64}, _members())
    bundle = read_bundle(path)
    assert (
        bundle.manifest["backend"] == "tensorflow"
        and bundle.manifest["format_version"] == FORMAT_VERSION
    )
    assert set(bundle.manifest["sha256"]) == {"portable.npz", "probe.npy"}
    weights = load_portable(bundle.members["portable.npz"])
    assert float(weights["log_scale"]) == 1.5 and weights["enc.weight"].shape == (2, 3)
    assert [p.name for p in path.parent.iterdir()] == ["wts.h5.zip"]  # no temporary left behind


def _rewrite(path: Path, change: dict[str, bytes | None]) -> None:
    with zipfile.ZipFile(path) as z:
        content = {n: z.read(n) for n in z.namelist()}
    for name, data in change.items():
        if data is None:
            content.pop(name)
        else:
            content[name] = data
    with zipfile.ZipFile(path, "w") as z:
        for name, data in content.items():
            z.writestr(name, data)


def test_rejections(tmp_path: Path) -> None:
    path = tmp_path / "b.zip"
    write_bundle(path, {}, _members())
    manifest = json.loads(zipfile.ZipFile(path).read("manifest.json"))
    _rewrite(path, {"probe.npy": b"tampered"})
    with pytest.raises(BundleError, match=r"probe\.npy"):
        read_bundle(path)
    write_bundle(path, {}, _members())
    _rewrite(path, {"manifest.json": json.dumps({**manifest, "format_version": 99}).encode()})
    with pytest.raises(BundleError, match="format_version"):
        read_bundle(path)
    write_bundle(path, {}, _members())
    _rewrite(path, {"manifest.json": None})
    with pytest.raises(BundleError, match="missing"):
        read_bundle(path)
    write_bundle(path, {}, _members())
    evil = pickle.dumps({"a": 1})
    manifest["sha256"]["evil.bin"] = __import__("hashlib").sha256(evil).hexdigest()
    manifest.pop("manifest_sha256")  # as a bundle of ptycho-data <= 0.1.2: no manifest digest
    _rewrite(path, {"evil.bin": evil, "manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(BundleError, match="pickle"):
        read_bundle(path)
    write_bundle(path, {}, _members())
    _rewrite(path, {"extra.bin": b"x"})
    with pytest.raises(BundleError, match="archive holds"):
        read_bundle(path)
    write_bundle(path, {}, _members())
    _rewrite(path, {"manifest.json": b"[1, 2]"})
    with pytest.raises(BundleError, match="JSON object"):
        read_bundle(path)


def test_corrupt_and_truncated(tmp_path: Path) -> None:
    path = tmp_path / "b.zip"
    write_bundle(path, {}, _members())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=str(path.name)):
        read_bundle(path)
    path.write_bytes(b"not a zip at all")
    with pytest.raises(BundleError, match="corrupt"):
        read_bundle(path)
    with pytest.raises(BundleError):
        read_bundle(tmp_path / "missing.zip")


def test_write_refusals(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="pickle"):
        write_bundle(tmp_path / "a.zip", {}, {"model.pkl": b"abc"})
    with pytest.raises(BundleError, match="pickle"):
        write_bundle(tmp_path / "a.zip", {}, {"x.bin": pickle.dumps(3)})
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BundleError, match="pickle"):
        write_bundle(tmp_path / "a.zip", {}, {"o.npy": buf.getvalue()})
    inner = io.BytesIO()
    np.savez(inner, o=np.array([None], dtype=object))
    with pytest.raises(BundleError, match="pickle"):
        write_bundle(tmp_path / "a.zip", {}, {"portable.npz": inner.getvalue()})
    with pytest.raises(BundleError, match="reserved"):
        write_bundle(tmp_path / "a.zip", {}, {"manifest.json": b"{}"})
    with pytest.raises(BundleError, match="bytes"):
        write_bundle(tmp_path / "a.zip", {}, {"x": "text"})  # type: ignore[dict-item]
    with pytest.raises(BundleError, match="JSON"):
        write_bundle(tmp_path / "a.zip", {"bad": object()}, {})
    assert not list(tmp_path.iterdir())
    write_bundle(tmp_path / "ok.zip", {}, {"x.npz": b"PK-not-really"})
    assert (tmp_path / "ok.zip").exists()


def test_portable_refuses_objects_and_garbage() -> None:
    with pytest.raises(BundleError):
        save_portable({"o": np.array([None], dtype=object)})
    inner = io.BytesIO()
    np.savez(inner, o=np.array([None], dtype=object))
    with pytest.raises(BundleError):
        load_portable(inner.getvalue())
    with pytest.raises(BundleError):
        load_portable(b"garbage")
