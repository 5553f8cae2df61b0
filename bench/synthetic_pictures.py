"""Pictures of kinds the OpenMoji and photographs do not cover, drawn from code, for spot checks.

Each is 256 px, drawn at 4x and downsampled (Lanczos), as a designer's export would be:

* ``lineart``: anti-aliased strokes 2-4 px wide on white (a circle, a diagonal line, an arc, a square
  outline), the strokes crossing each other;
* ``pixelart``: a 16 x 16 sprite scaled up without smoothing (hard, axis-aligned steps);
* ``shadow``: on transparency, a rounded square with a white dot over a blurred black drop shadow
  whose alpha reaches 0.35 (a faint translucent area);
* ``hills``: a vertical sky gradient over a wavy green hill.

    PYTHONPATH=. python bench/synthetic_pictures.py --out DIR
    lvss vectorize DIR/lineart.png -o lineart.svg --paths 64 --threads 1 --json

Judge the SVGs with ``bench/editability.py --svg-dir SVGS --png-dir DIR`` (name each SVG after its
picture).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 256
SUPER = 4   # drawn at SUPER x SIZE, then downsampled: anti-aliased edges


def lineart() -> Image.Image:
    s = SUPER
    im = Image.new("RGB", (SIZE * s, SIZE * s), "white")
    d = ImageDraw.Draw(im)
    d.ellipse([40 * s, 40 * s, 200 * s, 200 * s], outline="black", width=3 * s)
    d.line([20 * s, 230 * s, 236 * s, 30 * s], fill="black", width=2 * s)
    d.arc([90 * s, 90 * s, 170 * s, 170 * s], 20, 300, fill=(200, 30, 30), width=4 * s)
    d.rectangle([150 * s, 160 * s, 240 * s, 240 * s], outline=(30, 60, 200), width=2 * s)
    return im.resize((SIZE, SIZE), Image.LANCZOS)


def pixelart() -> Image.Image:
    palette = np.array([[255, 255, 255], [20, 20, 20], [230, 60, 50], [250, 200, 40], [60, 160, 80],
                        [50, 90, 200]], np.uint8)
    yy, xx = np.mgrid[:16, :16]
    g = np.zeros((16, 16), int)
    g[(yy - 8) ** 2 + (xx - 8) ** 2 < 36] = 3
    g[(yy - 6) ** 2 + (xx - 6) ** 2 < 3] = 1
    g[(yy - 6) ** 2 + (xx - 10) ** 2 < 3] = 1
    g[(yy == 11) & (xx > 5) & (xx < 11)] = 2
    g[0:2, :] = 5
    g[14:, :] = 4
    return Image.fromarray(palette[g]).resize((SIZE, SIZE), Image.NEAREST)


def shadow() -> Image.Image:
    s = SUPER
    out = Image.new("RGBA", (SIZE * s, SIZE * s), (0, 0, 0, 0))
    ImageDraw.Draw(out).rounded_rectangle([70 * s, 70 * s, 200 * s, 200 * s], radius=30 * s, fill=(0, 0, 0, 90))
    out = out.filter(ImageFilter.GaussianBlur(8 * s))
    shape = Image.new("RGBA", (SIZE * s, SIZE * s), (0, 0, 0, 0))
    d = ImageDraw.Draw(shape)
    d.rounded_rectangle([56 * s, 56 * s, 186 * s, 186 * s], radius=30 * s, fill=(40, 120, 220, 255))
    d.ellipse([90 * s, 90 * s, 150 * s, 150 * s], fill=(255, 255, 255, 255))
    out.alpha_composite(shape)
    return out.resize((SIZE, SIZE), Image.LANCZOS)


def hills() -> Image.Image:
    h = np.linspace(0.0, 1.0, SIZE)[:, None, None]
    img = np.stack([90 + 100 * h[..., 0], 150 + 80 * h[..., 0], 255 - 40 * h[..., 0]], -1) * np.ones((1, SIZE, 1))
    ridge = 170 + 25 * np.sin(np.arange(SIZE) / 30.0)
    img[np.arange(SIZE)[:, None] > ridge[None, :]] = (60, 140, 60)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


PICTURES = {"lineart": lineart, "pixelart": pixelart, "shadow": shadow, "hills": hills}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder to write NAME.png into")
    ap.add_argument("--only", nargs="+", choices=sorted(PICTURES), help="these pictures only")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.only or PICTURES:
        PICTURES[name]().save(out / f"{name}.png")
        print(out / f"{name}.png")


if __name__ == "__main__":
    main()
