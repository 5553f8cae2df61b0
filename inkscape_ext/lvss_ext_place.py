"""Placing a layered SVG returned by the lvss server exactly over the ``<image>`` it came from.

Coordinates: the server's SVG draws in its viewBox, which spans the bitmap's pixels. SVG shows a
bitmap by mapping its pixel grid (0..W, 0..H) into the rectangle (x, y, width, height) of the
``<image>`` following ``preserveAspectRatio`` (the viewBox-to-viewport rule of SVG 1.1 §7.8), then
applying the image's ``transform``. The result group is inserted as the image's next sibling, so the
transforms of all ancestors apply to both alike; the group carries the image's own transform, and
each layer the pixel-to-image-space mapping.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import inkex
from inkex.units import convert_unit, parse_unit
from lxml import etree

from lvss_ext_image import element_name, pixel_size

SVG_NS = "http://www.w3.org/2000/svg"
INKSCAPE_NS = "http://www.inkscape.org/namespaces/inkscape"
SODIPODI_NS = "http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd"
XLINK_NS = "http://www.w3.org/1999/xlink"
_LABEL = f"{{{INKSCAPE_NS}}}label"
_GROUPMODE = f"{{{INKSCAPE_NS}}}groupmode"
# elements of a returned SVG that draw nothing and are not copied
_SKIP = {f"{{{SVG_NS}}}title", f"{{{SVG_NS}}}desc", f"{{{SVG_NS}}}metadata", f"{{{SODIPODI_NS}}}namedview"}


class PlacementError(Exception):
    """The image's geometry or the server's SVG cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Viewport:
    """The pixel-to-user-space mapping of one ``<image>``: p_user = (sx·px + tx, sy·py + ty).

    rect: the image's (x, y, width, height) in its user units; slice: True when the mapped bitmap
    overflows ``rect`` and SVG cuts it to ``rect``; grid: the mapped bitmap's (width, height).
    """

    sx: float
    sy: float
    tx: float
    ty: float
    rect: Tuple[float, float, float, float]
    slice: bool
    grid: Tuple[float, float]  # the mapped bitmap's width and height, user units

    @property
    def visible(self) -> Tuple[float, float, float, float]:
        """(x, y, width, height) of the drawn part of the bitmap: the mapped pixel grid cut to ``rect``."""
        return self.rect if self.slice else (self.tx, self.ty, self.grid[0], self.grid[1])

    @property
    def transform(self) -> inkex.Transform:
        return inkex.Transform((self.sx, 0.0, 0.0, self.sy, self.tx, self.ty))


@dataclass
class ParsedResult:
    """A server SVG split into what gets inserted.

    box: the viewBox (x, y, width, height); it spans the whole bitmap (the server contract
    makes width, height the bitmap's size in pixels);
    layers: (label, element) per top-level group, back to front; defs: definitions to copy.
    """

    root: etree._Element
    box: Tuple[float, float, float, float]
    layers: List[Tuple[str, etree._Element]]
    defs: List[etree._Element]


def _length(elem, name: str, default: Optional[float]) -> Optional[float]:
    """A length attribute in user units (px); units such as mm are converted at 96 px/in."""
    raw = (elem.get(name) or "").strip()
    if not raw or raw == "auto":
        return default
    value, unit = parse_unit(raw) or (None, None)
    if value is None:
        raise PlacementError(
            f"Image '{element_name(elem)}' has an unreadable {name}={raw!r}. Set a number in "
            "Object > Object Properties (or the XML editor) and try again."
        )
    if unit == "%":
        raise PlacementError(
            f"Image '{element_name(elem)}' has a percentage {name}={raw!r}, which depends on the "
            "viewport. Give it an absolute size (W/H in the toolbar) and try again."
        )
    return float(convert_unit(raw, "px"))


def parse_preserve_aspect_ratio(value: Optional[str]) -> Tuple[str, bool]:
    """(align, slice) from a ``preserveAspectRatio`` value; the default is ("xMidYMid", False)."""
    parts = (value or "").split()
    if parts and parts[0] == "defer":
        parts = parts[1:]
    align = parts[0] if parts else "xMidYMid"
    valid = {"none"} | {f"x{a}Y{b}" for a in ("Min", "Mid", "Max") for b in ("Min", "Mid", "Max")}
    if align not in valid:
        align = "xMidYMid"  # an invalid value is ignored, as SVG renderers do
    return align, len(parts) > 1 and parts[1] == "slice"


