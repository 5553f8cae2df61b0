"""Compact mode: a mask soup merged by recolouring, then detail paths placed by error and saliency.

1. soup (:mod:`.soup`): the segmenter's masks and superpixels at several scales (optionally the
   simplification levels' masks too); their common refinement is a partition into N connected atoms,
   summarised as a mask graph (:mod:`.graph`);
2. merge (:mod:`.merge`): rounds of recolouring down to the structural budget
   (``CompactConfig.structural_ratio`` of the paths, adaptive by default: .budget), a greedy Ward merge finishing the job if needed;
3. paths (:mod:`.details`, :mod:`.paths`): every merged region becomes one path (its contour with the
   regions it encloses left out as holes, so a path covers only what it shows; largest first =
   back-most, grown ``underlap`` px under the regions in front of it); the rest of the
   budget are small circles added in rounds, part where the error is largest and part sampled by
   saliency, each kept in the segmenter mask it starts in; every path is fitted to the image with the
   project's one optimiser loop (:func:`lvss.optimize.loop.adam_loop`), invisible details pruned;
   a faint translucent area (a soft shadow, a glow: alpha under 0.5, :mod:`.faint`) gets nested
   paths at its own alphas behind everything, out of the same budget;
4. the budget ladder (:mod:`.ladder`): steps 2-3 run at every budget of 16, 24, 32, 48, ... below
   the one asked for and at it, and the result with the least error of the SVG as resvg renders it
   is kept, so a larger budget never ends worse than a smaller one. With a saliency map the run
   without it and that run refitted with the map's weights (:func:`.paths.refit`) are candidates
   too, and the result kept is the one closest where the map marks (so never worse there than the
   run without the map). The ladder costs the
   sum of its rungs' runs; ``CompactConfig.budget_ladder`` False (the ``fast`` preset) runs the budget
   asked for alone.

Saliency (a CLIP prompt or a user mask) weights the merge (salient masks keep their colours, the rest
merges first), the detail seeds and the path loss. Without one, every pixel weighs the same (the
project's one convention: no map = ``None`` = uniform). A seeded random map instead would make which
regions merge and where details go depend on noise unrelated to the image, so lvss does not use one.
"""
from __future__ import annotations

import math
import threading
from dataclasses import replace
from functools import partial
from typing import Callable

import numpy as np
import torch

from ..config import VectorizeConfig
from ..scene import OPAQUE_ALPHA
from ..types import check_cancel
from .faint import faint_areas, faint_paths, faint_taken
from .details import detail_centres, detail_prob, error_centres, region_colors, region_paths, structural_budget
from .budget import adaptive_split, adaptive_splits, split_budget
from .cover import absorb_slivers, cover_gaps, drop_hairs
from .ladder import rungs, written_error, written_render
from .graph import MaskGraph, MergeResult, build_graph, coarsen, greedy_merge, pixel_weights
from .merge import recolor_merge
from .paths import detail_rounds, refit
from .soup import Soup, labels_from_masks, mask_soup

__all__ = ["run_compact", "recolor_merge", "build_graph", "coarsen", "greedy_merge", "labels_from_masks",
           "mask_soup", "structural_budget", "split_budget", "adaptive_split", "detail_prob", "detail_centres", "error_centres", "detail_rounds", "MaskGraph", "MergeResult", "Soup"]

