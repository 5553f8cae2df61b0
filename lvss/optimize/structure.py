"""Stage I (structure) and the colour fit of the layered method.

Every layer is optimised against its own masks. To do that in one render per step, the layers are
laid side by side on one wide canvas (layer l shifted right by l tiles), each path carrying a fixed
random colour; the loss is the MSE between that canvas and the masks painted in the same colours,
plus a penalty on overlap between paths of the same layer.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..config import OptimizeConfig
from ..geometry.guard import SimpleGuard
from ..render.torch_raster import PackedPaths, render_torch
from .losses import overlap_loss
from .loop import adam_loop
from .stopping import Plateau

TILE_PAD = 8  # empty pixels between layer tiles, so paths drifting past an edge don't reach a neighbour


@dataclass
class StructuralPath:
    """A path initialised from one mask. points (3S, 2) pixels; mask (H, W) bool; layer index."""

    points: torch.Tensor
    mask: np.ndarray
    layer: int
    mean_color: np.ndarray


def optimize_structure(paths: list[StructuralPath], height: int, width: int, cfg: OptimizeConfig,
                       device: torch.device, seed: int = 0,
                       step_callback: Callable[[int, int, float], None] | None = None,
                       cancel: threading.Event | None = None) -> list[torch.Tensor]:
    """Optimise the shapes of structural paths against their masks; returns new (3S, 2) points.

    Loss (per step): MSE(layers canvas, painted masks) + overlap_weight * mean(relu(sum coverage - 1)).
    """
    if not paths:
        return []
    n_layers = max(p.layer for p in paths) + 1
    tile = width + TILE_PAD
    W = tile * n_layers
    g = torch.Generator().manual_seed(seed)
    colors = torch.rand(len(paths), 3, generator=g)
    colors = torch.cat([colors, torch.ones(len(paths), 1)], 1).to(device)
    target = torch.zeros(height, W, 3)
    for i, p in enumerate(paths):
        x0 = p.layer * tile
        m = torch.from_numpy(p.mask)
        target[:, x0:x0 + width][m] = colors[i, :3].cpu()
    # coarse working size: exact-area rendering at scale s equals the area-downsampled full render,
    # so the loss against the area-downsampled target is the same loss, blurred
    s = min(1.0, max(cfg.structure_scale, 8.0 / min(height, width)))
    hs, Ws = max(1, round(height * s)), max(1, round(W * s))
    sx, sy = Ws / W, hs / height
    if (hs, Ws) != (height, W):
        target = torch.nn.functional.interpolate(target.permute(2, 0, 1)[None], size=(hs, Ws),
                                                 mode="area")[0].permute(1, 2, 0)
    target = target.to(device)
    scale = torch.tensor([sx, sy], device=device)
    offsets = torch.tensor([[p.layer * tile, 0.0] for p in paths], device=device)
    sizes = [p.points.shape[0] for p in paths]
    # one parameter tensor holding every path's points (one Adam update instead of one per path)
    flat = torch.cat([(p.points.detach().to(device) + offsets[i]) * scale for i, p in enumerate(paths)], 0)
    flat.requires_grad_(True)
    iters = cfg.structure_iters
    lr = cfg.structure_lr * min(sx, sy)
    def loss_fn() -> torch.Tensor:
        C, _, S = render_torch(PackedPaths(flat, sizes), colors, Ws, hs, with_coverage_sum=True)
        loss = ((C - target) ** 2).sum(-1).mean() * n_layers
        if cfg.overlap_weight > 0:
            loss = loss + cfg.overlap_weight * n_layers * overlap_loss(S)
        return loss

    cb = None if step_callback is None else (lambda step, value: step_callback(step, iters, value))
    adam_loop([([flat], lr)], loss_fn, iters, callback=cb, stop=Plateau(cfg.stop_tol, cfg.stop_patience),
              cancel=cancel, guard=SimpleGuard([(flat, sizes)]) if cfg.simple_paths else None)
    out = torch.split(flat.detach(), sizes)
    return [(t / scale - offsets[i]).cpu() for i, t in enumerate(out)]


def fit_colors(points: list[torch.Tensor], alphas: torch.Tensor, target_rgb: torch.Tensor,
               fallback: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Colour of every path = mean target colour over the pixels it visibly covers (weighted by its
    compositing weight), i.e. the least-squares colour of each path on its own visible pixels.

    points: N (3S, 2) tensors on the target's device; alphas (N,); target_rgb (H, W, 3) straight RGB;
    fallback (N, 3) used for paths that end up invisible. Returns (N, 3).
    """
    n = len(points)
    if n == 0:
        return torch.zeros(0, 3)
    dev = target_rgb.device
    rgb = torch.full((n, 3), 0.5, device=dev, requires_grad=True)
    cols = torch.cat([rgb, alphas.to(dev).view(n, 1)], 1)
    C, _ = render_torch([p.detach() for p in points], cols, width, height)
    # d(sum C)/d rgb_i = visible weight of path i; d(sum C * target)/d rgb_i = weighted target sum
    g_w, = torch.autograd.grad(C[..., 0].sum(), rgb, retain_graph=True)
    g_t, = torch.autograd.grad((C * target_rgb).sum(), rgb)
    w = g_w[:, :1]
    out = torch.where(w > 1e-3, g_t / w.clamp(min=1e-3), fallback.to(dev))
    return out.clamp(0.0, 1.0).detach()


