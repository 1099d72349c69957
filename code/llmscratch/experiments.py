"""The course's committed runs as recipes, and the functions that train, score and reload them.

    model, result = run_recipe(RECIPES["shakespeare-small"])   # what the train_gpt script runs

A `Recipe` names everything a committed run depends on: its data (`DATA`), its model config,
its training config and where its result goes. `run_recipe` trains the model, scores it
exactly on every split, draws a few samples, and returns the model with a JSON-ready result;
the scripts under ``llmscratch.scripts`` only parse options, call it, and write the files with
their provenance (`save_run`). A chapter calls the same functions with a shorter
`TrainConfig`, and reloads what a script committed with `load_trained`.

The data are fixed here once, so that every chapter, script and test cuts them alike: names
shuffled with seed 42 and cut 80/10/10 (`names_data`); Tiny Shakespeare cut in order 90/5/5,
by characters (`shakespeare_char_data`) or in the committed 512-token BPE
(`shakespeare_bpe_splits`).

Left out: hyperparameter search (the chapters' sweeps are short and live), and any run that
needs more than one device.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .bpe import BPETokenizer
from .config import GPT_PRESETS, GPTConfig
from .data import DataError, load_text, results_dir, train_val_test_split
from .datasets import PairBatches, TextBatches, contiguous_split, name_windows, stream_windows
from .evaluation import position_losses
from .fileio import atomic_path, atomic_write_text
from .flops import matmul_peak, training_flops_per_token, utilization
from .mlp import MLP_PRESETS, MLPConfig, MLPLanguageModel
from .model import GPT
from .provenance import to_json
from .sampling import generate
from .tokenizers import CharTokenizer
from .training import TrainConfig, evaluate_loss, train

__all__ = ["DATA", "RECIPES", "Recipe", "load_trained", "names_data", "rescore", "run_recipe", "save_run",
           "shakespeare_bpe_splits", "shakespeare_char_data"]

Windows = tuple[torch.Tensor, torch.Tensor]  # every (context, next token) example of a split: (N, T), (N,)

# The data a recipe can name, and what each one is.
DATA = {
    "names": "names.txt, one name a sequence, shuffled (seed 42) and cut 80/10/10; characters",
    "shakespeare-chars": "Tiny Shakespeare as one stream of characters, cut in order 90/5/5",
    "shakespeare-bpe": "Tiny Shakespeare in the committed 512-token BPE, cut in order 90/5/5",
}


@dataclass(frozen=True)
class Recipe:
    """One committed run: what it trains on, what it trains, how, and where the result goes."""

    data: str  # a key of DATA
    model: MLPConfig | GPTConfig
    train: TrainConfig
    out: str  # the result's path without suffix, relative to the repository
    # Steps between resumable checkpoints when the script is given --checkpoint: about every
    # five minutes of the CPU run, so a crash loses little.
    checkpoint_interval: int = 1000
    # Store the weights in float16 (half the file). The run is scored after rounding them, so
    # the recorded losses are those of the weights on disk.
    half_weights: bool = False

    def __post_init__(self) -> None:
        if self.data not in DATA:
            raise ValueError(f"Recipe.data={self.data!r}; choose one of {tuple(DATA)}")
        if not isinstance(self.model, (MLPConfig, GPTConfig)):
            raise TypeError(f"Recipe.model must be an MLPConfig or a GPTConfig, got {type(self.model).__name__}")
        if not isinstance(self.train, TrainConfig):
            raise TypeError(f"Recipe.train must be a TrainConfig, got {type(self.train).__name__}")
        # A GPT predicts at every position of a token stream; the window models, one token per window.
        wanted = GPTConfig if self.data == "shakespeare-bpe" else MLPConfig
        if not isinstance(self.model, wanted):
            raise ValueError(f"Recipe: data {self.data!r} is scored with a {wanted.__name__}, "
                             f"got a {type(self.model).__name__}")


RECIPES: dict[str, Recipe] = {
    # About 3 minutes on one CPU core. Without dropout this model memorises names: its validation
    # loss stops improving after about 20,000 steps while the training loss keeps falling.
    # The learning rate sits below the short sweep's best, as long runs prefer.
    "names": Recipe(
        data="names",
        model=MLP_PRESETS["names-large"],
        train=TrainConfig(steps=80_000, batch_size=64, learning_rate=3e-3, warmup_steps=500,
                          weight_decay=0.01, eval_interval=2000, eval_batches=50, seed=42),
        out="data/names_mlp",
        checkpoint_interval=5000,
    ),
    # About 4 minutes on one CPU core. No dropout: in 20,000-step trials it cost more than it
    # saved. This run is long enough for a gap between training and validation loss to open,
    # so a longer one would want it.
    "shakespeare": Recipe(
        data="shakespeare-chars",
        model=MLP_PRESETS["shakespeare-large"],
        train=TrainConfig(steps=60_000, batch_size=128, learning_rate=2e-3, warmup_steps=500,
                          weight_decay=0.01, eval_interval=2000, eval_batches=50, seed=42),
        out="data/shakespeare_mlp",
        checkpoint_interval=5000,
    ),
    # About half an hour on one CPU thread. Dropout 0.1: the 0.9 M parameters see the ~0.5 M
    # training tokens many times over, and without it validation loss turns up sooner.
    "shakespeare-small": Recipe(
        data="shakespeare-bpe",
        model=replace(GPT_PRESETS["shakespeare-small"], dropout=0.1),
        train=TrainConfig(steps=2500, batch_size=32, learning_rate=2e-3, warmup_steps=200,
                          weight_decay=0.1, eval_interval=250, eval_batches=20, seed=42),
        out="data/gpt_shakespeare_small",
        checkpoint_interval=250,
    ),
    # The course model, which Parts 4 and 5 load instead of training (llmscratch.course).
    # About 80 minutes on two CPU threads. 4.9 M parameters see the ~0.52 M training tokens
    # about 14 times: dropout and weight decay hold off overfitting, and keep_best returns the
    # weights of the lowest validation estimate if it comes anyway. A context of 256 tokens
    # (about 500 characters) leaves room for long-context and instruction chapters. RoPE, the
    # best position scheme of Part 2's comparison (data/part2_positions.json); otherwise GPT-2's
    # block. A first try with learning rate 1e-3 and dropout 0.2 (learned positions) learned
    # too slowly: 3.63 nats on validation after 400 steps, where shakespeare-small had 3.37 at 500.
    "course": Recipe(
        data="shakespeare-bpe",
        model=GPTConfig(context_length=256, d_model=256, n_layers=6, n_heads=8, dropout=0.1, position="rope"),
        train=TrainConfig(steps=1800, batch_size=16, learning_rate=2e-3, warmup_steps=100, min_lr_ratio=0.1,
                          weight_decay=0.1, eval_interval=100, eval_batches=10, seed=42, keep_best=True),
        out="data/course_model",
        checkpoint_interval=100,
        half_weights=True,
    ),
}


def names_data(context_length: int) -> tuple[CharTokenizer, PairBatches, dict[str, Windows]]:
    """The bigram chapter's split of names: the tokenizer, training batches, and every window of each split."""
    words = load_text("names").split()
    tokenizer = CharTokenizer.train(words, special_tokens=["."])
    splits = train_val_test_split(words, (0.8, 0.1, 0.1), seed=42)
    xy = {name: name_windows([tokenizer.encode(w) for w in ws], context_length, tokenizer.stoi["."])
          for name, ws in zip(("train", "val", "test"), splits)}
    return tokenizer, PairBatches({"train": xy["train"], "val": xy["val"]}), xy


