"""Built-in differentiable rasterizer, pure PyTorch (CPU and CUDA with the same code).

How it works
------------
1. Each cubic segment is flattened into just enough straight edges to stay within FLATTEN_TOLERANCE
   (between MIN_PIECES and ``samples_per_segment``); the edge ends are Bernstein combinations of the
   control points (:class:`_Bernstein`, with a written-out backward pass).
2. Every edge is cut into pieces lying inside single pixel cells, and each piece adds its exact signed
   area to an accumulation buffer that covers every path's bounding box (one flat buffer for all
   paths; each row ends with an overflow column so that rows sum to zero and one cumulative sum serves
   all rows). The amounts are formed in float64 so that every row's add up to zero to float64
   rounding (a float32 residue would carry along the running sum into every cell after it and make
   each of them a pair of coverage ~1e-7). The running sum (float64, then the render's dtype) is the
   exact area coverage of every pixel (anti-aliasing without supersampling), differentiable in
   every control point: the pieces' amounts and the running sum have written-out backward passes
   (:class:`_PieceAmounts`, :class:`_PairCoverage`), the latter summing gradients along each row
   only, since every row's amounts add up to zero for a closed path.
3. Paths are alpha-composited back to front by a custom autograd function whose backward pass is
   written out; it walks groups of paths with disjoint bounding boxes, so the loop runs over depth
   levels rather than over paths.
4. Gradient fills (linear, radial, see :class:`GradientFills`) are evaluated at the centre of every
   covered pixel of their path with plain tensor ops (autograd carries gradients to their geometry
   and stops), and the compositor then gets one colour per (path, pixel) pair instead of one per path.
   Scenes without gradients take exactly the flat-colour route.

Speed (CPU, one thread; see docs/performance-raster.md): per-element work is laid out
channel-planar, (k, M) with every quantity one contiguous row, since on the CPU a gather of short
rows, an int64 gather along a second dimension, a strided reduction or segment_reduce over (M, k)
rows each cost several times as much per element as 1-D gathers, index_add along rows or
scatter_add_.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..scene import SceneError


FLATTEN_TOLERANCE = 0.05  # pixels: largest distance between a cubic and its flattened polyline
MIN_PIECES = 4  # even a straight segment gets pieces inside, so its inner control points get gradients
SUM_FLOOR = 1e-9  # a float64 running sum below this (rounding residue) is zero coverage: no pair


class PackedPaths:
    """Closed cubic paths held end to end in one tensor: ``points`` (sum sizes, 2), path i the
    ``sizes[i]`` (3S_i) rows after the paths before it. The rasterizer takes it wherever it takes a
    list of paths: an optimiser that keeps every path's points in one parameter tensor hands that
    tensor over as it is, without splitting it into views that the rasterizer concatenates again
    (hundreds of small autograd nodes per step, each way). Iterating gives the paths as views."""

    def __init__(self, points: torch.Tensor, sizes):
        self.points, self.sizes = points, tuple(int(s) for s in sizes)

    def __len__(self) -> int:
        return len(self.sizes)

    def __iter__(self):
        return iter(torch.split(self.points, self.sizes))


def _nonzero(mask: torch.Tensor) -> torch.Tensor:
    """(K,) long: the positions of the true entries of a 1-D bool ``mask``, ascending. On the CPU
    through numpy, whose pass over a bool array is several times faster than torch.nonzero's (a
    plan's buffer of a few hundred thousand cells: ~0.1 ms against ~0.5 ms)."""
    if mask.device.type == "cpu":
        import numpy as np

        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return torch.nonzero(mask).flatten()


def _repeat(values: torch.Tensor, counts: torch.Tensor, total: int) -> torch.Tensor:
    """``torch.repeat_interleave(values, counts, output_size=total)`` for 1-D int64 tensors; on the
    CPU through numpy's repeat, which is several times faster on long runs (a plan's pairs per
    path: ~0.1 ms against ~0.5 ms; on many short runs the two are alike)."""
    if counts.device.type == "cpu":
        import numpy as np

        return torch.from_numpy(np.repeat(values.numpy(), counts.numpy()))
    return torch.repeat_interleave(values, counts, output_size=total)


def _segment_index(sizes: tuple[int, ...], dev) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, 4) indices of every segment's control points in the paths' concatenation (path i has
    ``sizes[i]`` points), and (T,) path ids. They depend only on the paths' sizes, which stay put
    over an optimisation: the last few are kept."""
    key = (dev, sizes)
    hit = _INDEX_CACHE.get(key)
    if hit is not None:
        return hit
    counts = torch.tensor([n // 3 for n in sizes], device=dev)
    seg_path = torch.repeat_interleave(torch.arange(len(sizes), device=dev), counts)
    first = torch.cumsum(counts, 0) - counts                      # first segment of each path
    k = torch.arange(seg_path.shape[0], device=dev) - first[seg_path]   # segment number within path
    base = 3 * first[seg_path]
    n3 = 3 * counts[seg_path]
    i0 = base + 3 * k
    out = torch.stack([i0, i0 + 1, i0 + 2, base + torch.remainder(3 * k + 3, n3)], 1), seg_path
    if len(_INDEX_CACHE) >= 8:
        _INDEX_CACHE.clear()
    _INDEX_CACHE[key] = out
    return out


_INDEX_CACHE: dict = {}
_BASIS_CACHE: dict = {}


def _basis_table(samples: int, dev, dt) -> tuple[torch.Tensor, torch.Tensor]:
    """Cubic Bernstein weights at the ends of every piece j of a segment cut into m equal pieces, for
    m = 1 .. samples: a (sum m, 2, 4) table and (samples + 1,) row offsets (row of (m, j) = start[m] + j)."""
    key = (samples, dev, dt)
    hit = _BASIS_CACHE.get(key)
    if hit is None:
        m = torch.repeat_interleave(torch.arange(1, samples + 1, device=dev), torch.arange(1, samples + 1, device=dev))
        start = torch.cat([torch.zeros(2, dtype=torch.long, device=dev), torch.cumsum(torch.arange(1, samples + 1, device=dev), 0)[:-1]])
        j = (torch.arange(m.shape[0], device=dev) - start[m]).to(dt)
        mm = m.to(dt)
        t = torch.stack([j / mm, (j + 1) / mm], 1)
        u = 1.0 - t
        hit = (torch.stack([u ** 3, 3 * u * u * t, 3 * u * t * t, t ** 3], 2), start)
        _BASIS_CACHE[key] = hit
    return hit


def flatten(points: list[torch.Tensor], samples: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flatten closed cubic paths into straight edges.

    Each segment gets just enough pieces (MIN_PIECES to ``samples``) to stay within FLATTEN_TOLERANCE of
    the curve: m = ceil(sqrt(0.75 * max|second difference of the control points| / tolerance)).
    points: list of (3S_i, 2) tensors. Returns ``starts`` (E, 2), ``ends`` (E, 2) and the path id of
    each edge (E,) long. Edges of path i are contiguous and in order.
    """
    return _flatten_cat(torch.cat(points, 0), tuple(p.shape[0] for p in points), samples)


