"""Adapter to DiffVG (``pydiffvg``), used only when it is importable.

DiffVG is not on PyPI; it must be built from source. The call has the same inputs and outputs as the
built-in renderer: premultiplied RGB (H, W, 3) and alpha (H, W) over a transparent canvas.
"""
from __future__ import annotations

import torch

DIFFVG_HELP = (
    "renderer='diffvg' needs pydiffvg, which is not on PyPI and must be built from source: "
    "see the README of https://github.com/BachiLi/diffvg (git clone --recursive, then "
    "`python setup.py install` in the same environment as lvss). The built-in renderer "
    "(renderer='torch') needs nothing extra."
)


def _import():
    try:
        import pydiffvg
    except ImportError as e:
        raise ImportError(DIFFVG_HELP) from e
    return pydiffvg


def render_diffvg(points: list[torch.Tensor], colors: torch.Tensor, width: int, height: int,
                  samples: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Render closed cubic paths with DiffVG (2x2 samples per pixel by default)."""
    pydiffvg = _import()
    dev = colors.device
    pydiffvg.set_use_gpu(dev.type == "cuda")
    shapes, groups = [], []
    for i, p in enumerate(points):
        s = p.shape[0] // 3
        shapes.append(pydiffvg.Path(num_control_points=torch.full((s,), 2, dtype=torch.int32),
                                    points=p.contiguous(), is_closed=True))
        groups.append(pydiffvg.ShapeGroup(shape_ids=torch.tensor([i]), fill_color=colors[i]))
    scene_args = pydiffvg.RenderFunction.serialize_scene(width, height, shapes, groups)
    img = pydiffvg.RenderFunction.apply(width, height, samples, samples, seed, None, *scene_args)
    # DiffVG returns straight RGBA over transparent; convert to premultiplied + alpha
    rgb, a = img[..., :3], img[..., 3]
    return rgb * a.unsqueeze(-1), a
