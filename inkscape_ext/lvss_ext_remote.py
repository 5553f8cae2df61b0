"""Sending one bitmap to the lvss server and getting its layered SVG back.

Two ways, chosen per run:

* in process, through ``lvss.client``, when the Python running the extension can import both
  ``grpc`` and ``lvss`` (a Python where lvss is installed);
* otherwise by running ``lvss remote`` with a configured Python (the "Python with lvss" field,
  the ``LVSS_PYTHON`` environment variable, or the file that ``lvss install-inkscape-extension``
  writes next to the extension). Inkscape usually runs extensions with a system Python that lacks
  grpcio, so this is the common case.

Failures are :class:`RemoteError` with a gRPC-style ``code``; :func:`explain` turns one into a
message that tells the user what to do. Pure standard library (no inkex), so it can be tested alone.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Optional

DEFAULT_SERVER = "127.0.0.1:50051"
ENV_SERVER = "LVSS_SERVER"
ENV_PYTHON = "LVSS_PYTHON"
ENV_TOKEN_FILE = "LVSS_TOKEN_FILE"
CONFIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lvss_vectorize.json")
# the `lvss remote` client as a module, so it runs whether or not the `lvss` script is on PATH
REMOTE_MODULE = "lvss.remote_cli"
# gRPC status codes the client reports, plus SETUP for problems on this side of the wire
CODES = (
    "UNAVAILABLE", "DEADLINE_EXCEEDED", "INVALID_ARGUMENT", "UNAUTHENTICATED",
    "RESOURCE_EXHAUSTED", "CANCELLED", "INTERNAL",
)


class RemoteError(Exception):
    """A request that failed. code: one of CODES or "SETUP"; message: the server's or our text."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Settings:
    """Everything a request needs; see :func:`resolve_settings` for where the values come from."""

    server: str = DEFAULT_SERVER
    token_file: str = ""
    timeout: float = 600.0
    python: str = ""
    prompt: str = ""
    paths: int = 128
    mode: str = "layered"
    levels: int = 4
    seed: int = 0
    pythonpath: str = ""  # where lvss lives when it is not installed (a source checkout)


