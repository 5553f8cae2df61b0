"""Reading the pixels of an SVG ``<image>``: an embedded ``data:`` URI or a linked file.

Pure standard library, so that it runs under any Python that Inkscape uses. Inkscape hands an
extension a temporary copy of the document, so a relative link is looked up against the folders of
:func:`document_folders`: the saved document's own folder first (``DOCUMENT_PATH``, else the file
named by ``sodipodi:docname`` among the recently used files), the temporary copy's folder last;
then at ``sodipodi:absref`` (the absolute path Inkscape records when it links a file). The bytes are passed on undecoded (PNG, JPEG, ...); the server decodes
them. :func:`pixel_size` reads only the header to learn the bitmap's size in pixels.
"""
from __future__ import annotations

import base64
import binascii
import os
import re
import struct
import urllib.parse
from dataclasses import dataclass
from typing import Optional, Tuple

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
SODIPODI_ABSREF = "{http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd}absref"
SODIPODI_DOCNAME = "{http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd}docname"
INKSCAPE_LABEL = "{http://www.inkscape.org/namespaces/inkscape}label"


class ImageSourceError(Exception):
    """The bitmap of an ``<image>`` cannot be read; the message says what to do."""


@dataclass(frozen=True)
class ImageSource:
    """The encoded bitmap of one ``<image>`` element.

    data: the file's bytes (PNG, JPEG, GIF, ...), undecoded.
    name: a short human name: the linked file's name, else the element's label or id.
    path: the file it was read from, or None for an embedded ``data:`` URI.
    """

    data: bytes
    name: str
    path: Optional[str] = None


def element_name(elem) -> str:
    """The label Inkscape shows for ``elem`` (``inkscape:label``), else its id, else "image"."""
    return elem.get(INKSCAPE_LABEL) or elem.get("id") or "image"


def image_href(elem) -> str:
    """The ``xlink:href`` (SVG 1.1) or ``href`` (SVG 2) of an ``<image>``, stripped; "" if none."""
    return (elem.get(XLINK_HREF) or elem.get("href") or "").strip()


def decode_data_uri(uri: str) -> bytes:
    """The payload of an RFC 2397 ``data:`` URI (base64 or percent-encoded).

    Whitespace inside base64 data is ignored (Inkscape wraps long lines).
    """
    head, sep, payload = uri.partition(",")
    if not sep:
        raise ImageSourceError("the embedded data: URI has no ',' separating header and data")
    if head.lower().endswith(";base64"):
        compact = re.sub(r"\s+", "", urllib.parse.unquote(payload))
        try:
            return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
        except (binascii.Error, ValueError) as err:
            raise ImageSourceError(f"the embedded base64 image data is corrupt ({err})") from None
    return urllib.parse.unquote_to_bytes(payload)


