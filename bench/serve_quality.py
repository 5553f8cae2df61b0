"""Warm-server benchmark: seconds per request on a running ``lvss serve``, per quality preset.

Starts ``lvss serve --device cpu --threads N`` on a free port (once: the server stays warm), then for
every image (OpenMoji ``<code>_256.png``) and preset sends the request ``--calls`` times through
``lvss.client`` (what ``lvss remote`` and the editors use) and prints, per call: the server's own
seconds (``Result.timings["total"]``: queue + pipeline + SVG), the CPU seconds the server process
used for it (``/proc/<pid>/stat``), the paths in the SVG and its PSNR against the image (resvg).
Then the median per preset. The server is stopped at the end (SIGTERM), also on errors.

    PYTHONPATH=. python bench/serve_quality.py [--images 1F344 2615 1F98A 1F3A8] [--quality fast balanced]
                                               [--paths 64] [--levels 3] [--calls 2] [--threads 1]
                                               [--against REV_OR_DIR]

``--against`` also starts a server from another source tree (a directory holding ``lvss`` and
``server``, or a git revision, checked out under the system's temporary folder) and sends every request
to both, taking turns (which goes first alternates), so both meet the same machine load; it prints
both medians (the client's wall seconds too) and whether their SVGs are byte-identical.

Wall seconds depend on what else the machine runs: the 1-minute load average is printed before and
after. On a busy machine the CPU seconds (one thread) are the fairer figure.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from trees import other_tree  # noqa: E402  (bench/trees.py)
DATA = Path(os.environ.get("LVSS_OPENMOJI", "/work/shared/data/openmoji"))


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _psnr(svg: str, png: Path) -> float:
    import numpy as np
    from PIL import Image

    from lvss.metrics import psnr
    from lvss.testing import resvg_render

    a = np.asarray(Image.open(png).convert("RGBA")).astype(np.float32) / 255
    ref = a[..., :3] * a[..., 3:] + (1 - a[..., 3:])  # over white, as resvg_render
    return psnr(resvg_render(svg, ref.shape[1], ref.shape[0]), ref)


@contextlib.contextmanager
def local_server(threads: int, root: Path = ROOT):
    """A warm ``python -m server`` (CPU, ``threads`` threads) of the source tree ``root`` on a free
    loopback port for a benchmark: yields (the process, its address) and stops it with SIGTERM at the
    end, also on errors."""
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               LVSS_THREADS=str(threads))
    server = subprocess.Popen([sys.executable, "-m", "server", "--port", "0", "--device", "cpu",
                               "--threads", str(threads), "--log-level", "WARNING"],
                              cwd=root, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        m = re.search(r"listening on \S+:(\d+)", line)
        if not m:
            raise SystemExit(f"the server did not start: {line!r}")
        print(f"load average before: {os.getloadavg()[0]:.2f}; server {line.strip()}")
        yield server, f"127.0.0.1:{m.group(1)}"
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _tree(rev_or_dir: str) -> Path:
    return other_tree(rev_or_dir, "--against", need_server=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", nargs="+", default=["1F344", "2615", "1F98A", "1F3A8"])
    p.add_argument("--quality", nargs="+", default=["fast", "balanced"])
    p.add_argument("--paths", type=int, default=64)
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--calls", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--against", metavar="REV_OR_DIR", help="also a server of another tree, taking turns")
    args = p.parse_args()

    from lvss.client import Client

    trees = [("this", ROOT)] + ([("other", _tree(args.against))] if args.against else [])
    with contextlib.ExitStack() as stack:
        servers = {tag: stack.enter_context(local_server(args.threads, root)) for tag, root in trees}
        clients = {tag: stack.enter_context(Client(addr)) for tag, (_, addr) in servers.items()}
        per = {(tag, q): {"total": [], "wall": [], "cpu": [], "psnr": []} for tag, _ in trees for q in args.quality}
        same = []
        print(f"{'image':8} {'quality':9} {'tree':5} call  server_s  client_s  cpu_s  paths  PSNR")
        turn = 0
        for code in args.images:
            png = DATA / f"{code}_256.png"
            data = png.read_bytes()
            for q in args.quality:
                for k in range(args.calls):
                    svgs = {}
                    for tag, _ in (trees if turn % 2 == 0 else trees[::-1]):
                        server = servers[tag][0]
                        c0 = _cpu_seconds(server.pid)
                        t0 = time.perf_counter()
                        r = clients[tag].vectorize(data, paths=args.paths, levels=args.levels, timeout=600,
                                                   extra={"quality": q})
                        wall = time.perf_counter() - t0
                        cpu = _cpu_seconds(server.pid) - c0
                        svgs[tag] = r.svg
                        db = _psnr(r.svg, png)
                        paths = sum(layer.paths for layer in r.layers)
                        total = r.timings["total"]
                        for key, v in (("total", total), ("wall", wall), ("cpu", cpu), ("psnr", db)):
                            per[(tag, q)][key].append(v)
                        print(f"{code:8} {q:9} {tag:5} {k + 1:4}  {total:8.2f}  {wall:8.2f}  {cpu:5.2f}  {paths:5}  {db:.2f}")
                    turn += 1
                    if len(svgs) == 2:
                        same.append(svgs["this"] == svgs["other"])
        for (tag, q), v in per.items():
            print(f"median {q} ({tag}): server {statistics.median(v['total']):.2f} s, client "
                  f"{statistics.median(v['wall']):.2f} s, CPU {statistics.median(v['cpu']):.2f} s, "
                  f"PSNR {statistics.median(v['psnr']):.2f} dB")
        if same:
            print(f"byte-identical SVGs: {sum(same)} of {len(same)} requests")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
