"""lvss.config: every field declares its range or choices once (dataclass field metadata), and one
function (:func:`lvss.config.check`) validates every field from it."""
from __future__ import annotations

import math
from dataclasses import fields, replace

import pytest

from lvss import config as C
from lvss.config import ConfigError, VectorizeConfig

SECTIONS = (C.SimplifyConfig, C.SegmentConfig, C.SaliencyConfig, C.OptimizeConfig, C.CompactConfig)
KINDS = {"int", "float", "choice", "bool", "text", "float_pair", "int_tuple"}


def _all_fields():
    """(section attribute or None, field) for every leaf field of VectorizeConfig."""
    out = [(None, f) for f in fields(VectorizeConfig) if f.metadata]
    for f in fields(VectorizeConfig):
        if not f.metadata:
            out += [(f.name, g) for g in fields(C._SECTIONS[f.name])]
    return out


FIELDS = _all_fields()
IDS = [f"{sec}.{f.name}" if sec else f.name for sec, f in FIELDS]


def _with(sec, name, value) -> VectorizeConfig:
    cfg = VectorizeConfig()
    if sec is None:
        return replace(cfg, **{name: value})
    return replace(cfg, **{sec: replace(getattr(cfg, sec), **{name: value})})


def test_every_field_declares_what_it_accepts():
    assert {f.name for f in fields(VectorizeConfig) if not f.metadata} == set(C._SECTIONS)
    assert len(FIELDS) == sum(len(fields(s)) for s in SECTIONS) + 5
    for sec, f in FIELDS:
        m = f.metadata
        assert m["kind"] in KINDS, f.name
        assert m["help"], f.name
        if m["kind"] in ("int", "float", "float_pair", "int_tuple"):
            lo, hi = m["range"]
            assert lo < hi, f.name
        if m["kind"] == "choice":
            assert isinstance(m["choices"], tuple) and f.default in m["choices"], f.name
        C.check(VectorizeConfig())  # every default is within its own declaration


def _outside(m):
    """Values just outside a field's declaration (and kinds of wrong values)."""
    kind = m["kind"]
    if kind == "int":
        lo, hi = m["range"]
        return [lo - 1, hi + 1, float(lo), True, "1", None]
    if kind == "float":
        lo, hi = m["range"]
        bad = [math.nan, math.inf, -math.inf, "0.5", True] + ([] if m.get("optional") else [None])
        if lo > -math.inf:
            bad.append(lo if m["open"][0] else lo - 1e-9 - abs(lo) * 1e-9)
        if hi < math.inf:
            bad.append(hi if m["open"][1] else hi + 1e-9 + abs(hi) * 1e-9)
        return bad
    if kind == "choice":
        return ["magic", "", None, m["choices"][0].upper()] + list(m["prefixes"])  # a prefix needs its text
    if kind == "bool":
        return [1, 0, "yes", None]
    if kind == "text":
        return [1, b"x"] + ([] if m["optional"] else [None])
    if kind == "float_pair":
        lo, hi = m["range"]
        return [(0.6, 0.2), (math.nan, 0.5), (0.1,), 0.1, (lo - 1, 0.5), (0.2, hi + 1)]
    if kind == "int_tuple":
        lo, hi = m["range"]
        return [(lo - 1,), (hi + 1,), (1.5,), (True,), 3]
    raise AssertionError(kind)


@pytest.mark.parametrize("sec_field", FIELDS, ids=IDS)
def test_values_outside_a_fields_declaration_are_refused_in_one_line(sec_field):
    sec, f = sec_field
    m = f.metadata
    name = f"{sec}.{f.name}" if sec else f.name
    for bad in _outside(m):
        with pytest.raises(ConfigError) as e:
            _with(sec, f.name, bad)
        msg = str(e.value)
        assert "\n" not in msg
        assert msg.startswith(f"{name} must be {C.allowed(m)}"), msg
        if m["cli"]:
            assert f"(CLI {m['cli']})" in msg


@pytest.mark.parametrize("sec_field", FIELDS, ids=IDS)
def test_closed_ends_of_a_range_are_accepted(sec_field):
    sec, f = sec_field
    m = f.metadata
    if m["kind"] == "int":
        for v in m["range"]:
            _with(sec, f.name, v)
    elif m["kind"] == "float":
        for v, is_open in zip(m["range"], m["open"]):
            if not is_open and math.isfinite(v):
                _with(sec, f.name, v)
                _with(sec, f.name, int(v) if v == int(v) else v)  # ints are fine for a number


