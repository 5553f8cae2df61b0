"""Compact mode: recolouring-based mask merging, then saliency-placed detail paths.

Pipeline (all at the working resolution):

1. over-segmentation: the segmenter's masks on the original image become a partition of the opaque
   pixels into N connected masks (``labels``), summarised as a mask-adjacency graph
   (:class:`MaskGraph`) holding per-mask sums, so every loss below is computed per mask, not per pixel;
2. rounds of recolouring (:func:`recolor_merge`), each on the current (coarser) graph:
   stage I  learns a palette of K = N colours and soft assignment logits per mask, minimising
            λ_wmse·saliency-weighted MSE + λ_wtv·W-weighted total variation + λ_ent·entropy;
   stage II freezes the palette and moves only the assignments: colour matching to stage I,
            λ_c·pull between adjacent masks, λ_d·push between non-adjacent ones, λ_ent·entropy;
   adjacent masks whose colours end equal merge. Rounds stop at the structural budget; a greedy
   merge of the cheapest adjacent pairs finishes the job if the rounds leave too many regions;
3. structure + detail (:func:`run_compact`): every merged region becomes one path (its outer contour,
   largest first = back-most); the rest of the budget are small circles (5 px, or as deep as a thin
   mask allows) whose centres are drawn with probability proportional to saliency, balanced over the
   over-segmentation masks (a mask's weight divided by its area, so small parts get details as
   readily as wide flat ones); all paths are then optimised against the image through the
   differentiable rasterizer, each detail path kept inside the mask it was seeded in, so a detail
   stays part of one semantic piece (compactness, see lvss.metrics.vec).

Saliency S(p) in [0, 1] (prompt / user mask / uniform) weights the colour fit by MSE_FLOOR + S(p) and
the smoothing by W(p) = 1 - S(p), so salient masks keep their colours and the background merges
first. A uniform map counts as S = 0.5 everywhere.
"""
from __future__ import annotations

import heapq
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .config import CompactConfig, VectorizeConfig
from .optimize.structure import _lr_at, check_cancel

__all__ = ["MaskGraph", "MergeResult", "labels_from_masks", "build_graph", "coarsen", "recolor_merge",
           "greedy_merge", "kmeans_merge", "dbscan_merge", "ward_merge", "CLUSTERERS", "structural_budget",
           "saliency_map", "detail_prob", "detail_centres", "run_compact"]

MSE_FLOOR = 0.1        # colour-fit weight of a pixel with zero saliency (MSE_FLOOR + S)
NEUTRAL_SALIENCY = 0.5  # S of every pixel when the saliency map is uniform
MERGE_TOL = 0.02       # adjacent masks whose recoloured RGB differ by less than this (max channel) merge
STAGE1_STEPS = 100     # Adam steps of stage I per round
STAGE2_STEPS = 50      # Adam steps of stage II per round
LR = 0.01              # Adam learning rate of both stages (held, then decayed over the last 30 %)
ASSIGN_TEMPERATURE = 0.05  # assignment = softmax(θ / T): Adam's steps on θ move logits by LR / T
FUSION_MARGIN = 3.0    # TV scale above the pairwise fusion estimate: about twice the planned pairs fuse,
#                        and the round keeps the cheapest of them (Ward cost) down to its target
PUSH_SIGMA = 0.1       # colour distance scale of the stage II push between non-adjacent masks
DETAIL_AREA_EXPONENT = 1.0  # detail seeds: each mask's saliency weight / area^this (see detail_prob)
CONFINE_DETAILS = True  # keep detail paths inside the mask they were seeded in (see _Confine)
CONFINE_TOL = 0.0      # px a detail path's control point may stray outside its mask
MAX_MASKS = 1000       # over-segmentations finer than this are first merged greedily down to it

Progress = Callable[[str, float, str], None]


# -- over-segmentation --------------------------------------------------------------------------------
def labels_from_masks(masks: np.ndarray, valid: np.ndarray, min_px: int = 4) -> np.ndarray:
    """Partition of the valid pixels into connected masks.

    masks: (K, H, W) bool, may overlap (SAM) and need not cover the image; where masks overlap the
    smaller one wins. valid: (H, W) bool, the pixels to partition. Pieces smaller than ``min_px``
    pixels and uncovered pixels go to the nearest mask. Returns (H, W) int32 labels 0..N-1 of
    4-connected masks, -1 outside ``valid``.
    """
    from scipy import ndimage as ndi
    from skimage.measure import label as connected

    masks = np.asarray(masks, bool)
    valid = np.asarray(valid, bool)
    if masks.ndim != 3 or masks.shape[1:] != valid.shape:
        raise ValueError(f"masks must be (K, H, W) bool matching valid {valid.shape}, got {masks.shape}")
    if not valid.any():
        raise ValueError("no opaque pixels to segment: the image is fully transparent")
    lab = np.full(valid.shape, -1, np.int64)
    order = np.argsort(-masks.sum((1, 2)), kind="stable")  # (0, H, W) stacks included
    for k in order.tolist():
        lab[masks[k]] = k
    lab[~valid] = -1
    comp = connected(lab + 1, background=0, connectivity=1)
    sizes = np.bincount(comp.ravel())
    comp[(sizes < min_px)[comp] & (comp > 0)] = 0
    hole = (comp == 0) & valid
    if hole.any():
        if not (comp > 0).any():
            comp = valid.astype(np.int64)
        else:
            idx = ndi.distance_transform_edt(comp == 0, return_distances=False, return_indices=True)
            comp = comp[idx[0], idx[1]]
    comp[~valid] = 0
    comp = connected(comp, background=0, connectivity=1)
    return (comp - 1).astype(np.int32)


