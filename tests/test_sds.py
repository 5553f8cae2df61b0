"""lvss.simplify.sds: unconditional score distillation with a tiny random Stable Diffusion."""
from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
import tiny_models  # noqa: E402

from lvss.config import ConfigError, SimplifyConfig  # noqa: E402
from lvss.models import load_sd  # noqa: E402
from lvss.simplify.sds import SdsSimplifier, guidance_shape, sds_step_gradient, simplify_sds  # noqa: E402
from lvss.types import SimplifyResult  # noqa: E402

CFG = SimplifyConfig(sds_iterations_per_level=2, sds_guidance_size=32, sds_lr=0.05)


@pytest.fixture(scope="session")
def sd():
    return load_sd(tiny_models.sd_dir(), "cpu")


@pytest.fixture(scope="session")
def image():
    return tiny_models.photo(24, 32)


@pytest.fixture(scope="session")
def result(sd, image):
    return simplify_sds(image, 4, seed=3, cfg=CFG, model=sd)


def test_sequence_shapes_and_ranges(result, image):
    assert isinstance(result, SimplifyResult) and len(result.levels) == 5
    assert np.array_equal(result.levels[0], image)
    for level in result.levels:
        assert level.shape == image.shape and level.dtype == np.float32
        assert level.min() >= 0.0 and level.max() <= 1.0


def test_each_snapshot_moves_further_from_the_original(result, image):
    dist = [float(np.abs(level - image).mean()) for level in result.levels]
    assert dist[0] == 0.0 and dist[1] > 0.0
    assert dist[-1] > dist[1]


def test_same_seed_same_result_other_seed_differs(sd, image, result):
    again = simplify_sds(image, 2, seed=3, cfg=CFG, model=sd)  # same draws: a prefix of the 4-level run
    assert len(again.levels) == 3
    assert all(np.array_equal(a, b) for a, b in zip(again.levels, result.levels[:3]))
    other = simplify_sds(image, 1, seed=4, cfg=CFG, model=sd)
    assert not np.array_equal(other.levels[1], result.levels[1])


def test_loads_from_config_and_reports_progress(image, result):
    events = []
    cfg = SimplifyConfig(**{**CFG.__dict__, "sd_model": tiny_models.sd_dir()})
    out = simplify_sds(image, 1, seed=3, cfg=cfg, device="cpu", progress=events.append)
    assert np.array_equal(out.levels[1], result.levels[1])  # same first snapshot as the 4-level run
    assert [e.fraction for e in events] == [0.5, 1.0] and events[0].stage == "simplify"


def test_zero_levels_is_the_original(sd, image):
    out = SdsSimplifier(sd, CFG)(image, 0, 0)
    assert len(out.levels) == 1 and np.array_equal(out.levels[0], image)


def test_sds_gradient_vanishes_for_a_perfect_noise_predictor():
    """An oracle UNet that returns the true noise (or the true v) gives a zero SDS gradient."""
    alphas = torch.linspace(0.99, 0.01, 1000)
    z = torch.randn(1, 4, 4, 4)
    noise = torch.randn(1, 4, 4, 4)
    t = torch.tensor([500])
    a = alphas[t].view(-1, 1, 1, 1)

    def oracle(kind):
        def unet(z_t, t, encoder_hidden_states):
            v = a.sqrt() * noise - (1 - a).sqrt() * z
            return SimpleNamespace(sample=noise if kind == "epsilon" else v)
        return unet

    for kind in ("epsilon", "v_prediction"):
        fake = SimpleNamespace(alphas_cumprod=alphas, unet=oracle(kind), dtype=torch.float32,
                               device=torch.device("cpu"), prediction_type=kind)
        g = sds_step_gradient(fake, z, t, noise, torch.zeros(1, 2, 8))
        assert g.shape == z.shape and float(g.abs().max()) < 1e-5
    wrong = SimpleNamespace(alphas_cumprod=alphas, unet=lambda z_t, t, encoder_hidden_states:
                            SimpleNamespace(sample=torch.zeros_like(z)), dtype=torch.float32,
                            device=torch.device("cpu"), prediction_type="epsilon")
    g = sds_step_gradient(wrong, z, t, noise, torch.zeros(1, 2, 8))
    torch.testing.assert_close(g, -(1 - a) * noise)  # w(t)(ε̂ − ε) with w = 1 − ᾱ_t


def test_guidance_shape_keeps_aspect_and_latent_multiple():
    assert guidance_shape(256, 256, 512, 8) == (512, 512)
    h, w = guidance_shape(200, 300, 512, 8)
    assert w == 512 and h % 8 == 0 and abs(h / w - 200 / 300) < 0.02


def test_bad_config_and_input(sd, image):
    with pytest.raises(ConfigError, match="sds_t_range"):
        simplify_sds(image, 1, cfg=SimplifyConfig(sds_t_range=(0.6, 0.2)), model=sd)
    with pytest.raises(ConfigError, match="sds_iterations_per_level"):
        simplify_sds(image, 1, cfg=SimplifyConfig(sds_iterations_per_level=0), model=sd)
    with pytest.raises(ConfigError, match="levels"):
        simplify_sds(image, -1, cfg=CFG, model=sd)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        simplify_sds(image[..., 0], 1, cfg=CFG, model=sd)


@pytest.mark.parametrize("levels,per_level", [(1, 1), (3, 2), (4, 20), (10, 7)])
def test_snapshot_schedule_gives_exactly_the_requested_levels(levels, per_level):
    from lvss.simplify.sds import snapshot_iterations

    its = snapshot_iterations(levels, per_level)
    assert len(its) == levels and its[-1] == levels * per_level
    assert all(b - a == per_level for a, b in zip([0] + its, its))


def test_three_levels_one_iteration_each(sd, image):
    cfg = SimplifyConfig(**{**CFG.__dict__, "sds_iterations_per_level": 1})
    events = []
    out = simplify_sds(image, 3, seed=0, cfg=cfg, model=sd, progress=events.append)
    assert len(out.levels) == 4 and len(events) == 3
    assert all(not np.array_equal(a, b) for a, b in zip(out.levels, out.levels[1:]))


def test_cancel_between_iterations(sd, image):
    import threading

    from lvss.types import Cancelled

    stop = threading.Event()
    events = []

    def progress(ev):
        events.append(ev)
        stop.set()

    with pytest.raises(Cancelled):
        SdsSimplifier(sd, CFG)(image, 4, 0, progress=progress, cancel=stop)
    assert len(events) == 1  # stopped before the second of 8 iterations
