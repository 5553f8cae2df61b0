"""The SVG reader of lvss and of its Blender extension (standard library only).

One reader for both: ``lvss.svg`` turns what it reads into a :class:`lvss.scene.Scene`, and the
Blender extension (which bundles this file, as Blender's Python has neither lxml nor lvss) into
collections and curve objects. It parses with ``xml.etree.ElementTree`` and imports nothing else.

What is read:

* layers: ``<g inkscape:groupmode="layer">`` (label from ``inkscape:label``, else the id); nested
  layers become sublayers (:attr:`Layer.parent`); hidden layers are read and marked
  :attr:`Layer.hidden`; drawable elements outside every layer go into layers named "Unlayered"
  (:attr:`Layer.loose`). With ``groups_as_layers`` (what ``lvss.svg`` asks for) every top-level
  ``<g>`` is a layer too, and everything inside one, nested layers included, belongs to it;
* shapes: ``path``, ``rect`` (rounded too), ``circle``, ``ellipse``, ``polygon``, ``polyline`` and
  ``use`` references to them (``symbol`` too), inside ``g``, ``a``, ``switch`` and nested ``svg``
  viewports, with all transforms (``matrix``, ``translate``, ``scale``, ``rotate``, ``skewX``,
  ``skewY``) and the ``viewBox`` (with ``preserveAspectRatio``) applied;
* fills: ``fill`` / ``fill-opacity`` / ``opacity`` / ``fill-rule`` (``nonzero``, the default, or
  ``evenodd``; :attr:`Shape.fill_rule`) from attributes and ``style``, inherited as in SVG, and
  ``display`` / ``visibility``; colours as ``#rgb``, ``#rgba``, ``#rrggbb``, ``#rrggbbaa``,
  ``rgb()``, ``rgba()``, ``hsl()``, ``hsla()``, CSS names and ``currentColor``;
* gradient fills: ``linearGradient`` and ``radialGradient`` (focal point included) with their stops
  (``stop-color``, ``stop-opacity``), ``gradientUnits`` (``userSpaceOnUse``, percentages of the
  viewport, or ``objectBoundingBox``, the shape's exact bounding box), ``gradientTransform``,
  ``spreadMethod`` and ``href`` chains (attributes and stops inherited, as Inkscape writes them);
  :attr:`Shape.gradient` maps document pixels to the gradient offset, and :attr:`Shape.rgb` is the
  mean of the stop colours. A gradient whose vector has no length, or whose radius is 0, paints its
  last stop's colour (a flat fill).

Every segment becomes a cubic Bézier segment: cubic segments are kept exactly, lines and quadratic
segments are raised to cubics exactly, arcs become cubics of at most 90°. Every subpath is closed
(filling closes it with a straight segment); subpaths that enclose no area are dropped.
Coordinates are pixels of the document (its ``width``/``height`` in CSS pixels onto which the
viewBox is mapped, or the ``size`` the caller asks for), x to the right and y downwards.

Not drawn (and counted in :attr:`Drawing.skipped` so that a caller can say so): strokes, text,
embedded images, lines, paths without a fill, hidden elements. Clip paths, masks, filters and CSS
style sheets are ignored. Bad input raises :class:`SvgReadError` with the reason.
"""
from __future__ import annotations

import colorsys
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cached_property
from typing import Optional

SVG_NS = "http://www.w3.org/2000/svg"
INKSCAPE_NS = "http://www.inkscape.org/namespaces/inkscape"
XLINK_NS = "http://www.w3.org/1999/xlink"
MAX_BYTES = 256 << 20  # larger SVG files are refused before parsing
MAX_USE_DEPTH = 16
FOCAL_INSIDE = 0.999  # a focal point on or outside its circle is moved to this share of the radius

Point = tuple  # (x, y) floats, SVG pixels
Matrix = tuple  # (a, b, c, d, e, f): x' = a x + c y + e, y' = b x + d y + f


class SvgReadError(ValueError):
    """The SVG cannot be read; the message says why and what to do."""


@dataclass
class Spline:
    """One closed subpath: anchors with their incoming (left) and outgoing (right) handles."""

    anchors: list  # [(x, y), ...]
    handles_left: list  # [(x, y), ...] same length
    handles_right: list  # [(x, y), ...] same length

    def segments(self) -> list:
        """The cubic segments (p0, c1, c2, p1), the last one closing the loop."""
        n = len(self.anchors)
        return [(self.anchors[i], self.handles_right[i], self.handles_left[(i + 1) % n],
                 self.anchors[(i + 1) % n]) for i in range(n)]

    def control_points(self) -> list:
        """The closed cubic path as 3n points: anchor i, its right handle, the next anchor's left
        handle (the order of SVG path data, and of :attr:`lvss.scene.Path.points`)."""
        n = len(self.anchors)
        out = []
        for i in range(n):
            out += [self.anchors[i], self.handles_right[i], self.handles_left[(i + 1) % n]]
        return out


@dataclass
class Gradient:
    """A gradient fill, placed in document pixels.

    kind: "linear" or "radial"; stops: [(offset, (r, g, b, a)), ...] with offsets rising in [0, 1]
    and straight sRGB colours; matrix: the gradient's own coordinates -> document pixels (the
    shape's transforms, its bounding box for ``objectBoundingBox`` units, and ``gradientTransform``);
    geometry in those coordinates: linear (x1, y1, x2, y2), radial (cx, cy, r, fx, fy) with the
    focal point inside the circle; spread: "pad", "reflect" or "repeat".
    """

    kind: str
    stops: list
    matrix: Matrix
    geometry: tuple
    spread: str = "pad"

    @cached_property
    def to_space(self) -> Matrix:
        """Document pixels -> the gradient's own coordinates (the inverse of :attr:`matrix`)."""
        return mat_inv(self.matrix)

    def offset_at(self, p: Point) -> float:
        """The gradient offset at document point ``p``, spread applied (in [0, 1])."""
        qx, qy = apply(self.to_space, p)
        if self.kind == "linear":
            x1, y1, x2, y2 = self.geometry
            dx, dy = x2 - x1, y2 - y1
            t = ((qx - x1) * dx + (qy - y1) * dy) / max(dx * dx + dy * dy, 1e-300)
        else:
            cx, cy, r, fx, fy = self.geometry
            ex, ey, kx, ky = qx - fx, qy - fy, cx - fx, cy - fy
            a = kx * kx + ky * ky - r * r  # < 0: the focal point is inside the circle
            w = ex * kx + ey * ky
            t = (w - math.sqrt(max(w * w - a * (ex * ex + ey * ey), 0.0))) / a
        if self.spread == "repeat":
            return t - math.floor(t)
        if self.spread == "reflect":
            t = abs(t) % 2.0
            return 2.0 - t if t > 1.0 else t
        return min(max(t, 0.0), 1.0)

    def color_at(self, p: Point) -> tuple:
        """Straight sRGB (r, g, b, a) at document point ``p``, interpolated in sRGB as SVG does."""
        t = self.offset_at(p)
        stops = self.stops
        if t <= stops[0][0]:
            return stops[0][1]
        for (o0, c0), (o1, c1) in zip(stops, stops[1:]):
            if t <= o1:
                f = 0.0 if o1 <= o0 else (t - o0) / (o1 - o0)
                return tuple(a + f * (b - a) for a, b in zip(c0, c1))
        return stops[-1][1]


