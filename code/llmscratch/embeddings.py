"""A bag of embeddings: a language model that sees *which* tokens are in its window, and,
optionally, *where* they are.

`BagOfEmbeddingsLM` looks up each of the `context_length` previous tokens in a token embedding
table, adds a learned positional embedding per slot of the window when ``positions=True``,
passes each slot through the same tanh layer, averages the window into one vector, and maps
it to logits for the next token. Without positions the average forgets order entirely:

    >>> import torch
    >>> model = BagOfEmbeddingsLM(BagOfEmbeddingsConfig(vocab_size=10, context_length=3,
    ...                                                 embedding_dim=4, positions=False))
    >>> a, _ = model(torch.tensor([[1, 2, 3]]))
    >>> b, _ = model(torch.tensor([[3, 1, 2]]))
    >>> torch.allclose(a, b)
    True

Adding a position vector to each token vector is how the original Transformer tells positions
apart (learned, as in GPT-2, rather than sinusoidal); here it is the *only* route by which
order reaches the model, so the embeddings chapter can measure what it is worth.
The tanh layer must come *before* the average: the mean of (token + position) vectors is the
mean of the token vectors plus a constant, so with ``hidden_dim=0`` positions change nothing
but a bias.

Left out on purpose: any interaction between tokens before the average (attention, Part 2, is
that interaction) and sinusoidal or rotary positions (the positional-encoding chapter).

References: Bengio et al., "A Neural Probabilistic Language Model", JMLR 3 (2003); Vaswani et
al., "Attention Is All You Need", NeurIPS 2017.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from .checks import check_sizes, check_token_ids, embed_ids, window_loss

__all__ = ["BagOfEmbeddingsConfig", "BagOfEmbeddingsLM"]


@dataclass(frozen=True)
class BagOfEmbeddingsConfig:
    """The sizes of a `BagOfEmbeddingsLM`. Defaults suit the 512-token BPE of Tiny Shakespeare."""

    # The committed BPE tokenizer (data/bpe_tokenizer.json) has 512 tokens.
    vocab_size: int = 512
    # Eight previous tokens, about 25 characters: long enough that order inside it matters.
    context_length: int = 8
    # 32 numbers per token: enough to separate 512 tokens, small enough to train in seconds.
    embedding_dim: int = 32
    # A learned vector per slot of the window, added to the token's; False makes the model
    # blind to order (the average of a set), which is the point of the comparison.
    positions: bool = True
    # Width of the tanh layer applied to each slot before the average. Without it (0) the
    # average of token + position is the token average plus a constant: positions add nothing.
    hidden_dim: int = 128

    def __post_init__(self) -> None:
        check_sizes(self, ("vocab_size", "context_length", "embedding_dim"))
        check_sizes(self, ("hidden_dim",), minimum=0)
        if not isinstance(self.positions, bool):
            raise TypeError(
                f"BagOfEmbeddingsConfig.positions must be a bool, got {self.positions!r}"
            )


class BagOfEmbeddingsLM(nn.Module):
    """Mean over the window of tanh(W(token + optional position embedding)), then logits.

    ``idx`` (B, T) with T = `context_length` gives ``logits`` (B, V) for the token after each
    window, and, with ``targets`` (B,), the mean cross-entropy loss.
    """

    def __init__(self, config: BagOfEmbeddingsConfig) -> None:
        super().__init__()
        if not isinstance(config, BagOfEmbeddingsConfig):
            raise TypeError(
                f"config must be a BagOfEmbeddingsConfig, got {type(config).__name__}"
            )
        self.config = config
        c = config
        self.token_embedding = nn.Embedding(c.vocab_size, c.embedding_dim)  # (V, E)
        # (T, E), or None: with positions=False there is nothing that knows about order.
        self.position_embedding = (
            nn.Embedding(c.context_length, c.embedding_dim) if c.positions else None
        )
        width = c.hidden_dim or c.embedding_dim
        self.hidden = nn.Linear(c.embedding_dim, c.hidden_dim) if c.hidden_dim else None
        self.output = nn.Linear(width, c.vocab_size)
        self.reset_parameters()

    @property
    def context_length(self) -> int:
        return self.config.context_length

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    def reset_parameters(self) -> None:
        """Embeddings ~ N(0, 1); a small output layer so the first loss is about ln V."""
        c = self.config
        nn.init.normal_(self.token_embedding.weight, std=1.0)
        if self.position_embedding is not None:
            nn.init.normal_(self.position_embedding.weight, std=1.0)
        if self.hidden is not None:
            # 5/3 is tanh's gain; 1/sqrt(fan_in) keeps pre-activations near unit variance.
            nn.init.normal_(self.hidden.weight, std=(5 / 3) / math.sqrt(c.embedding_dim))
            nn.init.zeros_(self.hidden.bias)
        width = c.hidden_dim or c.embedding_dim
        nn.init.normal_(self.output.weight, std=0.1 / math.sqrt(width))
        nn.init.zeros_(self.output.bias)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        c = self.config
        check_token_ids(idx, length=c.context_length)
        x = embed_ids(self.token_embedding, idx)  # (B, T, E)
        if self.position_embedding is not None:
            x = x + self.position_embedding.weight  # (B, T, E) + (T, E), broadcast over B
        if self.hidden is not None:
            x = torch.tanh(self.hidden(x))  # (B, T, H): the same layer for every slot
        x = x.mean(dim=1)  # (B, E) or (B, H): the order of the T rows no longer matters here
        logits = self.output(x)  # (B, V)
        return logits, window_loss(logits, targets)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items())
