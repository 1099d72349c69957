"""Train a small GPT on Tiny Shakespeare with the course's BPE, and commit what it did to ``data/``.

    python -m llmscratch.scripts.train_gpt shakespeare-small   # writes data/gpt_shakespeare_small.json and .pt

The recipe fixes the data (the committed 512-token BPE, the token stream cut in order 90/5/5),
the model (`GPT_PRESETS`) and the training configuration. The JSON result holds the exact loss
on each split (every non-overlapping sequence of ``context_length`` tokens, every position),
the same in bits per character, a subsampled training curve, samples, and provenance (command,
commit, seed, hardware, wall time, torch threads, a hash of the package source). The ``.pt``
file holds the model config and the trained weights, which the attention and GPT chapters load
to look inside a model that has learned something.
``--checkpoint PATH`` makes the run resumable (``--resume``) after a crash.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ..bpe import BPETokenizer
from ..data import load_text, results_dir
from ..datasets import TextBatches, contiguous_split
from ..evaluation import position_losses
from ..fileio import atomic_path, atomic_write_text
from ..model import GPT, GPT_PRESETS, GPTConfig
from ..provenance import script_provenance, to_json
from ..sampling import generate
from ..training import TrainConfig, train

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Recipe:
    model: GPTConfig
    train: TrainConfig
    out: str  # the result's path without suffix, relative to the repository


RECIPES = {
    # About a quarter of an hour on one CPU thread. Dropout 0.1: the 0.9 M parameters see the
    # ~0.5 M training tokens many times over, and without it validation loss turns up sooner.
    "shakespeare-small": Recipe(
        model=replace(GPT_PRESETS["shakespeare-small"], dropout=0.1),
        train=TrainConfig(steps=2500, batch_size=32, learning_rate=2e-3, warmup_steps=200,
                          weight_decay=0.1, eval_interval=250, eval_batches=20, seed=42),
        out="data/gpt_shakespeare_small",
    ),
}


def shakespeare_bpe_splits() -> tuple[BPETokenizer, dict[str, torch.Tensor], dict[str, int]]:
    """The committed BPE, and Tiny Shakespeare's token stream cut in order 90/5/5.

    Also returns the number of characters each split's tokens decode to, for bits per character.
    """
    tokenizer = BPETokenizer.load(results_dir() / "bpe_tokenizer.json")
    ids = torch.tensor(tokenizer.encode(load_text("tinyshakespeare")))
    parts = dict(zip(("train", "val", "test"), contiguous_split(ids)))
    chars = {name: len(tokenizer.decode(part.tolist())) for name, part in parts.items()}
    return tokenizer, parts, chars


def load_trained(recipe: str = "shakespeare-small") -> tuple[GPT, dict]:
    """The committed model of a recipe, in evaluation mode, and its JSON result.

    Raises `FileNotFoundError` naming the command that makes the files if they are missing.
    """
    import json

    out = REPO / RECIPES[recipe].out
    if not out.with_suffix(".pt").is_file() or not out.with_suffix(".json").is_file():
        raise FileNotFoundError(f"{out}.pt/.json missing: run python -m llmscratch.scripts.train_gpt {recipe}")
    state = torch.load(out.with_suffix(".pt"), map_location="cpu", weights_only=True)
    model = GPT(GPTConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return model.eval(), json.loads(out.with_suffix(".json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmscratch.scripts.train_gpt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--steps", type=int, help="override the recipe's number of steps (for a quick trial)")
    parser.add_argument("--out", help="result path without suffix (default: the recipe's, under data/)")
    parser.add_argument("--checkpoint", help="write a resumable training checkpoint here")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as reported)")
    parser.add_argument("--eval-batches", type=int, help="override the recipe's batches per loss estimate")
    parser.add_argument("--eval-tokens", type=int, help="score only the first N tokens of each split (for a quick trial)")
    parser.add_argument("--sample-tokens", type=int, default=200, help="tokens to generate per sample (default 200)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    recipe = RECIPES[args.recipe]
    if args.steps:
        recipe = replace(recipe, train=replace(recipe.train, steps=args.steps))
    if args.eval_batches:
        recipe = replace(recipe, train=replace(recipe.train, eval_batches=args.eval_batches))
    out = Path(args.out) if args.out else REPO / recipe.out
    torch.set_num_threads(args.threads)
    started = time.time()

    tokenizer, parts, chars = shakespeare_bpe_splits()
    assert tokenizer.vocab_size == recipe.model.vocab_size, tokenizer.vocab_size
    T = recipe.model.context_length
    batches = TextBatches({"train": parts["train"], "val": parts["val"]}, T, every_position=True)
    torch.manual_seed(recipe.train.seed)
    model = GPT(recipe.model)
    history = train(model, batches, recipe.train, checkpoint=args.checkpoint, checkpoint_interval=250,
                    resume=args.resume, progress=not args.no_progress, desc=args.recipe)
    loss, bpc = {}, {}
    for name, stream in parts.items():
        stream = stream[: args.eval_tokens] if args.eval_tokens else stream
        loss[name] = round(float(position_losses(model, stream, T).mean()), 5)
        # nats per token -> bits per character, at the split's average characters per token
        bpc[name] = round(loss[name] / math.log(2) * len(parts[name]) / chars[name], 5)
    generator = torch.Generator().manual_seed(recipe.train.seed)
    samples = []
    for prompt in ("ROMEO:\n", "JULIET:\n"):
        ids = tokenizer.encode(prompt)
        new_ids = generate(model, torch.tensor([ids]), args.sample_tokens, generator=generator)[0]
        samples.append(prompt + tokenizer.decode(new_ids))
    wall = time.time() - started

    result = {
        "what": "GPT on Tiny Shakespeare, 512-token BPE: exact mean cross-entropy (nats per token) over "
                "non-overlapping sequences of context_length tokens; bits per character approximated "
                "with each split's average characters per token",
        "loss": loss,
        "bits_per_char": bpc,
        "num_parameters": model.num_parameters(),
        "model_config": asdict(recipe.model),
        "train_config": asdict(recipe.train),
        "tokens": {name: len(stream) for name, stream in parts.items()},
        "curve": history.curve(),
        "samples": samples,
        "provenance": script_provenance("llmscratch.scripts.train_gpt", sys.argv[1:] if argv is None else argv,
                                        wall, recipe.train.seed),
    }
    atomic_write_text(out.with_suffix(".json"), to_json(result) + "\n")
    with atomic_path(out.with_suffix(".pt")) as tmp:
        torch.save({"model_config": asdict(recipe.model), "model": model.state_dict()}, tmp)
    print(f"{args.recipe}: " + ", ".join(f"{k} {v:.4f}" for k, v in loss.items()) + f" in {wall:.0f} s -> {out}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