@dataclass
class Shape:
    """A filled shape: its id, its fill (straight sRGB in [0, 1]; a gradient's mean colour), opacity
    (for a gradient, what multiplies its stops' own opacity), closed splines and its gradient
    (None for a flat fill)."""

    id: str
    rgb: tuple
    opacity: float
    splines: list
    gradient: Optional[Gradient] = None
    fill_rule: str = "nonzero"  # SVG's fill-rule: "nonzero" (the default) or "evenodd"
    named: bool = False  # the SVG gave the element an id (else ``id`` is made up from its tag)
    matrix: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)  # the splines' units -> document pixels (see own_units)

    @property
    def hex(self) -> str:
        """The fill as ``#rrggbb``."""
        return "#" + "".join(f"{int(round(min(max(c, 0.0), 1.0) * 255)):02x}" for c in self.rgb)


@dataclass
class Layer:
    """One layer, back to front in :attr:`Drawing.layers`; ``parent`` is the index of its parent
    layer (sublayers) or None. ``label`` and ``id`` are never empty (made up where the SVG gives
    none); ``element_label`` and ``element_id`` are the group's own ``inkscape:label`` and ``id``
    (None where absent, and for loose layers)."""

    id: str
    label: str
    shapes: list = field(default_factory=list)
    parent: Optional[int] = None
    hidden: bool = False
    element_id: Optional[str] = None
    element_label: Optional[str] = None
    loose: bool = False  # an "Unlayered" layer of the elements outside every layer


@dataclass
class Drawing:
    """A whole document: its size in pixels and its layers back to front."""

    width: float
    height: float
    layers: list
    skipped: dict = field(default_factory=dict)  # reason -> count
    title: str = ""

    @property
    def shape_count(self) -> int:
        return sum(len(layer.shapes) for layer in self.layers)


# ---------------------------------------------------------------------------------------------
# numbers, lengths, transforms
# ---------------------------------------------------------------------------------------------
_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_UNITS = {"": 1.0, "px": 1.0, "pt": 4.0 / 3.0, "pc": 16.0, "mm": 96.0 / 25.4, "cm": 96.0 / 2.54,
          "in": 96.0, "q": 96.0 / 101.6, "em": 16.0, "ex": 8.0}
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _length(value: Optional[str], default: Optional[float] = None, *, what: str = "length") -> Optional[float]:
    """A length in CSS pixels; ``default`` when absent, ``auto`` or a percentage."""
    if value is None:
        return default
    text = value.strip()
    if text.lower() == "auto":
        return default
    m = _NUM.match(text)
    if not m:
        if not text:
            return default
        raise SvgReadError(f"cannot read the {what} {value!r}; give a number with an optional unit "
                           "(px, pt, mm, cm, in)")
    unit = text[m.end():].strip().lower()
    if unit == "%":
        return default
    if unit not in _UNITS:
        raise SvgReadError(f"the {what} {value!r} has an unknown unit {unit!r}; use px, pt, pc, mm, cm or in")
    v = float(m.group(0)) * _UNITS[unit]
    if not math.isfinite(v):
        raise SvgReadError(f"the {what} {value!r} is not a finite number")
    return v


