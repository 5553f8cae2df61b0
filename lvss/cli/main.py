"""The ``lvss`` command: its parser (every subcommand registers itself) and :func:`main`.

lvss vectorize IN -o OUT.svg [--paths N] [--levels L] [--seed S] [--device cpu|cuda] [--work-size PX]
                             [--mode layered|compact] [--preview OUT.png] [--json] [stage options]
lvss info | serve | remote | install-inkscape-extension

Exit status: 0 done, 2 bad input or usage (one line on stderr, no traceback, no output file written),
1 an internal failure, 130 interrupted.
"""
from __future__ import annotations

import argparse
import re
import sys

from .vectorize import BAD_INPUT


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: one line, exit 2
        # a value refused by its declaration (lvss.options.converter) names its flag itself
        message = re.sub(r"^argument (\S+): (?=.*\(CLI \1\))", "", message)
        self.exit(BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="lvss", description="Raster images to layered, editable SVG.")
    parser.add_argument("--version", action="version", version=f"lvss {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    from ..integrations import blender, inkscape
    from . import batch, info, remote, vectorize

    vectorize.add_parser(sub)
    info.add_parser(sub)
    remote.add_parser(sub)
    batch.add_parser(sub)
    inkscape.add_parser(sub)
    blender.add_parser(sub)
    try:  # the server installs as lvss_server (the server/ folder); it needs grpc only when it runs
        from lvss_server.cli import add_parser as add_serve
    except ImportError:
        try:  # a source checkout used without installing it
            from server.cli import add_parser as add_serve
        except ImportError:
            add_serve = None
    if add_serve is not None:
        add_serve(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .. import threads

    # the thread policy's environment, before anything loads numpy or torch (this module imports
    # neither at load time; lvss.threads explains the policy)
    threads.prepare_environment()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version or a usage error (its one line is printed): the status
        return 0 if e.code is None else e.code if isinstance(e.code, int) else BAD_INPUT
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return BAD_INPUT
    return int(args.func(args) or 0)
