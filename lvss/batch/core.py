"""The batch driver: expands the inputs, keeps the manifest and the lock of OUT_DIR, decides what is
already done, hands the rest to an engine (:mod:`lvss.batch.local` or :mod:`lvss.batch.ray`) and
writes each finished SVG. See :mod:`lvss.batch` for the behaviour.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable

from ..config import ConfigError, VectorizeConfig, to_dict
from .work import BatchError, Item, Job, one_line

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
MANIFEST = "manifest.jsonl"
LOCK = ".lvss-batch.lock"
ENGINES = ("local", "ray")
RAY_READ = ("driver", "shared")
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class BatchEvent:
    """Progress of a batch.

    kind: "start" (planning done; ``row`` is None) or "image" (``row`` is the manifest row of an image
    just finished or skipped). done/total count images; skipped/todo are the plan's counts.
    """

    kind: str
    done: int
    total: int
    row: dict | None
    skipped: int
    todo: int
    engine: str
    workers: int
    threads: int


# --------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------
def _has_magic(s: str) -> bool:
    return any(c in s for c in "*?[")


def _glob_base(pattern: str) -> Path:
    """The leading part of a glob pattern without wildcards (outputs are relative to it)."""
    parts = []
    for part in Path(pattern).parts:
        if _has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _walk(folder: Path, skip: Path | None) -> Iterable[Path]:
    """Image files under ``folder`` (recursive), leaving out hidden files and folders and
    ``skip`` (the output folder when it lies inside an input folder)."""
    for root, dirs, files in os.walk(folder):
        r = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (skip is None or (r / d).resolve() != skip))
        for f in sorted(files):
            if not f.startswith(".") and _is_image_name(f):
                yield r / f


def collect_inputs(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike | None = None) -> list[Item]:
    """Expand files, folders and globs into :class:`Item` s, in a stable order.

    A file named explicitly is taken whatever its extension; folders and globs contribute image
    files only (``IMAGE_EXTENSIONS``). The same file reached twice counts once. When two inputs would
    write the same SVG, the first keeps it and the others carry a ``problem``. Raises
    :class:`BatchError` for an input that does not exist or a glob that matches no image.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    skip = Path(out_dir).resolve() if out_dir is not None else None
    found: list[tuple[Path, PurePosixPath]] = []
    for raw in inputs:
        s = os.fspath(raw)
        if not s:
            raise BatchError("an input is an empty string; give files, folders or glob patterns")
        p = Path(s)
        if p.is_dir():
            found.extend(sorted(((f, PurePosixPath(f.relative_to(p).as_posix())) for f in _walk(p, skip)),
                                key=lambda fr: str(fr[1])))
        elif p.exists():
            found.append((p, PurePosixPath(p.name)))
        elif _has_magic(s):
            base = _glob_base(s)
            n = len(found)
            for m in sorted(glob.glob(s, recursive=True)):
                mp = Path(m)
                if mp.is_dir():
                    found.extend(sorted(((f, PurePosixPath(f.relative_to(base).as_posix())) for f in _walk(mp, skip)),
                                        key=lambda fr: str(fr[1])))
                elif mp.is_file() and _is_image_name(mp.name):
                    found.append((mp, PurePosixPath(mp.relative_to(base).as_posix())))
            if len(found) == n:
                raise BatchError(f"no image files match {s!r} (image files end in {', '.join(IMAGE_EXTENSIONS)})")
        else:
            raise BatchError(f"input not found: {s}")
    items: list[Item] = []
    seen_files: set[Path] = set()
    owner: dict[str, str] = {}
    for src, rel in found:
        key = src.resolve()
        if key in seen_files:
            continue
        seen_files.add(key)
        out = str(rel.with_suffix(".svg") if rel.suffix else rel.with_name(rel.name + ".svg"))
        if out in owner:
            items.append(Item(str(src), out, f"{out} is already the output of {owner[out]}; rename one of "
                                             "the two inputs or vectorize them into different folders"))
        else:
            owner[out] = str(src)
            items.append(Item(str(src), out))
    return items


# --------------------------------------------------------------------------------------------------
# config and hashes
# --------------------------------------------------------------------------------------------------
def _file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


# model kind -> (config section, field, environment variable), as in lvss.models.SETTINGS (a test
# keeps them equal); read here so that the driver never imports torch
_MODEL_SETTINGS = {"sd": ("simplify", "sd_model", "LVSS_SD_MODEL"),
                   "sam": ("segment", "sam_checkpoint", "LVSS_SAM_CHECKPOINT"),
                   "clip": ("saliency", "clip_model", "LVSS_CLIP_MODEL")}


