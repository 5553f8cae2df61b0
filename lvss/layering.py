"""Layering of multi-level masks and their initial Bézier paths: steps 3 and 4 of the layered method.

Masks of the simplified levels are taken from the coarsest level to the finest and stacked back to
front: a mask that sits on masks already taken goes in front of all of them, in the back-most layer
where it overlaps nothing else, so each layer is a set of disjoint shapes and coarse structure lies
behind fine detail. Every connected piece of a mask above a minimum area becomes one closed cubic
Bézier path (its outer contour) in the mask's layer: a mask of a repeated object (several eyes, spots,
letters) or one cut apart by transparency keeps all its pieces.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage as ndi

from .geometry.simple import signed_area
from .messages import colour_name
from .scene import Layer, Path, Scene
from .types import MaskSet


@dataclass
class LayerMask:
    """One mask placed in a layer.

    mask: (H, W) bool, holes filled except transparent ones (the area its paths cover); level: index
    of the simplification level it came from (0 = finest, i.e. the original image); color: (3,)
    float32 mean RGB under it; area: pixels.
    """

    mask: np.ndarray
    level: int
    color: np.ndarray
    area: int


@dataclass
class Layering:
    """Layers back to front; masks inside one layer never overlap.

    num_levels: how many simplification levels the masks came from (for naming).
    """

    layers: list[list[LayerMask]] = field(default_factory=list)
    num_levels: int = 0

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def num_masks(self) -> int:
        return sum(len(layer) for layer in self.layers)

    def union(self, index: int) -> np.ndarray:
        """(H, W) bool: every pixel covered by layer ``index``."""
        masks = [m.mask for m in self.layers[index]]
        if not masks:
            raise IndexError(f"layer {index} is empty")
        return np.logical_or.reduce(masks)


def _check_levels(levels: list[MaskSet], valid: np.ndarray | None) -> tuple[int, int]:
    if not isinstance(levels, (list, tuple)) or not levels:
        raise ValueError("levels must be a non-empty list of MaskSet, finest level first")
    shape = None
    for k, ms in enumerate(levels):
        if not isinstance(ms, MaskSet):
            raise ValueError(f"levels[{k}] must be a MaskSet, got {type(ms).__name__}")
        m = np.asarray(ms.masks)
        if m.ndim != 3 or m.dtype != bool:
            raise ValueError(f"levels[{k}].masks must be a (K, H, W) bool array, got {m.dtype} {m.shape}")
        if np.asarray(ms.colors).shape != (m.shape[0], 3):
            raise ValueError(f"levels[{k}].colors must have shape ({m.shape[0]}, 3), "
                             f"got {np.asarray(ms.colors).shape}")
        if shape is None:
            shape = m.shape[1:]
        elif m.shape[1:] != shape:
            raise ValueError(f"levels[{k}] masks are {m.shape[1:]}, levels[0] masks {shape}; "
                             "segment every level at the same size")
    if valid is not None:
        v = np.asarray(valid)
        if v.dtype != bool or v.ndim != 2:
            raise ValueError(f"valid must be an (H, W) bool array, got {v.dtype} {v.shape}")
        if shape is not None and v.shape != tuple(shape):
            raise ValueError(f"valid has shape {v.shape} but the masks are {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def label_mask(mask: np.ndarray, connectivity: int = 1) -> np.ndarray:
    """``skimage.measure.label(mask, connectivity=connectivity)``: for a bool mask computed as
    scikit-image computes it (``scipy.ndimage.label`` with the same neighbourhood, so the same
    numbers), without the import of ``skimage.morphology`` (with scipy.spatial and scipy.linalg)
    that scikit-image makes for its neighbourhood helper on every run's first call."""
    if mask.dtype != bool:
        from skimage.measure import label

        return label(mask, connectivity=connectivity)
    return ndi.label(mask, structure=ndi.generate_binary_structure(mask.ndim, connectivity))[0]


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool with every hole filled (computed inside the bounding box, which is exact)."""
    rows = np.flatnonzero(mask.any(1))
    cols = np.flatnonzero(mask.any(0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # a hole is background not 4-connected to the outside (what ndi.binary_fill_holes fills): label
    # the background of the padded crop once instead of growing the outside pixel by pixel
    bg = np.pad(~mask[r0:r1, c0:c1], 1, constant_values=True)
    lab, _ = ndi.label(bg)
    out = np.zeros_like(mask)
    out[r0:r1, c0:c1] = (lab != lab[0, 0])[1:-1, 1:-1]
    return out


def _fill_opaque_holes(mask: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(H, W) bool: ``mask`` with its holes filled except where they are transparent (outside
    ``valid``), which stays open; islands made only of filled pixels are dropped (what lies in a
    transparent hole is drawn by its own masks)."""
    filled = _fill_holes(mask)
    open_ = filled & ~mask & ~valid
    if not open_.any():
        return filled
    out = filled & ~open_
    lab = label_mask(out, connectivity=1)
    own = np.unique(lab[mask & out])
    return np.isin(lab, own[own > 0])


