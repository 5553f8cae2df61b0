"""Warm-server measurement: seconds from sending a request to its first ``preview`` event.

Starts ``lvss serve --device cpu --threads N`` on a free port (once: the server stays warm), sends one
warm-up request, then for every image (OpenMoji ``<code>_256.png``, bundled in tests/data/openmoji)
sends the request ``--calls`` times through ``lvss.client`` with ``on_preview`` and prints, per call:
seconds to the first progress event of the job (the server started work), to the first preview, the
previews received, and the request's total seconds (client side). Then the medians. The server is
stopped at the end (SIGTERM), also on errors.

    PYTHONPATH=. python bench/preview_latency.py [--images 1F344 1F339 1F3A8] [--quality fast]
                                                [--paths 64] [--calls 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "openmoji"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", nargs="+", default=["1F344", "1F339", "1F3A8"])
    p.add_argument("--quality", default="fast")
    p.add_argument("--paths", type=int, default=64)
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    from lvss.client import Client

    from serve_quality import local_server   # bench/serve_quality.py: the warm server both benchmarks use

    with local_server(args.threads) as (_, address):
        rows = []
        with Client(address) as client:
            def call(data: bytes) -> tuple:
                marks = {}
                t0 = time.perf_counter()

                def on_progress(ev) -> None:
                    if ev.stage != "queued":
                        marks.setdefault("start", time.perf_counter() - t0)

                def on_preview(ev) -> None:
                    marks.setdefault("preview", time.perf_counter() - t0)
                    marks["n"] = marks.get("n", 0) + 1

                client.vectorize(data, paths=args.paths, timeout=600, on_progress=on_progress,
                                 on_preview=on_preview, extra={"quality": args.quality})
                return marks.get("start"), marks.get("preview"), marks.get("n", 0), time.perf_counter() - t0

            call((DATA / f"{args.images[0]}_256.png").read_bytes())  # warm-up
            print(f"{'image':8} call  start_s  first_preview_s  previews  total_s")
            for code in args.images:
                data = (DATA / f"{code}_256.png").read_bytes()
                for k in range(args.calls):
                    start, first, n, total = call(data)
                    rows.append((first, total))
                    print(f"{code:8} {k + 1:4}  {start:7.3f}  {first:15.3f}  {n:8d}  {total:7.2f}")
        print(f"median first preview {statistics.median(r[0] for r in rows):.3f} s, "
              f"median total {statistics.median(r[1] for r in rows):.2f} s "
              f"({args.quality}, {args.paths} paths, {args.threads} thread(s))")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
