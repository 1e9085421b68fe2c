"""Alignment of a reconstruction with the truth: overlay, registration, phase plane, scale."""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import fourier_shift
from skimage.registration import phase_cross_correlation

from ptychopinn.stitch.canvas import Stitched
from ptychopinn.stitch.errors import StitchError


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
    truth. The stitched origin must be a whole pixel (``reassemble`` always gives one).
    """
    gt = as_image(truth, "truth")
    x0, y0 = stitched.origin
    if x0 != round(x0) or y0 != round(y0):
        raise StitchError(f"stitched origin must be whole pixels to overlay, found {(x0, y0)}")
    x0, y0 = round(x0), round(y0)
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
    reference: np.ndarray, moving: np.ndarray, upsample_factor: int = 20
) -> tuple[float, float]:
    """(dy, dx) that moves ``moving`` onto ``reference`` (phase cross-correlation, sub-pixel)."""
    ref = as_image(reference, "reference")
    mov = as_image(moving, "moving")
    if ref.shape != mov.shape:
        raise StitchError(f"registration needs one shape, found {ref.shape} and {mov.shape}")
    shift, _, _ = phase_cross_correlation(ref, mov, upsample_factor=upsample_factor)
    return float(shift[0]), float(shift[1])


def apply_shift(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """(H, W) image moved by shift (dy, dx): out(y, x) = image(y - dy, x - dx), Fourier, periodic."""
    img = as_image(image)
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
