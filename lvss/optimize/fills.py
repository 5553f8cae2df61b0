"""Gradient fills stage: give paths linear or radial gradients where that pays, then optimise them.

Runs on a finished scene at the working resolution (either mode), ``fill`` being one of

- ``flat``: nothing happens (the scene is returned as it is);
- ``linear`` / ``radial``: every path that shows at least ``prune_area`` pixels gets that gradient;
- ``auto``: each path gets the better of the two only where it is worth its bytes (rule below).

1. **Least-squares start.** With every other path fixed, the composite is linear in one path's colour
   field: at a pixel where the path shows with weight v (coverage x alpha x transmittance of the
   paths above), its share of the target is r = target - (composite - v * colour). Each fill model is
   linear in its stop colours once its geometry is set, so it is fitted to r by weighted least squares:
   flat (one colour), linear (direction = the dominant axis of the path's affine colour fit, offsets
   0 and 1 at the two ends of the path's extent along it) and radial (centre = the stationary point of
   an isotropic quadratic fitted to the path's colours along their main colour axis, radius = the
   farthest visible pixel), each with 2, 3 and 4 evenly spaced stops.
2. **Cost rule (auto).** A gradient replaces ``fill="#rrggbb"`` with ``fill="url(#id)"`` and adds a
   ``<linearGradient>`` / ``<radialGradient>`` element to ``<defs>``; its extra bytes are measured by
   writing that element (once per kind and stop count in a run: they differ by a few digits at most). What a byte buys is taken from the flat scene itself: lambda = (squared error
   of an empty canvas - squared error of the flat scene) / bytes of the flat scene's path elements,
   the mean error drop per byte the flat paths bought. A path keeps a gradient when its least-squares
   error drop >= ``fill_cost`` x lambda x extra bytes; of the candidates (kind x stop count) the
   largest drop - cost wins. ``fill_cost`` < 1 because the average overstates what the budget's last
   paths buy (the first paths of a scene buy the most). The forced modes take their kind's best
   candidate by the same measure.
3. **Joint optimisation.** ``fill_iters`` Adam steps on the whole image loss over the gradients'
   geometry (end points, centre, radius, focal point), their stop colours, the flat paths' colours and
   every path's control points (0.3 x ``point_lr`` pixels per step: the layered polish left them
   lined up for flat colours, and gradients move the best edges), keeping the best state seen.

The path budget is untouched: the stage changes fills, never the number of paths.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..scene import Layer, LinearGradient, Path, RadialGradient, Scene, mean_color
from .losses import image_loss

FILL_MODES = ("flat", "linear", "radial", "auto")
STOPS = (2, 3, 4)  # stop counts tried per gradient (evenly spaced offsets); the optimiser moves their colours


@dataclass
class FillResult:
    """The scene with its fills, and what the stage did."""

    scene: Scene
    linear: int = 0          # paths given a linear gradient
    radial: int = 0          # paths given a radial gradient
    loss_before: float = 0.0
    loss_after: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    image: tuple | None = None  # the returned scene rendered at the working size: premultiplied (H, W, 3), alpha


@dataclass
class _Candidate:
    kind: str                # "linear" | "radial"
    fill: LinearGradient | RadialGradient
    drop: float              # least-squares error drop against the best flat colour
    extra_bytes: int


def _hat(tau: np.ndarray, k: int) -> np.ndarray:
    """(M, k) piecewise-linear interpolation weights of stops at offsets linspace(0, 1, k)."""
    pos = np.clip(tau, 0.0, 1.0) * (k - 1)
    j = np.minimum(np.floor(pos).astype(int), k - 2)
    f = pos - j
    out = np.zeros((tau.shape[0], k))
    out[np.arange(tau.shape[0]), j] = 1.0 - f
    out[np.arange(tau.shape[0]), j + 1] += f
    return out


def _fit_stops(v: np.ndarray, r: np.ndarray, tau: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Stop colours (k, 3) in [0, 1] minimising sum |v * colour(tau) - r|^2, and that error."""
    X = v[:, None] * _hat(tau, k)
    sol, *_ = np.linalg.lstsq(X, r, rcond=None)
    sol = np.clip(sol, 0.0, 1.0)
    return sol, float(((X @ sol - r) ** 2).sum())


def _flat_error(v: np.ndarray, r: np.ndarray) -> float:
    c = np.clip((v[:, None] * r).sum(0) / max(float((v * v).sum()), 1e-12), 0.0, 1.0)
    return float(((v[:, None] * c - r) ** 2).sum())


