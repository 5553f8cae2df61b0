"""Outlines under opaque shapes written with fewer nodes (lvss.geometry.hidden, the export's merge)."""
from __future__ import annotations

import numpy as np
import torch

from lvss.geometry.hidden import Cover
from lvss.geometry.repair import _straight_pieces, export_scene
from lvss.scene import Layer, Path, Scene
from lvss.svg import contours_data, scene_to_svg
from lvss.testing import resvg_render


def _polygon_path(vertices) -> np.ndarray:
    """Closed cubic path (3S, 2) whose segments are the straight edges of a polygon."""
    return _straight_pieces(np.asarray(vertices, np.float64))


def _rect(x0, y0, x1, y1) -> np.ndarray:
    return _polygon_path([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def _staircase_blob() -> np.ndarray:
    """A 40 x 40 px square whose right side is a pixel staircase (the outline of a thresholded
    mask), 4 + 2 * 20 segments."""
    right = []
    for k in range(20):
        x = 50 + (k % 2)
        right += [[x, 10 + 2 * k], [x, 12 + 2 * k]]
    return _polygon_path([[10, 10], *right, [10, 50]])


def _scene(paths: list[np.ndarray], colors: list[tuple]) -> Scene:
    return Scene(64, 64, [Layer("shapes", [Path(torch.tensor(p, dtype=torch.float32), torch.tensor(c))
                                           for p, c in zip(paths, colors)])])


def test_cover_hides_only_deep_inside_one_shape():
    cover = Cover(64, 64)
    assert cover.hidden() is None
    cover.add([_rect(10, 10, 30, 50)])
    cover.add([_rect(30, 10, 50, 50)])          # abuts the first along x = 30
    test = cover.hidden()
    q = np.array([[20.0, 30.0], [10.5, 30.0], [9.0, 30.0], [30.0, 30.0], [29.5, 30.0], [40.0, 30.0]])
    # deep inside, half a pixel inside the edge, outside, on the shared edge, half a pixel from it,
    # deep inside the second
    assert test(q).tolist() == [True, False, False, False, False, True]


def test_cover_keeps_holes_open():
    cover = Cover(64, 64)
    outer, hole = _rect(10, 10, 50, 50), _rect(20, 20, 40, 40)[::-1].copy()
    cover.add([outer, hole])
    assert cover.hidden()(np.array([[30.0, 30.0], [15.0, 30.0]])).tolist() == [False, True]


def test_hidden_staircase_merges_and_the_picture_stays():
    blob = _staircase_blob()
    bar = _rect(46, 4, 56, 60)                  # opaque, hides the blob's staircase side
    scene = _scene([blob, bar], [(0.9, 0.2, 0.1, 1.0), (0.1, 0.1, 0.1, 1.0)])
    plain = export_scene(scene.point_list(), 64, 64)
    hidden = export_scene(scene.point_list(), 64, 64, opaque=[True, True])
    n_plain = sum(len(c) for c in plain[0][0]) // 3
    n_hidden = sum(len(c) for c in hidden[0][0]) // 3
    assert n_plain >= 40 and n_hidden <= 8, (n_plain, n_hidden)
    # the front path is written as the plain export writes it
    assert all(np.array_equal(a, b) for a, b in zip(hidden[1][0], plain[1][0]))
    svg = scene_to_svg(scene)
    before = scene_to_svg(scene, merge=0.0)
    for s in (1, 4):
        a = resvg_render(svg, 64 * s, 64 * s)
        b = resvg_render(before, 64 * s, 64 * s)
        assert np.abs(a - b).max() <= 1.5 / 255


def test_translucent_or_abutting_shapes_hide_nothing():
    blob = _staircase_blob()
    glass = _rect(46, 4, 56, 60)
    scene = _scene([blob, glass], [(0.9, 0.2, 0.1, 1.0), (0.1, 0.1, 0.1, 0.5)])
    assert not scene.layers[0].paths[1].opaque
    n = sum(len(c) for c in export_scene(scene.point_list(), 64, 64, opaque=[True, False])[0][0]) // 3
    assert n >= 40
    # two opaque bars that abut right over the staircase: their shared edge lets it show through
    left, right = _rect(44, 4, 50.5, 60), _rect(50.5, 4, 58, 60)
    out = export_scene([torch.tensor(p) for p in (blob, left, right)], 64, 64, opaque=[True, True, True])
    seam = [c for c in out[0][0]]
    assert sum(len(c) for c in seam) // 3 > 8


def _svg_of(exported, scene: Scene) -> str:
    """SVG text of a scene's exported contours (flat colours, nonzero)."""
    body = "".join(f'<path d="{contours_data(cs, dec)}" fill="rgb({r * 255:.3f},{g * 255:.3f},{b * 255:.3f})"/>'
                   for (cs, dec), (r, g, b, _) in zip(exported, scene.colors().tolist()))
    w, h = scene.width, scene.height
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">{body}</svg>'


def test_random_scenes_keep_their_pictures():
    """Wobbly opaque shapes stacked at random: the export with hidden merges draws what the export
    without them draws (within what the 0.02-px visible merges move), with fewer nodes."""
    from lvss.testing import random_scene

    fewer = 0
    for seed in range(4):
        scene = random_scene(24, 96, segments=12, seed=seed, radius=(0.1, 0.3), min_alpha=1.0)
        plain = export_scene(scene.point_list(), 96, 96)
        hidden = export_scene(scene.point_list(), 96, 96, opaque=[p.opaque for p in scene.paths()])
        fewer += sum(len(c) for cs, _ in plain for c in cs) - sum(len(c) for cs, _ in hidden for c in cs)
        for s in (1, 4):
            a = resvg_render(_svg_of(hidden, scene), 96 * s, 96 * s)
            b = resvg_render(_svg_of(plain, scene), 96 * s, 96 * s)
            assert np.abs(a - b).max() <= 0.1, (seed, s)
    assert fewer > 0


def test_cover_remembers_each_moment_and_batched_merges_match_single_ones():
    """Cover.hidden_many tests each contour against the cover as it was when its level was taken,
    and merge_many with that test merges every contour as merge_segments does with the test of its
    own moment."""
    from lvss.geometry.hidden import HIDDEN_REACH, HIDDEN_RUN
    from lvss.geometry.merge import merge_many, merge_segments

    rng = np.random.default_rng(3)
    cover = Cover(64, 64)
    contours, levels, tests = [], [], []
    for k in range(4):
        c = _staircase_blob() + [4.0 * k - 6.0, 0.0]
        c = c + rng.normal(scale=0.02, size=c.shape)
        if k:
            contours.append(c)
            levels.append(cover.level)
            tests.append(cover.hidden())
        cover.add([_rect(44 + 2 * k, 4, 56 + 2 * k, 60)])
    q = rng.uniform(0, 64, (500, 2))
    many = cover.hidden_many(levels)
    for w, test in enumerate(tests):
        assert np.array_equal(many(q, np.full(len(q), w)), test(q))
    batched = merge_many(contours, 0.02, HIDDEN_RUN, hidden=many, reach=HIDDEN_REACH)
    for c, test, m in zip(contours, tests, batched):
        alone = merge_segments(c, 0.02, HIDDEN_RUN, hidden=test, reach=HIDDEN_REACH)
        assert np.array_equal(alone, m)
    assert sum(len(m) for m in batched) < sum(len(c) for c in contours)     # something merged
