"""Load test of the lvss gRPC server on loopback: N clients × M requests each.

    PYTHONPATH=. python bench/load.py --clients 4 --requests 25            # starts its own server
    PYTHONPATH=. python bench/load.py --pipeline scripted --clients 8 --requests 50
    PYTHONPATH=. python bench/load.py --server 127.0.0.1:50051 --server-pid 1234

Prints throughput, p50/p95 latency of finished jobs, outcome counts, and the server's resident
memory (VmRSS) after a warm-up job, during the run and at the end, so growth across many jobs shows.
``--pipeline scripted`` runs the server with the scripted pipeline double of tests/test_server.py
(10 ms per step), which isolates the server's own costs (queue, transport, memory) from the pipeline.
Bounded: at most 32 clients, 1000 requests each, and --max-seconds of wall time (default 600);
refuses non-loopback servers.
"""
from __future__ import annotations

import argparse
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


def rss_mib(pid: int) -> float | None:
    """Resident set size of a process in MiB (Linux /proc), None when unavailable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


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
    import io

    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((256, 256)).save(buf, format="PNG")
    return buf.getvalue()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=25, help="requests per client")
    ap.add_argument("--server", help="HOST:PORT of a running server on loopback (default: start one)")
    ap.add_argument("--server-pid", type=int, help="pid of that server, for its memory figures")
    ap.add_argument("--pipeline", choices=("real", "scripted"), default="real")
    ap.add_argument("--max-queue", type=int, default=8, help="for the server this script starts")
    ap.add_argument("--image", help="image file to send (default: an OpenMoji PNG or skimage astronaut)")
    ap.add_argument("--paths", type=int, default=8)
    ap.add_argument("--work-size", type=int, default=64)
    ap.add_argument("--structure-iters", type=int, default=10)
    ap.add_argument("--refine-iters", type=int, default=10)
    ap.add_argument("--max-seconds", type=float, default=600.0, help="stop sending after this much wall time")
    args = ap.parse_args(argv)
    if not 1 <= args.clients <= 32 or not 1 <= args.requests <= 1000:
        ap.error("--clients must be 1..32 and --requests 1..1000")

    from lvss.client import Client, ClientError
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
    try:
        with Client(address) as c:
            info = c.info()
            t = time.monotonic()
            c.vectorize(image, **opts)  # warm-up: first-use costs are not part of the figures
            warm = time.monotonic() - t
        rss0 = rss_mib(pid) if pid else None
        print(f"server {address} version {info['version']} device {info['device']} "
              f"pipeline {args.pipeline}; warm-up job {warm:.2f} s")
        latencies: list[float] = []
        outcomes: dict[str, int] = {}
        rss_trace: list[tuple[int, float]] = []
        lock = threading.Lock()
        deadline = time.monotonic() + args.max_seconds

        def worker(i: int) -> None:
            with Client(address) as c:
                for k in range(args.requests):
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
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t_start
        rss1 = rss_mib(pid) if pid else None
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            proc.stdout.close()

    done = len(latencies)
    print(f"{args.clients} clients x {args.requests} requests, image {len(image)} bytes, paths {args.paths}, "
          f"work_size {args.work_size}, iters {args.structure_iters}/{args.refine_iters}")
    print(f"{'finished':>10} {'wall s':>8} {'jobs/s':>8} {'p50 s':>8} {'p95 s':>8}  outcomes")
    print(f"{done:>10d} {wall:>8.1f} {done / wall:>8.2f} {percentile(latencies, 0.5):>8.3f} "
          f"{percentile(latencies, 0.95):>8.3f}  {dict(sorted(outcomes.items()))}")
    if rss0 is not None and rss1 is not None:
        print(f"server RSS: {rss0:.1f} MiB after warm-up, {rss1:.1f} MiB after {done} jobs "
              f"(growth {rss1 - rss0:+.1f} MiB)")
        if rss_trace:
            step = max(1, len(rss_trace) // 10)
            print("RSS trace (jobs done: MiB): " + ", ".join(f"{n}: {r:.1f}" for n, r in rss_trace[::step]))
            n0, r0 = rss_trace[0]
            print(f"steady-state growth from job {n0} to {done}: {rss1 - r0:+.1f} MiB "
                  f"({(rss1 - r0) * 1024 / max(1, done - n0):+.1f} KiB/job)")
    else:
        print("server RSS: unknown (pass --server-pid for a server this script did not start)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
