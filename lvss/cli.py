"""The ``lvss`` command line.

lvss vectorize IN -o OUT.svg [--paths N] [--levels L] [--seed S] [--device cpu|cuda] [--work-size PX]
                             [--mode layered|compact] [--preview OUT.png] [--json] [stage options]
lvss info | serve | remote | install-inkscape-extension

Exit status: 0 done, 2 bad input or usage (one line on stderr, no traceback, no output file written),
1 an internal failure, 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from .config import OptimizeConfig

_OPT = OptimizeConfig()  # the defaults the options' help names

BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: one line, exit 2
        self.exit(BAD_INPUT, f"{self.prog}: error: {message}\n")


def _positive_int(name: str):
    def conv(v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {v!r}") from None
        if n <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {n}")
        return n
    return conv


def _add_vectorize(sub) -> None:
    p = sub.add_parser("vectorize", help="turn a raster image into a layered SVG",
                       description="Vectorize an image into a layered, editable SVG (runs locally).")
    p.add_argument("input", metavar="IN", help="image file (PNG, JPEG, WebP, BMP, TIFF)")
    p.add_argument("-o", "--output", metavar="OUT.svg", required=True, help="SVG file to write")
    add_vectorize_options(p)
    p.add_argument("--precision", type=int, default=2, metavar="D", help="decimals in the SVG (default 2)")
    p.add_argument("--preview", metavar="OUT.png", help="also write lvss's own render of the result")
    p.add_argument("--json", action="store_true", help="print paths, layers, seconds and MSE/PSNR as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_vectorize)


def add_vectorize_options(p) -> None:
    """The options that shape a vectorization (shared by ``vectorize`` and ``batch``); read them back
    with :func:`config_from_args`. ``--threads`` is a process setting, not part of the config."""
    from .info import add_model_arguments

    p.add_argument("--paths", type=_positive_int("--paths"), default=None, metavar="N",
                   help="path budget: the SVG has at most N paths (default: the preset's, 128 for balanced)")
    p.add_argument("--quality", choices=("fast", "balanced", "best"), default="balanced",
                   help="speed/fidelity preset: default budget (64/128/256), working size and optimisation "
                        "effort (default balanced)")
    p.add_argument("--levels", type=int, default=None, metavar="L",
                   help="coarser simplification levels (default 4; 3 with --quality fast)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (same input + seed = same SVG)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to compute")
    p.add_argument("--work-size", type=int, default=None, metavar="PX",
                   help="long side of the working resolution in pixels (default: the preset's, 256)")
    p.add_argument("--mode", choices=("layered", "compact"), default="layered",
                   help="layered (semantic simplification) or compact (recolouring merge)")
    p.add_argument("--fill", choices=("flat", "linear", "radial", "auto"), default="flat",
                   help="path fills: flat colours (default), linear or radial gradients on every path, or "
                        "auto: a gradient only where it lowers the error enough to be worth its bytes")
    p.add_argument("--saliency-mask", metavar="FILE", help="compact/refinement: mask image, white = important")
    p.add_argument("--structural-ratio", type=float, default=None, metavar="R",
                   help="compact mode: share of the budget for merged structure (default: adaptive, "
                        "following the picture and the budget; 0.4 is the recolouring paper's split)")
    p.add_argument("--rounds", type=int, default=None, metavar="N", help="compact mode: merge rounds (default 10)")
    p.add_argument("--structure-iters", type=int, default=None, metavar="N",
                   help=f"optimisation steps of the structure stage (default {_OPT.structure_iters})")
    p.add_argument("--refine-iters", type=int, default=None, metavar="N",
                   help="optimisation steps of refinement per rung of the path ladder (16, 32, 64, ...; "
                        f"default {_OPT.refine_iters})")
    p.add_argument("--polish-iters", type=int, default=None, metavar="N",
                   help="last optimisation steps moving every path, structure included, against the image "
                        f"at full size (default {_OPT.polish_iters}; 0 = off)")
    p.add_argument("--threads", type=_positive_int("--threads"), default=None, metavar="N",
                   help="CPU threads for torch (default: the idle cores, at most 4; env LVSS_THREADS)")
    p.add_argument("--sam-crop-layers", type=int, choices=(0, 1, 2, 3), default=None, metavar="N",
                   help="SAM: also segment N layers of overlapping crops of a large original (layer i: "
                        "(2^i)^2 crops, each at SAM's input size) for finer masks; 0 = whole image only "
                        "(default); each crop costs as much as a level (4 more for N=1, 20 for N=2)")
    add_model_arguments(p)


def config_from_args(args):
    """The :class:`~lvss.config.VectorizeConfig` the options of :func:`add_vectorize_options` ask for."""
    from .config import VectorizeConfig
    from .info import apply_model_arguments

    from .config import apply_quality

    cfg = VectorizeConfig(paths=args.paths or 128, mode=args.mode, seed=args.seed, device=args.device,
                          work_size=args.work_size or 256)
    if args.levels is not None:
        cfg = replace(cfg, simplify=replace(cfg.simplify, levels=args.levels))
    cfg = apply_quality(cfg, args.quality, paths_given=args.paths is not None,
                        work_size_given=args.work_size is not None, levels_given=args.levels is not None)
    compact = cfg.compact
    if args.structural_ratio is not None:
        compact = replace(compact, structural_ratio=args.structural_ratio)
    if args.rounds is not None:
        compact = replace(compact, rounds=args.rounds)
    cfg = replace(cfg, compact=compact)
    opt = cfg.optimize
    if args.structure_iters is not None:
        opt = replace(opt, structure_iters=args.structure_iters)
    if args.refine_iters is not None:
        opt = replace(opt, refine_iters=args.refine_iters)
    if getattr(args, "polish_iters", None) is not None:
        opt = replace(opt, polish_iters=args.polish_iters)
    if getattr(args, "fill", "flat") != "flat":
        opt = replace(opt, fill=args.fill)
    cfg = replace(cfg, optimize=opt)
    if args.saliency_mask:
        cfg = replace(cfg, saliency=replace(cfg.saliency, source="mask", mask_path=args.saliency_mask))
    cfg = apply_model_arguments(args, cfg)
    if getattr(args, "sam_crop_layers", None) is not None:
        cfg = replace(cfg, segment=replace(cfg.segment, sam_crop_layers=args.sam_crop_layers))
    from .config import validate

    validate(cfg)
    return cfg


def _cmd_vectorize(args) -> int:
    from .config import ConfigError
    from .io import ImageError, atomic_write
    from .svg import scene_to_svg

    out = Path(args.output)
    for f, what in ((out, "output"), (Path(args.preview) if args.preview else None, "preview")):
        if f is not None and not f.parent.exists():
            return _fail(f"{what} folder does not exist: {f.parent}")
        if f is not None and f.is_dir():
            return _fail(f"{what} path is a directory: {f}")
    try:
        cfg = config_from_args(args)
    except (ConfigError, ValueError) as e:
        return _fail(str(e))
    if not 0 <= args.precision <= 8:
        return _fail(f"--precision must be between 0 and 8, got {args.precision}")
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=100, file=sys.stderr, bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}",
                   disable=None)
    from . import threads
    from .pipeline import run

    threads.apply(args.threads)

    def progress(ev):
        if bar is not None:
            bar.n = round(ev.fraction * 100, 1)
            bar.set_description(ev.stage, refresh=False)
            bar.set_postfix_str(ev.message[:50], refresh=False)
            bar.refresh()

    t = time.perf_counter()
    try:
        res = run(args.input, cfg, progress)
    except (ImageError, ConfigError) as e:
        return _fail(str(e), bar)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print("lvss vectorize: interrupted", file=sys.stderr)
        return 130
    secs = time.perf_counter() - t
    if bar is not None:
        bar.close()
    for note in res.notes:
        if note.startswith("the prompt was not used"):
            print(f"lvss vectorize: warning: {note}", file=sys.stderr)
    svg = scene_to_svg(res.scene, precision=args.precision)
    try:
        atomic_write(out, svg)
        if args.preview:
            _write_preview(res.scene, args.preview)
    except OSError as e:
        return _fail(f"cannot write output: {e}")
    if args.json:
        print(json.dumps({"output": str(out), "paths": res.scene.num_paths,
                          "layers": [{"name": l.name, "paths": len(l.paths)} for l in res.scene.layers],
                          "seconds": round(secs, 3), "svg_bytes": len(svg.encode("utf-8")),
                          "budget": cfg.paths, "notes": res.notes,
                          "mse": res.metrics.get("mse"), "psnr": res.metrics.get("psnr"),
                          "timings": res.timings}, indent=2))
    return 0


def _write_preview(scene, path: str) -> None:
    import io

    import numpy as np
    from PIL import Image

    from .io import atomic_write
    from .render import render

    img = render(scene).detach().cpu().numpy()
    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), "RGBA").save(buf, "PNG")
    atomic_write(path, buf.getvalue())


def _fail(msg: str, bar=None) -> int:
    if bar is not None:
        bar.close()
    print(f"lvss vectorize: error: {msg}", file=sys.stderr)
    return BAD_INPUT


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="lvss", description="Raster images to layered, editable SVG.")
    parser.add_argument("--version", action="version", version=f"lvss {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_vectorize(sub)
    from . import batch_cli, info, inkscape, remote_cli

    info.add_parser(sub)
    remote_cli.add_parser(sub)
    batch_cli.add_parser(sub)
    inkscape.add_parser(sub)
    from . import blender
    blender.add_parser(sub)
    try:  # the server installs as lvss_server (the server/ folder); it needs grpc only when it runs
        from lvss_server.cli import add_parser as add_serve
    except ImportError:
        try:  # a source checkout used without installing it
            from server.cli import add_parser as add_serve
        except ImportError:
            add_serve = None
    if add_serve is not None:
        add_serve(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from . import threads

    # the thread policy's environment, before anything loads numpy or torch (this module imports
    # neither at load time; lvss.threads explains the policy)
    threads.prepare_environment()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return BAD_INPUT
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
