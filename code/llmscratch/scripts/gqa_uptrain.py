"""Convert the course model from multi-head to grouped-query attention, then uptrain it briefly.

    python -m llmscratch.scripts.gqa_uptrain      # writes data/gqa_uptrain.json (and the uptrained weights)

1. Pool the course model's key/value heads (`llmscratch.gqa.pool_kv_heads`) to every count of
   `llmscratch.gqa.kv_head_counts` (8, 4, 2, 1) and score each conversion on the validation split
   without any training.
2. Uptrain the ``--kv-heads`` conversion (default 2: a cache four times smaller) for ``--steps``
   updates (`UPTRAIN`), scoring it every ``--score-every`` steps.
3. Uptrain the unconverted multi-head model with the same budget, batches and seed: the control
   that says how much of the recovery is the conversion healing, and how much is simply more
   training of the course model.

Scores are what the course model records (`llmscratch.experiments.rescore`): the exact mean loss
over non-overlapping windows of 256 tokens of the validation split, in nats per token, and bits per
character beside it. The uptrained GQA weights are written beside the JSON in float16.
"""

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..course import COURSE_RECIPE, load_course_model
from ..datasets import TextBatches
from ..experiments import rescore, shakespeare_bpe_splits
from ..gqa import kv_head_counts, pool_kv_heads
from ..kv_cache import kv_cache_bytes
from ..model import GPT
from ..training import TrainConfig, train
from .cli import commit_result, default_out, script_parser, start

MODULE = "llmscratch.scripts.gqa_uptrain"
OUT = "data/gqa_uptrain"
# A short fine-tune: a small batch, a peak rate near where the course model's schedule ended
# (2e-4), a short warm-up so the fresh optimizer's first steps are small.
UPTRAIN = TrainConfig(steps=120, batch_size=8, learning_rate=5e-4, warmup_steps=10, min_lr_ratio=0.1,
                      weight_decay=0.1, eval_interval=10_000, eval_batches=1, seed=42)


def uptrain(model: GPT, cfg: TrainConfig, score_every: int, desc: str, progress: bool = True) -> dict[str, Any]:
    """Train `model` in place with `cfg` on the course data; its validation loss at step 0 and every `score_every`."""
    _, splits, _ = shakespeare_bpe_splits()
    batches = TextBatches({"train": splits["train"], "val": splits["val"]}, model.context_length,
                          every_position=True)
    curve = {"step": [0], "val_loss": [round(rescore(model, COURSE_RECIPE), 5)]}

    def on_update(step: int, m: torch.nn.Module) -> None:
        if step % score_every == 0 or step == cfg.steps:
            curve["step"].append(step)
            curve["val_loss"].append(round(rescore(m, COURSE_RECIPE), 5))
            print(f"{desc}: step {step}  val {curve['val_loss'][-1]:.4f}", flush=True)

    t0 = time.time()
    history = train(model, batches, cfg, progress=progress, desc=desc, on_update=on_update)
    model.eval()
    last = history.train_loss[-10:]
    return {**curve, "train_loss_last10": round(sum(last) / len(last), 5), "wall_seconds": round(time.time() - t0, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--kv-heads", type=int, default=2, help="the conversion to uptrain (default 2)")
    parser.add_argument("--batch-size", type=int, default=UPTRAIN.batch_size)
    parser.add_argument("--score-every", type=int, default=30, help="steps between validation scores (default 30)")
    args = parser.parse_args(argv)
    device, started = start(args)
    cfg = replace(UPTRAIN, batch_size=args.batch_size, **({"steps": args.steps} if args.steps else {}))
    course, _ = load_course_model(verify=False)
    _, splits, chars = shakespeare_bpe_splits()
    nats_to_bpc = 1 / math.log(2) / (chars["val"] / len(splits["val"]))
    conversions = []
    for kv in kv_head_counts(course.config.n_heads):
        model = pool_kv_heads(course, kv)
        loss = rescore(model, COURSE_RECIPE)
        conversions.append({"n_kv_heads": kv, "val_loss": round(loss, 5),
                            "val_bits_per_char": round(loss * nats_to_bpc, 5),
                            "kv_cache_bytes_per_token": kv_cache_bytes(model.config, batch_size=1, length=1),
                            "num_parameters": model.num_parameters()})
        print(f"{kv} kv heads: val {loss:.4f} nats per token, no training", flush=True)
    progress = not args.no_progress
    converted = pool_kv_heads(course, args.kv_heads)
    gqa_run = uptrain(converted, cfg, args.score_every, f"GQA {args.kv_heads} uptrain", progress)
    control = load_course_model(verify=False)[0]
    mha_run = uptrain(control, cfg, args.score_every, "MHA control", progress)
    result = {
        "what": "The course model's key/value heads mean-pooled (gqa.pool_kv_heads) to each count and scored "
                "without training; then one conversion, and the unconverted model as a control, uptrained with "
                "the same budget, batches and seed. Loss: exact mean nats per token over non-overlapping "
                "256-token windows of the validation split (experiments.rescore), as the course model records it",
        "course_val_loss": conversions[0]["val_loss"],
        "val_chars_per_token": round(chars["val"] / len(splits["val"]), 5),
        "conversions": conversions,
        "uptrain_kv_heads": args.kv_heads,
        "uptrain_config": asdict(cfg),
        "uptrain_tokens": cfg.steps * cfg.batch_size * course.context_length,
        "gqa_uptrain": gqa_run,
        "mha_uptrain": mha_run,
    }
    out = Path(args.out) if args.out else default_out(OUT)
    commit_result(out, result, MODULE, argv, started, cfg.seed, device, converted, half=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
