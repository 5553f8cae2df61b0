"""The designer-facing side of the Inkscape extension and the clients: messages in plain words and in one
place (lvss.messages), progress in a designer's words with time left, the server the dialog names and
the run uses, layer names and path ids, and the selection after the run. Unit tests, no display;
tests/test_inkscape_real.py checks the same in a real Inkscape."""
from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
EXT_DIR = REPO / "inkscape_ext"
sys.path.insert(0, str(EXT_DIR))

import lvss_ext_progress as progress  # noqa: E402
import lvss_ext_remote as remote  # noqa: E402
from lvss import messages  # noqa: E402


# -- one table of stage words ---------------------------------------------------------------------
def test_every_pipeline_stage_has_designer_words():
    from lvss.pipeline import _SPAN

    wanted = {"Simplifying", "Finding shapes", "Fitting shapes", "Adding detail", "Polishing", "Writing"}
    for stage in _SPAN:
        assert messages.stage_label(stage) != messages.UNKNOWN_STAGE, stage
    assert {messages.stage_label(s) for s in ("simplify", "segment", "structure", "refine", "polish",
                                              "export")} == wanted
    assert messages.stage_label("a_stage_from_the_future") == "Working"
    assert messages.stage_label(None) == "Working"
    # no developer words: no "step", "loss", "mask", "level"
    for words in messages.STAGE_WORDS.values():
        assert not any(w in words.lower() for w in ("step", "loss", "mask", "level"))


def test_client_progress_and_extension_share_the_table():
    from lvss.client import Progress

    assert Progress("structure", 0.3, "structure step 6/20, loss 0.0056").label == "Fitting shapes"
    assert Progress("polish", 0.9).label == "Polishing"
    assert Progress("queued", 0.0, position=2).label == "Waiting for the server: 2 jobs ahead"
    assert remote.messages().STAGE_WORDS == messages.STAGE_WORDS
    assert remote.stage_label("refine") == "Adding detail"
    assert progress.stage_text({"event": "progress", "stage": "export"}) == "Writing"
    assert progress.is_final({"stage": "export"}) and not progress.is_final({"stage": "refine"})


def test_progress_window_goes_over_inkscapes_working_window():
    main, working, params = (0, 0, 1280, 860), (420, 380, 433, 81), (200, 100, 890, 590)
    assert progress.working_window_area([main, params, working]) == working
    assert progress.working_window_area([main, params]) == main  # the largest: the document window
    assert progress.working_window_area([main]) == main
    assert progress.working_window_area([]) is None


def test_time_left_ticks_between_events():
    clock = progress.Clock(now=100.0)
    assert "estimating" in clock.text(now=101.0)
    clock.update(0.25, now=110.0)  # 10 s for a quarter: about 30 s left
    assert clock.left(now=110.0) == pytest.approx(30.0)
    # no new event: the time left keeps counting down with the clock
    assert clock.left(now=115.0) == pytest.approx(25.0)
    assert clock.text(now=115.0) == "15 s so far · about 25 s left"
    clock.update(0.2, now=116.0)  # a fraction never goes back
    assert clock.fraction == 0.25


# -- the server: one resolver for the run, the dialog's label and the progress window ---------------
def test_resolve_server_order_and_source():
    cfg = {"server": "10.0.0.5:6000"}
    assert remote.resolve_server("a:1", {"LVSS_SERVER": "b:2"}, cfg) == ("a:1", remote.FROM_DIALOG)
    assert remote.resolve_server("", {"LVSS_SERVER": "b:2"}, cfg) == ("b:2", remote.FROM_ENV)
    assert remote.resolve_server(" ", {}, cfg) == ("10.0.0.5:6000", remote.FROM_CONFIG)
    assert remote.resolve_server("", {}, {}) == ("127.0.0.1:50051", remote.FROM_DEFAULT)
    s = remote.resolve_settings(server="", environ={}, config=cfg)
    assert (s.server, s.server_source) == ("10.0.0.5:6000", remote.FROM_CONFIG)
    # the label the installer writes names exactly what an empty field resolves to
    label = remote.server_field_label(cfg)
    assert "$LVSS_SERVER" in label and "10.0.0.5:6000" in label
    assert "127.0.0.1:50051" in remote.server_field_label({})


