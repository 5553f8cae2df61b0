"""Which pieces get the structural paths (lvss/pieces.py): by area, or over a background."""
from __future__ import annotations

import numpy as np
import pytest

from lvss.layering import build_layers
from lvss.pieces import Piece, _flat_error, choose, mode_colour
from lvss.segment.classical import segment_classical


def _checkerboard(rows: int, cols: int, cell: int) -> np.ndarray:
    """(H, W, 3) float: black and white cells (the top-left one white)."""
    y, x = np.mgrid[0:rows * cell, 0:cols * cell] // cell
    v = ((y + x) % 2 == 0).astype(np.float32)
    return np.repeat(v[..., None], 3, -1)


def _layering(img: np.ndarray):
    return build_layers([segment_classical(img)])


def _pieces(layering) -> list[Piece]:
    from lvss.layering import mask_components

    out, k = [], 0
    for li, layer in enumerate(layering.layers):
        for lm in layer:
            for j, m in enumerate(mask_components(lm.mask, 1, fill_holes=False)):
                out.append(Piece(li, k, j, m, np.flatnonzero(m.reshape(-1))))
            k += 1
    return out


def test_flat_error_is_the_squared_error_of_the_owners_mean_colours():
    rng = np.random.default_rng(0)
    img = rng.random((20, 3))
    owner = np.array([0] * 5 + [1] * 10 + [-1] * 5)
    valid = np.ones(20, bool)
    want = sum(((img[owner == o] - img[owner == o].mean(0)) ** 2).sum() for o in (0, 1))
    want += ((img[owner == -1] - img.mean(0)) ** 2).sum()
    assert _flat_error(owner, img, valid) == pytest.approx(want)
    valid[:3] = False   # transparent pixels count for nothing
    keep = valid
    o2 = owner[keep]
    want2 = sum(((img[keep][o2 == o] - img[keep][o2 == o].mean(0)) ** 2).sum() for o in (0, 1))
    want2 += ((img[keep][o2 == -1] - img[keep].mean(0)) ** 2).sum()
    assert _flat_error(owner, img, valid) == pytest.approx(want2)


def test_mode_colour_is_the_most_common_colour_not_the_mean():
    px = np.concatenate([np.tile([0.9, 0.1, 0.1], (60, 1)), np.tile([0.1, 0.1, 0.9], (40, 1))])
    assert np.allclose(mode_colour(px), [0.9, 0.1, 0.1])


def test_a_checkerboard_gets_one_background_and_the_other_colour_on_top():
    img = _checkerboard(4, 8, 8)                    # 16 white and 16 black cells, none 4-connected
    lay = _layering(img)
    pieces = _pieces(lay)
    assert len(pieces) == 32
    valid = np.ones(img.shape[:2], bool)
    c = choose(pieces, 17, img, valid)
    assert len(c.background) == 1 and c.background[0][0].all() and not c.grow
    bg_white = mode_colour(img.reshape(-1, 3))[0] > 0.5
    on_top = [pieces[i] for i in c.order[:16]]
    # the 16 cells of the other colour, so the flat picture is exact
    assert all(((img.reshape(-1, 3)[p.pixels, 0] > 0.5) != bg_white).all() for p in on_top)
    assert c.error == pytest.approx(0.0, abs=1e-6)
    grown = choose(pieces, 17, img, valid)  # deterministic
    assert grown.order == c.order


def test_pictures_whose_pieces_fit_the_budget_keep_the_largest_pieces():
    img = _checkerboard(2, 2, 16)
    lay = _layering(img)
    pieces = _pieces(lay)
    c = choose(pieces, 8, img, np.ones(img.shape[:2], bool))
    assert c.background == [] and c.grow
    assert [pieces[i].area for i in c.order] == sorted((p.area for p in pieces), reverse=True)


def test_the_way_that_paints_closer_wins():
    from lvss.pieces import _by_area, _over_background

    # a face-like picture on a striped background: both ways are possible at a small budget
    h = w = 64
    y, x = np.mgrid[0:h, 0:w]
    img = np.where(((y // 8) % 2 == 0)[..., None], 1.0, 0.6).astype(np.float32) * np.ones(3, np.float32)
    face = (y - 32) ** 2 + (x - 32) ** 2 < 20 ** 2
    img[face] = [1.0, 0.8, 0.1]
    for cx in (25, 39):
        img[(y - 27) ** 2 + (x - cx) ** 2 < 16] = [0.1, 0.1, 0.1]
    valid = np.ones((h, w), bool)
    pieces = _pieces(_layering(img))
    flat, fv = img.reshape(-1, 3).astype(np.float64), valid.reshape(-1)
    for budget in (2, 4, 6):
        a = _by_area(pieces, budget, (h, w), flat, fv)
        b = _over_background(pieces, budget, (h, w), flat, fv, 1)
        c = choose(pieces, budget, img, valid)
        assert c.error == pytest.approx(min(a.error, b.error))
        assert (c.background != []) == (b.error < a.error)


def test_structural_paths_put_the_background_in_a_new_back_layer():
    from lvss.pipeline import _structural_paths

    img = _checkerboard(4, 8, 8)
    lay = _layering(img)
    n_layers = len(lay)
    valid = np.ones(img.shape[:2], bool)
    sp = _structural_paths(lay, 17, 1.5, valid=valid, rgb=img)
    assert len(lay) == n_layers + 1 and len(lay.layers[0]) == 1 and lay.layers[0][0].mask.all()
    assert len(sp) == 17 and sp[0].layer == 0 and sp[0].mask.all()
    assert all(s.layer >= 1 for s in sp[1:])
    assert [s.layer for s in sp] == sorted(s.layer for s in sp)
    # the cells on top all have the colour the background does not
    bg = sp[0].mean_color[0] > 0.5
    assert all((img[s.mask][:, 0] > 0.5).all() != bg for s in sp[1:])


def test_a_checkerboard_is_traced_cell_for_cell():
    from lvss.config import VectorizeConfig
    from lvss.pipeline import run
    from lvss.testing import resvg_render

    img = (_checkerboard(4, 8, 8) * 255).astype(np.uint8)
    from dataclasses import replace

    cfg = VectorizeConfig(paths=24, work_size=64)
    cfg = replace(cfg, simplify=replace(cfg.simplify, levels=2))
    res = run(img, cfg)
    from lvss.svg import scene_to_svg

    out = resvg_render(scene_to_svg(res.scene), 64, 32)
    out = np.asarray(out, np.float64)[..., :3]
    out = out / 255.0 if out.max() > 1.5 else out
    err = np.abs(out - img / 255.0).mean(-1)
    assert (err > 0.5).mean() < 0.01               # no cell painted the wrong colour