def shakespeare_char_data(context_length: int) -> tuple[CharTokenizer, TextBatches, dict[str, Windows]]:
    """Tiny Shakespeare by characters: the tokenizer, training batches, and every window of each split."""
    text = load_text("tinyshakespeare")
    tokenizer = CharTokenizer.train(text)
    parts = dict(zip(("train", "val", "test"), contiguous_split(torch.tensor(tokenizer.encode(text)))))
    xy = {name: stream_windows(stream, context_length) for name, stream in parts.items()}
    return tokenizer, TextBatches({"train": parts["train"], "val": parts["val"]}, context_length), xy


def shakespeare_bpe_splits() -> tuple[BPETokenizer, dict[str, torch.Tensor], dict[str, int]]:
    """The committed BPE, and Tiny Shakespeare's token stream cut in order 90/5/5.

    Also returns the number of characters each split's tokens decode to, for bits per character.
    The encoding is done once per process (a few seconds); every call returns fresh tensors.
    """
    tokenizer, ids, chars = _encoded_shakespeare()
    parts = dict(zip(("train", "val", "test"), contiguous_split(torch.tensor(ids))))
    return tokenizer, parts, dict(chars)


@functools.lru_cache(maxsize=1)
def _encoded_shakespeare() -> tuple[BPETokenizer, tuple[int, ...], tuple[tuple[str, int], ...]]:
    tokenizer = BPETokenizer.load(results_dir() / "bpe_tokenizer.json")
    ids = tokenizer.encode(load_text("tinyshakespeare"))
    parts = dict(zip(("train", "val", "test"), contiguous_split(torch.tensor(ids))))
    chars = tuple((name, len(tokenizer.decode(part.tolist()))) for name, part in parts.items())
    return tokenizer, tuple(ids), chars