def _href_to_path(href: str) -> str:
    """A filesystem path from a link: ``file:`` URIs are decoded, plain paths kept as written."""
    if href.lower().startswith("file:"):
        parsed = urllib.parse.urlparse(href)
        return urllib.parse.unquote(parsed.path)
    return href


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def recent_files(environ: Optional[dict] = None) -> list[str]:
    """Local files in the desktop's list of recently used files (GTK's ``recently-used.xbel``, where
    Inkscape records the documents it opens and saves), most recent last; [] when there is none."""
    env = os.environ if environ is None else environ
    data_home = env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"),
                                                         ".local", "share")
    try:
        with open(os.path.join(data_home, "recently-used.xbel"), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return []
    out = []
    for href in re.findall(r'<bookmark\b[^>]*\bhref="(file://[^"]+)"', text):
        path = urllib.parse.unquote(urllib.parse.urlparse(href).path)
        if path:
            out.append(path)
    return out


def document_folders(document_path: Optional[str], *, input_file: Optional[str] = None,
                     docname: Optional[str] = None, environ: Optional[dict] = None,
                     recent: Optional[list] = None) -> Tuple[list, bool]:
    """Folders a relative link is resolved against, in order, and whether the document is saved.

    document_path: Inkscape's ``DOCUMENT_PATH`` (the saved document; "" or None when unsaved or
    unknown). input_file: the temporary copy Inkscape passed (inkex sets ``DOCUMENT_PATH`` to it when
    Inkscape does not). docname: the root's ``sodipodi:docname``, the saved file's name (or path).
    recent: recently used files (default :func:`recent_files`).

    The saved document's folder comes first: ``DOCUMENT_PATH`` unless it is the temporary copy (a
    relative one is taken from the folder Inkscape was started in, ``$PWD``); else the folder of a
    recently used file named ``docname``; the temporary copy's folder comes last.
    """
    env = os.environ if environ is None else environ
    folders: list = []
    saved = False
    doc = (document_path or "").strip()
    if doc and not os.path.isabs(doc) and env.get("PWD"):
        doc = os.path.join(env["PWD"], doc)
    if doc and not (input_file and _same_file(doc, input_file)):
        folders.append(os.path.dirname(os.path.abspath(doc)))
        saved = True
    name = (docname or "").strip()
    if not saved and name:
        if os.path.isabs(name):
            folders.append(os.path.dirname(name))
            saved = True
        else:
            candidates = recent_files(env) if recent is None else recent
            for path in reversed(candidates):  # the most recent file of that name
                if os.path.basename(path) == name and os.path.isfile(path):
                    folders.append(os.path.dirname(path))
                    saved = True
                    break
    if input_file:
        folders.append(os.path.dirname(os.path.abspath(input_file)))
    return list(dict.fromkeys(folders)), saved


def candidate_paths(href: str, absref: Optional[str], document_dir) -> list[str]:
    """Where a linked image may be, in the order they are tried (duplicates removed).

    document_dir: a folder, or a list of folders tried in order (see :func:`document_folders`). A
    relative link is resolved against each (both as written and percent-decoded); an absolute link
    is taken as is; ``sodipodi:absref`` comes last.
    """
    dirs = [document_dir] if isinstance(document_dir, str) else list(document_dir or ())
    out: list[str] = []
    if href:
        raw = os.path.expanduser(_href_to_path(href))
        for p in dict.fromkeys([raw, urllib.parse.unquote(raw)]):
            if os.path.isabs(p):
                out.append(p)
            else:
                out.extend(os.path.normpath(os.path.join(d, p)) for d in dirs if d)
    if absref:
        out.append(os.path.expanduser(absref))
    return list(dict.fromkeys(out))


def read_image(elem, document_path: Optional[str], folders: Optional[list] = None,
               saved: Optional[bool] = None) -> ImageSource:
    """The encoded bitmap of the ``<image>`` element ``elem``.

    document_path: the saved document's file (Inkscape's DOCUMENT_PATH), or None/"" if unsaved;
    folders/saved: instead, the result of :func:`document_folders` (used when given).
    Raises ImageSourceError with a message naming the element and what to do.
    """
    label = element_name(elem)
    href = image_href(elem)
    absref = elem.get(SODIPODI_ABSREF)
    if href.lower().startswith("data:"):
        try:
            data = decode_data_uri(href)
        except ImageSourceError as err:
            raise ImageSourceError(
                f"Image '{label}': {err}. Re-import the bitmap (File > Import) and try again."
            ) from None
        if not data:
            raise ImageSourceError(f"Image '{label}' embeds no data. Re-import the bitmap.")
        return ImageSource(data, label, None)
    if not href and not absref:
        raise ImageSourceError(
            f"Image '{label}' has no link (no xlink:href). Re-import the bitmap (File > Import)."
        )
    scheme = urllib.parse.urlparse(href).scheme.lower()
    if scheme in ("http", "https", "ftp"):
        raise ImageSourceError(
            f"Image '{label}' links to a web address ({href}). Download the file, then link or "
            "embed it (Extensions > Images > Embed Images) and try again."
        )
    if folders is None:
        folders = [os.path.dirname(os.path.abspath(document_path))] if document_path else []
        saved = bool(document_path)
    tried = candidate_paths(href, absref, folders)
    for path in tried:
        if os.path.isfile(path):
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError as err:
                raise ImageSourceError(
                    f"Image '{label}': cannot read the linked file {path} ({err.strerror}). "
                    "Check its permissions."
                ) from None
            return ImageSource(data, os.path.basename(path), path)
    looked = "\n  ".join(tried) if tried else "(nowhere: the link is relative and the document is unsaved)"
    relative = bool(href) and not os.path.isabs(os.path.expanduser(_href_to_path(href)))
    unsaved = (
        " The document is unsaved, so a relative link cannot be resolved: save it next to the image."
        if relative and not saved else ""
    )
    raise ImageSourceError(
        f"The file linked by image '{label}' is missing: {href or absref}\nLooked at:\n  {looked}\n"
        "Restore the file or relink the image (Object > Object Properties); or, while the file is "
        f"available, embed it (Extensions > Images > Embed Images).{unsaved}"
    )


def pixel_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) in pixels from a PNG, GIF, JPEG, BMP or WebP header, or None if unknown."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data[:2] == b"BM":
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def _webp_size(data: bytes) -> Optional[Tuple[int, int]]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        b = data[21:25]
        w = 1 + (((b[1] & 0x3F) << 8) | b[0])
        h = 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
        return w, h
    if chunk == b"VP8X":
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return w, h
    return None


def _jpeg_size(data: bytes) -> Optional[Tuple[int, int]]:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        # SOF0..SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None
