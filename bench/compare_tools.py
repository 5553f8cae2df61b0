"""lvss against the tracers people know: vtracer and potrace (the engine of Inkscape's Trace Bitmap).

Every tool gets the same inputs and the same path budget, and every SVG is scored the same way:

* inputs: the twelve OpenMoji clip-art images bundled in ``tests/data/openmoji`` (``*_256.png``), and
  scikit-image's astronaut, chelsea, coffee and rocket photographs fitted to 256 px on the long side
  (the photographs of ``bench/quality.py``);
* budget: ``--clip-paths`` (64) ``<path>`` elements for clip art, ``--photo-paths`` (256) for
  photographs;
* lvss: the ``lvss vectorize`` command (``python -m lvss``, this checkout), ``--paths`` the budget,
  ``--threads 1``, ``--quality`` (default ``balanced``), seed 0; its seconds are the whole command's
  (process start-up included);
* vtracer (colour, stacked, spline): its ``filter_speckle`` / ``layer_difference`` walked from fine
  to coarse; the first three settings that stay within the budget are scored and the best kept;
* potrace as Inkscape's *Trace Bitmap > Multiple scans > Colours* with *Stack* on does it: the
  image (over white) is quantised to N colours (median cut, no dithering), one black-and-white mask
  per colour is traced by the ``potrace`` command (Debian's ``potrace`` package; smooth corners 1.0
  and optimise 0.2, Inkscape's defaults), and the scans are stacked back to front, lightest colour
  first, each mask covering its colour and every colour in front of it (so no gaps open between
  scans). For every N in 2..32 the speckle size (``potrace -t``; Inkscape's default 2) grows until
  the path count fits the budget, and the best-scoring of these settings is kept. Its seconds are
  the tracing of the kept setting (quantising and the ``potrace`` runs).

The baselines are thus tuned per image on the score itself, which favours them, not lvss.

Scores: each SVG is rendered by resvg at the input's size over white and compared with the input
over white: PSNR (dB) and SSIM; ``paths`` counts ``<path>`` elements, ``subpaths`` their contours
(vtracer's and potrace's paths are compound: an outline and its holes); ``crossing`` counts the
paths that cross themselves, by ``bench/editability.py``'s independent checker.

    PYTHONPATH=. python bench/compare_tools.py [--images 1F98A astronaut ... | --quick] [--clip-paths 64]
        [--photo-paths 256] [--quality balanced] [--out DIR] [--skip-lvss] [--json FILE]

``--quick``: three of the clip-art images and one photograph (a check, not the table).

Prints a summary table (one row per tool and kind of image: the README's table), then one row per
image and tool. The SVGs are written under ``--out`` (default bench/out/compare_tools). Without the
``potrace`` command the potrace rows say so and the rest still runs.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from quality import count_paths, over_white  # noqa: E402  (bench/quality.py)

CLIP_DIR = ROOT / "tests" / "data" / "openmoji"
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
SIZE = 256
# vtracer, fine to coarse: (filter_speckle, layer_difference)
VT_SCHEDULE = [(1, 8), (2, 12), (4, 16), (5, 20), (6, 24), (8, 28), (10, 32), (12, 36), (14, 40),
               (16, 44), (20, 48), (24, 56), (28, 64), (32, 72), (40, 80), (48, 96), (64, 112),
               (96, 128), (128, 160), (192, 200), (256, 255)]
VT_SCORED = 3
# potrace: colours of the quantised image, and the speckle sizes (potrace -t, pixels) tried per count
POTRACE_COLOURS = (2, 3, 4, 6, 8, 12, 16, 24, 32)
POTRACE_SPECKLES = (2, 4, 8, 16, 32, 64, 128, 256, 512)
TOOLS = ("lvss", "vtracer", "potrace")
QUICK = ("1F344", "1F98A", "2615", "chelsea")


# ------------------------------------------------------------------------------------------------
# inputs and scores
# ------------------------------------------------------------------------------------------------
def clip_names() -> list[str]:
    return sorted(p.name[: -len("_256.png")] for p in CLIP_DIR.glob("*_256.png"))


def load_input(name: str) -> tuple[str, np.ndarray]:
    """(kind, (H, W, 3|4) uint8) for a bundled OpenMoji code or a scikit-image photograph."""
    if name in PHOTOS:
        from skimage import data

        im = Image.fromarray(getattr(data, name)()).convert("RGB")
        s = SIZE / max(im.size)
        if s != 1:
            im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
        return "photo", np.asarray(im)
    p = CLIP_DIR / f"{name}_256.png"
    if not p.is_file():
        raise SystemExit(f"unknown image {name!r}: not a photograph ({', '.join(PHOTOS)}) and no {p}")
    return "clip art", np.asarray(Image.open(p).convert("RGBA"))


def render(svg: str, w: int, h: int) -> np.ndarray:
    from editability import render as resvg

    return resvg(svg, w, h, "white")


def psnr_of(svg: str, target: np.ndarray) -> float:
    from editability import psnr

    h, w = target.shape[:2]
    return psnr(render(svg, w, h), target)


def score(svg: str, target: np.ndarray) -> dict:
    """resvg PSNR / SSIM against the target (over white), path counts, self-crossing paths."""
    from editability import check_paths, psnr

    from lvss.metrics import ssim

    h, w = target.shape[:2]
    out = render(svg, w, h)
    geo = check_paths(svg, w, h)
    return {"psnr": psnr(out, target), "ssim": ssim(out, target), "paths": geo["paths"],
            "subpaths": geo["subpaths"], "crossing": geo["crossing_paths"], "bytes": len(svg.encode("utf-8"))}


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------
# the three tools
# ------------------------------------------------------------------------------------------------
def run_lvss(img_file: Path, svg_file: Path, budget: int, quality: str) -> tuple[str, float, str]:
    """(svg, seconds, settings) of one ``lvss vectorize`` command."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    cmd = [sys.executable, "-m", "lvss", "vectorize", str(img_file), "-o", str(svg_file), "--paths", str(budget),
           "--threads", "1", "--quality", quality, "--seed", "0"]
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"lvss exited with {p.returncode}: {(p.stderr.strip().splitlines() or [''])[-1]}")
    return svg_file.read_text(encoding="utf-8"), secs, f"--quality {quality}"


