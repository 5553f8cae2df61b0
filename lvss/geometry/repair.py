"""Clean contours at export, and hairs.

:func:`clean_contours` turns any closed cubic path into what its nonzero fill covers inside the
canvas, as non-overlapping simple contours (outer loops, holes running the other way round, so
nonzero and even-odd fill them alike), with specks under ``min_area`` pixels² dropped. The boolean
work is skia-pathops' (the path operations fontTools uses to remove overlaps in fonts).

:func:`hair_mask` tells which paths a designer would delete by hand: those enclosing less than a
share of the canvas, or thinner than about half a pixel on average (2 x area / perimeter).
:func:`join_contours` is the inverse of the export for lvss's own optimiser: one closed path whose
holes hang off their outer loop by zero-width bridges, which its nonzero fill leaves empty.
"""
from __future__ import annotations

import numpy as np
import torch

from .bridges import split_bridges
from .hidden import HIDDEN_REACH, HIDDEN_RUN, Cover
from .kinks import cut_kinks
from .simple import (area_and_perimeter, crossing_counts, edge_side, flatten_closed, mean_width, segments_of,
                     signed_area, viewer_polygon, viewer_simple)

__all__ = ["NEAR_HAIR", "EXPORT_MERGE", "clean_contours", "export_contours", "export_scene", "written_simple", "hair_mask", "join_contours", "contour_area", "SPECK_AREA"]

SPECK_AREA = 0.125   # pixels²: contours smaller than this are dropped at export
ISLAND_AREA = 1.0    # pixels²: a path's contours beside its largest one are dropped below this
CHECK_PIECES = 16    # flattening of the export's crossing test (edges per cubic segment) ...
CHECK_LENGTH = 8.0   # ... after segments longer than this (pixels of control polygon) are split
TINY_SEGMENT = 0.02  # pixels: shorter segments of a repaired outline are dropped
EXPORT_MERGE = 0.02  # pixels: runs of segments one cubic follows this closely are written as one
STUB_CHORD = 0.5     # pixels: a segment whose ends are closer than this is a stub (see _as_viewers_draw)


def _pathops():
    try:
        import pathops
    except ImportError as e:  # pragma: no cover - a core dependency
        raise ImportError("lvss needs skia-pathops to write clean SVG paths: pip install skia-pathops") from e
    return pathops


def _to_skia(points: np.ndarray, pathops, evenodd: bool = False):
    n = points.shape[0] // 3
    p = pathops.Path()
    p.fillType = pathops.FillType.EVEN_ODD if evenodd else pathops.FillType.WINDING
    pen = p.getPen()
    xy = [tuple(q) for q in np.asarray(points, np.float64).tolist()]   # Python floats, one conversion
    pen.moveTo(xy[0])
    for k in range(n):
        pen.curveTo(xy[3 * k + 1], xy[3 * k + 2], xy[(3 * k + 3) % (3 * n)])
    pen.closePath()
    return p


def _from_skia(path, pathops) -> list[np.ndarray]:
    """Every closed contour of a skia path as (3K, 2) cubic control points (lines and quadratics
    raised to cubics)."""
    out: list[np.ndarray] = []
    cur: list = []
    start = last = None

    def close():
        nonlocal cur
        if cur and start is not None and np.hypot(last[0] - start[0], last[1] - start[1]) > 1e-9:
            line(last, start)
        if len(cur) >= 1:
            out.append(np.asarray(cur, np.float64).reshape(-1, 2))
        cur = []

    def line(a, b):
        cur.extend(_straight(np.asarray(a, np.float64), np.asarray(b, np.float64)))

    for verb, pts in path.segments:
        if verb == "moveTo":
            if cur:
                close()
            start = last = pts[0]
        elif verb == "lineTo":
            line(last, pts[0])
            last = pts[0]
        elif verb == "curveTo":
            cur.extend([last, pts[0], pts[1]])     # (x, y) pairs, made an array when the contour closes
            last = pts[2]
        elif verb == "qCurveTo":
            for q0, q1 in _quads(last, pts, pathops):
                a = np.asarray(last, np.float64)
                q0, q1 = np.asarray(q0, np.float64), np.asarray(q1, np.float64)
                cur.extend([a, a + (q0 - a) * (2.0 / 3.0), q1 + (q0 - q1) * (2.0 / 3.0)])
                last = tuple(q1)
        elif verb in ("closePath", "endPath"):
            close()
            start = last = None
    if cur:
        close()
    return out


