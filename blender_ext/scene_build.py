"""Turning a :class:`svg_layers.Drawing` into Blender data: collections, curves and materials.

Layout of what :func:`build` makes::

    <parent collection, named after the file>
        <root Empty, named after the file>        all curve objects are its children
        <one child collection per layer, back to front, named with the layer's label>
            <one 2D curve object per shape, named after the shape's id, Bézier points kept, filled by
     a Geometry Nodes modifier ("lvss Fill", shared)>

Coordinates: a :class:`Placement` maps SVG pixels (x right, y down) into the root's local frame
(x right, y up); the layers are stacked along the root's local +Z, back to front, so the drawing
reads correctly seen from +Z (the Top view, or the front of an image Empty).

Materials: one per distinct fill colour and opacity, named by its hex value (``#1a2b3c``, or
``#1a2b3c80`` with the opacity as a fourth byte), and reused across imports. "Flat" materials
emit their colour (renders show exactly the SVG's colours, whatever the lights); "Lit" materials
use the Principled BSDF. Both set the viewport colour, so Solid mode and Workbench show the fills.

Nothing here catches errors: :func:`build` removes whatever it created before re-raising, so a
failure leaves the file as it was.
"""
from __future__ import annotations

from dataclasses import dataclass

import bpy
from mathutils import Matrix

from .svg_layers import Drawing

MATERIAL_KEY = "lvss_fill"


@dataclass(frozen=True)
class Placement:
    """SVG pixels -> the root's local frame: x' = sx * (x - ox), y' = -sy * (y - oy)."""

    sx: float
    sy: float
    ox: float
    oy: float

    def point(self, p) -> tuple:
        return (self.sx * (p[0] - self.ox), -self.sy * (p[1] - self.oy))

    @staticmethod
    def for_drawing(width: float, height: float, *, scale: float = 0.01, fit_width: float = 0.0,
                    origin: str = "CENTER") -> "Placement":
        """Uniform scale (``scale`` scene units per SVG pixel, or ``fit_width`` units for the whole
        width when > 0) with the origin at the drawing's centre, bottom-left or top-left corner."""
        s = fit_width / width if fit_width > 0 else scale
        if not (s > 0):
            raise ValueError(f"the scale must be positive, got {s}")
        ox, oy = {"CENTER": (width / 2, height / 2), "BOTTOM_LEFT": (0.0, height),
                  "TOP_LEFT": (0.0, 0.0)}[origin]
        return Placement(s, s, ox, oy)


def srgb_to_linear(c: float) -> float:
    """One sRGB channel (0..1) to scene-linear, the colour space of Blender's material colours."""
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def material_name(hex_rgb: str, opacity: float, shading: str) -> str:
    alpha = int(round(min(max(opacity, 0.0), 1.0) * 255))
    name = hex_rgb if alpha == 255 else f"{hex_rgb}{alpha:02x}"
    return name if shading == "FLAT" else f"{name} lit"


def _material_key(hex_rgb: str, opacity: float, shading: str) -> str:
    return f"{hex_rgb}|{int(round(min(max(opacity, 0.0), 1.0) * 255))}|{shading}"


def _make_material(name: str, key: str, rgb: tuple, opacity: float, shading: str):
    mat = bpy.data.materials.new(name)
    mat[MATERIAL_KEY] = key
    lin = tuple(srgb_to_linear(c) for c in rgb)
    mat.diffuse_color = (*lin, opacity)
    mat.roughness = 1.0
    mat.metallic = 0.0
    mat.use_backface_culling = False
    translucent = opacity < 1.0
    if translucent:
        if hasattr(mat, "surface_render_method"):  # Blender 4.2+ (EEVEE Next)
            mat.surface_render_method = "BLENDED"
        mat.blend_method = "BLEND"
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    out.location = (400, 0)
    if shading == "FLAT":
        surf = nodes.new("ShaderNodeEmission")
        surf.inputs["Color"].default_value = (*lin, 1.0)
        surf.inputs["Strength"].default_value = 1.0
    else:
        surf = nodes.new("ShaderNodeBsdfPrincipled")
        surf.inputs["Base Color"].default_value = (*lin, 1.0)
        surf.inputs["Roughness"].default_value = 0.8
    surf.location = (0, 0)
    if translucent:
        clear = nodes.new("ShaderNodeBsdfTransparent")
        clear.location = (0, 200)
        mix = nodes.new("ShaderNodeMixShader")
        mix.location = (200, 0)
        mix.inputs["Fac"].default_value = opacity
        links.new(clear.outputs[0], mix.inputs[1])
        links.new(surf.outputs[0], mix.inputs[2])
        links.new(mix.outputs[0], out.inputs["Surface"])
    else:
        links.new(surf.outputs[0], out.inputs["Surface"])
    return mat


