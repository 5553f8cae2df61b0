"""Classical (no weights) simplification sequence: step 1 of the layered method without SDS.

The image is cut into piecewise-flat regions with sharp, pixel-exact boundaries, and each coarser
level removes more detail from the previous one:

1. an over-segmentation (Felzenszwalb's graph method) gives a fine partition that follows the edges;
2. per level, greedy region merging lowers the piecewise-constant Mumford–Shah energy
   ``E = sum_p |J_p - c_region(p)|^2 + lambda * boundary_length`` (J: the working image of step 5):
   two neighbouring regions merge when the rise of the data term, ``n_i n_j / (n_i + n_j) *
   |c_i - c_j|^2``, is below ``lambda`` times the length of their shared boundary (cheapest first);
   ``lambda`` grows with the level and is scaled by the image's colour variance, so a low-contrast
   photograph is not flattened at once;
3. regions that are thin (inscribed radius below ``r``) and not large, or simply small, are removed and
   their pixels handed to the nearest surviving region (a Voronoi split), so an outline between a face
   and the background goes half to each and whole objects stay whole;
4. a majority vote of the region labels over a small disc straightens pixel jaggies along the
   boundaries, and tiny slivers left by step 3 are absorbed by a neighbour;
5. every region is painted with the mean colour of a working image: the original, except that each
   absorbed pixel is repainted with the colour of the region that took it, so an absorbed black
   stroke does not tint the face that swallows it.

Coarseness is a fraction ``f = k / levels`` in (0, 1], so the coarsest level looks the same whatever the
number of levels; ``SimplifyConfig.smooth_strength`` scales every knob at once.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..config import SimplifyConfig
from ..types import SimplifyResult, check_rgb_image

# Schedules from the finest (f -> 0) to the coarsest (f = 1) level. Lengths are pixels at a 256 x 256
# canvas (scaled with sqrt(H W) / 256); areas are fractions of the image.
_LAMBDA = (0.05, 1.0)        # Mumford–Shah boundary weight (colour^2 * px per px of boundary), geometric
_DETAIL = (1.0, 8.0)         # detail size in px, geometric: thinner regions go (radius), smaller ones go
_MIN_AREA_PER_DETAIL2 = 4.0  # (area below (2 * detail)^2)
_THIN_MAX_AREA = (2e-3, 1.2e-2)  # thin regions at least this large stay (outlines, rings), geometric
_REF_VARIANCE = 0.25         # colour variance at which lambda is used as is


def _interp(pair: tuple[float, float], f: float) -> float:
    lo, hi = pair
    return lo * (hi / lo) ** f


@dataclass(frozen=True)
class _LevelParams:
    lam: float
    thin_radius: float
    thin_max_area: float
    min_area: float


def _level_params(f: float, height: int, width: int, strength: float, contrast: float) -> _LevelParams:
    scale = math.sqrt(height * width) / 256.0
    n = height * width
    detail = strength * scale * _interp(_DETAIL, f)
    return _LevelParams(
        lam=strength * contrast * _interp(_LAMBDA, f),
        thin_radius=detail,
        thin_max_area=n * _interp(_THIN_MAX_AREA, f),
        min_area=max(2.0, _MIN_AREA_PER_DETAIL2 * detail * detail),
    )


# -- region adjacency graph and greedy Mumford–Shah merging ----------------------------------------
def _adjacency(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4-neighbour region adjacency: (a, b, shared boundary length in pixel edges), a < b."""
    r = int(labels.max()) + 1
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    diff = a != b
    a, b = a[diff].astype(np.int64), b[diff].astype(np.int64)
    key, length = np.unique(np.minimum(a, b) * r + np.maximum(a, b), return_counts=True)
    return key // r, key % r, length


def _relabel_sequential(root: np.ndarray, labels: np.ndarray) -> np.ndarray:
    _, inv = np.unique(root, return_inverse=True)
    return inv.reshape(-1)[labels]


