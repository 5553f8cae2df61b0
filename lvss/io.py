"""Image input and atomic file output.

Every image that enters lvss passes through :func:`load_image`, which returns (H, W, 4) uint8 RGBA
and rejects bad input with an :class:`ImageError` whose message says what to fix.

For callers that hold many encoded images and decode them later (the server's queue), two more
entry points keep memory and latency bounded:

* :func:`inspect_image_bytes` reads only the header (format, size, orientation) and checks the size,
  without decoding a pixel: microseconds for any image.
* :func:`decode_image_reduced` decodes straight to about the working resolution: JPEG with the
  decoder's own 1/2, 1/4, 1/8 scaling (the full-size image never exists), other formats decoded at
  full size once and box-reduced band by band (no second full-size copy); one full-size decode at a
  time per process. A cancel event is checked between every 16 KiB of compressed input and between
  bands, so a cancelled decode returns within milliseconds; WebP and compressed TIFF, which their
  libraries decode in one call, are decoded in a helper thread that the caller stops waiting for.
"""
from __future__ import annotations

import io
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

import numpy as np

DEFAULT_MAX_PIXELS = 50_000_000  # 50 megapixels; larger images are refused before decoding
MIN_SIDE = 2


class ImageError(ValueError):
    """The input is not a usable image; the message says why and what to do."""


class LoadCancelled(Exception):
    """Decoding stopped because the caller's cancel event was set."""


