"""A pixel contour to the fewest cubic Béziers that stay within a tolerance of it (Schneider's
algorithm on corner-to-corner runs, potrace's idea of long curves between corners).

1. **Corners.** At every contour point the outline's turn is measured over a few pixels of arc on
   either side (the angle between the chord from the point ``reach`` px back and the chord to the
   point ``reach`` px ahead, which averages out the pixel staircase). A point is a corner where that
   turn exceeds ``corner_deg`` and is the largest within ``reach`` of arc. Points given as ``fixed``
   (the ends of a zero-width bridge to a hole) are corners too.
2. **Runs.** Every corner-to-corner run, smoothed by ``SMOOTH`` passes of a [1, 2, 1] / 4 filter
   (ends fixed), is fitted by one cubic from its first point to its last: its handles lie along the
   run's end tangents (one-sided at a corner, estimated over ``reach`` px) and get the lengths that
   fit the run's points best (least squares at chord-length parameters, then ``_NEWTON``
   re-parametrisations, each refitted; a first fit more than 4 ``tol`` off is split at once). Where
   some point strays farther than ``tol`` from the cubic, the run is split at its farthest point
   (not within a pixel of either end), with one tangent shared by both halves (so the join is
   smooth), and each half is fitted again. A corner-to-corner run within ``tol`` of its chord is a
   straight segment. All the runs of one split level are fitted together, in one numpy pass over
   an array of the runs padded to one length (a contour takes a few passes, not one per fit).
   Splitting at the farthest point is greedy and often leaves a node that a split elsewhere would
   not have needed: neighbouring segments of one run are then joined, best first, wherever one
   cubic along their outer tangents stays within ``tol`` of both runs' points (a binary disc of
   radius 24 px at 0.5 px: 16 segments split, 12 joined).
3. A closed outline without corners is cut at its first point, the point farthest from it and, on
   each side, the point farthest from the chord between those two: four smooth joins (two segments
   would make a lens).

The result is a closed path through points of the (smoothed) contour, smooth (G1) everywhere but at
the corners, with fewer nodes than one segment per Douglas-Peucker edge where the outline is clean:
a disc is 4 segments, a square 4 straight ones. The staircase of a binary mask strays up to about
0.4 px from the true outline on both sides, so tolerances under about 0.6 px follow some of its steps.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["fit_contour", "fit_contours", "find_corners"]

CORNER_DEG = 60.0    # turn over ``reach`` px of arc on either side above which a point is a corner
REACH = 3.0          # pixels of arc over which turns and end tangents are measured
_NEWTON = 2          # re-parametrisations per fit
SMOOTH = 2           # passes of a [1, 2, 1] / 4 filter over each run before it is fitted
_MAX_DEPTH = 24      # splits of one run (a safety bound; runs of a few points stop far earlier)
_BATCH = 1 << 18     # most entries of one padded array (runs x points) the batched fit works on


def _arc(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Arc length at every point of a closed contour and the closed length."""
    d = np.sqrt((np.diff(np.concatenate([points, points[:1]], 0), axis=0) ** 2).sum(1))
    s = np.concatenate([[0.0], np.cumsum(d)])
    return s[:-1], float(s[-1])


def _at(points: np.ndarray, s: np.ndarray, total: float, q: np.ndarray) -> np.ndarray:
    """Points of the closed contour at arc lengths q (any real numbers; wrapped), interpolated."""
    n = len(points)
    q = np.mod(q, total)
    i = np.clip(np.searchsorted(s, q, side="right") - 1, 0, n - 1)
    j = (i + 1) % n
    seg = np.where(j == 0, total - s[i], s[j] - s[i])
    f = np.where(seg > 1e-12, (q - s[i]) / np.maximum(seg, 1e-12), 0.0)
    return points[i] + f[:, None] * (points[j] - points[i])


def _unit(d: np.ndarray) -> np.ndarray:
    n = np.sqrt((d * d).sum(-1, keepdims=True))
    return d / np.maximum(n, 1e-12)


