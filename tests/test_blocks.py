"""llmscratch.blocks, and the GPT around them, against PyTorch's own layers and a hand-written
generation loop.

- `RMSNorm` equals ``torch.nn.RMSNorm``, forward and backward; the LayerNorm of `make_norm`
  equals ``torch.nn.functional.layer_norm`` (with and without its shift), forward and backward.
- `FeedForward` equals the formula written out with ``F.linear`` for every activation, with and
  without biases, and has `parameter_formula`'s count.
- A `Block` equals ``torch.nn.TransformerEncoderLayer`` with a causal mask and the same
  weights, in both norm placements: same sublayers, same order, same residual additions.
- `generate` on a GPT equals the loop it abbreviates: crop to the context, run the model, take
  the last position, pick (argmax or a seeded sample), append; the prompt is not returned.
- Dropout is off in evaluation mode and on in training mode.
"""

from dataclasses import replace

import pytest
import torch
import torch.nn as nn

from llmscratch import GPT, GPTConfig, generate, parameter_formula
from llmscratch.blocks import Block, FeedForward, RMSNorm, make_norm

pytestmark = pytest.mark.usefixtures("one_thread")


# (a) Against references ----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8,), (3, 8), (2, 5, 8), (2, 3, 4, 8)])
@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_rmsnorm_matches_torch(shape, eps):
    """Same output and same gradients (input and weight) as ``torch.nn.RMSNorm``.

    Small inputs make eps matter (mean square ~ 0.01, comparable to eps = 0.1): eps outside the
    square root, or left out, would show.
    """
    g = torch.Generator().manual_seed(0)
    ours, ref = RMSNorm(shape[-1], eps=eps), nn.RMSNorm(shape[-1], eps=eps)
    with torch.no_grad():
        ours.weight.copy_(torch.randn(shape[-1], generator=g))
        ref.weight.copy_(ours.weight)
    x = (0.1 * torch.randn(shape, generator=g)).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = ours(x), ref(x_ref)
    torch.testing.assert_close(y, y_ref)
    upstream = torch.randn(shape, generator=g)  # a generic gradient, not all ones
    (y * upstream).sum().backward()
    (y_ref * upstream).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)


@pytest.mark.parametrize("shape", [(8,), (3, 8), (2, 5, 8), (2, 3, 4, 16)])
@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_matches_functional_layer_norm(shape, bias):
    """The package's LayerNorm (``make_norm("layernorm")``) is ``F.layer_norm`` with its gain and
    shift, at eps 1e-5 (RMSNorm's too), and without a shift parameter at all when bias=False.

    Inputs with a large mean (5) and a small spread (0.1): subtracting the mean matters, and so
    does eps (variance 0.01 against 1e-5 is a 0.05% change, above the tolerance).
    """
    d = shape[-1]
    g = torch.Generator().manual_seed(1)
    norm = make_norm("layernorm", d, bias=bias)
    assert norm.eps == RMSNorm(d).eps == 1e-5
    assert (norm.bias is not None) == bias and len(list(norm.parameters())) == 1 + bias
    with torch.no_grad():
        for p in norm.parameters():
            p.copy_(torch.randn(d, generator=g))
    x = (5 + 0.1 * torch.randn(shape, generator=g)).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    w_ref = norm.weight.detach().clone().requires_grad_()
    b_ref = norm.bias.detach().clone().requires_grad_() if bias else None
    y = norm(x)
    y_ref = nn.functional.layer_norm(x_ref, (d,), w_ref, b_ref, eps=1e-5)
    torch.testing.assert_close(y, y_ref)
    assert not torch.allclose(y, nn.functional.layer_norm(x_ref, (d,), w_ref, b_ref, eps=0.01), atol=1e-4)
    upstream = torch.randn(shape, generator=g)
    (y * upstream).sum().backward()
    (y_ref * upstream).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(norm.weight.grad, w_ref.grad)
    if bias:
        torch.testing.assert_close(norm.bias.grad, b_ref.grad)


