"""Synthetic instruction data: examples a model writes itself, wrong answers put in on purpose, and deduplication.

    instructions = sample_instructions(writer, tokenizer, n=2430, seed=0)   # the model writes instructions
    made = answer_instructions(writer, tokenizer, instructions)           # ... and answers them: Examples
    kept, counts = dedup_against(made, existing)                          # positions of what is new
    noisy, changed = inject_noise(examples, rate=0.3, seed=0)             # a known share of wrong answers

**Templates** are the first way to make data (`llmscratch.instructions`): a program writes the
instruction and computes the answer, so every answer is right and every task is covered equally,
but the wording never varies. **Self-instruct** (Wang et al., 2023) is the second: a model writes
new instructions and answers them, and filters throw away what is malformed or too similar to
what the pool already holds. Here in miniature: the writer is the course model fine-tuned on the
whole text of the template examples (so it learned to write instructions, not only answers),
`sample_instructions` samples from the ``### Instruction:`` header, and `answer_instructions`
takes the writer's greedy answer.

`recognise` names the template an instruction follows (or ``"other"``), and `solve` computes the
right answer of a formal task from its instruction alone, so the quality of the model's own answers
is a number (`label_accuracy`), not an impression.

**Noise injection** (`inject_noise`) replaces a chosen share of the answers with the answer of
another example of the same task: a plausible wrong answer, as a careless annotator or a weak model
would give. It measures what a known rate of wrong labels costs.

**Deduplication against a pool** (`dedup_against`) drops a new example whose instruction is an
exact duplicate (after `dedup.normalize`) of one already kept, or a near-duplicate by MinHash
(`dedup.near_duplicates`) at the given Jaccard threshold. Template instructions differ in a word or
a number, so their character shingles overlap a lot: the threshold has to sit above that.

Left out: using a stronger model as the teacher (distillation), filtering by a reward model, and
paraphrasing the templates.

References: Wang et al., "Self-Instruct: Aligning Language Models with Self-Generated Instructions"
(ACL 2023); Taori et al., "Alpaca" (2023); Lee et al., "Deduplicating Training Data Makes Language
Models Better" (ACL 2022).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch

from .dedup import near_duplicates, normalize, perturb
from .instructions import END, FORMAL_TASKS, INSTRUCTION_HEADER, RESPONSE_HEADER, TASKS, Example
from .runtime import eval_mode
from .sampling import generate_batch
from .sft import generate_responses

__all__ = ["TEMPLATES", "answer_instructions", "dedup_against", "inject_noise", "label_accuracy", "near_copies",
           "recognise", "sample_instructions", "solve", "task_mix"]

# One pattern per template of `llmscratch.instructions`, matching the whole instruction.
TEMPLATES: dict[str, re.Pattern[str]] = {
    "speaker": re.compile(r'Who says this line\?\n"(.+)"'),
    "next_speaker": re.compile(r'([A-Za-z\' ]+) ends a speech with:\n"(.+)"\nWho speaks next\?'),
    "continue": re.compile(r'Continue this speech by ([A-Za-z\' ]+):\n"(.+)"'),
    "copy": re.compile(r"Copy exactly: (.+)"),
    "reverse": re.compile(r"Reverse the letters of: (\S+)"),
    "uppercase": re.compile(r"Write in capitals: (.+)"),
    "count": re.compile(r"How many times does the letter '(.)' appear in \"([^\"]+)\"\?"),
    "arithmetic": re.compile(r"What is (\d+) ([+-]) (\d+)\?"),
    "sort": re.compile(r"Sort these words alphabetically: (.+)"),
}
assert tuple(TEMPLATES) == TASKS


def recognise(instruction: str) -> str:
    """The task whose template `instruction` follows exactly, or ``"other"``.

    >>> recognise("Reverse the letters of: honest"), recognise("Reverse the letters, please")
    ('reverse', 'other')
    """
    for task, pattern in TEMPLATES.items():
        if pattern.fullmatch(instruction):
            return task
    return "other"


def solve(instruction: str) -> str | None:
    """The right answer to a formal task's instruction, computed from it; None for any other instruction.

    >>> solve("What is 12 + 30?"), solve("Write in capitals: good night"), solve("Who says this line?\\n\\"Ay.\\"")
    ('42', 'GOOD NIGHT', None)
    """
    task = recognise(instruction)
    m = TEMPLATES[task].fullmatch(instruction) if task != "other" else None
    if m is None:
        return None
    if task == "copy":
        return m.group(1)
    if task == "reverse":
        return m.group(1)[::-1]
    if task == "uppercase":
        return m.group(1).upper()
    if task == "count":
        return str(m.group(2).count(m.group(1)))
    if task == "arithmetic":
        a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
        return str(a + b if op == "+" else a - b)
    if task == "sort":
        return " ".join(sorted(m.group(1).split()))
    return None  # the Shakespeare tasks: the answer is in the play, not in the instruction


def sample_instructions(model: torch.nn.Module, tokenizer: Any, n: int, seed: int = 0, temperature: float = 1.0,
                        max_tokens: int = 64, batch_size: int = 128) -> list[str | None]:
    """`n` instructions sampled from the ``### Instruction:`` header: the text before the response header.

    An entry is None when the model did not reach the response header within `max_tokens`, or
    wrote an empty instruction (malformed: the first filter of self-instruct). Reproducible: the
    samples come from one generator seeded with `seed`.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not temperature > 0:
        raise ValueError(f"sampling needs a temperature above 0, got {temperature}")
    header = tokenizer.encode(INSTRUCTION_HEADER)
    end_id = tokenizer.special_tokens[END]
    generator = torch.Generator().manual_seed(seed)
    out: list[str | None] = []
    with eval_mode(model):
        for start in range(0, n, batch_size):
            rows = [list(header)] * min(batch_size, n - start)
            for ids in generate_batch(model, rows, max_tokens, temperature=temperature, stop_id=end_id,
                                      generator=generator, use_cache=True):
                text = tokenizer.decode(ids)
                instruction = text.split(RESPONSE_HEADER, 1)[0].strip() if RESPONSE_HEADER in text else ""
                out.append(instruction or None)
    return out


