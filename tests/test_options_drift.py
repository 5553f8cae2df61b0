"""Every front-end shows the options as lvss.options declares them.

The command line, the server's checks, lvss remote's flags and the client's EXTRA_OPTIONS are made from
the declaration; the .proto, the Inkscape .inx (and its script's arguments) and the Blender properties
are written by hand, so they are read here (XML, the proto's text, the Python source with ``ast``) and
compared: names, types, ranges, defaults and choices. Any difference fails, naming the place to fix.
"""
from __future__ import annotations

import ast
import inspect
import math
import re
from dataclasses import fields
from pathlib import Path

import pytest

from lvss import config as C
from lvss import options as O

REPO = Path(__file__).resolve().parents[1]
PROTO = REPO / "proto" / "lvss" / "v1" / "vectorizer.proto"
INX = REPO / "inkscape_ext" / "lvss_vectorize.inx"
INKSCAPE_SCRIPT = REPO / "inkscape_ext" / "lvss_vectorize.py"
BLENDER_OPERATORS = REPO / "blender_ext" / "operators.py"
BLENDER_INT_MAX = 2**31 - 1  # an IntProperty without max


# ------------------------------------------------------------------------------------------------
# the declaration itself
# ------------------------------------------------------------------------------------------------
def _all_fields(cls=C.VectorizeConfig, prefix=""):
    for f in fields(cls):
        if "kind" in f.metadata:
            yield prefix + f.name, f
        else:
            yield from _all_fields(f.default_factory, prefix + f.name + ".")


def test_every_config_field_declares_what_it_accepts():
    for path, f in _all_fields():
        m = f.metadata
        assert m["kind"] in ("int", "float", "choice", "bool", "text", "float_pair", "int_tuple"), path
        assert m["help"], f"{path} has no help"
        if m["kind"] in ("int", "float", "float_pair", "int_tuple"):
            lo, hi = m["range"]
            assert lo <= hi, path
            if m["kind"] in ("int", "int_tuple"):
                assert math.isfinite(lo) and math.isfinite(hi), f"{path}: an integer needs finite bounds"
        if m["kind"] == "choice":
            assert m["choices"] and f.default in m["choices"], path
        C.check(C.VectorizeConfig())  # every default within its own declaration


def test_request_options_name_config_fields_with_flags():
    for o in O.REQUEST_OPTIONS:
        assert {"cli", "request"} <= o.fronts <= set(O.FRONTS), o.name
        assert O.field_meta(o.path)["cli"], f"{o.name}: a request option needs a command-line flag too"
        if o.limit:
            assert o.limit in O.SERVER_LIMITS and o.meta["kind"] == "int", o.name
        assert o.refusal(o.default) is None, o.name


# ------------------------------------------------------------------------------------------------
# .proto
# ------------------------------------------------------------------------------------------------
def _proto_fields() -> list[tuple[str, str, int, str]]:
    """VectorizeOptions' fields: (name, type, number, comment: the lines above it and its own)."""
    text = PROTO.read_text(encoding="utf-8")
    body = re.search(r"message VectorizeOptions \{(.*?)\n\}", text, re.S).group(1)
    out, above = [], []
    for line in body.splitlines():
        s = line.strip()
        if s.startswith("//"):
            above.append(s[2:])
            continue
        m = re.match(r"optional (\w+) (\w+) = (\d+);\s*(?://(.*))?$", s)
        if m:
            out.append((m.group(2), m.group(1), int(m.group(3)), " ".join(above + [m.group(4) or ""])))
        above = []
    return out


PROTO_TYPES = {"int": ("int32", "int64", "uint32", "uint64"), "choice": ("string",), "text": ("string",),
               "float": ("float", "double"), "bool": ("bool",)}


def test_proto_vectorize_options_are_the_request_options():
    got = _proto_fields()
    assert [name for name, *_ in got] == [o.name for o in O.REQUEST_OPTIONS], \
        "VectorizeOptions' fields and lvss.options.REQUEST_OPTIONS differ (names or order)"
    assert [n for _, _, n, _ in got] == sorted(n for _, _, n, _ in got)
    for name, typ, _, comment in got:
        o = O.BY_NAME[name]
        assert typ in PROTO_TYPES[o.meta["kind"]], f"{name}: proto type {typ}, declared {o.meta['kind']}"
        if o.meta["kind"] == "choice":  # the comment lists the choices, quoted
            quoted = set(re.findall(r'"(\w+)"', comment))
            assert quoted == set(o.meta["choices"]), f"{name}: the proto's comment says {quoted}"
        m = re.search(r"(\d+) \.\. (\w[\w.]*)", comment)
        if m:  # "lo .. hi" or "lo .. GetInfoResponse.limits.<limit>"
            lo, hi = o.meta["range"]
            assert int(m.group(1)) == lo, name
            assert m.group(2) == str(hi) or m.group(2).endswith(f".{o.limit}"), f"{name}: range {m.group(0)}"


