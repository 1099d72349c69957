"""A quantized model: linear layers that store integers and scales, and dequantize on the fly.

    small = quantize(model, "int4-g32")        # a copy; `model` is left as it was
    storage_report(small).bits_per_weight      # about 4.5 bits for a linear weight, plus the float parts

`quantize` returns a copy of a model in which every `nn.Linear` is a `QuantizedLinear`: its
``state_dict`` holds the packed integer codes (``qweight``, int8 or uint8), float16 ``scale``
and, for zero-point schemes, uint8 ``zero``, so ``torch.save`` writes the small integers, not
floats. Its forward pass rebuilds the float weight from them (`quantization.dequantize_tensor`)
and multiplies in float32: the file and the memory that holds the weights shrink; the
arithmetic does not get cheaper (that needs integer matrix kernels, which we leave out).

What stays in float: the token embedding (and so an output layer tied to it), the position
table, the norms and every bias. `storage_report` counts them, so its bits per weight is the
cost of the whole model. ``include_embeddings=True`` quantizes the embedding too, with the same
scheme, one row per token; an output layer tied to it then reads the very same integers.

`prepare_qat` is quantization-aware training: it swaps every linear layer for a
`FakeQuantLinear`, which keeps its float weight for the optimizer but computes with the rounded
one (`quantization.fake_quantize`). After training, `quantize` with the same scheme gives a
model that computes exactly what the trained one did.

Left out: quantized activations and integer kernels; calibration data (weight-only schemes need
none); per-layer choices of scheme.

References: Nagel et al., "A White Paper on Neural Network Quantization" (2021); Dettmers &
Zettlemoyer, "The case for 4-bit precision" (ICML 2023).
"""

from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import GPTConfig
from .datasets import TextBatches
from .model import GPT
from .quantization import (
    QUANT_SCHEMES,
    QuantizedTensor,
    QuantScheme,
    dequantize_tensor,
    fake_quantize,
    pack_codes,
    quantize_tensor,
    unpack_codes,
)
from .training import History, TrainConfig, train

__all__ = ["FakeQuantLinear", "QuantizedEmbedding", "QuantizedLinear", "StorageReport", "fit_quantization_aware",
           "prepare_qat", "quantize", "resolve_scheme", "saved_bytes", "storage_report"]


def resolve_scheme(scheme: QuantScheme | str) -> QuantScheme:
    """A `QuantScheme`, or the name of one in `QUANT_SCHEMES`."""
    if isinstance(scheme, QuantScheme):
        return scheme
    if isinstance(scheme, str):
        if scheme not in QUANT_SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r}; choose one of {tuple(QUANT_SCHEMES)} or pass a QuantScheme")
        return QUANT_SCHEMES[scheme]
    raise TypeError(f"scheme must be a QuantScheme or a name, got {type(scheme).__name__}")


