"""Differentiable rasterizers behind one call.

>>> img = render(scene, background=(1, 1, 1))          # (H, W, 3)
>>> rgba = render(scene)                               # (H, W, 4), straight alpha

Gradients flow to every path's control points and colour. ``renderer="diffvg"`` uses pydiffvg when
it is importable (it must be built from source).
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..scene import Scene, SceneError, _check_canvas
from .torch_raster import GradientFills, pack_fills, render_torch

RENDERERS = ("torch", "diffvg")


def _background(background, height: int, width: int, device, dtype) -> torch.Tensor | None:
    if background is None:
        return None
    bg = torch.as_tensor(background, device=device, dtype=dtype)
    if bg.dim() == 1:
        if bg.shape[0] != 3:
            raise SceneError(f"background colour must have 3 values (RGB), got {bg.shape[0]}")
        bg = bg.view(1, 1, 3).expand(height, width, 3)
    elif bg.shape != (height, width, 3):
        raise SceneError(f"background image must have shape ({height}, {width}, 3), got {tuple(bg.shape)}")
    return bg


def render_paths(points: Sequence[torch.Tensor], colors: torch.Tensor, width: int, height: int,
                 background=None, renderer: str = "torch", samples_per_segment: int = 16,
                 fills=None) -> torch.Tensor:
    """Render paths (back to front) to an image.

    points: N tensors of shape (3S_i, 2), pixels. colors: (N, 4) straight RGBA in [0, 1].
    fills: None (all flat), N per-path fills (None or a scene gradient) or a packed GradientFills.
    background: None (→ (H, W, 4) straight RGBA over transparent), an RGB triple or an (H, W, 3) image
    (→ (H, W, 3) RGB).
    """
    _check_canvas(width, height)
    colors = torch.as_tensor(colors, dtype=torch.float32) if not isinstance(colors, torch.Tensor) else colors
    if colors.dim() != 2 or colors.shape[1] != 4 or colors.shape[0] != len(points):
        raise SceneError(f"colors must have shape (N, 4) with N = {len(points)} paths, got {tuple(colors.shape)}")
    if not bool(torch.isfinite(colors).all()):
        raise SceneError("path colours contain NaN or infinite values")
    if fills is not None and not isinstance(fills, GradientFills):
        if len(fills) != len(points):
            raise SceneError(f"fills must have one entry per path ({len(points)}), got {len(fills)}")
        fills = pack_fills(fills)
    if renderer == "torch":
        C, A = render_torch(list(points), colors, width, height, samples_per_segment, fills=fills)
    elif renderer == "diffvg":
        from .diffvg import render_diffvg

        if fills is not None:
            raise SceneError("the diffvg renderer in lvss draws flat colours only; render gradient fills "
                             "with renderer='torch'")
        C, A = render_diffvg(list(points), colors, width, height)
    else:
        raise SceneError(f"unknown renderer {renderer!r}; choose one of {', '.join(RENDERERS)}")
    bg = _background(background, height, width, C.device, C.dtype)
    if bg is None:
        rgb = C / A.clamp(min=1e-8).unsqueeze(-1)
        rgb = torch.where(A.unsqueeze(-1) > 0, rgb, torch.zeros_like(rgb))
        return torch.cat([rgb, A.unsqueeze(-1)], -1)
    return C + (1.0 - A).unsqueeze(-1) * bg


def render(scene: Scene, background=None, renderer: str = "torch", device=None,
           samples_per_segment: int = 16) -> torch.Tensor:
    """Render a :class:`~lvss.scene.Scene`; see :func:`render_paths`."""
    pts = scene.point_list()
    cols = scene.colors()
    fills = pack_fills(scene.fills())
    if device is not None:
        pts = [p.to(device) for p in pts]
        cols = cols.to(device)
    return render_paths(pts, cols, scene.width, scene.height, background, renderer, samples_per_segment,
                        fills=fills)


__all__ = ["render", "render_paths", "RENDERERS", "GradientFills", "pack_fills"]
