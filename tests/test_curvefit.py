"""The curve fit of pixel contours (lvss.geometry.curvefit) and mask_to_path(curve=True)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lvss.geometry.curvefit import find_corners, fit_contour, fit_contours
from lvss.geometry.simple import crossing_counts, segments_of
from lvss.layering import _outer_contour, curve_paths, mask_to_path
from lvss.render import render_paths

H, W = 64, 80


def _disc(cy, cx, r, h=H, w=W):
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def _flat(pts: np.ndarray, k: int = 64) -> np.ndarray:
    """Dense points along the closed cubic path (3S, 2)."""
    u = np.linspace(0.0, 1.0, k, endpoint=False)[:, None, None]
    s = segments_of(np.asarray(pts, np.float64))[None]
    v = 1.0 - u
    return (v ** 3 * s[:, :, 0] + 3 * v * v * u * s[:, :, 1] + 3 * v * u * u * s[:, :, 2]
            + u ** 3 * s[:, :, 3]).reshape(-1, 2)


def _dist_to_curve(points: np.ndarray, pts: np.ndarray) -> np.ndarray:
    curve = _flat(pts, 256)
    return np.sqrt(((points[:, None] - curve[None]) ** 2).sum(-1)).min(1)


def _coverage(points: torch.Tensor, h=H, w=W) -> np.ndarray:
    rgba = render_paths([points], torch.tensor([[0.0, 0.0, 0.0, 1.0]]), w, h)
    return rgba[..., 3].detach().numpy() > 0.5


def _iou(a, b):
    return float((a & b).sum() / max((a | b).sum(), 1))


def _shapes():
    yy, xx = np.mgrid[:H, :W]
    ang, rad = np.arctan2(yy - 32, xx - 40), np.hypot(yy - 32, xx - 40)
    sq = np.zeros((H, W), bool)
    sq[12:52, 20:60] = True
    return {
        "disc": _disc(32, 40, 24),
        "ellipse": ((xx - 40) / 34) ** 2 + ((yy - 32) / 14) ** 2 < 1,
        "square": sq,
        "star": rad < 18 + 7 * np.cos(5 * ang),
        "blob": rad < 20 + 3 * np.sin(3 * ang) + 2 * np.cos(7 * ang + 1),
        "L": (((yy >= 5) & (yy < 59) & (xx >= 5) & (xx < 22)) | ((yy >= 42) & (yy < 59) & (xx >= 5) & (xx < 75))),
    }


@pytest.mark.parametrize("name", sorted(_shapes()))
def test_fit_stays_near_the_contour_and_covers_the_shape(name):
    mask = _shapes()[name]
    c = _outer_contour(mask)
    pts = fit_contour(c.points, 0.5)
    assert pts.shape[1] == 2 and len(pts) % 3 == 0 and np.isfinite(pts).all()
    # the fit keeps within its tolerance of the smoothed staircase, which lies within half a pixel
    # of the staircase itself
    assert _dist_to_curve(c.points, pts).max() < 0.5 + 0.5
    assert int(crossing_counts([torch.from_numpy(pts.astype(np.float32))], 16)[0]) == 0
    assert _iou(_coverage(torch.from_numpy(pts.astype(np.float32))), mask) > 0.95


def test_smooth_outlines_get_few_smooth_segments():
    shapes = _shapes()
    # (at 0.75 px: the staircase of a binary disc strays up to 0.4 px from the true circle, on both
    # sides, so a tighter tolerance follows some of its steps)
    for name, most in (("disc", 4), ("ellipse", 8)):
        c = _outer_contour(shapes[name])
        assert len(find_corners(c.points)) == 0
        pts = fit_contour(c.points, 0.75)
        S = len(pts) // 3
        assert 4 <= S <= most, (name, S)
        # every node is smooth: its incoming and outgoing handles lie on one line through it
        seg = segments_of(pts)
        d_in = seg[:, 0] - np.roll(seg[:, 2], 1, 0)
        d_out = seg[:, 1] - seg[:, 0]
        cross = d_in[:, 0] * d_out[:, 1] - d_in[:, 1] * d_out[:, 0]
        assert (np.abs(cross) <= 1e-6 * np.linalg.norm(d_in, axis=1) * np.linalg.norm(d_out, axis=1) + 1e-9).all()
        assert ((d_in * d_out).sum(1) > 0).all()


def test_square_is_four_straight_segments_through_its_corners():
    c = _outer_contour(_shapes()["square"])
    assert len(find_corners(c.points)) == 4
    pts = fit_contour(c.points, 0.5)
    assert len(pts) // 3 == 4
    for corner in ([20, 12], [60, 12], [60, 52], [20, 52]):
        assert np.abs(pts[::3] - corner).max(1).min() <= 0.5
    seg = segments_of(pts)
    for a, h1, h2, b in seg:
        for h in (h1, h2):
            assert abs((b - a)[0] * (h - a)[1] - (b - a)[1] * (h - a)[0]) / np.linalg.norm(b - a) < 1e-6


def test_corners_of_an_l_shape():
    c = _outer_contour(_shapes()["L"])
    corners = c.points[find_corners(c.points)]
    want = [[5, 5], [22, 5], [22, 42], [75, 42], [75, 59], [5, 59]]
    assert len(corners) == 6
    for w in want:
        assert np.abs(corners - w).max(1).min() <= 1.0


def test_tolerance_trades_nodes_for_closeness():
    c = _outer_contour(_shapes()["blob"])
    coarse, fine = fit_contour(c.points, 1.0), fit_contour(c.points, 0.25)
    assert len(coarse) < len(fine)
    assert _dist_to_curve(c.points, fine).max() < _dist_to_curve(c.points, coarse).max()


def test_mask_to_path_curve_has_fewer_nodes_and_keeps_holes():
    disc = _disc(32, 40, 24)
    dp, cv = mask_to_path(disc), mask_to_path(disc, curve=True)
    assert cv.num_segments < dp.num_segments
    assert _iou(_coverage(cv.points), disc) > 0.97
    ring = disc & ~_disc(32, 40, 12)
    p = mask_to_path(ring, holes=True, curve=True)
    cov = _coverage(p.points)
    assert _iou(cov, ring) > 0.95 and not cov[32, 40]
    capped = mask_to_path(_shapes()["star"], max_segments=6, curve=True)
    assert capped is not None and capped.num_segments <= 6


def test_mask_to_path_curve_small_and_thin_shapes():
    dot = _disc(10, 10, 2.5)
    p = mask_to_path(dot, curve=True)
    assert p is not None and _iou(_coverage(p.points), dot) > 0.8
    bar = np.zeros((H, W), bool)
    bar[30:32, 5:75] = True                                  # two pixels thick
    p = mask_to_path(bar, curve=True)
    assert p is not None and _iou(_coverage(p.points), bar) > 0.95


def test_fit_in_bounded_batches_is_the_same_fit(monkeypatch):
    """The runs of a split level are fitted in batches of bounded size (a large contour with many
    corners); smaller batches give the same segments, to rounding, and every segment stays within
    the tolerance."""
    import lvss.geometry.curvefit as cf

    yy, xx = np.mgrid[:400, :400]
    ang, rad = np.arctan2(yy - 200, xx - 200), np.hypot(yy - 200, xx - 200)
    mask = (rad < 150 + 12 * np.sin(9 * ang) + 6 * np.cos(23 * ang)) | ((np.abs(yy - 200) < 20) & (xx > 20))
    c = _outer_contour(mask)
    whole = fit_contour(c.points, 0.5)
    monkeypatch.setattr(cf, "_BATCH", 64)
    assert len(cf._batches(np.arange(5, 50))) > 1
    parts = fit_contour(c.points, 0.5)
    assert parts.shape == whole.shape and np.abs(parts - whole).max() < 1e-6
    assert _dist_to_curve(c.points, parts).max() < 0.5 + 0.5


@pytest.mark.parametrize("name", sorted(_shapes()))
def test_neighbours_joined_where_one_cubic_follows_both(name, monkeypatch):
    """Splitting at the farthest point leaves nodes that one cubic would not have needed: the fit
    joins those neighbours, so it has no more segments than the split alone and still keeps within
    its tolerance of the smoothed contour."""
    import lvss.geometry.curvefit as cf

    c = _outer_contour(_shapes()[name])
    joined = fit_contour(c.points, 0.5)
    monkeypatch.setattr(cf, "_joined", lambda Q, lo, hi, t0, t1, cubics, tol: (cubics, lo))
    split = fit_contour(c.points, 0.5)
    assert len(joined) <= len(split)
    assert _dist_to_curve(c.points, joined).max() < 0.5 + 0.5
    assert int(crossing_counts([torch.from_numpy(joined.astype(np.float32))], 16)[0]) == 0


def test_a_binary_disc_takes_few_segments_within_tolerance():
    """A binary disc of radius 24 px at 0.5 px: the split alone took 16 segments; joined, at most 12,
    every one within the tolerance of the smoothed staircase."""
    import lvss.geometry.curvefit as cf

    c = _outer_contour(_disc(32, 40, 24))
    pts = fit_contour(c.points, 0.5)
    assert 4 <= len(pts) // 3 <= 12
    n = len(c.points)
    smooth = cf._smoothed(np.concatenate([c.points, c.points, c.points[:1]], 0), np.array([0]), np.array([n + 1]))
    assert _dist_to_curve(smooth, pts).max() <= 0.5 + 0.02


def test_contours_fitted_together_give_the_paths_fitted_one_by_one():
    # a picture's outlines go through the fit in one batch: each comes out as it does alone (the
    # batch pads runs of other lengths, which may move the last bits of a sum)
    shapes = _shapes()
    contours = [_outer_contour(m, holes=True) for m in shapes.values()]
    ring = _disc(32, 40, 24) & ~_disc(32, 40, 10)
    contours.append(_outer_contour(ring, holes=True))   # a hole, joined by a bridge: fixed nodes
    assert len(contours[-1].fixed)
    together = fit_contours([(c.points, c.fixed) for c in contours], 0.5)
    for c, pts in zip(contours, together):
        alone = fit_contour(c.points, 0.5, c.fixed)
        assert pts.shape == alone.shape
        np.testing.assert_allclose(pts, alone, atol=1e-9)
    # and the masks' paths from one call are those of mask_to_path, mask by mask
    masks = list(shapes.values()) + [ring, np.zeros((H, W), bool)]
    paths = curve_paths(masks, holes=True)
    assert paths[-1] is None
    for m, p in zip(masks[:-1], paths[:-1]):
        q = mask_to_path(m, holes=True, curve=True)
        np.testing.assert_allclose(p.points.numpy(), q.points.numpy(), atol=1e-5)
