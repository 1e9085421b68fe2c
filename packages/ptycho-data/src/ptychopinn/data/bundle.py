"""The shared model-bundle container (``wts.h5.zip``): atomic, hashed, pickle-free."""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ptychopinn.data.errors import DataContractError
from ptychopinn.data.files import atomic_write, check_input_file

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_DIGEST_KEY",
    "MANIFEST_NAME",
    "Bundle",
    "BundleError",
    "load_portable",
    "member_budget",
    "read_bundle",
    "save_portable",
    "write_bundle",
]

FORMAT_VERSION = 1
"""Bundle format version written to and required in ``manifest.json``."""

MANIFEST_NAME = "manifest.json"

MANIFEST_DIGEST_KEY = "manifest_sha256"
"""Manifest key holding the SHA-256 of the rest of the manifest (canonical JSON)."""

MAX_MANIFEST_BYTES = 1 << 20
"""The most bytes ``manifest.json`` may declare (1 MiB; a real one is a few KiB)."""

BYTES_PER_PARAMETER = 32
BUDGET_OVERHEAD_BYTES = 16 << 20
MAX_BYTES_WITHOUT_CONFIG = 256 << 20
"""Caps on the members' declared uncompressed size, see :func:`member_budget`."""

_CHUNK = 1 << 20

_PICKLE_OPCODES = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


class BundleError(ValueError):
    """A bundle is corrupt, tampered with, of an unknown version, or holds an unsafe member."""


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: its manifest and every member's bytes (manifest excluded)."""

    manifest: dict[str, Any]
    members: dict[str, bytes]


