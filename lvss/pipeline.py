"""The layered vectorization pipeline: ``vectorize(image, config, progress) -> Scene``.

simplify → segment every level → layering (coarse to fine, back to front) → contour paths →
stage I structure → colour fit → stage II refinement → scene in the input's pixel coordinates.
The work happens at a working resolution (long side ``cfg.work_size``); the result is scaled back.
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from .config import VectorizeConfig
from .io import load_image
from .metrics import composite_metrics, scene_metrics
from .optimize.structure import StructuralPath, fit_colors, optimize_structure, solve_colors
from .scene import OPAQUE_ALPHA, Layer, Path, Scene
from .types import Cancelled, ProgressCallback, ProgressEvent, VectorizeResult, check_cancel

__all__ = ["run", "vectorize", "Cancelled", "prepare_image", "composite_metrics", "prompt_note"]

# share of the progress bar each stage takes (fractions never go backwards)
_SPAN = {"load": (0.0, 0.02), "simplify": (0.02, 0.12), "segment": (0.12, 0.2), "layering": (0.2, 0.25),
         "structure": (0.25, 0.5), "colour": (0.5, 0.52), "refine": (0.52, 0.82), "polish": (0.82, 0.95),
         "fills": (0.95, 0.98),
         "export": (0.98, 1.0),
         # compact mode
         "recolor": (0.2, 0.5), "detail": (0.5, 0.98)}


# layered mode: the polish's first steps are ``optimize.polish_lr`` times this. Its structural paths
# start as curve fits that keep within half a pixel of their pixel outlines with few, long segments
# (lvss.layering.mask_to_path(curve=True)); larger first steps line them up with the image's edges
# (12 OpenMoji at 64 paths, 3 seeds: 42.88 dB with 0.2 px steps, 43.12 dB with 0.3 px; the
# Douglas-Peucker start it replaced had 43.06 dB with 0.2 px and lost 0.27 dB with 0.3 px)
CURVE_POLISH_GAIN = 1.5
PREVIEW_EVERY = 0.5  # seconds between two preview events (the first one is sent at once)
# a path that shows fewer pixels than this in the finished picture is left out of the SVG (a path
# almost wholly under opaque paths in front of it is one a designer would delete)
HIDDEN_PIXELS = 1.0
# a long, thin picture is worked with at least this many pixels across (lvss.pipeline.prepare_image)
SHORT_SIDE_MIN = 64
# translucent input (lvss.pipeline._semi_transparent): alpha below scene.OPAQUE_ALPHA, in an area
# with an inside this many pixels deep (an anti-aliased rim has none)
SEMI_MARGIN = 2


class _Progress:
    def __init__(self, cb: ProgressCallback | None, previews: bool = False):
        self.cb = cb
        self.last = 0.0
        self.stage = "load"
        # previews: only for a callback that asked for them (no scene is built otherwise)
        self.previews = cb is not None and previews
        self.canvas = (1, 1, 1, 1)  # working w, h and the input's W0, H0 (set by run)
        self.sent = -float("inf")

    def __call__(self, stage: str, within: float = 0.0, message: str = "") -> None:
        if self.cb is None:
            return
        a, b = _SPAN[stage]
        f = max(self.last, min(1.0, a + (b - a) * min(max(within, 0.0), 1.0)))
        self.last = f
        self.stage = stage
        self.cb(ProgressEvent(stage, f, message))

    def preview(self, points, colors, scale: float = 1.0, first: bool = False) -> None:
        """A preview event of paths ``points`` (working coordinates times ``scale``) and ``colors``
        (N, 4): at once when ``first``, else when PREVIEW_EVERY has passed since the last one."""
        if not self.previews or not len(points):
            return
        now = time.monotonic()
        if not first and now - self.sent < PREVIEW_EVERY:
            return
        self.sent = now
        w, h, W0, H0 = self.canvas
        with torch.no_grad():
            paths = [Path(p.detach().cpu() / scale, c.detach().cpu()) for p, c in zip(points, colors)]
        scene = Scene(w, h, [Layer("Preview", paths, "preview")]).scaled(W0 / w, H0 / h, width=W0, height=H0)
        self.cb(ProgressEvent(self.stage, self.last, "", preview=scene))


def prepare_image(rgba: np.ndarray, work_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 4) uint8 → working-resolution straight RGB (h, w, 3) float32 and alpha (h, w) float32.

    Only downscales (long side ``work_size``); small inputs keep their size. A long, thin picture (a
    banner) keeps a short side of ``SHORT_SIDE_MIN`` pixels where it has them, within the pixels of a
    ``work_size`` square: a 1000 x 50 banner is worked at its own size, not at 256 x 13. Downscaled by
    area (:func:`lvss.io.area_downscaled`).
    """
    from .io import area_downscaled

    H, W = rgba.shape[:2]
    s = min(1.0, work_size / max(H, W))
    if min(H, W) * s < SHORT_SIDE_MIN:
        s = max(s, min(1.0, SHORT_SIDE_MIN / min(H, W), work_size / float(np.sqrt(H * W))))
    w, h = max(2, round(W * s)), max(2, round(H * s))
    f = rgba.astype(np.float32) / 255.0
    if (w, h) != (W, H):
        return area_downscaled(f, (w, h))
    return f[..., :3].copy(), f[..., 3].copy()


