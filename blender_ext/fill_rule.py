"""SVG's fill rules for Blender's curve fill (numpy; no bpy, no lvss).

Blender fills curves (the Geometry Nodes Fill Curve node, which has no fill-rule setting in 4.2)
even-odd, more or less: a region is filled when a ray from it crosses the outline an odd number of
times. SVG fills ``nonzero`` by default: a region is filled when the outline winds around it at all.
The two differ where the outline winds twice the same way (a star drawn as one self-crossing path,
two nested squares turning the same way, a curl of an optimised path). Outlines whose edges lie on
top of each other (the zero-width bridge that joins a hole to its outline in one path) fill alike
by both rules, and Blender 4.2 draws them right.

:func:`fill_outline` finds, for one shape, whether Blender's fill of its splines would differ from
the shape's fill rule; when it would, it returns the rule's region as closed outlines that do not
cross each other or themselves (outer loops and holes), which any even-odd fill draws exactly. The
outlines keep the original Bézier segments wherever a whole segment survives; the rest (pieces
cut at crossings) become straight segments along the curve as Blender would evaluate it
(``steps`` points per curved segment, Blender's curve resolution), so the fill is the same polygon
Blender would have drawn, minus the wrongly filled or wrongly empty regions.

How: every spline is flattened; the edges are cut at every crossing and touching point; edges
lying on each other are merged (their directions summed); the winding number just left of every
edge gives both sides' winding; the edges with the rule's inside on one side and outside on the
other are kept, oriented with the inside on their left, and chained into loops.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

RULES = ("nonzero", "evenodd")
MIN_AREA = 0.25  # px²: regions where the rules disagree that are smaller than this are left alone


@dataclass
class Outline:
    """One closed outline: anchors with their incoming (left) and outgoing (right) handles, and for
    each segment (anchor i to i + 1) whether it is straight (Blender's VECTOR handles)."""

    anchors: list
    handles_left: list
    handles_right: list
    straight: list = field(default_factory=list)

    def segments(self) -> list:
        n = len(self.anchors)
        return [(self.anchors[i], self.handles_right[i], self.handles_left[(i + 1) % n],
                 self.anchors[(i + 1) % n]) for i in range(n)]


def _is_straight(p0, c1, c2, p1, tol: float) -> bool:
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    n2 = dx * dx + dy * dy
    if n2 <= tol * tol:
        return math.hypot(c1[0] - p0[0], c1[1] - p0[1]) <= tol and math.hypot(c2[0] - p0[0], c2[1] - p0[1]) <= tol
    n = math.sqrt(n2)
    for c in (c1, c2):
        ux, uy = c[0] - p0[0], c[1] - p0[1]
        if abs(ux * dy - uy * dx) / n > tol:
            return False
        t = (ux * dx + uy * dy) / n2
        if t < -1e-9 or t > 1 + 1e-9:
            return False
    return True


def _bezier(p0, c1, c2, p1, t: np.ndarray) -> np.ndarray:
    t = t[:, None]
    s = 1.0 - t
    return (s ** 3 * np.asarray(p0) + 3 * s * s * t * np.asarray(c1) + 3 * s * t * t * np.asarray(c2)
            + t ** 3 * np.asarray(p1))


def _flatten(splines, steps: int, tol: float):
    """Edges (E, 2) starts, (E, 2) ends and their origins [(spline, segment, k, n)]."""
    starts, ends, origin, segs = [], [], [], []
    for si, sp in enumerate(splines):
        for j, seg in enumerate(sp.segments()):
            segs.append(((si, j), seg))
            p0, c1, c2, p1 = seg
            n = 1 if _is_straight(p0, c1, c2, p1, tol) else max(int(steps), 1)
            pts = _bezier(p0, c1, c2, p1, np.linspace(0.0, 1.0, n + 1))
            pts[0], pts[-1] = p0, p1
            for k in range(n):
                starts.append(pts[k])
                ends.append(pts[k + 1])
                origin.append((si, j, k, n))
    return np.asarray(starts, np.float64).reshape(-1, 2), np.asarray(ends, np.float64).reshape(-1, 2), origin, \
        dict(segs)


def _cross(ax, ay, bx, by):
    return ax * by - ay * bx


def _splits(P: np.ndarray, Q: np.ndarray, tol: float) -> list:
    """For each edge, the points where other edges cross or touch it: [[(t, (x, y)), ...], ...]."""
    E = len(P)
    out = [[] for _ in range(E)]
    lo, hi = np.minimum(P, Q) - tol, np.maximum(P, Q) + tol
    D = Q - P
    L = np.hypot(D[:, 0], D[:, 1])
    chunk = max(1, 2_000_000 // max(E, 1))
    for i0 in range(0, E, chunk):
        i1 = min(E, i0 + chunk)
        ii = np.arange(i0, i1)[:, None]
        jj = np.arange(E)[None, :]
        near = ((jj > ii) & (lo[i0:i1, None, 0] <= hi[None, :, 0]) & (lo[None, :, 0] <= hi[i0:i1, None, 0])
                & (lo[i0:i1, None, 1] <= hi[None, :, 1]) & (lo[None, :, 1] <= hi[i0:i1, None, 1]))
        a, b = np.nonzero(near)
        if not len(a):
            continue
        a = a + i0
        d1, d2 = D[a], D[b]
        r = P[b] - P[a]
        den = _cross(d1[:, 0], d1[:, 1], d2[:, 0], d2[:, 1])
        parallel = np.abs(den) <= 1e-12 * L[a] * L[b] + 1e-300
        with np.errstate(divide="ignore", invalid="ignore"):
            t = _cross(r[:, 0], r[:, 1], d2[:, 0], d2[:, 1]) / den
            u = _cross(r[:, 0], r[:, 1], d1[:, 0], d1[:, 1]) / den
        et, eu = tol / np.maximum(L[a], 1e-300), tol / np.maximum(L[b], 1e-300)
        hit = ~parallel & (t >= -et) & (t <= 1 + et) & (u >= -eu) & (u <= 1 + eu)
        for k in np.nonzero(hit)[0]:
            ea, eb, tk, uk = int(a[k]), int(b[k]), float(t[k]), float(u[k])
            # a crossing at an edge's end is that end exactly (the same vertex for every edge)
            if tk <= et[k]:
                x = P[ea]
            elif tk >= 1 - et[k]:
                x = Q[ea]
            elif uk <= eu[k]:
                x = P[eb]
            elif uk >= 1 - eu[k]:
                x = Q[eb]
            else:
                x = P[ea] + tk * D[ea]
            x = (float(x[0]), float(x[1]))
            out[ea].append((min(max(tk, 0.0), 1.0), x))
            out[eb].append((min(max(uk, 0.0), 1.0), x))
        for k in np.nonzero(parallel)[0]:  # collinear overlaps: each edge cut at the other's ends
            ea, eb = int(a[k]), int(b[k])
            if L[ea] <= tol or L[eb] <= tol:
                continue
            if abs(_cross(r[k, 0], r[k, 1], d1[k, 0], d1[k, 1])) > tol * L[ea]:
                continue
            for e, f in ((ea, eb), (eb, ea)):
                for p in (P[f], Q[f]):
                    s = float(np.dot(p - P[e], D[e]) / (L[e] * L[e]))
                    if 0.0 < s < 1.0:
                        out[e].append((s, (float(p[0]), float(p[1]))))
    return out


class _Vertices:
    """Points snapped together within ``tol`` (a grid with neighbouring cells looked up)."""

    def __init__(self, tol: float):
        self.g = max(tol, 1e-300)
        self.cells: dict = {}
        self.points: list = []

    def id(self, p) -> int:
        cx, cy = int(math.floor(p[0] / self.g)), int(math.floor(p[1] / self.g))
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for v in self.cells.get((cx + dx, cy + dy), ()):
                    q = self.points[v]
                    if abs(q[0] - p[0]) <= self.g and abs(q[1] - p[1]) <= self.g:
                        return v
        self.points.append((float(p[0]), float(p[1])))
        self.cells.setdefault((cx, cy), []).append(len(self.points) - 1)
        return len(self.points) - 1


def _winding(points: np.ndarray, A: np.ndarray, B: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Winding numbers of ``points`` around the edges A -> B, edge e counted D[e] times."""
    out = np.zeros(len(points), np.int64)
    chunk = max(1, 2_000_000 // max(len(A), 1))
    for i0 in range(0, len(points), chunk):
        p = points[i0:i0 + chunk]
        px, py = p[:, 0:1], p[:, 1:2]
        ax, ay, bx, by = A[None, :, 0], A[None, :, 1], B[None, :, 0], B[None, :, 1]
        left = (bx - ax) * (py - ay) - (px - ax) * (by - ay)
        up = (ay <= py) & (by > py) & (left > 0)
        down = (ay > py) & (by <= py) & (left < 0)
        out[i0:i0 + chunk] = ((up.astype(np.int64) - down.astype(np.int64)) * D[None, :]).sum(1)
    return out


def _inside(rule: str, w: np.ndarray) -> np.ndarray:
    return (w != 0) if rule == "nonzero" else (w % 2 != 0)


def fill_outline(splines, rule: str = "nonzero", steps: int = 12, min_area: float = MIN_AREA,
                 region: str = "rule"):
    """None when Blender's fill of ``splines`` (objects with ``segments()`` giving cubic segments
    (p0, c1, c2, p1), closed) already draws the ``rule`` region (``"nonzero"`` or ``"evenodd"``);
    else the region as :class:`Outline` loops that neither cross nor overlap, filled correctly
    even-odd. ``steps``: points per curved segment, as Blender evaluates it (its curve resolution).
    Regions smaller than ``min_area`` (square units) where the two fills differ are ignored.

    ``region="missing"``: instead, only what the rule fills and Blender's fill of the splines leaves
    empty (for nonzero: where the outline winds an even number of times, twice or more), which
    does not overlap Blender's fill; drawn next to it, the two make the rule's region."""
    if region not in ("rule", "missing"):
        raise ValueError(f"region must be 'rule' or 'missing', got {region!r}")
    if rule not in RULES:
        raise ValueError(f"fill rule must be one of {RULES}, got {rule!r}")
    splines = [sp for sp in splines if len(sp.anchors) >= 1]
    if not splines:
        return None
    allpts = np.asarray([p for sp in splines for seg in sp.segments() for p in seg], np.float64)
    scale = float(max(np.ptp(allpts[:, 0]), np.ptp(allpts[:, 1]), 1e-12))
    tol = 1e-9 * scale
    P, Q, origin, segments = _flatten(splines, steps, tol)
    if not len(P):
        return None
    cuts = _splits(P, Q, tol)
    verts = _Vertices(tol)
    merged: dict = {}  # (a, b) with a < b -> [count a->b minus count b->a, [(origin, forward, cut)]]
    for e in range(len(P)):
        pts = sorted({(0.0, (float(P[e, 0]), float(P[e, 1]))), (1.0, (float(Q[e, 0]), float(Q[e, 1]))), *cuts[e]})
        ids = [verts.id(p) for _, p in pts]
        ids = [v for i, v in enumerate(ids) if i == 0 or v != ids[i - 1]]
        cut = len(ids) > 2
        for u, v in zip(ids, ids[1:]):
            key, fwd = ((u, v), True) if u < v else ((v, u), False)
            rec = merged.setdefault(key, [0, []])
            rec[0] += 1 if fwd else -1
            rec[1].append((origin[e], fwd, cut))
    V = np.asarray(verts.points, np.float64)
    keys = [k for k, rec in merged.items() if rec[0] != 0]
    if not keys:  # everything cancels out: nothing to fill either way
        return None
    K = np.asarray(keys, np.int64)
    A, B = V[K[:, 0]], V[K[:, 1]]
    Dn = np.asarray([merged[k][0] for k in keys], np.int64)
    d = B - A
    length = np.hypot(d[:, 0], d[:, 1])
    normal = np.stack([-d[:, 1], d[:, 0]], 1) / np.maximum(length, 1e-300)[:, None]
    eps = np.minimum(1e-6 * scale, 0.25 * length)
    wl = _winding((A + B) / 2 + normal * eps[:, None], A, B, Dn)
    wr = wl - Dn
    fl, fr = _inside(rule, wl), _inside(rule, wr)
    keep = fl != fr
    # where Blender's even-odd fill and the rule disagree (edges lying on each other, as in a hole's
    # zero-width bridge, cancel out or count twice; Blender 4.2 fills those like even-odd)
    wrong = (fl != (wl % 2 != 0)) | (fr != (wr % 2 != 0))
    if not wrong.any() or _disagreement_area(keys, keep, fl, wl, wr, V) < min_area:
        return None
    if region == "missing":
        fl, fr = fl & (wl % 2 == 0), fr & (wr % 2 == 0)
        keep = fl != fr
    loops = _chain(keys, keep, fl, V, merged)
    return [_outline(loop, V, segments) for loop in loops] or None


def _disagreement_area(keys, keep, fl, wl, wr, V) -> float:
    """The area where the rule's region and the even-odd region differ (one nests in the other
    for nonzero, so this is the difference of their areas)."""
    a, b = np.asarray([k[0] for k in keys]), np.asarray([k[1] for k in keys])
    shoelace = (V[a, 0] * V[b, 1] - V[b, 0] * V[a, 1]) / 2.0  # edge a -> b, inside on its left
    odd_l, odd_r = wl % 2 != 0, wr % 2 != 0
    rule_area = float((shoelace * keep * np.where(fl, 1.0, -1.0)).sum())
    odd_area = float((shoelace * (odd_l != odd_r) * np.where(odd_l, 1.0, -1.0)).sum())
    return abs(rule_area - odd_area)


def _chain(keys, keep, fl, V, merged) -> list:
    """The kept edges, inside on their left, chained into closed loops of (a, b, origin, forward)."""
    out_edges: dict = {}
    for k in np.nonzero(keep)[0]:
        a, b = keys[k]
        rec = merged[(a, b)]
        own = rec[1][0] if len(rec[1]) == 1 and not rec[1][0][2] else None
        if fl[k]:
            e = (a, b, own[0] if own else None, own[1] if own else None)
        else:
            e = (b, a, own[0] if own else None, (not own[1]) if own else None)
        out_edges.setdefault(e[0], []).append(e)
    loops = []
    used: set = set()
    for start in list(out_edges):
        for first in out_edges[start]:
            if id(first) in used:
                continue
            loop = [first]
            used.add(id(first))
            cur = first
            while cur[1] != start or len(loop) == 0:
                cands = [e for e in out_edges.get(cur[1], ()) if id(e) not in used]
                if not cands:
                    break
                if len(cands) > 1:  # the sharpest left turn keeps touching loops apart
                    dx, dy = V[cur[1]] - V[cur[0]]

                    def turn(e):
                        ex, ey = V[e[1]] - V[e[0]]
                        return math.atan2(dx * ey - dy * ex, dx * ex + dy * ey)
                    cands.sort(key=turn, reverse=True)
                cur = cands[0]
                used.add(id(cur))
                loop.append(cur)
            if len(loop) >= 2:
                loops.append(loop)
    return loops


def _outline(loop, V, segments) -> Outline:
    """A loop of edges as an :class:`Outline`: runs of edges that make up one whole original
    segment become that cubic segment again, other edges straight segments."""
    n = len(loop)

    def boundary(e) -> bool:  # an original segment can start at this edge
        o, fwd = e[2], e[3]
        return o is None or (fwd and o[2] == 0) or (not fwd and o[2] == o[3] - 1)

    start = next((i for i in range(n) if boundary(loop[i])), 0)
    loop = loop[start:] + loop[:start]
    pieces = []  # (p0, c1, c2, p1, straight)
    i = 0
    while i < n:
        e = loop[i]
        o, fwd = e[2], e[3]
        if o is not None and o[3] > 1 and boundary(e) and i + o[3] <= n:
            si, j, _, m = o
            run = loop[i:i + m]
            want = [(si, j, k, m) for k in (range(m) if fwd else range(m - 1, -1, -1))]
            if [r[2] for r in run] == want and all(r[3] == fwd for r in run):
                p0, c1, c2, p1 = segments[(si, j)]
                pieces.append((p0, c1, c2, p1, False) if fwd else (p1, c2, c1, p0, False))
                i += m
                continue
        a, b = V[e[0]], V[e[1]]
        pieces.append((tuple(a), None, None, tuple(b), True))
        i += 1
    # straight pieces in one line become one
    merged: list = []
    for pc in pieces:
        if merged and pc[4] and merged[-1][4]:
            p0, p1, p2 = merged[-1][0], pc[0], pc[3]
            ux, uy, vx, vy = p1[0] - p0[0], p1[1] - p0[1], p2[0] - p1[0], p2[1] - p1[1]
            lu, lv = math.hypot(ux, uy), math.hypot(vx, vy)
            if abs(ux * vy - uy * vx) <= 1e-9 * max(lu * lv, 1e-300) and ux * vx + uy * vy > 0:
                merged[-1] = (p0, None, None, p2, True)
                continue
        merged.append(pc)
    if len(merged) > 2 and merged[0][4] and merged[-1][4]:
        p0, p1, p2 = merged[-1][0], merged[0][0], merged[0][3]
        ux, uy, vx, vy = p1[0] - p0[0], p1[1] - p0[1], p2[0] - p1[0], p2[1] - p1[1]
        if abs(ux * vy - uy * vx) <= 1e-9 * max(math.hypot(ux, uy) * math.hypot(vx, vy), 1e-300) \
                and ux * vx + uy * vy > 0:
            merged[0] = (p0, None, None, p2, True)
            merged.pop()
    anchors, left, right, straight = [], [], [], []
    for p0, c1, c2, p1, st in merged:
        if st:
            c1 = (p0[0] + (p1[0] - p0[0]) / 3.0, p0[1] + (p1[1] - p0[1]) / 3.0)
            c2 = (p0[0] + 2.0 * (p1[0] - p0[0]) / 3.0, p0[1] + 2.0 * (p1[1] - p0[1]) / 3.0)
        anchors.append(tuple(map(float, p0)))
        right.append(tuple(map(float, c1)))
        left.append(tuple(map(float, c2)))  # the next anchor's left handle, rotated below
        straight.append(st)
    left = left[-1:] + left[:-1]
    return Outline(anchors, left, right, straight)
