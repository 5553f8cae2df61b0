"""The gradient fills stage (lvss.optimize.fills): which paths get which gradient, that the error only
goes down, that the scene keeps its paths and layers, and the --fill option end to end."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lvss.config import ConfigError, OptimizeConfig, VectorizeConfig
from lvss.optimize.fills import fit_fills
from lvss.render import render
from lvss.scene import Layer, LinearGradient, Path, RadialGradient, Scene, circle_path, polygon_to_path
from lvss.svg import scene_to_svg, svg_to_scene

W, H = 72, 40
CPU = torch.device("cpu")


def _image() -> tuple[np.ndarray, np.ndarray]:
    """Left: a horizontal red-to-blue ramp; middle: flat green; right: a radial white-to-black blob."""
    yy, xx = np.mgrid[:H, :W] + 0.5
    rgb = np.zeros((H, W, 3), np.float32)
    t = np.clip((xx - 2) / 20.0, 0, 1)
    left = xx < 24
    rgb[left] = np.stack([1 - t, 0 * t, t], -1)[left]
    mid = (xx >= 24) & (xx < 48)
    rgb[mid] = (0.2, 0.7, 0.3)
    d = np.clip(np.hypot(xx - 60, yy - 20) / 11.0, 0, 1)
    right = xx >= 48
    rgb[right] = np.stack([1 - d] * 3, -1)[right]
    return rgb, np.ones((H, W), np.float32)


def _flat_scene() -> Scene:
    boxes = [(0, 24), (24, 48), (48, 72)]
    paths = []
    rgb, _ = _image()
    for x0, x1 in boxes:
        p = polygon_to_path(torch.tensor([[x0, 0.0], [x1, 0.0], [x1, H], [x0, H]], dtype=torch.float32))
        p.color = torch.tensor([*rgb[:, x0:x1].reshape(-1, 3).mean(0), 1.0])
        paths.append(p)
    return Scene(W, H, [Layer("back", paths[:2], "layer1"), Layer("front", paths[2:], "layer2")])


def _err(scene: Scene, rgb: np.ndarray) -> float:
    return float(((render(scene, background=(1, 1, 1)).numpy() - rgb) ** 2).mean())


def test_auto_gives_each_region_the_fill_that_fits():
    rgb, alpha = _image()
    sc = _flat_scene()
    res = fit_fills(sc, rgb, alpha, "auto", CPU, iters=0, cost=0.02)
    kinds = [type(p.fill).__name__ if p.fill is not None else "flat" for p in res.scene.paths()]
    assert kinds == ["LinearGradient", "flat", "RadialGradient"]
    assert (res.linear, res.radial) == (1, 1)
    lin = list(res.scene.paths())[0].fill
    direction = (lin.end - lin.start) / (lin.end - lin.start).norm()
    assert abs(float(direction[0])) > 0.99  # along x, as the ramp
    assert _err(res.scene, rgb) < 0.2 * _err(sc, rgb)
    # layers, ids, path count and geometry are kept
    assert [(l.name, l.id, len(l)) for l in res.scene.layers] == [("back", "layer1", 2), ("front", "layer2", 1)]
    for p, q in zip(sc.paths(), res.scene.paths()):
        assert torch.equal(p.points, q.points)


def test_auto_leaves_flat_regions_flat_and_a_high_cost_keeps_everything_flat():
    rgb, alpha = _image()
    rgb[:] = (0.2, 0.7, 0.3)
    res = fit_fills(_flat_scene(), rgb, alpha, "auto", CPU, iters=0, cost=0.02)
    assert all(p.fill is None for p in res.scene.paths())
    rgb, _ = _image()
    res = fit_fills(_flat_scene(), rgb, alpha, "auto", CPU, iters=0, cost=1e9)
    assert all(p.fill is None for p in res.scene.paths())


@pytest.mark.parametrize("mode,kind", [("linear", LinearGradient), ("radial", RadialGradient)])
def test_forced_modes_fill_every_path_and_optimisation_lowers_the_loss(mode, kind):
    rgb, alpha = _image()
    sc = _flat_scene()
    res = fit_fills(sc, rgb, alpha, mode, CPU, iters=15)
    assert all(isinstance(p.fill, kind) for p in res.scene.paths())
    assert res.loss_after <= res.loss_before
    assert res.linear + res.radial == 3
    assert res.scene.num_paths == sc.num_paths
    # what is written is what was optimised
    back = svg_to_scene(scene_to_svg(res.scene, precision=4))
    assert abs(_err(back, rgb) - _err(res.scene, rgb)) < 1e-4


def test_flat_mode_returns_the_scene_untouched():
    sc = _flat_scene()
    rgb, alpha = _image()
    assert fit_fills(sc, rgb, alpha, "flat", CPU).scene is sc
    with pytest.raises(ValueError, match="fill must be one of"):
        fit_fills(sc, rgb, alpha, "conic", CPU)
    with pytest.raises(ValueError, match="working resolution"):
        fit_fills(sc, rgb[:10], alpha[:10], "auto", CPU)


def test_fill_option_is_validated_and_reaches_the_cli():
    with pytest.raises(ConfigError, match="fill must be one of"):
        VectorizeConfig(optimize=OptimizeConfig(fill="gradient"))
    from lvss.cli import build_parser, config_from_args

    args = build_parser().parse_args(["vectorize", "in.png", "-o", "out.svg", "--fill", "auto"])
    assert config_from_args(args).optimize.fill == "auto"
    args = build_parser().parse_args(["vectorize", "in.png", "-o", "out.svg"])
    assert config_from_args(args).optimize.fill == "flat"


def test_pipeline_with_auto_fills_on_a_gradient_disc():
    from lvss.pipeline import run

    yy, xx = np.mgrid[:48, :48] + 0.5
    d = np.hypot(xx - 24, yy - 24)
    img = np.full((48, 48, 4), 255, np.uint8)
    inside = d < 18
    shade = np.clip(255 * (1 - d / 18), 0, 255)
    img[inside, 0] = shade[inside]
    img[inside, 1] = 40
    img[inside, 2] = 255 - shade[inside]
    fast = OptimizeConfig(structure_iters=5, refine_iters=5, fill_iters=10)
    base = VectorizeConfig(paths=4, device="cpu", work_size=48, optimize=fast)
    flat = run(img, base)
    # a bar 20x the default: the radial shading must buy much (two radial fills, about +6 dB here)
    auto = run(img, base.with_(optimize=OptimizeConfig(structure_iters=5, refine_iters=5, fill_iters=10,
                                                       fill="auto", fill_cost=0.01)))
    assert auto.scene.num_paths <= 4
    assert auto.metrics["linear_fills"] + auto.metrics["radial_fills"] >= 1
    assert auto.metrics["psnr"] > flat.metrics["psnr"]
    assert "fills" in auto.timings and "fills" not in flat.timings
    assert "radialGradient" in scene_to_svg(auto.scene) or "linearGradient" in scene_to_svg(auto.scene)
