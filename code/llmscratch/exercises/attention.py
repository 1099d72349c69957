"""Checkers for attention: the weighted average, heads, and positions.

Each checker runs the learner's function next to the package's own (`scaled_dot_product_attention`,
`split_heads` and `merge_heads`, `sinusoidal_positions`, `apply_rope`), on ordinary, random and
edge-case inputs, and names the first case that disagrees. Where a wrong answer matches a slip
learners often make (the future leaking in, the scale, the softmax's axis, heads cut the wrong
way, sine and cosine swapped), the message says what the output looks like, with a question that
points at it, never the fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..attention import merge_heads, scaled_dot_product_attention, split_heads
from ..positional import apply_rope, rope_angles, sinusoidal_positions
from .core import ExerciseError, expect_tensor, passed

__all__ = ["check_attention", "check_merge_heads", "check_rope", "check_sinusoidal", "check_split_heads"]


def _same(got: object, want: torch.Tensor, atol: float = 1e-5) -> bool:
    return (isinstance(got, torch.Tensor) and got.shape == want.shape
            and torch.allclose(got.detach().double(), want.double(), atol=atol, rtol=1e-5))


def _leaks(fn: Callable[..., torch.Tensor], q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> int | None:
    """The first position whose output moves when only the last key and value change, if any."""
    k2, v2 = k.clone(), v.clone()
    k2[..., -1, :] += 3.0
    v2[..., -1, :] -= 5.0
    a, b = fn(q, k, v, True), fn(q, k2, v2, True)
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape):
        return None
    moved = (a[..., :-1, :] - b[..., :-1, :]).abs().reshape(-1, a.shape[-2] - 1, a.shape[-1]).amax(dim=(0, 2))
    bad = (moved > 1e-5).nonzero()
    return int(bad[0]) if len(bad) else None


def check_attention(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, bool], torch.Tensor]) -> None:
    """Check ``fn(q, k, v, causal) -> out`` against the package's `scaled_dot_product_attention`.

    `q` and `k` are (..., T, d), `v` is (..., T, dv), with any leading batch and head dimensions.
    ``out = softmax(q kᵀ / √d + mask) v`` has shape (..., T, dv): the softmax runs over the keys
    (the last axis of the scores), and with ``causal=True`` the mask is -inf wherever key j comes
    after query i (j > i), so that no output depends on a later token. Without it, every query
    sees every key.
    """
    g = torch.Generator().manual_seed(0)

    def qkv(*lead: int, T: int, d: int, dv: int, spread: float = 1.0) -> tuple[torch.Tensor, ...]:
        return tuple(spread * torch.randn(*lead, T, n, generator=g) for n in (d, d, dv))

    cases = [("one sequence, T=5, d=4", qkv(T=5, d=4, dv=4), False),
             ("one sequence, T=5, d=4", qkv(T=5, d=4, dv=4), True),
             ("batch 2 x 3 heads, T=7, d=8, dv=5", qkv(2, 3, T=7, d=8, dv=5), True),
             ("batch 2 x 3 heads, T=7, d=8, dv=5", qkv(2, 3, T=7, d=8, dv=5), False),
             ("a single token, T=1", qkv(4, T=1, d=6, dv=3), True),
             ("large scores, d=64", qkv(2, T=6, d=64, dv=4, spread=1.5), True)]
    for what, (q, k, v), causal in cases:
        where = f"{what}, causal={causal}"
        want = scaled_dot_product_attention(q, k, v, is_causal=causal)
        got = fn(q.clone(), k.clone(), v.clone(), causal)
        if _same(got, want):
            continue
        if causal and q.shape[-2] > 1:
            leak = _leaks(fn, q, k, v)
            if leak is not None:
                raise ExerciseError(f"{where}: future token leaked: the output at position {leak} changed when only "
                                    "the last token's key and value changed (are the scores of later keys set to "
                                    "-inf before the softmax?)")
        d = q.shape[-1]
        slips = {"the scores are not divided by √d (is the scale 1/√d, with d the query size?)": dict(scale=1.0),
                 "the scores are divided by d, not √d (is the scale 1/√d?)": dict(scale=1.0 / d)}
        for hint, kwargs in slips.items():
            if _same(got, scaled_dot_product_attention(q, k, v, is_causal=causal, **kwargs)):
                raise ExerciseError(f"{where}: {hint}")
        scores = q @ k.transpose(-2, -1) / math.sqrt(d)
        if causal:
            scores = scores.masked_fill(~torch.ones(q.shape[-2], q.shape[-2], dtype=torch.bool).tril(), float("-inf"))
        for dim in (-2, 0):
            wrong = torch.softmax(scores, dim=dim).nan_to_num(0.0) @ v
            if _same(got, wrong):
                raise ExerciseError(f"{where}: the weights of a query do not sum to 1 over the keys (which axis "
                                    "of the (T, T) scores does your softmax run over?)")
        if causal and _same(got, scaled_dot_product_attention(q, k, v, is_causal=False)):
            raise ExerciseError(f"{where}: future token leaked: your output equals attention without a mask")
        expect_tensor(where, got, want, hint="is it softmax(q kᵀ / √d) v, with the softmax over the keys?")
    passed("check_attention", len(cases))


def check_split_heads(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> None:
    """Check ``fn(x, n_heads) -> heads`` against the package's `split_heads`.

    `x` is (B, T, C) with C = n_heads * hs; the result is (B, n_heads, T, hs), head h holding
    features ``h * hs`` to ``(h + 1) * hs - 1`` of every token (a contiguous slice, as the rows of
    the query, key and value matrices are laid out).
    """
    g = torch.Generator().manual_seed(0)
    cases = [(2, 5, 12, 3), (1, 7, 8, 4), (3, 1, 6, 2), (2, 4, 16, 1), (2, 6, 8, 8)]
    for B, T, C, H in cases:
        x = torch.randn(B, T, C, generator=g)
        where = f"x of shape {(B, T, C)}, n_heads={H}"
        want, got = split_heads(x, H), fn(x.clone(), H)
        if _same(got, want):
            continue
        hs = C // H
        if _same(got, x.reshape(B, H, T, hs)):
            raise ExerciseError(f"{where}: the heads mix features of different tokens (a reshape cannot move the "
                                "head axis in front of the token axis by itself; what does it need after it?)")
        if _same(got, x.view(B, T, hs, H).permute(0, 3, 1, 2)):
            raise ExerciseError(f"{where}: head 0 got features 0, {H}, {2 * H}, … (every n_heads-th feature); "
                                f"which features of a token should head 0 own?")
        expect_tensor(where, got, want, hint=f"head h should hold features h*{hs} to (h+1)*{hs}-1 of every token")
    passed("check_split_heads", len(cases))


def check_merge_heads(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(heads) -> y`` against the package's `merge_heads`, the inverse of `split_heads`.

    `heads` is (B, H, T, hs); the result is (B, T, H * hs): for every token, head 0's hs
    features, then head 1's, and so on (the concatenation of the heads' outputs).
    """
    g = torch.Generator().manual_seed(1)
    cases = [(2, 3, 5, 4), (1, 4, 7, 2), (3, 2, 1, 3), (2, 1, 4, 16), (2, 8, 6, 1)]
    for B, H, T, hs in cases:
        y = torch.randn(B, H, T, hs, generator=g)
        where = f"heads of shape {(B, H, T, hs)}"
        want, got = merge_heads(y), fn(y.clone())
        if _same(got, want):
            continue
        if _same(got, y.reshape(B, T, H * hs)):
            raise ExerciseError(f"{where}: the merged tokens mix different positions (which axis has to move back "
                                "next to the batch axis before the reshape?)")
        if _same(got, y.permute(0, 2, 3, 1).reshape(B, T, H * hs)):
            raise ExerciseError(f"{where}: the heads' features come interleaved; should head 0's {hs} features "
                                "sit side by side?")
        expect_tensor(where, got, want, hint="for each token: head 0's features, then head 1's, …")
    passed("check_merge_heads", len(cases))


