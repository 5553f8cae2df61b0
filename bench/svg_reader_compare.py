"""The shared SVG reader (lvss/svg_read.py) against the two readers it replaced, on real SVGs.

Until commit 1f807b1 lvss had two SVG readers: the reader half of ``lvss/svg.py`` (lxml) and
``blender_ext/svg_layers.py`` (standard library, for Blender). This script takes both from git
(``--base``, default 1f807b1), reads every SVG given (default: tests/data/openmoji, the OpenMoji
set in ../shared/data/openmoji when present, and SVGs lvss writes here: a layered scene with
details sub-layers and gradient fills, and ``lvss vectorize`` outputs passed with ``--extra``) with
the old and the new reader, and prints, per file and reader, whether what they return is the same
and the largest differences:

* lvss: the scene's size, layer names and ids, paths per layer, and per path its control points,
  colour and gradient fill (at the SVG's own size and at 256 x 256, as the tests read OpenMoji);
* Blender: the drawing's size, layers (label, id, parent, hidden), shapes (id, colour, opacity,
  fill rule, control points of every spline, gradient geometry, matrix, stops and spread) and the
  skipped counts.

Numbers agree when they differ by less than ``--tol`` (default 1e-4 px; the new reader computes
some transforms in another order). Run from the repository root:

    PYTHONPATH=. python bench/svg_reader_compare.py [--extra DIR_OR_SVG ...]
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _old_module(base: str, path: str, name: str, tmp: Path):
    """``path`` at git revision ``base`` as module ``name`` (``lvss.<x>`` resolves lvss's relative imports)."""
    text = subprocess.run(["git", "show", f"{base}:{path}"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout
    f = tmp / (name.replace(".", "_") + ".py")
    f.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, f)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _lvss_written(tmp: Path) -> list[Path]:
    """SVGs as lvss writes them: layers with details sub-layers, flat and gradient fills, holes."""
    import torch

    from lvss.scene import Layer, LinearGradient, RadialGradient, Scene, circle_path
    from lvss.svg import write_svg

    a, b, c = circle_path(30.0, 30.0, 22.0), circle_path(60.0, 35.0, 18.0), circle_path(15.0, 45.0, 9.0)
    a.fill = LinearGradient([12.345, 10.0], [50.0, 44.5], [0.0, 0.25, 1.0],
                            [[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.6], [0.0, 0.0, 1.0, 1.0]])
    b.fill = RadialGradient([60.0, 35.0], 18.5, [0.0, 1.0], [[1.0, 1.0, 0.0, 1.0], [0.2, 0.0, 0.4, 0.5]],
                            focal=[55.0, 31.0])
    c.color = torch.tensor([0.1, 0.5, 0.2, 0.7])
    d = circle_path(40.0, 30.0, 5.0)
    scene = Scene(80, 60, [Layer("Back", [a], "layer1"), Layer("Front", [b, c, d], details_from=2)])
    out = tmp / "lvss_written_gradients.svg"
    write_svg(scene, out, precision=3)
    return [out]


def _close(a, b, tol: float) -> float:
    """The largest difference between two number arrays (inf when their shapes differ)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a - b).max()) if a.size else 0.0


def compare_lvss(old, new, text: bytes, size, tol: float) -> list[str]:
    """Differences between the old and the new lvss reader's scenes for one SVG."""
    try:
        s1 = old.svg_to_scene(text, *size)
    except Exception as err:  # noqa: BLE001
        s1 = err
    try:
        s2 = new.svg_to_scene(text, *size)
    except Exception as err:  # noqa: BLE001
        s2 = err
    if isinstance(s1, Exception) or isinstance(s2, Exception):
        return [] if type(s1) is type(s2) else [f"old: {s1!r}, new: {s2!r}"]
    out = []
    if (s1.width, s1.height) != (s2.width, s2.height):
        out.append(f"size {s1.width}x{s1.height} -> {s2.width}x{s2.height}")
    l1 = [(lay.name, lay.id, len(lay.paths)) for lay in s1.layers]
    l2 = [(lay.name, lay.id, len(lay.paths)) for lay in s2.layers]
    if l1 != l2:
        out.append(f"layers {l1} -> {l2}")
        return out
    worst = {"points": 0.0, "colour": 0.0, "gradient": 0.0}
    for p, q in zip(s1.paths(), s2.paths()):
        worst["points"] = max(worst["points"], _close(p.points, q.points, tol))
        worst["colour"] = max(worst["colour"], _close(p.color, q.color, tol))
        if type(p.fill) is not type(q.fill):
            out.append(f"fill {type(p.fill).__name__} -> {type(q.fill).__name__}")
            continue
        if p.fill is not None:
            f1, f2 = p.fill, q.fill
            names = ("start", "end") if hasattr(f1, "start") else ("center", "radius")
            for k in (*names, "offsets", "colors"):
                worst["gradient"] = max(worst["gradient"], _close(getattr(f1, k), getattr(f2, k), tol))
            if hasattr(f1, "focal") and (f1.focal is None) != (f2.focal is None):
                out.append("focal point present in one only")
            elif hasattr(f1, "focal") and f1.focal is not None:
                worst["gradient"] = max(worst["gradient"], _close(f1.focal, f2.focal, tol))
    out += [f"{k} differ by {v:.3g}" for k, v in worst.items() if v > tol]
    if out:
        out.append(_render_difference(s1, s2))
    return out


def _render_difference(s1, s2) -> str:
    """How differently two scenes of the same size render (lvss's rasterizer, white background)."""
    import torch

    from lvss.render import render

    with torch.no_grad():
        a = render(s1, background=(1.0, 1.0, 1.0)).numpy()
        b = render(s2, background=(1.0, 1.0, 1.0)).numpy()
    diff = np.abs(a - b)
    return (f"rendered: max pixel difference {diff.max() * 255:.2f}/255, "
            f"{(diff.max(-1) > 1 / 255).mean() * 100:.3f}% of pixels over 1/255")


def _drawing_numbers(d) -> dict:
    shapes = [s for lay in d.layers for s in lay.shapes]
    return {
        "points": [np.concatenate([np.asarray(sp.control_points() if hasattr(sp, "control_points") else
                                              [q for i in range(len(sp.anchors)) for q in
                                               (sp.anchors[i], sp.handles_right[i],
                                                sp.handles_left[(i + 1) % len(sp.anchors)])])
                                   for sp in s.splines]) for s in shapes],
        "colour": [(*s.rgb, s.opacity) for s in shapes],
        "gradient": [(*(s.gradient.to_space), *s.gradient.geometry,
                      *(v for o, c in s.gradient.stops for v in (o, *c))) if s.gradient else () for s in shapes],
    }


def compare_blender(old, new, text: bytes, tol: float) -> list[str]:
    """Differences between the old and the new Blender reader's drawings for one SVG."""
    try:
        d1 = old.parse_svg(text)
    except Exception as err:  # noqa: BLE001
        d1 = err
    try:
        d2 = new.parse_svg(text)
    except Exception as err:  # noqa: BLE001
        d2 = err
    if isinstance(d1, Exception) or isinstance(d2, Exception):
        same = isinstance(d1, Exception) and isinstance(d2, Exception)
        return [] if same else [f"old: {d1!r}, new: {d2!r}"]
    out = []
    if abs(d1.width - d2.width) > tol or abs(d1.height - d2.height) > tol:
        out.append(f"size {d1.width}x{d1.height} -> {d2.width}x{d2.height}")
    l1 = [(lay.label, lay.id, lay.parent, lay.hidden, [(s.id, s.fill_rule, s.named, len(s.splines),
                                                        s.gradient is not None and (s.gradient.kind, s.gradient.spread))
                                                       for s in lay.shapes]) for lay in d1.layers]
    l2 = [(lay.label, lay.id, lay.parent, lay.hidden, [(s.id, s.fill_rule, s.named, len(s.splines),
                                                        s.gradient is not None and (s.gradient.kind, s.gradient.spread))
                                                       for s in lay.shapes]) for lay in d2.layers]
    if l1 != l2:
        if len(l1) != len(l2) or any(a[:4] != b[:4] for a, b in zip(l1, l2)):
            return [f"layers {[a[:4] for a in l1]} -> {[b[:4] for b in l2]}"]
        for a, b in zip(l1, l2):
            changed = [f"{x} -> {y}" for x, y in zip(a[4], b[4]) if x != y]
            if len(a[4]) != len(b[4]):
                changed.append(f"{len(a[4])} -> {len(b[4])} shapes")
            if changed:
                out.append(f"layer {a[0]!r}: shape (id, fill rule, named, splines, gradient) " + ", ".join(changed))
        return out
    if d1.skipped != d2.skipped:
        out.append(f"skipped {d1.skipped} -> {d2.skipped}")
    n1, n2 = _drawing_numbers(d1), _drawing_numbers(d2)
    for k in n1:
        worst = max((_close(a, b, tol) for a, b in zip(n1[k], n2[k])), default=0.0)
        if worst > tol:
            out.append(f"{k} differ by {worst:.3g}")
    return out


def _print_times(files, runs: int, old_lvss, new_lvss, old_blender, new_blender) -> None:
    """Median time to read all files with each reader, old and new side by side in the same run."""
    import statistics
    import time

    texts = [f.read_bytes() for f in files]
    readers = {"lvss old": lambda t: old_lvss.svg_to_scene(t), "lvss new": lambda t: new_lvss.svg_to_scene(t),
               "blender old": old_blender.parse_svg, "blender new": new_blender.parse_svg}
    times: dict = {k: [] for k in readers}
    for _ in range(runs):
        for name, read in readers.items():   # interleaved, so that load on the machine hits all alike
            t0 = time.perf_counter()
            for t in texts:
                read(t)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"read all {len(files)} SVGs, median of {runs}: " + ", ".join(f"{k} {v:.3f} s" for k, v in med.items())
          + f"; new/old: lvss {med['lvss new'] / med['lvss old']:.2f}, blender "
          f"{med['blender new'] / med['blender old']:.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="1f807b1", help="git revision with the two old readers (default 1f807b1)")
    ap.add_argument("--extra", nargs="*", default=[], help="more SVG files or folders of SVGs")
    ap.add_argument("--tol", type=float, default=1e-4, help="largest difference counted as equal (default 1e-4)")
    ap.add_argument("--time", type=int, default=0, metavar="N",
                    help="also time reading every file N times with each reader and print the medians")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="svg-compare-") as tmp:
        tmp = Path(tmp)
        old_lvss = _old_module(args.base, "lvss/svg.py", "lvss._svg_base", tmp)
        old_blender = _old_module(args.base, "blender_ext/svg_layers.py", "svg_layers_base", tmp)
        import lvss.svg as new_lvss

        spec = importlib.util.spec_from_file_location("svg_layers_new", REPO / "blender_ext" / "svg_layers.py")
        new_blender = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(new_blender)

        files: list[Path] = []
        for src in [REPO / "tests" / "data" / "openmoji", REPO.parent / "shared" / "data" / "openmoji",
                    *map(Path, args.extra)]:
            files += sorted(src.glob("*.svg")) if src.is_dir() else ([src] if src.is_file() else [])
        files += _lvss_written(tmp)
        same = {"lvss": 0, "lvss 256": 0, "blender": 0}
        for f in files:
            text = f.read_bytes()
            rows = {"lvss": compare_lvss(old_lvss, new_lvss, text, (None, None), args.tol),
                    "lvss 256": compare_lvss(old_lvss, new_lvss, text, (256, 256), args.tol),
                    "blender": compare_blender(old_blender, new_blender, text, args.tol)}
            for k, diffs in rows.items():
                same[k] += not diffs
                if diffs:
                    where = f.relative_to(REPO) if f.is_relative_to(REPO) else f
                    print(f"{where} [{k}]: " + "; ".join(diffs))
        if args.time:
            _print_times(files, args.time, old_lvss, new_lvss, old_blender, new_blender)
        print(f"{len(files)} SVGs; the same (within {args.tol:g}) with the old reader: "
              + ", ".join(f"{k} {v}/{len(files)}" for k, v in same.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
