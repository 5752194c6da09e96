"""Quantize to Q6_K with numpy, following ggml's reference `quantize_row_q6_K_ref`.

The `gguf` package dequantizes every type but quantizes no k-quant. Q6_K is the type that
legacy Q4_K_M/Q5_K_M files give their "more bits" ffn_down experts, so it is the usual target
when one expert group mixes types (see `moe_convert`). The scale search is the reference one
(`make_qx_quants` with squared weights) in float32 with ggml's summation order, so the bytes
equal ggml's `quantize_row_q6_K_ref` (tests compare them through llama.cpp's libggml).
"""

from __future__ import annotations

import numpy as np

QK_K = 256
Q6_K_BLOCK_BYTES = 210
_EPS = 1e-15
_BATCH = 1024  # blocks of 256 values quantized together


def _seq_sum(a: np.ndarray) -> np.ndarray:
    """Sum over axis 0 top to bottom in float32, as the C loop does (bit-equal results)."""
    total: np.ndarray = a[0].copy()
    for row in a[1:]:
        total += row
    return total


def _best_scales(x: np.ndarray, nmax: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """make_qx_quants(n=16, nmax, rmse_type=1) over rows of 16 values: (scales, levels).

    Works on the transpose (16, N) so that every step runs over long contiguous rows.
    """
    f32 = np.float32
    xt = np.ascontiguousarray(x.T)
    n = xt.shape[1]
    vmax = xt[np.abs(xt).argmax(axis=0), np.arange(n)]
    zero = np.abs(vmax) < _EPS
    vmax = np.where(zero, f32(1.0), vmax).astype(f32)
    w = xt * xt
    wx = w * xt
    q = np.empty_like(xt)
    tmp = np.empty_like(xt)
    for step in [0] + [s for s in range(-9, 10) if s]:
        iscale = (f32(-(nmax + f32(0.1) * f32(step))) / vmax).astype(f32)
        np.multiply(iscale, xt, out=q)
        np.rint(q, out=q)
        np.clip(q, -nmax, nmax - 1, out=q)
        sumlx = _seq_sum(np.multiply(wx, q, out=tmp))
        np.multiply(w, q, out=tmp)
        suml2 = _seq_sum(np.multiply(tmp, q, out=tmp))
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(suml2 > 0, sumlx / suml2, f32(0.0)).astype(f32)
        if step == 0:
            best, best_scale, levels = scale * sumlx, scale, q.copy()
            continue
        better = (suml2 > 0) & (sumlx * sumlx > best * suml2)
        best = np.where(better, scale * sumlx, best)
        best_scale = np.where(better, scale, best_scale)
        np.copyto(levels, q, where=better[None, :])
    levels = np.where(zero[None, :], 0, levels + nmax)
    return np.where(zero, f32(0.0), best_scale).astype(f32), np.ascontiguousarray(levels.T)


def quantize_q6_k(data: np.ndarray) -> np.ndarray:
    """float rows (..., n) with n a multiple of 256 -> uint8 rows (..., n // 256 * 210)."""
    data = np.asarray(data, dtype=np.float32)
    if data.shape[-1] % QK_K:
        raise ValueError(f"Q6_K needs rows of a multiple of {QK_K} values, got {data.shape[-1]}")
    x = data.reshape(-1, QK_K)
    # batches small enough for the CPU cache: the scale search passes over them 19 times
    out = [_q6_k_blocks(x[i : i + _BATCH]) for i in range(0, x.shape[0], _BATCH)]
    return np.concatenate(out).reshape(*data.shape[:-1], -1)


def _q6_k_blocks(x: np.ndarray) -> np.ndarray:
    nb = x.shape[0]
    sub = x.reshape(nb * 16, 16)
    scales, first_levels = _best_scales(sub)
    scales = scales.reshape(nb, 16)
    idx = np.abs(scales).argmax(axis=1)
    max_scale = scales[np.arange(nb), idx]
    empty = np.abs(max_scale) < _EPS
    f32 = np.float32
    iscale = np.where(empty, f32(0.0), f32(-128.0) / np.where(empty, f32(1.0), max_scale))
    iscale = iscale.astype(f32)
    with np.errstate(divide="ignore"):
        d = np.where(empty, f32(0.0), f32(1.0) / np.where(empty, f32(1.0), iscale))
    d = d.astype(np.float16)
    sc = np.minimum(127, np.rint(iscale[:, None] * scales)).astype(np.int8)
    dj = d.astype(np.float32)[:, None] * sc.astype(np.float32)  # (nb, 16)
    dj_full = np.repeat(dj, 16, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(dj_full != 0, np.rint(x / np.where(dj_full != 0, dj_full, 1.0)), 0.0)
    # where a sub-block's scale rounds to 0, ggml keeps the levels of its scale search
    L = np.where(dj_full != 0, np.clip(q, -32, 31) + 32, first_levels.reshape(nb, QK_K))
    L = np.where(empty[:, None], 0, L)
    L = L.astype(np.uint8).reshape(nb, 2, 4, 32)  # two halves of 128, four rows of 32
    ql = np.empty((nb, 2, 64), dtype=np.uint8)
    ql[:, :, :32] = (L[:, :, 0] & 0xF) | ((L[:, :, 2] & 0xF) << 4)
    ql[:, :, 32:] = (L[:, :, 1] & 0xF) | ((L[:, :, 3] & 0xF) << 4)
    qh = (
        (L[:, :, 0] >> 4)
        | ((L[:, :, 1] >> 4) << 2)
        | ((L[:, :, 2] >> 4) << 4)
        | ((L[:, :, 3] >> 4) << 6)
    ).astype(np.uint8)
    return np.concatenate(
        [
            ql.reshape(nb, 128),
            qh.reshape(nb, 64),
            sc.view(np.uint8),
            d.reshape(nb, 1).view(np.uint8),
        ],
        axis=1,
    )


def quantize(data: np.ndarray, ggml_type: int) -> np.ndarray:
    """Quantize with gguf.quants, or with the Q6_K code here; NotImplementedError otherwise."""
    from gguf import quants
    from gguf.constants import GGMLQuantizationType

    if ggml_type == GGMLQuantizationType.Q6_K:
        return quantize_q6_k(data)
    out = quants.quantize(np.asarray(data, dtype=np.float32), GGMLQuantizationType(ggml_type))
    return np.ascontiguousarray(out).view(np.uint8)


def can_quantize(ggml_type: int) -> bool:
    try:
        quantize(np.zeros((1, QK_K), dtype=np.float32), ggml_type)
    except (NotImplementedError, ValueError):
        return False
    return True


def dequantize(raw: bytes | memoryview, ggml_type: int, row_len: int) -> np.ndarray:
    """Bytes of whole rows -> float32 array (rows, row_len)."""
    from gguf import quants
    from gguf.constants import GGMLQuantizationType

    from app.core.gguf.ggml_types import known_block

    block, size = known_block(ggml_type)
    row_bytes = row_len // block * size
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, row_bytes)
    out = quants.dequantize(rows, GGMLQuantizationType(ggml_type))
    return np.asarray(out, dtype=np.float32).reshape(-1, row_len)
