"""Keeps paths simple while they are optimised: a step that would make a path cross itself is shortened.

After every optimiser step, each guarded path is tested (:func:`lvss.geometry.simple.crossing_counts`).
A path that now crosses itself first takes back the step of the points where it crossed (the
segments involved and those between them); if it still crosses, its whole step is shortened towards
the last position where it was a simple loop (half, a quarter, then none of the step). The momentum
of the points taken back is cleared, so the next step does not push them straight back. The rest of the scene keeps its full step. A path that
already crossed itself when guarding began is left to the export repair (:mod:`lvss.geometry.repair`).
"""
from __future__ import annotations

import torch

from .simple import crossing_counts, crossing_segments

__all__ = ["SimpleGuard", "GUARD_PIECES"]

GUARD_PIECES = 6          # flattening of the guard's test (edges per cubic segment)
_BACKTRACK = (0.5, 0.25, 0.0)


class SimpleGuard:
    """Guard the paths held in ``params``: (tensor, sizes) pairs, where ``tensor`` (sum sizes, 2) holds
    the points of consecutive paths of 3S points each (a single path: sizes ``[3S]``)."""

    def __init__(self, params: list[tuple[torch.Tensor, list[int]]], pieces: int = GUARD_PIECES):
        self.pieces = pieces
        self.owners: list[tuple[torch.Tensor, int, int]] = []   # (tensor, first row, end row)
        for t, sizes in params:
            r = 0
            for s in sizes:
                self.owners.append((t, r, r + s))
                r += s
        self.good = [self._view(k).detach().clone() for k in range(len(self.owners))]
        start = crossing_counts(self.good, pieces) if self.good else torch.zeros(0, dtype=torch.long)
        self.guarded = (start == 0).tolist()
        self.backtracks = 0       # steps shortened so far (for tests and reports)

    def _view(self, k: int) -> torch.Tensor:
        t, a, b = self.owners[k]
        return t[a:b]

    @torch.no_grad()
    def __call__(self, opt=None) -> None:
        n = len(self.owners)
        if n == 0:
            return
        idx = [k for k in range(n) if self.guarded[k]]
        if not idx:
            return
        now = [self._view(k).detach() for k in idx]
        bad = (crossing_counts(now, self.pieces) > 0).nonzero().flatten().tolist()
        for b in bad:
            k = idx[b]
            view, good = self._view(k), self.good[k]
            rows = _rows_of(crossing_segments(view, self.pieces), view.shape[0])
            # first undo the step only where the path crossed (the points of the segments involved,
            # and of those between them); if it still crosses, shorten the whole path's step
            cand = view.detach().clone()
            cand[rows] = good[rows]
            if int(crossing_counts([cand], self.pieces)[0]) == 0:
                view.copy_(cand)
            else:
                rows = slice(None)
                step = view.detach() - good
                for f in _BACKTRACK:
                    cand = good + f * step
                    if f == 0.0 or int(crossing_counts([cand], self.pieces)[0]) == 0:
                        view.copy_(cand)
                        break
            self.backtracks += 1
            if opt is not None:
                _clear_momentum(opt, *self.owners[k], rows)
        for k in idx:
            self.good[k].copy_(self._view(k))


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
