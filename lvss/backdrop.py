"""A backdrop for a vectorized bitmap: one path under the result that fills what its paths leave
uncovered where the bitmap is opaque.

At small budgets the optimised paths do not always tile the canvas: a corner whose region lost its
path to the budget, and anti-aliased seams between neighbouring paths, let whatever lies below show
through once the original bitmap is hidden. The backdrop is the bitmap's opaque region (the canvas
rectangle for an opaque bitmap, else exactly its pixels with alpha >= 1/2) filled with the bitmap's mean colour over the pixels the result leaves uncovered,
each weighted by how uncovered it is. The Inkscape extension puts it under the layers it inserts.

:func:`backdrop` needs the bitmap and the result's SVG; it rasterizes the result at a small size to
find the gaps (with Pillow for the SVG lvss writes, so a client does not load torch for it). It is a
client-side complement to the result, not part of its path budget.
"""
from __future__ import annotations

import re
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


_SS = 4  # supersampling of the quick coverage raster, per axis
_T = np.linspace(0.0, 1.0, 9)[1:]  # where each cubic segment is sampled (8 chords)
_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _matrix(transform: str | None) -> np.ndarray:
    """3x3 matrix of an SVG transform list made of matrix/translate/scale (ValueError otherwise)."""
    m = np.eye(3)
    for name, body in re.findall(r"([a-zA-Z]+)\s*\(([^)]*)\)", transform or ""):
        v = [float(x) for x in _NUM.findall(body)]
        t = np.eye(3)
        if name == "matrix" and len(v) == 6:
            t[0, 0], t[1, 0], t[0, 1], t[1, 1], t[0, 2], t[1, 2] = v
        elif name == "translate" and len(v) in (1, 2):
            t[0, 2], t[1, 2] = v[0], (v[1] if len(v) == 2 else 0.0)
        elif name == "scale" and len(v) in (1, 2):
            t[0, 0], t[1, 1] = v[0], (v[1] if len(v) == 2 else v[0])
        else:
            raise ValueError(f"transform {name}({body}) is not read by the quick raster")
        m = m @ t
    return m


def _polygons(d: str) -> list[np.ndarray]:
    """Closed polygons ((K, 2) float) of path data made of absolute M, C, L and Z (what lvss writes);
    cubic segments are flattened into 8 chords. ValueError for anything else."""
    out: list[np.ndarray] = []
    parts: list[np.ndarray] = []  # pieces of the current subpath, (n, 2) each
    cubic: list[float] = []  # consecutive C operands, flattened together
    state = {"cur": None}

    def flush_cubic() -> None:
        if cubic:
            c = np.asarray(cubic, np.float64).reshape(-1, 3, 2)  # (k, [c1, c2, end], xy)
            p0 = np.concatenate([state["cur"][None], c[:-1, 2]])  # each segment's start
            t = _T[None, :, None]
            seg = ((1 - t) ** 3 * p0[:, None] + 3 * (1 - t) ** 2 * t * c[:, None, 0]
                   + 3 * (1 - t) * t * t * c[:, None, 1] + t ** 3 * c[:, None, 2])
            parts.append(seg.reshape(-1, 2))
            state["cur"] = c[-1, 2]
            cubic.clear()

    def close() -> None:
        flush_cubic()
        if parts:
            poly = np.concatenate(parts)
            if len(poly) > 2:
                out.append(poly)
            parts.clear()

    for cmd, body in re.findall(r"([A-Za-z])([^A-Za-z]*)", d):
        v = [float(x) for x in _NUM.findall(body)]
        if cmd == "C" and state["cur"] is not None and v and len(v) % 6 == 0:
            cubic.extend(v)
            continue
        flush_cubic()
        if cmd == "M" and len(v) >= 2 and len(v) % 2 == 0:
            close()
            parts.append(np.asarray(v, np.float64).reshape(-1, 2))
            state["cur"] = parts[-1][-1]
        elif cmd == "L" and state["cur"] is not None and v and len(v) % 2 == 0:
            parts.append(np.asarray(v, np.float64).reshape(-1, 2))
            state["cur"] = parts[-1][-1]
        elif cmd in "Zz" and not v:
            close()
        else:
            raise ValueError(f"path command {cmd!r} is not read by the quick raster")
    close()
    return out


