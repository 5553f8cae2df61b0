"""SAM segmentation: segment-anything's automatic mask generation on each level of the sequence.

The image is embedded at SAM's own input size (1024 px long side for the released models; pass the
image at up to that size, see :func:`lvss.stages.segment_levels`). A regular grid of point prompts
(``SegmentConfig.sam_points_per_side`` per side, segment-anything's ``build_point_grid``) is fed to the
mask decoder in batches; every point yields the decoder's multimask candidates, which are kept when

* the predicted IoU exceeds ``sam_pred_iou_thresh`` (default 0.88, segment-anything's generator),
* the stability score (IoU of the mask thresholded at logit +1 and -1) reaches
  ``sam_stability_score_thresh`` (default 0.95, idem),

then de-duplicated by box non-maximum suppression (IoU 0.7), cleaned of holes and islands smaller than
``min_area`` of the image, de-duplicated again with the cleaned masks (preferring masks the clean-up
left unchanged, as the generator's small-region post-processing does), and dropped when their area is
below ``min_area``. Masks are returned at the requested output size (the working resolution): SAM's
low-resolution logits are resampled straight to it, instead of through the 1024-px frame.

Single crop layer; the decoder runs through :mod:`lvss.segment.sam_decoder` (same arithmetic, fewer
copies) so no torchvision is needed (segment-anything's own generator imports it). Progress is
reported and cancellation checked after every batch of prompts.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ConfigError, SegmentConfig
from ..types import MaskSet, check_out_size, check_rgb_image

# prompts per decoder batch: segment-anything's default on a GPU; on a CPU smaller batches keep the
# (batch, 4096, 256) activations out of fresh page-faulted allocations (bench/models.py --sam-cpu)
POINTS_PER_BATCH = 64
POINTS_PER_BATCH_CPU = 8
HEAD_CHUNK_CPU = 2
BOX_NMS_THRESH = 0.7
STABILITY_OFFSET = 1.0


def _check_cfg(cfg: SegmentConfig) -> None:
    if not isinstance(cfg.sam_points_per_side, int) or cfg.sam_points_per_side < 1:
        raise ConfigError(f"sam_points_per_side must be an integer >= 1, got {cfg.sam_points_per_side!r}")
    if not 0.0 <= cfg.min_area < 1.0:
        raise ConfigError(f"min_area must be a fraction of the image in [0, 1), got {cfg.min_area}")


def box_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_thresh: float) -> torch.Tensor:
    """Greedy non-maximum suppression. boxes: (N, 4) xyxy pixels; scores: (N,). Returns kept indices
    (highest score first)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    boxes = boxes.float().cpu()
    order = torch.argsort(scores.float().cpu(), descending=True, stable=True)
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    iou = inter / (area[:, None] + area[None, :] - inter).clamp(min=1e-9)
    suppressed = np.zeros(len(b), dtype=bool)
    iou_np = iou.numpy()
    keep = []
    for i in range(len(b)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou_np[i] > iou_thresh
    return order[torch.as_tensor(keep, dtype=torch.long)]


def _clean(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """Fill holes and drop islands smaller than ``min_pixels`` (segment-anything's region clean-up)."""
    if min_pixels <= 0:
        return mask
    from skimage.morphology import remove_small_holes, remove_small_objects

    try:  # scikit-image >= 0.26 names the limit max_size (inclusive)
        out = remove_small_holes(mask, max_size=min_pixels)
        return remove_small_objects(out, max_size=min_pixels)
    except TypeError:
        out = remove_small_holes(mask, area_threshold=min_pixels)
        return remove_small_objects(out, min_size=min_pixels + 1)


@dataclass
class _Candidates:
    masks: list
    scores: list
    boxes: list


class SamSegmenter:
    """Automatic SAM mask generation with a loaded model:
    ``segmenter(image, out_size=None, progress=None, cancel=None) -> MaskSet``.

    model: a :class:`lvss.models.SamModel`; cfg: thresholds and grid density.
    """

    def __init__(self, model, cfg: SegmentConfig | None = None):
        self.sam = model
        self.cfg = cfg or SegmentConfig()
        _check_cfg(self.cfg)

    # SAM's preprocessing: long side to the encoder's input size, pixels in 0..255, normalised & padded
    def _embed(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        from ..models import autocast

        model, dev = self.sam.model, self.sam.device
        size = model.image_encoder.img_size
        h, w = image.shape[:2]
        scale = size / max(h, w)
        nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
        x = torch.from_numpy(image).to(dev).permute(2, 0, 1)[None] * 255.0
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        with torch.no_grad(), autocast(dev):
            emb = model.image_encoder(model.preprocess(x[0].clamp(0, 255))[None])
        return emb.float(), (nh, nw)

    def _batch(self, emb, points: torch.Tensor, input_size, out_size) -> tuple | None:
        """Masks (M, h, w) bool at ``out_size``, IoU predictions (M,), boxes (M, 4) for one batch of point
        prompts given in encoder-input pixels; None when no candidate passes the thresholds."""
        from .sam_decoder import decode

        model = self.sam.model
        with torch.no_grad():
            dec = decode(model, emb, points, multimask=True)
            keep = dec.iou > self.cfg.sam_pred_iou_thresh  # (B, 3): filter before running the mask head
            rows = torch.nonzero(keep.any(1))[:, 0]
            if rows.numel() == 0:
                return None
            chunk = HEAD_CHUNK_CPU if emb.device.type == "cpu" else len(rows)
            low = dec.masks(rows, chunk=chunk)[keep[rows]]  # (M, 4h, 4w), row-major like the generator
            iou = dec.iou[rows][keep[rows]]
            logits = resample_logits(low, input_size, model.image_encoder.img_size, out_size)
        thr = model.mask_threshold
        inter = (logits > thr + STABILITY_OFFSET).sum((-1, -2)).float()
        union = (logits > thr - STABILITY_OFFSET).sum((-1, -2)).float()
        stability = inter / union.clamp(min=1)
        keep = (stability >= self.cfg.sam_stability_score_thresh) & (union > 0)
        masks = logits[keep] > thr
        if masks.shape[0] == 0:
            return None
        _, amg = _sam_utils()
        boxes = amg.batched_mask_to_box(masks)
        return masks.cpu(), iou[keep].cpu(), boxes.float().cpu()

    @property
    def input_size(self) -> int:
        """Long side in pixels of the images SAM's encoder takes (1024 for the released models)."""
        return int(self.sam.model.image_encoder.img_size)

    def __call__(self, image: np.ndarray, out_size: tuple[int, int] | None = None,
                 progress: Callable[[float, str], None] | None = None,
                 cancel: threading.Event | None = None) -> MaskSet:
        """Automatic masks of one image.

        image: (H, W, 3) float32 RGB in [0, 1], best at up to :attr:`input_size` on the long side
        (larger images are resampled down to it, smaller ones up). out_size: (h, w) of the returned masks
        (default the image's). Returns a MaskSet with (K, h, w) bool masks, largest first, scores =
        predicted IoU clipped to [0, 1], colors = mean RGB of the image under each mask.
        progress(fraction within this image, message) is called after every batch of prompts, and
        ``cancel`` (a threading.Event) is checked there: raises :class:`lvss.optimize.structure.Cancelled`.
        """
        from ..optimize.structure import check_cancel

        image = check_rgb_image(image, min_side=2)
        h0, w0 = image.shape[:2]
        h, w = check_out_size(out_size, (h0, w0))
        cfg = self.cfg
        _, amg = _sam_utils()
        check_cancel(cancel)
        emb, input_size = self._embed(image)
        # segment-anything's point grid over the image, in encoder-input pixels
        grid = amg.build_point_grid(cfg.sam_points_per_side) * np.array([[input_size[1], input_size[0]]])
        points = torch.as_tensor(grid, dtype=torch.float32, device=self.sam.device)
        per_batch = POINTS_PER_BATCH_CPU if self.sam.device.type == "cpu" else POINTS_PER_BATCH
        n_batches = -(-len(points) // per_batch)
        if progress is not None:
            progress(1.0 / (n_batches + 1), "SAM image embedding done")
        found = _Candidates([], [], [])
        for i, start in enumerate(range(0, len(points), per_batch)):
            check_cancel(cancel)
            out = self._batch(emb, points[start:start + per_batch], input_size, (h, w))
            if out is not None:
                found.masks.append(out[0]), found.scores.append(out[1]), found.boxes.append(out[2])
            if progress is not None:
                progress((i + 2) / (n_batches + 1), f"SAM prompts {min(start + per_batch, len(points))}/{len(points)}")
        small = _resize_image(image, (h, w))
        if not found.masks:
            return _mask_set(np.zeros((0, h, w), bool), np.zeros(0, np.float32), small)
        masks = torch.cat(found.masks)
        scores = torch.cat(found.scores)
        keep = box_nms(torch.cat(found.boxes), scores, BOX_NMS_THRESH)
        masks, scores = masks[keep].numpy(), scores[keep].numpy()
        min_pixels = int(round(cfg.min_area * h * w))
        if min_pixels > 0:
            masks, scores = _clean_and_dedup(masks, scores, min_pixels)
        areas = masks.reshape(len(masks), -1).sum(1)
        ok = (areas >= max(min_pixels, 1))
        masks, scores, areas = masks[ok], scores[ok], areas[ok]
        order = np.argsort(-areas, kind="stable")
        return _mask_set(masks[order], np.clip(scores[order], 0.0, 1.0).astype(np.float32), small)

    def segment_levels(self, levels: list[np.ndarray]) -> list[MaskSet]:
        """Run on every level of a simplification sequence (SimplifyResult.levels), masks at each
        level's own size."""
        return [self(level) for level in levels]


def resample_logits(low: torch.Tensor, input_size: tuple[int, int], frame: int,
                    out_size: tuple[int, int]) -> torch.Tensor:
    """SAM's low-resolution mask logits (M, Lh, Lw), which cover the padded ``frame`` × ``frame``
    encoder input whose top-left ``input_size`` (nh, nw) pixels hold the image, resampled bilinearly to
    (M, h, w) = ``out_size`` over the image only. One interpolation, in place of segment-anything's
    upsampling to the full frame followed by a resize to the original size."""
    m = low.shape[0]
    h, w = out_size
    if m == 0:
        return low.new_zeros((0, h, w))
    nh, nw = input_size
    dev = low.device
    # pixel centres of the output, in the frame's normalised coordinates (align_corners=False)
    ys = ((torch.arange(h, device=dev, dtype=torch.float32) + 0.5) * (nh / h)) * (2.0 / frame) - 1.0
    xs = ((torch.arange(w, device=dev, dtype=torch.float32) + 0.5) * (nw / w)) * (2.0 / frame) - 1.0
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)[None]  # (1, h, w, 2) as (x, y)
    out = F.grid_sample(low.float()[None], grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0]


def _resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) float32 resampled to ``size`` (h, w) with area averaging (for mask colours)."""
    if image.shape[:2] == tuple(size):
        return image
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    t = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
    return t[0].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32)


def _clean_and_dedup(masks: np.ndarray, scores: np.ndarray, min_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Holes and islands under ``min_pixels`` removed from every mask, then box NMS again on the cleaned
    masks, preferring the ones the clean-up left unchanged (segment-anything's small-region pass)."""
    cleaned = np.stack([_clean(m, min_pixels) for m in masks])
    unchanged = np.array([np.array_equal(a, b) for a, b in zip(masks, cleaned)], dtype=np.float32)
    _, amg = _sam_utils()
    boxes = amg.batched_mask_to_box(torch.from_numpy(cleaned)).float()
    keep = np.sort(box_nms(boxes, torch.from_numpy(unchanged), BOX_NMS_THRESH).numpy())
    return cleaned[keep], scores[keep]


def _sam_utils():
    from ..models import sam_modules

    return sam_modules()


def _mask_set(masks: np.ndarray, scores: np.ndarray, image: np.ndarray) -> MaskSet:
    k = len(masks)
    if k == 0:
        colors = np.zeros((0, 3), np.float32)
    else:
        flat = masks.reshape(k, -1).astype(np.float32)
        colors = (flat @ image.reshape(-1, 3)) / flat.sum(1, keepdims=True).clip(min=1)
    return MaskSet(masks=masks.astype(bool), scores=scores.astype(np.float32), colors=colors.astype(np.float32))


def segment_sam(image: np.ndarray, cfg: SegmentConfig | None = None, device=None, model=None) -> MaskSet:
    """Segment one image with SAM. image: (H, W, 3) float32 RGB in [0, 1].

    The model is ``model`` (a loaded :class:`lvss.models.SamModel`) or else loaded (cached) from
    ``cfg.sam_checkpoint`` / ``LVSS_SAM_CHECKPOINT`` on ``device`` ("auto" | "cpu" | "cuda").
    """
    cfg = cfg or SegmentConfig()
    if model is None:
        from ..models import load_sam, require_spec

        model = load_sam(require_spec("sam", cfg.sam_checkpoint), device)
    return SamSegmenter(model, cfg)(image)


__all__ = ["SamSegmenter", "segment_sam", "box_nms", "resample_logits"]
