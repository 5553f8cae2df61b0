"""Rasterizer replay benchmark: the CPU cost of the rasterizer calls real pipeline runs make.

Step 1 (record) runs the pipeline on a few OpenMoji images (default config at 64 paths, and
``--quality fast``) and records every rasterizer call it makes: which entry point (render_torch,
with or without the coverage sum, visibility, covered_pixels), the control points, colours, canvas
size and whether the call needed gradients. Step 2 (replay) runs those calls again on 1 thread and
prints the CPU seconds (``time.process_time``, median of ``--repeat`` runs) of the forward passes
alone and of forward + backward (a backward pass for every call that needed gradients). Calls
with gradient fills are replayed with their flat colours (fills are evaluated after the coverage).

``--baseline REV`` also replays the calls through ``lvss/render/torch_raster.py`` as of git
revision REV, prints its figures and the speed-up, and compares both: the largest render
difference (checked against ``--render-tol``), the gradients' differences relative to each call's
largest gradient, and how far each one's float32 gradients lie from its own float64 run.

Images are OpenMoji codes or photographs (astronaut, coffee, chelsea, rocket), each optionally with
a path budget: ``astronaut:256`` (default 64).

    python bench/raster_replay.py [--images 1F344 1F34C 1F431 1F6B2 astronaut:256] [--repeat 5]
                                  [--baseline REV] [--every K] [--calls FILE]   # reuse / save the calls
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LVSS_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

DATA = Path(os.environ.get("LVSS_DATA", ROOT.parent / "shared" / "data")) / "openmoji"


def _image(spec: str) -> tuple[str, int, np.ndarray]:
    """``NAME[:PATHS]`` -> (name, path budget (default 64), (H, W, 3|4) uint8): an OpenMoji code or
    a scikit-image photograph (astronaut, coffee, chelsea, rocket; resized as bench/quality.py does)."""
    name, _, paths = spec.partition(":")
    budget = int(paths) if paths else 64
    sys.path.insert(0, str(ROOT / "bench"))
    from quality import PHOTOS, load_input

    if name in PHOTOS:
        return name, budget, load_input(name)[1]
    from PIL import Image

    return name, budget, np.array(Image.open(DATA / f"{name}_256.png").convert("RGBA"))


def record(images: list[str], configs: list[str]) -> list[dict]:
    """Run the pipeline on every image under every config; return one list of calls per run."""
    from lvss import pipeline
    from lvss.config import VectorizeConfig, apply_quality
    from lvss.render import torch_raster as tr

    calls: list[dict] = []
    orig = tr._coverage_and_plan

    def rec(points, dev, dt, width, height, samples=16):
        f = sys._getframe(1)
        entry = f.f_code.co_name
        loc = f.f_locals
        c = {"entry": entry, "points": [p.detach().clone().cpu() for p in points], "width": width,
             "height": height, "samples": samples}
        if entry == "render_torch":
            cols = loc["colors"]
            # gradient fills are replayed as flat colours (they are evaluated after the coverage)
            c.update(colors=cols.detach().clone().cpu(), coverage_sum=bool(loc["with_coverage_sum"]),
                     fills=loc["fills"] is not None,
                     grad=any(p.requires_grad for p in points) or cols.requires_grad)
        elif entry in ("visibility", "scene_pairs"):
            c.update(colors=loc["alphas"].detach().clone().cpu(), grad=False)
        else:
            c.update(grad=False)
        calls.append(c)
        return orig(points, dev, dt, width, height, samples)

    tr._coverage_and_plan = rec
    runs = []
    try:
        for spec in images:
            name, budget, img = _image(spec)
            for q in configs:
                cfg = VectorizeConfig(paths=budget)
                if q != "default":
                    cfg = apply_quality(cfg, q, paths_given=True)
                calls.clear()
                t = time.perf_counter()
                pipeline.run(img, cfg)
                runs.append({"image": name, "paths": budget, "config": q, "calls": list(calls)})
                print(f"recorded {name} {q}: {len(calls)} calls "
                      f"({sum(c['grad'] for c in calls)} with gradients) in {time.perf_counter() - t:.1f} s",
                      flush=True)
    finally:
        tr._coverage_and_plan = orig
    return runs


def load_module(rev: str | None):
    """lvss.render.torch_raster, or its text as of git revision ``rev`` loaded as a sibling module."""
    if rev is None:
        from lvss.render import torch_raster

        return torch_raster
    src = subprocess.run(["git", "show", f"{rev}:lvss/render/torch_raster.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "torch_raster_baseline.py"
    path.write_text(src)
    name = "lvss.render._torch_raster_" + "".join(ch if ch.isalnum() else "_" for ch in rev)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


_WEIGHTS: dict = {}


def _weights(shape) -> torch.Tensor:
    """Fixed pseudo-random loss weights per output shape (made once, outside the timed work), so that
    every output pixel gets its own gradient."""
    if shape not in _WEIGHTS:
        _WEIGHTS[shape] = torch.rand(shape, generator=torch.Generator().manual_seed(len(_WEIGHTS)))
    return _WEIGHTS[shape]


def replay_call(mod, c: dict, backward: bool):
    """One recorded call through module ``mod``; returns its outputs (and gradients) for comparison."""
    pts = [p.clone().requires_grad_(c["grad"]) for p in c["points"]]
    w, h = c["width"], c["height"]
    if c["entry"] == "visibility":
        return mod.visibility(pts, c["colors"], w, h)
    if c["entry"] == "scene_pairs":
        # calls recorded before their alphas were kept are replayed with opaque paths
        alphas = c.get("colors", torch.ones(len(pts)))
        p = mod.scene_pairs(pts, alphas, w, h)
        return p.pix, p.pid, p.cov, p.vis
    if c["entry"] == "covered_pixels":
        return mod.covered_pixels(pts, w, h)
    cols = c["colors"].clone().requires_grad_(c["grad"])
    out = mod.render_torch(pts, cols, w, h, c["samples"], with_coverage_sum=c["coverage_sum"])
    if backward and c["grad"]:
        loss = sum((o * _weights(o.shape)).sum() for o in out)
        loss.backward()
        return out, [p.grad for p in pts], cols.grad
    return out


def time_replay(mods: list, runs: list[dict], backward: bool, repeat: int) -> list[float]:
    """Median CPU seconds of replaying all calls through each module; the modules take turns in
    every repeat, so that a change in the machine's load hits them alike."""
    calls = [c for r in runs for c in r["calls"]]

    def once(mod) -> float:
        t = time.process_time()
        for c in calls:
            replay_call(mod, c, backward)
        return time.process_time() - t

    for mod in mods:
        once(mod)   # warm-up (caches, allocator)
    times = [[] for _ in mods]
    for _ in range(repeat):
        for i, mod in enumerate(mods):
            times[i].append(once(mod))
    return [statistics.median(t) for t in times]


