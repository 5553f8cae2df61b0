"""lvss.backdrop: the layer under a result that covers the bitmap wherever it is opaque."""
from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from lvss.backdrop import Backdrop, add_to_svg, backdrop, backdrop_from_bytes
from lvss.render import render
from lvss.svg import svg_to_scene

NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"'


def coverage(svg: str, w: int, h: int) -> np.ndarray:
    return render(svg_to_scene(svg, w, h)).numpy()[..., 3]


def result_svg(w: int, h: int, d: str, view_box: str | None = None) -> str:
    vb = view_box or f"0 0 {w} {h}"
    return (f'<svg {NS} width="{w}" height="{h}" viewBox="{vb}">'
            f'<g id="l1" inkscape:groupmode="layer" inkscape:label="Shapes"><path d="{d}" fill="#101010"/></g></svg>')


def test_opaque_bitmap_gets_the_whole_rectangle_in_the_colour_of_the_gaps():
    img = np.zeros((20, 30, 4), np.uint8)
    img[..., 3] = 255
    img[:, :15, :3] = (10, 10, 10)     # covered by the result's path
    img[:, 15:, :3] = (200, 100, 50)   # left uncovered
    svg = result_svg(30, 20, "M0 0H15V20H0Z")
    bd = backdrop(img, svg)
    assert bd.d == "M0 0H30V20H0Z" and bd.size == (30, 20)
    assert bd.fill == "#c86432"
    assert bd.gap == pytest.approx(0.5, abs=0.05)
    out = add_to_svg(svg, bd)
    assert out.index('inkscape:label="Backdrop"') < out.index('inkscape:label="Shapes"')  # bottom layer
    assert coverage(out, 30, 20).min() == pytest.approx(1.0)


def test_transparent_pixels_stay_uncovered():
    img = np.zeros((12, 16, 4), np.uint8)
    img[..., :3] = 90
    img[2:10, 3:12, 3] = 255
    img[5, 7, 3] = 0  # a hole
    img[0, 0, 3] = 200  # a lone opaque pixel
    bd = backdrop(img, result_svg(16, 12, "M20 20H21V21Z"))
    alpha = coverage(f'<svg {NS} width="16" height="12"><path d="{bd.d}" fill="{bd.fill}"/></svg>', 16, 12)
    np.testing.assert_allclose(alpha, (img[..., 3] >= 128).astype(np.float32), atol=1e-6)
    assert backdrop(np.zeros((4, 4, 4), np.uint8), result_svg(4, 4, "M0 0H1V1Z")) is None


def test_view_box_other_than_the_pixel_grid():
    img = np.full((20, 30, 4), 255, np.uint8)
    svg = result_svg(60, 40, "M10 20H20V30H10Z", view_box="10 20 60 40")
    out = add_to_svg(svg, backdrop(img, svg))
    assert 'transform="matrix(2 0 0 2 10 20)"' in out
    assert coverage(out, 60, 40).min() == pytest.approx(1.0)


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(H, W, 4\) uint8 RGBA"):
        backdrop(np.zeros((4, 4, 3), np.uint8), result_svg(4, 4, "M0 0H1V1Z"))
    from lvss.io import ImageError

    with pytest.raises(ImageError):
        backdrop_from_bytes(b"not an image", result_svg(4, 4, "M0 0H1V1Z"))
    assert isinstance(Backdrop("M0 0Z", "#000000", 0.0), Backdrop)


@pytest.mark.parametrize("paths", [3, 8, 24])
def test_real_results_are_covered_where_the_bitmap_is_opaque(paths):
    """The pipeline at small budgets (fast settings): with the backdrop, every opaque pixel is fully
    covered, and no transparent one gains coverage from it."""
    from lvss.config import VectorizeConfig
    from lvss.pipeline import run
    from lvss.svg import scene_to_svg
    from skimage import data

    rgba = np.concatenate([np.asarray(Image.fromarray(data.chelsea()).resize((48, 36))),
                           np.full((36, 48, 1), 255, np.uint8)], -1)
    rgba[:6, :10, 3] = 0  # a transparent corner
    cfg = VectorizeConfig(paths=paths, work_size=48)
    cfg = replace(cfg, simplify=replace(cfg.simplify, levels=1),
                  optimize=replace(cfg.optimize, structure_iters=4, refine_iters=4))
    svg = scene_to_svg(run(rgba, cfg).scene)
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, "PNG")
    bd = backdrop_from_bytes(buf.getvalue(), svg)
    full = coverage(add_to_svg(svg, bd), 48, 36)
    opaque = rgba[..., 3] == 255
    assert full[opaque].min() > 0.999
    under = coverage(f'<svg {NS} width="48" height="36"><path d="{bd.d}" fill="{bd.fill}"/></svg>', 48, 36)
    assert under[~opaque].max() == 0.0


def test_quick_raster_matches_lvss_renderer_and_needs_no_torch(tmp_path):
    """The coverage the backdrop's colour is weighted by: Pillow's raster of what lvss writes agrees
    with lvss's renderer, and making a backdrop does not import torch (a client stays light)."""
    import subprocess
    import sys

    from lvss.backdrop import _quick_coverage

    d = "M2 2C10 0 20 0 28 2C30 10 30 14 28 18C20 20 10 20 2 18C0 14 0 10 2 2Z"
    svg = result_svg(30, 20, d, view_box="0 0 30 20")
    np.testing.assert_allclose(_quick_coverage(svg, 30, 20), coverage(svg, 30, 20), atol=0.3)  # edge pixels
    assert abs(float(_quick_coverage(svg, 30, 20).mean()) - float(coverage(svg, 30, 20).mean())) < 0.01
    buf = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 200, 30)).save(buf, "PNG")
    (tmp_path / "in.png").write_bytes(buf.getvalue())
    (tmp_path / "r.svg").write_text(svg)
    code = ("import sys; from lvss.backdrop import backdrop_from_bytes; "
            f"bd = backdrop_from_bytes(open({str(tmp_path / 'in.png')!r}, 'rb').read(), "
            f"open({str(tmp_path / 'r.svg')!r}).read()); print(bd.fill, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["#0ac81e", "False"], out.stderr