@pytest.mark.parametrize("section, name, value, fragment", [
    ("optimize", "point_lr", math.nan, "optimize.point_lr must be a number in (0, 100], got nan"),
    ("optimize", "structure_scale", 0, "optimize.structure_scale must be a number in (0, 1], got 0"),
    ("optimize", "prune_area", -5, "optimize.prune_area must be a number in [0, 1000000], got -5"),
    ("compact", "max_masks", 0, "compact.max_masks must be an integer between 1 and 100000, got 0"),
    ("segment", "method", "magic",
     "segment.method must be one of auto, sam, classical (CLI --segmenter), got 'magic'"),
    (None, "seed", 2**70, "seed must be an integer between 0 and 2147483647 (CLI --seed), got 1180591620717411303424"),
    (None, "seed", -1, "seed must be an integer between 0 and 2147483647 (CLI --seed), got -1"),
    (None, "paths", 2.0, "paths must be an integer between 1 and 100000 (CLI --paths), got 2.0"),
])
def test_the_reported_cases(section, name, value, fragment):
    with pytest.raises(ConfigError) as e:
        _with(section, name, value)
    assert str(e.value) == fragment


def test_saliency_source_takes_the_cli_spelling_mask_file():
    assert C.SaliencyConfig(source="mask:m.png").source == "mask:m.png"
    with pytest.raises(ConfigError, match=r"one of auto, clip, mask, none or mask:FILE \(CLI --saliency\)"):
        C.SaliencyConfig(source="eyes")


def test_sections_validate_on_their_own_too():
    with pytest.raises(ConfigError, match=r"^optimize\.point_lr must be"):
        C.OptimizeConfig(point_lr=math.inf)
    with pytest.raises(ConfigError, match=r"^simplify\.sds_t_range must be"):
        C.SimplifyConfig(sds_t_range=(0.6, 0.2))
    with pytest.raises(ConfigError, match="optimize must be a OptimizeConfig"):
        VectorizeConfig(optimize={"point_lr": 1.0})


def test_seed_bounds_are_the_servers_and_the_inkscape_extensions():
    assert VectorizeConfig(seed=2**31 - 1).seed == C.SEED_MAX == 2**31 - 1
    from pathlib import Path

    inx = (Path(__file__).resolve().parents[1] / "inkscape_ext" / "lvss_vectorize.inx").read_text()
    assert 'name="seed" type="int" min="0" max="2147483647"' in inx


def test_choices_are_one_tuple_each():
    from lvss import stages
    from lvss.optimize import fills

    assert stages.SIMPLIFY_METHODS is C.SIMPLIFY_METHODS
    assert stages.SEGMENT_METHODS is C.SEGMENT_METHODS
    assert stages.SALIENCY_SOURCES is C.SALIENCY_SOURCES
    assert fills.FILL_MODES == C.FILL_MODES  # lvss.optimize.fills keeps its own copy: they must agree
    by_name = {f.name: f.metadata for sec, f in FIELDS}
    assert by_name["fill"]["choices"] is C.FILL_MODES and by_name["mode"]["choices"] is C.MODES


def test_presets_and_cli_configs_validate():
    from lvss.cli import build_parser, config_from_args

    for q in C.QUALITY_PRESETS:
        for mode in C.MODES:
            C.check(C.apply_quality(VectorizeConfig(mode=mode), q))
            args = build_parser().parse_args(["vectorize", "in.png", "-o", "o.svg", "--quality", q, "--mode", mode])
            C.check(config_from_args(args))


def test_cli_refuses_a_huge_seed_in_one_line(capsys, tmp_path):
    from lvss.cli import main

    code = main(["vectorize", "in.png", "-o", str(tmp_path / "o.svg"), "--seed", str(2**70)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "seed must be an integer between 0 and 2147483647 (CLI --seed)" in err


def test_server_refuses_a_seed_over_the_bound():
    pytest.importorskip("grpc")
    from lvss._proto import vectorizer_pb2 as pb
    from server.service import Limits, RequestError, config_from_request

    ok = pb.VectorizeRequest(image=b"x", options=pb.VectorizeOptions(seed=2**31 - 1))
    assert config_from_request(ok, Limits(), "cpu").seed == 2**31 - 1
    with pytest.raises(RequestError, match="seed must be an integer between 0 and 2147483647"):
        config_from_request(pb.VectorizeRequest(image=b"x", options=pb.VectorizeOptions(seed=2**31)),
                            Limits(), "cpu")
