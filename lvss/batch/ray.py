"""The Ray batch engine: long-lived actors on a Ray cluster (``pip install 'lvss[ray]'``).

Each actor reserves ``threads`` CPUs (and ``gpus_per_worker`` GPUs, default 1, with device "cuda";
Ray then sets its ``CUDA_VISIBLE_DEVICES``), applies the thread policy, and loads the stages and models
once in its constructor; images are then sent to it one after another (two in flight per actor, so
the next image is already there when one finishes). Every node needs lvss installed.

Where images are read:

* ``ray_read="driver"`` (default): the driver reads each file and sends its bytes through Ray's
  object store; the input folder only has to exist on the driver's machine;
* ``ray_read="shared"``: actors get absolute paths and read the files themselves; use it when every
  node sees the same storage (NFS, a cluster file system), so the driver does not ship the bytes.

SVG text always comes back to the driver, which writes OUT_DIR and the manifest. An actor whose
process dies is restarted by Ray and its image retried (``max_restarts``/``max_task_retries``); an
image that still fails becomes an error line and the actor is replaced, so the batch goes on.
"""
from __future__ import annotations

import logging
import os
from typing import Callable

from .work import BatchError, Job, one_line, process_bytes, process_path, warm_up
from ..config import ConfigError, VectorizeConfig

__all__ = ["connect", "RaySession", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'lvss[ray]' (or pip install 'ray>=2.60')"
_POLL_S = 0.2
_IN_FLIGHT = 2
_RESTARTS = 2


class _RayWorker:
    """The actor: one config, stages and models loaded once."""

    def __init__(self, cfg: VectorizeConfig, precision: int, threads: int):
        self.cfg, self.precision, self.threads, self.fatal = cfg, precision, threads, None
        try:
            from .. import threads as th

            self.threads = th.apply(threads)
            warm_up(cfg)
        except (ConfigError, ValueError) as e:
            self.fatal = one_line(e)
        except Exception as e:
            self.fatal = one_line(f"a Ray worker could not start: {type(e).__name__}: {e}")

    def ready(self) -> tuple[str, object]:
        if self.fatal:
            return "fatal", self.fatal
        return "ready", {"pid": os.getpid(), "threads": self.threads}

    def run_bytes(self, data: bytes, name: str):
        return process_bytes(data, name, self.cfg, self.precision)

    def run_path(self, path: str, name: str):
        return process_path(path, name, self.cfg, self.precision)


def connect(address: str | None) -> "RaySession":
    """Use the Ray this process is already connected to, or ``ray.init(address)`` (None: ``RAY_ADDRESS``,
    else the latest cluster started on this machine, else a new local Ray)."""
    try:
        import ray
    except ImportError:
        raise BatchError(f"the Ray engine needs Ray, which is not installed: {INSTALL_HINT}") from None
    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=address or None, include_dashboard=False, logging_level=logging.ERROR,
                     configure_logging=True)
        except Exception as e:  # ConnectionError, ValueError, RuntimeError from Ray's own checks
            where = address or os.environ.get("RAY_ADDRESS") or "a local Ray"
            raise BatchError(one_line(f"cannot start or reach Ray ({where}): {e}")) from None
        started = True
    return RaySession(ray, started)


