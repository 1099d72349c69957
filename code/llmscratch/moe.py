"""Mixture of experts: many feed-forward networks per block, and a router that sends each token to a few.

A dense block runs every token through one feed-forward network. A mixture-of-experts (MoE)
block holds E of them (the *experts*) and a *router*, one linear map from d_model to E scores.
Each token goes to the k experts with the highest router probability, and the block's output
is the gate-weighted sum of those k experts' outputs. Parameters grow with E; the arithmetic
per token grows only with k, which is the whole point: more weights at the same compute.

Routing, for N tokens and E experts (`route`):

1. ``probs = softmax(router(x))``, (N, E);
2. the k largest probabilities of each token and their experts, (N, k);
3. the gates: with k > 1 those k probabilities renormalised to sum to 1 (Mixtral, Jiang et
   al. 2024; GShard's top-2, Lepikhin et al. 2021); with k = 1 the probability itself (Switch
   Transformer, Fedus et al. 2022), because a renormalised single gate is always 1 and the
   router would then get no gradient from the language-model loss.

    >>> probs = torch.tensor([[0.5, 0.3, 0.2]])
    >>> r = route(probs.log(), k=2)
    >>> r.experts.tolist(), [round(g, 3) for g in r.gates[0].tolist()]  # 0.5 / 0.8 and 0.3 / 0.8
    ([[0, 1]], [0.625, 0.375])

**Capacity.** In a real system every expert sits on its own device with a buffer of fixed
size, so an expert takes at most ``capacity = int(capacity_factor · N · k / E)`` tokens of a
batch (`expert_capacity`). Assignments beyond that are dropped: that expert's term is left out
of the token's sum, and a token all of whose experts are full skips the sublayer (the residual
connection carries it through). First choices of all tokens queue before any second choice,
and within a rank tokens queue in order (GShard). Capacity applies in training mode only: at
evaluation every token reaches its experts, so a token's prediction never depends on the
other sequences of its batch (Switch uses a larger capacity at evaluation for the same reason).

**Load balancing.** Left alone, a router collapses: the experts chosen early get the
gradient, get better, get chosen more. Switch's auxiliary loss is ``E · Σ_e f_e · P_e``, with
``f_e`` the fraction of the N·k assignments that went to expert e (counted before capacity,
not differentiable) and ``P_e`` the mean router probability of expert e (differentiable). It
equals 1 when both are uniform and E when one expert takes everything; its gradient lowers
the probability of the busy experts. `GPT.forward` adds ``router_aux_weight`` times its mean
over layers to the training loss (`load_balancing_loss`).

Left out: expert parallelism across devices (the all-to-all exchange capacity exists for),
the router z-loss (ST-MoE), noisy top-k gating (Shazeer et al. 2017), shared experts
(DeepSeekMoE), expert-choice routing, and a batched expert kernel (the loop over experts is
the clear version, not the fast one).

References: Shazeer et al., "Outrageously Large Neural Networks: The Sparsely-Gated
Mixture-of-Experts Layer" (ICLR 2017); Lepikhin et al., "GShard" (ICLR 2021); Fedus, Zoph &
Shazeer, "Switch Transformers" (JMLR 2022); Jiang et al., "Mixtral of Experts" (2024).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .runtime import eval_mode

__all__ = ["MoEFeedForward", "Routing", "capacity_mask", "collect_routing", "expert_capacity", "expert_counts",
           "load_balancing_loss", "route", "routing_entropy", "routing_summary"]


class Routing(NamedTuple):
    """Where the router sent N tokens: each token's k experts (best first), their gates, and what survived."""

    experts: torch.Tensor  # (N, k) long: the chosen experts, highest probability first
    gates: torch.Tensor  # (N, k): the weight of each chosen expert's output
    probs: torch.Tensor  # (N, E): the router's softmax over all experts
    kept: torch.Tensor  # (N, k) bool: False where the expert was full and dropped the token