def build_layers(levels: list[MaskSet], dedup_iou: float = 0.9, valid: np.ndarray | None = None,
                 overlap_frac: float = 0.05) -> Layering:
    """Stack the masks of all levels into layers (step 3 of the method).

    levels: MaskSets of one image, ``levels[0]`` the FINEST level, ``levels[-1]`` the COARSEST; all
    masks (H, W) bool. dedup_iou: a mask whose IoU with a mask already taken is at least this (holes
    filled), and which shares most of its pixels with it (or it with the mask; holes not filled), is
    dropped as a repeat. valid: optional (H, W) bool of opaque pixels; masks are cut to it and dropped
    when nothing is left. overlap_frac: two masks "sit on each other" when their intersection exceeds
    this fraction of the smaller one.

    Every mask is used with its holes filled, as its path will cover them, except where the holes are
    transparent (outside ``valid``): its paths leave those parts open. Masks are collected from the
    coarsest level to the finest (largest first within a level), so a coarse mask wins over a finer
    repeat of it. They are then stacked by filled area, largest first: a shape that encloses another
    (an outline ring around a fill, a face around its eyes) goes behind it, whatever level either
    came from. A mask goes into the back-most layer that (a) is in front of every stacked mask it sits
    on and (b) holds no mask it overlaps by even one pixel; a new layer is opened when none fits.
    """
    if not 0.0 < dedup_iou <= 1.0:
        raise ValueError(f"dedup_iou must be in (0, 1], got {dedup_iou}")
    if not 0.0 <= overlap_frac < 1.0:
        raise ValueError(f"overlap_frac must be in [0, 1), got {overlap_frac}")
    h, w = _check_levels(levels, valid)
    valid = None if valid is None else np.asarray(valid, bool)
    # every candidate, coarsest level first (largest first within a level), as it will be used
    cand: list[np.ndarray] = []                   # flat pixel indices of each filled mask
    own: list[np.ndarray] = []                    # ... and of the mask itself (holes not filled)
    meta: list[tuple[int, np.ndarray]] = []       # (level, colour)
    for level in range(len(levels) - 1, -1, -1):
        ms = levels[level]
        masks = np.asarray(ms.masks)
        order = np.argsort(-masks.sum((1, 2)), kind="stable")  # (0, H, W) stacks included
        for k in order.tolist():
            m = masks[k] if valid is None else masks[k] & valid
            if not m.any():
                continue
            # a path covers its outline's inside, so a mask counts with its holes filled, except for
            # holes that are mostly transparent: its paths leave those open
            flat = _fill_holes(m) if valid is None else _fill_opaque_holes(m, valid)
            cand.append(np.flatnonzero(flat.reshape(-1)))
            own.append(np.flatnonzero(m.reshape(-1)))
            meta.append((level, np.asarray(ms.colors[k], np.float32).reshape(3)))
    if not cand:
        return Layering(layers=[], num_levels=len(levels))
    area = np.array([len(c) for c in cand], np.int64)
    # pixels shared by every pair of candidates, from one sparse product (each pixel lies in a few
    # masks only, one per level and the ones whose filled holes reach it)
    from scipy import sparse

    rows = np.repeat(np.arange(len(cand)), area)
    S = sparse.csr_matrix((np.ones(rows.size, np.int32), (rows, np.concatenate(cand))),
                          shape=(len(cand), h * w))
    inter = (S @ S.T).toarray().astype(np.int64)
    # the same for the masks' own pixels: an outline ring and the fill inside it have nearly the same
    # filled shape but no pixel in common, and neither is a repeat of the other
    own_area = np.array([len(c) for c in own], np.int64)
    R = sparse.csr_matrix((np.ones(int(own_area.sum()), np.int32),
                           (np.repeat(np.arange(len(own)), own_area), np.concatenate(own))),
                          shape=(len(own), h * w))
    own_inter = (R @ R.T).toarray().astype(np.int64)
    # pass 1: unique masks; a repeat of a mask already taken (IoU of the filled masks >= dedup_iou,
    # and most pixels of the smaller mask in the other) is dropped
    kept: list[int] = []
    for c in range(len(cand)):
        if kept:
            kc = np.asarray(kept)
            ic = inter[c, kc]
            iou = ic / (area[c] + area[kc] - ic)
            same = own_inter[c, kc] * 2 > np.minimum(own_area[c], own_area[kc])
            if (same & (iou >= dedup_iou)).any():
                continue
        kept.append(c)
    # pass 2: stack, largest filled area first (coarser level first on ties)
    order = sorted(kept, key=lambda i: (-area[i], -meta[i][0]))
    taken_layer = np.full(len(cand), -1, np.int64)
    layers: list[list[LayerMask]] = []
    placed: list[int] = []
    for i in order:
        a = int(area[i])
        lo = 0
        hit: set[int] = set()
        if placed:
            pl = np.asarray(placed)
            ip = inter[i, pl]
            sits = ip > overlap_frac * np.minimum(a, area[pl])
            if sits.any():
                lo = int(taken_layer[pl][sits].max()) + 1
            # layers holding a mask it overlaps by even one pixel
            hit = set(taken_layer[pl][ip > 0].tolist())
        target = next((li for li in range(lo, len(layers)) if li not in hit), len(layers))
        if target == len(layers):
            layers.append([])
        taken_layer[i] = target
        placed.append(i)
        level, color = meta[i]
        mask = np.zeros(h * w, bool)
        mask[cand[i]] = True
        layers[target].append(LayerMask(mask.reshape(h, w), level, color, a))
    return Layering(layers=layers, num_levels=len(levels))


