"""Sending an image to an lvss server without blocking Blender.

A :class:`Job` runs one request in the background and is polled from Blender's main thread (the
modal operator's timer, or a loop for scripts): :meth:`Job.poll` returns the latest progress and
whether it finished, :meth:`Job.cancel` stops it (and the job on the server).

Two ways to reach the server, chosen by :func:`start`:

* **in process** (gRPC): the client from lvss (``lvss.client``), bundled in the extension as
  ``_lvss`` together with the grpcio and protobuf wheels that the extension platform installs
  (``lvss build-blender-extension``), or importable from an lvss installed in Blender's Python;
* **lvss remote**: runs ``python -m lvss.remote_cli`` with a Python where lvss is installed (the
  "Python with lvss" preference, or the environment variable LVSS_PYTHON) and reads its progress
  bar. This is the fallback when Blender's Python cannot import grpc; it shows no previews.

With ``Settings.previews`` a gRPC job also receives the server's previews (an SVG of the result so
far, the first within about a second of the job's start): :meth:`Job.take_preview` hands over the
latest one.

Failures are :class:`RemoteError` with a gRPC-style ``code`` (or ``SETUP`` for problems on this
side); :func:`explain` turns one into a message saying what to do.
"""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Optional

DEFAULT_SERVER = "127.0.0.1:50051"
ENV_PYTHON = "LVSS_PYTHON"
REMOTE_MODULE = "lvss.remote_cli"
CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "INVALID_ARGUMENT", "UNAUTHENTICATED", "RESOURCE_EXHAUSTED",
         "CANCELLED", "INTERNAL")
PREFS_PATH = "Edit > Preferences > Add-ons > lvss"


class RemoteError(Exception):
    """A request that failed. code: one of CODES or "SETUP"; message: the server's or our text."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Settings:
    """One request's connection and options (from the preferences and the operator)."""

    server: str = DEFAULT_SERVER
    token_file: str = ""
    tls_ca: str = ""
    timeout: float = 600.0
    connection: str = "AUTO"  # AUTO | GRPC | COMMAND
    python: str = ""
    prompt: str = ""
    paths: int = 128
    mode: str = "layered"
    levels: int = 4
    seed: int = 0
    quality: str = ""  # fast | balanced | best; "" = the server's default (not sent)
    previews: bool = False  # ask for the picture so far (Job.take_preview); gRPC connection only


@dataclass(frozen=True)
class Status:
    """What :meth:`Job.poll` reports: the stage, overall fraction in [0, 1], and a message."""

    stage: str
    fraction: float
    message: str = ""


def load_client():
    """The lvss client module (bundled copy first, then an installed lvss), or None without grpc."""
    try:
        import grpc  # noqa: F401
    except ImportError:
        return None
    try:
        from ._lvss import client  # the copy bundled by `lvss build-blender-extension`
        return client
    except ImportError:
        pass
    try:
        from lvss import client
        return client
    except Exception:  # noqa: BLE001  lvss absent or broken in this Python
        return None


def python_for_fallback(settings: Settings) -> str:
    return (settings.python or os.environ.get(ENV_PYTHON, "")).strip()


def _host_port(server: str) -> tuple:
    host, sep, port = server.rpartition(":")
    return (host.strip("[]"), port) if sep and port.isdigit() else (server, "50051")


def no_client_message(settings: Settings) -> str:
    return (
        f"Blender's Python ({sys.executable}) cannot import grpc, so lvss cannot talk to the server "
        "itself, and no 'Python with lvss' is set for the fallback.\n"
        "Either install the extension built with its wheels (`lvss build-blender-extension`, then "
        "Edit > Preferences > Get Extensions > Install from Disk), or set 'Python with lvss' in "
        f"{PREFS_PATH} to the python of an environment where lvss is installed with its server extra "
        "(print it there with: python -c \"import sys; print(sys.executable)\")."
    )


def _messages():
    """lvss.messages, the wording every lvss client shares (the copy bundled by `lvss
    build-blender-extension` first, then an installed lvss); None where neither is there."""
    for load in (lambda: __import__(f"{__package__}._lvss.messages", fromlist=["stage_label"]),
                 lambda: __import__("lvss.messages", fromlist=["stage_label"])):
        try:
            return load()
        except Exception:  # noqa: BLE001  not bundled / lvss absent
            continue
    return None


