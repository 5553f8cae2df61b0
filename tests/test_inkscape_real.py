"""The Inkscape extension in a real, headless Inkscape, talking to a real ``lvss serve``.

The server runs on loopback with fast settings (small working size, few optimisation steps). The
extension is installed by ``lvss install-inkscape-extension`` into a temporary Inkscape profile
(INKSCAPE_PROFILE_DIR), whose preferences hold the dialog values, because Inkscape's batch action
``<id>.noprefs`` runs an extension with its saved preferences. Inkscape's own Python usually lacks
grpcio, so the extension reaches the server through ``lvss remote`` run by this test's Python
(LVSS_PYTHON). Extension actions exist only when Inkscape starts its GUI, hence ``xvfb-run``.

Set LVSS_TEST_ARTIFACTS=DIR to keep the documents and PNG renderings for a look.
"""
from __future__ import annotations

import base64
import contextlib
import importlib.util
import io
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

REPO = Path(__file__).resolve().parents[1]
INKSCAPE = shutil.which("inkscape")
XVFB_RUN = shutil.which("xvfb-run")
pytestmark = pytest.mark.skipif(
    INKSCAPE is None or XVFB_RUN is None,
    reason="needs Inkscape and xvfb-run (apt-get install inkscape xvfb xauth)",
)

EXTENSION_ACTION = "org.lvss.lvss-vectorize.noprefs"  # Inkscape turns '_' in the id into '-'
LABEL = "{http://www.inkscape.org/namespaces/inkscape}label"
GROUPMODE = "{http://www.inkscape.org/namespaces/inkscape}groupmode"
SVG_PATH = "{http://www.w3.org/2000/svg}path"
# the dialog values the run uses (saved preferences of the extension)
PREFS = {"paths": "16", "levels": "1", "mode": "layered", "seed": "3", "insert_as": "layers",
         "original": "hide", "timeout": "300"}
# `lvss serve` with fast settings: every job runs the real pipeline at a 64 px working size
# with 10 + 10 optimisation steps
FAST_SERVER = r"""
import argparse, dataclasses, sys
from server import cli
from lvss.pipeline import run

def fast_job(image, cfg, progress, cancel):
    cfg = dataclasses.replace(cfg, work_size=min(cfg.work_size, 64),
                              optimize=dataclasses.replace(cfg.optimize, structure_iters=10, refine_iters=10))
    return run(image, cfg, progress, cancel)

parser = argparse.ArgumentParser(prog="lvss")
cli.add_parser(parser.add_subparsers(dest="command"))
sys.exit(cli.run(parser.parse_args(["serve", *sys.argv[1:]]), fast_job))
"""


def _import_inkex():
    base = "/usr/share/inkscape/extensions"
    if not os.path.isdir(os.path.join(base, "inkex")):
        pytest.skip("Inkscape's inkex is not installed")
    try:
        import cssselect  # noqa: F401
    except ImportError:
        deb = "/usr/lib/python3/dist-packages/cssselect"
        if not os.path.isfile(os.path.join(deb, "__init__.py")):
            pytest.skip("inkex needs cssselect (pip install cssselect)")
        spec = importlib.util.spec_from_file_location("cssselect", os.path.join(deb, "__init__.py"),
                                                      submodule_search_locations=[deb])
        module = importlib.util.module_from_spec(spec)
        sys.modules["cssselect"] = module
        spec.loader.exec_module(module)
    if base not in sys.path:
        sys.path.insert(0, base)
    import inkex

    return inkex


@pytest.fixture(scope="module", autouse=True)
def inkscape_python_ready():
    """Fail at once, with the reason, when Inkscape's own Python (the system python3) cannot start an
    extension: a GUI Inkscape would otherwise wait forever on inkex's error dialog."""
    probe = subprocess.run(
        ["/usr/bin/python3", "-c", "import lxml, cssselect, numpy, inkex"], capture_output=True, text=True,
        timeout=60, env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": "/usr/share/inkscape/extensions"},
    ) if os.path.exists("/usr/bin/python3") else None
    if probe is None or probe.returncode != 0:
        reason = "no /usr/bin/python3" if probe is None else probe.stderr.strip().splitlines()[-1]
        pytest.fail("Inkscape's Python cannot run extensions (" + reason + "); install Debian's "
                    "python3-lxml python3-cssselect python3-numpy (see README, Inkscape section)")