def run_vtracer(img: np.ndarray, target: np.ndarray, budget: int) -> tuple[str, float, str]:
    """The best-scoring of the first VT_SCORED schedule settings within the budget."""
    import vtracer

    rgba = img if img.shape[2] == 4 else np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    png = _png(rgba)
    best = None
    scored = 0
    for fs, ld in VT_SCHEDULE:
        t = time.perf_counter()
        svg = vtracer.convert_raw_image_to_svg(png, img_format="png", colormode="color", hierarchical="stacked",
                                               mode="spline", filter_speckle=fs, layer_difference=ld)
        secs = time.perf_counter() - t
        if count_paths(svg) > budget:
            continue
        p = psnr_of(svg, target)
        if best is None or p > best[0]:
            best = (p, svg, secs, f"filter_speckle={fs} layer_difference={ld}")
        scored += 1
        if scored == VT_SCORED:
            break
    if best is None:
        raise RuntimeError(f"no vtracer setting stays within {budget} paths")
    return best[1], best[2], best[3]


def potrace_svg(rgb: np.ndarray, colours: int, speckle: int, work: Path) -> str:
    """Inkscape-style multi-scan colour trace of an (H, W, 3) uint8 image: quantise to ``colours``,
    trace a stacked mask per colour with potrace, layers back to front (lightest colour first)."""
    h, w = rgb.shape[:2]
    q = Image.fromarray(rgb).quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    idx = np.asarray(q)
    pal = np.asarray(q.getpalette()[: 3 * 256], np.uint8).reshape(-1, 3)
    used = np.unique(idx)
    # back to front: lightest colour first, so dark outlines and details lie on top (stacking by area
    # instead scored 2-4 dB lower on these images)
    order = used[np.argsort(-pal[used].astype(np.int64).sum(1), kind="stable")]
    rank = np.empty(256, np.int64)
    rank[order] = np.arange(len(order))
    r = rank[idx]
    files = []
    for k in range(len(order)):
        f = work / f"scan{k:02d}.pbm"
        # black (traced) where this colour or one in front of it is: the stacked scan
        Image.fromarray(np.where(r >= k, 0, 255).astype(np.uint8)).convert("1").save(f)
        files.append(f)
    subprocess.run(["potrace", "--svg", "-t", str(speckle), "-a", "1", "-O", "0.2", *map(str, files)],
                   check=True, capture_output=True)
    body = []
    for k, f in enumerate(files):
        paths = re.findall(r'<path d="([^"]*)"\s*/>', f.with_suffix(".svg").read_text())
        if paths:
            colour = "#%02x%02x%02x" % tuple(pal[order[k]])
            body.append(f'<g fill="{colour}">' + "".join(f'<path d="{_potrace_d(d, h)}"/>' for d in paths) + "</g>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
            + "".join(body) + "</svg>")


