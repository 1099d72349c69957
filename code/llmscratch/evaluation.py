"""Exact held-out loss over a whole token stream, and bits per character.

A loss per token depends on the tokenizer: a token that stands for four characters is harder
to predict than one character, so models with different vocabularies cannot be compared by
their loss per token. The *total* information a model needs to encode a text does not depend
on how the text is cut: dividing it by the number of characters gives bits per character,
a unit in which any two tokenizations of the same text can be compared fairly.

`token_nlls` and `bits_per_char` score a window model such as `MLPLanguageModel`, one next
token per window. `position_losses` scores a model that predicts at every position (the GPT)
on consecutive, non-overlapping sequences of a chosen length, position by position: the tool
for asking how well a model does at lengths it was not trained on. `shuffled_prefix_loss` asks
whether such a model uses the order of its context at all.

Deliberately left out: sampled estimates (see `llmscratch.training`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .runtime import device_of, eval_mode

__all__ = ["PROTOCOL_STRIDE_FRACTION", "bits_per_char", "position_losses", "protocol_stride", "shuffled_prefix_loss",
           "sliding_nlls", "token_nlls"]

# The book's protocol scores a GPT with windows sliding context_length // 16 tokens at a time, so
# every token is predicted from at least 15/16 of the context (`sliding_nlls`, `protocol_stride`).
PROTOCOL_STRIDE_FRACTION = 16


def protocol_stride(context_length: int) -> int:
    """The stride at which the book's protocol slides a GPT's windows: ``max(1, context_length // 16)``."""
    return max(1, context_length // PROTOCOL_STRIDE_FRACTION)


@torch.no_grad()
def token_nlls(
    model: torch.nn.Module, ids: torch.Tensor, context: torch.Tensor, batch_size: int = 8192
) -> torch.Tensor:
    """The negative log-likelihood, in nats, of every token of `ids`, shape (len(ids),).

    `context` holds the tokens just before `ids` (at least ``model.context_length`` of them,
    e.g. the end of the training stream), so that the first tokens of `ids` are predicted too
    and the total covers the whole text. The model is scored in evaluation mode.

    >>> from llmscratch import MLPConfig, MLPLanguageModel
    >>> model = MLPLanguageModel(MLPConfig(vocab_size=5, context_length=2))
    >>> token_nlls(model, torch.tensor([1, 2, 3]), context=torch.tensor([0, 4])).shape
    torch.Size([3])
    """
    T = model.context_length
    if ids.ndim != 1 or context.ndim != 1 or len(ids) == 0:
        raise ValueError("ids and context must be 1-D tensors of token ids, ids non-empty")
    if len(context) < T:
        raise ValueError(f"context has {len(context)} tokens; the model needs {T} before the first")
    stream = torch.cat([context[len(context) - T :], ids])  # (T + N,)
    windows = stream.unfold(0, T, 1)[:-1]  # (N, T): windows[i] = the T tokens before ids[i]
    device = device_of(model)
    out = []
    with eval_mode(model):
        for i in range(0, len(ids), batch_size):
            logits, _ = model(windows[i : i + batch_size].to(device))  # (b, V)
            targets = ids[i : i + batch_size].to(device)
            out.append(F.cross_entropy(logits, targets, reduction="none").cpu())  # (b,)
    return torch.cat(out)


def bits_per_char(
    model: torch.nn.Module, ids: torch.Tensor, n_chars: int, context: torch.Tensor, batch_size: int = 8192
) -> float:
    """Exact bits per character of `model` on the text that `ids` encodes, `n_chars` long.

    The sum of the per-token losses (`token_nlls`), converted from nats to bits, over the
    number of characters. A uniform model over V tokens costs log2(V) bits per token, so
    ``log2(V) * len(ids) / n_chars`` bits per character:

    >>> from llmscratch import MLPConfig, MLPLanguageModel
    >>> model = MLPLanguageModel(MLPConfig(vocab_size=8, context_length=2))
    >>> _ = torch.nn.init.zeros_(model.output.weight)  # equal logits: uniform
    >>> ids, context = torch.tensor([1, 2, 3]), torch.tensor([0, 0])
    >>> round(bits_per_char(model, ids, n_chars=6, context=context), 6)
    1.5
    """
    if n_chars <= 0:
        raise ValueError(f"n_chars must be positive, got {n_chars}")
    total_nats = float(token_nlls(model, ids, context, batch_size).double().sum())
    return total_nats / math.log(2) / n_chars


@torch.no_grad()
def sliding_nlls(
    model: torch.nn.Module, ids: torch.Tensor, context: torch.Tensor, stride: int = 1, batch_size: int = 32
) -> torch.Tensor:
    """The loss in nats of every token of `ids` under a GPT, each with (almost) its full context: (len(ids),).

    A GPT reads at most ``T = model.context_length`` tokens. Windows of T tokens slide along the
    stream `stride` tokens at a time and each scores only its last `stride` targets, so every
    token is predicted from at least ``T - stride + 1`` tokens before it (``stride=1``: from
    exactly T, the most the model allows; ``stride=T``: non-overlapping windows, as
    `position_losses` scores them). `context` supplies the T tokens before the first of `ids`
    (the end of the training stream), so no token goes unscored. The cost is ``len(ids) / stride``
    windows.
    """
    T = model.context_length
    if ids.ndim != 1 or context.ndim != 1 or len(ids) == 0:
        raise ValueError("ids and context must be 1-D tensors of token ids, ids non-empty")
    if not isinstance(stride, int) or not 1 <= stride <= T:
        raise ValueError(f"stride must be an integer in 1..{T} (the context length), got {stride!r}")
    if len(context) < T:
        raise ValueError(f"context has {len(context)} tokens; the model needs {T} before the first")
    stream = torch.cat([context[len(context) - T :], ids])  # (T + N,): ids[j] sits at T + j
    N = len(ids)
    firsts = torch.arange(T, T + N, stride)  # the first target of each window
    ends = (firsts + stride - 1).clamp(max=T + N - 1)  # and its last
    device = device_of(model)
    out = torch.empty(N, dtype=torch.float32)
    offsets = torch.arange(T)
    with eval_mode(model):
        for i in range(0, len(ends), batch_size):
            first, last = firsts[i : i + batch_size], ends[i : i + batch_size]  # (b,), (b,)
            starts = (last - T).unsqueeze(1) + offsets  # (b, T): the window before each last target
            logits, _ = model(stream[starts].to(device))  # (b, T, V)
            nll = F.cross_entropy(logits.transpose(1, 2), stream[starts + 1].to(device), reduction="none")
            for row, a, b in zip(nll.float().cpu(), first.tolist(), last.tolist()):
                out[a - T : b - T + 1] = row[T - (b - a + 1) :]  # the window's last b - a + 1 targets
    return out


@torch.no_grad()
def position_losses(model: torch.nn.Module, stream: torch.Tensor, length: int, batch_size: int = 32) -> torch.Tensor:
    """Mean loss in nats at each position 0..length-1 of sequences cut from `stream`: (length,).

    `stream` (a 1-D tensor of ids) is cut into ``len(stream) // (length + 1)`` consecutive,
    non-overlapping pieces of length + 1 tokens; each piece is the input and, shifted by one,
    the targets. ``position_losses(...).mean()`` is the loss at that sequence length, and the
    curve shows where a model trained on shorter sequences starts to fail. The model must map
    ``idx`` (B, length) to logits (B, length, V); it is scored in evaluation mode.
    """
    if stream.ndim != 1 or not isinstance(length, int) or length <= 0:
        raise ValueError(f"need a 1-D stream and a positive length, got shape {tuple(stream.shape)} and {length!r}")
    n = len(stream) // (length + 1)
    if n == 0:
        raise ValueError(f"a stream of {len(stream)} tokens holds no sequence of {length} + 1")
    pieces = stream[: n * (length + 1)].view(n, length + 1)  # (n, length + 1)
    device = device_of(model)
    total = torch.zeros(length, dtype=torch.float64)
    with eval_mode(model):
        for i in range(0, n, batch_size):
            chunk = pieces[i : i + batch_size].to(device)  # (b, length + 1)
            logits, _ = model(chunk[:, :-1])  # (b, length, V)
            nll = F.cross_entropy(logits.transpose(1, 2), chunk[:, 1:], reduction="none")  # (b, length)
            total += nll.double().sum(0).cpu()
    return (total / n).float()


@torch.no_grad()
def shuffled_prefix_loss(
    model: torch.nn.Module, stream: torch.Tensor, length: int, seed: int = 0
) -> tuple[float, float]:
    """Loss (nats) at the last of `length` positions, with the tokens before it intact and shuffled.

    `stream` is cut into non-overlapping pieces of length + 1 tokens, as in `position_losses`.
    In the shuffled copy, inputs 0..length-2 of each piece are permuted at random (seeded) and
    the last input token stays in place, so a model that sees its context as a bag of tokens
    scores the same on both, and the gap measures how much it relies on the order. An untrained
    one-layer model without positions has a gap of exactly 0 (its last position sees a set).
    """
    if stream.ndim != 1 or not isinstance(length, int) or length < 2:
        raise ValueError(f"need a 1-D stream and a length of at least 2, "
                         f"got shape {tuple(stream.shape)} and {length!r}")
    n = len(stream) // (length + 1)
    if n == 0:
        raise ValueError(f"a stream of {len(stream)} tokens holds no sequence of {length} + 1")
    pieces = stream[: n * (length + 1)].view(n, length + 1)  # (n, length + 1)
    g = torch.Generator().manual_seed(seed)
    order = torch.stack([torch.randperm(length - 1, generator=g) for _ in range(n)])  # (n, length - 1)
    shuffled = pieces.clone()
    shuffled[:, : length - 1] = torch.gather(pieces[:, : length - 1], 1, order)
    device = device_of(model)
    losses = []
    with eval_mode(model):
        for seqs in (pieces, shuffled):
            last = [model(seqs[i : i + 32, :length].to(device))[0][:, -1].cpu() for i in range(0, n, 32)]
            logits = torch.cat(last)  # (n, V)
            losses.append(float(F.cross_entropy(logits, pieces[:, length])))
    return losses[0], losses[1]
