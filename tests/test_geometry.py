"""lvss.geometry: crossing tests, the optimiser's guard, the export repair, hairs, and the whole
pipeline's paths: simple loops, no hairs, whatever the mode, fill or budget."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from lvss.config import VectorizeConfig
from lvss.geometry import crossing_counts
from lvss.geometry.guard import SimpleGuard
from lvss.geometry.repair import clean_contours, contour_area, export_contours, hair_mask, join_contours
from lvss.geometry.simple import made_simple
from lvss.optimize.loop import adam_loop
from lvss.scene import Layer, Path, Scene, circle_path, polygon_to_path
from lvss.svg import parse_path_data, scene_to_svg, svg_to_scene


def _poly(*xy):
    return polygon_to_path(torch.tensor(xy, dtype=torch.float32)).points


SQUARE = _poly([0, 0], [10, 0], [10, 10], [0, 10])
BOWTIE = _poly([0, 0], [10, 12], [10, 0], [0, 10])       # one crossing, not at a flattening vertex


def _render(svg: str, w: int, h: int) -> np.ndarray:
    resvg = pytest.importorskip("resvg_py")
    png = resvg.svg_to_bytes(svg_string=svg, width=w, height=h, background="white")
    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGB"), np.float64) / 255.0


def _svg_paths(svg: str) -> list[list[np.ndarray]]:
    from lxml import etree

    root = etree.fromstring(svg.encode())
    return [parse_path_data(e.get("d")) for e in root.iter("{http://www.w3.org/2000/svg}path")]


def _random_knots(n: int, seed: int, size: float = 60.0) -> list[torch.Tensor]:
    """Closed paths whose control points are scattered at random: most cross themselves."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        s = int(torch.randint(2, 7, (1,), generator=g))
        c = torch.rand(2, generator=g) * size + 20
        out.append(c + (torch.rand(3 * s, 2, generator=g) - 0.5) * 40)
    return out


# -- crossing tests -----------------------------------------------------------------------------
def test_crossings_of_known_shapes():
    circle = circle_path(50, 50, 20, segments=5).points
    counts = crossing_counts([SQUARE, BOWTIE, circle]).tolist()
    assert counts == [0, 1, 0]


def test_touching_bridge_is_not_a_crossing():
    from lvss.layering import mask_to_path

    m = np.zeros((40, 40), bool)
    m[5:35, 5:35] = True
    m[15:25, 15:25] = False
    p = mask_to_path(m, 1.0, holes=True)   # the hole hangs off the outline by a zero-width bridge
    assert int(crossing_counts([p.points])[0]) == 0


def test_crossing_counts_batch_equals_one_by_one():
    paths = _random_knots(40, 3)
    together = crossing_counts(paths).tolist()
    alone = [int(crossing_counts([p])[0]) for p in paths]
    assert together == alone
    assert sum(c > 0 for c in alone) > 10


def test_kinks_can_be_left_out():
    tiny = BOWTIE * 0.05   # a loop of 1.4 px of outline
    assert crossing_counts([BOWTIE, tiny]).tolist() == [1, 1]
    assert crossing_counts([BOWTIE, tiny], min_loop=2.0).tolist() == [1, 0]


# -- the guard --------------------------------------------------------------------------------
def _brute_counts(points: torch.Tensor, m: int) -> int:
    """Crossing edge pairs of one closed path, every pair of edges that are not neighbours tested
    (no screening), with CrossingIndex's arithmetic."""
    seg = torch.stack([points[0::3], points[1::3], points[2::3], torch.roll(points[0::3], -1, 0)], 1)
    t = torch.arange(m, dtype=points.dtype) / m
    u = 1 - t
    B = torch.stack([u ** 3, 3 * u * u * t, 3 * u * t * t, t ** 3], 1)
    v = torch.stack([sum(seg[:, k:k + 1, d] * B[:, k] for k in range(4)) for d in range(2)], -1).reshape(-1, 2)
    a, b = v, torch.roll(v, -1, 0)
    E = len(v)
    n = 0
    for i in range(E):
        for j in range(i + 2, E):
            if i == 0 and j == E - 1:
                continue
            (a1x, a1y), (b1x, b1y), (a2x, a2y), (b2x, b2y) = a[i], b[i], a[j], b[j]
            e1x, e1y, e2x, e2y = b1x - a1x, b1y - a1y, b2x - a2x, b2y - a2y
            d1 = e1x * (a2y - a1y) - e1y * (a2x - a1x)
            d2 = e1x * (b2y - a1y) - e1y * (b2x - a1x)
            d3 = e2x * (a2y - a1y) - e2y * (a2x - a1x)
            d4 = e2x * (b1y - a2y) - e2y * (b1x - a2x)
            n += bool(d1 * d2 < 0) and bool(d3 * d4 > 0)
    return n


