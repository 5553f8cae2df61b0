"""SVG's fill rules in the Blender importer, and the names and selection an import leaves.

Without Blender: ``blender_ext/fill_rule.py`` (numpy only) against skia-pathops (when installed) on
self-crossing and nested paths. In a real Blender (``bpy``, as tests/test_blender.py finds it): a
star drawn as one self-crossing path, two nested squares turning the same way, a square with a hole
turning the other way, a hole joined by a zero-width bridge and nested circles, each with
``fill-rule`` nonzero (the default) and evenodd (given as an attribute, in ``style`` and inherited
from a group), imported with File > Import > Layered SVG (lvss), rendered from the top with
Workbench and compared with resvg's render of the same SVG; then an lvss-style layered SVG
(numbered layers with "details" sub-layers) for the collection and object names and the selection.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from blender_modules import RENDER_TOP_DOWN, box_filtered_over_white, load_blender_module  # noqa: E402

svg_layers = load_blender_module("svg_layers", "lvss_blender_fr")
fill_rule = load_blender_module("fill_rule", "lvss_blender_fr")

SCALE = 0.01
SUPERSAMPLE = 4
SIZE = 100
HEAD = (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" '
        f'width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}">')
STAR = "M50 5 L77 90 L5 37 L95 37 L23 90 Z"  # a pentagram: its centre is wound around twice
SQUARES = "M10 10 H90 V90 H10 Z M30 30 H70 V70 H30 Z"  # both clockwise on screen
HOLE = "M10 10 H90 V90 H10 Z M30 30 V70 H70 V30 Z"  # the inner square the other way round
BRIDGE = "M10 10 H90 V90 H10 V50 H30 V70 H70 V30 H30 V50 H10 Z"  # a hole joined by a zero-width bridge
K = 0.5523


def _circle(cx, cy, r, turn=1):
    k = K * r * turn
    return (f"M{cx + r} {cy} C{cx + r} {cy + k} {cx + k * turn} {cy + r * turn} {cx} {cy + r * turn} "
            f"C{cx - k * turn} {cy + r * turn} {cx - r} {cy + k} {cx - r} {cy} "
            f"C{cx - r} {cy - k} {cx - k * turn} {cy - r * turn} {cx} {cy - r * turn} "
            f"C{cx + k * turn} {cy - r * turn} {cx + r} {cy - k} {cx + r} {cy} Z")


CIRCLES = _circle(50, 50, 40) + " " + _circle(50, 50, 22)  # same direction: nonzero fills the disc
# (key, body, point (x, y) in SVG pixels, whether that point is filled)
CASES = {
    "star_nonzero": (f'<path d="{STAR}" fill="#1f4e9c"/>', (50, 55), True),
    "star_evenodd": (f'<path d="{STAR}" fill="#1f4e9c" fill-rule="evenodd"/>', (50, 55), False),
    "squares_nonzero": (f'<g style="fill-rule:nonzero"><path d="{SQUARES}" fill="#c0392b"/></g>', (50, 50), True),
    "squares_evenodd": (f'<g fill-rule="evenodd"><path d="{SQUARES}" fill="#c0392b"/></g>', (50, 50), False),
    "hole_nonzero": (f'<path d="{HOLE}" fill="#2e8b57"/>', (50, 50), False),
    "hole_evenodd": (f'<path d="{HOLE}" style="fill:#2e8b57;fill-rule:evenodd"/>', (50, 50), False),
    "bridge_nonzero": (f'<path d="{BRIDGE}" fill="#8e44ad"/>', (50, 50), False),
    "circles_nonzero": (f'<path d="{CIRCLES}" fill="#d35400"/>', (50, 50), True),
    "circles_evenodd": (f'<path d="{CIRCLES}" fill="#d35400" fill-rule="evenodd"/>', (50, 50), False),
}
# an lvss-style layered SVG: numbered layers, each with a "details" sub-layer, paths without ids
LAYERED = HEAD + """
<g id="layer1" inkscape:label="01 Background, white" inkscape:groupmode="layer">
  <path d="M0 0H100V100H0Z" fill="#ffffff"/></g>
