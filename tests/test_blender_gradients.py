"""Gradient fills in the Blender importer: the SVG reader places linear and radial gradients (as lvss
and Inkscape write them) in document pixels, and the materials Blender gets render them.

The reader is checked against resvg pixel by pixel without Blender; the materials are checked by
rendering an import with Cycles in Blender's Python (bpy, as in tests/test_blender.py: skipped
when no bpy 4.2+ is found) and comparing with resvg's rendering of the same SVG.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from blender_modules import load_blender_module  # noqa: E402
W, H = 96, 64
SUPERSAMPLE = 3


def _load(name: str):
    return load_blender_module(name, "lvss_blender_grad")


svg_layers = _load("svg_layers")

# four shapes in four quadrants, one gradient form each: Inkscape's href chain with a rotated
# userSpaceOnUse vector; a bounding-box radial with a focal point and a translucent stop; a
# reflected bounding-box linear under a group transform; a repeated userSpaceOnUse radial (its
# last stop is its first, so no hard edge that resvg and Blender would sample differently)
GRADIENT_SVG = f"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" width="{W}" height="{H}" viewBox="0 0 {W} {H}">
  <defs>
    <linearGradient id="stops"><stop offset="0" style="stop-color:#d22f27"/><stop offset="0.4" stop-color="#f1b31c"/>
      <stop offset="1" stop-color="#1e50a0"/></linearGradient>
    <linearGradient id="lin" xlink:href="#stops" gradientUnits="userSpaceOnUse" x1="4" y1="6" x2="42" y2="26"
                    gradientTransform="rotate(20 24 16)"/>
    <radialGradient id="rad" cx="0.5" cy="0.5" r="0.5" fx="0.3" fy="0.35">
      <stop offset="0" stop-color="#ffffff"/><stop offset="0.7" stop-color="#3f8f4f" stop-opacity="0.6"/>
      <stop offset="1" stop-color="#102030"/></radialGradient>
    <linearGradient id="refl" x1="0" y1="0" x2="0.3" y2="0.2" spreadMethod="reflect">
      <stop offset="0" stop-color="#000000"/><stop offset="1" stop-color="#e0e0ff"/></linearGradient>
    <radialGradient id="rep" gradientUnits="userSpaceOnUse" cx="72" cy="48" r="7" spreadMethod="repeat">
      <stop offset="0" stop-color="#ff00ff"/><stop offset="0.5" stop-color="#00ffaa"/>
      <stop offset="1" stop-color="#ff00ff"/></radialGradient>
  </defs>
  <g inkscape:groupmode="layer" id="layer1" inkscape:label="Gradients">
    <rect id="a" x="2" y="2" width="44" height="28" fill="url(#lin)"/>
    <ellipse id="b" cx="72" cy="16" rx="22" ry="13" fill="url(#rad)"/>
    <g transform="translate(2 34) scale(1.1 0.9)"><rect id="c" x="0" y="0" width="38" height="30" fill="url(#refl)"/></g>
    <path id="d" d="M50 34 H94 V62 H50 Z" fill="url(#rep)" fill-opacity="0.8"/>
  </g>
</svg>
"""
# a point well inside each shape's quadrant and away from its edges: (shape, x range, y range)
INSIDE = {"a": ((4, 44), (4, 28)), "b": ((60, 84), (10, 22)), "c": ((4, 42), (36, 60)), "d": ((52, 92), (36, 60))}


def _resvg(svg: str, width: int, height: int) -> np.ndarray:
    from lvss.testing import resvg_render

    return resvg_render(svg, width, height, background=None).astype(np.float64)


