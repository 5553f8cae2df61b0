"""Is a closed cubic path a simple loop? Crossing tests, areas and widths of flattened paths.

A path (3S, 2) is flattened into ``pieces`` straight edges per cubic segment (uniform in t). Two
edges cross when each one's ends lie strictly on opposite sides of the other's line; edges that only
touch or overlap along a line (a zero-width bridge, a shared end) do not count. Adjacent edges
(sharing an end, including the closing pair) are never tested against each other.

Only pairs of segments whose control-point boxes overlap can cross (a cubic lies in its control
points' hull), so the tests run on those pairs alone: paths with many segments cost about as much as
their overlapping neighbourhoods, not the square of their size. A set of paths is tested in one
pass, whatever the paths' number and sizes (:class:`CrossingIndex`, which the optimiser's guard sets
up once and reuses at every step), in numpy on the CPU (the answers on the points' own device).
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["crossing_counts", "sorted_unique", "crossing_pairs", "edge_side", "signed_area", "made_simple", "straightened", "flatten_closed", "area_and_perimeter", "mean_width", "segments_of"]

DEFAULT_PIECES = 8


_BASIS: dict = {}


def edge_side(o, e, q):
    """Which side of the line through ``o`` along ``e`` the point ``q`` lies on: e x (q - o), for torch
    tensors or numpy arrays (..., 2) alike; exactly zero when ``q`` is ``o``, so edges that only touch
    at an end never count as crossing."""
    r = q - o
    return e[..., 0] * r[..., 1] - e[..., 1] * r[..., 0]


def signed_area(v: np.ndarray) -> float:
    """Signed area (pixels²) of a closed polygon (V, 2): positive when it runs clockwise on screen
    (x right, y down)."""
    x, y = v[:, 0], v[:, 1]
    xn, yn = np.concatenate([x[1:], x[:1]]), np.concatenate([y[1:], y[:1]])   # np.roll(., -1), faster
    return 0.5 * float((x * yn - xn * y).sum())


def _basis(pieces: int, dev, dt) -> torch.Tensor:
    """(m, 4) Bernstein weights at t = k / m, k = 0 .. m - 1 (cached)."""
    key = (pieces, dev, dt)
    b = _BASIS.get(key)
    if b is None:
        t = torch.arange(pieces, device=dev, dtype=dt) / pieces
        u = 1.0 - t
        b = _BASIS[key] = torch.stack([u ** 3, 3 * u * u * t, 3 * u * t * t, t ** 3], 1)
    return b


def _basis_np(pieces: int, dtype) -> np.ndarray:
    """:func:`_basis` as a numpy array of ``dtype`` (float32 or float64), the same numbers."""
    key = (pieces, np.dtype(dtype).name)
    b = _BASIS.get(key)
    if b is None:
        b = _BASIS[key] = _basis(pieces, torch.device("cpu"), torch.float32 if dtype == np.float32 else torch.float64).numpy()
    return b


def _segments(pts: torch.Tensor) -> torch.Tensor:
    """(G, 3S, 2) -> (G, S, 4, 2): every segment's four control points (the last closes to point 0)."""
    G, n3, _ = pts.shape
    S = n3 // 3
    nxt = torch.roll(pts, -3, 1)
    return torch.stack([pts[:, 0::3], pts[:, 1::3], pts[:, 2::3], nxt[:, 0::3]], 2).reshape(G, S, 4, 2)