def stage_words(stage: str) -> str:
    """A pipeline stage in a designer's words ("Fitting shapes"), as the Inkscape progress window and
    ``lvss remote`` say it; the stage as it came when the table does not know it (a queue position)."""
    m = _messages()
    return m.stage_label(stage) if m is not None and stage in m.STAGE_WORDS else stage


def explain(err: RemoteError, settings: Settings, name: str) -> str:
    """A message for the user: what failed, for which image, and what to do about it, in the words
    the Inkscape extension and ``lvss remote`` use (lvss.messages), on one line for Blender's report."""
    code, msg = err.code, err.message.strip()
    m = _messages()
    if code == "SETUP":
        return msg
    if m is None:    # no lvss at all in Blender's Python: only the `lvss remote` fallback runs
        return f"{code}: {msg}"
    where = f"the add-on's preferences page ({PREFS_PATH})"
    text = {
        "UNAVAILABLE": lambda: m.unreachable(settings.server, msg, where_to_set=where),
        "UNAUTHENTICATED": lambda: m.wrong_token(settings.server, settings.token_file, msg,
                                                 where=f" ('Token file' in {PREFS_PATH}; the server's is the file "
                                                       "it was started with, lvss serve --token-file FILE)"),
        "INVALID_ARGUMENT": lambda: m.refused(name, msg),
        "DEADLINE_EXCEEDED": lambda: m.timed_out(settings.server, name, settings.timeout, msg,
                                                 where_to_set=f"in {PREFS_PATH}"),
        "RESOURCE_EXHAUSTED": lambda: m.busy(settings.server, name, msg),
        "CANCELLED": lambda: m.cancelled(name, " and nothing was changed"),
    }.get(code, lambda: m.server_failed(name, msg))()
    out = ""
    for line in (ln.strip() for ln in text.splitlines()):
        sentence = line[:1].isupper() and not out.endswith((".", ":", ";"))
        out = line if not out else out + ("." if sentence else "") + " " + line
    return out


def read_token(settings: Settings) -> Optional[str]:
    if not settings.token_file:
        return None
    path = os.path.expanduser(settings.token_file)
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
    except OSError as err:
        raise RemoteError("SETUP", f"Cannot read the token file {path} ({err.strerror or err}). Choose an "
                                   f"existing file in {PREFS_PATH}, or clear the field if the server needs "
                                   "no token.") from None
    if not token:
        raise RemoteError("SETUP", f"The token file {path} is empty; copy the server's token into it.")
    return token


def _check_tls(settings: Settings) -> None:
    if settings.tls_ca and not os.path.isfile(os.path.expanduser(settings.tls_ca)):
        raise RemoteError("SETUP", f"The TLS certificate file {settings.tls_ca} does not exist; choose the "
                                   f"server's CA certificate (PEM) in {PREFS_PATH}, or clear the field for "
                                   "a server without TLS.")


class Job:
    """One request running in the background; poll it from the main thread."""

    def __init__(self):
        self._events: "queue.Queue[Status]" = queue.Queue()
        self.status = Status("connecting", 0.0)
        self.svg: Optional[str] = None
        self.error: Optional[RemoteError] = None
        self.done = False
        self.started = time.monotonic()
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._preview: Optional[str] = None  # the latest preview SVG not taken yet
        self.previews = 0  # preview events received

    # called from the worker
    def _progress(self, status: Status) -> None:
        self._events.put(status)

    def _set_preview(self, svg: str) -> None:
        with self._lock:
            self._preview = svg
            self.previews += 1

    def _finish(self, svg: Optional[str], error: Optional[RemoteError]) -> None:
        with self._lock:
            if self._cancelled.is_set():
                svg, error = None, RemoteError("CANCELLED", "cancelled by the user")
            self.svg, self.error = svg, error
            self.done = True

    # called from the main thread
    def poll(self) -> Status:
        """The latest progress (never decreasing); check :attr:`done` afterwards."""
        while True:
            try:
                ev = self._events.get_nowait()
            except queue.Empty:
                break
            self.status = Status(ev.stage, max(ev.fraction, self.status.fraction), ev.message)
        return self.status

    def take_preview(self) -> Optional[str]:
        """The latest preview (an SVG of the result so far) that arrived since the last call, else
        None; older ones that were never taken are dropped."""
        with self._lock:
            svg, self._preview = self._preview, None
        return svg

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._stop()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until done (for scripts and tests); True when done."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(0.02)
        return True

    def _stop(self) -> None:  # overridden
        pass


