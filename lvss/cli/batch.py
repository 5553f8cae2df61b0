"""``lvss batch``: vectorize files, folders and globs into an output folder (see :mod:`lvss.batch`).

lvss batch INPUT... -o OUT_DIR [every lvss vectorize option] [--precision D] [--workers N]
           [--ray [ADDRESS]] [--ray-read driver|shared] [--gpus-per-worker G]
           [--resume | --no-resume] [--fail-fast] [--allow-failures] [--json] [-q]

Exit status: 0 every image done (or skipped), 3 some images failed (their reasons are in the summary
and the manifest; ``--allow-failures`` makes that 0), 2 bad usage or a batch that cannot start
(one line on stderr, nothing written), 1 an internal failure, 130 interrupted by Ctrl-C, 143 by
SIGTERM (finished images keep their SVGs and manifest lines; rerun to continue).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

BAD_INPUT = 2
SOME_FAILED = 3
_MAX_LISTED = 20


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``batch`` on the ``lvss`` subcommands (handler in ``func``)."""
    from .vectorize import _positive_int, add_vectorize_options

    p = subparsers.add_parser(
        "batch", help="vectorize many images (files, folders, globs) into a folder, resumably",
        description="Vectorize many images into OUT_DIR, keeping their relative layout, with a manifest "
                    "(OUT_DIR/manifest.jsonl) that lets a rerun skip what is already done. Runs on worker "
                    "processes on this machine, or on a Ray cluster with --ray.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (searched recursively for image files) or quoted glob patterns")
    p.add_argument("-o", "--output", metavar="OUT_DIR", required=True,
                   help="folder for the SVGs (created when missing) and manifest.jsonl")
    add_vectorize_options(p)
    for a in p._actions:
        if "--threads" in a.option_strings:
            a.help = ("torch threads per worker (default: the cores divided by --workers, at most 4, so "
                      "workers x threads never exceeds the cores; env LVSS_THREADS)")
    p.add_argument("--precision", type=int, default=2, metavar="D", help="decimals in the SVG (default 2)")
    g = p.add_argument_group("batch")
    g.add_argument("--workers", type=_positive_int("--workers"), default=None, metavar="N",
                   help="worker processes (Ray: actors); default: the cores (Ray: the cluster's CPUs, or its "
                        "GPUs with --device cuda) divided by --threads")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on Ray: at ADDRESS, else $RAY_ADDRESS, else the Ray started on this machine, else a "
                        "new local one (needs pip install 'lvss[ray]')")
    g.add_argument("--ray-read", choices=("driver", "shared"), default="driver",
                   help="Ray: this process reads the images and sends them (driver, default), or every node "
                        "reads them from storage they all see (shared)")
    g.add_argument("--gpus-per-worker", type=float, default=None, metavar="G",
                   help="Ray with --device cuda: GPUs each worker reserves (default 1; 0.5 puts two on a GPU)")
    g.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="skip images already done with the same options (default); --no-resume redoes all")
    g.add_argument("--fail-fast", action="store_true", help="stop at the first image that fails")
    g.add_argument("--allow-failures", action="store_true",
                   help="exit status 0 even when some images failed (they are still in the manifest)")
    g.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_batch)
    return p


def _fail(msg: str) -> int:
    print(f"lvss batch: error: {msg}", file=sys.stderr)
    return BAD_INPUT


def _raise_terminated(signum, frame):
    raise _Terminated()


