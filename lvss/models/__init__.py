"""Where model weights come from, which device and dtype they run on, and a cache of loaded models.

Every learned stage gets its weights through this module:

* SAM (segment-anything): ``SegmentConfig.sam_checkpoint`` / ``--sam-checkpoint`` / ``LVSS_SAM_CHECKPOINT``
  — a ``.pth`` / ``.safetensors`` state dict, a directory holding exactly one, a hub file
  ``owner/repo:file.pth`` (or ``owner/repo`` with a single checkpoint file) or an ``https://`` URL.
* Stable Diffusion 1.x / 2.x (diffusers): ``SimplifyConfig.sd_model`` / ``--sd-model`` / ``LVSS_SD_MODEL``
  — a directory in diffusers layout (``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``,
  ``tokenizer/``, ``scheduler/``) or a hub id.
* CLIP (transformers): ``SaliencyConfig.clip_model`` / ``--clip-model`` / ``LVSS_CLIP_MODEL`` — a
  directory written by ``CLIPModel.save_pretrained`` (plus tokenizer files) or a hub id.

A config field wins over the environment variable. Hub ids are downloaded only when the machine can
(``HF_HUB_OFFLINE=1`` or ``LVSS_OFFLINE=1`` restrict loading to the local Hugging Face cache).
Every failure raises :class:`ModelError`, whose message names the setting to fix.

Device and dtype policy lives here only: :func:`resolve_device`, :func:`model_dtype` and
:func:`autocast`. Loaded models are cached per (source, device), so a long-running server loads each
once; :func:`clear_cache` empties the cache.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from ..config import ConfigError

ENV_SAM = "LVSS_SAM_CHECKPOINT"
ENV_SD = "LVSS_SD_MODEL"
ENV_CLIP = "LVSS_CLIP_MODEL"

# kind -> (config field, CLI flag, environment variable, what it must point at)
SETTINGS: dict[str, tuple[str, str, str, str]] = {
    "sam": ("segment.sam_checkpoint", "--sam-checkpoint", ENV_SAM,
            "a segment-anything checkpoint (.pth/.safetensors file, directory, owner/repo:file or URL)"),
    "sd": ("simplify.sd_model", "--sd-model", ENV_SD,
           "a Stable Diffusion 1.x/2.x model (diffusers directory or hub id)"),
    "clip": ("saliency.clip_model", "--clip-model", ENV_CLIP,
             "a CLIP model (transformers directory or hub id)"),
}

_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(:[^\s]+)?$")


class ModelError(ConfigError):
    """A model cannot be loaded (missing, corrupt, wrong type, no network, package missing).

    The message names the setting to change. Subclasses :class:`~lvss.config.ConfigError` because it is
    always fixed by changing an option.
    """


def setting_hint(kind: str) -> str:
    """Human-readable list of the places that set one model, e.g. for error messages."""
    field_name, flag, env, _ = SETTINGS[kind]
    return f"{field_name} (CLI {flag}, environment {env})"


# --------------------------------------------------------------------------------------------------
# device and dtype (the only place that decides them)


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Turn a device option into a :class:`torch.device`.

    name: "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N"; None means "auto".
    Raises :class:`ModelError` when CUDA is asked for but this torch build or machine has none.
    """
    import torch
    if isinstance(name, torch.device):
        name = str(name)
    name = "auto" if name is None else str(name).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or re.fullmatch(r"cuda:\d+", name):
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else "no visible CUDA device"
            raise ModelError(f"device {name!r} was requested but CUDA is not available ({build}, "
                             f"torch {torch.__version__}); use device 'cpu' or 'auto' (CLI --device)")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ModelError(f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA device(s) "
                             "visible; choose another index or 'auto' (CLI --device)")
        return dev
    raise ModelError(f"device must be 'auto', 'cpu' or 'cuda', got {name!r} (CLI --device)")


def model_dtype(device: torch.device | str) -> torch.dtype:
    """Compute dtype for a device: float16 on CUDA GPUs with native fp16 arithmetic (compute
    capability >= 6.0), float32 otherwise. ``LVSS_FP32=1`` forces float32 everywhere."""
    import torch
    device = torch.device(device)
    if device.type != "cuda" or os.environ.get("LVSS_FP32", "") not in ("", "0"):
        return torch.float32
    major, _ = torch.cuda.get_device_capability(device)
    return torch.float16 if major >= 6 else torch.float32


