"""Speed benchmark: end-to-end ``lvss vectorize`` runs (process start to SVG written), as a user meets
them, plus the contention run (one job alone vs two at once on the same machine).

For every image (the OpenMoji ``*_256.png`` files; ``--photos`` adds scikit-image's astronaut, coffee,
chelsea and rocket at 256 px) and every preset, it runs ``lvss vectorize --json`` in a fresh process
``--repeat`` times and prints, per image: the median wall seconds, the seconds per stage (from
``--json``), paths used of the budget and PSNR. Then the medians over the set.

Contention (``--contention``): the same image run alone, then two copies started together, each
``--repeat`` times, median wall seconds of each, and the ratio (goal: two at once each within 2.3x
of one alone). The thread policy is what a user gets by default (``lvss.threads``); ``--threads N``
passes ``--threads N`` to every run instead.

    PYTHONPATH=. python bench/speed.py [--images 1F344 1F6B2] [--photos] [--quality fast balanced]
                                       [--paths N] [--repeat 3] [--contention] [--threads N]
                                       [--against REV_OR_DIR] [--resvg]

``--against REV_OR_DIR`` runs every measurement also with another source tree (a directory holding an
``lvss`` package, or a git revision, checked out with ``git worktree add`` under the system's temporary
folder), taking turns run by run (which tree goes first alternates), so that both meet the same machine
load; it prints both trees' median wall and CPU seconds (the process's user + system time, from
``wait4``), their ratio, PSNR and whether the two SVGs are byte-identical. ``--resvg`` also scores
every SVG with resvg against the input over white (the pipeline's own PSNR is at the working size).
``--imports`` runs the first image and preset ``--repeat`` times under ``python -X importtime`` in every
tree and prints the median seconds spent importing (the sum of the top-level imports) and how many
modules a run imports.

Wall seconds depend on what else the machine runs: the script prints the 1-minute load average
before and after, and figures are fair only on an otherwise idle machine, or side by side.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from trees import other_tree  # noqa: E402  (bench/trees.py)
OPENMOJI = Path(os.environ.get("LVSS_OPENMOJI", "/work/shared/data/openmoji"))
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def _photo(name: str, out: Path) -> Path:
    from PIL import Image
    from skimage import data

    arr = getattr(data, name)()
    im = Image.fromarray(arr[..., :3] if arr.ndim == 3 else arr).convert("RGB")
    s = 256 / max(im.size)
    im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
    p = out / f"{name}.png"
    im.save(p)
    return p


def inputs(names: list[str] | None, photos: bool, tmp: Path) -> list[tuple[str, Path]]:
    out = []
    if names:
        for n in names:
            if n in PHOTOS:
                out.append((n, _photo(n, tmp)))
            else:
                p = OPENMOJI / f"{n}_256.png"
                if not p.is_file():
                    raise SystemExit(f"no image {p}")
                out.append((n, p))
        return out
    out = [(p.name.split("_")[0], p) for p in sorted(OPENMOJI.glob("*_256.png"))]
    if photos:
        out += [(n, _photo(n, tmp)) for n in PHOTOS]
    return out


def command(image: Path, out: Path, quality: str, paths: int | None, threads: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "lvss.cli", "vectorize", str(image), "-o", str(out), "--json", "-q",
           "--quality", quality]
    if paths:
        cmd += ["--paths", str(paths)]
    if threads:
        cmd += ["--threads", str(threads)]
    return cmd


def _env(tree: Path) -> dict:
    """The environment of a run of ``tree``: its ``lvss`` first on PYTHONPATH, and its ``server/`` as
    ``lvss_server`` (``lvss`` imports the server's options from ``lvss_server`` when that is installed,
    which may be another checkout's)."""
    shim = Path(tempfile.gettempdir()) / f"lvss-speed-shim-{hashlib.sha1(str(tree).encode()).hexdigest()[:12]}"
    link = shim / "lvss_server"
    if not link.exists():
        shim.mkdir(exist_ok=True)
        link.symlink_to(tree / "server", target_is_directory=True)
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), str(shim), os.environ.get("PYTHONPATH", "")]))


def _wait(proc: subprocess.Popen) -> float:
    """Wait for ``proc``; its CPU seconds (user + system, children included)."""
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ru.ru_utime + ru.ru_stime


