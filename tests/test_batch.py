"""``lvss batch`` and ``lvss.batch``: a folder of ten small images in nested subfolders plus two bad
files, through the local engine (command line and Python API) and a local Ray.

SVGs must be byte-identical to ``lvss vectorize`` with the same options; the manifest complete; bad
files recorded with their reason; an interrupted batch resumed without redoing what finished; a
changed option or image redone. Worker processes are costly to start on a small machine, so the
runs are module fixtures shared by the tests that look at them."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lvss
from lvss.batch import (MANIFEST, Batch, BatchError, collect_inputs, config_sha256, effective_config,
                        process_bytes, read_manifest)
from lvss.cli import build_parser, config_from_args, main
from lvss.testing import png_declaring

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--paths", "6", "--levels", "1", "--structure-iters", "4", "--refine-iters", "4", "--work-size", "32",
        "--seed", "3"]
GOOD = ["a.png", "b.jpg", "g.bmp", "j.png", "other/h.png", "other/i.tif", "sub/c.png", "sub/d.png",
        "sub/deeper/e.png", "sub/deeper/f.webp"]
BAD = ["bad/notes.png", "bad/truncated.png"]


def _image(i: int, size: tuple[int, int]) -> np.ndarray:
    """A small picture: a coloured background with a disc and a bar that differ per image."""
    w, h = size
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[:h, :w]
    img = np.empty((h, w, 3), np.uint8)
    img[:] = rng.integers(150, 256, 3)
    cx, cy, r = rng.integers(8, w - 8), rng.integers(8, h - 8), rng.integers(5, 10)
    img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.integers(0, 120, 3)
    x0 = rng.integers(0, w - 10)
    img[h // 3: h // 3 + 5, x0: x0 + 10] = rng.integers(0, 256, 3)
    return img


def _make_tree(root: Path) -> Path:
    for i, name in enumerate(GOOD):
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_image(i, (32 + 2 * (i % 3), 32 + 2 * (i % 4)))).save(p)
    (root / "bad").mkdir()
    png = (root / "a.png").read_bytes()
    (root / "bad/truncated.png").write_bytes(png[: len(png) // 2])
    (root / "bad/notes.png").write_text("meeting notes, not a picture\n")
    (root / "readme.txt").write_text("not an image: left out of folder scans\n")
    (root / ".cache").mkdir()
    Image.fromarray(_image(99, (32, 32))).save(root / ".cache/thumb.png")  # hidden: left out
    return root


def _cfg(*extra: str):
    return config_from_args(build_parser().parse_args(["batch", "x", "-o", "y", *FAST, *extra]))


def _lvss(*args: str) -> list[str]:
    return [sys.executable, "-m", "lvss", *args]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _files(d: Path) -> set[str]:
    return {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}


def _svgs(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in d.rglob("*.svg")}


def _svg_name(name: str) -> str:
    return name.rsplit(".", 1)[0] + ".svg"


def _stamp(p: Path) -> tuple[int, int]:
    st = p.stat()
    return st.st_ino, st.st_mtime_ns


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return _make_tree(tmp_path_factory.mktemp("batch_in") / "images")


@pytest.fixture(scope="module")
def reference(tree, tmp_path_factory) -> dict[str, bytes]:
    """``lvss vectorize`` (the command's own code, in this process) on every good image."""
    d = tmp_path_factory.mktemp("batch_ref")
    out = {}
    for name in GOOD:
        dest = d / _svg_name(name).replace("/", "__")
        assert main(["vectorize", str(tree / name), "-o", str(dest), *FAST, "-q", "--threads", "1"]) == 0
        out[_svg_name(name)] = dest.read_bytes()
    return out


@pytest.fixture(scope="module")
def cli_run(tree, tmp_path_factory):
    """``lvss batch TREE -o OUT`` as a subprocess with two workers."""
    out = tmp_path_factory.mktemp("batch_out") / "svg"
    r = subprocess.run(_lvss("batch", str(tree), "-o", str(out), *FAST, "--workers", "2", "--threads", "1",
                             "--json"), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    return r, out


# ------------------------------------------------------------------------------------------------
# the local engine through the command line
# ------------------------------------------------------------------------------------------------
def test_cli_exit_status_and_summary(cli_run):
    r, out = cli_run
    assert r.returncode == 3, r.stderr  # some images failed
    assert "Traceback" not in r.stderr
    s = json.loads(r.stdout)
    assert (s["images"], s["ok"], s["skipped"], s["failed"], s["not_done"]) == (12, 10, 0, 2, 0)
    assert (s["engine"], s["workers"], s["threads"]) == ("local", 2, 1)
    assert "2 of 12 images failed" in r.stderr.strip().splitlines()[-1]


def test_cli_outputs_keep_the_layout(cli_run):
    _, out = cli_run
    # one SVG per good image at its relative path; nothing for bad, hidden or non-image files; no temp files
    assert _files(out) == {_svg_name(n) for n in GOOD} | {MANIFEST, ".lvss-batch.lock"}


def test_cli_svgs_are_byte_identical_to_vectorize(cli_run, reference):
    _, out = cli_run
    assert _svgs(out) == reference


def test_cli_manifest_is_complete(cli_run, tree):
    _, out = cli_run
    lines = (out / MANIFEST).read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert sorted(r["output"] for r in rows) == sorted(_svg_name(n) for n in GOOD + BAD)
    chash = config_sha256(effective_config(_cfg()), 2)
    for r in rows:
        src = Path(r["input"])
        assert src == tree / Path(r["output"]).with_suffix(src.suffix)
        assert r["config_sha256"] == chash
        assert r["input_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
        assert (r["size"], r["mtime_ns"]) == (src.stat().st_size, src.stat().st_mtime_ns)
        assert r["seconds"] >= 0
        if r["status"] == "ok":
            assert r["error"] is None and 1 <= r["paths"] <= 6 and r["layers"] >= 1 and r["psnr"] > 10
            assert r["svg_bytes"] == (out / r["output"]).stat().st_size
        else:
            assert r["status"] == "error" and r["paths"] is None
    errors = {r["output"]: r["error"] for r in rows if r["status"] == "error"}
    assert set(errors) == {"bad/notes.svg", "bad/truncated.svg"}
    assert "notes.png" in errors["bad/notes.svg"] and "not an image" in errors["bad/notes.svg"]
    assert "truncated.png" in errors["bad/truncated.svg"] and "truncated" in errors["bad/truncated.svg"]
    assert all("\n" not in e for e in errors.values())


# ------------------------------------------------------------------------------------------------
# the Python API: resume, changed option, progress, fail-fast
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api_runs(tree, cli_run):
    """On the command line's output folder: a rerun (resume), then a run with another seed."""
    _, out = cli_run
    before = {n: _stamp(out / n) for n in _svgs(out)}
    events = []
    resumed = lvss.batch(tree, out, _cfg(), workers=2, threads=1, progress=events.append)
    after_resume = {n: _stamp(out / n) for n in _svgs(out)}
    manifest_after_resume = read_manifest(out)
    reseeded = lvss.batch(tree, out, _cfg("--seed", "4"), workers=2, threads=1)
    return dict(out=out, before=before, events=events, resumed=resumed, after_resume=after_resume,
                manifest_after_resume=manifest_after_resume, reseeded=reseeded)


def test_resume_skips_finished_images_and_retries_failed_ones(api_runs):
    rows = api_runs["resumed"]
    assert sorted(r["output"] for r in rows if r["status"] == "skipped") == sorted(_svg_name(n) for n in GOOD)
    assert sorted(r["output"] for r in rows if r["status"] == "error") == ["bad/notes.svg", "bad/truncated.svg"]
    assert api_runs["after_resume"] == api_runs["before"]  # no SVG rewritten
    man = api_runs["manifest_after_resume"]
    assert len(man) == 12 and all(man[_svg_name(n)]["status"] == "skipped" for n in GOOD)
    assert all(man[_svg_name(n)]["paths"] >= 1 for n in GOOD)  # the first run's figures are kept


def test_progress_events(api_runs):
    ev = api_runs["events"]
    assert ev[0].kind == "start" and ev[0].row is None and (ev[0].total, ev[0].skipped, ev[0].todo) == (12, 10, 2)
    assert [e.done for e in ev[1:]] == list(range(1, 13))
    assert all(e.kind == "image" and e.row["output"] for e in ev[1:])


def test_changed_option_redoes_everything(api_runs, reference):
    rows = api_runs["reseeded"]
    assert sorted(r["output"] for r in rows if r["status"] == "ok") == sorted(_svg_name(n) for n in GOOD)
    assert not any(r["status"] == "skipped" for r in rows)
    assert len({r["config_sha256"] for r in rows}) == 1
    assert rows[0]["config_sha256"] != config_sha256(effective_config(_cfg()), 2)
    new = _svgs(api_runs["out"])
    assert set(new) == set(reference) and any(new[n] != reference[n] for n in new)  # another seed, other SVGs
    assert len((api_runs["out"] / MANIFEST).read_text().splitlines()) == 12  # one line per image


def test_fail_fast_stops_at_the_first_failure(tree, tmp_path):
    rows = lvss.batch([tree / "bad/notes.png", tree / "a.png", tree / "b.jpg"], tmp_path / "o", _cfg(),
                      workers=1, fail_fast=True)
    assert [(r["output"], r["status"]) for r in rows] == [("notes.svg", "error")]
    assert _files(tmp_path / "o") == {MANIFEST, ".lvss-batch.lock"}


def test_api_from_a_script_without_main_guard(tree, tmp_path):
    """Workers must not re-run the caller's script (which would start a batch inside every worker)."""
    script = tmp_path / "convert.py"
    script.write_text("import lvss\n"
                      "from lvss.cli import build_parser, config_from_args\n"
                      f"cfg = config_from_args(build_parser().parse_args(['batch', 'x', '-o', 'y', *{FAST!r}]))\n"
                      f"rows = lvss.batch([{str(tree / 'a.png')!r}, {str(tree / 'b.jpg')!r}], {str(tmp_path / 'o')!r}, "
                      "cfg, workers=2)\n"
                      "print(sorted(r['status'] for r in rows))\n")
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['ok', 'ok']" and "Traceback" not in r.stderr


def test_cancel_event_stops_the_batch(tree, tmp_path):
    cancel = threading.Event()

    def progress(ev):
        if ev.kind == "image":
            cancel.set()

    b = Batch([tree / "a.png", tree / "b.jpg", tree / "g.bmp"], tmp_path / "o", _cfg())
    rows = b.run(workers=1, progress=progress, cancel=cancel)
    assert len(rows) == 1 and rows[0]["status"] == "ok"
    assert b.summary["not_done"] == 2 and b.summary["stopped_early"]
    assert _files(tmp_path / "o") == {rows[0]["output"], MANIFEST, ".lvss-batch.lock"}


# ------------------------------------------------------------------------------------------------
# interrupted batch, then resumed
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def killed(tree, tmp_path_factory):
    """A one-worker batch stopped with SIGTERM once two images are done, then the same batch again."""
    src = tmp_path_factory.mktemp("batch_kill") / "images"
    shutil.copytree(tree, src)
    out = src.parent / "svg"
    proc = subprocess.Popen(_lvss("batch", str(src), "-o", str(out), *FAST, "--workers", "1", "--threads", "1",
                                  "-q"), cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 600  # a hang guard, not a timing assertion
    while time.monotonic() < deadline and proc.poll() is None:
        rows = read_manifest(out) if out.is_dir() else {}
        if sum(r["status"] == "ok" for r in rows.values()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    left = {n: _stamp(out / n) for n in _svgs(out)}
    manifest = read_manifest(out)
    files = _files(out)
    resumed = lvss.batch(src, out, _cfg(), workers=1, threads=1)
    return dict(src=src, out=out, rc=proc.returncode, stderr=stderr, left=left, manifest=manifest, files=files,
                resumed=resumed)


def test_sigterm_stops_cleanly(killed):
    assert killed["rc"] == 143, killed["stderr"]
    assert "Traceback" not in killed["stderr"] and "interrupted" in killed["stderr"]
    done = {k for k, r in killed["manifest"].items() if r["status"] == "ok"}
    assert len(done) >= 2
    assert set(killed["left"]) == done  # every SVG has its line and every ok line its SVG
    assert not any(".tmp" in f for f in killed["files"])  # no partial SVG


def test_resume_after_interruption_redoes_nothing_finished(killed):
    rows = {r["output"]: r for r in killed["resumed"]}
    done_before = set(killed["left"])
    assert {k for k, r in rows.items() if r["status"] == "skipped"} == done_before
    assert {k for k, r in rows.items() if r["status"] == "ok"} == {_svg_name(n) for n in GOOD} - done_before
    assert all(_stamp(killed["out"] / n) == s for n, s in killed["left"].items())
    assert set(_svgs(killed["out"])) == {_svg_name(n) for n in GOOD}  # nothing missing


def test_changed_image_is_redone(killed):
    src, out = killed["src"], killed["out"]
    Image.fromarray(_image(50, (36, 36))).save(src / "sub/c.png")
    rows = {r["output"]: r["status"] for r in lvss.batch(src, out, _cfg(), workers=1)}
    assert rows.pop("sub/c.svg") == "ok"
    assert {s for k, s in rows.items() if not k.startswith("bad/")} == {"skipped"}


# ------------------------------------------------------------------------------------------------
# Ray
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def test_ray_engine_matches_vectorize(ray_local, tree, reference, tmp_path):
    events = []
    rows = lvss.batch(tree, tmp_path / "o", _cfg(), engine="ray", workers=2, progress=events.append)
    assert ray_local.is_initialized()  # a Ray the caller started is left running
    assert (events[0].engine, events[0].workers, events[0].threads) == ("ray", 2, 1)
    assert _svgs(tmp_path / "o") == reference
    status = {r["output"]: (r["status"], r["engine"]) for r in rows}
    assert status == {**{_svg_name(n): ("ok", "ray") for n in GOOD}, **{_svg_name(n): ("error", "ray") for n in BAD}}
    assert "not an image" in next(r["error"] for r in rows if r["output"] == "bad/notes.svg")
    # workers reading shared storage themselves give the same SVGs
    rows = lvss.batch(tree / "sub", tmp_path / "shared", _cfg(), engine="ray", workers=1, ray_read="shared")
    assert {r["output"]: r["status"] for r in rows} == {"c.svg": "ok", "d.svg": "ok", "deeper/e.svg": "ok",
                                                        "deeper/f.svg": "ok"}
    assert _svgs(tmp_path / "shared") == {k[len("sub/"):]: v for k, v in reference.items() if k.startswith("sub/")}


def test_ray_cuda_without_gpus_says_so(ray_local, tree, tmp_path):
    with pytest.raises(BatchError, match="GPU"):
        lvss.batch(tree / "a.png", tmp_path / "o", _cfg("--device", "cuda"), engine="ray")


# ------------------------------------------------------------------------------------------------
# pieces, without workers
# ------------------------------------------------------------------------------------------------
def test_collect_inputs_folders_globs_and_files(tree, tmp_path):
    items = collect_inputs([tree])
    assert [i.output for i in items] == sorted(_svg_name(n) for n in GOOD + BAD)
    items = collect_inputs([str(tree / "sub" / "**" / "*.png")])  # relative to the glob's base
    assert [i.output for i in items] == ["c.svg", "d.svg", "deeper/e.svg"]
    items = collect_inputs([tree / "readme.txt", tree / "sub/deeper"])  # a named file is taken as it is
    assert [i.output for i in items] == ["readme.svg", "e.svg", "f.svg"]
    assert collect_inputs([tree / "a.png", tree / "a.png"]) == collect_inputs([tree / "a.png"])
    # an output folder inside an input folder is not scanned
    inner = tree / "sub" / "svg_out"
    inner.mkdir()
    try:
        Image.fromarray(_image(7, (32, 32))).save(inner / "x.png")
        assert "svg_out/x.svg" not in [i.output for i in collect_inputs([tree / "sub"], out_dir=inner)]
    finally:
        shutil.rmtree(inner)


def test_collect_inputs_clash_and_missing(tmp_path):
    for name in ("p.png", "p.jpg"):
        Image.fromarray(_image(1, (32, 32))).save(tmp_path / name)
    items = collect_inputs([tmp_path])
    assert [(i.output, i.problem is None) for i in items] == [("p.svg", True), ("p.svg", False)]
    assert "p.jpg" in items[0].source and "already the output of" in items[1].problem
    with pytest.raises(BatchError, match="input not found"):
        collect_inputs([tmp_path / "nope"])
    with pytest.raises(BatchError, match="no image files match"):
        collect_inputs([str(tmp_path / "*.gif")])


def test_clash_is_recorded_without_work(tmp_path):
    for name in ("p.png", "p.jpg"):
        Image.fromarray(_image(1, (32, 32))).save(tmp_path / name)
    b = Batch([tmp_path / "p.jpg", tmp_path / "p.png"], tmp_path / "o", _cfg())
    rows = b.run(workers=1, fail_fast=True)  # the clash is the first failure: nothing is vectorized
    assert [(r["output"], r["status"]) for r in rows] == [("p.svg", "error")]
    assert "rename one" in rows[0]["error"] and b.summary["not_done"] == 1


def test_bad_inputs_become_error_fields():
    cfg = _cfg()
    for data, words in ((b"", "empty"), (b"GIF89a junk", "not an image"), (png_declaring(20000, 20000), "over the limit"),
                        (png_declaring(0, 0), "empty"), (b"hello", "not an image")):
        fields, svg = process_bytes(data, "x.png", cfg)
        assert svg is None and fields["status"] == "error" and words in fields["error"], fields
        assert "x.png" in fields["error"] and "\n" not in fields["error"]


def test_manifest_ignores_a_line_cut_short(tmp_path):
    good = {"output": "a.svg", "status": "ok"}
    (tmp_path / MANIFEST).write_text(json.dumps(good) + "\n" + json.dumps({"output": "b.svg"})[:12])
    assert read_manifest(tmp_path) == {"a.svg": good}


def test_config_hash_follows_what_shapes_the_svg(tmp_path, monkeypatch):
    base = config_sha256(effective_config(_cfg()), 2)
    assert config_sha256(effective_config(_cfg("--threads", "2")), 2) == base  # a process setting
    assert config_sha256(effective_config(_cfg("--seed", "4")), 2) != base
    assert config_sha256(effective_config(_cfg()), 3) != base  # SVG precision
    monkeypatch.setenv("LVSS_SAM_CHECKPOINT", str(tmp_path / "sam.pth"))
    cfg = effective_config(_cfg())
    assert cfg.segment.sam_checkpoint == str(tmp_path / "sam.pth") and config_sha256(cfg, 2) != base
    mask = tmp_path / "m.png"
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(mask)
    h1 = config_sha256(effective_config(_cfg("--saliency-mask", str(mask))), 2)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(mask)
    assert config_sha256(effective_config(_cfg("--saliency-mask", str(mask))), 2) != h1  # mask content counts


def test_model_settings_match_lvss_models():
    from lvss.batch.core import _MODEL_SETTINGS
    from lvss.models import SETTINGS

    for kind, (section, name, env) in _MODEL_SETTINGS.items():
        assert SETTINGS[kind][0] == f"{section}.{name}" and SETTINGS[kind][2] == env


def test_batch_takes_every_vectorize_option():
    def options(cmd):
        sub = next(a for a in build_parser()._actions if a.dest == "command")
        return {s for a in sub.choices[cmd]._actions for s in a.option_strings}

    only_vectorize = {"--preview", "--json", "-q", "--quiet"}
    assert options("vectorize") - only_vectorize <= options("batch")


def test_api_bad_arguments(tree, tmp_path):
    for kwargs, words in (({"config": {"paths": 8}}, "VectorizeConfig"), ({"workers": 0}, "workers"),
                          ({"engine": "spark"}, "engine"), ({"engine": "local", "ray_address": "x:1"}, "Ray engine"),
                          ({"ray_read": "nfs"}, "ray_read"), ({"precision": 11}, "precision")):
        with pytest.raises(BatchError, match=words):
            lvss.batch(tree / "a.png", tmp_path / "o", **kwargs)
    assert not (tmp_path / "o").exists()


def test_second_batch_on_the_same_folder_is_refused(tmp_path, tree):
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "o"
    out.mkdir()
    with open(out / ".lvss-batch.lock", "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        with pytest.raises(BatchError, match="another lvss batch"):
            lvss.batch(tree / "a.png", out, _cfg())


@pytest.mark.parametrize("args, words", [
    (["batch", "{missing}", "-o", "{out}"], "input not found"),
    (["batch", "{tree}", "-o", "{file}"], "output folder is a file"),
    (["batch", "{tree}", "-o", "{out}", "--precision", "9"], "--precision"),
    (["batch", "{tree}", "-o", "{out}", "--ray-read", "shared"], "add --ray"),
    (["batch", "{tree}", "-o", "{out}", "--paths", "0"], "--paths"),
    (["batch", "{tree}", "-o", "{out}", "--workers", "0"], "--workers"),
])
def test_cli_bad_usage(args, words, tree, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    argv = [a.format(missing=tmp_path / "nope.png", out=tmp_path / "o", file=tmp_path / "file", tree=tree)
            for a in args]
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own checks (--paths 0, --workers 0)
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing written


def test_ray_missing_says_how_to_install(tree, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    rc = main(["batch", str(tree), "-o", str(tmp_path / "o"), "--ray"])
    err = capsys.readouterr().err
    assert rc == 2 and "pip install 'lvss[ray]'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_summary_table(tmp_path):
    from lvss.cli.batch import format_summary

    s = {"images": 3, "ok": 1, "skipped": 1, "failed": 1, "not_done": 0, "seconds": 2.0, "images_per_minute": 60.0,
         "mean_paths": 5.0, "mean_psnr": 21.5, "engine": "local", "workers": 2, "threads": 1,
         "out_dir": "out", "manifest": "out/manifest.jsonl",
         "failures": [{"input": "in/x.png", "error": "in/x.png is not an image lvss can read"}]}
    text = format_summary(s)
    assert "2 workers x 1 thread" in text and "60.0 images/min" in text and "21.50 dB" in text
    assert "  in/x.png is not an image" in text and "manifest: out/manifest.jsonl" in text
