"""Compact mode's path stage: the merged regions' paths and detail circles, fitted to the image.

The detail budget (the paths left after the structure) is spent in rounds (``CompactConfig.path_rounds``,
``path_steps`` steps in all). Every round renders the scene, places its share of new circles, then
moves every path and colour against the image with the project's optimiser loop
(:func:`lvss.optimize.loop.adam_loop`); invisible details are pruned and the best state of all rounds (colours solved by least squares) is kept.
The step size follows one schedule over the whole stage (held for ``STAGE_HOLD`` of the steps, then
decaying): a round goes on where the previous one stopped. Restarting every round at the full step
size kicked the fitted structure out of place each time (the error doubled within ten steps and the
round's few steps went on winning it back), so the outcome depended on how many circles each round
brought: on clip art a larger budget (more regions, more circles per round) often ended worse.
Each round's circles are placed two ways (``CompactConfig.error_share``): where a circle would cover
the most error, times saliency (:func:`.details.error_centres`), and sampled by saliency, balanced
over the segmenter's masks (:func:`.details.detail_prob`). Every circle stays inside the segmenter
mask it starts in (:class:`.details.Confine`), so a detail is part of one semantic piece.
"""
from __future__ import annotations

import math
import threading
from typing import Callable

import numpy as np
import torch

from ..config import VectorizeConfig
from ..optimize.loop import adam_loop, hold_then_decay, visible_kept
from ..types import check_cancel
from ..optimize.losses import error_map
from .cover import as_written
from .details import Confine, detail_centres, detail_prob, error_centres, mask_depth

__all__ = ["detail_rounds", "optimise_paths", "circle_paths", "CONFINE_TOL"]

CONFINE_TOL = 0.0  # px a detail path's control point may stray outside its mask
STAGE_HOLD = 0.5   # the path stage's step size: full for this share of its steps (all rounds together),
#                    then decaying to a tenth (lvss.optimize.loop.hold_then_decay)

Progress = Callable[[str, float, str], None]


def circle_paths(rgb: np.ndarray, centres: np.ndarray, depth: np.ndarray | None, rad: float, dev):
    """A circle of radius ``rad`` per centre (shrunk where its mask is thinner, so that it starts inside
    the mask), coloured by the image's mean around it. Returns (points list, (n, 4) colours)."""
    from ..scene import circle_path

    h, w = rgb.shape[:2]
    pts, cols = [], []
    for x, y in np.asarray(centres).tolist():
        r = rad if depth is None else float(min(rad, max(1.0, depth[int(y), int(x)])))
        pts.append(circle_path(x, y, r).points.to(dev))
        x0, x1 = int(max(0, x - rad)), int(min(w, x + rad + 1))
        y0, y1 = int(max(0, y - rad)), int(min(h, y + rad + 1))
        cols.append([*rgb[y0:y1, x0:x1].reshape(-1, 3).mean(0).tolist(), 1.0])
    return pts, torch.tensor(cols, dtype=torch.float32, device=dev).reshape(-1, 4)


def _centres(err: np.ndarray, prior: np.ndarray, sal, alpha: np.ndarray, semantic, k: int, cfg: VectorizeConfig,
             r: int, taken: list | None = None) -> np.ndarray:
    """This round's k circle centres: round(k · error_share) at the error, the rest by saliency (not
    within two radii of those). With a saliency map, the sampled ones also keep two radii from each
    other and from the details already placed (``taken``): a small marked area gets the circles it
    holds, not a pile of them (the budget it cannot hold stays unspent)."""
    cc = cfg.compact
    rad = float(cc.detail_radius)
    c = error_centres(err, prior, int(round(k * cc.error_share)), rad)
    if k > len(c):
        p = detail_prob(sal, alpha, semantic, rad)
        for x, y in c.tolist():
            p[max(0, int(y - 2 * rad)):int(y + 2 * rad) + 1, max(0, int(x - 2 * rad)):int(x + 2 * rad) + 1] = 0.0
        if sal is not None:
            yy, xx = np.mgrid[0:p.shape[0], 0:p.shape[1]] + 0.5
            for x, y in taken or []:
                y0, y1 = max(0, int(y - 2 * rad)), int(y + 2 * rad) + 1
                x0, x1 = max(0, int(x - 2 * rad)), int(x + 2 * rad) + 1
                p[y0:y1, x0:x1][(yy[y0:y1, x0:x1] - y) ** 2 + (xx[y0:y1, x0:x1] - x) ** 2 < (2 * rad) ** 2] = 0.0
        # with a saliency map, the marked part gets the circles it holds two radii apart, not a pile
        c = np.concatenate([c, detail_centres(p, k - len(c), cfg.seed + r, 2 * rad if sal is not None else 0.0)], 0)
    return c


