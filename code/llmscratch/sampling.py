"""Turning a model's logits into text: temperature, and autoregressive generation.

Temperature divides the logits before the softmax. Below 1 it sharpens the distribution toward
the most likely token (0 means always take it); above 1 it flattens it toward uniform:

    >>> import torch
    >>> logits = torch.log(torch.tensor([0.6, 0.3, 0.1]))
    >>> [round(p, 3) for p in next_token_probs(logits, 1.0).tolist()]
    [0.6, 0.3, 0.1]
    >>> [round(p, 3) for p in next_token_probs(logits, 0.5).tolist()]
    [0.783, 0.196, 0.022]
    >>> next_token_probs(logits, 0).tolist()
    [1.0, 0.0, 0.0]

`generate` feeds the model its own samples, one token at a time. It works with any model that
has a `context_length` attribute and a ``forward(idx) -> (logits, loss)`` returning logits for
the token after each window ((B, V), or (B, T, V) of which the last position is used).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .runtime import eval_mode

__all__ = ["generate", "next_token_probs"]


def next_token_probs(
    logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """softmax(logits / temperature) over the last dimension.

    Temperature 0 is the limit: all probability on the largest logit.
    """
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    if temperature == 0:
        best = logits.argmax(dim=-1)
        return F.one_hot(best, logits.shape[-1]).to(logits.dtype)
    return torch.softmax(logits / temperature, dim=-1)


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    context: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    stop_id: int | None = None,
) -> list[list[int]]:
    """Continue each row of `context` (B, T0) by up to `max_new_tokens` sampled ids.

    The model sees the last ``model.context_length`` ids of each row; a model with a fixed
    window (`llmscratch.mlp`) needs ``T0 >= context_length``, so pad short prompts on the left
    (names use the boundary id, exactly as in training). A row ends early when it samples
    `stop_id`, which is not included. Returns the new ids of each row as a list.
    """
    if context.ndim != 2 or context.shape[1] == 0:
        raise ValueError(f"context must have shape (batch, length >= 1), got {tuple(context.shape)}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    T = model.context_length
    window = context[:, -T:]  # (B, <=T)
    B = context.shape[0]
    out: list[list[int]] = [[] for _ in range(B)]
    alive = torch.ones(B, dtype=torch.bool)
    with eval_mode(model):
        for _ in range(max_new_tokens):
            logits, _ = model(window)
            if logits.ndim == 3:  # a model that predicts at every position: keep the last one
                logits = logits[:, -1, :]  # (B, V)
            probs = next_token_probs(logits, temperature)  # (B, V)
            nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            for b in alive.nonzero().flatten().tolist():
                token = int(nxt[b])
                if token == stop_id:
                    alive[b] = False
                else:
                    out[b].append(token)
            if not alive.any():
                break
            window = torch.cat([window, nxt], dim=1)[:, -T:]  # (B, <=T)
    return out
