"""Classical simplification sequence (lvss.simplify.classical)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from lvss.config import SimplifyConfig
from lvss.simplify.classical import simplify_classical, simplify_levels
from lvss.types import SimplifyResult


def _two_colour(h: int, w: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A red disc on blue with Gaussian noise; returns (image, true disc mask)."""
    yy, xx = np.mgrid[:h, :w]
    truth = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 3) ** 2
    img = np.where(truth[..., None], np.array([0.8, 0.2, 0.2]), np.array([0.2, 0.3, 0.8]))
    img = img + np.random.default_rng(seed).normal(0.0, noise, img.shape)
    return np.clip(img, 0, 1).astype(np.float32), truth


def _regions(img: np.ndarray) -> int:
    """Number of 4-connected components of equal colour."""
    from skimage.measure import label

    q = np.rint(img * 255).astype(np.int64)
    keys = (q[..., 0] << 16) | (q[..., 1] << 8) | q[..., 2]
    return int(label(keys + 1, background=0, connectivity=1).max())


def _flat_share(img: np.ndarray) -> float:
    same = (img[:, 1:] == img[:, :-1]).all(-1).sum() + (img[1:] == img[:-1]).all(-1).sum()
    return same / (img[:, 1:, 0].size + img[1:, :, 0].size)


