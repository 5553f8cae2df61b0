"""Small loops and spike tips cut out of a closed cubic path where they sit, without redrawing the
rest of it.

A kink is a loop of a few pixels of outline (at most ``KINK_LOOP`` long, round at most ``KINK_AREA``)
where a path crosses itself: a node whose handles overshoot it, or one segment whose handles cross so
that the curve curls. The export used to hand such paths to skia-pathops, which gives back the same
filled area but splits every curve of the path at its extremes and inflections (a redrawn path had a
third more nodes). Here only the crossing is touched: the path runs up to the crossing point on the
first curve and on from it along the second, and what lay between (the loop) goes. That loop is a
speck the export drops anyway (islands under a pixel's area), so the filled area stays what it was up
to it, and the node count stays or falls.

A spike is a node where the outline turns back; where its two sides run closer than ``SPIKE_GAP``, the
sliver between them has no visible area, but a viewer's coarse flattening (a fixed number of straight
pieces per curve) can show it as a crossing: its tip is cut off where the sides part.

Crossings are looked for where loops can be short, between a segment and itself or its next two
(cyclically), each flattened into pieces crowded towards its ends, where kinks sit (a 10-px segment's
pieces there are a few hundredths of a pixel long), all pairs of a path in one numpy batch.
"""
from __future__ import annotations

import functools

import numpy as np

from .simple import edge_side, segments_of, signed_area

__all__ = ["cut_kinks", "KINK_LOOP", "KINK_AREA", "SPIKE_GAP"]

KINK_LOOP = 8.0       # pixels of outline: longer loops are not kinks (the caller redraws the path) ...
KINK_AREA = 1.0       # pixels²: ... nor are loops round more than this (the export's islands rule)
SPIKE_GAP = 0.05      # pixels: the tip of a spike where its sides run closer than this is cut off


