"""Thread policy: how many CPU threads torch (and the BLAS/OpenMP pools under it) may use.

lvss mostly runs on small, shared machines (a laptop with an editor open, a 2-core CI box, a batch
of workers side by side). OpenMP's default is to busy-wait between parallel regions, so two
processes that each take every core spin against each other and both slow down several-fold. The
policy therefore

* makes idle OpenMP threads sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE``), set before torch is
  imported (the variable is read once, when the OpenMP runtime starts);
* gives numpy's and scipy's BLAS one thread (``OPENBLAS_NUM_THREADS=1``): lvss's own BLAS work is
  small (colour solves of a few hundred unknowns, contour fits), and a pool the size of the machine
  would only compete with torch's threads and other processes for the cores. OpenBLAS reads the
  variable once, when numpy loads, so it is set before numpy's import; where numpy is already loaded,
  ``threadpoolctl`` (when installed) limits the pool at run time instead;
* uses ``threads`` intra-op threads when asked (``--threads N``), otherwise a default derived from
  the cores this process may run on, capped at 4 (the working images are small: beyond a few threads
  the parallel regions are too short to pay for themselves), and reduced to one thread when the
  machine is already busy (load average above the free cores);
* keeps torch's inter-op pool to one thread: lvss never runs independent graph branches.

Nothing happens on import (``import lvss`` leaves the host process alone). The entry points apply
the policy: the ``lvss`` command calls :func:`prepare_environment` first thing in ``main`` (before
numpy or torch load) and :func:`apply` before it runs a job; ``lvss serve`` does the same before it
loads the pipeline; batch workers (processes of their own) call :func:`apply` with their share of the
cores, so ``workers x threads`` never exceeds the machine. A program that uses lvss as a library
keeps its own settings unless it calls these itself. A value the user set for either variable is kept.
"""
from __future__ import annotations

import os

import sys

__all__ = ["available_cores", "default_threads", "apply", "prepare_environment", "MAX_DEFAULT_THREADS",
           "ENVIRONMENT"]

MAX_DEFAULT_THREADS = 4
# what the entry points set in their own process (os.environ.setdefault: a user's value wins)
ENVIRONMENT = {
    "OMP_WAIT_POLICY": "PASSIVE",      # idle OpenMP threads sleep; read when the OpenMP runtime starts
    "OPENBLAS_NUM_THREADS": "1",       # numpy's / scipy's BLAS pool; read when numpy loads
}
_applied: int | None = None
_blas_limiter = None  # threadpoolctl's limiter, kept alive while the process runs


def available_cores() -> int:
    """CPU cores this process may run on (affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(workers: int = 1) -> int:
    """Threads per process when ``workers`` lvss processes share this machine and none was asked for.

    ``LVSS_THREADS`` overrides the default. With a single worker, the cores not already busy (by
    the 1-minute load average) are used, at least one and at most :data:`MAX_DEFAULT_THREADS`.
    """
    env = os.environ.get("LVSS_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"LVSS_THREADS must be a positive integer, got {env!r}") from None
        if n <= 0:
            raise ValueError(f"LVSS_THREADS must be a positive integer, got {n}")
        return n
    cores = available_cores()
    share = max(1, cores // max(1, workers))
    if workers <= 1:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
        free = int(cores - load + 0.5)
        share = max(1, min(share, free))
    return max(1, min(share, MAX_DEFAULT_THREADS))


def prepare_environment() -> None:
    """Entry points only: set :data:`ENVIRONMENT` in this process (a value the user set is kept).

    Call it before numpy and torch are imported; the variables are read once, when they load. Where
    numpy is loaded already, the BLAS pool is limited at run time (:func:`_limit_blas`) instead.
    """
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if "numpy" in sys.modules:
        _limit_blas()


def _limit_blas() -> None:
    """numpy was loaded before the policy: its BLAS pool already has its size; threadpoolctl (when
    installed) brings it down to ``OPENBLAS_NUM_THREADS`` threads. Without threadpoolctl: no-op."""
    global _blas_limiter
    if _blas_limiter is not None:
        return
    try:
        n = int(os.environ.get("OPENBLAS_NUM_THREADS", ENVIRONMENT["OPENBLAS_NUM_THREADS"]))
        from threadpoolctl import threadpool_limits
    except (ImportError, ValueError):
        return
    if n > 0:
        _blas_limiter = threadpool_limits(limits=n, user_api="blas")


def apply(threads: int | None = None, workers: int = 1) -> int:
    """Apply the policy to this process (idempotent); returns the intra-op thread count used."""
    global _applied
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads <= 0):
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    n = threads if threads is not None else default_threads(workers)
    prepare_environment()
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if _applied is None:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set, or inter-op work already started in this process
            pass
    _applied = n
    return n
