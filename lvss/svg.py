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

Reader: reads back everything the writer writes, and plain SVGs made of path, rect, circle, ellipse,
polygon and polyline elements with transforms (clip art). Only fills are read: strokes, ``<line>``,
text, images, clip paths, masks and filters are ignored. Linear and radial gradients are read as
gradient fills (stops inherited through ``href`` as Inkscape writes them, ``objectBoundingBox`` or
``userSpaceOnUse`` units, ``gradientTransform``); two approximations: every spread method is read
as "pad", and a radial gradient under a transform that is not a similarity stays circular (radius
scaled by the transform's area factor). Each element becomes one lvss path: its subpaths (islands,
and holes, areas the element's fill rule, nonzero or evenodd, leaves empty) are joined through
zero-width bridges, so the lvss path fills what the element fills.
"""
from __future__ import annotations

import math
import re
from pathlib import Path as FsPath

import numpy as np
import torch
from lxml import etree

from .geometry.repair import EXPORT_MERGE, export_scene
from .io import atomic_write
from .scene import Layer, LinearGradient, Path, RadialGradient, Scene, SceneError, mean_color

SVG_NS = "http://www.w3.org/2000/svg"
INKSCAPE_NS = "http://www.inkscape.org/namespaces/inkscape"
XLINK_NS = "http://www.w3.org/1999/xlink"
NSMAP = {None: SVG_NS, "inkscape": INKSCAPE_NS}


class SvgError(ValueError):
    """The SVG cannot be read; the message says why."""


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
    f = lambda p: f"{_fmt(p[0], precision)} {_fmt(p[1], precision)}"  # noqa: E731
    parts = [f"M{f(points[0])}"]
    for k in range(n):
        c1, c2, end = points[3 * k + 1], points[3 * k + 2], points[(3 * k + 3) % (3 * n)]
        parts.append(f"C{f(c1)} {f(c2)} {f(end)}")
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
    exported = iter(export_scene(scene.point_list(), scene.width, scene.height, precision, merge) if clean else [])
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
# reader
# ---------------------------------------------------------------------------------------------
_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_CMDS = "MmLlHhVvCcSsQqTtAaZz"
_ARGS = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7, "Z": 0}


def _tokens(d: str) -> list:
    """Path data → commands (str) and numbers (float).

    Arc flags (the 4th and 5th arc arguments) are single characters '0' or '1' and may be written
    without separators, as minifiers do: ``a5 5 0 105 5`` is rx=5 ry=5 rotation=0 large=1 sweep=0 x=5 y=5.
    """
    out: list = []
    arc = False
    argi = 0
    i, n = 0, len(d)
    while i < n:
        c = d[i]
        if c in " \t\r\n\f,":
            i += 1
            continue
        if c in _CMDS:
            out.append(c)
            arc, argi = c in "Aa", 0
            i += 1
            continue
        if arc and argi % 7 in (3, 4):
            if c not in "01":
                raise SvgError(f"path data has an arc flag {c!r} at position {i}; arc flags must be 0 or 1")
            out.append(float(c))
            argi += 1
            i += 1
            continue
        m = _NUM.match(d, i)
        if not m:
            raise SvgError(f"path data has an unexpected character {c!r} at position {i}")
        out.append(float(m.group(0)))
        argi += 1
        i = m.end()
    return out


def _arc_to_cubics(p0, rx, ry, phi_deg, large, sweep, p1):
    """Endpoint arc → list of cubic segments ((c1, c2, end), ...) (SVG implementation notes F.6)."""
    x1, y1 = p0
    x2, y2 = p1
    if rx == 0 or ry == 0 or (x1 == x2 and y1 == y2):
        return [((x1 + (x2 - x1) / 3, y1 + (y2 - y1) / 3), (x1 + 2 * (x2 - x1) / 3, y1 + 2 * (y2 - y1) / 3), (x2, y2))]
    rx, ry = abs(rx), abs(ry)
    phi = math.radians(phi_deg)
    cp, sp = math.cos(phi), math.sin(phi)
    dx, dy = (x1 - x2) / 2, (y1 - y2) / 2
    x1p, y1p = cp * dx + sp * dy, -sp * dx + cp * dy
    lam = (x1p / rx) ** 2 + (y1p / ry) ** 2
    if lam > 1:
        s = math.sqrt(lam)
        rx, ry = rx * s, ry * s
    num = rx * rx * ry * ry - rx * rx * y1p * y1p - ry * ry * x1p * x1p
    den = rx * rx * y1p * y1p + ry * ry * x1p * x1p
    coef = math.sqrt(max(num / den, 0.0)) if den > 0 else 0.0
    if large == sweep:
        coef = -coef
    cxp, cyp = coef * rx * y1p / ry, -coef * ry * x1p / rx
    cx = cp * cxp - sp * cyp + (x1 + x2) / 2
    cy = sp * cxp + cp * cyp + (y1 + y2) / 2

    def ang(ux, uy, vx, vy):
        a = math.atan2(ux * vy - uy * vx, ux * vx + uy * vy)
        return a

    t1 = ang(1, 0, (x1p - cxp) / rx, (y1p - cyp) / ry)
    dt = ang((x1p - cxp) / rx, (y1p - cyp) / ry, (-x1p - cxp) / rx, (-y1p - cyp) / ry)
    if not sweep and dt > 0:
        dt -= 2 * math.pi
    elif sweep and dt < 0:
        dt += 2 * math.pi
    nseg = max(1, int(math.ceil(abs(dt) / (math.pi / 2) - 1e-9)))
    step = dt / nseg
    k = 4.0 / 3.0 * math.tan(step / 4)
    out = []

    def pt(t):
        x, y = rx * math.cos(t), ry * math.sin(t)
        return (cp * x - sp * y + cx, sp * x + cp * y + cy)

    def der(t):
        x, y = -rx * math.sin(t), ry * math.cos(t)
        return (cp * x - sp * y, sp * x + cp * y)

    for i in range(nseg):
        a0, a1 = t1 + i * step, t1 + (i + 1) * step
        q0, q1 = pt(a0), pt(a1)
        d0, d1 = der(a0), der(a1)
        out.append(((q0[0] + k * d0[0], q0[1] + k * d0[1]), (q1[0] - k * d1[0], q1[1] - k * d1[1]),
                    (x2, y2) if i == nseg - 1 else q1))
    return out


def parse_path_data(d: str) -> list[np.ndarray]:
    """SVG path data → list of closed subpaths, each (3S, 2) float64 cubic control points."""
    toks = _tokens(d)
    subpaths: list[np.ndarray] = []
    cur = np.zeros(2)
    start = np.zeros(2)
    segs: list = []  # (c1, c2, end) relative to a subpath starting at `start`
    last_ctrl = None
    last_cmd = ""
    i = 0
    cmd = None

    def flush():
        nonlocal segs
        if segs:
            end = np.asarray(segs[-1][2])
            if np.hypot(*(end - start)) > 1e-9:
                segs.append((tuple(end + (start - end) / 3), tuple(end + 2 * (start - end) / 3), tuple(start)))
            pts = [start]
            for k, (c1, c2, e) in enumerate(segs):
                pts.append(np.asarray(c1))
                pts.append(np.asarray(c2))
                if k < len(segs) - 1:
                    pts.append(np.asarray(e))
            arr = np.asarray(pts, dtype=np.float64)
            if len(segs) >= 1 and arr.shape[0] == 3 * len(segs):
                subpaths.append(arr)
        segs = []

    while i < len(toks):
        t = toks[i]
        if isinstance(t, str):
            cmd = t
            i += 1
            if cmd in "Zz":
                flush()
                cur = start.copy()
                last_ctrl, last_cmd = None, "Z"
                continue
        elif cmd is None:
            raise SvgError("path data must start with a moveto command (M or m)")
        up = cmd.upper()
        rel = cmd.islower()
        nargs = _ARGS[up]
        if nargs == 0:
            raise SvgError("path data has numbers after a closepath (Z) without a command")
        if up == "A":
            # flags may be written without separators ("a1 1 0 01 1 1")
            args = []
            while len(args) < 7:
                if i >= len(toks) or isinstance(toks[i], str):
                    raise SvgError("path data has an incomplete elliptical arc (A) command")
                args.append(toks[i])
                i += 1
        else:
            if i + nargs > len(toks) or any(isinstance(x, str) for x in toks[i:i + nargs]):
                raise SvgError(f"path data has an incomplete {cmd} command (needs {nargs} numbers)")
            args = toks[i:i + nargs]
            i += nargs
        a = np.asarray(args, dtype=np.float64)
        if not np.isfinite(a).all():
            raise SvgError("path data contains a non-finite number")
        if up == "M":
            flush()
            cur = (cur + a) if rel and last_cmd else a.copy()
            start = cur.copy()
            cmd = "l" if rel else "L"  # further pairs are implicit linetos
            last_ctrl, last_cmd = None, "M"
            continue
        if up in "LHV":
            if up == "L":
                end = cur + a if rel else a.copy()
            elif up == "H":
                end = np.array([cur[0] + a[0] if rel else a[0], cur[1]])
            else:
                end = np.array([cur[0], cur[1] + a[0] if rel else a[0]])
            segs.append((tuple(cur + (end - cur) / 3), tuple(cur + 2 * (end - cur) / 3), tuple(end)))
            last_ctrl = None
        elif up in "CS":
            if up == "C":
                c1 = cur + a[0:2] if rel else a[0:2]
                c2 = cur + a[2:4] if rel else a[2:4]
                end = cur + a[4:6] if rel else a[4:6]
            else:
                c1 = 2 * cur - last_ctrl if (last_ctrl is not None and last_cmd in "CS") else cur.copy()
                c2 = cur + a[0:2] if rel else a[0:2]
                end = cur + a[2:4] if rel else a[2:4]
            segs.append((tuple(c1), tuple(c2), tuple(end)))
            last_ctrl = np.asarray(c2)
        elif up in "QT":
            if up == "Q":
                q = cur + a[0:2] if rel else a[0:2]
                end = cur + a[2:4] if rel else a[2:4]
            else:
                q = 2 * cur - last_ctrl if (last_ctrl is not None and last_cmd in "QT") else cur.copy()
                end = cur + a[0:2] if rel else a[0:2]
            segs.append((tuple(cur + 2 / 3 * (q - cur)), tuple(end + 2 / 3 * (q - end)), tuple(end)))
            last_ctrl = np.asarray(q)
        else:  # A
            end = cur + a[5:7] if rel else a[5:7]
            for seg in _arc_to_cubics(tuple(cur), a[0], a[1], a[2], bool(a[3]), bool(a[4]), tuple(end)):
                segs.append(seg)
            last_ctrl = None
        cur = np.asarray(end, dtype=np.float64)
        last_cmd = up
    flush()
    return subpaths


def _parse_transform(s: str | None) -> np.ndarray:
    """SVG transform list → 3x3 matrix."""
    m = np.eye(3)
    if not s:
        return m
    for name, body in re.findall(r"([a-zA-Z]+)\s*\(([^)]*)\)", s):
        v = [float(x) for x in _NUM.findall(body)]
        t = np.eye(3)
        try:
            if name == "matrix":
                t[0, 0], t[1, 0], t[0, 1], t[1, 1], t[0, 2], t[1, 2] = v[:6]
            elif name == "translate":
                t[0, 2], t[1, 2] = v[0], (v[1] if len(v) > 1 else 0.0)
            elif name == "scale":
                t[0, 0], t[1, 1] = v[0], (v[1] if len(v) > 1 else v[0])
            elif name == "rotate":
                a = math.radians(v[0])
                r = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
                if len(v) >= 3:
                    c = np.array([[1, 0, v[1]], [0, 1, v[2]], [0, 0, 1]])
                    ci = np.array([[1, 0, -v[1]], [0, 1, -v[2]], [0, 0, 1]])
                    r = c @ r @ ci
                t = r
            elif name == "skewX":
                t[0, 1] = math.tan(math.radians(v[0]))
            elif name == "skewY":
                t[1, 0] = math.tan(math.radians(v[0]))
            else:
                raise SvgError(f"unknown transform {name!r}")
        except IndexError:
            raise SvgError(f"transform {name}({body}) has too few numbers") from None
        m = m @ t
    return m


def _parse_color(s: str, gradients: dict, current: str | None = None) -> tuple[float, float, float, float] | None:
    """An SVG paint → straight (r, g, b, a) in [0, 1], or None for no paint.

    Accepts #rgb, #rgba, #rrggbb, #rrggbbaa, rgb()/rgba() (commas or spaces, numbers or percentages),
    hsl()/hsla() and every CSS named colour (through Pillow), ``currentColor`` (the ``color``
    property, else black) and ``url(#id)`` of a gradient (the mean of its stop colours).
    """
    s = s.strip()
    low = s.lower()
    if low in ("none", "transparent"):
        return None
    if low.startswith("url("):
        ref = re.search(r"#([^)\s]+)", s)
        rgb = gradients.get(ref.group(1)) if ref else None
        if rgb is None:  # a paint server lvss does not read: use the fallback colour if there is one
            rest = s[s.find(")") + 1:].strip()
            return _parse_color(rest, gradients, current) if rest else None
        return (*rgb, 1.0)
    if low == "currentcolor":
        if current is None or current.strip().lower() == "currentcolor":
            return (0.0, 0.0, 0.0, 1.0)
        return _parse_color(current, gradients)
    m = re.fullmatch(r"rgba?\(([^)]*)\)", low)
    if m:
        parts = [p for p in re.split(r"[\s,/]+", m.group(1).strip()) if p]
        if len(parts) not in (3, 4):
            raise SvgError(f"cannot read colour {s!r}: rgb() needs 3 values (and an optional alpha)")
        try:
            vals = [float(p[:-1]) / 100.0 if p.endswith("%") else float(p) / 255.0 for p in parts[:3]]
            alpha = 1.0 if len(parts) == 3 else (
                float(parts[3][:-1]) / 100.0 if parts[3].endswith("%") else float(parts[3]))
        except ValueError:
            raise SvgError(f"cannot read colour {s!r}") from None
        return tuple(min(max(v, 0.0), 1.0) for v in (*vals, alpha))
    from PIL import ImageColor

    try:
        c = ImageColor.getrgb(s)
    except ValueError:
        raise SvgError(f"cannot read colour {s!r}; use #rrggbb, rgb(), hsl() or a CSS colour name") from None
    return (c[0] / 255.0, c[1] / 255.0, c[2] / 255.0, (c[3] / 255.0) if len(c) == 4 else 1.0)


def _opacity(v: str | float | None, what: str) -> float:
    """An opacity value (number or percentage) clamped to [0, 1]."""
    if v is None:
        return 1.0
    if isinstance(v, float):
        return v
    t = v.strip()
    try:
        x = float(t[:-1]) / 100.0 if t.endswith("%") else float(t)
    except ValueError:
        raise SvgError(f"cannot read {what} {v!r}; give a number between 0 and 1") from None
    if x != x:
        raise SvgError(f"cannot read {what} {v!r}; give a number between 0 and 1")
    return min(max(x, 0.0), 1.0)


_PRESENTATION = ("fill", "fill-rule", "fill-opacity", "opacity", "display", "visibility", "color")


def _style(e) -> dict[str, str]:
    """Presentation attributes, then the ``style`` attribute over them; ``inherit`` is left out."""
    out = {}
    for k in _PRESENTATION:
        v = e.get(k)
        if v is not None:
            out[k] = v
    st = e.get("style")
    if st:
        for item in st.split(";"):
            if ":" in item:
                k, v = item.split(":", 1)
                out[k.strip()] = re.sub(r"\s*!important\s*$", "", v.strip())
    return {k: v for k, v in out.items() if v.strip().lower() != "inherit"}


def _local(tag) -> str:
    return tag.split("}", 1)[1] if isinstance(tag, str) and "}" in tag else (tag if isinstance(tag, str) else "")


def _length(v: str | None) -> float | None:
    if v is None:
        return None
    m = _NUM.match(v.strip())
    if not m:
        return None
    x = float(m.group(0))
    unit = v.strip()[m.end():].strip()
    scale = {"": 1, "px": 1, "pt": 4 / 3, "pc": 16, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96}.get(unit)
    if scale is None:
        return None
    return x * scale


def _shape_subpaths(e, tag: str) -> list[np.ndarray]:
    g = lambda k, d=0.0: float(_length(e.get(k)) or d)  # noqa: E731
    if tag == "path":
        return parse_path_data(e.get("d", ""))
    if tag == "rect":
        x, y, w, h = g("x"), g("y"), g("width"), g("height")
        if w <= 0 or h <= 0:
            return []
        rx, ry = e.get("rx"), e.get("ry")
        rx = _length(rx) if rx is not None else None
        ry = _length(ry) if ry is not None else None
        rx = ry if rx is None else rx
        ry = rx if ry is None else ry
        rx, ry = min(rx or 0.0, w / 2), min(ry or 0.0, h / 2)
        if rx > 0 and ry > 0:
            d = (f"M{x + rx},{y} H{x + w - rx} A{rx},{ry} 0 0 1 {x + w},{y + ry} V{y + h - ry} "
                 f"A{rx},{ry} 0 0 1 {x + w - rx},{y + h} H{x + rx} A{rx},{ry} 0 0 1 {x},{y + h - ry} "
                 f"V{y + ry} A{rx},{ry} 0 0 1 {x + rx},{y} Z")
        else:
            d = f"M{x},{y} H{x + w} V{y + h} H{x} Z"
        return parse_path_data(d)
    if tag in ("circle", "ellipse"):
        cx, cy = g("cx"), g("cy")
        if tag == "circle":
            rx = ry = g("r")
        else:
            rx, ry = g("rx"), g("ry")
        if rx <= 0 or ry <= 0:
            return []
        d = (f"M{cx + rx},{cy} A{rx},{ry} 0 0 1 {cx},{cy + ry} A{rx},{ry} 0 0 1 {cx - rx},{cy} "
             f"A{rx},{ry} 0 0 1 {cx},{cy - ry} A{rx},{ry} 0 0 1 {cx + rx},{cy} Z")
        return parse_path_data(d)
    if tag in ("polygon", "polyline"):
        nums = [float(x) for x in _NUM.findall(e.get("points", ""))]
        if len(nums) < 6:
            return []
        pts = np.asarray(nums[: len(nums) // 2 * 2]).reshape(-1, 2)
        d = "M" + " L".join(f"{p[0]},{p[1]}" for p in pts) + " Z"
        return parse_path_data(d)
    return []


_SKIP = {"defs", "clipPath", "mask", "symbol", "marker", "pattern", "metadata", "title", "desc", "style",
         "script", "text", "image", "foreignObject", "filter", "linearGradient", "radialGradient", "line",
         "namedview"}
_SHAPES = {"path", "rect", "circle", "ellipse", "polygon", "polyline"}


def _stop_list(e) -> list[tuple[float, tuple[float, float, float, float]]]:
    """(offset, straight RGBA) of a gradient element's own stops; offsets clamped and made rising."""
    out = []
    last = 0.0
    for s in e:
        if _local(s.tag) != "stop":
            continue
        st = dict(_style(s))
        for k in ("stop-color", "stop-opacity"):
            if s.get(k) is not None:
                st.setdefault(k, s.get(k))
        sty = s.get("style") or ""
        for k in ("stop-color", "stop-opacity"):
            m = re.search(k + r"\s*:\s*([^;]+)", sty)
            if m:
                st[k] = m.group(1).strip()
        try:
            rgba = _parse_color(st.get("stop-color", "black"), {})
        except SvgError:
            rgba = (0.0, 0.0, 0.0, 1.0)
        if rgba is None:
            rgba = (0.0, 0.0, 0.0, 0.0)
        raw = (s.get("offset") or "0").strip()
        try:
            off = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
        except ValueError:
            off = 0.0
        off = max(min(off if math.isfinite(off) else 0.0, 1.0), 0.0, last)
        last = off
        out.append((off, (*rgba[:3], rgba[3] * _opacity(st.get("stop-opacity"), "stop-opacity"))))
    return out


_GRAD_ATTRS = ("x1", "y1", "x2", "y2", "cx", "cy", "r", "fx", "fy", "gradientUnits", "gradientTransform")


def _gradients(root) -> dict:
    """id -> gradient description: kind, attributes and stops, with what its ``href`` chain supplies
    (attributes the element lacks, and the stops when it has none, as Inkscape writes them)."""
    elems = {e.get("id"): e for e in root.iter(f"{{{SVG_NS}}}linearGradient", f"{{{SVG_NS}}}radialGradient")
             if e.get("id")}
    out = {}
    for gid, e in elems.items():
        attrs: dict = {}
        stops: list = []
        cur, seen = e, set()
        while cur is not None and id(cur) not in seen:
            seen.add(id(cur))
            for k in _GRAD_ATTRS:
                if k not in attrs and cur.get(k) is not None:
                    attrs[k] = cur.get(k)
            if not stops:
                stops = _stop_list(cur)
            ref = cur.get(f"{{{XLINK_NS}}}href") or cur.get("href") or ""
            cur = elems.get(ref[1:]) if ref.startswith("#") else None
        if stops:
            out[gid] = {"kind": _local(e.tag), "attrs": attrs, "stops": stops}
    return out


def _bbox(subpaths: list[np.ndarray]) -> tuple[float, float, float, float] | None:
    """(x, y, w, h) of closed cubic subpaths (curves sampled densely), in their own coordinates."""
    if not subpaths:
        return None
    t = np.linspace(0.0, 1.0, 17)[:, None]
    B = np.concatenate([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t ** 3], 1)   # (17, 4)
    pts = []
    for sp in subpaths:
        n = sp.shape[0] // 3
        idx = np.array([[3 * k, 3 * k + 1, 3 * k + 2, (3 * k + 3) % (3 * n)] for k in range(n)])
        pts.append(np.einsum("ij,kjd->kid", B, sp[idx]).reshape(-1, 2))
    p = np.concatenate(pts)
    lo, hi = p.min(0), p.max(0)
    return float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])