@functools.lru_cache(maxsize=8)
def _flattening(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n + 1 parameters from 0 to 1, crowded towards both ends (cosine spacing: kinks sit at nodes,
    where a piece of a 10-px segment is then a few hundredths of a pixel long), and the cubic's basis
    at them (n + 1, 4); read-only."""
    t = 0.5 - 0.5 * np.cos(np.pi * np.arange(n + 1) / n)
    u = 1 - t
    B = np.stack([u ** 3, 3 * u * u * t, 3 * u * t * t, t ** 3], 1)
    t.flags.writeable = B.flags.writeable = False
    return t, B


@functools.lru_cache(maxsize=8)
def _later(n: int) -> np.ndarray:
    """(n, n) bool: piece b of a segment comes after piece a and is not its neighbour (b > a + 1);
    read-only."""
    a = np.arange(n)
    out = a[None, :] > a[:, None] + 1
    out.flags.writeable = False
    return out


def _split(seg: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """de Casteljau: the cubic (4, 2) as its parts before and after t."""
    p01, p12, p23 = seg[0] + (seg[1] - seg[0]) * t, seg[1] + (seg[2] - seg[1]) * t, seg[2] + (seg[3] - seg[2]) * t
    q0, q1 = p01 + (p12 - p01) * t, p12 + (p23 - p12) * t
    m = q0 + (q1 - q0) * t
    return np.stack([seg[0], p01, q0, m]), np.stack([m, q1, p23, seg[3]])


def _shape(segs: np.ndarray, turn: float):
    """Per segment, whether its control polygon turns by nearly half a turn or more (only then can a
    cubic curl into a loop), and per node k (the start of segment k), whether the outline turns back
    there by more than 180 degrees less ``turn`` (handles pointing less than ``turn`` apart)."""
    h = np.diff(segs, axis=1)                                        # (S, 3, 2) hodograph
    ok = np.sqrt((h ** 2).sum(-1)) > 1e-9

    def ang(u, v):
        return np.arctan2(u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0], (u * v).sum(-1))

    curled = ok.all(1) & (np.abs(ang(h[:, 0], h[:, 1]) + ang(h[:, 1], h[:, 2])) >= 0.9 * np.pi)
    into = np.where(ok[:, 2:3], h[:, 2], segs[:, 3] - segs[:, 1])
    out = np.where(ok[:, 0:1], h[:, 0], segs[:, 2] - segs[:, 0])
    back = np.abs(ang(np.roll(into, 1, 0), out)) > np.pi - turn
    return curled, back


def _find(segs: np.ndarray, max_loop: float, n: int, max_area: float = np.inf, everywhere: bool = True,
          shape: tuple[np.ndarray, np.ndarray] | None = None):
    """Every crossing that closes a small loop (at most ``max_loop`` pixels of outline round at most
    ``max_area`` pixels²) within a segment or between a segment and its next two: a list of
    (i, ti, j, tj, point), segment j = i + 0, 1 or 2 (cyclically) after i. Every segment is flattened
    into ``n`` pieces (:func:`_flattening`), all segment pairs tested in one batch; without
    ``everywhere``, only pairs where a loop can hide from a coarse test: a curled segment, or a node
    where the outline turns back by more than 90 degrees (``shape``: :func:`_shape` of ``segs`` at
    90 degrees, when known)."""
    S = len(segs)
    t, B = _flattening(n)                                                       # (n + 1,), (n + 1, 4)
    ds = [d for d in (0, 1, 2) if d < S and not (d == 2 and S < 4)]
    I = np.concatenate([np.arange(S) for _ in ds])
    D = np.concatenate([np.full(S, d) for d in ds])
    J = (I + D) % S
    if not everywhere:
        curled, back = shape if shape is not None else _shape(segs, 0.5 * np.pi)
        some = np.where(D == 0, curled[I], curled[I] | curled[J] | back[(I + 1) % S] | ((D == 2) & back[(I + 2) % S]))
        I, J, D = I[some], J[some], D[some]
        if not len(I):
            return []
    # the flattening of the segments these pairs (and the loops between them) run along
    used = np.zeros(S, bool)
    used[I] = used[J] = True
    used[(I + 1) % S] |= D == 2
    P = np.zeros((S, n + 1, 2))
    P[used] = np.einsum("mk,skd->smd", B, segs[used])                          # (S, n + 1, 2)
    arc = np.concatenate([np.zeros((S, 1)), np.cumsum(np.sqrt((np.diff(P, axis=1) ** 2).sum(-1)), 1)], 1)
    lo, hi = P.min(1), P.max(1)
    near = (D == 0) | ((lo[I] <= hi[J]).all(1) & (lo[J] <= hi[I]).all(1))
    I, J, D = I[near], J[near], D[near]
    if not len(I):
        return []
    A, Bp = P[I], P[J]                                                         # (K, n + 1, 2)
    # edge_side(a0, a1 - a0, b) for b the ends of the other segment's pieces, on x and y planes
    # (contiguous; the same arithmetic as on (..., 2) points)
    ax, ay = A[:, :-1, 0, None], A[:, :-1, 1, None]                            # (K, n, 1)
    ex, ey = A[:, 1:, 0, None] - ax, A[:, 1:, 1, None] - ay
    bx, by = Bp[:, None, :, 0], Bp[:, None, :, 1]                              # (K, 1, n + 1)
    d = ex * (by - ay) - ey * (bx - ax)                                         # (K, n, n + 1)
    d1, d2 = d[:, :, :-1], d[:, :, 1:]
    hit = d1 * d2 < 0                                                           # (K, n, n)
    # not an edge with itself or its neighbour (within a segment), nor the two edges at the node a
    # segment shares with the next (both nodes of a two-segment path); set where they are
    same, nxt = np.flatnonzero(D == 0), np.flatnonzero(D == 1)
    if len(same):
        hit[same] &= _later(n)
    hit[nxt, n - 1, 0] = False
    if S == 2:
        hit[nxt, 0, n - 1] = False
    # the other edge's side tests only where the first pair straddles (the same numbers, on fewer)
    k, a, b = np.nonzero(hit)
    A0, A1, B0, EB = A[k, a], A[k, a + 1], Bp[k, b], Bp[k, b + 1] - Bp[k, b]
    d3, d4 = edge_side(B0, EB, A0), edge_side(B0, EB, A1)
    keep = d3 * d4 < 0
    k, a, b, d3, d4 = k[keep], a[keep], b[keep], d3[keep], d4[keep]
    if not len(k):
        return []
    sa = d3 / (d3 - d4)
    sb = d1[k, a, b] / (d1[k, a, b] - d2[k, a, b])
    i, j, d = I[k], J[k], D[k]
    la = arc[i, a] + sa * (arc[i, a + 1] - arc[i, a])
    lb = arc[j, b] + sb * (arc[j, b + 1] - arc[j, b])
    mid = np.where(d == 2, arc[(i + 1) % S, -1], 0.0)
    loop = np.where(d == 0, lb - la, arc[i, -1] - la + lb + mid)
    found = []
    for q in np.flatnonzero(loop <= max_loop)[np.argsort(loop[loop <= max_loop])]:
        x = P[i[q], a[q]] + sa[q] * (P[i[q], a[q] + 1] - P[i[q], a[q]])
        # the loop's own area: a curl of a few pixels of outline round a speck, not a fold
        if d[q] == 0:
            ring = P[i[q], a[q] + 1:b[q] + 1]
        else:
            ring = np.concatenate([P[i[q], a[q] + 1:]] + [P[(i[q] + e) % S, 1:] for e in range(1, int(d[q]))]
                                  + [P[j[q], 1:b[q] + 1]], 0)
        ring = np.concatenate([x[None], ring], 0)
        area = abs(signed_area(ring))
        if area > max_area:
            continue
        ta = t[a[q]] + sa[q] * (t[a[q] + 1] - t[a[q]])
        tb = t[b[q]] + sb[q] * (t[b[q] + 1] - t[b[q]])
        found.append((int(i[q]), float(ta), int(j[q]), float(tb), x))
    return found


def _spikes(segs: np.ndarray, n: int, eps: float, shape: tuple[np.ndarray, np.ndarray] | None = None):
    """The tips of spikes: at a node where the outline turns back, the stretch where its two sides
    run closer than ``eps`` pixels (a sliver a coarse flattening shows as a crossing). For each, the
    cut where the sides part: (i, ti, j, tj, point) as :func:`_find` gives them, the point halfway
    across. ``shape``: :func:`_shape` of ``segs`` at 90 degrees, when known."""
    S = len(segs)
    if S < 3:
        return []
    _, back = shape if shape is not None else _shape(segs, 0.5 * np.pi)
    nodes = np.flatnonzero(back)
    if not len(nodes):
        return []
    t, B = _flattening(n)
    A = np.einsum("mk,skd->smd", B, segs[(nodes - 1) % S])                      # (N, n + 1, 2) into the node
    C = np.einsum("mk,skd->smd", B, segs[nodes])                                # (N, n + 1, 2) out of it
    la = np.cumsum(np.sqrt((np.diff(A[:, ::-1], axis=1) ** 2).sum(-1)), 1)      # (N, n) back from the node
    lc = np.cumsum(np.sqrt((np.diff(C, axis=1) ** 2).sum(-1)), 1)               # (N, n) on from it
    out_len = la[:, ::-1][:, :, None] + lc[:, None, :]                          # outline between them
    # the distance of a point on one side to a point on the other (a < n, c > 0) where they can be
    # closer than eps: only pairs that close in x (a distance is never below its x part, to rounding)
    dx = A[:, :-1, None, 0] - C[:, None, 1:, 0]                                  # (N, n, n)
    q, a, c = np.nonzero(np.abs(dx) < eps * (1 + 1e-9))
    dist = np.sqrt(((A[q, a] - C[q, c + 1]) ** 2).sum(-1))
    near = np.zeros(dx.shape, bool)
    near[q, a, c] = (dist < eps) & (out_len[q, a, c] > 4 * eps)
    found = []
    for q in np.flatnonzero(near.any((1, 2))):
        a, c = np.nonzero(near[q])
        k = int(np.argmax(out_len[q][a, c]))
        a, c = int(a[k]), int(c[k]) + 1
        x = 0.5 * (A[q, a] + C[q, c])
        found.append((int((nodes[q] - 1) % S), float(t[a]), int(nodes[q]), float(t[c]), x))
    return found


def _piece(seg: np.ndarray, a: float, b: float) -> np.ndarray:
    """The part of a cubic (4, 2) from parameter a to b."""
    if a > 0:
        seg = _split(seg, a)[1]
    if b < 1:
        seg = _split(seg, (b - a) / (1 - a) if a < 1 else 1.0)[0]
    return seg


def _run(segs: np.ndarray, k0: int, a: float, k1: int, b: float) -> np.ndarray:
    """The pieces of the path (segments ``segs``) from parameter a of segment k0 to b of segment
    k1 >= k0, a new (k1 - k0 + 1, 4, 2) array."""
    if k0 == k1:
        return _piece(segs[k0], a, b)[None].copy()
    return np.concatenate([_piece(segs[k0], a, 1.0)[None], segs[k0 + 1:k1], _piece(segs[k1], 0.0, b)[None]])


def cut_kinks(c: np.ndarray, max_loop: float = KINK_LOOP, max_area: float = KINK_AREA, pieces: int = 32,
              rounds: int = 4, everywhere: bool = True) -> np.ndarray:
    """The closed cubic path (3S, 2) with its kinks (crossings closing a loop of at most ``max_loop``
    pixels of outline round at most ``max_area`` pixels², within a segment or between a segment and
    its next two) cut out: the path runs to the crossing point on the first curve and on from it
    along the second. Other crossings are left as they are; the caller tests the result. Without
    ``everywhere``, loops are looked for only where a coarse test can miss them (:func:`_find`)."""
    c = np.asarray(c, np.float64)
    for r in range(rounds):
        segs = segments_of(c)
        S = len(segs)
        if S < 2:
            return c
        if r % 2:        # loops across the path's start are cut in the rounds that start elsewhere
            segs = np.roll(segs, -(S // 2), 0)
        shape = _shape(segs, 0.5 * np.pi)
        if not everywhere and not (shape[0].any() or shape[1].any()):
            return c     # no curled segment, no node turning back: nothing to look for
        found = _find(segs, max_loop, pieces, max_area, everywhere, shape) + _spikes(segs, pieces, SPIKE_GAP, shape)
        # the loops that do not wrap past the start, in order along the path, none inside another
        found = sorted((f for f in found if f[0] + (f[2] - f[0]) % S < S and f[2] >= f[0]),
                       key=lambda f: (f[0], f[1]))
        out, pos, start_x = [], (0, 0.0), None
        for i, ti, j, tj, x in found:
            if (i, ti) <= pos:
                continue
            run = _run(segs, pos[0], pos[1], i, ti)
            if start_x is not None:
                run[0, 0] = start_x
            run[-1, 3] = x
            out.append(run)
            pos, start_x = (j, tj), x
        if not out:
            return c
        run = _run(segs, pos[0], pos[1], S - 1, 1.0)
        if start_x is not None:
            run[0, 0] = start_x
        out.append(run)
        out = np.concatenate(out)                                               # (K, 4, 2)
        out = out[np.abs(out[:, 1:] - out[:, :1]).max((1, 2)) > 1e-9]
        if len(out) < 2:
            return c
        out[:, 0] = np.roll(out[:, 3], 1, 0)      # every piece starts where the one before ends
        c = out[:, :3].reshape(-1, 2)
    return c
