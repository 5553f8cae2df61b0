"""VeC (vector compactness) on hand-made masks, and its mask helpers."""
import math

import numpy as np
import pytest
import torch

from lvss.metrics import scene_path_masks, svg_region_masks, vec
from lvss.scene import Layer, Path, Scene, polygon_to_path


def _box(x0, x1, y0=0, y1=10, size=10):
    m = np.zeros((size, size), bool)
    m[y0:y1, x0:x1] = True
    return m


REGIONS = np.stack([_box(0, 5), _box(5, 10)])  # left and right halves of a 10 x 10 canvas


def test_vec_counts_paths_inside_each_region():
    inside_left = _box(0, 4)
    spanning = _box(3, 7)          # half in each region: inside neither
    inside_right = _box(6, 10)
    assert vec(np.stack([inside_left, inside_right]), REGIONS) == 1.0
    # each region sees two overlapping paths, one of them inside
    assert vec(np.stack([inside_left, spanning, inside_right]), REGIONS) == pytest.approx(0.5)
    # a region no path touches is left out of the mean
    assert vec(np.stack([inside_left]), REGIONS) == 1.0
    assert vec(np.stack([spanning]), REGIONS) == 0.0


def test_vec_inside_threshold():
    ninety = _box(0, 10)[:, :10].copy()
    ninety[:] = False
    ninety[:, 0:5] = True          # 50 px in the left region
    ninety[0:5, 5] = True          # 5 px in the right: 50/55 = 91 % inside the left
    eighty = _box(0, 5)
    eighty[:, 5:6] = True
    eighty[:, 6:7] = True          # 50 of 70 px = 71 % inside the left
    assert vec(np.stack([ninety]), REGIONS[:1]) == 1.0
    assert vec(np.stack([eighty]), REGIONS[:1]) == 0.0
    assert vec(np.stack([eighty]), REGIONS[:1], inside=0.7) == 1.0


def test_vec_coverage_input_and_errors():
    cov = np.stack([_box(0, 4) * 0.9, _box(3, 7) * 0.3])  # the second is below the 0.5 threshold
    assert vec(cov, REGIONS) == 1.0
    assert math.isnan(vec(np.zeros((1, 10, 10), bool), REGIONS))
    assert math.isnan(vec(np.zeros((0, 10, 10), bool), REGIONS))
    with pytest.raises(ValueError, match="render both"):
        vec(np.zeros((1, 8, 8), bool), REGIONS)
    with pytest.raises(ValueError, match=r"\(K, H, W\)"):
        vec(np.zeros((10, 10), bool), REGIONS)


def test_scene_path_masks_and_svg_regions():
    sq = polygon_to_path(torch.tensor([[2.0, 2.0], [8.0, 2.0], [8.0, 8.0], [2.0, 8.0]]))
    tri = polygon_to_path(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]))
    scene = Scene(10, 10, [Layer("a", [Path(sq.points, torch.tensor([1.0, 0, 0, 0.3])), tri])])
    m = scene_path_masks(scene)
    assert m.shape == (2, 10, 10)
    np.testing.assert_array_equal(m[0], _box(2, 8, 2, 8))  # own shape, whatever the alpha
    assert m[1].sum() == 45  # pixels strictly below the diagonal (the diagonal ones are half covered)
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 20 20">'
           '<rect x="0" y="0" width="10" height="20" fill="#f00"/>'
           '<rect x="10" y="0" width="10" height="10" fill="#00f"/>'
           '<rect x="4" y="4" width="0" height="0" fill="#0f0"/></svg>')
    r = svg_region_masks(svg, size=10)
    assert r.shape == (2, 10, 10)
    np.testing.assert_array_equal(r[0], _box(0, 5))
    np.testing.assert_array_equal(r[1], _box(5, 10, 0, 5))
    with pytest.raises(ValueError, match="svg must be"):
        svg_region_masks(12)
    # strokes only (an outline drawing): no filled region, an empty stack of the asked size
    strokes = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 20 20">'
               '<path d="M2 2 L18 18" fill="none" stroke="#000" stroke-width="2"/></svg>')
    assert svg_region_masks(strokes, size=10).shape == (0, 10, 10)


def test_openmoji_regions(openmoji_dir):
    r = svg_region_masks(openmoji_dir / "1F431.svg", size=64)
    assert r.ndim == 3 and len(r) >= 2 and r.shape[1:] == (64, 64)
    assert r.reshape(len(r), -1).sum(1).min() >= 1


def test_composite_metrics_over_white_torch_and_numpy_agree():
    import torch

    from lvss.metrics import composite_metrics

    rng = np.random.default_rng(0)
    C, tc = rng.uniform(0, 1, (2, 8, 8, 3))
    A, ta = rng.uniform(0, 1, (2, 8, 8))
    C, tc = C * A[..., None], tc * ta[..., None]
    ref = ((C + (1 - A)[..., None]) - (tc + (1 - ta)[..., None])) ** 2
    a = composite_metrics(C, A, tc, ta)
    b = composite_metrics(*(torch.from_numpy(v) for v in (C, A, tc, ta)))
    assert a["mse"] == pytest.approx(ref.mean()) and b["mse"] == pytest.approx(ref.mean())
    assert a["psnr"] == pytest.approx(10 * np.log10(1 / ref.mean()))
    assert composite_metrics(tc, ta, tc, ta)["psnr"] == 100.0
