"""Sending one bitmap to the lvss server and getting its layered SVG back: the Inkscape side of the
remote client that both lvss extensions share (``lvss/ext_client.py``).

The client comes as the package ``_lvss`` (:func:`client_package`): the copy ``lvss
install-inkscape-extension`` puts beside the extension, else the lvss folder this extension came from
(a source checkout, or lvss/inkscape_ext in an installed wheel), else the lvss checkout the installer
recorded. It runs the request in process where Inkscape's Python can import grpc, else through
``lvss remote`` with the Python the installer recorded (or the one set on the Server tab, or
$LVSS_PYTHON); Inkscape usually runs extensions with a system Python that lacks grpcio, so that is the
common case. A request is a :class:`Run` in the background that reports the server's info, queue
position, progress, previews and warnings as events; :meth:`Run.cancel` stops the job on the server.

This module adds what is Inkscape's own: the settings file the installer writes
(``lvss_vectorize.json``), the dialog's fields (:func:`resolve_settings`) and the dialog's words for
where a setting is fixed (:data:`HOST`). Pure standard library (no inkex), so it can be tested alone.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Callable, Optional

CONFIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lvss_vectorize.json")
PACKAGE = "_lvss"


def read_config(path: str = CONFIG_FILE) -> dict:
    """The settings file written by ``lvss install-inkscape-extension`` ({} if absent or unreadable)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def client_package():
    """The package ``_lvss`` holding the remote client (see the module doc), loaded from its folder
    without importing lvss itself."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    here = os.path.dirname(os.path.abspath(__file__))
    folders = [os.path.join(here, PACKAGE), os.path.join(here, os.pardir, "lvss"), os.path.join(here, os.pardir)]
    recorded = str(read_config().get("pythonpath") or "")
    if recorded:
        folders.append(os.path.join(recorded, "lvss"))
    for folder in map(os.path.normpath, folders):
        init = os.path.join(folder, "__init__.py")
        if os.path.isfile(init) and os.path.isfile(os.path.join(folder, "ext_client.py")):
            spec = importlib.util.spec_from_file_location(PACKAGE, init, submodule_search_locations=[folder])
            package = importlib.util.module_from_spec(spec)
            sys.modules[PACKAGE] = package
            spec.loader.exec_module(package)
            return package
    raise ImportError(f"The lvss client ({PACKAGE}/ext_client.py) is missing beside the extension in {here}; "
                      "install the extension again with `lvss install-inkscape-extension`.")


client_package()
from _lvss import ext_client as client  # noqa: E402  (the shared client, as loaded above)
from _lvss import messages as _messages  # noqa: E402

RemoteError, Outcome, Settings, Status = client.RemoteError, client.Outcome, client.Settings, client.Status
DEFAULT_SERVER, ENV_PYTHON, ENV_SERVER = client.DEFAULT_SERVER, client.ENV_PYTHON, client.ENV_SERVER
FROM_DIALOG, FROM_ENV, FROM_CONFIG, FROM_DEFAULT = (client.FROM_DIALOG, client.FROM_ENV, client.FROM_CONFIG,
                                                    client.FROM_DEFAULT)
resolve_server, server_field_label, prompt_note, classify_failure, remote_command = (
    client.resolve_server, client.server_field_label, client.prompt_note, client.classify_failure,
    client.remote_command)
_child_env = client.child_env


def messages():
    """``lvss.messages`` (stage words, error messages; shared by every lvss client)."""
    return _messages


def stage_label(stage: str) -> str:
    """The stage in a designer's words ("Fitting shapes")."""
    return _messages.stage_label(stage)


def no_python_message() -> str:
    """How to give the extension a Python with lvss, when this one cannot import grpc."""
    return (
        f"Inkscape runs this extension with {sys.executable}, which cannot import grpc, so the "
        "extension runs `lvss remote` with a Python where lvss is installed - and none is set.\n"
        "Set it up once, in the environment where you installed lvss with its server extra "
        "(pip install -e \".[server]\" in the lvss folder):\n"
        "    lvss install-inkscape-extension\n"
        "which installs this extension and records that Python. Or enter that Python's path in "
        f"'Python with lvss' on the Server tab, or in the environment variable {ENV_PYTHON}; "
        "print the path with:\n"
        "    python -c \"import sys; print(sys.executable)\"\n"
        f"Or install lvss with its server extra into Inkscape's Python ({sys.executable})."
    )


HOST = client.Host(no_python=no_python_message())


def resolve_settings(*, server: str = "", token_file: str = "", tls_ca: str = "", python: str = "",
                     timeout: float = 600.0, prompt: str = "", paths: int = 64, mode: str = "layered",
                     levels: int = 3, seed: int = 0, backdrop: bool = True, fill: str = "flat", quality: str = "",
                     environ: Optional[dict] = None, config: Optional[dict] = None) -> Settings:
    """Settings from the dialog, with empty fields filled from the environment, then the config file
    (lvss.ext_client's resolve_server / resolve_token_file / resolve_python)."""
    env = os.environ if environ is None else environ
    cfg = read_config() if config is None else config
    address, source = client.resolve_server(server, env, cfg)
    return Settings(
        server=address, server_source=source, token_file=client.resolve_token_file(token_file, env, cfg),
        tls_ca=(tls_ca or str(cfg.get("tls_ca") or "")).strip(), timeout=float(timeout),
        python=client.resolve_python(python, env, cfg), pythonpath=str(cfg.get("pythonpath") or ""),
        prompt=prompt, paths=int(paths), mode=mode, levels=int(levels), seed=int(seed), backdrop=bool(backdrop),
        fill=fill or "flat", quality=(quality or "").strip())


class Run(client.Run):
    """One request in the background, with the dialog's words for its failures."""

    def __init__(self, image_bytes: bytes, settings: Settings, on_event: Optional[Callable[[dict], None]] = None):
        super().__init__(image_bytes, settings, on_event, HOST)


def vectorize(image_bytes: bytes, settings: Settings,
              on_event: Optional[Callable[[dict], None]] = None) -> Outcome:
    """The layered SVG the server makes from ``image_bytes``, with the server's warnings; blocks."""
    return Run(image_bytes, settings, on_event).start().result()


def explain(err: RemoteError, settings: Settings, name: str) -> str:
    """A message for the user: what failed, for which image, and what to do about it."""
    return client.explain(err, settings, name, HOST)
