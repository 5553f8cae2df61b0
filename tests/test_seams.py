"""No seams: where the input is opaque, the written SVG leaves no line of page between abutting shapes
(lvss.pipeline._underlay), rendered by resvg at 1x, 2x and 4x; transparent parts, holes included,
stay transparent; and what was optimised is what is shown."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from lvss.config import CompactConfig, OptimizeConfig, VectorizeConfig
from lvss.pipeline import _underlay, run
from lvss.optimize.refine import RefineState
from lvss.optimize.structure import StructuralPath
from lvss.render import render_paths
from lvss.svg import scene_to_svg
from lvss.testing import resvg_render

FAST = OptimizeConfig(structure_iters=10, refine_iters=10, polish_iters=20)


def patchwork(n: int = 64) -> np.ndarray:
    """(n, n, 4) opaque: four colours meeting along slanted and curved edges (every boundary
    anti-aliased in both shapes' renders), no background colour anywhere."""
    yy, xx = np.mgrid[:n, :n] + 0.5
    img = np.zeros((n, n, 4), np.uint8)
    img[..., 3] = 255
    img[...] = (220, 60, 40, 255)
    img[xx + 0.6 * yy > 0.8 * n] = (40, 90, 200, 255)
    img[(xx - 0.7 * n) ** 2 + (yy - 0.3 * n) ** 2 < (0.22 * n) ** 2] = (240, 200, 40, 255)
    img[yy > 0.75 * n + 0.2 * xx] = (30, 150, 70, 255)
    return img


def _alpha(svg: str, size: int, scale: int) -> np.ndarray:
    return resvg_render(svg, size * scale, size * scale, background=None)[..., 3]


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_opaque_input_shows_no_page_between_shapes(scale):
    img = patchwork()
    res = run(img, VectorizeConfig(paths=8, work_size=64, device="cpu", optimize=FAST))
    svg = scene_to_svg(res.scene)
    alpha = _alpha(svg, 64, scale)
    assert alpha.min() >= 0.98, f"a seam at {np.argwhere(alpha < 0.98)[:5].tolist()} (alpha {alpha.min():.3f})"


def test_transparent_parts_and_holes_stay_transparent():
    n = 64
    yy, xx = np.mgrid[:n, :n] + 0.5
    img = np.zeros((n, n, 4), np.uint8)
    r = np.hypot(xx - 20, yy - 32)
    ring = (r < 16) & (r > 7)
    img[ring & (xx < 20)] = (200, 40, 40, 255)      # a ring of two colours that abut ...
    img[ring & (xx >= 20)] = (40, 40, 200, 255)
    blob = (np.abs(xx - 52) < 9) & (np.abs(yy - 32) < 20)
    img[blob & (yy < 32)] = (30, 160, 60, 255)       # ... and a separate block of two colours
    img[blob & (yy >= 32)] = (230, 200, 30, 255)
    res = run(img, VectorizeConfig(paths=8, work_size=64, device="cpu", optimize=FAST))
    alpha = _alpha(scene_to_svg(res.scene), n, 1)
    opaque = img[..., 3] > 0
    inside = ndimage.binary_erosion(opaque, iterations=1)
    outside = ndimage.binary_erosion(~opaque, iterations=1)
    assert alpha[inside].min() >= 0.98
    assert alpha[outside].max() <= 0.02                # the ring's hole and the page around both


def _piece_paths():
    """Three abutting square pieces on one back layer (as the structure stage leaves them), one
    front piece over two of them, and the state refinement would hand over."""
    def square(x0, y0, x1, y1):
        pts = []
        corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        for k, a in enumerate(corners):
            b = corners[(k + 1) % 4]
            pts += [a, (a[0] + (b[0] - a[0]) / 3, a[1] + (b[1] - a[1]) / 3),
                    (a[0] + 2 * (b[0] - a[0]) / 3, a[1] + 2 * (b[1] - a[1]) / 3)]
        return torch.tensor(pts, dtype=torch.float32)

    def mask(x0, y0, x1, y1):
        m = np.zeros((32, 32), bool)
        m[y0:y1, x0:x1] = True
        return m

    boxes = [(0, 0, 10.4, 32), (10.4, 0, 32, 14.7), (10.4, 14.7, 32, 32)]
    paths = [StructuralPath(square(*b), mask(int(round(b[0])), int(round(b[1])), int(round(b[2])), int(round(b[3]))),
                            0, np.zeros(3, np.float32)) for b in boxes]
    paths.append(StructuralPath(square(6, 6, 20, 20), mask(6, 6, 20, 20), 1, np.zeros(3, np.float32)))
    colors = torch.tensor([[0.9, 0.1, 0.1, 1], [0.1, 0.8, 0.2, 1], [0.1, 0.2, 0.9, 1], [0.9, 0.9, 0.1, 1]])
    return paths, RefineState([p.points.clone() for p in paths], colors, len(paths))


def test_underlay_keeps_the_picture_and_fills_the_cracks():
    paths, state = _piece_paths()
    before = render_paths(state.points, state.colors, 32, 32)
    before_c, before_a = before[..., :3], before[..., 3]
    new = _underlay(state, paths, np.ones((32, 32), bool), 1.5)
    after = render_paths(state.points, state.colors, 32, 32)
    after_c, after_a = after[..., :3], after[..., 3]
    assert new[0].layer == 0 and new[0].mask.all()      # it spans the region, drawn first ...
    assert torch.equal(state.colors[0], torch.tensor([0.1, 0.2, 0.9, 1]))  # ... in its own colour
    assert [p.layer for p in new] == [0, 0, 0, 1] and new[-1] is paths[-1]
    assert before_a.min() < 0.9                         # the cracks off the pixel grid ...
    assert after_a.min() > 0.999                        # ... are filled
    solid = before_a > 0.999                            # where nothing was cracked, nothing changed
    assert torch.allclose(after_c[solid], before_c[solid], atol=1e-5)


def soft_shapes_on_transparency(n: int = 64, ss: int = 8) -> np.ndarray:
    """(n, n, 4): a disc and a slanted square on transparency, their rims anti-aliased (area coverage
    from an ss x ss supersampling), as a drawing exported with an alpha channel has them."""
    m = n * ss
    yy, xx = (np.mgrid[:m, :m] + 0.5) / ss
    disc = np.hypot(xx - 22, yy - 30) < 14
    u, v = (xx - 48) * 0.8 + (yy - 36) * 0.6, -(xx - 48) * 0.6 + (yy - 36) * 0.8
    square = (np.abs(u) < 9) & (np.abs(v) < 9)
    cover = lambda b: b.reshape(n, ss, n, ss).mean((1, 3))
    a_d, a_s = cover(disc), cover(square & ~disc)
    img = np.zeros((n, n, 4), np.float64)
    img[..., :3] = a_d[..., None] * (200, 40, 40) + a_s[..., None] * (40, 60, 200)
    a = a_d + a_s
    img[..., :3] /= np.maximum(a, 1e-9)[..., None]
    img[..., 3] = a * 255
    return np.round(img).astype(np.uint8)


def test_outer_edge_against_transparency_is_fitted():
    # the path under an opaque region is its outline traced from the pixels (alpha > 0.5): where the
    # region meets transparency that is the drawing's own edge, and the polish fits it to the input's
    # anti-aliased rim like any other edge, instead of leaving the traced outline
    img = soft_shapes_on_transparency()
    res = run(img, VectorizeConfig(paths=8, work_size=64, device="cpu", optimize=FAST))
    alpha = _alpha(scene_to_svg(res.scene), 64, 1)
    a_in = img[..., 3] / 255.0
    rim = (a_in > 0.02) & (a_in < 0.98)
    err = np.abs(alpha - a_in)[rim]
    assert err.mean() < 0.05, err.mean()


@pytest.mark.parametrize("mode", ["layered", "compact"])
def test_a_faint_shadow_gets_a_translucent_path(mode):
    # a soft shadow under half opaque (alpha 0.3 here) is part of the picture: both modes draw it
    # with a path at its own alpha (layered: refinement; compact: lvss/compact/faint.py, behind the
    # shape) instead of leaving the page bare, and the shape stays opaque
    n = 64
    yy, xx = np.mgrid[:n, :n] + 0.5
    img = np.zeros((n, n, 4), np.uint8)
    shadow = (np.abs(xx - 36) < 18) & (np.abs(yy - 36) < 18)
    img[shadow] = (0, 0, 0, 77)
    square = (np.abs(xx - 28) < 16) & (np.abs(yy - 28) < 16)
    img[square] = (40, 120, 220, 255)
    compact = CompactConfig(rounds=3, superpixels=(12, 40))
    res = run(img, VectorizeConfig(mode=mode, paths=8, work_size=64, device="cpu", optimize=FAST, compact=compact))
    alpha = _alpha(scene_to_svg(res.scene), n, 1)
    only_shadow = ndimage.binary_erosion(shadow & ~square, iterations=2)
    assert abs(float(np.median(alpha[only_shadow])) - 77 / 255) < 0.05
    assert alpha[ndimage.binary_erosion(square, iterations=1)].min() >= 0.98
    assert alpha[ndimage.binary_erosion(~(shadow | square), iterations=2)].max() <= 0.02