def _device(cfg: VectorizeConfig) -> torch.device:
    from .models import resolve_device

    return resolve_device(cfg.device)


def _outline(mask: np.ndarray, epsilon: float) -> torch.Tensor | None:
    """Points (3S, 2) of a mask's contour fit (:func:`lvss.layering.mask_to_path`, holes kept open),
    made a simple loop to start from (a contour fit can overshoot where the mask is thin; in the rare
    case that not even the polygon through its nodes is one, the fit as it is, which the export
    repairs); None when the mask is too small to contour."""
    return _outlines([mask], epsilon)[0]


def _outlines(masks: list[np.ndarray], epsilon: float) -> list[torch.Tensor | None]:
    """:func:`_outline` of every mask, their contours fitted together (:func:`lvss.layering.curve_paths`)."""
    from .geometry.simple import made_simple
    from .layering import curve_paths

    out: list[torch.Tensor | None] = []
    for p in curve_paths(masks, epsilon, holes=True):
        q = None if p is None else made_simple(p.points)
        out.append(None if p is None else p.points if q is None else q)
    return out


def _structural_paths(layering, budget: int, epsilon: float, cancel: threading.Event | None = None,
                      min_pixels: int = 1, valid: np.ndarray | None = None,
                      rgb: np.ndarray | None = None, semi: np.ndarray | None = None) -> list[StructuralPath]:
    """One path per piece of every layering mask (4-connected, holes filled, at least ``min_pixels``
    pixels; :func:`lvss.layering.mask_components`), in the mask's layer, back to front. A piece's
    holes (the layering keeps only transparent ones) stay open in its path.

    Budget: when there are more pieces than ``budget``, the largest pieces win, whichever mask they
    belong to (ties: the back-most layer, then the mask's and the piece's order); a piece too small to
    contour hands its place to the next largest. Each path is fitted to its own piece (its target in
    the structure stage) and starts from its mask's mean colour. With ``valid`` (H, W) bool, the
    opaque pixels, the back layer's pieces then grow to cover every opaque pixel (:func:`_cover_canvas`).

    With ``rgb`` (H, W, 3) and ``valid`` too, the budget may instead go first to one background path
    per opaque region, under everything, and then to the pieces that remove the most error, whichever
    of the two ways paints the image closer (:mod:`lvss.pieces`); the background becomes a new back
    layer of ``layering`` (changed in place). ``semi``: translucent areas, which no background path
    goes under."""
    from .layering import LayerMask, mask_components
    from .pieces import Piece, area_order, choose

    pieces: list[Piece] = []
    colours: list[np.ndarray] = []
    k = 0
    for li, layer in enumerate(layering.layers):
        for lm in layer:
            check_cancel(cancel)
            for j, piece in enumerate(mask_components(lm.mask, min_pixels, fill_holes=False)):
                pieces.append(Piece(li, k, j, piece, np.flatnonzero(piece.reshape(-1))))
                colours.append(np.asarray(lm.color, np.float32))
            k += 1
    if rgb is not None and valid is not None:
        choice = choose(pieces, budget, rgb, valid, min_pixels, under=None if semi is None else valid & ~semi)
        order, background, grow = choice.order, choice.background, choice.grow
    else:
        order, background, grow = area_order(pieces), [], True
    shift = 1 if background else 0
    chosen = []
    for m, colour in background:
        check_cancel(cancel)
        pts = _outline(m, epsilon)
        if pts is not None:
            chosen.append(((0, len(chosen), 0), StructuralPath(pts, m, 0, colour.astype(np.float32))))
    if background:
        layering.layers.insert(0, [LayerMask(sp.mask, max(layering.num_levels - 1, 0), sp.mean_color,
                                             int(sp.mask.sum())) for _, sp in chosen])
    # the pieces in order until the budget is spent, a piece too small to contour handing its place
    # to the next: outlined as many at a time as there are places left (their fits batched)
    order = list(order)
    while order and len(chosen) < budget:
        check_cancel(cancel)
        batch, order = order[:budget - len(chosen)], order[budget - len(chosen):]
        for i, pts in zip(batch, _outlines([pieces[i].mask for i in batch], epsilon)):
            if pts is not None:
                p = pieces[i]
                li = p.layer + shift
                chosen.append(((li, p.mask_index, p.index), StructuralPath(pts, p.mask, li, colours[i])))
    chosen.sort(key=lambda e: e[0])
    if grow and valid is not None and chosen:
        _cover_canvas([sp for _, sp in chosen], valid, epsilon)
    return [sp for _, sp in chosen]


