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


# -- decoder, resampling, defaults, clean-up, progress and cancel -------------------------------------

def test_decoder_matches_segment_anythings_mask_decoder(sam):
    from lvss.segment.sam_decoder import decode, decode_points

    m = sam.model
    torch.manual_seed(1)
    emb = torch.randn(1, m.prompt_encoder.embed_dim, *m.prompt_encoder.image_embedding_size)
    coords = torch.rand(7, 2) * m.image_encoder.img_size
    for multimask in (True, False):
        labels = torch.ones(7, 1, dtype=torch.int)
        with torch.no_grad():
            sparse, dense = m.prompt_encoder(points=(coords[:, None], labels), boxes=None, masks=None)
            ref_low, ref_iou = m.mask_decoder(image_embeddings=emb, image_pe=m.prompt_encoder.get_dense_pe(),
                                              sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                              multimask_output=multimask)
            low, iou = decode_points(m, emb, coords, multimask)
            rows = torch.tensor([4, 1])
            some = decode(m, emb, coords, multimask).masks(rows, chunk=1)
        torch.testing.assert_close(low, ref_low, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(iou, ref_iou, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(some, ref_low[rows], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("size", [(40, 56), (56, 40), (300, 200)])
def test_logits_resampled_straight_to_the_output_match_the_reference_postprocessing(sam, size):
    from lvss.segment.sam import resample_logits

    m = sam.model
    frame = m.image_encoder.img_size
    h, w = size
    scale = frame / max(h, w)
    input_size = (int(h * scale + 0.5), int(w * scale + 0.5))
    yy, xx = torch.meshgrid(torch.arange(32.0) + 0.5, torch.arange(32.0) + 0.5, indexing="ij")
    low = torch.stack([6 - ((xx - cx) ** 2 + (yy - cy) ** 2).sqrt() for cx, cy in ((10, 8), (20, 12), (5, 5))])
    ref = m.postprocess_masks(low[:, None], input_size, (h, w))[:, 0] > 0
    out = resample_logits(low, input_size, frame, (h, w))
    assert out.shape == (3, h, w)
    iou = ((out > 0) & ref).sum((1, 2)) / ((out > 0) | ref).sum((1, 2))
    assert float(iou.min()) > 0.99


def test_masks_come_at_the_requested_output_size(sam, image):
    ms = SamSegmenter(sam, LOOSE)(image, out_size=(20, 28))
    assert len(ms) >= 1 and ms.masks.shape[1:] == (20, 28)
    with pytest.raises(ValueError, match="out_size"):
        SamSegmenter(sam, LOOSE)(image, out_size=(0, 5))


def test_sam_sees_the_image_at_its_own_input_size(sam, monkeypatch):
    """The encoder gets the image resampled to its input size (long side), whatever the mask size."""
    seen = []
    enc = sam.model.image_encoder
    orig = enc.forward
    monkeypatch.setattr(enc, "forward", lambda x: (seen.append(tuple(x.shape[-2:])), orig(x))[1])
    SamSegmenter(sam, LOOSE)(tiny_models.photo(64, 96), out_size=(16, 24))
    assert seen == [(enc.img_size, enc.img_size)]  # padded square frame
    assert SamSegmenter(sam, LOOSE).input_size == enc.img_size


def test_default_thresholds_are_segment_anythings():
    cfg = SegmentConfig()
    assert (cfg.sam_pred_iou_thresh, cfg.sam_stability_score_thresh) == (0.88, 0.95)


def test_clean_up_pass_prefers_unchanged_masks_and_drops_repeats():
    from lvss.segment.sam import _clean_and_dedup

    a = np.zeros((20, 20), bool)
    a[2:12, 2:12] = True
    b = a.copy()
    b[16, 16] = True  # an island below the minimum: cleaned away, then a repeat of a
    c = np.zeros((20, 20), bool)
    c[14:19, 0:6] = True
    masks, scores = _clean_and_dedup(np.stack([b, a, c]), np.array([0.9, 0.8, 0.7], np.float32), 4)
    assert len(masks) == 2
    assert np.array_equal(masks[0], a) and scores[0] == np.float32(0.8)  # the unchanged copy wins
    assert np.array_equal(masks[1], c)


def test_progress_per_prompt_batch_and_cancel(sam, image):
    import threading

    from lvss.optimize.structure import Cancelled
    from lvss.segment import sam as sam_mod

    cfg = SegmentConfig(**{**LOOSE.__dict__, "sam_points_per_side": 5})  # 25 prompts
    seen = []
    SamSegmenter(sam, cfg)(image, progress=lambda f, m: seen.append(f))
    batches = -(-25 // sam_mod.POINTS_PER_BATCH_CPU)
    assert len(seen) == batches + 1 and seen[-1] == 1.0 and all(np.diff(seen) > 0)
    stop = threading.Event()

    def stop_after_first(f, m):
        stop.set()

    with pytest.raises(Cancelled):
        SamSegmenter(sam, cfg)(image, progress=stop_after_first, cancel=stop)
