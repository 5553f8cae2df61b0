"""Closed contours to cubic Béziers: Douglas–Peucker vertices, then a least-squares fit of every
segment to the contour points between its two vertices.

The vertices come from Douglas–Peucker on the contour (indices into it, so each segment knows the
run of contour points it stands for). Each segment keeps its end points and gets the two inner
control points that fit its run of points best (linear least squares at chord-length parameters,
refined by a few Newton re-parametrisations). Where the outline turns gently at a vertex, the two
handles meeting there are turned onto one common tangent, so the path stays smooth there; sharper
turns stay corners. A fitted path follows curved outlines far more closely than handles placed by
rule, so the shape optimisation that follows starts close to its optimum.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["douglas_peucker", "fit_closed_cubic", "STRAIGHT_TOL"]

STRAIGHT_TOL = 0.5  # pixels: a run of contour points this close to its chord is a straight edge


def _norm_rows(x: np.ndarray) -> np.ndarray:
    """Euclidean length of every row of an (M, 2) array: the arithmetic of
    ``np.linalg.norm(x, axis=1)`` without its argument handling (it runs on many small arrays)."""
    return np.sqrt(np.add.reduce(x * x, axis=1))


class _Splits:
    """Douglas–Peucker's splits of one closed contour, measured once and kept.

    Where a run [a, b] splits (its point farthest from the chord) and how far that point lies do not
    depend on the tolerance; only whether the split is taken does: it is taken when it and every split
    above it (the runs that contain [a, b]) lie farther than the tolerance. So each measured split
    keeps the least distance on its way from the top, and the vertices for a tolerance are the splits
    whose least distance exceeds it. Runs are measured breadth first, one batch per depth, only as deep
    as the finest tolerance asked for so far needs; trying several tolerances on one contour (as
    :func:`lvss.layering.mask_to_path` does to meet its segment budget) measures each run once.
    """

    def __init__(self, points: np.ndarray):
        pts = np.asarray(points)
        self.n = n = len(pts)
        self.far = int(np.argmax(_norm_rows(pts - pts[0]))) if n >= 3 else 0
        self.ext = np.concatenate([pts, pts[:1]], 0)   # index n is point 0 again
        self._at: list[int] = []          # split point of every measured run
        self._least: list[float] = []     # least split distance from the top down to it
        self._open: list[tuple[int, int, int, float]] = []   # measured, not split yet: (a, m, b, least)
        self._floor = math.inf            # every run whose least distance exceeds this is split
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        if n >= 3 and self.far != 0:
            self._open = [(0, -1, self.far, math.inf), (self.far, -1, n, math.inf)]   # (m -1: the run itself)

    def _measure(self, runs: list[tuple[int, int]]) -> tuple[list[int], list[float]]:
        """Split point and its distance of every run (a, b), b - a >= 2, in one pass over their points:
        the point of ext[a+1:b] farthest from the segment ext[a]-ext[b] (the first one on ties). Each
        point's distance takes the same arithmetic whichever runs are measured with it."""
        ext = self.ext
        ab = np.asarray(runs, np.int64)
        a, b = ab[:, 0], ab[:, 1]
        cnt = b - a - 1
        seg = np.repeat(np.arange(len(runs)), cnt)
        starts = np.cumsum(cnt) - cnt
        idx = np.arange(int(cnt.sum())) - starts[seg] + (a + 1)[seg]
        p = ext[idx]
        pa = ext[a]
        d = ext[b] - pa
        L2 = d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]
        flat = L2 < 1e-18
        pa, d, L2s = pa[seg], d[seg], L2[seg]
        rel = p - pa
        t = (rel[:, 0] * d[:, 0] + rel[:, 1] * d[:, 1]) / np.where(flat[seg], 1.0, L2s)
        t = np.minimum(np.maximum(t, 0.0), 1.0)
        off = p - (pa + t[:, None] * d)
        off = np.where(flat[seg][:, None], rel, off)
        dist = np.sqrt(np.add.reduce(off * off, axis=1))
        top = np.maximum.reduceat(dist, starts)
        at = np.flatnonzero(dist == top[seg])
        sa = seg[at]
        first = at[np.concatenate([[True], sa[1:] != sa[:-1]])]   # the first farthest point, as argmax
        return idx[first].tolist(), top.tolist()

    def _deepen(self, eps: float) -> None:
        """Split every run whose least distance exceeds ``eps``, depth by depth."""
        grow = [o for o in self._open if o[3] > eps]
        self._open = [o for o in self._open if o[3] <= eps]
        # children of the runs to split (an entry with m == -1 is a top run, not measured yet)
        runs: list[tuple[int, int, float]] = []
        for a, m, b, least in grow:
            if m < 0:
                runs.append((a, b, least))
            else:
                runs.append((a, m, least))
                runs.append((m, b, least))
        while runs:
            runs = [r for r in runs if r[1] - r[0] >= 2]
            if not runs:
                break
            at, dist = self._measure([(a, b) for a, b, _ in runs])
            nxt = []
            for (a, b, up), m, dd in zip(runs, at, dist):
                least = min(up, dd)
                self._at.append(m)
                self._least.append(least)
                if least > eps:
                    nxt.append((a, m, least))
                    nxt.append((m, b, least))
                else:
                    self._open.append((a, m, b, least))
            runs = nxt
        self._floor = eps
        self._arrays = None

    def vertices(self, eps: float) -> np.ndarray:
        """Sorted indices of the vertices kept within ``eps`` (see :func:`douglas_peucker`)."""
        n, far = self.n, self.far
        if n < 3:
            return np.arange(n)
        if far == 0:
            return np.array([0])
        if eps < self._floor:
            self._deepen(eps)
        if self._arrays is None:
            self._arrays = (np.asarray(self._at, np.int64), np.asarray(self._least, np.float64))
        at, least = self._arrays
        keep = np.concatenate([[0, far], at[least > eps]])
        return np.unique(keep % n)