def _potrace_d(d: str, height: int) -> str:
    """potrace's path data (M/m, L/l, C/c, Z/z, in tenths of a pixel with y up, as its SVG's group
    transform ``translate(0, H) scale(0.1, -0.1)`` reads it) in the canvas's own pixels, so that the
    SVG needs no transform (and outlines keep one width whatever the tool)."""
    out, cmd, pair = [], "M", []
    for tok in re.findall(r"[MmLlCcZz]|[-+]?(?:\d+\.?\d*|\.\d+)", d):
        if tok.isalpha():
            cmd = tok
            out.append(tok)
            continue
        pair.append(float(tok))
        if len(pair) == 2:
            x, y = pair
            pair = []
            out.append(f"{0.1 * x:g} {height - 0.1 * y:g}" if cmd.isupper() else f"{0.1 * x:g} {-0.1 * y:g}")
    return " ".join(out)


def run_potrace(img: np.ndarray, target: np.ndarray, budget: int) -> tuple[str, float, str]:
    """For each colour count the finest speckle size within the budget; the best-scoring is kept."""
    rgb = np.clip(np.rint(target * 255), 0, 255).astype(np.uint8)   # over white, as Inkscape shows it
    best = None
    with tempfile.TemporaryDirectory(prefix="lvss-potrace-") as d:
        for n in POTRACE_COLOURS:
            for t in POTRACE_SPECKLES:
                t0 = time.perf_counter()
                svg = potrace_svg(rgb, n, t, Path(d))
                secs = time.perf_counter() - t0
                if count_paths(svg) <= budget:
                    break
            else:
                continue
            p = psnr_of(svg, target)
            if best is None or p > best[0]:
                best = (p, svg, secs, f"colours={n} speckles={t}")
    if best is None:
        raise RuntimeError(f"no potrace setting stays within {budget} paths")
    return best[1], best[2], best[3]


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------
def _mean(v):
    v = [x for x in v if x == x]
    return statistics.fmean(v) if v else float("nan")


