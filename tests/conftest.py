import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# test images shipped with the repository (tests/data/openmoji: twelve OpenMoji emoji, CC BY-SA 4.0,
# see its NOTICE.md), so a clean clone runs the whole suite without ../shared beside it; tests/testdata.py
# (standard library only) says where they are, for scripts outside tests/ too
sys.path.insert(0, str(Path(__file__).resolve().parent))
from testdata import OPENMOJI, OPENMOJI_CODES, TEST_DATA, openmoji_path  # noqa: E402,F401

# small tensors: threads barely help, and oversubscribed OpenMP threads spin badly on a shared machine
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def openmoji_dir() -> Path:
    if not OPENMOJI.is_dir():  # part of the repository: missing means a broken checkout, not a skip
        pytest.fail(f"the bundled OpenMoji test images are missing ({OPENMOJI})")
    return OPENMOJI
