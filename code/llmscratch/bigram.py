"""The counting bigram model: the next token's distribution depends only on the current one.

Fit it by counting. For every sequence, wrap it in a boundary token (id `boundary_id`) at both
ends and count each adjacent pair ``(current, next)``:

    >>> model = CountingBigram.fit([[1, 2], [1]], vocab_size=3)   # ".ab." and ".a."
    >>> model.counts.tolist()
    [[0, 2, 0], [1, 0, 1], [1, 0, 0]]

Row ``i`` of `probabilities` is P(next | current = i): the counts of that row, plus an optional
`smoothing` pseudo-count added to every cell (additive, or Laplace, smoothing), normalised.
The model's loss on held-out sequences is the mean negative log-likelihood per predicted token,
in nats; ``exp`` of it is the perplexity.

Left out here: learning the table by gradient descent (the next chapter does, and lands on the
same table) and any context longer than one token.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn as nn

__all__ = ["BigramLM", "CountingBigram"]


def _pairs(sequences: Iterable[Sequence[int]], boundary_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All (current, next) pairs of the boundary-wrapped sequences, as two 1-D tensors."""
    firsts: list[int] = []
    seconds: list[int] = []
    for seq in sequences:
        wrapped = [boundary_id, *seq, boundary_id]
        firsts.extend(wrapped[:-1])
        seconds.extend(wrapped[1:])
    return torch.tensor(firsts, dtype=torch.long), torch.tensor(seconds, dtype=torch.long)


class CountingBigram:
    """A `vocab_size` × `vocab_size` table of pair counts."""

    def __init__(self, counts: torch.Tensor, boundary_id: int = 0) -> None:
        if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
            raise ValueError(f"counts must be a square matrix, got shape {tuple(counts.shape)}")
        if (counts < 0).any():
            raise ValueError("counts must be non-negative")
        if not 0 <= boundary_id < counts.shape[0]:
            raise ValueError(f"boundary_id {boundary_id} is outside 0..{counts.shape[0] - 1}")
        self.counts = counts
        self.boundary_id = boundary_id

    @property
    def vocab_size(self) -> int:
        return self.counts.shape[0]

    @classmethod
    def fit(cls, sequences: Iterable[Sequence[int]], vocab_size: int, boundary_id: int = 0) -> CountingBigram:
        """Count the pairs in `sequences` (lists of ids, without boundary tokens)."""
        first, second = _pairs(sequences, boundary_id)
        if first.numel() and (min(first.min(), second.min()) < 0 or max(first.max(), second.max()) >= vocab_size):
            raise ValueError(f"sequences contain ids outside 0..{vocab_size - 1}")
        # One flat index per pair; bincount counts all pairs in one pass.
        flat = first * vocab_size + second  # (N,)
        counts = torch.bincount(flat, minlength=vocab_size * vocab_size)
        return cls(counts.view(vocab_size, vocab_size), boundary_id)  # (V, V)

    def probabilities(self, smoothing: float = 0.0) -> torch.Tensor:
        """P(next | current) as a (V, V) float64 tensor whose rows sum to 1.

        Rows with no counts at all (a token never seen as `current`) need ``smoothing > 0``.
        """
        if smoothing < 0:
            raise ValueError(f"smoothing must be >= 0, got {smoothing}")
        table = self.counts.double() + smoothing  # (V, V)
        totals = table.sum(dim=1, keepdim=True)  # (V, 1)
        empty = (totals == 0).squeeze(1)
        if empty.any():
            rows = empty.nonzero().flatten().tolist()
            raise ValueError(f"rows {rows} have no counts; use smoothing > 0 to give them a distribution")
        return table / totals

    def nll(self, sequences: Iterable[Sequence[int]], smoothing: float = 0.0) -> float:
        """Mean negative log-likelihood per predicted token, in nats.

        Each sequence of length L contributes L + 1 predictions (its tokens and the end).
        A pair never seen in training has probability 0 without smoothing, so the loss is
        ``inf``: that is the honest answer, and the reason for smoothing. The same holds for a
        pair whose first token never occurred in training at all.
        """
        first, second = _pairs(sequences, self.boundary_id)
        if first.numel() == 0:
            raise ValueError("no sequences to score")
        if smoothing < 0:
            raise ValueError(f"smoothing must be >= 0, got {smoothing}")
        table = self.counts.double() + smoothing  # (V, V)
        # A row never seen in training gives its pairs probability 0 (so the loss is inf),
        # rather than failing on rows the scored sequences never use.
        totals = table.sum(dim=1, keepdim=True).clamp_min(1e-300)  # (V, 1)
        probs = (table / totals)[first, second]  # (N,)
        with torch.no_grad():
            return float(-torch.log(probs).mean())

    def perplexity(self, sequences: Iterable[Sequence[int]], smoothing: float = 0.0) -> float:
        """``exp(nll)``: the number of equally likely choices the model is as unsure as."""
        return math.exp(self.nll(sequences, smoothing))

    def sample(
        self, n: int, generator: torch.Generator, smoothing: float = 0.0, max_len: int = 100
    ) -> list[list[int]]:
        """Draw `n` sequences: start at the boundary, sample the next id until the boundary returns."""
        probs = self.probabilities(smoothing)
        out = []
        for _ in range(n):
            seq: list[int] = []
            current = self.boundary_id
            for _ in range(max_len):
                current = int(torch.multinomial(probs[current], 1, generator=generator))
                if current == self.boundary_id:
                    break
                seq.append(current)
            out.append(seq)
        return out


class BigramLM(nn.Module):
    """A fitted `CountingBigram` as a language-model module: ``model(idx) -> (logits, None)``.

    The logits at each position are log P(next | the token there), so everything written for the
    GPT (generation, `sft.evaluate_instructions`, `sft.response_loss`) scores the counting
    baseline by the same protocol. `context_length` is only how much of a row `generate` passes
    in; the table looks at one token.

    >>> lm = BigramLM(CountingBigram.fit([[1, 2]], vocab_size=3), smoothing=0.0)
    >>> lm(torch.tensor([[1]]))[0].exp().tolist()   # after 1 always comes 2
    [[[0.0, 0.0, 1.0]]]
    """

    def __init__(self, bigram: CountingBigram, smoothing: float = 1.0, context_length: int = 256) -> None:
        super().__init__()
        self.context_length = context_length
        self.register_buffer("log_probs", bigram.probabilities(smoothing).log().float())  # (V, V)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        if targets is not None:
            raise ValueError("BigramLM scores ids; compute the loss from its logits")
        if idx.ndim != 2:
            raise ValueError(f"idx must have shape (batch, length), got {tuple(idx.shape)}")
        return self.log_probs[idx], None  # (B, T, V)
