"""Compact mode's shapes: one path per merged region, and where detail circles start, each kept
inside the mask it was seeded in (so a detail stays part of one semantic piece).

Detail centres come two ways: where a circle would cover the most error (:func:`error_centres`), and
drawn with probability proportional to saliency (uniform when there is none), balanced over the
segmenter's masks (a mask's weight divided by its area, so small parts get details as readily as wide
flat ones) and kept off mask borders (:func:`detail_prob`, :func:`detail_centres`).
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

__all__ = ["structural_budget", "detail_prob", "detail_centres", "error_centres", "mask_depth", "Confine", "region_paths",
           "region_colors", "DETAIL_AREA_EXPONENT"]

DETAIL_AREA_EXPONENT = 1.0  # detail seeds: each mask's saliency weight / area^this (see detail_prob)


def structural_budget(paths: int, ratio: float) -> int:
    """Paths of the budget that go to merged regions: round(ratio · paths), at most ``paths``."""
    return int(min(paths, max(0, round(paths * ratio))))


def detail_centres(prob: np.ndarray, n: int, seed: int = 0, spacing: float = 0.0) -> np.ndarray:
    """(n', 2) pixel centres (x, y), n' = min(n, pixels with p > 0), drawn without replacement with
    probability proportional to ``prob`` (H, W) >= 0. With ``spacing`` > 0 no two centres are closer
    than that (px): centres are taken in the same random order (weighted, without replacement), each
    one skipped that lies too near an earlier one, so n' may be smaller (a small marked area holds
    only so many)."""
    p = np.asarray(prob, np.float64).ravel()
    p = np.where(np.isfinite(p) & (p > 0), p, 0.0)
    k = int(min(n, np.count_nonzero(p)))
    if k <= 0:
        return np.zeros((0, 2), np.float32)
    rng = np.random.default_rng(seed)
    w = prob.shape[1]
    if spacing <= 0:
        idx = rng.choice(p.size, size=k, replace=False, p=p / p.sum())
    else:
        # weighted order without replacement (Gumbel top-k), then greedy thinning on a blocked-pixel grid
        cand = np.flatnonzero(p)
        keys = np.log(p[cand]) - np.log(-np.log(rng.uniform(1e-300, 1.0, len(cand))))
        order = cand[np.argsort(-keys, kind="stable")]
        h = prob.shape[0]
        blocked = np.zeros((h, w), bool)
        cr = int(math.ceil(spacing))
        gy, gx = np.mgrid[-cr:cr + 1, -cr:cr + 1]
        near = gy ** 2 + gx ** 2 < spacing ** 2
        picked = []
        for i in order.tolist():
            y, x = divmod(i, w)
            if blocked[y, x]:
                continue
            picked.append(i)
            if len(picked) == k:
                break
            y0, y1, x0, x1 = max(0, y - cr), min(h, y + cr + 1), max(0, x - cr), min(w, x + cr + 1)
            blocked[y0:y1, x0:x1] |= near[y0 - y + cr:y1 - y + cr, x0 - x + cr:x1 - x + cr]
        idx = np.asarray(picked, np.int64)
    return np.stack([idx % w + 0.5, idx // w + 0.5], 1).astype(np.float32)


def error_centres(err: np.ndarray, prior: np.ndarray, n: int, radius: float) -> np.ndarray:
    """(n', 2) pixel centres (x, y), n' <= n, of circles of ``radius`` where they would cover the most
    error: greedily the largest value of ``err`` (H, W) summed over a disk, times ``prior`` (H, W) >=
    0 (0 = no centre there), each pick clearing the centres within 2 · radius of it."""
    from scipy import ndimage as ndi

    r = max(1, int(round(radius)))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float64)
    gain = ndi.correlate(np.asarray(err, np.float64), disk, mode="constant") * np.asarray(prior, np.float64)
    h, w = gain.shape
    out = []
    clear = 2.0 * radius
    for _ in range(int(n)):
        i = int(np.argmax(gain))
        if not gain.flat[i] > 0:
            break
        y, x = divmod(i, w)
        out.append((x + 0.5, y + 0.5))
        y0, y1, x0, x1 = (max(0, int(y - clear)), min(h, int(y + clear) + 1), max(0, int(x - clear)),
                          min(w, int(x + clear) + 1))
        gy, gx = np.mgrid[y0:y1, x0:x1]
        gain[y0:y1, x0:x1][(gy - y) ** 2 + (gx - x) ** 2 <= clear ** 2] = 0.0
    return np.asarray(out, np.float32).reshape(-1, 2)


def mask_depth(labels: np.ndarray) -> np.ndarray:
    """(H, W) distance in px from each pixel centre to the nearest border of its mask (the edge of a
    pixel whose 4-neighbour has another label), i.e. how deep inside its mask a pixel lies."""
    from scipy import ndimage as ndi

    lab = np.asarray(labels)
    edge = np.zeros(lab.shape, bool)
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    edge[:, :-1] |= lab[:, 1:] != lab[:, :-1]
    edge[1:] |= lab[1:] != lab[:-1]
    edge[:-1] |= lab[1:] != lab[:-1]
    return ndi.distance_transform_edt(~edge) + 0.5


def detail_prob(sal: np.ndarray | None, alpha: np.ndarray, labels: np.ndarray | None, radius: float,
                area_exponent: float | None = None) -> np.ndarray:
    """(H, W) sampling weights of detail-circle centres: saliency (None = uniform) × alpha, and with a
    partition ``labels`` (H, W, -1 = none) two priors: a centre lies at least ``radius`` px (or as
    deep as the mask allows) inside its mask, and each mask's weight is divided by
    area^area_exponent; masks smaller than one circle get none. Falls back to saliency × alpha where
    no pixel qualifies."""
    from scipy import ndimage as ndi

    gamma = DETAIL_AREA_EXPONENT if area_exponent is None else area_exponent
    alpha = np.asarray(alpha, np.float64)
    prob = alpha if sal is None else np.asarray(sal, np.float64) * alpha
    if labels is None:
        return prob
    lab = np.asarray(labels)
    dist = mask_depth(lab)
    ok = lab >= 0
    n = int(lab.max()) + 1
    if n <= 0:
        return prob
    deepest = np.asarray(ndi.maximum(dist, lab + 1, np.arange(1, n + 1)), np.float64)
    need = np.minimum(radius, deepest)
    area = np.bincount(lab[ok], minlength=n).astype(np.float64)
    li = np.maximum(lab, 0)
    big = area >= math.pi * radius ** 2  # slivers along edges get no detail seeds
    out = np.where(ok & big[li] & (dist >= need[li]), prob * np.maximum(area[li], 1.0) ** -gamma, 0.0)
    return out if out.sum() > 0 else prob


CONTOUR_SEGMENTS = 64  # most segments of a region's contour (lvss.layering.mask_to_path) without saliency
SALIENT_FINENESS = 2.0  # with a saliency map, the outline of a region the map leaves out is up to this much coarser


def region_paths(region_labels: np.ndarray, m: int, epsilon: float, underlap: int = 0, holes: bool = False,
                 sal: np.ndarray | None = None, memo: dict | None = None):
    """One path per region (outer contour), back to front by filled area (largest first), so that a
    region enclosing others lies behind them. With ``underlap`` > 0, a region's shape also takes the
    pixels within that many px of it that belong to regions in front of it: hidden there, it leaves
    no gap where the simplified contours of two neighbours do not meet exactly. With
    ``holes``, the regions a path encloses stay out of its shape (one path, the holes joined to the
    contour by zero-width bridges, see :func:`lvss.layering.mask_to_path`), so the path covers only
    what it shows. With a saliency map ``sal`` (H, W) in [0, 1], a region of mean saliency s is
    outlined with the tolerance ``epsilon`` / f, f = min(1, SALIENT_FINENESS^(2s - 1)): the regions
    the map leaves out coarser (up to SALIENT_FINENESS times), the ones it marks as without a map.
    Not finer: a tolerance under ``epsilon`` puts the outline's nodes on the mask's pixel steps, a
    start farther from the anti-aliased edge the path stage fits than the smoother outline (OpenMoji
    1F98A and 1F339 with a mask over one object, 16-256 paths: 1.4 dB lower inside the mask on average). A
    coarser region keeps the segment budget of no map: a long thin shape (a drawing's outline
    stroke) capped lower collapses. ``memo``: outlines already traced (by the mask and the tolerances;
    the runs of one budget ladder share many regions). Returns (points list, region ids)."""
    from scipy import ndimage as ndi

    from ..layering import mask_to_path as trace
    from ..render.torch_raster import covered_pixels

    def mask_to_path(mask: np.ndarray, eps: float, segs: int = 64, holes: bool = False):
        if memo is None:
            return trace(mask, eps, segs, holes=holes)
        key = (hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=20).hexdigest(), mask.shape, eps, segs, holes)
        if key not in memo:
            memo[key] = trace(mask, eps, segs, holes=holes)
        return memo[key]

    objs = ndi.find_objects(region_labels + 1, max_label=m)
    h, w = region_labels.shape
    # the order is by the area each region's path covers (its contour, holes filled as the path
    # fills them: a ring closed only at a corner still covers its inside), not the mask's own area
    own = [(r, mask_to_path(region_labels == r, epsilon)) for r in range(m) if objs[r] is not None]
    own = [(r, p) for r, p in own if p is not None]
    cover = covered_pixels([p.points for _, p in own], w, h) if own else []
    items = [(len(c), r) for (r, _), c in zip(own, cover)]
    items.sort(key=lambda t: (-t[0], t[1]))
    rank = np.full(m + 1, -1)
    for k, (_, r) in enumerate(items):
        rank[r] = k
    order = rank[region_labels]  # place of each pixel's region, back to front (-1 outside)
    pts, ids = [], []
    fine = np.ones(m)
    if sal is not None:
        ok = region_labels >= 0
        cnt = np.bincount(region_labels[ok], minlength=m)
        mean = np.bincount(region_labels[ok], np.asarray(sal, np.float64)[ok], minlength=m) / np.maximum(cnt, 1)
        fine = np.minimum(1.0, SALIENT_FINENESS ** (2.0 * np.clip(mean, 0.0, 1.0) - 1.0))
    for k, (_, r) in enumerate(items):
        mask = region_labels == r
        eps, segs = epsilon / fine[r], int(round(CONTOUR_SEGMENTS * max(fine[r], 1.0)))
        if underlap > 0:
            ys, xs = objs[r]
            y0, y1 = max(0, ys.start - underlap), min(h, ys.stop + underlap)
            x0, x1 = max(0, xs.start - underlap), min(w, xs.stop + underlap)
            grown = ndi.binary_dilation(mask[y0:y1, x0:x1], iterations=int(underlap))
            mask = mask.copy()
            mask[y0:y1, x0:x1] |= grown & (order[y0:y1, x0:x1] > k)
        p = mask_to_path(mask, eps, segs, holes=True) if holes else (
            mask_to_path(mask, eps, segs) if underlap > 0 or fine[r] != 1.0 else dict(own)[r])
        if p is not None:
            pts.append(p.points)
            ids.append(r)
    return pts, ids


def region_colors(region_labels: np.ndarray, rgb: np.ndarray, m: int) -> np.ndarray:
    """(m, 3) float32 mean RGB of each region of ``region_labels`` (H, W), -1 ignored."""
    v = region_labels >= 0
    l = region_labels[v]
    area = np.maximum(np.bincount(l, minlength=m), 1)
    return (np.stack([np.bincount(l, rgb[..., c][v], minlength=m) for c in range(3)], 1)
            / area[:, None]).astype(np.float32)


class Confine:
    """Keeps each detail path in the mask its centre was seeded in: after every optimiser step,
    control points more than ``tol`` px outside that mask move to the nearest pixel centre inside it
    (projected gradient descent). Distance fields are computed once per mask, on its bounding box
    grown by ``pad`` px."""

    def __init__(self, labels: np.ndarray, centres: np.ndarray, pad: int, tol: float, device):
        from scipy import ndimage as ndi

        self.tol = tol
        h, w = labels.shape
        objs = ndi.find_objects(labels + 1)
        cache: dict[int, tuple] = {}
        self.items: list[tuple | None] = []
        for x, y in np.asarray(centres).tolist():
            m = int(labels[min(h - 1, int(y)), min(w - 1, int(x))])
            if m < 0 or objs[m] is None:
                self.items.append(None)
                continue
            if m not in cache:
                ys, xs = objs[m]
                y0, y1 = max(0, ys.start - pad), min(h, ys.stop + pad)
                x0, x1 = max(0, xs.start - pad), min(w, xs.stop + pad)
                dist, idx = ndi.distance_transform_edt(labels[y0:y1, x0:x1] != m, return_indices=True)
                near = np.stack([idx[1] + x0 + 0.5, idx[0] + y0 + 0.5], -1).astype(np.float32)
                cache[m] = (x0, y0, torch.from_numpy(dist.astype(np.float32)).to(device),
                            torch.from_numpy(near).to(device))
            self.items.append(cache[m])

    @torch.no_grad()
    def __call__(self, paths: list[torch.Tensor]) -> None:
        for p, item in zip(paths, self.items):
            if item is None:
                continue
            x0, y0, dist, near = item
            fx, fy = torch.floor(p[:, 0]) - x0, torch.floor(p[:, 1]) - y0
            ix = fx.long().clamp(0, dist.shape[1] - 1)
            iy = fy.long().clamp(0, dist.shape[0] - 1)
            # points beyond the crop count as outside (they were clamped onto its border)
            out = (dist[iy, ix] > self.tol) | (ix != fx) | (iy != fy)
            if bool(out.any()):
                p[out] = near[iy[out], ix[out]]
