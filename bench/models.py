"""Seconds per learned stage with full-size architectures and random weights (nothing is downloaded).

On CUDA: SAM ViT-H automatic masks on the 5 levels of a 512² image, 80 SDS iterations (4 levels × 20)
with the Stable Diffusion 1.5 UNet / VAE / text-encoder architecture at 512², and one CLIP ViT-B/16
rollout saliency map. Random weights cost the same compute as trained ones, except for SAM's mask
post-processing, whose cost depends on how many masks pass the thresholds: it is timed twice, with the
configured thresholds (few random masks pass) and with every candidate kept (an upper bound).

Without CUDA it says so and runs reduced-size models on a smaller image, so the script is exercised.
``--sam-cpu`` instead times full-size SAM (ViT-B by default) on the CPU: the image encoder, and the
prompt batches of one level with lvss's decoder and with the reference decoder path.

    PYTHONPATH=. python bench/models.py [--device auto|cpu|cuda] [--size 512] [--reduced]
    PYTHONPATH=. LVSS_THREADS=1 python bench/models.py --sam-cpu [--sam-arch vit_b] [--points 32]
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np
import torch

from lvss.config import SegmentConfig, SimplifyConfig
from lvss.models import (ClipModel, SamModel, SDModel, build_sam_model, model_dtype, resolve_device,
                         sam_arch)
from lvss.models import SamArch

# Stable Diffusion 1.5 component configurations (diffusers / transformers argument names)
SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1,
    act_fn="silu", norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=768, attention_head_dim=8)
SD15_VAE = dict(
    in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
    act_fn="silu", latent_channels=4, norm_num_groups=32, sample_size=512, scaling_factor=0.18215)
SD15_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu")
# CLIP ViT-B/16
CLIP_B16_TEXT = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                     num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu")
CLIP_B16_VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                       image_size=224, patch_size=16, hidden_act="quick_gelu")
CLIP_B16_PROJ = 512

# reduced sizes for machines without CUDA
SMALL_UNET = dict(SD15_UNET, sample_size=16, block_out_channels=(32, 64, 64, 64), cross_attention_dim=64,
                  attention_head_dim=4, norm_num_groups=16, layers_per_block=1)
SMALL_VAE = dict(SD15_VAE, block_out_channels=(16, 32, 32, 32), norm_num_groups=8, layers_per_block=1,
                 sample_size=128)
SMALL_TEXT = dict(SD15_TEXT, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
SMALL_CLIP_TEXT = dict(CLIP_B16_TEXT, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4)
SMALL_CLIP_VISION = dict(CLIP_B16_VISION, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                         num_attention_heads=4)
SMALL_SAM = SamArch(name="custom", embed_dim=96, depth=4, num_heads=4, global_attn_indexes=(1, 3), window_size=8,
                    img_size=256, prompt_embed_dim=64, mask_in_chans=16, decoder_mlp_dim=256,
                    iou_head_hidden_dim=64)


def tokenizer(max_length: int):
    """A byte-level CLIP tokenizer without merges (ids < 514), built offline."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for c in sorted(ByteLevel.alphabet()):
            vocab[c + suffix] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _timed(dev: torch.device, fn):
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    _sync(dev)
    t = time.perf_counter()
    out = fn()
    _sync(dev)
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else float("nan")
    return out, time.perf_counter() - t, peak


def build_sd(dev: torch.device, small: bool) -> SDModel:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    dtype = model_dtype(dev)
    torch.manual_seed(0)
    with torch.device(dev):
        unet = UNet2DConditionModel(**(SMALL_UNET if small else SD15_UNET))
        vae = AutoencoderKL(**(SMALL_VAE if small else SD15_VAE))
        text = CLIPTextModel(CLIPTextConfig(**(SMALL_TEXT if small else SD15_TEXT), bos_token_id=0, eos_token_id=1,
                                            pad_token_id=1))
    for m in (unet, vae, text):
        if dtype != torch.float32:
            m.to(dtype)
        m.eval().requires_grad_(False)
    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                          num_train_timesteps=1000)
    return SDModel(unet=unet, vae=vae, text_encoder=text, tokenizer=tokenizer(77),
                   alphas_cumprod=sched.alphas_cumprod.to(dev, torch.float32), prediction_type="epsilon",
                   vae_scale=0.18215, vae_factor=2 ** (len(vae.config.block_out_channels) - 1), device=dev,
                   dtype=dtype, source="random SD 1.5 architecture" + (" (reduced)" if small else ""))


def build_sam(dev: torch.device, small: bool) -> SamModel:
    arch = SMALL_SAM if small else sam_arch("vit_h")
    torch.manual_seed(0)
    with torch.device(dev):
        model = build_sam_model(arch)
    return SamModel(model.to(dev).eval().requires_grad_(False), arch, dev, f"random {arch.name}")


