"""Every option a user can set, declared once; the front-ends are generated from it or tested against it.

What an option accepts is declared on its config field (:mod:`lvss.config`: kind, range or choices,
default, help, command-line flag, metavar). This module adds what a config field cannot say:

* :data:`REQUEST_OPTIONS`: the options a request to the server may set (``VectorizeOptions`` in
  ``proto/lvss/v1/vectorizer.proto``, in field order), each with the config field it sets, the quality
  preset entry that gives its default, the server limit that caps it (:data:`SERVER_LIMITS`) and the
  front-ends that show it (:data:`FRONTS`); ``quality``, the one request option that is no config
  field, is declared here in full (:data:`QUALITY`).
* the command line: :func:`add_argument` makes an argparse flag (type, default, choices, metavar,
  help) from a declaration, and its value check (one line naming the flag and the allowed values;
  ``lvss`` exits with status 2); :func:`config_from_values` folds given values and a preset into a
  :class:`~lvss.config.VectorizeConfig`.
* the server: :meth:`Option.refusal` is the request check (the same words as the config's, with the
  server's own limit where it is lower); :func:`get_value` / :func:`set_value` convert between a
  request's option names and the config.
* the editors: :meth:`Option.editor_default` and :meth:`Option.editor_range` are what the Inkscape
  ``.inx`` and the Blender properties must show; ``tests/test_options_drift.py`` checks them, the
  ``.proto``, ``lvss remote`` and the client against this module.

docs/options.md says how to add an option.
"""
from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass, fields, replace
from typing import Any

from .config import (QUALITY_PRESETS, SALIENCY_SOURCES, VectorizeConfig, _meta, _ok, apply_quality,
                     refusal_text)

# Where an option shows. "cli": lvss vectorize / batch; "request": VectorizeOptions (the server);
# "remote": lvss remote; "client": a keyword argument of lvss.client.vectorize / Client.vectorize (the
# other request options go through its ``extra``); "inkscape" / "blender": the editors' dialogs.
FRONTS = ("cli", "request", "remote", "client", "inkscape", "blender")

# The server's defaults for its own limits on one request (server.service.Limits; lvss serve
# --max-paths changes max_paths). The editors offer values up to these.
SERVER_LIMITS = {"max_paths": 4096, "max_work_size": 2048, "max_iters": 5000}

# The preset the editors (Inkscape, Blender) start from: they are used interactively, so their
# defaults (quality, path budget, levels) are this preset's; everything else defaults to "balanced".
EDITOR_QUALITY = "fast"

# An editor's choice that sends nothing, so the server's default applies (Blender's quality menu).
SERVER_DEFAULT_ITEM = "SERVER"

QUALITY = _meta("choice", "speed/fidelity preset: default path budget, working size and optimisation effort",
                "--quality", choices=tuple(QUALITY_PRESETS), prefixes={})
DEFAULT_QUALITY = "balanced"


# ------------------------------------------------------------------------------------------------
# config fields by path ("paths", "simplify.levels")
# ------------------------------------------------------------------------------------------------
def _field(path: str):
    cls, f = VectorizeConfig, None
    for part in path.split("."):
        if cls is None:
            raise KeyError(path)
        f = {x.name: x for x in fields(cls)}[part]
        cls = f.default_factory if "kind" not in f.metadata else None
    if f is None or "kind" not in f.metadata:
        raise KeyError(f"{path} is a config section, not an option")
    return f


def field_meta(path: str) -> dict:
    """What the config field at ``path`` accepts (its metadata; "quality": :data:`QUALITY`)."""
    return QUALITY if path == "quality" else dict(_field(path).metadata)


def field_default(path: str) -> Any:
    return DEFAULT_QUALITY if path == "quality" else _field(path).default


def get_value(cfg: VectorizeConfig, path: str) -> Any:
    obj = cfg
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def set_value(cfg: Any, path: str, value: Any) -> Any:
    """``cfg`` with the field at ``path`` set (nested sections copied; validated as they are built)."""
    head, _, rest = path.partition(".")
    if not rest:
        return replace(cfg, **{head: value})
    return replace(cfg, **{head: set_value(getattr(cfg, head), rest, value)})


def preset_values(path: str) -> dict[str, Any]:
    """{preset: the value at ``path`` that preset gives when nothing else sets it}."""
    return {q: get_value(cfg, path) for q, cfg in _preset_configs().items()}


