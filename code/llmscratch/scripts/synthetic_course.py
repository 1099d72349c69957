"""Synthetic instruction data: self-instruct in miniature, wrong answers injected, near-copies removed; 3 seeds each.

    python -m llmscratch.scripts.synthetic_course            # writes data/part5_synthetic.json and .pt
    python -m llmscratch.scripts.synthetic_course --jobs 2

First a *writer*: the course model fine-tuned like `sft_course` but with the loss on the whole
text, so it learns to write instructions as well as answers. It samples `N_GENERATED`
instructions from the ``### Instruction:`` header (`synthetic.sample_instructions`, temperature 1,
seed 0) and answers them greedily (`synthetic.answer_instructions`). The record counts what it
wrote: malformed, copies of training instructions, the templates it follows, and how many of its
checkable answers are right.

Then the course model is fine-tuned exactly as in `sft_course` (response loss, `SFT_TRAIN`, the
same seeds and steps) on each training set of `SETTINGS`:

- the 2,430 template examples (the reference);
- the templates plus everything the writer made;
- the templates with `NOISE` of the answers replaced by wrong ones (`synthetic.inject_noise`);
- a *repetitive* set of as many examples: half the templates, then `COPIES` near-copies of each
  of `SOURCES` of them (`synthetic.near_copies`), as a generator that repeats itself makes;
- that set after `synthetic.dedup_against` (exact, then MinHash at Jaccard `THRESHOLD`).

Each is scored on the held-out examples as `sft_course` scores (exact match, format, stopping,
Shakespeare's validation loss) and by the loss of the right held-out responses
(`sft.response_loss`, nats per response token), which moves before exact match does. The .pt file
holds the writer (float16), which the chapter samples from live.
"""

import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..data import load_text
from ..dedup import normalize
from ..experiments import shakespeare_bpe_splits
from ..fileio import atomic_path
from ..instructions import Example, make_instructions
from ..sft import fine_tune_course_model, response_loss, round_to_float16
from ..synthetic import (
    answer_instructions,
    dedup_against,
    inject_noise,
    label_accuracy,
    near_copies,
    sample_instructions,
    task_mix,
)
from ..training import TrainConfig
from .cli import commit_result, default_out, map_jobs, script_parser, start
from .sft_course import SFT_TRAIN, score_model

MODULE = "llmscratch.scripts.synthetic_course"
OUT = "data/part5_synthetic.json"
SEEDS = (42, 43, 44)
N_GENERATED = 2430  # as many instructions as the templates give
THRESHOLD = 0.8  # MinHash Jaccard above which an instruction is a near-duplicate
NOISE = 0.3
SOURCES, COPIES = 121, 10  # the repetitive set: 1,215 templates and 1,210 near-copies of 121 of them
SETTINGS = ("templates", "templates + self-instruct", f"templates, {NOISE:.0%} wrong answers", "repetitive",
            "repetitive, deduplicated")


def _one_run(name: str, examples: list[Example], cfg: TrainConfig, device: str, threads: int,
             progress: bool) -> dict[str, Any]:
    torch.set_num_threads(threads)
    _, splits, _ = shakespeare_bpe_splits()
    data = make_instructions(load_text("tinyshakespeare"))
    tuned = fine_tune_course_model({"train": examples, "val": data["val"]}, cfg, device, progress=progress,
                                   desc=f"{name} seed {cfg.seed}")
    model, tokenizer = tuned.model, tuned.tokenizer
    scores = score_model(model, tokenizer, data["val"], splits)
    scores["response_loss"] = response_loss(model, tokenizer, data["val"])
    print(f"{name:42s} seed {cfg.seed}  exact {scores['exact']:.3f}  format {scores['format']:.3f}  "
          f"response loss {scores['response_loss']:.4f}  shakespeare {scores['shakespeare_val']:.4f}  "
          f"({tuned.seconds:.0f} s)", flush=True)
    return {"scores": scores, "train_seconds": tuned.seconds}