def _cover_canvas(paths: list[StructuralPath], valid: np.ndarray, epsilon: float) -> None:
    """Grow the back layer's paths (in place) until together they cover every opaque pixel that they
    can reach: each pixel goes to the nearest back-layer piece (geodesically, through opaque pixels).

    A budget smaller than the number of pieces leaves pieces without a path, and their pixels would
    show the empty canvas (white holes in a photograph at 16 paths); paths in front now lie on a
    back layer instead. Pieces already covering their area are unchanged."""
    from .pieces import grow_back

    back = min(sp.layer for sp in paths)
    mine = [sp for sp in paths if sp.layer == back]
    grown = grow_back([sp.mask for sp in mine], np.logical_or.reduce([sp.mask for sp in paths]), valid)
    if grown is None:
        return
    for i, sp in enumerate(mine):
        m = grown == i + 1
        if m.sum() == sp.mask.sum():
            continue
        pts = _outline(m, epsilon)
        if pts is not None:
            sp.points, sp.mask = pts, m


def _underlay(state, paths: list[StructuralPath], valid: np.ndarray, epsilon: float) -> list[StructuralPath]:
    """Let no seam show the page (in place on the optimised ``state``; returns ``paths`` in the new
    order): in every connected opaque region, the back layer's largest structural path becomes the
    outline of the whole region (its transparent holes kept open) and is drawn first, under everything
    else there.

    Shapes that abut leave a faint line of page between them wherever a renderer anti-aliases both
    edges (each covers half of a boundary pixel, and half over half is three quarters, not one). With
    one shape underneath spanning the region, such a line shows that shape's colour, and the region's
    outer edge is drawn once. Inside the region the path keeps its colour and every pixel it showed,
    and what it now also spans lies under the other shapes, except in those lines. Where the region
    meets transparency its outline, traced from the pixels, is the drawing's outer edge: the pipeline
    then does this before the polish (``refine``'s ``before_polish``), which fits that edge to the
    input's anti-aliased rim; on an opaque picture (the region is the canvas) after it. The region's
    outline usually has fewer nodes than the path it replaces."""
    from scipy import ndimage

    n = state.n_fixed
    if n == 0:
        return paths
    back = min(sp.layer for sp in paths[:n])
    regions, count = ndimage.label(valid)
    first: list[int] = []
    for r in range(1, count + 1):
        region = regions == r
        # a translucent path (alpha < 1) never goes under others: what lies under it would show
        mine = [i for i in range(n) if paths[i].layer == back and (paths[i].mask & region).any()
                and float(state.colors[i, 3]) >= 1.0]
        if not mine:
            continue
        i = max(mine, key=lambda k: int((paths[k].mask & region).sum()))
        pts = _outline(region, epsilon)
        if pts is None:
            continue
        sp = paths[i]
        paths[i] = StructuralPath(pts, region, sp.layer, sp.mean_color)
        state.points[i] = paths[i].points.to(state.points[i].device, state.points[i].dtype)
        first.append(i)
    order = first + [i for i in range(len(state.points)) if i not in set(first)]
    state.points = [state.points[i] for i in order]
    state.colors = state.colors[torch.as_tensor(order, device=state.colors.device)]
    return [paths[i] for i in order[:n]] + paths[n:]


