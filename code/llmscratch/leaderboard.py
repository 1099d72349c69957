"""The leaderboard: every model of the book, scored one way, on one text.

    board = make_leaderboard(seeds=(42, 43, 44))      # what scripts/leaderboard.py commits

**The protocol.** Bits per character on Tiny Shakespeare's validation text: the total number
of bits the model needs to encode that text, exactly (every token, no sampling), divided by its
number of characters, so that character and BPE models share one unit. The validation text is
the one every BPE GPT of the book held out (`llmscratch.experiments.shakespeare_bpe_splits`);
the character models are trained on exactly the text before it. Every token is predicted with
the fullest context the model allows: a window model (the MLPs) from its whole window
(`evaluation.token_nlls`), a GPT from windows sliding 1/16 of its context at a time
(`evaluation.sliding_nlls` at `evaluation.protocol_stride`), so each token sees at least 15/16 of
the context. (Stride 1, the exact fullest context, costs 16 times more; `stride_gap` measures what
the shortcut changes.) Nats per token are reported beside, for the BPE models.

**The rows**, in the order the book builds them: counting models (unigram, bigram)
and the MLPs of Part 1; Part 2's reverse ablation, one piece at a time (`RUNGS`); the full
training recipe on the tiny GPT (the committed ``shakespeare-small`` run); the course model;
and Part 4's rows (`PART4_ROWS`), trained like the rungs: the modern block at the size of "+ depth".
Every row that trains here (under 10 minutes each) runs with each of several seeds; the two
committed long runs are re-scored.

Left out: a tuned learning rate per row (one budget for all, as in Part 2's ladder).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from .comparisons import LADDER_TRAIN
from .comparisons import RUNGS as LADDER_RUNGS
from .config import GPT_PRESETS, GPTConfig
from .data import load_text
from .datasets import TextBatches
from .evaluation import PROTOCOL_STRIDE_FRACTION, protocol_stride, sliding_nlls, token_nlls
from .experiments import load_trained, shakespeare_bpe_splits
from .mlp import MLP_PRESETS, MLPConfig, MLPLanguageModel
from .model import GPT
from .tokenizers import CharTokenizer
from .training import TrainConfig, train

__all__ = ["COMMITTED", "LEADERBOARD_SEEDS", "MLP_TRAIN", "PART4_ROWS", "PROTOCOL_STRIDE_FRACTION", "RUNGS",
           "Protocol", "REFERENCE_NATS", "additive_smoothing", "counting_nlls", "gpt_nlls", "label",
           "load_leaderboard", "make_leaderboard", "merge_rows", "protocol", "row_summary", "rung_row", "seed_range",
           "separated", "stride_gap", "table_html", "train_mlp_nlls", "train_rung_nlls"]

LEADERBOARD_SEEDS: tuple[int, ...] = (42, 43, 44)
LN2 = math.log(2)

# Part 2's reverse ablation on the tiny GPT (untied, context 64, d_model 64), one piece per rung.
_TINY = dict(LADDER_RUNGS)["two blocks"]
RUNGS: list[tuple[str, GPTConfig]] = [
    ("bigram", replace(_TINY, n_layers=0, position="none", norm="none")),
    ("one head", replace(_TINY, n_layers=1, n_heads=1, d_ff=0, norm="none", residual=False)),
    ("multi-head", replace(_TINY, n_layers=1, d_ff=0, norm="none", residual=False)),
    ("+ feed-forward", replace(_TINY, n_layers=1, norm="none", residual=False)),
    ("+ LayerNorm", replace(_TINY, n_layers=1, residual=False)),
    ("+ residual", replace(_TINY, n_layers=1)),
    ("+ depth", replace(_TINY, n_layers=4)),
]
# Part 4's rows, at the size and budget of "+ depth": the same four blocks built the modern way.
PART4_ROWS: list[tuple[str, GPTConfig]] = [("modern block", GPT_PRESETS["modern"])]
# The MLPs: Part 1's Shakespeare model (8 tokens of context), on characters and on BPE tokens.
MLP_CONFIG: MLPConfig = MLP_PRESETS["shakespeare"]
MLP_TRAIN = TrainConfig(steps=10_000, batch_size=128, learning_rate=2e-3, warmup_steps=300,
                        weight_decay=0.01, eval_interval=2500, eval_batches=10)
# Long runs committed by train_gpt, re-scored here: (row name, recipe, what it adds).
COMMITTED: list[tuple[str, str]] = [("full recipe", "shakespeare-small"), ("course model", "course")]
# Another implementation of the same ladder, on its own 512-token BPE of Tiny Shakespeare, in nats per
# token (figures quoted in the course's plan; a different tokenizer, so a guide, not a target).
REFERENCE_NATS: dict[str, float] = {"bigram": 4.00, "one head": 3.59, "multi-head": 3.38, "+ feed-forward": 3.29,
                                    "+ LayerNorm": 3.27, "+ residual": 3.18, "+ depth": 3.06, "full recipe": 3.00,
                                    "course model": 2.70}
# Smoothing constants tried for the counting models, chosen on the last 5% of the training text.
SMOOTHING_GRID: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


@dataclass(frozen=True)
class Protocol:
    """The one text: training and validation streams in both tokenizations, and the sizes."""

    chars: CharTokenizer
    char_train: torch.Tensor  # (n_train_chars,)
    char_val: torch.Tensor  # (n_val_chars,)
    bpe_train: torch.Tensor  # (n_train_tokens,)
    bpe_val: torch.Tensor  # (n_val_tokens,)

    @property
    def n_val_chars(self) -> int:
        return len(self.char_val)


def protocol() -> Protocol:
    """The validation text of the BPE GPTs, and the text before it, by characters and by BPE tokens."""
    tokenizer, parts, chars = shakespeare_bpe_splits()
    text = load_text("tinyshakespeare")
    a = chars["train"]
    b = a + chars["val"]
    if tokenizer.decode(parts["val"].tolist()) != text[a:b]:
        raise RuntimeError("the BPE validation stream does not decode to its text; is the tokenizer the committed one?")
    char_tok = CharTokenizer.train(text)
    return Protocol(char_tok, torch.tensor(char_tok.encode(text[:a])), torch.tensor(char_tok.encode(text[a:b])),
                    parts["train"], parts["val"])


def additive_smoothing(counts: torch.Tensor, k: float) -> torch.Tensor:
    """Log-probabilities from counts (..., V) with k added to every count: log((c + k) / (n + V k))."""
    table = counts.double() + k
    return (table / table.sum(-1, keepdim=True)).log()


def counting_nlls(train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int, order: int,
                  k: float | None = None) -> tuple[torch.Tensor, float]:
    """Per-token loss (nats) of a counted unigram (`order` 1) or bigram (`order` 2) on `val_ids`.

    Counts come from `train_ids`; the first validation token's bigram context is the last
    training token. `k`, the add-k smoothing, is chosen from `SMOOTHING_GRID` on the last 5% of
    the training stream when not given. Returns the losses (len(val_ids),) and k.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 (unigram) or 2 (bigram), got {order!r}")

    def fit(ids: torch.Tensor) -> torch.Tensor:
        if order == 1:
            return torch.bincount(ids, minlength=vocab_size)  # (V,)
        return torch.bincount(ids[:-1] * vocab_size + ids[1:], minlength=vocab_size**2).view(vocab_size, vocab_size)

    def score(counts: torch.Tensor, before: torch.Tensor, ids: torch.Tensor, kk: float) -> torch.Tensor:
        logp = additive_smoothing(counts, kk)
        if order == 1:
            return -logp[ids]
        previous = torch.cat([before[-1:], ids[:-1]])
        return -logp[previous, ids]

    if k is None:
        cut = int(0.95 * len(train_ids))
        held = fit(train_ids[:cut])
        k = min(SMOOTHING_GRID, key=lambda kk: float(score(held, train_ids[:cut], train_ids[cut:], kk).mean()))
    return score(fit(train_ids), train_ids, val_ids, k).float(), k


