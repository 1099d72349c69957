"""How many bytes training a `GPT` needs: parameters, gradients, AdamW's state, and activations.

One training step holds four kinds of numbers at once. With N parameters stored in b bytes each:

* the **parameters**, N·b bytes (a tied embedding/output matrix counts once);
* their **gradients**, another N·b;
* **AdamW's state**: two running moments per parameter (2·N·b) and a 4-byte step counter per
  parameter tensor;
* the **activations**: every intermediate tensor that the forward pass keeps because the
  backward pass will need it. They grow with batch_size × context_length, the other three do not.

`memory_estimate` computes all four from a `GPTConfig` alone. The activation count is not a rule
of thumb: it follows this implementation op by op and counts what each op saves for backward
(B = batch_size, T = context_length, d = d_model, H and Hkv the head counts, hs = head_dim,
F = the feed-forward width, V = vocab_size):

* a Linear layer saves its input (B·T·d), never its output; the next op saves that if it needs it;
* LayerNorm saves its input (B·T·d) and two statistics per row, mean and 1/std (2·B·T);
  the course's RMSNorm, written in plain PyTorch, saves its input, the RMS (B·T) and the
  normalized x / rms (B·T·d) before the gain;
* PyTorch's fused CPU attention kernel saves q, k, v (views of the qkv projection's output,
  B·T·(H + 2 Hkv)·hs), its output (B·T·d, which the output projection reuses) and one
  log-sum-exp per query and head (B·H·T): **no T × T matrix** (a sliding window's boolean mask
  is the exception: the kernel keeps it as a float T × T matrix, once per layer). Attention with a float mask
  (ALiBi) or with dropout falls back to the unfused path, which keeps scaled copies of q and kᵀ
  (2·B·T·d), v reshaped to B·H matrices (a B·T·d copy, or a view of the whole qkv output when
  B = 1 or H = 1), and the softmax weights (B·H·T·T), plus a dropout mask and the dropped
  weights (2·B·H·T·T) when dropout is on;
* RoPE multiplies q and k by a table of complex numbers e^{ipw}, built for each of the two
  products and kept for its backward (2·T·hs: T·hs/2 complex numbers, two floats each), and,
  with the fused kernel, the rotated q and k (in the layout of the qkv output, so the reshape
  before the output projection stays a view);
* GELU saves its input and the down projection its output (2·B·T·F); ReLU's backward needs only
  its output, which the down projection saves anyway (B·T·F); SwiGLU keeps four (4·B·T·F);
* dropout saves one float mask per dropped tensor (B·T·d);
* the loss keeps the log-softmax (B·T·V, usually the largest single tensor), the token ids and
  targets (8-byte integers), and learned positions keep their index vector (T integers).

`measure_memory` runs one real AdamW step on CPU and counts the same four things from the
tensors themselves; activations are the distinct storages handed to
``torch.autograd.graph.saved_tensors_hooks``, parameters excluded (`saved_tensor_bytes`). The
tests check the estimate against the measurement over many configurations.

    >>> config = GPTConfig(vocab_size=50, context_length=8, d_model=16, n_layers=1, n_heads=4)
    >>> est = memory_estimate(config, batch_size=2)
    >>> est.params, est.grads, est.adam  # 4,240 parameters in 16 tensors: 4·4240, 4·4240, 8·4240 + 4·16
    (16960, 16960, 33984)
    >>> est.activation_breakdown["loss (log-softmax)"]  # 4 bytes · (2·8 rows of 50 log-probabilities + 1)
    3204

Generation needs none of the training state, but a KV cache of its own: `kv_cache_bytes`
(defined in `llmscratch.kv_cache`, re-exported here) counts it from the config.

Left out: mixed precision (float32 master weights next to 16-bit copies), the logits that the
caller keeps after ``forward`` (B·T·V, not saved by autograd but alive), the allocator's
temporary buffers and fragmentation, and the fact that activations are freed during the backward
pass while gradients appear, so the sum is an upper bound of the peak. Sharding all of this over
several devices is ZeRO's subject.

References: Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter
Models" (SC 2020) for the parameter/gradient/optimizer accounting; Korthikanti et al., "Reducing
Activation Recomputation in Large Transformer Models" (MLSys 2023) for counting activations op by op.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .config import GPTConfig
from .kv_cache import kv_cache_bytes
from .model import GPT, parameter_formula

__all__ = ["MemoryEstimate", "activation_counts", "adamw_state_bytes", "kv_cache_bytes", "measure_memory",
           "memory_estimate", "saved_tensor_bytes"]

INDEX_BYTES = 8  # token ids, targets and positions are int64
STEP_BYTES = 4  # AdamW keeps each parameter tensor's step count as a float32 scalar tensor


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of one training step, by kind; `total` is their sum."""

    params: int
    grads: int
    adam: int
    activations: int
    # Activation bytes by the op that saves them (empty for a measurement).
    activation_breakdown: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def total(self) -> int:
        return self.params + self.grads + self.adam + self.activations


