"""Semantic simplification by score distillation (SDS) with an unconditional Stable Diffusion prior.

The image itself is the optimised variable. Each iteration encodes it with the VAE, noises the latent
at a random timestep t ∈ ``SimplifyConfig.sds_t_range`` (fractions of the training schedule), and
asks the UNet — conditioned on the empty prompt only, no classifier-free guidance — for the noise. The
score-distillation gradient w(t)·(ε̂(z_t; ∅, t) − ε) with w(t) = 1 − ᾱ_t is pushed back through the
VAE encoder into the pixels (the UNet Jacobian is skipped, as in SDS). Without a prompt the prior pulls
towards "typical" images, which removes detail first; a snapshot every
``sds_iterations_per_level`` iterations gives the coarser levels.
"""
from __future__ import annotations

import math
import threading
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ConfigError, SimplifyConfig
from ..types import ProgressEvent, SimplifyResult, check_rgb_image


def _check_cfg(cfg: SimplifyConfig, levels: int) -> None:
    if not isinstance(levels, (int, np.integer)) or levels < 0:
        raise ConfigError(f"levels must be an integer >= 0, got {levels!r}")
    if not isinstance(cfg.sds_iterations_per_level, int) or cfg.sds_iterations_per_level < 1:
        raise ConfigError(f"sds_iterations_per_level must be an integer >= 1, got {cfg.sds_iterations_per_level!r}")
    lo, hi = cfg.sds_t_range
    if not 0.0 < lo <= hi < 1.0:
        raise ConfigError(f"sds_t_range must satisfy 0 < low <= high < 1 (fractions of the diffusion schedule), "
                          f"got {cfg.sds_t_range}")
    if not cfg.sds_lr > 0:
        raise ConfigError(f"sds_lr must be > 0, got {cfg.sds_lr}")
    if not isinstance(cfg.sds_guidance_size, int) or cfg.sds_guidance_size < 16:
        raise ConfigError(f"sds_guidance_size must be an integer >= 16 pixels, got {cfg.sds_guidance_size!r}")


def guidance_shape(height: int, width: int, size: int, factor: int) -> tuple[int, int]:
    """(h, w) the image is resampled to before the VAE: long side ``size``, both multiples of ``factor``."""
    scale = size / max(height, width)
    h = max(factor, int(round(height * scale / factor)) * factor)
    w = max(factor, int(round(width * scale / factor)) * factor)
    return h, w


def sds_step_gradient(sd, z: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """SDS gradient on the latent: w(t)·(ε̂ − ε), w(t) = 1 − ᾱ_t (float32, same shape as z).

    z: (1, 4, h, w) clean latent (no grad needed); t: (1,) long timestep; noise: ε like z;
    cond: (1, L, D) text hidden states (the empty prompt).
    """
    a = sd.alphas_cumprod[t].view(-1, 1, 1, 1)
    z_t = a.sqrt() * z.float() + (1.0 - a).sqrt() * noise.float()  # forward diffusion q(z_t | z)
    with torch.no_grad():
        pred = sd.unet(z_t.to(sd.dtype), t.to(sd.device), encoder_hidden_states=cond).sample.float()
    if sd.prediction_type == "v_prediction":  # SD 2.x 768-v models predict v; ε = √ᾱ v + √(1−ᾱ) z_t
        pred = a.sqrt() * pred + (1.0 - a).sqrt() * z_t
    grad = (1.0 - a) * (pred - noise.float())
    return torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)


def snapshot_iterations(levels: int, per_level: int) -> list[int]:
    """The 1-based iteration numbers after which the sequence's levels 1..``levels`` are taken:
    exactly ``levels`` of them, one every ``per_level`` iterations (the last at ``levels * per_level``,
    the total run)."""
    return [k * per_level for k in range(1, levels + 1)]


