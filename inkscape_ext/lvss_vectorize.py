#!/usr/bin/env python3
"""Inkscape effect: vectorize the selected bitmaps with an lvss server.

For every selected ``<image>`` (in z-order; other selected objects are ignored) the bitmap is read
(embedded ``data:`` URI or linked file), sent to the server with the dialog's options, and the
layered SVG that comes back is inserted directly above the image as a group "lvss: NAME"
holding one sub-group per layer, back to front, mapped exactly onto the bitmap. Afterwards the new
group is selected, as after Trace Bitmap (see :func:`lvss_ext_place.select_on_return`).

While the server works, a progress window shows its stage and fraction with a Cancel button that
stops the job on the server (where GTK is available; otherwise the run is silent). Before the run the
extension asks the server what it can do, and tells the user when the prompt will not be used;
what the server reports it did not use comes back as warnings, shown after the run.

All requests are made before the document is touched, and a failure (or Cancel) leaves the document
unchanged: the extension writes no document. Its message appears in the extension's own dialog, in
plain words (Inkscape 1.2 would put anything written to stderr under its own header "The script did
not return an error, but this may indicate the results will not be as expected", whatever the exit
status); where GTK or a display is missing it falls back to inkex's way, ``inkex.AbortExtension``
(the message on stderr, exit status 251). Cancel pressed in the progress window ends the run
without a message. A successful run is a single undo step, like every effect extension.
"""
from __future__ import annotations

import sys

import inkex
from inkex.utils import ABORT_STATUS

import lvss_ext_progress as progress
import lvss_ext_remote as remote
from lvss_ext_image import SODIPODI_DOCNAME, ImageSourceError, document_folders, pixel_size, read_image
from lvss_ext_place import PlacementError, build_group, document_ids, insert, parse_result, select_on_return


class Cancelled(inkex.AbortExtension):
    """The user pressed Cancel in the progress window: the run ends, no message is needed."""


def vectorize_image(image_bytes: bytes, settings: "remote.Settings", monitor=None, name: str = "image",
                    index: int = 1, count: int = 1) -> "remote.Outcome":
    """The server's SVG and warnings for one encoded bitmap, shown in ``monitor`` (a progress window
    or a quiet one) while it runs; module level, so tests can stand in a fake."""
    monitor = monitor or progress.QuietMonitor()
    return monitor.follow(remote.Run(image_bytes, settings), name, index, count)