Progress = Callable[[str, float, str], None]
SLIVER_AREA = 2.0   # masks under this many times the hair area (OptimizeConfig.hair_area of the canvas) ...
SLIVER_WIDTH = 1.0  # ... or thinner than this many px on average join a neighbour before the merge
Merge = Callable[..., MergeResult]  # (graph, budget, CompactConfig, seed, cancel, progress) -> MergeResult


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
    from ..optimize.losses import error_map
    from ..stages import saliency_map

    # the default merge remembers its rounds: the ladder's merges of one graph share their first
    merge = partial(recolor_merge, memo={}) if merge is None else merge
    if not callable(merge):
        raise ValueError(f"merge must be a clusterer function (graph, budget, config, seed, ...), got {merge!r}")
    prog = prog or (lambda *a: None)
    rgb, alpha = np.asarray(rgb, np.float32), np.asarray(alpha, np.float32)
    h, w = alpha.shape
    if rgb.shape != (h, w, 3):
        raise ValueError(f"rgb must have shape ({h}, {w}, 3) like alpha, got {rgb.shape}")
    valid = alpha > 0.5
    prog("segment", 0.0, "building the mask soup")
    sal = saliency_map(rgb, cfg)
    check_cancel(cancel)
    if valid.any():
        soup = soup or mask_soup(rgb, valid, cfg, source, lambda f, m: prog("segment", 0.9 * f, m), cancel)
    target_c = torch.from_numpy(rgb * alpha[..., None]).to(dev)
    target_a = torch.from_numpy(alpha).to(dev)
    weight = None if sal is None else torch.from_numpy(pixel_weights(sal, valid.shape)[0]).float().to(dev)

    def ladder(s_map, share: tuple[float, float]):
        # every rung's whole run (.ladder), the best by the error that run minimises kept
        steps = rungs(cfg.paths) if cfg.compact.budget_ladder else [cfg.paths]
        cut = share[0] + (share[1] - share[0]) * np.cumsum([0.0] + [float(b) for b in steps]) / float(sum(steps))
        w_run = None if s_map is None else weight
        best, shared = None, {}
        for i, b in enumerate(steps):
            def sub(stage, f, m, lo=cut[i], hi=cut[i + 1], b=b):
                prog(stage, f if stage == "segment" else lo + (hi - lo) * f, m if len(steps) == 1 else f"{b} paths: {m}")

            out = _run_budget(rgb, alpha, replace(cfg, paths=b), dev, sub, cancel, merge, soup, s_map, shared, steps)
            judged = out[7].pop("judged", None)  # the run judged its result already (the same error)
            if len(steps) == 1:  # nothing to choose from
                return out, b
            err = written_error(out[0], out[1], target_c, target_a, w_run) if judged is None else judged
            if best is None or err < best[0]:
                best = (err, out, b)
        return best[1], best[2]

    if sal is None:
        out, rung = ladder(None, (0.0, 1.0))
    else:
        # with a map: its own run, and the run without it fitted on with the map's weights (the map
        # buys fidelity where it marks, starting from the best the picture gets without it). Kept:
        # the one with the least error where the map marks (error weighted by the map itself), so
        # never worse there than the run without the map; of equals, the least weighted error
        out, rung = ladder(sal, (0.0, 0.45))
        plain, plain_rung = ladder(None, (0.45, 0.9))
        cands = [(out, rung), (plain, plain_rung)]
        if plain[0]:
            pts, colors, n_s = plain[0], plain[1], plain[2]
            pts, colors = refit(pts, colors, n_s, target_c, target_a, weight, soup.semantic if soup else None, cfg,
                                lambda st, f, m: prog(st, 0.9 + 0.1 * f, m), cancel)
            pts, colors, n_s, gaps, _ = _finish(pts, colors, n_s, alpha, target_c, weight, cfg, plain[7]["faint"])
            cands.append(((pts, colors, n_s) + tuple(plain[3:7]) + (dict(plain[7], uncovered=gaps),), plain_rung))
        marked = torch.from_numpy(np.asarray(sal, np.float32)).to(dev)

        def errors(o):  # (error where the map marks, weighted error) of the SVG as resvg shows it
            if not o[0]:
                return math.inf, math.inf
            e = error_map(*written_render(o[0], o[1], w, h), target_c, target_a)
            return float((e * marked).mean()), float((e * weight).mean())

        errs = [errors(c[0]) for c in cands]
        out, rung = cands[min(range(len(cands)), key=lambda i: errs[i])]
    pts, colors, n_s, target_c, target_a, notes, res, counts = out
    counts["rung"] = rung
    return _assemble(pts, colors, n_s, target_c, target_a, cfg, notes, res, counts)


def _graph(soup: Soup, rgb: np.ndarray, sal: np.ndarray | None, loose: bool, cfg: VectorizeConfig):
    """The mask graph the merge starts from (firm boundaries off where ``loose``), merged greedily
    down to ``max_masks`` and with the masks too small or thin for a path joined to a neighbour:
    (graph, atom -> node mapping, atoms in the soup's graph)."""
    h, w = soup.atoms.shape
    graph = build_graph(soup.atoms, rgb, sal, soup.strength)
    if loose:
        graph.firm = math.inf
    atoms_n = graph.n
    pre = np.arange(graph.n)
    if graph.n > cfg.compact.max_masks:
        pre = greedy_merge(graph, cfg.compact.max_masks)
        graph = coarsen(graph, pre)
    # masks too small or thin to make a path that is not a hair join a neighbour first
    fold = absorb_slivers(graph, SLIVER_AREA * cfg.optimize.hair_area * h * w, SLIVER_WIDTH)
    if int(fold.max()) + 1 < graph.n:
        pre = fold[pre]
        graph = coarsen(graph, fold)
    return graph, pre, atoms_n