def viewport_of(image, pixels: Tuple[float, float]) -> Viewport:
    """How a ``pixels`` = (W, H) bitmap lands in ``image``'s user space (SVG 1.1 §7.8).

    Missing width/height fall back to the bitmap's own size (SVG 2 ``auto``).
    """
    pw, ph = float(pixels[0]), float(pixels[1])
    if pw <= 0 or ph <= 0:
        raise PlacementError(f"The bitmap of '{element_name(image)}' has no pixels ({pw}×{ph}).")
    x = _length(image, "x", 0.0)
    y = _length(image, "y", 0.0)
    w = _length(image, "width", None)
    h = _length(image, "height", None)
    if w is None and h is None:
        w, h = pw, ph
    elif w is None:
        w = h * pw / ph
    elif h is None:
        h = w * ph / pw
    if w <= 0 or h <= 0:
        raise PlacementError(
            f"Image '{element_name(image)}' has a zero size ({w}×{h}); it shows nothing to vectorize."
        )
    align, slice_ = parse_preserve_aspect_ratio(image.get("preserveAspectRatio"))
    sx, sy = w / pw, h / ph
    if align != "none":
        sx = sy = max(sx, sy) if slice_ else min(sx, sy)
    tx, ty = x, y
    free_x, free_y = w - pw * sx, h - ph * sy
    if "xMid" in align:
        tx += free_x / 2
    elif "xMax" in align:
        tx += free_x
    if "YMid" in align:
        ty += free_y / 2
    elif "YMax" in align:
        ty += free_y
    return Viewport(sx, sy, tx, ty, (x, y, w, h), slice=align != "none" and slice_, grid=(pw * sx, ph * sy))


