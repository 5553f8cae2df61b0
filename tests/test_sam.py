"""lvss.segment.sam: automatic SAM mask generation with a tiny random SAM loaded like a real checkpoint."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
import tiny_models  # noqa: E402

from lvss.config import ConfigError, SegmentConfig  # noqa: E402
from lvss.models import load_sam  # noqa: E402
from lvss.segment.sam import SamSegmenter, box_nms, segment_sam  # noqa: E402
from lvss.types import MaskSet  # noqa: E402

LOOSE = SegmentConfig(sam_points_per_side=6, sam_pred_iou_thresh=-1e9, sam_stability_score_thresh=0.0,
                      min_area=0.002)


@pytest.fixture(scope="session")
def sam():
    return load_sam(tiny_models.sam_checkpoint(), "cpu")


@pytest.fixture(scope="session")
def image():
    return tiny_models.photo(40, 56)  # not square: exercises the long-side resize


@pytest.fixture(scope="session")
def loose_result(sam, image):
    return SamSegmenter(sam, LOOSE)(image)


def test_mask_set_shapes_and_ranges(loose_result, image):
    ms = loose_result
    h, w = image.shape[:2]
    assert isinstance(ms, MaskSet) and len(ms) >= 1
    assert ms.masks.shape == (len(ms), h, w) and ms.masks.dtype == bool
    assert ms.scores.shape == (len(ms),) and ms.scores.dtype == np.float32
    assert ((ms.scores >= 0) & (ms.scores <= 1)).all()
    assert ms.colors.shape == (len(ms), 3) and ms.colors.dtype == np.float32


def test_masks_respect_min_area_and_come_largest_first(loose_result, image):
    areas = loose_result.masks.reshape(len(loose_result), -1).sum(1)
    assert (areas >= LOOSE.min_area * image.shape[0] * image.shape[1]).all()
    assert (np.diff(areas) <= 0).all()


def test_colors_are_mean_rgb_under_each_mask(loose_result, image):
    for m, c in zip(loose_result.masks, loose_result.colors):
        np.testing.assert_allclose(c, image[m].mean(0), atol=1e-5)


def test_deterministic(sam, image, loose_result):
    again = SamSegmenter(sam, LOOSE)(image)
    assert np.array_equal(again.masks, loose_result.masks)
    assert np.array_equal(again.scores, loose_result.scores)


def test_stricter_thresholds_keep_fewer_masks(sam, image, loose_result):
    strict = SamSegmenter(sam, SegmentConfig(sam_points_per_side=6, sam_pred_iou_thresh=1e9,
                                             sam_stability_score_thresh=0.0, min_area=0.002))(image)
    assert len(strict) == 0
    assert strict.masks.shape == (0,) + image.shape[:2] and strict.colors.shape == (0, 3)
    assert len(SamSegmenter(sam, SegmentConfig(sam_points_per_side=6))(image)) <= len(loose_result)


def test_runs_on_every_level(sam, image):
    levels = [image, np.clip(image * 0.5 + 0.25, 0, 1), np.full_like(image, 0.5)]
    results = SamSegmenter(sam, SegmentConfig(**{**LOOSE.__dict__, "sam_points_per_side": 3})).segment_levels(levels)
    assert len(results) == 3
    assert all(r.masks.shape[1:] == image.shape[:2] for r in results)


def test_segment_sam_loads_from_the_config(image, loose_result):
    cfg = SegmentConfig(**{**LOOSE.__dict__, "sam_checkpoint": tiny_models.sam_checkpoint()})
    ms = segment_sam(image, cfg, device="cpu")
    assert np.array_equal(ms.masks, loose_result.masks)


def test_bad_input(sam):
    seg = SamSegmenter(sam, LOOSE)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        seg(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="float"):
        seg(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ConfigError, match="sam_points_per_side"):
        SamSegmenter(sam, SegmentConfig(sam_points_per_side=0))


def test_box_nms_suppresses_overlaps_and_keeps_best_first():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 10, 9]], dtype=torch.float32)
    scores = torch.tensor([0.5, 0.9, 0.7, 0.1])
    keep = box_nms(boxes, scores, 0.7)
    assert keep.tolist() == [1, 2]
    assert box_nms(torch.zeros(0, 4), torch.zeros(0), 0.7).numel() == 0
