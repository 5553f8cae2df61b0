"""Load test of the lvss gRPC server on loopback: throughput, latency, memory and refusals.

    PYTHONPATH=. python bench/load.py --clients 4 --requests 25            # starts its own server
    PYTHONPATH=. python bench/load.py --pipeline scripted --clients 8 --requests 50
    PYTHONPATH=. python bench/load.py --server 127.0.0.1:50051 --server-pid 1234
    PYTHONPATH=. python bench/load.py --scenario hardening                 # the three checks below

Scenarios (``--scenario``):

* ``jobs`` (default): N clients x M requests; throughput, p50/p95 latency of finished jobs, outcome
  counts, and the server's resident memory (VmRSS) after a warm-up job, during the run and at the
  end, so growth across many jobs shows.
* ``bombs``: ``--bombs`` requests, one after the other, each a 7000 x 7000 (49 Mpx) PNG of ~140 KB
  that the server accepts and decodes; VmRSS after each and the peak (VmHWM).
* ``refusal``: with the queue held full by long jobs, ``--refusals`` requests of each input size
  (a small PNG, a 12 Mpx JPEG, the 49 Mpx PNG bomb, a ~45 MiB PNG); p50/p95 of the time until the
  RESOURCE_EXHAUSTED answer, and VmRSS before and after.
* ``hardening``: ``jobs`` with one client and 100 requests, then ``bombs`` (20) and ``refusal``,
  checked against the goals: RSS growth over 100 jobs <= 50 MiB, refusal p95 <= 50 ms for every size.

``--pipeline scripted`` runs the server with the scripted pipeline double of tests/test_server.py
(10 ms per step), which isolates the server's own costs (queue, transport, memory) from the pipeline.
Bounded: at most 32 clients, 1000 requests each, 200 bombs or refusals, and --max-seconds of wall
time per scenario (default 600); refuses non-loopback servers.
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RSS_GOAL_MIB = 50.0
REFUSAL_P95_GOAL_S = 0.050


def _proc_status(pid: int, key: str) -> float | None:
    """A memory figure of /proc/PID/status (e.g. VmRSS, VmHWM) in MiB, None when unavailable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def rss_mib(pid: int | None) -> float | None:
    """Resident set size of a process in MiB (Linux /proc), None when unavailable."""
    return _proc_status(pid, "VmRSS") if pid else None


def peak_mib(pid: int | None) -> float | None:
    """Peak resident set size (VmHWM) of a process in MiB, None when unavailable."""
    return _proc_status(pid, "VmHWM") if pid else None


def start_server(pipeline: str, max_queue: int) -> tuple[subprocess.Popen, str]:
    entry = ["-m", "server"] if pipeline == "real" else [str(ROOT / "tests" / "test_server.py")]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, *entry, "--host", "127.0.0.1", "--port", "0",
                             "--max-queue", str(max_queue), "--log-level", "WARNING"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if select.select([proc.stdout], [], [], 0.5)[0]:
            m = re.search(r"listening on \S+:(\d+)", proc.stdout.readline())
            if m:
                return proc, f"127.0.0.1:{m.group(1)}"
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("the server did not start; run `python -m server --port 0` to see why")