def douglas_peucker(points: np.ndarray, eps: float) -> np.ndarray:
    """Sorted indices of the Douglas–Peucker vertices of a CLOSED contour (P, 2), P >= 3 distinct
    points (a repeated closing point must be removed first). The contour is split at its first point
    and the point farthest from it, and each half is simplified within ``eps``."""
    return _Splits(points).vertices(eps)


def _fit_segments(q: np.ndarray, m: np.ndarray, iters: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Inner control points of the cubics closest to S runs of points at once, in the least-squares
    sense: the end points stay, the two inner points are solved for at chord-length parameters, and
    every parameter then takes one Newton step towards the nearest point of the curve, ``iters`` times.

    q: (S, M, 2), run i in ``q[i, :m[i]]`` and padded with its last point; m: (S,) lengths >= 4.
    Returns the inner control points (S, 2, 2) and (S,) whether each run got a fit (no fit for a run
    of zero length, or whose first system is singular; a later singular system keeps the previous
    fit). Padding adds exact zeros to every sum, so each run's fit is the one it gets alone.
    """
    S, M = q.shape[:2]
    rows = np.arange(S)
    last = np.asarray(m, np.int64) - 1
    p0, p3 = q[:, 0], q[rows, last]
    # arc length; the padding repeats the last point, so it adds nothing and its t is exactly 1
    d = np.sqrt(np.add.reduce(np.diff(q, axis=1) ** 2, axis=2))
    s = np.concatenate([np.zeros((S, 1)), np.cumsum(d, axis=1)], 1)
    total = s[:, -1]
    fitted = total >= 1e-9
    t = s / np.where(fitted, total, 1.0)[:, None]
    ctrl = np.zeros((S, 4, 2))
    live = fitted.copy()                  # still iterating
    for it in range(iters):
        u = 1.0 - t
        b0, b1, b2, b3 = u ** 3, 3 * u * u * t, 3 * u * t * t, t ** 3
        A = np.stack([b1, b2], 2)                                   # (S, M, 2)
        rhs = q - b0[..., None] * p0[:, None] - b3[..., None] * p3[:, None]
        At = A.transpose(0, 2, 1)
        AtA = At @ A
        singular = np.abs(np.linalg.det(AtA)) < 1e-12
        stop = live & singular
        if it == 0:
            fitted &= ~stop               # no fit at all; later stops keep the previous one
        live &= ~singular
        if not live.any():
            break
        AtA[~live] = np.eye(2)
        sol = np.linalg.solve(AtA, At @ rhs)                        # (S, 2, 2)
        c = np.stack([p0, sol[:, 0], sol[:, 1], p3], 1)
        ctrl[live] = c[live]
        # one Newton step on every parameter: move t to the nearest point of the curve
        c0, c1, c2, c3 = (c[:, k, None, :] for k in range(4))
        pt = b0[..., None] * c0 + b1[..., None] * c1 + b2[..., None] * c2 + b3[..., None] * c3
        d1 = 3 * ((u * u)[..., None] * (c1 - c0) + (2 * u * t)[..., None] * (c2 - c1)
                  + (t * t)[..., None] * (c3 - c2))
        d2 = 6 * (u[..., None] * (c2 - 2 * c1 + c0) + t[..., None] * (c3 - 2 * c2 + c1))
        diff = pt - q
        num = np.add.reduce(diff * d1, axis=2)
        den = np.add.reduce(d1 * d1, axis=2) + np.add.reduce(diff * d2, axis=2)
        ok = np.abs(den) > 1e-9
        step = np.where(ok, num / np.where(ok, den, 1.0), 0.0)
        t = np.minimum(np.maximum(t - step, 0.0), 1.0)
        t[:, 0] = 0.0
        t[rows, last] = 1.0
        t[np.arange(M)[None, :] > last[:, None]] = 1.0
        t = np.maximum.accumulate(t, axis=1)
    return ctrl[:, 1:3], fitted


def fit_closed_cubic(points: np.ndarray, vertices: np.ndarray, corner_deg: float = 20.0,
                     corners: np.ndarray | None = None) -> np.ndarray:
    """(3V, 2) control points of a closed cubic path through ``points[vertices]``.

    points: (P, 2) closed contour without a repeated closing point; vertices: V >= 3 sorted indices
    into it. Segment i runs from vertex i to vertex i+1 (the last back to the first) and is fitted to
    the contour points between them; straight runs and segments with too few points get handles a
    third of the chord along it. At a vertex where the contour turns by less than ``corner_deg``, both handles are
    turned onto their common direction (their length-weighted mean; lengths kept), so the outline is smooth there.
    corners: positions in ``vertices`` that stay corners whatever the turn (the ends of a zero-width
    bridge to a hole, whose two straight crossings must coincide).
    """
    pts = np.asarray(points, np.float64)
    vi = np.asarray(vertices, np.int64)
    n, V = len(pts), len(vi)
    if V < 3:
        raise ValueError(f"a closed path needs at least 3 vertices, got {V}")
    v = pts[vi]
    nxt = np.roll(v, -1, 0)
    h1 = v + (nxt - v) / 3.0              # outgoing handle of each vertex
    h2 = nxt - (nxt - v) / 3.0            # incoming handle of the next vertex
    # every segment's run of contour points at once, padded with its last point (which changes
    # neither its distance from the chord nor its fit)
    a = vi
    b = np.roll(vi, -1)
    m = np.where(b > a, b - a, b + n - a) + 1
    seg = np.flatnonzero(m >= 4)
    if len(seg):
        ms = m[seg]
        j = np.arange(int(ms.max()))
        q = pts[(a[seg, None] + np.minimum(j[None, :], ms[:, None] - 1)) % n]      # (S, M, 2)
        # a straight run (within pixel-staircase noise) stays a straight segment
        q0, q1 = q[:, 0], q[np.arange(len(seg)), ms - 1]
        dq = q1 - q0
        L2 = np.add.reduce(dq * dq, axis=1)
        rel = q - q0[:, None]
        tt = np.add.reduce(rel * dq[:, None], axis=2) / np.where(L2 < 1e-18, 1.0, L2)[:, None]
        tt = np.where((L2 < 1e-18)[:, None], 0.0, np.minimum(np.maximum(tt, 0.0), 1.0))
        off = q - (q0[:, None] + tt[..., None] * dq[:, None])
        bent = np.sqrt(np.add.reduce(off * off, axis=2)).max(1) > STRAIGHT_TOL
        seg, q, ms, q0, q1 = seg[bent], q[bent], ms[bent], q0[bent], q1[bent]
    if len(seg):
        fitted, ok = _fit_segments(q, ms)
        ok &= np.isfinite(fitted).all((1, 2))
        chord = _norm_rows(q1 - q0)
        span = np.add.reduce(np.sqrt(np.add.reduce(np.diff(q, axis=1) ** 2, axis=2)), axis=1)
        # a handle longer than the run it stands for means an ill-posed fit: keep the default
        reach = np.maximum(_norm_rows(fitted[:, 0] - q0), _norm_rows(fitted[:, 1] - q1))
        ok &= reach <= np.maximum(span, chord)
        h1[seg[ok]] = fitted[ok, 0]
        h2[seg[ok]] = fitted[ok, 1]
    # smooth vertices: outgoing handle h1[i] and incoming handle h2[i-1] on one line through v[i]
    h_in = np.roll(h2, 1, 0)
    d_out = h1 - v
    d_in = v - h_in
    l_out = np.linalg.norm(d_out, axis=1)
    l_in = np.linalg.norm(d_in, axis=1)
    ok = (l_out > 1e-6) & (l_in > 1e-6)
    u_out = d_out / np.maximum(l_out, 1e-9)[:, None]
    u_in = d_in / np.maximum(l_in, 1e-9)[:, None]
    turn = np.degrees(np.arccos(np.clip((u_out * u_in).sum(1), -1.0, 1.0)))
    smooth = ok & (turn < corner_deg)
    if corners is not None and len(corners):
        smooth[np.asarray(corners, np.int64)] = False
    # the longer handle stands for more of the contour: it turns less
    mean = u_out * l_out[:, None] + u_in * l_in[:, None]
    mean /= np.maximum(np.linalg.norm(mean, axis=1), 1e-9)[:, None]
    h1 = np.where(smooth[:, None], v + mean * l_out[:, None], h1)
    h_in = np.where(smooth[:, None], v - mean * l_in[:, None], h_in)
    h2 = np.roll(h_in, -1, 0)
    return np.stack([v, h1, h2], 1).reshape(-1, 2)
