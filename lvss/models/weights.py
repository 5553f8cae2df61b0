"""Named sets of model weights, downloaded once into the usual caches: ``--models paper``.

The ``paper`` set is what the two methods lvss implements were published with:

* SAM ViT-H (segment-anything), the file ``sam_vit_h_4b8939.pth`` from Meta's download site, kept
  where torch keeps hub checkpoints (``torch.hub.get_dir()/checkpoints``, i.e. ``$TORCH_HOME`` or
  ``~/.cache/torch``) and checked against its published SHA-256;
* Stable Diffusion 1.5 (``stable-diffusion-v1-5/stable-diffusion-v1-5``, the maintained copy of
  the original ``runwayml`` repository), diffusers layout, only the parts SDS loads;
* CLIP ViT-B/16 (``openai/clip-vit-base-patch16``).

The two hub models land in the Hugging Face cache (``$HF_HOME``, ``~/.cache/huggingface``).
:func:`fetch_set` downloads what is missing (a progress bar per file on stderr) and returns the local
paths, which then go into the config like any ``--sam-checkpoint`` / ``--sd-model`` / ``--clip-model``
value; :func:`set_status` says what is cached without downloading (``lvss info``). Downloads honour
``HF_HUB_OFFLINE`` / ``LVSS_OFFLINE`` (then only the caches are used). Every failure raises
:class:`WeightsError` (a :class:`~lvss.models.ModelError`) naming what to do.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
from dataclasses import dataclass
from typing import Any, Callable

from ..config import ConfigError

CHUNK = 1 << 20


class WeightsError(ConfigError):
    """Weights cannot be fetched or verified; the message says what to do."""


@dataclass(frozen=True)
class FileCheckpoint:
    """One checkpoint file at a public URL, cached under torch's hub folder.

    kind: "sam" | "sd" | "clip" (the setting it fills); sha256: hex digest to verify, or "";
    size: expected bytes, or 0 when unknown.
    """

    kind: str
    title: str
    url: str
    filename: str
    sha256: str = ""
    size: int = 0

    @property
    def identifier(self) -> str:
        return self.url


@dataclass(frozen=True)
class HubModel:
    """A Hugging Face repository, fetched into the Hugging Face cache (only ``patterns``).

    patterns: files that must be there (globs); optional: files fetched when the repository has them;
    weights: groups of alternative weight files; of each group the first the repository has is
    fetched (safetensors before pickles), so one copy of the weights is downloaded.
    """

    kind: str
    title: str
    repo: str
    patterns: tuple[str, ...]
    weights: tuple[tuple[str, ...], ...] = ()
    size: int = 0  # approximate bytes, for messages
    optional: tuple[str, ...] = ()

    @property
    def identifier(self) -> str:
        return self.repo


SAM_VIT_H = FileCheckpoint(
    "sam", "SAM ViT-H", "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
    "sam_vit_h_4b8939.pth", "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", 2564550879)
SD_15 = HubModel(
    "sd", "Stable Diffusion 1.5", "stable-diffusion-v1-5/stable-diffusion-v1-5",
    ("model_index.json", "scheduler/*", "tokenizer/*", "text_encoder/config.json", "unet/config.json",
     "vae/config.json"),
    (("text_encoder/model.safetensors", "text_encoder/pytorch_model.bin"),
     ("unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.bin"),
     ("vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.bin")),
    size=2_750_000_000)
CLIP_B16 = HubModel(
    "clip", "CLIP ViT-B/16", "openai/clip-vit-base-patch16",
    ("config.json", "vocab.json", "merges.txt"),
    (("model.safetensors", "pytorch_model.bin"),),
    size=600_000_000,
    optional=("preprocessor_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"))

MODEL_SETS: dict[str, tuple[Any, ...]] = {"paper": (SAM_VIT_H, SD_15, CLIP_B16)}
"""Named sets for ``--models``: each entry fills the setting of its ``kind``."""


def _offline() -> bool:
    from . import offline

    return offline()


def checkpoint_dir() -> str:
    """Where file checkpoints are kept: ``torch.hub.get_dir()/checkpoints``."""
    import torch

    return os.path.join(torch.hub.get_dir(), "checkpoints")


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MiB"


def _marker(path: str) -> str:
    return path + ".sha256"


def _verified(path: str, sha256: str) -> bool:
    """True when ``path`` was verified against ``sha256`` and has not changed since."""
    try:
        with open(_marker(path), encoding="utf-8") as f:
            digest, size, mtime = f.read().split()
        st = os.stat(path)
        return digest == sha256 and int(size) == st.st_size and int(mtime) == int(st.st_mtime)
    except (OSError, ValueError):
        return False


def _mark_verified(path: str, sha256: str) -> None:
    st = os.stat(path)
    with open(_marker(path), "w", encoding="utf-8") as f:
        f.write(f"{sha256} {st.st_size} {int(st.st_mtime)}\n")


def sha256_of(path: str, progress: bool = False, title: str = "") -> str:
    """Hex SHA-256 of a file (a progress bar on stderr when ``progress``)."""
    h = hashlib.sha256()
    bar = _bar(os.path.getsize(path), f"checking {title or os.path.basename(path)}", progress)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
            bar.update(len(chunk))
    bar.close()
    return h.hexdigest()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total or None, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, file=sys.stderr,
                leave=True, dynamic_ncols=True)


def download_file(url: str, dest: str, *, sha256: str = "", size: int = 0, progress: bool = True,
                  title: str = "", timeout: float = 60.0, opener: Callable[..., Any] | None = None) -> str:
    """Download ``url`` to ``dest`` (through ``dest + ".part"``, renamed when complete and verified).

    sha256: the expected digest (computed while downloading); a mismatch deletes the download and
    raises WeightsError. Returns ``dest``.
    """
    import urllib.error  # here, not at the top: every ``lvss`` command imports this module for its
    import urllib.request  # options, and urllib with http and email costs a run about 15 ms

    if _offline():
        raise WeightsError(f"{title or url} is not in the cache ({dest}) and downloads are disabled "
                           "(HF_HUB_OFFLINE / LVSS_OFFLINE); copy the file there or allow downloads")
    folder = os.path.dirname(os.path.abspath(dest))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise WeightsError(f"cannot create the cache folder {folder} ({e.strerror}); set TORCH_HOME to a "
                           "writable folder") from None
    part = dest + ".part"
    h = hashlib.sha256()
    got = 0
    try:
        with (opener or urllib.request.urlopen)(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or size or 0)
            bar = _bar(total, f"downloading {title or os.path.basename(dest)}", progress)
            try:
                with open(part, "wb") as out:
                    for chunk in iter(lambda: resp.read(CHUNK), b""):
                        out.write(chunk)
                        h.update(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
            finally:
                bar.close()
    except (urllib.error.URLError, OSError, ValueError) as e:
        _remove(part)
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise WeightsError(f"downloading {title or 'the checkpoint'} from {url} failed ({reason}); check the "
                           f"network, or download it yourself to {dest}") from None
    if size and got != size:
        _remove(part)
        raise WeightsError(f"the download of {title or url} stopped after {got} of {size} bytes; run again "
                           "to retry")
    if sha256 and h.hexdigest() != sha256.lower():
        _remove(part)
        raise WeightsError(f"the download of {title or url} is corrupt: SHA-256 {h.hexdigest()}, expected "
                           f"{sha256}; it was deleted, run again to retry")
    os.replace(part, dest)
    if sha256:
        _mark_verified(dest, sha256.lower())
    return dest


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def fetch_file(ck: FileCheckpoint, *, progress: bool = True, folder: str | None = None) -> str:
    """The local path of a file checkpoint, downloading and verifying it the first time.

    A cached file is checked against its SHA-256 once (the result is remembered beside it); a file
    that does not match is moved aside to ``NAME.corrupt`` and downloaded again.
    """
    dest = os.path.join(folder or checkpoint_dir(), ck.filename)
    if os.path.isfile(dest):
        if not ck.sha256 or _verified(dest, ck.sha256):
            return dest
        if sha256_of(dest, progress, ck.title) == ck.sha256:
            _mark_verified(dest, ck.sha256)
            return dest
        shutil.move(dest, dest + ".corrupt")
        print(f"lvss: {dest} does not match the published SHA-256 of {ck.title}; moved it to "
              f"{dest}.corrupt and downloading it again", file=sys.stderr)
    if progress and not _offline():
        size = f" ({_gib(ck.size)})" if ck.size else ""
        print(f"lvss: downloading {ck.title}{size} once, to {dest}", file=sys.stderr)
    return download_file(ck.url, dest, sha256=ck.sha256, size=ck.size, progress=progress, title=ck.title)


def _hub_patterns(model: HubModel, files: list[str] | None) -> list[str]:
    """The files to fetch: the fixed and optional patterns, plus from each weight group the first
    file present (``files``: the repository's files; None: the first of each group)."""
    out = list(model.patterns) + list(model.optional)
    for group in model.weights:
        present = [f for f in group if files is None or f in files]
        if files is not None and not present:
            raise WeightsError(f"{model.repo} has none of {', '.join(group)}; it is not the expected "
                               f"{model.title} repository")
        out.append(present[0])
    return out


def fetch_hub(model: HubModel, *, progress: bool = True) -> str:
    """The local folder of a hub model (a Hugging Face cache snapshot), downloading what is missing."""
    try:
        from huggingface_hub import HfApi, snapshot_download
    except ImportError:
        raise WeightsError(f"huggingface_hub is not installed, but {model.title} comes from the Hugging Face "
                           "hub; pip install 'lvss[models]'") from None
    local = _cached_snapshot(model)
    if local is not None:
        return local
    if _offline():
        raise WeightsError(f"{model.title} ({model.repo}) is not in the Hugging Face cache and downloads are "
                           "disabled (HF_HUB_OFFLINE / LVSS_OFFLINE); allow downloads once")
    if progress:
        size = f" (about {_gib(model.size)})" if model.size else ""
        print(f"lvss: downloading {model.title}{size} once, from the Hugging Face hub ({model.repo})",
              file=sys.stderr)
    try:
        files = HfApi().list_repo_files(model.repo)
        return snapshot_download(model.repo, allow_patterns=_hub_patterns(model, files))
    except WeightsError:
        raise
    except Exception as e:  # noqa: BLE001
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise WeightsError(f"downloading {model.title} ({model.repo}) from the Hugging Face hub failed "
                           f"({type(e).__name__}: {first}); check the network (HF_ENDPOINT for a mirror)") from None


def fetch(entry, *, progress: bool = True) -> str:
    """Local path of one set entry (file or hub model), fetched if needed."""
    if isinstance(entry, FileCheckpoint):
        return fetch_file(entry, progress=progress)
    return fetch_hub(entry, progress=progress)


def model_set(name: str) -> tuple[Any, ...]:
    """The entries of a named set; WeightsError for an unknown name."""
    try:
        return MODEL_SETS[name]
    except KeyError:
        raise WeightsError(f"unknown model set {name!r}; known: {', '.join(MODEL_SETS)}") from None


def fetch_set(name: str, *, progress: bool = True, kinds: tuple[str, ...] | None = None) -> dict[str, str]:
    """{kind: local path} for a named set (only ``kinds`` when given), downloading what is missing."""
    return {e.kind: fetch(e, progress=progress) for e in model_set(name) if kinds is None or e.kind in kinds}


def cached_path(entry) -> str | None:
    """The entry's local path when it is completely cached (and, for files, verified), else None."""
    if isinstance(entry, FileCheckpoint):
        try:
            path = os.path.join(checkpoint_dir(), entry.filename)
        except Exception:  # noqa: BLE001  torch missing
            return None
        if os.path.isfile(path) and (not entry.sha256 or _verified(path, entry.sha256)):
            return path
        return None
    return _cached_snapshot(entry)


def _complete(model: HubModel, folder: str) -> bool:
    """True when ``folder`` holds every fixed file of ``model`` and one file of each weight group."""
    import fnmatch

    present = set()
    for root, _, files in os.walk(folder):
        for f in files:
            present.add(os.path.relpath(os.path.join(root, f), folder).replace(os.sep, "/"))
    for pattern in model.patterns:
        if not any(fnmatch.fnmatch(f, pattern) for f in present):
            return False
    return all(any(f in present for f in group) for group in model.weights)


def _cached_snapshot(model: HubModel) -> str | None:
    """The Hugging Face cache snapshot of ``model`` when it is complete, else None (no network)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        folder = snapshot_download(model.repo, local_files_only=True)
    except Exception:  # noqa: BLE001  not cached
        return None
    return folder if _complete(model, folder) else None


def _folder_size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))  # follows the cache's symlinks to blobs
            except OSError:
                pass
    return total


def set_status(name: str) -> list[dict[str, Any]]:
    """What of a named set is cached: per entry kind, title, identifier, path (None if not cached),
    bytes on disk. Downloads nothing."""
    out = []
    for e in model_set(name):
        path = cached_path(e)
        out.append({"kind": e.kind, "title": e.title, "identifier": e.identifier, "path": path,
                    "bytes": _folder_size(path) if path else 0,
                    "sha256": getattr(e, "sha256", "") or None})
    return out


def settings_for(name: str, *, fetch_missing: bool = True, progress: bool = True) -> dict[str, str]:
    """{kind: setting value} for ``--models NAME``: the local paths (fetched when ``fetch_missing``),
    else, for what is not cached, the public identifier (URL or hub id)."""
    if fetch_missing:
        return fetch_set(name, progress=progress)
    return {e.kind: cached_path(e) or e.identifier for e in model_set(name)}


__all__ = ["WeightsError", "FileCheckpoint", "HubModel", "MODEL_SETS", "SAM_VIT_H", "SD_15", "CLIP_B16",
           "checkpoint_dir", "download_file", "fetch_file", "fetch_hub", "fetch", "fetch_set", "model_set",
           "cached_path", "set_status", "settings_for", "sha256_of"]
