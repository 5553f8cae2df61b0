"""Regression tests for the server's defences against hostile but well-formed clients (issue 13).

Each test runs a real server process on 127.0.0.1 with the scripted pipeline double of
tests/test_server.py (10 ms per step) and probes it the way a client it did not write would: calls
that send their headers and never their message, 49-megapixel header bombs, cancels while an image is
being decoded, a prompt that is not UTF-8, a TLS key of another certificate, a second signal during
the drain, and ``lvss serve`` without the server extra. Time bounds are generous regression bounds;
speed goals live in bench/load.py.
"""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from lvss._proto import vectorizer_pb2 as pb
from lvss._proto import vectorizer_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hardening-test-token-5e4d3c2b1a"
VECTORIZE = "/lvss.v1.Vectorizer/Vectorize"


def _helpers():
    spec = importlib.util.spec_from_file_location("lvss_server_hardening_helpers",
                                                  Path(__file__).with_name("test_server.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


H = _helpers()
AUTH = [("authorization", f"Bearer {TOKEN}")]


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return H.bomb_png(7000, 7000)


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("token") / "token.txt"
    p.write_text(TOKEN + "\n")
    return p


@pytest.fixture(scope="module")
def token_server(token_file):
    # max-queue 1: places for 1 running + 1 queued + 4 being checked = 6 open Vectorize calls
    s = H.ServerProc("--token-file", str(token_file), "--max-queue", "1", "--receive-timeout", "1.5")
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def server():
    s = H.ServerProc("--max-queue", "2", "--max-image-mb", "1", "--threads", "1")
    yield s
    assert s.stop() == 0


@pytest.fixture
def stub(server):
    channel, stub = H.stub_for(server)
    yield stub
    H.wait_idle(stub)
    channel.close()


def _health(channel) -> str:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    r = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)


class _HeldCalls:
    """Vectorize calls that send their headers but never their request message (until released).

    Opened as client-streaming calls on the same method: on the wire that is a call whose message
    has not arrived yet. Each call's request iterator waits at most ``hold`` seconds.
    """

    def __init__(self, channel, n: int, metadata=None, hold: float = 30.0, method: str = VECTORIZE):
        self._release = threading.Event()
        method = channel.stream_stream(method, request_serializer=None, response_deserializer=None)

        def never():
            self._release.wait(hold)
            return
            yield  # a generator that ends without a message

        self.calls = [method(never(), metadata=metadata, timeout=hold + 5) for _ in range(n)]

    def codes(self, timeout: float) -> list:
        """Status of each call, waiting at most ``timeout`` seconds in all (None: still open)."""
        end = time.monotonic() + timeout
        out = []
        for c in self.calls:
            while c.running() and time.monotonic() < end:
                time.sleep(0.02)
            out.append(None if c.running() else c.code())
        return out

    def release(self) -> None:
        self._release.set()
        for c in self.calls:
            c.cancel()


def _timed(fn):
    t = time.monotonic()
    value = fn()
    return value, time.monotonic() - t


# --------------------------------------------------------------------------------------- lock-out
def test_unauthenticated_calls_cannot_lock_out_others(token_server):
    s = token_server
    held = None
    try:
        with grpc.insecure_channel(s.address) as channel:
            stub = pb_grpc.VectorizerStub(channel)
            stub.GetInfo(pb.GetInfoRequest(), timeout=10, metadata=AUTH)  # connected
            # far more calls than the old cap (max-queue + 1 + 8 = 11), none with a token or a message
            held = _HeldCalls(channel, 40)
            codes = held.codes(timeout=10)
            # every call is answered at once: refused for its missing token, or (when more streams
            # are open on the connection than the server allows) refused as a stream; none is held
            allowed = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE}
            assert None not in codes and set(codes) <= allowed, codes
            assert codes.count(grpc.StatusCode.UNAUTHENTICATED) >= 12, codes
            assert all("needs a token" in c.details() for c in held.calls
                       if c.code() == grpc.StatusCode.UNAUTHENTICATED)
            info, t_info = _timed(lambda: stub.GetInfo(pb.GetInfoRequest(), timeout=5, metadata=AUTH))
            status, t_health = _timed(lambda: _health(channel))
            assert info.auth_required and status == "SERVING"
            assert t_info < 1.0 and t_health < 1.0, (t_info, t_health)
            events, code, _ = H.collect(stub, H.request(steps=2), metadata=AUTH)
            assert code == grpc.StatusCode.OK and events[-1][0] == "result"
    finally:
        if held is not None:
            held.release()