def _run_budget(rgb, alpha, cfg: VectorizeConfig, dev, prog: Progress, cancel, merge: Merge, soup: Soup | None,
                sal: np.ndarray | None, shared: dict | None = None, ladder: list[int] | None = None):
    """One run of compact mode at ``cfg.paths`` (no ladder): (points, colours, structural count, target
    colour, target alpha, notes, merge result, counts for :func:`_assemble`). ``shared``: what the
    runs of one ladder (its budgets ``ladder``) share, filled by the first that needs it: the mask
    graph, the adaptive split of every rung, and the structure (merge, outlines, colours) of every
    split (the same as each run's own: rungs with the same split have the same structure)."""
    h, w = alpha.shape
    cc = cfg.compact
    valid = alpha > 0.5
    shared = {} if shared is None else shared
    # the faint translucent areas (.faint) get their paths out of the budget of every rung
    if "faint" not in shared:
        shared["faint"] = faint_areas(alpha, float(cc.detail_radius))
    faint = faint_taken(shared["faint"], cfg.paths)
    if faint:
        ladder = [b - _faint_count(shared["faint"], b) for b in (ladder or [cfg.paths])]
        cfg = replace(cfg, paths=cfg.paths - _faint_count(shared["faint"], cfg.paths))
    # a fixed ratio splits the budget now; the adaptive split (ratio None) once the mask graph exists
    n_struct = (structural_budget(cfg.paths, cc.structural_ratio) if cc.structural_ratio is not None
                else cfg.paths) if valid.any() else 0
    # the colour-fit weight (graph.pixel_weights: MSE_FLOOR outside the salient part, 1 on it), which
    # the split's prediction and the path stage use as the merge does
    fit_weight = pixel_weights(sal, valid.shape)[0]
    res, region_labels, semantic, atoms_n, regions_n, notes, masks_n = None, None, None, 0, 0, [], 0
    split_pred: dict = {}
    region_psnr = 0.0
    if valid.any():
        semantic, notes, masks_n = soup.semantic, list(soup.notes), soup.masks
    if n_struct > 0:
        # the segmenter's masks do not fit the budget (photographs): its boundaries only weigh
        # (strength), none is kept at any cost
        loose = int(soup.semantic.max()) + 1 > n_struct
        key = ("graph", loose)
        if key not in shared:  # the same for every budget of the ladder with the same ``loose``
            shared[key] = _graph(soup, rgb, sal, loose, cfg)
        graph, pre, atoms_n = shared[key]
        graph = replace(graph)  # the merge's own copy (its ``firm`` may change below)
        if cc.structural_ratio is None:
            key = ("split", loose)
            if key not in shared:  # every rung with this graph at once (.budget.adaptive_splits)
                same = [b for b in (ladder or [cfg.paths]) if (int(soup.semantic.max()) + 1 > b) == loose]
                shared[key] = adaptive_splits(graph, np.where(soup.atoms >= 0, pre[np.maximum(soup.atoms, 0)], -1),
                                              rgb, fit_weight, sorted(set(same) | {cfg.paths}),
                                              float(cc.detail_radius))
            n_struct, split_pred = shared[key][cfg.paths]
            if int(soup.semantic.max()) + 1 > n_struct:
                graph.firm = math.inf
        key = ("structure", loose, n_struct)
        if key not in shared:  # rungs with the same split merge the same graph to the same regions
            prog("segment", 1.0, f"{masks_n} masks in the soup, {atoms_n} atoms, {len(graph.edges)} adjacent pairs")
            shared[key] = _structure(graph, pre, n_struct, soup, rgb, valid, sal, cfg, dev, merge, cancel, prog,
                                     shared.setdefault("outlines", {}))
        res, region_labels, regions_n, region_psnr, pts, colors = shared[key]
        pts, colors = list(pts), colors.clone()
    check_cancel(cancel)

    # structural paths, then detail circles in rounds, everything fitted to the image (.paths)
    target_rgb = torch.from_numpy(rgb).to(dev)
    target_a = torch.from_numpy(alpha).to(dev)
    target_c = target_rgb * target_a.unsqueeze(-1)
    if region_labels is None:
        pts, colors = [], torch.zeros(0, 4, device=dev)
    n_s = len(pts)
    # the path stage minimises the error the split predicted (None without a map: uniform)
    weight = None if sal is None else torch.from_numpy(fit_weight).float().to(dev)
    pts, colors = detail_rounds(pts, colors, target_c, target_a, weight, sal, semantic, rgb, cfg, prog, cancel)
    pts, colors, n_s, gaps_left, covered = _finish(pts, colors, n_s, alpha, target_c, weight, cfg)
    judged = None  # the error of the SVG as written (.ladder.written_error, ``weight``) where judged here
    if covered and not valid.all():
        # the back path now also spans what was bare, outlined from the pixels: where that outline is
        # the picture's edge against transparency it is fitted like every other edge (one more round
        # of the path stage), kept where the SVG as written comes out closer (on an opaque picture the
        # outline is the canvas's edge, and nothing there needs fitting)
        again = refit(pts, colors, n_s, target_c, target_a, weight, semantic, cfg, prog, cancel)
        again = _finish(*again, n_s, alpha, target_c, weight, cfg)
        if again[3] <= gaps_left:
            judged = (written_error(again[0], again[1], target_c, target_a, weight),
                      written_error(pts, colors, target_c, target_a, weight))
            if judged[0] < judged[1]:
                pts, colors, n_s, gaps_left = again[:4]
            judged = min(judged)
    n_faint = 0
    if faint:  # behind everything: the opaque paths in front hide them where the picture is opaque
        f_pts, f_cols = faint_paths(faint, target_c, target_a, cc.contour_epsilon)
        pts, colors, n_s, n_faint = f_pts + list(pts), torch.cat([f_cols, colors], 0), n_s + len(f_pts), len(f_pts)
        judged = None  # the ladder judges the result with them
    return pts, colors, n_s, target_c, target_a, notes, res, dict(
        masks=masks_n, atoms=atoms_n, regions=regions_n, region_psnr=region_psnr, split=n_struct,
        uncovered=gaps_left, judged=judged, faint=n_faint)