def gpt_nlls(model: GPT, p: Protocol) -> torch.Tensor:
    """The protocol's per-token loss of a BPE GPT on the validation stream (nats), shape (n_val_tokens,)."""
    return sliding_nlls(model, p.bpe_val, p.bpe_train, stride=protocol_stride(model.context_length))


def stride_gap(model: GPT, p: Protocol, tokens: int = 2048) -> tuple[float, float]:
    """Mean loss (nats per token) on the first `tokens` validation tokens: with the protocol's stride, and with 1."""
    ids = p.bpe_val[:tokens]
    fast = sliding_nlls(model, ids, p.bpe_train, stride=protocol_stride(model.context_length)).double().mean()
    exact = sliding_nlls(model, ids, p.bpe_train, stride=1).double().mean()
    return float(fast), float(exact)


def _score(nlls: torch.Tensor, p: Protocol) -> dict[str, float]:
    total = float(nlls.double().sum())
    return {"bits_per_char": total / LN2 / p.n_val_chars, "nats_per_token": total / len(nlls)}


def train_mlp_nlls(
    p: Protocol, bpe: bool, seed: int, cfg: TrainConfig, progress: bool, hidden_dim: int | None = None,
    device: torch.device | str = "cpu",
) -> tuple[MLPLanguageModel, torch.Tensor]:
    """Train Part 1's MLP on characters or (`bpe`) BPE tokens; return it (on the CPU) and its validation losses.

    `hidden_dim` replaces the width of the hidden layer (for comparisons at matched parameters);
    the model trains and is scored on `device`.
    """
    train_ids, val_ids = (p.bpe_train, p.bpe_val) if bpe else (p.char_train, p.char_val)
    config = replace(MLP_CONFIG, vocab_size=512 if bpe else p.chars.vocab_size,
                     hidden_dim=hidden_dim or MLP_CONFIG.hidden_dim)
    torch.manual_seed(seed)
    model = MLPLanguageModel(config).to(device)
    batches = TextBatches({"train": train_ids, "val": val_ids}, config.context_length)
    train(model, batches, replace(cfg, seed=seed), progress=progress, desc=f"MLP {'BPE' if bpe else 'chars'} {seed}")
    nlls = token_nlls(model, val_ids, context=train_ids).cpu()
    return model.cpu(), nlls


