"""Operators, panel, menus and drag-and-drop of the lvss extension."""
import os
import time

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import image_source, preferences, remote
from .scene_build import Placement, build, build_temporary
from .svg_layers import SvgImportError, parse_svg

MODES = (("layered", "Layered", "Simplify progressively and stack the segments back to front"),
         ("compact", "Compact", "Merge a mask soup by recolouring, then add detail paths"))
SHADING = (("FLAT", "Flat", "Materials emit their colour: renders show exactly the SVG's colours"),
           ("LIT", "Lit", "Principled BSDF materials that react to the scene's lights"))
# "SERVER": no quality in the request, so the server's own default preset (lvss serve --quality) applies
QUALITIES = (("SERVER", "Server Default", "The preset the server was started with (lvss serve --quality)"),
             ("fast", "Fast", "Least optimisation: the quickest result, slightly softer edges"),
             ("balanced", "Balanced", "The usual trade-off of time and fidelity"),
             ("best", "Best", "Most optimisation of every path: the slowest"))
# the request's fill option (lvss remote --fill)
FILLS = (("flat", "Flat Colours", "One colour per path"),
         ("auto", "Gradients Where They Pay", "A linear or radial gradient only where it matches the image clearly "
                                              "better than one colour"),
         ("linear", "Linear Gradients", "A linear gradient on every path"),
         ("radial", "Radial Gradients", "A radial gradient on every path"))
ORIGINS = (("CENTER", "Centre", "The drawing's centre at the origin"),
           ("BOTTOM_LEFT", "Bottom Left", "The drawing's bottom-left corner at the origin"),
           ("TOP_LEFT", "Top Left", "The drawing's top-left corner (SVG's origin) at the origin"))


def _stack_props():
    return dict(
        layer_step=FloatProperty(
            name="Layer Step", default=0.01, min=0.0, soft_max=1.0, subtype="DISTANCE", unit="LENGTH",
            description="Gap along local Z between one layer and the next (back to front)"),
        path_step=FloatProperty(
            name="Path Step", default=0.001, min=0.0, soft_max=0.1, subtype="DISTANCE", unit="LENGTH",
            description="Gap along local Z between successive paths of one layer (0: a layer is flat)"),
        shading=EnumProperty(name="Shading", items=SHADING, default="FLAT",
                             description="How the fill materials render"),
    )


PREVIEW_EVERY = 1.0  # seconds: the modal run rebuilds its preview at most this often
PREVIEW_SUFFIX = " (lvss preview)"  # the temporary collection's name: "<image> (lvss preview)"


def _select_result(context, *results) -> None:
    """Select what the import or vectorize made (every root Empty and curve object; the fill
    patches follow their curves) and nothing else; the last root becomes the active object."""
    context.view_layer.update()  # objects removed by scripts leave stale entries until an update
    for obj in context.view_layer.objects:
        if obj is not None and obj.select_get():
            obj.select_set(False)
    for result in results:
        for obj in (result.root, *result.objects):
            if obj.name in context.view_layer.objects:
                obj.select_set(True)
    if results and results[-1].root.name in context.view_layer.objects:
        context.view_layer.objects.active = results[-1].root


def _skipped_note(drawing) -> str:
    if not drawing.skipped:
        return ""
    return "; not imported: " + ", ".join(f"{n} {why}" for why, n in sorted(drawing.skipped.items()))


