"""The course model: the one GPT that Parts 4 and 5 load instead of training.

    model, tokenizer = load_course_model()
    ids = tokenizer.encode("ROMEO:\n")

It is the recipe ``RECIPES["course"]`` (`llmscratch.experiments`): six blocks of eight heads,
256-wide, a context of 256 tokens of the course's 512-token BPE, trained on Tiny
Shakespeare by ``python -m llmscratch.scripts.train_gpt course`` from a clean checkout. The
weights are committed in float16 as ``data/course_model.pt`` beside ``data/course_model.json``,
which records how they were made and what they score. Loading checks the two against each
other: the weights are scored again on the validation split, and a mismatch is an error.

Left out: any other size (Part 3's scaling chapter trains those), and fine-tuned variants
(Part 5 makes its own from this one).
"""

from __future__ import annotations

import json
from typing import Any

from .bpe import BPETokenizer
from .data import results_dir
from .experiments import load_trained
from .model import GPT

__all__ = ["COURSE_RECIPE", "load_course_model", "course_model_record"]

COURSE_RECIPE = "course"


def load_course_model(verify: bool = True) -> tuple[GPT, BPETokenizer]:
    """The trained course model (CPU, float32, evaluation mode) and the BPE tokenizer it reads.

    `verify` re-scores the weights on the validation split (about half a minute on one CPU
    core) and raises `ValueError` if they do not score what ``course_model.json`` records.
    """
    model, _ = load_trained(COURSE_RECIPE, verify=verify)
    return model, BPETokenizer.load(results_dir() / "bpe_tokenizer.json")


def course_model_record() -> dict[str, Any]:
    """What ``data/course_model.json`` records: losses, curve, samples, timing and provenance."""
    path = results_dir() / "course_model.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run python -m llmscratch.scripts.train_gpt {COURSE_RECIPE}")
    return json.loads(path.read_text())
