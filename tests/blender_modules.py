"""Loading a module of blender_ext by its file, for the tests that run without Blender (the package's
__init__ needs bpy)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_blender_module(name: str, prefix: str = "lvss_blender"):
    """blender_ext/<name>.py as a fresh module registered as ``<prefix>_<name>`` (a test file gives its
    own prefix so that its copy stays its own)."""
    spec = importlib.util.spec_from_file_location(f"{prefix}_{name}", REPO / "blender_ext" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
