"""Nodes where the picture needs them (lvss.optimize.subdivide): segments halved midway through the
polish where the picture is furthest from the target."""
from __future__ import annotations

import numpy as np
import torch

from lvss.geometry.simple import crossing_counts, flatten_closed
from lvss.optimize.subdivide import MIN_LENGTH, halved, split_where_wrong
from lvss.render import render_paths
from lvss.scene import circle_path

H = W = 48


def _square(x0, y0, x1, y1) -> torch.Tensor:
    corners = torch.tensor([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=torch.float32)
    nxt = torch.roll(corners, -1, 0)
    return torch.stack([corners, corners + (nxt - corners) / 3, corners + 2 * (nxt - corners) / 3], 1).reshape(-1, 2)


def _targets(points, colors):
    rgba = render_paths(points, colors, W, H)
    a = rgba[..., 3]
    return rgba[..., :3] * a[..., None], a


def test_halving_keeps_the_curve():
    p = circle_path(24.0, 24.0, 15.0).points
    which = np.array([True, False, True, False])
    q = halved(p, which)
    assert len(q) // 3 == len(p) // 3 + 2
    # every point of the halved path lies on the original curve
    fine = flatten_closed(p, 512)
    d = np.sqrt(((flatten_closed(q, 64)[:, None] - fine[None]) ** 2).sum(-1)).min(1)
    assert d.max() < 0.01
    # rendered alike, up to the renderer's flattening (a fixed number of pieces per segment)
    colors = torch.tensor([[0.2, 0.4, 0.6, 1.0]])
    diff = (render_paths([p], colors, W, H) - render_paths([q], colors, W, H)).abs()
    assert float(diff.max()) < 0.03 and float(diff.mean()) < 1e-3


def test_the_segment_along_the_error_is_halved():
    """A square path against a target whose right side bulges: the right side is the one halved,
    the picture does not change, and the path stays simple."""
    colors = torch.tensor([[0.9, 0.1, 0.1, 1.0]])
    sq = _square(10.0, 10.0, 38.0, 38.0)
    bulge = sq.clone()
    bulge[4] += torch.tensor([8.0, 0.0])      # the right side's handles pushed out
    bulge[5] += torch.tensor([8.0, 0.0])
    tc, ta = _targets([bulge], colors)
    out = split_where_wrong([sq], colors, tc, ta, share=0.25)
    q = out[0]
    assert len(q) // 3 == 5
    # the new node lies on the right side, halfway down
    nodes = q[0::3].numpy()
    assert np.abs(nodes - [38.0, 24.0]).max(1).min() < 1e-4
    assert torch.allclose(render_paths([sq], colors, W, H), render_paths([q], colors, W, H), atol=1e-4)
    assert int(crossing_counts([q], 16)[0]) == 0


def test_nothing_halved_where_nothing_is_wrong_or_too_short():
    colors = torch.tensor([[0.1, 0.5, 0.1, 1.0]])
    sq = _square(10.0, 10.0, 38.0, 38.0)
    tc, ta = _targets([sq], colors)
    assert len(split_where_wrong([sq], colors, tc, ta, share=0.5)[0]) == len(sq)      # no error anywhere
    tiny = _square(20.0, 20.0, 20.0 + MIN_LENGTH / 2, 20.0 + MIN_LENGTH / 2)
    tc, ta = torch.zeros(H, W, 3), torch.zeros(H, W)                                # all of it wrong
    assert len(split_where_wrong([tiny], colors, tc, ta, share=1.0)[0]) == len(tiny)
    assert len(split_where_wrong([sq], colors, tc, ta, share=0.0)[0]) == len(sq)


def test_share_of_all_segments_across_paths():
    """The share counts the segments of all paths together, and the ones with the most error win,
    whichever path they belong to."""
    colors = torch.tensor([[0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    a, b = _square(4.0, 4.0, 20.0, 20.0), _square(26.0, 26.0, 44.0, 44.0)
    wrong_b = _square(26.0, 26.0, 44.0, 40.0)            # the target's second square is shorter
    tc, ta = _targets([a, wrong_b], colors)
    out = split_where_wrong([a, b], colors, tc, ta, share=1 / 8)
    assert len(out[0]) == len(a) and len(out[1]) // 3 == 5
