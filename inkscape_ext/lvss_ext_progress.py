"""A progress window with a Cancel button while the lvss server works.

Inkscape waits for an effect extension to finish, so the extension shows its own small window: which
image, the server's stage and fraction (as it streams them), the queue position, a note when the
server cannot use the prompt, and a Cancel button that stops the job on the server. It uses GTK 3
through PyGObject, which Inkscape's own extensions use too (Debian: python3-gi, gir1.2-gtk-3.0).

Where GTK cannot be imported or no display can be opened, :func:`open_monitor` returns a
:class:`QuietMonitor`: the request runs the same way, without a window (and without a way to
cancel but Inkscape's own). Both monitors have one method, ``follow(run, name, index, count)``, which
starts a :class:`lvss_ext_remote.Run`, waits for it and returns its outcome (or raises its error).
"""
from __future__ import annotations

import os
import sys
import threading
import warnings
from typing import Optional

TITLE = "Vectorize Bitmap (lvss)"
# what the pipeline's stage names mean to a user
STAGES = {
    "start": "Starting",
    "load": "Loading the image",
    "simplify": "Simplifying the image",
    "segment": "Finding regions",
    "layering": "Stacking layers",
    "structure": "Shaping the paths",
    "colour": "Fitting colours",
    "refine": "Adding details",
    "recolor": "Merging regions by colour",
    "detail": "Adding details",
    "export": "Writing the SVG",
}


def stage_text(event: dict) -> str:
    """One line for a progress or queued event, e.g. "Shaping the paths (step 40 of 60)"."""
    if event.get("event") == "queued":
        n = int(event.get("position") or 0)
        return f"Waiting for the server: {n} job{'s' if n != 1 else ''} ahead"
    stage = str(event.get("stage") or "")
    text = STAGES.get(stage, stage.replace("_", " ").capitalize() or "Working")
    message = str(event.get("message") or "").strip()
    return f"{text} ({message})" if message and len(message) <= 60 else text


class QuietMonitor:
    """No window: run the request and wait (GTK or a display is missing, or the window is off)."""

    reason = ""

    def __init__(self, reason: str = ""):
        self.reason = reason

    def follow(self, run, name: str, index: int = 1, count: int = 1):
        run.start()
        return run.result()

    def close(self) -> None:
        pass


LOG_DOMAINS = ("Gtk", "Gdk", "GLib", "GLib-GObject", "GLib-GIO", "GdkPixbuf", "Pango", "Atk", "dbind")


def _drop_log(domain, level, message, data) -> None:
    """GLib log handler: GTK's warnings and notices are not for the user of the extension."""
    return None


def load_gtk() -> tuple:
    """(Gtk, Gdk, GLib) when GTK 3 can open windows here, else (None, reason)."""
    if sys.platform != "darwin" and os.name != "nt" and not (os.environ.get("DISPLAY")
                                                            or os.environ.get("WAYLAND_DISPLAY")):
        return None, "no display"
    # Inkscape shows anything an extension writes to stderr in a message box, which would also stop
    # a batch run: keep PyGObject's import notices and GTK's diagnostics off stderr
    os.environ.setdefault("NO_AT_BRIDGE", "1")  # no accessibility-bus warnings without a session bus
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import gi

            gi.require_version("Gtk", "3.0")
            gi.require_version("Gdk", "3.0")
            from gi.repository import Gdk, GLib, Gtk
    except (ImportError, ValueError) as err:
        return None, f"GTK 3 for Python is not available ({err}); install python3-gi and gir1.2-gtk-3.0"
    for domain in LOG_DOMAINS:
        GLib.log_set_handler(domain, GLib.LogLevelFlags.LEVEL_MASK | GLib.LogLevelFlags.FLAG_FATAL
                             | GLib.LogLevelFlags.FLAG_RECURSION, _drop_log, None)
    try:
        ok = Gtk.init_check(sys.argv[:1])
        ok = ok[0] if isinstance(ok, tuple) else ok
    except Exception as err:  # noqa: BLE001
        return None, f"GTK cannot open the display ({err})"
    if not ok:
        return None, "GTK cannot open the display"
    return (Gtk, Gdk, GLib), ""


def open_monitor(enabled: bool = True, server: str = ""):
    """A :class:`ProgressWindow` where GTK works, else a :class:`QuietMonitor` saying why not."""
    if not enabled:
        return QuietMonitor("the progress window is turned off")
    mods, reason = load_gtk()
    if mods is None:
        return QuietMonitor(reason)
    return ProgressWindow(*mods, server=server)