def answer_instructions(model: torch.nn.Module, tokenizer: Any, instructions: Sequence[str | None],
                        max_new_tokens: int = 48) -> list[Example]:
    """The model's greedy answers to the well-formed instructions, as Examples (task: `recognise`).

    Answers that did not stop within `max_new_tokens`, or are empty, are dropped (the second filter).
    """
    kept = [i for i in instructions if i]
    examples = [Example(recognise(i), i, "") for i in kept]
    if not examples:
        return []
    answers = generate_responses(model, tokenizer, examples, max_new_tokens, use_cache=True)
    return [Example(e.task, e.instruction, text.strip()) for e, (text, stopped) in zip(examples, answers)
            if stopped and text.strip()]


def label_accuracy(examples: Sequence[Example]) -> dict[str, Any]:
    """Of the examples whose answer `solve` can compute, how many have it: overall and per formal task."""
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for e in examples:
        answer = solve(e.instruction)
        if answer is not None:
            total[e.task] += 1
            right[e.task] += e.response == answer
    share = sum(right.values()) / sum(total.values()) if total else None
    return {"checkable": sum(total.values()), "right": sum(right.values()), "share": share,
            "tasks": {t: {"checkable": total[t], "right": right[t]} for t in TASKS if total[t]}}


def task_mix(examples: Sequence[Example]) -> dict[str, int]:
    """Examples per task, in the order of `TASKS`, then ``"other"``."""
    counts = Counter(e.task for e in examples)
    return {task: counts[task] for task in (*TASKS, "other")}


