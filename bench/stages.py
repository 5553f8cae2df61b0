"""Per-stage CPU seconds of the layered pipeline, and of start-up, so the fixed costs of a
vectorization can be re-measured.

For every image it runs :func:`lvss.pipeline.run` ``--runs`` times in this process (after one warm-up
run that is not counted) on one thread and prints the median CPU seconds of

* each pipeline stage (load, simplify, segment, layering, structure, colour, refine, export): the
  pipeline's own stage laps, taken on the process CPU clock instead of the wall clock;
* the functions inside them that do the contour work: ``mask_to_path`` (all calls, and the part called
  from the refinement's new paths), ``fit_closed_cubic``, ``build_layers``, the structural paths
  (``_structural_paths``) and the detail candidates (``_solid_masks``).

CPU seconds are what the stage itself costs; on a busy machine they still rise somewhat (shared caches,
frequency), so compare figures taken in the same machine state. Then, with ``--startup``, the CPU
seconds of a fresh interpreter importing what ``lvss vectorize`` imports before its first stage, and of
a whole ``lvss vectorize`` run (process start to SVG written), medians of ``--runs`` processes.

    PYTHONPATH=. python bench/stages.py [--images 1F344 1F6B2 | --all] [--photos] [--runs 3]
                                        [--paths 64] [--quality fast] [--startup]

The images are the OpenMoji ``*_256.png`` files (``LVSS_OPENMOJI``, default /work/shared/data/openmoji;
the first three unless ``--images`` or ``--all``); ``--photos`` adds scikit-image's astronaut and coffee
at 256 px on the long side.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("LVSS_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
OPENMOJI = Path(os.environ.get("LVSS_OPENMOJI", "/work/shared/data/openmoji"))
PHOTOS = ("astronaut", "coffee")

# what `lvss vectorize` imports before its first stage (layered mode, classical stages, flat fills)
_STARTUP = ("import lvss.threads as T; T.apply(); import lvss.cli, lvss.pipeline, lvss.stages, lvss.layering, "
            "lvss.fit, lvss.svg, lvss.io, lvss.simplify.classical, lvss.segment.classical, lvss.optimize.refine, "
            "lvss.optimize.structure, lvss.render.torch_raster")


def _photo(name: str, out: Path) -> Path:
    from PIL import Image
    from skimage import data

    path = out / f"{name}.png"
    im = Image.fromarray(getattr(data, name)())
    s = 256 / max(im.size)
    im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.LANCZOS).save(path)
    return path


class _CpuClock:
    """Stands in for the pipeline's ``time`` module: its stage laps then read the process CPU clock."""

    perf_counter = staticmethod(time.process_time)

    def __getattr__(self, name):
        return getattr(time, name)


def _instrument(totals: dict[str, float]):
    """Wrap the contour functions so that their CPU seconds add up in ``totals``; returns an undo."""
    import lvss.fit as fit
    import lvss.layering as layering
    import lvss.optimize.refine as refine
    import lvss.pipeline as pipeline

    saved = []
    inside_refine = [0]

    def wrap(mod, name, key):
        fn = getattr(mod, name)
        saved.append((mod, name, fn))

        def timed(*a, **k):
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                dt = time.process_time() - t
                totals[key] += dt
                if key == "mask_to_path" and inside_refine[0]:
                    totals["mask_to_path (refine)"] += dt
        setattr(mod, name, timed)

    wrap(layering, "mask_to_path", "mask_to_path")
    wrap(fit, "fit_closed_cubic", "fit_closed_cubic")
    wrap(layering, "build_layers", "build_layers")
    wrap(pipeline, "_structural_paths", "_structural_paths")
    wrap(pipeline, "_solid_masks", "_solid_masks")
    if hasattr(refine, "refine"):
        fn = refine.refine
        saved.append((refine, "refine", fn))

        def in_refine(*a, **k):
            inside_refine[0] += 1
            try:
                return fn(*a, **k)
            finally:
                inside_refine[0] -= 1
        refine.refine = in_refine

    def undo():
        for mod, name, fn in saved:
            setattr(mod, name, fn)
    return undo


def _stage_seconds(image: Path, cfg, runs: int) -> dict[str, float]:
    import lvss.pipeline as pipeline

    pipeline.run(str(image), cfg)  # warm-up: first calls load code and caches
    per_run: dict[str, list[float]] = defaultdict(list)
    real_time = pipeline.time
    for _ in range(runs):
        totals: dict[str, float] = defaultdict(float)
        undo = _instrument(totals)
        pipeline.time = _CpuClock()
        try:
            t = time.process_time()
            res = pipeline.run(str(image), cfg)
            total = time.process_time() - t
        finally:
            pipeline.time = real_time
            undo()
        for k, v in res.timings.items():
            per_run[k].append(v)
        for k, v in totals.items():
            per_run["  " + k].append(v)
        per_run["total"].append(total)
    return {k: statistics.median(v) for k, v in per_run.items()}


def _child_cpu(cmd: list[str]) -> float:
    """CPU seconds (user + system) of one child process run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", nargs="*", default=None, help="OpenMoji codes (default: the first three)")
    ap.add_argument("--all", action="store_true", help="every OpenMoji *_256.png")
    ap.add_argument("--photos", action="store_true", help="add astronaut and coffee at 256 px")
    ap.add_argument("--runs", type=int, default=3, help="counted runs per image (median)")
    ap.add_argument("--paths", type=int, default=64)
    ap.add_argument("--quality", default="fast", choices=("fast", "balanced", "best"))
    ap.add_argument("--startup", action="store_true", help="also time imports and whole CLI runs")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    import lvss.threads as threads

    threads.apply()  # before torch is imported anywhere: one thread, idle threads sleep
    from lvss.config import VectorizeConfig, apply_quality

    files = sorted(OPENMOJI.glob("*_256.png"))
    if args.images:
        files = [f for f in files if f.name.split("_")[0] in args.images]
    elif not args.all:
        files = files[:3]
    tmp = Path(tempfile.mkdtemp(prefix="lvss-stages-"))
    if args.photos:
        files += [_photo(p, tmp) for p in PHOTOS]
    if not files:
        sys.exit(f"no images found (OpenMoji folder {OPENMOJI}; set LVSS_OPENMOJI)")
    cfg = apply_quality(VectorizeConfig(paths=args.paths), args.quality, paths_given=True)
    print(f"CPU seconds per stage, median of {args.runs} runs, {args.quality} preset, {args.paths} paths, "
          f"1 thread; load average {os.getloadavg()[0]:.1f}")
    rows: dict[str, dict[str, float]] = {}
    for f in files:
        rows[f.stem] = _stage_seconds(f, cfg, args.runs)
        r = rows[f.stem]
        print(f"{f.stem}: " + ", ".join(f"{k.strip()} {v:.3f}" for k, v in r.items()), flush=True)
    keys = list(next(iter(rows.values())))
    print("\nmedian over the images:")
    for k in keys:
        print(f"  {k:<24} {statistics.median(r.get(k, 0.0) for r in rows.values()):8.3f}")
    if args.startup:
        imports = [_child_cpu([sys.executable, "-c", _STARTUP]) for _ in range(args.runs)]
        print(f"\nstart-up imports (fresh process): {statistics.median(imports):.3f} CPU s")
        out = tmp / "out.svg"
        cli = [_child_cpu([sys.executable, "-m", "lvss", "vectorize", str(files[0]), "-o", str(out), "--paths",
                           str(args.paths), "--quality", args.quality, "-q"]) for _ in range(args.runs)]
        print(f"whole `lvss vectorize` on {files[0].stem}: {statistics.median(cli):.3f} CPU s")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