def _check(config: GPTConfig, batch_size: int, bytes_per_value: int = 4) -> None:
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
    for name, value in (("batch_size", batch_size), ("bytes_per_value", bytes_per_value)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be a positive integer, got {value!r}")
        if value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _unfused(config: GPTConfig) -> bool:
    """True if attention takes PyTorch's unfused path in training (a float mask, or dropout)."""
    return config.position == "alibi" or config.dropout > 0


def _parameter_tensors(config: GPTConfig) -> int:
    """How many parameter tensors `GPT(config)` has (AdamW keeps one step counter per tensor)."""
    c, b = config, int(config.bias)
    per_norm = {"layernorm": 1 + b, "rmsnorm": 1, "none": 0}[c.norm]
    norms = (2 if c.ff_dim else 1) * c.n_layers + (1 if c.norm_placement == "pre" else 0)
    attention = 2 * (1 + b)  # qkv and proj, weight (+ bias)
    feed_forward = (3 if c.activation == "swiglu" else 2) * (1 + b) if c.ff_dim else 0
    embeddings = 1 + (c.position == "learned") + (not c.tie_weights)  # token, positions, untied head
    return embeddings + c.n_layers * (attention + feed_forward) + norms * per_norm


def activation_counts(config: GPTConfig, batch_size: int) -> dict[str, tuple[int, int]]:
    """What one training forward pass saves for backward: ``{op: (float values, int64 values)}``.

    The counts follow the module docstring, op by op, for sequences of ``context_length`` tokens.
    Grouped-query attention on the unfused path (ALiBi or dropout) is not modelled: there the
    kernel repeats the shared keys and values, and we raise `ValueError` rather than guess.
    """
    _check(config, batch_size)
    c = config
    if c.kv_heads != c.n_heads and _unfused(c):
        raise ValueError("grouped-query attention with ALiBi or dropout takes an attention path this "
                         "estimate does not model; use n_kv_heads=None, or dropout=0 without ALiBi")
    B, T, d, L, V = batch_size, c.context_length, c.d_model, c.n_layers, c.vocab_size
    H, Hkv, hs, F = c.n_heads, c.kv_heads, c.head_dim, c.ff_dim
    N = B * T  # rows: one per token of the batch
    sublayers = 1 + (F > 0)  # attention, and the feed-forward network unless d_ff = 0
    norms = sublayers * L + (c.norm_placement == "pre")
    norm_saves = {"layernorm": N * d + 2 * N, "rmsnorm": 2 * N * d + N, "none": 0}[c.norm]
    qkv = N * (H + 2 * Hkv) * hs  # the qkv projection's output
    if _unfused(c):  # scaled copies of q and kᵀ, v, the softmax; with dropout its mask and result
        # v is reshaped to B·H matrices: a copy, unless B = 1 or H = 1 make it a view of the qkv output.
        v = qkv if B == 1 or H == 1 else N * d
        attention = 2 * N * d + v + B * H * T * T * (3 if c.dropout > 0 else 1)
        rope = 2 * T * hs  # the two complex tables; the rotated q, k are used up by the scaling
    else:  # the qkv output (q, k, v are views of it), one log-sum-exp per query and head
        attention = qkv + B * H * T
        # The rotated q and k, and the complex table of each product.
        rope = N * d + N * Hkv * hs + 2 * T * hs
    feed_forward = {"gelu": 2, "relu": 1, "swiglu": 4}[c.activation] * N * F if F else 0
    counts = {
        "token ids and targets": (0, 2 * N),
        "position indices": (0, T if c.position == "learned" else 0),
        "dropout masks": ((1 + sublayers * L) * N * d if c.dropout > 0 else 0, 0),
        "linear inputs": ((sublayers * L + 1) * N * d, 0),  # qkv and up per layer, and the LM head
        "norms": (norms * norm_saves, 0),
        "attention": (L * (attention + N * d), 0),  # + N·d: the heads' output, the proj's input
        "rope": (L * rope if c.position == "rope" else 0, 0),
        # A sliding window's boolean mask, which the fused kernel turns into a float (T, T) one and keeps.
        "window mask": (L * T * T if c.attention_window is not None and not _unfused(c) else 0, 0),
        "feed-forward": (L * feed_forward, 0),
        "loss (log-softmax)": (N * V + 1, 0),  # + 1: cross-entropy's scalar weight total
    }
    return counts


def memory_estimate(config: GPTConfig, batch_size: int, bytes_per_value: int = 4) -> MemoryEstimate:
    """Bytes to train ``GPT(config)`` with AdamW on batches of `batch_size` full-length sequences.

    Every floating-point number takes `bytes_per_value` bytes (4 for float32, 2 for bfloat16);
    integer indices take 8 and AdamW's step counters 4. See the module docstring for each term.
    """
    _check(config, batch_size, bytes_per_value)
    n = parameter_formula(config)["total"]
    params = n * bytes_per_value
    adam = 2 * params + STEP_BYTES * _parameter_tensors(config)
    breakdown = {op: floats * bytes_per_value + ints * INDEX_BYTES
                 for op, (floats, ints) in activation_counts(config, batch_size).items()}
    return MemoryEstimate(params, params, adam, sum(breakdown.values()), breakdown)


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def saved_tensor_bytes(model: torch.nn.Module, idx: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Run ``model(idx, targets)`` and count the bytes autograd saves for the backward pass.

    Every tensor an op saves passes through the pack hook. Many are views of one another (q, k
    and v of one projection) or are saved by two ops (a Linear's output that GELU needs too), so
    we count each distinct storage once; parameters are not activations and are left out.
    Returns the loss, still attached to its graph, and the byte count.
    """
    parameters = {_storage_key(p) for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key not in parameters:
            storages[key] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        _, loss = model(idx, targets)
    return loss, sum(storages.values())


def _tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def measure_memory(config: GPTConfig, batch_size: int, seed: int = 0) -> MemoryEstimate:
    """One real AdamW step of ``GPT(config)`` on a random batch on CPU, counted from the tensors.

    Parameters, gradients and optimizer state are summed over the actual tensors after the step
    (``model.parameters()`` yields a tied matrix once); activations are `saved_tensor_bytes`.
    Seeds torch's global generator with `seed`, for the model's initial weights.
    """
    _check(config, batch_size)
    torch.manual_seed(seed)
    model = GPT(config).train()
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randint(config.vocab_size, (batch_size, config.context_length), generator=generator)
    targets = torch.randint(config.vocab_size, (batch_size, config.context_length), generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss, activations = saved_tensor_bytes(model, idx, targets)
    loss.backward()
    optimizer.step()
    parameters = list(model.parameters())
    state = [t for s in optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
    return MemoryEstimate(params=_tensor_bytes(parameters), grads=_tensor_bytes(p.grad for p in parameters),
                          adam=_tensor_bytes(state), activations=activations)


def adamw_state_bytes(model: torch.nn.Module, idx: torch.Tensor, targets: torch.Tensor) -> int:
    """Bytes of the state a fresh AdamW over `model`'s trainable parameters holds after one step on a batch.

    Only parameters with ``requires_grad`` get state (two moments and a step count each), which
    is the saving of training few of them (`llmscratch.lora`). The step is taken and undone: the
    weights are restored and the gradients cleared, so the model is left as it was.
    """
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameters: nothing for an optimizer to keep")
    optimizer = torch.optim.AdamW(trainable)
    model(idx, targets)[1].backward()
    optimizer.step()
    state = [t for s in optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
    model.zero_grad(set_to_none=True)
    model.load_state_dict(saved)
    return _tensor_bytes(state)
