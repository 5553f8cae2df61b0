"""Reading an SVG for the Blender importer: lvss's SVG reader (``lvss/svg_read.py``), and the
names the importer gives collections and objects (colour words from ``lvss/messages.py``, as
lvss names its layers).

The reader is standard library only and has no ``bpy``; ``lvss build-blender-extension`` bundles
it with the client as ``_lvss/svg_read.py`` (from a source checkout, or with lvss installed in
Blender's Python, ``lvss.svg_read`` is used). ``scene_build`` turns its :class:`Drawing` into
collections and curve objects. What it reads is described in ``lvss/svg_read.py``.
"""
from __future__ import annotations

try:  # the copy bundled into the extension
    from ._lvss.messages import colour_name
    from ._lvss.svg_read import (Drawing, Gradient, Layer, Shape, Spline, SvgReadError, parse_path_data,
                                 read_svg)
except ImportError:  # a source checkout, or lvss installed in Blender's Python
    from lvss.messages import colour_name
    from lvss.svg_read import Drawing, Gradient, Layer, Shape, Spline, SvgReadError, parse_path_data, read_svg

SvgImportError = SvgReadError  # the name the importer knows


def parse_svg(data, *, name: str = "the SVG") -> Drawing:
    """Read SVG text or bytes into a :class:`Drawing` with at least one filled shape; raises
    SvgImportError with the reason (its message starting with ``name``)."""
    drawing = read_svg(data, name=name)
    if not any(lay.shapes for lay in drawing.layers):
        what = ", ".join(f"{n} {r}" for r, n in drawing.skipped.items())
        raise SvgImportError(f"{name} holds no filled shapes to import" + (f" (skipped: {what})" if what else "")
                             + "; lvss imports filled paths and basic shapes")
    return drawing


# ---------------------------------------------------------------------------------------------
# names for the editor
# ---------------------------------------------------------------------------------------------
NAME_BYTES = 63  # Blender's longest datablock name, in UTF-8 bytes
DETAILS = "details"  # the label lvss gives a layer's sub-layer of detail paths


def _fit(head: str, tail: str) -> str:
    """``head + tail`` cut (in ``head``) to Blender's name length."""
    room = NAME_BYTES - len(tail.encode("utf-8"))
    h = head
    while len(h.encode("utf-8")) > max(room, 1):
        h = h[:-1]
    return (h.rstrip() + "…" if h != head and len((h.rstrip() + "…" + tail).encode("utf-8")) <= NAME_BYTES
            else h) + tail


def collection_name(drawing: Drawing, index: int) -> str:
    """The collection name of layer ``index``: its label; a sublayer whose label another layer has
    too (lvss's "details" in every layer) is named after its parent as well,
    "03 Shapes, red · details"."""
    lay = drawing.layers[index]
    if lay.parent is None or sum(other.label == lay.label for other in drawing.layers) < 2:
        return lay.label
    return _fit(collection_name(drawing, lay.parent), f" · {lay.label}")


def object_name(drawing: Drawing, index: int, k: int) -> str:
    """The object name of shape ``k`` of layer ``index``: the element's own id when the SVG gives
    one; else what it is: the layer, the role (a "detail" in a "details" sublayer, else a
    "shape"), its number in the layer (from 1) and its colour, "03 Shapes, red · shape 2, dark red"
    or "03 Shapes, red · detail 1, black"."""
    lay = drawing.layers[index]
    shape = lay.shapes[k]
    if shape.named:
        return shape.id
    if lay.parent is not None and lay.label.strip().lower() == DETAILS:
        owner, role = drawing.layers[lay.parent].label, "detail"
    else:
        owner, role = lay.label, "shape"
    colour = colour_name(shape.rgb) + (" gradient" if shape.gradient is not None else "")
    return _fit(owner, f" · {role} {k + 1}, {colour}")


__all__ = ["Drawing", "Gradient", "Layer", "Shape", "Spline", "SvgImportError", "parse_svg", "parse_path_data",
           "colour_name", "collection_name", "object_name"]
