"""The mask-adjacency graph of a partition, and the merges every clusterer shares.

A partition of the opaque pixels into N connected masks (``labels``) is summarised per mask (area,
weighted colour sums, centroid, saliency) and per adjacent pair (boundary length, boundary weight), so
the recolouring losses and merge costs are computed per mask, not per pixel.

Weights (one saliency convention for the whole project: ``None`` means uniform): with a saliency map
S in [0, 1], a pixel's colour-fit weight is w = MSE_FLOOR + (1 - MSE_FLOOR)·S and its smoothing
weight W = 1 - (1 - MSE_FLOOR)·S, so salient masks keep their colours and the background merges
first; without one, w = W = 1 everywhere.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FIRM", "MaskGraph", "MergeResult", "build_graph", "coarsen", "greedy_merge", "union_edges",
           "consecutive", "ward_cost", "pixel_weights", "MSE_FLOOR", "FLAT_TOL"]

MSE_FLOOR = 0.1  # colour-fit (and smoothing) weight of the least (most) salient pixel
BOUNDARY_GAIN = 4.0  # merge cost × (1 + this · boundary strength): boundaries more partitions draw merge later
FIRM = 0.5           # boundary strength from which a boundary is the segmenter's: such pairs merge only
#                      when no other adjacent pair is left (the soup weighs the segmenter 3, superpixels 1)
STRENGTH_DAMP = 0.9  # see MaskGraph.tv_w
DIFF_FLOOR = 1e-4    # squared colour difference added to every pair, so equal colours still prefer weak boundaries
FLAT_TOL = 2.0 / 255  # a firm boundary between masks whose mean colours differ by less (max over RGB) is no
#                      boundary in the image (the segmenter split one flat area): it merges like any other


def pixel_weights(saliency: np.ndarray | None, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(colour-fit weight w, smoothing weight W), each (H, W) float64; see the module docstring."""
    if saliency is None:
        one = np.ones(shape, np.float64)
        return one, one
    s = np.clip(np.asarray(saliency, np.float64), 0.0, 1.0)
    if s.shape != tuple(shape):
        raise ValueError(f"saliency map has shape {s.shape}, expected {tuple(shape)}")
    return MSE_FLOOR + (1.0 - MSE_FLOOR) * s, 1.0 - (1.0 - MSE_FLOOR) * s


@dataclass
class MaskGraph:
    """Per-mask sums of a partition (N masks) and its 4-neighbour adjacency.

    area (N,) pixels; wsum (N,) Σ w(p); wcol (N, 3) Σ w(p) I(p); wsq (N,) Σ w(p) |I(p)|²; color (N, 3)
    mean RGB; centroid (N, 2) mean (x, y) pixels; edges (E, 2) int64 pairs i < j of adjacent masks;
    edge_len (E,) 4-neighbour pixel pairs across the boundary; edge_w (E,) Σ over those pairs of
    (W(p) + W(q)) / 2; total: number of valid pixels.
    """

    area: np.ndarray
    wsum: np.ndarray
    wcol: np.ndarray
    wsq: np.ndarray
    color: np.ndarray
    centroid: np.ndarray
    edges: np.ndarray
    edge_len: np.ndarray
    edge_w: np.ndarray
    edge_s: np.ndarray
    total: float
    firm: float = FIRM  # strength from which a boundary is firm (inf: none is)

    @property
    def n(self) -> int:
        return int(self.area.shape[0])

    @property
    def strength(self) -> np.ndarray:
        """(E,) mean boundary strength of each adjacent pair, in [0, 1]."""
        return self.edge_s / np.maximum(self.edge_len, 1e-12)

    @property
    def tv_w(self) -> np.ndarray:
        """(E,) smoothing weight of each adjacent pair: edge_w, damped where the soup's boundary is
        firm (a boundary every partition draws keeps 1 - STRENGTH_DAMP of its weight)."""
        return self.edge_w * (1.0 - STRENGTH_DAMP * self.strength)

    @property
    def firm_edges(self) -> np.ndarray:
        """(E,) bool: the pairs the soup separates firmly (strength >= ``firm``) whose colours differ
        (by more than FLAT_TOL in some channel)."""
        i, j = self.edges[:, 0], self.edges[:, 1]
        return (self.strength >= self.firm) & (np.abs(self.wmean[i] - self.wmean[j]).max(1) > FLAT_TOL)

    @property
    def wmean(self) -> np.ndarray:
        """(N, 3) weighted mean colour (the colour that minimises the weighted MSE)."""
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


