"""Quality benchmark: lvss against vtracer on clip art and photographs at fixed path budgets.

For every image (the OpenMoji ``*_256.png`` files and scikit-image's astronaut, coffee, chelsea and
rocket, resized to 256 px on the long side) and every budget N, it runs

* lvss (``lvss.pipeline.run`` with ``VectorizeConfig(paths=N)``, defaults otherwise),
* vtracer tuned to stay within N paths (coarser speckle filter and layer difference, finest first,
  until its SVG has at most N ``<path>`` elements, then the in-between setting that uses most of N),
* vtracer at its defaults (once per image, whatever its path count),

renders each written SVG with resvg over white and compares it with the input (over white):
MSE, PSNR (dB) and SSIM, plus the number of ``<path>`` elements, SVG bytes and seconds.

Writes under ``--out`` (default bench/out/quality): ``table.md``, ``results.json``,
``psnr_vs_paths.png``, ``contact_sheet.png`` (input | lvss | vtracer at the same budget) and the SVGs
in ``svg/``. Prints the markdown table and one summary line per goal:

* clip art at 64 paths: mean PSNR >= 32 dB and median <= 20 s per image;
* photographs at 256 paths: mean PSNR >= vtracer's at the same budget + 3 dB and median <= 60 s.

    PYTHONPATH=. python bench/quality.py [--quick] [--images 1F344 astronaut] [--budgets 64 128 256]
                                         [--out DIR] [--jobs 1] [--seed 0] [--device cpu]
                                         [--structure-iters S] [--refine-iters R] [--opt KEY=VALUE ...]

``--fill auto`` (or linear, radial; several allowed) adds rows "lvss fill=auto": the gradient fills
stage (lvss/optimize/fills.py) run on each flat lvss result, which is exactly what
``VectorizeConfig(optimize=OptimizeConfig(fill="auto"))`` computes (the stage runs after the mode's
scene is complete; at 256 px the working size is the input size, so no rescaling sits between), so
one flat run serves both; its seconds are the flat run's plus the stage's. Goal lines for it: on
photographs at 256 paths auto beats flat by >= 2 dB mean and vtracer at the same budget by >= 4 dB
on every photograph; on clip art auto is never below flat; time within 1.5x of flat.

``--quick``: 2 emoji + 1 photograph at budget 64 only. ``--jobs J`` runs J lvss jobs in parallel
processes (each single-threaded); seconds are then inflated by contention, so the goals are only
judged fairly with ``--jobs 1`` on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OPENMOJI = Path(os.environ.get("LVSS_OPENMOJI", "/work/shared/data/openmoji"))
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
SIZE = 256
BUDGETS = (64, 128, 256)
QUICK_IMAGES = ("1F344", "1F6B2", "astronaut")
# vtracer coarsening schedule, finest first: (filter_speckle, layer_difference)
VT_SCHEDULE = [(4, 16), (5, 20), (6, 24), (8, 28), (10, 32), (12, 36), (14, 40), (16, 44), (20, 48),
               (24, 56), (28, 64), (32, 72), (40, 80), (48, 96), (64, 112), (96, 128), (128, 160),
               (192, 200), (256, 255)]
GOAL_CLIP = dict(budget=64, psnr=32.0, median_s=20.0)
GOAL_PHOTO = dict(budget=256, margin_db=3.0, median_s=60.0)


@dataclass
class Row:
    image: str
    kind: str            # "clip art" | "photo"
    budget: int | None   # None for vtracer at its defaults
    method: str          # "lvss" | "vtracer" | "vtracer default"
    paths: int = 0
    subpaths: int = 0    # closed pieces (moveto commands) over all paths: vtracer's paths are compound
    svg_bytes: int = 0
    seconds: float = 0.0
    mse: float = float("nan")
    psnr: float = float("nan")
    ssim: float = float("nan")
    settings: str = ""
    error: str = ""
    extra: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------------
def _fit(im: Image.Image) -> Image.Image:
    w, h = im.size
    if max(w, h) == SIZE:
        return im
    s = SIZE / max(w, h)
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)


def all_image_names() -> list[str]:
    emoji = sorted(p.name[: -len("_256.png")] for p in OPENMOJI.glob("*_256.png"))
    return emoji + list(PHOTOS)


def load_input(name: str) -> tuple[str, np.ndarray]:
    """(kind, (H, W, 3|4) uint8) for an OpenMoji code or a scikit-image photograph name."""
    if name in PHOTOS:
        from skimage import data

        arr = getattr(data, name)()
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, 2)
        return "photo", np.asarray(_fit(Image.fromarray(arr[..., :3])).convert("RGB"))
    p = OPENMOJI / f"{name}_256.png"
    if not p.is_file():
        raise SystemExit(f"unknown image {name!r}: not a photograph ({', '.join(PHOTOS)}) and no {p}")
    return "clip art", np.asarray(_fit(Image.open(p).convert("RGBA")))


def over_white(img: np.ndarray) -> np.ndarray:
    """(H, W, 3|4) uint8 → (H, W, 3) float32 in [0, 1], composited over white."""
    f = img.astype(np.float32) / 255.0
    if f.shape[2] == 3:
        return f
    return f[..., :3] * f[..., 3:] + (1.0 - f[..., 3:])


# ------------------------------------------------------------------------------------------------
# measuring
# ------------------------------------------------------------------------------------------------
def count_paths(svg: str) -> int:
    """Number of <path> elements in SVG text."""
    return len(re.findall(r"<(?:svg:)?path\b", svg))


def count_subpaths(svg: str) -> int:
    """Number of subpaths (moveto commands) over all <path> d attributes."""
    return sum(len(re.findall(r"[Mm]", d)) for d in re.findall(r'\sd="([^"]*)"', svg))


def score(svg: str, target: np.ndarray) -> dict:
    """Render ``svg`` with resvg at the target's size over white and compare: mse, psnr, ssim."""
    from lvss.metrics import mse, psnr, ssim
    from lvss.testing import resvg_render

    h, w = target.shape[:2]
    out = resvg_render(svg, w, h, background="white")
    return {"mse": mse(out, target), "psnr": psnr(out, target), "ssim": ssim(out, target), "render": out}


