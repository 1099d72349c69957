"""Serving many prompts at once: left padding, a padding mask, and one forward pass per token for the batch.

A batch is one tensor, so prompts of different lengths are padded to the longest. Padding goes
on the **left**, so that every row's last real token sits in the last column and the next
token of every row is read from the same place:

    >>> idx, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    >>> idx.tolist(), mask.int().tolist()
    ([[5, 6, 7], [0, 0, 8]], [[1, 1, 1], [0, 0, 1]])

Padding done right takes three things, and `generate_padded` does all three:

1. a **padding mask**: no real token attends to a pad key (`GPT.forward(..., padding_mask=)`
   builds the mask in `CausalSelfAttention`);
2. **positions counted from each row's first real token**: the row ``[0, 0, 8]`` puts token 8 at
   position 0, as it would be alone. That matters for learned and sinusoidal positions; RoPE
   and ALiBi only see the distance between two tokens, which padding in front of both leaves
   unchanged;
3. a **KV cache** that stores the pads too and keeps hiding them: the mask grows by one real
   column per step.

Then every row is continued exactly as it would be alone (to float rounding): the test suite
checks it token for token, greedy and seeded, for every position scheme. Seeded sampling
compares only if each row draws from its own generator (``generators=[...]``): one shared
generator hands the rows their random numbers in batch order.

Left out: batches that outgrow the context window (a padded row cannot be cropped and shifted
like `llmscratch.sampling.generate` does; we refuse instead), sliding-window models (their window
would count the pads as positions; refused too), mixtures of experts with a capacity limit (pads
would compete with real tokens for an expert's places), and sequences that leave the batch
early to make room (continuous batching, `llmscratch.scheduling`, simulates that).

References: Yu et al., "Orca: A Distributed Serving System for Transformer-Based Generative
Models" (OSDI 2022); the padding conventions of Hugging Face transformers' ``generate``.
"""

from __future__ import annotations

import time

import torch

from .kv_cache import KVCache
from .runtime import eval_mode
from .sampling import next_token_probs

__all__ = ["generate_padded", "left_pad", "padded_throughput"]


def left_pad(prompts: list[list[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts of different lengths as one (B, L) tensor padded on the left, and its mask (B, L), True at real ids."""
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise ValueError("prompts must be a non-empty list of lists of token ids")
    if any(not isinstance(p, (list, tuple)) or len(p) == 0 for p in prompts):
        raise ValueError("every prompt must be a non-empty list of token ids")
    L = max(len(p) for p in prompts)
    idx = torch.full((len(prompts), L), pad_id, dtype=torch.long)  # (B, L)
    mask = torch.zeros(len(prompts), L, dtype=torch.bool)  # (B, L)
    for row, p in enumerate(prompts):
        idx[row, L - len(p):] = torch.tensor(list(p), dtype=torch.long)
        mask[row, L - len(p):] = True
    return idx, mask


def _draw(probs: torch.Tensor, generators: torch.Generator | list[torch.Generator] | None) -> torch.Tensor:
    """One id per row of `probs` (B, V): from one shared generator, or row b from ``generators[b]``."""
    if not isinstance(generators, list):
        return torch.multinomial(probs, 1, generator=generators)  # (B, 1)
    # Row b alone would call multinomial on a (1, V) matrix with its own generator: do exactly that.
    return torch.cat([torch.multinomial(probs[b:b + 1], 1, generator=g) for b, g in enumerate(generators)])


@torch.no_grad()
def generate_padded(
    model: torch.nn.Module,
    prompts: list[list[int]],
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    stop_id: int | None = None,
    generators: torch.Generator | list[torch.Generator] | None = None,
    use_cache: bool = True,
    pad_id: int = 0,
) -> list[list[int]]:
    """Continue every prompt by up to `max_new_tokens` ids, all prompts in one left-padded batch.

    Returns the new ids of each prompt, in order; a row stops before `stop_id`. `model` is a
    `llmscratch.GPT`. `generators` is one generator for the batch or one per prompt (then each
    row samples what `llmscratch.sampling.generate` samples for it alone with that generator).
    The longest prompt plus `max_new_tokens` must fit the model's context. Temperature 0 is greedy.
    """
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative integer, got {max_new_tokens!r}")
    if getattr(model.config, "attention_window", None) is not None:
        raise ValueError("generate_padded does not take a model with an attention_window: the window would "
                         "count the pads in front of a short prompt as positions")
    idx, mask = left_pad(prompts, pad_id)  # (B, L) each
    B, L = idx.shape
    if L + max_new_tokens > model.context_length:
        raise ValueError(f"the longest prompt ({L} ids) plus max_new_tokens={max_new_tokens} is more than "
                         f"context_length={model.context_length}; a padded batch is not cropped")
    if isinstance(generators, list) and len(generators) != B:
        raise ValueError(f"generators: one per prompt, got {len(generators)} for {B} prompts")
    out: list[list[int]] = [[] for _ in range(B)]
    alive = [True] * B
    cache = KVCache.for_model(model) if use_cache else None
    written = idx  # (B, L + steps)
    with eval_mode(model):
        for _ in range(max_new_tokens):
            if cache is None:
                logits, _ = model(written, padding_mask=mask)  # (B, L + steps, V)
            else:
                logits, _ = model(written[:, cache.length:], cache=cache, padding_mask=mask)  # (B, new, V)
            probs = next_token_probs(logits[:, -1], temperature, top_k=top_k, top_p=top_p, min_p=min_p)  # (B, V)
            nxt = _draw(probs, generators)  # (B, 1)
            for b in range(B):
                if alive[b]:
                    token = int(nxt[b])
                    alive[b] = token != stop_id
                    if alive[b]:
                        out[b].append(token)
            if not any(alive):
                break
            written = torch.cat([written, nxt], dim=1)  # (B, L + steps + 1)
            mask = torch.cat([mask, torch.ones(B, 1, dtype=torch.bool)], dim=1)  # the new column is real
    return out


def padded_throughput(
    model: torch.nn.Module, prompts: list[list[int]], new_tokens: int, *, use_cache: bool = True, repeats: int = 1
) -> float:
    """Generated tokens per second for greedy `generate_padded` on `prompts`, best of `repeats` runs.

    Every row generates `new_tokens` (no stop id), so the count is ``len(prompts) * new_tokens``.
    Wall-clock time on whatever else the machine is doing: compare numbers measured together.
    """
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        generate_padded(model, prompts, new_tokens, temperature=0, use_cache=use_cache)
        best = min(best, time.perf_counter() - start)
    return len(prompts) * new_tokens / best
