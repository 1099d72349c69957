"""Three pretraining objectives on one backbone: causal, prefix and masked language modelling.

    objective = Objective("masked", mask_rate=0.15)
    history = train(ObjectiveModel(GPT(config), objective), batches, train_config)

The same `GPT`, with the same weights shapes, learns three different things depending on what it
may look at and what it is asked to predict:

- **causal** (GPT): every position sees the tokens before it and predicts the next one. Every
  token is a target; the model generates left to right, and a KV cache makes that cheap.
- **prefix** (the prefix LM of T5 and UniLM): a random first part of each sequence, the prefix,
  is read in both directions; the rest is causal. Only the tokens after the prefix are targets:
  a prefix position can see the token it would predict, so scoring it teaches copying
  (`Objective.prefix_loss` = True does exactly that, to show it).
- **masked** (BERT): a share of the tokens, `mask_rate`, is chosen; of those 80% are replaced by
  a [MASK] token, 10% by a random token and 10% left alone, and the model, seeing the whole
  corrupted sequence in both directions, predicts the original token at the chosen positions
  only. Position i's output predicts token i itself, not token i + 1.

The attention masks are one rule, `llmscratch.attention.prefix_lm_mask`, with a prefix of 0
(causal), a random length (prefix) or the whole sequence (masked). `ObjectiveModel` wraps a GPT
so that ``model(x, y)`` returns the objective's loss, and `llmscratch.training.train` trains it
unchanged, and a checkpointed run resumes exactly (its generator is saved with the run).
The masked model needs one token the data never uses: ``mask_id``, by default 512,
one past the course tokenizer's vocabulary, so the models here have ``vocab_size = 513``.

**What each can do, measured** (`continuation_nlls`, `blank_nlls`, `masked_nlls`):

- continue a text (the loss of each token after a given start, from everything before it): the
  causal and prefix models in one pass; the masked model only by appending a [MASK] after the
  text, one forward pass per new token, with no cache (every new token changes every earlier
  position's representation);
- fill a blank (the loss of one hidden token, from both sides): the masked model in one pass;
  the left-to-right models only by scoring the whole sequence once per candidate token (exact,
  by Bayes' rule, but V forward passes instead of one);
- the bigram baseline of each (`bigram_log_probs`): the next-token table, and for a blank
  ``p(v | left) p(right | v)`` normalised over v.

Left out: span corruption (T5 masks runs of tokens and predicts them with a decoder), ELECTRA's
replaced-token detection, and whole-word masking.

References: Devlin et al., "BERT" (NAACL 2019); Raffel et al., "Exploring the Limits of Transfer
Learning with a Unified Text-to-Text Transformer" (JMLR 2020) for the prefix LM; Dong et al.,
"Unified Language Model Pre-training" (NeurIPS 2019); Wettig et al., "Should You Mask 15% in
Masked Language Modeling?" (EACL 2023); Tay et al., "UL2" (ICLR 2023).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import GPTConfig
from .leaderboard import additive_smoothing, counting_nlls
from .model import GPT
from .runtime import eval_mode

__all__ = ["OBJECTIVES", "NextTokenView", "Objective", "ObjectiveModel", "bigram_blank_nlls",
           "bigram_continuation_nlls", "bigram_log_probs", "blank_nlls", "continuation_nlls", "mask_tokens",
           "masked_nlls", "prefix_targets", "windows"]

OBJECTIVES = ("causal", "prefix", "masked")
IGNORE = -100  # the target that F.cross_entropy skips


@dataclass(frozen=True)
class Objective:
    """What a model is trained to predict. Fields past `kind` matter only for the kind they name."""

    # "causal", "prefix" or "masked".
    kind: str = "causal"
    # masked: the share of positions chosen as targets (BERT: 0.15).
    mask_rate: float = 0.15
    # masked: the id of the [MASK] token; random replacements are drawn from the ids below it.
    mask_id: int = 512
    # masked: of the chosen positions, the share given a random token instead of [MASK], and the
    # share left unchanged (BERT: 0.1 and 0.1), so the model cannot rely on seeing [MASK] at a target.
    random_share: float = 0.1
    keep_share: float = 0.1
    # prefix: also score the targets inside the prefix, which the prefix positions can see (the bug to avoid).
    prefix_loss: bool = False

    def __post_init__(self) -> None:
        if self.kind not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.kind!r}; choose one of {OBJECTIVES}")
        if not 0.0 < self.mask_rate <= 1.0:
            raise ValueError(f"mask_rate must be in (0, 1], got {self.mask_rate}")
        if self.random_share < 0 or self.keep_share < 0 or self.random_share + self.keep_share > 1:
            raise ValueError(f"random_share and keep_share must be >= 0 and sum to at most 1, got "
                             f"{self.random_share} and {self.keep_share}")
        if self.mask_id < 1:
            raise ValueError(f"mask_id must be a positive token id, got {self.mask_id}")

    def check(self, config: GPTConfig) -> None:
        """Raise if `config` cannot serve this objective: the masked model needs a row for [MASK]."""
        if self.kind == "masked" and self.mask_id >= config.vocab_size:
            raise ValueError(f"the [MASK] id {self.mask_id} needs vocab_size > {self.mask_id}, got "
                             f"{config.vocab_size}; add one token to the vocabulary")


def mask_tokens(x: torch.Tensor, objective: Objective, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption of a batch of ids (B, T): the model's input and its targets, both (B, T).

    Each position is chosen with probability ``mask_rate`` (and every row gets at least one);
    a chosen token becomes [MASK], a random id below ``mask_id``, or stays, in the shares of
    `objective`. Targets are the original ids at chosen positions and -100 elsewhere.
    """
    if x.ndim != 2:
        raise ValueError(f"ids must have shape (batch, length), got {tuple(x.shape)}")
    if bool((x >= objective.mask_id).any()):
        raise ValueError(f"the data already uses id {objective.mask_id} or above, which is [MASK]'s")
    u = torch.rand(x.shape, generator=generator)  # (B, T): position chosen when below mask_rate
    chosen = u < objective.mask_rate
    # A row with no chosen position would have no target: choose its most likely one.
    chosen |= (u == u.min(dim=1, keepdim=True).values) & ~chosen.any(dim=1, keepdim=True)
    chosen = chosen.to(x.device)
    r = torch.rand(x.shape, generator=generator).to(x.device)  # (B, T): which corruption
    to_mask = chosen & (r < 1 - objective.random_share - objective.keep_share)
    to_random = chosen & ~to_mask & (r < 1 - objective.keep_share)
    random_ids = torch.randint(0, objective.mask_id, x.shape, generator=generator).to(x.device)
    inputs = torch.where(to_mask, torch.full_like(x, objective.mask_id), torch.where(to_random, random_ids, x))
    targets = torch.where(chosen, x, torch.full_like(x, IGNORE))
    return inputs, targets


