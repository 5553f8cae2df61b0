"""Losses of the path optimisation stages."""
from __future__ import annotations

import torch


def error_map(C: torch.Tensor, A: torch.Tensor, target_c: torch.Tensor, target_a: torch.Tensor,
              weight: torch.Tensor | None = None) -> torch.Tensor:
    """(H, W) squared error on premultiplied colour (H, W, 3) plus alpha (H, W), optionally weighted per
    pixel by ``weight`` (H, W). Matching premultiplied values makes transparent pixels count as such."""
    e = ((C - target_c) ** 2).sum(-1) + (A - target_a) ** 2
    if weight is not None:
        e = e * weight
    return e


def image_loss(C: torch.Tensor, A: torch.Tensor, target_c: torch.Tensor, target_a: torch.Tensor,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of :func:`error_map`: the loss every path optimisation stage minimises."""
    return error_map(C, A, target_c, target_a, weight).mean()


def overlap_loss(coverage_sum: torch.Tensor) -> torch.Tensor:
    """Overlap penalty of the structure stage: mean excess of summed path coverage over 1 (H, W)."""
    return torch.relu(coverage_sum - 1.0).mean()


# -- saliency: one convention for both modes ------------------------------------------------------------
def saliency_weight(sal, device) -> torch.Tensor | None:
    """Per-pixel image-loss weight 1 + S (H, W) on ``device``; None for a uniform map (None)."""
    if sal is None:
        return None
    return torch.from_numpy(1.0 + sal).to(device)
