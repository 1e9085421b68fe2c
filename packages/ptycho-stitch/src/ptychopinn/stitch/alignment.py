"""Alignment of a reconstruction with the truth: overlay, registration, phase plane, scale."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import fourier_shift
from skimage.registration import phase_cross_correlation

from ptychopinn.stitch.canvas import Stitched
from ptychopinn.stitch.errors import StitchError
from ptychopinn.stitch.metrics import apodise

PHASE_ALIGN = ("plane", "mean", "none")
EDGES = ("periodic", "reflect")
STRUCTURE_RTOL = 1e-3
"""An image whose std is below this (relative to its mean for amplitudes, in rad for
phases) has nothing to register."""
REGISTER_ITERATIONS = 4
"""Most rounds of :func:`register` (a first estimate, then residuals)."""
MAX_SHIFT_FRACTION = 0.125
"""Default largest registration shift applied, as a fraction of the region's shorter side."""


def as_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return (H, W) from (H, W) or (H, W, 1); raise StitchError otherwise."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise StitchError(f"{name} must be (H, W) or (H, W, 1), found {np.shape(image)}")
    return arr


def overlay(
    stitched: Stitched, truth: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Crop a stitched image and the truth (H, W) to the scanned region they share.

    The region is the bounding box of covered pixels inside the truth, shrunk edge by
    edge (the edge with most uncovered pixels first) until every pixel is covered, so a
    ragged scan border does not count as reconstruction error. Returns (recon,
    truth_crop, (col0, row0)): both (h, w), and the region's top-left pixel in the
    truth.

    A stitched origin that is not a whole pixel (``reassemble`` always gives one; an
    image from elsewhere may not) is rounded to the nearest pixel for the crop, and the
    cropped image is then resampled onto the truth's grid by the remaining fraction
    ``origin - round(origin)``, at most half a pixel each way (Fourier shift of a
    reflect-padded copy, :func:`apply_shift`); one pixel is then trimmed on every side,
    since those pixels were interpolated from the mirrored padding.
    """
    gt = as_image(truth, "truth")
    fx0, fy0 = (float(v) for v in stitched.origin)
    if not (math.isfinite(fx0) and math.isfinite(fy0)):
        raise StitchError(f"stitched origin must be finite (x0, y0) pixels, found {(fx0, fy0)}")
    x0, y0 = round(fx0), round(fy0)
    fraction = (fy0 - y0, fx0 - x0)
    rows = np.nonzero(stitched.covered.any(axis=1))[0]
    cols = np.nonzero(stitched.covered.any(axis=0))[0]
    if rows.size == 0:
        raise StitchError("the stitched image covers no pixel: nothing to evaluate")
    r0 = max(int(rows[0]), -y0)
    r1 = min(int(rows[-1]) + 1, gt.shape[0] - y0)
    c0 = max(int(cols[0]), -x0)
    c1 = min(int(cols[-1]) + 1, gt.shape[1] - x0)
    if r1 <= r0 or c1 <= c0:
        raise StitchError(
            f"the scanned region (rows {y0 + rows[0]}..{y0 + rows[-1]}, cols "
            f"{x0 + cols[0]}..{x0 + cols[-1]}) lies outside the truth of shape {gt.shape}"
        )
    r0, r1, c0, c1 = _fully_covered(stitched.covered, r0, r1, c0, c1)
    if r1 <= r0 or c1 <= c0:
        raise StitchError("no fully covered rectangle in the scanned region: nothing to evaluate")
    recon = stitched.image[r0:r1, c0:c1]
    if fraction != (0.0, 0.0):
        if min(r1 - r0, c1 - c0) < 3:
            raise StitchError(
                f"resampling a fractional origin {(fx0, fy0)} needs a region of at least "
                f"3x3 pixels, found {(r1 - r0, c1 - c0)}"
            )
        recon = trim(apply_shift(recon, fraction, edge="reflect"), 1)
        r0, r1, c0, c1 = r0 + 1, r1 - 1, c0 + 1, c1 - 1
    return recon, gt[y0 + r0 : y0 + r1, x0 + c0 : x0 + c1], (x0 + c0, y0 + r0)


def _fully_covered(cov: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> tuple[int, ...]:
    """Shrink [r0:r1, c0:c1] until cov is all True inside (greedy; may end empty)."""
    while r1 > r0 and c1 > c0:
        holes = np.nonzero(~cov[r0:r1, c0:c1])
        if holes[0].size == 0:
            break
        edges = [
            int((~cov[r0, c0:c1]).sum()),
            int((~cov[r1 - 1, c0:c1]).sum()),
            int((~cov[r0:r1, c0]).sum()),
            int((~cov[r0:r1, c1 - 1]).sum()),
        ]
        if max(edges) > 0:
            side = int(np.argmax(edges))
            cut = 1
        else:
            # Only interior holes: cut the strip reaching the nearest one.
            hr, hc = holes
            depths = [int(hr.min()), int(r1 - r0 - 1 - hr.max()), int(hc.min())]
            depths.append(int(c1 - c0 - 1 - hc.max()))
            side = int(np.argmin(depths))
            cut = depths[side] + 1
        if side == 0:
            r0 += cut
        elif side == 1:
            r1 -= cut
        elif side == 2:
            c0 += cut
        else:
            c1 -= cut
    return r0, r1, c0, c1


def remove_phase_plane(phase: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(H, W) phase minus its least-squares plane a + b*col + c*row (fit on mask if given)."""
    phi = as_image(phase, "phase").astype(np.float64)
    rows, cols = np.indices(phi.shape, dtype=np.float64)
    sel = np.ones(phi.shape, bool) if mask is None else np.asarray(mask, bool)
    if sel.shape != phi.shape:
        raise StitchError(f"mask must be {phi.shape}, found {sel.shape}")
    if sel.sum() < 3:
        raise StitchError(f"a phase plane needs at least 3 pixels, found {int(sel.sum())}")
    design = np.column_stack([np.ones(int(sel.sum())), cols[sel], rows[sel]])
    coef, *_ = np.linalg.lstsq(design, phi[sel], rcond=None)
    return phi - (coef[0] + coef[1] * cols + coef[2] * rows)


def scale_amplitude(recon: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """(recon * s, s) with s = mean(target) / mean(recon) for (H, W) amplitudes."""
    mean_r = float(np.mean(recon))
    if mean_r == 0.0:
        raise StitchError("cannot scale an all-zero reconstruction amplitude")
    s = float(np.mean(target)) / mean_r
    return np.asarray(recon, dtype=np.float64) * s, s


def register(
    reference: np.ndarray,
    moving: np.ndarray,
    upsample_factor: int = 20,
    window: str | None = "hann",
) -> tuple[float, float]:
    """(dy, dx) that moves ``moving`` onto ``reference``, both real (H, W).

    Cross-correlation peak to ``1 / upsample_factor`` px (scikit-image's
    ``phase_cross_correlation`` with ``normalization=None``; its default "phase"
    normalisation whitens the spectrum and, on noisy or blurred non-periodic test copies,
    was off by up to 2 px where plain correlation was off by at most 0.3 px, 1 px for
    blurred bar patterns). Each image is first apodised
    (:func:`~ptychopinn.stitch.metrics.apodise`: minus its window-weighted mean, times a
    2-D ``window``: "hann", "tukey" or None) so that the borders of non-periodic images,
    alike in both, do not pull the peak to zero shift. A window does not move with the
    content, which biases a large shift; so the estimate is refined: the moving image is
    shifted by it (:func:`apply_shift`, reflect-padded) and the residual registered
    again, up to ``REGISTER_ITERATIONS`` times or until the residual is below
    ``1 / upsample_factor`` px.
    """
    ref = as_image(reference, "reference")
    mov = as_image(moving, "moving")
    if ref.shape != mov.shape:
        raise StitchError(f"registration needs one shape, found {ref.shape} and {mov.shape}")
    if isinstance(upsample_factor, bool) or not (
        isinstance(upsample_factor, int | np.integer) and upsample_factor >= 1
    ):
        raise StitchError(f"upsample_factor must be an integer >= 1, found {upsample_factor!r}")
    if np.iscomplexobj(ref) or np.iscomplexobj(mov):
        raise StitchError("registration takes real images (e.g. amplitudes), found complex input")
    ref_w = apodise(ref.astype(np.float64), window)
    mov = mov.astype(np.float64)
    if np.ptp(ref) == 0 or np.ptp(mov) == 0:
        return 0.0, 0.0  # a constant image has nothing to register
    estimate = np.zeros(2)
    for _ in range(REGISTER_ITERATIONS):
        moved = (
            apply_shift(mov, (estimate[0], estimate[1]), edge="reflect") if estimate.any() else mov
        )
        step, _, _ = phase_cross_correlation(
            ref_w, apodise(moved, window), upsample_factor=int(upsample_factor), normalization=None
        )
        estimate += step
        if np.max(np.abs(step)) < 1.0 / upsample_factor:
            break
    return float(estimate[0]), float(estimate[1])


def apply_shift(
    image: np.ndarray, shift: tuple[float, float], edge: str = "periodic"
) -> np.ndarray:
    """(H, W) image moved by shift (dy, dx): out(y, x) = image(y - dy, x - dx) (Fourier shift).

    ``edge="periodic"``: content leaving one side enters the other (exact for periodic
    images). ``edge="reflect"``: the image is mirror-padded by ``ceil(max|shift|) + 16``
    px before the FFT and cropped back, so a non-periodic image does not ring from its
    wrapped-around border; the ``ceil(max|shift|)`` px at each side then hold mirrored
    content (trim them, :func:`shift_margin`). Real in, real out.
    """
    img = as_image(image)
    if edge not in EDGES:
        raise StitchError(f"edge must be one of {EDGES}, found {edge!r}")
    if shift[0] == 0 and shift[1] == 0:
        return img.copy()
    if edge == "reflect":
        pad = shift_margin(shift) + 16
        padded = np.pad(img, pad, mode="reflect")
        return apply_shift(padded, shift)[pad:-pad, pad:-pad]
    moved = np.fft.ifftn(fourier_shift(np.fft.fftn(img), shift))
    return moved if np.iscomplexobj(img) else moved.real


def trim(image: np.ndarray, margin: int) -> np.ndarray:
    """(H, W) image without ``margin`` pixels on each side."""
    if margin <= 0:
        return image
    return image[margin:-margin, margin:-margin]


def shift_margin(shift: tuple[float, float]) -> int:
    """Pixels to trim after a periodic shift so no wrapped content is evaluated."""
    return math.ceil(max(abs(shift[0]), abs(shift[1])))


@dataclass(frozen=True)
class Alignment:
    """A reconstruction and the truth brought onto one grid, as the metrics see them.

    All images are (h, w) float64 over the evaluated region (the scanned, fully covered
    region after registration trimmed its border).
    """

    recon_amplitude: np.ndarray
    """|recon| times ``amplitude_scale``."""
    truth_amplitude: np.ndarray
    """|truth|."""
    recon_phase: np.ndarray
    """angle(recon) in radians after ``phase_align`` (e.g. minus its least-squares plane)."""
    truth_phase: np.ndarray
    """angle(truth) in radians after ``phase_align``."""
    amplitude_scale: float
    """mean(|truth|) / mean(|recon|)."""
    shift: tuple[float, float] | None
    """(dy, dx) px applied to the reconstruction (None: registration off or rejected)."""
    origin: tuple[int, int]
    """(col, row) of the region's top-left pixel in the truth."""
    registration_note: str | None = None
    """How registration deviated from the plain amplitude one: a found shift not applied
    (beyond ``max_shift``), registered on the phase, or not registered; else None."""

    @property
    def shape(self) -> tuple[int, int]:
        """(h, w) of the evaluated region."""
        return self.truth_amplitude.shape  # type: ignore[return-value]

    @property
    def recon(self) -> np.ndarray:
        """(h, w) complex128: the scaled amplitude with the aligned phase."""
        return self.recon_amplitude * np.exp(1j * self.recon_phase)

    @property
    def truth(self) -> np.ndarray:
        """(h, w) complex128: the truth amplitude with the aligned phase."""
        return self.truth_amplitude * np.exp(1j * self.truth_phase)


def align(
    recon: Stitched | np.ndarray,
    truth: np.ndarray,
    *,
    register: bool = True,
    upsample_factor: int = 20,
    max_shift: float | None = None,
    phase_align: str = "plane",
) -> Alignment:
    """Bring a complex reconstruction onto the complex truth (METHOD §8), for metrics and figures.

    ``recon`` is a :class:`Stitched` (cropped with the truth to the scanned region by
    :func:`overlay`, which also resamples a fractional origin) or an (H, W) / (H, W, 1)
    array already on the grid of ``truth`` (same shape). Steps:

    1. ``register`` (default on): the sub-pixel shift (dy, dx) of the amplitudes
       (:func:`register`, ``1 / upsample_factor`` px; of the plane-removed phases when
       the truth amplitude has no structure) is applied to the complex reconstruction
       (Fourier shift of a reflect-padded copy), and ``ceil(max|shift|)`` px are
       trimmed from every side of both images. A found shift larger than ``max_shift``
       px (default ``MAX_SHIFT_FRACTION`` of the region's shorter side) is taken as a
       failed registration (no common structure) and not applied. ``registration_note``
       says when either happened.
    2. Amplitude scaled by mean(|truth|) / mean(|recon|) (:func:`scale_amplitude`).
    3. Phase: ``phase_align`` "plane" removes each image's least-squares plane, "mean"
       its mean, "none" nothing.
    """
    if phase_align not in PHASE_ALIGN:
        raise StitchError(f"phase_align must be one of {PHASE_ALIGN}, found {phase_align!r}")
    if isinstance(recon, Stitched):
        rec, gt, origin = overlay(recon, truth)
    else:
        rec = as_image(recon, "recon")
        gt = as_image(truth, "truth")
        if rec.shape != gt.shape:
            raise StitchError(
                f"recon and truth must have one shape (or pass the Stitched result), "
                f"found {rec.shape} and {gt.shape}"
            )
        origin = (0, 0)
    rec = rec.astype(np.complex128)
    gt = gt.astype(np.complex128)
    shift = None
    note = None
    if register:
        found, note = _registration_shift(gt, rec, upsample_factor)
        limit = MAX_SHIFT_FRACTION * min(rec.shape) if max_shift is None else float(max_shift)
        if max(abs(found[0]), abs(found[1])) > limit:
            note = (
                f"registration found a shift (dy, dx) = ({found[0]:.2f}, {found[1]:.2f}) px, "
                f"more than max_shift = {limit:.3g} px: not applied (no common structure?)"
            )
        else:
            shift = found
            rec = apply_shift(rec, shift, edge="reflect")
            m = shift_margin(shift)
            rec, gt = trim(rec, m), trim(gt, m)
            origin = (origin[0] + m, origin[1] + m)
            if min(rec.shape) < 7:
                raise StitchError(
                    f"after registration (shift {shift[0]:.2f}, {shift[1]:.2f} px) only "
                    f"{rec.shape} pixels remain to evaluate; at least 7x7 are needed"
                )
    amp_r, scale = scale_amplitude(np.abs(rec), np.abs(gt))
    phi_t = np.angle(gt)
    phi_r = np.angle(rec)
    if phase_align == "plane":
        phi_t, phi_r = remove_phase_plane(phi_t), remove_phase_plane(phi_r)
    elif phase_align == "mean":
        phi_t, phi_r = phi_t - phi_t.mean(), phi_r - phi_r.mean()
    return Alignment(
        recon_amplitude=amp_r,
        truth_amplitude=np.abs(gt),
        recon_phase=phi_r,
        truth_phase=phi_t,
        amplitude_scale=scale,
        shift=shift,
        origin=origin,
        registration_note=note,
    )


def _registration_shift(
    truth: np.ndarray, recon: np.ndarray, upsample_factor: int
) -> tuple[tuple[float, float], str | None]:
    """The shift moving ``recon`` onto ``truth`` (complex (h, w)) and a note on how it was found.

    Amplitudes are registered; a truth whose amplitude has no structure (relative std
    below ``STRUCTURE_RTOL``, a phase-only object) is registered on the phases after
    plane removal instead, and one with neither is not registered.
    """
    amp_t = np.abs(truth)
    mean_t = float(np.mean(amp_t))
    if float(np.std(amp_t)) > STRUCTURE_RTOL * max(mean_t, np.finfo(np.float64).tiny):
        return register(amp_t, np.abs(recon), upsample_factor=upsample_factor), None
    phi_t = remove_phase_plane(np.angle(truth))
    if float(np.std(phi_t)) > STRUCTURE_RTOL:
        phi_r = remove_phase_plane(np.angle(recon))
        shift = register(phi_t, phi_r, upsample_factor=upsample_factor)
        return shift, "registered on the phase: the truth amplitude has no structure"
    return (0.0, 0.0), "not registered: the truth has neither amplitude nor phase structure"