def build_clip(dev: torch.device, small: bool) -> ClipModel:
    from transformers import CLIPConfig, CLIPModel

    cfg = CLIPConfig(text_config=dict(SMALL_CLIP_TEXT if small else CLIP_B16_TEXT, bos_token_id=0, eos_token_id=1,
                                      pad_token_id=1),
                     vision_config=SMALL_CLIP_VISION if small else CLIP_B16_VISION,
                     projection_dim=64 if small else CLIP_B16_PROJ)
    torch.manual_seed(0)
    with torch.device(dev):
        model = CLIPModel._from_config(cfg, attn_implementation="eager")
    model.to(dev).eval().requires_grad_(False)
    return ClipModel(model, tokenizer(77), (0.48145466, 0.4578275, 0.40821073),
                     (0.26862954, 0.26130258, 0.27577711), int(cfg.vision_config.image_size), dev,
                     "random CLIP ViT-B/16" + (" (reduced)" if small else ""))


def photo(size: int) -> np.ndarray:
    from skimage import data, transform

    return transform.resize(data.astronaut(), (size, size), anti_aliasing=True).astype(np.float32)


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _reference_batch(sam: SamModel, emb, points, input_size, out_size, cfg: SegmentConfig):
    """The automatic-mask batch as segment-anything's generator computes it (and lvss did before the
    decoder rewrite): the reference mask decoder on per-prompt copies of the embedding, masks upsampled
    to the 1024-px frame and resized to the output size, stability at that size."""
    m = sam.model
    labels = torch.ones(len(points), 1, dtype=torch.int)
    with torch.no_grad():
        sparse, dense = m.prompt_encoder(points=(points[:, None], labels), boxes=None, masks=None)
        low, iou = m.mask_decoder(image_embeddings=emb, image_pe=m.prompt_encoder.get_dense_pe(),
                                  sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                  multimask_output=True)
        low, iou = low.flatten(0, 1)[:, None], iou.flatten(0, 1)
        keep = iou > cfg.sam_pred_iou_thresh
        if keep.any():
            logits = m.postprocess_masks(low[keep], input_size, out_size)[:, 0]
            inter = (logits > 1.0).sum((-1, -2)).float()
            union = (logits > -1.0).sum((-1, -2)).float()
            logits[(inter / union.clamp(min=1)) >= cfg.sam_stability_score_thresh]
    return int(keep.sum())


