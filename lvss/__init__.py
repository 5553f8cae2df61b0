"""lvss: raster images to layered, editable SVG.

Everything is imported lazily: ``import lvss`` is cheap (no torch), so ``lvss.client`` can start fast,
and heavy optional dependencies (diffusers, transformers, segment_anything, grpc, inkex) load only in
the stages that need them.
"""
from __future__ import annotations

import os as _os

# idle OpenMP threads sleep instead of spinning (see lvss.threads); must precede torch's import
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# numpy's and scipy's BLAS work in lvss is small (colour solves of a few hundred unknowns, contour
# fits): one thread, so that its pool does not compete with torch's threads and other processes for
# the cores; must precede numpy's import to take effect (a value the user set is kept)
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

_LAZY = {
    "Scene": ("scene", "Scene"), "Layer": ("scene", "Layer"), "Path": ("scene", "Path"),
    "VectorizeConfig": ("config", "VectorizeConfig"), "vectorize": ("pipeline", "vectorize"),
    "render": ("render", "render"),
    "batch": ("batch", "batch"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{mod}", __name__), attr)
    raise AttributeError(f"module 'lvss' has no attribute {name!r}")


__all__ = ["Scene", "Layer", "Path", "VectorizeConfig", "vectorize", "render", "batch", "__version__"]
