"""Exercises the learner writes, checked against the package, and quick quizzes.

A checker takes the learner's function, runs it on ordinary and edge-case inputs next to the
package's own implementation, and either prints how many cases passed or raises
`ExerciseError` naming the first case that failed, in plain words (which input, what was
expected, what came back) without showing the solution:

    >>> check_schedule(lambda step, steps, peak, warmup, min_ratio: peak)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    llmscratch.exercises.ExerciseError: step=0 of steps=100 (warmup=10, ...): expected 0.1, got 1.0 (warm-up: ...)

`quiz` renders multiple-choice questions as HTML: each choice opens to say whether it is right
and why. It needs no script, so it works in the book's pages, in Jupyter and in Colab alike.

One module per part of the book's ideas: `language_models` (counting, softmax, MLPs, batches),
`tokens` (BPE, embeddings, bits per character), `attention` (attention, heads, positions),
`blocks` (norms, the block, the GPT), `training` (Part 3), `long_context` (sliding windows, the
online softmax), `experts` (the mixture-of-experts router), `serving` (speculative decoding),
`caching` (the KV cache and GQA), `quantization`, `modern` (the modern block's SwiGLU) and
`objectives` (the prefix language model's mask) and `assistant` (Part 5's loss mask).
Everything is re-exported here.

Left out: grading and scores; the checks are for the learner, not for a teacher.
"""

from . import (
    assistant,
    attention,
    blocks,
    caching,
    core,
    experts,
    language_models,
    long_context,
    modern,
    objectives,
    quantization,
    quizzes,
    serving,
    tokens,
    training,
)
from .assistant import *  # noqa: F403
from .attention import *  # noqa: F403
from .blocks import *  # noqa: F403
from .caching import *  # noqa: F403
from .core import *  # noqa: F403
from .experts import *  # noqa: F403
from .language_models import *  # noqa: F403
from .long_context import *  # noqa: F403
from .modern import *  # noqa: F403
from .objectives import *  # noqa: F403
from .quantization import *  # noqa: F403
from .quizzes import *  # noqa: F403
from .serving import *  # noqa: F403
from .tokens import *  # noqa: F403
from .training import *  # noqa: F403

__all__ = [*core.__all__, *quizzes.__all__, *language_models.__all__, *tokens.__all__, *attention.__all__,
           *blocks.__all__, *training.__all__, *long_context.__all__, *experts.__all__, *serving.__all__,
           *caching.__all__, *quantization.__all__, *modern.__all__, *objectives.__all__,
           *assistant.__all__]