class _GrpcJob(Job):
    def __init__(self, client_mod, image: bytes, settings: Settings, token: Optional[str]):
        super().__init__()
        self._mod = client_mod
        self._client = None
        self._thread = threading.Thread(target=self._run, args=(image, settings, token), daemon=True,
                                        name="lvss-vectorize")
        self._thread.start()

    def _run(self, image: bytes, s: Settings, token: Optional[str]) -> None:
        mod = self._mod
        try:
            with self._lock:
                if self._cancelled.is_set():
                    raise mod.ClientError("CANCELLED", "cancelled by the user")
                self._client = mod.Client(s.server, token=token, tls_ca=os.path.expanduser(s.tls_ca) or None)

            def on_progress(p):
                if self._cancelled.is_set():
                    raise mod.ClientError("CANCELLED", "cancelled by the user")
                stage = f"queued ({p.position} ahead)" if p.stage == "queued" else p.stage
                self._progress(Status(stage, float(p.fraction), p.message))

            if s.quality and "quality" not in getattr(mod, "EXTRA_OPTIONS", ()):
                raise mod.ClientError("INVALID_ARGUMENT", "this lvss client is older than the quality option; "
                                                          "update lvss, or set Quality to Server Default")
            def on_preview(p):
                if not self._cancelled.is_set():
                    self._set_preview(p.svg)

            # previews from a client that knows them (an older lvss in Blender's Python has no on_preview)
            more = {"on_preview": on_preview} if s.previews and getattr(mod, "PREVIEWS", False) else {}
            result = self._client.vectorize(image, prompt=s.prompt, paths=s.paths, mode=s.mode,
                                            levels=s.levels, seed=s.seed, timeout=s.timeout,
                                            on_progress=on_progress,
                                            extra={"quality": s.quality} if s.quality else None, **more)
            self._finish(result.svg, None)
        except mod.ClientError as err:
            code = err.code if err.code in CODES else "INTERNAL"
            self._finish(None, RemoteError(code, err.message))
        except Exception as err:  # noqa: BLE001  anything else is reported, never raised in a thread
            self._finish(None, RemoteError("INTERNAL", f"{type(err).__name__}: {err}"))
        finally:
            client, self._client = self._client, None
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001
                    pass

    def _stop(self) -> None:
        with self._lock:
            client = self._client
        if client is not None:
            try:
                client.close()  # cancels the call in flight at once
            except Exception:  # noqa: BLE001
                pass


_BAR = re.compile(r"([^\r\n|:]+):\s*(\d+)%\|")


def remote_command(settings: Settings, python: str, in_path: str, out_path: str) -> list:
    """The ``lvss remote`` command line for the fallback."""
    cmd = [python, "-m", REMOTE_MODULE, in_path, "-o", out_path, "--server", settings.server,
           "--paths", str(settings.paths), "--mode", settings.mode, "--levels", str(settings.levels),
           "--seed", str(settings.seed), "--timeout", f"{settings.timeout:g}", "--progress", "always"]
    if settings.prompt:
        cmd += ["--prompt", settings.prompt]
    if settings.token_file:
        cmd += ["--token-file", os.path.expanduser(settings.token_file)]
    if settings.tls_ca:
        cmd += ["--tls-ca", os.path.expanduser(settings.tls_ca)]
    if settings.quality:  # only when chosen: older clients lack --quality
        cmd += ["--quality", settings.quality]
    return cmd