def test_crossing_index_screening_drops_no_crossing():
    """The index tests only the edge pairs that can cross (segments not monotone along their chord,
    neighbours no line separates, other segments whose boxes overlap): on random knots and on smooth
    loops with noise, its counts are those of testing every pair."""
    from lvss.geometry.simple import CrossingIndex

    g = torch.Generator().manual_seed(3)
    paths = _random_knots(12, 5)
    paths += [circle_path(30, 30, 12, segments=int(s)).points + torch.randn(3 * int(s), 2, generator=g) * f
              for s, f in ((1, 2.0), (2, 3.0), (3, 1.0), (5, 4.0), (8, 6.0), (12, 0.5), (7, 9.0))]
    paths += [p[:3] for p in _random_knots(4, 9)]                    # one-segment loops
    for m in (4, 8):
        want = [_brute_counts(p.double(), m) for p in paths]
        index = CrossingIndex([p.shape[0] for p in paths], pieces=m)
        got, pairs = index.crossings(torch.cat(paths).double())
        assert got.tolist() == want
        assert sum(want) > 0 and sorted({k for k, _, _ in pairs}) == [k for k, w in enumerate(want) if w]
        # each path alone gets the same answer, and ``only`` tests the chosen paths alone
        assert [int(crossing_counts([p], m)[0]) for p in paths] == want
        only = torch.arange(len(paths)) % 3 == 0
        part, _ = index.crossings(torch.cat(paths).double(), only=only)
        assert part.tolist() == [w if o else 0 for w, o in zip(want, only.tolist())]
        # and with small loops left out (their lengths measured along the chosen paths alone)
        kinked = CrossingIndex([p.shape[0] for p in paths], pieces=m, min_loop=30.0)
        full, _ = kinked.crossings(torch.cat(paths).double())
        part, _ = kinked.crossings(torch.cat(paths).double(), only=only)
        assert part.tolist() == [c if o else 0 for c, o in zip(full.tolist(), only.tolist())]
        assert full.sum() < sum(want)


def test_guard_rows_of_crossing_spans():
    """The rows the guard takes back for crossing segment pairs: those of the segments from i to j
    the shorter way round, ends included, in the rows of each path."""
    from lvss.geometry.guard import _rows_of

    sizes, starts = np.array([18, 30]), np.array([0, 18])
    pairs = np.array([[0, 1, 2], [1, 0, 9], [1, 2, 5]])
    want = set()
    for k, i, j in pairs:
        n3, S = sizes[k], sizes[k] // 3
        span = range(i, j + 1) if j - i <= S - (j - i) else range(j, i + S + 1)
        want |= {starts[k] + (3 * s + r) % n3 for s in span for r in range(4)}
    assert _rows_of(pairs, sizes, starts).tolist() == sorted(want)


def test_sorted_unique_is_numpys_unique():
    """The guard's distinct values (a mask of flags) are np.unique's, on random draws of every size."""
    from lvss.geometry.simple import sorted_unique

    rng = np.random.default_rng(0)
    for n, bound in [(0, 0), (0, 5), (1, 1), (7, 3), (50, 1000), (5000, 300), (20000, 60000), (12, 100000)]:
        v = rng.integers(0, max(bound, 1), n)
        assert sorted_unique(v, bound).tolist() == np.unique(v).tolist()


