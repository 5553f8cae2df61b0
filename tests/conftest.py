import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# test images shipped with the repository (tests/data/openmoji: twelve OpenMoji emoji, CC BY-SA 4.0,
# see its NOTICE.md), so a clean clone runs the whole suite without ../shared beside it
TEST_DATA = Path(__file__).resolve().parent / "data"
OPENMOJI = TEST_DATA / "openmoji"


def openmoji_path(code: str, kind: str = "png") -> Path:
    """One bundled OpenMoji file: ``kind="png"`` gives ``<code>_256.png``, ``"svg"`` gives ``<code>.svg``.

    Scripts outside tests/ (bench/) can use it too: ``sys.path.insert(0, "tests"); from conftest
    import openmoji_path`` (or read ``OPENMOJI``)."""
    if kind not in ("png", "svg"):
        raise ValueError(f"kind must be 'png' or 'svg', got {kind!r}")
    path = OPENMOJI / (f"{code}_256.png" if kind == "png" else f"{code}.svg")
    if not path.is_file():
        raise FileNotFoundError(f"no bundled OpenMoji file {path}")
    return path

# small tensors: threads barely help, and oversubscribed OpenMP threads spin badly on a shared machine
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def openmoji_dir() -> Path:
    if not OPENMOJI.is_dir():  # part of the repository: missing means a broken checkout, not a skip
        pytest.fail(f"the bundled OpenMoji test images are missing ({OPENMOJI})")
    return OPENMOJI
