"""The Inkscape extension's request path against a real ``lvss serve`` on loopback: streamed
progress, Cancel that stops the job on the server, the server's GetInfo and its warnings (an unused
prompt), both in process and through ``lvss remote --events``; and the progress window itself, in
Inkscape's own Python (GTK through python3-gi) under a virtual display, with a screenshot.

The server runs a scripted stand-in for the pipeline, so the job's length is known: ``levels`` below
10 makes a 20-step job (10 ms a step), ``levels`` 10 a job that runs until it is cancelled.
Set LVSS_TEST_ARTIFACTS=DIR to keep the window's screenshot.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXT_DIR = REPO / "inkscape_ext"
sys.path.insert(0, str(EXT_DIR))

import lvss_ext_progress as progress  # noqa: E402
import lvss_ext_remote as remote  # noqa: E402

pytest.importorskip("grpc")

SERVER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from server.cli import _add_arguments, run
import argparse

def job(image, cfg, progress, cancel):
    import torch
    from lvss.scene import Layer, Scene, circle_path
    from lvss.types import ProgressEvent, VectorizeResult
    steps = 20 if cfg.simplify.levels < 10 else 10 ** 6
    for i in range(steps):
        if cancel.is_set():
            raise InterruptedError("cancelled")
        time.sleep(0.01)
        progress(ProgressEvent("structure", (i + 1) / min(steps, 1000), f"step {i + 1}"))
    h, w = image.shape[:2]
    p = circle_path(w / 2, h / 2, min(w, h) / 3)
    p.color = torch.tensor([0.2, 0.4, 0.6, 1.0])
    return VectorizeResult(Scene(w, h, [Layer("background", [p])]), timings={}, metrics={})

p = argparse.ArgumentParser()
_add_arguments(p)
sys.exit(run(p.parse_args(sys.argv[2:]), run_job=job))
"""


class Server:
    def __init__(self, *args: str):
        self.log_file = tempfile.NamedTemporaryFile("w+", prefix="lvss-ext-server-", suffix=".log", delete=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LVSS_")}
        env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(REPO), "--host", "127.0.0.1", "--port", "0",
                                      *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=self.log_file, text=True)
        line = ""
        while self.proc.poll() is None:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready:
                line = self.proc.stdout.readline()
                break
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"server did not start: {line!r}\n{self.log()}")
        self.address = line.split("listening on", 1)[1].split()[0]

    def log(self) -> str:
        return Path(self.log_file.name).read_text()

    def wait_log(self, needle: str, limit: float = 30.0) -> None:
        end = time.monotonic() + limit
        while needle not in self.log():
            if time.monotonic() > end:
                raise AssertionError(f"{needle!r} not in the server log:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        os.unlink(self.log_file.name)


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()


def png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 120, 40)).save(buf, "PNG")
    return buf.getvalue()


def settings(server, **kw) -> remote.Settings:
    # the dialog's defaults (backdrop on, flat fills) with a small, fast job
    base = dict(server=server.address, python=sys.executable, pythonpath=str(REPO), timeout=120, paths=4, levels=1,
                backdrop=True, fill="flat")
    base.update(kw)
    return remote.Settings(**base)


@pytest.fixture(params=["in_process", "lvss_remote"])
def way(request, monkeypatch):
    """Both ways the extension reaches the server: the client in process, or `lvss remote`."""
    if request.param == "lvss_remote":
        monkeypatch.setattr(remote.client, "load_client", lambda: None)
    else:
        from lvss import client

        monkeypatch.setattr(remote.client, "load_client", lambda: client)
    return request.param


