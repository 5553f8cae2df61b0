"""Sending one bitmap to the lvss server and getting its layered SVG back.

Two ways, chosen per run:

* in process, through ``lvss.client``, when the Python running the extension can import both
  ``grpc`` and ``lvss`` (a Python where lvss is installed);
* otherwise by running ``lvss remote`` with a configured Python (the "Python with lvss" field,
  the ``LVSS_PYTHON`` environment variable, or the file that ``lvss install-inkscape-extension``
  writes next to the extension). Inkscape usually runs extensions with a system Python that lacks
  grpcio, so this is the common case.

Either way a request is a :class:`Run` in the background: it reports the server's info (GetInfo),
queue position, progress (stage, fraction) and warnings as events while it runs, and
:meth:`Run.cancel` stops the job on the server. :func:`vectorize` is the blocking form.

Failures are :class:`RemoteError` with a gRPC-style ``code``; :func:`explain` turns one into a
message that tells the user what to do, in the words of ``lvss.messages`` (which every lvss client
shares; see :func:`messages`). Pure standard library (no inkex), so it can be tested alone.

Which server a run uses is decided in one place, :func:`resolve_server` (the dialog's field, then
``$LVSS_SERVER``, then the address the installer recorded, then 127.0.0.1:50051); the installer writes
:func:`server_field_label`, made from the same rules, into the dialog it installs, and the progress
window's first line names the address and where it came from.
"""
from __future__ import annotations

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
from typing import Callable, Optional

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


_MESSAGES: list = []