def expert_capacity(n_tokens: int, n_experts: int, k: int, capacity_factor: float) -> int:
    """Most tokens one expert takes from a batch: ``int(capacity_factor · n_tokens · k / n_experts)``, at least 1.

    >>> expert_capacity(n_tokens=4, n_experts=2, k=1, capacity_factor=1.0)  # a fair share each: 2
    2
    >>> expert_capacity(n_tokens=64, n_experts=4, k=2, capacity_factor=1.25)
    40
    """
    if capacity_factor <= 0:
        raise ValueError(f"capacity_factor must be positive, got {capacity_factor!r}")
    return max(1, int(capacity_factor * n_tokens * k / n_experts))


def capacity_mask(experts: torch.Tensor, n_experts: int, capacity: int | None) -> torch.Tensor:
    """Which assignments (N, k) an expert of `capacity` slots accepts; all of them when `capacity` is None.

    Every first choice queues before any second choice; within a rank, tokens queue in order.

    >>> capacity_mask(torch.tensor([[0], [0], [0], [1]]), n_experts=2, capacity=2).flatten().tolist()
    [True, True, False, True]
    """
    if capacity is None:
        return torch.ones_like(experts, dtype=torch.bool)
    by_rank = experts.t().reshape(-1)  # (k * N,): all first choices, then all second choices, ...
    queue = F.one_hot(by_rank, n_experts).cumsum(0)  # (k * N, E): how many took each expert so far
    place = queue.gather(1, by_rank[:, None]).squeeze(1)  # (k * N,): this assignment's place, from 1
    return (place <= capacity).reshape(experts.shape[1], experts.shape[0]).t()  # (N, k)


