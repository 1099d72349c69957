"""The shape of a GPT, as one typed config: every variant the course compares is a `GPTConfig`.

    >>> GPTConfig(d_model=64, n_heads=4).head_dim
    16
    >>> GPTConfig(d_model=64, n_heads=5)
    Traceback (most recent call last):
    ValueError: GPTConfig.d_model=64 is not divisible by n_heads=5: each head gets d_model / n_heads features

It sits at the bottom of the package's imports: the attention layer, the block and the model
all read it, and it reads none of them. The names of its fields are the course's one
vocabulary (see the glossary page of the book for what other codebases call them).
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import check_sizes
from .positional import POSITION_SCHEMES

__all__ = ["ACTIVATIONS", "GPTConfig", "GPT_PRESETS", "NORMS"]

# The choices of `GPTConfig.norm` and `GPTConfig.activation` (see blocks.py for what they do).
NORMS = ("layernorm", "rmsnorm", "none")
ACTIVATIONS = ("gelu", "relu", "swiglu")


@dataclass(frozen=True)
class GPTConfig:
    """The shape of a `GPT`. Defaults: a small model for Tiny Shakespeare with the course's BPE."""

    # The committed BPE tokenizer (data/bpe_tokenizer.json) has 512 tokens.
    vocab_size: int = 512
    # Tokens per training sequence, about 120 characters of Shakespeare. A learned position
    # table has exactly this many rows; the other schemes accept longer inputs.
    context_length: int = 64
    # Width of the residual stream: every token is a vector of this many numbers.
    d_model: int = 64
    # Transformer blocks stacked; two is the least depth that composes attention patterns.
    # 0 leaves embedding -> output layer: a bigram model, the bottom rung of the ablations.
    n_layers: int = 2
    # Attention heads per block; d_model is split evenly among them (head_dim = d_model / n_heads).
    n_heads: int = 4
    # Key/value heads; None means one per query head (multi-head attention). Fewer, shared by
    # groups of query heads, is grouped-query attention; 1 is multi-query attention.
    n_kv_heads: int | None = None
    # Hidden width of the feed-forward network; None means 4 * d_model, GPT-2's ratio.
    # 0 removes the feed-forward sublayer (and its norm): an attention-only model.
    d_ff: int | None = None
    # Where order comes from: "learned", "sinusoidal", "rope", "alibi" or "none" (see positional.py).
    position: str = "learned"
    # "layernorm" (GPT-2), "rmsnorm" (Llama), or "none".
    norm: str = "layernorm"
    # "pre": norm before each sublayer, inside the residual branch (GPT-2); "post": after the
    # addition (the original Transformer).
    norm_placement: str = "pre"
    # Feed-forward nonlinearity: "gelu" (GPT-2), "relu" (the original), "swiglu" (Llama).
    activation: str = "gelu"
    # Residual connections around both sublayers; False only to show why they are there.
    residual: bool = True
    # Share the token embedding matrix with the output layer: V * d_model fewer parameters.
    tie_weights: bool = True
    # Biases in the linear layers and LayerNorms, as GPT-2 has them.
    bias: bool = True
    # Dropout on attention weights and residual branches; 0 because short runs do not overfit.
    dropout: float = 0.0
    # RoPE's base: the slowest pair turns once every ~2π · base positions.
    rope_base: float = 10000.0
    # Scale the residual-writing projections' init by 1/sqrt(2 n_layers) (GPT-2).
    scaled_residual_init: bool = True
    # Sliding-window attention: each query sees itself and the attention_window - 1 keys before
    # it. None means the whole causal prefix (GPT-2); Mistral uses 4096 of a 32k context.
    attention_window: int | None = None
    # Mixture of experts: 0 keeps one dense feed-forward network per block; E >= 2 gives each
    # block E of them and a router that sends every token to experts_per_token of them.
    n_experts: int = 0
    # Experts per token (the router's top-k): 2 as in Mixtral, 1 as in the Switch Transformer.
    experts_per_token: int = 2
    # An expert takes at most capacity_factor * (tokens * k / E) tokens per batch; the rest skip
    # the feed-forward sublayer (Switch uses 1.25). None: no limit, nothing is dropped.
    capacity_factor: float | None = None
    # Weight of the router's load-balancing loss added to the language-model loss (Switch: 0.01).
    router_aux_weight: float = 0.01

    def __post_init__(self) -> None:
        check_sizes(self, ("vocab_size", "context_length", "d_model", "n_heads"))
        check_sizes(self, ("n_layers",), minimum=0)
        if self.d_model % self.n_heads:
            raise ValueError(f"GPTConfig.d_model={self.d_model} is not divisible by n_heads={self.n_heads}: "
                             "each head gets d_model / n_heads features")
        kv = self.n_kv_heads
        if kv is not None and (not isinstance(kv, int) or isinstance(kv, bool)):
            raise TypeError(f"GPTConfig.n_kv_heads must be an integer or None, got {kv!r}")
        if kv is not None and (kv <= 0 or self.n_heads % kv):
            raise ValueError(f"GPTConfig.n_kv_heads={kv!r} must be a positive divisor of n_heads={self.n_heads}")
        if self.d_ff is not None:
            check_sizes(self, ("d_ff",), minimum=0)
        choices = {"position": tuple(POSITION_SCHEMES), "norm": NORMS, "norm_placement": ("pre", "post"),
                   "activation": ACTIVATIONS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"GPTConfig.{name}={getattr(self, name)!r}; choose one of {allowed}")
        paired = {"rope": ("head_dim", self.head_dim), "sinusoidal": ("d_model", self.d_model)}
        if self.position in paired and paired[self.position][1] % 2:
            name, size = paired[self.position]
            raise ValueError(f"GPTConfig: position={self.position!r} pairs features, so {name} must be even, "
                             f"got {size}")
        for name in ("residual", "tie_weights", "bias", "scaled_residual_init"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"GPTConfig.{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("dropout", "rope_base"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"GPTConfig.{name} must be a number, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if not self.rope_base > 1:
            raise ValueError(f"GPTConfig.rope_base must be greater than 1, got {self.rope_base!r}")
        if self.attention_window is not None:
            check_sizes(self, ("attention_window",))
        self._check_experts()

    def _check_experts(self) -> None:
        check_sizes(self, ("n_experts",), minimum=0)
        check_sizes(self, ("experts_per_token",))
        if self.n_experts == 1:
            raise ValueError("GPTConfig.n_experts=1 is a dense feed-forward network with a router that has no "
                             "choice; use n_experts=0 for dense, or at least 2 experts")
        if self.n_experts and self.experts_per_token > self.n_experts:
            raise ValueError(f"GPTConfig.experts_per_token={self.experts_per_token} is more than "
                             f"n_experts={self.n_experts}: a token cannot visit more experts than there are")
        if self.n_experts and self.ff_dim == 0:
            raise ValueError("GPTConfig.n_experts > 0 needs a feed-forward sublayer, but d_ff=0 removes it")
        for name in ("capacity_factor", "router_aux_weight"):
            value = getattr(self, name)
            if value is None and name == "capacity_factor":
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"GPTConfig.{name} must be a number, got {value!r}")
        if self.capacity_factor is not None and not self.capacity_factor > 0:
            raise ValueError(f"GPTConfig.capacity_factor must be positive (or None), got {self.capacity_factor!r}")
        if not self.router_aux_weight >= 0:
            raise ValueError(f"GPTConfig.router_aux_weight must be at least 0, got {self.router_aux_weight!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    @property
    def ff_dim(self) -> int:
        return 4 * self.d_model if self.d_ff is None else self.d_ff


# Named sizes used by the chapters and scripts.
GPT_PRESETS: dict[str, GPTConfig] = {
    # Part 2's live experiments: trains a few hundred steps in well under a minute on one core.
    "tiny": GPTConfig(),
    # The committed run (python -m llmscratch.scripts.train_gpt shakespeare-small): four layers of
    # four heads, twice the context; minutes on a CPU.
    "shakespeare-small": GPTConfig(context_length=128, d_model=128, n_layers=4, n_heads=4),
    # Part 4's modern block (Llama's choices) at the size of Part 2's four-block rung, so that the
    # leaderboard compares the two at one budget: 4 layers, d_model 64, 4 heads, context 64.
    "modern": GPTConfig(
        n_layers=4,
        # Divide by the root mean square only: no mean to subtract, no shift to learn (Zhang & Sennrich).
        norm="rmsnorm",
        # A gated feed-forward unit, silu(gate(x)) * up(x), three matrices instead of two (Shazeer).
        activation="swiglu",
        # Three matrices of width 171 hold 3 * 64 * 171 = 32,832 weights, two of GELU's 4 * 64 = 256
        # hold 32,768: the same parameters (modern_block.swiglu_width computes it; a test checks).
        d_ff=171,
        # Rotate queries and keys by position: no position table, and the model accepts longer inputs.
        position="rope",
        # No biases in the linear layers (and none in RMSNorm): they cost parameters and add little.
        bias=False,
        # A separate output matrix, as in Llama and in the four-block rung it is compared with.
        tie_weights=False,
    ),
}
