"""Nodes where the picture needs them: midway through the polish, the segments along which the
rendered picture is furthest from the target are halved.

The contour fits give every outline nodes by one rule (within ``CURVE_TOL`` of its mask's outline),
whether the pixels along a stretch need them or not, and a node buys fidelity only where the
polish has an edge to line up that one segment does not follow. Once half the polish has run, the
remaining error says where that is: the squared error of every pixel (colour and alpha), spread to
its 3 x 3 neighbours (an edge that is off shows on either side of it), summed along each segment
(its mean at ``_SAMPLES`` points times its length) gives each segment's share of the error, and the
``share`` of all segments with the most error are halved at their middle (de Casteljau: the same
curve, so nothing moves), which the rest of the polish then moves apart. Segments under
``MIN_LENGTH`` px are left whole (halves of a pixel would be stubs), and so is a path whose halved
curve, flattened as the polish's guard flattens it (``GUARD_PIECES`` pieces a segment), crosses
itself where the whole one did not (a loop the guard read as a kink).

Measured on the 12 bundled OpenMoji at 64 paths (resvg, 1x; `bench/editability.py --paths 64
--no-vtracer`), with the contour fit's neighbouring segments joined where one cubic follows both
(:func:`lvss.geometry.curvefit.fit_contour`, which alone gives 12.0 nodes per path and 42.52 dB):
every segment halved before the polish, 25.9 nodes per path and 43.69 dB (before: 12.9, 43.14); the
10 % with the most error halved before the polish 14.2 / 43.52; halved halfway through it, 13.1 /
43.57; 5 % halfway (``OptimizeConfig.polish_split``) 12.5 / 43.37 dB.
"""
from __future__ import annotations

import numpy as np
import torch

from ..geometry.guard import GUARD_KINK, GUARD_PIECES
from ..geometry.simple import crossing_counts, segments_of
from ..render.torch_raster import render_torch

__all__ = ["split_where_wrong", "halved", "MIN_LENGTH", "SPLIT_AT"]

SPLIT_AT = 0.5    # share of the polish's full-size steps taken before the split

MIN_LENGTH = 2.0   # pixels: shorter segments are not halved
_SAMPLES = 16      # points per segment at which the error is read


def halved(points: torch.Tensor, which: np.ndarray) -> torch.Tensor:
    """The closed cubic path ``points`` (3S, 2) with the segments ``which`` (bool (S,)) each split at
    t = 1/2 into two (the same curve)."""
    seg = segments_of(points)
    a, b, c, d = seg[:, 0], seg[:, 1], seg[:, 2], seg[:, 3]
    ab, bc, cd = (a + b) / 2, (b + c) / 2, (c + d) / 2
    abc, bcd = (ab + bc) / 2, (bc + cd) / 2
    mid = (abc + bcd) / 2
    whole = torch.stack([a, b, c], 1)
    split = torch.stack([a, ab, abc, mid, bcd, cd], 1)
    rows = [split[j] if which[j] else whole[j] for j in range(len(seg))]
    return torch.cat(rows, 0)


def split_where_wrong(points: list[torch.Tensor], colors: torch.Tensor, target_c: torch.Tensor,
                      target_a: torch.Tensor, share: float) -> list[torch.Tensor]:
    """The paths ``points`` (each (3S, 2), back to front, drawn in ``colors`` (N, 4)) with the
    ``share`` of all their segments that carry the most error against the target (premultiplied
    colour (H, W, 3), alpha (H, W)) halved (see the module docstring); paths without such a segment
    are returned as they are."""
    from scipy import ndimage

    total = sum(len(p) // 3 for p in points)
    n = int(round(share * total))
    if n <= 0 or not points:
        return list(points)
    h, w = target_a.shape
    with torch.no_grad():
        C, A = render_torch(points, colors, w, h)
        err = (((C - target_c) ** 2).sum(-1) + (A - target_a) ** 2).cpu().numpy().astype(np.float64)
    err = ndimage.maximum_filter(err, size=3)
    u = np.linspace(0.5 / _SAMPLES, 1.0 - 0.5 / _SAMPLES, _SAMPLES)[:, None, None]
    v = 1.0 - u
    scores, owner = [], []
    for k, p in enumerate(points):
        seg = segments_of(p.detach().cpu().double().numpy())
        xy = v ** 3 * seg[None, :, 0] + 3 * v * v * u * seg[None, :, 1] + 3 * v * u * u * seg[None, :, 2] \
            + u ** 3 * seg[None, :, 3]                                                    # (K, S, 2)
        length = np.sqrt((np.diff(xy, axis=0) ** 2).sum(-1)).sum(0) * _SAMPLES / (_SAMPLES - 1)
        x = np.clip(np.floor(xy[..., 0]).astype(np.int64), 0, w - 1)
        y = np.clip(np.floor(xy[..., 1]).astype(np.int64), 0, h - 1)
        scores.append(np.where(length >= MIN_LENGTH, err[y, x].mean(0) * length, -np.inf))
        owner.append(np.full(len(length), k))
    score, owner = np.concatenate(scores), np.concatenate(owner)
    top = np.argsort(-score, kind="stable")[:n]
    top = top[np.isfinite(score[top]) & (score[top] > 0)]
    pick = np.zeros(len(score), bool)
    pick[top] = True
    out, first = [], 0
    for k, p in enumerate(points):
        s = len(p) // 3
        mine = pick[first:first + s]
        first += s
        out.append(halved(p.detach(), mine) if mine.any() else p)
    # the guard flattens every segment into as many pieces, so a halved curve is drawn finer: a loop
    # that its coarser flattening read as a kink would now show. Such a path stays whole
    changed = [k for k in range(len(points)) if out[k] is not points[k]]
    if changed:
        before = crossing_counts([points[k].detach() for k in changed], GUARD_PIECES, min_loop=GUARD_KINK)
        after = crossing_counts([out[k] for k in changed], GUARD_PIECES, min_loop=GUARD_KINK)
        for k, b, a in zip(changed, before.tolist(), after.tolist()):
            if a > b:
                out[k] = points[k]
    return out