def autocast(device: torch.device | str):
    """Mixed-precision context for stages that keep float32 weights (SAM, CLIP): fp16 matmuls where
    :func:`model_dtype` says so, float32 reductions (softmax, layer norm); a no-op on CPU."""
    import torch
    device = torch.device(device)
    dtype = model_dtype(device)
    if device.type == "cuda" and dtype != torch.float32:
        return torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext()


# --------------------------------------------------------------------------------------------------
# where a model comes from


@dataclass(frozen=True)
class ModelSpec:
    """One configured model source.

    kind: "sam" | "sd" | "clip"; value: the path, hub id or URL as given; origin: where it was set
    ("config segment.sam_checkpoint" or "environment LVSS_SAM_CHECKPOINT"); location: "local file",
    "local directory", "hub id", "url" or "missing path".
    """

    kind: str
    value: str
    origin: str
    location: str

    def describe(self) -> str:
        return f"{self.location} {self.value} (from {self.origin})"


def classify_location(value: str) -> str:
    """"local file" | "local directory" | "url" | "hub id" | "missing path" for a model setting."""
    path = os.path.expanduser(value)
    if os.path.isfile(path):
        return "local file"
    if os.path.isdir(path):
        return "local directory"
    if value.startswith(("http://", "https://")):
        return "url"
    if _HUB_ID.match(value) and not value.startswith((".", "/", "~")):
        return "hub id"
    return "missing path"


def model_spec(kind: str, configured: str | None) -> ModelSpec | None:
    """The source of one model: the config value when set, else the environment variable, else None."""
    if kind not in SETTINGS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(SETTINGS)}")
    field_name, _, env, _ = SETTINGS[kind]
    if configured is not None and str(configured).strip():
        value, origin = str(configured).strip(), f"config {field_name}"
    elif os.environ.get(env, "").strip():
        value, origin = os.environ[env].strip(), f"environment {env}"
    else:
        return None
    return ModelSpec(kind, value, origin, classify_location(value))


def require_spec(kind: str, configured: str | None) -> ModelSpec:
    """Like :func:`model_spec` but raises :class:`ModelError` when nothing is configured."""
    spec = model_spec(kind, configured)
    if spec is None:
        raise ModelError(f"no {SETTINGS[kind][3]} is configured; set {setting_hint(kind)}, "
                         "or choose the classical stage")
    return spec


def _as_spec(kind: str, spec: ModelSpec | str) -> ModelSpec:
    if isinstance(spec, ModelSpec):
        return spec
    out = model_spec(kind, spec)
    if out is None:
        raise ModelError(f"empty model setting; set {setting_hint(kind)}")
    return out