def _linear_fit(xy, v, r, alpha: float):
    """Linear gradient along the dominant axis of an affine colour fit; None when flat is all there is."""
    mu = (xy * v[:, None]).sum(0) / v.sum()
    d = xy - mu
    sc = max(float(np.abs(d).max()), 1.0)
    X = v[:, None] * np.c_[np.ones(len(v)), d / sc]
    B, *_ = np.linalg.lstsq(X, r, rcond=None)           # (3, 3): rows 1, x, y
    G = B[1:3].T                                        # (3 channels, 2)
    _, s, vt = np.linalg.svd(G)
    u = vt[0] if s[0] > 1e-9 else np.array([1.0, 0.0])   # no slope at all: any axis will do
    proj = d @ u
    strong = v > 0.25 * v.max()
    lo, hi = float(proj[strong].min()), float(proj[strong].max())
    if hi - lo < 1.0:
        return None
    tau = (proj - lo) / (hi - lo)
    out = []
    for k in STOPS:
        stops, err = _fit_stops(v, r, tau, k)
        out.append((LinearGradient(torch.tensor(mu + lo * u, dtype=torch.float32),
                                   torch.tensor(mu + hi * u, dtype=torch.float32),
                                   torch.linspace(0, 1, k), _rgba(stops, alpha)), err))
    return out


def _radial_fit(xy, v, r, alpha: float):
    """Radial gradient centred on the stationary point of an isotropic quadratic colour fit."""
    strong = v > 0.25 * v.max()
    if strong.sum() < 6:
        return None
    col = r[strong] / v[strong, None]
    p = xy[strong]
    cm = col.mean(0)
    _, _, vt = np.linalg.svd(col - cm, full_matrices=False)
    z = (col - cm) @ vt[0]                               # colours along their main axis
    mu = p.mean(0)
    sc = max(float(np.abs(p - mu).max()), 1.0)
    q = (p - mu) / sc
    A = np.c_[np.ones(len(z)), q, (q * q).sum(1)]
    coef, *_ = np.linalg.lstsq(A, z, rcond=None)
    lo, hi = p.min(0), p.max(0)
    if abs(coef[3]) < 1e-9:
        c = mu
    else:
        c = mu + sc * (-coef[1:3] / (2 * coef[3]))
    c = np.clip(c, lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo))
    dist = np.hypot(*(xy - c).T)
    R = float(dist[strong].max())
    if R < 1.0:
        return None
    out = []
    for k in STOPS:
        stops, err = _fit_stops(v, r, dist / R, k)
        out.append((RadialGradient(torch.tensor(c, dtype=torch.float32), R, torch.linspace(0, 1, k),
                                   _rgba(stops, alpha)), err))
    return out


def _rgba(stops: np.ndarray, alpha: float) -> torch.Tensor:
    return torch.tensor(np.c_[stops, np.full(len(stops), alpha)], dtype=torch.float32)


def _extra_bytes(fill, precision: int) -> int:
    """SVG bytes a gradient adds over a flat fill: its element in <defs> plus the longer fill value."""
    from lxml import etree

    from ..svg import SVG_NS, _gradient_element

    defs = etree.Element(f"{{{SVG_NS}}}defs")
    gid = "linear100" if isinstance(fill, LinearGradient) else "radial100"
    _gradient_element(defs, fill, gid, precision)
    el = etree.tostring(defs[0]).decode()
    el = el.replace(f' xmlns="{SVG_NS}"', "")
    return len(el) + 5 + len(f'fill="url(#{gid})"') - len('fill="#000000"')


def _path_bytes(scene: Scene, precision: int) -> int:
    from ..svg import path_data

    return sum(len(path_data(p.points.detach().cpu().double().numpy(), precision)) + 30 for p in scene.paths())