# ---------------------------------------------------------------------------------------------
# import
# ---------------------------------------------------------------------------------------------
class LVSS_OT_import_svg(bpy.types.Operator, ImportHelper):
    """Import a layered SVG: one collection per layer, back to front, filled Bézier curves"""

    bl_idname = "import_curve.lvss_svg"
    bl_label = "Import Layered SVG (lvss)"
    bl_options = {"REGISTER", "UNDO", "PRESET"}

    filename_ext = ".svg"
    filter_glob: StringProperty(default="*.svg", options={"HIDDEN"})
    files: CollectionProperty(type=bpy.types.OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})
    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})

    scale_mode: EnumProperty(
        name="Size", default="SCALE",
        items=(("SCALE", "Scale", "A fixed number of scene units per SVG pixel"),
               ("WIDTH", "Fit Width", "Scale the drawing to a given width")))
    scale: FloatProperty(name="Scale", default=0.01, min=1e-6, soft_max=1.0, precision=4,
                         description="Scene units per SVG pixel")
    width: FloatProperty(name="Width", default=2.0, min=1e-6, subtype="DISTANCE", unit="LENGTH",
                         description="Width of the whole drawing in scene units")
    origin: EnumProperty(name="Origin", items=ORIGINS, default="CENTER",
                         description="Which point of the drawing lands on the world origin")
    resolution: IntProperty(name="Resolution", default=12, min=1, max=64,
                            description="Curve resolution (subdivisions of each Bézier segment)")

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        col = layout.column()
        col.prop(self, "scale_mode")
        col.prop(self, "scale" if self.scale_mode == "SCALE" else "width")
        col.prop(self, "origin")
        col.prop(self, "layer_step")
        col.prop(self, "path_step")
        col.prop(self, "shading")
        col.prop(self, "resolution")

    def invoke(self, context, event):
        if self.directory and len(self.files) and hasattr(self, "invoke_popup"):
            return self.invoke_popup(context)  # dropped files: options only
        return ImportHelper.invoke(self, context, event)

    def _paths(self) -> list:
        names = [f.name for f in self.files if f.name]
        if self.directory and names:
            return [os.path.join(self.directory, n) for n in names]
        return [self.filepath] if self.filepath else []

    def execute(self, context):
        paths = self._paths()
        if not paths:
            self.report({"ERROR"}, "No SVG file given: choose one in the file browser.")
            return {"CANCELLED"}
        drawings = []
        for path in paths:  # read everything first: a bad file changes nothing
            name = os.path.basename(path)
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError as err:
                self.report({"ERROR"}, f"Cannot read {path}: {err.strerror or err}")
                return {"CANCELLED"}
            try:
                drawings.append((path, parse_svg(data, name=name)))
            except SvgImportError as err:
                self.report({"ERROR"}, str(err))
                return {"CANCELLED"}
        parent = context.collection or context.scene.collection
        results = []
        try:
            for path, drawing in drawings:
                placement = Placement.for_drawing(
                    drawing.width, drawing.height, scale=self.scale,
                    fit_width=self.width if self.scale_mode == "WIDTH" else 0.0, origin=self.origin)
                res = build(drawing, name=os.path.splitext(os.path.basename(path))[0], placement=placement,
                            parent_collection=parent, layer_step=self.layer_step, path_step=self.path_step,
                            shading=self.shading, resolution=self.resolution)
                res.root["lvss_source"] = path
                results.append((path, drawing, res))
        except Exception as err:  # noqa: BLE001  undo what the earlier files made, then report
            for _, _, res in results:
                _remove_result(res)
            self.report({"ERROR"}, f"Import failed, nothing was added: {type(err).__name__}: {err}")
            return {"CANCELLED"}
        _select_result(context, *(res for _, _, res in results))  # every file's result stays selected
        for path, drawing, res in results:
            self.report({"INFO"}, f"Imported {os.path.basename(path)}: {len(res.layers)} layers, "
                                  f"{len(res.objects)} paths, {res.materials} new materials"
                                  + _skipped_note(drawing))
        return {"FINISHED"}


def _remove_result(res) -> None:
    for obj in (*(res.patches or ()), *res.objects, res.root):
        data = obj.data
        bpy.data.objects.remove(obj, do_unlink=True)
        if data is not None and data.users == 0:
            (bpy.data.meshes if isinstance(data, bpy.types.Mesh) else bpy.data.curves).remove(data)
    for col in reversed([res.collection, *res.layers]):
        if col.name in bpy.data.collections:
            bpy.data.collections.remove(col)


