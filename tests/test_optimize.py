"""The optimisation pieces: contour fitting, the closed-form colour solve, plateau stopping, and the
refinement's budget, coarse scale and frozen-structure rendering."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lvss.config import OptimizeConfig
from lvss.fit import douglas_peucker, fit_closed_cubic
from lvss.optimize.losses import image_loss
from lvss.optimize.refine import RefineState, refine
from lvss.optimize.stopping import Plateau
from lvss.optimize.structure import solve_colors
from lvss.render.torch_raster import render_torch, visibility
from lvss.scene import circle_path


def _circle_contour(cx=30.0, cy=25.0, r=15.0, n=200) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def _bezier_points(ctrl: np.ndarray, k: int = 50) -> np.ndarray:
    c = ctrl.reshape(-1, 3, 2)
    nxt = np.roll(c[:, 0], -1, 0)
    t = np.linspace(0, 1, k)[:, None, None]
    u = 1 - t
    pts = u ** 3 * c[:, 0] + 3 * u * u * t * c[:, 1] + 3 * u * t * t * c[:, 2] + t ** 3 * nxt
    return pts.reshape(-1, 2)


def test_douglas_peucker_keeps_corners_and_drops_collinear_points():
    sq = np.array([[0, 0], [5, 0], [10, 0], [10, 5], [10, 10], [5, 10], [0, 10], [0, 5]], float)
    idx = douglas_peucker(sq, 0.5)
    assert sorted(map(tuple, sq[idx])) == [(0, 0), (0, 10), (10, 0), (10, 10)]
    assert list(idx) == sorted(idx)


def test_fitted_cubics_follow_a_curved_contour():
    pts = _circle_contour()
    idx = douglas_peucker(pts, 1.5)
    ctrl = fit_closed_cubic(pts, idx)
    assert ctrl.shape == (3 * len(idx), 2)
    curve = _bezier_points(ctrl)
    err = np.abs(np.hypot(curve[:, 0] - 30, curve[:, 1] - 25) - 15).max()
    # the chords Douglas-Peucker keeps are up to 1.5 px inside the circle; the fitted curve is not
    assert err < 0.15, err
    with pytest.raises(ValueError):
        fit_closed_cubic(pts, idx[:2])


def test_solve_colors_recovers_the_colours_exactly():
    pts = [circle_path(20, 20, 10).points, circle_path(28, 24, 9).points, circle_path(10, 30, 6).points]
    cols = torch.tensor([[0.2, 0.4, 0.6, 1.0], [0.9, 0.1, 0.3, 0.7], [0.1, 0.8, 0.2, 0.5]])
    C, _ = render_torch(pts, cols, 48, 40)
    pix, pid, w = visibility(pts, cols[:, 3], 48, 40)
    again = torch.zeros(48 * 40, 3).index_add_(0, pix, w[:, None] * cols[pid, :3])
    assert float((again.view(40, 48, 3) - C).abs().max()) < 1e-6
    sol = solve_colors(pts, cols[:, 3], C, torch.full((3, 4), 0.5), 48, 40)
    assert float((sol - cols[:, :3]).abs().max()) < 1e-3


def test_plateau():
    flat = Plateau(rel_tol=1e-3, patience=5, min_steps=6)
    assert not any(flat.step(1.0) for _ in range(5))
    assert flat.step(1.0) and flat.stopped_at == 6
    falling = Plateau(rel_tol=1e-3, patience=5, min_steps=6)
    assert not any(falling.step(1.0 / (i + 1)) for i in range(50))
    never = Plateau(rel_tol=0.0)
    assert not any(never.step(1.0) for _ in range(50))


def _target(h=40, w=48):
    yy, xx = np.mgrid[:h, :w]
    img = np.zeros((h, w, 3), np.float32)
    img[...] = (0.9, 0.9, 0.8)
    img[(xx - 20) ** 2 + (yy - 18) ** 2 < 100] = (0.8, 0.1, 0.1)
    img[(xx - 34) ** 2 + (yy - 28) ** 2 < 25] = (0.1, 0.2, 0.8)
    img[(xx - 12) ** 2 + (yy - 32) ** 2 < 9] = (0.1, 0.7, 0.2)
    return torch.from_numpy(img), torch.ones(h, w)


@pytest.mark.parametrize("freeze", [True, False])
def test_refine_adds_paths_within_the_budget_and_lowers_the_loss(freeze):
    tc, ta = _target()
    h, w = ta.shape
    bg = torch.tensor([[0.0, 0.0], [w / 3, 0], [2 * w / 3, 0], [w, 0], [w, h / 3], [w, 2 * h / 3], [w, h],
                       [2 * w / 3, h], [w / 3, h], [0, h], [0, 2 * h / 3], [0, h / 3]])
    state = RefineState([bg], torch.tensor([[0.5, 0.5, 0.5, 1.0]]), 1)
    before = float(image_loss(*render_torch(state.points, state.colors, w, h), tc, ta))
    cfg = OptimizeConfig(refine_iters=24, refine_rounds=2, refill_rounds=1, refine_scale=0.5,
                         freeze_structure_colours=freeze)
    out = refine(state, tc, ta, 4, cfg)
    assert 1 < len(out.points) <= 4 and out.n_fixed == 1
    assert out.stop_reason and out.rounds >= 2
    after = float(image_loss(*render_torch(out.points, out.colors, w, h), tc, ta))
    assert after < 0.5 * before, (before, after)
    assert torch.isfinite(torch.cat(out.points)).all()


def test_details_over_a_rendered_backdrop_equal_the_full_render():
    """What the frozen-structure refinement renders each step is the full composite."""
    fixed = [circle_path(20, 20, 14).points, circle_path(30, 22, 10).points]
    details = [circle_path(25, 20, 4).points, circle_path(12, 30, 3).points]
    cols = torch.tensor([[0.2, 0.4, 0.6, 1.0], [0.9, 0.1, 0.3, 0.8], [0.1, 0.8, 0.2, 1.0], [0.7, 0.7, 0.1, 0.6]])
    C, A = render_torch(fixed + details, cols, 48, 40)
    Cb, Ab = render_torch(fixed, cols[:2], 48, 40)
    Cd, Ad = render_torch(details, cols[2:], 48, 40)
    assert float((Cd + (1 - Ad).unsqueeze(-1) * Cb - C).abs().max()) < 1e-5
    assert float((Ad + (1 - Ad) * Ab - A).abs().max()) < 1e-5


def test_adam_loop_schedule_hooks_stop_and_cancel():
    import threading

    from lvss.optimize.loop import adam_loop, hold_then_decay, lr_decay
    from lvss.types import Cancelled

    x = torch.tensor([3.0, -2.0], requires_grad=True)
    seen, lrs = [], []

    def loss():
        return ((x - 1.0) ** 2).sum()

    def sched(step, total, lr):
        lrs.append(lr_decay(step, total, lr))
        return lrs[-1]

    steps = adam_loop([([x], 0.1)], loss, 50, schedule=sched, after_step=lambda: x.data.clamp_(max=2.5),
                      callback=lambda k, v: seen.append((k, v)))
    assert steps == 50 and [k for k, _ in seen] == list(range(50))
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.01)
    assert seen[-1][1] < seen[0][1] and float(x.detach().max()) <= 2.5
    # a non-finite gradient is zeroed, not stepped on
    y = torch.tensor([1.0], requires_grad=True)
    adam_loop([([y], 0.1)], lambda: (y * float("nan")).sum() + 0.0 * y.sum(), 3)
    assert torch.isfinite(y).all()
    # plateau stopping ends the run early; cancel raises
    z = torch.tensor([0.0], requires_grad=True)
    assert adam_loop([([z], 0.1)], lambda: (z * 0.0).sum() + 1.0, 100, stop=Plateau(1e-3, 5)) < 100
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        adam_loop([([z], 0.1)], lambda: z.sum(), 5, cancel=ev)
    s = hold_then_decay(0.5)
    assert s(0, 10, 1.0) == s(4, 10, 1.0) == 1.0 and s(9, 10, 1.0) == pytest.approx(0.1)


def _loss(points, colors, tc, ta):
    h, w = ta.shape
    return float(image_loss(*render_torch(points, colors, w, h), tc, ta))


def test_refine_never_returns_worse_than_its_start_and_polish_moves_the_structure():
    """A structural circle a little off the target's disc: the polish (every path's points free)
    lines it up, the structure frozen cannot; and whatever the rounds do, the result is never worse
    than the state refinement started from."""
    h = w = 40
    yy, xx = np.mgrid[:h, :w] + 0.5
    img = np.ones((h, w, 3), np.float32)
    img[(xx - 20) ** 2 + (yy - 20) ** 2 < 144] = (0.8, 0.2, 0.1)
    tc, ta = torch.from_numpy(img), torch.ones(h, w)
    bg = torch.tensor([[0.0, 0.0], [20, 0], [40, 0], [40, 0], [40, 20], [40, 40], [40, 40], [20, 40], [0, 40],
                       [0, 40], [0, 20], [0, 0]])
    disc = circle_path(23.0, 18.0, 10.0).points   # off-centre and too small
    cols = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.8, 0.2, 0.1, 1.0]])
    start = _loss([bg, disc], cols, tc, ta)
    frozen = refine(RefineState([bg, disc], cols, 2), tc, ta, 2, OptimizeConfig(refine_iters=4, polish_iters=0))
    polished = refine(RefineState([bg, disc], cols, 2), tc, ta, 2,
                      OptimizeConfig(refine_iters=4, polish_iters=60, polish_lr=0.5))
    assert torch.equal(frozen.points[1], disc)          # no room for details: the structure stays
    assert _loss(frozen.points, frozen.colors, tc, ta) <= start + 1e-7
    moved = polished.points[1]
    assert not torch.equal(moved, disc)
    centre = moved.mean(0)
    assert float((centre - torch.tensor([20.0, 20.0])).norm()) < float((disc.mean(0) - torch.tensor([20.0, 20.0])).norm())
    assert _loss(polished.points, polished.colors, tc, ta) < 0.5 * start


def test_polish_hands_back_its_best_step_not_its_last():
    """A polish whose steps are far too large throws the disc about; it must end on the best state it
    passed through (its first, here), and that state is what its own loss says is best."""
    from lvss.optimize.refine import _polish

    h = w = 40
    yy, xx = np.mgrid[:h, :w] + 0.5
    img = np.ones((h, w, 3), np.float32)
    img[(xx - 20) ** 2 + (yy - 20) ** 2 < 144] = (0.8, 0.2, 0.1)
    tc, ta = torch.from_numpy(img), torch.ones(h, w)
    disc = circle_path(20.5, 19.5, 11.5).points          # nearly right already
    bg = torch.tensor([[0.0, 0.0], [20, 0], [40, 0], [40, 0], [40, 20], [40, 40], [40, 40], [20, 40], [0, 40],
                       [0, 40], [0, 20], [0, 0]])
    cols = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.8, 0.2, 0.1, 1.0]])
    start = _loss([bg, disc], cols, tc, ta)
    state = RefineState([bg, disc], cols.clone(), 2)
    _polish(state, None, tc, ta, None, OptimizeConfig(polish_iters=12, polish_lr=25.0), None)
    assert _loss(state.points, state.colors, tc, ta) <= start + 1e-7
    state = RefineState([bg, disc], cols.clone(), 2)
    _polish(state, None, tc, ta, None, OptimizeConfig(polish_iters=40, polish_lr=0.3), None)
    assert _loss(state.points, state.colors, tc, ta) < start      # a sane polish still improves


def test_a_polish_begun_at_half_size_ends_in_full_size_coordinates_and_improves():
    """With polish_coarse, the first steps run on the half-size image: the paths come back in the
    image's own coordinates (the disc stays where the image has it) and the loss still falls."""
    from lvss.optimize.refine import _polish

    h = w = 48
    yy, xx = np.mgrid[:h, :w] + 0.5
    img = np.ones((h, w, 3), np.float32)
    img[(xx - 26) ** 2 + (yy - 22) ** 2 < 100] = (0.1, 0.3, 0.8)
    tc, ta = torch.from_numpy(img), torch.ones(h, w)
    disc = circle_path(24.0, 24.0, 8.0).points          # off centre and too small
    bg = torch.tensor([[0.0, 0.0], [24, 0], [48, 0], [48, 0], [48, 24], [48, 48], [48, 48], [24, 48], [0, 48],
                       [0, 48], [0, 24], [0, 0]])
    cols = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.1, 0.3, 0.8, 1.0]])
    start = _loss([bg, disc], cols, tc, ta)
    state = RefineState([bg, disc], cols.clone(), 2)
    _polish(state, None, tc, ta, None, OptimizeConfig(polish_iters=40, polish_lr=0.5, polish_coarse=0.5), None)
    assert _loss(state.points, state.colors, tc, ta) < 0.8 * start
    centre = state.points[1].mean(0)     # moved from (24, 24) towards (26, 22), not to half of it
    assert 24.5 < float(centre[0]) < 27 and 21 < float(centre[1]) < 23.5


