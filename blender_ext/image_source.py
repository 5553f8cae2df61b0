"""The image to vectorize: which object holds it, its encoded bytes, and where it is drawn.

Two kinds of object hold an image:

* an image Empty (Add > Image > Reference or Background): the image is drawn in the Empty's local
  XY plane, ``empty_display_size`` across its longer side, its lower-left corner at
  ``empty_image_offset`` times its size;
* a mesh with a material whose node tree has an Image Texture node (Add > Image > Mesh Plane, or
  any UV-mapped plane): the image is where the UV map puts it, found by fitting the map from UV to
  local coordinates over the mesh's face corners.

:class:`ImageFrame` describes the image rectangle in the object's local space (origin at the
image's lower-left corner, ``u`` along its full width, ``v`` along its full height), so the
vectorized result can be placed exactly over it.
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass

import bpy
from mathutils import Matrix, Vector

ENCODED_KINDS = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF")  # PNG, JPEG, WebP (RIFF....WEBP)


class ImageSourceError(Exception):
    """No usable image; the message says what to do."""


NO_IMAGE = (
    "No active image. Select an image Empty (Add > Image > Reference) or a plane with an image "
    "texture (Add > Image > Mesh Plane) and make it active (click it last), then run "
    "Object > Vectorize Image (lvss) again."
)


@dataclass(frozen=True)
class ImageFrame:
    """The image rectangle in the object's local space: lower-left ``origin``, full-width ``u``,
    full-height ``v`` (3D vectors)."""

    origin: Vector
    u: Vector
    v: Vector

    def matrix(self) -> Matrix:
        """Local frame of the image: origin at its centre, x along u, y along v, z their normal
        (unit axes), as a 4x4 matrix in the object's local space."""
        x = self.u.normalized()
        y = self.v.normalized()
        z = x.cross(y).normalized()
        centre = self.origin + self.u / 2 + self.v / 2
        m = Matrix.Identity(4)
        for i in range(3):
            m[i][0], m[i][1], m[i][2], m[i][3] = x[i], y[i], z[i], centre[i]
        return m

    def corners_world(self, matrix_world: Matrix) -> list:
        """The four corners in world space, counter-clockwise from the lower left."""
        o = self.origin
        return [matrix_world @ p for p in (o, o + self.u, o + self.u + self.v, o + self.v)]


@dataclass
class ImageSource:
    """What the vectorize operator needs about the active image."""

    object_name: str
    image_name: str
    name: str  # for messages and the result's name
    data: bytes  # an encoded image file (PNG, JPEG or WebP)
    pixels: tuple  # (width, height)
    frame: ImageFrame


def _image_of_empty(obj) -> "bpy.types.Image":
    if obj.empty_display_type != "IMAGE":
        raise ImageSourceError(f"The active object '{obj.name}' is an Empty without an image. " + NO_IMAGE)
    if obj.data is None:
        raise ImageSourceError(
            f"The image Empty '{obj.name}' has no image yet: open one in its Object Data properties "
            "(Image > Open), then run Vectorize again.")
    return obj.data


def _image_of_mesh(obj) -> "bpy.types.Image":
    found = []
    for slot in obj.material_slots:
        mat = slot.material
        if mat is None or not mat.use_nodes or mat.node_tree is None:
            continue
        for node in mat.node_tree.nodes:
            if node.type == "TEX_IMAGE" and node.image is not None:
                # prefer the texture that feeds the shader's colour
                linked = any(link.to_socket.name in ("Base Color", "Color") for out in node.outputs
                             for link in out.links)
                found.append((not linked, node.image))
    if not found:
        raise ImageSourceError(
            f"The mesh '{obj.name}' has no material with an Image Texture node. " + NO_IMAGE)
    found.sort(key=lambda t: t[0])
    return found[0][1]


def active_image_object(context):
    """The active object if it holds an image, else raise ImageSourceError."""
    obj = context.active_object if context is not None else None
    if obj is None:
        raise ImageSourceError(NO_IMAGE)
    if obj.type == "EMPTY":
        _image_of_empty(obj)
    elif obj.type == "MESH":
        _image_of_mesh(obj)
    else:
        raise ImageSourceError(f"The active object '{obj.name}' is a {obj.type.lower()}, not an image. " + NO_IMAGE)
    return obj


def image_of(obj) -> "bpy.types.Image":
    return _image_of_empty(obj) if obj.type == "EMPTY" else _image_of_mesh(obj)


def frame_of(obj, image) -> ImageFrame:
    """Where ``image`` is drawn on ``obj``, in the object's local space."""
    width, height = image.size[:]
    if obj.type == "EMPTY":
        ax, ay = image.display_aspect[:] if hasattr(image, "display_aspect") else (1.0, 1.0)
        sx, sy = width * ax, height * ay
        if sx <= 0 or sy <= 0:
            raise ImageSourceError(f"Blender cannot read the pixels of '{image.name}'. " + _load_advice(image))
        size = obj.empty_display_size
        w, h = (size, size * sy / sx) if sx >= sy else (size * sx / sy, size)
        ox, oy = obj.empty_image_offset[:]
        return ImageFrame(Vector((ox * w, oy * h, 0.0)), Vector((w, 0.0, 0.0)), Vector((0.0, h, 0.0)))
    return _uv_frame(obj)


def _solve3(a, b):
    """Solve the 3x3 system a x = b (lists), or None when singular."""
    m = Matrix(a)
    if abs(m.determinant()) < 1e-18:
        return None
    return list(m.inverted() @ Vector(b))