def _flatten_cat(allp: torch.Tensor, sizes: tuple[int, ...], samples: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`flatten` of the paths held end to end in ``allp`` (3S, 2), path i its ``sizes[i]`` rows."""
    dev = allp.device
    idx, seg_path = _segment_index(sizes, dev)
    with torch.no_grad():
        ctrl = allp.detach().t().contiguous().index_select(1, idx.reshape(-1)).view(2, -1, 4)   # (2, T, 4)
        # largest second difference, squared (a norm over the planar rows' first dimension is a
        # slow strided reduction)
        a, b = ctrl[..., 0] - 2 * ctrl[..., 1] + ctrl[..., 2], ctrl[..., 1] - 2 * ctrl[..., 2] + ctrl[..., 3]
        d2 = torch.maximum(a[0] * a[0] + a[1] * a[1], b[0] * b[0] + b[1] * b[1]).sqrt_()
        m = torch.ceil(torch.sqrt(0.75 * d2 / FLATTEN_TOLERANCE)).clamp(MIN_PIECES, max(MIN_PIECES, samples)).long()
        n_e = int(m.sum())
        e_seg = torch.repeat_interleave(m, output_size=n_e)   # the index form: no gather of an arange
        first = torch.cumsum(m, 0) - m
        table, start = _basis_table(max(MIN_PIECES, samples), dev, allp.dtype)
        # (8, E): the Bernstein weights at every piece's start (rows 0-3) and end (rows 4-7)
        B = table.view(-1, 8).t().contiguous().index_select(
            1, (start.index_select(0, m) - first).index_select(0, e_seg).add_(torch.arange(n_e, device=dev)))
        # (4, E): the index in ``allp`` of every edge's four control points
        pidx = torch.empty(4, n_e, dtype=torch.long, device=dev)
        for j, r in enumerate(idx.t().contiguous()):   # 1-D: an int64 gather along dim 1 is slow
            torch.index_select(r, 0, e_seg, out=pidx[j])
    se = _Bernstein.apply(allp, B, pidx)
    return se[:2].t(), se[2:].t(), seg_path.index_select(0, e_seg)


class _Bernstein(torch.autograd.Function):
    """The ends of every edge, (4, E) rows start x, start y, end x, end y: Bernstein combinations
    ``B`` (8, E) of the edge's four control points, rows ``pidx`` (4, E) of ``allp`` (3S, 2). Every
    per-edge quantity is one contiguous row (channel-planar), and the backward pass is four
    index_adds into the points (autograd went through a batched (E, 2, 4) x (E, 4, 2) matmul, a
    gather of 8-float rows and its scatter, and two zero-filled select gradients)."""

    @staticmethod
    def forward(ctx, allp, B, pidx):
        pt = allp.t().contiguous()   # (2, 3S)
        se = allp.new_empty(4, B.shape[1])
        for j in range(4):
            c = pt.index_select(1, pidx[j])                  # (2, E): control point j of every edge
            if j == 0:
                torch.mul(c, B[0], out=se[:2])
                torch.mul(c, B[4], out=se[2:])
            else:   # separate products and sums, in the order of the former matmul (same values)
                se[:2] += c * B[j]
                se[2:] += c * B[4 + j]
        ctx.save_for_backward(B, pidx)
        ctx.n = allp.shape[0]
        return se

    @staticmethod
    def backward(ctx, g):
        B, pidx = ctx.saved_tensors
        g = g.contiguous()
        gp = g.new_zeros(2, ctx.n)
        for j in range(4):
            gp.index_add_(1, pidx[j], g[:2] * B[j] + g[2:] * B[4 + j])
        return gp.t(), None, None


@dataclass
class _Layout:
    """Per-path pixel bounding boxes clipped to the canvas and where each sits in the flat buffer.

    boxes (N, 5) long: x0, y0, w, h, offset (a buffer row holds w + 1 cells: an overflow column;
    paths follow each other in group order, see below); total: the buffer length. For compositing, paths are
    sorted into groups (depth levels) whose boxes are disjoint, group k holding the paths that lie
    above everything they overlap in groups < k: ``order`` lists the visible paths group by group
    (path order within a group) and ``level`` gives each path's group (-1: empty box).
    """

    boxes: torch.Tensor
    total: int
    cpu: "object"     # the same boxes as an (N, 5) int64 numpy array
    order: "object"   # (V,) int64 numpy array
    level: "object"   # (N,) int64 numpy array
def _levels(x0, y0, w, h):
    """Depth level of every path (numpy arrays in, (N,) int64 out): one above the highest level of
    the earlier paths whose boxes it overlaps; -1 for paths with an empty box."""
    import numpy as np

    n = len(x0)
    level = np.full(n, -1, dtype=np.int64)
    vis = np.flatnonzero(w > 0)
    if len(vis) == 0:
        return level
    bx0, by0, bx1, by1 = x0[vis], y0[vis], x0[vis] + w[vis], y0[vis] + h[vis]
    ov = ((bx0[:, None] < bx1[None, :]) & (bx0[None, :] < bx1[:, None]) &
          (by0[:, None] < by1[None, :]) & (by0[None, :] < by1[:, None]))
    # level[j] = 1 + the highest level among the earlier paths it overlaps (0 for none). These
    # equations have one solution, so the levels of the last call with as many paths are the answer
    # whenever they satisfy them (one vectorised check; an optimiser's steps seldom change them)
    lv = _LAST_LEVELS.get(len(vis))
    if lv is None or not np.array_equal(np.where(np.tril(ov, -1), lv[None, :], -1).max(1) + 1, lv):
        # one path at a time in path order (each row of the overlap matrix is read once)
        lv = np.zeros(len(vis), dtype=np.int64)
        for j in range(1, len(vis)):
            above = lv[:j][ov[j, :j]]
            if above.size:
                lv[j] = above.max() + 1
        _LAST_LEVELS.pop(len(vis), None)
        _LAST_LEVELS[len(vis)] = lv
        while len(_LAST_LEVELS) > 8:     # the most recently computed few
            _LAST_LEVELS.pop(next(iter(_LAST_LEVELS)))
    level[vis] = lv
    return level


_LAST_LEVELS: dict[int, "object"] = {}   # number of visible paths -> their last levels (read-only; 8 at most)


def _layout(starts: torch.Tensor, ends: torch.Tensor, edge_path: torch.Tensor, n: int,
            width: int, height: int) -> _Layout:
    """The paths' boxes, their depth levels and the flat buffer (see :class:`_Layout`)."""
    import numpy as np

    # every path is closed, so its edges' end points are its edges' start points: the extent of the
    # starts is the path's; each path's edges are one run (every path has at least MIN_PIECES edges)
    pts = starts.detach().t()   # (2, E): contiguous rows when ``starts`` comes from flatten
    # x min, y min, x max, y max: 1-D reductions of the rows (a reduction of strided (E, 2) rows
    # costs twice as much); on the CPU numpy's reduceat over the runs, a few times faster than
    # segment_reduce
    if pts.device.type == "cpu":
        rows = pts.numpy()
        first = np.flatnonzero(np.r_[True, np.diff(edge_path.numpy()) != 0])   # every run's first edge
        ext = np.stack([f.reduceat(r, first) for f in (np.minimum, np.maximum) for r in rows], 1)
    else:
        counts = torch.bincount(edge_path, minlength=n)
        ext = torch.stack([torch.segment_reduce(r, op, lengths=counts) for op in ("min", "max") for r in pts], 1)
        ext = ext.cpu().numpy()   # one transfer; the rest is small host work
    # a cell [c, c+1) holds x; the box always includes the cell of the largest coordinate
    lim = np.array([width, height])
    lo = np.minimum(np.floor(ext[:, :2]).clip(min=0), lim)
    hi = np.minimum((np.floor(ext[:, 2:]) + 1).clip(min=0), lim)
    b = np.concatenate([lo, (hi - lo).clip(min=0)], 1).astype(np.int64)   # x0, y0, w, h
    x0, y0, w, h = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    visible = (w > 0) & (h > 0)
    w, h = np.where(visible, w, 0), np.where(visible, h, 0)
    level = _levels(x0, y0, w, h)
    order = np.argsort(level, kind="stable")
    order = order[level[order] >= 0]
    # the buffer holds the visible paths in group order, so that the plan's pairs come out of it
    # grouped (each path one run) without reordering; empty paths sit at its end with size 0
    size = h * (w + 1)
    so = size[order]
    off = np.full(n, int(size.sum()), dtype=np.int64)
    off[order] = np.cumsum(so) - so
    boxes = np.stack([x0, y0, w, h, off], 1)
    return _Layout(torch.from_numpy(boxes).to(pts.device), int(size.sum()), boxes, order, level)


def _tie(a, b):
    """Share of the gradient of max(a, b) that goes to ``a`` (autograd's: 1, 0, or 1/2 at a tie):
    (1 + sign(a - b)) / 2, since a - b is 0 only where a == b (float subtraction is exact there)."""
    return torch.sign(a - b).add_(1.0).mul_(0.5)


def _add_cell_clamp_grads(ga, gb, g_lo, g_hi, a, b, lo_arg, hi_arg, k):
    """``ga``, ``gb`` plus the gradients reaching ``a`` and ``b`` through lo = max(min(a, b), k) and
    hi = min(max(a, b), k + 1) (a piece's ends clamped to the cell [k, k + 1]), given the gradients
    ``g_lo``, ``g_hi`` of lo and hi; ``lo_arg``, ``hi_arg`` are min(a, b) and max(a, b). Ties are shared
    half and half, as autograd does."""
    g_min = g_lo * _tie(lo_arg, k)
    g_max = g_hi * _tie(k + 1.0, hi_arg)
    t = _tie(b, a)   # share of min(a, b) that goes to a, of max(a, b) to b
    return ga + g_min * t + g_max * (1.0 - t), gb + g_min * (1.0 - t) + g_max * t


def _coverage(starts, ends, edge_path, boxes, total: int, height: int
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact area coverage of every path over its bounding box (flat buffer, overflow columns included).

    Returns the signed running sums (total,) float64 (no gradients; coverage = min(|sum|, 1); what
    is left of rounding, |sum| < SUM_FLOOR, counts as zero, see :func:`_plan`), the cells the
    amounts go to and one past each one's row end (2, K) (for :class:`_PairCoverage`), and the
    amounts (K,), differentiable in ``starts`` and ``ends`` through :class:`_PieceAmounts`.

    Each edge is cut into pieces that lie inside one pixel cell. A piece with vertical extent dy and
    mean abscissa xm in column c of a row adds dir*dy*(c+1-xm) to that cell and dir*dy*(xm-c) to the next
    one, so a running sum along the row gives the signed area covered in every cell (the classic
    accumulation-buffer scheme). Coverage is min(|sum|, 1): the nonzero rule, exact where |winding| <= 1.
    Horizontal edges add no area but their end points move the neighbouring edges.
    """
    dev, dt = starts.device, starts.dtype
    with torch.no_grad():
        pw = boxes[:, 2].index_select(0, edge_path)
        # ---- stage 1: cut every edge at integer rows ---------------------------------------------
        s_, e_ = starts.detach(), ends.detach()
        ylo = torch.minimum(s_[:, 1], e_[:, 1])
        yhi = torch.maximum(s_[:, 1], e_[:, 1])
        r0 = torch.floor(ylo)
        r1 = torch.maximum(r0 + 1, torch.ceil(yhi))
        r0c, r1c = r0.clamp(0, height), r1.clamp(0, height)
        cnt = torch.where(pw > 0, (r1c - r0c).long().clamp(min=0), torch.zeros_like(pw))
        n1 = int(cnt.sum())
        if n1 == 0:   # nothing crosses a row inside a box: zero coverage, still connected to the points
            return starts.new_zeros(total), torch.zeros(2, 0, dtype=torch.long, device=dev), \
                starts.new_zeros(0) + 0.0 * (starts.sum() + ends.sum())
        e = torch.repeat_interleave(cnt, output_size=n1)   # edge of every row piece (index form: no gather)
        first = torch.cumsum(cnt, 0) - cnt
        # per-piece gathers from channel-planar sources (float: a (k, M) gather along dim 1; int64:
        # 1-D gathers): a gather of short rows costs several times as much per element on the CPU
        row = (r0c.long() - first).index_select(0, e).add_(torch.arange(n1, device=dev))
        pth = edge_path.index_select(0, e)
        ax, ay, bx, by = (v.index_select(0, e) for v in (s_[:, 0], s_[:, 1], e_[:, 0], e_[:, 1]))
        dxe, dye = bx - ax, by - ay
        rowf = row.to(dt)
        ymin, ymax = torch.minimum(ay, by), torch.maximum(ay, by)
        y_top = torch.maximum(ymin, rowf)
        y_bot = torch.minimum(ymax, rowf + 1.0)
        flat = dye.abs() < 1e-6
        # flat edges get a unit divisor (their quotients are replaced); every other |dy| is >= 1e-6
        dyd = torch.where(flat, 1.0, dye)
        t_top_ = (y_top - ay) / dyd
        t_bot_ = (y_bot - ay) / dyd
        t_top = torch.where(flat, 0.0, t_top_.clamp(0, 1))
        t_bot = torch.where(flat, 1.0, t_bot_.clamp(0, 1))
        # the boxes' left edge and width, and the buffer index of cell (0, 0) of every box (per
        # path, so that a row's start is one multiply-add per piece)
        x0p, y0p, wp, _, offp = boxes.t()
        bx0, bw, base0 = (v.index_select(0, pth) for v in (x0p, wp, offp - y0p * (wp + 1) - x0p))
        bx0f = bx0.to(dt)
        bx1f = (bx0 + bw).to(dt)
        # x outside the box: left -> full cover from column 0 on, right -> the overflow column
        p_raw = ax + t_top * dxe
        q_raw = ax + t_bot * dxe
        px_ = torch.maximum(torch.minimum(p_raw, bx1f), bx0f)   # upper end of the piece
        qx_ = torch.maximum(torch.minimum(q_raw, bx1f), bx0f)   # lower end
        dyr_ = y_bot - y_top
        dyr = dyr_.clamp(min=0.0)      # vertical extent of the piece
        up = dye > 0
        wdir = torch.where(up, dyr, -dyr)
        dyr64 = (y_bot.double() - y_top.double()).clamp_(min=0.0)   # exact for float32 ends
        wdir64 = torch.where(up, dyr64, -dyr64)
        base1 = base0 + row * (bw + 1)   # buffer index of column 0 of this row, minus x0
        # ---- stage 2: cut every row piece at integer columns -----------------------------------
        c0 = torch.floor(torch.minimum(px_, qx_))
        c1 = torch.maximum(c0 + 1, torch.ceil(torch.maximum(px_, qx_)))
        c1 = torch.minimum(c1, torch.maximum(c0 + 1, bx1f + 1))
        cnt2 = (c1 - c0).long()
        n2 = int(cnt2.sum())
        if n2 == n1:   # every piece lies in one column: no expansion needed
            k = None
            col, P, Q, W, W64 = c0, px_, qx_, wdir, wdir64
            b_k, bw_k, x0_k = base1, bw, bx0
        else:
            k = torch.repeat_interleave(cnt2, output_size=n2)   # row piece of every column piece
            first2 = torch.cumsum(cnt2, 0) - cnt2
            col = (c0 - first2.to(dt)).index_select(0, k) + torch.arange(n2, device=dev).to(dt)
            P, Q, W = torch.stack([px_, qx_, wdir]).index_select(1, k)
            W64 = wdir64.index_select(0, k)
            # integer rows one at a time: a 2-D int64 gather along dim 1 is several times slower
            b_k, bw_k, x0_k = base1.index_select(0, k), bw.index_select(0, k), bx0.index_select(0, k)
        xl, xh = torch.minimum(P, Q), torch.maximum(P, Q)
        lo = torch.maximum(xl, col)
        hi = torch.minimum(xh, col + 1.0)
        dx = Q - P
        vert = dx.abs() < 1e-6
        dxd = torch.where(vert, 1.0, dx)
        s_lo_ = (lo - P) / dxd
        s_hi_ = (hi - P) / dxd
        s_lo = torch.where(vert, 0.0, s_lo_.clamp(0, 1))
        s_hi = torch.where(vert, 1.0, s_hi_.clamp(0, 1))
        xm = 0.5 * (lo + hi)
        ci = col.long()
        # cells[0]: the cell of every amount, cells[1]: one past its row's overflow column (the dump
        # cell ``total`` for a dropped spill); first the pieces' own cells, then their spills
        cells = torch.empty(2, 2, n2, dtype=torch.long, device=dev)
        idx = torch.add(b_k, ci, out=cells[0, 0])
        # the spill into the next cell is dropped for the overflow column (it would leave the row)
        inrow = ci - x0_k < bw_k
        dump = torch.full((), total, dtype=torch.long, device=dev)
        torch.where(inrow, idx + 1, dump, out=cells[0, 1])
        stop = torch.add(b_k, x0_k, out=cells[1, 0]).add_(bw_k + 1)
        torch.where(inrow, stop, dump, out=cells[1, 1])
        cells = cells.view(2, 2 * n2)
        # the amounts in float64, so that each row's add up to zero to float64 rounding: a piece's two
        # amounts add up to its share of the row piece's extent (the second is the rest of the
        # first) and its share is the difference of the column-cut parameters, which telescopes along
        # the row piece (in float32 every row kept a residue of ~1e-7, which the running sum carried
        # to every cell right of the path: half of a photo's pairs were such residue). The split
        # between the cell and the next is float64 too (col + 1 - xm in float32 loses ~1e-5 at
        # col ~ 256).
        w64 = (s_hi.double() - s_lo.double()).abs_().mul_(W64)
        amounts64 = torch.empty(2, n2, dtype=torch.float64, device=dev)
        a1 = torch.mul(w64, col.double() + 1.0 - 0.5 * (lo.double() + hi.double()), out=amounts64[0])
        torch.sub(w64, a1, out=amounts64[1])
        amounts64 = amounts64.view(-1)
        amounts = amounts64.to(dt)
        # the running sum in float64: every row sums to zero, and in float32 the rounding of the
        # earlier rows would carry into the later ones; what is left of it (|s| < SUM_FLOOR) counts
        # as zero, so that a cell no piece reaches (or a path of zero area) has no pair in the plan
        acc = torch.zeros(total + 1, device=dev, dtype=torch.float64).index_add_(0, cells[0], amounts64)
        sums = acc[:total].cumsum_(0)   # in place: the buffer is the largest array of a render
    if starts.requires_grad or ends.requires_grad:
        # what the backward pass needs, per row piece and per column piece
        sd = s_hi - s_lo
        w = sd.abs() * W
        keep = dict(e=e, k=k, n_edges=starts.shape[0],
                    row=(ax, ay, by, dxe, dye, rowf, ymin, ymax, y_top, y_bot, flat, dyd, t_top_, t_bot_, t_top, t_bot,
                         bx0f, bx1f, p_raw, q_raw, dyr_, up),
                    col=(col, P, Q, W, xl, xh, lo, hi, vert, dxd, s_lo_, s_hi_, s_lo, s_hi, sd, w, xm))
        amounts = _PieceAmounts.apply(starts, ends, amounts, keep)
    return sums, cells, amounts


def _run_sums(v: torch.Tensor, index: torch.Tensor | None, n: int) -> torch.Tensor:
    """(k, n) sums of the columns of ``v`` (k, M) with equal ``index`` (M,) (sorted; None: M = n,
    nothing to sum). An index_add along the rows is several times faster on the CPU than
    segment_reduce over runs of (M, k) rows."""
    return v if index is None else v.new_zeros(v.shape[0], n).index_add_(1, index, v)


class _PieceAmounts(torch.autograd.Function):
    """The amounts every piece of edge adds to the coverage buffer (computed by :func:`_coverage`),
    with the backward pass written out: per column piece, then per row piece, then per edge (the
    pieces of a row piece and the row pieces of an edge are consecutive, so each step is a run sum).
    At ties of min / max the gradient is shared half and half, and a clamp passes it at its bounds,
    as autograd does on the same expressions."""

    @staticmethod
    def forward(ctx, starts, ends, amounts, keep):
        ctx.keep = keep
        return amounts.clone()

    @staticmethod
    def backward(ctx, g):
        kp = ctx.keep
        col, P, Q, W, xl, xh, lo, hi, vert, dxd, s_lo_, s_hi_, s_lo, s_hi, sd, w, xm = kp["col"]
        n = col.shape[0]
        g1, g2 = g[:n], g[n:]
        # a1 = w (col + 1 - xm), a2 = w (xm - col)
        gw = g1 * (col + 1.0 - xm) + g2 * (xm - col)
        gxm = w * (g2 - g1)
        # w = |s_hi - s_lo| W
        gW = sd.abs() * gw
        gsd = torch.sign(sd) * W * gw
        on = ~vert
        # s = clamp((v - P) / dx, 0, 1): ds/dv = 1/dx, ds/dP = (s - 1)/dx, ds/dQ = -s/dx
        gsh = torch.where(on & (s_hi_ >= 0) & (s_hi_ <= 1), gsd, 0.0) / dxd
        gsl = torch.where(on & (s_lo_ >= 0) & (s_lo_ <= 1), -gsd, 0.0) / dxd
        g_hi = 0.5 * gxm + gsh
        g_lo = 0.5 * gxm + gsl
        gP = gsh * (s_hi_ - 1.0) + gsl * (s_lo_ - 1.0)
        gQ = -(gsh * s_hi_ + gsl * s_lo_)
        # lo = max(xl, col), hi = min(xh, col + 1), xl = min(P, Q), xh = max(P, Q)
        gP, gQ = _add_cell_clamp_grads(gP, gQ, g_lo, g_hi, P, Q, xl, xh, col)
        gP, gQ, gW = _run_sums(torch.stack([gP, gQ, gW]), kp["k"], kp["e"].shape[0])   # per row piece
        (ax, ay, by, dxe, dye, rowf, ymin, ymax, y_top, y_bot, flat, dyd, t_top_, t_bot_, t_top, t_bot,
         bx0f, bx1f, p_raw, q_raw, dyr_, up) = kp["row"]
        # px_ = max(min(p_raw, x1), x0)
        gP = gP * _tie(bx1f, p_raw) * _tie(torch.minimum(p_raw, bx1f), bx0f)
        gQ = gQ * _tie(bx1f, q_raw) * _tie(torch.minimum(q_raw, bx1f), bx0f)
        g_ax = gP * (1.0 - t_top) + gQ * (1.0 - t_bot)
        g_bx = gP * t_top + gQ * t_bot
        g_tt = torch.where(~flat & (t_top_ >= 0) & (t_top_ <= 1), gP * dxe, 0.0) / dyd
        g_tb = torch.where(~flat & (t_bot_ >= 0) & (t_bot_ <= 1), gQ * dxe, 0.0) / dyd
        # wdir = +-clamp(y_bot - y_top, 0)
        gdy = torch.where(dyr_ >= 0, torch.where(up, gW, -gW), 0.0)
        # t = (y - ay) / (by - ay): dt/dy = 1/dy, dt/day = (t - 1)/dy, dt/dby = -t/dy
        g_yt = g_tt - gdy
        g_yb = g_tb + gdy
        g_ay = g_tt * (t_top_ - 1.0) + g_tb * (t_bot_ - 1.0)
        g_by = -(g_tt * t_top_ + g_tb * t_bot_)
        # y_top = max(min(ay, by), row), y_bot = min(max(ay, by), row + 1)
        g_ay, g_by = _add_cell_clamp_grads(g_ay, g_by, g_yt, g_yb, ay, by, ymin, ymax, rowf)
        ge = _run_sums(torch.stack([g_ax, g_ay, g_bx, g_by]), kp["e"], kp["n_edges"])   # per edge
        return ge[:2].t(), ge[2:].t(), None, None


class _PairCoverage(torch.autograd.Function):
    """Coverage min(|running sum|, 1) of the plan's (path, pixel) pairs, with the running sums
    computed beforehand (the plan's pairs are the buffer cells it keeps, ``plan.perm``). The backward
    pass sums the gradient along each buffer row from every cell a piece of edge added to up to the
    row's end (the cells to its right in the same row): a float64 prefix sum over the pairs, read at
    both ends through ``plan.rank``, the number of pairs before every cell. The forward pass runs its sum over the whole buffer, so each
    amount also reaches the later rows, but every row's amounts add up to zero whatever the points
    (closed paths), so that part of the gradient is zero and is left out (in float32 it would be
    rounding noise scaled by the gradient of everything further on)."""

    @staticmethod
    def forward(ctx, amounts, cells, sums, plan):
        sp = sums.index_select(0, plan.perm).to(amounts.dtype)
        a = sp.abs()
        if ctx.needs_input_grad[0]:
            # d min(|s|, 1) / ds: sign(s) where |s| <= 1 (as torch's abs and clamp), else 0
            ctx.save_for_backward(torch.sign(sp).mul_(a <= 1.0), cells, plan.rank)
        return a.clamp_(max=1.0)

    @staticmethod
    def backward(ctx, gc):
        f, cells, rank = ctx.saved_tensors
        # the sum of the gradient over the cells before cell k is its sum over the pairs before it
        # (every other cell has none): a prefix sum over the pairs (G[r] = sum over the first r),
        # read at rank[k], the number of pairs before cell k, instead of one over the whole buffer
        G = gc.new_zeros(gc.shape[0] + 1, dtype=torch.float64)
        torch.cumsum((gc * f).double(), 0, out=G[1:])
        Gc = G.index_select(0, rank.index_select(0, cells.reshape(-1))).view(2, -1)
        return (Gc[1] - Gc[0]).to(gc.dtype), None, None, None


@dataclass
class _Plan:
    """Compositing order. Pairs (path, pixel) are sorted into groups of paths whose bounding boxes
    are disjoint; group k only covers paths that lie above everything they overlap in groups < k,
    so compositing one whole group at a time is exact."""

    perm: torch.Tensor     # (P,) positions in the flat coverage buffer, grouped
    pix: torch.Tensor      # (P,) pixel index y * W + x of each pair
    pid: torch.Tensor      # (P,) path index of each pair
    bounds: list[int]      # group g is pairs bounds[g]:bounds[g+1]
    pairwise: bool = False  # colours come per pair (gradient fills), not per path
    path_runs: list | None = None   # path i's pairs are path_runs[i][0]:path_runs[i][1]
    run_len: torch.Tensor | None = None   # (V,) lengths of the paths' runs in plan order
    run_path: torch.Tensor | None = None  # (V,) the path of each run
    rank: torch.Tensor | None = None   # (total + 1,) int32: the number of pairs before each buffer cell


def _plan(sums: torch.Tensor, lay: _Layout, width: int) -> _Plan:
    """The compositing plan of the (path, pixel) pairs with nonzero coverage: the buffer's nonzero
    cells (overflow columns left out); the buffer holds the paths in group order, so each path's
    pairs are one run in row order and the runs come in group order. Pairs with coverage 0 change
    nothing in the composite, and the coverage's derivative there is 0 too (|x| at 0), so leaving
    them out keeps the result and its gradients exact."""
    import numpy as np

    dev = sums.device
    b = lay.cpu
    x0, y0, w, h, off = b[:, 0], b[:, 1], b[:, 2], b[:, 3], b[:, 4]
    order = lay.order
    # every buffer row (buffer order): its first cell, and pixel index minus buffer index
    row_path = np.repeat(order, h[order])
    r = np.arange(len(row_path)) - np.repeat(np.cumsum(h[order]) - h[order], h[order])
    rw = w[row_path] + 1
    row_start = off[row_path] + r * rw
    row_pix = (y0[row_path] + r) * width + x0[row_path] - row_start
    keep = sums >= SUM_FLOOR        # |sum| >= SUM_FLOOR without a buffer-sized float64 temporary
    keep |= sums <= -SUM_FLOOR
    keep[torch.from_numpy(row_start + rw - 1).to(dev)] = False   # the overflow column
    idx = _nonzero(keep)
    # pairs up to the end of every buffer row (its overflow column) from a running count (int32: a
    # cheap pass, and far cheaper than searching the pairs); rows and paths are consecutive in the
    # buffer, so each row's and each path's pairs are the differences
    rank = torch.empty(lay.total + 1, dtype=torch.int32, device=dev)
    rank[0] = 0
    torch.cumsum(keep, 0, dtype=torch.int32, out=rank[1:])
    upto = rank.index_select(0, torch.from_numpy(row_start + rw).to(dev)).long()
    per_row = torch.diff(upto, prepend=upto.new_zeros(1))
    ends = upto.index_select(0, torch.from_numpy(np.cumsum(h[order]) - 1).to(dev)).cpu().numpy()
    runs = np.stack([np.concatenate([[0], ends[:-1]]), ends], 1).astype(np.int64)   # idx[runs[i, 0]:runs[i, 1]]
    length = runs[:, 1] - runs[:, 0]
    bounds = [0] + np.cumsum(np.bincount(lay.level[order], weights=length).astype(np.int64)).tolist() \
        if len(order) else [0]
    # pixel = buffer index + its row's shift, spread over the pairs (not over the whole buffer)
    pix = _repeat(torch.from_numpy(row_pix).to(dev), per_row, idx.shape[0]).add_(idx)
    run_len = torch.from_numpy(length).to(dev)
    run_path = torch.from_numpy(order).to(dev)
    pid = _repeat(run_path, run_len, idx.shape[0])
    at = np.zeros((len(b), 2), dtype=np.int64)
    at[order] = runs
    return _Plan(idx, pix, pid, bounds, path_runs=at.tolist(), run_len=run_len, run_path=run_path, rank=rank)


def _transmittance(u: torch.Tensor, plan: _Plan, n_pix: int) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Back-to-front 'over' of the pairs' opacities ``u`` (P,): the transmittance of everything above
    each pair (P,), None when there is one group (nothing lies above any pair), and the total
    transmittance of every pixel (n_pix,)."""
    T = torch.ones(n_pix, device=u.device, dtype=u.dtype)
    bd = plan.bounds
    if len(bd) == 2:
        T.scatter_(0, plan.pix, 1.0 - u)
        return None, T
    tab = torch.empty_like(u)
    for g in range(len(bd) - 2, -1, -1):   # top group first
        a, b = bd[g], bd[g + 1]
        px = plan.pix[a:b]
        t = torch.index_select(T, 0, px, out=tab[a:b])
        T.scatter_(0, px, t - t * u[a:b])   # a group covers each pixel once
    return tab, T


def _gather_rows(src: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(k, M) = src[:, index] for a (k, L) ``src``, one 1-D gather per row (faster on CPU than a
    gather along the second dimension, and no stacking copy)."""
    out = torch.empty(src.shape[0], index.shape[0], device=src.device, dtype=src.dtype)
    for k in range(src.shape[0]):
        torch.index_select(src[k], 0, index, out=out[k])
    return out


def _per_path(vals: torch.Tensor, plan: _Plan, n: int) -> torch.Tensor:
    """(k, n) sums over each path's pairs of ``vals`` (k, P) (plan order: one run per path)."""
    out = torch.zeros(vals.shape[0], n, device=vals.device, dtype=vals.dtype)
    if plan.run_len is None or plan.run_len.shape[0] == 0:
        return out.index_add_(1, plan.pid, vals)
    for k in range(vals.shape[0]):
        out[k].index_copy_(0, plan.run_path, torch.segment_reduce(vals[k], "sum", lengths=plan.run_len))
    return out


class _Composite(torch.autograd.Function):
    """Back-to-front 'over' compositing of the pairs' coverage onto a transparent canvas.

    c: (P,) coverage of the plan's pairs; rgb (N, 3) and alpha (N,) per path, or (P, 3) and (P,)
    per pair when ``plan.pairwise``. Returns premultiplied colour (H, W, 3) and total transmittance
    (H, W) (alpha = 1 - T). Per-pair colours are handled channel-planar, (3, P), which keeps every
    per-pair operation on contiguous rows; the image is written one channel at a time.

    The forward pass walks the groups top first for the transmittance above every pair; the
    colours are then one weighted sum over all pairs. The backward pass walks the groups bottom
    first carrying one number per pixel, y = gC . B + gT * T_below (B: the premultiplied composite
    below, T_below: its transmittance), since dL/du = T_above * (gC . rgb - y) and a pair turns y
    into y + u * (gC . rgb - y). With one group (no box overlaps another) both walks are skipped.
    """

    @staticmethod
    def forward(ctx, c, rgb, alpha, plan: _Plan, height: int, width: int):
        dev, dt = c.device, c.dtype
        if plan.pairwise:   # rgb (P, 3) and alpha (P,) are already per pair
            a_p, rgbp = alpha, rgb.t().contiguous()
        else:
            a_p, rgbp = alpha.index_select(0, plan.pid), _gather_rows(rgb.t().contiguous(), plan.pid)
        u = c * a_p
        tab, T = _transmittance(u, plan, height * width)
        w = u if tab is None else u * tab     # each pair's weight in the composite
        C = torch.zeros(height * width, 3, device=dev, dtype=dt)
        for k in range(3):   # strided views: no (3, H*W) <-> (H*W, 3) transposes
            C[:, k].scatter_add_(0, plan.pix, rgbp[k] * w)   # faster than index_add_ on the CPU
        ctx.save_for_backward(c, u, a_p, rgbp, tab, w)
        ctx.plan = plan
        ctx.n = rgb.shape[0]
        return C.view(height, width, 3), T.view(height, width)

    @staticmethod
    def backward(ctx, gC, gT):
        c, u, a_p, rgbp, tab, w = ctx.saved_tensors
        plan = ctx.plan
        gC = gC.reshape(-1, 3)
        gT = gT.reshape(-1)
        gCp = _gather_rows(gC.t(), plan.pix)   # (3, P)
        q = gCp[0] * rgbp[0]       # gC . rgb per pair
        q.addcmul_(gCp[1], rgbp[1]).addcmul_(gCp[2], rgbp[2])
        bd = plan.bounds
        if tab is None:   # one group: below every pair lies the empty canvas
            gu = q - gT.index_select(0, plan.pix)
        else:
            y = gT.clone()
            gu = torch.empty_like(u)
            for g in range(len(bd) - 1):   # bottom group first
                a, b = bd[g], bd[g + 1]
                px = plan.pix[a:b]
                ys = y.index_select(0, px)
                d = q[a:b] - ys
                torch.mul(tab[a:b], d, out=gu[a:b])
                y.scatter_(0, px, ys.addcmul_(u[a:b], d))
        need_c, need_rgb, need_alpha = ctx.needs_input_grad[:3]
        gc = gu * a_p if need_c else None
        grgb = galpha = None
        if plan.pairwise:
            if need_rgb:
                grgb = gCp.mul_(w).t()
            if need_alpha:
                galpha = gu * c
        else:
            if need_alpha:
                galpha = _per_path((gu * c)[None], plan, ctx.n)[0]
            if need_rgb:
                grgb = _per_path(gCp.mul_(w), plan, ctx.n).t()
        return gc, grgb, galpha, None, None, None


@dataclass
class GradientFills:
    """The gradient fills of a render call, packed for evaluation (every tensor may carry gradients).

    path (G,) long: the path each gradient fills; kind (G,) long: 0 linear, 1 radial;
    geom (G, 5): linear (x1, y1, x2, y2, unused), radial (cx, cy, r, fx, fy) in pixels;
    offsets (G, K) rising in [0, 1]; colors (G, K, 4) straight RGBA. Gradients with fewer stops are
    padded with their last stop.
    """

    path: torch.Tensor
    kind: torch.Tensor
    geom: torch.Tensor
    offsets: torch.Tensor
    colors: torch.Tensor

    def to(self, device=None, dtype=None) -> "GradientFills":
        f = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
        return GradientFills(self.path.to(device), self.kind.to(device), f(self.geom), f(self.offsets), f(self.colors))


FOCAL_LIMIT = 0.99  # a focal point farther from the centre than this share of the radius is pulled in


def pack_fills(fills) -> GradientFills | None:
    """Per-path fills (None = flat, else a scene LinearGradient / RadialGradient) -> GradientFills,
    or None when every path is flat. Built with differentiable stacking (the gradients' tensors may
    require grad)."""
    from ..scene import LinearGradient, RadialGradient

    idx = [i for i, f in enumerate(fills) if f is not None]
    if not idx:
        return None
    kmax = max(fills[i].offsets.shape[0] for i in idx)
    kinds, geoms, offs, cols = [], [], [], []
    for i in idx:
        f = fills[i]
        if isinstance(f, LinearGradient):
            kinds.append(0)
            geoms.append(torch.cat([f.start, f.end, f.start.new_zeros(1)]))
        elif isinstance(f, RadialGradient):
            kinds.append(1)
            foc = f.center if f.focal is None else f.focal
            geoms.append(torch.cat([f.center, f.radius.reshape(1).to(f.center.dtype), foc]))
        else:
            raise SceneError(f"path {i}: fill must be a LinearGradient or RadialGradient, got {type(f).__name__}")
        k = f.offsets.shape[0]
        o, c = f.offsets, f.colors
        if k < kmax:
            o = torch.cat([o, o.new_ones(kmax - k)])
            c = torch.cat([c, c[-1:].expand(kmax - k, 4)])
        offs.append(o)
        cols.append(c)
    return GradientFills(torch.tensor(idx), torch.tensor(kinds), torch.stack(geoms), torch.stack(offs),
                         torch.stack(cols))


def _gradient_table(gf: GradientFills) -> torch.Tensor:
    """(G, 7 + 6 (K - 1)) per-gradient constants, gathered once per (path, pixel) pair:
    kind, then linear (x1, y1, dx / l2, dy / l2) or radial (focal x, focal y, ex, ey, 1 / k, k) where
    e = centre - focal (pulled inside the circle) and k = r^2 - |e|^2, then the first stop's colour
    and per stop interval (offset, 1 / span, colour difference)."""
    geom = gf.geom
    lin = gf.kind == 0
    # linear
    dx, dy = geom[:, 2] - geom[:, 0], geom[:, 3] - geom[:, 1]
    l2 = (dx * dx + dy * dy).clamp(min=1e-12)
    # radial: the point lies on the circle of radius t*r around f + t*(c - f)
    r = geom[:, 2].abs().clamp(min=1e-6)
    ex, ey = geom[:, 0] - geom[:, 3], geom[:, 1] - geom[:, 4]
    el = torch.sqrt(ex * ex + ey * ey + 1e-12)
    s = torch.clamp(FOCAL_LIMIT * r / el, max=1.0)
    ex, ey = ex * s, ey * s
    k = r * r - (ex * ex + ey * ey)
    one = torch.ones_like(k)
    k = torch.where(lin, one, k)   # keeps the unused radial branch finite for linear gradients
    a0 = torch.where(lin, geom[:, 0], geom[:, 0] - ex)
    a1 = torch.where(lin, geom[:, 1], geom[:, 1] - ey)
    a2 = torch.where(lin, dx / l2, ex)
    a3 = torch.where(lin, dy / l2, ey)
    cols = [lin.to(geom.dtype), a0, a1, a2, a3, 1.0 / k, k]
    offs, sc = gf.offsets, gf.colors
    parts = [torch.stack(cols, 1), sc[:, 0]]
    for j in range(offs.shape[1] - 1):
        span = offs[:, j + 1] - offs[:, j]
        # a zero-length interval is a hard step (a 1e-6 wide ramp)
        inv = 1.0 / torch.where(span.detach() <= 1e-6, torch.full_like(span, 1e-6), span)
        parts += [offs[:, j:j + 1], inv[:, None], sc[:, j + 1] - sc[:, j]]
    return torch.cat(parts, 1)


def _gradient_rgba(gf: GradientFills, x: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """(M, 4) straight RGBA of gradient ``g`` (M,) at points (x, y) (M,): the gradient parameter t,
    then piecewise linear in the stops, constant beyond the first and last (spread "pad").
    Differentiable in the gradients' parameters (through :class:`_GradientEval`)."""
    return _GradientEval.apply(_gradient_table(gf), x, y, g, gf.offsets.shape[1])


def _gradient_eval(tab: torch.Tensor, x, y, nstops: int):
    """Forward pass of :class:`_GradientEval` on gathered columns ``tab`` (C, M) (each row
    contiguous): the colours (M, 4) and the intermediates its backward needs."""
    is_lin, a0, a1, a2, a3, inv_k, k = tab[:7]
    lin = is_lin > 0.5
    px, py = x - a0, y - a1        # point - start (linear) or point - focal (radial)
    de = px * a2 + py * a3         # linear: t; radial: (point - focal) . e
    dd = px * px + py * py
    root = torch.sqrt(de * de + k * dd + 1e-12)
    t = torch.where(lin, de, (root - de) * inv_k)
    out = tab[7:11].clone()
    for j in range(nstops - 1):
        base = 11 + 6 * j
        w = ((t - tab[base]) * tab[base + 1]).clamp_(0, 1)
        out.addcmul_(w.unsqueeze(0), tab[base + 2:base + 6])
    return out.t(), (lin, px, py, de, dd, root, t)


class _GradientEval(torch.autograd.Function):
    """Gradient colours per (path, pixel) pair from the per-gradient table of :func:`_gradient_table`,
    with a hand-written backward: per pair a few products, then one ``index_add`` into the table
    (autograd through the per-pair expressions kept a dozen pair-sized tensors per step). The table
    is gathered column-major, (C, M), so every per-pair quantity is one contiguous row."""

    @staticmethod
    def forward(ctx, table, x, y, g, nstops):
        tab = table.t().contiguous().index_select(1, g)
        out, keep = _gradient_eval(tab, x, y, nstops)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(tab, g, *keep)
        ctx.nstops, ctx.shape = nstops, table.shape
        return out

    @staticmethod
    def backward(ctx, grad_out):
        tab, g, lin, px, py, de, dd, root, t = ctx.saved_tensors
        go = grad_out.t().contiguous()  # (4, M)
        gtab = torch.empty_like(tab)
        gtab[0] = 0.0
        gtab[7:11] = go
        gt = torch.zeros_like(t)
        for j in range(ctx.nstops - 1):
            base = 11 + 6 * j
            o, inv = tab[base], tab[base + 1]
            u = (t - o) * inv
            gtab[base + 2:base + 6] = go * u.clamp(0, 1).unsqueeze(0)
            gw = (go * tab[base + 2:base + 6]).sum(0) * ((u >= 0) & (u <= 1)).to(t.dtype)
            gt.addcmul_(gw, inv)
            gtab[base] = -gw * inv
            gtab[base + 1] = gw * (t - o)
        a2, a3, inv_k, k = tab[3], tab[4], tab[5], tab[6]
        # radial: t = (root - de) / k with root = sqrt(de^2 + k dd)
        zero = torch.zeros_like(gt)
        g_de = torch.where(lin, gt, gt * (de / root - 1.0) * inv_k)
        g_dd = torch.where(lin, zero, gt * 0.5 * k / root * inv_k)
        gtab[5] = torch.where(lin, zero, gt * (root - de))
        gtab[6] = torch.where(lin, zero, gt * 0.5 * dd / root * inv_k)
        g_px = g_de * a2 + 2.0 * g_dd * px
        g_py = g_de * a3 + 2.0 * g_dd * py
        gtab[1] = -g_px
        gtab[2] = -g_py
        gtab[3] = g_de * px
        gtab[4] = g_de * py
        gtable = tab.new_zeros(ctx.shape[1], ctx.shape[0]).index_add_(1, g, gtab)
        return gtable.t(), None, None, None, None


def _pair_colors(gf: GradientFills, col: torch.Tensor, plan: _Plan, n: int, width: int) -> torch.Tensor:
    """(P, 4) straight RGBA of every (path, pixel) pair: the path's colour, or its gradient at the
    pixel's centre."""
    dev = col.device
    rgba = col.index_select(0, plan.pid)
    gidx = torch.full((n,), -1, dtype=torch.long, device=dev)
    gidx[gf.path.to(dev)] = torch.arange(gf.path.shape[0], device=dev)
    gp = gidx.index_select(0, plan.pid)
    sel = torch.nonzero(gp >= 0).flatten()
    if sel.numel() == 0:
        return rgba
    g = gp.index_select(0, sel)
    pix = plan.pix.index_select(0, sel)
    x = torch.remainder(pix, width).to(col.dtype) + 0.5
    y = torch.div(pix, width, rounding_mode="floor").to(col.dtype) + 0.5
    return rgba.index_put((sel,), _gradient_rgba(gf, x, y, g).clamp(0.0, 1.0))


def check_points(points: list[torch.Tensor] | PackedPaths) -> torch.Tensor:
    """Check the paths' shapes and that every coordinate is finite (SceneError otherwise); returns
    their concatenation (3S, 2), differentiable (what :func:`flatten` starts from)."""
    packed = isinstance(points, PackedPaths)
    if packed:
        allp = points.points
        if allp.dim() != 2 or allp.shape[1] != 2 or sum(points.sizes) != allp.shape[0]:
            raise SceneError(f"packed paths: points must have shape ({sum(points.sizes)}, 2), got {tuple(allp.shape)}")
        shapes = [(s, 2) for s in points.sizes]
    else:
        shapes = [tuple(p.shape) for p in points]
    for i, sh in enumerate(shapes):
        if len(sh) != 2 or sh[1] != 2 or sh[0] == 0 or sh[0] % 3:
            raise SceneError(f"path {i}: points must have shape (3S, 2), got {sh}")
    # one check for all paths (this runs on every render); the culprit is looked up only on failure
    if not packed:
        allp = torch.cat(points, 0)
    if not bool(torch.isfinite(allp.detach()).all()):
        bad = next(i for i, p in enumerate(points) if not bool(torch.isfinite(p).all()))
        raise SceneError(f"path {bad}: control points contain NaN or infinite coordinates")
    return allp


def _coverage_and_plan(points: list[torch.Tensor] | PackedPaths, dev, dt, width: int, height: int,
                       samples: int = 16):
    """The steps every entry point shares: checked points -> edges -> boxes -> exact coverage, and the
    compositing plan of the pairs with nonzero coverage. Returns (starts, c, plan) with c the (P,)
    coverage of the plan's pairs (differentiable in the points); c and plan are
    None when no path reaches the canvas."""
    if isinstance(points, PackedPaths):
        pts = PackedPaths(points.points.to(device=dev, dtype=dt), points.sizes)
        sizes = pts.sizes
    else:
        pts = [p.to(device=dev, dtype=dt) for p in points]
        sizes = tuple(p.shape[0] for p in pts)
    allp = check_points(pts)
    starts, ends, edge_path = _flatten_cat(allp, sizes, samples)
    lay = _layout(starts, ends, edge_path, len(pts), width, height)
    if lay.total == 0:
        return starts, None, None
    sums, cells, amounts = _coverage(starts, ends, edge_path, lay.boxes, lay.total, height)
    plan = _plan(sums, lay, width)
    return starts, _PairCoverage.apply(amounts, cells, sums, plan), plan


def render_torch(points: list[torch.Tensor] | PackedPaths, colors: torch.Tensor, width: int, height: int,
                 samples_per_segment: int = 16, with_coverage_sum: bool = False,
                 fills: GradientFills | None = None):
    """Render paths onto a transparent canvas.

    points: list of N (3S_i, 2) tensors, pixels, or the same paths end to end (:class:`PackedPaths`;
    the same render and gradients, fewer autograd nodes). colors: (N, 4) straight RGBA in [0, 1], back to front.
    fills: gradient fills of some paths (their rows of ``colors`` are then not used), or None.
    Returns premultiplied RGB (H, W, 3) and alpha (H, W); with ``with_coverage_sum`` also the (H, W)
    sum over paths of each path's own coverage (no compositing; above 1 where paths overlap).
    """
    n = len(points)
    dev = colors.device
    dt = colors.dtype if colors.is_floating_point() else torch.float32

    def blank(link=0.0):
        z3 = torch.zeros(height, width, 3, device=dev, dtype=dt) + link
        z = torch.zeros(height, width, device=dev, dtype=dt) + link
        return (z3, z, z.clone()) if with_coverage_sum else (z3, z)

    if n == 0:
        return blank()
    starts, c, plan = _coverage_and_plan(points, dev, dt, width, height, samples_per_segment)
    col = colors.clamp(0.0, 1.0)
    if c is None:  # nothing visible: a constant image, still connected to the inputs (zero grads)
        return blank(col.sum() * 0.0 + starts.sum() * 0.0)
    if fills is None:
        C, T = _Composite.apply(c, col[:, :3], col[:, 3].contiguous(), plan, height, width)
    else:
        rgba = _pair_colors(fills.to(dev, dt), col, plan, n, width)
        pair_plan = _Plan(plan.perm, plan.pix, plan.pid, plan.bounds, pairwise=True)
        C, T = _Composite.apply(c, rgba[:, :3], rgba[:, 3].contiguous(), pair_plan, height, width)
    if not with_coverage_sum:
        return C, 1.0 - T
    S = torch.zeros(height * width, device=dev, dtype=dt).index_add(0, plan.pix, c)
    return C, 1.0 - T, S.view(height, width)


def coverage_sum(points: list[torch.Tensor], width: int, height: int,
                 samples_per_segment: int = 16) -> torch.Tensor:
    """(H, W) sum over paths of each path's own coverage (no compositing), differentiable in the points.

    Where paths overlap the sum exceeds 1; the structure stage penalises that excess.
    """
    if not points:
        return torch.zeros(height, width)
    ones = torch.ones(len(points), 4, device=points[0].device, dtype=points[0].dtype)
    return render_torch(points, ones, width, height, samples_per_segment, with_coverage_sum=True)[2]


@dataclass
class Pairs:
    """Every (pixel, path) pair with nonzero coverage of a scene, and how much of the path shows there.

    pix: pixel index y * width + x; pid: path index; cov: the path's own coverage (0..1];
    vis: coverage x alpha x transmittance of the paths above (0 where it is hidden). Path i's pairs
    are ``runs[i][0]:runs[i][1]``, in row order. The composite is linear in the paths' RGB colours:
    ``C = sum vis * rgb[pid]`` and ``A = sum vis`` per pixel (see :func:`composite_pairs`)."""

    pix: torch.Tensor
    pid: torch.Tensor
    cov: torch.Tensor
    vis: torch.Tensor
    runs: list

    def covered(self, i: int) -> torch.Tensor:
        """Pixel indices path ``i`` covers at all (what :func:`covered_pixels` gives)."""
        a, b = self.runs[i]
        return self.pix[a:b]

    def visible_area(self, n: int) -> torch.Tensor:
        """(n,) pixels of each path that show in the composite."""
        return torch.zeros(n, dtype=self.vis.dtype, device=self.vis.device).index_add_(0, self.pid, self.vis)


def scene_pairs(points: list[torch.Tensor], alphas: torch.Tensor, width: int, height: int) -> Pairs:
    """The :class:`Pairs` of a scene (one coverage pass serves visibility, visible areas, covered
    pixels, colour solves and flat-colour renders). No gradients."""
    n = len(points)
    dev = alphas.device
    z = torch.zeros(0, dtype=torch.long, device=dev)
    if n == 0:
        return Pairs(z, z, torch.zeros(0, device=dev), torch.zeros(0, device=dev), [])
    with torch.no_grad():
        dt = alphas.dtype
        _, cov, plan = _coverage_and_plan([p.detach() for p in points], dev, dt, width, height)
        if cov is None:
            e = torch.zeros(0, device=dev, dtype=dt)
            return Pairs(z, z, e, e, [(0, 0)] * n)
        u = cov * alphas.clamp(0, 1).index_select(0, plan.pid)
        tab, _ = _transmittance(u, plan, height * width)
        vis = u if tab is None else u * tab
        return Pairs(plan.pix, plan.pid, cov.detach(), vis, list(plan.path_runs))


def composite_pairs(pairs: Pairs, rgb: torch.Tensor, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Premultiplied RGB (H, W, 3) and alpha (H, W) of the scene of ``pairs`` with flat RGB colours
    ``rgb`` (N, 3) (and the alphas the pairs were made with): the render, without a coverage pass."""
    P = height * width
    dt = pairs.vis.dtype
    C = torch.zeros(P, 3, dtype=dt, device=pairs.vis.device)
    A = torch.zeros(P, dtype=dt, device=pairs.vis.device)
    if pairs.pix.numel():
        C.index_add_(0, pairs.pix, pairs.vis[:, None] * rgb.to(dt).clamp(0, 1).index_select(0, pairs.pid))
        A.index_add_(0, pairs.pix, pairs.vis)
    return C.view(height, width, 3), A.view(height, width)


def visibility(points: list[torch.Tensor], alphas: torch.Tensor, width: int, height: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """How much of each path shows at each pixel: the composite is linear in the paths' RGB colours,
    ``C(pixel) = sum_i weight_i(pixel) * rgb_i``, with weight = coverage x alpha x transmittance of
    the paths above. Returns (pix, pid, weight) over the (pixel, path) pairs with a nonzero weight:
    pixel index y * width + x, path index, weight. No gradients."""
    p = scene_pairs(points, alphas, width, height)
    keep = torch.nonzero(p.vis > 0).flatten()
    if keep.shape[0] == p.vis.shape[0]:
        return p.pix, p.pid, p.vis
    return p.pix.index_select(0, keep), p.pid.index_select(0, keep), p.vis.index_select(0, keep)


def covered_pixels(points: list[torch.Tensor], width: int, height: int) -> list[torch.Tensor]:
    """For every path, the indices (y * width + x) of the pixels it covers at all (coverage > 0,
    anti-aliased edge pixels included), ignoring what lies above or below it. No gradients."""
    n = len(points)
    if n == 0:
        return []
    with torch.no_grad():
        dev = points[0].device
        _, cov, plan = _coverage_and_plan([p.detach() for p in points], dev, torch.float32, width, height)
        if cov is None:
            return [torch.zeros(0, dtype=torch.long, device=dev)] * n
        # the plan keeps exactly the pairs with nonzero coverage, each path's in one run in row order
        return [plan.pix[a:b] for a, b in plan.path_runs]
