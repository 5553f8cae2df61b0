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


def test_importing_lvss_makes_openmp_threads_sleep():
    code = "import os, lvss; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"   # a user's own choice wins
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == "ACTIVE"


def test_importing_lvss_first_keeps_numpy_blas_to_one_thread():
    """numpy's BLAS pool reads its size when numpy loads: lvss imported first makes it one thread
    (its matrices are small), and a user's own setting wins."""
    code = "import os, lvss, numpy; print(os.environ.get('OPENBLAS_NUM_THREADS'))"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == "1", out.stderr
    env["OPENBLAS_NUM_THREADS"] = "2"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == "2", out.stderr


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
