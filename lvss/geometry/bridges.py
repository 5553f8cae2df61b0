"""Zero-width bridges taken out of written contours: a hole as a contour of its own.

A path with a hole is one closed curve while it is optimised: the outline runs along a zero-width
bridge to the hole, round the hole the other way, and back along the same bridge
(``lvss.layering.mask_to_path(holes=True)``, and the SVG reader for compound paths). The filled area is
the same either way, but in an editor's outline view the bridge is a line from the outline to the hole,
and a designer who moves one of its nodes opens a sliver. At export a contour is therefore cut where it
runs back over a segment it has just drawn the other way: the part between the two passes is a contour
of its own (the hole, or the island), the rest closes over the bridge's ends.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .simple import segments_of

__all__ = ["split_bridges", "close_bridges", "closed_slits", "BRIDGE_TOL", "SLIT_WIDTH"]

BRIDGE_TOL = 1e-6  # px: control points this close count as the same point (contours are compared as written)
SLIT_WIDTH = 1.0  # px: a bridge whose two passes the optimiser moved apart by at most this is a slit, closed again


def _bridges(segs: np.ndarray, tol: float) -> Iterator[tuple[int, int]]:
    """Every (i, j), i < j, in order, where segment j is segment i drawn backwards (its control points
    reversed) within ``tol``, with at least two segments between them on either side."""
    s = len(segs)
    if s < 6:
        return
    # candidate pairs by their ends first (cheap), then every control point
    start, end = segs[:, 0], segs[:, 3]
    d = np.abs(start[:, None, :] - end[None, :, :]).max(-1)          # d[i, j]: start of i vs end of j
    near = (d <= tol) & (d.T <= tol)                                  # i's start = j's end, i's end = j's start
    rev = segs[:, ::-1]
    for i, j in zip(*np.nonzero(np.triu(near, 3))):
        if s - (j - i) >= 3 and np.abs(segs[i] - rev[j]).max() <= tol:
            yield int(i), int(j)


def close_bridges(points: np.ndarray, width: float = SLIT_WIDTH) -> np.ndarray | None:
    """The closed cubic path (3S, 2) with every bridge the optimiser opened into a slit closed again:
    where segment j retraces segment i backwards within ``width`` px (a zero-width bridge to a hole
    whose two passes moved apart), both become their mean, so the bridge has no width and the page no
    longer shows through it (the export then writes the hole as a contour of its own). None when the
    path has no such slit."""
    pts = np.asarray(points, np.float64)
    segs = segments_of(pts)
    pairs = [(i, j) for i, j in _bridges(segs, width) if np.abs(segs[i] - segs[j][::-1]).max() > 0]
    if not pairs:
        return None
    out = pts.copy()
    n = len(pts)
    for i, j in pairs:
        mean = 0.5 * (segs[i] + segs[j][::-1])
        for k, q in enumerate(mean):                                 # segment i's four points ...
            out[(3 * i + k) % n] = q
        for k, q in enumerate(mean[::-1]):                           # ... and segment j's, backwards
            out[(3 * j + k) % n] = q
    return out


def closed_slits(points: list) -> list:
    """The paths ``points`` (torch (3S, 2) each) with :func:`close_bridges` applied: a path with a slit
    is replaced by the closed one (same dtype and device), the others are kept as they are."""
    import torch

    out = []
    for p in points:
        closed = close_bridges(p.detach().cpu().numpy())
        out.append(p if closed is None else torch.as_tensor(closed, dtype=p.dtype, device=p.device))
    return out


def _without_spikes(segs: np.ndarray, tol: float) -> tuple[np.ndarray, bool]:
    """``segs`` without zero-width spikes: a segment followed by itself drawn backwards (what is left
    of a bridge of several segments once its outer pair is taken out) goes with its return, as long
    as three segments are left. Returns (segments, whether any went)."""
    spiked = False
    while len(segs) > 3:
        nxt = np.roll(segs, -1, 0)
        back = np.abs(segs - nxt[:, ::-1]).reshape(len(segs), -1).max(1) <= tol
        if not back.any():
            break
        k = int(np.argmax(back))
        segs = np.delete(segs, [k, (k + 1) % len(segs)], 0)
        spiked = True
    return segs, spiked


def split_bridges(contour: np.ndarray, tol: float = BRIDGE_TOL) -> list[np.ndarray]:
    """The closed cubic contour (3S, 2) as contours without zero-width bridges: wherever segment j
    retraces segment i backwards, the segments between them become a contour of their own and the rest
    closes without the pair. Repeated until no bridge is left (a hole inside an island, two holes).
    The filled area is unchanged; a contour with no bridge comes back as it is (the same array)."""
    todo, out = [np.asarray(contour)], []
    while todo:
        c = todo.pop()
        segs = segments_of(np.asarray(c, np.float64))
        segs, spiked = _without_spikes(segs, tol)
        found = next(_bridges(segs, tol), None)
        if found is None:
            out.append(c if not spiked else segs[:, :3].reshape(-1, 2).astype(np.asarray(c).dtype))
            continue
        i, j = found
        inner = segs[i + 1:j]
        outer = np.concatenate([segs[j + 1:], segs[:i]])
        for part in (outer, inner):
            todo.append(part[:, :3].reshape(-1, 2).astype(np.asarray(c).dtype))
    return out[::-1]