def mat_mul(m: Matrix, n: Matrix) -> Matrix:
    """m ∘ n (n applied first)."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (a * a2 + c * b2, b * a2 + d * b2, a * c2 + c * d2, b * c2 + d * d2,
            a * e2 + c * f2 + e, b * e2 + d * f2 + f)


def apply(m: Matrix, p: Point) -> Point:
    a, b, c, d, e, f = m
    return (a * p[0] + c * p[1] + e, b * p[0] + d * p[1] + f)


def mat_inv(m: Matrix) -> Optional[Matrix]:
    """The inverse affine map, or None when ``m`` is singular."""
    a, b, c, d, e, f = m
    det = a * d - b * c
    if not math.isfinite(det) or abs(det) < 1e-300:
        return None
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return (ia, ib, ic, id_, -(ia * e + ic * f), -(ib * e + id_ * f))


_TRANSFORM = re.compile(r"\s*([A-Za-z]+)\s*\(([^)]*)\)\s*,?")
_TRANSFORM_ARGS = {"matrix": (6,), "translate": (1, 2), "scale": (1, 2), "rotate": (1, 3), "skewX": (1,),
                   "skewY": (1,)}


def parse_transform(text: Optional[str]) -> Matrix:
    """An SVG ``transform`` attribute as a matrix (identity when empty)."""
    m = IDENTITY
    if not text or not text.strip():
        return m
    pos, s = 0, text.strip()
    while pos < len(s):
        hit = _TRANSFORM.match(s, pos)
        if not hit:
            raise SvgReadError(f"cannot read the transform {text!r} near {s[pos:pos + 20]!r}")
        name, args = hit.group(1), [float(v) for v in _NUM.findall(hit.group(2))]
        pos = hit.end()
        need = _TRANSFORM_ARGS.get(name)
        if need is None:
            raise SvgReadError(f"unknown transform {name!r} in {text!r}")
        if len(args) not in need:
            has = f"too few numbers ({len(args)})" if len(args) < need[0] else len(args)
            raise SvgReadError(f"{name}() takes {' or '.join(map(str, need))} numbers but has {has} in {text!r}")
        if not all(math.isfinite(v) for v in args):
            raise SvgReadError(f"the transform {text!r} has a number that is not finite")
        if name == "matrix":
            t = tuple(args)
        elif name == "translate":
            t = (1.0, 0.0, 0.0, 1.0, args[0], args[1] if len(args) > 1 else 0.0)
        elif name == "scale":
            t = (args[0], 0.0, 0.0, args[1] if len(args) > 1 else args[0], 0.0, 0.0)
        elif name == "rotate":
            r = math.radians(args[0])
            co, si = math.cos(r), math.sin(r)
            t = (co, si, -si, co, 0.0, 0.0)
            if len(args) == 3:
                cx, cy = args[1], args[2]
                t = mat_mul((1.0, 0.0, 0.0, 1.0, cx, cy), mat_mul(t, (1.0, 0.0, 0.0, 1.0, -cx, -cy)))
        elif name == "skewX":
            t = (1.0, 0.0, math.tan(math.radians(args[0])), 1.0, 0.0, 0.0)
        else:
            t = (1.0, math.tan(math.radians(args[0])), 0.0, 1.0, 0.0, 0.0)
        m = mat_mul(m, t)
    return m


# ---------------------------------------------------------------------------------------------
# colours
# ---------------------------------------------------------------------------------------------
_NAMED = dict(
    aliceblue="f0f8ff", antiquewhite="faebd7", aqua="00ffff", aquamarine="7fffd4", azure="f0ffff",
    beige="f5f5dc", bisque="ffe4c4", black="000000", blanchedalmond="ffebcd", blue="0000ff",
    blueviolet="8a2be2", brown="a52a2a", burlywood="deb887", cadetblue="5f9ea0", chartreuse="7fff00",
    chocolate="d2691e", coral="ff7f50", cornflowerblue="6495ed", cornsilk="fff8dc", crimson="dc143c",
    cyan="00ffff", darkblue="00008b", darkcyan="008b8b", darkgoldenrod="b8860b", darkgray="a9a9a9",
    darkgreen="006400", darkgrey="a9a9a9", darkkhaki="bdb76b", darkmagenta="8b008b",
    darkolivegreen="556b2f", darkorange="ff8c00", darkorchid="9932cc", darkred="8b0000",
    darksalmon="e9967a", darkseagreen="8fbc8f", darkslateblue="483d8b", darkslategray="2f4f4f",
    darkslategrey="2f4f4f", darkturquoise="00ced1", darkviolet="9400d3", deeppink="ff1493",
    deepskyblue="00bfff", dimgray="696969", dimgrey="696969", dodgerblue="1e90ff", firebrick="b22222",
    floralwhite="fffaf0", forestgreen="228b22", fuchsia="ff00ff", gainsboro="dcdcdc",
    ghostwhite="f8f8ff", gold="ffd700", goldenrod="daa520", gray="808080", grey="808080",
    green="008000", greenyellow="adff2f", honeydew="f0fff0", hotpink="ff69b4", indianred="cd5c5c",
    indigo="4b0082", ivory="fffff0", khaki="f0e68c", lavender="e6e6fa", lavenderblush="fff0f5",
    lawngreen="7cfc00", lemonchiffon="fffacd", lightblue="add8e6", lightcoral="f08080",
    lightcyan="e0ffff", lightgoldenrodyellow="fafad2", lightgray="d3d3d3", lightgreen="90ee90",
    lightgrey="d3d3d3", lightpink="ffb6c1", lightsalmon="ffa07a", lightseagreen="20b2aa",
    lightskyblue="87cefa", lightslategray="778899", lightslategrey="778899", lightsteelblue="b0c4de",
    lightyellow="ffffe0", lime="00ff00", limegreen="32cd32", linen="faf0e6", magenta="ff00ff",
    maroon="800000", mediumaquamarine="66cdaa", mediumblue="0000cd", mediumorchid="ba55d3",
    mediumpurple="9370db", mediumseagreen="3cb371", mediumslateblue="7b68ee",
    mediumspringgreen="00fa9a", mediumturquoise="48d1cc", mediumvioletred="c71585",
    midnightblue="191970", mintcream="f5fffa", mistyrose="ffe4e1", moccasin="ffe4b5",
    navajowhite="ffdead", navy="000080", oldlace="fdf5e6", olive="808000", olivedrab="6b8e23",
    orange="ffa500", orangered="ff4500", orchid="da70d6", palegoldenrod="eee8aa", palegreen="98fb98",
    paleturquoise="afeeee", palevioletred="db7093", papayawhip="ffefd5", peachpuff="ffdab9",
    peru="cd853f", pink="ffc0cb", plum="dda0dd", powderblue="b0e0e6", purple="800080",
    rebeccapurple="663399", red="ff0000", rosybrown="bc8f8f", royalblue="4169e1",
    saddlebrown="8b4513", salmon="fa8072", sandybrown="f4a460", seagreen="2e8b57", seashell="fff5ee",
    sienna="a0522d", silver="c0c0c0", skyblue="87ceeb", slateblue="6a5acd", slategray="708090",
    slategrey="708090", snow="fffafa", springgreen="00ff7f", steelblue="4682b4", tan="d2b48c",
    teal="008080", thistle="d8bfd8", tomato="ff6347", turquoise="40e0d0", violet="ee82ee",
    wheat="f5deb3", white="ffffff", whitesmoke="f5f5f5", yellow="ffff00", yellowgreen="9acd32",
)


def _channel(text: str, scale: float) -> float:
    text = text.strip()
    if text.endswith("%"):
        return min(max(float(text[:-1]) / 100.0, 0.0), 1.0)
    return min(max(float(text) / scale, 0.0), 1.0)


def parse_color(text: str, current: Optional[str] = None) -> Optional[tuple]:
    """A CSS colour as straight (r, g, b, a) in [0, 1]; None for ``none``/``transparent``.
    ``current`` is the ``color`` property that ``currentColor`` stands for (black when absent).
    ``hsl()`` is converted to 8-bit channels, as browsers do."""
    s = text.strip()
    low = s.lower()
    if low in ("none", "transparent"):
        return None
    if low == "currentcolor":
        if current is None or current.strip().lower() == "currentcolor":
            return (0.0, 0.0, 0.0, 1.0)
        return parse_color(current)
    try:
        if low.startswith("#"):
            h = low[1:]
            if len(h) in (3, 4) and all(c in "0123456789abcdef" for c in h):
                h = "".join(c * 2 for c in h)
            if len(h) in (6, 8) and all(c in "0123456789abcdef" for c in h):
                vals = [int(h[i:i + 2], 16) / 255.0 for i in range(0, len(h), 2)]
                return (vals[0], vals[1], vals[2], vals[3] if len(vals) == 4 else 1.0)
        m = re.fullmatch(r"(rgba?|hsla?)\(\s*([^)]*)\)", low)
        if m:
            parts = [p for p in re.split(r"[\s,/]+", m.group(2).strip()) if p]
            if len(parts) in (3, 4):
                alpha = _channel(parts[3], 1.0) if len(parts) == 4 else 1.0
                if m.group(1).startswith("rgb"):
                    return (_channel(parts[0], 255.0), _channel(parts[1], 255.0), _channel(parts[2], 255.0), alpha)
                hue = float(parts[0].removesuffix("deg")) / 360.0 % 1.0
                rgb = colorsys.hls_to_rgb(hue, _channel(parts[2], 100.0), _channel(parts[1], 100.0))
                return (*(int(c * 255.0 + 0.5) / 255.0 for c in rgb), alpha)
        if low in _NAMED:
            h = _NAMED[low]
            return (int(h[0:2], 16) / 255.0, int(h[2:4], 16) / 255.0, int(h[4:6], 16) / 255.0, 1.0)
    except ValueError:
        pass
    raise SvgReadError(f"cannot read colour {text!r}; use #rrggbb, rgb(), hsl() or a CSS colour name")


def _opacity(text: Optional[str], what: str) -> float:
    """An opacity (a number or a percentage) clamped to [0, 1]; 1 when absent."""
    if text is None:
        return 1.0
    t = text.strip()
    try:
        v = float(t[:-1]) / 100.0 if t.endswith("%") else float(t)
    except ValueError:
        raise SvgReadError(f"cannot read {what} {text!r}; give a number between 0 and 1") from None
    if v != v:
        raise SvgReadError(f"cannot read {what} {text!r}; give a number between 0 and 1")
    return min(max(v, 0.0), 1.0)


# ---------------------------------------------------------------------------------------------
# path data
# ---------------------------------------------------------------------------------------------
_COMMANDS = "MmLlHhVvCcSsQqTtAaZz"
_ARITY = {"m": 2, "l": 2, "h": 1, "v": 1, "c": 6, "s": 4, "q": 4, "t": 2, "a": 7, "z": 0}
_NAMES = {"a": "elliptical arc (A)"}


def _path_tokens(d: str) -> list:
    """Commands (str) and numbers (float). Arc flags (the 4th and 5th arc arguments) are single
    characters '0' or '1' and may be written without separators, as minifiers do:
    ``a5 5 0 105 5`` is rx=5 ry=5 rotation=0 large=1 sweep=0 x=5 y=5."""
    out: list = []
    i, n = 0, len(d)
    arc_index = -1  # position within the current arc's 7 arguments, -1 outside arcs
    while i < n:
        ch = d[i]
        if ch in " \t\r\n\f,":
            i += 1
            continue
        if ch in _COMMANDS:
            out.append(ch)
            arc_index = 0 if ch in "Aa" else -1
            i += 1
            continue
        if arc_index >= 0 and arc_index % 7 in (3, 4):
            if ch not in "01":
                raise SvgReadError(f"path data has an arc flag {ch!r} at character {i}; arc flags must be 0 or 1")
            out.append(float(ch))
            arc_index += 1
            i += 1
            continue
        m = _NUM.match(d, i)
        if not m:
            raise SvgReadError(f"path data has an unexpected character {ch!r} at character {i}")
        v = float(m.group(0))
        if not math.isfinite(v):
            raise SvgReadError(f"path data has a non-finite number {m.group(0)!r} at character {i}")
        out.append(v)
        if arc_index >= 0:
            arc_index += 1
        i = m.end()
    return out


def _arc(p0: Point, rx: float, ry: float, angle: float, large: bool, sweep: bool, p1: Point) -> list:
    """An elliptical arc (endpoint form) as cubic segments (c1, c2, end) of at most 90° each; none
    when the end is the start, a straight segment when a radius is 0 (as SVG specifies)."""
    if p0 == p1:
        return []
    rx, ry = abs(rx), abs(ry)
    if rx == 0 or ry == 0:
        return [_line(p0, p1)]
    phi = math.radians(angle % 360.0)
    cos_p, sin_p = math.cos(phi), math.sin(phi)
    hx, hy = (p0[0] - p1[0]) / 2.0, (p0[1] - p1[1]) / 2.0
    x1, y1 = cos_p * hx + sin_p * hy, -sin_p * hx + cos_p * hy
    grow = (x1 / rx) ** 2 + (y1 / ry) ** 2
    if grow > 1.0:  # radii too small for the endpoints: scale them up (as SVG specifies)
        rx, ry = rx * math.sqrt(grow), ry * math.sqrt(grow)
    num = (rx * ry) ** 2 - (rx * y1) ** 2 - (ry * x1) ** 2
    den = (rx * y1) ** 2 + (ry * x1) ** 2
    k = math.sqrt(max(num, 0.0) / den) if den > 0 else 0.0
    if large == sweep:
        k = -k
    cxp, cyp = k * rx * y1 / ry, -k * ry * x1 / rx
    cx = cos_p * cxp - sin_p * cyp + (p0[0] + p1[0]) / 2.0
    cy = sin_p * cxp + cos_p * cyp + (p0[1] + p1[1]) / 2.0
    start = math.atan2((y1 - cyp) / ry, (x1 - cxp) / rx)
    end = math.atan2((-y1 - cyp) / ry, (-x1 - cxp) / rx)
    delta = end - start
    if sweep and delta < 0:
        delta += 2 * math.pi
    elif not sweep and delta > 0:
        delta -= 2 * math.pi
    count = max(1, int(math.ceil(abs(delta) / (math.pi / 2) - 1e-9)))
    step = delta / count
    alpha = 4.0 / 3.0 * math.tan(step / 4.0)

    def point(t):
        x, y = rx * math.cos(t), ry * math.sin(t)
        return (cos_p * x - sin_p * y + cx, sin_p * x + cos_p * y + cy)

    def tangent(t):
        x, y = -rx * math.sin(t), ry * math.cos(t)
        return (cos_p * x - sin_p * y, sin_p * x + cos_p * y)

    segs = []
    for i in range(count):
        t0, t1 = start + i * step, start + (i + 1) * step
        a, b = point(t0), point(t1)
        da, db = tangent(t0), tangent(t1)
        end_pt = p1 if i == count - 1 else b
        segs.append(((a[0] + alpha * da[0], a[1] + alpha * da[1]),
                     (b[0] - alpha * db[0], b[1] - alpha * db[1]), end_pt))
    return segs


def _line(p0: Point, p1: Point) -> tuple:
    """A straight segment as an exact cubic (handles at a third and two thirds)."""
    return ((p0[0] + (p1[0] - p0[0]) / 3.0, p0[1] + (p1[1] - p0[1]) / 3.0),
            (p0[0] + 2.0 * (p1[0] - p0[0]) / 3.0, p0[1] + 2.0 * (p1[1] - p0[1]) / 3.0), p1)


def _quad(p0: Point, q: Point, p1: Point) -> tuple:
    """A quadratic segment as the exact cubic."""
    return ((p0[0] + 2.0 / 3.0 * (q[0] - p0[0]), p0[1] + 2.0 / 3.0 * (q[1] - p0[1])),
            (p1[0] + 2.0 / 3.0 * (q[0] - p1[0]), p1[1] + 2.0 / 3.0 * (q[1] - p1[1])), p1)


def parse_path_data(d: str) -> list:
    """SVG path data as subpaths, each ``(start, [(c1, c2, end), ...])`` of cubic segments.

    Every subpath is returned (open or closed); filling closes it with a straight segment.
    """
    toks = _path_tokens(d or "")
    subpaths: list = []
    start = cur = (0.0, 0.0)
    segs: Optional[list] = None
    last_cubic_ctrl: Optional[Point] = None
    last_quad_ctrl: Optional[Point] = None
    cmd = None
    i = 0
    if toks and not isinstance(toks[0], str):
        raise SvgReadError(f"path data must start with a moveto command (M or m), found the number {toks[0]:g}")
    if toks and toks[0] not in "Mm":
        raise SvgReadError(f"path data must start with M or m (a moveto command), found {toks[0]!r}")

    def finish():
        nonlocal segs
        if segs:
            subpaths.append((start, segs))
        segs = None

    while i < len(toks):
        tok = toks[i]
        if isinstance(tok, str):
            cmd = tok
            i += 1
            if cmd in "Zz":
                finish()
                cur = start
                last_cubic_ctrl = last_quad_ctrl = None
                continue
        elif cmd in "Zz":
            raise SvgReadError("path data has numbers after a closepath (Z) without a command")
        low = cmd.lower()
        k = _ARITY[low]
        args = toks[i:i + k]
        if len(args) < k or any(isinstance(a, str) for a in args):
            raise SvgReadError(f"path data has an incomplete {_NAMES.get(low, cmd)} command (needs {k} numbers)")
        i += k
        rel = cmd.islower()
        ox, oy = cur if rel else (0.0, 0.0)
        new_cubic = new_quad = None
        if low == "m":
            finish()
            cur = start = (ox + args[0], oy + args[1])
            segs = []
            cmd = "l" if rel else "L"  # further pairs are line-to
        else:
            if segs is None:  # drawing after Z continues from the subpath's start
                segs = []
                start = cur
            if low == "l":
                end = (ox + args[0], oy + args[1])
                segs.append(_line(cur, end))
            elif low == "h":
                end = (ox + args[0] if rel else args[0], cur[1])
                segs.append(_line(cur, end))
            elif low == "v":
                end = (cur[0], oy + args[0] if rel else args[0])
                segs.append(_line(cur, end))
            elif low == "c":
                c1, c2 = (ox + args[0], oy + args[1]), (ox + args[2], oy + args[3])
                end = (ox + args[4], oy + args[5])
                segs.append((c1, c2, end))
                new_cubic = c2
            elif low == "s":
                c1 = (2 * cur[0] - last_cubic_ctrl[0], 2 * cur[1] - last_cubic_ctrl[1]) if last_cubic_ctrl else cur
                c2, end = (ox + args[0], oy + args[1]), (ox + args[2], oy + args[3])
                segs.append((c1, c2, end))
                new_cubic = c2
            elif low == "q":
                q, end = (ox + args[0], oy + args[1]), (ox + args[2], oy + args[3])
                segs.append(_quad(cur, q, end))
                new_quad = q
            elif low == "t":
                q = (2 * cur[0] - last_quad_ctrl[0], 2 * cur[1] - last_quad_ctrl[1]) if last_quad_ctrl else cur
                end = (ox + args[0], oy + args[1])
                segs.append(_quad(cur, q, end))
                new_quad = q
            else:  # arc
                end = (ox + args[5], oy + args[6])
                segs.extend(_arc(cur, args[0], args[1], args[2], bool(args[3]), bool(args[4]), end))
            cur = end
        last_cubic_ctrl, last_quad_ctrl = new_cubic, new_quad
    finish()
    return subpaths


def close_subpath(start: Point, segs: list, m: Matrix = IDENTITY, eps: float = 1e-9) -> Optional[Spline]:
    """A closed spline from one subpath (transformed by ``m``), closed with a straight segment when
    its end is farther than ``eps`` from its start; None when it encloses no area (all its control
    points on one line)."""
    pts = [apply(m, start)]
    for c1, c2, end in segs:
        pts += [apply(m, c1), apply(m, c2), apply(m, end)]
    first, last = pts[0], pts[-1]
    if math.hypot(last[0] - first[0], last[1] - first[1]) > eps:
        c1, c2, end = _line(last, first)
        pts += [c1, c2, end]
    pts[-1] = first
    n = (len(pts) - 1) // 3
    if n < 1 or _collinear(pts, eps):
        return None
    anchors = [pts[3 * i] for i in range(n)]
    right = [pts[3 * i + 1] for i in range(n)]
    left = [pts[3 * i - 1] if i > 0 else pts[-2] for i in range(n)]
    return Spline(anchors, left, right)


def _collinear(pts: list, eps: float) -> bool:
    """Whether all points lie within ``eps`` of one line (a curve in their hull then has no area)."""
    x0, y0 = pts[0]
    far = max(pts, key=lambda p: (p[0] - x0) ** 2 + (p[1] - y0) ** 2)
    dx, dy = far[0] - x0, far[1] - y0
    length = math.hypot(dx, dy)
    if length <= eps:
        return True
    return all(abs((p[0] - x0) * dy - (p[1] - y0) * dx) <= eps * length for p in pts)


def _bbox(subpaths: list) -> Optional[tuple]:
    """(x, y, w, h) of subpaths ``(start, segments)`` closed with straight segments: the exact box of
    their curves (the ends and the extremes of each cubic), None when there are none."""
    xs: list = []
    ys: list = []
    for start, segs in subpaths:
        p0 = start
        for c1, c2, p1 in list(segs) + [_line(segs[-1][2], start)] if segs else []:
            for axis, out in ((0, xs), (1, ys)):
                a, b, c, d = p0[axis], c1[axis], c2[axis], p1[axis]
                out += [a, d]
                # the derivative's roots: (-a + 3b - 3c + d) t² + 2 (a - 2b + c) t + (b - a) = 0
                qa, qb, qc = -a + 3 * b - 3 * c + d, 2 * (a - 2 * b + c), b - a
                if abs(qa) < 1e-12:
                    roots = [-qc / qb] if abs(qb) > 1e-12 else []
                else:
                    disc = qb * qb - 4 * qa * qc
                    roots = [(-qb + s * math.sqrt(disc)) / (2 * qa) for s in (1, -1)] if disc >= 0 else []
                for t in roots:
                    if 0.0 < t < 1.0:
                        u = 1.0 - t
                        out.append(u * u * u * a + 3 * u * u * t * b + 3 * u * t * t * c + t * t * t * d)
            p0 = p1
    if not xs:
        return None
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


# ---------------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------------
def _num(e: ET.Element, name: str, default: float = 0.0) -> float:
    v = _length(e.get(name), None, what=f"{_local(e.tag)} {name}")
    return default if v is None else v


def _ellipse_path(cx: float, cy: float, rx: float, ry: float) -> list:
    k = 4.0 / 3.0 * (math.sqrt(2.0) - 1.0)
    start = (cx + rx, cy)
    segs = [((cx + rx, cy + k * ry), (cx + k * rx, cy + ry), (cx, cy + ry)),
            ((cx - k * rx, cy + ry), (cx - rx, cy + k * ry), (cx - rx, cy)),
            ((cx - rx, cy - k * ry), (cx - k * rx, cy - ry), (cx, cy - ry)),
            ((cx + k * rx, cy - ry), (cx + rx, cy - k * ry), (cx + rx, cy))]
    return [(start, segs)]


def shape_subpaths(e: ET.Element, tag: str) -> list:
    """The subpaths (start, segments) of a drawable element, in its own user units."""
    if tag == "path":
        return parse_path_data(e.get("d", ""))
    if tag == "rect":
        x, y, w, h = _num(e, "x"), _num(e, "y"), _num(e, "width"), _num(e, "height")
        if w <= 0 or h <= 0:
            return []
        rx = _length(e.get("rx"), None, what="rect rx")
        ry = _length(e.get("ry"), None, what="rect ry")
        rx = ry if rx is None else rx
        ry = rx if ry is None else ry
        rx, ry = min(max(rx or 0.0, 0.0), w / 2), min(max(ry or 0.0, 0.0), h / 2)
        if rx <= 0 or ry <= 0:
            return [((x, y), [_line((x, y), (x + w, y)), _line((x + w, y), (x + w, y + h)),
                              _line((x + w, y + h), (x, y + h))])]
        k = 4.0 / 3.0 * (math.sqrt(2.0) - 1.0)
        segs = [
            _line((x + rx, y), (x + w - rx, y)),
            ((x + w - rx + k * rx, y), (x + w, y + ry - k * ry), (x + w, y + ry)),
            _line((x + w, y + ry), (x + w, y + h - ry)),
            ((x + w, y + h - ry + k * ry), (x + w - rx + k * rx, y + h), (x + w - rx, y + h)),
            _line((x + w - rx, y + h), (x + rx, y + h)),
            ((x + rx - k * rx, y + h), (x, y + h - ry + k * ry), (x, y + h - ry)),
            _line((x, y + h - ry), (x, y + ry)),
            ((x, y + ry - k * ry), (x + rx - k * rx, y), (x + rx, y)),
        ]
        return [((x + rx, y), segs)]
    if tag == "circle":
        r = _num(e, "r")
        return _ellipse_path(_num(e, "cx"), _num(e, "cy"), r, r) if r > 0 else []
    if tag == "ellipse":
        rx, ry = _num(e, "rx"), _num(e, "ry")
        return _ellipse_path(_num(e, "cx"), _num(e, "cy"), rx, ry) if rx > 0 and ry > 0 else []
    if tag in ("polygon", "polyline"):
        vals = [float(v) for v in _NUM.findall(e.get("points", ""))]
        pts = list(zip(vals[0::2], vals[1::2]))
        if len(pts) < 2:
            return []
        return [(pts[0], [_line(a, b) for a, b in zip(pts, pts[1:])])]
    return []


# ---------------------------------------------------------------------------------------------
# the document
# ---------------------------------------------------------------------------------------------
_INHERITED = ("fill", "fill-opacity", "fill-rule", "visibility", "color")
_OWN = ("opacity", "display")
_SHAPES = ("path", "rect", "circle", "ellipse", "polygon", "polyline")
_CONTAINERS = ("g", "a", "switch")
_NEVER_DRAWN = ("defs", "clipPath", "mask", "pattern", "marker", "symbol", "linearGradient",
                "radialGradient", "style", "script", "metadata", "title", "desc", "filter", "namedview")
_SKIPPED = {"text": "text (convert it to paths first: Path > Object to Path in Inkscape)",
            "image": "embedded or linked bitmaps", "foreignObject": "foreign objects",
            "line": "lines (strokes only; lines have no fill)"}


def _local(tag) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[1] if "}" in tag else tag


def _style(e: ET.Element) -> dict:
    """Presentation attributes with the ``style`` attribute over them (``inherit`` left out)."""
    out = {}
    for k in _INHERITED + _OWN:
        v = e.get(k)
        if v is not None:
            out[k] = v
    text = e.get("style")
    if text:
        for item in text.split(";"):
            if ":" in item:
                k, v = item.split(":", 1)
                out[k.strip().lower()] = re.sub(r"\s*!important\s*$", "", v.strip())
    return {k: v for k, v in out.items() if v.strip().lower() != "inherit"}


def _viewbox(e: ET.Element) -> Optional[tuple]:
    """The element's viewBox (min-x, min-y, width, height), None when it has none."""
    text = e.get("viewBox")
    if text is None or not text.strip():
        return None
    parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
    vb = [float(p) if _NUM.fullmatch(p) else float("nan") for p in parts]
    if len(vb) != 4 or not all(math.isfinite(v) for v in vb) or vb[2] <= 0 or vb[3] <= 0:
        raise SvgReadError(f"the viewBox {text!r} must be four numbers (min-x min-y width height) "
                           "with a positive width and height")
    return tuple(vb)