def _uv_frame(obj) -> ImageFrame:
    me = obj.data
    uv_layer = me.uv_layers.active
    if uv_layer is None or not me.loops:
        raise ImageSourceError(f"The mesh '{obj.name}' has no UV map, so where its image lies is unknown; "
                               "use Add > Image > Mesh Plane, or UV-unwrap it.")
    rows = []
    for loop in me.loops:
        u, v = uv_layer.data[loop.index].uv
        rows.append((u, v, me.vertices[loop.vertex_index].co))
    # least squares fit of co = A [u v 1] (an affine map, exact for a flat, linearly mapped plane)
    ata = [[0.0] * 3 for _ in range(3)]
    atb = [[0.0] * 3 for _ in range(3)]  # one right-hand side per coordinate
    for u, v, co in rows:
        r = (u, v, 1.0)
        for i in range(3):
            for j in range(3):
                ata[i][j] += r[i] * r[j]
            for c in range(3):
                atb[c][i] += r[i] * co[c]
    cols = [_solve3(ata, atb[c]) for c in range(3)]
    if any(c is None for c in cols):
        raise ImageSourceError(f"The UV map of '{obj.name}' is degenerate (all corners at one UV point "
                               "or on a line); use Add > Image > Mesh Plane.")
    a = [[cols[c][k] for k in range(3)] for c in range(3)]  # a[coord][u|v|1]
    u_vec = Vector((a[0][0], a[1][0], a[2][0]))
    v_vec = Vector((a[0][1], a[1][1], a[2][1]))
    origin = Vector((a[0][2], a[1][2], a[2][2]))
    size = max(u_vec.length, v_vec.length)
    worst = max((Vector(co) - (origin + u * u_vec + v * v_vec)).length for u, v, co in rows)
    if worst > 1e-3 * size:
        raise ImageSourceError(f"The mesh '{obj.name}' is not a flat plane with its image mapped straight "
                               "onto it, so the result cannot be aligned; use Add > Image > Mesh Plane.")
    if abs(u_vec.normalized().dot(v_vec.normalized())) > 1e-3:
        raise ImageSourceError(f"The image on '{obj.name}' is mapped sheared (its UV axes are not at right "
                               "angles); use a rectangular image plane (Add > Image > Mesh Plane).")
    return ImageFrame(origin, u_vec, v_vec)


def _load_advice(image) -> str:
    if image.source == "FILE" and image.packed_file is None:
        path = bpy.path.abspath(image.filepath, library=image.library)
        return f"Its file {path} is missing or unreadable: fix the path in the Image Editor (Image > Replace)."
    return "Reload it in the Image Editor (Image > Reload) or open it again."


def _png(width: int, height: int, rgba: bytes) -> bytes:
    """An 8-bit RGBA PNG (rows top to bottom)."""
    raw = b"".join(b"\x00" + rgba[y * width * 4:(y + 1) * width * 4] for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def encode_pixels(image) -> bytes:
    """The image's pixels as an 8-bit RGBA PNG (for images that exist only in memory, were painted
    on, or are in formats the server does not read)."""
    import numpy as np  # Blender ships numpy

    width, height = image.size[:]
    buf = np.empty(width * height * 4, dtype=np.float32)
    image.pixels.foreach_get(buf)
    px = buf.reshape(height, width, 4)
    if image.is_float and image.colorspace_settings.name not in ("sRGB", "Non-Color", "Raw"):
        rgb = np.clip(px[..., :3], 0.0, 1.0)  # scene-linear float pixels: encode them as sRGB
        px = np.concatenate([np.where(rgb <= 0.0031308, rgb * 12.92, 1.055 * rgb ** (1 / 2.4) - 0.055),
                             px[..., 3:]], axis=-1)
    data = (np.clip(px, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return _png(width, height, data[::-1].tobytes())  # Blender's rows run bottom to top, PNG's top down


def encoded_bytes(image) -> bytes:
    """An encoded file for ``image``: its packed or on-disk bytes when they are PNG, JPEG or
    WebP, else its pixels encoded as PNG."""
    if image.source not in ("FILE", "GENERATED"):
        raise ImageSourceError(f"'{image.name}' is a {image.source.lower()}; lvss vectorizes still images. "
                               "Save the frame you want as a PNG and open that instead.")
    data = None
    if image.packed_file is not None:
        data = bytes(image.packed_file.data)
    elif image.source == "FILE":
        path = bpy.path.abspath(image.filepath, library=image.library)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            data = None
    if data and any(data.startswith(sig) for sig in ENCODED_KINDS) and (
            not data.startswith(b"RIFF") or data[8:12] == b"WEBP") and not image.is_dirty:
        return data
    if image.size[0] <= 0 or image.size[1] <= 0 or not image.has_data and not _loads(image):
        raise ImageSourceError(f"Blender cannot read the pixels of '{image.name}'. " + _load_advice(image))
    return encode_pixels(image)


def _loads(image) -> bool:
    try:
        image.pixels[0]  # touching the pixels makes Blender load the buffer
    except (IndexError, RuntimeError):
        return False
    return image.has_data


def read_source(obj) -> ImageSource:
    """Everything the request needs about the image held by ``obj``."""
    image = image_of(obj)
    data = encoded_bytes(image)
    width, height = image.size[:]
    if width <= 0 or height <= 0:
        raise ImageSourceError(f"Blender cannot read the pixels of '{image.name}'. " + _load_advice(image))
    base = os.path.splitext(os.path.basename(bpy.path.abspath(image.filepath)))[0] if image.filepath else ""
    return ImageSource(object_name=obj.name, image_name=image.name, name=base or image.name, data=data,
                       pixels=(width, height), frame=frame_of(obj, image))