class QuantizedLinear(nn.Module):
    """``y = x ŵᵀ + b`` with ŵ rebuilt from integer codes and scales at every call.

    Buffers: ``qweight`` (the packed codes), ``scale`` (float16, one per group), ``zero``
    (uint8, zero-point schemes only) and ``bias`` (float32, if any).
    """

    def __init__(self, in_features: int, out_features: int, scheme: QuantScheme | str, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.scheme = s = resolve_scheme(scheme)
        # Quantizing zeros allocates buffers of the right shapes and dtypes; load_state_dict fills them.
        qt = quantize_tensor(torch.zeros(out_features, in_features), s)
        self.register_buffer("qweight", pack_codes(qt.codes, s))
        self.register_buffer("scale", qt.scale)
        self.register_buffer("zero", qt.zero)
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)

    @classmethod
    def from_weight(cls, weight: torch.Tensor, bias: torch.Tensor | None, scheme: QuantScheme | str
                    ) -> QuantizedLinear:
        """Quantize a float weight (out_features, in_features); copy the bias as it is."""
        layer = cls(weight.shape[1], weight.shape[0], scheme, bias is not None)
        qt = quantize_tensor(weight, layer.scheme)
        layer.qweight, layer.scale, layer.zero = pack_codes(qt.codes, layer.scheme), qt.scale, qt.zero
        if bias is not None:
            layer.bias = bias.detach().float().clone()
        return layer

    def quantized(self) -> QuantizedTensor:
        """The codes unpacked, with their scales."""
        codes = unpack_codes(self.qweight, self.scheme, (self.out_features, self.in_features))
        return QuantizedTensor(codes, self.scale, self.zero, self.scheme)

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The float weight ŵ (out_features, in_features) that the forward pass uses."""
        return dequantize_tensor(self.quantized(), dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dequantized_weight(x.dtype), self.bias)  # (..., out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, scheme={self.scheme.name!r}"


class QuantizedEmbedding(nn.Embedding):
    """An embedding table read from a `QuantizedLinear`'s integers: row i is token i's vector.

    The table (num_embeddings, embedding_dim) has the shape of a tied output layer's weight,
    so one quantized matrix serves both. It is an `nn.Embedding` to the code that looks tokens
    up (so the model's id checks apply), but it holds no float table of its own.
    """

    def __init__(self, table: QuantizedLinear) -> None:
        nn.Module.__init__(self)  # not nn.Embedding's: that would allocate a float table
        self.table = table
        self.num_embeddings, self.embedding_dim = table.out_features, table.in_features

    @property
    def weight(self) -> torch.Tensor:
        return self.table.dequantized_weight()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, self.weight)  # (..., embedding_dim)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, scheme={self.table.scheme.name!r}"


class FakeQuantLinear(nn.Linear):
    """An `nn.Linear` that trains a float weight but computes with its quantized value (STE)."""

    def __init__(self, in_features: int, out_features: int, scheme: QuantScheme | str, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        self.scheme = resolve_scheme(scheme)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, fake_quantize(self.weight, self.scheme), self.bias)


def _embedding_weights(model: nn.Module) -> set[int]:
    return {id(m.weight) for m in model.modules() if type(m) is nn.Embedding}


def _replace(model: nn.Module, make) -> None:
    """Replace each child module for which ``make(child)`` returns a module (children first)."""
    for name, child in list(model.named_children()):
        new = make(child)
        if new is None:
            _replace(child, make)
        else:
            setattr(model, name, new)


def prepare_qat(model: nn.Module, scheme: QuantScheme | str) -> nn.Module:
    """Swap, in place, every `nn.Linear` not tied to an embedding for a `FakeQuantLinear` sharing its parameters.

    Call it before building the optimizer. Returns `model`.
    """
    s, tied = resolve_scheme(scheme), _embedding_weights(model)

    def make(m: nn.Module) -> nn.Module | None:
        if type(m) is not nn.Linear or id(m.weight) in tied:
            return None
        fq = FakeQuantLinear(m.in_features, m.out_features, s, m.bias is not None)
        fq.weight, fq.bias = m.weight, m.bias  # the same Parameters: the optimizer trains them
        return fq

    _replace(model, make)
    return model


def quantize(model: nn.Module, scheme: QuantScheme | str, include_embeddings: bool = False) -> nn.Module:
    """A copy of `model` whose linear layers (and, optionally, token embedding) store integers.

    Every `nn.Linear` (a `FakeQuantLinear` included) becomes a `QuantizedLinear`. A linear layer
    that shares its weight with an `nn.Embedding` (a tied output layer) stays float with the
    embedding, unless `include_embeddings`, which quantizes each embedding once and lets the
    tied layer read the same buffers. Returns the copy, in evaluation mode.
    """
    s = resolve_scheme(scheme)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    out = copy.deepcopy(model)
    tables: dict[int, QuantizedLinear] = {}
    if include_embeddings:
        def make_embedding(m: nn.Module) -> nn.Module | None:
            if type(m) is not nn.Embedding:
                return None
            tables[id(m.weight)] = QuantizedLinear.from_weight(m.weight, None, s)
            return QuantizedEmbedding(tables[id(m.weight)])
        tied = _embedding_weights(out)
        _replace(out, make_embedding)
    else:
        tied = _embedding_weights(out)

    def make_linear(m: nn.Module) -> nn.Module | None:
        if not isinstance(m, nn.Linear):
            return None
        if id(m.weight) in tied:
            return tables.get(id(m.weight))  # the embedding's quantized table, or None: stay float
        return QuantizedLinear.from_weight(m.weight, m.bias, s)

    _replace(out, make_linear)
    out.quantization = {"scheme": asdict(s), "include_embeddings": include_embeddings}
    return out.eval()


@dataclass(frozen=True)
class StorageReport:
    """What a model's state holds, by kind, counting every shared tensor once."""

    weights: int  # numbers the model computes with: quantized weights plus float parameters
    integer_bytes: int  # packed codes
    scale_bytes: int  # float16 scales and uint8 zero points
    float_bytes: int  # everything kept in float (embeddings, norms, biases, unquantized layers)

    @property
    def total_bytes(self) -> int:
        return self.integer_bytes + self.scale_bytes + self.float_bytes

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.total_bytes / self.weights


def storage_report(model: nn.Module) -> StorageReport:
    """Bytes of the integers, the scales and the float tensors in `model`'s state, and the weights they hold.

    >>> layer = nn.Sequential(nn.Linear(64, 8, bias=False))
    >>> r = storage_report(quantize(layer, "int4-g32"))
    >>> r.integer_bytes, r.scale_bytes, r.bits_per_weight   # 512 codes / 2; 16 float16 scales
    (256, 32, 4.5)
    """
    weights = integer = scales = floats = 0
    for module in {id(m): m for m in model.modules() if isinstance(m, QuantizedLinear)}.values():
        weights += module.in_features * module.out_features
    seen: set[int] = set()  # storages already counted (a tied matrix appears under two names)
    for name, t in model.state_dict(keep_vars=True).items():
        key = t.untyped_storage().data_ptr()
        if key in seen:
            continue
        seen.add(key)
        nbytes = t.numel() * t.element_size()
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "qweight":
            integer += nbytes
        elif leaf in ("scale", "zero"):
            scales += nbytes
        else:
            floats += nbytes
            weights += t.numel()
    return StorageReport(weights, integer, scales, floats)


def saved_bytes(model: nn.Module, path: str | Path | None = None) -> int:
    """``torch.save(model.state_dict(), path)`` and the file's size in bytes (a temporary file if no `path`)."""
    if path is not None:
        torch.save(model.state_dict(), path)
        return os.path.getsize(path)
    with tempfile.TemporaryDirectory() as tmp:
        return saved_bytes(model, Path(tmp) / "model.pt")


def fit_quantization_aware(
    config: GPTConfig, splits: dict[str, torch.Tensor], scheme: QuantScheme | str | None, cfg: TrainConfig,
    progress: bool = True, desc: str = "QAT",
) -> tuple[GPT, History]:
    """Train ``GPT(config)`` from scratch with fake-quantized linear layers (`prepare_qat`), seeded by ``cfg.seed``.

    The same initialisation and batches as `comparisons.fit_rung` with that seed: only the
    rounding in the forward pass differs. ``scheme=None`` trains the float model (the baseline
    that post-training quantization starts from). Returns the model (still fake-quantized) and
    its training history.
    """
    torch.manual_seed(cfg.seed)
    model = GPT(config)
    if scheme is not None:
        prepare_qat(model, scheme)
    batches = TextBatches({"train": splits["train"], "val": splits["val"]}, config.context_length,
                          every_position=True)
    history = train(model, batches, cfg, progress=progress, desc=desc)
    return model, history