def test_installed_dialog_names_the_recorded_server(tmp_path):
    from lxml import etree

    from lvss.integrations import inkscape as installer

    target = installer.install(tmp_path, python=sys.executable, server="10.0.0.5:6000")
    root = etree.parse(str(target / "lvss_vectorize.inx")).getroot()
    (param,) = root.xpath("//*[local-name()='param'][@name='server']")
    assert param.get("gui-text") == remote.server_field_label({"server": "10.0.0.5:6000"})
    effect = root.xpath("//*[local-name()='effect']")[0]
    # not implements-custom-gui: in Inkscape 1.2 that would also drop the parameters dialog (checked in
    # a real Inkscape: the menu entry then runs the effect at once); the progress window covers
    # Inkscape's working window instead (test_inkscape_ux_real)
    assert effect.get("implements-custom-gui") is None
    assert (target / "_lvss" / "messages.py").read_text() == (REPO / "lvss" / "messages.py").read_text()


# -- layer names -----------------------------------------------------------------------------------
def _square(x0, y0, x1, y1, rgb, alpha=1.0):
    from lvss.scene import Path as LPath, polygon_to_path

    p = polygon_to_path(torch.tensor([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=torch.float32))
    return LPath(p.points, torch.tensor([*rgb, alpha], dtype=torch.float32))


def test_layer_names_unique_and_coloured_by_visible_area():
    from lvss.naming import layer_names, name_layers
    from lvss.scene import Layer, Scene

    red, cream, brown = (0.55, 0.05, 0.05), (0.98, 0.95, 0.85), (0.45, 0.28, 0.12)
    # the back layer holds a big dark red path that is almost all covered by cream: cream shows most
    back = Layer("01 Background, dark red", [_square(0, 0, 60, 60, red), _square(0, 0, 60, 55, cream)], "layer1")
    d1 = Layer("02 Details, brown", [_square(2, 2, 12, 12, brown)], "layer2")
    d2 = Layer("03 Details, brown", [_square(45, 45, 58, 58, brown)], "layer3")
    d3 = Layer("04 Details, brown", [_square(46, 46, 57, 57, brown)], "layer4")
    scene = Scene(60, 60, [back, d1, d2, d3])
    names = layer_names(scene)
    assert names[0].startswith("01 Background, ") and "dark red" not in names[0], names
    assert [n[:2] for n in names] == ["01", "02", "03", "04"]
    rest = [n[3:] for n in names]
    assert len(set(rest)) == len(rest), names  # unique even without the numbers
    assert names[1] == "02 Details, brown, top left", names
    assert "bottom right" in names[2] and "bottom right" in names[3]
    renamed = name_layers(scene)
    assert [l.name for l in renamed.layers] == names
    assert [l.id for l in renamed.layers] == ["layer1", "layer2", "layer3", "layer4"]


def test_path_ids_say_layer_and_role():
    from lxml import etree

    from lvss.scene import Layer, Scene
    from lvss.svg import scene_to_svg

    layer = Layer("01 Shapes, red", [_square(0, 0, 5, 5, (1, 0, 0)), _square(1, 1, 4, 4, (0, 0, 1)),
                                     _square(2, 2, 3, 3, (0, 1, 0))], "layer1", details_from=2)
    svg = etree.fromstring(scene_to_svg(Scene(8, 8, [layer, Layer("02 Details, blue", [_square(0, 0, 2, 2, (0, 0, 1))])]))
                           .encode())
    ids = [p.get("id") for p in svg.iter("{http://www.w3.org/2000/svg}path")]
    assert ids == ["l01-shape-1", "l01-shape-2", "l01-detail-1", "l02-shape-1"]


# -- the effect: group name, ids, selection, messages ----------------------------------------------
@pytest.fixture
def ext(monkeypatch):
    """The extension's test case helpers from tests/test_inkscape_ext.py (inkex on the path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("inkscape_ext_tests", REPO / "tests" / "test_inkscape_ext.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["inkscape_ext_tests"] = mod
    spec.loader.exec_module(mod)
    monkeypatch.setenv("DOCUMENT_PATH", "")  # restored after the test (the runs below set it)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    return mod


def _run(mod, tmp_path, body, args, fake=None, show=None):
    import lvss_vectorize

    doc = tmp_path / "doc.svg"
    doc.write_text(f'<svg {mod.NS} width="200" height="200" viewBox="0 0 200 200">{body}</svg>')
    os.environ["DOCUMENT_PATH"] = str(doc)
    out, err = io.BytesIO(), io.StringIO()
    effect = lvss_vectorize.LvssVectorize()
    patches = [mock.patch.object(lvss_vectorize, "vectorize_image", fake or mod.FakeServer()),
               mock.patch("sys.stderr", err)]
    if show is not None:
        patches.append(mock.patch.object(progress, "show_message", show))
    code = 0
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        try:
            effect.run([str(doc), *args], output=out)
        except SystemExit as exit_:
            code = exit_.code
    return effect, code, out.getvalue(), err.getvalue()


def test_result_is_named_after_the_image_selected_and_ids_unique(ext, tmp_path):
    uri = ext.data_uri(ext.png_bytes(40, 20))
    body = (f'<g id="layer1" inkscape:groupmode="layer" inkscape:label="Background">'
            f'<image id="photo" inkscape:label="coffee.png" width="40" height="20" xlink:href="{uri}"/>'
            f'<use id="clone" xlink:href="#photo" x="50"/></g>')
    fake = ext.FakeServer(labels=("01 Background, white", "02 Details, brown", "02 Details, brown"))
    effect, code, out, err = _run(ext, tmp_path, body, ["--id=photo"], fake)
    assert code == 0 and err == "", err
    svg = effect.svg
    group = svg.getElementById("photo")  # the result took the bitmap's id: Inkscape selects it
    assert group.tag == "{http://www.w3.org/2000/svg}g" and group.get(ext.LABEL) == "lvss: coffee.png"
    image = svg.getElementById("photo-bitmap")
    assert image is not None and image.getnext() is group
    assert svg.getElementById("clone").get("{http://www.w3.org/1999/xlink}href") == "#photo-bitmap"
    labels = [g.get(ext.LABEL) for g in group]
    assert len(set(labels)) == len(labels), labels
    # the result's layers are sub-layers of the named group, not beside the document's "Background"
    assert all(g.getparent() is group for g in group)
    ids = svg.xpath("//@id")
    assert len(ids) == len(set(ids))
    paths = group.findall(".//{http://www.w3.org/2000/svg}path")
    assert paths and all(p.get("id") for p in paths)


def test_selection_when_the_bitmap_is_deleted(ext, tmp_path):
    uri = ext.data_uri(ext.png_bytes(40, 20))
    effect, code, _, _ = _run(ext, tmp_path, f'<image id="photo" width="40" height="20" xlink:href="{uri}"/>',
                              ["--id=photo", "--original=delete"])
    assert code == 0
    group = effect.svg.getElementById("photo")
    assert group.get(ext.LABEL) == "lvss: photo" and not effect.svg.xpath("//*[local-name()='image']")


def test_messages_go_to_the_extensions_own_dialog(ext, tmp_path):
    """With a display, a failure is shown in the extension's dialog, nothing goes to stderr (which
    Inkscape 1.2 would put under its "The script did not return an error" header), no document."""
    shown = []

    def show(text, kind="error", **kw):
        shown.append((kind, text))
        return True

    uri = ext.data_uri(ext.png_bytes(40, 20))
    body = f'<image id="photo" width="40" height="20" xlink:href="{uri}"/>'
    fake = ext.FakeServer(remote.RemoteError("UNAVAILABLE", "connection refused"))
    _, code, out, err = _run(ext, tmp_path, body, ["--id=photo", "--server=127.0.0.1:50999"], fake, show)
    assert code != 0 and out == b"" and err == ""
    (kind, text), = shown
    assert kind == "error" and text.startswith("Could not reach the lvss server at 127.0.0.1:50999")
    assert text == remote.explain(remote.RemoteError("UNAVAILABLE", "connection refused"),
                                  remote.Settings(server="127.0.0.1:50999"), "photo")
    # without a display the same words go to stderr, inkex's way
    _, code, out, err = _run(ext, tmp_path, body, ["--id=photo", "--server=127.0.0.1:50999"], fake)
    assert code != 0 and out == b"" and "Could not reach the lvss server at 127.0.0.1:50999" in err


def test_cancel_in_the_window_ends_without_a_message(ext, tmp_path, monkeypatch):
    import lvss_vectorize

    shown = []
    uri = ext.data_uri(ext.png_bytes(40, 20))
    body = f'<image id="photo" width="40" height="20" xlink:href="{uri}"/>'
    window = mock.MagicMock()
    monkeypatch.setattr(progress, "open_monitor", lambda *a, **k: window)
    fake = ext.FakeServer(remote.RemoteError("CANCELLED", "you cancelled it"))
    _, code, out, err = _run(ext, tmp_path, body, ["--id=photo"], fake,
                             lambda text, kind="error", **kw: shown.append(text) or True)
    assert code != 0 and out == b"" and err == "" and shown == []
    assert lvss_vectorize.Cancelled.__mro__[1].__name__ == "AbortExtension"


WINDOW_EVENTS = r"""
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
import lvss_ext_progress as progress

