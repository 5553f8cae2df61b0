"""Typed results shared by the stages, and the stage interfaces.

Learned and classical implementations of a stage satisfy the same Protocol, so the pipeline never
knows which one it got.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from .scene import Scene


def check_out_size(out_size, default: tuple[int, int]) -> tuple[int, int]:
    """A segmenter's requested mask size as (height, width) ints; ``default`` when None.

    Raises ValueError naming the option when it is not two positive integers."""
    if out_size is None:
        return default
    try:
        h, w = (int(v) for v in out_size)
    except (TypeError, ValueError):
        raise ValueError(f"out_size must be (height, width) in pixels, got {out_size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"out_size must be positive (height, width), got {out_size!r}")
    return h, w


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
    """stage: short name ("simplify", "segment", "structure", ...); fraction: overall progress in [0, 1].

    preview: only in events sent when previews were asked for (:data:`ProgressCallback`): the picture
    so far, a :class:`~lvss.scene.Scene` in the input's pixel coordinates (one layer, flat colours, the
    paths as the optimiser holds them, not yet cleaned); such an event's message is empty and its
    fraction that of the last progress event."""

    stage: str
    fraction: float
    message: str = ""
    preview: Scene | None = None


ProgressCallback = Callable[[ProgressEvent], None]
"""Receives the pipeline's :class:`ProgressEvent`. A callback with an attribute ``wants_previews = True``
(or ``lvss.pipeline.run(..., previews=True)``) also receives preview events: a first one as soon as
there is a picture (layered mode: after the colour fit of the structure), then at most every ~0.5 s
while refinement and polish run. Without it no preview is ever built."""


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
class SegmentedLevels:
    """The masks of every level of a simplification sequence, at the working resolution.

    masksets: one MaskSet per level (same order as the levels); notes: what a user should know, e.g.
    "level 2: SAM found no masks; used the classical segmenter"; fallback_levels: indices of the
    levels whose masks came from the classical segmenter because the configured one found none;
    empty_levels: indices of levels left without any mask.
    """

    masksets: list[MaskSet]
    notes: list[str] = field(default_factory=list)
    fallback_levels: list[int] = field(default_factory=list)
    empty_levels: list[int] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, float]:
        """Numbers for VectorizeResult.metrics: masks, levels that fell back, levels left empty."""
        return {"masks": float(sum(len(m) for m in self.masksets)),
                "segment_fallback_levels": float(len(self.fallback_levels)),
                "segment_empty_levels": float(len(self.empty_levels))}


@dataclass
class VectorizeResult:
    """What the pipeline returns besides the scene: timings (seconds per stage), metrics, and notes
    (human-readable remarks such as a stage falling back to its classical implementation)."""

    scene: Scene
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Simplifier(Protocol):
    def __call__(self, image: np.ndarray, levels: int, seed: int) -> SimplifyResult:
        """image: (H, W, 3) float32 RGB in [0, 1]; returns levels + 1 images."""


class Segmenter(Protocol):
    def __call__(self, image: np.ndarray) -> MaskSet:
        """image: (H, W, 3) float32 RGB in [0, 1]."""


class SaliencySource(Protocol):
    def __call__(self, image: np.ndarray, prompt: str) -> np.ndarray:
        """Returns an (H, W) float32 importance map in [0, 1]."""


class Cancelled(RuntimeError):
    """The job was cancelled (its cancel event was set)."""


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise :class:`Cancelled` when ``cancel`` is set; every stage calls it between steps."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("vectorization cancelled")