def test_reader_places_gradients_as_resvg_draws_them():
    d = svg_layers.parse_svg(GRADIENT_SVG)
    shapes = {s.id: s for s in d.layers[0].shapes}
    assert set(shapes) == {"a", "b", "c", "d"}
    assert not any("gradient" in k for k in d.skipped)
    assert [shapes[k].gradient.kind for k in "abcd"] == ["linear", "radial", "linear", "radial"]
    assert (shapes["c"].gradient.spread, shapes["d"].gradient.spread) == ("reflect", "repeat")
    assert shapes["d"].opacity == pytest.approx(0.8)
    ref = _resvg(GRADIENT_SVG, W, H)
    for sid, ((x0, x1), (y0, y1)) in INSIDE.items():
        g = shapes[sid].gradient
        errs = []
        for y in range(y0, y1):
            for x in range(x0, x1):
                c = np.asarray(g.color_at((x + 0.5, y + 0.5)))
                a = c[3] * shapes[sid].opacity
                got = np.r_[c[:3] * a, a]                 # premultiplied, as compared
                want = np.r_[ref[y, x, :3] * ref[y, x, 3], ref[y, x, 3]]
                errs.append(np.abs(got - want).max())
        errs = np.asarray(errs)
        # resvg quantises to 8 bits and samples its own way; a hard edge (repeat) may differ at a pixel
        assert np.quantile(errs, 0.97) < 0.02 and errs.mean() < 0.01, (sid, errs.mean(), errs.max())


def test_reader_reads_lvss_gradients_in_pixels():
    import torch

    from lvss.scene import Layer, LinearGradient, Path as LPath, RadialGradient, Scene, circle_path
    from lvss.svg import scene_to_svg

    p1, p2 = circle_path(20, 20, 15), circle_path(60, 30, 18)
    lin = LinearGradient(torch.tensor([8.0, 10.0]), torch.tensor([32.0, 28.0]), torch.tensor([0.0, 0.5, 1.0]),
                         torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1]]))
    rad = RadialGradient(torch.tensor([60.0, 30.0]), 18.0, torch.tensor([0.0, 1.0]),
                         torch.tensor([[1.0, 1, 1, 1], [0.2, 0.3, 0.4, 1]]), torch.tensor([55.0, 26.0]))
    scene = Scene(80, 50, [Layer("shapes", [LPath(p1.points, torch.tensor([0.5, 0.5, 0.5, 1.0]), lin),
                                            LPath(p2.points, torch.tensor([0.5, 0.5, 0.5, 1.0]), rad)])])
    d = svg_layers.parse_svg(scene_to_svg(scene, precision=3))
    a, b = d.layers[0].shapes
    assert a.gradient.offset_at((8.0, 10.0)) == pytest.approx(0.0, abs=1e-3)
    assert a.gradient.offset_at((32.0, 28.0)) == pytest.approx(1.0, abs=1e-3)
    assert a.gradient.color_at((20.0, 19.0)) == pytest.approx((0, 1, 0, 1), abs=1e-3)
    assert b.gradient.offset_at((55.0, 26.0)) == pytest.approx(0.0, abs=1e-3)   # the focal point
    assert b.gradient.offset_at((78.0, 30.0)) == pytest.approx(1.0, abs=1e-3)   # on the circle
    assert b.gradient.offset_at((60.0, 12.0)) == pytest.approx(1.0, abs=1e-3)


