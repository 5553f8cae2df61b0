"""The Blender extension in a real Blender (``bpy``, Blender as a Python module, headless).

``bpy==4.2.0`` needs CPython 3.11 and pins its own numpy, so it lives in its own virtual
environment (``build/blender-venv``, made by ``.ci/run``; or set LVSS_BLENDER_PYTHON to a Python
that can import bpy). One Blender process per module runs a driver script (``DRIVER`` below) that
installs the extension from the .zip that ``lvss build-blender-extension`` writes (with its grpcio
and protobuf wheels, as Blender's extension system installs them), then:

* imports lvss SVGs (the bundled sample and three OpenMoji images, vectorized by a real, fast
  ``lvss serve``) and a hand-written plain SVG with Inkscape layers, records the collections, the
  curves' Bézier points and the materials, and renders each from the front with Workbench;
* runs the vectorize operator against that server on a rotated, non-uniformly scaled image Empty
  and on an image plane (gRPC inside Blender, and the ``lvss remote`` fallback), then the error
  cases (no active image, a mesh without image, server down, wrong token, missing token file)
  and a cancelled job.

The tests then compare what Blender made with an independent reading of the same SVG (lxml and
``lvss.svg``) and the renders with resvg's. Set LVSS_TEST_ARTIFACTS=DIR to keep the renders (and
side-by-side comparisons); LVSS_BLENDER_WHEELS=DIR builds the .zip from wheels in DIR instead of
downloading them from PyPI.
"""
from __future__ import annotations

import io
import json
import os
import select
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lvss.options import EDITOR_QUALITY  # the vectorize operator's default quality

sys.path.insert(0, str(Path(__file__).resolve().parent))
from blender_modules import RENDER_TOP_DOWN, box_filtered_over_white  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OPENMOJI = REPO / "tests" / "data" / "openmoji"  # bundled test images (see its NOTICE.md)
VENV_PYTHON = REPO / "build" / "blender-venv" / "bin" / "python"
INKSCAPE_NS = "http://www.inkscape.org/namespaces/inkscape"
SVG_NS = "http://www.w3.org/2000/svg"
SCALE = 0.01  # scene units per SVG pixel for the imports
SUPERSAMPLE = 4  # renders are made at 4x the SVG's size and box-filtered down to it
EMOJI = ("1F339", "1F344", "1F3A8")
TOKEN = "blender-test-token-1234"
# `lvss serve` with fast settings: every job runs the real pipeline at a 64 px working size with
# 10 + 10 optimisation steps
FAST_SERVER = r"""
import argparse, dataclasses, sys
try:  # this repository's server first (an installed lvss_server may be another checkout's)
    from server import cli
except ImportError:
    from lvss_server import cli
from lvss.pipeline import run

def fast_job(image, cfg, progress, cancel):
    cfg = dataclasses.replace(cfg, work_size=min(cfg.work_size, 64),
                              optimize=dataclasses.replace(cfg.optimize, structure_iters=10, refine_iters=10))
    return run(image, cfg, progress, cancel)

parser = argparse.ArgumentParser(prog="lvss")
cli.add_parser(parser.add_subparsers(dest="command"))
sys.exit(cli.run(parser.parse_args(["serve", *sys.argv[1:]]), fast_job))
"""
# a plain SVG as Inkscape saves it: layers (one hidden, one nested), transforms, styles, shapes,
# a translucent fill, a path with a hole, and content outside every layer
PLAIN_SVG = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"
     width="160" height="120" viewBox="0 0 80 60">
  <rect id="paper" x="0" y="0" width="80" height="60" fill="#f4efe1"/>
  <g inkscape:groupmode="layer" id="layer_sky" inkscape:label="Sky" transform="translate(0,-2)">
    <circle id="sun" cx="62" cy="16" r="9" style="fill:#f2b134"/>
    <ellipse id="cloud" cx="24" cy="14" rx="14" ry="5" fill="white" fill-opacity="0.7"/>
  </g>
  <g inkscape:groupmode="layer" id="layer_land" inkscape:label="Land">
    <path id="hill" d="M0 60 L0 40 Q 20 26 40 38 T 80 34 L80 60 Z" fill="rgb(64,140,80)"/>
    <g inkscape:groupmode="layer" id="layer_house" inkscape:label="House">
      <rect id="wall" x="30" y="36" width="16" height="14" rx="1.5" fill="#b5533c"
            transform="rotate(-4 38 43)"/>
      <path id="window" fill-rule="evenodd" fill="#2d3047"
            d="M34 40 h8 v6 h-8 z M35 41 v4 h6 v-4 z"/>
    </g>
  </g>
  <g inkscape:groupmode="layer" id="layer_notes" inkscape:label="Notes" style="display:none">
    <rect id="note" x="2" y="2" width="10" height="10" fill="red"/>
  </g>
  <g inkscape:groupmode="layer" id="layer_front" inkscape:label="Front">
    <polygon id="flag" points="60,40 72,44 60,48" fill="hsl(350, 80%, 50%)" opacity="0.9"/>
  </g>