def document_size(root: ET.Element) -> tuple:
    """(width, height) of the document in CSS pixels: its ``width`` and ``height``, the one missing
    following the viewBox's aspect ratio, else the viewBox's size."""
    vb = _viewbox(root)
    width = _length(root.get("width"), None, what="svg width")
    height = _length(root.get("height"), None, what="svg height")
    if vb is not None:
        if width is None and height is None:
            width, height = vb[2], vb[3]
        elif width is None:
            width = height * vb[2] / vb[3]
        elif height is None:
            height = width * vb[3] / vb[2]
    elif width is None or height is None:
        raise SvgReadError("the SVG has neither a viewBox nor a width and height in absolute units, "
                           "so its size is unknown; add a viewBox (Inkscape: Document Properties)")
    if width <= 0 or height <= 0:
        raise SvgReadError(f"the SVG's width and height ({width:g} x {height:g}) are not positive")
    return width, height


def _viewport(e: ET.Element, width: float, height: float) -> tuple:
    """(matrix from the element's user units onto a ``width`` x ``height`` viewport, as its viewBox
    and ``preserveAspectRatio`` say; the size of its user-unit viewport, for percentages)."""
    vb = _viewbox(e)
    if vb is None:
        return IDENTITY, (width, height)
    sx, sy = width / vb[2], height / vb[3]
    par = (e.get("preserveAspectRatio") or "xMidYMid meet").split()
    if par and par[0] == "defer":
        par = par[1:]
    align = par[0] if par else "xMidYMid"
    if align == "none":
        return (sx, 0.0, 0.0, sy, -vb[0] * sx, -vb[1] * sy), (vb[2], vb[3])
    s = max(sx, sy) if (len(par) > 1 and par[1] == "slice") else min(sx, sy)
    tx, ty = width - vb[2] * s, height - vb[3] * s
    fx = 0.0 if "xMin" in align else (1.0 if "xMax" in align else 0.5)
    fy = 0.0 if "YMin" in align else (1.0 if "YMax" in align else 0.5)
    return (s, 0.0, 0.0, s, fx * tx - vb[0] * s, fy * ty - vb[1] * s), (vb[2], vb[3])


