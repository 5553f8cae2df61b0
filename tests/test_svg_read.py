"""lvss.svg_read, the one SVG reader of lvss.svg and of the Blender extension: it imports only the
standard library, the extension bundles it, and where the two readers it replaced
(lvss.svg's with lxml, blender_ext/svg_layers.py's own) differed, both now read what the better
one read. Each test names the reader that gained. bench/svg_reader_compare.py compares the new
reader with the old ones on real SVGs."""
from __future__ import annotations

import ast
import importlib
import math
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lvss import svg_read
from lvss.scene import LinearGradient, RadialGradient
from lvss.svg import SvgError, parse_path_data, svg_to_scene

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from blender_modules import load_blender_module  # noqa: E402

svg_layers = load_blender_module("svg_layers", "lvss_blender_read")

HEAD = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" {attrs}>')


def _doc(body: str, attrs: str = 'width="100" height="100" viewBox="0 0 100 100"') -> str:
    return HEAD.format(attrs=attrs) + body + "</svg>"


def _points(text: str, **kw) -> list[np.ndarray]:
    return [p.points.double().numpy() for p in svg_to_scene(text, **kw).paths()]


def _shapes(text: str) -> list:
    return [s for lay in svg_layers.parse_svg(text).layers for s in lay.shapes]


def _extent(pts: np.ndarray) -> tuple:
    return tuple(np.round([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()], 6))


# ---------------------------------------------------------------------------------------------
# one reader, standard library only, bundled into the Blender extension
# ---------------------------------------------------------------------------------------------
def test_reader_imports_only_the_standard_library():
    tree = ast.parse((REPO / "lvss" / "svg_read.py").read_text(encoding="utf-8"))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert names - {"__future__"} <= set(sys.stdlib_module_names), names
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree))  # nothing of lvss


def test_both_front_ends_use_it():
    assert svg_layers.SvgImportError is svg_read.SvgReadError is SvgError
    assert svg_layers.read_svg is svg_read.read_svg
    assert not hasattr(svg_layers, "_path_tokens") and not hasattr(sys.modules["lvss.svg"], "_tokens")


def test_the_extension_zip_bundles_the_reader_and_imports_that_copy(tmp_path):
    from lvss.integrations.blender import build

    target = build(tmp_path / "out", wheels=False)
    ext = tmp_path / "ext"
    zipfile.ZipFile(target).extractall(ext)
    assert (ext / "_lvss" / "svg_read.py").read_bytes() == (REPO / "lvss" / "svg_read.py").read_bytes()
    # the extension as a package (its __init__ needs bpy, so the package object is made here)
    pkg = types.ModuleType("lvss_zip_ext")
    pkg.__path__ = [str(ext)]
    sys.modules["lvss_zip_ext"] = pkg
    try:
        mod = importlib.import_module("lvss_zip_ext.svg_layers")
        assert mod.read_svg.__module__ == "lvss_zip_ext._lvss.svg_read"
        d = mod.parse_svg(_doc('<rect width="10" height="10" fill="red"/>'))
        assert d.layers[0].shapes[0].hex == "#ff0000"
    finally:
        for name in [n for n in sys.modules if n == "lvss_zip_ext" or n.startswith("lvss_zip_ext.")]:
            del sys.modules[name]


@pytest.mark.parametrize("text,words", [
    ("", "malformed SVG"),
    ("<svg", "malformed SVG"),
    ("<html/>", "root element is <html>, expected <svg>"),
    (_doc("", 'viewBox="0 0 10 10 junk"'), "viewBox"),
    (_doc('<rect width="5" height="5" transform="rotate(10 5)"/>'), "rotate() takes 1 or 3 numbers"),
    (_doc('<rect width="5" height="5" transform="translate(1 2) junk"/>'), "cannot read the transform"),
    (_doc('<rect width="5furlong" height="5"/>'), "unknown unit"),
    (_doc('<path d="L0 0 5 5 0 5"/>'), "must start with M or m"),
    (_doc('<path d="M0 0 L1e999 5 0 5"/>'), "non-finite"),
    (_doc('<rect width="5" height="5" fill="#12"/>'), "cannot read colour '#12'"),
])
def test_both_front_ends_refuse_bad_input_alike(text, words):
    """The same message from lvss.svg and from the Blender importer (which puts the name first)."""
    with pytest.raises(SvgError) as lv:
        svg_to_scene(text)
    with pytest.raises(svg_layers.SvgImportError) as bl:
        svg_layers.parse_svg(text, name="x.svg")
    assert words in str(lv.value)
    assert str(bl.value) == f"x.svg: {lv.value}"