def visible_area(points: list[torch.Tensor], colors: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(N,) pixels of each path that show in the composite (coverage x alpha x transmittance above)."""
    from ..render.torch_raster import scene_pairs

    n = len(points)
    if n == 0:
        return torch.zeros(0)
    return scene_pairs(points, colors[:, 3].detach(), width, height).visible_area(n)


def solve_colors(points: list[torch.Tensor], alphas: torch.Tensor, target_c: torch.Tensor,
                 current: torch.Tensor, width: int, height: int, weight: torch.Tensor | None = None,
                 ridge: float = 1e-4, pairs=None) -> torch.Tensor:
    """The RGB colours (N, 3) that bring the composite closest to ``target_c`` (H, W, 3, premultiplied)
    in (optionally per-pixel weighted) least squares, all paths jointly, for the given shapes and
    alphas. The composite is linear in the colours, so this is one small N x N linear solve; a tiny
    ridge towards ``current`` (N, 3) settles paths that barely show. Clamped to [0, 1]. ``pairs``: the
    scene's :func:`lvss.render.torch_raster.scene_pairs` when the caller has them (else computed)."""
    import scipy.sparse as sp

    from ..render.torch_raster import visibility

    n = len(points)
    if n == 0:
        return current[:, :3].clone()
    if pairs is not None:
        pix, pid, vis = pairs.pix, pairs.pid, pairs.vis
    else:
        pix, pid, vis = visibility(points, alphas, width, height)
    P = height * width
    wv = vis.double().cpu().numpy()
    V = sp.csr_matrix((wv, (pix.cpu().numpy(), pid.cpu().numpy())), shape=(P, n))
    tgt = target_c.reshape(P, 3).double().cpu().numpy()
    if weight is not None:
        wp = weight.reshape(P).double().cpu().numpy()
        VW = sp.diags(wp) @ V
    else:
        VW = V
    M = (V.T @ VW).toarray()
    cur = current[:, :3].double().cpu().numpy()
    scale = max(float(np.trace(M)) / n, 1e-9)
    M += ridge * scale * np.eye(n)
    rhs = VW.T @ tgt + ridge * scale * cur
    try:
        sol = np.linalg.solve(M, rhs)
    except np.linalg.LinAlgError:
        sol = np.linalg.lstsq(M, rhs, rcond=None)[0]
    out = torch.from_numpy(np.clip(sol, 0.0, 1.0)).to(dtype=current.dtype, device=current.device)
    return out