def assign_details(layer_of: list[int], n_layers: int, pixels: list[np.ndarray], n_fixed: int) -> list[int]:
    """The layer each detail path can join without changing the picture.

    Paths are back to front: the first ``n_fixed`` are the layers' own shapes (``layer_of[i]`` their
    layer, non-decreasing), the rest detail paths drawn in front of everything. ``pixels[i]`` are the
    pixel indices path i covers. A detail path goes into the front-most layer whose shapes it touches,
    and never behind an earlier detail path it touches; drawn at the front of that layer (in their
    order), every pixel then sees the paths covering it in the same order as before, so the composite
    is unchanged. A detail that touches nothing joins the front layer. Returns the layer of every
    detail path (in order).
    """
    if n_layers <= 0:
        raise ValueError("assign_details needs at least one layer")
    size = 1 + max((int(p.max()) for p in pixels if len(p)), default=0)
    # the front-most layer covering each pixel, by the layers' own shapes
    front = np.full(size, -1, np.int64)
    for i in range(n_fixed):
        if len(pixels[i]):
            front[pixels[i]] = np.maximum(front[pixels[i]], layer_of[i])
    out = []
    for d in range(n_fixed, len(pixels)):
        px = pixels[d]
        k = int(front[px].max()) if len(px) else -1
        if k < 0:
            k = n_layers - 1
        out.append(k)
        if len(px):
            front[px] = np.maximum(front[px], k)   # later details that touch this one stay in front of it
    return out


def layer_name(index: int, layering: Layering) -> str:
    """Human name of layer ``index`` for an editor's layer list: its place from the back, its role
    and its main colour, e.g. "01 Background, white", "02 Shapes, red", "05 Details, black".

    Role: "Background" for the back layer when it spans most of the image; "Shapes" for layers whose
    masks come mostly from the coarser half of the simplification levels; "Details" for the others.
    The colour is the name of the area-weighted mean colour of the layer's largest colour group.
    """
    n = len(layering.layers)
    if not 0 <= index < n:
        raise IndexError(f"layer index {index} out of range for {n} layers")
    layer = layering.layers[index]
    span = max(layering.num_levels - 1, 1)
    width = max(2, len(str(n)))
    if not layer:
        return f"{index + 1:0{width}d} Empty"
    areas = np.array([m.area for m in layer], np.float64)
    coarse = float((np.array([m.level for m in layer]) / span * areas).sum() / areas.sum())
    canvas = float(layer[0].mask.size)
    if index == 0 and areas.sum() >= 0.4 * canvas:
        role = "Background"
    elif coarse >= 0.5 or layering.num_levels <= 1 or index == 0:
        role = "Shapes"
    else:
        role = "Details"
    # the colour name that covers the most area in this layer
    by_name: dict[str, float] = {}
    for m, a in zip(layer, areas):
        key = colour_name(m.color)
        by_name[key] = by_name.get(key, 0.0) + a
    colour = max(by_name, key=by_name.get)
    return f"{index + 1:0{width}d} {role}, {colour}"


# -- contour -> cubic Bézier path (step 4) ----------------------------------------------------------
_CORNER_DEG = 50.0  # turning angle above which a polygon vertex stays a sharp corner


