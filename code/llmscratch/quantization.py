"""Quantization of a weight matrix: small integers plus a scale per group, and back.

A float weight ``w`` is stored as an integer ``q`` and a scale ``s`` (and, for zero-point
quantization, an integer offset ``z``), and read back as ``ŵ = s · (q - z)``:

- **absmax** (symmetric): ``s = max|w| / qmax`` with ``qmax = 2^(bits-1) - 1``, ``z = 0``, so
  ``q = round(w / s)`` lies in ``[-qmax, qmax]`` and 0 is stored exactly;
- **zero-point** (asymmetric): the grid of ``2^bits`` levels spans ``[min(w, 0), max(w, 0)]``,
  ``s = (max - min) / (2^bits - 1)`` and ``z = round(-min / s)``, which spends no level on
  values the group does not have (a group of only positive weights keeps all its levels).

Rounding to the nearest level means every weight moves by at most half a step,
``|w - ŵ| ≤ s / 2``: the error bound the tests check for every scheme. One scale can cover the
whole tensor (**per-tensor**), one output row (**per-channel**), or a **group** of
``group_size`` consecutive weights of a row along the input dimension (int4 formats such as
GPTQ's and llama.cpp's use 32 to 128). A smaller group costs more scales and follows the
weights more closely: one outlier then only coarsens the grid of its own group.

    >>> w = torch.tensor([[0.5, -1.0, 0.25, 0.0]])
    >>> qt = quantize_tensor(w, QuantScheme(bits=4, granularity="channel"))
    >>> qt.codes.tolist(), float(qt.scale)   # scale = 1.0 / 7, rounded up to float16
    ([[3, -7, 2, 0]], 0.1429443359375)
    >>> (dequantize_tensor(qt) - w).abs().max().item() <= float(qt.scale) / 2
    True

Scales are stored in float16 (as int4 file formats do), rounded *up* so that no weight falls
outside the grid and the bound holds for the stored scale. Codes of fewer than 8 bits are
packed into bytes (`pack_codes`): two int4 codes per uint8, four int2 codes; an int3 code takes
a 4-bit slot (real formats pack 3-bit codes more tightly; we keep the arithmetic simple and
count the slot we use).

`fake_quantize` rounds in the forward pass and lets the gradient through unchanged (the
straight-through estimator), the trick behind quantization-aware training.

Left out: activation quantization (int8 matrix multiplies need it, we dequantize to float
instead), non-uniform grids (NF4, k-means), error-correcting methods that adjust the weights as
they round (GPTQ, AWQ), and mixed precision per layer.

References: Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference" (CVPR 2018); Dettmers et al., "LLM.int8()" (NeurIPS 2022);
Bengio, Léonard & Courville (2013) for the straight-through estimator; Frantar et al., "GPTQ"
(ICLR 2023) for group-wise int4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

__all__ = ["GRANULARITIES", "QUANT_SCHEMES", "QuantScheme", "QuantizedTensor", "dequantize_tensor",
           "fake_quantize", "pack_codes", "quantize_tensor", "unpack_codes"]

GRANULARITIES = ("tensor", "channel", "group")
FP16_MAX = 65504.0


@dataclass(frozen=True)
class QuantScheme:
    """How to quantize a weight matrix (out_features, in_features).

    >>> QuantScheme(bits=4, granularity="group", group_size=32).name
    'int4 absmax g32'
    >>> QuantScheme(bits=4, granularity="group").name
    Traceback (most recent call last):
    ValueError: QuantScheme.group_size must be a positive integer for granularity='group', got 0
    """

    # Bits per code: 8 keeps nearly everything; 4 is the usual size for serving LLMs; 2 breaks most.
    bits: int = 8
    # True: absmax, a grid symmetric around 0 (no offset to store); False: zero-point, min to max.
    symmetric: bool = True
    # "tensor": one scale for the matrix; "channel": one per output row; "group": one per group_size weights.
    granularity: str = "channel"
    # Weights per group along the input dimension (granularity="group" only).
    group_size: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or isinstance(self.bits, bool) or not 2 <= self.bits <= 8:
            raise ValueError(f"QuantScheme.bits must be an integer from 2 to 8, got {self.bits!r}")
        if not isinstance(self.symmetric, bool):
            raise TypeError(f"QuantScheme.symmetric must be True or False, got {self.symmetric!r}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"QuantScheme.granularity={self.granularity!r}; choose one of {GRANULARITIES}")
        g = self.group_size
        if not isinstance(g, int) or isinstance(g, bool):
            raise TypeError(f"QuantScheme.group_size must be an integer, got {g!r}")
        if self.granularity == "group" and g <= 0:
            raise ValueError(f"QuantScheme.group_size must be a positive integer for granularity='group', got {g}")
        if self.granularity != "group" and g != 0:
            raise ValueError(f"QuantScheme.group_size={g} only applies to granularity='group'")

    @property
    def name(self) -> str:
        where = {"tensor": "per-tensor", "channel": "per-channel", "group": f"g{self.group_size}"}[self.granularity]
        return f"int{self.bits} {'absmax' if self.symmetric else 'zero-point'} {where}"

    @property
    def qmin(self) -> int:
        return -(2 ** (self.bits - 1) - 1) if self.symmetric else 0

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.symmetric else 2**self.bits - 1

    @property
    def storage_bits(self) -> int:
        """Bits each code occupies when stored: 8, or the power of two a packed code is rounded up to."""
        return 8 if self.bits > 4 else 4 if self.bits > 2 else 2


# The schemes the chapter compares, by short name.
QUANT_SCHEMES: dict[str, QuantScheme] = {
    "int8-tensor": QuantScheme(8, True, "tensor"),
    "int8-channel": QuantScheme(8, True, "channel"),
    "int8-zp-channel": QuantScheme(8, False, "channel"),
    "int4-tensor": QuantScheme(4, True, "tensor"),
    "int4-channel": QuantScheme(4, True, "channel"),
    "int4-g64": QuantScheme(4, True, "group", 64),
    "int4-g32": QuantScheme(4, True, "group", 32),
    "int4-zp-g32": QuantScheme(4, False, "group", 32),
    "int3-g32": QuantScheme(3, True, "group", 32),
    "int2-g32": QuantScheme(2, True, "group", 32),
    "int2-zp-g32": QuantScheme(2, False, "group", 32),
}


class QuantizedTensor(NamedTuple):
    """A quantized matrix, unpacked: ``ŵ = scale · (codes - zero)`` group by group."""

    codes: torch.Tensor  # the shape of w, int16: integers in [scheme.qmin, scheme.qmax]
    scale: torch.Tensor  # (rows, groups) float16: rows = 1 per-tensor, out_features otherwise
    zero: torch.Tensor | None  # (rows, groups) uint8 offsets for zero-point; None for absmax
    scheme: QuantScheme


def _grouped(w: torch.Tensor, scheme: QuantScheme) -> torch.Tensor:
    """`w` viewed as (rows, groups, weights per group): every scale covers one [r, g, :] slice."""
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        raise TypeError(f"expected a floating-point tensor of weights, got {type(w).__name__}")
    if not isinstance(scheme, QuantScheme):
        raise TypeError(f"scheme must be a QuantScheme, got {type(scheme).__name__}")
    if w.numel() == 0:
        raise ValueError("cannot quantize an empty tensor")
    if scheme.granularity == "tensor":
        return w.reshape(1, 1, -1)  # (1, 1, numel)
    if w.ndim != 2:
        raise ValueError(f"{scheme.granularity} quantization needs a matrix (out_features, in_features), "
                         f"got shape {tuple(w.shape)}")
    out, inp = w.shape
    if scheme.granularity == "channel":
        return w.reshape(out, 1, inp)  # (out, 1, in)
    if inp % scheme.group_size:
        raise ValueError(f"in_features={inp} is not divisible by group_size={scheme.group_size}")
    return w.reshape(out, inp // scheme.group_size, scheme.group_size)  # (out, in / g, g)


def _fp16_up(s: torch.Tensor) -> torch.Tensor:
    """`s` (positive float32) rounded up to the nearest float16, so that scale ≥ the exact one."""
    if float(s.max()) > FP16_MAX:
        raise ValueError(f"a scale of {float(s.max()):.3g} overflows float16: weights this large need float32 scales")
    h = s.to(torch.float16)
    up = torch.nextafter(h, torch.full_like(h, float("inf")))
    return torch.where(h.float() < s, up, h)


def quantize_tensor(w: torch.Tensor, scheme: QuantScheme) -> QuantizedTensor:
    """Integer codes, float16 scales and (zero-point) offsets for `w` under `scheme`.

    A group of zeros gets scale 1 (any scale reproduces it exactly). Raises `ValueError` when the
    input dimension does not split into whole groups.
    """
    _grouped(w, scheme)  # checks the input
    x = _grouped(w.detach().float(), scheme)  # (rows, groups, g)
    if scheme.symmetric:
        amax = x.abs().amax(-1)  # (rows, groups)
        scale = _fp16_up(torch.where(amax > 0, amax / scheme.qmax, torch.ones_like(amax)))
        zero = None
        q = torch.round(x / scale.float()[..., None]).clamp(scheme.qmin, scheme.qmax)  # (rows, groups, g)
    else:
        lo, hi = x.amin(-1).clamp(max=0), x.amax(-1).clamp(min=0)  # the grid always holds 0
        span = hi - lo
        scale = _fp16_up(torch.where(span > 0, span / scheme.qmax, torch.ones_like(span)))
        z = torch.round(-lo / scale.float()).clamp(0, scheme.qmax)  # (rows, groups)
        zero = z.to(torch.uint8)
        q = (torch.round(x / scale.float()[..., None]) + z[..., None]).clamp(0, scheme.qmax)
    return QuantizedTensor(q.to(torch.int16).reshape(w.shape), scale, zero, scheme)


def dequantize_tensor(qt: QuantizedTensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``scale · (codes - zero)``, group by group, in the shape of the original weights."""
    q = _grouped(qt.codes.to(dtype), qt.scheme)  # (rows, groups, g)
    if qt.zero is not None:
        q = q - qt.zero.to(dtype)[..., None]
    return (q * qt.scale.to(dtype)[..., None]).reshape(qt.codes.shape)