def _env(add_repo: bool = True, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LVSS_")}
    if add_repo:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


@contextlib.contextmanager
def _serving(*args: str):
    """A real server on a free loopback port (extra ``args`` for ``lvss serve``); yields "127.0.0.1:PORT"."""
    proc = subprocess.Popen(
        [sys.executable, "-c", FAST_SERVER, "--host", "127.0.0.1", "--port", "0", "--device", "cpu",
         "--log-level", "WARNING", *args],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                line = proc.stdout.readline()
                if "listening on" in line:
                    break
        if "listening on" not in line:
            proc.kill()
            pytest.fail(f"lvss serve did not start: {proc.stderr.read()[-2000:]}")
        address = line.split("listening on", 1)[1].split()[0]
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture(scope="module")
def server():
    """A real server on a free loopback port; yields "127.0.0.1:PORT"."""
    pytest.importorskip("grpc")
    with _serving() as address:
        yield address


def _bitmap() -> bytes:
    """A 64×48 opaque photograph (skimage's cat), PNG."""
    from skimage import data

    im = PILImage.fromarray(data.chelsea()).resize((64, 48), PILImage.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _document(png: bytes) -> str:
    """An Inkscape document with a non-zero viewBox origin, the bitmap rotated inside nested
    transformed layers, and objects around it."""
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    return f"""<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" width="240" height="180" viewBox="-20 -10 240 180">
  <rect id="paper" x="-20" y="-10" width="240" height="180" fill="#ffffff"/>
  <g id="layer1" inkscape:groupmode="layer" inkscape:label="Layer 1" transform="translate(10 5)">
    <rect id="below" x="0" y="0" width="20" height="20" fill="#00ff00"/>
    <g id="holder" inkscape:groupmode="layer" inkscape:label="Photos" transform="scale(1.25)">
      <image id="photo" inkscape:label="photo.png" x="10" y="20" width="128" height="96"
             preserveAspectRatio="none" transform="rotate(12 74 68)" xlink:href="{uri}"/>
      <rect id="above" x="150" y="0" width="10" height="10" fill="#0000ff"/>
    </g>
  </g>
</svg>"""


def _direct(png: bytes, server: str):
    """The request the extension makes with PREFS, straight to the server: the same options, seed and
    quality (the extension's default, fast), so the same result. (Layer names come from the finished
    result, so a request at another quality may name a layer differently.)"""
    from lvss.client import Client

    with Client(server) as client:
        return client.vectorize(png, paths=int(PREFS["paths"]), mode=PREFS["mode"], levels=int(PREFS["levels"]),
                                seed=int(PREFS["seed"]), timeout=300, extra={"quality": "fast"})


def _install_profile(tmp: Path, monkeypatch, **more_prefs: str) -> Path:
    """A fresh Inkscape profile with the extension installed and its preferences set (PREFS, and
    ``more_prefs``)."""
    from lvss.integrations import inkscape as installer

    profile = tmp / "profile"
    profile.mkdir()
    prefs = " ".join(f'org.lvss.lvss_vectorize.{k}="{v}"' for k, v in {**PREFS, **more_prefs}.items())
    (profile / "preferences.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        '<inkscape xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd" '
        'xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" version="1">\n'
        f'  <group id="extensions" {prefs} />\n</inkscape>\n'
    )
    # the real installer, asking the real Inkscape where its profile is
    monkeypatch.setenv("INKSCAPE_PROFILE_DIR", str(profile))
    installed = installer.install(inkscape=INKSCAPE)
    assert installed == profile / "extensions" / "lvss"
    assert (installed / "lvss_vectorize.inx").is_file()
    return profile


def _run_session(cmd, timeout: float, **kw) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own process group; on timeout kill the group (xvfb-run, Xvfb and
    Inkscape), then fail: a GUI Inkscape that hit an error waits forever on its message dialog."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"Inkscape did not finish within {timeout:g} s (an error dialog may be open):\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _vectorize_in_inkscape(doc_in: Path, doc_out: Path, profile: Path, server: str, cwd: Path, **env) -> str:
    """Run the installed extension on the image "photo" of ``doc_in`` in a real Inkscape (its saved
    preferences in ``profile``, the server ``server``) and export the document to ``doc_out``; returns
    Inkscape's log. lvss is found through the installer's record (lvss_vectorize.json), not PYTHONPATH."""
    actions = f"select-by-id:photo;{EXTENSION_ACTION};export-filename:{doc_out};export-do"
    proc = _run_session(
        [XVFB_RUN, "-a", INKSCAPE, "--with-gui", "--batch-process", f"--actions={actions}", str(doc_in)],
        timeout=300, cwd=cwd,
        env=_env(add_repo=False, INKSCAPE_PROFILE_DIR=str(profile), LVSS_PYTHON=sys.executable, LVSS_SERVER=server,
                 **env),
    )
    log = f"inkscape exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert doc_out.is_file(), log
    return log


def _export_png(svg: Path, png: Path, profile: Path) -> np.ndarray:
    """Inkscape's own rendering of ``svg`` (the page, 96 dpi, on white), (H, W, 3) float in [0, 1]."""
    proc = subprocess.run([INKSCAPE, str(svg), "--export-type=png", f"--export-filename={png}",
                           "--export-area-page", "--export-background=#ffffff", "--export-background-opacity=1"],
                          capture_output=True, text=True, timeout=120, env=_env(INKSCAPE_PROFILE_DIR=str(profile)))
    assert png.is_file(), proc.stderr[-2000:]
    return np.asarray(PILImage.open(png).convert("RGB"), dtype=np.float32) / 255.0


def test_vectorize_in_real_inkscape(server, tmp_path, monkeypatch):
    inkex = _import_inkex()

    png = _bitmap()
    doc_in, doc_out = tmp_path / "in.svg", tmp_path / "out.svg"
    doc_in.write_text(_document(png))
    profile = _install_profile(tmp_path, monkeypatch)
    # the same request straight to the server (same options and seed, so the same result), run
    # while Inkscape starts
    pool = ThreadPoolExecutor(1)
    direct = pool.submit(_direct, png, server)

    log = _vectorize_in_inkscape(doc_in, doc_out, profile, server, tmp_path)

    svg = inkex.load_svg(str(doc_out)).getroot()
    # the result took over the bitmap's id, so that Inkscape selects it after the run (the bitmap got
    # a fresh one); test_result_selected_named_and_messages_in_real_inkscape checks the selection
    image = svg.getElementById("photo-bitmap")
    assert image is not None, log
    group = image.getnext()
    assert group is not None and group.get(LABEL) == "lvss: photo.png", log
    assert group.get("id") == "photo"
    assert group.get(GROUPMODE) == "layer"
    assert "display:none" in (image.get("style") or "").replace(" ", "")
    assert svg.getElementById("above").getparent() is group.getparent()

    expected = direct.result()
    pool.shutdown()
    layers = list(group)
    # the backdrop (filling what the paths leave uncovered) is the bottom layer, then the server's
    assert layers[0].get(LABEL) == "Backdrop" and len(layers[0].findall(f".//{SVG_PATH}")) == 1
    layers = layers[1:]
    assert [g.get(LABEL) for g in layers] == [info.label for info in expected.layers]
    assert [len(g.findall(f".//{SVG_PATH}")) for g in layers] == [info.paths for info in expected.layers]
    assert sum(info.paths for info in expected.layers) > 0
    assert all(g.get(GROUPMODE) == "layer" for g in layers)

    # the result covers the bitmap: same bounding box in document units, within 1 px
    bb_image = image.bounding_box(image.getparent().composed_transform())
    bb_result = group.bounding_box(group.getparent().composed_transform())
    for edge in ("left", "top", "right", "bottom"):
        assert abs(getattr(bb_image, edge) - getattr(bb_result, edge)) <= 1.0, (edge, bb_image, bb_result)

    # and looks like it: render both documents (the output's bitmap is hidden)
    before = _export_png(doc_in, tmp_path / "in.png", profile)
    after = _export_png(doc_out, tmp_path / "out.png", profile)
    assert before.shape == after.shape
    keep = os.environ.get("LVSS_TEST_ARTIFACTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        for name in ("in.svg", "out.svg", "in.png", "out.png"):
            shutil.copy(tmp_path / name, os.path.join(keep, name))
    changed = np.abs(before - after).mean(axis=2)
    # where the bitmap was drawn, the vectors stand in for it: close in colour on average
    scale = before.shape[1] / 240.0
    tf = image.composed_transform()
    xs, ys = np.meshgrid(np.arange(changed.shape[1]), np.arange(changed.shape[0]))
    inv = -tf
    a, b, c, d, e, f = inv.to_hexad()
    ux = a * (xs / scale - 20) + c * (ys / scale - 10) + e
    uy = b * (xs / scale - 20) + d * (ys / scale - 10) + f
    region = (ux > 12) & (ux < 136) & (uy > 22) & (uy < 114)  # inside the image, 2 px margin
    err_inside = float(changed[region].mean())
    # the same comparison against the bitmap shifted by 20 user units shows what misplacement costs
    shifted = np.roll(after, int(round(20 * scale * 1.25)), axis=1)
    err_shifted = float(np.abs(before - shifted).mean(axis=2)[region].mean())
    assert err_inside < 0.12, err_inside
    assert err_inside < 0.6 * err_shifted, (err_inside, err_shifted)
    # outside the image nothing changed
    outside = ~((ux > -2) & (ux < 150) & (uy > 8) & (uy < 128))
    assert float(changed[outside].mean()) < 0.01


def test_tls_server_with_a_token_in_real_inkscape(tmp_path, monkeypatch):
    """A server started with TLS and a token: the Server tab's TLS certificate and token file (saved
    preferences) reach it through the installed extension, and the result is inserted."""
    pytest.importorskip("grpc")
    inkex = _import_inkex()
    from testdata import self_signed_cert

    made = self_signed_cert(tmp_path)
    if made is None:
        pytest.skip("openssl is needed to make a test certificate")
    (cert, key), token = made, tmp_path / "token"
    token.write_text("inkscape-tls-token-0123456789abcdef\n")
    doc_in, doc_out = tmp_path / "in.svg", tmp_path / "out.svg"
    doc_in.write_text(_document(_bitmap()))
    profile = _install_profile(tmp_path, monkeypatch, tls_ca=str(cert), token_file=str(token), fill="linear")
    with _serving("--tls-cert", str(cert), "--tls-key", str(key), "--token-file", str(token)) as address:
        log = _vectorize_in_inkscape(doc_in, doc_out, profile, address, tmp_path)
    svg = inkex.load_svg(str(doc_out)).getroot()
    group = svg.getElementById("photo")
    assert group is not None and group.get(LABEL) == "lvss: photo.png", log
    layers = list(group)
    assert layers[0].get(LABEL) == "Backdrop" and len(layers) >= 2, log
    assert len(svg.findall(f".//{{http://www.w3.org/2000/svg}}linearGradient")) > 0, log


def test_linked_image_beside_the_saved_document(server, tmp_path, monkeypatch):
    """A bitmap linked by a relative path, next to the saved document: Inkscape hands the extension a
    temporary copy elsewhere (here a temporary folder holding a decoy of the same name), and the link
    must be read beside the saved document."""
    inkex = _import_inkex()
    png = _bitmap()
    docs = tmp_path / "drawings"
    docs.mkdir()
    (docs / "photo.png").write_bytes(png)
    temp = tmp_path / "tmpdir"
    temp.mkdir()
    decoy = io.BytesIO()
    PILImage.new("RGB", (10, 30), (0, 255, 0)).save(decoy, "PNG")
    (temp / "photo.png").write_bytes(decoy.getvalue())
    doc_in, doc_out = docs / "art.svg", tmp_path / "out.svg"
    doc_in.write_text(f"""<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" width="200" height="150" viewBox="0 0 200 150">
  <g id="layer1" inkscape:groupmode="layer" inkscape:label="Layer 1">
    <image id="photo" x="20" y="10" width="128" height="96" preserveAspectRatio="none" xlink:href="photo.png"/>
  </g>
</svg>""")
    profile = _install_profile(tmp_path, monkeypatch)
    pool = ThreadPoolExecutor(1)
    direct = pool.submit(_direct, png, server)
    # started elsewhere than the document's folder
    log = _vectorize_in_inkscape(doc_in, doc_out, profile, server, tmp_path, TMPDIR=str(temp))
    svg = inkex.load_svg(str(doc_out)).getroot()
    image = svg.getElementById("photo-bitmap")  # the result took the id "photo" (selected afterwards)
    group = image.getnext()
    assert group is not None and group.get(LABEL) == "lvss: photo.png", log
    expected = direct.result()
    pool.shutdown()
    layers = list(group)[1:]  # after the backdrop
    assert [g.get(LABEL) for g in layers] == [info.label for info in expected.layers], log
    assert [len(g.findall(f".//{SVG_PATH}")) for g in layers] == [info.paths for info in expected.layers]
    # the pixel grid of the real 64x48 photo lands on the image's rectangle
    tf = layers[0].transform
    assert tuple(tf.apply_to_point((0, 0))) == pytest.approx((20, 10))
    assert tuple(tf.apply_to_point((64, 48))) == pytest.approx((148, 106))


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="Debian's Python (Inkscape's) is absent")
def test_errors_under_inkscapes_python(tmp_path):
    """The extension as Inkscape runs it (its Python, its inkex, DOCUMENT_PATH): a failure prints
    advice, exits non-zero and writes no document, so Inkscape keeps the drawing unchanged.
    (A GUI Inkscape would show the advice in a dialog, which would block a headless run.)"""
    doc = tmp_path / "in.svg"
    doc.write_text(_document(_bitmap()))
    port = _closed_port()
    script = REPO / "inkscape_ext" / "lvss_vectorize.py"
    base = {k: v for k, v in os.environ.items() if not k.startswith("LVSS_") and k != "PYTHONPATH"}
    base.update(DOCUMENT_PATH=str(doc), LVSS_SERVER=f"127.0.0.1:{port}",
                PYTHONPATH="/usr/share/inkscape/extensions")
    no_grpc = subprocess.run(["/usr/bin/python3", "-c", "import grpc"], capture_output=True).returncode != 0

    def run(env):
        return subprocess.run(["/usr/bin/python3", str(script), "--id=photo", str(doc)], capture_output=True,
                              text=True, timeout=120, env=env, cwd=tmp_path)

    if no_grpc:  # no grpc and no Python with lvss: say how to set one up
        proc = run(base)
        assert proc.returncode != 0 and proc.stdout == ""
        assert "cannot import grpc" in proc.stderr and "LVSS_PYTHON" in proc.stderr, proc.stderr
        assert "lvss install-inkscape-extension" in proc.stderr

    # through `lvss remote` with this test's Python, to a server that is not running
    env = dict(base, LVSS_PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join(["/usr/share/inkscape/extensions", str(REPO)]))
    proc = run(env)
    assert proc.returncode != 0 and proc.stdout == "", proc.stderr
    assert f"Could not reach the lvss server at 127.0.0.1:{port}" in proc.stderr, proc.stderr
    assert f"lvss serve --host 127.0.0.1 --port {port}" in proc.stderr


@pytest.mark.skipif(INKSCAPE is None, reason="needs Inkscape")
def test_inkscape_draws_lvss_gradient_fills_as_resvg_and_lvss_do(tmp_path):
    """An lvss SVG with linear and radial gradient fills (stop opacities, a focal point) looks the
    same in Inkscape as in resvg and in lvss's own rasterizer."""
    import torch

    from lvss.render import render
    from lvss.scene import Layer, LinearGradient, RadialGradient, Scene, circle_path, polygon_to_path
    from lvss.svg import scene_to_svg
    from lvss.testing import resvg_render

    back = polygon_to_path(torch.tensor([[0.0, 0.0], [96.0, 0.0], [96.0, 64.0], [0.0, 64.0]]))
    back.fill = LinearGradient([10.0, 5.0], [80.0, 60.0], [0.0, 0.4, 1.0],
                               [[1.0, 0.6, 0.1, 1.0], [0.1, 0.5, 0.9, 1.0], [0.1, 0.1, 0.3, 1.0]])
    disc = circle_path(60.0, 30.0, 22.0, 8)
    disc.fill = RadialGradient([60.0, 30.0], 22.0, [0.0, 1.0], [[1.0, 1.0, 0.8, 1.0], [0.8, 0.1, 0.1, 0.6]],
                               focal=[52.0, 24.0])
    sc = Scene(96, 64, [Layer("back", [back]), Layer("front", [disc])])
    svg = tmp_path / "g.svg"
    svg.write_text(scene_to_svg(sc, precision=3))
    ink = _export_png(svg, tmp_path / "g.png", tmp_path / "profile")
    ref = resvg_render(svg.read_text(), 96, 64)
    ours = render(sc, background=(1.0, 1.0, 1.0)).numpy()

    def psnr(a, b):
        return 10 * np.log10(1.0 / max(float(((a - b) ** 2).mean()), 1e-10))

    assert ink.shape == (64, 96, 3)
    assert psnr(ink, ref) >= 35.0 and psnr(ink, ours) >= 35.0