def test_no_norm_is_the_identity_and_an_unknown_norm_is_refused():
    x = torch.randn(2, 3, 8)
    assert torch.equal(make_norm("none", 8)(x), x) and not list(make_norm("none", 8).parameters())
    with pytest.raises(ValueError, match="unknown norm 'batchnorm'"):
        make_norm("batchnorm", 8)


def _randomize(module: nn.Module, seed: int) -> None:
    """Every parameter ~ N(0, 0.3), norms' gains around 1: no weight is at a value (ones, zeros)
    that would hide a swapped or skipped copy."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            centre = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            p.copy_(centre + 0.3 * torch.randn(p.shape, generator=g))


def _as_torch_layer(block: Block, config: GPTConfig) -> nn.TransformerEncoderLayer:
    """The same layer as ``torch.nn.TransformerEncoderLayer``, weights copied over.

    Our attention has one fused (3·d, d) projection whose output is queries, then keys, then
    values, each head-major (head h holds features h·hs .. (h+1)·hs - 1): exactly the layout of
    ``MultiheadAttention.in_proj_weight``, which PyTorch splits as q, k, v and views as heads.
    """
    ref = nn.TransformerEncoderLayer(
        config.d_model, config.n_heads, config.ff_dim, dropout=0.0, activation=config.activation,
        layer_norm_eps=block.norm_1.eps, batch_first=True, norm_first=config.norm_placement == "pre",
        bias=config.bias,
    )
    ours = block.state_dict()
    names = {  # torch's name -> ours
        "self_attn.in_proj_weight": "attention.qkv.weight",
        "self_attn.in_proj_bias": "attention.qkv.bias",
        "self_attn.out_proj.weight": "attention.proj.weight",
        "self_attn.out_proj.bias": "attention.proj.bias",
        "linear1.weight": "feed_forward.up.weight",
        "linear1.bias": "feed_forward.up.bias",
        "linear2.weight": "feed_forward.down.weight",
        "linear2.bias": "feed_forward.down.bias",
        "norm1.weight": "norm_1.weight",
        "norm1.bias": "norm_1.bias",
        "norm2.weight": "norm_2.weight",
        "norm2.bias": "norm_2.bias",
    }
    names = {theirs: mine for theirs, mine in names.items() if mine in ours}
    assert len(names) == len(ours)  # every one of our weights has a place in torch's layer
    ref.load_state_dict({theirs: ours[mine] for theirs, mine in names.items()}, strict=True)
    return ref


BLOCK = GPTConfig(d_model=16, n_heads=4, d_ff=40, norm="layernorm", activation="gelu", bias=True,
                  dropout=0.0, position="none")


@pytest.mark.parametrize("placement", ["pre", "post"])
@pytest.mark.parametrize("activation, bias", [("gelu", True), ("relu", True), ("gelu", False)])
@pytest.mark.parametrize("no_grad", [False, True], ids=["autograd", "no_grad"])
def test_block_matches_torch_transformer_layer(placement, activation, bias, no_grad):
    """Pre-norm: x + attn(norm1(x)), then + ff(norm2(.)); post-norm: norm1(x + attn(x)), then
    norm2(. + ff(.)); with a causal mask. Also under no_grad, where PyTorch's layer may take its
    fused inference path."""
    config = replace(BLOCK, norm_placement=placement, activation=activation, bias=bias)
    block = Block(config).eval()
    _randomize(block, seed=1)
    assert block.norm_1.eps == block.norm_2.eps == 1e-5  # PyTorch's default, as in GPT-2
    ref = _as_torch_layer(block, config).eval()
    T = 7
    x = torch.randn(3, T, config.d_model, generator=torch.Generator().manual_seed(2))
    mask = nn.Transformer.generate_square_subsequent_mask(T)  # -inf above the diagonal
    with torch.set_grad_enabled(not no_grad):
        expected = ref(x, src_mask=mask, is_causal=True)
        torch.testing.assert_close(block(x), expected)
        # The boolean form of the mask (True = may not attend) says the same.
        torch.testing.assert_close(block(x), ref(x, src_mask=torch.ones(T, T, dtype=torch.bool).triu(1)))


def test_block_is_causal_and_differs_from_the_unmasked_reference():
    """The agreement above is not vacuous: without the mask PyTorch's layer computes something else."""
    config = BLOCK
    block = Block(config).eval()
    _randomize(block, seed=3)
    ref = _as_torch_layer(block, config).eval()
    x = torch.randn(2, 5, config.d_model, generator=torch.Generator().manual_seed(4))
    y = block(x)
    torch.testing.assert_close(y[:, -1], ref(x)[:, -1])  # the last position sees everything anyway
    assert not torch.allclose(y[:, :-1], ref(x)[:, :-1], atol=1e-3)


