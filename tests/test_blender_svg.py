"""The parts of the Blender extension that run without Blender: the SVG reader (standard library
only, as Blender's Python has no lxml), the server client wrapper, and
``lvss build-blender-extension``."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from blender_modules import load_blender_module  # noqa: E402
OPENMOJI = REPO / "tests" / "data" / "openmoji"  # bundled test images (see its NOTICE.md)


def _load(name: str):
    return load_blender_module(name, "lvss_blender")


svg = _load("svg_layers")
remote = _load("remote")

HEAD = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="100" viewBox="0 0 100 100">')


def doc(body: str, head: str = HEAD) -> "svg.Drawing":
    return svg.parse_svg(head + body + "</svg>")


def control_points(spline) -> np.ndarray:
    """(3n, 2): anchor i, its right handle, the next anchor's left handle (SVG order)."""
    n = len(spline.anchors)
    seq = []
    for i in range(n):
        seq += [spline.anchors[i], spline.handles_right[i], spline.handles_left[(i + 1) % n]]
    return np.asarray(seq, dtype=np.float64)


def bezier(p0, c1, c2, p1, t):
    p0, c1, c2, p1 = map(np.asarray, (p0, c1, c2, p1))
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t ** 2 * c2 + t ** 3 * p1


# ---------------------------------------------------------------------------------------------
# the SVG reader
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["1F339", "1F344", "1F3A8", "1F353", "2615"])
def test_reader_agrees_with_lvss_reader_on_openmoji(name):
    """Control points equal those lvss's own reader (lxml based) finds, transforms included."""
    path = OPENMOJI / f"{name}.svg"
    if not path.exists():
        pytest.fail(f"the bundled OpenMoji test image is missing ({path})")
    from lvss.svg import read_svg

    d = svg.parse_svg(path.read_bytes(), name=path.name)
    shapes = [[control_points(sp) for sp in sh.splines] for lay in d.layers for sh in lay.shapes]
    ref = [p.points.detach().double().numpy() for lay in read_svg(path, 72, 72).layers for p in lay.paths]
    # lvss's reader gives one path per element (several subpaths joined by zero-width bridges, holes
    # redrawn by path operations, whose split curves keep their control points inside the
    # original's hull), so a shape of one spline compares point for point, one of several by extent
    assert len(shapes) == len(ref) > 0
    for mine, b in zip(shapes, ref):
        if len(mine) == 1:
            np.testing.assert_allclose(mine[0], b, atol=1e-3)
        else:
            allp = np.concatenate(mine, 0)
            assert (b.min(0) >= allp.min(0) - 1e-3).all() and (b.max(0) <= allp.max(0) + 1e-3).all()
    assert d.layers[0].label == "Unlayered" and d.skipped  # strokes-only paths are counted as skipped


def test_lvss_svg_roundtrip_exact():
    """What lvss writes (cubic paths, fills, fill-opacity, layers) comes back point for point."""
    import torch

    from lvss.scene import Layer, Path as LPath, Scene
    from lvss.svg import scene_to_svg

    g = torch.Generator().manual_seed(0)
    layers = []
    for k in range(3):
        paths = [LPath(torch.rand(12, 2, generator=g) * 200, torch.tensor([0.2 * k, 0.5, 0.9, 1.0 - 0.3 * (k == 2)]))
                 for _ in range(2)]
        layers.append(Layer(f"Layer {k} <&>", paths))
    text = scene_to_svg(Scene(200, 150, layers), precision=3, clean=False)   # random paths cross: as they are
    d = svg.parse_svg(text)
    assert [lay.label for lay in d.layers] == ["Layer 0 <&>", "Layer 1 <&>", "Layer 2 <&>"]
    assert (d.width, d.height) == (200, 150)
    for lay, src in zip(d.layers, layers):
        for shape, p in zip(lay.shapes, src.paths):
            np.testing.assert_allclose(control_points(shape.splines[0]), p.points.double().numpy(), atol=6e-4)
            assert shape.hex == "#" + "".join(f"{int(round(float(c) * 255)):02x}" for c in p.color[:3])
            assert shape.opacity == pytest.approx(float(p.color[3]), abs=1e-3)