monitor = progress.open_monitor(True, "10.0.0.5:6000", "recorded by lvss install-inkscape-extension")
if isinstance(monitor, progress.QuietMonitor):
    print(json.dumps({"quiet": monitor.reason}))
    sys.exit(0)


class FakeRun:
    settings = None
    def __init__(self):
        self.done, self.cancel_requested, self.on_event = threading.Event(), threading.Event(), None
    def start(self):
        def feed():
            for stage, f in (("simplify", 0.05), ("structure", 0.3), ("refine", 0.6), ("polish", 0.9)):
                self.on_event({"event": "progress", "stage": stage, "fraction": f})
                time.sleep(0.4)
            time.sleep(1.3)  # no event for a while: the clock still moves
            self.on_event({"event": "progress", "stage": "export", "fraction": 0.99})
            time.sleep(0.6)
            self.done.set()
        threading.Thread(target=feed, daemon=True).start()
    def cancel(self):
        self.cancel_requested.set()
    def result(self):
        return "ok"


seen = []
def look():
    seen.append({"stage": monitor.stage.get_text(), "percent": monitor.percent.get_text(),
                 "times": monitor.times.get_text(), "cancel": monitor.cancel_button.get_sensitive(),
                 "server": monitor.server_line.get_text()})
    return True

monitor.GLib.timeout_add(250, look)
run = FakeRun()
result = monitor.follow(run, "coffee.png")
monitor.cancel_button.clicked()  # greyed out: nothing happens
print(json.dumps({"result": result, "seen": seen, "cancelled": run.cancel_requested.is_set()}))
"""


@pytest.mark.skipif(not (os.path.exists("/usr/bin/python3") and __import__("shutil").which("xvfb-run")),
                    reason="needs Inkscape's Python (/usr/bin/python3) and xvfb-run")
def test_progress_window_words_time_and_cancel_while_writing():
    import json
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("LVSS_") and k != "PYTHONPATH"}
    proc = subprocess.run(["xvfb-run", "-a", "/usr/bin/python3", "-c", WINDOW_EVENTS, str(EXT_DIR)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "quiet" not in out, out
    seen = out["seen"]
    stages = [s["stage"] for s in seen]
    for words in ("Simplifying…", "Fitting shapes…", "Adding detail…", "Polishing…", "Writing…"):
        assert words in stages, stages
    assert seen[0]["server"] == "Server: 10.0.0.5:6000 (recorded by lvss install-inkscape-extension)"
    # while the server is silent (1.3 s after Polishing) the time line still changes within ~1 s
    quiet = [s["times"] for s in seen if s["stage"] == "Polishing…"]
    assert len(set(quiet)) >= 2, quiet
    assert all(s["cancel"] for s in seen if s["stage"] != "Writing…")
    assert not any(s["cancel"] for s in seen if s["stage"] == "Writing…")
    assert out["result"] == "ok" and out["cancelled"] is False


WINDOW_PREVIEW = r"""
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
import lvss_ext_progress as progress

