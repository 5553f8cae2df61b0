"""CPU seconds of the layered pipeline's numpy / scikit-image stages, warm and on a process's first call,
and a check that their outputs equal those of another source tree.

For every image it prepares the working-resolution image as :func:`lvss.pipeline.run` does and times,
on one thread, in process CPU seconds:

* ``simplify``: the simplification sequence (:func:`lvss.stages.simplify_levels`, classical);
* ``segment``: the masks of every level (:func:`lvss.stages.segment_levels`, classical);
* ``build_layers``: the layering of those masks (:func:`lvss.layering.build_layers`);
* ``structural``: the structural paths (``lvss.pipeline._structural_paths``: pieces, their paths and
  the back layer's growth over the canvas), whose ``mask_to_path`` calls are recorded;
* ``mask_to_path``: :func:`lvss.layering.mask_to_path` again over every recorded call's mask, as the
  structural paths call it (``holes=True``) and as the refinement's new paths do (``max_segments=16``).

``warm`` is the median of ``--repeats`` runs after one unrecorded run; ``first`` is each stage's first call
in a fresh interpreter that has only imported ``lvss.pipeline`` (lazy imports inside a stage count
there), the median of ``--first`` processes.

    PYTHONPATH=. python bench/cpu_stages.py [--images 1F344 1F6B2 ... | --all] [--no-photos]
                                            [--repeats 5] [--first 3]
    PYTHONPATH=. python bench/cpu_stages.py --check REV_OR_DIR   # outputs equal to another tree's?
    PYTHONPATH=. python bench/cpu_stages.py --against REV_OR_DIR [--repeats 5]   # warm, side by side

``--against`` keeps one worker process per tree and alternates the runs between them, so both trees are
timed in the same machine state (on a shared machine, figures taken minutes apart differ by more than
the changes being measured).

``--check`` runs every stage once in this tree and in the other one (a directory holding an ``lvss``
package, or a git revision, checked out with ``git worktree add`` under the system's temporary folder)
and compares: images, masks, labels and layers exactly, path control points to 1e-5. It exits 1 on any
difference. The images are OpenMoji ``*_256.png`` files (``LVSS_OPENMOJI``, default
/work/shared/data/openmoji; 1F344, 1F6B2, 1F98A and 2615 unless ``--images`` or ``--all``) at 64 paths and
scikit-image's astronaut and chelsea, 256 px on the long side, at 256 paths.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LVSS_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from trees import other_tree  # noqa: E402  (bench/trees.py)
OPENMOJI = Path(os.environ.get("LVSS_OPENMOJI", "/work/shared/data/openmoji"))
DEFAULT_EMOJI = ("1F344", "1F6B2", "1F98A", "2615")
PHOTOS = ("astronaut", "chelsea")
STAGES = ("simplify", "segment", "build_layers", "structural", "mask_to_path")


def _inputs(images: list[str], photos: bool):
    """(name, (H, W, 4) uint8, config) for every image."""
    import numpy as np
    from PIL import Image

    from lvss.config import VectorizeConfig

    out = []
    for code in images:
        rgba = np.asarray(Image.open(OPENMOJI / f"{code}_256.png").convert("RGBA"))
        out.append((code, rgba, VectorizeConfig(paths=64)))
    if photos:
        import skimage

        for name in PHOTOS:
            # scikit-image's sample file, read directly: skimage.data would import scipy before timing
            im = Image.open(Path(skimage.__file__).parent / "data" / f"{name}.png").convert("RGB")
            s = 256 / max(im.size)
            im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.LANCZOS).convert("RGBA")
            out.append((name, np.asarray(im), VectorizeConfig(paths=256)))
    return out


def _run_stages(rgba, cfg, clock=time.process_time):
    """Every stage once: (seconds per stage, outputs)."""
    import numpy as np

    from lvss import pipeline as P
    from lvss.stages import segment_levels, simplify_levels

    sec: dict[str, float] = {}
    rgb, alpha = P.prepare_image(rgba, cfg.work_size)
    h, w = alpha.shape
    valid = alpha > 0.5
    t = clock()
    levels = simplify_levels(cfg, rgb).levels
    sec["simplify"] = clock() - t
    t = clock()
    masksets = segment_levels(cfg, levels, source=rgba).masksets
    sec["segment"] = clock() - t
    import lvss.layering as L     # as the pipeline does, after the first two stages (its imports count there)

    t = clock()
    layering = L.build_layers(masksets, valid=valid if not valid.all() else None)
    sec["build_layers"] = clock() - t
    calls = []
    original = L.mask_to_path

    def recording(mask, *a, **kw):
        calls.append((np.array(mask, copy=True), a, kw))
        return original(mask, *a, **kw)

    n_struct = max(1, min(cfg.paths, int(round(cfg.paths * cfg.optimize.structure_share))))
    L.mask_to_path = recording
    try:
        t = clock()
        spaths = P._structural_paths(layering, n_struct, cfg.optimize.dp_epsilon, None,
                                     P._min_piece_pixels(cfg, h, w), valid)
        sec["structural"] = clock() - t
    finally:
        L.mask_to_path = original
    t = clock()
    paths = []
    for mask, a, kw in calls:
        paths.append(L.mask_to_path(mask, *a, **kw))
        paths.append(L.mask_to_path(mask, cfg.optimize.dp_epsilon, max_segments=16))
    sec["mask_to_path"] = clock() - t

    def pts(p):
        return None if p is None else p.points.numpy().copy()

    outputs = {
        "levels": [np.asarray(x) for x in levels],
        "masks": [(np.asarray(ms.masks), np.asarray(ms.colors)) for ms in masksets],
        "layers": [[(lm.mask, lm.level, np.asarray(lm.color), lm.area) for lm in layer]
                   for layer in layering.layers],
        "structural": [(sp.points.numpy().copy(), sp.mask, sp.layer, np.asarray(sp.mean_color)) for sp in spaths],
        "mask_to_path": [pts(p) for p in paths],
    }
    return sec, outputs, len(calls)


def _child(args) -> None:
    """One fresh process: first-call seconds (--child-first) or the outputs (--child-dump FILE)."""
    import lvss.pipeline  # noqa: F401  (what a server has imported before its first request)
    import lvss.stages  # noqa: F401
    import lvss.threads as T

    T.apply(None)
    if args.photo:
        items = [i for i in _inputs([], True) if i[0] == args.photo]
    else:
        items = _inputs(args.images[:1], False)
    name, rgba, cfg = items[0]
    sec, outputs, _ = _run_stages(rgba, cfg)
    if args.child_dump:
        with open(args.child_dump, "wb") as f:
            pickle.dump(outputs, f)
    else:
        print(json.dumps(sec))


def _worker(args) -> None:
    """A long-lived process for --against: reads an image name per line, runs every stage once on it and
    answers with the seconds per stage as one JSON line."""
    import lvss.pipeline  # noqa: F401
    import lvss.threads as T

    T.apply(None)
    images = {name: (rgba, cfg) for name, rgba, cfg in _inputs(args.images or [], not args.no_photos)}
    for line in sys.stdin:
        rgba, cfg = images[line.strip()]
        print(json.dumps(_run_stages(rgba, cfg)[0]), flush=True)


def _against(images: list[str], photos: bool, other: Path, repeats: int) -> None:
    """Both trees' warm seconds per stage, runs alternating between a worker process of each."""
    extra = ["--worker", "--images", *images] + ([] if photos else ["--no-photos"])
    if not images:
        extra.remove("--images")
    workers = {}
    for tag, tree in (("this", ROOT), ("other", other)):
        env = dict(os.environ, PYTHONPATH=str(tree), LVSS_THREADS="1")
        workers[tag] = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *extra], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(tag: str, name: str) -> dict[str, float]:
        w = workers[tag]
        w.stdin.write(name + "\n")
        w.stdin.flush()
        return json.loads(w.stdout.readline())

    names = list(images) + (list(PHOTOS) if photos else [])
    print(f"warm CPU seconds per stage, 1 thread, median of {repeats} runs alternating between this tree "
          f"({ROOT}) and {other}")
    print(f"{'image':10s} {'tree':5s}" + "".join(f"{s:>13s}" for s in STAGES) + f"{'total':>9s}")
    sums = {tag: {s: 0.0 for s in STAGES} for tag in workers}
    try:
        for name in names:
            for tag in workers:
                ask(tag, name)                          # warm-up
            runs: dict[str, list] = {tag: [] for tag in workers}
            for k in range(max(1, repeats)):
                for tag in (("this", "other") if k % 2 == 0 else ("other", "this")):
                    runs[tag].append(ask(tag, name))
            for tag in ("other", "this"):
                row = {s: statistics.median(r[s] for r in runs[tag]) for s in STAGES}
                for s in STAGES:
                    sums[tag][s] += row[s]
                print(f"{name:10s} {tag:5s}" + "".join(f"{row[s]:13.3f}" for s in STAGES)
                      + f"{sum(row.values()):9.3f}", flush=True)
        for tag in ("other", "this"):
            print(f"{'sum':10s} {tag:5s}" + "".join(f"{sums[tag][s]:13.3f}" for s in STAGES)
                  + f"{sum(sums[tag].values()):9.3f}")
        print(f"{'ratio':10s} {'':5s}" + "".join(f"{sums['this'][s] / max(sums['other'][s], 1e-9):13.2f}"
                                                 for s in STAGES)
              + f"{sum(sums['this'].values()) / max(sum(sums['other'].values()), 1e-9):9.2f}")
    finally:
        for w in workers.values():
            w.stdin.close()
            w.wait()


