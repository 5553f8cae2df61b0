"""lvss.stages and lvss.cli.info: choosing learned vs classical stages, running them through the same
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

from lvss import models, stages
from lvss.cli import info  # noqa: E402
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


def test_cost_knobs_fold_into_the_config_and_bad_values_are_usage_errors(capsys):
    p = argparse.ArgumentParser()
    info.add_model_arguments(p)
    args = p.parse_args(["--sam-points-per-side", "8", "--sds-iterations", "3", "--sds-guidance-size", "256"])
    cfg = info.apply_model_arguments(args, VectorizeConfig())
    assert cfg.segment.sam_points_per_side == 8
    assert (cfg.simplify.sds_iterations_per_level, cfg.simplify.sds_guidance_size) == (3, 256)
    for flag, bad in (("--sam-points-per-side", "0"), ("--sds-iterations", "2.5"), ("--sds-guidance-size", "8")):
        with pytest.raises(SystemExit):
            p.parse_args([flag, bad])
        assert flag in capsys.readouterr().err
    with pytest.raises(ConfigError, match="sam_points_per_side"):
        VectorizeConfig(segment=SegmentConfig(sam_points_per_side=0))
    with pytest.raises(ConfigError, match="sds_guidance_size"):
        VectorizeConfig(simplify=SimplifyConfig(sds_guidance_size=4096))


def test_info_states_the_cpu_cost_of_learned_stages(learned_cfg, capsys):
    d = stages.describe_stages(learned_cfg)
    assert "GPU server" in d["segment"]["cpu_cost"] and "4² point prompts" in d["segment"]["cpu_cost"]
    assert "GPU server" in d["simplify"]["cpu_cost"] and "2 iterations (2 levels x 1)" in d["simplify"]["cpu_cost"]
    assert "cpu_cost" not in stages.describe_stages(VectorizeConfig(device="cpu"))["segment"]
    args = _parser().parse_args(["info", "--sam-checkpoint", tiny_models.sam_checkpoint(), "--device", "cpu"])
    args.func(args)
    assert "cost: SAM ViT-B" in capsys.readouterr().out


# -- running the stages for the pipeline ---------------------------------------------------------------

class _Recorder:
    """A segmenter stand-in with SAM's interface that records the image sizes it was given and returns
    one centred box per level (or nothing when ``empty``)."""

    input_size = 1024

    def __init__(self, empty: bool = False):
        self.seen, self.empty = [], empty

    def __call__(self, image, out_size=None, progress=None, cancel=None):
        self.seen.append(image.shape[:2])
        h, w = out_size or image.shape[:2]
        if self.empty:
            return MaskSet(np.zeros((0, h, w), bool), np.zeros(0, np.float32), np.zeros((0, 3), np.float32))
        m = np.zeros((1, h, w), bool)
        m[0, h // 4:3 * h // 4, w // 4:3 * w // 4] = True
        if progress is not None:
            progress(1.0, "done")
        return MaskSet(m, np.ones(1, np.float32), np.full((1, 3), 0.5, np.float32))


def _levels(h=24, w=32, n=3):
    base = tiny_models.photo(h, w)
    return [base] + [np.clip(base * 0.5 + 0.25 * k, 0, 1).astype(np.float32) for k in range(1, n)]


@pytest.mark.parametrize("source_shape,expected", [((600, 800, 4), (600, 800)), ((1500, 2000, 3), (768, 1024)),
                                                    ((12, 16, 3), None)])
def test_level_zero_is_segmented_from_the_original_at_the_segmenters_input_size(source_shape, expected):
    levels = _levels()
    source = np.full(source_shape, 200, np.uint8)
    rec = _Recorder()
    out = stages.segment_levels(VectorizeConfig(), levels, source=source, segmenter=rec)
    assert rec.seen[0] == (expected or (24, 32))  # never below the working size
    assert rec.seen[1:] == [(24, 32)] * 2  # coarser levels as given
    assert all(ms.masks.shape[1:] == (24, 32) for ms in out.masksets)
    assert out.notes == [] and out.fallback_levels == []


def test_classical_segmenter_sees_the_original_up_to_512_px():
    from lvss.segment.classical import ClassicalSegmenter

    levels = _levels()
    seg = ClassicalSegmenter()
    seen = []
    orig = seg.__call__

    class Spy(ClassicalSegmenter):
        def __call__(self, image, out_size=None, progress=None, cancel=None):
            seen.append(image.shape[:2])
            return orig(image, out_size, progress, cancel)

    source = (np.random.default_rng(0).random((900, 1200, 3)) * 255).astype(np.uint8)
    out = stages.segment_levels(VectorizeConfig(), levels, source=source, segmenter=Spy())
    assert seen[0] == (384, 512) and out.masksets[0].masks.shape[1:] == (24, 32)


def test_a_segmenter_that_finds_nothing_falls_back_to_the_classical_one_on_every_level():
    levels = _levels()
    events = []
    out = stages.segment_levels(VectorizeConfig(), levels, segmenter=_Recorder(empty=True),
                                progress=lambda f, m: events.append((f, m)))
    assert out.fallback_levels == [0, 1, 2] and out.empty_levels == []
    assert all(len(ms) > 0 and ms.masks.shape[1:] == (24, 32) for ms in out.masksets)
    assert len(out.notes) == 3 and "found no masks; used the classical segmenter" in out.notes[0]
    assert any("used the classical segmenter" in m for _, m in events)
    assert [f for f, _ in events] == sorted(f for f, _ in events) and events[-1][0] == 1.0
    assert out.metrics["segment_fallback_levels"] == 3.0


def test_sam_with_no_masks_anywhere_falls_back(learned_cfg):
    strict = replace(learned_cfg, segment=replace(learned_cfg.segment, sam_pred_iou_thresh=1e9))
    out = stages.segment_levels(strict, _levels(n=2))
    assert out.fallback_levels == [0, 1] and all(len(ms) > 0 for ms in out.masksets)
    assert out.notes[0].startswith("level 0: SAM found no masks")


def test_empty_mask_sets_reach_layering_and_compact_labels_without_crashing():
    from lvss.layering import build_layers
    from lvss.compact import labels_from_masks

    empty = MaskSet(np.zeros((0, 8, 10), bool), np.zeros(0, np.float32), np.zeros((0, 3), np.float32))
    assert len(build_layers([empty, empty])) == 0
    valid = np.ones((8, 10), bool)
    valid[:, 5] = False
    labels = labels_from_masks(empty.masks, valid)
    assert set(np.unique(labels[valid])) == {0, 1} and (labels[~valid] == -1).all()  # one region per side


def test_pipeline_with_a_segmenter_that_finds_nothing(monkeypatch):
    from lvss import pipeline

    monkeypatch.setattr(stages, "get_segmenter", lambda cfg: _Recorder(empty=True))
    img = (tiny_models.photo(32, 32) * 255).astype(np.uint8)
    events = []
    cfg = VectorizeConfig(paths=8, work_size=32, simplify=SimplifyConfig(levels=1),
                          segment=SegmentConfig(method="sam"),  # a learned segmenter, stood in for
                          optimize=replace(VectorizeConfig().optimize, structure_iters=2, refine_iters=2))
    res = pipeline.run(img, cfg, progress=events.append)
    assert res.metrics["segment_fallback_levels"] == 2.0 and res.scene.num_paths > 0
    assert [n for n in res.notes if "classical segmenter" in n] == [
        "level 0: SAM found no masks; used the classical segmenter",
        "level 1: SAM found no masks; used the classical segmenter"]
    assert any("used the classical segmenter" in e.message for e in events)


def test_simplify_levels_passes_progress_and_cancel(learned_cfg, image):
    import threading

    from lvss.types import Cancelled

    events = []
    seq = stages.simplify_levels(learned_cfg, image, progress=lambda f, m: events.append(f))
    assert len(seq.levels) == 3 and events[-1] == 1.0 and len(events) >= 3
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        stages.simplify_levels(learned_cfg, image, cancel=stop)
    classical = stages.simplify_levels(VectorizeConfig(simplify=SimplifyConfig(levels=1)), image)
    assert len(classical.levels) == 2


def test_server_start_flags_set_every_jobs_cost_knobs():
    pytest.importorskip("grpc")
    from server import cli as server_cli

    p = argparse.ArgumentParser()
    server_cli._add_arguments(p)
    args = p.parse_args(["--sam-points-per-side", "12", "--sds-iterations", "5", "--sds-guidance-size", "384"])
    base = server_cli.options_from_args(args).base_config
    assert base.segment.sam_points_per_side == 12
    assert (base.simplify.sds_iterations_per_level, base.simplify.sds_guidance_size) == (5, 384)
    with pytest.raises(SystemExit):
        p.parse_args(["--sds-iterations", "0"])


def test_compact_mode_with_a_segmenter_that_finds_nothing(monkeypatch):
    from lvss import pipeline

    monkeypatch.setattr(stages, "get_segmenter", lambda cfg: _Recorder(empty=True))
    img = (tiny_models.photo(32, 32) * 255).astype(np.uint8)
    cfg = VectorizeConfig(paths=8, work_size=32, mode="compact", segment=SegmentConfig(method="sam"),
                          compact=replace(VectorizeConfig().compact, rounds=2))
    res = pipeline.run(img, cfg)
    assert res.notes[0] == "level 0: SAM found no masks; used the classical segmenter"
    assert res.metrics["masks"] > 1 and "_notes" not in res.metrics


def test_compact_mode_segments_the_original_too(monkeypatch):
    """Compact mode hands the segmenter the full-resolution original, like layered mode."""
    from lvss.config import OptimizeConfig
    from lvss.pipeline import run

    rec = _Recorder()
    monkeypatch.setattr(stages, "get_segmenter", lambda cfg: rec)
    img = (np.random.default_rng(1).random((300, 400, 3)) * 255).astype(np.uint8)
    cfg = VectorizeConfig(paths=6, mode="compact", work_size=48, device="cpu",
                          optimize=OptimizeConfig(structure_iters=2, refine_iters=2))
    run(img, cfg)
    assert rec.seen and rec.seen[0] == (300, 400)
