"""The local batch engine: worker processes on this machine.

Workers start from a fork server (``forkserver``; ``spawn`` where there is none) that has imported
torch and the pipeline's libraries once but run nothing, so no OpenMP or torch thread state is
inherited and a worker starts without paying the imports again. Each worker applies its share of the cores with :func:`lvss.threads.apply`, loads the stages and models once
(:func:`lvss.batch.warm_up`) and then vectorizes one image at a time, returning the SVG text to the
driver, which alone writes files. Workers ignore SIGINT (Ctrl-C reaches the whole process group; the
driver decides) and are terminated when the batch stops; a worker that dies (killed, out of memory)
turns its image into an error line and is replaced.
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import sys
import threading
import types
from collections import deque
from multiprocessing.connection import wait
from typing import Callable

from .work import BatchError, Job, one_line, process_path, warm_up
from ..config import ConfigError, VectorizeConfig

__all__ = ["plan_local", "run_local"]

_POLL_S = 0.2
# imported once by the fork server (imports only: no torch work happens before the fork)
_PRELOAD = ["lvss", "lvss.batch", "lvss.batch.local", "lvss.pipeline", "lvss.stages", "lvss.render", "lvss.svg", "lvss.layering",
            "lvss.compact", "torch._dynamo", "scipy.ndimage", "scipy.sparse.csgraph", "scipy.spatial",
            "scipy.cluster.vq", "skimage.measure", "skimage.segmentation", "skimage.morphology",
            "skimage.filters.rank", "skimage.draw", "skimage.transform", "skimage.metrics"]


def _context():
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)  # only takes effect when the server first starts
        return ctx
    return mp.get_context("spawn")


def plan_local(workers: int | None, threads: int | None, cfg: VectorizeConfig, jobs: int) -> tuple[int, int]:
    """(worker processes, torch threads each) so that workers x threads stays within the cores.

    Neither given: one worker per available core, ``threads.default_threads(workers)`` each (one
    thread; ``LVSS_THREADS`` overrides). Only threads given: cores // threads workers. Only workers
    given: ``default_threads(workers)``. With device "cuda" the default is one worker (they would all
    share the same GPU). Never more workers than images to do (at least one).
    """
    from .. import threads as th

    cores = th.available_cores()
    if workers is None:
        if cfg.device == "cuda":
            workers = 1
        elif threads is None:
            workers = cores
        else:
            workers = max(1, cores // threads)
    if threads is None:
        try:
            threads = th.default_threads(workers)
        except ValueError as e:  # a bad LVSS_THREADS
            raise BatchError(str(e)) from None
    return max(1, min(workers, jobs)), threads


@contextlib.contextmanager
def _without_main():
    """Start children without re-running the caller's ``__main__`` in them: workers need only lvss, and
    a script that calls ``lvss.batch`` at top level (no ``if __name__ == "__main__"`` guard) would
    otherwise start a batch inside every worker. The preparation data a new process receives is read
    from ``sys.modules["__main__"]`` during ``start()``, so a bare module stands in for it there."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


@contextlib.contextmanager
def _sigint_ignored():
    """Start children with SIGINT ignored (the disposition survives exec, and Python keeps an
    ignored SIGINT), so Ctrl-C never interrupts a worker half-way through its start-up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _worker_main(conn, cfg: VectorizeConfig, precision: int, threads: int) -> None:
    """Worker loop: ("ready", threads) or ("fatal", message) once, then ("done", index, fields, svg)
    per ("job", index, path, name) until None or the driver goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        from .. import threads as th

        n = th.apply(threads)
        warm_up(cfg)
    except (ConfigError, ValueError) as e:
        conn.send(("fatal", one_line(e)))
        return
    except Exception as e:
        conn.send(("fatal", one_line(f"a worker could not start: {type(e).__name__}: {e}")))
        return
    conn.send(("ready", n))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        _, index, path, name = msg
        fields, svg = process_path(path, name, cfg, precision)
        try:
            conn.send(("done", index, fields, svg))
        except (BrokenPipeError, OSError):
            return


