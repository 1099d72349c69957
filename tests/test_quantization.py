"""Quantization: the error bound of every scheme, exact round trips, edge cases, packing, the
quantized model's integer state and bytes, and quantization-aware training's straight-through gradient."""

import math

import pytest
import torch
import torch.nn as nn

from llmscratch import GPT, GPTConfig
from llmscratch.quantization import (
    QUANT_SCHEMES,
    QuantizedTensor,
    QuantScheme,
    dequantize_tensor,
    fake_quantize,
    pack_codes,
    quantize_tensor,
    unpack_codes,
)
from llmscratch.quantized_model import (
    FakeQuantLinear,
    QuantizedEmbedding,
    QuantizedLinear,
    prepare_qat,
    quantize,
    saved_bytes,
    storage_report,
)

SCHEMES = sorted(QUANT_SCHEMES)
TINY = GPTConfig(vocab_size=40, context_length=16, d_model=64, n_layers=2, n_heads=4)


def scale_per_weight(qt):
    """Each weight's scale, in the weight's shape: dequantize codes of 1 with no offset."""
    return dequantize_tensor(QuantizedTensor(torch.ones_like(qt.codes), qt.scale, None, qt.scheme))


@pytest.mark.parametrize("name", SCHEMES)
def test_every_weight_moves_by_at_most_half_a_step(name):
    scheme = QUANT_SCHEMES[name]
    w = torch.randn(48, 128, generator=torch.Generator().manual_seed(0)) * 0.05
    w[3, 7] = 1.5  # an outlier in one row and one group
    qt = quantize_tensor(w, scheme)
    assert int(qt.codes.min()) >= scheme.qmin and int(qt.codes.max()) <= scheme.qmax
    err = (dequantize_tensor(qt) - w).abs()
    step = scale_per_weight(qt)
    assert bool((err <= step / 2 * (1 + 1e-5)).all())
    assert qt.scale.dtype == torch.float16 and (qt.zero is None) == scheme.symmetric


@pytest.mark.parametrize("name", SCHEMES)
def test_values_on_the_grid_come_back_exactly(name):
    scheme = QUANT_SCHEMES[name]
    g = torch.Generator().manual_seed(1)
    k = torch.randint(scheme.qmin if scheme.symmetric else 0, scheme.qmax + 1, (8, 64), generator=g)
    k[:, [0, 32]] = scheme.qmin if scheme.symmetric else 0  # every group spans the full grid
    k[:, [1, 33]] = scheme.qmax
    zero = 0 if scheme.symmetric else scheme.qmax // 3  # zero-point: an offset that is not 0
    w = (k - zero).float() * 0.125  # a power of two: every product is exact
    assert torch.equal(dequantize_tensor(quantize_tensor(w, scheme)), w)


@pytest.mark.parametrize("name", SCHEMES)
def test_an_all_zero_row_is_exact_and_a_constant_row_is_exact_up_to_its_float16_scale(name):
    w = torch.randn(3, 64, generator=torch.Generator().manual_seed(2))
    w[0] = 0.0
    w[1] = 0.3
    wq = dequantize_tensor(quantize_tensor(w, QUANT_SCHEMES[name]))
    assert torch.equal(wq[0], w[0])
    if QUANT_SCHEMES[name].granularity != "tensor":  # its own scale: 0.3 is the top of its grid
        assert torch.allclose(wq[1], w[1], rtol=2**-11, atol=0)  # the scale's float16 rounding


