"""The editability checker (bench/editability.py) judged on hand-written SVGs; no lvss run."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "bench_editability", Path(__file__).resolve().parents[1] / "bench" / "editability.py")
E = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(E)


def _svg(paths: str, w: int = 64, h: int = 64, viewbox: bool = True) -> str:
    vb = f' viewBox="0 0 {w} {h}"' if viewbox else ""
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}"{vb}>{paths}</svg>'


def _one(d: str, extra: str = "") -> dict:
    res = E.check_paths(_svg(f'<path d="{d}" fill="#000"{extra}/>'), 64, 64)
    assert res["parse_errors"] == 0
    return res["per_path"][0]


def test_figure_eight_has_one_crossing():
    p = _one("M10 10 L50 50 L50 10 L10 50 Z")
    assert (p["self"], p["inter"], p["touch"]) == (1, 0, 0)
    # the same with curves: a cubic figure-eight loop also crosses once
    p = _one("M10 30 C10 10 50 50 50 30 C50 10 10 50 10 30 Z")
    assert p["self"] + p["inter"] == 1 and p["kinks"] == 0


def test_tiny_loop_is_a_kink():
    # a square whose top edge ties a knot (1.7 px of outline round the loop): one crossing, a kink
    p = _one("M10 10 L31 10 L30.5 9.5 L30.5 10.5 L50 10 L50 50 L10 50 Z")
    assert (p["self"], p["kinks"]) == (1, 1)


def test_square_has_none():
    p = _one("M10 10 H50 V50 H10 Z")
    assert (p["self"], p["inter"], p["touch"], p["nodes"], p["subpaths"]) == (0, 0, 0, 4, 1)
    # an explicit last line back to the start is no extra node, an open end gets its closing line
    assert _one("M10 10 L50 10 L50 50 L10 50 L10 10 Z")["nodes"] == 4
    assert _one("M10 10 L50 10 L50 50 L10 50")["nodes"] == 4


def test_square_with_hole_has_none():
    p = _one("M10 10 H50 V50 H10 Z M20 20 V40 H40 V20 Z")
    assert (p["subpaths"], p["self"], p["inter"], p["touch"]) == (2, 0, 0, 0)
    assert p["area"] == pytest.approx(40 * 40 - 20 * 20, rel=1e-6)


def test_hole_crossing_its_outer_loop_counts():
    p = _one("M10 10 H40 V40 H10 Z M30 30 H55 V55 H30 Z")
    assert p["self"] == 0 and p["inter"] == 2


def test_touching_is_not_crossing():
    # a bow-tie whose two loops meet at one vertex (touch), and a loop touching itself along an edge
    p = _one("M10 10 L30 30 L50 10 L50 50 L30 30 L10 50 Z")
    assert p["self"] == 0 and p["touch"] >= 1
    # a zero-width spike (out and straight back) is a touch, not a crossing
    p = _one("M10 10 H40 L55 10 L40 10 V40 H10 Z")
    assert p["self"] == 0 and p["touch"] >= 1
    assert _one("M10 10 H50 V50 H10 Z")["touch"] == 0


def test_relative_commands_parse_like_absolute():
    rel = "m10 10 l20 0 c5 0 10 5 10 10 s0 10 -5 10 q-5 5 -10 5 t-10 -5 h-5 v-10 z m5 5 l2 0 l0 2 z"
    ab = "M10 10 L30 10 C35 10 40 15 40 20 S40 30 35 30 Q30 35 25 35 T15 30 H10 V20 Z M15 15 L17 15 L17 17 Z"
    a, b = E.parse_d(rel), E.parse_d(ab)
    assert len(a) == len(b) == 2
    for sa, sb in zip(a, b):
        pa, na = E.flatten_subpath(sa, np.eye(3))
        pb, nb = E.flatten_subpath(sb, np.eye(3))
        assert na == nb and pa.shape == pb.shape
        np.testing.assert_allclose(pa, pb, atol=1e-9)
    # vtracer style: relative data under a translate transform lands where the absolute twin does
    r1 = E.check_paths(_svg('<path d="M0 0 l20 0 l0 20 l-20 0 Z" transform="translate(10,12)" fill="#000"/>',
                            viewbox=False), 64, 64)["per_path"][0]
    r2 = _one("M10 12 H30 V32 H10 Z")
    assert r1["area"] == pytest.approx(r2["area"]) and r1["perimeter"] == pytest.approx(r2["perimeter"])


def test_arc_is_parsed():
    p = _one("M20 32 A12 12 0 1 0 44 32 A12 12 0 1 0 20 32 Z")
    assert p["area"] == pytest.approx(np.pi * 144, rel=1e-3)
    assert p["self"] + p["inter"] == 0


def test_thin_sliver_is_a_hair():
    p = _one("M5 20 H55 V20.3 H5 Z")  # 50 x 0.3 px: 15 px2 area but 0.3 px mean width
    assert p["hair"] and p["mean_width"] == pytest.approx(0.3, rel=0.05)
    assert not _one("M5 20 H55 V30 H5 Z")["hair"]
    # the area rule alone: a 3 x 3 square (1.5 px mean width) on a 256 x 256 canvas (bar 13.1 px2)
    res = E.check_paths(_svg('<path d="M5 5 h3 v3 h-3 z"/><path d="M50 50 h4 v4 h-4 z"/>', 256, 256), 256, 256)
    assert [p["hair"] for p in res["per_path"]] == [True, False] and res["hairs"] == 1

def _tile(x_split: float, w: int = 64, h: int = 64):
    svg = _svg(f'<path d="M0 0 H{x_split} V{h} H0 Z" fill="#ff0000"/>'
               f'<path d="M{x_split} 0 H{w} V{h} H{x_split} Z" fill="#0000ff"/>', w, h)
    img = np.zeros((h, w, 4), np.uint8)
    img[..., 3] = 255
    img[:, : int(x_split), 0] = 255
    img[:, int(x_split):, 2] = 255
    return svg, img


def test_abutting_tiles_have_no_seam_at_integer_edges():
    svg, img = _tile(32)
    s = E.seam_counts(svg, img)
    assert s[1]["seam"] == 0 and s[1]["uncovered"] == 0 and s[1]["mask"] > 0
    assert s[2]["seam"] == 0 and s[4]["seam"] == 0


def test_abutting_tiles_seam_at_half_pixel_edge():
    svg, img = _tile(32.5)
    s = E.seam_counts(svg, img, scales=(1,))
    assert s[1]["seam"] > 0  # the anti-aliased crack down column 32
