"""Scene ⇄ SVG with lxml.

Writer: ``viewBox`` equal to the canvas, one ``<g inkscape:groupmode="layer">`` per layer (back to
front), each path ``<path d="M … C … Z" fill="#rrggbb" fill-opacity="a"/>``, its outline cleaned
into simple, non-overlapping contours inside the canvas (several ``M … Z`` where it has holes).
Numbers are written with ``precision`` decimals (default 2). A layer's detail paths (``Layer.details_from``) go in a sub-layer
labelled "details" at the front of the layer. Every path has an id that says its layer (place from the
back) and role: ``l03-shape-2`` (the layer's second own path), ``l03-detail-1`` (its first detail
path). A path with a gradient fill gets ``fill="url(#id)"``
and its ``<linearGradient>`` / ``<radialGradient gradientUnits="userSpaceOnUse">`` (one per path,
with its stops, so that Inkscape's gradient tool edits each on its own) goes in ``<defs>``.

Reader: :mod:`lvss.svg_read` (standard library only, shared with the Blender extension) reads the
document: what the writer writes, and plain SVGs (clip art) of filled shapes, ``<use>`` and nested
viewports, with transforms, ``preserveAspectRatio`` and linear and radial gradients; the functions
here turn its drawing into a scene. Two approximations: every spread method is read as "pad", and a
radial gradient under a transform that is not a similarity stays circular (radius scaled by the
transform's area factor). Each element becomes one lvss path: its subpaths (islands, and holes,
areas the element's fill rule, nonzero or evenodd, leaves empty) are joined through zero-width
bridges, so the lvss path fills what the element fills.
"""
from __future__ import annotations

import math
import re
from pathlib import Path as FsPath

import numpy as np
import torch
from lxml import etree

from . import svg_read
from .geometry.repair import EXPORT_MERGE, export_scene
from .io import atomic_write
from .scene import Layer, LinearGradient, Path, RadialGradient, Scene, SceneError, mean_color

SVG_NS = "http://www.w3.org/2000/svg"
INKSCAPE_NS = "http://www.inkscape.org/namespaces/inkscape"
XLINK_NS = "http://www.w3.org/1999/xlink"
NSMAP = {None: SVG_NS, "inkscape": INKSCAPE_NS}


SvgError = svg_read.SvgReadError  # the SVG cannot be read or written; the message says why


# ---------------------------------------------------------------------------------------------
# writer
# ---------------------------------------------------------------------------------------------
def _fmt(v: float, precision: int) -> str:
    s = f"{v:.{precision}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s in ("-0", ""):
        s = "0"
    return s


def path_data(points: np.ndarray, precision: int = 2) -> str:
    """``M … C … Z`` for a closed cubic path given as (3S, 2) points."""
    n = points.shape[0] // 3
    # every point written once, from Python floats (one conversion of the array)
    xy = [f"{_fmt(x, precision)} {_fmt(y, precision)}" for x, y in np.asarray(points, np.float64).tolist()]
    parts = [f"M{xy[0]}"]
    for k in range(n):
        parts.append(f"C{xy[3 * k + 1]} {xy[3 * k + 2]} {xy[(3 * k + 3) % (3 * n)]}")
    parts.append("Z")
    return "".join(parts)


def contours_data(contours: list[np.ndarray], precision: int = 2) -> str:
    """``M … C … Z`` once per closed contour, each given as (3K, 2) cubic control points."""
    return " ".join(path_data(c, precision) for c in contours)


