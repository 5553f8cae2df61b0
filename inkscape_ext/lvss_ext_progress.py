"""A progress window with a Cancel button while the lvss server works.

Inkscape waits for an effect extension to finish, so the extension shows its own small window: the
server in use and where that address came from, which image, a large percentage,
what the server is doing in a designer's words (Simplifying, Finding shapes, Fitting shapes, Adding
detail, Polishing, Writing: lvss.messages.STAGE_WORDS), the time so far and an estimate of the time
left (ticking between the server's events), the queue position, a note when the server cannot use
the prompt, a small picture of the result so far (the server's ``preview`` events, the first within
about a second of the job's start, refreshed about twice a second; :func:`preview_pixbuf` renders
their SVG with GdkPixbuf's SVG loader, librsvg's, which Debian's inkscape package brings through
librsvg2-common; where that loader is missing the picture stays hidden), and a Cancel button that
stops the job on the server (disabled once the result is being written).

Inkscape 1.2 also opens its own "working, please wait" window with a Cancel button, but runs the
extension in a private GLib main context, so that window is mapped and never drawn; the .inx cannot
turn it off without losing the parameters dialog (``implements-custom-gui="true"`` makes the menu
run the effect at once). So the progress window puts itself over it: Inkscape centres its working
window on its document window, and :meth:`ProgressWindow.place_over_inkscape` centres this larger
window on that working window (found in the window manager's client list by its WM_CLASS; else on
the document window) and keeps it above; without a window manager it
stays centred on the screen.

:func:`show_message` shows the extension's messages in its own dialog, in plain words. It uses GTK 3
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
import time
import warnings
from typing import Optional

TITLE = "Vectorize Bitmap (lvss)"
TICK_MS = 500  # the window changes at least this often while work goes on (time elapsed / left)
PREVIEW_SIZE = 160  # pixels: the longer side of the picture of the result so far


def _messages():
    from lvss_ext_remote import messages

    return messages()


def stage_text(event: dict) -> str:
    """The stage of a progress or queued event in a designer's words, e.g. "Fitting shapes": the
    event's ``label`` (lvss.ext_client's events carry it), else lvss.messages' table ("Working" for a
    stage it does not know)."""
    m = _messages()
    if event.get("event") == "queued":
        return m.queued_text(event.get("position"))
    label = str(event.get("label") or "").strip()
    return label or m.stage_label(str(event.get("stage") or ""))


def is_final(event: dict) -> bool:
    """True once the server is writing the result (Cancel no longer saves anything)."""
    m = _messages()
    stage = str(event.get("stage") or "")
    return m.is_final(stage)


def duration_text(seconds: float) -> str:
    return _messages().duration_text(seconds)


class Clock:
    """Time elapsed and an estimate of the time left, from the overall fraction done.

    The estimate appears once 3 % is done and 2 s have passed (earlier ones jump about); between
    progress events it keeps counting down with the clock, so the window never stands still."""

    def __init__(self, now: Optional[float] = None):
        self.start = time.monotonic() if now is None else now
        self.fraction = 0.0
        self.at = self.start
        self.total: Optional[float] = None

    def update(self, fraction: float, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        fraction = min(1.0, max(self.fraction, float(fraction)))
        self.fraction, self.at = fraction, now
        elapsed = now - self.start
        if fraction >= 0.03 and elapsed >= 2.0:
            estimate = elapsed / fraction
            # smooth: new estimates pull the old one, so the time left does not jump at every event
            self.total = estimate if self.total is None else 0.6 * self.total + 0.4 * estimate

    def elapsed(self, now: Optional[float] = None) -> float:
        return (time.monotonic() if now is None else now) - self.start

    def left(self, now: Optional[float] = None) -> Optional[float]:
        if self.total is None:
            return None
        return max(0.0, self.total - self.elapsed(now))

    def text(self, now: Optional[float] = None) -> str:
        elapsed = self.elapsed(now)
        left = self.left(now)
        if left is None:
            return f"{duration_text(elapsed)} so far · estimating the time left"
        if left < 1.0:
            return f"{duration_text(elapsed)} so far · almost done"
        return f"{duration_text(elapsed)} so far · about {duration_text(left)} left"


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


def open_monitor(enabled: bool = True, server: str = "", source: str = ""):
    """A :class:`ProgressWindow` where GTK works, else a :class:`QuietMonitor` saying why not.
    server, source: the address in use and where it came from (lvss_ext_remote.resolve_server)."""
    if not enabled:
        return QuietMonitor("the progress window is turned off")
    mods, reason = load_gtk()
    if mods is None:
        return QuietMonitor(reason)
    return ProgressWindow(*mods, server=server, source=source)


ENV_MESSAGE_TIMEOUT = "LVSS_MESSAGE_TIMEOUT"  # seconds after which a message closes itself (headless runs)


def show_message(text: str, kind: str = "error", title: str = TITLE, snapshot: Optional[str] = None) -> bool:
    """Show ``text`` in the extension's own dialog (an OK button, our title, no Inkscape header) and
    wait for OK; False where GTK or a display is missing (the caller then writes it to stderr, which
    Inkscape shows in its own message box). $LVSS_MESSAGE_TIMEOUT closes it by itself after that many
    seconds (for unattended runs); ``snapshot``: save the dialog as a PNG there first (tests)."""
    mods, _reason = load_gtk()
    if mods is None:
        return False
    Gtk, Gdk, GLib = mods
    kinds = {"error": Gtk.MessageType.ERROR, "info": Gtk.MessageType.INFO, "warning": Gtk.MessageType.WARNING}
    first, _, rest = str(text).strip().partition("\n")
    dialog = Gtk.MessageDialog(message_type=kinds.get(kind, Gtk.MessageType.INFO), buttons=Gtk.ButtonsType.OK,
                               text=first)
    dialog.set_title(title)
    dialog.set_keep_above(True)
    dialog.set_position(Gtk.WindowPosition.CENTER)
    if rest.strip():
        dialog.format_secondary_text(rest.strip())
    try:  # over Inkscape's unpainted working window, like the progress window
        target = working_window_area(inkscape_windows(Gdk))
    except Exception:  # noqa: BLE001
        target = None
    if target is not None:
        dialog.realize()
        _minimum, natural = dialog.get_preferred_size()
        dialog.set_position(Gtk.WindowPosition.NONE)
        dialog.move(int(target[0] + (target[2] - natural.width) / 2), int(target[1] + (target[3] - natural.height) / 2))
    for label in dialog.get_message_area().get_children():
        if isinstance(label, Gtk.Label):
            label.set_selectable(True)  # the commands in a message can be copied
            label.set_max_width_chars(70)
    try:
        seconds = float(os.environ.get(ENV_MESSAGE_TIMEOUT, "") or 0)
    except ValueError:
        seconds = 0.0

    def photograph() -> bool:
        window = dialog.get_window()
        if window is not None:
            pixbuf = Gdk.pixbuf_get_from_window(window, 0, 0, window.get_width(), window.get_height())
            if pixbuf is not None:
                pixbuf.savev(snapshot, "png", [], [])
        return False

    if snapshot:
        GLib.timeout_add(400, photograph)
    if seconds > 0:
        GLib.timeout_add(int(seconds * 1000), lambda: dialog.response(Gtk.ResponseType.OK) and False)
    dialog.run()
    dialog.destroy()
    context = GLib.MainContext.default()
    while context.pending():
        context.iteration(False)
    return True


def _x11_classes(xids: list) -> dict:
    """{xid: WM_CLASS text} for X11 windows, read with libX11 through ctypes (PyGObject cannot call
    gdk_property_get); {} where libX11 or the display cannot be opened."""
    import ctypes
    import ctypes.util

    try:
        x11 = ctypes.cdll.LoadLibrary(ctypes.util.find_library("X11") or "libX11.so.6")
    except OSError:
        return {}
    c_ulong_p = ctypes.POINTER(ctypes.c_ulong)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XGetWindowProperty.argtypes = [
        ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_long, ctypes.c_long, ctypes.c_int,
        ctypes.c_ulong, c_ulong_p, ctypes.POINTER(ctypes.c_int), c_ulong_p, c_ulong_p,
        ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte))]
    x11.XFree.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = x11.XOpenDisplay(None)
    if not display:
        return {}
    classes = {}
    try:
        for xid in xids:
            kind, fmt, count, after = ctypes.c_ulong(), ctypes.c_int(), ctypes.c_ulong(), ctypes.c_ulong()
            data = ctypes.POINTER(ctypes.c_ubyte)()
            # 67: the predefined atom WM_CLASS, 31: STRING
            status = x11.XGetWindowProperty(display, xid, 67, 0, 64, 0, 31, ctypes.byref(kind), ctypes.byref(fmt),
                                            ctypes.byref(count), ctypes.byref(after), ctypes.byref(data))
            if status == 0 and data:
                if fmt.value == 8:
                    raw = ctypes.string_at(data, count.value)
                    classes[xid] = raw.replace(b"\0", b" ").decode("latin-1").strip()
                x11.XFree(data)
    finally:
        x11.XCloseDisplay(display)
    return classes


def inkscape_windows(Gdk) -> list:
    """(x, y, width, height) of Inkscape's top-level windows (WM_CLASS "org.inkscape.Inkscape"), frames
    included, from the window manager's stacking list (empty without one, or off X11). (Inkscape
    starts extensions through a double fork, so its process id is not the extension's parent's.)"""
    screen = Gdk.Screen.get_default()
    windows = [w for w in (screen.get_window_stack() or []) if hasattr(w, "get_xid")]  # X11 only
    classes = _x11_classes([w.get_xid() for w in windows]) if windows else {}
    out = []
    for window in windows:
        try:
            if "inkscape" not in classes.get(window.get_xid(), "").lower():
                continue
            rect = window.get_frame_extents()
        except Exception:  # noqa: BLE001  a window that went away meanwhile
            continue
        out.append((rect.x, rect.y, rect.width, rect.height))
    return out


def preview_pixbuf(svg: str, size: int = PREVIEW_SIZE):
    """A GdkPixbuf of ``svg`` (a preview event's document) fitted into ``size`` x ``size`` pixels,
    over white; None where GdkPixbuf has no SVG loader or the text is not an SVG it can read."""
    try:
        import gi

        gi.require_version("GdkPixbuf", "2.0")
        from gi.repository import GdkPixbuf, GLib
    except (ImportError, ValueError):
        return None
    try:
        loader = GdkPixbuf.PixbufLoader.new_with_type("svg")

        def fit(ldr, width, height):
            k = size / max(width, height, 1)
            ldr.set_size(max(1, round(width * k)), max(1, round(height * k)))

        loader.connect("size-prepared", fit)
        loader.write(svg.encode("utf-8"))
        loader.close()
        picture = loader.get_pixbuf()
    except (GLib.Error, TypeError, ValueError):
        return None
    if picture is None:
        return None
    w, h = picture.get_width(), picture.get_height()
    paper = GdkPixbuf.Pixbuf.new(GdkPixbuf.Colorspace.RGB, True, 8, w, h)
    paper.fill(0xFFFFFFFF)
    picture.composite(paper, 0, 0, w, h, 0, 0, 1.0, 1.0, GdkPixbuf.InterpType.BILINEAR, 255)
    return paper


def working_window_area(rects: list) -> Optional[tuple]:
    """Where to put the progress window among Inkscape's windows: on its "working" window (the
    smallest dialog-sized one, mapped before the extension starts), else on its largest window
    (its document window, on which Inkscape centres the working window)."""
    small = [r for r in rects if 150 <= r[2] <= 700 and 40 <= r[3] <= 300]
    if small:
        return min(small, key=lambda r: r[2] * r[3])
    return max(rects, key=lambda r: r[2] * r[3]) if rects else None


class ProgressWindow:
    """The window; one per extension run, reused for every selected image."""

    def __init__(self, Gtk, Gdk, GLib, server: str = "", source: str = ""):
        self.Gtk, self.Gdk, self.GLib = Gtk, Gdk, GLib
        self.server = server
        self.source = source
        self.run = None
        self.notes: list = []
        self.clock = Clock()
        self.final = False
        self._tick_id = None
        win = Gtk.Window(title=TITLE)
        win.set_default_size(480, -1)
        win.set_position(Gtk.WindowPosition.CENTER)
        win.set_keep_above(True)
        win.set_resizable(False)
        win.connect("delete-event", self._on_close)
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=8)
        box.set_border_width(16)
        # first line: the server this run uses, and where its address came from
        self.server_line = Gtk.Label(xalign=0.0)
        self.server_line.set_line_wrap(True)
        self.heading = Gtk.Label(xalign=0.0)
        self.heading.set_line_wrap(True)
        self.percent = Gtk.Label(xalign=0.0)
        self.stage = Gtk.Label(label="Contacting the lvss server…", xalign=0.0)
        self.stage.set_line_wrap(True)
        row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=14)
        row.pack_start(self.percent, False, False, 0)
        row.pack_start(self.stage, False, False, 0)
        self.bar = Gtk.ProgressBar(show_text=False)
        # the result so far (preview events), hidden until the first arrives
        self.picture = Gtk.Image()
        self.picture.set_no_show_all(True)
        self.previews = 0
        self.times = Gtk.Label(xalign=0.0)
        self.note = Gtk.Label(xalign=0.0)
        self.note.set_line_wrap(True)
        self.note.set_max_width_chars(60)
        self.note.set_no_show_all(True)
        buttons = Gtk.ButtonBox(orientation=Gtk.Orientation.HORIZONTAL)
        buttons.set_layout(Gtk.ButtonBoxStyle.END)
        self.cancel_button = Gtk.Button(label="Cancel")
        self.cancel_button.connect("clicked", self._on_cancel)
        buttons.add(self.cancel_button)
        for widget in (self.server_line, self.heading, row, self.bar, self.picture, self.times, self.note, buttons):
            box.pack_start(widget, False, False, 0)
        win.add(box)
        self.window = win
        self._show_server()

    # ------------------------------------------------------------------------------------ public
    def place_over_inkscape(self) -> Optional[tuple]:
        """Centre the window on Inkscape's own "working" window (else on its document window, where
        Inkscape centres that one), which this larger window then covers. Returns the (x, y, width,
        height) it centred on, or None when there is none (no window manager, Wayland, not run by
        Inkscape): then the window stays centred on the screen."""
        try:
            target = working_window_area(inkscape_windows(self.Gdk))
        except Exception:  # noqa: BLE001  placement is a nicety; the window works anywhere
            target = None
        if target is None:
            return None
        x, y, w, h = target
        self.window.realize()
        width, height = self.window.get_size()
        _nat, natural = self.window.get_preferred_size()
        width, height = max(width, natural.width), max(height, natural.height)
        self.window.set_position(self.Gtk.WindowPosition.NONE)
        self.window.move(int(x + (w - width) / 2), int(y + (h - height) / 2))
        return target

    def follow(self, run, name: str, index: int = 1, count: int = 1):
        """Start ``run``, show its progress until it ends, and return its outcome (or raise)."""
        self.run = run
        settings = getattr(run, "settings", None)
        if settings is not None and getattr(settings, "server", ""):
            self.server = settings.server
            self.source = getattr(settings, "server_source", "") or self.source
            self._show_server()
        of = f" ({index} of {count})" if count > 1 else ""
        self.heading.set_markup(f"<b>Vectorizing {self.GLib.markup_escape_text(name)}</b>{of}")
        self.stage.set_text("Contacting the server…")
        self.clock = Clock()
        self.final = False
        self.previews = 0
        self.picture.clear()
        self.picture.hide()
        self._set_fraction(0.0)
        self.times.set_text(self.clock.text())
        self.cancel_button.set_sensitive(True)
        self.cancel_button.set_label("Cancel")
        if not self.window.get_visible():
            self.place_over_inkscape()
        self.window.show_all()
        # the first seconds: every 0.1 s, back over Inkscape's working window should it appear late
        # or the window manager put this one elsewhere (then the ticks keep it there)
        watch = {"left": 30}

        def settle() -> bool:
            self._keep_over_inkscape()
            watch["left"] -= 1
            return watch["left"] > 0 and self.run is not None and not self.run.done.is_set()

        self.GLib.timeout_add(100, settle)
        loop = self.GLib.MainLoop()
        run.on_event = lambda event: self.GLib.idle_add(self._on_event, event)
        self._tick_id = self.GLib.timeout_add(TICK_MS, self._tick)
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
        if self._tick_id is not None:
            self.GLib.source_remove(self._tick_id)
            self._tick_id = None
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
    def _show_server(self) -> None:
        if not self.server:
            self.server_line.set_text("")
            return
        where = f" ({self.source})" if self.source else ""
        self.server_line.set_markup(
            f"<small>Server: <b>{self.GLib.markup_escape_text(self.server)}</b>"
            f"{self.GLib.markup_escape_text(where)}</small>")

    def _set_fraction(self, fraction: float) -> None:
        self.bar.set_fraction(fraction)
        self.percent.set_markup(f"<span size='xx-large' weight='bold'>{fraction * 100:.0f} %</span>")

    def _tick(self) -> bool:
        """Every TICK_MS while a run goes on: the time so far and left move with the clock."""
        if self.run is None or self.run.done.is_set():
            self._tick_id = None
            return False
        if not self.run.cancel_requested.is_set():
            self.times.set_text(self.clock.text())
        self._keep_over_inkscape()
        return True

    def _keep_over_inkscape(self) -> None:
        """Inkscape may map its working window after this one was placed, or a window manager may
        place this one elsewhere: while the run goes on, keep it over that window."""
        try:
            rects = inkscape_windows(self.Gdk)
            small = [r for r in rects if 150 <= r[2] <= 700 and 40 <= r[3] <= 300]
            if not small:
                return
            x, y, w, h = min(small, key=lambda r: r[2] * r[3])
            ox, oy = self.window.get_position()
            ow, oh = self.window.get_size()
            if ox <= x and oy <= y and ox + ow >= x + w and oy + oh >= y + h:
                return
            self.window.move(int(x + (w - ow) / 2), int(y + (h - oh) / 2))
        except Exception:  # noqa: BLE001  placement is a nicety; the window works anywhere
            return

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
            self.stage.set_text(stage_text(event) + ("" if kind == "queued" else "…"))
            if kind == "progress":
                fraction = min(1.0, max(0.0, float(event.get("fraction") or 0.0)))
                self.clock.update(fraction)
                self._set_fraction(max(fraction, self.clock.fraction))
                self.times.set_text(self.clock.text())
                if is_final(event) and not self.final:
                    # the result is being written: nothing left to save by cancelling
                    self.final = True
                    self.cancel_button.set_sensitive(False)
            else:
                self.bar.pulse()
        elif kind == "preview":
            self.show_preview(str(event.get("svg") or ""), event.get("path"))
        elif kind == "warning":
            self._show_note(str(event.get("message", "")))
        return False  # run once

    def show_preview(self, svg: str, path: Optional[str] = None) -> bool:
        """Show the picture of a preview event (its SVG text, or the file ``path`` names); True when
        it could be drawn (else the last picture, or none, stays)."""
        if not svg and path:
            try:
                with open(path, encoding="utf-8") as fh:
                    svg = fh.read()
            except OSError:
                return False
        picture = preview_pixbuf(svg) if svg else None
        if picture is None:
            return False
        self.picture.set_from_pixbuf(picture)
        self.picture.show()
        self.previews += 1
        return True

    def _show_note(self, text: str) -> None:
        if text and text not in self.notes:
            self.notes.append(text)
            self.note.set_text("\n".join(self.notes))
            self.note.show()

    def _on_cancel(self, *_args) -> None:
        if self.final:
            return
        if self.run is not None and not self.run.done.is_set():
            self.run.cancel()
            self.stage.set_text("Cancelling: asking the server to stop…")
            self.times.set_text("")
            self.cancel_button.set_sensitive(False)

    def _on_close(self, *_args) -> bool:
        self._on_cancel()
        return True  # the window stays until the request has ended


__all__ = ["open_monitor", "ProgressWindow", "QuietMonitor", "Clock", "stage_text", "is_final", "load_gtk",
           "show_message", "preview_pixbuf"]