def _samples(model: torch.nn.Module, tokenizer: Any, data: str, seed: int, new_tokens: int) -> list[str]:
    """Samples that show what a model learned: 20 names, or two speeches after a speaker's name."""
    generator = torch.Generator().manual_seed(seed)
    if data == "names":
        boundary = tokenizer.stoi["."]
        out = generate(model, torch.full((20, model.context_length), boundary), new_tokens,
                       generator=generator, stop_id=boundary)
        return [tokenizer.decode(ids) for ids in out]
    prompts = ["ROMEO:\n", "JULIET:\n"]
    if data == "shakespeare-chars":  # a fixed window: pad the prompt on the left with newlines
        T, pad = model.context_length, tokenizer.stoi["\n"]
        rows = [[pad] * max(0, T - len(p)) + tokenizer.encode(p) for p in prompts]
        out = generate(model, torch.tensor(rows), new_tokens, generator=generator)
        return [p + tokenizer.decode(ids) for p, ids in zip(prompts, out)]
    texts = []
    for prompt in prompts:  # one at a time: the BPE prompts differ in length
        new_ids = generate(model, torch.tensor([tokenizer.encode(prompt)]), new_tokens, generator=generator)[0]
        texts.append(prompt + tokenizer.decode(new_ids))
    return texts


def run_recipe(
    recipe: Recipe,
    *,
    device: torch.device | str = "cpu",
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    desc: str = "training",
    eval_tokens: int | None = None,
    sample_tokens: int | None = None,
) -> tuple[MLPLanguageModel | GPT, dict[str, Any]]:
    """Train `recipe`'s model, score it exactly on every split, and sample from it.

    Returns the trained model (on the CPU, in evaluation mode) and a JSON-ready result: the
    losses in nats per token, the parameter count, both configs, the sizes of the splits, the
    training curve and the samples. `eval_tokens` scores only the first tokens of each split
    of a stream (a quick trial); `sample_tokens` sets the length of the samples. Scoring and
    sampling run on the CPU, so the numbers do not depend on the device that trained.
    """
    seed = recipe.train.seed
    is_gpt = isinstance(recipe.model, GPTConfig)
    if recipe.data == "shakespeare-bpe":
        tokenizer, parts, chars = shakespeare_bpe_splits()
        batches = TextBatches({"train": parts["train"], "val": parts["val"]}, recipe.model.context_length,
                              every_position=True)
    else:
        make = names_data if recipe.data == "names" else shakespeare_char_data
        tokenizer, batches, xy = make(recipe.model.context_length)
    if tokenizer.vocab_size != recipe.model.vocab_size:
        raise ValueError(f"the {recipe.data} tokenizer has {tokenizer.vocab_size} tokens, "
                         f"the model expects vocab_size={recipe.model.vocab_size}")
    torch.manual_seed(seed)
    model = GPT(recipe.model) if is_gpt else MLPLanguageModel(recipe.model)
    model.to(device)
    started = time.perf_counter()
    history = train(model, batches, recipe.train, checkpoint=checkpoint, checkpoint_interval=recipe.checkpoint_interval,
                    resume=resume, progress=progress, desc=desc)
    train_seconds = time.perf_counter() - started
    model.cpu().eval()
    if recipe.half_weights:
        model.half().float()  # round every weight to float16, as the file will hold it
    result: dict[str, Any] = {}
    if is_gpt:
        T = recipe.model.context_length
        loss, bpc = {}, {}
        for name, stream in parts.items():
            scored = stream[:eval_tokens] if eval_tokens else stream
            loss[name] = round(float(position_losses(model, scored, T).mean()), 5)
            # nats per token -> bits per character, at the split's average characters per token
            bpc[name] = round(loss[name] / math.log(2) * len(parts[name]) / chars[name], 5)
        result["what"] = ("GPT on Tiny Shakespeare, 512-token BPE: exact mean cross-entropy (nats per token) over "
                          "non-overlapping sequences of context_length tokens; bits per character approximated "
                          "with each split's average characters per token")
        result.update(loss=loss, bits_per_char=bpc)
    else:
        corpus = "names" if recipe.data == "names" else "tinyshakespeare"
        result["what"] = f"MLPLanguageModel on {corpus}: exact mean cross-entropy (nats per token)"
        result["loss"] = {name: round(evaluate_loss(model, x, y), 5) for name, (x, y) in xy.items()}
    result["num_parameters"] = model.num_parameters()
    result["model_config"] = asdict(recipe.model)
    result["train_config"] = asdict(recipe.train)
    if is_gpt:
        result["tokens"] = {name: len(stream) for name, stream in parts.items()}
    else:
        result["examples"] = {name: len(y) for name, (_, y) in xy.items()}
    result["curve"] = history.curve()
    sequence = recipe.model.context_length if is_gpt else 1  # a GPT trains on every position
    tokens = recipe.train.steps * recipe.train.batch_size * recipe.train.accumulation_steps * sequence
    # Wall time of this process's training (a resumed run counts only its own part).
    result["training"] = {"tokens_seen": tokens, "seconds": round(train_seconds, 1), "resumed": resume}
    if is_gpt and not resume and torch.device(device).type == "cpu":
        # Model-FLOPs utilization against this machine's measured float32 matmul peak (flops.py);
        # evaluation steps count as time but not as training FLOPs, so this is a lower bound.
        peak = matmul_peak(dtype=torch.bfloat16 if recipe.train.precision == "bf16" else torch.float32)
        per_second = tokens / train_seconds
        result["training"].update(tokens_per_second=round(per_second), matmul_peak_gflops=round(peak / 1e9, 1),
                                  training_flops_per_token=training_flops_per_token(recipe.model),
                                  mfu=round(utilization(per_second, recipe.model, peak), 4))
    default_tokens = {"names": 30, "shakespeare-chars": 300, "shakespeare-bpe": 200}[recipe.data]
    result["samples"] = _samples(model, tokenizer, recipe.data, seed, sample_tokens or default_tokens)
    return model, result


