"""Quick quizzes: multiple-choice questions whose choices open to say right or wrong, and why.

The HTML needs no script (``<details>`` elements), so it works in the book's pages, in Jupyter
and in Colab alike, offline.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Question", "Quiz", "quiz"]


@dataclass(frozen=True)
class Question:
    """One multiple-choice question: the right choice is ``choices[answer]``; `why` says why."""

    prompt: str
    choices: tuple[str, ...]
    answer: int
    why: str

    def __post_init__(self) -> None:
        if len(self.choices) < 2 or not 0 <= self.answer < len(self.choices):
            raise ValueError(f"a question needs >= 2 choices and answer in range, got {self.answer} "
                             f"of {len(self.choices)}")


class Quiz:
    """Questions rendered as HTML by Jupyter and the book (``_repr_html_``), as text elsewhere."""

    def __init__(self, questions: Sequence[Question]) -> None:
        self.questions = list(questions)

    def _repr_html_(self) -> str:
        parts = ['<div class="llmscratch-quiz">']
        for i, q in enumerate(self.questions, 1):
            parts.append(f'<p style="margin:1em 0 0.3em"><strong>{i}.</strong> {html.escape(q.prompt)}</p>')
            for j, choice in enumerate(q.choices):
                right = j == q.answer
                verdict = "✓ Right." if right else "✗ Not this one."
                colour = "rgba(76,175,80,0.18)" if right else "rgba(233,30,99,0.12)"
                detail = f" {html.escape(q.why)}" if right else " Try another."
                parts.append(
                    f'<details style="margin:0.2em 0 0.2em 1.2em"><summary style="cursor:pointer">'
                    f"{chr(97 + j)}) {html.escape(choice)}</summary>"
                    f'<div style="background:{colour};padding:0.3em 0.6em;border-radius:4px">'
                    f"{verdict}{detail}</div></details>")
        parts.append("</div>")
        return "".join(parts)

    def __repr__(self) -> str:
        lines = []
        for i, q in enumerate(self.questions, 1):
            lines.append(f"{i}. {q.prompt}")
            lines += [f"   {chr(97 + j)}) {c}" for j, c in enumerate(q.choices)]
        return "\n".join(lines)


def quiz(*questions: Question) -> Quiz:
    """A quiz of `questions`; display it as the last line of a cell. Each choice opens to its verdict."""
    if not questions:
        raise ValueError("a quiz needs at least one question")
    return Quiz(questions)
