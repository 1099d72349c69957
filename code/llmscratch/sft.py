"""Instruction tuning: batches of examples with the prompt masked out, and the evaluation on held-out instructions.

    batches = InstructionBatches({"train": train_examples, "val": val_examples}, tokenizer, context_length=256)
    train(model, batches, TrainConfig(learning_rate=3e-4, ...))      # the ordinary training loop
    report = evaluate_instructions(model, tokenizer, val_examples)    # exact match per task, format, stopping

`InstructionBatches` returns ``(x, y)`` like every batcher of the course, so `train` needs no
change: each row is one example (`llmscratch.instructions.encode_example`), padded on the right
with the end-of-text token to the longest row of the batch, and its targets are -100 on the
padding and, with ``mask_prompt=True``, on the prompt. A padded row is the same sequence with
more tokens after it; a causal model's outputs at the real positions cannot see them, so the
padding changes nothing but the time.

`evaluate_instructions` generates a response to each prompt (greedy by default, stopping at the
end-of-text token) and reports, per task and overall:

- ``exact``: the share of answers equal to the expected response (`instructions.exact_match`), for
  the tasks that have one right answer;
- ``format``: the share of answers that are well-formed: the model stopped within the budget,
  said something, and did not start a new ``###`` section;
- ``stopped``: the share that ended with the end-of-text token within the budget.

`fine_tune_course_model` is the one recipe every Part 5 run tunes the course model with, and
`round_to_float16` rounds a model to what its committed ``.pt`` file holds. `majority_answers`
and `counting_bigram` are the two baselines of the chapters' tables.

Left out: packing several examples into one row, and chat templates with roles.

References: Wei et al., "Finetuned Language Models Are Zero-Shot Learners" (ICLR 2022); Ouyang et
al., "Training language models to follow instructions with human feedback" (NeurIPS 2022).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .bigram import BigramLM, CountingBigram
from .bpe import BPETokenizer
from .config import GPTConfig
from .course import load_course_model
from .data import results_dir
from .instructions import END, EXACT_TASKS, TASKS, Example, encode_example, exact_match
from .model import GPT
from .runtime import eval_mode
from .sampling import generate_batch
from .training import History, TrainConfig, train

__all__ = ["InstructionBatches", "Tuned", "counting_bigram", "evaluate_instructions", "fine_tune_course_model",
           "generate_responses", "load_sft_model", "load_tuned_model", "majority_answers", "response_loss",
           "round_to_float16"]

IGNORE = -100


class InstructionBatches:
    """Random batches of encoded examples per split: ``batches(split, batch_size, generator) -> (x, y)``."""

    def __init__(self, splits: Mapping[str, Sequence[Example]], tokenizer: Any, context_length: int,
                 mask_prompt: bool = True) -> None:
        self.end_id = tokenizer.special_tokens.get(END) if hasattr(tokenizer, "special_tokens") else None
        if self.end_id is None:
            raise ValueError(f"the tokenizer has no {END} token")
        self.mask_prompt = mask_prompt
        self.splits: dict[str, list[tuple[list[int], int]]] = {}
        for name, examples in splits.items():
            if not examples:
                raise ValueError(f"split {name!r} has no examples")
            # encode_example raises for an example longer than the context
            self.splits[name] = [encode_example(e, tokenizer, context_length + 1) for e in examples]

    def __call__(self, split: str, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in self.splits:
            raise KeyError(f"no split {split!r}; have {sorted(self.splits)}")
        pool = self.splits[split]
        rows = torch.randint(len(pool), (batch_size,), generator=generator).tolist()
        width = max(len(pool[r][0]) for r in rows) - 1  # inputs drop the last token, targets the first
        x = torch.full((batch_size, width), self.end_id, dtype=torch.long)
        y = torch.full((batch_size, width), IGNORE, dtype=torch.long)
        for i, r in enumerate(rows):
            ids, prompt_length = pool[r]
            n = len(ids) - 1
            x[i, :n] = torch.tensor(ids[:-1])
            y[i, :n] = torch.tensor(ids[1:])
            if self.mask_prompt:
                y[i, : prompt_length - 1] = IGNORE  # position i predicts token i + 1: the prompt's tokens get no loss
        return x, y


@torch.no_grad()
def response_loss(model: torch.nn.Module, tokenizer: Any, examples: Sequence[Example], batch_size: int = 64) -> float:
    """Mean cross-entropy (nats) per response token, end-of-text token included, over all `examples`.

    Every example once, in order, so the figure is exact and the same on every call: the held-out
    counterpart of the training loss with the prompt masked. Lower means the right answers are likelier.
    """
    if not examples:
        raise ValueError("no examples to score")
    batches = InstructionBatches({"all": examples}, tokenizer, model.context_length)
    pool = batches.splits["all"]
    total, count = 0.0, 0
    with eval_mode(model):
        for start in range(0, len(pool), batch_size):
            rows = pool[start:start + batch_size]
            width = max(len(ids) for ids, _ in rows) - 1
            x = torch.full((len(rows), width), batches.end_id, dtype=torch.long)
            y = torch.full((len(rows), width), IGNORE, dtype=torch.long)
            for i, (ids, prompt_length) in enumerate(rows):
                x[i, :len(ids) - 1] = torch.tensor(ids[:-1])
                y[i, prompt_length - 1:len(ids) - 1] = torch.tensor(ids[prompt_length:])
            logits, _ = model(x)
            total += F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE, reduction="sum").item()
            count += int((y != IGNORE).sum())
    return total / count


def generate_responses(model: torch.nn.Module, tokenizer: Any, examples: Sequence[Example], max_new_tokens: int = 48,
                       **options: Any) -> list[tuple[str, bool]]:
    """Each example's generated response and whether it ended with the end-of-text token within `max_new_tokens`.

    Greedy unless `options` (those of `sampling.generate`) say otherwise.
    """
    end_id = tokenizer.special_tokens[END]
    options = {"temperature": 0.0, **options}
    prompts = [tokenizer.encode(e.prompt()) for e in examples]
    with eval_mode(model):
        new = generate_batch(model, prompts, max_new_tokens + 1, stop_id=end_id, **options)
    # A row that stopped is shorter than the budget: generate leaves the stop token out.
    return [(tokenizer.decode(ids), len(ids) <= max_new_tokens) for ids in new]


def evaluate_instructions(model: torch.nn.Module, tokenizer: Any, examples: Sequence[Example],
                          max_new_tokens: int = 48, **options: Any) -> dict[str, Any]:
    """Exact match, format adherence and stopping, overall and per task, plus every response (see the module)."""
    answers = generate_responses(model, tokenizer, examples, max_new_tokens, **options)
    per_task: dict[str, dict[str, list[bool]]] = {t: {"exact": [], "format": [], "stopped": []} for t in TASKS}
    for example, (text, stopped) in zip(examples, answers):
        scores = per_task[example.task]
        scores["stopped"].append(stopped)
        scores["format"].append(stopped and bool(text.strip()) and "###" not in text)
        if example.task in EXACT_TASKS:
            scores["exact"].append(stopped and exact_match(text, example))

    def share(values: list[bool]) -> float | None:
        return sum(values) / len(values) if values else None

    report: dict[str, Any] = {
        "tasks": {t: {k: share(v) for k, v in s.items()} for t, s in per_task.items() if s["stopped"]},
        "responses": [text for text, _ in answers],
    }
    for key in ("exact", "format", "stopped"):
        report[key] = share([v for s in per_task.values() for v in s[key]])
    return report


def majority_answers(examples: Sequence[Example]) -> dict[str, str]:
    """Each exact-match task's most common response among `examples`: the baseline that never reads the instruction.

    >>> from llmscratch.instructions import Example
    >>> majority_answers([Example("count", "a", "1"), Example("count", "b", "1"), Example("count", "c", "2")])
    {'count': '1'}
    """
    answers: dict[str, Counter[str]] = {}
    for e in examples:
        if e.task in EXACT_TASKS:
            answers.setdefault(e.task, Counter())[e.response] += 1
    return {t: answers[t].most_common(1)[0][0] for t in EXACT_TASKS if t in answers}


def counting_bigram(examples: Sequence[Example], tokenizer: Any, context_length: int = 256) -> BigramLM:
    """The counting bigram of the examples' tokens (prompt, response and end-of-text), as a scoring module.

    Each example is one sequence whose boundary is the end-of-text token, so the table also learns
    which tokens end a response: `evaluate_instructions` and `response_loss` score it as they score a GPT.
    """
    end_id = tokenizer.special_tokens[END]
    texts = [encode_example(e, tokenizer, 10**9)[0][:-1] for e in examples]  # the boundary adds the end back
    return BigramLM(CountingBigram.fit(texts, tokenizer.vocab_size, boundary_id=end_id), context_length=context_length)


def round_to_float16(model: torch.nn.Module) -> torch.nn.Module:
    """Round every floating-point weight to float16 and back, in place: the model as its ``.pt`` file stores it."""
    model.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in model.state_dict().items()})
    return model


@dataclass
class Tuned:
    """What `fine_tune_course_model` returns: the tuned model (CPU, eval mode), its tokenizer and the run."""

    model: GPT
    tokenizer: BPETokenizer
    history: History
    seconds: float  # wall time of the training, batching included


def fine_tune_course_model(data: Mapping[str, Sequence[Example]], cfg: TrainConfig, device: str = "cpu",
                           mask_prompt: bool = True, progress: bool = False, desc: str = "training") -> Tuned:
    """The committed course model fine-tuned on ``data["train"]`` (``data["val"]`` for its evaluations).

    The one recipe of Part 5's instruction-tuning runs: a fresh copy of the course model, the seed
    ``cfg.seed`` set just before the batches are made, `InstructionBatches` (the prompt's loss
    masked unless `mask_prompt` is False) and the ordinary `training.train` loop.
    """
    model, tokenizer = load_course_model(verify=False)
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    batches = InstructionBatches(data, tokenizer, model.context_length, mask_prompt=mask_prompt)
    history = train(model.to(device), batches, cfg, progress=progress, desc=desc)
    model = model.cpu().eval()
    return Tuned(model, tokenizer, history, time.time() - t0)


def load_sft_model() -> tuple[GPT, BPETokenizer]:
    """The committed instruction-tuned course model (``data/part5_sft.pt``, float16 on disk) and its tokenizer.

    CPU, float32, evaluation mode. Raises `FileNotFoundError` naming the command that makes it.
    """
    return load_tuned_model("part5_sft.pt", "sft_course")


def load_tuned_model(filename: str, script: str) -> tuple[GPT, BPETokenizer]:
    """A committed fine-tuned course model, ``data/<filename>`` (float16 on disk), and the course tokenizer.

    CPU, float32, evaluation mode. Raises `FileNotFoundError` naming ``python -m llmscratch.scripts.<script>``.
    """
    path = results_dir() / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run python -m llmscratch.scripts.{script}")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = GPT(GPTConfig(**saved["model_config"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in saved["model"].items()})
    return model.eval(), BPETokenizer.load(results_dir() / "bpe_tokenizer.json")