def effective_config(cfg: VectorizeConfig) -> VectorizeConfig:
    """The config every worker runs: model sources named by environment variables
    (``LVSS_SAM_CHECKPOINT`` ...) written into their fields, so workers on other machines use the
    same models and the config hash changes when the environment does; a saliency mask path made
    absolute."""
    sections = {"simplify": cfg.simplify, "segment": cfg.segment, "saliency": cfg.saliency}
    for section, name, env in _MODEL_SETTINGS.values():
        configured = getattr(sections[section], name)
        if configured is not None and str(configured).strip():
            value = str(configured).strip()
        else:
            value = os.environ.get(env, "").strip() or None
        if value != configured:
            sections[section] = replace(sections[section], **{name: value})
    if sections["saliency"].mask_path:
        sections["saliency"] = replace(sections["saliency"], mask_path=os.path.abspath(sections["saliency"].mask_path))
    return cfg.with_(**sections)


def config_sha256(cfg: VectorizeConfig, precision: int = 2) -> str:
    """A hash of everything that shapes the SVG: the config, the SVG precision and the content of a
    saliency mask file (a changed mask redoes the batch like a changed option)."""
    d: dict[str, Any] = to_dict(cfg)
    d["svg_precision"] = precision
    mask = cfg.saliency.mask_path
    if mask and os.path.isfile(mask):
        d["saliency_mask_sha256"] = _file_sha256(mask)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------------------------------
# manifest
# --------------------------------------------------------------------------------------------------
def read_manifest(out_dir: str | os.PathLike) -> dict[str, dict]:
    """The latest manifest row per output path (lines that do not parse, such as one cut short by a
    killed process, are ignored)."""
    path = Path(out_dir) / MANIFEST
    rows: dict[str, dict] = {}
    try:
        text = path.read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return rows
    except OSError as e:
        raise BatchError(f"cannot read {path}: {e.strerror or e}") from None
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("output"), str):
            rows[row["output"]] = row
    return rows


class _Manifest:
    """Appends one line per finished image (flushed at once); :meth:`compact` rewrites the file with
    one line per image, atomically."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / MANIFEST
        self.rows = read_manifest(out_dir)
        self._f = None

    def append(self, row: dict) -> None:
        self.rows[row["output"]] = row
        if self._f is None:
            needs_newline = False
            if self.path.exists() and self.path.stat().st_size:
                with open(self.path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    needs_newline = f.read(1) != b"\n"
            self._f = open(self.path, "a", encoding="utf-8")
            if needs_newline:  # the last line of a killed run was cut short
                self._f.write("\n")
        self._f.write(json.dumps(row) + "\n")
        self._f.flush()

    def compact(self) -> None:
        from ..io import atomic_write

        self.close()
        if self.rows:
            atomic_write(self.path, "".join(json.dumps(self.rows[k]) + "\n" for k in sorted(self.rows)))

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


@contextlib.contextmanager
def _locked(out_dir: Path):
    """Hold an exclusive lock on OUT_DIR for the batch (POSIX; elsewhere nothing is locked)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    f = open(out_dir / LOCK, "a+")
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BatchError(f"another lvss batch is writing to {out_dir}; wait for it to finish or choose "
                             "another output folder") from None
        yield
    finally:
        f.close()


# --------------------------------------------------------------------------------------------------
# the batch
# --------------------------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