def _scene_image(h: int = 64, w: int = 64, seed: int = 1) -> np.ndarray:
    """Shapes with small details and texture: a big square holding small dots, a bar, noise."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 0.9, np.float32)
    img[8:56, 8:40] = (0.9, 0.6, 0.1)
    for r, c in [(14, 14), (14, 30), (30, 20), (44, 14), (44, 30)]:
        img[r:r + 3, c:c + 3] = (0.1, 0.1, 0.1)
    img[10:54, 46:49] = (0.2, 0.5, 0.2)
    img += rng.normal(0.0, 0.03, img.shape).astype(np.float32)
    return np.clip(img, 0, 1)


def test_levels_count_shapes_range():
    img = _scene_image(40, 56)
    for levels in (0, 1, 3):
        res = simplify_classical(img, levels)
        assert isinstance(res, SimplifyResult)
        assert len(res.levels) == levels + 1
        for im in res.levels:
            assert im.shape == img.shape and im.dtype == np.float32
            assert im.min() >= 0.0 and im.max() <= 1.0
        np.testing.assert_array_equal(res.levels[0], img)


def test_deterministic():
    img = _scene_image()
    a = simplify_classical(img, 3, seed=5).levels
    b = simplify_classical(img, 3, seed=5).levels
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_noisy_two_colour_becomes_exactly_two_flat_regions():
    for h, w, seed in [(64, 64, 0), (48, 80, 1)]:
        img, truth = _two_colour(h, w, noise=0.08, seed=seed)
        res = simplify_classical(img, 4)
        coarse = res.levels[-1]
        colours = np.unique(coarse.reshape(-1, 3), axis=0)
        assert len(colours) == 2
        assert _regions(coarse) == 2
        red = np.isclose(coarse, colours[np.argmax(colours[:, 0])]).all(-1)
        # every wrongly assigned pixel lies within 2 px of the true boundary
        wrong = red ^ truth
        dist = np.where(truth, ndi.distance_transform_edt(truth), ndi.distance_transform_edt(~truth))
        assert wrong.sum() <= 0.02 * truth.sum()
        assert (dist[wrong] <= 2).all()
        # the flat colours are the region means, not blurred mixtures
        np.testing.assert_allclose(colours[np.argmax(colours[:, 0])], [0.8, 0.2, 0.2], atol=0.03)


def test_coarser_levels_have_fewer_regions_and_stay_flat():
    img = _scene_image()
    res = simplify_classical(img, 4)
    counts = [_regions(im) for im in res.levels]
    assert counts[1] < counts[0]
    assert all(b <= a for a, b in zip(counts[1:], counts[2:])), counts
    assert counts[-1] < counts[1]
    for im in res.levels[1:]:
        assert _flat_share(im) > 0.9
    # the coarsest level has lost the small dots but kept the square whole (one region)
    coarse = res.levels[-1]
    square = coarse[8:56, 8:40].reshape(-1, 3)
    assert len(np.unique(square, axis=0)) == 1
    np.testing.assert_allclose(square[0], (0.9, 0.6, 0.1), atol=0.05)


def test_edges_stay_sharp():
    """Region boundaries are pixel steps, not ramps: each row crossing the square has one jump."""
    img = _scene_image()
    coarse = simplify_classical(img, 4).levels[-1]
    row = coarse[30, :, 0]
    jumps = np.flatnonzero(np.abs(np.diff(row)) > 1e-6)
    assert 7 <= jumps[0] <= 8  # the square starts at column 8


def test_strength_scales_smoothing():
    img = _scene_image()
    weak = _regions(simplify_classical(img, 2, cfg=SimplifyConfig(smooth_strength=0.3)).levels[-1])
    strong = _regions(simplify_classical(img, 2, cfg=SimplifyConfig(smooth_strength=3.0)).levels[-1])
    assert strong < weak


def test_labels_match_images():
    img = _scene_image()
    images, labels = simplify_levels(img, 2)
    assert len(labels) == 2
    for im, lab in zip(images[1:], labels):
        assert lab.shape == img.shape[:2]
        # one colour per label
        for k in np.unique(lab)[:5]:
            assert len(np.unique(im[lab == k], axis=0)) == 1


def test_tiny_and_uniform_images():
    for shape in [(1, 1, 3), (2, 3, 3), (5, 1, 3)]:
        res = simplify_classical(np.full(shape, 0.3, np.float32), 2)
        assert len(res.levels) == 3
        for im in res.levels:
            np.testing.assert_allclose(im, 0.3, atol=1e-6)


@pytest.mark.parametrize(
    "image, levels, match",
    [
        (np.zeros((8, 8), np.float32), 2, "shape"),
        (np.zeros((8, 8, 4), np.float32), 2, "shape"),
        (np.zeros((8, 8, 3), np.uint8), 2, "dtype"),
        (np.full((8, 8, 3), np.nan, np.float32), 2, "NaN"),
        ([[0.0]], 2, "numpy array"),
        (np.zeros((8, 8, 3), np.float32), -1, "levels"),
        (np.zeros((8, 8, 3), np.float32), 1.5, "levels"),
    ],
)
def test_bad_input(image, levels, match):
    with pytest.raises(ValueError, match=match):
        simplify_classical(image, levels)


def test_bad_strength():
    with pytest.raises(ValueError, match="smooth_strength"):
        simplify_classical(np.zeros((8, 8, 3), np.float32), 1, cfg=SimplifyConfig(smooth_strength=0.0))


@pytest.mark.filterwarnings("ignore:Bad rank filter performance")  # many labels: scikit-image warns about its speed
@pytest.mark.parametrize("radius", [1, 2, 3, 4])
def test_majority_vote_equals_scikit_image(radius):
    """The boundary smoothing's own majority vote gives scikit-image's rank filter result exactly
    (pixels outside the image do not vote, ties go to the smallest label), on blobby label images
    with many labels and on few-label noise, whose ties are common."""
    import warnings

    from skimage.filters.rank import majority
    from skimage.morphology import disk

    from lvss.simplify.classical import _majority

    rng = np.random.default_rng(radius)
    for trial in range(12):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        if trial % 3 == 0:
            lab = rng.integers(0, 4, (h, w))
        else:
            blocks = rng.integers(0, int(rng.integers(2, 3000)), (h // 3 + 1, w // 3 + 1))
            lab = np.kron(blocks, np.ones((3, 3), np.int64))[:h, :w]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # many labels: scikit-image warns about its speed
            want = majority(lab.astype(np.uint16), disk(radius))
        assert np.array_equal(_majority(lab, radius), want.astype(lab.dtype))