<g id="layer2" inkscape:label="02 Shapes, red" inkscape:groupmode="layer">
  <path d="M10 10H40V40H10Z" fill="#dc2828"/><path d="M50 10H80V40H50Z" fill="#801414"/>
  <g id="layer2-details" inkscape:label="details" inkscape:groupmode="layer">
    <path d="M12 12H20V20H12Z" fill="#000000"/></g></g>
<g id="layer3" inkscape:label="03 Details, blue" inkscape:groupmode="layer">
  <path id="eye" d="M10 60H40V90H10Z" fill="#2850dc"/>
  <g id="layer3-details" inkscape:label="details" inkscape:groupmode="layer">
    <path d="M60 60H90V90H60Z" fill="#f08c1e"/><path d="M62 62H70V70H62Z" fill="#ffffff"/></g></g>
</svg>"""


def _doc(body: str):
    return svg_layers.parse_svg(HEAD + body + "</svg>")


# ---------------------------------------------------------------------------------------------
# without Blender
# ---------------------------------------------------------------------------------------------
def test_fill_rule_is_read_and_inherited():
    d = _doc('<path id="a" d="M0 0H5V5Z"/><g fill-rule="evenodd"><path id="b" d="M0 0H5V5Z"/>'
             '<path id="c" d="M0 0H5V5Z" style="fill-rule:nonzero"/><g style="fill-rule: evenodd">'
             '<path id="d" d="M0 0H5V5Z" fill-rule="inherit"/></g></g><path id="e" d="M0 0H5V5Z" fill-rule="bogus"/>')
    assert {s.id: s.fill_rule for s in d.layers[0].shapes} == {"a": "nonzero", "b": "evenodd", "c": "nonzero",
                                                                 "d": "evenodd", "e": "nonzero"}


def _raster(outlines_or_splines, rule: str, n: int = 200) -> np.ndarray:
    """Which pixel centres of the 100 x 100 canvas (n x n samples) the splines fill by ``rule``,
    the splines flattened finely (a reference independent of fill_rule's own flattening)."""
    ys, xs = np.mgrid[0:n, 0:n]
    p = np.stack([(xs.ravel() + 0.5) * SIZE / n, (ys.ravel() + 0.5) * SIZE / n], 1)
    w = np.zeros(len(p), np.int64)
    for sp in outlines_or_splines:
        pts = []
        for p0, c1, c2, p1 in sp.segments():
            t = np.linspace(0, 1, 2 if fill_rule._is_straight(p0, c1, c2, p1, 1e-9) else 25)[:-1, None]
            pts.append((1 - t) ** 3 * np.asarray(p0) + 3 * (1 - t) ** 2 * t * np.asarray(c1)
                       + 3 * (1 - t) * t ** 2 * np.asarray(c2) + t ** 3 * np.asarray(p1))
        poly = np.concatenate(pts)
        a, b = poly, np.roll(poly, -1, 0)
        left = (b[None, :, 0] - a[None, :, 0]) * (p[:, None, 1] - a[None, :, 1]) - \
               (p[:, None, 0] - a[None, :, 0]) * (b[None, :, 1] - a[None, :, 1])
        up = (a[None, :, 1] <= p[:, None, 1]) & (b[None, :, 1] > p[:, None, 1]) & (left > 0)
        down = (a[None, :, 1] > p[:, None, 1]) & (b[None, :, 1] <= p[:, None, 1]) & (left < 0)
        w += (up.astype(np.int64) - down).sum(1)
    return ((w != 0) if rule == "nonzero" else (w % 2 != 0)).reshape(n, n)


def _random_path(rng, n: int) -> str:
    pts = rng.uniform(5, 95, (n, 2))
    d = f"M{pts[0, 0]:.3f} {pts[0, 1]:.3f}"
    for i in range(1, n):
        if rng.random() < 0.5:
            d += f" L{pts[i, 0]:.3f} {pts[i, 1]:.3f}"
        else:
            c = rng.uniform(5, 95, 4)
            d += f" C{c[0]:.3f} {c[1]:.3f} {c[2]:.3f} {c[3]:.3f} {pts[i, 0]:.3f} {pts[i, 1]:.3f}"
    return d + " Z"


@pytest.mark.parametrize("key", ["star", "squares", "hole", "bridge", "circles", "random"])
def test_outline_fills_the_rule_region_even_odd(key):
    """The outlines, filled even-odd, cover what the shape covers by its rule (or None: the splines
    themselves, filled even-odd, already do)."""
    paths = {"star": [STAR], "squares": [SQUARES], "hole": [HOLE], "bridge": [BRIDGE], "circles": [CIRCLES],
             "random": [_random_path(np.random.default_rng(s), 7) + " " + _random_path(np.random.default_rng(s + 50), 5)
                        for s in range(6)]}[key]
    for d in paths:
        shape = _doc(f'<path d="{d}"/>').layers[0].shapes[0]
        want = _raster(shape.splines, "nonzero")
        out = fill_rule.fill_outline(shape.splines, "nonzero", steps=24)
        if key in ("star", "squares", "circles"):
            assert out is not None
        if key in ("hole", "bridge"):
            assert out is None  # even-odd and nonzero agree: the SVG's own splines are kept
        got = _raster(shape.splines if out is None else out, "evenodd")
        # only pixels within a hair of an edge may differ (the flattening)
        assert (got != want).mean() < 0.004, (d, (got != want).mean())
        assert fill_rule.fill_outline(shape.splines, "evenodd") is None


def test_outline_keeps_whole_curved_segments_and_straight_flags():
    shape = _doc(f'<path d="{CIRCLES}"/>').layers[0].shapes[0]
    out = fill_rule.fill_outline(shape.splines, "nonzero")
    assert len(out) == 1 and len(out[0].anchors) == 4 and out[0].straight == [False] * 4
    outer = shape.splines[0]
    assert sorted(map(tuple, np.round(out[0].anchors, 9))) == sorted(map(tuple, np.round(outer.anchors, 9)))
    star = fill_rule.fill_outline(_doc(f'<path d="{STAR}"/>').layers[0].shapes[0].splines, "nonzero")
    assert len(star) == 1 and len(star[0].anchors) == 10 and all(star[0].straight)


def test_outline_agrees_with_skia_pathops():
    pathops = pytest.importorskip("pathops")
    for s in range(8):
        d = _random_path(np.random.default_rng(100 + s), 6)
        shape = _doc(f'<path d="{d}"/>').layers[0].shapes[0]
        out = fill_rule.fill_outline(shape.splines, "nonzero", steps=32, min_area=0.0)
        path = pathops.Path()
        pen = path.getPen()
        for sp in shape.splines:
            segs = sp.segments()
            pen.moveTo(segs[0][0])
            for _, c1, c2, p1 in segs:
                pen.curveTo(c1, c2, p1)
            pen.closePath()
        path.fillType = pathops.FillType.WINDING
        ref_area = abs(pathops.simplify(path, fix_winding=True).area)
        if out is None:  # nothing to fix: then the even-odd area is the nonzero area
            path.fillType = pathops.FillType.EVEN_ODD
            mine = abs(pathops.simplify(path, fix_winding=True).area)
        else:  # the outlines are simple: their signed areas add up (holes negative)
            mine = abs(sum(_poly_area(o) for o in out))
        assert mine == pytest.approx(ref_area, rel=2e-3, abs=0.05)


def _poly_area(outline) -> float:
    """Signed area of an outline, its segments flattened finely (shoelace)."""
    t = np.linspace(0, 1, 65)[:-1, None]
    pts = np.concatenate([(1 - t) ** 3 * np.asarray(p0) + 3 * (1 - t) ** 2 * t * np.asarray(c1)
                          + 3 * (1 - t) * t ** 2 * np.asarray(c2) + t ** 3 * np.asarray(p1)
                          for p0, c1, c2, p1 in outline.segments()])
    x, y = pts[:, 0], pts[:, 1]
    return float((x * np.roll(y, -1) - np.roll(x, -1) * y).sum() / 2)


def test_names_for_the_editor():
    d = svg_layers.parse_svg(LAYERED)
    names = [svg_layers.collection_name(d, i) for i in range(len(d.layers))]
    assert names == ["01 Background, white", "02 Shapes, red", "02 Shapes, red · details", "03 Details, blue",
                     "03 Details, blue · details"]
    objs = [svg_layers.object_name(d, i, k) for i, lay in enumerate(d.layers) for k in range(len(lay.shapes))]
    assert objs == ["01 Background, white · shape 1, white", "02 Shapes, red · shape 1, red",
                    "02 Shapes, red · shape 2, dark red", "02 Shapes, red · detail 1, black", "eye",
                    "03 Details, blue · detail 1, orange", "03 Details, blue · detail 2, white"]
    long = svg_layers.parse_svg(HEAD + '<g inkscape:groupmode="layer" inkscape:label="' + "Ä" * 80
                                + '"><path d="M0 0H5V5Z" fill="red"/></g></svg>')
    name = svg_layers.object_name(long, 0, 0)
    assert len(name.encode()) <= 63 and name.endswith(" · shape 1, red")


# ---------------------------------------------------------------------------------------------
# in Blender
# ---------------------------------------------------------------------------------------------
DRIVER = r'''
import json, os, sys, traceback
import bpy

plan = json.load(open(sys.argv[-1]))
sys.path.insert(0, plan["repo"])
import blender_ext
blender_ext.register()
out = {"imports": {}}
SCALE = plan["scale"]

def save():
    with open(plan["result"], "w") as fh:
        json.dump(out, fh)

def clear():
    for kind in ("objects", "curves", "meshes", "materials", "node_groups", "cameras"):
        coll = getattr(bpy.data, kind)
        for item in list(coll):
            coll.remove(item)
    for c in list(bpy.data.collections):
        bpy.data.collections.remove(c)

''' + RENDER_TOP_DOWN + r'''

for key, item in plan["imports"].items():
    clear()
    rec = {}
    try:
        extra = {}
        if item.get("files"):
            extra = {"files": [{"name": n} for n in item["files"]], "directory": item["directory"]}
        r = bpy.ops.import_curve.lvss_svg(filepath=item["svg"], scale=SCALE, origin="TOP_LEFT", **extra)
        rec["result"] = sorted(r)
        top = bpy.data.collections[os.path.splitext(os.path.basename(item["svg"]))[0]]
        root = next(o for o in top.objects if o.type == "EMPTY")
        def walk(col):
            return {"name": col.name, "label": col.get("lvss_layer"),
                    "objects": [{"name": o.name, "data": o.data.name, "id": o.get("lvss_id"),
                                 "rule": o.get("lvss_fill_rule"), "outline": bool(o.get("lvss_outline")),
                                 "splines": len(o.data.splines),
                                 "handles": sorted({t for sp in o.data.splines for p in sp.bezier_points
                                                    for t in (p.handle_left_type, p.handle_right_type)})}
                                for o in col.objects if o.type == "CURVE"],
                    "patches": [{"name": o.name, "parent": o.parent.name, "faces": len(o.data.polygons),
                                 "area": sum(p.area for p in o.data.polygons) / SCALE ** 2,
                                 "material": o.active_material.name} for o in col.objects if o.type == "MESH"],
                    "children": [walk(c) for c in col.children]}
        rec["root"] = root.name
        rec["layers"] = [walk(c) for c in top.children]
        rec["curves"] = sorted(o.name for o in top.all_objects if o.type == "CURVE")
        rec["selected"] = sorted(o.name for o in bpy.context.view_layer.objects if o and o.select_get())
        rec["active"] = bpy.context.view_layer.objects.active.name
        rec["all_curves"] = sorted(o.name for o in bpy.data.objects if o.type == "CURVE")
        rec["all_roots"] = sorted(o.name for o in bpy.data.objects if o.type == "EMPTY")
        if item.get("render"):
            render(root, item["render"])
    except Exception:
        rec["error"] = traceback.format_exc()
    out["imports"][key] = rec
    save()
out["done"] = True
save()
'''


def _blender_python():
    from test_blender import blender_python

    return blender_python()


@pytest.fixture(scope="module")
def blender(tmp_path_factory) -> dict:
    py = _blender_python()
    if py is None:
        pytest.skip("bpy (Blender as a Python module) is not installed: .ci/run puts bpy==4.2.0 into "
                    "build/blender-venv (CPython 3.11); or set LVSS_BLENDER_PYTHON")
    work = tmp_path_factory.mktemp("blender_fillrule")
    plan = {"repo": str(REPO), "result": str(work / "result.json"), "scale": SCALE, "supersample": SUPERSAMPLE,
            "imports": {}}
    for key, (body, _, _) in CASES.items():
        (work / f"{key}.svg").write_text(HEAD + body + "</svg>")
        plan["imports"][key] = {"svg": str(work / f"{key}.svg"), "render": str(work / f"{key}.png")}
    (work / "layered.svg").write_text(LAYERED)
    plan["imports"]["layered"] = {"svg": str(work / "layered.svg")}
    # two files in one import: both results stay selected
    plan["imports"]["two_files"] = {"svg": str(work / "star_nonzero.svg"), "files": ["star_nonzero.svg", "layered.svg"],
                                    "directory": str(work)}
    (work / "plan.json").write_text(json.dumps(plan))
    (work / "driver.py").write_text(DRIVER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LVSS_", "BLENDER_"))}
    env["BLENDER_USER_RESOURCES"] = str(work / "blender-home")
    proc = subprocess.run([py, str(work / "driver.py"), str(work / "plan.json")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    result_file = work / "result.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    if not result.get("done"):
        pytest.fail(f"the Blender driver stopped early (exit {proc.returncode}): {proc.stderr[-3000:]}")
    result["work"] = work
    return result


@pytest.mark.parametrize("key", list(CASES))
def test_render_matches_resvg(blender, key):
    """Blender's top-down render equals resvg's render of the same SVG: the regions each rule fills
    (star centre, nested squares, holes) and the edges, to a tight tolerance."""
    from lvss.testing import resvg_render

    rec = blender["imports"][key]
    assert "error" not in rec, rec.get("error")
    body, (x, y), filled = CASES[key]
    ref = resvg_render(HEAD + body + "</svg>", SIZE, SIZE).astype(np.float64)
    got = box_filtered_over_white(blender["work"] / f"{key}.png", SIZE, SIZE, SUPERSAMPLE)
    diff = np.abs(got - ref).max(axis=2)
    print(f"FIGURES {key}: >0.1 {(diff > 0.1).mean():.4%} mean {diff.mean():.5f} max {diff.max():.3f}")
    keep = os.environ.get("LVSS_TEST_ARTIFACTS")
    if keep:
        dest = Path(keep) / "blender_fillrule"
        dest.mkdir(parents=True, exist_ok=True)
        side = np.concatenate([ref, got, np.clip(np.abs(got - ref) * 4, 0, 1)], 1)
        Image.fromarray((side * 255).round().astype(np.uint8)).save(dest / f"{key}_compare.png")
    # the point that tells the rules apart: filled (the fill's colour) or empty (white)
    white = np.ones(3)
    assert (np.abs(ref[y, x] - white).max() > 0.2) == filled  # resvg agrees with the case's premise
    assert np.abs(got[y, x] - ref[y, x]).max() < 0.02, (got[y, x], ref[y, x])
    # pixel agreement: only anti-aliased edge pixels may differ, and by little
    assert (diff > 0.1).mean() < 0.005, f"{key}: {(diff > 0.1).mean():.2%} of pixels differ by > 0.1"
    assert diff.mean() < 0.004, f"{key}: mean difference {diff.mean():.4f}"
    obj = rec["layers"][0]["objects"][0]
    assert obj["rule"] == ("evenodd" if key.endswith("evenodd") else "nonzero")
    # the SVG's own splines stay (Bézier points as in the SVG); where Blender's even-odd fill leaves
    # out what the rule fills, a mesh patch (a child of the curve, same material) fills it
    assert obj["splines"] == (1 if key.startswith(("star", "bridge")) else 2) and obj["handles"] == ["FREE"]
    patches = rec["layers"][0]["patches"]
    area = {"star_nonzero": None, "squares_nonzero": 40 * 40, "circles_nonzero": math.pi * 22 * 22}
    if key in area:
        assert len(patches) == 1 and patches[0]["parent"] == obj["name"] and patches[0]["faces"] > 0
        assert patches[0]["name"] == obj["name"] + " · fill"
        if area[key]:
            assert patches[0]["area"] == pytest.approx(area[key], rel=0.01)
    else:
        assert patches == []


@pytest.mark.parametrize("d", [STAR, SQUARES, CIRCLES, HOLE])
def test_missing_region_completes_the_even_odd_fill(d):
    """The "missing" outlines cover exactly what nonzero fills and even-odd leaves empty."""
    shape = _doc(f'<path d="{d}"/>').layers[0].shapes[0]
    miss = fill_rule.fill_outline(shape.splines, "nonzero", steps=24, region="missing")
    if d == HOLE:
        assert miss is None
        return
    want = _raster(shape.splines, "nonzero") & ~_raster(shape.splines, "evenodd")
    got = _raster(miss, "evenodd")
    assert want.any() and (got != want).mean() < 0.004


def test_layered_names_and_selection(blender):
    """An lvss-style SVG: collections named after their layers ("details" sub-layers after their
    parent, not details.001), objects after what they are (or the SVG's id); after the import all
    its curves and its root are selected, the root active."""
    rec = blender["imports"]["layered"]
    assert "error" not in rec, rec.get("error")
    assert [c["name"] for c in rec["layers"]] == ["01 Background, white", "02 Shapes, red", "03 Details, blue"]
    assert [[k["name"] for k in c["children"]] for c in rec["layers"]] == [
        [], ["02 Shapes, red · details"], ["03 Details, blue · details"]]
    assert [k["label"] for c in rec["layers"] for k in c["children"]] == ["details", "details"]
    names = [o["name"] for c in rec["layers"] for col in (c, *c["children"]) for o in col["objects"]]
    assert names == ["01 Background, white · shape 1, white", "02 Shapes, red · shape 1, red",
                     "02 Shapes, red · shape 2, dark red", "02 Shapes, red · detail 1, black", "eye",
                     "03 Details, blue · detail 1, orange", "03 Details, blue · detail 2, white"]
    datas = [o["data"] for c in rec["layers"] for col in (c, *c["children"]) for o in col["objects"]]
    assert datas == names  # the curve data is named like its object
    ids = [o["id"] for c in rec["layers"] for col in (c, *c["children"]) for o in col["objects"]]
    assert ids[4] == "eye" and ids[0] == "path1"  # the reader's id stays on the object (lvss_id)
    assert rec["selected"] == sorted([rec["root"], *rec["curves"]])
    assert rec["active"] == rec["root"]


def test_importing_two_files_selects_both(blender):
    rec = blender["imports"]["two_files"]
    assert "error" not in rec, rec.get("error")
    assert rec["selected"] == sorted(rec["all_curves"] + rec["all_roots"]) and len(rec["all_roots"]) == 2
    assert rec["active"] in rec["all_roots"]
