"""Fewer nodes where they buy nothing: runs of cubic segments replaced by one cubic that stays within
a fraction of a pixel of them.

For every run of consecutive segments of a closed path (up to ``max_run`` of them), one cubic is
fitted from the run's first node to its last: its handles keep the directions of the run's outer
handles (so the joins with the segments before and after stay as smooth, or as sharp, as they were)
and get the lengths that fit the run's points best (least squares, starting from parameters that
give each segment its share of the run's length, then a few Newton re-parametrisations, refitted each
time). The run may be replaced when every point of it lies within ``tol`` pixels of the new cubic
*and* the new cubic halfway between two neighbouring points stays within ``tol`` of the original
there (no loop or bulge between the samples). The fewest segments
that cover the closed path are then picked by dynamic programming over its nodes (ties: the least
total deviation), starting from its sharpest corner, which no run crosses.

Everything is numpy, one batch of runs of each length per path (a run is tried only where the run
one segment shorter fitted). The result can touch or cross itself where the original only came
close: the caller re-tests it (:func:`lvss.geometry.repair.export_scene` does, in one batch) and
keeps the original where it does. The export uses it with 0.02 px
(:data:`lvss.geometry.repair.EXPORT_MERGE`): the optimised outlines are placed to a few hundredths
of a pixel, and 0.1 px already costs 0.65 dB of PSNR on clip art.
"""
from __future__ import annotations

import numpy as np

from .simple import segments_of

__all__ = ["merge_segments", "MAX_RUN"]

MAX_RUN = 8          # segments: the longest run one cubic may replace
_SAMPLES = 16        # points per original segment where the fit is measured
_NEWTON = 4          # re-parametrisations
_BATCH = 4096        # runs fitted in one pass of merge_many (bounds its arrays on large scenes)


def _bezier_xy(c0, c1, c2, c3, u):
    """Points of cubics at parameters u (R, L), control points (R, 2) each: their x and y, (R, L)
    each (planes: a sum over a last axis of two is slow in numpy)."""
    v = 1.0 - u
    w0, w1, w2, w3 = v ** 3, 3 * v * v * u, 3 * v * u * u, u ** 3
    return tuple(w0 * c0[:, k, None] + w1 * c1[:, k, None] + w2 * c2[:, k, None] + w3 * c3[:, k, None]
                 for k in (0, 1))


def _to_piece_xy(q, a, b):
    """Distance from points q to the straight pieces a-b, each an (x, y) pair of arrays."""
    ex, ey = b[0] - a[0], b[1] - a[1]
    qx, qy = q[0] - a[0], q[1] - a[1]
    s = np.clip((qx * ex + qy * ey) / np.maximum(ex * ex + ey * ey, 1e-18), 0.0, 1.0)
    dx, dy = qx - s * ex, qy - s * ey
    return np.sqrt(dx * dx + dy * dy)