class RaySession:
    def __init__(self, ray, started: bool):
        self.ray = ray
        self.started = started
        self.actors: list = []

    def plan(self, workers: int | None, threads: int | None, cfg: VectorizeConfig,
             gpus_per_worker: float | None, jobs: int) -> tuple[int, int]:
        """(actors, threads each): by default as many single-thread actors as the cluster has CPUs, or
        with device "cuda" as many as its GPUs hold at ``gpus_per_worker`` each."""
        res = self.ray.cluster_resources()
        cpus, gpus = float(res.get("CPU", 0)), float(res.get("GPU", 0))
        threads = threads or 1
        if cfg.device == "cuda":
            g = gpus_per_worker or 1.0
            if gpus < g:
                raise BatchError(f"--device cuda: the Ray cluster has {gpus:g} GPUs and each worker asks for "
                                 f"{g:g}; add GPU nodes, lower --gpus-per-worker or use --device cpu")
            default = int(gpus // g)
        else:
            if cpus < threads:
                raise BatchError(f"each Ray worker asks for {threads} CPUs but the cluster has {cpus:g}; "
                                 "lower --threads")
            default = int(cpus // threads)
        return max(1, min(workers or default, jobs)), threads

    def run(self, jobs: list[Job], cfg: VectorizeConfig, precision: int, workers: int, threads: int,
            gpus_per_worker: float | None, ray_read: str, on_result: Callable[[Job, dict, str | None], None],
            stop: Callable[[], bool]) -> None:
        """Vectorize ``jobs`` on ``workers`` actors; ``on_result`` is called here, in the driver, for each
        finished image. Returns when all are done or ``stop()`` turns true."""
        opts = {"num_cpus": threads, "max_restarts": _RESTARTS, "max_task_retries": _RESTARTS}
        if cfg.device == "cuda":
            opts["num_gpus"] = gpus_per_worker or 1.0
        cls = self.ray.remote(_RayWorker).options(**opts)

        def new_actor():
            a = cls.remote(cfg, precision, threads)
            self.actors.append(a)
            return a

        _Scheduler(self.ray, new_actor, jobs, workers, ray_read, on_result, stop).run()

    def close(self) -> None:
        for a in self.actors:
            try:
                self.ray.kill(a, no_restart=True)
            except Exception:  # already dead, or the connection is gone
                pass
        self.actors.clear()
        if self.started:
            self.ray.shutdown()
            self.started = False


class _Scheduler:
    """Feeds images to actors (``_IN_FLIGHT`` each) and turns every outcome into an ``on_result`` call."""

    def __init__(self, ray, new_actor, jobs: list[Job], workers: int, ray_read: str, on_result, stop):
        self.ray, self.new_actor, self.workers, self.ray_read = ray, new_actor, workers, ray_read
        self.on_result, self.stop = on_result, stop
        self.pending = list(reversed(jobs))  # next job last
        self.inflight: dict = {}  # object ref -> (actor, job, or None for the actor's ready call)
        self.load: dict = {}  # live actor -> images in flight (None until it is ready)
        self.replacements_left = 2 * workers
        self.requeued: set[int] = set()

    def run(self) -> None:
        for _ in range(self.workers):
            self.start_actor()
        while self.inflight:
            if self.stop():
                return
            done, _ = self.ray.wait(list(self.inflight), num_returns=1, timeout=_POLL_S)
            for ref in done:
                a, job = self.inflight.pop(ref)
                try:
                    out = self.ray.get(ref)
                except self.ray.exceptions.RayError as e:
                    self.failed(a, job, e)
                    continue
                if job is None:
                    if out[0] == "fatal":
                        raise BatchError(out[1])
                    self.load[a] = 0
                else:
                    self.load[a] -= 1
                    self.on_result(job, out[0], out[1])
                    if self.stop():
                        return
                self.feed(a)
            if self.pending and not self.load and not self.inflight:
                raise BatchError("every Ray worker has died; see the Ray logs (ray status, /tmp/ray/session_latest)")

    def start_actor(self) -> None:
        a = self.new_actor()
        self.load[a] = None
        self.inflight[a.ready.remote()] = (a, None)

    def feed(self, a) -> None:
        """Send images to actor ``a`` until it has ``_IN_FLIGHT`` of them."""
        while self.pending and self.load.get(a) is not None and self.load[a] < _IN_FLIGHT:
            job = self.pending.pop()
            src = job.item.source
            if self.ray_read == "shared":
                ref = a.run_path.remote(os.path.abspath(src), src)
            else:
                try:
                    with open(src, "rb") as f:
                        data = f.read()
                except OSError as e:
                    self.on_result(job, {"status": "error", "input_sha256": None, "seconds": 0.0,
                                         "error": one_line(f"cannot read {src}: {e.strerror or e}")}, None)
                    continue
                ref = a.run_bytes.remote(data, src)
            self.inflight[ref] = (a, job)
            self.load[a] += 1

    def failed(self, a, job: Job | None, e: Exception) -> None:
        """A Ray failure (after Ray's own restarts and retries): an error line, and a new actor in place
        of a dead one, so the rest of the batch goes on."""
        msg = one_line(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
        if job is None:  # the actor could not even be created (lvss missing on a node, ...)
            raise BatchError(f"a Ray worker could not start: {type(e).__name__}: {msg}") from None
        dead = isinstance(e, self.ray.exceptions.RayActorError)
        if dead and a not in self.load and job.index not in self.requeued:
            # queued behind the image that killed this actor: innocent, try it elsewhere
            self.requeued.add(job.index)
            self.pending.append(job)
        else:
            self.on_result(job, {"status": "error", "input_sha256": None, "seconds": None,
                                 "error": f"Ray could not vectorize {job.item.source}: {type(e).__name__}: {msg}"},
                           None)
        if dead and a in self.load:
            del self.load[a]
            if self.pending and self.replacements_left > 0:
                self.replacements_left -= 1
                self.start_actor()
        elif not dead and self.load.get(a):
            self.load[a] -= 1
        for b in list(self.load):
            self.feed(b)