def offline() -> bool:
    """True when hub downloads are disabled (``HF_HUB_OFFLINE`` or ``LVSS_OFFLINE`` set to 1/true)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "LVSS_OFFLINE"))


def _fail(spec: ModelSpec, problem: str, exc: BaseException | None = None) -> ModelError:
    detail = ""
    if exc is not None:  # first line of the cause, enough to tell truncation from a wrong format
        first = (str(exc).strip().splitlines() or [""])[0]
        detail = f" ({type(exc).__name__}: {first[:240]})"
    msg = (f"cannot load {SETTINGS[spec.kind][3]} from {spec.describe()}: {problem}{detail}. "
           f"Fix {setting_hint(spec.kind)}")
    return ModelError(msg)


def _hub_problem(spec: ModelSpec) -> str:
    if offline():
        return ("it is a hub id, downloads are disabled (HF_HUB_OFFLINE/LVSS_OFFLINE) and it is not in the "
                "local Hugging Face cache; point the setting at a local copy")
    return ("it is not a local path, and downloading it as a hub id failed (no network, wrong id, or a "
            "gated repository); point the setting at a local copy or check the id")


def _require_package(module: str, pip_name: str, spec: ModelSpec) -> None:
    if importlib.util.find_spec(module) is None:
        raise ModelError(f"{pip_name} is not installed, but {spec.describe()} needs it; "
                         f"pip install 'lvss[models]' (or {pip_name}), or unset {setting_hint(spec.kind)} "
                         "to use the classical stage")


# --------------------------------------------------------------------------------------------------
# cache

_CACHE: dict[tuple, Any] = {}
_CACHE_LOCK = threading.Lock()
_KEY_LOCKS: dict[tuple, threading.Lock] = {}


def _stamp(spec: ModelSpec) -> float:
    path = os.path.expanduser(spec.value)
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


def _cached(spec: ModelSpec, device: torch.device, loader: Callable[[], Any]) -> Any:
    """Load once per (kind, source, file time, device); concurrent callers wait for one load."""
    value = os.path.abspath(os.path.expanduser(spec.value)) if spec.location.startswith("local") else spec.value
    key = (spec.kind, value, _stamp(spec), str(device))
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with lock:
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
        model = loader()
        with _CACHE_LOCK:
            _CACHE[key] = model
        return model


def clear_cache() -> None:
    """Forget every loaded model (the next call loads again)."""
    with _CACHE_LOCK:
        _CACHE.clear()
        _KEY_LOCKS.clear()


def cache_size() -> int:
    """Number of loaded models held."""
    with _CACHE_LOCK:
        return len(_CACHE)


# --------------------------------------------------------------------------------------------------
# SAM


def sam_modules():
    """(``segment_anything.modeling``, ``segment_anything.utils.amg``).

    ``segment_anything/__init__`` imports its predictor, which needs torchvision; lvss only uses the
    model classes and the mask utilities (plain torch/numpy). When torchvision is absent the package is
    registered without running its ``__init__`` so those submodules still import.
    """
    import torch
    if importlib.util.find_spec("segment_anything") is None:
        raise ModelError("segment-anything is not installed; pip install 'lvss[models]' "
                         "(or segment-anything), or choose the classical segmenter")
    if "segment_anything" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        spec = importlib.util.find_spec("segment_anything")
        sys.modules["segment_anything"] = importlib.util.module_from_spec(spec)
    try:
        from segment_anything import modeling
        from segment_anything.utils import amg
    except Exception as e:  # a broken torchvision raises RuntimeError/OSError, not ImportError
        raise ModelError(f"segment-anything failed to import ({type(e).__name__}: {e}); if torchvision is "
                         f"installed it must match torch {torch.__version__} (or uninstall it)") from e
    return modeling, amg


@dataclass(frozen=True)
class SamArch:
    """Architecture of a SAM checkpoint, read from its state-dict shapes.

    name: "vit_b" | "vit_l" | "vit_h" for the released sizes, "custom" otherwise.
    """

    name: str
    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    window_size: int
    img_size: int = 1024
    patch_size: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    use_rel_pos: bool = True
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8  # not recoverable from shapes; every released SAM uses 8
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256


# the three released encoders: (embed_dim, depth) -> (name, heads, global attention blocks)
SAM_RELEASED = {
    (768, 12): ("vit_b", 12, (2, 5, 8, 11)),
    (1024, 24): ("vit_l", 16, (5, 11, 17, 23)),
    (1280, 32): ("vit_h", 16, (7, 15, 23, 31)),
}


def sam_arch(name: str) -> SamArch:
    """The architecture of a released SAM ("vit_b" | "vit_l" | "vit_h"), e.g. to build random weights."""
    for (dim, depth), (n, heads, glob) in SAM_RELEASED.items():
        if n == name:
            return SamArch(n, dim, depth, heads, glob, 14)
    raise ValueError(f"unknown SAM type {name!r}; expected vit_b, vit_l or vit_h")


def _count(state: dict, prefix: str) -> int:
    idx = {int(m.group(1)) for k in state for m in [re.match(re.escape(prefix) + r"(\d+)\.", k)] if m}
    return max(idx) + 1 if idx else 0


def infer_sam_arch(state: dict) -> SamArch:
    """Read a SAM architecture from a state dict's tensor shapes; raises KeyError/ValueError when the
    dict is not a segment-anything SAM."""
    pe = state["image_encoder.patch_embed.proj.weight"]  # (C, 3, p, p)
    embed_dim, patch = int(pe.shape[0]), int(pe.shape[-1])
    grid = int(state["image_encoder.pos_embed"].shape[1])
    depth = _count(state, "image_encoder.blocks.")
    if depth == 0:
        raise KeyError("image_encoder.blocks.0")
    use_rel_pos = "image_encoder.blocks.0.attn.rel_pos_h" in state
    glob, window = [], 0
    head_dim = 64
    for i in range(depth):
        if not use_rel_pos:
            break
        rel = state[f"image_encoder.blocks.{i}.attn.rel_pos_h"]  # (2 * size - 1, head_dim)
        head_dim = int(rel.shape[1])
        size = (int(rel.shape[0]) + 1) // 2
        if size == grid:
            glob.append(i)
        else:
            window = size
    if embed_dim % head_dim:
        raise ValueError(f"head size {head_dim} does not divide the embedding width {embed_dim}")
    heads = embed_dim // head_dim
    name = "custom"
    known = SAM_RELEASED.get((embed_dim, depth))
    if known and known[1] == heads and tuple(glob) == known[2] and grid * patch == 1024:
        name = known[0]
    dec_mlp = state["mask_decoder.transformer.layers.0.mlp.lin1.weight"]
    iou0 = state["mask_decoder.iou_prediction_head.layers.0.weight"]
    return SamArch(
        name=name, embed_dim=embed_dim, depth=depth, num_heads=heads, global_attn_indexes=tuple(glob),
        window_size=window, img_size=grid * patch, patch_size=patch,
        mlp_ratio=int(state["image_encoder.blocks.0.mlp.lin1.weight"].shape[0]) / embed_dim,
        qkv_bias="image_encoder.blocks.0.attn.qkv.bias" in state, use_rel_pos=use_rel_pos,
        prompt_embed_dim=int(state["image_encoder.neck.0.weight"].shape[0]),
        mask_in_chans=int(state["prompt_encoder.mask_downscaling.3.weight"].shape[0]),
        decoder_depth=_count(state, "mask_decoder.transformer.layers."),
        decoder_mlp_dim=int(dec_mlp.shape[0]),
        num_multimask_outputs=int(state["mask_decoder.mask_tokens.weight"].shape[0]) - 1,
        iou_head_depth=_count(state, "mask_decoder.iou_prediction_head.layers."),
        iou_head_hidden_dim=int(iou0.shape[0]),
    )


def build_sam_model(arch: SamArch) -> torch.nn.Module:
    """A randomly initialised ``segment_anything.modeling.Sam`` of the given architecture (eval mode)."""
    import torch
    from functools import partial

    modeling, _ = sam_modules()
    grid = arch.img_size // arch.patch_size
    sam = modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            depth=arch.depth, embed_dim=arch.embed_dim, img_size=arch.img_size, mlp_ratio=arch.mlp_ratio,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=arch.num_heads,
            patch_size=arch.patch_size, qkv_bias=arch.qkv_bias, use_rel_pos=arch.use_rel_pos,
            global_attn_indexes=arch.global_attn_indexes, window_size=arch.window_size,
            out_chans=arch.prompt_embed_dim),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=arch.prompt_embed_dim, image_embedding_size=(grid, grid),
            input_image_size=(arch.img_size, arch.img_size), mask_in_chans=arch.mask_in_chans),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=arch.num_multimask_outputs,
            transformer=modeling.TwoWayTransformer(depth=arch.decoder_depth, embedding_dim=arch.prompt_embed_dim,
                                                   mlp_dim=arch.decoder_mlp_dim, num_heads=arch.decoder_num_heads),
            transformer_dim=arch.prompt_embed_dim, iou_head_depth=arch.iou_head_depth,
            iou_head_hidden_dim=arch.iou_head_hidden_dim),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


@dataclass
class SamModel:
    """A loaded SAM: ``model`` (segment_anything Sam, eval, on ``device``), its ``arch`` and ``source``."""

    model: torch.nn.Module
    arch: SamArch
    device: torch.device
    source: str


def _sam_file(spec: ModelSpec) -> str:
    """Local checkpoint file for a SAM setting (downloading hub files / URLs when allowed)."""
    import torch
    path = os.path.expanduser(spec.value)
    if spec.location == "local file":
        return path
    if spec.location == "local directory":
        files = sorted(f for f in os.listdir(path) if f.lower().endswith(_WEIGHT_SUFFIXES))
        if len(files) != 1:
            found = ", ".join(files) if files else "none"
            raise _fail(spec, f"the directory must hold exactly one .pth/.pt/.safetensors checkpoint "
                              f"(found {found}); point the setting at the file")
        return os.path.join(path, files[0])
    if spec.location == "url":
        if offline():
            raise _fail(spec, "it is a URL and downloads are disabled (HF_HUB_OFFLINE/LVSS_OFFLINE)")
        try:
            hub_dir = os.path.join(torch.hub.get_dir(), "checkpoints")
            name = os.path.basename(spec.value.split("?")[0]) or "sam_checkpoint.pth"
            dest = os.path.join(hub_dir, name)
            if not os.path.exists(dest):
                os.makedirs(hub_dir, exist_ok=True)
                torch.hub.download_url_to_file(spec.value, dest, progress=False)
            return dest
        except Exception as e:
            raise _fail(spec, "downloading the URL failed (no network?)", e) from e
    if spec.location == "hub id":
        _require_package("huggingface_hub", "huggingface_hub", spec)
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download

        repo, _, filename = spec.value.partition(":")
        try:
            if filename:
                return hf_hub_download(repo, filename, local_files_only=offline())
            if offline():
                root = snapshot_download(repo, local_files_only=True)
                files = [os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs]
            else:
                files = HfApi().list_repo_files(repo)
        except Exception as e:
            raise _fail(spec, _hub_problem(spec), e) from e
        cands = sorted(f for f in files if f.lower().endswith(_WEIGHT_SUFFIXES))
        if len(cands) != 1:
            raise _fail(spec, f"the repository holds {len(cands)} checkpoint files ({', '.join(cands[:6])}); "
                              "name one as owner/repo:path/to/file.pth")
        try:
            return hf_hub_download(repo, cands[0], local_files_only=offline())
        except Exception as e:
            raise _fail(spec, _hub_problem(spec), e) from e
    raise _fail(spec, "the path does not exist (and it is not a hub id or URL)")


def _read_state_dict(spec: ModelSpec, path: str) -> dict:
    import torch
    try:
        if path.lower().endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise _fail(spec, f"{path} could not be read (corrupt, truncated or not a PyTorch checkpoint)", e) from e
    for key in ("model", "state_dict"):  # training checkpoints wrap the weights
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _fail(spec, f"{path} does not hold a state dict of tensors")
    return state


def load_sam(spec: ModelSpec | str, device: torch.device | str | None = None) -> SamModel:
    """Load (once per source and device) a segment-anything SAM; the architecture (vit_b / vit_l / vit_h
    or a custom ViT) is inferred from the checkpoint's tensor shapes."""
    spec = _as_spec("sam", spec)
    device = resolve_device(device)

    def load() -> SamModel:
        _require_package("segment_anything", "segment-anything", spec)
        path = _sam_file(spec)
        state = _read_state_dict(spec, path)
        if any(k.startswith("vision_encoder.") for k in state):
            raise _fail(spec, f"{path} is a Hugging Face transformers SAM; use an original segment-anything "
                              "checkpoint (sam_vit_b/l/h_*.pth)")
        try:
            arch = infer_sam_arch(state)
        except (KeyError, ValueError, IndexError) as e:
            some = ", ".join(list(state)[:4])
            raise _fail(spec, f"{path} is not a segment-anything SAM checkpoint (keys start {some})", e) from e
        model = build_sam_model(arch)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise _fail(spec, f"{path} does not match the SAM architecture inferred from it ({arch.name})",
                        e) from e
        return SamModel(model.to(device).eval(), arch, device, spec.describe())

    return _cached(spec, device, load)