def test_guard_of_paths_in_separate_tensors():
    """Paths held one per tensor (as the fill stage holds them) are guarded as in one tensor."""
    paths = [circle_path(50 + 40 * i, 50, 15, segments=6).points.clone().requires_grad_(True) for i in range(3)]
    g = torch.Generator().manual_seed(2)
    targets = [p.detach() + torch.randn(p.shape, generator=g) * 15 for p in paths]
    guard = SimpleGuard([(p, [p.shape[0]]) for p in paths], min_loop=0.0)
    adam_loop([(paths, 1.0)], lambda: sum(((p - t) ** 2).sum() for p, t in zip(paths, targets)), 100, guard=guard)
    assert crossing_counts([p.detach() for p in paths], 4).tolist() == [0, 0, 0]
    assert guard.backtracks > 0


def test_guard_keeps_paths_simple_under_steps_that_would_fold_them():
    paths = [circle_path(50 + 40 * i, 50, 15, segments=6).points for i in range(4)]
    sizes = [p.shape[0] for p in paths]
    flat = torch.cat(paths).clone().requires_grad_(True)
    g = torch.Generator().manual_seed(1)
    target = flat.detach() + torch.randn(flat.shape, generator=g) * 15
    assert (crossing_counts(list(torch.split(target, sizes))) > 0).all()   # where the loss pulls
    guard = SimpleGuard([(flat, sizes)], min_loop=0.0)
    adam_loop([([flat], 1.0)], lambda: ((flat - target) ** 2).sum(), 150, guard=guard)
    out = list(torch.split(flat.detach(), sizes))
    assert crossing_counts(out, 4).tolist() == [0, 0, 0, 0]
    assert guard.backtracks > 0
    # and the paths did move towards the target where they could
    assert float((flat.detach() - target).abs().mean()) < float((torch.cat(paths) - target).abs().mean())


def test_guard_leaves_paths_that_start_crossed_alone():
    flat = torch.cat([BOWTIE, SQUARE + 20]).clone().requires_grad_(True)
    guard = SimpleGuard([(flat, [12, 12])])
    assert guard.guarded == [1]


def test_made_simple_straightens_a_crossing_fit():
    p = SQUARE.clone()
    p[1] = torch.tensor([30.0, 20.0])                     # a handle pulled across the square
    assert int(crossing_counts([p])[0]) > 0
    q = made_simple(p)
    assert q is not None and int(crossing_counts([q])[0]) == 0
    assert torch.equal(q[0::3], p[0::3])                 # the nodes stay put


# -- export repair ------------------------------------------------------------------------------
def test_clean_contours_keeps_the_filled_area_and_is_simple():
    knots = _random_knots(30, 7)
    for p in knots:
        cs, _ = export_contours(p, 128, 128)
        assert all(int(crossing_counts([torch.from_numpy(c)], 16)[0]) == 0 for c in cs)
    cols = torch.rand(len(knots), 3, generator=torch.Generator().manual_seed(2))
    scene = Scene(128, 128, [Layer("knots", [Path(p, c) for p, c in zip(knots, cols)])])
    raw = _render(scene_to_svg(scene, clean=False), 128, 128)
    clean_svg = scene_to_svg(scene)
    clean = _render(clean_svg, 128, 128)
    for sub in _svg_paths(clean_svg):
        for c in sub:
            assert int(crossing_counts([torch.from_numpy(c)], 16)[0]) == 0
    psnr = 10 * np.log10(1.0 / np.mean((raw - clean) ** 2))
    assert psnr > 40.0, psnr


def _kinked_circle(n: int = 12, r: float = 20.0, over: float = 0.6) -> torch.Tensor:
    """A circle of n segments whose handles at every other node overshoot the node by ``over`` of
    the handle length: a small loop (a kink) there."""
    p = circle_path(32.0, 32.0, r, segments=n).points.clone().double()
    for k in range(0, n, 2):
        node = p[3 * k]
        p[3 * k - 1] = node + (node - p[3 * k - 1]) * over      # incoming handle past the node
        p[3 * k + 1] = node + (node - p[3 * k + 1]) * over      # outgoing handle behind it
    return p


def test_cut_kinks_removes_small_loops_where_they_sit():
    from lvss.geometry.kinks import cut_kinks

    p = _kinked_circle()
    assert int(crossing_counts([p], 32)[0]) > 0
    c = cut_kinks(p.numpy())
    assert int(crossing_counts([torch.from_numpy(c)], 64)[0]) == 0
    assert len(c) <= len(p)                       # no node added (a redraw by skia adds many)
    # the filled area is the circle's less the specks of the loops
    full = abs(contour_area(p.numpy()))
    assert abs(abs(contour_area(c)) - full) < 0.02 * full
    # a loop enclosing more than a pixel's area is a fold, not a kink: left for the caller
    big = _kinked_circle(n=6, r=40.0, over=3.0)
    assert int(crossing_counts([big], 32)[0]) > 0
    assert int(crossing_counts([torch.from_numpy(cut_kinks(big.numpy()))], 32)[0]) > 0