# -- mask graph ----------------------------------------------------------------------------------------
@dataclass
class MaskGraph:
    """Per-mask sums of a partition (N masks) and its 4-neighbour adjacency.

    area (N,) pixels; wsum (N,) Σ w(p); wcol (N, 3) Σ w(p) I(p); wsq (N,) Σ w(p) |I(p)|², with the
    colour-fit weight w = MSE_FLOOR + S; color (N, 3) mean RGB; centroid (N, 2) mean (x, y) pixels;
    sal (N,) Σ S(p); edges (E, 2) int64 pairs i < j of adjacent masks; edge_len (E,) 4-neighbour
    pixel pairs across the boundary; edge_w (E,) Σ over those pairs of (W(p) + W(q)) / 2 with
    W = 1 - S; total: number of valid pixels.
    """

    area: np.ndarray
    wsum: np.ndarray
    wcol: np.ndarray
    wsq: np.ndarray
    color: np.ndarray
    centroid: np.ndarray
    sal: np.ndarray
    edges: np.ndarray
    edge_len: np.ndarray
    edge_w: np.ndarray
    total: float

    @property
    def n(self) -> int:
        return int(self.area.shape[0])

    @property
    def wmean(self) -> np.ndarray:
        """(N, 3) saliency-weighted mean colour (the colour that minimises the weighted MSE)."""
        return self.wcol / np.maximum(self.wsum, 1e-12)[:, None]


