"""Scene model: closed cubic Bézier paths with RGBA fills, grouped into named layers.

A path's fill is its flat ``color`` or, when ``Path.fill`` is set, a :class:`LinearGradient` or
:class:`RadialGradient` in the same pixel coordinates as its points (SVG ``userSpaceOnUse``, spread
"pad": colours beyond the first and last stop stay constant). For a gradient path ``color`` holds
the gradient's mean colour, so code that wants one colour per path keeps working.

Coordinates are in pixels of a ``width`` × ``height`` canvas, x to the right and y down (as in SVG).
A path with S segments holds 3S control points ``(P0, C1, C2, P1, C1', C2', P2, ...)``; segment k
runs from point 3k through 3k+1, 3k+2 to point 3k+3, and the last segment closes back to point 0.

No I/O lives here; see :mod:`lvss.svg` for reading and writing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import torch

# alpha at or above which an input pixel or a path counts as opaque: a translucent area of the input
# (lvss.pipeline._semi_transparent) lies below it; a path fitted a little under it (0.97) is opaque
OPAQUE_ALPHA = 0.95
# the faintest alpha of the input that still gets paths, in both modes: a soft shadow or a glow is
# mostly under half opaque (its outer fringe fainter still), and is drawn at its own alpha
FAINT_ALPHA = 0.05


class SceneError(ValueError):
    """A scene, path or canvas is invalid; the message says what to fix."""


def _check_canvas(width: int, height: int) -> None:
    for name, v in (("width", width), ("height", height)):
        if not isinstance(v, (int,)) or isinstance(v, bool):
            raise SceneError(f"canvas {name} must be an integer number of pixels, got {v!r}")
        if v <= 0:
            raise SceneError(f"canvas {name} must be > 0 pixels, got {v}")


def _stops(offsets, colors) -> tuple[torch.Tensor, torch.Tensor]:
    o = offsets if isinstance(offsets, torch.Tensor) else torch.as_tensor(offsets, dtype=torch.float32)
    c = colors if isinstance(colors, torch.Tensor) else torch.as_tensor(colors, dtype=torch.float32)
    if o.dim() != 1 or o.shape[0] < 1:
        raise SceneError(f"gradient offsets must have shape (K,) with K >= 1 stops, got {tuple(o.shape)}")
    if c.dim() == 2 and c.shape[1] == 3:
        c = torch.cat([c, c.new_ones(c.shape[0], 1)], 1)
    if c.shape != (o.shape[0], 4):
        raise SceneError(f"gradient stop colours must have shape ({o.shape[0]}, 4) (RGBA per stop), "
                         f"got {tuple(c.shape)}")
    with torch.no_grad():
        if not bool(torch.isfinite(o).all()) or not bool(torch.isfinite(c).all()):
            raise SceneError("gradient stops contain NaN or infinite values")
        if bool((o < 0).any()) or bool((o > 1).any()) or bool((o[1:] < o[:-1]).any()):
            raise SceneError(f"gradient offsets must rise from 0 to 1, got {o.tolist()}")
    return o, c


def _vec2(v, what: str) -> torch.Tensor:
    t = v if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=torch.float32)
    if t.shape != (2,):
        raise SceneError(f"gradient {what} must be a point (x, y), got shape {tuple(t.shape)}")
    return t


@dataclass
class LinearGradient:
    """Colour varies along the line ``start`` -> ``end`` (pixels): offset 0 at start, 1 at end.

    offsets: (K,) rising in [0, 1]; colors: (K, 4) straight RGBA per stop.
    """

    start: torch.Tensor
    end: torch.Tensor
    offsets: torch.Tensor
    colors: torch.Tensor

    def __post_init__(self) -> None:
        self.start, self.end = _vec2(self.start, "start"), _vec2(self.end, "end")
        self.offsets, self.colors = _stops(self.offsets, self.colors)

    def detach(self) -> "LinearGradient":
        return LinearGradient(self.start.detach().clone(), self.end.detach().clone(),
                              self.offsets.detach().clone(), self.colors.detach().clone())

    def mapped(self, sx: float, sy: float) -> "LinearGradient":
        """The same gradient after scaling the plane by (sx, sy). Its isolines map to the new isolines,
        so t(q) = (q - s') . g with s' = (sx, sy) * start and g = diag(1/sx, 1/sy) (end - start) / |end - start|^2;
        the new end is s' + g / |g|^2 (exact for non-uniform scales too)."""
        st, en = self.start.detach(), self.end.detach()
        v = en - st
        g = v / torch.tensor([sx, sy]) / (v * v).sum().clamp(min=1e-12)
        s2 = st * torch.tensor([sx, sy])
        return LinearGradient(s2, s2 + g / (g * g).sum().clamp(min=1e-12),
                              self.offsets.detach().clone(), self.colors.detach().clone())


@dataclass
class RadialGradient:
    """Colour varies with distance: offset 0 at ``focal`` (default: the centre), 1 on the circle of
    ``radius`` around ``center`` (pixels). The focal point must lie inside the circle.

    offsets: (K,) rising in [0, 1]; colors: (K, 4) straight RGBA per stop.
    """

    center: torch.Tensor
    radius: torch.Tensor
    offsets: torch.Tensor
    colors: torch.Tensor
    focal: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.center = _vec2(self.center, "center")
        if not isinstance(self.radius, torch.Tensor):
            self.radius = torch.as_tensor(float(self.radius), dtype=torch.float32)
        self.radius = self.radius.reshape(())
        r = float(self.radius.detach())
        if not math.isfinite(r) or r <= 0:
            raise SceneError(f"radial gradient radius must be > 0 pixels, got {r}")
        if self.focal is not None:
            self.focal = _vec2(self.focal, "focal point")
        self.offsets, self.colors = _stops(self.offsets, self.colors)

    def detach(self) -> "RadialGradient":
        return RadialGradient(self.center.detach().clone(), self.radius.detach().clone(),
                              self.offsets.detach().clone(), self.colors.detach().clone(),
                              None if self.focal is None else self.focal.detach().clone())

    def mapped(self, sx: float, sy: float) -> "RadialGradient":
        """Scaled by (sx, sy); a circle stays a circle, so the radius scales by sqrt(sx * sy)."""
        s = torch.tensor([sx, sy])
        return RadialGradient(self.center.detach() * s, self.radius.detach() * (abs(sx * sy) ** 0.5),
                              self.offsets.detach().clone(), self.colors.detach().clone(),
                              None if self.focal is None else self.focal.detach() * s)


Fill = LinearGradient | RadialGradient


def mean_color(fill: Fill, samples: int = 33) -> torch.Tensor:
    """(4,) the mean of a gradient's colours over its offsets 0..1 (what a flat-colour reader shows)."""
    t = torch.linspace(0.0, 1.0, samples)
    return stop_colors_at(fill.offsets.detach(), fill.colors.detach(), t).mean(0)


def stop_colors_at(offsets: torch.Tensor, colors: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(M, 4) colours of one gradient's stops at parameters t (M,), padded beyond the ends."""
    out = colors[0].expand(t.shape[0], 4)
    for k in range(offsets.shape[0] - 1):
        span = offsets[k + 1] - offsets[k]
        if float(span) <= 1e-9:
            w = (t >= offsets[k + 1]).to(colors.dtype)
        else:
            w = ((t - offsets[k]) / span).clamp(0, 1)
        out = out + w[:, None] * (colors[k + 1] - colors[k])
    return out


@dataclass
class Path:
    """One closed cubic Bézier path.

    points: (3S, 2) float32 tensor, pixels; S ≥ 1 segments, the last closing back to point 0.
    color:  (4,) float32 tensor, straight (non-premultiplied) RGBA in [0, 1].
    fill:   None for a flat ``color``, else a LinearGradient or RadialGradient (``color`` is then its
            mean colour, see :func:`mean_color`).
    """

    points: torch.Tensor
    color: torch.Tensor
    fill: Fill | None = None

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
        if self.fill is not None and not isinstance(self.fill, (LinearGradient, RadialGradient)):
            raise SceneError(f"path fill must be None, a LinearGradient or a RadialGradient, got "
                             f"{type(self.fill).__name__}")

    @property
    def num_segments(self) -> int:
        return self.points.shape[0] // 3

    def detach(self) -> "Path":
        return Path(self.points.detach().clone(), self.color.detach().clone(),
                    None if self.fill is None else self.fill.detach())

    @property
    def opaque(self) -> bool:
        """Whether the path hides what lies under it (alpha 1, every gradient stop's too)."""
        solid = float(self.color[3]) >= 1.0 - 1e-6
        return solid and (self.fill is None or bool((self.fill.colors[:, 3] >= 1.0 - 1e-6).all()))

    def scaled(self, sx: float, sy: float) -> "Path":
        """A detached copy with points (and gradient) scaled by (sx, sy)."""
        return Path(self.points.detach() * torch.tensor([sx, sy], dtype=torch.float32), self.color.detach().clone(),
                    None if self.fill is None else self.fill.mapped(sx, sy))


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
        return Scene(
            w, h,
            [Layer(l.name, [p.scaled(sx, sy) for p in l.paths], l.id, l.details_from) for l in self.layers],
        )

    def fills(self) -> list:
        """Every path's fill (None for flat), back to front."""
        return [p.fill for p in self.paths()]


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