def inject_noise(examples: Sequence[Example], rate: float, seed: int = 0) -> tuple[list[Example], list[int]]:
    """A copy of `examples` where a share `rate` of them answer wrongly, and the positions changed.

    A chosen example takes the response of another example of the same task whose response differs
    (a plausible wrong answer: another number, another name). An example whose task has no
    differing response stays as it is, so the share changed can fall a little below `rate`.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must lie in [0, 1], got {rate}")
    rng = random.Random(seed)
    by_task: dict[str, list[str]] = {}
    for e in examples:
        by_task.setdefault(e.task, []).append(e.response)
    out = list(examples)
    changed = []
    for i in sorted(rng.sample(range(len(examples)), round(rate * len(examples)))):
        e = examples[i]
        wrong = [r for r in by_task[e.task] if r != e.response]
        if wrong:
            out[i] = Example(e.task, e.instruction, rng.choice(wrong), e.source)
            changed.append(i)
    return out, changed


def dedup_against(new: Sequence[Example], existing: Sequence[Example] = (), threshold: float = 0.9,
                  **minhash: Any) -> tuple[list[int], dict[str, int]]:
    """The positions in `new` of the examples whose instruction repeats nothing kept before it, and the counts.

    The pool is `existing` (all kept) followed by `new` in order. A new example is dropped when its
    instruction equals, after `dedup.normalize`, an instruction already in the pool (``exact``), or
    is a MinHash near-duplicate at Jaccard `threshold` of one (``near``); `minhash` are the options
    of `dedup.near_duplicates`. The counts are ``{"kept", "exact", "near"}``.
    """
    texts = [e.instruction for e in existing] + [e.instruction for e in new]
    similar: dict[int, list[int]] = {}
    for i, j, _ in near_duplicates(texts, threshold=threshold, **minhash):
        similar.setdefault(j, []).append(i)
    seen = {normalize(e.instruction) for e in existing}
    kept_positions = set(range(len(existing)))
    kept: list[int] = []
    counts = {"kept": 0, "exact": 0, "near": 0}
    for offset, example in enumerate(new):
        j = len(existing) + offset
        key = normalize(example.instruction)
        if key in seen:
            counts["exact"] += 1
        elif not kept_positions.isdisjoint(similar.get(j, ())):
            counts["near"] += 1
        else:
            seen.add(key)
            kept_positions.add(j)
            kept.append(offset)
            counts["kept"] += 1
    return kept, counts


def _near_copies_of(e: Example, copies: int, rng: random.Random) -> list[Example] | None:
    lines = e.instruction.split("\n")
    longest = max(range(len(lines)), key=lambda k: len(lines[k].split()))  # the line with the content
    made: list[Example] = []
    for _ in range(20 * copies):
        if len(made) == copies:
            return made
        edited = lines[:longest] + [perturb(lines[longest], rng, 1)] + lines[longest + 1:]
        instruction = "\n".join(edited)
        if instruction == e.instruction or recognise(instruction) != e.task:
            continue  # the edit changed nothing, or broke the template: draw again
        response = solve(instruction) if e.task in FORMAL_TASKS else e.response
        made.append(Example(e.task, instruction, response or e.response, e.source))
    return made if len(made) == copies else None


def near_copies(examples: Sequence[Example], sources: int, copies: int,
                seed: int = 0) -> tuple[list[Example], list[int]]:
    """`examples` followed by `copies` near-copies of each of `sources` of them, and the sources' positions.

    A near-copy is the instruction after one small edit (`dedup.perturb`: a letter, a word
    dropped, doubled or swapped, a case or a mark) that still follows the task's template, with
    its answer computed again (`solve`) for a formal task; a Shakespeare task keeps its answer. So
    every copy is a right example, and the set is what a generator that repeats itself makes:
    the same few examples, again and again, with small differences. The sources are drawn at
    random among the examples that take such edits; the copies follow in the order of `chosen`.
    """
    if not 0 <= sources <= len(examples):
        raise ValueError(f"sources must lie between 0 and the number of examples ({len(examples)}), got {sources}")
    if copies < 0:
        raise ValueError(f"copies must be at least 0, got {copies}")
    rng = random.Random(seed)
    out = list(examples)
    chosen: list[int] = []
    for i in rng.sample(range(len(examples)), len(examples)):  # candidates in a random order
        if len(chosen) == sources:
            break
        made = _near_copies_of(examples[i], copies, rng)
        if made is not None:  # None: its template breaks under almost every edit (a short sum)
            chosen.append(i)
            out.extend(made)
    if len(chosen) < sources:
        raise ValueError(f"only {len(chosen)} examples take {copies} near-copies that keep their template")
    return out, chosen