# --------------------------------------------------------------------------------------------------
# Stable Diffusion (diffusers)


@dataclass
class SDModel:
    """A loaded Stable Diffusion 1.x/2.x for score distillation.

    unet, vae, text_encoder: eval, frozen, on ``device`` in ``dtype``; tokenizer: CLIP tokenizer;
    alphas_cumprod: (T,) float32 on ``device`` (the training noise schedule ᾱ_t);
    prediction_type: "epsilon" | "v_prediction"; vae_scale: latent scaling factor;
    vae_factor: image pixels per latent pixel (8 for SD).
    """

    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: Any
    alphas_cumprod: torch.Tensor
    prediction_type: str
    vae_scale: float
    vae_factor: int
    device: torch.device
    dtype: torch.dtype
    source: str
    _text_cache: dict = field(default_factory=dict, repr=False)

    def encode_text(self, prompt: str) -> torch.Tensor:
        """(1, L, D) text-encoder hidden states for ``prompt`` (cached), in ``dtype``."""
        import torch
        if prompt not in self._text_cache:
            length = min(int(self.tokenizer.model_max_length),
                         int(self.text_encoder.config.max_position_embeddings))
            ids = self.tokenizer(prompt, padding="max_length", truncation=True, max_length=length,
                                 return_tensors="pt").input_ids
            with torch.no_grad():
                hidden = self.text_encoder(ids.to(self.device))[0]
            self._text_cache[prompt] = hidden.to(self.dtype)
        return self._text_cache[prompt]