def test_export_of_kinked_paths_keeps_their_nodes_and_area():
    p = _kinked_circle()
    scene = Scene(64, 64, [Layer("k", [Path(p.float(), torch.tensor([0.0, 0.0, 0.0, 1.0]))])])
    svg = scene_to_svg(scene, merge=0.0)
    (sub,) = _svg_paths(svg)
    assert len(sub) == 1 and len(sub[0]) <= len(p)
    assert int(crossing_counts([torch.from_numpy(sub[0])], 64)[0]) == 0
    raw = _render(scene_to_svg(scene, clean=False), 64, 64)
    assert np.abs(raw - _render(svg, 64, 64)).sum() < 3.0     # pixels' worth of change, specks only


def test_spike_tips_that_coarse_flattenings_cross_are_cut():
    from lvss.geometry.kinks import cut_kinks

    # a photograph's path (rocket, 256 paths): at (17.87, 110.82) the outline turns back and its
    # two sides run within a few hundredths of a pixel; 16 straight pieces per curve cross there
    d = ("M28.13 125C23.94 125.23 21.62 123.45 16.46 124.25C15.98 125.45 16.12 123.72 17.7 123.04C15.03 "
         "120.09 11.05 117.38 9.4 115.4C12.53 113.93 14.6 111.97 17.87 110.82C17.32 111.02 17.09 111.1 19.77 "
         "111C21.65 112.42 23.37 113.21 25.94 114.81C27.5 115.55 28.87 115.31 28.72 116.48C30.49 115.76 30.41 "
         "116.13 28.75 118.26C27.36 121.63 30.4 125.37 28.13 125Z")
    (c,) = parse_path_data(d)
    assert int(crossing_counts([torch.from_numpy(c)], 16)[0]) > 0
    assert int(crossing_counts([torch.from_numpy(c)], 256)[0]) == 0      # the curves do not cross
    cut = cut_kinks(c, everywhere=False)
    for pieces in (8, 16, 24, 32, 256):
        assert int(crossing_counts([torch.from_numpy(cut)], pieces)[0]) == 0, pieces
    assert len(cut) <= len(c)
    assert abs(abs(contour_area(cut)) - abs(contour_area(c))) < 0.05      # a sliver's area
    # the export writes it so
    scene = Scene(40, 130, [Layer("s", [Path(torch.from_numpy(c).float(), torch.tensor([0.0, 0.0, 0.0, 1.0]))])])
    (sub,) = _svg_paths(scene_to_svg(scene))
    assert int(crossing_counts([torch.from_numpy(sub[0])], 16)[0]) == 0


def _bez(c: np.ndarray, n: int = 200) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 3 * c[0] + 3 * (1 - t) ** 2 * t * c[1] + 3 * (1 - t) * t * t * c[2] + t ** 3 * c[3]


def _outline(c: np.ndarray) -> np.ndarray:
    segs = np.stack([c[0::3], c[1::3], c[2::3], np.roll(c[0::3], -1, 0)], 1)
    return np.concatenate([_bez(s) for s in segs])


