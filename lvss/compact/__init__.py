"""Compact mode: a mask soup merged by recolouring, then saliency-placed detail paths.

1. soup (:mod:`.soup`): the segmenter's masks and superpixels at several scales; their common
   refinement is a partition into N connected atoms, summarised as a mask graph (:mod:`.graph`);
2. merge (:mod:`.merge`): rounds of recolouring down to the structural budget
   (``CompactConfig.structural_ratio`` of the paths), a greedy Ward merge finishing the job if needed;
3. paths (:mod:`.details`): every merged region becomes one path (its outer contour, largest first =
   back-most); the rest of the budget are small circles whose centres follow saliency, each kept in
   the segmenter mask it was seeded in; all paths are optimised against the image with the project's
   one optimiser loop (:func:`lvss.optimize.loop.adam_loop`), invisible details pruned.

Saliency (a CLIP prompt or a user mask) weights the merge (salient masks keep their colours, the rest
merges first), the detail seeds and the path loss. Without one, every pixel weighs the same (the
project's one convention: no map = ``None`` = uniform). A seeded random map instead would make which
regions merge and where details go depend on noise unrelated to the image, so lvss does not use one.
"""
from __future__ import annotations

import math
import threading
from typing import Callable

import numpy as np
import torch

from ..config import VectorizeConfig
from ..optimize.loop import adam_loop, check_cancel, prune_invisible
from .details import (Confine, detail_centres, detail_prob, mask_depth, region_colors, region_paths,
                      structural_budget)
from .graph import MaskGraph, MergeResult, build_graph, coarsen, greedy_merge
from .merge import recolor_merge
from .soup import Soup, labels_from_masks, mask_soup

__all__ = ["run_compact", "recolor_merge", "build_graph", "coarsen", "greedy_merge", "labels_from_masks",
           "mask_soup", "structural_budget", "detail_prob", "detail_centres", "MaskGraph", "MergeResult", "Soup"]

CONFINE_TOL = 0.0  # px a detail path's control point may stray outside its mask

Progress = Callable[[str, float, str], None]
Merge = Callable[..., MergeResult]  # (graph, budget, CompactConfig, seed, cancel, progress) -> MergeResult


def _detail_paths(rgb: np.ndarray, centres: np.ndarray, depth: np.ndarray | None, rad: float, dev):
    """A circle of radius ``rad`` per centre (shrunk where its mask is thinner, so that it starts inside
    the mask), coloured by the image's mean around it. Returns (points list, (n, 4) colours)."""
    from ..scene import circle_path

    h, w = rgb.shape[:2]
    pts, cols = [], []
    for x, y in centres.tolist():
        r = rad if depth is None else float(min(rad, max(1.0, depth[int(y), int(x)])))
        pts.append(circle_path(x, y, r).points.to(dev))
        x0, x1 = int(max(0, x - rad)), int(min(w, x + rad + 1))
        y0, y1 = int(max(0, y - rad)), int(min(h, y + rad + 1))
        cols.append([*rgb[y0:y1, x0:x1].reshape(-1, 3).mean(0).tolist(), 1.0])
    return pts, torch.tensor(cols, dtype=torch.float32, device=dev).reshape(-1, 4)