@dataclass
class _Contour:
    """Boundary of one component: points (P, 2) as x, y pixels, and the component itself (what the
    path must cover) cropped to its bounding box, whose top-left pixel is (row0, col0). A component
    with kept holes has each hole's boundary spliced in, traversed the other way round, through a
    zero-width bridge whose end points (``fixed``, indices into points) must stay vertices."""

    points: np.ndarray
    shape: np.ndarray
    row0: int
    col0: int
    fixed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


_MIN_HOLE = 9  # pixels: smaller holes are filled, even when kept holes are asked for


def _splice_hole(pts: np.ndarray, fixed: list[int], hole: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The closed contour ``pts`` with the closed loop ``hole`` (already oriented the other way round)
    spliced in at their nearest pair of points; returns the new contour and the bridge indices
    (plus the old ones, shifted)."""
    i, j = _nearest_pair(pts, hole)
    loop = np.concatenate([hole[j:], hole[:j + 1]], 0)        # from hole[j] round to hole[j]
    out = np.concatenate([pts[:i + 1], loop, pts[i:]], 0)
    n = len(loop)
    shifted = [k if k <= i else k + n + 1 for k in fixed]
    return out, shifted + [i, i + 1, i + n, i + n + 1]


def _nearest_pair(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """(i, j) with a[i] nearest b[j] (squared distance as numpy sums it), the smallest i and then j
    among equals: what an argmin over the whole (len(a), len(b)) distance table picks, found with a
    k-d tree instead of the table (a contour and its hole have thousands of points each)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(a)
    m = float(tree.query(b)[0].min())
    near = tree.query_ball_point(b, m * (1.0 + 1e-9) + 1e-9)
    jj = np.repeat(np.arange(len(b)), [len(n) for n in near])
    ii = np.fromiter((i for n in near for i in n), np.int64, count=len(jj))
    d = ((a[ii] - b[jj]) ** 2).sum(-1)
    best = d == d.min()
    k = np.lexsort((jj[best], ii[best]))[0]
    return int(ii[best][k]), int(jj[best][k])


def mask_components(mask: np.ndarray, min_pixels: int = 1, fill_holes: bool = True) -> list[np.ndarray]:
    """The 4-connected pieces of a mask, each as an (H, W) bool mask with its holes filled, largest
    (filled area) first.

    A piece is kept when it has at least ``min_pixels`` pixels of its own and does not lie inside the
    hole of another piece (that piece's path covers it already). Ties in area keep the pieces' scan
    order (top-left first), so the result is deterministic. ``fill_holes=False``: the pieces keep
    their holes (a layering mask's holes are the transparent ones, which its paths leave open), and
    a piece inside another's hole is kept.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be a 2-D (H, W) array, got shape {m.shape}")
    if not isinstance(min_pixels, (int, np.integer)) or isinstance(min_pixels, bool) or min_pixels < 1:
        raise ValueError(f"min_pixels must be an integer >= 1, got {min_pixels!r}")
    m = m.astype(bool)
    rows = np.flatnonzero(m.any(1))
    if rows.size == 0:
        return []
    cols = np.flatnonzero(m.any(0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    lab = label_mask(m[r0:r1, c0:c1], connectivity=1)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    filled = {k: (_fill_holes(lab == k) if fill_holes else lab == k)
              for k in range(1, len(sizes)) if sizes[k] >= min_pixels}
    # a piece inside another's hole has a smaller filled area, so it comes after that one
    order = sorted(filled, key=lambda k: -int(filled[k].sum()))
    covered = np.zeros(lab.shape, bool)
    out = []
    for k in order:
        if covered[lab == k].all():       # inside the hole of a piece already taken
            continue
        covered |= filled[k]
        full = np.zeros(m.shape, bool)
        full[r0:r1, c0:c1] = filled[k]
        out.append(full)
    return out


def _loop(region: np.ndarray, r0: int, c0: int, shape: tuple[int, int]) -> np.ndarray | None:
    """The longest boundary loop of a (cropped) region as (P, 2) x, y pixels without a repeated
    closing point, or None."""
    from skimage.measure import find_contours

    contours = find_contours(np.pad(region, 1).astype(np.float32), 0.5)
    if not contours:
        return None
    rc = max(contours, key=len)
    if len(rc) > 1 and np.allclose(rc[0], rc[-1]):
        rc = rc[:-1]
    # padded crop index (i, j) is pixel (r0 + i - 1, c0 + j - 1), which covers [c, c+1] x [r, r+1];
    # the 0.5 level runs through pixel edges, half a pixel from the centres it separates
    pts = np.stack([rc[:, 1] + c0 - 0.5, rc[:, 0] + r0 - 0.5], 1)
    # along the canvas border the contour cuts each corner pixel diagonally; pushed onto the border,
    # a shape that fills its corner of the canvas covers it to the last pixel
    H, W = shape
    pts[:, 0] = np.where(pts[:, 0] <= 0.5, 0.0, np.where(pts[:, 0] >= W - 0.5, float(W), pts[:, 0]))
    pts[:, 1] = np.where(pts[:, 1] <= 0.5, 0.0, np.where(pts[:, 1] >= H - 0.5, float(H), pts[:, 1]))
    keep = np.ones(len(pts), bool)
    keep[1:] = np.any(pts[1:] != pts[:-1], axis=1)   # corners now repeat a point
    pts = pts[keep]
    if len(pts) > 1 and np.array_equal(pts[0], pts[-1]):
        pts = pts[:-1]
    return pts


def _outer_contour(mask: np.ndarray, holes: bool = False) -> _Contour | None:
    """The largest 4-connected component's outer boundary (holes filled), or None. With ``holes``,
    its holes of at least ``_MIN_HOLE`` pixels are kept: their boundaries are spliced into the
    contour, traversed the other way round, so the path's nonzero fill leaves them empty."""
    rows = np.flatnonzero(mask.any(1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(0))
    r0, c0 = int(rows[0]), int(cols[0])
    lab = label_mask(mask[r0:rows[-1] + 1, c0:cols[-1] + 1], connectivity=1)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    own = lab == int(np.argmax(sizes))
    comp = _fill_holes(own)
    pts = _loop(comp, r0, c0, mask.shape)
    if pts is None:
        return None
    if not holes:
        return _Contour(pts, comp, r0, c0)
    hole_lab = label_mask(comp & ~own, connectivity=1)
    hole_sizes = np.bincount(hole_lab.ravel())
    fixed: list[int] = []
    shape = comp.copy()
    outer_sign = np.sign(signed_area(pts))
    for k in np.argsort(-hole_sizes, kind="stable").tolist():
        if k == 0 or hole_sizes[k] < _MIN_HOLE:
            continue
        loop = _loop(hole_lab == k, r0, c0, mask.shape)
        if loop is None or len(loop) < 4:
            continue
        if np.sign(signed_area(loop)) == outer_sign:
            loop = loop[::-1].copy()
        pts, fixed = _splice_hole(pts, fixed, loop)
        shape &= hole_lab != k
    return _Contour(pts, shape, r0, c0, np.asarray(sorted(set(fixed)), np.int64))


def _polygon(points: np.ndarray, eps: float, fixed: np.ndarray | None = None, splits=None) -> np.ndarray:
    """Indices of the Douglas–Peucker vertices of a closed contour (no repeated closing point), plus
    the ``fixed`` ones. splits: the contour's :class:`lvss.fit._Splits` when several tolerances are
    tried on it (each run of points is then measured once)."""
    from .fit import _Splits

    idx = (splits if splits is not None else _Splits(points)).vertices(eps)
    return idx if fixed is None or len(fixed) == 0 else np.union1d(idx, fixed)


_IOU_TILE = 8            # pixels: side of the tiles that _polygon_pixels tests or takes whole
_IOU_DIRECT_AREA = 4096  # bounding boxes up to this many pixels are tested pixel by pixel throughout


def _polygon_pixels(idx: np.ndarray, c: _Contour) -> np.ndarray:
    """(h, w) bool over the component's bounding box: the pixels whose centre the closed polygon
    ``c.points[idx]`` covers, boundary included (:func:`skimage.draw.polygon2mask`).

    A pixel centre that the polygon and the contour classify differently lies between a run of contour
    points and its chord, so within the run's largest distance from the chord (the region between
    them lies in the convex band of that width around the chord). Over a large box only the tiles near
    the chords are tested point by point; elsewhere the polygon covers exactly the component's own
    pixels (the contour separates every pixel centre of the component from those outside it).
    """
    from skimage.draw import polygon2mask

    poly = c.points[idx]
    # pixel (r, c) has its centre at x = c + 0.5, y = r + 0.5
    rc = np.stack([poly[:, 1] - 0.5 - c.row0, poly[:, 0] - 0.5 - c.col0], 1)
    h, w = c.shape.shape
    if h * w <= _IOU_DIRECT_AREA or idx[0] != 0:    # (Douglas-Peucker vertices start at point 0)
        return polygon2mask(c.shape.shape, rc)
    from skimage.measure import points_in_poly

    from .fit import _Splits

    # the largest distance of a contour point from the chord of its run
    n = len(c.points)
    a = np.asarray(idx, np.int64)
    b = np.roll(a, -1)
    b = np.where(b > a, b, b + n)
    runs = [(int(x), int(y)) for x, y in zip(a, b) if y - x >= 2]
    spread = max(_Splits(c.points)._measure(runs)[1]) if runs else 0.0
    # tiles within reach of a chord: chords sampled at most 1 px apart, tile distance rounded up
    T = _IOU_TILE
    seg = rc[(np.arange(len(rc)) + 1) % len(rc)] - rc
    k = np.ceil(np.hypot(seg[:, 0], seg[:, 1])).astype(np.int64) + 1
    e = np.repeat(np.arange(len(rc)), k)
    t = (np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)) / np.repeat(np.maximum(k - 1, 1), k)
    samples = rc[e] + t[:, None] * seg[e]
    th, tw = -(-h // T), -(-w // T)
    ty = np.clip(np.floor(samples[:, 0] / T).astype(np.int64), 0, th - 1)
    tx = np.clip(np.floor(samples[:, 1] / T).astype(np.int64), 0, tw - 1)
    near = np.zeros((th, tw), bool)
    near[ty, tx] = True
    reach = int(math.ceil((spread + 2.0) / T))
    near = ndi.maximum_filter(near, size=2 * reach + 1, mode="constant", cval=False)
    band = np.repeat(np.repeat(near, T, 0), T, 1)[:h, :w]
    out = c.shape.copy()
    rr, cc = np.nonzero(band)
    # skimage.draw.polygon tests (column, row) points against (column, row) vertices
    out[rr, cc] = points_in_poly(np.stack([cc, rr], 1).astype(np.float64), rc[:, ::-1])
    return out


def _polygon_iou(idx: np.ndarray, c: _Contour) -> float:
    """IoU of the pixels of the polygon ``c.points[idx]`` (centre inside) with the component."""
    if len(idx) < 3:
        return 0.0
    filled = _polygon_pixels(idx, c)
    union = np.count_nonzero(filled | c.shape)
    return np.count_nonzero(filled & c.shape) / max(union, 1)


def _simplify_polygon(c: _Contour, epsilon: float, max_segments: int, min_iou: float
                      ) -> np.ndarray | None:
    """Indices into ``c.points`` of Douglas–Peucker vertices (V,) with 3 <= V <= max_segments, or None.

    epsilon is raised until the polygon has at most ``max_segments`` vertices; for small or spiky
    shapes, where that tolerance cuts off too much, it is lowered (within the segment budget) until
    the polygon covers the shape with IoU >= ``min_iou``.
    """
    from .fit import _Splits

    splits = _Splits(c.points)
    ious: dict[bytes, float] = {}     # lowering eps often keeps the same vertices: measure each set once

    def iou(idx: np.ndarray) -> float:
        key = idx.tobytes()
        if key not in ious:
            ious[key] = _polygon_iou(idx, c)
        return ious[key]

    eps = epsilon
    idx = _polygon(c.points, eps, c.fixed, splits)
    while len(idx) > max(max_segments, len(c.fixed) + 3) and eps < 1e6:
        eps *= 1.25
        idx = _polygon(c.points, eps, c.fixed, splits)
    while eps > 0.2 and (len(idx) < 3 or iou(idx) < min_iou):
        finer = _polygon(c.points, eps * 0.7, c.fixed, splits)
        if len(finer) > max_segments:
            break
        eps *= 0.7
        idx = finer
    return idx if len(idx) >= 3 else None


def polygon_to_smooth_path(vertices: np.ndarray, corner_deg: float = _CORNER_DEG) -> np.ndarray:
    """(V, 2) closed polygon -> (3V, 2) cubic control points through every vertex.

    Douglas–Peucker keeps chords of curved outlines, so a vertex where the outline turns gently gets
    a tangent parallel to its two neighbours' chord (Catmull-Rom direction), with handles a third of
    each adjacent segment long: the curve then bulges like the outline it came from instead of
    cutting inside it. A vertex that turns by more than ``corner_deg`` is a corner: its handles lie
    on the segments, which keeps straight edges and sharp corners exact (a square stays a square).
    """
    v = np.asarray(vertices, np.float64)
    prev = np.roll(v, 1, 0)
    nxt = np.roll(v, -1, 0)
    d_in = v - prev
    d_out = nxt - v
    len_in = np.linalg.norm(d_in, axis=1)
    len_out = np.linalg.norm(d_out, axis=1)
    u_in = d_in / np.maximum(len_in, 1e-9)[:, None]
    u_out = d_out / np.maximum(len_out, 1e-9)[:, None]
    turn = np.degrees(np.arccos(np.clip((u_in * u_out).sum(1), -1.0, 1.0)))
    smooth = turn < corner_deg
    tangent = nxt - prev
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1), 1e-9)[:, None]
    # outgoing handle at each vertex and incoming handle at the next one
    out_dir = np.where(smooth[:, None], tangent, u_out)
    in_dir_next = np.where(np.roll(smooth, -1)[:, None], np.roll(tangent, -1, 0), u_out)
    c1 = v + out_dir * (len_out / 3.0)[:, None]
    c2 = nxt - in_dir_next * (len_out / 3.0)[:, None]
    return np.stack([v, c1, c2], 1).reshape(-1, 2)