def _gradient_fill(spec: dict, m: np.ndarray, bbox, viewport: tuple[float, float], alpha: float):
    """A scene gradient in canvas pixels for the gradient ``spec`` on an element with user-to-canvas
    matrix ``m`` and bounding box ``bbox`` (element units); None when it cannot be drawn (an empty
    box, a singular transform)."""
    a = spec["attrs"]
    obb = (a.get("gradientUnits") or "objectBoundingBox").strip() != "userSpaceOnUse"
    vw, vh = viewport

    def val(k: str, default: str, axis: int) -> float:
        raw = (a.get(k) or default).strip()
        if raw.endswith("%"):
            try:
                f = float(raw[:-1]) / 100.0
            except ValueError:
                f = float(default.rstrip("%")) / 100.0
            if obb:
                return f
            return f * (vw if axis == 0 else vh if axis == 1 else math.sqrt((vw * vw + vh * vh) / 2))
        v = _length(raw)
        return float(v) if v is not None and math.isfinite(v) else float(default.rstrip("%")) / (100.0 if obb else 1)

    M = m @ _parse_transform(a.get("gradientTransform"))
    if obb:
        if bbox is None or bbox[2] <= 0 or bbox[3] <= 0:
            return None
        x, y, w, h = bbox
        M = m @ np.array([[w, 0, x], [0, h, y], [0, 0, 1.0]]) @ _parse_transform(a.get("gradientTransform"))
    A = M[:2, :2]
    det = float(np.linalg.det(A))
    if not math.isfinite(det) or abs(det) < 1e-12:
        return None
    offs = torch.tensor([s[0] for s in spec["stops"]], dtype=torch.float32)
    cols = torch.tensor([[*s[1][:3], s[1][3] * alpha] for s in spec["stops"]], dtype=torch.float32).clamp(0, 1)
    ap = lambda p: (M @ np.array([p[0], p[1], 1.0]))[:2]  # noqa: E731
    if spec["kind"] == "linearGradient":
        p1 = np.array([val("x1", "0%", 0), val("y1", "0%", 1)])
        p2 = np.array([val("x2", "100%", 0), val("y2", "0%", 1)])
        v = p2 - p1
        s1 = ap(p1)
        if float(v @ v) < 1e-18:   # start = end: the last stop's colour everywhere
            return LinearGradient(torch.tensor(s1, dtype=torch.float32), torch.tensor(s1 + [1.0, 0.0], dtype=torch.float32),
                                  torch.tensor([0.0]), cols[-1:])
        g = np.linalg.solve(A.T, v) / float(v @ v)
        e = s1 + g / float(g @ g)
        return LinearGradient(torch.tensor(s1, dtype=torch.float32), torch.tensor(e, dtype=torch.float32), offs, cols)
    cx, cy = val("cx", "50%", 0), val("cy", "50%", 1)
    r = val("r", "50%", 2)
    fx = val("fx", a["cx"], 0) if "fx" in a else cx
    fy = val("fy", a["cy"], 1) if "fy" in a else cy
    if "fx" in a and "cx" not in a:
        fx = val("fx", "50%", 0)
    if "fy" in a and "cy" not in a:
        fy = val("fy", "50%", 1)
    if r <= 0:   # a zero radius paints the last stop's colour
        c = ap((cx, cy))
        return RadialGradient(torch.tensor(c, dtype=torch.float32), 1e-3, torch.tensor([0.0]), cols[-1:])
    c, f = ap((cx, cy)), ap((fx, fy))
    focal = None if float(np.hypot(*(f - c))) < 1e-9 else torch.tensor(f, dtype=torch.float32)
    return RadialGradient(torch.tensor(c, dtype=torch.float32), r * math.sqrt(abs(det)), offs, cols, focal)