</svg>
"""


def _probe(python: str) -> bool:
    try:
        proc = subprocess.run([python, "-c", "import bpy; assert bpy.app.version >= (4, 2, 0)"],
                              capture_output=True, timeout=180, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def blender_python() -> str | None:
    """A Python that can import bpy 4.2+: $LVSS_BLENDER_PYTHON, build/blender-venv, or this one."""
    env = os.environ.get("LVSS_BLENDER_PYTHON")
    if env:
        if not _probe(env):
            pytest.fail(f"LVSS_BLENDER_PYTHON={env} cannot import bpy 4.2 or newer")
        return env
    for cand in (VENV_PYTHON,):
        if cand.exists() and _probe(str(cand)):
            return str(cand)
    import importlib.util

    if importlib.util.find_spec("bpy") is not None and _probe(sys.executable):
        return sys.executable
    return None


@pytest.fixture(scope="module")
def bpy_python() -> str:
    py = blender_python()
    if py is None:
        pytest.skip("bpy (Blender as a Python module) is not installed: .ci/run puts bpy==4.2.0 into "
                    "build/blender-venv (CPython 3.11); or set LVSS_BLENDER_PYTHON")
    return py


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LVSS_", "BLENDER_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env["LVSS_THREADS"] = os.environ.get("LVSS_THREADS", "1")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("blender")


@pytest.fixture(scope="module")
def server(workdir):
    """A real `lvss serve` (fast settings) on a free loopback port, requiring TOKEN."""
    pytest.importorskip("grpc")
    token_file = workdir / "token.txt"
    token_file.write_text(TOKEN + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-c", FAST_SERVER, "--host", "127.0.0.1", "--port", "0", "--device", "cpu",
         "--token-file", str(token_file), "--grace", "1", "--log-level", "WARNING"],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        line = ""
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                line = proc.stdout.readline()
                if "listening on" in line:
                    break
        if "listening on" not in line:
            proc.kill()
            pytest.fail(f"lvss serve did not start: {proc.stderr.read()[-2000:]}")
        yield {"address": line.split("listening on", 1)[1].split()[0], "token_file": str(token_file)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _vectorize(server: dict, png: bytes, quality: str | None = None, **options) -> str:
    from lvss.client import Client

    with Client(server["address"], token=TOKEN) as client:
        return client.vectorize(png, timeout=300, extra={"quality": quality} if quality else None, **options).svg


def _chelsea_png() -> bytes:
    """A 96x64 photograph (skimage's cat): not square, so the aspect ratio is checked too."""
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.chelsea()).resize((96, 64), Image.LANCZOS).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def svgs(server, workdir) -> dict:
    """The SVGs lvss writes for the bundled sample and three OpenMoji images, and a plain one."""
    if not OPENMOJI.is_dir():
        pytest.fail(f"the bundled OpenMoji test images are missing ({OPENMOJI})")
    out = {}
    sources = {"sample": REPO / "lvss" / "data" / "sample.png"}
    sources.update({e: OPENMOJI / f"{e}_256.png" for e in EMOJI})
    for key, path in sources.items():
        svg = _vectorize(server, path.read_bytes(), paths=48, levels=2, seed=1)
        (workdir / f"{key}.svg").write_text(svg)
        out[key] = workdir / f"{key}.svg"
    (workdir / "plain.svg").write_text(PLAIN_SVG)
    out["plain"] = workdir / "plain.svg"
    return out


@pytest.fixture(scope="module")
def extension_build(workdir):
    """`lvss build-blender-extension` (wheels for this platform), started at once so that it runs
    while the server starts; :func:`extension_zip` waits for it."""
    out = workdir / "dist"
    cmd = [sys.executable, "-m", "lvss.cli", "build-blender-extension", "-o", str(out)]
    if os.environ.get("LVSS_BLENDER_WHEELS"):
        cmd += ["--wheel-dir", os.environ["LVSS_BLENDER_WHEELS"]]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc, out
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def extension_zip(extension_build) -> Path:
    """The extension as `lvss build-blender-extension` writes it."""
    proc, out = extension_build
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr
    zips = sorted(out.glob("lvss-*.zip"))
    assert len(zips) == 1, stdout
    return zips[0]