class ProgressWindow:
    """The window; one per extension run, reused for every selected image."""

    def __init__(self, Gtk, Gdk, GLib, server: str = ""):
        self.Gtk, self.Gdk, self.GLib = Gtk, Gdk, GLib
        self.server = server
        self.run = None
        self.notes: list = []
        win = Gtk.Window(title=TITLE)
        win.set_default_size(460, -1)
        win.set_position(Gtk.WindowPosition.CENTER)
        win.set_keep_above(True)
        win.set_resizable(False)
        win.connect("delete-event", self._on_close)
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=8)
        box.set_border_width(14)
        self.heading = Gtk.Label(xalign=0.0)
        self.heading.set_line_wrap(True)
        self.stage = Gtk.Label(label="Contacting the lvss server…", xalign=0.0)
        self.stage.set_line_wrap(True)
        self.bar = Gtk.ProgressBar(show_text=True)
        self.bar.set_text("")
        self.note = Gtk.Label(xalign=0.0)
        self.note.set_line_wrap(True)
        self.note.set_max_width_chars(60)
        self.note.set_no_show_all(True)
        buttons = Gtk.ButtonBox(orientation=Gtk.Orientation.HORIZONTAL)
        buttons.set_layout(Gtk.ButtonBoxStyle.END)
        self.cancel_button = Gtk.Button(label="Cancel")
        self.cancel_button.connect("clicked", self._on_cancel)
        buttons.add(self.cancel_button)
        for widget in (self.heading, self.stage, self.bar, self.note, buttons):
            box.pack_start(widget, False, False, 0)
        win.add(box)
        self.window = win

    # ------------------------------------------------------------------------------------ public
    def follow(self, run, name: str, index: int = 1, count: int = 1):
        """Start ``run``, show its progress until it ends, and return its outcome (or raise)."""
        self.run = run
        where = f" on {self.server}" if self.server else ""
        of = f" ({index} of {count})" if count > 1 else ""
        self.heading.set_markup(f"<b>Vectorizing {self.GLib.markup_escape_text(name)}</b>{of}{where}")
        self.stage.set_text("Contacting the lvss server…")
        self.bar.set_fraction(0.0)
        self.bar.set_text("0 %")
        self.cancel_button.set_sensitive(True)
        self.cancel_button.set_label("Cancel")
        self.window.show_all()
        loop = self.GLib.MainLoop()
        run.on_event = lambda event: self.GLib.idle_add(self._on_event, event)
        try:
            run.start()
        except Exception:
            self.close()
            raise

        def wait() -> None:
            run.done.wait()
            self.GLib.idle_add(loop.quit)

        threading.Thread(target=wait, name="lvss-progress-wait", daemon=True).start()
        loop.run()
        self._drain()
        return run.result()

    def close(self) -> None:
        if self.window is not None:
            self.window.destroy()
            self.window = None
            self._drain()

    def snapshot(self, path: str) -> bool:
        """Save the window as it is on screen to a PNG file; False when it is not shown."""
        self._drain()
        gdk_window = self.window.get_window() if self.window is not None else None
        if gdk_window is None:
            return False
        pixbuf = self.Gdk.pixbuf_get_from_window(gdk_window, 0, 0, gdk_window.get_width(),
                                                 gdk_window.get_height())
        if pixbuf is None:
            return False
        pixbuf.savev(path, "png", [], [])
        return True

    # ---------------------------------------------------------------------------------- handlers
    def _drain(self) -> None:
        context = self.GLib.MainContext.default()
        while context.pending():
            context.iteration(False)

    def _on_event(self, event: dict) -> bool:
        kind = event.get("event")
        if self.run is not None and self.run.cancel_requested.is_set():
            return False
        if kind == "info":
            from lvss_ext_remote import prompt_note

            note = prompt_note(event, self.run.settings) if self.run is not None else None
            if note:
                self._show_note(note)
            self.stage.set_text("Sending the image…")
        elif kind in ("queued", "progress"):
            self.stage.set_text(stage_text(event))
            if kind == "progress":
                fraction = min(1.0, max(0.0, float(event.get("fraction") or 0.0)))
                self.bar.set_fraction(fraction)
                self.bar.set_text(f"{fraction * 100:.0f} %")
            else:
                self.bar.pulse()
        elif kind == "warning":
            self._show_note(str(event.get("message", "")))
        return False  # run once

    def _show_note(self, text: str) -> None:
        if text and text not in self.notes:
            self.notes.append(text)
            self.note.set_text("\n".join(self.notes))
            self.note.show()

    def _on_cancel(self, *_args) -> None:
        if self.run is not None and not self.run.done.is_set():
            self.run.cancel()
            self.stage.set_text("Cancelling: asking the server to stop…")
            self.cancel_button.set_sensitive(False)

    def _on_close(self, *_args) -> bool:
        self._on_cancel()
        return True  # the window stays until the request has ended


__all__ = ["open_monitor", "ProgressWindow", "QuietMonitor", "stage_text", "load_gtk", "STAGES"]
