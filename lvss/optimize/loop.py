"""The one optimiser loop of lvss: Adam steps with a learning-rate schedule, a loss callback, hooks
after each step (clamping, projection), progress, cancel and optional plateau stopping.

Every optimisation in the project runs through :func:`adam_loop`: the layered structure stage and
refinement (``structure.py``, ``refine.py``), compact mode's recolouring stages and its path stage
(``lvss.compact``). :func:`visible_kept` is the pruning rule both modes apply between rounds.
"""
from __future__ import annotations

import math
import threading
from typing import Callable, Sequence

import torch

from ..types import check_cancel
from .stopping import Plateau

__all__ = ["Adam", "adam_loop", "lr_decay", "hold_then_decay", "visible_kept"]


def lr_decay(step: int, total: int, lr: float) -> float:
    """Exponential decay from lr to lr/10 over the run."""
    return lr * (0.1 ** (step / max(total - 1, 1)))


def hold_then_decay(hold_share: float) -> Callable[[int, int, float], float]:
    """Schedule: lr for the first ``hold_share`` of the steps, then decaying to lr/10."""
    def schedule(step: int, total: int, lr: float) -> float:
        hold = int(hold_share * total)
        return lr if step < hold else lr_decay(step - hold, total - hold, lr)
    return schedule


class Adam:
    """Adam over parameter groups, the same update as ``torch.optim.Adam`` with its defaults (betas
    0.9/0.999, eps 1e-8, no weight decay), written out: ``torch.optim`` imports TorchDynamo on its
    first step, which costs about 2 s per process on a 2-core CPU, more than a whole clip-art run's
    structure stage. ``param_groups``: dicts with "params" and "lr" (and any other keys, kept)."""

    def __init__(self, groups: Sequence[dict], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.param_groups = [dict(g, params=list(g["params"])) for g in groups]
        self.betas, self.eps = betas, eps
        self.state: dict[int, tuple[int, torch.Tensor, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.betas
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                k, m, v = self.state.get(id(p)) or (0, torch.zeros_like(p), torch.zeros_like(p))
                k += 1
                m.lerp_(p.grad, 1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (v.sqrt() / math.sqrt(1 - b2 ** k)).add_(self.eps)
                p.addcdiv_(m, denom, value=-g["lr"] / (1 - b1 ** k))
                self.state[id(p)] = (k, m, v)


def adam_loop(groups: Sequence[tuple[Sequence[torch.Tensor], float]], loss_fn: Callable[[], torch.Tensor],
              iters: int, *, schedule: Callable[[int, int, float], float] = lr_decay,
              after_step: Callable[[], None] | None = None,
              callback: Callable[[int, float], None] | None = None,
              stop: Plateau | None = None, cancel: threading.Event | None = None,
              sanitize: bool = True, cancel_every: int = 1,
              guard: Callable[["Adam"], None] | None = None) -> int:
    """Run up to ``iters`` Adam steps; returns the number of steps taken.

    groups: (parameters, base learning rate) per parameter group; the rate of step k is
    ``schedule(k, iters, base)``. loss_fn() builds the loss from the current parameters. After each
    step: non-finite gradients were zeroed first (``sanitize``), then ``after_step()`` (clamps,
    projections), then ``guard(optimizer)`` (e.g. :class:`lvss.geometry.guard.SimpleGuard`, which
    shortens steps that would make a path cross itself), then ``callback(k, loss)``; ``stop`` (a :class:`Plateau`) ends the run once the
    loss levels off. ``cancel`` is checked every ``cancel_every`` steps (raises :class:`lvss.types.Cancelled`).
    """
    if iters <= 0:
        return 0
    params = [t for ps, _ in groups for t in ps]
    opt = Adam([{"params": list(ps), "lr": lr, "base": lr} for ps, lr in groups])
    for it in range(iters):
        if it % cancel_every == 0:
            check_cancel(cancel)
        for grp in opt.param_groups:
            grp["lr"] = schedule(it, iters, grp["base"])
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        if sanitize:
            for t in params:
                if t.grad is not None:
                    torch.nan_to_num_(t.grad, nan=0.0, posinf=0.0, neginf=0.0)
        opt.step()
        if after_step is not None:
            after_step()
        if guard is not None:
            guard(opt)
        value = float(loss.detach())
        if callback is not None:
            callback(it, value)
        if stop is not None and stop.step(value):
            return it + 1
    return iters


def visible_kept(areas: torch.Tensor, n_fixed: int, min_area: float) -> list[int]:
    """Indices of the paths pruning keeps: the first ``n_fixed``, and every later one whose visible
    area ``areas[i]`` (pixels, :func:`lvss.optimize.structure.visible_area`) is at least ``min_area``."""
    area = areas.tolist()
    return [i for i in range(len(area)) if i < n_fixed or area[i] >= min_area]