def _faint_count(areas: list, budget: int) -> int:
    """How many paths the faint areas (.faint.faint_areas) take in a run at ``budget``."""
    return sum(len(a.masks) for a in faint_taken(areas, budget))


def _structure(graph, pre: np.ndarray, n_struct: int, soup: Soup, rgb: np.ndarray, valid: np.ndarray,
               sal: np.ndarray | None, cfg: VectorizeConfig, dev, merge: Merge, cancel, prog: Progress,
               outlines: dict | None = None):
    """The structure of a run: the mask graph merged to ``n_struct`` regions and their paths with
    their colours fitted (``outlines``: the region outlines already traced, .details.region_paths). Returns (merge result, region labels (H, W), regions, PSNR of the regions
    filled flat, points, (n, 4) colours)."""
    from ..metrics import psnr
    from ..optimize.structure import fit_colors

    h, w = valid.shape
    cc = cfg.compact
    res = merge(graph, n_struct, cc, cfg.seed, cancel, prog)
    final = res.mapping[pre]
    region_labels = np.where(soup.atoms >= 0, final[np.maximum(soup.atoms, 0)], -1).astype(np.int32)
    regions_n = res.regions
    flat = region_colors(region_labels, rgb, regions_n)[np.maximum(region_labels, 0)]
    region_psnr = psnr(np.where(valid[..., None], flat, rgb), rgb)
    prog("recolor", 1.0, f"{regions_n} regions after {res.rounds} rounds")
    pts, ids = region_paths(region_labels, regions_n, cc.contour_epsilon, cc.underlap, cc.holes, sal, outlines)
    pts = [p.to(dev) for p in pts]
    colors = torch.zeros(0, 4, device=dev)
    if pts:
        fallback = torch.from_numpy(region_colors(region_labels, rgb, regions_n)[ids]).float()
        cols = fit_colors(pts, torch.ones(len(pts)), torch.from_numpy(rgb).to(dev), fallback, w, h)
        colors = torch.cat([cols, torch.ones(len(pts), 1, device=dev)], 1)
    return res, region_labels, regions_n, region_psnr, pts, colors


