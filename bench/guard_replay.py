"""Replays the crossing tests of a pipeline run against another source tree: the geometry guard's
steps (:mod:`lvss.geometry.guard`) and the other crossing tests (``crossing_pairs``: the export's,
the start paths'), CPU seconds of each tree on the same calls, and whether their answers are equal.

It records, in this tree, every ``SimpleGuard`` step of ``lvss.pipeline.run`` on each image (an
OpenMoji code, or astronaut / chelsea / coffee / rocket at 256 px): the guarded tensors before the
step and the last good positions, and every ``lvss.geometry.simple.crossing_pairs`` call. Then it
times both trees on the recorded calls in fresh processes, taking turns, one thread, median of
``--repeat``: each tree's guard takes the recorded steps (one guard per optimiser run, set to the
recorded positions before each step), and its ``crossing_pairs`` the recorded calls.

    PYTHONPATH=. python bench/guard_replay.py --against 34e66d6 [--images 1F344:fast:64 astronaut:balanced:256]
                                              [--repeat 3]

``--against`` takes a directory holding an ``lvss`` package or a git revision (checked out with ``git
worktree add`` under the system's temporary folder). Exits 1 when the ``crossing_pairs`` answers
differ; the guard's outcomes (the tensors after every step, hashed) are reported, not required equal
(a different flattening may decide a barely-touching edge pair the other way).
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


_GUARD_CHILD = r"""
import hashlib, pickle, sys, time
import torch
torch.set_num_threads(1)
from lvss.geometry.guard import SimpleGuard
runs = pickle.load(open(sys.argv[1], "rb"))
digest, cpu = hashlib.md5(), 0.0
for params, steps in runs:
    ts = [t.clone() for t, _ in params]
    guard = SimpleGuard([(t, s) for t, (_, s) in zip(ts, params)])
    for now, good in steps:
        if good is None:
            continue
        for t, v in zip(ts, now):
            t.copy_(v)
        if isinstance(guard._good, dict):          # a guard keeping one copy per tensor
            o = 0
            for i, t in guard._tensors.items():
                guard._good[i] = good[o:o + t.shape[0]].clone()
                o += t.shape[0]
        else:
            guard._good = good.clone()
        t0 = time.process_time()
        guard(None)
        cpu += time.process_time() - t0
        for t in ts:
            digest.update(t.numpy().tobytes())
pickle.dump((cpu, digest.hexdigest()[:12]), open(sys.argv[2], "wb"))
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

    runs = []
    init, step = guard.SimpleGuard.__init__, guard.SimpleGuard.__call__

    def rec_init(self, params, *a, **k):
        self._rec_tensors = [t for t, _ in params]
        self._rec = ([(t.detach().clone(), list(s)) for t, s in params], [])
        runs.append(self._rec)
        init(self, params, *a, **k)

    def rec_step(self, opt=None):
        good = self._good
        if isinstance(good, dict):
            good = torch.cat([good[id(t)] for t in dict.fromkeys(self._rec_tensors)]) if good else None
        self._rec[1].append(([t.detach().clone() for t in self._rec_tensors],
                             good.clone() if good is not None and self.guarded else None))
        return step(self, opt)

    simple.crossing_pairs = rec
    guard.SimpleGuard.__init__, guard.SimpleGuard.__call__ = rec_init, rec_step
    cfg = apply_quality(VectorizeConfig(paths=paths), quality, paths_given=True, levels_given=False)
    try:
        run(str(image), cfg)
    finally:
        simple.crossing_pairs = orig
        guard.SimpleGuard.__init__, guard.SimpleGuard.__call__ = init, step
    with open(out, "wb") as f:
        pickle.dump(calls, f)
    with open(str(out) + ".guard", "wb") as f:
        pickle.dump(runs, f)
    return len(calls), sum(len(st) for _, st in runs)


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
    print("| run | guard steps: CPU s other → this | same outcome "
          "| crossing_pairs calls: CPU s other → this | same answers |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for spec in args.images:
            name, quality, paths = spec.split(":")
            image = _photo(name, tmp) if name in ("astronaut", "coffee", "chelsea", "rocket") \
                else OPENMOJI / f"{name}_256.png"
            calls = tmp / f"{name}.calls"
            n, steps = _record(image, quality, int(paths), calls)
            cpu = {tag: [] for tag, _ in trees}
            gcpu = {tag: [] for tag, _ in trees}
            answers, outcome = {}, {}
            for r in range(args.repeat):
                for tag, tree in (trees if r % 2 == 0 else trees[::-1]):
                    out = tmp / f"{name}.{tag}"
                    env = dict(os.environ, PYTHONPATH=str(tree))
                    subprocess.run([sys.executable, "-c", _CHILD, str(calls), str(out)], check=True, env=env,
                                   cwd=tree)
                    with open(out, "rb") as f:
                        c, answers[tag] = pickle.load(f)
                    cpu[tag].append(c)
                    subprocess.run([sys.executable, "-c", _GUARD_CHILD, str(calls) + ".guard", str(out)],
                                   check=True, env=env, cwd=tree)
                    with open(out, "rb") as f:
                        c, outcome[tag] = pickle.load(f)
                    gcpu[tag].append(c)
            same = answers["this"] == answers["other"]
            bad += not same
            mo, mt = statistics.median(cpu["other"]), statistics.median(cpu["this"])
            go, gt = statistics.median(gcpu["other"]), statistics.median(gcpu["this"])
            print(f"| {spec} | {steps}: {go:.3f} → {gt:.3f} ({go / gt:.2f}× faster) | "
                  f"{'yes' if outcome['this'] == outcome['other'] else 'no'} | "
                  f"{n}: {mo:.3f} → {mt:.3f} ({mo / mt:.2f}× faster) | {'yes' if same else 'NO'} |")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
