"""Typed configuration: one frozen dataclass per stage, composed into :class:`VectorizeConfig`.

Dicts, CLI flags and protobuf messages are converted to these at the edges (``cli.py``, ``server/``);
core code only ever sees these objects.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any


class ConfigError(ValueError):
    """An option has a value the pipeline cannot use; the message names the option."""


@dataclass(frozen=True)
class SimplifyConfig:
    """Simplification sequence: the original plus ``levels`` coarser images.

    method: "auto" | "classical" | "sds".
    """

    method: str = "auto"
    levels: int = 4
    # classical (edge-preserving smoothing + quantisation)
    smooth_strength: float = 1.0
    # SDS (diffusers). Level k is the image after k * sds_iterations_per_level iterations, so a run
    # costs levels * sds_iterations_per_level UNet + VAE passes (about 42 s each on a 2-core CPU at 512 px).
    sd_model: str | None = None
    sds_iterations_per_level: int = 20  # lvss default: 80 iterations for the default 4 levels
    # diffusion time sampled per iteration, as fractions of the training schedule; lvss's choice (low
    # to middle noise: removes detail, keeps layout), not taken from a reference implementation
    sds_t_range: tuple[float, float] = (0.05, 0.5)
    sds_lr: float = 0.01  # Adam step on the pixels (RGB in [0, 1]); lvss's choice
    sds_guidance_size: int = 512  # long side (px) the image is resampled to for the VAE: SD 1.x's native size


@dataclass(frozen=True)
class SegmentConfig:
    """Segmentation of each level into masks.

    method: "auto" | "classical" | "sam".
    min_area: masks smaller than this fraction of the image are dropped (and, in layered mode, pieces of
    a mask smaller than it get no path).
    """

    method: str = "auto"
    min_area: float = 0.0005
    # SAM (segment-anything)
    sam_checkpoint: str | None = None
    sam_points_per_side: int = 32  # prompt grid density; cost grows with its square
    sam_pred_iou_thresh: float = 0.88  # segment-anything's generator default
    sam_stability_score_thresh: float = 0.95  # segment-anything's generator default
    # crop layers (segment-anything's crop_n_layers): layer i adds (2^i)^2 overlapping crops of an image
    # larger than SAM's input (the original), each seen at that size with the full prompt grid and
    # costing as much as a level; 0 = the whole image only
    sam_crop_layers: int = 0


@dataclass(frozen=True)
class SaliencyConfig:
    """Where the importance map comes from.

    source: "auto" | "clip" | "mask" | "none"; ``mask_path`` is used with "mask".
    """

    source: str = "auto"
    prompt: str = ""
    mask_path: str | None = None
    clip_model: str | None = None


@dataclass(frozen=True)
class OptimizeConfig:
    """Path optimisation (stage I structure, stage II refinement)."""

    structure_iters: int = 20      # at most; each stage stops earlier once its loss levels off
    refine_iters: int = 24         # detail paths: steps per stage (see refine_rounds); the polish fits last
    structure_lr: float = 0.3      # contour-fitted paths start near their masks: small steps
    structure_scale: float = 0.5   # the structure stage works at this fraction of the working size
    refine_scale: float = 1.0      # refinement rounds work at this fraction (the polish at full size)
    stop_tol: float = 0.0          # stop when the loss improved less than this (relative) ...
    stop_patience: int = 8         # ... over this many steps (stop_tol 0: always run every step)
    structure_share: float = 0.7  # at most this share of the path budget goes to structural paths
    point_lr: float = 1.0
    color_lr: float = 0.01
    overlap_weight: float = 0.1
    # refinement climbs a ladder of path counts (16, 32, 64, ... then the budget; lvss.optimize.refine
    # budget_stages), in refine_rounds rounds per stage, so that a larger budget retraces a smaller one
    refine_rounds: int = 2
    first_stage_rounds: int = 4    # rounds of the first stage (at least refine_rounds)
    refill_rounds: int = 2         # extra rounds that re-spend budget freed by pruning
    freeze_structure_colours: bool = True   # within a refinement round (solved between rounds)
    polish_iters: int = 80         # last: every path's points and colours move together, full size
    polish_lr: float = 0.2         # pixels per step at the start of the polish
    polish_coarse: float = 0.0     # share of the polish's steps taken first at half size
    prune_every: int = 50
    prune_area: float = 4.0  # visible pixels (working resolution) below which a path is pruned
    # clean geometry (lvss.geometry): every path stays a simple loop while it is optimised, and paths
    # enclosing less than hair_area of the canvas or thinner than hair_width pixels (2 x area /
    # perimeter) are pruned as hairs
    simple_paths: bool = True
    hair_area: float = 0.0002
    hair_width: float = 0.5
    dp_epsilon: float = 1.5  # Douglas–Peucker tolerance, pixels at working resolution
    # gradient fills (lvss/optimize/fills.py): "flat" | "linear" | "radial" | "auto"
    fill: str = "flat"
    fill_iters: int = 25     # joint optimisation steps once the gradients are chosen
    fill_cost: float = 0.0005  # auto: a gradient must buy >= this share of the flat paths' mean error drop per byte


@dataclass(frozen=True)
class CompactConfig:
    """Compact mode (recolouring-based mask merging)."""

    # share of the path budget for merged regions (the rest: detail circles). None: adaptive, the split
    # follows the picture and the budget (lvss/compact/budget.py); 0.4 is the recolouring paper's split
    structural_ratio: float | None = None
    rounds: int = 10
    lambda_wmse: float = 1.0
    lambda_wtv: float = 0.1
    lambda_ent: float = 0.01
    lambda_c: float = 0.1
    lambda_d: float = 0.01
    detail_radius: float = 5.0
    stage1_steps: int = 100        # Adam steps of stage I (palette + assignment) per round
    stage2_steps: int = 50         # Adam steps of stage II (assignment only) per round
    lr: float = 0.01               # Adam learning rate of both stages (held, then decayed)
    merge_tol: float = 0.02        # adjacent masks whose recoloured RGB differ by less merge
    tv_control: str = "fixed"      # TV weight per round: "fixed" (λ_wtv as is) or "fusion" (controller)
    # the mask soup: superpixels (SLIC, about this many segments per scale at the working size) with
    # the segmenter's masks; their common refinement is the partition the merge starts from
    superpixels: tuple[int, ...] = (48, 160, 480)
    max_masks: int = 400           # finer partitions are first merged greedily down to this
    simplified_levels: bool = False  # the simplification levels' masks join the soup (partitions of their own)
    # paths: each region's contour (Douglas-Peucker tolerance, px) grown this many px under the regions
    # in front of it (no gaps between neighbours); of each round's detail circles this share goes where
    # the error is largest, the rest is sampled by saliency
    contour_epsilon: float = 0.75
    underlap: int = 3
    holes: bool = True             # regions a path encloses stay out of its shape (it covers what it shows)
    error_share: float = 0.0
    path_rounds: int = 4           # the path stage: rounds of detail circles ...
    path_steps: int = 115          # ... and Adam steps over all of them (every path moves)


# --quality presets: the default path budget (when none is given), the working size and the
# optimisation effort. "balanced" is OptimizeConfig's defaults; the figures each preset gives on
# this project's reference machine are in the README (bench/speed.py, bench/quality.py).
QUALITY_PRESETS: dict[str, dict[str, Any]] = {
    "fast": dict(paths=64, work_size=256, levels=3,
                 optimize=dict(structure_iters=20, structure_scale=0.5, refine_iters=12, refine_scale=0.5,
                               refine_rounds=2, first_stage_rounds=3, refill_rounds=1, polish_iters=30),
                 compact=dict(path_rounds=3, path_steps=60)),
    "balanced": dict(paths=128, work_size=256, optimize={}),
    "best": dict(paths=256, work_size=256,
                 optimize=dict(structure_iters=60, structure_scale=1.0, refine_iters=90, refine_scale=1.0,
                               refine_rounds=3, first_stage_rounds=6, refill_rounds=3, freeze_structure_colours=False,
                               polish_iters=100),
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


MODES = ("layered", "compact")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class VectorizeConfig:
    """Everything ``lvss.vectorize`` needs.

    paths: path budget N (the SVG has at most N paths).
    work_size: long side in pixels of the working resolution (optimisation happens there).
    """

    paths: int = 128
    mode: str = "layered"
    seed: int = 0
    device: str = "auto"
    work_size: int = 256
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


def validate(cfg: VectorizeConfig) -> None:
    """Raise :class:`ConfigError` naming the first option that is out of range."""
    if not isinstance(cfg.paths, int) or isinstance(cfg.paths, bool) or cfg.paths <= 0:
        raise ConfigError(f"paths must be a positive integer (the path budget), got {cfg.paths!r}")
    if cfg.mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {cfg.mode!r}")
    if cfg.device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    if not isinstance(cfg.work_size, int) or cfg.work_size < 16:
        raise ConfigError(f"work_size must be an integer >= 16 pixels, got {cfg.work_size!r}")
    if cfg.simplify.levels < 0 or cfg.simplify.levels > 10:
        raise ConfigError(f"levels must be between 0 and 10, got {cfg.simplify.levels}")
    if cfg.compact.structural_ratio is not None and not 0.0 <= cfg.compact.structural_ratio <= 1.0:
        raise ConfigError(f"structural_ratio must be within [0, 1], got {cfg.compact.structural_ratio}")
    if not 0.0 < cfg.optimize.structure_share <= 1.0:
        raise ConfigError(f"structure_share must be within (0, 1], got {cfg.optimize.structure_share}")
    if cfg.optimize.structure_iters < 0 or cfg.optimize.refine_iters < 0 or cfg.optimize.polish_iters < 0:
        raise ConfigError("structure_iters, refine_iters and polish_iters must be >= 0")
    if cfg.optimize.refine_rounds < 1 or cfg.optimize.first_stage_rounds < 1 or cfg.optimize.refill_rounds < 0:
        raise ConfigError("refine_rounds and first_stage_rounds must be >= 1 and refill_rounds >= 0, got "
                          f"{cfg.optimize.refine_rounds}, {cfg.optimize.first_stage_rounds} and "
                          f"{cfg.optimize.refill_rounds}")
    if not cfg.optimize.polish_lr > 0:
        raise ConfigError(f"polish_lr must be > 0 (pixels per step), got {cfg.optimize.polish_lr}")
    if not 0.0 <= cfg.optimize.polish_coarse < 1.0:
        raise ConfigError(f"polish_coarse must be within [0, 1) (share of the polish's steps at half size), "
                          f"got {cfg.optimize.polish_coarse}")
    if cfg.optimize.fill not in ("flat", "linear", "radial", "auto"):
        raise ConfigError(f"fill must be one of flat, linear, radial, auto (CLI --fill), got {cfg.optimize.fill!r}")
    if not isinstance(cfg.optimize.fill_iters, int) or cfg.optimize.fill_iters < 0 or cfg.optimize.fill_cost < 0:
        raise ConfigError("fill_iters must be an integer >= 0 and fill_cost >= 0")
    if cfg.compact.path_rounds < 1 or cfg.compact.path_steps < 0:
        raise ConfigError(f"compact path_rounds must be >= 1 and path_steps >= 0, got {cfg.compact.path_rounds} "
                          f"and {cfg.compact.path_steps}")
    if cfg.compact.rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {cfg.compact.rounds}")
    if cfg.compact.tv_control not in ("fusion", "fixed"):
        raise ConfigError(f"compact.tv_control must be 'fusion' or 'fixed', got {cfg.compact.tv_control!r}")
    if cfg.compact.stage1_steps < 0 or cfg.compact.stage2_steps < 0:
        raise ConfigError("compact.stage1_steps and compact.stage2_steps must be >= 0")
    if any(not isinstance(k, int) or k < 1 for k in cfg.compact.superpixels):
        raise ConfigError(f"compact.superpixels must be positive segment counts, got {cfg.compact.superpixels!r}")
    if not 0.0 <= cfg.compact.error_share <= 1.0:
        raise ConfigError(f"compact.error_share must be within [0, 1], got {cfg.compact.error_share}")
    if not isinstance(cfg.compact.underlap, int) or cfg.compact.underlap < 0 or not cfg.compact.contour_epsilon > 0:
        raise ConfigError("compact.underlap must be an integer >= 0 (pixels) and compact.contour_epsilon > 0")
    _check_int(cfg.segment.sam_points_per_side, 1, 256, "sam_points_per_side (CLI --sam-points-per-side)")
    _check_int(cfg.segment.sam_crop_layers, 0, 3, "sam_crop_layers (CLI --sam-crop-layers)")
    _check_int(cfg.simplify.sds_iterations_per_level, 1, 1000,
               "sds_iterations_per_level (CLI --sds-iterations)")
    _check_int(cfg.simplify.sds_guidance_size, 16, 2048, "sds_guidance_size (CLI --sds-guidance-size)")


def _check_int(value: Any, lo: int, hi: int, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be an integer between {lo} and {hi}, got {value!r}")


def to_dict(obj: Any) -> dict:
    """A plain dict of a config (nested), for JSON and logs."""
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = to_dict(v) if hasattr(v, "__dataclass_fields__") else v
    return out
