"""Classical (no weights) segmentation of one simplified level: step 2 of the layered method without SAM.

A simplified level is piecewise flat, so its regions are exactly the 4-connected components of equal
colour. An image that is not flat (a photograph given as is, e.g. the original ``I_0``) falls back to
Felzenszwalb's graph segmentation, which groups similar neighbouring pixels instead.
"""
from __future__ import annotations

import math

import numpy as np

from ..config import SegmentConfig
from ..types import MaskSet, check_out_size, check_rgb_image

# share of 4-neighbour pixel pairs with identical colour above which an image counts as piecewise flat
_FLAT_SHARE = 0.6
# graph segmentation of non-flat images
_GRAPH_SCALE = 100.0
_GRAPH_MIN_SIZE = 20


def _colour_keys(image: np.ndarray) -> np.ndarray:
    """(H, W) int64: one key per 8-bit-quantised colour."""
    q = np.rint(image * 255.0).astype(np.int64)
    return (q[..., 0] << 16) | (q[..., 1] << 8) | q[..., 2]


def _flat_share(keys: np.ndarray) -> float:
    same = np.count_nonzero(keys[:, 1:] == keys[:, :-1]) + np.count_nonzero(keys[1:, :] == keys[:-1, :])
    pairs = keys[:, 1:].size + keys[1:, :].size
    return 1.0 if pairs == 0 else same / pairs


def segment_labels(image: np.ndarray, cfg: SegmentConfig | None = None) -> np.ndarray:
    """(H, W) int region labels 0..R-1 of an (H, W, 3) float RGB image (see module doc)."""
    from skimage.measure import label as connected

    cfg = cfg or SegmentConfig()
    img = check_rgb_image(image, min_side=1)
    h, w = img.shape[:2]
    keys = _colour_keys(img)
    if _flat_share(keys) >= _FLAT_SHARE:
        # equal-colour components; keys are >= 0 so shift by one to keep 0 as "no background"
        return connected(keys + 1, background=0, connectivity=1) - 1
    from skimage.segmentation import felzenszwalb

    # scale: Felzenszwalb's merge threshold (larger = bigger regions); min_size in pixels
    min_size = max(_GRAPH_MIN_SIZE, int(math.ceil(cfg.min_area * h * w)))
    labels = felzenszwalb(img, scale=_GRAPH_SCALE, sigma=0.8, min_size=min_size)
    return connected(labels + 1, background=0, connectivity=1) - 1


def segment_classical(image: np.ndarray, cfg: SegmentConfig | None = None,
                      out_size: tuple[int, int] | None = None) -> MaskSet:
    """Masks of one (simplified) level.

    image: (H, W, 3) float RGB in [0, 1]. Returns a :class:`MaskSet` with ``masks`` (K, h, w) bool,
    non-overlapping, sorted by area (pixels) descending; ``scores`` (K,) ones; ``colors`` (K, 3) float32
    mean RGB of the image under each region. (h, w) is ``out_size``, default (H, W): regions are found at
    the image's resolution and their label map is sampled at the output pixels' centres. Regions smaller
    than ``cfg.min_area * h * w`` output pixels are left out, so the masks need not cover the image.
    """
    cfg = cfg or SegmentConfig()
    if not (isinstance(cfg.min_area, (int, float)) and 0.0 <= cfg.min_area < 1.0):
        raise ValueError(f"min_area must be a fraction of the image in [0, 1), got {cfg.min_area!r}")
    img = check_rgb_image(image, min_side=1)
    H, W = img.shape[:2]
    h, w = check_out_size(out_size, (H, W))
    labels = segment_labels(img, cfg)
    r = int(labels.max()) + 1
    full = labels.ravel()
    sums = np.stack([np.bincount(full, img[..., c].ravel(), minlength=r) for c in range(3)], 1)
    mean = sums / np.maximum(np.bincount(full, minlength=r), 1)[:, None]
    if (h, w) != (H, W):  # nearest sampling at the output pixel centres
        yi = np.minimum(((np.arange(h) + 0.5) * H / h).astype(np.int64), H - 1)
        xi = np.minimum(((np.arange(w) + 0.5) * W / w).astype(np.int64), W - 1)
        labels = labels[yi[:, None], xi[None, :]]
    flat = labels.ravel()
    area = np.bincount(flat, minlength=r)
    keep = np.flatnonzero(area >= max(1.0, cfg.min_area * h * w))
    keep = keep[np.argsort(-area[keep], kind="stable")]
    masks = labels[None, :, :] == keep[:, None, None]
    colors = mean[keep].astype(np.float32).reshape(-1, 3)
    return MaskSet(masks=masks.reshape(len(keep), h, w), scores=np.ones(len(keep), np.float32),
                   colors=colors)


# The long side the classical segmenter is given at most. On the 512-px astronaut photograph with
# 256-px output masks, graph segmentation at 512 px took 1.0 s of CPU and gave 266 regions; at 1024 px
# (upsampled) 7.4 s for 239 regions: beyond 512 px the cost grows much faster than the detail.
CLASSICAL_INPUT_SIZE = 512


class ClassicalSegmenter:
    """A :class:`~lvss.types.Segmenter` around :func:`segment_classical`:
    ``segmenter(image, out_size=None, progress=None, cancel=None) -> MaskSet``."""

    input_size = CLASSICAL_INPUT_SIZE

    def __init__(self, cfg: SegmentConfig | None = None):
        self.cfg = cfg or SegmentConfig()

    def __call__(self, image: np.ndarray, out_size: tuple[int, int] | None = None, progress=None,
                 cancel=None) -> MaskSet:
        ms = segment_classical(image, self.cfg, out_size)
        if progress is not None:
            progress(1.0, f"{len(ms)} regions")
        return ms


__all__ = ["segment_classical", "segment_labels", "ClassicalSegmenter", "CLASSICAL_INPUT_SIZE"]
