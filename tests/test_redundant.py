"""The last pruning pass: paths whose removal changes nothing a viewer sees go (lvss/optimize/redundant.py)."""
import numpy as np
import torch

from lvss.config import VectorizeConfig
from lvss.optimize.redundant import REDUNDANT_CHANGE, redundant_paths
from lvss.render.torch_raster import render_torch
from lvss.scene import Layer, Path, Scene
from lvss.scene import circle_path


def _rect(x0, y0, x1, y1):
    corners = torch.tensor([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=torch.float32)
    ends = corners.roll(-1, 0)
    return torch.stack([corners, corners + (ends - corners) / 3, corners + 2 * (ends - corners) / 3], 1).reshape(-1, 2)


def _target(points, colors, w=64, h=64):
    with torch.no_grad():
        return render_torch(points, colors, w, h)


def test_a_circle_in_the_colour_under_it_goes_and_one_that_shows_stays():
    blue = torch.tensor([0.2, 0.4, 0.8, 1.0])
    points = [_rect(4, 4, 60, 60), circle_path(20, 20, 8).points, circle_path(44, 44, 8).points,
              circle_path(44, 20, 6).points]
    colors = torch.stack([blue, blue, torch.tensor([0.9, 0.1, 0.1, 1.0]),
                          blue + torch.tensor([0.5 / 255, 0.0, 0.0, 0.0])])   # under half an 8-bit step off
    tc, ta = _target(points, colors)
    drop = redundant_paths(points, colors, tc, ta)
    assert drop.tolist() == [False, True, False, True]
    # the picture without them is the picture with them, to the tolerance
    keep = [p for p, d in zip(points, drop) if not d]
    c0, a0 = _target(keep, colors[torch.from_numpy(~drop)])
    assert float((c0 - tc).abs().max()) <= REDUNDANT_CHANGE and float((a0 - ta).abs().max()) <= REDUNDANT_CHANGE


def test_a_faint_correction_over_a_large_area_stays():
    """A path that changes its pixels by less than two 8-bit steps but makes the whole area right
    buys fidelity: it is not redundant."""
    grey = torch.tensor([0.5, 0.5, 0.5, 1.0])
    points = [_rect(0, 0, 64, 64), _rect(8, 8, 56, 56)]
    colors = torch.stack([grey, grey + torch.tensor([1.5 / 255, 1.5 / 255, 1.5 / 255, 0.0])])
    tc, ta = _target(points, colors)
    assert redundant_paths(points, colors, tc, ta).tolist() == [False, False]


def test_two_redundant_paths_over_one_another_both_go_and_kept_paths_are_kept():
    red = torch.tensor([0.9, 0.1, 0.1, 1.0])
    points = [_rect(0, 0, 64, 64), _rect(10, 10, 40, 40), circle_path(25, 25, 6).points]
    colors = torch.stack([red, red, red])
    tc, ta = _target(points, colors)
    assert redundant_paths(points, colors, tc, ta).tolist() == [False, True, True]
    assert redundant_paths(points, colors, tc, ta, keep=np.array([True, True, False])).tolist() == [False, False, True]


def test_an_antialiased_edge_that_a_path_fills_keeps_it():
    """A path under another one that shows only along the other's anti-aliased edge (it fills a
    conflation seam there) changes those pixels: it stays."""
    white, black = torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.tensor([0.0, 0.0, 0.0, 1.0])
    points = [_rect(0, 0, 64, 64), _rect(10, 10, 40.5, 40.5), _rect(10.5, 10.5, 40.2, 40.2)]
    colors = torch.stack([white, black, black])
    tc, ta = _target(points, colors)
    assert not redundant_paths(points, colors, tc, ta)[1]


def test_the_pipeline_pass_drops_them_from_the_scene():
    from lvss.pipeline import _without_hairs_or_hidden

    blue, red = (0.2, 0.4, 0.8, 1.0), (0.9, 0.1, 0.1, 1.0)
    back = Path(_rect(0, 0, 64, 64), torch.tensor([1.0, 1.0, 1.0, 1.0]))
    shape = Path(_rect(8, 8, 56, 56), torch.tensor(blue))
    twin = Path(circle_path(30, 30, 6).points, torch.tensor(blue))   # blue on the blue square
    dot = Path(circle_path(30, 30, 3).points, torch.tensor(red))
    scene = Scene(64, 64, [Layer("01 Background", [back], "layer1"), Layer("02 Shape", [shape, twin, dot], "layer2")])
    with torch.no_grad():
        c, a = render_torch([p.points for p in scene.paths()], scene.colors(), 64, 64)
    rgb, alpha = c.numpy(), a.numpy()
    metrics: dict = {}
    out = _without_hairs_or_hidden(scene, rgb, alpha, VectorizeConfig(), torch.device("cpu"), metrics)
    assert [p for p in out.paths()] == [back, shape, dot]
    assert metrics["paths"] == 3.0 and metrics["psnr"] > 60


def test_a_line_drawn_thinner_than_a_hair_is_thickened_not_dropped():
    """A path that is a hair by its width alone (a thin dark line the polish left under half a pixel
    wide) is part of the picture: the last pass thickens it to the hair width and solves the colours
    again, which keeps the picture far closer than dropping it."""
    from lvss.geometry.repair import hair_mask
    from lvss.geometry.simple import area_and_perimeter, mean_width, thickened
    from lvss.pipeline import _without_hairs_or_hidden

    cfg = VectorizeConfig()
    back = Path(_rect(0, 0, 64, 64), torch.tensor([1.0, 1.0, 1.0, 1.0]))
    line = Path(_rect(8, 20.1, 56, 20.4), torch.tensor([0.0, 0.0, 0.0, 1.0]))   # 0.3 px x 48 px
    scene = Scene(64, 64, [Layer("01 Background", [back], "layer1"), Layer("02 Line", [line], "layer2")])
    assert hair_mask([line.points], 64, 64, cfg.optimize.hair_area, cfg.optimize.hair_width)[0]
    with torch.no_grad():
        c, a = render_torch([p.points for p in scene.paths()], scene.colors(), 64, 64)
    metrics: dict = {}
    out = _without_hairs_or_hidden(scene, c.numpy(), a.numpy(), cfg, torch.device("cpu"), metrics)
    kept = out.layers[1].paths[0]
    assert mean_width(*area_and_perimeter(kept.points)) >= cfg.optimize.hair_width
    assert not hair_mask([kept.points], 64, 64, cfg.optimize.hair_area, cfg.optimize.hair_width)[0]
    with torch.no_grad():
        alone = render_torch([back.points], back.color[None], 64, 64)
    from lvss.metrics import composite_metrics

    assert metrics["psnr"] > composite_metrics(*alone, c, a)["psnr"] + 10
    # the thickened line stays where it was: same ends, a fraction of a pixel wider on each side
    lo, hi = kept.points.amin(0), kept.points.amax(0)
    assert float(lo[1]) > 19.8 and float(hi[1]) < 20.7 and float(lo[0]) > 7.7 and float(hi[0]) < 56.3
    assert thickened(line.points, cfg.optimize.hair_width) is not None
