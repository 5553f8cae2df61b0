"""Image and vector metrics: MSE, PSNR, SSIM (scikit-image) and VeC (vector compactness)."""
from __future__ import annotations

import math

import numpy as np


def _f(a) -> np.ndarray:
    a = np.asarray(a.detach().cpu() if hasattr(a, "detach") else a)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    return a.astype(np.float64)


def mse(a, b) -> float:
    """Mean squared error of two images in [0, 1] (uint8 inputs are scaled)."""
    a, b = _f(a), _f(b)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    return float(((a - b) ** 2).mean())


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]; 100 dB for identical images."""
    m = mse(a, b)
    return 100.0 if m <= 1e-10 else 10.0 * math.log10(1.0 / m)


def ssim(a, b) -> float:
    """Structural similarity of two (H, W, 3) images in [0, 1]."""
    from skimage.metrics import structural_similarity

    a, b = _f(a), _f(b)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    return float(structural_similarity(a, b, channel_axis=-1 if a.ndim == 3 else None, data_range=1.0))