def _png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


def vtracer_svg(img: np.ndarray, **kw) -> str:
    import vtracer

    rgba = img if img.shape[2] == 4 else np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], 2)
    return vtracer.convert_raw_image_to_svg(_png_bytes(rgba), img_format="png", **kw)


def run_vtracer_budget(img: np.ndarray, budget: int) -> tuple[str, float, str, int]:
    """vtracer tuned to ``budget``: walk VT_SCHEDULE from fine to coarse to the first setting whose SVG
    has <= budget paths, then search the settings between it and the previous (too fine) one for the
    one that uses most of the budget. Returns (svg, seconds of that conversion, settings, tries)."""
    tries = 0

    def attempt(fs: int, ld: int):
        nonlocal tries
        tries += 1
        t = time.perf_counter()
        svg = vtracer_svg(img, filter_speckle=fs, layer_difference=ld)
        return svg, time.perf_counter() - t, count_paths(svg)

    for k, (fs, ld) in enumerate(VT_SCHEDULE):
        svg, secs, n = attempt(fs, ld)
        if n <= budget:
            break
    else:
        return svg, secs, f"filter_speckle={fs} layer_difference={ld} (still over budget)", tries
    best = (n, -fs, -ld, svg, secs)
    if k > 0:
        fs0, ld0 = VT_SCHEDULE[k - 1]
        for f in range(fs0, fs + 1):
            for d in range(ld0, ld + 1, max(1, (ld - ld0) // 4)):
                if (f, d) in ((fs0, ld0), (fs, ld)):
                    continue
                s2, t2, n2 = attempt(f, d)
                if n2 <= budget and (n2, -f, -d) > best[:3]:
                    best = (n2, -f, -d, s2, t2)
    n, fs, ld, svg, secs = best
    return svg, secs, f"filter_speckle={-fs} layer_difference={-ld}", tries


def _lvss_job(args: tuple) -> dict:
    """One lvss run in a (possibly separate) process: returns svg text, seconds, metrics or error."""
    name, budget, seed, device, iters, mode, fills = args
    import torch

    torch.set_num_threads(1)
    from lvss.config import VectorizeConfig
    from lvss.pipeline import run
    from lvss.svg import scene_to_svg

    _, img = load_input(name)
    try:
        cfg = VectorizeConfig(paths=budget, seed=seed, device=device, mode=mode)
        if iters:  # optional overrides of the optimisation lengths (quick experiments)
            opt = cfg.optimize
            opt = replace(opt, **{k: v for k, v in iters.items() if v is not None})
            cfg = replace(cfg, optimize=opt)
        t, c = time.perf_counter(), time.process_time()
        res = run(img, cfg)
        secs, cpu = time.perf_counter() - t, time.process_time() - c
        out = {"svg": scene_to_svg(res.scene), "seconds": secs, "cpu": cpu, "layers": len(res.scene.layers),
               "timings": res.timings, "error": "", "fills": {}}
        for fill in fills:
            out["fills"][fill] = _fill_job(res.scene, img, cfg, fill, secs, cpu)
        return out
    except Exception as e:  # a failed run is reported in the table, the others still count
        return {"svg": "", "seconds": 0.0, "cpu": 0.0, "layers": 0, "timings": {},
                "error": f"{type(e).__name__}: {e}"}


def _fill_job(scene, img: np.ndarray, cfg, fill: str, secs: float, cpu: float) -> dict:
    """The gradient fills stage on a flat result, as ``run`` does it with ``optimize.fill = fill``."""
    import torch

    from lvss.optimize.fills import apply_fills
    from lvss.pipeline import prepare_image
    from lvss.svg import scene_to_svg

    rgb, alpha = prepare_image(img if img.shape[2] == 4 else np.dstack([img, np.full(img.shape[:2], 255, np.uint8)]),
                               cfg.work_size)
    if (scene.width, scene.height) != (alpha.shape[1], alpha.shape[0]):
        return {"svg": "", "seconds": 0.0, "cpu": 0.0, "layers": 0, "error": "input is not at the working size"}
    c2 = replace(cfg, optimize=replace(cfg.optimize, fill=fill))
    t, c = time.perf_counter(), time.process_time()
    metrics: dict = {}
    out = apply_fills(scene, rgb, alpha, c2, torch.device("cpu" if cfg.device == "auto" else cfg.device), metrics)
    return {"svg": scene_to_svg(out), "seconds": secs + time.perf_counter() - t, "cpu": cpu + time.process_time() - c,
            "stage_cpu": time.process_time() - c, "layers": len(out.layers), "error": "",
            "linear": metrics.get("linear_fills", 0.0), "radial": metrics.get("radial_fills", 0.0)}


def fill_goal_lines(rows: list[Row], fills: list[str], budgets: list[int]) -> list[str]:
    out = []
    for fill in fills:
        m = f"lvss fill={fill}"
        for b in budgets:
            for kind in ("photo", "clip art"):
                pairs = [(f, a) for f in _sel(rows, kind, b, "lvss") for a in _sel(rows, kind, b, m)
                         if f.image == a.image and not f.error and not a.error]
                if not pairs:
                    continue
                d = [a.psnr - f.psnr for f, a in pairs]
                vt = {r.image: r.psnr for r in _sel(rows, kind, b, "vtracer") if not r.error}
                dv = [a.psnr - vt[a.image] for _, a in pairs if a.image in vt]
                tr = [a.extra["cpu_seconds"] / max(f.extra["cpu_seconds"], 1e-9) for f, a in pairs]
                by = [a.svg_bytes / max(f.svg_bytes, 1) for f, a in pairs]
                out.append(f"FILL {fill} vs flat, {kind} @{b} ({len(pairs)} images): PSNR {statistics.fmean(d):+.2f} dB "
                           f"mean (min {min(d):+.2f}), SSIM {statistics.fmean(a.ssim - f.ssim for f, a in pairs):+.4f}, "
                           f"bytes x{statistics.fmean(by):.2f}, CPU time x{statistics.fmean(tr):.2f} (max {max(tr):.2f})"
                           + (f"; vs vtracer {min(dv):+.2f} dB worst, {statistics.fmean(dv):+.2f} mean" if dv else ""))
    return out


# ------------------------------------------------------------------------------------------------
# outputs
# ------------------------------------------------------------------------------------------------
def _f(v: float, nd: int) -> str:
    return "–" if v != v else f"{v:.{nd}f}"


def markdown_table(rows: list[Row]) -> str:
    head = ("| image | kind | budget | method | paths | subpaths | SVG bytes | seconds | MSE | PSNR dB | SSIM "
            "| settings |\n|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    lines = [head]
    for r in rows:
        note = r.error or r.settings
        lines.append(f"| {r.image} | {r.kind} | {r.budget if r.budget else '–'} | {r.method} | {r.paths} | "
                     f"{r.subpaths} | {r.svg_bytes} | {r.seconds:.2f} | {_f(r.mse, 5)} | {_f(r.psnr, 2)} | "
                     f"{_f(r.ssim, 3)} | {note} |")
    return "\n".join(lines)


def _sel(rows, kind, budget, method):
    return [r for r in rows if r.kind == kind and r.budget == budget and r.method == method and not r.error]


def budget_lines(rows: list[Row], budgets: list[int]) -> list[str]:
    """Layered vs compact per budget (mean PSNR over the clip art), and whether more paths ever made
    an image worse (the budget curve must not go down)."""
    out = []
    for kind in ("clip art", "photo"):
        for b in sorted(budgets):
            lv = [r.psnr for r in _sel(rows, kind, b, "lvss") if r.psnr == r.psnr]
            cp = [r.psnr for r in _sel(rows, kind, b, "lvss compact") if r.psnr == r.psnr]
            if lv and cp:
                out.append(f"{kind} @{b} paths: layered {statistics.fmean(lv):.2f} dB vs compact "
                           f"{statistics.fmean(cp):.2f} dB (mean over {len(lv)} images)")
    if len(budgets) > 1:
        drops = []
        for name in sorted({r.image for r in rows}):
            curve = [(b, r.psnr) for b in sorted(budgets) for r in rows
                     if r.image == name and r.budget == b and r.method == "lvss" and r.psnr == r.psnr]
            drops += [f"{name} {b0}->{b1}: {p1 - p0:+.2f} dB" for (b0, p0), (b1, p1) in zip(curve, curve[1:])
                      if p1 < p0]
        out.append("budget curve: " + ("never goes down" if not drops else "goes down at " + ", ".join(drops)))
    return out


def goal_lines(rows: list[Row]) -> list[str]:
    out = []
    g = GOAL_CLIP
    lv = _sel(rows, "clip art", g["budget"], "lvss")
    if not lv:
        out.append(f"GOAL clip art @{g['budget']} paths: not measured (needs emoji at budget {g['budget']})")
    else:
        mp = statistics.fmean(r.psnr for r in lv)
        ms = statistics.median(r.seconds for r in lv)
        ok = mp >= g["psnr"] and ms <= g["median_s"]
        out.append(f"GOAL clip art @{g['budget']} paths ({len(lv)} images): mean PSNR {mp:.2f} dB "
                   f"(goal >= {g['psnr']:.0f}), median {ms:.1f} s (goal <= {g['median_s']:.0f}): "
                   f"{'REACHED' if ok else 'NOT REACHED'}")
    g = GOAL_PHOTO
    lv = _sel(rows, "photo", g["budget"], "lvss")
    vt = {r.image: r for r in _sel(rows, "photo", g["budget"], "vtracer")}
    pairs = [(r, vt[r.image]) for r in lv if r.image in vt]
    if not pairs:
        out.append(f"GOAL photos @{g['budget']} paths: not measured (needs photographs at budget {g['budget']})")
    else:
        ml = statistics.fmean(a.psnr for a, _ in pairs)
        mv = statistics.fmean(b.psnr for _, b in pairs)
        ms = statistics.median(a.seconds for a, _ in pairs)
        margins = ", ".join(f"{a.image} {a.psnr - b.psnr:+.2f}" for a, b in pairs)
        ok = ml >= mv + g["margin_db"] and ms <= g["median_s"]
        out.append(f"GOAL photos @{g['budget']} paths ({len(pairs)} images): mean PSNR lvss {ml:.2f} dB vs "
                   f"vtracer {mv:.2f} dB, margin {ml - mv:+.2f} dB (goal >= +{g['margin_db']:.0f}; per image: "
                   f"{margins}), median {ms:.1f} s (goal <= {g['median_s']:.0f}): "
                   f"{'REACHED' if ok else 'NOT REACHED'}")
    return out


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    kinds = [k for k in ("clip art", "photo") if any(r.kind == k for r in rows)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4.5), squeeze=False)
    style = {"lvss": ("tab:blue", "o"), "vtracer": ("tab:orange", "s"), "vtracer default": ("tab:gray", "^")}
    for ax, kind in zip(axes[0], kinds):
        for method, (col, mk) in style.items():
            rs = [r for r in rows if r.kind == kind and r.method == method and not r.error]
            if not rs:
                continue
            ax.scatter([r.paths for r in rs], [r.psnr for r in rs], c=col, marker=mk, alpha=0.35, s=18)
            if method != "vtracer default":
                budgets = sorted({r.budget for r in rs})
                xs = [statistics.fmean(r.paths for r in rs if r.budget == b) for b in budgets]
                ys = [statistics.fmean(r.psnr for r in rs if r.budget == b) for b in budgets]
                ax.plot(xs, ys, color=col, marker=mk, label=f"{method} (mean per budget)")
            else:
                ax.scatter([], [], c=col, marker=mk, label="vtracer defaults (each image)")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        xs = [r.paths for r in rows if r.kind == kind and not r.error and r.paths > 0]
        if xs:
            ax.set_xticks([t for t in (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
                           if min(xs) / 2 <= t <= max(xs) * 2])
        ax.set_xlabel("paths in the SVG")
        ax.set_ylabel("PSNR vs input (dB, resvg render over white)")
        ax.set_title(kind)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def contact_sheet(entries: list[tuple[str, np.ndarray, Row | None, np.ndarray | None, Row | None,
                                       np.ndarray | None]], path: Path) -> None:
    """One row per (image, budget): input | lvss | vtracer at the same budget, with captions."""
    from PIL import ImageDraw

    cell, cap, pad = SIZE, 14, 4
    W = 3 * (cell + pad) + pad
    H = len(entries) * (cell + cap + pad) + pad
    sheet = Image.new("RGB", (W, H), (200, 200, 200))
    draw = ImageDraw.Draw(sheet)
    for i, (label, inp, lr, limg, vr, vimg) in enumerate(entries):
        y = pad + i * (cell + cap + pad)
        for j, (img, text) in enumerate((
                (inp, label),
                (limg, f"lvss {lr.paths}p {lr.psnr:.1f}dB" if lr and not lr.error else "lvss failed"),
                (vimg, f"vtracer {vr.paths}p {vr.psnr:.1f}dB" if vr and not vr.error else "vtracer failed"))):
            x = pad + j * (cell + pad)
            tile = Image.new("RGB", (cell, cell), (255, 255, 255))
            if img is not None:
                tile.paste(Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)), (0, 0))
            sheet.paste(tile, (x, y + cap))
            draw.text((x + 2, y), text, fill=(0, 0, 0))
    sheet.save(path)


# ------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", nargs="+", metavar="NAME",
                    help="subset: OpenMoji codes (1F344 ...) and/or astronaut coffee chelsea rocket")
    ap.add_argument("--budgets", nargs="+", type=int, metavar="N", help=f"path budgets (default {BUDGETS})")
    ap.add_argument("--quick", action="store_true", help="2 emoji + 1 photograph at budget 64 only")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "quality"), help="output folder")
    ap.add_argument("--jobs", type=int, default=1, help="parallel lvss processes (default 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--structure-iters", type=int, help="override OptimizeConfig.structure_iters")
    ap.add_argument("--refine-iters", type=int, help="override OptimizeConfig.refine_iters")
    ap.add_argument("--opt", nargs="+", default=[], metavar="KEY=VALUE",
                    help="override any OptimizeConfig field, e.g. --opt polish_coarse=0.5 polish_iters=40")
    ap.add_argument("--fill", nargs="+", default=[], choices=("linear", "radial", "auto"),
                    help="also score these gradient fill modes against flat (see the docstring)")
    ap.add_argument("--compact", action="store_true",
                    help="also run compact mode at every budget (layered vs compact side by side)")
    a = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    names = list(a.images or (QUICK_IMAGES if a.quick else all_image_names()))
    budgets = list(a.budgets or ((64,) if a.quick else BUDGETS))
    if any(b <= 0 for b in budgets):
        ap.error("budgets must be positive")
    if a.jobs < 1:
        ap.error("--jobs must be >= 1")
    out = Path(a.out)
    (out / "svg").mkdir(parents=True, exist_ok=True)
    inputs = {n: load_input(n) for n in names}
    targets = {n: over_white(img) for n, (_, img) in inputs.items()}

    # lvss runs (the long part)
    iters = {"structure_iters": a.structure_iters, "refine_iters": a.refine_iters}
    iters = {k: v for k, v in iters.items() if v is not None}
    from lvss.config import OptimizeConfig

    defaults = OptimizeConfig()
    for kv in a.opt:
        key, eq, value = kv.partition("=")
        if not eq or not hasattr(defaults, key):
            ap.error(f"--opt takes KEY=VALUE with KEY an OptimizeConfig field, got {kv!r}")
        kind = type(getattr(defaults, key))
        try:
            iters[key] = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
        except ValueError:
            ap.error(f"--opt {key} needs a {kind.__name__}, got {value!r}")
    modes = ["layered", "compact"] if a.compact else ["layered"]
    fills = tuple(a.fill)
    jobs = [(n, b, a.seed, a.device, iters, m, fills if m == "layered" else ()) for m in modes for n in names
            for b in budgets]
    print(f"{len(jobs)} lvss runs ({len(names)} images x {len(budgets)} budgets), jobs={a.jobs}", file=sys.stderr)
    t_all = time.perf_counter()
    if a.jobs == 1:
        results = []
        for j in jobs:
            results.append(_lvss_job(j))
            r = results[-1]
            print(f"  lvss {j[5]} {j[0]} @{j[1]}: {r['seconds']:.1f} s {r['error']}", file=sys.stderr)
    else:
        with ProcessPoolExecutor(a.jobs) as ex:
            results = list(ex.map(_lvss_job, jobs))

    rows: list[Row] = []
    renders: dict[tuple[str, int | None, str], np.ndarray] = {}

    def add(name, budget, method, svg, secs, settings="", error="", extra=None) -> Row:
        kind = inputs[name][0]
        r = Row(name, kind, budget, method, settings=settings, error=error, extra=extra or {})
        if svg:
            tag = f"{name}_{budget or 'default'}_{method.replace(' ', '_')}.svg"
            (out / "svg" / tag).write_text(svg, encoding="utf-8")
            m = score(svg, targets[name])
            renders[(name, budget, method)] = m.pop("render")
            r.subpaths = count_subpaths(svg)
            r.paths, r.svg_bytes, r.seconds = count_paths(svg), len(svg.encode("utf-8")), round(secs, 3)
            r.mse, r.psnr, r.ssim = m["mse"], m["psnr"], m["ssim"]
        rows.append(r)
        return r

    for name in names:
        img = inputs[name][1]
        for b in budgets:
            res = results[jobs.index((name, b, a.seed, a.device, iters, "layered", fills))]
            add(name, b, "lvss", res["svg"], res["seconds"], error=res["error"],
                extra={"cpu_seconds": round(res["cpu"], 2), "layers": res["layers"], "timings": res["timings"]})
            for fill, fr in res.get("fills", {}).items():
                add(name, b, f"lvss fill={fill}", fr["svg"], fr["seconds"], error=fr["error"],
                    settings=f"{int(fr.get('linear') or 0)} linear + {int(fr.get('radial') or 0)} radial fills, "
                             f"CPU {fr['cpu']:.0f} s (flat {res['cpu']:.0f} s)",
                    extra={"cpu_seconds": round(fr["cpu"], 2), "stage_cpu_seconds": round(fr.get("stage_cpu", 0.0), 2),
                           "linear": fr.get("linear"), "radial": fr.get("radial")})
            if a.compact:
                res = results[jobs.index((name, b, a.seed, a.device, iters, "compact", ()))]
                add(name, b, "lvss compact", res["svg"], res["seconds"], error=res["error"],
                    extra={"cpu_seconds": round(res["cpu"], 2), "layers": res["layers"]})
            svg, secs, settings, tries = run_vtracer_budget(img, b)
            add(name, b, "vtracer", svg, secs, settings=f"{settings}, {tries} tries")
        t = time.perf_counter()
        svg = vtracer_svg(img)
        add(name, None, "vtracer default", svg, time.perf_counter() - t, settings="defaults")

    table = markdown_table(rows)
    goals = goal_lines(rows) + budget_lines(rows, budgets) + fill_goal_lines(rows, list(fills), budgets)
    print(table)
    print()
    for g in goals:
        print(g)
    print(f"(total {time.perf_counter() - t_all:.0f} s; seconds are wall clock per image on this machine)")
    (out / "table.md").write_text(table + "\n\n" + "\n".join(goals) + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps([asdict(r) for r in rows], indent=1), encoding="utf-8")
    plot(rows, out / "psnr_vs_paths.png")
    entries = []
    for name in names:
        for b in budgets:
            lr = next(r for r in rows if r.image == name and r.budget == b and r.method == "lvss")
            vr = next(r for r in rows if r.image == name and r.budget == b and r.method == "vtracer")
            entries.append((f"{name} @{b}", targets[name], lr, renders.get((name, b, "lvss")),
                            vr, renders.get((name, b, "vtracer"))))
    contact_sheet(entries, out / "contact_sheet.png")
    print(f"wrote {out / 'table.md'}, {out / 'psnr_vs_paths.png'}, {out / 'contact_sheet.png'}", file=sys.stderr)
    failed = [r for r in rows if r.error]
    for r in failed:
        print(f"FAILED {r.method} {r.image} @{r.budget}: {r.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
