"""Loading a module of blender_ext by its file, for the tests that run without Blender (the package's
__init__ needs bpy); and the top-down render that the real-Blender tests compare with resvg."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def load_blender_module(name: str, prefix: str = "lvss_blender"):
    """blender_ext/<name>.py as a fresh module registered as ``<prefix>_<name>`` (a test file gives its
    own prefix so that its copy stays its own)."""
    spec = importlib.util.spec_from_file_location(f"{prefix}_{name}", REPO / "blender_ext" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# render(root, path), for a driver script run by Blender's Python (it needs bpy, SCALE and plan
# ["supersample"] there): the imported root (its "lvss_size" in SVG units) seen from above by an
# orthographic camera, flat material colours, no anti-aliasing (the test box-filters the supersampled
# PNG: box_filtered_over_white)
RENDER_TOP_DOWN = r'''
def render(root, path):
    W, H = root["lvss_size"]
    sc = bpy.context.scene
    cam_data = bpy.data.cameras.new("lvss test camera")
    cam_data.type = "ORTHO"
    cam_data.ortho_scale = max(W, H) * SCALE
    cam_data.clip_start, cam_data.clip_end = 0.1, 100.0
    cam = bpy.data.objects.new("lvss test camera", cam_data)
    sc.collection.objects.link(cam)
    cam.location = (W * SCALE / 2, -H * SCALE / 2, 10.0)  # top-down over the centre of a TOP_LEFT import
    sc.camera = cam
    sc.render.engine = "BLENDER_WORKBENCH"
    sh = sc.display.shading
    sh.light, sh.color_type = "FLAT", "MATERIAL"
    sh.show_object_outline = sh.show_cavity = sh.show_shadows = False
    sc.display.render_aa = "OFF"  # anti-aliasing by supersampling, box-filtered in the test
    sc.view_settings.view_transform, sc.view_settings.look = "Standard", "None"
    sc.view_settings.exposure, sc.view_settings.gamma = 0.0, 1.0
    sc.render.film_transparent = True
    sc.render.resolution_x, sc.render.resolution_y = int(round(W)), int(round(H))
    sc.render.resolution_percentage = 100 * plan["supersample"]
    sc.render.image_settings.file_format, sc.render.image_settings.color_mode = "PNG", "RGBA"
    sc.render.filepath = path
    bpy.ops.render.render(write_still=True)
'''


def box_filtered_over_white(png: Path, width: int, height: int, supersample: int) -> np.ndarray:
    """A render written by RENDER_TOP_DOWN, (height x width) RGB in [0, 1]: composited over white,
    then each supersample x supersample block averaged."""
    a = np.asarray(Image.open(png).convert("RGBA"), dtype=np.float64) / 255.0
    assert a.shape[:2] == (height * supersample, width * supersample)
    rgb = a[..., :3] * a[..., 3:] + (1.0 - a[..., 3:])
    return rgb.reshape(height, supersample, width, supersample, 3).mean(axis=(1, 3))

