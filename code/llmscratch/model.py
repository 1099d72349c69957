"""The GPT: token (and position) embeddings, a stack of transformer blocks, a final norm, and
a linear map to one logit per vocabulary entry, at every position.

    >>> import torch
    >>> model = GPT(GPTConfig(vocab_size=50, context_length=8, d_model=16, n_layers=1, n_heads=2))
    >>> logits, loss = model(torch.zeros(3, 8, dtype=torch.long), torch.zeros(3, 8, dtype=torch.long))
    >>> tuple(logits.shape), loss.ndim
    ((3, 8, 50), 0)

Every variant the course compares is this one class with a different `GPTConfig`: the position
scheme, the norm and where it sits, the feed-forward activation, the head counts, residual
connections on or off, and whether the output layer shares the token embedding's weights. So
an ablation changes one field and keeps everything else, including the random draws of the
parts that stay.

Initialisation follows GPT-2: every weight ~ N(0, 0.02), biases 0, and the two projections
that write into the residual stream (attention's output and the feed-forward's down
projection) scaled by 1/√(2 n_layers), so that the stream's variance at the top does not grow
with depth. With weights that small the first logits are nearly equal, and the loss at
initialisation is close to ln(vocab_size).

With a `llmscratch.kv_cache.KVCache`, ``forward(idx, cache=cache)`` treats `idx` as the tokens
that follow the cached ones: their positions start at ``cache.length``, every layer attends to
the cached keys and values too, and the cache grows by ``idx.shape[1]`` positions. Feeding a
sequence in pieces then gives the logits of feeding it whole (up to rounding).

With ``n_experts > 0`` every block's feed-forward sublayer is a mixture of experts
(`llmscratch.moe`), and in training mode the loss returned with targets includes the routers'
load-balancing loss (see ``_add_router_loss``).

Left out: dropout schedules, generation tricks (Part 4).

References: Radford et al., "Improving Language Understanding by Generative Pre-Training"
(2018) and "Language Models are Unsupervised Multitask Learners" (2019); Press & Wolf, "Using
the Output Embedding to Improve Language Models" (EACL 2017) for weight tying; Karpathy's
nanoGPT (2022).
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import Block, RMSNorm, make_norm
from .checks import check_token_ids, embed_ids
from .config import GPTConfig
from .kv_cache import KVCache
from .positional import sinusoidal_positions
from .runtime import eval_mode

__all__ = ["GPT", "Trace", "active_parameters", "parameter_formula"]


class Trace(NamedTuple):
    """What `GPT.trace` recorded: the residual stream and the attention weights of every layer."""

    hidden: list[torch.Tensor]  # n_layers + 1 tensors (B, T, d_model): the embeddings, then each block's output
    attention: list[torch.Tensor]  # n_layers tensors (B, n_heads, T, T)
    logits: torch.Tensor  # (B, T, vocab_size)


class GPT(nn.Module):
    """A decoder-only transformer language model.

    ``forward(idx, targets=None)`` takes token ids (B, T) and returns ``(logits, loss)``:
    logits (B, T, vocab_size) for the token after each position, and with `targets` (B, T)
    the mean cross-entropy over all positions (targets equal to -100 are ignored), else None.
    ``forward(idx, cache=cache)`` continues the sequence held by a `KVCache` (see the module docstring).
    ``forward(idx, padding_mask=mask)``, `mask` (B, cached + T) True at real tokens, runs a left-padded
    batch: no token attends to a pad, and positions count from each row's first real token.
    ``forward(idx, prefix_length=p)``, `p` an int or (B,) integers, lets every position see the first p tokens
    of its row in both directions: 0 is the causal model, T the bidirectional one (`llmscratch.objectives`).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = c = config
        self.token_embedding = nn.Embedding(c.vocab_size, c.d_model)  # (V, d)
        self.position_embedding = nn.Embedding(c.context_length, c.d_model) if c.position == "learned" else None
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        # Pre-norm leaves the stream unnormalized after the last block; post-norm already ends
        # every block with a norm.
        self.final_norm = make_norm(c.norm if c.norm_placement == "pre" else "none", c.d_model, c.bias)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        if c.tie_weights:
            self.lm_head.weight = self.token_embedding.weight  # one (V, d) matrix, used twice
        # With experts: the last forward's language-model loss and load-balancing loss, detached.
        self.last_lm_loss: torch.Tensor | None = None
        self.last_aux_loss: torch.Tensor | None = None
        self.reset_parameters()

    @property
    def context_length(self) -> int:
        return self.config.context_length

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    def reset_parameters(self) -> None:
        """GPT-2's initialisation (see the module docstring); norms start as the identity."""
        c = self.config
        residual_std = 0.02 / math.sqrt(2 * c.n_layers) if c.scaled_residual_init and c.n_layers else 0.02
        for name, module in self.named_modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                # Every feed-forward's `down`, a dense one's or an expert's, writes into the stream.
                std = residual_std if name.endswith(("attention.proj", ".down")) else 0.02
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.LayerNorm, RMSNorm)):
                nn.init.ones_(module.weight)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    def _check(self, idx: torch.Tensor) -> None:
        check_token_ids(idx)
        T = idx.shape[1]
        if self.position_embedding is not None and T > self.config.context_length:
            raise ValueError(f"sequence of {T} tokens, but the learned position table has only "
                             f"context_length={self.config.context_length} rows; crop the input or use "
                             "a position scheme that extrapolates")

    def embed(self, idx: torch.Tensor, start: int = 0, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Token vectors plus absolute position vectors (if the scheme has them): (B, T, d_model).

        The tokens are at positions ``start`` to ``start + T - 1`` (`start` > 0 after a KV cache),
        or at `positions` (B, T), one row per sequence, when left padding shifts each row differently.
        """
        T = idx.shape[1]
        x = embed_ids(self.token_embedding, idx)  # (B, T, d); ids outside the vocabulary raise
        if positions is not None and self.config.position in ("learned", "sinusoidal"):
            return self.drop(x + self._row_positions(positions).to(x.dtype))  # (B, T, d)
        if self.position_embedding is not None:
            positions = torch.arange(start, start + T, device=idx.device)  # (T,)
            x = x + self.position_embedding(positions)  # (T, d) broadcast over B
        elif self.config.position == "sinusoidal":
            # Scaled so that its entries have the RMS (0.02) of a freshly initialised learned
            # table: the two schemes then differ only in being fixed or trained. Unscaled, the
            # sinusoids (RMS 1/sqrt(2)) would drown the 0.02-sized token vectors at the start.
            table = sinusoidal_positions(start + T, self.config.d_model)[start:] * (0.02 * math.sqrt(2))  # (T, d)
            x = x + table.to(x.device, x.dtype)
        return self.drop(x)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, *, cache: KVCache | None = None,
        padding_mask: torch.Tensor | None = None, prefix_length: int | torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._check(idx)
        if prefix_length is not None:
            prefix_length = self._prefix_lengths(prefix_length, idx, cache)  # (B,)
        if cache is not None:
            if targets is not None:
                raise ValueError("a KV cache is for generation, one step after another; training takes "
                                 "targets without a cache")
            if not isinstance(cache, KVCache):
                raise TypeError(f"cache must be a KVCache, got {type(cache).__name__}")
            cache.check(self.config, idx.shape[0], idx.shape[1])
        start = 0 if cache is None else cache.length
        positions = None if padding_mask is None else self._padded_positions(padding_mask, start, idx)  # (B, T)
        x = self.embed(idx, start, positions)  # (B, T, d)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache=cache, layer=layer, padding_mask=padding_mask, prefix_length=prefix_length)  # (B, T, d)
        if cache is not None:
            cache.length += idx.shape[1]  # every layer has stored these positions
        logits = self.lm_head(self.final_norm(x))  # (B, T, V)
        if targets is None:
            return logits, None
        if targets.shape != idx.shape:
            raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}")
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())  # mean over B*T positions
        if self.config.n_experts:
            loss = self._add_router_loss(loss)
        return logits, loss

    def _add_router_loss(self, lm_loss: torch.Tensor) -> torch.Tensor:
        """In training mode, the language-model loss plus router_aux_weight times the mean load-balancing loss.

        The mean is over the layers that have experts, so the weight means the same at any depth.
        In evaluation mode the loss stays the language model's alone: what the book compares.
        Both parts are kept, detached, in `last_lm_loss` and `last_aux_loss`.
        """
        if not self.blocks:  # n_layers = 0: no router, nothing to balance
            return lm_loss
        aux = torch.stack([block.feed_forward.aux_loss for block in self.blocks]).mean()
        self.last_lm_loss, self.last_aux_loss = lm_loss.detach(), aux.detach()
        if self.training and self.config.router_aux_weight:
            return lm_loss + self.config.router_aux_weight * aux
        return lm_loss

    @staticmethod
    def _prefix_lengths(prefix_length: int | torch.Tensor, idx: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        """`prefix_length` as a (B,) integer tensor, checked: each between 0 and T."""
        B, T = idx.shape
        if cache is not None and cache.length > 0:
            raise ValueError("prefix_length with a non-empty KV cache: the cached keys were computed without "
                             "seeing these tokens; pass the whole prefix in the first call")
        if isinstance(prefix_length, bool) or not isinstance(prefix_length, (int, torch.Tensor)):
            raise TypeError(f"prefix_length must be an int or a (batch,) integer tensor, got {prefix_length!r}")
        lengths = torch.as_tensor(prefix_length, device=idx.device)
        if lengths.is_floating_point() or lengths.dtype == torch.bool:
            raise TypeError(f"prefix_length must hold integers, got dtype {lengths.dtype}")
        lengths = lengths.expand(B) if lengths.ndim == 0 else lengths
        if lengths.shape != (B,):
            raise ValueError(f"prefix_length must be one int or one per sequence, shape ({B},); "
                             f"got shape {tuple(lengths.shape)}")
        if bool((lengths < 0).any()) or bool((lengths > T).any()):
            raise ValueError(f"prefix_length must be between 0 and the sequence length {T}, got {lengths.tolist()}")
        return lengths.long()

    # --- Left padding (llmscratch.serving): a batch of prompts of different lengths. ---
    def _padded_positions(self, padding_mask: torch.Tensor, start: int, idx: torch.Tensor) -> torch.Tensor:
        """Each token's position counted from its row's first real token: (B, T); pads get 0.

        `padding_mask` (B, start + T) is True at real tokens, over the cached positions and `idx`.
        """
        B, T = idx.shape
        if not isinstance(padding_mask, torch.Tensor) or padding_mask.dtype != torch.bool:
            raise TypeError("padding_mask must be a boolean tensor, True at real tokens")
        if padding_mask.shape != (B, start + T):
            raise ValueError(f"padding_mask must have shape (batch, cached + new) = {(B, start + T)}, "
                             f"got {tuple(padding_mask.shape)}")
        counted = padding_mask.long().cumsum(dim=-1) - 1  # (B, S): real tokens before, minus one
        return counted.clamp(min=0)[:, start:]  # (B, T)

    def _row_positions(self, positions: torch.Tensor) -> torch.Tensor:
        """Learned or sinusoidal position vectors at per-row `positions` (B, T): (B, T, d_model)."""
        if self.position_embedding is not None:
            return self.position_embedding(positions)  # (B, T, d)
        length = int(positions.max()) + 1
        table = sinusoidal_positions(length, self.config.d_model) * (0.02 * math.sqrt(2))  # (length, d), as embed
        return table.to(positions.device)[positions]  # (B, T, d)

    @torch.no_grad()
    def trace(self, idx: torch.Tensor) -> Trace:
        """Run `idx` through the model in evaluation mode, recording every layer (for pictures)."""
        self._check(idx)
        with eval_mode(self):
            x = self.embed(idx)
            hidden, attention = [x], []
            for block in self.blocks:
                x, weights = block(x, return_weights=True)
                hidden.append(x)
                attention.append(weights)
            logits = self.lm_head(self.final_norm(x))
        return Trace(hidden, attention, logits)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Distinct parameters (a tied matrix counts once); optionally without the embedding tables."""
        n = sum(p.numel() for p in self.parameters())  # parameters() yields a shared tensor once
        if exclude_embeddings:
            n -= self.token_embedding.weight.numel()
            if self.position_embedding is not None:
                n -= self.position_embedding.weight.numel()
        return n

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items())