def simplify_sds(image: np.ndarray, levels: int, seed: int = 0, cfg: SimplifyConfig | None = None,
                 device=None, model=None,
                 progress: Callable[[ProgressEvent], None] | None = None,
                 cancel: threading.Event | None = None) -> SimplifyResult:
    """Simplification sequence by unconditional score distillation.

    image: (H, W, 3) float32 RGB in [0, 1]. Returns ``levels + 1`` images of the same shape and dtype:
    levels[0] is the input, levels[k] the image after k·``sds_iterations_per_level`` SDS iterations.
    model: a loaded :class:`lvss.models.SDModel`, else loaded (cached) from ``cfg.sd_model`` /
    ``LVSS_SD_MODEL`` on ``device`` ("auto" | "cpu" | "cuda"). The same seed gives the same result on
    the same device. progress(ProgressEvent("simplify", fraction done, message)) is called after every
    iteration, and ``cancel`` (a threading.Event) is checked before each: when set,
    :class:`lvss.types.Cancelled` is raised.
    """
    from ..types import check_cancel

    cfg = cfg or SimplifyConfig()
    image = check_rgb_image(image, min_side=2)
    _check_cfg(cfg, levels)
    if model is None:
        from ..models import load_sd, require_spec

        model = load_sd(require_spec("sd", cfg.sd_model), device)
    out = [image.copy()]
    if levels == 0:
        return SimplifyResult(levels=out)
    sd, dev = model, model.device
    h, w = image.shape[:2]
    gh, gw = guidance_shape(h, w, cfg.sds_guidance_size, sd.vae_factor)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))  # CPU generator: same draws on any device
    T = int(sd.alphas_cumprod.shape[0])
    t_lo = max(1, int(math.floor(cfg.sds_t_range[0] * T)))
    t_hi = max(t_lo, min(T - 1, int(math.ceil(cfg.sds_t_range[1] * T))))
    cond = sd.encode_text("")  # empty conditional text: only the unconditional prediction guides
    x = torch.from_numpy(image).permute(2, 0, 1)[None].to(dev).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=cfg.sds_lr)
    n = cfg.sds_iterations_per_level
    snapshots = set(snapshot_iterations(levels, n))
    total = levels * n
    for it in range(total):
        check_cancel(cancel)
        t = torch.randint(t_lo, t_hi + 1, (1,), generator=gen)
        xg = F.interpolate(x, size=(gh, gw), mode="bilinear", align_corners=False) if (gh, gw) != (h, w) else x
        # gradients reach the pixels through the VAE encoder (posterior mean, scaled like SD's latents)
        z = sd.vae.encode((xg * 2.0 - 1.0).to(sd.dtype)).latent_dist.mean * sd.vae_scale
        noise = torch.randn(z.shape, generator=gen).to(dev)
        grad = sds_step_gradient(sd, z.detach(), t.to(dev), noise, cond)
        # ∂/∂z of ½‖z − sg(z − g)‖² is g: the SDS update without differentiating the UNet
        loss = 0.5 * ((z.float() - (z.detach().float() - grad)) ** 2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        x.grad.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)  # an fp16 overflow in the VAE must not poison x
        opt.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
        if it + 1 in snapshots:
            out.append(x.detach()[0].permute(1, 2, 0).float().cpu().numpy().astype(np.float32))
        if progress is not None:
            progress(ProgressEvent("simplify", (it + 1) / total, f"SDS iteration {it + 1}/{total}"))
    return SimplifyResult(levels=out)


class SdsSimplifier:
    """A :class:`~lvss.types.Simplifier` holding a loaded Stable Diffusion: ``simplifier(image, levels, seed)``."""

    def __init__(self, model, cfg: SimplifyConfig | None = None):
        self.model = model
        self.cfg = cfg or SimplifyConfig()

    def __call__(self, image: np.ndarray, levels: int, seed: int = 0, progress=None, cancel=None) -> SimplifyResult:
        return simplify_sds(image, levels, seed, self.cfg, model=self.model, progress=progress, cancel=cancel)


__all__ = ["simplify_sds", "SdsSimplifier", "sds_step_gradient", "guidance_shape", "snapshot_iterations"]
