"""lvss.io: image loading (every accepted input type, every kind of bad input) and atomic writes."""
from __future__ import annotations

import io
import os
import stat
import threading
import time

import numpy as np
import pytest
from PIL import Image

from lvss.io import (DEFAULT_MAX_PIXELS, ImageError, LoadCancelled, atomic_write, decode_image_bytes,
                     decode_image_reduced, inspect_image_bytes, load_image)
from lvss.testing import png_declaring


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _rng_image(h=12, w=17, c=3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def _encode(arr_or_im, fmt="PNG", **kw) -> bytes:
    im = arr_or_im if isinstance(arr_or_im, Image.Image) else Image.fromarray(arr_or_im)
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------
# accepted inputs
# ------------------------------------------------------------------------------------------------
def test_rgb_array_gets_opaque_alpha():
    a = _rng_image()
    out = load_image(a)
    assert out.shape == (12, 17, 4) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert np.array_equal(out[..., :3], a)
    assert (out[..., 3] == 255).all()


def test_rgba_array_is_kept_and_copied():
    a = _rng_image(c=4)
    out = load_image(a)
    assert np.array_equal(out, a)
    assert not np.shares_memory(out, a)  # later stages may write into the result
    out[0, 0, 0] ^= 0xFF
    assert out[0, 0, 0] != a[0, 0, 0]


def test_non_contiguous_array():
    a = _rng_image(c=4)[:, ::-1]
    out = load_image(a)
    assert out.flags.c_contiguous and np.array_equal(out, a)


def test_gray_array():
    g = _rng_image(c=1)[..., 0]
    out = load_image(g)
    assert out.shape == (12, 17, 4)
    for c in range(3):
        assert np.array_equal(out[..., c], g)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_array_in_unit_range(dtype):
    a = np.linspace(0, 1, 4 * 5 * 3, dtype=dtype).reshape(4, 5, 3)
    out = load_image(a)
    assert np.array_equal(out[..., :3], np.round(a * 255).astype(np.uint8))
    # out of range values are clipped, not wrapped
    b = np.full((3, 3, 3), 2.0, dtype)
    b[0, 0] = -1.0
    out = load_image(b)
    assert out[0, 0, 0] == 0 and out[1, 1, 0] == 255


@pytest.mark.parametrize("fmt,mode", [("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "L"), ("PNG", "LA"),
                                      ("BMP", "RGB"), ("TIFF", "RGBA"), ("WEBP", "RGBA")])
def test_lossless_files_round_trip(tmp_path, fmt, mode):
    a = _rng_image(c=4)
    im = Image.fromarray(a, "RGBA").convert(mode)
    data = _encode(im, fmt, **({"lossless": True, "exact": True} if fmt == "WEBP" else {}))
    want = np.asarray(im.convert("RGBA"))
    p = tmp_path / f"img.{fmt.lower()}"
    p.write_bytes(data)
    for src in (p, str(p), data, bytearray(data), memoryview(data)):
        out = load_image(src)
        assert out.shape == (12, 17, 4) and out.dtype == np.uint8
        assert np.array_equal(out, want), (fmt, mode, type(src))
    assert np.array_equal(decode_image_bytes(data), want)


def test_jpeg_is_close():
    a = np.zeros((32, 32, 3), np.uint8)
    a[:, 16:] = (200, 60, 30)
    out = load_image(_encode(a, "JPEG", quality=95))
    assert np.abs(out[..., :3].astype(int) - a).mean() < 3
    assert (out[..., 3] == 255).all()


def test_palette_transparency_becomes_alpha():
    im = Image.new("P", (4, 4), 0)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.putpixel((1, 1), 1)
    data = _encode(im, "PNG", transparency=0)
    out = load_image(data)
    assert out[0, 0, 3] == 0
    assert tuple(out[1, 1]) == (0, 255, 0, 255)


def test_sixteen_bit_png_is_rescaled_not_clipped():
    g16 = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    data = _encode(Image.fromarray(g16))
    out = load_image(data)
    want = np.round(g16.astype(np.float64) * 255 / 65535).astype(np.int64)
    assert np.abs(out[..., 0].astype(np.int64) - want).max() <= 1
    assert 100 < out[..., 0].mean() < 155  # a ramp over the full range stays mid-grey on average


def test_float_pil_image():
    f = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    out = load_image(Image.fromarray(f, "F"))
    assert out[0, 0, 0] == 0 and out[3, 3, 0] == 255


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I", "I;16", "F"])
def test_pil_images_of_every_mode(mode):
    im = Image.new(mode, (5, 3))
    out = load_image(im)
    assert out.shape == (3, 5, 4) and out.dtype == np.uint8


def test_pil_image_values():
    a = _rng_image(c=4)
    assert np.array_equal(load_image(Image.fromarray(a, "RGBA")), a)
    assert np.array_equal(load_image(Image.fromarray(a[..., :3], "RGB"))[..., :3], a[..., :3])


def test_animated_gif_gives_first_frame():
    frames = [Image.new("P", (8, 8), i) for i in range(3)]
    for i, f in enumerate(frames):
        f.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    out = load_image(buf.getvalue())
    assert out.shape == (8, 8, 4)
    assert (out[..., :3] == 0).all()


def test_exif_orientation_is_applied():
    a = np.zeros((20, 40, 3), np.uint8)  # wide, left half red
    a[:, :20] = (255, 0, 0)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    out = load_image(_encode(im, "JPEG", quality=95, exif=exif.tobytes()))
    assert out.shape == (40, 20, 4)  # upright: tall
    assert out[5, 10, 0] > 200 and out[35, 10, 0] < 60  # the red half is now on top


def test_two_by_two_is_the_smallest_image():
    assert load_image(np.zeros((2, 2, 3), np.uint8)).shape == (2, 2, 4)


def test_max_pixels_is_enforced_for_every_source():
    a = _rng_image(10, 10)
    data = _encode(a)
    for src in (a, data, Image.fromarray(a)):
        with pytest.raises(ImageError, match="limit"):
            load_image(src, max_pixels=99)
        assert load_image(src, max_pixels=100).shape == (10, 10, 4)


# ------------------------------------------------------------------------------------------------
# bad inputs
# ------------------------------------------------------------------------------------------------
def test_decompression_bomb_refused_before_decoding():
    data = png_declaring(100_000, 100_000)
    assert len(data) < 200
    with pytest.raises(ImageError, match=r"100000x100000.*limit"):
        decode_image_bytes(data)
    with pytest.raises(ImageError, match="limit"):
        load_image(data)
    # just over the default limit is refused too, just under gets as far as decoding (and is truncated)
    side = int(DEFAULT_MAX_PIXELS ** 0.5) + 1
    with pytest.raises(ImageError, match="limit"):
        decode_image_bytes(png_declaring(side, side))


def test_bomb_file_on_disk(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(png_declaring(100_000, 100_000))
    with pytest.raises(ImageError, match="bomb.png declares 100000x100000"):
        load_image(p)


@pytest.mark.parametrize("w,h", [(0, 0), (0, 7), (7, 0)])
def test_empty_png(w, h):
    with pytest.raises(ImageError, match="empty"):
        decode_image_bytes(png_declaring(w, h))


@pytest.mark.parametrize("w,h", [(1, 1), (1, 9), (9, 1)])
def test_too_small_png(w, h):
    data = _encode(np.zeros((h, w, 3), np.uint8))
    with pytest.raises(ImageError, match="at least 2x2"):
        load_image(data)


def test_header_only_png_is_truncated():
    with pytest.raises(ImageError, match="truncated or corrupt"):
        decode_image_bytes(png_declaring(3, 3))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("frac", [0.3, 0.6, 0.9])
def test_truncated_files(fmt, frac):
    data = _encode(_rng_image(64, 64), fmt)
    with pytest.raises(ImageError, match="truncated|corrupt|not an image"):
        decode_image_bytes(data[: int(len(data) * frac)])


def test_corrupt_png_crc():
    data = bytearray(_encode(_rng_image(16, 16)))
    data[40] ^= 0xFF  # inside the IDAT
    with pytest.raises(ImageError):
        decode_image_bytes(bytes(data))


@pytest.mark.parametrize("data", [b"hello, world", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"\x89PNG",
                                  b"\x00" * 100])
def test_not_an_image(data):
    with pytest.raises(ImageError, match="not an image|could not be read|truncated"):
        decode_image_bytes(data)


def test_empty_bytes():
    with pytest.raises(ImageError, match="empty"):
        decode_image_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


def test_text_file_is_not_an_image(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("not really a png\n")
    with pytest.raises(ImageError, match="notes.png is not an image"):
        load_image(p)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    p = tmp_path / "secret.png"
    p.write_bytes(_encode(_rng_image()))
    p.chmod(0)
    with pytest.raises(ImageError, match="cannot read"):
        load_image(p)


@pytest.mark.parametrize("arr,match", [
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    (np.zeros((1, 1, 3), np.uint8), "at least 2x2"),
    (np.zeros((5, 5, 2), np.uint8), r"shape \(H, W, 3\)"),
    (np.zeros((5, 5, 5), np.uint8), r"shape \(H, W, 3\)"),
    (np.zeros((5,), np.uint8), r"shape \(H, W, 3\)"),
    (np.zeros((2, 5, 5, 3), np.uint8), r"shape \(H, W, 3\)"),
    (np.zeros((5, 5, 3), np.int64), "dtype int64"),
    (np.zeros((5, 5, 3), np.uint16), "dtype uint16"),
    (np.zeros((5, 5, 3), bool), "dtype bool"),
    (np.full((5, 5, 3), np.nan), "NaN"),
    (np.full((5, 5, 3), np.inf, np.float32), "NaN or infinite"),
])
def test_bad_arrays(arr, match):
    with pytest.raises(ImageError, match=match):
        load_image(arr)


@pytest.mark.parametrize("obj", [None, 3, 2.5, [[1, 2], [3, 4]], {"a": 1}, object()])
def test_unsupported_types(obj):
    with pytest.raises(ImageError, match="cannot use an object of type"):
        load_image(obj)


def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)


def test_too_small_pil_image():
    with pytest.raises(ImageError, match="1x1"):
        load_image(Image.new("RGB", (1, 1)))


# ------------------------------------------------------------------------------------------------
# header inspection and reduced decoding (the server's queue and worker)
# ------------------------------------------------------------------------------------------------
def _zero_png(width: int, height: int) -> bytes:
    """A valid all-black RGB PNG of width x height; highly compressed (a bomb when large)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    idat = zlib.compress(bytes((3 * width + 1) * height), 1)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"])
def test_inspect_reads_format_and_size(fmt):
    info = inspect_image_bytes(_encode(_rng_image(12, 17), fmt))
    assert (info.format, info.width, info.height, info.pixels) == (fmt, 17, 12, 204)


def test_inspect_decodes_nothing():
    # the header declares 7000x7000 but there are no pixels: only decoding would find out
    data = png_declaring(7000, 7000)
    info = inspect_image_bytes(data)
    assert (info.width, info.height) == (7000, 7000)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        decode_image_bytes(data)


def test_inspect_applies_the_exif_orientation():
    im = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6
    info = inspect_image_bytes(_encode(im, "JPEG", exif=exif.tobytes()))
    assert (info.width, info.height) == (20, 40)


@pytest.mark.parametrize("data,match", [
    (b"", "empty"), (b"hello", "not an image"), (png_declaring(0, 0), "empty"),
    (png_declaring(1, 5), "at least 2x2"), (png_declaring(100_000, 100_000), "100000x100000.*limit"),
])
def test_inspect_refuses_what_decoding_refuses(data, match):
    with pytest.raises(ImageError, match=match):
        inspect_image_bytes(data)


def test_inspect_finds_a_truncated_png():
    data = _encode(_rng_image(64, 64))
    assert inspect_image_bytes(data).width == 64
    for cut in (len(data) // 2, len(data) - 13):
        with pytest.raises(ImageError, match=r"truncated.*send the whole file"):
            inspect_image_bytes(data[:cut], what="upload.png")
    assert inspect_image_bytes(data, max_pixels=64 * 64).pixels == 64 * 64
    with pytest.raises(ImageError, match="limit"):
        inspect_image_bytes(data, max_pixels=64 * 64 - 1)


def test_reduced_decode_keeps_small_images_as_they_are():
    for fmt, mode in (("PNG", "RGB"), ("PNG", "RGBA"), ("JPEG", "RGB")):
        data = _encode(_rng_image(30, 50, c=len(mode)), fmt)
        rgba, size = decode_image_reduced(data, 32)  # 50 < 2 x 32: no reduction
        assert size == (50, 30)
        assert np.array_equal(rgba, decode_image_bytes(data))


def test_reduced_decode_is_a_box_average():
    a = _rng_image(120, 200, seed=4)
    rgba, size = decode_image_reduced(_encode(a), 40)  # factor 5
    assert size == (200, 120) and rgba.shape == (24, 40, 4) and rgba.dtype == np.uint8
    box = a.astype(np.float64).reshape(24, 5, 40, 5, 3).mean(axis=(1, 3))
    assert np.abs(rgba[..., :3] - box).max() <= 1.0
    assert (rgba[..., 3] == 255).all()


def test_reduced_decode_never_goes_below_the_long_side():
    for w, h, side in ((301, 97, 64), (97, 301, 64), (129, 129, 64), (1000, 3, 100)):
        rgba, size = decode_image_reduced(_encode(_rng_image(h, w)), side)
        assert size == (w, h)
        assert side <= max(rgba.shape[:2]) < 2 * side
        assert rgba.shape[0] == -(-h // (max(w, h) // side))  # ceil: the last partial box is kept


def test_reduced_decode_does_not_bleed_transparent_colour():
    a = np.zeros((64, 64, 4), np.uint8)
    a[..., :3] = (0, 255, 0)  # invisible green
    a[::2, :, :] = (255, 0, 0, 255)  # every other row opaque red
    rgba, _ = decode_image_reduced(_encode(a), 16)
    assert np.abs(rgba[..., 3].astype(int) - 128).max() <= 1
    assert (rgba[..., 0] >= 250).all() and (rgba[..., 1] <= 5).all()


def test_reduced_decode_of_sixteen_bit_png_is_scaled_alike_in_every_band(monkeypatch):
    import lvss.io as lio

    monkeypatch.setattr(lio, "BAND_BYTES", 4 * 256 * 8 * 4)  # bands of 8 rows: many bands
    ramp = (np.arange(256, dtype=np.uint32)[None, :] * 257).repeat(64, 0).astype(np.uint16)
    rgba, _ = decode_image_reduced(_encode(Image.fromarray(ramp)), 64)
    want = np.round(ramp.reshape(16, 4, 64, 4).mean(axis=(1, 3)) * 255 / 65535)
    assert np.abs(rgba[..., 0].astype(float) - want).max() <= 1.5
    assert np.array_equal(rgba[0], rgba[-1])  # first and last band alike


def test_reduced_decode_of_jpeg_is_close_to_the_full_decode():
    yy, xx = np.mgrid[0:480, 0:640]
    a = np.stack([xx * 255 // 640, yy * 255 // 480, (xx + yy) * 255 // 1120], -1).astype(np.uint8)
    data = _encode(a, "JPEG", quality=95)
    rgba, size = decode_image_reduced(data, 80)  # libjpeg decodes at 1/8 scale: 80x60
    assert size == (640, 480) and rgba.shape == (60, 80, 4)
    full = decode_image_bytes(data)[..., :3].astype(np.float64).reshape(60, 8, 80, 8, 3).mean(axis=(1, 3))
    assert np.abs(rgba[..., :3] - full).mean() < 2.0


def test_reduced_decode_applies_the_exif_orientation():
    a = np.zeros((200, 400, 3), np.uint8)  # wide, left half red
    a[:, :200] = (255, 0, 0)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6
    rgba, size = decode_image_reduced(_encode(im, "JPEG", quality=95, exif=exif.tobytes()), 50)
    assert size == (200, 400)  # upright: tall
    h, w = rgba.shape[:2]
    assert h > w and 50 <= h < 100
    assert rgba[h // 8, w // 2, 0] > 200 and rgba[-h // 8, w // 2, 0] < 60  # the red half on top


def test_reduced_decode_stops_when_cancelled():
    data = _zero_png(4000, 4000)  # 16 Mpx of zeros in a few KB
    done = threading.Event()
    done.set()
    with pytest.raises(LoadCancelled):
        decode_image_reduced(data, 64, cancel=done)
    cancel = threading.Event()
    timer = threading.Timer(0.05, cancel.set)
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(LoadCancelled):
            for _ in range(20):  # each full decode takes far longer than 0.05 s on any machine
                decode_image_reduced(data, 64, cancel=cancel)
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 5.0
    rgba, size = decode_image_reduced(data, 64, cancel=threading.Event())
    assert size == (4000, 4000) and rgba.shape == (65, 65, 4) and not rgba[..., :3].any()  # factor 62


def test_cancel_does_not_wait_for_a_library_call_that_cannot_stop(monkeypatch):
    import lvss.io as lio

    real = lio._load_now
    busy = threading.Event()

    def stubborn(im, what):  # like libwebp: one call that ignores the cancel event
        busy.set()
        time.sleep(1.5)
        real(im, what)

    monkeypatch.setattr(lio, "_load_now", stubborn)
    data = _encode(_rng_image(300, 300), "WEBP")
    cancel = threading.Event()
    threading.Thread(target=lambda: busy.wait(5) and cancel.set()).start()
    t0 = time.monotonic()
    with pytest.raises(LoadCancelled):
        decode_image_reduced(data, 64, cancel=cancel)
    assert time.monotonic() - t0 < 1.0  # returned without waiting for the call to end
    # the next decode waits until the abandoned one has finished (one full-size decode at a time)
    monkeypatch.setattr(lio, "_load_now", real)
    t0 = time.monotonic()
    rgba, size = decode_image_reduced(data, 64, cancel=threading.Event())
    assert size == (300, 300) and rgba.shape == (75, 75, 4)
    assert time.monotonic() - t0 > 0.3


def test_reduced_decode_bad_input():
    with pytest.raises(ValueError, match="long_side"):
        decode_image_reduced(_encode(_rng_image()), 1)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        decode_image_reduced(png_declaring(3000, 3000), 64)
    data = _encode(_rng_image(300, 300), "JPEG")
    with pytest.raises(ImageError, match="truncated|corrupt"):
        decode_image_reduced(data[: len(data) // 2], 64)
    with pytest.raises(ImageError, match="limit"):
        decode_image_reduced(_encode(_rng_image(30, 30)), 8, max_pixels=100)


# ------------------------------------------------------------------------------------------------
# atomic_write
# ------------------------------------------------------------------------------------------------
def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_text_and_bytes(tmp_path):
    p = tmp_path / "a.svg"
    atomic_write(p, "héllo")
    assert p.read_bytes() == "héllo".encode("utf-8")
    atomic_write(str(p), b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    assert _leftovers(tmp_path) == []


def test_atomic_write_gives_a_normally_readable_file(tmp_path):
    p = tmp_path / "out.svg"
    atomic_write(p, "x")
    mode = stat.S_IMODE(p.stat().st_mode)
    um = os.umask(0)
    os.umask(um)
    assert mode == 0o666 & ~um  # not mkstemp's private 0600
    p.chmod(0o640)
    atomic_write(p, "y")
    assert stat.S_IMODE(p.stat().st_mode) == 0o640  # an existing file keeps its mode


def test_atomic_write_missing_folder_creates_nothing(tmp_path):
    with pytest.raises(OSError, match="does not exist"):
        atomic_write(tmp_path / "no" / "a.svg", "x")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "a.svg"
    p.write_text("old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(p, "new" * 1000)
    monkeypatch.undo()
    assert p.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_atomic_write_failure_during_write(tmp_path, monkeypatch):
    p = tmp_path / "a.svg"
    p.write_text("old")

    def boom(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="I/O error"):
        atomic_write(p, "new")
    monkeypatch.undo()
    assert p.read_text() == "old"
    assert _leftovers(tmp_path) == []
    # a wrong data type fails the same clean way
    with pytest.raises(TypeError):
        atomic_write(p, 12345)  # type: ignore[arg-type]
    assert p.read_text() == "old" and _leftovers(tmp_path) == []


def test_atomic_write_interrupted(tmp_path, monkeypatch):
    p = tmp_path / "a.svg"
    p.write_text("old")

    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(p, "new")
    monkeypatch.undo()
    assert p.read_text() == "old" and _leftovers(tmp_path) == []


def test_atomic_write_onto_a_directory_fails_cleanly(tmp_path):
    d = tmp_path / "dir.svg"
    d.mkdir()
    (d / "keep").write_text("k")
    with pytest.raises(OSError):
        atomic_write(d, "x")
    assert (d / "keep").read_text() == "k"
    assert _leftovers(tmp_path) == []


def test_readers_never_see_a_partial_file(tmp_path):
    p = tmp_path / "big.svg"
    a, b = b"a" * 400_000, b"b" * 300_000
    atomic_write(p, a)
    seen: set[bytes] = set()
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            data = p.read_bytes()
            seen.add(data[:1] + str(len(data)).encode())
            if data not in (a, b):
                seen.add(b"PARTIAL")

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(30):
            atomic_write(p, b if i % 2 == 0 else a)
    finally:
        stop.set()
        t.join()
    assert b"PARTIAL" not in seen
    assert _leftovers(tmp_path) == []