def test_feed_forward_swiglu_by_hand():
    """SwiGLU: down(silu(gate(x)) * up(x)), three matrices."""
    ff = FeedForward(6, 10, "swiglu")
    _randomize(ff, seed=5)
    x = torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(6))
    expected = ff.down(nn.functional.silu(ff.gate(x)) * ff.up(x))
    torch.testing.assert_close(ff(x), expected)
    assert sum(p.numel() for p in ff.parameters()) == 3 * 6 * 10 + 2 * 10 + 6


@pytest.mark.parametrize("activation", ["gelu", "relu", "swiglu"])
@pytest.mark.parametrize("bias", [True, False])
def test_feed_forward_matches_the_formula_with_f_linear(activation, bias):
    """down(act(up(x))) for GELU (exact, not the tanh approximation) and ReLU; down(silu(gate(x)) * up(x))
    for SwiGLU; written with ``F.linear`` on the layer's own weights. The parameter count is
    `parameter_formula`'s feed-forward term for one layer."""
    F = nn.functional
    ff = FeedForward(8, 12, activation, bias=bias)
    _randomize(ff, seed=8)
    x = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(9))

    def linear(layer: nn.Linear, h: torch.Tensor) -> torch.Tensor:
        return F.linear(h, layer.weight, layer.bias if bias else None)

    hidden = linear(ff.up, x)
    if activation == "swiglu":
        hidden = F.silu(linear(ff.gate, x)) * hidden
    else:
        hidden = F.gelu(hidden) if activation == "gelu" else F.relu(hidden)
    torch.testing.assert_close(ff(x), linear(ff.down, hidden))
    if activation == "gelu":
        assert not torch.allclose(ff(x), linear(ff.down, F.gelu(linear(ff.up, x), approximate="tanh")), atol=1e-6)
    config = GPTConfig(d_model=8, n_heads=2, d_ff=12, activation=activation, bias=bias, n_layers=1)
    assert sum(p.numel() for p in ff.parameters()) == parameter_formula(config)["feed_forward"]
    assert all(layer.bias is None for layer in (ff.up, ff.down)) != bias


# (c) Generation and dropout through the whole GPT ---------------------------------------------

TINY = GPTConfig(vocab_size=23, context_length=6, d_model=16, n_layers=2, n_heads=2, position="learned")


def _spread_model(config: GPTConfig = TINY, scale: float = 5.0) -> GPT:
    """A GPT with large random weights. The token embedding, tied to the output layer, times
    `scale`: 5 spreads the logits so that no argmax is decided by rounding, 1 leaves sampling
    something to choose."""
    torch.manual_seed(0)
    model = GPT(config)
    _randomize(model, seed=7)
    with torch.no_grad():
        model.token_embedding.weight.mul_(scale)
    return model


def _by_hand(model: GPT, prompt: torch.Tensor, n: int, pick) -> list[list[int]]:
    """The loop `generate` stands for: the last context_length ids, the last position's logits."""
    model.eval()
    idx = prompt
    with torch.no_grad():
        for _ in range(n):
            logits = model(idx[:, -model.context_length:])[0][:, -1]  # (B, V)
            idx = torch.cat([idx, pick(logits)], dim=1)  # (B, T + 1)
    return idx[:, prompt.shape[1]:].tolist()  # only the new ids