@functools.cache
def _preset_configs() -> dict[str, VectorizeConfig]:
    """{preset: the configuration it gives when nothing else is set} (frozen; built once, since the
    command line asks for every option's preset defaults)."""
    return {q: apply_quality(VectorizeConfig(), q, levels_given=False) for q in QUALITY_PRESETS}


# ------------------------------------------------------------------------------------------------
# request options
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    """One option a request may set.

    name: its name in VectorizeOptions, lvss remote (``--name``, dashes for underscores) and
        ``lvss.client``; path: the config field it sets ("quality": the preset itself, no field);
    fronts: where it shows (see :data:`FRONTS`); every request option is in "cli" and "request";
    limit: the server limit (a :class:`server.service.Limits` attribute) that caps its upper end.
    Its default is the config field's, as the quality preset sets it (:func:`preset_values`).
    """

    name: str
    path: str
    fronts: frozenset
    limit: str | None = None
    request_choices: tuple | None = None  # a request's choices where they differ from the CLI's

    @property
    def meta(self) -> dict:
        """What a request may send (the config field's declaration; a request sends a mask image, not
        the CLI's mask:FILE)."""
        meta = field_meta(self.path)
        if self.request_choices is not None:
            meta = dict(meta, choices=self.request_choices, prefixes={})
        return meta

    @property
    def default(self) -> Any:
        return field_default(self.path)

    def bounds(self, limit: int | None = None) -> dict:
        """:attr:`meta` with the upper end lowered to ``limit`` (a server's limit) where that is lower."""
        meta = self.meta
        if limit is not None and "range" in meta and limit < meta["range"][1]:
            meta = dict(meta, range=(meta["range"][0], limit))
        return meta

    def refusal(self, value: Any, limit: int | None = None) -> str | None:
        """None when a request may send ``value`` (under the server's ``limit``), else the one-line reason."""
        meta = self.bounds(limit)
        if _ok(value, meta):
            return None
        capped = meta.get("range") != self.meta.get("range")
        return refusal_text(self.name, meta, value, " (this server's limit)" if capped else "")

    def editor_default(self) -> Any:
        """The default the editors show: the value :data:`EDITOR_QUALITY` gives."""
        return EDITOR_QUALITY if self.path == "quality" else preset_values(self.path)[EDITOR_QUALITY]

    def editor_range(self) -> tuple[int, int]:
        """(min, max) the editors offer: the declared range, capped by the server's default limit."""
        lo, hi = self.meta["range"]
        return lo, min(hi, SERVER_LIMITS[self.limit]) if self.limit else hi


def _fronts(*names: str) -> frozenset:
    """The command line and the request, plus ``names``."""
    unknown = set(names) - set(FRONTS)
    if unknown:
        raise ValueError(f"unknown front-ends {sorted(unknown)}; known: {', '.join(FRONTS)}")
    return frozenset(("cli", "request", *names))


EVERYWHERE = ("remote", "client", "inkscape", "blender")
REQUEST_OPTIONS: tuple[Option, ...] = (
    Option("paths", "paths", _fronts(*EVERYWHERE), limit="max_paths"),
    Option("mode", "mode", _fronts(*EVERYWHERE)),
    Option("levels", "simplify.levels", _fronts(*EVERYWHERE)),
    Option("seed", "seed", _fronts(*EVERYWHERE)),
    Option("work_size", "work_size", _fronts("remote", "client"), limit="max_work_size"),
    Option("simplify", "simplify.method", _fronts()),
    Option("segment", "segment.method", _fronts()),
    Option("saliency", "saliency.source", _fronts(), request_choices=SALIENCY_SOURCES),  # a mask is sent as an image
    Option("structure_iters", "optimize.structure_iters", _fronts(), limit="max_iters"),
    Option("refine_iters", "optimize.refine_iters", _fronts(), limit="max_iters"),
    Option("fill", "optimize.fill", _fronts("remote", "inkscape", "blender")),
    Option("quality", "quality", _fronts("remote", "inkscape", "blender")),
)
BY_NAME = {o.name: o for o in REQUEST_OPTIONS}


def shown_in(front: str) -> tuple[Option, ...]:
    """The request options a front-end shows, in declaration order."""
    return tuple(o for o in REQUEST_OPTIONS if front in o.fronts)


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------
def flag_of(path: str) -> str:
    flag = field_meta(path)["cli"]
    if not flag:
        raise KeyError(f"{path} has no command-line flag")
    return flag


