"""Five ways of telling a GPT where its tokens are, compared under one budget, at 1x, 2x, 4x length.

    python -m llmscratch.scripts.compare_positions      # writes data/part2_positions.json

One model (the tiny GPT, `GPT_PRESETS["tiny"]`: context_length 64), one data set (Tiny
Shakespeare in the course's 512-token BPE, `train_gpt.shakespeare_bpe_splits`), one training
budget (`TRAIN`) and the same seeds for every scheme; only `GPTConfig.position` differs. Each
trained model is scored exactly on the validation split at the training length and at two and
four times it (`position_losses`), position by position, which shows where a scheme stops
working once it sees positions it never trained on. A second measurement asks whether a model
uses word order at all (`shuffled_prefix_loss`): its loss on the last token of each sequence,
with the tokens before it intact and then shuffled.

A learned position table has no row past its context_length, so the model refuses longer
inputs with a ValueError; the result then records ``None`` ("not defined") and the error's
message, never a number.

The JSON holds, per scheme and seed, the losses and per-position loss curves at every length,
a summary over seeds (mean, min, max), the configs, and the provenance of the whole run.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from ..evaluation import position_losses
from ..fileio import atomic_write_text
from ..model import GPT, GPT_PRESETS, GPTConfig
from ..positional import POSITION_SCHEMES
from ..provenance import script_provenance, to_json
from ..training import TrainConfig
from .ablation_ladder import TRAIN as LADDER_TRAIN
from .ablation_ladder import train_rung
from .train_gpt import shakespeare_bpe_splits

REPO = Path(__file__).resolve().parents[3]
OUT = "data/part2_positions.json"

# Every scheme the model knows, in the order the chapter introduces them.
SCHEMES: tuple[str, ...] = ("learned", "sinusoidal", "rope", "alibi", "none")
# The model all schemes share; only `position` is replaced.
BASE: GPTConfig = GPT_PRESETS["tiny"]
# The ladder's optimizer settings on a shorter run: 15 runs fit in about a quarter of an hour on
# one CPU thread. Each seed drives both the initialisation and the order of the batches.
TRAIN: TrainConfig = replace(LADDER_TRAIN, steps=800)
SEEDS: tuple[int, ...] = (42, 43, 44)
# The training length and two and four times it.
FACTORS: tuple[int, ...] = (1, 2, 4)


@torch.no_grad()
def shuffled_prefix_loss(model: torch.nn.Module, stream: torch.Tensor, length: int, seed: int = 0) -> tuple[float, float]:
    """Loss (nats) at the last of `length` positions, with the tokens before it intact and shuffled.

    `stream` is cut into non-overlapping pieces of length + 1 tokens, as in `position_losses`.
    In the shuffled copy, inputs 0..length-2 of each piece are permuted at random (seeded) and
    the last input token stays in place, so a model that sees its context as a bag of tokens
    scores the same on both, and the gap measures how much it relies on the order. An untrained
    one-layer model without positions has a gap of exactly 0 (its last position sees a set).
    """
    if stream.ndim != 1 or not isinstance(length, int) or length < 2:
        raise ValueError(f"need a 1-D stream and a length of at least 2, got shape {tuple(stream.shape)} and {length!r}")
    n = len(stream) // (length + 1)
    if n == 0:
        raise ValueError(f"a stream of {len(stream)} tokens holds no sequence of {length} + 1")
    pieces = stream[: n * (length + 1)].view(n, length + 1)  # (n, length + 1)
    g = torch.Generator().manual_seed(seed)
    order = torch.stack([torch.randperm(length - 1, generator=g) for _ in range(n)])  # (n, length - 1)
    shuffled = pieces.clone()
    shuffled[:, : length - 1] = torch.gather(pieces[:, : length - 1], 1, order)
    was_training = model.training
    model.eval()
    losses = []
    for seqs in (pieces, shuffled):
        logits = torch.cat([model(seqs[i : i + 32, :length])[0][:, -1] for i in range(0, n, 32)])  # (n, V)
        losses.append(float(F.cross_entropy(logits, pieces[:, length])))
    model.train(was_training)
    return losses[0], losses[1]


def run_scheme(
    scheme: str,
    splits: dict[str, torch.Tensor],
    cfg: TrainConfig = TRAIN,
    lengths: Sequence[int] | None = None,
    base: GPTConfig = BASE,
    progress: bool = True,
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
    model, _ = train_rung(replace(base, position=scheme), splits, cfg, progress=progress,
                          desc=f"{scheme} seed {cfg.seed}")
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
    cfg: TrainConfig = TRAIN,
    base: GPTConfig = BASE,
    progress: bool = True,
) -> dict:
    """Every scheme with every seed (`run_scheme`): ``{"lengths", "runs", "summary"}``."""
    lengths = [f * base.context_length for f in FACTORS]
    runs = []
    for seed in seeds:
        for scheme in schemes:
            _, row = run_scheme(scheme, splits, replace(cfg, seed=seed), lengths, base, progress)
            shown = ", ".join(f"{L}: " + ("not defined" if v is None else f"{v:.4f}") for L, v in row["loss"].items())
            gap = row["last_token_loss"]["shuffled"] - row["last_token_loss"]["intact"]
            print(f"{scheme:10s} seed {seed}  val {shown}; shuffling costs {gap:+.3f}  ({row['wall_seconds']:.0f} s)",
                  flush=True)
            runs.append(row)
    return {"lengths": lengths, "runs": runs, "summary": summarize(runs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmscratch.scripts.compare_positions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, help="override the number of steps (for a quick trial)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help=f"seeds (default {SEEDS})")
    parser.add_argument("--out", default=str(REPO / OUT), help=f"result path (default {OUT})")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as reported)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    cfg = replace(TRAIN, steps=args.steps) if args.steps else TRAIN
    torch.set_num_threads(args.threads)
    started = time.time()
    _, splits, chars = shakespeare_bpe_splits()
    comparison = compare_positions(splits, SCHEMES, args.seeds, cfg, BASE, progress=not args.no_progress)
    result = {
        "what": "The tiny GPT trained with each position scheme (same data, budget and seeds); exact validation "
                "loss (nats per token) over non-overlapping sequences of 1x, 2x and 4x the training length, "
                "per position and on average; null where the model cannot take that length. last_token_loss: "
                "loss on the last token of each training-length sequence, with the tokens before it intact "
                "and shuffled",
        "schemes": {name: POSITION_SCHEMES[name] for name in SCHEMES},
        "model_config": asdict(BASE),
        # The seed of each run is in `seeds` (and in every row), not in the shared config.
        "train_config": {k: v for k, v in asdict(cfg).items() if k != "seed"},
        "seeds": list(args.seeds),
        "val_tokens": len(splits["val"]),
        "val_chars_per_token": round(chars["val"] / len(splits["val"]), 5),
        "uniform_loss": round(math.log(BASE.vocab_size), 5),
        **comparison,
        "provenance": script_provenance("llmscratch.scripts.compare_positions", sys.argv[1:] if argv is None else argv,
                                        time.time() - started, args.seeds[0]),
    }
    atomic_write_text(Path(args.out), to_json(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
