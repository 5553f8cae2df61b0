"""How well can any vectorizer do at 4x from a 1x rendering? A bound for the editability bench's
"PSNR 4x against the true vector art".

The OpenMoji inputs are resvg renders of their SVGs at 256 px. resvg covers a pixel by counting a
4 x 4 grid of samples, so an edge that moves between two sample rows leaves the 1x picture as it was:
from the pixels alone, a horizontal edge is known to a quarter of a pixel. Per OpenMoji this prints:

* **1x vs exact**: PSNR of resvg's 1x render of the true art against its 8x render box-filtered to 1x
  (the exact covered areas): how far the input itself is from the shapes' exact coverage;
* **4x, shifted**: PSNR at 4x (1024 px) of the true art against the same art moved by a random
  offset of up to 1/16 and up to 1/8 of an input pixel in x and y (mean over ``--draws`` offsets):
  what a perfect tracer scores when its edges are only as exact as the input pins them;
* with ``--svg-dir DIR`` (``NAME_lvss.svg`` files, e.g. ``bench/editability.py --out DIR``): the
  SVG's own PSNR at 4x against the true art, side by side.

    PYTHONPATH=. python bench/zoom_bound.py [--images 1F98A 2615 ...] [--draws 4] [--svg-dir DIR]
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import editability as E  # noqa: E402  (bench/editability.py: the OpenMoji, resvg render, PSNR)

SIZE = 256


def shifted(svg: str, dx: float, dy: float) -> str:
    """The SVG with its content moved by (dx, dy) in its own user units."""
    svg = re.sub(r"(<svg\b[^>]*>)", rf'\1<g transform="translate({dx:.6f} {dy:.6f})">', svg, count=1)
    i = svg.rindex("</svg>")
    return svg[:i] + "</g>" + svg[i:]


def user_units_per_px(svg: str) -> float:
    m = re.search(r'viewBox="\s*[-\d.]+[\s,]+[-\d.]+[\s,]+([\d.]+)', svg)
    return float(m.group(1)) / SIZE if m else 1.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", nargs="+", help="OpenMoji codes (default: all in the data folder)")
    ap.add_argument("--draws", type=int, default=4, help="random offsets per amplitude")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--svg-dir", help="judge NAME_lvss.svg from this folder at 4x too")
    args = ap.parse_args(argv)
    names = args.images or E.openmoji_names()
    rng = np.random.default_rng(args.seed)
    rows = []
    print("| image | 1x vs exact (dB) | 4x, shifted <= 1/16 px | 4x, shifted <= 1/8 px |"
          + (" SVG 4x |" if args.svg_dir else ""))
    print("|---|---:|---:|---:|" + ("---:|" if args.svg_dir else ""))
    for name in names:
        truth = (E.OPENMOJI / f"{name}.svg").read_text(encoding="utf-8")
        u = user_units_per_px(truth)
        one = E.render(truth, SIZE, SIZE, "white")
        exact = E.render(truth, 8 * SIZE, 8 * SIZE, "white").reshape(SIZE, 8, SIZE, 8, 3).mean((1, 3))
        four = E.render(truth, 4 * SIZE, 4 * SIZE, "white")
        row = [E.psnr(one, exact)]
        for amp in (1 / 16, 1 / 8):
            vals = []
            for _ in range(args.draws):
                dx, dy = rng.uniform(-amp, amp, 2) * u
                vals.append(E.psnr(E.render(shifted(truth, dx, dy), 4 * SIZE, 4 * SIZE, "white"), four))
            row.append(float(np.mean(vals)))
        if args.svg_dir:
            f = Path(args.svg_dir) / f"{name}_lvss.svg"
            row.append(E.psnr(E.render(f.read_text(encoding="utf-8"), 4 * SIZE, 4 * SIZE, "white"), four)
                       if f.exists() else float("nan"))
        rows.append(row)
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |", flush=True)
    m = np.nanmean(np.array(rows), 0)
    print("| mean | " + " | ".join(f"{v:.2f}" for v in m) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