def test_stalled_authenticated_calls_are_capped_and_timed_out(token_server):
    s = token_server
    held = None
    try:
        with grpc.insecure_channel(s.address) as channel:
            stub = pb_grpc.VectorizerStub(channel)
            stub.GetInfo(pb.GetInfoRequest(), timeout=10, metadata=AUTH)
            held = _HeldCalls(channel, 6, metadata=AUTH)
            time.sleep(0.3)  # the six take every place
            assert held.codes(timeout=0) == [None] * 6
            t0 = time.monotonic()
            events, code, details = H.collect(stub, H.request(steps=1), metadata=AUTH, timeout=10)
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "calls are open" in details
            assert time.monotonic() - t0 < 1.0
            # health and GetInfo are not held up
            _, t_info = _timed(lambda: stub.GetInfo(pb.GetInfoRequest(), timeout=5, metadata=AUTH))
            status, t_health = _timed(lambda: _health(channel))
            assert status == "SERVING" and t_info < 1.0 and t_health < 1.0
            # the server gives up on the missing messages and frees the places
            codes = held.codes(timeout=10)
            assert codes == [grpc.StatusCode.CANCELLED] * 6, codes
            events, code, _ = H.collect(stub, H.request(steps=1), metadata=AUTH)
            assert code == grpc.StatusCode.OK
    finally:
        if held is not None:
            held.release()
    assert "its request message did not arrive within" in s.log()
    assert "Traceback" not in s.log()


def test_open_reflection_streams_do_not_take_getinfo_places(server):
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.VectorizerStub(channel)
        held = _HeldCalls(channel, 4, method="/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        try:
            time.sleep(0.3)
            assert held.codes(timeout=0) == [None] * 4  # open, waiting for their first request
            extra = _HeldCalls(channel, 1, method="/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
            try:
                assert extra.codes(timeout=5) == [grpc.StatusCode.RESOURCE_EXHAUSTED]
                assert "streaming calls" in extra.calls[0].details()
            finally:
                extra.release()
            for _ in range(10):  # more GetInfo calls than its places, one after the other
                _, took = _timed(lambda: stub.GetInfo(pb.GetInfoRequest(), timeout=5))
                assert took < 1.0
            assert _health(channel) == "SERVING"
        finally:
            held.release()


# ------------------------------------------------------------------------- header bombs and memory
def test_header_bomb_with_full_queue_is_refused_at_once_and_queued_bombs_stay_small(bomb, server, stub):
    s = server
    running = stub.Vectorize(H.request(steps=3000))  # 30 s unless cancelled
    queued = []
    try:
        H.first_event(running, "progress")
        rss0 = H.rss_mib(s.proc.pid)
        # two bombs wait in the queue: they hold their 140 KB, not 49 Mpx of pixels
        # (one after the other: two calls sent together may reach the queue in either order)
        positions = []
        for _ in range(2):
            queued.append(stub.Vectorize(H.request(image=bomb, steps=1)))
            positions.append(H.first_event(queued[-1], "queued").queued.position)
        assert positions == [1, 2]
        # with the queue full, a third bomb is refused before anything is decoded
        took = []
        for _ in range(5):
            t = time.monotonic()
            events, code, details = H.collect(stub, H.request(image=bomb, steps=1))
            took.append(time.monotonic() - t)
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "busy" in details and events == []
        assert min(took) < 0.2 and sorted(took)[2] < 0.2, took
        # refused before the message is even read: a call that never sends one is answered too
        with grpc.insecure_channel(s.address) as channel:
            held = _HeldCalls(channel, 1)
            try:
                assert held.codes(timeout=5) == [grpc.StatusCode.RESOURCE_EXHAUSTED]
                assert "busy" in held.calls[0].details()
            finally:
                held.release()
        growth = H.rss_mib(s.proc.pid) - rss0
        assert growth < 40, f"server RSS grew {growth:.0f} MiB with two bombs queued"
    finally:
        for c in queued:
            c.cancel()
        running.cancel()


def test_cancel_while_decoding_frees_the_worker_within_a_second(bomb, server, stub):
    s = server
    H.collect(stub, H.request(steps=1))  # warm: the first job pays for imports
    rss0 = H.rss_mib(s.proc.pid)
    loading = stub.Vectorize(H.request(image=bomb, steps=3000, work_size=32))
    assert H.first_event(loading, "progress").progress.stage == "start"  # decoding now
    queued, started = threading.Event(), {}

    def next_job():
        for ev in stub.Vectorize(H.request(steps=2), timeout=30):
            kind = ev.WhichOneof("event")
            if kind == "queued":
                queued.set()
            elif kind == "progress" and "t" not in started:
                started["t"] = time.monotonic()

    t = threading.Thread(target=next_job)
    t.start()
    assert queued.wait(10)  # the small job waits behind the bomb
    t_cancel = time.monotonic()
    loading.cancel()
    t.join(30)
    assert started["t"] - t_cancel < 1.0
    m = s.wait_log(r"size=7000x7000 .*outcome=cancelled by client while loading the image "
                   r"\(stopped ([\d.]+)s after the request\)")
    assert float(m.group(1)) < 1.0
    H.wait_idle(stub)
    growth = H.rss_mib(s.proc.pid) - rss0
    assert growth < 60, f"server RSS stayed {growth:.0f} MiB above its level after the cancelled bomb"


def test_big_image_is_decoded_small_and_the_svg_has_its_full_size(stub):
    import io

    import numpy as np
    from PIL import Image

    from lvss.svg import svg_to_scene

    rng = np.random.default_rng(3)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (900, 1200, 3), dtype=np.uint8)).save(buf, "JPEG")
    events, code, details = H.collect(stub, H.request(image=buf.getvalue(), steps=1, work_size=64))
    assert code == grpc.StatusCode.OK, details
    scene = svg_to_scene(events[-1][1].svg)
    assert (scene.width, scene.height) == (1200, 900)
    xs = [float(x) for p in scene.layers[0].paths for x in p.points[:, 0]]
    assert max(xs) > 300  # paths are placed on the full-size canvas, not the decoded one