# ---------------------------------------------------------------------------------------------
# vectorize
# ---------------------------------------------------------------------------------------------
# The vectorize options below are declared in lvss.options (tests/test_options_drift.py checks the
# ranges, defaults and choices here against it): the editors default to the "fast" preset's values.
def _option_props():
    return dict(
        prompt=StringProperty(name="Prompt", default="",
                              description="What matters in the image (steers the saliency); may be empty"),
        paths=IntProperty(name="Paths", default=64, min=1, soft_max=1024, max=4096,
                          description="Path budget: more paths, more detail, more time"),
        mode=EnumProperty(name="Mode", items=MODES, default="layered", description="Vectorization method"),
        levels=IntProperty(name="Levels", default=3, min=0, max=10,
                           description="Simplification levels (layered mode)"),
        seed=IntProperty(name="Seed", default=0, min=0, max=2147483647,
                         description="Random seed: same image and seed, same result"),
        quality=EnumProperty(name="Quality", items=QUALITIES, default="fast",
                             description="Speed/fidelity preset of the server's optimisation (the path "
                                         "budget stays the one set here)"),
        fill=EnumProperty(name="Fills", items=FILLS, default="flat",
                          description="Path fills: flat colours or gradients (imported as gradient materials)"),
        backdrop=BoolProperty(name="Backdrop", default=False,
                              description="Add a bottom layer filling what the paths leave uncovered where the "
                                          "image is opaque (made by lvss remote where Blender's Python cannot)"),
        hide_image=BoolProperty(name="Hide Image", default=False,
                                description="Hide the image object once the result is inserted"),
    )


OPTION_NAMES = ("prompt", "paths", "mode", "levels", "seed", "quality", "fill", "backdrop", "hide_image",
                "layer_step", "path_step", "shading")


class LvssSceneSettings(bpy.types.PropertyGroup):
    """The sidebar's vectorize options, saved with the scene."""


