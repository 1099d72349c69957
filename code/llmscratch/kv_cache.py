"""The KV cache: keep every layer's keys and values, so that generation computes each token once.

Generating without a cache, step t runs the whole window of t tokens through the model to get
one new row of logits: the keys and values of the first t - 1 tokens are computed again, every
step, although they never change (a causal model's earlier positions do not see later ones).
With a cache the first call (the **prefill**) runs the prompt once and stores each layer's
keys and values; every later call (a **decode** step) feeds only the new token, appends its key
and value to the store, and attends from it to everything stored. A step then costs one
token's projections and feed-forward instead of t tokens', plus attention over t keys.

The new token sits at position ``cache.length``, not 0: the learned or sinusoidal position
vector, the RoPE angles and the ALiBi distances all start at that offset (`GPT.forward` and
`CausalSelfAttention.forward` read it from the cache). Keys are stored *after* RoPE has
rotated them, so a stored key is never touched again.

    >>> from llmscratch import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2))
    >>> cache = KVCache.for_model(model)
    >>> _ = model(torch.tensor([[1, 2, 3]]), cache=cache)  # prefill: 3 positions
    >>> _ = model(torch.tensor([[4]]), cache=cache)  # decode: position 3
    >>> cache.length, tuple(cache.keys[0].shape)  # (B, n_kv_heads, length, head_dim)
    (4, (1, 2, 4, 4))
    >>> cache.nbytes == kv_cache_bytes(model.config, batch_size=1, length=4)  # 2 · 2 layers · 2 heads · 4 · 4 · 4 B
    True

The memory it takes is ``2 · n_layers · batch · n_kv_heads · length · head_dim`` numbers
(`kv_cache_bytes`): keys and values, per layer, per key/value head. That is why grouped-query
attention exists: with fewer key/value heads the cache shrinks by ``n_heads / n_kv_heads``.

**The rolling cache.** A model with sliding-window attention (``attention_window = W``) never
looks at a key more than W - 1 positions back, so its cache keeps only the last W positions of
every layer and drops the rest: its memory stops growing at W, however long the generation
(`kv_cache_bytes` counts ``min(length, W)`` positions). Positions keep counting (`length`), so
RoPE angles and ALiBi distances stay right. With a relative position scheme (RoPE, ALiBi or
none) such a model can then generate forever (`KVCache.streaming`): nothing depends on where
the sequence started. A learned or sinusoidal table ties the model to its first
``context_length`` positions, and past them `generate` refills the cache from the cropped window.
`generation_window` says how many ids a cache-free loop must feed to compute the same logits.

Left out: preallocated ring buffers (here each step concatenates and the rolling cache copies
its last W positions, which costs a copy a step), paged storage, rows of different lengths in
one batch, attention sinks (StreamingLLM keeps the first tokens too), and quantised caches.

References: Pope et al., "Efficiently Scaling Transformer Inference" (MLSys 2023); Shazeer,
"Fast Transformer Decoding: One Write-Head is All You Need" (2019) for multi-query attention;
Jiang et al., "Mistral 7B" (2023) for the rolling buffer cache; Xiao et al., "Efficient
Streaming Language Models with Attention Sinks" (ICLR 2024).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .config import GPTConfig

__all__ = ["RELATIVE_POSITIONS", "KVCache", "generation_window", "kv_cache_bytes", "receptive_field"]

# Position schemes under which attention depends only on offsets (or on nothing): a windowed
# model with one of them behaves the same wherever its window sits in the sequence.
RELATIVE_POSITIONS = ("rope", "alibi", "none")


@dataclass(eq=False)
class KVCache:
    """Per-layer keys and values of the positions seen so far, each (B, n_kv_heads, length, head_dim).

    Make one with `KVCache.for_model` and pass it to ``model(idx, cache=cache)`` again and again:
    each call appends its tokens' keys and values and advances `length`. Empty layers hold None.
    For a model with ``attention_window = W`` it is a rolling cache: it keeps the last W positions.
    """

    config: GPTConfig  # the shape of the model that fills it; another model's cache is refused
    keys: list[torch.Tensor | None] = field(default_factory=list, repr=False)  # n_layers entries
    values: list[torch.Tensor | None] = field(default_factory=list, repr=False)  # n_layers entries
    length: int = 0  # positions already stored: the position of the next token

    def __post_init__(self) -> None:
        n = self.config.n_layers
        self.keys = self.keys or [None] * n
        self.values = self.values or [None] * n

    @property
    def window(self) -> int | None:
        """The most positions each layer keeps: the model's attention window, or None (all of them)."""
        return self.config.attention_window

    @property
    def streaming(self) -> bool:
        """True if the model can go on past ``context_length`` with this cache, never refilling it:
        a sliding window (the cache rolls) and a relative position scheme (`RELATIVE_POSITIONS`)."""
        return self.window is not None and self.config.position in RELATIVE_POSITIONS

    @property
    def held(self) -> int:
        """Positions stored per layer now: `length`, or at most `window` for a rolling cache."""
        first = self.keys[0] if self.keys else None
        return 0 if first is None else first.shape[2]

    @classmethod
    def for_model(cls, model: torch.nn.Module) -> KVCache:
        """An empty cache for `model` (a `llmscratch.GPT`)."""
        config = getattr(model, "config", None)
        if not isinstance(config, GPTConfig):
            raise TypeError(f"a KV cache needs a GPT (a model with a GPTConfig), got {type(model).__name__}")
        return cls(config)

    def check(self, config: GPTConfig, batch_size: int, new_tokens: int) -> None:
        """Raise ValueError unless this cache can take `new_tokens` more positions of a model of `config`."""
        if self.config != config:
            raise ValueError("this KV cache was made for a model of another shape: make one with "
                             "KVCache.for_model(model)")
        first = self.keys[0] if self.keys else None
        if first is not None and first.shape[0] != batch_size:
            raise ValueError(f"this KV cache holds {first.shape[0]} rows, but the input has {batch_size}")
        if config.position == "learned" and self.length + new_tokens > config.context_length:
            raise ValueError(f"{self.length} cached + {new_tokens} new positions, but the learned position "
                             f"table has only context_length={config.context_length} rows; refill the "
                             "cache from a cropped window")

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new keys and values (B, Hkv, T, hs) of `layer`; return stored and new, (B, Hkv, S + T, hs).

        S is every earlier position, or for a rolling cache the last `window` of them at most:
        the caller attends to all S + T (its mask hides what lies outside the window), and the
        cache then keeps only the last `window` for the next call.
        """
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)  # (B, Hkv, S + T, hs)
            v = torch.cat([self.values[layer], v], dim=2)  # (B, Hkv, S + T, hs)
        W = self.window
        if W is not None and k.shape[2] > W:
            # A copy, not a view: a view would keep the whole concatenated tensor alive.
            self.keys[layer], self.values[layer] = k[:, :, -W:].clone(), v[:, :, -W:].clone()  # (B, Hkv, W, hs)
        else:
            self.keys[layer], self.values[layer] = k, v
        return k, v

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached tensors: ``numel · element_size`` summed over keys and values."""
        return sum(t.numel() * t.element_size() for t in self.keys + self.values if t is not None)


