"""Hostile model bundles: zip bombs, unlisted members, edited manifests. The reader must
refuse them before decompressing anything it has not been promised, with bounded memory."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

MB = 1 << 20


def _bundle(path: Path) -> Path:
    """A small bundle as a backend writes it (a real config; placeholder weights)."""
    from ptychopinn.config import TrainingConfig
    from ptychopinn.data import save_portable, write_bundle

    buf = io.BytesIO()
    np.save(buf, np.ones((64, 64), np.complex64))
    manifest = {
        "backend": "pytorch",
        "config": TrainingConfig().to_dict(),
        "intensity_scale": 988.0,
        "norm_factor": 1.0,
        "N": 64,
        "gridsize": 1,
    }
    members = {
        "weights.safetensors": b"\x00" * 64,
        "portable.npz": save_portable({"log_scale": np.array(6.9)}),
        "probe.npy": buf.getvalue(),
    }
    return write_bundle(path, manifest, members)


def _rewrite(path: Path, zeros: dict[str, int]) -> None:
    """Replace or add members made of `zeros[name]` MiB of zero bytes, streamed (deflate)."""
    with zipfile.ZipFile(path) as archive:
        kept = {n: archive.read(n) for n in archive.namelist() if n not in zeros}
    block = bytes(MB)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in kept.items():
            archive.writestr(name, data)
        for name, mib in zeros.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as fh:
                for _ in range(mib):
                    fh.write(block)


def _read_in_subprocess(path: Path) -> tuple[str, float]:
    """read_bundle(path) in a fresh process: (the error message or 'ok', peak RSS in MiB)."""
    code = (
        "import resource, sys\n"
        "from ptychopinn.data import BundleError, read_bundle\n"
        "try:\n"
        "    read_bundle(sys.argv[1]); message = 'ok'\n"
        "except BundleError as exc:\n"
        "    message = str(exc)\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(peak); print(message)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    peak, message = proc.stdout.splitlines()[:2]
    return message, float(peak)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_unlisted_1_5_gb_member_is_refused_with_bounded_memory(tmp_path):
    path = _bundle(tmp_path / "wts.h5.zip")
    _rewrite(path, {"bomb.bin": 1536})
    assert path.stat().st_size < 8 * MB  # a small file on disk ...
    message, peak_mib = _read_in_subprocess(path)
    assert "bomb.bin" in message and "manifest lists members" in message
    assert peak_mib < 300, f"peak RSS {peak_mib:.0f} MiB"  # ... refused before inflating


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_listed_member_larger_than_the_model_is_refused_before_inflating(tmp_path):
    path = _bundle(tmp_path / "wts.h5.zip")
    _rewrite(path, {"weights.safetensors": 400})
    message, peak_mib = _read_in_subprocess(path)
    assert "weights.safetensors" in message and "expected at most" in message
    assert peak_mib < 300, f"peak RSS {peak_mib:.0f} MiB"


def test_budget_follows_the_models_parameter_count():
    from ptychopinn.config import ModelConfig, TrainingConfig, layer_plan
    from ptychopinn.data.bundle import BUDGET_OVERHEAD_BYTES, BYTES_PER_PARAMETER, member_budget

    for model in (ModelConfig(N=64), ModelConfig(N=128, n_filters_scale=1)):
        count = sum(int(np.prod(s)) for s in layer_plan(model).parameter_shapes().values())
        expected = BYTES_PER_PARAMETER * count + BUDGET_OVERHEAD_BYTES
        assert member_budget({"config": TrainingConfig(model=model).to_dict()}) == expected


@pytest.mark.parametrize(
    ("key", "value"),
    [("amp_activation", "relu"), ("n_filters_scale", 3), ("probe_scale", 2.0)],
)
def test_edited_architecture_key_in_the_manifest_is_detected(tmp_path, key, value):
    from ptychopinn.data import BundleError, read_bundle

    path = _bundle(tmp_path / "wts.h5.zip")
    with zipfile.ZipFile(path) as archive:
        content = {n: archive.read(n) for n in archive.namelist()}
    manifest = json.loads(content["manifest.json"])
    manifest["config"]["model"][key] = value
    content["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in content.items():
            archive.writestr(name, data)
    with pytest.raises(BundleError, match="manifest_sha256"):
        read_bundle(path)


def test_duplicate_member_names_are_refused(tmp_path):
    from ptychopinn.data import BundleError, read_bundle

    path = _bundle(tmp_path / "wts.h5.zip")
    with zipfile.ZipFile(path, "a") as archive, pytest.warns(UserWarning, match="Duplicate"):
        archive.writestr("probe.npy", b"shadow")
    with pytest.raises(BundleError, match="duplicate member names"):
        read_bundle(path)
