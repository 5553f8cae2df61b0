"""Outline view of SVGs, as a designer checks a trace: every path stroked (hairline), no fill, side
by side with the filled render, optionally zoomed into a region.

    PYTHONPATH=. python bench/outline_view.py OUT.png A.svg [B.svg ...] [--size 512] [--crop X Y W H]
        [--labels "before" "now" ...]

Each SVG gives a column: its filled render on top, its outline view below (resvg). ``--crop`` picks a
region in the SVG's own coordinates (e.g. an eye of an emoji) and renders it at ``--size`` pixels.
"""
from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def _render(svg: str, size: int, crop: tuple[float, float, float, float] | None) -> Image.Image:
    import resvg_py

    if crop is not None:
        x, y, w, h = crop
        box = f'viewBox="{x} {y} {w} {h}"'
        if "viewBox=" in svg:
            svg = re.sub(r'viewBox="[^"]*"', box, svg, count=1)
        else:   # width and height only (vtracer): the viewBox is the canvas, so crop that
            svg = re.sub(r"<svg\b", f"<svg {box}", svg, count=1)
    png = resvg_py.svg_to_bytes(svg_string=svg, width=size, height=size, background="white")
    return Image.open(io.BytesIO(bytes(png))).convert("RGB")


def outline(svg: str, width: float = 0.6) -> str:
    """The SVG with every path unfilled and stroked black (``width`` in screen pixels, whatever the
    zoom: non-scaling strokes)."""
    svg = re.sub(r'\sfill="[^"]*"', "", svg)
    svg = re.sub(r'\sfill-opacity="[^"]*"', "", svg)
    return svg.replace("<path ", f'<path fill="none" stroke="black" stroke-width="{width}" '
                                  'vector-effect="non-scaling-stroke" ')


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("svgs", nargs="+")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--crop", type=float, nargs=4, metavar=("X", "Y", "W", "H"))
    ap.add_argument("--labels", nargs="*")
    a = ap.parse_args(argv)
    labels = a.labels or [Path(s).stem for s in a.svgs]
    cols = []
    for path, label in zip(a.svgs, labels):
        text = Path(path).read_text(encoding="utf-8")
        top = _render(text, a.size, a.crop)
        bottom = _render(outline(text), a.size, a.crop)
        col = Image.new("RGB", (a.size, 2 * a.size + 24), "white")
        col.paste(top, (0, 24))
        col.paste(bottom, (0, 24 + a.size))
        ImageDraw.Draw(col).text((6, 6), label, fill="black")
        cols.append(np.asarray(col))
    Image.fromarray(np.concatenate(cols, 1)).save(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