class LVSS_OT_vectorize(bpy.types.Operator):
    """Vectorize the active image (image Empty or image plane) with an lvss server and insert the
    result over it as layer collections"""

    bl_idname = "lvss.vectorize"
    bl_label = "Vectorize Image (lvss)"
    # one undo step, but no redo panel: redoing would run execute(), which waits for the server
    # with the interface frozen; run the operator again instead
    bl_options = {"UNDO"}

    _timer = None
    _job = None
    _source = None
    _preview = None  # (BuildResult, remove) of the temporary preview collection, while one is shown
    _preview_at = 0.0

    @classmethod
    def poll(cls, context):
        if context.mode != "OBJECT":
            cls.poll_message_set("Switch to Object Mode first")
            return False
        return True

    # options left unset come from the sidebar (the scene's settings)
    def _fill_defaults(self, context) -> None:
        scene_opts = getattr(context.scene, "lvss", None)
        for name in OPTION_NAMES:
            if scene_opts is not None and not self.properties.is_property_set(name):
                setattr(self, name, getattr(scene_opts, name))

    def _start(self, context, previews: bool = False) -> None:
        obj = image_source.active_image_object(context)
        self._source = image_source.read_source(obj)
        quality = getattr(self, "quality", "SERVER")  # an object holding only the older options: the server's
        settings = preferences.settings(context, prompt=self.prompt.strip(), paths=self.paths, mode=self.mode,
                                        levels=self.levels, seed=self.seed,
                                        quality="" if quality == "SERVER" else quality, previews=previews,
                                        fill=getattr(self, "fill", ""), backdrop=getattr(self, "backdrop", False))
        self._settings = settings
        self._job = remote.start(self._source.data, settings)

    def _fail(self, err) -> set:
        if isinstance(err, remote.RemoteError):
            name = self._source.name if self._source else "the image"
            self.report({"ERROR"}, remote.explain(err, self._settings, name))
        else:
            self.report({"ERROR"}, str(err))
        return {"CANCELLED"}

    def execute(self, context):
        """Blocking run, for scripts (the menu and sidebar use the modal version)."""
        self._fill_defaults(context)
        self._settings = preferences.settings(context)
        try:
            self._start(context)
        except (image_source.ImageSourceError, remote.RemoteError) as err:
            return self._fail(err)
        try:
            self._job.wait()
        except KeyboardInterrupt:
            self._job.cancel()
            self._job.wait(30)
            self.report({"WARNING"}, "Vectorize cancelled; nothing was changed.")
            return {"CANCELLED"}
        return self._finish(context)

    def invoke(self, context, event):
        self._fill_defaults(context)
        self._settings = preferences.settings(context)
        try:
            self._start(context, previews=True)
        except (image_source.ImageSourceError, remote.RemoteError) as err:
            return self._fail(err)
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 100)
        self._show(context, self._job.poll())
        return {"RUNNING_MODAL"}

    def _show(self, context, status) -> None:
        pct = int(round(status.fraction * 100))
        if context.workspace is not None:
            context.workspace.status_text_set(
                f"lvss: vectorizing '{self._source.name}' - {status.label} {pct}%  "
                f"({time.monotonic() - self._job.started:.0f} s)   Esc: cancel")
        context.window_manager.progress_update(pct)

    def _where(self, context, drawing):
        """(image object, placement, parent collection, root matrix) for a drawing over the image;
        raises ImageSourceError when the image object is gone or has no image any more."""
        src = self._source
        obj = bpy.data.objects.get(src.object_name)
        if obj is None:
            raise image_source.ImageSourceError(
                f"The image object '{src.object_name}' was deleted or renamed while vectorizing; nothing was "
                "inserted. Run Vectorize again.")
        frame = image_source.frame_of(obj, image_source.image_of(obj))
        placement = Placement(sx=frame.u.length / drawing.width, sy=frame.v.length / drawing.height,
                              ox=drawing.width / 2, oy=drawing.height / 2)
        parent = obj.users_collection[0] if obj.users_collection else context.scene.collection
        if parent.library is not None or parent.override_library is not None:
            parent = context.scene.collection
        return obj, placement, parent, obj.matrix_world @ frame.matrix()

    def _show_preview(self, context) -> None:
        """Replace the temporary preview collection by the job's latest preview (at most every
        PREVIEW_EVERY seconds). It lives only while the operator runs: _finish and every way out
        remove it, so the one undo step of the run holds the final result alone. A preview that
        cannot be shown is skipped; it never stops the run."""
        if time.monotonic() - self._preview_at < PREVIEW_EVERY:
            return
        svg = self._job.take_preview()
        if not svg:
            return
        self._preview_at = time.monotonic()
        try:
            drawing = parse_svg(svg, name="preview")
            obj, placement, parent, matrix = self._where(context, drawing)
            self._drop_preview()
            self._preview = build_temporary(drawing, name=f"{self._source.name}{PREVIEW_SUFFIX}",
                                            placement=placement, parent_collection=parent, root_matrix=matrix,
                                            layer_step=self.layer_step, path_step=self.path_step,
                                            base_z=self.layer_step, shading=self.shading)
        except Exception:  # noqa: BLE001  the result still comes; only the picture so far is missing
            self._drop_preview()

    def _drop_preview(self) -> None:
        preview, self._preview = self._preview, None
        if preview is not None:
            try:
                preview[1]()
            except Exception:  # noqa: BLE001  already gone (the user deleted it, a file was loaded)
                pass

    def _cleanup(self, context) -> None:
        self._drop_preview()
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            self._job.cancel()
            self._cleanup(context)
            self.report({"WARNING"}, f"Vectorizing '{self._source.name}' cancelled; nothing was changed.")
            return {"CANCELLED"}
        if event.type == "TIMER":
            self._show(context, self._job.poll())
            if self._job.done:
                self._cleanup(context)
                return self._finish(context)
            self._show_preview(context)
        return {"PASS_THROUGH"}

    def cancel(self, context):  # Blender ends the modal (file loaded, window closed)
        if self._job is not None:
            self._job.cancel()
        self._cleanup(context)

    def _finish(self, context) -> set:
        self._drop_preview()  # the result replaces the picture so far, in the same undo step
        job, src = self._job, self._source
        if job.error is not None:
            return self._fail(job.error)
        try:
            drawing = parse_svg(job.svg or "", name=f"the server's SVG for '{src.name}'")
        except SvgImportError as err:
            self.report({"ERROR"}, f"{err}. Nothing was changed; check the server's version and log.")
            return {"CANCELLED"}
        try:
            obj, placement, parent, matrix = self._where(context, drawing)
        except image_source.ImageSourceError as err:
            return self._fail(err)
        try:
            result = build(drawing, name=f"{src.name} (lvss)", placement=placement, parent_collection=parent,
                           root_matrix=matrix, layer_step=self.layer_step,
                           path_step=self.path_step, base_z=self.layer_step, shading=self.shading)
        except Exception as err:  # noqa: BLE001  build() removed what it made
            self.report({"ERROR"}, f"Could not insert the result, nothing was changed: {type(err).__name__}: {err}")
            return {"CANCELLED"}
        result.root["lvss_image"] = obj.name
        if self.hide_image:
            obj.hide_set(True)
            obj.hide_render = True
        _select_result(context, result)
        took = time.monotonic() - job.started
        self.report({"INFO"}, f"Vectorized '{src.name}': {len(result.layers)} layers, {len(result.objects)} paths "
                              f"in {took:.1f} s" + _skipped_note(drawing))
        for warning in job.warnings:  # what the server did not use, a backdrop that could not be made
            self.report({"WARNING"}, f"lvss: {warning}")
        return {"FINISHED"}