# ---------------------------------------------------------------------------------------------
# what lvss.svg gained (the Blender reader read it)
# ---------------------------------------------------------------------------------------------
def test_lvss_reads_use_and_symbol():
    pts = _points(_doc('<defs><symbol id="s"><rect width="4" height="4"/></symbol></defs>'
                       '<rect id="r" width="10" height="10"/><use href="#r" x="20"/>'
                       '<use xlink:href="#s" x="50" y="50" transform="scale(2)"/>'))
    assert [_extent(p) for p in pts] == [(0, 0, 10, 10), (20, 0, 30, 10), (100, 100, 108, 108)]


@pytest.mark.parametrize("par,extent", [
    (None, (50, 0, 150, 100)),                  # xMidYMid meet, the default
    ("xMinYMin meet", (0, 0, 100, 100)),
    ("xMaxYMax meet", (100, 0, 200, 100)),
    ("none", (0, 0, 200, 100)),                 # stretched: what lvss did for every SVG
    ("xMidYMid slice", (0, -50, 200, 150)),
])
def test_lvss_places_the_viewbox_as_preserve_aspect_ratio_says(par, extent):
    attrs = 'width="200" height="100" viewBox="0 0 50 50"' + (f' preserveAspectRatio="{par}"' if par else "")
    text = _doc('<rect width="50" height="50"/>', attrs)
    (pts,) = _points(text)
    assert _extent(pts) == extent
    xs = [p[0] for p in _shapes(text)[0].splines[0].anchors]   # the Blender importer agrees
    assert (min(xs), max(xs)) == pytest.approx(extent[::2])
    # a canvas size given by the caller scales the document, each axis on its own
    (half,) = _points(text, width=100, height=100)
    assert _extent(half) == pytest.approx((extent[0] / 2, extent[1], extent[2] / 2, extent[3]))


def test_lvss_reads_nested_svg_viewports():
    (pts,) = _points(_doc('<svg x="10" y="20" width="40" height="40" viewBox="0 0 10 10">'
                          '<rect width="10" height="5"/></svg>'))
    assert _extent(pts) == (10, 20, 50, 40)


def test_visibility_is_inherited_and_can_be_turned_back_on_in_lvss():
    text = _doc('<g visibility="hidden"><rect width="5" height="5"/>'
                '<rect x="10" width="5" height="5" visibility="visible"/></g>'
                '<rect y="10" width="5" height="5" visibility="collapse"/>')
    assert [_extent(p) for p in _points(text)] == [(10, 0, 15, 5)]
    assert len(_shapes(text)) == 1


def test_lvss_finds_gradients_in_svg_without_a_namespace_and_quoted_urls():
    body = ('<defs><linearGradient id="g"><stop offset="0" stop-color="#f00"/><stop offset="1" stop-color="#00f"/>'
            '</linearGradient></defs><rect width="10" height="10" fill="url(#g)"/>'
            '<rect x="20" width="10" height="10" style="fill:url(\'#g\')"/>')
    plain = f'<svg width="100" height="100">{body}</svg>'
    for text in (plain, _doc(body)):
        fills = [p.fill for p in svg_to_scene(text).paths()]
        assert [type(f) for f in fills] == [LinearGradient, LinearGradient]
        assert fills[1].start.tolist() == pytest.approx([20, 0]) and fills[1].end.tolist() == pytest.approx([30, 0])
        assert [s.gradient.kind for s in _shapes(text)] == ["linear", "linear"]


def test_a_gradient_that_cannot_be_placed_shows_its_mean_colour_with_its_mean_opacity():
    text = _doc('<defs><linearGradient id="g" gradientTransform="scale(0)"><stop offset="0" stop-color="#f00"/>'
                '<stop offset="1" stop-color="#00f" stop-opacity="0"/></linearGradient></defs>'
                '<rect width="10" height="10" fill="url(#g)" fill-opacity="0.8"/>')
    (p,) = svg_to_scene(text).paths()
    assert p.fill is None
    assert p.color.tolist() == pytest.approx([0.5, 0, 0.5, 0.4])   # lvss read alpha 1 x 0.8
    (s,) = _shapes(text)
    assert s.gradient is None and s.opacity == pytest.approx(0.4)


