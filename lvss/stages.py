"""Choosing each stage's implementation from the config.

``get_simplifier`` / ``get_segmenter`` / ``get_saliency`` return callables with the
:mod:`lvss.types` Protocol signatures, so the pipeline never knows whether it got a learned or a
classical stage. ``"auto"`` means: the learned stage when its weights are configured (config field or
environment variable, see :mod:`lvss.models`), otherwise the classical one, which needs no weights.
Learned stages load their model when chosen (once per process, through the model cache).
"""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import inspect
import threading
from typing import Any, Callable

import numpy as np

from .config import SALIENCY_SOURCES, SEGMENT_METHODS, SIMPLIFY_METHODS, ConfigError, VectorizeConfig
from .models import ModelError, ModelSpec, model_dtype, model_spec, resolve_device, setting_hint
from .types import MaskSet, SaliencySource, SegmentedLevels, Segmenter, SimplifyResult, Simplifier

# SIMPLIFY_METHODS, SEGMENT_METHODS and SALIENCY_SOURCES: declared once, in lvss.config (imported above)


def _check(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _saliency_request(cfg: VectorizeConfig) -> tuple[str, str | None]:
    """(source, mask path); accepts the CLI spelling ``mask:FILE`` in ``saliency.source`` too."""
    src, path = cfg.saliency.source, cfg.saliency.mask_path
    if isinstance(src, str) and src.startswith("mask:"):
        src, path = "mask", src[len("mask:"):]
    return _check(src, SALIENCY_SOURCES, "saliency.source"), (path or None)


def simplify_choice(cfg: VectorizeConfig) -> tuple[str, ModelSpec | None, str]:
    """("sds" | "classical", model source, reason)."""
    method = _check(cfg.simplify.method, SIMPLIFY_METHODS, "simplify.method")
    spec = model_spec("sd", cfg.simplify.sd_model)
    if method == "auto":
        if spec is not None:
            return "sds", spec, "auto: Stable Diffusion weights are configured"
        return "classical", None, f"auto: no Stable Diffusion model set in {setting_hint('sd')}"
    return method, (spec if method == "sds" else None), "requested"


def segment_choice(cfg: VectorizeConfig) -> tuple[str, ModelSpec | None, str]:
    """("sam" | "classical", model source, reason)."""
    method = _check(cfg.segment.method, SEGMENT_METHODS, "segment.method")
    spec = model_spec("sam", cfg.segment.sam_checkpoint)
    if method == "auto":
        if spec is not None:
            return "sam", spec, "auto: a SAM checkpoint is configured"
        return "classical", None, f"auto: no SAM checkpoint set in {setting_hint('sam')}"
    return method, (spec if method == "sam" else None), "requested"


def saliency_choice(cfg: VectorizeConfig) -> tuple[str, ModelSpec | None, str]:
    """("clip" | "mask" | "none", model source, reason)."""
    source, path = _saliency_request(cfg)
    spec = model_spec("clip", cfg.saliency.clip_model)
    if source == "auto":
        if path:
            return "mask", None, "auto: a saliency mask is given"
        if spec is not None and cfg.saliency.prompt.strip():
            return "clip", spec, "auto: a CLIP model and a prompt are configured"
        why = "no prompt given" if spec is not None else f"no CLIP model set in {setting_hint('clip')}"
        return "none", None, f"auto: uniform map, {why}"
    return source, (spec if source == "clip" else None), "requested"


def get_simplifier(cfg: VectorizeConfig) -> Simplifier:
    """``simplifier(image (H, W, 3) float32, levels, seed) -> SimplifyResult``."""
    method, spec, _ = simplify_choice(cfg)
    if method == "classical":
        from .simplify.classical import simplify_classical

        return functools.partial(simplify_classical, cfg=cfg.simplify)
    from .models import load_sd, require_spec
    from .simplify.sds import SdsSimplifier

    spec = spec or require_spec("sd", cfg.simplify.sd_model)
    return SdsSimplifier(load_sd(spec, resolve_device(cfg.device)), cfg.simplify)


def get_segmenter(cfg: VectorizeConfig) -> Segmenter:
    """``segmenter(image (H, W, 3) float32, out_size=None, progress=None, cancel=None) -> MaskSet``;
    its ``input_size`` is the long side it works at best (SAM's encoder input, or the classical
    segmenter's limit)."""
    method, spec, _ = segment_choice(cfg)
    if method == "classical":
        from .segment.classical import ClassicalSegmenter

        return ClassicalSegmenter(cfg.segment)
    from .models import load_sam, require_spec
    from .segment.sam import SamSegmenter

    spec = spec or require_spec("sam", cfg.segment.sam_checkpoint)
    return SamSegmenter(load_sam(spec, resolve_device(cfg.device)), cfg.segment)


def get_saliency(cfg: VectorizeConfig) -> SaliencySource:
    """``source(image (H, W, 3) float32, prompt) -> (H, W) float32 in [0, 1]``."""
    source, _, _ = saliency_choice(cfg)
    if source == "none":
        from .saliency.maps import uniform_saliency

        return uniform_saliency
    if source == "mask":
        from .saliency.maps import MaskSaliency

        _, path = _saliency_request(cfg)
        if not path:
            raise ConfigError("saliency source 'mask' needs a mask image: set saliency.mask_path "
                              "(CLI --saliency mask:FILE)")
        return MaskSaliency(path)
    from .models import load_clip, require_spec
    from .saliency.clip_rollout import ClipSaliency

    spec = require_spec("clip", cfg.saliency.clip_model)
    return ClipSaliency(load_clip(spec, resolve_device(cfg.device)))


# --------------------------------------------------------------------------------------------------
# running the simplifier and the segmenter for the pipeline

StageProgress = Callable[[float, str], None]
"""progress(fraction of the stage done in [0, 1], message)."""


def _accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def simplify_levels(cfg: VectorizeConfig, image: np.ndarray, progress: StageProgress | None = None,
                    cancel: threading.Event | None = None, simplifier: Simplifier | None = None) -> SimplifyResult:
    """The simplification sequence of ``image`` ((H, W, 3) float32 RGB in [0, 1]): ``cfg.simplify.levels``
    coarser images after the original, with the configured simplifier (or ``simplifier``).

    Learned simplifiers report progress and honour ``cancel`` after every iteration (raising
    :class:`lvss.types.Cancelled`); the classical one reports when done.
    """
    from .types import check_cancel

    simplifier = simplifier or get_simplifier(cfg)
    check_cancel(cancel)
    kw: dict[str, Any] = {}
    if _accepts(simplifier, "progress") and progress is not None:
        kw["progress"] = lambda ev: progress(ev.fraction, ev.message)
    if _accepts(simplifier, "cancel"):
        kw["cancel"] = cancel
    result = simplifier(image, cfg.simplify.levels, cfg.seed, **kw)
    check_cancel(cancel)
    if progress is not None:
        progress(1.0, f"{len(result.levels) - 1} simplified levels")
    return result


def _as_rgb(source: np.ndarray, size: int) -> np.ndarray:
    """A full-resolution original ((H, W, 3|4) uint8, or float in [0, 1]) as straight RGB float32 with
    its long side at most ``size`` (never enlarged), by area (:func:`lvss.io.area_downscaled`: colour
    premultiplied by alpha, so transparent pixels do not bleed into the edges)."""
    from .io import area_downscaled

    a = np.asarray(source)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or min(a.shape[:2]) < 1:
        raise ValueError(f"source image must have shape (H, W, 3) or (H, W, 4), got {a.shape}")
    f = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else np.clip(a.astype(np.float32), 0.0, 1.0)
    if f.shape[2] == 3:
        f = np.concatenate([f, np.ones(f.shape[:2] + (1,), np.float32)], -1)
    H, W = f.shape[:2]
    s = min(1.0, size / max(H, W))
    return area_downscaled(f, (max(2, round(W * s)), max(2, round(H * s))))[0]


def resample_masks(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(K, H, W) bool masks to (K, h, w): a pixel is in a mask when at least half of it is covered."""
    import torch
    import torch.nn.functional as F

    masks = np.asarray(masks, bool)
    if masks.shape[1:] == tuple(size):
        return masks
    if len(masks) == 0:
        return np.zeros((0,) + tuple(size), bool)
    t = torch.from_numpy(masks).float()[:, None]
    t = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return (t[:, 0] >= 0.5).numpy()


def _run_segmenter(segmenter, image: np.ndarray, size: tuple[int, int], progress, cancel) -> MaskSet:
    kw: dict[str, Any] = {}
    if _accepts(segmenter, "out_size"):
        kw["out_size"] = size
    if progress is not None and _accepts(segmenter, "progress"):
        kw["progress"] = progress
    if _accepts(segmenter, "cancel"):
        kw["cancel"] = cancel
    ms = segmenter(image, **kw)
    if not isinstance(ms, MaskSet):
        raise TypeError(f"the segmenter returned {type(ms).__name__}, expected a MaskSet")
    if ms.masks.shape[1:] != tuple(size):
        ms = MaskSet(resample_masks(ms.masks, size), ms.scores, ms.colors)
        keep = ms.masks.reshape(len(ms), -1).any(1)
        ms = MaskSet(ms.masks[keep], ms.scores[keep], ms.colors[keep])
    return ms


def segment_levels(cfg: VectorizeConfig, levels: list[np.ndarray], source: np.ndarray | None = None,
                   progress: StageProgress | None = None, cancel: threading.Event | None = None,
                   segmenter: Segmenter | None = None) -> SegmentedLevels:
    """Masks of every level, at the working resolution.

    levels: the simplification sequence, (h, w, 3) float32 RGB in [0, 1] each, ``levels[0]`` the
    original at the working resolution. source: the full-resolution original ((H, W, 3|4) uint8 or
    float RGB in [0, 1]) when available: level 0 is then segmented from it at up to the segmenter's own
    input size (SAM: its encoder's 1024 px; classical: 512 px), never enlarged, and the masks are
    resampled to (h, w). Coarser levels are segmented as given.

    A level for which a learned segmenter finds no mask (flat or blank images, strict thresholds) is
    segmented again by the classical segmenter; each such level is named in ``notes`` and
    ``fallback_levels`` and reported through ``progress``. progress(fraction of the stage, message) is
    called inside every level; ``cancel`` is checked between prompt batches (raises
    :class:`lvss.types.Cancelled`).
    """
    from .types import check_cancel
    from .segment.classical import ClassicalSegmenter

    if not levels:
        raise ValueError("segment_levels needs at least one level (the original image)")
    h, w = levels[0].shape[:2]
    if any(lv.shape[:2] != (h, w) for lv in levels):
        raise ValueError(f"every level must have the working size {(h, w)}, got {[lv.shape[:2] for lv in levels]}")
    method = segment_choice(cfg)[0] if segmenter is None else "custom"
    segmenter = segmenter or get_segmenter(cfg)
    name = {"sam": "SAM", "classical": "the classical segmenter"}.get(method, "the segmenter")
    n = len(levels)
    out = SegmentedLevels([])

    def report(i: int, f: float, msg: str) -> None:
        if progress is not None:
            progress((i + min(max(f, 0.0), 1.0)) / n, f"level {i}: {msg}")

    for i, level in enumerate(levels):
        check_cancel(cancel)
        image = level
        if i == 0 and source is not None:
            size = int(getattr(segmenter, "input_size", 0) or max(h, w))
            image = _as_rgb(source, max(size, max(h, w)))
            if image.shape[0] * image.shape[1] <= h * w:  # no more detail than the working image
                image = level
        ms = _run_segmenter(segmenter, image, (h, w), lambda f, m, i=i: report(i, f, m), cancel)
        if len(ms) == 0 and method != "classical":
            why = f"{name} found no masks; used the classical segmenter"
            out.notes.append(f"level {i}: {why}")
            out.fallback_levels.append(i)
            report(i, 1.0, why)
            ms = _run_segmenter(ClassicalSegmenter(cfg.segment), level, (h, w), None, cancel)
        if len(ms) == 0:
            out.notes.append(f"level {i}: no masks")
            out.empty_levels.append(i)
        out.masksets.append(ms)
        report(i, 1.0, f"{len(ms)} masks")
    return out


_PACKAGES = {"sds": ("diffusers", "transformers"), "sam": ("segment_anything",), "clip": ("transformers",)}
_DIST = {"segment_anything": "segment-anything", "diffusers": "diffusers", "transformers": "transformers",
         "torch": "torch", "safetensors": "safetensors", "huggingface_hub": "huggingface_hub",
         "torchvision": "torchvision"}


def _version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return importlib.metadata.version(_DIST.get(module, module))
    except importlib.metadata.PackageNotFoundError:
        return "installed"


def _stage_entry(stage: str, spec: ModelSpec | None, reason: str, requested: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"stage": stage, "requested": requested, "reason": reason, "model": None}
    if spec is not None:
        entry["model"] = {"value": spec.value, "location": spec.location, "origin": spec.origin}
    problems = []
    for module in _PACKAGES.get(stage, ()):
        if importlib.util.find_spec(module) is None:
            problems.append(f"{_DIST[module]} is not installed (pip install 'lvss[models]')")
    if stage in _PACKAGES and spec is None:
        kind = {"sds": "sd", "sam": "sam", "clip": "clip"}[stage]
        problems.append(f"no weights configured: set {setting_hint(kind)}")
    if spec is not None and spec.location == "missing path":
        problems.append("the path does not exist")
    if problems:
        entry["problems"] = problems
    return entry


# What the learned stages cost on a CPU, measured on a shared 2-core x86 machine with full-size
# architectures and random weights (bench/models.py; compute does not depend on the weights' values).
CPU_COST = {
    "sds": "about {sds_s:.0f} s per SDS iteration at {size} px guidance: {iters} iterations ({levels} levels "
           "x {per}) take about {total} (measured at 512 px: 42 s per iteration, peak 7.9 GB)",
    "sam": "SAM ViT-B per level: image encoder about 45 s, then {points}² point prompts {sam_lo} to {sam_hi} "
           "(fewer to more masks passing the thresholds) on one thread, {total_lo} to {total_hi} for the {n} levels; "
           "ViT-H's encoder about 93 s, peak 6.3 GB",
}
_CPU_SDS_SECONDS_512 = 42.0  # per iteration at 512 px (VAE encode 14 s + its backward 15 s + UNet 10.5 s)
# CPU seconds per point prompt, lvss's decoder on one thread (bench/models.py --sam-cpu, ViT-B): 137.7 s
# and 201.0 s for 1024 prompts with the default thresholds and with every candidate kept
_CPU_SAM_SECONDS_PER_PROMPT = (0.134, 0.196)
_CPU_SAM_ENCODER_SECONDS = 45.0  # ViT-B image encoder, same run


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def cpu_cost(stage: str, cfg: VectorizeConfig) -> str:
    """One line on what ``stage`` ("sds" | "sam") costs on a CPU with ``cfg``'s settings, from
    measured figures; learned stages are meant for a GPU server."""
    sp, sg = cfg.simplify, cfg.segment
    if stage == "sds":
        per_it = _CPU_SDS_SECONDS_512 * (sp.sds_guidance_size / 512) ** 2
        iters = sp.levels * sp.sds_iterations_per_level
        text = CPU_COST["sds"].format(sds_s=per_it, size=sp.sds_guidance_size, iters=iters, levels=sp.levels,
                                      per=sp.sds_iterations_per_level, total=_duration(per_it * iters))
        if sp.sds_guidance_size != 512:
            text += "; other sizes scaled by area"
    elif stage == "sam":
        n = sg.sam_points_per_side ** 2
        lo, hi = (_duration(sec * n) for sec in _CPU_SAM_SECONDS_PER_PROMPT)
        levels = sp.levels + 1  # the original and every coarser level
        # crop layers: only a large original (level 0) is cropped, into up to this many extra images
        crops = sum(4 ** i for i in range(1, sg.sam_crop_layers + 1))
        t_lo, t_hi = (_duration((levels + crops) * (_CPU_SAM_ENCODER_SECONDS + sec * n))
                      for sec in _CPU_SAM_SECONDS_PER_PROMPT)
        text = CPU_COST["sam"].format(points=sg.sam_points_per_side, sam_lo=lo, sam_hi=hi, total_lo=t_lo,
                                      total_hi=t_hi, n=levels)
        if crops:
            text += (f"; with {sg.sam_crop_layers} crop layers a large original adds up to {crops} crops at "
                     "the cost of a level each (included)")
    else:
        raise ValueError(f"no CPU cost is known for stage {stage!r}; expected one of {', '.join(CPU_COST)}")
    return text + "; meant for a GPU server"


def describe_stages(cfg: VectorizeConfig) -> dict[str, Any]:
    """Which implementation each stage would use, on which device, and where each model comes from.

    Loads nothing; problems that loading would hit (missing packages or paths, CUDA absent) are listed
    instead of raised.
    """
    out: dict[str, Any] = {"requested_device": cfg.device}
    try:
        dev = resolve_device(cfg.device)
        out["device"], out["dtype"] = str(dev), str(model_dtype(dev)).replace("torch.", "")
    except ModelError as e:
        out["device"], out["dtype"], out["device_problem"] = None, None, str(e)
    for name, choose, requested in (
            ("simplify", simplify_choice, cfg.simplify.method),
            ("segment", segment_choice, cfg.segment.method),
            ("saliency", saliency_choice, cfg.saliency.source)):
        try:
            stage, spec, reason = choose(cfg)
            out[name] = _stage_entry(stage, spec, reason, requested)
            if out.get("device") == "cpu" and stage in CPU_COST:
                out[name]["cpu_cost"] = cpu_cost(stage, cfg)
        except ConfigError as e:
            out[name] = {"stage": None, "requested": requested, "problems": [str(e)]}
    if out["saliency"].get("stage") == "mask":
        out["saliency"]["mask"] = _saliency_request(cfg)[1]
    out["packages"] = {m: _version(m) for m in ("torch", "segment_anything", "diffusers", "transformers",
                                                "safetensors", "huggingface_hub", "torchvision")}
    return out



def saliency_map(rgb, cfg):
    """(H, W) float32 saliency in [0, 1] from the configured source (CLIP + prompt, user mask), or
    None when the map is uniform (no source, or a source that says nothing): None means "every pixel
    matters equally" everywhere in lvss."""
    sal = np.asarray(get_saliency(cfg)(rgb, cfg.saliency.prompt), np.float32)
    if sal.shape != rgb.shape[:2]:
        raise ValueError(f"saliency map has shape {sal.shape}, expected {rgb.shape[:2]}")
    sal = np.clip(np.nan_to_num(sal, nan=0.0), 0.0, 1.0)
    if float(sal.max() - sal.min()) < 1e-6:
        return None
    return sal


__all__ = ["get_simplifier", "get_segmenter", "get_saliency", "describe_stages", "simplify_levels",
           "segment_levels", "saliency_map", "resample_masks", "cpu_cost", "simplify_choice",
           "segment_choice", "saliency_choice", "SIMPLIFY_METHODS", "SEGMENT_METHODS", "SALIENCY_SOURCES"]
