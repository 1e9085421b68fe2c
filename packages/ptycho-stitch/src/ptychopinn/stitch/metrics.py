"""Image-quality metrics: MAE, MSE, PSNR, SSIM, MS-SSIM and Fourier ring correlation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, uniform_filter
from scipy.signal import windows as _windows
from skimage.metrics import structural_similarity

from ptychopinn.stitch.errors import StitchError

SSIM_WINDOW = 7
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Per-scale exponents of Wang, Simoncelli & Bovik (2003), finest scale first."""
_DBL_EPSILON = float(np.finfo(np.float64).eps)
WINDOWS = ("hann", "tukey", None)
"""Apodisation windows of :func:`frc` and :func:`~ptychopinn.stitch.register` (None: none)."""
TUKEY_ALPHA = 0.25
"""Tapered fraction of a Tukey window (1/8 of each side is a cosine ramp)."""


def _pair(target: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(target)
    p = np.asarray(pred)
    if t.ndim != 2 or t.shape != p.shape:
        raise StitchError(
            f"images must be two 2-D arrays of one shape, found target {t.shape} and pred {p.shape}"
        )
    if np.iscomplexobj(t) or np.iscomplexobj(p):
        raise StitchError("metrics take real images (amplitude or phase), found complex input")
    return t.astype(np.float64), p.astype(np.float64)


def mae(target: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute error of two (H, W) real images."""
    t, p = _pair(target, pred)
    return float(np.mean(np.abs(t - p)))


def mse(target: np.ndarray, pred: np.ndarray) -> float:
    """Mean squared error of two (H, W) real images."""
    t, p = _pair(target, pred)
    return float(np.mean((t - p) ** 2))


def data_range(image: np.ndarray) -> float:
    """max - min of an image (the PSNR/SSIM peak)."""
    arr = np.asarray(image, dtype=np.float64)
    return float(arr.max() - arr.min())


def psnr(target: np.ndarray, pred: np.ndarray, peak: float | None = None) -> float:
    """PSNR in dB with peak = target data range unless given; inf for identical images."""
    t, p = _pair(target, pred)
    peak = data_range(t) if peak is None else float(peak)
    err = float(np.mean((t - p) ** 2))
    if err == 0.0:
        return math.inf
    if peak <= 0.0:
        raise StitchError(f"PSNR peak must be > 0, found {peak} (a constant target needs peak=)")
    return 10.0 * math.log10(peak**2 / err)


def psnr_legacy(target: np.ndarray, pred: np.ndarray) -> float:
    """Upstream-comparable PSNR: OpenCV's ``cv2.PSNR`` on raw values, peak 255.

    ``20 log10(255 / (rmse + DBL_EPSILON))`` exactly as upstream ``evaluation.psnr`` got
    it from OpenCV (images are not rescaled to 0..255, so values are large for [0, 1]
    data, and identical images give ~361 dB rather than inf).
    """
    t, p = _pair(target, pred)
    rmse = math.sqrt(float(np.mean((t - p) ** 2)))
    return 20.0 * math.log10(255.0 / (rmse + _DBL_EPSILON))


def ssim(target: np.ndarray, pred: np.ndarray, data_range_: float | None = None) -> float:
    """SSIM (scikit-image, 7x7 uniform window) with data range = target range unless given."""
    t, p = _pair(target, pred)
    if min(t.shape) < SSIM_WINDOW:
        raise StitchError(f"SSIM needs images of at least 7x7 pixels, found {t.shape}")
    rng = data_range(t) if data_range_ is None else float(data_range_)
    if rng <= 0:
        rng = 1.0 if np.array_equal(t, p) else max(data_range(p), 1.0)
    return float(structural_similarity(t, p, win_size=SSIM_WINDOW, data_range=rng))


def ssim_components(
    target: np.ndarray, pred: np.ndarray, data_range_: float
) -> tuple[float, float]:
    """(mean luminance*contrast-structure = SSIM, mean contrast-structure) with skimage's window."""
    t, p = _pair(target, pred)
    k1, k2, win = 0.01, 0.03, SSIM_WINDOW
    c1 = (k1 * data_range_) ** 2
    c2 = (k2 * data_range_) ** 2
    npix = win * win
    cov_norm = npix / (npix - 1.0)
    ux = uniform_filter(t, win)
    uy = uniform_filter(p, win)
    vx = cov_norm * (uniform_filter(t * t, win) - ux * ux)
    vy = cov_norm * (uniform_filter(p * p, win) - uy * uy)
    vxy = cov_norm * (uniform_filter(t * p, win) - ux * uy)
    lum = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1)
    cs = (2 * vxy + c2) / (vx + vy + c2)
    pad = (win - 1) // 2
    inner = (slice(pad, -pad), slice(pad, -pad))
    return float(np.mean((lum * cs)[inner])), float(np.mean(cs[inner]))


def ms_ssim(
    target: np.ndarray,
    pred: np.ndarray,
    data_range_: float | None = None,
    levels: int = 5,
    sigma: float = 0.0,
) -> float:
    """Multi-scale SSIM: prod_j cs_j^w_j * ssim_M^w_M, 2x2-mean downsampling between scales.

    Uses as many scales (at most ``levels``) as keep the image >= 7 px, with the weights
    of the scales used renormalised to sum 1; negative terms are clamped to 0.
    ``sigma`` > 0 smooths both images first (upstream smooths amplitude with sigma=1).
    """
    t, p = _pair(target, pred)
    if not 1 <= levels <= len(MS_SSIM_WEIGHTS):
        raise StitchError(f"levels must be in 1..{len(MS_SSIM_WEIGHTS)}, found {levels}")
    if min(t.shape) < SSIM_WINDOW:
        raise StitchError(f"MS-SSIM needs images of at least 7x7 pixels, found {t.shape}")
    if sigma > 0:
        t = gaussian_filter(t, sigma)
        p = gaussian_filter(p, sigma)
    rng = data_range(t) if data_range_ is None else float(data_range_)
    if rng <= 0:
        rng = 1.0
    used = 1
    while used < levels and min(t.shape) // 2**used >= SSIM_WINDOW:
        used += 1
    weights = np.asarray(MS_SSIM_WEIGHTS[:used])
    weights = weights / weights.sum()
    value = 1.0
    for level in range(used):
        full, cs = ssim_components(t, p, rng)
        term = full if level == used - 1 else cs
        value *= max(term, 0.0) ** weights[level]
        if level < used - 1:
            t, p = _downsample(t), _downsample(p)
    return float(value)


def _downsample(img: np.ndarray) -> np.ndarray:
    h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    return img[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


@dataclass(frozen=True)
class FRCResult:
    """Fourier ring correlation of two images, rings r = 0 .. n//2 (n = square side)."""

    curve: np.ndarray
    """(n//2 + 1,) correlation per ring."""
    nyquist: int
    """Ring of the Nyquist frequency, n//2."""
    frc50: float
    """First crossing below 0.5 in ring units (linear interpolation); nyquist if never."""
    frc17: float
    """First crossing below 1/7 in ring units; nyquist if never."""

    @property
    def frc50_nyquist(self) -> float:
        """0.5 crossing as a fraction of Nyquist."""
        return self.frc50 / self.nyquist

    @property
    def frc17_nyquist(self) -> float:
        """1/7 crossing as a fraction of Nyquist."""
        return self.frc17 / self.nyquist


def _centre_square(img: np.ndarray) -> np.ndarray:
    n = min(img.shape)
    r0 = (img.shape[0] - n) // 2
    c0 = (img.shape[1] - n) // 2
    return img[r0 : r0 + n, c0 : c0 + n]


def window_2d(shape: tuple[int, int], kind: str | None = "hann") -> np.ndarray:
    """(H, W) separable apodisation window, the outer product of two periodic 1-D windows.

    ``kind``: "hann" (0 at the border, 1 at the centre), "tukey" (flat centre, cosine
    ramps over ``TUKEY_ALPHA / 2`` of each side) or None (all ones).
    """
    if kind not in WINDOWS:
        raise StitchError(f"window must be one of {WINDOWS}, found {kind!r}")
    h, w = (int(v) for v in shape)
    if kind is None:
        return np.ones((h, w))
    spec: str | tuple[str, float] = "hann" if kind == "hann" else ("tukey", TUKEY_ALPHA)

    def one(n: int) -> np.ndarray:
        return np.ones(1) if n == 1 else _windows.get_window(spec, n, fftbins=True)

    return np.outer(one(h), one(w))


def apodise(image: np.ndarray, kind: str | None = "hann") -> np.ndarray:
    """(H, W) image minus its window-weighted mean, times the window (``kind`` None: unchanged).

    Removing the mean first keeps the window's own spectrum (and so the image's mean)
    out of the rings near zero frequency; the window takes the border discontinuity of
    a non-periodic image out of the FFT, which would otherwise put the same edge cross
    into both spectra at every frequency.
    """
    arr = np.asarray(image)
    if kind is None:
        return arr
    win = window_2d(arr.shape, kind)
    return (arr - np.sum(win * arr) / np.sum(win)) * win


def frc_crossing(curve: np.ndarray, threshold: float) -> float:
    """First ring (>= 1, linearly interpolated) where curve falls below threshold; len-1 if never."""
    below = np.nonzero(curve[1:] < threshold)[0]
    if below.size == 0:
        return float(len(curve) - 1)
    r = int(below[0]) + 1
    hi, lo = float(curve[r - 1]), float(curve[r])
    if hi <= threshold:  # already below at ring 0 (e.g. a flat image): nothing to interpolate
        return float(r - 1)
    return (r - 1) + (hi - threshold) / (hi - lo)


def frc(
    target: np.ndarray,
    pred: np.ndarray,
    smooth_sigma: float = 0.0,
    window: str | None = "hann",
) -> FRCResult:
    """FRC of two (H, W) images (real or complex; centre-cropped to a square n x n).

    ``FRC(r) = Re sum F1 conj(F2) / sqrt(sum |F1|^2 sum |F2|^2)`` over the ring of
    integer radius r; a ring where both images have no power counts as 1 (they agree
    there). Before the FFTs each image is apodised (:func:`apodise`: minus its
    window-weighted mean, times a 2-D ``window``, "hann" by default, "tukey" or None),
    so the border of a non-periodic image does not correlate the two spectra up to
    Nyquist (without a window a Gaussian blur of sigma 4 px still scored the full
    resolution). With a window the curve ignores a constant offset between the images.
    ``smooth_sigma`` > 0 Gaussian-smooths the curve (upstream option).
    """
    t = np.asarray(target)
    p = np.asarray(pred)
    if t.ndim != 2 or t.shape != p.shape:
        raise StitchError(
            f"images must be two 2-D arrays of one shape, found target {t.shape} and pred {p.shape}"
        )
    t = _centre_square(t)
    p = _centre_square(p)
    n = t.shape[0]
    if n < 2:
        raise StitchError(f"FRC needs at least 2x2 pixels, found {target.shape}")
    f1 = np.fft.fft2(apodise(t, window))
    f2 = np.fft.fft2(apodise(p, window))
    k = np.fft.fftfreq(n) * n
    radius = np.rint(np.hypot(k[:, None], k[None, :])).astype(np.int64).ravel()
    nyq = n // 2
    inside = radius <= nyq
    r = radius[inside]
    num = np.bincount(r, (f1 * np.conj(f2)).real.ravel()[inside], minlength=nyq + 1)
    p1 = np.bincount(r, (np.abs(f1) ** 2).ravel()[inside], minlength=nyq + 1)
    p2 = np.bincount(r, (np.abs(f2) ** 2).ravel()[inside], minlength=nyq + 1)
    den = np.sqrt(p1 * p2)
    scale = max(float(p1.max()), float(p2.max()), 1e-300)
    empty = den <= 1e-12 * scale
    curve = np.where(empty, 0.0, num / np.where(empty, 1.0, den))
    both_empty = (p1 <= 1e-12 * scale) & (p2 <= 1e-12 * scale)
    curve[both_empty] = 1.0
    if smooth_sigma > 0:
        curve = gaussian_filter(curve, smooth_sigma, mode="nearest")
    return FRCResult(
        curve=curve,
        nyquist=nyq,
        frc50=frc_crossing(curve, 0.5),
        frc17=frc_crossing(curve, 1.0 / 7.0),
    )
