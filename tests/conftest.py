import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"
OPENMOJI = SHARED / "openmoji"

# small tensors: threads barely help, and oversubscribed OpenMP threads spin badly on a shared machine
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def openmoji_dir() -> Path:
    if not OPENMOJI.is_dir():
        pytest.skip(f"shared test data not found at {OPENMOJI}")
    return OPENMOJI
