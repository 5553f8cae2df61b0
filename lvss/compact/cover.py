"""Compact mode's last step: no hairs, no holes in the picture.

* :func:`drop_hairs`: paths a designer would delete by hand (lvss.geometry.repair.hair_mask: enclosing
  less than ``OptimizeConfig.hair_area`` of the canvas or thinner than ``hair_width`` px on average)
  are left out; a detail circle of 5 px at 256 px is far from either limit, a shrunken one or a
  sliver region is not.
* :func:`cover_gaps`: the merged regions tile the opaque pixels, each region's path grown under the
  ones in front of it (``CompactConfig.underlap``), but the path stage moves every path, and a hair
  left out leaves its pixels bare. Where an opaque pixel is left uncovered (coverage below
  ``FULL_COVERAGE`` where the input is fully opaque, a seam the background would show through; below
  ``GAP_COVERAGE`` of the input's alpha on the picture's own anti-aliased edge), the back-most path
  (the largest region) is re-contoured to take those pixels too:
  its own shape plus every pixel the paths in front of it leave bare; if that still leaves a gap (the
  gaps were not connected to it), it becomes the backdrop of all opaque pixels (the whole canvas for
  an opaque picture). Nothing changes where nothing is bare.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["drop_hairs", "cover_gaps", "uncovered", "as_written", "GAP_COVERAGE"]

GAP_COVERAGE = 0.5  # a pixel of the picture's own anti-aliased edge (input alpha in (0.5, 1)) the paths
#                     cover less than half of its alpha is a gap (without the alpha: less than half);
#                     a pixel of alpha 0.5 covered 0.47 is the edge fitted, not a gap
WRITTEN_TOL = 0.01  # px: a path the writer gives back within this (its rounding to 2 decimals) is kept
FULL_COVERAGE = 0.98  # a fully opaque pixel (input alpha 1, not on the opaque area's edge) the paths cover
#                       less than this shows the background through (a seam of two anti-aliased edges: ~0.75)


def drop_hairs(pts: list[torch.Tensor], colors: torch.Tensor, n_s: int, width: int, height: int,
               hair_area: float, hair_width: float):
    """(points, colours, structural count) without the hairs: each path judged as the SVG will have
    it (:func:`lvss.geometry.repair.hair_mask` with ``clip``, which measures a path near a limit on the
    contours the SVG writer makes of it)."""
    from ..geometry.repair import hair_mask

    if not pts:
        return pts, colors, n_s
    hair = hair_mask([p.detach().cpu() for p in pts], width, height, hair_area, hair_width, clip=True)
    keep = [i for i, h in enumerate(hair) if not h]
    if len(keep) == len(pts):
        return pts, colors, n_s
    return [pts[i] for i in keep], colors[keep], sum(1 for i in keep if i < n_s)


def as_written(pts: list[torch.Tensor], width: int, height: int) -> tuple[list[torch.Tensor], int]:
    """``pts`` with every path the SVG writer would change (:func:`lvss.geometry.repair.clean_contours`:
    a path that crosses itself gets its kinks cut, or becomes the area its nonzero fill covers)
    replaced by the one contour the writer makes of it; returns (points, paths replaced). A simple
    path stays as it is, also where it reaches beyond the canvas (the writer clips it, which shows
    the same). A path the
    writer makes several contours of, or none, stays as it is. The rasteriser takes a pixel's coverage
    as min(|winding sum|, 1), which differs from the writer's outline where a twisted loop (winding -1)
    shares pixels with the rest, so without this the path stage could fit a shape the SVG does not
    have (OpenMoji 2615 at 64 paths: a region with a 96 px sliver twisted at its tip, 173 px² to the
    rasteriser, 146 px² as written: 41.1 dB in resvg, 45.1 dB for its control points as they were)."""
    from ..geometry.repair import clean_contours, written_simple

    out, changed = list(pts), 0
    for i, (p, simple) in enumerate(zip(pts, written_simple(pts) if pts else [])):
        if simple:  # written as it is (clipped to the canvas at most, which shows the same)
            continue
        src = p.detach().cpu().double().numpy()
        written = clean_contours(src, width, height, simple=False)
        if len(written) != 1 or len(written[0]) < 6:
            continue
        w = written[0]
        if w.shape == src.shape and np.abs(w - src).max() <= WRITTEN_TOL:
            continue  # as written up to the writer's rounding
        out[i] = torch.from_numpy(w).to(p.device, p.dtype)
        changed += 1
    return out, changed


def _coverage(pts: list[torch.Tensor], width: int, height: int) -> np.ndarray:
    """(H, W) alpha of the paths drawn opaque."""
    from ..render.torch_raster import render_torch

    if not pts:
        return np.zeros((height, width), np.float32)
    one = torch.tensor([[0.0, 0.0, 0.0, 1.0]], device=pts[0].device).expand(len(pts), 4).contiguous()
    with torch.no_grad():
        return render_torch([p.detach() for p in pts], one, width, height)[1].cpu().numpy()


def _need(valid: np.ndarray, opaque: np.ndarray | None, alpha: np.ndarray | None = None) -> np.ndarray:
    """(H, W) coverage each pixel needs: FULL_COVERAGE on ``opaque``, GAP_COVERAGE elsewhere in ``valid``
    (times the input's ``alpha`` there when given)."""
    rim = GAP_COVERAGE if alpha is None else GAP_COVERAGE * np.asarray(alpha, np.float64)
    need = np.where(np.asarray(valid, bool), rim, 0.0)
    if opaque is not None:
        need = np.where(np.asarray(opaque, bool) & (need > 0), FULL_COVERAGE, need)
    return need


def uncovered(pts: list[torch.Tensor], valid: np.ndarray, opaque: np.ndarray | None = None,
              alpha: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool: the ``valid`` pixels the paths cover less than GAP_COVERAGE (of the input's
    ``alpha`` when given), and the ``opaque`` ones (input alpha 1; None: none singled out) less than
    FULL_COVERAGE."""
    h, w = valid.shape
    need = _need(valid, opaque, alpha)
    return (need > 0) & (_coverage(pts, w, h) < need)


def cover_gaps(pts: list[torch.Tensor], n_s: int, valid: np.ndarray, epsilon: float,
               opaque: np.ndarray | None = None, alpha: np.ndarray | None = None) -> tuple[list[torch.Tensor], int]:
    """``pts`` with the back-most structural path re-contoured over the pixels left bare (see the
    module docstring and :func:`uncovered`); returns (points, gap pixels left: 0 unless the opaque
    pixels are in several separate pieces)."""
    from ..layering import mask_to_path

    valid = np.asarray(valid, bool)
    gaps = uncovered(pts, valid, opaque, alpha)
    if not gaps.any() or n_s == 0:
        return pts, int(gaps.sum())
    h, w = valid.shape
    dev = pts[0].device
    bare = valid & (_coverage(pts[1:], w, h) < _need(valid, opaque, alpha))
    own = _coverage(pts[:1], w, h) > 0.5
    masks = [valid & (own | bare), valid]
    if alpha is not None:
        # the backdrop of the opaque area, but not under the picture's own anti-aliased edge where the
        # paths in front already give it its alpha: the back path's colour would show through their
        # edge there (over transparency a halo of it; the refit then pushed the front paths' edge out
        # to hide it, an edge too opaque)
        edge = valid & (np.asarray(alpha) < 1.0 - 0.5 / 255) & ~bare & ~own
        if edge.any():
            masks.insert(1, valid & ~edge)
    for mask in masks:
        p = mask_to_path(mask, epsilon, max_segments=256, holes=True)
        if p is None:
            continue
        trial = [p.points.to(dev)] + list(pts[1:])
        left = uncovered(trial, valid, opaque, alpha)
        if not left.any():
            return trial, 0
    return trial, int(left.sum())


def absorb_slivers(g, min_area: float, min_width: float):
    """Mapping (N,) of the graph ``g``'s masks that folds every mask smaller than ``min_area`` pixels,
    or thinner than ``min_width`` px on average (2 x area / boundary length), into its cheapest
    neighbour (Ward cost, firm boundaries or not), repeated until none is left (or it has no
    neighbour): a region that small would become a hair of a path."""
    from .graph import coarsen, consecutive, ward_cost

    mapping = np.arange(g.n)
    cur = g
    for _ in range(8):
        if len(cur.edges) == 0:
            break
        per = np.bincount(cur.edges[:, 0], cur.edge_len, cur.n) + np.bincount(cur.edges[:, 1], cur.edge_len, cur.n)
        width = 2.0 * cur.area / np.maximum(per, 1e-12)
        small = (cur.area < min_area) | ((width < min_width) & (per > 0))
        if not small.any():
            break
        i, j = cur.edges[:, 0], cur.edges[:, 1]
        cost = ward_cost(cur, i, j)
        parent = np.arange(cur.n)
        # each sliver joins its cheapest neighbour (no chains: a sliver's partner is not itself moved)
        best = np.full(cur.n, np.inf)
        partner = np.arange(cur.n)
        for a, b in ((i, j), (j, i)):
            for e in np.flatnonzero(small[a]).tolist():
                if cost[e] < best[a[e]]:
                    best[a[e]], partner[a[e]] = cost[e], b[e]
        moved = np.zeros(cur.n, bool)
        for s in np.flatnonzero(small).tolist():
            p = int(partner[s])
            if p != s and not moved[p]:
                parent[s] = p
                moved[s] = True
        if not moved.any():
            break
        roots = parent.copy()
        step = consecutive(roots)
        mapping = step[mapping]
        cur = coarsen(cur, step)
    return mapping
