"""Unit tests of the Inkscape extension (inkscape_ext/), in the style of ``inkex.tester``.

They use the inkex that ships with Inkscape (/usr/share/inkscape/extensions; skipped when absent)
and a stand-in for the server: ``lvss_vectorize.vectorize_image`` is replaced by a function that
returns a known layered SVG or raises the error under test.
"""
from __future__ import annotations

import base64
import dataclasses
import importlib.util
import io
import json
import os
import stat
import sys
import textwrap
import unittest
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from lxml import etree
from PIL import Image as PILImage

REPO = Path(__file__).resolve().parents[1]
EXT_DIR = REPO / "inkscape_ext"
INKEX_DIRS = ("/usr/share/inkscape/extensions", "/usr/local/share/inkscape/extensions")


def _import_inkex():
    """Import Inkscape's own inkex; its one third-party need, cssselect, may come from Debian's copy."""
    base = next((d for d in INKEX_DIRS if os.path.isdir(os.path.join(d, "inkex"))), None)
    if base is None:
        pytest.skip("Inkscape's inkex is not installed (apt-get install inkscape)", allow_module_level=True)
    try:
        import cssselect  # noqa: F401
    except ImportError:
        deb = "/usr/lib/python3/dist-packages/cssselect"
        if not os.path.isfile(os.path.join(deb, "__init__.py")):
            pytest.skip("inkex needs cssselect (pip install cssselect)", allow_module_level=True)
        spec = importlib.util.spec_from_file_location("cssselect", os.path.join(deb, "__init__.py"),
                                                      submodule_search_locations=[deb])
        module = importlib.util.module_from_spec(spec)
        sys.modules["cssselect"] = module
        spec.loader.exec_module(module)
    for d in (base, str(EXT_DIR)):
        if d not in sys.path:
            sys.path.insert(0, d)
    import inkex

    return inkex


inkex = _import_inkex()
from inkex.tester import TestCase  # noqa: E402
from inkex.tester.inx import InxMixin  # noqa: E402

import lvss_ext_image as ext_image  # noqa: E402
import lvss_ext_place as ext_place  # noqa: E402
import lvss_ext_remote as remote  # noqa: E402
import lvss_vectorize  # noqa: E402
from lvss_vectorize import LvssVectorize  # noqa: E402

NS = ('xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
      'xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" '
      'xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd"')
LABEL = "{http://www.inkscape.org/namespaces/inkscape}label"
GROUPMODE = "{http://www.inkscape.org/namespaces/inkscape}groupmode"