def kv_cache_bytes(config: GPTConfig, batch_size: int, length: int, bytes_per_value: int = 4) -> int:
    """Bytes of a KV cache after `length` positions of `batch_size` rows: keys and values,
    ``2 · n_layers · batch_size · n_kv_heads · length · head_dim · bytes_per_value``, where a
    rolling cache (``attention_window = W``) holds ``min(length, W)`` positions instead of `length`.

    >>> kv_cache_bytes(GPTConfig(d_model=64, n_layers=2, n_heads=4), batch_size=1, length=64)
    65536
    >>> kv_cache_bytes(GPTConfig(d_model=64, n_layers=2, n_heads=4, n_kv_heads=1), batch_size=1, length=64)
    16384
    >>> kv_cache_bytes(GPTConfig(d_model=64, n_layers=2, n_heads=4, attention_window=16), batch_size=1, length=64)
    16384
    """
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
    for name, value, least in (("batch_size", batch_size, 1), ("length", length, 0),
                               ("bytes_per_value", bytes_per_value, 1)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        if value < least:
            raise ValueError(f"{name} must be at least {least}, got {value!r}")
    c = config
    held = length if c.attention_window is None else min(length, c.attention_window)
    return 2 * c.n_layers * batch_size * c.kv_heads * held * c.head_dim * bytes_per_value


def receptive_field(config: GPTConfig) -> int | None:
    """How many tokens (itself included) the last position of a windowed GPT can be influenced by:
    ``n_layers · (W - 1) + 1``. None without a window (the whole input).

    Layer 1 at position i reads positions i - W + 1 .. i; layer 2 reads layer 1's outputs there,
    each of which read W - 1 further back; and so on:

    >>> receptive_field(GPTConfig(n_layers=3, attention_window=4))
    10
    """
    if config.attention_window is None:
        return None
    return config.n_layers * (config.attention_window - 1) + 1


def generation_window(model: torch.nn.Module) -> int:
    """How many of the last ids `llmscratch.sampling.generate` feeds a model per step without a cache.

    ``model.context_length`` for most models. A GPT whose cache streams (a window and relative
    positions) is fed its `receptive_field` instead: what lies further back cannot change the
    next token's logits, and where the window starts does not matter, so these ids give the
    logits of the whole sequence, which is what its rolling cache computes.
    """
    config = getattr(model, "config", None)
    if isinstance(config, GPTConfig) and KVCache(config).streaming:
        return receptive_field(config)
    return model.context_length
