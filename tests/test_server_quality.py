"""The quality preset on the server: VectorizeOptions.quality, ``lvss serve --quality`` (the default
for requests naming none) and GetInfo's list of presets.

The preset's values are read from :data:`lvss.config.QUALITY_PRESETS` through
:func:`lvss.config.apply_quality`, never copied here, so these tests follow the presets when they are
retuned. Requests run on the scripted pipeline double of tests/test_server.py.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lvss._proto import vectorizer_pb2 as pb  # noqa: E402
from lvss.config import QUALITY_PRESETS, VectorizeConfig, apply_quality  # noqa: E402
from server.service import Limits, RequestError, config_from_request  # noqa: E402
from test_server import ServerProc, collect, png_bytes, stub_for, wait_idle  # noqa: E402


def _req(**options) -> pb.VectorizeRequest:
    return pb.VectorizeRequest(image=b"x", options=pb.VectorizeOptions(**options))


def _effort(cfg: VectorizeConfig) -> tuple:
    o = cfg.optimize
    return (o.structure_iters, o.structure_scale, o.refine_iters, o.refine_scale, o.refine_rounds,
            o.refill_rounds, o.freeze_structure_colours, o.polish_iters)


def _preset(name: str) -> VectorizeConfig:
    return apply_quality(VectorizeConfig(), name)


@pytest.mark.parametrize("name", list(QUALITY_PRESETS))
def test_request_quality_sets_budget_size_and_effort(name):
    cfg = config_from_request(_req(quality=name), Limits(), "cpu")
    want = _preset(name)
    assert (cfg.paths, cfg.work_size) == (want.paths, want.work_size)
    assert _effort(cfg) == _effort(want)


def test_presets_differ_in_effort():
    """The tests above would pass vacuously if the presets were all the same."""
    assert len({_effort(_preset(n)) for n in QUALITY_PRESETS}) == len(QUALITY_PRESETS)
    assert _preset("fast").optimize.refine_iters < _preset("best").optimize.refine_iters


def test_server_default_applies_when_the_request_names_none():
    for default in QUALITY_PRESETS:
        cfg = config_from_request(_req(), Limits(), "cpu", quality=default)
        assert _effort(cfg) == _effort(_preset(default)) and cfg.paths == _preset(default).paths
    # a request's own quality wins over the server's default, also back to balanced
    cfg = config_from_request(_req(quality="balanced"), Limits(), "cpu", quality="fast")
    assert _effort(cfg) == _effort(_preset("balanced"))


def test_explicit_options_win_over_the_preset():
    cfg = config_from_request(_req(quality="fast", paths=17, work_size=96), Limits(), "cpu")
    fast = _preset("fast")
    assert (cfg.paths, cfg.work_size) == (17, 96) and fast.paths != 17
    assert _effort(cfg) == _effort(fast)  # the effort still comes from the preset
    cfg = config_from_request(_req(quality="best", refine_iters=3, structure_iters=4), Limits(), "cpu")
    best = _preset("best")
    assert (cfg.optimize.structure_iters, cfg.optimize.refine_iters) == (4, 3)
    assert cfg.optimize.polish_iters == best.optimize.polish_iters and cfg.paths == best.paths


def test_preset_budget_is_capped_at_the_servers_limit():
    small = Limits(max_paths=min(p["paths"] for p in QUALITY_PRESETS.values()) - 1)
    for name in QUALITY_PRESETS:
        assert config_from_request(_req(quality=name), small, "cpu").paths == small.max_paths
    with pytest.raises(RequestError, match="paths must be an integer between 1 and"):
        config_from_request(_req(quality="fast", paths=small.max_paths + 1), small, "cpu")


@pytest.mark.parametrize("bad", ["ultra", "", "Fast", "fast "])
def test_unknown_quality_is_invalid_argument(bad):
    with pytest.raises(RequestError) as e:
        config_from_request(_req(quality=bad), Limits(), "cpu")
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(e.value) == f"quality must be one of {', '.join(QUALITY_PRESETS)}, got {bad!r}"


def _logged(server: ServerProc, job_id: str) -> dict:
    line = server.wait_log(rf"job {job_id} .* outcome=ok").group(0)
    return dict(re.findall(r"(\w+)=(\S+)", line))


def test_serve_quality_flag_sets_the_default_and_requests_override_it():
    s = ServerProc("--quality", "fast", "--max-paths", "100")
    try:
        assert "quality=fast" in s.wait_log(r"serving on .*").group(0)
        channel, stub = stub_for(s)
        info = stub.GetInfo(pb.GetInfoRequest(), timeout=10)
        assert (list(info.qualities), info.default_quality) == (list(QUALITY_PRESETS), "fast")
        fast, best = _preset("fast"), _preset("best")
        # no quality: the server's fast; structure_iters kept small (each step of the double takes 10 ms)
        opts = dict(structure_iters=2, work_size=32)
        events, code, details = collect(stub, pb.VectorizeRequest(image=png_bytes(),
                                                                   options=pb.VectorizeOptions(**opts)))
        assert code == grpc.StatusCode.OK, details
        log = _logged(s, events[-1][1].job_id)
        assert log["quality"] == "fast" and log["paths"] == str(min(fast.paths, 100))
        assert log["iters"] == f"2/{fast.optimize.refine_iters}"
        assert log["polish"] == str(fast.optimize.polish_iters)
        assert sum(layer.path_count for layer in events[-1][1].layers) == min(fast.paths, 100)
        # the request's quality wins; the preset's budget over --max-paths is lowered to it
        events, code, details = collect(stub, pb.VectorizeRequest(
            image=png_bytes(), options=pb.VectorizeOptions(quality="best", **opts)))
        assert code == grpc.StatusCode.OK, details
        log = _logged(s, events[-1][1].job_id)
        assert log["quality"] == "best" and log["paths"] == str(min(best.paths, 100))
        assert log["iters"] == f"2/{best.optimize.refine_iters}"
        assert log["polish"] == str(best.optimize.polish_iters)
        events, code, details = collect(stub, pb.VectorizeRequest(
            image=png_bytes(), options=pb.VectorizeOptions(quality="turbo", **opts)))
        assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT,
                                   f"quality must be one of {', '.join(QUALITY_PRESETS)}, got 'turbo'")
        wait_idle(stub)
        channel.close()
    finally:
        assert s.stop() == 0


def test_serve_refuses_an_unknown_default_quality():
    import subprocess

    r = subprocess.run([sys.executable, "-m", "server", "--quality", "ultra"], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parent.parent, timeout=60)
    assert r.returncode == 2 and "--quality: invalid choice: 'ultra'" in r.stderr
