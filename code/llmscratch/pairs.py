"""The course's preference pairs: one prompt, a response people would prefer, and one they would not.

    pairs = make_pairs(splits, seed=0)     # {"train": [Pair, ...], "val": [Pair, ...]}
    pairs["train"][0].kind, pairs["train"][0].chosen, pairs["train"][0].rejected

Each pair is made from an instruction example of `llmscratch.instructions` by spoiling its right
answer in one of four ways (`KINDS`), so which response is better is known, not judged:

- ``correct``: the chosen response is the right answer, the rejected one the answer to another
  example of the same task ("TRANIO" for a line PROSPERO says, 56 for 23 + 22): well-formed,
  plausible, wrong. Only the tasks with one right answer (`instructions.EXACT_TASKS`).
- ``complete``: the rejected response stops early, at about half of the answer's words (or
  letters, for a one-word answer), and then ends as if it were done.
- ``format``: the rejected response does not stop: after the answer it opens a new
  ``### Instruction:`` section, which is what an instruction-tuned model that has not learnt to
  stop writes.
- ``polite``: both responses carry the right answer with a phrase added, a courteous one for the
  chosen, a rude one for the rejected. The training and held-out pairs use different phrases, so
  a reward model that scores held-out ones right has learnt something about tone, not a list.

The kinds pull length both ways: a complete answer is longer than its truncation, an on-format
one shorter than its run-on, and the polite and rude phrases are about the same length. A reward
model that learnt "longer is better" would get the ``format`` pairs wrong.

Deterministic under `seed`; the held-out pairs are made from the held-out examples only.

Left out: preferences between two samples of a model, judged by people or by another model
(how real preference data is made), and ties.

References: Ouyang et al., "Training language models to follow instructions with human feedback"
(NeurIPS 2022); Bai et al., "Training a Helpful and Harmless Assistant with RLHF" (2022).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .instructions import EXACT_TASKS, INSTRUCTION_HEADER, Example

__all__ = ["KINDS", "Pair", "make_pairs", "spoil"]

KINDS = ("correct", "complete", "format", "polite")

# Courteous and rude phrases, a prefix or a suffix; the first three of each list make the
# training pairs, the rest the held-out ones.
_POLITE = (("Gladly: ", ""), ("", " I hope this helps."), ("Of course. ", ""),
           ("Certainly: ", ""), ("", " Happy to help."), ("With pleasure: ", ""))
_RUDE = (("Obviously, fool: ", ""), ("", " Now leave me, knave."), ("Ugh. ", ""),
         ("Any dolt knows: ", ""), ("", " Stop wasting my time."), ("Pah, idiot: ", ""))
_TRAIN_PHRASES = 3


@dataclass(frozen=True)
class Pair:
    """A prompt's example, the preferred response, the other one, and how the other was spoiled."""

    example: Example
    chosen: str
    rejected: str
    kind: str

    def prompt(self) -> str:
        return self.example.prompt()


def _truncate(answer: str) -> str | None:
    words = answer.split(" ")
    if len(words) >= 2:
        return " ".join(words[: max(1, len(words) // 2)])
    if len(answer) >= 4:
        return answer[: len(answer) // 2]
    return None  # too short to cut ("2", "ROMEO" cut in half is still a name-like token)


def spoil(example: Example, kind: str, rng: random.Random, same_task: Sequence[Example],
          others: Sequence[Example], held_out: bool = False) -> tuple[str, str] | None:
    """(chosen, rejected) for `example` spoiled as `kind`, or None when this example cannot be spoiled so.

    `same_task` are examples of the same task (wrong answers come from them), `others` any
    examples (a run-on's next instruction comes from them); `held_out` picks the held-out phrases.
    """
    answer = example.response
    if kind == "correct":
        if example.task not in EXACT_TASKS:
            return None
        wrong = [e.response for e in rng.sample(list(same_task), min(8, len(same_task))) if e.response != answer]
        return (answer, wrong[0]) if wrong else None
    if kind == "complete":
        cut = _truncate(answer)
        return (answer, cut) if cut else None
    if kind == "format":
        following = rng.choice(list(others))
        return answer, f"{answer}\n\n{INSTRUCTION_HEADER}{following.instruction}"
    if kind == "polite":
        lo, hi = (_TRAIN_PHRASES, len(_POLITE)) if held_out else (0, _TRAIN_PHRASES)
        (p1, p2), (r1, r2) = _POLITE[rng.randrange(lo, hi)], _RUDE[rng.randrange(lo, hi)]
        return f"{p1}{answer}{p2}", f"{r1}{answer}{r2}"
    raise ValueError(f"unknown kind {kind!r}; choose from {KINDS}")


def make_pairs(splits: Mapping[str, Sequence[Example]], seed: int = 0,
               kinds: Sequence[str] = KINDS) -> dict[str, list[Pair]]:
    """Preference pairs for every split of `splits` (see the module): each example spoiled once, by one kind.

    The kinds take turns over the examples, so each kind gets about the same number; an example
    that cannot be spoiled by its turn's kind (a one-letter answer cannot be truncated) is spoiled
    by the next kind that can. Split names other than "train" use the held-out phrases.
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {list(kinds)}")
    out: dict[str, list[Pair]] = {}
    for offset, (split, examples) in enumerate(splits.items()):
        if not examples:
            raise ValueError(f"split {split!r} has no examples")
        rng = random.Random(seed * 1_000_003 + 17 + offset)
        by_task: dict[str, list[Example]] = defaultdict(list)
        for e in examples:
            by_task[e.task].append(e)
        pairs = []
        for i, example in enumerate(examples):
            for j in range(len(kinds)):
                kind = kinds[(i + j) % len(kinds)]
                made = spoil(example, kind, rng, by_task[example.task], examples, held_out=split != "train")
                if made is not None:
                    pairs.append(Pair(example, made[0], made[1], kind))
                    break
        out[split] = pairs
    return out
