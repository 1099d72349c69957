"""The course's own instruction data: templates over Tiny Shakespeare, and tasks whose answers are checked exactly.

    splits = make_instructions(text, seed=0)   # {"train": [Example, ...], "val": [Example, ...]}
    ids, prompt_length = encode_example(splits["train"][0], tokenizer, context_length=256)

Every example is an instruction and a response in one format,

    ### Instruction:
    Reverse the letters of: honest

    ### Response:
    tsenoh<|endoftext|>

and the model learns to stop by predicting the end-of-text token, which the course tokenizer
already has. Nine tasks (`TASKS`):

- over Tiny Shakespeare: who says a given line (``speaker``), who speaks after a given speech
  (``next_speaker``), and the next line of a speech in its speaker's voice (``continue``);
- formal tasks whose answers are computed: ``copy``, ``reverse`` (a word's letters), ``uppercase``,
  ``count`` (a letter in a word), ``arithmetic`` (sums and differences of numbers below 50) and
  ``sort`` (a few words, alphabetically).

All but ``continue`` are checked by exact match (`exact_match`); ``continue`` has many good
answers, and is scored by its loss instead.

**No leakage between splits.** The play is cut once: the training examples are made from the
speeches of its first 90%, the held-out ones from the rest, so no line is in both. The formal
tasks draw words from the whole play, so a held-out instruction that also appears among the
training ones is drawn again (`leakage_report` counts what is shared: it must be nothing).
The examples are a function of the text and the seed.

Left out: natural-language paraphrases of each template (each task has one wording, which makes
format adherence easy and generalisation to new wordings untested), and multi-turn dialogue.

References: Wei et al., "Finetuned Language Models Are Zero-Shot Learners" (ICLR 2022); Ouyang
et al., "Training language models to follow instructions with human feedback" (NeurIPS 2022);
Taori et al., "Alpaca" (2023) for the ``### Instruction:`` / ``### Response:`` format.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = ["END", "EXACT_TASKS", "Example", "FORMAL_TASKS", "SHAKESPEARE_TASKS", "Speech", "TASKS", "encode_example",
           "exact_match", "leakage_report", "make_instructions", "parse_speeches", "sft_targets", "split_example",
           "task_counts"]

END = "<|endoftext|>"
INSTRUCTION_HEADER = "### Instruction:\n"
RESPONSE_HEADER = "\n\n### Response:\n"
SHAKESPEARE_TASKS = ("speaker", "next_speaker", "continue")
FORMAL_TASKS = ("copy", "reverse", "uppercase", "count", "arithmetic", "sort")
TASKS = SHAKESPEARE_TASKS + FORMAL_TASKS
EXACT_TASKS = tuple(t for t in TASKS if t != "continue")
IGNORE = -100  # the target that F.cross_entropy skips


@dataclass(frozen=True)
class Example:
    """One instruction and its response; `source` is the speech a Shakespeare task was made from."""

    task: str
    instruction: str
    response: str
    source: int | None = None

    def prompt(self) -> str:
        """The text the model is given: the instruction in the course's format, up to the response header."""
        return f"{INSTRUCTION_HEADER}{self.instruction}{RESPONSE_HEADER}"

    def text(self) -> str:
        """The whole training text: prompt, response and the end-of-text token."""
        return self.prompt() + self.response + END


@dataclass(frozen=True)
class Speech:
    """One speech of the play: its position among the speeches, its speaker, and its lines."""

    index: int
    speaker: str
    lines: tuple[str, ...]


def parse_speeches(text: str) -> list[Speech]:
    """Cut Tiny Shakespeare into speeches: blocks separated by a blank line whose first line is ``Name:``.

    >>> [(s.speaker, s.lines) for s in parse_speeches("First Citizen:\\nSpeak.\\n\\nAll:\\nSpeak, speak.\\n")]
    [('First Citizen', ('Speak.',)), ('All', ('Speak, speak.',))]
    """
    speeches = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.strip().split("\n") if line.strip()]
        if len(lines) < 2 or not re.fullmatch(r"[A-Z][A-Za-z' ]*:", lines[0]):
            continue  # not a speech (a stage direction, or a block the cut split)
        speeches.append(Speech(len(speeches), lines[0][:-1], tuple(line.strip() for line in lines[1:])))
    if not speeches:
        raise ValueError("no speeches found: expected blocks of 'Name:' followed by lines, separated by blank lines")
    return speeches


# --- One generator per task: (rng, speeches of the split, word pool) -> Example, or None to draw again. ---