def dest_of(path: str) -> str:
    """The argparse attribute of ``path``'s flag (``--work-size`` → ``work_size``)."""
    return flag_of(path).lstrip("-").replace("-", "_")


def converter(path: str):
    """argparse ``type`` for ``path``'s flag: the value as the config takes it, or ArgumentTypeError
    with the one line the config would say (the option, what it accepts, the value given)."""
    meta = field_meta(path)
    name = path
    parse = {"int": int, "float": float}.get(meta["kind"], str)
    note = f" (CLI {meta['cli']})"

    def conv(text: str):
        try:
            value = parse(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(refusal_text(name, meta, text, note)) from None
        if not _ok(value, meta):
            raise argparse.ArgumentTypeError(refusal_text(name, meta, value, note))
        return value

    conv.__name__ = meta["kind"]  # argparse names the type in some messages
    return conv


def _default_words(path: str) -> str:
    """How --help says the default: one value, or each preset's where the presets differ."""
    by = {DEFAULT_QUALITY: DEFAULT_QUALITY} if path == "quality" else preset_values(path)
    if len(set(by.values())) > 1:
        return "default: the --quality preset's: " + ", ".join(f"{v} {q}" for q, v in by.items())
    default = next(iter(by.values()))
    return "" if default is None or isinstance(default, bool) or default == "" else f"default {default}"


def _with_default(words: str, default_words: str) -> str:
    if not default_words:
        return words
    return f"{words}; {default_words}" if words.endswith(")") else f"{words} ({default_words})"


def add_argument(parser, path: str, *, default: Any = None, help: str | None = None) -> None:
    """Add the flag of the config field at ``path`` (or "quality") to an argparse parser or group.

    ``default`` None: the flag left out keeps the config's (or the preset's) value. ``help``: the
    declared help unless given; the default is said after it.
    """
    meta = field_meta(path)
    words = help if help is not None else meta["help"]
    shown = _default_words(path) if default is None or default == field_default(path) else f"default {default}"
    kwargs: dict[str, Any] = dict(default=default, help=_with_default(words, shown))
    if meta["kind"] == "choice" and not meta["prefixes"]:
        kwargs["choices"] = meta["choices"]
    else:
        kwargs["type"] = converter(path)
        kwargs["metavar"] = meta.get("metavar") or {"int": "N", "float": "X"}.get(meta["kind"], "TEXT")
    parser.add_argument(flag_of(path), **kwargs)


def add_remote_argument(parser, option: Option) -> None:
    """The ``lvss remote`` flag of a request option: default None (the server's); the server checks
    the value against its own limits and answers in one line."""
    meta = option.meta
    kwargs: dict[str, Any] = dict(default=None, help=_with_default(meta["help"], "default: the server's"))
    if meta["kind"] == "choice":
        kwargs["choices"] = meta["choices"]
    else:
        kwargs["type"] = {"int": int, "float": float}.get(meta["kind"], str)
        kwargs["metavar"] = meta.get("metavar") or "N"
    parser.add_argument("--" + option.name.replace("_", "-"), **kwargs)


def config_from_values(values: dict[str, Any], quality: str = DEFAULT_QUALITY,
                       base: VectorizeConfig | None = None) -> VectorizeConfig:
    """``base`` (default ``VectorizeConfig()``) with the preset ``quality`` applied, then ``values``
    ({config path: value}; the budget, working size or levels given win over the preset's).
    ConfigError names the first value out of range."""
    cfg = apply_quality(base or VectorizeConfig(), quality, paths_given="paths" in values,
                        work_size_given="work_size" in values, levels_given="simplify.levels" in values)
    for path, value in values.items():
        cfg = set_value(cfg, path, value)
    return cfg


__all__ = ["FRONTS", "SERVER_LIMITS", "EDITOR_QUALITY", "SERVER_DEFAULT_ITEM", "QUALITY", "DEFAULT_QUALITY",
           "Option", "REQUEST_OPTIONS", "BY_NAME", "shown_in", "field_meta", "field_default", "get_value",
           "set_value", "preset_values", "flag_of", "dest_of", "converter", "add_argument", "add_remote_argument",
           "config_from_values"]
