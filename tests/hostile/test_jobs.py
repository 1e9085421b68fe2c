"""Jobs on valid but awkward inputs, with the NumPy test backend (tests/conftest.py):
optional steps never fail the job, nothing already written is lost."""

from __future__ import annotations

import pytest

import ptychopinn.config
from ptychopinn.app import pipeline


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    """`simulate --n-images 128`: its test split is too sparse for a covered rectangle."""
    out = tmp_path_factory.mktemp("sparse")
    return pipeline.simulate_files(out / "sim", n_images=128, seed=0)


def _train(tmp_path, data, **overrides):
    configs = ptychopinn.config.load_config(
        None,
        {"training.nepochs": 2, "training.output_dir": str(tmp_path / "run"), **overrides},
    )
    return pipeline.train(configs, data)


def test_infer_on_sparse_data_still_writes_product_and_report(tmp_path, sparse, numpy_backend):
    run = _train(tmp_path, sparse["train"])
    with pytest.warns(UserWarning, match="comparison with the truth skipped"):
        result = pipeline.infer(run.bundle_path, sparse["test"], output_dir=tmp_path / "inf")
    for name in ("recon.npz", "product.h5", "report.md", "reconstruction.png"):
        assert (tmp_path / "inf" / name).exists(), name
    assert result.metrics is None and "covered" in result.truth_skipped
    assert not (tmp_path / "inf" / "metrics.json").exists()
    assert "truth comparison" in (tmp_path / "inf" / "report.md").read_text()