def read_config(path: str = CONFIG_FILE) -> dict:
    """The settings file written by ``lvss install-inkscape-extension`` ({} if absent or unreadable)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def resolve_settings(*, server: str = "", token_file: str = "", python: str = "", timeout: float = 600.0,
                     prompt: str = "", paths: int = 128, mode: str = "layered", levels: int = 4,
                     seed: int = 0, environ: Optional[dict] = None, config: Optional[dict] = None) -> Settings:
    """Settings from the dialog, with empty fields filled from the environment, then the config file.

    server: dialog > $LVSS_SERVER > config "server" > 127.0.0.1:50051;
    token_file: dialog > $LVSS_TOKEN_FILE > config "token_file" > none;
    python: dialog > $LVSS_PYTHON > config "python" > none.
    """
    env = os.environ if environ is None else environ
    cfg = read_config() if config is None else config
    return Settings(
        server=(server or env.get(ENV_SERVER) or cfg.get("server") or DEFAULT_SERVER).strip(),
        token_file=(token_file or env.get(ENV_TOKEN_FILE) or cfg.get("token_file") or "").strip(),
        timeout=float(timeout),
        python=(python or env.get(ENV_PYTHON) or cfg.get("python") or "").strip(),
        prompt=prompt, paths=int(paths), mode=mode, levels=int(levels), seed=int(seed),
        pythonpath=str(cfg.get("pythonpath") or ""),
    )


def _host_port(server: str) -> tuple[str, str]:
    host, sep, port = server.rpartition(":")
    return (host.strip("[]"), port) if sep and port.isdigit() else (server, "50051")


def explain(err: RemoteError, settings: Settings, name: str) -> str:
    """A message for the user: what failed, for which image, and what to do about it."""
    server, code, msg = settings.server, err.code, err.message.strip()
    host, port = _host_port(server)
    if code == "UNAVAILABLE":
        why = "" if "reach" in msg else f" ({msg})"
        return (
            f"Could not reach the lvss server at {server}{why}.\n"
            "Start it in a terminal, in the Python environment where lvss is installed:\n"
            f"    lvss serve --host {host} --port {port}\n"
            "or enter the address of a running server on the Server tab "
            f"(or in the environment variable {ENV_SERVER})."
        )
    if code == "DEADLINE_EXCEEDED":
        return (
            f"The lvss server at {server} did not finish '{name}' within the timeout of "
            f"{settings.timeout:g} s ({msg}).\nRaise the timeout on the Server tab, or ask for fewer "
            "paths or levels on the Vectorize tab."
        )
    if code == "INVALID_ARGUMENT":
        return (
            f"The lvss server refused '{name}': {msg}\n"
            "Change the image or the options on the Vectorize tab and try again."
        )
    if code == "UNAUTHENTICATED":
        where = (f"the token in {settings.token_file}" if settings.token_file else "no token")
        return (
            f"The lvss server at {server} rejected the request: wrong or missing token ({msg}); "
            f"this run sent {where}.\nPut the token the server was started with into a file and "
            f"choose that file as the token file on the Server tab (or set {ENV_TOKEN_FILE})."
        )
    if code == "RESOURCE_EXHAUSTED":
        return (
            f"The lvss server at {server} cannot take '{name}' now: {msg}\n"
            "Wait for its queue to drain, or send a smaller image or fewer paths."
        )
    if code == "CANCELLED":
        return f"The request for '{name}' was cancelled: {msg}"
    if code == "SETUP":
        return msg
    return f"The lvss server failed on '{name}': {msg}\nSee the server's log for details."


def _load_client():
    """``lvss.client`` if this Python can import grpc and lvss, else None."""
    try:
        import grpc  # noqa: F401  (probe: the in-process client needs it)
    except ImportError:
        return None
    try:
        from lvss import client
    except Exception:  # noqa: BLE001  lvss missing or broken here: use the configured Python
        return None
    return client


def _read_token(settings: Settings) -> Optional[str]:
    if not settings.token_file:
        return None
    try:
        with open(os.path.expanduser(settings.token_file), encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError as err:
        raise RemoteError(
            "SETUP",
            f"Cannot read the token file {settings.token_file} ({err.strerror}). Choose an existing "
            f"file on the Server tab, or clear the field (and {ENV_TOKEN_FILE}) if the server needs no token.",
        ) from None


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


def vectorize(image_bytes: bytes, settings: Settings) -> str:
    """The layered SVG (text) the server makes from ``image_bytes`` (an encoded bitmap).

    Raises RemoteError (see module doc).
    """
    client = _load_client()
    if client is not None:
        return _vectorize_in_process(client, image_bytes, settings)
    if not settings.python:
        raise RemoteError("SETUP", no_python_message())
    return _vectorize_subprocess(image_bytes, settings)


def _vectorize_in_process(client, image_bytes: bytes, settings: Settings) -> str:
    token = _read_token(settings)
    try:
        result = client.vectorize(
            image_bytes, server=settings.server, prompt=settings.prompt, paths=settings.paths,
            mode=settings.mode, levels=settings.levels, seed=settings.seed, token=token,
            timeout=settings.timeout,
        )
    except client.ClientError as err:
        code = getattr(err, "code", "INTERNAL")
        message = getattr(err, "message", None) or str(err)
        raise RemoteError(code if code in CODES else "INTERNAL", message) from None
    return result.svg


def remote_command(settings: Settings, in_path: str, out_path: str) -> list[str]:
    """The ``lvss remote`` command line run with the configured Python."""
    cmd = [settings.python, "-m", REMOTE_MODULE, in_path, "-o", out_path, "--server", settings.server,
           "--paths", str(settings.paths), "--mode", settings.mode, "--levels", str(settings.levels),
           "--seed", str(settings.seed), "--timeout", f"{settings.timeout:g}"]
    if settings.prompt:
        cmd += ["--prompt", settings.prompt]
    if settings.token_file:
        cmd += ["--token-file", os.path.expanduser(settings.token_file)]
    return cmd


def _is_inkscape_dir(path: str) -> bool:
    """True for folders Inkscape adds to PYTHONPATH for its extensions (inkex, extension folders)."""
    real = os.path.realpath(path)
    here = os.path.dirname(os.path.realpath(__file__))
    parent = os.path.dirname(here)  # the extensions folder, when installed
    if real == here or (real == parent and os.path.basename(parent) == "extensions"):
        return True
    if "inkex" in real.split(os.sep):
        return True
    if os.path.isdir(os.path.join(real, "inkex")):
        return True
    try:
        return any(name.endswith(".inx") for name in os.listdir(real))
    except OSError:
        return False


def _child_env(extra_path: str = "") -> dict:
    """The environment for the configured Python, without Inkscape's own module folders (their
    modules could shadow the ones lvss imports), plus ``extra_path`` (a checkout of lvss)."""
    env = dict(os.environ)
    kept = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and not _is_inkscape_dir(p)]
    if extra_path and extra_path not in kept:
        kept.append(extra_path)
    if kept:
        env["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    return env


def classify_failure(stderr: str, settings: Settings) -> RemoteError:
    """A RemoteError from the stderr of a failed ``lvss remote`` run."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else "no error message"
    if "No module named" in stderr:
        missing = last.split("No module named", 1)[-1].strip(" '\"")
        return RemoteError(
            "SETUP",
            f"The Python set for lvss ({settings.python}) cannot import {missing or 'lvss'} ({last}).\n"
            f"Install lvss with its server extra there, from the lvss folder:  "
            f"{shlex.quote(settings.python)} -m pip install -e \".[server]\"\n"
            f"or set 'Python with lvss' on the Server tab (or {ENV_PYTHON}) to the Python where lvss "
            "is installed.",
        )
    # the CLI prints one line; it names the gRPC code when the server answered with one
    for code in CODES:
        if code in last or code.lower().replace("_", " ") in last.lower():
            return RemoteError(code, _strip_prefix(last, code))
    low = last.lower()
    hints = (
        ("UNAVAILABLE", ("unreachable", "connection refused", "failed to connect", "cannot reach",
                         "could not reach", "unavailable")),
        ("DEADLINE_EXCEEDED", ("deadline", "timed out", "timeout")),
        ("UNAUTHENTICATED", ("token", "unauthenticated", "unauthorized")),
    )
    for code, words in hints:
        if any(w in low for w in words):
            return RemoteError(code, _strip_prefix(last, code))
    return RemoteError("INTERNAL", last)