def _with_holes_joined(subpaths: list[np.ndarray], evenodd: bool) -> list[np.ndarray]:
    """The closed subpaths of one element as one closed path that fills what the element fills: its
    islands and holes (areas the element's fill rule leaves empty inside another subpath, as
    contours of their own running the other way round) joined by zero-width bridges, which the
    nonzero fill of the joined path leaves empty. Returned as a one-element list."""
    import pathops

    from .geometry.repair import _to_skia, clean_contours, contour_area, join_contours

    pts = np.concatenate([sp for sp in subpaths], 0)
    if not np.isfinite(pts).all():
        return subpaths
    # the element's area as simple contours: outer loops one way round, holes the other
    joined = None
    for sp in subpaths:
        joined = sp if joined is None else join_contours([joined, sp])
    contours = clean_contours(joined, min_area=0.0, evenodd=evenodd, precision=None, split=True)
    signs = [contour_area(c) for c in contours]
    if not contours or all(a > 0 for a in signs) or all(a < 0 for a in signs):
        return [joined]
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
    return [join_contours([join_contours(g) for g in groups])]


def svg_to_scene(source: str | bytes, width: int | None = None, height: int | None = None) -> Scene:
    """Parse SVG text into a Scene.

    The canvas is ``width`` × ``height`` pixels (default: the SVG's width/height, else its viewBox),
    and the viewBox is mapped onto it. Top-level groups become layers (label from ``inkscape:label``,
    else ``id``); shapes outside any group are collected into layers in document order.
    """
    data = source.encode("utf-8") if isinstance(source, str) else bytes(source)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise SvgError(f"malformed SVG: {e}") from None
    if _local(root.tag) != "svg":
        raise SvgError(f"not an SVG document: the root element is <{_local(root.tag)}>, expected <svg>")
    vb = root.get("viewBox")
    wattr, hattr = _length(root.get("width")), _length(root.get("height"))
    if vb:
        parts = [p for p in re.split(r"[\s,]+", vb.strip()) if p]
        nums = [float(p) if _NUM.fullmatch(p) else float("nan") for p in parts]
        if len(nums) != 4 or not all(math.isfinite(v) for v in nums) or nums[2] <= 0 or nums[3] <= 0:
            raise SvgError(f"viewBox {vb!r} must be four numbers (min-x min-y width height) with positive "
                           "width and height")
        vx, vy, vw, vh = nums
        # one size attribute given: the other follows the viewBox's aspect ratio
        if wattr and not hattr:
            hattr = wattr * vh / vw
        elif hattr and not wattr:
            wattr = hattr * vw / vh
    else:
        if not wattr or not hattr:
            raise SvgError("the SVG has neither a viewBox nor a width and height; cannot tell its size")
        vx, vy, vw, vh = 0.0, 0.0, wattr, hattr
    W = width if width is not None else int(round(wattr if wattr else vw))
    H = height if height is not None else int(round(hattr if hattr else vh))
    if W <= 0 or H <= 0:
        raise SvgError(f"the SVG's size {W}x{H} is not positive")
    base = np.array([[W / vw, 0, -vx * W / vw], [0, H / vh, -vy * H / vh], [0, 0, 1.0]])
    grads = _gradients(root)
    # what a paint server becomes where it cannot be drawn as a gradient: the mean of its stop colours
    means = {k: tuple(np.mean([s[1][:3] for s in g["stops"]], 0).tolist()) for k, g in grads.items()}

    layers: list[Layer] = []
    loose: list[Path] = []

    def flush_loose():
        nonlocal loose
        if loose:
            layers.append(Layer(f"Layer {len(layers) + 1}", loose))
            loose = []

    def walk(e, m, inherited: dict, out: list[Path]):
        tag = _local(e.tag)
        if not tag or tag in _SKIP:
            return
        st = dict(inherited)
        own = _style(e)
        if own.get("display") == "none" or own.get("visibility") == "hidden":
            return
        op = _opacity(own.pop("opacity", None), "opacity")
        st.update(own)
        st["_opacity"] = inherited.get("_opacity", 1.0) * op
        m = m @ _parse_transform(e.get("transform"))
        if tag in ("g", "svg", "a", "switch"):
            for c in e:
                walk(c, m, st, out)
            return
        if tag not in _SHAPES:
            return
        fill = st.get("fill", "black")
        rgba = _parse_color(fill, means, st.get("color"))
        if rgba is None:
            return
        rgb = rgba[:3]
        alpha = rgba[3] * _opacity(st.get("fill-opacity"), "fill-opacity") * st["_opacity"]
        subpaths = _shape_subpaths(e, tag)
        gfill = None
        ref = re.match(r"\s*url\(\s*#([^)\s]+)\s*\)", fill)
        if ref and ref.group(1) in grads and subpaths:
            gfill = _gradient_fill(grads[ref.group(1)], m, _bbox(subpaths), (vw, vh),
                                   _opacity(st.get("fill-opacity"), "fill-opacity") * st["_opacity"])
        if len(subpaths) > 1:
            subpaths = _with_holes_joined(subpaths, st.get("fill-rule", "nonzero").strip() == "evenodd")
        for sp in subpaths:
            pts = np.c_[sp, np.ones(len(sp))] @ m.T
            if gfill is not None:
                g = gfill.detach()
                out.append(Path(torch.tensor(pts[:, :2], dtype=torch.float32), mean_color(g), g))
                continue
            out.append(Path(torch.tensor(pts[:, :2], dtype=torch.float32),
                            torch.tensor([*rgb, min(max(alpha, 0.0), 1.0)], dtype=torch.float32)))

    root_style = _style(root)
    root_style["_opacity"] = _opacity(root_style.pop("opacity", None), "opacity")
    for child in root:
        tag = _local(child.tag)
        if tag == "g":
            flush_loose()
            paths: list[Path] = []
            walk(child, base, root_style, paths)
            label = child.get(f"{{{INKSCAPE_NS}}}label") or child.get("id") or f"Layer {len(layers) + 1}"
            layers.append(Layer(label, paths, child.get("id")))
        else:
            walk(child, base, root_style, loose)
    flush_loose()
    return Scene(W, H, layers)


def read_svg(path: str | FsPath, width: int | None = None, height: int | None = None) -> Scene:
    p = FsPath(path)
    if not p.exists():
        raise SvgError(f"SVG file not found: {p}")
    return svg_to_scene(p.read_bytes(), width, height)


__all__ = ["scene_to_svg", "svg_to_scene", "write_svg", "read_svg", "path_data", "parse_path_data", "SvgError"]