# ---------------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------------
_GRADIENT_ATTRS = {"linearGradient": (("x1", "0%"), ("y1", "0%"), ("x2", "100%"), ("y2", "0%")),
                   "radialGradient": (("cx", "50%"), ("cy", "50%"), ("r", "50%"), ("fx", None), ("fy", None))}


def _stops(e: ET.Element) -> list:
    """(offset, straight RGBA) of a gradient element's own stops, as SVG reads them: offsets clamped
    to [0, 1] and never going back; a colour or offset that cannot be read is black or 0."""
    out, last = [], 0.0
    for s in e:
        if _local(s.tag) != "stop":
            continue
        st = _style(s)
        for k in ("stop-color", "stop-opacity"):
            m = re.search(k + r"\s*:\s*([^;]+)", s.get("style") or "")
            st[k] = m.group(1).strip() if m else s.get(k)
        try:
            c = parse_color(st["stop-color"] or "black", st.get("color"))
        except SvgReadError:
            c = (0.0, 0.0, 0.0, 1.0)
        if c is None:  # transparent
            c = (0.0, 0.0, 0.0, 0.0)
        text = (s.get("offset") or "0").strip()
        try:
            off = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            off = 0.0
        last = max(last, min(max(off if math.isfinite(off) else 0.0, 0.0), 1.0))
        out.append((last, (c[0], c[1], c[2], c[3] * _opacity(st["stop-opacity"], "stop-opacity"))))
    return out


