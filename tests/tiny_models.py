"""Tiny, randomly initialised models written to disk in the layouts real weights come in.

Used by tests/test_models.py, test_sam.py, test_sds.py, test_saliency.py and test_stages.py: each
model is built once per test process (cached) and then loaded through lvss.models exactly like a
user's checkpoint. Nothing is downloaded.
"""
from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile

import torch

_ROOT = tempfile.mkdtemp(prefix="lvss-tiny-models-")
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)


def root() -> str:
    return _ROOT


def _vocab() -> dict[str, int]:
    """Byte-level CLIP vocabulary without merges: every byte symbol, alone and word-final."""
    from tokenizers.pre_tokenizers import ByteLevel

    chars = sorted(ByteLevel.alphabet())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    return vocab


def clip_tokenizer(max_length: int):
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=_vocab(), merges=[], model_max_length=max_length)


def _text_config(max_len: int = 16, hidden: int = 32) -> dict:
    return dict(vocab_size=len(_vocab()), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=max_len, bos_token_id=0, eos_token_id=1,
                pad_token_id=1)


def build_tiny_sam() -> torch.nn.Module:
    """A segment-anything Sam built like build_sam, with a 2-block, 32-wide ViT on 128 px inputs."""
    from functools import partial

    from lvss.models import sam_modules

    modeling, _ = sam_modules()
    torch.manual_seed(0)
    dim = 32
    return modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            depth=2, embed_dim=32, img_size=128, mlp_ratio=2.0, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=2, patch_size=16, qkv_bias=True, use_rel_pos=True, global_attn_indexes=(1,), window_size=4,
            out_chans=dim),
        prompt_encoder=modeling.PromptEncoder(embed_dim=dim, image_embedding_size=(8, 8), input_image_size=(128, 128),
                                              mask_in_chans=8),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=dim, mlp_dim=64, num_heads=8),
            transformer_dim=dim, iou_head_depth=3, iou_head_hidden_dim=32),
    ).eval()


@functools.lru_cache(maxsize=None)
def sam_checkpoint() -> str:
    """Path of a tiny SAM state dict saved with torch.save (like sam_vit_b_01ec64.pth)."""
    path = os.path.join(_ROOT, "sam", "tiny_sam.pth")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(build_tiny_sam().state_dict(), path)
    return path


@functools.lru_cache(maxsize=None)
def sd_dir() -> str:
    """A tiny Stable Diffusion pipeline in diffusers layout (UNet, VAE, CLIP text encoder, tokenizer,
    DDPM scheduler, model_index.json)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    root = os.path.join(_ROOT, "sd")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4, norm_num_groups=8,
        layers_per_block=1, sample_size=32)
    text = CLIPTextModel(CLIPTextConfig(**_text_config(16, 32)))
    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, num_train_timesteps=1000)
    unet.save_pretrained(os.path.join(root, "unet"))
    vae.save_pretrained(os.path.join(root, "vae"))
    text.save_pretrained(os.path.join(root, "text_encoder"))
    clip_tokenizer(16).save_pretrained(os.path.join(root, "tokenizer"))
    sched.save_pretrained(os.path.join(root, "scheduler"))
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.25.0",
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "scheduler": ["diffusers", "DDPMScheduler"], "safety_checker": [None, None],
             "feature_extractor": [None, None]}
    with open(os.path.join(root, "model_index.json"), "w") as f:
        json.dump(index, f)
    return root


@functools.lru_cache(maxsize=None)
def clip_dir() -> str:
    """A tiny CLIPModel (32 px, 8 px patches) saved with save_pretrained, plus tokenizer and
    preprocessor_config.json."""
    from transformers import CLIPConfig, CLIPModel

    root = os.path.join(_ROOT, "clip")
    torch.manual_seed(0)
    cfg = CLIPConfig(text_config=_text_config(16, 32),
                     vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                        num_attention_heads=4, image_size=32, patch_size=8),
                     projection_dim=16)
    CLIPModel(cfg).eval().save_pretrained(root)
    clip_tokenizer(16).save_pretrained(root)
    with open(os.path.join(root, "preprocessor_config.json"), "w") as f:
        json.dump({"image_mean": [0.48145466, 0.4578275, 0.40821073],
                   "image_std": [0.26862954, 0.26130258, 0.27577711],
                   "crop_size": {"height": 32, "width": 32}, "size": {"shortest_edge": 32}}, f)
    return root


def photo(h: int = 48, w: int = 64):
    """A small photograph: (h, w, 3) float32 in [0, 1]."""
    import numpy as np
    from skimage import data, transform

    return transform.resize(data.astronaut(), (h, w), anti_aliasing=True).astype(np.float32)
