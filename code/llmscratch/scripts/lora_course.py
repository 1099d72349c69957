"""Instruction-tune the course model with LoRA adapters: three seeds at one rank, and a sweep of ranks.

    python -m llmscratch.scripts.lora_course           # writes data/part5_lora.json and data/part5_lora.pt
    python -m llmscratch.scripts.lora_course --jobs 2

The same task, data, steps and batch as the full fine-tuning of `llmscratch.scripts.sft_course`
(its committed masked runs are the comparison), with every linear layer of attention and the
feed-forward wrapped by `llmscratch.lora.add_lora` and only the adapters trained, at
`LORA_LEARNING_RATE` (adapters start at zero and are small: they take a larger learning rate
than full fine-tuning, as in Hu et al.). Settings: `MAIN_RANK` with every seed, and each rank
of `RANKS` with the first seed.

Each run records what `sft_course` does (held-out exact match per task, format, stopping, Tiny
Shakespeare's validation loss, the held-out response loss along the way), the trainable
parameters, the optimizer's state in bytes as measured from AdamW after the run (two moments per
trainable number) next to `llmscratch.memory`'s figure for full fine-tuning, and the training
time. Every model is scored with its adapters merged and the weights rounded to float16. The
.pt file holds the adapters of `MAIN_RANK`, seed 42 (float16).
"""

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..course import load_course_model
from ..data import load_text
from ..experiments import shakespeare_bpe_splits
from ..fileio import atomic_path
from ..instructions import make_instructions
from ..lora import add_lora, lora_parameters, merge_lora, trainable_share
from ..memory import adamw_state_bytes, memory_estimate
from ..sft import InstructionBatches
from ..training import TrainConfig, train
from .cli import commit_result, default_out, map_jobs, script_parser, start
from .sft_course import SFT_TRAIN, score_model

MODULE = "llmscratch.scripts.lora_course"
OUT = "data/part5_lora.json"

LORA_LEARNING_RATE = 1e-3
MAIN_RANK = 8
RANKS = (1, 2, 4, 8, 32, 128)
SEEDS = (42, 43, 44)


def _one_run(rank: int, cfg: TrainConfig, device: str, threads: int, progress: bool, keep: bool) -> dict[str, Any]:
    torch.set_num_threads(threads)
    _, splits, _ = shakespeare_bpe_splits()
    data = make_instructions(load_text("tinyshakespeare"))
    model, tokenizer = load_course_model(verify=False)
    add_lora(model, rank)
    trainable = sum(p.numel() for p in lora_parameters(model))
    share = trainable_share(model)
    batches = InstructionBatches(data, tokenizer, model.context_length)
    t0 = time.time()
    history = train(model.to(device), batches, cfg, progress=progress, desc=f"LoRA rank {rank} seed {cfg.seed}")
    seconds = time.time() - t0
    model = model.cpu()
    state_bytes = adamw_state_bytes(model, *batches("train", 2, torch.Generator().manual_seed(0)))
    model.eval()
    adapters = {k: v.detach().half() for k, v in model.state_dict().items() if "lora_" in k}
    merge_lora(model)
    merged = {k: v for k, v in model.state_dict().items() if "lora_" not in k}
    model.load_state_dict({k: (v.half().float() if v.is_floating_point() else v) for k, v in merged.items()},
                          strict=False)
    scores = score_model(model, tokenizer, data["val"], splits)
    print(f"rank {rank:4d} seed {cfg.seed}  exact {scores['exact']:.3f}  format {scores['format']:.3f}  "
          f"shakespeare {scores['shakespeare_val']:.4f}  trainable {trainable:,}  optimizer {state_bytes:,} B  "
          f"({seconds:.0f} s)", flush=True)
    return {"rank": rank, "seed": cfg.seed, "trainable": trainable, "trainable_share": share,
            "optimizer_bytes": state_bytes, "train_seconds": round(seconds, 1),
            "curve": {"step": history.eval_step, "train": history.eval_train, "val": history.eval_val},
            **{k: scores[k] for k in ("exact", "format", "stopped", "tasks", "shakespeare_val")},
            "adapters": adapters if keep else None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help=f"default {' '.join(map(str, SEEDS))}")
    parser.add_argument("--ranks", type=int, nargs="+", default=list(RANKS),
                        help=f"default {' '.join(map(str, RANKS))}")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes (default 1)")
    args = parser.parse_args(argv)
    device, started = start(args)
    cfg = replace(SFT_TRAIN, learning_rate=LORA_LEARNING_RATE, **({"steps": args.steps} if args.steps else {}))
    first = args.seeds[0]
    wanted = [(rank, first) for rank in args.ranks] + [(MAIN_RANK, seed) for seed in args.seeds[1:]]
    calls = [(rank, replace(cfg, seed=seed), str(device), args.threads, not args.no_progress and args.jobs == 1,
              rank == MAIN_RANK and seed == first) for rank, seed in wanted]
    runs = map_jobs(_one_run, calls, args.jobs)
    kept = next((r["adapters"] for r in runs if r["adapters"] is not None), None)
    for r in runs:
        r.pop("adapters")
    base, _ = load_course_model(verify=False)
    full = memory_estimate(base.config, cfg.batch_size)
    result: dict[str, Any] = {
        "what": "The course model instruction-tuned with LoRA adapters on attention and feed-forward "
                "(llmscratch.lora), "
                "the data and schedule of sft_course at a larger learning rate; a rank sweep at one seed and three "
                "seeds at the main rank; held-out instructions, Shakespeare, trainable parameters, optimizer bytes",
        "train_config": asdict(cfg),
        "main_rank": MAIN_RANK,
        "full_fine_tuning": {"parameters": base.num_parameters(), "optimizer_bytes_model": full.adam,
                             "gradient_bytes_model": full.grads},
        "runs": runs,
    }
    out = Path(args.out) if args.out else default_out(OUT)
    if kept is not None:
        with atomic_path(out.with_suffix(".pt")) as tmp:
            torch.save({"rank": MAIN_RANK, "adapters": kept}, tmp)
    commit_result(out, result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