class _Worker:
    def __init__(self, ctx, cfg: VectorizeConfig, precision: int, threads: int, number: int):
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, cfg, precision, threads), daemon=True,
                                name=f"lvss-batch-{number}")
        with _sigint_ignored(), _without_main():
            self.proc.start()
        child.close()
        self.conn = parent
        self.ready = False
        self.job: Job | None = None

    def stop(self, graceful: bool) -> None:
        if graceful and self.proc.is_alive():
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def run_local(jobs: list[Job], cfg: VectorizeConfig, precision: int, workers: int, threads: int,
              on_result: Callable[[Job, dict, str | None], None], stop: Callable[[], bool]) -> None:
    """Vectorize ``jobs`` on ``workers`` processes; ``on_result`` is called here, in the driver, for each
    finished image. Returns when all are done or ``stop()`` turns true (running images are abandoned)."""
    pool = _Pool(cfg, precision, threads, jobs, on_result, stop)
    finished = False
    try:
        finished = pool.run(workers)
    finally:
        pool.close(graceful=finished)


class _Pool:
    def __init__(self, cfg: VectorizeConfig, precision: int, threads: int, jobs: list[Job], on_result, stop):
        self.ctx = _context()
        self.cfg, self.precision, self.threads, self.on_result, self.stop = cfg, precision, threads, on_result, stop
        self.pending = deque(jobs)
        self.workers: list[_Worker] = []
        self.started = 0

    def spawn(self) -> None:
        self.started += 1
        self.workers.append(_Worker(self.ctx, self.cfg, self.precision, self.threads, self.started))

    def run(self, n: int) -> bool:
        """True when every job is done, False when stopped."""
        for _ in range(min(n, len(self.pending))):
            self.spawn()
        while self.workers and (self.pending or any(w.job for w in self.workers)):
            if self.stop():
                return False
            for w in self.workers:
                if w.ready and w.job is None and self.pending:
                    w.job = self.pending.popleft()
                    w.conn.send(("job", w.job.index, w.job.item.source, w.job.item.source))
            ready = wait([w.conn for w in self.workers] + [w.proc.sentinel for w in self.workers], timeout=_POLL_S)
            for w in list(self.workers):
                if w.conn in ready or w.proc.sentinel in ready:
                    if not self.collect(w):
                        return False
        return True

    def collect(self, w: _Worker) -> bool:
        """Read what worker ``w`` sent; handle its death. False when the batch must stop."""
        died = False
        try:
            while w.conn.poll():
                msg = w.conn.recv()
                if msg[0] == "ready":
                    w.ready = True
                elif msg[0] == "fatal":
                    raise BatchError(msg[1])
                elif msg[0] == "done":
                    job, w.job = w.job, None
                    self.on_result(job, msg[2], msg[3])
                    if self.stop():
                        return False
        except (EOFError, OSError):
            died = True
        if died or not w.proc.is_alive():
            self.died(w)
        return True

    def died(self, w: _Worker) -> None:
        """A worker process ended by itself (killed, out of memory): its image becomes an error line and
        another worker takes its place."""
        w.proc.join(1)
        code = w.proc.exitcode
        self.workers.remove(w)
        w.stop(graceful=False)
        if not w.ready:
            raise BatchError(f"a worker process failed to start (exit code {code}); run `lvss vectorize` on "
                             "one image to see why")
        if w.job is not None:
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            self.on_result(w.job, {"status": "error", "input_sha256": None, "seconds": None,
                                   "error": f"the worker process stopped ({how}) while vectorizing "
                                            f"{w.job.item.source}; it may have run out of memory"}, None)
        if self.pending:
            self.spawn()

    def close(self, graceful: bool) -> None:
        for w in self.workers:
            w.stop(graceful)
