"""Export a GPT to one compact binary file that a web page can read, and read it back.

The playground runs the course model in the reader's browser, in plain JavaScript. It needs
the weights in a form a few lines of JavaScript can parse, and small enough to download:

    bytes 0 .. 7     the magic b"LLMSGPT1": what the file is, and the version of its layout
    bytes 8 .. 11    N, the header's length in bytes (uint32, little-endian)
    bytes 12 .. 12+N the header: UTF-8 JSON, padded with spaces so that the data starts at a multiple of 4
    the rest         the tensors, little-endian, each starting at a multiple of 4 bytes

The header holds the `GPTConfig` and, for every tensor, its name, shape, storage dtype, and
where its bytes are (``offset`` from the start of the data, ``nbytes``). With ``dtype="int8"``
every matrix is stored as int8 codes with one float32 scale per output row, whose place the
tensor's ``scale`` entry gives: the per-channel absmax scheme of `llmscratch.quantization`
(``QUANT_SCHEMES["int8-channel"]``), so each weight is off by at most half its row's step. The
vectors (norms, biases) stay float32: 0.4% of the course model's weights. ``dtype="float16"``
halves every matrix instead. An output layer tied to the token embedding is stored once.

    >>> import tempfile, pathlib
    >>> from llmscratch import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=16, context_length=8, d_model=8, n_layers=1, n_heads=2))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.bin"
    >>> export_model(model, path, dtype="int8") == path.stat().st_size  # returns the bytes it wrote
    True
    >>> config, state = load_export(path)
    >>> config == model.config, sorted(state) == sorted(model.state_dict())
    (True, True)

`load_export` gives the weights back dequantized, as a state dict for ``GPT(config)``: the
package then computes reference outputs on exactly the weights the browser uses, and
`export_fixtures` writes those, with small cases for each piece of the JavaScript engine (a
matrix product, a softmax, one attention layer with a cache, the tokenizer, the sampling rules).

Left out: int4 and other packed codes, quantized activations (the browser multiplies in float),
and compression (a web server's gzip does little for int8 weights).
"""

from __future__ import annotations

import json
import math
import os
import random
import struct
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import regex
import torch

from .attention import CausalSelfAttention
from .bpe import BPETokenizer
from .config import GPTConfig
from .fileio import atomic_path, atomic_write_text
from .kv_cache import KVCache
from .model import GPT
from .quantization import QUANT_SCHEMES, QuantizedTensor, dequantize_tensor, quantize_tensor
from .sampling import generate, next_token_probs

__all__ = ["EXPORT_DTYPES", "ExportFileError", "MAGIC", "export_fixtures", "export_model", "load_export",
           "load_export_model",
           "read_header"]

MAGIC = b"LLMSGPT1"
EXPORT_DTYPES = ("int8", "float16", "float32")  # how matrices are stored; vectors are always float32
_STORAGE = {"int8": torch.int8, "float16": torch.float16, "float32": torch.float32}
_INT8 = QUANT_SCHEMES["int8-channel"]


class ExportFileError(ValueError):
    """A file that is not a readable export: wrong magic, truncated, or a header that does not parse."""


def _align(n: int) -> int:
    return (n + 3) // 4 * 4  # the next multiple of 4