def _spawn(extra: list[str], tree: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(tree), LVSS_THREADS="1")
    return subprocess.run([sys.executable, str(Path(__file__).resolve()), *extra], env=env,
                          capture_output=True, text=True, check=True)


def _who(name: str) -> list[str]:
    return ["--photo", name] if name in PHOTOS else ["--images", name]


def _diff(a, b, where: str, out: list[str]) -> None:
    import numpy as np

    if isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            out.append(f"{where}: length {len(a)} vs {len(b) if isinstance(b, (list, tuple)) else type(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{where}[{i}]", out)
    elif isinstance(a, dict):
        for k in a:
            _diff(a[k], b.get(k), f"{where}.{k}", out)
    elif a is None or b is None:
        if (a is None) != (b is None):
            out.append(f"{where}: {type(a).__name__} vs {type(b).__name__}")
    else:
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape:
            out.append(f"{where}: shape {x.shape} vs {y.shape}")
        elif x.dtype.kind in "fc":
            err = float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max()) if x.size else 0.0
            if err > 1e-5:
                out.append(f"{where}: max difference {err:.3g}")
        elif not np.array_equal(x, y):
            out.append(f"{where}: {int((x != y).sum())} of {x.size} values differ")


def _tree(rev_or_dir: str) -> Path:
    return other_tree(rev_or_dir, "--check")