def save_run(out: str | Path, result: dict[str, Any], model: torch.nn.Module, half: bool = False) -> None:
    """Write ``out.json`` (the result) and ``out.pt`` (the model's config and weights), atomically.

    With `half` the weights are stored in float16; `load_trained` reads them back as float32.
    """
    out = Path(out)
    atomic_write_text(out.with_suffix(".json"), to_json(result) + "\n")
    weights = {k: v.half() if half and v.is_floating_point() else v for k, v in model.state_dict().items()}
    with atomic_path(out.with_suffix(".pt")) as tmp:
        torch.save({"model_config": asdict(model.config), "model": weights}, tmp)


def rescore(model: MLPLanguageModel | GPT, recipe: str, split: str = "val") -> float:
    """The exact loss (nats per token) of `model` on a split of `recipe`'s data, as `run_recipe` scores it."""
    r = RECIPES[recipe]
    if isinstance(r.model, GPTConfig):
        _, parts, _ = shakespeare_bpe_splits()
        return float(position_losses(model, parts[split], model.config.context_length).mean())
    make = names_data if r.data == "names" else shakespeare_char_data
    _, _, xy = make(model.context_length)
    return evaluate_loss(model, *xy[split])


def load_trained(
    recipe: str = "shakespeare-small", verify: bool = True
) -> tuple[MLPLanguageModel | GPT, dict[str, Any]]:
    """The committed model of a recipe, in evaluation mode, and its JSON result.

    With `verify` (the default) the weights are scored again on the validation split
    (`rescore`), and a loss that differs from the recorded one by more than 1e-4 nats raises
    `ValueError`: weights and record that do not belong together are never used silently.
    Raises `FileNotFoundError` naming the command that makes the files if they are missing.
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {tuple(RECIPES)}")
    r = RECIPES[recipe]
    try:
        out = results_dir() / Path(r.out).name
    except DataError as error:
        raise FileNotFoundError(str(error)) from None
    script = "train_gpt" if isinstance(r.model, GPTConfig) else "train_mlp"
    if not out.with_suffix(".pt").is_file() or not out.with_suffix(".json").is_file():
        raise FileNotFoundError(f"{out}.pt/.json missing: run python -m llmscratch.scripts.{script} {recipe}")
    state = torch.load(out.with_suffix(".pt"), map_location="cpu", weights_only=True)
    if isinstance(r.model, GPTConfig):
        model: MLPLanguageModel | GPT = GPT(GPTConfig(**state["model_config"]))
    else:
        model = MLPLanguageModel(MLPConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    model.eval()
    result = json.loads(out.with_suffix(".json").read_text())
    if verify:
        loss, recorded = rescore(model, recipe), result["loss"]["val"]
        if abs(loss - recorded) > 1e-4:
            raise ValueError(f"{out}.pt scores {loss:.5f} nats per token on the validation split, but "
                             f"{out}.json records {recorded:.5f}: the weights and the record do not belong together")
    return model, result