def test_an_outlier_only_coarsens_the_grid_of_its_own_channel_or_group():
    """A hand-worked case: rows of ±0.01 and one weight of 1.0 in row 0, group 0 (int4, g = 32)."""
    w = torch.full((4, 64), 0.01)
    w[:, 1::2] = -0.01
    w[0, 0] = 1.0
    errors = {}
    for name in ("int4-tensor", "int4-channel", "int4-g32"):
        err = (dequantize_tensor(quantize_tensor(w, QUANT_SCHEMES[name])) - w).abs()
        errors[name] = err
    # Per-tensor: the step is 1/7 everywhere, so every ±0.01 rounds to 0 (error 0.01).
    assert torch.allclose(errors["int4-tensor"][1:], torch.full((3, 64), 0.01))
    # Per-channel: only row 0 is coarse; the other rows are exact.
    assert float(errors["int4-channel"][1:].max()) < 1e-6 and float(errors["int4-channel"][0, 1:].max()) > 9e-3
    # Group-wise: only row 0's first 32 weights are coarse; its second group is exact.
    assert float(errors["int4-g32"][0, 32:].max()) < 1e-6 and float(errors["int4-g32"][1:].max()) < 1e-6


@pytest.mark.parametrize("name", SCHEMES)
def test_packing_round_trips_and_really_saves_bytes(name):
    scheme = QUANT_SCHEMES[name]
    codes = quantize_tensor(torch.randn(6, 64), scheme).codes
    packed = pack_codes(codes, scheme)
    assert packed.dtype in (torch.int8, torch.uint8)
    assert packed.numel() == codes.numel() * scheme.storage_bits // 8
    assert torch.equal(unpack_codes(packed, scheme, tuple(codes.shape)), codes)


def test_pack_a_hand_worked_byte_and_an_odd_count():
    """int4 zero-point codes 1, 2 -> byte 1 + 2·16 = 33; a lone third code is padded with 0."""
    s = QuantScheme(bits=4, symmetric=False, granularity="tensor")
    assert pack_codes(torch.tensor([1, 2, 15]), s).tolist() == [33, 15]
    assert unpack_codes(torch.tensor([33, 15], dtype=torch.uint8), s, (3,)).tolist() == [1, 2, 15]
    s2 = QuantScheme(bits=2, granularity="tensor")  # absmax codes -1, 0, 1 stored as 1, 2, 3
    assert pack_codes(torch.tensor([-1, 0, 1, 1]), s2).tolist() == [1 + 2 * 4 + 3 * 16 + 3 * 64]


def test_bad_schemes_and_inputs_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="bits"):
        QuantScheme(bits=1)
    with pytest.raises(ValueError, match="granularity"):
        QuantScheme(granularity="row")
    with pytest.raises(ValueError, match="group_size"):
        QuantScheme(granularity="channel", group_size=32)
    with pytest.raises(TypeError, match="symmetric"):
        QuantScheme(symmetric=1)
    with pytest.raises(ValueError, match="group_size=32"):
        quantize_tensor(torch.randn(4, 48), QUANT_SCHEMES["int4-g32"])
    with pytest.raises(TypeError, match="floating-point"):
        quantize_tensor(torch.ones(4, 4, dtype=torch.long), QUANT_SCHEMES["int8-channel"])
    with pytest.raises(ValueError, match="unknown scheme"):
        quantize(nn.Linear(4, 4), "int5")


def test_fake_quantize_has_the_quantized_value_and_the_identity_gradient():
    w = torch.randn(8, 64, requires_grad=True)
    scheme = QUANT_SCHEMES["int2-g32"]
    out = fake_quantize(w, scheme)
    assert torch.equal(out.detach(), dequantize_tensor(quantize_tensor(w, scheme)))
    (out * torch.arange(64.0)).sum().backward()
    assert torch.equal(w.grad, torch.arange(64.0).expand(8, 64))


@pytest.mark.parametrize("name", ["int8-channel", "int4-g32", "int4-zp-g32"])
def test_the_quantized_model_holds_integers_and_computes_with_the_dequantized_weights(name):
    torch.manual_seed(0)
    model = GPT(TINY).eval()
    small = quantize(model, name)
    state = small.state_dict()
    qweights = [k for k in state if k.endswith("qweight")]
    assert len(qweights) == 4 * TINY.n_layers  # qkv, proj, up, down; the tied head stays float
    assert all(state[k].dtype in (torch.int8, torch.uint8) for k in qweights)
    assert isinstance(model.blocks[0].attention.qkv, nn.Linear)  # the original is untouched
    # The reference: the float model with each weight replaced by its dequantized value.
    reference = GPT(TINY).eval()
    reference.load_state_dict(model.state_dict())
    quantized = dict(small.named_modules())
    for name, m in reference.named_modules():
        if isinstance(quantized[name], QuantizedLinear):
            m.weight.data = quantized[name].dequantized_weight()
    idx = torch.randint(0, TINY.vocab_size, (2, TINY.context_length))
    torch.testing.assert_close(small(idx)[0], reference(idx)[0])


