"""Speed benchmark: end-to-end ``lvss vectorize`` runs (process start to SVG written), as a user meets
them, plus the contention run (one job alone vs two at once on the same machine).

For every image (the OpenMoji ``*_256.png`` files; ``--photos`` adds scikit-image's astronaut, coffee,
chelsea and rocket at 256 px) and every preset, it runs ``lvss vectorize --json`` in a fresh process
``--repeat`` times and prints, per image: the median wall seconds, the seconds per stage (from
``--json``), paths used of the budget and PSNR. Then the medians over the set.

Contention (``--contention``): the same image run alone, then two copies started together, each
``--repeat`` times, median wall seconds of each, and the ratio (goal: two at once each within 2.3x
of one alone). The thread policy is what a user gets by default (``lvss.threads``); ``--threads N``
passes ``--threads N`` to every run instead.

    PYTHONPATH=. python bench/speed.py [--images 1F344 1F6B2] [--photos] [--quality fast balanced]
                                       [--paths N] [--repeat 3] [--contention] [--threads N]

Wall seconds depend on what else the machine runs: the script prints the 1-minute load average
before and after, and figures are fair only on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPENMOJI = Path(os.environ.get("LVSS_OPENMOJI", "/work/shared/data/openmoji"))
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def _photo(name: str, out: Path) -> Path:
    from PIL import Image
    from skimage import data

    arr = getattr(data, name)()
    im = Image.fromarray(arr[..., :3] if arr.ndim == 3 else arr).convert("RGB")
    s = 256 / max(im.size)
    im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
    p = out / f"{name}.png"
    im.save(p)
    return p


def inputs(names: list[str] | None, photos: bool, tmp: Path) -> list[tuple[str, Path]]:
    out = []
    if names:
        for n in names:
            if n in PHOTOS:
                out.append((n, _photo(n, tmp)))
            else:
                p = OPENMOJI / f"{n}_256.png"
                if not p.is_file():
                    raise SystemExit(f"no image {p}")
                out.append((n, p))
        return out
    out = [(p.name.split("_")[0], p) for p in sorted(OPENMOJI.glob("*_256.png"))]
    if photos:
        out += [(n, _photo(n, tmp)) for n in PHOTOS]
    return out


def command(image: Path, out: Path, quality: str, paths: int | None, threads: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "lvss.cli", "vectorize", str(image), "-o", str(out), "--json", "-q",
           "--quality", quality]
    if paths:
        cmd += ["--paths", str(paths)]
    if threads:
        cmd += ["--threads", str(threads)]
    return cmd


def run_once(cmd: list[str]) -> tuple[float, dict]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return wall, json.loads(proc.stdout)


def run_pair(cmd_a: list[str], cmd_b: list[str]) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    t = time.perf_counter()
    pa = subprocess.Popen(cmd_a, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    pb = subprocess.Popen(cmd_b, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    walls = []
    for p in (pa, pb):
        p.wait()
        walls.append(time.perf_counter() - t)
        if p.returncode != 0:
            raise SystemExit(f"a concurrent run failed: {p.stderr.read()[-2000:]}")
    return walls[0], walls[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", nargs="*", help="OpenMoji codes or photo names (default: every OpenMoji image)")
    ap.add_argument("--photos", action="store_true", help="add the four photographs")
    ap.add_argument("--quality", nargs="*", default=["balanced"], choices=("fast", "balanced", "best"))
    ap.add_argument("--paths", type=int, default=None, help="budget (default: the preset's)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--contention", action="store_true", help="one alone vs two at once (first image)")
    args = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ims = inputs(args.images, args.photos, tmp)
        for q in args.quality:
            rows = []
            print(f"\n## quality {q}" + (f", {args.paths} paths" if args.paths else ""))
            print("| image | wall s (median) | load | simplify | segment | layering | structure | refine | "
                  "paths / budget | PSNR |")
            print("|---|---|---|---|---|---|---|---|---|---|")
            for name, path in ims:
                walls, info = [], None
                for _ in range(args.repeat):
                    w, info = run_once(command(path, tmp / f"{name}.svg", q, args.paths, args.threads))
                    walls.append(w)
                t = info["timings"]
                med = statistics.median(walls)
                rows.append((name, med, info["psnr"]))
                print(f"| {name} | {med:.2f} | {t.get('load', 0):.2f} | {t.get('simplify', 0):.2f} | "
                      f"{t.get('segment', 0):.2f} | {t.get('layering', 0):.2f} | {t.get('structure', 0):.2f} | "
                      f"{t.get('refine', t.get('compact', 0)):.2f} | {info['paths']} / {info.get('budget')} | "
                      f"{info['psnr']:.2f} |")
            print(f"\nquality {q}: median wall {statistics.median(r[1] for r in rows):.2f} s, "
                  f"mean PSNR {statistics.fmean(r[2] for r in rows):.2f} dB over {len(rows)} images")
        if args.contention:
            name, path = ims[0]
            q = args.quality[0]
            alone, pair = [], []
            for i in range(args.repeat):
                alone.append(run_once(command(path, tmp / "a.svg", q, args.paths, args.threads))[0])
                a, b = run_pair(command(path, tmp / "b.svg", q, args.paths, args.threads),
                                command(path, tmp / "c.svg", q, args.paths, args.threads))
                pair += [a, b]
            ma, mp = statistics.median(alone), statistics.median(pair)
            print(f"\ncontention ({name}, {q}): alone {ma:.2f} s, two at once {mp:.2f} s each "
                  f"(max {max(pair):.2f}), ratio {mp / ma:.2f} (goal <= 2.3)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