def _gradient_defs(root: ET.Element, by_id: dict) -> dict:
    """id -> a gradient's definition, ``href`` chains followed (attributes and stops are inherited
    where the element does not set them, as Inkscape writes its gradients): kind, stops
    [(offset, rgba)], units, transform, spread, raw geometry attributes and the mean stop colour."""

    def chain(e):
        seen = [e]
        while len(seen) <= MAX_USE_DEPTH:
            ref = seen[-1].get(f"{{{XLINK_NS}}}href") or seen[-1].get("href") or ""
            target = by_id.get(ref[1:]) if ref.startswith("#") else None
            if target is None or target in seen or _local(target.tag) not in _GRADIENT_ATTRS:
                break
            seen.append(target)
        return seen

    out: dict = {}
    for e in root.iter():
        kind = _local(e.tag)
        if kind not in _GRADIENT_ATTRS or not e.get("id"):
            continue
        links = chain(e)
        # stops come from the first element of the chain that has any
        stops = next((st for st in (_stops(x) for x in links) if st), [])
        if not stops:
            continue

        def attr(name, default=None):
            return next((x.get(name) for x in links if x.get(name) is not None), default)

        geometry = {name: attr(name, default) for name, default in _GRADIENT_ATTRS[kind]}
        mean = tuple(sum(c[i] for _, c in stops) / len(stops) for i in range(4))
        out[e.get("id")] = dict(kind=kind, stops=stops, units=attr("gradientUnits", "objectBoundingBox").strip(),
                                transform=parse_transform(attr("gradientTransform")),
                                spread=(attr("spreadMethod", "pad") or "pad").strip(), geometry=geometry,
                                mean=mean)
    return out