def summary_table(rows: list[dict], budgets: dict) -> str:
    lines = ["| images | tool | paths (mean) | contours (mean) | PSNR dB | SSIM | paths crossing themselves | "
             "seconds (median) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for kind in ("clip art", "photo"):
        imgs = sorted({r["image"] for r in rows if r["kind"] == kind})
        if not imgs:
            continue
        label = (f"{len(imgs)} OpenMoji, {budgets[kind]} paths" if kind == "clip art"
                 else f"{len(imgs)} photograph{'s' * (len(imgs) != 1)} (256 px), {budgets[kind]} paths")
        for tool in TOOLS:
            rs = [r for r in rows if r["kind"] == kind and r["tool"] == tool]
            ok = [r for r in rs if not r["error"]]
            if not ok:
                why = rs[0]["error"] if rs else "not run"
                lines.append(f"| {label} | {tool} | – | – | – | – | – | {why} |")
                continue
            miss = f" ({len(rs) - len(ok)} failed)" if len(ok) < len(rs) else ""
            lines.append(f"| {label} | {tool}{miss} | {_mean(r['paths'] for r in ok):.1f} | "
                         f"{_mean(r['subpaths'] for r in ok):.1f} | {_mean(r['psnr'] for r in ok):.2f} | "
                         f"{_mean(r['ssim'] for r in ok):.3f} | {sum(r['crossing'] for r in ok)} of "
                         f"{sum(r['paths'] for r in ok)} | {statistics.median(r['seconds'] for r in ok):.2f} |")
    return "\n".join(lines)


def image_table(rows: list[dict]) -> str:
    lines = ["| image | tool | paths | contours | PSNR dB | SSIM | crossing | SVG bytes | seconds | settings |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if r["error"]:
            lines.append(f"| {r['image']} | {r['tool']} | – | – | – | – | – | – | – | {r['error']} |")
        else:
            lines.append(f"| {r['image']} | {r['tool']} | {r['paths']} | {r['subpaths']} | {r['psnr']:.2f} | "
                         f"{r['ssim']:.3f} | {r['crossing']} | {r['bytes']} | {r['seconds']:.2f} | {r['settings']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", nargs="+", help="OpenMoji codes and/or photograph names (default: all)")
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    ap.add_argument("--clip-paths", type=int, default=64, help="path budget for clip art (default 64)")
    ap.add_argument("--photo-paths", type=int, default=256, help="path budget for photographs (default 256)")
    ap.add_argument("--quality", default="balanced", choices=("fast", "balanced", "best"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "compare_tools")
    ap.add_argument("--skip-lvss", action="store_true", help="only the other tools (quick check of the baselines)")
    ap.add_argument("--json", type=Path, help="also write every row as JSON here")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))   # bench/editability.py

    names = a.images or (list(QUICK) if a.quick else clip_names() + list(PHOTOS))
    budgets = {"clip art": a.clip_paths, "photo": a.photo_paths}
    has_potrace = shutil.which("potrace") is not None
    if not has_potrace:
        print("potrace is missing: no 'potrace' command on PATH (Debian/Ubuntu: apt-get install potrace); "
              "its rows are left empty", file=sys.stderr)
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        kind, img = load_input(name)
        target = over_white(img)
        budget = budgets[kind]
        img_file = a.out / f"{name}.png"
        Image.fromarray(img).save(img_file)
        for tool in TOOLS:
            row = {"image": name, "kind": kind, "tool": tool, "budget": budget, "error": ""}
            try:
                if tool == "lvss":
                    if a.skip_lvss:
                        continue
                    svg, secs, settings = run_lvss(img_file, a.out / f"{name}_lvss.svg", budget, a.quality)
                elif tool == "vtracer":
                    svg, secs, settings = run_vtracer(img, target, budget)
                else:
                    if not has_potrace:
                        raise RuntimeError("potrace is missing (apt-get install potrace)")
                    svg, secs, settings = run_potrace(img, target, budget)
                (a.out / f"{name}_{tool}.svg").write_text(svg, encoding="utf-8")
                row.update(score(svg, target), seconds=secs, settings=settings)
            except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
                row["error"] = str(e)
            rows.append(row)
            print(f"{name:>10} {tool:>8}: " + (row["error"] or f"{row['paths']} paths, {row['psnr']:.2f} dB, "
                  f"SSIM {row['ssim']:.3f}, {row['crossing']} crossing, {row['seconds']:.2f} s ({row['settings']})"),
                  file=sys.stderr, flush=True)
    print(summary_table(rows, budgets))
    print()
    print(image_table(rows))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
