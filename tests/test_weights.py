"""lvss.models.weights: named checkpoint sets (--models paper), downloaded once, verified, shown by lvss info.

No real download is possible here, so the file download path runs against an HTTP server on
127.0.0.1 serving a tiny SAM checkpoint (tests/tiny_models.py); the cache is a temporary TORCH_HOME.
"""
from __future__ import annotations

import argparse
import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest

from lvss.models import weights

import tiny_models


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests = {}, []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("LVSS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    import torch

    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # follow TORCH_HOME
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def tiny_sam(http_server, monkeypatch):
    """The 'paper' set with its SAM entry served from loopback (a tiny checkpoint, real SHA-256)."""
    data = Path(tiny_models.sam_checkpoint()).read_bytes()
    http_server.files["/segment_anything/sam_tiny.pth"] = data
    ck = weights.FileCheckpoint("sam", "SAM (tiny)", http_server.url + "/segment_anything/sam_tiny.pth",
                                "sam_tiny.pth", hashlib.sha256(data).hexdigest(), len(data))
    monkeypatch.setitem(weights.MODEL_SETS, "paper", (ck,))
    return ck, data


def test_paper_set_names_the_published_checkpoints():
    kinds = {e.kind: e for e in weights.MODEL_SETS["paper"]}
    assert set(kinds) == {"sam", "sd", "clip"}
    assert kinds["sam"].url.endswith("/sam_vit_h_4b8939.pth") and kinds["sam"].url.startswith("https://")
    assert len(kinds["sam"].sha256) == 64 and kinds["sam"].size == 2564550879
    assert kinds["sd"].repo == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert kinds["clip"].repo == "openai/clip-vit-base-patch16"


def test_download_once_with_progress_and_sha256(cache, tiny_sam, http_server, capsys):
    ck, data = tiny_sam
    path = weights.fetch_file(ck)
    assert Path(path) == cache / "sam_tiny.pth" and Path(path).read_bytes() == data
    err = capsys.readouterr().err
    assert "downloading SAM (tiny)" in err and "100%" in err  # the progress bar reached its end
    assert http_server.requests == ["/segment_anything/sam_tiny.pth"]
    assert not Path(path + ".part").exists()
    # cached and verified: no second request, no second check
    assert weights.fetch_file(ck) == path
    assert len(http_server.requests) == 1
    assert weights.cached_path(ck) == path
    # the downloaded file is a loadable SAM checkpoint
    from lvss import models

    sam = models.load_sam(path, "cpu")
    assert sam.arch.embed_dim == 32


def test_wrong_sha256_deletes_the_download(cache, tiny_sam):
    ck, _ = tiny_sam
    bad = weights.FileCheckpoint(ck.kind, ck.title, ck.url, ck.filename, "0" * 64, ck.size)
    with pytest.raises(weights.WeightsError, match="corrupt: SHA-256 .* expected 0000"):
        weights.fetch_file(bad, progress=False)
    assert not any(cache.iterdir())


def test_short_download_is_refused(cache, tiny_sam):
    ck, data = tiny_sam
    longer = weights.FileCheckpoint(ck.kind, ck.title, ck.url, ck.filename, "", len(data) + 10)
    with pytest.raises(weights.WeightsError, match=f"stopped after {len(data)} of {len(data) + 10} bytes"):
        weights.fetch_file(longer, progress=False)
    assert not (cache / ck.filename).exists()


def test_changed_cached_file_is_checked_and_fetched_again(cache, tiny_sam, http_server, capsys):
    ck, data = tiny_sam
    path = Path(weights.fetch_file(ck, progress=False))
    path.write_bytes(b"damaged" + data[7:])
    os.utime(path, (1, 1))  # changed since it was verified
    assert weights.cached_path(ck) is None
    assert Path(weights.fetch_file(ck, progress=False)).read_bytes() == data
    assert (cache / "sam_tiny.pth.corrupt").is_file()
    assert len(http_server.requests) == 2
    assert "does not match the published SHA-256" in capsys.readouterr().err


def test_missing_url_and_offline_errors(cache, tiny_sam, http_server, monkeypatch):
    ck, _ = tiny_sam
    gone = weights.FileCheckpoint("sam", "SAM (gone)", http_server.url + "/nothing.pth", "nothing.pth")
    with pytest.raises(weights.WeightsError, match="SAM \\(gone\\) from .*/nothing.pth failed \\(Not Found\\)"):
        weights.fetch_file(gone, progress=False)
    monkeypatch.setenv("LVSS_OFFLINE", "1")
    with pytest.raises(weights.WeightsError, match="downloads are disabled"):
        weights.fetch_file(ck, progress=False)
    assert http_server.requests == ["/nothing.pth"]


def _args(**kw) -> argparse.Namespace:
    from lvss.cli.info import add_model_arguments

    p = argparse.ArgumentParser()
    add_model_arguments(p)
    p.add_argument("--device", default=None)
    p.add_argument("--json", action="store_true")
    argv = []
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", v]
    return p.parse_args(argv)


def test_models_paper_fills_the_settings_and_info_shows_the_cache(cache, tiny_sam, http_server, capsys):
    from lvss.cli.info import apply_model_arguments, run_info

    ck, _ = tiny_sam
    assert run_info(_args(models="paper")) == 0  # info downloads nothing
    out = capsys.readouterr().out
    assert "sam: SAM (tiny): not downloaded" in out and http_server.requests == []
    cfg = apply_model_arguments(_args(models="paper"))
    assert cfg.segment.sam_checkpoint == str(cache / "sam_tiny.pth")
    assert len(http_server.requests) == 1
    assert run_info(_args(models="paper")) == 0
    out = capsys.readouterr().out
    assert f"sam: SAM (tiny): cached" in out and "SHA-256 verified" in out and str(cache / "sam_tiny.pth") in out
    # its own flag wins over the set, and then nothing is fetched for it
    cfg = apply_model_arguments(_args(models="paper", sam_checkpoint="/my/sam.pth"))
    assert cfg.segment.sam_checkpoint == "/my/sam.pth" and len(http_server.requests) == 1


def test_unknown_set_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        _args(models="everything")
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(weights.WeightsError, match="unknown model set 'everything'; known: paper"):
        weights.model_set("everything")


def test_hub_models_take_one_copy_of_the_weights_and_need_every_part(tmp_path):
    sd = weights.SD_15
    files = ["model_index.json", "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.bin",
             "vae/diffusion_pytorch_model.bin", "text_encoder/model.safetensors"]
    pats = weights._hub_patterns(sd, files)
    assert "unet/diffusion_pytorch_model.safetensors" in pats and "unet/diffusion_pytorch_model.bin" not in pats
    assert "vae/diffusion_pytorch_model.bin" in pats  # the only copy there is
    with pytest.raises(weights.WeightsError, match="not the expected CLIP ViT-B/16"):
        weights._hub_patterns(weights.CLIP_B16, ["config.json"])
    snap = tmp_path / "snap"
    for rel in ("config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
                "vocab.json", "merges.txt", "special_tokens_map.json"):
        (snap / rel).parent.mkdir(parents=True, exist_ok=True)
        (snap / rel).write_text("{}")
    assert not weights._complete(weights.CLIP_B16, str(snap))  # no weights yet
    (snap / "pytorch_model.bin").write_bytes(b"w")
    assert weights._complete(weights.CLIP_B16, str(snap))


def test_hub_model_offline_and_not_cached(cache, monkeypatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("LVSS_OFFLINE", "1")
    assert weights.cached_path(weights.CLIP_B16) is None
    with pytest.raises(weights.WeightsError, match="not in the Hugging Face cache and downloads are disabled"):
        weights.fetch_hub(weights.CLIP_B16, progress=False)
