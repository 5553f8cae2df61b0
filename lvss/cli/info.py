"""``lvss info``: which implementation each stage would use, on which device, with which weights.

Also the shared command-line options for choosing stages and models:
:func:`add_model_arguments` adds them to a parser and :func:`apply_model_arguments` folds the parsed
values into a :class:`~lvss.config.VectorizeConfig` (options left out keep the config's values).
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from ..config import VectorizeConfig


# config fields with a flag on every command that chooses stages and models (lvss vectorize, batch,
# info); lvss.config declares each (type, choices, range, help)
MODEL_OPTIONS = ("segment.method", "simplify.method", "saliency.source", "segment.sam_checkpoint",
                 "simplify.sd_model", "saliency.clip_model", "saliency.prompt")
# the learned stages' cost knobs, shared with lvss serve (every job's default there)
COST_OPTIONS = ("segment.sam_points_per_side", "simplify.sds_iterations_per_level", "simplify.sds_guidance_size")


def add_model_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add --segmenter, --simplifier, --saliency, --sam-checkpoint, --sd-model, --clip-model, --prompt,
    --models, and the learned stages' cost knobs --sam-points-per-side, --sds-iterations,
    --sds-guidance-size.

    All default to None (= keep the config's value); "auto" picks the learned stage when its weights
    are configured and the classical one otherwise.
    """
    from ..options import add_argument

    g = parser.add_argument_group("stages and models")
    for path in MODEL_OPTIONS:
        add_argument(g, path)
    g.add_argument("--models", choices=tuple(_model_sets()), default=None,
                   help="use a named set of checkpoints, downloaded once into the usual caches: 'paper' = "
                        "SAM ViT-H, Stable Diffusion 1.5 and CLIP ViT-B/16, as published with the methods "
                        "(--sam-checkpoint / --sd-model / --clip-model still override one of them)")
    add_cost_arguments(g)
    return parser


def add_cost_arguments(group) -> None:
    """Add --sam-points-per-side, --sds-iterations and --sds-guidance-size (validated ranges; default
    None = keep the config's value) to a parser or argument group; ``lvss serve`` shares them."""
    from ..options import add_argument

    for path in COST_OPTIONS:
        add_argument(group, path)


def _model_sets() -> dict:
    from ..models.weights import MODEL_SETS

    return MODEL_SETS


def apply_model_arguments(args: argparse.Namespace, cfg: VectorizeConfig | None = None, *,
                          fetch: bool = True) -> VectorizeConfig:
    """A copy of ``cfg`` with the stage/model options from ``args`` applied (missing or None ones
    are left as they are; ``device`` too when the parser has it).

    ``--models NAME`` fills the model settings not given by their own flags with that set's
    checkpoints: downloaded once when ``fetch`` (progress on stderr; raises
    :class:`~lvss.models.weights.WeightsError`), else their cached paths or public identifiers.
    """
    cfg = cfg or VectorizeConfig()
    named: dict[str, str] = {}
    if getattr(args, "models", None):
        from ..models.weights import model_set, settings_for

        own = {"sam": "sam_checkpoint", "sd": "sd_model", "clip": "clip_model"}
        wanted = tuple(e.kind for e in model_set(args.models) if getattr(args, own[e.kind], None) is None)
        if wanted:
            if fetch:
                from ..models.weights import fetch_set

                named = fetch_set(args.models, kinds=wanted)
            else:
                named = {k: v for k, v in settings_for(args.models, fetch_missing=False).items() if k in wanted}

    from ..options import dest_of, set_value

    def arg(name: str) -> Any:
        value = getattr(args, name, None)
        if value is None and name in ("sam_checkpoint", "sd_model", "clip_model"):
            value = named.get({"sam_checkpoint": "sam", "sd_model": "sd", "clip_model": "clip"}[name])
        return value

    for path in (*MODEL_OPTIONS, *COST_OPTIONS):
        value = arg(dest_of(path))
        if value is None:
            continue
        if path == "saliency.source" and value.startswith("mask:"):  # the CLI's mask:FILE
            cfg = set_value(set_value(cfg, path, "mask"), "saliency.mask_path", value[len("mask:"):])
        else:
            cfg = set_value(cfg, path, value)
    if arg("device") is not None:
        cfg = cfg.with_(device=arg("device"))
    return cfg


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
        if e.get("cpu_cost"):
            lines.append(f"    cost: {e['cpu_cost']}")
    pk = ", ".join(f"{k} {v or 'missing'}" for k, v in info["packages"].items())
    lines.append(f"packages: {pk}")
    for name, entries in (info.get("model_sets") or {}).items():
        lines.append(f"model set '{name}' (--models {name}):")
        for e in entries:
            if e["path"]:
                check = ", SHA-256 verified" if e.get("sha256") else ""
                lines.append(f"    {e['kind']}: {e['title']}: cached, {_size(e['bytes'])}{check}: {e['path']}")
            else:
                lines.append(f"    {e['kind']}: {e['title']}: not downloaded ({e['identifier']}); "
                             f"--models {name} downloads it once")
    return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n / (1 << 30):.2f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MiB"


def run_info(args: argparse.Namespace) -> int:
    """Print the stage report; exit status 0."""
    from .. import __version__
    from ..stages import describe_stages

    from ..models.weights import MODEL_SETS, set_status

    cfg = apply_model_arguments(args, VectorizeConfig(), fetch=False)  # info never downloads
    info = describe_stages(cfg)
    info["lvss"] = __version__
    info["model_sets"] = {name: set_status(name) for name in MODEL_SETS}
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
    from ..options import add_argument

    add_argument(p, "device", help="device to report on")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_info)
    return p


__all__ = ["add_parser", "add_model_arguments", "add_cost_arguments", "apply_model_arguments", "run_info",
           "format_info"]