def test_compressed_request_is_refused_without_inflating_it(server, stub):
    # 24 MiB of zeros gzip to ~24 KB; the transport limit is 1 MiB + 1 MiB here
    rss0 = H.rss_mib(server.proc.pid)
    with grpc.insecure_channel(server.address, compression=grpc.Compression.Gzip) as channel:
        zipped = pb_grpc.VectorizerStub(channel)
        for _ in range(3):
            events, code, details = H.collect(zipped, H.request(image=bytes(24 << 20)))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details, details
        events, code, _ = H.collect(zipped, H.request(steps=1))  # compressed and small: fine
        assert code == grpc.StatusCode.OK
    growth = H.rss_mib(server.proc.pid) - rss0
    assert growth < 20, f"server RSS grew {growth:.0f} MiB for compressed requests it refused"


# ------------------------------------------------------------------------------- malformed input
def _raw_vectorize(channel, raw: bytes):
    method = channel.unary_stream(VECTORIZE, request_serializer=None, response_deserializer=None)
    try:
        list(method(raw, timeout=10))
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def test_invalid_utf8_prompt_and_malformed_messages_are_invalid_argument(server):
    s = server
    assert "1 thread)" in s.banner
    good = H.request(steps=1).SerializeToString()
    with grpc.insecure_channel(s.address) as channel:
        code, details = _raw_vectorize(channel, good + b"\x12\x02\xff\xfe")  # field 2: prompt
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
        assert "prompt is not valid UTF-8" in details
        options = b"\x22\x03\x12\x01\xc3"  # field 4 (options) holding mode = b"\xc3"
        code, details = _raw_vectorize(channel, good + options)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "'options.mode' is not valid UTF-8" in details
        code, details = _raw_vectorize(channel, b"\x0a\xff\xff\xff\xff\x0f")  # a length past the end
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "not a valid lvss.v1.VectorizeRequest" in details
        code, _ = _raw_vectorize(channel, good)
        assert code == grpc.StatusCode.OK
    assert "Traceback" not in s.log() and "Exception deserializing" not in s.log()


# -------------------------------------------------------------------------------- start and stop
def _serve(*args: str, env=None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", "0", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _ec_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key (EC P-256: made in milliseconds)."""
    folder.mkdir()
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls_key_of_another_certificate_is_named(tmp_path):
    from server.app import StartupError, check_tls_files

    if subprocess.run(["which", "openssl"], capture_output=True).returncode != 0:
        pytest.skip("openssl is needed to make test certificates")
    cert_a, key_a = _ec_cert(tmp_path / "a")
    _, key_b = _ec_cert(tmp_path / "b")
    assert check_tls_files(str(cert_a), str(key_a))[0] == cert_a.read_bytes()
    r = _serve("--tls-cert", str(cert_a), "--tls-key", str(key_b))
    assert r.returncode == 2
    assert f"the TLS key {key_b} does not belong to the certificate {cert_a}" in r.stderr
    assert "another server" not in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "junk.pem").write_text("not a key\n")
    with pytest.raises(StartupError, match="is not a PEM private key"):
        check_tls_files(str(cert_a), str(tmp_path / "junk.pem"))
    with pytest.raises(StartupError, match="is not a PEM certificate"):
        check_tls_files(str(key_a), str(key_a))
    encrypted = tmp_path / "encrypted.pem"
    subprocess.run(["openssl", "pkey", "-in", str(key_a), "-aes128", "-passout", "pass:secret", "-out",
                    str(encrypted)], check=True, capture_output=True, timeout=60)
    with pytest.raises(StartupError, match="is encrypted"):
        check_tls_files(str(cert_a), str(encrypted))