def check_sinusoidal(fn: Callable[[int, int], torch.Tensor]) -> None:
    """Check ``fn(length, dim) -> table`` against `llmscratch.positional.sinusoidal_positions`.

    The table is (length, dim): feature pair i of position p is ``(sin(p w_i), cos(p w_i))`` at
    features 2i and 2i+1, with ``w_i = 10000 ** (-2i / dim)``; dim is even.
    """
    cases = [(4, 2), (16, 8), (50, 64), (1, 6), (300, 16)]
    for length, dim in cases:
        where = f"length={length}, dim={dim}"
        want, got = sinusoidal_positions(length, dim), fn(length, dim)
        if _same(got, want, atol=1e-4):
            continue
        p = torch.arange(length, dtype=torch.float64)[:, None]
        pair = torch.arange(0, dim, 2, dtype=torch.float64)

        def table(first: Callable, second: Callable, w: torch.Tensor, interleave: bool = True,
                  p: torch.Tensor = p) -> torch.Tensor:
            a, b = first(p * w), second(p * w)
            return (torch.stack([a, b], -1).flatten(1) if interleave else torch.cat([a, b], -1)).float()

        w = 10000 ** (-pair / dim)
        slips = {"position 0 should read 0, 1, 0, 1, …: are sine and cosine the right way round?":
                 table(torch.cos, torch.sin, w),
                 "the slow pairs turn too slowly: is the exponent -2i/dim, with i the pair's index?":
                 table(torch.sin, torch.cos, 10000 ** (-2 * pair / dim)),
                 "the later pairs turn too fast: is the exponent -2i/dim, with i the pair's index?":
                 table(torch.sin, torch.cos, 10000 ** (-pair / (2 * dim))),
                 "the sines fill the first half and the cosines the second: should each pair sit side by side?":
                 table(torch.sin, torch.cos, w, interleave=False)}
        for hint, wrong in slips.items():
            if length > 1 and _same(got, wrong, atol=1e-4):
                raise ExerciseError(f"{where}: {hint}")
        expect_tensor(where, got, want, atol=1e-4, hint="features 2i, 2i+1 are sin and cos of p * 10000^(-2i/dim)")
    passed("check_sinusoidal", len(cases))


