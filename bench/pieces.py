"""Every piece of a mask gets a path: mean PSNR of the layered pipeline before and after.

Each OpenMoji image is vectorized twice in the same process (same code loaded) at 64 paths: with one
structural path per mask, for its largest 4-connected piece (how lvss worked before; kept here as
``largest_piece_paths`` for the comparison), and with one path per piece (lvss.pipeline). PSNR is the
pipeline's own (composited over white, at the working resolution). Also counts the layering masks and
those with several pieces.

    PYTHONPATH=. LVSS_THREADS=1 python bench/pieces.py [--transparent] [--n N]

--transparent: the OpenMoji SVGs rendered with resvg at 256 px on a transparent background instead of
the white-background PNGs; transparency cuts masks of the coarser levels apart.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import lvss.pipeline as pl
from lvss.config import VectorizeConfig
from lvss.optimize.structure import StructuralPath
from lvss.types import check_cancel

OPENMOJI = Path(os.environ.get("LVSS_OPENMOJI", "/work/shared/data/openmoji"))


def largest_piece_paths(layering, budget, epsilon, cancel=None, min_pixels=1):
    """The previous structural paths: one per mask (its largest piece), the ``budget`` largest masks."""
    from lvss.layering import mask_to_path

    entries = [(li, lm) for li, layer in enumerate(layering.layers) for lm in layer]
    if len(entries) > budget:
        keep = sorted(range(len(entries)), key=lambda i: -entries[i][1].area)[:budget]
        entries = [entries[i] for i in sorted(keep)]
    out = []
    for li, lm in entries:
        check_cancel(cancel)
        p = mask_to_path(lm.mask, epsilon)
        if p is not None:
            out.append(StructuralPath(p.points, lm.mask, li, np.asarray(lm.color, np.float32)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transparent", action="store_true", help="SVGs rendered on a transparent background")
    ap.add_argument("--n", type=int, default=None, help="only the first N images")
    ap.add_argument("--paths", type=int, default=64)
    args = ap.parse_args()
    from lvss import threads
    from lvss.layering import mask_components

    threads.apply(None)
    every_piece = pl._structural_paths
    state = {"old": False, "masks": 0, "split": 0, "pieces": 0}

    def structural_paths(layering, budget, epsilon, cancel=None, min_pixels=1):
        if state["old"]:
            return largest_piece_paths(layering, budget, epsilon, cancel, min_pixels)
        for layer in layering.layers:
            for lm in layer:
                n = len(mask_components(lm.mask, min_pixels, fill_holes=False))
                state["masks"] += 1
                state["pieces"] += n
                state["split"] += n > 1
        return every_piece(layering, budget, epsilon, cancel, min_pixels)

    pl._structural_paths = structural_paths
    files = sorted(OPENMOJI.glob("*.svg" if args.transparent else "*_256.png"))[:args.n]
    if not files:
        raise SystemExit(f"no OpenMoji images in {OPENMOJI} (set LVSS_OPENMOJI)")
    psnr: dict[bool, list[float]] = {True: [], False: []}
    for f in files:
        if args.transparent:
            from lvss.testing import resvg_render

            img = (resvg_render(f.read_text(), 256, 256, background=None) * 255).round().astype(np.uint8)
        else:
            img = str(f)
        line = f"{f.name:<16}"
        for old in (True, False):
            state["old"] = old
            t = time.perf_counter()
            r = pl.run(img, VectorizeConfig(paths=args.paths))
            psnr[old].append(r.metrics["psnr"])
            line += (f"  {'largest piece' if old else 'every piece'} {r.metrics['psnr']:.2f} dB, "
                     f"{int(r.metrics['paths'])} paths, {time.perf_counter() - t:.0f} s")
        print(line, flush=True)
    print(f"{'transparent' if args.transparent else 'white'} background, {len(files)} images, {args.paths} paths: "
          f"mean PSNR {np.mean(psnr[True]):.2f} dB with one path per mask's largest piece, "
          f"{np.mean(psnr[False]):.2f} dB with one path per piece; layering masks {state['masks']}, "
          f"with several pieces {state['split']}, pieces {state['pieces']}")


if __name__ == "__main__":
    main()
