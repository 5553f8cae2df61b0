"""Rasterizer benchmark: forward and forward+backward milliseconds and peak memory.

Random closed paths (4 cubic segments each, radius 5–15 % of the canvas) at 256² and 512², for 64,
256 and 1024 paths; median of 5 runs after a warm-up. CPU always, CUDA when present. Where pydiffvg
is importable, DiffVG runs on the same scenes and its figures are printed beside lvss's as a ratio.
Also checks parity with resvg (PSNR of lvss's render against resvg's render of the written SVG).

``--fills``: also time scenes whose paths are a third each flat, linear-gradient and radial-gradient
filled (gradients evaluated per covered pixel, differentiable in their parameters), and check their
resvg parity too.

``--baseline REV [REV ...]``: also time ``lvss/render/torch_raster.py`` as of each git revision on
the same scenes, in the same run: all take turns in every repeat (so that a change in the machine's
load hits them alike), and each gets a row with its wall-clock and CPU (process) milliseconds and
its speed-up over the first revision given. CPU time is the steadier figure on a shared machine.

    python bench/raster.py [--threads N] [--sizes 256 512] [--paths 64 256 1024] [--repeat 5] [--fills]
                           [--baseline REV [REV ...]] [--no-parity]
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lvss.render import render_paths  # noqa: E402
from lvss.testing import random_scene  # noqa: E402

# DiffVG's own CPU renderer (2x2 samples per pixel), forward+backward ms, measured on a 2-core machine
DIFFVG_ANCHOR_MS = {(64, 256): 377, (256, 256): 1106, (1024, 256): 4434,
                    (64, 512): 1613, (256, 512): 4887, (1024, 512): 18690}


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def mixed_scene(n: int, size: int, seed: int):
    """random_scene with every second and third path of three given a linear / radial gradient."""
    from lvss.scene import LinearGradient, RadialGradient

    sc = random_scene(n, size, seed=seed)
    g = torch.Generator().manual_seed(seed)
    for i, p in enumerate(sc.paths()):
        lo, hi = p.points.min(0).values, p.points.max(0).values
        cols = torch.rand(3, 4, generator=g) * 0.5 + 0.5
        if i % 3 == 1:
            p.fill = LinearGradient(lo, hi, [0.0, 0.5, 1.0], cols)
        elif i % 3 == 2:
            p.fill = RadialGradient((lo + hi) / 2, float((hi - lo).max()) / 2, [0.0, 0.5, 1.0], cols,
                                    focal=(lo + hi) / 2 + (hi - lo) / 8)
    return sc


@contextlib.contextmanager
def _using(mod):
    """render_paths drawing with ``mod``'s render_torch (a baseline revision's), or lvss's own (None)."""
    import lvss.render as lr

    keep = lr.render_torch
    if mod is not None:
        lr.render_torch = mod.render_torch
    try:
        yield
    finally:
        lr.render_torch = keep


def measure(n: int, size: int, dev: torch.device, renderer: str, repeat: int, fills: bool = False,
            variants=(("lvss", None),)) -> dict:
    """{variant name: {"fwd", "fb" (median wall ms), "fb_cpu" (median CPU ms), "peak" (MiB)}} for the
    variants (name, torch_raster module or None for lvss's own), which take turns in every repeat."""
    from lvss.render import pack_fills

    sc = mixed_scene(n, size, n + size) if fills else random_scene(n, size, seed=n + size)
    packed = pack_fills(sc.fills())
    packed = packed.to(dev) if packed is not None else None
    pts0 = [p.points.to(dev) for p in sc.paths()]
    cols0 = sc.colors().to(dev)
    target = torch.rand(size, size, 3, device=dev, generator=torch.Generator(device=dev).manual_seed(0))

    def once(backward: bool, mod=None) -> tuple[float, float]:
        pts = [p.clone().requires_grad_(backward) for p in pts0]
        cols = cols0.clone().requires_grad_(backward)
        _sync(dev)
        t, c = time.perf_counter(), time.process_time()
        f = None
        if packed is not None:
            f = type(packed)(packed.path, packed.kind, packed.geom.clone().requires_grad_(backward), packed.offsets,
                             packed.colors.clone().requires_grad_(backward))
        with _using(mod):
            img = render_paths(pts, cols, size, size, background=(1.0, 1.0, 1.0), renderer=renderer, fills=f)
        if backward:
            ((img - target) ** 2).mean().backward()
        _sync(dev)
        return (time.perf_counter() - t) * 1e3, (time.process_time() - c) * 1e3

    for _, mod in variants:
        once(True, mod)  # warm-up
    fwd = {name: [] for name, _ in variants}
    fb = {name: [] for name, _ in variants}
    for _ in range(repeat):
        for name, mod in variants:
            fwd[name].append(once(False, mod)[0])
    for _ in range(repeat):
        for name, mod in variants:
            fb[name].append(once(True, mod))
    out = {}
    for name, mod in variants:
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            once(True, mod)
            peak = torch.cuda.max_memory_allocated() / 2 ** 20
        else:
            peak = _cpu_peak_mb(lambda: once(True, mod))
        out[name] = {"fwd": statistics.median(fwd[name]), "fb": statistics.median(w for w, _ in fb[name]),
                     "fb_cpu": statistics.median(c for _, c in fb[name]), "peak": peak}
    return out