def build_graph(labels: np.ndarray, rgb: np.ndarray, saliency: np.ndarray | None = None,
                strength: tuple[np.ndarray, np.ndarray] | None = None) -> MaskGraph:
    """Graph of a partition. labels (H, W) int, -1 = excluded; rgb (H, W, 3) float in [0, 1];
    saliency (H, W) float in [0, 1] or None (uniform); strength: boundary strength in [0, 1] between
    horizontal neighbours (H, W-1) and vertical ones (H-1, W), or None (0)."""
    labels = np.asarray(labels)
    valid = labels >= 0
    if not valid.any():
        raise ValueError("labels has no mask (every pixel is -1)")
    n = int(labels.max()) + 1
    l = labels[valid]
    img = np.asarray(rgb, np.float64)[valid]
    fit_w, graph_w = pixel_weights(saliency, labels.shape)
    w = fit_w[valid]
    area = np.bincount(l, minlength=n).astype(np.float64)
    if (area == 0).any():
        raise ValueError("labels must be consecutive 0..N-1 (some label has no pixel)")
    h, wd = labels.shape
    sh, sv = strength if strength is not None else (np.zeros((h, wd - 1)), np.zeros((h - 1, wd)))
    ys, xs = np.nonzero(valid)
    ii, jj, ew, es = [], [], [], []
    for a, b, wa, wb, st in ((labels[:, :-1], labels[:, 1:], graph_w[:, :-1], graph_w[:, 1:], sh),
                             (labels[:-1, :], labels[1:, :], graph_w[:-1, :], graph_w[1:, :], sv)):
        m = (a != b) & (a >= 0) & (b >= 0)
        ii.append(a[m]); jj.append(b[m]); ew.append((wa[m] + wb[m]) / 2.0); es.append(np.asarray(st, np.float64)[m])
    i, j, ew, es = np.concatenate(ii), np.concatenate(jj), np.concatenate(ew), np.concatenate(es)
    pairs, (elen, esum, ssum) = _sum_edges(i, j, n, np.ones(len(i)), ew, es)
    return MaskGraph(
        area=area,
        wsum=np.bincount(l, w, minlength=n),
        wcol=np.stack([np.bincount(l, w * img[:, c], minlength=n) for c in range(3)], 1),
        wsq=np.bincount(l, w * (img ** 2).sum(1), minlength=n),
        color=np.stack([np.bincount(l, img[:, c], minlength=n) for c in range(3)], 1) / area[:, None],
        centroid=np.stack([np.bincount(l, xs + 0.5, minlength=n), np.bincount(l, ys + 0.5, minlength=n)], 1)
        / area[:, None],
        edges=pairs, edge_len=elen, edge_w=esum, edge_s=ssum, total=float(valid.sum()))


def coarsen(g: MaskGraph, mapping: np.ndarray) -> MaskGraph:
    """The graph of the partition whose region r is the union of masks {i : mapping[i] == r}.

    mapping (N,) int with values 0..M-1 (all used)."""
    mapping = np.asarray(mapping, np.int64)
    m = int(mapping.max()) + 1
    area = np.bincount(mapping, g.area, minlength=m)
    col = np.stack([np.bincount(mapping, g.color[:, c] * g.area, minlength=m) for c in range(3)], 1)
    cen = np.stack([np.bincount(mapping, g.centroid[:, c] * g.area, minlength=m) for c in range(2)], 1)
    pairs, (elen, ew, es) = _sum_edges(mapping[g.edges[:, 0]], mapping[g.edges[:, 1]], m, g.edge_len, g.edge_w,
                                       g.edge_s)
    return MaskGraph(
        area=area, wsum=np.bincount(mapping, g.wsum, minlength=m),
        wcol=np.stack([np.bincount(mapping, g.wcol[:, c], minlength=m) for c in range(3)], 1),
        wsq=np.bincount(mapping, g.wsq, minlength=m), color=col / area[:, None], centroid=cen / area[:, None],
        edges=pairs, edge_len=elen, edge_w=ew, edge_s=es, total=g.total, firm=g.firm)