# ---------------------------------------------------------------------------------------------
# Blender
# ---------------------------------------------------------------------------------------------
DRIVER = r'''
import json, sys
import bpy
plan = json.load(open(sys.argv[-1]))
sys.path.insert(0, plan["repo"])
from blender_ext import scene_build, svg_layers
for kind in ("objects", "curves", "meshes", "materials", "cameras"):
    coll = getattr(bpy.data, kind)
    for item in list(coll):
        coll.remove(item)
drawing = svg_layers.parse_svg(open(plan["svg"], "rb").read())
W, H, S = drawing.width, drawing.height, plan["scale"]
placement = scene_build.Placement.for_drawing(W, H, scale=S, origin="TOP_LEFT")
res = scene_build.build(drawing, name="gradients", placement=placement, parent_collection=bpy.context.scene.collection)
out = {"materials": {}}
for obj in res.objects:
    mat = obj.modifiers["lvss Fill"][scene_build._material_socket(obj.modifiers["lvss Fill"].node_group)]
    out["materials"][obj.name] = {"name": mat.name, "nodes": sorted(n.type for n in mat.node_tree.nodes)}
sc = bpy.context.scene
cam_data = bpy.data.cameras.new("cam")
cam_data.type, cam_data.ortho_scale = "ORTHO", max(W, H) * S
cam = bpy.data.objects.new("cam", cam_data)
sc.collection.objects.link(cam)
cam.location = (W * S / 2, -H * S / 2, 10.0)
sc.camera = cam
sc.render.engine = "CYCLES"
sc.cycles.device = "CPU"
sc.cycles.samples = plan["samples"]
sc.cycles.use_denoising = False
sc.cycles.pixel_filter_type, sc.cycles.filter_width = "BOX", 1.0  # one sample area per pixel
sc.cycles.max_bounces = 0
sc.cycles.transparent_max_bounces = 64
sc.render.threads_mode, sc.render.threads = "FIXED", 1
sc.render.film_transparent = True
sc.view_settings.view_transform, sc.view_settings.look = "Standard", "None"
sc.view_settings.exposure, sc.view_settings.gamma = 0.0, 1.0
sc.render.resolution_x, sc.render.resolution_y = int(W), int(H)
sc.render.resolution_percentage = 100 * plan["supersample"]
sc.render.image_settings.file_format, sc.render.image_settings.color_mode = "PNG", "RGBA"
sc.render.filepath = plan["render"]
bpy.ops.render.render(write_still=True)
json.dump(out, open(plan["result"], "w"))
'''


@pytest.fixture(scope="module")
def bpy_python() -> str:
    spec = importlib.util.spec_from_file_location("lvss_test_blender_probe", Path(__file__).with_name("test_blender.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    py = module.blender_python()
    if py is None:
        pytest.skip("bpy (Blender as a Python module) is not installed: .ci/run puts bpy==4.2.0 into "
                    "build/blender-venv (CPython 3.11); or set LVSS_BLENDER_PYTHON")
    return py


def test_blender_renders_the_gradients_as_resvg(bpy_python, tmp_path):
    svg = tmp_path / "gradients.svg"
    svg.write_text(GRADIENT_SVG)
    plan = {"repo": str(REPO), "svg": str(svg), "scale": 0.01, "samples": 16, "supersample": SUPERSAMPLE,
            "render": str(tmp_path / "render.png"), "result": str(tmp_path / "result.json")}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "driver.py").write_text(DRIVER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LVSS_", "BLENDER_"))}
    env["BLENDER_USER_RESOURCES"] = str(tmp_path / "blender-home")
    proc = subprocess.run([bpy_python, str(tmp_path / "driver.py"), str(tmp_path / "plan.json")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and Path(plan["result"]).exists(), proc.stderr[-3000:]
    result = json.loads(Path(plan["result"]).read_text())
    for sid in "abcd":
        m = result["materials"][sid]
        assert m["name"] == f"{sid} gradient" and "VALTORGB" in m["nodes"] and "TEX_COORD" in m["nodes"]
    a = np.asarray(Image.open(plan["render"]).convert("RGBA"), dtype=np.float64) / 255.0
    assert a.shape[:2] == (H * SUPERSAMPLE, W * SUPERSAMPLE)
    rgb = a[..., :3] * a[..., 3:] + (1.0 - a[..., 3:])
    got = rgb.reshape(H, SUPERSAMPLE, W, SUPERSAMPLE, 3).mean(axis=(1, 3))
    ref = _resvg(GRADIENT_SVG, W, H)
    ref = ref[..., :3] * ref[..., 3:] + (1.0 - ref[..., 3:])
    keep = os.environ.get("LVSS_TEST_ARTIFACTS")
    if keep:
        side = np.concatenate([ref, got, np.clip(np.abs(got - ref) * 4, 0, 1)], 1)
        Image.fromarray((side * 255).round().astype(np.uint8)).save(Path(keep) / "blender_gradients_compare.png")
    psnr = 10 * np.log10(1.0 / max(float(((got - ref) ** 2).mean()), 1e-12))
    # the translucent stop blends in linear light in Blender (sRGB in SVG), edges are sampled
    print(f"Blender vs resvg: PSNR {psnr:.2f} dB")
    assert psnr >= 30.0, f"PSNR {psnr:.2f} dB between Blender's render and resvg's"
