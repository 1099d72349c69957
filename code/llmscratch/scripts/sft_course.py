"""Instruction-tune the course model on the course's instruction data, with and without prompt masking, 3 seeds each.

    python -m llmscratch.scripts.sft_course            # writes data/part5_sft.json and data/part5_sft.pt
    python -m llmscratch.scripts.sft_course --jobs 2

Every run starts from the committed course model (`llmscratch.course`), fine-tunes it on the
training examples of `llmscratch.instructions.make_instructions` (seed 0) with `SFT_TRAIN` (a
tenth of the pretraining learning rate, about two passes over the examples), once with the loss
on the responses only and once on the whole text (the ablation), and is scored on the held-out
examples by `llmscratch.sft.evaluate_instructions` (greedy, at most `MAX_NEW_TOKENS` tokens):
exact match per task, format adherence and stopping. Forgetting is the validation loss on Tiny
Shakespeare with the book's protocol (`comparisons.rung_loss`), before and after.

The JSON has the base model's scores, one row per setting with its seeds' scores, the first
responses of each task before and after, and the provenance; the .pt file holds seed 42 of the
masked setting in float16, the model later chapters of Part 5 start from. Every fine-tuned model
is scored with its weights rounded to float16, exactly as that file stores them.
"""

import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..comparisons import rung_loss
from ..course import load_course_model
from ..data import load_text
from ..experiments import shakespeare_bpe_splits
from ..fileio import atomic_path
from ..instructions import TASKS, make_instructions
from ..sft import evaluate_instructions, fine_tune_course_model, round_to_float16
from ..training import TrainConfig
from .cli import commit_result, default_out, map_jobs, script_parser, start

MODULE = "llmscratch.scripts.sft_course"
OUT = "data/part5_sft.json"

# A tenth of the course model's pretraining learning rate (2e-3), about two passes over the 2,430 examples.
SFT_TRAIN = TrainConfig(steps=300, batch_size=16, learning_rate=2e-4, warmup_steps=30, min_lr_ratio=0.1,
                        weight_decay=0.0, eval_interval=100, eval_batches=5, seed=42)
SETTINGS: list[tuple[str, bool]] = [("loss on the response", True), ("loss on the whole text", False)]
SEEDS = (42, 43, 44)
MAX_NEW_TOKENS = 48
SHOWN = 2  # responses kept per task, before and after


def _shown(examples: list, report: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {t: [] for t in TASKS}
    for example, response in zip(examples, report["responses"]):
        if len(out[example.task]) < SHOWN:
            out[example.task].append({"instruction": example.instruction, "expected": example.response,
                                      "response": response})
    return out


def score_model(model: torch.nn.Module, tokenizer: Any, examples: list,
                splits: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Held-out exact match per task, format, stopping, Shakespeare's validation loss, and the first answers."""
    report = evaluate_instructions(model, tokenizer, examples, MAX_NEW_TOKENS, use_cache=True)
    return {"exact": report["exact"], "format": report["format"], "stopped": report["stopped"],
            "tasks": report["tasks"], "shakespeare_val": rung_loss(model, splits), "shown": _shown(examples, report)}


def _one_run(name: str, mask_prompt: bool, cfg: TrainConfig, device: str, threads: int, progress: bool,
             keep: bool) -> dict[str, Any]:
    torch.set_num_threads(threads)
    _, splits, _ = shakespeare_bpe_splits()
    data = make_instructions(load_text("tinyshakespeare"))
    tuned = fine_tune_course_model(data, cfg, device, mask_prompt=mask_prompt, progress=progress,
                                   desc=f"{name} seed {cfg.seed}")
    model = round_to_float16(tuned.model)  # scored as it is stored: float16 weights (the .pt file)
    scores = score_model(model, tuned.tokenizer, data["val"], splits)
    print(f"{name:24s} seed {cfg.seed}  exact {scores['exact']:.3f}  format {scores['format']:.3f}  "
          f"stopped {scores['stopped']:.3f}  shakespeare {scores['shakespeare_val']:.4f}  ({tuned.seconds:.0f} s)",
          flush=True)
    history = tuned.history
    curve = {"step": history.eval_step, "train": history.eval_train, "val": history.eval_val}
    weights = {k: v.half() for k, v in model.state_dict().items()} if keep else None
    return {"scores": scores, "train_seconds": tuned.seconds, "curve": curve, "weights": weights}


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help=f"default {' '.join(map(str, SEEDS))}")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes (default 1)")
    args = parser.parse_args(argv)
    device, started = start(args)
    cfg = replace(SFT_TRAIN, steps=args.steps) if args.steps else SFT_TRAIN
    _, splits, _ = shakespeare_bpe_splits()
    data = make_instructions(load_text("tinyshakespeare"))
    base, tokenizer = load_course_model(verify=False)
    before = score_model(base, tokenizer, data["val"], splits)
    print(f"{'course model':24s}          exact {before['exact']:.3f}  format {before['format']:.3f}  "
          f"stopped {before['stopped']:.3f}  shakespeare {before['shakespeare_val']:.4f}", flush=True)
    calls = [(name, mask, replace(cfg, seed=seed), str(device), args.threads, not args.no_progress and args.jobs == 1,
              mask and seed == args.seeds[0]) for name, mask in SETTINGS for seed in args.seeds]
    runs = map_jobs(_one_run, calls, args.jobs)
    rows = []
    for i, (name, mask) in enumerate(SETTINGS):
        mine = runs[i * len(args.seeds):(i + 1) * len(args.seeds)]
        row: dict[str, Any] = {"name": name, "mask_prompt": mask, "seeds": list(args.seeds),
                               "train_seconds": round(statistics.fmean(r["train_seconds"] for r in mine), 1)}
        for key in ("exact", "format", "stopped", "shakespeare_val"):
            row[key] = [round(r["scores"][key], 5) for r in mine]
        row["tasks"] = [r["scores"]["tasks"] for r in mine]
        row["shown"] = mine[0]["scores"]["shown"]
        row["curves"] = [{"seed": s, **r["curve"]} for s, r in zip(args.seeds, mine)]
        rows.append(row)
    result: dict[str, Any] = {
        "what": "The course model fine-tuned on the course's instruction data (llmscratch.instructions, seed 0), "
                "loss on the response only or on the whole text, once per seed; scored on the held-out examples "
                "(greedy, exact match for the tasks with one answer, format adherence, stopping) and on Tiny "
                "Shakespeare's validation split (nats per token, the book's protocol)",
        "train_config": asdict(cfg),
        "examples": {split: len(v) for split, v in data.items()},
        "max_new_tokens": MAX_NEW_TOKENS,
        "course_model": {k: v for k, v in before.items()},
        "rows": rows,
    }
    out = Path(args.out) if args.out else default_out(OUT)
    kept = next((r["weights"] for r in runs if r["weights"] is not None), None)
    if kept is not None:
        with atomic_path(out.with_suffix(".pt")) as tmp:
            torch.save({"model_config": asdict(base.config), "model": kept}, tmp)
    commit_result(out, result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