def export_model(model: GPT, path: str | os.PathLike, dtype: str = "int8") -> int:
    """Write `model` to `path` in the format of the module docstring; returns the file's size in bytes."""
    if not isinstance(model, GPT):
        raise TypeError(f"export_model needs a llmscratch.GPT, got {type(model).__name__}")
    if dtype not in EXPORT_DTYPES:
        raise ValueError(f"dtype={dtype!r}; choose one of {EXPORT_DTYPES}")
    state = model.state_dict()
    if model.config.tie_weights:
        del state["lm_head.weight"]  # the same matrix as token_embedding.weight: stored once
    entries, blobs, offset = [], [], 0

    def put(data: torch.Tensor) -> dict[str, Any]:
        nonlocal offset
        array = data.contiguous().numpy()
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()  # little-endian, whatever this machine's order
        blobs.append(raw + b"\0" * (_align(len(raw)) - len(raw)))  # the next tensor starts aligned to 4
        where = {"offset": offset, "nbytes": len(raw)}
        offset += _align(len(raw))
        return where

    for name, tensor in state.items():
        w = tensor.detach().float().cpu()
        entry: dict[str, Any] = {"name": name, "shape": list(w.shape)}
        if w.ndim == 2 and dtype == "int8":
            qt = quantize_tensor(w, _INT8)  # codes in [-127, 127], one float16 scale per row (rows, 1)
            entry.update(dtype="int8", **put(qt.codes.to(torch.int8)))
            entry["scale"] = {"dtype": "float32", "shape": [w.shape[0]], **put(qt.scale.float().flatten())}
        else:
            kind = dtype if w.ndim == 2 else "float32"
            if kind == "float16" and float(w.abs().max()) > 65504:
                raise ValueError(f"{name} has weights beyond float16's range (65504): export it as int8 or float32")
            entry.update(dtype=kind, **put(w.to(_STORAGE[kind])))
        entries.append(entry)
    header = {"format": "llmscratch.export", "version": 1, "dtype": dtype,
              "config": asdict(model.config), "tensors": entries}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (_align(len(MAGIC) + 4 + len(text)) - len(MAGIC) - 4 - len(text))  # data starts aligned
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<I", len(text)) + text)
        for blob in blobs:
            f.write(blob)
    return len(MAGIC) + 4 + len(text) + offset


