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

    from lvss.types import Cancelled
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


# -- crop layers ---------------------------------------------------------------------------------------

class _ColourSam:
    """A SAM stand-in that sees what SAM would see: its "embedding" is the image (or crop) it was given,
    recorded with its size, and a point prompt's masks are the region of one colour under the point,
    drawn into the encoder's padded frame at the decoder's low resolution (a quarter of the frame).
    Its masks therefore lie where the objects are, whichever crop found them."""

    def __init__(self, sam, monkeypatch):
        from skimage.measure import label

        from lvss.segment import sam_decoder
        from lvss.segment.sam_decoder import PointDecoding

        self.seen: list[tuple[int, int]] = []
        frame = sam.model.image_encoder.img_size

        def embed(seg, image):
            self.seen.append(image.shape[:2])
            h, w = image.shape[:2]
            s = frame / max(h, w)
            return torch.from_numpy(np.ascontiguousarray(image)), (int(h * s + 0.5), int(w * s + 0.5))

        def decode(model, emb, coords, multimask=True):
            img = emb.numpy()
            h, w = img.shape[:2]
            s = frame / max(h, w)
            nh, nw = int(h * s + 0.5), int(w * s + 0.5)
            regions = label((img * 255).round().astype(np.int64) @ np.array([65536, 256, 1]) + 1, background=0,
                            connectivity=1)
            low = []
            for x, y in (coords.numpy() / s).tolist():
                r, c = min(int(y), h - 1), min(int(x), w - 1)
                m = torch.from_numpy(regions == regions[r, c]).float()[None, None]
                canvas = torch.zeros(1, 1, frame, frame)
                canvas[..., :nh, :nw] = torch.nn.functional.interpolate(m, size=(nh, nw), mode="area")
                low.append(torch.nn.functional.avg_pool2d(canvas, 4)[0, 0])
            low = (torch.stack(low)[:, None].expand(-1, 3, -1, -1) - 0.5) * 20.0
            return PointDecoding(torch.full((len(low), 3), 0.99), True, _low=low)

        monkeypatch.setattr(SamSegmenter, "_embed", embed)
        monkeypatch.setattr(sam_decoder, "decode", decode)


def _objects():
    """A 256 x 384 picture on white: A (red box) and B (blue disc) sit on the whole image's 2 x 2 prompt
    grid, C (green box) only on a grid point of the first crop."""
    H0, W0 = 256, 384
    yy, xx = np.mgrid[:H0, :W0]
    a = (yy >= 30) & (yy < 100) & (xx >= 40) & (xx < 130)
    b = (yy - 192) ** 2 + (xx - 288) ** 2 < 35 ** 2
    c = (yy >= 100) & (yy < 136) & (xx >= 155) & (xx < 200)
    img = np.ones((H0, W0, 3), np.float32)
    img[a], img[b], img[c] = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)
    return img, {"background": ~(a | b | c), "A": a, "B": b, "C": c}


def _small(mask: np.ndarray, size) -> np.ndarray:
    from lvss.stages import resample_masks

    return resample_masks(mask[None], size)[0]


@pytest.mark.parametrize("layers", [0, 1])
def test_crop_layers_run_every_crop_and_merge_masks_into_image_coordinates(sam, monkeypatch, layers):
    img, objects = _objects()
    stand_in = _ColourSam(sam, monkeypatch)
    cfg = SegmentConfig(sam_points_per_side=2, sam_pred_iou_thresh=0.5, sam_stability_score_thresh=0.5,
                        min_area=0.001, sam_crop_layers=layers)
    out = (64, 96)
    ms = SamSegmenter(sam, cfg)(img, out_size=out)
    # the whole image, then segment-anything's four overlapping crops of layer 1, each at its own size
    crops = [(172, 236), (171, 236), (172, 235), (171, 235)] if layers else []
    assert stand_in.seen == [(256, 384)] + crops
    assert ms.masks.shape[1:] == out
    matched = {}
    for k, m in enumerate(ms.masks):
        best = max(objects, key=lambda n: _iou(m, _small(objects[n], out)))
        assert _iou(m, _small(objects[best], out)) > 0.8, best   # in full-image coordinates
        matched.setdefault(best, []).append(k)
    # every object once: found by several crops (A by the whole image and crop 1), kept once after NMS
    # across crops; the background runs into every crop's inner edges, so only the whole image keeps it;
    # C lies on no prompt of the whole image and is found only with crops
    want = ["A", "B", "background"] + (["C"] if layers else [])
    assert sorted(matched) == sorted(want) and all(len(v) == 1 for v in matched.values())


def _iou(a, b):
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_a_crop_mask_cut_by_the_crops_inner_edge_is_dropped_and_logits_outside_are_empty():
    from lvss.segment.sam import OUTSIDE_LOGIT, _Region, resample_logits

    region = _Region((148, 0, 384, 172), (256, 384), (64, 96))    # top-right crop of layer 1
    assert region.window == (37.0, 0.0, 96.0, 43.0)
    boxes = torch.tensor([[45.0, 2.0, 60.0, 20.0],    # clear of the crop's inner edges (left, bottom)
                          [37.0, 5.0, 50.0, 20.0],    # on the crop's left edge, inside the image: cut
                          [60.0, 30.0, 95.0, 42.0],   # on the bottom edge of the crop: cut
                          [70.0, 0.0, 95.0, 10.0]])   # on the image's top and right edges: kept
    assert region.near_inner_edge(boxes).tolist() == [False, True, True, False]
    low = torch.full((1, 32, 32), 5.0)
    logits = resample_logits(low, (93, 128), 128, (64, 96), region.window)
    torch.testing.assert_close(logits[0, :43, 37:], torch.full((43, 59), 5.0))
    assert (logits[0, 43:] == OUTSIDE_LOGIT).all() and (logits[0, :, :37] == OUTSIDE_LOGIT).all()