def _quads(start, pts, pathops):
    segs = pathops.decompose_quadratic_segment(tuple(pts)) if len(pts) > 2 else [tuple(pts)]
    return [(s[0], s[1]) for s in segs]


def contour_area(points: np.ndarray) -> float:
    """Signed area (pixels²) of a closed cubic contour (3K, 2), from a fine flattening: positive when
    it runs clockwise on screen (x right, y down)."""
    return signed_area(flatten_closed(points, 16))


def clean_contours(points, width: float | None = None, height: float | None = None,
                   min_area: float = SPECK_AREA, evenodd: bool = False, precision: int | None = 2,
                   split: bool = False, simple: bool | None = None, kinks: bool = True) -> list[np.ndarray]:
    """The area a closed cubic path (3S, 2) fills (nonzero rule, or ``evenodd``), clipped to the
    canvas [0, width] x [0, height] when a size is given, as simple, non-overlapping contours (3K, 2)
    each: outer loops and holes running the other way round. Contours under ``min_area`` pixels² go.
    Coordinates come rounded to ``precision`` decimals (as the SVG writes them), and are simple as
    rounded. Empty when nothing is left. A path that is already a simple loop inside the canvas comes
    back as it is (the boolean operations would split its curves at inflections, adding nodes), unless
    ``split``: then holes joined by zero-width bridges come back as contours of their own too.
    ``simple``: whether the path, rounded, is already known to be a simple loop (:func:`export_scene`
    tests a whole scene at once; None: tested here). ``kinks``: first try cutting out its kinks alone
    (:func:`lvss.geometry.kinks.cut_kinks`; False where the caller already has)."""
    return _clean(points, width, height, min_area, evenodd, precision, split, simple, kinks)[0]