def _place_gradient(g: dict, mm: Matrix, subpaths: list, viewport: tuple):
    """The gradient ``g`` (from :func:`_gradient_defs`) on a shape drawn with matrix ``mm`` whose
    subpaths are ``subpaths`` (its own coordinates), in a viewport of ``viewport`` user units:
    a :class:`Gradient`; the RGBA of its last stop where it paints one colour (a vector without
    length, a radius of 0); None when it cannot be placed (an empty bounding box, a singular
    transform), so the shape keeps the mean colour."""
    obb = g["units"] != "userSpaceOnUse"
    if obb:
        box = _bbox(subpaths)
        if box is None or box[2] <= 0 or box[3] <= 0:
            return None
        box = (box[2], 0.0, 0.0, box[3], box[0], box[1])
    else:
        box = IDENTITY
    w, h = viewport
    # percentages of the bounding box, or of the viewport: x of its width, y of its height, radii of
    # its diagonal over the square root of 2
    scale = {"x": 1.0, "y": 1.0, "r": 1.0} if obb else {"x": w, "y": h, "r": math.hypot(w, h) / math.sqrt(2.0)}

    def val(name: str) -> float:
        text = g["geometry"][name].strip()
        axis = "r" if name == "r" else ("x" if "x" in name else "y")
        try:
            if text.endswith("%"):
                v = float(text[:-1]) / 100.0 * scale[axis]
            else:
                v = float(text) if obb else _length(text, what=f"gradient {name}")
        except (ValueError, TypeError):
            v = None
        if v is None or not math.isfinite(v):
            raise SvgReadError(f"cannot read the gradient's {name} {text!r}; give a number or a percentage")
        return v

    matrix = mat_mul(mm, mat_mul(box, g["transform"]))
    if mat_inv(matrix) is None:
        return None
    kind = "linear" if g["kind"] == "linearGradient" else "radial"
    last = g["stops"][-1][1]
    if kind == "linear":
        geometry = tuple(val(n) for n in ("x1", "y1", "x2", "y2"))
        if (geometry[2] - geometry[0]) ** 2 + (geometry[3] - geometry[1]) ** 2 < 1e-18:
            return last  # a vector without length paints the last stop's colour
    else:
        geo = g["geometry"]
        cx, cy, r = val("cx"), val("cy"), val("r")
        if r <= 0:
            return last  # a radius of 0 paints the last stop's colour
        fx = val("fx") if geo["fx"] is not None else cx
        fy = val("fy") if geo["fy"] is not None else cy
        d = math.hypot(fx - cx, fy - cy)
        if d > FOCAL_INSIDE * r:
            fx, fy = cx + (fx - cx) * FOCAL_INSIDE * r / d, cy + (fy - cy) * FOCAL_INSIDE * r / d
        geometry = (cx, cy, r, fx, fy)
    spread = g["spread"] if g["spread"] in ("pad", "reflect", "repeat") else "pad"
    return Gradient(kind=kind, stops=list(g["stops"]), matrix=matrix, geometry=geometry, spread=spread)


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
class _Reader:
    def __init__(self, root: ET.Element, eps: float, viewport: tuple, groups_as_layers: bool, own_units: bool):
        self.eps = eps
        self.groups_as_layers = groups_as_layers
        self.own_units = own_units
        self.layers: list = []
        self.skipped: dict = {}
        self.by_id = {e.get("id"): e for e in root.iter() if e.get("id")}
        self.gradients = _gradient_defs(root, self.by_id)
        self.viewports = [viewport]  # user-unit sizes of the enclosing viewports (gradient percentages)
        self.loose: Optional[int] = None  # index of the current "Unlayered" layer
        self.ids_used: dict = {}

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def fill_of(self, st: dict) -> tuple:
        """(colour or None, the gradient's definition or None) of a fill."""
        paint = st.get("fill", "black")
        if paint.strip().lower().startswith("url("):
            ref = re.search(r"#([^)\s'\"]+)", paint)
            g = self.gradients.get(ref.group(1)) if ref else None
            if g is None:  # a paint server this reader does not draw: its fallback colour, if any
                rest = paint[paint.find(")") + 1:].strip()
                if not rest:
                    self.skip("fills with patterns or unknown paint servers")
                    return None, None
                return parse_color(rest, st.get("color")), None
            return g["mean"], g
        return parse_color(paint, st.get("color")), None

    def layer_for(self, layer: Optional[int]) -> int:
        if layer is not None:
            return layer
        if self.loose is None:
            count = sum(lay.loose for lay in self.layers)
            label = "Unlayered" if not count else f"Unlayered {count + 1}"
            self.layers.append(Layer(id=label.replace(" ", "_").lower(), label=label, loose=True))
            self.loose = len(self.layers) - 1
        return self.loose

    def shape_id(self, e: ET.Element, tag: str) -> str:
        base = e.get("id") or tag
        n = self.ids_used.get(base, 0)
        self.ids_used[base] = n + 1
        if e.get("id") and n == 0:
            return base
        return f"{base}{n + 1}" if not e.get("id") else f"{base}.{n:03d}"

    def is_layer(self, e: ET.Element, tag: str, layer: Optional[int]) -> bool:
        if tag != "g":
            return False
        if self.groups_as_layers:
            return layer is None  # every top-level group; nested layers belong to it
        return e.get(f"{{{INKSCAPE_NS}}}groupmode") == "layer"

    def walk(self, e: ET.Element, m: Matrix, inherited: dict, opacity: float, layer: Optional[int],
             use_depth: int = 0) -> None:
        tag = _local(e.tag)
        if tag in _NEVER_DRAWN or not tag:
            return
        st = _style(e)
        is_layer = self.is_layer(e, tag, layer)
        hidden = st.get("display", "").strip() == "none"
        if hidden and not is_layer:  # hidden layers are read, and marked hidden
            self.skip("hidden elements (display:none)")
            return
        here = dict(inherited)
        for k in _INHERITED:
            if k in st:
                here[k] = st[k]
        op = opacity * _opacity(st.get("opacity"), "opacity")
        mm = mat_mul(m, parse_transform(e.get("transform")))
        if is_layer:
            own_label, own_id = e.get(f"{{{INKSCAPE_NS}}}label"), e.get("id")
            label = (own_label or own_id or f"Layer {len(self.layers) + 1}").strip()
            self.layers.append(Layer(id=own_id or f"layer{len(self.layers) + 1}", label=label or "Layer",
                                     parent=layer, hidden=hidden, element_id=own_id, element_label=own_label))
            index = len(self.layers) - 1
            for child in e:
                self.walk(child, mm, here, op, index, use_depth)
            if layer is None:
                self.loose = None  # loose elements after a layer start a new "Unlayered" layer
            return
        if tag in _CONTAINERS:
            for child in e:
                self.walk(child, mm, here, op, layer, use_depth)
            return
        if tag == "svg":  # a nested viewport: its x/y offset, size and viewBox
            w = _length(e.get("width"), None, what="svg width")
            h = _length(e.get("height"), None, what="svg height")
            vw, vh = self.viewports[-1]
            vbm, inner_viewport = _viewport(e, vw if w is None else w, vh if h is None else h)
            inner = mat_mul(mm, mat_mul((1.0, 0.0, 0.0, 1.0, _num(e, "x"), _num(e, "y")), vbm))
            self.viewports.append(inner_viewport)
            for child in e:
                self.walk(child, inner, here, op, layer, use_depth)
            self.viewports.pop()
            return
        if tag == "use":
            ref = e.get(f"{{{XLINK_NS}}}href") or e.get("href") or ""
            target = self.by_id.get(ref[1:]) if ref.startswith("#") else None
            if target is None or use_depth >= MAX_USE_DEPTH:
                self.skip("<use> elements whose target is missing or nested too deep")
                return
            moved = mat_mul(mm, (1.0, 0.0, 0.0, 1.0, _num(e, "x"), _num(e, "y")))
            if _local(target.tag) == "symbol":
                for child in target:
                    self.walk(child, moved, here, op, layer, use_depth + 1)
            else:
                self.walk(target, moved, here, op, layer, use_depth + 1)
            return
        if tag in _SKIPPED:
            self.skip(_SKIPPED[tag])
            return
        if tag not in _SHAPES:
            return
        if here.get("visibility", "visible").strip() in ("hidden", "collapse"):
            self.skip("hidden elements (visibility:hidden)")
            return
        fill, gdef = self.fill_of(here)
        if fill is None:
            self.skip("shapes without a fill (strokes are not imported)")
            return
        fill_opacity = _opacity(here.get("fill-opacity"), "fill-opacity")
        try:
            subpaths = shape_subpaths(e, tag)
        except SvgReadError as err:
            ident = e.get("id")
            raise SvgReadError(f"<{tag}{' id=' + repr(ident) if ident else ''}>: {err}") from None
        place = IDENTITY if self.own_units else mm
        splines = [s for s in (close_subpath(start, segs, place, self.eps) for start, segs in subpaths)
                   if s is not None]
        if not splines:
            self.skip("empty shapes (no area)")
            return
        gradient = None
        if gdef is not None:
            placed = _place_gradient(gdef, mm, subpaths, self.viewports[-1])
            if placed is None:
                self.skip("gradient fills that cannot be placed (drawn with the mean of their stop colours)")
            elif isinstance(placed, Gradient):
                gradient = placed
                fill = (*fill[:3], 1.0)  # the stops carry their own opacity
            else:
                fill = placed  # one colour
        index = self.layer_for(layer)
        rule = here.get("fill-rule", "nonzero").strip().lower()
        self.layers[index].shapes.append(Shape(id=self.shape_id(e, tag), rgb=tuple(fill[:3]),
                                               opacity=fill[3] * fill_opacity * op, splines=splines,
                                               gradient=gradient,
                                               fill_rule="evenodd" if rule == "evenodd" else "nonzero",
                                               named=bool(e.get("id")), matrix=mm if self.own_units else IDENTITY))