def _sum_edges(i: np.ndarray, j: np.ndarray, n: int, *weights: np.ndarray):
    """Unique unordered pairs (i != j) with summed weights."""
    keep = i != j
    a, b = np.minimum(i, j)[keep], np.maximum(i, j)[keep]
    key = a.astype(np.int64) * n + b
    uniq, inv = np.unique(key, return_inverse=True)
    pairs = np.stack([uniq // n, uniq % n], 1).astype(np.int64)
    sums = [np.bincount(inv, w[keep], minlength=len(uniq)) for w in weights]
    return pairs, sums


def build_graph(labels: np.ndarray, rgb: np.ndarray, saliency: np.ndarray) -> MaskGraph:
    """Graph of a partition. labels (H, W) int, -1 = excluded; rgb (H, W, 3) float in [0, 1];
    saliency (H, W) float in [0, 1]."""
    labels = np.asarray(labels)
    valid = labels >= 0
    if not valid.any():
        raise ValueError("labels has no mask (every pixel is -1)")
    n = int(labels.max()) + 1
    l = labels[valid]
    img = np.asarray(rgb, np.float64)[valid]
    s = np.asarray(saliency, np.float64)
    w = MSE_FLOOR + s[valid]
    area = np.bincount(l, minlength=n).astype(np.float64)
    if (area == 0).any():
        raise ValueError("labels must be consecutive 0..N-1 (some label has no pixel)")
    ys, xs = np.nonzero(valid)
    graph_w = 1.0 - s
    ii, jj, ew = [], [], []
    for a, b, wa, wb in ((labels[:, :-1], labels[:, 1:], graph_w[:, :-1], graph_w[:, 1:]),
                         (labels[:-1, :], labels[1:, :], graph_w[:-1, :], graph_w[1:, :])):
        m = (a != b) & (a >= 0) & (b >= 0)
        ii.append(a[m]); jj.append(b[m]); ew.append((wa[m] + wb[m]) / 2.0)
    i, j, ew = np.concatenate(ii), np.concatenate(jj), np.concatenate(ew)
    pairs, (elen, esum) = _sum_edges(i, j, n, np.ones(len(i)), ew)
    return MaskGraph(
        area=area,
        wsum=np.bincount(l, w, minlength=n),
        wcol=np.stack([np.bincount(l, w * img[:, c], minlength=n) for c in range(3)], 1),
        wsq=np.bincount(l, w * (img ** 2).sum(1), minlength=n),
        color=np.stack([np.bincount(l, img[:, c], minlength=n) for c in range(3)], 1) / area[:, None],
        centroid=np.stack([np.bincount(l, xs + 0.5, minlength=n), np.bincount(l, ys + 0.5, minlength=n)], 1)
        / area[:, None],
        sal=np.bincount(l, s[valid], minlength=n),
        edges=pairs, edge_len=elen, edge_w=esum, total=float(valid.sum()))


def coarsen(g: MaskGraph, mapping: np.ndarray) -> MaskGraph:
    """The graph of the partition whose region r is the union of masks {i : mapping[i] == r}.

    mapping (N,) int with values 0..M-1 (all used)."""
    mapping = np.asarray(mapping, np.int64)
    m = int(mapping.max()) + 1
    area = np.bincount(mapping, g.area, minlength=m)
    col = np.stack([np.bincount(mapping, g.color[:, c] * g.area, minlength=m) for c in range(3)], 1)
    cen = np.stack([np.bincount(mapping, g.centroid[:, c] * g.area, minlength=m) for c in range(2)], 1)
    pairs, (elen, ew) = _sum_edges(mapping[g.edges[:, 0]], mapping[g.edges[:, 1]], m, g.edge_len, g.edge_w)
    return MaskGraph(
        area=area, wsum=np.bincount(mapping, g.wsum, minlength=m),
        wcol=np.stack([np.bincount(mapping, g.wcol[:, c], minlength=m) for c in range(3)], 1),
        wsq=np.bincount(mapping, g.wsq, minlength=m), color=col / area[:, None], centroid=cen / area[:, None],
        sal=np.bincount(mapping, g.sal, minlength=m), edges=pairs, edge_len=elen, edge_w=ew, total=g.total)


# -- union-find helpers ------------------------------------------------------------------------------
def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        parent[i], i = root, parent[i]
    return root


def _consecutive(roots: np.ndarray) -> np.ndarray:
    """Relabel root ids to 0..M-1 in order of first appearance (deterministic)."""
    _, first, inv = np.unique(roots, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first, kind="stable"), kind="stable")
    return order[inv].astype(np.int64)


def _ward_cost(g: MaskGraph, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Increase of the weighted squared error when masks i and j share one colour (Ward's criterion)."""
    wi, wj = g.wsum[i], g.wsum[j]
    d = ((g.wmean[i] - g.wmean[j]) ** 2).sum(-1)
    return wi * wj / np.maximum(wi + wj, 1e-12) * d


def _union_edges(g: MaskGraph, edge_idx: np.ndarray, floor: int) -> np.ndarray:
    """Merge along the given edges (cheapest Ward cost first) but stop at ``floor`` regions.

    Returns the mapping (N,) to consecutive region ids."""
    parent = np.arange(g.n)
    count = g.n
    if len(edge_idx):
        cost = _ward_cost(g, g.edges[edge_idx, 0], g.edges[edge_idx, 1])
        for e in edge_idx[np.argsort(cost, kind="stable")].tolist():
            if count <= floor:
                break
            a, b = _find(parent, int(g.edges[e, 0])), _find(parent, int(g.edges[e, 1]))
            if a != b:
                parent[max(a, b)] = min(a, b)
                count -= 1
    return _consecutive(np.array([_find(parent, i) for i in range(g.n)]))


def greedy_merge(g: MaskGraph, target: int) -> np.ndarray:
    """Repeatedly merge the adjacent pair with the smallest Ward cost (saliency-weighted) until at
    most ``target`` regions remain (or no adjacent pair is left). Returns the mapping (N,)."""
    n = g.n
    parent = np.arange(n)
    wsum, wcol = g.wsum.astype(np.float64).copy(), g.wcol.astype(np.float64).copy()
    nbrs: list[set[int]] = [set() for _ in range(n)]
    for a, b in g.edges.tolist():
        nbrs[a].add(b); nbrs[b].add(a)
    version = np.zeros(n, np.int64)

    def cost(a: int, b: int) -> float:
        d = wcol[a] / wsum[a] - wcol[b] / wsum[b]
        return float(wsum[a] * wsum[b] / (wsum[a] + wsum[b]) * (d @ d))

    heap = [(cost(a, b), a, b, 0, 0) for a, b in g.edges.tolist()]
    heapq.heapify(heap)
    count = n
    while count > target and heap:
        c, a, b, va, vb = heapq.heappop(heap)
        if parent[a] != a or parent[b] != b or version[a] != va or version[b] != vb:
            continue
        keep, gone = min(a, b), max(a, b)
        parent[gone] = keep
        wsum[keep] += wsum[gone]; wcol[keep] += wcol[gone]
        nbrs[keep] |= nbrs[gone]
        nbrs[keep] -= {keep, gone}
        for x in nbrs[gone]:
            nbrs[x].discard(gone)
            if x != keep:
                nbrs[x].add(keep)
        nbrs[gone] = set()
        version[keep] += 1
        count -= 1
        for x in nbrs[keep]:
            heapq.heappush(heap, (cost(min(keep, x), max(keep, x)), min(keep, x), max(keep, x),
                                  version[min(keep, x)], version[max(keep, x)]))
    return _consecutive(np.array([_find(parent, i) for i in range(n)]))


# -- recolouring rounds --------------------------------------------------------------------------------
@dataclass
class MergeResult:
    """Clustering of the N initial masks.

    hierarchy: one (N,) mapping initial mask -> region per level, coarser and coarser (the last one is
    the result); rounds: the last round that ran (rounds already at their level are skipped); forced: merges made by the greedy fallback after the rounds;
    seconds: wall time of the clustering.
    """

    hierarchy: list[np.ndarray] = field(default_factory=list)
    rounds: int = 0
    forced: int = 0
    seconds: float = 0.0
    method: str = "recolor"

    @property
    def mapping(self) -> np.ndarray:
        return self.hierarchy[-1]

    @property
    def regions(self) -> int:
        return int(self.mapping.max()) + 1


def _fusion_scales(g: MaskGraph, cc: CompactConfig) -> np.ndarray:
    """(E,) TV scale at which each adjacent pair, taken alone, fuses to one colour.

    For two masks with weighted masses w_i, w_j and colours c_i, c_j the stage I optimum (λ_wmse·MSE +
    s·λ_wtv·TV, L1 over channels) is one shared colour once s·λ_wtv·B_ij ≥ 2 λ_wmse w_i w_j/(w_i + w_j)
    · max_ch |c_i - c_j|."""
    i, j = g.edges[:, 0], g.edges[:, 1]
    wi, wj = g.wsum[i], g.wsum[j]
    d = np.abs(g.wmean[i] - g.wmean[j]).max(1)
    need = 2.0 * cc.lambda_wmse * wi * wj / np.maximum(wi + wj, 1e-12) * d
    return need / np.maximum(cc.lambda_wtv * g.edge_w, 1e-12)


def _round_lr(step: int, total: int) -> float:
    """LR for the first 70 % of the steps, then decaying to LR / 10 (lets fused colours settle)."""
    hold = int(0.7 * total)
    return LR if step < hold else _lr_at(step - hold, total - hold, LR)


def _assign(theta: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Assignment probabilities softmax(θ / T) (N, K) and their entropy Σ_i weight_i · H_i."""
    logp = torch.log_softmax(theta * (1.0 / ASSIGN_TEMPERATURE), 1)
    p = logp.exp()
    return p, -(weight * (p * logp).sum(1)).sum()


def _recolor_round(g: MaskGraph, cc: CompactConfig, tv_scale: float, gen: torch.Generator,
                   cancel: threading.Event | None) -> np.ndarray:
    """One round of stages I and II on graph ``g``; returns the final recoloured colours (N, 3).

    Assignments are softmax(θ / ASSIGN_TEMPERATURE) over a palette of K = N colours."""
    n = g.n
    dt = torch.float32
    tot = g.total
    T = ASSIGN_TEMPERATURE
    wsum = torch.from_numpy(g.wsum).to(dt)
    wcol = torch.from_numpy(g.wcol).to(dt)
    wsq = torch.from_numpy(g.wsq).to(dt)
    area = torch.from_numpy(g.area).to(dt) / tot
    ei = torch.from_numpy(g.edges[:, 0])
    ej = torch.from_numpy(g.edges[:, 1])
    bw = torch.from_numpy(g.edge_w).to(dt) / tot
    # palette at the masks' weighted mean colours; each mask starts 98 % on its own entry
    palette = torch.from_numpy(g.wmean.copy()).to(dt).requires_grad_(True)
    theta = 1e-4 * torch.randn(n, n, generator=gen, dtype=torch.float64).to(dt)
    theta.diagonal().add_(T * (math.log(max(n - 1, 1)) + 4.0))
    theta.requires_grad_(True)

    def tv_of(x):
        return (bw * (x[ei] - x[ej]).abs().sum(1)).sum() if len(ei) else x.sum() * 0.0

    # stage I: λ_wmse·Σ_p w(p)|R(p) - I(p)|² + λ_wtv·Σ_{p~q} (W(p)+W(q))/2 |R(p) - R(q)|_1 + λ_ent·H,
    # all per pixel; within a mask R is constant, so the sums reduce to per-mask and per-edge terms
    opt = torch.optim.Adam([palette, theta], lr=LR)
    for step in range(STAGE1_STEPS):
        if step % 20 == 0:
            check_cancel(cancel)
        for grp in opt.param_groups:
            grp["lr"] = _round_lr(step, STAGE1_STEPS)
        opt.zero_grad(set_to_none=True)
        prob, ent = _assign(theta, area)
        x = prob @ palette
        wmse = (wsum * (x * x).sum(1) - 2.0 * (x * wcol).sum(1) + wsq).sum() / tot
        loss = (cc.lambda_wmse * wmse + cc.lambda_wtv * tv_scale * tv_of(x)
                + cc.lambda_ent * ent)
        loss.backward()
        opt.step()
        with torch.no_grad():
            palette.clamp_(0.0, 1.0)
    palette = palette.detach()
    with torch.no_grad():
        x1 = _assign(theta, area)[0] @ palette

    # stage II: palette frozen; matching to stage I's colours (weighted mean over masks)
    # + λ_c·pull (boundary-weighted mean over adjacent pairs) + λ_d·push (share of non-adjacent
    # pixel pairs whose colours coincide) + λ_ent·H
    adj = torch.zeros(n, n, dtype=torch.bool)
    adj[ei, ej] = True
    adj[ej, ei] = True
    far = ~adj
    far.fill_diagonal_(False)
    pair_w = (area[:, None] * area[None, :]) * far
    mw = wsum / wsum.sum()
    ew = bw / bw.sum().clamp(min=1e-12)
    theta2 = theta.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([theta2], lr=LR)
    for step in range(STAGE2_STEPS):
        if step % 20 == 0:
            check_cancel(cancel)
        for grp in opt.param_groups:
            grp["lr"] = _round_lr(step, STAGE2_STEPS)
        opt.zero_grad(set_to_none=True)
        prob, ent = _assign(theta2, area)
        x = prob @ palette
        match = (mw * ((x - x1) ** 2).sum(1)).sum()
        pull = (ew * ((x[ei] - x[ej]) ** 2).sum(1)).sum() if len(ei) else x.sum() * 0.0
        push = (pair_w * torch.exp(-torch.cdist(x, x) ** 2 / PUSH_SIGMA ** 2)).sum()
        loss = match + cc.lambda_c * pull + cc.lambda_d * push + cc.lambda_ent * ent
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (_assign(theta2, area)[0] @ palette).double().numpy()


def recolor_merge(g: MaskGraph, budget: int, cc: CompactConfig, seed: int = 0,
                  cancel: threading.Event | None = None, progress: Progress | None = None) -> MergeResult:
    """Cluster the masks of ``g`` into at most ``budget`` connected regions by rounds of recolouring.

    Each round runs stages I and II on the current regions and merges adjacent regions whose final
    colours agree (within MERGE_TOL). Round r aims at a geometric schedule from N regions down to
    ``budget`` over ``cc.rounds`` rounds: its TV weight is λ_wtv·s_r, with s_r FUSION_MARGIN times the
    scale at which, by the pairwise fusion estimate, just enough adjacent pairs fuse (never below the
    previous round's; raised when a round falls short). Of the pairs that do fuse, the cheapest
    (Ward cost) merge first, down to the round's target, so every round is one level of the
    hierarchy. Regions left over after the last round are merged greedily (Ward cost, counted in
    ``forced``). Non-adjacent regions never merge. Deterministic for a given seed.
    """
    t0 = time.perf_counter()
    budget = max(1, int(budget))
    gen = torch.Generator().manual_seed(int(seed))
    n0 = g.n
    mapping = np.arange(n0)
    res = MergeResult(hierarchy=[mapping.copy()])
    cur = g
    scale, boost = 0.0, 1.0
    for r in range(cc.rounds):
        if cur.n <= budget or len(cur.edges) == 0:
            break
        check_cancel(cancel)
        target = max(budget, int(math.floor(n0 * (budget / n0) ** ((r + 1) / cc.rounds))))
        if cur.n <= target:  # already at this round's level of the schedule
            continue
        goal = cur.n - target
        if cc.lambda_wtv > 0:
            need = np.sort(_fusion_scales(cur, cc))
            scale = max(scale, float(need[min(len(need), goal) - 1]) * FUSION_MARGIN * boost)
        colours = _recolor_round(cur, cc, scale, gen, cancel)
        diff = np.abs(colours[cur.edges[:, 0]] - colours[cur.edges[:, 1]]).max(1)
        step_map = _union_edges(cur, np.flatnonzero(diff < MERGE_TOL), target)
        res.rounds = r + 1
        merged = cur.n - (int(step_map.max()) + 1)
        # feedback on the pairwise estimate: more pressure when a round falls well short of its goal
        if merged == 0:
            boost *= 4.0
        elif merged < goal / 2:
            boost *= 2.0
        elif merged > goal * 2:
            boost = max(1.0, boost / 2.0)
        if merged:
            mapping = step_map[mapping]
            res.hierarchy.append(mapping.copy())
            cur = coarsen(cur, step_map)
        if progress is not None:
            progress("recolor", (r + 1) / cc.rounds, f"round {r + 1}: {cur.n} regions")
    if cur.n > budget:
        step_map = greedy_merge(cur, budget)
        res.forced = cur.n - (int(step_map.max()) + 1)
        mapping = step_map[mapping]
        res.hierarchy.append(mapping.copy())
    res.seconds = time.perf_counter() - t0
    return res


# -- baselines for the clustering ablation --------------------------------------------------------------
def _features(g: MaskGraph, pos_weight: float) -> np.ndarray:
    """(N, 5) mask features: mean RGB, and centroids scaled so the largest spread is ``pos_weight``."""
    span = max(float(np.ptp(g.centroid[:, 0])), float(np.ptp(g.centroid[:, 1])), 1.0)
    return np.concatenate([g.wmean, g.centroid / span * pos_weight], 1)


def _components(g: MaskGraph, cluster: np.ndarray) -> np.ndarray:
    """Mapping that joins adjacent masks of the same cluster (connected regions)."""
    same = np.flatnonzero(cluster[g.edges[:, 0]] == cluster[g.edges[:, 1]])
    return _union_edges(g, same, 1)


def _best_fit(g: MaskGraph, budget: int, make: Callable[[float], np.ndarray], params) -> np.ndarray:
    """Of the clusterings ``make(param)`` for the candidate params, the connected one whose region
    count is closest to ``budget`` (within it on ties, then the first). Regions beyond the budget are
    left to the caller's greedy merge."""
    best, best_key = None, None
    for prm in params:
        m = _components(g, make(prm))
        k = int(m.max()) + 1
        key = (abs(k - budget), k > budget)
        if best_key is None or key < best_key:
            best, best_key = m, key
    return best


def _finish(g: MaskGraph, mapping: np.ndarray, budget: int, method: str, t0: float) -> MergeResult:
    res = MergeResult(hierarchy=[np.arange(g.n), mapping], rounds=1, method=method)
    if mapping.max() + 1 > budget:
        step = greedy_merge(coarsen(g, mapping), budget)
        res.forced = int(mapping.max() + 1 - (step.max() + 1))
        res.hierarchy.append(step[mapping])
    res.seconds = time.perf_counter() - t0
    return res


def kmeans_merge(g: MaskGraph, budget: int, cc: CompactConfig | None = None, seed: int = 0,
                 cancel=None, progress=None, pos_weight: float = 0.5) -> MergeResult:
    """Ablation baseline: k-means on mask colour + position (scikit-learn when installed, else
    scipy's kmeans2); of k = 1..budget, the k whose connected clusters come closest to the budget;
    any excess is merged greedily (counted in ``forced``)."""
    t0 = time.perf_counter()
    feats = _features(g, pos_weight)
    n = g.n
    try:
        from sklearn.cluster import KMeans

        def make(k: float) -> np.ndarray:
            k = int(round(min(max(k, 1), n)))
            return KMeans(k, n_init=1, random_state=seed).fit_predict(feats)
    except ImportError:
        from scipy.cluster.vq import kmeans2

        def make(k: float) -> np.ndarray:
            k = int(round(min(max(k, 1), n)))
            return kmeans2(feats, k, seed=seed, minit="++")[1]
    if n <= budget:
        return _finish(g, np.arange(n), budget, "kmeans", t0)
    m = _best_fit(g, budget, make, range(1, budget + 1))
    return _finish(g, m, budget, "kmeans", t0)


def _dbscan(feats: np.ndarray, eps: float, min_samples: int = 2) -> np.ndarray:
    """DBSCAN labels (scikit-learn when installed; else core points within eps joined with a k-d tree,
    border points to their nearest core point, noise points alone)."""
    try:
        from sklearn.cluster import DBSCAN

        lab = DBSCAN(eps=eps, min_samples=min_samples).fit_predict(feats)
    except ImportError:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
        from scipy.spatial import cKDTree

        tree = cKDTree(feats)
        pairs = tree.query_pairs(eps, output_type="ndarray")
        n = len(feats)
        deg = np.bincount(pairs.ravel(), minlength=n) + 1
        core = deg >= min_samples
        cp = pairs[core[pairs[:, 0]] & core[pairs[:, 1]]]
        adj = coo_matrix((np.ones(len(cp)), (cp[:, 0], cp[:, 1])), shape=(n, n))
        _, comp = connected_components(adj, directed=False)
        lab = np.where(core, comp, -1)
        if core.any() and (~core).any():
            d, nn = cKDTree(feats[core]).query(feats[~core])
            border = np.where(d <= eps, comp[core][nn], -1)
            lab[~core] = border
    lab = np.asarray(lab).copy()
    noise = np.flatnonzero(lab < 0)
    lab[noise] = lab.max() + 1 + np.arange(len(noise))
    return lab


def dbscan_merge(g: MaskGraph, budget: int, cc: CompactConfig | None = None, seed: int = 0,
                 cancel=None, progress=None, pos_weight: float = 0.5) -> MergeResult:
    """Ablation baseline: DBSCAN (min_samples 2) on mask colour + position; of 200 eps values on a
    geometric grid, the one whose connected clusters come closest to the budget; any excess is merged
    greedily (counted in ``forced``)."""
    t0 = time.perf_counter()
    feats = _features(g, pos_weight)
    if g.n <= budget:
        return _finish(g, np.arange(g.n), budget, "dbscan", t0)
    hi = float(np.linalg.norm(feats.max(0) - feats.min(0))) + 1e-6
    m = _best_fit(g, budget, lambda eps: _dbscan(feats, eps), np.geomspace(1e-3, hi, 200))
    return _finish(g, m, budget, "dbscan", t0)


def ward_merge(g: MaskGraph, budget: int, cc: CompactConfig | None = None, seed: int = 0,
               cancel=None, progress=None) -> MergeResult:
    """Reference: only the greedy adjacent merge by (saliency-weighted) Ward cost, no recolouring."""
    t0 = time.perf_counter()
    m = greedy_merge(g, budget)
    return MergeResult(hierarchy=[np.arange(g.n), m], rounds=0, forced=g.n - (int(m.max()) + 1),
                       seconds=time.perf_counter() - t0, method="ward")


CLUSTERERS = {"recolor": recolor_merge, "kmeans": kmeans_merge, "dbscan": dbscan_merge, "ward": ward_merge}


# -- saliency, budget, detail seeds ---------------------------------------------------------------------
def saliency_map(rgb: np.ndarray, cfg: VectorizeConfig) -> tuple[np.ndarray, bool]:
    """(H, W) float32 saliency in [0, 1] from the configured source, and whether it is informative.
    A uniform map is replaced by NEUTRAL_SALIENCY everywhere."""
    from .stages import get_saliency

    sal = np.asarray(get_saliency(cfg)(rgb, cfg.saliency.prompt), np.float32)
    if sal.shape != rgb.shape[:2]:
        raise ValueError(f"saliency map has shape {sal.shape}, expected {rgb.shape[:2]}")
    sal = np.clip(np.nan_to_num(sal, nan=0.0), 0.0, 1.0)
    if float(sal.max() - sal.min()) < 1e-6:
        return np.full(sal.shape, NEUTRAL_SALIENCY, np.float32), False
    return sal, True


def structural_budget(paths: int, ratio: float) -> int:
    """Paths of the budget that go to merged regions: round(ratio · paths), at most ``paths``."""
    return int(min(paths, max(0, round(paths * ratio))))


def detail_centres(prob: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """(n', 2) pixel centres (x, y), n' = min(n, pixels with p > 0), drawn without replacement with
    probability proportional to ``prob`` (H, W) >= 0."""
    p = np.asarray(prob, np.float64).ravel()
    p = np.where(np.isfinite(p) & (p > 0), p, 0.0)
    k = int(min(n, np.count_nonzero(p)))
    if k <= 0:
        return np.zeros((0, 2), np.float32)
    rng = np.random.default_rng(seed)
    idx = rng.choice(p.size, size=k, replace=False, p=p / p.sum())
    w = prob.shape[1]
    return np.stack([idx % w + 0.5, idx // w + 0.5], 1).astype(np.float32)


def _mask_depth(labels: np.ndarray) -> np.ndarray:
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


def detail_prob(sal: np.ndarray, alpha: np.ndarray, labels: np.ndarray | None, radius: float,
                area_exponent: float | None = None) -> np.ndarray:
    """(H, W) sampling weights of detail-circle centres: saliency × alpha, and with an
    over-segmentation ``labels`` (H, W, -1 = none) two priors: a centre lies at least ``radius`` px
    (or as deep as the mask allows) inside its mask, so the circle starts in one mask, and each mask's
    weight is divided by area^area_exponent, so small masks (eyes, buttons) get details as readily
    as wide flat ones; masks smaller than one circle get none. Falls back to saliency × alpha where
    no pixel qualifies."""
    from scipy import ndimage as ndi

    gamma = DETAIL_AREA_EXPONENT if area_exponent is None else area_exponent
    prob = np.asarray(sal, np.float64) * np.asarray(alpha, np.float64)
    if labels is None:
        return prob
    lab = np.asarray(labels)
    dist = _mask_depth(lab)
    ok = lab >= 0
    n = int(lab.max()) + 1
    if n <= 0:
        return prob
    deepest = np.asarray(ndi.maximum(dist, lab + 1, np.arange(1, n + 1)), np.float64)
    need = np.minimum(radius, deepest)
    area = np.bincount(lab[ok], minlength=n).astype(np.float64)
    li = np.maximum(lab, 0)
    # masks smaller than one circle (slivers along edges) get no detail seeds
    big = area >= math.pi * radius ** 2
    out = np.where(ok & big[li] & (dist >= need[li]), prob * np.maximum(area[li], 1.0) ** -gamma, 0.0)
    return out if out.sum() > 0 else prob


# -- the compact pipeline ---------------------------------------------------------------------------------
def _region_paths(region_labels: np.ndarray, m: int, epsilon: float):
    """One path per region (outer contour), back to front by filled area (largest first), so that a
    region enclosing others lies behind them. Returns (points list, region ids)."""
    from scipy import ndimage as ndi

    from .layering import mask_to_path

    objs = ndi.find_objects(region_labels + 1, max_label=m)
    items = []
    for r in range(m):
        if objs[r] is None:
            continue
        sl = objs[r]
        filled = int(ndi.binary_fill_holes(region_labels[sl] == r).sum())
        items.append((filled, r))
    items.sort(key=lambda t: (-t[0], t[1]))
    pts, ids = [], []
    for _, r in items:
        p = mask_to_path(region_labels == r, epsilon)
        if p is not None:
            pts.append(p.points)
            ids.append(r)
    return pts, ids


class _Confine:
    """Keeps each detail path in the over-segmentation mask its centre was seeded in: after every
    optimiser step, control points more than ``tol`` px outside that mask move to the nearest pixel
    centre inside it (projected gradient descent). Distance fields are computed once per mask, on
    its bounding box grown by ``pad`` px."""

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


def _optimise(points: list[torch.Tensor], colors: torch.Tensor, target_c, target_a, weight, cfg,
              prog: Progress, cancel, confine: _Confine | None = None, n_fixed: int = 0
              ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Stage III: Adam on every path's points and colour against the image (weighted MSE); paths
    from index ``n_fixed`` on are kept in their masks by ``confine``."""
    from .optimize.losses import image_loss
    from .render.torch_raster import render_torch

    h, w = target_a.shape
    iters = cfg.optimize.refine_iters
    pts = [p.detach().clone().requires_grad_(True) for p in points]
    cols = colors.detach().clone().requires_grad_(True)
    if confine is not None:
        confine(pts[n_fixed:])
    if iters == 0 or not pts:
        return [p.detach() for p in pts], cols.detach()
    opt = torch.optim.Adam([{"params": pts, "lr": cfg.optimize.point_lr, "base": cfg.optimize.point_lr},
                            {"params": [cols], "lr": cfg.optimize.color_lr, "base": cfg.optimize.color_lr}])
    for it in range(iters):
        check_cancel(cancel)
        for grp in opt.param_groups:
            grp["lr"] = _lr_at(it, iters, grp["base"])
        opt.zero_grad(set_to_none=True)
        C, A = render_torch(pts, cols, w, h)
        loss = image_loss(C, A, target_c, target_a, weight)
        loss.backward()
        for t in pts + [cols]:
            if t.grad is not None:
                torch.nan_to_num_(t.grad, nan=0.0, posinf=0.0, neginf=0.0)
        opt.step()
        with torch.no_grad():
            cols.clamp_(0.0, 1.0)
        if confine is not None:
            confine(pts[n_fixed:])
        if it % 5 == 0 or it == iters - 1:
            prog("detail", (it + 1) / iters, f"path step {it + 1}/{iters}, loss {float(loss.detach()):.4f}")
    return [p.detach() for p in pts], cols.detach()


def run_compact(rgb: np.ndarray, alpha: np.ndarray, cfg: VectorizeConfig, dev: torch.device,
                prog: Progress | None = None, cancel: threading.Event | None = None,
                clusterer: str = "recolor", source: np.ndarray | None = None):
    """Compact vectorization of one image at the working resolution.

    rgb (h, w, 3) float32 straight RGB in [0, 1]; alpha (h, w) float32; prog(stage, fraction, message)
    with stage in {"segment", "recolor", "detail"}; clusterer: "recolor" (the method) or the ablation
    baselines "kmeans" / "dbscan" / "ward" (greedy merge only). Returns (Scene (w × h) with a
    "Structure" layer of merged regions at the back and a "Details" layer in front, metrics dict:
    mse, psnr (working resolution), paths, layers, masks, regions, merges, forced_merges, rounds,
    cluster_seconds, structural, details).
    """
    from .optimize.structure import fit_colors, visible_area
    from .render.torch_raster import render_torch
    from .scene import Layer, Path, Scene, circle_path
    from .stages import segment_levels

    if clusterer not in CLUSTERERS:
        raise ValueError(f"clusterer must be one of {', '.join(CLUSTERERS)}, got {clusterer!r}")
    prog = prog or (lambda *a: None)
    rgb = np.asarray(rgb, np.float32)
    alpha = np.asarray(alpha, np.float32)
    h, w = alpha.shape
    if rgb.shape != (h, w, 3):
        raise ValueError(f"rgb must have shape ({h}, {w}, 3) like alpha, got {rgb.shape}")
    cc = cfg.compact
    valid = alpha > 0.5
    n_struct = structural_budget(cfg.paths, cc.structural_ratio) if valid.any() else 0

    # 1. over-segmentation and the mask graph
    prog("segment", 0.0, "over-segmenting the image")
    sal, informative = saliency_map(rgb, cfg)
    check_cancel(cancel)
    regions_n, masks_n, merge = 0, 0, None
    region_labels = labels = None
    seg_notes: list[str] = []
    if n_struct > 0:
        # a learned segmenter that finds nothing falls back to the classical one (said in progress)
        # the segmenter sees the full-resolution original (up to its own input size) when given
        seg = segment_levels(cfg, [rgb], source, progress=lambda f, m: prog("segment", 0.9 * f, m), cancel=cancel)
        ms, seg_notes = seg.masksets[0], seg.notes
        min_px = max(4, int(math.ceil(cfg.segment.min_area * h * w)))
        labels = labels_from_masks(np.asarray(ms.masks, bool), valid, min_px)
        graph = build_graph(labels, rgb, sal)
        masks_n = graph.n
        pre = np.arange(graph.n)
        if graph.n > MAX_MASKS:
            pre = greedy_merge(graph, MAX_MASKS)
            graph = coarsen(graph, pre)
        prog("segment", 1.0, f"{masks_n} masks, {len(graph.edges)} adjacent pairs")
        # 2. clustering (recolouring rounds)
        merge = CLUSTERERS[clusterer](graph, n_struct, cc, cfg.seed, cancel, prog)
        final = merge.mapping[pre]
        region_labels = np.where(labels >= 0, final[np.maximum(labels, 0)], -1).astype(np.int32)
        regions_n = merge.regions
        prog("recolor", 1.0, f"{regions_n} regions after {merge.rounds} rounds")
    check_cancel(cancel)

    # 3. structural paths + saliency-sampled detail circles, optimised together
    target_rgb = torch.from_numpy(rgb).to(dev)
    target_a = torch.from_numpy(alpha).to(dev)
    target_c = target_rgb * target_a.unsqueeze(-1)
    pts: list[torch.Tensor] = []
    if region_labels is not None:
        pts, ids = _region_paths(region_labels, regions_n, cfg.optimize.dp_epsilon)
        pts = [p.to(dev) for p in pts]
    n_s = len(pts)
    if n_s:
        fallback = torch.from_numpy(graph_colors(region_labels, rgb, regions_n)[ids]).float()
        cols = fit_colors(pts, torch.ones(n_s), target_rgb, fallback, w, h)
        colors = torch.cat([cols, torch.ones(n_s, 1, device=dev)], 1)
    else:
        colors = torch.zeros(0, 4, device=dev)
    n_d = cfg.paths - n_s
    rad = float(cc.detail_radius)
    centres = detail_centres(detail_prob(sal, alpha, labels, rad), n_d, cfg.seed)
    d_pts, d_cols = [], []
    depth = _mask_depth(labels) if labels is not None else None
    for x, y in centres.tolist():
        # a 5 px circle, shrunk where its mask is thinner so that it starts inside the mask
        r = rad if depth is None else float(min(rad, max(1.0, depth[int(y), int(x)])))
        d_pts.append(circle_path(x, y, r).points.to(dev))
        x0, x1 = int(max(0, x - rad)), int(min(w, x + rad + 1))
        y0, y1 = int(max(0, y - rad)), int(min(h, y + rad + 1))
        c = rgb[y0:y1, x0:x1].reshape(-1, 3).mean(0)
        d_cols.append([*c.tolist(), 1.0])
    if d_pts:
        pts = pts + d_pts
        colors = torch.cat([colors, torch.tensor(d_cols, dtype=torch.float32, device=dev)], 0)
    weight = torch.from_numpy(1.0 + sal).to(dev) if informative else None
    confine = None
    if CONFINE_DETAILS and labels is not None and len(centres):
        confine = _Confine(labels, centres, int(math.ceil(2 * rad)) + 2, CONFINE_TOL, dev)
    pts, colors = _optimise(pts, colors, target_c, target_a, weight, cfg, prog, cancel, confine, n_s)
    # detail paths that ended up invisible are dropped
    if len(pts) > n_s:
        vis = visible_area(pts, colors, w, h)
        keep = [i for i in range(len(pts)) if i < n_s or float(vis[i]) >= cfg.optimize.prune_area]
        pts, colors = [pts[i] for i in keep], colors[keep]

    scene = Scene(w, h)
    struct = [Path(pts[i].cpu(), colors[i].cpu()) for i in range(n_s)]
    details = [Path(pts[i].cpu(), colors[i].cpu()) for i in range(n_s, len(pts))]
    if struct:
        scene.layers.append(Layer(f"Structure ({len(struct)} merged regions)", struct, "layer1"))
    if details:
        scene.layers.append(Layer("Details", details, f"layer{len(scene.layers) + 1}"))
    with torch.no_grad():
        if pts:
            C, A = render_torch(pts, colors, w, h)
        else:
            C, A = torch.zeros_like(target_c), torch.zeros_like(target_a)
        m = float(((((C - target_c) ** 2).sum(-1) + (A - target_a) ** 2) / 4.0).mean())
    metrics = {"mse": m, "psnr": 100.0 if m <= 1e-10 else float(10 * np.log10(1.0 / m)),
               "paths": float(scene.num_paths), "layers": float(len(scene.layers)),
               "masks": float(masks_n), "regions": float(regions_n),
               "merges": float(max(masks_n - regions_n, 0)),
               "forced_merges": float(merge.forced if merge else 0),
               "rounds": float(merge.rounds if merge else 0),
               "cluster_seconds": float(merge.seconds if merge else 0.0),
               "structural": float(len(struct)), "details": float(len(details)),
               "_notes": seg_notes}  # popped by pipeline.run into VectorizeResult.notes
    return scene, metrics


def graph_colors(region_labels: np.ndarray, rgb: np.ndarray, m: int) -> np.ndarray:
    """(m, 3) float32 mean RGB of each region of ``region_labels`` (H, W), -1 ignored."""
    v = region_labels >= 0
    l = region_labels[v]
    area = np.maximum(np.bincount(l, minlength=m), 1)
    return (np.stack([np.bincount(l, rgb[..., c][v], minlength=m) for c in range(3)], 1)
            / area[:, None]).astype(np.float32)