def _merge_regions(labels: np.ndarray, work: np.ndarray, lam: float, min_regions: int,
                   min_area: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy Mumford–Shah region merging (piecewise-constant energy, step 2 of the module doc).

    labels: (H, W) int, 0..R-1. work: (H, W, 3) float64, the working image (step 5).
    Merges cheapest-first while the merge threshold is below ``lam`` and more than ``min_regions``
    remain; then each region smaller than ``min_area`` pixels is absorbed by its cheapest neighbour,
    which keeps its own colour (the absorbed pixels are repainted with it in the returned working
    image). Returns (H, W) int labels 0..R'-1 and the working image.
    """
    r = int(labels.max()) + 1
    flat = labels.ravel()
    npx = np.bincount(flat, minlength=r).astype(np.float64).tolist()
    w = list(npx)       # pixels whose colour counts towards the region's mean (absorbed ones do not)
    s = np.stack([np.bincount(flat, work[..., c].ravel(), minlength=r) for c in range(3)], 1).tolist()
    ea, eb, el = _adjacency(labels)
    adj: list[dict[int, int]] = [dict() for _ in range(r)]
    for i, j, ln in zip(ea.tolist(), eb.tolist(), el.tolist()):
        adj[i][j] = ln
        adj[j][i] = ln
    parent = list(range(r))
    alive = [True] * r
    absorbed = [False] * r
    count = r

    def cost(i: int, j: int) -> float:
        # lambda at which merging i and j lowers E: data-term rise / shared boundary length
        wi, wj = w[i], w[j]
        si, sj = s[i], s[j]
        d = ((si[0] / wi - sj[0] / wj) ** 2 + (si[1] / wi - sj[1] / wj) ** 2
             + (si[2] / wi - sj[2] / wj) ** 2)
        return wi * wj / (wi + wj) * d / adj[i][j]

    heap: list[tuple[float, int, int]] = []

    def merge(i: int, j: int, absorb: bool = False) -> None:
        """j joins i (the larger one unless ``absorb``: then i keeps its colour as is)."""
        nonlocal count
        if not absorb and (npx[j] > npx[i] or (npx[j] == npx[i] and j < i)):
            i, j = j, i
        npx[i] += npx[j]
        if absorb:
            absorbed[j] = True
        else:
            w[i] += w[j]
            s[i] = [s[i][0] + s[j][0], s[i][1] + s[j][1], s[i][2] + s[j][2]]
        alive[j] = False
        parent[j] = i
        count -= 1
        del adj[i][j]
        del adj[j][i]
        for k, ln in adj[j].items():
            del adj[k][j]
            v = adj[i].get(k, 0) + ln
            adj[i][k] = v
            adj[k][i] = v
            # only the edges the smaller region brought in are queued again; the others are
            # re-evaluated lazily when popped, and by the next full pass
            if not absorb:
                heapq.heappush(heap, (cost(i, k), min(i, k), max(i, k)))
        adj[j] = {}

    while count > min_regions:
        # one pass: fresh costs for every edge, then cheapest-first with lazy re-evaluation
        heap = [(cost(i, j), i, j) for i in range(r) if alive[i] for j in adj[i] if i < j]
        heapq.heapify(heap)
        merged = 0
        while heap and heap[0][0] < lam and count > min_regions:
            c, a, b = heapq.heappop(heap)
            if not (alive[a] and alive[b]) or b not in adj[a]:
                continue
            now = cost(a, b)
            if now > c * (1 + 1e-9) + 1e-12:
                heapq.heappush(heap, (now, a, b))
                continue
            merge(a, b)
            merged += 1
        if merged == 0:
            break
    small = sorted((i for i in range(r) if alive[i] and npx[i] < min_area), key=lambda i: (npx[i], i))
    for i in small:
        if alive[i] and npx[i] < min_area and adj[i] and count > 1:
            merge(min(adj[i], key=lambda k: (cost(i, k), k)), i, absorb=True)
    # roots, and whether any step on a label's way to its root was an absorption
    root = np.asarray(parent)
    gone = np.asarray(absorbed)
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        gone = gone | gone[root]
        root = nxt
    if gone.any():
        mean = np.asarray(s) / np.asarray(w)[:, None]
        px = gone[labels]
        work = np.where(px[..., None], mean[root[labels]], work)
    return _relabel_sequential(root, labels), work


# -- removal of thin and small regions --------------------------------------------------------------
def _boundary(labels: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels with a 4-neighbour of another label or on the image border."""
    b = np.zeros(labels.shape, bool)
    d = labels[:, 1:] != labels[:, :-1]
    b[:, 1:] |= d
    b[:, :-1] |= d
    d = labels[1:, :] != labels[:-1, :]
    b[1:, :] |= d
    b[:-1, :] |= d
    b[0, :] = b[-1, :] = True
    b[:, 0] = b[:, -1] = True
    return b


def _absorb_thin(labels: np.ndarray, work: np.ndarray, thin_radius: float, thin_max_area: float,
                 min_area: float) -> tuple[np.ndarray, np.ndarray]:
    """Step 3: hand thin-and-not-large or small regions to the nearest surviving region, pixelwise.

    Only thick survivors take pixels (a large outline survives but does not swallow the fills it
    encloses). Returns new labels (4-connected components, 0..R'-1) and the working image with every
    absorbed pixel repainted in the colour of the region that took it (step 5).
    """
    r = int(labels.max()) + 1
    area = np.bincount(labels.ravel(), minlength=r)
    inside = ndi.distance_transform_edt(~_boundary(labels))
    thin = np.asarray(ndi.maximum(inside, labels, index=np.arange(r))) < thin_radius
    remove = (thin & (area < thin_max_area)) | (area < min_area)
    if remove.all():
        remove[np.argmax(area)] = False
    gone = remove[labels]
    if not gone.any():
        return labels, work
    takers = ~remove & ~thin
    if not takers.any():
        takers = ~remove
    idx = ndi.distance_transform_edt(~takers[labels], return_distances=False, return_indices=True)
    new = np.where(gone, labels[idx[0], idx[1]], labels)
    # colours of the takers over their own pixels; absorbed pixels are repainted with them
    flat = labels.ravel()
    mean = np.stack([np.bincount(flat, work[..., c].ravel(), minlength=r) for c in range(3)], 1)
    mean /= np.maximum(area, 1)[:, None]
    work = np.where(gone[..., None], mean[new], work)
    return _components(new), work


def _smooth_boundaries(labels: np.ndarray, work: np.ndarray, radius: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Majority vote of the labels over a disc: straightens pixel jaggies along region boundaries.

    Pixels that change region are repainted with their new region's colour (step 5).
    """
    r = int(labels.max()) + 1
    if radius < 1 or r < 2 or r > np.iinfo(np.uint16).max:
        return labels, work
    voted = _majority(labels, radius)
    changed = voted != labels
    if not changed.any():
        return labels, work
    keep = ~changed
    flat = voted.ravel()
    n = np.bincount(flat, keep.ravel(), minlength=r)
    mean = np.stack([np.bincount(flat, (work[..., c] * keep).ravel(), minlength=r) for c in range(3)], 1)
    mean /= np.maximum(n, 1)[:, None]
    work = np.where(changed[..., None] & (n[voted] > 0)[..., None], mean[voted], work)
    return _components(voted), work


def _majority(labels: np.ndarray, radius: int) -> np.ndarray:
    """The most common label over a disc of ``radius`` pixels (x² + y² <= r²) around every pixel; pixels
    outside the image do not vote and a tie goes to the smallest label: the same as scikit-image's
    ``filters.rank.majority(labels, morphology.disk(radius))``, which is used for large discs. Small
    discs (the working size's) are voted here, on the sorted stack of shifted label images: faster,
    and without importing ``skimage.morphology`` (with scipy.spatial and scipy.linalg) into every run.
    Labels must be below 65535 (uint16, the last value marks pixels outside the image)."""
    if radius > 3:  # the stack grows with the disc's area, scikit-image's sliding histogram with its side
        from skimage.filters.rank import majority
        from skimage.morphology import disk

        return majority(labels.astype(np.uint16), disk(radius)).astype(labels.dtype)
    h, w = labels.shape
    outside = np.iinfo(np.uint16).max
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    offsets = np.argwhere(yy * yy + xx * xx <= radius * radius)
    pad = np.pad(labels.astype(np.uint16), radius, constant_values=outside)
    votes = np.stack([pad[dy:dy + h, dx:dx + w] for dy, dx in offsets])   # (K, H, W)
    votes.sort(axis=0)
    # runs of equal labels in the sorted votes: a longer run wins, so the first (smallest) label keeps a tie
    best = votes[0].copy()                  # never outside: the pixel itself votes
    best_n = np.ones((h, w), np.int16)
    run = np.ones((h, w), np.int16)
    for k in range(1, votes.shape[0]):
        run = np.where(votes[k] == votes[k - 1], run + 1, 1).astype(np.int16)
        longer = (run > best_n) & (votes[k] != outside)
        np.copyto(best_n, run, where=longer)
        np.copyto(best, votes[k], where=longer)
    return best.astype(labels.dtype)


def _components(labels: np.ndarray) -> np.ndarray:
    """Split every label into its 4-connected components; labels 0..R-1."""
    from skimage.measure import label as cc

    return cc(labels + 1, background=0, connectivity=1) - 1


def _paint(labels: np.ndarray, work: np.ndarray) -> np.ndarray:
    """Step 5: each region in the mean colour of the working image under it; (H, W, 3) float32."""
    r = int(labels.max()) + 1
    flat = labels.ravel()
    n = np.bincount(flat, minlength=r).astype(np.float64)
    mean = np.stack([np.bincount(flat, work[..., c].ravel(), minlength=r) for c in range(3)], 1)
    return np.clip(mean / np.maximum(n, 1)[:, None], 0.0, 1.0).astype(np.float32)[labels]


def _oversegment(image: np.ndarray) -> np.ndarray:
    from skimage.segmentation import felzenszwalb

    h, w = image.shape[:2]
    if h * w < 4:
        return np.arange(h * w).reshape(h, w)
    # a fine partition; the merging below decides what survives
    labels = felzenszwalb(image, scale=10.0, sigma=0.5, min_size=3)
    return _components(labels)


def simplify_levels(image: np.ndarray, levels: int, cfg: SimplifyConfig | None = None
                    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Like :func:`simplify_classical` but also returns each coarser level's (H, W) int region labels."""
    cfg = cfg or SimplifyConfig()
    img = check_rgb_image(image, min_side=1)
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 0:
        raise ValueError(f"levels must be an integer >= 0 (number of coarser images), got {levels!r}")
    strength = float(cfg.smooth_strength)
    if not math.isfinite(strength) or strength <= 0:
        raise ValueError(f"smooth_strength must be a positive number, got {cfg.smooth_strength!r}")
    h, w = img.shape[:2]
    out = [img.copy()]
    all_labels: list[np.ndarray] = []
    if levels == 0:
        return out, all_labels
    img64 = img.astype(np.float64)
    # lambda relative to the image's own contrast, so a low-contrast photo is not flattened at once
    contrast = float(np.clip(img64.reshape(-1, 3).var(0).sum() / _REF_VARIANCE, 0.1, 2.0))
    labels = _oversegment(img)
    work = img64.copy()
    for k in range(1, int(levels) + 1):
        p = _level_params(k / levels, h, w, strength, contrast)
        labels, work = _merge_regions(labels, work, p.lam, 1, 0.0)
        labels, work = _absorb_thin(labels, work, p.thin_radius, p.thin_max_area, p.min_area)
        labels, work = _smooth_boundaries(labels, work, max(1, int(round(p.thin_radius / 4))))
        # absorption can leave slivers of a split region: fold the tiny ones into a neighbour
        labels, work = _merge_regions(labels, work, 0.0, 1, p.min_area)
        out.append(_paint(labels, work))
        all_labels.append(labels)
    return out, all_labels


def simplify_classical(image: np.ndarray, levels: int, seed: int = 0,
                       cfg: SimplifyConfig | None = None) -> SimplifyResult:
    """Original plus ``levels`` coarser piecewise-flat images.

    image: (H, W, 3) float RGB in [0, 1]. Returns ``SimplifyResult(levels=[I_0, I_1, ..., I_L])``, each
    (H, W, 3) float32 in [0, 1]; ``I_0`` is the input, ``I_k`` has flat regions with sharp boundaries and
    fewer of them as k grows. ``seed`` is accepted for the Simplifier interface: the method draws no
    random numbers, so the result depends only on the image, ``levels`` and ``cfg.smooth_strength``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    images, _ = simplify_levels(image, levels, cfg)
    return SimplifyResult(levels=images)


__all__ = ["simplify_classical", "simplify_levels"]