def classify(stderr: str, settings: Settings, python: str) -> RemoteError:
    """A RemoteError from the stderr of a failed ``lvss remote`` run."""
    lines = [ln.strip() for ln in re.split(r"[\r\n]+", stderr) if ln.strip()]
    errors = [ln for ln in lines if "error:" in ln]
    last = errors[-1] if errors else (lines[-1] if lines else "no error message")
    if "No module named" in stderr:
        return RemoteError("SETUP", f"The 'Python with lvss' ({python}) cannot run lvss ({last}). Install lvss "
                                    f"with its server extra there (pip install -e \".[server]\" in the lvss "
                                    f"folder), or set 'Python with lvss' in {PREFS_PATH} to the right python.")
    m = re.search(r"error:\s*([A-Z_]+):\s*(.*)", last)
    if m and m.group(1) in CODES:
        return RemoteError(m.group(1), m.group(2))
    return RemoteError("INTERNAL", last)


class _CommandJob(Job):
    def __init__(self, python: str, image: bytes, settings: Settings):
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory(prefix="lvss-blender-")
        in_path = os.path.join(self._tmp.name, "input.img")
        self._out = os.path.join(self._tmp.name, "output.svg")
        with open(in_path, "wb") as fh:
            fh.write(image)
        env = dict(os.environ)
        env.pop("PYTHONHOME", None)
        env.pop("PYTHONPATH", None)  # Blender's module folders must not shadow the other Python's
        try:
            self._proc = subprocess.Popen(remote_command(settings, python, in_path, self._out),
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, env=env)
        except OSError as err:
            self._tmp.cleanup()
            raise RemoteError("SETUP", f"Cannot run the 'Python with lvss' {python} ({err.strerror or err}); set "
                                       f"it in {PREFS_PATH} to the python executable of the environment where "
                                       "lvss is installed.") from None
        self._settings, self._python = settings, python
        self._thread = threading.Thread(target=self._run, daemon=True, name="lvss-remote")
        self._thread.start()

    def _run(self) -> None:
        chunks = []
        try:
            fd = self._proc.stderr
            buf = b""
            while True:
                b = fd.read1(4096) if hasattr(fd, "read1") else fd.read(4096)
                if not b:
                    break
                chunks.append(b)
                buf = (buf + b)[-4096:]
                text = buf.decode("utf-8", "replace")
                hits = _BAR.findall(text)
                if hits:
                    stage, pct = hits[-1]
                    self._progress(Status(stage.strip(), int(pct) / 100.0))
            code = self._proc.wait()
            err_text = b"".join(chunks).decode("utf-8", "replace")
            if code == 0:
                try:
                    with open(self._out, encoding="utf-8") as fh:
                        self._finish(fh.read(), None)
                except OSError:
                    self._finish(None, RemoteError("INTERNAL", f"lvss remote wrote no SVG ({err_text[-300:]})"))
            else:
                self._finish(None, classify(err_text, self._settings, self._python))
        except Exception as err:  # noqa: BLE001
            self._finish(None, RemoteError("INTERNAL", f"{type(err).__name__}: {err}"))
        finally:
            self._tmp.cleanup()

    def _stop(self) -> None:
        if self._proc.poll() is None:
            try:
                # an interrupt lets `lvss remote` cancel the job on the server before it exits
                self._proc.send_signal(signal.SIGINT if os.name != "nt" else signal.SIGTERM)
            except OSError:
                pass


def start(image: bytes, settings: Settings) -> Job:
    """Start vectorizing ``image`` (an encoded file); raises RemoteError for setup problems."""
    if not settings.server.strip():
        raise RemoteError("SETUP", f"No server address is set; enter HOST:PORT (e.g. {DEFAULT_SERVER}) in {PREFS_PATH}.")
    _check_tls(settings)
    token = read_token(settings)
    mode = settings.connection
    client = load_client() if mode in ("AUTO", "GRPC") else None
    if client is not None:
        return _GrpcJob(client, image, settings, token)
    if mode == "GRPC":
        raise RemoteError("SETUP", "The connection is set to 'gRPC in Blender', but Blender's Python cannot "
                                   "import grpc and the lvss client. Install the extension built with its "
                                   "wheels (lvss build-blender-extension), or choose 'Auto' or 'lvss remote' "
                                   f"in {PREFS_PATH}.")
    python = python_for_fallback(settings)
    if not python:
        raise RemoteError("SETUP", no_client_message(settings))
    return _CommandJob(python, image, settings)
