"""Stage II (refinement): detail paths where the error is largest, optimised against the image.

Rounds: find the K largest connected regions of (saliency-weighted) error, start one path in each
(from the region's contour), then optimise point positions of the detail paths and the colours of all
paths with Adam on the image MSE. The rounds climb a ladder of path counts (16, 32, 64, ..., then the
budget), a few rounds per rung, so the rounds of a smaller budget are the first rounds of a larger one;
the best state is kept, and a final polish moves every path at full size. Paths whose visible area
falls under a threshold are pruned, and a detail path that nearly repeats another (same colour, mostly the same pixels) is merged into it.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..config import OptimizeConfig
from ..geometry.guard import SimpleGuard
from ..geometry.simple import made_simple
from ..geometry.repair import hair_mask
from ..render.torch_raster import PackedPaths, Pairs, composite_pairs, render_torch, scene_pairs
from ..scene import FAINT_ALPHA, circle_path
from .losses import error_map, image_loss
from .stopping import Plateau
from ..types import check_cancel
from .loop import adam_loop, visible_kept
from .structure import solve_colors
from .subdivide import SPLIT_AT, split_where_wrong

ERROR_THRESHOLD = 0.02  # per-pixel squared error (colour + alpha) that counts as "wrong"
PREVIEW_EVERY = 0.5     # seconds: refine's preview_callback is called at most this often


class PreviewThrottle:
    """Hands the optimiser's current state to ``callback(points, colors)`` at most once every ``every``
    seconds (wall clock): :meth:`due` is a clock read, so a loop asks it every step and copies its
    tensors only when a preview is due. The callback gets detached clones (points: list of (S, 2)
    tensors in the caller's coordinates, colors: (N, 4) straight RGBA), safe to keep and to read
    from another thread. ``start``: the time the first call may come (default: at once)."""

    def __init__(self, callback: Callable[[list, torch.Tensor], None] | None, every: float = PREVIEW_EVERY,
                 start: float | None = None):
        self.callback, self.every = callback, every
        self.last = -math.inf if start is None else start - every

    def due(self) -> bool:
        return self.callback is not None and time.monotonic() - self.last >= self.every

    def __call__(self, points, colors: torch.Tensor, scale: torch.Tensor | None = None) -> None:
        """Send a preview when one is due; ``scale``: the points are at that (x, y) scale of the
        caller's coordinates (a reduced-size loop) and are divided by it."""
        if not self.due():
            return
        self.last = time.monotonic()
        with torch.no_grad():
            pts = [(p.detach() / scale if scale is not None else p.detach().clone()) for p in points]
            self.callback(pts, colors.detach().clone())


@dataclass
class RefineState:
    """Paths back to front: the frozen structure first, then detail paths."""

    points: list[torch.Tensor]
    colors: torch.Tensor                 # (N, 4) straight RGBA
    n_fixed: int                         # the first n_fixed paths keep their shape
    history: list[float] = field(default_factory=list)
    rounds: int = 0                      # rounds run (planned ones plus refills)
    stop_reason: str = ""                # why no more paths were added


def error_regions(err: np.ndarray, k: int, threshold: float = ERROR_THRESHOLD,
                  min_area: int = 4) -> list[np.ndarray]:
    """The k connected regions of ``err`` (H, W) above ``threshold`` with the largest total error,
    as (H, W) bool masks, largest first."""
    if k <= 0:
        return []
    from ..layering import label_mask

    lab = label_mask(err > threshold, connectivity=2)
    if lab.max() == 0:
        return []
    sums = np.bincount(lab.ravel(), weights=err.ravel())
    areas = np.bincount(lab.ravel())
    sums[0] = 0
    order = [i for i in np.argsort(-sums, kind="stable") if i > 0 and areas[i] >= min_area and sums[i] > 0]
    return [lab == i for i in order[:k]]


def _region_path(mask: np.ndarray, epsilon: float) -> torch.Tensor:
    from ..layering import mask_to_path

    p = mask_to_path(mask, epsilon, max_segments=16)
    q = made_simple(p.points) if p is not None else None
    if q is not None:
        return q
    ys, xs = np.nonzero(mask)
    r = max(1.0, math.sqrt(len(ys) / math.pi))
    return circle_path(float(xs.mean()) + 0.5, float(ys.mean()) + 0.5, r).points


def _render(state: RefineState, w: int, h: int):
    return render_torch(state.points, state.colors, w, h)


def _pairs(state: RefineState, w: int, h: int) -> Pairs:
    return scene_pairs(state.points, state.colors[:, 3], w, h)


def _prune(state: RefineState, pairs: Pairs, min_area: float, cfg: OptimizeConfig | None = None,
           w: int = 0, h: int = 0) -> list[int]:
    """Drop detail paths that show fewer than ``min_area`` pixels (``pairs``: the state's), and, with
    ``cfg``, detail paths that are hairs (:func:`lvss.geometry.repair.hair_mask` on the w x h canvas);
    returns the indices, among the paths before, of those kept."""
    n = len(state.points)
    keep = visible_kept(pairs.visible_area(n), state.n_fixed, min_area)
    if cfg is not None and cfg.hair_area + cfg.hair_width > 0:
        hair = hair_mask(state.points[state.n_fixed:], w, h, cfg.hair_area, cfg.hair_width)
        keep = [i for i in keep if i < state.n_fixed or not hair[i - state.n_fixed]]
    if len(keep) < n:
        state.points = [state.points[i] for i in keep]
        state.colors = state.colors[keep]
    return keep


def _merge_redundant(state: RefineState, w: int, h: int, color_tol: float = 0.04, outside: float = 0.1,
                     covered: list[torch.Tensor] | None = None) -> int:
    """Merge detail paths that repeat one in front of them: a detail path is removed when a later
    detail path of nearly the same colour covers all but ``outside`` of the pixels it covers, so that
    removing it changes at most that share of its pixels. (Overlapping bounding boxes alone say
    nothing about the shapes: outline pieces of one colour share boxes and are not redundant.)
    ``covered``: every path's covered pixels (:func:`covered_pixels`) when the caller has them."""
    n = len(state.points)
    if n - state.n_fixed < 2:
        return 0
    from ..render.torch_raster import covered_pixels

    pix = covered if covered is not None else covered_pixels(state.points, w, h)
    boxes = torch.stack([torch.cat([p.detach().min(0).values, p.detach().max(0).values]) for p in state.points])
    drop: set[int] = set()
    for i in range(n - 2, state.n_fixed - 1, -1):   # front to back: covers are final when used
        if len(pix[i]) == 0:
            continue
        for j in range(i + 1, n):
            if j in drop or float((state.colors[i, :3] - state.colors[j, :3]).abs().max()) > color_tol:
                continue
            if bool(((boxes[i, 2:] < boxes[j, :2]) | (boxes[j, 2:] < boxes[i, :2])).any()):
                continue
            shown = len(pix[i]) - int(torch.isin(pix[i], pix[j]).sum())
            if shown <= outside * len(pix[i]):
                drop.add(i)
                break
    if drop:
        keep = [k for k in range(n) if k not in drop]
        state.points = [state.points[k] for k in keep]
        state.colors = state.colors[keep]
    return len(drop)


def candidate_matrix(candidates: np.ndarray):
    """(K, H*W) sparse 0/1 matrix of candidate masks (K, H, W): most segments are small, and the
    error each holds is then one sparse product instead of K dense passes over the image."""
    import scipy.sparse as sp

    return sp.csr_matrix(candidates.reshape(candidates.shape[0], -1), dtype=np.float64)


def pick_candidates(err: np.ndarray, candidates: np.ndarray, used: np.ndarray, k: int,
                    threshold: float = ERROR_THRESHOLD, flat=None, min_area: int = 4,
                    target: np.ndarray | None = None) -> list[int]:
    """Indices of the k unused candidate masks (K, H, W) holding the most error above ``threshold``
    (total over the mask), largest first; masks whose mean error is under the threshold are skipped.
    ``flat``: :func:`candidate_matrix` of ``candidates`` when the caller keeps it. With ``target``
    (H, W, 3), the error a path of one flat colour can remove is what counts: a mask's total error
    less the target's own spread over it (a region that mixes colours, say a face with the strokes
    still missing on it, would get a muddy compromise colour)."""
    if k <= 0 or candidates.shape[0] == 0:
        return []
    if flat is None:
        flat = candidate_matrix(candidates)
    e = err.reshape(-1).astype(np.float64)
    total = np.asarray(flat @ e).ravel()
    area = np.asarray(flat.sum(1)).ravel()
    mean = total / np.maximum(area, 1)
    if target is not None:
        t = target.reshape(-1, 3).astype(np.float64)
        s1 = np.asarray(flat @ t)                                     # (K, 3) sums
        s2 = np.asarray(flat @ (t * t)).sum(1)                        # (K,) sums of squares
        spread = s2 - (s1 * s1).sum(1) / np.maximum(area, 1)
        total = total - spread
    total[used | (mean < threshold) | (area < min_area)] = -1.0
    order = [int(i) for i in np.argsort(-total, kind="stable")[:k] if total[i] > 0]
    return order


def _solid(mask: np.ndarray) -> bool:
    """Whether a region is more than a sliver: some pixel of it has all eight neighbours in it. A
    thinner region of error (a shape's edge a pixel off) is the polish's to fix by moving that edge;
    a path of its own there would be a hair."""
    from scipy.ndimage import binary_erosion

    return bool(binary_erosion(mask, np.ones((3, 3), bool)).any())


def _new_paths(err: np.ndarray, k: int, candidates: np.ndarray | None, used: np.ndarray | None,
               valid: np.ndarray, epsilon: float, flat=None, min_area: int = 4,
               target: np.ndarray | None = None) -> list[tuple[torch.Tensor, np.ndarray]]:
    """Up to k (points, mask) for new detail paths: first the segments (candidate masks) with the most
    error, then connected regions of error where no segment is left; none under ``min_area`` pixels."""
    out = []
    if candidates is not None and len(candidates):
        for i in pick_candidates(err, candidates, used, k, flat=flat, min_area=min_area, target=target):
            used[i] = True
            if _solid(candidates[i]):
                out.append((_region_path(candidates[i], epsilon), candidates[i]))
    if len(out) < k:
        for m in [m for m in error_regions(err * valid, 2 * k, min_area=min_area) if _solid(m)][:k - len(out)]:
            out.append((_region_path(m, epsilon), m))
    return out


def _scaled_targets(target_c: torch.Tensor, target_a: torch.Tensor, weight: torch.Tensor | None, s: float):
    """Targets (and weight) area-downsampled to scale ``s``; returns them and the new height, width."""
    h, w = target_a.shape
    hs, ws = max(1, round(h * s)), max(1, round(w * s))
    if (hs, ws) == (h, w):
        return target_c, target_a, weight, h, w
    f = torch.nn.functional.interpolate
    stack = torch.cat([target_c.permute(2, 0, 1), target_a[None]] + ([weight[None]] if weight is not None else []), 0)
    small = f(stack[None], size=(hs, ws), mode="area")[0]
    wgt = small[4] if weight is not None else None
    return small[:3].permute(1, 2, 0).contiguous(), small[3].contiguous(), wgt, hs, ws


LADDER_START = 16  # the budget ladder: 16, 32, 64, ... paths


def budget_stages(n: int, budget: int) -> list[int]:
    """The path counts refinement climbs through from ``n`` paths to ``budget``: every rung of the
    ladder 16, 32, 64, ... above ``n`` and below ``budget``, then ``budget``. The rounds that climb to
    a rung do not depend on the budget, so a larger budget retraces a smaller one's rounds before it
    goes on, and (the best state being kept) it cannot end with a higher error for the same start."""
    if budget <= n:
        return []
    out, t = [], LADDER_START
    while t < budget:
        if t > n:
            out.append(t)
        t *= 2
    return out + [budget]


def refine(state: RefineState, target_c: torch.Tensor, target_a: torch.Tensor, budget: int,
           cfg: OptimizeConfig, weight: torch.Tensor | None = None,
           step_callback: Callable[[int, int, float], None] | None = None,
           cancel: threading.Event | None = None, candidates: np.ndarray | None = None,
           polish_callback: Callable[[int, int, float], None] | None = None,
           preview_callback: Callable[[list, torch.Tensor], None] | None = None,
           before_polish: Callable[[RefineState], None] | None = None) -> RefineState:
    """Add and optimise detail paths until ``budget`` paths in all (never more), climbing the rungs
    of :func:`budget_stages` (``cfg.first_stage_rounds`` rounds for the first, ``cfg.refine_rounds``
    for each later one, ``cfg.refine_iters // cfg.refine_rounds`` steps a round, and on each rung up
    to ``cfg.refill_rounds`` rounds that spend what pruning freed), then the polish.

    target_c: (H, W, 3) premultiplied target colour; target_a (H, W) target alpha; weight (H, W)
    optional per-pixel importance (saliency) for both the error regions and the loss. candidates:
    optional (K, H, W) bool segments of the image; a new path starts from the contour of the segment
    holding the most error (colour-coherent regions), else from a connected region of error.
    Detail paths are opaque; their points and every path's RGB colour are optimised.
    ``step_callback(step, total, loss)`` follows the rounds' steps, ``polish_callback`` the polish's.
    ``preview_callback(points, colors)``: the current paths (in target pixel coordinates, back to front)
    and their colours while the rounds and the polish run, for a live preview: detached copies, at
    most every :data:`PREVIEW_EVERY` seconds (:class:`PreviewThrottle`; the first one that long after
    refinement starts), so it costs nothing when None and little otherwise.
    ``before_polish(state)``: changes the best state of the rounds in place (paths replaced or
    reordered) before the polish fits it; the changed state is what later results must beat.
    """
    h, w = target_a.shape
    dev = target_a.device
    per_stage = max(1, cfg.refine_rounds)
    stages = budget_stages(len(state.points), budget)
    n_iter = cfg.refine_iters // per_stage
    # the first stage gets more rounds: its paths go where the structure left the largest errors,
    # and a small budget, which has only this stage, still gets the steps it needs
    rounds_of = [max(per_stage, cfg.first_stage_rounds) if i == 0 else per_stage for i in range(len(stages))]
    iters_total = n_iter * (sum(rounds_of) + cfg.refill_rounds)
    step = 0
    previews = PreviewThrottle(preview_callback, start=time.monotonic())
    # where new paths may go: wherever the target shows, its faint translucent areas too (a soft
    # shadow, a glow), which get a path at their own mean alpha (below)
    valid = (target_a > FAINT_ALPHA).cpu().numpy()
    tc, ta = target_c.cpu().numpy(), target_a.cpu().numpy()   # new paths' starting colours
    used = np.zeros(len(candidates), bool) if candidates is not None else None
    flat = candidate_matrix(candidates) if candidates is not None and len(candidates) else None
    # the coverage pass of the state as it is (its shapes and alphas): it serves the error map, the
    # colour solve and the loss until the shapes move again
    pairs = _pairs(state, w, h) if state.points else None
    best = _keep_best(state, None, target_c, target_a, weight, w, h, solve=False, pairs=pairs)
    best_round = 0
    state.stop_reason = "budget used"
    # Every decision below depends on the stage (a rung of the ladder) and the state, never on the
    # budget itself, so a larger budget runs a smaller one's rounds, refills included, before going on.
    # A stage runs its planned rounds, then refill rounds (at most refill_rounds) while pruning and
    # merging have left it short of its rung; the climb ends when no region of error is left.
    si, j, r, exhausted = 0, 0, -1, False
    while si < len(stages):
        t, planned = stages[si], rounds_of[si]
        if j >= planned and (len(state.points) >= t or j >= planned + cfg.refill_rounds):
            si, j = si + 1, 0
            continue
        r += 1
        check_cancel(cancel)
        k = min(int(math.ceil((t - len(state.points)) / max(1, planned - j))), budget - len(state.points))
        j += 1
        if k > 0:
            with torch.no_grad():
                C, A = composite_pairs(pairs, state.colors[:, :3], w, h) if pairs is not None else _render(state, w, h)
                err = error_map(C, A, target_c, target_a, weight)
            new_pts, new_cols = [], []
            for pts, m in _new_paths(err.cpu().numpy(), k, candidates, used, valid, cfg.dp_epsilon, flat,
                                     min_area=max(4, int(math.ceil(cfg.hair_area * w * h))), target=tc):
                a = float(ta[m].mean())
                rgb = tc[m].mean(0) / max(a, 1e-3)
                new_pts.append(pts.to(dev))
                # opaque, unless most of the region is translucent (under half opaque): then its mean alpha
                opacity = 1.0 if float(np.median(ta[m])) > 0.5 else a
                new_cols.append(torch.tensor([*np.clip(rgb, 0, 1), opacity], dtype=torch.float32))
            if new_pts:
                state.points = state.points + new_pts
                state.colors = torch.cat([state.colors, torch.stack(new_cols).to(dev)], 0)
                pairs = _pairs(state, w, h)
            else:
                # nothing left worth a path: the climb ends here (on the state alone, so a larger
                # budget ends here too)
                exhausted = True
                state.stop_reason = "no region of noticeable error left"
                break
        state.rounds = r + 1
        if len(state.points) == 0:
            continue
        # the best colours for the shapes as they are (one linear solve), then shapes and colours
        # move together
        if pairs is None:
            pairs = _pairs(state, w, h)
        state.colors = _solved_colors(state, target_c, weight, w, h, pairs)
        if n_iter == 0:
            continue
        # the rounds work at refine_scale (exact-area rendering at scale s is the area-downsampled
        # full render, so this is the same loss on blurred images, s^2 the cost); the polish below
        # works at full size
        sc = min(1.0, max(cfg.refine_scale, 16.0 / min(h, w)))
        tgt_c, tgt_a, wgt, hs, ws = _scaled_targets(target_c, target_a, weight, sc)
        scale = torch.tensor([ws / w, hs / h], device=dev)
        fixed = [p.detach() * scale for p in state.points[:state.n_fixed]]
        sizes = [p.shape[0] for p in state.points[state.n_fixed:]]
        free = (torch.cat([p.detach() for p in state.points[state.n_fixed:]], 0) * scale if sizes
                else torch.zeros(0, 2, device=dev)).requires_grad_(True)
        rgb = state.colors[:, :3].detach().clone().requires_grad_(True)
        alpha = state.colors[:, 3:].detach()
        groups = [([rgb], cfg.color_lr)]
        if sizes:
            groups.append(([free], cfg.point_lr * float(scale.min())))
        nf = state.n_fixed
        backdrop = None
        if cfg.freeze_structure_colours and nf:
            # the structure's shapes are frozen and, within a round, so are its colours (they are
            # solved jointly before and after every round): it is rendered once, and each step
            # renders only the detail paths over it; far fewer pixels per step, the same loss
            with torch.no_grad():
                backdrop = render_torch(fixed, torch.cat([rgb[:nf], alpha[:nf]], 1), ws, hs)

        def loss_fn() -> torch.Tensor:
            if backdrop is not None:
                Cb, Ab = backdrop
                if sizes:
                    Cd, Ad = render_torch(PackedPaths(free, sizes), torch.cat([rgb[nf:], alpha[nf:]], 1), ws, hs)
                    C, A = Cd + (1.0 - Ad).unsqueeze(-1) * Cb, Ad + (1.0 - Ad) * Ab
                else:
                    C, A = Cb + 0.0 * rgb.sum(), Ab
            else:
                C, A = render_torch(fixed + list(torch.split(free, sizes)), torch.cat([rgb, alpha], 1), ws, hs)
            return image_loss(C, A, tgt_c, tgt_a, wgt)

        def clamp() -> None:
            with torch.no_grad():
                rgb.clamp_(0.0, 1.0)
                _into_canvas(free, ws, hs)

        def on_step(_: int, value: float) -> None:
            nonlocal step
            state.history.append(value)
            if step_callback is not None:
                step_callback(step, iters_total, value)
            if previews.due():
                previews(fixed + list(torch.split(free, sizes)), torch.cat([rgb, alpha], 1), scale)
            step += 1

        # a refill round (past the stage's planned rounds) only fits the few paths it re-adds: half the steps
        adam_loop(groups, loss_fn, n_iter if j <= planned else max(1, n_iter // 2), after_step=clamp, callback=on_step,
                  stop=Plateau(cfg.stop_tol, cfg.stop_patience), cancel=cancel,
                  guard=SimpleGuard([(free, sizes)]) if cfg.simple_paths and sizes else None)
        fixed = [p for p in state.points[:state.n_fixed]]
        free = free.detach() / scale
        state.points = fixed + [p.detach() for p in torch.split(free.detach(), sizes)]
        state.colors = torch.cat([rgb.detach(), alpha], 1)
        # one coverage pass for pruning, merging, the colour solve and the loss; a second only when
        # paths were removed (the covered pixels of those left do not depend on the others)
        pairs = _pairs(state, w, h)
        if cfg.prune_every > 0:
            n_before = len(state.points)
            keep = _prune(state, pairs, cfg.prune_area, cfg, w, h)
            merged = _merge_redundant(state, w, h, covered=[pairs.covered(i) for i in keep])
            if merged or len(keep) < n_before:
                pairs = _pairs(state, w, h)
        # the state goes on with its best colours for its shapes: the next round's error map sees them
        state.colors = _solved_colors(state, target_c, weight, w, h, pairs)
        prev, best = best, _keep_best(state, best, target_c, target_a, weight, w, h, solve=False, pairs=pairs)
        if best is not prev:
            best_round = r + 1
    if not exhausted and len(state.points) < budget:
        state.stop_reason = (f"{budget - len(state.points)} paths left after {cfg.refill_rounds} refill rounds"
                             if stages else "budget used")
    # the result comes from an earlier round when the best state is not where the rounds ended: the
    # polish starts from the best state, and without it the best state is what is handed back
    earlier = best is not None and not (len(best[1]) == len(state.points) and
                                        all(a is b for a, b in zip(best[1], state.points)))
    reason = state.stop_reason
    if earlier:
        state.stop_reason = (f"kept the result of round {best_round} ({len(best[1])} paths): the paths added "
                             f"after it did not lower the error" if best_round else
                             "kept the structure alone: no detail path lowered the error")
    if state.points and before_polish is not None:
        if best is not None:
            state.points, state.colors = list(best[1]), best[2]
        before_polish(state)
        best = _keep_best(state, None, target_c, target_a, weight, w, h, solve=False)
    if state.points and cfg.polish_iters > 0:
        _polish(state, best, target_c, target_a, weight, cfg, cancel, polish_callback, previews)
    pairs = _pairs(state, w, h) if state.points else None
    if state.points:
        state.colors = _solved_colors(state, target_c, weight, w, h, pairs)
    # never hand back a result worse than one already reached: a round whose new paths did not pay
    # (after pruning and the final colour solve) is undone, so a larger budget cannot lose to a smaller
    prev, best = best, _keep_best(state, best, target_c, target_a, weight, w, h, solve=False, pairs=pairs)
    if best is None:
        return state
    if best is not prev and not cfg.polish_iters:   # the rounds' own end won after all
        state.stop_reason = reason
    state.points, state.colors = list(best[1]), best[2]
    return state


def _polish(state: RefineState, best, target_c, target_a, weight, cfg: OptimizeConfig, cancel,
            callback: Callable[[int, int, float], None] | None = None,
            previews: PreviewThrottle | None = None) -> None:
    """Last, every path's points (the structure's too) and colours move together against the image at
    full resolution, starting from the best state so far: the structure stage fitted the structural
    shapes to their masks, at reduced size, and this lines their edges up with the image's. Paths keep
    their layers and order. Halfway through the full-size steps, ``cfg.polish_split`` of all segments,
    those along which the picture is furthest from the target, are halved
    (:func:`lvss.optimize.subdivide.split_where_wrong`)."""
    h, w = target_a.shape
    if best is not None:
        state.points, state.colors = list(best[1]), best[2]
    sizes = [p.shape[0] for p in state.points]
    coarse = int(round(cfg.polish_coarse * cfg.polish_iters))
    if coarse > 0:
        # the first steps at half size (a quarter of the pixels): colours and the larger moves settle
        # there, and the steps at full size then only line the edges up
        tc, ta, wg, hs, ws = _scaled_targets(target_c, target_a, weight, 0.5)
        half = torch.tensor([ws / w, hs / h], device=target_a.device)
        small = RefineState([p.detach() * half for p in state.points], state.colors, len(state.points))
        _polish_at(small, tc, ta, wg, cfg.polish_lr * float(half.min()), cfg.color_lr, coarse, cancel,
                   cfg.simple_paths,
                   None if callback is None else (lambda k, v: callback(k, cfg.polish_iters, v)),
                   previews, half)
        state.points = [p / half for p in small.points]
        state.colors = small.colors
    rest = cfg.polish_iters - coarse
    # halfway, the segments along which the picture is furthest from the target are halved
    # (lvss.optimize.subdivide): the rest of the polish has nodes where they buy fidelity
    at = int(round(SPLIT_AT * rest)) if cfg.polish_split > 0 else 0
    if at:
        _polish_at(state, target_c, target_a, weight, cfg.polish_lr, cfg.color_lr, at, cancel, cfg.simple_paths,
                   None if callback is None else (lambda k, v: callback(coarse + k, cfg.polish_iters, v)),
                   previews)
        state.points = split_where_wrong(state.points, state.colors, target_c, target_a, cfg.polish_split)
    _polish_at(state, target_c, target_a, weight, cfg.polish_lr, cfg.color_lr, rest - at, cancel,
               cfg.simple_paths,
               None if callback is None else (lambda k, v: callback(coarse + at + k, cfg.polish_iters, v)),
               previews)


def _polish_at(state: RefineState, target_c, target_a, weight, point_lr: float, color_lr: float, iters: int,
               cancel, simple: bool = True,
               callback: Callable[[int, float], None] | None = None,
               previews: PreviewThrottle | None = None, scale: torch.Tensor | None = None) -> None:
    """``iters`` Adam steps of every path's points and colours at the targets' size; the state ends at
    the best step. ``previews``: gets the current state when due, its points divided by ``scale``
    (the targets' size relative to the caller's coordinates)."""
    h, w = target_a.shape
    sizes = [p.shape[0] for p in state.points]
    pts = torch.cat([p.detach() for p in state.points], 0).requires_grad_(True)
    rgb = state.colors[:, :3].detach().clone().requires_grad_(True)
    alpha = state.colors[:, 3:].detach()

    # the loss of a step is that of the parameters before its update: they are kept while they are
    # the best seen, and the polish hands back the best of all its steps, not its last one
    seen = {"loss": math.inf, "now": None, "best": None}

    def loss_fn() -> torch.Tensor:
        seen["now"] = (pts.detach().clone(), rgb.detach().clone())
        C, A = render_torch(PackedPaths(pts, sizes), torch.cat([rgb, alpha], 1), w, h)
        return image_loss(C, A, target_c, target_a, weight)

    def clamp() -> None:
        with torch.no_grad():
            rgb.clamp_(0.0, 1.0)

    def keep(k: int, value: float) -> None:
        if value < seen["loss"]:
            seen["loss"], seen["best"] = value, seen["now"]
        if callback is not None:
            callback(k, value)
        if previews is not None and previews.due():
            previews(list(torch.split(pts, sizes)), torch.cat([rgb, alpha], 1), scale)

    adam_loop([([pts], point_lr), ([rgb], color_lr)], loss_fn, iters, after_step=clamp,
              callback=keep, cancel=cancel, guard=SimpleGuard([(pts, sizes)]) if simple else None)
    final_pts, final_rgb = pts.detach(), rgb.detach()
    if seen["best"] is not None:
        with torch.no_grad():
            last = float(loss_fn())
        if seen["loss"] < last:
            final_pts, final_rgb = seen["best"]
    state.points = [p.detach() for p in torch.split(final_pts, sizes)]
    state.colors = torch.cat([final_rgb, alpha], 1)


def _into_canvas(points: torch.Tensor, w: float, h: float) -> None:
    """Keep control points on the canvas (in place). Outside it a point has no pixel to answer to, so
    the optimiser's momentum could carry it far off the picture, where an editor shows it as a stray
    handle. Used on the detail paths of refinement's rounds only: a handle moved back onto the border
    also bends its curve inside the canvas, which the rounds absorb (4 OpenMoji at 64 paths: 44.24 dB
    with, 44.18 dB without) but the polish, where the structure's border-hugging paths move too, does
    not (1F339: 45.2 -> 33.4 dB), so the polish is left free."""
    if points.numel():
        points[:, 0].clamp_(0.0, float(w))
        points[:, 1].clamp_(0.0, float(h))


def _solved_colors(state: RefineState, target_c: torch.Tensor, weight: torch.Tensor | None, w: int, h: int,
                   pairs: Pairs | None = None):
    """Every path's least-squares RGB for the shapes as they are (alpha kept); ``pairs``: the state's
    :func:`scene_pairs` when known."""
    return torch.cat([solve_colors(state.points, state.colors[:, 3], target_c, state.colors, w, h, weight,
                                   pairs=pairs), state.colors[:, 3:]], 1)


def _keep_best(state: RefineState, best, target_c, target_a, weight, w: int, h: int, solve: bool = True,
               pairs: Pairs | None = None):
    """(loss, points, colours) of whichever is better: ``best`` or the state with its colours solved
    (full-resolution loss, the one refinement minimises). ``pairs``: the state's :func:`scene_pairs`
    when known (the loss is then read off them, without a render)."""
    if not state.points:
        return best
    if pairs is None:
        pairs = _pairs(state, w, h)
    colors = _solved_colors(state, target_c, weight, w, h, pairs) if solve else state.colors
    with torch.no_grad():
        C, A = composite_pairs(pairs, colors[:, :3], w, h)
        loss = float(image_loss(C, A, target_c, target_a, weight))
    if best is None or loss < best[0]:
        return loss, list(state.points), colors
    return best
