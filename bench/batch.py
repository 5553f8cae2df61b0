"""Batch throughput: images per minute for a shell loop of ``lvss vectorize``, ``lvss batch`` with one
and two local workers, and ``lvss.batch`` on a local Ray with two CPUs, side by side in one run.

The images are the shared OpenMoji PNGs (256², when ../shared/data/openmoji exists) and photographs
shipped with scikit-image (scaled to a 256-pixel long side), in two subfolders. Every run is a fresh
process timed from start to exit, so start-up costs count as they do for a user: the shell loop pays
the imports once per image, the batch engines once per worker. The SVGs of every engine are compared
byte for byte with the shell loop's.

    PYTHONPATH=. python bench/batch.py [--images 24] [--paths 64] [--engines shell,local1,local2,ray]
                                       [--ray-cpus 2] [--keep DIR] [-- extra lvss vectorize options]

Goal on a 2-core machine: the local engine with 2 workers at least 1.8x the shell loop. The end of
the output works out, on paper, how throughput grows with the nodes of a Ray cluster of GPU machines
from the per-image GPU time of the learned pipeline (``--gpu-seconds-per-image``, measured with
bench/models.py on a CUDA machine).
"""
from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPENMOJI = ROOT.parent / "shared" / "data" / "openmoji"
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "camera",
          "colorwheel", "logo", "retina", "moon", "coins")
ENGINES = ("shell", "local1", "local2", "ray")


def make_images(folder: Path, n: int) -> list[Path]:
    """n PNGs: OpenMoji first (when present), then scikit-image photographs, alternating folders."""
    import numpy as np
    import skimage.data
    from PIL import Image

    sources = []
    if OPENMOJI.is_dir():
        sources += [("openmoji", p.stem, lambda p=p: Image.open(p).convert("RGB")) for p in sorted(OPENMOJI.glob("*.png"))]

    def photo(name):
        a = getattr(skimage.data, name)()
        a = (a * 255).astype(np.uint8) if a.dtype == bool else a
        im = Image.fromarray(a).convert("RGB")
        s = 256 / max(im.size)
        return im.resize((max(2, round(im.width * s)), max(2, round(im.height * s))), Image.LANCZOS)

    sources += [("photos", name, lambda name=name: photo(name)) for name in PHOTOS]
    if n > len(sources):
        raise SystemExit(f"--images {n}: only {len(sources)} images available here")
    out = []
    for sub, name, load in sources[:n]:
        p = folder / sub / f"{name}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        load().save(p)
        out.append(p)
    return out


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _timed(cmd: list[str], ok=(0,)) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
    secs = time.perf_counter() - t
    if r.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd[:6])} ... failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return secs


def run_shell(inp: Path, out: Path, opts: list[str]) -> float:
    """A plain shell loop, one ``lvss vectorize`` process per image (default thread policy)."""
    q = " ".join(f"'{o}'" for o in opts)
    script = (f'cd "{inp}" && for f in */*.png; do mkdir -p "{out}/$(dirname "$f")" && '
              f'"{sys.executable}" -m lvss vectorize "$f" -o "{out}/${{f%.png}}.svg" {q} -q || exit 1; done')
    return _timed(["bash", "-c", script])


def run_local(inp: Path, out: Path, opts: list[str], workers: int) -> float:
    return _timed([sys.executable, "-m", "lvss", "batch", str(inp), "-o", str(out), *opts, "--workers",
                   str(workers), "--no-resume", "-q", "--json"])


def run_ray(inp: Path, out: Path, opts: list[str], cpus: int) -> float:
    """A fresh process: ``ray.init(num_cpus=cpus)``, then ``lvss.batch`` with the Ray engine."""
    return _timed([sys.executable, str(Path(__file__).resolve()), "--ray-child", str(inp), str(out), str(cpus),
                   "--", *opts])


def ray_child(inp: str, out: str, cpus: int, opts: list[str]) -> None:
    import ray

    import lvss
    from lvss.cli import build_parser, config_from_args

    cfg = config_from_args(build_parser().parse_args(["batch", inp, "-o", out, *opts]))
    ray.init(num_cpus=cpus, include_dashboard=False, logging_level="ERROR")
    rows = lvss.batch(inp, out, cfg, engine="ray", resume=False)
    ray.shutdown()
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        raise SystemExit(f"Ray batch: {len(bad)} images failed: {bad[0]['error']}")


def same_svgs(a: Path, b: Path) -> str:
    names = sorted(p.relative_to(a) for p in a.rglob("*.svg"))
    if names != sorted(p.relative_to(b) for p in b.rglob("*.svg")):
        return "different files"
    diff = sum(not filecmp.cmp(a / n, b / n, shallow=False) for n in names)
    return "byte-identical" if diff == 0 else f"{diff} of {len(names)} differ"


