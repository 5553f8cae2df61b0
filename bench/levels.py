"""Contact sheet of the classical simplification levels and their segment boundaries.

Writes bench/out/levels.png (one row of levels and one row of mask boundaries per image) and prints
the number of masks per level and the seconds spent simplifying and segmenting.

    PYTHONPATH=. python bench/levels.py [--levels 4] [--emoji 1F431 1F6B2] [--out bench/out/levels.png]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lvss.config import SegmentConfig, SimplifyConfig
from lvss.segment.classical import segment_classical
from lvss.simplify.classical import simplify_classical

ROOT = Path(__file__).resolve().parents[1]
OPENMOJI = Path("/work/shared/data/openmoji")
SIZE = 256


def _fit(im: Image.Image) -> Image.Image:
    w, h = im.size
    s = SIZE / max(w, h)
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)


def load_emoji(code: str) -> np.ndarray:
    rgba = np.asarray(_fit(Image.open(OPENMOJI / f"{code}_256.png").convert("RGBA")), np.float32) / 255
    return rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])     # over white


def load_skimage(name: str) -> np.ndarray:
    from skimage import data

    return np.asarray(_fit(Image.fromarray(getattr(data, name)())), np.float32)[..., :3] / 255


def boundaries(ms, shape) -> np.ndarray:
    """White picture with each mask's border in black and uncovered pixels in grey."""
    from skimage.segmentation import find_boundaries

    lab = np.full(shape, -1, np.int64)
    for k, m in enumerate(ms.masks):
        lab[m] = k
    out = np.ones(shape + (3,), np.float32)
    out[lab < 0] = 0.8
    out[find_boundaries(lab, mode="inner")] = 0.0
    return out


def tile(img: np.ndarray) -> np.ndarray:
    t = np.ones((SIZE, SIZE, 3), np.float32)
    t[: img.shape[0], : img.shape[1]] = img
    t[:, -2:] = t[-2:, :] = 0.5  # gutter
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--emoji", nargs="*", default=["1F431", "1F6B2"])
    ap.add_argument("--photos", nargs="*", default=["astronaut", "chelsea"])
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "levels.png"))
    a = ap.parse_args()
    cfg = SimplifyConfig(smooth_strength=a.strength)
    seg_cfg = SegmentConfig()
    inputs = [(c, load_emoji(c)) for c in a.emoji] + [(n, load_skimage(n)) for n in a.photos]
    rows = []
    print("seconds are wall clock (cpu in brackets: this process only, fair when the machine is busy)")
    print(f"{'image':<10} {'size':>9} {'simplify s':>14} {'segment s':>14}  masks per level (0 = original)")
    for name, img in inputs:
        t0, c0 = time.perf_counter(), time.process_time()
        res = simplify_classical(img, a.levels, seed=0, cfg=cfg)
        t1, c1 = time.perf_counter(), time.process_time()
        sets = [segment_classical(level, seg_cfg) for level in res.levels]
        t2, c2 = time.perf_counter(), time.process_time()
        print(f"{name:<10} {img.shape[1]:>4}x{img.shape[0]:<4} {t1 - t0:>6.3f} ({c1 - c0:5.3f}) "
              f"{t2 - t1:>6.3f} ({c2 - c1:5.3f})  " + " ".join(str(len(s)) for s in sets))
        rows.append(np.concatenate([tile(x) for x in res.levels], 1))
        rows.append(np.concatenate([tile(boundaries(s, img.shape[:2])) for s in sets], 1))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.concatenate(rows, 0) * 255).round().astype(np.uint8)).save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