def _maxdiff(a, b) -> float:
    if isinstance(a, torch.Tensor):
        a, b = a.detach(), b.detach()
        if a.shape != b.shape:
            return float("inf")
        if not a.is_floating_point():
            return 0.0 if torch.equal(a, b) else float("inf")
        return float((a - b).abs().max()) if a.numel() else 0.0
    if a is None or b is None:
        return 0.0 if a is b else float("inf")
    if len(a) != len(b):
        return float("inf")
    return max([_maxdiff(x, y) for x, y in zip(a, b)], default=0.0)


def _maxabs(a) -> float:
    if isinstance(a, torch.Tensor):
        return max(float(a.detach().abs().max()) if a.numel() else 0.0, 1e-30)
    return max(_maxabs(x) for x in a)


def _pairs_diff(a, b, n_pix: int) -> float:
    """Largest difference of the weights (and coverages) of two lists of (pixel, path) pairs,
    (pix, pid, weight) or (pix, pid, cov, vis); a pair missing from one side weighs 0 there."""
    ka, kb = a[1] * n_pix + a[0], b[1] * n_pix + b[0]
    keys, inv = torch.unique(torch.cat([ka, kb]), return_inverse=True)
    worst = 0.0
    for va, vb in zip(a[2:], b[2:]):
        da = torch.zeros(keys.shape[0], dtype=torch.float64).index_add_(0, inv[:ka.shape[0]], va.double())
        db = torch.zeros(keys.shape[0], dtype=torch.float64).index_add_(0, inv[ka.shape[0]:], vb.double())
        worst = max(worst, float((da - db).abs().max()) if keys.numel() else 0.0)
    return worst


def _as(c: dict, dtype) -> dict:
    """The call with its points and colours in ``dtype``."""
    c = dict(c)
    c["points"] = [p.to(dtype) for p in c["points"]]
    if "colors" in c:
        c["colors"] = c["colors"].to(dtype)
    return c