_SD_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def _sd_index(spec: ModelSpec) -> tuple[str, dict]:
    """(root for from_pretrained, parsed model_index.json)."""
    if spec.location == "local directory":
        root = os.path.expanduser(spec.value)
        index = os.path.join(root, "model_index.json")
        if not os.path.isfile(index):
            raise _fail(spec, "the directory is not a diffusers Stable Diffusion pipeline (no model_index.json); "
                              "save one with StableDiffusionPipeline.save_pretrained(DIR)")
    elif spec.location == "hub id":
        from huggingface_hub import hf_hub_download

        root = spec.value
        try:
            index = hf_hub_download(root, "model_index.json", local_files_only=offline())
        except Exception as e:
            raise _fail(spec, _hub_problem(spec), e) from e
    elif spec.location == "local file":
        raise _fail(spec, "a single file was given; SDS needs a diffusers directory (model_index.json, unet/, "
                          "vae/, ...): convert it with StableDiffusionPipeline.from_single_file(...)"
                          ".save_pretrained(DIR)")
    else:
        raise _fail(spec, "the path does not exist (and it is not a hub id)")
    try:
        with open(index, encoding="utf-8") as f:
            info = json.load(f)
    except Exception as e:
        raise _fail(spec, "model_index.json could not be read", e) from e
    if not isinstance(info, dict):
        raise _fail(spec, "model_index.json is not a JSON object")
    return root, info


