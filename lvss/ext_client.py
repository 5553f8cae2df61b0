"""The remote client of the Inkscape and Blender extensions: one request to an lvss server, run in the
background, in process or through ``lvss remote``.

* **in process**: :mod:`lvss.client` (gRPC) in the host application's own Python, where grpc and
  protobuf import (Blender: the wheels its extension bundles; Inkscape: a Python with grpcio);
* **lvss remote**: ``python -m lvss.cli.remote --events --stdin-cancel`` run with a Python where lvss is
  installed ("Python with lvss"), whose JSON lines are the same events as in process.

:class:`Run` is the request: it reports ``{"event": ...}`` dicts to ``on_event`` from its thread
(``info``, ``queued``, ``progress``, ``preview``, ``warning``, ``backdrop``, ``done``: the ``lvss remote
--events`` lines, which :func:`progress_event` and :func:`preview_event` make for both ways), keeps the
latest progress for hosts that poll (:meth:`Run.status`), and :meth:`Run.cancel` stops the job on the
server. Every failure is a :class:`RemoteError` whose ``code`` is a gRPC status name of
:data:`lvss.client.CODES` or ``SETUP`` (a problem on this side); :func:`explain` words it for the user
with :mod:`lvss.messages`, naming the host's own place to fix it (:class:`Host`).

Which server, token file, CA certificate and Python a run uses is decided here, once
(:func:`resolve_server`, :func:`resolve_python`, :func:`resolve_token_file`): the host's field, then the
environment ($LVSS_SERVER, $LVSS_PYTHON, $LVSS_TOKEN_FILE), then what an installer recorded.

Standard library only (grpc only inside :mod:`lvss.client`, when a call is made), and no absolute lvss
import, so that the extensions can carry it: it is bundled with ``client.py``, ``messages.py`` and
``_proto/`` (:data:`BUNDLED`) as the package ``_lvss`` inside the Blender extension (``lvss
build-blender-extension``) and beside the Inkscape extension (``lvss install-inkscape-extension``).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import client as _client
from . import messages

# what the extensions carry of lvss, as the package PACKAGE (paths relative to lvss/)
PACKAGE = "_lvss"
# options.py and config.py: the declaration of the options the client sends (standard library only)
BUNDLED = ("client.py", "messages.py", "ext_client.py", "options.py", "config.py", "_proto/__init__.py",
           "_proto/vectorizer_pb2.py", "_proto/vectorizer_pb2_grpc.py")
BUNDLE_INIT = ('"""A copy of the lvss remote client (lvss/ext_client.py, lvss/client.py, lvss/messages.py, '
               'the option declaration lvss/options.py and lvss/config.py, and lvss/_proto), carried by an lvss extension."""\n')

DEFAULT_SERVER = _client.DEFAULT_SERVER
ENV_SERVER = "LVSS_SERVER"
ENV_PYTHON = "LVSS_PYTHON"
ENV_TOKEN_FILE = _client.TOKEN_FILE_ENV
REMOTE_MODULE = "lvss.cli.remote"  # `lvss remote` as a module: runs whether or not the script is on PATH
CODES = _client.CODES
SETUP = "SETUP"
# Settings.connection
AUTO, GRPC, COMMAND = "AUTO", "GRPC", "COMMAND"
BACKDROP_NEEDS = ("numpy", "PIL", "lxml")  # what lvss.backdrop imports

# where a server address came from (resolve_server), as the Inkscape progress window says it
FROM_DIALOG = "set on the Server tab"
FROM_ENV = f"from ${ENV_SERVER}"
FROM_CONFIG = "recorded by lvss install-inkscape-extension"
FROM_DEFAULT = "the default"


