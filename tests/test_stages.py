"""lvss.stages and lvss.info: choosing learned vs classical stages, running them through the same
interfaces, and the ``lvss info`` report."""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
import tiny_models  # noqa: E402

from lvss import info, models, stages  # noqa: E402
from lvss.config import ConfigError, SaliencyConfig, SegmentConfig, SimplifyConfig, VectorizeConfig  # noqa: E402
from lvss.models import ModelError  # noqa: E402
from lvss.types import MaskSet, SimplifyResult  # noqa: E402


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch):
    for env in (models.ENV_SAM, models.ENV_SD, models.ENV_CLIP):
        monkeypatch.delenv(env, raising=False)


@pytest.fixture(scope="session")
def learned_cfg():
    """Every stage on 'auto' with tiny weights configured, sized to run in about a second."""
    return VectorizeConfig(
        device="cpu",
        simplify=SimplifyConfig(levels=2, sd_model=tiny_models.sd_dir(), sds_iterations_per_level=1,
                                sds_guidance_size=32),
        segment=SegmentConfig(sam_checkpoint=tiny_models.sam_checkpoint(), sam_points_per_side=4,
                              sam_pred_iou_thresh=-1e9, sam_stability_score_thresh=0.0),
        saliency=SaliencyConfig(clip_model=tiny_models.clip_dir(), prompt="a face"),
    )


@pytest.fixture(scope="session")
def image():
    return tiny_models.photo(24, 32)


def test_auto_without_weights_is_classical():
    cfg = VectorizeConfig()
    assert stages.simplify_choice(cfg)[:2] == ("classical", None)
    assert stages.segment_choice(cfg)[:2] == ("classical", None)
    assert stages.saliency_choice(cfg)[:2] == ("none", None)


def test_auto_with_weights_is_learned(learned_cfg):
    assert stages.simplify_choice(learned_cfg)[0] == "sds"
    assert stages.segment_choice(learned_cfg)[0] == "sam"
    assert stages.saliency_choice(learned_cfg)[0] == "clip"
    no_prompt = replace(learned_cfg, saliency=replace(learned_cfg.saliency, prompt=""))
    assert stages.saliency_choice(no_prompt)[0] == "none"


def test_environment_variables_select_learned_stages(monkeypatch):
    monkeypatch.setenv(models.ENV_SAM, tiny_models.sam_checkpoint())
    monkeypatch.setenv(models.ENV_SD, tiny_models.sd_dir())
    method, spec, _ = stages.segment_choice(VectorizeConfig())
    assert method == "sam" and spec.origin == f"environment {models.ENV_SAM}"
    assert stages.simplify_choice(VectorizeConfig())[0] == "sds"
    forced = VectorizeConfig(segment=SegmentConfig(method="classical"))
    assert stages.segment_choice(forced)[:2] == ("classical", None)


def test_learned_stages_run_through_the_protocol_signatures(learned_cfg, image):
    simplify = stages.get_simplifier(learned_cfg)
    segment = stages.get_segmenter(learned_cfg)
    saliency = stages.get_saliency(learned_cfg)
    seq = simplify(image, 2, 0)
    assert isinstance(seq, SimplifyResult) and len(seq.levels) == 3
    masks = [segment(level) for level in seq.levels]
    assert all(isinstance(m, MaskSet) and m.masks.shape[1:] == image.shape[:2] for m in masks)
    sal = saliency(image, "a face")
    assert sal.shape == image.shape[:2] and 0.0 <= sal.min() and sal.max() <= 1.0 and sal.std() > 0
    # the stage objects share the process-wide model cache: asking again loads nothing new
    n = models.cache_size()
    stages.get_segmenter(learned_cfg)
    assert models.cache_size() == n


def test_classical_stages_run_through_the_same_signatures(image):
    cfg = VectorizeConfig()
    seq = stages.get_simplifier(cfg)(image, 1, 0)
    assert isinstance(seq, SimplifyResult) and len(seq.levels) == 2 and seq.levels[1].shape == image.shape
    ms = stages.get_segmenter(cfg)(image)
    assert isinstance(ms, MaskSet) and ms.masks.shape[1:] == image.shape[:2]
    sal = stages.get_saliency(cfg)(image, "")
    assert sal.shape == image.shape[:2] and (sal == 1).all()