class LvssVectorize(inkex.EffectExtension):
    """Replace (or accompany) selected bitmaps with layered vector art from an lvss server."""

    def add_arguments(self, pars):
        pars.add_argument("--tab", default="vectorize", help="the dialog tab that was open")
        pars.add_argument("--prompt", default="", help="what matters in the image (may be empty)")
        pars.add_argument("--paths", type=int, default=64, help="path budget")
        pars.add_argument("--mode", default="layered", choices=("layered", "compact"))
        pars.add_argument("--fill", default="flat", choices=("flat", "auto", "linear", "radial"),
                          help="path fills: flat colours or gradients")
        pars.add_argument("--quality", default="fast", choices=("fast", "balanced", "best"),
                          help="speed/fidelity preset of the server's optimisation")
        pars.add_argument("--levels", type=int, default=3, help="simplification levels")
        pars.add_argument("--seed", type=int, default=0, help="random seed")
        pars.add_argument("--insert_as", default="layers", choices=("layers", "groups"))
        pars.add_argument("--original", default="keep", choices=("keep", "hide", "delete"))
        pars.add_argument("--server", default="", help="host:port; empty: $LVSS_SERVER or 127.0.0.1:50051")
        pars.add_argument("--token_file", default="", help="file holding the server's token")
        pars.add_argument("--tls_ca", default="", help="CA certificate (PEM) of a server that uses TLS")
        pars.add_argument("--timeout", type=int, default=600, help="seconds per image")
        pars.add_argument("--python", default="", help="Python with lvss; empty: $LVSS_PYTHON")
        pars.add_argument("--progress_window", type=inkex.Boolean, default=True,
                          help="show the server's progress in a window with a Cancel button")
        pars.add_argument("--backdrop", type=inkex.Boolean, default=True,
                          help="a bottom layer filling what the paths leave uncovered where the bitmap is opaque")
        pars.add_argument("--notes", type=inkex.Boolean, default=True,
                          help="after the run, show what the server did not use (e.g. the prompt)")
        pars.add_argument("--select_result", type=inkex.Boolean, default=True,
                          help="select the new group afterwards (it takes the bitmap's id, the bitmap a new one)")

    def selected_images(self):
        """Selected ``<image>`` elements in document (z) order, bottom first; aborts if none."""
        selected = list(self.svg.selection.values())
        if not selected:
            raise inkex.AbortExtension(
                "Nothing is selected. Select one or more bitmap images (click them, or Edit > "
                "Select Same > Object Type on an image), then run Extensions > Images > "
                "Vectorize Bitmap (lvss) again."
            )
        images = [el for el in selected if isinstance(el, inkex.Image)]
        if not images:
            raise inkex.AbortExtension(
                f"The selection ({len(selected)} object(s)) holds no bitmap image. Select the bitmap "
                "itself (enter its group with a double click, or Ctrl+click it), then run the "
                "extension again."
            )
        order = {el: i for i, el in enumerate(self.document.getroot().iter())}
        return sorted(images, key=lambda el: order.get(el, 0))

    def settings(self) -> "remote.Settings":
        o = self.options
        # Inkscape passes a multi-line text field with its newlines written as "\n"
        prompt = (o.prompt or "").replace("\\n", "\n").strip()
        return remote.resolve_settings(
            server=o.server, token_file=o.token_file, tls_ca=o.tls_ca, python=o.python, timeout=o.timeout,
            prompt=prompt, paths=o.paths, mode=o.mode, levels=o.levels, seed=o.seed, backdrop=o.backdrop,
            fill=o.fill, quality=o.quality,
        )

    def effect(self):
        """Vectorize; a failure's message goes to the extension's own dialog where there is one."""
        try:
            self.vectorize()
        except Cancelled as err:
            if self.windowed:  # the user pressed Cancel in our window: nothing more to say
                sys.exit(ABORT_STATUS)
            raise inkex.AbortExtension(str(err)) from None
        except inkex.AbortExtension as err:
            if self.options.progress_window and progress.show_message(str(err), "error"):
                sys.exit(ABORT_STATUS)  # shown; no stderr, so no second message from Inkscape
            raise

    windowed = False  # the progress window was shown (Cancel can only come from it)

    def vectorize(self):
        images = self.selected_images()
        # Inkscape passes a temporary copy: relative links belong to the saved document's folder
        copy = getattr(self.options, "input_file", None)
        folders, saved = document_folders(
            self.document_path(), input_file=copy if isinstance(copy, str) else None,
            docname=self.document.getroot().get(SODIPODI_DOCNAME))
        try:
            sources = [read_image(img, None, folders, saved) for img in images]
        except ImageSourceError as err:
            raise inkex.AbortExtension(str(err)) from None
        settings = self.settings()
        results = []
        notes = []
        monitor = progress.open_monitor(self.options.progress_window, settings.server, settings.server_source)
        self.windowed = not isinstance(monitor, progress.QuietMonitor)
        try:
            for i, src in enumerate(sources, 1):
                try:
                    outcome = vectorize_image(src.data, settings, monitor, src.name, i, len(sources))
                except remote.RemoteError as err:
                    if err.code == "CANCELLED":
                        raise Cancelled(remote.explain(err, settings, src.name)) from None
                    raise inkex.AbortExtension(remote.explain(err, settings, src.name)) from None
                try:
                    results.append(parse_result(outcome.svg))
                except PlacementError as err:
                    raise inkex.AbortExtension(f"'{src.name}': {err}") from None
                notes += [f"'{src.name}': {w}" for w in outcome.warnings if w]
        finally:
            monitor.close()
        taken = document_ids(self.svg)
        placements = []
        for img, src, result in zip(images, sources, results):
            try:
                placements.append(build_group(
                    img, result, name=src.name, pixels=pixel_size(src.data),
                    as_layers=self.options.insert_as == "layers", taken=taken,
                ))
            except PlacementError as err:
                raise inkex.AbortExtension(str(err)) from None
        # everything is ready: only now change the document
        for placement in placements:
            group = insert(self.svg, placement, self.options.original)
            if self.options.select_result:
                select_on_return(self.svg, placement.image, group)
        if notes and self.options.notes:
            text = ("The result is in place. Notes from the lvss server:\n" + "\n".join(dict.fromkeys(notes)))
            if not (self.options.progress_window and progress.show_message(text, "info")):
                # Inkscape shows stderr in a message after the run; the result is in place
                inkex.errormsg("lvss: the result is in place, with these notes from the server:\n" +
                               "\n".join(dict.fromkeys(notes)))


if __name__ == "__main__":
    LvssVectorize().run()
