"""Gradient diagnostics: how large is the gradient of each parameter, and of each layer?

After ``loss.backward()`` every parameter holds a gradient. Its size says how strongly that
parameter is being pushed: when the gradients of the lowest blocks of a deep stack are
thousands of times smaller than those of the top, the lowest blocks barely learn (a vanishing
gradient), and when they are much larger the optimizer must take small steps everywhere to
stay stable. Residual connections and where the norms sit decide which of these a transformer
gets; the transformer-block chapter measures it with `layer_gradient_norms` and
`position_cosine`, and `gradient_norms` gives the same numbers parameter by parameter.

    >>> import torch
    >>> from llmscratch.model import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layers=3, n_heads=2))
    >>> idx = torch.randint(20, (2, 8))
    >>> _, loss = model(idx, idx)
    >>> loss.backward()
    >>> len(layer_gradient_norms(model))  # one number per block
    3
    >>> "blocks.0.attention.qkv.weight" in gradient_norms(model)
    True

The norm used throughout is the Euclidean (Frobenius) norm: for a layer, the square root of
the sum of the squares of *all* its parameters' gradient entries, as if they were one vector.
That is the quantity gradient clipping (`torch.nn.utils.clip_grad_norm_`) looks at.

A third function looks at the forward pass instead: `position_cosine` measures how alike the
vectors of different positions are. When it reaches 1, every position carries the same vector,
the model's output can no longer depend on the input, and the gradient has nothing to work with
(the "rank collapse" of deep attention stacks without residual connections, Dong et al. 2021).

During training, `UpdateRatios` watches the steps themselves: after each update, how far did
each weight matrix move, relative to its size? A ratio ‖ΔW‖ / ‖W‖ near 10⁻³ per step is the
usual sign of a healthy learning rate (Karpathy's rule of thumb); 10⁻¹ means each update
rewrites a tenth of the matrix, and 10⁻⁵ that it barely moves. Pass it to
`llmscratch.training.train` as ``on_update``.

Left out: gradients of activations (hooks) and curvature; and the norms are of one backward
pass, so a caller who wants a stable estimate averages over batches.

References: Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
networks" (AISTATS 2010); Dong, Cordonnier & Loukas, "Attention is Not All You Need: Pure
Attention Loses Rank Doubly Exponentially with Depth" (ICML 2021); Xiong et al., "On Layer
Normalization in the Transformer Architecture" (ICML 2020), which plots these per-layer norms
for pre-norm and post-norm transformers.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["UpdateRatios", "gradient_norms", "layer_gradient_norms", "position_cosine"]


def gradient_norms(model: nn.Module) -> dict[str, float]:
    """The Euclidean norm of the gradient of every parameter, by name, after a backward pass.

    Parameters whose gradient is None (frozen, or not used by the loss) are left out; a weight
    shared by two modules (a tied embedding) appears once, under its first name.
    Raises `ValueError` if no parameter has a gradient: call ``loss.backward()`` first.

    >>> import torch
    >>> layer = torch.nn.Linear(2, 1)
    >>> layer(torch.tensor([[3.0, 4.0]])).sum().backward()  # d(w·x + b)/dw = x, d/db = 1
    >>> gradient_norms(layer)
    {'weight': 5.0, 'bias': 1.0}
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    norms = {name: float(p.grad.detach().norm()) for name, p in model.named_parameters() if p.grad is not None}
    if not norms:
        raise ValueError("no parameter has a gradient; call loss.backward() before measuring")
    return norms


def layer_gradient_norms(model: nn.Module, layers: str = "blocks") -> list[float]:
    """One gradient norm per layer of ``model.<layers>`` (a `ModuleList`), bottom layer first.

    A layer's norm is ``sqrt(sum of squared gradient entries of all its parameters)``; a layer
    none of whose parameters has a gradient counts 0. Raises `ValueError` if `model` has no such
    list of layers, if it is empty, or if no parameter of the model has a gradient.

    >>> import torch
    >>> stack = torch.nn.Module()
    >>> stack.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 1, bias=False) for _ in range(2)])
    >>> stack.blocks[1](torch.tensor([[3.0, 4.0]])).sum().backward()
    >>> layer_gradient_norms(stack)  # block 0 was not used
    [0.0, 5.0]
    """
    stack = getattr(model, layers, None)
    if not isinstance(stack, nn.ModuleList) or len(stack) == 0:
        raise ValueError(f"model.{layers} must be a non-empty torch.nn.ModuleList of layers, "
                         f"got {type(stack).__name__}")
    gradient_norms(model)  # raises if nothing has a gradient
    out = []
    for layer in stack:
        squares = sum(float(p.grad.detach().pow(2).sum()) for p in layer.parameters() if p.grad is not None)
        out.append(math.sqrt(squares))
    return out


def position_cosine(hidden: torch.Tensor) -> float:
    """Mean cosine similarity between the vectors of two different positions of one sequence.

    `hidden` is (B, T, d), e.g. one entry of ``GPT.trace(idx).hidden``; the mean runs over the
    B sequences and the T (T - 1) ordered pairs of distinct positions. Near 0 for unrelated
    vectors; 1 when every position holds the same direction (the stream has collapsed).

    >>> same = torch.ones(1, 3, 4)  # three positions, one vector
    >>> round(position_cosine(same), 6)
    1.0
    >>> round(position_cosine(torch.eye(3).unsqueeze(0)), 6)  # orthogonal positions
    0.0
    """
    if not isinstance(hidden, torch.Tensor) or hidden.ndim != 3 or hidden.shape[1] < 2:
        shape = tuple(hidden.shape) if isinstance(hidden, torch.Tensor) else type(hidden).__name__
        raise ValueError(f"hidden must be a (batch, positions >= 2, features) tensor, got {shape}")
    B, T, _ = hidden.shape
    unit = F.normalize(hidden.detach().float(), dim=-1)  # (B, T, d)
    cos = unit @ unit.transpose(1, 2)  # (B, T, T)
    off_diagonal = ~torch.eye(T, dtype=torch.bool, device=hidden.device)  # (T, T)
    return float(cos[:, off_diagonal].mean())


class UpdateRatios:
    """A `train` callback that records ‖W_after − W_before‖ / ‖W_before‖ of every weight matrix.

    ``ratios[name]`` is a list with one ratio per update (every `every` updates: the ratio over
    that many). Only matrices are watched (``ndim >= 2``): they hold nearly all the weights and
    are what the learning rate moves.
    """

    def __init__(self, model: nn.Module, every: int = 1) -> None:
        if not isinstance(every, int) or every <= 0:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.every = every
        self.steps: list[int] = []
        self.ratios: dict[str, list[float]] = {}
        self._before = self._snapshot(model)

    @staticmethod
    def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in model.named_parameters() if p.ndim >= 2}

    def __call__(self, step: int, model: nn.Module) -> None:
        if step % self.every:
            return
        now = self._snapshot(model)
        for name, before in self._before.items():
            ratio = float((now[name] - before).norm() / before.norm().clamp_min(1e-12))
            self.ratios.setdefault(name, []).append(ratio)
        self.steps.append(step)
        self._before = now

