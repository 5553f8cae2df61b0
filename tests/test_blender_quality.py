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
    cmd = remote.remote_command(remote.Settings(), "py", "in.png", "out.svg")
    assert "--quality" not in cmd
    cmd = remote.remote_command(remote.Settings(quality="best"), "py", "in.png", "out.svg")
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


def test_status_says_the_stage_in_a_designers_words():
    """Blender's status bar shows the stages as the Inkscape progress window and `lvss remote` do
    (lvss.messages); what the table does not know (a queue position) is shown as it came."""
    from lvss.messages import STAGE_WORDS

    assert remote.stage_words("structure") == STAGE_WORDS["structure"] == "Fitting shapes"
    assert remote.stage_words("polish") == "Polishing"
    assert remote.stage_words("queued (2 ahead)") == "queued (2 ahead)"


def test_the_bundled_client_brings_what_it_imports():
    """The copy of lvss.client bundled into the Blender extension imports lvss.messages."""
    import ast

    from lvss.blender import CLIENT_FILES

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