DECODE_BLOCK = 1 << 14  # compressed bytes handed to a decoder per step (cancel granularity)
BAND_BYTES = 16 << 20  # RGBA bytes per band when a decoded image is reduced
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageInfo:
    """What an image's header says. ``width``/``height`` are as displayed (EXIF orientation applied
    where the header carries it), in pixels; ``format`` is Pillow's name ("PNG", "JPEG", ...)."""

    format: str
    width: int
    height: int
    mode: str

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _check_size(width: int, height: int, max_pixels: int, what: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageError(f"{what} is empty ({width}x{height} pixels); give an image with pixels in it")
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageError(
            f"{what} is only {width}x{height} pixels; lvss needs at least {MIN_SIDE}x{MIN_SIDE}")
    if width * height > max_pixels:
        raise ImageError(
            f"{what} declares {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,}; downscale it first")


def _from_pil(im: Any, max_pixels: int, what: str, upright: bool = False) -> np.ndarray:
    """Check the declared size, decode, and convert to (H, W, 4) uint8 RGBA.

    upright: apply the EXIF orientation tag (camera JPEGs), so the pixels match what viewers show.
    """
    from PIL import Image, ImageOps

    _check_size(im.width, im.height, max_pixels, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as e:
        raise ImageError(f"{what} could not be decoded ({e}); it may be truncated or corrupt") from None
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    if upright:
        im = ImageOps.exif_transpose(im)
    return _pil_to_rgba(im)


def _depth_scale(im: Any) -> float:
    """Factor that brings a high-depth single-channel image to 8 bits (1.0 for every other mode).

    16-bit integers: 255/65535; 32-bit integers likewise when they exceed 255; floats 255 when they
    lie within [0, 1]. Decided on the whole image, so bands of one image are scaled alike.
    """
    mode = im.mode
    if mode.startswith("I;16"):
        return 255.0 / 65535.0
    if mode == "I":
        lo, hi = im.getextrema()
        return 255.0 / 65535.0 if hi > 255 else 1.0
    if mode == "F":
        lo, hi = im.getextrema()
        return 255.0 if hi <= 1.0 else 1.0
    return 1.0


def _pil_to_rgba(im: Any, depth_scale: float | None = None) -> np.ndarray:
    """A loaded PIL image → (H, W, 4) uint8 RGBA.

    Pillow's ``convert("RGBA")`` clips the single-channel high-depth modes at 255 (a 16-bit PNG comes
    out almost white), so those are rescaled to 8 bits here first (see :func:`_depth_scale`; pass
    ``depth_scale`` to use one computed on a larger image this one is a part of).
    """
    from PIL import Image

    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(im).astype(np.float64)
        if depth_scale is None:
            if mode.startswith("I;16") or (mode == "I" and a.size and a.max() > 255):
                depth_scale = 255.0 / 65535.0
            elif mode == "F" and a.size and np.nanmax(a) <= 1.0:
                depth_scale = 255.0
            else:
                depth_scale = 1.0
        a = np.clip(np.nan_to_num(a * depth_scale), 0.0, 255.0)
        im = Image.fromarray((a + 0.5).astype(np.uint8), "L")
    return np.asarray(im.convert("RGBA"), dtype=np.uint8).copy()


def decode_image_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, what: str = "the image") -> np.ndarray:
    """Decode PNG/JPEG/WebP/... bytes to (H, W, 4) uint8 RGBA; the size is checked before decoding."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError(f"{what} is empty (0 bytes)")
    old = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # we enforce our own limit from the header, before decoding
        try:
            im = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            _check_png_header(data, max_pixels, what)  # Pillow refuses 0-pixel PNGs: say so plainly
            raise ImageError(f"{what} is not an image lvss can read (PNG, JPEG, WebP, BMP, TIFF)") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise ImageError(f"{what} could not be read ({e}); it may be truncated or corrupt") from None
        return _from_pil(im, max_pixels, what, upright=True)
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _check_png_header(data: bytes, max_pixels: int, what: str) -> None:
    """Raise the size error for a PNG whose IHDR declares an unusable size (e.g. 0x0)."""
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        _check_size(int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"), max_pixels, what)


_PIL_LIMIT = threading.Lock()  # Image.MAX_IMAGE_PIXELS is process-wide: one header at a time lifts it


def _open_header(data: bytes, max_pixels: int, what: str, fp: Any = None) -> Any:
    """Open encoded bytes with Pillow (header only) and check the declared size; ImageError if unusable.

    Pillow's own pixel limit is lifted while the header is read (our ``max_pixels`` replaces it),
    under a lock, so concurrent callers never leave it lifted.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError(f"{what} is empty (0 bytes)")
    try:
        with _PIL_LIMIT:
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                im = Image.open(fp if fp is not None else io.BytesIO(data))
            finally:
                Image.MAX_IMAGE_PIXELS = old
    except UnidentifiedImageError:
        _check_png_header(data, max_pixels, what)
        raise ImageError(f"{what} is not an image lvss can read (PNG, JPEG, WebP, BMP, TIFF)") from None
    except LoadCancelled:
        raise
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{what} could not be read ({e}); it may be truncated or corrupt") from None
    _check_size(im.width, im.height, max_pixels, what)
    return im


def _header_orientation(im: Any) -> int:
    """EXIF orientation (1..8) as far as the header tells, without decoding pixels (PNG keeps its
    EXIF chunk anywhere in the file; one that comes after the pixel data counts as 1 here)."""
    if im.format == "PNG" and "exif" not in im.info:
        return 1
    try:
        value = int(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - a damaged EXIF block only loses the orientation
        return 1
    return value if 1 <= value <= 8 else 1


def _check_png_chunks(data: bytes, what: str) -> None:
    """Walk a PNG's chunk headers up to IEND (lengths only, nothing inflated); a PNG that ends
    before its IEND chunk is truncated."""
    pos, n = 8, len(data)
    while pos + 8 <= n:
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if kind == b"IEND":
            return
        if end > n:
            break
        pos = end
    raise ImageError(f"{what} is truncated: the PNG ends after {n:,} bytes, before its last chunk; "
                     "send the whole file")


def inspect_image_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                        what: str = "the image") -> ImageInfo:
    """Format and size of an encoded image from its header alone; no pixel is decoded.

    The declared size is checked like :func:`decode_image_bytes` checks it (empty, smaller than 2x2,
    over ``max_pixels``), and a PNG is checked for truncation (chunk structure). Raises ImageError.
    Width and height are as displayed (EXIF orientation applied where the header carries it).
    """
    with _open_header(data, max_pixels, what) as im:
        if im.format == "PNG":
            _check_png_chunks(data, what)
        w, h = im.size
        if _header_orientation(im) >= 5:
            w, h = h, w
        return ImageInfo(format=im.format or "?", width=w, height=h, mode=im.mode)


class _CancellableBytes(io.BytesIO):
    """In-memory file whose reads raise LoadCancelled once ``cancel`` is set (the decoders read
    through it, one block at a time)."""

    def __init__(self, data: bytes, cancel: threading.Event | None):
        super().__init__(data)
        self._cancel = cancel

    def read(self, size: int | None = -1) -> bytes:
        if self._cancel is not None and self._cancel.is_set():
            raise LoadCancelled("decoding was cancelled")
        return super().read(size)


_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
              6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}


