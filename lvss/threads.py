"""Thread policy: how many CPU threads torch (and the BLAS/OpenMP pools under it) may use.

lvss mostly runs on small, shared machines (a laptop with an editor open, a 2-core CI box, a batch
of workers side by side). OpenMP's default is to busy-wait between parallel regions, so two
processes that each take every core spin against each other and both slow down several-fold. The
policy therefore

* makes idle OpenMP threads sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE``), set before torch is
  imported (the variable is read once, when the OpenMP runtime starts);
* uses ``threads`` intra-op threads when asked (``--threads N``), otherwise a default derived from
  the cores this process may run on, capped at 4 (the working images are small: beyond a few threads
  the parallel regions are too short to pay for themselves), and reduced to one thread when the
  machine is already busy (load average above the free cores);
* keeps torch's inter-op pool to one thread: lvss never runs independent graph branches.

Batch workers and server workers call :func:`apply` with their share of the cores, so
``workers x threads`` never exceeds the machine.
"""
from __future__ import annotations

import os

__all__ = ["available_cores", "default_threads", "apply", "prepare_environment", "MAX_DEFAULT_THREADS"]

MAX_DEFAULT_THREADS = 4
_applied: int | None = None


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
    """Set the OpenMP wait policy before the OpenMP runtime loads (no-op when the user chose one)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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