def fake_quantize(w: torch.Tensor, scheme: QuantScheme) -> torch.Tensor:
    """`w` quantized and dequantized in the forward pass, with the gradient of the identity.

    ``w + (ŵ - w).detach()`` has the value ŵ, and its gradient with respect to `w` is 1: the
    straight-through estimator. Rounding has a zero gradient almost everywhere, so training
    through it directly would never move a weight; this passes the gradient as if rounding were
    not there, and the weights drift until their rounded values serve the loss.

    >>> w = torch.tensor([0.3, -0.9], requires_grad=True)
    >>> fake_quantize(w, QuantScheme(bits=2, granularity="tensor")).sum().backward()
    >>> w.grad.tolist()
    [1.0, 1.0]
    """
    return w + (dequantize_tensor(quantize_tensor(w, scheme), w.dtype) - w).detach()


def pack_codes(codes: torch.Tensor, scheme: QuantScheme) -> torch.Tensor:
    """Codes as the bytes that store them: int8/uint8 at 8 bits, else packed uint8 (1-D).

    Absmax codes are shifted by 2^(bits-1) to be non-negative before packing; code i of a byte
    sits in bits ``i·b .. i·b + b - 1`` (b = storage bits), the first code in the low bits.

    >>> s = QuantScheme(bits=4, symmetric=False, granularity="tensor")
    >>> pack_codes(torch.tensor([1, 2, 15]), s).tolist()   # 1 + 2·16, then 15 + 0·16 (padding)
    [33, 15]
    """
    if scheme.bits == 8:
        return codes.to(torch.int8 if scheme.symmetric else torch.uint8).flatten()
    b = scheme.storage_bits
    per_byte = 8 // b
    u = codes.flatten().to(torch.int32) + (2 ** (scheme.bits - 1) if scheme.symmetric else 0)
    pad = (-len(u)) % per_byte
    u = torch.cat([u, u.new_zeros(pad)]).view(-1, per_byte)  # (n_bytes, per_byte)
    shifts = torch.arange(per_byte, dtype=torch.int32) * b  # (per_byte,)
    return (u << shifts).sum(-1).to(torch.uint8)  # (n_bytes,)


def unpack_codes(packed: torch.Tensor, scheme: QuantScheme, shape: tuple[int, ...]) -> torch.Tensor:
    """The inverse of `pack_codes`: int16 codes of the given `shape`."""
    n = 1
    for size in shape:
        n *= size
    if scheme.bits == 8:
        return packed[:n].to(torch.int16).reshape(shape)
    b = scheme.storage_bits
    per_byte = 8 // b
    shifts = torch.arange(per_byte, dtype=torch.int32) * b  # (per_byte,)
    u = (packed.to(torch.int32)[:, None] >> shifts) & (2**b - 1)  # (n_bytes, per_byte)
    u = u.flatten()[:n] - (2 ** (scheme.bits - 1) if scheme.symmetric else 0)
    return u.to(torch.int16).reshape(shape)
