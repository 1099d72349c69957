"""Train the Part 1 MLP language model for real, and commit what it did to ``data/``.

    python -m llmscratch.scripts.train_mlp names          # writes data/names_mlp.json and .pt
    python -m llmscratch.scripts.train_mlp shakespeare    # writes data/shakespeare_mlp.json and .pt

Each recipe fixes the data split, the model and the training configuration. The JSON result
holds the exact losses on the train, validation and test sets, a subsampled training curve,
a few samples, and provenance (`llmscratch.provenance`: the command, the git commit, the seed,
the hardware, the wall time; plus torch's thread count and a hash of the package's source,
which pins the code even when the working tree had uncommitted changes). The ``.pt`` file
holds only the trained weights and the model config, for the chapters to sample from.
``--checkpoint PATH`` makes the run resumable (``--resume``) after a crash.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ..data import load_text, train_val_test_split
from ..datasets import PairBatches, TextBatches, contiguous_split, name_windows, stream_windows
from ..fileio import atomic_path, atomic_write_text
from ..mlp import MLP_PRESETS, MLPConfig, MLPLanguageModel
from ..provenance import script_provenance, to_json
from ..sampling import generate
from ..tokenizers import CharTokenizer
from ..training import TrainConfig, evaluate_loss, train

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Recipe:
    corpus: str  # a name known to llmscratch.load_text
    model: MLPConfig
    train: TrainConfig
    out: str  # the result's path without suffix, relative to the repository


RECIPES = {
    # About 3 minutes on one CPU core. Without dropout this model memorises names: its validation
    # loss stops improving after about 20,000 steps while the training loss keeps falling.
    # The learning rate sits below the short sweep's best, as long runs prefer.
    "names": Recipe(
        corpus="names",
        model=MLP_PRESETS["names-large"],
        train=TrainConfig(steps=80_000, batch_size=64, learning_rate=3e-3, warmup_steps=500,
                          weight_decay=0.01, eval_interval=2000, eval_batches=50, seed=42),
        out="data/names_mlp",
    ),
    # About 4 minutes on one CPU core. No dropout: in 20,000-step trials it cost more than it
    # saved. This run is long enough for a gap between training and validation loss to open,
    # so a longer one would want it.
    "shakespeare": Recipe(
        corpus="tinyshakespeare",
        model=MLP_PRESETS["shakespeare-large"],
        train=TrainConfig(steps=60_000, batch_size=128, learning_rate=2e-3, warmup_steps=500,
                          weight_decay=0.01, eval_interval=2000, eval_batches=50, seed=42),
        out="data/shakespeare_mlp",
    ),
}


def names_data(recipe: Recipe):
    """The bigram chapter's split: names shuffled with seed 42, cut 80/10/10."""
    words = load_text("names").split()
    tokenizer = CharTokenizer.train(words, special_tokens=["."])
    splits = train_val_test_split(words, (0.8, 0.1, 0.1), seed=42)
    T = recipe.model.context_length
    xy = {name: name_windows([tokenizer.encode(w) for w in ws], T, tokenizer.stoi["."])
          for name, ws in zip(("train", "val", "test"), splits)}
    return tokenizer, PairBatches({"train": xy["train"], "val": xy["val"]}), xy


def shakespeare_data(recipe: Recipe):
    """Tiny Shakespeare as one character stream, cut in order 90/5/5."""
    text = load_text("tinyshakespeare")
    tokenizer = CharTokenizer.train(text)
    parts = dict(zip(("train", "val", "test"), contiguous_split(torch.tensor(tokenizer.encode(text)))))
    T = recipe.model.context_length
    xy = {name: stream_windows(stream, T) for name, stream in parts.items()}
    return tokenizer, TextBatches({"train": parts["train"], "val": parts["val"]}, T), xy


def samples(model: MLPLanguageModel, tokenizer: CharTokenizer, corpus: str, seed: int) -> list[str]:
    generator = torch.Generator().manual_seed(seed)
    T = model.context_length
    if corpus == "names":
        boundary = tokenizer.stoi["."]
        out = generate(model, torch.full((20, T), boundary), 30, generator=generator, stop_id=boundary)
        return [tokenizer.decode(ids) for ids in out]
    prompts = ["ROMEO:\n", "JULIET:\n"]
    pad = tokenizer.stoi["\n"]
    rows = [[pad] * max(0, T - len(p)) + tokenizer.encode(p) for p in prompts]
    out = generate(model, torch.tensor(rows), 300, generator=generator)
    return [p + tokenizer.decode(ids) for p, ids in zip(prompts, out)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmscratch.scripts.train_mlp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--steps", type=int, help="override the recipe's number of steps (for a quick trial)")
    parser.add_argument("--out", help="result path without suffix (default: the recipe's, under data/)")
    parser.add_argument("--checkpoint", help="write a resumable training checkpoint here")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as reported)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    recipe = RECIPES[args.recipe]
    if args.steps:
        recipe = replace(recipe, train=replace(recipe.train, steps=args.steps))
    out = Path(args.out) if args.out else REPO / recipe.out
    torch.set_num_threads(args.threads)
    started = time.time()

    tokenizer, batches, xy = (names_data if recipe.corpus == "names" else shakespeare_data)(recipe)
    assert tokenizer.vocab_size == recipe.model.vocab_size, tokenizer.vocab_size
    torch.manual_seed(recipe.train.seed)
    model = MLPLanguageModel(recipe.model)
    history = train(model, batches, recipe.train, checkpoint=args.checkpoint, checkpoint_interval=5000,
                    resume=args.resume, progress=not args.no_progress, desc=args.recipe)
    losses = {name: round(evaluate_loss(model, x, y), 5) for name, (x, y) in xy.items()}
    wall = time.time() - started

    result = {
        "what": f"MLPLanguageModel on {recipe.corpus}: exact mean cross-entropy (nats per token)",
        "loss": losses,
        "num_parameters": model.num_parameters(),
        "model_config": asdict(recipe.model),
        "train_config": asdict(recipe.train),
        "examples": {name: len(y) for name, (_, y) in xy.items()},
        "curve": history.curve(),
        "samples": samples(model, tokenizer, recipe.corpus, recipe.train.seed),
        "provenance": script_provenance("llmscratch.scripts.train_mlp", sys.argv[1:] if argv is None else argv,
                                        wall, recipe.train.seed),
    }
    atomic_write_text(out.with_suffix(".json"), to_json(result) + "\n")
    with atomic_path(out.with_suffix(".pt")) as tmp:
        torch.save({"model_config": asdict(recipe.model), "model": model.state_dict()}, tmp)
    print(f"{args.recipe}: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()) + f" in {wall:.0f} s -> {out}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