CURVE_TOL = 0.5  # pixels: how far the curve fit of a contour (``mask_to_path(curve=True)``) may stray


_CURVE_IOU_WIDTH = 12.0  # pixels: shapes of a smaller mean width have the curve fit's IoU checked


def _curve_iou(pts: np.ndarray, c: _Contour) -> float:
    """IoU of the pixels whose centre the closed cubic path ``pts`` (3S, 2) covers (each segment
    flattened into 8 pieces) with the component."""
    from skimage.draw import polygon2mask

    from .geometry.simple import segments_of

    u = np.linspace(0.0, 1.0, 8, endpoint=False)[:, None, None]
    seg = segments_of(pts)[None]
    v = 1.0 - u
    poly = (v ** 3 * seg[:, :, 0] + 3 * v * v * u * seg[:, :, 1] + 3 * v * u * u * seg[:, :, 2]
            + u ** 3 * seg[:, :, 3]).transpose(1, 0, 2).reshape(-1, 2)
    rc = np.stack([poly[:, 1] - 0.5 - c.row0, poly[:, 0] - 0.5 - c.col0], 1)
    filled = polygon2mask(c.shape.shape, rc)
    return np.count_nonzero(filled & c.shape) / max(np.count_nonzero(filled | c.shape), 1)


def _curve_fits(contours: list[_Contour], max_segments: int, min_iou: float) -> list[np.ndarray | None]:
    """Control points (3S, 2) of the curve fit of every contour (:func:`lvss.geometry.curvefit.fit_contours`,
    all fitted together) within ``CURVE_TOL``, the tolerance raised until it has at most
    ``max_segments`` segments; None where it covers the shape with IoU under ``min_iou`` (small or
    spiky shapes, which the polygon fit handles)."""
    from .geometry.curvefit import fit_contours

    fits = fit_contours([(c.points, c.fixed) for c in contours], CURVE_TOL) if contours else []
    out: list[np.ndarray | None] = []
    for c, pts in zip(contours, fits):
        tol = CURVE_TOL
        while len(pts) // 3 > max(max_segments, len(c.fixed) + 3) and tol < 1e3:
            tol *= 1.25
            pts = fit_contours([(c.points, c.fixed)], tol)[0]
        if len(pts) // 3 < 2 or not np.isfinite(pts).all():
            out.append(None)
            continue
        # the fit strays at most ``tol`` from the outline: only a shape a few pixels wide can lose
        # much of its area to that (mean width 2 area / perimeter)
        perimeter = float(np.sqrt(np.add.reduce(np.diff(c.points, axis=0, append=c.points[:1]) ** 2,
                                                axis=1)).sum())
        width = 2.0 * np.count_nonzero(c.shape) / max(perimeter, 1e-9)
        out.append(None if width < _CURVE_IOU_WIDTH and _curve_iou(pts, c) < min_iou else pts)
    return out