def test_a_saved_quantized_model_is_smaller_and_reloads(tmp_path):
    torch.manual_seed(0)
    model = GPT(TINY).eval()
    small = quantize(model, "int4-g32")
    assert saved_bytes(small, tmp_path / "q.pt") < saved_bytes(model, tmp_path / "f.pt") / 2
    # The zip archive records the file's name, so another name changes the size by a few hundred bytes.
    assert abs((tmp_path / "q.pt").stat().st_size - saved_bytes(small)) < 1024
    again = quantize(GPT(TINY), "int4-g32")  # the same structure, other weights
    again.load_state_dict(torch.load(tmp_path / "q.pt", weights_only=True))
    idx = torch.randint(0, TINY.vocab_size, (1, 8))
    torch.testing.assert_close(again(idx)[0], small(idx)[0], rtol=0, atol=0)


def test_the_storage_report_counts_every_byte_once():
    torch.manual_seed(0)
    model = GPT(TINY)
    fp32 = storage_report(model)
    assert fp32.weights == model.num_parameters() and fp32.total_bytes == 4 * model.num_parameters()
    small = storage_report(quantize(model, "int4-g32"))
    linear = sum(m.weight.numel() for m in model.modules() if type(m) is nn.Linear) - TINY.vocab_size * TINY.d_model
    assert small.weights == model.num_parameters()
    assert small.integer_bytes == linear // 2 and small.scale_bytes == 2 * linear // 32
    assert small.float_bytes == 4 * (model.num_parameters() - linear)
    both = quantize(model, "int4-g32", include_embeddings=True)
    assert isinstance(both.token_embedding, QuantizedEmbedding)
    assert both.lm_head.qweight is both.token_embedding.table.qweight  # still tied: one table
    assert storage_report(both).weights == model.num_parameters()
    tables = (TINY.vocab_size + TINY.context_length) * TINY.d_model  # tokens and learned positions
    assert storage_report(both).integer_bytes == (linear + tables) // 2


def test_quantization_aware_training_then_quantize_computes_the_same():
    torch.manual_seed(0)
    model = prepare_qat(GPT(TINY), "int3-g32")
    assert isinstance(model.blocks[0].feed_forward.up, FakeQuantLinear)
    assert not isinstance(model.lm_head, FakeQuantLinear)  # tied to the embedding
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    idx = torch.randint(0, TINY.vocab_size, (4, TINY.context_length))
    before = model.blocks[0].feed_forward.up.weight.detach().clone()
    _, loss = model(idx, idx)
    loss.backward()
    opt.step()
    assert not torch.equal(before, model.blocks[0].feed_forward.up.weight)  # the gradient got through
    model.eval()
    torch.testing.assert_close(quantize(model, "int3-g32")(idx)[0], model(idx)[0])


def test_the_script_writes_both_results_with_provenance(tmp_path):
    import json

    from llmscratch.scripts.quantization_sweep import QAT_SCHEME, main

    main(["qat", "--steps", "2", "--tokens", "64", "--seeds", "1", "--no-progress", "--out", str(tmp_path / "q.json")])
    result = json.loads((tmp_path / "q.json").read_text())
    run = result["runs"][0]
    assert run["seed"] == 1 and set(run["ptq"]) == set(result["ptq_schemes"]) and QAT_SCHEME in run["qat"]
    assert all(math.isfinite(v["bits_per_char"]) for v in [run["fp32"], *run["ptq"].values(), *run["qat"].values()])
    assert result["provenance"]["command"].startswith("python -m llmscratch.scripts.quantization_sweep")
