"""Ablation baselines for compact mode's merge (bench/compact.py): k-means and DBSCAN on mask colour +
position, and the greedy Ward merge alone. Each has the signature of lvss.compact.recolor_merge
(graph, budget, config, seed, cancel, progress) -> MergeResult, so run_compact(..., merge=fn) runs the
same path stage after it. Their regions are made connected (adjacent masks of one cluster) and any
excess over the budget is merged greedily (counted in ``forced``), so every method ends at the same
final path budget.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from lvss.compact import recolor_merge
from lvss.compact.graph import MaskGraph, MergeResult, coarsen, greedy_merge, union_edges

__all__ = ["kmeans_merge", "dbscan_merge", "ward_merge", "CLUSTERERS"]


def _features(g: MaskGraph, pos_weight: float) -> np.ndarray:
    """(N, 5) mask features: mean RGB, and centroids scaled so the largest spread is ``pos_weight``."""
    span = max(float(np.ptp(g.centroid[:, 0])), float(np.ptp(g.centroid[:, 1])), 1.0)
    return np.concatenate([g.wmean, g.centroid / span * pos_weight], 1)


def _components(g: MaskGraph, cluster: np.ndarray) -> np.ndarray:
    """Mapping that joins adjacent masks of the same cluster (connected regions)."""
    same = np.flatnonzero(cluster[g.edges[:, 0]] == cluster[g.edges[:, 1]])
    return union_edges(g, same, 1)


def _best_fit(g: MaskGraph, budget: int, make: Callable[[float], np.ndarray], params) -> np.ndarray:
    """Of the clusterings ``make(param)``, the connected one whose region count is closest to
    ``budget`` (within it on ties, then the first)."""
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


def _kmeans(feats: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means labels (scikit-learn when installed, else scipy's kmeans2 with k-means++ seeding)."""
    try:
        from sklearn.cluster import KMeans

        return KMeans(k, n_init=1, random_state=seed).fit_predict(feats)
    except ImportError:
        from scipy.cluster.vq import kmeans2

        return kmeans2(feats, k, seed=seed, minit="++")[1]


def _dbscan(feats: np.ndarray, eps: float, min_samples: int = 2) -> np.ndarray:
    """DBSCAN labels, noise points alone (scikit-learn when installed; else core points within eps
    joined with a k-d tree, border points to their nearest core point)."""
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
        core = np.bincount(pairs.ravel(), minlength=n) + 1 >= min_samples
        cp = pairs[core[pairs[:, 0]] & core[pairs[:, 1]]]
        _, comp = connected_components(coo_matrix((np.ones(len(cp)), (cp[:, 0], cp[:, 1])), shape=(n, n)),
                                       directed=False)
        lab = np.where(core, comp, -1)
        if core.any() and (~core).any():
            d, nn = cKDTree(feats[core]).query(feats[~core])
            lab[~core] = np.where(d <= eps, comp[core][nn], -1)
    lab = np.asarray(lab).copy()
    noise = np.flatnonzero(lab < 0)
    lab[noise] = lab.max() + 1 + np.arange(len(noise))
    return lab


def kmeans_merge(g: MaskGraph, budget: int, cc=None, seed: int = 0, cancel=None, progress=None,
                 pos_weight: float = 0.5) -> MergeResult:
    """k-means on mask colour + position; of k = 1..budget, the k whose connected clusters come
    closest to the budget."""
    t0 = time.perf_counter()
    feats = _features(g, pos_weight)
    n = g.n
    if n <= budget:
        return _finish(g, np.arange(n), budget, "kmeans", t0)
    m = _best_fit(g, budget, lambda k: _kmeans(feats, int(min(max(k, 1), n)), seed), range(1, budget + 1))
    return _finish(g, m, budget, "kmeans", t0)


def dbscan_merge(g: MaskGraph, budget: int, cc=None, seed: int = 0, cancel=None, progress=None,
                 pos_weight: float = 0.5) -> MergeResult:
    """DBSCAN (min_samples 2) on mask colour + position; of 200 eps values on a geometric grid, the
    one whose connected clusters come closest to the budget."""
    t0 = time.perf_counter()
    feats = _features(g, pos_weight)
    if g.n <= budget:
        return _finish(g, np.arange(g.n), budget, "dbscan", t0)
    hi = float(np.linalg.norm(feats.max(0) - feats.min(0))) + 1e-6
    m = _best_fit(g, budget, lambda eps: _dbscan(feats, eps), np.geomspace(1e-3, hi, 200))
    return _finish(g, m, budget, "dbscan", t0)


def ward_merge(g: MaskGraph, budget: int, cc=None, seed: int = 0, cancel=None, progress=None) -> MergeResult:
    """Reference: only the greedy adjacent merge by (saliency-weighted) Ward cost, no recolouring."""
    t0 = time.perf_counter()
    m = greedy_merge(g, budget)
    return MergeResult(hierarchy=[np.arange(g.n), m], rounds=0, forced=g.n - (int(m.max()) + 1),
                       seconds=time.perf_counter() - t0, method="ward")


CLUSTERERS = {"recolor": recolor_merge, "kmeans": kmeans_merge, "dbscan": dbscan_merge, "ward": ward_merge}
