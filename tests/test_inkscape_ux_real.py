"""The designer-facing points in a real, headless Inkscape 1.2 (under xvfb), with a real ``lvss serve``:

* after the run the inserted group is selected (Inkscape restores the selection by the ids that were
  selected before the effect; the group takes over the bitmap's id): an action run after the effect
  marks whatever is selected;
* the group is named after the image, its layers have unique names, every path an id that says its
  layer and role, unique in the document;
* a failure shows the extension's own dialog and nothing on stderr, so Inkscape shows no message box of
  its own ("The script did not return an error, but ...", which would block this headless run: the
  session would time out); the drawing is unchanged;
* Inkscape's own "working, please wait" window (which it cannot draw while an extension runs, so its
  Cancel is dead) lies under the progress window, covered whole (implements-custom-gui cannot remove
  it: in Inkscape 1.2 that attribute also drops the parameters dialog).

Uses the helpers of tests/test_inkscape_real.py (server fixture, profile with the installed extension).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

import test_inkscape_real as real
from test_inkscape_real import server  # noqa: F401  (the module's real server fixture)

pytestmark = real.pytestmark
SVG = "{http://www.w3.org/2000/svg}"


def test_result_selected_named_and_ids_unique(server, tmp_path, monkeypatch):  # noqa: F811
    inkex = real._import_inkex()
    png = real._bitmap()
    doc_in, doc_out = tmp_path / "in.svg", tmp_path / "out.svg"
    doc_in.write_text(real._document(png))
    profile = real._install_profile(tmp_path, monkeypatch)
    # after the effect, mark what Inkscape has selected
    actions = (f"select-by-id:photo;{real.EXTENSION_ACTION};object-set-attribute:data-selected,yes;"
               f"export-filename:{doc_out};export-do")
    proc = real._run_session(
        [real.XVFB_RUN, "-a", real.INKSCAPE, "--with-gui", "--batch-process", f"--actions={actions}", str(doc_in)],
        timeout=300, cwd=tmp_path,
        env=real._env(add_repo=False, INKSCAPE_PROFILE_DIR=str(profile), LVSS_PYTHON=sys.executable,
                      LVSS_SERVER=server),
    )
    log = f"inkscape exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert doc_out.is_file(), log
    svg = inkex.load_svg(str(doc_out)).getroot()
    selected = svg.xpath("//*[@data-selected='yes']")
    assert [el.get(real.LABEL) for el in selected] == ["lvss: photo.png"], log
    group = selected[0]
    assert svg.getElementById("photo-bitmap").getnext() is group
    labels = [g.get(real.LABEL) for g in group]
    assert len(labels) == len(set(labels)) and len(labels) >= 2, labels
    ids = svg.xpath("//@id")
    assert len(ids) == len(set(ids))
    paths = group.findall(f".//{SVG}path")
    assert paths and all(p.get("id") for p in paths)
    roles = [p.get("id").split("-", 1)[1] for p in paths if p.get("id") != "photo-backdrop-fill"]
    assert roles and all(r.startswith("l") and ("-shape-" in r or "-detail-" in r) for r in roles), roles


def test_failure_shows_only_the_extensions_own_words(tmp_path, monkeypatch):
    """A server that is not running: the extension's dialog (closed by itself after 2 s here), no
    stderr, so no message box of Inkscape's, which would wait for a click and stall this run."""
    inkex = real._import_inkex()
    doc_in, doc_out = tmp_path / "in.svg", tmp_path / "out.svg"
    doc_in.write_text(real._document(real._bitmap()))
    profile = real._install_profile(tmp_path, monkeypatch)
    port = real._closed_port()
    actions = f"select-by-id:photo;{real.EXTENSION_ACTION};export-filename:{doc_out};export-do"
    proc = real._run_session(
        [real.XVFB_RUN, "-a", real.INKSCAPE, "--with-gui", "--batch-process", f"--actions={actions}", str(doc_in)],
        timeout=120, cwd=tmp_path,
        env=real._env(add_repo=False, INKSCAPE_PROFILE_DIR=str(profile), LVSS_PYTHON=sys.executable,
                      LVSS_SERVER=f"127.0.0.1:{port}", LVSS_MESSAGE_TIMEOUT="2"),
    )
    log = f"inkscape exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert "Script Error" not in proc.stderr and "did not return an error" not in proc.stderr, log
    assert doc_out.is_file(), log
    svg = inkex.load_svg(str(doc_out)).getroot()
    assert not svg.xpath("//*[starts-with(@inkscape:label, 'lvss: ')]",
                         namespaces={"inkscape": "http://www.inkscape.org/namespaces/inkscape"}), log
    assert svg.getElementById("photo") is not None  # unchanged