def _semi_transparent(alpha: np.ndarray) -> np.ndarray:
    """(H, W) bool: the input's translucent areas (a soft shadow, a tinted glass): pixels whose alpha
    is between ``valid``'s threshold and ``OPAQUE_ALPHA``, in areas with an inside ``SEMI_MARGIN``
    pixels deep (a morphological opening). The anti-aliased rim of an opaque shape is a band a pixel
    or two wide and has no such inside."""
    from scipy import ndimage

    band = (alpha > 0.5) & (alpha < OPAQUE_ALPHA)
    if not band.any():
        return band
    return ndimage.binary_opening(band, np.ones((3, 3), bool), iterations=SEMI_MARGIN)


def _path_alphas(paths: list[StructuralPath], alpha: np.ndarray, semi: np.ndarray) -> np.ndarray:
    """(N,) the alpha of each structural path: 1, except for a piece that lies mostly inside a
    translucent area (:func:`_semi_transparent`), which takes the mean alpha of the input there, so
    the SVG keeps the area translucent (an opaque path would have to darken it to its premultiplied
    colour)."""
    out = np.ones(len(paths), np.float32)
    if not semi.any():
        return out
    for i, sp in enumerate(paths):
        inside = sp.mask & semi
        if 2 * int(inside.sum()) > int(sp.mask.sum()):
            out[i] = float(alpha[inside].mean())
    return out


def _min_piece_pixels(cfg: VectorizeConfig, h: int, w: int) -> int:
    """Smallest piece of a mask that gets a structural path: the segmenters' minimum mask area
    (``segment.min_area`` of the image), and never under ``optimize.prune_area`` (paths showing fewer
    pixels are pruned anyway)."""
    return max(1, int(np.ceil(max(cfg.segment.min_area * h * w, cfg.optimize.prune_area))))


def _polish_at_input_size(state, source: np.ndarray, work: tuple[int, int], cfg: VectorizeConfig,
                          weight, prog: "_Progress", cancel) -> None:
    """For an input larger than the working size: a last polish of every path against the input's own
    pixels (downscaled to ``optimize.polish_size`` on the long side when larger), so that edges are
    placed by the pixels a designer zooms into, not by the thumbnail. In place; the state stays in
    working coordinates."""
    from .optimize.refine import PreviewThrottle, RefineState, _polish_at

    oc = cfg.optimize
    h, w = work
    H0, W0 = source.shape[:2]
    side = min(oc.polish_size, max(H0, W0))
    if oc.polish_full_iters <= 0 or side <= max(h, w):
        return
    rgb, alpha = prepare_image(source, side)
    hs, ws = alpha.shape
    dev = state.points[0].device
    tc, ta = _targets(rgb, alpha, dev)
    wgt = None
    if weight is not None:
        wgt = torch.nn.functional.interpolate(weight[None, None], size=(hs, ws), mode="bilinear",
                                              align_corners=False)[0, 0]
    scale = torch.tensor([ws / w, hs / h], device=dev)
    big = RefineState([p * scale for p in state.points], state.colors, len(state.points))

    def cb(step: int, value: float) -> None:
        prog("polish", (step + 1) / oc.polish_full_iters,
             f"polish at {ws}x{hs} px step {step + 1}/{oc.polish_full_iters}, loss {value:.4f}")

    previews = PreviewThrottle(prog.preview if prog.previews else None, PREVIEW_EVERY)
    _polish_at(big, tc, ta, wgt, oc.polish_lr, oc.color_lr, oc.polish_full_iters, cancel, oc.simple_paths, cb,
               previews, scale)
    state.points = [p / scale for p in big.points]
    state.colors = big.colors