def _finish(pts, colors, n_s: int, alpha: np.ndarray, target_c: torch.Tensor, weight: torch.Tensor | None,
            cfg: VectorizeConfig, n_faint: int = 0):
    """The path stage's result made fit to write (.cover): no slit where a bridge to a hole opened
    (geometry.bridges), no hairs, no opaque pixel left bare, no path a little under opaque (its alpha
    set to 1), the colours solved again where a path changed. The first ``n_faint`` paths (the faint
    areas', .faint) stay as they are and cover nothing. Returns (points, colours, structural count,
    pixels left bare, whether a path was re-contoured to cover bare pixels)."""
    from scipy import ndimage as ndi

    from ..geometry.bridges import closed_slits

    h, w = alpha.shape
    faint, faint_c = list(pts[:n_faint]), colors[:n_faint]
    pts, colors = list(pts[n_faint:]), colors[n_faint:]
    n_s = min(max(n_s - n_faint, 0), len(pts))
    # a bridge to a hole that the path stage opened into a slit would show the page: closed again
    pts = closed_slits(pts)
    pts, colors, n_s = drop_hairs(pts, colors, n_s, w, h, cfg.optimize.hair_area, cfg.optimize.hair_width)
    before = [p for p in pts]
    # fully opaque pixels away from the picture's own edge (an outline there is simplified) show no seam
    opaque = ndi.binary_erosion(alpha >= 1.0 - 0.5 / 255, np.ones((3, 3), bool), border_value=1)
    pts, gaps_left = cover_gaps(pts, n_s, alpha > 0.5, cfg.compact.contour_epsilon, opaque, alpha)
    covered = bool(pts) and any(a is not b for a, b in zip(pts, before))
    # a path the fit left a little under opaque (0.97) is opaque: over the input's opaque pixels it
    # would let the page show through everywhere it lies, a faint seam as large as the path
    nearly = (colors[:, 3] >= OPAQUE_ALPHA) & (colors[:, 3] < 1.0)
    snapped = bool(nearly.any())
    if snapped:
        colors = colors.clone()
        colors[nearly, 3] = 1.0
    pts, colors, n_s = faint + pts, torch.cat([faint_c, colors], 0), n_s + len(faint)
    if covered or snapped:
        from ..optimize.structure import solve_colors

        colors = torch.cat([solve_colors(pts, colors[:, 3], target_c, colors, w, h, weight), colors[:, 3:]], 1)
    return pts, colors, n_s, gaps_left, covered


def _assemble(pts, colors, n_s, target_c, target_a, cfg, notes, res, counts):
    """The scene (a "Structure" layer of merged regions at the back, a "Details" layer in front) and
    its metrics."""
    from ..metrics import scene_metrics
    from ..scene import Layer, Path, Scene

    h, w = target_a.shape
    scene = Scene(w, h)
    struct = [Path(pts[i].cpu(), colors[i].cpu()) for i in range(n_s)]
    details = [Path(pts[i].cpu(), colors[i].cpu()) for i in range(n_s, len(pts))]
    if struct:
        n_faint = counts.get("faint", 0)
        shadows = f", {n_faint} soft-shadow path{'s' if n_faint != 1 else ''}" if n_faint else ""
        scene.layers.append(Layer(f"Structure ({len(struct) - n_faint} merged regions{shadows})", struct, "layer1"))
    if details:
        scene.layers.append(Layer("Details", details, f"layer{len(scene.layers) + 1}"))
    metrics = scene_metrics(pts, colors, target_c, target_a)
    atoms_n, regions_n = counts["atoms"], counts["regions"]
    metrics.update(paths=float(scene.num_paths), layers=float(len(scene.layers)), masks=float(counts["masks"]),
                   atoms=float(atoms_n), regions=float(regions_n), merges=float(max(atoms_n - regions_n, 0)),
                   forced_merges=float(res.forced if res else 0), rounds=float(res.rounds if res else 0),
                   cluster_seconds=float(res.seconds if res else 0.0), structural=float(len(struct)),
                   details=float(len(details)), budget=float(cfg.paths),
                   structural_budget=float(counts.get("split", 0)), uncovered=float(counts.get("uncovered", 0)),
                   rung=float(counts.get("rung", cfg.paths)))
    if res is not None:
        metrics["region_psnr"] = float(counts["region_psnr"])
    metrics["_notes"] = notes  # popped by pipeline.run into VectorizeResult.notes
    return scene, metrics
