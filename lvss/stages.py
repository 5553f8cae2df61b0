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
from typing import Any

from .config import ConfigError, VectorizeConfig
from .models import ModelError, ModelSpec, model_dtype, model_spec, resolve_device, setting_hint
from .types import SaliencySource, Segmenter, Simplifier

SIMPLIFY_METHODS = ("auto", "sds", "classical")
SEGMENT_METHODS = ("auto", "sam", "classical")
SALIENCY_SOURCES = ("auto", "clip", "mask", "none")


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
    """``segmenter(image (H, W, 3) float32) -> MaskSet``."""
    method, spec, _ = segment_choice(cfg)
    if method == "classical":
        from .segment.classical import segment_classical

        return functools.partial(segment_classical, cfg=cfg.segment)
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
        except ConfigError as e:
            out[name] = {"stage": None, "requested": requested, "problems": [str(e)]}
    if out["saliency"].get("stage") == "mask":
        out["saliency"]["mask"] = _saliency_request(cfg)[1]
    out["packages"] = {m: _version(m) for m in ("torch", "segment_anything", "diffusers", "transformers",
                                                "safetensors", "huggingface_hub", "torchvision")}
    return out


__all__ = ["get_simplifier", "get_segmenter", "get_saliency", "describe_stages", "simplify_choice",
           "segment_choice", "saliency_choice", "SIMPLIFY_METHODS", "SEGMENT_METHODS", "SALIENCY_SOURCES"]