def _speaker(rng: random.Random, speeches: Sequence[Speech], words: Sequence[str]) -> Example | None:
    s = rng.choice(speeches)
    line = rng.choice(s.lines)
    if not 20 <= len(line) <= 80:
        return None
    return Example("speaker", f'Who says this line?\n"{line}"', s.speaker, s.index)


def _next_speaker(rng: random.Random, speeches: Sequence[Speech], words: Sequence[str]) -> Example | None:
    i = rng.randrange(len(speeches) - 1)
    s, after = speeches[i], speeches[i + 1]
    if after.index != s.index + 1 or not 20 <= len(s.lines[-1]) <= 80:
        return None
    return Example("next_speaker", f'{s.speaker} ends a speech with:\n"{s.lines[-1]}"\nWho speaks next?',
                   after.speaker, s.index)


def _continue(rng: random.Random, speeches: Sequence[Speech], words: Sequence[str]) -> Example | None:
    s = rng.choice(speeches)
    if len(s.lines) < 2:
        return None
    k = rng.randrange(len(s.lines) - 1)
    return Example("continue", f'Continue this speech by {s.speaker}:\n"{s.lines[k]}"', s.lines[k + 1], s.index)


def _copy(rng: random.Random, speeches: Sequence[Speech], words: Sequence[str]) -> Example:
    phrase = " ".join(rng.sample(words, rng.randint(2, 4)))
    return Example("copy", f"Copy exactly: {phrase}", phrase)


def _reverse(rng: random.Random, speeches: Sequence[Speech], words: Sequence[str]) -> Example:
    word = rng.choice(words)
    return Example("reverse", f"Reverse the letters of: {word}", word[::-1])


def _uppercase(rng: random.Random, speeches: Sequence[Speech], words: Sequence[str]) -> Example:
    phrase = " ".join(rng.sample(words, rng.randint(1, 3)))
    return Example("uppercase", f"Write in capitals: {phrase}", phrase.upper())


def _count(rng: random.Random, speeches: Sequence[Speech], words: Sequence[str]) -> Example:
    word = rng.choice(words)
    # Mostly a letter of the word (counts of 1, 2, 3 ...), sometimes one it lacks (a count of 0).
    letter = rng.choice(word) if rng.random() < 0.8 else rng.choice("abcdefghijklmnopqrstuvwxyz")
    return Example("count", f"How many times does the letter '{letter}' appear in \"{word}\"?", str(word.count(letter)))


def _arithmetic(rng: random.Random, speeches: Sequence[Speech], words: Sequence[str]) -> Example:
    a, b = rng.randrange(50), rng.randrange(50)
    if rng.random() < 0.5:
        return Example("arithmetic", f"What is {a} + {b}?", str(a + b))
    a, b = max(a, b), min(a, b)  # no negative answers
    return Example("arithmetic", f"What is {a} - {b}?", str(a - b))


def _sort(rng: random.Random, speeches: Sequence[Speech], words: Sequence[str]) -> Example:
    chosen = rng.sample(words, rng.randint(3, 4))
    return Example("sort", f"Sort these words alphabetically: {' '.join(chosen)}", " ".join(sorted(chosen)))


_MAKERS: dict[str, Callable[[random.Random, Sequence[Speech], Sequence[str]], Example | None]] = {
    "speaker": _speaker, "next_speaker": _next_speaker, "continue": _continue, "copy": _copy, "reverse": _reverse,
    "uppercase": _uppercase, "count": _count, "arithmetic": _arithmetic, "sort": _sort,
}


def _word_pool(speeches: Sequence[Speech]) -> list[str]:
    """Distinct lowercase words of 3 to 8 letters, in the order they first appear."""
    seen: dict[str, None] = {}
    for s in speeches:
        for line in s.lines:
            for word in re.findall(r"\b[a-z]+\b", line):  # whole lowercase words, not the tail of "Looking"
                if 3 <= len(word) <= 8:
                    seen.setdefault(word, None)
    return list(seen)