def _solid_masks(masks: list[np.ndarray], h: int, w: int, solidity: float = 0.85) -> np.ndarray:
    """(K, H, W) bool: the masks a single closed path can stand for, i.e. those whose holes are small
    (area >= ``solidity`` x area with holes filled); rings and outlines are left out."""
    from .layering import _fill_holes

    keep = []
    for m in masks:
        a = int(m.sum())
        if a >= 4 and a >= solidity * int(_fill_holes(m).sum()):
            keep.append(m)
    return np.stack(keep) if keep else np.zeros((0, h, w), bool)


def run(image: Any, cfg: VectorizeConfig | None = None, progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None, previews: bool | None = None) -> VectorizeResult:
    """Vectorize an image. ``image``: file path, bytes, PIL image or (H, W, 3|4) uint8 array.

    Returns the scene (in the input's pixel coordinates), timings per stage (seconds) and metrics
    measured at the working resolution (mse, psnr). Raises ImageError / ConfigError for bad input and
    Cancelled when ``cancel`` is set. ``previews``: also send ``progress`` preview events (the picture
    so far, :class:`lvss.types.ProgressEvent`); default: when ``progress`` has ``wants_previews = True``.
    """
    cfg = cfg or VectorizeConfig()
    if previews is None:
        previews = bool(getattr(progress, "wants_previews", False))
    prog = _Progress(progress, previews)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        t = time.perf_counter()
        timings[name] = round(t - t0, 4)
        t0 = t

    prog("load", 0.0, "reading the image")
    unused = prompt_note(cfg)
    if unused:
        prog("load", 0.0, f"warning: {unused}")
    rgba = load_image(image)
    H0, W0 = rgba.shape[:2]
    dev = _device(cfg)
    rgb, alpha = prepare_image(rgba, cfg.work_size)
    h, w = alpha.shape
    prog.canvas = (w, h, W0, H0)
    torch.manual_seed(cfg.seed)
    lap("load")
    if cfg.mode == "compact":
        from .compact import run_compact

        scene, metrics = run_compact(rgb, alpha, cfg, dev, prog, cancel, source=rgba)
        lap("compact")
    else:
        scene, metrics = _run_layered(rgb, alpha, cfg, dev, prog, cancel, lap, source=rgba)
    scene = _without_hairs_or_hidden(scene, rgb, alpha, cfg, dev, metrics)
    if cfg.optimize.fill != "flat":  # gradient fills, both modes (lvss/optimize/fills.py)
        from .optimize.fills import apply_fills

        prog("fills", 0.0, f"fitting {cfg.optimize.fill} gradient fills")
        scene = apply_fills(scene, rgb, alpha, cfg, dev, metrics, cancel)
        prog("fills", 1.0, "gradient fills fitted")
        lap("fills")
    check_cancel(cancel)
    prog("export", 0.0, "scaling to the input size")
    from .naming import name_layers
    scene = name_layers(scene)  # unique layer names, colour by visible area (lvss/naming.py)
    out = scene.scaled(W0 / w, H0 / h, width=W0, height=H0)
    lap("export")
    prog("export", 1.0, "done")
    notes = ([unused] if unused else []) + list(metrics.pop("_notes", []))
    return VectorizeResult(out, timings, metrics, notes)