def find_corners(points: np.ndarray, corner_deg: float = CORNER_DEG, reach: float = REACH) -> np.ndarray:
    """Sorted indices of the corners of a closed contour (P, 2) (see the module docstring)."""
    pts = np.asarray(points, np.float64)
    n = len(pts)
    if n < 5:
        return np.arange(n)
    s, total = _arc(pts)
    r = min(reach, total / 8.0)
    back = _at(pts, s, total, s - r)
    ahead = _at(pts, s, total, s + r)
    u_in, u_out = _unit(pts - back), _unit(ahead - pts)
    turn = np.degrees(np.arccos(np.clip((u_in * u_out).sum(1), -1.0, 1.0)))
    cand = np.flatnonzero(turn > corner_deg)
    # the largest turn within r of arc of each candidate (ties: the first one), a bounded number
    # of candidates at a time
    best = np.empty(len(cand))
    step = max(1, _BATCH // n)
    for k in range(0, len(cand), step):
        ds = np.abs(s[None] - s[cand[k:k + step], None])
        best[k:k + step] = np.where(np.minimum(ds, total - ds) <= r, turn[None], -np.inf).max(1)
    out: list[int] = []
    sl = s.tolist()
    for i in cand[turn[cand] >= best].tolist():
        if not any(min(abs(sl[i] - sl[k]), total - abs(sl[i] - sl[k])) <= r for k in out):
            out.append(i)
    return np.asarray(sorted(out), np.int64)


def _batches(width: np.ndarray, weight: np.ndarray | None = None) -> list[np.ndarray]:
    """Items (R,) in groups whose padded size, summed ``weight`` (default 1 each) x largest
    ``width``, stays within ``_BATCH`` (an item alone may exceed it); all in one group, in order,
    where that fits."""
    weight = np.ones(len(width), np.int64) if weight is None else weight
    if int(weight.sum()) * int(width.max()) <= _BATCH:
        return [np.arange(len(width))]
    order = np.argsort(width, kind="stable")
    out, start, load = [], 0, 0
    for k, i in enumerate(order.tolist()):
        load += int(weight[i])
        if k > start and load * int(width[i]) > _BATCH:
            out.append(order[start:k])
            start, load = k, int(weight[i])
    out.append(order[start:])
    return out


def _curve_dist(c: np.ndarray, total: np.ndarray, q: np.ndarray, run: np.ndarray) -> np.ndarray:
    """Distance of every point q (F, 2) from the cubic c[run] (c: (R, 4, 2); run: (F,), sorted),
    each cubic flattened into k = max(16, 2 ``total``) pieces (total (R,): the arc length of the run
    it was fitted to)."""
    k = np.maximum(16, np.ceil(total).astype(np.int64) * 2)
    first = np.searchsorted(run, np.arange(len(c) + 1))
    out = np.empty(len(q))
    for g in _batches(k, np.diff(first)):
        col = np.arange(int(k[g].max()) + 1)[None]
        kg = k[g][:, None]
        # the pieces' ends at parameters i / k, 0 <= i <= k, as np.linspace(0, 1, k + 1) gives them
        u = np.where(col < kg, col * (1.0 / kg) + 0.0, 1.0)
        v = 1.0 - u
        b0, b1, b2, b3 = (v ** 3)[..., None], (3 * v * v * u)[..., None], (3 * v * u * u)[..., None], u[..., None] ** 3
        cg = c[g][:, None]
        fine = b0 * cg[..., 0, :] + b1 * cg[..., 1, :] + b2 * cg[..., 2, :] + b3 * cg[..., 3, :]      # (G, K + 1, 2)
        # piece j of each cubic (the last one repeated up to the longest cubic's count, which
        # changes no minimum)
        j = np.minimum(col[:, :-1], kg - 1)
        rows = np.arange(len(g))[:, None]
        ax, ay = fine[rows, j, 0], fine[rows, j, 1]
        ex, ey = fine[rows, j + 1, 0] - ax, fine[rows, j + 1, 1] - ay
        l2 = np.maximum(ex * ex + ey * ey, 1e-18)
        # the points of these cubics, each against every piece of its own
        pts = np.concatenate([np.arange(first[i], first[i + 1]) for i in g.tolist()]) if len(g) > 1 \
            else np.arange(first[g[0]], first[g[0] + 1])
        own = np.repeat(np.arange(len(g)), np.diff(first)[g])
        ax, ay, ex, ey, l2 = ax[own], ay[own], ex[own], ey[own], l2[own]
        px, py = q[pts, :1] - ax, q[pts, 1:] - ay
        t = np.clip((px * ex + py * ey) / l2, 0.0, 1.0)
        dx, dy = px - t * ex, py - t * ey
        out[pts] = np.sqrt(dx * dx + dy * dy).min(1)
    return out


def _fit_cubics(q: np.ndarray, valid: np.ndarray, m: np.ndarray, s: np.ndarray, t0: np.ndarray,
                t1: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """One cubic per run, fitted as in Schneider's method, all runs at once. q (R, L, 2): the runs'
    points, each padded to L with its last point (valid (R, L) marks its own m (R,) points; the
    padding adds nothing to any sum); s (R, L): arc length from each run's start; t0, t1 (R, 2): the
    handle directions out of its first point and out of its last (into the run). Each cubic runs
    from a run's first point to its last, its handle lengths fitted by least squares at chord-length
    parameters, then ``_NEWTON`` re-parametrisations, each refitted (a first fit more than 4 ``tol``
    from some point is kept as it is: the run will be split anyway). Returns the control points
    (R, 4, 2) and every point's distance from its cubic (R, L; 0 on the padding): at its parameter,
    and for a run's (few) points farther than ``tol`` there, the distance from the curve itself
    (flattened), in case their parameter went astray."""
    rows = np.arange(len(q))
    last = m - 1
    qx, qy = q[..., 0], q[..., 1]
    p0, p3 = q[:, 0], q[rows, last]
    x0, y0, x3, y3 = p0[:, :1], p0[:, 1:], p3[:, :1], p3[:, 1:]
    total = s[:, -1]
    u = s / np.maximum(total, 1e-12)[:, None]
    chord = np.hypot(*(p3 - p0).T)
    third = chord / 3
    tt = t0[:, 0] * t1[:, 0] + t0[:, 1] * t1[:, 1]
    longest = 2.0 * np.maximum(total, chord)
    a_out, b_out = np.empty(len(q)), np.empty(len(q))
    err2_out = np.empty(s.shape)
    going = np.ones(len(q), bool)
    for it in range(_NEWTON + 1):
        v = 1.0 - u
        b0, b1, b2, b3 = v ** 3, 3 * v * v * u, 3 * v * u * u, u ** 3
        w0, w3 = b0 + b1, b2 + b3
        rx, ry = qx - w0 * x0 - w3 * x3, qy - w0 * y0 - w3 * y3
        c11, c12, c22 = np.einsum("ij,ij->i", b1, b1), np.einsum("ij,ij->i", b1, b2) * tt, np.einsum("ij,ij->i", b2, b2)
        x1 = np.einsum("ij,ij->i", b1, rx * t0[:, :1] + ry * t0[:, 1:])
        x2 = np.einsum("ij,ij->i", b2, rx * t1[:, :1] + ry * t1[:, 1:])
        det = c11 * c22 - c12 * c12
        solved = np.abs(det) > 1e-9 * np.maximum(c11 * c22, 1e-30)
        det = np.where(solved, det, 1.0)
        a = np.where(solved, (x1 * c22 - x2 * c12) / det, third)
        b = np.where(solved, (c11 * x2 - c12 * x1) / det, third)
        # handles pointing backwards, or longer than the run: the fallback of Schneider's method
        fallback = ~((a > 1e-3) & (b > 1e-3) & (a + b <= longest))
        a[fallback] = b[fallback] = third[fallback]
        c1, c2 = p0 + a[:, None] * t0, p3 + b[:, None] * t1
        x1, y1, x2, y2 = c1[:, :1], c1[:, 1:], c2[:, :1], c2[:, 1:]
        dx = b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3 - qx
        dy = b0 * y0 + b1 * y1 + b2 * y2 + b3 * y3 - qy
        err2 = dx * dx + dy * dy
        a_out[going], b_out[going], err2_out[going] = a[going], b[going], err2[going]
        if it == _NEWTON:
            break
        if it == 0:
            going &= err2.max(1) <= 16 * tol * tol
            if not going.any():
                break
        e0, e1, e2 = 3 * (v * v), 3 * (2 * v * u), 3 * (u * u)
        d1x = e0 * (x1 - x0) + e1 * (x2 - x1) + e2 * (x3 - x2)
        d1y = e0 * (y1 - y0) + e1 * (y2 - y1) + e2 * (y3 - y2)
        f0, f1 = 6 * v, 6 * u
        d2x = f0 * (x2 - 2 * x1 + x0) + f1 * (x3 - 2 * x2 + x1)
        d2y = f0 * (y2 - 2 * y1 + y0) + f1 * (y3 - 2 * y2 + y1)
        num = dx * d1x + dy * d1y
        den = (d1x * d1x + d1y * d1y) + (dx * d2x + dy * d2y)
        good = np.abs(den) > 1e-12
        u = np.clip(np.where(good, u - num / np.where(good, den, 1.0), u), 0.0, 1.0)
        u[:, 0] = 0.0
        u[~valid] = 1.0
        u[rows, last] = 1.0
        u = np.maximum.accumulate(u, axis=1)
    c_out = np.stack([p0, p0 + a_out[:, None] * t0, p3 + b_out[:, None] * t1, p3], 1)
    err = np.sqrt(err2_out)
    far = err > tol
    nfar = far.sum(1)
    far &= ((nfar > 0) & (nfar <= 64))[:, None]
    if far.any():
        run, col = np.nonzero(far)
        some, run = np.unique(run, return_inverse=True)
        row = some[run]
        err[row, col] = np.minimum(err[row, col], _curve_dist(c_out[some], total[some], q[row, col], run))
    return c_out, err


def _chord_dist(q: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The largest distance of a point of each run (as :func:`_gather` gives them) from the chord
    between its first point and its last."""
    a, b = q[:, :1], q[np.arange(len(q)), m - 1][:, None]
    e = b - a
    L2 = (e * e).sum(-1)
    t = np.clip(((q - a) * e).sum(-1) / np.where(L2 < 1e-18, 1.0, L2), 0.0, 1.0)
    t[L2[:, 0] < 1e-18] = 0.0
    return np.sqrt(((q - a - t[..., None] * e) ** 2).sum(-1)).max(1)


def _smoothed(ext: np.ndarray, lo: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The runs ext[lo : lo + m] (R,) one after the other (sum(m), 2), each with the pixel staircase
    smoothed out: ``SMOOTH`` passes of the [1, 2, 1] / 4 filter, ends fixed (runs of under 5
    points as they are)."""
    col = np.arange(int(m.max()))[None]
    q = ext[lo[:, None] + np.minimum(col, (m - 1)[:, None])]
    fixed = ((col >= (m - 1)[:, None]) | (m < 5)[:, None])[..., None]
    out = q.copy()
    if out.shape[1] >= 5:
        for _ in range(SMOOTH):
            out[:, 1:-1] = 0.25 * out[:, :-2] + 0.5 * out[:, 1:-1] + 0.25 * out[:, 2:]
            out = np.where(fixed, q, out)
    return out[col < m[:, None]]


def _gather(Q: np.ndarray, lo: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs Q[lo : lo + m] as (R, L, 2), each padded with its last point to the longest length
    L, the mask of their own points (R, L) and their arc lengths from their first point (R, L)."""
    col = np.arange(int(m.max()))
    q = Q[lo[:, None] + np.minimum(col[None], (m - 1)[:, None])]
    d = np.sqrt((np.diff(q, axis=1) ** 2).sum(-1))
    s = np.zeros(q.shape[:2])
    np.cumsum(d, axis=1, out=s[:, 1:])
    return q, col[None] < m[:, None], s


def _end_tangents(q: np.ndarray, valid: np.ndarray, m: np.ndarray, s: np.ndarray,
                  reach: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided unit tangents of the runs (as :func:`_gather` gives them) out of their first point
    (forwards) and out of their last (backwards, into the run), each from the point ``reach`` (at
    most a third of the run) along the run."""
    rows, total = np.arange(len(q)), s[:, -1]
    r = np.minimum(reach, total / 3.0)
    j = np.maximum(np.minimum((s < r[:, None]).sum(1), m - 1), 1)
    j1 = np.minimum(np.maximum(((s <= (total - r)[:, None]) & valid).sum(1) - 1, 0), m - 2)
    return _unit(q[rows, j] - q[:, 0]), _unit(q[rows, j1] - q[rows, m - 1])


def _split_tangents(q: np.ndarray, valid: np.ndarray, s: np.ndarray, k: np.ndarray,
                    reach: float) -> np.ndarray:
    """Two-sided unit tangents of the runs (as :func:`_gather` gives them) at their points k (R,):
    from the point ``reach`` back to the one ``reach`` ahead, clipped to the run."""
    rows, total = np.arange(len(q)), s[:, -1]
    sk = s[rows, k]
    r = np.minimum(np.minimum(reach, sk), total - sk)
    lo = np.minimum((s < (sk - r)[:, None]).sum(1), k - 1)
    hi = np.maximum(((s <= (sk + r)[:, None]) & valid).sum(1) - 1, k + 1)
    return _unit(q[rows, hi] - q[rows, lo])


def _fit_level(Q: np.ndarray, lo: np.ndarray, hi: np.ndarray, t0: np.ndarray, t1: np.ndarray, tol: float,
               reach: float, depth: int) -> tuple[tuple[np.ndarray, ...], np.ndarray, tuple[np.ndarray, ...]]:
    """One split level of :func:`_fit_runs` for the runs lo..hi (R,) of Q: (lo, hi, t0, t1) (D,) and
    the cubics (D, 4, 2) of the runs that are done, and (lo, hi, t0, t1) of the halves of the
    others."""
    m = hi - lo + 1
    q, valid, s = _gather(Q, lo, m)
    starts, cubics = [], []        # (lo, hi, t0, t1) and the cubic of every run that is done
    if depth == 0:
        # a corner-to-corner run within ``tol`` of its chord: a straight segment
        straight = m <= 2
        corner = np.isnan(t0[:, 0]) & np.isnan(t1[:, 0]) & ~straight
        if corner.any():
            straight[corner] = _chord_dist(q[corner], m[corner]) <= tol
        if straight.any():
            a, b = Q[lo[straight]], Q[hi[straight]]
            starts.append(tuple(x[straight] for x in (lo, hi, t0, t1)))
            cubics.append(np.stack([a, a + (b - a) / 3.0, b - (b - a) / 3.0, b], 1))
            rest = ~straight
            q, valid, s, m = q[rest], valid[rest], s[rest], m[rest]
            lo, hi, t0, t1 = lo[rest], hi[rest], t0[rest], t1[rest]
        if len(lo):
            out_t, in_t = _end_tangents(q, valid, m, s, reach)
            t0 = np.where(np.isnan(t0), out_t, t0)
            t1 = np.where(np.isnan(t1), in_t, t1)
    if len(lo):
        c, err = _fit_cubics(q, valid, m, s, t0, t1, tol)
        done = (err.max(1) <= tol) | (m < 5) | (depth >= _MAX_DEPTH)
        starts.append(tuple(x[done] for x in (lo, hi, t0, t1)))
        cubics.append(c[done])
        keep = ~done
        q, valid, s, err, m = q[keep], valid[keep], s[keep], err[keep], m[keep]
        lo, hi, t0, t1 = lo[keep], hi[keep], t0[keep], t1[keep]
    if len(lo):
        # split at the worst point, but not within a pixel of an end (a staircase step there would
        # leave a sliver of a segment)
        total = s[:, -1]
        edge = np.minimum(1.0, total / 4)[:, None]
        col = np.arange(s.shape[1])[None]
        inner = (s >= edge) & (s <= total[:, None] - edge) & (col >= 2) & (col <= (m - 3)[:, None]) & valid
        k = np.where(inner.any(1), np.argmax(np.where(inner, err, -np.inf), 1),
                     np.clip(np.argmax(np.where(valid, err, -np.inf), 1), 2, m - 3))
        t = _split_tangents(q, valid, s, k, reach)
        lo, hi = np.concatenate([lo, lo + k]), np.concatenate([lo + k, hi])
        t0, t1 = np.concatenate([t0, t]), np.concatenate([-t, t1])
    return tuple(np.concatenate(x) for x in zip(*starts)), np.concatenate(cubics), (lo, hi, t0, t1)


def _fit_runs(Q: np.ndarray, lo: np.ndarray, hi: np.ndarray, t0: np.ndarray, t1: np.ndarray,
              tol: float, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Cubics (S, 4, 2), in order, from Q[lo] to Q[hi] for every run lo..hi (R,) of the points Q
    (smoothed runs, one after the other), each within ``tol`` of its run's points. t0 / t1 (R, 2):
    the end tangents (t1 pointing back into the run); NaN at a corner (estimated one-sided there,
    and a corner-to-corner run within ``tol`` of its chord is a straight segment). A run one cubic
    does not follow is split at its farthest point (not within a pixel of either end), with one
    tangent shared by both halves, and each half is fitted again; all runs of one split level are
    fitted together (in a few batches where they are many and long). Then neighbours that one cubic
    follows within ``tol`` are joined (:func:`_joined`). Also returns where each cubic's run starts
    in Q (for runs of several contours laid end to end: which contour each cubic belongs to)."""
    done, cubics = [], []
    runs = (lo, hi, t0, t1)
    depth = 0
    while len(runs[0]):
        halves = []
        for g in _batches(runs[1] - runs[0] + 1):
            st, cu, half = _fit_level(Q, *(x[g] for x in runs), tol, reach, depth)
            done.append(st)
            cubics.append(cu)
            halves.append(half)
        runs = tuple(np.concatenate(x) for x in zip(*halves))
        depth += 1
    segs = tuple(np.concatenate(x) for x in zip(*done))
    c = np.concatenate(cubics)
    order = np.argsort(segs[0], kind="stable")
    return _joined(Q, *(x[order] for x in segs), c[order], tol)


def _joined(Q: np.ndarray, lo: np.ndarray, hi: np.ndarray, t0: np.ndarray, t1: np.ndarray, c: np.ndarray,
            tol: float) -> tuple[np.ndarray, np.ndarray]:
    """The cubics c (S, 4, 2) of the runs lo..hi (S,) of Q, in order, with neighbours joined where
    one cubic (from the first one's start to the second one's end, along their outer tangents t0 /
    t1) stays within ``tol`` of both runs' points: splitting at the farthest point is greedy and
    often leaves a node that a split elsewhere would not have needed (potrace's optimal curve, one
    join at a time). Pairs are joined best first, each segment in at most one join per pass, until
    a pass joins none. Returns the cubics and where each one's run starts in Q."""
    for _ in range(_MAX_DEPTH):
        pair = np.flatnonzero(hi[:-1] == lo[1:])   # the same corner-to-corner run, a smooth node
        if len(pair) == 0:
            break
        m = hi[pair + 1] - lo[pair] + 1
        fits, errs = np.empty((len(pair), 4, 2)), np.empty(len(pair))
        for g in _batches(m):
            q, valid, s = _gather(Q, lo[pair[g]], m[g])
            fc, err = _fit_cubics(q, valid, m[g], s, t0[pair[g]], t1[pair[g] + 1], tol)
            fits[g], errs[g] = fc, err.max(1)
        ok = np.flatnonzero(errs <= tol)
        if len(ok) == 0:
            break
        taken = np.zeros(len(lo), bool)
        join = []
        for k in ok[np.argsort(errs[ok], kind="stable")].tolist():
            i = int(pair[k])
            if not taken[i] and not taken[i + 1]:
                taken[i] = taken[i + 1] = True
                join.append(k)
        first = pair[join]
        c, hi, t1 = c.copy(), hi.copy(), t1.copy()
        c[first], hi[first], t1[first] = fits[join], hi[first + 1], t1[first + 1]
        keep = np.ones(len(lo), bool)
        keep[first + 1] = False
        lo, hi, t0, t1, c = lo[keep], hi[keep], t0[keep], t1[keep], c[keep]
    return c, lo


def fit_contour(points: np.ndarray, tol: float, fixed: np.ndarray | None = None,
                corner_deg: float = CORNER_DEG, reach: float = REACH) -> np.ndarray:
    """(3V, 2) control points of a closed cubic path through points of the closed contour ``points``
    (P, 2, no repeated closing point) that stays within ``tol`` pixels of every contour point, with
    few segments (see the module docstring). fixed: indices that must be nodes, as corners."""
    return fit_contours([(points, fixed)], tol, corner_deg, reach)[0]


def fit_contours(contours: list, tol: float, corner_deg: float = CORNER_DEG, reach: float = REACH
                 ) -> list[np.ndarray]:
    """:func:`fit_contour` of every (points, fixed) in ``contours`` (fixed may be None), the same
    paths, fitted together: the runs of all the contours go through each split level in one batch,
    so a picture's outlines take a few numpy passes instead of a few per outline."""
    done: dict[int, np.ndarray] = {}
    parts = []               # (contour index, smoothed runs, lo, hi, t0, t1)
    for k, (points, fixed) in enumerate(contours):
        prep = _prepared(points, fixed, corner_deg, reach)
        if isinstance(prep, np.ndarray):
            done[k] = prep
        else:
            parts.append((k,) + prep)
    if parts:
        offset = np.cumsum([0] + [len(q) for _, q, *_ in parts])
        Q = np.concatenate([q for _, q, *_ in parts], 0)
        lo = np.concatenate([p[2] + o for p, o in zip(parts, offset)])
        hi = np.concatenate([p[3] + o for p, o in zip(parts, offset)])
        t0 = np.concatenate([p[4] for p in parts], 0)
        t1 = np.concatenate([p[5] for p in parts], 0)
        c, first = _fit_runs(Q, lo, hi, t0, t1, tol, reach)
        owner = np.searchsorted(offset, first, side="right") - 1
        for j, p in enumerate(parts):
            done[p[0]] = c[owner == j][:, :3].reshape(-1, 2)
    return [done[k] for k in range(len(contours))]


def _prepared(points: np.ndarray, fixed: np.ndarray | None, corner_deg: float, reach: float):
    """A contour's corner-to-corner runs, smoothed and laid end to end, as :func:`_fit_runs` takes
    them: (Q, lo, hi, t0, t1); or the path itself (3V, 2) where there is nothing to fit."""
    pts = np.asarray(points, np.float64)
    n = len(pts)
    if n < 3:
        raise ValueError(f"a closed contour needs at least 3 points, got {n}")
    corners = find_corners(pts, corner_deg, reach)
    if fixed is not None and len(fixed):
        corners = np.union1d(corners, np.asarray(fixed, np.int64))
    if len(corners) == 0:
        # no corner: cut at point 0 and the point farthest from it, both smooth joins
        far = int(np.argmax(((pts - pts[0]) ** 2).sum(1)))
        if far == 0:
            return np.repeat(pts[:1], 3, 0)
        # and each half at its point farthest from the chord 0-far: at least four segments, which a
        # closed smooth outline needs to be fitted well (two make a lens)
        e = pts[far] - pts[0]
        side = (pts[:, 0] - pts[0, 0]) * e[1] - (pts[:, 1] - pts[0, 1]) * e[0]
        cuts = [0, int(np.argmax(np.abs(side[:far + 1]))), far, far + int(np.argmax(np.abs(side[far:])))]
        cuts = sorted(set(cuts))
        s, total = _arc(pts)
        r = min(reach, total / 8.0)
        tang = [_unit(_at(pts, s, total, np.array([s[i] + r]))[0] - _at(pts, s, total, np.array([s[i] - r]))[0])
                for i in cuts]
        runs = [(a, b if b > a else b + n, tang[k], -tang[(k + 1) % len(cuts)])
                for k, (a, b) in enumerate(zip(cuts, cuts[1:] + cuts[:1]))]
    else:
        c = corners.tolist()
        runs = [(a, b if b > a else b + n, None, None) for a, b in zip(c, c[1:] + c[:1])]
        if len(c) == 1:
            runs = [(c[0], c[0] + n, None, None)]
    ext = np.concatenate([pts, pts, pts[:1]], 0)
    a, b = np.array([r[0] for r in runs]), np.array([r[1] for r in runs])
    hi = np.cumsum(b - a + 1) - 1
    lo = hi - (b - a)
    t0 = np.array([np.full(2, np.nan) if t is None else t for _, _, t, _ in runs])
    t1 = np.array([np.full(2, np.nan) if t is None else t for _, _, _, t in runs])
    return _smoothed(ext, a, b - a + 1), lo, hi, t0, t1
