"""How compact mode splits its path budget between merged regions (structure) and detail circles.

``CompactConfig.structural_ratio`` a number r in [0, 1]: round(r · N) structural paths, the rest
details (the recolouring paper's split is r = 0.4). ``None`` (the default): the split follows the
picture and the budget (:func:`adaptive_split`).

The adaptive split never gives structure less than the paper's share (``MIN_SHARE``); it predicts,
for a few candidate counts K of structural regions between that and N, the weighted squared
error the picture would keep with K regions and N - K detail circles, and takes the K with the least:

* K regions: the greedy Ward merge of the mask graph down to K regions (the hierarchy the merge
  works on; cheap) filled with their weighted mean colours: E_fill(K) = Σ_regions (Σw|I|² - |Σw I|²/Σw);
* N - K details: on the residual of that fill, disc-shaped patches of ``detail_radius`` placed
  greedily where a flat disc (at the residual's mean under it) removes the most error, none closer
  than two radii to another. Circles are placed by saliency, not only where the error is, and their
  gain is discounted by ``DETAIL_EFFICIENCY``.

A picture of a few flat colour regions (clip art) needs every region it has before a circle helps, so
small budgets go (almost) entirely to structure; large budgets on such pictures, once the regions
explain the colours, leave the rest to details. Near-ties (within ``TIE_DB`` of the least predicted
error) go to details: a circle keeps to one shape where a merged region may straddle several (VeC).
A budget never gets fewer regions than a smaller budget of ``LADDER`` would (16, 24, 32, 64, 128, 256
are on it), so the prediction's slips cannot make the budget curve drop by taking a region away.
"""
from __future__ import annotations

import math

import numpy as np

from .graph import MaskGraph, coarsen, greedy_merge

__all__ = ["split_budget", "adaptive_split", "adaptive_splits", "half_octaves", "fill_error", "detail_gains", "LADDER", "DETAIL_EFFICIENCY", "MIN_SHARE"]

DETAIL_EFFICIENCY = 0.35  # share of a disc's ideal gain a detail circle realises (sampled by saliency,
#                           confined to its mask, fitted with the rest)
MIN_SHARE = 0.4           # the adaptive split keeps at least the paper's share of the budget for structure
TIE_DB = 0.3             # predicted errors this close (dB) to the least count as a tie
CANDIDATES = 9            # structural counts tried between MIN_SHARE · N and N


