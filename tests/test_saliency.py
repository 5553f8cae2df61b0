"""lvss.saliency: CLIP relevance rollout (tiny random CLIP), user masks and the uniform map."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
import tiny_models  # noqa: E402

from lvss.config import ConfigError  # noqa: E402
from lvss.models import load_clip  # noqa: E402
from lvss.saliency.clip_rollout import ClipSaliency, clip_saliency, patch_relevance  # noqa: E402
from lvss.saliency.maps import MaskSaliency, fit_map, load_mask_image, uniform_saliency  # noqa: E402


@pytest.fixture(scope="session")
def clip():
    return load_clip(tiny_models.clip_dir(), "cpu")


@pytest.fixture(scope="session")
def image():
    return tiny_models.photo(40, 52)


@pytest.fixture(scope="session")
def cat_map(clip, image):
    return clip_saliency(image, "a red cat", clip)


# ---- CLIP rollout


def test_rollout_map_shape_range_and_not_uniform(cat_map, image):
    assert cat_map.shape == image.shape[:2] and cat_map.dtype == np.float32
    assert cat_map.min() == pytest.approx(0.0, abs=1e-6) and cat_map.max() == pytest.approx(1.0, abs=1e-6)
    assert cat_map.std() > 0.05


def test_rollout_responds_to_the_prompt(clip, image, cat_map):
    other = clip_saliency(image, "blue sky over the sea", clip)
    assert np.abs(other - cat_map).mean() > 1e-3


def test_rollout_is_deterministic(clip, image, cat_map):
    assert np.array_equal(ClipSaliency(clip)(image, "a red cat"), cat_map)


def test_patch_relevance_is_nonnegative_on_the_patch_grid(clip, image):
    rel = patch_relevance(clip, image, "a red cat")
    assert tuple(rel.shape) == (4, 4)  # 32 px input, 8 px patches
    assert float(rel.min()) >= 0.0 and float(rel.max()) > 0.0


def test_rollout_needs_a_prompt(clip, image):
    with pytest.raises(ConfigError, match="prompt"):
        clip_saliency(image, "  ", clip)


# ---- user mask and uniform map


def test_uniform_map(image):
    u = uniform_saliency(image, "ignored")
    assert u.shape == image.shape[:2] and u.dtype == np.float32 and (u == 1).all()


def test_user_mask_white_is_important_and_is_resized(tmp_path, image):
    mask = np.zeros((20, 26), np.uint8)
    mask[:, 13:] = 255  # right half important
    path = tmp_path / "mask.png"
    Image.fromarray(mask).save(path)
    sal = MaskSaliency(str(path))(image, "")
    assert sal.shape == image.shape[:2] and sal.dtype == np.float32
    assert 0.0 <= sal.min() and sal.max() <= 1.0
    assert sal[:, :20].max() < 0.01 and sal[:, -20:].min() > 0.99


def test_transparent_mask_pixels_are_unimportant(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:2, :, 3] = 255  # top half opaque white, bottom half transparent white
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    m = load_mask_image(str(path))
    assert (m[:2] == 1).all() and (m[2:] == 0).all()


def test_bad_mask_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist.*mask"):
        MaskSaliency(str(tmp_path / "missing.png"))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(ConfigError, match="not a readable image"):
        MaskSaliency(str(junk))


def test_fit_map_keeps_range():
    sal = fit_map(np.array([[0.0, 1.0], [1.0, 0.0]], np.float32), 7, 9)
    assert sal.shape == (7, 9) and sal.min() >= 0 and sal.max() <= 1