def check_rope(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(x) -> rotated`` against `llmscratch.positional.apply_rope` with `rope_angles`.

    `x` is (..., T, hs), hs even. Features 2i and 2i+1 at position p, read as the point (a, b),
    turn by the angle ``p * w_i`` with ``w_i = 10000 ** (-2i / hs)``: they become
    ``(a cos - b sin, a sin + b cos)``. Position 0 is left as it is.
    """
    g = torch.Generator().manual_seed(2)
    cases = [(1, 6, 4), (2, 3, 10, 8), (5, 2), (1, 1, 40, 16)]
    for shape in cases:
        x = torch.randn(*shape, generator=g)
        where = f"x of shape {shape}"
        T, hs = shape[-2:]
        cos, sin = rope_angles(T, hs)
        want, got = apply_rope(x, cos, sin), fn(x.clone())
        if _same(got, want, atol=1e-4):
            continue
        if _same(got, apply_rope(x, cos, -sin), atol=1e-4):
            raise ExerciseError(f"{where}: every pair turns the wrong way round (check the signs: where does "
                                "-sin go?)")
        order = _pairs_from_halves(hs)  # GPT-NeoX's pairing, (i, i + hs/2), moved next to each other
        if _same(got, apply_rope(x[..., order], cos, sin)[..., order.argsort()], atol=1e-4):
            raise ExerciseError(f"{where}: you rotate feature i with feature i + hs/2; this course pairs features "
                                "2i and 2i+1 (which features make up pair 0?)")
        if _same(got, x, atol=1e-4):
            raise ExerciseError(f"{where}: nothing was rotated")
        expect_tensor(where, got, want, atol=1e-4, hint="is pair i's angle p * 10000^(-2i/hs)?")
    passed("check_rope", len(cases))


def _pairs_from_halves(hs: int) -> torch.Tensor:
    """The feature order that puts feature i next to feature i + hs/2: 0, hs/2, 1, hs/2 + 1, …"""
    half = hs // 2
    return torch.stack([torch.arange(half), torch.arange(half) + half], -1).flatten()
