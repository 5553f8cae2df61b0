"""``lvss remote``: vectorize an image on an lvss server, with a progress bar on stderr.

``add_parser(subparsers)`` registers the subcommand on the ``lvss`` CLI (handler set as ``func``);
``main(argv)`` runs it standalone. Exit status: 0 done; 2 bad input or usage (missing file,
rejected image or option, token problems); 1 the server could not do the job (unreachable, busy,
deadline, server error); 130 interrupted. Errors are one line on stderr, never a traceback:
``lvss remote: error: CODE: message`` with CODE one of lvss.client.CODES. The output file is written
atomically, so it is never left partial or empty, and a failed run leaves an existing file as it was.
What the server could not use (a prompt on a server without CLIP, ...) is printed as
``lvss remote: warning: ...`` lines.

For programs that drive it (the Inkscape extension), ``--events`` writes one JSON object per line on
stdout: ``{"event": "info", ...GetInfo...}`` first, then ``queued`` (``position``, ``label``), ``progress``
(``stage``, ``fraction``, ``message``, and ``label``: the stage in a designer's words from
lvss.messages.STAGE_WORDS, e.g. "Fitting shapes"), ``preview`` (``stage``, ``fraction``, ``label`` and
``svg``: the picture so far as a whole SVG document, the first as soon as the server has one, then at
most about two a second; with ``--preview-dir DIR`` each is written to DIR/preview-NNN.svg and the
event has ``path`` instead of ``svg``; ``--no-previews`` asks for none), ``warning`` (``message``) and
finally ``done`` (``layers``, ``paths``, ``seconds``). A program that does not know ``preview`` events
skips them like any unknown event. ``--stdin-cancel`` cancels the job on the server when a line ``cancel``
arrives on stdin or stdin is closed; SIGTERM and Ctrl+C cancel it too.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from ..ext_client import add_backdrop, done_event, extra_options, preview_event, progress_event

BAD_INPUT = 2
FAILED = 1
INTERRUPTED = 130
_BAD_INPUT_CODES = ("INVALID_ARGUMENT", "UNAUTHENTICATED")


def _add_arguments(p: argparse.ArgumentParser) -> None:
    from ..client import DEFAULT_SERVER, TOKEN_FILE_ENV
    from ..options import add_remote_argument, shown_in

    p.add_argument("input", metavar="IN", help="image file (PNG, JPEG, WebP)")
    p.add_argument("-o", "--output", metavar="OUT.svg", required=True, help="SVG file to write")
    p.add_argument("--server", metavar="HOST:PORT", default=os.environ.get("LVSS_SERVER", DEFAULT_SERVER),
                   help=f"lvss server address (default $LVSS_SERVER or {DEFAULT_SERVER})")
    p.add_argument("--prompt", default="", help="what matters in the image (steers saliency)")
    for option in shown_in("remote"):  # --paths, --mode, --levels, --seed, --work-size, --fill, --quality
        add_remote_argument(p, option)
    p.add_argument("--saliency-mask", metavar="FILE", help="greyscale image, white = important")
    p.add_argument("--token-file", metavar="F", help=f"file with the server's token (default ${TOKEN_FILE_ENV})")
    p.add_argument("--tls-ca", metavar="PEM", help="CA certificate of a TLS server")
    p.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds (the job is stopped)")
    p.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="progress bar on stderr: auto = only when stderr is a terminal (default)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (same as --progress never)")
    p.add_argument("--events", action="store_true",
                   help="write the server's info, progress, warnings and the outcome as JSON lines on stdout")
    p.add_argument("--no-previews", action="store_true",
                   help="with --events: ask the server for no preview events (the picture so far)")
    p.add_argument("--preview-dir", metavar="DIR",
                   help="write each preview (the picture so far, about two a second) to DIR/preview-NNN.svg; "
                        "--events then names the file instead of carrying the SVG")
    p.add_argument("--stdin-cancel", action="store_true",
                   help="cancel the job when stdin receives a line 'cancel' or is closed")
    p.add_argument("--backdrop", action="store_true",
                   help="add a bottom layer 'Backdrop' filling what the paths leave uncovered where the "
                        "image is opaque (one path in the gaps' mean colour; not counted in --paths)")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``remote`` on an argparse subparsers object; returns the new parser."""
    p = subparsers.add_parser("remote", help="vectorize on an lvss server (lvss serve)",
                              description="Send an image to an lvss server and write the SVG it returns.")
    _add_arguments(p)
    p.set_defaults(func=run)
    return p


