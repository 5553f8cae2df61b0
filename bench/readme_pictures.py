"""The README's pictures, made from real runs so that they stay true.

    PYTHONPATH=. python bench/readme_pictures.py OUT_DIR [--blender-python PY] [--skip-blender]
                                                 [--inkscape-dir DIR [--progress-shot N]]

Runs ``lvss vectorize`` (``python -m lvss``, this checkout, ``--threads 1``, seed 0, ``balanced``) on
the bundled OpenMoji fox (``tests/data/openmoji/1F98A_256.png``, 64 paths) and on scikit-image's
chelsea photograph fitted to 256 px (256 paths), then writes:

  input-svg.png       per image: the input, the SVG rendered by resvg, the SVG's outlines (every
                      path stroked, no fill), with the path count, layers and resvg PSNR;
  outline.png         the fox's ear, zoomed: lvss, vtracer and potrace at the same 64-path budget
                      (the settings of ``bench/compare_tools.py``), filled and as outlines
                      (``bench/outline_view.py``); without the ``potrace`` command, lvss and vtracer;
  blender-layers.png  the fox's SVG imported into Blender 4.2 by the lvss extension (built with
                      ``lvss build-blender-extension --no-wheels`` and installed from its .zip, then
                      File > Import > Layered SVG (lvss) with Layer Step 2 m to pull the layers
                      apart), rendered with Workbench from an angle; each layer is labelled with its
                      collection's name as Blender shows it.

``--blender-python`` is a Python that imports ``bpy`` 4.2+ (default ``$LVSS_BLENDER_PYTHON``, else
``build/blender-venv/bin/python``). The Inkscape screenshots come from ``bench/inkscape_screens.py``:
``--inkscape-dir DIR`` (the folder it wrote) copies a progress shot (``--progress-shot N``, default
the last) and its Layers and Objects shot here as ``inkscape-progress.png`` and
``inkscape-layers.png``. Every picture is saved as a palette PNG to stay small.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
for p in (str(ROOT), str(BENCH)):
    if p not in sys.path:
        sys.path.insert(0, p)

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
FOX, FOX_PATHS = "1F98A", 64
PHOTO, PHOTO_PATHS = "chelsea", 256
EAR = (24, 16, 96, 96)      # the fox's left ear, in the SVG's 256-px coordinates
TILE = 256
BACKGROUND = (236, 236, 236)  # Blender picture: light grey, so that white shapes show
LAYER_STEP = 2.0            # Blender: gap between layers along Z for the exploded view (m)


def font(size: int):
    return ImageFont.truetype(str(FONT), size) if FONT.is_file() else ImageFont.load_default()


def save_small(img: Image.Image, path: Path, colours: int = 256) -> None:
    """A palette PNG (median cut, no dithering on flat art): a few times smaller than RGB."""
    img.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def vectorize(png: Path, svg: Path, paths: int) -> dict:
    cmd = [sys.executable, "-m", "lvss", "vectorize", str(png), "-o", str(svg), "--paths", str(paths),
           "--threads", "1", "--seed", "0", "--quality", "balanced", "--json"]
    p = subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"lvss vectorize {png.name} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    return json.loads(p.stdout)


def render(svg: str, size: int) -> Image.Image:
    from outline_view import _render

    return _render(svg, size, None)


# ------------------------------------------------------------------------------------------------
# input | SVG | outlines
# ------------------------------------------------------------------------------------------------
def input_svg_sheet(rows: list[dict], out: Path) -> None:
    from compare_tools import score
    from outline_view import outline

    f, fb = font(14), font(15)
    cap = 34
    cells = []
    for r in rows:
        svg = r["svg"].read_text(encoding="utf-8")
        s = score(svg, r["target"])
        layers = len(re.findall(r'inkscape:groupmode="layer"', svg))
        h, w = r["target"].shape[:2]
        tiles = [(Image.fromarray(np.uint8(np.rint(r["target"] * 255))), f"input: {w}×{h} PNG"),
                 (render(svg, TILE), f"lvss SVG: {s['paths']} paths, {layers} layers"),
                 (render(outline(svg), TILE), f"outlines; resvg PSNR {s['psnr']:.1f} dB")]
        for im, _ in tiles:
            im.thumbnail((TILE, TILE), Image.LANCZOS)
        cells.append(tiles)
    heights = [max(im.height for im, _ in tiles) for tiles in cells]
    sheet = Image.new("RGB", (3 * TILE + 4 * 8, sum(heights) + len(cells) * (cap + 8) + 8), "white")
    d = ImageDraw.Draw(sheet)
    y = 8
    for tiles, hh in zip(cells, heights):
        for j, (im, label) in enumerate(tiles):
            x = 8 + j * (TILE + 8)
            sheet.paste(im.convert("RGB"), (x + (TILE - im.width) // 2, y + (hh - im.height) // 2))
            d.text((x, y + hh + 6), label, fill="black", font=fb if j == 1 else f)
        y += hh + cap + 8
    save_small(sheet, out)


# ------------------------------------------------------------------------------------------------
# outline view: lvss, vtracer, potrace
# ------------------------------------------------------------------------------------------------
def outline_sheet(fox_png: np.ndarray, target: np.ndarray, lvss_svg: Path, work: Path, out: Path) -> None:
    from compare_tools import run_potrace, run_vtracer
    from outline_view import main as outline_main

    files, labels = [str(lvss_svg)], ["lvss"]
    svg, _, settings = run_vtracer(fox_png, target, FOX_PATHS)
    (work / "vtracer.svg").write_text(svg)
    files.append(str(work / "vtracer.svg"))
    labels.append("vtracer")
    if shutil.which("potrace"):
        svg, _, settings = run_potrace(fox_png, target, FOX_PATHS)
        (work / "potrace.svg").write_text(svg)
        files.append(str(work / "potrace.svg"))
        labels.append("potrace (Inkscape's Trace Bitmap)")
    else:
        print("potrace is missing (apt-get install potrace): the outline view shows lvss and vtracer only",
              file=sys.stderr)
    tmp = work / "outline.png"
    outline_main([str(tmp), *files, "--size", "300", "--crop", *map(str, EAR), "--labels", *labels])
    im = Image.open(tmp).convert("RGB")
    # the outline view's labels use PIL's small default font; write them again, larger
    d = ImageDraw.Draw(im)
    for k, label in enumerate(labels):
        d.rectangle((k * 300, 0, k * 300 + 299, 23), fill="white")
        d.text((k * 300 + 6, 3), label, fill="black", font=font(15))
    save_small(im, out)


# ------------------------------------------------------------------------------------------------
# Blender
# ------------------------------------------------------------------------------------------------
DRIVER = r'''
import json, math, sys
import bpy
from mathutils import Matrix, Vector
from bpy_extras.object_utils import world_to_camera_view

plan = json.load(open(sys.argv[-1]))
bpy.ops.extensions.package_install_files(filepath=plan["zip"], repo="user_default", enable_on_install=True)
for kind in ("objects", "curves", "meshes", "materials", "cameras", "lights"):
    coll = getattr(bpy.data, kind)
    for item in list(coll):
        coll.remove(item)
bpy.ops.import_curve.lvss_svg(filepath=plan["svg"], scale=plan["scale"], origin="CENTER",
                              layer_step=plan["layer_step"])
sc = bpy.context.scene
top = next(c for c in bpy.data.collections if c.name.startswith(plan["stem"]))
layers = []
for col in top.children:
    objs = [o for o in col.all_objects if o.type == "CURVE"]
    if not objs:
        continue
    pts = [o.matrix_world @ Vector(b) for o in objs for b in o.bound_box]
    lo = Vector([min(p[i] for p in pts) for i in range(3)])
    hi = Vector([max(p[i] for p in pts) for i in range(3)])
    layers.append({"name": col.name, "objects": len(objs), "z": lo.z,
                   "anchor": [(lo.x + hi.x) / 2, lo.y, lo.z]})
cam_data = bpy.data.cameras.new("camera")
cam_data.type = "ORTHO"
cam = bpy.data.objects.new("camera", cam_data)
sc.collection.objects.link(cam)
# an orthographic camera turned about the picture's vertical axis: each layer shows as a skewed
# sheet, back to front from left to right
back = Vector(plan["camera_dir"]).normalized()            # from the drawing towards the camera
x = Vector((0.0, 1.0, 0.0)).cross(back).normalized()
y = back.cross(x)
rot = Matrix((x, y, back)).transposed()
corners = [o.matrix_world @ Vector(b) for col in top.children for o in col.all_objects if o.type == "CURVE"
           for b in o.bound_box]
u = [c.dot(x) for c in corners]
v = [c.dot(y) for c in corners]
W, H = plan["size"]
cam_data.ortho_scale = max(max(u) - min(u), (max(v) - min(v)) * W / H) * 1.08
centre = x * (max(u) + min(u)) / 2 + y * (max(v) + min(v)) / 2
cam.matrix_world = Matrix.Translation(centre + back * 30.0) @ rot.to_4x4()
cam_data.clip_start, cam_data.clip_end = 0.1, 100.0
sc.camera = cam
sc.render.engine = "BLENDER_WORKBENCH"
sh = sc.display.shading
sh.light, sh.color_type = "FLAT", "MATERIAL"
sh.show_object_outline, sh.show_cavity, sh.show_shadows = False, False, False
sc.display.render_aa = "8"
sc.view_settings.view_transform, sc.view_settings.look = "Standard", "None"
sc.render.film_transparent = True
sc.render.resolution_x, sc.render.resolution_y = plan["size"]
sc.render.resolution_percentage = 100
sc.render.image_settings.file_format, sc.render.image_settings.color_mode = "PNG", "RGBA"
sc.render.filepath = plan["png"]
bpy.ops.render.render(write_still=True)
for l in layers:
    v = world_to_camera_view(sc, cam, Vector(l["anchor"]))
    l["screen"] = [v.x, 1.0 - v.y]
json.dump({"layers": layers, "top": top.name, "version": bpy.app.version_string}, open(plan["result"], "w"))
'''


def blender_python(given: str | None) -> str | None:
    for cand in (given, os.environ.get("LVSS_BLENDER_PYTHON"), str(ROOT / "build" / "blender-venv" / "bin" / "python")):
        if cand and Path(cand).is_file():
            return cand
    return None


def blender_sheet(py: str, svg: Path, work: Path, out: Path) -> None:
    subprocess.run([sys.executable, "-m", "lvss", "build-blender-extension", "--no-wheels", "-o", str(work)],
                   cwd=ROOT, env=env(), check=True, capture_output=True)
    zips = sorted(work.glob("lvss-*.zip"))
    if not zips:
        raise SystemExit("lvss build-blender-extension wrote no .zip")
    size = (1200, 480)
    plan = {"zip": str(zips[0]), "svg": str(svg), "stem": svg.stem, "scale": 0.01, "layer_step": LAYER_STEP,
            "camera_dir": [-0.74, 0.14, 0.66], "size": size, "png": str(work / "blender.png"),
            "result": str(work / "blender.json")}
    (work / "plan.json").write_text(json.dumps(plan))
    (work / "driver.py").write_text(DRIVER)
    blender_env = dict(os.environ, BLENDER_USER_RESOURCES=str(work / "blender-user"))
    p = subprocess.run([py, str(work / "driver.py"), str(work / "plan.json")], capture_output=True, text=True,
                       env=blender_env, timeout=900)
    if p.returncode != 0 or not Path(plan["result"]).is_file():
        raise SystemExit(f"the Blender run failed ({p.returncode}): {(p.stderr or p.stdout).strip()[-1500:]}")
    res = json.loads(Path(plan["result"]).read_text())
    rgba = Image.open(plan["png"]).convert("RGBA")
    pad = 64                                      # room for the labels under the layers
    im = Image.new("RGB", (rgba.width, rgba.height + pad), BACKGROUND)
    im.paste(rgba, (0, 0), mask=rgba.split()[3])
    d = ImageDraw.Draw(im)
    f = font(15)
    for layer in res["layers"]:
        x, y = layer["screen"][0] * size[0], layer["screen"][1] * size[1] + 8
        for k, line in enumerate((layer["name"], f"{layer['objects']} curve{'s' * (layer['objects'] != 1)}")):
            w = d.textlength(line, font=f)
            d.text((x - w / 2, y + 18 * k), line, fill="black", font=f)
    d.text((10, 8), f"Blender {res['version']}, Workbench: collection \"{res['top']}\", one collection per layer, "
                    f"back to front (Layer Step {LAYER_STEP:g} m)", fill="black", font=f)
    bbox = content_box(im)
    save_small(im.crop(bbox), out)


def content_box(im: Image.Image, margin: int = 10) -> tuple[int, int, int, int]:
    """The box around everything that is not the background, with a margin."""
    a = np.abs(np.asarray(im.convert("RGB"), np.int16) - np.array(BACKGROUND)).max(2) > 6
    ys, xs = np.nonzero(a)
    return (max(0, xs.min() - margin), max(0, ys.min() - margin),
            min(im.width, xs.max() + margin + 1), min(im.height, ys.max() + margin + 1))


def inkscape_shots(folder: Path, out: Path, progress_shot: int | None) -> None:
    """The README's two Inkscape pictures from what bench/inkscape_screens.py wrote into ``folder``."""
    shots = sorted(folder.glob("03-progress-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    layers = folder / "05-layers.png"
    if not shots or not layers.is_file():
        raise SystemExit(f"{folder} holds no 03-progress-N.png or no 05-layers.png "
                         "(run bench/inkscape_screens.py OUT_DIR first)")
    if progress_shot is not None:
        shots = [p for p in shots if p.stem == f"03-progress-{progress_shot}"]
        if not shots:
            raise SystemExit(f"no 03-progress-{progress_shot}.png in {folder}")
    save_small(Image.open(shots[-1]), out / "inkscape-progress.png")
    save_small(Image.open(layers), out / "inkscape-layers.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--blender-python", help="a Python that imports bpy 4.2+")
    ap.add_argument("--skip-blender", action="store_true")
    ap.add_argument("--inkscape-dir", type=Path, help="the folder bench/inkscape_screens.py wrote")
    ap.add_argument("--progress-shot", type=int, help="which 03-progress-N.png to use (default: the last)")
    a = ap.parse_args(argv)
    from compare_tools import load_input, over_white

    a.out.mkdir(parents=True, exist_ok=True)
    if a.inkscape_dir:
        inkscape_shots(a.inkscape_dir, a.out, a.progress_shot)
    py = None
    if not a.skip_blender:
        py = blender_python(a.blender_python)
        if py is None:
            raise SystemExit("no Python with bpy: pass --blender-python, set LVSS_BLENDER_PYTHON or make "
                             "build/blender-venv (see .ci/run); or --skip-blender")
    with tempfile.TemporaryDirectory(prefix="lvss-pictures-") as tmp:
        work = Path(tmp)
        rows = []
        for name, paths in ((FOX, FOX_PATHS), (PHOTO, PHOTO_PATHS)):
            _, img = load_input(name)
            png, svg = work / f"{name}.png", work / f"{name}.svg"
            Image.fromarray(img).save(png)
            vectorize(png, svg, paths)
            rows.append({"name": name, "img": img, "target": over_white(img), "svg": svg})
        input_svg_sheet(rows, a.out / "input-svg.png")
        outline_sheet(rows[0]["img"], rows[0]["target"], rows[0]["svg"], work, a.out / "outline.png")
        if py:
            blender_sheet(py, rows[0]["svg"], work, a.out / "blender-layers.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