def parameter_formula(config: GPTConfig) -> dict[str, int]:
    """The parameter count of ``GPT(config)`` from its sizes alone, by component.

    With d = d_model, V = vocab_size, L = n_layers, hs = head_dim, H and Hkv the head counts,
    F = the feed-forward width, and b = 1 if biases are on:

    - token embedding V·d; learned positions context_length·d;
    - attention per layer: d·(H + 2 Hkv)·hs + b·(H + 2 Hkv)·hs for the query/key/value
      projection, d·d + b·d for the output projection;
    - feed-forward per layer: 2·d·F + b·(F + d), plus d·F + b·F for SwiGLU's gate (0 if F = 0);
      with E = n_experts > 0, E such networks and the router's d·E;
    - a norm has d gains (+ b·d shifts for LayerNorm): one per sublayer, plus a final one in
      pre-norm models;
    - the output layer V·d, or 0 when tied to the token embedding.

    >>> parameter_formula(GPTConfig(vocab_size=10, context_length=4, d_model=8, n_layers=1, n_heads=2))["total"]
    1000
    """
    c = config
    d, V, L, hs, H, Hkv, F_ = c.d_model, c.vocab_size, c.n_layers, c.head_dim, c.n_heads, c.kv_heads, c.ff_dim
    b = int(c.bias)
    per_norm = {"layernorm": d + b * d, "rmsnorm": d, "none": 0}[c.norm]
    attention = d * (H + 2 * Hkv) * hs + b * (H + 2 * Hkv) * hs + d * d + b * d
    feed_forward = 2 * d * F_ + b * (F_ + d) + (d * F_ + b * F_ if c.activation == "swiglu" else 0) if F_ else 0
    if c.n_experts:
        feed_forward = c.n_experts * feed_forward + d * c.n_experts  # E experts and the router
    counts = {
        "token_embedding": V * d,
        "position_embedding": c.context_length * d if c.position == "learned" else 0,
        "attention": L * attention,
        "feed_forward": L * feed_forward,
        "norms": ((2 if F_ else 1) * L + (1 if c.norm_placement == "pre" else 0)) * per_norm,
        "lm_head": 0 if c.tie_weights else V * d,
    }
    counts["total"] = sum(counts.values())
    return counts


def active_parameters(config: GPTConfig) -> int:
    """Parameters one token's forward pass uses: all of them, less the experts it was not routed to.

    With E experts and top-k routing, every layer leaves E - k experts idle for a given token.

    >>> dense = GPTConfig(vocab_size=10, context_length=4, d_model=8, n_layers=1, n_heads=2)
    >>> moe = GPTConfig(vocab_size=10, context_length=4, d_model=8, n_layers=1, n_heads=2, n_experts=4,
    ...                 experts_per_token=1)
    >>> active_parameters(moe) - active_parameters(dense)  # only the router's 8 x 4 weights
    32
    """
    total = parameter_formula(config)["total"]
    if not config.n_experts:
        return total
    dense = replace(config, n_experts=0)
    per_expert = parameter_formula(dense)["feed_forward"] // config.n_layers if config.n_layers else 0
    return total - config.n_layers * (config.n_experts - config.experts_per_token) * per_expert