def make_instructions(text: str, n_train: int = 2430, n_val: int = 360, seed: int = 0,
                      val_fraction: float = 0.1) -> dict[str, list[Example]]:
    """The train and held-out examples, the same number of each task, a function of `text` and `seed`.

    `n_train` and `n_val` are rounded down to a multiple of the number of tasks. The held-out
    examples come from the last `val_fraction` of the speeches (Shakespeare tasks), and none of
    their instructions is a training instruction.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    if n_train < len(TASKS) or n_val < len(TASKS):
        raise ValueError(f"need at least one example per task: n_train and n_val >= {len(TASKS)}")
    speeches = parse_speeches(text)
    cut = int(len(speeches) * (1 - val_fraction))
    parts = {"train": speeches[:cut], "val": speeches[cut:]}
    words = _word_pool(speeches)
    out: dict[str, list[Example]] = {}
    taken: set[str] = set()  # instructions already used, across both splits
    for offset, (split, n) in enumerate((("train", n_train), ("val", n_val))):
        rng = random.Random(seed * 1_000_003 + offset)
        examples = []
        for task in TASKS:
            made, attempts = 0, 0
            while made < n // len(TASKS):
                attempts += 1
                if attempts > 200 * n:
                    raise ValueError(f"could not draw {n // len(TASKS)} distinct {task!r} examples for {split!r}; "
                                     "the text is too small")
                example = _MAKERS[task](rng, parts[split], words)
                if example is None or example.instruction in taken:
                    continue
                taken.add(example.instruction)
                examples.append(example)
                made += 1
        rng.shuffle(examples)
        out[split] = examples
    return out


def leakage_report(splits: dict[str, list[Example]]) -> dict[str, int]:
    """What the train and val splits share: instructions, (instruction, response) pairs, and source speeches."""
    train, val = splits["train"], splits["val"]
    return {
        "shared_instructions": len({e.instruction for e in train} & {e.instruction for e in val}),
        "shared_pairs": len({(e.instruction, e.response) for e in train} & {(e.instruction, e.response) for e in val}),
        "shared_speeches": len({e.source for e in train if e.source is not None}
                               & {e.source for e in val if e.source is not None}),
    }


def task_counts(examples: Sequence[Example]) -> dict[str, int]:
    """Examples per task, in the order of `TASKS`."""
    counts = Counter(e.task for e in examples)
    return {task: counts[task] for task in TASKS}


def split_example(text: str) -> tuple[str, str]:
    """Read ``(instruction, response)`` back from an example's text; the response must end with `END`."""
    if not text.startswith(INSTRUCTION_HEADER) or RESPONSE_HEADER not in text:
        raise ValueError(f"not an example: expected {INSTRUCTION_HEADER!r} ... {RESPONSE_HEADER!r} ...")
    instruction, response = text[len(INSTRUCTION_HEADER):].split(RESPONSE_HEADER, 1)
    if not response.endswith(END):
        raise ValueError(f"the response does not end with the end-of-text token {END}: the model would never "
                         "learn to stop")
    return instruction, response[: -len(END)]


def encode_example(example: Example, tokenizer, context_length: int) -> tuple[list[int], int]:  # noqa: ANN001
    """Token ids of ``example.text()`` and the number of them that are the prompt.

    Raises ValueError when the tokenizer has no `END` token, or when the example is longer than
    `context_length` tokens (it could not be trained on whole).
    """
    if END not in getattr(tokenizer, "special_tokens", {}):
        raise ValueError(f"the tokenizer has no {END} token, which marks the end of every response")
    prompt = tokenizer.encode(example.prompt())
    ids = prompt + tokenizer.encode(example.response) + [tokenizer.special_tokens[END]]
    if len(ids) > context_length:
        raise ValueError(f"the {example.task!r} example is {len(ids)} tokens, longer than the context of "
                         f"{context_length}: {example.instruction[:40]!r}...")
    return ids, len(prompt)


def sft_targets(ids: Sequence[int], prompt_length: int, mask_prompt: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and next-token targets for one example, (len - 1,) each; prompt targets are -100 when `mask_prompt`.

    Position i predicts token i + 1: the targets inside the prompt (positions before
    ``prompt_length - 1``) get no loss, so the model learns the responses, not the instructions.

    >>> x, y = sft_targets([5, 6, 7, 8], prompt_length=2)
    >>> x.tolist(), y.tolist()
    ([5, 6, 7], [-100, 7, 8])
    """
    if not 1 <= prompt_length < len(ids):
        raise ValueError(f"prompt_length must leave at least one response token: 1 <= {prompt_length} < {len(ids)}")
    ids_t = torch.tensor(ids)
    x, y = ids_t[:-1], ids_t[1:].clone()
    if mask_prompt:
        y[: prompt_length - 1] = IGNORE
    return x, y


def exact_match(generated: str, example: Example) -> bool:
    """Whether a generated response, cut at the end-of-text token and stripped of spaces, is the expected one."""
    if example.task not in EXACT_TASKS:
        raise ValueError(f"task {example.task!r} has no single right answer; score it by its loss")
    return generated.split(END, 1)[0].strip() == example.response
