"""Helpers shared by tests and benchmarks: random scenes and reference rendering with resvg."""
from __future__ import annotations

import io
import math

import numpy as np
import torch

from .scene import Layer, Path, Scene


def random_scene(n: int, size: int | tuple[int, int], segments: int = 4, seed: int = 0,
                 radius: tuple[float, float] = (0.05, 0.15), min_alpha: float = 0.5) -> Scene:
    """n random closed paths (``segments`` cubics each, radius a fraction of the canvas), one layer."""
    w, h = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    paths = []
    k = 3 * segments
    for _ in range(n):
        c = torch.rand(2, generator=g) * torch.tensor([w, h], dtype=torch.float32)
        r = (radius[0] + (radius[1] - radius[0]) * torch.rand(1, generator=g)) * min(w, h)
        ang = (torch.arange(k, dtype=torch.float32) + 0.8 * torch.rand(k, generator=g)) * (2 * math.pi / k)
        rad = r * (0.6 + 0.4 * torch.rand(k, generator=g))
        pts = torch.stack([c[0] + rad * torch.cos(ang), c[1] + rad * torch.sin(ang)], 1)
        col = torch.rand(4, generator=g)
        col[3] = min_alpha + (1 - min_alpha) * col[3]
        paths.append(Path(pts, col))
    return Scene(w, h, [Layer("random", paths)])


def resvg_render(svg: str, width: int, height: int, background: str | None = "white") -> np.ndarray:
    """Render SVG text with resvg at width × height; returns (H, W, 3) float32 in [0, 1] (over the
    background colour) or (H, W, 4) straight RGBA when background is None."""
    import resvg_py
    from PIL import Image

    png = resvg_py.svg_to_bytes(svg_string=svg, width=width, height=height)
    im = Image.open(io.BytesIO(bytes(png))).convert("RGBA")
    a = np.asarray(im, dtype=np.float32) / 255.0
    if background is None:
        return a
    from PIL import ImageColor

    bg = np.asarray(ImageColor.getrgb(background), dtype=np.float32) / 255.0
    return a[..., :3] * a[..., 3:] + bg * (1 - a[..., 3:])


def png_declaring(width: int, height: int) -> bytes:
    """A well-formed PNG (valid CRCs) whose header declares width x height RGB pixels, with almost no
    pixel data: a decompression bomb, a 0x0 image or a truncated one, for bad-input tests."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
            + chunk(b"IEND", b""))