def half_octaves(start: int, below: int) -> list[int]:
    """The half-octave ladder ``start``, 1.5 ``start``, 2 ``start``, 3 ``start``, 4 ``start``, ... up to
    and not including ``below`` (both of compact mode's ladders: the split's and the runs')."""
    out, k = [], 0
    while True:
        for t in (start << k, (3 * start // 2) << k):
            if t >= below:
                return out
            out.append(t)
        k += 1


LADDER = tuple(half_octaves(8, 1025))  # smaller budgets checked: 8, 12, 16, 24, ..., 768, 1024
LADDER_CANDIDATES = 5     # structural counts tried at each of those


def fill_error(g: MaskGraph) -> float:
    """Weighted squared error of the partition ``g`` filled with its regions' weighted mean colours."""
    return float(np.maximum(g.wsq - (g.wcol ** 2).sum(1) / np.maximum(g.wsum, 1e-12), 0.0).sum())


def detail_gains(residual: np.ndarray, weight: np.ndarray | None, n: int, radius: float) -> np.ndarray:
    """(n' + 1,) cumulative error removed by the first 0..n' of up to ``n`` flat discs of ``radius`` on
    ``residual`` (H, W, 3), placed greedily (each disc takes the residual's weighted mean under it;
    discs at least 2 · radius apart; n' < n where no place with a gain is left)."""
    from scipy import ndimage as ndi

    if n <= 0:
        return np.zeros(1)
    r = max(1, int(round(radius)))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float64)
    w = np.ones(residual.shape[:2]) if weight is None else np.asarray(weight, np.float64)
    ws = ndi.correlate(w, disk, mode="constant")
    gain = np.zeros_like(ws)
    for c in range(residual.shape[2]):
        s = ndi.correlate(w * residual[..., c], disk, mode="constant")
        gain += s * s
    gain /= np.maximum(ws, 1e-12)
    h, wd = gain.shape
    clear = 2.0 * radius
    cr = int(math.ceil(clear))
    gy, gx = np.mgrid[-cr:cr + 1, -cr:cr + 1]
    near = gy ** 2 + gx ** 2 <= clear ** 2
    picks = [0.0]
    for _ in range(int(n)):
        i = int(np.argmax(gain))
        g = float(gain.flat[i])
        if not g > 0:
            break
        picks.append(g)
        y, x = divmod(i, wd)
        y0, y1, x0, x1 = max(0, y - cr), min(h, y + cr + 1), max(0, x - cr), min(wd, x + cr + 1)
        gain[y0:y1, x0:x1][near[y0 - y + cr:y1 - y + cr, x0 - x + cr:x1 - x + cr]] = 0.0
    return np.cumsum(picks)


def _candidates(n: int, count: int) -> list[int]:
    lo = max(1, int(round(MIN_SHARE * n)))  # never less structure than the paper's split
    return sorted({min(n, max(lo, int(round(lo + (n - lo) * t / max(count - 1, 1))))) for t in range(count)})


def _tie_pick(pred: dict[int, float]) -> int:
    """The fewest structural paths whose predicted error is within TIE_DB of the least: a detail circle
    keeps to one shape where a region may straddle several (VeC), so near-ties go to details."""
    best = min(pred.values())
    return min(c for c, e in pred.items() if e <= best * 10.0 ** (TIE_DB / 10.0))


def adaptive_split(graph: MaskGraph, atoms: np.ndarray, rgb: np.ndarray, weight: np.ndarray | None,
                   paths: int, radius: float) -> tuple[int, dict]:
    """Structural paths for a budget of ``paths`` on the picture whose atoms (H, W, -1 outside) form
    ``graph`` (see the module docstring). ``weight`` (H, W) is the loss's per-pixel weight (None =
    uniform). Returns (K, {K: predicted error} of the candidates tried at this budget).

    So that a larger budget never gets fewer regions (the budget curve does not drop where the
    prediction errs), K is the largest of the picks at this budget and at every smaller budget of
    ``LADDER``; all of them share one Ward hierarchy and one greedy disc placement per K."""
    return adaptive_splits(graph, atoms, rgb, weight, [paths], radius)[int(paths)]


def adaptive_splits(graph: MaskGraph, atoms: np.ndarray, rgb: np.ndarray, weight: np.ndarray | None,
                    budgets: list[int], radius: float) -> dict[int, tuple[int, dict]]:
    """:func:`adaptive_split` at each of ``budgets`` (the budget ladder's rungs), the same results as
    one call per budget from one Ward hierarchy and one greedy disc placement per K for all of them
    (the placement is greedy, so a longer one starts with every shorter one)."""
    out: dict[int, tuple[int, dict]] = {}
    plans: dict[int, tuple[list[int], dict[int, list[int]]]] = {}
    for n in sorted({int(b) for b in budgets}):
        if n <= 1:
            out[n] = (n, {n: 0.0})
            continue
        steps = [b for b in LADDER if b < n] + [n]
        plans[n] = (steps, {b: _candidates(b, CANDIDATES if b == n else LADDER_CANDIDATES) for b in steps})
    if not plans:
        return out
    need: dict[int, int] = {}  # every K tried, and the largest budget it is tried at
    for steps, cands in plans.values():
        for b in steps:
            for k in cands[b]:
                need[k] = max(need.get(k, 0), b)
    valid = atoms >= 0
    w = None if weight is None else np.asarray(weight, np.float64)
    img = np.asarray(rgb, np.float64)
    cur, mapping = graph, np.arange(graph.n)
    fill: dict[int, float] = {}
    gains: dict[int, np.ndarray] = {}
    used: dict[int, int] = {}
    for k in sorted(need, reverse=True):  # finest first: each merge continues the previous one (Ward's greedy order)
        if cur.n > k:
            step = greedy_merge(cur, k)
            mapping = step[mapping]
            cur = coarsen(cur, step)
        labels = np.where(valid, mapping[np.maximum(atoms, 0)], -1)
        mean = cur.wcol / np.maximum(cur.wsum, 1e-12)[:, None]
        res = np.where(valid[..., None], img - mean[np.maximum(labels, 0)], 0.0)
        # regions left over (fewer regions than K exist) are paths that need not be spent
        used[k] = min(k, cur.n)
        fill[k] = fill_error(cur)
        gains[k] = detail_gains(res, w, need[k] - used[k], radius)

    for n, (steps, cands) in plans.items():
        def pred_at(b: int) -> dict[int, float]:
            return {k: fill[k] - DETAIL_EFFICIENCY * gains[k][min(b - used[k], len(gains[k]) - 1)] for k in cands[b]}

        out[n] = (min(n, max(_tie_pick(pred_at(b)) for b in steps)), pred_at(n))
    return out


def split_budget(paths: int, ratio: float | None, graph: MaskGraph | None = None, atoms: np.ndarray | None = None,
                 rgb: np.ndarray | None = None, weight: np.ndarray | None = None, radius: float = 5.0) -> int:
    """Structural paths of a budget of ``paths``: round(ratio · paths) for a fixed ``ratio`` (the
    paper's 0.4 exactly as before), else :func:`adaptive_split` (needs graph, atoms and rgb)."""
    from .details import structural_budget

    if ratio is not None:
        return structural_budget(paths, ratio)
    if graph is None or atoms is None or rgb is None:
        raise ValueError("the adaptive split (structural_ratio None) needs the mask graph, atoms and image")
    return adaptive_split(graph, atoms, rgb, weight, paths, radius)[0]