def scaling_on_paper(gpu_seconds: float | None, driver_ms: float, mean_kb: float) -> str:
    lines = ["", "On paper: a Ray cluster of GPU machines (lvss batch --ray ADDRESS --device cuda)"]
    lines.append("  Each actor holds one GPU (--gpus-per-worker 1) with the learned models loaded once; the "
                 "driver reads an image,")
    lines.append(f"  ships its bytes, writes the SVG and a manifest line: {driver_ms:.1f} ms of driver time per "
                 "image here (reading, hashing, writing;")
    lines.append("  Ray's per-task overhead comes on top), so throughput = GPUs x 60 / t_gpu images/min until "
                 f"the driver saturates (~{60000 / max(driver_ms, 1e-3):,.0f} images/min by that figure).")
    if gpu_seconds is None:
        lines.append("  t_gpu, the per-image GPU time of the learned pipeline, was not given: measure it with "
                     "bench/models.py on a CUDA machine")
        lines.append("  (SAM automatic masks on every level + SDS iterations + CLIP saliency) and pass "
                     "--gpu-seconds-per-image.")
        return "\n".join(lines)
    lines.append(f"  with t_gpu = {gpu_seconds:g} s per image (from bench/models.py):")
    lines.append(f"  {'nodes x GPUs':<14}{'GPUs':>6}{'images/min':>12}{'10k images':>12}")
    for nodes in (1, 2, 4, 8, 16):
        for per in (1, 8):
            g = nodes * per
            rate = min(g * 60.0 / gpu_seconds, 60000 / max(driver_ms, 1e-3))
            lines.append(f"  {f'{nodes} x {per}':<14}{g:>6}{rate:>12.1f}{10000 / rate / 60:>10.1f} h")
    lines.append("  Scaling is linear in GPUs: images are independent, actors never talk to each other, and "
                 f"each image's bytes ({mean_kb:.0f} kB on average here) cost the network little.")
    lines.append("  When the CPU parts of an image (contours, layering) leave the GPU idle, --gpus-per-worker "
                 "0.5 puts two actors on each GPU.")
    return "\n".join(lines)


def driver_ms_per_image(inp: Path, n: int) -> float:
    """Driver-side cost per image without vectorizing: hashing, reading the bytes, an atomic write and
    a manifest line (what the driver does for every image whatever the engine)."""
    import hashlib

    from lvss.io import atomic_write

    files = sorted(inp.rglob("*.png"))
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        with open(Path(d) / "m.jsonl", "a") as man:
            for i, f in enumerate(files):
                data = f.read_bytes()
                h = hashlib.sha256(data).hexdigest()
                atomic_write(Path(d) / f"{i}.svg", "<svg/>" * 1000)
                man.write(json.dumps({"input": str(f), "sha": h}) + "\n")
                man.flush()
        return (time.perf_counter() - t) * 1000 / max(1, len(files))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    if argv[:1] == ["--ray-child"]:
        ray_child(argv[1], argv[2], int(argv[3]), extra)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=24, help="how many images (default 24)")
    ap.add_argument("--paths", type=int, default=64, help="path budget (default 64)")
    ap.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated subset of {','.join(ENGINES)}")
    ap.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray (default 2)")
    ap.add_argument("--gpu-seconds-per-image", type=float, default=None,
                    help="per-image GPU seconds of the learned pipeline, for the cluster estimate")
    ap.add_argument("--keep", metavar="DIR", help="keep inputs and outputs in DIR")
    args = ap.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        ap.error(f"unknown engines: {', '.join(sorted(unknown))}")
    opts = ["--paths", str(args.paths), *extra]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lvss-bench-batch-"))
    if work.exists() and args.keep:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    inp = work / "in"
    imgs = make_images(inp, args.images)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{len(imgs)} images ({sum(1 for p in imgs if p.parent.name == 'openmoji')} OpenMoji, "
          f"{sum(1 for p in imgs if p.parent.name == 'photos')} photos), options: {' '.join(opts)}")
    print(f"machine: {cores} cores, load average {load0:.2f} at start (other processes share these cores: "
          "figures from a shared machine are noisy)")
    results = []
    for e in engines:
        out = work / f"out_{e}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        if e == "shell":
            secs = run_shell(inp, out, opts)
            label = "shell loop of lvss vectorize"
        elif e.startswith("local"):
            w = int(e[len("local"):])
            secs = run_local(inp, out, opts, w)
            label = f"lvss batch, local, {w} worker{'s' if w > 1 else ''}"
        else:
            secs = run_ray(inp, out, opts, args.ray_cpus)
            label = f"lvss.batch, Ray, {args.ray_cpus} CPUs"
        results.append((e, label, secs, out))
        print(f"  done: {label}: {secs:.1f} s", flush=True)
    base = next((s for e, _, s, _ in results if e == "shell"), None)
    ref = next((o for e, _, _, o in results if e == "shell"), results[0][3])
    print()
    print(f"{'engine':<34}{'seconds':>9}{'images/min':>12}{'vs shell':>10}  SVGs vs {'shell loop' if base else 'first'}")
    for e, label, secs, out in results:
        rate = 60.0 * len(imgs) / secs
        speed = f"{base / secs:.2f}x" if base else "-"
        same = "-" if out == ref else same_svgs(ref, out)
        print(f"{label:<34}{secs:>9.1f}{rate:>12.1f}{speed:>10}  {same}")
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load1:.2f} at the end")
    l2 = next((s for e, _, s, _ in results if e == "local2"), None)
    if base and l2:
        print(f"goal: local engine with 2 workers >= 1.8x the shell loop: {base / l2:.2f}x "
              f"({'met' if base / l2 >= 1.8 else 'not met'})")
    mean_kb = sum(p.stat().st_size for p in imgs) / len(imgs) / 1024
    print(scaling_on_paper(args.gpu_seconds_per_image, driver_ms_per_image(inp, len(imgs)), mean_kb))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
