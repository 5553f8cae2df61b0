"""The Inkscape extension ships inside the wheel: built from a copy of the source tree, installed
(not editable) into a fresh virtual environment, ``lvss install-inkscape-extension`` run from an
unrelated folder installs the same files as the repository's ``inkscape_ext/``.

Kept fast: the wheel is built without build isolation and installed without dependencies (the
installer needs none of them).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXT_DIR = REPO / "inkscape_ext"
SKIP = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "bench",
                              "tests", ".venv", "out")


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """(python, lvss script) of a fresh virtual environment holding only the built lvss wheel."""
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=SKIP)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
          str(src)], env=env, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("lvss-*.whl")
    venv_dir = tmp / "venv"
    bindir = venv_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv_dir)], env=env)
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)]
    proc = subprocess.run(install, capture_output=True, text=True, timeout=600, env=env)
    if proc.returncode != 0 and "no such option" in proc.stderr:  # pip older than 22.3: the venv's own pip
        _run([sys.executable, "-m", "venv", "--clear", str(venv_dir)], env=env)
        _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], env=env)
    else:
        assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.rmtree(src)  # nothing may come from the source tree any more
    return python, bindir / "lvss", env, tmp


def test_wheel_holds_the_extension(venv):
    python, _, env, tmp = venv
    where = _run([str(python), "-c", "import lvss, os; print(os.path.dirname(lvss.__file__))"],
                 env=env, cwd=tmp).stdout.strip()
    assert Path(where).is_relative_to(tmp / "venv"), where
    shipped = Path(where) / "inkscape_ext"
    names = sorted(p.name for p in shipped.iterdir() if p.is_file())
    from lvss.integrations.inkscape import EXTENSION_FILES

    assert names == sorted(EXTENSION_FILES)


def test_install_from_any_folder(venv, tmp_path):
    _, lvss, env, _ = venv
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    dest = tmp_path / "extensions"
    proc = _run([str(lvss), "install-inkscape-extension", "--dest", str(dest)], env=env, cwd=elsewhere)
    assert f"Installed the lvss extension in {dest / 'lvss'}" in proc.stdout
    from lvss.integrations.inkscape import EXTENSION_FILES

    for name in EXTENSION_FILES:
        if name != "lvss_vectorize.inx":
            assert (dest / "lvss" / name).read_bytes() == (EXT_DIR / name).read_bytes(), name
    # the installed dialog names the server an empty field means here (nothing recorded: the default)
    general = 'Empty: $LVSS_SERVER if set, else the address recorded at installation, else 127.0.0.1:50051:'
    inx = (EXT_DIR / "lvss_vectorize.inx").read_text()
    assert general in inx
    assert (dest / "lvss" / "lvss_vectorize.inx").read_text() == inx.replace(
        general, "Empty: $LVSS_SERVER if set, else 127.0.0.1:50051:")
    # the shared progress words and messages, for the extension (which cannot import lvss)
    assert (dest / "lvss" / "_lvss" / "messages.py").read_bytes() == (EXT_DIR.parent / "lvss" / "messages.py").read_bytes()
    assert (dest / "lvss" / "_lvss" / "ext_client.py").read_bytes() == (EXT_DIR.parent / "lvss" / "ext_client.py").read_bytes()
    config = json.loads((dest / "lvss" / "lvss_vectorize.json").read_text())
    # the Python recorded is the environment's own; an installed lvss needs no source path
    assert Path(config["python"]).parent == Path(lvss).parent
    assert "pythonpath" not in config


@pytest.mark.skipif(shutil.which("inkscape") is None, reason="needs Inkscape")
def test_install_into_inkscapes_profile(venv, tmp_path):
    _, lvss, env, _ = venv
    profile = tmp_path / "profile"
    proc = _run([str(lvss), "install-inkscape-extension"], env=dict(env, INKSCAPE_PROFILE_DIR=str(profile)),
                cwd=tmp_path)
    assert (profile / "extensions" / "lvss" / "lvss_vectorize.inx").is_file(), proc.stdout


def test_wheel_holds_the_blender_extension(venv, tmp_path):
    """`lvss build-blender-extension` works from an installed wheel, away from any source tree."""
    python, lvss, env, _ = venv
    where = _run([str(python), "-c", "import lvss.integrations.blender as b; print(b.extension_source())"],
                 env=env, cwd=tmp_path).stdout.strip()
    assert (Path(where) / "blender_manifest.toml").is_file() and (Path(where) / "__init__.py").is_file()
    assert Path(where).parent.name == "lvss", where
    proc = subprocess.run([str(lvss), "build-blender-extension", "-o", str(tmp_path), "--no-wheels"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(tmp_path.glob("*.zip")), proc.stdout