def route(logits: torch.Tensor, k: int, capacity: int | None = None) -> Routing:
    """Top-k routing of N tokens from their router scores `logits` (N, E); see the module docstring.

    Gates are renormalised over the k choices when k > 1 and are the plain probability when k = 1.
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, E), got {tuple(logits.shape)}")
    n_experts = logits.shape[1]
    if not 1 <= k <= n_experts:
        raise ValueError(f"k must be between 1 and the number of experts {n_experts}, got {k}")
    probs = logits.softmax(dim=-1)  # (N, E)
    top, experts = probs.topk(k, dim=-1)  # (N, k) each, best first
    gates = top / top.sum(dim=-1, keepdim=True) if k > 1 else top  # (N, k)
    return Routing(experts, gates, probs, capacity_mask(experts, n_experts, capacity))


def load_balancing_loss(probs: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """Switch's auxiliary loss ``E · Σ_e f_e · P_e`` for router `probs` (N, E) and choices `experts` (N, k).

    `f_e`: the share of the N·k choices that went to expert e; `P_e`: the mean probability of e.
    Four tokens, two experts, top-1, with probabilities (0.9, 0.1), (0.8, 0.2), (0.6, 0.4),
    (0.3, 0.7): f = (3/4, 1/4), P = (0.65, 0.35), loss = 2 · (0.75 · 0.65 + 0.25 · 0.35) = 1.15.

    >>> p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    >>> round(load_balancing_loss(p, p.argmax(-1, keepdim=True)).item(), 4)
    1.15
    """
    n_experts = probs.shape[1]
    share = F.one_hot(experts, n_experts).flatten(0, 1).float().mean(0)  # (E,): f, sums to 1
    return n_experts * (share.to(probs.dtype) * probs.mean(0)).sum()


def expert_counts(experts: torch.Tensor, n_experts: int, kept: torch.Tensor | None = None) -> torch.Tensor:
    """How many assignments each expert received (E,), only the kept ones if `kept` is given.

    >>> expert_counts(torch.tensor([[0, 2], [0, 1]]), n_experts=4).tolist()
    [2, 1, 1, 0]
    """
    chosen = experts if kept is None else experts[kept]
    return torch.bincount(chosen.flatten(), minlength=n_experts)


def routing_entropy(counts: torch.Tensor) -> float:
    """Entropy in bits of the load (counts per expert): log2(E) when balanced, 0 when one expert takes all.

    >>> routing_entropy(torch.tensor([5, 5, 5, 5])), routing_entropy(torch.tensor([8, 0, 0, 0]))
    (2.0, 0.0)
    """
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return float(-(p * p.log2()).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


class MoEFeedForward(nn.Module):
    """A router over `experts` (any modules mapping (n, d_model) to (n, d_model)); keeps the shape (B, T, d_model).

    The block builds the experts (`llmscratch.blocks.FeedForward`s of the model's activation)
    and hands them in. After each call, `aux_loss` holds the load-balancing loss of that batch
    (with its graph, for training) and `last_routing` the `Routing`, detached (for pictures).
    """

    def __init__(self, d_model: int, experts: list[nn.Module], k: int, capacity_factor: float | None = None) -> None:
        super().__init__()
        n_experts = len(experts)
        if n_experts < 2 or not 1 <= k <= n_experts:
            raise ValueError(f"need n_experts >= 2 and 1 <= k <= n_experts, got n_experts={n_experts}, k={k}")
        self.n_experts, self.k, self.capacity_factor = n_experts, k, capacity_factor
        # No bias: a bias would let the router prefer an expert regardless of the token.
        self.router = nn.Linear(d_model, n_experts, bias=False)
        self.experts = nn.ModuleList(experts)
        self.aux_loss: torch.Tensor | None = None
        self.last_routing: Routing | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        tokens = x.reshape(B * T, d)  # (N, d): routing ignores which sequence a token is in
        capacity = None
        if self.capacity_factor is not None and self.training:
            capacity = expert_capacity(B * T, self.n_experts, self.k, self.capacity_factor)
        r = route(self.router(tokens), self.k, capacity)  # (N, k) experts and gates
        self.aux_loss = load_balancing_loss(r.probs, r.experts)
        self.last_routing = Routing(*(t.detach() for t in r))
        out = torch.zeros_like(tokens)  # (N, d): a token every expert dropped adds nothing
        for e, expert in enumerate(self.experts):
            token, slot = ((r.experts == e) & r.kept).nonzero(as_tuple=True)  # (n_e,) each
            if token.numel():
                y = r.gates[token, slot, None] * expert(tokens[token])  # (n_e, d)
                out.index_add_(0, token, y.to(out.dtype))
        return out.reshape(B, T, d)  # (B, T, d)

    def extra_repr(self) -> str:
        return f"n_experts={self.n_experts}, k={self.k}, capacity_factor={self.capacity_factor}"



@torch.no_grad()
def collect_routing(model: nn.Module, idx: torch.Tensor) -> list[Routing]:
    """Run token ids `idx` (B, T) through a GPT with experts, in evaluation mode: each layer's `Routing`.

    Token n of a layer's routing is ``idx.flatten()[n]``.
    """
    layers = [block.feed_forward for block in model.blocks]
    if not layers or not all(isinstance(ff, MoEFeedForward) for ff in layers):
        raise ValueError("collect_routing needs a model whose every block has experts (config.n_experts > 0)")
    with eval_mode(model):
        model(idx)
    return [ff.last_routing for ff in layers]


def routing_summary(model: nn.Module, stream: torch.Tensor, n_windows: int = 128) -> dict[str, float]:
    """How evenly a trained model's routers spread the tokens of `stream` (1-D ids), in its first windows.

    Returns the routing entropy in bits (`routing_entropy` of each layer's load), its mean and
    its minimum over layers, and the largest share of the assignments any one expert took.
    """
    T = model.config.context_length
    n = min(n_windows, len(stream) // T)
    if n < 1:
        raise ValueError(f"stream of {len(stream)} tokens is shorter than one window of {T}")
    routings = collect_routing(model, stream[: n * T].view(n, T))  # (n, T) windows
    loads = [expert_counts(r.experts, model.config.n_experts) for r in routings]
    entropies = [routing_entropy(load) for load in loads]
    return {"entropy_bits_mean": sum(entropies) / len(entropies), "entropy_bits_min": min(entropies),
            "busiest_share": max(float(load.max() / load.sum()) for load in loads)}