def _read_tensor(data: bytes, spec: dict[str, Any], shape: list[int], path: Path) -> torch.Tensor:
    """The tensor `spec` describes (its offset, nbytes and dtype) in `data`, as float32."""
    start, nbytes, dtype = int(spec["offset"]), int(spec["nbytes"]), _STORAGE[spec["dtype"]]  # KeyError: bad header
    if nbytes != math.prod(shape) * dtype.itemsize:
        raise ExportFileError(f"{path}: {nbytes} bytes cannot hold a {spec['dtype']} tensor of shape {shape}")
    if start < 0 or start + nbytes > len(data):
        raise ExportFileError(f"{path} is truncated: a tensor ends at byte {start + nbytes} of {len(data)} data bytes")
    stored = np.dtype(spec["dtype"]).newbyteorder("<")
    flat = np.frombuffer(data, dtype=stored, count=nbytes // stored.itemsize, offset=start)
    return torch.from_numpy(flat.astype(stored.newbyteorder("="))).reshape(shape)  # a copy, in native order


def read_header(raw: bytes, name: str = "the file") -> tuple[dict[str, Any], int]:
    """The JSON header of an export's bytes `raw`, and the offset at which its tensors' data starts.

    This is all ``gpt.js`` reads before the weights: the magic, the header's length, the header.
    Raises `ExportFileError` (naming `name`) on the wrong magic, a truncated file, or a header that
    is not JSON.
    """
    if raw[:len(MAGIC)] != MAGIC:
        raise ExportFileError(f"{name} is not a llmscratch export: it starts with {raw[:len(MAGIC)]!r}, not {MAGIC!r}")
    if len(raw) < len(MAGIC) + 4:
        raise ExportFileError(f"{name} is truncated: {len(raw)} bytes, too short for the header's length")
    (n,) = struct.unpack_from("<I", raw, len(MAGIC))
    start = len(MAGIC) + 4
    if start + n > len(raw):
        raise ExportFileError(f"{name} is truncated: the header says {n} bytes, {len(raw) - start} follow")
    try:
        header = json.loads(raw[start:start + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ExportFileError(f"{name}: the header does not parse as an export header ({err!r})") from None
    return header, start + n


def load_export(path: str | os.PathLike) -> tuple[GPTConfig, dict[str, torch.Tensor]]:
    """Read a file written by `export_model`: its config and a float32 state dict, dequantized.

    ``GPT(config).load_state_dict(state)`` then gives the model the browser runs. Raises
    `ExportFileError` on a file with the wrong magic, a truncated one, or a header that does not parse.
    """
    path = Path(path)
    raw = path.read_bytes()
    header, data_start = read_header(raw, str(path))
    data, state = raw[data_start:], {}
    try:
        config = GPTConfig(**header["config"])
        for spec in header["tensors"]:
            values = _read_tensor(data, spec, spec["shape"], path)
            if "scale" in spec:  # int8 codes: one scale per row, as `quantize_tensor` made them
                scale = _read_tensor(data, spec["scale"], [spec["shape"][0], 1], path)
                values = dequantize_tensor(QuantizedTensor(values.to(torch.int16), scale, None, _INT8))
            state[spec["name"]] = values.float()
    except ExportFileError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise ExportFileError(f"{path}: the header does not parse as an export header ({err!r})") from None
    if config.tie_weights:
        state["lm_head.weight"] = state["token_embedding.weight"]
    return config, state


def load_export_model(path: str | os.PathLike) -> GPT:
    """A `GPT` in evaluation mode with the weights of an export, exactly as the browser reads them."""
    config, state = load_export(path)
    model = GPT(config)
    model.load_state_dict(state)
    return model.eval()


# --- Fixtures: what the JavaScript engine's checks compare against. ---

# Text for the tokenizer checks: accents, Greek, Cyrillic, CJK, emoji and a combining mark,
# contractions, digits, the special token, and the whitespace the pre-tokenizer treats
# specially (U+0085 and U+00A0 are whitespace to Python's regex; U+FEFF is not).
TOKENIZER_TEXTS = [
    "ROMEO:\nBut soft, what light through yonder window breaks?\n",
    "Café crème, naïve façade — Ελληνικά, русский, 日本語の文章 and 🎭🗡️! It's 12345 o'clock; "
    "we'll see.<|endoftext|>KING HENRY:\n\tTabs,  two  spaces,\u00a0nbsp,\u0085nel,\ufeffbom, e\u0301 \u2028end   ",
    "", " ", "\n\n\n", "a<|endoftext|><|endoftext|>b", "<|endoftext", "x'll 'S 'sx '''",
]
_ALPHABET = list("aeiouRST '\n\t,.!?-0123456789") + ["  ", "é", "ß", "Ω", "ж", "中", "🙂", "\u0301", "\u00a0",
                                                     "\u0085", "\ufeff", "\u2003", "\x1c", "<|endoftext|>", "'s"]
# (temperature, top_k, top_p, min_p): plain, greedy, each rule, and all three in a row.
_SAMPLING_CASES = ((1.0, None, None, None), (0.0, None, None, None), (0.7, 5, None, None), (1.3, None, 0.9, None),
                   (1.0, 8, 0.8, 0.05))
DEFAULT_PROMPT = "ROMEO:\nBut soft, what light through yonder window breaks?\nJULIET:\n"


def _character_classes() -> list[list[int]]:
    """[first code point, class] wherever the class changes: 0 letter, 1 digit, 2 whitespace, 3 other.

    The pre-tokenization pattern sees characters through these classes only, so a JavaScript
    regex that classifies every code point the same way splits every text the same way.
    """
    runs = regex.finditer(r"(\p{L}+)|(\p{N}+)|(\s+)|([^\s\p{L}\p{N}]+)", "".join(map(chr, range(0x110000))))
    return [[m.start(), m.lastindex - 1] for m in runs]


def _tensor_cases(g: torch.Generator) -> dict[str, Any]:
    x, w, b = torch.randn(3, 7, generator=g), torch.randn(5, 7, generator=g), torch.randn(5, generator=g)
    logits = torch.randn(2, 11, generator=g) * 3
    gain, shift = torch.randn(7, generator=g), torch.randn(7, generator=g)
    h = torch.linspace(-8, 8, 161)  # float32 values, so the browser's float32 inputs are the same numbers
    return {
        "matmul": {"x": x.tolist(), "w": w.tolist(), "b": b.tolist(), "y": (x @ w.T + b).tolist()},
        "softmax": {"x": logits.tolist(), "y": torch.softmax(logits, -1).tolist()},
        "layernorm": {"x": x.tolist(), "weight": gain.tolist(), "bias": shift.tolist(),
                      "y": torch.nn.functional.layer_norm(x, (7,), gain, shift).tolist()},
        "gelu": {"x": h.tolist(), "y": torch.nn.functional.gelu(h.double()).tolist(),
                 "erf": [math.erf(v) for v in h.tolist()]},
    }


@torch.no_grad()
def _attention_case(g: torch.Generator) -> dict[str, Any]:
    """A small RoPE attention layer, fed 3 tokens, then 1, then 1, through a KV cache."""
    config = GPTConfig(vocab_size=8, context_length=8, d_model=16, n_layers=1, n_heads=2, position="rope")
    layer = CausalSelfAttention(config)
    for p in layer.parameters():
        p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    x = torch.randn(1, 5, 16, generator=g)
    cache, outputs = KVCache(config), []
    for a, b in ((0, 3), (3, 4), (4, 5)):
        outputs.append(layer(x[:, a:b], cache=cache, layer=0))
        cache.length += b - a  # GPT.forward advances the cache after its last layer
    return {"config": asdict(config), "weights": {k: v.flatten().tolist() for k, v in layer.state_dict().items()},
            "x": x[0].tolist(), "pieces": [3, 1, 1], "y": torch.cat(outputs, 1)[0].tolist(),
            "y_whole": layer(x)[0].tolist()}


def export_fixtures(
    path: str | os.PathLike, model_file: str | os.PathLike, tokenizer: BPETokenizer,
    prompt: str = DEFAULT_PROMPT, new_tokens: int = 50, seed: int = 0,
) -> dict[str, Any]:
    """Write (and return) the JSON of reference outputs that the JavaScript checks compare against.

    The model's part is computed on the weights of `model_file` as `load_export` reads them:
    the greedy continuation of `prompt` by `generate` at temperature 0, and at each of its steps
    the five most likely next tokens with their probabilities.
    """
    model = load_export_model(model_file)
    prompt_ids = tokenizer.encode(prompt)
    if not prompt_ids or len(prompt_ids) + new_tokens > model.config.context_length:
        raise ValueError(f"a prompt of {len(prompt_ids)} tokens and {new_tokens} new ones must fit, non-empty, in "
                         f"context_length={model.config.context_length}")
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    texts = TOKENIZER_TEXTS + ["".join(rng.choices(_ALPHABET, k=rng.randint(1, 40))) for _ in range(200)]
    ids = [rng.randrange(tokenizer.vocab_size) for _ in range(400)]
    sampling = []
    for temperature, top_k, top_p, min_p in _SAMPLING_CASES:
        logits = torch.randn(32, generator=g, dtype=torch.float64) * 2
        rules = {"top_k": top_k, "top_p": top_p, "min_p": min_p}
        probs = next_token_probs(logits, temperature, **rules)
        sampling.append({"logits": logits.tolist(), "temperature": temperature, **rules, "probs": probs.tolist()})
    greedy = generate(model, torch.tensor([prompt_ids]), new_tokens, temperature=0)[0]
    with torch.no_grad():
        logits, _ = model(torch.tensor([prompt_ids + greedy]))  # (1, T, V): every step's logits at once
    top = torch.softmax(logits[0, len(prompt_ids) - 1:-1].double(), -1).topk(5)  # (new_tokens, 5)
    chunks = [ids[i:i + 8] for i in range(0, len(ids), 8)]
    fixtures = {
        "tensor": _tensor_cases(g),
        "attention": _attention_case(g),
        "tokenizer": {"classes": _character_classes(),
                      "encode": [{"text": t, "ids": tokenizer.encode(t)} for t in texts],
                      "decode": [{"ids": chunk, "text": tokenizer.decode(chunk)} for chunk in chunks]},
        "sampling": sampling,
        "model": {"file": Path(model_file).name, "prompt": prompt, "prompt_ids": prompt_ids, "greedy_ids": greedy,
                  "top5_ids": top.indices.tolist(), "top5_probs": top.values.tolist()},
    }
    atomic_write_text(path, json.dumps(fixtures))
    return fixtures
