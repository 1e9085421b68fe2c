"""The same surface as the subprocess tests, called in process (fast; counts for coverage)."""

from __future__ import annotations

import importlib.metadata
import json

import numpy as np

from ptychopinn.app import conversion, environment


def test_version_and_info_in_process(inproc):
    result = inproc("--version")
    assert result.returncode == 0
    assert (
        result.stdout.splitlines()[0]
        == f"ptychopinn {importlib.metadata.version('ptychopinn-app')}"
    )
    text = inproc("info", "--no-devices")
    assert text.returncode == 0 and "ptycho-data" in text.stdout
    data = json.loads(inproc("info", "--no-devices", "--json").stdout)
    assert data["cpus"] >= 1 and "tensorflow" in data["backends"]
    assert inproc().returncode == 2  # no command: help and exit 2
    assert inproc("config").returncode == 2  # no action


def test_environment_helpers():
    dists = environment.ptycho_distributions()
    assert dists["ptycho-config"] == importlib.metadata.version("ptycho-config")
    statuses = {s.name: s for s in environment.backend_statuses()}
    assert statuses["tensorflow"].distribution == "ptycho-tf"
    assert statuses["pytorch"].distribution == "ptycho-torch"
    answer = environment.query_devices("caffe")
    assert isinstance(answer, str) and "caffe" in answer  # the registry's error, one line


def test_convert_in_process(tmp_path, tiny_data):
    from ptychopinn.data import load

    src = tiny_data["test"]
    h5 = conversion.convert(src, tmp_path / "a.h5", pixel_size_m=1e-8)
    assert conversion.detect_format(h5) == "product"
    npz_product = conversion.convert(h5, tmp_path / "a.npz", to="product")
    assert conversion.detect_format(npz_product) == "product"
    legacy = conversion.convert(src, tmp_path / "l.npz", to="legacy-npz", pixel_size_m=2e-8)
    canon = conversion.convert(legacy, tmp_path / "c.npz")
    assert conversion.detect_format(canon) == "npz"
    np.testing.assert_array_equal(load(src).diffraction, load(canon).diffraction)
    assert load(canon).metadata["object_pixel_width_m"] == 2e-8


def test_convert_refuses_to_overwrite_its_input(inproc, tiny_data):
    result = inproc("convert", tiny_data["test"], tiny_data["test"])
    assert result.returncode == 2 and "overwrite" in result.stderr


def test_unknown_and_missing_backend_in_process(inproc, tiny_data):
    result = inproc("demo", "--backend", "caffe")
    assert result.returncode == 2 and "valid backends" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
