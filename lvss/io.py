"""Image input and atomic file output.

Every image that enters lvss passes through :func:`load_image`, which returns (H, W, 4) uint8 RGBA
and rejects bad input with an :class:`ImageError` whose message says what to fix.
"""
from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path as FsPath
from typing import Any

import numpy as np

DEFAULT_MAX_PIXELS = 50_000_000  # 50 megapixels; larger images are refused before decoding
MIN_SIDE = 2


class ImageError(ValueError):
    """The input is not a usable image; the message says why and what to do."""


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


def _pil_to_rgba(im: Any) -> np.ndarray:
    """A loaded PIL image → (H, W, 4) uint8 RGBA.

    Pillow's ``convert("RGBA")`` clips the single-channel high-depth modes at 255 (a 16-bit PNG comes
    out almost white), so those are rescaled to 8 bits here first: 16-bit integers by 255/65535,
    32-bit integers likewise when they exceed 255, floats by 255 when they lie within [0, 1].
    """
    from PIL import Image

    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(im).astype(np.float64)
        if mode.startswith("I;16") or (mode == "I" and a.size and a.max() > 255):
            a = a * (255.0 / 65535.0)
        elif mode == "F" and a.size and np.nanmax(a) <= 1.0:
            a = a * 255.0
        a = np.clip(np.nan_to_num(a), 0.0, 255.0)
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