def parse_result(svg_text: str) -> ParsedResult:
    """Parse and check a server SVG (no entities, no network); raises PlacementError."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True)
    try:
        root = etree.fromstring(svg_text.encode("utf-8") if isinstance(svg_text, str) else svg_text, parser)
    except etree.XMLSyntaxError as err:
        raise PlacementError(f"The server returned SVG that is not valid XML ({err}). See the server's log.") from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise PlacementError(f"The server returned a <{etree.QName(root).localname}> document, not SVG.")
    box = _view_box(root)
    layers: List[Tuple[str, etree._Element]] = []
    defs: List[etree._Element] = []
    loose: List[etree._Element] = []

    def flush() -> None:
        if loose:
            group = etree.Element(f"{{{SVG_NS}}}g")
            group.extend(loose)
            layers.append((f"Layer {len(layers) + 1}", group))
            loose.clear()

    for child in list(root):
        if not isinstance(child.tag, str) or child.tag in _SKIP:
            continue
        if child.tag == f"{{{SVG_NS}}}defs":
            defs.extend(c for c in child if isinstance(c.tag, str))
        elif child.tag == f"{{{SVG_NS}}}g":
            flush()
            label = child.get(_LABEL) or child.get("id") or f"Layer {len(layers) + 1}"
            layers.append((label, child))
        else:
            loose.append(child)
    flush()
    if not layers:
        raise PlacementError("The server returned an SVG with no layers (no paths). Try more paths.")
    return ParsedResult(root, box, layers, defs)


def _view_box(root) -> Tuple[float, float, float, float]:
    vb = (root.get("viewBox") or "").replace(",", " ").split()
    if len(vb) == 4:
        try:
            box = tuple(float(v) for v in vb)
        except ValueError:
            box = ()
        if len(box) == 4 and box[2] > 0 and box[3] > 0:
            return box  # type: ignore[return-value]
    try:
        w = float(convert_unit(root.get("width") or "0", "px"))
        h = float(convert_unit(root.get("height") or "0", "px"))
    except (TypeError, ValueError):
        w = h = 0.0
    if w <= 0 or h <= 0:
        raise PlacementError("The server returned an SVG without a size (no viewBox, width or height).")
    return (0.0, 0.0, w, h)


class _IdMap:
    """Fresh, readable ids for copied elements (``<prefix>-<old id>``), unique in the document."""

    def __init__(self, taken: set, prefix: str):
        self.taken = taken
        self.prefix = prefix
        self.map: Dict[str, str] = {}

    def fresh(self, want: str) -> str:
        want = re.sub(r"[^A-Za-z0-9_.-]", "_", want)
        if not re.match(r"[A-Za-z_]", want):
            want = "_" + want
        new, k = want, 2
        while new in self.taken:
            new, k = f"{want}-{k}", k + 1
        self.taken.add(new)
        return new

    def assign(self, tree) -> None:
        for el in tree.iter():
            old = el.get("id") if isinstance(el.tag, str) else None
            if old:
                new = self.fresh(f"{self.prefix}-{old}")
                self.map[old] = new
                el.set("id", new)

    def rewrite_refs(self, tree) -> None:
        if not self.map:
            return
        pattern = re.compile(r"url\(\s*#([^)\s]+)\s*\)")
        for el in tree.iter():
            if not isinstance(el.tag, str):
                continue
            for name, value in el.attrib.items():
                if "url(" in value:
                    el.set(name, pattern.sub(lambda m: f"url(#{self.map.get(m.group(1), m.group(1))})", value))
                elif name in (f"{{{XLINK_NS}}}href", "href") and value.startswith("#"):
                    el.set(name, "#" + self.map.get(value[1:], value[1:]))


def raw_transform(elem) -> inkex.Transform:
    """The element's ``transform`` read without inkex's wrapper, which would rewrite the attribute
    rounded to 6 digits on access (moving the user's image by a hair)."""
    return inkex.Transform(etree.ElementBase.get(elem, "transform"))


def raw_style(elem) -> inkex.Style:
    """The element's ``style`` as a detached Style (reading it leaves the attribute untouched)."""
    return inkex.Style(etree.ElementBase.get(elem, "style") or "")


def set_transform(elem, tf: inkex.Transform) -> None:
    """Write ``tf`` with 10 significant digits (inkex's own setter rounds to 6, up to 0.01 px off
    on large images), bypassing inkex's attribute wrapper."""
    a, b, c, d, e, f = tf.to_hexad()
    if (a, b, c, d) == (1, 0, 0, 1):
        text = f"translate({e:.10g},{f:.10g})"
    else:
        text = "matrix(" + ",".join(f"{v:.10g}" for v in (a, b, c, d, e, f)) + ")"
    etree.ElementBase.set(elem, "transform", text)


def _is_layer_context(parent) -> bool:
    """True where Inkscape shows a layer: directly under the root or under another layer."""
    return parent.getparent() is None or parent.get(_GROUPMODE) == "layer"


@dataclass
class Placement:
    """A built result, not yet in the document: the group and the definitions it refers to."""

    image: inkex.Image
    group: inkex.Group
    defs: List[etree._Element]


def build_group(image, result: ParsedResult, *, name: str, pixels: Optional[Tuple[int, int]],
                as_layers: bool, taken: set) -> Placement:
    """The group to insert above ``image``: label "lvss: NAME", one child per layer.

    pixels: the bitmap's (W, H) from its header, or None to take the server's viewBox size.
    Children keep the server's order (back to front) and labels (made unique within the group); they
    are sub-groups of the named group, never layers of the document's own level; ``as_layers`` makes
    them Inkscape (sub-)layers where the image sits in a layer (or at the root), plain groups elsewhere.
    Every element gets an id that is unique in the document: the server's ids (which say layer and
    role, e.g. ``l03-shape-2``) behind the image's id, and ids made from the layer's for any without.
    taken: ids already used (the document's and earlier placements'); new ids are added to it.
    The document is not changed.
    """
    vx, vy, vw, vh = result.box
    pw, ph = pixels if pixels else (vw, vh)
    vp = viewport_of(image, (pw, ph))
    # viewBox coordinates -> bitmap pixels -> the image's user space
    to_pixels = inkex.Transform((pw / vw, 0.0, 0.0, ph / vh, -vx * pw / vw, -vy * ph / vh))
    layer_tf = vp.transform @ to_pixels
    layered = as_layers and _is_layer_context(image.getparent())

    ids = _IdMap(taken, image.get("id") or "lvss")
    outer = inkex.Layer() if layered else inkex.Group()
    outer.set(_LABEL, f"{GROUP_PREFIX}{name}")
    outer.set("id", ids.fresh(f"lvss-{image.get('id') or 'image'}"))
    image_tf = raw_transform(image)
    if image_tf:
        set_transform(outer, image_tf)
    for attr in ("clip-path", "mask"):
        if image.get(attr):
            outer.set(attr, image.get(attr))
    opacity = raw_style(image).get("opacity") or image.get("opacity")
    if opacity not in (None, "", "1"):
        etree.ElementBase.set(outer, "style", f"opacity:{opacity}")

    copied_defs = [copy.deepcopy(d) for d in result.defs]
    layer_groups = []
    for label, src in zip(unique_labels([label for label, _ in result.layers]), (s for _, s in result.layers)):
        group = inkex.Layer() if layered else inkex.Group()
        for key, value in src.attrib.items():
            if key not in ("transform", _GROUPMODE, _LABEL):
                group.set(key, value)
        group.set(_LABEL, label)
        tf = layer_tf @ inkex.Transform(src.get("transform")) if src.get("transform") else layer_tf
        set_transform(group, tf)
        for child in src:
            if isinstance(child.tag, str):
                group.append(copy.deepcopy(child))
        layer_groups.append(group)
    for k, group in enumerate(layer_groups, 1):
        _name_unnamed(group, group.get("id") or f"l{k:02d}")
    for tree in copied_defs + layer_groups:
        ids.assign(tree)
    for tree in copied_defs + layer_groups:
        ids.rewrite_refs(tree)
    for group in layer_groups:
        outer.append(group)

    # SVG draws a bitmap only inside its visible rectangle; the server's paths may overshoot the
    # canvas (optimised control points), so the copy is cut to the same rectangle
    x, y, w, h = vp.visible
    clip = inkex.ClipPath()
    clip.set("id", ids.fresh(f"clip-{outer.get('id')}"))
    clip.set("clipPathUnits", "userSpaceOnUse")
    if outer.get("clip-path"):
        # the image's own clip sits on the group; this one goes on each layer, in pixel units
        inv = (-layer_tf).apply_to_point
        (x0, y0), (x1, y1) = inv((x, y)), inv((x + w, y + h))
        x, y, w, h = min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0)
        targets = layer_groups
    else:
        targets = [outer]
    clip.append(inkex.Rectangle(x=f"{x:.10g}", y=f"{y:.10g}", width=f"{w:.10g}", height=f"{h:.10g}"))
    copied_defs.append(clip)
    for t in targets:
        t.set("clip-path", f"url(#{clip.get('id')})")
    return Placement(image, outer, copied_defs)