def test_style_property_names_and_fill_rule_ignore_case():
    text = _doc('<path style="FILL:#ff0000; Fill-Rule: EvenOdd" d="M0 0H90V90H0Z M20 20H70V70H20Z"/>')
    (s,) = _shapes(text)
    assert s.hex == "#ff0000" and s.fill_rule == "evenodd"
    (p,) = svg_to_scene(text).paths()
    assert p.color[:3].tolist() == [1, 0, 0]
    # evenodd: the inner square is a hole (joined to the outer loop by a zero-width bridge)
    from lvss.render import render

    with torch.no_grad():
        evenodd = render(svg_to_scene(text))[..., 3]
        nonzero = render(svg_to_scene(text.replace("EvenOdd", "nonzero")))[..., 3]
    assert float(evenodd[45, 45]) < 0.01 and float(nonzero[45, 45]) > 0.99 and float(evenodd[10, 10]) > 0.99


def test_an_arc_back_to_its_start_draws_nothing():
    (p,) = parse_path_data("M0 0 A5 5 0 0 1 0 0 L10 0 L10 10 Z")
    assert p.shape == (9, 2)     # L, L and the closing segment; lvss added a zero-length arc segment


def test_lvss_reads_em_sizes_and_refuses_unknown_units():
    s = svg_to_scene(_doc('<rect width="5" height="5"/>', 'width="10em" height="5em" viewBox="0 0 10 5"'))
    assert (s.width, s.height) == (160, 80)


def test_a_stop_in_current_color_takes_the_stop_colour_property():
    text = _doc('<defs><linearGradient id="g"><stop offset="0" stop-color="currentColor" color="#00ff00"/>'
                '<stop offset="1" stop-color="#000"/></linearGradient></defs>'
                '<rect width="10" height="10" fill="url(#g)"/>')
    (p,) = svg_to_scene(text).paths()
    assert p.fill.colors[0].tolist() == [0, 1, 0, 1]
    assert _shapes(text)[0].gradient.stops[0][1] == (0, 1, 0, 1)


# ---------------------------------------------------------------------------------------------
# what the Blender importer gained (lvss's reader read it)
# ---------------------------------------------------------------------------------------------
def test_user_space_percentages_are_of_the_viewbox():
    text = _doc('<defs><linearGradient id="g" gradientUnits="userSpaceOnUse" x1="0%" x2="100%">'
                '<stop offset="0" stop-color="#000"/><stop offset="1" stop-color="#fff"/></linearGradient></defs>'
                '<rect width="100" height="100" fill="url(#g)"/>', 'width="200" height="200" viewBox="0 0 100 100"')
    g = _shapes(text)[0].gradient
    assert g.offset_at((100.0, 50.0)) == pytest.approx(0.5)   # the Blender reader said 0.25 (% of 200 px)
    assert g.offset_at((200.0, 50.0)) == pytest.approx(1.0)
    (p,) = svg_to_scene(text).paths()
    assert p.fill.end.tolist() == pytest.approx([200, 0])


def test_user_space_gradient_coordinates_may_have_units():
    text = _doc('<defs><linearGradient id="g" gradientUnits="userSpaceOnUse" x1="0" x2="0.5in">'
                '<stop offset="0" stop-color="#000"/><stop offset="1" stop-color="#fff"/></linearGradient></defs>'
                '<rect width="100" height="100" fill="url(#g)"/>')
    assert _shapes(text)[0].gradient.offset_at((24.0, 0.0)) == pytest.approx(0.5)
    assert svg_to_scene(text).layers[0].paths[0].fill.end.tolist() == pytest.approx([48, 0])


@pytest.mark.parametrize("gradient", [
    '<linearGradient id="g" x1="0.3" x2="0.3" y1="0.5" y2="0.5">',
    '<radialGradient id="g" r="0">',
])
def test_a_gradient_without_extent_paints_its_last_stop(gradient):
    end = "</linearGradient>" if "linear" in gradient else "</radialGradient>"
    text = _doc(f'<defs>{gradient}<stop offset="0" stop-color="#f00"/><stop offset="1" stop-color="#00f" '
                f'stop-opacity="0.5"/>{end}</defs><rect width="10" height="10" fill="url(#g)"/>')
    (s,) = _shapes(text)
    assert s.gradient is None and s.hex == "#0000ff" and s.opacity == pytest.approx(0.5)
    (p,) = svg_to_scene(text).paths()
    assert p.fill is None and p.color.tolist() == pytest.approx([0, 0, 1, 0.5])


