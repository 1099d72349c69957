"""Characters against BPE tokens at matched parameters: Part 1's MLP, three seeds, the book's protocol.

    python -m llmscratch.scripts.chars_vs_tokens        # writes data/chars_vs_tokens.json
    python -m llmscratch.scripts.chars_vs_tokens --device cuda --jobs 12   # the runs side by side

The leaderboard's two MLPs (`llmscratch.leaderboard.MLP_CONFIG`: 8 tokens of context, 16 numbers
per token, 512 hidden units) differ in more than their unit: the BPE model's 512-token vocabulary
makes its embedding and output layers bigger, so it has about three times the parameters of the
character model. This script trains four MLPs with the leaderboard's budget (`MLP_TRAIN`) and
seeds: both at 512 hidden units, the BPE model narrowed to the character model's parameter
count, and the character model widened to the BPE model's. Each row records, per seed, held-out
bits per character and nats per token (`evaluation.token_nlls` over the protocol's validation
text).
"""

import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..leaderboard import LEADERBOARD_SEEDS, MLP_CONFIG, MLP_TRAIN, protocol, train_mlp_nlls
from ..mlp import MLPConfig
from .cli import commit_result, default_out, map_jobs, script_parser, start

MODULE = "llmscratch.scripts.chars_vs_tokens"
OUT = "data/chars_vs_tokens.json"


def mlp_parameters(vocab_size: int, hidden_dim: int, config: MLPConfig = MLP_CONFIG) -> int:
    """Parameters of Part 1's MLP: embedding table, hidden layer and output layer, with their biases.

    >>> mlp_parameters(65, 512), mlp_parameters(512, 512)
    (100433, 336896)
    """
    embed = vocab_size * config.embedding_dim
    hidden = (config.context_length * config.embedding_dim + 1) * hidden_dim
    return embed + hidden + (hidden_dim + 1) * vocab_size


def matched_width(vocab_size: int, target: int, config: MLPConfig = MLP_CONFIG) -> int:
    """The hidden width whose parameter count (`mlp_parameters`) comes closest to `target`.

    >>> matched_width(512, 100433), matched_width(65, 336896)
    (143, 1731)
    """
    per_unit = mlp_parameters(vocab_size, 2, config) - mlp_parameters(vocab_size, 1, config)
    guess = round((target - mlp_parameters(vocab_size, 0, config)) / per_unit)
    candidates = [max(1, guess + d) for d in (-1, 0, 1)]
    return min(candidates, key=lambda h: abs(mlp_parameters(vocab_size, h, config) - target))


def _one_run(bpe: bool, hidden_dim: int, seed: int, steps: int | None, threads: int, device: str) -> dict[str, Any]:
    torch.set_num_threads(threads)
    cfg = replace(MLP_TRAIN, steps=steps) if steps else MLP_TRAIN
    p = protocol()
    t0 = time.time()
    model, nlls = train_mlp_nlls(p, bpe, seed, cfg, progress=False, hidden_dim=hidden_dim, device=device)
    total = float(nlls.double().sum())
    run = {"seed": seed, "bits_per_char": round(total / 0.6931471805599453 / p.n_val_chars, 5),
           "nats_per_token": round(total / len(nlls), 5), "wall_seconds": round(time.time() - t0, 1),
           "num_parameters": model.num_parameters()}
    print(f"{'BPE' if bpe else 'chars':5s} hidden {hidden_dim:5d} seed {seed}: {run['bits_per_char']:.4f} bits/char "
          f"({run['wall_seconds']:.0f} s)", flush=True)
    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(LEADERBOARD_SEEDS))
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes (default 1)")
    args = parser.parse_args(argv)
    device, started = start(args)
    p = protocol()
    small = mlp_parameters(p.chars.vocab_size, MLP_CONFIG.hidden_dim)
    large = mlp_parameters(512, MLP_CONFIG.hidden_dim)
    rows = [("characters", False, MLP_CONFIG.hidden_dim), ("BPE-512", True, MLP_CONFIG.hidden_dim),
            ("BPE-512, narrowed to the character model's parameters", True, matched_width(512, small)),
            ("characters, widened to the BPE model's parameters", False, matched_width(p.chars.vocab_size, large))]
    calls = [(bpe, hidden, seed, args.steps, args.threads, str(device))
             for _, bpe, hidden in rows for seed in args.seeds]
    runs = map_jobs(_one_run, calls, args.jobs)
    out_rows = []
    for i, (name, bpe, hidden) in enumerate(rows):
        mine = runs[i * len(args.seeds):(i + 1) * len(args.seeds)]
        bits = [r["bits_per_char"] for r in mine]
        out_rows.append({"name": name, "unit": "BPE-512" if bpe else "chars", "hidden_dim": hidden,
                         "num_parameters": mine[0]["num_parameters"], "runs": mine,
                         "bits_per_char": {"mean": round(statistics.fmean(bits), 5), "min": min(bits),
                                           "max": max(bits)}})
    result = {"what": "Part 1's MLP on characters and on 512 BPE tokens, at 512 hidden units and at matched parameter "
                      "counts; held-out bits per character with the book's protocol (evaluation.token_nlls over the "
                      "leaderboard's validation text), one run per seed",
              "model_config": asdict(MLP_CONFIG),
              "train_config": asdict(replace(MLP_TRAIN, steps=args.steps or MLP_TRAIN.steps)),
              "seeds": list(args.seeds), "rows": out_rows}
    out = Path(args.out) if args.out else default_out(OUT)
    commit_result(out, result, MODULE, argv, started, args.seeds[0], device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
