"""Controlled comparisons: many GPTs, one data set, one budget, one change at a time.

    model, val_loss = train_rung(RUNGS[1][1], splits, replace(LADDER_TRAIN, steps=300))

**The ladder** (`RUNGS`): from a bigram to a GPT, one piece at a time. Every rung is a
`GPTConfig`, and each adds one idea to the rung before it. All rungs train on the same Tiny
Shakespeare BPE stream (`llmscratch.experiments.shakespeare_bpe_splits`) with the same
`LADDER_TRAIN` (steps, batch, learning rate, seed), and are scored with the book's protocol:
every token of the validation split, each from (almost) a full context window
(`evaluation.sliding_nlls` at `evaluation.protocol_stride`), the first from the end of the
training split.

**The position schemes** (`compare_positions`): the tiny GPT with each of the five ways of
telling it where its tokens are (`SCHEMES`), the same seeds and budget for each, scored at the
training length and at two and four times it (`run_scheme`), position by position, which
shows where a scheme stops working once it sees positions it never trained on; and whether
the model uses word order at all (`shuffled_prefix_loss`). A learned position table has no
row past its context_length, so that model refuses longer inputs; the result then records
``None`` ("not defined") and the error's message, never a number.

The scripts ``ablation_ladder`` and ``compare_positions`` run these at full budget and commit
the tables; the Part 2 chapters read the tables and train their own rungs live, shorter.

Left out: a learning-rate search per rung (one setting for all keeps the comparison about the
architecture, at the price of favouring the rungs it suits).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import torch

from .config import GPT_PRESETS, GPTConfig
from .datasets import TextBatches
from .evaluation import position_losses, protocol_stride, shuffled_prefix_loss, sliding_nlls
from .model import GPT
from .positional import POSITION_SCHEMES
from .training import History, TrainConfig, train

__all__ = ["FACTORS", "LADDER_TRAIN", "POSITIONS_BASE", "POSITIONS_TRAIN", "RUNGS", "SCHEMES", "SEEDS",
           "VARIANTS", "compare_positions", "fit_rung", "fit_rung_history", "rung_loss", "run_scheme", "summarize",
           "train_rung"]

# Every rung has its own output matrix (no weight tying): a bigram needs one to be a full
# bigram table, and keeping it in every rung means each rung adds exactly one piece. (Tied,
# the one-head model's logits would be E · h, which in a trial run ended worse than the bigram.)
_TINY = replace(GPT_PRESETS["tiny"], tie_weights=False)
# (name, config), from the least to the most machinery. Names are the chapters' row labels.
RUNGS: list[tuple[str, GPTConfig]] = [
    # No blocks and no positions: the logits depend on the current token only.
    ("bigram", replace(_TINY, n_layers=0, position="none")),
    # One attention head looks back over the window; no feed-forward network.
    ("one head", replace(_TINY, n_layers=1, n_heads=1, d_ff=0)),
    # Four heads of a quarter the size each: the same parameters, four patterns at once.
    ("four heads", replace(_TINY, n_layers=1, d_ff=0)),
    # The feed-forward network after attention: a full transformer block.
    ("one block", replace(_TINY, n_layers=1)),
    # Two blocks: the course's "tiny" GPT, untied.
    ("two blocks", _TINY),
    # Four blocks.
    ("four blocks", replace(_TINY, n_layers=4)),
]

# Side questions asked at the ladder's budget, each a change to one rung: (name, config, changes
# to the training config). How many heads, at the same width? Does tying the output matrix to
# the embedding help? Does post-norm need the warm-up that pre-norm can do without?
VARIANTS: list[tuple[str, GPTConfig, dict[str, object]]] = [
    ("two heads", replace(_TINY, n_layers=1, n_heads=2, d_ff=0), {}),
    ("eight heads", replace(_TINY, n_layers=1, n_heads=8, d_ff=0), {}),
    ("two blocks, tied", replace(_TINY, tie_weights=True), {}),
    ("two blocks, no warm-up", _TINY, {"warmup_steps": 0}),
    ("two blocks, post-norm", replace(_TINY, norm_placement="post"), {}),
    ("two blocks, post-norm, no warm-up", replace(_TINY, norm_placement="post"), {"warmup_steps": 0}),
    # A deeper stack, where the wiring of the residual stream matters most.
    ("six blocks", replace(_TINY, n_layers=6), {}),
    ("six blocks, post-norm", replace(_TINY, n_layers=6, norm_placement="post"), {}),
    ("six blocks, no residuals", replace(_TINY, n_layers=6, residual=False), {}),
    ("six blocks, no warm-up", replace(_TINY, n_layers=6), {"warmup_steps": 0}),
    ("six blocks, post-norm, no warm-up", replace(_TINY, n_layers=6, norm_placement="post"), {"warmup_steps": 0}),
]

# The budget shared by every rung: about a minute per rung on one CPU thread.
LADDER_TRAIN = TrainConfig(steps=1500, batch_size=32, learning_rate=2e-3, warmup_steps=100,
                           weight_decay=0.1, eval_interval=250, eval_batches=10, seed=42)

# Every scheme the model knows, in the order the chapter introduces them.
SCHEMES: tuple[str, ...] = ("learned", "sinusoidal", "rope", "alibi", "none")
# The model all schemes share; only `position` is replaced.
POSITIONS_BASE: GPTConfig = GPT_PRESETS["tiny"]
# The ladder's optimizer settings on a shorter run: 15 runs fit in about a quarter of an hour on
# one CPU thread. Each seed drives both the initialisation and the order of the batches.
POSITIONS_TRAIN: TrainConfig = replace(LADDER_TRAIN, steps=800)
SEEDS: tuple[int, ...] = (42, 43, 44)
# The training length and two and four times it.
FACTORS: tuple[int, ...] = (1, 2, 4)


def fit_rung(
    config: GPTConfig,
    splits: dict[str, torch.Tensor],
    cfg: TrainConfig = LADDER_TRAIN,
    progress: bool = True,
    desc: str = "rung",
    device: torch.device | str = "cpu",
) -> GPT:
    """Train ``GPT(config)`` on `splits` with `cfg`, seeded by ``cfg.seed``; return it on the CPU, unscored."""
    return fit_rung_history(config, splits, cfg, progress, desc, device)[0]


def fit_rung_history(
    config: GPTConfig,
    splits: dict[str, torch.Tensor],
    cfg: TrainConfig = LADDER_TRAIN,
    progress: bool = True,
    desc: str = "rung",
    device: torch.device | str = "cpu",
) -> tuple[GPT, History]:
    """`fit_rung`, also returning the training `History` (for convergence curves)."""
    torch.manual_seed(cfg.seed)
    model = GPT(config).to(device)
    batches = TextBatches({"train": splits["train"], "val": splits["val"]}, config.context_length,
                          every_position=True)
    history = train(model, batches, cfg, progress=progress, desc=desc)
    return model.cpu(), history


def train_rung(
    config: GPTConfig,
    splits: dict[str, torch.Tensor],
    cfg: TrainConfig = LADDER_TRAIN,
    progress: bool = True,
    desc: str = "rung",
    device: torch.device | str = "cpu",
) -> tuple[GPT, float]:
    """Train ``GPT(config)`` on `splits` with `cfg` (`fit_rung`); return it and its validation loss (nats per token).

    The loss is the book's protocol (`evaluation.sliding_nlls`): every validation token, each
    predicted from at least 15/16 of the context window, the first ones from the end of "train".
    """
    model = fit_rung(config, splits, cfg, progress, desc, device)
    return model, rung_loss(model, splits)


def rung_loss(model: GPT, splits: dict[str, torch.Tensor]) -> float:
    """The book's protocol on the "val" split (nats per token): every token, each from at least 15/16 of
    the context (`evaluation.sliding_nlls` at `evaluation.protocol_stride`), the first ones from the end of "train"."""
    stride = protocol_stride(model.context_length)
    return float(sliding_nlls(model, splits["val"], splits["train"], stride=stride).double().mean())


def run_scheme(
    scheme: str,
    splits: dict[str, torch.Tensor],
    cfg: TrainConfig = POSITIONS_TRAIN,
    lengths: Sequence[int] | None = None,
    base: GPTConfig = POSITIONS_BASE,
    progress: bool = True,
    device: torch.device | str = "cpu",
) -> tuple[GPT, dict]:
    """Train ``GPT(replace(base, position=scheme))`` with `cfg`; score it at each of `lengths`.

    `lengths` defaults to `FACTORS` times ``base.context_length``. Returns the model and a row:
    ``{"scheme", "seed", "loss": {L: mean loss or None}, "position_losses": {L: [per position]
    or None}, "errors": {L: message}, "last_token_loss": {"intact", "shuffled"}, "wall_seconds"}``,
    with lengths as strings (JSON keys); the last-token losses are at the training length.
    A length the model refuses (a learned table shorter than it) gets ``None`` and its message.
    """
    if scheme not in POSITION_SCHEMES:
        raise ValueError(f"unknown position scheme {scheme!r}; choose one of {tuple(POSITION_SCHEMES)}")
    lengths = [f * base.context_length for f in FACTORS] if lengths is None else list(lengths)
    if not lengths or any(not isinstance(L, int) or L <= 0 for L in lengths):
        raise ValueError(f"lengths must be positive integers, got {lengths!r}")
    started = time.time()
    model = fit_rung(replace(base, position=scheme), splits, cfg, progress=progress,
                     desc=f"{scheme} seed {cfg.seed}", device=device)
    loss, curves, errors = {}, {}, {}
    for L in lengths:
        try:
            curve = position_losses(model, splits["val"], L)  # (L,)
        except ValueError as error:  # a learned table has no row for position >= context_length
            loss[str(L)], curves[str(L)], errors[str(L)] = None, None, str(error)
            continue
        loss[str(L)] = round(float(curve.mean()), 5)
        curves[str(L)] = [round(x, 4) for x in curve.tolist()]
    intact, shuffled = shuffled_prefix_loss(model, splits["val"], base.context_length)
    row = {"scheme": scheme, "seed": cfg.seed, "loss": loss, "position_losses": curves, "errors": errors,
           "last_token_loss": {"intact": round(intact, 5), "shuffled": round(shuffled, 5)},
           "wall_seconds": round(time.time() - started, 1)}
    return model, row


def summarize(runs: list[dict]) -> dict[str, dict[str, dict[str, float] | None]]:
    """Per scheme and length: mean, min and max of the loss over seeds; None where not defined."""
    summary: dict[str, dict] = {}
    for scheme in dict.fromkeys(r["scheme"] for r in runs):
        rows = [r for r in runs if r["scheme"] == scheme]
        summary[scheme] = {}
        for L in rows[0]["loss"]:
            values = [r["loss"][L] for r in rows]
            if any(v is None for v in values):
                summary[scheme][L] = None
                continue
            summary[scheme][L] = {"mean": round(sum(values) / len(values), 5), "min": min(values),
                                  "max": max(values), "n": len(values)}
    return summary


def compare_positions(
    splits: dict[str, torch.Tensor],
    schemes: Sequence[str] = SCHEMES,
    seeds: Sequence[int] = SEEDS,
    cfg: TrainConfig = POSITIONS_TRAIN,
    base: GPTConfig = POSITIONS_BASE,
    progress: bool = True,
    device: torch.device | str = "cpu",
) -> dict:
    """Every scheme with every seed (`run_scheme`): ``{"lengths", "runs", "summary"}``."""
    lengths = [f * base.context_length for f in FACTORS]
    runs = []
    for seed in seeds:
        for scheme in schemes:
            _, row = run_scheme(scheme, splits, replace(cfg, seed=seed), lengths, base, progress, device)
            shown = ", ".join(f"{L}: " + ("not defined" if v is None else f"{v:.4f}") for L, v in row["loss"].items())
            gap = row["last_token_loss"]["shuffled"] - row["last_token_loss"]["intact"]
            print(f"{scheme:10s} seed {seed}  val {shown}; shuffling costs {gap:+.3f}  ({row['wall_seconds']:.0f} s)",
                  flush=True)
            runs.append(row)
    return {"lengths": lengths, "runs": runs, "summary": summarize(runs)}