def _writer(data: dict[str, list[Example]], cfg: TrainConfig, device: str) -> tuple[torch.nn.Module, Any]:
    tuned = fine_tune_course_model(data, cfg, device, mask_prompt=False)
    return round_to_float16(tuned.model), tuned.tokenizer  # used as it is stored: float16 weights


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help=f"default {' '.join(map(str, SEEDS))}")
    parser.add_argument("--generate", type=int, default=N_GENERATED,
                        help=f"instructions the writer samples (default {N_GENERATED})")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes (default 1)")
    args = parser.parse_args(argv)
    device, started = start(args)
    cfg = replace(SFT_TRAIN, steps=args.steps) if args.steps else SFT_TRAIN
    data = make_instructions(load_text("tinyshakespeare"))
    train_examples = data["train"]

    _, splits, _ = shakespeare_bpe_splits()
    torch.set_num_threads(max(args.threads, args.jobs))  # the writer trains alone: use the cores the runs will
    t0 = time.time()
    writer, tokenizer = _writer(data, cfg, str(device))
    writer_seconds = time.time() - t0
    writer_scores = score_model(writer, tokenizer, data["val"], splits)
    writer_scores["response_loss"] = response_loss(writer, tokenizer, data["val"])
    writer_scores.pop("shown")
    t0 = time.time()
    instructions = sample_instructions(writer, tokenizer, args.generate, seed=0)
    made = answer_instructions(writer, tokenizer, instructions)
    generate_seconds = time.time() - t0
    known = {normalize(e.instruction) for e in train_examples}
    noisy, changed = inject_noise(train_examples, NOISE, seed=0)
    half = train_examples[: len(train_examples) // 2]
    repetitive, sources = near_copies(half, SOURCES, COPIES, seed=0)
    kept, dedup_counts = dedup_against(repetitive, threshold=THRESHOLD)
    planted = set(range(len(half), len(repetitive)))
    dropped = set(range(len(repetitive))) - set(kept)
    generated = {
        "sampled": len(instructions),
        "malformed": sum(i is None for i in instructions),
        "answered": len(made),
        "copies_of_training": sum(normalize(e.instruction) in known for e in made),
        "tasks": task_mix(made),
        "labels": label_accuracy(made),
        "writer_seconds": round(writer_seconds, 1),
        "generate_seconds": round(generate_seconds, 1),
        "writer_scores": writer_scores,
        "examples": [{"task": e.task, "instruction": e.instruction, "response": e.response} for e in made],
    }
    print(f"writer: {generated['sampled']} sampled, {generated['malformed']} malformed, {len(made)} answered, "
          f"{generated['copies_of_training']} copies of training instructions, labels right "
          f"{generated['labels']['right']}/{generated['labels']['checkable']}; dedup of the repetitive set "
          f"{dedup_counts}", flush=True)
    torch.set_num_threads(args.threads)
    sets = dict(zip(SETTINGS, (train_examples, train_examples + made, noisy, repetitive,
                               [repetitive[i] for i in kept])))
    calls = [(name, sets[name], replace(cfg, seed=seed), str(device), args.threads,
              not args.no_progress and args.jobs == 1) for name in SETTINGS for seed in args.seeds]
    runs = map_jobs(_one_run, calls, args.jobs)
    rows = []
    for i, name in enumerate(SETTINGS):
        mine = runs[i * len(args.seeds):(i + 1) * len(args.seeds)]
        row: dict[str, Any] = {"name": name, "examples": len(sets[name]), "seeds": list(args.seeds),
                               "train_seconds": round(statistics.fmean(r["train_seconds"] for r in mine), 1)}
        for key in ("exact", "format", "stopped", "shakespeare_val", "response_loss"):
            row[key] = [round(r["scores"][key], 5) for r in mine]
        row["tasks"] = [r["scores"]["tasks"] for r in mine]
        rows.append(row)
    result: dict[str, Any] = {
        "what": "Self-instruct in miniature (a writer model trained on the whole text of the template examples "
                "samples instructions and answers them), wrong answers injected on purpose, and a repetitive set of "
                "near-copies before and after MinHash deduplication; the course model fine-tuned on each training "
                "set as in sft_course (3 seeds) and scored on the held-out template examples",
        "train_config": asdict(cfg),
        "threshold": THRESHOLD,
        "noise": {"rate": NOISE, "changed": len(changed)},
        "generated": generated,
        "repetitive": {"templates": len(half), "sources": sources, "copies": COPIES, "dedup": dedup_counts,
                       "precision": len(dropped & planted) / len(dropped),
                       "recall": len(dropped & planted) / len(planted)},
        "rows": rows,
    }
    out = Path(args.out) if args.out else default_out(OUT)
    with atomic_path(out.with_suffix(".pt")) as tmp:
        torch.save({"model_config": asdict(writer.config),
                    "model": {k: v.half() for k, v in writer.state_dict().items()}}, tmp)
    commit_result(out, result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
