"""Keeps paths simple while they are optimised: a step that would make a path cross itself is shortened.

After every optimiser step, the guarded paths are tested in one pass (:class:`lvss.geometry.simple.CrossingIndex`,
set up once per guard).
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

import numpy as np
import torch

from .simple import CrossingIndex, sorted_unique

__all__ = ["SimpleGuard", "GUARD_PIECES"]

GUARD_PIECES = 4          # flattening of the guard's test (edges per cubic segment)
GUARD_KINK = 2.0          # pixels of outline: smaller loops (a node's handles overshooting) are the export's
_BACKTRACK = (0.5, 0.25, 0.0)


class SimpleGuard:
    """Guard the paths held in ``params``: (tensor, sizes) pairs, where ``tensor`` (sum sizes, 2) holds
    the points of consecutive paths of 3S points each (a single path: sizes ``[3S]``).

    The guarded paths' crossing tests are set up once (:class:`lvss.geometry.simple.CrossingIndex`,
    over the rows of all the tensors put end to end), so a step costs one pass over every path."""

    def __init__(self, params: list[tuple[torch.Tensor, list[int]]], pieces: int = GUARD_PIECES,
                 min_loop: float = GUARD_KINK):
        self.pieces, self.min_loop = pieces, min_loop
        self.owners: list[tuple[torch.Tensor, int, int]] = []   # (tensor, first row, end row)
        self._tensors: list[torch.Tensor] = []                  # each tensor once, in order
        offset: dict[int, int] = {}
        rows = 0
        for t, sizes in params:
            if id(t) not in offset:
                offset[id(t)] = rows
                self._tensors.append(t)
                rows += int(t.shape[0])
            r = 0
            for s in sizes:
                self.owners.append((t, r, r + s))
                r += s
        self._offsets = [offset[id(t)] for t in self._tensors]
        self.starts = np.array([offset[id(t)] + a for t, a, _ in self.owners], np.int64)
        self.sizes = np.array([b - a for _, a, b in self.owners], np.int64)
        self.backtracks = 0       # path steps shortened so far (for tests and reports)
        self.guarded: list[int] = []
        if not self.owners:
            return
        self._good = self._all()
        dev = self._good.device
        start, _ = CrossingIndex(self.sizes, self.starts, pieces, min_loop, dev).crossings(self._good.float())
        self.guarded = [k for k, c in enumerate(start.tolist()) if c == 0]
        self.index = CrossingIndex(self.sizes[self.guarded], self.starts[self.guarded], pieces, min_loop, dev)

    def _all(self) -> torch.Tensor:
        """(R, 2): the rows of every tensor, end to end (a copy)."""
        ts = [t.detach() for t in self._tensors]
        return torch.cat(ts, 0) if len(ts) > 1 else ts[0].clone()

    @torch.no_grad()
    def __call__(self, opt=None) -> None:
        if not self.guarded:
            return
        now, good = self._all(), self._good
        counts, pairs = self.index.crossings(now.float(), as_tensor=True)
        bad = counts.nonzero().flatten()
        if bad.numel():
            # first undo the step only where each path crossed (the points of the segments involved
            # and of those between them); where it still crosses, shorten the path's whole step
            g_sizes, g_starts = self.sizes[self.guarded], self.starts[self.guarded]
            undo = torch.from_numpy(_rows_of(pairs.cpu().numpy(), g_sizes, g_starts)).to(now.device)
            now[undo] = good[undo]
            only = torch.zeros(len(self.guarded), dtype=torch.bool, device=now.device)
            only[bad] = True
            left = self.index.crossings(now.float(), only=only)[0].nonzero().flatten()
            touched = [undo]
            if left.numel():
                whole = _path_rows(left.cpu().numpy(), g_sizes, g_starts).to(now.device)
                touched.append(whole)
                step = now - good
                for f in _BACKTRACK:
                    now[whole] = good[whole] + f * step[whole] if f > 0.0 else good[whole]
                    if f == 0.0:
                        break
                    only.zero_()
                    only[left] = True
                    left = self.index.crossings(now.float(), only=only)[0].nonzero().flatten()
                    if not left.numel():
                        break
                    whole = _path_rows(left.cpu().numpy(), g_sizes, g_starts).to(now.device)
            self.backtracks += int(bad.numel())
            rows = (torch.from_numpy(sorted_unique(torch.cat(touched).cpu().numpy(), now.shape[0])).to(now.device)
                    if len(touched) > 1 else undo)
            for t, o in zip(self._tensors, self._offsets):
                sel = rows[(rows >= o) & (rows < o + t.shape[0])]
                if sel.numel():
                    t.detach()[sel - o] = now[sel]
                    if opt is not None:
                        _clear_momentum(opt, t, sel - o)
        self._good = now


def _path_rows(paths: np.ndarray, sizes: np.ndarray, starts: np.ndarray) -> torch.Tensor:
    """(rows,) long: every row of the given paths (numbers into sizes / starts)."""
    n = sizes[paths]
    first = np.repeat(starts[paths] - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
    return torch.from_numpy(first + np.arange(int(n.sum())))


def _rows_of(pairs: np.ndarray, sizes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Rows (sorted, each once) defining the segments from i to j of every crossing pair (path, i, j)
    (the shorter way round the path's loop), ends included: path k has sizes[k] = 3S points from row
    starts[k]."""
    k, i, j = pairs[:, 0], pairs[:, 1], pairs[:, 2]
    n3 = sizes[k]
    S = n3 // 3
    d = j - i
    fwd = d <= S - d
    first = np.where(fwd, i, j)
    count = np.where(fwd, d, S - d) + 1                       # segments in the span
    which = np.repeat(np.arange(len(k)), count)
    seg = first[which] + np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    r = (3 * seg[:, None] + np.arange(4)) % n3[which][:, None] + starts[k][which][:, None]
    return sorted_unique(r.reshape(-1), int(r.max()) + 1 if r.size else 0)


def _clear_momentum(opt, tensor: torch.Tensor, rows) -> None:
    """Zero the first moment of ``rows`` of ``tensor`` in a :class:`lvss.optimize.loop.Adam`."""
    st = opt.state.get(id(tensor))
    if st is not None:
        st[1][rows] = 0.0
