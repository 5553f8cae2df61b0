"""Compact mode benchmark: compactness (VeC) and fidelity against layered mode and vtracer, the
clustering ablation, and a saliency check.

1. Main table, OpenMoji clip art at path budgets N (default 64, 128, 256): lvss compact mode
   (``mode="compact"``), lvss layered mode (``mode="layered"``) and vtracer tuned to at most N paths
   (bench/quality.py's schedule). Every SVG is rendered with resvg over white and compared with the
   input: PSNR, SSIM; VeC (lvss.metrics.vec) of each <path> element's own shape (rendered alone with
   resvg) against the SVG's exact element regions (lvss.metrics.svg_region_masks); paths; seconds.
   Goal per budget: compact VeC above layered's and vtracer's, compact PSNR >= layered - 1 dB.
2. Merge ablation (photographs at --ablation-budget, clip art at --ablation-emoji-budget): on one
   mask soup per image (lvss.compact.mask_soup), the recolouring merge as lvss runs it, the same with
   the other TV weight (``tv_control`` "fixed", the paper's form, or "fusion", the controller), k-means and DBSCAN on mask colour + position and the
   greedy Ward merge alone (bench/compact_baselines.py), each followed by the same path stage at the
   same final budget: soup masks, atoms, regions, clustering seconds, PSNR of the regions filled with
   their mean colours, final PSNR (lvss.metrics.composite_metrics) and VeC (clip art only).
   Also the clustering time for 300 masks at 256² (goal <= 10 s).
3. Saliency check: a user mask over one object of an emoji; detail paths whose centre lies inside
   the object with and without the mask.

    PYTHONPATH=. python bench/compact.py [--quick] [--images 1F339 1F431] [--budgets 64 128 256]
        [--ablation-images astronaut coffee 1F3A8] [--ablation-budget 64] [--ablation-emoji-budget 24]
        [--ablation-methods recolor kmeans ...]
        [--skip-layered] [--skip main|ablation|saliency ...]
        [--structure-iters S] [--refine-iters R] [--out bench/out/compact]

``--quick``: 3 emoji at budgets 64 and 128, ablation on 2 photographs + 1 emoji. Writes table.md and
results.json under --out and prints the tables. The clip art is read from $LVSS_OPENMOJI
(``<CODE>_256.png`` and ``<CODE>.svg``; default /work/shared/data/openmoji, see bench/quality.py).
Seconds are wall time; CPU seconds are this process's (torch on one thread).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import quality as Q  # noqa: E402  (bench/quality.py: inputs, resvg scoring, budgeted vtracer)

BUDGETS = (16, 24, 32, 64, 128, 256)
QUICK_IMAGES = ("1F339", "1F431", "1F6B2")
QUICK_BUDGETS = (16, 64)
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
QUICK_PHOTOS = ("coffee",)
ABLATION_IMAGES = ("astronaut", "coffee", "chelsea", "1F339", "1F344", "1F34C", "1F3A8", "1F431", "1F98A")
QUICK_ABLATION = ("astronaut", "coffee", "1F3A8")
SALIENCY_IMAGE = "1F339"


def emoji_names() -> list[str]:
    return sorted(p.name[: -len("_256.png")] for p in Q.OPENMOJI.glob("*_256.png"))


def element_masks(svg: str, width: int, height: int) -> np.ndarray:
    """(P, H, W) bool: the own shape of every <path> element of ``svg`` (fill rule and transforms as
    written), each rendered alone, opaque, with resvg."""
    from lxml import etree

    from lvss.testing import resvg_render

    root = etree.fromstring(svg.encode() if isinstance(svg, str) else svg)
    paths = [e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname == "path"]
    for e in paths:
        e.set("display", "none")
    out = np.zeros((len(paths), height, width), bool)
    for i, e in enumerate(paths):
        e.set("display", "inline")
        saved = {k: e.get(k) for k in ("fill", "fill-opacity", "opacity", "stroke", "style")}
        e.set("fill", "#000000"); e.set("fill-opacity", "1"); e.set("opacity", "1"); e.set("stroke", "none")
        if "style" in e.attrib:
            del e.attrib["style"]
        rgba = resvg_render(etree.tostring(root).decode(), width, height, background=None)
        out[i] = rgba[..., 3] > 0.5
        for k, v in saved.items():
            if v is None:
                e.attrib.pop(k, None)
            else:
                e.set(k, v)
        e.set("display", "none")
    return out


def _cfg(budget: int, mode: str, args, **kw):
    from lvss.config import VectorizeConfig

    cfg = VectorizeConfig(paths=budget, mode=mode, seed=args.seed, device="cpu", **kw)
    if mode == "compact" and getattr(args, "structural_ratio", None) is not None:
        cfg = replace(cfg, compact=replace(cfg.compact, structural_ratio=args.structural_ratio))
    if mode == "compact" and getattr(args, "error_share", None) is not None:
        cfg = replace(cfg, compact=replace(cfg.compact, error_share=args.error_share))
    if mode == "compact" and getattr(args, "underlap", None) is not None:
        cfg = replace(cfg, compact=replace(cfg.compact, underlap=args.underlap))
    over = {k: v for k, v in (("structure_iters", args.structure_iters), ("refine_iters", args.refine_iters))
            if v is not None}
    if mode == "compact" and args.refine_iters is not None:   # compact's path stage: refinement + polish steps
        cfg = replace(cfg, compact=replace(cfg.compact, path_steps=args.refine_iters + cfg.optimize.polish_iters))
    return replace(cfg, optimize=replace(cfg.optimize, **over)) if over else cfg


def run_lvss(img: np.ndarray, budget: int, mode: str, args) -> tuple[str, float, dict]:
    from lvss.pipeline import run
    from lvss.svg import scene_to_svg

    t, c = time.perf_counter(), time.process_time()
    res = run(img, _cfg(budget, mode, args))
    return scene_to_svg(res.scene), time.perf_counter() - t, dict(res.metrics, cpu_seconds=time.process_time() - c)


def photo_regions(target: np.ndarray, min_pixels: int = 64) -> np.ndarray:
    """(R, H, W) bool reference regions of a photograph, which has no true vector shapes: quick shift
    (scikit-image; neither lvss's segmenter, Felzenszwalb, nor the soup's SLIC) on the picture, regions
    under ``min_pixels`` left out. A proxy: photo VeC says how well paths keep to colour-coherent
    pieces, not to objects."""
    from skimage.segmentation import quickshift

    lab = quickshift(np.asarray(target, np.float64), ratio=0.5, kernel_size=7, max_dist=12, convert2lab=True)
    ids, counts = np.unique(lab, return_counts=True)
    return np.stack([lab == i for i, c in zip(ids, counts) if c >= min_pixels])


def main_table(args) -> list[dict]:
    from lvss.metrics import svg_region_masks

    rows = []
    for name in list(args.images) + list(args.photos):
        _, img = Q.load_input(name)
        target = Q.over_white(img)
        h, w = target.shape[:2]
        photo = name in Q.PHOTOS
        regions = photo_regions(target) if photo else svg_region_masks(Q.OPENMOJI / f"{name}.svg", size=w)
        if not len(regions):  # an SVG of strokes only gives no filled region: no VeC for it
            print(f"  {name}: no ground-truth regions (its SVG fills nothing); VeC left out", flush=True)
            regions = None
        for budget in args.budgets:
            methods = ["compact"] + ([] if args.skip_layered else ["layered"]) + ([] if args.skip_vtracer else ["vtracer"])
            methods = [m for m in methods if not args.methods or m in args.methods]
            for method in methods:
                extra = {}
                try:
                    row = _one(method, img, budget, args, target, regions, w, h, extra)
                except Exception as e:  # a failure of one run (e.g. the SVG writer) is reported, not fatal
                    print(f"  {name} N={budget} {method:8s} FAILED: {type(e).__name__}: {e}", flush=True)
                    rows.append(dict(image=name, kind="photo" if photo else "clip art", budget=budget, method=method,
                                     paths=0, psnr=float("nan"), ssim=float("nan"), vec=float("nan"),
                                     seconds=float("nan"), error=f"{type(e).__name__}: {e}"))
                    continue
                row.update(image=name, kind="photo" if photo else "clip art")
                rows.append(row)
                v = row["vec"]
                split = (f" split {int(extra['structural'])}+{int(extra['details'])}" if "structural" in extra else "")
                print(f"  {name} N={budget} {method:8s} paths {row['paths']:3d} PSNR {row['psnr']:.2f} "
                      f"SSIM {row['ssim']:.3f} VeC {v:.3f} {row['seconds']:.1f} s ({row['cpu_seconds']:.1f} CPU s){split}", flush=True)
    return rows


def _one(method, img, budget, args, target, regions, w, h, extra) -> dict:
    """One method at one budget on one picture: its scores (PSNR, SSIM, VeC, paths, seconds)."""
    from lvss.metrics import vec

    if method == "vtracer":
        c = time.process_time()
        svg, secs, settings, _ = Q.run_vtracer_budget(img, budget)
        extra.update(settings=settings, cpu_seconds=time.process_time() - c)
    else:
        svg, secs, met = run_lvss(img, budget, method, args)
        extra.update({k: met[k] for k in ("regions", "masks", "cluster_seconds", "cpu_seconds", "structural",
                                          "details", "structural_budget", "uncovered") if k in met})
    sc = Q.score(svg, target)
    v = vec(element_masks(svg, w, h), regions) if regions is not None else float("nan")
    if method == "compact":
        extra.update(clean_geometry(svg, img))
    return dict(budget=budget, method=method, paths=Q.count_paths(svg), psnr=sc["psnr"], ssim=sc["ssim"],
                vec=v, seconds=secs, **extra)


def clean_geometry(svg: str, img: np.ndarray) -> dict:
    """The clean-geometry figures of one SVG by bench/editability.py's independent checker: paths that
    cross themselves (or whose contours cross each other), hairs, and the input's opaque pixels
    (eroded by one pixel, as that checker does) the SVG leaves uncovered at 1x."""
    import editability as E

    h, w = img.shape[:2]
    geo = E.check_paths(svg, w, h)
    inp = img if img.dtype == np.uint8 else np.clip(np.round(np.asarray(img) * 255), 0, 255).astype(np.uint8)
    return dict(crossing_paths=geo["crossing_paths"], hairs=geo["hairs"],
                bare=E.seam_counts(svg, inp, scales=(1,))[1]["uncovered"])


def _variants(cfg):
    """Clusterers of the ablation: the recolouring merge as lvss runs it, the same with the other TV
    weight ("fixed", the paper's form and the default, or "fusion", the per-round controller), and the
    baselines (bench/compact_baselines.py)."""
    from compact_baselines import CLUSTERERS

    other = "fusion" if cfg.compact.tv_control == "fixed" else "fixed"
    alt = replace(cfg, compact=replace(cfg.compact, tv_control=other))
    out = [("recolor", CLUSTERERS["recolor"], cfg), (f"recolor-{other}-tv", CLUSTERERS["recolor"], alt)]
    return out + [(m, fn, cfg) for m, fn in CLUSTERERS.items() if m != "recolor"]


def ablation(args) -> tuple[list[dict], str]:
    """Each clusterer on the same mask soup, then the same path stage, at the same final budget."""
    import torch

    from lvss.compact import mask_soup, run_compact
    from lvss.io import load_image
    from lvss.metrics import scene_path_masks, svg_region_masks, vec
    from lvss.pipeline import prepare_image

    try:
        import sklearn  # noqa: F401

        backend = "scikit-learn (KMeans, DBSCAN)"
    except ImportError:
        backend = "scipy (cluster.vq.kmeans2; DBSCAN on scipy.spatial.cKDTree) - scikit-learn not installed"
    rows = []
    for name in args.ablation_images:
        _, img = Q.load_input(name)
        is_emoji = name not in Q.PHOTOS
        cfg = _cfg(args.ablation_emoji_budget if is_emoji else args.ablation_budget, "compact", args)
        rgb, alpha = prepare_image(load_image(img), cfg.work_size)
        h, w = alpha.shape
        soup = mask_soup(rgb, alpha > 0.5, cfg)
        regions = svg_region_masks(Q.OPENMOJI / f"{name}.svg", size=w) if is_emoji else None
        for method, fn, vcfg in _variants(cfg):
            if args.ablation_methods and method not in args.ablation_methods:
                continue
            t = time.perf_counter()
            scene, met = run_compact(rgb, alpha, vcfg, torch.device("cpu"), merge=fn, soup=soup)
            secs = time.perf_counter() - t
            v = vec(scene_path_masks(scene), regions) if is_emoji else float("nan")
            row = dict(image=name, budget=cfg.paths, method=method, masks=int(met["masks"]), atoms=int(met["atoms"]),
                       regions=int(met["regions"]), rounds=int(met["rounds"]), forced=int(met["forced_merges"]),
                       cluster_seconds=met["cluster_seconds"], region_psnr=met.get("region_psnr", float("nan")),
                       psnr=met["psnr"], vec=v, seconds=secs)
            rows.append(row)
            print(f"  ablation {name} {method:16s} soup {row['masks']} masks, {row['atoms']} atoms -> "
                  f"{row['regions']} regions in {row['cluster_seconds']:.2f} s, region PSNR {row['region_psnr']:.2f}, "
                  f"PSNR {row['psnr']:.2f}, VeC {v:.3f}", flush=True)
    return rows, backend


def speed_check(args, n_masks: int = 300, size: int = 256) -> dict:
    """Clustering time for ``n_masks`` masks at size² (a random partition with random colours):
    the recolouring merge down to the structural budget of the first budget, default rounds."""
    from lvss.compact import build_graph, labels_from_masks, recolor_merge, structural_budget
    from lvss.config import CompactConfig

    rng = np.random.default_rng(args.seed)
    sites = rng.uniform(0, size, (n_masks, 2))
    yy, xx = np.mgrid[0:size, 0:size]
    cell = np.argmin(np.stack([(xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 for x, y in sites]), 0)
    rgb = rng.uniform(0, 1, (n_masks, 3)).astype(np.float32)[cell]
    labels = labels_from_masks(np.stack([cell == k for k in range(n_masks)]), np.ones((size, size), bool))
    t = time.perf_counter()
    graph = build_graph(labels, rgb, None)
    budget = structural_budget(64, 0.4)  # the paper's split of 64 paths, as this check always ran
    res = recolor_merge(graph, budget, CompactConfig(), args.seed)
    secs = time.perf_counter() - t
    print(f"  speed: {graph.n} masks at {size}x{size} -> {res.regions} regions in {secs:.2f} s "
          f"({res.rounds} rounds, {res.forced} forced merges)", flush=True)
    return dict(masks=graph.n, size=size, regions=res.regions, rounds=res.rounds, forced=res.forced,
                seconds=secs)


def saliency_check(args) -> dict:
    """A user mask over one object of an emoji, at every budget: detail paths inside the object and
    PSNR inside and outside the mask (resvg render over white against the input) without and with it."""
    import tempfile

    from PIL import Image
    from scipy import ndimage as ndi

    from lvss.metrics import svg_region_masks
    from lvss.pipeline import run
    from lvss.svg import scene_to_svg

    name = args.saliency_image
    _, img = Q.load_input(name)
    target = Q.over_white(img)
    h, w = img.shape[:2]
    regions = svg_region_masks(Q.OPENMOJI / f"{name}.svg", size=w)
    areas = regions.reshape(len(regions), -1).sum(1)
    mid = [i for i in np.argsort(-areas) if areas[i] < 0.25 * h * w]
    obj = regions[mid[0]] if mid else regions[int(np.argmax(areas))]
    user = ndi.binary_dilation(obj, iterations=3)  # a hand-drawn mask is a little generous

    def part_psnr(render, sel):
        m = float(((render[sel] - target[sel]) ** 2).mean())
        return 100.0 if m <= 1e-10 else 10.0 * np.log10(1.0 / m)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mask.png"
        Image.fromarray(np.uint8(user) * 255).save(path)
        for budget in args.saliency_budgets:
            row = dict(budget=budget)
            for label, sal in (("without", None), ("with", str(path))):
                cfg = _cfg(budget, "compact", args)
                if sal:
                    cfg = replace(cfg, saliency=replace(cfg.saliency, source="mask", mask_path=sal))
                res = run(img, cfg)
                sc = Q.score(scene_to_svg(res.scene), target)
                det = [l for l in res.scene.layers if l.name == "Details"]
                pts = [p.points.mean(0) for p in (det[0].paths if det else [])]
                inside = sum(bool(user[min(h - 1, max(0, int(p[1]))), min(w - 1, max(0, int(p[0])))]) for p in pts)
                row[label] = dict(details=len(pts), inside=inside, psnr=sc["psnr"],
                                  psnr_in=part_psnr(sc["render"], user), psnr_out=part_psnr(sc["render"], ~user),
                                  structural=int(res.metrics.get("structural", 0)))
            rows.append(row)
            print(f"  saliency N={budget}: inside {row['without']['psnr_in']:.2f} -> {row['with']['psnr_in']:.2f} dB, "
                  f"outside {row['without']['psnr_out']:.2f} -> {row['with']['psnr_out']:.2f} dB, details inside "
                  f"{row['without']['inside']}/{row['without']['details']} -> {row['with']['inside']}/{row['with']['details']}",
                  flush=True)
    return dict(image=name, object_pixels=int(user.sum()), rows=rows)


def _f(v, nd=2):
    return "–" if v is None or v != v else f"{v:.{nd}f}"


def _ms(vals, nd=2):
    """'mean ± std' (population std) of the finite values."""
    v = [x for x in vals if x == x]
    if not v:
        return "–"
    return f"{statistics.fmean(v):.{nd}f} ± {statistics.pstdev(v):.{nd}f}"


def table1(rows, kind: str) -> list[str]:
    """The recolouring paper's Table 1 layout for one kind of picture: per budget and method, PSNR,
    SSIM, VeC and paths used, each as mean ± standard deviation over the pictures."""
    sel_k = [r for r in rows if r.get("kind", "clip art") == kind]
    if not sel_k:
        return []
    n_img = len({r["image"] for r in sel_k})
    failed = [f"{r['image']} N={r['budget']} {r['method']} ({r['error']})" for r in sel_k if r.get("error")]
    out = [f"### {kind} ({n_img} pictures; mean ± std)", "",
           "| paths N | method | PSNR (dB) ↑ | SSIM ↑ | VeC ↑ | paths used |", "|---:|---|---:|---:|---:|---:|"]
    for b in sorted({r["budget"] for r in sel_k}):
        for m in ("compact", "layered", "vtracer"):
            sel = [r for r in sel_k if r["budget"] == b and r["method"] == m]
            if sel:
                out.append(f"| {b} | {m} | {_ms([r['psnr'] for r in sel])} | {_ms([r['ssim'] for r in sel], 3)} | "
                           f"{_ms([r['vec'] for r in sel], 3)} | {_ms([r['paths'] for r in sel if not r.get('error')], 1)} |")
    if failed:
        out += ["", "Failed runs (left out of the means above and of the goals' comparisons): " + "; ".join(failed)]
    return out


def goals(rows) -> list[str]:
    """The issue's goals, per budget: clip art, compact VeC above layered's and vtracer's and PSNR within
    1 dB of layered's; photographs, compact PSNR >= layered's; compact's PSNR never drops as the
    budget grows, neither the mean nor any picture's."""
    out = []
    mean = lambda sel, k: statistics.fmean(r[k] for r in sel if r[k] == r[k]) if sel else float("nan")  # noqa: E731
    for kind in ("clip art", "photo"):
        sel_k = [r for r in rows if r.get("kind", "clip art") == kind]
        curve = []
        for b in sorted({r["budget"] for r in sel_k}):
            # compared on the pictures where every method ran (a failed run leaves its picture out)
            here = [r for r in sel_k if r["budget"] == b]
            ok_img = {r["image"] for r in here} - {r["image"] for r in here if r.get("error")}
            by = {m: [r for r in here if r["method"] == m and r["image"] in ok_img] for m in ("compact", "layered", "vtracer")}
            if not by["compact"]:
                continue
            cp, cv = mean(by["compact"], "psnr"), mean(by["compact"], "vec")
            curve.append((b, cp))
            if not by["layered"]:
                continue
            lp, lv = mean(by["layered"], "psnr"), mean(by["layered"], "vec")
            vv = mean(by["vtracer"], "vec")
            if kind == "clip art":
                ok = cv > lv and cv > vv and cp >= lp - 1.0
                out.append(f"GOAL clip art N={b}: VeC compact {cv:.3f} vs layered {lv:.3f} / vtracer {vv:.3f}; PSNR "
                           f"compact {cp:.2f} vs layered {lp:.2f} ({cp - lp:+.2f} dB, goal >= -1): "
                           f"{'REACHED' if ok else 'NOT REACHED'}")
            else:
                ok = cp >= lp
                out.append(f"GOAL photo N={b}: PSNR compact {cp:.2f} vs layered {lp:.2f} ({cp - lp:+.2f} dB, goal >= 0); "
                           f"VeC compact {cv:.3f}, layered {lv:.3f}, vtracer {vv:.3f}: {'REACHED' if ok else 'NOT REACHED'}")
        comp = [r for r in sel_k if r["method"] == "compact" and "hairs" in r]
        if comp:
            bad = [f"{r['image']} N={r['budget']}" for r in comp if r["crossing_paths"] or r["hairs"] or r["bare"]]
            out.append(f"GOAL {kind} clean geometry (compact, {len(comp)} SVGs): self-crossing paths "
                       f"{sum(r['crossing_paths'] for r in comp)}, hairs {sum(r['hairs'] for r in comp)}, uncovered "
                       f"opaque px {sum(r['bare'] for r in comp)}: " + ("REACHED" if not bad else f"NOT REACHED ({', '.join(bad)})"))
        if len(curve) > 1:
            drops = [(a, b) for (a, pa), (b, pb) in zip(curve, curve[1:]) if pb < pa]
            # and per picture: every step from one budget to the next
            own = {}
            for r in sel_k:
                if r["method"] == "compact" and r["psnr"] == r["psnr"]:
                    own.setdefault(r["image"], {})[r["budget"]] = r["psnr"]
            steps = [(im, a, b) for im, c in own.items() for a, b in zip(sorted(c), sorted(c)[1:])]
            fell = [f"{im} {a}->{b}" for im, a, b in steps if own[im][b] < own[im][a]]
            out.append(f"GOAL {kind} budget curve (compact mean PSNR {' / '.join(f'{p:.2f}' for _, p in curve)}; "
                       f"per picture {len(fell)} of {len(steps)} steps drop{': ' + ', '.join(fell) if fell else ''}): "
                       + ("never drops: REACHED" if not drops and not fell else
                          f"drops at {drops or 'no mean step'}: NOT REACHED"))
    return out


def report(main_rows, abl_rows, backend, sal, speed=None) -> str:
    out = []
    if main_rows:
        out += ["## Compact vs layered vs vtracer (resvg over white)", ""]
        for kind in ("clip art", "photo"):
            t = table1(main_rows, kind)
            if t:
                out += t + [""]
        out += goals(main_rows) + [""]
        out += ["### Per picture", "",
                "| image | budget | method | paths | split (regions + details) | PSNR dB | SSIM | VeC | seconds | CPU s |",
                "|---|---:|---|---:|---|---:|---:|---:|---:|---:|"]
        out += [f"| {r['image']} | {r['budget']} | {r['method']} | {r['paths']} | "
                f"{(str(int(r['structural'])) + ' + ' + str(int(r['details']))) if 'structural' in r else ''} | {_f(r['psnr'])} | "
                f"{_f(r['ssim'], 3)} | {_f(r['vec'], 3)} | {_f(r['seconds'], 1)} | {_f(r.get('cpu_seconds'), 1)} |"
                for r in main_rows]
    if abl_rows:
        out += ["", f"## Merge ablation (same soup, same final budget, same path stage; backend: {backend})", "",
                "| image | budget | method | soup masks | atoms | regions | rounds | forced merges | cluster s | region PSNR | PSNR | VeC |",
                "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        out += [f"| {r['image']} | {r['budget']} | {r['method']} | {r['masks']} | {r['atoms']} | {r['regions']} | {r['rounds']} | "
                f"{r['forced']} | {r['cluster_seconds']:.2f} | {_f(r['region_psnr'])} | {r['psnr']:.2f} | {_f(r['vec'], 3)} |"
                for r in abl_rows]
        out += ["", "| method | images | mean region PSNR | mean PSNR | mean VeC (clip art) | max cluster s |",
                "|---|---:|---:|---:|---:|---:|"]
        means = {}
        for m in dict.fromkeys(r["method"] for r in abl_rows):
            sel = [r for r in abl_rows if r["method"] == m]
            vs = [r["vec"] for r in sel if r["vec"] == r["vec"]]
            means[m] = (statistics.fmean(r["psnr"] for r in sel), statistics.fmean(vs) if vs else float("nan"))
            out.append(f"| {m} | {len(sel)} | {statistics.fmean(r['region_psnr'] for r in sel):.2f} | "
                       f"{means[m][0]:.2f} | {_f(means[m][1], 3)} | {max(r['cluster_seconds'] for r in sel):.2f} |")
        if "recolor" in means:
            rp, rv = means["recolor"]
            for m in ("kmeans", "dbscan"):
                if m in means:
                    ok = rp > means[m][0] and rv > means[m][1]
                    out.append(f"\nGOAL recolor vs {m}: PSNR {rp:.2f} vs {means[m][0]:.2f}, VeC {rv:.3f} vs "
                               f"{means[m][1]:.3f}: {'REACHED' if ok else 'NOT REACHED'}")
    if speed:
        out += ["", f"GOAL clustering speed: {speed['masks']} masks at {speed['size']}² -> {speed['regions']} "
                f"regions in {speed['seconds']:.2f} s (goal <= 10 s): "
                f"{'REACHED' if speed['seconds'] <= 10 else 'NOT REACHED'}"]
    if sal:
        out += ["", f"## Saliency (user mask over one object of {sal['image']}, {sal['object_pixels']} px)", "",
                "| paths N | PSNR inside, no mask | PSNR inside, mask | PSNR outside, no mask | PSNR outside, mask | "
                "details inside (no mask / mask) |", "|---:|---:|---:|---:|---:|---:|"]
        ok_all = True
        for r in sal["rows"]:
            a, b = r["without"], r["with"]
            ok_all &= b["psnr_in"] > a["psnr_in"] and b["psnr_out"] < a["psnr_out"]
            out.append(f"| {r['budget']} | {a['psnr_in']:.2f} | {b['psnr_in']:.2f} | {a['psnr_out']:.2f} | "
                       f"{b['psnr_out']:.2f} | {a['inside']}/{a['details']} / {b['inside']}/{b['details']} |")
        out.append(f"\nGOAL saliency: inside the mask fidelity rises and outside it falls at every budget: "
                   f"{'REACHED' if ok_all else 'NOT REACHED'}")
    return "\n".join(out)


def main(argv=None) -> int:
    import torch

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 emoji at budgets 64 and 128, small ablation")
    ap.add_argument("--images", nargs="*", metavar="CODE", help="OpenMoji codes (default: all)")
    ap.add_argument("--photos", nargs="*", metavar="NAME", help=f"photographs (default: {' '.join(PHOTOS)})")
    ap.add_argument("--saliency-image", default=SALIENCY_IMAGE, metavar="CODE")
    ap.add_argument("--saliency-budgets", nargs="+", type=int, metavar="N", help="default: the budgets")
    ap.add_argument("--combine", nargs="+", metavar="DIR", help="only print the report of these runs' results.json together")
    ap.add_argument("--budgets", nargs="+", type=int, metavar="N")
    ap.add_argument("--ablation-images", nargs="+", metavar="NAME")
    ap.add_argument("--ablation-budget", type=int, default=64, help="ablation path budget, photographs")
    ap.add_argument("--ablation-emoji-budget", type=int, default=64, help="ablation path budget, clip art")
    ap.add_argument("--ablation-methods", nargs="+", metavar="METHOD",
                    help="only these clusterers in the ablation (recolor recolor-fusion-tv kmeans dbscan ward)")
    ap.add_argument("--skip-layered", action="store_true", help="leave layered mode out (it is the slow one)")
    ap.add_argument("--skip-vtracer", action="store_true", help="leave vtracer out")
    ap.add_argument("--methods", nargs="+", choices=("compact", "layered", "vtracer"), help="only these in the main table")
    ap.add_argument("--skip", nargs="+", default=[], choices=("main", "ablation", "saliency"))
    ap.add_argument("--structure-iters", type=int)
    ap.add_argument("--refine-iters", type=int)
    ap.add_argument("--structural-ratio", type=float, help="compact mode's share of the budget for merged regions")
    ap.add_argument("--error-share", type=float, help="compact mode: share of detail circles placed at the error")
    ap.add_argument("--underlap", type=int, help="compact mode: px a region's path reaches under the ones in front")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "compact"))
    args = ap.parse_args(argv)
    if args.combine:
        parts = [json.loads((Path(d) / "results.json").read_text()) for d in args.combine]
        main_rows = [r for p in parts for r in p["main"]]
        abl = [r for p in parts for r in p["ablation"]]
        sals = [p["saliency"] for p in parts if p.get("saliency")]
        sal = dict(sals[0], rows=sorted((r for x in sals for r in x["rows"]), key=lambda r: r["budget"])) if sals else None
        speed = next((p["speed"] for p in parts if p.get("speed")), None)
        text = report(main_rows, abl, next((p["backend"] for p in parts if p.get("backend")), ""), sal, speed)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.md").write_text(text + "\n")
        print(text)
        return 0
    args.images = (list(QUICK_IMAGES) if args.quick else emoji_names()) if args.images is None else args.images
    args.photos = (list(QUICK_PHOTOS) if args.quick else list(PHOTOS)) if args.photos is None else args.photos
    args.budgets = args.budgets or list(QUICK_BUDGETS if args.quick else BUDGETS)
    args.saliency_budgets = args.saliency_budgets or list(args.budgets)
    args.ablation_images = args.ablation_images or list(QUICK_ABLATION if args.quick else ABLATION_IMAGES)
    t0 = time.perf_counter()
    main_rows = main_table(args) if "main" not in args.skip else []
    abl_rows, backend = ablation(args) if "ablation" not in args.skip else ([], "")
    speed = speed_check(args) if "ablation" not in args.skip else None
    sal = saliency_check(args) if "saliency" not in args.skip else None
    text = report(main_rows, abl_rows, backend, sal, speed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps(dict(main=main_rows, ablation=abl_rows, backend=backend,
                                                      saliency=sal, speed=speed, args=vars(args)), indent=1, default=float))
    print(text)
    print(f"\n{time.perf_counter() - t0:.0f} s in all; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
