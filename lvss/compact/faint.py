"""Compact mode's faint translucent areas (a soft drop shadow, a glow).

The mask soup, the merge and the detail circles work where the picture is over half opaque; a
translucent area under that (target alpha between :data:`lvss.optimize.refine.FAINT_ALPHA` and 0.5)
would be left bare. Every piece of the picture (alpha above ``FAINT_ALPHA``, holes filled) that holds
such an area wider than a picture's anti-aliased edge and as large as a detail circle gets one path
behind everything else: its outline, filled with the faint area's mean colour at its mean alpha (the
flat fill closest to it). The opaque paths in front hide it where the picture is opaque. A picture
without such an area (opaque, or flat shapes on transparency, whose anti-aliased edges are a pixel or
two wide) gets none, and nothing changes.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..optimize.refine import FAINT_ALPHA

__all__ = ["faint_areas", "faint_paths", "FAINT_SHARE"]

FAINT_SHARE = 0.25  # faint areas take at most this share of the path budget (the largest first)
EDGE_WIDTH = 3      # px: a faint area no wider than this is an anti-aliased edge, not a translucent area


def faint_areas(alpha: np.ndarray, radius: float, budget: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(piece, faint part) masks (H, W) of every piece of the picture (alpha > FAINT_ALPHA, 4-connected,
    holes filled) holding a translucent area (alpha in (FAINT_ALPHA, 0.5]) that keeps at least a detail
    circle's area (``radius`` px) once opened by :data:`EDGE_WIDTH` px; largest piece first, at most
    ``FAINT_SHARE`` of ``budget``."""
    from scipy import ndimage as ndi

    from ..layering import mask_components

    alpha = np.asarray(alpha, np.float32)
    faint = (alpha > FAINT_ALPHA) & (alpha <= 0.5)
    wide = ndi.binary_opening(faint, np.ones((EDGE_WIDTH, EDGE_WIDTH), bool))
    limit = int(budget * FAINT_SHARE)
    if not wide.any() or limit <= 0:
        return []
    out = []
    for piece in mask_components(alpha > FAINT_ALPHA):
        if (wide & piece).sum() >= math.pi * radius ** 2:
            out.append((piece, faint & piece))
    return out[:limit]


def faint_paths(areas: list[tuple[np.ndarray, np.ndarray]], target_c: torch.Tensor, target_a: torch.Tensor,
                epsilon: float) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One path per area of :func:`faint_areas` (its piece's outline), coloured with the faint part's
    mean colour at its mean alpha: (points list, (n, 4) colours) on ``target_a``'s device. target_c
    (H, W, 3) premultiplied, target_a (H, W)."""
    from ..layering import mask_to_path

    dev = target_a.device
    tc, ta = target_c.cpu().numpy(), target_a.cpu().numpy()
    pts, cols = [], []
    for piece, faint in areas:
        p = mask_to_path(piece, epsilon, max_segments=64)
        if p is None:
            continue
        a = float(ta[faint].mean())
        rgb = np.clip(tc[faint].mean(0) / max(a, 1e-3), 0.0, 1.0)
        pts.append(p.points.to(dev))
        cols.append([*rgb.tolist(), a])
    return pts, torch.tensor(cols, dtype=torch.float32, device=dev).reshape(-1, 4)
