"""Sending an image to an lvss server without blocking Blender: the Blender side of the remote client
that both lvss extensions share (``lvss/ext_client.py``, bundled in the extension as ``_lvss`` by
``lvss build-blender-extension``, or imported from an lvss installed in Blender's Python).

A :class:`Job` runs one request in the background and is polled from Blender's main thread (the
modal operator's timer, or a loop for scripts): :meth:`Job.poll` returns the latest progress (the
same events the Inkscape extension and ``lvss remote --events`` report), :meth:`Job.cancel` stops it
(and the job on the server), :meth:`Job.take_preview` hands over the latest picture so far.

The connection preference picks the way: gRPC inside Blender (the bundled grpcio and protobuf
wheels), ``lvss remote`` run by a "Python with lvss", or Auto (gRPC where Blender can, else ``lvss
remote``; ``lvss remote`` too when a backdrop is asked for and Blender's Python cannot make one).
Failures are :class:`RemoteError`; :func:`explain` words one for Blender's one-line report.
"""
from __future__ import annotations

import time
from typing import Optional

try:
    from ._lvss import ext_client as client  # the copy bundled by `lvss build-blender-extension`
except ImportError:  # an lvss installed in Blender's Python (or this file loaded alone, in tests)
    from lvss import ext_client as client

DEFAULT_SERVER = client.DEFAULT_SERVER
PREFS_PATH = "Edit > Preferences > Add-ons > lvss"
RemoteError, Settings, Status = client.RemoteError, client.Settings, client.Status
load_client, remote_command = client.load_client, client.remote_command
host_port = client.messages.host_port

HOST = client.Host(
    place=f"in {PREFS_PATH}", place_noun=f"the add-on's preferences page ({PREFS_PATH})",
    token_where=(f" ('Token file' in {PREFS_PATH}; the server's is the file it was started with, "
                 "lvss serve --token-file FILE)"),
    unchanged=" and nothing was changed", reinstall="lvss build-blender-extension", one_line=True,
    no_python=("Blender's Python cannot import grpc, so lvss cannot talk to the server itself, and no "
               "'Python with lvss' is set for the fallback. Either install the extension built with its wheels "
               "(`lvss build-blender-extension`, then Edit > Preferences > Get Extensions > Install from Disk), "
               f"or set 'Python with lvss' in {PREFS_PATH} (or {client.ENV_PYTHON}) to the python of an "
               "environment where lvss is installed with its server extra (print it there with: "
               "python -c \"import sys; print(sys.executable)\")."))


def explain(err: RemoteError, settings: Settings, name: str) -> str:
    """A one-line message for Blender's report: what failed, for which image, and what to do."""
    return client.explain(err, settings, name, HOST)


class Job:
    """One request running in the background (a :class:`lvss.ext_client.Run`); poll it from the main
    thread. ``done``, ``svg``, ``warnings`` and ``error`` are set once it ended."""

    def __init__(self, image: bytes, settings: Settings):
        self._preview: Optional[str] = None  # the latest preview SVG not taken yet
        self.previews = 0  # preview events received
        self._run = client.Run(image, settings, self._on_event, HOST)
        self._run.start()
        self.started = self._run.started

    def _on_event(self, event: dict) -> None:  # from the request's thread
        if event.get("event") == "preview" and event.get("svg") and not self.cancelled:
            self._preview = event["svg"]
            self.previews += 1

    @property
    def way(self) -> str:
        """"in process" or "lvss remote"."""
        return self._run.way

    @property
    def done(self) -> bool:
        return self._run.done.is_set()

    def _outcome(self):
        try:
            return self._run.result() if self.done else None, None
        except RemoteError as err:
            return None, err

    @property
    def svg(self) -> Optional[str]:
        outcome, _ = self._outcome()
        return outcome.svg if outcome else None

    @property
    def warnings(self) -> list:
        outcome, _ = self._outcome()
        return list(outcome.warnings) if outcome else []

    @property
    def error(self) -> Optional[RemoteError]:
        return self._outcome()[1]

    def poll(self) -> Status:
        """The latest progress (never decreasing); check :attr:`done` afterwards."""
        return self._run.status()

    def take_preview(self) -> Optional[str]:
        """The latest preview (an SVG of the result so far) that arrived since the last call, else
        None; older ones that were never taken are dropped."""
        svg, self._preview = self._preview, None
        return svg

    @property
    def cancelled(self) -> bool:
        return self._run.cancel_requested.is_set()

    def cancel(self) -> None:
        self._run.cancel()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until done (for scripts and tests); True when done."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            if end is not None and time.monotonic() > end:
                return False
            self._run.done.wait(0.02)
        return True


def start(image: bytes, settings: Settings) -> Job:
    """Start vectorizing ``image`` (an encoded file); raises RemoteError for setup problems."""
    return Job(image, settings)
