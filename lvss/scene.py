"""Scene model: closed cubic Bézier paths with RGBA fills, grouped into named layers.

Coordinates are in pixels of a ``width`` × ``height`` canvas, x to the right and y down (as in SVG).
A path with S segments holds 3S control points ``(P0, C1, C2, P1, C1', C2', P2, ...)``; segment k
runs from point 3k through 3k+1, 3k+2 to point 3k+3, and the last segment closes back to point 0.

No I/O lives here; see :mod:`lvss.svg` for reading and writing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch


class SceneError(ValueError):
    """A scene, path or canvas is invalid; the message says what to fix."""


def _check_canvas(width: int, height: int) -> None:
    for name, v in (("width", width), ("height", height)):
        if not isinstance(v, (int,)) or isinstance(v, bool):
            raise SceneError(f"canvas {name} must be an integer number of pixels, got {v!r}")
        if v <= 0:
            raise SceneError(f"canvas {name} must be > 0 pixels, got {v}")


@dataclass
class Path:
    """One closed cubic Bézier path.

    points: (3S, 2) float32 tensor, pixels; S ≥ 1 segments, the last closing back to point 0.
    color:  (4,) float32 tensor, straight (non-premultiplied) RGBA in [0, 1].
    """

    points: torch.Tensor
    color: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.points, torch.Tensor):
            self.points = torch.as_tensor(self.points, dtype=torch.float32)
        if not isinstance(self.color, torch.Tensor):
            self.color = torch.as_tensor(self.color, dtype=torch.float32)
        p, c = self.points, self.color
        if p.dim() != 2 or p.shape[1] != 2 or p.shape[0] == 0 or p.shape[0] % 3 != 0:
            raise SceneError(
                f"path points must have shape (3S, 2) with S >= 1 cubic segments, got {tuple(p.shape)}"
            )
        if c.shape == (3,):
            self.color = c = torch.cat([c, c.new_ones(1)])
        if c.shape != (4,):
            raise SceneError(f"path color must be RGB or RGBA (3 or 4 values), got shape {tuple(c.shape)}")

    @property
    def num_segments(self) -> int:
        return self.points.shape[0] // 3

    def detach(self) -> "Path":
        return Path(self.points.detach().clone(), self.color.detach().clone())


@dataclass
class Layer:
    """A named group of paths, drawn in list order (first = back).

    ``details_from``: when set, ``paths[details_from:]`` are the detail paths that refine this layer's
    shapes; the SVG writer puts them in a sub-group "details" at the front of the layer. ``paths``
    always holds every path of the layer in drawing order.
    """

    name: str
    paths: list[Path] = field(default_factory=list)
    id: str | None = None
    details_from: int | None = None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shapes(self) -> list[Path]:
        """The layer's own paths (without its details)."""
        return self.paths if self.details_from is None else self.paths[:self.details_from]

    @property
    def details(self) -> list[Path]:
        """The detail paths refining this layer (drawn in front of its shapes)."""
        return [] if self.details_from is None else self.paths[self.details_from:]


@dataclass
class Scene:
    """Layers of paths on a canvas, ``layers[0]`` at the back."""

    width: int
    height: int
    layers: list[Layer] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_canvas(self.width, self.height)

    # -- iteration -----------------------------------------------------------------------------
    def paths(self) -> Iterator[Path]:
        """All paths, back to front."""
        for layer in self.layers:
            yield from layer.paths

    @property
    def num_paths(self) -> int:
        return sum(len(layer.paths) for layer in self.layers)

    # -- tensor views for the optimiser -----------------------------------------------------
    def point_list(self) -> list[torch.Tensor]:
        return [p.points for p in self.paths()]

    def colors(self) -> torch.Tensor:
        """(N, 4) float32 RGBA, back to front (empty (0, 4) for an empty scene)."""
        cols = [p.color for p in self.paths()]
        return torch.stack(cols) if cols else torch.zeros(0, 4)

    def detach(self) -> "Scene":
        return Scene(
            self.width,
            self.height,
            [Layer(l.name, [p.detach() for p in l.paths], l.id, l.details_from) for l in self.layers],
        )

    def scaled(self, sx: float, sy: float | None = None, width: int | None = None,
               height: int | None = None) -> "Scene":
        """A copy with every point scaled by (sx, sy), on a canvas of the given size."""
        sy = sx if sy is None else sy
        w = width if width is not None else max(1, round(self.width * sx))
        h = height if height is not None else max(1, round(self.height * sy))
        scale = torch.tensor([sx, sy], dtype=torch.float32)
        return Scene(
            w, h,
            [Layer(l.name, [Path(p.points.detach() * scale, p.color.detach().clone()) for p in l.paths], l.id,
                   l.details_from)
             for l in self.layers],
        )


def polygon_to_path(vertices: torch.Tensor) -> Path:
    """Closed polygon (K, 2) → cubic path whose segments are straight lines (K segments)."""
    v = torch.as_tensor(vertices, dtype=torch.float32)
    if v.dim() != 2 or v.shape[1] != 2 or v.shape[0] < 1:
        raise SceneError(f"polygon vertices must have shape (K, 2), got {tuple(v.shape)}")
    nxt = torch.roll(v, -1, 0)
    c1 = v + (nxt - v) / 3.0
    c2 = v + (nxt - v) * (2.0 / 3.0)
    pts = torch.stack([v, c1, c2], 1).reshape(-1, 2)
    return Path(pts, torch.tensor([0.0, 0.0, 0.0, 1.0]))


def circle_path(cx: float, cy: float, r: float, segments: int = 4) -> Path:
    """A circle of radius r as S cubic arcs (standard tangent-length approximation)."""
    import math

    if segments < 1:
        raise SceneError("a circle needs at least one segment")
    pts = []
    step = 2 * math.pi / segments
    k = 4.0 / 3.0 * math.tan(step / 4.0)
    for s in range(segments):
        a0, a1 = s * step, (s + 1) * step
        p0 = (cx + r * math.cos(a0), cy + r * math.sin(a0))
        p1 = (cx + r * math.cos(a1), cy + r * math.sin(a1))
        c1 = (p0[0] - k * r * math.sin(a0), p0[1] + k * r * math.cos(a0))
        c2 = (p1[0] + k * r * math.sin(a1), p1[1] - k * r * math.cos(a1))
        pts += [p0, c1, c2]
    return Path(torch.tensor(pts, dtype=torch.float32), torch.tensor([0.0, 0.0, 0.0, 1.0]))