def decode_image_reduced(data: bytes, long_side: int, max_pixels: int = DEFAULT_MAX_PIXELS,
                         what: str = "the image", cancel: threading.Event | None = None,
                         ) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode encoded bytes to about ``long_side`` pixels on the long side, never below it.

    Returns ``(rgba, (width, height))``: (h, w, 4) uint8 RGBA with ``max(h, w)`` between
    ``long_side`` and ``2 * long_side`` (or the full size when the image is smaller than
    ``2 * long_side``), and the full upright size of the image, so a caller can scale results back.
    Images are reduced by an integer factor with box filtering of premultiplied colour, so a later
    resize to exactly ``long_side`` still sees every source pixel.

    Memory: JPEG is decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself; other formats need one
    full-size raster (at most 4 bytes per pixel, so ``4 * max_pixels`` bytes) which is reduced band
    by band. ``cancel``: when set, decoding stops at the next block of compressed input or band and
    LoadCancelled is raised. Bad input raises ImageError.
    """
    if not isinstance(long_side, int) or long_side < MIN_SIDE:
        raise ValueError(f"long_side must be an integer >= {MIN_SIDE}, got {long_side!r}")
    with _open_header(data, max_pixels, what, fp=_CancellableBytes(data, cancel)) as im:
        return _decode_reduced(im, long_side, what, cancel)


def _load_now(im: Any, what: str) -> None:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()
    except LoadCancelled:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as e:
        raise ImageError(f"{what} could not be decoded ({e}); it may be truncated or corrupt") from None


# One full-size decode at a time in this process: a cancelled decode that is still inside a library
# call finishes before the next one starts, so two full-size rasters never coexist.
_DECODE_SLOT = threading.Lock()
_POLL = 0.02  # seconds between cancel checks while waiting


def _load_cancellable(im: Any, what: str, cancel: threading.Event | None) -> None:
    """``im.load()``, returning within ~20 ms of ``cancel`` being set (LoadCancelled).

    PNG, JPEG, GIF, BMP and raw TIFF decode block by block through a reader that stops on cancel.
    WebP and compressed TIFF decode in one library call that cannot be interrupted; so the decode
    runs in a helper thread: on cancel the caller returns at once and the helper's result is dropped
    when its call ends (the next decode waits for that, cancellably, through ``_DECODE_SLOT``).
    """
    if cancel is None:
        with _DECODE_SLOT:
            _load_now(im, what)
        return
    while not _DECODE_SLOT.acquire(timeout=_POLL):
        _check(cancel)
    outcome: dict[str, BaseException] = {}
    done = threading.Event()

    def work() -> None:
        try:
            _load_now(im, what)
        except BaseException as e:  # noqa: BLE001 - handed to the caller below
            outcome["error"] = e
        finally:
            _DECODE_SLOT.release()
            done.set()

    try:
        threading.Thread(target=work, name="lvss-decode", daemon=True).start()
    except BaseException:
        _DECODE_SLOT.release()
        raise
    while not done.wait(_POLL):
        _check(cancel)
    if "error" in outcome:
        raise outcome["error"]


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise LoadCancelled("decoding was cancelled")


def _decode_reduced(im: Any, long_side: int, what: str, cancel: threading.Event | None):
    from PIL import Image

    W0, H0 = im.size
    if im.format == "JPEG" and max(W0, H0) >= 2 * long_side:
        k = max(W0, H0) / long_side
        im.draft(None, (max(1, int(W0 / k)), max(1, int(H0 / k))))  # DCT scaling inside libjpeg
    im.decodermaxblock = DECODE_BLOCK
    _load_cancellable(im, what, cancel)
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    _check(cancel)
    try:
        orientation = int(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - a damaged EXIF block only loses the orientation
        orientation = 1
    W, H = im.size
    factor = max(W, H) // long_side
    if factor <= 1:
        small = im
        rgba = None
    else:
        scale = _depth_scale(im)
        rows = max(1, BAND_BYTES // (4 * W * factor)) * factor
        bands = []
        for y in range(0, H, rows):
            _check(cancel)
            band = _pil_to_rgba(im.crop((0, y, W, min(H, y + rows))), scale)
            bands.append(np.asarray(Image.fromarray(band, "RGBA").reduce(factor)))
        rgba = np.concatenate(bands, axis=0)
        small = Image.fromarray(rgba, "RGBA")
    _check(cancel)
    if orientation in _TRANSPOSE:
        small = small.transpose(getattr(Image.Transpose, _TRANSPOSE[orientation]))
        rgba = None
    if rgba is None:
        rgba = _pil_to_rgba(small)
    if orientation >= 5:
        W0, H0 = H0, W0
    return np.ascontiguousarray(rgba), (W0, H0)


def area_downscaled(rgba: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Straight RGB (h, w, 3) and alpha (h, w), float32 in [0, 1], of ``rgba`` ((H, W, 4) float
    straight RGBA in [0, 1]) at the smaller ``size`` (w, h): its colour premultiplied by alpha (so
    transparent pixels, whose colour means nothing, add none) and averaged over the area each new
    pixel covers, which is what a renderer's anti-aliasing gives a shape's edge. (A windowed-sinc
    filter such as Lanczos overshoots at every edge, and the segmenter reads its ringing as thin
    bands of new colour: a 768-px OpenMoji on transparency gave 76 paths where the drawing needs 13.)
    Where alpha is about 0 the colour is 0. At its own size the picture comes back as it is, the
    colour of transparent pixels zeroed."""
    from PIL import Image

    f = np.asarray(rgba, np.float32)
    pm = np.concatenate([f[..., :3] * f[..., 3:], f[..., 3:]], -1)
    w, h = size
    if (h, w) != pm.shape[:2]:
        pm = np.clip(np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(pm[..., c])).resize((w, h), Image.BOX))
                               for c in range(4)], -1), 0.0, 1.0)
    a = pm[..., 3:]
    rgb = np.where(a > 1e-4, pm[..., :3] / np.maximum(a, 1e-4), 0.0)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32), a[..., 0].astype(np.float32)