def _check(names: list[str], other: Path) -> int:
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            outs = []
            for tree, tag in ((ROOT, "this"), (other, "other")):
                f = Path(tmp) / f"{name}_{tag}.pkl"
                _spawn([*_who(name), "--child-dump", str(f)], tree)
                with open(f, "rb") as fh:
                    outs.append(pickle.load(fh))
            diffs: list[str] = []
            _diff(outs[0], outs[1], name, diffs)
            n = {k: len(v) for k, v in outs[0].items()}
            print(f"{name:10s} {'same' if not diffs else 'DIFFERENT'}  ({n})", flush=True)
            for d in diffs[:10]:
                print("   ", d)
            bad += bool(diffs)
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", nargs="+")
    ap.add_argument("--all", action="store_true", help="every OpenMoji *_256.png")
    ap.add_argument("--no-photos", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--first", type=int, default=3, help="fresh processes for the first-call figures (0: none)")
    ap.add_argument("--check", metavar="REV_OR_DIR")
    ap.add_argument("--against", metavar="REV_OR_DIR",
                    help="warm figures of this tree and another, runs alternating between the two")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--photo", help=argparse.SUPPRESS)
    ap.add_argument("--child-first", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-dump", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_first or args.child_dump:
        _child(args)
        return 0
    if args.worker:
        _worker(args)
        return 0
    if args.all:
        images = sorted(p.name.split("_")[0] for p in OPENMOJI.glob("*_256.png"))
    else:
        images = list(args.images or DEFAULT_EMOJI)
    names = images + ([] if args.no_photos else list(PHOTOS))
    if args.check:
        return _check(names, _tree(args.check))
    if args.against:
        _against(images, not args.no_photos, _tree(args.against), args.repeats)
        return 0

    import lvss
    import lvss.threads as T

    T.apply(None)
    tree = Path(lvss.__file__).resolve().parents[1]    # the tree timed (PYTHONPATH), also in fresh processes
    print(f"lvss from {tree}")
    print(f"CPU seconds per stage, 1 thread; warm = median of {args.repeats}, "
          f"first = median of {args.first} fresh processes")
    head = f"{'image':10s} {'':5s}" + "".join(f"{s:>13s}" for s in STAGES) + f"{'total':>9s}"
    print(head)
    totals: dict[str, dict[str, float]] = {}
    for name, rgba, cfg in _inputs(images, not args.no_photos):
        _, _, ncalls = _run_stages(rgba, cfg)          # warm-up
        runs = [_run_stages(rgba, cfg)[0] for _ in range(max(1, args.repeats))]
        rows = {"warm": {s: statistics.median(r[s] for r in runs) for s in STAGES}}
        if args.first > 0:
            firsts = [json.loads(_spawn([*_who(name), "--child-first"], tree).stdout.strip().splitlines()[-1])
                      for _ in range(args.first)]
            rows["first"] = {s: statistics.median(r[s] for r in firsts) for s in STAGES}
        for kind, row in rows.items():
            tot = sum(row.values())
            print(f"{name:10s} {kind:5s}" + "".join(f"{row[s]:13.3f}" for s in STAGES) + f"{tot:9.3f}", flush=True)
            acc = totals.setdefault(kind, {s: 0.0 for s in STAGES})
            for s in STAGES:
                acc[s] += row[s]
        print(f"{'':10s} {'':5s} ({ncalls} mask_to_path calls recorded)")
    for kind, row in totals.items():
        print(f"{'sum':10s} {kind:5s}" + "".join(f"{row[s]:13.3f}" for s in STAGES)
              + f"{sum(row.values()):9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
