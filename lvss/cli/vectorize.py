"""``lvss vectorize``: one image to one SVG on this machine; and the options that shape a
vectorization, shared with ``lvss batch`` (:func:`add_vectorize_options`, :func:`config_from_args`).

Exit status: 0 done, 2 bad input or usage (one line on stderr, no traceback, no output file written),
1 an internal failure, 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

BAD_INPUT = 2


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


def add_parser(sub) -> None:
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


# The options of lvss vectorize and lvss batch besides the stage and model options of lvss.info: config
# fields (lvss.config declares each flag, its type, range or choices, default and help) and the preset.
VECTORIZE_OPTIONS = ("paths", "quality", "simplify.levels", "seed", "device", "work_size", "mode", "optimize.fill",
                     "saliency.mask_path", "compact.structural_ratio", "compact.rounds", "optimize.structure_iters",
                     "optimize.refine_iters", "optimize.polish_iters", "segment.sam_crop_layers")


def add_vectorize_options(p) -> None:
    """The options that shape a vectorization (shared by ``vectorize`` and ``batch``); read them back
    with :func:`config_from_args`. ``--threads`` is a process setting, not part of the config."""
    from .info import add_model_arguments
    from ..options import DEFAULT_QUALITY, add_argument

    for path in VECTORIZE_OPTIONS:
        add_argument(p, path, default=DEFAULT_QUALITY if path == "quality" else None)
    p.add_argument("--threads", type=_positive_int("--threads"), default=None, metavar="N",
                   help="CPU threads for torch (default: the idle cores, at most 4; env LVSS_THREADS)")
    add_model_arguments(p)


def config_from_args(args):
    """The :class:`~lvss.config.VectorizeConfig` the options of :func:`add_vectorize_options` ask for:
    the --quality preset, then every option given (the stage and model options last, as
    :func:`lvss.info.apply_model_arguments` reads them). ConfigError names a value out of range."""
    from .info import apply_model_arguments
    from ..options import config_from_values, dest_of

    values = {path: getattr(args, dest_of(path), None) for path in VECTORIZE_OPTIONS if path != "quality"}
    values = {path: v for path, v in values.items() if v is not None}
    if "saliency.mask_path" in values:  # a mask given is the saliency source
        values["saliency.source"] = "mask"
    return apply_model_arguments(args, config_from_values(values, args.quality))


def _cmd_vectorize(args) -> int:
    from ..config import ConfigError
    from ..io import ImageError, atomic_write
    from ..svg import scene_to_svg

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
    from .. import threads
    from ..pipeline import run

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

    from ..io import atomic_write
    from ..render import render

    img = render(scene).detach().cpu().numpy()
    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), "RGBA").save(buf, "PNG")
    atomic_write(path, buf.getvalue())


def _fail(msg: str, bar=None) -> int:
    if bar is not None:
        bar.close()
    print(f"lvss vectorize: error: {msg}", file=sys.stderr)
    return BAD_INPUT