monitor = progress.open_monitor(True, "127.0.0.1:50051")
if isinstance(monitor, progress.QuietMonitor):
    print(json.dumps({"quiet": monitor.reason}))
    sys.exit(0)

# what the server sends: a whole SVG at the image's size, one layer of flat cubic paths, 1 decimal
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" viewBox="0 0 200 100">'
       '<g id="preview"><path d="M0 0C66.7 0 133.3 0 200 0C200 33.3 200 66.7 200 100C133.3 100 66.7 100 0 100'
       'C0 66.7 0 33.3 0 0Z" fill="#1040c0"/>'
       '<path d="M100 20C111 20 120 29 120 40C120 51 111 60 100 60C89 60 80 51 80 40C80 29 89 20 100 20Z" '
       'fill="#e02020"/></g></svg>')
seen = {}


class FakeRun:
    settings = None
    def __init__(self):
        self.done, self.cancel_requested, self.on_event = threading.Event(), threading.Event(), None
    def start(self):
        def feed():
            self.on_event({"event": "progress", "stage": "structure", "fraction": 0.3})
            time.sleep(0.3)
            self.on_event({"event": "preview", "stage": "colour", "fraction": 0.52, "svg": "not an svg"})
            time.sleep(0.3)
            self.on_event({"event": "preview", "stage": "colour", "fraction": 0.52, "svg": SVG})
            time.sleep(0.6)
            self.on_event({"event": "progress", "stage": "refine", "fraction": 0.6})
            time.sleep(0.6)
            self.done.set()
        threading.Thread(target=feed, daemon=True).start()
    def cancel(self):
        self.cancel_requested.set()
    def result(self):
        return "ok"