def detail_rounds(pts: list[torch.Tensor], colors: torch.Tensor, target_c: torch.Tensor, target_a: torch.Tensor,
                  weight: torch.Tensor | None, sal: np.ndarray | None, semantic: np.ndarray | None, rgb: np.ndarray,
                  cfg: VectorizeConfig, prog: Progress, cancel: threading.Event | None = None):
    """Add detail circles to the structural paths ``pts`` (kept first, in order) up to ``cfg.paths``
    paths and fit everything to the image (see the module docstring). target_c (H, W, 3)
    premultiplied, target_a (H, W); weight: the loss's per-pixel weight (None = uniform); sal: the
    saliency map (None = uniform); semantic: the segmenter's partition (H, W), -1 outside. Returns
    (points, (N, 4) colours)."""
    from ..optimize.structure import solve_colors, visible_area
    from ..render.torch_raster import render_torch

    h, w = target_a.shape
    dev = target_a.device
    oc, cc = cfg.optimize, cfg.compact
    n_s = len(pts)
    rounds = max(1, cc.path_rounds)
    total = cc.path_steps
    per = [total // rounds + (1 if r < total % rounds else 0) for r in range(rounds)]
    rad = float(cc.detail_radius)
    seeds: list[tuple[float, float]] = []  # each detail's start centre: the mask it stays in
    depth = mask_depth(semantic) if semantic is not None else None
    alpha = target_a.cpu().numpy()
    # where an error-placed circle may start: inside its mask, deep enough, in proportion to saliency
    # (a user mask keeps every detail on it); no area balance
    prior = detail_prob(sal, (alpha > 0.5).astype(np.float64), semantic, rad, 0.0)
    pts, best, done = list(pts), None, 0

    def solved(p, c):
        return torch.cat([solve_colors(p, c[:, 3], target_c, c, w, h, weight), c[:, 3:]], 1)

    def error(p, c):
        with torch.no_grad():
            if not p:
                C, A = torch.zeros_like(target_c), torch.zeros_like(target_a)
            else:
                C, A = render_torch(p, c, w, h)
            return error_map(C, A, target_c, target_a, weight)

    for r in range(rounds):
        check_cancel(cancel)
        free = cfg.paths - len(pts)
        k = int(math.ceil(free / (rounds - r))) if free > 0 else 0
        if pts:
            colors = solved(pts, colors)
        fresh = 0  # circles this round adds (the last paths)
        if k:
            c = _centres(error(pts, colors).cpu().numpy(), prior, sal, alpha, semantic, k, cfg, r, seeds)
            new_p, new_c = circle_paths(rgb, c, depth, rad, dev)
            if new_p:
                fresh = len(new_p)
                pts = pts + new_p
                colors = torch.cat([colors, new_c], 0)
                seeds += [tuple(map(float, q)) for q in c]
                colors = solved(pts, colors)
        confine = (Confine(semantic, np.asarray(seeds, np.float32).reshape(-1, 2), int(math.ceil(2 * rad)) + 2,
                           CONFINE_TOL, dev) if semantic is not None and seeds else None)
        pts, colors = optimise_paths(pts, colors, target_c, target_a, weight, cfg, prog, cancel, confine, n_s,
                                     per[r], done, total, fresh)
        done += per[r]
        pts = as_written(pts, w, h)[0]  # every state judged below is the one the SVG will show
        if len(pts) > n_s:  # details that no longer show go (and their seeds with them)
            keep = visible_kept(visible_area(pts, colors, w, h), n_s, oc.prune_area)
            seeds = [seeds[i - n_s] for i in keep[n_s:]]
            pts, colors = [pts[i] for i in keep], colors[keep]
        if pts:
            sc = solved(pts, colors)
            loss = float(error(pts, sc).mean())
            if best is None or loss < best[0]:
                best = (loss, list(pts), sc)
    if best is None:
        return pts, colors
    return best[1], best[2]


def optimise_paths(points, colors, target_c, target_a, weight, cfg: VectorizeConfig, prog: Progress,
                   cancel, confine: Confine | None, n_fixed: int, iters: int, offset: int = 0,
                   total: int | None = None, fresh: int = 0):
    """Every path's points and colour against the image (weighted MSE) for ``iters`` steps of the
    project's optimiser loop; paths from index ``n_fixed`` on are kept in their masks by ``confine``.
    The structure's paths start on their regions' contours and move at the polish's step size
    (``polish_lr``), the circles at refinement's (``point_lr``). These are steps ``offset`` to
    ``offset + iters`` of a stage of ``total`` (progress, and one step-size schedule over the whole
    stage, :data:`STAGE_HOLD`); the last ``fresh`` paths are this round's new circles, which start at
    the full step size and follow the stage's decay from there."""
    from ..optimize.losses import image_loss
    from ..optimize.stopping import Plateau
    from ..render.torch_raster import render_torch

    h, w = target_a.shape
    oc = cfg.optimize
    total = iters if total is None else total
    pts = [p.detach().clone().requires_grad_(True) for p in points]
    cols = colors.detach().clone().requires_grad_(True)
    if confine is not None:
        confine(pts[n_fixed:])
    if iters <= 0 or not pts:
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
            prog("detail", (offset + it + 1) / total, f"path step {offset + it + 1}/{total}, loss {value:.4f}")

    # one schedule over the stage: a later round goes on where the previous one stopped instead of
    # kicking the fitted paths at the full step size again; only its new circles start there
    decay = hold_then_decay(STAGE_HOLD)
    old = len(pts) - max(0, min(int(fresh), len(pts) - n_fixed))
    groups = [(pts[:n_fixed], oc.polish_lr), (pts[n_fixed:old], oc.point_lr),
              (pts[old:], oc.point_lr / decay(offset, total, 1.0)), ([cols], oc.color_lr)]
    from ..geometry.guard import SimpleGuard

    guard = SimpleGuard([(p, [p.shape[0]]) for p in pts]) if oc.simple_paths else None
    adam_loop([g for g in groups if g[0]], loss_fn, iters, schedule=lambda it, n, lr: decay(offset + it, total, lr),
              after_step=project, callback=report,
              stop=Plateau(oc.stop_tol, oc.stop_patience), cancel=cancel, guard=guard)
    return [p.detach() for p in pts], cols.detach()


def refit(pts: list[torch.Tensor], colors: torch.Tensor, n_s: int, target_c: torch.Tensor, target_a: torch.Tensor,
          weight: torch.Tensor | None, semantic: np.ndarray | None, cfg: VectorizeConfig, prog: Progress,
          cancel: threading.Event | None = None):
    """One more round of the path stage on a finished result (structure first, ``n_s`` paths), against
    the error weighted by ``weight``: the steps of the last round of the stage's schedule (the decayed
    step size), every detail kept in the segmenter mask its centre lies in, ending on the paths as
    written. Returns (points, colours) with the colours solved for the weighted error."""
    from ..optimize.structure import solve_colors

    h, w = target_a.shape
    cc = cfg.compact
    total = cc.path_steps
    iters = total // max(1, cc.path_rounds)
    dev = target_a.device
    centres = np.asarray([p.detach().cpu().numpy().mean(0) for p in pts[n_s:]], np.float32).reshape(-1, 2)
    centres = np.clip(centres, 0.0, [w - 1e-3, h - 1e-3])
    confine = (Confine(semantic, centres, int(math.ceil(2 * float(cc.detail_radius))) + 2, CONFINE_TOL, dev)
               if semantic is not None and len(centres) else None)
    pts, colors = optimise_paths(pts, colors, target_c, target_a, weight, cfg, prog, cancel, confine, n_s, iters,
                                 total - iters, total, 0)
    pts = as_written(pts, w, h)[0]
    colors = torch.cat([solve_colors(pts, colors[:, 3], target_c, colors, w, h, weight), colors[:, 3:]], 1)
    return pts, colors
