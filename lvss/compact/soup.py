"""The mask soup compact mode starts from: many overlapping and nested masks at several granularities,
and the partition (their common refinement) that the merge works on.

The soup is the segmenter's masks on the original (SAM's automatic masks when a checkpoint is set,
else the classical segmenter's) together with SLIC superpixels at ``CompactConfig.superpixels``
scales. Every boundary of every mask is kept: the partition's atoms are the connected pieces where
all masks agree, typically several hundred on a 256-px image, so the merge has real work at every
budget. The segmenter's masks alone (``semantic``) also form a coarser partition that detail paths
are seeded in and kept inside.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..config import VectorizeConfig

__all__ = ["Soup", "labels_from_masks", "refine_partitions", "superpixels", "boundary_strength", "mask_soup"]


@dataclass
class Soup:
    """masks: how many masks the soup holds (segmenter + superpixels); atoms (H, W) int32 partition
    0..N-1 (-1 outside the image's opaque pixels); semantic (H, W) int32 partition by the
    segmenter's masks alone; notes: segmenter fallbacks a user should know about."""

    masks: int
    atoms: np.ndarray
    semantic: np.ndarray
    notes: list[str] = field(default_factory=list)
    strength: tuple[np.ndarray, np.ndarray] | None = None  # see boundary_strength


def _absorb_small(comp: np.ndarray, valid: np.ndarray, min_px: int) -> np.ndarray:
    """Connected pieces (labels 1.., 0 = none) smaller than ``min_px`` and unlabelled valid pixels go
    to the nearest piece; returns (H, W) int32 labels 0..N-1 of 4-connected pieces, -1 outside."""
    from scipy import ndimage as ndi
    from skimage.measure import label as connected

    sizes = np.bincount(comp.ravel())
    comp = comp.copy()
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


def labels_from_masks(masks: np.ndarray, valid: np.ndarray, min_px: int = 4) -> np.ndarray:
    """Partition of the valid pixels into connected masks.

    masks: (K, H, W) bool, may overlap and need not cover the image; where masks overlap the smaller
    one wins. valid: (H, W) bool. Pieces smaller than ``min_px`` pixels and uncovered pixels go to
    the nearest mask. Returns (H, W) int32 labels 0..N-1 of 4-connected masks, -1 outside ``valid``.
    """
    from skimage.measure import label as connected

    masks = np.asarray(masks, bool)
    valid = np.asarray(valid, bool)
    if masks.ndim != 3 or masks.shape[1:] != valid.shape:
        raise ValueError(f"masks must be (K, H, W) bool matching valid {valid.shape}, got {masks.shape}")
    if not valid.any():
        raise ValueError("no opaque pixels to segment: the image is fully transparent")
    lab = np.full(valid.shape, -1, np.int64)
    for k in np.argsort(-masks.sum((1, 2)), kind="stable").tolist():
        lab[masks[k]] = k
    lab[~valid] = -1
    return _absorb_small(connected(lab + 1, background=0, connectivity=1), valid, min_px)


def refine_partitions(partitions: list[np.ndarray], valid: np.ndarray, min_px: int = 4) -> np.ndarray:
    """The common refinement of several (H, W) integer partitions: connected pieces where every
    partition has one label; pieces under ``min_px`` pixels join their nearest neighbour. Returns
    (H, W) int32 labels 0..N-1, -1 outside ``valid``."""
    from skimage.measure import label as connected

    valid = np.asarray(valid, bool)
    if not valid.any():
        raise ValueError("no opaque pixels to segment: the image is fully transparent")
    key = np.zeros(valid.shape, np.int64)
    for p in partitions:
        p = np.asarray(p)
        if p.shape != valid.shape:
            raise ValueError(f"partition has shape {p.shape}, expected {valid.shape}")
        _, p = np.unique(p, return_inverse=True)
        key = np.unique(key * (int(p.max()) + 1) + p.reshape(valid.shape), return_inverse=True)[1].reshape(valid.shape)
    key = np.where(valid, key + 1, 0)
    return _absorb_small(connected(key, background=0, connectivity=1), valid, min_px)


def boundary_strength(partitions: list[np.ndarray], weights: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """How firmly the soup separates neighbouring pixels: the weighted share of ``partitions`` (H, W)
    with a label change between horizontal (H, W-1) and vertical (H-1, W) neighbours, in [0, 1]."""
    total = float(sum(weights))
    h, w = partitions[0].shape
    sh, sv = np.zeros((h, w - 1)), np.zeros((h - 1, w))
    for p, wt in zip(partitions, weights):
        sh += wt * (p[:, 1:] != p[:, :-1])
        sv += wt * (p[1:] != p[:-1])
    return sh / total, sv / total


def superpixels(rgb: np.ndarray, valid: np.ndarray, n_segments: int, seed: int = 0) -> np.ndarray:
    """(H, W) int labels of SLIC superpixels (scikit-image, in Lab colour), about ``n_segments``."""
    from skimage.segmentation import slic

    del seed  # SLIC's grid initialisation is deterministic
    lab = slic(np.asarray(rgb, np.float64), n_segments=int(n_segments), compactness=10.0, start_label=1,
               mask=valid if not valid.all() else None, enforce_connectivity=True)
    return np.asarray(lab, np.int64)


def mask_soup(rgb: np.ndarray, valid: np.ndarray, cfg: VectorizeConfig, source: np.ndarray | None = None,
              progress: Callable[[float, str], None] | None = None,
              cancel: threading.Event | None = None) -> Soup:
    """The soup of ``rgb`` (h, w, 3) float32 over the ``valid`` pixels and its partitions."""
    from ..types import check_cancel
    from ..stages import segment_levels, simplify_levels

    prog = progress or (lambda f, m: None)
    h, w = valid.shape
    min_px = max(4, int(math.ceil(cfg.segment.min_area * h * w)))
    levels = [rgb]
    if cfg.compact.simplified_levels and cfg.simplify.levels > 0:
        levels = simplify_levels(cfg, rgb, lambda f, m: prog(0.2 * f, m), cancel).levels
    # the segmenter sees the full-resolution original (up to its own input size) when given; a learned
    # segmenter that finds nothing falls back to the classical one (said in the notes)
    seg = segment_levels(cfg, levels, source, progress=lambda f, m: prog(0.2 + 0.4 * f, m), cancel=cancel)
    ms = np.asarray(seg.masksets[0].masks, bool)
    semantic = labels_from_masks(ms, valid, min_px)
    parts, n_masks = [semantic], len(ms)
    # the simplification levels' masks (coarser versions of the segmenter's) as partitions of their own
    coarse = [labels_from_masks(np.asarray(m.masks, bool), valid, min_px) for m in seg.masksets[1:] if len(m.masks)]
    n_masks += sum(len(m.masks) for m in seg.masksets[1:])
    for i, k in enumerate(cfg.compact.superpixels):
        check_cancel(cancel)
        sp = superpixels(rgb, valid, k, cfg.seed)
        parts.append(sp)
        n_masks += int(len(np.unique(sp[valid])))
        prog(0.6 + 0.4 * (i + 1) / max(len(cfg.compact.superpixels), 1), f"superpixels at {k} segments")
    n_sp = len(parts) - 1
    parts += coarse
    # thin parts (outlines) cut by superpixel borders make small atoms: only specks are absorbed
    atoms = refine_partitions(parts, valid, 4) if len(parts) > 1 else semantic
    # the segmenter's boundaries count three times as much as all superpixel scales together, and as
    # all simplification levels together (a boundary the segmenter alone draws stays firm)
    weights = ([3.0] + [1.0 / max(n_sp, 1)] * n_sp + [1.0 / max(len(coarse), 1)] * len(coarse))
    return Soup(n_masks, atoms, semantic, list(seg.notes), boundary_strength(parts, weights))
