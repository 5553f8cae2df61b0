"""When to stop an optimisation: as soon as its loss stops improving noticeably.

A fixed step count is either too many for an easy image (time wasted on a flat loss) or too few for
a hard one. :class:`Plateau` watches the loss and says stop once the best loss of the last
``patience`` steps is no more than ``rel_tol`` (relative) below the best loss before them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["Plateau"]


@dataclass
class Plateau:
    """Feed it one loss per step with :meth:`step`; it returns True when the run should stop.

    rel_tol <= 0 never stops early. ``min_steps`` steps always run.
    """

    rel_tol: float = 1e-3
    patience: int = 8
    min_steps: int = 10
    history: list[float] = field(default_factory=list)
    stopped_at: int | None = None

    def step(self, loss: float) -> bool:
        self.history.append(float(loss))
        n = len(self.history)
        if self.rel_tol <= 0 or n < max(self.min_steps, self.patience + 1):
            return False
        before = min(self.history[:-self.patience])
        recent = min(self.history[-self.patience:])
        if not math.isfinite(before) or before <= 0:
            return False
        if before - recent <= self.rel_tol * before:
            self.stopped_at = n
            return True
        return False
