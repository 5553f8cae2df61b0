"""Turning a :class:`svg_layers.Drawing` into Blender data: collections, curves and materials.

Layout of what :func:`build` makes::

    <parent collection, named after the file>
        <root Empty, named after the file>        all curve objects are its children
        <one child collection per layer, back to front, named with the layer's label (a sublayer
         whose label repeats, lvss's "details", as "<parent label> · details")>
            <one 2D curve object per shape, named after the element's id or else after what it is
     ("02 Shapes, red · shape 2, dark red"), Bézier points kept, filled by a Geometry Nodes
     modifier ("lvss Fill", shared)>
                <its fill patch "<name> · fill", a mesh child, where the shape needs one (below)>

Fill rules: Blender's curve fill is even-odd; SVG's default rule is nonzero. Where a shape's
outline winds twice or more the same way around a region (a star drawn as one path, same-direction
nested outlines, the curls of optimised lvss paths), nonzero fills it and Blender would not: that
region (``fill_rule.fill_outline(..., region="missing")``) becomes a mesh patch, a child of the
curve object with its material, so the curve keeps the SVG's Bézier points. The patch follows the
object (moves, layer stacking) but not later edits of the curve's points.

Coordinates: a :class:`Placement` maps SVG pixels (x right, y down) into the root's local frame
(x right, y up); the layers are stacked along the root's local +Z, back to front, so the drawing
reads correctly seen from +Z (the Top view, or the front of an image Empty).

Materials: one per distinct fill colour and opacity, named by its hex value (``#1a2b3c``, or
``#1a2b3c80`` with the opacity as a fourth byte), and reused across imports. "Flat" materials
emit their colour (renders show exactly the SVG's colours, whatever the lights); "Lit" materials
use the Principled BSDF. Both set the viewport colour, so Solid mode and Workbench show the fills.

Gradient fills get a material of their own ("<shape id> gradient"): the offset is computed from the
object's coordinates (Texture Coordinate > Object, i.e. the curve's own frame, which the
:class:`Placement` ties to SVG pixels) with math nodes: a plane for a linear gradient, the SVG
focal-point formula for a radial one, the spread method (pad, repeat, reflect) after it; a Color
Ramp holds the stops (extra stops in between make its scene-linear blend follow SVG's sRGB one) and
its alpha, times the fill opacity, mixes in a Transparent BSDF. Renders (EEVEE, Cycles) show the
gradient; the viewport colour is its mean colour (Workbench shows that).

Nothing here catches errors: :func:`build` removes whatever it created before re-raising, so a
failure leaves the file as it was.
"""
from __future__ import annotations

from dataclasses import dataclass

import bpy
from mathutils import Matrix

from .fill_rule import fill_outline
from .svg_layers import Drawing, collection_name, object_name

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


def _gradient_key(shape, placement: "Placement", shading: str) -> str:
    g = shape.gradient
    nums = [*g.to_space, *g.geometry, *(v for o, c in g.stops for v in (o, *c)), shape.opacity,
            placement.sx, placement.sy, placement.ox, placement.oy]
    return f"gradient|{g.kind}|{g.spread}|{shading}|" + ",".join(f"{v:.6g}" for v in nums)


