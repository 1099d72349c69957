"""Scaling laws: how loss falls with model size N and tokens seen D, and what a compute budget should buy.

    runs = run_sweep()                                     # SWEEP_SIZES x SWEEP_BUDGETS, 40-50 min
    fit = fit_chinchilla([r["non_embedding_parameters"] for r in runs], [r["tokens"] for r in runs],
                         [r["val_loss"] for r in runs])    # L(N, D) = E + A / N**alpha + B / D**beta
    n_opt, d_opt = compute_optimal(fit, 1e15)              # the best split of 1e15 FLOPs, C = 6 N D

Kaplan et al. (2020) found that a language model's loss falls as a power of its size and of its
data; Hoffmann et al. (2022, approach 3) fitted the sum above, whose E is the loss no model
removes (the entropy of text), and found that compute-optimal training grows N and D about
equally. `fit_power_law` fits one variable, ``L(N) = E + A / N**alpha``; `fit_chinchilla` both.

How we fit. For fixed exponents a law is linear in its coefficients (E, A, B), so their least
squares has a closed form, and only the exponents need a search ("variable projection",
Golub & Pereyra 1973). We try every exponent on a grid from 0.02 to 2, then zoom in around the
best point: nothing depends on where a search starts. Coefficients are kept >= 0 (a negative E
is a loss below zero; a negative A, loss that rises with size): on a few noisy points,
unconstrained least squares can trade a smaller exponent for a negative E. Residuals are
relative, ``(L - fit) / L``: to first order the ``log L - log fit`` of Hoffmann et al., who
minimised its Huber loss (delta 1e-3) with L-BFGS from a grid of starts, over ``log A``,
``log B``, ``log E`` (which keeps them positive). With two exponents a full grid is cheap and
exact, so we need no optimiser. Huber is an option (``huber_delta``, solved by iteratively
reweighted least squares), not the default: our points' noise is small and symmetric, and on
such noise squares estimate more precisely than a tiny delta, which weighs misses by size
alone (Huber also takes twenty times as long). Use it when one run is far off the trend.

The sweep (`run_sweep`) trains every size of `SWEEP_SIZES` for every budget of `SWEEP_BUDGETS`
on Tiny Shakespeare in the course's BPE, each budget its own run with a cosine schedule that
ends at its last step (Hoffmann et al. found that a schedule longer than the run overstates its
loss). N is the non-embedding count, Kaplan's choice; Pearce & Song (2024) trace part of the gap
between Kaplan's and Hoffmann's exponents to it, so each record holds the total too.

Left out: error bars on fitted parameters (a bootstrap over runs gives them), Hoffmann's
approaches 1 and 2 (IsoFLOP profiles), laws for learning rate and batch size, and repeated data:
the largest budget sees the training split about four times, about where Muennighoff et al.
(2023) found that repeating starts to cost.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from .comparisons import fit_rung
from .config import GPTConfig
from .evaluation import position_losses
from .experiments import shakespeare_bpe_splits
from .flops import training_flops_per_token
from .progress import progress_bar
from .training import TrainConfig

__all__ = ["SWEEP_BUDGETS", "SWEEP_SIZES", "SWEEP_TRAIN", "ChinchillaFit", "PowerLawFit", "budget_config",
           "compute_optimal", "fit_chinchilla", "fit_power_law", "isoflop_curve", "run_sweep"]

# Exponents tried before zooming in: real fits land between 0.05 and 0.8; 2 leaves a margin.
EXPONENTS = np.linspace(0.02, 2.0, 50)
ArrayLike = Sequence[float] | np.ndarray | torch.Tensor


@dataclass(frozen=True)
class PowerLawFit:
    """``L(N) = E + A / N**alpha``, and the RMS of its misses on the fitted points (nats).

    A fit with A = 0 says the loss does not fall with N; its alpha then means nothing.

    >>> n = [1e4, 1e5, 1e6, 1e7]
    >>> fit = fit_power_law(n, [2 + 30 / x**0.3 for x in n])
    >>> round(fit.E, 4), round(fit.A, 2), round(fit.alpha, 4), round(fit(1e8), 4)
    (2.0, 30.0, 0.3, 2.1194)
    """

    E: float
    A: float
    alpha: float
    rms: float = math.nan  # nan for a law written down rather than fitted

    def predict(self, n: ArrayLike | float) -> np.ndarray | float:
        """The law at `n`: a float for a number, an array for an array."""
        out = self.E + self.A / np.asarray(n, dtype=np.float64) ** self.alpha
        return float(out) if out.ndim == 0 else out

    __call__ = predict


@dataclass(frozen=True)
class ChinchillaFit:
    """``L(N, D) = E + A / N**alpha + B / D**beta``, and the RMS of its misses on the fitted points (nats)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    rms: float = math.nan

    def predict(self, n: ArrayLike | float, d: ArrayLike | float) -> np.ndarray | float:
        n, d = np.asarray(n, dtype=np.float64), np.asarray(d, dtype=np.float64)
        out = self.E + self.A / n**self.alpha + self.B / d**self.beta
        return float(out) if out.ndim == 0 else out

    __call__ = predict