@dataclass
class Batch:
    """A batch of images bound for one output folder. ``Batch(inputs, out_dir, config)`` expands the
    inputs (raising :class:`BatchError` for missing ones); :meth:`run` does the work."""

    inputs: list
    out_dir: Path
    config: VectorizeConfig | None = None
    precision: int = 2
    items: list[Item] = field(init=False)
    summary: dict = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.inputs, (str, os.PathLike)):
            self.inputs = [self.inputs]
        if not self.inputs:
            raise BatchError("no inputs given; name image files, folders or glob patterns")
        self.out_dir = Path(self.out_dir)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise BatchError(f"output folder is a file: {self.out_dir}")
        if self.config is not None and not isinstance(self.config, VectorizeConfig):
            raise BatchError(f"config must be a lvss.config.VectorizeConfig, got {type(self.config).__name__}")
        if not isinstance(self.precision, int) or not 0 <= self.precision <= 8:
            raise BatchError(f"precision must be between 0 and 8 decimals, got {self.precision!r}")
        self.config = effective_config(self.config or VectorizeConfig())
        self.items = collect_inputs(self.inputs, self.out_dir)
        if not self.items:
            raise BatchError("no image files found in the inputs (image files end in "
                             f"{', '.join(IMAGE_EXTENSIONS)}; hidden files and folders are left out)")

    def run(self, *, engine: str | None = None, workers: int | None = None, threads: int | None = None,
            ray_address: str | None = None, ray_read: str = "driver", gpus_per_worker: float | None = None,
            resume: bool = True, fail_fast: bool = False, progress: Callable[[BatchEvent], None] | None = None,
            cancel=None) -> list[dict]:
        """Vectorize every image not already done; returns this run's manifest rows in input order
        (images left undone by ``fail_fast`` or an interruption have none). ``self.summary`` holds the
        counts afterwards. KeyboardInterrupt (and so SIGTERM turned into one) stops the workers, keeps
        every finished image and its manifest line, and propagates."""
        engine = engine or ("ray" if ray_address else "local")
        if engine not in ENGINES:
            raise BatchError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if ray_address and engine != "ray":
            raise BatchError(f"ray_address {ray_address!r} is for the Ray engine; drop it or use engine='ray'")
        if ray_read not in RAY_READ:
            raise BatchError(f"ray_read must be one of {', '.join(RAY_READ)}, got {ray_read!r}")
        for name, v in (("workers", workers), ("threads", threads)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
                raise BatchError(f"{name} must be a positive integer, got {v!r}")
        if gpus_per_worker is not None and not gpus_per_worker > 0:
            raise BatchError(f"gpus_per_worker must be > 0, got {gpus_per_worker!r}")
        ray_session = None
        if engine == "ray":  # before anything is written: Ray may be missing or unreachable
            from .ray import connect

            ray_session = connect(ray_address)
        else:
            from .local import plan_local

            plan_local(workers, threads, self.config, 1)  # a bad LVSS_THREADS is refused before any write
        try:
            try:
                self.out_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise BatchError(f"cannot create the output folder {self.out_dir}: {e.strerror or e}") from None
            with _locked(self.out_dir):
                r = _Run(self, engine, resume, fail_fast, progress, cancel)
                try:
                    if ray_session is None:
                        from .local import plan_local, run_local

                        r.workers, r.threads = plan_local(workers, threads, self.config, len(r.jobs))
                        r.start()
                        if r.jobs and not r.stop():
                            run_local(r.jobs, self.config, self.precision, r.workers, r.threads, r.on_result,
                                      r.stop)
                    else:
                        r.workers, r.threads = ray_session.plan(workers, threads, self.config, gpus_per_worker,
                                                                len(r.jobs))
                        r.start()
                        if r.jobs and not r.stop():
                            ray_session.run(r.jobs, self.config, self.precision, r.workers, r.threads,
                                            gpus_per_worker, ray_read, r.on_result, r.stop)
                except KeyboardInterrupt:
                    r.interrupted = True
                    raise
                finally:
                    r.manifest.compact()
                    self.summary = r.summary()
        finally:
            if ray_session is not None:
                ray_session.close()
        return [r.rows[i] for i in sorted(r.rows)]

    def _still_done(self, old: dict | None, item: Item, st, chash: str) -> str | None:
        """The input hash when ``old`` shows this image already done with this config, else None."""
        if (not old or old.get("status") not in ("ok", "skipped") or old.get("config_sha256") != chash
                or st is None or not (self.out_dir / item.output).is_file()):
            return None
        if [old.get("size"), old.get("mtime_ns")] == list(st):
            return old.get("input_sha256")
        try:
            h = _file_sha256(item.source)
        except OSError:
            return None
        return h if h == old.get("input_sha256") else None

    def _row(self, item: Item, st, chash: str, engine: str, fields: dict) -> dict:
        from .. import __version__

        row = {"input": item.source, "output": item.output, "status": fields.get("status"),
               "error": fields.get("error"), "input_sha256": fields.get("input_sha256"),
               "config_sha256": chash, "seconds": fields.get("seconds"), "paths": fields.get("paths"),
               "layers": fields.get("layers"), "psnr": fields.get("psnr"), "mse": fields.get("mse"),
               "svg_bytes": fields.get("svg_bytes"), "size": st[0] if st else None,
               "mtime_ns": st[1] if st else None, "engine": engine, "lvss": __version__, "finished": _now()}
        return row


class _Run:
    """The state of one :meth:`Batch.run`: the plan (skipped images, jobs), rows, counts, and the
    callbacks the engines call in the driver."""

    def __init__(self, b: Batch, engine: str, resume: bool, fail_fast: bool, progress, cancel):
        self.b, self.engine, self.fail_fast, self.progress, self.cancel = b, engine, fail_fast, progress, cancel
        self.chash = config_sha256(b.config, b.precision)
        self.t0 = time.perf_counter()
        self.manifest = _Manifest(b.out_dir)
        self.rows: dict[int, dict] = {}
        self.jobs: list[Job] = []
        self.counts = {"ok": 0, "skipped": 0, "error": 0}
        self.done = self.processed = self.workers = self.threads = 0
        self.stopped = self.interrupted = False
        self.failures: list[dict] = []
        for i, item in enumerate(b.items):
            st = _stat(item.source)
            if item.problem is not None:
                self.rows[i] = b._row(item, st, self.chash, engine, {"status": "error", "error": item.problem})
                continue
            old = self.manifest.rows.get(item.output) if resume else None
            sha = b._still_done(old, item, st, self.chash)
            if sha is not None:
                self.rows[i] = dict(old, input=item.source, status="skipped", input_sha256=sha,
                                    size=st[0], mtime_ns=st[1])
            else:
                self.jobs.append(Job(i, item, st))
        self.skipped = sum(1 for r in self.rows.values() if r["status"] == "skipped")

    def _event(self, kind: str, row: dict | None) -> None:
        if self.progress is not None:
            self.progress(BatchEvent(kind, self.done, len(self.b.items), row, self.skipped, len(self.jobs),
                                     self.engine, self.workers, self.threads))

    def start(self) -> None:
        """Announce the plan, then record the rows known before any work (clashes, skipped images)."""
        self._event("start", None)
        for i in sorted(self.rows):
            row = self.rows[i]
            if row["status"] == "error":
                self.manifest.append(row)
            else:
                self.manifest.rows[row["output"]] = row
            self._emit(row)

    def _emit(self, row: dict) -> None:
        self.counts[row["status"]] += 1
        self.done += 1
        if row["status"] == "error":
            self.failures.append({"input": row["input"], "error": row["error"]})
            self.stopped = self.stopped or self.fail_fast
        self._event("image", row)

    def on_result(self, job: Job, fields: dict, svg: str | None) -> None:
        """An engine finished an image: write its SVG (atomically), then its manifest line."""
        if svg is not None:
            from ..io import atomic_write

            dest = self.b.out_dir / job.item.output
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(dest, svg)
            except OSError as e:
                fields = dict(fields, status="error", error=one_line(f"cannot write {dest}: {e.strerror or e}"))
        row = self.b._row(job.item, job.stat, self.chash, self.engine, fields)
        self.rows[job.index] = row
        self.processed += 1
        self.manifest.append(row)
        self._emit(row)

    def stop(self) -> bool:
        return self.stopped or (self.cancel is not None and self.cancel.is_set())

    def summary(self) -> dict:
        secs = time.perf_counter() - self.t0
        ok = [r for r in self.rows.values() if r["status"] == "ok"]
        psnrs = [r["psnr"] for r in ok if r.get("psnr") is not None]
        return {
            "images": len(self.b.items), "ok": self.counts["ok"], "skipped": self.counts["skipped"],
            "failed": self.counts["error"], "not_done": len(self.b.items) - self.done,
            "interrupted": self.interrupted, "stopped_early": self.stop(), "seconds": round(secs, 3),
            "images_per_minute": round(60.0 * self.processed / secs, 2) if secs > 0 else None,
            "mean_paths": round(sum(r["paths"] for r in ok) / len(ok), 2) if ok else None,
            "mean_psnr": round(sum(psnrs) / len(psnrs), 3) if psnrs else None,
            "engine": self.engine, "workers": self.workers, "threads": self.threads,
            "out_dir": str(self.b.out_dir), "manifest": str(self.manifest.path), "config_sha256": self.chash,
            "failures": self.failures,
        }


def batch(inputs, out_dir: str | os.PathLike, config: VectorizeConfig | None = None, *,
          workers: int | None = None, threads: int | None = None, ray_address: str | None = None,
          engine: str | None = None, ray_read: str = "driver", gpus_per_worker: float | None = None,
          precision: int = 2, resume: bool = True, fail_fast: bool = False,
          progress: Callable[[BatchEvent], None] | None = None, cancel=None) -> list[dict]:
    """Vectorize many images into ``out_dir``; returns this run's manifest rows (see the module doc).

    inputs: a file, folder or glob, or a list of them. engine: "local" (default) or "ray"
    (``ray_address`` implies "ray"; an already initialised Ray is used as it is, otherwise
    ``ray.init(address=ray_address)``, which reads ``RAY_ADDRESS`` or starts a local Ray when None).
    workers/threads: worker processes (or Ray actors) and torch threads per worker (default: every
    core busy with one thread per worker, see :mod:`lvss.batch.local`). ray_read: "driver" (this
    process reads each image and sends its bytes) or "shared" (workers read the paths themselves:
    storage every node sees). gpus_per_worker: GPUs each Ray actor reserves with device "cuda"
    (default 1). precision: decimals in the SVG. cancel: a ``threading.Event`` that stops the batch
    like Ctrl-C but returns normally.
    """
    b = Batch(inputs, Path(out_dir), config, precision)
    return b.run(engine=engine, workers=workers, threads=threads, ray_address=ray_address, ray_read=ray_read,
                 gpus_per_worker=gpus_per_worker, resume=resume, fail_fast=fail_fast, progress=progress,
                 cancel=cancel)