def _ramp_stops(stops: list, most: int = 32) -> list:
    """The stops in scene-linear colour with in-between stops added (as many as fit in ``most``), so
    that the ramp's blend in scene-linear space follows SVG's blend in sRGB."""
    gaps = max(len(stops) - 1, 1)
    extra = max(0, min(7, (most - len(stops)) // gaps))
    out = []
    for i, (o0, c0) in enumerate(stops):
        out.append((o0, c0))
        if i + 1 < len(stops):
            o1, c1 = stops[i + 1]
            for k in range(1, extra + 1):
                f = k / (extra + 1)
                out.append((o0 + f * (o1 - o0), tuple(a + f * (b - a) for a, b in zip(c0, c1))))
    return [(o, (*(srgb_to_linear(v) for v in c[:3]), c[3])) for o, c in out]


def _make_gradient_material(name: str, key: str, shape, placement: "Placement", shading: str):
    """A material whose colour follows ``shape.gradient`` over the curve object's own coordinates."""
    g = shape.gradient
    mat = _make_material(name, key, shape.rgb, shape.opacity, shading)
    mat.diffuse_color = (*(srgb_to_linear(c) for c in shape.rgb), shape.opacity)
    if shape.opacity < 1.0 or any(c[3] < 1.0 for _, c in g.stops):
        if hasattr(mat, "surface_render_method"):
            mat.surface_render_method = "BLENDED"
        mat.blend_method = "BLEND"
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    out = next(n for n in nodes if n.type == "OUTPUT_MATERIAL")
    surf = next(n for n in nodes if n.type in ("EMISSION", "BSDF_PRINCIPLED"))
    for n in [n for n in nodes if n.type in ("BSDF_TRANSPARENT", "MIX_SHADER")]:
        nodes.remove(n)
    x = [-1400]

    def math(op, a, b=None, c=None):
        n = nodes.new("ShaderNodeMath")
        n.operation = op
        n.location = (x[0], -200)
        x[0] += 120
        for i, v in enumerate((a, b, c)):
            if v is None:
                continue
            if isinstance(v, (int, float)):
                n.inputs[i].default_value = float(v)
            else:
                links.new(v, n.inputs[i])
        return n.outputs[0]

    coords = nodes.new("ShaderNodeTexCoord")
    coords.location = (-1800, 0)
    sep = nodes.new("ShaderNodeSeparateXYZ")
    sep.location = (-1600, 0)
    links.new(coords.outputs["Object"], sep.inputs[0])
    lx, ly = sep.outputs["X"], sep.outputs["Y"]
    # object coordinates (x', y') -> SVG pixels x = x'/sx + ox, y = -y'/sy + oy -> gradient space
    a, b, c, d, e, f = g.to_space
    sx, sy, ox, oy = placement.sx, placement.sy, placement.ox, placement.oy

    def affine(u, v, w):  # u * x + v * y + w as a function of the object coordinates
        return math("MULTIPLY_ADD", lx, u / sx, math("MULTIPLY_ADD", ly, -v / sy, u * ox + v * oy + w))

    qx = (a, c, e)  # gradient x = a x + c y + e
    qy = (b, d, f)
    if g.kind == "linear":
        x1, y1, x2, y2 = g.geometry
        dx, dy = x2 - x1, y2 - y1
        n2 = max(dx * dx + dy * dy, 1e-300)
        u = (dx * qx[0] + dy * qy[0]) / n2
        v = (dx * qx[1] + dy * qy[1]) / n2
        w = (dx * (qx[2] - x1) + dy * (qy[2] - y1)) / n2
        t = affine(u, v, w)
    else:
        cx, cy, r, fx, fy = g.geometry
        ex = affine(qx[0], qx[1], qx[2] - fx)
        ey = affine(qy[0], qy[1], qy[2] - fy)
        kx, ky = cx - fx, cy - fy
        aa = kx * kx + ky * ky - r * r  # < 0
        w = math("MULTIPLY_ADD", ex, kx, math("MULTIPLY", ey, ky))
        ee = math("MULTIPLY_ADD", ex, ex, math("MULTIPLY", ey, ey))
        disc = math("MULTIPLY_ADD", ee, -aa, math("MULTIPLY", w, w))
        root = math("SQRT", math("MAXIMUM", disc, 0.0))
        t = math("MULTIPLY", math("SUBTRACT", w, root), 1.0 / aa)
    if g.spread == "repeat":
        t = math("FRACT", t)
    elif g.spread == "reflect":
        t = math("PINGPONG", t, 1.0)
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.location = (x[0], 0)
    cr = ramp.color_ramp
    cr.interpolation = "LINEAR"
    cr.color_mode = "RGB"
    stops = _ramp_stops(g.stops)
    while len(cr.elements) > 1:
        cr.elements.remove(cr.elements[-1])
    cr.elements[0].position = stops[0][0]
    cr.elements[0].color = stops[0][1]
    for o, col in stops[1:]:
        el = cr.elements.new(o)
        el.color = col
    links.new(t, ramp.inputs["Fac"])
    links.new(ramp.outputs["Color"], surf.inputs["Color" if surf.type == "EMISSION" else "Base Color"])
    alpha = ramp.outputs["Alpha"]
    if shape.opacity < 1.0:
        alpha = math("MULTIPLY", alpha, shape.opacity)
    clear = nodes.new("ShaderNodeBsdfTransparent")
    clear.location = (0, 200)
    mix = nodes.new("ShaderNodeMixShader")
    mix.location = (200, 0)
    links.new(alpha, mix.inputs["Fac"])
    links.new(clear.outputs[0], mix.inputs[1])
    links.new(surf.outputs[0], mix.inputs[2])
    links.new(mix.outputs[0], out.inputs["Surface"])
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
        self.node_groups, self.meshes = [], []

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
        for me in self.meshes:
            if me.name in bpy.data.meshes:
                bpy.data.meshes.remove(me, do_unlink=True)
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
    patches: list = None  # the fill-rule patches (meshes, each a child of its curve object)


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


def build_temporary(drawing: Drawing, *, name: str, placement: Placement, parent_collection,
                    root_matrix: Matrix | None = None, layer_step: float = 0.01, path_step: float = 0.001,
                    base_z: float = 0.0, shading: str = "FLAT", resolution: int = 4):
    """:func:`build` for something shown for a while (the vectorize operator's preview of the result
    so far): returns (BuildResult, remove), where ``remove()`` deletes every datablock this call made
    (objects, curves, patches, collections, and the materials and fill node group it had to create),
    leaving the file as it was before."""
    if shading not in ("FLAT", "LIT"):
        raise ValueError(f"shading must be FLAT or LIT, got {shading!r}")
    made = _Created()
    try:
        res = _build(drawing, name, placement, parent_collection, root_matrix, layer_step, path_step,
                     base_z, shading, resolution, made)
    except BaseException:
        made.remove()
        raise
    return res, made.remove


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
    patches: list = []
    z = base_z
    first = True
    for li, lay in enumerate(drawing.layers):
        col = bpy.data.collections.new(collection_name(drawing, li))
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
            gradient = getattr(shape, "gradient", None)
            key = (_gradient_key(shape, placement, shading) if gradient is not None
                   else _material_key(shape.hex, shape.opacity, shading))
            mat = mats.get(key)
            if mat is None and gradient is not None:
                mat = _make_gradient_material(f"{shape.id} gradient" + ("" if shading == "FLAT" else " lit"), key,
                                              shape, placement, shading)
            elif mat is None:
                mat = _make_material(material_name(shape.hex, shape.opacity, shading), key, shape.rgb,
                                     shape.opacity, shading)
            if key not in mats:
                made.materials.append(mat)
                mats[key] = mat
                new_materials += 1
            obj_name = object_name(drawing, li, k)
            cu = bpy.data.curves.new(obj_name, "CURVE")
            made.curves.append(cu)
            cu.dimensions = "2D"
            cu.fill_mode = "NONE"  # filled by the Geometry Nodes modifier below
            cu.resolution_u = resolution
            cu.materials.append(mat)
            rule = getattr(shape, "fill_rule", "nonzero")
            for spline in shape.splines:
                _add_spline(cu, spline, placement)
            obj = bpy.data.objects.new(obj_name, cu)
            made.objects.append(obj)
            obj["lvss_fill"] = shape.hex
            obj["lvss_id"] = shape.id
            obj["lvss_fill_rule"] = rule
            mod = obj.modifiers.new("lvss Fill", "NODES")
            mod.node_group = fill_group
            mod[mat_socket] = mat  # the fill's material (the filled mesh does not see the slots)
            obj.parent = root
            obj.location = (0.0, 0.0, z)
            col.objects.link(obj)
            objects.append(obj)
            # what the fill rule fills and Blender's (even-odd) curve fill leaves empty
            missing = fill_outline(shape.splines, rule, steps=resolution, region="missing")
            if missing:
                patch = _patch_object(obj_name, missing, placement, mat, resolution, made)
                patch.parent = obj
                col.objects.link(patch)
                patches.append(patch)
    return BuildResult(collection=top, root=root, layers=layer_cols, objects=objects, materials=new_materials,
                       patches=patches)


def _add_spline(cu, spline, placement: Placement) -> None:
    n = len(spline.anchors)
    sp = cu.splines.new("BEZIER")
    if n > 1:
        sp.bezier_points.add(n - 1)
    straight = getattr(spline, "straight", None) or [False] * n
    for i, bp in enumerate(sp.bezier_points):  # handle types first, so nothing recomputes the positions below
        # straight segments of an outline get VECTOR handles: Blender evaluates them as one edge
        bp.handle_left_type = "VECTOR" if straight[i - 1] else "FREE"
        bp.handle_right_type = "VECTOR" if straight[i] else "FREE"
    flat = lambda pts: [c for p in pts for c in (*placement.point(p), 0.0)]  # noqa: E731
    sp.bezier_points.foreach_set("co", flat(spline.anchors))
    sp.bezier_points.foreach_set("handle_left", flat(spline.handles_left))
    sp.bezier_points.foreach_set("handle_right", flat(spline.handles_right))
    sp.use_cyclic_u = True


PATCH_SUFFIX = " · fill"


def _patch_object(name: str, outlines: list, placement: Placement, mat, resolution: int, made: "_Created"):
    """A mesh object filling ``outlines`` (simple loops: outer ones and holes), flattened as Blender
    evaluates curves (``resolution`` points per curved segment, straight ones as one edge)."""
    import bmesh

    bm = bmesh.new()
    edges = []
    for outline in outlines:
        pts = []
        for (p0, c1, c2, p1), straight in zip(outline.segments(), outline.straight):
            n = 1 if straight else resolution
            for k in range(n):
                t = k / n
                s = 1.0 - t
                pts.append(tuple(s ** 3 * a + 3 * s * s * t * b + 3 * s * t * t * c + t ** 3 * d
                                 for a, b, c, d in zip(p0, c1, c2, p1)))
        verts = [bm.verts.new((*placement.point(p), 0.0)) for p in pts]
        if len(verts) < 3:
            continue
        edges += [bm.edges.new((verts[i], verts[(i + 1) % len(verts)])) for i in range(len(verts))]
    bmesh.ops.remove_doubles(bm, verts=bm.verts[:], dist=1e-9)
    bmesh.ops.triangle_fill(bm, use_beauty=True, use_dissolve=False, edges=[e for e in bm.edges if e.is_valid])
    me = bpy.data.meshes.new(_fit_name(name, PATCH_SUFFIX))
    made.meshes.append(me)
    bm.to_mesh(me)
    bm.free()
    me.materials.append(mat)
    obj = bpy.data.objects.new(me.name, me)
    made.objects.append(obj)
    obj["lvss_patch"] = 1
    return obj


def _fit_name(head: str, tail: str, most: int = 63) -> str:
    while len((head + tail).encode("utf-8")) > most and head:
        head = head[:-1]
    return head + tail