def _dist_to(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    a, b = poly, np.roll(poly, -1, 0)
    e = b - a
    s = np.clip(((pts[:, None] - a) * e).sum(-1) / np.maximum((e * e).sum(-1), 1e-18), 0, 1)
    return np.sqrt(((pts[:, None] - a - s[..., None] * e) ** 2).sum(-1)).min(1)


def test_merge_segments_stays_within_tolerance_both_ways():
    from lvss.geometry.merge import merge_segments

    rng = np.random.default_rng(3)
    circle = circle_path(50.0, 50.0, 30.0, segments=24).points.double().numpy()
    # a wobbly outline: nodes moved off the circle by up to 0.3 px
    wobbly = circle + np.repeat(rng.uniform(-0.3, 0.3, (24, 1, 2)), 3, 1).reshape(-1, 2)
    for c, tol in ((circle, 0.05), (wobbly, 0.2), (wobbly, 0.05)):
        m = merge_segments(c, tol)
        assert len(m) <= len(c)
        a, b = _outline(c), _outline(m)
        assert _dist_to(b, a).max() <= tol + 0.01 and _dist_to(a, b).max() <= tol + 0.01
    assert len(merge_segments(circle, 0.05)) // 3 <= 8          # a 24-segment circle needs no more
    # one cubic cut in two comes back as one
    seg = np.array([[0.0, 0.0], [10.0, 20.0], [30.0, -5.0], [40.0, 10.0]])
    t = 0.5
    p01, p12, p23 = seg[0] + (seg[1] - seg[0]) * t, seg[1] + (seg[2] - seg[1]) * t, seg[2] + (seg[3] - seg[2]) * t
    q0, q1 = p01 + (p12 - p01) * t, p12 + (p23 - p12) * t
    path = np.array([seg[0], p01, q0, q0 + (q1 - q0) * t, q1, p23, seg[3], [30.0, 30.0], [10.0, 30.0]])
    m = merge_segments(path, 0.01)
    assert len(m) == 6


def test_clean_contours_clips_to_the_canvas_and_drops_specks():
    big = _poly([-20, -20], [60, -20], [60, 60], [-20, 60])
    (c,) = clean_contours(big, 40, 30)
    assert c.min() >= 0 and c[:, 0].max() <= 40 and c[:, 1].max() <= 30
    assert abs(abs(contour_area(c)) - 40 * 30) < 1e-6
    assert clean_contours(_poly([5, 5], [5.2, 5], [5.2, 5.2]), 40, 30) == []   # 0.02 px²
    assert clean_contours(_poly([-20, -20], [-10, -20], [-10, -10]), 40, 30) == []   # off the canvas


def test_a_hole_comes_back_as_its_own_contour_and_reads_back_as_a_hole():
    from lvss.layering import mask_to_path
    from lvss.render.torch_raster import render_torch

    m = np.zeros((40, 40), bool)
    m[5:35, 5:35] = True
    m[15:25, 15:25] = False
    p = mask_to_path(m, 1.0, holes=True).points
    cs = clean_contours(p, 40, 40, split=True)
    assert len(cs) == 2 and contour_area(cs[0]) * contour_area(cs[1]) < 0   # opposite directions
    scene = Scene(40, 40, [Layer("ring", [Path(p, torch.tensor([1.0, 0.0, 0.0, 1.0]))])])
    back = svg_to_scene(scene_to_svg(scene))
    (q,) = list(back.paths())
    _, A = render_torch([q.points], q.color[None], 40, 40)
    assert float(A[20, 20]) == 0.0 and float(A[10, 10]) == 1.0
    assert join_contours(cs) is not None


def test_reader_honours_fill_rule():
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 40" width="40" height="40">'
           '<path d="M5 5H35V35H5Z M15 15H25V25H15Z" fill="#00f"/>'
           '<path fill-rule="evenodd" d="M5 5H35V35H5Z M15 15H25V25H15Z" fill="#f00"/></svg>')
    from lvss.render.torch_raster import render_torch

    sc = svg_to_scene(svg)
    paths = list(sc.paths())
    assert len(paths) == 2          # one lvss path per element
    _, A = render_torch([paths[0].points], paths[0].color[None], 40, 40)
    assert float(A[20, 20]) == 1.0 and float(A[10, 10]) == 1.0      # nonzero: filled
    _, A = render_torch([paths[1].points], paths[1].color[None], 40, 40)
    assert float(A[20, 20]) == 0.0 and float(A[10, 10]) == 1.0      # evenodd: a ring


# -- hairs ------------------------------------------------------------------------------------------
def test_hair_mask():
    sliver = _poly([10, 10], [90, 10], [90, 10.3], [10, 10.3])      # 0.3 px thick
    speck = _poly([10, 10], [12, 10], [12, 12], [10, 12])           # 4 px² of a 256² canvas
    shape = _poly([10, 10], [30, 10], [30, 30], [10, 30])
    assert hair_mask([sliver, speck, shape], 256, 256, 0.0002, 0.5) == [True, True, False]