def test_mask_saliency_from_config_and_cli_spelling(tmp_path, image):
    from PIL import Image

    path = tmp_path / "m.png"
    Image.fromarray(np.full((4, 4), 255, np.uint8)).save(path)
    for sal_cfg in (SaliencyConfig(source="mask", mask_path=str(path)), SaliencyConfig(source=f"mask:{path}"),
                    SaliencyConfig(mask_path=str(path))):
        cfg = VectorizeConfig(saliency=sal_cfg)
        assert stages.saliency_choice(cfg)[0] == "mask"
        assert (stages.get_saliency(cfg)(image, "") == 1).all()
    with pytest.raises(ConfigError, match="mask_path"):
        stages.get_saliency(VectorizeConfig(saliency=SaliencyConfig(source="mask")))


def test_learned_stage_requested_without_weights_names_the_setting():
    with pytest.raises(ModelError, match=models.ENV_SAM):
        stages.get_segmenter(VectorizeConfig(segment=SegmentConfig(method="sam")))
    with pytest.raises(ModelError, match="--sd-model"):
        stages.get_simplifier(VectorizeConfig(simplify=SimplifyConfig(method="sds")))
    with pytest.raises(ModelError, match="saliency.clip_model"):
        stages.get_saliency(VectorizeConfig(saliency=SaliencyConfig(source="clip", prompt="x")))


def test_unknown_method_is_a_config_error():
    with pytest.raises(ConfigError, match="segment.method"):
        stages.get_segmenter(VectorizeConfig(segment=SegmentConfig(method="watershed")))
    with pytest.raises(ConfigError, match="saliency.source"):
        stages.saliency_choice(VectorizeConfig(saliency=SaliencyConfig(source="eyes")))


def test_describe_stages(learned_cfg, tmp_path):
    d = stages.describe_stages(learned_cfg)
    assert d["device"] == "cpu" and d["dtype"] == "float32"
    assert (d["simplify"]["stage"], d["segment"]["stage"], d["saliency"]["stage"]) == ("sds", "sam", "clip")
    assert d["segment"]["model"] == {"value": tiny_models.sam_checkpoint(), "location": "local file",
                                     "origin": "config segment.sam_checkpoint"}
    assert d["packages"]["torch"] is not None
    plain = stages.describe_stages(VectorizeConfig(segment=SegmentConfig(sam_checkpoint=str(tmp_path / "x.pth"))))
    assert plain["simplify"]["stage"] == "classical" and plain["saliency"]["stage"] == "none"
    assert "the path does not exist" in plain["segment"]["problems"]
    json.dumps(d)  # serialisable for `lvss info --json`


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_describe_stages_reports_missing_cuda_instead_of_raising():
    d = stages.describe_stages(VectorizeConfig(device="cuda"))
    assert d["device"] is None and "CUDA is not available" in d["device_problem"]


def _parser():
    p = argparse.ArgumentParser(prog="lvss")
    info.add_parser(p.add_subparsers(dest="command"))
    return p


def test_info_subcommand_prints_the_report(capsys):
    args = _parser().parse_args(["info", "--sam-checkpoint", tiny_models.sam_checkpoint(), "--device", "cpu",
                                 "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["segment"]["stage"] == "sam" and out["simplify"]["stage"] == "classical" and out["device"] == "cpu"
    args = _parser().parse_args(["info"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "segment: classical" in text and "device:" in text


def test_model_arguments_fold_into_the_config():
    p = argparse.ArgumentParser()
    info.add_model_arguments(p)
    base = VectorizeConfig(paths=64)
    args = p.parse_args(["--segmenter", "sam", "--simplifier", "classical", "--saliency", "mask:/tmp/m.png",
                         "--sam-checkpoint", "s.pth", "--sd-model", "owner/sd", "--clip-model", "c",
                         "--prompt", "the dog"])
    cfg = info.apply_model_arguments(args, base)
    assert cfg.paths == 64 and cfg.segment.method == "sam" and cfg.simplify.method == "classical"
    assert (cfg.saliency.source, cfg.saliency.mask_path, cfg.saliency.prompt) == ("mask", "/tmp/m.png", "the dog")
    assert (cfg.segment.sam_checkpoint, cfg.simplify.sd_model, cfg.saliency.clip_model) == ("s.pth", "owner/sd", "c")
    assert info.apply_model_arguments(p.parse_args([]), base) == base
    with pytest.raises(SystemExit):
        p.parse_args(["--saliency", "eyes"])
