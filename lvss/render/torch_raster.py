"""Built-in differentiable rasterizer, pure PyTorch (CPU and CUDA with the same code).

How it works
------------
1. Each cubic segment is flattened into ``samples_per_segment`` straight edges (a fixed Bernstein
   matrix, so the flattened points are linear in the control points and autograd carries gradients).
2. Every pixel row is split into ``subrows`` horizontal scanlines. For each edge we enumerate the
   scanlines it crosses and compute the crossing abscissa ``x`` (differentiable in the edge's ends).
3. Coverage along a scanline is exact for the nonzero rule where |winding| <= 1: per pixel it is the
   winding number entering the pixel plus ``dir * (px + 1 - x)`` for each crossing inside the pixel,
   taken in absolute value and clamped to 1. Running winding numbers come from one cumulative sum over
   a flat buffer holding every path's bounding box (each row's crossings sum to zero, so rows never
   leak into each other). Averaging the scanlines of a row gives the pixel's coverage.
4. Paths are alpha-composited back to front, each touching only its bounding box.

Steps 3 and 4 are custom autograd functions whose backward passes are written out: the coverage's
derivative with respect to a crossing abscissa is ``-dir * sign / subrows`` in the pixel holding it,
so gradients are exact derivatives of what the forward computes and cost O(crossings), not
O(pixels x edges).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..scene import SceneError


def _bernstein(m: int, device, dtype) -> torch.Tensor:
    """(m + 1, 4) cubic Bernstein weights at t = 0, 1/m, ..., 1."""
    t = torch.linspace(0.0, 1.0, m + 1, device=device, dtype=dtype)[:, None]
    u = 1.0 - t
    return torch.cat([u ** 3, 3 * u * u * t, 3 * u * t * t, t ** 3], dim=1)


@dataclass
class _Layout:
    """Bounding boxes of the paths inside the canvas, and where each sits in the flat buffer."""

    x0: list[int]
    y0: list[int]
    w: list[int]          # columns inside the canvas (the buffer row holds w + 1: an overflow column)
    h: list[int]
    off: list[int]        # start of each path in the flat buffer
    total: int            # flat buffer length


def flatten(points: list[torch.Tensor], samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten closed cubic paths into edges.

    points: list of (3S_i, 2) tensors. Returns ``starts`` (E, 2), ``ends`` (E, 2) and the path id of each
    edge (E,) long. Edges of path i are contiguous and in order.
    """
    dev = points[0].device
    counts = [p.shape[0] // 3 for p in points]
    allp = torch.cat(points, 0)
    # index of the 4 control points of every segment
    idx = []
    base = 0
    for s in counts:
        k = torch.arange(s, device=dev) * 3 + base
        end = torch.remainder(torch.arange(s, device=dev) * 3 + 3, 3 * s) + base
        idx.append(torch.stack([k, k + 1, k + 2, end], 1))
        base += 3 * s
    idx = torch.cat(idx, 0)                                   # (T, 4)
    ctrl = allp[idx]                                          # (T, 4, 2)
    B = _bernstein(samples, dev, allp.dtype)                  # (m+1, 4)
    curve = torch.einsum("mk,tkd->tmd", B, ctrl)              # (T, m+1, 2)
    starts = curve[:, :-1].reshape(-1, 2)
    ends = curve[:, 1:].reshape(-1, 2)
    seg_path = torch.repeat_interleave(torch.arange(len(points), device=dev),
                                       torch.tensor(counts, device=dev))
    edge_path = torch.repeat_interleave(seg_path, samples)
    return starts, ends, edge_path


def _layout(starts: torch.Tensor, ends: torch.Tensor, edge_path: torch.Tensor, n: int,
            width: int, height: int) -> tuple[_Layout, torch.Tensor, torch.Tensor]:
    """Per-path pixel bounding boxes clipped to the canvas."""
    pts = torch.cat([starts, ends], 0).detach()
    pid = torch.cat([edge_path, edge_path], 0)
    big = torch.finfo(pts.dtype).max
    mn = torch.full((n, 2), big, device=pts.device, dtype=pts.dtype).scatter_reduce(
        0, pid[:, None].expand(-1, 2), pts, "amin")
    mx = torch.full((n, 2), -big, device=pts.device, dtype=pts.dtype).scatter_reduce(
        0, pid[:, None].expand(-1, 2), pts, "amax")
    x0 = torch.floor(mn[:, 0]).clamp(0, width)
    x1 = torch.ceil(mx[:, 0]).clamp(0, width)
    y0 = torch.floor(mn[:, 1]).clamp(0, height)
    y1 = torch.ceil(mx[:, 1]).clamp(0, height)
    w = (x1 - x0).clamp(min=0).long()
    h = (y1 - y0).clamp(min=0).long()
    visible = (w > 0) & (h > 0)
    h = torch.where(visible, h, torch.zeros_like(h))
    w = torch.where(visible, w, torch.zeros_like(w))
    size = h * (w + 1)
    off = torch.cumsum(size, 0) - size
    total = int(size.sum())
    x0i, y0i = x0.long(), y0.long()
    lay = _Layout(x0i.tolist(), y0i.tolist(), w.tolist(), h.tolist(), off.tolist(), total)
    return lay, torch.stack([x0i, y0i, w, h, off], 1), visible


def _crossings(starts, ends, edge_path, boxes, subrows: int, height: int):
    """Every (edge, scanline) crossing. Returns differentiable x (C,), and for each crossing its
    direction (+1 downwards), flat buffer index (column clamped into [0, w], w = overflow),
    scanline index within the row, and the left pixel edge of its column."""
    dev = starts.device
    ay, by = starts[:, 1].detach(), ends[:, 1].detach()
    lo, hi = torch.minimum(ay, by), torch.maximum(ay, by)
    s = subrows
    nrows = height * s
    # scanline j has y = (j + 0.5) / s; edge crosses it when lo <= y < hi
    j_lo = torch.ceil(lo * s - 0.5).clamp(0, nrows).long()
    j_hi = torch.ceil(hi * s - 0.5).clamp(0, nrows).long()
    pw = boxes[edge_path, 2]
    cnt = torch.where(pw > 0, (j_hi - j_lo).clamp(min=0), torch.zeros_like(j_lo))
    total = int(cnt.sum())
    if total == 0:
        z = torch.zeros(0, device=dev, dtype=torch.long)
        return starts.new_zeros(0), z, z, z, z
    e = torch.repeat_interleave(torch.arange(cnt.shape[0], device=dev), cnt)
    first = torch.cumsum(cnt, 0) - cnt
    j = j_lo[e] + (torch.arange(total, device=dev) - first[e])
    yc = (j.to(starts.dtype) + 0.5) / s
    a = starts[e]
    b = ends[e]
    dy = b[:, 1] - a[:, 1]
    down = dy > 0
    safe_dy = torch.where(down, dy.clamp(min=1e-6), dy.clamp(max=-1e-6))
    t = ((yc - a[:, 1]) / safe_dy).clamp(0.0, 1.0)
    x = a[:, 0] + t * (b[:, 0] - a[:, 0])
    direction = torch.where(down, 1, -1).to(torch.long)
    pth = edge_path[e]
    bx0, by0, bw, bh, boff = boxes[pth].unbind(1)
    row = torch.div(j, s, rounding_mode="floor") - by0
    sub = j - torch.div(j, s, rounding_mode="floor") * s
    col = (torch.floor(x.detach()).long() - bx0).clamp(0, None)
    col = torch.minimum(col, bw)
    flat = boff + row * (bw + 1) + col
    left = (bx0 + col).to(starts.dtype)
    inside = col < bw
    return x, direction, flat, sub, torch.where(inside, left, torch.full_like(left, float("nan")))


class _Coverage(torch.autograd.Function):
    """Crossing abscissas → per-path bounding-box coverage (flat buffer)."""

    @staticmethod
    def forward(ctx, x, direction, flat, sub, left, total: int, subrows: int):
        s = subrows
        dt = x.dtype
        lin = sub * total + flat
        D = torch.zeros(s * total, device=x.device, dtype=dt)
        F = torch.zeros(s * total, device=x.device, dtype=dt)
        d = direction.to(dt)
        valid = ~torch.isnan(left)
        frac = torch.where(valid, (left + 1.0 - x).clamp(0.0, 1.0), torch.zeros_like(x))
        D.index_add_(0, lin, d)
        F.index_add_(0, lin, d * frac)
        Dv = D.view(s, total)
        wind = torch.cumsum(Dv, 1) - Dv + F.view(s, total)
        cov = wind.abs().clamp(max=1.0).mean(0)
        # derivative factor of |.|.clamp(max=1) at each scanline pixel
        dfac = torch.where(wind.abs() < 1.0, torch.sign(wind), torch.zeros_like(wind)).reshape(-1)
        ctx.save_for_backward(direction, lin, dfac, left, x)
        ctx.s = s
        return cov

    @staticmethod
    def backward(ctx, g):
        direction, lin, dfac, left, x = ctx.saved_tensors
        s = ctx.s
        total = g.shape[0]
        gflat = g.repeat(s)  # same pixel gradient for each scanline of the row
        inside = ~torch.isnan(left) & (x >= left) & (x < left + 1.0)
        gx = -direction.to(g.dtype) * dfac[lin] * gflat[lin] / s
        gx = torch.where(inside, gx, torch.zeros_like(gx))
        return gx, None, None, None, None, None, None


class _Composite(torch.autograd.Function):
    """Back-to-front 'over' compositing of per-path coverage onto a transparent canvas.

    Returns premultiplied colour (H, W, 3) and total transmittance (H, W) (alpha = 1 - T).
    """

    @staticmethod
    def forward(ctx, cov, rgb, alpha, lay: _Layout, height: int, width: int):
        dev, dt = cov.device, cov.dtype
        C = torch.zeros(height, width, 3, device=dev, dtype=dt)
        T = torch.ones(height, width, device=dev, dtype=dt)
        Tab = torch.empty_like(cov)
        n = rgb.shape[0]
        rgb_l = rgb.unbind(0)
        a_l = alpha.tolist()
        for i in range(n - 1, -1, -1):
            w, h = lay.w[i], lay.h[i]
            if w == 0:
                continue
            o, x0, y0 = lay.off[i], lay.x0[i], lay.y0[i]
            c = cov[o:o + h * (w + 1)].view(h, w + 1)[:, :w]
            Ts = T[y0:y0 + h, x0:x0 + w]
            tab = Tab[o:o + h * (w + 1)].view(h, w + 1)[:, :w]
            tab.copy_(Ts)
            u = c * a_l[i]
            C[y0:y0 + h, x0:x0 + w].addcmul_((u * Ts).unsqueeze(-1), rgb_l[i].view(1, 1, 3))
            Ts.mul_(1.0 - u)
        ctx.save_for_backward(cov, rgb, alpha, Tab)
        ctx.lay = lay
        ctx.hw = (height, width)
        return C, T

    @staticmethod
    def backward(ctx, gC, gT):
        cov, rgb, alpha, Tab = ctx.saved_tensors
        lay = ctx.lay
        height, width = ctx.hw
        dev, dt = cov.device, cov.dtype
        gcov = torch.zeros_like(cov)
        n = rgb.shape[0]
        grgb = torch.zeros_like(rgb)
        galpha = torch.zeros_like(alpha)
        Bb = torch.zeros(height, width, 3, device=dev, dtype=dt)   # composite below, premultiplied
        Tb = torch.ones(height, width, device=dev, dtype=dt)       # transmittance below
        rgb_l = rgb.unbind(0)
        a_l = alpha.tolist()
        for i in range(n):
            w, h = lay.w[i], lay.h[i]
            if w == 0:
                continue
            o, x0, y0 = lay.off[i], lay.x0[i], lay.y0[i]
            c = cov[o:o + h * (w + 1)].view(h, w + 1)[:, :w]
            tab = Tab[o:o + h * (w + 1)].view(h, w + 1)[:, :w]
            Bs = Bb[y0:y0 + h, x0:x0 + w]
            Ts = Tb[y0:y0 + h, x0:x0 + w]
            gCs = gC[y0:y0 + h, x0:x0 + w]
            gTs = gT[y0:y0 + h, x0:x0 + w]
            u = c * a_l[i]
            ut = u * tab
            grgb[i] = (gCs * ut.unsqueeze(-1)).sum((0, 1))
            # dL/du = T_above * (gC . (rgb - B_below) - gT * T_below)
            gu = tab * (torch.einsum("hwc,c->hw", gCs, rgb_l[i]) - (gCs * Bs).sum(-1) - gTs * Ts)
            galpha[i] = (gu * c).sum()
            gcov[o:o + h * (w + 1)].view(h, w + 1)[:, :w].copy_(gu * a_l[i])
            Bs.mul_((1.0 - u).unsqueeze(-1)).addcmul_(u.unsqueeze(-1), rgb_l[i].view(1, 1, 3))
            Ts.mul_(1.0 - u)
        return gcov, grgb, galpha, None, None, None


def check_points(points: list[torch.Tensor]) -> None:
    for i, p in enumerate(points):
        if p.dim() != 2 or p.shape[1] != 2 or p.shape[0] == 0 or p.shape[0] % 3:
            raise SceneError(f"path {i}: points must have shape (3S, 2), got {tuple(p.shape)}")
        if not bool(torch.isfinite(p).all()):
            raise SceneError(f"path {i}: control points contain NaN or infinite coordinates")


def render_torch(points: list[torch.Tensor], colors: torch.Tensor, width: int, height: int,
                 samples_per_segment: int = 16, subrows: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Render paths onto a transparent canvas.

    points: list of N (3S_i, 2) tensors, pixels. colors: (N, 4) straight RGBA in [0, 1], back to front.
    Returns premultiplied RGB (H, W, 3) and alpha (H, W).
    """
    n = len(points)
    dev = colors.device
    dt = colors.dtype if colors.is_floating_point() else torch.float32
    if n == 0:
        return torch.zeros(height, width, 3, device=dev, dtype=dt), torch.zeros(height, width, device=dev, dtype=dt)
    check_points(points)
    pts = [p.to(device=dev, dtype=dt) for p in points]
    starts, ends, edge_path = flatten(pts, samples_per_segment)
    lay, boxes, _ = _layout(starts, ends, edge_path, n, width, height)
    col = colors.clamp(0.0, 1.0)
    if lay.total == 0:
        return torch.zeros(height, width, 3, device=dev, dtype=dt), torch.zeros(height, width, device=dev, dtype=dt)
    x, direction, flat, sub, left = _crossings(starts, ends, edge_path, boxes, subrows, height)
    cov = _Coverage.apply(x, direction, flat, sub, left, lay.total, subrows)
    C, T = _Composite.apply(cov, col[:, :3].contiguous(), col[:, 3].contiguous(), lay, height, width)
    return C, 1.0 - T