def _strip_prefix(line: str, code: str) -> str:
    """Drop a leading "lvss remote:", "error:" or the code itself from a CLI error line."""
    text = line
    for prefix in ("lvss remote:", "lvss:", "error:", f"{code}:", code):
        if text.lower().startswith(prefix.lower()):
            text = text[len(prefix):].strip()
    return text or line


def _vectorize_subprocess(image_bytes: bytes, settings: Settings) -> str:
    if settings.token_file and not os.path.isfile(os.path.expanduser(settings.token_file)):
        _read_token(settings)  # raises the SETUP error naming the file
    with tempfile.TemporaryDirectory(prefix="lvss-inkscape-") as tmp:
        in_path = os.path.join(tmp, "input.img")
        out_path = os.path.join(tmp, "output.svg")
        with open(in_path, "wb") as fh:
            fh.write(image_bytes)
        cmd = remote_command(settings, in_path, out_path)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=_child_env(settings.pythonpath),
                                  timeout=settings.timeout + 60, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise RemoteError(
                "SETUP",
                f"The Python set for lvss does not exist: {settings.python}\nSet 'Python with lvss' on "
                f"the Server tab (or {ENV_PYTHON}) to the python executable of the environment where "
                "lvss is installed, or run `lvss install-inkscape-extension` from that environment.",
            ) from None
        except PermissionError:
            raise RemoteError("SETUP", f"The Python set for lvss cannot be run (permission denied): "
                                       f"{settings.python}") from None
        except subprocess.TimeoutExpired:
            raise RemoteError("DEADLINE_EXCEEDED", "the lvss remote client did not return") from None
        if proc.returncode != 0:
            raise classify_failure(proc.stderr or proc.stdout, settings)
        try:
            with open(out_path, encoding="utf-8") as fh:
                return fh.read()
        except OSError:
            raise RemoteError("INTERNAL", f"lvss remote wrote no SVG (output: {(proc.stderr or '').strip()[-500:]})") from None
