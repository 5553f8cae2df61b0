"""Where the test images shipped with the repository live (no imports beyond the standard library,
no side effects, so scripts outside tests/ can use it too:
``sys.path.insert(0, str(REPO / "tests")); from testdata import OPENMOJI, openmoji_path``).

``tests/data/openmoji``: twelve OpenMoji emoji (CC BY-SA 4.0, © OpenMoji; see its NOTICE.md), each
as its source SVG (``<code>.svg``, ground truth for shapes) and a 256×256 PNG rendered from it on
white (``<code>_256.png``, what the vectorizer sees).

:func:`self_signed_cert` makes the TLS certificate of a test server (with ``openssl``).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

TEST_DATA = Path(__file__).resolve().parent / "data"
OPENMOJI = TEST_DATA / "openmoji"
OPENMOJI_CODES = ("1F339", "1F344", "1F34C", "1F353", "1F3A8", "1F3E1", "1F422", "1F431", "1F436",
                  "1F6B2", "1F98A", "2615")


def openmoji_path(code: str, kind: str = "png") -> Path:
    """One bundled OpenMoji file: ``kind="png"`` gives ``<code>_256.png``, ``"svg"`` gives ``<code>.svg``."""
    if kind not in ("png", "svg"):
        raise ValueError(f"kind must be 'png' or 'svg', got {kind!r}")
    path = OPENMOJI / (f"{code}_256.png" if kind == "png" else f"{code}.svg")
    if not path.is_file():
        raise FileNotFoundError(f"no bundled OpenMoji file {path}")
    return path


def self_signed_cert(folder: Path) -> tuple[Path, Path] | None:
    """(cert.pem, key.pem) in ``folder``: a self-signed EC P-256 certificate for 127.0.0.1 and
    localhost, valid for a day, that a client can pass as its CA; None without ``openssl``."""
    if shutil.which("openssl") is None:
        return None
    cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key