def bench_sam_cpu(args) -> None:
    """Seconds per SAM level on the CPU: encoder, then the prompt batches of the lvss decoder and of the
    reference decoder, measured on the first ``--sam-prompts`` prompts and scaled to the full grid."""
    from lvss.segment.sam import POINTS_PER_BATCH, POINTS_PER_BATCH_CPU, SamSegmenter

    dev = torch.device("cpu")
    size = args.size or 256
    image = photo(size)
    arch = sam_arch(args.sam_arch)
    torch.manual_seed(0)
    sam = SamModel(build_sam_model(arch).requires_grad_(False), arch, dev, f"random {arch.name}")
    print(f"SAM {arch.name} (random weights) on the CPU, {torch.get_num_threads()} torch thread(s), "
          f"image {size}x{size}, {args.points}² prompts per level; seconds are process CPU time "
          f"(user + system), wall in brackets")
    c, w = _cpu_seconds(), time.perf_counter()
    seg = SamSegmenter(sam, SegmentConfig(sam_points_per_side=args.points))
    emb, input_size = seg._embed(image)
    enc_cpu, enc_wall = _cpu_seconds() - c, time.perf_counter() - w
    print(f"{'image encoder':<44}{enc_cpu:>9.1f} ({enc_wall:.1f})")
    from segment_anything.utils import amg

    grid = amg.build_point_grid(args.points) * np.array([[input_size[1], input_size[0]]])
    points = torch.as_tensor(grid, dtype=torch.float32)
    n = min(args.sam_prompts, len(points))
    scale = len(points) / n
    for label, cfg in (("default thresholds", SegmentConfig(sam_points_per_side=args.points)),
                       ("every candidate kept", SegmentConfig(sam_points_per_side=args.points,
                                                              sam_pred_iou_thresh=-1e9,
                                                              sam_stability_score_thresh=0.0))):
        rows = []
        for name in ("reference", "lvss"):
            seg = SamSegmenter(sam, cfg)
            per = POINTS_PER_BATCH if name == "reference" else POINTS_PER_BATCH_CPU
            c, w = _cpu_seconds(), time.perf_counter()
            for start in range(0, n, per):
                batch = points[start:min(start + per, n)]
                if name == "reference":
                    _reference_batch(sam, emb, batch, input_size, (size, size), cfg)
                else:
                    seg._batch(emb, batch, input_size, (size, size))
            cpu, wall = (_cpu_seconds() - c) * scale, (time.perf_counter() - w) * scale
            rows.append((name, cpu, wall))
            print(f"{'prompts, ' + name + ', ' + label:<44}{cpu:>9.1f} ({wall:.1f})  per level, from {n} prompts "
                  f"x {scale:.1f}; batches of {per}", flush=True)
        (_, rc, rw), (_, lc, lw) = rows
        print(f"{'level total, ' + label:<44}  reference {enc_cpu + rc:.1f} s, lvss {enc_cpu + lc:.1f} s "
              f"(decoder {rc / max(lc, 1e-9):.1f}x faster)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--size", type=int, default=None, help="image side in pixels (512 on CUDA, 96 reduced)")
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--iters", type=int, default=None, help="SDS iterations per level (20 on CUDA, 2 reduced)")
    ap.add_argument("--reduced", action="store_true", help="reduced-size models even on CUDA")
    ap.add_argument("--sam-cpu", action="store_true",
                    help="only SAM on the CPU at full size: seconds per level, lvss's decoder against the "
                         "reference one (image 256 px unless --size)")
    ap.add_argument("--sam-arch", default="vit_b", choices=("vit_b", "vit_l", "vit_h"), help="with --sam-cpu")
    ap.add_argument("--points", type=int, default=32, help="with --sam-cpu: prompts per side (default 32)")
    ap.add_argument("--sam-prompts", type=int, default=128,
                    help="with --sam-cpu: prompts actually run per variant, scaled to the grid (default 128)")
    ap.add_argument("--sam-crop-layers", type=int, default=0, choices=(0, 1, 2, 3),
                    help="SAM crop layers (SegmentConfig.sam_crop_layers; default 0): crops are only cut from "
                         "images larger than SAM's input (1024 px), e.g. with --size 2048")
    args = ap.parse_args()
    from lvss import threads

    threads.apply(None)  # LVSS_THREADS, else lvss's default (idle cores, at most 4)
    if args.sam_cpu:
        bench_sam_cpu(args)
        return

    from lvss.saliency.clip_rollout import clip_saliency
    from lvss.segment.sam import SamSegmenter
    from lvss.simplify.sds import simplify_sds

    dev = resolve_device(args.device)
    small = args.reduced or dev.type != "cuda"
    if dev.type != "cuda":
        print("CUDA is absent: running reduced-size models on the CPU to exercise the script "
              "(figures are not representative).")
    size = args.size or (96 if small else 512)
    iters = args.iters or (2 if small else 20)
    points = 8 if small else 32
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"device {dev} ({name}), compute dtype {model_dtype(dev)}, image {size}x{size}, torch {torch.__version__}")
    image = photo(size)
    rows = []

    sd, t, peak = _timed(dev, lambda: build_sd(dev, small))
    rows.append(("build SD (random)", t, peak, sd.source))
    cfg = SimplifyConfig(levels=args.levels, sds_iterations_per_level=iters, sds_guidance_size=size)
    simplify_sds(image, 1, seed=0, cfg=replace(cfg, sds_iterations_per_level=1), model=sd)  # warm-up
    seq, t, peak = _timed(dev, lambda: simplify_sds(image, args.levels, seed=0, cfg=cfg, model=sd))
    n = args.levels * iters
    rows.append((f"SDS {n} iterations", t, peak, f"{1000 * t / n:.1f} ms/iteration"))
    del sd
    if dev.type == "cuda":
        torch.cuda.empty_cache()

    sam, t, peak = _timed(dev, lambda: build_sam(dev, small))
    rows.append(("build SAM (random)", t, peak, sam.source))
    crop = args.sam_crop_layers
    for label, seg_cfg in (
            ("configured thresholds", SegmentConfig(sam_points_per_side=points, sam_crop_layers=crop)),
            ("all candidates kept", SegmentConfig(sam_points_per_side=points, sam_pred_iou_thresh=-1e9,
                                                  sam_stability_score_thresh=0.0, sam_crop_layers=crop))):
        segmenter = SamSegmenter(sam, seg_cfg)
        segmenter(seq.levels[0])  # warm-up
        masks, t, peak = _timed(dev, lambda: segmenter.segment_levels(seq.levels))
        counts = "/".join(str(len(m)) for m in masks)
        rows.append((f"SAM {len(seq.levels)} levels, {label}", t, peak,
                     f"{points}² points, {crop} crop layers, masks {counts}"))
    del sam
    if dev.type == "cuda":
        torch.cuda.empty_cache()

    clip, t, peak = _timed(dev, lambda: build_clip(dev, small))
    rows.append(("build CLIP (random)", t, peak, clip.source))
    clip_saliency(image, "an astronaut", clip)  # warm-up
    sal, t, peak = _timed(dev, lambda: clip_saliency(image, "an astronaut", clip))
    rows.append(("CLIP rollout saliency", t, peak, f"map {sal.shape[0]}x{sal.shape[1]}, std {sal.std():.3f}"))

    print(f"{'stage':<42}{'seconds':>9}{'peak GiB':>10}  note")
    for stage, secs, peak, note in rows:
        print(f"{stage:<42}{secs:>9.2f}{peak:>10.2f}  {note}")
    # what one image costs in the learned stages (models loaded): SDS, SAM with the configured
    # thresholds, saliency
    total = sum(secs for stage, secs, _, _ in rows
                if stage.startswith("SDS") or "configured thresholds" in stage or stage.startswith("CLIP"))
    peak = max(p for _, _, p, _ in rows)
    print(f"{'learned stages of one image':<42}{total:>9.2f}{peak:>10.2f}  SDS + SAM (configured thresholds) "
          f"+ saliency; goal on an H100-class GPU at 512 px, 4 levels x 20: <= 15 s")


if __name__ == "__main__":
    main()
