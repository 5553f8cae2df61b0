"""Pictures larger than the working size: what lvss makes of them, judged at their own size.

lvss traces at a working size (256 px on the long side) and then polishes every path against the
input's own pixels (up to 1024 px). This benchmark gives it inputs that are larger: OpenMoji drawings
rendered by resvg at ``--size`` px on transparency (the bundled set's SVGs, and with ``--hold DIR``
those of another folder of OpenMoji SVGs, e.g. the held-out set of ``bench/heldout_openmoji.py``),
and scikit-image's photographs at their own sizes (300-640 px). Per picture and tree it prints:

- paths written, and CPU seconds of ``lvss vectorize --threads 1`` (a new process);
- PSNR of the SVG rendered by resvg at the input's size against the input (over white);
- **stacked pairs**: pairs of paths of one colour (within 6/255) whose own shapes share at least a
  fifth of the smaller one's pixels with nothing of another colour between them over the shared
  part (rendered at 256 px): a viewer sees one shape where outline view shows two.

    PYTHONPATH=. python bench/large_inputs.py [--size 1024] [--hold DIR] [--codes 1F98A 1F620 ...]
                                              [--photos astronaut coffee ...] [--quality balanced]
                                              [--mode layered|compact] [--against REV_OR_DIR]

``--against`` runs every picture in another tree too (a git revision or a directory holding
``lvss/``), the trees taking turns, and prints both side by side.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from compact import element_masks  # noqa: E402  (bench/compact.py)
from speed import ROOT, _resvg_psnr, _tree, command, run_once  # noqa: E402  (bench/speed.py)

OPENMOJI = Path("/work/shared/data/openmoji")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera")
SAME = 6          # colour channels within this many 8-bit steps count as one colour
SHARED = 0.2      # share of the smaller shape two stacked paths must have in common


def stacked_pairs(svg: str) -> int:
    """Pairs of one-colour paths stacked on each other with nothing between (module doc)."""
    from lxml import etree

    root = etree.fromstring(svg.encode())
    w, h = float(root.get("width")), float(root.get("height"))
    s = 256 / max(w, h)
    W, H = max(1, round(w * s)), max(1, round(h * s))
    paths = [e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname == "path"]
    cols = []
    for e in paths:
        c = e.get("fill") or ""
        cols.append(np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)]) if re.fullmatch(r"#[0-9a-fA-F]{6}", c)
                    else None)
    small = re.sub(r'width="[^"]*" height="[^"]*"', f'width="{W}" height="{H}"', svg, count=1)
    m = element_masks(small, W, H)
    alike = lambda a, b: a is not None and b is not None and np.abs(a - b).max() <= SAME  # noqa: E731
    n = 0
    for j in range(len(paths)):
        for i in range(j):
            if not alike(cols[i], cols[j]):
                continue
            both = m[i] & m[j]
            k = int(both.sum())
            if k < 4 or k < SHARED * min(int(m[i].sum()), int(m[j].sum())):
                continue
            if not any((m[b] & both).sum() > 0.05 * k for b in range(i + 1, j) if not alike(cols[b], cols[i])):
                n += 1
    return n


def inputs(size: int, codes: list[str], hold: Path | None, photos: list[str], out: Path) -> list[Path]:
    import resvg_py
    from PIL import Image

    made = []
    for code in codes:
        src = next((d / f"{code}.svg" for d in (hold, OPENMOJI) if d is not None and (d / f"{code}.svg").is_file()),
                   None)
        if src is None:
            raise SystemExit(f"no {code}.svg in {hold or ''} {OPENMOJI}")
        p = out / f"{code}_{size}.png"
        p.write_bytes(bytes(resvg_py.svg_to_bytes(svg_string=src.read_text(), width=size, height=size)))
        made.append(p)
    for name in photos:
        from skimage import data

        a = getattr(data, name)()
        p = out / f"{name}.png"
        Image.fromarray(a).save(p)
        made.append(p)
    return made


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024, help="long side of the rendered OpenMoji (px)")
    ap.add_argument("--hold", type=Path, help="a folder of further OpenMoji SVGs (CODE.svg)")
    ap.add_argument("--codes", nargs="*", default=["1F98A", "1F431", "2615", "1F3A8"])
    ap.add_argument("--photos", nargs="*", default=list(PHOTOS))
    ap.add_argument("--quality", default="balanced", choices=("fast", "balanced", "best"))
    ap.add_argument("--mode", default="layered", choices=("layered", "compact"))
    ap.add_argument("--against", metavar="REV_OR_DIR")
    a = ap.parse_args(argv)
    trees = [("this", ROOT)] + ([("other", _tree(a.against))] if a.against else [])
    tmp = Path(tempfile.mkdtemp(prefix="lvss-large-"))
    rows: dict[str, dict[str, tuple]] = {}
    for k, img in enumerate(inputs(a.size, a.codes, a.hold, a.photos, tmp)):
        rows[img.stem] = {}
        order = trees if k % 2 == 0 else trees[::-1]
        for label, tree in order:
            svg = tmp / f"{img.stem}-{label}.svg"
            _, cpu, js = run_once(command(img, svg, a.quality, None, 1) + ["--mode", a.mode], tree)
            rows[img.stem][label] = (js["paths"], _resvg_psnr(svg, img), stacked_pairs(svg.read_text()), cpu)
        line = " | ".join(f"{lab}: {p} paths, {db:.2f} dB, {sp} stacked, {cpu:.2f} CPU s"
                          for lab, (p, db, sp, cpu) in rows[img.stem].items())
        print(f"{img.stem}: {line}", flush=True)
    labels = [lab for lab, _ in trees]
    print("\n| picture | " + " | ".join(f"paths {lab} | dB {lab} | stacked {lab} | CPU s {lab}" for lab in labels) + " |")
    print("|---|" + "---|" * (4 * len(labels)))
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{r[lab][0]} | {r[lab][1]:.2f} | {r[lab][2]} | {r[lab][3]:.2f}"
                                          for lab in labels) + " |")
    for lab in labels:
        vals = [r[lab] for r in rows.values()]
        print(f"{lab}: paths {sum(v[0] for v in vals)}, mean {statistics.mean(v[1] for v in vals):.2f} dB, "
              f"stacked pairs {sum(v[2] for v in vals)}, median CPU {statistics.median(v[3] for v in vals):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
