"""Importing ptychopinn.config must stay light: stdlib and PyYAML only."""

import ast
import subprocess
import sys
from pathlib import Path

import ptychopinn.config

HEAVY = ("numpy", "scipy", "h5py", "torch", "lightning", "tensorflow", "keras")


def test_import_pulls_in_no_numpy_torch_or_tensorflow():
    code = (
        "import sys, ptychopinn.config, ptychopinn.config.backend\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_source_imports_only_stdlib_and_yaml():
    package = Path(ptychopinn.config.__file__).parent
    allowed = set(sys.stdlib_module_names) | {"yaml"}
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{source.name} imports {name}"


def test_public_api_is_exported():
    for name in ptychopinn.config.__all__:
        assert hasattr(ptychopinn.config, name), name
    assert ptychopinn.config.__version__.startswith("0.1")
