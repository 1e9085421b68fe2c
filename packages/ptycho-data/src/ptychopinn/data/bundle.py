"""The shared model-bundle container (``wts.h5.zip``): atomic, hashed, pickle-free."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "Bundle",
    "BundleError",
    "load_portable",
    "read_bundle",
    "save_portable",
    "write_bundle",
]

FORMAT_VERSION = 1
"""Bundle format version written to and required in ``manifest.json``."""

MANIFEST_NAME = "manifest.json"

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


def write_bundle(
    path: str | PathLike[str], manifest: dict[str, Any], members: dict[str, bytes]
) -> Path:
    """Write ``manifest`` (+ format version and member SHA-256s) and ``members`` atomically to ``path``."""
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
    full = dict(manifest)
    full["format_version"] = FORMAT_VERSION
    full["sha256"] = {name: _sha256(bytes(data)) for name, data in members.items()}
    try:
        text = json.dumps(full, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{path}: manifest is not JSON-serialisable: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(MANIFEST_NAME, text)
                for name, data in members.items():
                    archive.writestr(name, bytes(data))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_bundle(path: str | PathLike[str]) -> Bundle:
    """Read and verify a bundle: zip integrity, format version, SHA-256 of every member, no pickles."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if MANIFEST_NAME not in names:
                raise BundleError(f"{path}: member {MANIFEST_NAME!r} is missing")
            manifest = json.loads(archive.read(MANIFEST_NAME).decode("utf-8"))
            members = {n: archive.read(n) for n in names if n != MANIFEST_NAME}
    except BundleError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError, ValueError, KeyError) as exc:
        raise BundleError(
            f"{path}: not a readable bundle (corrupt or truncated zip): {exc}"
        ) from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: member {MANIFEST_NAME!r} must hold a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{path}: member {MANIFEST_NAME!r} has format_version {version!r}, expected {FORMAT_VERSION}"
        )
    hashes = manifest.get("sha256")
    if not isinstance(hashes, dict) or set(hashes) != set(members):
        listed = sorted(hashes) if isinstance(hashes, dict) else hashes
        raise BundleError(
            f"{path}: manifest lists members {listed}, archive holds {sorted(members)}"
        )
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