# ---------------------------------------------------------------------------------------------
# the driver: runs inside Blender
# ---------------------------------------------------------------------------------------------
DRIVER = r'''
import json, os, sys, time, traceback
import bpy
from mathutils import Matrix, Vector

plan = json.load(open(sys.argv[-1]))
out = {"imports": {}, "vectorize": {}, "errors": {}}

def save():
    with open(plan["result"], "w") as fh:
        json.dump(out, fh)

def snapshot():
    kinds = ("objects", "collections", "curves", "materials", "node_groups", "meshes", "images")
    return {k: sorted(x.name for x in getattr(bpy.data, k)) for k in kinds}

def clear():
    for kind in ("objects", "curves", "meshes", "materials", "node_groups", "cameras", "images"):
        coll = getattr(bpy.data, kind)
        for item in list(coll):
            coll.remove(item)
    for c in list(bpy.data.collections):
        bpy.data.collections.remove(c)

r = bpy.ops.extensions.package_install_files(filepath=plan["zip"], repo="user_default", enable_on_install=True)
module = next(a.module for a in bpy.context.preferences.addons if a.module.endswith(".lvss"))
prefs = bpy.context.preferences.addons[module].preferences
import grpc
out["install"] = {"result": sorted(r), "module": module, "grpc": grpc.__file__,
                  "validator": os.path.join(bpy.utils.system_resource("SCRIPTS"), "addons_core", "bl_pkg", "cli",
                                            "blender_ext.py"),
                  "import_op": hasattr(bpy.ops.import_curve, "lvss_svg"),
                  "vectorize_op": hasattr(bpy.ops.lvss, "vectorize"),
                  "menu": any(getattr(f, "__name__", "") == "menu_import"
                              for f in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize())}
save()

# the panel, the preferences and the menus draw with real properties, operators and icons
ICONS = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())
ui = {"problems": [], "calls": 0}

class FakeLayout:
    use_property_split = use_property_decorate = active = enabled = True
    def _note(self, what, ok):
        ui["calls"] += 1
        if not ok:
            ui["problems"].append(what)
    def column(self, **kw): return self
    def row(self, **kw): return self
    def box(self): return self
    def separator(self, **kw): return None
    def label(self, text="", icon="NONE", **kw):
        self._note(f"label icon {icon}", icon in ICONS)
    def prop(self, data, name, **kw):
        self._note(f"prop {name}", name in data.bl_rna.properties)
        self._note(f"prop icon {kw.get('icon')}", kw.get("icon", "NONE") in ICONS)
    def operator(self, idname, text="", icon="NONE", **kw):
        cat, op = idname.split(".")
        self._note(f"operator {idname}", hasattr(getattr(bpy.ops, cat), op))
        self._note(f"operator icon {icon}", icon in ICONS)
        return type("OpProps", (), {})()

ops_mod = sys.modules[module + ".operators"]
layout_holder = type("Holder", (), {"layout": FakeLayout()})()
ops_mod.VIEW3D_PT_lvss.draw(layout_holder, bpy.context)
ops_mod.menu_import(layout_holder, bpy.context)
ops_mod.menu_object(layout_holder, bpy.context)
prefs_holder = type("PrefsHolder", (), {"layout": FakeLayout(), "bl_rna": prefs.bl_rna,
                                        **{k: getattr(prefs, k) for k in prefs.bl_rna.properties.keys() if k != "rna_type"}})()
type(prefs).draw(prefs_holder, bpy.context)
ops_mod.LVSS_OT_import_svg.draw(type("ImpHolder", (), {"layout": FakeLayout(), "scale_mode": "SCALE",
                                                       "bl_rna": bpy.ops.import_curve.lvss_svg.get_rna_type()})(),
                                bpy.context)
out["ui"] = ui
save()

def curve_record(obj):
    mat = obj.active_material
    emit = next((n.inputs["Color"].default_value[:] for n in mat.node_tree.nodes if n.type == "EMISSION"), None)
    splines = []
    for sp in obj.data.splines:
        splines.append({"cyclic": sp.use_cyclic_u, "type": sp.type,
                        "points": [[p.co[:2], p.handle_left[:2], p.handle_right[:2]] for p in sp.bezier_points],
                        "handles": sorted({p.handle_left_type for p in sp.bezier_points}
                                          | {p.handle_right_type for p in sp.bezier_points})})
    return {"name": obj.name, "z": obj.matrix_world.translation.z, "material": mat.name,
            "diffuse": mat.diffuse_color[:], "emission": emit, "fill": obj.get("lvss_fill"),
            "modifiers": [m.node_group.name for m in obj.modifiers if m.type == "NODES"],
            "parent": obj.parent.name if obj.parent else None, "splines": splines}

''' + RENDER_TOP_DOWN + r'''

SCALE = plan["scale"]
for key, item in plan["imports"].items():
    clear()
    rec = {}
    try:
        before = len(bpy.data.objects)
        r = bpy.ops.import_curve.lvss_svg(filepath=item["svg"], scale=SCALE, origin="TOP_LEFT", **item.get("options", {}))
        rec["result"] = sorted(r)
        stem = os.path.splitext(os.path.basename(item["svg"]))[0]
        top = bpy.data.collections[stem]
        rec["in_scene"] = top.name in bpy.context.scene.collection.children or any(
            top.name in c.children for c in bpy.data.collections)
        root = next(o for o in top.objects if o.type == "EMPTY")
        rec["root"] = root.name
        def walk(col):
            return {"name": col.name, "label": col.get("lvss_layer"), "hidden": col.hide_render,
                    "objects": [curve_record(o) for o in col.objects if o.type == "CURVE"],
                    "children": [walk(c) for c in col.children]}
        rec["layers"] = [walk(c) for c in top.children]
        rec["selected"] = sorted(o.name for o in bpy.context.view_layer.objects if o and o.select_get())
        rec["active"] = bpy.context.view_layer.objects.active.name
        if item.get("render"):
            render(root, item["render"])
        if item.get("reimport"):  # a second import reuses the materials
            mats = len(bpy.data.materials)
            bpy.ops.import_curve.lvss_svg(filepath=item["svg"], scale=SCALE, origin="TOP_LEFT")
            rec["materials_after_reimport"] = [mats, len(bpy.data.materials)]
    except Exception:
        rec["error"] = traceback.format_exc()
    out["imports"][key] = rec
    save()

def run_op(op, **kw):
    """(result, error message) of an operator call; an ERROR report raises RuntimeError."""
    try:
        return sorted(op(**kw)), None
    except RuntimeError as err:
        return ["CANCELLED"], str(err)

def image_empty(name, image):
    e = bpy.data.objects.new(name, None)
    e.empty_display_type = "IMAGE"
    e.data = image
    e.empty_display_size = 3.0
    e.empty_image_offset = (-0.5, -0.5)
    bpy.context.scene.collection.objects.link(e)
    e.location = (1.0, -2.0, 0.5)
    e.rotation_euler = (0.3, -0.2, 0.9)
    e.scale = (1.5, 0.8, 1.2)
    return e

def activate(obj):
    bpy.context.view_layer.update()
    for o in bpy.context.view_layer.objects:
        if o is not None:
            o.select_set(False)
    if obj is not None:
        obj.select_set(True)
    bpy.context.view_layer.objects.active = obj

def result_record(image_obj):
    root = next(o for o in bpy.data.objects if o.get("lvss_image") == image_obj.name)
    W, H = root["lvss_size"]
    top = next(c for c in bpy.data.collections if root.name in c.objects)
    curves = [o for c in top.children for o in c.all_objects if o.type == "CURVE"]
    anchors = [list(o.matrix_world @ Vector((p.co.x, p.co.y, 0.0))) for o in curves
               for sp in o.data.splines for p in sp.bezier_points]
    local = [list(root.matrix_world.inverted() @ o.matrix_world @ Vector((p.co.x, p.co.y, 0.0)))
             for o in curves[:3] for sp in o.data.splines for p in sp.bezier_points]
    dg = bpy.context.evaluated_depsgraph_get()
    filled = 0.0
    for o in curves:
        ev = o.evaluated_get(dg)
        me = ev.to_mesh()
        filled += sum(p.area for p in me.polygons)
        ev.to_mesh_clear()
    return {"root": root.name, "size": [W, H], "collection": top.name,
            "layers": [c.get("lvss_layer") for c in top.children], "paths": len(curves),
            "root_matrix": [list(r) for r in root.matrix_world], "anchors_world": anchors,
            "anchors_root_local": local, "filled_area": filled,
            "collections_of_image": [c.name for c in image_obj.users_collection],
            "parent_collections": [c.name for c in bpy.data.collections if top.name in c.children]
                                  + (["<scene>"] if top.name in bpy.context.scene.collection.children else []),
            "image_matrix": [list(r) for r in image_obj.matrix_world],
            "selected": sorted(o.name for o in bpy.context.view_layer.objects if o and o.select_get()),
            "hidden_image": image_obj.hide_get()}

v = plan.get("vectorize")
if v:
    clear()
    prefs.server, prefs.token_file, prefs.timeout, prefs.connection = v["server"], v["token_file"], 300.0, "AUTO"
    image = bpy.data.images.load(v["image"])
    opts = dict(paths=16, levels=1, seed=3, mode="layered", layer_step=0.002, path_step=0.0002)
    # the image Empty, rotated and scaled, through gRPC inside Blender
    empty = image_empty("Photo", image)
    activate(empty)
    before = snapshot()
    rec = {"empty": {"display_size": empty.empty_display_size, "offset": empty.empty_image_offset[:],
                     "pixels": image.size[:], "matrix": [list(r) for r in empty.matrix_world]}}
    rec["result"], rec["error"] = run_op(bpy.ops.lvss.vectorize, hide_image=True, **opts)
    try:
        rec.update(result_record(empty))
        rec["new_objects"] = len(bpy.data.objects) - len(before["objects"])
    except Exception:
        rec["record_error"] = traceback.format_exc()
    out["vectorize"]["empty"] = rec
    save()
    # an image plane (Add > Image > Mesh Plane)
    try:
        bpy.ops.image.import_as_mesh_planes(files=[{"name": os.path.basename(v["image"])}],
                                            directory=os.path.dirname(v["image"]))
        plane = bpy.context.view_layer.objects.active
        plane.location, plane.rotation_euler, plane.scale = (-3.0, 1.0, 0.0), (1.2, 0.1, -0.4), (2.0, 2.0, 2.0)
        activate(plane)
        rec = {"plane_world": [list(plane.matrix_world @ vv.co) for vv in plane.data.vertices]}
        rec["result"], rec["error"] = run_op(bpy.ops.lvss.vectorize, **opts)
        rec.update(result_record(plane))
    except Exception:
        rec = {"record_error": traceback.format_exc()}
    out["vectorize"]["plane"] = rec
    save()
    # the lvss remote fallback, with the Python that runs the tests
    prefs.connection, prefs.python = "COMMAND", v["python"]
    fallback = image_empty("Photo fallback", image)
    activate(fallback)
    rec = {}
    rec["result"], rec["error"] = run_op(bpy.ops.lvss.vectorize, **opts)
    try:
        rec.update(result_record(fallback))
    except Exception:
        rec["record_error"] = traceback.format_exc()
    out["vectorize"]["fallback"] = rec
    # Fills and Backdrop (Auto): Blender's Python here has no Pillow for the backdrop, so the run goes
    # through lvss remote --backdrop with the Python set for it; the fill arrives as the request's option
    prefs.connection = "AUTO"
    styled = image_empty("Photo styled", image)
    activate(styled)
    rec = {}
    rec["result"], rec["error"] = run_op(bpy.ops.lvss.vectorize, fill="linear", backdrop=True, **opts)
    try:
        rec.update(result_record(styled))
        root = next(o for o in bpy.data.objects if o.get("lvss_image") == styled.name)
        top = next(c for c in bpy.data.collections if root.name in c.objects)
        rec["materials"] = sorted({o.active_material.name for c in top.children for o in c.all_objects
                                   if o.type == "CURVE" and o.active_material is not None})
    except Exception:
        rec["record_error"] = traceback.format_exc()
    out["vectorize"]["styled"] = rec
    prefs.connection, prefs.python = "AUTO", ""
    save()

    # the interactive (modal) path: Blender runs it from the menu with a window, which a headless
    # Blender lacks, so the window manager and workspace are stand-ins; the operator's own invoke and
    # modal code run against the real server and the real scene
    ops = sys.modules[module + ".operators"]

    class FakeWM:
        def __init__(self):
            self.calls = []
        def event_timer_add(self, step, window=None):
            self.calls.append("timer_add")
            return "timer"
        def event_timer_remove(self, timer):
            self.calls.append("timer_remove")
        def modal_handler_add(self, op):
            self.calls.append("handler_add")
        def progress_begin(self, lo, hi):
            self.calls.append("progress_begin")
        def progress_update(self, value):
            self.calls.append(value)
        def progress_end(self):
            self.calls.append("progress_end")

    class FakeWorkspace:
        def __init__(self):
            self.texts = []
        def status_text_set(self, text):
            self.texts.append(text)

    class ModalOp:  # the operator's methods, bound to a plain object holding its properties
        def __init__(self, **props):
            self.__dict__.update(props)
            self.properties = type("P", (), {"is_property_set": staticmethod(lambda name: True)})()
            self.reports = []
            self._timer = self._job = self._source = self._preview = None
            self._preview_at = 0.0
        def report(self, kind, message):
            self.reports.append([sorted(kind)[0], message])
        def __getattr__(self, name):
            return getattr(ops.LVSS_OT_vectorize, name).__get__(self)

    class Event:
        def __init__(self, type, value="NOTHING"):
            self.type, self.value = type, value

    def modal_run(obj, events):
        wm, ws = FakeWM(), FakeWorkspace()
        ctx = type("Ctx", (), dict(window_manager=wm, workspace=ws, window=None, scene=bpy.context.scene,
                                   preferences=bpy.context.preferences, active_object=obj,
                                   view_layer=bpy.context.view_layer, mode="OBJECT"))()
        op = ModalOp(hide_image=False, shading="FLAT", prompt="", quality=v["quality"], **opts)
        states = [sorted(op.invoke(ctx, Event("NONE")))]
        previews = []  # after each modal step: the temporary preview collections in the file

        def preview_collections():
            return sorted(c.name for c in bpy.data.collections if c.name.endswith(ops.PREVIEW_SUFFIX))

        for ev in events(op):
            state = sorted(op.modal(ctx, ev))
            states.append(state)
            previews.append(preview_collections())
            if state != ["PASS_THROUGH"]:
                break
        return {"states": states[:1] + states[-2:], "steps": len(states), "wm": wm.calls[:3] + wm.calls[-3:],
                "progress": [c for c in wm.calls if isinstance(c, (int, float))], "status": ws.texts[:2] + ws.texts[-2:],
                "reports": op.reports, "job_cancelled": bool(op._job and op._job.cancelled),
                "previews_received": op._job.previews if op._job else 0,
                "preview_shown": max((len(p) for p in previews), default=0),
                "preview_left": preview_collections()}

    def timers(op):
        while True:
            time.sleep(0.05)
            yield Event("MOUSEMOVE")  # other events pass through: Blender stays usable
            yield Event("TIMER")

    def timers_and_wait_for_a_preview(op):
        # TIMER events as Blender sends them, except that the first preview gets its TIMER at once
        # (its job may be near its end already on this fast server)
        while not op._job.done and not op._job.previews:
            time.sleep(0.005)
        yield Event("TIMER")
        yield from timers(op)

    modal_empty = image_empty("Photo modal", image)
    activate(modal_empty)
    before = snapshot()
    rec = modal_run(modal_empty, timers_and_wait_for_a_preview)
    try:
        rec.update(result_record(modal_empty))
    except Exception:
        rec["record_error"] = traceback.format_exc()
    out["vectorize"]["modal"] = rec
    save()

    def escape(op):
        while op._job.poll().fraction <= 0 and not op._job.done:  # wait until the server is at work
            time.sleep(0.01)
        yield Event("TIMER")
        yield Event("ESC", "PRESS")

    before = snapshot()
    rec = modal_run(modal_empty, escape)
    rec["unchanged"] = snapshot() == before
    out["vectorize"]["modal_escape"] = rec
    save()

    # errors: nothing may change
    def error_case(name, setup, **kw):
        setup()
        before = snapshot()
        result, msg = run_op(bpy.ops.lvss.vectorize, **opts)
        out["errors"][name] = {"result": result, "message": msg, "unchanged": snapshot() == before}
        prefs.server, prefs.token_file = v["server"], v["token_file"]
        save()

    error_case("no_active_image", lambda: activate(None))
    cube = bpy.data.objects.new("Plain mesh", bpy.data.meshes.new("Plain mesh"))
    bpy.context.scene.collection.objects.link(cube)
    error_case("mesh_without_image", lambda: activate(cube))
    def down():
        activate(empty)
        prefs.server = v["dead_server"]
    error_case("server_down", down)
    def wrong_token():
        activate(empty)
        prefs.token_file = v["wrong_token_file"]
    error_case("wrong_token", wrong_token)
    def missing_token():
        activate(empty)
        prefs.token_file = v["token_file"] + ".missing"
    error_case("missing_token_file", missing_token)
    def empty_without_image():
        e = bpy.data.objects.new("Empty without image", None)
        e.empty_display_type = "IMAGE"
        bpy.context.scene.collection.objects.link(e)
        activate(e)
    error_case("empty_without_image", empty_without_image)
    def image_file_missing():
        img = bpy.data.images.new("Lost", 8, 8)
        img.source, img.filepath = "FILE", os.path.join(os.path.dirname(v["image"]), "lost-photo.png")
        e = image_empty("Lost photo", img)
        activate(e)
    error_case("image_file_missing", image_file_missing)
    def refused_input():
        e = image_empty("Tiny", bpy.data.images.load(v["tiny_image"]))
        activate(e)
    error_case("refused_input", refused_input)
    # an image that exists only in memory is sent as a PNG of its pixels
    gen = bpy.data.images.new("Generated", 64, 48)
    gen.generated_type = "COLOR_GRID"
    import base64
    png = sys.modules[module + ".image_source"].encoded_bytes(gen)
    import numpy as np
    px = np.empty(64 * 48 * 4, dtype=np.float32)
    gen.pixels.foreach_get(px)
    out["encoded"] = {"png": base64.b64encode(png).decode(), "size": gen.size[:],
                      "pixels": base64.b64encode(px.tobytes()).decode()}
    # bad SVG to the importer
    before = snapshot()
    result, msg = run_op(bpy.ops.import_curve.lvss_svg, filepath=v["bad_svg"])
    out["errors"]["import_not_svg"] = {"result": result, "message": msg, "unchanged": snapshot() == before}

    # cancelling a running job (what Esc does in the modal operator)
    remote = sys.modules[module + ".remote"]
    before = snapshot()
    settings = remote.Settings(server=v["server"], token_file=v["token_file"], timeout=300, paths=16, levels=1, seed=5)
    job = remote.start(open(v["image"], "rb").read(), settings)
    events = []
    while not job.done and not events:
        st = job.poll()
        if st.fraction > 0 or st.stage != "connecting":
            events.append([st.stage, st.fraction])
        time.sleep(0.01)
    job.cancel()
    finished = job.wait(120)
    out["errors"]["cancel"] = {"events": events, "finished": finished,
                               "code": job.error.code if job.error else None, "svg": job.svg is not None,
                               "unchanged": snapshot() == before}
    save()
out["done"] = True
save()
'''