def _quick_coverage(svg_text: str, w: int, h: int) -> np.ndarray:
    """(h, w) coverage in [0, 1] of the result's paths on a w x h canvas spanning its viewBox,
    drawn with Pillow at 4x4 supersampling (no torch). ValueError for SVG it does not read."""
    from lxml import etree
    from PIL import Image, ImageDraw

    root = etree.fromstring(svg_text.encode("utf-8"),
                            etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    vb = [float(v) for v in _NUM.findall(root.get("viewBox") or "")]
    if len(vb) != 4 or vb[2] <= 0 or vb[3] <= 0:
        raise ValueError("the result has no usable viewBox")
    vx, vy, vw, vh = vb
    base = np.array([[w * _SS / vw, 0, -vx * w * _SS / vw], [0, h * _SS / vh, -vy * h * _SS / vh], [0, 0, 1]])
    cover = np.zeros((h * _SS, w * _SS), np.float32)

    def walk(e, m) -> None:
        if not isinstance(e.tag, str):
            return
        name = etree.QName(e).localname
        if name in ("defs", "clipPath", "mask", "title", "desc", "metadata") or e.get("clip-path") or e.get("mask"):
            if name in ("defs", "title", "desc", "metadata"):
                return
            raise ValueError("clipping and masks are not read by the quick raster")
        if "display:none" in (e.get("style") or "").replace(" ", "") or e.get("display") == "none":
            return
        m = m @ _matrix(e.get("transform"))
        if name in ("svg", "g"):
            for c in e:
                walk(c, m)
            return
        if name != "path":
            raise ValueError(f"<{name}> is not read by the quick raster")
        if e.get("fill") == "none" or e.get("style"):
            raise ValueError("styled paths are not read by the quick raster")
        alpha = min(max(float(e.get("fill-opacity") or 1.0) * float(e.get("opacity") or 1.0), 0.0), 1.0)
        polys = [(np.c_[poly, np.ones(len(poly))] @ m.T)[:, :2] for poly in _polygons(e.get("d") or "")]
        if not polys or alpha <= 0:
            return
        allp = np.concatenate(polys)
        x0, y0 = (max(0, int(np.floor(v))) for v in allp.min(axis=0))
        x1, y1 = int(np.ceil(allp[:, 0].max())), int(np.ceil(allp[:, 1].max()))
        x1, y1 = min(x1, cover.shape[1]), min(y1, cover.shape[0])
        if x1 <= x0 or y1 <= y0:
            return
        canvas = Image.new("L", (x1 - x0, y1 - y0), 0)  # only the path's bounding box
        draw = ImageDraw.Draw(canvas)
        for xy in polys:
            draw.polygon((xy - (x0, y0)).ravel().tolist(), fill=255)
        mask = np.asarray(canvas, np.float32) * (alpha / 255.0)
        box = cover[y0:y1, x0:x1]
        box += (1.0 - box) * mask

    walk(root, base)
    return cover.reshape(h, _SS, w, _SS).mean(axis=(1, 3))


def _coverage(svg_text: str, w: int, h: int) -> np.ndarray:
    """Coverage of the result on a w x h canvas: the quick Pillow raster for what lvss writes, else
    lvss's own renderer (which reads any SVG lvss can parse, and needs torch)."""
    try:
        return _quick_coverage(svg_text, w, h)
    except ValueError:
        import torch

        from .render import render
        from .svg import svg_to_scene

        scene = svg_to_scene(svg_text, w, h)
        if not scene.point_list():
            return np.zeros((h, w), np.float32)
        with torch.no_grad():
            return render(scene).detach().cpu().numpy()[..., 3]


def backdrop(image: np.ndarray, svg_text: str, size: int = 256) -> Backdrop | None:
    """The backdrop for ``image`` ((H, W, 4) uint8 RGBA) under the result ``svg_text`` (its viewBox
    spans the bitmap), or None when the bitmap has no opaque pixel.

    size: long side, pixels, at which the result is rasterized to find the gaps.
    """
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
    cover = _coverage(svg_text, w, h)
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
