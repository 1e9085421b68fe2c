"""What is installed: ptycho* distributions, registered backends, visible devices.

Nothing here imports a deep-learning framework in this process; device queries run each
backend in its own subprocess (TensorFlow and Lightning must never share a process).
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import subprocess
import sys
from dataclasses import dataclass

__all__ = [
    "BACKEND_GROUP",
    "DEFAULT_BACKEND",
    "BackendChoice",
    "BackendStatus",
    "backend_statuses",
    "choose_backend",
    "no_backend_message",
    "ptycho_distributions",
    "query_devices",
]

BACKEND_GROUP = "ptychopinn.backends"
# The backends the project knows, whether or not their package is installed.
KNOWN_BACKENDS = {"tensorflow": "ptycho-tf", "pytorch": "ptycho-torch"}
DEFAULT_BACKEND = "tensorflow"
"""The backend used when several are installed and none is asked for (the configs'
default, so a config file written without ``backend`` means the same everywhere)."""
APP_DISTRIBUTION = "ptychopinn-app"


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def ptycho_distributions() -> dict[str, str]:
    """Return {distribution name: version} for every installed ``ptycho*`` distribution."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and _normalise(name).startswith("ptycho"):
            found.setdefault(_normalise(name), dist.version)
    return dict(sorted(found.items()))


@dataclass(frozen=True)
class BackendStatus:
    """A backend name and whether a distribution registers it (nothing is imported)."""

    name: str
    installed: bool
    distribution: str
    version: str | None


def backend_statuses() -> list[BackendStatus]:
    """List the known and registered backends without importing any of them."""
    registered = {ep.name: ep for ep in metadata.entry_points(group=BACKEND_GROUP)}
    names = list(KNOWN_BACKENDS) + sorted(set(registered) - set(KNOWN_BACKENDS))
    statuses = []
    for name in names:
        ep = registered.get(name)
        dist_name = KNOWN_BACKENDS.get(name, "?")
        version = None
        if ep is not None and ep.dist is not None:
            dist_name = _normalise(ep.dist.metadata["Name"])
            version = ep.dist.version
        statuses.append(BackendStatus(name, ep is not None, dist_name, version))
    return statuses


_DEVICE_PROBE = """
import json, sys
from ptychopinn.config import get_backend
backend = get_backend(sys.argv[1])
listing = getattr(backend, "devices", None)
if callable(listing):
    found = [str(d) for d in listing()]
else:
    # The Backend protocol has no device listing: ask the framework the backend has
    # already imported (nothing new is imported here).
    found = []
    tf = sys.modules.get("tensorflow")
    torch = sys.modules.get("torch")
    if tf is not None:
        found = [d.name.replace("/physical_device:", "") for d in tf.config.list_physical_devices()]
    elif torch is not None:
        found = ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                           for i in range(torch.cuda.device_count())]
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            found.append("mps")
    else:
        found = ["cpu"]
print("PTYCHOPINN-DEVICES " + json.dumps(found))
"""


def query_devices(name: str, timeout_s: float = 120.0) -> list[str] | str:
    """Ask backend `name`, in a subprocess, which devices it sees; an error text on failure."""
    from .logs import quiet_framework_environment

    env = quiet_framework_environment(dict(os.environ))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _DEVICE_PROBE, name],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout_s:.0f} s"
    for line in proc.stdout.splitlines():
        if line.startswith("PTYCHOPINN-DEVICES "):
            return list(json.loads(line.split(" ", 1)[1]))
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {proc.returncode}"


@dataclass(frozen=True)
class BackendChoice:
    """The backend a command uses when none is asked for, and why."""

    name: str
    reason: str


def no_backend_message() -> str:
    """The error text when no backend is installed: both install commands."""
    return (
        "no ptychopinn backend is installed: install one with "
        f"`pip install '{APP_DISTRIBUTION}[torch]'` (PyTorch; on a CPU-only machine first "
        "`pip install torch --index-url https://download.pytorch.org/whl/cpu`) or "
        f"`pip install '{APP_DISTRIBUTION}[tf]'` (TensorFlow); the libraries alone are "
        "`pip install ptycho-torch` / `pip install ptycho-tf`"
    )


def choose_backend(installed: list[str] | tuple[str, ...] | None = None) -> BackendChoice:
    """Pick the backend for a command that names none: the only installed one, else the default.

    `installed` defaults to the registered backends (``ptychopinn.config.available_backends``,
    nothing is imported). With several installed, ``DEFAULT_BACKEND`` wins when it is one
    of them, else the first by name. Raises ``BackendNotInstalledError`` (exit code 2)
    naming both install commands when none is installed.
    """
    from ptychopinn.config import BackendNotInstalledError, available_backends

    names = sorted(available_backends() if installed is None else installed)
    if not names:
        raise BackendNotInstalledError(no_backend_message())
    if len(names) == 1:
        return BackendChoice(names[0], "the only installed backend")
    if DEFAULT_BACKEND in names:
        return BackendChoice(
            DEFAULT_BACKEND,
            f"{' and '.join(names)} are installed; {DEFAULT_BACKEND} is the default, "
            "--backend or the config's backend key chooses",
        )
    return BackendChoice(
        names[0], f"{' and '.join(names)} are installed; {names[0]} is the first by name"
    )