def _looks_pickled(name: str, data: bytes) -> bool:
    """Return True for members that are, or embed, a Python pickle."""
    lowered = name.lower()
    if lowered.endswith((".pkl", ".pickle", ".dill", ".pt", ".pth", ".ckpt", ".joblib")):
        return True
    if data[:2] in _PICKLE_OPCODES:
        return True
    if data[:6] == b"\x93NUMPY":
        return b"'descr': '|O'" in data[:512] or b"'descr': 'O'" in data[:512]
    if lowered.endswith(".npz"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as inner:
                return any(_looks_pickled(n, inner.read(n)[:512]) for n in inner.namelist())
        except zipfile.BadZipFile:
            return False
    return False


def _sha256(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _manifest_digest(manifest: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``manifest`` without its own digest key."""
    body = {k: v for k, v in manifest.items() if k != MANIFEST_DIGEST_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return _sha256(text.encode("utf-8"))


def member_budget(manifest: dict[str, Any]) -> int:
    """The most uncompressed bytes the members of a bundle with ``manifest`` may declare.

    ``BYTES_PER_PARAMETER`` per canonical parameter of the model the manifest's config
    describes (native + portable weights + probe need about 9) plus
    ``BUDGET_OVERHEAD_BYTES``; ``MAX_BYTES_WITHOUT_CONFIG`` when the manifest holds no
    valid model config (such a bundle holds no loadable model anyway).
    """
    from ptychopinn.config import ModelConfig, layer_plan

    config = manifest.get("config")
    if isinstance(config, dict) and isinstance(config.get("model"), dict):
        config = config["model"]
    try:
        shapes = layer_plan(ModelConfig.from_dict(config)).parameter_shapes()
    except (TypeError, ValueError, KeyError, AttributeError):
        return MAX_BYTES_WITHOUT_CONFIG
    count = sum(math.prod(shape) for shape in shapes.values())
    return BYTES_PER_PARAMETER * count + BUDGET_OVERHEAD_BYTES


def write_bundle(
    path: str | PathLike[str], manifest: dict[str, Any], members: dict[str, bytes]
) -> Path:
    """Write ``manifest`` (+ format version, member SHA-256s and its own digest) and
    ``members`` atomically to ``path``."""
    path = Path(path)
    if MANIFEST_NAME in members:
        raise BundleError(f"{path}: member name {MANIFEST_NAME!r} is reserved")
    for name, data in members.items():
        if not isinstance(data, bytes | bytearray):
            raise BundleError(f"{path}: member {name!r} must be bytes, got {type(data).__name__}")
        if _looks_pickled(name, bytes(data)):
            raise BundleError(
                f"{path}: member {name!r} looks like a pickle; pickles are not allowed"
            )
    full = {k: v for k, v in manifest.items() if k != MANIFEST_DIGEST_KEY}
    full["format_version"] = FORMAT_VERSION
    full["sha256"] = {name: _sha256(bytes(data)) for name, data in members.items()}
    try:
        full[MANIFEST_DIGEST_KEY] = _manifest_digest(full)
        text = json.dumps(full, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{path}: manifest is not JSON-serialisable: {exc}") from None
    with atomic_write(path) as tmp, open(tmp, "wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST_NAME, text)
            for name, data in members.items():
                archive.writestr(name, bytes(data))
    return path


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    """Decompress one member in bounded chunks, never past its declared size."""
    chunks, total = [], 0
    with archive.open(info) as fh:
        while chunk := fh.read(_CHUNK):
            total += len(chunk)
            if total > info.file_size:  # pragma: no cover - zipfile stops at file_size
                raise BundleError(
                    f"{path}: member {info.filename!r} inflates past its declared "
                    f"{info.file_size} bytes (a zip bomb?)"
                )
            chunks.append(chunk)
    return b"".join(chunks)


def _check_manifest(path: Path, manifest: Any) -> dict[str, str]:
    """Check format version and digest of a parsed manifest; return its member hashes."""
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: member {MANIFEST_NAME!r} must hold a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{path}: member {MANIFEST_NAME!r} has format_version {version!r}, expected {FORMAT_VERSION}"
        )
    digest = manifest.get(MANIFEST_DIGEST_KEY)
    # Bundles of ptycho-data <= 0.1.2 carry no digest; every newer one must match it.
    if digest is not None and digest != _manifest_digest(manifest):
        raise BundleError(
            f"{path}: member {MANIFEST_NAME!r} fails its {MANIFEST_DIGEST_KEY} check "
            "(the manifest was edited: config, architecture or scales changed after saving)"
        )
    hashes = manifest.get("sha256")
    if not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
        raise BundleError(f"{path}: manifest key 'sha256' must map member names to digests")
    return hashes


def read_bundle(path: str | PathLike[str]) -> Bundle:
    """Read and verify a bundle: zip integrity, format version, manifest digest, the member
    list and declared sizes (before anything is decompressed), SHA-256 of every member,
    no pickles.

    Members are decompressed in bounded chunks only after the member list matches the
    manifest exactly and the declared sizes fit :func:`member_budget`, so a zip bomb
    costs no more memory than the budget.
    """
    path = Path(path)
    try:
        check_input_file(path)  # a FIFO would block, /dev/zero would never end
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            if len(set(names)) != len(names):
                raise BundleError(f"{path}: the archive holds duplicate member names")
            by_name = {info.filename: info for info in infos}
            if MANIFEST_NAME not in by_name:
                raise BundleError(f"{path}: member {MANIFEST_NAME!r} is missing")
            if by_name[MANIFEST_NAME].file_size > MAX_MANIFEST_BYTES:
                raise BundleError(
                    f"{path}: member {MANIFEST_NAME!r} declares "
                    f"{by_name[MANIFEST_NAME].file_size} bytes, expected at most {MAX_MANIFEST_BYTES}"
                )
            manifest = json.loads(_read_member(archive, by_name[MANIFEST_NAME], path))
            hashes = _check_manifest(path, manifest)
            stored = sorted(n for n in names if n != MANIFEST_NAME)
            if set(hashes) != set(stored):
                raise BundleError(
                    f"{path}: manifest lists members {sorted(hashes)}, archive holds {stored}"
                )
            budget = member_budget(manifest)
            declared = sum(by_name[n].file_size for n in stored)
            if declared > budget:
                largest = max(stored, key=lambda n: by_name[n].file_size)
                raise BundleError(
                    f"{path}: members declare {declared} bytes uncompressed (largest "
                    f"{largest!r}: {by_name[largest].file_size}), expected at most {budget} "
                    "for the model its config describes"
                )
            members = {n: _read_member(archive, by_name[n], path) for n in stored}
    except BundleError:
        raise
    except DataContractError as exc:  # not a regular or not a readable file
        raise BundleError(str(exc)) from None
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError, ValueError, KeyError) as exc:
        raise BundleError(
            f"{path}: not a readable bundle (corrupt or truncated zip): {exc}"
        ) from None
    for name, data in members.items():
        if _sha256(data) != hashes[name]:
            raise BundleError(
                f"{path}: member {name!r} fails its SHA-256 check (corrupt or tampered)"
            )
        if _looks_pickled(name, data):
            raise BundleError(f"{path}: member {name!r} looks like a pickle; refusing to load it")
    return Bundle(manifest=manifest, members=members)


def save_portable(weights: dict[str, np.ndarray]) -> bytes:
    """Serialise named arrays (canonical names/layouts) to NPZ bytes; object arrays are refused."""
    arrays = {}
    for name, value in weights.items():
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise BundleError(
                f"portable weights: {name!r} has dtype object; only numeric arrays are allowed"
            )
        arrays[name] = arr
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def load_portable(data: bytes) -> dict[str, np.ndarray]:
    """Load NPZ bytes written by :func:`save_portable` without ever unpickling."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise BundleError(f"portable.npz: not a readable pickle-free NPZ: {exc}") from None