@pytest.fixture(scope="module")
def blender(bpy_python, extension_build, server, svgs, extension_zip, workdir) -> dict:
    """Run the driver once in Blender; returns its results and where the renders are."""
    renders = workdir / "renders"
    renders.mkdir(exist_ok=True)
    image = workdir / "photo.png"
    image.write_bytes(_chelsea_png())
    wrong = workdir / "wrong-token.txt"
    wrong.write_text("not-the-token\n")
    tiny = workdir / "tiny.png"
    Image.new("RGB", (1, 1), (200, 30, 30)).save(tiny)
    bad = workdir / "notes.svg"
    bad.write_text("this is not an SVG file\n")
    import socket

    with socket.socket() as s:  # a loopback port where nothing listens
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    plan = {
        "zip": str(extension_zip), "result": str(workdir / "result.json"), "scale": SCALE,
        "supersample": SUPERSAMPLE,
        "imports": {k: {"svg": str(p), "render": str(renders / f"{k}.png")} for k, p in svgs.items()},
        "vectorize": {"server": server["address"], "token_file": server["token_file"], "image": str(image),
                      "python": sys.executable, "dead_server": dead, "wrong_token_file": str(wrong),
                      "bad_svg": str(bad), "tiny_image": str(tiny),
                      "quality": EDITOR_QUALITY},  # the vectorize operator's default (lvss.options)
    }
    plan["imports"]["sample"]["reimport"] = True
    plan["imports"]["sample_fit"] = {"svg": str(svgs["sample"]),
                                     "options": {"scale_mode": "WIDTH", "width": 3.0}}
    (workdir / "plan.json").write_text(json.dumps(plan))
    (workdir / "driver.py").write_text(DRIVER)
    home = workdir / "blender-home"  # Blender's user folders (config, extensions) for this run only
    proc = subprocess.run([bpy_python, str(workdir / "driver.py"), str(workdir / "plan.json")], cwd=workdir,
                          env=_env(BLENDER_USER_RESOURCES=str(home)), capture_output=True, text=True, timeout=900)
    result_file = Path(plan["result"])
    if not result_file.exists():
        pytest.fail(f"the Blender driver wrote nothing (exit {proc.returncode}): {proc.stderr[-3000:]}")
    result = json.loads(result_file.read_text())
    if not result.get("done"):
        pytest.fail(f"the Blender driver stopped early (exit {proc.returncode}): {proc.stderr[-3000:]}")
    keep = os.environ.get("LVSS_TEST_ARTIFACTS")
    if keep:
        dest = Path(keep) / "blender"
        dest.mkdir(parents=True, exist_ok=True)
        for f in list(renders.glob("*.png")) + [Path(p) for p in svgs.values()]:
            shutil.copy2(f, dest / f.name)
    result["renders"] = str(renders)
    result["svgs"] = {k: str(v) for k, v in svgs.items()}
    result["stdout"] = proc.stdout
    return result


