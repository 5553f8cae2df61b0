"""lvss.models: device/dtype policy, where weights come from, loading, caching and its errors."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
import tiny_models  # noqa: E402

from lvss import models  # noqa: E402
from lvss.config import ConfigError  # noqa: E402
from lvss.models import ModelError  # noqa: E402

ENVS = (models.ENV_SAM, models.ENV_SD, models.ENV_CLIP)


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch):
    for env in ENVS:
        monkeypatch.delenv(env, raising=False)


@pytest.fixture(scope="session")
def sam_path():
    return tiny_models.sam_checkpoint()


@pytest.fixture(scope="session")
def sd_path():
    return tiny_models.sd_dir()


@pytest.fixture(scope="session")
def clip_path():
    return tiny_models.clip_dir()


# ---- device and dtype


def test_resolve_device_cpu_and_auto():
    assert models.resolve_device("cpu") == torch.device("cpu")
    assert models.resolve_device(None) == models.resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert models.resolve_device("auto").type == expected
    assert models.model_dtype("cpu") == torch.float32


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_is_a_clear_error():
    with pytest.raises(ModelError, match="CUDA is not available.*--device"):
        models.resolve_device("cuda")


def test_unknown_device_name():
    with pytest.raises(ModelError, match="'auto', 'cpu' or 'cuda'"):
        models.resolve_device("tpu")
    assert issubclass(ModelError, ConfigError)


# ---- where a model comes from


def test_config_value_wins_over_environment(monkeypatch, sam_path, tmp_path):
    assert models.model_spec("sam", None) is None
    monkeypatch.setenv(models.ENV_SAM, sam_path)
    env = models.model_spec("sam", None)
    assert env.value == sam_path and env.origin == f"environment {models.ENV_SAM}" and env.location == "local file"
    cfg = models.model_spec("sam", str(tmp_path))
    assert cfg.origin == "config segment.sam_checkpoint" and cfg.location == "local directory"
    assert models.model_spec("sam", "  ").origin.startswith("environment")  # blank config = unset


def test_classify_location(tmp_path):
    assert models.classify_location("runwayml/stable-diffusion-v1-5") == "hub id"
    assert models.classify_location("ybelkada/segment-anything:checkpoints/sam_vit_b_01ec64.pth") == "hub id"
    assert models.classify_location("https://example.org/sam.pth") == "url"
    assert models.classify_location(str(tmp_path / "nope.pth")) == "missing path"
    assert models.classify_location("./missing/dir") == "missing path"


def test_require_spec_names_the_setting():
    with pytest.raises(ModelError) as e:
        models.require_spec("sd", None)
    assert "simplify.sd_model" in str(e.value) and "--sd-model" in str(e.value) and models.ENV_SD in str(e.value)


# ---- SAM architecture from shapes


@pytest.mark.parametrize("name", ["vit_b", "vit_l", "vit_h"])
def test_released_sam_types_are_recognised_from_shapes(name):
    with torch.device("meta"):  # shapes only, no memory
        state = models.build_sam_model(models.sam_arch(name)).state_dict()
    arch = models.infer_sam_arch(state)
    assert arch == models.sam_arch(name)
    assert arch.name == name


def test_custom_sam_is_recognised_from_shapes():
    arch = models.infer_sam_arch(tiny_models.build_tiny_sam().state_dict())
    assert (arch.name, arch.embed_dim, arch.depth, arch.num_heads) == ("custom", 32, 2, 2)
    assert (arch.global_attn_indexes, arch.window_size, arch.img_size, arch.prompt_embed_dim) == ((1,), 4, 128, 32)
    assert (arch.mask_in_chans, arch.decoder_mlp_dim, arch.iou_head_hidden_dim, arch.mlp_ratio) == (8, 64, 32, 2.0)


# ---- loading and caching


def test_sam_loads_from_file_and_directory_with_the_same_weights(sam_path):
    models.clear_cache()
    a = models.load_sam(sam_path, "cpu")
    b = models.load_sam(os.path.dirname(sam_path), "cpu")
    ref = tiny_models.build_tiny_sam().state_dict()
    for m in (a, b):
        got = m.model.state_dict()
        assert all(torch.equal(got[k], ref[k]) for k in ref)
        assert m.arch.name == "custom" and m.device == torch.device("cpu")


def test_loaded_models_are_cached(sam_path, clip_path):
    models.clear_cache()
    a = models.load_sam(sam_path, "cpu")
    assert models.load_sam(models.model_spec("sam", sam_path), "cpu") is a
    c = models.load_clip(clip_path, "cpu")
    assert models.load_clip(clip_path, "cpu") is c
    assert models.cache_size() == 2
    models.clear_cache()
    assert models.load_sam(sam_path, "cpu") is not a


def test_sd_components_load(sd_path):
    sd = models.load_sd(sd_path, "cpu")
    assert sd.prediction_type == "epsilon" and sd.vae_factor == 2 and sd.dtype == torch.float32
    assert sd.alphas_cumprod.shape == (1000,) and bool((sd.alphas_cumprod[1:] < sd.alphas_cumprod[:-1]).all())
    emb = sd.encode_text("")
    assert emb.shape == (1, 16, 32)
    assert not any(p.requires_grad for p in sd.unet.parameters())


def test_clip_loads_with_eager_attention(clip_path):
    clip = models.load_clip(clip_path, "cpu")
    assert clip.image_size == 32 and len(clip.mean) == 3
    assert clip.model.config._attn_implementation == "eager"


# ---- errors


def test_missing_sam_checkpoint(tmp_path):
    with pytest.raises(ModelError) as e:
        models.load_sam(str(tmp_path / "sam_vit_b.pth"), "cpu")
    msg = str(e.value)
    assert "does not exist" in msg and "segment.sam_checkpoint" in msg and models.ENV_SAM in msg


def test_corrupt_sam_checkpoint(tmp_path, sam_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(open(sam_path, "rb").read()[:2000])  # truncated download
    with pytest.raises(ModelError, match="could not be read"):
        models.load_sam(str(bad), "cpu")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(ModelError, match="--sam-checkpoint"):
        models.load_sam(str(junk), "cpu")


def test_wrong_model_type_for_sam(tmp_path, clip_path):
    other = tmp_path / "not_sam.pth"
    torch.save(torch.nn.Linear(3, 4).state_dict(), other)
    with pytest.raises(ModelError, match="not a segment-anything SAM"):
        models.load_sam(str(other), "cpu")
    with pytest.raises(ModelError, match="not a segment-anything SAM"):  # a CLIP safetensors file
        models.load_sam(os.path.join(clip_path, "model.safetensors"), "cpu")


def test_sam_state_dict_with_wrong_shapes(tmp_path):
    state = tiny_models.build_tiny_sam().state_dict()
    state["mask_decoder.iou_token.weight"] = torch.zeros(1, 7)
    path = tmp_path / "mismatch.pth"
    torch.save(state, path)
    with pytest.raises(ModelError, match="does not match"):
        models.load_sam(str(path), "cpu")


def test_sam_directory_needs_exactly_one_checkpoint(tmp_path, sam_path):
    for name in ("a.pth", "b.pth"):
        (tmp_path / name).write_bytes(open(sam_path, "rb").read())
    with pytest.raises(ModelError, match="exactly one"):
        models.load_sam(str(tmp_path), "cpu")


def test_wrong_model_type_for_sd(clip_path, sam_path):
    with pytest.raises(ModelError, match="model_index.json"):
        models.load_sd(clip_path, "cpu")
    with pytest.raises(ModelError, match="single file"):
        models.load_sd(sam_path, "cpu")


def test_sdxl_is_refused(tmp_path):
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusionXLPipeline", "unet": [], '
                                               '"text_encoder_2": []}')
    with pytest.raises(ModelError, match="1.x or 2.x"):
        models.load_sd(str(tmp_path), "cpu")


def test_corrupt_sd_component(tmp_path, sd_path):
    import shutil

    bad = tmp_path / "sd"
    shutil.copytree(sd_path, bad)
    weights = [f for f in os.listdir(bad / "unet") if f.endswith((".safetensors", ".bin"))][0]
    (bad / "unet" / weights).write_bytes(b"not a tensor file")
    with pytest.raises(ModelError, match="missing or corrupt.*simplify.sd_model"):
        models.load_sd(str(bad), "cpu")


def test_wrong_model_type_for_clip(sd_path, sam_path):
    with pytest.raises(ModelError, match="model_type 'clip_text_model'"):
        models.load_clip(os.path.join(sd_path, "text_encoder"), "cpu")
    with pytest.raises(ModelError, match="single file"):
        models.load_clip(sam_path, "cpu")


def test_hub_id_without_network_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    for loader, kind in ((models.load_sd, "sd"), (models.load_clip, "clip"), (models.load_sam, "sam")):
        with pytest.raises(ModelError) as e:
            loader("lvss-test/no-such-model", "cpu")
        msg = str(e.value)
        assert "hub id" in msg and "local" in msg and models.SETTINGS[kind][2] in msg


def test_import_lvss_does_not_import_heavy_dependencies():
    code = ("import sys, lvss, lvss.models, lvss.stages, lvss.cli.info, lvss.segment.sam, lvss.simplify.sds, "
            "lvss.saliency.clip_rollout, lvss.saliency.maps\n"
            "print(sorted(m for m in ('diffusers', 'transformers', 'segment_anything') if m in sys.modules))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": root}, check=True)
    assert out.stdout.strip() == "[]"