def train_rung_nlls(p: Protocol, config: GPTConfig, seed: int, cfg: TrainConfig, progress: bool,
                    desc: str) -> tuple[GPT, torch.Tensor]:
    """Train a rung with `cfg` and `seed` on the protocol's BPE stream; return it and its per-token losses."""
    torch.manual_seed(seed)
    model = GPT(config)
    batches = TextBatches({"train": p.bpe_train, "val": p.bpe_val}, config.context_length, every_position=True)
    train(model, batches, replace(cfg, seed=seed), progress=progress, desc=f"{desc} {seed}")
    return model, gpt_nlls(model, p)


def row_summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean, standard deviation, min and max of bits per character (and nats per token) over a row's runs."""
    out: dict[str, Any] = {"n": len(runs)}
    for key in ("bits_per_char", "nats_per_token"):
        values = [r[key] for r in runs]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        out[key] = {"mean": round(mean, 5), "std": round(std, 5), "min": round(min(values), 5),
                    "max": round(max(values), 5)}
    return out


def make_leaderboard(
    seeds: Sequence[int] = LEADERBOARD_SEEDS,
    rung_train: TrainConfig = LADDER_TRAIN,
    mlp_train: TrainConfig = MLP_TRAIN,
    committed: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every row of the book, scored with the protocol. Returns a JSON-ready dict with ``rows``.

    Each row: ``name``, ``part``, ``tokenization``, ``num_parameters``, ``tokens_seen`` (training
    tokens the model was fitted on or predicted), ``wall_seconds`` (per run), ``runs`` (one per
    seed: seed, bits_per_char, nats_per_token) and their ``summary`` (`row_summary`).
    """
    p = protocol()
    rows: list[dict[str, Any]] = []

    def add(name: str, part: str, tokenization: str, params: int, tokens: int, runs: list[dict], seconds: float,
            **extra: Any) -> None:
        row = {"name": name, "part": part, "tokenization": tokenization, "num_parameters": params,
               "tokens_seen": tokens, "wall_seconds": round(seconds, 1), "runs": runs,
               "summary": row_summary(runs), **extra}
        rows.append(row)
        s = row["summary"]["bits_per_char"]
        log(f"{name:16s} {params:>9,d} params  {s['mean']:.4f} ± {s['std']:.4f} bits/char  ({seconds:.0f} s per run)")

    def run(seed: int | None, nlls: torch.Tensor) -> dict[str, Any]:
        return {"seed": seed, **{k: round(v, 5) for k, v in _score(nlls, p).items()}}

    V = p.chars.vocab_size
    for name, ids, vocab, order, tok in [("unigram", (p.char_train, p.char_val), V, 1, "chars"),
                                         ("bigram counts", (p.char_train, p.char_val), V, 2, "chars"),
                                         ("bigram counts", (p.bpe_train, p.bpe_val), 512, 2, "BPE-512")]:
        t0 = time.perf_counter()
        nlls, k = counting_nlls(ids[0], ids[1], vocab, order)
        add(name, "1", tok, vocab**order, len(ids[0]), [run(None, nlls)], time.perf_counter() - t0, smoothing=k,
            counted=True)

    for bpe in (False, True):
        runs, seconds = [], []
        for seed in seeds:
            t0 = time.perf_counter()
            model, nlls = train_mlp_nlls(p, bpe, seed, mlp_train, progress)
            seconds.append(time.perf_counter() - t0)
            runs.append(run(seed, nlls))
        add("MLP", "1", "BPE-512" if bpe else "chars", model.num_parameters(),
            mlp_train.steps * mlp_train.batch_size, runs, sum(seconds) / len(seconds),
            model_config=asdict(model.config), train_config=asdict(replace(mlp_train, seed=seeds[0])))

    for name, config in RUNGS:
        rows.append(rung_row(p, name, "2", config, seeds, rung_train, progress, log))

    if committed:
        for name, recipe in COMMITTED:
            model, record = load_trained(recipe, verify=False)
            t0 = time.perf_counter()
            nlls = gpt_nlls(model, p)
            log(f"  (scored {name} in {time.perf_counter() - t0:.0f} s)")
            add(name, "3", "BPE-512", model.num_parameters(), record["training"]["tokens_seen"]
                if "training" in record else record["train_config"]["steps"] * record["train_config"]["batch_size"]
                * model.context_length, [run(record["train_config"]["seed"], nlls)],
                record["provenance"]["wall_seconds"], recipe=recipe, committed=True,
                model_config=record["model_config"], train_config=record["train_config"])

    for name, config in PART4_ROWS:
        rows.append(rung_row(p, name, "4", config, seeds, rung_train, progress, log))

    return {
        "what": "Bits per character on Tiny Shakespeare's validation text (the BPE GPTs' held-out split), exact: "
                "every token scored, GPTs with sliding windows (stride context_length // "
                f"{PROTOCOL_STRIDE_FRACTION}), window models with their whole window",
        "val_chars": p.n_val_chars,
        "val_tokens": len(p.bpe_val),
        "seeds": list(seeds),
        "rows": rows,
    }


def rung_row(
    p: Protocol, name: str, part: str, config: GPTConfig, seeds: Sequence[int], rung_train: TrainConfig,
    progress: bool = True, log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One trained GPT row: `config` trained with `rung_train` once per seed and scored with the protocol."""
    runs, seconds = [], []
    for seed in seeds:
        t0 = time.perf_counter()
        model, nlls = train_rung_nlls(p, config, seed, rung_train, progress, name)
        seconds.append(time.perf_counter() - t0)
        runs.append({"seed": seed, **{k: round(v, 5) for k, v in _score(nlls, p).items()}})
    row = {"name": name, "part": part, "tokenization": "BPE-512", "num_parameters": model.num_parameters(),
           "tokens_seen": rung_train.steps * rung_train.batch_size * config.context_length,
           "wall_seconds": round(sum(seconds) / len(seconds), 1), "runs": runs, "summary": row_summary(runs),
           "model_config": asdict(config), "train_config": asdict(replace(rung_train, seed=seeds[0]))}
    s = row["summary"]["bits_per_char"]
    log(f"{name:16s} {row['num_parameters']:>9,d} params  {s['mean']:.4f} ± {s['std']:.4f} bits/char  "
        f"({row['wall_seconds']:.0f} s per run)")
    return row


def merge_rows(board: dict[str, Any], new_rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`board` with each of `new_rows` replacing the row of the same name and tokenization, or appended.

    For adding a row without retraining the others: each new row should carry its own
    ``provenance`` (the board's own record stays that of the run that made the rest).
    """
    rows = list(board["rows"])
    for new in new_rows:
        key = (new["name"], new["tokenization"])
        at = [i for i, row in enumerate(rows) if (row["name"], row["tokenization"]) == key]
        if at:
            rows[at[0]] = new
        else:
            rows.append(new)
    return {**board, "rows": rows}


def load_leaderboard() -> dict[str, Any]:
    """The committed ``data/leaderboard.json``; `FileNotFoundError` names the script that makes it."""
    import json

    from .data import results_dir

    path = results_dir() / "leaderboard.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run python -m llmscratch.scripts.leaderboard")
    return json.loads(path.read_text())


def label(row: dict[str, Any]) -> str:
    """A row's display name: Part 1's rows carry their tokenization, Part 2's rungs say they are GPTs."""
    if row["part"] == "1":
        return f"{row['name']} ({row['tokenization']})"
    if row["part"] == "2":
        return f"GPT rung: {row['name']}"
    return row["name"]


def separated(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when the two sets of runs do not overlap: every value of one below every value of the other."""
    return max(a) < min(b) or max(b) < min(a)


def seed_range(values: Sequence[float], scale: float = 100.0, digits: int = 1) -> str:
    """The runs of one setting as a table shows them: ``"min–max"`` after scaling, or the one value.

    >>> seed_range([0.091, 0.094, 0.087])
    '8.7–9.4'
    >>> seed_range([3.0157], scale=1, digits=2)
    '3.02'
    """
    v = [scale * x for x in values]
    return f"{min(v):.{digits}f}–{max(v):.{digits}f}" if len(v) > 1 else f"{v[0]:.{digits}f}"


def table_html(board: dict[str, Any], reference: bool = True) -> str:
    """The leaderboard as an HTML table: one row per model, bits per character as mean ± std (n runs)."""
    import html

    head = ["model", "part", "parameters", "tokens seen", "time per run", "bits per char", "nats per token"]
    if reference:
        head.append("reference nats/token")
    cells = []
    for row in board["rows"]:
        s, n = row["summary"], row["summary"]["n"]
        bpc, npt = s["bits_per_char"], s["nats_per_token"]
        spread = f" ± {bpc['std']:.3f} ({n} seeds)" if n > 1 else (" (counted)" if row.get("counted") else " (1 run)")
        seconds = row["wall_seconds"]
        when = f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"
        tokens = "" if row["tokenization"] == "chars" else f"{npt['mean']:.3f}"
        values = [label(row), row["part"], f"{row['num_parameters']:,}", f"{row['tokens_seen'] / 1e6:.2f} M", when,
                  f"<b>{bpc['mean']:.3f}</b>{spread}", tokens]
        if reference:
            ref = REFERENCE_NATS.get(row["name"]) if row["part"] != "1" else None
            values.append("" if ref is None else f"{ref:.2f}")
        cells.append("<tr>" + "".join(f"<td style='padding:2px 8px'>{html.escape(v) if '<b>' not in v else v}</td>"
                                      for v in values) + "</tr>")
    header = "".join(f"<th style='padding:2px 8px;text-align:left'>{h}</th>" for h in head)
    return f"<table style='font-size:0.9em'><thead><tr>{header}</tr></thead><tbody>{''.join(cells)}</tbody></table>"