def test_stops_that_cannot_be_read_are_black_at_offset_0_and_transparent_ones_stay():
    text = _doc('<defs><linearGradient id="g"><stop offset="0.2" stop-color="bogus"/>'
                '<stop offset="x" stop-color="#fff"/><stop offset="1" stop-color="transparent"/>'
                '</linearGradient></defs>'
                '<rect width="10" height="10" fill="url(#g)"/>')
    assert _shapes(text)[0].gradient.stops == [(0.2, (0, 0, 0, 1)), (0.2, (1, 1, 1, 1)), (1.0, (0, 0, 0, 0))]
    (p,) = svg_to_scene(text).paths()
    assert p.fill.offsets.tolist() == pytest.approx([0.2, 0.2, 1.0])


def test_width_auto_is_the_viewbox_size():
    d = svg_layers.parse_svg(_doc('<rect width="5" height="5"/>', 'width="auto" viewBox="0 0 30 20"'))
    assert (d.width, d.height) == (30, 20)


# ---------------------------------------------------------------------------------------------
# what both gained
# ---------------------------------------------------------------------------------------------
def test_bounding_box_gradients_use_the_exact_box_of_the_curves():
    d = "M0 50 C0 -10 80 10 100 50 Z"          # the curve's top lies between the ends and the handles
    t = np.linspace(0, 1, 200001)
    curve_y = (1 - t) ** 3 * 50 + 3 * (1 - t) ** 2 * t * -10 + 3 * (1 - t) * t * t * 10 + t ** 3 * 50
    top = curve_y.min()
    text = _doc(f'<defs><linearGradient id="g" x2="0" y2="1"><stop offset="0" stop-color="#000"/>'
                f'<stop offset="1" stop-color="#fff"/></linearGradient></defs><path d="{d}" fill="url(#g)"/>')
    g = _shapes(text)[0].gradient
    assert g.offset_at((50.0, top)) == pytest.approx(0.0, abs=1e-6)   # control points: top = -10
    assert g.offset_at((50.0, 50.0)) == pytest.approx(1.0, abs=1e-6)
    (p,) = svg_to_scene(text).paths()
    assert float(p.fill.start[1]) == pytest.approx(top, abs=1e-4)    # lvss sampled 17 points a segment


def test_subpaths_without_area_are_dropped_whatever_their_direction():
    text = _doc('<path d="M0 0H10V10H0Z M20 20 L30 30 Z M40 40 C50 45 50 45 60 50 Z"/>')
    assert len(_shapes(text)[0].splines) == 1     # the Blender reader kept the two slanted ones
    (p,) = _points(text)
    assert p.shape == (12, 2) and _extent(p) == (0, 0, 10, 10)   # lvss joined them in


def test_hsl_is_read_to_8_bit_channels_as_browsers_do():
    (s,) = _shapes(_doc('<rect width="5" height="5" fill="hsl(120, 100%, 25%)"/>'))
    assert s.rgb == pytest.approx((0, 128 / 255, 0))
    assert svg_read.parse_color("hsla(240deg 100% 50% / 50%)") == pytest.approx((0, 0, 1, 0.5))


def test_radial_gradient_through_both_front_ends_agree():
    """One placement for both: lvss's circle and focal in canvas pixels are where the Blender
    gradient's offsets 0 and 1 lie."""
    text = _doc('<defs><radialGradient id="g" cx="0.5" cy="0.5" r="0.5" fx="0.3" fy="0.5" spreadMethod="reflect">'
                '<stop offset="0" stop-color="#fff"/><stop offset="1" stop-color="#000"/></radialGradient></defs>'
                '<rect x="10" y="20" width="40" height="40" fill="url(#g)" transform="translate(5 0)"/>')
    (s,) = _shapes(text)
    (p,) = svg_to_scene(text).paths()
    assert isinstance(p.fill, RadialGradient) and s.gradient.spread == "reflect"
    c, f, r = p.fill.center.double().numpy(), p.fill.focal.double().numpy(), float(p.fill.radius)
    assert c.tolist() == pytest.approx([35, 40]) and f.tolist() == pytest.approx([27, 40]) and r == pytest.approx(20)
    assert s.gradient.offset_at(tuple(f)) == pytest.approx(0.0, abs=1e-6)
    assert s.gradient.offset_at((c[0] + r, c[1])) == pytest.approx(1.0)
    assert s.gradient.offset_at((c[0], c[1] - r)) == pytest.approx(1.0)
    assert math.isclose(float(torch.dist(p.fill.center, torch.tensor([35.0, 40.0]))), 0.0, abs_tol=1e-5)
