"""The generic workflow: input checks, grouping, stitching, run_cdi_example."""

import copy
import inspect

import numpy as np
import pytest
from core_fake_backend import NumpyBackend

from ptychopinn.config import ExecutionConfig, ModelConfig
from ptychopinn.core import (
    Backend,
    DataError,
    ModelMismatchError,
    bind_run_cdi_example,
    check_data,
    group_input,
    run_cdi_example,
    stitch_at_group_centres,
    stitch_phase_weight,
)
from ptychopinn.data import group
from ptychopinn.data.physics import extract
from ptychopinn.stitch import probe_weight, reassemble


@pytest.fixture
def grouped(scan):
    return group(scan, gridsize=1, n_groups=24, seed=0)


def test_check_data_accepts_fitting_data(grouped):
    check_data(grouped, ModelConfig(N=64))


def test_check_data_names_what_is_wrong(grouped):
    with pytest.raises(ModelMismatchError, match="gridsize=2"):
        check_data(grouped, ModelConfig(N=64, gridsize=2))
    with pytest.raises(DataError, match="GroupedData, got list"):
        check_data([1], ModelConfig(N=64))
    with pytest.raises(DataError, match="no groups"):
        check_data(grouped.subset(np.arange(0)), ModelConfig(N=64))
    bad = grouped.subset(np.arange(4))
    bad.X = bad.X.copy()
    bad.X[0, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match=r"train\.X holds 1 non-finite"):
        check_data(bad, ModelConfig(N=64), "train")
    scaled = grouped.subset(np.arange(4))
    scaled.intensity_scale = 0.0
    with pytest.raises(DataError, match="intensity_scale"):
        check_data(scaled, ModelConfig(N=64))


def test_group_input_groups_scans_and_passes_grouped_data(scan, grouped, config):
    assert group_input(grouped, config, 0) is grouped
    g = group_input(scan, config.replace(n_groups=24), 5)
    assert len(g) == 24 and g.X.shape[1:] == (64, 64, 1)
    np.testing.assert_array_equal(g.nn_indices, group(scan, n_groups=24, seed=5).nn_indices)
    with pytest.raises(DataError, match="ScanData or GroupedData"):
        group_input(object(), config, 0)
    broken = copy.copy(scan)
    broken.diffraction = scan.diffraction.copy()
    broken.diffraction[0, 0, 0] = np.inf
    with pytest.raises(DataError, match="non-finite"):
        group_input(broken, config, 0)


def test_stitch_at_group_centres_puts_the_truth_back(scan, grouped):
    patches = extract(grouped.object, grouped.coords_offsets[:, 0, :, 0], 64)
    offsets = grouped.coords_offsets[:, 0, :, 0]
    uniform = stitch_at_group_centres(patches[..., None], grouped, crop=20, weight="uniform")
    direct = reassemble(patches, offsets, crop=20)
    np.testing.assert_array_equal(uniform.image, direct.image)
    assert uniform.origin == direct.origin and uniform.covered.any()
    # the default: the phase weighted by the probe intensity, the modulus uniform
    weighted = stitch_at_group_centres(patches[..., None], grouped, crop=20)
    by_probe = reassemble(patches, offsets, crop=20, phase_weight=probe_weight(grouped.probe))
    np.testing.assert_array_equal(weighted.image, by_probe.image)
    assert not np.allclose(weighted.image, uniform.image)
    np.testing.assert_allclose(np.abs(weighted.image), np.abs(uniform.image), rtol=1e-5)


def test_stitch_at_group_centres_weight_choices(scan, grouped):
    patches = np.ones((len(grouped), 64, 64), dtype=np.complex64)
    with pytest.raises(DataError, match="one of \\('probe', 'uniform'\\), found 'gauss'"):
        stitch_at_group_centres(patches, grouped, weight="gauss")
    # merged groups (gridsize 2) are not lit by one probe: stitched uniformly
    g2 = group(scan, gridsize=2, n_groups=12, seed=0)
    merged = np.ones((len(g2), 64, 64), dtype=np.complex64)
    a = stitch_at_group_centres(merged, g2, weight="probe")
    b = stitch_at_group_centres(merged, g2, weight="uniform")
    np.testing.assert_array_equal(a.image, b.image)
    assert stitch_phase_weight("probe", g2) is None


