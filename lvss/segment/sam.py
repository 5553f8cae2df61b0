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

Crop layers (``sam_crop_layers``, segment-anything's ``crop_n_layers``; default 0 = the whole image
only): layer i adds (2^i)^2 crops overlapping by ``CROP_OVERLAP_RATIO`` of the short side
(segment-anything's ``generate_crop_boxes``). Each crop is embedded at SAM's input size on its own and
prompted with the full point grid, so small parts of a large image are seen at a higher resolution.
Unlike segment-anything, a layer is only used while it adds pixels: on an image no larger than the
encoder's input (a coarse level at the working resolution) crops would only be enlarged, so there are
none (:meth:`SamSegmenter.crop_layers_for`).
A crop's masks are resampled straight into the output frame (outside the crop they are empty); masks
touching a crop's inner edge (cut off by the crop, not by the image) are dropped, each crop's masks are
de-duplicated by box NMS, then all crops' together, preferring masks from smaller crops — as
segment-anything's generator does.

The decoder runs through :mod:`lvss.segment.sam_decoder` (same arithmetic, fewer copies) so no
torchvision is needed (segment-anything's own generator imports it). Progress is reported and
cancellation checked after every image embedding and every batch of prompts.
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
CROP_NMS_THRESH = 0.7
CROP_OVERLAP_RATIO = 512 / 1500      # segment-anything's generator defaults
CROP_EDGE_TOLERANCE = 20.0           # pixels of the image as given (segment-anything: of the original)
STABILITY_OFFSET = 1.0
OUTSIDE_LOGIT = -1e4                 # logit of output pixels outside a crop


def _check_cfg(cfg: SegmentConfig) -> None:
    if not isinstance(cfg.sam_points_per_side, int) or cfg.sam_points_per_side < 1:
        raise ConfigError(f"sam_points_per_side must be an integer >= 1, got {cfg.sam_points_per_side!r}")
    if not 0.0 <= cfg.min_area < 1.0:
        raise ConfigError(f"min_area must be a fraction of the image in [0, 1), got {cfg.min_area}")
    layers = cfg.sam_crop_layers
    if not isinstance(layers, int) or isinstance(layers, bool) or not 0 <= layers <= 3:
        raise ConfigError(f"sam_crop_layers must be an integer between 0 and 3 (CLI --sam-crop-layers), got {layers!r}")


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

    def _batch(self, emb, points: torch.Tensor, input_size, out_size, region=None) -> tuple | None:
        """Masks (M, h, w) bool at ``out_size``, IoU predictions (M,), boxes (M, 4) for one batch of point
        prompts given in encoder-input pixels; None when no candidate passes the thresholds.
        region: for a crop, its :class:`_Region` (the masks are placed where the crop lies in the output
        and are empty outside it); None for the whole image."""
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
            logits = resample_logits(low, input_size, model.image_encoder.img_size, out_size,
                                     None if region is None else region.window)
        thr = model.mask_threshold
        inter = (logits > thr + STABILITY_OFFSET).sum((-1, -2)).float()
        union = (logits > thr - STABILITY_OFFSET).sum((-1, -2)).float()
        stability = inter / union.clamp(min=1)
        keep = (stability >= self.cfg.sam_stability_score_thresh) & (union > 0)
        masks = logits[keep] > thr
        if masks.shape[0] == 0:
            return None
        _, amg = _sam_utils()
        boxes = amg.batched_mask_to_box(masks).float()
        iou = iou[keep]
        if region is not None:  # masks cut off by the crop's inner edges are left to other crops
            inner = region.near_inner_edge(boxes)
            masks, iou, boxes = masks[~inner], iou[~inner], boxes[~inner]
            if masks.shape[0] == 0:
                return None
        return masks.cpu(), iou.cpu(), boxes.cpu()

    def crop_layers_for(self, long_side: int) -> int:
        """Crop layers used on an image with this long side: ``sam_crop_layers``, but only as many as add
        pixels the encoder would not see otherwise — layer i only while the crops of layer i - 1 are
        larger than the encoder's input. An image at or below the encoder's size (a coarse level at the
        working resolution) is not cropped."""
        size = int(self.sam.model.image_encoder.img_size)
        n = 0
        while n < int(self.cfg.sam_crop_layers) and long_side / 2 ** n > size:
            n += 1
        return n

    @property
    def input_size(self) -> int:
        """Long side in pixels of the image this segmenter makes full use of: the size SAM's encoder
        takes (1024 for the released models), times 2^``sam_crop_layers`` with crop layers, so that the
        crops of the finest layer are seen at about the encoder's size (the whole image is resampled
        down to it)."""
        return int(self.sam.model.image_encoder.img_size) * 2 ** int(self.cfg.sam_crop_layers)

    def __call__(self, image: np.ndarray, out_size: tuple[int, int] | None = None,
                 progress: Callable[[float, str], None] | None = None,
                 cancel: threading.Event | None = None) -> MaskSet:
        """Automatic masks of one image.

        image: (H, W, 3) float32 RGB in [0, 1], best at up to :attr:`input_size` on the long side
        (each crop, and the whole image, is resampled to the encoder's input size, down or up).
        out_size: (h, w) of the returned masks (default the image's). Returns a MaskSet with (K, h, w) bool masks, largest first, scores =
        predicted IoU clipped to [0, 1], colors = mean RGB of the image under each mask.
        progress(fraction within this image, message) is called after every batch of prompts, and
        ``cancel`` (a threading.Event) is checked there: raises :class:`lvss.types.Cancelled`.
        """
        from ..types import check_cancel

        image = check_rgb_image(image, min_side=2)
        h0, w0 = image.shape[:2]
        h, w = check_out_size(out_size, (h0, w0))
        cfg = self.cfg
        _, amg = _sam_utils()
        check_cancel(cancel)
        boxes, _ = amg.generate_crop_boxes((h0, w0), self.crop_layers_for(max(h0, w0)), CROP_OVERLAP_RATIO)
        n_points = cfg.sam_points_per_side ** 2
        per_batch = POINTS_PER_BATCH_CPU if self.sam.device.type == "cpu" else POINTS_PER_BATCH
        n_batches = -(-n_points // per_batch)
        steps = len(boxes) * (n_batches + 1)  # an embedding and the prompt batches per crop
        done = 0
        crops = []  # per crop: (masks, scores, boxes) after NMS within the crop, and the crop's area
        for c, box in enumerate(boxes):
            check_cancel(cancel)
            region = None if c == 0 else _Region(box, (h0, w0), (h, w))
            x0, y0, x1, y1 = box
            emb, input_size = self._embed(image if c == 0 else image[y0:y1, x0:x1])
            where = "" if len(boxes) == 1 else f"crop {c + 1}/{len(boxes)}: "
            done += 1
            if progress is not None:
                progress(done / steps, f"SAM {where}image embedding done")
            # segment-anything's point grid over the crop, in encoder-input pixels
            grid = amg.build_point_grid(cfg.sam_points_per_side) * np.array([[input_size[1], input_size[0]]])
            points = torch.as_tensor(grid, dtype=torch.float32, device=self.sam.device)
            found = _Candidates([], [], [])
            for start in range(0, len(points), per_batch):
                check_cancel(cancel)
                out = self._batch(emb, points[start:start + per_batch], input_size, (h, w), region)
                if out is not None:
                    found.masks.append(out[0]), found.scores.append(out[1]), found.boxes.append(out[2])
                done += 1
                if progress is not None:
                    progress(done / steps, f"SAM {where}prompts {min(start + per_batch, len(points))}/{len(points)}")
            if found.masks:
                m, sc, bx = torch.cat(found.masks), torch.cat(found.scores), torch.cat(found.boxes)
                keep = box_nms(bx, sc, BOX_NMS_THRESH)
                crops.append((m[keep], sc[keep], bx[keep], float((x1 - x0) * (y1 - y0))))
        small = _resize_image(image, (h, w))
        if not crops:
            return _mask_set(np.zeros((0, h, w), bool), np.zeros(0, np.float32), small)
        masks = torch.cat([c[0] for c in crops])
        scores = torch.cat([c[1] for c in crops])
        if len(boxes) > 1:  # the same object found in several crops: keep the one from the smallest crop
            prefer = torch.cat([torch.full((len(c[0]),), 1.0 / c[3]) for c in crops])
            keep = box_nms(torch.cat([c[2] for c in crops]), prefer, CROP_NMS_THRESH)
            masks, scores = masks[keep], scores[keep]
        masks, scores = masks.numpy(), scores.numpy()
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


@dataclass(frozen=True)
class _Region:
    """Where a crop lies: ``box`` (x0, y0, x1, y1) in pixels of the image as given (``image_size``
    (H, W)), masks wanted at ``out_size`` (h, w) over the whole image."""

    box: tuple
    image_size: tuple
    out_size: tuple

    @property
    def window(self) -> tuple[float, float, float, float]:
        """The crop as (x0, y0, x1, y1) in output pixels (fractional)."""
        (x0, y0, x1, y1), (H, W), (h, w) = self.box, self.image_size, self.out_size
        return x0 * w / W, y0 * h / H, x1 * w / W, y1 * h / H

    def near_inner_edge(self, boxes: torch.Tensor) -> torch.Tensor:
        """(N,) bool: mask boxes (N, 4) xyxy in output pixels (inclusive, as ``batched_mask_to_box``)
        lying within the edge tolerance of a crop side that is not a side of the image."""
        (H, W), (h, w) = self.image_size, self.out_size
        x0, y0, x1, y1 = self.window
        crop = torch.tensor([x0, y0, x1 - 1, y1 - 1], dtype=torch.float32)
        image = torch.tensor([0.0, 0.0, w - 1, h - 1])
        tol = torch.tensor([w / W, h / H, w / W, h / H]) * CROP_EDGE_TOLERANCE
        b = boxes.float().cpu()
        near_crop = (b - crop).abs() <= tol
        near_image = (b - image).abs() <= tol
        return (near_crop & ~near_image).any(1)


def resample_logits(low: torch.Tensor, input_size: tuple[int, int], frame: int,
                    out_size: tuple[int, int], window: tuple[float, float, float, float] | None = None
                    ) -> torch.Tensor:
    """SAM's low-resolution mask logits (M, Lh, Lw), which cover the padded ``frame`` × ``frame``
    encoder input whose top-left ``input_size`` (nh, nw) pixels hold the image, resampled bilinearly to
    (M, h, w) = ``out_size`` over the image only. One interpolation, in place of segment-anything's
    upsampling to the full frame followed by a resize to the original size.

    window: when the encoder saw a crop, the crop's place (x0, y0, x1, y1) in output pixels; the logits
    are then resampled onto that part of the output and are ``OUTSIDE_LOGIT`` elsewhere."""
    m = low.shape[0]
    h, w = out_size
    if m == 0:
        return low.new_zeros((0, h, w))
    nh, nw = input_size
    dev = low.device
    x0, y0, x1, y1 = (0.0, 0.0, float(w), float(h)) if window is None else window
    # pixel centres of the output, in the frame's normalised coordinates (align_corners=False)
    yc = torch.arange(h, device=dev, dtype=torch.float32) + 0.5
    xc = torch.arange(w, device=dev, dtype=torch.float32) + 0.5
    ys = ((yc - y0) * (nh / (y1 - y0))) * (2.0 / frame) - 1.0
    xs = ((xc - x0) * (nw / (x1 - x0))) * (2.0 / frame) - 1.0
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)[None]  # (1, h, w, 2) as (x, y)
    out = F.grid_sample(low.float()[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    if window is not None:
        inside = ((yc >= y0) & (yc < y1))[:, None] & ((xc >= x0) & (xc < x1))[None, :]
        out = out.masked_fill(~inside, OUTSIDE_LOGIT)
    return out


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