def _check_path_args(epsilon: float, max_segments: int) -> None:
    if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a positive number of pixels, got {epsilon!r}")
    if max_segments < 3:
        raise ValueError(f"max_segments must be at least 3, got {max_segments}")


def _as_path(pts: np.ndarray) -> Path:
    return Path(torch.from_numpy(pts.astype(np.float32)), torch.tensor([0.0, 0.0, 0.0, 1.0]))


def _polygon_path(contour: _Contour, epsilon: float, max_segments: int, min_iou: float) -> Path | None:
    """The path of a contour's Douglas-Peucker polygon with smooth handles (:func:`mask_to_path`)."""
    idx = _simplify_polygon(contour, float(epsilon), int(max_segments), float(min_iou))
    if idx is None:
        return None
    from .fit import fit_closed_cubic

    return _as_path(fit_closed_cubic(contour.points, idx, corners=np.flatnonzero(np.isin(idx, contour.fixed))))


def mask_to_path(mask: np.ndarray, epsilon: float = 1.5, max_segments: int = 64,
                 min_iou: float = 0.95, holes: bool = False, curve: bool = False) -> Path | None:
    """Closed cubic Bézier path of a mask's outer contour (largest component, holes filled; see
    :func:`mask_to_paths` for one path per component). With ``holes``, the component's holes of at
    least 9 pixels stay empty: each hole's outline joins the contour through a zero-width bridge and
    runs the other way round, which the nonzero fill rule leaves unfilled (one path, no subpaths).

    mask: (H, W) bool. epsilon: Douglas–Peucker tolerance in pixels; raised as needed to keep at most
    ``max_segments`` segments, lowered (within that budget) where the polygon would cover the shape
    with IoU below ``min_iou``. Points are in pixels, pixel (r, c) covering [c, c+1] x [r, r+1], so
    rendering the path gives back the mask. Returns None when the mask is too small to contour.
    Colour is opaque black; the caller sets it. ``curve``: the contour's curve fit
    (:func:`curve_paths`), the polygon where that fails.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be a 2-D (H, W) array, got shape {m.shape}")
    if curve:
        return curve_paths([m], epsilon, max_segments, min_iou, holes)[0]
    _check_path_args(epsilon, max_segments)
    contour = _outer_contour(m.astype(bool), bool(holes))
    if contour is None or len(contour.points) < 4:
        return None
    return _polygon_path(contour, epsilon, max_segments, min_iou)


def curve_paths(masks: list[np.ndarray], epsilon: float = 1.5, max_segments: int = 64,
                min_iou: float = 0.95, holes: bool = False) -> list[Path | None]:
    """``mask_to_path(mask, ..., curve=True)`` of every mask: the curve fit of its contour within
    ``CURVE_TOL`` (all the masks' contours fitted together, a few numpy passes for a whole picture),
    or where that fails (a shape a few pixels wide that the curve covers with IoU under ``min_iou``)
    the polygon fit. None for a mask too small to contour."""
    _check_path_args(epsilon, max_segments)
    contours = []
    for mask in masks:
        m = np.asarray(mask)
        if m.ndim != 2:
            raise ValueError(f"mask must be a 2-D (H, W) array, got shape {m.shape}")
        c = _outer_contour(m.astype(bool), bool(holes))
        contours.append(c if c is not None and len(c.points) >= 4 else None)
    have = [c for c in contours if c is not None]
    fits = iter(_curve_fits(have, int(max_segments), float(min_iou)))
    out: list[Path | None] = []
    for c in contours:
        if c is None:
            out.append(None)
            continue
        pts = next(fits)
        out.append(_as_path(pts) if pts is not None else _polygon_path(c, epsilon, max_segments, min_iou))
    return out


def mask_to_paths(mask: np.ndarray, epsilon: float = 1.5, max_segments: int = 64, min_iou: float = 0.95,
                  min_pixels: int = 1, holes: bool = False) -> list[tuple[np.ndarray, Path]]:
    """One closed path per piece of a mask: (piece, path) for every piece of :func:`mask_components`
    (4-connected, at least ``min_pixels`` pixels, holes filled unless ``holes``), largest first. Pieces
    too small to contour are left out. Other arguments as in :func:`mask_to_path`."""
    out = []
    for piece in mask_components(mask, min_pixels, fill_holes=not holes):
        path = mask_to_path(piece, epsilon, max_segments, min_iou, holes)
        if path is not None:
            out.append((piece, path))
    return out


def init_scene(layering: Layering, height: int, width: int, epsilon: float = 1.5, seed: int = 0,
               max_segments: int = 64, min_pixels: int = 1) -> tuple[Scene, list[int]]:
    """One scene layer per layering layer (same order and index, named by :func:`layer_name`) and one
    path per piece of every mask (:func:`mask_to_paths`; pieces under ``min_pixels`` pixels are
    dropped), each with a random opaque colour drawn from ``seed``.

    Returns the scene and, for every path back to front, the index of its layer. Masks too small to
    contour get no path, so a layer may end up empty (it is kept so that indices line up).
    """
    rng = np.random.default_rng(seed)
    scene = Scene(width=int(width), height=int(height))
    path_layer: list[int] = []
    for li, layer in enumerate(layering.layers):
        out = Layer(name=layer_name(li, layering), id=f"layer{li + 1}")
        for lm in layer:
            if lm.mask.shape != (height, width):
                raise ValueError(f"mask shape {lm.mask.shape} does not match the canvas ({height}, {width})")
            for _, path in mask_to_paths(lm.mask, epsilon, max_segments, min_pixels=min_pixels, holes=True):
                rgb = rng.uniform(0.0, 1.0, 3)
                path.color = torch.tensor([*rgb, 1.0], dtype=torch.float32)
                out.paths.append(path)
                path_layer.append(li)
        scene.layers.append(out)
    return scene, path_layer


__all__ = ["LayerMask", "Layering", "build_layers", "layer_name", "colour_name", "assign_details", "mask_to_path",
           "mask_to_paths", "mask_components", "init_scene", "polygon_to_smooth_path"]
