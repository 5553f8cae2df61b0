"""Classical segmentation of a level (lvss.segment.classical)."""
from __future__ import annotations

import numpy as np
import pytest

from lvss.config import SegmentConfig
from lvss.segment.classical import segment_classical
from lvss.types import MaskSet

RED = (0.9, 0.1, 0.1)
BLUE = (0.1, 0.2, 0.9)


def _check_maskset(ms: MaskSet, h: int, w: int) -> None:
    k = len(ms)
    assert ms.masks.shape == (k, h, w) and ms.masks.dtype == bool
    assert ms.scores.shape == (k,) and np.all(ms.scores == 1.0)
    assert ms.colors.shape == (k, 3) and ms.colors.dtype == np.float32
    assert ms.masks.sum(0).max(initial=0) <= 1, "masks overlap"
    areas = ms.masks.reshape(k, -1).sum(1)
    assert np.all(np.diff(areas) <= 0), "masks not sorted by area"


def test_two_colours_two_masks():
    img = np.zeros((20, 30, 3), np.float32)
    img[:] = BLUE
    img[:, :12] = RED
    ms = segment_classical(img)
    _check_maskset(ms, 20, 30)
    assert len(ms) == 2
    assert ms.masks[0].sum() == 20 * 18 and ms.masks[1].sum() == 20 * 12
    np.testing.assert_allclose(ms.colors[0], BLUE, atol=1e-6)
    np.testing.assert_allclose(ms.colors[1], RED, atol=1e-6)
    assert ms.masks.sum(0).min() == 1  # the two masks cover everything


def test_same_colour_apart_gives_separate_masks():
    img = np.full((20, 20, 3), 1.0, np.float32)
    img[2:6, 2:6] = RED
    img[12:18, 12:18] = RED
    ms = segment_classical(img, SegmentConfig(min_area=0.0))
    assert len(ms) == 3
    assert sorted(ms.masks.reshape(3, -1).sum(1).tolist()) == [16, 36, 400 - 52]


def test_min_area_honoured():
    img = np.full((40, 40, 3), 1.0, np.float32)
    img[:, 20:] = BLUE
    img[5:8, 5:8] = RED                      # 9 px = 0.56 % of the image
    assert len(segment_classical(img, SegmentConfig(min_area=0.0))) == 3
    ms = segment_classical(img, SegmentConfig(min_area=0.01))
    assert len(ms) == 2
    assert all(m.sum() >= 0.01 * 1600 for m in ms.masks)
    _check_maskset(ms, 40, 40)


def test_uniform_and_tiny_images():
    ms = segment_classical(np.full((16, 16, 3), 0.4, np.float32))
    assert len(ms) == 1 and ms.masks[0].all()
    np.testing.assert_allclose(ms.colors[0], 0.4, atol=1e-6)
    for shape in [(1, 1, 3), (1, 5, 3), (3, 2, 3)]:
        ms = segment_classical(np.full(shape, 0.2, np.float32))
        _check_maskset(ms, shape[0], shape[1])
        assert len(ms) == 1


def test_non_flat_image_falls_back_to_graph_segmentation():
    """A noisy photo-like image still gives a few large masks, not one per pixel."""
    rng = np.random.default_rng(0)
    img = np.zeros((48, 48, 3), np.float32)
    img[:] = BLUE
    img[:, :24] = RED
    img = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1).astype(np.float32)
    ms = segment_classical(img)
    _check_maskset(ms, 48, 48)
    assert 2 <= len(ms) <= 6
    assert ms.masks[:2].sum() > 0.8 * 48 * 48


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((8, 8), np.float32), "shape"),
        (np.zeros((8, 8, 4), np.float32), "shape"),
        (np.zeros((8, 8, 3), np.uint8), "dtype"),
        (np.full((4, 4, 3), np.inf, np.float32), "infinite"),
    ],
)
def test_bad_input(image, match):
    with pytest.raises(ValueError, match=match):
        segment_classical(image)


def test_bad_min_area():
    with pytest.raises(ValueError, match="min_area"):
        segment_classical(np.zeros((4, 4, 3), np.float32), SegmentConfig(min_area=1.5))


def test_masks_at_a_smaller_output_size_sample_the_full_resolution_regions():
    from lvss.segment.classical import ClassicalSegmenter

    img = np.zeros((40, 60, 3), np.float32)
    img[:, 30:] = (1.0, 0.0, 0.0)
    img[10:30, 5:20] = (0.0, 0.0, 1.0)
    full = segment_classical(img, SegmentConfig(min_area=0.0))
    small = segment_classical(img, SegmentConfig(min_area=0.0), out_size=(20, 30))
    _check_maskset(small, 20, 30)
    assert len(small) == len(full) == 3
    # each small mask is its full-resolution region sampled at the output pixel centres (every 2nd pixel)
    for m_small, m_full, c_small, c_full in zip(small.masks, full.masks, small.colors, full.colors):
        assert np.array_equal(m_small, m_full[1::2, 1::2])
        np.testing.assert_allclose(c_small, c_full)
    seg = ClassicalSegmenter(SegmentConfig(min_area=0.0))
    assert seg.input_size == 512 and np.array_equal(seg(img, out_size=(20, 30)).masks, small.masks)
    with pytest.raises(ValueError, match="out_size"):
        segment_classical(img, out_size=(0, 3))
