"""Image and vector metrics: MSE, PSNR, SSIM (scikit-image), the pipeline's composite metrics (one
function for both modes) and VeC (vector compactness)."""
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


def composite_metrics(C, A, target_c, target_a) -> dict:
    """The metrics of a vectorization run (both modes): MSE and PSNR (dB) of the result against the
    target, both composited over white (what a viewer shows), at the working resolution.

    C, target_c: (H, W, 3) premultiplied colour; A, target_a: (H, W) alpha (torch tensors or arrays).
    """
    if hasattr(C, "detach"):  # torch: computed in the tensors' own precision, on their device
        import torch

        with torch.no_grad():
            img = C + (1.0 - A).unsqueeze(-1)
            ref = target_c + (1.0 - target_a).unsqueeze(-1)
            m = float(((img - ref) ** 2).mean())
    else:
        m = mse(_f(C) + (1.0 - _f(A))[..., None], _f(target_c) + (1.0 - _f(target_a))[..., None])
    return {"mse": m, "psnr": 100.0 if m <= 1e-10 else 10.0 * math.log10(1.0 / m)}


def scene_metrics(points, colors, target_c, target_a) -> dict:
    """:func:`composite_metrics` of the paths ``points`` (list of (3S, 2) tensors, back to front, on
    the targets' device) drawn in ``colors`` (N, 4) by lvss's rasterizer on the targets' canvas; an
    empty scene is the empty canvas."""
    import torch

    from .render.torch_raster import render_torch

    h, w = target_a.shape
    with torch.no_grad():
        if len(points):
            C, A = render_torch(points, colors, w, h)
        else:
            C, A = torch.zeros_like(target_c), torch.zeros_like(target_a)
    return composite_metrics(C, A, target_c, target_a)


def ssim(a, b) -> float:
    """Structural similarity of two (H, W, 3) images in [0, 1]."""
    from skimage.metrics import structural_similarity

    a, b = _f(a), _f(b)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    return float(structural_similarity(a, b, channel_axis=-1 if a.ndim == 3 else None, data_range=1.0))


# -- VeC (vector compactness) ------------------------------------------------------------------------
def _binary_stack(masks, name: str, threshold: float) -> np.ndarray:
    """(K, H, W) bool from a bool or coverage-valued array-like (coverage > threshold)."""
    m = np.asarray(masks.detach().cpu() if hasattr(masks, "detach") else masks)
    if m.ndim != 3:
        raise ValueError(f"{name} must have shape (K, H, W), got {m.shape}")
    return m if m.dtype == bool else m > threshold


def vec(path_masks, region_masks, inside: float = 0.85, threshold: float = 0.5) -> float:
    """Vector compactness: how well paths keep to single semantic regions (higher is better, in [0, 1]).

    path_masks: (P, H, W) bool or coverage in [0, 1] of every path's own shape (not its visible part);
    region_masks: (R, H, W) bool (or coverage) of the semantic regions; coverage counts where it exceeds
    ``threshold``. For each region, take the paths that overlap it (at least one shared pixel) and the
    share of them with more than ``inside`` of their area inside the region; VeC is the mean of that
    share over the regions that some path overlaps. NaN when no path overlaps any region.
    """
    if not 0.0 < inside <= 1.0:
        raise ValueError(f"inside must be a fraction in (0, 1], got {inside}")
    p = _binary_stack(path_masks, "path_masks", threshold)
    r = _binary_stack(region_masks, "region_masks", threshold)
    if p.shape[1:] != r.shape[1:]:
        raise ValueError(f"path masks are {p.shape[1:]} but region masks {r.shape[1:]}; "
                         "render both at one size")
    if len(p) == 0 or len(r) == 0:
        return float("nan")
    pf = p.reshape(len(p), -1).astype(np.float32)
    rf = r.reshape(len(r), -1).astype(np.float32)
    inter = pf @ rf.T                                  # (P, R) shared pixels
    area = pf.sum(1, keepdims=True)                    # (P, 1)
    overlaps = inter > 0
    kept = overlaps & (inter > inside * area)
    n_over = overlaps.sum(0)
    has = n_over > 0
    if not has.any():
        return float("nan")
    return float((kept.sum(0)[has] / n_over[has]).mean())


def scene_path_masks(scene, threshold: float = 0.5) -> np.ndarray:
    """(P, H, W) bool: each path's own filled shape (coverage > threshold), back to front, on the
    scene's canvas (every path rendered alone, opaque)."""
    import torch

    from .render import render_paths

    out = np.zeros((scene.num_paths, scene.height, scene.width), bool)
    one = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    with torch.no_grad():
        for i, p in enumerate(scene.paths()):
            a = render_paths([p.points.detach().float()], one, scene.width, scene.height)[..., 3]
            out[i] = a.numpy() > threshold
    return out


def svg_region_masks(svg, size: int = 256, threshold: float = 0.5, min_pixels: int = 1) -> np.ndarray:
    """(R, size, size) bool semantic regions of an SVG (path text, bytes or a file path): the filled
    shape of every element path (parsed with :func:`lvss.svg.svg_to_scene`), empty ones dropped."""
    import os

    from .svg import read_svg, svg_to_scene

    if isinstance(svg, (bytes, bytearray)) or (isinstance(svg, str) and svg.lstrip().startswith("<")):
        scene = svg_to_scene(svg, size, size)
    elif isinstance(svg, (str, os.PathLike)):
        scene = read_svg(svg, size, size)
    else:
        raise ValueError(f"svg must be SVG text, bytes or a file path, got {type(svg).__name__}")
    masks = scene_path_masks(scene, threshold)
    return masks[masks.sum((1, 2)) >= min_pixels]   # (0, size, size) for an SVG of strokes only
