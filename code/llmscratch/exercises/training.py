"""Checkers for Part 3 (training, decoding, scaling, evaluation, scaling out)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..sampling import top_p_mask
from ..scaling import ChinchillaFit, compute_optimal
from ..training import TrainConfig, learning_rate_at
from .core import ExerciseError, passed

__all__ = ["check_clip_by_global_norm", "check_compute_optimal", "check_schedule", "check_sliding_nlls",
           "check_top_p", "check_zero_memory"]


def check_schedule(fn: Callable[[int, int, float, int, float], float]) -> None:
    """Check ``fn(step, steps, peak, warmup, min_ratio)`` against `learning_rate_at`.

    The schedule: linear warm-up over `warmup` steps to `peak` (step 0 gets peak / warmup),
    then half a cosine from `peak` down to ``min_ratio * peak`` at step ``steps - 1``.
    """
    cases = [(100, 1.0, 10, 0.1), (1000, 3e-3, 100, 0.05), (50, 0.5, 0, 0.0), (20, 2.0, 5, 1.0), (2, 1.0, 1, 0.0)]
    n = 0
    for steps, peak, warmup, min_ratio in cases:
        cfg = TrainConfig(steps=steps, learning_rate=peak, warmup_steps=warmup, min_lr_ratio=min_ratio)
        for step in sorted({0, warmup // 2, max(0, warmup - 1), warmup, (steps + warmup) // 2, steps - 1}):
            if step >= steps:
                continue
            want, got = learning_rate_at(step, cfg), fn(step, steps, peak, warmup, min_ratio)
            n += 1
            if not isinstance(got, (int, float)) or not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12):
                phase = "warm-up: the rate should climb from near 0" if step < warmup else "cosine decay"
                raise ExerciseError(f"step={step} of steps={steps} (warmup={warmup}, peak={peak}, "
                                    f"min_ratio={min_ratio}): expected {want:.6g}, got {got!r} ({phase})")
    passed("check_schedule", n)


def check_clip_by_global_norm(fn: Callable[[list[torch.Tensor], float], list[torch.Tensor]]) -> None:
    """Check ``fn(grads, max_norm) -> clipped grads`` against `torch.nn.utils.clip_grad_norm_`.

    All gradients are measured as one vector; if its norm exceeds `max_norm`, every gradient is
    scaled by the same factor so that the norm becomes `max_norm`. `fn` must not change `grads`.
    """
    g = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (5,), (2, 2, 2)]
    n = 0
    for scale, max_norm in [(10.0, 1.0), (0.01, 1.0), (1.0, 0.5), (100.0, 3.0)]:
        grads = [scale * torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
        originals = [t.clone() for t in grads]
        params = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
        for p, t in zip(params, grads):
            p.grad = t.clone()
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        got = fn(grads, max_norm)
        n += 1
        total = float(torch.cat([t.flatten() for t in originals]).norm())
        where = f"gradients of total norm {total:.4g}, max_norm={max_norm}"
        if not all(torch.equal(a, b) for a, b in zip(grads, originals)):
            raise ExerciseError(f"{where}: your function changed its input; return new tensors instead")
        if not isinstance(got, (list, tuple)) or len(got) != len(params):
            raise ExerciseError(f"{where}: expected a list of {len(params)} tensors, got {type(got).__name__}")
        for i, (want, mine) in enumerate(zip(params, got)):
            if not isinstance(mine, torch.Tensor) or mine.shape != want.grad.shape:
                raise ExerciseError(f"{where}: tensor {i} should have shape {tuple(want.grad.shape)}")
            if not torch.allclose(mine, want.grad, rtol=1e-6, atol=1e-9):
                ratio = float(mine.norm() / want.grad.norm().clamp_min(1e-30))
                raise ExerciseError(f"{where}: tensor {i} is {ratio:.4g} times the size it should be "
                                    "(is the norm taken over all gradients together?)")
    passed("check_clip_by_global_norm", n)


def check_top_p(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """Check ``fn(probs, p) -> keep`` (a boolean mask) against `llmscratch.sampling.top_p_mask`.

    Keep the smallest set of most likely tokens whose total probability reaches `p`; the token
    that crosses `p` is kept, and so is the most likely token, whatever `p`.
    """
    g = torch.Generator().manual_seed(0)
    cases = [(torch.tensor([0.5, 0.3, 0.15, 0.05]), 0.8), (torch.tensor([0.1, 0.6, 0.3]), 0.65),
             (torch.tensor([0.25, 0.25, 0.25, 0.25]), 0.3), (torch.tensor([0.7, 0.2, 0.1]), 0.01),
             (torch.tensor([0.2, 0.5, 0.3]), 1.0)]
    cases += [(torch.softmax(3 * torch.randn(6, 50, generator=g), dim=-1), p) for p in (0.5, 0.9)]
    for probs, p in cases:
        want, got = top_p_mask(probs, p), fn(probs.clone(), p)
        where = f"probs {_short(probs)}, p={p}"
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            raise ExerciseError(f"{where}: expected a mask of shape {tuple(want.shape)}, got "
                                f"{tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__}")
        if got.dtype != torch.bool:
            raise ExerciseError(f"{where}: expected a boolean mask (True = keep), got dtype {got.dtype}")
        if not torch.equal(got, want):
            kept, wanted = int(got.sum()), int(want.sum())
            hint = ("is the token that crosses p kept?" if kept < wanted else
                    "stop at the smallest set that reaches p") if kept != wanted else "keep the *most likely* tokens"
            raise ExerciseError(f"{where}: you keep {kept} token(s), the rule keeps {wanted} ({hint})")
    passed("check_top_p", len(cases))


def check_compute_optimal(fn: Callable[[float, float, float, float, float, float], float]) -> None:
    """Check ``fn(E, A, B, alpha, beta, flops) -> n_opt`` against `llmscratch.scaling.compute_optimal`.

    n_opt minimises ``E + A / N**alpha + B / D**beta`` on the line ``6 N D = flops``.
    """
    cases = [(1.7, 406.4, 410.7, 0.34, 0.28, 1e21), (2.0, 30.0, 60.0, 0.3, 0.3, 6e12),
             (1.0, 5.0, 500.0, 0.5, 0.2, 1e15), (3.0, 100.0, 1.0, 0.1, 0.6, 1e17)]
    for E, A, B, alpha, beta, flops in cases:
        want = compute_optimal(ChinchillaFit(E=E, A=A, B=B, alpha=alpha, beta=beta), flops)[0]
        got = fn(E, A, B, alpha, beta, flops)
        if not isinstance(got, (int, float)) or not math.isclose(got, want, rel_tol=1e-4):
            raise ExerciseError(f"E={E}, A={A}, B={B}, alpha={alpha}, beta={beta}, C={flops:.0e}: expected "
                                f"N_opt = {want:.4g}, got {got!r} (set dL/dN = 0 with D = C / (6 N))")
    passed("check_compute_optimal", len(cases))


def check_sliding_nlls(fn: Callable[..., torch.Tensor]) -> None:
    """Check ``fn(model, ids, context, stride) -> nlls`` against `llmscratch.evaluation.sliding_nlls`.

    The losses (nats) of every token of `ids`, each predicted by a window of the model's context
    length that ends at it, windows advancing `stride` tokens and scoring their last `stride`.
    """
    from ..config import GPTConfig
    from ..evaluation import sliding_nlls
    from ..model import GPT

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=13, context_length=8, d_model=16, n_layers=1, n_heads=2)).eval()
    g = torch.Generator().manual_seed(0)
    cases = [(n, stride) for n in (16, 23) for stride in (1, 3, 8)]
    for n, stride in cases:
        ids, context = torch.randint(0, 13, (n,), generator=g), torch.randint(0, 13, (12,), generator=g)
        want = sliding_nlls(model, ids, context, stride=stride)
        got = fn(model, ids, context, stride)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            raise ExerciseError(f"{n} tokens, stride {stride}: expected a tensor of shape {tuple(want.shape)} "
                                f"(one loss per token), got {getattr(got, 'shape', type(got).__name__)}")
        if not torch.allclose(got.float(), want, atol=1e-4):
            j = int((got.float() - want).abs().argmax())
            raise ExerciseError(f"{n} tokens, stride {stride}: token {j} should cost {want[j]:.4f} nats, got "
                                f"{float(got[j]):.4f} (is it predicted by the window that ends at it?)")
    passed("check_sliding_nlls", len(cases))


# What each ZeRO stage shards over the ranks: (parameters, gradients, AdamW's two moments).
_ZERO_SHARDS = {0: (False, False, False), 1: (False, False, True), 2: (False, True, True), 3: (True, True, True)}


def check_zero_memory(fn: Callable[[int, int, int, int], float]) -> None:
    """Check ``fn(n_params, world_size, stage, bytes_per_value) -> bytes per rank`` of the model state.

    The state is the parameters, their gradients and AdamW's two moments, `bytes_per_value` bytes
    each (step counters left out). Stage 0 is plain data parallelism, every rank holding all of it;
    ZeRO stage 1 shards the moments over the `world_size` ranks, stage 2 the gradients too, and
    stage 3 the parameters too (Rajbhandari et al., 2020). A sharded part costs 1/world_size of
    its size on each rank, exactly (not rounded to whole values).
    """
    n = 0
    for n_params, world_size, bytes_per_value in [(1000, 4, 4), (124_439_808, 8, 4), (4_935_680, 8, 2),
                                                  (999, 4, 4), (10, 1, 4)]:
        for stage, (params, grads, moments) in _ZERO_SHARDS.items():
            parts = [(1, params), (1, grads), (2, moments)]  # values per parameter, sharded?
            want = n_params * bytes_per_value * sum(k / world_size if sharded else k for k, sharded in parts)
            got = fn(n_params, world_size, stage, bytes_per_value)
            n += 1
            if not isinstance(got, (int, float)) or not math.isclose(got, want, rel_tol=1e-9):
                sharded = [name for name, s in zip(("parameters", "gradients", "moments"), (params, grads, moments))
                           if s] or ["nothing"]
                raise ExerciseError(f"n_params={n_params:,}, world_size={world_size}, stage={stage}, "
                                    f"bytes_per_value={bytes_per_value}: expected {want:,.1f} bytes, got {got!r} "
                                    f"(stage {stage} shards {', '.join(sharded)}; AdamW keeps 2 moments)")
    passed("check_zero_memory", n)


def _short(probs: torch.Tensor) -> str:
    return str([round(v, 3) for v in probs.tolist()]) if probs.ndim == 1 else f"of shape {tuple(probs.shape)}"