def run_once(cmd: list[str], tree: Path = ROOT) -> tuple[float, float, dict]:
    """One run of ``cmd`` with ``tree`` first on PYTHONPATH: (wall s, CPU s, its --json output)."""
    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, cwd=tree, env=_env(tree))
        cpu = _wait(proc)
        wall = time.perf_counter() - t
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}) in {tree}: {' '.join(cmd)}\n{err[-2000:]}")
    return wall, cpu, json.loads(out)


def run_pair(cmd_a: list[str], cmd_b: list[str], tree: Path = ROOT) -> tuple[float, float, float, float]:
    """Both commands started together: (wall a, wall b, CPU a, CPU b)."""
    t = time.perf_counter()
    errs = [tempfile.TemporaryFile("w+") for _ in range(2)]
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=e, cwd=tree, env=_env(tree))
             for c, e in zip((cmd_a, cmd_b), errs)]
    walls, cpus = [], []
    for p, e in zip(procs, errs):
        cpus.append(_wait(p))
        walls.append(time.perf_counter() - t)
        e.seek(0)
        msg = e.read()
        e.close()
        if p.returncode != 0:
            raise SystemExit(f"a concurrent run failed: {msg[-2000:]}")
    return walls[0], walls[1], cpus[0], cpus[1]


def _tree(rev_or_dir: str) -> Path:
    return other_tree(rev_or_dir, "--against")


def _resvg_psnr(svg: Path, image: Path) -> float:
    import numpy as np
    from PIL import Image

    from lvss.metrics import psnr
    from lvss.testing import resvg_render

    a = np.asarray(Image.open(image).convert("RGBA")).astype(np.float32) / 255
    ref = a[..., :3] * a[..., 3:] + (1 - a[..., 3:])  # over white, as resvg_render
    return psnr(resvg_render(svg.read_text(), ref.shape[1], ref.shape[0]), ref)


