"""Vectorize many images: ``lvss batch`` and :func:`batch`.

Inputs are files, folders (searched recursively for image files) and glob patterns. Every image gets
``OUT_DIR/<its path relative to the folder or glob base>.svg`` and one line in
``OUT_DIR/manifest.jsonl`` (JSON per line: input, output, input and config hashes, status ``ok`` /
``skipped`` / ``error``, the error message, seconds, paths, layers, PSNR, ...).

* **Resume**: an image whose manifest line has the same input hash and config hash, status ok or
  skipped, and whose SVG still exists, is skipped. The input hash is only recomputed when the file's
  size or modification time differ from the line's (as rsync does), so a resumed batch of ten
  thousand images starts at once.
* **Safety**: only this process writes into OUT_DIR. Workers return SVG text; it is written atomically,
  then its manifest line is appended, so an interrupted batch (Ctrl-C, SIGTERM, a killed process)
  leaves finished images with their SVG and line and never a partial SVG. A lock file keeps two
  batches from writing to the same folder at once.
* **Bad inputs** (unreadable, truncated, not an image, a decompression bomb, two inputs that would
  write the same SVG) become ``error`` lines and the batch goes on (``fail_fast`` stops at the first).
* **Engines**: ``local`` (worker processes on this machine, :mod:`lvss.batch.local`) or ``ray``
  (actors on a Ray cluster, :mod:`lvss.batch.ray`). Each worker applies its share of the cores
  (:mod:`lvss.threads`) and loads the stages and models once. Every engine runs the same
  :func:`process_bytes`, so the SVGs are byte-identical to ``lvss vectorize`` with the same options.
"""
from __future__ import annotations

import sys
import types

from .core import (ENGINES, IMAGE_EXTENSIONS, LOCK, MANIFEST, RAY_READ, Batch, BatchEvent, batch, collect_inputs,
                   config_sha256, effective_config, read_manifest)
from .work import BatchError, Item, process_bytes, process_path, warm_up

__all__ = ["batch", "Batch", "BatchError", "BatchEvent", "Item", "collect_inputs", "config_sha256",
           "effective_config", "read_manifest", "process_bytes", "process_path", "warm_up", "ENGINES",
           "IMAGE_EXTENSIONS", "LOCK", "MANIFEST", "RAY_READ"]


class _CallableModule(types.ModuleType):
    """``lvss.batch`` names both this package and :func:`batch` (importing the package replaces the
    top package's lazy attribute with it), so the package can be called like the function."""

    def __call__(self, *args, **kwargs):
        return batch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
