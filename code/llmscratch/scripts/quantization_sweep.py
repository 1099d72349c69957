"""Part 4's quantization results: the course model at every scheme, and post-training against quantization-aware.

    python -m llmscratch.scripts.quantization_sweep course   # writes data/quantization_course.json
    python -m llmscratch.scripts.quantization_sweep qat      # writes data/quantization_qat.json

``course``: the course model (`llmscratch.course.load_course_model`) quantized with each scheme of
`COURSE_SCHEMES` (`llmscratch.quantized_model.quantize`), scored with the leaderboard's protocol
(every validation token, windows sliding 1/16 of the context; bits per character and nats per
token), with the bytes its state holds (`storage_report`) and the size of its saved file.

``qat``: Part 2's two-block GPT (`comparisons.RUNGS`, "two blocks") at the ladder's budget
(`comparisons.LADDER_TRAIN`), once per seed, trained in float and quantized afterwards with each
of `PTQ_SCHEMES`, and trained again from the same seed with `QAT_SCHEME` fake-quantized in every
forward pass (`fit_quantization_aware`), then quantized with it. Both are scored with the same
protocol. A sentence that says one beats the other needs their ranges over seeds to separate.

``--tokens N`` scores only the first N validation tokens (a quick trial).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..comparisons import LADDER_TRAIN, RUNGS, SEEDS
from ..course import load_course_model
from ..evaluation import protocol_stride, sliding_nlls
from ..experiments import shakespeare_bpe_splits
from ..leaderboard import protocol
from ..quantized_model import fit_quantization_aware, quantize, resolve_scheme, saved_bytes, storage_report
from .cli import commit_result, default_out, script_parser, start

MODULE = "llmscratch.scripts.quantization_sweep"
OUTS = {"course": "data/quantization_course.json", "qat": "data/quantization_qat.json"}
# (scheme, quantize the embedding too): from gentle to harsh, then the embedding.
COURSE_SCHEMES: list[tuple[str | None, bool]] = [
    (None, False), ("int8-tensor", False), ("int8-channel", False), ("int4-tensor", False), ("int4-channel", False),
    ("int4-g32", False), ("int4-zp-g32", False), ("int3-g32", False), ("int2-g32", False), ("int4-g32", True),
]
PTQ_SCHEMES: tuple[str, ...] = ("int4-g32", "int3-g32", "int2-g32")
QAT_SCHEME = "int2-g32"
QAT_MODEL = dict(RUNGS)["two blocks"]
LN2 = math.log(2)


def score(model: torch.nn.Module, ids: torch.Tensor, context: torch.Tensor, n_chars: int) -> dict[str, float]:
    """The protocol's bits per character and nats per token of `model` on `ids`."""
    nlls = sliding_nlls(model, ids, context, stride=protocol_stride(model.context_length)).double()
    return {"bits_per_char": round(float(nlls.sum()) / LN2 / n_chars, 5),
            "nats_per_token": round(float(nlls.mean()), 5)}


def course_rows(tokens: int | None) -> dict[str, Any]:
    """Every scheme of `COURSE_SCHEMES` on the course model: loss, bytes in memory and on disk."""
    model, tokenizer = load_course_model(verify=False)
    p = protocol()
    ids = p.bpe_val if tokens is None else p.bpe_val[:tokens]
    n_chars = p.n_val_chars if tokens is None else len(tokenizer.decode(ids.tolist()))
    rows = []
    for name, embeddings in COURSE_SCHEMES:
        t0 = time.time()
        q = model if name is None else quantize(model, name, include_embeddings=embeddings)
        report = storage_report(q)
        row = {"name": "fp32" if name is None else name + (" + embeddings" if embeddings else ""),
               "scheme": None if name is None else asdict(resolve_scheme(name)), "include_embeddings": embeddings,
               **score(q, ids, p.bpe_train, n_chars), "weights": report.weights,
               "integer_bytes": report.integer_bytes, "scale_bytes": report.scale_bytes,
               "float_bytes": report.float_bytes, "total_bytes": report.total_bytes,
               "bits_per_weight": round(report.bits_per_weight, 4), "file_bytes": saved_bytes(q)}
        row["seconds"] = round(time.time() - t0, 1)
        print(f"{row['name']:24s} {row['bits_per_char']:.4f} bits/char  {row['bits_per_weight']:.2f} bits/weight  "
              f"{row['file_bytes'] / 1e6:.2f} MB  ({row['seconds']:.0f} s)", flush=True)
        rows.append(row)
    return {"what": "the course model quantized with each scheme (linear layers; the token embedding and tied "
                    "output layer too where named), scored with the leaderboard's protocol on the validation text",
            "val_tokens": len(ids), "val_chars": n_chars, "rows": rows}


