"""Typed configuration: one frozen dataclass per stage, composed into :class:`VectorizeConfig`.

Dicts, CLI flags and protobuf messages are converted to these at the edges (``cli.py``, ``server/``);
core code only ever sees these objects.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar


class ConfigError(ValueError):
    """An option has a value the pipeline cannot use; the message names the option."""


# ---------------------------------------------------------------------------------------------
# Every field declares what it accepts once, in its metadata (the helpers below); :func:`check`
# validates any config from that metadata alone. Kinds: "int" (an integer, not a bool, in
# ``range``), "float" (a finite real number in ``range``, each end closed or open), "choice" (one of
# ``choices``), "bool", "text" (a string; ``optional``: or None), "float_pair" (two "float"s, low <=
# high) and "int_tuple" (integers each in ``range``). ``cli``: the command-line flag, named in errors;
# ``metavar``: how the flag's value is written in --help. ``help`` is the flag's help (lvss.options
# generates the command line, the server's request checks and the editors' drift test from all this;
# docs/options.md says how to add an option).
# ---------------------------------------------------------------------------------------------
MODES = ("layered", "compact")
DEVICES = ("auto", "cpu", "cuda")
SIMPLIFY_METHODS = ("auto", "sds", "classical")
SEGMENT_METHODS = ("auto", "sam", "classical")
SALIENCY_SOURCES = ("auto", "clip", "mask", "none")
FILL_MODES = ("flat", "linear", "radial", "auto")   # lvss.optimize.fills has the same tuple (a test checks)
TV_CONTROLS = ("fixed", "fusion")
SEED_MAX = 2**31 - 1  # the server's and the Inkscape extension's bound too
INF = math.inf


def _meta(kind: str, help: str, cli: str | None, metavar: str | None = None, **extra: Any) -> dict:
    return dict(kind=kind, help=help, cli=cli, metavar=metavar, **extra)


def integer(default: int, lo: int, hi: int, help: str, cli: str | None = None, metavar: str | None = None):
    """An integer field in [lo, hi]."""
    return field(default=default, metadata=_meta("int", help, cli, metavar, range=(lo, hi)))


def real(default: float | None, lo: float, hi: float, help: str, cli: str | None = None,
         open: tuple[bool, bool] = (False, False), optional: bool = False, metavar: str | None = None):
    """A finite real field in [lo, hi] (``open``: which ends are excluded); -INF/INF: no bound;
    ``optional``: or None."""
    return field(default=default, metadata=_meta("float", help, cli, metavar, range=(lo, hi), open=open,
                                                  optional=optional))


def choice(default: str, choices: tuple[str, ...], help: str, cli: str | None = None,
           prefixes: dict[str, str] | None = None, metavar: str | None = None):
    """One of ``choices``; or, with ``prefixes`` ({prefix: how it is written}, e.g. {"mask:": "mask:FILE"}),
    a prefix followed by some text."""
    return field(default=default, metadata=_meta("choice", help, cli, metavar, choices=choices,
                                                  prefixes=prefixes or {}))


def flag(default: bool, help: str, cli: str | None = None):
    return field(default=default, metadata=_meta("bool", help, cli))


def text(default: str | None, help: str, cli: str | None = None, optional: bool = False,
         metavar: str | None = None):
    return field(default=default, metadata=_meta("text", help, cli, metavar, optional=optional))


def real_pair(default: tuple[float, float], lo: float, hi: float, help: str, cli: str | None = None,
              open: tuple[bool, bool] = (False, False)):
    """(low, high), each a finite real in [lo, hi] (``open`` as for :func:`real`), low <= high."""
    return field(default=default, metadata=_meta("float_pair", help, cli, range=(lo, hi), open=open))


def integers(default: tuple[int, ...], lo: int, hi: int, help: str, cli: str | None = None):
    """A tuple of integers, each in [lo, hi]."""
    return field(default=default, metadata=_meta("int_tuple", help, cli, range=(lo, hi)))


def _fmt(x: float) -> str:
    if x in (INF, -INF):
        return "inf" if x > 0 else "-inf"
    return str(int(x)) if x == int(x) else f"{x:g}"


def allowed(meta: dict) -> str:
    """What a field accepts, in words ("an integer between 0 and 10", "one of flat, linear", ...)."""
    kind = meta["kind"]
    if kind == "choice":
        return "one of " + ", ".join(meta["choices"]) + "".join(f" or {f}" for f in meta["prefixes"].values())
    if kind == "bool":
        return "True or False"
    if kind == "text":
        return "a string or None" if meta["optional"] else "a string"
    lo, hi = meta["range"]
    if kind in ("int", "int_tuple"):
        what = "an integer" if kind == "int" else "integers"
        return f"{what} between {lo} and {hi}"
    lo_open, hi_open = meta["open"]
    unbounded = lo == -INF and hi == INF
    interval = f"{'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"
    if kind == "float":
        return ("a finite number" if unbounded else f"a number in {interval}") + (" or None" if meta.get("optional") else "")
    return "two finite numbers, low <= high" if unbounded else f"two numbers low <= high, each in {interval}"


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _in_real_range(v: Any, meta: dict) -> bool:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return False
    try:
        x = float(v)
    except (OverflowError, ValueError):
        return False
    if not math.isfinite(x):
        return False
    (lo, hi), (lo_open, hi_open) = meta["range"], meta["open"]
    return (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)


def _ok(value: Any, meta: dict) -> bool:
    kind = meta["kind"]
    if kind == "int":
        lo, hi = meta["range"]
        return _is_int(value) and lo <= value <= hi
    if kind == "float":
        return (value is None and meta.get("optional", False)) or _in_real_range(value, meta)
    if kind == "choice":
        return isinstance(value, str) and (value in meta["choices"] or any(
            value.startswith(p) and len(value) > len(p) for p in meta["prefixes"]))
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "text":
        return isinstance(value, str) or (meta["optional"] and value is None)
    if kind == "float_pair":
        return (isinstance(value, (tuple, list)) and len(value) == 2
                and all(_in_real_range(x, meta) for x in value) and value[0] <= value[1])
    if kind == "int_tuple":
        lo, hi = meta["range"]
        return isinstance(value, (tuple, list)) and all(_is_int(k) and lo <= k <= hi for k in value)
    raise AssertionError(f"unknown field kind {kind!r}")


def _shown(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def refusal_text(name: str, meta: dict, value: Any, note: str = "") -> str:
    """The one line that refuses ``value`` for the option ``name``: what it accepts (``note`` after
    that, e.g. its flag), then the value given. The config, the command line and the server say this."""
    return f"{name} must be {allowed(meta)}{note}, got {_shown(value)}"


def check(cfg: Any) -> None:
    """Validate every field of a config dataclass (nested sections too) from its metadata; raise
    :class:`ConfigError` with one line naming the first bad option and what it accepts."""
    section = getattr(cfg, "_section", "")
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        meta = f.metadata
        if "kind" not in meta:  # a nested section: must be that section's config class
            cls = _SECTIONS[f.name]
            if not isinstance(value, cls):
                raise ConfigError(f"{f.name} must be a {cls.__name__}, got {_shown(value)}")
            check(value)
            continue
        if not _ok(value, meta):
            name = f"{section}.{f.name}" if section else f.name
            raise ConfigError(refusal_text(name, meta, value, f" (CLI {meta['cli']})" if meta["cli"] else ""))


@dataclass(frozen=True)
class SimplifyConfig:
    """Simplification sequence: the original plus ``levels`` coarser images.

    method: "auto" | "classical" | "sds".
    """

    _section: ClassVar[str] = "simplify"
    method: str = choice("auto", SIMPLIFY_METHODS, "simplification: score distillation with Stable Diffusion "
                         "(sds, needs --sd-model) or classical; auto: sds when a model is configured",
                         "--simplifier")
    levels: int = integer(4, 0, 10, "coarser simplification levels", "--levels", metavar="L")
    # classical (edge-preserving smoothing + quantisation)
    smooth_strength: float = real(1.0, 0.0, 100.0, "classical smoothing strength (> 0)", open=(True, False))
    # SDS (diffusers). Level k is the image after k * sds_iterations_per_level iterations, so a run
    # costs levels * sds_iterations_per_level UNet + VAE passes (about 42 s each on a 2-core CPU at 512 px).
    sd_model: str | None = text(None, "Stable Diffusion 1.x/2.x in diffusers layout (folder or hub id); "
                                "environment LVSS_SD_MODEL", "--sd-model", optional=True, metavar="DIR|HUB_ID")
    sds_iterations_per_level: int = integer(20, 1, 1000, "SDS: iterations per simplification level",
                                            "--sds-iterations", metavar="N")  # 80 for 4 levels
    # diffusion time sampled per iteration, as fractions of the training schedule; lvss's choice (low
    # to middle noise: removes detail, keeps layout), not taken from a reference implementation
    sds_t_range: tuple[float, float] = real_pair((0.05, 0.5), 0.0, 1.0, "diffusion times sampled, as fractions "
                                                 "of the schedule", open=(True, True))
    sds_lr: float = real(0.01, 0.0, 10.0, "Adam step on the pixels (RGB in [0, 1]); lvss's choice",
                         open=(True, False))
    sds_guidance_size: int = integer(512, 16, 2048, "SDS: long side the image is resampled to for Stable "
                                     "Diffusion (512: SD 1.x's native size); smaller is faster and coarser",
                                     "--sds-guidance-size", metavar="PX")

    def __post_init__(self) -> None:
        check(self)


@dataclass(frozen=True)
class SegmentConfig:
    """Segmentation of each level into masks.

    method: "auto" | "classical" | "sam".
    min_area: masks smaller than this fraction of the image are dropped (and, in layered mode, pieces of
    a mask smaller than it get no path).
    """

    _section: ClassVar[str] = "segment"
    method: str = choice("auto", SEGMENT_METHODS, "segmentation: SAM (needs --sam-checkpoint) or classical; "
                         "auto: SAM when a checkpoint is configured", "--segmenter")
    min_area: float = real(0.0005, 0.0, 1.0, "smallest mask, as a fraction of the image", open=(False, True))
    # SAM (segment-anything)
    sam_checkpoint: str | None = text(None, "segment-anything checkpoint (.pth); environment LVSS_SAM_CHECKPOINT",
                                      "--sam-checkpoint", optional=True, metavar="PATH|REPO:FILE|URL")
    sam_points_per_side: int = integer(32, 1, 256, "SAM: prompt grid of N x N points per level; the time per "
                                       "level grows with N squared", "--sam-points-per-side", metavar="N")
    # segment-anything's generator defaults; thresholds on the model's own scores, which it does not
    # bound (tests use -1e9 / 1e9 to keep every mask / none): any finite number
    sam_pred_iou_thresh: float = real(0.88, -INF, INF, "SAM: keep masks whose predicted IoU is at least this")
    sam_stability_score_thresh: float = real(0.95, 0.0, 1.0, "SAM: keep masks at least this stable (an IoU)")
    # crop layers (segment-anything's crop_n_layers): layer i adds (2^i)^2 overlapping crops of an image
    # larger than SAM's input (the original), each seen at that size with the full prompt grid and
    # costing as much as a level; 0 = the whole image only
    sam_crop_layers: int = integer(0, 0, 3, "SAM: also segment N layers of overlapping crops of a large "
                                   "original (layer i: (2^i)^2 crops, each at SAM's input size) for finer masks; "
                                   "0 = whole image only; each crop costs as much as a level (4 more for N=1, "
                                   "20 for N=2)", "--sam-crop-layers", metavar="N")

    def __post_init__(self) -> None:
        check(self)


@dataclass(frozen=True)
class SaliencyConfig:
    """Where the importance map comes from.

    source: "auto" | "clip" | "mask" | "none"; ``mask_path`` is used with "mask".
    """

    _section: ClassVar[str] = "saliency"
    # "mask:FILE" (the CLI's spelling) is accepted too: mask saliency from FILE
    source: str = choice("auto", SALIENCY_SOURCES, "importance map: CLIP relevance of --prompt (needs "
                         "--clip-model), a mask image (mask:FILE, white = important), or none", "--saliency",
                         prefixes={"mask:": "mask:FILE"}, metavar="clip|mask:FILE|none|auto")
    prompt: str = text("", "text describing what matters in the image (CLIP saliency)", "--prompt")
    mask_path: str | None = text(None, "compact/refinement: mask image, white = important", "--saliency-mask",
                                 optional=True, metavar="FILE")
    clip_model: str | None = text(None, "CLIP model (transformers; folder or hub id); environment LVSS_CLIP_MODEL",
                                  "--clip-model", optional=True, metavar="DIR|HUB_ID")

    def __post_init__(self) -> None:
        check(self)


@dataclass(frozen=True)
class OptimizeConfig:
    """Path optimisation (stage I structure, stage II refinement)."""

    _section: ClassVar[str] = "optimize"
    # at most; each stage stops earlier once its loss levels off
    structure_iters: int = integer(20, 0, 100_000, "optimisation steps of the structure stage",
                                   "--structure-iters", metavar="N")
    # detail paths: steps per stage (see refine_rounds); the polish fits last
    refine_iters: int = integer(24, 0, 100_000, "optimisation steps of refinement per rung of the path ladder "
                                "(16, 32, 64, ...)", "--refine-iters", metavar="N")
    # contour-fitted paths start near their masks: small steps
    structure_lr: float = real(0.3, 0.0, 100.0, "structure stage step size", open=(True, False))
    # the structure stage works at this fraction of the working size
    structure_scale: float = real(0.5, 0.0, 1.0, "structure stage scale (fraction of the working size)",
                                  open=(True, False))
    # refinement rounds work at this fraction (the polish at full size)
    refine_scale: float = real(1.0, 0.0, 1.0, "refinement scale (fraction of the working size)", open=(True, False))
    stop_tol: float = real(0.0, 0.0, 1.0, "stop when the loss improved less than this (relative) ...")
    stop_patience: int = integer(8, 1, 100_000, "... over this many steps (stop_tol 0: always run every step)")
    # at most this share of the path budget goes to structural paths
    structure_share: float = real(0.7, 0.0, 1.0, "share of the budget for structural paths", open=(True, False))
    point_lr: float = real(1.0, 0.0, 100.0, "refinement step size of the points", open=(True, False))
    color_lr: float = real(0.01, 0.0, 10.0, "refinement step size of the colours", open=(True, False))
    overlap_weight: float = real(0.1, 0.0, 1000.0, "weight of the overlap penalty")
    # refinement climbs a ladder of path counts (16, 32, 64, ... then the budget; lvss.optimize.refine
    # budget_stages), in refine_rounds rounds per stage, so that a larger budget retraces a smaller one
    refine_rounds: int = integer(2, 1, 1000, "refinement rounds per stage of the ladder")
    first_stage_rounds: int = integer(4, 1, 1000, "rounds of the first stage (at least refine_rounds)")
    refill_rounds: int = integer(2, 0, 1000, "extra rounds that re-spend budget freed by pruning")
    # within a refinement round (solved between rounds)
    freeze_structure_colours: bool = flag(True, "structural paths' colours stay fixed within a round")
    # last: every path's points and colours move together, full size
    polish_iters: int = integer(120, 0, 100_000, "last optimisation steps moving every path, structure included, "
                                "against the image at full size (0 = off)", "--polish-iters", metavar="N")
    polish_lr: float = real(0.2, 0.0, 1000.0, "pixels per step at the start of the polish", open=(True, False))
    polish_coarse: float = real(0.0, 0.0, 1.0, "share of the polish's steps taken first at half size",
                                open=(False, True))
    # midway through the polish this share of all segments, where the picture is furthest from the
    # target, is halved (lvss.optimize.subdivide)
    polish_split: float = real(0.05, 0.0, 1.0, "share of the segments halved halfway through the polish, where "
                               "the picture is furthest from the target (0 = off)")
    # inputs larger than the working size: a last polish against the input's own pixels, downscaled
    # to polish_size on the long side where larger (layered mode)
    polish_size: int = integer(1024, 16, 16384, "long side (pixels) of the last polish at the input's own size")
    # 10 steps at a step size set in working pixels move an edge about a quarter of a working pixel;
    # 30 place the edges of a 1024-px input 2-3 dB closer (docs/geometry.md)
    polish_full_iters: int = integer(30, 0, 100_000, "steps of the last polish at the input's own size (0 = off)")
    prune_every: int = integer(50, 0, 100_000, "prune invisible paths every this many steps (0 = never)")
    # visible pixels (working resolution) below which a path is pruned
    prune_area: float = real(4.0, 0.0, 1e6, "visible pixels below which a path is pruned")
    # clean geometry (lvss.geometry): every path stays a simple loop while it is optimised, and paths
    # enclosing less than hair_area of the canvas or thinner than hair_width pixels (2 x area /
    # perimeter) are pruned as hairs
    simple_paths: bool = flag(True, "keep every path a simple loop while it is optimised")
    hair_area: float = real(0.0002, 0.0, 0.1, "paths enclosing less than this share of the canvas are hairs")
    hair_width: float = real(0.5, 0.0, 100.0, "paths thinner than this (pixels, 2 x area / perimeter) are hairs")
    # Douglas–Peucker tolerance, pixels at working resolution
    dp_epsilon: float = real(1.5, 0.0, 100.0, "Douglas-Peucker tolerance (pixels)", open=(True, False))
    # gradient fills (lvss/optimize/fills.py): "flat" | "linear" | "radial" | "auto"
    fill: str = choice("flat", FILL_MODES, "path fills: flat colours, linear or radial gradients on every path, "
                       "or auto: a gradient only where it lowers the error enough to be worth its bytes", "--fill")
    fill_iters: int = integer(25, 0, 100_000, "joint optimisation steps once the gradients are chosen")
    # auto: a gradient must buy >= this share of the flat paths' mean error drop per byte
    fill_cost: float = real(0.0005, 0.0, 1.0, "auto fills: error drop a gradient must buy per byte")

    def __post_init__(self) -> None:
        check(self)


@dataclass(frozen=True)
class CompactConfig:
    """Compact mode (recolouring-based mask merging)."""

    _section: ClassVar[str] = "compact"
    # share of the path budget for merged regions (the rest: detail circles). None: adaptive, the split
    # follows the picture and the budget (lvss/compact/budget.py); 0.4 is the recolouring paper's split
    structural_ratio: float | None = real(None, 0.0, 1.0, "compact mode: share of the budget for merged structure "
                                          "(default: adaptive, following the picture and the budget; 0.4 is the "
                                          "recolouring paper's split)", "--structural-ratio", optional=True,
                                          metavar="R")
    rounds: int = integer(10, 1, 1000, "compact mode: merge rounds", "--rounds", metavar="N")
    lambda_wmse: float = real(1.0, 0.0, 1000.0, "weight of the weighted MSE")
    lambda_wtv: float = real(0.1, 0.0, 1000.0, "weight of the weighted total variation")
    lambda_ent: float = real(0.01, 0.0, 1000.0, "weight of the assignment entropy")
    lambda_c: float = real(0.1, 0.0, 1000.0, "weight of the palette term")
    lambda_d: float = real(0.01, 0.0, 1000.0, "weight of the detail term")
    detail_radius: float = real(5.0, 0.0, 1000.0, "radius of detail circles (pixels)", open=(True, False))
    # Adam steps of stage I (palette + assignment) per round
    stage1_steps: int = integer(100, 0, 100_000, "stage I steps per round")
    stage2_steps: int = integer(50, 0, 100_000, "stage II steps per round")  # assignment only
    lr: float = real(0.01, 0.0, 10.0, "Adam learning rate of both stages (held, then decayed)", open=(True, False))
    # adjacent masks whose recoloured RGB differ by less merge
    merge_tol: float = real(0.02, 0.0, 2.0, "merge adjacent masks whose recoloured RGB differ by less")
    # TV weight per round: "fixed" (λ_wtv as is) or "fusion" (controller)
    tv_control: str = choice("fixed", TV_CONTROLS, "TV weight per round")
    # the mask soup: superpixels (SLIC, about this many segments per scale at the working size) with
    # the segmenter's masks; their common refinement is the partition the merge starts from
    superpixels: tuple[int, ...] = integers((48, 160, 480), 1, 100_000, "SLIC segments per scale")
    # finer partitions are first merged greedily down to this
    max_masks: int = integer(400, 1, 100_000, "masks the partition is first merged down to")
    # the simplification levels' masks join the soup (partitions of their own)
    simplified_levels: bool = flag(False, "the simplification levels' masks join the soup")
    # paths: each region's contour (Douglas-Peucker tolerance, px) grown this many px under the regions
    # in front of it (no gaps between neighbours); of each round's detail circles this share goes where
    # the error is largest, the rest is sampled by saliency
    contour_epsilon: float = real(0.75, 0.0, 100.0, "contour tolerance (pixels)", open=(True, False))
    underlap: int = integer(3, 0, 100, "pixels a path grows under the regions in front of it")
    # regions a path encloses stay out of its shape (it covers what it shows)
    holes: bool = flag(True, "regions a path encloses stay out of its shape")
    # the budget ladder (lvss/compact/ladder.py): a run also makes the runs at the smaller budgets 16, 24,
    # 32, 48, ... and keeps the one whose SVG is closest to the image, so a larger budget never ends
    # worse; it costs the sum of those runs (about 4-4.5x one run at 256 paths), so the fast preset leaves it off
    budget_ladder: bool = flag(True, "compact mode: keep the best of the runs at every smaller budget too")
    error_share: float = real(0.0, 0.0, 1.0, "share of detail circles placed where the error is largest")
    path_rounds: int = integer(4, 1, 1000, "path stage: rounds of detail circles ...")
    path_steps: int = integer(115, 0, 100_000, "... and Adam steps over all of them (every path moves)")

    def __post_init__(self) -> None:
        check(self)


# --quality presets: the default path budget (when none is given), the working size and the
# optimisation effort. "balanced" is OptimizeConfig's defaults; the figures each preset gives on
# this project's reference machine are in the README (bench/speed.py, bench/quality.py).
QUALITY_PRESETS: dict[str, dict[str, Any]] = {
    "fast": dict(paths=64, work_size=256, levels=3,
                 optimize=dict(structure_iters=20, structure_scale=0.5, refine_iters=12, refine_scale=0.5,
                               refine_rounds=2, first_stage_rounds=3, refill_rounds=1, polish_iters=30,
                               polish_split=0.0, polish_full_iters=10),
                 compact=dict(path_rounds=3, path_steps=60, budget_ladder=False)),
    "balanced": dict(paths=128, work_size=256, optimize={}),
    "best": dict(paths=256, work_size=256,
                 optimize=dict(structure_iters=60, structure_scale=1.0, refine_iters=90, refine_scale=1.0,
                               refine_rounds=3, first_stage_rounds=6, refill_rounds=3, freeze_structure_colours=False,
                               polish_iters=150, polish_full_iters=60),
                 compact=dict(path_rounds=4, path_steps=250)),
}


def check_quality(name: str) -> str:
    """``name`` when it is a preset of :data:`QUALITY_PRESETS`; ConfigError saying which are otherwise."""
    if name not in QUALITY_PRESETS:
        raise ConfigError(f"quality must be one of {', '.join(QUALITY_PRESETS)}, got {name!r}")
    return name


def apply_quality(cfg: "VectorizeConfig", name: str, paths_given: bool = False,
                  work_size_given: bool = False, levels_given: bool = True) -> "VectorizeConfig":
    """``cfg`` with the preset ``name`` applied; an explicitly given budget, working size or number of
    simplification levels wins (``levels_given`` False: the preset's levels, where it has them)."""
    pre = QUALITY_PRESETS[check_quality(name)]
    out = replace(cfg, optimize=replace(cfg.optimize, **pre["optimize"]))
    if not paths_given:
        out = replace(out, paths=pre["paths"])
    if not work_size_given:
        out = replace(out, work_size=pre["work_size"])
    if "compact" in pre:
        out = replace(out, compact=replace(out.compact, **pre["compact"]))
    if not levels_given and "levels" in pre:
        out = replace(out, simplify=replace(out.simplify, levels=pre["levels"]))
    return out


@dataclass(frozen=True)
class VectorizeConfig:
    """Everything ``lvss.vectorize`` needs.

    paths: path budget N (the SVG has at most N paths).
    work_size: long side in pixels of the working resolution (optimisation happens there).
    """

    paths: int = integer(128, 1, 100_000, "path budget: the SVG has at most N paths", "--paths", metavar="N")
    mode: str = choice("layered", MODES, "layered (semantic simplification) or compact (recolouring merge)",
                       "--mode")
    seed: int = integer(0, 0, SEED_MAX, "random seed (same input + seed = same SVG)", "--seed", metavar="S")
    device: str = choice("auto", DEVICES, "where to compute", "--device")
    work_size: int = integer(256, 16, 16384, "long side of the working resolution in pixels", "--work-size",
                             metavar="PX")
    simplify: SimplifyConfig = field(default_factory=SimplifyConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    saliency: SaliencyConfig = field(default_factory=SaliencyConfig)
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    compact: CompactConfig = field(default_factory=CompactConfig)

    def __post_init__(self) -> None:
        validate(self)

    def with_(self, **changes: Any) -> "VectorizeConfig":
        """A copy with top-level fields changed (``cfg.with_(paths=64)``)."""
        return replace(self, **changes)


_SECTIONS = {"simplify": SimplifyConfig, "segment": SegmentConfig, "saliency": SaliencyConfig,
             "optimize": OptimizeConfig, "compact": CompactConfig}


def validate(cfg: VectorizeConfig) -> None:
    """Raise :class:`ConfigError` naming the first option that is out of range (see :func:`check`)."""
    check(cfg)


def to_dict(obj: Any) -> dict:
    """A plain dict of a config (nested), for JSON and logs."""
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = to_dict(v) if hasattr(v, "__dataclass_fields__") else v
    return out