def messages():
    """``lvss.messages`` (stage words, error messages; shared by every lvss client), loaded without
    importing lvss: the copy the installer puts beside the extension (``lvss_messages.py``), else the
    file in the lvss package this extension came from (a source checkout, or lvss/inkscape_ext in an
    installed wheel), else the lvss checkout the installer recorded. None if none is found."""
    if _MESSAGES:
        return _MESSAGES[0]
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.join(here, "lvss_messages.py"), os.path.join(here, os.pardir, "lvss", "messages.py"),
                  os.path.join(here, os.pardir, "messages.py")]
    recorded = str(read_config().get("pythonpath") or "")
    if recorded:
        candidates.append(os.path.join(recorded, "lvss", "messages.py"))
    module = None
    for path in candidates:
        if not os.path.isfile(path):
            continue
        try:
            spec = importlib.util.spec_from_file_location("lvss_messages", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            break
        except Exception:  # noqa: BLE001  a broken copy: try the next one
            module = None
    _MESSAGES.append(module)
    return module


def stage_label(stage: str) -> str:
    """The stage in a designer's words ("Fitting shapes"); "Working" without lvss.messages."""
    m = messages()
    return m.stage_label(stage) if m is not None else "Working"


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
    paths: int = 64
    mode: str = "layered"
    levels: int = 3
    seed: int = 0
    pythonpath: str = ""  # where lvss lives when it is not installed (a source checkout)
    backdrop: bool = True  # fill what the paths leave uncovered (lvss remote --backdrop)
    fill: str = "flat"  # path fills: flat | auto | linear | radial (lvss remote --fill)
    quality: str = ""  # preset fast | balanced | best (lvss remote --quality); "" = the server's default
    server_source: str = ""  # where ``server`` came from (resolve_server), shown in the progress window


def read_config(path: str = CONFIG_FILE) -> dict:
    """The settings file written by ``lvss install-inkscape-extension`` ({} if absent or unreadable)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


# where a server address came from, as the progress window says it
FROM_DIALOG = "set on the Server tab"
FROM_ENV = f"from ${ENV_SERVER}"
FROM_CONFIG = "recorded by lvss install-inkscape-extension"
FROM_DEFAULT = "the default"


def resolve_server(dialog: str = "", environ: Optional[dict] = None,
                   config: Optional[dict] = None) -> tuple[str, str]:
    """(address, where it came from): the dialog's field, else $LVSS_SERVER, else the address the
    installer recorded, else 127.0.0.1:50051. The one rule for the run, the dialog's label
    (:func:`server_field_label`) and the progress window."""
    env = os.environ if environ is None else environ
    cfg = read_config() if config is None else config
    for value, source in ((dialog, FROM_DIALOG), (env.get(ENV_SERVER), FROM_ENV),
                          (cfg.get("server"), FROM_CONFIG)):
        if value and str(value).strip():
            return str(value).strip(), source
    return DEFAULT_SERVER, FROM_DEFAULT


def server_field_label(config: Optional[dict] = None) -> str:
    """The label of the Server tab's address field: what an empty field means, following
    :func:`resolve_server`. The installer writes it into the dialog it installs (with the address it
    recorded); the .inx in the source folder says the same in general words."""
    cfg = {} if config is None else config
    recorded = str(cfg.get("server") or "").strip()
    if recorded:
        fallback = f"{recorded} (recorded at installation)"
    elif config is None:
        fallback = f"the address recorded at installation, else {DEFAULT_SERVER}"
    else:
        fallback = DEFAULT_SERVER
    return f"Server address (host:port). Empty: ${ENV_SERVER} if set, else {fallback}:"


def resolve_settings(*, server: str = "", token_file: str = "", python: str = "", timeout: float = 600.0,
                     prompt: str = "", paths: int = 64, mode: str = "layered", levels: int = 3,
                     seed: int = 0, backdrop: bool = True, fill: str = "flat", quality: str = "",
                     environ: Optional[dict] = None, config: Optional[dict] = None) -> Settings:
    """Settings from the dialog, with empty fields filled from the environment, then the config file.

    server: dialog > $LVSS_SERVER > config "server" > 127.0.0.1:50051 (:func:`resolve_server`);
    token_file: dialog > $LVSS_TOKEN_FILE > config "token_file" > none;
    python: dialog > $LVSS_PYTHON > config "python" > none.
    """
    env = os.environ if environ is None else environ
    cfg = read_config() if config is None else config
    address, source = resolve_server(server, env, cfg)
    return Settings(
        server=address, server_source=source,
        token_file=(token_file or env.get(ENV_TOKEN_FILE) or cfg.get("token_file") or "").strip(),
        timeout=float(timeout),
        python=(python or env.get(ENV_PYTHON) or cfg.get("python") or "").strip(),
        prompt=prompt, paths=int(paths), mode=mode, levels=int(levels), seed=int(seed),
        pythonpath=str(cfg.get("pythonpath") or ""), backdrop=bool(backdrop), fill=fill or "flat",
        quality=(quality or "").strip(),
    )


def explain(err: RemoteError, settings: Settings, name: str) -> str:
    """A message for the user: what failed, for which image, and what to do about it (the words of
    lvss.messages, which ``lvss remote`` and the Python client use too)."""
    server, code, msg = settings.server, err.code, err.message.strip()
    m = messages()
    if code == "SETUP":
        return msg
    if m is None:  # lvss.messages cannot be found: the server's own words
        return f"The lvss server at {server} failed on '{name}' ({code}): {msg}"
    if code == "UNAVAILABLE":
        return m.unreachable(server, "" if "reach" in msg else msg)
    if code == "DEADLINE_EXCEEDED":
        return m.timed_out(server, name, settings.timeout, msg)
    if code == "INVALID_ARGUMENT":
        return m.refused(name, msg)
    if code == "UNAUTHENTICATED":
        return m.wrong_token(server, settings.token_file, msg, ENV_TOKEN_FILE, " on the Server tab")
    if code == "RESOURCE_EXHAUSTED":
        return m.busy(server, name, msg)
    if code == "CANCELLED":
        return m.cancelled(name, " and the drawing is unchanged")
    return m.server_failed(name, msg)


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


@dataclass
class Outcome:
    """A finished request: the SVG text, the server's warnings (sentences) and its GetInfo dict."""

    svg: str
    warnings: list = field(default_factory=list)
    info: Optional[dict] = None


def prompt_note(info: Optional[dict], settings: Settings) -> Optional[str]:
    """What to tell the user before the run when the server cannot use the prompt, else None."""
    if not settings.prompt or not info or info.get("prompt_supported", True):
        return None
    return (f"The prompt will not be used: the lvss server at {settings.server} has no CLIP model. "
            "Start it with `lvss serve --models paper` (downloads the paper's checkpoints once) or "
            "`lvss serve --clip-model DIR|HUB_ID` to let the prompt steer the result.")


class Run:
    """One request to the server, running in a background thread.

    on_event(dict) is called from that thread with ``{"event": "info", ...}`` (the server's GetInfo),
    ``{"event": "queued", "position": n}``, ``{"event": "progress", "stage", "fraction", "message"}``,
    ``{"event": "preview", "stage", "fraction", "svg"}`` (the picture so far, from an lvss that knows
    previews; the progress window shows it) and ``{"event": "warning", "message"}``. :meth:`cancel` stops the job on the server;
    :meth:`result` waits and returns the :class:`Outcome` or raises :class:`RemoteError`.
    """

    def __init__(self, image_bytes: bytes, settings: Settings,
                 on_event: Optional[Callable[[dict], None]] = None):
        self.image_bytes = image_bytes
        self.settings = settings
        self.on_event = on_event
        self.done = threading.Event()
        self.cancel_requested = threading.Event()
        self._outcome: Optional[Outcome] = None
        self._error: Optional[RemoteError] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "Run":
        """Check the setup (raises RemoteError SETUP at once), then start the request."""
        client = _load_client()
        if client is None:
            if not self.settings.python:
                raise RemoteError("SETUP", no_python_message())
            if self.settings.token_file and not os.path.isfile(os.path.expanduser(self.settings.token_file)):
                _read_token(self.settings)  # raises the SETUP error naming the file
            target = self._subprocess
        else:
            target = lambda: self._in_process(client)  # noqa: E731
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

    # ---------------------------------------------------------------------------------------------
    def _emit(self, event: dict) -> None:
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

    def _cancelled_error(self) -> RemoteError:
        return RemoteError("CANCELLED", "you cancelled it; the job was stopped on the server")

    def _in_process(self, client) -> Outcome:
        settings = self.settings
        token = _read_token(settings)
        warnings: list = []
        try:
            with client.Client(settings.server, token=token) as conn:
                info = conn.info(timeout=min(10.0, settings.timeout))
                self._emit({"event": "info", **info})

                def on_progress(p) -> None:
                    label = getattr(p, "label", None)  # an lvss older than the designer's words has none
                    if p.stage == "queued":
                        self._emit({"event": "queued", "position": p.position, "label": label})
                    else:
                        self._emit({"event": "progress", "stage": p.stage, "fraction": float(p.fraction),
                                    "message": p.message, "label": label or stage_label(p.stage)})

                # only when asked for, so that a flat request still works with an older client
                extra = {"fill": settings.fill} if settings.fill != "flat" else {}
                if settings.quality and "quality" in getattr(client, "EXTRA_OPTIONS", ()):
                    extra["quality"] = settings.quality
                elif settings.quality:
                    warnings.append(_old_client_note(settings, "the server's default quality was used"))
                    self._emit({"event": "warning", "message": warnings[-1]})
                def on_preview(p) -> None:
                    self._emit({"event": "preview", "stage": p.stage, "fraction": float(p.fraction),
                                "svg": p.svg})

                # previews only from a client that knows them (an older lvss has no on_preview)
                more = {"on_preview": on_preview} if getattr(client, "PREVIEWS", False) and self.on_event else {}
                result = conn.vectorize(
                    self.image_bytes, prompt=settings.prompt, paths=settings.paths, mode=settings.mode,
                    levels=settings.levels, seed=settings.seed, timeout=settings.timeout,
                    on_progress=on_progress, cancel=self.cancel_requested, extra=extra or None, **more)
        except client.ClientError as err:
            if self.cancel_requested.is_set() and err.code == "CANCELLED":
                raise self._cancelled_error() from None
            code = getattr(err, "code", "INTERNAL")
            message = getattr(err, "message", None) or str(err)
            raise RemoteError(code if code in CODES else "INTERNAL", message) from None
        for warning in result.warnings:
            warnings.append(warning)
            self._emit({"event": "warning", "message": warning})
        svg = result.svg
        if settings.backdrop:
            try:
                from lvss.backdrop import add_to_svg, backdrop_from_bytes

                bd = backdrop_from_bytes(self.image_bytes, svg)
                if bd is not None:
                    svg = add_to_svg(svg, bd)
            except Exception as err:  # noqa: BLE001  the result is fine; only the extra layer is missing
                warnings.append(f"no backdrop layer ({type(err).__name__}: {err})")
        return Outcome(svg, warnings, info)

    def _subprocess(self) -> Outcome:
        settings = self.settings
        tmp = tempfile.mkdtemp(prefix="lvss-inkscape-")
        try:
            in_path = os.path.join(tmp, "input.img")
            out_path = os.path.join(tmp, "output.svg")
            with open(in_path, "wb") as fh:
                fh.write(self.image_bytes)
            cmd = remote_command(settings, in_path, out_path) + ["--events", "--stdin-cancel", "--progress", "never"]
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=_child_env(settings.pythonpath))
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
                raise classify_failure(stderr or "", settings)
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