def _without_hairs_or_hidden(scene: Scene, rgb, alpha, cfg: VectorizeConfig, dev, metrics: dict) -> Scene:
    """The scene as the SVG gets it, whichever stage left its paths: without hair paths
    (:func:`lvss.geometry.repair.hair_mask`: less than ``optimize.hair_area`` of the canvas, or thinner
    than ``optimize.hair_width`` pixels), without paths that show less than ``HIDDEN_PIXELS`` pixels in
    the picture (wholly or nearly hidden under opaque paths in front of them) and without paths whose
    removal changes nothing a viewer sees (:mod:`lvss.optimize.redundant`); the back layer's paths
    are kept from the last two, as they lie under the shapes above them on purpose, to fill the seams
    between them. A hair by its width alone (a line the polish drew thinner than ``hair_width``) is part
    of the picture: it is thickened to that width instead (:func:`lvss.geometry.simple.thickened`)
    where that makes it an ordinary path, and every colour is solved again for the new shapes. The
    metrics follow any change. Both modes' optimisers prune their detail hairs as they go; this is
    the guarantee for every path the SVG gets."""
    from .geometry.repair import hair_mask
    from .geometry.simple import area_and_perimeter, thickened
    from .optimize.redundant import redundant_paths
    from .optimize.structure import visible_area

    oc = cfg.optimize
    if not scene.num_paths:
        return scene
    w, h = scene.width, scene.height
    points = scene.point_list()
    colors = scene.colors().to(dev)
    target_c, target_a = _targets(rgb, alpha, dev)
    flags = np.zeros(len(points), bool)
    if oc.hair_area + oc.hair_width > 0:
        flags = np.asarray(hair_mask(points, w, h, oc.hair_area, oc.hair_width, clip=True), bool)
    thick = []
    for k in np.flatnonzero(flags):
        if area_and_perimeter(points[k])[0] < oc.hair_area * w * h:
            continue
        q = thickened(points[k], oc.hair_width)
        if q is not None and not hair_mask([q], w, h, oc.hair_area, oc.hair_width, clip=True)[0]:
            points[k], flags[k] = q, False
            thick.append(k)
    if thick:
        colors = colors.clone()
        colors[:, :3] = solve_colors([p.to(dev) for p in points], colors[:, 3], target_c, colors, w, h)
    shown = visible_area([p.to(dev) for p in points], colors, w, h).cpu().numpy()
    first = len(scene.layers[0].paths) if scene.layers else 0
    flags[first:] |= shown[first:] < HIDDEN_PIXELS
    rest = np.flatnonzero(~flags)
    flags[rest[redundant_paths([points[i].to(dev) for i in rest], colors[rest], target_c, target_a,
                               keep=rest < first)]] = True
    if not flags.any() and not thick:
        return scene
    layers, start = [], 0
    for layer in scene.layers:
        keep = [(k, p if not thick else Path(points[start + k], colors[start + k].cpu(), p.fill))
                for k, p in enumerate(layer.paths) if not flags[start + k]]
        start += len(layer.paths)
        if not keep:
            continue
        d = layer.details_from
        details_from = None if d is None else sum(1 for k, _ in keep if k < d)
        if details_from is not None and details_from >= len(keep):
            details_from = None
        layers.append(Layer(layer.name, [p for _, p in keep], layer.id, details_from))
    out = Scene(w, h, layers)
    metrics.update(scene_metrics([p.to(dev) for p in out.point_list()], out.colors().to(dev), target_c, target_a),
                   paths=float(out.num_paths))
    return out


_NO_CLIP = ("no CLIP model is set; give one with --clip-model DIR|HUB_ID (saliency.clip_model, environment "
            "LVSS_CLIP_MODEL) or use --models paper")


def prompt_note(cfg: VectorizeConfig, no_clip: str = _NO_CLIP,
                mask: str = "the saliency mask decides what matters instead") -> str | None:
    """Why ``cfg.saliency.prompt`` will not steer the result and how to make it, or None when there is
    no prompt or CLIP saliency uses it (both modes; shown by the CLI, the server and --json).
    ``no_clip`` and ``mask``: the reason given when no CLIP model is set / a saliency mask is used
    (the server words them for its clients)."""
    from .config import ConfigError
    from .stages import saliency_choice

    if not cfg.saliency.prompt.strip():
        return None
    try:
        source, _, _ = saliency_choice(cfg)
    except ConfigError:
        return None
    if source == "clip":
        return None
    if source == "mask":
        why = mask
    elif cfg.saliency.source == "none":
        why = "saliency 'none' was requested"
    else:
        why = no_clip
    return f"the prompt was not used: {why}"


def _targets(rgb: np.ndarray, alpha: np.ndarray, dev: torch.device):
    a = torch.from_numpy(alpha).to(dev)
    c = torch.from_numpy(rgb).to(dev) * a.unsqueeze(-1)
    return c, a


