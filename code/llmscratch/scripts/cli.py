"""What every script of the course shares: its common options, its start, and how it commits a result.

A script is a short ``main(argv)``: build the parser with `script_parser`, add its own options,
call `start`, run a function of the package, and write the result with `commit_result`, which
adds the provenance record (`llmscratch.provenance.script_provenance`). The two recipe scripts
(`train_mlp`, `train_gpt`) are the same program over different recipes: `recipe_main`.

Common options: ``--steps`` (a shorter trial), ``--out``, ``--threads`` (torch CPU threads; 1 by
default, so the recorded wall time means one core), ``--device`` (auto, cpu, cuda or mps;
the default is the CPU, on which the committed results were made), ``--no-progress``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

import torch

from ..config import GPTConfig
from ..experiments import RECIPES, run_recipe, save_run
from ..fileio import atomic_write_text
from ..paths import repo_root
from ..provenance import script_provenance, to_json
from ..runtime import DEVICES, PRECISIONS, resolve_device

T = TypeVar("T")

__all__ = ["commit_result", "default_out", "map_jobs", "recipe_main", "script_parser", "start"]


def script_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """A parser for ``python -m <module>`` with the options every script takes."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, help="override the number of training steps (for a quick trial)")
    parser.add_argument("--out", help="where to write the result (default: under data/)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as reported)")
    parser.add_argument("--device", choices=DEVICES, default="cpu",
                        help="where to train: auto picks CUDA, then MPS, then the CPU (default cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    return parser


def start(args: argparse.Namespace) -> tuple[torch.device, float]:
    """Apply the common options; return the device to train on and the start time."""
    if args.steps is not None and args.steps <= 0:
        raise SystemExit(f"--steps must be positive, got {args.steps}")
    torch.set_num_threads(args.threads)
    return resolve_device(args.device), time.time()


def map_jobs(fn: Callable[..., T], calls: Sequence[tuple], jobs: int = 1) -> list[T]:
    """``[fn(*args) for args in calls]``, `jobs` calls at a time in separate processes when `jobs` > 1.

    Worth it on a GPU, where one small model leaves the device mostly idle; on a CPU the
    processes share the cores, so keep 1. `fn` must be a module-level function (it is pickled).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if jobs == 1:
        return [fn(*args) for args in calls]
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(fn, *args) for args in calls]
        return [future.result() for future in futures]


def default_out(relative: str) -> Path:
    """A path under the course checkout (where committed results live); relative to here outside one."""
    root = repo_root()
    return root / relative if root is not None else Path(relative)


def commit_result(
    path: Path, result: dict[str, Any], module: str, argv: Sequence[str] | None, started: float,
    seed: int | None, device: torch.device, model: torch.nn.Module | None = None, half: bool = False,
) -> None:
    """Write `result` with its provenance to `path` (.json), and the model's weights beside it (.pt).

    `half` stores the weights in float16 (`llmscratch.experiments.save_run`).
    """
    record = script_provenance(module, sys.argv[1:] if argv is None else argv, time.time() - started, seed)
    result = {**result, "provenance": {**record, "device": str(device)}}
    if model is not None:
        save_run(path, result, model, half=half)
    else:
        atomic_write_text(path, to_json(result) + "\n")


def recipe_main(module: str, doc: str | None, kind: type, argv: Sequence[str] | None) -> int:
    """Train one of the `RECIPES` whose model config is of type `kind`, and commit its result."""
    names = sorted(name for name, recipe in RECIPES.items() if isinstance(recipe.model, kind))
    parser = script_parser(module, doc)
    parser.add_argument("recipe", choices=names)
    parser.add_argument("--checkpoint", help="write a resumable training checkpoint here")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    parser.add_argument("--eval-batches", type=int, help="override the recipe's batches per loss estimate")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="override the recipe's number format (bf16 on a recent GPU or a CPU with AMX)")
    if kind is GPTConfig:
        parser.add_argument("--eval-tokens", type=int,
                            help="score only the first N tokens of each split (a quick trial)")
        parser.add_argument("--sample-tokens", type=int, default=200,
                            help="tokens to generate per sample (default 200)")
    args = parser.parse_args(argv)
    if args.resume and not args.checkpoint:
        parser.error("--resume needs --checkpoint")
    device, started = start(args)
    recipe = RECIPES[args.recipe]
    if args.steps:
        recipe = replace(recipe, train=replace(recipe.train, steps=args.steps))
    if args.eval_batches:
        recipe = replace(recipe, train=replace(recipe.train, eval_batches=args.eval_batches))
    if args.precision:
        recipe = replace(recipe, train=replace(recipe.train, precision=args.precision))
    model, result = run_recipe(recipe, device=device, checkpoint=args.checkpoint, resume=args.resume,
                               progress=not args.no_progress, desc=args.recipe,
                               eval_tokens=getattr(args, "eval_tokens", None),
                               sample_tokens=getattr(args, "sample_tokens", None))
    out = Path(args.out) if args.out else default_out(recipe.out)
    commit_result(out, result, module, argv, started, recipe.train.seed, device, model, half=recipe.half_weights)
    losses = ", ".join(f"{k} {v:.4f}" for k, v in result["loss"].items())
    print(f"{args.recipe}: {losses} in {time.time() - started:.0f} s -> {out.with_suffix('.json')}")
    return 0