def qat_rows(seeds: Sequence[int], steps: int | None, tokens: int | None, progress: bool) -> dict[str, Any]:
    """Per seed: the float model, its post-training quantizations, and the quantization-aware model."""
    p = protocol()
    tokenizer, _, _ = shakespeare_bpe_splits()
    ids = p.bpe_val if tokens is None else p.bpe_val[:tokens]
    n_chars = p.n_val_chars if tokens is None else len(tokenizer.decode(ids.tolist()))
    splits = {"train": p.bpe_train, "val": p.bpe_val}
    base = replace(LADDER_TRAIN, steps=steps) if steps else LADDER_TRAIN
    runs = []
    for seed in seeds:
        cfg = replace(base, seed=seed)
        t0 = time.time()
        fp, fp_history = fit_quantization_aware(QAT_MODEL, splits, None, cfg, progress, f"float seed {seed}")
        row: dict[str, Any] = {"seed": seed, "fp32": score(fp, ids, p.bpe_train, n_chars),
                               "ptq": {name: score(quantize(fp, name), ids, p.bpe_train, n_chars)
                                       for name in PTQ_SCHEMES}}
        qat, qat_history = fit_quantization_aware(QAT_MODEL, splits, QAT_SCHEME, cfg, progress, f"QAT seed {seed}")
        row["qat"] = {QAT_SCHEME: score(quantize(qat, QAT_SCHEME), ids, p.bpe_train, n_chars)}
        row["curves"] = {"fp32": fp_history.curve(100), "qat": qat_history.curve(100)}
        row["wall_seconds"] = round(time.time() - t0, 1)
        print(f"seed {seed}: fp32 {row['fp32']['nats_per_token']:.4f}, PTQ "
              + ", ".join(f"{k} {v['nats_per_token']:.4f}" for k, v in row["ptq"].items())
              + f"; QAT {QAT_SCHEME} {row['qat'][QAT_SCHEME]['nats_per_token']:.4f} ({row['wall_seconds']:.0f} s)",
              flush=True)
        runs.append(row)
    return {"what": "Part 2's two-block GPT at the ladder budget, per seed: trained in float and quantized after "
                    "training (PTQ), or trained with the scheme fake-quantized in the forward pass (QAT, straight-"
                    "through gradient) and then quantized; validation loss with the leaderboard's protocol",
            "model_config": asdict(QAT_MODEL), "train_config": asdict(base), "seeds": list(seeds),
            "ptq_schemes": list(PTQ_SCHEMES), "qat_scheme": QAT_SCHEME, "val_tokens": len(ids), "val_chars": n_chars,
            "runs": runs}


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("part", choices=sorted(OUTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="qat: default 42 43 44")
    parser.add_argument("--tokens", type=int, help="score only the first N validation tokens (a trial)")
    args = parser.parse_args(argv)
    device, started = start(args)
    if args.part == "course":
        result = course_rows(args.tokens)
    else:
        result = qat_rows(args.seeds, args.steps, args.tokens, not args.no_progress)
    out = Path(args.out) if args.out else default_out(OUTS[args.part])
    commit_result(out, result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