@pytest.mark.parametrize("prompt_length", [1, 4, 9], ids=["short", "grows-past-context", "longer-than-context"])
def test_greedy_generation_equals_the_argmax_loop(prompt_length):
    """temperature=0 is greedy. 12 new tokens on a 6-token learned position table: generate must
    crop (the model refuses 7 tokens), and crop to the *last* six."""
    model = _spread_model()
    prompt = torch.randint(TINY.vocab_size, (3, prompt_length), generator=torch.Generator().manual_seed(8))
    with pytest.raises(ValueError, match="context_length"):
        model(torch.zeros(1, TINY.context_length + 1, dtype=torch.long))
    model.train()
    out = generate(model, prompt, 12, temperature=0)
    assert model.training  # the mode is restored
    expected = _by_hand(model, prompt, 12, lambda logits: logits.argmax(-1, keepdim=True))
    assert out == expected
    assert len(out) == 3 and all(len(row) == 12 for row in out)
    assert len({tuple(row) for row in out}) > 1  # rows are generated independently
    # Only the last context_length ids of the prompt matter.
    assert generate(model, prompt[:, -TINY.context_length:], 12, temperature=0) == out


def test_sampled_generation_equals_the_sampling_loop_under_a_seed():
    """softmax(logits / T) sampled with the caller's generator: same seed, same ids, whatever else
    consumed the global random state in between."""
    model = _spread_model(scale=1.0)
    prompt = torch.randint(TINY.vocab_size, (4, 3), generator=torch.Generator().manual_seed(9))
    out = generate(model, prompt, 15, temperature=0.8, generator=torch.Generator().manual_seed(10))
    torch.rand(100)  # disturb the global generator: it must not be the one used
    again = generate(model, prompt, 15, temperature=0.8, generator=torch.Generator().manual_seed(10))
    g = torch.Generator().manual_seed(10)
    expected = _by_hand(model, prompt, 15,
                        lambda logits: torch.multinomial(torch.softmax(logits / 0.8, dim=-1), 1, generator=g))
    assert out == again == expected
    other = generate(model, prompt, 15, temperature=0.8, generator=torch.Generator().manual_seed(11))
    assert other != out
    hotter = generate(model, prompt, 15, temperature=1.6, generator=torch.Generator().manual_seed(10))
    assert hotter != out  # the temperature reaches the softmax


def test_generation_stops_each_row_at_the_stop_id():
    model = _spread_model()
    prompt = torch.randint(TINY.vocab_size, (3, 2), generator=torch.Generator().manual_seed(12))
    full = generate(model, prompt, 10, temperature=0)
    stop = full[0][4]
    out = generate(model, prompt, 10, temperature=0, stop_id=stop)
    assert out == [row[: row.index(stop)] if stop in row else row for row in full]


def test_dropout_only_in_training_mode():
    """dropout=0.5 in eval: deterministic, and equal to the same weights without dropout; in
    training mode two calls differ."""
    config = replace(TINY, dropout=0.5)
    model = _spread_model(config)
    plain = GPT(replace(config, dropout=0.0))
    plain.load_state_dict(model.state_dict())
    idx = torch.randint(config.vocab_size, (2, config.context_length), generator=torch.Generator().manual_seed(13))
    model.eval(), plain.eval()
    first, second = model(idx)[0], model(idx)[0]
    assert torch.equal(first, second)
    torch.testing.assert_close(first, plain(idx)[0])
    model.train()
    torch.manual_seed(14)
    a, b = model(idx)[0], model(idx)[0]
    assert not torch.allclose(a, b, atol=1e-3)
    assert not torch.allclose(a, first, atol=1e-3)


def test_generation_runs_the_model_without_dropout():
    """A model left in training mode with dropout=0.5 generates as its dropout-free twin does."""
    config = replace(TINY, dropout=0.5)
    model = _spread_model(config).train()
    plain = GPT(replace(config, dropout=0.0))
    plain.load_state_dict(model.state_dict())
    prompt = torch.randint(config.vocab_size, (3, 2), generator=torch.Generator().manual_seed(15))
    torch.manual_seed(16)
    assert generate(model, prompt, 10, temperature=0) == generate(plain, prompt, 10, temperature=0)
    assert model.training
