"""What a batch worker does, whatever the engine: load the stages once (:func:`warm_up`) and turn one
image into its manifest fields and SVG (:func:`process_bytes`, :func:`process_path`). The engines
(:mod:`lvss.batch.local`, :mod:`lvss.batch.ray`) and the driver (:mod:`lvss.batch.core`) share these
and the types below; this module imports neither of them.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..config import ConfigError, VectorizeConfig


class BatchError(ValueError):
    """The batch cannot start or go on (no inputs, an unusable output folder, a missing engine, a
    model that cannot load); the message says what to change."""


@dataclass(frozen=True)
class Item:
    """One image of a batch.

    source: the input file as found; output: the SVG's path relative to OUT_DIR (POSIX separators);
    problem: why it cannot be vectorized before even reading it (a clash of outputs), else None.
    """

    source: str
    output: str
    problem: str | None = None



@dataclass
class Job:
    """An image to vectorize (what an engine receives)."""

    index: int
    item: Item
    stat: tuple[int, int] | None


# --------------------------------------------------------------------------------------------------
# one image (runs inside a worker, whatever the engine)
# --------------------------------------------------------------------------------------------------
def one_line(msg: str) -> str:
    return " ".join(str(msg).split()) or "unknown error"


def warm_up(cfg: VectorizeConfig) -> None:
    """Load what every image needs once per worker: the device, the stage implementations and their
    models (cached per process by :mod:`lvss.models`). Raises ConfigError/ModelError when a model or
    device is unusable."""
    from .. import pipeline
    from ..models import resolve_device
    from ..stages import get_saliency, get_segmenter, get_simplifier

    resolve_device(cfg.device)
    get_simplifier(cfg)
    get_segmenter(cfg)
    get_saliency(cfg)
    # one tiny run pays the first-use costs (lazy imports of the optimiser and image libraries) here,
    # not on the first image; a failure is left for the real images to report
    import numpy as np

    yy, xx = np.mgrid[:16, :16]
    tiny = np.where(((xx - 8) ** 2 + (yy - 8) ** 2 < 25)[..., None], [200, 40, 40], [250, 250, 250]).astype(np.uint8)
    opt = replace(cfg.optimize, structure_iters=min(cfg.optimize.structure_iters, 2),
                  refine_iters=min(cfg.optimize.refine_iters, 2), polish_iters=min(cfg.optimize.polish_iters, 2))
    simp = replace(cfg.simplify, levels=min(cfg.simplify.levels, 1),
                   sds_iterations_per_level=min(cfg.simplify.sds_iterations_per_level, 1))
    try:
        pipeline.run(tiny, cfg.with_(paths=min(cfg.paths, 4), work_size=16, optimize=opt, simplify=simp))
    except Exception:
        pass


def process_bytes(data: bytes, name: str, cfg: VectorizeConfig, precision: int = 2) -> tuple[dict, str | None]:
    """Vectorize one image's file content. Returns (manifest fields, SVG text or None on error).

    The fields are input_sha256, status ("ok" | "error"), error (one line or None), seconds, paths,
    layers, psnr, mse and svg_bytes. Bad images and internal failures become ``error`` fields; only
    KeyboardInterrupt and SystemExit propagate.
    """
    from ..io import ImageError, decode_image_bytes
    from ..pipeline import run
    from ..svg import scene_to_svg

    t = time.perf_counter()
    fields: dict[str, Any] = {"input_sha256": hashlib.sha256(data).hexdigest()}
    svg = None
    try:
        rgba = decode_image_bytes(data, what=name)
        res = run(rgba, cfg)
        svg = scene_to_svg(res.scene, precision=precision)
        psnr, mse = res.metrics.get("psnr"), res.metrics.get("mse")
        fields.update(status="ok", error=None, paths=res.scene.num_paths, layers=len(res.scene.layers),
                      psnr=None if psnr is None else round(float(psnr), 4),
                      mse=None if mse is None else float(mse), svg_bytes=len(svg.encode("utf-8")))
    except (ImageError, ConfigError) as e:
        fields.update(status="error", error=one_line(e))
    except MemoryError:
        fields.update(status="error", error=f"{name}: out of memory while vectorizing; lower --work-size "
                                            "or run fewer --workers")
    except Exception as e:  # an internal failure on one image must not end the batch
        fields.update(status="error", error=one_line(f"internal error on {name}: {type(e).__name__}: {e}"))
    fields["seconds"] = round(time.perf_counter() - t, 3)
    return fields, svg


def process_path(path: str, name: str, cfg: VectorizeConfig, precision: int = 2) -> tuple[dict, str | None]:
    """:func:`process_bytes` on a file read here (an unreadable file becomes an error)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return {"input_sha256": None, "status": "error", "seconds": 0.0,
                "error": one_line(f"cannot read {name}: {e.strerror or e}")}, None
    return process_bytes(data, name, cfg, precision)
