"""Mask layering and contour -> Bézier initialisation (lvss.layering)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lvss.layering import (Layering, LayerMask, build_layers, colour_name, init_scene, layer_name, mask_to_path,
                           polygon_to_smooth_path)
from lvss.render import render_paths
from lvss.scene import Path, Scene
from lvss.segment.classical import segment_classical
from lvss.types import MaskSet

H, W = 48, 64


def _disc(cy: float, cx: float, r: float, h: int = H, w: int = W) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def _rect(r0: int, r1: int, c0: int, c1: int, h: int = H, w: int = W) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[r0:r1, c0:c1] = True
    return m


def _ms(*masks: np.ndarray) -> MaskSet:
    m = np.stack(masks) if masks else np.zeros((0, H, W), bool)
    return MaskSet(m, np.ones(len(m), np.float32), np.full((len(m), 3), 0.5, np.float32))


def _coverage(path: Path, h: int, w: int) -> np.ndarray:
    rgba = render_paths([path.points], torch.tensor([[0.0, 0.0, 0.0, 1.0]]), w, h)
    return rgba[..., 3].detach().numpy() > 0.5


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _assert_no_overlap_in_layers(lay: Layering) -> None:
    for layer in lay.layers:
        if layer:
            assert np.stack([m.mask for m in layer]).sum(0).max() <= 1


# -- build_layers ------------------------------------------------------------------------------
def test_nested_discs_two_layers_big_at_back():
    big, small = _disc(24, 32, 18), _disc(24, 32, 7)
    lay = build_layers([_ms(small), _ms(big)])        # finest first, coarsest last
    assert len(lay) == 2
    assert [len(layer) for layer in lay.layers] == [1, 1]
    back, front = lay.layers[0][0], lay.layers[1][0]
    np.testing.assert_array_equal(back.mask, big)
    np.testing.assert_array_equal(front.mask, small)
    assert back.level == 1 and front.level == 0
    assert back.area == big.sum() and back.color.shape == (3,)


def test_segmented_levels_background_ring_goes_behind():
    """Real segmentations: background (with holes) → big disc → small disc, repeats dropped."""
    big, small = _disc(24, 32, 18), _disc(24, 32, 7)
    fine = np.full((H, W, 3), 1.0, np.float32)
    fine[big] = (0.2, 0.6, 0.2)
    fine[small] = (0.1, 0.1, 0.1)
    coarse = np.full((H, W, 3), 1.0, np.float32)
    coarse[big] = (0.2, 0.6, 0.2)
    lay = build_layers([segment_classical(fine), segment_classical(coarse)])
    assert [len(layer) for layer in lay.layers] == [1, 1, 1]
    assert lay.layers[0][0].mask.all()               # background, holes filled
    assert _iou(lay.layers[1][0].mask, big) == 1.0
    assert _iou(lay.layers[2][0].mask, small) == 1.0
    assert [layer[0].level for layer in lay.layers] == [1, 1, 0]


def test_disjoint_masks_share_a_layer_and_layers_never_overlap():
    rng = np.random.default_rng(3)
    levels = []
    for _ in range(3):
        masks = []
        occupied = np.zeros((H, W), bool)
        for _ in range(6):
            r0, c0 = rng.integers(0, H - 8), rng.integers(0, W - 8)
            m = _rect(r0, r0 + rng.integers(3, 16), c0, c0 + rng.integers(3, 16)) & ~occupied
            if m.sum() >= 4:
                masks.append(m)
                occupied |= m
        levels.append(_ms(*masks))
    lay = build_layers(levels)
    _assert_no_overlap_in_layers(lay)
    # overlapping masks are stacked larger behind smaller
    placed = [(li, m) for li, layer in enumerate(lay.layers) for m in layer]
    for li, a in placed:
        for lj, b in placed:
            if a is not b and (a.mask & b.mask).sum() > 0.05 * min(a.area, b.area) and a.area > b.area:
                assert li < lj


def test_side_by_side_masks_stay_in_one_layer():
    left, right = _rect(5, 40, 2, 30), _rect(5, 40, 30, 60)
    lay = build_layers([_ms(right), _ms(left)])
    assert len(lay) == 1 and len(lay.layers[0]) == 2


def test_dedup_drops_repeats_only():
    a = _rect(5, 35, 5, 45)
    near = _rect(5, 35, 5, 46)                      # IoU 30/31
    half = _rect(5, 35, 25, 60)
    lay = build_layers([_ms(near), _ms(a)])
    assert lay.num_masks == 1 and lay.layers[0][0].level == 1
    lay = build_layers([_ms(near), _ms(a)], dedup_iou=0.99)
    assert lay.num_masks == 2
    lay = build_layers([_ms(half), _ms(a)])
    assert lay.num_masks == 2 and len(lay) == 2


def test_an_outline_ring_is_not_a_repeat_of_the_fill_inside_it():
    # line art: a 2-px black ring around a white disc, both found at the same level; filled, the
    # ring is nearly the disc (IoU > 0.9), but the two share no pixel
    inner = _disc(24, 32, 18)
    ring = _disc(24, 32, 20) & ~inner
    assert _iou(inner, ring | inner) > 0.8
    lay = build_layers([_ms(inner, ring)], dedup_iou=0.8)
    assert lay.num_masks == 2 and len(lay) == 2
    assert lay.layers[0][0].area == int((ring | inner).sum())   # the ring, filled, behind
    assert lay.layers[1][0].area == int(inner.sum())            # the fill in front of it
    # the same ring found again at a coarser level is still a repeat
    lay = build_layers([_ms(inner, ring), _ms(ring)], dedup_iou=0.8)
    assert lay.num_masks == 2


def test_transparent_pixels_give_no_masks():
    valid = _disc(24, 32, 15)
    outside = ~_disc(24, 32, 20)                    # background, entirely transparent
    part = _rect(0, 24, 0, 64)                      # half inside the opaque disc
    lay = build_layers([_ms(part), _ms(outside)], valid=valid)
    assert lay.num_masks == 1
    m = lay.layers[0][0]
    assert m.level == 0 and not (m.mask & ~valid).any()
    assert m.area == (part & valid).sum()
    # everything transparent: nothing at all
    assert build_layers([_ms(part)], valid=np.zeros((H, W), bool)).num_masks == 0


def test_colour_names():
    assert colour_name((0, 0, 0)) == "black" and colour_name((1, 1, 1)) == "white"
    assert colour_name((0.85, 0.15, 0.15)) == "red" and colour_name((0.1, 0.35, 0.15)) == "dark green"


def test_layer_names():
    big, mid, small = _disc(24, 32, 20), _disc(24, 32, 12), _disc(24, 32, 5)
    lay = build_layers([_ms(small), _ms(mid), _ms(big)])
    names = [layer_name(i, lay) for i in range(len(lay))]
    # place from the back, role, main colour (the test masks are all grey)
    assert names[0].startswith("01 ") and names[-1].startswith(f"{len(lay):02d} ")
    assert all(n.endswith(", grey") for n in names), names
    assert len(set(names)) == len(names)
    # a back layer spanning most of the canvas is the background; a layer of fine masks holds details
    bg = np.ones((H, W), bool)
    dot = _disc(24, 32, 4)
    lay2 = build_layers([_ms(dot), _ms(_disc(10, 10, 3)), _ms(bg)])
    names2 = [layer_name(i, lay2) for i in range(len(lay2))]
    assert names2[0].startswith("01 Background") and names2[-1].startswith(f"{len(lay2):02d} Details,"), names2
    with pytest.raises(IndexError):
        layer_name(len(lay), lay)


def test_build_layers_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        build_layers([])
    with pytest.raises(ValueError, match="same size"):
        build_layers([_ms(_rect(0, 4, 0, 4)), MaskSet(np.zeros((1, 10, 10), bool), np.ones(1), np.zeros((1, 3)))])
    with pytest.raises(ValueError, match="valid"):
        build_layers([_ms(_rect(0, 4, 0, 4))], valid=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="bool"):
        build_layers([MaskSet(np.zeros((1, 4, 4)), np.ones(1), np.zeros((1, 3)))])
    with pytest.raises(ValueError, match="dedup_iou"):
        build_layers([_ms(_rect(0, 4, 0, 4))], dedup_iou=0.0)


# -- mask_to_path ------------------------------------------------------------------------------
def test_square_gives_four_corner_path():
    sq = _rect(10, 40, 20, 50)
    p = mask_to_path(sq)
    assert p.num_segments == 4
    corners = p.points[::3].numpy()
    want = np.array([[20, 10], [50, 10], [50, 40], [20, 40]], np.float32)
    for c in want:  # each true corner has a vertex within half a pixel
        assert np.abs(corners - c).max(1).min() <= 0.5
    # straight edges: the handles lie on the segment
    pts = p.points.numpy().reshape(4, 3, 2)
    for k in range(4):
        a, b = pts[k, 0], pts[(k + 1) % 4, 0]
        for c in pts[k, 1:]:
            cross = (b - a)[0] * (c - a)[1] - (b - a)[1] * (c - a)[0]
            assert abs(cross) / np.linalg.norm(b - a) < 1e-4


@pytest.mark.parametrize("name", ["square", "disc", "small_disc", "ring", "L", "star"])
def test_rendered_path_covers_its_mask(name):
    yy, xx = np.mgrid[:H, :W]
    ang, rad = np.arctan2(yy - 24, xx - 32), np.hypot(yy - 24, xx - 32)
    masks = {
        "square": _rect(10, 40, 20, 50),
        "disc": _disc(24, 32, 18),
        "small_disc": _disc(20, 20, 4.5),
        "ring": _disc(24, 32, 18) & ~_disc(24, 32, 9),       # outer contour: the whole disc
        "L": _rect(5, 43, 5, 20) | _rect(30, 43, 5, 55),
        "star": rad < 14 + 6 * np.cos(5 * ang),
    }
    mask = masks[name]
    target = _disc(24, 32, 18) if name == "ring" else mask
    p = mask_to_path(mask)
    assert p is not None and p.num_segments >= 3
    assert p.points.dtype == torch.float32 and p.color.tolist() == [0.0, 0.0, 0.0, 1.0]
    assert _iou(_coverage(p, H, W), target) > 0.95


def test_largest_component_only_and_max_segments():
    yy, xx = np.mgrid[:H, :W]
    star = np.hypot(yy - 24, xx - 40) < 14 + 6 * np.cos(7 * np.arctan2(yy - 24, xx - 40))
    speck = _rect(2, 5, 2, 5)
    p = mask_to_path(star | speck)
    assert _iou(_coverage(p, H, W), star) > 0.93
    capped = mask_to_path(star, max_segments=8)
    assert 3 <= capped.num_segments <= 8
    assert mask_to_path(star, epsilon=0.3).num_segments > p.num_segments


def test_too_small_or_empty_masks():
    assert mask_to_path(np.zeros((H, W), bool)) is None
    one = np.zeros((H, W), bool)
    one[3, 3] = True
    p = mask_to_path(one)
    assert p is None or p.num_segments >= 3
    with pytest.raises(ValueError, match="2-D"):
        mask_to_path(np.zeros((2, H, W), bool))
    with pytest.raises(ValueError, match="epsilon"):
        mask_to_path(_rect(0, 5, 0, 5), epsilon=0)


def test_polygon_to_smooth_path_keeps_vertices():
    v = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float64)
    pts = polygon_to_smooth_path(v)
    assert pts.shape == (12, 2)
    np.testing.assert_allclose(pts[::3], v)


# -- init_scene --------------------------------------------------------------------------------
def test_init_scene_layers_paths_and_colours():
    big, small, side = _disc(24, 24, 16), _disc(24, 24, 6), _rect(5, 40, 46, 60)
    lay = build_layers([_ms(small), _ms(big, side)])
    scene, path_layer = init_scene(lay, H, W, seed=3)
    assert isinstance(scene, Scene) and (scene.width, scene.height) == (W, H)
    assert [l.name for l in scene.layers] == [layer_name(i, lay) for i in range(len(lay))]
    assert [len(l) for l in scene.layers] == [2, 1]
    assert path_layer == [0, 0, 1]
    colors = scene.colors()
    assert colors.shape == (3, 4) and torch.all(colors[:, 3] == 1.0)
    assert ((colors[:, :3] >= 0) & (colors[:, :3] <= 1)).all()
    again, _ = init_scene(lay, H, W, seed=3)
    assert torch.equal(again.colors(), colors)
    other, _ = init_scene(lay, H, W, seed=4)
    assert not torch.equal(other.colors(), colors)
    # each path covers its mask
    for path, lm in zip(scene.paths(), [m for layer in lay.layers for m in layer]):
        assert _iou(_coverage(path, H, W), lm.mask) > 0.95


def test_init_scene_keeps_layer_indices_when_a_mask_is_too_small():
    dot = np.zeros((H, W), bool)
    dot[0, 0] = True
    lay = Layering(layers=[[LayerMask(_rect(0, 20, 0, 20), 1, np.zeros(3, np.float32), 400)],
                           [LayerMask(dot, 0, np.zeros(3, np.float32), 1)]], num_levels=2)
    scene, path_layer = init_scene(lay, H, W)
    assert len(scene.layers) == 2
    assert all(i < 2 for i in path_layer) and path_layer[0] == 0


# -- detail paths inside the layers they refine -------------------------------------------------
def test_assign_details_keeps_the_picture():
    """Moving every detail path into its layer (front-most layer it touches, never behind an earlier
    detail it touches) leaves the composite exactly as it was, on random scenes."""
    from lvss.layering import assign_details
    from lvss.render.torch_raster import covered_pixels
    from lvss.scene import circle_path

    rng = np.random.default_rng(5)
    for trial in range(6):
        n_layers = int(rng.integers(1, 5))
        shapes = [(int(l), circle_path(*rng.uniform(8, 56, 2), rng.uniform(3, 20)).points)
                  for l in sorted(rng.integers(0, n_layers, int(rng.integers(2, 9))))]
        details = [circle_path(*rng.uniform(4, 60, 2), rng.uniform(1, 8)).points
                   for _ in range(int(rng.integers(1, 10)))]
        layer_of = [l for l, _ in shapes]
        points = [p for _, p in shapes] + details
        colors = torch.from_numpy(rng.uniform(0, 1, (len(points), 4)).astype(np.float32))
        colors[:, 3] = torch.from_numpy(rng.choice([1.0, 0.6], len(points)).astype(np.float32))
        before = render_paths(points, colors, W, H, background=(1.0, 1.0, 1.0))
        pixels = [p.numpy() for p in covered_pixels(points, W, H)]
        owner = assign_details(layer_of, n_layers, pixels, len(shapes))
        assert len(owner) == len(details) and all(0 <= o < n_layers for o in owner)
        order = []
        for k in range(n_layers):
            order += [i for i, l in enumerate(layer_of) if l == k]
            order += [len(shapes) + d for d, o in enumerate(owner) if o == k]
        assert sorted(order) == list(range(len(points)))
        after = render_paths([points[i] for i in order], colors[order], W, H, background=(1.0, 1.0, 1.0))
        assert float((after - before).abs().max()) < 1e-5, trial


def test_assign_details_goes_to_the_front_most_touched_layer():
    from lvss.layering import assign_details

    # pixels: shape 0 (layer 0) covers 0-9, shape 1 (layer 1) covers 5-9; detail a touches 0-2 only,
    # detail b touches 8, detail c touches nothing, detail d touches a's pixels only
    px = [np.arange(10), np.arange(5, 10), np.array([0, 1, 2]), np.array([8]), np.array([], np.int64),
          np.array([2])]
    assert assign_details([0, 1], 2, px, 2) == [0, 1, 1, 0]
    # an earlier detail in a front layer pulls a later one it touches along
    px2 = [np.arange(10), np.arange(5, 10), np.array([7, 20]), np.array([20])]
    assert assign_details([0, 1], 2, px2, 2) == [1, 1]
    with pytest.raises(ValueError):
        assign_details([], 0, [], 0)


# -- every piece of a mask gets a path ----------------------------------------------------------
def _three_pieces() -> tuple[np.ndarray, list[np.ndarray]]:
    pieces = [_disc(12, 12, 8), _disc(30, 40, 10), _rect(36, 46, 4, 20)]
    return np.logical_or.reduce(pieces), pieces


def test_mask_with_three_pieces_gives_three_paths_in_one_layer():
    from lvss.pipeline import _structural_paths

    mask, pieces = _three_pieces()
    lay = build_layers([_ms(mask)])
    assert len(lay) == 1 and lay.num_masks == 1
    scene, path_layer = init_scene(lay, H, W)
    assert len(scene.layers) == 1 and len(scene.layers[0]) == 3 and path_layer == [0, 0, 0]
    covered = [_coverage(p, H, W) for p in scene.paths()]
    # each piece is covered by exactly one of the paths
    for piece in pieces:
        assert sorted(_iou(c, piece) > 0.9 for c in covered) == [False, False, True]
    sp = _structural_paths(lay, 10, 1.5)
    assert len(sp) == 3 and {s.layer for s in sp} == {0}
    got = sorted(int(s.mask.sum()) for s in sp)
    assert got == sorted(int(p.sum()) for p in pieces)
    assert np.stack([s.mask for s in sp]).sum(0).max() == 1                 # disjoint ...
    assert np.array_equal(np.logical_or.reduce([s.mask for s in sp]), mask)  # ... and together the mask
    for s in sp:  # each structural path is fitted to its own piece and starts on it
        assert _iou(_coverage(Path(s.points, torch.tensor([0.0, 0, 0, 1])), H, W), s.mask) > 0.9


def test_mask_components_largest_first_min_area_and_enclosed_pieces():
    from lvss.layering import mask_components

    mask, pieces = _three_pieces()
    speck = _rect(44, 46, 58, 60)                                # 4 px
    ring = _disc(12, 52, 9) & ~_disc(12, 52, 6)
    dot = _rect(11, 14, 51, 54)                                  # inside the ring's hole
    comps = mask_components(mask | speck | ring | dot, min_pixels=10)
    areas = [int(c.sum()) for c in comps]
    assert areas == sorted(areas, reverse=True) and len(comps) == 4    # 3 pieces + the filled ring
    assert not any((c & speck).any() for c in comps)              # below the minimum: dropped
    filled_ring = [c for c in comps if c[12, 52]]
    assert len(filled_ring) == 1 and filled_ring[0][dot].all()     # the dot is covered by the ring's path
    assert len(mask_components(mask | speck | ring | dot, min_pixels=1)) == 5   # the speck counts now
    assert mask_components(np.zeros((H, W), bool)) == []
    with pytest.raises(ValueError, match="min_pixels"):
        mask_components(mask, min_pixels=0)
    with pytest.raises(ValueError, match="2-D"):
        mask_components(np.zeros((2, H, W), bool))


def test_pieces_below_the_minimum_area_get_no_path():
    from lvss.layering import mask_to_paths
    from lvss.pipeline import _structural_paths

    mask, pieces = _three_pieces()
    speck = _rect(2, 5, 50, 53)                                  # 9 px
    lay = build_layers([_ms(mask | speck)])
    assert len(_structural_paths(lay, 10, 1.5, min_pixels=1)) == 4
    sp = _structural_paths(lay, 10, 1.5, min_pixels=20)
    assert len(sp) == 3 and not any((s.mask & speck).any() for s in sp)
    assert len(mask_to_paths(mask | speck, min_pixels=20)) == 3
    scene, _ = init_scene(lay, H, W, min_pixels=20)
    assert scene.num_paths == 3


def test_a_mask_cut_by_transparency_keeps_both_halves():
    from lvss.pipeline import _structural_paths

    bar = _rect(10, 30, 4, 60)
    valid = ~_rect(0, H, 28, 34)                                 # a transparent stripe across the bar
    lay = build_layers([_ms(bar)], valid=valid)
    sp = _structural_paths(lay, 10, 1.5)
    assert len(sp) == 2 and sp[0].layer == sp[1].layer
    assert sorted(int(s.mask.sum()) for s in sp) == [20 * 24, 20 * 26]


def test_structural_budget_goes_to_the_largest_pieces_back_to_front():
    from lvss.pipeline import _min_piece_pixels, _structural_paths
    from lvss.config import VectorizeConfig

    mask, pieces = _three_pieces()
    other = _rect(2, 8, 44, 60)                                  # 96 px, smaller than every piece, same layer
    big = _rect(0, H, 0, W)                                      # the back layer
    lay = build_layers([_ms(mask, other), _ms(big)])
    assert len(lay) == 2 and [len(layer) for layer in lay.layers] == [1, 2]
    areas = [H * W] + sorted((int(p.sum()) for p in pieces), reverse=True) + [96]
    for budget in (1, 2, 3, 4, 5, 50):
        sp = _structural_paths(lay, budget, 1.5)
        assert len(sp) == min(budget, 5)
        assert sorted((int(s.mask.sum()) for s in sp), reverse=True) == areas[:budget]
        assert [s.layer for s in sp] == sorted(s.layer for s in sp)   # back to front
    cfg = VectorizeConfig()
    assert _min_piece_pixels(cfg, 256, 256) == int(np.ceil(cfg.segment.min_area * 256 * 256))
    assert _min_piece_pixels(cfg, 16, 16) == int(cfg.optimize.prune_area)


def test_a_transparent_hole_stays_open_in_the_path():
    from lvss.layering import mask_to_paths
    from lvss.pipeline import _structural_paths

    ring = _disc(24, 32, 18) & ~_disc(24, 32, 9)
    dot = _disc(24, 32, 3)                                       # an opaque dot inside the hole
    valid = ring | dot | ~_disc(24, 32, 18)                      # the hole is transparent but for the dot
    lay = build_layers([_ms(ring), _ms(_rect(0, H, 0, W) & ~_disc(24, 32, 9) | dot)], valid=valid)
    masks = [m.mask for layer in lay.layers for m in layer]
    assert any(np.array_equal(m, ring) for m in masks)           # the ring keeps its transparent hole
    sp = _structural_paths(lay, 10, 1.5)
    ring_paths = [s for s in sp if np.array_equal(s.mask, ring)]
    assert len(ring_paths) == 1
    cov = _coverage(Path(ring_paths[0].points, torch.tensor([0.0, 0, 0, 1])), H, W)
    assert _iou(cov, ring) > 0.9 and not cov[24, 32] and not cov[20, 32]   # the hole is not filled
    # on an opaque image the same ring is filled (something opaque in the hole is drawn in front)
    assert np.array_equal(build_layers([_ms(ring)]).layers[0][0].mask, _disc(24, 32, 18))
    # a mask with an open hole gives one path per piece; holes below 9 px are filled
    (piece, path), = mask_to_paths(ring, holes=True)
    assert _iou(_coverage(path, H, W), ring) > 0.9
    pinhole = _rect(10, 30, 10, 30) & ~_rect(19, 21, 19, 21)     # 4 px hole
    (piece, path), = mask_to_paths(pinhole, holes=True)
    assert _coverage(path, H, W)[19:21, 19:21].all()


def test_fill_holes_matches_scipy_on_random_masks():
    from scipy import ndimage as ndi

    from lvss.layering import _fill_holes

    rng = np.random.default_rng(3)
    for density in (0.3, 0.55, 0.7, 0.85):
        for _ in range(10):
            m = rng.random((24, 31)) < density
            m[0, 0] = True  # never empty
            assert np.array_equal(_fill_holes(m), ndi.binary_fill_holes(m))
    ring = np.zeros((9, 9), bool)
    ring[2:7, 2:7] = True
    ring[4, 4] = False
    assert _fill_holes(ring)[4, 4] and _fill_holes(ring).sum() == 25


def test_douglas_peucker_splits_reused_across_tolerances_match_fresh_runs():
    from lvss.fit import _Splits, douglas_peucker

    rng = np.random.default_rng(5)
    a = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    r = 20 + 3 * np.sin(5 * a) + rng.normal(0, 0.3, a.size)
    pts = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    splits = _Splits(pts)
    for eps in (8.0, 0.4, 2.0, 1.0, 5.0, 0.1, 2.0):   # any order: later calls reuse earlier measurements
        got = splits.vertices(eps)
        assert np.array_equal(got, douglas_peucker(pts, eps))
        assert np.all(np.diff(got) > 0) and got[0] == 0
    # a finer tolerance keeps every vertex of a coarser one
    assert set(splits.vertices(2.0)) <= set(splits.vertices(0.5))


def test_cubic_fit_of_runs_together_equals_each_run_alone():
    from lvss.fit import _fit_segments

    rng = np.random.default_rng(3)
    a = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    r = 15 + 2 * np.sin(3 * a) + rng.normal(0, 0.2, a.size)
    pts = np.stack([30 + r * np.cos(a), 30 + r * np.sin(a)], 1)
    cuts = np.array([0, 7, 19, 23, 50, 90, 120])          # runs of 8 to 41 points, padded together
    ms = np.diff(cuts) + 1
    q = np.stack([pts[np.minimum(c + np.arange(ms.max()), c + m - 1) % len(pts)] for c, m in zip(cuts, ms)])
    got, ok = _fit_segments(q, ms)
    assert ok.all()
    for i, m in enumerate(ms):
        alone, ok1 = _fit_segments(q[i:i + 1, :m], ms[i:i + 1])
        assert ok1[0]
        np.testing.assert_allclose(got[i], alone[0], rtol=0, atol=1e-9)
    # a run of zero length gets no fit; the others are unaffected
    q2 = q.copy()
    q2[1] = q2[1, 0]
    got2, ok2 = _fit_segments(q2, ms)
    assert not ok2[1] and np.delete(ok2, 1).all()
    np.testing.assert_allclose(np.delete(got2, 1, 0), np.delete(got, 1, 0), rtol=0, atol=1e-9)


def test_polygon_pixels_near_the_chords_only_equal_a_full_polygon_raster(monkeypatch):
    import lvss.layering as L
    from scipy import ndimage as ndi
    from skimage.draw import polygon2mask

    monkeypatch.setattr(L, "_IOU_DIRECT_AREA", 0)      # the tiled test on every box, however small
    rng = np.random.default_rng(11)
    seen = []
    real = L._polygon_iou
    monkeypatch.setattr(L, "_polygon_iou", lambda idx, c: seen.append((idx.copy(), c)) or real(idx, c))
    for _ in range(12):
        h, w = rng.integers(20, 90, 2)
        m = ndi.gaussian_filter(rng.normal(size=(h, w)), rng.uniform(1.5, 5)) > rng.uniform(-0.1, 0.1)
        for holes in (False, True):
            for eps, segs in ((1.5, 64), (3.0, 8)):
                mask_to_path(m, eps, max_segments=segs, holes=holes)
    assert len(seen) > 30
    for idx, c in seen:
        poly = c.points[idx]
        rc = np.stack([poly[:, 1] - 0.5 - c.row0, poly[:, 0] - 0.5 - c.col0], 1)
        assert np.array_equal(L._polygon_pixels(idx, c), polygon2mask(c.shape.shape, rc))


def test_label_mask_equals_scikit_image():
    """lvss.layering.label_mask numbers a bool mask's components exactly as skimage.measure.label
    does (4- and 8-connected), and passes other dtypes on to it."""
    from skimage.measure import label

    from lvss.layering import label_mask

    rng = np.random.default_rng(3)
    for _ in range(6):
        m = rng.random((37, 53)) > 0.55
        for conn in (1, 2):
            assert np.array_equal(label_mask(m, conn), label(m, connectivity=conn))
    ints = rng.integers(0, 3, (20, 30))
    assert np.array_equal(label_mask(ints, 1), label(ints, connectivity=1))


def test_a_hole_joins_its_outline_where_the_full_distance_table_says():
    # the k-d tree search for the bridge's ends picks the pair an argmin over every pair picks,
    # ties included (pixel contours have many equal distances)
    from lvss.layering import _nearest_pair

    rng = np.random.default_rng(3)
    for t in range(60):
        n, m = (int(v) for v in rng.integers(3, 200, 2))
        if t % 2:
            a, b = rng.integers(0, 20, (n, 2)) + 0.5, rng.integers(0, 20, (m, 2)).astype(float)
        else:
            a, b = rng.random((n, 2)) * 40, rng.random((m, 2)) * 40
        d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        assert _nearest_pair(a, b) == tuple(int(x) for x in np.unravel_index(int(np.argmin(d)), d.shape))