def _med(v: list[float]) -> float:
    return statistics.median(v) if v else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", nargs="*", help="OpenMoji codes or photo names (default: every OpenMoji image)")
    ap.add_argument("--photos", action="store_true", help="add the four photographs")
    ap.add_argument("--quality", nargs="*", default=["balanced"], choices=("fast", "balanced", "best"))
    ap.add_argument("--paths", type=int, default=None, help="budget (default: the preset's)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--contention", action="store_true", help="one alone vs two at once (first image)")
    ap.add_argument("--against", metavar="REV_OR_DIR", help="also run another source tree, taking turns")
    ap.add_argument("--resvg", action="store_true", help="also score the SVGs with resvg")
    ap.add_argument("--imports", action="store_true", help="seconds a run spends importing (-X importtime)")
    args = ap.parse_args(argv)
    trees = [("this", ROOT)]
    if args.against:
        trees.append(("other", _tree(args.against)))
        print(f"this tree: {ROOT}; other tree: {trees[1][1]}")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ims = inputs(args.images, args.photos, tmp)
        for q in args.quality:
            rows = []
            print(f"\n## quality {q}" + (f", {args.paths} paths" if args.paths else ""))
            if args.against:
                print("| image | wall s other → this | CPU s other → this | PSNR other → this | "
                      + ("resvg dB other → this | " if args.resvg else "") + "same SVG |")
                print("|---|---|---|---|" + ("---|" if args.resvg else "") + "---|")
            else:
                print("| image | wall s (median) | CPU s | load | simplify | segment | layering | structure | "
                      "refine | paths / budget | PSNR |" + (" resvg dB |" if args.resvg else ""))
                print("|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if args.resvg else ""))
            for name, path in ims:
                got = {tag: {"wall": [], "cpu": [], "info": None, "svg": None} for tag, _ in trees}
                for r in range(args.repeat):
                    order = trees if r % 2 == 0 else trees[::-1]
                    for tag, tree in order:
                        svg = tmp / f"{name}_{q}_{tag}.svg"
                        w, c, info = run_once(command(path, svg, q, args.paths, args.threads), tree)
                        g = got[tag]
                        g["wall"].append(w)
                        g["cpu"].append(c)
                        g["info"], g["svg"] = info, svg
                res = {}
                for tag, _ in trees:
                    g = got[tag]
                    res[tag] = (_med(g["wall"]), _med(g["cpu"]), g["info"]["psnr"],
                                _resvg_psnr(g["svg"], path) if args.resvg else None)
                rows.append((name, res))
                t = got["this"]["info"]["timings"]
                w, c, db, rv = res["this"]
                if args.against:
                    wo, co, dbo, rvo = res["other"]
                    same = got["this"]["svg"].read_bytes() == got["other"]["svg"].read_bytes()
                    print(f"| {name} | {wo:.2f} → {w:.2f} ({w / wo:.2f}×) | {co:.2f} → {c:.2f} ({c / co:.2f}×) | "
                          f"{dbo:.2f} → {db:.2f} | " + (f"{rvo:.2f} → {rv:.2f} | " if args.resvg else "")
                          + ("yes" if same else "no") + " |")
                else:
                    info = got["this"]["info"]
                    print(f"| {name} | {w:.2f} | {c:.2f} | {t.get('load', 0):.2f} | {t.get('simplify', 0):.2f} | "
                          f"{t.get('segment', 0):.2f} | {t.get('layering', 0):.2f} | {t.get('structure', 0):.2f} | "
                          f"{t.get('refine', t.get('compact', 0)):.2f} | {info['paths']} / {info.get('budget')} | "
                          f"{db:.2f} |" + (f" {rv:.2f} |" if args.resvg else ""))
            for tag, _ in trees:
                r = [row[1][tag] for row in rows]
                print(f"\nquality {q}, {tag}: median wall {_med([x[0] for x in r]):.2f} s, median CPU "
                      f"{_med([x[1] for x in r]):.2f} s, mean PSNR {statistics.fmean(x[2] for x in r):.2f} dB"
                      + (f", resvg {statistics.fmean(x[3] for x in r):.2f} dB" if args.resvg else "")
                      + f" over {len(r)} images")
        if args.imports:
            name, path = ims[0]
            q = args.quality[0]
            got = {tag: ([], []) for tag, _ in trees}
            for r in range(args.repeat):
                for tag, tree in (trees if r % 2 == 0 else trees[::-1]):
                    cmd = command(path, tmp / "i.svg", q, args.paths, args.threads)
                    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True,
                                          cwd=tree, env=_env(tree))
                    if proc.returncode != 0:
                        raise SystemExit(f"failed in {tree}: {proc.stderr[-2000:]}")
                    rows = [ln.split("|") for ln in proc.stderr.splitlines() if ln.startswith("import time:")
                            and "self [us]" not in ln]
                    top = [int(c) for _, c, n in rows if not n.startswith("  ")]
                    got[tag][0].append(sum(top) / 1e6)
                    got[tag][1].append(len(rows))
            for tag, _ in trees:
                print(f"\nimports ({name}, {q}, {tag}): {_med(got[tag][0]):.2f} s importing, "
                      f"{int(_med(got[tag][1]))} modules")
        if args.contention:
            name, path = ims[0]
            q = args.quality[0]
            cont = {tag: {"alone": [], "pair": [], "alone_cpu": [], "pair_cpu": []} for tag, _ in trees}
            for r in range(args.repeat):
                for tag, tree in (trees if r % 2 == 0 else trees[::-1]):
                    c = cont[tag]
                    w, cpu, _ = run_once(command(path, tmp / "a.svg", q, args.paths, args.threads), tree)
                    c["alone"].append(w)
                    c["alone_cpu"].append(cpu)
                    a, b, ca, cb = run_pair(command(path, tmp / "b.svg", q, args.paths, args.threads),
                                            command(path, tmp / "c.svg", q, args.paths, args.threads), tree)
                    c["pair"] += [a, b]
                    c["pair_cpu"] += [ca, cb]
            for tag, _ in trees:
                c = cont[tag]
                ma, mp = _med(c["alone"]), _med(c["pair"])
                print(f"\ncontention ({name}, {q}, {tag}): alone {ma:.2f} s ({_med(c['alone_cpu']):.2f} CPU s), "
                      f"two at once {mp:.2f} s each (max {max(c['pair']):.2f}; {_med(c['pair_cpu']):.2f} CPU s), "
                      f"ratio {mp / ma:.2f} (goal <= 2.3)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