def test_merge_redundant_looks_at_pixels_not_boxes():
    """Two same-coloured triangles share one bounding box but not their pixels: both stay. A path
    hidden under an identical one in front goes."""
    from lvss.optimize.refine import _merge_redundant

    def tri(a, b, c):
        pts = []
        for p, q in ((a, b), (b, c), (c, a)):
            p, q = torch.tensor(p, dtype=torch.float32), torch.tensor(q, dtype=torch.float32)
            pts += [p, p + (q - p) / 3, p + 2 * (q - p) / 3]
        return torch.stack(pts)

    lower = tri((4, 4), (4, 36), (36, 36))
    upper = tri((4, 4), (36, 4), (36, 36))
    black = torch.tensor([[0.0, 0.0, 0.0, 1.0]] * 2)
    st = RefineState([lower, upper], black.clone(), 0)
    assert _merge_redundant(st, 40, 40) == 0 and len(st.points) == 2
    st = RefineState([lower, lower.clone(), upper], torch.tensor([[0.0, 0, 0, 1]] * 3), 0)
    assert _merge_redundant(st, 40, 40) == 1
    assert len(st.points) == 2 and torch.equal(st.points[1], upper)


def test_adam_matches_torch_adam():
    """The written-out Adam takes the same steps as torch.optim.Adam (groups, changing rates)."""
    from lvss.optimize.loop import Adam

    g = torch.Generator().manual_seed(3)
    a0, b0 = torch.randn(5, 2, generator=g), torch.randn(3, generator=g)
    runs = []
    for cls in (Adam, torch.optim.Adam):
        a, b = a0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        opt = cls([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.02}])
        for k in range(12):
            opt.param_groups[0]["lr"] = 0.1 * 0.9 ** k
            opt.zero_grad()
            ((a ** 3).sum() + (a.sum() - b).square().sum()).backward()
            opt.step()
        runs.append((a.detach(), b.detach()))
    assert torch.allclose(runs[0][0], runs[1][0], atol=1e-6) and torch.allclose(runs[0][1], runs[1][1], atol=1e-6)


