"""Train a small GPT on Tiny Shakespeare with the course's BPE, and commit what it did to ``data/``.

    python -m llmscratch.scripts.train_gpt shakespeare-small   # writes data/gpt_shakespeare_small.json and .pt

The recipe (the committed 512-token BPE, the token stream cut in order 90/5/5, the model and
the training configuration) is `llmscratch.experiments.RECIPES["shakespeare-small"]`. The JSON
result holds the exact loss on each split (every non-overlapping sequence of
``context_length`` tokens, every position), the same in bits per character, a subsampled
training curve, samples, and provenance (command, commit, seed, hardware, wall time, torch
threads, device, a hash of the package source). The ``.pt`` file holds the model config and
the trained weights, which the attention and GPT chapters load to look inside a model that
has learned something. ``--checkpoint PATH`` makes the run resumable (``--resume``).
"""

import sys
from collections.abc import Sequence

from ..config import GPTConfig
from .cli import recipe_main


def main(argv: Sequence[str] | None = None) -> int:
    return recipe_main("llmscratch.scripts.train_gpt", __doc__, GPTConfig, argv)


if __name__ == "__main__":
    sys.exit(main())