# -- the pipeline -------------------------------------------------------------------------------
def _clipart(size: int = 96) -> np.ndarray:
    """Flat shapes with thin features and antialiased edges: what tempts an optimiser to crumple
    detail paths along edges and leave hairs."""
    from skimage.draw import disk, line_aa, polygon

    img = np.full((size, size, 3), 255, np.uint8)
    rr, cc = disk((size * 0.45, size * 0.45), size * 0.3)
    img[rr, cc] = (230, 90, 40)
    rr, cc = polygon([10, 30, 60], [60, 90, 70], img.shape[:2])
    img[rr, cc] = (40, 120, 200)
    for k in range(4):
        r, c, v = line_aa(5 + 20 * k, 5, 80, 20 + 20 * k)
        keep = (r < size) & (c < size)
        img[r[keep], c[keep]] = (img[r[keep], c[keep]] * (1 - v[keep, None])).astype(np.uint8)
    return img


@pytest.mark.parametrize("mode,fill,paths", [("layered", "flat", 24), ("compact", "flat", 16),
                                             ("layered", "auto", 16)])
def test_pipeline_paths_are_simple_and_hairless(mode, fill, paths):
    from dataclasses import replace

    from lvss.pipeline import run

    cfg = VectorizeConfig(paths=paths, mode=mode, work_size=96)
    cfg = replace(cfg, optimize=replace(cfg.optimize, fill=fill, refine_iters=8, polish_iters=10,
                                        structure_iters=10, fill_iters=10),
                  compact=replace(cfg.compact, path_steps=20, path_rounds=2))
    res = run(_clipart(), cfg)
    svg = scene_to_svg(res.scene)
    subs = _svg_paths(svg)
    assert subs
    for sub in subs:
        for c in sub:
            assert int(crossing_counts([torch.from_numpy(c)], 16)[0]) == 0
    oc = cfg.optimize
    assert not any(hair_mask(res.scene.point_list(), 96, 96, oc.hair_area, oc.hair_width))
    # what a renderer shows is close to what the pipeline measured
    img = _render(svg, 96, 96)
    psnr = 10 * np.log10(1.0 / np.mean((img - _clipart() / 255.0) ** 2))
    assert abs(psnr - res.metrics["psnr"]) < 1.5, (psnr, res.metrics["psnr"])


def test_refinement_and_polish_keep_random_scenes_simple():
    """Random targets (blobs of colour on noise) and random starting paths: every path refinement and
    the polish hand back is a simple loop at the guard's resolution, and the SVG's at any."""
    from lvss.config import OptimizeConfig
    from lvss.geometry.guard import GUARD_KINK, GUARD_PIECES
    from lvss.optimize.refine import RefineState, refine

    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        h = w = 48
        yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        img = torch.rand(h, w, 3, generator=g) * 0.2 + 0.4
        for _ in range(6):
            cx, cy, r = (torch.rand(3, generator=g) * torch.tensor([w, h, 10.0])).tolist()
            img[(xx - cx) ** 2 + (yy - cy) ** 2 < (r + 3) ** 2] = torch.rand(3, generator=g)
        bg = _poly([0, 0], [w, 0], [w, h], [0, h])
        starts = [bg] + [circle_path(float(x), float(y), 6.0, segments=5).points
                         for x, y in (torch.rand(4, 2, generator=g) * 36 + 6).tolist()]
        cols = torch.cat([torch.rand(len(starts), 3, generator=g), torch.ones(len(starts), 1)], 1)
        cfg = OptimizeConfig(refine_iters=12, refine_rounds=2, first_stage_rounds=2, refill_rounds=1,
                             polish_iters=12, point_lr=2.0, polish_lr=1.0)
        out = refine(RefineState(starts, cols, 1), img, torch.ones(h, w), 12, cfg)
        assert crossing_counts(out.points, GUARD_PIECES, min_loop=GUARD_KINK).tolist() == [0] * len(out.points)
        scene = Scene(w, h, [Layer("all", [Path(p, c) for p, c in zip(out.points, out.colors)])])
        for sub in _svg_paths(scene_to_svg(scene)):
            for c in sub:
                assert int(crossing_counts([torch.from_numpy(c)], 16)[0]) == 0