def load_image(src: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load an image from a file path, bytes, a PIL image or an array.

    Returns (H, W, 4) uint8 RGBA. Arrays may be (H, W), (H, W, 3) or (H, W, 4), uint8 or float in [0, 1].
    """
    if isinstance(src, (str, os.PathLike)):
        p = FsPath(src)
        if not p.exists():
            raise ImageError(f"input file not found: {p}")
        if p.is_dir():
            raise ImageError(f"input is a directory, not an image file: {p}")
        try:
            data = p.read_bytes()
        except OSError as e:
            raise ImageError(f"cannot read {p}: {e.strerror}") from None
        return decode_image_bytes(data, max_pixels, what=f"{p.name}")
    if isinstance(src, (bytes, bytearray, memoryview)):
        return decode_image_bytes(bytes(src), max_pixels)
    if isinstance(src, np.ndarray):
        return _from_array(src, max_pixels)
    try:
        from PIL import Image

        if isinstance(src, Image.Image):
            return _from_pil(src, max_pixels, "the image")
    except ImportError:  # pragma: no cover - pillow is a core dependency
        pass
    raise ImageError(f"cannot use an object of type {type(src).__name__} as an image; "
                     "give a file path, bytes, a PIL image or an (H, W, 3|4) uint8 array")


def _from_array(a: np.ndarray, max_pixels: int) -> np.ndarray:
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ImageError(f"image array must have shape (H, W, 3) or (H, W, 4), got {a.shape}")
    _check_size(a.shape[1], a.shape[0], max_pixels, "the image array")
    if a.dtype == np.uint8:
        out = a
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError("image array contains NaN or infinite values")
        out = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    else:
        raise ImageError(f"image array must be uint8 or float in [0, 1], got dtype {a.dtype}")
    if out.shape[2] == 3:
        out = np.concatenate([out, np.full(out.shape[:2] + (1,), 255, np.uint8)], axis=2)
    # always a new array: later stages must never write into the caller's image
    return out.copy(order="C") if np.shares_memory(out, a) else np.ascontiguousarray(out)


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (other threads may create files)."""
    try:
        for line in FsPath("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    m = os.umask(0o022)
    os.umask(m)
    return m


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write a file so that readers see either the old content or the whole new one, never a part."""
    p = FsPath(path)
    parent = p.parent if str(p.parent) else FsPath(".")
    if not parent.is_dir():
        raise OSError(f"output folder does not exist: {parent}")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=parent)
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would have
        try:
            mode = p.stat().st_mode & 0o7777 if p.is_file() else 0o666 & ~_umask()
            os.chmod(tmp, mode)
        except OSError:
            pass
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