FILL_GROUP = "lvss Fill"
FILL_KEY = "lvss_fill_group"


def fill_node_group(made: "_Created"):
    """The shared Geometry Nodes group that fills a curve object's splines with the material given
    to the modifier (made once per file).

    Blender's own 2D curve fill breaks on self-intersecting splines, which optimised paths often
    are; the Fill Curve node triangulates with intersections resolved, and nested splines become
    holes. The curves stay editable: the fill follows every edit of their points.
    """
    for ng in bpy.data.node_groups:
        if ng.get(FILL_KEY) == 1 and ng.library is None and ng.bl_idname == "GeometryNodeTree":
            return ng
    ng = bpy.data.node_groups.new(FILL_GROUP, "GeometryNodeTree")
    made.node_groups.append(ng)
    ng[FILL_KEY] = 1
    ng.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    ng.interface.new_socket("Material", in_out="INPUT", socket_type="NodeSocketMaterial")
    ng.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    gin = ng.nodes.new("NodeGroupInput")
    gin.location = (-400, 0)
    fill = ng.nodes.new("GeometryNodeFillCurve")
    fill.mode = "TRIANGLES"
    fill.location = (-150, 0)
    set_mat = ng.nodes.new("GeometryNodeSetMaterial")
    set_mat.location = (100, 0)
    gout = ng.nodes.new("NodeGroupOutput")
    gout.location = (350, 0)
    ng.links.new(gin.outputs["Geometry"], fill.inputs["Curve"])
    ng.links.new(fill.outputs[0], set_mat.inputs["Geometry"])
    ng.links.new(gin.outputs["Material"], set_mat.inputs["Material"])
    ng.links.new(set_mat.outputs[0], gout.inputs[0])
    return ng


def _material_socket(ng) -> str:
    return next(item.identifier for item in ng.interface.items_tree
                if getattr(item, "in_out", "") == "INPUT" and item.socket_type == "NodeSocketMaterial")


class _Created:
    """Every datablock made so far, so that a failure can remove them all again."""

    def __init__(self):
        self.objects, self.curves, self.collections, self.materials = [], [], [], []
        self.node_groups = []

    def remove(self) -> None:
        for obj in self.objects:
            if obj.name in bpy.data.objects:
                bpy.data.objects.remove(obj, do_unlink=True)
        for cu in self.curves:
            if cu.name in bpy.data.curves:
                bpy.data.curves.remove(cu, do_unlink=True)
        for col in reversed(self.collections):
            if col.name in bpy.data.collections:
                bpy.data.collections.remove(col, do_unlink=True)
        for mat in self.materials:
            if mat.name in bpy.data.materials:
                bpy.data.materials.remove(mat, do_unlink=True)
        for ng in self.node_groups:
            if ng.name in bpy.data.node_groups:
                bpy.data.node_groups.remove(ng, do_unlink=True)


@dataclass
class BuildResult:
    collection: object  # the parent collection
    root: object  # the root Empty
    layers: list  # the layer collections, back to front
    objects: list  # the curve objects, back to front
    materials: int  # how many new materials were made


def build(drawing: Drawing, *, name: str, placement: Placement, parent_collection,
          root_matrix: Matrix | None = None, layer_step: float = 0.01, path_step: float = 0.001,
          base_z: float = 0.0, shading: str = "FLAT", resolution: int = 12) -> BuildResult:
    """Create the collections, root Empty, curves and materials for ``drawing``.

    The layers are stacked back to front along the root's local +Z: each layer starts
    ``layer_step`` above the top of the previous one, and the shapes within a layer rise by
    ``path_step`` each (0 keeps a layer flat), starting at ``base_z``. ``root_matrix`` places the
    root Empty in the world (default: identity). On any exception everything created is removed.
    """
    if shading not in ("FLAT", "LIT"):
        raise ValueError(f"shading must be FLAT or LIT, got {shading!r}")
    made = _Created()
    try:
        return _build(drawing, name, placement, parent_collection, root_matrix, layer_step, path_step,
                      base_z, shading, resolution, made)
    except BaseException:
        made.remove()
        raise