def test_crop_layers_in_the_config_and_on_the_command_line():
    from lvss.cli import build_parser, config_from_args
    from lvss.config import VectorizeConfig

    assert SegmentConfig().sam_crop_layers == 0
    with pytest.raises(ConfigError, match="sam_crop_layers"):
        VectorizeConfig(segment=SegmentConfig(sam_crop_layers=4))
    with pytest.raises(ConfigError, match="sam_crop_layers"):
        SamSegmenter.__init__(object.__new__(SamSegmenter), None, SegmentConfig(sam_crop_layers=-1))
    args = build_parser().parse_args(["vectorize", "in.png", "-o", "out.svg", "--sam-crop-layers", "2"])
    assert config_from_args(args).segment.sam_crop_layers == 2
    args = build_parser().parse_args(["vectorize", "in.png", "-o", "out.svg"])
    assert config_from_args(args).segment.sam_crop_layers == 0


def test_with_crop_layers_level_zero_comes_from_the_original_at_a_size_the_crops_can_use(sam, monkeypatch):
    """With one crop layer the segmenter asks for the original at twice the encoder's size, so each crop
    (about half the image plus the overlap) is seen at about the encoder's own resolution."""
    from lvss import stages
    from lvss.config import VectorizeConfig

    frame = sam.model.image_encoder.img_size
    cfg = VectorizeConfig(segment=SegmentConfig(**{**LOOSE.__dict__, "sam_points_per_side": 2, "sam_crop_layers": 1}))
    seg = SamSegmenter(sam, cfg.segment)
    assert seg.input_size == 2 * frame and SamSegmenter(sam, LOOSE).input_size == frame
    seen = []
    orig = SamSegmenter._embed
    monkeypatch.setattr(SamSegmenter, "_embed",
                        lambda self, image: (seen.append(image.shape[:2]), orig(self, image))[1])
    source = (tiny_models.photo(600, 800) * 255).astype(np.uint8)
    levels = [tiny_models.photo(24, 32), tiny_models.photo(24, 32) * 0.5]
    out = stages.segment_levels(cfg, levels, source=source, segmenter=seg)
    assert seen[0] == (192, 256)                          # the original at 2 x 128 px, not the working size
    assert all(max(s) > frame for s in seen[1:5])          # four crops, each above 128 px
    assert seen[5:] == [(24, 32)]                          # a coarse level is not cropped: nothing to gain
    assert [ms.masks.shape[1:] for ms in out.masksets] == [(24, 32)] * 2
    # layers are used only while they add pixels the encoder would not see
    two = SamSegmenter(sam, SegmentConfig(sam_crop_layers=2))
    assert [two.crop_layers_for(n) for n in (64, 128, 129, 256, 257, 1000)] == [0, 0, 1, 1, 2, 2]


class _DiscSam:
    """A SAM stand-in whose three multimask candidates for a prompt are discs around the prompt point,
    with set predicted IoUs and set logit slopes (a soft edge gives a low stability score):
    radius 28 px, IoU 0.87, sharp; radius 20, IoU 0.90, sharp; radius 12, IoU 0.90, soft."""

    CANDIDATES = ((28.0, 0.87, 5.0), (20.0, 0.90, 5.0), (12.0, 0.90, 0.3))

    def __init__(self, sam, monkeypatch):
        from lvss.segment import sam_decoder
        from lvss.segment.sam_decoder import PointDecoding

        frame = sam.model.image_encoder.img_size
        low_px = frame / 4                                     # the decoder's low-resolution grid
        centres = (torch.arange(int(low_px)) + 0.5) * 4.0

        def decode(model, emb, coords, multimask=True):
            yy, xx = torch.meshgrid(centres, centres, indexing="ij")
            low, iou = [], []
            for x, y in coords.tolist():
                d = ((xx - x) ** 2 + (yy - y) ** 2).sqrt()
                low.append(torch.stack([slope * (r - d) for r, _, slope in self.CANDIDATES]))
                iou.append([p for _, p, _ in self.CANDIDATES])
            return PointDecoding(torch.tensor(iou), True, _low=torch.stack(low))

        monkeypatch.setattr(sam_decoder, "decode", decode)


def test_the_configured_thresholds_are_the_ones_applied(sam, monkeypatch):
    _DiscSam(sam, monkeypatch)
    image = tiny_models.photo(128, 128)                      # the encoder's own size: one pixel per frame pixel

    def run(**kw):
        cfg = SegmentConfig(**{"sam_points_per_side": 2, "min_area": 0.0, **kw})
        ms = SamSegmenter(sam, cfg)(image)
        radii = sorted({int(round(float(np.sqrt(a / np.pi)))) for a in ms.masks.reshape(len(ms), -1).sum(1)})
        return len(ms), radii, sorted({round(float(s), 2) for s in ms.scores})

    # segment-anything's defaults (IoU > 0.88, stability >= 0.95): only the sharp IoU-0.90 disc per prompt
    assert SegmentConfig().sam_pred_iou_thresh == 0.88 and SegmentConfig().sam_stability_score_thresh == 0.95
    assert run() == (4, [20], [0.9])
    # a looser stability threshold lets the soft disc through; a looser IoU threshold the 0.87 one
    assert run(sam_stability_score_thresh=0.3) == (8, [12, 20], [0.9])
    n, radii, scores = run(sam_stability_score_thresh=0.3, sam_pred_iou_thresh=0.86)
    assert n >= 10 and radii[:2] == [12, 20] and radii[-1] >= 24 and scores == [0.87, 0.9]