class RemoteError(_client.ClientError):
    """A request that failed: the client's error (so ``except ClientError`` catches both), whose code
    may also be SETUP (a setting on this side to fix before any call). message: the server's or our
    text."""

    def __init__(self, code: str, message: str):
        super().__init__(code, message)
        self.code = code if code == SETUP else self.code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class Host:
    """How an extension's user fixes a setting, for the messages: ``place`` ("on the Server tab"),
    ``place_noun`` (where another server address goes), ``token_where`` (appended to the wrong-token
    advice), ``unchanged`` (what Cancel left alone), ``reinstall`` (the command that sets the extension
    up again), ``no_python`` (the advice when neither way to the server works) and ``one_line`` (a
    report with no line breaks, as Blender's)."""

    place: str = "on the Server tab"
    place_noun: str = "the Server tab"
    token_where: str = " on the Server tab"
    unchanged: str = " and the drawing is unchanged"
    reinstall: str = "lvss install-inkscape-extension"
    no_python: str = "no Python with lvss is set"
    one_line: bool = False


@dataclass(frozen=True)
class Settings:
    """One request: where the server is and how to reach it, and the options sent with the image
    (None or "": the server's default). ``connection``: AUTO (in process where this Python can, else
    ``lvss remote``), GRPC or COMMAND. ``python``/``pythonpath``: the Python that runs ``lvss remote``
    and a folder holding lvss for it (a source checkout). ``previews``: ask for the picture so far.
    ``backdrop``: add the layer that fills what the paths leave uncovered (``lvss remote --backdrop``)."""

    server: str = DEFAULT_SERVER
    token_file: str = ""
    tls_ca: str = ""
    timeout: float = 600.0
    connection: str = AUTO
    python: str = ""
    pythonpath: str = ""
    prompt: str = ""
    paths: Optional[int] = None
    mode: Optional[str] = None
    levels: Optional[int] = None
    seed: Optional[int] = None
    fill: str = ""
    quality: str = ""
    backdrop: bool = False
    previews: bool = True
    server_source: str = ""  # where ``server`` came from (resolve_server)


# -- where the settings come from -------------------------------------------------------------------
def _first(*values) -> str:
    for value in values:
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""


def resolve_server(field: str = "", environ: Optional[dict] = None,
                   config: Optional[dict] = None) -> tuple[str, str]:
    """(address, where it came from): the host's field, else $LVSS_SERVER, else the address an
    installer recorded (``config["server"]``), else 127.0.0.1:50051."""
    env = os.environ if environ is None else environ
    cfg = config or {}
    for value, source in ((field, FROM_DIALOG), (env.get(ENV_SERVER), FROM_ENV), (cfg.get("server"), FROM_CONFIG)):
        if _first(value):
            return _first(value), source
    return DEFAULT_SERVER, FROM_DEFAULT


def resolve_python(field: str = "", environ: Optional[dict] = None, config: Optional[dict] = None) -> str:
    """The Python that runs ``lvss remote``: the host's field, else $LVSS_PYTHON, else the one an
    installer recorded (``config["python"]``); "" when none is set."""
    env = os.environ if environ is None else environ
    return os.path.expanduser(_first(field, env.get(ENV_PYTHON), (config or {}).get("python")))


def resolve_token_file(field: str = "", environ: Optional[dict] = None, config: Optional[dict] = None) -> str:
    """The file holding the server's token: the host's field, else $LVSS_TOKEN_FILE, else
    ``config["token_file"]``; "" for none."""
    env = os.environ if environ is None else environ
    return _first(field, env.get(ENV_TOKEN_FILE), (config or {}).get("token_file"))


def server_field_label(config: Optional[dict] = None) -> str:
    """The label of a server address field, following :func:`resolve_server`: what an empty field
    means (``config``: what the installer recorded; None: said in general words)."""
    recorded = _first((config or {}).get("server"))
    if recorded:
        fallback = f"{recorded} (recorded at installation)"
    elif config is None:
        fallback = f"the address recorded at installation, else {DEFAULT_SERVER}"
    else:
        fallback = DEFAULT_SERVER
    return f"Server address (host:port). Empty: ${ENV_SERVER} if set, else {fallback}:"


