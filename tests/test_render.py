import math

import numpy as np
import pytest
import torch

from lvss.render import render, render_paths
from lvss.scene import Layer, Path, Scene, SceneError, circle_path, polygon_to_path
from lvss.svg import scene_to_svg
from lvss.testing import random_scene, resvg_render


def _psnr(a, b):
    mse = float(((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).mean())
    return 99.0 if mse == 0 else 10 * math.log10(1.0 / mse)


@pytest.mark.parametrize("n", [1, 16, 256])
def test_resvg_parity(n):
    size = 128
    sc = random_scene(n, size, seed=n)
    svg = scene_to_svg(sc)
    ref = resvg_render(svg, size, size)
    from lvss.svg import svg_to_scene

    ours = render(svg_to_scene(svg), background=(1.0, 1.0, 1.0)).numpy()
    assert _psnr(ref, ours) >= 38.0


def test_resvg_parity_rgba():
    sc = random_scene(16, 96, seed=7)
    ref = resvg_render(scene_to_svg(sc, precision=4), 96, 96, background=None)
    ours = render(sc).numpy()
    # compare premultiplied colours and alpha
    assert _psnr(ref[..., 3], ours[..., 3]) >= 38.0
    assert _psnr(ref[..., :3] * ref[..., 3:], ours[..., :3] * ours[..., 3:]) >= 38.0


def test_square_coverage_and_area():
    sq = polygon_to_path(torch.tensor([[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]]))
    img = render(Scene(40, 40, [Layer("a", [sq])]))
    a = img[..., 3]
    assert a[10:30, 10:30].min() == pytest.approx(1.0)
    assert float(a.sum()) == pytest.approx(400.0, abs=1e-3)
    # half-pixel offset gives half coverage on the boundary column
    sq2 = polygon_to_path(torch.tensor([[10.5, 10.0], [30.0, 10.0], [30.0, 30.0], [10.5, 30.0]]))
    a2 = render(Scene(40, 40, [Layer("a", [sq2])]))[..., 3]
    assert float(a2[15, 10]) == pytest.approx(0.5, abs=1e-5)


def test_orientation_does_not_matter():
    p = circle_path(20, 20, 10)
    rev = Path(torch.roll(torch.flip(p.points, [0]), 1, 0), p.color)  # same curve, reversed
    a = render(Scene(40, 40, [Layer("a", [p])]))[..., 3]
    b = render(Scene(40, 40, [Layer("a", [rev])]))[..., 3]
    assert torch.allclose(a, b, atol=1e-5)
    assert float(a.sum()) == pytest.approx(math.pi * 100, rel=0.01)


def _loss_fn(target, bg=(0.3, 0.5, 0.7)):
    def f(pts, cols):
        img = render_paths(pts, cols, 40, 40, background=bg)
        return ((img - target) ** 2).sum()
    return f


def test_point_and_color_gradients_match_finite_differences():
    sc = random_scene(6, 40, seed=3, radius=(0.2, 0.3))
    pts = [p.points.double().clone().requires_grad_() for p in sc.paths()]
    cols = sc.colors().double().clone().requires_grad_()
    target = torch.rand(40, 40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    loss = _loss_fn(target)
    loss(pts, cols).backward()
    eps = 1e-4
    for i, j, d in [(0, 0, 0), (0, 1, 1), (2, 5, 0), (3, 7, 1), (5, 2, 0), (1, 11, 1)]:
        with torch.no_grad():
            p2 = [p.clone() for p in pts]
            p2[i][j, d] += eps
            lp = loss(p2, cols)
            p2[i][j, d] -= 2 * eps
            lm = loss(p2, cols)
        fd = float((lp - lm) / (2 * eps))
        assert float(pts[i].grad[j, d]) == pytest.approx(fd, rel=1e-3, abs=1e-5)
    for i, c in [(0, 0), (1, 3), (4, 1), (5, 3)]:
        with torch.no_grad():
            c2 = cols.clone()
            c2[i, c] += eps
            lp = loss(pts, c2)
            c2[i, c] -= 2 * eps
            lm = loss(pts, c2)
        assert float(cols.grad[i, c]) == pytest.approx(float((lp - lm) / (2 * eps)), rel=1e-4, abs=1e-6)


def test_rgba_output_gradients_finite():
    sc = random_scene(5, 32, seed=2)
    pts = [p.points.clone().requires_grad_() for p in sc.paths()]
    cols = sc.colors().clone().requires_grad_()
    out = render_paths(pts, cols, 32, 32)
    assert out.shape == (32, 32, 4)
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in pts)
    assert torch.isfinite(cols.grad).all()


def test_optimise_square_onto_disc():
    size = 48
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    target = (((xx - 24) ** 2 + (yy - 24) ** 2) < 14 ** 2).float()
    sq = polygon_to_path(torch.tensor([[8.0, 8.0], [30.0, 8.0], [30.0, 30.0], [8.0, 30.0]]))
    pts = sq.points.clone().requires_grad_()
    col = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    opt = torch.optim.Adam([pts], lr=0.5)

    def mse():
        a = render_paths([pts], col, size, size)[..., 3]
        return ((a - target) ** 2).mean()

    first = float(mse().detach())
    for _ in range(200):
        opt.zero_grad()
        loss = mse()
        loss.backward()
        opt.step()
    assert float(mse().detach()) <= 0.1 * first


def test_empty_scene_and_background():
    sc = Scene(8, 6, [])
    img = render(sc, background=(0.2, 0.4, 0.6))
    assert img.shape == (6, 8, 3)
    assert torch.allclose(img, torch.tensor([0.2, 0.4, 0.6]).expand(6, 8, 3))
    rgba = render(sc)
    assert rgba.shape == (6, 8, 4) and float(rgba.abs().sum()) == 0.0


def test_background_image():
    bg = torch.rand(10, 12, 3)
    img = render(Scene(12, 10, [Layer("x", [circle_path(-50, -50, 3)])]), background=bg)
    assert torch.allclose(img, bg)


@pytest.mark.parametrize("pts", [
    torch.zeros(3, 2),                                             # zero area: a point
    torch.tensor([[5.0, 5.0], [5.0, 5.0], [15.0, 5.0]] * 2),       # a line, doubled back
    torch.tensor([[5.0, 5.0], [5.0, 5.0], [5.0, 5.0], [25.0, 25.0], [25.0, 25.0], [25.0, 25.0],
                  [25.0, 5.0], [25.0, 5.0], [25.0, 5.0], [5.0, 25.0], [5.0, 25.0], [5.0, 25.0]]),  # bow-tie
])
def test_degenerate_paths_render_and_have_finite_gradients(pts):
    p = pts.clone().requires_grad_()
    cols = torch.tensor([[0.5, 0.2, 0.1, 1.0]], requires_grad=True)
    img = render_paths([p], cols, 30, 30, background=(1, 1, 1))
    assert torch.isfinite(img).all()
    assert float(img.detach().min()) >= 0.0 and float(img.detach().max()) <= 1.0 + 1e-6
    ((img - 0.3) ** 2).sum().backward()
    assert torch.isfinite(p.grad).all() and torch.isfinite(cols.grad).all()


def test_bow_tie_covers_both_lobes():
    bow = polygon_to_path(torch.tensor([[5.0, 5.0], [25.0, 25.0], [25.0, 5.0], [5.0, 25.0]]))
    a = render(Scene(30, 30, [Layer("a", [bow])]))[..., 3]
    assert float(a[15, 8]) == pytest.approx(1.0) and float(a[15, 22]) == pytest.approx(1.0)
    assert float(a[8, 15]) == pytest.approx(0.0, abs=1e-6)
    assert float(a.sum()) == pytest.approx(200.0, rel=0.01)


def test_points_far_outside_canvas():
    big = polygon_to_path(torch.tensor([[-1e6, -1e6], [1e6, -1e6], [1e6, 1e6], [-1e6, 1e6]]))
    a = render(Scene(20, 10, [Layer("a", [big])]))[..., 3]
    assert torch.allclose(a, torch.ones_like(a))
    off = circle_path(1e5, 1e5, 10)
    assert float(render(Scene(20, 10, [Layer("a", [off])]))[..., 3].sum()) == 0.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_points_raise(bad):
    pts = torch.tensor([[1.0, 1.0], [5.0, 1.0], [5.0, bad]])
    with pytest.raises(SceneError, match="NaN or infinite"):
        render_paths([pts], torch.ones(1, 4), 10, 10)


def test_bad_canvas_and_shapes():
    with pytest.raises(SceneError, match="width must be > 0"):
        Scene(0, 10)
    with pytest.raises(SceneError, match="height must be > 0"):
        render_paths([], torch.zeros(0, 4), 10, -1)
    with pytest.raises(SceneError, match=r"\(3S, 2\)"):
        Path(torch.zeros(4, 2), torch.ones(4))
    with pytest.raises(SceneError, match="colors must have shape"):
        render_paths([torch.zeros(3, 2)], torch.ones(2, 4), 10, 10)
    with pytest.raises(SceneError, match="unknown renderer"):
        render_paths([torch.zeros(3, 2)], torch.ones(1, 4), 10, 10, renderer="cairo")


def test_diffvg_missing_gives_build_instructions():
    pytest.importorskip("torch")
    try:
        import pydiffvg  # noqa: F401
        pytest.skip("pydiffvg is installed here")
    except ImportError:
        pass
    with pytest.raises(ImportError, match="built from source"):
        render(Scene(10, 10, [Layer("a", [circle_path(5, 5, 3)])]), renderer="diffvg")


# ---- gradient fills --------------------------------------------------------------------------------
from lvss.render import pack_fills  # noqa: E402
from lvss.scene import LinearGradient, RadialGradient  # noqa: E402


def mixed_scene(n: int, size: int, seed: int) -> Scene:
    """Random paths, a third each flat, linear and radial (some with a focal point, 2-4 stops, stop
    opacities below 1)."""
    sc = random_scene(n, size, seed=seed)
    g = torch.Generator().manual_seed(seed + 1000)
    for i, p in enumerate(sc.paths()):
        kind = i % 3
        if kind == 0:
            continue
        lo, hi = p.points.min(0).values, p.points.max(0).values
        k = 2 + int(torch.randint(0, 3, (1,), generator=g))
        offs = torch.sort(torch.rand(k, generator=g)).values
        offs[0], offs[-1] = 0.0, 1.0 if k == 2 else float(offs[-1])
        cols = torch.rand(k, 4, generator=g)
        cols[:, 3] = 0.5 + 0.5 * cols[:, 3]
        a = lo + (hi - lo) * torch.rand(2, generator=g)
        if kind == 1:
            p.fill = LinearGradient(a, lo + (hi - lo) * torch.rand(2, generator=g), offs, cols)
        else:
            r = float((hi - lo).max()) * (0.3 + 0.7 * float(torch.rand(1, generator=g)))
            focal = a + (torch.rand(2, generator=g) - 0.5) * r if i % 2 else None
            p.fill = RadialGradient(a, r, offs, cols, focal)
    return sc


@pytest.mark.parametrize("n,seed", [(9, 1), (60, 2)])
def test_resvg_parity_mixed_fills(n, seed):
    size = 128
    sc = mixed_scene(n, size, seed)
    svg = scene_to_svg(sc, precision=3)
    assert "<linearGradient" in svg and "<radialGradient" in svg
    ref = resvg_render(svg, size, size)
    ours = render(sc, background=(1.0, 1.0, 1.0)).numpy()
    assert _psnr(ref, ours) >= 38.0
    rgba_ref = resvg_render(svg, size, size, background=None)
    rgba = render(sc).numpy()
    assert _psnr(rgba_ref[..., 3], rgba[..., 3]) >= 38.0


def test_flat_scene_renders_as_before_when_fills_are_all_none():
    sc = random_scene(12, 40, seed=5)
    pts, cols = sc.point_list(), sc.colors()
    a = render_paths(pts, cols, 40, 40, background=(1, 1, 1))
    b = render_paths(pts, cols, 40, 40, background=(1, 1, 1), fills=[None] * 12)
    assert torch.equal(a, b) and pack_fills([None] * 12) is None


def test_gradient_fill_evaluated_at_pixel_centres():
    sq = polygon_to_path(torch.tensor([[0.0, 0.0], [20.0, 0.0], [20.0, 10.0], [0.0, 10.0]]))
    sq.fill = LinearGradient([5.0, 0.0], [15.0, 0.0], [0.0, 1.0], [[0, 0, 0, 1], [1, 1, 1, 1]])
    img = render(Scene(20, 10, [Layer("a", [sq])]))
    row = img[3, :, 0]
    assert float(row[:5].max()) == 0.0 and float(row[15:].min()) == 1.0        # padded beyond the ends
    assert float(row[9]) == pytest.approx(0.45, abs=1e-6)                       # (9.5 - 5) / 10
    disc = circle_path(20, 20, 19, 8)
    disc.fill = RadialGradient([20.0, 20.0], 10.0, [0.0, 1.0], [[1, 0, 0, 1], [0, 0, 1, 0.5]])
    img = render(Scene(40, 40, [Layer("a", [disc])]))
    assert float(img[19, 19, 0]) > 0.9 and float(img[19, 35, 3]) == pytest.approx(0.5, abs=1e-6)


def test_gradient_parameters_match_finite_differences():
    sc = mixed_scene(6, 40, seed=3)
    pts = [p.points.double().clone().requires_grad_() for p in sc.paths()]
    cols = sc.colors().double()
    packed = pack_fills(sc.fills())
    geom = packed.geom.double().clone().requires_grad_()
    stops = packed.colors.double().clone().requires_grad_()
    offs = packed.offsets.double().clone().requires_grad_()
    target = torch.rand(40, 40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def loss(pts, geom, stops, offs):
        f = type(packed)(packed.path, packed.kind, geom, offs, stops)
        img = render_paths(pts, cols, 40, 40, background=(0.3, 0.5, 0.7), fills=f)
        return ((img - target) ** 2).sum()

    loss(pts, geom, stops, offs).backward()
    eps = 1e-5
    checks = [(geom, (g, j)) for g in range(geom.shape[0]) for j in range(5 if int(packed.kind[g]) else 4)]
    checks += [(stops, (g, 1, c)) for g in range(stops.shape[0]) for c in (0, 3)]
    checks += [(pts[1], (4, 0)), (pts[2], (7, 1)), (offs, (0, 1))]
    for t, ix in checks:
        with torch.no_grad():
            t[ix] += eps
            lp = loss(pts, geom, stops, offs)
            t[ix] -= 2 * eps
            lm = loss(pts, geom, stops, offs)
            t[ix] += eps
        fd = float((lp - lm) / (2 * eps))
        assert float(t.grad[ix]) == pytest.approx(fd, rel=2e-3, abs=1e-4), (ix, float(t.grad[ix]), fd)


def test_gradient_scene_scales_with_its_paths():
    sc = mixed_scene(9, 64, seed=4)
    big = sc.scaled(2.0, 1.5, width=128, height=96)
    a = render(big, background=(1, 1, 1)).numpy()
    ref = resvg_render(scene_to_svg(sc, precision=4).replace('width="64" height="64"', 'width="128" height="96"')
                       .replace('viewBox="0 0 64 64"', 'viewBox="0 0 64 64" preserveAspectRatio="none"'), 128, 96)
    assert _psnr(ref, a) >= 36.0


def test_diffvg_refuses_gradients():
    sc = mixed_scene(3, 20, seed=1)
    with pytest.raises(SceneError, match="flat colours only"):
        render_paths(sc.point_list(), sc.colors(), 20, 20, renderer="diffvg", fills=sc.fills())


def test_depth_levels_match_the_path_by_path_definition():
    # a path's level is one above the highest level of the earlier paths whose boxes it overlaps
    from lvss.render.torch_raster import _levels

    rng = np.random.default_rng(3)
    for n in (1, 5, 40):
        x0, y0 = rng.integers(0, 60, n), rng.integers(0, 60, n)
        w, h = rng.integers(0, 25, n), rng.integers(1, 25, n)
        want = np.full(n, -1)
        for j in range(n):
            if w[j] == 0:
                continue
            below = [want[i] for i in range(j) if w[i] > 0 and x0[i] < x0[j] + w[j] and x0[j] < x0[i] + w[i]
                     and y0[i] < y0[j] + h[j] and y0[j] < y0[i] + h[i]]
            want[j] = max(below) + 1 if below else 0
        np.testing.assert_array_equal(_levels(x0, y0, w, h), want)


def test_pairs_and_their_coverage_gradients_match_plain_autograd():
    # the plan holds exactly the nonzero cells of the coverage buffer (overflow columns left out),
    # and the pairs' coverage has the gradient autograd gives min(|cumsum|, 1) of the same buffer
    from lvss.render.torch_raster import _coverage, _layout, _PairCoverage, _plan, flatten

    sc = random_scene(12, 48, seed=5)
    pts = [p.points.double().requires_grad_(True) for p in sc.paths()]
    starts, ends, edge_path = flatten(pts, 16)
    lay = _layout(starts, ends, edge_path, len(pts), 48, 48)
    sums, cells, amounts = _coverage(starts, ends, edge_path, lay.boxes, lay.total, 48)
    plan = _plan(sums, lay, 48)
    # cells[0]: the cells the amounts go to (cells[1]: one past each one's row, for the backward pass)
    ref = torch.cumsum(torch.zeros(lay.total + 1, dtype=torch.float64).index_add(0, cells[0], amounts)[:-1], 0)
    ref = ref.masked_fill(ref.detach().abs() < 1e-9, 0.0)   # float64 rounding residue counts as zero
    ref = ref.abs().clamp(max=1.0)
    cells_kept = torch.zeros(lay.total, dtype=torch.bool)
    cells_kept[plan.perm] = True
    b = lay.cpu
    overflow = torch.zeros(lay.total, dtype=torch.bool)
    for x0, y0, w, h, off in b.tolist():
        overflow[[off + r * (w + 1) + w for r in range(h)]] = True
    assert torch.equal(cells_kept, (ref.detach() > 0) & ~overflow)
    # the pixel of every pair: its path's box corner plus its place in the box
    x0, y0, w, _, off = lay.boxes.index_select(0, plan.pid).unbind(1)
    rel = plan.perm - off
    assert torch.equal(plan.pix, (y0 + rel // (w + 1)) * 48 + x0 + rel % (w + 1))
    # a group covers each pixel at most once
    for a, e in zip(plan.bounds[:-1], plan.bounds[1:]):
        assert plan.pix[a:e].unique().numel() == e - a
    c = _PairCoverage.apply(amounts, cells, sums, plan)
    assert torch.equal(c.detach(), ref.detach().index_select(0, plan.perm))
    wts = torch.rand(c.shape[0], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = torch.autograd.grad((c * wts).sum(), pts, retain_graph=True)
    want = torch.autograd.grad((ref.index_select(0, plan.perm) * wts).sum(), pts)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-9)


def test_float32_renders_have_the_float64_pairs_and_gradients():
    # every buffer row's amounts add up to zero to float64 rounding in float32 renders too, so the
    # running sum carries no residue into the cells after a path: the plan holds the pairs a float64
    # render holds (float32 amounts used to leave ~1e-7 in every later cell: a third more pairs,
    # thousands of them of coverage < 1e-6), and the point gradients agree with float64's
    from lvss.render.torch_raster import _coverage_and_plan, render_torch

    sc = random_scene(96, 96, seed=0, radius=(0.1, 0.3))
    got = {}
    for dt in (torch.float32, torch.float64):
        pts = [p.points.to(dt).detach().requires_grad_(True) for p in sc.paths()]
        cols = sc.colors().to(dt)
        cols[:, 3] = 1.0
        _, cov, plan = _coverage_and_plan([p.detach() for p in pts], torch.device("cpu"), dt, 96, 96)
        C, _ = render_torch(pts, cols, 96, 96)
        wc = torch.rand(96, 96, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dt)
        (C * wc).sum().backward()
        got[dt] = (plan.pid * 96 * 96 + plan.pix, cov, torch.cat([p.grad for p in pts]).double())
    keys32, cov32, g32 = got[torch.float32]
    keys64, _, g64 = got[torch.float64]
    assert keys32.shape == keys64.shape and torch.equal(keys32, keys64)
    assert int((cov32 < 1e-6).sum()) <= 0.001 * cov32.numel()
    assert float((g32 - g64).norm() / g64.norm()) < 1e-4


def test_scene_pairs_give_the_render_the_visible_areas_and_the_covered_pixels():
    from lvss.render.torch_raster import composite_pairs, covered_pixels, render_torch, scene_pairs

    torch.manual_seed(3)
    pts = [circle_path(20 + 9 * i, 24 + 5 * (i % 3), 6 + 3 * (i % 4)).points for i in range(8)]
    cols = torch.rand(8, 4)
    cols[:, 3] = torch.tensor([1.0, 0.6, 1.0, 0.3, 1.0, 1.0, 0.8, 1.0])
    p = scene_pairs(pts, cols[:, 3], 96, 64)
    C, A = composite_pairs(p, cols[:, :3], 96, 64)
    C0, A0 = render_torch(pts, cols, 96, 64)
    assert torch.allclose(C, C0, atol=1e-5) and torch.allclose(A, A0, atol=1e-5)
    # a path's visible area is its coverage where nothing opaque lies above it
    area = p.visible_area(8)
    assert float(area.sum()) == pytest.approx(float(A0.sum()), rel=1e-5)
    a, b = p.runs[7]   # the top path shows wherever it covers
    assert float(area[7]) == pytest.approx(float(p.cov[a:b].sum()), rel=1e-6)
    assert float(area[0]) < float(p.cov[p.runs[0][0]:p.runs[0][1]].sum())   # the bottom one is partly hidden
    for i, px in enumerate(covered_pixels(pts, 96, 64)):
        assert torch.equal(p.covered(i), px)


# --------------------------------------------------------------------------------------------------
# the coverage's written-out backward pass against plain autograd
# --------------------------------------------------------------------------------------------------
def _coverage_reference(starts, ends, edge_path, boxes, total: int, height: int):
    """The amounts every piece of edge adds to the coverage buffer, by plain autograd over the
    expressions (the rasterizer's formulation before its backward pass was written out)."""
    dev, dt = starts.device, starts.dtype
    pw = boxes[:, 2].index_select(0, edge_path)
    # ---- stage 1: cut every edge at integer rows -------------------------------------------------
    with torch.no_grad():
        ylo = torch.minimum(starts[:, 1], ends[:, 1])
        yhi = torch.maximum(starts[:, 1], ends[:, 1])
        r0 = torch.floor(ylo)
        r1 = torch.maximum(r0 + 1, torch.ceil(yhi))
        r0c, r1c = r0.clamp(0, height), r1.clamp(0, height)
        cnt = torch.where(pw > 0, (r1c - r0c).long().clamp(min=0), torch.zeros_like(pw))
    n1 = int(cnt.sum())
    if n1 == 0:   # nothing crosses a row inside a box: zero coverage, still connected to the points
        return starts.new_zeros(total), torch.zeros(0, dtype=torch.long, device=dev), \
            starts.new_zeros(0) + 0.0 * starts.sum()
    e = torch.repeat_interleave(torch.arange(cnt.shape[0], device=dev), cnt)
    first = torch.cumsum(cnt, 0) - cnt
    ie = torch.stack([r0c.long() - first, edge_path], 1).index_select(0, e)
    row = ie[:, 0] + torch.arange(n1, device=dev)
    pth = ie[:, 1]
    ab = torch.cat([starts, ends], 1).index_select(0, e)
    ax, ay, bx, by = ab.unbind(1)
    dxe, dye = bx - ax, by - ay
    rowf = row.to(dt)
    y_top = torch.maximum(torch.minimum(ay, by), rowf)
    y_bot = torch.minimum(torch.maximum(ay, by), rowf + 1.0)
    flat = dye.detach().abs() < 1e-6
    # flat edges get a unit divisor (their quotients are replaced, so gradients stay finite); every
    # other |dy| is >= 1e-6
    dyd = torch.where(flat, 1.0, dye)
    t_top = torch.where(flat, 0.0, ((y_top - ay) / dyd).clamp(0, 1))
    t_bot = torch.where(flat, 1.0, ((y_bot - ay) / dyd).clamp(0, 1))
    bx0, by0, bw, _, boff = boxes.index_select(0, pth).unbind(1)
    bx0f = bx0.to(dt)
    bx1f = (bx0 + bw).to(dt)
    # x outside the box: left → full cover from column 0 on, right → the overflow column
    px_ = torch.maximum(torch.minimum(ax + t_top * dxe, bx1f), bx0f)   # upper end of the piece
    qx_ = torch.maximum(torch.minimum(ax + t_bot * dxe, bx1f), bx0f)   # lower end
    dyr = (y_bot - y_top).clamp(min=0.0)      # vertical extent of the piece
    wdir = torch.where(dye.detach() > 0, dyr, -dyr)
    base1 = boff + (row - by0) * (bw + 1) - bx0   # buffer index of column 0 of this row, minus x0
    # ---- stage 2: cut every row piece at integer columns ---------------------------------------
    with torch.no_grad():
        c0 = torch.floor(torch.minimum(px_, qx_))
        c1 = torch.maximum(c0 + 1, torch.ceil(torch.maximum(px_, qx_)))
        c1 = torch.minimum(c1, torch.maximum(c0 + 1, bx1f + 1))
        cnt2 = (c1 - c0).long()
    n2 = int(cnt2.sum())
    if n2 == n1:   # every piece lies in one column: no expansion needed
        col, P, Q, W = c0, px_, qx_, wdir
        b_k, bw_k, x0_k = base1, bw, bx0
    else:
        k = torch.repeat_interleave(torch.arange(n1, device=dev), cnt2)
        first2 = torch.cumsum(cnt2, 0) - cnt2
        col = (c0 - first2.to(dt)).index_select(0, k) + torch.arange(n2, device=dev).to(dt)
        P, Q, W = torch.stack([px_, qx_, wdir], 1).index_select(0, k).unbind(1)
        b_k, bw_k, x0_k = torch.stack([base1, bw, bx0], 1).index_select(0, k).unbind(1)
    xl, xh = torch.minimum(P, Q), torch.maximum(P, Q)
    lo = torch.maximum(xl, col)
    hi = torch.minimum(xh, col + 1.0)
    dx = Q - P
    vert = dx.detach().abs() < 1e-6
    dxd = torch.where(vert, 1.0, dx)
    s_lo = torch.where(vert, 0.0, ((lo - P) / dxd).clamp(0, 1))
    s_hi = torch.where(vert, 1.0, ((hi - P) / dxd).clamp(0, 1))
    w = (s_hi - s_lo).abs() * W
    xm = 0.5 * (lo + hi)
    ci = col.long()
    idx = b_k + ci
    # the spill into the next cell is dropped for the overflow column (it would leave the row)
    nxt = torch.where(ci - x0_k < bw_k, idx + 1, total)
    cells = torch.cat([idx, nxt])
    amounts = torch.cat([w * (col + 1.0 - xm), w * (xm - col)])
    with torch.no_grad():
        acc = starts.new_zeros(total + 1).index_add_(0, cells, amounts)
        return torch.cumsum(acc[:total], 0), cells, amounts


def _edge_scene(seed: int, n: int, size: int):
    """Random paths incl. degenerate ones: a point, a horizontal and a vertical line, paths off the
    canvas and across its edges, vertices on integer and half-integer coordinates and on the canvas
    edge (ties of the min / max in the cutting)."""
    g = torch.Generator().manual_seed(seed)
    pts = [p.points.double() for p in random_scene(n, size, seed=seed).paths()]
    pts.append(torch.full((6, 2), 10.0, dtype=torch.float64))                       # a point
    pts.append(torch.tensor([[3.0, 7.0], [9.0, 7.0], [12.0, 7.0]] * 2, dtype=torch.float64))  # horizontal
    pts.append(torch.tensor([[5.0, 2.0], [5.0, 9.5], [5.0, 14.0]] * 2, dtype=torch.float64))  # vertical
    pts.append(torch.tensor([[-30.0, -20.0], [-5.0, -25.0], [-10.0, -3.0]], dtype=torch.float64))  # off
    sq = torch.tensor([[size - 6.0, 4.0], [size, 4.0], [size, 4.0], [size, 4.0], [size, 12.5], [size, 12.5],
                       [size, 12.5], [size - 6.0, 12.5], [size - 6.0, 12.5], [size - 6.0, 12.5],
                       [size - 6.0, 4.0], [size - 6.0, 4.0]], dtype=torch.float64)   # on the right edge
    pts.append(sq)
    snapped = torch.round(torch.rand(9, 2, generator=g, dtype=torch.float64) * 2 * size) / 2 - 2
    pts.append(snapped)                                                              # half-integer grid
    return pts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coverage_backward_matches_plain_autograd(seed):
    from lvss.render.torch_raster import _coverage, _layout, flatten

    size = 40
    pts = [p.requires_grad_(True) for p in _edge_scene(seed, 10, size)]
    starts, ends, edge_path = flatten(pts, 16)
    lay = _layout(starts, ends, edge_path, len(pts), size, size)
    sums, cells, amounts = _coverage(starts, ends, edge_path, lay.boxes, lay.total, size)
    sums_r, cells_r, amounts_r = _coverage_reference(starts, ends, edge_path, lay.boxes, lay.total, size)
    assert torch.equal(cells[0], cells_r)
    torch.testing.assert_close(amounts, amounts_r, rtol=0, atol=1e-12)
    torch.testing.assert_close(sums, sums_r, rtol=0, atol=1e-9)
    wts = torch.randn(amounts.shape[0], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    got = torch.autograd.grad((amounts * wts).sum(), pts, retain_graph=True, allow_unused=True)
    want = torch.autograd.grad((amounts_r * wts).sum(), pts, allow_unused=True)
    for g, r in zip(got, want):
        if r is None:
            assert g is None or not g.any()
        else:
            torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-9)


def _over_path_by_path(pts, cols, fills, size):
    """Reference composite: every path rendered alone (one path: no depth walk), then put 'over'
    the ones below with plain tensor ops, so autograd gives the reference gradients."""
    from lvss.render.torch_raster import render_torch

    C = torch.zeros(size, size, 3, dtype=torch.float64)
    A = torch.zeros(size, size, dtype=torch.float64)
    for i, p in enumerate(pts):
        f = pack_fills([fills[i]]) if fills is not None else None
        Ci, Ai = render_torch([p], cols[i:i + 1], size, size, fills=f)
        C = Ci + (1.0 - Ai).unsqueeze(-1) * C
        A = Ai + (1.0 - Ai) * A
    return C, A


@pytest.mark.parametrize("case", ["edges", "fills"])
def test_composite_backward_matches_path_by_path_autograd(case):
    # overlapping paths with alpha < 1 and = 1, degenerate and off-canvas ones, gradient fills
    from lvss.render.torch_raster import render_torch

    size = 40
    g = torch.Generator().manual_seed(7)
    if case == "edges":
        # without the last two paths of _edge_scene: their edges on the pixel grid and on the canvas
        # edge put fully covered cells on the kink of min(|s|, 1), where the gradient is one-sided
        # and which side a render takes depends on the last bits of the running sum
        pts = [p.requires_grad_(True) for p in _edge_scene(3, 14, size)[:-2]]
        fills = None
    else:
        sc = mixed_scene(14, size, seed=3)
        pts = [p.points.double().requires_grad_(True) for p in sc.paths()]
        fills = [None if p.fill is None else type(p.fill)(**{
            k: (v.double().requires_grad_(True) if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
            for k, v in vars(p.fill).items()}) for p in sc.paths()]
    cols = torch.rand(len(pts), 4, generator=g, dtype=torch.float64)
    cols[:, 3] = torch.where(cols[:, 3] > 0.5, 1.0, 0.3 + cols[:, 3])
    cols.requires_grad_(True)
    wc = torch.randn(size, size, 3, generator=g, dtype=torch.float64)
    wa = torch.randn(size, size, generator=g, dtype=torch.float64)
    C, A = render_torch(pts, cols, size, size, fills=None if fills is None else pack_fills(fills))
    Cr, Ar = _over_path_by_path(pts, cols, fills, size)
    torch.testing.assert_close(C, Cr, rtol=0, atol=1e-12)
    torch.testing.assert_close(A, Ar, rtol=0, atol=1e-12)
    leaves = pts + [cols] + ([t for f in fills if f is not None for t in vars(f).values()
                              if isinstance(t, torch.Tensor) and t.requires_grad] if fills else [])
    got = torch.autograd.grad((C * wc).sum() + (A * wa).sum(), leaves, allow_unused=True)
    want = torch.autograd.grad((Cr * wc).sum() + (Ar * wa).sum(), leaves, allow_unused=True)
    for a, b in zip(got, want):
        if a is None or b is None:
            assert (a is None or not a.any()) and (b is None or not b.any())
        else:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("coverage_sum", [False, True])
def test_packed_paths_render_and_gradients_equal_a_list_of_paths(coverage_sum):
    """One tensor of paths end to end (PackedPaths, as the optimisers hold their points) renders
    and back-propagates exactly as the same paths handed over one by one."""
    from lvss.render.torch_raster import PackedPaths, render_torch

    sc = random_scene(12, 48, seed=5)
    sizes = [p.points.shape[0] for p in sc.paths()]
    cols = sc.colors()
    w = torch.rand(48, 48, 3, generator=torch.Generator().manual_seed(1))
    grads, outs = [], []
    for packed in (False, True):
        flat = torch.cat([p.points for p in sc.paths()]).clone().requires_grad_(True)
        rgb = cols.clone().requires_grad_(True)
        pts = PackedPaths(flat, sizes) if packed else list(torch.split(flat, sizes))
        out = render_torch(pts, rgb, 48, 48, with_coverage_sum=coverage_sum)
        loss = (out[0] * w).sum() + out[1].square().sum() + (out[2].sum() if coverage_sum else 0.0)
        loss.backward()
        outs.append([o.detach() for o in out])
        grads.append((flat.grad, rgb.grad))
    for a, b in zip(*outs):
        assert torch.equal(a, b)
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def test_packed_paths_are_checked():
    from lvss.render.torch_raster import PackedPaths, render_torch

    cols = torch.ones(2, 4)
    with pytest.raises(SceneError):
        render_torch(PackedPaths(torch.zeros(10, 2), [6, 4]), cols, 8, 8)   # a path of 4 points
    with pytest.raises(SceneError):
        render_torch(PackedPaths(torch.zeros(12, 2), [6, 3]), cols, 8, 8)   # sizes do not add up
    bad = circle_path(4, 4, 2).points.repeat(2, 1)
    bad[13, 0] = float("nan")
    with pytest.raises(SceneError, match="path 1"):
        render_torch(PackedPaths(bad, [12, 12]), cols, 8, 8)