def test_progress_info_and_prompt_warning(server, way):
    events = []
    outcome = remote.vectorize(png(), settings(server, prompt="the orange square"), events.append)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "info"
    assert events[0]["prompt_supported"] is False  # the server has no CLIP model
    assert "progress" in kinds and kinds.index("progress") > 0
    fractions = [e["fraction"] for e in events if e["event"] == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any(e.get("stage") == "structure" for e in events)
    # every progress event carries the stage in a designer's words (lvss.messages.STAGE_WORDS), both ways
    from lvss.messages import stage_label

    progress_events = [e for e in events if e["event"] == "progress"]
    assert all(e["label"] == stage_label(e["stage"]) for e in progress_events), progress_events
    assert {e["label"] for e in progress_events if e["stage"] == "structure"} == {"Fitting shapes"}
    # the server's result says the prompt was not used, and why
    assert len(outcome.warnings) == 1
    assert "prompt was not used" in outcome.warnings[0] and "--models paper" in outcome.warnings[0]
    assert {"event": "warning", "message": outcome.warnings[0]} in events
    assert "<svg" in outcome.svg
    # the backdrop layer comes first (bottom), filling the bitmap's colour where the circle leaves gaps
    assert outcome.svg.index('inkscape:label="Backdrop"') < outcome.svg.index('inkscape:label="background"')
    assert 'fill="#c87828"' in outcome.svg
    note = remote.prompt_note(outcome.info, settings(server, prompt="x"))
    assert note is not None and server.address in note
    # without a prompt: no warning
    assert remote.vectorize(png(), settings(server)).warnings == []


def test_fill_choice_reaches_the_server(server, way):
    """The dialog's Fills choice arrives as the request's fill option (the server logs it)."""
    fill = "radial" if way == "in_process" else "linear"
    remote.vectorize(png(), settings(server, fill=fill))
    server.wait_log(f"fill={fill}")


def test_quality_choice_reaches_the_server(server, way):
    """The dialog's Quality choice arrives as the request's quality option; the dialog's path count
    still wins over the preset's budget (the server logs both)."""
    quality = "best" if way == "in_process" else "fast"
    outcome = remote.vectorize(png(), settings(server, quality=quality))
    server.wait_log(f"quality={quality} paths=4 ")
    assert outcome.warnings == []


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """The scripted server with TLS (a self-signed certificate for 127.0.0.1) and a token."""
    from testdata import self_signed_cert

    folder = tmp_path_factory.mktemp("tls")
    made = self_signed_cert(folder)
    if made is None:
        pytest.skip("openssl is needed to make a test certificate")
    (cert, key), token = made, folder / "token"
    token.write_text("tls-test-token-0123456789abcdef\n")
    s = Server("--tls-cert", str(cert), "--tls-key", str(key), "--token-file", str(token))
    s.cert, s.token = str(cert), str(token)
    yield s
    s.stop()


def test_tls_server_with_the_dialogs_certificate(tls_server, way):
    """A server with TLS and a token: the dialog's TLS certificate and token file reach it, in process
    and through `lvss remote --tls-ca`; without the certificate the run fails as unreachable, with
    the dialog's advice."""
    settings = remote.resolve_settings(server=tls_server.address, tls_ca=tls_server.cert,
                                       token_file=tls_server.token, python=sys.executable, paths=4, levels=1,
                                       timeout=120, environ={}, config={"pythonpath": str(REPO)})
    assert settings.tls_ca == tls_server.cert
    events = []
    outcome = remote.vectorize(png(), settings, events.append)
    assert "<svg" in outcome.svg and 'inkscape:label="Backdrop"' in outcome.svg
    assert events[0]["event"] == "info" and events[0]["auth_required"] is True
    assert events[-1]["event"] == "done" and events[-1]["paths"] == 1
    with pytest.raises(remote.RemoteError) as err:
        remote.vectorize(png(), dataclasses.replace(settings, tls_ca="", timeout=20))
    assert err.value.code == "UNAVAILABLE", err.value.message
    assert "Server tab" in remote.explain(err.value, settings, "photo.png")
    with pytest.raises(remote.RemoteError) as err:  # a certificate file that is not there: said at once
        remote.Run(png(), dataclasses.replace(settings, tls_ca=tls_server.cert + ".missing")).start()
    assert err.value.code == "SETUP" and "TLS certificate" in err.value.message


def test_cancel_stops_the_job_on_the_server(server, way):
    started = threading.Event()
    run = remote.Run(png(), settings(server, levels=10),
                     lambda e: started.set() if e["event"] == "progress" and e["fraction"] > 0 else None).start()
    assert started.wait(60), "no progress arrived"
    before = server.log().count("cancelled by client")
    run.cancel()
    with pytest.raises(remote.RemoteError) as info:
        run.result()
    assert info.value.code == "CANCELLED"
    end = time.monotonic() + 30
    while server.log().count("cancelled by client") <= before and time.monotonic() < end:
        time.sleep(0.05)
    assert server.log().count("cancelled by client") > before, server.log()


def test_lvss_remote_prints_the_warning(server, tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(png())
    out = tmp_path / "out.svg"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "lvss.cli.remote", str(src), "-o", str(out), "--server",
                           server.address, "--prompt", "a square", "--levels", "1", "--events", "--backdrop"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "lvss remote: warning: the prompt was not used" in proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[0]["event"] == "info" and events[-1]["event"] == "done"
    assert events[-1]["paths"] == 1
    # --events: the old fields, plus the designer's words
    progress_events = [e for e in events if e["event"] == "progress"]
    assert progress_events and all({"stage", "fraction", "message", "label"} <= set(e) for e in progress_events)
    assert "Fitting shapes" in {e["label"] for e in progress_events}
    (bd,) = [e for e in events if e["event"] == "backdrop"]
    assert bd["fill"] == "#c87828" and 0 < bd["gap"] < 1
    from lvss.svg import svg_to_scene

    scene = svg_to_scene(out.read_text())
    assert [layer.name for layer in scene.layers] == ["Backdrop", "background"]


@pytest.mark.parametrize("how", ["sigterm", "stdin"])
def test_lvss_remote_cancels_the_job_when_stopped(server, tmp_path, how):
    """SIGTERM, or "cancel" on stdin with --stdin-cancel: the job stops on the server, exit 130,
    one line on stderr, no output file."""
    import signal

    src = tmp_path / "in.png"
    src.write_bytes(png())
    out = tmp_path / "out.svg"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    before = server.log().count("cancelled by client")
    proc = subprocess.Popen([sys.executable, "-m", "lvss.cli.remote", str(src), "-o", str(out), "--server",
                             server.address, "--levels", "10", "--events", "--stdin-cancel"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)
    for line in proc.stdout:  # wait until the job runs
        if json.loads(line)["event"] == "progress":
            break
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:
        proc.stdin.write("cancel\n")
        proc.stdin.flush()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("lvss remote: error: CANCELLED:"), err
    assert "Traceback" not in err
    assert not out.exists()
    end = time.monotonic() + 30
    while server.log().count("cancelled by client") <= before and time.monotonic() < end:
        time.sleep(0.05)
    assert server.log().count("cancelled by client") > before


SYSTEM_PYTHON = "/usr/bin/python3"
WINDOW_SCRIPT = r"""
import json, os, sys, threading
sys.path.insert(0, sys.argv[1])
import lvss_ext_progress as progress, lvss_ext_remote as remote
out, address, python, repo = sys.argv[2:6]
monitor = progress.open_monitor(True, address)
if isinstance(monitor, progress.QuietMonitor):
    print(json.dumps({"quiet": monitor.reason}))
    sys.exit(0)
settings = remote.Settings(server=address, python=python, pythonpath=repo, timeout=120, paths=4, levels=10,
                           prompt="the orange square")
run = remote.Run(open(os.path.join(out, "in.png"), "rb").read(), settings)
seen = {}

def check():
    # once the window shows progress and the prompt note, photograph it and press Cancel
    frac = monitor.bar.get_fraction()
    if frac > 0.005 and monitor.note.get_visible():
        seen.update(fraction=frac, stage=monitor.stage.get_text(), note=monitor.note.get_text(),
                    heading=monitor.heading.get_text(), button=monitor.cancel_button.get_label(),
                    server=monitor.server_line.get_text(), percent=monitor.percent.get_label(),
                    percent_text=monitor.percent.get_text(), times=monitor.times.get_text(),
                    snapshot=monitor.snapshot(os.path.join(out, "progress.png")))
        monitor.cancel_button.clicked()
        seen["after_click"] = monitor.stage.get_text()
        return False
    return True

monitor.GLib.timeout_add(50, check)
try:
    monitor.follow(run, "photo.png", 1, 2)
    seen["code"] = "OK"
except remote.RemoteError as err:
    seen["code"] = err.code
print(json.dumps(seen))
"""


@pytest.mark.skipif(not (os.path.exists(SYSTEM_PYTHON) and shutil.which("xvfb-run")),
                    reason="needs Inkscape's Python (/usr/bin/python3) and xvfb-run")
def test_progress_window_under_xvfb(server, tmp_path):
    gi = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('Gtk', '3.0'); "
                         "from gi.repository import Gtk"], capture_output=True, text=True)
    if gi.returncode != 0:
        pytest.fail("Inkscape's Python has no GTK 3 bindings; install python3-gi gir1.2-gtk-3.0 "
                    f"(see README, Inkscape section): {gi.stderr.strip()[-300:]}")
    (tmp_path / "in.png").write_bytes(png())
    env = {k: v for k, v in os.environ.items() if not k.startswith("LVSS_") and k != "PYTHONPATH"}
    before = server.log().count("cancelled by client")
    proc = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 800x600x24", SYSTEM_PYTHON, "-c", WINDOW_SCRIPT,
                           str(EXT_DIR), str(tmp_path), server.address, sys.executable, str(REPO)],
                          capture_output=True, text=True, timeout=300, env=env, start_new_session=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "quiet" not in seen, seen
    assert seen["code"] == "CANCELLED", seen
    assert seen["snapshot"] is True
    # the stage in a designer's words, a large percentage, the time so far, the server in use
    assert seen["stage"] == "Fitting shapes…", seen
    assert "xx-large" in seen["percent"] and seen["percent_text"].endswith(" %"), seen
    assert "so far" in seen["times"], seen
    assert seen["server"] == f"Server: {server.address}", seen
    assert "will not be used" in seen["note"] and "--models paper" in seen["note"]
    assert "photo.png" in seen["heading"] and "1 of 2" in seen["heading"]
    assert seen["button"] == "Cancel" and seen["after_click"].startswith("Cancelling")
    end = time.monotonic() + 30
    while server.log().count("cancelled by client") <= before and time.monotonic() < end:
        time.sleep(0.05)
    assert server.log().count("cancelled by client") > before
    # the screenshot shows a window: light background, dark text, the progress bar's colour
    import numpy as np
    from PIL import Image

    shot = np.asarray(Image.open(tmp_path / "progress.png").convert("RGB")).astype(int)
    h, w = shot.shape[:2]
    assert w >= 300 and h >= 100, shot.shape
    grey = shot.mean(axis=2)
    assert (grey > 200).mean() > 0.5 and (grey < 80).mean() > 0.005
    keep = os.environ.get("LVSS_TEST_ARTIFACTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(tmp_path / "progress.png", os.path.join(keep, "progress.png"))


def test_quiet_monitor_without_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monitor = progress.open_monitor(True)
    assert isinstance(monitor, progress.QuietMonitor) and "display" in monitor.reason
    assert isinstance(progress.open_monitor(False), progress.QuietMonitor)
    assert progress.stage_text({"event": "queued", "position": 2}) == "Waiting for the server: 2 jobs ahead"
    # designer's words, never the pipeline's developer messages; unknown stages read "Working"
    assert progress.stage_text({"event": "progress", "stage": "refine", "message": "step 3"}) == "Adding detail"
    assert progress.stage_text({"event": "progress", "stage": "polish"}) == "Polishing"
    assert progress.stage_text({"event": "progress", "stage": "new_stage"}) == "Working"
    assert progress.stage_text({"event": "progress", "stage": "x", "label": "Fitting shapes"}) == "Fitting shapes"
