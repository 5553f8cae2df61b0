"""Which pieces of the layering get the structural paths (step 4 of the layered method).

The budget rarely covers every piece of every layering mask. Two ways to spend it are compared on
the flat picture each gives (every shown piece painted with the mean of the image over the pixels it
shows), and the one closer to the image wins:

* **by area** (the default way): the largest pieces win, and the back layer's chosen pieces then grow
  over the opaque pixels nobody covers (each such pixel goes to its geodesically nearest back piece);
* **over a background**: every opaque region first gets one path underneath everything, in the
  region's most common colour, and the other paths go, one at a time, to the piece that removes the
  most squared error from the picture so far (where pieces of a layer in front already show, a piece
  behind them changes nothing). The whole share is spent, as by area: a piece whose mean matches what
  lies under it still gives the optimisation a shape to move (only pieces hidden entirely are left).

The first suits pictures whose large pieces are its main shapes (a face, the sky); the second suits
pictures whose background is cut into many pieces that touch only at corners or not at all (a
checkerboard, stripes, tiles): grown back pieces there paint whole stretches in the wrong colour.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

# the most common colour of a region is the mean of the pixels in its fullest bin of a histogram
# with this many bins per channel
MODE_BINS = 8


@dataclass
class Piece:
    """One 4-connected piece of a layering mask: its place (layer, mask index, piece index), its
    (H, W) bool mask and its flat pixel indices."""

    layer: int
    mask_index: int
    index: int
    mask: np.ndarray
    pixels: np.ndarray

    @property
    def area(self) -> int:
        return int(self.pixels.size)


@dataclass
class Choice:
    """The pieces to give paths, in the order they should be tried (a piece whose contour cannot be
    traced hands its place to the next); ``background``: one ((H, W) bool mask, (3,) colour) per
    opaque region to put under everything (empty for the way by area); ``grow``: whether the back
    layer's chosen pieces should grow over uncovered opaque pixels; ``error``: the flat picture's
    squared error (None where there was nothing to compare: every piece gets a path)."""

    order: list[int]
    background: list[tuple[np.ndarray, np.ndarray]]
    grow: bool
    error: float | None


def area_order(pieces: list[Piece]) -> list[int]:
    """Indices of ``pieces``, largest first (ties: the back-most layer, then the mask's and the piece's
    order)."""
    return sorted(range(len(pieces)), key=lambda i: (-pieces[i].area, pieces[i].layer, pieces[i].mask_index,
                                                     pieces[i].index))


def grow_back(back: list[np.ndarray], covered: np.ndarray, valid: np.ndarray) -> np.ndarray | None:
    """(H, W) int labels: every opaque pixel (``valid``) that no chosen piece ``covered`` goes to the
    nearest of the back layer's masks ``back`` (geodesically, through such pixels), labelled 1 + its
    index; a mask keeps its own pixels. None when nothing is uncovered."""
    gaps = valid & ~covered
    if not gaps.any():
        return None
    markers = np.zeros(valid.shape, np.int32)
    for i, m in enumerate(back):
        markers[m & (markers == 0)] = i + 1
    # imported only here: scikit-image's watershed imports skimage.morphology (with scipy.spatial and
    # scipy.linalg), which a picture whose paths already cover the canvas does not need
    from skimage.segmentation import watershed

    return watershed(np.zeros(valid.shape, np.uint8), markers, mask=gaps | (markers > 0))


def _flat_error(owner: np.ndarray, image: np.ndarray, valid: np.ndarray) -> float:
    """Squared error of the picture where every owner (>= 0) shows the mean of its pixels, over the
    opaque pixels; pixels owned by nobody count against the mean of all opaque pixels."""
    own = owner[valid]
    img = image[valid]
    if img.shape[0] == 0:
        return 0.0
    shown = own >= 0
    total = float(((img[~shown] - img.mean(0)) ** 2).sum())
    o, shown_img = own[shown], img[shown]
    if o.size:
        n = np.bincount(o).astype(np.float64)
        s = np.stack([np.bincount(o, shown_img[:, c], minlength=n.size) for c in range(img.shape[1])], 1)
        nz = n > 0
        total += float((shown_img ** 2).sum()) - float(((s[nz] ** 2).sum(1) / n[nz]).sum())
    return max(total, 0.0)


def _by_area(pieces: list[Piece], budget: int, shape: tuple[int, int], image: np.ndarray,
             valid: np.ndarray) -> Choice:
    order = area_order(pieces)
    chosen = order[:budget]
    owner = np.full(valid.size, -1, np.int64)
    for i in sorted(chosen, key=lambda i: pieces[i].layer):
        owner[pieces[i].pixels] = i
    if chosen:
        back_layer = min(pieces[i].layer for i in chosen)
        back = [i for i in chosen if pieces[i].layer == back_layer]
        grown = grow_back([pieces[i].mask for i in back], (owner >= 0).reshape(shape), valid.reshape(shape))
        if grown is not None:
            grown = grown.reshape(-1)
            fill = (owner < 0) & valid & (grown > 0)
            owner[fill] = np.asarray(back)[grown[fill] - 1]
    return Choice(order, [], True, _flat_error(owner, image, valid))


def mode_colour(pixels: np.ndarray) -> np.ndarray:
    """Mean colour of the fullest bin of a coarse colour histogram of ``pixels`` (N, 3) in [0, 1]."""
    q = np.clip((pixels * MODE_BINS).astype(np.int64), 0, MODE_BINS - 1)
    key = (q[:, 0] * MODE_BINS + q[:, 1]) * MODE_BINS + q[:, 2]
    fullest = np.argmax(np.bincount(key))
    return pixels[key == fullest].mean(0)


def _over_background(pieces: list[Piece], budget: int, shape: tuple[int, int], image: np.ndarray,
                     valid: np.ndarray, min_pixels: int, under: np.ndarray | None = None) -> Choice | None:
    from scipy import ndimage

    regions, count = ndimage.label((valid if under is None else under).reshape(shape))
    regions = regions.reshape(-1)
    sizes = np.bincount(regions, minlength=count + 1)
    kept = [r for r in range(1, count + 1) if sizes[r] >= min_pixels]
    if not kept or len(kept) >= budget:
        return None
    background = []
    paint = np.zeros_like(image)
    owner = np.full(valid.size, -1, np.int64)
    top = np.full(valid.size, -1, np.int64)
    for b, r in enumerate(sorted(kept, key=lambda r: -sizes[r])):
        m = regions == r
        px = np.flatnonzero(m)
        colour = mode_colour(image[px])
        background.append((m.reshape(shape), colour))
        paint[px] = colour
        owner[px] = len(pieces) + b
    n_bg = len(background)
    means = [image[p.pixels].mean(0) for p in pieces]

    def gain(i: int) -> float:
        p = pieces[i]
        px = p.pixels[top[p.pixels] < p.layer]
        if px.size == 0:
            return -np.inf   # hidden behind pieces in front: a path there would show nothing
        img = image[px]
        return float(((img - paint[px]) ** 2).sum() - ((img - means[i]) ** 2).sum())

    heap = [(-gain(i), i) for i in range(len(pieces))]
    heapq.heapify(heap)
    order: list[int] = []
    want = budget - n_bg
    # a few more than the budget, for pieces whose contour cannot be traced
    while heap and len(order) < want + 16:
        _, i = heapq.heappop(heap)
        fresh = gain(i)
        if heap and fresh < -heap[0][0]:
            heapq.heappush(heap, (-fresh, i))
            continue
        if fresh == -np.inf:
            break
        order.append(i)
        if len(order) <= want:
            p = pieces[i]
            px = p.pixels[top[p.pixels] < p.layer]
            paint[px] = means[i]
            owner[px] = i
            top[px] = p.layer
    return Choice(order, background, False, _flat_error(owner, image, valid))


def choose(pieces: list[Piece], budget: int, image: np.ndarray, valid: np.ndarray,
           min_pixels: int = 1, under: np.ndarray | None = None) -> Choice:
    """The better of the two ways (module doc) to spend ``budget`` paths on ``pieces``.

    image: (H, W, 3) float RGB; valid: (H, W) bool, the opaque pixels; under: (H, W) bool, where a
    background path may go (default ``valid``; not under translucent areas). A picture the budget
    covers piece for piece keeps the way by area (nothing to choose)."""
    if len(pieces) <= budget:
        return Choice(area_order(pieces), [], True, None)
    shape = valid.shape
    img = np.asarray(image, np.float64).reshape(-1, 3)
    flat_valid = np.asarray(valid, bool).reshape(-1)
    by_area = _by_area(pieces, budget, shape, img, flat_valid)
    over = _over_background(pieces, budget, shape, img, flat_valid, min_pixels,
                            None if under is None else np.asarray(under, bool).reshape(-1))
    return over if over is not None and over.error < by_area.error else by_area
