"""Paths that change nothing a viewer sees: the last pruning pass of both modes.

An optimiser that spends its budget greedily leaves paths behind that it no longer needs: a detail
circle in the colour of the shape under it, a second path over the same area in nearly the same colour.
Each one costs a designer a click to find and delete, and buys no fidelity. A path is *redundant* when
the picture without it differs from the picture with it by no more than ``REDUNDANT_CHANGE`` in any
pixel and channel (premultiplied RGBA, below what a display shows) and its removal raises the squared
error against the target by no more than ``REDUNDANT_ERROR`` per pixel of its bounding box: together,
a change nobody sees that costs no measurable fidelity. Paths are tested front to back, each against
the picture left by the removals before it, so of two redundant paths over one another both go only
when the picture still does not change.

Most paths change some pixel plainly, which one pixel tells: the pixel where the path shows most,
composited without it from the scene's (pixel, path) pairs. Only the paths that pass that test are
rendered, each in its bounding box only (the rasteriser's pixels are independent), with and without it.
"""
from __future__ import annotations

import numpy as np
import torch

# the most a redundant path may change any pixel (any channel, premultiplied, in [0, 1]): two steps
# of an 8-bit display
REDUNDANT_CHANGE = 2.0 / 255.0
# the most its removal may add to the squared error (colour and alpha channels summed), per pixel of
# its bounding box: one 8-bit step in each colour channel over the whole box (a path correcting what
# lies under it by less than that is lost anyway when the SVG writes its colour in 8 bits)
REDUNDANT_ERROR = 3.0 * (1.0 / 255.0) ** 2


def _boxes(points: list[torch.Tensor], width: int, height: int) -> np.ndarray:
    """(N, 4) int pixel boxes x0, y0, x1, y1 (exclusive) around each path's control points, one pixel
    of margin, clipped to the canvas."""
    out = np.zeros((len(points), 4), np.int64)
    for i, p in enumerate(points):
        q = p.detach().cpu().numpy()
        lo, hi = np.floor(q.min(0)) - 1, np.ceil(q.max(0)) + 1
        out[i] = (max(0, lo[0]), max(0, lo[1]), min(width, hi[0]), min(height, hi[1]))
    return out


def _candidates(points: list[torch.Tensor], colors: torch.Tensor, width: int, height: int) -> np.ndarray:
    """(N,) bool: the paths that change the pixel where they show most by no more than
    ``REDUNDANT_CHANGE`` (a redundant path must pass; paths in front going can only make it show more).
    That pixel without the path: the paths under it there, composited."""
    from ..render.torch_raster import scene_pairs

    n = len(points)
    pairs = scene_pairs(points, colors[:, 3], width, height)
    pix, pid = pairs.pix.cpu().numpy(), pairs.pid.cpu().numpy()
    vis = pairs.vis.double().cpu().numpy()
    col = colors.detach().double().clamp(0, 1).cpu().numpy()
    u = pairs.cov.double().cpu().numpy() * col[pid, 3]
    by_pixel = np.lexsort((pid, pix))
    sorted_pix = pix[by_pixel]
    out = np.zeros(n, bool)
    for i, (a, b) in enumerate(pairs.runs):
        if b <= a:
            continue
        k = a + int(np.argmax(vis[a:b]))
        lo, hi = np.searchsorted(sorted_pix, pix[k], "left"), np.searchsorted(sorted_pix, pix[k], "right")
        under = [e for e in by_pixel[lo:hi] if pid[e] < i]
        c, alpha = np.zeros(3), 0.0
        for e in under:   # back to front, premultiplied "over"
            c = u[e] * col[pid[e], :3] + (1.0 - u[e]) * c
            alpha = u[e] + (1.0 - u[e]) * alpha
        change = vis[k] * np.r_[np.abs(col[i, :3] - c), 1.0 - alpha]
        out[i] = change.max() <= REDUNDANT_CHANGE
    return out


def redundant_paths(points: list[torch.Tensor], colors: torch.Tensor, target_c: torch.Tensor,
                    target_a: torch.Tensor, keep: np.ndarray | None = None) -> np.ndarray:
    """(N,) bool: the paths to drop (module doc). points: N (3S, 2) tensors back to front, pixels;
    colors (N, 4) straight RGBA; target_c (H, W, 3) premultiplied, target_a (H, W). ``keep``: (N,)
    bool, paths never dropped (the back layer, which lies under the shapes above it on purpose)."""
    from ..render.torch_raster import render_torch

    n = len(points)
    drop = np.zeros(n, bool)
    if n < 2:
        return drop
    h, w = target_a.shape
    boxes = _boxes(points, w, h)
    alive = np.ones(n, bool)
    maybe = _candidates(points, colors, w, h)
    with torch.no_grad():
        for i in range(n - 1, -1, -1):
            if not maybe[i] or (keep is not None and keep[i]):
                continue
            x0, y0, x1, y1 = boxes[i]
            if x1 <= x0 or y1 <= y0:
                continue
            near = np.flatnonzero(alive & (boxes[:, 0] < x1) & (boxes[:, 2] > x0) & (boxes[:, 1] < y1)
                                  & (boxes[:, 3] > y0))
            shift = torch.tensor([float(x0), float(y0)], dtype=points[i].dtype, device=points[i].device)
            pts = [points[j] - shift for j in near]
            cw, ch = int(x1 - x0), int(y1 - y0)
            tc, ta = target_c[y0:y1, x0:x1], target_a[y0:y1, x0:x1]
            C1, A1 = render_torch(pts, colors[near], cw, ch)
            rest = near != i
            C0, A0 = render_torch([p for p, r in zip(pts, rest) if r], colors[near[rest]], cw, ch)
            change = max(float((C1 - C0).abs().max()), float((A1 - A0).abs().max()))
            if change > REDUNDANT_CHANGE:
                continue
            err1 = float(((C1 - tc) ** 2).sum() + ((A1 - ta) ** 2).sum())
            err0 = float(((C0 - tc) ** 2).sum() + ((A0 - ta) ** 2).sum())
            if err0 - err1 <= REDUNDANT_ERROR * cw * ch:
                drop[i] = True
                alive[i] = False
    return drop