def test_path_commands_relative_and_shorthand():
    d = doc('<path id="p" d="m10 10 h20 v20 H10 Z m40 0 c0 -10 20 -10 20 0 s-20 10 -20 0 z"/>')
    a, b = d.layers[0].shapes[0].splines
    assert a.anchors == [(10, 10), (30, 10), (30, 30), (10, 30)]
    # straight segments: handles at a third and two thirds
    assert a.handles_right[0] == pytest.approx((10 + 20 / 3, 10)) and a.handles_left[1] == pytest.approx((10 + 40 / 3, 10))
    # relative moveto after Z starts from the closed subpath's start; S reflects the last handle
    assert b.anchors == [(50, 10), (70, 10)]
    assert b.handles_right[1] == pytest.approx((70, 20)) and b.handles_left[0] == pytest.approx((50, 20))


def test_quadratic_is_exact_and_t_reflects():
    d = doc('<path d="M0 0 Q 10 20 20 0 T 40 0 Z"/>')
    sp = d.layers[0].shapes[0].splines[0]
    segs = sp.segments()
    for t in (0.25, 0.5, 0.8):
        q = (1 - t) ** 2 * np.array([0, 0]) + 2 * (1 - t) * t * np.array([10, 20]) + t ** 2 * np.array([20, 0])
        np.testing.assert_allclose(bezier(*segs[0], t), q, atol=1e-9)
        q2 = (1 - t) ** 2 * np.array([20, 0]) + 2 * (1 - t) * t * np.array([30, -20]) + t ** 2 * np.array([40, 0])
        np.testing.assert_allclose(bezier(*segs[1], t), q2, atol=1e-9)


