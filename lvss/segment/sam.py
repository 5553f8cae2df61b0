"""SAM segmentation: segment-anything's automatic mask generation on each level of the sequence.

A regular grid of point prompts (``SegmentConfig.sam_points_per_side`` per side) is fed to SAM in
batches; every point yields ``num_multimask_outputs`` candidate masks, which are kept when

* the predicted IoU exceeds ``sam_pred_iou_thresh``,
* the stability score (IoU of the mask thresholded at logit +1 and -1) reaches
  ``sam_stability_score_thresh``,

then de-duplicated by box non-maximum suppression (IoU 0.7), cleaned of holes and islands smaller than
``min_area`` of the image, and dropped when their area is below ``min_area``. This follows the
segment-anything generator with a single crop layer; it runs on the model classes directly so it needs
no torchvision (segment-anything's own generator imports it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ConfigError, SegmentConfig
from ..types import MaskSet, check_rgb_image

POINTS_PER_BATCH = 64
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
    """Automatic SAM mask generation with a loaded model; ``segmenter(image) -> MaskSet``.

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

    def _batch(self, emb, points: torch.Tensor, input_size, orig_size) -> tuple:
        """Masks (M, H, W) bool, IoU predictions (M,), boxes (M, 4) for one batch of point prompts."""
        model = self.sam.model
        h, w = orig_size
        coords = points.clone()  # (B, 2) x, y in original pixels -> encoder input pixels
        coords[:, 0] *= input_size[1] / w
        coords[:, 1] *= input_size[0] / h
        labels = torch.ones(len(coords), dtype=torch.int, device=coords.device)
        with torch.no_grad():
            sparse, dense = model.prompt_encoder(points=(coords[:, None, :], labels[:, None]), boxes=None, masks=None)
            low, iou = model.mask_decoder(image_embeddings=emb, image_pe=model.prompt_encoder.get_dense_pe(),
                                          sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                          multimask_output=True)
        low, iou = low.flatten(0, 1)[:, None].float(), iou.flatten(0, 1).float()
        keep = iou > self.cfg.sam_pred_iou_thresh  # filter on predicted IoU before upsampling
        low, iou = low[keep], iou[keep]
        if len(iou) == 0:
            return None
        with torch.no_grad():
            logits = model.postprocess_masks(low, input_size, orig_size)[:, 0]  # (M, H, W)
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

    def __call__(self, image: np.ndarray) -> MaskSet:
        """image: (H, W, 3) float32 RGB in [0, 1] -> MaskSet with (K, H, W) bool masks, largest first,
        scores = predicted IoU clipped to [0, 1], colors = mean RGB under each mask."""
        image = check_rgb_image(image, min_side=2)
        h, w = image.shape[:2]
        cfg = self.cfg
        _, amg = _sam_utils()
        emb, input_size = self._embed(image)
        grid = amg.build_point_grid(cfg.sam_points_per_side) * np.array([[w, h]], dtype=np.float64)
        points = torch.as_tensor(grid, dtype=torch.float32, device=self.sam.device)
        found = _Candidates([], [], [])
        for start in range(0, len(points), POINTS_PER_BATCH):
            out = self._batch(emb, points[start:start + POINTS_PER_BATCH], input_size, (h, w))
            if out is not None:
                found.masks.append(out[0]), found.scores.append(out[1]), found.boxes.append(out[2])
        if not found.masks:
            return _mask_set(np.zeros((0, h, w), bool), np.zeros(0, np.float32), image)
        masks = torch.cat(found.masks)
        scores = torch.cat(found.scores)
        keep = box_nms(torch.cat(found.boxes), scores, BOX_NMS_THRESH)
        masks, scores = masks[keep].numpy(), scores[keep].numpy()
        min_pixels = int(round(cfg.min_area * h * w))
        if min_pixels > 0:
            masks = np.stack([_clean(m, min_pixels) for m in masks])
        areas = masks.reshape(len(masks), -1).sum(1)
        ok = (areas >= max(min_pixels, 1))
        masks, scores, areas = masks[ok], scores[ok], areas[ok]
        order = np.argsort(-areas, kind="stable")
        return _mask_set(masks[order], np.clip(scores[order], 0.0, 1.0).astype(np.float32), image)

    def segment_levels(self, levels: list[np.ndarray]) -> list[MaskSet]:
        """Run on every level of a simplification sequence (SimplifyResult.levels)."""
        return [self(level) for level in levels]


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


__all__ = ["SamSegmenter", "segment_sam", "box_nms"]
