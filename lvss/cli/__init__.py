"""The ``lvss`` command line, one module per command:

lvss vectorize IN -o OUT.svg [options]    :mod:`lvss.cli.vectorize` (and the options ``batch`` shares)
lvss batch INPUT... -o OUT_DIR            :mod:`lvss.cli.batch`
lvss remote IN -o OUT.svg --server ...    :mod:`lvss.cli.remote`
lvss info                                 :mod:`lvss.cli.info`
lvss serve                                the server's own command line (``server/cli.py``)
lvss install-inkscape-extension, lvss build-blender-extension: :mod:`lvss.integrations`

:mod:`lvss.cli.main` builds the parser and runs a command; each option of a vectorization is declared
once in :mod:`lvss.config` / :mod:`lvss.options` and only turned into flags here.
"""
from .main import build_parser, main
from .vectorize import VECTORIZE_OPTIONS, add_vectorize_options, config_from_args

__all__ = ["main", "build_parser", "add_vectorize_options", "config_from_args", "VECTORIZE_OPTIONS"]
