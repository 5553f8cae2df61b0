"""``python -m lvss vectorize`` as a subprocess: a successful run (SVG, --json, --preview) and every
kind of bad input (exit status 2, one line on stderr, no traceback, no output file, an existing
output left as it was).

Each process pays for importing torch, so the bad-input runs are started together (two at a time)
by one module fixture and the tests only look at their results."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from lxml import etree
from PIL import Image
from lvss.testing import png_declaring

ROOT = Path(__file__).resolve().parents[1]
OLD = b"<svg>previous result</svg>"


def lvss(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run([sys.executable, "-m", "lvss", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def disc_png() -> bytes:
    yy, xx = np.mgrid[:36, :48]
    a = np.full((36, 48, 3), 255, np.uint8)
    a[(xx - 24) ** 2 + (yy - 18) ** 2 < 144] = (200, 30, 30)
    return _png(a)


# ------------------------------------------------------------------------------------------------
# success
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def success(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_ok")
    src = d / "disc.png"
    src.write_bytes(disc_png())
    out, prev = d / "out.svg", d / "preview.png"
    r = lvss("vectorize", str(src), "-o", str(out), "--paths", "3", "--work-size", "16", "--levels", "1",
             "--seed", "1", "--json", "--preview", str(prev))
    return r, d, out, prev


def test_success_writes_a_valid_svg(success):
    r, d, out, _ = success
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    root = etree.fromstring(out.read_bytes())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 48 36"  # the input's pixel size
    paths = root.findall(".//{http://www.w3.org/2000/svg}path")
    assert 1 <= len(paths) <= 3
    from lvss.svg import svg_to_scene

    scene = svg_to_scene(out.read_bytes())
    assert (scene.width, scene.height) == (48, 36) and scene.num_paths == len(paths)
    assert sorted(p.name for p in d.iterdir()) == ["disc.png", "out.svg", "preview.png"]  # no temp files


def test_success_json(success):
    r, _, out, _ = success
    info = json.loads(r.stdout)  # stdout holds the JSON and nothing else
    for key in ("paths", "layers", "seconds", "psnr", "mse", "svg_bytes", "output"):
        assert key in info, key
    assert info["paths"] == out.read_text().count("<path ")
    assert 1 <= info["paths"] <= 3
    assert sum(l["paths"] for l in info["layers"]) == info["paths"]
    assert all(isinstance(l["name"], str) for l in info["layers"])
    assert info["seconds"] > 0 and info["svg_bytes"] == len(out.read_bytes())
    assert 5 < info["psnr"] <= 100


def test_success_preview(success):
    _, _, _, prev = success
    im = Image.open(prev)
    assert im.format == "PNG" and im.size == (48, 36)
    a = np.asarray(im.convert("RGBA"))
    assert a[18, 24, 0] > 150 and a[18, 24, 1] < 100  # the red disc is drawn


# ------------------------------------------------------------------------------------------------
# bad input: all cases run up front, two processes at a time
# ------------------------------------------------------------------------------------------------
def _make_inputs(d: Path) -> dict[str, tuple[list[str], str]]:
    """name → (arguments after IN's position, expected text in the error)."""
    good = d / "good.png"
    good.write_bytes(disc_png())
    (d / "notes.png").write_text("this is not an image\n")
    full = _png(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    (d / "truncated.png").write_bytes(full[: len(full) // 2])
    (d / "zero.png").write_bytes(png_declaring(0, 0))
    (d / "one.png").write_bytes(_png(np.zeros((1, 1, 3), np.uint8)))
    (d / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    (d / "empty.png").write_bytes(b"")
    (d / "folder.png").mkdir()
    g = str(good)
    return {
        "missing": ([str(d / "missing.png")], "not found"),
        "not_an_image": ([str(d / "notes.png")], "not an image"),
        "truncated": ([str(d / "truncated.png")], "truncated"),
        "zero_by_zero": ([str(d / "zero.png")], "empty"),
        "one_by_one": ([str(d / "one.png")], "1x1"),
        "bomb": ([str(d / "bomb.png")], "100000x100000"),
        "paths_zero": ([g, "--paths", "0"], "--paths"),
        "paths_negative": ([g, "--paths", "-3"], "--paths"),
        "empty_file": ([str(d / "empty.png")], "empty"),
        "directory": ([str(d / "folder.png")], "directory"),
        "paths_not_a_number": ([g, "--paths", "many"], "--paths"),
        "work_size_too_small": ([g, "--work-size", "4"], "work_size"),
        "precision_too_large": ([g, "--precision", "12"], "precision"),
        "levels_too_many": ([g, "--levels", "50"], "levels"),
        "seed_huge": ([g, "--seed", str(2**70)], "seed must be an integer between 0 and 2147483647 (CLI --seed)"),
        "seed_negative": ([g, "--seed", "-1"], "--seed"),
    }


# each process costs ~2.5 s of CPU (importing torch), so the subprocess runs cover one case of each
# kind and the in-process runs of lvss.cli.main cover all of them, with and without an existing output
SUBPROCESS = ["missing", "not_an_image", "truncated", "zero_by_zero", "bomb", "paths_negative", "seed_huge"]
IN_PROCESS = SUBPROCESS + ["one_by_one", "paths_zero", "empty_file", "directory", "paths_not_a_number",
                           "work_size_too_small", "precision_too_large", "levels_too_many", "seed_negative"]


def _check_failure(code: int, stdout: str, stderr: str, expect: str, folder: Path, out: Path,
                   existing: bool) -> None:
    assert code == 2, (code, stderr)
    err = stderr.strip()
    assert "Traceback" not in stderr
    assert len(err.splitlines()) == 1, err
    assert "error" in err.lower()
    assert expect.lower() in err.lower(), err
    assert stdout == ""
    if existing:
        assert out.read_bytes() == OLD
        assert [p.name for p in folder.iterdir()] == ["result.svg"]  # no temporary file either
    else:
        assert list(folder.iterdir()) == []  # no output, no temporary file


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    """Every SUBPROCESS case as its own process, half of them over an existing output file."""
    d = tmp_path_factory.mktemp("cli_bad")
    cases = _make_inputs(d)

    def one(i_name):
        i, name = i_name
        args = cases[name][0]
        folder = d / f"out_{name}"
        folder.mkdir()
        out = folder / "result.svg"
        existing = i % 2 == 1
        if existing:
            out.write_bytes(OLD)
        r = lvss("vectorize", args[0], "-o", str(out), *args[1:], timeout=120)
        return name, (r, folder, out, existing)

    with ThreadPoolExecutor(max_workers=2) as ex:
        results = dict(ex.map(one, enumerate(SUBPROCESS)))
    return cases, results


@pytest.mark.parametrize("name", SUBPROCESS)
def test_bad_input_subprocess(bad_runs, name):
    cases, results = bad_runs
    r, folder, out, existing = results[name]
    _check_failure(r.returncode, r.stdout, r.stderr, cases[name][1], folder, out, existing)


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.parametrize("name", IN_PROCESS)
def test_bad_input_in_process(tmp_path, capsys, name, existing):
    from lvss.cli import main

    cases = _make_inputs(tmp_path)
    args, expect = cases[name]
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "result.svg"
    if existing:
        out.write_bytes(OLD)
    try:
        code = main(["vectorize", args[0], "-o", str(out), *args[1:]])
    except SystemExit as e:  # argparse usage errors exit from inside the parser
        code = e.code
    cap = capsys.readouterr()
    _check_failure(code, cap.out, cap.err, expect, folder, out, existing)


def test_usage_without_command(capsys):
    from lvss.cli import main

    assert main([]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_missing_output_folder(tmp_path, capsys):
    from lvss.cli import main

    src = tmp_path / "good.png"
    src.write_bytes(disc_png())
    assert main(["vectorize", str(src), "-o", str(tmp_path / "nope" / "out.svg")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "does not exist" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.png"]