def look():
    pix = monitor.picture.get_pixbuf()
    if pix is not None and "size" not in seen:
        px = pix.get_pixels()
        row, n = pix.get_rowstride(), pix.get_n_channels()
        at = lambda x, y: list(px[y * row + x * n: y * row + x * n + 3])
        seen.update(size=[pix.get_width(), pix.get_height()], centre=at(pix.get_width() // 2, pix.get_height() * 2 // 5),
                    corner=at(2, 2), visible=monitor.picture.get_visible(), shot=monitor.snapshot(sys.argv[2]))
    seen.setdefault("hidden_before", not monitor.picture.get_visible())
    return True

monitor.GLib.timeout_add(100, look)
result = monitor.follow(FakeRun(), "photo.png")
print(json.dumps({"result": result, "seen": seen, "previews": monitor.previews}))
"""


@pytest.mark.skipif(not (os.path.exists("/usr/bin/python3") and __import__("shutil").which("xvfb-run")),
                    reason="needs Inkscape's Python (/usr/bin/python3) and xvfb-run")
def test_progress_window_shows_the_preview(tmp_path):
    import json
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("LVSS_") and k != "PYTHONPATH"}
    shot = tmp_path / "window.png"
    proc = subprocess.run(["xvfb-run", "-a", "/usr/bin/python3", "-c", WINDOW_PREVIEW, str(EXT_DIR), str(shot)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "quiet" not in out, out
    seen = out["seen"]
    assert out["result"] == "ok" and out["previews"] == 1  # the bad SVG was skipped, the good one shown
    assert seen["hidden_before"] and seen["visible"]
    assert seen["size"] == [progress.PREVIEW_SIZE, progress.PREVIEW_SIZE // 2]  # fitted, aspect kept
    r, g, b = seen["centre"]
    assert r > 180 and g < 90 and b < 90, seen  # the red circle in front
    r, g, b = seen["corner"]
    assert b > 150 and r < 60, seen  # the blue back path
    assert seen["shot"] and shot.stat().st_size > 0
