"""Thread policy (lvss.threads) and the --quality presets."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lvss import threads
from lvss.cli import build_parser, config_from_args
from lvss.config import QUALITY_PRESETS, ConfigError, VectorizeConfig, apply_quality


def test_default_threads_respects_env_and_cores(monkeypatch):
    monkeypatch.setenv("LVSS_THREADS", "3")
    assert threads.default_threads() == 3
    monkeypatch.setenv("LVSS_THREADS", "zero")
    with pytest.raises(ValueError, match="LVSS_THREADS"):
        threads.default_threads()
    monkeypatch.setenv("LVSS_THREADS", "0")
    with pytest.raises(ValueError, match="positive"):
        threads.default_threads()
    monkeypatch.delenv("LVSS_THREADS")
    n = threads.default_threads()
    assert 1 <= n <= min(threads.available_cores(), threads.MAX_DEFAULT_THREADS)
    # workers share the cores: never more than cores // workers each (at least one)
    assert threads.default_threads(workers=64) == 1


def test_apply_sets_torch_threads_and_refuses_bad_counts():
    import torch

    before = torch.get_num_threads()
    try:
        assert threads.apply(1) == 1 and torch.get_num_threads() == 1
        for bad in (0, -2, 1.5, True):
            with pytest.raises(ValueError):
                threads.apply(bad)
    finally:
        torch.set_num_threads(before)


POLICY_VARS = ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS")

# prints the policy's variables and the size of numpy's OpenBLAS pool as OpenBLAS itself reports it
# ("?" where numpy's OpenBLAS cannot be found), after the code in {0} ran in a fresh interpreter
_PROBE = """
import ctypes, glob, os, sys
{0}
import numpy
blas = "?"
for lib in glob.glob(os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs", "*openblas*")):
    for sym in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
        f = getattr(ctypes.CDLL(lib), sym, None)
        if f is not None:
            blas = str(f())
            break
print(os.environ.get("OMP_WAIT_POLICY"), os.environ.get("OPENBLAS_NUM_THREADS"), blas)
"""


def _probe(code: str, **env_vars) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in POLICY_VARS}
    env.update(env_vars)
    out = subprocess.run([sys.executable, "-c", _PROBE.format(code)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[-1].split()


def test_importing_lvss_changes_no_environment_variable():
    code = ("import os; before = dict(os.environ); import lvss, lvss.client, lvss.cli, lvss.threads, "
            "lvss.config, lvss.batch; from lvss import client; assert dict(os.environ) == before, "
            "set(os.environ.items()) ^ set(before.items())")
    for env_vars in ({}, {"OMP_WAIT_POLICY": "ACTIVE", "OPENBLAS_NUM_THREADS": "2"}):
        env = {k: v for k, v in os.environ.items() if k not in POLICY_VARS}
        env.update(env_vars)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
    # the library alone: numpy's BLAS keeps its own default, the policy's variables stay unset
    assert _probe("import lvss, lvss.client")[:2] == ["None", "None"]


def test_cli_entry_point_applies_the_policy_before_numpy_loads():
    """`lvss` (lvss.cli:main) sets the policy first: idle OpenMP threads sleep, and numpy's BLAS pool,
    sized when numpy loads, has one thread (lvss's matrices are small); a user's own values win."""
    code = ("from lvss import cli\n"
            "assert 'numpy' not in sys.modules and 'torch' not in sys.modules  # main() comes first\n"
            "try:\n    cli.main(['--version'])\nexcept SystemExit:\n    pass")
    policy, blas_env, blas = _probe(code)
    assert (policy, blas_env) == ("PASSIVE", "1")
    assert blas in ("1", "?")
    policy, blas_env, blas = _probe(code, OMP_WAIT_POLICY="ACTIVE", OPENBLAS_NUM_THREADS="2")
    assert (policy, blas_env) == ("ACTIVE", "2") and blas in ("2", "?")


def test_server_and_worker_start_apply_the_policy():
    """`lvss serve` (server.cli.run) sets the policy before it loads the server (numpy, torch);
    lvss.threads.apply, which every batch worker calls first, does too."""
    import lvss

    root = repr(os.path.dirname(os.path.dirname(os.path.abspath(lvss.__file__))))
    serve = (f"sys.path.insert(0, {root})\n"
             "from server import cli\n"
             "assert cli.main(['--host', '0.0.0.0', '--port', '0']) == 2  # refused (no token), after loading")
    policy, blas_env, blas = _probe(serve)
    assert (policy, blas_env) == ("PASSIVE", "1") and blas in ("1", "?")
    policy, blas_env, blas = _probe("from lvss import threads\nthreads.apply(1)")
    assert (policy, blas_env) == ("PASSIVE", "1") and blas in ("1", "?")


def _args(*argv):
    return build_parser().parse_args(["vectorize", "in.png", "-o", "out.svg", *argv])


def test_quality_presets_set_budget_and_effort_unless_given():
    fast = config_from_args(_args("--quality", "fast"))
    best = config_from_args(_args("--quality", "best"))
    bal = config_from_args(_args())
    assert (fast.paths, bal.paths, best.paths) == (64, 128, 256)
    assert fast.optimize.refine_iters < bal.optimize.refine_iters <= best.optimize.refine_iters
    assert bal.optimize == VectorizeConfig().optimize   # balanced is the library's default
    given = config_from_args(_args("--quality", "fast", "--paths", "200", "--work-size", "128"))
    assert (given.paths, given.work_size) == (200, 128)
    assert given.optimize.refine_iters == QUALITY_PRESETS["fast"]["optimize"]["refine_iters"]
    # the fast preset simplifies into fewer levels, unless --levels says otherwise
    assert (fast.simplify.levels, bal.simplify.levels) == (QUALITY_PRESETS["fast"]["levels"], 4)
    assert config_from_args(_args("--quality", "fast", "--levels", "5")).simplify.levels == 5
    assert apply_quality(VectorizeConfig(), "fast").simplify.levels == 4   # library call: levels kept
    with pytest.raises(ConfigError, match="quality"):
        apply_quality(VectorizeConfig(), "ultra")


def test_threads_flag_is_validated():
    with pytest.raises(SystemExit) as e:
        _args("--threads", "0")
    assert e.value.code == 2
    assert _args("--threads", "2").threads == 2
