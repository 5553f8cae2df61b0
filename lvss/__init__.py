"""lvss: raster images to layered, editable SVG.

Heavy optional dependencies (diffusers, transformers, segment_anything, grpc, inkex) are imported
lazily by the stages that need them; ``import lvss`` pulls in only torch, numpy and lxml-free code.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .config import VectorizeConfig  # noqa: E402
from .scene import Layer, Path, Scene  # noqa: E402


def __getattr__(name: str):
    if name == "vectorize":
        from .pipeline import vectorize

        return vectorize
    if name == "render":
        from .render import render

        return render
    raise AttributeError(f"module 'lvss' has no attribute {name!r}")


__all__ = ["Scene", "Layer", "Path", "VectorizeConfig", "vectorize", "render", "__version__"]
