"""Tests of the gRPC server (server/) with real server processes on 127.0.0.1.

Most servers here run a scripted test double of the pipeline (``scripted_run`` below, injected via
``Servicer(run_job=...)``), so queueing, cancellation, shutdown and auth can be exercised quickly
and reproducibly; ``test_real_pipeline_happy_path`` runs the real pipeline with fast settings.

Run as a script (``python tests/test_server.py --port 0 ...``) this file starts a server with the
double; it takes the same flags as ``lvss serve``.
"""
from __future__ import annotations

import atexit
import io
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEP_SECONDS = 0.01  # one scripted optimisation step of the double
# Upper bound on any wait for an event or a state in these tests: it only keeps a hung server from
# hanging the suite. No test measures time: what a test checks is which events and states happen, in
# which order, so a loaded machine (other processes on the cores) slows the tests but cannot fail them.
SAFETY_TIMEOUT = 120.0


def scripted_run(image, cfg, progress, cancel):
    """Test double of ``lvss.pipeline.run``: ``cfg.optimize.structure_iters`` steps of 10 ms each.

    Reports progress after every step and checks ``cancel`` before each one, like the pipeline.
    A prompt containing "boom" makes it fail, to test that a failing job does not stop the server.
    A prompt ``gate:<file>`` makes it step (and report progress) until that file exists, however
    many iterations were asked for, or until it is cancelled: the tests decide when such a job ends,
    so that they wait on events and states instead of on a job's duration (see :class:`Gate`).
    Returns a two-layer scene with ``cfg.paths`` circles on the image's canvas; with a fill other than
    flat each circle gets a two-stop linear gradient across it (so clients can see the option arrive).
    When ``progress.wants_previews`` (the client asked for previews), every step also sends a preview
    event (one circle per path, on the image's canvas): the server's throttle decides which go out.
    """
    import torch

    from lvss.scene import Layer, LinearGradient, Scene, circle_path, mean_color
    from lvss.types import ProgressEvent, VectorizeResult

    if "boom" in cfg.saliency.prompt:
        raise RuntimeError("scripted failure")
    if cfg.saliency.source == "mask":  # the server hands a user mask over as a greyscale PNG file
        from PIL import Image

        with Image.open(cfg.saliency.mask_path) as m:
            if m.mode != "L":
                raise RuntimeError(f"mask file has mode {m.mode}")
    gate = cfg.saliency.prompt[len("gate:"):] if cfg.saliency.prompt.startswith("gate:") else None
    steps = cfg.optimize.structure_iters
    previews = getattr(progress, "wants_previews", False)
    t0 = time.monotonic()
    i = 0
    while (i < steps) if gate is None else not os.path.exists(gate):
        if cancel.is_set():
            raise InterruptedError("cancelled")
        time.sleep(STEP_SECONDS)
        i += 1
        fraction = (i / steps) if gate is None else i / (i + 1)
        progress(ProgressEvent("structure" if gate is not None or i <= steps // 2 else "refine", fraction,
                               f"step {i}"))
        if previews:
            h, w = image.shape[:2]
            shown = [circle_path(w * (k + 1) / (cfg.paths + 1), h / 2, min(w, h) / 4 * i / (i + 1))
                     for k in range(cfg.paths)]
            progress(ProgressEvent("structure", fraction, preview=Scene(w, h, [Layer("Preview", shown)])))
    h, w = image.shape[:2]
    paths = []
    for k in range(cfg.paths):
        p = circle_path(w * (k + 1) / (cfg.paths + 1), h / 2, min(w, h) / 4)
        p.color = torch.tensor([k / max(1, cfg.paths), 0.5, 0.2, 1.0])
        if cfg.optimize.fill != "flat":
            lo, hi = p.points.min(0).values, p.points.max(0).values
            p.fill = LinearGradient(lo, hi, torch.tensor([0.0, 1.0]),
                                    torch.stack([p.color, torch.tensor([1.0, 1.0, 1.0, 1.0])]))
            p.color = mean_color(p.fill)
        paths.append(p)
    back, front = paths[: max(1, len(paths) // 2)], paths[max(1, len(paths) // 2):]
    scene = Scene(w, h, [Layer("background", back), Layer("details", front)])
    return VectorizeResult(scene, timings={"optimize": time.monotonic() - t0}, metrics={"steps": float(steps)})


def _serve_double(argv: list[str]) -> int:
    from server.cli import _add_arguments, run
    import argparse

    p = argparse.ArgumentParser()
    _add_arguments(p)
    return run(p.parse_args(argv), run_job=scripted_run)


if __name__ == "__main__":
    sys.exit(_serve_double(sys.argv[1:]))

# ------------------------------------------------------------------------------------- helpers
import grpc  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lvss._proto import vectorizer_pb2 as pb  # noqa: E402
from lvss._proto import vectorizer_pb2_grpc as pb_grpc  # noqa: E402
from lvss.testing import png_declaring  # noqa: E402

PORT_LINE = re.compile(r"listening on \S+:(\d+)")


class ServerProc:
    """A server subprocess on 127.0.0.1 with a free port; stderr (the log) goes to a file."""

    def __init__(self, *args: str, real: bool = False, start_timeout: float = 90.0):
        self._log = tempfile.NamedTemporaryFile("w+", prefix="lvss-server-", suffix=".log", delete=False)
        atexit.register(lambda name=self._log.name: os.path.exists(name) and os.unlink(name))
        entry = ["-m", "server"] if real else [str(Path(__file__).resolve())]
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   OMP_NUM_THREADS="1")
        for var in ("LVSS_SAM_CHECKPOINT", "LVSS_SD_MODEL", "LVSS_CLIP_MODEL"):  # classical stages only
            env.pop(var, None)
        self.proc = subprocess.Popen([sys.executable, *entry, "--host", "127.0.0.1", "--port", "0", *args],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True)
        end = time.monotonic() + start_timeout
        line = ""
        while time.monotonic() < end:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
                if line:
                    break
            if self.proc.poll() is not None:
                break
        m = PORT_LINE.search(line)
        if not m:
            self.stop()
            raise RuntimeError(f"server did not start: {line!r}\n{self.log()}")
        self.banner = line.strip()
        self.port = int(m.group(1))
        self.address = f"127.0.0.1:{self.port}"

    def log(self) -> str:
        return Path(self._log.name).read_text()

    def wait_log(self, pattern: str, timeout: float = SAFETY_TIMEOUT) -> re.Match:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(pattern, self.log())
            if m:
                return m
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not in server log:\n{self.log()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        return self.proc.returncode


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for process {pid}")


def bomb_png(width: int = 7000, height: int = 7000, rows_per_piece: int = 50) -> bytes:
    """A valid all-black RGB PNG of width x height (7000 x 7000 = 49 Mpx by default, under the
    server's 50 Mpx limit) in about 140 KB: a header bomb that decodes to full size.

    Built in milliseconds: a run of zero rows is deflated once, ending with a full flush (which makes
    the compressed piece independent of what came before), the piece is repeated, and the stream is
    closed with an empty final block and the Adler-32 checksum of all the zeros.
    """
    import struct
    import zlib

    if height % rows_per_piece:
        raise ValueError(f"height must be a multiple of {rows_per_piece}")
    row = 3 * width + 1  # filter byte + RGB
    c = zlib.compressobj(9)
    head = c.compress(bytes(row * rows_per_piece)) + c.flush(zlib.Z_FULL_FLUSH)
    piece = c.compress(bytes(row * rows_per_piece)) + c.flush(zlib.Z_FULL_FLUSH)
    adler = (((row * height) % 65521) << 16) | 1  # Adler-32 of zeros: a = 1, b = length
    idat = head + piece * (height // rows_per_piece - 1) + b"\x03\x00" + adler.to_bytes(4, "big")

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def png_bytes(w: int = 48, h: int = 32, seed: int = 0) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    a = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def request(image: bytes | None = None, steps: int = 5, prompt: str = "", mask: bytes = b"", **options):
    opts = dict(paths=6, work_size=32, structure_iters=steps, refine_iters=1)
    opts.update(options)
    return pb.VectorizeRequest(image=png_bytes() if image is None else image, prompt=prompt,
                               saliency_mask=mask, options=pb.VectorizeOptions(**opts))


def stub_for(server: ServerProc):
    channel = grpc.insecure_channel(server.address)
    return channel, pb_grpc.VectorizerStub(channel)


def collect(stub, req, timeout: float = SAFETY_TIMEOUT, metadata=None):
    """All events of one call: (list of (kind, message), final status code or OK)."""
    events = []
    try:
        for ev in stub.Vectorize(req, timeout=timeout, metadata=metadata):
            kind = ev.WhichOneof("event")
            events.append((kind, getattr(ev, kind)))
        return events, grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return events, e.code(), e.details()


def wait_idle(stub, timeout: float = SAFETY_TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        info = stub.GetInfo(pb.GetInfoRequest(), timeout=SAFETY_TIMEOUT)
        if not info.busy and info.queue_length == 0:
            return
        time.sleep(0.05)
    raise AssertionError("server did not become idle")


def first_event(call, kind: str):
    """Iterate a streaming call until an event of ``kind`` arrives (in a thread-safe way)."""
    for ev in call:
        if ev.WhichOneof("event") == kind:
            return ev
    raise AssertionError(f"stream ended before a {kind} event")


class Gate:
    """A job of the double that runs until :meth:`open` (or until it is cancelled): send
    ``request(prompt=gate.prompt)``. Its file lives in a fresh temporary folder."""

    def __init__(self):
        self._dir = tempfile.mkdtemp(prefix="lvss-gate-")
        self.path = os.path.join(self._dir, "open")
        self.prompt = "gate:" + self.path

    def open(self) -> None:
        Path(self.path).touch()

    def close(self) -> None:
        self.open()  # a job still held (a failed test) ends now instead of holding the server
        import shutil

        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "Gate":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@pytest.fixture(scope="module")
def server():
    s = ServerProc("--max-queue", "2", "--max-image-mb", "1", "--max-paths", "64")
    yield s
    assert s.stop() == 0


@pytest.fixture
def stub(server):
    channel, stub = stub_for(server)
    yield stub
    wait_idle(stub)
    channel.close()


# --------------------------------------------------------------------------------------- tests
def test_get_info_reports_limits(stub):
    info = stub.GetInfo(pb.GetInfoRequest(), timeout=10)
    import lvss

    assert info.version == lvss.__version__
    assert info.device in ("cpu", "cuda")
    assert info.limits.max_image_bytes == 1 << 20
    assert info.limits.max_paths == 64
    assert info.limits.max_queue == 2
    assert info.limits.max_message_bytes > info.limits.max_image_bytes
    assert not info.auth_required
    from lvss.config import QUALITY_PRESETS

    assert list(info.qualities) == list(QUALITY_PRESETS) and info.default_quality == "balanced"


def test_happy_path_streams_progress_then_result(stub, server):
    from lxml import etree

    from lvss.svg import svg_to_scene

    events, code, details = collect(stub, request(steps=20, paths=7))
    assert code == grpc.StatusCode.OK, details
    kinds = [k for k, _ in events]
    assert kinds[-1] == "result" and kinds.count("result") == 1
    progress = [m for k, m in events if k == "progress"]
    assert progress[0].stage == "start"
    assert len(progress) == 21
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    result = events[-1][1]
    root = etree.fromstring(result.svg.encode())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    scene = svg_to_scene(result.svg)
    assert (scene.width, scene.height) == (48, 32)
    assert [(l.label, l.path_count) for l in result.layers] == [("background", 3), ("details", 4)]
    assert [l.name for l in scene.layers] == ["background", "details"]
    ids = [g.get("id") for g in root.iter("{http://www.w3.org/2000/svg}g")]
    assert [l.id for l in result.layers] == ids
    assert result.metrics["steps"] == 20
    assert {"optimize", "svg", "queue", "total"} <= set(result.timings)
    m = server.wait_log(rf"job {result.job_id} size=48x32 .* outcome=ok")
    assert "paths=7" in m.group(0) and "fill=flat" in m.group(0)


def _mask_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


BAD_REQUESTS = {
    "not an image": (dict(image=b"this is not an image"), "not an image"),
    "truncated": (dict(image=png_bytes(64, 64)[:200]), "truncated"),
    "huge header": (dict(image=png_declaring(100_000, 100_000)), "downscale"),
    "0x0": (dict(image=png_declaring(0, 0)), "image"),
    "empty image": (dict(image=b""), "no image"),
    "paths 0": (dict(paths=0), "paths must be an integer between 1 and 64"),
    "paths over limit": (dict(paths=65), "paths must be an integer between 1 and 64"),
    "unknown mode": (dict(mode="cubist"), "mode must be one of layered, compact, got 'cubist'"),
    "long prompt": (dict(prompt="x" * 1001), "over the limit of 1000"),
    "unreadable mask": (dict(mask=b"\x89PNG not really"), "saliency mask"),
    "mask with other saliency": (dict(mask=_mask_png(), saliency="clip"), "saliency mask was sent"),
    "unknown segmenter": (dict(segment="magic"), "segment must be one of auto, sam, classical, got 'magic'"),
    "unknown fill": (dict(fill="plaid"), "fill must be one of flat, linear, radial, auto, got 'plaid'"),
    "unknown quality": (dict(quality="ultra"), "quality must be one of fast, balanced, best, got 'ultra'"),
    "learned stage without model": (dict(segment="sam"), "segment 'sam' needs a SAM checkpoint"),
    "clip without prompt": (dict(saliency="clip"), "needs a prompt"),
    "image over size limit": (dict(image=b"\x89PNG" + bytes(1_500_000)), "over the server's limit of 1.0 MiB"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_is_invalid_argument(stub, case):
    kwargs, fragment = BAD_REQUESTS[case]
    events, code, details = collect(stub, request(**kwargs))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert fragment in details
    assert events == []
    # and the server still serves
    events, code, _ = collect(stub, request(steps=1))
    assert code == grpc.StatusCode.OK and events[-1][0] == "result"


def test_request_over_transport_limit_is_refused_clearly(stub, server):
    # the transport limit is 2 × max image + 1 MiB; beyond it gRPC itself refuses the message
    events, code, details = collect(stub, request(image=bytes(3_200_000)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in details.lower()
    from lvss.client import ClientError, vectorize

    with pytest.raises(ClientError) as e:
        vectorize(bytes(3_200_000), server=server.address)
    assert e.value.code == "RESOURCE_EXHAUSTED" and "smaller" in e.value.message


def test_saliency_mask_reaches_the_pipeline_and_is_cleaned_up(stub, server):
    events, code, details = collect(stub, request(mask=_mask_png(), steps=2))
    assert code == grpc.StatusCode.OK, details
    job = events[-1][1].job_id
    server.wait_log(rf"job {job} .*saliency=mask .*mask=yes .*outcome=ok")
    assert not list(Path(tempfile.gettempdir()).glob("lvss-mask-*.png"))


def test_failing_job_is_internal_and_server_goes_on(stub, server):
    events, code, details = collect(stub, request(prompt="boom"))
    assert code == grpc.StatusCode.INTERNAL
    assert "RuntimeError" in details and "server log" in details
    server.wait_log(r"outcome=error: RuntimeError")
    events, code, _ = collect(stub, request(steps=1))
    assert code == grpc.StatusCode.OK


def test_queue_full_and_queued_positions(stub):
    with Gate() as gate:
        long_call = stub.Vectorize(request(prompt=gate.prompt))  # runs until cancelled
        try:
            first_event(long_call, "progress")
            # one at a time, so that the server admits them in this order
            waiting = []
            for position in (1, 2):
                waiting.append(stub.Vectorize(request(steps=1)))
                assert first_event(waiting[-1], "queued").queued.position == position
            info = stub.GetInfo(pb.GetInfoRequest(), timeout=SAFETY_TIMEOUT)
            assert info.busy and info.queue_length == 2
            events, code, details = collect(stub, request(steps=1), timeout=SAFETY_TIMEOUT)
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "busy" in details and events == []
            # answered at once, not after the running job: that job runs until it is cancelled below
            info = stub.GetInfo(pb.GetInfoRequest(), timeout=SAFETY_TIMEOUT)
            assert info.busy and info.queue_length == 2
        finally:
            long_call.cancel()
    # the waiting jobs move up and run to completion
    for c in waiting:
        kinds = [ev.WhichOneof("event") for ev in c]
        assert kinds[-1] == "result"
        assert "queued" in kinds or "progress" in kinds


def test_cancel_frees_device_for_next_job(stub, server):
    with Gate() as gate:
        first = stub.Vectorize(request(prompt=gate.prompt))  # never ends by itself: only the cancel stops it
        try:
            first_event(first, "progress")
            queued = threading.Event()
            seen = []

            def second():
                call = stub.Vectorize(request(steps=2), timeout=SAFETY_TIMEOUT)
                for ev in call:
                    kind = ev.WhichOneof("event")
                    seen.append(kind)
                    if kind == "queued":
                        queued.set()

            t = threading.Thread(target=second)
            t.start()
            assert queued.wait(SAFETY_TIMEOUT), "the second job was not queued behind the first"
            assert "progress" not in seen  # the device is still taken by the first job
        finally:
            first.cancel()
        t.join(SAFETY_TIMEOUT)
        assert not t.is_alive()
    # the second job ran once the first was cancelled (it could not run before: the first never ends)
    assert seen[0] == "queued" and "progress" in seen and seen[-1] == "result"
    server.wait_log(r"outcome=cancelled by client \(stopped [\d.]+s after the request\)")


def test_deadline_stops_the_job(stub, server):
    with Gate() as gate:  # a job that only the deadline ends
        events, code, _ = collect(stub, request(steps=3000, prompt=gate.prompt), timeout=2.0)
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED
        # stopped while running, or (on a busy machine, the deadline passing before it started) in the queue
        m = server.wait_log(r"iters=3000/1 .*outcome=(cancelled by client|cancelled in queue)")
        if any(k == "progress" for k, _ in events):
            assert m.group(1) == "cancelled by client"
    events, code, _ = collect(stub, request(steps=1))
    assert code == grpc.StatusCode.OK


def test_eight_concurrent_clients_finish_or_are_refused(stub):
    """Eight clients at once while a job holds the device: exactly the two queue places are taken
    (the others are refused at once), and every admitted job runs to its result once the device is
    free. The held job is what makes the count exact: with the device idle, how many of a burst get
    in depends on whether the first job has started when the others arrive."""
    with Gate() as gate:
        running = stub.Vectorize(request(prompt=gate.prompt))
        first_event(running, "progress")  # the device is taken until the gate opens
        answered = threading.Semaphore(0)  # released once per client: queued, or refused
        outcomes = {}

        def client(i):
            kinds = []
            try:
                for ev in stub.Vectorize(request(steps=15, seed=i), timeout=SAFETY_TIMEOUT):
                    kinds.append(ev.WhichOneof("event"))
                    if kinds[-1] == "queued" and kinds.count("queued") == 1:
                        answered.release()
                outcomes[i] = (grpc.StatusCode.OK, kinds)
            except grpc.RpcError as e:
                outcomes[i] = (e.code(), kinds)
                if "queued" not in kinds:
                    answered.release()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for _ in threads:
            assert answered.acquire(timeout=SAFETY_TIMEOUT), "a client got neither a queue place nor a refusal"
        gate.open()
        assert [ev.WhichOneof("event") for ev in running][-1] == "result"
        for t in threads:
            t.join(SAFETY_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a client hangs"
    codes = sorted((code.name, kinds[-1] if kinds else None) for code, kinds in outcomes.values())
    assert codes == [("OK", "result")] * 2 + [("RESOURCE_EXHAUSTED", None)] * 6


def test_killed_client_does_not_hurt_the_server(stub, server):
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from lvss.client import Client\n"
        "def p(ev):\n"
        "    print(ev.stage, flush=True)\n"
        "Client(%r).vectorize(open(%r, 'rb').read(), work_size=32, paths=4, on_progress=p,\n"
        "                      extra=dict(structure_iters=5000, refine_iters=1))\n"
    )
    with tempfile.NamedTemporaryFile(suffix=".png", delete=False) as f:
        f.write(png_bytes())
    proc = subprocess.Popen([sys.executable, "-c", code % (str(ROOT), server.address, f.name)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "start"
        proc.kill()
        proc.wait(10)
    finally:
        proc.stdout.close()
        os.unlink(f.name)
    server.wait_log(r"iters=5000/1 .*outcome=cancelled by client")
    wait_idle(stub)
    events, code, _ = collect(stub, request(steps=2))
    assert code == grpc.StatusCode.OK and events[-1][0] == "result"


def test_reflection_lists_the_services(server):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(server.address) as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"lvss.v1.Vectorizer", "grpc.health.v1.Health"} <= services


def test_refuses_public_address_without_token():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "server", "--host", "0.0.0.0", "--port", "0"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token" in r.stderr
    assert "--token-file" in r.stderr and "Traceback" not in r.stderr


def _openssl_cert(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


def test_token_auth_and_tls(tmp_path):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if subprocess.run(["which", "openssl"], capture_output=True).returncode != 0:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = _openssl_cert(tmp_path)
    token = "s3cr3t-token-for-tests-0123456789"
    (tmp_path / "token").write_text(token + "\n")
    s = ServerProc("--token-file", str(tmp_path / "token"), "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(s.address, creds) as channel:
            stub = pb_grpc.VectorizerStub(channel)
            right = [("authorization", f"Bearer {token}")]
            info = stub.GetInfo(pb.GetInfoRequest(), timeout=10, metadata=right)
            assert info.auth_required
            events, code, _ = collect(stub, request(steps=2), metadata=right)
            assert code == grpc.StatusCode.OK and events[-1][0] == "result"
            for metadata, fragment in (([("authorization", "Bearer wrong")], "not accepted"),
                                       ([("authorization", token)], "not accepted"),
                                       (None, "needs a token")):
                events, code, details = collect(stub, request(steps=2), metadata=metadata)
                assert code == grpc.StatusCode.UNAUTHENTICATED and fragment in details and events == []
                with pytest.raises(grpc.RpcError) as e:
                    stub.GetInfo(pb.GetInfoRequest(), timeout=10, metadata=metadata)
                assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # the health check needs no token
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
        # plaintext against a TLS server fails
        with grpc.insecure_channel(s.address) as channel:
            with pytest.raises(grpc.RpcError) as e:
                pb_grpc.VectorizerStub(channel).GetInfo(pb.GetInfoRequest(), timeout=5)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        # the Python client over TLS
        from lvss.client import ClientError, get_info, vectorize

        assert get_info(s.address, token=token, tls_ca=str(cert))["auth_required"]
        r = vectorize(png_bytes(), server=s.address, token=token, tls_ca=str(cert), paths=4, timeout=30)
        assert sum(l.paths for l in r.layers) == 4
        with pytest.raises(ClientError) as e:
            get_info(s.address, token=token, timeout=5)
        assert e.value.code == "UNAVAILABLE" and "--tls-ca" in e.value.message
    finally:
        assert s.stop() == 0
    log = s.log()
    assert "outcome=ok" in log
    assert token not in log


def _health(address: str):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        try:
            r = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="lvss.v1.Vectorizer"), timeout=5)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)
        except grpc.RpcError as e:
            return e.code().name


def test_sigterm_health_and_running_job_finishes():
    s = ServerProc("--grace", "600")  # the gate, not the grace period, decides when the job ends
    try:
        with Gate() as gate:
            assert _health(s.address) == "SERVING"
            channel, stub = stub_for(s)
            call = stub.Vectorize(request(prompt=gate.prompt))
            first_event(call, "progress")
            s.proc.send_signal(signal.SIGTERM)
            s.wait_log("SIGTERM: shutting down")
            assert _health(s.address) == "NOT_SERVING"
            events, code, details = collect(stub, request(steps=1), timeout=SAFETY_TIMEOUT)
            assert code == grpc.StatusCode.UNAVAILABLE and "shutting down" in details
            gate.open()  # the running job may finish now
            kinds = [ev.WhichOneof("event") for ev in call]
            assert kinds[-1] == "result"  # the running job was allowed to finish
            assert s.proc.wait(SAFETY_TIMEOUT) == 0
            channel.close()
            assert _health(s.address) == "UNAVAILABLE"
    finally:
        s.stop()
    assert re.search(r"shutdown: running job \w+ finished", s.log())


def test_sigterm_cancels_running_job_after_grace():
    s = ServerProc("--grace", "0.3")
    try:
        with Gate() as gate:  # never opened while the server runs: only the shutdown stops the job
            channel, stub = stub_for(s)
            call = stub.Vectorize(request(prompt=gate.prompt))
            first_event(call, "progress")
            waiting = stub.Vectorize(request(steps=1))
            first_event(waiting, "queued")
            s.proc.send_signal(signal.SIGTERM)
            with pytest.raises(grpc.RpcError) as e:
                list(waiting)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            with pytest.raises(grpc.RpcError) as e:
                list(call)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "shut down before the job finished" in e.value.details()
            assert s.proc.wait(SAFETY_TIMEOUT) == 0  # exited although the job would never end by itself
            channel.close()
    finally:
        s.stop()
    assert "outcome=cancelled by shutdown" in s.log()
    assert "outcome=dropped at shutdown" in s.log()


def test_previews_only_when_asked_and_before_the_result(stub):
    from lvss.svg import svg_to_scene

    image = png_bytes(96, 64)  # decoded at about the working size; previews come at the image's size
    events, code, _ = collect(stub, request(image, steps=20))
    assert code == grpc.StatusCode.OK and "preview" not in [k for k, _ in events]  # old clients: nothing new
    req = request(image, steps=20)
    req.previews = True
    events, code, _ = collect(stub, req)
    assert code == grpc.StatusCode.OK, events
    kinds = [k for k, _ in events]
    assert kinds[-1] == "result" and "preview" in kinds
    previews = [m for k, m in events if k == "preview"]
    for m in previews:
        scene = svg_to_scene(m.svg)
        assert (scene.width, scene.height) == (96, 64) and scene.num_paths == 6
        assert 0.0 <= m.fraction <= 1.0 and m.stage == "structure"
    # a preview never runs ahead of the progress before it
    last = 0.0
    for k, m in events:
        if k == "progress":
            last = m.fraction
        elif k == "preview":
            assert m.fraction <= last + 1e-6
    # the double offers one per step (20 in ~0.2 s): the server's throttle lets about two a second through
    total = events[-1][1].timings["total"]
    assert 1 <= len(previews) <= 1 + total / 0.5


def test_real_pipeline_happy_path():
    pytest.importorskip("lvss.pipeline")
    from lvss.client import Client
    from lvss.svg import svg_to_scene

    img = Path(__file__).resolve().parent / "data" / "openmoji"  # bundled test images
    pngs = sorted(img.glob("*_256.png"))
    assert pngs, f"the bundled OpenMoji test images are missing ({img})"
    image = pngs[0].read_bytes()
    s = ServerProc(real=True)
    try:
        seen, previews = [], []
        with Client(s.address) as c:
            r = c.vectorize(image, paths=8, work_size=64, seed=1, on_progress=seen.append,
                            extra=dict(structure_iters=5, refine_iters=5), timeout=120,
                            on_preview=previews.append)
        # the first picture comes right after the colour fit of the structure, at the image's size
        assert previews and previews[0].stage == "colour"
        first = svg_to_scene(previews[0].svg)
        assert (first.width, first.height) == (256, 256) and first.num_paths >= 1
        assert all(p.fraction <= 1.0 for p in previews)
        scene = svg_to_scene(r.svg)
        assert r.layers and sum(l.paths for l in r.layers) == scene.num_paths
        assert 0 < scene.num_paths <= 8
        assert [l.label for l in r.layers] == [l.name for l in scene.layers]
        fr = [p.fraction for p in seen]
        assert fr == sorted(fr)
        # gradient fills through the server: a horizontal ramp gets a linear gradient per path
        from PIL import Image

        from lvss.scene import LinearGradient

        ramp = np.repeat(np.linspace(20, 235, 48)[None, :, None], 32, 0).repeat(3, 2).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(ramp).save(buf, format="PNG")
        with Client(s.address) as c:
            r = c.vectorize(buf.getvalue(), paths=2, work_size=48, seed=1, timeout=120,
                            extra=dict(structure_iters=5, refine_iters=5, fill="linear"))
        scene = svg_to_scene(r.svg)
        assert "<linearGradient" in r.svg and 'gradientUnits="userSpaceOnUse"' in r.svg
        assert any(isinstance(p.fill, LinearGradient) for p in scene.paths())
        assert r.metrics["linear_fills"] >= 1
    finally:
        assert s.stop() == 0