# ---------------------------------------------------------------------------------------------
# UI
# ---------------------------------------------------------------------------------------------
class VIEW3D_PT_lvss(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "lvss"
    bl_label = "Vectorize (lvss)"

    def draw(self, context):
        layout = self.layout
        opts = context.scene.lvss
        obj = context.active_object
        try:
            image_source.active_image_object(context)
            layout.label(text=f"Image: {obj.name}", icon="IMAGE_DATA")
        except image_source.ImageSourceError:
            layout.label(text="Select an image Empty or image plane", icon="INFO")
        col = layout.column()
        col.prop(opts, "prompt")
        col.prop(opts, "paths")
        col.prop(opts, "mode")
        sub = col.column()
        sub.active = opts.mode == "layered"
        sub.prop(opts, "levels")
        col.prop(opts, "seed")
        col.prop(opts, "quality")
        col.prop(opts, "fill")
        col.prop(opts, "backdrop")
        col.prop(opts, "hide_image")
        col.prop(opts, "shading")
        col.prop(opts, "layer_step")
        col.prop(opts, "path_step")
        layout.operator(LVSS_OT_vectorize.bl_idname, icon="CURVE_BEZCURVE")
        row = layout.row()
        row.label(text=f"Server: {preferences.get(context).server}")
        row.operator("preferences.addon_show", text="", icon="PREFERENCES").module = preferences.PACKAGE
        layout.operator(LVSS_OT_import_svg.bl_idname, text="Import Layered SVG...", icon="IMPORT")


def menu_import(self, context):
    self.layout.operator(LVSS_OT_import_svg.bl_idname, text="Layered SVG (lvss) (.svg)")


def menu_object(self, context):
    self.layout.separator()
    self.layout.operator(LVSS_OT_vectorize.bl_idname, icon="CURVE_BEZCURVE")


class LVSS_FH_svg(bpy.types.FileHandler):
    bl_idname = "LVSS_FH_svg"
    bl_label = "Layered SVG (lvss)"
    bl_import_operator = LVSS_OT_import_svg.bl_idname
    bl_file_extensions = ".svg"

    @classmethod
    def poll_drop(cls, context):
        return context.area is not None and context.area.type == "VIEW_3D"


def _annotate(cls, props: dict) -> None:
    """Add properties to a class as annotations (how Blender expects them declared)."""
    cls.__annotations__ = {**cls.__dict__.get("__annotations__", {}), **props}


_annotate(LVSS_OT_import_svg, _stack_props())
_annotate(LvssSceneSettings, {**_option_props(), **_stack_props()})
_annotate(LVSS_OT_vectorize, {**_option_props(), **_stack_props()})

CLASSES = (LvssSceneSettings, LVSS_OT_import_svg, LVSS_OT_vectorize, VIEW3D_PT_lvss, LVSS_FH_svg)
