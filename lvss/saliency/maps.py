"""Saliency maps that need no model: a user-drawn mask image, or a uniform map.

All sources return an (H, W) float32 importance map in [0, 1] matching the image they are called with.
"""
from __future__ import annotations

import os

import numpy as np

from ..config import ConfigError


def _image_hw(image: np.ndarray) -> tuple[int, int]:
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"image must have shape (H, W, 3) or (H, W), got {arr.shape}")
    return int(arr.shape[0]), int(arr.shape[1])


def uniform_saliency(image: np.ndarray, prompt: str = "") -> np.ndarray:
    """Every pixel equally important: (H, W) float32 ones. ``prompt`` is ignored."""
    h, w = _image_hw(image)
    return np.ones((h, w), np.float32)


def load_mask_image(path: str) -> np.ndarray:
    """Read a user-drawn importance mask: (h, w) float32 in [0, 1], white = important.

    Colour images are converted to luminance; transparent pixels count as unimportant (black).
    """
    from PIL import Image, UnidentifiedImageError

    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise ConfigError(f"saliency mask {path!r} does not exist; fix saliency.mask_path (CLI --saliency mask:FILE)")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                im = Image.alpha_composite(black, rgba)
            arr = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ConfigError(f"saliency mask {path!r} is not a readable image ({e}); fix saliency.mask_path "
                          "(CLI --saliency mask:FILE)") from e
    return arr


def fit_map(saliency: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resample an (h, w) map to (height, width) (bilinear, anti-aliased when shrinking), in [0, 1]."""
    from skimage.transform import resize

    sal = np.asarray(saliency, dtype=np.float32)
    if sal.shape != (height, width):
        shrink = sal.shape[0] > height or sal.shape[1] > width
        sal = resize(sal, (height, width), order=1, mode="edge", anti_aliasing=shrink, preserve_range=True)
    return np.clip(sal, 0.0, 1.0).astype(np.float32)


class MaskSaliency:
    """A :class:`~lvss.types.SaliencySource` from a mask image file (read once): white = important.

    ``source(image, prompt)`` returns the mask resized to the image, (H, W) float32 in [0, 1]; the
    prompt is ignored.
    """

    def __init__(self, path: str):
        self.path = str(path)
        self.mask = load_mask_image(self.path)

    def __call__(self, image: np.ndarray, prompt: str = "") -> np.ndarray:
        h, w = _image_hw(image)
        return fit_map(self.mask, h, w)


__all__ = ["uniform_saliency", "load_mask_image", "fit_map", "MaskSaliency"]