def _clean(points, width, height, min_area, evenodd, precision, split, simple, kinks
           ) -> tuple[list[np.ndarray], bool]:
    """:func:`clean_contours`, and whether its contours are known to be simple loops each (tested
    on the way; False: not known, the caller tests them)."""
    pathops = _pathops()
    pts = np.asarray(points.detach().cpu().double().numpy() if isinstance(points, torch.Tensor) else points,
                     np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] % 3 or not len(pts):
        raise ValueError(f"a closed cubic path needs (3S, 2) points, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("path points contain NaN or infinite values")
    rnd = (lambda a: _as_written(a, precision)) if precision is not None else (lambda a: a)  # noqa: E731
    pts = rnd(pts)
    inside = width is None or height is None or (pts.min() >= 0 and (pts.max(0) <= (width, height)).all())
    if inside and not evenodd and not split:
        if _simple(pts) if simple is None else simple:
            return ([pts] if abs(contour_area(pts)) >= min_area else []), True
        # most paths that cross themselves only do so in kinks: cut out where they sit, the rest of
        # the path keeps its nodes (a redraw by skia splits its every curve)
        cut = rnd(cut_kinks(pts)) if kinks else pts
        if kinks and len(cut) >= 6 and _simple(cut):
            return ([cut] if abs(contour_area(cut)) >= min_area else []), True
    contours = [pts]
    known = False
    for attempt in range(2):
        p = pathops.Path()
        for c in contours:
            p.addPath(_to_skia(c, pathops))
        p.fillType = pathops.FillType.EVEN_ODD if evenodd and attempt == 0 else pathops.FillType.WINDING
        clip = _box(width, height, pathops) if attempt == 0 and width is not None and height is not None \
            and not inside else None
        out = _skia_clean(p, clip, pathops)
        # segments shorter than this are dropped (invisible at any zoom a designer uses; near a
        # node they are where rounding folds an outline)
        tiny = max(2.0 * 10.0 ** -precision if precision is not None else 0.0, TINY_SEGMENT)
        contours = [rnd(c) for part in out.contours if abs(part.area) >= min_area
                    for c1 in (_without_tiny_segments(c0, tiny) for c0 in _from_skia(part, pathops)) if c1 is not None
                    for c in _split_pinches(c1, tiny) if abs(contour_area(c)) >= min_area]
        # rounding can fold a sub-pixel sliver of a contour back over itself: simplify once more
        if all(_simple_many(contours)):
            known = True
            break
    if len(contours) > 1:
        # the knot of a kink comes out as a speck of its own beside the path's outline
        areas = [abs(contour_area(c)) for c in contours]
        top = max(areas)
        contours = [c for c, a in zip(contours, areas) if a == top or a >= max(min_area, ISLAND_AREA)]
    return contours, known


def _skia_clean(p, clip, pathops):
    """skia's simplify (and intersection with ``clip``), falling back to the straight pieces of the
    outline's flattening, then to coordinates snapped to 1/256 px, where skia's curve arithmetic
    gives up on a near-degenerate outline ("operation did not succeed")."""
    def run(q):
        out = pathops.simplify(q, fix_winding=True, keep_starting_points=False)
        if clip is not None:
            out = pathops.op(out, clip, pathops.PathOp.INTERSECTION, fix_winding=True, keep_starting_points=False)
        return out

    try:
        return run(p)
    except pathops.PathOpsError:
        pass
    contours = _from_skia(p, pathops)
    for snap in (None, 256.0):
        q = pathops.Path()
        for c in contours:
            poly = _polyline(c)
            if snap is not None:
                poly = np.round(poly * snap) / snap
            q.addPath(_to_skia(poly, pathops))
        q.fillType = p.fillType
        try:
            return run(q)
        except pathops.PathOpsError:
            continue
    raise GeometryError("skia-pathops could not resolve a path's outline, even from its straight pieces")


class GeometryError(ValueError):
    """A path's outline could not be cleaned (the message says why)."""


def export_contours(points, width: float, height: float, precision: int = 2, simple: bool | None = None,
                    kinks: bool = True) -> tuple[list[np.ndarray], int]:
    """:func:`clean_contours` for the SVG writer: contours that are simple as written, and the number
    of decimals they need. Where rounding to ``precision`` decimals folds a contour that was simple,
    one or two more decimals are written for that path; a sliver still folded then is rounding
    noise (thinner than half a pixel) and goes."""
    if simple:
        pts = _as_written(np.asarray(points.detach().cpu().double().numpy() if isinstance(points, torch.Tensor)
                                     else points, np.float64), precision)
        if pts.min() >= 0 and (pts.max(0) <= (width, height)).all():   # as it is: nothing to test again
            return clean_contours(pts, width, height, precision=precision, simple=True), precision
    for p in (precision, precision + 1, precision + 2):
        for redraw in (False, True):     # a grazing touch that rounding folds: let skia redraw it
            try:
                contours, known = _clean(points, width, height, SPECK_AREA, False, p, redraw,
                                         simple if p == precision else None, kinks)
            except GeometryError:
                # skia gave up on this outline: it is written as it is rather than lost
                pts = points.detach().cpu().double().numpy() if isinstance(points, torch.Tensor) else points
                return [_as_written(np.asarray(pts, np.float64), precision)], precision
            if (known or all(_simple_many(contours))) and not _contours_cross(contours):
                return contours, p
    # a cusp whose loop skia's curve arithmetic does not resolve: that contour as the straight pieces
    # of its flattening (whose crossings skia finds exactly), redrawn
    fixed = []
    for c in contours:
        if _simple(c):
            fixed.append(c)
            continue
        fixed += [q for q in clean_contours(_polyline(c), width, height, precision=p, split=True)]
    fixed = [c for c in fixed if _simple(c) or mean_width(*area_and_perimeter(c, 16)) >= 0.5]
    # contours that rounding made cross each other: the smaller ones give way
    fixed.sort(key=lambda c: -abs(contour_area(c)))
    kept: list[np.ndarray] = []
    for c in fixed:
        if not _contours_cross(kept + [c]):
            kept.append(c)
    return kept, p


def _simple_many(contours: list[np.ndarray]) -> list[bool]:
    """Which contours (3K, 2), taken as they are, are simple loops: one batched test (segments split
    to ``CHECK_LENGTH`` as in :func:`_simple`; a contour gets the same answer as alone)."""
    if not contours:
        return []
    return (crossing_counts([torch.from_numpy(_split_long(c)) for c in contours], CHECK_PIECES) == 0).tolist()


def written_simple(points: list, precision: int = 2) -> list[bool]:
    """Whether each closed cubic path (3S, 2), its numbers rounded as the SVG writer prints them
    (``precision`` decimals), is a simple loop: one batched crossing test. :func:`clean_contours`
    gives such a path back as it is, only clipped to the canvas where it reaches beyond it."""
    pts = [np.asarray(p.detach().cpu().double().numpy() if isinstance(p, torch.Tensor) else p, np.float64)
           for p in points]
    return [bool(v) for v in _simple_many([_as_written(p, precision) for p in pts])]


def export_scene(points: list, width: float, height: float, precision: int = 2, merge: float = EXPORT_MERGE,
                 opaque: list[bool] | None = None) -> list[tuple[list[np.ndarray], int]]:
    """:func:`export_contours` for every path of a scene, with the crossing tests batched over the
    scene: (contours, decimals) per path. Before it, kinks too small for the coarse test (a loop of a
    tenth of a pixel at a cusp) are looked for where one can hide and cut out
    (:func:`lvss.geometry.kinks.cut_kinks`); after it, runs of segments that one cubic follows within
    ``merge`` pixels become that cubic (:func:`lvss.geometry.merge.merge_segments`; 0: never), unless
    the merged contour would cross itself or the path's other contours, or put a handle off the
    canvas (:func:`merged_contours`). ``opaque``: which paths (back to front) hide what lies under
    them; where a run lies under the opaque paths drawn after it, it may stray further
    (:mod:`lvss.geometry.hidden`)."""
    pts = [np.asarray(p.detach().cpu().double().numpy() if isinstance(p, torch.Tensor) else p, np.float64)
           for p in points]
    rounded = [_as_written(p, precision) for p in pts]
    simple = _simple_many(rounded)

    def inside(c):
        return c.min() >= 0 and (c.max(0) <= (width, height)).all()

    # kinks: in a path that crosses itself, looked for everywhere; in one that passed, where a loop
    # can hide from the test. A path whose cut passes is written as cut, the others as before
    cut = {k: _as_written(cut_kinks(rounded[k], everywhere=not simple[k]), precision)
           for k in range(len(pts)) if inside(rounded[k])}
    changed = [k for k, c in cut.items() if len(c) >= 6 and (len(c) != len(rounded[k]) or not np.array_equal(c, rounded[k]))]
    for k, ok in zip(changed, _simple_many([cut[k] for k in changed])):
        if ok:
            pts[k], simple[k] = cut[k], True
    out = [export_contours(p, width, height, precision, simple=s, kinks=False) for p, s in zip(pts, simple)]
    # a hole joined to its outline by a zero-width bridge becomes a contour of its own (.bridges)
    out = [([q for c in cs for q in split_bridges(c)], dec) for cs, dec in out]
    if merge <= 0:
        return out
    cand = []                                       # (path, contour number, merged contour)
    # from the front backwards, so that what lies above a path is known: a contour partly under
    # opaque shapes is merged with the cover of the paths above it, all in one batch
    cover = Cover(width, height) if opaque is not None and any(opaque[1:]) else None
    every = []                                      # (path, contour number, contour, decimals, cover level)
    for k in range(len(out) - 1, -1, -1):
        cs, dec = out[k]
        for n, c in enumerate(cs):
            hidden = cover is not None and cover.mostly_hidden(c) is not None
            every.append((k, n, c, dec, cover.level if hidden else None))
        if cover is not None and opaque[k]:
            cover.add(cs)
    for (k, n, c, _, _), m in zip(every, merged_contours([e[2] for e in every], merge, [e[3] for e in every],
                                                         cover, [e[4] for e in every])):
        if len(m) < len(c):
            if inside(m) and abs(contour_area(m)) > 0:
                cand.append((k, n, m))
    ok = _simple_many([m for _, _, m in cand])
    new = {k: list(cs) for k, (cs, _) in enumerate(out)}
    for (k, n, m), good in zip(cand, ok):
        if good:
            new[k][n] = m
    for k in {k for k, _, _ in cand}:
        if len(new[k]) > 1 and _contours_cross(new[k]):
            new[k] = out[k][0]
    return [_as_viewers_draw(new[k], dec, width, height) for k, (_, dec) in enumerate(out)]


def _as_viewers_draw(contours: list[np.ndarray], decimals: int, width: float, height: float
                     ) -> tuple[list[np.ndarray], int]:
    """(contours, decimals), each contour also simple as a viewer flattens it
    (:func:`lvss.geometry.simple.viewer_simple`). Exact curves that run within a straight piece's
    sagitta of each other (a spike's sides around a sub-pixel stub, a curl at a node) are simple, yet a
    viewer's outline view shows them crossing. Such a contour is redrawn by skia-pathops, which splits
    its curves at their extremes and inflections into pieces that flatten well; if even that does not
    flatten simply, from the straight pieces of the viewer's own flattening, whose crossings skia
    resolves exactly (straight segments flatten to themselves)."""
    simple = [viewer_simple(c) for c in contours]
    if all(simple):
        return contours, decimals
    out: list[np.ndarray] = []
    for c, ok in zip(contours, simple):
        if ok:
            out.append(c)
            continue
        stubless = _as_written(_without_stubs(c), decimals)
        if len(stubless) >= 9 and viewer_simple(stubless) and _simple(stubless):
            out.append(stubless)
            continue
        redrawn = clean_contours(c, width, height, precision=decimals, split=True)
        if not all(viewer_simple(q) for q in redrawn):
            redrawn = clean_contours(_straight_pieces(viewer_polygon(c)), width, height, precision=decimals,
                                     split=True)
        out += redrawn
    if len(out) > 1 and _contours_cross(out):
        return contours, decimals
    return out, decimals


def _without_stubs(c: np.ndarray, limit: float = STUB_CHORD) -> np.ndarray:
    """The closed cubic path (3S, 2) without its stubs: each segment whose ends lie closer than
    ``limit`` pixels goes, its two ends joined at their midpoint (the neighbours' handles move with
    their ends), as long as three segments are left. A stub with long handles is a hook at a node
    whose neighbours then pass on both sides of it within a fraction of a pixel."""
    segs = segments_of(np.asarray(c, np.float64)).copy()
    s = 0
    while s < len(segs) and len(segs) > 3:
        if np.linalg.norm(segs[s, 3] - segs[s, 0]) >= limit:
            s += 1
            continue
        mid = (segs[s, 0] + segs[s, 3]) / 2
        prv, nxt = (s - 1) % len(segs), (s + 1) % len(segs)
        segs[prv, 2] += mid - segs[prv, 3]
        segs[prv, 3] = mid
        segs[nxt, 1] += mid - segs[nxt, 0]
        segs[nxt, 0] = mid
        segs = np.delete(segs, s, 0)
    return segs[:, :3].reshape(-1, 2)


def merged_contour(c: np.ndarray, tol: float, decimals: int, hidden=None) -> np.ndarray:
    """A written contour (3K, 2) with its runs of segments merged within ``tol`` pixels
    (:func:`lvss.geometry.merge.merge_segments`), as it would be written with ``decimals``. A merged
    curve can meet a spike's other side at a sharper angle than the segments it replaced did, so
    that a viewer's coarse flattening (about one straight piece per pixel of curve) shows a crossing
    the curves do not have: the tips of spikes are cut again (:func:`lvss.geometry.kinks.cut_kinks`).
    ``hidden``: where the contour lies under opaque shapes (:meth:`lvss.geometry.hidden.Cover.hidden`),
    runs up to ``HIDDEN_RUN`` segments long may stray up to ``HIDDEN_REACH`` pixels. The caller still
    tests the result."""
    if hidden is not None:
        from .merge import merge_segments

        m = _hidden_merge(c, merge_segments(c, tol, HIDDEN_RUN, hidden=hidden, reach=HIDDEN_REACH), decimals)
        if m is not None:
            return m
    return merged_contours([c], tol, [decimals])[0]


def _hidden_merge(c: np.ndarray, m: np.ndarray, decimals: int) -> np.ndarray | None:
    """The contour c merged with its hidden runs straying further (m), as written, or None where that
    merges nothing or a spike tip that the merge sharpened would be cut where it may show (then only
    the visible merges)."""
    m = _as_written(m, decimals)
    if len(m) < len(c) and np.array_equal(_as_written(cut_kinks(m, everywhere=False), decimals), m):
        return m
    return None


def merged_contours(contours: list[np.ndarray], tol: float, decimals: list[int], cover: Cover | None = None,
                    levels: list[int | None] | None = None) -> list[np.ndarray]:
    """:func:`merged_contour` of every contour (with its own decimals), the merging batched
    (:func:`lvss.geometry.merge.merge_many`). ``levels``: for a contour partly under the opaque
    shapes of ``cover``, the cover's :attr:`lvss.geometry.hidden.Cover.level` with the shapes above
    it (its hidden test, :meth:`lvss.geometry.hidden.Cover.mostly_hidden`, then); None for the others."""
    from .merge import merge_many

    out: list[np.ndarray | None] = [None] * len(contours)
    hid = [i for i, lv in enumerate(levels or []) if lv is not None]
    if hid and cover is not None:
        merged = merge_many([contours[i] for i in hid], tol, HIDDEN_RUN,
                            hidden=cover.hidden_many([levels[i] for i in hid]), reach=HIDDEN_REACH)
        for i, m in zip(hid, merged):
            out[i] = _hidden_merge(contours[i], m, decimals[i])
    rest = [i for i, m in enumerate(out) if m is None]
    for i, m in zip(rest, merge_many([contours[i] for i in rest], tol)):
        c, d = contours[i], decimals[i]
        out[i] = c if len(m) >= len(c) else _as_written(cut_kinks(_as_written(m, d), everywhere=False), d)
    return out


def _contours_cross(contours: list[np.ndarray]) -> bool:
    """Whether two of a path's contours cross each other (proper crossings of their flattenings)."""
    if len(contours) < 2:
        return False
    polys = [flatten_closed(c, CHECK_PIECES) for c in contours]
    ends = [np.roll(v, -1, 0) for v in polys]
    boxes = [(v.min(0), v.max(0)) for v in polys]
    # each edge's box: two edges cross only where their boxes meet, so only the edges of one contour
    # that reach into the other's box are tested against each other
    lows = [np.minimum(a, b) for a, b in zip(polys, ends)]
    highs = [np.maximum(a, b) for a, b in zip(polys, ends)]
    for i in range(len(polys)):
        for j in range(i + 1, len(polys)):
            (lo1, hi1), (lo2, hi2) = boxes[i], boxes[j]
            if (hi1 < lo2).any() or (hi2 < lo1).any():
                continue
            s1 = ~((highs[i] < lo2).any(1) | (lows[i] > hi2).any(1))
            s2 = ~((highs[j] < lo1).any(1) | (lows[j] > hi1).any(1))
            if not s1.any() or not s2.any():
                continue
            a1, b1 = polys[i][s1][:, None], ends[i][s1][:, None]               # (E1, 1, 2)
            a2, b2 = polys[j][s2][None], ends[j][s2][None]                     # (1, E2, 2)
            e1, e2 = b1 - a1, b2 - a2
            if ((edge_side(a1, e1, a2) * edge_side(a1, e1, b2) < 0)
                    & (edge_side(a2, e2, a1) * edge_side(a2, e2, b1) < 0)).any():
                return True
    return False


def _polyline(c: np.ndarray, pieces: int = 4) -> np.ndarray:
    """A contour (3K, 2) as straight cubic pieces through its flattening."""
    return _straight_pieces(flatten_closed(c, pieces))


def _straight_pieces(poly: np.ndarray) -> np.ndarray:
    """A closed polygon (P, 2) as a closed cubic path of straight segments (3P, 2)."""
    return _straight(poly, np.roll(poly, -1, 0)).reshape(-1, 2)


def _straight(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The straight cubic segment(s) from a to b, (..., 3, 2): its start and handles a third of the
    way along (the end is the next segment's start)."""
    return np.stack([a, a + (b - a) / 3.0, a + (b - a) * (2.0 / 3.0)], -2)


def _as_written(a: np.ndarray, precision: int) -> np.ndarray:
    """The numbers as the SVG writer prints them with ``precision`` decimals and a reader reads them
    back (crossing tests of near-touching outlines depend on the last digit)."""
    flat = np.asarray(a, np.float64).ravel()
    # numpy's round (x * 10^p to the nearest integer, divided by 10^p) is the printed number wherever
    # x * 10^p does not lie within its own rounding error of a half: the division of two exact numbers
    # gives the double nearest the decimal, as reading it does. Near a half, the printing decides
    y = flat * 10.0 ** precision
    out = np.round(flat, precision)
    near = ~np.isfinite(y)
    near[~near] = np.abs(y[~near] - np.floor(y[~near]) - 0.5) <= 1e-7 * np.maximum(np.abs(y[~near]), 1.0)
    if near.any():
        out[near] = [float(f"{v:.{precision}f}") for v in flat[near].tolist()]
    return out.reshape(np.shape(a))


def _without_tiny_segments(c: np.ndarray, tol: float) -> np.ndarray | None:
    """The contour (3K, 2) without segments whose control points all lie within ``tol`` of their
    start (what rounding would fold over); None when fewer than two segments remain."""
    segs = segments_of(c)
    kept = segs[np.abs(segs[:, 1:] - segs[:, :1]).max((1, 2)) > tol]
    # a spike: a segment that the next one retraces (same curve back), a zero-area sliver that
    # rounding can fold into a crossing (looked for one by one only where there is one)
    spikes = len(kept) > 2 and bool(
        (np.abs(np.roll(kept, -1, 0)[:, ::-1] - kept).max((1, 2)) <= max(tol, 1e-6) * 4).any())
    if not spikes:
        if len(kept) < 2:
            return None
        out = kept[:, :3].copy()
        out[:, 0] = np.roll(kept[:, 3], 1, 0)       # joined to the kept segment before it
        return out.reshape(-1, 2)
    keep = list(kept)
    k = 0
    while len(keep) > 2 and k < len(keep):
        a, b = keep[k], keep[(k + 1) % len(keep)]
        if np.abs(b[::-1] - a).max() <= max(tol, 1e-6) * 4:
            for i in sorted({k, (k + 1) % len(keep)}, reverse=True):
                del keep[i]
            k = max(k - 1, 0)
        else:
            k += 1
    if len(keep) < 2:
        return None
    out = []
    for k, sg in enumerate(keep):
        sg = sg.copy()
        sg[0] = keep[k - 1][3]      # joined to the kept segment before it
        out.append(sg[:3])
    return np.concatenate(out, 0)


def _split_pinches(c: np.ndarray, tol: float) -> list[np.ndarray]:
    """A contour (3K, 2) that passes through one of its nodes twice (touching itself at a point) as
    the loops on either side of that point, each a contour of its own (rounding would fold the touch
    into a crossing)."""
    nodes = c[0::3]
    n = len(nodes)
    # the first node a that a later node b meets, and the first such b: a block of nodes a at a time
    # against all nodes (about a million pairs a block)
    block = max(1, (1 << 20) // max(n, 1))
    for a0 in range(0, n, block):
        close = np.abs(nodes[a0:a0 + block, None] - nodes[None]).max(-1) <= tol
        close &= np.arange(n)[None] > np.arange(a0, min(a0 + block, n))[:, None]     # b > a
        rows = np.flatnonzero(close.any(1))
        if len(rows):
            a = a0 + int(rows[0])
            b = int(np.flatnonzero(close[rows[0]])[0])
            inner = c[3 * a:3 * b]
            outer = np.concatenate([c[3 * b:], c[:3 * a]], 0)
            return [q for part in (inner, outer) if len(part) >= 6 for q in _split_pinches(part, tol)]
    return [c]


def _simple(c: np.ndarray) -> bool:
    return int(crossing_counts([torch.from_numpy(_split_long(c))], CHECK_PIECES)[0]) == 0


def _split_long(c: np.ndarray, limit: float = CHECK_LENGTH) -> np.ndarray:
    """The same closed curve (3K, 2) with every segment whose control polygon is longer than
    ``limit`` pixels split in halves (de Casteljau) until none is: the crossing test then flattens
    long segments as finely as short ones, and finds a kink's loop wherever it sits."""
    segs = segments_of(c)                                                           # (K, 4, 2)
    for _ in range(8):
        length = np.linalg.norm(np.diff(segs, axis=1), axis=2).sum(1)
        long = length > limit
        if not long.any():
            break
        a = segs[long]
        p01, p12, p23 = (a[:, 0] + a[:, 1]) / 2, (a[:, 1] + a[:, 2]) / 2, (a[:, 2] + a[:, 3]) / 2
        q0, q1 = (p01 + p12) / 2, (p12 + p23) / 2
        mid = (q0 + q1) / 2
        first = np.stack([a[:, 0], p01, q0, mid], 1)
        second = np.stack([mid, q1, p23, a[:, 3]], 1)
        pos = np.arange(len(segs)) + np.cumsum(long) - long      # where each segment's first part goes
        out = np.empty((len(segs) + int(long.sum()), 4, 2))
        out[pos[~long]] = segs[~long]
        out[pos[long]], out[pos[long] + 1] = first, second
        segs = out
    return segs[:, :3].reshape(-1, 2)


def _box(width: float, height: float, pathops):
    box = pathops.Path()
    pen = box.getPen()
    pen.moveTo((0.0, 0.0))
    pen.lineTo((float(width), 0.0))
    pen.lineTo((float(width), float(height)))
    pen.lineTo((0.0, float(height)))
    pen.closePath()
    return box


def join_contours(contours: list[np.ndarray]) -> np.ndarray | None:
    """One closed cubic path (3S, 2) from outer loops and holes (as :func:`clean_contours` gives them):
    each further contour hangs off the path at the nearest pair of nodes by a zero-width bridge, so
    the joined path's nonzero fill equals the contours' (the bridge's two sides cancel)."""
    cs = [np.asarray(c, np.float64) for c in contours if len(c) >= 3]
    if not cs:
        return None
    cs.sort(key=lambda c: -abs(contour_area(c)))
    acc = cs[0]
    for c in cs[1:]:
        na, nc = acc[0::3], c[0::3]
        d = ((na[:, None, :] - nc[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        a_node, c_node = na[i], nc[j]
        rot = np.roll(c, -3 * j, 0)                 # the contour from its node j round to j
        acc = np.concatenate([acc[:3 * i], _straight(a_node, c_node), rot, _straight(c_node, a_node), acc[3 * i:]], 0)
    return acc


NEAR_HAIR = 1.5  # paths within this factor of a hair limit are also measured as the SVG writer writes them


def hair_mask(points: list[torch.Tensor], width: int, height: int, hair_area: float,
              hair_width: float, clip: bool = False) -> list[bool]:
    """Which paths are hairs: enclosing less than ``hair_area`` x the canvas (pixels²), or thinner than
    ``hair_width`` pixels on average (2 x area / perimeter). Areas are the paths' enclosed areas.
    With ``clip``, a path is judged as the SVG will have it: one reaching past the canvas by what the
    export keeps of it (its clean contours inside the canvas), so a path the SVG would leave out counts
    as a hair; and one within ``NEAR_HAIR`` times a limit also by the contours the writer makes of it
    (:func:`export_scene`: it cuts sub-pixel kinks, rounds the points and merges segments, which moves
    an outline by a fraction of a pixel, enough to take a path just over a limit under it)."""
    out = []
    near = []
    limit = hair_area * width * height
    for k, p in enumerate(points):
        a, per = area_and_perimeter(p)
        if clip and a >= limit:
            lo, hi = p.detach().amin(0), p.detach().amax(0)
            if float(lo.min()) < 0 or float(hi[0]) > width or float(hi[1]) > height:
                cs = clean_contours(p, width, height)
                a = sum(abs(contour_area(c)) for c in cs)
                per = sum(area_and_perimeter(c)[1] for c in cs)
        out.append(a < limit or mean_width(a, per) < hair_width)
        if clip and not out[-1] and (a < NEAR_HAIR * limit or mean_width(a, per) < NEAR_HAIR * hair_width):
            near.append(k)
    if near:
        for k, (contours, _) in zip(near, export_scene([points[k] for k in near], width, height)):
            a = sum(abs(contour_area(c)) for c in contours)
            per = sum(area_and_perimeter(c)[1] for c in contours)
            out[k] = not contours or a < limit or mean_width(a, per) < hair_width
    return out
