"""lvss: raster images to layered, editable SVG.

Everything is imported lazily: ``import lvss`` is cheap (no torch), so ``lvss.client`` can start fast,
and heavy optional dependencies (diffusers, transformers, segment_anything, grpc, inkex) load only in
the stages that need them.

Importing lvss changes nothing in the host process (no environment variable, no thread setting):
the thread policy (:mod:`lvss.threads`) is applied by lvss's entry points — the ``lvss`` command,
``lvss serve`` and the batch workers — not by the import.
"""
from __future__ import annotations

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
