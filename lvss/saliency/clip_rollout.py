"""Prompt-driven saliency: CLIP image–text relevance by gradient-weighted attention rollout.

The score is the cosine similarity of CLIP's projected image and text embeddings. Relevance starts
as the identity over the vision transformer's tokens and is propagated layer by layer,

    Ā_b = mean_heads( max(0, ∂s/∂A_b ⊙ A_b) ),      R ← R + Ā_b R,

(A_b: the softmax attention of layer b, (tokens × tokens) per head; gradient-weighted relevance
propagation for transformers). The class-token row of R over the patch tokens is the patch relevance;
it is upsampled to the image and scaled to [0, 1].
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ConfigError
from ..types import check_rgb_image


def _pixels(clip, image: np.ndarray) -> torch.Tensor:
    """(1, 3, S, S) normalised CLIP input; the whole image is resized (not cropped) so every pixel
    gets a relevance."""
    s = clip.image_size
    x = torch.from_numpy(image).permute(2, 0, 1)[None].to(clip.device)
    x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(clip.mean, device=clip.device).view(1, 3, 1, 1)
    std = torch.tensor(clip.std, device=clip.device).view(1, 3, 1, 1)
    return (x - mean) / std


def _text_embedding(clip, prompt: str) -> torch.Tensor:
    model = clip.model
    max_len = int(model.config.text_config.max_position_embeddings)
    ids = clip.tokenizer(prompt, truncation=True, max_length=max_len, return_tensors="pt").input_ids
    with torch.no_grad():
        pooled = model.text_model(input_ids=ids.to(clip.device)).pooler_output
        return model.text_projection(pooled).float()


def patch_relevance(clip, image: np.ndarray, prompt: str) -> torch.Tensor:
    """(g, g) float32 relevance of each image patch for the text (≥ 0, not normalised).

    clip: a loaded :class:`lvss.models.ClipModel`; image: (H, W, 3) float32 RGB in [0, 1].
    """
    from ..models import autocast

    model = clip.model
    txt = _text_embedding(clip, prompt)
    # the weights are frozen; a grad-requiring input makes autograd record the attention maps
    pixels = _pixels(clip, image).requires_grad_(True)
    with torch.enable_grad(), autocast(clip.device):
        out = model.vision_model(pixel_values=pixels, output_attentions=True)
        img = model.visual_projection(out.pooler_output).float()
        score = F.cosine_similarity(img, txt, dim=-1).sum()  # image–text relevance score s
        attns = [a for a in out.attentions if a is not None]
        if not attns:
            raise RuntimeError("the CLIP vision model returned no attention maps; it must be loaded with "
                               "attn_implementation='eager'")
        grads = torch.autograd.grad(score, attns)
    n = attns[0].shape[-1]
    rel = torch.eye(n, device=clip.device, dtype=torch.float32)
    for a, g in zip(attns, grads):
        cam = (g.float() * a.float()).clamp(min=0).mean(dim=1)[0]  # Ā_b = E_h[(∇A ⊙ A)^+]
        rel = rel + cam @ rel  # R ← R + Ā_b R
    patches = rel[0, 1:]  # class token's relevance over the patch tokens
    g = int(round((n - 1) ** 0.5))
    if g * g != n - 1:
        raise RuntimeError(f"cannot arrange {n - 1} patch tokens on a square grid")
    return patches.reshape(g, g).detach()


def clip_saliency(image: np.ndarray, prompt: str, clip) -> np.ndarray:
    """(H, W) float32 map in [0, 1] of how much each pixel supports the text ``prompt``.

    image: (H, W, 3) float32 RGB in [0, 1]; clip: a loaded :class:`lvss.models.ClipModel`. A map with
    no relevance anywhere comes back uniform (all ones).
    """
    image = check_rgb_image(image, min_side=2)
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError("CLIP saliency needs a text prompt (saliency.prompt, CLI --prompt); "
                          "choose saliency 'none' or a mask for no prompt")
    h, w = image.shape[:2]
    rel = patch_relevance(clip, image, prompt.strip())
    up = F.interpolate(rel[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    lo, hi = float(up.min()), float(up.max())
    if not np.isfinite(hi) or hi - lo <= 1e-12:
        return np.ones((h, w), np.float32)
    return ((up - lo) / (hi - lo)).clamp(0, 1).cpu().numpy().astype(np.float32)


class ClipSaliency:
    """A :class:`~lvss.types.SaliencySource` holding a loaded CLIP: ``source(image, prompt) -> (H, W)``."""

    def __init__(self, clip):
        self.clip = clip

    def __call__(self, image: np.ndarray, prompt: str) -> np.ndarray:
        return clip_saliency(image, prompt, self.clip)


__all__ = ["clip_saliency", "patch_relevance", "ClipSaliency"]
