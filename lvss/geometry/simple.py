"""Is a closed cubic path a simple loop? Crossing tests, areas and widths of flattened paths.

A path (3S, 2) is flattened into ``pieces`` straight edges per cubic segment (uniform in t). Two
edges cross when each one's ends lie strictly on opposite sides of the other's line; edges that only
touch or overlap along a line (a zero-width bridge, a shared end) do not count. Adjacent edges
(sharing an end, including the closing pair) are never tested against each other.

Only pairs of segments whose control-point boxes overlap can cross (a cubic lies in its control
points' hull), so the tests run on those pairs alone: paths with many segments cost about as much as
their overlapping neighbourhoods, not the square of their size. Paths are padded to a few segment
counts (zero-length segments, which cross nothing) and tested in batches, in torch, on the points'
own device.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["crossing_counts", "crossing_pairs", "edge_side", "signed_area", "made_simple", "straightened", "flatten_closed", "area_and_perimeter", "mean_width", "segments_of"]

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
    return 0.5 * float((x * np.roll(y, -1) - np.roll(x, -1) * y).sum())


def _basis(pieces: int, dev, dt) -> torch.Tensor:
    """(m, 4) Bernstein weights at t = k / m, k = 0 .. m - 1 (cached)."""
    key = (pieces, dev, dt)
    b = _BASIS.get(key)
    if b is None:
        t = torch.arange(pieces, device=dev, dtype=dt) / pieces
        u = 1.0 - t
        b = _BASIS[key] = torch.stack([u ** 3, 3 * u * u * t, 3 * u * t * t, t ** 3], 1)
    return b


def _segments(pts: torch.Tensor) -> torch.Tensor:
    """(G, 3S, 2) -> (G, S, 4, 2): every segment's four control points (the last closes to point 0)."""
    G, n3, _ = pts.shape
    S = n3 // 3
    nxt = torch.roll(pts, -3, 1)
    return torch.stack([pts[:, 0::3], pts[:, 1::3], pts[:, 2::3], nxt[:, 0::3]], 2).reshape(G, S, 4, 2)


def segments_of(points: np.ndarray) -> np.ndarray:
    """(3S, 2) closed cubic path (numpy) -> (S, 4, 2): every segment's four control points (the last
    closes to point 0)."""
    return np.stack([points[0::3], points[1::3], points[2::3], np.roll(points[0::3], -1, 0)], 1)


def flatten_closed(points: torch.Tensor | np.ndarray, pieces: int = DEFAULT_PIECES) -> np.ndarray:
    """(3S, 2) closed cubic path -> (S * pieces, 2) float64 polygon vertices (the loop closes itself)."""
    p = torch.as_tensor(np.asarray(points, np.float64) if not isinstance(points, torch.Tensor) else points)
    p = p.detach().to(torch.float64).cpu()
    seg = _segments(p[None])[0]                                  # (S, 4, 2)
    v = torch.einsum("mk,skd->smd", _basis(pieces, p.device, p.dtype), seg)
    return v.reshape(-1, 2).numpy()


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