def _cpu_peak_mb(fn) -> float:
    """Peak bytes allocated by torch's CPU allocator during fn, via the profiler's memory records."""
    with torch.profiler.profile(profile_memory=True) as prof:
        fn()
    cur = peak = 0
    events = sorted((e for e in prof.events() if e.cpu_memory_usage), key=lambda e: e.time_range.start)
    for e in events:
        cur += e.cpu_memory_usage
        peak = max(peak, cur)
    return peak / 2 ** 20


def parity(n: int, size: int, fills: bool = False) -> float:
    from lvss.render import render
    from lvss.svg import scene_to_svg, svg_to_scene
    from lvss.testing import resvg_render

    sc = mixed_scene(n, size, 1000 + n) if fills else random_scene(n, size, seed=1000 + n)
    svg = scene_to_svg(sc)
    ref = resvg_render(svg, size, size)
    ours = render(svg_to_scene(svg), background=(1.0, 1.0, 1.0)).numpy()
    mse = float(((ref - ours) ** 2).mean())
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--paths", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--fills", action="store_true", help="also time and check scenes with gradient fills")
    ap.add_argument("--baseline", nargs="+", default=[],
                    help="git revisions whose torch_raster.py to time beside lvss's (speed-ups over the first)")
    ap.add_argument("--no-parity", action="store_true", help="skip the resvg parity check")
    args = ap.parse_args(argv)
    variants = [("lvss", None)]
    if args.baseline:
        from raster_replay import load_module

        variants += [(f"revision {rev}", load_module(rev)) for rev in args.baseline]
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    try:
        import pydiffvg  # noqa: F401
        have_diffvg = True
    except ImportError:
        have_diffvg = False
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, diffvg "
          f"{'present' if have_diffvg else 'absent (anchor figures from a source build shown instead)'}")
    print()
    print("| device | size | paths | rasterizer | fwd ms | fwd+bwd ms | fwd+bwd CPU ms | peak MiB | "
          "DiffVG fwd+bwd ms | DiffVG / lvss |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def rows(dev, size, label, res, src="n/a", d=None):
        first = variants[1][0] if len(variants) > 1 else None
        for name, r in res.items():
            ratio = f"{d / r['fb']:.1f}x" if d else "n/a"
            if first is not None and name != first:
                b = res[first]
                name += f" ({b['fb_cpu'] / r['fb_cpu']:.2f}x CPU, {b['fb'] / r['fb']:.2f}x wall)"
            print(f"| {dev.type} | {size}² | {label} | {name} | {r['fwd']:.1f} | {r['fb']:.1f} | {r['fb_cpu']:.1f} | "
                  f"{r['peak']:.0f} | {src} | {ratio} |", flush=True)

    for dev in devices:
        for size in args.sizes:
            for n in args.paths:
                res = measure(n, size, dev, "torch", args.repeat, variants=variants)
                if have_diffvg:
                    d = measure(n, size, dev, "diffvg", args.repeat)["lvss"]["fb"]
                    src = f"{d:.0f}"
                else:
                    d = DIFFVG_ANCHOR_MS.get((n, size)) if dev.type == "cpu" else None
                    src = f"{d} (anchor)" if d else "n/a"
                rows(dev, size, str(n), res, src, d)
                if args.fills:
                    g = measure(n, size, dev, "torch", args.repeat, fills=True, variants=variants)
                    rows(dev, size, f"{n} (1/3 linear, 1/3 radial)", g)
    if args.no_parity:
        return 0
    print()
    print("resvg parity (PSNR of lvss's render vs resvg's render of the written SVG, 256²):")
    for n in (1, 16, 256):
        print(f"  {n:4d} paths: {parity(n, 256):.2f} dB (goal >= 38)")
        if args.fills:
            print(f"  {n:4d} paths, mixed fills: {parity(n, 256, True):.2f} dB (goal >= 38)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