def _hex(rgb) -> str:
    r, g, b = (int(round(min(max(float(c), 0.0), 1.0) * 255)) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


_XML_BAD = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(s: str) -> str:
    """``s`` without the characters XML 1.0 cannot hold (control characters, lone surrogates)."""
    return _XML_BAD.sub("", str(s))


def _layer_id(i: int, layer: Layer, used: set[str]) -> str:
    base = layer.id or f"layer{i + 1}"
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", base)
    if not re.match(r"[A-Za-z_]", base):
        base = f"l_{base}"
    out, k = base, 2
    while out in used:
        out, k = f"{base}_{k}", k + 1
    used.add(out)
    return out


def _gradient_element(defs, fill, gid: str, precision: int) -> None:
    """Append the ``<linearGradient>`` / ``<radialGradient>`` of one path's fill to ``defs``."""
    from .render.torch_raster import FOCAL_LIMIT

    f = lambda v: _fmt(float(v), precision)  # noqa: E731
    if isinstance(fill, LinearGradient):
        e = etree.SubElement(defs, f"{{{SVG_NS}}}linearGradient")
        vals = dict(zip(("x1", "y1", "x2", "y2"), [*fill.start.detach().tolist(), *fill.end.detach().tolist()]))
    else:
        e = etree.SubElement(defs, f"{{{SVG_NS}}}radialGradient")
        c = fill.center.detach().double()
        r = float(fill.radius.detach())
        vals = {"cx": c[0], "cy": c[1], "r": r}
        if fill.focal is not None:
            d = fill.focal.detach().double() - c
            n = float(d.norm())
            if n > FOCAL_LIMIT * r:  # as the rasterizer draws it: focal points stay inside the circle
                d = d * (FOCAL_LIMIT * r / n)
            if n > 10.0 ** -precision:
                vals["fx"], vals["fy"] = c[0] + d[0], c[1] + d[1]
    vals = {k: float(v) for k, v in vals.items()}
    if not all(math.isfinite(v) for v in vals.values()):
        raise SceneError("a gradient fill has NaN or infinite coordinates")
    e.set("id", gid)
    e.set("gradientUnits", "userSpaceOnUse")
    for k, v in vals.items():
        e.set(k, f(v))
    offs = fill.offsets.detach().cpu().double().numpy()
    cols = fill.colors.detach().cpu().double().numpy()
    if not (np.isfinite(offs).all() and np.isfinite(cols).all()):
        raise SceneError("a gradient fill has NaN or infinite stops")
    for o, c in zip(offs, cols):
        s = etree.SubElement(e, f"{{{SVG_NS}}}stop")
        s.set("offset", _fmt(min(max(float(o), 0.0), 1.0), max(precision, 3)))
        s.set("stop-color", _hex(c[:3]))
        a = min(max(float(c[3]), 0.0), 1.0)
        if a < 1.0:
            s.set("stop-opacity", _fmt(a, max(precision, 3)))


def scene_to_svg(scene: Scene, precision: int = 2, width: float | None = None,
                 height: float | None = None, clean: bool = True, merge: float = EXPORT_MERGE) -> str:
    """SVG text for a scene. ``width``/``height`` set the displayed size (default: the canvas).

    ``clean`` (default): every path is written as the area its nonzero fill covers inside the canvas,
    in simple, non-overlapping contours (outer loops, holes the other way round; specks under
    0.125 px² dropped, see :func:`lvss.geometry.repair.clean_contours`), so any renderer and either
    fill rule show what lvss optimised and no node lies outside the picture. Runs of segments that one
    cubic follows within ``merge`` pixels are written as that cubic (:mod:`lvss.geometry.merge`; 0:
    never). ``clean=False`` writes every path's control points as they are."""
    if precision < 0 or precision > 8:
        raise SvgError(f"precision must be between 0 and 8 decimals, got {precision}")
    root = etree.Element(f"{{{SVG_NS}}}svg", nsmap=NSMAP)
    root.set("version", "1.1")
    root.set("width", _fmt(width if width is not None else scene.width, precision))
    root.set("height", _fmt(height if height is not None else scene.height, precision))
    root.set("viewBox", f"0 0 {scene.width} {scene.height}")
    used: set[str] = set()
    defs = etree.SubElement(root, f"{{{SVG_NS}}}defs") if any(f is not None for f in scene.fills()) else None
    if defs is not None:
        defs.set("id", _layer_id(0, Layer("", id="defs"), used))
    digits = max(2, len(str(len(scene.layers))))
    # one batched crossing test for the whole scene: only the paths that fail it are redrawn
    if clean:
        for layer in scene.layers:
            for p in layer.paths:
                if not torch.isfinite(p.points).all():
                    raise SceneError(f"layer {layer.name!r} has a path with NaN or infinite points")
    exported = iter(export_scene(scene.point_list(), scene.width, scene.height, precision, merge,
                                 [p.opaque for p in scene.paths()]) if clean else [])
    for i, layer in enumerate(scene.layers):
        g = etree.SubElement(root, f"{{{SVG_NS}}}g")
        g.set("id", _layer_id(i, layer, used))
        g.set(f"{{{INKSCAPE_NS}}}label", _xml_text(layer.name))
        g.set(f"{{{INKSCAPE_NS}}}groupmode", "layer")
        parent = g
        for k, p in enumerate(layer.paths):
            if k == layer.details_from:
                # the layer's detail paths: a sub-layer at its front, hidden or moved with the layer
                parent = etree.SubElement(g, f"{{{SVG_NS}}}g")
                parent.set("id", _layer_id(i, Layer(layer.name, id=f"{g.get('id')}-details"), used))
                parent.set(f"{{{INKSCAPE_NS}}}label", "details")
                parent.set(f"{{{INKSCAPE_NS}}}groupmode", "layer")
            pts = p.points.detach().cpu().double().numpy()
            col = p.color.detach().cpu().double().numpy()
            if not np.isfinite(pts).all():
                raise SceneError(f"layer {layer.name!r} has a path with NaN or infinite points")
            if not np.isfinite(col).all():
                raise SceneError(f"layer {layer.name!r} has a path with a NaN or infinite colour")
            if clean:
                contours, decimals = next(exported)
                if not contours:     # nothing of it inside the canvas, or a speck
                    continue
                d = contours_data(contours, decimals)
            else:
                d = path_data(pts, precision)
            e = etree.SubElement(parent, f"{{{SVG_NS}}}path")
            detail = layer.details_from is not None and k >= layer.details_from
            number = k - layer.details_from + 1 if detail else k + 1
            e.set("id", _layer_id(0, Layer("", id=f"l{i + 1:0{digits}d}-{'detail' if detail else 'shape'}-{number}"),
                                  used))
            e.set("d", d)
            if p.fill is not None:
                kind = "linear" if isinstance(p.fill, LinearGradient) else "radial"
                gid = _layer_id(0, Layer("", id=f"{kind}{len(defs) + 1}"), used)
                _gradient_element(defs, p.fill, gid, precision)
                e.set("fill", f"url(#{gid})")
                continue
            e.set("fill", _hex(col[:3]))
            a = min(max(float(col[3]), 0.0), 1.0)
            if a < 1.0:
                e.set("fill-opacity", _fmt(a, max(precision, 3)))
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8").decode("utf-8")


def write_svg(scene: Scene, path: str | FsPath, precision: int = 2, **kw) -> None:
    """Write the scene's SVG atomically (never a partial file)."""
    atomic_write(path, scene_to_svg(scene, precision, **kw))


# ---------------------------------------------------------------------------------------------
# reader: lvss.svg_read's drawing as a scene
# ---------------------------------------------------------------------------------------------
def parse_path_data(d: str) -> list[np.ndarray]:
    """SVG path data → list of closed subpaths, each (3S, 2) float64 cubic control points (subpaths
    that enclose no area left out)."""
    out = []
    for start, segs in svg_read.parse_path_data(d):
        spline = svg_read.close_subpath(start, segs)
        if spline is not None:
            out.append(np.asarray(spline.control_points(), dtype=np.float64))
    return out


def _scene_gradient(g: svg_read.Gradient, alpha: float):
    """A scene gradient in canvas pixels for the reader's gradient ``g`` (whose matrix maps its own
    coordinates to canvas pixels), its stops' opacity times ``alpha``. Read as "pad" whatever its
    spread method; a radial one under a transform that is not a similarity stays circular (radius
    scaled by the transform's area factor)."""
    a, b, c, d, e, f = g.matrix
    A = np.array([[a, c], [b, d]])
    ap = lambda p: A @ np.asarray(p, dtype=np.float64) + (e, f)  # noqa: E731
    offs = torch.tensor([s[0] for s in g.stops], dtype=torch.float32)
    cols = torch.tensor([[*s[1][:3], s[1][3] * alpha] for s in g.stops], dtype=torch.float32).clamp(0, 1)
    if g.kind == "linear":
        p1, p2 = np.array(g.geometry[:2]), np.array(g.geometry[2:])
        v = p2 - p1
        s1 = ap(p1)
        grad = np.linalg.solve(A.T, v) / float(v @ v)   # the offset's gradient in canvas pixels
        end = s1 + grad / float(grad @ grad)
        return LinearGradient(torch.tensor(s1, dtype=torch.float32), torch.tensor(end, dtype=torch.float32),
                              offs, cols)
    cx, cy, r, fx, fy = g.geometry
    center, focal = ap((cx, cy)), ap((fx, fy))
    focal = None if float(np.hypot(*(focal - center))) < 1e-9 else torch.tensor(focal, dtype=torch.float32)
    return RadialGradient(torch.tensor(center, dtype=torch.float32), r * math.sqrt(abs(float(np.linalg.det(A)))),
                          offs, cols, focal)


def _with_holes_joined(subpaths: list[np.ndarray], evenodd: bool) -> np.ndarray:
    """The closed subpaths of one element as one closed path that fills what the element fills: its
    islands and holes (areas the element's fill rule leaves empty inside another subpath, as
    contours of their own running the other way round) joined by zero-width bridges, which the
    nonzero fill of the joined path leaves empty."""
    import pathops

    from .geometry.repair import _to_skia, clean_contours, contour_area, join_contours

    if not np.isfinite(np.concatenate(subpaths, 0)).all():
        return join_contours(subpaths)
    # the element's area as simple contours: outer loops one way round, holes the other
    joined = None
    for sp in subpaths:
        joined = sp if joined is None else join_contours([joined, sp])
    contours = clean_contours(joined, min_area=0.0, evenodd=evenodd, precision=None, split=True)
    signs = [contour_area(c) for c in contours]
    if not contours or all(a > 0 for a in signs) or all(a < 0 for a in signs):
        return joined
    outer_sign = 1.0 if max(signs, key=abs) > 0 else -1.0
    outers = [c for c, a in zip(contours, signs) if a * outer_sign > 0]
    holes = [c for c, a in zip(contours, signs) if a * outer_sign < 0]
    groups: list[list[np.ndarray]] = [[c] for c in outers]
    regions = [_to_skia(c, pathops) for c in outers]
    sizes = [abs(a) for a in signs if a * outer_sign > 0]
    for hole in holes:
        # the smallest outer loop around the hole's first node is the one it belongs to
        around = [k for k, r in enumerate(regions) if r.contains(tuple(map(float, hole[0])))]
        if around:
            groups[min(around, key=lambda k: sizes[k])].append(hole)
    return join_contours([join_contours(g) for g in groups])


def _scene_path(shape: svg_read.Shape) -> Path:
    """One element's shape (read in its own units) as one lvss path in canvas pixels: several
    subpaths joined in the element's units (see :func:`_with_holes_joined`), then placed."""
    subpaths = [np.asarray(s.control_points(), dtype=np.float64) for s in shape.splines]
    pts = subpaths[0] if len(subpaths) == 1 else _with_holes_joined(subpaths, shape.fill_rule == "evenodd")
    a, b, c, d, e, f = shape.matrix
    pts = np.c_[pts, np.ones(len(pts))] @ np.array([[a, c, e], [b, d, f], [0.0, 0.0, 1.0]]).T
    points = torch.tensor(pts[:, :2], dtype=torch.float32)
    if shape.gradient is not None:
        g = _scene_gradient(shape.gradient, shape.opacity).detach()
        return Path(points, mean_color(g), g)
    return Path(points, torch.tensor([*shape.rgb, min(max(shape.opacity, 0.0), 1.0)], dtype=torch.float32))


def svg_to_scene(source: str | bytes, width: int | None = None, height: int | None = None,
                 name: str | None = None) -> Scene:
    """Parse SVG text into a Scene (with :mod:`lvss.svg_read`).

    The canvas is ``width`` × ``height`` pixels (default: the SVG's size, from its width/height, else
    its viewBox), onto which the document (its viewBox placed as ``preserveAspectRatio`` says) is
    scaled. Top-level groups become layers (label from ``inkscape:label``, else ``id``), with
    everything inside them; shapes outside any group are collected into layers in document order;
    hidden layers are read empty. Each element becomes one path.
    """
    root = svg_read.parse_xml(source, name=name)
    try:
        doc_w, doc_h = svg_read.document_size(root)
    except SvgError as err:
        raise SvgError(f"{name}: {err}" if name else str(err)) from None
    W = width if width is not None else int(round(doc_w))
    H = height if height is not None else int(round(doc_h))
    if W <= 0 or H <= 0:
        raise SvgError(f"the SVG's size {W}x{H} is not positive")
    drawing = svg_read.read_root(root, name=name, size=(W, H), groups_as_layers=True, own_units=True)
    layers: list[Layer] = []
    for lay in drawing.layers:
        n = f"Layer {len(layers) + 1}"
        if lay.loose:
            layers.append(Layer(n, [_scene_path(s) for s in lay.shapes]))
        else:
            paths = [] if lay.hidden else [_scene_path(s) for s in lay.shapes]
            layers.append(Layer(lay.element_label or lay.element_id or n, paths, lay.element_id))
    return Scene(W, H, layers)


def read_svg(path: str | FsPath, width: int | None = None, height: int | None = None) -> Scene:
    p = FsPath(path)
    if not p.exists():
        raise SvgError(f"SVG file not found: {p}")
    return svg_to_scene(p.read_bytes(), width, height, name=p.name)


__all__ = ["scene_to_svg", "svg_to_scene", "write_svg", "read_svg", "path_data", "parse_path_data", "SvgError"]
