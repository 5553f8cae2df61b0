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
   straight segment.
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

__all__ = ["fit_contour", "find_corners"]

CORNER_DEG = 60.0    # turn over ``reach`` px of arc on either side above which a point is a corner
REACH = 3.0          # pixels of arc over which turns and end tangents are measured
_NEWTON = 2          # re-parametrisations per fit
SMOOTH = 2           # passes of a [1, 2, 1] / 4 filter over each run before it is fitted
_MAX_DEPTH = 24      # splits of one run (a safety bound; runs of a few points stop far earlier)


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
    out = []
    for i in cand.tolist():
        # the largest turn within r of arc (ties: the first one)
        ds = np.abs(s - s[i])
        near = np.minimum(ds, total - ds) <= r
        best = turn[near].max()
        if turn[i] >= best and not any(np.minimum(abs(s[i] - s[k]), total - abs(s[i] - s[k])) <= r
                                       for k in out):
            out.append(i)
    return np.asarray(sorted(out), np.int64)


def _bezier(c: np.ndarray, u: np.ndarray) -> np.ndarray:
    v = 1.0 - u
    return ((v ** 3)[:, None] * c[0] + (3 * v * v * u)[:, None] * c[1] + (3 * v * u * u)[:, None] * c[2]
            + (u ** 3)[:, None] * c[3])