_GEOMETRY = re.compile(r'(0x[0-9a-f]+) ("[^"]*"|\(has no name\)): \(([^)]*)\)\s+(\d+)x(\d+)\+-?\d+\+-?\d+\s+'
                       r'\+(-?\d+)\+(-?\d+)')


def _client_windows(display: str) -> list:
    """(name, class, x, y, width, height) of every window of Inkscape or the extension, absolute."""
    proc = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True, timeout=20,
                          env=dict(os.environ, DISPLAY=display))
    out = []
    for m in _GEOMETRY.finditer(proc.stdout):
        name, cls = m.group(2), m.group(3)
        if "lvss_vectorize.py" in cls or "org.inkscape.Inkscape" in cls:
            w, h, x, y = (int(m.group(k)) for k in (4, 5, 6, 7))
            out.append((name, cls, x, y, w, h))
    return out


@pytest.mark.skipif(not all(shutil.which(p) for p in ("Xvfb", "xwininfo", "openbox")),
                    reason="needs Xvfb, xwininfo (x11-utils) and a window manager (openbox)")
def test_progress_window_covers_inkscapes_working_window(server, tmp_path, monkeypatch):  # noqa: F811
    """An interactive Inkscape 1.2 (not --batch-process, which opens no working window) under a window
    manager: Inkscape maps its "working, please wait" window (it cannot draw it while the extension
    runs, so its Cancel is dead); the extension's progress window lies over it, covering it whole."""
    doc_in = tmp_path / "in.svg"
    doc_in.write_text(real._document(real._bitmap()))
    profile = real._install_profile(tmp_path, monkeypatch)
    display = ":%d" % (90 + os.getpid() % 50)
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x860x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wm = ink = None
    seen = []
    try:
        time.sleep(1.0)
        wm = subprocess.Popen(["openbox"], env=dict(os.environ, DISPLAY=display), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        env = real._env(add_repo=False, INKSCAPE_PROFILE_DIR=str(profile), LVSS_PYTHON=sys.executable,
                        LVSS_SERVER=server, DISPLAY=display)
        ink = subprocess.Popen([shutil.which("inkscape"), "--with-gui",
                                f"--actions=select-by-id:photo;{real.EXTENSION_ACTION}", str(doc_in)],
                               env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 180
        while time.monotonic() < end:
            windows = _client_windows(display)
            ours = [w for w in windows if w[0] == '"Vectorize Bitmap (lvss)"' and "lvss_vectorize.py" in w[1]]
            if ours:
                seen.append(windows)
            elif seen:
                break  # the run is over
            time.sleep(0.1)
    finally:
        for proc in (ink, wm):
            if proc is not None:
                proc.kill()
                proc.wait(20)
        xvfb.terminate()
        xvfb.wait(10)
    assert seen, "the progress window never showed"
    # the window settles over Inkscape's working window within its first moments (the window manager
    # may map it elsewhere first, or Inkscape map its window late; the extension moves it there every
    # 0.1 s at first, then with every tick): from the first sample where it covers that window, it
    # covers it in every later one
    covered = 0
    for windows in seen:
        (ours,) = [w for w in windows if w[0] == '"Vectorize Bitmap (lvss)"' and "lvss_vectorize.py" in w[1]]
        working = [w for w in windows if "org.inkscape.Inkscape" in w[1] and "- Inkscape" not in w[0]
                   and w[4] > 100 and w[5] > 40 and w[4] < 700]
        for _, _, x, y, w, h in working:
            _, _, ox, oy, ow, oh = ours
            over = ox <= x and oy <= y and ox + ow >= x + w and oy + oh >= y + h
            if covered:
                assert over, (ours, working)
            covered += over
    assert covered, seen  # Inkscape's working window was there, under ours