def _group_crossings(pts: torch.Tensor, pieces: int, real: torch.Tensor, pairs: bool = False,
                     min_loop: float = 0.0):
    """(G, 3S, 2) paths padded to the same S -> (G,) number of crossing edge pairs of each. ``real``
    (G,): each path's own number of segments (the rest is padding, which crosses nothing; its own
    last and first edge are neighbours). ``pairs``: also return (path, i, j) of every crossing
    segment pair. ``min_loop``: crossings that close a loop of outline shorter than this (pixels)
    are not counted."""
    G = pts.shape[0]
    seg = _segments(pts)                                          # (G, S, 4, 2)
    S = seg.shape[1]
    m = pieces
    E = S * m
    dev = pts.device
    lo, hi = seg.amin(2), seg.amax(2)                             # (G, S, 2) control boxes
    ov = ((lo[:, :, None] <= hi[:, None]) & (lo[:, None] <= hi[:, :, None])).all(-1)   # (G, S, S)
    # pairs (i <= j) with j in the padding are never counted (edges beyond the path's own are left
    # out below): drop them before any work is spent on them
    ov = torch.triu(ov) & (torch.arange(S, device=dev) < real[:, None])[:, None, :]
    g, i, j = ov.nonzero(as_tuple=True)
    out = torch.zeros(G, dtype=torch.long, device=dev)
    if g.numel() == 0:
        return (out, g.new_zeros(0, 3)) if pairs else out
    B = _basis(m, dev, pts.dtype)
    vert = torch.einsum("mk,gskd->gsmd", B, seg)                  # (G, S, m, 2) piece starts
    flat = vert.reshape(G, E, 2)
    a = flat
    b = torch.roll(flat, -1, 1)
    # x and y as separate contiguous planes (G * E,): every test below is elementwise on them
    ax, ay = a[..., 0].reshape(-1), a[..., 1].reshape(-1)
    bx, by = b[..., 0].reshape(-1), b[..., 1].reshape(-1)
    ex, ey = bx - ax, by - ay
    ar = torch.arange(m, device=dev)
    ei = i[:, None] * m + ar                                      # (K, m) edge numbers in the path
    ej = j[:, None] * m + ar
    base = (g * E)[:, None]
    fi, fj = base + ei, base + ej                                 # (K, m) rows of the flat planes
    a1x, a1y, e1x, e1y = ax[fi][:, :, None], ay[fi][:, :, None], ex[fi][:, :, None], ey[fi][:, :, None]
    b1x, b1y = bx[fi][:, :, None], by[fi][:, :, None]
    a2x, a2y, e2x, e2y = ax[fj][:, None], ay[fj][:, None], ex[fj][:, None], ey[fj][:, None]
    b2x, b2y = bx[fj][:, None], by[fj][:, None]
    # which side of edge u's line a point q lies on: (b_u - a_u) x (q - a_u), as edge_side computes it,
    # exactly zero when q is one of the edge's ends (touching edges must not count, whatever the rounding)
    rx, ry = a2x - a1x, a2y - a1y
    d1 = e1x * ry - e1y * rx
    d2 = e1x * (b2y - a1y) - e1y * (b2x - a1x)
    ok = _pair_table(m, dev)[(j - i).clamp(max=2)]                 # (K, m, m) edge pairs to test
    closing = ((i == 0) & (j == real[g] - 1)).nonzero().flatten()
    if closing.numel():                                            # the path's last edge and its first
        ok[closing, 0, m - 1] = False
    # only where edge 2's ends lie on both sides of edge 1's line can the edges cross: the other two
    # tests run on those entries alone (the same arithmetic, on fewer numbers)
    k, p, q = ((d1 * d2 < 0) & ok).nonzero(as_tuple=True)
    e2xc, e2yc, a2xc, a2yc = e2x[k, 0, q], e2y[k, 0, q], a2x[k, 0, q], a2y[k, 0, q]
    d3 = e2xc * ry[k, p, q] - e2yc * rx[k, p, q]   # minus edge_side(a2, e2, a1), exactly (negation is exact)
    d4 = e2xc * (b1y[k, p, 0] - a2yc) - e2yc * (b1x[k, p, 0] - a2xc)
    hit = d3 * d4 > 0
    if min_loop > 0:
        # the outline between the two crossing edges, the shorter way round
        seg_len = (b - a).norm(dim=-1)                                          # (G, E)
        cum = torch.cumsum(seg_len, 1)
        total = cum[:, -1]
        cf = cum.reshape(-1)
        inner = cf[fj[k, q]] - cf[fi[k, p]]
        loop = torch.minimum(inner, total[g[k]] - inner)
        hit &= loop >= min_loop
    counts = torch.zeros(len(g), dtype=torch.long, device=dev).index_add_(0, k, hit.long())
    out.index_add_(0, g, counts)
    if pairs:
        sel = counts > 0
        return out, torch.stack([g[sel], i[sel], j[sel]], 1)
    return out


@torch.no_grad()
def crossing_counts(points: list[torch.Tensor], pieces: int = DEFAULT_PIECES,
                    max_batch: int = 2_000_000, min_loop: float = 0.0,
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(N,) long: the number of crossing edge pairs of every path (see :func:`crossing_pairs`)."""
    return crossing_pairs(points, pieces, max_batch, min_loop, dtype)[0]


def _bucket(S: int) -> int:
    """Segment counts batched together (padded up to): 8, 16, 32, 64, then multiples of 32. Few
    batches matter more than the padding (segment pairs in the padding are dropped before the
    crossing tests); the sizes are kept as they were, as the flattening's float rounding depends
    on the batch's shape, and so does whether two edges that barely meet count as crossing."""
    for b in (8, 16, 32, 64):
        if S <= b:
            return b
    return -(-S // 32) * 32


def _stacked(points: list[torch.Tensor], n3: int, dev, dtype) -> torch.Tensor:
    """(G, n3, 2): the paths, each padded up to n3 points with copies of its first point, gathered
    from one concatenation (two tensor operations, not two per path)."""
    allp = torch.cat([p.detach().to(dev, dtype) for p in points], 0)
    lens = np.array([p.shape[0] for p in points])
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    col = np.arange(n3)
    rows = starts[:, None] + np.where(col < lens[:, None], col, 0)          # padding: the first point
    return allp[torch.from_numpy(rows.reshape(-1)).to(dev)].reshape(len(points), n3, 2)


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
    out = torch.zeros(n, dtype=torch.long, device=dev)
    found: list[tuple[int, int, int]] = []
    # paths are batched by size, padded up to the next of a few sizes with copies of their first
    # point: the padding's segments have no length, so they cross nothing (a touch is no crossing)
    by_size: dict[int, list[int]] = {}
    for k, p in enumerate(points):
        by_size.setdefault(_bucket(int(p.shape[0]) // 3) * 3, []).append(k)
    for n3, idx in by_size.items():
        S = n3 // 3
        # bound the batch's work: segment pairs x pieces^2 per path, at most S^2 pairs
        per = max(1, S * S * pieces * pieces)
        step = max(1, max_batch // per)
        for s in range(0, len(idx), step):
            part = idx[s:s + step]
            pts = _stacked([points[k] for k in part], n3, dev, dtype)
            real = torch.tensor([points[k].shape[0] // 3 for k in part], device=dev)
            counts, prs = _group_crossings(pts, pieces, real, pairs=True, min_loop=min_loop)
            out[torch.tensor(part, device=dev)] = counts
            found.extend((part[g], i, j) for g, i, j in prs.tolist())
    return out, found


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
