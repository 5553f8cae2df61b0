"""Names of a finished scene's layers for an editor's layer list, from what actually shows.

:func:`name_layers` runs once on the finished scene (``lvss.pipeline.run``, both modes). Each layer
of layered mode keeps its place number and its role ("Background", "Shapes", "Details") and gets
the colour name that covers the most *visible* area among its paths (a path hidden under
later ones does not count). No two layers of a result share a name: where role and colour repeat, a
position word (where in the picture the layer's visible area lies: "top left", "centre", ...) tells
them apart, and an index where even that repeats. E.g. "03 Details, brown, top left",
"04 Details, brown, bottom", "05 Details, brown". Compact mode's layers ("Structure (n merged
regions)", "Details") keep their names.

Path ids are the SVG writer's (lvss.svg: ``l03-shape-2``, ``l03-detail-1``).
"""
from __future__ import annotations

import re

import numpy as np
import torch

from .messages import colour_name
from .scene import Layer, Scene

_NUMBERED = re.compile(r"^(\d+)\s+(.*)$")
# the position words of a 3 x 3 grid, row by row
_POSITIONS = (("top left", "top", "top right"), ("left", "centre", "right"),
              ("bottom left", "bottom", "bottom right"))


def _role(name: str) -> tuple[str, str]:
    """(number, role) of a layer name: "03 Details, brown" -> ("03", "Details");
    "Structure (12 merged regions)" -> ("", "Structure (12 merged regions)")."""
    m = _NUMBERED.match(name.strip())
    number, rest = (m.group(1), m.group(2)) if m else ("", name.strip())
    return number, rest.split(",", 1)[0].strip() or "Layer"


def visible_stats(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Per path, in drawing order: the pixels that show in the composite (N,), and the mean (x, y)
    of those pixels (N, 2), from one coverage pass (lvss.render.torch_raster.scene_pairs)."""
    from .render.torch_raster import scene_pairs

    points = scene.point_list()
    n = len(points)
    if n == 0:
        return np.zeros(0), np.zeros((0, 2))
    colors = scene.colors()
    with torch.no_grad():
        pairs = scene_pairs([p.detach().float() for p in points], colors[:, 3].detach().float(),
                            scene.width, scene.height)
        area = pairs.visible_area(n).double()
        if pairs.pix.numel():
            x = (pairs.pix % scene.width).double() + 0.5
            y = torch.div(pairs.pix, scene.width, rounding_mode="floor").double() + 0.5
            vis = pairs.vis.double()
            dev = pairs.pid.device
            sx = torch.zeros(n, dtype=torch.float64, device=dev).index_add_(0, pairs.pid, vis * x)
            sy = torch.zeros(n, dtype=torch.float64, device=dev).index_add_(0, pairs.pid, vis * y)
        else:
            sx = sy = torch.zeros(n, dtype=torch.float64)
    area_np = area.cpu().numpy()
    centre = np.stack([sx.cpu().numpy(), sy.cpu().numpy()], 1) / np.maximum(area_np, 1e-9)[:, None]
    return area_np, centre


def position_word(x: float, y: float, width: float, height: float) -> str:
    """Where (x, y) lies in the picture, in thirds: "top left", "centre", "bottom", ..."""
    col = min(2, max(0, int(3 * x / max(width, 1e-9))))
    row = min(2, max(0, int(3 * y / max(height, 1e-9))))
    return _POSITIONS[row][col]


def layer_names(scene: Scene, area: np.ndarray | None = None, centre: np.ndarray | None = None) -> list[str]:
    """The new names of ``scene``'s layers (see the module doc); ``area``/``centre``: per path, as
    :func:`visible_stats` returns them (computed when None)."""
    if area is None or centre is None:
        area, centre = visible_stats(scene)
    bases, colours, positions = [], [], []
    i = 0
    for k, layer in enumerate(scene.layers):
        number, role = _role(layer.name)
        m = len(layer.paths)
        a = np.asarray(area[i:i + m], np.float64)
        c = np.asarray(centre[i:i + m], np.float64).reshape(-1, 2)
        by_name: dict[str, float] = {}
        for p, ap in zip(layer.paths, a):
            key = colour_name(p.color.detach().cpu().double().numpy()[:3])
            by_name[key] = by_name.get(key, 0.0) + float(ap)
        if by_name and max(by_name.values()) > 0:
            colour = max(by_name, key=by_name.get)
        elif layer.paths:  # nothing shows: the colour of the most paths
            colour = max(by_name, key=lambda key: sum(1 for p in layer.paths if colour_name(
                p.color.detach().cpu().double().numpy()[:3]) == key))
        else:
            colour = ""
        total = float(a.sum())
        if total > 0:
            cx, cy = (a[:, None] * c).sum(0) / total
            positions.append(position_word(cx, cy, scene.width, scene.height))
        else:
            positions.append("")
        bases.append((number, role))
        colours.append(colour)
        i += m
    # role + colour (layered mode's numbered layers; compact mode's "Structure (n merged regions)" and
    # "Details" keep their names); a position word where those repeat; an index where even that repeats
    names = [", ".join(x for x in (role, colour) if x) if prefix else layer.name
             for (prefix, role), colour, layer in zip(bases, colours, scene.layers)]
    counts = {t: names.count(t) for t in names}
    names = [f"{t}, {pos}" if counts[t] > 1 and pos else t for t, pos in zip(names, positions)]
    seen: dict[str, int] = {}
    counts = {t: names.count(t) for t in names}
    out = []
    for t, (prefix, _) in zip(names, bases):
        if counts[t] > 1:
            seen[t] = seen.get(t, 0) + 1
            t = f"{t} {seen[t]}"
        out.append(f"{prefix} {t}" if prefix else t)
    return out


def name_layers(scene: Scene) -> Scene:
    """``scene`` with its layers renamed by :func:`layer_names` (same paths, ids and order)."""
    if not scene.layers:
        return scene
    names = layer_names(scene)
    return Scene(scene.width, scene.height,
                 [Layer(name, layer.paths, layer.id, layer.details_from) for name, layer in zip(names, scene.layers)])


__all__ = ["name_layers", "layer_names", "visible_stats", "position_word"]
