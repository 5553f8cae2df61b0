"""Tests of lvss.client and ``lvss remote`` against a real server process on 127.0.0.1.

The server runs the scripted pipeline double from tests/test_server.py (``structure_iters`` steps of
10 ms each) and requires a token, so the token paths of the client are exercised too.
"""
from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "client-test-token-9f8e7d6c5b4a"


def _helpers():
    spec = importlib.util.spec_from_file_location("lvss_server_test_helpers", Path(__file__).with_name("test_server.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


H = _helpers()
FAST = dict(structure_iters=3, refine_iters=1)


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("token") / "token.txt"
    p.write_text(TOKEN + "\n")
    return p


@pytest.fixture(scope="module")
def server(token_file):
    s = H.ServerProc("--token-file", str(token_file), "--max-queue", "1", "--max-paths", "32")
    yield s
    assert s.stop() == 0
    assert TOKEN not in s.log()


@pytest.fixture
def client(server):
    from lvss.client import Client

    with Client(server.address, token=TOKEN) as c:
        yield c
        H.wait_idle(_RawStub(server))


class _RawStub:
    """GetInfo with the token, for wait_idle."""

    def __init__(self, server):
        import grpc

        from lvss._proto import vectorizer_pb2_grpc as pb_grpc

        self._channel = grpc.insecure_channel(server.address)
        self._stub = pb_grpc.VectorizerStub(self._channel)

    def GetInfo(self, req, timeout=None):
        return self._stub.GetInfo(req, timeout=timeout, metadata=[("authorization", f"Bearer {TOKEN}")])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def image_file(tmp_path, name="in.png", **kw) -> Path:
    p = tmp_path / name
    p.write_bytes(H.png_bytes(**kw))
    return p


# ------------------------------------------------------------------------------- Python API
def test_vectorize_returns_typed_result(server, token_file):
    from lvss.client import ClientResult, LayerInfo, Progress, vectorize

    seen = []
    r = vectorize(H.png_bytes(), server=server.address, paths=6, work_size=32, token=TOKEN, timeout=60,
                  on_progress=seen.append)
    assert isinstance(r, ClientResult)
    assert r.svg.lstrip().startswith("<?xml") and "<svg" in r.svg
    assert r.layers == [LayerInfo("layer1", "background", 3), LayerInfo("layer2", "details", 3)]
    assert all(isinstance(v, float) for v in {**r.metrics, **r.timings}.values())
    assert all(isinstance(p, Progress) for p in seen) and seen[0].stage == "start"
    assert [p.fraction for p in seen] == sorted(p.fraction for p in seen)


def test_token_from_env_file(server, token_file, monkeypatch):
    from lvss.client import get_info

    monkeypatch.setenv("LVSS_TOKEN_FILE", str(token_file))
    info = get_info(server.address)
    assert info["auth_required"] and info["limits"]["max_paths"] == 32
    assert info["limits"]["max_image_bytes"] == 64 << 20


@pytest.mark.parametrize("token, fragment", [(None, "needs a token"), ("nope", "not accepted")])
def test_missing_or_wrong_token(server, monkeypatch, token, fragment):
    from lvss.client import ClientError, vectorize

    monkeypatch.delenv("LVSS_TOKEN_FILE", raising=False)
    with pytest.raises(ClientError) as e:
        vectorize(H.png_bytes(), server=server.address, token=token, timeout=30)
    assert e.value.code == "UNAUTHENTICATED" and fragment in e.value.message


def test_unreachable_server_says_how_to_start_one():
    from lvss.client import ClientError, vectorize

    port = free_port()
    with pytest.raises(ClientError) as e:
        vectorize(H.png_bytes(), server=f"127.0.0.1:{port}", timeout=10)
    assert e.value.code == "UNAVAILABLE"
    # the words of lvss.messages, shared with lvss remote and the Inkscape extension
    assert e.value.message.startswith(f"Could not reach the lvss server at 127.0.0.1:{port}; "
                                      f"start it with `lvss serve --host 127.0.0.1 --port {port}`")


def test_bad_input_is_invalid_argument(client):
    from lvss.client import ClientError

    for kwargs, fragment in ((dict(image_bytes=b"GIF89a nope"), "not an image"),
                             (dict(image_bytes=H.png_bytes(), paths=0), "paths must be an integer between 1 and 32"),
                             (dict(image_bytes=H.png_bytes(), mode="cubist"), "mode must be one of layered, compact, got 'cubist'"),
                             (dict(image_bytes=H.png_bytes(), paths="many"), "paths must be an integer"),
                             (dict(image_bytes=b""), "empty")):
        with pytest.raises(ClientError) as e:
            client.vectorize(timeout=30, **kwargs)
        assert e.value.code == "INVALID_ARGUMENT" and fragment in e.value.message, e.value.message


def test_deadline_exceeded(client, server):
    from lvss.client import ClientError

    with pytest.raises(ClientError) as e:
        client.vectorize(H.png_bytes(), timeout=0.5, extra=dict(structure_iters=3000, refine_iters=1))
    assert e.value.code == "DEADLINE_EXCEEDED" and "--timeout" in e.value.message
    server.wait_log(r"iters=3000/1 .*outcome=cancelled by client")


def test_raising_progress_callback_cancels_the_job(client, server):
    class Stop(Exception):
        pass

    def on_progress(p):
        if p.fraction > 0.05:
            raise Stop()

    with pytest.raises(Stop):
        client.vectorize(H.png_bytes(), on_progress=on_progress, extra=dict(structure_iters=2500, refine_iters=1))
    server.wait_log(r"iters=2500/1 .*outcome=cancelled by client")


def test_queued_events_and_busy_server(client, server):
    from lvss.client import ClientError, Client

    started = threading.Event()
    stop = threading.Event()
    errors = []

    def long_job():
        def cb(p):
            started.set()
            if stop.is_set():
                raise KeyboardInterrupt

        try:
            with Client(server.address, token=TOKEN) as c:
                c.vectorize(H.png_bytes(), on_progress=cb, extra=dict(structure_iters=3000, refine_iters=1))
        except KeyboardInterrupt:
            pass
        except ClientError as e:
            errors.append(e)

    t = threading.Thread(target=long_job)
    t.start()
    assert started.wait(30)
    seen = []
    waiting = threading.Thread(target=lambda: seen.append(
        client.vectorize(H.png_bytes(), on_progress=seen.append, extra=FAST, timeout=60)))
    waiting.start()
    # the queue (one place) is now taken: a third job is refused at once
    deadline = time.monotonic() + 10
    while not any(getattr(p, "stage", "") == "queued" for p in seen):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(ClientError) as e:
        client.vectorize(H.png_bytes(), extra=FAST, timeout=30)
    assert e.value.code == "RESOURCE_EXHAUSTED" and "busy" in e.value.message
    stop.set()
    t.join(30)
    waiting.join(30)
    queued = [p for p in seen if getattr(p, "stage", "") == "queued"]
    assert queued[0].position == 1 and "1 job(s) ahead" in queued[0].message
    assert seen[-1].svg and not errors


# ------------------------------------------------------------------------------------- CLI
def _remote(*args, env=None):
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    e.pop("LVSS_TOKEN_FILE", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "lvss.cli.remote", *args], cwd=ROOT, env=e,
                          capture_output=True, text=True, timeout=120)


def test_cli_writes_svg_with_progress_bar(server, token_file, tmp_path):
    from lvss.svg import read_svg

    src, out = image_file(tmp_path), tmp_path / "out.svg"
    r = _remote(str(src), "-o", str(out), "--server", server.address, "--paths", "8", "--work-size", "32",
                "--progress", "always", env={"LVSS_TOKEN_FILE": str(token_file)})
    assert r.returncode == 0, r.stderr
    assert "%|" in r.stderr and f"wrote {out} (2 layers, 8 paths" in r.stderr
    assert read_svg(out).num_paths == 8
    assert not list(tmp_path.glob(".out.svg.*"))  # no temporary file left behind


def test_cli_fill_reaches_the_server(server, token_file, tmp_path):
    from lvss.scene import LinearGradient
    from lvss.svg import read_svg

    src, out = image_file(tmp_path), tmp_path / "out.svg"
    r = _remote(str(src), "-o", str(out), "--server", server.address, "--paths", "4", "--work-size", "32",
                "--fill", "auto", "-q", env={"LVSS_TOKEN_FILE": str(token_file)})
    assert r.returncode == 0, r.stderr
    server.wait_log(r"fill=auto")
    text = out.read_text()
    assert text.count("<linearGradient") == 4 and 'fill="url(#' in text
    assert all(isinstance(p.fill, LinearGradient) for p in read_svg(out).paths())
    r = _remote(str(src), "-o", str(out), "--server", server.address, "--fill", "plaid", "-q")
    assert r.returncode == 2 and "invalid choice: 'plaid'" in r.stderr


def test_cli_quality_reaches_the_server(server, token_file, tmp_path):
    """--quality picks the server's preset; --paths given with it wins over the preset's budget."""
    import re

    from lvss.config import QUALITY_PRESETS, VectorizeConfig, apply_quality
    from lvss.svg import read_svg

    env = {"LVSS_TOKEN_FILE": str(token_file)}
    src, out = image_file(tmp_path), tmp_path / "out.svg"
    fast, best = (apply_quality(VectorizeConfig(), q) for q in ("fast", "best"))
    r = _remote(str(src), "-o", str(out), "--server", server.address, "--work-size", "32", "--quality", "fast",
                "-q", env=env)
    assert r.returncode == 0, r.stderr
    budget = min(fast.paths, 32)  # the preset's budget, lowered to the server's --max-paths
    server.wait_log(rf"quality=fast paths={budget} .* iters={fast.optimize.structure_iters}/"
                    rf"{fast.optimize.refine_iters} polish={fast.optimize.polish_iters} ")
    assert read_svg(out).num_paths == budget
    r = _remote(str(src), "-o", str(out), "--server", server.address, "--work-size", "32", "--quality", "best",
                "--paths", "5", "-q", env=env)
    assert r.returncode == 0, r.stderr
    server.wait_log(rf"quality=best paths=5 .* iters=\d+/{best.optimize.refine_iters} "
                    rf"polish={best.optimize.polish_iters} ")
    assert read_svg(out).num_paths == 5
    r = _remote(str(src), "-o", str(out), "--server", server.address, "--quality", "ultra", "-q")
    assert r.returncode == 2 and "invalid choice: 'ultra'" in r.stderr
    assert all(re.search(rf"'{q}'", r.stderr) for q in QUALITY_PRESETS)


def test_client_quality_option_and_info(client, server):
    from lvss.client import ClientError
    from lvss.config import QUALITY_PRESETS

    info = client.info()
    assert info["qualities"] == list(QUALITY_PRESETS) and info["default_quality"] == "balanced"
    r = client.vectorize(H.png_bytes(), paths=3, work_size=32, timeout=60, extra={"quality": "fast"})
    assert sum(layer.paths for layer in r.layers) == 3
    server.wait_log(r"quality=fast paths=3 ")
    for value, code, fragment in ((7, "INVALID_ARGUMENT", "quality must be a string, got 7"),
                                  ("ultra", "INVALID_ARGUMENT", "quality must be one of fast, balanced, best, got 'ultra'")):
        with pytest.raises(ClientError) as e:
            client.vectorize(H.png_bytes(), timeout=30, extra={"quality": value})
        assert e.value.code == code and fragment in e.value.message, e.value.message


def _assert_one_line_error(status: int, stderr: str, expected_status: int, fragment: str):
    assert status == expected_status, (status, stderr)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("lvss remote: error: ") and fragment in lines[0]
    assert "Traceback" not in stderr


@pytest.mark.parametrize("case", ["not an image", "missing input", "bad paths", "no token", "wrong token file"])
def test_cli_bad_input_exits_2_and_keeps_output(server, token_file, tmp_path, case, capsys, monkeypatch):
    from lvss.cli import remote as remote_cli

    monkeypatch.delenv("LVSS_TOKEN_FILE", raising=False)
    out = tmp_path / "out.svg"
    out.write_text("previous content")
    src = image_file(tmp_path)
    args = [str(src), "-o", str(out), "--server", server.address, "--token-file", str(token_file)]
    fragment = {"not an image": "INVALID_ARGUMENT: the image is not an image",
                "missing input": "input image not found",
                "bad paths": "paths must be an integer between 1 and 32",
                "no token": "UNAUTHENTICATED: this lvss server needs a token",
                "wrong token file": "cannot read token file"}[case]
    if case == "not an image":
        src.write_bytes(b"definitely not a picture")
    elif case == "missing input":
        args[0] = str(tmp_path / "nope.png")
    elif case == "bad paths":
        args += ["--paths", "0"]
    elif case == "no token":
        args = args[:-2]
    elif case == "wrong token file":
        args[-1] = str(tmp_path / "missing-token")
    status = remote_cli.main(args)
    _assert_one_line_error(status, capsys.readouterr().err, 2, fragment)
    assert out.read_text() == "previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"in.png", "out.svg"})


def test_cli_unreachable_server_exits_1(tmp_path):
    port = free_port()
    src, out = image_file(tmp_path), tmp_path / "out.svg"
    r = _remote(str(src), "-o", str(out), "--server", f"127.0.0.1:{port}", "--timeout", "10")
    _assert_one_line_error(r.returncode, r.stderr, 1, f"UNAVAILABLE: Could not reach the lvss server at 127.0.0.1:{port}")
    assert not out.exists()


def test_cli_main_in_process(server, tmp_path, capsys):
    from lvss.cli import remote as remote_cli

    src, out = image_file(tmp_path), tmp_path / "deep" / "out.svg"
    status = remote_cli.main([str(src), "-o", str(out), "--server", server.address, "-q"])
    assert status == 2
    err = capsys.readouterr().err
    assert "output folder does not exist" in err and not out.exists()


# ---------------------------------------------------------------------------------- previews
def test_on_preview_gets_the_picture_so_far(client):
    from lvss.client import Preview
    from lvss.svg import svg_to_scene

    order = []
    r = client.vectorize(H.png_bytes(), paths=4, work_size=32, timeout=60, extra=dict(structure_iters=20),
                         on_progress=lambda p: order.append("progress"),
                         on_preview=lambda p: order.append(p))
    previews = [p for p in order if isinstance(p, Preview)]
    assert previews and r.svg
    assert svg_to_scene(previews[0].svg).num_paths == 4 and previews[0].label == "Fitting shapes"
    # without on_preview the request asks for none (as an old client's)
    seen = []
    client.vectorize(H.png_bytes(), paths=4, work_size=32, timeout=60, extra=dict(structure_iters=20),
                     on_progress=seen.append)
    assert seen and not any(isinstance(p, Preview) for p in seen)


def test_cli_events_print_previews(server, token_file, tmp_path):
    import json

    from lvss.svg import read_svg, svg_to_scene

    src, out = image_file(tmp_path), tmp_path / "out.svg"
    base = [str(src), "-o", str(out), "--server", server.address, "--paths", "4", "--work-size", "32", "--events"]
    env = {"LVSS_TOKEN_FILE": str(token_file)}
    r = _remote(*base, env=env)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert "preview" in kinds and kinds.index("preview") < kinds.index("done")
    p = events[kinds.index("preview")]
    assert svg_to_scene(p["svg"]).num_paths == 4 and 0 <= p["fraction"] <= 1 and p["label"]
    assert read_svg(out).num_paths == 4
    # --preview-dir: the SVGs go to files, the events name them
    folder = tmp_path / "previews"
    folder.mkdir()
    r = _remote(*base, "--preview-dir", str(folder), env=env)
    assert r.returncode == 0, r.stderr
    shown = [json.loads(line) for line in r.stdout.splitlines() if '"preview"' in line]
    assert shown and all("svg" not in e and Path(e["path"]).parent == folder for e in shown)
    assert read_svg(shown[0]["path"]).num_paths == 4
    # --no-previews: none asked for
    r = _remote(*base, "--no-previews", env=env)
    assert r.returncode == 0 and '"preview"' not in r.stdout