GROUP_PREFIX = "lvss: "  # the inserted group's label: "lvss: coffee.png"


def unique_labels(labels: List[str]) -> List[str]:
    """``labels`` with repeats told apart ("Details", "Details (2)"); the server already names its
    layers uniquely, this keeps it so for any SVG."""
    seen: Dict[str, int] = {}
    out = []
    taken = set(labels)
    for label in labels:
        n = seen.get(label, 0) + 1
        seen[label] = n
        new = label
        while n > 1 and (new == label or new in taken):
            new = f"{label} ({n})"
            n += 1
        taken.add(new)
        out.append(new)
    return out


def _name_unnamed(group, layer_id: str) -> None:
    """Ids for the paths and groups the server sent without one: ``<layer id>-path-<n>``."""
    n = 0
    for el in group.iter():
        if el is group or not isinstance(el.tag, str) or el.get("id"):
            continue
        n += 1
        kind = "path" if etree.QName(el).localname == "path" else etree.QName(el).localname
        el.set("id", f"{layer_id}-{kind}-{n}")


_REF = r"url\(\s*#{0}\s*\)"


def select_on_return(svg, image, group) -> str:
    """Make Inkscape select ``group`` after the run, in place of ``image``; returns the group's id.

    An extension cannot set Inkscape's selection. Inkscape 1.2 remembers the ids of the selected
    objects before it runs an effect and selects the objects with those ids afterwards
    (``ObjectSet::setBackup`` / ``restoreBackup``), so the group takes over the bitmap's id and the
    bitmap, when kept, gets a fresh one ("<id>-bitmap"); references to it (clones, clip paths) follow.
    """
    old = image.get("id")
    if not old:
        return group.get("id")
    if image.getparent() is not None:
        taken = document_ids(svg)
        new, k = f"{old}-bitmap", 2
        while new in taken:
            new, k = f"{old}-bitmap-{k}", k + 1
        pattern = re.compile(_REF.format(re.escape(old)))
        for el in svg.iter():
            if not isinstance(el.tag, str) or el is image:
                continue
            for name, value in el.attrib.items():
                if name in (f"{{{XLINK_NS}}}href", "href") and value == f"#{old}":
                    etree.ElementBase.set(el, name, f"#{new}")
                elif "url(" in value and old in value:
                    etree.ElementBase.set(el, name, pattern.sub(f"url(#{new})", value))
        etree.ElementBase.set(image, "id", new)
    etree.ElementBase.set(group, "id", old)
    return old


def document_ids(svg) -> set:
    """All ids in the document (a fresh set, to pass as ``taken``)."""
    return set(svg.xpath("//@id"))


def insert(svg, placement: Placement, original: str) -> inkex.Group:
    """Put the group directly above its image, then keep, hide or delete the image."""
    image, group = placement.image, placement.group
    if placement.defs:
        defs = svg.defs
        for d in placement.defs:
            defs.append(d)
    image.addnext(group)
    if original == "hide":
        style = raw_style(image)
        style["display"] = "none"
        etree.ElementBase.set(image, "style", str(style))
    elif original == "delete":
        image.getparent().remove(image)
    return group


def insert_result(svg, image, result: ParsedResult, *, name: str, image_bytes: bytes,
                  as_layers: bool, original: str) -> inkex.Group:
    """Build and insert in one go (one image)."""
    placement = build_group(image, result, name=name, pixels=pixel_size(image_bytes),
                            as_layers=as_layers, taken=document_ids(svg))
    return insert(svg, placement, original)