def compare(new, old, runs: list[dict], reference: bool = True) -> dict:
    """Differences between the two modules' outputs over all recorded calls: renders (largest
    absolute difference), gradients (per call, largest difference relative to the call's largest
    gradient; max and median over the calls), visibility and covered pixels. With ``reference``
    each one is also compared with itself run in float64 on the same calls, which shows how far its
    float32 gradients lie from exact arithmetic."""
    worst = {"render": 0.0, "visibility": 0.0, "covered_pixels (pixels differing)": 0.0}
    rel = {"point grad": [], "colour grad": [], "point grad, current vs float64": [],
           "point grad, baseline vs float64": [], "colour grad, current vs float64": [],
           "colour grad, baseline vs float64": []}
    for r in runs:
        for c in r["calls"]:
            a, b = replay_call(new, c, True), replay_call(old, c, True)
            if c["entry"] in ("visibility", "scene_pairs"):
                # pair by pair (a pair only one of them has counts with weight 0 in the other)
                worst["visibility"] = max(worst["visibility"], _pairs_diff(a, b, c["width"] * c["height"]))
            elif c["entry"] == "covered_pixels":
                # pixels one of them counts as covered and the other not (coverage ~0 at the edge)
                worst["covered_pixels (pixels differing)"] = max(worst["covered_pixels (pixels differing)"], float(sum(
                    torch.cat([x, y]).unique().numel() * 2 - x.numel() - y.numel() for x, y in zip(a, b))))
            elif c["grad"]:
                worst["render"] = max(worst["render"], _maxdiff(a[0], b[0]))
                # gradients relative to the call's largest one (they are sums over many pixels)
                rel["point grad"].append(_maxdiff(a[1], b[1]) / _maxabs(b[1]))
                rel["colour grad"].append(_maxdiff(a[2], b[2]) / _maxabs(b[2]))
                if reference:
                    for name, got, mod in (("current", a, new), ("baseline", b, old)):
                        ref = replay_call(mod, _as(c, torch.float64), True)
                        g1 = [g.double() for g in got[1]]
                        rel[f"point grad, {name} vs float64"].append(_maxdiff(g1, ref[1]) / _maxabs(ref[1]))
                        rel[f"colour grad, {name} vs float64"].append(
                            _maxdiff(got[2].double(), ref[2]) / _maxabs(ref[2]))
            else:
                worst["render"] = max(worst["render"], _maxdiff(a, b))
    for k, v in rel.items():
        if v:
            worst[k + " (relative, max)"] = max(v)
            worst[k + " (relative, median)"] = statistics.median(v)
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", nargs="+", default=["1F344", "1F34C", "1F431", "1F6B2"],
                    help="OpenMoji codes (files <code>_256.png under shared/data/openmoji)")
    ap.add_argument("--configs", nargs="+", default=["default", "fast"], help="'default' and/or quality presets")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--calls", type=Path, default=None,
                    help="pickle of recorded calls: read when it exists, else written after recording")
    ap.add_argument("--baseline", default=None, help="git revision whose torch_raster.py to compare against")
    ap.add_argument("--no-check", action="store_true", help="skip the comparison with the baseline")
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the float64 reference run of the comparison (it is slow on photographs)")
    ap.add_argument("--every", type=int, default=1,
                    help="replay every k-th recorded call of each run (long runs at 256 paths)")
    ap.add_argument("--render-tol", type=float, default=1e-4,
                    help="largest render difference to the baseline counted as equal")
    args = ap.parse_args(argv)

    import lvss.threads

    lvss.threads.apply(1)
    torch.set_num_threads(1)
    if args.calls is not None and args.calls.exists():
        with open(args.calls, "rb") as fh:
            runs = pickle.load(fh)
        print(f"calls read from {args.calls}")
    else:
        runs = record(args.images, args.configs)
        if args.calls is not None:
            with open(args.calls, "wb") as fh:
                pickle.dump(runs, fh)
    if args.every > 1:
        runs = [dict(r, calls=r["calls"][::args.every]) for r in runs]
    calls = [c for r in runs for c in r["calls"]]
    kinds = {}
    for c in calls:
        k = c["entry"] + (" +sum" if c.get("coverage_sum") else "") + (" (grad)" if c["grad"] else "")
        kinds[k] = kinds.get(k, 0) + 1
    print(f"{len(runs)} runs, {len(calls)} calls: " + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPU seconds (median of {args.repeat})")
    mods = [("current", load_module(None))]
    if args.baseline:
        mods.append((f"baseline {args.baseline}", load_module(args.baseline)))
    fwd = time_replay([m for _, m in mods], runs, False, args.repeat)
    both = time_replay([m for _, m in mods], runs, True, args.repeat)
    res = {name: (f, fb) for (name, _), f, fb in zip(mods, fwd, both)}
    print()
    print("| rasterizer | forward s | forward+backward s |")
    print("|---|---|---|")
    for name, (f, fb) in res.items():
        print(f"| {name} | {f:.3f} | {fb:.3f} |")
    if args.baseline:
        (f1, fb1), (f0, fb0) = res["current"], res[mods[1][0]]
        print(f"\nspeed-up over the baseline: forward {f0 / f1:.2f}x, forward+backward {fb0 / fb1:.2f}x")
        if not args.no_check:
            d = compare(mods[0][1], mods[1][1], runs, not args.no_reference)
            print("current vs baseline over all calls:")
            for k, v in d.items():
                print(f"  {k}: {v:.2e}")
            ok = d["render"] <= args.render_tol and d["visibility"] <= args.render_tol
            print(f"renders and visibility within {args.render_tol:g}: {'yes' if ok else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