def _saliency_weight(rgb: np.ndarray, cfg: VectorizeConfig, dev: torch.device) -> torch.Tensor | None:
    """Per-pixel loss weight 1 + saliency (None when the saliency map is uniform)."""
    from .optimize.losses import saliency_weight
    from .stages import saliency_map

    return saliency_weight(saliency_map(rgb, cfg), dev)


def _run_layered(rgb, alpha, cfg: VectorizeConfig, dev, prog: _Progress, cancel, lap, source=None):
    from .layering import build_layers, layer_name
    from .optimize.refine import RefineState, refine
    from .stages import segment_levels, simplify_levels

    h, w = alpha.shape
    valid = alpha > 0.5
    semi = _semi_transparent(alpha)  # translucent areas: no path is drawn under them
    # 1. simplification sequence
    prog("simplify", 0.0, f"simplifying into {cfg.simplify.levels} coarser levels")
    levels = simplify_levels(cfg, rgb, lambda f, m: prog("simplify", f, m), cancel).levels
    check_cancel(cancel)
    lap("simplify")
    # 2. segmentation of every level
    seg = segment_levels(cfg, levels, source, lambda f, m: prog("segment", f, m), cancel)
    masksets = seg.masksets
    lap("segment")
    # 3-4. layering and contour paths
    layering = build_layers(masksets, valid=valid if not valid.all() else None)
    n_struct = max(1, min(cfg.paths, int(round(cfg.paths * cfg.optimize.structure_share))))
    check_cancel(cancel)
    spaths = _structural_paths(layering, n_struct, cfg.optimize.dp_epsilon, cancel, _min_piece_pixels(cfg, h, w),
                               valid, rgb, semi)
    prog("layering", 1.0, f"{len(layering)} layers, {len(spaths)} structural paths")
    lap("layering")
    # 5. stage I: structure
    def s_cb(step, total, loss):
        if step % 5 == 0 or step == total - 1:
            prog("structure", (step + 1) / max(total, 1), f"structure step {step + 1}/{total}, loss {loss:.4f}")

    new_pts = optimize_structure(spaths, h, w, cfg.optimize, dev, cfg.seed, s_cb, cancel)
    lap("structure")
    # 6. colour fit, then the structure is frozen
    target_c, target_a = _targets(rgb, alpha, dev)
    pts = [p.to(dev) for p in new_pts]
    n = len(pts)
    if n:
        fallback = torch.from_numpy(np.stack([sp.mean_color for sp in spaths]))
        alphas = torch.from_numpy(_path_alphas(spaths, alpha, semi)).to(dev)
        cols = fit_colors(pts, alphas.cpu(), torch.from_numpy(rgb).to(dev), fallback, w, h)
        cols = solve_colors(pts, alphas, target_c, cols, w, h)
        colors = torch.cat([cols, alphas[:, None]], 1)
    else:
        colors = torch.zeros(0, 4, device=dev)
    prog("colour", 1.0, "fitted colours")
    prog.preview(pts, colors, first=True)  # the first picture: the structure in its fitted colours
    lap("colour")
    # 7. stage II: refinement
    weight = _saliency_weight(rgb, cfg, dev)

    def r_cb(step, total, loss):
        if step % 5 == 0 or step == total - 1:
            prog("refine", (step + 1) / max(total, 1), f"refinement step {step + 1}/{total}, loss {loss:.4f}")

    prog("refine", 0.0, "adding detail paths where the error is largest")
    # candidate segments for detail paths: every level's masks not already a structural path
    cands = _solid_masks([m & valid for ms in masksets for m in ms.masks], h, w)
    def p_cb(step, total, loss):
        prog("polish", (step + 1) / max(total, 1), f"polish step {step + 1}/{total}, loss {loss:.4f}")

    # the structural paths start as curve fits within CURVE_TOL of their pixel outlines, with few
    # nodes: the polish takes larger first steps to line them up with the image's edges
    ocfg = replace(cfg.optimize, polish_lr=cfg.optimize.polish_lr * CURVE_POLISH_GAIN)
    # the path under each opaque region: where the region meets transparency its outline is the
    # drawing's outer edge, which the polish must fit like any other edge, so it goes in before the
    # polish; on an opaque picture it is the canvas, with nothing to fit, and goes in after
    under = valid & ~semi
    ordered: list[list[StructuralPath]] = []
    state = refine(RefineState(pts, colors, n), target_c, target_a, cfg.paths, ocfg, weight,
                   r_cb, cancel, candidates=cands, polish_callback=p_cb,
                   preview_callback=prog.preview if prog.previews else None,
                   before_polish=None if under.all() else
                   (lambda st: ordered.append(_underlay(st, spaths, under, cfg.optimize.dp_epsilon))))
    if source is not None and state.points:
        _polish_at_input_size(state, source, (h, w), cfg, weight, prog, cancel)
    if ordered:   # a bridge to a hole that the polish opened into a slit shows the page: closed again
        from .geometry.bridges import closed_slits

        state.points = closed_slits(state.points)
    spaths = ordered[-1] if ordered else _underlay(state, spaths, under, cfg.optimize.dp_epsilon)
    lap("refine")
    # assemble layers: one per structural layer (same order, numbered by place in the scene), each
    # followed by the detail paths that refine it (its sub-group "details"); assign_details keeps
    # the picture exactly as optimised
    from .layering import assign_details
    from .render.torch_raster import covered_pixels

    scene = Scene(w, h)
    used = sorted({spaths[i].layer for i in range(state.n_fixed)})
    index_of = {li: k for k, li in enumerate(used)}
    shapes: list[list[Path]] = [[] for _ in used]
    for i in range(state.n_fixed):
        shapes[index_of[spaths[i].layer]].append(Path(state.points[i].cpu(), state.colors[i].cpu()))
    details = [Path(state.points[i].cpu(), state.colors[i].cpu()) for i in range(state.n_fixed, len(state.points))]
    width = max(2, len(str(len(used) + 1)))
    if used:
        owner = assign_details([index_of[spaths[i].layer] for i in range(state.n_fixed)], len(used),
                               [px.cpu().numpy() for px in covered_pixels(state.points, w, h)],
                               state.n_fixed) if details else []
        for k, li in enumerate(used):
            mine = [d for d, o in zip(details, owner) if o == k]
            name = layer_name(li, layering).split(" ", 1)[1]
            scene.layers.append(Layer(f"{k + 1:0{width}d} {name}", shapes[k] + mine, f"layer{k + 1}",
                                      len(shapes[k]) if mine else None))
    elif details:
        scene.layers.append(Layer(f"{1:0{width}d} Details", details, "layer1"))
    metrics = scene_metrics([p.to(dev) for p in scene.point_list()], scene.colors().to(dev), target_c, target_a)
    metrics.update(paths=float(scene.num_paths), layers=float(len(scene.layers)), budget=float(cfg.paths),
                   refine_rounds=float(state.rounds), **seg.metrics)
    notes = [f"{int(scene.num_paths)} of {cfg.paths} paths used: {state.stop_reason}"] if state.stop_reason else []
    metrics["_notes"] = seg.notes + notes  # segmenter fallbacks first
    return scene, metrics


# what the stages import on first use (they import lazily, so that ``import lvss`` stays cheap):
# scipy.ndimage and scikit-image's filters alone take about 1 s on a small CPU
_FIRST_USE = ("lvss.simplify.classical", "lvss.segment.classical", "lvss.layering", "lvss.fit",
              "lvss.optimize.refine", "lvss.optimize.structure", "lvss.svg", "lvss.compact",
              "scipy.ndimage", "scipy.sparse", "skimage.morphology",
              "skimage.measure", "skimage.segmentation", "skimage.draw")


def preload() -> list[str]:
    """Import what the pipeline's stages load on first use, so that a long-running process (the
    server) does not charge it to its first job. Returns the modules imported."""
    import importlib

    for name in _FIRST_USE:
        importlib.import_module(name)
    return list(_FIRST_USE)


def vectorize(image: Any, cfg: VectorizeConfig | None = None, progress: ProgressCallback | None = None,
              cancel: threading.Event | None = None) -> Scene:
    """Vectorize an image into a layered :class:`~lvss.scene.Scene` (see :func:`run`)."""
    return run(image, cfg, progress, cancel).scene
