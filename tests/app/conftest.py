"""Which backends are installed (the CLI runners and tiny_data live in tests/conftest.py)."""

from __future__ import annotations

import importlib.util

import pytest


def backend_installed(name: str) -> bool:
    """Whether backend `name`'s package and framework are importable (nothing is imported)."""
    module, framework = {
        "tensorflow": ("ptychopinn.tf", "tensorflow"),
        "pytorch": ("ptychopinn.torch", "lightning"),
    }[name]
    return all(importlib.util.find_spec(m) is not None for m in (module, framework))


BACKENDS = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(
            not backend_installed(name), reason=f"{name} backend not installed"
        ),
    )
    for name in ("tensorflow", "pytorch")
]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Each installed backend in turn (each CLI call is its own process)."""
    return request.param


@pytest.fixture(scope="session")
def hidden_frameworks(tmp_path_factory) -> dict[str, str]:
    """PYTHONPATH entries that make tensorflow/keras/torch/lightning fail to import."""
    root = tmp_path_factory.mktemp("hidden")
    for name in ("tensorflow", "keras", "torch", "lightning"):
        pkg = root / name
        pkg.mkdir()
        (pkg / "__init__.py").write_text(f'raise ImportError("{name} is hidden by the test")\n')
    return {"PYTHONPATH": str(root)}
