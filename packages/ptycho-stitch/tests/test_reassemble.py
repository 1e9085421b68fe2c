"""Reassembly: placement convention, exact recovery, streaming, chunking, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import map_coordinates

from ptychopinn.stitch import (
    Canvas,
    Stitched,
    StitchError,
    canvas_geometry,
    probe_weight,
    reassemble,
)


def extract(obj: np.ndarray, positions: np.ndarray, n: int) -> np.ndarray:
    """patch[i, j] = obj(y - n//2 + i, x - n//2 + j), bilinear, zero outside (METHOD §2/§3)."""
    out = np.empty((len(positions), n, n), dtype=np.result_type(obj.dtype, np.float64))
    ii, jj = np.indices((n, n), dtype=np.float64)
    for k, (x, y) in enumerate(positions):
        coords = [y - n // 2 + ii, x - n // 2 + jj]
        re = map_coordinates(obj.real, coords, order=1, mode="grid-constant", cval=0.0)
        if np.iscomplexobj(obj):
            im = map_coordinates(obj.imag, coords, order=1, mode="grid-constant", cval=0.0)
            out[k] = re + 1j * im
        else:
            out[k] = re
    return out


def reference_stitch(patches: np.ndarray, offsets: np.ndarray, crop: int) -> Stitched:
    """The spec, one patch at a time: translate each zero-padded crop, sum, divide by the ones."""
    (h, w), (x0, y0) = canvas_geometry(offsets, crop)
    n = patches.shape[1]
    s0 = n // 2 - crop // 2
    num = np.zeros((h, w), dtype=np.complex128)
    den = np.zeros((h, w))
    rr, cc = np.indices((h, w), dtype=np.float64)
    for patch, (x, y) in zip(patches, offsets):
        tile = np.asarray(patch[s0 : s0 + crop, s0 : s0 + crop], dtype=np.complex128)
        # canvas (r, c) holds tile(r - py, c - px): a translate of the tile by (px, py).
        coords = [rr - (y - crop // 2 - y0), cc - (x - crop // 2 - x0)]

        def sample(a: np.ndarray, coords: list[np.ndarray] = coords) -> np.ndarray:
            return map_coordinates(a, coords, order=1, mode="grid-constant", cval=0.0)

        num += sample(tile.real) + 1j * sample(tile.imag)
        den += sample(np.ones((crop, crop)))
    cov = den >= 1e-6
    img = np.where(cov, num / np.where(cov, den, 1.0), 0.0)
    return Stitched(image=img, origin=(x0, y0), weights=np.where(cov, den, 0.0))


def random_object(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return rng.uniform(0.2, 1.0, shape) * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))


def truth_under(stitched: Stitched, obj: np.ndarray) -> np.ndarray:
    x0, y0 = (round(v) for v in stitched.origin)
    h, w = stitched.shape
    assert x0 >= 0 and y0 >= 0, "test object too small for the canvas"
    return obj[y0 : y0 + h, x0 : x0 + w]


@pytest.mark.parametrize("method", ["bilinear", "fourier"])
@pytest.mark.parametrize("crop", [8, 9, 16])
def test_integer_positions_recover_the_object(method: str, crop: int) -> None:
    rng = np.random.default_rng(1)
    obj = random_object(rng, (96, 96))
    n = 16
    pos = rng.integers(20, 76, size=(150, 2)).astype(float)
    stitched = reassemble(extract(obj, pos, n), pos, crop=crop, method=method)
    truth = truth_under(stitched, obj)
    cov = stitched.covered
    assert cov.sum() > 0.5 * cov.size
    np.testing.assert_allclose(stitched.image[cov], truth[cov], atol=1e-5)
    assert np.all(stitched.image[~cov] == 0)


def test_subpixel_positions_match_the_spec_reference() -> None:
    rng = np.random.default_rng(2)
    obj = random_object(rng, (80, 80))
    pos = rng.uniform(25, 55, size=(40, 2))
    patches = extract(obj, pos, 16)
    got = reassemble(patches, pos, crop=10)
    ref = reference_stitch(patches, pos, 10)
    assert got.origin == ref.origin
    np.testing.assert_allclose(got.weights, ref.weights, atol=1e-10)
    np.testing.assert_allclose(got.image, ref.image, atol=1e-10)


def test_subpixel_affine_object_recovered_where_fully_covered() -> None:
    # Bilinear interpolation reproduces a + b*x + c*y exactly, so extraction followed by
    # stitching returns the object wherever only whole-weight contributions landed.
    yy, xx = np.indices((90, 90), dtype=float)
    obj = 0.3 + 0.01 * xx + 0.02 * yy + 1j * (0.05 * xx - 0.03 * yy)
    pos = np.array([[45.3, 44.6]])
    stitched = reassemble(extract(obj, pos, 16), pos, crop=10)
    full = np.isclose(stitched.weights, 1.0)
    assert full.sum() == 9 * 9
    np.testing.assert_allclose(stitched.image[full], truth_under(stitched, obj)[full], atol=1e-12)


def test_content_moves_by_plus_offset() -> None:
    # A single bright pixel at the patch centre lands on the object pixel (row=y, col=x).
    patch = np.zeros((1, 8, 8))
    patch[0, 4, 4] = 1.0
    for x, y in [(10.0, 20.0), (3.0, -7.0)]:
        s = reassemble(patch, np.array([[x, y]]), crop=4)
        r, c = np.unravel_index(np.argmax(s.image), s.shape)
        assert (s.origin[0] + c, s.origin[1] + r) == (x, y)


def test_half_pixel_shift_splits_evenly() -> None:
    patch = np.zeros((1, 8, 8))
    patch[0, 4, 4] = 1.0
    s = Canvas((10, 10), (0.0, 0.0), crop=4)
    s.add(patch, np.array([[4.5, 4.0]]))
    out = s.result()
    # numerator 0.5 at cols 4 and 5 of row 4; weights there 1 -> image 0.5 each.
    np.testing.assert_allclose(out.image[4, 4:6], [0.5, 0.5])
    np.testing.assert_allclose(out.weights[4, 2:8], [0.5, 1, 1, 1, 0.5, 0])


def test_geometry_follows_method_section_7() -> None:
    off = np.array([[10.0, 10.0], [20.0, 14.0], [30.0, 18.4]])
    (h, w), (x0, y0) = canvas_geometry(off, crop=20)
    # centre = round(mean) = (20, 14); max |offset - centre| = 10 -> side 20 + 2*10.
    assert (h, w) == (40, 40)
    assert (x0, y0) == (20 - 10 - 10, 14 - 10 - 10)
    (h1, _), _ = canvas_geometry(np.array([[0.0, 0.0], [0.0, 2.5]]), crop=20)
    assert h1 == 20 + 2 * math.ceil(1.5)


def test_shapes_and_dtypes() -> None:
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 30, size=(12, 2))
    real32 = rng.random((12, 16, 16), dtype=np.float32)
    s = reassemble(real32[..., None], pos, crop=8)
    assert s.image.dtype == np.float32 and s.weights.dtype == np.float64
    c64 = real32.astype(np.complex64)
    assert reassemble(c64, pos, crop=8).image.dtype == np.complex64
    c128 = reassemble(c64.astype(np.complex128), pos, crop=8)
    assert c128.image.dtype == np.complex128
    np.testing.assert_allclose(s.image, c128.image.real, atol=1e-5)
    forced = Canvas((40, 40), (-10.0, -10.0), crop=8, dtype=np.complex128)
    forced.add(real32, pos)
    assert forced.result().image.dtype == np.complex128


def test_real_then_complex_chunks_promote() -> None:
    canvas = Canvas((30, 30), (0.0, 0.0), crop=4)
    canvas.add(np.ones((1, 8, 8)), np.array([[10.0, 10.0]]))
    canvas.add(1j * np.ones((1, 8, 8)), np.array([[20.0, 20.0]]))
    img = canvas.result().image
    assert np.iscomplexobj(img)
    assert img[10, 10] == 1 and img[20, 20] == 1j


def test_empty_canvas_result_is_zero() -> None:
    out = Canvas((5, 6), crop=4).result()
    assert out.shape == (5, 6) and not out.covered.any() and np.all(out.image == 0)


@pytest.mark.parametrize("method", ["bilinear", "fourier"])
def test_chunking_and_streaming_do_not_change_the_result(method: str) -> None:
    rng = np.random.default_rng(4)
    pos = rng.uniform(10, 60, size=(53, 2))
    patches = rng.standard_normal((53, 16, 16)) + 1j * rng.standard_normal((53, 16, 16))
    whole = reassemble(patches, pos, crop=10, method=method)
    for chunk in (1, 7, 1000):
        other = reassemble(patches, pos, crop=10, method=method, chunk_size=chunk)
        np.testing.assert_allclose(other.image, whole.image, atol=1e-12)
    shape, origin = canvas_geometry(pos, 10)
    chunks = ((patches[i : i + 10], pos[i : i + 10]) for i in range(0, 53, 10))
    streamed = reassemble(chunks, crop=10, method=method, shape=shape, origin=origin)
    np.testing.assert_allclose(streamed.image, whole.image, atol=1e-12)
    np.testing.assert_allclose(streamed.weights, whole.weights, atol=1e-12)
    assert streamed.origin == whole.origin


def test_patches_outside_an_explicit_canvas_are_dropped() -> None:
    canvas = Canvas((10, 10), (0.0, 0.0), crop=4)
    ones = np.ones((3, 8, 8))
    canvas.add(ones, np.array([[-50.0, 3.0], [1.0, 1.0], [500.0, 500.0]]))
    out = canvas.result()
    assert canvas.n_patches == 3
    # the (1, 1) patch covers rows/cols -1..2; only 0..2 are visible.
    assert out.covered.sum() == 9
    np.testing.assert_allclose(out.image[:3, :3], 1.0)
    canvas.add(ones[:1], np.array([[-50.0, -50.0]]))  # a chunk with nothing visible
    assert canvas.result().covered.sum() == 9


def test_fourier_is_more_accurate_on_a_smooth_object() -> None:
    yy, xx = np.indices((128, 128), dtype=float)
    obj = np.exp(1j * (0.6 * np.sin(2 * np.pi * xx / 32) + 0.4 * np.cos(2 * np.pi * yy / 40)))
    rng = np.random.default_rng(5)
    pos = rng.uniform(48, 80, size=(60, 2))
    # Fourier-sampled patches: the exact object values at sub-pixel positions.
    n = 32
    ii, jj = np.indices((n, n), dtype=float)
    patches = np.stack(
        [
            np.exp(
                1j
                * (
                    0.6 * np.sin(2 * np.pi * (x - n // 2 + jj) / 32)
                    + 0.4 * np.cos(2 * np.pi * (y - n // 2 + ii) / 40)
                )
            )
            for x, y in pos
        ]
    )
    err = {}
    for method in ("bilinear", "fourier"):
        s = reassemble(patches, pos, crop=12, method=method)
        full = s.weights >= 1.0
        err[method] = np.abs(s.image - truth_under(s, obj))[full].max()
    assert err["fourier"] < 0.5 * err["bilinear"]
    assert err["bilinear"] < 0.05


@settings(max_examples=30, deadline=None)
@given(
    xy=st.lists(st.tuples(st.floats(-40, 40), st.floats(-40, 40)), min_size=1, max_size=12),
    crop=st.integers(1, 12),
)
def test_mass_is_conserved(xy: list[tuple[float, float]], crop: int) -> None:
    # Fractions below the 1e-6 support threshold are dropped by design; keep them >= 1e-3.
    pos = np.round(np.array(xy), 3)
    rng = np.random.default_rng(0)
    patches = rng.random((len(pos), 12, 12))
    s = reassemble(patches, pos, crop=crop)
    s0 = 6 - crop // 2
    tiles = patches[:, s0 : s0 + crop, s0 : s0 + crop]
    assert math.isclose(s.weights.sum(), len(pos) * crop * crop, rel_tol=1e-9)
    assert math.isclose((s.image * s.weights).sum(), tiles.sum(), rel_tol=1e-9, abs_tol=1e-9)


def test_coords_offsets_layout_is_accepted() -> None:
    pos = np.array([[5.0, 6.0], [9.0, 7.0]])
    patches = np.ones((2, 8, 8, 1), dtype=np.complex64)
    a = reassemble(patches, pos, crop=4)
    b = reassemble(patches, pos[:, None, :, None], crop=4)
    np.testing.assert_array_equal(a.image, b.image)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"patches": np.ones((2, 8, 8, 4))}, r"4 channels"),
        ({"patches": np.ones((2, 8, 9))}, r"\(B, N, N\)"),
        ({"patches": np.ones((2, 8, 8), dtype=bool)}, "numeric"),
        ({"offsets": np.zeros((3, 2))}, r"\(2, 2\) to match 2 patches"),
        ({"offsets": np.zeros((2, 3))}, r"\(B, 2\)"),
        ({"offsets": np.array([[0.0, np.nan], [0, 0]])}, "finite"),
        ({"crop": 9}, "crop must be <= patch size N=8"),
        ({"crop": 0}, "positive integer"),
        ({"crop": True}, "positive integer"),
        ({"method": "cubic"}, "method must be one of"),
        ({"shape": (10, 10)}, "both shape and origin"),
        ({"offsets": None}, "offsets .* required"),
    ],
)
def test_errors_name_expected_and_found(kwargs: dict, match: str) -> None:
    args = {"patches": np.ones((2, 8, 8)), "offsets": np.zeros((2, 2)), "crop": 4}
    args.update(kwargs)
    with pytest.raises(StitchError, match=match):
        reassemble(**args)


def test_stream_errors() -> None:
    chunks = [(np.ones((1, 8, 8)), np.zeros((1, 2)))]
    with pytest.raises(StitchError, match="needs shape"):
        reassemble(iter(chunks), crop=4)
    with pytest.raises(StitchError, match=r"\(patches, offsets\) pair"):
        reassemble(iter([np.ones((1, 8, 8))]), crop=4, shape=(5, 5), origin=(0, 0))
    with pytest.raises(StitchError, match="at least one"):
        canvas_geometry(np.zeros((0, 2)))
    with pytest.raises(StitchError, match="shape must be"):
        Canvas((0, 5))
    with pytest.raises(StitchError, match="origin must be finite"):
        Canvas((5, 5), (np.inf, 0.0))
    with pytest.raises(StitchError, match="chunk_size"):
        Canvas((5, 5), chunk_size=0)
    with pytest.raises(StitchError, match="dtype"):
        Canvas((5, 5), dtype=np.int32)
    assert isinstance(StitchError("x"), ValueError)


def test_canvas_for_offsets_matches_reassemble() -> None:
    rng = np.random.default_rng(6)
    pos = rng.uniform(0, 20, size=(9, 2))
    patches = rng.random((9, 8, 8))
    canvas = Canvas.for_offsets(pos, crop=4)
    canvas.add(patches, pos)
    np.testing.assert_array_equal(canvas.result().image, reassemble(patches, pos, crop=4).image)


def test_single_precision_matches_double_even_for_fractions_near_one() -> None:
    rng = np.random.default_rng(9)
    pos = np.floor(rng.uniform(10, 50, size=(60, 2))) + rng.choice(
        [1e-4, 0.5, 1 - 1e-4, 1 - 3e-5], (60, 2)
    )
    patches = rng.standard_normal((60, 16, 16)) + 1j * rng.standard_normal((60, 16, 16))
    double = reassemble(patches, pos, crop=8)
    single = reassemble(patches.astype(np.complex64), pos, crop=8)
    np.testing.assert_array_equal(single.covered, double.covered)
    np.testing.assert_allclose(single.image, double.image, atol=2e-5)


# ---------------------------------------------------------------- weighted stitching
def reference_weighted_stitch(
    patches: np.ndarray, offsets: np.ndarray, crop: int, weight: np.ndarray
) -> np.ndarray:
    """The spec of a weight map, one patch at a time: sum(w·tile) / sum(w), both translated."""
    (h, w_), (x0, y0) = canvas_geometry(offsets, crop)
    n = patches.shape[1]
    s0 = n // 2 - crop // 2
    wt = weight[s0 : s0 + crop, s0 : s0 + crop]
    num = np.zeros((h, w_), dtype=np.complex128)
    den = np.zeros((h, w_))
    rr, cc = np.indices((h, w_), dtype=np.float64)
    for patch, (x, y) in zip(patches, offsets):
        tile = np.asarray(patch[s0 : s0 + crop, s0 : s0 + crop], dtype=np.complex128) * wt
        coords = [rr - (y - crop // 2 - y0), cc - (x - crop // 2 - x0)]

        def sample(a: np.ndarray, coords: list[np.ndarray] = coords) -> np.ndarray:
            return map_coordinates(a, coords, order=1, mode="grid-constant", cval=0.0)

        num += sample(tile.real) + 1j * sample(tile.imag)
        den += sample(wt)
    cov = den >= 1e-6
    return np.where(cov, num / np.where(cov, den, 1.0), 0.0)


def test_weighted_subpixel_stitch_matches_the_spec_reference() -> None:
    rng = np.random.default_rng(5)
    n, crop = 16, 12
    patches = random_object(rng, (40, n, n))
    pos = rng.uniform(20, 40, size=(40, 2))
    weight = probe_weight(np.exp(-((np.indices((n, n)) - n // 2) ** 2).sum(0) / 20.0))
    got = reassemble(patches, pos, crop=crop, weight=weight)
    want = reference_weighted_stitch(patches, pos, crop, weight)
    np.testing.assert_allclose(got.image, want, atol=1e-5)
    # uniform weights are the unweighted stitch
    flat = reassemble(patches, pos, crop=crop, weight=np.full((crop, crop), 0.3))
    np.testing.assert_allclose(flat.image, reassemble(patches, pos, crop=crop).image, atol=1e-5)


def test_weight_follows_the_better_lit_patch() -> None:
    """Garbage where a patch's weight is ~0 does not reach the image; uniform weights let it in."""
    rng = np.random.default_rng(2)
    obj = random_object(rng, (96, 96))
    n, crop = 24, 20
    pos = np.array([[x, y] for x in range(30, 66, 3) for y in range(30, 66, 3)], dtype=float)
    patches = extract(obj, pos, n)
    r = np.hypot(*(np.indices((n, n)) - n // 2))
    patches[:, r > 7] = 5.0  # wrong outside the lit disk
    weight = (r <= 7).astype(float)
    good = reassemble(patches, pos, crop=crop, weight=weight)
    bad = reassemble(patches, pos, crop=crop)
    truth = truth_under(good, obj)
    inner = np.zeros(good.shape, dtype=bool)
    inner[15:-15, 15:-15] = True
    np.testing.assert_allclose(good.image[inner], truth[inner], atol=1e-5)
    assert np.abs(bad.image[inner] - truth[inner]).mean() > 1.0


@pytest.mark.parametrize("method", ["bilinear", "fourier"])
def test_weighted_streaming_equals_one_call(method: str) -> None:
    rng = np.random.default_rng(3)
    n, crop = 16, 10
    patches = random_object(rng, (30, n, n))
    pos = rng.uniform(10, 30, size=(30, 2))
    weight = rng.uniform(0.1, 1.0, (n, n))
    once = reassemble(patches, pos, crop=crop, method=method, weight=weight)
    shape, origin = canvas_geometry(pos, crop)
    chunks = ((patches[i : i + 7], pos[i : i + 7]) for i in range(0, 30, 7))
    streamed = reassemble(
        chunks, crop=crop, method=method, shape=shape, origin=origin, weight=weight[3:13, 3:13]
    )
    np.testing.assert_allclose(streamed.image, once.image, atol=1e-5)
    np.testing.assert_allclose(streamed.weights, once.weights, atol=1e-9)


def test_probe_weight_shapes_and_modes() -> None:
    probe = np.zeros((8, 8), dtype=np.complex64)
    probe[2:6, 2:6] = 2j
    probe[4, 4] = 4.0
    w = probe_weight(probe)
    assert w.dtype == np.float64 and w.max() == 1.0 and w[3, 3] == pytest.approx(0.25)
    assert probe_weight(probe, power=1)[3, 3] == pytest.approx(0.5)
    np.testing.assert_allclose(probe_weight(probe[..., None]), w)
    modes = np.stack([probe, probe])
    np.testing.assert_allclose(probe_weight(modes), w)


@pytest.mark.parametrize(
    ("probe", "power", "match"),
    [
        (np.zeros((8, 8)), 2, "zero everywhere"),
        (np.ones((8, 6)), 2, "square"),
        (np.ones(8), 2, r"found \(8,\)"),
        (np.full((8, 8), np.nan), 2, "finite"),
        (np.ones((8, 8)), 0, "positive"),
    ],
)
def test_probe_weight_errors(probe: np.ndarray, power: float, match: str) -> None:
    with pytest.raises(StitchError, match=match):
        probe_weight(probe, power)


@pytest.mark.parametrize(
    ("weight", "match"),
    [
        (np.ones((16, 15)), "square"),
        (np.ones((12, 12)), r"\(N, N\) = \(16, 16\)"),
        (-np.ones((16, 16)), ">= 0"),
        (np.zeros((16, 16)), "zero over the central"),
        (np.ones((16, 16)) * 1j, "real"),
        (np.ones((4, 4)), "at least crop x crop"),
    ],
)
def test_weight_errors_name_expected_and_found(weight: np.ndarray, match: str) -> None:
    patches = np.ones((3, 16, 16))
    with pytest.raises(StitchError, match=match):
        reassemble(patches, np.zeros((3, 2)), crop=8, weight=weight)


def test_phase_weight_takes_modulus_and_phase_from_two_averages() -> None:
    rng = np.random.default_rng(8)
    n, crop = 16, 12
    patches = random_object(rng, (40, n, n))
    pos = rng.uniform(20, 40, size=(40, 2))
    pw = rng.uniform(0.0, 1.0, (n, n))
    both = reassemble(patches, pos, crop=crop, phase_weight=pw)
    plain = reassemble(patches, pos, crop=crop)
    weighted = reassemble(patches, pos, crop=crop, weight=pw)
    lit = weighted.covered
    np.testing.assert_allclose(np.abs(both.image), np.abs(plain.image), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        np.angle(both.image[lit] * np.conj(weighted.image[lit])), 0.0, atol=1e-4
    )
    np.testing.assert_array_equal(both.weights, plain.weights)
    # streamed in chunks: the same
    shape, origin = canvas_geometry(pos, crop)
    chunks = ((patches[i : i + 9], pos[i : i + 9]) for i in range(0, 40, 9))
    streamed = reassemble(chunks, crop=crop, shape=shape, origin=origin, phase_weight=pw)
    np.testing.assert_allclose(streamed.image, both.image, atol=1e-5)
    with pytest.raises(StitchError, match="complex patches"):
        reassemble(np.abs(patches), pos, crop=crop, phase_weight=pw)