def test_the_generated_stubs_have_the_same_fields():
    pytest.importorskip("google.protobuf")
    from lvss._proto import vectorizer_pb2 as pb

    assert [f.name for f in pb.VectorizeOptions.DESCRIPTOR.fields] == [o.name for o in O.REQUEST_OPTIONS]


# ------------------------------------------------------------------------------------------------
# the Inkscape extension
# ------------------------------------------------------------------------------------------------
def _inx_params() -> dict:
    from lxml import etree

    root = etree.parse(str(INX)).getroot()
    return {p.get("name"): p for p in root.iter("{*}param")}


def test_inkscape_dialog_shows_the_declared_options():
    params = _inx_params()
    declared = {o.name for o in O.shown_in("inkscape")}
    shown = set(params) & set(O.BY_NAME)
    assert shown == declared, (f"the .inx shows {sorted(shown)}, lvss.options declares {sorted(declared)} for "
                               "'inkscape'; change one of them")
    for o in O.shown_in("inkscape"):
        p = params[o.name]
        where = f"{INX.name} param {o.name}"
        if o.meta["kind"] == "int":
            assert p.get("type") == "int", where
            assert (int(p.get("min")), int(p.get("max"))) == o.editor_range(), \
                f"{where}: min/max {p.get('min')}..{p.get('max')}, declared {o.editor_range()}"
            assert int(p.text) == o.editor_default(), f"{where}: default {p.text}, declared {o.editor_default()}"
        elif o.meta["kind"] == "choice":
            assert p.get("type") == "optiongroup", where
            values = [opt.get("value") for opt in p.iter("{*}option")]
            assert sorted(values) == sorted(o.meta["choices"]), f"{where}: options {values}"
            default = (p.text or "").strip() or values[0]  # Inkscape: the text, else the first option
            assert default == o.editor_default(), f"{where}: default {default}, declared {o.editor_default()}"
        else:
            raise AssertionError(f"{where}: no check for kind {o.meta['kind']}")


def _add_argument_calls(path: Path) -> dict[str, dict]:
    """{flag: {keyword: value}} of every ``*.add_argument("--flag", ...)`` in a file (literal values)."""
    out = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument" and node.args:
            kw = {}
            for k in node.keywords:
                try:
                    kw[k.arg] = ast.literal_eval(k.value)
                except ValueError:
                    kw[k.arg] = ast.unparse(k.value)
            out[ast.literal_eval(node.args[0])] = kw
    return out


def test_inkscape_script_reads_the_options_as_declared():
    args = _add_argument_calls(INKSCAPE_SCRIPT)
    for o in O.shown_in("inkscape"):
        a = args[f"--{o.name}"]
        where = f"{INKSCAPE_SCRIPT.name} --{o.name}"
        assert a.get("default") == o.editor_default(), f"{where}: default {a.get('default')}"
        if o.meta["kind"] == "int":
            assert a.get("type") == "int", where
        else:
            assert sorted(a["choices"]) == sorted(o.meta["choices"]), f"{where}: choices {a['choices']}"


# ------------------------------------------------------------------------------------------------
# the Blender extension
# ------------------------------------------------------------------------------------------------
def _blender_option_props() -> dict[str, tuple[str, dict]]:
    """{name: (property type, keywords)} of blender_ext/operators.py's _option_props(); enum items
    resolved from the module's tuples."""
    tree = ast.parse(BLENDER_OPERATORS.read_text(encoding="utf-8"))
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_option_props")
    ret = next(n for n in ast.walk(fn) if isinstance(n, ast.Return)).value
    out = {}
    for k in ret.keywords:
        kw = {}
        for a in k.value.keywords:
            kw[a.arg] = constants[a.value.id] if isinstance(a.value, ast.Name) else ast.literal_eval(a.value)
        out[k.arg] = (k.value.func.id, kw)
    return out


def test_blender_properties_are_the_declared_options():
    props = _blender_option_props()
    declared = {o.name for o in O.shown_in("blender")}
    shown = set(props) & set(O.BY_NAME)
    assert shown == declared, (f"Blender shows {sorted(shown)}, lvss.options declares {sorted(declared)} for "
                               "'blender'; change one of them")
    for o in O.shown_in("blender"):
        typ, kw = props[o.name]
        where = f"{BLENDER_OPERATORS.name} {o.name}"
        if o.meta["kind"] == "int":
            assert typ == "IntProperty", where
            got = (kw.get("min", -BLENDER_INT_MAX - 1), kw.get("max", BLENDER_INT_MAX))
            assert got == o.editor_range(), f"{where}: min/max {got}, declared {o.editor_range()}"
            assert kw.get("soft_max", got[1]) <= got[1], where
        elif o.meta["kind"] == "choice":
            assert typ == "EnumProperty", where
            items = [item[0] for item in kw["items"]]
            # O.SERVER_DEFAULT_ITEM: "send nothing, the server's default" (quality only)
            extra = [i for i in items if i not in o.meta["choices"]]
            assert extra in ([], [O.SERVER_DEFAULT_ITEM]), f"{where}: items {items}"
            assert sorted(set(items) - {O.SERVER_DEFAULT_ITEM}) == sorted(o.meta["choices"]), f"{where}: items {items}"
        else:
            raise AssertionError(f"{where}: no check for kind {o.meta['kind']}")
        assert kw.get("default") == o.editor_default(), \
            f"{where}: default {kw.get('default')}, declared {o.editor_default()}"


