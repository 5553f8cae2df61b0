"""Compact mode's faint translucent areas (a soft drop shadow, a glow).

The mask soup, the merge and the detail circles work where the picture is over half opaque; a
translucent area under that (target alpha between :data:`lvss.scene.FAINT_ALPHA` and 0.5)
would be left bare. Every piece of the picture (alpha above ``FAINT_ALPHA``, holes filled) that holds
such an area wider than a picture's anti-aliased edge and as large as a detail circle gets up to
:data:`FAINT_LEVELS` nested paths behind everything else, the way a designer steps a soft shadow:
its faint alphas quantised to that many levels (Lloyd's iterations: each level the mean alpha of the
pixels nearest to it, a pixel nearer to 0 than to the first level left out), each level's path the
outline of the pixels at that level or above, at the alpha and colour that make the stack show the
level's mean. The opaque paths in front hide them where the picture is opaque. A picture without
such an area (opaque, or flat shapes on transparency, whose anti-aliased edges are a pixel or two
wide) gets none, and nothing changes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..scene import FAINT_ALPHA

__all__ = ["FaintArea", "faint_areas", "faint_paths", "faint_taken", "FAINT_SHARE", "FAINT_LEVELS"]

FAINT_SHARE = 0.25  # faint areas take at most this share of the path budget (the largest first)
FAINT_LEVELS = 2    # nested paths (alpha levels) per faint area at most
EDGE_WIDTH = 3      # px: a faint area no wider than this is an anti-aliased edge, not a translucent area
LLOYD_ITERS = 20


@dataclass
class FaintArea:
    """One faint area's levels, back to front: ``masks[j]`` (H, W) the pixels at level j or above
    (the opaque ones under them too), ``bands[j]`` the faint pixels at level j exactly, ``alphas[j]``
    the level's mean alpha (what the stack of paths up to j shows)."""
    masks: list[np.ndarray]
    bands: list[np.ndarray]
    alphas: list[float]


def _levels(a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, levels) (k,) of the faint alphas ``a`` quantised to 0 and k levels (Lloyd's
    iterations from the quantiles); a level's pixels are those from its threshold up."""
    lv = np.quantile(a, (np.arange(k) + 0.5) / k)
    th = lv
    for _ in range(LLOYD_ITERS):
        edges = np.concatenate([[0.0], lv])
        th = np.maximum((edges[:-1] + edges[1:]) / 2, FAINT_ALPHA)
        idx = np.searchsorted(th, a, side="right")
        if any(not (idx == j + 1).any() for j in range(k)):
            break
        new = np.array([a[idx == j + 1].mean() for j in range(k)])
        if np.allclose(new, lv):
            break
        lv = new
    return th, lv


def faint_areas(alpha: np.ndarray, radius: float) -> list[FaintArea]:
    """The :class:`FaintArea` of every piece of the picture (alpha > FAINT_ALPHA, 4-connected, holes
    filled) holding a translucent area (alpha in (FAINT_ALPHA, 0.5]) that keeps at least a detail
    circle's area (``radius`` px) once opened by :data:`EDGE_WIDTH` px; largest piece first. An area
    gets as many levels (up to :data:`FAINT_LEVELS`) as keep every level's band that large."""
    from scipy import ndimage as ndi

    from ..layering import mask_components

    alpha = np.asarray(alpha, np.float32)
    faint = (alpha > FAINT_ALPHA) & (alpha <= 0.5)
    least = math.pi * radius ** 2

    def wide(m):
        return int(ndi.binary_opening(m, np.ones((EDGE_WIDTH, EDGE_WIDTH), bool)).sum()) >= least

    if not wide(faint):
        return []
    out = []
    for piece in mask_components(alpha > FAINT_ALPHA):
        if not wide(faint & piece):
            continue
        mine = faint & piece
        for k in range(FAINT_LEVELS, 0, -1):
            th, lv = _levels(alpha[mine], k)
            masks = [piece & (alpha > t) for t in th]
            bands = [m & mine & ~masks[j + 1] if j + 1 < k else m & mine for j, m in enumerate(masks)]
            if k == 1 or all(wide(b) for b in bands):
                out.append(FaintArea(masks, bands, [float(v) for v in lv]))
                break
    return out


def faint_taken(areas: list[FaintArea], budget: int) -> list[FaintArea]:
    """The areas (largest first) a run at ``budget`` draws: their paths at most ``FAINT_SHARE`` of it."""
    limit, used, out = int(budget * FAINT_SHARE), 0, []
    for area in areas:
        if used + len(area.masks) > limit:
            break
        out.append(area)
        used += len(area.masks)
    return out


def faint_paths(areas: list[FaintArea], target_c: torch.Tensor, target_a: torch.Tensor,
                epsilon: float) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The paths of :func:`faint_areas`, each area's levels back to front (a level's outline, its
    alpha and colour such that the stack shows the level's mean alpha and colour): (points list,
    (n, 4) colours) on ``target_a``'s device. target_c (H, W, 3) premultiplied, target_a (H, W)."""
    from ..layering import mask_to_path

    dev = target_a.device
    tc = target_c.cpu().numpy()
    pts, cols = [], []
    for area in areas:
        below_a, below_c = 0.0, np.zeros(3)  # what the area's paths so far show (alpha, premultiplied)
        for mask, band, level in zip(area.masks, area.bands, area.alphas):
            p = mask_to_path(mask, epsilon, max_segments=64)
            if p is None:
                continue
            # over what is below: level = a + (1 - a) below_a, premultiplied shown = a c + (1 - a) below_c
            a = float(np.clip(1.0 - (1.0 - level) / max(1.0 - below_a, 1e-6), 1e-3, 1.0))
            shown = tc[band].mean(0)
            rgb = np.clip((shown - (1.0 - a) * below_c) / a, 0.0, 1.0)
            pts.append(p.points.to(dev))
            cols.append([*rgb.tolist(), a])
            below_a, below_c = a + (1.0 - a) * below_a, a * rgb + (1.0 - a) * below_c
    return pts, torch.tensor(cols, dtype=torch.float32, device=dev).reshape(-1, 4)
