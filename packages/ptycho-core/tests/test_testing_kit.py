"""The conformance kit (``ptychopinn.core.testing``) passes a NumPy backend that keeps
the contract and fails one that breaks it (that it imports no framework:
``test_protocol.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from core_fake_backend import KitBackend

from ptychopinn.core import ModelMismatchError
from ptychopinn.core.testing import BackendConformance


class TestKitBackendConformance(BackendConformance):
    backend_class = KitBackend


class _NonAtomicImport(KitBackend):
    def import_weights(self, model, weights):  # assigns as it checks: not atomic
        for k, v in weights.items():
            if not np.all(np.isfinite(v)):
                raise ModelMismatchError(k)
            model.weights[k] = v


class _WritesBundle(KitBackend):
    def train(self, *args, **kwargs):
        result = super().train(*args, **kwargs)
        self.save_bundle(result.model, result.output_dir / "wts.h5.zip")
        return result


@pytest.mark.parametrize(
    ("backend_class", "test_name"),
    [
        (_NonAtomicImport, "test_failed_import_leaves_the_model_unchanged"),
        (_WritesBundle, "test_train_does_not_write_the_bundle"),
    ],
)
def test_the_kit_fails_a_backend_that_breaks_the_contract(backend_class, test_name, tmp_path):
    kit = type("Kit", (BackendConformance,), {"backend_class": backend_class})
    trained = kit().run_training(tmp_path)
    with pytest.raises(AssertionError):
        getattr(kit(), test_name)(trained)
