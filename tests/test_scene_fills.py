"""Gradient fills in the scene model: checked construction, scaling that keeps the picture, mean colour."""
from __future__ import annotations

import pytest
import torch

from lvss.scene import LinearGradient, Path, RadialGradient, SceneError, circle_path, mean_color


def _t_linear(g: LinearGradient, q: torch.Tensor) -> torch.Tensor:
    v = g.end - g.start
    return ((q - g.start) * v).sum(-1) / (v * v).sum()


def test_bad_gradients_say_what_is_wrong():
    with pytest.raises(SceneError, match="rise from 0 to 1"):
        LinearGradient([0, 0], [1, 0], [0.0, 0.7, 0.3], torch.ones(3, 4))
    with pytest.raises(SceneError, match="RGBA per stop"):
        LinearGradient([0, 0], [1, 0], [0.0, 1.0], torch.ones(3, 4))
    with pytest.raises(SceneError, match="point"):
        LinearGradient([0, 0, 0], [1, 0], [0.0, 1.0], torch.ones(2, 4))
    with pytest.raises(SceneError, match="radius must be > 0"):
        RadialGradient([0, 0], 0.0, [0.0, 1.0], torch.ones(2, 4))
    with pytest.raises(SceneError, match="NaN or infinite"):
        RadialGradient([0, 0], 2.0, [0.0, 1.0], torch.tensor([[1.0, 0, 0, 1], [float("nan"), 0, 0, 1]]))
    with pytest.raises(SceneError, match="fill must be None"):
        Path(torch.zeros(3, 2), torch.ones(4), fill="red")
    # RGB stops get an opacity of 1
    assert LinearGradient([0, 0], [1, 0], [0.0, 1.0], torch.zeros(2, 3)).colors[:, 3].tolist() == [1.0, 1.0]


def test_non_uniform_scaling_keeps_every_isoline():
    g = LinearGradient([2.0, 3.0], [10.0, 7.0], [0.0, 1.0], torch.ones(2, 4))
    q = torch.rand(50, 2) * 20
    s = torch.tensor([3.0, 0.5])
    assert torch.allclose(_t_linear(g.mapped(3.0, 0.5), q * s), _t_linear(g, q), atol=1e-5)


def test_scaled_path_carries_its_gradient_and_mean_colour():
    p = circle_path(10, 10, 5)
    p.fill = RadialGradient([10.0, 10.0], 5.0, [0.0, 1.0], [[1, 0, 0, 1], [0, 0, 1, 1]], focal=[9.0, 9.0])
    q = p.scaled(2.0, 2.0)
    assert torch.allclose(q.fill.center, torch.tensor([20.0, 20.0]))
    assert float(q.fill.radius) == pytest.approx(10.0)
    assert torch.allclose(q.fill.focal, torch.tensor([18.0, 18.0]))
    assert torch.allclose(mean_color(q.fill), torch.tensor([0.5, 0.0, 0.5, 1.0]), atol=1e-6)
    d = p.detach()
    assert d.fill is not p.fill and torch.equal(d.fill.colors, p.fill.colors)