def _existing_materials() -> dict:
    return {m[MATERIAL_KEY]: m for m in bpy.data.materials if MATERIAL_KEY in m and m.library is None}


def _build(drawing, name, placement, parent_collection, root_matrix, layer_step, path_step, base_z,
           shading, resolution, made: _Created) -> BuildResult:
    top = bpy.data.collections.new(name)
    made.collections.append(top)
    top["lvss_size"] = (float(drawing.width), float(drawing.height))
    parent_collection.children.link(top)

    root = bpy.data.objects.new(name, None)
    made.objects.append(root)
    root.empty_display_type = "PLAIN_AXES"
    root.empty_display_size = max(drawing.width * placement.sx, drawing.height * placement.sy) * 0.1
    root["lvss_size"] = (float(drawing.width), float(drawing.height))
    if root_matrix is not None:
        root.matrix_world = root_matrix
    top.objects.link(root)

    mats = _existing_materials()
    fill_group = fill_node_group(made)
    mat_socket = _material_socket(fill_group)
    new_materials = 0
    layer_cols: list = []
    objects: list = []
    z = base_z
    first = True
    for lay in drawing.layers:
        col = bpy.data.collections.new(lay.label)
        made.collections.append(col)
        col["lvss_layer"] = lay.label
        col["lvss_id"] = lay.id
        parent = top if lay.parent is None else layer_cols[lay.parent]
        parent.children.link(col)
        if lay.hidden:
            col.hide_viewport = True
            col.hide_render = True
        layer_cols.append(col)
        if not lay.shapes:
            continue
        if not first:
            z += layer_step
        first = False
        for k, shape in enumerate(lay.shapes):
            if k:
                z += path_step
            key = _material_key(shape.hex, shape.opacity, shading)
            mat = mats.get(key)
            if mat is None:
                mat = _make_material(material_name(shape.hex, shape.opacity, shading), key, shape.rgb,
                                     shape.opacity, shading)
                made.materials.append(mat)
                mats[key] = mat
                new_materials += 1
            cu = bpy.data.curves.new(shape.id, "CURVE")
            made.curves.append(cu)
            cu.dimensions = "2D"
            cu.fill_mode = "NONE"  # filled by the Geometry Nodes modifier below
            cu.resolution_u = resolution
            cu.materials.append(mat)
            for spline in shape.splines:
                _add_spline(cu, spline, placement)
            obj = bpy.data.objects.new(shape.id, cu)
            made.objects.append(obj)
            obj["lvss_fill"] = shape.hex
            mod = obj.modifiers.new("lvss Fill", "NODES")
            mod.node_group = fill_group
            mod[mat_socket] = mat  # the fill's material (the filled mesh does not see the slots)
            obj.parent = root
            obj.location = (0.0, 0.0, z)
            col.objects.link(obj)
            objects.append(obj)
    return BuildResult(collection=top, root=root, layers=layer_cols, objects=objects, materials=new_materials)


def _add_spline(cu, spline, placement: Placement) -> None:
    n = len(spline.anchors)
    sp = cu.splines.new("BEZIER")
    if n > 1:
        sp.bezier_points.add(n - 1)
    for bp in sp.bezier_points:  # free handles first, so nothing recomputes the positions below
        bp.handle_left_type = "FREE"
        bp.handle_right_type = "FREE"
    flat = lambda pts: [c for p in pts for c in (*placement.point(p), 0.0)]  # noqa: E731
    sp.bezier_points.foreach_set("co", flat(spline.anchors))
    sp.bezier_points.foreach_set("handle_left", flat(spline.handles_left))
    sp.bezier_points.foreach_set("handle_right", flat(spline.handles_right))
    sp.use_cyclic_u = True