def _prefixed(name: Optional[str], message: str) -> str:
    return f"{name}: {message}" if name else message


def parse_xml(data, *, name: Optional[str] = None) -> ET.Element:
    """The root ``<svg>`` element of SVG text or bytes; SvgReadError (its message starting with
    ``name`` when given) for anything that is not an SVG document. XML entity declarations are
    refused (nothing is expanded or fetched)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SvgReadError(_prefixed(name, f"expected SVG text or bytes, got {type(data).__name__}"))
    data = bytes(data)
    if not data.strip():
        raise SvgReadError(_prefixed(name, "malformed SVG: the document is empty (0 bytes of SVG)"))
    if len(data) > MAX_BYTES:
        raise SvgReadError(_prefixed(name, f"the document is {len(data) >> 20} MiB; SVG files over "
                                           f"{MAX_BYTES >> 20} MiB are refused"))
    if b"<!ENTITY" in data[:65536]:
        raise SvgReadError(_prefixed(name, "the document declares XML entities, which are refused for safety; "
                                           "save it again as plain SVG"))
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise SvgReadError(_prefixed(name, f"malformed SVG: not well-formed XML ({err}); is it really an SVG "
                                           "file?")) from None
    if _local(root.tag) != "svg":
        raise SvgReadError(_prefixed(name, f"XML but not SVG: the root element is <{_local(root.tag)}>, "
                                           "expected <svg>"))
    return root


def read_root(root: ET.Element, *, name: Optional[str] = None, size: Optional[tuple] = None,
              groups_as_layers: bool = False, own_units: bool = False) -> Drawing:
    """Read the document under ``root`` (from :func:`parse_xml`) into a :class:`Drawing`.

    ``size``: (width, height) in pixels of the canvas the document is scaled onto (each axis on its
    own), default the document's own size (:func:`document_size`). ``groups_as_layers``: every
    top-level ``<g>`` is a layer, and nested layers belong to it (what lvss's scenes hold), instead
    of only Inkscape layers, nested ones as sublayers. ``own_units``: every shape's splines stay in
    its element's own user units, and :attr:`Shape.matrix` maps them to the canvas (for a caller that
    works on an element's geometry before placing it). Raises SvgReadError, its message starting
    with ``name`` when given."""
    try:
        doc_w, doc_h = document_size(root)
        m, viewport = _viewport(root, doc_w, doc_h)
        width, height = (doc_w, doc_h) if size is None else (float(size[0]), float(size[1]))
        if not (width > 0 and height > 0 and math.isfinite(width) and math.isfinite(height)):
            raise SvgReadError(f"the canvas size {width:g} x {height:g} is not positive")
        if size is not None:
            m = mat_mul((width / doc_w, 0.0, 0.0, height / doc_h, 0.0, 0.0), m)
        reader = _Reader(root, 1e-9 if own_units else 1e-9 * max(width, height, 1.0), viewport, groups_as_layers,
                         own_units)
        st = _style(root)
        inherited = {k: st[k] for k in _INHERITED if k in st}
        op = _opacity(st.get("opacity"), "opacity")
        for child in root:
            reader.walk(child, m, inherited, op, None)
    except SvgReadError as err:
        raise SvgReadError(_prefixed(name, str(err))) from None
    except RecursionError:
        raise SvgReadError(_prefixed(name, "the document nests its elements too deeply to be read")) from None
    title = next((t.text.strip() for t in root if _local(t.tag) == "title" and t.text and t.text.strip()), "")
    return Drawing(width=width, height=height, layers=reader.layers, skipped=reader.skipped, title=title)


def read_svg(data, *, name: Optional[str] = None, size: Optional[tuple] = None, groups_as_layers: bool = False,
             own_units: bool = False) -> Drawing:
    """Read SVG text or bytes into a :class:`Drawing` (:func:`parse_xml`, then :func:`read_root`)."""
    return read_root(parse_xml(data, name=name), name=name, size=size, groups_as_layers=groups_as_layers,
                     own_units=own_units)


__all__ = ["SvgReadError", "Spline", "Gradient", "Shape", "Layer", "Drawing", "parse_xml", "document_size",
           "read_root", "read_svg", "parse_path_data", "close_subpath", "parse_color", "parse_transform",
           "mat_mul", "mat_inv", "apply", "IDENTITY", "SVG_NS", "INKSCAPE_NS", "XLINK_NS"]