def run_compact(rgb: np.ndarray, alpha: np.ndarray, cfg: VectorizeConfig, dev: torch.device,
                prog: Progress | None = None, cancel: threading.Event | None = None,
                merge: Merge | None = None, source: np.ndarray | None = None,
                soup: Soup | None = None):
    """Compact vectorization of one image at the working resolution.

    rgb (h, w, 3) float32 straight RGB in [0, 1]; alpha (h, w) float32; prog(stage, fraction, message)
    with stage in {"segment", "recolor", "detail"}; merge: the clusterer (default the recolouring
    merge; bench/compact_baselines.py holds the ablation's); soup: a precomputed :class:`Soup` (the
    ablation shares one). Returns (Scene (w × h) with a "Structure" layer of merged regions at the back
    and a "Details" layer in front, metrics dict: mse, psnr (lvss.metrics.composite_metrics), paths,
    layers, masks (soup), atoms, regions, merges, forced_merges, rounds, cluster_seconds, structural,
    details, region_psnr (the merged regions filled with their mean colours; only when there are regions)).
    """
    from ..metrics import composite_metrics, psnr
    from ..optimize.losses import saliency_map, saliency_weight
    from ..optimize.structure import fit_colors
    from ..render.torch_raster import render_torch
    from ..scene import Layer, Path, Scene

    merge = recolor_merge if merge is None else merge
    if not callable(merge):
        raise ValueError(f"merge must be a clusterer function (graph, budget, config, seed, ...), got {merge!r}")
    prog = prog or (lambda *a: None)
    rgb, alpha = np.asarray(rgb, np.float32), np.asarray(alpha, np.float32)
    h, w = alpha.shape
    if rgb.shape != (h, w, 3):
        raise ValueError(f"rgb must have shape ({h}, {w}, 3) like alpha, got {rgb.shape}")
    cc = cfg.compact
    valid = alpha > 0.5
    n_struct = structural_budget(cfg.paths, cc.structural_ratio) if valid.any() else 0
    prog("segment", 0.0, "building the mask soup")
    sal = saliency_map(rgb, cfg)
    check_cancel(cancel)
    res, region_labels, semantic, atoms_n, regions_n, notes, masks_n = None, None, None, 0, 0, [], 0
    region_psnr = 0.0
    if valid.any():
        soup = soup or mask_soup(rgb, valid, cfg, source, lambda f, m: prog("segment", 0.9 * f, m), cancel)
        semantic, notes, masks_n = soup.semantic, list(soup.notes), soup.masks
    if n_struct > 0:
        graph = build_graph(soup.atoms, rgb, sal, soup.strength)
        if int(soup.semantic.max()) + 1 > n_struct:
            # the segmenter's masks do not fit the budget (photographs): its boundaries only weigh
            # (strength), none is kept at any cost
            graph.firm = math.inf
        atoms_n = graph.n
        pre = np.arange(graph.n)
        if graph.n > cc.max_masks:
            pre = greedy_merge(graph, cc.max_masks)
            graph = coarsen(graph, pre)
        prog("segment", 1.0, f"{masks_n} masks in the soup, {atoms_n} atoms, {len(graph.edges)} adjacent pairs")
        res = merge(graph, n_struct, cc, cfg.seed, cancel, prog)
        final = res.mapping[pre]
        region_labels = np.where(soup.atoms >= 0, final[np.maximum(soup.atoms, 0)], -1).astype(np.int32)
        regions_n = res.regions
        flat = region_colors(region_labels, rgb, regions_n)[np.maximum(region_labels, 0)]
        region_psnr = psnr(np.where(valid[..., None], flat, rgb), rgb)
        prog("recolor", 1.0, f"{regions_n} regions after {res.rounds} rounds")
    check_cancel(cancel)

    # structural paths + saliency-sampled detail circles, optimised together
    target_rgb = torch.from_numpy(rgb).to(dev)
    target_a = torch.from_numpy(alpha).to(dev)
    target_c = target_rgb * target_a.unsqueeze(-1)
    pts: list[torch.Tensor] = []
    colors = torch.zeros(0, 4, device=dev)
    if region_labels is not None:
        pts, ids = region_paths(region_labels, regions_n, cfg.optimize.dp_epsilon)
        pts = [p.to(dev) for p in pts]
        if pts:
            fallback = torch.from_numpy(region_colors(region_labels, rgb, regions_n)[ids]).float()
            cols = fit_colors(pts, torch.ones(len(pts)), target_rgb, fallback, w, h)
            colors = torch.cat([cols, torch.ones(len(pts), 1, device=dev)], 1)
    n_s = len(pts)
    rad = float(cc.detail_radius)
    centres = detail_centres(detail_prob(sal, alpha, semantic, rad), cfg.paths - n_s, cfg.seed)
    d_pts, d_cols = _detail_paths(rgb, centres, mask_depth(semantic) if semantic is not None else None, rad, dev)
    pts, colors = pts + d_pts, torch.cat([colors, d_cols], 0)
    confine = None
    if semantic is not None and len(centres):
        confine = Confine(semantic, centres, int(math.ceil(2 * rad)) + 2, CONFINE_TOL, dev)
    pts, colors = _optimise(pts, colors, target_c, target_a, saliency_weight(sal, dev), cfg, prog, cancel,
                            confine, n_s)
    pts, colors, _ = prune_invisible(pts, colors, n_s, w, h, cfg.optimize.prune_area)

    scene = Scene(w, h)
    struct = [Path(pts[i].cpu(), colors[i].cpu()) for i in range(n_s)]
    details = [Path(pts[i].cpu(), colors[i].cpu()) for i in range(n_s, len(pts))]
    if struct:
        scene.layers.append(Layer(f"Structure ({len(struct)} merged regions)", struct, "layer1"))
    if details:
        scene.layers.append(Layer("Details", details, f"layer{len(scene.layers) + 1}"))
    with torch.no_grad():
        C, A = render_torch(pts, colors, w, h) if pts else (torch.zeros_like(target_c), torch.zeros_like(target_a))
    metrics = composite_metrics(C, A, target_c, target_a)
    metrics.update(paths=float(scene.num_paths), layers=float(len(scene.layers)), masks=float(masks_n),
                   atoms=float(atoms_n), regions=float(regions_n), merges=float(max(atoms_n - regions_n, 0)),
                   forced_merges=float(res.forced if res else 0), rounds=float(res.rounds if res else 0),
                   cluster_seconds=float(res.seconds if res else 0.0), structural=float(len(struct)),
                   details=float(len(details)), budget=float(cfg.paths))
    if res is not None:
        metrics["region_psnr"] = float(region_psnr)
    metrics["_notes"] = notes  # popped by pipeline.run into VectorizeResult.notes
    return scene, metrics


