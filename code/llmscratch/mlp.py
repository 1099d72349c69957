"""Neural next-token models that look at a fixed window of previous tokens.

`NeuralBigram` is the counting bigram of `llmscratch.bigram` rewritten as a neural network: a
`vocab_size` × `vocab_size` table of **logits**, one row per current token. Looking up row
``W[i]`` is the same as multiplying the one-hot vector of ``i`` by ``W``:

    >>> import torch
    >>> W = torch.arange(6.0).view(2, 3)
    >>> idx = torch.tensor([1, 0])
    >>> torch.equal(W[idx], torch.nn.functional.one_hot(idx, 2).float() @ W)
    True

Trained by gradient descent on cross-entropy, its softmaxed rows approach the normalised counts.

`MLPLanguageModel` is the neural probabilistic language model of Bengio et al. (2003): each of
the `context_length` previous tokens is looked up in a shared embedding table, the vectors are
concatenated, passed through one tanh hidden layer, and mapped to logits for the next token.
Both models share the interface the later GPT keeps: ``forward(idx, targets=None)`` returns
``(logits, loss)``.

Left out on purpose: Bengio's direct connections from the embeddings to the output, and any
weight sharing across positions (the same character at two positions of the window goes
through different weights). Attention, in Part 2, is the answer to the second.

Reference: Y. Bengio, R. Ducharme, P. Vincent, C. Jauvin, "A Neural Probabilistic Language
Model", JMLR 3 (2003).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from .checks import check_sizes, check_token_ids, embed_ids, window_loss

__all__ = ["MLP_PRESETS", "MLPConfig", "MLPLanguageModel", "NeuralBigram"]


class NeuralBigram(nn.Module):
    """A table of logits ``W`` (V, V): P(next | current = i) = softmax(W[i]).

    Its `context_length` is 1, so it takes the same ``idx`` of shape (B, 1)
    as `MLPLanguageModel` and fits the same training loop and sampler. It
    starts at ``W = 0``, the uniform distribution, whose loss is ln V.
    """

    context_length = 1

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        check_sizes(self, ("vocab_size",))
        V = vocab_size
        self.weight = nn.Parameter(torch.zeros(V, V))  # (V, V)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        check_token_ids(idx, length=1)
        logits = embed_ids(self.weight, idx[:, 0])  # (B, V): row lookup = one-hot times W
        return logits, window_loss(logits, targets)

    def probabilities(self) -> torch.Tensor:
        """The (V, V) table P(next | current), as `CountingBigram` has it."""
        return torch.softmax(self.weight.detach(), dim=1)


@dataclass(frozen=True)
class MLPConfig:
    """The sizes of an `MLPLanguageModel`. Defaults are a small model for names."""

    # 26 letters plus the boundary token "." of the names data set.
    vocab_size: int = 27
    # Three previous characters, the window of makemore's first MLP; names keep improving up
    # to about 8 (the names chapter measures it).
    context_length: int = 3
    # Ten numbers per character is plenty for 27 symbols, and 2 can be plotted.
    embedding_dim: int = 10
    # Wide enough to be far better than a bigram, small enough to train in seconds on a CPU.
    hidden_dim: int = 200
    # Optional LayerNorm before tanh (per example, so training and evaluation agree, unlike
    # BatchNorm). Off: with the initialisation below tanh does not saturate anyway, and on
    # names it trained slower and ended worse (the chapter's exercise measures it).
    layer_norm: bool = False
    # Dropout on the hidden layer; 0 because small models on names underfit rather than overfit.
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_sizes(self, ("vocab_size", "context_length", "embedding_dim", "hidden_dim"))
        if not isinstance(self.layer_norm, bool):
            raise TypeError(f"MLPConfig.layer_norm must be True or False, got {self.layer_norm!r}")
        if not isinstance(self.dropout, (int, float)) or isinstance(self.dropout, bool):
            raise TypeError(f"MLPConfig.dropout must be a number, got {self.dropout!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MLPConfig.dropout must be in [0, 1), got {self.dropout!r}")


# Named sizes used by the chapters and scripts.
MLP_PRESETS: dict[str, MLPConfig] = {
    # The names chapter's live model: trains in seconds.
    "names-small": MLPConfig(),
    # The committed full run on names (llmscratch.scripts.train_mlp): 8 characters of context
    # and a wide layer; large enough to memorise names, hence dropout.
    "names-large": MLPConfig(context_length=8, embedding_dim=24, hidden_dim=512, dropout=0.2),
    # Two dimensions per character, for a scatter plot of the embeddings.
    "names-2d": MLPConfig(embedding_dim=2, hidden_dim=100),
    # Tiny Shakespeare's 65 characters. Eight of context: in short runs longer windows train
    # slower and end worse (the Shakespeare chapter measures it). No dropout: short runs
    # of a million characters do not overfit.
    "shakespeare": MLPConfig(vocab_size=65, context_length=8, embedding_dim=16, hidden_dim=512),
    # The committed longer run: the same window, twice the width.
    "shakespeare-large": MLPConfig(vocab_size=65, context_length=8, embedding_dim=16, hidden_dim=1024),
}


class MLPLanguageModel(nn.Module):
    """Embed the previous `context_length` tokens, concatenate, one tanh layer, logits.

    ``idx`` (B, T) with T = `context_length` gives ``logits`` (B, V) for the token after
    each window, and, with ``targets`` (B,), the mean cross-entropy loss.
    """

    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        if not isinstance(config, MLPConfig):
            raise TypeError(f"config must be an MLPConfig, got {type(config).__name__}")
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim)  # (V, E)
        self.hidden = nn.Linear(c.context_length * c.embedding_dim, c.hidden_dim)
        self.norm = nn.LayerNorm(c.hidden_dim) if c.layer_norm else nn.Identity()
        self.dropout = nn.Dropout(c.dropout)
        self.output = nn.Linear(c.hidden_dim, c.vocab_size)
        self.reset_parameters()

    @property
    def context_length(self) -> int:
        return self.config.context_length

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    def reset_parameters(self) -> None:
        """Initialise so that the untrained model is calm: tanh unsaturated, loss near ln V.

        Embeddings ~ N(0, 1). The hidden weights are scaled by 1/sqrt(fan_in), so each
        pre-activation has variance near 1 whatever the width, times 5/3 (tanh's usual gain,
        which offsets the shrinking it does to unit-variance inputs). The output weights start at
        0.1/sqrt(fan_in), so the first logits are nearly equal and the first loss is about ln V
        rather than a confident wrong guess.
        """
        c = self.config
        nn.init.normal_(self.embedding.weight, std=1.0)
        fan_in = c.context_length * c.embedding_dim
        nn.init.normal_(self.hidden.weight, std=(5 / 3) / math.sqrt(fan_in))
        nn.init.zeros_(self.hidden.bias)
        nn.init.normal_(self.output.weight, std=0.1 / math.sqrt(c.hidden_dim))
        nn.init.zeros_(self.output.bias)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        c = self.config
        check_token_ids(idx, length=c.context_length)
        B, T, E = idx.shape[0], c.context_length, c.embedding_dim
        emb = embed_ids(self.embedding, idx)  # (B, T, E)
        x = emb.view(B, T * E)  # (B, T*E): the T vectors side by side
        h = torch.tanh(self.norm(self.hidden(x)))  # (B, H)
        logits = self.output(self.dropout(h))  # (B, V)
        return logits, window_loss(logits, targets)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items())