def _tangent(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Unit direction from a towards b, or towards c where b sits on a (a degenerate handle)."""
    d = b - a
    n = np.hypot(d[..., 0], d[..., 1])
    d2 = c - a
    d = np.where((n > 1e-9)[..., None], d, d2)
    n = np.hypot(d[..., 0], d[..., 1])
    return d / np.maximum(n, 1e-12)[..., None]


def _samples(segs: np.ndarray) -> np.ndarray:
    """The points where runs of the closed path's segments (S, 4, 2) are fitted and checked: 2 x
    ``_SAMPLES`` per segment, segment by segment, and the path's first point again at the end
    (S * 2 * _SAMPLES + 1, 2)."""
    m = _SAMPLES
    t = np.arange(2 * m) / (2 * m)          # even ones: the points fitted; odd ones: checked between
    v = 1.0 - t
    B = np.stack([v ** 3, 3 * v * v * t, 3 * v * t * t, t ** 3], 1)            # (2m, 4)
    pts = np.einsum("mk,skd->smd", B, segs).reshape(len(segs) * 2 * m, 2)
    return np.concatenate([pts, pts[:1]], 0)


def _fit_at(pts: np.ndarray, first: np.ndarray, head: np.ndarray, tail: np.ndarray, k: int,
            tol: float = 0.0, hidden=None, reach: float = np.inf, owner: np.ndarray | None = None):
    """Fit one cubic to each of R runs of ``k`` segments: run r's samples are
    ``pts[first[r]:first[r] + 2 k _SAMPLES + 1]`` (:func:`_samples`), its first segment is ``head[r]``
    (4, 2) and its last ``tail[r]``. Returns the fitted control points (R, 4, 2) and each run's
    deviation (R,) in pixels (inf where the fit is unusable). ``hidden``: (points (..., 2), which
    (...) int) -> (...) bool, with ``owner[r]`` (R,) for the points of run r; where a sample strays
    more than ``tol`` (but at most ``reach``) and it, its counterpart and the point halfway between
    them are hidden, its deviation counts as 0."""
    m = _SAMPLES
    R = len(first)
    L = k * m + 1
    full = pts[first[:, None] + np.arange(2 * L - 1)[None]]                      # (R, 2L - 1, 2)
    X, mid = full[:, 0::2], full[:, 1::2]                                         # (R, L, 2), (R, L - 1, 2)
    p0 = head[:, 0]
    p3 = tail[:, 3]
    t0 = _tangent(p0, head[:, 1], head[:, 2])
    t1 = _tangent(p3, tail[:, 2], tail[:, 1])
    # starting parameters: each segment gets its share of the run's length, uniform in its own
    # parameter within it (exact up to that share for a run that splits one cubic)
    step = np.sqrt((np.diff(full, axis=1) ** 2).sum(-1)).reshape(R, k, 2 * m).sum(-1)   # (R, k) lengths
    cum = np.concatenate([np.zeros((R, 1)), np.cumsum(step, 1)], 1)
    total = cum[:, -1]
    j = np.arange(L - 1)
    u = np.concatenate([cum[:, j // m] + step[:, j // m] * (j % m) / m, total[:, None]], 1)
    u = u / np.maximum(total, 1e-12)[:, None]
    chord = np.sqrt(((p3 - p0) ** 2).sum(-1))
    # the arithmetic below on x and y planes (R, L) (a sum over a last axis of two is slow)
    Xx, Xy = np.ascontiguousarray(X[..., 0]), np.ascontiguousarray(X[..., 1])
    mx, my = np.ascontiguousarray(mid[..., 0]), np.ascontiguousarray(mid[..., 1])
    g0x, g0y = Xx - p0[:, 0, None], Xy - p0[:, 1, None]  # the residual's pieces, by basis weight
    d30 = p3 - p0

    def solve(u):
        vv = 1.0 - u
        b1, b2 = 3 * vv * vv * u, 3 * vv * u * u
        w = b2 + u ** 3
        rx, ry = g0x - w * d30[:, 0, None], g0y - w * d30[:, 1, None]   # X - (b0 + b1) p0 - (b2 + b3) p3
        rt0 = rx * t0[:, 0, None] + ry * t0[:, 1, None]
        rt1 = rx * t1[:, 0, None] + ry * t1[:, 1, None]
        tt = (t0 * t1).sum(-1)
        c11 = (b1 * b1).sum(1)
        c12 = (b1 * b2).sum(1) * tt
        c22 = (b2 * b2).sum(1)
        x1 = (b1 * rt0).sum(1)
        x2 = (b2 * rt1).sum(1)
        det = c11 * c22 - c12 * c12
        ok = np.abs(det) > 1e-9 * np.maximum(c11 * c22, 1e-30)
        sd = np.where(ok, det, 1.0)
        a = np.where(ok, (x1 * c22 - x2 * c12) / sd, chord / 3)
        b = np.where(ok, (c11 * x2 - c12 * x1) / sd, chord / 3)
        return a, b

    for _ in range(_NEWTON):
        a, b = solve(u)
        c1, c2 = p0 + a[:, None] * t0, p3 + b[:, None] * t1
        Qx, Qy = _bezier_xy(p0, c1, c2, p3, u)
        vv = 1.0 - u
        w1, w2, w3 = vv * vv, 2 * vv * u, u * u
        h1, h2, h3 = c1 - p0, c2 - c1, p3 - c2
        d1x, d1y = (3 * (w1 * h1[:, k, None] + w2 * h2[:, k, None] + w3 * h3[:, k, None]) for k in (0, 1))
        k1, k2 = c2 - 2 * c1 + p0, p3 - 2 * c2 + c1
        d2x, d2y = (6 * (vv * k1[:, k, None] + u * k2[:, k, None]) for k in (0, 1))
        fx, fy = Qx - Xx, Qy - Xy
        num = fx * d1x + fy * d1y
        den = (d1x * d1x + d1y * d1y) + (fx * d2x + fy * d2y)
        good = np.abs(den) > 1e-12
        u = np.clip(np.where(good, u - num / np.where(good, den, 1.0), u), 0.0, 1.0)
        u[:, 0], u[:, -1] = 0.0, 1.0
    a, b = solve(u)
    c1, c2 = p0 + a[:, None] * t0, p3 + b[:, None] * t1
    Qx, Qy = _bezier_xy(p0, c1, c2, p3, u)
    dev = np.sqrt((Qx - Xx) ** 2 + (Qy - Xy) ** 2)                               # (R, L)
    # between two neighbouring samples the curve must stay near the original between them (no loop,
    # no bulge): its point halfway in parameter against the original's two pieces through its
    # halfway sample
    Mx, My = _bezier_xy(p0, c1, c2, p3, 0.5 * (u[:, 1:] + u[:, :-1]))
    off = np.minimum(_to_piece_xy((Mx, My), (Xx[:, :-1], Xy[:, :-1]), (mx, my)),
                     _to_piece_xy((Mx, My), (mx, my), (Xx[:, 1:], Xy[:, 1:])))    # (R, L - 1)
    if hidden is not None:
        dev = _forgive_hidden(dev, X, np.stack([Qx, Qy], -1), tol, hidden, reach, owner)
        far = np.nonzero((off > tol) & (off <= reach))
        if len(far[0]):
            off[far] = np.where(hidden(np.stack([Mx[far], My[far]], -1), owner[far[0]]), 0.0, off[far])
    err = np.maximum(dev.max(1), off.max(1))
    monotone = (np.diff(u, axis=1) >= 0).all(1)
    bad = ~monotone | (a <= 0) | (b <= 0) | ~np.isfinite(err) | (a + b > 2.0 * total)
    fit, err = np.stack([p0, c1, c2, p3], 1), np.where(bad, np.inf, err)
    if hidden is not None:
        # where the run hides under other shapes, a straight segment may do what the curve with
        # the run's end tangents cannot (a staircase of the mask's outline)
        miss = np.flatnonzero(err > tol)
        if len(miss):
            line, lerr = _line_runs(X[miss], mid[miss], p0[miss], p3[miss], tol, hidden, reach, owner[miss])
            use = lerr < err[miss]
            fit[miss[use]], err[miss[use]] = line[use], lerr[use]
    return fit, err


def _forgive_hidden(d: np.ndarray, a: np.ndarray, b: np.ndarray, tol: float, hidden, reach: float,
                    owner: np.ndarray) -> np.ndarray:
    """The deviations ``d`` (R, ...) between the points ``a`` and ``b`` (R, ..., 2), 0 (in place)
    where one exceeds ``tol`` but not ``reach`` and both points and the point halfway between them
    are hidden (row r tested as ``owner[r]``, see :func:`_fit_at`)."""
    far = np.nonzero((d > tol) & (d <= reach))
    if len(far[0]):
        x, q, w = a[far], b[far], owner[far[0]]
        d[far] = np.where(hidden(x, w) & hidden(q, w) & hidden(0.5 * (x + q), w), 0.0, d[far])
    return d


def _line_runs(X: np.ndarray, mid: np.ndarray, p0: np.ndarray, p3: np.ndarray, tol: float, hidden,
               reach: float, owner: np.ndarray):
    """Straight segments from p0 to p3 (R, 2) for runs sampled at X (R, L, 2), with ``mid`` (R, L - 1,
    2) between the samples: control points (R, 4, 2) and deviations (R,) as in :func:`_fit_at`
    (each sample against its nearest point on the segment)."""
    e = p3 - p0
    ee = np.maximum((e * e).sum(-1), 1e-18)[:, None]
    ex, ey = e[:, 0, None], e[:, 1, None]
    dev = []
    for q in (X, mid):
        # each point's nearest point on the segment, on x and y planes
        qx, qy = q[..., 0], q[..., 1]
        s = np.clip(((qx - p0[:, 0, None]) * ex + (qy - p0[:, 1, None]) * ey) / ee, 0.0, 1.0)
        nx, ny = p0[:, 0, None] + s * ex, p0[:, 1, None] + s * ey
        d = np.sqrt((qx - nx) ** 2 + (qy - ny) ** 2)
        dev.append(_forgive_hidden(d, q, np.stack([nx, ny], -1), tol, hidden, reach, owner).max(1))
    err = np.maximum(dev[0], dev[1])
    ctrl = np.stack([p0, p0 + e / 3.0, p0 + 2.0 * e / 3.0, p3], 1)
    return ctrl, np.where(np.sqrt(ee[:, 0]) > 1e-6, err, np.inf)


def merge_segments(points: np.ndarray, tol: float, max_run: int = MAX_RUN, hidden=None,
                   reach: float = np.inf) -> np.ndarray:
    """A closed cubic path (3S, 2) with the fewest segments whose runs each stay within ``tol``
    pixels of the segments they replace (see the module docstring). Returns the path itself when
    nothing merges. ``hidden``: points (..., 2) -> (...) bool, where a run may stray up to ``reach``
    pixels (:class:`lvss.geometry.hidden.Cover`: under the opaque shapes above the path)."""
    return merge_many([points], tol, max_run, None if hidden is None else (lambda q, _: hidden(q)), reach)[0]


def merge_many(paths: list[np.ndarray], tol: float, max_run: int = MAX_RUN, hidden=None,
               reach: float = np.inf) -> list[np.ndarray]:
    """:func:`merge_segments` of every closed cubic path (3S, 2) of ``paths``: the runs of each
    length fitted in one batch over all of them (each gets the numbers it gets alone). ``hidden``:
    (points (..., 2), which (...) int) -> (...) bool, whether points of ``paths[which]`` are hidden
    (:meth:`lvss.geometry.hidden.Cover.hidden_many`)."""
    out = [np.asarray(p, np.float64) for p in paths]
    todo = [n for n, p in enumerate(out) if len(p) // 3 >= 3] if tol > 0 else []
    if not todo:
        return out
    m = _SAMPLES
    segs, base, live = [], [], []
    at = 0
    for n in todo:
        sg = segments_of(out[n])                                                      # (S, 4, 2)
        # start at the sharpest corner: the angle between the handles meeting at each node
        t_in = _tangent(sg[:, 0], np.roll(sg[:, 2], 1, 0), np.roll(sg[:, 1], 1, 0))
        t_out = _tangent(sg[:, 0], sg[:, 1], sg[:, 2])
        start = int(np.argmax((t_in * t_out).sum(-1)))     # handles most nearly the same way: sharpest
        segs.append(np.roll(sg, -start, 0))
        base.append(at)
        at += len(sg) * 2 * m + 1
        live.append(np.arange(len(sg) - 1))
    pts = np.concatenate([_samples(sg) for sg in segs], 0)
    # runs grow one segment at a time from where the shorter run still fitted (a run whose part
    # already strays rarely fits as a whole), and never past the start node
    fits: list[list[tuple[int, int, np.ndarray, float]]] = [[] for _ in todo]  # (start, length, points, deviation)
    for k in range(2, max_run + 1):
        live = [lv[lv + k <= len(sg)] for lv, sg in zip(live, segs)]
        if not any(len(lv) for lv in live):
            break
        first = np.concatenate([b + lv * 2 * m for b, lv in zip(base, live)])
        head = np.concatenate([sg[lv] for sg, lv in zip(segs, live)])
        tail = np.concatenate([sg[lv + k - 1] for sg, lv in zip(segs, live)])
        owner = np.concatenate([np.full(len(lv), n) for n, lv in zip(todo, live)])
        # at most _BATCH runs a pass (a run's arrays hold about 2k x _SAMPLES points each)
        parts = [_fit_at(pts, first[a:a + _BATCH], head[a:a + _BATCH], tail[a:a + _BATCH], k, tol, hidden, reach,
                         owner[a:a + _BATCH]) for a in range(0, len(first), _BATCH)]
        f = np.concatenate([q[0] for q in parts], 0)
        err = np.concatenate([q[1] for q in parts], 0)
        ok = err <= tol
        at = 0
        for q, lv in enumerate(live):
            o, fq, eq = ok[at:at + len(lv)], f[at:at + len(lv)], err[at:at + len(lv)]
            fits[q] += [(int(i), k, c, float(e)) for i, c, e in zip(lv[o], fq[o], eq[o])]
            live[q] = lv[o]
            at += len(o)
    for q, n in enumerate(todo):
        out[n] = _fewest(out[n], segs[q], fits[q])
    return out


def _fewest(pts: np.ndarray, segs: np.ndarray, fits: list[tuple[int, int, np.ndarray, float]]) -> np.ndarray:
    """The path (3S, 2) as the fewest of its segments ``segs`` (S, 4, 2; from its sharpest corner) and
    fitted runs ``fits`` (start, length, control points, deviation), ties by total deviation; the
    path itself when nothing merges."""
    S = len(segs)
    if not fits:
        return pts
    # fewest segments from node 0 to node S (= node 0), ties by total deviation
    cost = np.full(S + 1, np.inf)
    dev = np.zeros(S + 1)
    back = np.zeros(S + 1, np.int64)
    pick = np.full(S + 1, -1, np.int64)
    cost[0] = 0.0
    by_end: dict[int, list[int]] = {}
    for r, (i, k, _, _) in enumerate(fits):
        by_end.setdefault(i + k, []).append(r)
    for j in range(1, S + 1):
        cost[j], dev[j], back[j], pick[j] = cost[j - 1] + 1, dev[j - 1], j - 1, -1
        for r in by_end.get(j, ()):
            i = fits[r][0]
            c, d = cost[i] + 1, dev[i] + fits[r][3]
            if c < cost[j] or (c == cost[j] and d < dev[j]):
                cost[j], dev[j], back[j], pick[j] = c, d, i, r
    if cost[S] >= S:
        return pts
    out = []
    j = S
    while j > 0:
        i = int(back[j])
        out.append(fits[pick[j]][2] if pick[j] >= 0 else segs[i])
        j = i
    out = np.stack(out[::-1])                                   # (K, 4, 2)
    return out[:, :3].reshape(-1, 2)