def png_bytes(w: int = 40, h: int = 20, fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(w * 1000 + h)
    buf = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


def data_uri(data: bytes, wrap: bool = False) -> str:
    b64 = base64.b64encode(data).decode()
    if wrap:  # Inkscape may wrap long base64 lines
        b64 = "\n".join(textwrap.wrap(b64, 76))
    return "data:image/png;base64," + b64


def layered_svg(w: int, h: int, labels=("background", "shapes", "details"), vb_origin=(0, 0)) -> str:
    """A server-style SVG: one layer per label, back to front; the first covers the whole canvas
    and a bit more."""
    ox, oy = vb_origin
    groups = []
    for i, label in enumerate(labels):
        if i == 0:  # overshoots the canvas by 3 px on every side, as optimised paths may
            x0, y0, x1, y1 = ox - 3, oy - 3, ox + w + 3, oy + h + 3
            d = f"M {x0} {y0} C {x0 + w / 3} {y0} {x0 + 2 * w / 3} {y0} {x1} {y0} L {x1} {y1} L {x0} {y1} Z"
        else:
            d = f"M {ox + i} {oy + i} C {ox + i + 2} {oy + i} {ox + i + 3} {oy + i + 1} {ox + i + 3} {oy + i + 3} Z"
        groups.append(f'<g id="layer{i}" inkscape:label="{label}" inkscape:groupmode="layer">'
                      f'<path id="p{i}" d="{d}" fill="#{i * 40:02x}8040" fill-opacity="0.9"/></g>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" '
            f'width="{w}" height="{h}" viewBox="{ox} {oy} {w} {h}">{"".join(groups)}</svg>')


class FakeServer:
    """Stands in for ``vectorize_image``: records calls, answers with layered_svg or an error."""

    def __init__(self, error: remote.RemoteError | None = None, fail_on: int = 0, warnings=(), **svg_kw):
        self.calls: list[tuple[bytes, remote.Settings]] = []
        self.error, self.fail_on, self.svg_kw = error, fail_on, svg_kw
        self.warnings = list(warnings)
        self.monitors = []

    def __call__(self, data: bytes, settings: remote.Settings, monitor=None, name="image", index=1,
                 count=1) -> remote.Outcome:
        self.calls.append((data, settings))
        self.monitors.append((monitor, name, index, count))
        if self.error is not None and len(self.calls) > self.fail_on:
            raise self.error
        w, h = ext_image.pixel_size(data)
        return remote.Outcome(layered_svg(w, h, **self.svg_kw), list(self.warnings))


def raw_composed(elem):
    """The transform from ``elem``'s user space to the document, read from the raw attributes
    (inkex's own accessors round them to 6 digits)."""
    tf = inkex.Transform()
    while elem is not None:
        tf = inkex.Transform(etree.ElementBase.get(elem, "transform")) @ tf
        elem = elem.getparent()
    return tf


def image_corners_doc(image) -> np.ndarray:
    """The four corners of an <image>'s rectangle in document coordinates, (4, 2)."""
    x, y = float(image.get("x", 0)), float(image.get("y", 0))
    w, h = float(image.get("width")), float(image.get("height"))
    tf = raw_composed(image)
    return np.array([tuple(tf.apply_to_point((px, py)))
                     for px, py in ((x, y), (x + w, y), (x + w, y + h), (x, y + h))])


def pixel_corners_doc(layer, w: int, h: int) -> np.ndarray:
    """Where the corners of a w×h bitmap's pixel grid land through a layer group, (4, 2)."""
    tf = raw_composed(layer)
    return np.array([tuple(tf.apply_to_point(p)) for p in ((0, 0), (w, 0), (w, h), (0, h))])


class ExtensionCase(TestCase):
    """Helpers: write a document into the temp dir and run the effect on it with a fake server."""

    effect_class = LvssVectorize

    def setUp(self):
        super().setUp()
        self._document_path = os.environ.get("DOCUMENT_PATH")
        # no display: messages go to stderr (as inkex writes them), never to a dialog waiting for OK
        display = mock.patch.dict(os.environ)
        display.start()
        self.addCleanup(display.stop)
        for name in ("DISPLAY", "WAYLAND_DISPLAY"):
            os.environ.pop(name, None)

    def tearDown(self):
        # inkex's runner sets DOCUMENT_PATH for the effect; leave the environment as it was
        if self._document_path is None:
            os.environ.pop("DOCUMENT_PATH", None)
        else:
            os.environ["DOCUMENT_PATH"] = self._document_path
        super().tearDown()

    def write_doc(self, body: str, name: str = "doc.svg", view_box: str = "0 0 200 200") -> str:
        path = os.path.join(self.tempdir, name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(f'<svg {NS} width="200" height="200" viewBox="{view_box}">{body}</svg>')
        return path

    def run_effect(self, doc: str, ids=("photo",), fake=None, **opts):
        # these tests look the bitmap up by its id: the result takes that id when it is selected
        # afterwards (SelectionTest), so they leave that off
        opts.setdefault("select_result", "false")
        server = fake or FakeServer()
        args = [f"--id={i}" for i in ids] + [f"--{k}={v}" for k, v in opts.items()]
        with mock.patch.object(lvss_vectorize, "vectorize_image", server):
            effect = self.assertEffect(doc, args=args)
        return effect, server

    def run_failing(self, doc: str, ids=("photo",), fake=None, **opts) -> str:
        """Run expecting an abort; returns the message shown to the user."""
        server = fake or FakeServer()
        args = [doc] + [f"--id={i}" for i in ids] + [f"--{k}={v}" for k, v in opts.items()]
        os.environ["DOCUMENT_PATH"] = doc
        effect = self.effect_class()
        out = io.BytesIO()
        err = io.StringIO()
        with mock.patch.object(lvss_vectorize, "vectorize_image", server), \
                mock.patch("sys.stderr", err), self.assertRaises(SystemExit) as ctx:
            effect.run(args, output=out)
        self.assertNotEqual(ctx.exception.code, 0)
        self.assertEqual(out.getvalue(), b"", "a failed run must not write a document")
        self.failed_effect = effect
        return err.getvalue()

    @staticmethod
    def result_groups(svg):
        return [g for g in svg.iter() if isinstance(g.tag, str) and (g.get(LABEL) or "").startswith("lvss: ")]


class InxTest(InxMixin, unittest.TestCase):
    def test_inx_matches_arguments(self):
        cwd = os.getcwd()
        os.chdir(EXT_DIR)  # inkex loads the script named in the .inx relative to the working dir
        try:
            self.assertInxIsGood(str(EXT_DIR / "lvss_vectorize.inx"))
        finally:
            os.chdir(cwd)

    def test_inx_menu_and_tabs(self):
        inx = (EXT_DIR / "lvss_vectorize.inx").read_text()
        for needle in ('<submenu name="Images"/>', 'name="vectorize"', 'name="server"', 'name="help"',
                       'appearance="multiline"', '<option value="compact">', '<option value="delete">',
                       'name="fill"', '<option value="auto">', '<option value="radial">', 'name="quality"',
                       '<option value="balanced">', '<option value="best">'):
            self.assertIn(needle, inx)

    def test_quality_choice_defaults_to_fast(self):
        """Inkscape's default for an option group is its first option: fast, as the script's default."""
        from lxml import etree

        from lvss.config import QUALITY_PRESETS

        root = etree.parse(str(EXT_DIR / "lvss_vectorize.inx")).getroot()
        param = root.xpath("//*[local-name()='param'][@name='quality']")[0]
        values = [o.get("value") for o in param if isinstance(o.tag, str)]
        self.assertEqual(values, list(QUALITY_PRESETS))  # every preset, and only those
        self.assertEqual(values[0], "fast")


class ReadImageTest(ExtensionCase):
    def image(self, **attrs):
        return inkex.Image(**attrs)

    def test_data_uri_with_wrapped_base64(self):
        data = png_bytes()
        src = ext_image.read_image(self.image(id="im", href=data_uri(data, wrap=True)), None)
        self.assertEqual(src.data, data)
        self.assertEqual(src.name, "im")
        self.assertIsNone(src.path)

    def test_data_uri_percent_encoded(self):
        self.assertEqual(ext_image.decode_data_uri("data:text/plain,a%20b"), b"a b")

    def test_corrupt_data_uri(self):
        img = self.image(id="bad", href="data:image/png;base64,@@@")
        with self.assertRaisesRegex(ext_image.ImageSourceError, "'bad'.*corrupt"):
            ext_image.read_image(img, None)

    def test_relative_link_resolves_against_document(self):
        data = png_bytes()
        sub = Path(self.tempdir, "pics")
        sub.mkdir()
        (sub / "photo one.png").write_bytes(data)
        doc = os.path.join(self.tempdir, "doc.svg")
        for href in ("pics/photo one.png", "pics/photo%20one.png"):
            src = ext_image.read_image(self.image(id="x", href=href), doc)
            self.assertEqual(src.data, data)
            self.assertEqual(src.name, "photo one.png")

    def test_absolute_link_and_file_uri(self):
        data = png_bytes(8, 8)
        path = Path(self.tempdir, "abs.png")
        path.write_bytes(data)
        for href in (str(path), path.as_uri()):
            self.assertEqual(ext_image.read_image(self.image(href=href), None).data, data)

    def test_absref_is_the_fallback(self):
        data = png_bytes(9, 7)
        path = Path(self.tempdir, "moved.png")
        path.write_bytes(data)
        img = self.image(id="i", href="gone/moved.png")
        img.set("sodipodi:absref", str(path))
        src = ext_image.read_image(img, os.path.join(self.tempdir, "doc.svg"))
        self.assertEqual((src.data, src.path), (data, str(path)))

    def test_missing_link_says_where_it_looked_and_what_to_do(self):
        img = self.image(id="pic", href="nowhere/photo.png")
        img.set("sodipodi:absref", "/nonexistent/photo.png")
        with self.assertRaises(ext_image.ImageSourceError) as ctx:
            ext_image.read_image(img, os.path.join(self.tempdir, "doc.svg"))
        msg = str(ctx.exception)
        self.assertIn("missing", msg)
        self.assertIn(os.path.join(self.tempdir, "nowhere", "photo.png"), msg)
        self.assertIn("/nonexistent/photo.png", msg)
        self.assertIn("relink", msg)
        self.assertIn("Embed Images", msg)

    def test_saved_documents_folder_comes_before_the_temporary_copy(self):
        """Inkscape runs the effect on a temporary copy: a relative link belongs to the saved file."""
        data = png_bytes(12, 6)
        saved_dir, temp_dir = Path(self.tempdir, "drawings"), Path(self.tempdir, "tmp")
        saved_dir.mkdir()
        temp_dir.mkdir()
        (saved_dir / "photo.png").write_bytes(data)
        (temp_dir / "photo.png").write_bytes(png_bytes(5, 5))  # a decoy beside the copy
        copy = str(temp_dir / "ink_ext_XXXXXX.svg")
        Path(copy).write_text("<svg/>")
        doc = str(saved_dir / "art.svg")
        folders, saved = ext_image.document_folders(doc, input_file=copy, environ={})
        self.assertEqual(folders, [str(saved_dir), str(temp_dir)])
        self.assertTrue(saved)
        src = ext_image.read_image(self.image(href="photo.png"), None, folders, saved)
        self.assertEqual(src.data, data)
        self.assertEqual(src.path, str(saved_dir / "photo.png"))
        # a relative DOCUMENT_PATH is taken from the folder Inkscape was started in
        folders, _ = ext_image.document_folders("drawings/art.svg", input_file=copy,
                                                environ={"PWD": self.tempdir})
        self.assertEqual(folders[0], str(saved_dir))

    def test_docname_found_among_recent_files_when_document_path_is_the_copy(self):
        """inkex sets DOCUMENT_PATH to the copy when Inkscape did not set it; then the saved file is
        the recently used file named by sodipodi:docname."""
        data = png_bytes(10, 4)
        saved_dir = Path(self.tempdir, "my drawings")
        saved_dir.mkdir()
        (saved_dir / "photo.png").write_bytes(data)
        (saved_dir / "art.svg").write_text("<svg/>")
        copy = Path(self.tempdir, "ink_ext_1.svg")
        copy.write_text("<svg/>")
        data_home = Path(self.tempdir, "share")
        data_home.mkdir()
        uri = (saved_dir / "art.svg").as_uri()
        (data_home / "recently-used.xbel").write_text(
            '<?xml version="1.0"?>\n<xbel version="1.0">\n'
            '<bookmark href="file:///elsewhere/art.svg" added="x"/>\n'
            f'<bookmark href="{uri}" added="y"/>\n</xbel>\n')
        env = {"XDG_DATA_HOME": str(data_home)}
        self.assertIn(str(saved_dir / "art.svg"), ext_image.recent_files(env))
        folders, saved = ext_image.document_folders(str(copy), input_file=str(copy), docname="art.svg",
                                                    environ=env)
        self.assertEqual(folders, [str(saved_dir), self.tempdir])
        self.assertTrue(saved)
        self.assertEqual(ext_image.read_image(self.image(href="photo.png"), None, folders, saved).data, data)
        # no such recent file: only the copy's folder, and the document counts as unsaved
        folders, saved = ext_image.document_folders(str(copy), input_file=str(copy), docname="other.svg",
                                                    environ=env)
        self.assertEqual((folders, saved), ([self.tempdir], False))
        with self.assertRaisesRegex(ext_image.ImageSourceError, "unsaved"):
            ext_image.read_image(self.image(href="nothere.png"), None, folders, saved)

    def test_effect_reads_a_link_beside_the_saved_document(self):
        """The whole effect, run on a temporary copy in another folder, with DOCUMENT_PATH naming the
        saved document: the link beside the saved document is read."""
        data = png_bytes(24, 12)
        saved_dir = Path(self.tempdir, "saved")
        saved_dir.mkdir()
        (saved_dir / "photo.png").write_bytes(data)
        body = '<image id="photo" xlink:href="photo.png" x="0" y="0" width="24" height="12"/>'
        copy = self.write_doc(body, name="ink_ext_copy.svg")
        saved = saved_dir / "art.svg"
        Path(saved).write_text(Path(copy).read_text())
        fake = FakeServer()
        os.environ["DOCUMENT_PATH"] = str(saved)
        with mock.patch.object(lvss_vectorize, "vectorize_image", fake):
            effect = LvssVectorize()
            effect.run([copy, "--id=photo"], output=io.BytesIO())
        self.assertEqual(fake.calls[0][0], data)
        self.assertEqual(len(self.result_groups(effect.svg)), 1)

    def test_relative_link_in_unsaved_document(self):
        with self.assertRaisesRegex(ext_image.ImageSourceError, "unsaved"):
            ext_image.read_image(self.image(href="photo.png"), None)

    def test_web_link_is_refused(self):
        with self.assertRaisesRegex(ext_image.ImageSourceError, "web address"):
            ext_image.read_image(self.image(href="https://example.org/a.png"), None)

    def test_pixel_size_from_headers(self):
        for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP"):
            self.assertEqual(ext_image.pixel_size(png_bytes(37, 21, fmt)), (37, 21), fmt)
        self.assertIsNone(ext_image.pixel_size(b"not an image"))


class PlacementTest(ExtensionCase):
    """The layer groups must map the pixel grid exactly onto the bitmap, whatever its geometry."""

    W, H = 40, 20

    def place(self, image_xml: str, view_box: str = "0 0 200 200", wrap=("", "")):
        uri = data_uri(png_bytes(self.W, self.H))
        doc = self.write_doc(f'{wrap[0]}<image id="photo" xlink:href="{uri}" {image_xml}/>{wrap[1]}',
                             view_box=view_box)
        effect, _ = self.run_effect(doc)
        svg = effect.svg
        image = svg.getElementById("photo")
        (group,) = self.result_groups(svg)
        return image, group

    def assert_on_bitmap(self, image, group):
        layers = list(group)
        self.assertEqual(len(layers), 3)
        for layer in layers:
            np.testing.assert_allclose(pixel_corners_doc(layer, self.W, self.H), image_corners_doc(image), atol=1e-6)

    def test_plain_stretched_image(self):
        self.assert_on_bitmap(*self.place('x="10" y="20" width="80" height="60" preserveAspectRatio="none"'))

    def test_rotated_and_scaled_image(self):
        self.assert_on_bitmap(*self.place(
            'x="5" y="-3" width="60" height="30" transform="matrix(0.5 0.866 -1.2 0.7 30 40)"'))

    def test_nested_groups_with_transforms(self):
        wrap = ('<g id="layer1" inkscape:groupmode="layer" transform="translate(13 7)">'
                '<g id="outer" transform="scale(1.5) rotate(-20)"><g id="inner" transform="skewX(10)">',
                '</g></g></g>')
        image, group = self.place('x="4" y="6" width="40" height="20" transform="rotate(45 20 10)"', wrap=wrap)
        self.assertIs(group.getparent(), image.getparent())
        self.assertEqual(etree.ElementBase.get(image, "transform"), "rotate(45 20 10)", "image untouched")
        self.assert_on_bitmap(image, group)

    def test_non_zero_view_box_origin(self):
        image, group = self.place('x="-40" y="-25" width="80" height="40"', view_box="-50 -30 200 200")
        self.assert_on_bitmap(image, group)
        bb_img = image.bounding_box(image.getparent().composed_transform())
        bb_res = group.bounding_box(group.getparent().composed_transform())
        for a, b in ((bb_img.left, bb_res.left), (bb_img.top, bb_res.top),
                     (bb_img.right, bb_res.right), (bb_img.bottom, bb_res.bottom)):
            self.assertAlmostEqual(a, b, places=4)

    def test_preserve_aspect_ratio_meet(self):
        # a 40×20 bitmap in a 100×100 box, centred: 100×50 at y = 25
        image, group = self.place('x="0" y="0" width="100" height="100"')
        corners = pixel_corners_doc(group[0], self.W, self.H)
        np.testing.assert_allclose(corners, [[0, 25], [100, 25], [100, 75], [0, 75]], atol=1e-6)
        self.assertEqual(self.clip_rect(group), [0, 25, 100, 50])

    def test_preserve_aspect_ratio_xmax_slice_is_clipped(self):
        image, group = self.place('x="0" y="0" width="100" height="100" preserveAspectRatio="xMaxYMin slice"')
        corners = pixel_corners_doc(group[0], self.W, self.H)
        np.testing.assert_allclose(corners, [[-100, 0], [100, 0], [100, 100], [-100, 100]], atol=1e-6)
        self.assertEqual(self.clip_rect(group), [0, 0, 100, 100])

    @staticmethod
    def clip_rect(elem):
        clip = elem.getroottree().getroot().getElementById(elem.get("clip-path")[5:-1])
        return [float(clip[0].get(k)) for k in ("x", "y", "width", "height")]

    def test_viewport_rules(self):
        img = inkex.Image(x="10", y="0", width="60", height="60", preserveAspectRatio="xMinYMax meet")
        vp = ext_place.viewport_of(img, (30, 10))
        self.assertEqual((vp.sx, vp.sy, vp.tx, vp.ty, vp.slice), (2.0, 2.0, 10.0, 40.0, False))
        self.assertEqual(vp.visible, (10.0, 40.0, 60.0, 20.0))
        img = inkex.Image(x="0", y="0", width="10mm")
        vp = ext_place.viewport_of(img, (10, 5))  # height from the aspect ratio, mm → px
        self.assertAlmostEqual(vp.rect[3], 10 * 96 / 25.4 / 2)
        with self.assertRaisesRegex(ext_place.PlacementError, "percentage"):
            ext_place.viewport_of(inkex.Image(width="50%", height="10"), (10, 5))
        self.assertEqual(ext_place.parse_preserve_aspect_ratio("defer xMinYMid slice"), ("xMinYMid", True))

    def test_server_view_box_origin_and_scale(self):
        # a server SVG whose viewBox starts at (5, 5) and is half the bitmap's size still spans it
        res = ext_place.parse_result(layered_svg(20, 10, vb_origin=(5, 5)))
        img = inkex.Image(id="i", x="0", y="0", width="40", height="20", preserveAspectRatio="none")
        placement = ext_place.build_group(img, res, name="i", pixels=(40, 20), as_layers=False, taken=set())
        tf = raw_composed(placement.group[0])
        np.testing.assert_allclose(tuple(tf.apply_to_point((5, 5))), (0, 0))
        np.testing.assert_allclose(tuple(tf.apply_to_point((25, 15))), (40, 20))

    def test_image_opacity_and_clip_carry_over(self):
        image, group = self.place('x="0" y="0" width="40" height="20" clip-path="url(#c)" style="opacity:0.4"')
        self.assertEqual(group.get("clip-path"), "url(#c)")
        self.assertEqual(group.style.get("opacity"), "0.4")
        for layer in group:  # the cut to the bitmap's rectangle moves to the layers, in pixels
            self.assertEqual(self.clip_rect(layer), [0, 0, self.W, self.H])


class InsertTest(ExtensionCase):
    def doc_with_images(self, n=1, in_layer=True, extra=""):
        imgs = "".join(
            f'<image id="{"photo" if i == 0 else f"photo{i}"}" x="{i * 50}" y="0" width="40" height="20" '
            f'xlink:href="{data_uri(png_bytes(40 + i, 20))}"/>' for i in range(n))
        body = f'<rect id="r1" width="5" height="5"/>{imgs}<rect id="r2" width="5" height="5"/>{extra}'
        if in_layer:
            body = f'<g id="layer1" inkscape:groupmode="layer" inkscape:label="Layer 1">{body}</g>'
        return self.write_doc(body)

    def test_group_directly_above_image_with_ordered_labelled_layers(self):
        effect, server = self.run_effect(self.doc_with_images())
        svg = effect.svg
        image = svg.getElementById("photo")
        (group,) = self.result_groups(svg)
        self.assertIs(image.getnext(), group)
        self.assertEqual(group.get(LABEL), "lvss: photo")
        self.assertEqual([g.get(LABEL) for g in group], ["background", "shapes", "details"])
        self.assertEqual([g.get(GROUPMODE) for g in group], ["layer"] * 3)
        self.assertEqual(group.get(GROUPMODE), "layer")
        for g in group:
            self.assertEqual(len(g.findall("{http://www.w3.org/2000/svg}path")), 1)
        self.assertIsNone(image.style.get("display"))
        self.assertEqual(len(server.calls), 1)

    def test_groups_mode(self):
        effect, _ = self.run_effect(self.doc_with_images(), insert_as="groups")
        (group,) = self.result_groups(effect.svg)
        self.assertEqual([g.get(GROUPMODE) for g in [group, *group]], [None] * 4)

    def test_layers_only_where_inkscape_has_layers(self):
        # an image inside a plain group gets plain groups even in layers mode
        doc = self.write_doc(f'<g id="grp"><image id="photo" width="4" height="2" '
                             f'xlink:href="{data_uri(png_bytes(4, 2))}"/></g>')
        effect, _ = self.run_effect(doc, insert_as="layers")
        (group,) = self.result_groups(effect.svg)
        self.assertIsNone(group.get(GROUPMODE))

    def test_label_is_the_linked_file_name(self):
        Path(self.tempdir, "photo.png").write_bytes(png_bytes(40, 20))
        doc = self.write_doc('<image id="photo" width="40" height="20" xlink:href="photo.png"/>')
        effect, _ = self.run_effect(doc)
        (group,) = self.result_groups(effect.svg)
        self.assertEqual(group.get(LABEL), "lvss: photo.png")

    def test_hide_and_delete_original(self):
        effect, _ = self.run_effect(self.doc_with_images(), original="hide")
        image = effect.svg.getElementById("photo")
        self.assertEqual(image.style.get("display"), "none")
        self.assertIs(image.getnext(), self.result_groups(effect.svg)[0])

        effect, _ = self.run_effect(self.doc_with_images(), original="delete")
        svg = effect.svg
        self.assertIsNone(svg.getElementById("photo"))
        (group,) = self.result_groups(svg)
        self.assertEqual(group.getprevious().get("id"), "r1")
        self.assertEqual(group.getnext().get("id"), "r2")

    def test_several_images_in_z_order_with_unique_ids(self):
        doc = self.doc_with_images(3)
        # selected top first, plus a rectangle that is ignored
        effect, server = self.run_effect(doc, ids=("photo2", "r1", "photo", "photo1"))
        self.assertEqual([ext_image.pixel_size(d)[0] for d, _ in server.calls], [40, 41, 42])
        svg = effect.svg
        for name in ("photo", "photo1", "photo2"):
            nxt = svg.getElementById(name).getnext()
            self.assertEqual(nxt.get(LABEL), f"lvss: {name}")
        ids = svg.xpath("//@id")
        self.assertEqual(len(ids), len(set(ids)), "inserted ids must be unique")

    def test_existing_ids_are_not_reused(self):
        doc = self.doc_with_images(extra='<rect id="photo-layer0" width="1" height="1"/>')
        effect, _ = self.run_effect(doc)
        ids = effect.svg.xpath("//@id")
        self.assertEqual(len(ids), len(set(ids)))

    def test_options_reach_the_server(self):
        _, server = self.run_effect(self.doc_with_images(), prompt="a red\\nbicycle", paths=17, mode="compact",
                                    levels=2, seed=9, server="10.0.0.1:6000", timeout=33, fill="auto",
                                    quality="best")
        s = server.calls[0][1]
        self.assertEqual((s.prompt, s.paths, s.mode, s.levels, s.seed, s.server, s.timeout, s.fill, s.quality),
                         ("a red\nbicycle", 17, "compact", 2, 9, "10.0.0.1:6000", 33.0, "auto", "best"))

    def test_connection_fields_reach_the_client(self):
        """The Server tab's token file and TLS certificate (the CA of a TLS server) and the Vectorize
        tab's backdrop reach the request's settings."""
        _, server = self.run_effect(self.doc_with_images(), token_file="/keys/token", tls_ca="/keys/ca.pem",
                                    backdrop="false")
        s = server.calls[0][1]
        self.assertEqual((s.token_file, s.tls_ca, s.backdrop), ("/keys/token", "/keys/ca.pem", False))
        _, server = self.run_effect(self.doc_with_images())
        self.assertEqual((server.calls[0][1].tls_ca, server.calls[0][1].backdrop), ("", True))

    def test_quality_defaults_to_fast(self):
        _, server = self.run_effect(self.doc_with_images())
        self.assertEqual(server.calls[0][1].quality, "fast")


class ErrorTest(ExtensionCase):
    def doc(self):
        return self.write_doc(f'<rect id="r" width="5" height="5"/><image id="photo" width="40" height="20" '
                              f'xlink:href="{data_uri(png_bytes())}"/>'
                              f'<image id="photo2" width="40" height="20" xlink:href="{data_uri(png_bytes(30, 10))}"/>')

    def test_nothing_selected(self):
        msg = self.run_failing(self.doc(), ids=())
        self.assertIn("Nothing is selected", msg)

    def test_no_bitmap_in_selection(self):
        msg = self.run_failing(self.doc(), ids=("r",))
        self.assertIn("holds no bitmap image", msg)

    def test_missing_linked_file(self):
        doc = self.write_doc('<image id="photo" width="40" height="20" xlink:href="lost.png"/>')
        server = FakeServer()
        msg = self.run_failing(doc, fake=server)
        self.assertIn("missing", msg)
        self.assertIn(os.path.join(self.tempdir, "lost.png"), msg)
        self.assertEqual(server.calls, [], "nothing is sent when an image cannot be read")

    def test_cancel_leaves_the_drawing_unchanged(self):
        msg = self.server_error("CANCELLED", "you cancelled it")
        self.assertIn("Cancelled while vectorizing", msg)
        self.assertIn("stopped on the server", msg)

    def run_with_notes(self, **opts):
        fake = FakeServer(warnings=["the prompt was not used: this server has no CLIP model"])
        err = io.StringIO()
        doc = self.doc()
        os.environ["DOCUMENT_PATH"] = doc
        effect = LvssVectorize()
        args = [doc, "--id=photo", "--id=photo2"] + [f"--{k}={v}" for k, v in opts.items()]
        with mock.patch.object(lvss_vectorize, "vectorize_image", fake), mock.patch("sys.stderr", err):
            effect.run(args, output=io.BytesIO())
        return effect, fake, err.getvalue()

    def test_server_notes_are_shown_after_a_successful_run(self):
        effect, fake, err = self.run_with_notes(prompt="the cat")
        self.assertEqual(len(self.result_groups(effect.svg)), 2)  # the result is in place
        self.assertIn("the result is in place", err)
        self.assertEqual(err.count("the prompt was not used"), 2)  # once per image, named
        self.assertIn("'photo2'", err)
        # one window (or quiet monitor) follows every image, numbered
        self.assertEqual([m[2:] for m in fake.monitors], [(1, 2), (2, 2)])

    def test_notes_can_be_turned_off(self):
        effect, _, err = self.run_with_notes(prompt="the cat", notes="false")
        self.assertEqual(len(self.result_groups(effect.svg)), 2)
        self.assertEqual(err, "")

    def server_error(self, code, text, **opts):
        return self.run_failing(self.doc(), ids=("photo", "photo2"),
                                fake=FakeServer(remote.RemoteError(code, text)), **opts)

    def test_unreachable_server_names_address_and_how_to_start(self):
        msg = self.server_error("UNAVAILABLE", "connection refused", server="127.0.0.1:50999")
        self.assertIn("127.0.0.1:50999", msg)
        self.assertIn("lvss serve --host 127.0.0.1 --port 50999", msg)

    def test_deadline(self):
        msg = self.server_error("DEADLINE_EXCEEDED", "deadline exceeded", timeout=7)
        self.assertIn("within the timeout of 7 s", msg)
        self.assertIn("Raise the timeout", msg)

    def test_refused_input_shows_server_message(self):
        msg = self.server_error("INVALID_ARGUMENT", "image is 1x1 pixels; need at least 8x8")
        self.assertIn("refused 'photo': image is 1x1 pixels; need at least 8x8", msg)

    def test_wrong_token(self):
        token = Path(self.tempdir, "tok")
        token.write_text("nope")
        msg = self.server_error("UNAUTHENTICATED", "invalid token", token_file=str(token))
        self.assertIn("wrong or missing token", msg)
        self.assertIn(str(token), msg)
        self.assertIn("token file on the Server tab", msg)

    def test_busy_and_internal(self):
        self.assertIn("queue", self.server_error("RESOURCE_EXHAUSTED", "queue is full (8 waiting)"))
        self.assertIn("server's log", self.server_error("INTERNAL", "boom"))

    def test_failure_on_second_image_leaves_document_unchanged(self):
        doc = self.doc()
        before = Path(doc).read_bytes()
        server = FakeServer(remote.RemoteError("INVALID_ARGUMENT", "bad"), fail_on=1)
        msg = self.run_failing(doc, ids=("photo", "photo2"), fake=server)
        self.assertEqual(len(server.calls), 2)
        self.assertIn("'photo2'", msg)
        self.assertEqual(self.result_groups(self.failed_effect.svg), [], "nothing inserted in memory either")
        self.assertEqual(Path(doc).read_bytes(), before)

    def test_bad_server_svg(self):
        def garbage(data, settings, *monitor_args):
            return remote.Outcome("<html>oops</html>")

        msg = self.run_failing(self.doc(), fake=garbage)
        self.assertIn("not SVG", msg)


class RemoteTest(unittest.TestCase):
    """Choosing how to reach the server, and turning every failure into advice."""

    def setUp(self):
        import tempfile

        self.tmp = Path(tempfile.mkdtemp(prefix="lvss-remote-"))

    def tearDown(self):
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)

    def fake_python(self, body: str) -> str:
        """An executable standing in for a Python with lvss: a shell script run with the same args."""
        path = self.tmp / "python"
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
        return str(path)

    def test_settings_precedence(self):
        env = {"LVSS_SERVER": "envhost:1", "LVSS_PYTHON": "/env/python", "LVSS_TOKEN_FILE": "/env/tok"}
        cfg = {"python": "/cfg/python", "server": "cfghost:2"}
        s = remote.resolve_settings(environ=env, config=cfg)
        self.assertEqual((s.server, s.python, s.token_file), ("envhost:1", "/env/python", "/env/tok"))
        s = remote.resolve_settings(server="dlg:3", python="/dlg/py", environ=env, config=cfg)
        self.assertEqual((s.server, s.python), ("dlg:3", "/dlg/py"))
        s = remote.resolve_settings(environ={}, config=dict(cfg, pythonpath="/src/lvss"))
        self.assertEqual((s.server, s.python, s.pythonpath), ("cfghost:2", "/cfg/python", "/src/lvss"))
        s = remote.resolve_settings(environ={}, config={})
        self.assertEqual((s.server, s.python, s.token_file), ("127.0.0.1:50051", "", ""))

    def test_in_process_client(self):
        class ClientError(Exception):
            def __init__(self, code, message):
                super().__init__(message)
                self.code, self.message = code, message

        calls = []

        class Conn:
            def __init__(self, server, token=None):
                calls.append(("connect", server, token))

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return None

            def info(self, timeout=None):
                return {"version": "x", "prompt_supported": False}

            def vectorize(self, data, **kw):
                calls.append((data, kw))
                kw["on_progress"](mock.Mock(stage="structure", fraction=0.5, message="step 3"))
                if kw["prompt"] == "fail":
                    raise ClientError("UNAUTHENTICATED", "bad token")
                return mock.Mock(svg="<svg/>", warnings=["the prompt was not used: no CLIP"], layers=[],
                                 timings={"total": 1.5})

        fake_client = mock.Mock(Client=Conn, ClientError=ClientError)
        tok = self.tmp / "tok"
        tok.write_text("secret\n")
        settings = remote.Settings(server="h:1", token_file=str(tok), prompt="cat", paths=5, timeout=9,
                                   backdrop=False)
        events = []
        with mock.patch.object(remote.client, "load_client", return_value=fake_client):
            outcome = remote.vectorize(b"img", settings, events.append)
            with self.assertRaises(remote.RemoteError) as ctx:
                remote.vectorize(b"img", remote.Settings(prompt="fail"))
            # a backdrop that cannot be made (not an image) costs only a warning
            with_backdrop = remote.vectorize(b"img", dataclasses.replace(settings, backdrop=True))
        self.assertEqual(with_backdrop.svg, "<svg/>")
        self.assertIn("no backdrop layer", with_backdrop.warnings[-1])
        self.assertEqual(outcome.svg, "<svg/>")
        self.assertEqual(outcome.warnings, ["the prompt was not used: no CLIP"])
        self.assertEqual(outcome.info["prompt_supported"], False)
        self.assertEqual(calls[0], ("connect", "h:1", "secret"))
        data, kw = calls[1]
        self.assertEqual((data, kw["paths"], kw["timeout"], kw["prompt"]), (b"img", 5, 9.0, "cat"))
        # the events `lvss remote --events` writes, done included
        self.assertEqual([e["event"] for e in events], ["info", "progress", "warning", "done"])
        self.assertEqual(events[-1], {"event": "done", "layers": 0, "paths": 0, "seconds": 1.5})
        self.assertEqual(events[1]["fraction"], 0.5)
        self.assertEqual(ctx.exception.code, "UNAUTHENTICATED")

    def test_no_grpc_and_no_python_explains_setup(self):
        with mock.patch.object(remote.client, "load_client", return_value=None):
            with self.assertRaises(remote.RemoteError) as ctx:
                remote.vectorize(b"img", remote.Settings(python=""))
        msg = remote.explain(ctx.exception, remote.Settings(), "x")
        self.assertIn("cannot import grpc", msg)
        self.assertIn("LVSS_PYTHON", msg)
        self.assertIn("lvss install-inkscape-extension", msg)
        self.assertIn("Python with lvss", msg)

    def test_subprocess_runs_lvss_remote(self):
        # the stand-in copies its input file to the -o file, proving both paths are passed
        py = self.fake_python('[ "$1 $2" = "-m lvss.cli.remote" ] || exit 9; IN="$3"; '
                              'while [ "$#" -gt 0 ]; do case "$1" in -o) shift; OUT="$1";; esac; shift; done; '
                              'printf "<svg>%s</svg>" "$(cat "$IN")" > "$OUT"')
        settings = remote.Settings(python=py, prompt="two\nlines", token_file="")
        with mock.patch.object(remote.client, "load_client", return_value=None):
            self.assertEqual(remote.vectorize(b"PIXELS", settings).svg, "<svg>PIXELS</svg>")
        cmd = remote.remote_command(settings, "in.png", "out.svg")
        self.assertEqual(cmd[:6], [py, "-m", "lvss.cli.remote", "in.png", "-o", "out.svg"])
        self.assertIn("--prompt", cmd)
        self.assertEqual(cmd[cmd.index("--prompt") + 1], "two\nlines")
        self.assertNotIn("--fill", cmd)  # flat: every server's default, and older clients lack --fill
        cmd = remote.remote_command(remote.Settings(python=py, fill="radial"), "in.png", "out.svg")
        self.assertEqual(cmd[cmd.index("--fill") + 1], "radial")
        self.assertNotIn("--quality", cmd)  # no choice made: the server's default preset
        cmd = remote.remote_command(remote.Settings(python=py, quality="fast"), "in.png", "out.svg")
        self.assertEqual(cmd[cmd.index("--quality") + 1], "fast")

    def test_subprocess_events_reach_the_caller(self):
        """`lvss remote --events` lines become events; warnings and the server's info come back."""
        lines = [
            {"event": "info", "version": "0.1.0", "prompt_supported": False, "models_loaded": []},
            {"event": "queued", "position": 2},
            {"event": "progress", "stage": "structure", "fraction": 0.4, "message": "step 4 of 10"},
            {"event": "warning", "message": "the prompt was not used: no CLIP model"},
            {"event": "done", "layers": 3, "paths": 12, "seconds": 1.5},
        ]
        echo = "; ".join(f"echo '{json.dumps(line)}'" for line in lines)
        py = self.fake_python('for a in "$@"; do [ "$a" = --events ] && EV=1; done; [ "$EV" = 1 ] || exit 9; '
                              'while [ "$#" -gt 0 ]; do case "$1" in -o) shift; OUT="$1";; esac; shift; done; '
                              f'{echo}; echo "not json"; printf "<svg/>" > "$OUT"')
        events = []
        with mock.patch.object(remote.client, "load_client", return_value=None):
            outcome = remote.vectorize(b"x", remote.Settings(python=py, prompt="a cat"), events.append)
        self.assertEqual([e["event"] for e in events], ["info", "queued", "progress", "warning", "done"])
        self.assertEqual(outcome.warnings, ["the prompt was not used: no CLIP model"])
        self.assertFalse(outcome.info["prompt_supported"])
        note = remote.prompt_note(outcome.info, remote.Settings(prompt="a cat", server="h:9"))
        self.assertIn("will not be used", note)
        self.assertIn("--models paper", note)
        self.assertIsNone(remote.prompt_note(outcome.info, remote.Settings(prompt="")))
        self.assertIsNone(remote.prompt_note({"prompt_supported": True}, remote.Settings(prompt="a cat")))

    def test_subprocess_cancel_goes_through_stdin(self):
        """Cancel writes "cancel" to `lvss remote --stdin-cancel`, which stops the job and exits."""
        marker = self.tmp / "got-cancel"
        started = self.tmp / "started"
        py = self.fake_python(f'touch "{started}"; read line; [ "$line" = cancel ] && touch "{marker}"; '
                              'echo "lvss remote: error: CANCELLED: cancelled" >&2; exit 130')
        with mock.patch.object(remote.client, "load_client", return_value=None):
            run = remote.Run(b"x", remote.Settings(python=py)).start()
            while not started.exists() and not run.done.is_set():
                run.done.wait(0.05)
            run.cancel()
            with self.assertRaises(remote.RemoteError) as ctx:
                run.result()
        self.assertEqual(ctx.exception.code, "CANCELLED")
        self.assertTrue(marker.exists(), "lvss remote was not told to cancel")

    def test_subprocess_errors(self):
        cases = {
            "lvss remote: error: cannot reach the server at 127.0.0.1:1 (UNAVAILABLE: connection refused)": "UNAVAILABLE",
            "lvss remote: error: DEADLINE_EXCEEDED: deadline exceeded after 5 s": "DEADLINE_EXCEEDED",
            "lvss remote: error: INVALID_ARGUMENT: image too small": "INVALID_ARGUMENT",
            "lvss remote: error: the server rejected the token": "UNAUTHENTICATED",
            "something odd": "INTERNAL",
        }
        with mock.patch.object(remote.client, "load_client", return_value=None):
            for line, code in cases.items():
                py = self.fake_python(f"echo '{line}' >&2; exit 2")
                with self.assertRaises(remote.RemoteError) as ctx:
                    remote.vectorize(b"x", remote.Settings(python=py))
                self.assertEqual(ctx.exception.code, code, line)
            err = remote.classify_failure("INVALID_ARGUMENT: image too small", remote.Settings())
            self.assertEqual(err.message, "image too small")

    def test_subprocess_lvss_older_than_the_extension(self):
        py = self.fake_python("echo 'lvss: error: unrecognized arguments: --events --backdrop' >&2; exit 2")
        with mock.patch.object(remote.client, "load_client", return_value=None):
            with self.assertRaises(remote.RemoteError) as ctx:
                remote.vectorize(b"x", remote.Settings(python=py))
        self.assertEqual(ctx.exception.code, "SETUP")
        self.assertIn("older than this extension", ctx.exception.message)
        self.assertIn("lvss install-inkscape-extension", ctx.exception.message)

    def test_subprocess_python_without_lvss(self):
        py = self.fake_python("echo \"ModuleNotFoundError: No module named 'lvss'\" >&2; exit 1")
        with mock.patch.object(remote.client, "load_client", return_value=None):
            with self.assertRaises(remote.RemoteError) as ctx:
                remote.vectorize(b"x", remote.Settings(python=py))
        self.assertEqual(ctx.exception.code, "SETUP")
        self.assertIn('-m pip install -e ".[server]"', ctx.exception.message)

    def test_subprocess_python_missing(self):
        with mock.patch.object(remote.client, "load_client", return_value=None):
            with self.assertRaises(remote.RemoteError) as ctx:
                remote.vectorize(b"x", remote.Settings(python=str(self.tmp / "no-python")))
        self.assertIn("does not exist", ctx.exception.message)
        self.assertIn("LVSS_PYTHON", ctx.exception.message)

    def test_missing_token_file(self):
        with mock.patch.object(remote.client, "load_client", return_value=None):
            with self.assertRaises(remote.RemoteError) as ctx:
                remote.vectorize(b"x", remote.Settings(python="/bin/true", token_file=str(self.tmp / "nope")))
        self.assertIn("Cannot read the token file", ctx.exception.message)

    def test_real_client_unreachable_server(self):
        # the real lvss client, in process and through `lvss remote`, against a closed port
        pytest.importorskip("grpc")
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        settings = remote.Settings(server=f"127.0.0.1:{port}", python=sys.executable, timeout=20)
        path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
        with mock.patch.dict(os.environ, {"PYTHONPATH": path}):
            for in_process in (True, False):
                with mock.patch.object(remote.client, "load_client",
                                       return_value=None) if not in_process else mock.MagicMock():
                    with self.assertRaises(remote.RemoteError) as ctx:
                        remote.vectorize(png_bytes(), settings)
                self.assertEqual(ctx.exception.code, "UNAVAILABLE", ctx.exception.message)
                self.assertIn(f"--port {port}", remote.explain(ctx.exception, settings, "x"))

    def test_child_env_drops_inkscape_module_dirs(self):
        user_ext = self.tmp / "extensions"
        (user_ext / "lvss").mkdir(parents=True)
        (user_ext / "other.inx").write_text("<x/>")
        dirs = [INKEX_DIRS[0], str(user_ext), INKEX_DIRS[0] + "/inkex/deprecated-simple", str(REPO)]
        with mock.patch.dict(os.environ, {"PYTHONPATH": os.pathsep.join(dirs)}):
            env = remote._child_env()
            self.assertEqual(env["PYTHONPATH"], str(REPO))
            env = remote._child_env("/src/lvss")
            self.assertEqual(env["PYTHONPATH"], os.pathsep.join([str(REPO), "/src/lvss"]))


class InstallTest(unittest.TestCase):
    def setUp(self):
        import tempfile

        self.tmp = Path(tempfile.mkdtemp(prefix="lvss-install-"))

    def tearDown(self):
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_install_copies_files_and_records_python(self):
        from lvss.integrations import inkscape as ink

        target = ink.install(self.tmp / "extensions", python="/opt/py/bin/python", server="h:5")
        self.assertEqual(target, self.tmp / "extensions" / "lvss")
        # the installed dialog names the address an empty Server field means here, made by the
        # extension's own rule (remote.server_field_label); everything else is copied as it is
        inx = (EXT_DIR / "lvss_vectorize.inx").read_text()
        label = "Server address (host:port). Empty: $LVSS_SERVER if set, else h:5 (recorded at installation):"
        self.assertEqual(label, remote.server_field_label({"server": "h:5"}))
        general = remote.server_field_label(None)
        self.assertIn(f'gui-text="{general}"', inx)
        self.assertEqual((target / "lvss_vectorize.inx").read_text(), inx.replace(general, label))
        for name in ink.EXTENSION_FILES:
            if name != "lvss_vectorize.inx":
                self.assertEqual((target / name).read_bytes(), (EXT_DIR / name).read_bytes())
        # the remote client both extensions share, as the package _lvss (the files Blender bundles too)
        from lvss.ext_client import BUNDLED

        for rel in BUNDLED:
            self.assertEqual((target / "_lvss" / rel).read_bytes(), (REPO / "lvss" / rel).read_bytes(), rel)
        cfg = json.loads((target / "lvss_vectorize.json").read_text())
        self.assertEqual(cfg, {"python": "/opt/py/bin/python", "server": "h:5", "pythonpath": str(REPO)})
        self.assertEqual(remote.read_config(str(target / "lvss_vectorize.json"))["python"], "/opt/py/bin/python")

    def test_asks_inkscape_where(self):
        from lvss.integrations import inkscape as ink

        prog = self.tmp / "inkscape"
        prog.write_text(f"#!/bin/sh\n[ \"$1\" = --user-data-directory ] && echo {self.tmp}/profile\n")
        prog.chmod(0o755)
        self.assertEqual(ink.user_extensions_dir(str(prog)), self.tmp / "profile" / "extensions")
        rc = ink.main(["--inkscape", str(prog)])
        self.assertEqual(rc, 0)
        self.assertTrue((self.tmp / "profile" / "extensions" / "lvss" / "lvss_vectorize.inx").is_file())
        cfg = json.loads((self.tmp / "profile" / "extensions" / "lvss" / "lvss_vectorize.json").read_text())
        self.assertEqual(cfg["python"], sys.executable)

    def test_no_inkscape(self):
        from lvss.integrations import inkscape as ink

        with self.assertRaisesRegex(ink.InstallError, "--dest"):
            ink.user_extensions_dir(str(self.tmp / "no-inkscape"))
        err = io.StringIO()
        with mock.patch("sys.stderr", err):
            self.assertEqual(ink.main(["--inkscape", str(self.tmp / "no-inkscape")]), 2)
        self.assertIn("Inkscape was not found", err.getvalue())

    def test_registers_subcommand(self):
        import argparse

        from lvss.integrations import inkscape as ink

        parser = argparse.ArgumentParser()
        ink.add_parser(parser.add_subparsers(dest="cmd"))
        args = parser.parse_args(["install-inkscape-extension", "--dest", str(self.tmp)])
        self.assertIs(args.func, ink.run)
        with mock.patch("sys.stdout", io.StringIO()):
            self.assertEqual(args.func(args), 0)
        self.assertTrue((self.tmp / "lvss" / "lvss_vectorize.py").is_file())


class GradientServer(FakeServer):
    """Answers with an lvss SVG whose paths have linear and radial gradient fills."""

    def __call__(self, data, settings, monitor=None, name="image", index=1, count=1):
        import torch

        from lvss.scene import Layer, LinearGradient, RadialGradient, Scene, circle_path
        from lvss.svg import scene_to_svg

        self.calls.append((data, settings))
        w, h = ext_image.pixel_size(data)
        a, b = circle_path(w * 0.3, h * 0.5, h * 0.4), circle_path(w * 0.7, h * 0.5, h * 0.4)
        a.fill = LinearGradient([0.0, 0.0], [w, h], [0.0, 1.0], [[1, 0, 0, 1], [0, 0, 1, 1]])
        b.fill = RadialGradient([w * 0.7, h * 0.5], h * 0.4, [0.0, 0.5, 1.0],
                                [[1, 1, 1, 1], [0, 1, 0, 0.5], [0, 0, 0, 1]], focal=[w * 0.65, h * 0.45])
        flat = circle_path(w * 0.5, h * 0.5, 2.0)
        flat.color = torch.tensor([0.5, 0.5, 0.5, 1.0])
        return remote.Outcome(scene_to_svg(Scene(w, h, [Layer("back", [a]), Layer("front", [b, flat])])), [])


class GradientPlacementTest(ExtensionCase):
    """Gradient fills of the returned SVG travel with its layers: their definitions land in the
    document's <defs> under fresh ids, and every path refers to its own gradient."""

    def test_gradient_defs_travel_with_fresh_ids(self):
        own = ('<defs><linearGradient id="linear1"><stop offset="0" stop-color="#123456"/></linearGradient>'
               '</defs><rect id="mine" width="5" height="5" fill="url(#linear1)"/>')
        doc = self.write_doc(f'{own}<image id="photo" x="10" y="20" width="80" height="40" '
                             f'xlink:href="{data_uri(png_bytes(40, 20))}"/>')
        effect, _ = self.run_effect(doc, fake=GradientServer())
        svg = effect.svg
        ids = svg.xpath("//@id")
        self.assertEqual(len(ids), len(set(ids)), "ids must stay unique in the document")
        # the user's own gradient is untouched and still the one its rect uses
        self.assertEqual(svg.getElementById("mine").get("fill"), "url(#linear1)")
        self.assertEqual(svg.getElementById("linear1")[0].get("stop-color"), "#123456")
        (group,) = self.result_groups(svg)
        fills = [p.get("fill") for p in group.iter() if isinstance(p.tag, str) and p.tag.endswith("}path")]
        self.assertEqual(len(fills), 3)
        self.assertEqual(fills[2], "#808080")
        grads = []
        for f in fills[:2]:
            self.assertTrue(f.startswith("url(#") and f != "url(#linear1)", f)
            g = svg.getElementById(f[5:-1])
            self.assertIsNotNone(g, f"{f} must point at a definition in the document")
            self.assertIs(g.getparent(), svg.defs)
            grads.append(g)
        lin, rad = grads
        self.assertTrue(lin.tag.endswith("linearGradient") and rad.tag.endswith("radialGradient"))
        # pixel coordinates in the layer's user space (the layer's transform maps pixels to the image)
        self.assertEqual(lin.get("gradientUnits"), "userSpaceOnUse")
        self.assertEqual((lin.get("x2"), lin.get("y2")), ("40", "20"))
        self.assertEqual((rad.get("cx"), rad.get("fx")), ("28", "26"))
        self.assertEqual([s.get("stop-opacity") for s in rad], [None, "0.5", None])
