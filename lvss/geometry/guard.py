"""Keeps paths simple while they are optimised: a step that would make a path cross itself is shortened.

After every optimiser step, each guarded path is tested (:func:`lvss.geometry.simple.crossing_counts`).
A path that now crosses itself first takes back the step of the points where it crossed (the
segments involved and those between them); if it still crosses, its whole step is shortened towards
the last position where it was a simple loop (half, a quarter, then none of the step). The momentum
of the points taken back is cleared, so the next step does not push them straight back. The rest of the scene keeps its full step. A path that
already crossed itself when guarding began is left to the export repair (:mod:`lvss.geometry.repair`).

Kinks, loops of less than ``GUARD_KINK`` pixels of outline where a node's handles overshoot it, are
let through: at an acute corner almost any move of the node makes one, blocking them would hold such
nodes still, and what they fill is a speck that the export's repair removes (its render, and so the
picture the optimiser saw, changes by under a pixel's area).
"""
from __future__ import annotations

import torch

from .simple import crossing_counts, crossing_pairs

__all__ = ["SimpleGuard", "GUARD_PIECES"]

GUARD_PIECES = 4          # flattening of the guard's test (edges per cubic segment)
GUARD_KINK = 2.0          # pixels of outline: smaller loops (a node's handles overshooting) are the export's
_BACKTRACK = (0.5, 0.25, 0.0)


class SimpleGuard:
    """Guard the paths held in ``params``: (tensor, sizes) pairs, where ``tensor`` (sum sizes, 2) holds
    the points of consecutive paths of 3S points each (a single path: sizes ``[3S]``)."""

    def __init__(self, params: list[tuple[torch.Tensor, list[int]]], pieces: int = GUARD_PIECES,
                 min_loop: float = GUARD_KINK):
        self.pieces, self.min_loop = pieces, min_loop
        self.owners: list[tuple[torch.Tensor, int, int]] = []   # (tensor, first row, end row)
        for t, sizes in params:
            r = 0
            for s in sizes:
                self.owners.append((t, r, r + s))
                r += s
        self._tensors = {id(t): t for t, _, _ in self.owners}
        self._good = {i: t.detach().clone() for i, t in self._tensors.items()}
        start = crossing_counts(self._all(), pieces, min_loop=min_loop, dtype=torch.float32) if self.owners else torch.zeros(0, dtype=torch.long)
        self.guarded = [k for k, c in enumerate(start.tolist()) if c == 0]
        self.backtracks = 0       # path steps shortened so far (for tests and reports)

    def _all(self, good: bool = False) -> list[torch.Tensor]:
        src = (lambda t: self._good[id(t)]) if good else (lambda t: t.detach())  # noqa: E731
        return [src(t)[a:b] for t, a, b in self.owners]

    @torch.no_grad()
    def __call__(self, opt=None) -> None:
        if not self.guarded:
            return
        now, good = self._all(), self._all(good=True)
        counts, pairs = crossing_pairs([now[k] for k in self.guarded], self.pieces, min_loop=self.min_loop, dtype=torch.float32)
        bad = [self.guarded[b] for b in counts.nonzero().flatten().tolist()]
        if bad:
            by_path: dict[int, list[tuple[int, int]]] = {}
            for b, i, j in pairs:
                by_path.setdefault(self.guarded[b], []).append((i, j))
            # first undo the step only where each path crossed (the points of the segments involved
            # and of those between them); where it still crosses, shorten the path's whole step
            rows = {k: _rows_of(by_path[k], now[k].shape[0]) for k in bad}
            for k in bad:
                now[k][rows[k]] = good[k][rows[k]]
            left = [k for k, c in zip(bad, crossing_counts([now[k] for k in bad], self.pieces, min_loop=self.min_loop, dtype=torch.float32).tolist()) if c]
            step = {k: now[k] - good[k] for k in left}
            for f in _BACKTRACK:
                if not left:
                    break
                for k in left:
                    now[k].copy_(good[k] + f * step[k])
                    rows[k] = slice(None)
                if f > 0.0:
                    left = [k for k, c in zip(left, crossing_counts([now[k] for k in left], self.pieces, min_loop=self.min_loop, dtype=torch.float32).tolist()) if c]
            self.backtracks += len(bad)
            if opt is not None:
                for k in bad:
                    _clear_momentum(opt, *self.owners[k], rows[k])
        for i, t in self._tensors.items():
            self._good[i].copy_(t.detach())


def _rows_of(pairs: list[tuple[int, int]], n3: int) -> torch.Tensor:
    """Point rows (of a path with n3 = 3S points) defining the segments from i to j of every crossing
    pair (the shorter way round the loop), ends included."""
    S = n3 // 3
    rows: set[int] = set()
    for i, j in pairs:
        span = range(i, j + 1) if j - i <= S - (j - i) else range(j, i + S + 1)
        for s in span:
            rows.update((3 * s + r) % n3 for r in range(4))
    return torch.tensor(sorted(rows), dtype=torch.long)


def _clear_momentum(opt, tensor: torch.Tensor, a: int, b: int, rows=slice(None)) -> None:
    """Zero the first moment of ``rows`` of rows a:b of ``tensor`` in a :class:`lvss.optimize.loop.Adam`."""
    st = opt.state.get(id(tensor))
    if st is not None:
        st[1][a:b][rows] = 0.0