def load_sd(spec: ModelSpec | str, device: torch.device | str | None = None) -> SDModel:
    """Load (once per source and device) the UNet, VAE, text encoder, tokenizer and noise schedule of a
    Stable Diffusion 1.x/2.x pipeline; float16 weights where :func:`model_dtype` says so."""
    import torch
    spec = _as_spec("sd", spec)
    device = resolve_device(device)

    def load() -> SDModel:
        _require_package("diffusers", "diffusers", spec)
        _require_package("transformers", "transformers", spec)
        root, info = _sd_index(spec)
        if "text_encoder_2" in info or "prior" in info or "transformer" in info:
            raise _fail(spec, f"it is a {info.get('_class_name', 'non-SD 1.x/2.x')} model; SDS needs Stable "
                              "Diffusion 1.x or 2.x (one text encoder and a UNet)")
        missing = [p for p in _SD_PARTS if p not in info]
        if missing:
            raise _fail(spec, f"model_index.json lacks {', '.join(missing)}; it is not a Stable Diffusion "
                              "1.x/2.x pipeline")
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        dtype = model_dtype(device)
        kw = {"local_files_only": offline()}
        try:
            unet = UNet2DConditionModel.from_pretrained(root, subfolder="unet", torch_dtype=dtype, **kw)
            vae = AutoencoderKL.from_pretrained(root, subfolder="vae", torch_dtype=dtype, **kw)
            text = CLIPTextModel.from_pretrained(root, subfolder="text_encoder", **kw).to(dtype)
            tok = CLIPTokenizer.from_pretrained(root, subfolder="tokenizer", **kw)
            sched = DDPMScheduler.from_pretrained(root, subfolder="scheduler", **kw)
        except Exception as e:
            problem = (_hub_problem(spec) if spec.location == "hub id" and "connect" in str(e).lower()
                       else "a component is missing or corrupt")
            raise _fail(spec, problem, e) from e
        latent = int(vae.config.latent_channels)
        if int(unet.config.in_channels) != latent:
            raise _fail(spec, f"the UNet takes {unet.config.in_channels} input channels but the VAE has {latent} "
                              "latent channels (an inpainting or depth model?); use a text-to-image SD 1.x/2.x")
        if int(unet.config.cross_attention_dim) != int(text.config.hidden_size):
            raise _fail(spec, "the UNet's cross-attention width does not match the text encoder")
        for m in (unet, vae, text):
            m.requires_grad_(False)
            m.to(device).eval()
        pred = str(sched.config.get("prediction_type", "epsilon"))
        if pred not in ("epsilon", "v_prediction"):
            raise _fail(spec, f"scheduler prediction_type {pred!r} is not supported (epsilon or v_prediction)")
        return SDModel(
            unet=unet, vae=vae, text_encoder=text, tokenizer=tok,
            alphas_cumprod=sched.alphas_cumprod.to(device=device, dtype=torch.float32),
            prediction_type=pred, vae_scale=float(vae.config.get("scaling_factor", 0.18215)),
            vae_factor=2 ** (len(vae.config.block_out_channels) - 1),
            device=device, dtype=dtype, source=spec.describe())

    return _cached(spec, device, load)