# -- merges --------------------------------------------------------------------------------------------
@dataclass
class MergeResult:
    """Clustering of the N initial masks.

    hierarchy: one (N,) mapping initial mask -> region per level, coarser and coarser (the last one is
    the result); rounds: the last round that ran; forced: merges made by the greedy fallback after the
    rounds; seconds: wall time of the clustering; method: the clusterer's name.
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


def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        parent[i], i = root, parent[i]
    return root


def consecutive(roots: np.ndarray) -> np.ndarray:
    """Relabel root ids to 0..M-1 in order of first appearance (deterministic)."""
    _, first, inv = np.unique(roots, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first, kind="stable"), kind="stable")
    return order[inv].astype(np.int64)


def ward_cost(g: MaskGraph, i: np.ndarray, j: np.ndarray, strength: np.ndarray | float = 0.0) -> np.ndarray:
    """Increase of the weighted squared error when masks i and j share one colour (Ward's criterion),
    raised by (1 + BOUNDARY_GAIN · strength) for pairs the soup separates firmly."""
    wi, wj = g.wsum[i], g.wsum[j]
    d = ((g.wmean[i] - g.wmean[j]) ** 2).sum(-1)
    return wi * wj / np.maximum(wi + wj, 1e-12) * (d + DIFF_FLOOR) * (1.0 + BOUNDARY_GAIN * np.asarray(strength))


def union_edges(g: MaskGraph, edge_idx: np.ndarray, floor: int, cost: np.ndarray | None = None) -> np.ndarray:
    """Merge along the given edges (cheapest first: ``cost`` per given edge, default the Ward cost)
    but stop at ``floor`` regions. Returns the mapping (N,) to consecutive region ids."""
    parent = np.arange(g.n)
    count = g.n
    if len(edge_idx):
        if cost is None:
            cost = ward_cost(g, g.edges[edge_idx, 0], g.edges[edge_idx, 1], g.strength[edge_idx])
        for e in edge_idx[np.argsort(cost, kind="stable")].tolist():
            if count <= floor:
                break
            a, b = _find(parent, int(g.edges[e, 0])), _find(parent, int(g.edges[e, 1]))
            if a != b:
                parent[max(a, b)] = min(a, b)
                count -= 1
    return consecutive(np.array([_find(parent, i) for i in range(g.n)]))


def greedy_merge(g: MaskGraph, target: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Repeatedly merge the adjacent pair with the smallest cost (:func:`ward_cost`, with the pair's
    boundary strength; firm boundaries between differing colours only once no other pair is left) until at most ``target``
    regions remain (or no adjacent pair is left). With ``allowed`` (E,) bool only those pairs merge
    (a merged pair is allowed when any of its boundaries was). Returns the mapping (N,)."""
    n = g.n
    parent = np.arange(n)
    wsum, wcol = g.wsum.astype(np.float64).copy(), g.wcol.astype(np.float64).copy()
    # per pair: [boundary length, strength sum, may merge]
    ok = np.ones(len(g.edges), bool) if allowed is None else np.asarray(allowed, bool)
    nbrs: list[dict[int, list]] = [dict() for _ in range(n)]
    for (a, b), ln, st, al in zip(g.edges.tolist(), g.edge_len.tolist(), g.edge_s.tolist(), ok.tolist()):
        nbrs[a][b] = [ln, st, al]
        nbrs[b][a] = nbrs[a][b]
    version = np.zeros(n, np.int64)

    def cost(a: int, b: int) -> float:
        d = wcol[a] / wsum[a] - wcol[b] / wsum[b]
        ln, st, _ = nbrs[a][b]
        return float(wsum[a] * wsum[b] / (wsum[a] + wsum[b]) * (d @ d + DIFF_FLOOR)
                     * (1.0 + BOUNDARY_GAIN * st / max(ln, 1e-12)))

    def key(a: int, b: int) -> tuple[bool, float]:
        ln, st, _ = nbrs[a][b]
        firm = st / max(ln, 1e-12) >= g.firm and float(np.abs(wcol[a] / wsum[a] - wcol[b] / wsum[b]).max()) > FLAT_TOL
        return firm, cost(a, b)

    heap = [(*key(a, b), a, b, 0, 0) for (a, b), al in zip(g.edges.tolist(), ok.tolist()) if al]
    heapq.heapify(heap)
    count = n
    while count > target and heap:
        _, c, a, b, va, vb = heapq.heappop(heap)
        if parent[a] != a or parent[b] != b or version[a] != va or version[b] != vb:
            continue
        keep, gone = min(a, b), max(a, b)
        parent[gone] = keep
        wsum[keep] += wsum[gone]; wcol[keep] += wcol[gone]
        for x, e in nbrs[gone].items():
            del nbrs[x][gone]
            if x == keep:
                continue
            if x in nbrs[keep]:
                old = nbrs[keep][x]
                merged = [old[0] + e[0], old[1] + e[1], old[2] or e[2]]
            else:
                merged = list(e)
            nbrs[keep][x] = merged
            nbrs[x][keep] = merged
        nbrs[gone] = {}
        version[keep] += 1
        count -= 1
        for x, e in nbrs[keep].items():
            if not e[2]:
                continue
            lo, hi = min(keep, x), max(keep, x)
            heapq.heappush(heap, (*key(lo, hi), lo, hi, version[lo], version[hi]))
    return consecutive(np.array([_find(parent, i) for i in range(n)]))
