"""``lvss info``: which implementation each stage would use, on which device, with which weights.

Also the shared command-line options for choosing stages and models:
:func:`add_model_arguments` adds them to a parser and :func:`apply_model_arguments` folds the parsed
values into a :class:`~lvss.config.VectorizeConfig` (options left out keep the config's values).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import Any

from .config import VectorizeConfig


def _saliency_arg(value: str) -> str:
    if value in ("clip", "none", "auto") or (value.startswith("mask:") and len(value) > len("mask:")):
        return value
    raise argparse.ArgumentTypeError(f"expected clip, mask:FILE, none or auto, got {value!r}")


def add_model_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add --segmenter, --simplifier, --saliency, --sam-checkpoint, --sd-model, --clip-model, --prompt.

    All default to None (= keep the config's value); "auto" picks the learned stage when its weights
    are configured and the classical one otherwise.
    """
    g = parser.add_argument_group("stages and models")
    g.add_argument("--segmenter", choices=("sam", "classical", "auto"), default=None,
                   help="segmentation: SAM (needs --sam-checkpoint) or classical (default auto)")
    g.add_argument("--simplifier", choices=("sds", "classical", "auto"), default=None,
                   help="simplification: score distillation with Stable Diffusion (needs --sd-model) or "
                        "classical (default auto)")
    g.add_argument("--saliency", type=_saliency_arg, default=None, metavar="clip|mask:FILE|none|auto",
                   help="importance map: CLIP relevance of --prompt (needs --clip-model), a mask image "
                        "(white = important), or none (default auto)")
    g.add_argument("--sam-checkpoint", default=None, metavar="PATH|REPO:FILE|URL",
                   help="segment-anything checkpoint (.pth); environment LVSS_SAM_CHECKPOINT")
    g.add_argument("--sd-model", default=None, metavar="DIR|HUB_ID",
                   help="Stable Diffusion 1.x/2.x in diffusers layout; environment LVSS_SD_MODEL")
    g.add_argument("--clip-model", default=None, metavar="DIR|HUB_ID",
                   help="CLIP model (transformers); environment LVSS_CLIP_MODEL")
    g.add_argument("--prompt", default=None, help="text describing what matters in the image (CLIP saliency)")
    return parser


def apply_model_arguments(args: argparse.Namespace, cfg: VectorizeConfig | None = None) -> VectorizeConfig:
    """A copy of ``cfg`` with the stage/model options from ``args`` applied (missing or None ones
    are left as they are; ``device`` too when the parser has it)."""
    cfg = cfg or VectorizeConfig()

    def arg(name: str) -> Any:
        return getattr(args, name, None)

    simplify, segment, saliency = cfg.simplify, cfg.segment, cfg.saliency
    if arg("simplifier") is not None:
        simplify = replace(simplify, method=arg("simplifier"))
    if arg("sd_model") is not None:
        simplify = replace(simplify, sd_model=arg("sd_model"))
    if arg("segmenter") is not None:
        segment = replace(segment, method=arg("segmenter"))
    if arg("sam_checkpoint") is not None:
        segment = replace(segment, sam_checkpoint=arg("sam_checkpoint"))
    sal = arg("saliency")
    if sal is not None:
        if sal.startswith("mask:"):
            saliency = replace(saliency, source="mask", mask_path=sal[len("mask:"):])
        else:
            saliency = replace(saliency, source=sal)
    if arg("clip_model") is not None:
        saliency = replace(saliency, clip_model=arg("clip_model"))
    if arg("prompt") is not None:
        saliency = replace(saliency, prompt=arg("prompt"))
    changes: dict[str, Any] = {"simplify": simplify, "segment": segment, "saliency": saliency}
    if arg("device") is not None:
        changes["device"] = arg("device")
    return cfg.with_(**changes)


def format_info(info: dict) -> str:
    """Human-readable text of :func:`lvss.stages.describe_stages`' dict."""
    lines = []
    if info.get("device"):
        lines.append(f"device: {info['device']} ({info['dtype']}), requested {info['requested_device']}")
    else:
        lines.append(f"device: unavailable — {info.get('device_problem')}")
    for name in ("simplify", "segment", "saliency"):
        e = info[name]
        lines.append(f"{name}: {e.get('stage')}  [{e.get('reason', e.get('requested'))}]")
        if e.get("model"):
            m = e["model"]
            lines.append(f"    model: {m['value']} ({m['location']}, from {m['origin']})")
        if e.get("mask"):
            lines.append(f"    mask: {e['mask']}")
        for p in e.get("problems", []):
            lines.append(f"    problem: {p}")
    pk = ", ".join(f"{k} {v or 'missing'}" for k, v in info["packages"].items())
    lines.append(f"packages: {pk}")
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    """Print the stage report; exit status 0."""
    from . import __version__
    from .stages import describe_stages

    cfg = apply_model_arguments(args, VectorizeConfig())
    info = describe_stages(cfg)
    info["lvss"] = __version__
    if getattr(args, "json", False):
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(f"lvss {__version__}")
        print(format_info(info))
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``info`` on an argparse subparsers object; its handler is ``args.func(args) -> int``."""
    p = subparsers.add_parser("info", help="show which stages, devices and models would be used",
                              description="Show which implementation each stage would use (learned or classical), on "
                                          "which device, and where each model's weights come from.")
    add_model_arguments(p)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                   help="device to report on (default auto)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_info)
    return p


__all__ = ["add_parser", "add_model_arguments", "apply_model_arguments", "run_info", "format_info"]