# -- what this Python can do ------------------------------------------------------------------------
def load_client():
    """:mod:`lvss.client` (this package's), where this Python can import grpc and the gRPC stubs;
    else None (then ``lvss remote`` is the way)."""
    try:
        import grpc  # noqa: F401

        importlib.import_module(f"{__package__}._proto.vectorizer_pb2_grpc")
    except Exception:  # noqa: BLE001  no grpc, or a protobuf too old for the stubs
        return None
    return _client


def backdrop_module():
    """:mod:`lvss.backdrop` where this Python can run it (numpy, Pillow, lxml and lvss), else None."""
    if any(importlib.util.find_spec(name) is None for name in BACKDROP_NEEDS):
        return None
    for name in (f"{__package__}.backdrop", "lvss.backdrop"):
        try:
            return importlib.import_module(name)
        except Exception:  # noqa: BLE001  not carried in a bundle / no lvss here
            continue
    return None


def add_backdrop(image: bytes, svg: str, module=None) -> tuple[str, Optional[dict], Optional[str]]:
    """(svg with a backdrop layer, the ``backdrop`` event or None, a warning or None): the layer
    filling what the paths leave uncovered where the image is opaque (:mod:`lvss.backdrop`). A
    backdrop that cannot be made costs only the warning; the SVG is returned as it was."""
    bd_mod = module or backdrop_module()
    if bd_mod is None:
        return svg, None, (f"no backdrop layer: this Python ({sys.executable}) cannot make one (it needs lvss "
                           f"with {', '.join(BACKDROP_NEEDS)}); set a Python with lvss to get it")
    try:
        bd = bd_mod.backdrop_from_bytes(image, svg)
        if bd is None:
            return svg, None, None
        return bd_mod.add_to_svg(svg, bd), {"event": "backdrop", "fill": bd.fill, "gap": round(bd.gap, 6)}, None
    except Exception as e:  # noqa: BLE001  the result itself is fine; only the extra layer is missing
        return svg, None, f"no backdrop layer ({type(e).__name__}: {e})"


# -- the events, the same in process and from `lvss remote --events` --------------------------------
def progress_event(p) -> dict:
    """The event for a :class:`lvss.client.Progress`: ``queued`` (``position``, ``label``) or
    ``progress`` (``stage``, ``fraction``, ``message``, ``label``: the stage in a designer's words)."""
    if p.stage == "queued":
        return {"event": "queued", "position": p.position, "label": messages.queued_text(p.position)}
    return {"event": "progress", "stage": p.stage, "fraction": round(float(p.fraction), 4), "message": p.message,
            "label": messages.stage_label(p.stage)}


def preview_event(p, path: Optional[str] = None) -> dict:
    """The event for a :class:`lvss.client.Preview`: the picture so far, as ``svg``, or as the file
    ``path`` it was written to."""
    where = {"path": str(path)} if path is not None else {"svg": p.svg}
    return {"event": "preview", "stage": p.stage, "fraction": round(float(p.fraction), 4),
            "label": messages.stage_label(p.stage), **where}


def done_event(result, seconds: Optional[float] = None) -> dict:
    """The last event: how many layers and paths the result has and how long the server took."""
    return {"event": "done", "layers": len(result.layers), "paths": sum(layer.paths for layer in result.layers),
            "seconds": result.timings.get("total") if seconds is None else seconds}


def extra_options(settings) -> dict:
    """The request options beyond the common ones (the client's ``EXTRA_OPTIONS``, from the one
    declaration in lvss.options) that were chosen, from anything that has them as attributes
    (Settings: ``fill`` and ``quality``; ``lvss remote``'s arguments); unset ones stay off the wire,
    so that a server older than an option still takes requests that do not use it."""
    return {k: v for k in _client.EXTRA_OPTIONS if (v := getattr(settings, k, None))}


# -- a request --------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """A finished request: the SVG text, the server's warnings (sentences) and its GetInfo dict."""

    svg: str
    warnings: list = field(default_factory=list)
    info: Optional[dict] = None