def _error(message: str, status: int, code: str | None = None) -> int:
    """One line on stderr: ``lvss remote: error: [CODE: ]message`` (the code when the server gave one)."""
    print(f"lvss remote: error: {code + ': ' if code else ''}{message}", file=sys.stderr)
    return status


def _read_file(path: str, what: str) -> bytes:
    from ..client import ClientError

    p = Path(path)
    if not p.exists():
        raise ClientError("INVALID_ARGUMENT", f"{what} not found: {p}")
    if p.is_dir():
        raise ClientError("INVALID_ARGUMENT", f"{what} is a directory, not a file: {p}")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ClientError("INVALID_ARGUMENT", f"cannot read {what} {p}: {e.strerror or e}") from None
    if not data:
        raise ClientError("INVALID_ARGUMENT", f"{what} {p} is empty (0 bytes)")
    return data


class _Bar:
    """tqdm bar on stderr driven by client.Progress events (percent of the whole job)."""

    def __init__(self, mode: str):
        self._bar = None
        if mode == "always" or (mode == "auto" and sys.stderr.isatty()):
            from tqdm import tqdm

            self._bar = tqdm(total=100, file=sys.stderr, unit="%", leave=False, dynamic_ncols=True,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
            self._bar.set_description_str("Connecting")
        self._desc = "Connecting"

    def __call__(self, p) -> None:
        if self._bar is None:
            return
        desc = p.label
        if desc != self._desc:
            self._desc = desc
            self._bar.set_description_str(desc, refresh=False)
        self._bar.update(max(0.0, round(p.fraction * 100, 1) - self._bar.n))

    def done(self) -> None:
        if self._bar is not None:
            self._bar.set_description_str("Done", refresh=False)
            self._bar.update(100 - self._bar.n)
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            if not sys.stderr.isatty():
                sys.stderr.write("\n")  # the next message starts on its own line
            self._bar = None


class _Events:
    """JSON lines on stdout (``--events``); a no-op otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def emit(self, event: str, **fields) -> None:  # lvss.ext_client's events, which the extensions read
        if self.enabled:
            sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
            sys.stdout.flush()

    def preview(self, p, path: Path | None = None) -> None:
        if self.enabled:
            self.emit(**preview_event(p, path))

    def progress(self, p) -> None:
        if self.enabled:
            self.emit(**progress_event(p))


def _watch_stdin(cancel: threading.Event) -> None:
    """Set ``cancel`` when stdin says "cancel" or closes (the program driving us gave up)."""

    def read() -> None:
        try:
            for line in sys.stdin:
                if line.strip().lower() == "cancel":
                    break
        except (OSError, ValueError):
            pass
        cancel.set()

    threading.Thread(target=read, name="lvss-remote-stdin", daemon=True).start()


def _sigterm_to_interrupt() -> None:
    """SIGTERM ends the run like Ctrl+C: the job is cancelled on the server (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        def handler(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, handler)


def _with_backdrop(image: bytes, svg: str, events: _Events) -> str:
    """``svg`` with a backdrop layer (lvss.ext_client.add_backdrop); unchanged, with a warning, if that fails."""
    svg, event, warning = add_backdrop(image, svg)
    if event is not None:
        events.emit(**event)
    if warning:
        print(f"lvss remote: warning: {warning}", file=sys.stderr)
        events.emit("warning", message=warning)
    return svg


def run(args: argparse.Namespace) -> int:
    from ..client import ClientError, Client, read_token

    out = Path(args.output)
    bar = None
    events = _Events(getattr(args, "events", False))
    cancel = threading.Event()
    try:
        if not out.parent.is_dir():
            raise ClientError("INVALID_ARGUMENT", f"output folder does not exist: {out.parent}")
        if out.is_dir():
            raise ClientError("INVALID_ARGUMENT", f"output is a directory, not a file: {out}")
        image = _read_file(args.input, "input image")
        mask = _read_file(args.saliency_mask, "saliency mask") if args.saliency_mask else None
        token = read_token(None, args.token_file)
        bar = _Bar("never" if args.quiet else args.progress)
        _sigterm_to_interrupt()
        if getattr(args, "stdin_cancel", False):
            _watch_stdin(cancel)

        def on_progress(p) -> None:
            bar(p)
            events.progress(p)

        preview_dir = Path(args.preview_dir) if getattr(args, "preview_dir", None) else None
        if preview_dir is not None and not preview_dir.is_dir():
            raise ClientError("INVALID_ARGUMENT", f"preview folder does not exist: {preview_dir}")
        shown = [0]

        def on_preview(p) -> None:
            path = None
            if preview_dir is not None:
                shown[0] += 1
                path = preview_dir / f"preview-{shown[0]:03d}.svg"
                try:
                    path.write_text(p.svg, encoding="utf-8")
                except OSError as e:  # the result matters, a preview does not: say so once, go on
                    if not getattr(on_preview, "warned", False):
                        on_preview.warned = True
                        message = f"cannot write previews to {preview_dir}: {e.strerror or e}"
                        print(f"lvss remote: warning: {message}", file=sys.stderr)
                        events.emit("warning", message=message)
                    return
            events.preview(p, path)

        wants_previews = preview_dir is not None or (events.enabled and not getattr(args, "no_previews", False))

        with Client(args.server, token=token, tls_ca=args.tls_ca) as client:
            if events.enabled:
                events.emit("info", **client.info(timeout=min(10.0, args.timeout or 10.0)))
            result = client.vectorize(image, prompt=args.prompt, paths=args.paths, mode=args.mode,
                                      levels=args.levels, seed=args.seed, work_size=args.work_size,
                                      saliency_mask=mask, timeout=args.timeout, on_progress=on_progress,
                                      cancel=cancel, extra=extra_options(args) or None,
                                      on_preview=on_preview if wants_previews else None)
        bar.done()
        svg = result.svg
        if getattr(args, "backdrop", False):
            svg = _with_backdrop(image, svg, events)
        from ..io import atomic_write

        try:
            atomic_write(out, svg)
        except OSError as e:
            return _error(f"cannot write {out}: {e.strerror or e}", BAD_INPUT, "INVALID_ARGUMENT")
    except ClientError as e:
        if bar is not None:
            bar.close()
        if e.code == "CANCELLED" and cancel.is_set():
            from ..messages import cancelled

            return _error(cancelled(), INTERRUPTED, "CANCELLED")
        return _error(e.message, BAD_INPUT if e.code in _BAD_INPUT_CODES else FAILED, e.code)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        return _error("interrupted; the job was cancelled on the server", INTERRUPTED, "CANCELLED")
    paths = sum(layer.paths for layer in result.layers)
    total = result.timings.get("total")
    took = f" in {total:.1f} s" if total is not None else ""
    for warning in result.warnings:
        print(f"lvss remote: warning: {warning}", file=sys.stderr)
        events.emit("warning", message=warning)
    print(f"wrote {out} ({len(result.layers)} layers, {paths} paths{took})", file=sys.stderr)
    events.emit(**done_event(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lvss remote",
                                description="Send an image to an lvss server and write the SVG it returns.")
    _add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