def _optimise(points, colors, target_c, target_a, weight, cfg, prog, cancel, confine, n_fixed):
    """Every path's points and colour against the image (weighted MSE), with the project's optimiser
    loop; paths from index ``n_fixed`` on are kept in their masks by ``confine``. Every path moves
    here, so this stage is layered mode's refinement and polish in one: it takes both step counts."""
    from ..optimize.losses import image_loss
    from ..optimize.stopping import Plateau
    from ..render.torch_raster import render_torch

    h, w = target_a.shape
    iters = cfg.optimize.refine_iters + cfg.optimize.polish_iters
    pts = [p.detach().clone().requires_grad_(True) for p in points]
    cols = colors.detach().clone().requires_grad_(True)
    if confine is not None:
        confine(pts[n_fixed:])
    if iters == 0 or not pts:
        return [p.detach() for p in pts], cols.detach()

    def loss_fn() -> torch.Tensor:
        C, A = render_torch(pts, cols, w, h)
        return image_loss(C, A, target_c, target_a, weight)

    def project() -> None:
        with torch.no_grad():
            cols.clamp_(0.0, 1.0)
        if confine is not None:
            confine(pts[n_fixed:])

    def report(it: int, value: float) -> None:
        if it % 5 == 0 or it == iters - 1:
            prog("detail", (it + 1) / iters, f"path step {it + 1}/{iters}, loss {value:.4f}")

    adam_loop([(pts, cfg.optimize.point_lr), ([cols], cfg.optimize.color_lr)], loss_fn, iters,
              after_step=project, callback=report, stop=Plateau(cfg.optimize.stop_tol, cfg.optimize.stop_patience),
              cancel=cancel)
    return [p.detach() for p in pts], cols.detach()