# --------------------------------------------------------------------------------------------------
# CLIP (transformers)

_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ClipModel:
    """A loaded CLIP: ``model`` (transformers CLIPModel, eager attention, float32, eval, frozen),
    ``tokenizer``, pixel normalisation ``mean`` / ``std`` (3,) and the square input ``image_size``."""

    model: torch.nn.Module
    tokenizer: Any
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    image_size: int
    device: torch.device
    source: str


def _read_json(root: str, name: str, spec: ModelSpec) -> dict | None:
    if spec.location == "local directory":
        path = os.path.join(os.path.expanduser(root), name)
        if not os.path.isfile(path):
            return None
    else:
        from huggingface_hub import hf_hub_download

        try:
            path = hf_hub_download(root, name, local_files_only=offline())
        except Exception as e:
            if name == "config.json":
                raise _fail(spec, _hub_problem(spec), e) from e
            return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except Exception as e:
        raise _fail(spec, f"{name} could not be read", e) from e


def load_clip(spec: ModelSpec | str, device: torch.device | str | None = None) -> ClipModel:
    """Load (once per source and device) a CLIP model with eager attention (attention maps carry
    gradients, which the relevance rollout needs) and its tokenizer."""
    spec = _as_spec("clip", spec)
    device = resolve_device(device)

    def load() -> ClipModel:
        _require_package("transformers", "transformers", spec)
        if spec.location == "local file":
            raise _fail(spec, "a single file was given; CLIP needs a transformers directory "
                              "(config.json, weights, tokenizer files) or a hub id")
        if spec.location not in ("local directory", "hub id"):
            raise _fail(spec, "the path does not exist (and it is not a hub id)")
        root = spec.value if spec.location == "hub id" else os.path.expanduser(spec.value)
        config = _read_json(root, "config.json", spec)
        if config is None:
            raise _fail(spec, "the directory has no config.json; save the model with CLIPModel.save_pretrained")
        if config.get("model_type") != "clip":
            raise _fail(spec, f"config.json says model_type {config.get('model_type')!r}; saliency needs a "
                              "full CLIP model (model_type 'clip', image and text towers)")
        from transformers import CLIPModel as HFClip
        from transformers import CLIPTokenizer

        try:
            model = HFClip.from_pretrained(root, attn_implementation="eager", local_files_only=offline())
            tok = CLIPTokenizer.from_pretrained(root, local_files_only=offline())
        except Exception as e:
            raise _fail(spec, "the weights or tokenizer files are missing or corrupt", e) from e
        pre = _read_json(root, "preprocessor_config.json", spec) or {}
        size = int(model.config.vision_config.image_size)
        mean = tuple(float(v) for v in pre.get("image_mean", _CLIP_MEAN))
        std = tuple(float(v) for v in pre.get("image_std", _CLIP_STD))
        model.requires_grad_(False)
        return ClipModel(model.to(device).eval(), tok, mean, std, size, device, spec.describe())

    return _cached(spec, device, load)


__all__ = [
    "ModelError", "ModelSpec", "SamArch", "SamModel", "SDModel", "ClipModel", "ENV_SAM", "ENV_SD", "ENV_CLIP",
    "resolve_device", "model_dtype", "autocast", "model_spec", "require_spec", "classify_location",
    "setting_hint", "offline", "load_sam", "load_sd", "load_clip", "infer_sam_arch", "build_sam_model",
    "sam_arch", "sam_modules", "clear_cache", "cache_size",
]
