"""Checkers for fast inference: one decode step with a KV cache, the cache's size, and pooling heads for GQA.

Each checker runs the learner's function next to the package's own (`scaled_dot_product_attention`
on the whole sequence, `llmscratch.kv_cache.kv_cache_bytes`, `llmscratch.gqa.pool_kv_heads`'s
row pooling) and names the first case that disagrees. Slips learners often make get a question
that points at them: a new key that never reaches the cache, the
causal mask aligned to the wrong corner, the factor 2 for keys *and* values, query heads counted
instead of key/value heads, heads grouped the wrong way.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..attention import scaled_dot_product_attention
from ..config import GPTConfig
from ..kv_cache import kv_cache_bytes
from .core import ExerciseError, call_learner, expect_tensor, passed

__all__ = ["check_cache_bytes", "check_decode_step", "check_pool_heads"]


def check_decode_step(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]],
) -> None:
    """Check ``fn(q, k_new, v_new, k_cache, v_cache) -> (out, k_all, v_all)``: one decode step of attention.

    `q`, `k_new`, `v_new` are the new token's query, key and value, (B, H, 1, hs); `k_cache`
    and `v_cache` hold the S earlier positions, (B, H, S, hs). The step appends the new key and
    value to the cache along the time axis, giving `k_all`, `v_all` (B, H, S + 1, hs), and
    attends from `q` to all S + 1 of them: `out` (B, H, 1, hs) must equal the last row of
    causal attention over the whole sequence.
    """
    g = torch.Generator().manual_seed(0)
    cases = [("batch 3, 2 heads, 1 cached position", 3, 2, 1, 6), ("batch 1, 1 head, 3 cached positions", 1, 1, 3, 4),
             ("batch 2, 4 heads, 6 cached positions", 2, 4, 6, 8), ("an empty cache (the first token)", 1, 2, 0, 4)]
    for what, B, H, S, hs in cases:
        q_all, k_full, v_full = (torch.randn(B, H, S + 1, hs, generator=g) for _ in range(3))  # (B, H, S+1, hs)
        q = q_all[:, :, -1:]  # (B, H, 1, hs): the new token
        want = scaled_dot_product_attention(q_all, k_full, v_full, is_causal=True)[:, :, -1:]  # (B, H, 1, hs)
        got = call_learner(what, fn, q.clone(), k_full[:, :, -1:].clone(), v_full[:, :, -1:].clone(),
                           k_full[:, :, :-1].clone(), v_full[:, :, :-1].clone())
        if not isinstance(got, tuple) or len(got) != 3:
            raise ExerciseError(f"{what}: expected a tuple (out, k_all, v_all), got {type(got).__name__}")
        out, k_all, v_all = got
        if isinstance(k_all, torch.Tensor) and k_all.ndim == 4 and k_all.shape[2] == S:
            raise ExerciseError(f"{what}: k_all still has {S} positions (was the new key appended to the cache?)")
        expect_tensor(f"{what}: k_all", k_all, k_full)
        expect_tensor(f"{what}: v_all", v_all, v_full)
        if S > 0 and isinstance(out, torch.Tensor) and out.shape == want.shape:
            top_left = scaled_dot_product_attention(q, k_full, v_full, is_causal=True)  # sees key 0 only
            if torch.allclose(out, top_left, atol=1e-5) and not torch.allclose(out, want, atol=1e-5):
                raise ExerciseError(f"{what}: out is the attention to the first key alone (a causal mask for one "
                                    "query and S + 1 keys: which corner of the (S + 1, S + 1) mask is its row?)")
        expect_tensor(f"{what}: out", out, want, hint="does the new query attend to every stored key and itself?")
    passed("check_decode_step", len(cases))


def check_cache_bytes(fn: Callable[[GPTConfig, int, int], int]) -> None:
    """Check ``fn(config, batch_size, length) -> bytes``: the float32 KV cache of a `GPTConfig`.

    Keys and values, for every layer, every row of the batch, every key/value head
    (``config.kv_heads``), every position and every feature of a head (``config.head_dim``), at
    4 bytes each. Compared with `llmscratch.kv_cache.kv_cache_bytes`.
    """
    cases = [("the default GPTConfig, batch 1, 64 positions", GPTConfig(), 1, 64),
             ("8 heads of which 2 key/value heads, batch 4, 100 positions",
              GPTConfig(d_model=128, n_heads=8, n_kv_heads=2, n_layers=3), 4, 100),
             ("multi-query (1 key/value head), batch 2, 10 positions", GPTConfig(n_kv_heads=1, n_layers=6), 2, 10),
             ("an empty cache", GPTConfig(), 3, 0)]
    for what, config, batch, length in cases:
        want = kv_cache_bytes(config, batch_size=batch, length=length)
        got = call_learner(what, fn, config, batch, length)
        if got == want:
            continue
        c = config
        per = c.n_layers * batch * length * c.head_dim * 4
        if got == want // 2:
            hint = " (is anything stored besides the keys?)"
        elif got == 2 * per * c.n_heads and c.kv_heads != c.n_heads:
            hint = " (how many heads does the cache store keys for: n_heads or n_kv_heads?)"
        elif got == want // 4:
            hint = " (how many bytes is one float32 number?)"
        else:
            hint = ""
        raise ExerciseError(f"{what}: expected {want} bytes, got {got}{hint}")
    passed("check_cache_bytes", len(cases))


def _pool_reference(w: torch.Tensor, n_heads: int, n_kv_heads: int) -> torch.Tensor:
    hs = w.shape[0] // n_heads
    return w.reshape(n_kv_heads, n_heads // n_kv_heads, hs, -1).mean(dim=1).reshape(n_kv_heads * hs, -1)


def check_pool_heads(fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> None:
    """Check ``fn(w, n_heads, n_kv_heads) -> pooled``: the key (or value) projection of a multi-head layer,
    pooled into grouped-query heads.

    `w` is (n_heads · hs, d_model): rows ``h·hs`` to ``(h+1)·hs - 1`` make head h's keys. Group g is
    the run of consecutive heads ``g·G`` to ``(g+1)·G - 1`` with ``G = n_heads / n_kv_heads``, and
    pooled head g is the mean of that group's rows: `pooled` is (n_kv_heads · hs, d_model). The
    grouping is `llmscratch.gqa.pool_kv_heads`'s (query head i reads key/value head i // G).
    """
    g = torch.Generator().manual_seed(0)
    cases = [("4 heads of 2 features into 2", 4, 2, 2, 3), ("8 heads of 4 features into 1 (MQA)", 8, 1, 4, 5),
             ("8 heads of 2 features into 4", 8, 4, 2, 6), ("3 heads into 3 (nothing to pool)", 3, 3, 2, 4)]
    for what, H, Hkv, hs, d in cases:
        w = torch.randn(H * hs, d, generator=g)  # (H·hs, d)
        want = _pool_reference(w, H, Hkv)  # (Hkv·hs, d)
        got = call_learner(what, fn, w.clone(), H, Hkv)
        if isinstance(got, torch.Tensor) and got.shape == want.shape and Hkv not in (1, H):
            strided = w.reshape(H // Hkv, Hkv, hs, d).mean(dim=0).reshape(Hkv * hs, d)  # heads h, h + Hkv, ...
            if torch.allclose(got, strided, atol=1e-6):
                raise ExerciseError(f"{what}: your groups are heads (0, {Hkv}, ...), every {Hkv}th head (which "
                                    "key/value head does query head 1 read in the package's layout?)")
        expect_tensor(what, got, want, hint="is each pooled head the mean, not the sum, of its group?")
    passed("check_pool_heads", len(cases))
