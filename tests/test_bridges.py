"""Zero-width bridges to holes come out of the SVG as separate contours (lvss.geometry.bridges)."""
from __future__ import annotations

import numpy as np
import torch

from lvss.geometry.bridges import close_bridges, split_bridges
from lvss.geometry.simple import flatten_closed
from lvss.layering import mask_to_path
from lvss.scene import Layer, Path, Scene
from lvss.svg import scene_to_svg
from lvss.testing import resvg_render


def _area(c: np.ndarray) -> float:
    f = flatten_closed(c, 16)
    x, y = f[:, 0], f[:, 1]
    return float(0.5 * (x * np.roll(y, -1) - np.roll(x, -1) * y).sum())


def _holed(n: int = 48, holes=((15, 25, 15, 25),)) -> np.ndarray:
    m = np.zeros((n, n), bool)
    m[5:n - 5, 5:n - 5] = True
    for y0, y1, x0, x1 in holes:
        m[y0:y1, x0:x1] = False
    return m


def test_a_bridged_hole_becomes_its_own_contour_of_opposite_direction():
    c = mask_to_path(_holed(), 0.75, holes=True).points.double().numpy()
    parts = split_bridges(c)
    assert len(parts) == 2
    areas = sorted((_area(p) for p in parts), key=abs)
    assert np.sign(areas[0]) != np.sign(areas[1])                 # the hole runs the other way
    assert abs(sum(areas) - _area(c)) < 1e-6                      # the same filled area
    assert sum(len(p) for p in parts) == len(c) - 6               # the bridge's two segments went


def test_two_holes_and_no_bridge():
    c = mask_to_path(_holed(holes=((10, 18, 10, 18), (28, 36, 26, 38))), 0.75, holes=True).points.double().numpy()
    assert len(split_bridges(c)) == 3
    plain = mask_to_path(_holed(holes=()), 0.75).points.double().numpy()
    out = split_bridges(plain)
    assert len(out) == 1 and out[0] is plain


def test_written_svg_has_the_hole_as_a_subpath_and_renders_the_same():
    pts = mask_to_path(_holed(), 0.75, holes=True).points.float()
    scene = Scene(48, 48)
    scene.layers.append(Layer("01 Ring", [Path(pts, torch.tensor([0.8, 0.2, 0.1, 1.0]))], "layer1"))
    svg = scene_to_svg(scene)
    d = svg.split(' d="', 1)[1].split('"', 1)[0]
    assert d.count("M") == 2                                      # the outline and the hole
    # the ring as filled: the hole is empty, the ring is filled, under either fill rule
    a = resvg_render(svg, 48, 48, background=None)[..., 3]
    a_eo = resvg_render(svg.replace("<path ", '<path fill-rule="evenodd" ', 1), 48, 48, background=None)[..., 3]
    assert a[20, 20] < 0.01 and a[8, 8] > 0.99
    assert np.abs(a - a_eo).max() < 1e-6


def test_a_bridge_opened_into_a_slit_is_closed_again():
    c = mask_to_path(_holed(), 0.75, holes=True).points.double().numpy()
    assert close_bridges(c) is None                               # a closed bridge: nothing to do
    segs = c.reshape(-1, 3, 2)
    i, j = _bridge_pair(c)
    opened = c.copy()
    opened[3 * i:3 * i + 3] += (0.3, -0.2)                        # the optimiser moved one pass aside
    closed = close_bridges(opened)
    assert closed is not None and len(split_bridges(closed)) == 2  # zero width again: the hole splits off
    assert np.abs(closed - c).max() <= 0.5 * 0.3 + 1e-9 + 0.2      # nothing moved by more than half the gap
    assert segs.shape[0] == len(c) // 3


def _bridge_pair(c: np.ndarray) -> tuple[int, int]:
    from lvss.geometry.bridges import _bridges
    from lvss.geometry.simple import segments_of

    pairs = list(_bridges(segments_of(c), 1e-6))
    assert len(pairs) == 1
    return pairs[0]