@dataclass(frozen=True)
class Status:
    """The latest progress of a :class:`Run`: the stage key, the overall fraction in [0, 1] (never
    decreasing), the server's message and ``label``, the stage in a designer's words."""

    stage: str
    fraction: float
    message: str = ""
    label: str = "Connecting"


def read_token(settings: Settings, host: Host = Host()) -> Optional[str]:
    """The token in ``settings.token_file`` (None without one); SETUP error if it cannot be read."""
    if not settings.token_file:
        return None
    path = os.path.expanduser(settings.token_file)
    try:
        return _client.read_token(None, path)
    except _client.ClientError as err:
        raise RemoteError(SETUP, f"Cannot read the token file: {err.message}. Choose the file holding the "
                                 f"server's token {host.place}, or clear the field (and {ENV_TOKEN_FILE}) if the "
                                 "server needs no token.") from None


def _check_tls(settings: Settings, host: Host) -> None:
    if settings.tls_ca and not os.path.isfile(os.path.expanduser(settings.tls_ca)):
        raise RemoteError(SETUP, f"The TLS certificate file {settings.tls_ca} does not exist; choose the server's "
                                 f"CA certificate (PEM) {host.place}, or clear the field for a server without TLS.")


class Run:
    """One request to the server, running in a background thread (see the module doc).

    ``on_event(dict)`` is called from that thread; :meth:`start` checks the setup (raises
    RemoteError SETUP at once) and starts; :meth:`cancel` stops the job on the server; :meth:`result`
    waits and returns the :class:`Outcome` or raises RemoteError; :meth:`status` is the latest
    progress, for hosts that poll; ``done`` is set when it ended.
    """

    def __init__(self, image_bytes: bytes, settings: Settings, on_event: Optional[Callable[[dict], None]] = None,
                 host: Host = Host()):
        self.image_bytes = image_bytes
        self.settings = settings
        self.on_event = on_event
        self.host = host
        self.done = threading.Event()
        self.cancel_requested = threading.Event()
        self.started = time.monotonic()
        self.way = ""  # "in process" or "lvss remote", once started
        self._status = Status("connecting", 0.0)
        self._lock = threading.Lock()
        self._outcome: Optional[Outcome] = None
        self._error: Optional[RemoteError] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "Run":
        s, host = self.settings, self.host
        if not s.server.strip():
            raise RemoteError(SETUP, f"No server address is set; enter HOST:PORT (e.g. {DEFAULT_SERVER}) {host.place}.")
        _check_tls(s, host)
        token = read_token(s, host)
        client = load_client() if s.connection != COMMAND else None
        if s.connection == GRPC and client is None:
            raise RemoteError(SETUP, f"The connection is set to gRPC in process, but this Python ({sys.executable}) "
                                     f"cannot import grpc and the lvss client. Install the extension with its wheels "
                                     f"(`{host.reinstall}`), or choose the Auto or lvss remote connection {host.place}.")
        if client is not None and s.connection == AUTO and s.backdrop and s.python and backdrop_module() is None:
            client = None  # this Python cannot make the backdrop: the Python with lvss can
        if client is not None:
            self.way = "in process"
            target = lambda: self._in_process(client, token)  # noqa: E731
        elif s.python:
            if shutil.which(s.python) is None:
                raise RemoteError(SETUP, f"Cannot run the 'Python with lvss' {s.python}: it does not exist or is not "
                                         f"executable. Set 'Python with lvss' {host.place} (or {ENV_PYTHON}) to the "
                                         "python executable of the environment where lvss is installed.")
            self.way = "lvss remote"
            target = self._subprocess
        else:
            raise RemoteError(SETUP, host.no_python)
        self._thread = threading.Thread(target=self._guard, args=(target,), name="lvss-request", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the server to stop the job (returns at once; :meth:`result` then raises CANCELLED)."""
        self.cancel_requested.set()

    def result(self) -> Outcome:
        self.done.wait()
        if self._error is not None:
            raise self._error
        assert self._outcome is not None
        return self._outcome

    def status(self) -> Status:
        with self._lock:
            return self._status

    # ---------------------------------------------------------------------------------------------
    def _emit(self, event: dict) -> None:
        kind = event.get("event")
        if kind in ("progress", "queued"):
            with self._lock:
                fraction = max(self._status.fraction, float(event.get("fraction") or 0.0))
                self._status = Status(str(event.get("stage") or kind), fraction, str(event.get("message") or ""),
                                      str(event.get("label") or messages.stage_label(event.get("stage"))))
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # noqa: BLE001  a display problem must not lose the result
                pass

    def _guard(self, target) -> None:
        try:
            self._outcome = target()
        except RemoteError as err:
            self._error = err
        except Exception as err:  # noqa: BLE001
            self._error = RemoteError("INTERNAL", f"{type(err).__name__}: {err}")
        finally:
            if self.cancel_requested.is_set():  # Cancel wins, even over a result that just arrived
                self._outcome = None
                if self._error is None or self._error.code != "CANCELLED":
                    self._error = self._cancelled_error()
            self.done.set()

    @staticmethod
    def _cancelled_error() -> RemoteError:
        return RemoteError("CANCELLED", "you cancelled it; the job was stopped on the server")

    def _in_process(self, client, token: Optional[str]) -> Outcome:
        s = self.settings
        warnings: list = []

        def warn(message: str) -> None:
            warnings.append(message)
            self._emit({"event": "warning", "message": message})

        tls = {"tls_ca": os.path.expanduser(s.tls_ca)} if s.tls_ca else {}
        previews = {"on_preview": lambda p: self._emit(preview_event(p))} if s.previews else {}
        try:
            with client.Client(s.server, token=token, **tls) as conn:
                info = conn.info(timeout=min(10.0, s.timeout))
                self._emit({"event": "info", **info})
                result = conn.vectorize(
                    self.image_bytes, prompt=s.prompt, paths=s.paths, mode=s.mode, levels=s.levels, seed=s.seed,
                    timeout=s.timeout, on_progress=lambda p: self._emit(progress_event(p)),
                    cancel=self.cancel_requested, extra=extra_options(s) or None, **previews)
        except client.ClientError as err:
            if self.cancel_requested.is_set() and err.code == "CANCELLED":
                raise self._cancelled_error() from None
            raise RemoteError(err.code if err.code in CODES else "INTERNAL", err.message) from None
        for warning in result.warnings:
            warn(warning)
        svg = result.svg
        if s.backdrop:
            svg, event, warning = add_backdrop(self.image_bytes, svg)
            if event is not None:
                self._emit(event)
            if warning:
                warn(warning)
        self._emit(done_event(result))
        return Outcome(svg, warnings, info)

    def _subprocess(self) -> Outcome:
        s = self.settings
        tmp = tempfile.mkdtemp(prefix="lvss-remote-")
        try:
            in_path = os.path.join(tmp, "input.img")
            out_path = os.path.join(tmp, "output.svg")
            with open(in_path, "wb") as fh:
                fh.write(self.image_bytes)
            cmd = remote_command(s, in_path, out_path)
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=child_env(s.pythonpath))
            except OSError as err:
                raise RemoteError(SETUP, f"The Python set for lvss cannot be run ({err.strerror or err}): "
                                         f"{s.python}") from None
            info: dict = {}
            warnings: list = []
            stderr_parts: list = []

            def read_stdout() -> None:
                for line in proc.stdout:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if not isinstance(event, dict):
                        continue
                    if event.get("event") == "info":
                        info.update({k: v for k, v in event.items() if k != "event"})
                    elif event.get("event") == "warning":
                        warnings.append(str(event.get("message", "")))
                    self._emit(event)

            readers = [threading.Thread(target=read_stdout, daemon=True),
                       threading.Thread(target=lambda: stderr_parts.append(proc.stderr.read()), daemon=True)]
            for t in readers:
                t.start()
            rc = self._wait(proc)
            for t in readers:
                t.join(timeout=10)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                try:
                    pipe.close()
                except (OSError, ValueError):
                    pass
            stderr = "".join(stderr_parts)
            if rc != 0:
                if self.cancel_requested.is_set():
                    raise self._cancelled_error()
                if rc is None:
                    raise RemoteError("DEADLINE_EXCEEDED", "the lvss remote client did not return")
                raise classify_failure(stderr, s, self.host)
            try:
                with open(out_path, encoding="utf-8") as fh:
                    return Outcome(fh.read(), warnings, info or None)
            except OSError:
                raise RemoteError("INTERNAL", f"lvss remote wrote no SVG (output: {stderr.strip()[-500:]})") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _wait(self, proc) -> Optional[int]:
        """Wait for ``lvss remote``. On cancel, tell it through stdin (it cancels the job on the server
        and exits), SIGTERM it after 10 s, kill it after 20 s. Returns its exit status, or None when it
        overran the timeout (it is killed)."""
        deadline = time.monotonic() + self.settings.timeout + 60
        cancel_at = None
        terminated = False
        while True:
            try:
                return proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if cancel_at is None and self.cancel_requested.is_set():
                cancel_at = now
                try:
                    proc.stdin.write("cancel\n")
                    proc.stdin.close()
                except (OSError, ValueError):
                    pass
            if cancel_at is not None and not terminated and now - cancel_at > 10:
                proc.terminate()
                terminated = True
            if (cancel_at is not None and now - cancel_at > 20) or now > deadline:
                proc.kill()
                proc.wait()
                return None if cancel_at is None else proc.returncode


def vectorize(image_bytes: bytes, settings: Settings, on_event: Optional[Callable[[dict], None]] = None,
              host: Host = Host()) -> Outcome:
    """The SVG the server makes from ``image_bytes`` (an encoded bitmap), with its warnings; blocks
    until done. Raises RemoteError."""
    return Run(image_bytes, settings, on_event, host).start().result()


def remote_command(settings: Settings, in_path: str, out_path: str) -> list[str]:
    """The ``lvss remote`` command line run with ``settings.python`` (JSON events on stdout, cancel
    through stdin); options left unset are not passed (the server's defaults)."""
    s = settings
    cmd = [s.python, "-m", REMOTE_MODULE, in_path, "-o", out_path, "--server", s.server,
           "--timeout", f"{s.timeout:g}", "--events", "--stdin-cancel", "--progress", "never"]
    for flag, value in (("--paths", s.paths), ("--mode", s.mode), ("--levels", s.levels), ("--seed", s.seed),
                        ("--prompt", s.prompt), ("--fill", s.fill), ("--quality", s.quality)):
        if value is not None and value != "":
            cmd += [flag, str(value)]
    if s.token_file:
        cmd += ["--token-file", os.path.expanduser(s.token_file)]
    if s.tls_ca:
        cmd += ["--tls-ca", os.path.expanduser(s.tls_ca)]
    if s.backdrop:
        cmd += ["--backdrop"]
    if not s.previews:
        cmd += ["--no-previews"]
    return cmd


def is_host_module_dir(path: str) -> bool:
    """True for a folder that a host application puts on PYTHONPATH for its own modules (inkex, bpy,
    an extensions folder, the folder of this copy): its modules could shadow what lvss imports."""
    real = os.path.realpath(path)
    here = os.path.dirname(os.path.realpath(__file__))
    extension = os.path.dirname(here) if os.path.basename(here) == PACKAGE else ""  # the folder carrying this copy
    if extension and (real == extension or (real == os.path.dirname(extension)
                                            and os.path.basename(real) == "extensions")):
        return True
    if "inkex" in real.split(os.sep) or any(os.path.isdir(os.path.join(real, m)) for m in ("inkex", "bpy")):
        return True
    try:
        return any(name.endswith(".inx") for name in os.listdir(real))
    except OSError:
        return False


def child_env(extra_path: str = "") -> dict:
    """The environment for ``lvss remote``: this one without PYTHONHOME and without the host's own
    module folders on PYTHONPATH (:func:`is_host_module_dir`), plus ``extra_path`` (a checkout of lvss)."""
    env = dict(os.environ)
    kept = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and not is_host_module_dir(p)]
    if extra_path and extra_path not in kept:
        kept.append(extra_path)
    if kept:
        env["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    return env


# -- failures ---------------------------------------------------------------------------------------
def classify_failure(stderr: str, settings: Settings, host: Host = Host()) -> RemoteError:
    """A RemoteError from the stderr of a failed ``lvss remote`` run (its last error line names the
    gRPC code when the server answered with one)."""
    lines = [ln.strip() for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error:" in ln]
    last = errors[-1] if errors else (lines[-1] if lines else "no error message")
    if "No module named" in stderr:
        missing = last.split("No module named", 1)[-1].strip(" '\")")
        return RemoteError(
            SETUP,
            f"The Python set for lvss ({settings.python}) cannot import {missing or 'lvss'} ({last}).\n"
            f"Install lvss with its server extra there, from the lvss folder:  "
            f"{shlex.quote(settings.python)} -m pip install -e \".[server]\"\n"
            f"or set 'Python with lvss' {host.place} (or {ENV_PYTHON}) to the Python where lvss is installed.")
    if "unrecognized arguments" in stderr or "invalid choice: 'remote'" in stderr:
        return RemoteError(
            SETUP,
            f"The lvss installed for {settings.python} is older than this extension ({last}).\n"
            "Update it (pip install -U \".[server]\" from the lvss folder, in that environment), then run "
            f"`{host.reinstall}` there again.")
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


def explain(err: RemoteError, settings: Settings, name: str, host: Host = Host()) -> str:
    """A message for the user: what failed, for which image, and what to do about it, in the words
    every lvss client uses (lvss.messages), with the host's own place to fix it."""
    server, code, msg = settings.server, err.code, err.message.strip()
    m = messages
    if code == SETUP:
        text = msg
    elif code == "UNAVAILABLE":
        text = m.unreachable(server, "" if "reach" in msg else msg, where_to_set=host.place_noun)
    elif code == "DEADLINE_EXCEEDED":
        text = m.timed_out(server, name, settings.timeout, msg, where_to_set=host.place)
    elif code == "INVALID_ARGUMENT":
        text = m.refused(name, msg)
    elif code == "UNAUTHENTICATED":
        text = m.wrong_token(server, settings.token_file, msg, ENV_TOKEN_FILE, host.token_where)
    elif code == "RESOURCE_EXHAUSTED":
        text = m.busy(server, name, msg)
    elif code == "CANCELLED":
        text = m.cancelled(name, host.unchanged)
    else:
        text = m.server_failed(name, msg)
    return one_line(text) if host.one_line else text


def one_line(text: str) -> str:
    """``text`` on one line: its lines joined, with a full stop where a line ended a sentence."""
    out = ""
    for line in (ln.strip() for ln in text.splitlines()):
        if not line:
            continue
        sentence = line[:1].isupper() and not out.endswith((".", ":", ";"))
        out = line if not out else out + ("." if sentence else "") + " " + line
    return out


def prompt_note(info: Optional[dict], settings: Settings) -> Optional[str]:
    """What to tell the user before the run when the server cannot use the prompt, else None."""
    if not settings.prompt or not info or info.get("prompt_supported", True):
        return None
    return (f"The prompt will not be used: the lvss server at {settings.server} has no CLIP model. "
            "Start it with `lvss serve --models paper` (downloads the paper's checkpoints once) or "
            "`lvss serve --clip-model DIR|HUB_ID` to let the prompt steer the result.")