# ---------------------------------------------------------------------------------------------
# an independent reading of the SVG (lxml + lvss.svg)
# ---------------------------------------------------------------------------------------------
def _layers_of(svg_path: Path) -> list:
    """[(label, [(fill, opacity, [(3S, 2) control points per subpath])...])...] of an lvss SVG."""
    from lxml import etree

    from lvss.svg import parse_path_data

    root = etree.parse(str(svg_path)).getroot()
    out = []
    # top-level layers, each with every path it holds in drawing order (its "details" sub-layer's too)
    for g in root.findall(f"{{{SVG_NS}}}g"):
        if g.get(f"{{{INKSCAPE_NS}}}groupmode") != "layer":
            continue
        paths = [(p.get("fill"), float(p.get("fill-opacity", "1")), parse_path_data(p.get("d")))
                 for p in g.iter(f"{{{SVG_NS}}}path")]
        out.append((g.get(f"{{{INKSCAPE_NS}}}label"), paths))
    return out


def _objects(layer: dict) -> list:
    """A layer collection's curve records in drawing order: its own, then its sublayers'."""
    return layer["objects"] + [o for child in layer["children"] for o in _objects(child)]


def _srgb_to_linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


# ---------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------
def test_extension_zip_installs_with_its_wheels(blender, extension_zip, bpy_python):
    names = zipfile.ZipFile(extension_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "_lvss/client.py" in names and "_lvss/_proto/vectorizer_pb2_grpc.py" in names
    wheels = [n for n in names if n.startswith("wheels/")]
    assert any(n.startswith("wheels/grpcio-") for n in wheels) and any(n.startswith("wheels/protobuf-") for n in wheels)
    # Blender's own manifest validator accepts the package
    proc = subprocess.run([bpy_python, blender["install"]["validator"], "validate", str(extension_zip)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    inst = blender["install"]
    assert inst["result"] == ["FINISHED"] and inst["module"] == "bl_ext.user_default.lvss"
    assert inst["import_op"] and inst["vectorize_op"] and inst["menu"]
    # grpc comes from the wheels Blender's extension system installed, not from anywhere else
    assert f"{os.sep}extensions{os.sep}" in inst["grpc"] and "blender-home" in inst["grpc"]


@pytest.mark.parametrize("key", ["sample", *EMOJI])
def test_import_matches_the_svg(blender, key):
    rec = blender["imports"][key]
    assert "error" not in rec, rec.get("error")
    assert rec["result"] == ["FINISHED"] and rec["in_scene"]
    expected = _layers_of(Path(blender["svgs"][key]))
    # one collection per layer, named with its label, in the SVG's order (back to front)
    assert [lay["name"] for lay in rec["layers"]] == [label for label, _ in expected]
    assert [lay["label"] for lay in rec["layers"]] == [label for label, _ in expected]
    zs = []
    materials = {}
    for lay, (_, paths) in zip(rec["layers"], expected):
        assert len(_objects(lay)) == len(paths)
        assert [c["label"] for c in lay["children"]] in ([], ["details"])   # lvss's detail sub-layer
        for obj, (fill, opacity, subpaths) in zip(_objects(lay), paths):
            assert obj["parent"] == rec["root"] and obj["modifiers"] == ["lvss Fill"]
            assert len(obj["splines"]) == len(subpaths)
            for sp, ctrl in zip(obj["splines"], subpaths):
                assert sp["type"] == "BEZIER" and sp["cyclic"] and sp["handles"] == ["FREE"]
                pts = np.asarray(sp["points"], dtype=np.float64)  # (n, 3 [co, left, right], 2)
                n = len(pts)
                # control points in SVG order: anchor i, its right handle, the next anchor's left handle
                seq = np.stack([pts[:, 0], pts[:, 2], np.roll(pts[:, 1], -1, axis=0)], 1).reshape(3 * n, 2)
                px = np.stack([seq[:, 0] / SCALE, -seq[:, 1] / SCALE], 1)
                assert px.shape == ctrl.shape
                np.testing.assert_allclose(px, ctrl, atol=2e-3)
            # the material: named by the fill's hex value, its colour the fill's (scene-linear)
            alpha = int(round(opacity * 255))
            assert obj["material"] == (fill if alpha == 255 else f"{fill}{alpha:02x}")
            rgb = [int(fill[i:i + 2], 16) / 255 for i in (1, 3, 5)]
            np.testing.assert_allclose(obj["diffuse"], [*map(_srgb_to_linear, rgb), opacity], atol=1e-5)
            np.testing.assert_allclose(obj["emission"][:3], list(map(_srgb_to_linear, rgb)), atol=1e-5)
            materials.setdefault(obj["material"], fill)
            zs.append(obj["z"])
    # back to front along +Z: every path above the ones drawn before it
    assert all(b > a for a, b in zip(zs, zs[1:]))
    assert len(materials) == len({m for m in materials})  # one material per distinct fill
    assert rec["active"] == rec["root"] and rec["root"] in rec["selected"]


def test_materials_are_reused(blender):
    before, after = blender["imports"]["sample"]["materials_after_reimport"]
    assert after == before


def test_fit_width_and_centre_origin(blender):
    rec = blender["imports"]["sample_fit"]
    assert "error" not in rec, rec.get("error")
    # TOP_LEFT origin and a width of 3 units: x in [0, 3] for the canvas, y = -x scaled alike
    expected = _layers_of(Path(blender["svgs"]["sample"]))
    ctrl = np.concatenate([c for _, paths in expected for _, _, subs in paths for c in subs])
    got = np.asarray([p[0] for lay in rec["layers"] for o in _objects(lay) for sp in o["splines"]
                      for p in sp["points"]])
    s = 3.0 / 256.0
    np.testing.assert_allclose(got.min(0), [ctrl[0::3, 0].min() * s, -ctrl[0::3, 1].max() * s], atol=1e-4)
    np.testing.assert_allclose(got.max(0), [ctrl[0::3, 0].max() * s, -ctrl[0::3, 1].min() * s], atol=1e-4)


@pytest.mark.parametrize("key", ["sample", *EMOJI, "plain"])
def test_render_matches_resvg(blender, key):
    from lvss.testing import resvg_render

    svg_path = Path(blender["svgs"][key])
    svg = svg_path.read_text()
    from lxml import etree

    root = etree.fromstring(svg.encode())
    width, height = int(float(root.get("width"))), int(float(root.get("height")))
    ref = resvg_render(svg, width, height).astype(np.float64)
    got = box_filtered_over_white(Path(blender["renders"]) / f"{key}.png", width, height, SUPERSAMPLE)
    psnr = _psnr(got, ref)
    keep = os.environ.get("LVSS_TEST_ARTIFACTS")
    if keep:
        side = np.concatenate([ref, got, np.clip(np.abs(got - ref) * 4, 0, 1)], 1)
        Image.fromarray((side * 255).round().astype(np.uint8)).save(Path(keep) / "blender" / f"{key}_compare.png")
    assert psnr >= 30.0, f"{key}: PSNR {psnr:.2f} dB between Blender's render and resvg's"


def test_plain_svg_layers(blender):
    rec = blender["imports"]["plain"]
    assert "error" not in rec, rec.get("error")
    names = [lay["name"] for lay in rec["layers"]]
    # loose content first (it is drawn first), then the layers; the sublayer inside its layer
    assert names == ["Unlayered", "Sky", "Land", "Notes", "Front"]
    land = rec["layers"][2]
    assert [c["name"] for c in land["children"]] == ["House"]
    assert [o["name"] for o in land["children"][0]["objects"]] == ["wall", "window"]
    assert len(land["children"][0]["objects"][1]["splines"]) == 2  # the window keeps its hole
    assert rec["layers"][3]["hidden"] and not rec["layers"][1]["hidden"]  # a hidden layer stays hidden
    cloud = next(o for o in rec["layers"][1]["objects"] if o["name"] == "cloud")
    assert cloud["material"] == f"#ffffff{int(round(0.7 * 255)):02x}" and cloud["diffuse"][3] == pytest.approx(0.7, abs=1e-6)


def _image_corners(empty: dict) -> np.ndarray:
    """The image Empty's corners in world space, from its own settings (as Blender draws it)."""
    w_px, h_px = empty["pixels"]
    size = empty["display_size"]
    w, h = (size, size * h_px / w_px) if w_px >= h_px else (size * w_px / h_px, size)
    ox, oy = empty["offset"]
    m = np.asarray(empty["matrix"])
    local = np.array([[ox * w, oy * h, 0, 1], [ox * w + w, oy * h, 0, 1], [ox * w + w, oy * h + h, 0, 1],
                      [ox * w, oy * h + h, 0, 1]])
    return (m @ local.T).T[:, :3]


def test_vectorize_on_rotated_scaled_image_empty(blender, server):
    rec = blender["vectorize"]["empty"]
    assert rec["result"] == ["FINISHED"], rec.get("error") or rec.get("record_error")
    assert "record_error" not in rec, rec["record_error"]
    corners = _image_corners(rec["empty"])
    size = np.linalg.norm(corners[2] - corners[0])  # the image's diagonal, world units
    # the same request again gives the same SVG (fixed seed): where its points must land
    png = Path(blender["svgs"]["sample"]).parent / "photo.png"
    svg = _vectorize(server, png.read_bytes(), paths=16, levels=1, seed=3, mode="layered",
                     quality=EDITOR_QUALITY)  # the operator's default
    layers = _layers_of_text(svg)
    assert rec["layers"] == [label for label, _ in layers]
    assert rec["paths"] == sum(len(p) for _, p in layers)
    from lxml import etree

    root = etree.fromstring(svg.encode())
    W, H = float(root.get("width")), float(root.get("height"))
    anchors_px = np.concatenate([c[0::3] for _, paths in layers for _, _, subs in paths for c in subs])
    u = (corners[1] - corners[0]) / W
    v = (corners[3] - corners[0]) / H
    expected = corners[3] + anchors_px[:, :1] * u - anchors_px[:, 1:] * v  # top-left + x u - y v
    got = np.asarray(rec["anchors_world"])
    normal = np.cross(u, v)  # the image's front: its local +Z
    normal /= np.linalg.norm(normal)
    # in the image's plane (the offsets along its normal are the layer stacking)
    off = got - expected
    in_plane = off - np.outer(off @ normal, normal)
    assert np.abs(in_plane).max() < 1e-3 * size
    # world-space bounding boxes: the result's against the one the SVG's points must have, and the
    # whole canvas (the image) against the image's corners
    assert np.abs(got.min(0) - expected.min(0)).max() < 0.01 * size
    assert np.abs(got.max(0) - expected.max(0)).max() < 0.01 * size
    assert (off @ normal).min() > 0  # in front of the image
    assert rec["filled_area"] > 0
    assert rec["hidden_image"]  # hide_image=True
    assert rec["parent_collections"] == ["<scene>"]  # next to the image (in the scene's collection)
    assert rec["root"] in rec["selected"]


def _layers_of_text(svg: str) -> list:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".svg", delete=False) as fh:
        fh.write(svg)
    try:
        return _layers_of(Path(fh.name))
    finally:
        os.unlink(fh.name)


def test_vectorize_on_image_plane(blender):
    rec = blender["vectorize"]["plane"]
    assert rec.get("result") == ["FINISHED"], rec.get("error") or rec.get("record_error")
    plane = np.asarray(rec["plane_world"])
    size = np.linalg.norm(plane.max(0) - plane.min(0))
    # the root maps the canvas centre to the plane's centre, and its axes span the plane
    m = np.asarray(rec["root_matrix"])
    np.testing.assert_allclose(m[:3, 3], plane.mean(0), atol=1e-4 * size)
    normal = np.cross(plane[1] - plane[0], plane[2] - plane[0])
    normal /= np.linalg.norm(normal)
    z_axis = m[:3, 2] / np.linalg.norm(m[:3, 2])
    assert abs(abs(z_axis @ normal) - 1) < 1e-5
    anchors = np.asarray(rec["anchors_world"])
    # every anchor lies in the plane, up to the stacking offsets (at most a few steps)
    assert np.abs((anchors - plane.mean(0)) @ normal).max() < 0.05 * size
    # and the result covers the plane: its bounding box within 3 % of the plane's (paths of the
    # coarsest layer may overshoot the canvas by a few pixels)
    assert np.abs(anchors.min(0) - plane.min(0)).max() < 0.03 * size
    assert np.abs(anchors.max(0) - plane.max(0)).max() < 0.03 * size


def test_vectorize_through_lvss_remote_fallback(blender):
    rec = blender["vectorize"]["fallback"]
    assert rec.get("result") == ["FINISHED"], rec.get("error") or rec.get("record_error")
    grpc_run = blender["vectorize"]["empty"]
    assert rec["layers"] == grpc_run["layers"] and rec["paths"] == grpc_run["paths"]


def test_vectorize_with_gradient_fills_and_a_backdrop(blender):
    """The sidebar's Fills and Backdrop options in a real Blender: the backdrop layer at the bottom
    (made by lvss remote, as Blender's Python here cannot make one) and gradient materials."""
    rec = blender["vectorize"]["styled"]
    assert rec.get("result") == ["FINISHED"], rec.get("error") or rec.get("record_error")
    assert rec["layers"][0] == "Backdrop", rec["layers"]
    assert len(rec["layers"]) >= 2 and "Backdrop" not in rec["layers"][1:], rec["layers"]
    gradients = [m for m in rec["materials"] if "gradient" in m]
    assert gradients, rec["materials"]


@pytest.mark.parametrize("case,words", [
    ("no_active_image", ["No active image", "Add > Image"]),
    ("mesh_without_image", ["Image Texture"]),
    ("empty_without_image", ["has no image", "Open"]),
    ("server_down", ["Could not reach", "lvss serve --host 127.0.0.1 --port"]),
    ("wrong_token", ["token", "Token file", "--token-file"]),
    ("missing_token_file", ["Cannot read the token file"]),
    ("import_not_svg", ["not well-formed XML"]),
    ("image_file_missing", ["lost-photo.png is missing", "Image > Replace"]),
    ("refused_input", ["The lvss server refused 'tiny'"]),
])
def test_errors_leave_the_scene_unchanged(blender, case, words):
    rec = blender["errors"][case]
    assert rec["result"] == ["CANCELLED"]
    assert rec["unchanged"], f"{case} changed the scene"
    for w in words:
        assert w in (rec["message"] or ""), rec["message"]


def test_cancel_stops_the_job(blender):
    rec = blender["errors"]["cancel"]
    assert rec["finished"] and rec["code"] == "CANCELLED" and not rec["svg"] and rec["unchanged"]


def test_in_memory_image_is_sent_as_png(blender):
    import base64

    rec = blender["encoded"]
    im = Image.open(io.BytesIO(base64.b64decode(rec["png"]))).convert("RGBA")
    assert im.size == tuple(rec["size"])
    a = np.asarray(im).astype(np.float64)
    w, h = rec["size"]
    # Blender's pixels (rows bottom to top, floats) are the PNG's, top to bottom, in bytes
    px = np.frombuffer(base64.b64decode(rec["pixels"]), dtype=np.float32).reshape(h, w, 4)[::-1]
    np.testing.assert_allclose(a, np.round(px * 255), atol=1)
    assert len(np.unique(a.reshape(-1, 4), axis=0)) > 4  # a real picture, not one colour


def test_modal_vectorize_reports_progress_and_inserts(blender):
    rec = blender["vectorize"]["modal"]
    assert "record_error" not in rec, rec.get("record_error")
    assert rec["states"][0] == ["RUNNING_MODAL"] and rec["states"][-1] == ["FINISHED"]
    assert rec["wm"][:3] == ["timer_add", "handler_add", "progress_begin"]
    assert rec["wm"][-2:] == ["timer_remove", "progress_end"]
    progress = rec["progress"]
    assert progress == sorted(progress) and progress[-1] > progress[0]  # never goes back
    assert all("Esc: cancel" in t for t in rec["status"][:-1]) and rec["status"][-1] is None
    # the stage in a designer's words, from the client's events (as the Inkscape extension shows it)
    from lvss.messages import STAGE_WORDS

    words = set(STAGE_WORDS.values()) | {"Connecting"}
    assert all(any(f"- {w} " in t for w in words) for t in rec["status"][:-1]), rec["status"]
    assert rec["layers"] == blender["vectorize"]["empty"]["layers"]  # the same result as the blocking run
    assert rec["reports"][-1][0] == "INFO" and "Vectorized 'photo'" in rec["reports"][-1][1]
    # the picture so far was shown as a temporary collection, which the result replaced
    assert rec["previews_received"] >= 1 and rec["preview_shown"] == 1, rec
    assert rec["preview_left"] == []


def test_escape_cancels_the_modal_run(blender):
    rec = blender["vectorize"]["modal_escape"]
    assert rec["states"][0] == ["RUNNING_MODAL"] and rec["states"][-1] == ["CANCELLED"]
    assert rec["job_cancelled"] and rec["unchanged"] and rec["preview_left"] == []
    assert rec["wm"][-2:] == ["timer_remove", "progress_end"] and rec["status"][-1] is None
    assert rec["reports"] == [["WARNING", "Vectorizing 'photo' cancelled; nothing was changed."]]


def test_panel_menus_and_preferences_draw(blender):
    ui = blender["ui"]
    assert ui["calls"] > 30 and ui["problems"] == []
