"""A backdrop for a vectorized bitmap: one path under the result that fills what its paths leave
uncovered where the bitmap is opaque.

At small budgets the optimised paths do not always tile the canvas: a corner whose region lost its
path to the budget, and anti-aliased seams between neighbouring paths, let whatever lies below show
through once the original bitmap is hidden. The backdrop is the bitmap's opaque region (the canvas
rectangle for an opaque bitmap, else exactly its pixels with alpha >= 1/2) filled with the bitmap's mean colour over the pixels the result leaves uncovered,
each weighted by how uncovered it is. The Inkscape extension puts it under the layers it inserts.

:func:`backdrop` needs the bitmap and the result's SVG; it renders the result at a small size to
find the gaps. It is a client-side complement to the result, not part of its path budget.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GAP = 0.99  # a pixel with less coverage than this lets the page show through


@dataclass(frozen=True)
class Backdrop:
    """d: SVG path data in the bitmap's pixel coordinates (0..W, 0..H); fill: "#rrggbb";
    gap: fraction of the bitmap's opaque pixels the result left (partly) uncovered."""

    d: str
    fill: str
    gap: float
    size: tuple = (0, 0)  # the bitmap's (W, H), pixels: the coordinates of ``d``


def _outline(opaque: np.ndarray) -> str:
    """Path data covering exactly the pixels of an (H, W) bool mask: the canvas rectangle when all
    are set, else one rectangle per run of set pixels, runs of consecutive rows with the same span
    merged. All rectangles turn the same way, so with the nonzero rule (SVG's default) they fill
    their union, without seams inside it."""
    h, w = opaque.shape
    if opaque.all():
        return f"M0 0H{w}V{h}H0Z"
    rects: list = []
    open_runs: dict = {}  # (x0, x1) -> first row
    for y in range(h):
        edges = np.diff(np.concatenate(([0], opaque[y].astype(np.int8), [0])))
        runs = set(zip(np.nonzero(edges == 1)[0].tolist(), np.nonzero(edges == -1)[0].tolist()))
        for run in [r for r in open_runs if r not in runs]:
            rects.append((run, open_runs.pop(run), y))
        for run in runs:
            open_runs.setdefault(run, y)
    rects.extend((run, y0, h) for run, y0 in open_runs.items())
    rects.sort(key=lambda r: (r[1], r[0]))
    return "".join(f"M{x0} {y0}H{x1}V{y1}H{x0}Z" for (x0, x1), y0, y1 in rects)


def backdrop(image: np.ndarray, svg_text: str, size: int = 256) -> Backdrop | None:
    """The backdrop for ``image`` ((H, W, 4) uint8 RGBA) under the result ``svg_text`` (its viewBox
    spans the bitmap), or None when the bitmap has no opaque pixel.

    size: long side, pixels, at which the result is rendered to find the gaps.
    """
    import torch

    from .render import render
    from .svg import svg_to_scene

    if image.ndim != 3 or image.shape[2] != 4:
        raise ValueError(f"image must be (H, W, 4) uint8 RGBA, got shape {image.shape}")
    H, W = image.shape[:2]
    opaque_full = image[..., 3] >= 128
    if not opaque_full.any():
        return None
    s = min(1.0, size / max(H, W))
    w, h = max(1, round(W * s)), max(1, round(H * s))
    from PIL import Image

    small = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR)).astype(np.float32) / 255.0
    scene = svg_to_scene(svg_text, w, h)
    if scene.point_list():
        with torch.no_grad():
            cover = render(scene).detach().cpu().numpy()[..., 3]
    else:
        cover = np.zeros((h, w), np.float32)
    opaque = small[..., 3] >= 0.5
    need = np.where(opaque, 1.0 - np.clip(cover, 0.0, 1.0), 0.0)
    weight = need if need.sum() > 1e-6 else opaque.astype(np.float32)
    rgb = (small[..., :3] * weight[..., None]).sum((0, 1)) / max(float(weight.sum()), 1e-6)
    fill = "#" + "".join(f"{int(round(float(v) * 255)):02x}" for v in np.clip(rgb, 0, 1))
    gap = float(((cover < GAP) & opaque).sum() / max(int(opaque.sum()), 1))
    return Backdrop(_outline(opaque_full), fill, gap, (W, H))


def backdrop_from_bytes(image_bytes: bytes, svg_text: str, size: int = 256) -> Backdrop | None:
    """:func:`backdrop` for an encoded bitmap (PNG, JPEG, ...)."""
    from .io import decode_image_bytes

    return backdrop(decode_image_bytes(image_bytes), svg_text, size)


__all__ = ["Backdrop", "backdrop", "backdrop_from_bytes", "add_to_svg"]


def add_to_svg(svg_text: str, bd: Backdrop, label: str = "Backdrop") -> str:
    """``svg_text`` with ``bd`` as a first (bottom) layer: ``<g inkscape:label="Backdrop">`` holding one
    path, drawn in the viewBox's coordinates (the bitmap's pixels mapped onto the viewBox)."""
    from lxml import etree

    svg_ns, ink_ns = "http://www.w3.org/2000/svg", "http://www.inkscape.org/namespaces/inkscape"
    root = etree.fromstring(svg_text.encode("utf-8"),
                            etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    W, H = bd.size
    vb = (root.get("viewBox") or f"0 0 {W} {H}").replace(",", " ").split()
    vx, vy, vw, vh = (float(v) for v in vb)
    g = etree.Element(f"{{{svg_ns}}}g", nsmap={"inkscape": ink_ns})
    g.set("id", "backdrop")
    g.set(f"{{{ink_ns}}}groupmode", "layer")
    g.set(f"{{{ink_ns}}}label", label)
    sx, sy = vw / W, vh / H
    if (sx, sy, vx, vy) != (1.0, 1.0, 0.0, 0.0):
        g.set("transform", f"matrix({sx:.10g} 0 0 {sy:.10g} {vx:.10g} {vy:.10g})")
    path = etree.SubElement(g, f"{{{svg_ns}}}path")
    path.set("id", "backdrop-fill")
    path.set("d", bd.d)
    path.set("fill", bd.fill)
    first = next((i for i, c in enumerate(root) if isinstance(c.tag, str) and etree.QName(c).localname == "g"),
                 len(root))
    root.insert(first, g)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")
