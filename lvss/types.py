"""Typed results shared by the stages, and the stage interfaces.

Learned and classical implementations of a stage satisfy the same Protocol, so the pipeline never
knows which one it got.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from .scene import Scene


def check_rgb_image(image: np.ndarray, min_side: int = 1) -> np.ndarray:
    """Validate a stage input: (H, W, 3) float RGB in [0, 1]; returns it as float32, clipped.

    Raises ValueError saying what is wrong and how to fix it.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array of shape (H, W, 3), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < min_side or image.shape[1] < min_side:
        raise ValueError(f"image must have shape (H, W, 3) RGB (drop or composite the alpha channel first) "
                         f"with sides >= {min_side}, got {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"image must be float RGB in [0, 1], got dtype {image.dtype}; divide uint8 images by 255")
    if not np.isfinite(image).all():
        raise ValueError("image contains NaN or infinite values")
    return np.clip(image.astype(np.float32, copy=False), 0.0, 1.0)


@dataclass(frozen=True)
class ProgressEvent:
    """stage: short name ("simplify", "segment", "structure", ...); fraction: overall progress in [0, 1]."""

    stage: str
    fraction: float
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class SimplifyResult:
    """levels[0] is the original; levels[k] gets coarser with k. Each (H, W, 3) float32 RGB in [0, 1]."""

    levels: list[np.ndarray]


@dataclass
class MaskSet:
    """Binary masks of one image.

    masks: (K, H, W) bool; scores: (K,) float32 (confidence, 1.0 for classical masks);
    colors: (K, 3) float32 mean RGB of the image under each mask.
    """

    masks: np.ndarray
    scores: np.ndarray
    colors: np.ndarray

    def __len__(self) -> int:
        return int(self.masks.shape[0])


@dataclass
class VectorizeResult:
    """What the pipeline returns besides the scene: timings (seconds per stage) and metrics."""

    scene: Scene
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


class Simplifier(Protocol):
    def __call__(self, image: np.ndarray, levels: int, seed: int) -> SimplifyResult:
        """image: (H, W, 3) float32 RGB in [0, 1]; returns levels + 1 images."""


class Segmenter(Protocol):
    def __call__(self, image: np.ndarray) -> MaskSet:
        """image: (H, W, 3) float32 RGB in [0, 1]."""


class SaliencySource(Protocol):
    def __call__(self, image: np.ndarray, prompt: str) -> np.ndarray:
        """Returns an (H, W) float32 importance map in [0, 1]."""