@pytest.mark.parametrize("large,sweep", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_arcs_stay_on_their_ellipse(large, sweep):
    phi = math.radians(30)

    def on_ellipse(t):  # a point of the ellipse centred at (50, 50), radii 30 and 20, turned 30 degrees
        x, y = 30 * math.cos(math.radians(t)), 20 * math.sin(math.radians(t))
        return (50 + x * math.cos(phi) - y * math.sin(phi), 50 + x * math.sin(phi) + y * math.cos(phi))

    (x0, y0), (x1, y1) = on_ellipse(200), on_ellipse(330)
    d = doc(f'<path d="M{x0:.9f} {y0:.9f} A 30 20 30 {large} {sweep} {x1:.9f} {y1:.9f} L{x1:.9f} 95 Z"/>')
    sp = d.layers[0].shapes[0].splines[0]
    arc = sp.segments()[:-2]  # all but the line and the closing segment
    assert 1 <= len(arc) <= 4
    # every point lies on an ellipse with those radii and rotation (one of the two through the ends)
    pts = np.array([bezier(*s, t) for s in arc for t in np.linspace(0, 1, 9)])
    rot = np.array([[math.cos(phi), math.sin(phi)], [-math.sin(phi), math.cos(phi)]])

    def residual(c):
        q = (pts - c) @ rot.T
        return (q[:, 0] / 30) ** 2 + (q[:, 1] / 20) ** 2 - 1

    from scipy.optimize import least_squares

    fit = least_squares(residual, pts.mean(0))
    assert np.abs(residual(fit.x)).max() < 2e-3  # cubic arcs of <= 90 degrees: error below 0.1 %
    np.testing.assert_allclose(arc[0][0], (x0, y0), atol=1e-8)
    np.testing.assert_allclose(arc[-1][3], (x1, y1), atol=1e-8)
    def angle(a, b):  # signed angle from a to b seen from the centre, in (-pi, pi]
        u, w = np.asarray(a) - fit.x, np.asarray(b) - fit.x
        return math.atan2(u[0] * w[1] - u[1] * w[0], u @ w)

    turns = [angle(s[0], s[3]) for s in arc]
    assert all(t > 0 for t in turns) or all(t < 0 for t in turns)
    assert (turns[0] > 0) == bool(sweep)  # sweep 1: increasing angles (clockwise on screen)
    turn = abs(sum(turns))
    assert (turn > math.pi) == bool(large)  # the large-arc flag picks the long way round


def test_transforms_viewbox_and_shapes():
    head = ('<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" viewBox="10 0 100 50" '
            'preserveAspectRatio="xMidYMid meet">')
    d = doc('<g transform="translate(10 5) rotate(90)"><rect x="0" y="0" width="10" height="4"/></g>'
            '<circle cx="50" cy="25" r="5" transform="matrix(1 0 0 1 0 0) scale(1)"/>'
            '<polygon points="10,0 20,0 20,10"/>', head)
    assert (d.width, d.height) == (200, 100)
    rect, circle, tri = d.layers[0].shapes
    # rotate(90) then translate(10, 5), then the viewBox: x' = 2 (x - 10), y' = 2 y
    got = np.asarray(rect.splines[0].anchors)
    expected = np.array([[10, 5], [10, 15], [6, 15], [6, 5]], dtype=float)
    np.testing.assert_allclose(got, 2 * (expected - [10, 0]), atol=1e-9)
    xs = [p[0] for p in circle.splines[0].anchors]
    assert min(xs) == pytest.approx(2 * 35) and max(xs) == pytest.approx(2 * 45)
    assert len(tri.splines[0].anchors) == 3  # closed by a straight segment back to the start


def test_preserve_aspect_ratio_centres_the_viewbox():
    head = '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" viewBox="0 0 50 50">'
    d = doc('<rect width="50" height="50"/>', head)
    xs = [p[0] for p in d.layers[0].shapes[0].splines[0].anchors]
    assert (min(xs), max(xs)) == (pytest.approx(50), pytest.approx(150))


def test_fills_colours_and_opacity():
    d = doc('<g fill="#0f0" style="fill-opacity:50%" opacity="0.5">'
            '<rect id="a" width="1" height="1"/><rect id="b" width="1" height="1" style="fill:rgb(255, 0, 0)"/>'
            '<rect id="c" width="1" height="1" fill="currentColor" color="hsl(240, 100%, 50%)"/>'
            '<rect id="d" width="1" height="1" fill="url(#grad)"/><rect id="e" width="1" height="1" fill="none"/>'
            '<rect id="f" width="1" height="1" fill="rebeccapurple" fill-opacity="1"/>'
            '<rect id="g" width="1" height="1" fill="#11223380"/></g>'
            '<defs><linearGradient id="grad"><stop offset="0" stop-color="#000"/>'
            '<stop offset="1" style="stop-color:#ffffff"/></linearGradient></defs>')
    shapes = {s.id: s for s in d.layers[0].shapes}
    assert set(shapes) == {"a", "b", "c", "d", "f", "g"}
    assert shapes["a"].hex == "#00ff00" and shapes["a"].opacity == pytest.approx(0.25)
    assert shapes["b"].hex == "#ff0000"
    assert shapes["c"].hex == "#0000ff"
    assert shapes["d"].hex == "#808080"  # the mean of the gradient's stops (the viewport colour)
    # a gradient of its own: objectBoundingBox by default, black on the left, white on the right
    assert shapes["d"].gradient.kind == "linear" and shapes["d"].opacity == pytest.approx(0.25)
    assert shapes["d"].gradient.color_at((0.0, 0.5)) == pytest.approx((0, 0, 0, 1))
    assert shapes["d"].gradient.color_at((0.75, 0.5)) == pytest.approx((0.75, 0.75, 0.75, 1))
    assert shapes["f"].hex == "#663399" and shapes["f"].opacity == pytest.approx(0.5)
    assert shapes["g"].opacity == pytest.approx(0.25 * 128 / 255)
    assert any("without a fill" in k for k in d.skipped) and not any("gradient" in k for k in d.skipped)


def test_layers_sublayers_hidden_and_use():
    d = doc('<rect id="loose" width="5" height="5"/>'
            '<g inkscape:groupmode="layer" inkscape:label="Back" id="l1"><path id="s" d="M0 0h5v5z"/>'
            '<g inkscape:groupmode="layer" inkscape:label="Inner"><use xlink:href="#s" x="10" id="u"/></g></g>'
            '<g inkscape:groupmode="layer" id="l2" style="display:none"><circle r="3" cx="5" cy="5"/></g>'
            '<text>hello</text><rect width="3" height="3" display="none"/>'
            '<g inkscape:groupmode="layer" inkscape:label="Top"><symbol id="sym"><rect width="2" height="2"/></symbol>'
            '<use href="#sym" x="1" y="1"/><use href="#missing"/></g>')
    labels = [(lay.label, lay.parent, lay.hidden, len(lay.shapes)) for lay in d.layers]
    assert labels == [("Unlayered", None, False, 1), ("Back", None, False, 1), ("Inner", 1, False, 1),
                      ("l2", None, True, 1), ("Top", None, False, 1)]
    used = d.layers[2].shapes[0].splines[0]
    assert used.anchors[0] == (10, 0)
    assert d.layers[4].shapes[0].splines[0].anchors[0] == (1, 1)
    text = " ".join(d.skipped)
    assert "text" in text and "display:none" in text and "<use>" in text


@pytest.mark.parametrize("data,words", [
    (b"", "empty"),
    (b"hello", "not well-formed XML"),
    (b"<html/>", "not SVG"),
    (HEAD.encode() + b"</svg>", "no filled shapes"),
    (HEAD.encode() + b'<path d="M0 0 L5 5" fill="none" stroke="red"/></svg>', "skipped: 1 shapes without a fill"),
    (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg"/>', "entities"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 -1 5"><rect width="1" height="1"/></svg>', "viewBox"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>', "size is unknown"),
    (HEAD.encode() + b'<path d="M0 0 L5 5 X"/></svg>', "unexpected character 'X'"),
    (HEAD.encode() + b'<path d="M0 0 A5 5 0 2 0 5 5"/></svg>', "arc flag"),
    (HEAD.encode() + b'<path d="L0 0 5 5"/></svg>', "must start with M"),
    (HEAD.encode() + b'<rect width="5" height="5" fill="#12345"/></svg>', "cannot read colour"),
    (HEAD.encode() + b'<rect width="5" height="5" transform="spin(3)"/></svg>', "unknown transform"),
    (HEAD.encode() + b'<rect width="5" height="5" transform="rotate(1 2)"/></svg>', "rotate() takes 1 or 3"),
    (HEAD.encode() + b'<rect width="5furlong" height="5"/></svg>', "unknown unit"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="1" height="1" '
     b'opacity="much"/></svg>', "cannot read opacity"),
])
def test_bad_svgs_are_refused_with_a_reason(data, words):
    with pytest.raises(svg.SvgImportError, match=None) as err:
        svg.parse_svg(data, name="drawing.svg")
    assert words in str(err.value) and str(err.value).startswith("drawing.svg")


def test_parse_svg_rejects_non_text():
    with pytest.raises(svg.SvgImportError, match="expected SVG text or bytes"):
        svg.parse_svg(12)


# ---------------------------------------------------------------------------------------------
# the client wrapper
# ---------------------------------------------------------------------------------------------
def test_start_setup_errors_say_what_to_do(tmp_path):
    s = remote.Settings(server="127.0.0.1:1", token_file=str(tmp_path / "missing.txt"))
    with pytest.raises(remote.RemoteError) as err:
        remote.start(b"png", s)
    assert err.value.code == "SETUP" and "Cannot read the token file" in err.value.message
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(remote.RemoteError, match="is empty"):
        remote.start(b"png", remote.Settings(token_file=str(empty)))
    with pytest.raises(remote.RemoteError, match="TLS certificate file"):
        remote.start(b"png", remote.Settings(tls_ca=str(tmp_path / "ca.pem")))
    with pytest.raises(remote.RemoteError, match="No server address"):
        remote.start(b"png", remote.Settings(server=" "))
    with pytest.raises(remote.RemoteError) as err:
        remote.start(b"png", remote.Settings(connection="COMMAND", python=""))
    assert err.value.code == "SETUP" and "Python with lvss" in err.value.message
    with pytest.raises(remote.RemoteError, match="Cannot run the 'Python with lvss'"):
        remote.start(b"png", remote.Settings(connection="COMMAND", python=str(tmp_path / "no-python")))


def test_lvss_remote_fallback_reports_the_server_error(tmp_path):
    """The fallback runs `lvss remote` and turns its one-line error into an actionable message."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    png = (REPO / "lvss" / "data" / "sample.png").read_bytes()
    settings = remote.Settings(server=dead, connection="COMMAND", python=sys.executable, timeout=60)
    job = remote.start(png, settings)
    assert job.wait(300)
    assert job.error is not None and job.error.code == "UNAVAILABLE" and job.svg is None
    text = remote.explain(job.error, settings, "sample")
    assert f"lvss serve --host 127.0.0.1 --port {dead.rsplit(':', 1)[1]}" in text


def test_classify_and_explain():
    """The `lvss remote` error lines, classified by the client both extensions share and worded for
    Blender's one-line report."""
    s = remote.Settings(server="example.org:6000", token_file="/tmp/tok", python="py")

    def classify(stderr, settings=s):
        return remote.client.classify_failure(stderr, settings, remote.HOST)

    err = classify("lvss remote: error: UNAUTHENTICATED: bad token\n")
    assert (err.code, err.message) == ("UNAUTHENTICATED", "bad token")
    assert "Token file" in remote.explain(err, s, "cat") and "/tmp/tok" in remote.explain(err, s, "cat")
    err = classify("Traceback ...\nModuleNotFoundError: No module named 'lvss'\n",
                   remote.Settings(python="/usr/bin/python3"))
    assert err.code == "SETUP" and "/usr/bin/python3" in err.message and remote.PREFS_PATH in err.message
    err = classify("lvss remote: error: INVALID_ARGUMENT: image is 0x0\n")
    assert "refused 'cat': image is 0x0" in remote.explain(err, s, "cat")
    assert "lvss serve --host example.org --port 6000" in remote.explain(remote.RemoteError("UNAVAILABLE", "x"), s, "c")
    # progress comes as JSON events, never from a progress bar on stderr
    cmd = remote.remote_command(s, "in.png", "out.svg")
    assert "--events" in cmd and cmd[cmd.index("--progress") + 1] == "never"


# ---------------------------------------------------------------------------------------------
# lvss build-blender-extension
# ---------------------------------------------------------------------------------------------
def _cli(*args, cwd=REPO):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "lvss.cli", "build-blender-extension", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_build_without_wheels(tmp_path):
    proc = _cli("--no-wheels", "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    target = tmp_path / "out" / "lvss-0.1.0.zip"
    zf = zipfile.ZipFile(target)
    names = set(zf.namelist())
    assert {"blender_manifest.toml", "__init__.py", "svg_layers.py", "scene_build.py", "operators.py", "remote.py",
            "preferences.py", "image_source.py", "_lvss/client.py", "_lvss/_proto/vectorizer_pb2.py"} <= names
    assert not any(n.startswith("wheels/") or "__pycache__" in n for n in names)
    import tomllib

    manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    assert manifest["id"] == "lvss" and manifest["blender_version_min"] == "4.2.0"
    assert "wheels" not in manifest and "platforms" not in manifest and manifest["permissions"]["network"]
    assert "lvss remote" in proc.stdout and "Install from Disk" in proc.stdout
    assert not list((tmp_path / "out").glob("*.part"))


def test_build_with_a_wheel_dir(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in ("grpcio-1.85.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                 "protobuf-7.36.2-cp39-abi3-manylinux2014_x86_64.whl", "typing_extensions-4.16.0-py3-none-any.whl",
                 "grpcio-1.85.3-cp312-cp312-manylinux_2_17_x86_64.whl", "grpcio-1.85.3-cp311-cp311-win_amd64.whl",
                 "protobuf-7.36.2-cp312-abi3-manylinux2014_x86_64.whl"):
        (wheels / name).write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip: only the name matters here
    proc = _cli("--wheel-dir", str(wheels), "--platform", "linux-x64", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    zf = zipfile.ZipFile(tmp_path / "lvss-0.1.0-linux_x64.zip")
    import tomllib

    manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    assert manifest["platforms"] == ["linux-x64"]
    assert sorted(manifest["wheels"]) == sorted(f"./wheels/{n}" for n in (
        "grpcio-1.85.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "protobuf-7.36.2-cp39-abi3-manylinux2014_x86_64.whl", "typing_extensions-4.16.0-py3-none-any.whl"))
    assert all(w[2:] in zf.namelist() for w in manifest["wheels"])


@pytest.mark.parametrize("args,words", [
    (["--no-wheels", "--wheel-dir", "x"], "cannot be combined"),
    (["--platform", "amiga-68k"], "invalid choice"),
    (["--wheel-dir", "/nonexistent/wheels"], "is not a folder"),
    (["--python-version", "three"], "must look like 3.11"),
])
def test_build_bad_arguments_exit_2_with_one_line(tmp_path, args, words):
    proc = _cli(*args, "-o", str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert words in proc.stderr and (len(lines) == 1 or "usage:" in proc.stderr)
    assert not list(tmp_path.glob("*.zip"))


def test_build_wheel_dir_without_grpc(tmp_path):
    (tmp_path / "w").mkdir()
    proc = _cli("--wheel-dir", str(tmp_path / "w"), "--platform", "linux-x64", "-o", str(tmp_path))
    assert proc.returncode == 2 and "has no grpcio or protobuf wheel for linux-x64" in proc.stderr
    assert "pip download" in proc.stderr


def test_build_output_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    proc = _cli("--no-wheels", "-o", str(tmp_path / "f"))
    assert proc.returncode == 2 and "is not a folder" in proc.stderr