def vectorize(image_bytes: bytes, settings: Settings,
              on_event: Optional[Callable[[dict], None]] = None) -> Outcome:
    """The layered SVG the server makes from ``image_bytes`` (an encoded bitmap), with the server's
    warnings; blocks until done. Raises RemoteError (see module doc)."""
    return Run(image_bytes, settings, on_event).start().result()


def remote_command(settings: Settings, in_path: str, out_path: str) -> list[str]:
    """The ``lvss remote`` command line run with the configured Python."""
    cmd = [settings.python, "-m", REMOTE_MODULE, in_path, "-o", out_path, "--server", settings.server,
           "--paths", str(settings.paths), "--mode", settings.mode, "--levels", str(settings.levels),
           "--seed", str(settings.seed), "--timeout", f"{settings.timeout:g}"]
    if settings.prompt:
        cmd += ["--prompt", settings.prompt]
    if settings.token_file:
        cmd += ["--token-file", os.path.expanduser(settings.token_file)]
    if settings.backdrop:
        cmd += ["--backdrop"]
    if settings.fill != "flat":  # flat is every server's default; older clients lack --fill
        cmd += ["--fill", settings.fill]
    if settings.quality:  # a server older than the option ignores it (its default preset applies)
        cmd += ["--quality", settings.quality]
    return cmd


def _old_client_note(settings: Settings, what: str) -> str:
    """A warning for a choice the lvss client in this Python is too old to send."""
    return (f"The lvss installed for Inkscape's Python is older than the Quality choice, so {what}. "
            "Update lvss there (pip install -U \".[server]\" from the lvss folder), then run "
            "`lvss install-inkscape-extension` again.")


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
    if "unrecognized arguments" in stderr or "invalid choice: 'remote'" in stderr:
        return RemoteError(
            "SETUP",
            f"The lvss installed for {settings.python} is older than this extension ({last}).\n"
            "Update it (pip install -U \".[server]\" from the lvss folder, in that environment), then run "
            "`lvss install-inkscape-extension` there again.",
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
