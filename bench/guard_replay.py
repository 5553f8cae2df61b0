"""Replays the crossing tests of a pipeline run (the geometry guard's, :mod:`lvss.geometry.guard`, and the
export's) against another source tree: CPU seconds of each tree's ``crossing_pairs`` on the same calls,
and whether their answers (counts and crossing segment pairs) are equal.

It records every ``lvss.geometry.simple.crossing_pairs`` call of ``lvss.pipeline.run`` on each image (an
OpenMoji code, or astronaut / chelsea / coffee / rocket at 256 px) in this tree, then times both trees on
the recorded calls in fresh processes, taking turns, one thread, median of ``--repeat``:

    PYTHONPATH=. python bench/guard_replay.py --against 1f807b1 [--images 1F344:fast:64 astronaut:balanced:256]
                                              [--repeat 3]

``--against`` takes a directory holding an ``lvss`` package or a git revision (checked out with ``git
worktree add`` under the system's temporary folder). Exits 1 when the answers differ.
"""
from __future__ import annotations

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import _photo, _tree  # noqa: E402  (bench/speed.py)

OPENMOJI = Path(os.environ.get("LVSS_OPENMOJI", "/work/shared/data/openmoji"))

_CHILD = r"""
import pickle, sys, time
import torch
torch.set_num_threads(1)
from lvss.geometry.simple import crossing_pairs
calls = pickle.load(open(sys.argv[1], "rb"))
answers = [crossing_pairs(*c) for c in calls]          # also warms up
t = time.process_time()
for c in calls:
    crossing_pairs(*c)
cpu = time.process_time() - t
pickle.dump((cpu, [(a.tolist(), p) for a, p in answers]), open(sys.argv[2], "wb"))
"""


def _record(image: Path, quality: str, paths: int, out: Path) -> int:
    os.environ.setdefault("LVSS_THREADS", "1")
    import torch

    import lvss.geometry.guard as guard
    import lvss.geometry.simple as simple
    from lvss.config import VectorizeConfig, apply_quality
    from lvss.pipeline import run

    torch.set_num_threads(1)
    calls = []
    orig = simple.crossing_pairs

    def rec(points, pieces=simple.DEFAULT_PIECES, max_batch=2_000_000, min_loop=0.0, dtype=torch.float64):
        calls.append(([p.detach().clone() for p in points], pieces, max_batch, min_loop, dtype))
        return orig(points, pieces, max_batch, min_loop, dtype)

    simple.crossing_pairs = guard.crossing_pairs = rec
    cfg = apply_quality(VectorizeConfig(paths=paths), quality, paths_given=True, levels_given=False)
    try:
        run(str(image), cfg)
    finally:
        simple.crossing_pairs = guard.crossing_pairs = orig
    with open(out, "wb") as f:
        pickle.dump(calls, f)
    return len(calls)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", required=True, metavar="REV_OR_DIR")
    ap.add_argument("--images", nargs="+", default=["1F344:fast:64", "1F98A:balanced:64", "astronaut:balanced:256"],
                    help="NAME:QUALITY:PATHS")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    other = _tree(args.against)
    trees = [("this", ROOT), ("other", other)]
    bad = 0
    print("| run | calls | CPU s other → this | same answers |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for spec in args.images:
            name, quality, paths = spec.split(":")
            image = _photo(name, tmp) if name in ("astronaut", "coffee", "chelsea", "rocket") \
                else OPENMOJI / f"{name}_256.png"
            calls = tmp / f"{name}.calls"
            n = _record(image, quality, int(paths), calls)
            cpu = {tag: [] for tag, _ in trees}
            answers = {}
            for r in range(args.repeat):
                for tag, tree in (trees if r % 2 == 0 else trees[::-1]):
                    out = tmp / f"{name}.{tag}"
                    env = dict(os.environ, PYTHONPATH=str(tree))
                    subprocess.run([sys.executable, "-c", _CHILD, str(calls), str(out)], check=True, env=env,
                                   cwd=tree)
                    with open(out, "rb") as f:
                        c, answers[tag] = pickle.load(f)
                    cpu[tag].append(c)
            same = answers["this"] == answers["other"]
            bad += not same
            mo, mt = statistics.median(cpu["other"]), statistics.median(cpu["this"])
            print(f"| {spec} | {n} | {mo:.3f} → {mt:.3f} ({mo / mt:.2f}× faster) | {'yes' if same else 'NO'} |")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
