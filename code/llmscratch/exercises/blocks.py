"""Checkers for the transformer block and the GPT: norms, residuals, the model around them.

Each checker runs the learner's function next to the package's own (``torch.nn.functional``
for LayerNorm, `llmscratch.blocks` for RMSNorm and the block, `llmscratch.model` for the GPT)
and names the first case that disagrees. Where a disagreement matches a known slip (the
unbiased variance, eps outside the square root, a norm forgotten), the hint asks about it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..blocks import Block, RMSNorm
from ..config import GPTConfig
from ..model import GPT, parameter_formula
from .core import ExerciseError, expect_tensor, passed

__all__ = ["check_block", "check_layernorm", "check_logit_lens", "check_parameter_count", "check_rmsnorm"]


def _first_match(got: object, slips: list[tuple[torch.Tensor, str]]) -> str:
    """The hint of the first slip whose output `got` reproduces, else ""."""
    if isinstance(got, torch.Tensor):
        for output, hint in slips:
            if got.shape == output.shape and torch.allclose(got.detach().double(), output.double(), atol=1e-5):
                return hint
    return ""


def _norm_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor, float]]:
    """(description, x, weight, bias, eps): ordinary, shifted and scaled, tiny d, constant rows, large eps."""
    g = torch.Generator().manual_seed(0)
    cases = []
    for where, shape, scale, shift, eps in [("random x of shape (2, 5, 8)", (2, 5, 8), 1.0, 0.0, 1e-5),
                                            ("x of shape (3, 16), mean 3 and std 10", (3, 16), 10.0, 3.0, 1e-5),
                                            ("x of shape (4, 2): vectors of 2 features", (4, 2), 1.0, 0.0, 1e-5),
                                            ("x of shape (6, 8) with eps=0.5", (6, 8), 1.0, 0.5, 0.5)]:
        d = shape[-1]
        x = shift + scale * torch.randn(shape, generator=g, dtype=torch.float64)
        weight = 1 + 0.5 * torch.randn(d, generator=g, dtype=torch.float64)
        bias = 0.5 * torch.randn(d, generator=g, dtype=torch.float64)
        cases.append((where, x, weight, bias, eps))
    constant = torch.full((2, 8), 4.0, dtype=torch.float64)  # every feature equal: variance 0
    cases.append(("constant rows (variance 0) of shape (2, 8)", constant, cases[3][2], cases[3][3], 1e-5))
    return cases


def check_layernorm(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]) -> None:
    """Check ``fn(x, weight, bias, eps) -> y`` against `torch.nn.functional.layer_norm`.

    `x` has any shape (..., d); `weight` (gain) and `bias` (shift) have shape (d,). Each vector
    along the last dimension is centred by its mean and divided by ``sqrt(var + eps)``, where
    var is the mean of the squared deviations (divide by d, not d - 1); then
    ``y = weight * normalized + bias``, with the shape of `x`.
    """
    cases = _norm_cases()
    for where, x, weight, bias, eps in cases:
        want = F.layer_norm(x, (x.shape[-1],), weight, bias, eps)
        got = fn(x.clone(), weight.clone(), bias.clone(), eps)
        centred = x - x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=False)
        slips = [(weight * centred / torch.sqrt(x.var(-1, keepdim=True, unbiased=True) + eps) + bias,
                  "your output matches dividing the variance by d - 1: which does layer normalization use?"),
                 (weight * centred / (torch.sqrt(var) + eps) + bias,
                  "your output matches adding eps after the square root: where does eps go?"),
                 (weight * (x - x.mean(0, keepdim=True)) / torch.sqrt(x.var(0, keepdim=True, unbiased=False) + eps)
                  + bias, "your output matches normalising over the first dimension: over which dimension?"),
                 (weight * x / torch.sqrt((x**2).mean(-1, keepdim=True) + eps) + bias,
                  "your output does not subtract the mean: what is centred before dividing?"),
                 (weight * centred / torch.sqrt(var + eps), "the shift is missing: is bias added after scaling?")]
        expect_tensor(where, got, want, atol=1e-5, hint=_first_match(got, slips) or
                      "is each vector normalised over its own d features, with the biased variance?")
    passed("check_layernorm", len(cases))


def check_rmsnorm(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> None:
    """Check ``fn(x, weight, eps) -> y`` against the package's `llmscratch.blocks.RMSNorm`.

    `x` has any shape (..., d); `weight` (gain) has shape (d,). Each vector along the last
    dimension is divided by its root mean square ``sqrt(mean(x**2) + eps)``, with no mean
    subtracted and no shift; then multiplied by `weight`. `y` has the shape of `x`.
    """
    cases = _norm_cases()
    for where, x, weight, _, eps in cases:
        reference = RMSNorm(x.shape[-1], eps=eps).double()
        with torch.no_grad():
            reference.weight.copy_(weight)
            want = reference(x)
        got = fn(x.clone(), weight.clone(), eps)
        mean_square = (x**2).mean(-1, keepdim=True)
        slips = [(weight * (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + eps),
                  "your output matches subtracting the mean first: does RMSNorm centre?"),
                 (weight * x / (torch.sqrt(mean_square) + eps),
                  "your output matches adding eps after the square root: where does eps go?"),
                 (weight * x / (mean_square + eps), "your output divides by the mean square: is a root missing?"),
                 (weight * x / torch.sqrt((x**2).sum(-1, keepdim=True) + eps),
                  "your output divides by the norm: is it the sum of squares or their mean?"),
                 (weight * x / torch.sqrt((x**2).mean(0, keepdim=True) + eps),
                  "your output matches averaging over the first dimension: over which dimension?")]
        expect_tensor(where, got, want, atol=1e-5, hint=_first_match(got, slips) or
                      "is each vector divided by the root of the mean of its own squares, plus eps?")
    passed("check_rmsnorm", len(cases))


def _randomised_block(config: GPTConfig, seed: int) -> Block:
    """A package `Block` whose gains, shifts and biases are not the identity, so that wiring shows."""
    torch.manual_seed(seed)
    block = Block(config).eval()
    with torch.no_grad():
        for name, p in block.named_parameters():
            if name.startswith("norm") and name.endswith("weight"):
                p.normal_(1.0, 0.3)  # gains around 1
            elif p.ndim == 1:
                p.normal_(0.0, 0.3)  # shifts and biases around 0
            else:
                p.normal_(0.0, 0.15)
    return block


def _normed_stream(x: torch.Tensor, block: Block) -> torch.Tensor:
    """The slip of normalising the stream itself: x = norm(x) + sublayer(norm(x)), twice."""
    h = block.norm_1(x)
    h = h + block.attention(h)
    g = block.norm_2(h)
    return g + block.feed_forward(g)


def check_block(fn: Callable[[torch.Tensor, Block], torch.Tensor]) -> None:
    """Check ``fn(x, block) -> y``, a pre-norm residual block, against the package's `Block`.

    `x` is the residual stream (B, T, d_model). Use the block's sublayers as they are:
    ``block.norm_1``, ``block.attention``, ``block.norm_2``, ``block.feed_forward``. Pre-norm:
    attention reads ``norm_1`` of the stream and its output is added to the stream; then the
    feed-forward network reads ``norm_2`` of the *updated* stream and its output is added too.
    `y` has the shape of `x`.
    """
    g = torch.Generator().manual_seed(0)
    configs = [(GPTConfig(d_model=32, n_heads=4, context_length=16), (2, 10)),
               (GPTConfig(d_model=16, n_heads=2, context_length=8, norm="rmsnorm", bias=False), (3, 8)),
               (GPTConfig(d_model=24, n_heads=3, context_length=8), (1, 1))]
    n = 0
    for k, (config, (B, T)) in enumerate(configs):
        block = _randomised_block(config, seed=k)
        x = 2 * torch.randn(B, T, config.d_model, generator=g)
        with torch.no_grad():
            want = block(x)
            got = fn(x.clone(), block)
            attend = block.attention(block.norm_1(x))
            h = block.norm_1(x + block.attention(x))
            slips = [(block.norm_2(h + block.feed_forward(h)),
                      "your output matches post-norm: is the norm applied to the sublayer's input, or to the sum?"),
                     (x + attend + block.feed_forward(block.norm_2(x)),
                      "the feed-forward network reads the stream from before attention: which stream should it "
                      "read?"),
                     (block.feed_forward(block.norm_2(attend)),
                      "your output has no residual connections: what is added to each sublayer's output?"),
                     (x + attend + block.feed_forward(block.norm_2(attend)),
                      "the feed-forward network reads attention's output alone: what does it add to?"),
                     (_normed_stream(x, block), "the stream itself was normalised: is the norm inside the branch?")]
        n += 1
        where = (f"batch of {B} sequence(s) of {T} token(s), d_model={config.d_model}, norm={config.norm}, "
                 f"bias={config.bias}")
        expect_tensor(where, got, want, atol=1e-5, hint=_first_match(got, slips) or
                      "does each sublayer read a normalised copy of the stream and add its output to it?")
    passed("check_block", n)


def check_parameter_count(fn: Callable[[GPTConfig], int]) -> None:
    """Check ``fn(config) -> int``, the parameter count of ``GPT(config)``, against the package's model.

    The configs vary `vocab_size`, `context_length`, `d_model`, `n_layers`, `n_heads`, `d_ff`
    (None means 4 * d_model), `bias` and `tie_weights`; the rest are the defaults: learned
    positions, LayerNorm (a gain and, with `bias`, a shift per feature), GELU, pre-norm (so a
    final norm after the last block), multi-head attention with one matrix each for queries,
    keys, values and the output projection. A tied output layer shares the token embedding's
    matrix and counts once.
    """
    configs = [GPTConfig(), GPTConfig(tie_weights=False),
               GPTConfig(vocab_size=100, context_length=16, d_model=32, n_layers=3, n_heads=2, bias=False),
               GPTConfig(vocab_size=100, context_length=16, d_model=32, n_layers=3, n_heads=2, bias=False,
                         tie_weights=False),
               GPTConfig(vocab_size=65, context_length=32, d_model=48, n_layers=1, n_heads=4, d_ff=100),
               GPTConfig(vocab_size=65, context_length=8, d_model=16, n_layers=0, n_heads=1),
               GPTConfig(context_length=128, d_model=128, n_layers=4, n_heads=4)]
    for config in configs:
        want = GPT(config).num_parameters()
        got = fn(config)
        if isinstance(got, bool) or not isinstance(got, int):
            raise ExerciseError(f"{_describe(config)}: expected an int, got {type(got).__name__} {got!r}")
        if got != want:
            raise ExerciseError(f"{_describe(config)}: expected {want:,} parameters, got {got:,} "
                                f"({_count_hint(config, got - want)})")
    gpt2 = GPTConfig(vocab_size=50257, context_length=1024, d_model=768, n_layers=12, n_heads=12)
    want, got = parameter_formula(gpt2)["total"], fn(gpt2)  # 124M: counted, not built
    if got != want:
        raise ExerciseError(f"GPT-2 small ({_describe(gpt2)}): expected {want:,} parameters, got {got!r}")
    passed("check_parameter_count", len(configs) + 1)


def _describe(c: GPTConfig) -> str:
    return (f"vocab_size={c.vocab_size}, context_length={c.context_length}, d_model={c.d_model}, "
            f"n_layers={c.n_layers}, n_heads={c.n_heads}, d_ff={c.d_ff}, bias={c.bias}, tie_weights={c.tie_weights}")


def _count_hint(c: GPTConfig, diff: int) -> str:
    """A question about the component a wrong count most likely got wrong, from how far off it is."""
    d, parts = c.d_model, parameter_formula(c)
    per_norm = d * (2 if c.bias else 1)
    known = {c.vocab_size * d: "is a tied output layer counted once?" if c.tie_weights else
             "an untied output layer has its own V x d_model matrix: is it counted?",
             parts["position_embedding"]: "what about the position table?",
             per_norm: "is the final norm after the last block counted?",
             c.n_layers * (c.ff_dim + d) if c.bias else -1: "do the feed-forward layers have biases?",
             c.n_layers * 4 * d if c.bias else -2: "do attention's projections have biases?"}
    if abs(diff) in known:
        return known[abs(diff)]
    if c.d_ff is not None:
        return f"this config sets d_ff={c.d_ff}: is the feed-forward width read from it?"
    return "count each component: embeddings, per block attention, feed-forward and two norms, final norm, head"


def check_logit_lens(fn: Callable[[GPT, torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(model, idx) -> logits`` of shape (n_layers + 1, B, T, V), the logit lens.

    Layer 0 is the residual stream after the embeddings, layer l the stream after block l, as
    ``model.trace(idx).hidden`` records them; each is read out as the model reads its last one:
    through ``model.final_norm`` and then ``model.lm_head``. The last layer's readout is then the
    model's own logits. No gradients are needed.
    """
    g = torch.Generator().manual_seed(0)
    n = 0
    for k, config in enumerate([GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layers=2, n_heads=2),
                                GPTConfig(vocab_size=30, context_length=12, d_model=24, n_layers=3, n_heads=4,
                                          tie_weights=False)]):
        torch.manual_seed(k)
        model = GPT(config).eval()
        with torch.no_grad():  # a final norm that is not the identity, so that leaving it out shows
            model.final_norm.weight.normal_(1.0, 0.5), model.final_norm.bias.normal_(0.0, 0.5)
        idx = torch.randint(0, config.vocab_size, (2, config.context_length), generator=g)
        hidden = model.trace(idx).hidden
        with torch.no_grad():
            want = torch.stack([model.lm_head(model.final_norm(h)) for h in hidden])  # (L + 1, B, T, V)
            got = fn(model, idx)
            slips = [(torch.stack([model.lm_head(h) for h in hidden]),
                      "your readout skips the final norm: what does the model apply before its head?")]
        n += 1
        where = (f"a GPT of {config.n_layers} blocks (tie_weights={config.tie_weights}), "
                 f"ids of shape (2, {idx.shape[1]})")
        if isinstance(got, torch.Tensor) and got.shape != want.shape and got.shape[0] == config.n_layers:
            raise ExerciseError(f"{where}: expected {config.n_layers + 1} readouts, got {config.n_layers} "
                                "(is the stream before the first block, the embeddings, read out too?)")
        expect_tensor(where, got, want, atol=1e-4, hint=_first_match(got, slips) or
                      "is readout l made from the stream after block l, in order from the embeddings up?")
    passed("check_logit_lens", n)