def test_budget_stages_climb_the_ladder_to_the_budget():
    from lvss.optimize.refine import budget_stages

    assert budget_stages(25, 64) == [32, 64]
    assert budget_stages(25, 128) == [32, 64, 128]      # the 64 budget's stages, then one more
    assert budget_stages(11, 16) == [16]
    assert budget_stages(3, 100) == [16, 32, 64, 100]
    assert budget_stages(179, 256) == [256]
    assert budget_stages(20, 20) == [] and budget_stages(30, 20) == []


def _many_discs(h=64, w=64):
    """A target with more coloured discs than a small budget can hold."""
    yy, xx = np.mgrid[:h, :w] + 0.5
    img = np.ones((h, w, 3), np.float32)
    rng = np.random.default_rng(3)
    for _ in range(24):
        cx, cy, r = rng.uniform(6, w - 6), rng.uniform(6, h - 6), rng.uniform(2.5, 6)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0, 1, 3)
    return torch.from_numpy(img), torch.ones(h, w)


def test_a_larger_budget_retraces_a_smaller_one_and_ends_no_worse():
    """Refinement's rounds do not depend on the budget: with 32 paths the first rounds are exactly
    those of 16 paths (same steps, same losses), and the end is no worse."""
    tc, ta = _many_discs()
    h, w = ta.shape
    bg = torch.tensor([[0.0, 0.0], [w / 3, 0], [2 * w / 3, 0], [w, 0], [w, h / 3], [w, 2 * h / 3], [w, h],
                       [2 * w / 3, h], [w / 3, h], [0, h], [0, 2 * h / 3], [0, h / 3]])
    # rounds long enough (8 steps) for the paths a round adds to pay before the polish
    cfg = OptimizeConfig(refine_iters=16, refine_rounds=2, first_stage_rounds=3, refill_rounds=1,
                         polish_iters=10)
    col = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    small = refine(RefineState([bg], col.clone(), 1), tc, ta, 16, cfg)
    large = refine(RefineState([bg], col.clone(), 1), tc, ta, 32, cfg)
    first = 3 * 8      # the 16-path stage: 3 rounds of 16 // 2 steps
    assert len(small.history) >= first and small.history[:first] == large.history[:first]
    # (the larger budget may stop adding paths where no region of error is left that a simple,
    # hairless path can fix: tests/test_geometry.py)
    assert len(small.points) <= 16 and len(small.points) <= len(large.points) <= 32
    assert _loss(large.points, large.colors, tc, ta) <= _loss(small.points, small.colors, tc, ta)