def fit_fills(scene: Scene, rgb: np.ndarray, alpha: np.ndarray, mode: str, dev: torch.device,
              iters: int = 25, cost: float = 0.0005, prune_area: float = 4.0, point_lr: float = 1.0,
              color_lr: float = 0.01, weight: torch.Tensor | None = None, precision: int = 2,
              cancel: threading.Event | None = None) -> FillResult:
    """Give the scene's paths gradient fills per ``mode`` (see the module docstring).

    scene: at the working resolution of ``rgb`` (h, w, 3) straight colour and ``alpha`` (h, w).
    """
    from ..render.torch_raster import pack_fills, render_torch, visibility
    from ..types import check_cancel

    if mode not in FILL_MODES:
        raise ValueError(f"fill must be one of {', '.join(FILL_MODES)}, got {mode!r}")
    t0 = time.perf_counter()
    h, w = alpha.shape
    if scene.width != w or scene.height != h:
        raise ValueError(f"the scene is {scene.width}x{scene.height} but the image is {w}x{h}; "
                         "fit fills at the working resolution")
    paths = list(scene.paths())
    n = len(paths)
    if mode == "flat" or n == 0:
        return FillResult(scene)
    a_t = torch.from_numpy(alpha).to(dev)
    target_c = torch.from_numpy(rgb).to(dev) * a_t.unsqueeze(-1)
    pts = [p.points.detach().to(dev) for p in paths]
    cols = scene.colors().detach().to(dev)
    with torch.no_grad():
        C, A = render_torch(pts, cols, w, h, fills=pack_fills(scene.fills()))
        loss_before = float(image_loss(C, A, target_c, a_t, weight))
        R = (target_c - C).reshape(-1, 3).double().cpu().numpy()
        pix, pid, vw = (t.cpu().numpy() for t in visibility(pts, cols[:, 3], w, h))
    check_cancel(cancel)
    # lambda: mean squared-error drop per byte of the flat scene
    tgt = target_c.reshape(-1, 3).double().cpu().numpy()
    lam = max((float((tgt ** 2).sum()) - float((R ** 2).sum())) / max(_path_bytes(scene, precision), 1), 0.0)
    order = np.argsort(pid, kind="stable")
    pix, pid, vw = pix[order], pid[order], vw[order].astype(np.float64)
    bounds = np.searchsorted(pid, np.arange(n + 1))
    rgbs = cols[:, :3].double().cpu().numpy()
    fills: list = [p.fill for p in paths]
    sizes: dict = {}

    def extra(fill) -> int:
        key = (type(fill).__name__, int(fill.offsets.shape[0]))
        if key not in sizes:
            sizes[key] = _extra_bytes(fill, precision)
        return sizes[key]
    for i in range(n):
        if i % 32 == 0:
            check_cancel(cancel)
        a, b = bounds[i], bounds[i + 1]
        v = vw[a:b]
        if paths[i].fill is not None or b - a < 6 or float(v.sum()) < prune_area:
            continue
        px = pix[a:b]
        r = R[px] + v[:, None] * rgbs[i]
        xy = np.c_[px % w + 0.5, px // w + 0.5].astype(np.float64)
        e_flat = _flat_error(v, r)
        cands: list[_Candidate] = []
        for kind, fit in (("linear", _linear_fit), ("radial", _radial_fit)):
            if mode not in ("auto", kind):
                continue
            for fill, err in fit(xy, v, r, float(cols[i, 3])) or []:
                cands.append(_Candidate(kind, fill, e_flat - err, extra(fill)))
        if not cands:
            continue
        best = max(cands, key=lambda c: c.drop - cost * lam * c.extra_bytes)
        if mode == "auto" and best.drop - cost * lam * best.extra_bytes <= 0:
            continue
        fills[i] = best.fill
    gi = [i for i in range(n) if fills[i] is not None and paths[i].fill is None]
    res = FillResult(scene, loss_before=loss_before, loss_after=loss_before, image=(C, A))
    if not gi:
        res.seconds = time.perf_counter() - t0
        return res
    return _optimise(scene, paths, fills, target_c, a_t, weight, iters, point_lr, color_lr, dev, cancel, res, t0)


def _optimise(scene, paths, fills, target_c, a_t, weight, iters, point_lr, color_lr, dev, cancel, res, t0):
    from ..render.torch_raster import pack_fills, render_torch
    from ..types import check_cancel
    from .loop import Adam

    h, w = a_t.shape
    packed = pack_fills(fills).to(dev)
    pts = [p.points.detach().to(dev).clone().requires_grad_(iters > 0) for p in paths]
    rgb = scene.colors().detach().to(dev)[:, :3].clone().requires_grad_(iters > 0)
    alpha = scene.colors().detach().to(dev)[:, 3:]
    geom = packed.geom.clone().requires_grad_(iters > 0)
    stop_rgb = packed.colors[..., :3].clone().requires_grad_(iters > 0)
    stop_a = packed.colors[..., 3:]

    def draw():
        pf = type(packed)(packed.path, packed.kind, geom, packed.offsets, torch.cat([stop_rgb, stop_a], -1))
        return render_torch(pts, torch.cat([rgb, alpha], 1), w, h, fills=pf)

    snap = lambda: ([p.detach().clone() for p in pts], rgb.detach().clone(), geom.detach().clone(),  # noqa: E731
                    stop_rgb.detach().clone())
    best_loss, best = math.inf, snap()
    if iters > 0:
        from ..geometry.guard import SimpleGuard

        guard = SimpleGuard([(p, [p.shape[0]]) for p in pts])   # the paths stay simple loops
        opt = Adam([{"params": pts, "lr": 0.3 * point_lr},
                                {"params": [geom], "lr": 0.3},
                                {"params": [rgb, stop_rgb], "lr": color_lr}])
        for step in range(iters):
            check_cancel(cancel)
            opt.zero_grad()
            C, A = draw()
            loss = image_loss(C, A, target_c, a_t, weight)
            lv = float(loss.detach())
            if lv < best_loss:
                best_loss, best = lv, snap()
            loss.backward()
            opt.step()
            guard(opt)
            with torch.no_grad():
                rgb.clamp_(0, 1)
                stop_rgb.clamp_(0, 1)
                rad = packed.kind == 1
                geom[rad, 2] = geom[rad, 2].abs().clamp(min=0.5)
    with torch.no_grad():
        pts, rgb, geom, stop_rgb = best
        pf = type(packed)(packed.path, packed.kind, geom, packed.offsets, torch.cat([stop_rgb, stop_a], -1))
        C, A = render_torch(pts, torch.cat([rgb, alpha], 1), w, h, fills=pf)
        loss_after = float(image_loss(C, A, target_c, a_t, weight))
    # back into scene paths, same layers
    gpos = {int(p): k for k, p in enumerate(packed.path.tolist())}
    new_paths = []
    n_lin = n_rad = 0
    for i, p in enumerate(paths):
        col = torch.cat([rgb[i], alpha[i]]).cpu()
        k = gpos.get(i)
        if k is None:
            new_paths.append(Path(pts[i].cpu(), col))
            continue
        g = geom[k].cpu()
        sc = torch.cat([stop_rgb[k], stop_a[k]], -1).cpu()
        offs = packed.offsets[k].cpu()
        if int(packed.kind[k]) == 0:
            if float((g[2:4] - g[0:2]).norm()) < 1e-3:
                g = g.clone()
                g[2] += 1e-3
            f = LinearGradient(g[0:2].clone(), g[2:4].clone(), offs, sc)
            n_lin += 1
        else:
            foc = g[3:5].clone() if float((g[3:5] - g[0:2]).norm()) > 1e-2 else None
            f = RadialGradient(g[0:2].clone(), g[2].abs().clamp(min=1e-3).clone(), offs, sc, foc)
            n_rad += 1
        new_paths.append(Path(pts[i].cpu(), mean_color(f), f))
    it = iter(new_paths)
    out = Scene(scene.width, scene.height,
                [Layer(l.name, [next(it) for _ in l.paths], l.id, l.details_from) for l in scene.layers])
    res.scene, res.linear, res.radial, res.loss_after, res.image = out, n_lin, n_rad, loss_after, (C, A)
    res.seconds = time.perf_counter() - t0
    return res


def apply_fills(scene: Scene, rgb: np.ndarray, alpha: np.ndarray, cfg, dev: torch.device, metrics: dict,
                cancel: threading.Event | None = None) -> Scene:
    """The pipeline's call: :func:`fit_fills` with the config's options; updates ``metrics`` (mse and
    psnr over white at the working resolution, linear_fills, radial_fills) in place."""
    from ..render.torch_raster import pack_fills, render_torch

    o = cfg.optimize
    res = fit_fills(scene, rgb, alpha, o.fill, dev, iters=o.fill_iters, cost=o.fill_cost, prune_area=o.prune_area,
                    point_lr=o.point_lr, color_lr=o.color_lr, cancel=cancel)
    out = res.scene
    if out.num_paths:
        with torch.no_grad():
            if res.image is not None:  # the stage's own last render of what it returns
                C, A = res.image
            else:
                C, A = render_torch([p.to(dev) for p in out.point_list()], out.colors().to(dev), out.width,
                                    out.height, fills=pack_fills(out.fills()))
            a = torch.from_numpy(alpha).to(dev)
            img = C + (1.0 - A).unsqueeze(-1)
            ref = torch.from_numpy(rgb).to(dev) * a.unsqueeze(-1) + (1.0 - a).unsqueeze(-1)
            mse = float(((img - ref) ** 2).mean())
        metrics.update(mse=mse, psnr=100.0 if mse <= 1e-10 else float(10 * np.log10(1.0 / mse)))
    metrics.update(linear_fills=float(res.linear), radial_fills=float(res.radial))
    return out
