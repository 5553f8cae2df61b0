"""bench/compare_tools.py's own pieces: potrace's path data turned into canvas pixels, the colour scans
stacked as Inkscape's Trace Bitmap stacks them (with the real ``potrace`` where installed), and a run
without potrace that says so; no lvss run."""
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))   # compare_tools imports bench/editability.py as `editability`
_spec = importlib.util.spec_from_file_location("bench_compare_tools", BENCH / "compare_tools.py")
C = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(C)


def test_potrace_path_data_in_canvas_pixels():
    # potrace writes tenths of a pixel with y up under translate(0, H) scale(0.1, -0.1): a 20-px
    # square whose top-left corner is at (10, 14) on a 64-px canvas
    d = "M100 500 l0 -200 200 0 0 200 -200 0 z m50 -50 c10 0 20 10 30 20z"
    out = C._potrace_d(d, 64)
    assert out.split(" z ")[0] == "M 10 14 l 0 20 20 -0 0 -20 -20 -0"
    assert out.endswith("m 5 5 c 1 -0 2 -1 3 -2 z")


@pytest.mark.skipif(shutil.which("potrace") is None, reason="potrace is not installed (apt-get install potrace)")
def test_stacked_scans_cover_the_picture(tmp_path):
    # white canvas, a red square, a black dot inside it: three scans, lightest at the back, each scan
    # covering its colour and every colour in front of it
    img = np.full((64, 64, 3), 255, np.uint8)
    img[12:52, 12:52] = (200, 30, 30)
    img[28:36, 28:36] = 0
    svg = C.potrace_svg(img, 3, 2, tmp_path)
    fills = re.findall(r'<g fill="(#[0-9a-f]{6})">', svg)
    assert fills == ["#ffffff", "#c81e1e", "#000000"]
    assert "transform" not in svg
    assert C.psnr_of(svg, img.astype(np.float32) / 255) > 20


def test_without_potrace_the_run_says_so(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(C.shutil, "which", lambda name: None)
    assert C.main(["--images", "1F344", "--skip-lvss", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "potrace is missing" in err
    row = next(line for line in out.splitlines() if "| potrace |" in line)
    assert "potrace is missing" in row
    vt = next(line for line in out.splitlines() if "| vtracer |" in line and "OpenMoji" in line)
    assert float(vt.split("|")[5]) > 15   # vtracer still ran and was scored (PSNR column)