def segments_of(points: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """(3S, 2) closed cubic path (numpy or torch, returned as it came) -> (S, 4, 2): every segment's
    four control points (the last closes to point 0)."""
    if isinstance(points, torch.Tensor):
        return _segments(points[None])[0]
    return np.stack([points[0::3], points[1::3], points[2::3], np.roll(points[0::3], -1, 0)], 1)


def flatten_closed(points: torch.Tensor | np.ndarray, pieces: int = DEFAULT_PIECES) -> np.ndarray:
    """(3S, 2) closed cubic path -> (S * pieces, 2) float64 polygon vertices (the loop closes itself)."""
    p = torch.as_tensor(np.asarray(points, np.float64) if not isinstance(points, torch.Tensor) else points)
    p = p.detach().to(torch.float64).cpu()
    seg = _segments(p[None])[0]                                  # (S, 4, 2)
    v = torch.einsum("mk,skd->smd", _basis(pieces, p.device, p.dtype), seg)
    return v.reshape(-1, 2).numpy()


_BATCH = 1 << 14       # edge pairs tested at once by CrossingIndex

_PAIRS: dict = {}


def _pair_table(m, dev):
    """(3, m, m) bool: which of the m x m edge pairs of two segments i <= j are tested, for j - i = 0
    (the same segment: each pair once, never an edge with itself or its neighbour), 1 (neighbours:
    all but the two edges that share the node) and >= 2 (all)."""
    key = (m, dev)
    t = _PAIRS.get(key)
    if t is None:
        p = torch.arange(m, device=dev)[:, None]
        q = torch.arange(m, device=dev)[None, :]
        t = _PAIRS[key] = torch.stack([(q > p) & (q - p != 1), ~((p == m - 1) & (q == 0)),
                                       torch.ones(m, m, dtype=torch.bool, device=dev)])
    return t


_TRIU: dict = {}


def _far_pairs(S: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of segments i < j of a closed path of S segments that are not neighbours (j - i >= 2,
    and not the first and the last): the pairs whose crossings depend on where the segments are."""
    t = _TRIU.get(S)
    if t is None:
        i, j = np.triu_indices(S, 2)
        keep = ~((i == 0) & (j == S - 1))
        t = _TRIU[S] = (i[keep], j[keep])
    return t


def sorted_unique(values: np.ndarray, bound: int) -> np.ndarray:
    """``np.unique(values)`` for non-negative integers under ``bound``: the distinct values, sorted,
    from a mask of ``bound`` flags (a pass over the flags, where numpy's unique hashes or sorts
    every value: tens of times slower on the guard's thousands of hits); a few values in a wide
    range (a long contour's segment pairs) are left to np.unique."""
    if values.size * 64 < bound:
        return np.unique(values)
    seen = np.zeros(bound, bool)
    seen[values] = True
    return np.flatnonzero(seen)


class CrossingIndex:
    """The crossing tests of a fixed set of closed cubic paths whose points lie in one (R, 2) tensor,
    path k at rows ``starts[k]`` to ``starts[k] + sizes[k]`` (3S points each). Built once (which rows
    make each segment, which edge pairs of a segment, of a segment and the next, and which segment
    pairs of a path are tested), it tests any positions of those rows in one pass over all the paths,
    however many there are and whatever their sizes.

    Each segment is flattened on its own, as an explicit sum of its control points weighted by the
    Bernstein table (the same numbers whatever the set's shape: a path gets the same answer alone
    or among others), its last edge ending exactly at its end node. Edge pairs are tested only where
    a crossing is possible:

    - within a segment, unless the segment runs monotonically along its chord (its control points'
      steps all point forward along it): then every flattened vertex is further along than the one
      before, and edges that are not neighbours can at most touch along a line across the chord;
    - between a segment and the next, unless a line through their shared node separates their
      control points (the chord from the first's start to the second's end as its normal): each
      segment's edges stay in their closed half-plane, and edges on both sides can only meet on
      the line, which is no crossing;
    - between other segments, when their control boxes overlap (a cubic lies in its control hull).
    """

    def __init__(self, sizes, starts=None, pieces: int = DEFAULT_PIECES, min_loop: float = 0.0,
                 device=None):
        sizes = np.asarray(sizes, np.int64).reshape(-1)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if starts is None \
            else np.asarray(starts, np.int64).reshape(-1)
        m = pieces
        self.n, self.pieces, self.min_loop = len(sizes), m, min_loop
        self.device = dev = torch.device("cpu") if device is None else torch.device(device)
        S = sizes // 3
        first = np.concatenate([[0], np.cumsum(S)[:-1]]).astype(np.int64)   # first segment of each path
        NS = int(S.sum())
        path = np.repeat(np.arange(self.n), S)
        local = np.arange(NS) - first[path]
        base = starts[path] + 3 * local
        nxt = starts[path] + (3 * (local + 1)) % np.maximum(sizes[path], 1)
        rows = np.stack([base, base + 1, base + 2, nxt], 1)
        # segment pairs (i, j) by the edge pairs (p, q) they test: within a segment (not an edge with
        # itself or its neighbour; a one-segment path's first and last edge are neighbours too), a
        # segment and the next one round the loop (not the two edges at the node they share; a
        # two-segment path's segments share both), and the others (all edge pairs)
        p_, q_ = np.arange(m)[:, None], np.arange(m)[None, :]
        same = (q_ > p_) & (q_ - p_ != 1)
        nb = ~((p_ == m - 1) & (q_ == 0))
        ends = (p_ == 0) & (q_ == m - 1)
        one = first[S == 1]
        two = first[S == 2]
        segs = np.flatnonzero(S[path] >= 2)
        three = segs[S[path[segs]] >= 3]
        groups = [("same", one, one, same & ~ends), ("same", segs, segs, same),
                  ("next", two, two + 1, nb & ~ends),
                  ("next", three, first[path[three]] + (local[three] + 1) % S[path[three]], nb)]
        cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64)  # noqa: E731
        far = [_far_pairs(int(s)) for s in S]
        groups.append(("far", cat([t[0] + f for t, f in zip(far, first)]),
                       cat([t[1] + f for t, f in zip(far, first)]), np.ones((m, m), bool)))
        as_i = lambda a: np.ascontiguousarray(a, np.int64)  # noqa: E731
        self.groups = []
        offset = 0
        for kind, si, sj, table in groups:
            ent = np.flatnonzero(table.reshape(-1))
            if len(si) and len(ent):
                self.groups.append((kind, as_i(si), as_i(sj), as_i(path[si]), as_i(ent // m), as_i(ent % m), offset))
                offset += len(si)
        self.rows_flat = as_i(rows.reshape(-1))
        # every segment pair of every group, in order: its path and its segments' numbers in the path
        pi = cat([si for _, si, _, _ in groups if len(si)])
        pj = cat([sj for _, si, sj, _ in groups if len(si)])
        keep = np.concatenate([np.full(len(si), len(np.flatnonzero(t)) > 0) for _, si, _, t in groups])
        pi, pj = pi[keep], pj[keep]
        self.ppath = as_i(path[pi])
        self.li = as_i(pi - first[path[pi]])
        self.lj = as_i(pj - first[path[pj]])
        self.edge_first = as_i(np.minimum(first * m, max(NS * m - 1, 0)))
        self.edge_last = as_i((first + S) * m - 1)
        # each segment's path, each path's first and last segment (of an empty path: any)
        self.seg_path = as_i(path)
        self.seg_first = as_i(np.minimum(first, max(NS - 1, 0)))
        self.seg_last = as_i(np.clip(first + S - 1, 0, max(NS - 1, 0)))

    @torch.no_grad()
    def crossings(self, points: torch.Tensor, max_batch: int = 2_000_000, only: torch.Tensor | None = None,
                  as_tensor: bool = False) -> tuple[torch.Tensor, list[tuple[int, int, int]] | torch.Tensor]:
        """(n,) long: the number of crossing edge pairs of every path, for the positions ``points``
        (R, 2); and (path, i, j) of every crossing segment pair i <= j (path: its number in the set;
        a (P, 3) long tensor with ``as_tensor``). ``only``: (n,) bool, test these paths alone (the
        others count 0). The results are on the index's device; the tests run in numpy on the CPU
        (thousands of small elementwise steps, where numpy's overhead per call is a fraction of
        torch's), in the points' own precision."""
        counts, found = self._crossings(points.detach().cpu().numpy(), max_batch,
                                        None if only is None else only.detach().cpu().numpy())
        out = torch.from_numpy(counts).to(self.device)
        if as_tensor:
            return out, torch.from_numpy(found).to(self.device)
        return out, [tuple(r) for r in found.tolist()]

    def _crossings(self, pts: np.ndarray, max_batch: int, only: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`crossings` on numpy arrays: (n,) int64 counts and (P, 3) int64 crossing pairs."""
        out = np.zeros(self.n, np.int64)
        none = np.zeros((0, 3), np.int64)
        if self.rows_flat.size == 0:
            return out, none
        m = self.pieces
        rows, remap = self.rows_flat, None
        edge_first, edge_last = self.edge_first, self.edge_last
        if only is not None:
            # the chosen paths' segments alone, renumbered in order
            segs = np.flatnonzero(only.take(self.seg_path))
            if segs.size == 0:
                return out, none
            rows = self.rows_flat.reshape(-1, 4)[segs].reshape(-1)
            remap = np.zeros(self.seg_path.size, np.int64)
            remap[segs] = np.arange(segs.size)
            edge_first = remap.take(self.seg_first) * m
            edge_last = remap.take(self.seg_last) * m + (m - 1)
        # x and y of the control points as (4, NS) planes (control point k of every segment in row
        # k); every test below is elementwise
        sx = pts[:, 0].take(rows.reshape(-1, 4).T)
        sy = pts[:, 1].take(rows.reshape(-1, 4).T)
        dx, dy = sx[3] - sx[0], sy[3] - sy[0]                           # chords
        ux, uy = sx[1:] - sx[:-1], sy[1:] - sy[:-1]                     # control polygon steps
        mono = ((ux * dx + uy * dy) >= 0).all(0) & ((dx != 0) | (dy != 0))
        lox, hix = np.minimum(np.minimum(sx[0], sx[1]), np.minimum(sx[2], sx[3])), \
            np.maximum(np.maximum(sx[0], sx[1]), np.maximum(sx[2], sx[3]))
        loy, hiy = np.minimum(np.minimum(sy[0], sy[1]), np.minimum(sy[2], sy[3])), \
            np.maximum(np.maximum(sy[0], sy[1]), np.maximum(sy[2], sy[3]))
        B = _basis_np(m, sx.dtype)                                     # (m, 4)
        vx = sx[0][:, None] * B[:, 0] + sx[1][:, None] * B[:, 1] + sx[2][:, None] * B[:, 2] + sx[3][:, None] * B[:, 3]
        vy = sy[0][:, None] * B[:, 0] + sy[1][:, None] * B[:, 1] + sy[2][:, None] * B[:, 2] + sy[3][:, None] * B[:, 3]
        # edges as contiguous x and y planes (NS * m,): edge e runs from vertex e to the next one,
        # the segment's last edge to its end node
        ax, ay = vx.reshape(-1), vy.reshape(-1)
        bx = np.concatenate([vx[:, 1:], sx[3][:, None]], 1).reshape(-1)
        by = np.concatenate([vy[:, 1:], sy[3][:, None]], 1).reshape(-1)
        ex, ey = bx - ax, by - ay
        cum = total = None
        if self.min_loop > 0:
            ln = np.sqrt(ex * ex + ey * ey).astype(np.float64)
            cum = np.cumsum(ln)
            total = cum.take(edge_last) - cum.take(edge_first) + ln.take(edge_first)
        hits = []                                   # the segment pair of every crossing edge pair
        for kind, si, sj, spath, ep, eq, off in self.groups:
            at = None
            if only is not None:                    # the chosen paths' pairs alone from here on
                at = np.flatnonzero(only.take(spath))
                si, sj = remap.take(si.take(at)), remap.take(sj.take(at))
            if kind == "same":
                cand = ~mono.take(si)
            elif kind == "next":
                # the node the two share, and the chord from the first's start to the second's end
                ax_, ay_, bx_, by_ = sx.take(si, 1), sy.take(si, 1), sx.take(sj, 1), sy.take(sj, 1)
                nx, ny = ax_[3], ay_[3]
                cx, cy = bx_[3] - ax_[0], by_[3] - ay_[0]
                cand = ~(((ax_ - nx) * cx + (ay_ - ny) * cy <= 0).all(0) & ((bx_ - nx) * cx + (by_ - ny) * cy >= 0).all(0)
                         & ((cx != 0) | (cy != 0)))
            else:
                cand = (lox.take(si) <= hix.take(sj)) & (lox.take(sj) <= hix.take(si)) \
                    & (loy.take(si) <= hiy.take(sj)) & (loy.take(sj) <= hiy.take(si))
            sel = np.flatnonzero(cand)
            if sel.size == 0:
                continue
            si, sj, pairs = si.take(sel), sj.take(sel), (sel if at is None else at.take(sel)) + off
            # the edge pairs of a batch of segment pairs at a time (small temporaries stay in the
            # allocator's pool: large ones cost a page fault per 4 KB)
            per = max(1, min(max_batch, _BATCH) // ep.size)
            for c0 in range(0, sel.size, per):
                i = (si[c0:c0 + per, None] * m + ep).reshape(-1)
                j = (sj[c0:c0 + per, None] * m + eq).reshape(-1)
                a1x, a1y, e1x, e1y = ax.take(i), ay.take(i), ex.take(i), ey.take(i)
                rx, ry = ax.take(j) - a1x, ay.take(j) - a1y
                # which side of edge 1's line the ends of edge 2 lie on: (b1 - a1) x (q - a1), as
                # edge_side computes it, exactly zero when q is one of edge 1's ends (touching edges
                # never count)
                d1 = e1x * ry - e1y * rx
                d2 = e1x * (by.take(j) - a1y) - e1y * (bx.take(j) - a1x)
                # only where edge 2's ends lie on both sides of edge 1's line can the edges cross:
                # the other two tests run on those entries alone
                k = np.flatnonzero(d1 * d2 < 0)
                if k.size == 0:
                    continue
                i, j = i.take(k), j.take(k)
                e2x, e2y, a2x, a2y = ex.take(j), ey.take(j), ax.take(j), ay.take(j)
                d3 = e2x * ry.take(k) - e2y * rx.take(k)    # minus edge_side(a2, e2, a1), exactly
                d4 = e2x * (by.take(i) - a2y) - e2y * (bx.take(i) - a2x)
                hit = d3 * d4 > 0
                pair = pairs[c0:c0 + per].take(k // ep.size)
                if cum is not None:
                    # the outline between the two crossing edges, the shorter way round
                    inner = np.abs(cum.take(j) - cum.take(i))
                    loop = np.minimum(inner, total.take(self.ppath.take(pair)) - inner)
                    hit &= loop >= self.min_loop
                if hit.any():
                    hits.append(pair[hit])
        if not hits:
            return out, none
        hits = np.concatenate(hits)
        out += np.bincount(self.ppath.take(hits), minlength=self.n)
        crossed = sorted_unique(hits, self.ppath.size)
        li, lj = self.li.take(crossed), self.lj.take(crossed)
        return out, np.stack([self.ppath.take(crossed), np.minimum(li, lj), np.maximum(li, lj)], 1)


_INDEXES: dict = {}   # crossing_pairs' indexes by path sizes, pieces, min_loop and device (the export
                      # tests contours one by one, many of the same size)


@torch.no_grad()
def crossing_counts(points: list[torch.Tensor], pieces: int = DEFAULT_PIECES,
                    max_batch: int = 2_000_000, min_loop: float = 0.0,
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(N,) long: the number of crossing edge pairs of every path (see :func:`crossing_pairs`)."""
    return crossing_pairs(points, pieces, max_batch, min_loop, dtype)[0]


@torch.no_grad()
def crossing_pairs(points: list[torch.Tensor], pieces: int = DEFAULT_PIECES,
                   max_batch: int = 2_000_000, min_loop: float = 0.0,
                   dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
    """(N,) long: the number of crossing edge pairs of every path (0 for a simple loop).

    points: N closed cubic paths, (3S, 2) each, any devices mixed (the result is on the first's).
    ``min_loop``: leave out crossings that close a loop of outline shorter
    than this many pixels (kinks). Also returns (path, i, j) for every crossing pair of segments i <= j."""
    n = len(points)
    if n == 0:
        return torch.zeros(0, dtype=torch.long), []
    dev = points[0].device
    key = (tuple(int(p.shape[0]) for p in points), pieces, min_loop, dev)
    index = _INDEXES.get(key)
    if index is None:
        if len(_INDEXES) >= 512:
            _INDEXES.clear()
        index = _INDEXES[key] = CrossingIndex(key[0], pieces=pieces, min_loop=min_loop, device=dev)
    return index.crossings(torch.cat([p.detach().to(dev, dtype) for p in points], 0), max_batch)


def area_and_perimeter(points: torch.Tensor | np.ndarray, pieces: int = DEFAULT_PIECES) -> tuple[float, float]:
    """Absolute enclosed area (pixels², exact for a simple loop up to flattening) and length (pixels)."""
    v = flatten_closed(points, pieces)
    area = abs(signed_area(v))
    per = float(np.linalg.norm(np.roll(v, -1, 0) - v, axis=1).sum())
    return area, per


def mean_width(area: float, perimeter: float) -> float:
    """Mean thickness of a shape, 2 x area / perimeter (a w x L strip with L >> w gives w; a disc of
    radius r gives r)."""
    return 2.0 * area / perimeter if perimeter > 0 else 0.0


def thickened(points: torch.Tensor, width: float, tries: int = 4) -> torch.Tensor | None:
    """(3S, 2) a thin closed path moved outward, every control point along its control polygon's
    normal, until its mean width (:func:`mean_width`) is at least ``width``; None when ``tries``
    moves do not get there (a path whose outline is not one loop). A sliver keeps its place and its
    length and gains a fraction of a pixel on each side, so what it draws changes little."""
    p = points.detach().double()
    for _ in range(tries):
        area, per = area_and_perimeter(p)
        w = mean_width(area, per)
        if w >= width:
            return p.to(points.dtype)
        v = flatten_closed(p, DEFAULT_PIECES)
        s = 1.0 if signed_area(v) >= 0 else -1.0
        t = torch.roll(p, -1, 0) - torch.roll(p, 1, 0)
        n = torch.stack([t[:, 1], -t[:, 0]], 1)
        n = n / n.norm(dim=1, keepdim=True).clamp_min(1e-9)
        p = p + s * (1.1 * width - w) / 2.0 * n   # aims a little past: corners gain less than sides
    return None


def straightened(points: torch.Tensor, f: float) -> torch.Tensor:
    """(3S, 2) the path with every handle moved a share ``1 - f`` of the way to its place on the
    straight chord (f = 0: the polygon through the nodes, as straight cubic segments)."""
    p = points.detach()
    node = p[0::3]
    nxt = torch.roll(node, -1, 0)
    out = p.clone()
    out[1::3] = f * p[1::3] + (1 - f) * (node + (nxt - node) / 3.0)
    out[2::3] = f * p[2::3] + (1 - f) * (node + (nxt - node) * (2.0 / 3.0))
    return out


def made_simple(points: torch.Tensor, pieces: int = 16) -> torch.Tensor | None:
    """A simple version of a closed path (3S, 2): itself when it does not cross itself, else with its
    handles drawn towards the chords (half, a quarter, then all the way: the polygon through its
    nodes) until it does not; None when even that polygon crosses itself."""
    for f in (1.0, 0.5, 0.25, 0.0):
        cand = points if f == 1.0 else straightened(points, f)
        if int(crossing_counts([cand], pieces)[0]) == 0:
            return cand
    return None


VIEWER_PIECES = 16      # a viewer's flattening of a cubic: at least this many straight pieces ...
VIEWER_PIECE_PX = 1.0   # ... and one per this many pixels of its control polygon (at most 512)


def viewer_polygon(points: np.ndarray) -> np.ndarray:
    """The closed cubic path (3S, 2) flattened as a viewer draws it (e.g. an outline view): each
    segment into max(``VIEWER_PIECES``, control polygon length / ``VIEWER_PIECE_PX``) straight pieces
    evenly spaced in t, at most 512. (P, 2), the closing piece implied."""
    segs = segments_of(np.asarray(points, np.float64))
    length = np.linalg.norm(np.diff(segs, axis=1), axis=2).sum(1)
    m = np.clip(np.ceil(length / VIEWER_PIECE_PX), VIEWER_PIECES, 512).astype(int)
    # every segment's points at t = 1 / k, 2 / k, .. 1 (k its pieces), all segments at once
    seg = np.repeat(np.arange(len(segs)), m)
    t = ((np.arange(1, int(m.sum()) + 1) - np.repeat(np.cumsum(m) - m, m)).astype(np.float64) / m[seg])[:, None]
    u = 1 - t
    s = segs[seg]
    return u ** 3 * s[:, 0] + 3 * u * u * t * s[:, 1] + 3 * u * t * t * s[:, 2] + t ** 3 * s[:, 3]


def viewer_simple(points: np.ndarray) -> bool:
    """Whether the closed path, flattened as a viewer draws it (:func:`viewer_polygon`), has no proper
    crossing between two pieces that are not neighbours. The exact curves can be simple while this
    is not: where two curves run within a piece's sagitta of each other (a spike's sides, a curl at a
    node), straight pieces of the longer one cut the other."""
    P = viewer_polygon(points)
    keep = np.ones(len(P), bool)
    keep[1:] = np.abs(np.diff(P, axis=0)).max(1) > 1e-12
    P = P[keep]
    n = len(P)
    if n < 4:
        return True
    a, b = P, np.roll(P, -1, 0)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    order = np.argsort(lo[:, 0], kind="stable")
    xs = lo[order, 0]
    ends = np.searchsorted(xs, hi[order, 0], side="right")        # pieces j with min x <= max x of i
    starts = np.arange(n) + 1
    counts = np.maximum(ends - starts, 0)
    if not counts.sum():
        return True
    i = np.repeat(order, counts)
    first = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    j = order[first + np.arange(int(counts.sum()))]
    near = (lo[i, 1] <= hi[j, 1]) & (lo[j, 1] <= hi[i, 1])
    d = (i - j) % n
    near &= (d != 1) & (d != n - 1) & (i != j)
    i, j = i[near], j[near]
    ei, ej = b[i] - a[i], b[j] - a[j]
    d1, d2 = edge_side(a[i], ei, a[j]), edge_side(a[i], ei, b[j])
    d3, d4 = edge_side(a[j], ej, a[i]), edge_side(a[j], ej, b[i])
    return not bool(((d1 * d2 < 0) & (d3 * d4 < 0)).any())
