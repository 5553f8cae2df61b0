"""SAM's mask decoder for a batch of point prompts on one image, computed without per-prompt copies.

segment-anything's ``MaskDecoder.predict_masks`` repeats the (1, C, 64, 64) image embedding and its
positional encoding once per prompt and runs the whole two-way transformer on the copies. With point
prompts only (no mask input) the image side of the first transformer block is the same for every
prompt, so here it is computed once and broadcast; the 2×2-stride transposed convolutions of the
upscaling head, which only scatter a matrix product, run as that matrix product in channels-last
layout; and only the mask tokens that are returned are multiplied out. The arithmetic is the same as
the reference decoder's (the tests compare both), on CPU and CUDA alike. The IoU head reads only the
transformer's tokens, so prompts whose masks would all fail the IoU threshold skip the mask head. On a
CPU this makes the prompts of a ViT-B level 2.0-2.6x cheaper (``bench/models.py --sam-cpu``).

Any decoder that is not the standard ``MaskDecoder`` + ``TwoWayTransformer`` pair falls back to the
module's own forward.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


def _heads(x: torch.Tensor, n: int) -> torch.Tensor:
    b, t, c = x.shape
    return x.reshape(b, t, n, c // n).transpose(1, 2)  # (B, heads, tokens, c / heads)


def _attend(attn, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """segment-anything's ``Attention.forward`` on already projected q, k, v, with batch broadcasting
    (a batch of 1 on either side is shared by every prompt)."""
    n = attn.num_heads
    q, k, v = _heads(q, n), _heads(k, n), _heads(v, n)
    w = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1]), dim=-1)
    out = w @ v
    b, _, t, c = out.shape
    return attn.out_proj(out.transpose(1, 2).reshape(b, t, n * c))


def _block(layer, queries, keys, query_pe, key_pe):
    """One ``TwoWayAttentionBlock``. keys: (1, HW, C) in the first block (the image side is the same
    for every prompt and is broadcast), (B, HW, C) after it; key_pe: (1, HW, C)."""
    if layer.skip_first_layer_pe:
        a = layer.self_attn
        queries = _attend(a, a.q_proj(queries), a.k_proj(queries), a.v_proj(queries))
    else:
        a = layer.self_attn
        q = queries + query_pe
        queries = queries + _attend(a, a.q_proj(q), a.k_proj(q), a.v_proj(queries))
    queries = layer.norm1(queries)
    # tokens attend to the image
    a = layer.cross_attn_token_to_image
    k_img = keys + key_pe
    queries = queries + _attend(a, a.q_proj(queries + query_pe), a.k_proj(k_img), a.v_proj(keys))
    queries = layer.norm2(queries)
    queries = layer.norm3(queries + layer.mlp(queries))
    # the image attends to the tokens
    a = layer.cross_attn_image_to_token
    q_tok = queries + query_pe
    keys = keys + _attend(a, a.q_proj(k_img), a.k_proj(q_tok), a.v_proj(queries))
    return queries, layer.norm4(keys)


def _conv_t2(x: torch.Tensor, conv) -> torch.Tensor:
    """A kernel-2, stride-2 ``ConvTranspose2d`` on channels-last (B, H, W, Cin) -> (B, 2H, 2W, Cout)."""
    b, h, w, cin = x.shape
    cout = conv.weight.shape[1]
    wmat = conv.weight.permute(0, 2, 3, 1).reshape(cin, 4 * cout)  # (Cin, dy, dx, Cout)
    y = (x.reshape(-1, cin) @ wmat).view(b, h, w, 2, 2, cout)
    y = y.permute(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, cout)
    return y + conv.bias if conv.bias is not None else y


def _standard(decoder) -> bool:
    from ..models import sam_modules

    modeling, _ = sam_modules()
    up = getattr(decoder, "output_upscaling", None)
    if not isinstance(decoder, modeling.MaskDecoder) or not isinstance(decoder.transformer,
                                                                       modeling.TwoWayTransformer):
        return False
    if not isinstance(up, torch.nn.Sequential) or len(up) != 5:
        return False
    convs = (up[0], up[3])
    return all(isinstance(c, torch.nn.ConvTranspose2d) and tuple(c.kernel_size) == (2, 2)
               and tuple(c.stride) == (2, 2) and tuple(c.padding) == (0, 0)
               and tuple(c.output_padding) == (0, 0) and tuple(c.dilation) == (1, 1) and c.groups == 1
               for c in convs) and isinstance(up[1], torch.nn.Module) and hasattr(up[1], "eps")


@dataclass
class PointDecoding:
    """The decoder's output for B point prompts, with the mask head still to run.

    iou: (B, M) float32 predicted IoU per returned mask (M = 3 multimask outputs, or 1). The IoU head
    reads only the transformer's tokens, so a caller can drop prompts whose masks would all fail an
    IoU threshold before paying for the upscaling head (:meth:`masks`).
    """

    iou: torch.Tensor
    multimask: bool
    _decoder: Any = None
    _hs: torch.Tensor | None = None        # (B, T, C) output tokens
    _keys: torch.Tensor | None = None      # (B, HW, C) image side after the transformer
    _grid: tuple[int, int] = (0, 0)
    _low: torch.Tensor | None = None       # reference decoder: masks computed already

    def masks(self, rows: torch.Tensor | None = None, chunk: int = 64) -> torch.Tensor:
        """Low-resolution mask logits (R, M, 4h, 4w) float32 of the prompts ``rows`` (all when None),
        computed ``chunk`` prompts at a time."""
        if self._low is not None:
            return self._low if rows is None else self._low[rows]
        hs, keys = (self._hs, self._keys) if rows is None else (self._hs[rows], self._keys[rows])
        if hs.shape[0] == 0:
            n = len(_mask_tokens(self._decoder, self.multimask))
            return torch.zeros(0, n, 4 * self._grid[0], 4 * self._grid[1], device=hs.device)
        return torch.cat([_mask_head(self._decoder, hs[i:i + chunk], keys[i:i + chunk], self._grid, self.multimask)
                          for i in range(0, hs.shape[0], max(1, int(chunk)))])


def _mask_tokens(dec, multimask: bool) -> range:
    return range(1, dec.num_mask_tokens) if multimask else range(0, 1)


def _mask_head(dec, hs: torch.Tensor, keys: torch.Tensor, grid: tuple[int, int], multimask: bool) -> torch.Tensor:
    """Upscaling head and hypernetwork product in channels-last: ConvT, LayerNorm2d (over channels), act,
    ConvT, act, then one mask per selected mask token."""
    b, c = keys.shape[0], keys.shape[-1]
    up = dec.output_upscaling
    x = _conv_t2(keys.reshape(b, grid[0], grid[1], c), up[0])
    x = F.layer_norm(x, (x.shape[-1],), up[1].weight, up[1].bias, up[1].eps)
    x = up[4](_conv_t2(up[2](x), up[3]))                 # (B, 4h, 4w, C / 8)
    sel = _mask_tokens(dec, multimask)
    hyper = torch.stack([dec.output_hypernetworks_mlps[i](hs[:, 1 + i, :]) for i in sel], 1)  # (B, M, C/8)
    hh, ww = x.shape[1:3]
    masks = torch.bmm(x.reshape(b, hh * ww, -1), hyper.transpose(1, 2))  # (B, HW, M)
    return masks.transpose(1, 2).reshape(b, len(sel), hh, ww).float()


def decode(model, image_embedding: torch.Tensor, coords: torch.Tensor, multimask: bool = True) -> PointDecoding:
    """Run the prompt encoder, the two-way transformer and the IoU head for single positive point prompts.

    model: a segment-anything ``Sam``; image_embedding: (1, C, h, w) from its image encoder;
    coords: (B, 2) float x, y in the encoder's input pixels (1024-px frame).
    """
    pe_mod, dec = model.prompt_encoder, model.mask_decoder
    labels = torch.ones(coords.shape[0], 1, dtype=torch.int, device=coords.device)
    sparse, dense = pe_mod(points=(coords[:, None, :], labels), boxes=None, masks=None)
    image_pe = pe_mod.get_dense_pe()
    if not _standard(dec):
        low, iou = dec(image_embeddings=image_embedding, image_pe=image_pe, sparse_prompt_embeddings=sparse,
                       dense_prompt_embeddings=dense, multimask_output=multimask)
        return PointDecoding(iou.float(), multimask, _low=low.float())
    b = sparse.shape[0]
    tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], 0)
    tokens = torch.cat([tokens.unsqueeze(0).expand(b, -1, -1).to(sparse.dtype), sparse], 1)
    # without a mask prompt the dense embedding is the same "no mask" vector for every prompt
    src = image_embedding + dense[:1]
    _, c, h, w = src.shape
    keys = src.flatten(2).transpose(1, 2)               # (1, HW, C)
    key_pe = image_pe.flatten(2).transpose(1, 2)        # (1, HW, C)
    queries = tokens
    for layer in dec.transformer.layers:
        queries, keys = _block(layer, queries, keys, tokens, key_pe)
    if keys.shape[0] != b:  # a transformer without blocks: the image side is still shared
        keys = keys.expand(b, -1, -1)
    a = dec.transformer.final_attn_token_to_image
    queries = queries + _attend(a, a.q_proj(queries + tokens), a.k_proj(keys + key_pe), a.v_proj(keys))
    hs = dec.transformer.norm_final_attn(queries)
    iou = dec.iou_prediction_head(hs[:, 0, :])
    iou = iou[:, 1:] if multimask else iou[:, :1]
    return PointDecoding(iou.float(), multimask, dec, hs, keys, (h, w))


def decode_points(model, image_embedding: torch.Tensor, coords: torch.Tensor,
                  multimask: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks for single positive point prompts on one image: low-resolution mask logits (B, M, 4h, 4w)
    float32 and predicted IoU (B, M), M = 3 with ``multimask`` (the decoder's multimask outputs) else 1
    — what ``model.mask_decoder(..., multimask_output=...)`` returns for the same prompts. See
    :func:`decode` for the arguments."""
    out = decode(model, image_embedding, coords, multimask)
    return out.masks(), out.iou


__all__ = ["decode", "decode_points", "PointDecoding"]