def _fit_one(q: np.ndarray, t0: np.ndarray, t1: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """One cubic from q[0] to q[-1] with handles along t0 (out of q[0]) and t1 (out of q[-1], into
    the run), fitted to the points q (M, 2). Returns its control points (4, 2) and every point's
    distance from it (M,): at its parameter, and for the (few) points farther than ``tol`` there,
    the distance from the curve itself (flattened), in case their parameter went astray. As in
    Schneider's method, a first fit farther than 4 ``tol`` from some point is not re-parametrised
    (the run will be split anyway)."""
    p0, p3 = q[0], q[-1]
    d = np.sqrt(np.einsum("ij,ij->i", np.diff(q, axis=0), np.diff(q, axis=0)))
    cum = np.concatenate([[0.0], np.cumsum(d)])
    total = cum[-1]
    u = cum / max(total, 1e-12)
    chord = float(np.hypot(*(p3 - p0)))
    tt = float(t0 @ t1)
    for it in range(_NEWTON + 1):
        v = 1.0 - u
        B = np.stack([v ** 3, 3 * v * v * u, 3 * v * u * u, u ** 3], 1)          # (M, 4)
        b1, b2 = B[:, 1], B[:, 2]
        r = q - np.outer(B[:, 0] + b1, p0) - np.outer(b2 + B[:, 3], p3)
        c11, c12, c22 = b1 @ b1, (b1 @ b2) * tt, b2 @ b2
        x1, x2 = b1 @ (r @ t0), b2 @ (r @ t1)
        det = c11 * c22 - c12 * c12
        a = b = chord / 3
        if abs(det) > 1e-9 * max(c11 * c22, 1e-30):
            a, b = (x1 * c22 - x2 * c12) / det, (c11 * x2 - c12 * x1) / det
        # handles pointing backwards, or longer than the run: the fallback of Schneider's method
        if not (a > 1e-3 and b > 1e-3 and a + b <= 2.0 * max(total, chord)):
            a = b = chord / 3
        c = np.stack([p0, p0 + a * t0, p3 + b * t1, p3])
        diff = B @ c - q
        err2 = np.einsum("ij,ij->i", diff, diff)
        if it == _NEWTON or (it == 0 and err2.max() > 16 * tol * tol):
            break
        D1 = 3 * np.stack([v * v, 2 * v * u, u * u], 1) @ np.diff(c, axis=0)                  # (M, 2)
        D2 = 6 * np.stack([v, u], 1) @ (c[2:] - 2 * c[1:3] + c[:2])
        num = np.einsum("ij,ij->i", diff, D1)
        den = np.einsum("ij,ij->i", D1, D1) + np.einsum("ij,ij->i", diff, D2)
        good = np.abs(den) > 1e-12
        u = np.clip(np.where(good, u - num / np.where(good, den, 1.0), u), 0.0, 1.0)
        u[0], u[-1] = 0.0, 1.0
        u = np.maximum.accumulate(u)
    err = np.sqrt(err2)
    far = np.flatnonzero(err > tol)
    if len(far) and len(far) <= 64:
        k = max(16, int(math.ceil(total)) * 2)
        fine = _bezier(c, np.linspace(0.0, 1.0, k + 1))
        seg_a, e = fine[:-1], np.diff(fine, axis=0)
        qf = q[far]
        tt = np.clip((((qf[:, None] - seg_a[None]) * e[None]).sum(-1)) / np.maximum((e * e).sum(-1), 1e-18)[None],
                     0.0, 1.0)
        err[far] = np.minimum(err[far], np.sqrt(((qf[:, None] - seg_a[None] - tt[..., None] * e[None]) ** 2)
                                                .sum(-1)).min(1))
    return c, err


def _chord_dist(q: np.ndarray) -> np.ndarray:
    """Distance of every point of q from the chord q[0]-q[-1]."""
    a, b = q[0], q[-1]
    e = b - a
    L2 = float((e * e).sum())
    if L2 < 1e-18:
        return np.sqrt(((q - a) ** 2).sum(1))
    t = np.clip(((q - a) * e).sum(1) / L2, 0.0, 1.0)
    return np.sqrt(((q - a - t[:, None] * e) ** 2).sum(1))


def _line(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([a, a + (b - a) / 3.0, b - (b - a) / 3.0, b])


def _tangent(q: np.ndarray, s: np.ndarray, i: int, reach: float, side: int) -> np.ndarray:
    """Unit tangent of the run q (M, 2) with arc lengths s at point i: two-sided (side 0, from the
    point ``reach`` back to the one ``reach`` ahead, clipped to the run) or one-sided out of an end
    (side +1: forwards from q[0]; side -1: backwards from q[-1])."""
    if side > 0:
        j = int(np.searchsorted(s, s[0] + min(reach, s[-1] / 3.0)))
        d = q[max(min(j, len(q) - 1), 1)] - q[0]
    elif side < 0:
        j = int(np.searchsorted(s, s[-1] - min(reach, s[-1] / 3.0), side="right")) - 1
        d = q[min(max(j, 0), len(q) - 2)] - q[-1]
    else:
        r = min(reach, s[i] - s[0], s[-1] - s[i])
        lo = int(np.searchsorted(s, s[i] - r))
        hi = int(np.searchsorted(s, s[i] + r, side="right")) - 1
        lo, hi = min(lo, i - 1), max(hi, i + 1)
        d = q[hi] - q[lo]
    return _unit(d)


def _smoothed(q: np.ndarray) -> np.ndarray:
    """The run q (M, 2) with the pixel staircase smoothed out: ``SMOOTH`` passes of the [1, 2, 1] / 4
    filter, ends fixed."""
    if len(q) < 5:
        return q
    out = q.copy()
    for _ in range(SMOOTH):
        out[1:-1] = 0.25 * out[:-2] + 0.5 * out[1:-1] + 0.25 * out[2:]
    return out


def _fit_run(q: np.ndarray, tol: float, reach: float, t0: np.ndarray | None, t1: np.ndarray | None,
             depth: int = 0) -> list[np.ndarray]:
    """Cubics (each (4, 2)) from q[0] to q[-1] within ``tol`` of the run's points. t0 / t1: the end
    tangents (t1 pointing back into the run); None at a corner (estimated one-sided)."""
    m = len(q)
    if m <= 2 or (t0 is None and t1 is None and _chord_dist(q).max() <= tol):
        return [_line(q[0], q[-1])]
    s = np.concatenate([[0.0], np.cumsum(np.sqrt((np.diff(q, axis=0) ** 2).sum(1)))])
    a = _tangent(q, s, 0, reach, +1) if t0 is None else t0
    b = _tangent(q, s, m - 1, reach, -1) if t1 is None else t1
    c, err = _fit_one(q, a, b, tol)
    if err.max() <= tol or m < 5 or depth >= _MAX_DEPTH:
        return [c]
    # split at the worst point, but not within a pixel of an end (a staircase step there would
    # leave a sliver of a segment)
    inner = np.flatnonzero((s >= min(1.0, s[-1] / 4)) & (s <= s[-1] - min(1.0, s[-1] / 4)))
    inner = inner[(inner >= 2) & (inner <= m - 3)]
    k = int(inner[np.argmax(err[inner])]) if len(inner) else int(np.clip(np.argmax(err), 2, m - 3))
    t = _tangent(q, s, k, reach, 0)
    return (_fit_run(q[:k + 1], tol, reach, a, -t, depth + 1)
            + _fit_run(q[k:], tol, reach, t, b, depth + 1))


def fit_contour(points: np.ndarray, tol: float, fixed: np.ndarray | None = None,
                corner_deg: float = CORNER_DEG, reach: float = REACH) -> np.ndarray:
    """(3V, 2) control points of a closed cubic path through points of the closed contour ``points``
    (P, 2, no repeated closing point) that stays within ``tol`` pixels of every contour point, with
    few segments (see the module docstring). fixed: indices that must be nodes, as corners."""
    pts = np.asarray(points, np.float64)
    n = len(pts)
    if n < 3:
        raise ValueError(f"a closed contour needs at least 3 points, got {n}")
    corners = find_corners(pts, corner_deg, reach)
    if fixed is not None and len(fixed):
        corners = np.union1d(corners, np.asarray(fixed, np.int64))
    segs: list[np.ndarray] = []
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
    for a, b, t0, t1 in runs:
        segs += _fit_run(_smoothed(ext[a:b + 1]), tol, reach, t0, t1)
    return np.stack([sg[:3] for sg in segs]).reshape(-1, 2)
