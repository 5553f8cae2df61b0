"""The Blender extension's Quality choice reaches the server: in process (gRPC) and through
``lvss remote --quality``; "Server Default" sends nothing. Runs without Blender (blender_ext/remote.py
needs no bpy) against the scripted server double of tests/test_server.py."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from blender_modules import load_blender_module  # noqa: E402


def _load(name: str):
    return load_blender_module(name, "lvss_blender_q")


remote = _load("remote")


def test_remote_command_sends_quality_only_when_chosen():
    cmd = remote.remote_command(remote.Settings(python="py"), "in.png", "out.svg")
    assert "--quality" not in cmd
    cmd = remote.remote_command(remote.Settings(python="py", quality="best"), "in.png", "out.svg")
    assert cmd[cmd.index("--quality") + 1] == "best"


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("grpc")
    from test_server import ServerProc

    s = ServerProc("--max-paths", "64")
    yield s
    assert s.stop() == 0


@pytest.mark.parametrize("connection, quality", [("GRPC", "fast"), ("COMMAND", "best"), ("GRPC", "")])
def test_quality_reaches_the_server(server, connection, quality):
    from test_server import png_bytes

    seed = {"fast": 11, "best": 12, "": 13}[quality]
    s = remote.Settings(server=server.address, connection=connection, python=sys.executable, timeout=120,
                        paths=3, levels=1, seed=seed, quality=quality)
    job = remote.start(png_bytes(), s)
    assert job.wait(120)
    assert job.error is None and job.svg and "<svg" in job.svg
    server.wait_log(rf"quality={quality or 'balanced'} paths=3 mode=layered levels=1 seed={seed} ")


@pytest.mark.parametrize("connection", ["GRPC", "COMMAND"])
def test_status_comes_from_the_events(server, connection, tmp_path):
    """Blender's status bar reads the events both ways (the client's callbacks in process, the JSON
    lines of `lvss remote --events` otherwise; no progress bar is parsed): the stage key, its words
    from lvss.messages as the Inkscape extension shows them, a fraction that never goes back. The
    server double stays in its "structure" stage until the gate file exists."""
    import time

    from lvss.messages import stage_label
    from test_server import SAFETY_TIMEOUT, png_bytes

    gate = tmp_path / "gate"
    s = remote.Settings(server=server.address, connection=connection, python=sys.executable, timeout=120,
                        paths=3, levels=1, prompt=f"gate:{gate}", previews=False)
    cmd = remote.remote_command(s, "in.png", "out.svg")
    assert "--events" in cmd and cmd[cmd.index("--progress") + 1] == "never" and "--no-previews" in cmd
    job = remote.start(png_bytes(), s)
    first = job.poll()
    assert (first.stage, first.fraction, first.label) == ("connecting", 0.0, "Connecting")
    end = time.monotonic() + SAFETY_TIMEOUT
    while job.poll().stage != "structure" or job.poll().fraction <= 0:
        assert not job.done and time.monotonic() < end, (job.error, job.poll())
        time.sleep(0.005)
    working = job.poll()
    assert working.label == "Fitting shapes" == stage_label("structure") and 0 < working.fraction < 1
    assert working.message.startswith("step ")
    gate.touch()
    assert job.wait(120) and job.error is None and "<svg" in job.svg
    assert job.way == {"GRPC": "in process", "COMMAND": "lvss remote"}[connection]
    last = job.poll()
    assert last.fraction >= working.fraction and last.label == stage_label(last.stage) != "Working"


@pytest.mark.parametrize("connection", ["GRPC", "COMMAND"])
def test_fill_and_backdrop_reach_the_result(server, connection):
    """Blender's Fills and Backdrop options: the fill arrives as the request's option (the server
    logs it; the server double then gives every path a gradient), and the result holds the backdrop
    layer below the others, both in process and through `lvss remote --backdrop`."""
    from test_server import png_bytes

    seed = {"GRPC": 31, "COMMAND": 32}[connection]
    s = remote.Settings(server=server.address, connection=connection, python=sys.executable, timeout=120,
                        paths=3, levels=1, seed=seed, fill="radial", backdrop=True)
    job = remote.start(png_bytes(), s)
    assert job.wait(120)
    assert job.error is None, job.error
    server.wait_log(rf"seed={seed} .*fill=radial ")
    svg = job.svg
    assert "<linearGradient" in svg
    assert svg.index('inkscape:label="Backdrop"') < svg.index('inkscape:label="background"')
    assert job.warnings == []


def test_a_backdrop_goes_through_lvss_remote_when_blender_cannot_make_one(server, monkeypatch):
    """Auto connection: where Blender's Python can talk gRPC but cannot make a backdrop (no Pillow or
    lxml there), a request with a backdrop runs `lvss remote` with the Python set for it; with no
    such Python it runs in process and says that the backdrop is missing."""
    from test_server import png_bytes

    monkeypatch.setattr(remote.client, "backdrop_module", lambda: None)
    s = remote.Settings(server=server.address, python=sys.executable, timeout=120, paths=3, levels=1, seed=41,
                        backdrop=True)
    job = remote.start(png_bytes(), s)
    assert job.wait(120) and job.error is None
    assert job.way == "lvss remote" and 'inkscape:label="Backdrop"' in job.svg
    job = remote.start(png_bytes(), remote.Settings(server=server.address, timeout=120, paths=3, levels=1, seed=42,
                                                    backdrop=True))
    assert job.wait(120) and job.error is None
    assert job.way == "in process" and 'inkscape:label="Backdrop"' not in job.svg
    assert len(job.warnings) == 1 and job.warnings[0].startswith("no backdrop layer: this Python")


def test_the_bundled_client_brings_what_it_imports():
    """The copy of lvss.client bundled into the Blender extension imports lvss.messages."""
    import ast

    from lvss.integrations.blender import CLIENT_FILES

    tree = ast.parse((REPO / "lvss" / "client.py").read_text(encoding="utf-8"))
    local = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}
    bundled = {f[:-3].replace("/", ".") for f in CLIENT_FILES}
    assert {m.split(".")[0] for m in local} <= {b.split(".")[0] for b in bundled}, local


def test_blender_reports_failures_in_the_words_every_client_uses():
    """Blender's report says what the Inkscape extension and `lvss remote` say (lvss.messages), on
    one line, with Blender's own place to fix it."""
    from lvss import messages

    s = remote.Settings(server="example.org:6000", token_file="/tmp/tok")
    text = remote.explain(remote.RemoteError("UNAVAILABLE", "refused"), s, "cat")
    assert text.startswith("Could not reach the lvss server at example.org:6000 (refused).")
    assert "lvss serve --host example.org --port 6000" in text and "\n" not in text
    assert remote.PREFS_PATH in text
    assert remote.explain(remote.RemoteError("CANCELLED", ""), s, "cat").startswith(messages.cancelled("cat")[:-1])