def format_summary(s: dict) -> str:
    """The final table of a batch (``Batch.summary``)."""
    unit = "thread" if s["threads"] == 1 else "threads"
    lines = [f"lvss batch: {s['images']} images -> {s['out_dir']}  ({s['engine']} engine, "
             f"{s['workers']} workers x {s['threads']} {unit})"]
    rows = [("vectorized", s["ok"], ""), ("skipped", s["skipped"], "already done with these options"),
            ("failed", s["failed"], "listed below" if s["failed"] else ""),
            ("not done", s["not_done"], "interrupted or --fail-fast; rerun to continue" if s["not_done"] else "")]
    for name, n, note in rows:
        lines.append(f"  {name:<11}{n:>7}  {note if n else ''}".rstrip())
    rate = s.get("images_per_minute")
    lines.append(f"  {'time':<11}{s['seconds']:>7.1f}s" + (f"  {rate:.1f} images/min" if rate else ""))
    if s.get("mean_paths") is not None:
        psnr = f", PSNR {s['mean_psnr']:.2f} dB" if s.get("mean_psnr") is not None else ""
        lines.append(f"  {'mean':<11}{s['mean_paths']:>7.1f}  paths per SVG{psnr}")
    if s["failures"]:
        lines.append("failed:")
        for f in s["failures"][:_MAX_LISTED]:
            lines.append(f"  {f['error']}" if f["input"] in f["error"] else f"  {f['input']}: {f['error']}")
        if len(s["failures"]) > _MAX_LISTED:
            lines.append(f"  ... and {len(s['failures']) - _MAX_LISTED} more")
    lines.append(f"manifest: {s['manifest']}")
    return "\n".join(lines)


def run_batch(args) -> int:
    from .. import threads as th
    from ..batch import Batch, BatchError
    from .vectorize import config_from_args
    from ..config import ConfigError

    if not 0 <= args.precision <= 8:
        return _fail(f"--precision must be between 0 and 8, got {args.precision}")
    if args.gpus_per_worker is not None and not args.gpus_per_worker > 0:
        return _fail(f"--gpus-per-worker must be > 0, got {args.gpus_per_worker}")
    if args.ray is None and (args.ray_read != "driver" or args.gpus_per_worker is not None):
        return _fail("--ray-read and --gpus-per-worker apply to the Ray engine only; add --ray")
    try:
        cfg = config_from_args(args)
        b = Batch(args.inputs, args.output, cfg, args.precision)
    except (ConfigError, BatchError, ValueError) as e:
        return _fail(str(e))
    bar = None

    def progress(ev) -> None:
        nonlocal bar
        if ev.kind == "start":
            cores = th.available_cores()
            if ev.engine == "local" and ev.workers * ev.threads > cores:
                print(f"lvss batch: warning: {ev.workers} workers x {ev.threads} threads exceed the {cores} "
                      "cores; images will take longer each", file=sys.stderr)
            if not args.quiet and ev.todo:
                from tqdm import tqdm

                bar = tqdm(total=ev.total, initial=ev.skipped, unit="img", desc="vectorizing", file=sys.stderr,
                           disable=None, dynamic_ncols=True)
            return
        if bar is not None and ev.row["status"] != "skipped":
            bar.update(1)
            if ev.row["status"] == "error":
                bar.set_postfix_str(f"failed: {ev.row['output']}", refresh=False)

    on_main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, _raise_terminated) if on_main else None
    code = 0
    try:
        b.run(engine="ray" if args.ray is not None else "local", workers=args.workers, threads=args.threads,
              ray_address=args.ray or None, ray_read=args.ray_read, gpus_per_worker=args.gpus_per_worker,
              resume=args.resume, fail_fast=args.fail_fast, progress=progress)
    except BatchError as e:
        if bar is not None:
            bar.close()
        return _fail(str(e))
    except KeyboardInterrupt as e:
        code = 143 if isinstance(e, _Terminated) else 130
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, old_term)
    if bar is not None:
        bar.close()
    s = b.summary
    if not s:  # interrupted before planning finished
        print("lvss batch: interrupted", file=sys.stderr)
        return code
    print(json.dumps(s, indent=2) if args.json else format_summary(s))
    if code:
        print(f"lvss batch: interrupted; {s['ok'] + s['skipped']} images done, rerun the same command to "
              "continue", file=sys.stderr)
        return code
    if s["failed"] and not args.allow_failures:
        print(f"lvss batch: {s['failed']} of {s['images']} images failed (see {s['manifest']})", file=sys.stderr)
        return SOME_FAILED
    return 0
