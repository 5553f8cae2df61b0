"""What nobody sees: the stretches of an outline that lie under opaque shapes drawn above it, where
the export may write it with fewer nodes.

The optimiser places visible edges to a few hundredths of a pixel, so the export merges segments
there only within :data:`lvss.geometry.repair.EXPORT_MERGE`. An edge under an opaque shape answers
to no pixel: the polish leaves it as the contour fit started it, with every step of the mask's
outline, and an outline view shows those steps. :class:`Cover` holds the opaque shapes drawn so far
by an export that goes from the front path backwards, rasterised at ``scale`` cells per pixel (a
scanline fill of each flattened contour); its :meth:`Cover.hidden` test says which points lie at
least ``margin`` pixels inside one of them (the point and the points ``margin`` away in eight
directions all inside that shape), where no pixel's coverage, anti-aliasing included, can tell where
an edge runs. Inside one shape, not inside the union: along the edge two abutting shapes share, each
covers part of the pixels, and what lies under them shows through.
:func:`lvss.geometry.merge.merge_segments` takes that test: a run of segments may become one cubic
(or, where the run's end tangents cannot follow it, a straight segment) wherever every point of the
difference that strays more than the export's tolerance is hidden, up to ``HIDDEN_REACH`` pixels
away.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .simple import flatten_closed

__all__ = ["Cover", "HIDDEN_MARGIN", "HIDDEN_REACH", "HIDDEN_RUN"]

HIDDEN_MARGIN = 1.0   # pixels inside the shapes above: what lies deeper shows in no pixel of any viewer
HIDDEN_REACH = 2.0    # pixels: how far a merged run may stray from the original where it is hidden
HIDDEN_RUN = 16       # segments: the longest run one cubic may replace in a partly hidden contour
_PIECES = 8           # straight pieces per segment when a contour is rasterised
_MAX_RASTER = 2048    # cells: the long side of the raster
_NEVER = np.iinfo(np.int32).max


class Cover:
    """Where the opaque paths added so far hide what lies under them, on a ``width`` x ``height``
    canvas."""

    def __init__(self, width: float, height: float, margin: float = HIDDEN_MARGIN):
        self.scale = max(1.0, min(4.0, _MAX_RASTER / max(width, height, 1.0)))
        self.margin = margin
        shape = (int(np.ceil(height * self.scale)), int(np.ceil(width * self.scale)))
        # the number of the first add() that covered each cell (_NEVER: none so far)
        self._since = np.full(shape, _NEVER, np.int32)
        self.level = 0      # add() calls so far: the cover as it is now, for :meth:`hidden_many`
        d = margin * self.scale
        ang = np.arange(8) * np.pi / 4
        self._offsets = sorted({(int(np.round(d * np.cos(t))), int(np.round(d * np.sin(t)))) for t in ang})
        self.empty = True

    def add(self, contours: list[np.ndarray]) -> None:
        """Add a path, as its closed cubic contours (3S, 2 each): the cells inside an odd number of
        its contours (a hole's contour lies inside its outline) that lie ``margin`` pixels inside it.
        Each path is eroded on its own: where two shapes above abut, each covers part of the pixels
        along their shared edge, and what lies under shows through there."""
        from PIL import Image, ImageDraw

        self.level += 1
        polys = [flatten_closed(c, _PIECES) * self.scale - 0.5 for c in contours if len(c) >= 3]
        if not polys:
            return
        H, W = self._since.shape
        r = int(np.ceil(self.margin * self.scale))
        lo = np.floor(np.min([p.min(0) for p in polys], 0)).astype(int) - 1
        hi = np.ceil(np.max([p.max(0) for p in polys], 0)).astype(int) + 2
        x0, y0 = max(0, lo[0]), max(0, lo[1])
        x1, y1 = min(W, hi[0]), min(H, hi[1])
        if x1 - x0 <= 2 * r or y1 - y0 <= 2 * r:
            return
        inside = np.zeros((y1 - y0 + 2 * r, x1 - x0 + 2 * r), bool)   # r cells of margin all round
        for poly in polys:
            im = Image.new("1", (inside.shape[1], inside.shape[0]), 0)
            ImageDraw.Draw(im).polygon([tuple(v) for v in (poly - (x0 - r, y0 - r)).tolist()], fill=1)
            inside ^= np.asarray(im, bool)
        # erosion by the margin: the cell and the cells ``margin`` away in eight directions (the
        # r empty cells all round stand for what lies beyond)
        deep = inside.copy()
        ny, nx = inside.shape
        for dx, dy in self._offsets:
            deep[max(0, -dy):ny - max(0, dy), max(0, -dx):nx - max(0, dx)] &= \
                inside[max(0, dy):ny - max(0, -dy), max(0, dx):nx - max(0, -dx)]
        since = self._since[y0:y1, x0:x1]
        since[deep[r:r + y1 - y0, r:r + x1 - x0] & (since == _NEVER)] = self.level - 1
        self.empty = False

    def hidden(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """The test of the shapes as they are now, points (..., 2) in pixels -> (...) bool (None
        while nothing is covered)."""
        if self.empty:
            return None
        level = self.level
        return lambda q: self._since_at(q) < level

    def hidden_many(self, levels: list[int]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """The tests of the shapes as they were at several moments, as one: (points (..., 2), which
        (...) int) -> (...) bool, each point tested against the cover as it was when :attr:`level`
        was ``levels[which]``."""
        lv = np.asarray(levels, np.int64)
        return lambda q, which: self._since_at(q) < lv[which]

    def _since_at(self, q: np.ndarray) -> np.ndarray:
        """The first add() that covered the cell of each point (..., 2) (_NEVER off the canvas)."""
        since, s = self._since, self.scale
        H, W = since.shape
        x, y = np.floor(q[..., 0] * s).astype(np.int64), np.floor(q[..., 1] * s).astype(np.int64)
        inside = (x >= 0) & (x < W) & (y >= 0) & (y < H)
        return np.where(inside, since[np.clip(y, 0, H - 1), np.clip(x, 0, W - 1)], _NEVER)

    def mostly_hidden(self, contour: np.ndarray) -> Callable[[np.ndarray], np.ndarray] | None:
        """The test, where some segment of ``contour`` is mostly hidden (else None: nothing there
        can merge further than the export's tolerance)."""
        test = self.hidden()
        if test is None or len(contour) < 6:
            return None
        seg = test(flatten_closed(contour, 4).reshape(-1, 4, 2))
        return test if (seg.sum(1) >= 3).any() else None
