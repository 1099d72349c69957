"""Part 2's ladder: from a bigram to a GPT, one piece at a time, with one training budget.

    python -m llmscratch.scripts.ablation_ladder        # writes data/part2_ladder.json

Every rung is a `GPTConfig`; each adds one idea to the rung before it. All rungs train on the
same Tiny Shakespeare BPE stream (`train_gpt.shakespeare_bpe_splits`) with the same
`TrainConfig` (steps, batch, learning rate, seed), and are scored exactly on the validation
split at the training length (`position_losses`). The chapters of Part 2 read the table and
each trains its own rung live on a shorter budget (`train_rung`).

The JSON holds, per rung, the config, parameter count, validation loss in nats per token and
in bits per character, and the wall time, plus the provenance of the whole run.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ..datasets import TextBatches
from ..evaluation import position_losses
from ..fileio import atomic_write_text
from ..model import GPT, GPT_PRESETS, GPTConfig
from ..provenance import script_provenance, to_json
from ..training import TrainConfig, train
from .train_gpt import shakespeare_bpe_splits

REPO = Path(__file__).resolve().parents[3]
OUT = "data/part2_ladder.json"

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

# The budget shared by every rung: about a minute per rung on one CPU thread.
TRAIN = TrainConfig(steps=1500, batch_size=32, learning_rate=2e-3, warmup_steps=100,
                    weight_decay=0.1, eval_interval=250, eval_batches=10, seed=42)


def train_rung(config: GPTConfig, splits: dict[str, torch.Tensor], cfg: TrainConfig = TRAIN,
               progress: bool = True, desc: str = "rung") -> tuple[GPT, float]:
    """Train ``GPT(config)`` on `splits` with `cfg`; return it and its exact validation loss (nats)."""
    torch.manual_seed(cfg.seed)
    model = GPT(config)
    batches = TextBatches({"train": splits["train"], "val": splits["val"]}, config.context_length,
                          every_position=True)
    train(model, batches, cfg, progress=progress, desc=desc)
    return model, float(position_losses(model, splits["val"], config.context_length).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmscratch.scripts.ablation_ladder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, help="override the number of steps (for a quick trial)")
    parser.add_argument("--out", default=str(REPO / OUT), help=f"result path (default {OUT})")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as reported)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    cfg = replace(TRAIN, steps=args.steps) if args.steps else TRAIN
    torch.set_num_threads(args.threads)
    started = time.time()
    tokenizer, splits, chars = shakespeare_bpe_splits()
    chars_per_token = chars["val"] / len(splits["val"])
    rows = []
    for name, config in RUNGS:
        t0 = time.time()
        model, val = train_rung(config, splits, cfg, progress=not args.no_progress, desc=name)
        rows.append({"name": name, "val_loss": round(val, 5),
                     "val_bits_per_char": round(val / math.log(2) / chars_per_token, 5),
                     "num_parameters": model.num_parameters(), "wall_seconds": round(time.time() - t0, 1),
                     "config": asdict(config)})
        print(f"{name:12s} {model.num_parameters():8d} params  val {val:.4f}", flush=True)
    result = {
        "what": "GPT variants trained with one budget on the 512-token BPE of Tiny Shakespeare; exact "
                "validation loss (nats per token) over non-overlapping sequences of context_length tokens",
        "train_config": asdict(cfg),
        "val_chars_per_token": round(chars_per_token, 5),
        "rungs": rows,
        "provenance": script_provenance("llmscratch.scripts.ablation_ladder", sys.argv[1:] if argv is None else argv,
                                        time.time() - started, cfg.seed),
    }
    atomic_write_text(Path(args.out), to_json(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