def test_bad_threads_option_is_one_line(capsys):
    from server import cli

    assert cli.main(["--threads", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lvss serve: error: --threads must be a positive number of threads, got 0"]


def test_second_signal_cancels_the_running_job_during_the_drain():
    s = H.ServerProc("--grace", "60")
    try:
        channel, stub = H.stub_for(s)
        call = stub.Vectorize(H.request(steps=5000))  # 50 s if not cancelled
        H.first_event(call, "progress")
        s.proc.send_signal(signal.SIGTERM)
        s.wait_log("SIGTERM: shutting down")
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGINT)
        assert s.proc.wait(15) == 0
        assert time.monotonic() - t0 < 10  # not the 60 s grace period
        with pytest.raises(grpc.RpcError) as e:
            list(call)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        channel.close()
    finally:
        s.stop()
    log = s.log()
    assert "SIGINT again: cancelling the running job now" in log
    assert "outcome=cancelled by shutdown" in log


def test_serve_without_the_server_extra_says_how_to_install_it():
    code = ("import sys\n"
            "sys.modules['grpc'] = None  # as if grpcio were not installed\n"
            "from lvss.cli import main\n"
            "sys.exit(main(['serve', '--port', '0']))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "pip install 'lvss[server]'" in r.stderr and "grpc" in r.stderr
    assert "Traceback" not in r.stderr


def test_server_installs_under_its_own_name(tmp_path):
    import importlib.util as iu

    if iu.find_spec("lvss_server") is None:
        pytest.skip("lvss is not installed (pip install -e .); a source checkout only has server/")
    spec = iu.find_spec("lvss_server")
    assert Path(spec.origin).resolve().parent == ROOT / "server"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-m", "lvss_server", "--help"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--threads" in r.stdout and "--receive-timeout" in r.stdout
    setup = (ROOT / "setup.py").read_text()
    assert '"lvss_server": "server"' in setup
    assert "server*" not in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("max_waiting", [0, 1, 2])
def test_idle_queue_admits_a_burst_of_max_waiting_plus_one(max_waiting):
    """A burst on an idle server gets the same places as on a busy one: one job runs and max_waiting
    wait; the next call is refused (places reserved by calls still checking their request count)."""
    from lvss.config import VectorizeConfig
    from server.service import Job, JobQueue, QueueFull

    started, release = threading.Event(), threading.Event()

    def execute(job):
        started.set()
        assert release.wait(30)

    q = JobQueue(max_waiting, execute, name="test-queue")
    try:
        for _ in range(max_waiting + 1):  # all reserved before any job starts
            q.reserve()
        assert q.full()
        with pytest.raises(QueueFull):
            q.reserve()
        jobs = [Job(data=b"", cfg=VectorizeConfig(), nbytes=0, summary="") for _ in range(max_waiting + 1)]
        for job in jobs:
            q.submit(job, reserved=True)
        assert started.wait(30) and q.running is jobs[0]
        assert len(q) == max_waiting and [j.position for j in jobs[1:]] == list(range(1, max_waiting + 1))
        with pytest.raises(QueueFull):
            q.submit(Job(data=b"", cfg=VectorizeConfig(), nbytes=0, summary=""))
    finally:
        release.set()
        q.close()
    assert q.wait_idle(30)


CLEAR_TEXT = "the token travels in clear text"


def test_a_token_sent_in_clear_text_off_loopback_is_warned_about_once(token_file, tmp_path):
    """A token on a non-loopback address without TLS: one warning in the log; none on loopback or
    with TLS."""
    s = H.ServerProc("--token-file", str(token_file), "--host", "0.0.0.0")
    try:
        s.wait_log(r"serving on 0\.0\.0\.0:")
        log = s.log()
        assert log.count(CLEAR_TEXT) == 1, log
        line = next(l for l in log.splitlines() if CLEAR_TEXT in l)
        assert " WARNING " in line and "0.0.0.0" in line and "--tls-cert" in line and TOKEN not in log
    finally:
        s.stop()
    assert s.log().count(CLEAR_TEXT) == 1  # and not again at shutdown
    s = H.ServerProc("--token-file", str(token_file))  # loopback
    try:
        s.wait_log(r"serving on 127\.0\.0\.1:")
        assert CLEAR_TEXT not in s.log()
    finally:
        s.stop()
    if subprocess.run(["which", "openssl"], capture_output=True).returncode == 0:
        cert, key = _ec_cert(tmp_path / "tls")
        s = H.ServerProc("--token-file", str(token_file), "--host", "0.0.0.0", "--tls-cert", str(cert),
                         "--tls-key", str(key))
        try:
            s.wait_log(r"serving on 0\.0\.0\.0:.* tls=True")
            assert CLEAR_TEXT not in s.log()
        finally:
            s.stop()
