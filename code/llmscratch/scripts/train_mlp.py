"""Train the Part 1 MLP language model for real, and commit what it did to ``data/``.

    python -m llmscratch.scripts.train_mlp names          # writes data/names_mlp.json and .pt
    python -m llmscratch.scripts.train_mlp shakespeare    # writes data/shakespeare_mlp.json and .pt

The recipes (data split, model, training configuration) are `llmscratch.experiments.RECIPES`.
The JSON result holds the exact losses on the train, validation and test sets, a subsampled
training curve, a few samples, and provenance (the command, the git commit, the seed, the
hardware, the wall time, torch's thread count, the device and a hash of the package source).
The ``.pt`` file holds the trained weights and the model config, for the chapters to sample
from. ``--checkpoint PATH`` makes the run resumable (``--resume``) after a crash.
"""

import sys
from collections.abc import Sequence

from ..mlp import MLPConfig
from .cli import recipe_main


def main(argv: Sequence[str] | None = None) -> int:
    return recipe_main("llmscratch.scripts.train_mlp", __doc__, MLPConfig, argv)


if __name__ == "__main__":
    sys.exit(main())