def _positive_vector(name: str, values: object) -> np.ndarray:
    x = np.asarray(values)
    if x.dtype.kind not in "iuf":  # not bools, strings or objects (None)
        raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__} of {x.dtype}")
    x = x.astype(np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {x.shape}")
    if not (np.isfinite(x) & (x > 0)).all():
        raise ValueError(f"{name} must hold finite positive numbers only")
    return x


def _check(named: dict[str, object], parameters: int) -> list[np.ndarray]:
    arrays = [_positive_vector(name, values) for name, values in named.items()]
    lengths = {name: len(x) for name, x in zip(named, arrays)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"the inputs differ in length: {lengths}")
    if len(arrays[0]) < parameters:
        raise ValueError(f"{len(arrays[0])} points cannot determine {parameters} parameters")
    for name, x in list(zip(named, arrays))[:-1]:  # every size variable, not the loss
        if len(np.unique(x)) < 3:  # E, A and alpha along each variable: two values fit any alpha
            raise ValueError(f"{name} must take at least 3 distinct values to fit its exponent")
    return arrays


def _nonnegative_lstsq(Z: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each of G problems, the c >= 0 minimising ``sum_i u_i (1 - (Z c)_i)**2``: (G, k).

    `Z` (G, n, k) holds the design rows divided by the observed losses, so the target is 1.
    With k <= 3 unknowns the constrained optimum is the unconstrained one on some subset of
    them, the rest at 0: try all 2**k subsets and keep the best whose coefficients are >= 0.
    """
    G, _, k = Z.shape
    Zw = Z * np.sqrt(u)[..., None]  # (G, n, k): rows weighted
    scale = np.linalg.norm(Zw, axis=1)  # (G, k): solve for columns of unit length, then scale back
    Zw = Zw / scale[:, None]
    gram = Zw.transpose(0, 2, 1) @ Zw + 1e-14 * np.eye(k)  # (G, k, k); the ridge only rules out division by 0
    rhs = (Zw * np.sqrt(u)[..., None]).sum(1)  # (G, k): Zw^T sqrt(u), the weighted target
    best, best_sse = np.zeros((G, k)), u.sum(1)  # all coefficients 0 predicts 0 everywhere
    for size in range(1, k + 1):
        for free in map(list, itertools.combinations(range(k), size)):
            c = np.zeros((G, k))
            c[:, free] = np.linalg.solve(gram[:, free][:, :, free], rhs[:, free, None])[..., 0] / scale[:, free]
            sse = (u * (1 - (Z @ c[..., None])[..., 0]) ** 2).sum(1)  # (G,)
            better = (c >= 0).all(1) & (sse < best_sse)
            best[better], best_sse = c[better], np.where(better, sse, best_sse)
    return best


def _objective(Z: np.ndarray, huber_delta: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Best coefficients (G, k) for each design, and its objective: squares, or Huber by IRLS (G,)."""
    u = np.ones(Z.shape[:2])
    c = _nonnegative_lstsq(Z, u)
    r = 1 - (Z @ c[..., None])[..., 0]  # (G, n) relative residuals
    if huber_delta is None:
        return c, (r**2).sum(1)
    for _ in range(50):  # each pass minimises a quadratic that lies above the Huber loss
        u = np.minimum(1.0, huber_delta / np.maximum(np.abs(r), 1e-300))
        c = _nonnegative_lstsq(Z, u)
        r, previous = 1 - (Z @ c[..., None])[..., 0], r
        if np.abs(r - previous).max() < 1e-10:
            break
    a = np.abs(r)
    return c, np.where(a <= huber_delta, r**2 / 2, huber_delta * (a - huber_delta / 2)).sum(1)


def _search(design: Callable[[np.ndarray], np.ndarray], dims: int,
            huber_delta: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The exponents (dims,) and coefficients minimising the objective: a grid, then zooms."""
    if huber_delta is not None and not huber_delta > 0:
        raise ValueError(f"huber_delta must be positive or None, got {huber_delta!r}")
    points = np.stack(np.meshgrid(*[EXPONENTS] * dims, indexing="ij"), -1).reshape(-1, dims)  # (G, dims)
    step = EXPONENTS[1] - EXPONENTS[0]
    while True:
        c, loss = _objective(design(points), huber_delta)
        best = int(np.argmin(loss))
        if step < 1e-8:
            return points[best], c[best]
        # Zoom: an 11-point grid (per exponent) two old steps either side of the best point.
        offsets = np.linspace(-2 * step, 2 * step, 11)
        points = points[best] + np.stack(np.meshgrid(*[offsets] * dims, indexing="ij"), -1).reshape(-1, dims)
        points = points[(points > 0).all(1)]
        step = offsets[1] - offsets[0]


def fit_power_law(n: ArrayLike, loss: ArrayLike, huber_delta: float | None = None) -> PowerLawFit:
    """Fit ``L(N) = E + A / N**alpha`` with E, A >= 0 (see the module docstring for how)."""
    n, loss = _check({"n": n, "loss": loss}, parameters=3)
    design = lambda exps: np.stack(np.broadcast_arrays(np.ones_like(n), n ** -exps), -1) / loss[:, None]
    (alpha,), (E, A) = _search(design, 1, huber_delta)
    fit = PowerLawFit(float(E), float(A), float(alpha))
    return replace(fit, rms=float(np.sqrt(np.mean((fit(n) - loss) ** 2))))


def fit_chinchilla(n: ArrayLike, d: ArrayLike, loss: ArrayLike, huber_delta: float | None = None) -> ChinchillaFit:
    """Fit ``L(N, D) = E + A / N**alpha + B / D**beta`` with E, A, B >= 0 (see the module docstring).

    Pass ``huber_delta=1e-3`` for Hoffmann et al.'s robust loss, which all but ignores a run
    whose loss is far off the others' trend (one that diverged, say).
    """
    n, d, loss = _check({"n": n, "d": d, "loss": loss}, parameters=5)
    design = lambda exps: np.stack(np.broadcast_arrays(np.ones_like(n), n ** -exps[:, :1], d ** -exps[:, 1:]),
                                   -1) / loss[:, None]  # (G, points, 3)
    (alpha, beta), (E, A, B) = _search(design, 2, huber_delta)
    fit = ChinchillaFit(float(E), float(A), float(B), float(alpha), float(beta))
    return replace(fit, rms=float(np.sqrt(np.mean((fit(n, d) - loss) ** 2))))


def compute_optimal(fit: ChinchillaFit, flops: ArrayLike | float) -> tuple[np.ndarray | float, np.ndarray | float]:
    """The size N and tokens D that minimise the fitted loss for a budget of `flops`, C = 6 N D.

    ``C = 6 N D`` is Kaplan et al.'s count (6 FLOPs per weight per token, see `llmscratch.flops`),
    which leaves out the output layer and attention: read `flops` in the same units.

    On the line D = C / (6 N), ``L(N) = E + A N**-alpha + B (6 N / C)**beta``. Setting
    dL/dN = 0: ``alpha A N**-alpha = beta B (6 N / C)**beta``, so ``N**(alpha + beta) =
    (alpha A / (beta B)) (C / 6)**beta``, that is::

        N_opt = G (C / 6)**(beta / (alpha + beta)),   G = (alpha A / (beta B))**(1 / (alpha + beta)),
        D_opt = C / (6 N_opt) = (C / 6)**(alpha / (alpha + beta)) / G.

    dL/dN is negative below N_opt and positive above, so this is the one minimum. The exponents
    say how to spend ten times the compute: N_opt grows by 10**(beta / (alpha + beta)).

    >>> fit = ChinchillaFit(E=2.0, A=30.0, B=60.0, alpha=0.3, beta=0.3)
    >>> n_opt, d_opt = compute_optimal(fit, 6e12)
    >>> round(n_opt), round(d_opt)
    (314980, 3174802)
    >>> round(compute_optimal(fit, 6e13)[0] / n_opt, 4)  # equal exponents: 10x compute, sqrt(10)x the model
    3.1623
    """
    if not (fit.A > 0 and fit.B > 0 and fit.alpha > 0 and fit.beta > 0):
        raise ValueError(f"no compute-optimal size: the loss must fall with both N and D, got {fit}")
    c = _positive_vector("flops", np.atleast_1d(np.asarray(flops, dtype=np.float64)))
    a, b = fit.alpha, fit.beta
    G = (a * fit.A / (b * fit.B)) ** (1 / (a + b))
    n_opt = G * (c / 6) ** (b / (a + b))
    d_opt = c / (6 * n_opt)
    return (float(n_opt[0]), float(d_opt[0])) if np.ndim(flops) == 0 else (n_opt, d_opt)


def isoflop_curve(fit: ChinchillaFit, flops: float, n_values: ArrayLike) -> np.ndarray:
    """Predicted losses along one IsoFLOP line: each size of `n_values` trained on C / (6 N) tokens."""
    (c,) = _positive_vector("flops", [flops])
    n = _positive_vector("n_values", n_values)
    return np.asarray(fit(n, c / (6 * n)))


# --- The sweep: every size for every budget, on Tiny Shakespeare in the course's BPE ---------------

# About 25 K to 1.8 M non-embedding parameters (7 sizes, a factor 70), all with 16-dimensional
# heads and the tiny GPT's context of 64 tokens. Keys are the row labels of the chapter.
SWEEP_SIZES: dict[str, GPTConfig] = {
    f"d{d}-L{layers}": GPTConfig(context_length=64, d_model=d, n_layers=layers, n_heads=d // 16)
    for d, layers in [(32, 2), (48, 2), (64, 3), (96, 3), (128, 3), (160, 4), (192, 4)]
}
# Tokens seen, from 128 to 2,048 steps of 1,024 tokens: the top one passes about four times over
# the 0.52 M training tokens. The whole sweep (35 runs) should take 40 to 50 minutes on one CPU
# thread, half of it the top budget: estimated from a 32-step trial of every size (4-35 K tokens a
# second, scoring included) on a busy two-core machine; an idle core is faster.
SWEEP_BUDGETS: tuple[int, ...] = (131_072, 262_144, 524_288, 1_048_576, 2_097_152)
# One optimiser setting for every size (the ladder's); tuning per size costs a sweep per point.
# `budget_config` sets the steps and caps the warm-up; the loss estimates run only at the start
# and end, since the run's number is the exact validation loss afterwards.
SWEEP_TRAIN = TrainConfig(steps=2048, batch_size=16, learning_rate=2e-3, warmup_steps=50, weight_decay=0.1,
                          eval_interval=2048, eval_batches=2, seed=42)


def budget_config(tokens: int, context_length: int, base: TrainConfig = SWEEP_TRAIN) -> TrainConfig:
    """`base` with as many whole steps as `tokens` fills, its warm-up capped at a tenth of them.

    >>> budget_config(131_072, 64).steps
    128
    """
    per_step = base.batch_size * base.accumulation_steps * context_length
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < per_step:
        raise ValueError(f"a budget must be an integer of at least one step ({per_step} tokens), got {tokens!r}")
    steps = tokens // per_step
    return replace(base, steps=steps, warmup_steps=min(base.warmup_steps, steps // 10), eval_interval=steps)


def run_sweep(
    sizes: Mapping[str, GPTConfig] = SWEEP_SIZES,
    budgets: Sequence[int] = SWEEP_BUDGETS,
    splits: dict[str, torch.Tensor] | None = None,
    train_config: TrainConfig = SWEEP_TRAIN,
    progress: bool = True,
    device: torch.device | str = "cpu",
) -> list[dict]:
    """Train ``GPT(config)`` for every size and every token budget; one JSON-ready row per run.

    `splits` defaults to Tiny Shakespeare in the committed BPE. Each row: the size's name and
    config, ``non_embedding_parameters`` (N for the fits, Kaplan's count) and ``num_parameters``
    (with the embeddings), ``tokens`` seen (D, whole steps of the budget), ``steps``,
    ``training_flops`` (`llmscratch.flops`: with the output layer and attention, so above 6 N D,
    most at the smallest sizes), the
    exact validation loss in nats per token (``val_loss``: the mean over non-overlapping windows
    of the context length, `evaluation.position_losses`, the scoring the committed sweep was made
    with; the book's later sliding-window protocol scores these models about 0.01 lower), the
    wall time of training and scoring, and the seed.
    """
    if splits is None:
        _, splits, _ = shakespeare_bpe_splits()
    configs = {tokens: {name: budget_config(tokens, config.context_length, train_config)
                        for name, config in sizes.items()} for tokens in budgets}  # fail before training
    rows = []
    bar = progress_bar(len(sizes) * len(budgets), desc="sweep", enabled=progress)
    for name, config in sizes.items():
        for tokens in budgets:
            cfg = configs[tokens][name]
            started = time.perf_counter()
            model = fit_rung(config, splits, cfg, progress=False, device=device)
            val = float(position_losses(model, splits["val"], config.context_length).mean())
            seen = cfg.steps * cfg.batch_size * cfg.accumulation_steps * config.context_length
            rows.append({"name": name, "config": asdict(config),
                         "non_embedding_parameters": model.num_parameters(exclude_embeddings=True),
                         "num_parameters": model.num_parameters(), "tokens": seen, "steps": cfg.steps,
                         "training_flops": training_flops_per_token(config) * seen, "val_loss": round(val, 5),
                         "wall_seconds": round(time.perf_counter() - started, 2), "seed": cfg.seed})
            bar.write(f"{name:9s} N {rows[-1]['non_embedding_parameters']:9,d}  D {seen:11,d}  val {val:.4f}  "
                      f"({rows[-1]['wall_seconds']:.0f} s)")
            bar.update(1)
    bar.close()
    return rows