def default_image() -> bytes:
    moji = sorted(Path("/work/shared/data/openmoji").glob("*_256.png"))
    if moji:
        return moji[0].read_bytes()
    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((256, 256)).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png() -> bytes:
    """The 49 Mpx header-bomb PNG of the server tests (tests/test_server.py: bomb_png)."""
    spec = importlib.util.spec_from_file_location("lvss_bench_test_server", ROOT / "tests" / "test_server.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.bomb_png(7000, 7000)


def refusal_inputs() -> dict[str, bytes]:
    """Encoded images of very different sizes, all valid, for the refusal scenario."""
    import numpy as np
    from PIL import Image
    from skimage import data

    out = {}
    small = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((48, 32)).save(small, format="PNG")
    out["png 48x32"] = small.getvalue()
    jpeg = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((4000, 3000)).save(jpeg, format="JPEG", quality=92)
    out["jpeg 4000x3000"] = jpeg.getvalue()
    out["png 7000x7000 bomb"] = bomb_png()
    noise = np.random.default_rng(0).integers(0, 256, (3900, 4000, 3), dtype=np.uint8)
    big = io.BytesIO()
    Image.fromarray(noise).save(big, format="PNG", compress_level=1)
    out["png 4000x3900 noise"] = big.getvalue()
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run_jobs(address: str, pid: int | None, image: bytes, opts: dict, clients: int, requests: int,
             max_seconds: float) -> dict:
    """N clients x M requests; returns the figures (and prints them)."""
    from lvss.client import Client, ClientError

    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    rss_trace: list[tuple[int, float]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds
    rss0 = rss_mib(pid)

    def worker(i: int) -> None:
        with Client(address) as c:
            for k in range(requests):
                if time.monotonic() > deadline:
                    return
                t0 = time.monotonic()
                try:
                    c.vectorize(image, seed=i * 1000 + k, **opts)
                    key = "ok"
                except ClientError as e:
                    key = e.code
                    if e.code == "RESOURCE_EXHAUSTED":
                        time.sleep(0.2)  # back off like a polite client
                dt = time.monotonic() - t0
                with lock:
                    outcomes[key] = outcomes.get(key, 0) + 1
                    if key == "ok":
                        latencies.append(dt)
                        n = len(latencies)
                        if pid and n % 10 == 0:
                            rss_trace.append((n, rss_mib(pid) or float("nan")))

    t_start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t_start
    rss1 = rss_mib(pid)
    done = len(latencies)
    print(f"{clients} clients x {requests} requests, image {len(image)} bytes, paths {opts['paths']}, "
          f"work_size {opts['work_size']}, iters {opts['extra']['structure_iters']}/{opts['extra']['refine_iters']}")
    print(f"{'finished':>10} {'wall s':>8} {'jobs/s':>8} {'p50 s':>8} {'p95 s':>8}  outcomes")
    print(f"{done:>10d} {wall:>8.1f} {done / wall:>8.2f} {percentile(latencies, 0.5):>8.3f} "
          f"{percentile(latencies, 0.95):>8.3f}  {dict(sorted(outcomes.items()))}")
    growth = None
    if rss0 is not None and rss1 is not None:
        growth = rss1 - rss0
        print(f"server RSS: {rss0:.1f} MiB after warm-up, {rss1:.1f} MiB after {done} jobs "
              f"(growth {growth:+.1f} MiB)")
        if rss_trace:
            step = max(1, len(rss_trace) // 10)
            print("RSS trace (jobs done: MiB): " + ", ".join(f"{n}: {r:.1f}" for n, r in rss_trace[::step]))
            n0, r0 = rss_trace[0]
            print(f"steady-state growth from job {n0} to {done}: {rss1 - r0:+.1f} MiB "
                  f"({(rss1 - r0) * 1024 / max(1, done - n0):+.1f} KiB/job)")
    else:
        print("server RSS: unknown (pass --server-pid for a server this script did not start)")
    return {"done": done, "growth": growth}


def run_bombs(address: str, pid: int | None, opts: dict, count: int, max_seconds: float) -> dict:
    """``count`` 49 Mpx header-bomb jobs, one after the other; RSS after each and the peak."""
    from lvss.client import Client, ClientError

    bomb = bomb_png()
    rss0, hwm0 = rss_mib(pid), peak_mib(pid)
    trace, times, outcomes = [], [], {}
    deadline = time.monotonic() + max_seconds
    with Client(address) as c:
        for i in range(count):
            if time.monotonic() > deadline:
                break
            t0 = time.monotonic()
            try:
                r = c.vectorize(bomb, seed=i, **opts)
                key = "ok"
                assert 'width="7000"' in r.svg[:400], "the SVG is not on the image's full canvas"
            except ClientError as e:
                key = e.code
            times.append(time.monotonic() - t0)
            outcomes[key] = outcomes.get(key, 0) + 1
            trace.append(rss_mib(pid))
    print(f"{len(times)} bomb jobs (7000x7000 PNG, {len(bomb)} bytes): outcomes {outcomes}, "
          f"p50 {percentile(times, 0.5):.2f} s, p95 {percentile(times, 0.95):.2f} s per job")
    growth = None
    if rss0 is not None and trace and trace[-1] is not None:
        growth = trace[-1] - rss0
        hwm = peak_mib(pid)
        print(f"server RSS: {rss0:.1f} MiB before, {trace[-1]:.1f} MiB after (growth {growth:+.1f} MiB); "
              f"max after a job {max(t for t in trace if t is not None):.1f} MiB; peak (VmHWM) "
              f"{hwm:.1f} MiB (was {hwm0:.1f} before the bombs)")
    return {"growth": growth}


def _fill_queue(address: str, max_queue: int, image: bytes, opts: dict):
    """Calls that keep the worker busy and the queue full; returns them (cancel them to stop)."""
    import grpc

    from lvss._proto import vectorizer_pb2 as pb
    from lvss._proto import vectorizer_pb2_grpc as pb_grpc

    channel = grpc.insecure_channel(address)
    stub = pb_grpc.VectorizerStub(channel)
    req = pb.VectorizeRequest(image=image, options=pb.VectorizeOptions(
        paths=opts["paths"], work_size=opts["work_size"], structure_iters=5000, refine_iters=5000))
    calls = []
    for i in range(max_queue + 1):
        call = stub.Vectorize(req)
        want = "progress" if i == 0 else "queued"
        for ev in call:  # wait until this one runs / waits, so the next one queues behind it
            if ev.WhichOneof("event") == want:
                break
        calls.append(call)
    return channel, calls


def run_refusals(address: str, pid: int | None, image: bytes, opts: dict, count: int, max_queue: int) -> dict:
    """With the queue full, ``count`` requests of each input size; refusal latency per size.

    Each request is serialized once beforehand, so the figures are the server's answer time plus the
    client library's copy and send of the message (shown separately: ``copy ms`` is one memcpy of the
    message in this process). ``headers only`` is a call that never sends its message: the server's
    decision alone.
    """
    import grpc

    from lvss._proto import vectorizer_pb2 as pb
    from lvss._proto import vectorizer_pb2_grpc as pb_grpc

    inputs = refusal_inputs()
    channel, calls = _fill_queue(address, max_queue, image, opts)
    results = {}
    rss0 = rss_mib(pid)
    try:
        with grpc.insecure_channel(address) as ch:
            pb_grpc.VectorizerStub(ch).GetInfo(pb.GetInfoRequest(), timeout=10)  # connected before timing
            raw_call = ch.unary_stream("/lvss.v1.Vectorizer/Vectorize", request_serializer=None,
                                       response_deserializer=None)
            held = ch.stream_stream("/lvss.v1.Vectorizer/Vectorize", request_serializer=None,
                                    response_deserializer=None)
            print(f"refusal latency with the queue full ({max_queue} waiting behind the running job), "
                  f"{count} requests each:")
            print(f"{'input':>22} {'bytes':>10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'copy ms':>8}  codes")

            def measure(name: str, send, size: int, copy_ms: float) -> None:
                times, codes = [], {}
                for _ in range(count):
                    t0 = time.monotonic()
                    code = send()
                    times.append(time.monotonic() - t0)
                    codes[code] = codes.get(code, 0) + 1
                results[name] = (percentile(times, 0.5), percentile(times, 0.95), copy_ms / 1e3)
                print(f"{name:>22} {size:>10d} {results[name][0] * 1e3:>8.1f} {results[name][1] * 1e3:>8.1f} "
                      f"{max(times) * 1e3:>8.1f} {copy_ms:>8.1f}  {codes}")

            def send_raw(raw: bytes):
                def send() -> str:
                    try:
                        list(raw_call(raw, timeout=60))
                        return "OK"
                    except grpc.RpcError as e:
                        return e.code().name
                return send

            def send_headers() -> str:
                call = held(iter(()), timeout=10)  # ends its stream at once, with no message
                return call.code().name

            measure("headers only", send_headers, 0, 0.0)
            for name, data in inputs.items():
                raw = pb.VectorizeRequest(image=data, options=pb.VectorizeOptions(paths=8, work_size=64)
                                          ).SerializeToString()
                t0 = time.monotonic()
                bytearray(raw)
                copy_ms = (time.monotonic() - t0) * 1e3
                measure(name, send_raw(raw), len(raw), copy_ms)
        rss1 = rss_mib(pid)
    finally:
        for c in calls:
            c.cancel()
        channel.close()
    _wait_idle(address)
    rss2 = rss_mib(pid)
    if rss0 is not None and rss1 is not None:
        print(f"server RSS: {rss0:.1f} MiB before the refusals, {rss1:.1f} MiB after "
              f"({rss1 - rss0:+.1f} MiB, the running filler job included), {rss2:.1f} MiB once idle")
    return results


def _wait_idle(address: str, timeout: float = 60.0) -> None:
    from lvss.client import Client

    end = time.monotonic() + timeout
    with Client(address) as c:
        while time.monotonic() < end:
            info = c.info()
            if not info["busy"] and not info["queue_length"]:
                return
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", choices=("jobs", "bombs", "refusal", "hardening"), default="jobs")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=25, help="requests per client")
    ap.add_argument("--bombs", type=int, default=20, help="header-bomb jobs (bombs scenario)")
    ap.add_argument("--refusals", type=int, default=20, help="refused requests per input size")
    ap.add_argument("--server", help="HOST:PORT of a running server on loopback (default: start one)")
    ap.add_argument("--server-pid", type=int, help="pid of that server, for its memory figures")
    ap.add_argument("--pipeline", choices=("real", "scripted"), default="real")
    ap.add_argument("--max-queue", type=int, default=8, help="for the server this script starts "
                                                             "(tell it for --server in the refusal scenario)")
    ap.add_argument("--image", help="image file to send (default: an OpenMoji PNG or skimage astronaut)")
    ap.add_argument("--paths", type=int, default=8)
    ap.add_argument("--work-size", type=int, default=64)
    ap.add_argument("--structure-iters", type=int, default=10)
    ap.add_argument("--refine-iters", type=int, default=10)
    ap.add_argument("--max-seconds", type=float, default=600.0, help="stop sending after this much wall time")
    args = ap.parse_args(argv)
    if not 1 <= args.clients <= 32 or not 1 <= args.requests <= 1000:
        ap.error("--clients must be 1..32 and --requests 1..1000")
    if not 1 <= args.bombs <= 200 or not 1 <= args.refusals <= 200:
        ap.error("--bombs and --refusals must be 1..200")
    if args.scenario == "hardening":
        args.clients, args.requests = 1, 100

    from lvss.client import Client
    from server.app import is_loopback

    proc = None
    if args.server:
        if not is_loopback(args.server.rsplit(":", 1)[0]):
            ap.error("this benchmark only talks to servers on loopback (127.0.0.1, ::1, localhost)")
        address, pid = args.server, args.server_pid
    else:
        proc, address = start_server(args.pipeline, args.max_queue)
        pid = proc.pid
    image = Path(args.image).read_bytes() if args.image else default_image()
    extra = dict(structure_iters=args.structure_iters, refine_iters=args.refine_iters)
    opts = dict(paths=args.paths, work_size=args.work_size, extra=extra, timeout=300)
    figures = {}
    try:
        with Client(address) as c:
            info = c.info()
            t = time.monotonic()
            c.vectorize(image, **opts)  # warm-up: first-use costs are not part of the figures
            warm = time.monotonic() - t
        print(f"server {address} version {info['version']} device {info['device']} "
              f"pipeline {args.pipeline}; warm-up job {warm:.2f} s")
        if args.scenario in ("jobs", "hardening"):
            figures["jobs"] = run_jobs(address, pid, image, opts, args.clients, args.requests, args.max_seconds)
        if args.scenario in ("bombs", "hardening"):
            figures["bombs"] = run_bombs(address, pid, opts, args.bombs, args.max_seconds)
        if args.scenario in ("refusal", "hardening"):
            figures["refusal"] = run_refusals(address, pid, image, opts, args.refusals,
                                              info["limits"]["max_queue"])
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            proc.stdout.close()
    if args.scenario == "hardening":
        growth = figures["jobs"]["growth"]
        print(f"goal: RSS growth over {figures['jobs']['done']} jobs <= {RSS_GOAL_MIB:.0f} MiB: "
              f"{'met' if growth is not None and growth <= RSS_GOAL_MIB else 'MISSED'} "
              f"({growth:+.1f} MiB)" if growth is not None else "goal: RSS growth unknown (no pid)")
        refusal = figures["refusal"]
        over = {k: v for k, v in refusal.items() if v[1] > REFUSAL_P95_GOAL_S}
        print(f"goal: refusal p95 <= {REFUSAL_P95_GOAL_S * 1e3:.0f} ms for every input: "
              f"{'met' if not over else 'MISSED'} ({len(refusal) - len(over)} of {len(refusal)} within; "
              f"the server's own decision, headers only: p95 {refusal['headers only'][1] * 1e3:.1f} ms)")
        for name, (_, p95, copy_s) in over.items():
            print(f"  over: {name}: p95 {p95 * 1e3:.0f} ms, of which one copy of the message in the client "
                  f"takes {copy_s * 1e3:.0f} ms (the client library copies and sends it before it reads "
                  "the answer the server gave on the headers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