def prefix_targets(y: torch.Tensor, generator: torch.Generator | None = None,
                   prefix_loss: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A random prefix length per row, uniform on 1..T-1, and the next-token targets `y` (B, T) outside it.

    Position i predicts token i + 1. The positions before p - 1 can see that token (it is in the
    prefix), so their targets become -100; position p - 1 sees only the prefix and predicts the
    first token after it. With `prefix_loss` the targets stay: the leak, on purpose.
    """
    B, T = y.shape
    if T < 2:
        raise ValueError(f"a prefix LM needs sequences of at least 2 tokens, got {T}")
    lengths = torch.randint(1, T, (B,), generator=generator).to(y.device)  # (B,)
    if prefix_loss:
        return lengths, y
    inside = torch.arange(T, device=y.device).view(1, -1) < (lengths - 1).view(-1, 1)  # (B, T)
    return lengths, y.masked_fill(inside, IGNORE)


class ObjectiveModel(nn.Module):
    """A `GPT` trained with an `Objective`: ``forward(x, y)`` returns ``(logits, loss)`` as the GPT does.

    `x` and `y` are a batch of windows and their next tokens, as every batcher of the course
    returns them; the objective makes its own inputs, prefix lengths and targets from them, with
    its own generator (seeded by `seed`), so a run is repeatable. The weights are ``.model``'s.
    """

    def __init__(self, model: GPT, objective: Objective, seed: int = 0) -> None:
        super().__init__()
        if not isinstance(model, GPT):
            raise TypeError(f"model must be a GPT, got {type(model).__name__}")
        objective.check(model.config)
        self.model, self.objective = model, objective
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def config(self) -> GPTConfig:
        return self.model.config

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        o = self.objective
        if y is None:  # no targets: the logits of the objective's input view (causal, or all bidirectional)
            return self.model(x, prefix_length=x.shape[1] if o.kind == "masked" else None)
        if o.kind == "causal":
            return self.model(x, y)
        if o.kind == "prefix":
            lengths, targets = prefix_targets(y, self.generator, o.prefix_loss)
            return self.model(x, targets, prefix_length=lengths)
        inputs, targets = mask_tokens(x, o, self.generator)
        return self.model(inputs, targets, prefix_length=x.shape[1])


def windows(stream: torch.Tensor, length: int) -> torch.Tensor:
    """A token stream cut into consecutive windows of `length` tokens, the remainder dropped: (N, length)."""
    if length < 2:
        raise ValueError(f"windows need at least 2 tokens, got length={length}")
    n = len(stream) // length
    return stream[: n * length].view(n, length)


class NextTokenView(nn.Module):
    """A trained model as a next-token predictor for `llmscratch.sampling.generate`: ``forward(idx)`` returns logits.

    causal: the model itself. prefix: the first `prefix` ids (the prompt) are read in both
    directions, the rest left to right. masked: a [MASK] is appended after `idx` and its
    prediction is the next token; everything is read in both directions, so every step is a full
    pass (no KV cache can hold keys that change when a token is added), and the window is one
    shorter to leave room for the [MASK]. [MASK] itself is never predicted.
    """

    def __init__(self, model: GPT, kind: str, prefix: int = 0, mask_id: int | None = None) -> None:
        super().__init__()
        _check_kind(kind, mask_id)
        self.model, self.kind, self.prefix, self.mask_id = model, kind, prefix, mask_id

    @property
    def context_length(self) -> int:
        return self.model.context_length - (1 if self.kind == "masked" else 0)

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, None]:
        B, T = idx.shape
        if self.kind == "causal":
            logits, _ = self.model(idx)
        elif self.kind == "prefix":
            logits, _ = self.model(idx, prefix_length=min(self.prefix, T))
        else:
            mask = torch.full((B, 1), self.mask_id, dtype=idx.dtype, device=idx.device)
            logits, _ = self.model(torch.cat([idx, mask], dim=1), prefix_length=T + 1)  # (B, T + 1, V)
            logits = logits[:, 1:]  # position t + 1 predicts what follows token t; the last is the [MASK]
        if self.mask_id is not None and self.mask_id < logits.shape[-1]:
            logits = logits.masked_fill(torch.arange(logits.shape[-1], device=logits.device) == self.mask_id,
                                        float("-inf"))
        return logits, None


def _token_nlls(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """-log p(ids) under `logits` (..., V): shape of `ids`."""
    return F.cross_entropy(logits.flatten(0, -2).float(), ids.flatten(), reduction="none").view(ids.shape)


@torch.no_grad()
def continuation_nlls(model: GPT, kind: str, windows: torch.Tensor, start: int,
                      mask_id: int | None = None) -> torch.Tensor:
    """The loss (nats) of tokens ``start .. T-1`` of each window (N, T), each from all tokens before it: (N, T - start).

    causal: one pass. prefix: one pass with the first `start` tokens as the prefix. masked: for every
    target position j, the tokens before j followed by [MASK] (`mask_id`), read in both directions:
    T - start passes, because a bidirectional model has no cache.
    """
    _check_kind(kind, mask_id)
    N, T = windows.shape
    if not 1 <= start < T:
        raise ValueError(f"start must be between 1 and the window length - 1 = {T - 1}, got {start}")
    with eval_mode(model):
        if kind != "masked":
            logits, _ = model(windows, prefix_length=start if kind == "prefix" else None)  # (N, T, V)
            return _token_nlls(logits[:, start - 1:-1], windows[:, start:])  # position i predicts token i + 1
        out = []
        for j in range(start, T):
            inputs = torch.cat([windows[:, :j], torch.full((N, 1), mask_id, dtype=windows.dtype)], dim=1)  # (N, j+1)
            logits, _ = model(inputs, prefix_length=j + 1)
            out.append(_token_nlls(logits[:, j], windows[:, j]))  # (N,)
        return torch.stack(out, dim=1)  # (N, T - start)


@torch.no_grad()
def blank_nlls(model: GPT, kind: str, windows: torch.Tensor, position: int, mask_id: int | None = None,
               candidates: int | None = None) -> torch.Tensor:
    """The loss (nats) of the token at `position` of each window (N, T), given every other token: (N,).

    masked: one pass, with [MASK] at the blank. causal and prefix: exact, by Bayes' rule: put each
    of the `candidates` ids (default: the vocabulary, less [MASK] if `mask_id` is given) in the
    blank, score every token from the blank to the end (the prefix model reading the tokens before
    the blank as its prefix), and normalise over the candidates: one pass per candidate.
    """
    _check_kind(kind, mask_id)
    N, T = windows.shape
    if not 1 <= position < T:
        raise ValueError(f"position must be between 1 and the window length - 1 = {T - 1}, got {position}")
    with eval_mode(model):
        if kind == "masked":
            inputs = windows.clone()
            inputs[:, position] = mask_id
            logits, _ = model(inputs, prefix_length=T)
            return _token_nlls(logits[:, position], windows[:, position])
        V = candidates or (mask_id if mask_id is not None else model.config.vocab_size)
        out = []
        for window in windows:
            filled = window.repeat(V, 1)  # (V, T): one copy per candidate
            filled[:, position] = torch.arange(V)
            logits, _ = model(filled, prefix_length=position if kind == "prefix" else None)  # (V, T, V')
            # (V,): log p(tokens from the blank to the end | the tokens before the blank)
            scores = -_token_nlls(logits[:, position - 1:-1], filled[:, position:]).sum(dim=1)
            out.append(torch.logsumexp(scores, 0) - scores[window[position]])
        return torch.stack(out)


@torch.no_grad()
def masked_nlls(model: GPT, windows: torch.Tensor, rate: float, mask_id: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """A masked model's loss (nats) at a share `rate` of positions, all set to [MASK]: one value per chosen position."""
    objective = Objective("masked", mask_rate=rate, mask_id=mask_id, random_share=0.0, keep_share=0.0)
    inputs, targets = mask_tokens(windows, objective, generator)
    with eval_mode(model):
        logits, _ = model(inputs, prefix_length=windows.shape[1])
    chosen = targets != IGNORE
    return _token_nlls(logits[chosen], targets[chosen])


def bigram_log_probs(train_ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The counting bigram's table log p(next | previous), (V, V), with the leaderboard's add-k smoothing."""
    _, k = counting_nlls(train_ids, train_ids[-2:], vocab_size, 2)  # chooses k on held-out training text
    counts = torch.bincount(train_ids[:-1] * vocab_size + train_ids[1:], minlength=vocab_size**2)
    return additive_smoothing(counts.view(vocab_size, vocab_size), k).float()


def bigram_continuation_nlls(log_probs: torch.Tensor, windows: torch.Tensor, start: int) -> torch.Tensor:
    """The bigram's loss (nats) of tokens ``start .. T-1`` of each window, each from the one before: (N, T - start)."""
    return -log_probs[windows[:, start - 1:-1], windows[:, start:]]


def bigram_blank_nlls(log_probs: torch.Tensor, windows: torch.Tensor, position: int) -> torch.Tensor:
    """The bigram's loss (nats) of a blank at `position`, from its neighbours: p(v | left) p(right | v), normalised."""
    if not 1 <= position < windows.shape[1] - 1:
        raise ValueError(f"a blank needs a token on each side: position between 1 and {windows.shape[1] - 2}, "
                         f"got {position}")
    left, right = windows[:, position - 1], windows[:, position + 1]  # (N,) each
    scores = log_probs[left] + log_probs[:, right].T  # (N, V): log p(v | left) + log p(right | v)
    return torch.logsumexp(scores, dim=1) - scores.gather(1, windows[:, position:position + 1]).squeeze(1)


def _check_kind(kind: str, mask_id: int | None) -> None:
    if kind not in OBJECTIVES:
        raise ValueError(f"unknown objective {kind!r}; choose one of {OBJECTIVES}")
    if kind == "masked" and mask_id is None:
        raise ValueError("a masked model needs mask_id, the [MASK] token's id")