def test_run_cdi_example_trains_predicts_stitches(scan, config):
    backend = NumpyBackend()
    assert isinstance(backend, Backend)
    ex = ExecutionConfig(inference_batch_size=7)
    amp, phase, results = run_cdi_example(backend, scan, scan, config, execution=ex)
    ((train_g, test_g, cfg, execution),) = backend.train_calls
    assert execution is ex and cfg is config
    assert len(train_g) == len(test_g) == 100  # one group per scan point
    assert results["backend"] == "numpy-test"
    assert results["train_result"].model.predict_calls == [7]
    assert results["history"] == {"train_loss": [2.0, 1.0], "lr": [1e-3, 1e-3]}
    assert results["patches"].shape == (100, 64, 64, 1)
    assert results["test_data"] is test_g
    assert amp.shape == phase.shape == results["stitched"].image.shape
    np.testing.assert_allclose(amp, np.abs(results["stitched"].image))
    # The backend returns the true patches: the stitched image matches the object.
    assert "metrics_error" not in results
    assert results["metrics"]["amplitude"]["ssim"] > 0.95


def test_run_cdi_example_default_execution_and_no_stitching(scan, config):
    backend = NumpyBackend()
    amp, phase, results = backend.run_cdi_example(scan, scan, config, do_stitching=False)
    assert amp is None and phase is None and "stitched" not in results
    assert backend.train_calls[0][3] == ExecutionConfig()
    assert results["train_result"].model.predict_calls == [ExecutionConfig().inference_batch_size]


def test_bound_run_cdi_example_has_the_signature_without_backend(scan, config):
    bound = bind_run_cdi_example(NumpyBackend)
    params = list(inspect.signature(bound).parameters)
    assert params == [
        "train_data",
        "test_data",
        "config",
        "do_stitching",
        "execution",
        "stitch_crop",
    ]
    assert bound.__name__ == "run_cdi_example" and "NumpyBackend" in bound.__doc__
    _, _, results = bound(scan, scan, config, False)
    assert results["backend"] == "numpy-test"


def test_run_cdi_example_takes_the_photon_count_from_the_data(config):
    """The issue's case: a scan simulated at 1e6 photons trains with s0 = sqrt(1e6)/32
    through run_cdi_example as through ``ptychopinn train`` (it used the 1e9 default)."""
    from ptychopinn.data import PhotonCountWarning, simulate
    from ptychopinn.data.physics import intensity_scale_closed_form

    scan = simulate("lines", n_images=40, N=64, object_size=128, seed=2, nphotons=1e6)
    backend = NumpyBackend()
    run_cdi_example(backend, scan, scan, config, do_stitching=False)
    train_g, test_g = backend.train_calls[0][:2]
    want = intensity_scale_closed_form(1e6, 64)
    assert train_g.intensity_scale == pytest.approx(want)
    assert test_g.intensity_scale == pytest.approx(want)
    run_cdi_example(backend, scan, scan, config.replace(nphotons=1e9), do_stitching=False)
    assert backend.train_calls[1][0].intensity_scale == pytest.approx(
        intensity_scale_closed_form(1e9, 64)
    )
    # No metadata: the mean counts of the training scan, for the test scan too, said once.
    bare = copy.copy(scan)
    bare.metadata = {}
    other = copy.copy(scan)
    other.metadata = {}
    other.diffraction = scan.diffraction * 2
    with pytest.warns(PhotonCountWarning) as record:
        run_cdi_example(backend, bare, other, config, do_stitching=False)
    assert len(record) == 1
    mean = float(np.mean(np.sum(scan.diffraction.astype(np.float64) ** 2, axis=(1, 2))))
    train_g, test_g = backend.train_calls[2][:2]
    assert train_g.intensity_scale == pytest.approx(np.sqrt(mean) / 32)
    assert test_g.intensity_scale == pytest.approx(train_g.intensity_scale)