def test_the_editors_default_to_one_preset():
    assert O.EDITOR_QUALITY in C.QUALITY_PRESETS
    pre = C.QUALITY_PRESETS[O.EDITOR_QUALITY]
    assert O.BY_NAME["paths"].editor_default() == pre["paths"]
    assert O.BY_NAME["levels"].editor_default() == pre.get("levels", C.SimplifyConfig().levels)
    assert O.BY_NAME["quality"].editor_default() == O.EDITOR_QUALITY


# ------------------------------------------------------------------------------------------------
# what is generated: the command lines, the client, the server
# ------------------------------------------------------------------------------------------------
def _parser_actions(command: str) -> dict:
    from lvss.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return {s: a for a in sub.choices[command]._actions for s in a.option_strings}


def test_lvss_vectorize_has_every_request_option():
    actions = _parser_actions("vectorize")
    for o in O.REQUEST_OPTIONS:
        meta = O.field_meta(o.path)
        a = actions[meta["cli"]]
        if meta["kind"] == "choice" and not meta["prefixes"]:
            assert tuple(a.choices) == meta["choices"], o.name
    assert actions["--quality"].default == O.DEFAULT_QUALITY


def test_lvss_remote_has_the_remote_options():
    actions = _parser_actions("remote")
    for o in O.shown_in("remote"):
        a = actions["--" + o.name.replace("_", "-")]
        assert a.default is None, o.name  # the server's default
        if o.meta["kind"] == "choice":
            assert tuple(a.choices) == o.meta["choices"], o.name


def test_client_keywords_and_extra_options_cover_the_request():
    from lvss import client

    keywords = set(inspect.signature(client.Client.vectorize).parameters)
    assert {o.name for o in O.shown_in("client")} <= keywords
    assert set(client.EXTRA_OPTIONS).isdisjoint(keywords)
    assert set(client.EXTRA_OPTIONS) | {o.name for o in O.shown_in("client")} == set(O.BY_NAME)


def _request(**options):
    from lvss._proto import vectorizer_pb2 as pb

    return pb.VectorizeRequest(image=b"x", options=pb.VectorizeOptions(**options))


@pytest.mark.parametrize("name", [o.name for o in O.REQUEST_OPTIONS])
def test_server_checks_each_request_option_against_the_declaration(name):
    pytest.importorskip("grpc")
    from server.service import Limits, RequestError, config_from_request

    o, limits = O.BY_NAME[name], Limits()
    limit = getattr(limits, o.limit) if o.limit else None
    meta = o.bounds(limit)
    if meta["kind"] == "int":
        lo, hi = meta["range"]
        for good in (lo, hi):
            cfg = config_from_request(_request(**{name: good}), limits, "cpu")
            assert O.get_value(cfg, o.path) == good
        for bad in (lo - 1, hi + 1):
            with pytest.raises(RequestError) as e:
                config_from_request(_request(**{name: bad}), limits, "cpu")
            assert str(e.value) == O.BY_NAME[name].refusal(bad, limit), str(e.value)
            assert str(e.value).startswith(f"{name} must be an integer between {lo} and {hi}")
            assert "\n" not in str(e.value)
    else:
        with pytest.raises(RequestError) as e:
            config_from_request(_request(**{name: "cubist"}), limits, "cpu")
        assert str(e.value) == f"{name} must be one of {', '.join(meta['choices'])}, got 'cubist'"


def test_a_servers_own_limit_is_said_as_such():
    pytest.importorskip("grpc")
    from server.service import Limits, RequestError, config_from_request

    with pytest.raises(RequestError) as e:
        config_from_request(_request(paths=65), Limits(max_paths=64), "cpu")
    assert str(e.value) == "paths must be an integer between 1 and 64 (this server's limit), got 65"
    with pytest.raises(RequestError) as e:
        config_from_request(_request(levels=11), Limits(), "cpu")
    assert str(e.value) == "levels must be an integer between 0 and 10, got 11"


def test_server_limits_default_to_the_declared_ones():
    pytest.importorskip("grpc")
    from server.service import Limits

    assert {k: getattr(Limits(), k) for k in O.SERVER_LIMITS} == O.SERVER_LIMITS
