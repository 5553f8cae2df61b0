"""Editability benchmark: an independent referee of how editable an SVG is, for lvss and vtracer.

This checker reads the SVG *text* and judges it with its own parser, flattener and segment tests; it
uses lvss only to produce SVGs (``lvss.pipeline.run`` + ``lvss.svg.write_svg``) and never imports
lvss's own geometry checks. It also judges any folder of SVGs made elsewhere (``--svg-dir``).

Per image, for lvss and for vtracer side by side:

1. **paths**: ``<path>`` elements, and **subpaths** (contours: one per moveto).
2. **self-crossing paths / crossings**: each path's ``d`` is parsed (M L H V C S Q T A Z, absolute
   and relative, implicit repeats, and the ``transform`` of the path and its ``<g>`` ancestors), every
   curve flattened (cubics and quadratics into max(16, control-polygon length / 1 px) lines, at most
   512; arcs are turned into cubics first). Zero-length pieces are dropped, every subpath is closed
   (the closing line is added when the subpath does not end on its start). Then, within each path,
   every pair of line pieces that are *not* neighbours (neighbours: consecutive pieces of one
   subpath, including the last and first piece across the closure) is tested with orientation
   signs: a **crossing** is a proper crossing (each piece's ends strictly on opposite sides of the
   other piece's line); a **touch** is any other contact (an end lying on the other piece, or
   collinear overlapping pieces, including a piece doubling back along its neighbour: a spike). Crossings are counted within a subpath ("self") and between two
   subpaths of the same path ("inter": a hole crossing its outer loop, two loops overlapping). A path
   is "self-crossing" if it has at least one crossing of either kind. **kinks**: the self crossings
   whose loop (the shorter stretch of outline between the two crossing pieces) is under 2 px long,
   tiny knots at cusps that no one sees at 1x but that get in the way of editing nodes. Candidate pairs come from a
   sort-and-sweep on the pieces' x extents, then a y-extent test, all in numpy.
3. **hairs**: paths whose filled area (nonzero rule: the flattened path resolved by skia-pathops'
   ``simplify``, then the shoelace area of its simple contours) is below 0.02 % of the canvas, or
   whose mean width 2 * area / perimeter (perimeter of the resolved outline) is under 0.5 px.
4. **nodes per path**: on-curve points, i.e. segment endpoints (a closing line of non-zero length
   adds one segment; a subpath ending on its start does not add a node).
5. **PSNR 1x**: resvg render over white at the input size against the input over white (MSE over
   RGB in [0, 1]). **PSNR 4x** (OpenMoji only): the SVG and the true OpenMoji SVG (its 72x72
   viewBox scaled to the canvas, as the ``*_256.png`` files were made: resvg at 256 px on white)
   both rendered at 4x (1024 px) over white and compared.
6. **pipeline PSNR**: lvss's ``run(...).metrics["psnr"]`` (at its working size) and its difference
   from the resvg 1x PSNR (pipeline - resvg).
7. **seams**, per scale s in 1, 2, 4: the SVG is rendered by resvg on a transparent canvas at s x
   the input size with every fill made opaque (fill-opacity / opacity forced to 1, so translucent
   paint is not mistaken for a gap; colours do not matter for alpha). The "should be covered" mask is
   the pixels that (a) map to input pixels whose alpha is 1 (255), with the input's opaque area
   eroded by one input pixel, and (b) lie at least one input pixel (s render pixels) inside the
   union of the fills (the same render's alpha >= 0.5, eroded by s pixels). **seam px** = pixels of
   that mask whose rendered alpha is < 0.98: the anti-aliasing cracks where abutting paths leave the
   background showing through. **uncovered px** = the plain count of pixels with alpha < 0.98 in the
   input's opaque area (eroded as above), at least one input pixel away from the canvas border, in
   the SVG rendered as it is (its own opacities): seams plus real gaps plus translucent paint.
   **nb-seam px**: the seam count again with the backdrop left out (every path whose fill covers
   >= 98 % of the canvas): a full-canvas backdrop makes alpha 1 everywhere, hiding every crack, so
   this shows where the backdrop's colour would shine through between abutting shapes.

vtracer runs in colour mode (hierarchical stacked, spline), its ``filter_speckle`` and
``layer_difference`` walked over a coarsening schedule, keeping the setting whose path count is
closest to lvss's (ties: the finer); the settings used are printed per image.

    PYTHONPATH=. python bench/editability.py [--images 1F344 astronaut ...] [--paths N]
        [--quality fast|balanced|best] [--mode layered|compact] [--fill flat|linear|radial|auto]
        [--out DIR] [--json FILE] [--no-vtracer] [--threads 1]
    PYTHONPATH=. python bench/editability.py --svg-dir DIR [--png-dir DIR]   # judge existing SVGs

``--svg-dir``: each ``NAME.svg`` is judged against ``NAME.png`` or ``NAME_256.png`` in ``--png-dir``
(default: the same folder), else against the OpenMoji / photograph called NAME (a trailing ``_lvss``
or ``_<anything>`` after a known name is allowed).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from quality import count_paths, over_white  # noqa: E402  (bench/quality.py)

OPENMOJI = Path(os.environ.get("LVSS_OPENMOJI", str(ROOT.parent / "shared" / "data" / "openmoji")))
if not OPENMOJI.is_dir():
    OPENMOJI = Path("/work/shared/data/openmoji")
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
SIZE = 256
HAIR_AREA_SHARE = 0.0002   # 0.02 % of the canvas
HAIR_WIDTH = 0.5           # px
SEAM_ALPHA = 0.98
KINK_PX = 2.0              # a self crossing closing a loop shorter than this is a "kink"
SCALES = (1, 2, 4)
VT_SCHEDULE = [(1, 8), (2, 12), (4, 16), (5, 20), (6, 24), (8, 28), (10, 32), (12, 36), (14, 40),
               (16, 44), (20, 48), (24, 56), (28, 64), (32, 72), (40, 80), (48, 96), (64, 112),
               (96, 128), (128, 160), (192, 200), (256, 255)]

# ================================================================================================
# path data
# ================================================================================================
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TOK = re.compile(rf"([MmLlHhVvCcSsQqTtAaZz])|({_NUM})")
_ARGS = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7, "Z": 0}


def _tokens(d: str) -> list:
    out, pos = [], 0
    for m in _TOK.finditer(d):
        gap = d[pos:m.start()]
        if gap.strip(" \t\r\n,"):
            raise ValueError(f"bad path data near {d[pos:pos + 20]!r}")
        pos = m.end()
        out.append(m.group(1) if m.group(1) else float(m.group(2)))
    if d[pos:].strip(" \t\r\n,"):
        raise ValueError(f"bad path data near {d[pos:pos + 20]!r}")
    return out


def _arc_to_cubics(p0, rx, ry, phi_deg, large, sweep, p1) -> list:
    """Endpoint-parameterised SVG arc -> list of cubic control point tuples (c1, c2, end)."""
    x0, y0 = p0
    x1, y1 = p1
    if (x0, y0) == (x1, y1):
        return []
    rx, ry = abs(rx), abs(ry)
    if rx == 0 or ry == 0:
        return [((x0 + (x1 - x0) / 3, y0 + (y1 - y0) / 3), (x0 + 2 * (x1 - x0) / 3, y0 + 2 * (y1 - y0) / 3), (x1, y1))]
    phi = math.radians(phi_deg)
    c, s = math.cos(phi), math.sin(phi)
    dx, dy = (x0 - x1) / 2, (y0 - y1) / 2
    xp, yp = c * dx + s * dy, -s * dx + c * dy
    lam = (xp / rx) ** 2 + (yp / ry) ** 2
    if lam > 1:
        rx, ry = rx * math.sqrt(lam), ry * math.sqrt(lam)
    num = rx * rx * ry * ry - rx * rx * yp * yp - ry * ry * xp * xp
    den = rx * rx * yp * yp + ry * ry * xp * xp
    coef = math.sqrt(max(0.0, num / den)) if den else 0.0
    if large == sweep:
        coef = -coef
    cxp, cyp = coef * rx * yp / ry, -coef * ry * xp / rx
    cx, cy = c * cxp - s * cyp + (x0 + x1) / 2, s * cxp + c * cyp + (y0 + y1) / 2

    def ang(ux, uy, vx, vy):
        return math.atan2(ux * vy - uy * vx, ux * vx + uy * vy)

    t1 = ang(1, 0, (xp - cxp) / rx, (yp - cyp) / ry)
    dt = ang((xp - cxp) / rx, (yp - cyp) / ry, (-xp - cxp) / rx, (-yp - cyp) / ry)
    if not sweep and dt > 0:
        dt -= 2 * math.pi
    elif sweep and dt < 0:
        dt += 2 * math.pi
    n = max(1, math.ceil(abs(dt) / (math.pi / 2) - 1e-9))
    step = dt / n
    k = 4 / 3 * math.tan(step / 4)
    out = []
    for i in range(n):
        a0, a1 = t1 + i * step, t1 + (i + 1) * step

        def pt(a):
            ex, ey = rx * math.cos(a), ry * math.sin(a)
            return (c * ex - s * ey + cx, s * ex + c * ey + cy)

        def dv(a):
            ex, ey = -rx * math.sin(a), ry * math.cos(a)
            return (c * ex - s * ey, s * ex + c * ey)

        q0, q3 = pt(a0), pt(a1)
        d0, d3 = dv(a0), dv(a1)
        out.append(((q0[0] + k * d0[0], q0[1] + k * d0[1]), (q3[0] - k * d3[0], q3[1] - k * d3[1]),
                    (x1, y1) if i == n - 1 else q3))
    return out


def parse_d(d: str) -> list[dict]:
    """Path data -> subpaths, each ``{"start": (x, y), "segs": [(kind, ctrl (k, 2) array)], "closed"}``
    where kind is "L" (ctrl = [p0, p1]) or "C" (ctrl = [p0, c1, c2, p3]); everything absolute, in
    user units (no transform applied). Q/T are raised to cubics, H/V to lines, A to cubics."""
    toks = _tokens(d)
    subs: list[dict] = []
    cur = None
    x = y = 0.0
    sx = sy = 0.0
    last_c2 = None   # reflection point for S
    last_q = None    # reflection point for T
    cmd = None
    i = 0
    n = len(toks)

    def start_sub(px, py):
        nonlocal cur
        cur = {"start": (px, py), "segs": [], "closed": False}
        subs.append(cur)

    while i < n:
        t = toks[i]
        if isinstance(t, str):
            cmd = t
            i += 1
            if cmd in "Zz":
                if cur is not None:
                    cur["closed"] = True
                    x, y = sx, sy
                    cur = None
                last_c2 = last_q = None
                continue
        elif cmd is None:
            raise ValueError("path data must start with a command")
        up = cmd.upper()
        rel = cmd.islower()
        k = _ARGS[up]
        if up == "Z":
            raise ValueError("numbers after Z")
        if up == "A":
            # flags may be squeezed: "a1 1 0 011 1" -> tokens 1 1 0 11 1 ... handle by text below
            vals = []
            while len(vals) < 7 and i < n and not isinstance(toks[i], str):
                v = toks[i]
                if len(vals) in (3, 4) and v not in (0.0, 1.0):
                    raise ValueError("arc flags written together are not supported")
                vals.append(v)
                i += 1
        else:
            vals = toks[i:i + k]
            i += k
        if len(vals) < k or any(isinstance(v, str) for v in vals):
            raise ValueError(f"command {cmd} needs {k} numbers")
        ox, oy = (x, y) if rel else (0.0, 0.0)
        if cur is None and up != "M":
            start_sub(x, y)  # drawing after Z starts a new subpath at the current point
            sx, sy = x, y
        if up == "M":
            x, y = vals[0] + ox, vals[1] + oy
            sx, sy = x, y
            start_sub(x, y)
            cmd = "l" if rel else "L"  # implicit lineto for further pairs
            last_c2 = last_q = None
            continue
        p0 = (x, y)
        if up == "L":
            x, y = vals[0] + ox, vals[1] + oy
            cur["segs"].append(("L", np.array([p0, (x, y)])))
            last_c2 = last_q = None
        elif up == "H":
            x = vals[0] + (ox if rel else 0.0)
            cur["segs"].append(("L", np.array([p0, (x, y)])))
            last_c2 = last_q = None
        elif up == "V":
            y = vals[0] + (oy if rel else 0.0)
            cur["segs"].append(("L", np.array([p0, (x, y)])))
            last_c2 = last_q = None
        elif up in "CS":
            if up == "C":
                c1 = (vals[0] + ox, vals[1] + oy)
                c2 = (vals[2] + ox, vals[3] + oy)
                e = (vals[4] + ox, vals[5] + oy)
            else:
                c1 = (2 * x - last_c2[0], 2 * y - last_c2[1]) if last_c2 is not None else p0
                c2 = (vals[0] + ox, vals[1] + oy)
                e = (vals[2] + ox, vals[3] + oy)
            cur["segs"].append(("C", np.array([p0, c1, c2, e])))
            x, y = e
            last_c2, last_q = c2, None
        elif up in "QT":
            if up == "Q":
                q = (vals[0] + ox, vals[1] + oy)
                e = (vals[2] + ox, vals[3] + oy)
            else:
                q = (2 * x - last_q[0], 2 * y - last_q[1]) if last_q is not None else p0
                e = (vals[0] + ox, vals[1] + oy)
            c1 = (p0[0] + 2 / 3 * (q[0] - p0[0]), p0[1] + 2 / 3 * (q[1] - p0[1]))
            c2 = (e[0] + 2 / 3 * (q[0] - e[0]), e[1] + 2 / 3 * (q[1] - e[1]))
            cur["segs"].append(("C", np.array([p0, c1, c2, e])))
            x, y = e
            last_q, last_c2 = q, None
        elif up == "A":
            e = (vals[5] + ox, vals[6] + oy)
            for c1, c2, ee in _arc_to_cubics(p0, vals[0], vals[1], vals[2], bool(vals[3]), bool(vals[4]), e):
                cur["segs"].append(("C", np.array([(x, y), c1, c2, ee])))
                x, y = ee
            x, y = e
            last_c2 = last_q = None
    return subs


def parse_transform(s: str | None) -> np.ndarray:
    """SVG transform attribute -> 3x3 matrix."""
    m = np.eye(3)
    if not s:
        return m
    for name, args in re.findall(r"(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)", s):
        v = [float(a) for a in re.findall(_NUM, args)]
        t = np.eye(3)
        if name == "matrix":
            t[:2, :] = np.array(v[:6]).reshape(3, 2).T
        elif name == "translate":
            t[0, 2], t[1, 2] = v[0], (v[1] if len(v) > 1 else 0.0)
        elif name == "scale":
            t[0, 0], t[1, 1] = v[0], (v[1] if len(v) > 1 else v[0])
        elif name == "rotate":
            a = math.radians(v[0])
            r = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
            if len(v) == 3:
                tr, bk = np.eye(3), np.eye(3)
                tr[:2, 2], bk[:2, 2] = v[1:3], [-v[1], -v[2]]
                r = tr @ r @ bk
            t = r
        elif name == "skewX":
            t[0, 1] = math.tan(math.radians(v[0]))
        elif name == "skewY":
            t[1, 0] = math.tan(math.radians(v[0]))
        m = m @ t
    return m


def flatten_subpath(sub: dict, mat: np.ndarray, min_pieces: int = 16, px_per_piece: float = 1.0,
                    max_pieces: int = 512) -> tuple[np.ndarray, int]:
    """(closed polygon (k, 2) in canvas px without the repeated first point, on-curve node count).
    Consecutive duplicate points are merged; the closing line is implied."""
    pts = [np.array(sub["start"], float)[None]]
    nodes = len(sub["segs"])
    for kind, c in sub["segs"]:
        c = c @ mat[:2, :2].T + mat[:2, 2]
        if kind == "L":
            pts.append(c[1:])
        else:
            L = float(np.linalg.norm(np.diff(c, axis=0), axis=1).sum())
            m = int(min(max_pieces, max(min_pieces, math.ceil(L / px_per_piece))))
            t = np.arange(1, m + 1, dtype=float)[:, None] / m
            u = 1 - t
            pts.append(u ** 3 * c[0] + 3 * u * u * t * c[1] + 3 * u * t * t * c[2] + t ** 3 * c[3])
    pts[0] = pts[0] @ mat[:2, :2].T + mat[:2, 2]
    P = np.concatenate(pts)
    end_gap = np.abs(P[-1] - P[0]).max() if len(P) > 1 else 0.0
    if len(P) > 1 and end_gap > 1e-7:
        nodes += 1  # the closing line is a segment of its own
    keep = np.ones(len(P), bool)
    keep[1:] = np.abs(np.diff(P, axis=0)).max(1) > 1e-9
    P = P[keep]
    if len(P) > 1 and np.abs(P[-1] - P[0]).max() <= 1e-9:
        P = P[:-1]
    return P, nodes


# ================================================================================================
# crossings
# ================================================================================================
def _orient(ax, ay, bx, by, cx, cy):
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


def count_crossings(polys: list[np.ndarray]) -> dict:
    """Proper crossings and touches between non-neighbouring pieces of the closed polygons of one
    path. Returns {"self": n, "inter": n, "touch": n, "pieces": n}."""
    segs, sub, idx, cnt, arc0, per = [], [], [], [], [], []
    for k, P in enumerate(polys):
        m = len(P)
        if m < 2:
            continue
        Q = np.roll(P, -1, axis=0)
        if m == 2:  # a two-point "polygon" is one piece back and forth: keep one piece
            P, Q, m = P[:1], Q[:1], 1
        segs.append(np.hstack([P, Q]))
        ln = np.linalg.norm(Q - P, axis=1)
        arc0.append(np.cumsum(ln) - ln)   # arc length at each piece's start
        per.append(np.full(m, ln.sum()))
        sub.append(np.full(m, k))
        idx.append(np.arange(m))
        cnt.append(np.full(m, m))
    if not segs:
        return {"self": 0, "inter": 0, "touch": 0, "kinks": 0, "pieces": 0}
    S = np.concatenate(segs)
    sub, idx, cnt = np.concatenate(sub), np.concatenate(idx), np.concatenate(cnt)
    arc0, per = np.concatenate(arc0), np.concatenate(per)
    n = len(S)
    xmin = np.minimum(S[:, 0], S[:, 2])
    xmax = np.maximum(S[:, 0], S[:, 2])
    ymin = np.minimum(S[:, 1], S[:, 3])
    ymax = np.maximum(S[:, 1], S[:, 3])
    scale = max(1.0, float(np.abs(S).max()))
    eps_box = 1e-9 * scale
    order = np.argsort(xmin, kind="stable")
    xs = xmin[order]
    hi = np.searchsorted(xs, xmax[order] + eps_box, side="right")
    out = {"self": 0, "inter": 0, "touch": 0, "kinks": 0, "pieces": int(n)}
    # neighbours are never crossings, but a neighbour doubling back along its predecessor (a
    # zero-width spike) is a collinear overlap: count it as a touch
    nxt = np.arange(n) + 1
    nxt[idx == cnt - 1] -= cnt[idx == cnt - 1]
    ux, uy = S[:, 2] - S[:, 0], S[:, 3] - S[:, 1]
    vx, vy = ux[nxt], uy[nxt]
    crs, dot = ux * vy - uy * vx, ux * vx + uy * vy
    fold = (cnt > 2) & (dot < 0) & (np.abs(crs) <= 1e-9 * np.hypot(ux, uy) * np.hypot(vx, vy))
    out["touch"] += int(fold.sum())
    ranks = np.arange(n)
    counts = np.maximum(hi - ranks - 1, 0)
    # chunk the candidate generation to bound memory
    chunk_starts = [0]
    acc = 0
    for r in range(n):
        acc += counts[r]
        if acc > 2_000_000:
            chunk_starts.append(r + 1)
            acc = 0
    chunk_starts.append(n)
    eps = 1e-10 * scale * scale
    for a, b in zip(chunk_starts[:-1], chunk_starts[1:]):
        if a >= b:
            continue
        c = counts[a:b]
        tot = int(c.sum())
        if tot == 0:
            continue
        ri = np.repeat(ranks[a:b], c)
        offs = np.arange(tot) - np.repeat(np.cumsum(c) - c, c)
        rj = ri + 1 + offs
        i, j = order[ri], order[rj]
        ok = (ymin[i] <= ymax[j] + eps_box) & (ymin[j] <= ymax[i] + eps_box)
        same = sub[i] == sub[j]
        d = np.abs(idx[i] - idx[j])
        adj = same & ((d == 1) | (d == cnt[i] - 1))
        ok &= ~adj
        i, j, same = i[ok], j[ok], same[ok]
        if len(i) == 0:
            continue
        A, B = S[i], S[j]
        o1 = _orient(A[:, 0], A[:, 1], A[:, 2], A[:, 3], B[:, 0], B[:, 1])
        o2 = _orient(A[:, 0], A[:, 1], A[:, 2], A[:, 3], B[:, 2], B[:, 3])
        o3 = _orient(B[:, 0], B[:, 1], B[:, 2], B[:, 3], A[:, 0], A[:, 1])
        o4 = _orient(B[:, 0], B[:, 1], B[:, 2], B[:, 3], A[:, 2], A[:, 3])
        s1, s2, s3, s4 = (np.where(np.abs(o) <= eps, 0, np.sign(o)) for o in (o1, o2, o3, o4))
        proper = (s1 * s2 < 0) & (s3 * s4 < 0)
        # touches: some orientation zero and the point lies within the other piece's box
        def on(px, py, Sg, sgn):
            return (sgn == 0) & (px >= np.minimum(Sg[:, 0], Sg[:, 2]) - eps_box) & \
                (px <= np.maximum(Sg[:, 0], Sg[:, 2]) + eps_box) & \
                (py >= np.minimum(Sg[:, 1], Sg[:, 3]) - eps_box) & (py <= np.maximum(Sg[:, 1], Sg[:, 3]) + eps_box)
        touch = ~proper & (on(B[:, 0], B[:, 1], A, s1) | on(B[:, 2], B[:, 3], A, s2) |
                           on(A[:, 0], A[:, 1], B, s3) | on(A[:, 2], A[:, 3], B, s4))
        # a kink: a self crossing whose loop (the shorter stretch of outline between the two
        # crossing pieces) is under KINK_PX long: a tiny knot, invisible at 1x, in the way when editing
        with np.errstate(divide="ignore", invalid="ignore"):
            ta = np.where(proper, o3 / (o3 - o4), 0.0)   # where the crossing sits along A and B
            tb = np.where(proper, o1 / (o1 - o2), 0.0)
        la = np.hypot(A[:, 2] - A[:, 0], A[:, 3] - A[:, 1])
        lb = np.hypot(B[:, 2] - B[:, 0], B[:, 3] - B[:, 1])
        loop = np.abs((arc0[j] + tb * lb) - (arc0[i] + ta * la))
        loop = np.minimum(loop, per[i] - loop)
        out["kinks"] += int((proper & same & (loop < KINK_PX)).sum())
        out["self"] += int((proper & same).sum())
        out["inter"] += int((proper & ~same).sum())
        out["touch"] += int(touch.sum())
    return out


# ================================================================================================
# area / perimeter (nonzero)
# ================================================================================================
def _shoelace(P: np.ndarray) -> float:
    x, y = P[:, 0], P[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def filled_area(polys: list[np.ndarray]) -> tuple[float, float, str]:
    """(area, perimeter, how) of the nonzero fill of the closed polygons."""
    try:
        import pathops

        p = pathops.Path()
        p.fillType = pathops.FillType.WINDING
        for P in polys:
            if len(P) < 3:
                continue
            p.moveTo(*map(float, P[0]))
            for q in P[1:]:
                p.lineTo(*map(float, q))
            p.close()
        p.simplify(fix_winding=True)
        area, per, cur, start = 0.0, 0.0, [], None
        contours = []
        for verb, pts in p.segments:
            if verb == "moveTo":
                cur = [pts[0]]
            elif verb in ("lineTo",):
                cur.append(pts[-1])
            elif verb in ("qCurveTo", "curveTo"):
                cur.extend(pts)
            elif verb in ("closePath", "endPath"):
                if len(cur) >= 2:
                    contours.append(np.array(cur, float))
                cur = []
        if cur:
            contours.append(np.array(cur, float))
        for C in contours:
            area += _shoelace(C)
            per += float(np.linalg.norm(np.roll(C, -1, axis=0) - C, axis=1).sum())
        return abs(area), per, "pathops"
    except Exception:  # fall back on the sum of the subpaths' own areas (simple subpaths)
        area = abs(sum(_shoelace(P) for P in polys if len(P) >= 3))
        per = sum(float(np.linalg.norm(np.roll(P, -1, axis=0) - P, axis=1).sum()) for P in polys)
        return area, per, "shoelace"


# ================================================================================================
# SVG documents
# ================================================================================================
def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _label(e) -> str:
    for k, v in e.attrib.items():
        if k.endswith("label"):
            return v
    return e.get("id", "")


def svg_canvas_matrix(root, width: int, height: int) -> np.ndarray:
    """User units of the root -> canvas pixels of a width x height render (viewBox, preserveAspectRatio
    xMidYMid meet; no viewBox: the width/height attributes map onto the canvas)."""
    vb = root.get("viewBox")
    m = np.eye(3)
    if vb:
        x0, y0, vw, vh = [float(v) for v in re.findall(_NUM, vb)]
    else:
        def num(v, dflt):
            mm = re.match(_NUM, v or "")
            return float(mm.group(0)) if mm else dflt
        x0, y0, vw, vh = 0.0, 0.0, num(root.get("width"), width), num(root.get("height"), height)
    s = min(width / vw, height / vh)
    m[0, 0] = m[1, 1] = s
    m[0, 2] = -x0 * s + (width - vw * s) / 2
    m[1, 2] = -y0 * s + (height - vh * s) / 2
    return m


def load_svg_paths(svg: str, width: int, height: int) -> list[dict]:
    """Every <path> of the SVG with its matrix to canvas px, its layer (index of its top-level <g>,
    -1 if none) and whether it sits in a "details" sub-layer."""
    from lxml import etree

    root = etree.fromstring(svg.encode("utf-8") if isinstance(svg, str) else svg,
                            parser=etree.XMLParser(huge_tree=True, remove_comments=True))
    base = svg_canvas_matrix(root, width, height)
    out = []
    top = [c for c in root if _local(c.tag) == "g"]

    def walk(e, mat, layer, detail):
        for c in e:
            t = _local(c.tag)
            if t in ("defs", "clipPath", "mask", "symbol", "linearGradient", "radialGradient", "pattern"):
                continue
            m = mat @ parse_transform(c.get("transform"))
            if t == "g":
                lay = top.index(c) if c in top else layer
                walk(c, m, lay, detail or _label(c) == "details" or c.get("id", "").endswith("-details"))
            elif t == "path":
                out.append({"d": c.get("d", ""), "matrix": m, "layer": layer, "detail": detail,
                            "fill": c.get("fill"), "element": c})
    walk(root, base, -1, False)
    return out


def without_paths(svg: str, width: int, height: int, drop: set[int]) -> str:
    """The SVG without the <path>s at these indices (in the order :func:`load_svg_paths` lists them)."""
    from lxml import etree

    paths = load_svg_paths(svg, width, height)
    root = paths[0]["element"].getroottree().getroot() if paths else None
    for k in drop:
        e = paths[k]["element"]
        e.getparent().remove(e)
    return etree.tostring(root).decode("utf-8") if root is not None else svg


def _set_opaque(svg: str) -> str:
    """The SVG with every opacity forced to 1 (alpha then shows coverage only)."""
    from lxml import etree

    root = etree.fromstring(svg.encode("utf-8"), parser=etree.XMLParser(huge_tree=True))
    for e in root.iter():
        if not isinstance(e.tag, str):
            continue
        for a in ("opacity", "fill-opacity"):
            if a in e.attrib:
                e.set(a, "1")
        st = e.get("style")
        if st:
            e.set("style", re.sub(r"(fill-opacity|opacity)\s*:\s*[^;]+", r"\1:1", st))
        if _local(e.tag) == "stop":
            e.set("stop-opacity", "1")
            if st:
                e.set("style", re.sub(r"stop-opacity\s*:\s*[^;]+", "stop-opacity:1", e.get("style")))
    return etree.tostring(root).decode("utf-8")


def render(svg: str, width: int, height: int, background: str | None) -> np.ndarray:
    """resvg render -> float32 (H, W, 4) straight RGBA in [0, 1] (background None) or (H, W, 3)
    over the background colour."""
    import resvg_py

    png = resvg_py.svg_to_bytes(svg_string=svg, width=width, height=height)
    a = np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGBA"), dtype=np.float32) / 255.0
    if a.shape[:2] != (height, width):
        raise ValueError(f"resvg rendered {a.shape[1]}x{a.shape[0]}, asked {width}x{height}")
    if background is None:
        return a
    bg = np.array([1.0, 1.0, 1.0] if background == "white" else [0.0, 0.0, 0.0], np.float32)
    return a[..., :3] * a[..., 3:] + bg * (1 - a[..., 3:])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    m = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 100.0 if m <= 1e-10 else 10 * math.log10(1.0 / m)


# ================================================================================================
# the checks
# ================================================================================================
def check_paths(svg: str, width: int, height: int) -> dict:
    """Geometry checks 1-4 for one SVG: per-path records and totals."""
    paths = load_svg_paths(svg, width, height)
    canvas = float(width * height)
    recs = []
    for k, p in enumerate(paths):
        rec = {"index": k, "layer": p["layer"], "detail": p["detail"], "subpaths": 0, "nodes": 0,
               "self": 0, "inter": 0, "touch": 0, "kinks": 0, "area": 0.0, "perimeter": 0.0, "hair": False, "error": ""}
        try:
            subs = parse_d(p["d"])
        except ValueError as e:
            rec["error"] = str(e)
            recs.append(rec)
            continue
        polys = []
        for s in subs:
            P, nodes = flatten_subpath(s, p["matrix"])
            rec["nodes"] += nodes
            polys.append(P)
        rec["subpaths"] = len(subs)
        rec.update({k2: v for k2, v in count_crossings(polys).items() if k2 != "pieces"})
        area, per, _ = filled_area(polys)
        rec["area"], rec["perimeter"] = round(area, 4), round(per, 4)
        width_mean = 2 * area / per if per > 0 else 0.0
        rec["mean_width"] = round(width_mean, 4)
        rec["hair"] = bool(area < HAIR_AREA_SHARE * canvas or width_mean < HAIR_WIDTH)
        recs.append(rec)
    n = len(recs)
    crossing = [r for r in recs if r["self"] + r["inter"] > 0]
    return {
        "paths": n,
        "subpaths": sum(r["subpaths"] for r in recs),
        "crossing_paths": len(crossing),
        "crossings_self": sum(r["self"] for r in recs),
        "crossings_inter": sum(r["inter"] for r in recs),
        "crossings": sum(r["self"] + r["inter"] for r in recs),
        "touches": sum(r["touch"] for r in recs),
        "kinks": sum(r["kinks"] for r in recs),
        "hairs": sum(r["hair"] for r in recs),
        "hair_share": (sum(r["hair"] for r in recs) / n) if n else 0.0,
        "nodes": sum(r["nodes"] for r in recs),
        "nodes_per_path": (sum(r["nodes"] for r in recs) / n) if n else 0.0,
        "parse_errors": sum(bool(r["error"]) for r in recs),
        "per_path": recs,
    }


def seam_counts(svg: str, inp: np.ndarray, scales=SCALES) -> dict:
    """Check 7 (see the module docstring): {scale: {"seam": px, "uncovered": px, "mask": px}}."""
    from scipy import ndimage

    h, w = inp.shape[:2]
    a_in = inp[..., 3] if inp.shape[2] == 4 else np.full((h, w), 255, np.uint8)
    opaque = ndimage.binary_erosion(a_in == 255, np.ones((3, 3), bool), border_value=1)
    opaque_svg = _set_opaque(svg)
    out = {}
    for s in scales:
        W, H = w * s, h * s
        op = np.kron(opaque, np.ones((s, s), bool))
        alpha_op = render(opaque_svg, W, H, None)[..., 3]
        union = ndimage.binary_erosion(alpha_op >= 0.5, np.ones((2 * s + 1, 2 * s + 1), bool), border_value=1)
        mask = op & union
        seam = int((mask & (alpha_op < SEAM_ALPHA)).sum())
        alpha = render(svg, W, H, None)[..., 3]
        inner = op.copy()
        inner[:s, :] = inner[-s:, :] = False
        inner[:, :s] = inner[:, -s:] = False
        unc = int((inner & (alpha < SEAM_ALPHA)).sum())
        out[s] = {"seam": seam, "uncovered": unc, "mask": int(mask.sum())}
    return out


def judge(svg: str, inp: np.ndarray, truth_svg: str | None = None) -> dict:
    """Every check on one SVG against its input image (H, W, 3|4) uint8."""
    h, w = inp.shape[:2]
    t = time.perf_counter()
    res = check_paths(svg, w, h)
    res["geometry_seconds"] = round(time.perf_counter() - t, 3)
    res["svg_bytes"] = len(svg.encode("utf-8"))
    res["psnr_1x"] = psnr(render(svg, w, h, "white"), over_white(inp))
    res["psnr_4x"] = None
    if truth_svg is not None:
        res["psnr_4x"] = psnr(render(svg, 4 * w, 4 * h, "white"), render(truth_svg, 4 * w, 4 * h, "white"))
    res["seams"] = seam_counts(svg, inp)
    # the same crack count with the backdrop(s) left out: paths covering >= 98 % of the canvas hide
    # every crack in alpha, so this shows where the backdrop colour shines through between shapes
    back = {p["index"] for p in res["per_path"] if p["area"] >= 0.98 * w * h}
    res["backdrops"] = len(back)
    res["seams_nobackdrop"] = ({s: v["seam"] for s, v in seam_counts(without_paths(svg, w, h, back), inp).items()}
                               if back else {s: v["seam"] for s, v in res["seams"].items()})
    return res


# ================================================================================================
# inputs and producers
# ================================================================================================
def _fit(im: Image.Image) -> Image.Image:
    w, h = im.size
    if max(w, h) == SIZE:
        return im
    s = SIZE / max(w, h)
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)


def load_input(name: str) -> tuple[str, np.ndarray, str | None]:
    """(kind, (H, W, 3|4) uint8, true SVG text or None)."""
    if name in PHOTOS:
        from skimage import data

        arr = getattr(data, name)()
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, 2)
        return "photo", np.asarray(_fit(Image.fromarray(arr[..., :3])).convert("RGB")), None
    p = OPENMOJI / f"{name}_256.png"
    if not p.is_file():
        raise SystemExit(f"unknown image {name!r}: not a photograph ({', '.join(PHOTOS)}) and no {p}")
    truth = OPENMOJI / f"{name}.svg"
    return ("clip art", np.asarray(Image.open(p).convert("RGBA")),
            truth.read_text(encoding="utf-8") if truth.is_file() else None)


def openmoji_names() -> list[str]:
    return sorted(p.name[: -len("_256.png")] for p in OPENMOJI.glob("*_256.png"))


def run_lvss(img: np.ndarray, paths: int, quality: str, mode: str, fill: str, seed: int,
             out_file: Path) -> dict:
    from dataclasses import replace

    from lvss.config import VectorizeConfig, apply_quality
    from lvss.pipeline import run
    from lvss.svg import write_svg

    cfg = VectorizeConfig(paths=paths, mode=mode, seed=seed, device="cpu")
    cfg = apply_quality(cfg, quality, paths_given=True, work_size_given=False, levels_given=False)
    if fill != "flat":
        cfg = replace(cfg, optimize=replace(cfg.optimize, fill=fill))
    t = time.perf_counter()
    res = run(img, cfg)
    secs = time.perf_counter() - t
    write_svg(res.scene, out_file)
    return {"svg": out_file.read_text(encoding="utf-8"), "seconds": secs,
            "pipeline_psnr": res.metrics.get("psnr"), "layers": len(res.scene.layers)}


def run_vtracer(img: np.ndarray, target: int) -> tuple[str, str, float]:
    """vtracer in colour mode with the schedule setting whose path count is closest to ``target``."""
    import vtracer

    rgba = img if img.shape[2] == 4 else np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, "PNG")
    png = buf.getvalue()
    best = None
    t = time.perf_counter()
    for fs, ld in VT_SCHEDULE:
        svg = vtracer.convert_raw_image_to_svg(png, img_format="png", colormode="color", hierarchical="stacked",
                                               mode="spline", filter_speckle=fs, layer_difference=ld)
        n = count_paths(svg)
        if best is None or abs(n - target) < abs(best[0] - target):
            best = (n, fs, ld, svg)
        if n < target:
            break  # coarser settings only lose paths
    n, fs, ld, svg = best
    return svg, f"filter_speckle={fs} layer_difference={ld}", time.perf_counter() - t


# ================================================================================================
# report
# ================================================================================================
COLS = [("image", 10), ("method", 8), ("paths", 5), ("subp", 5), ("xpaths", 6), ("cross", 6), ("(self", 6),
        ("inter)", 6), ("kinks", 6), ("touch", 6), ("hairs", 5), ("hair%", 6), ("nodes/p", 7), ("psnr1x", 6), ("psnr4x", 6),
        ("pipe", 6), ("Δpipe", 6), ("seam1", 6), ("seam2", 6), ("seam4", 6), ("unc1", 6), ("unc2", 6),
        ("unc4", 6), ("nb-seam1", 6), ("nb-seam4", 6)]


def _fmt(v, nd=2) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def row_cells(name: str, method: str, r: dict) -> list[str]:
    s = r.get("seams", {})
    pipe = r.get("pipeline_psnr")
    return [name, method, _fmt(r["paths"]), _fmt(r["subpaths"]), _fmt(r["crossing_paths"]), _fmt(r["crossings"]),
            _fmt(r["crossings_self"]), _fmt(r["crossings_inter"]), _fmt(r["kinks"]), _fmt(r["touches"]), _fmt(r["hairs"]),
            _fmt(100 * r["hair_share"], 1), _fmt(r["nodes_per_path"], 1), _fmt(r["psnr_1x"]), _fmt(r.get("psnr_4x")),
            _fmt(pipe), _fmt(None if pipe is None else pipe - r["psnr_1x"]),
            *[_fmt(s.get(k, {}).get("seam")) for k in SCALES], *[_fmt(s.get(k, {}).get("uncovered")) for k in SCALES],
            _fmt(r.get("seams_nobackdrop", {}).get(1)), _fmt(r.get("seams_nobackdrop", {}).get(4))]


def total(rs: list[dict]) -> dict:
    """Sums of counts, means of PSNRs, pooled shares."""
    if not rs:
        return {}
    out = {}
    for k in ("paths", "subpaths", "crossing_paths", "crossings", "crossings_self", "crossings_inter", "touches",
              "kinks", "hairs", "nodes", "parse_errors"):
        out[k] = sum(r[k] for r in rs)
    out["hair_share"] = out["hairs"] / out["paths"] if out["paths"] else 0.0
    out["nodes_per_path"] = out["nodes"] / out["paths"] if out["paths"] else 0.0
    for k in ("psnr_1x", "psnr_4x", "pipeline_psnr"):
        v = [r[k] for r in rs if r.get(k) is not None]
        out[k] = statistics.fmean(v) if v else None
    out["seams"] = {s: {k: sum(r["seams"][s][k] for r in rs) for k in ("seam", "uncovered", "mask")} for s in SCALES}
    out["seams_nobackdrop"] = {s: sum(r["seams_nobackdrop"][s] for r in rs) for s in SCALES}
    out["backdrops"] = sum(r["backdrops"] for r in rs)
    return out


def print_table(rows: list[tuple[str, str, dict]], title: str) -> None:
    print(f"\n## {title}")
    print("| " + " | ".join(c for c, _ in COLS) + " |")
    print("|" + "|".join("---" if i < 2 else "---:" for i in range(len(COLS))) + "|")
    for name, method, r in rows:
        print("| " + " | ".join(row_cells(name, method, r)) + " |")
    for method in dict.fromkeys(m for _, m, _ in rows):
        t = total([r for _, m, r in rows if m == method])
        if t:
            print("| " + " | ".join(row_cells("TOTAL", method, t)) + " |")


def breakdown(rows: list[tuple[str, str, dict]], method: str = "lvss") -> list[str]:
    """Where the crossings and hairs sit: by layer rank and structural vs detail paths."""
    by: dict[tuple[int, bool], list[int]] = {}
    for _, m, r in rows:
        if m != method:
            continue
        for p in r["per_path"]:
            key = (p["layer"], p["detail"])
            e = by.setdefault(key, [0, 0, 0, 0, 0, 0])
            e[0] += 1
            e[1] += int(p["self"] + p["inter"] > 0)
            e[2] += p["self"] + p["inter"]
            e[3] += int(p["hair"])
            e[4] += p["touch"]
            e[5] += p["kinks"]
    lines = []
    for (layer, det), (n, xp, xc, hr, tc, kk) in sorted(by.items()):
        lines.append(f"  {method} layer {layer + 1 if layer >= 0 else '-'} {'detail' if det else 'structural'}: "
                     f"{n} paths, {xp} crossing ({100 * xp / max(n, 1):.0f} %), {xc} crossings ({kk} kinks), {hr} hairs, "
                     f"{tc} touches")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", nargs="+", metavar="NAME",
                    help="OpenMoji codes and/or astronaut chelsea coffee rocket (default: the 12 OpenMoji)")
    ap.add_argument("--paths", type=int, default=None, help="lvss budget (default 64 for clip art, 256 for photos)")
    ap.add_argument("--quality", choices=("fast", "balanced", "best"), default="balanced")
    ap.add_argument("--mode", choices=("layered", "compact"), default="layered")
    ap.add_argument("--fill", choices=("flat", "linear", "radial", "auto"), default="flat")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--out", metavar="DIR", help="keep the SVGs here")
    ap.add_argument("--json", metavar="FILE", help="write every figure, per path too")
    ap.add_argument("--no-vtracer", action="store_true")
    ap.add_argument("--svg-dir", metavar="DIR", help="judge the SVGs in DIR instead of running lvss")
    ap.add_argument("--png-dir", metavar="DIR", help="with --svg-dir: where NAME.png / NAME_256.png are")
    a = ap.parse_args(argv)

    import tempfile

    tmp = tempfile.TemporaryDirectory()
    out = Path(a.out) if a.out else Path(tmp.name)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, dict]] = []
    notes: dict[str, str] = {}
    t_all = time.perf_counter()

    jobs = []  # (name, kind, img, truth, svg or None, svg label)
    if a.svg_dir:
        png_dir = Path(a.png_dir or a.svg_dir)
        known = set(openmoji_names()) | set(PHOTOS)
        for f in sorted(Path(a.svg_dir).glob("*.svg")):
            stem = f.stem
            cand = [png_dir / f"{stem}.png", png_dir / f"{stem}_256.png"]
            hit = next((c for c in cand if c.is_file()), None)
            if hit is not None:
                img = np.asarray(Image.open(hit).convert("RGBA"))
                base = next((k for k in known if stem == k or stem.startswith(k + "_")), None)
                truth = load_input(base)[2] if base and base not in PHOTOS else None
                jobs.append((stem, "given", img, truth, f.read_text(encoding="utf-8")))
                continue
            base = next((k for k in known if stem == k or stem.startswith(k + "_")), None)
            if base is None:
                print(f"skip {f}: no input image found", file=sys.stderr)
                continue
            kind, img, truth = load_input(base)
            jobs.append((stem, kind, img, truth, f.read_text(encoding="utf-8")))
    else:
        import torch

        torch.set_num_threads(max(1, a.threads))
        for name in a.images or openmoji_names():
            kind, img, truth = load_input(name)
            jobs.append((name, kind, img, truth, None))

    for name, kind, img, truth, svg in jobs:
        method = "svg" if svg is not None else "lvss"
        pipe = None
        if svg is None:
            budget = a.paths or (256 if kind == "photo" else 64)
            r = run_lvss(img, budget, a.quality, a.mode, a.fill, a.seed, out / f"{name}_lvss.svg")
            svg, pipe = r["svg"], r["pipeline_psnr"]
            notes[f"{name} lvss"] = f"{r['seconds']:.1f} s, {r['layers']} layers, budget {budget}"
        res = judge(svg, img, truth)
        res["pipeline_psnr"] = pipe
        rows.append((name, method, res))
        print(f"  {name} {method}: {res['paths']} paths, {res['crossings']} crossings, geometry "
              f"{res['geometry_seconds']:.2f} s", file=sys.stderr)
        if not a.no_vtracer:
            vsvg, settings, vsecs = run_vtracer(img, res["paths"])
            (out / f"{name}_vtracer.svg").write_text(vsvg, encoding="utf-8")
            vres = judge(vsvg, img, truth)
            vres["pipeline_psnr"] = None
            vres["settings"] = settings
            notes[f"{name} vtracer"] = settings
            rows.append((name, "vtracer", vres))
            print(f"  {name} vtracer ({settings}): {vres['paths']} paths, {vres['crossings']} crossings, "
                  f"geometry {vres['geometry_seconds']:.2f} s", file=sys.stderr)

    print("Columns: xpaths = paths with >= 1 crossing; cross = proper crossings (self = within a subpath, "
          "inter = between subpaths of one path); kinks = self crossings closing a loop < 2 px of outline; touch = touching / collinear contacts; hairs = area < 0.02 % "
          "of canvas or mean width < 0.5 px; pipe = lvss's own PSNR, Δpipe = pipe - psnr1x; seamS / uncS = "
          "pixels at scale S; nb-seamS = seams with the full-canvas backdrop path(s) left out (see the docstring).")
    groups = [("clip art", [r for r in rows if not any(r[0] == p for p in PHOTOS)]),
              ("photographs", [r for r in rows if r[0] in PHOTOS])]
    for title, rs in groups:
        if rs:
            print_table(rs, title)
            for ln in breakdown(rs):
                print(ln)
    for k, v in notes.items():
        print(f"  {k}: {v}")
    print(f"(total {time.perf_counter() - t_all:.0f} s)")
    if a.json:
        Path(a.json).write_text(json.dumps({
            "args": vars(a), "notes": notes,
            "rows": [{"image": n, "method": m, **r} for n, m, r in rows],
            "totals": {f"{title} {m}": total([r for _, mm, r in rs if mm == m])
                       for title, rs in groups for m in dict.fromkeys(mm for _, mm, _ in rs)},
        }, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)), encoding="utf-8")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
