"""The GPT: causality for every variant, parameter counts against the closed form, the loss at
initialisation, weight tying, and clear errors for bad configs and inputs."""

import math
from dataclasses import replace

import pytest
import torch

from llmscratch import GPT, GPT_PRESETS, GPTConfig, parameter_formula

SMALL = GPTConfig(vocab_size=40, context_length=12, d_model=16, n_layers=2, n_heads=4)
POSITIONS = ["learned", "sinusoidal", "rope", "alibi", "none"]
VARIANTS = [
    *(replace(SMALL, position=p) for p in POSITIONS),
    replace(SMALL, norm_placement="post"),
    replace(SMALL, norm="rmsnorm", activation="swiglu", bias=False, position="rope"),
    replace(SMALL, norm="none", residual=False),
    replace(SMALL, n_kv_heads=2, tie_weights=False, activation="relu"),
    replace(SMALL, n_kv_heads=1, d_ff=24, dropout=0.1),
    replace(SMALL, n_layers=1, n_heads=1, d_ff=0),  # attention only
    replace(SMALL, norm_placement="post", d_ff=0),
]


def _name(c):
    return f"{c.position}-{c.norm}-{c.norm_placement}-{c.activation}-kv{c.kv_heads}"


@pytest.mark.parametrize("config", VARIANTS, ids=_name)
def test_causal_future_tokens_change_nothing_before(config):
    """Changing token t+1 leaves the logits at positions <= t unchanged, and changes later ones."""
    torch.manual_seed(0)
    model = GPT(config).eval()
    idx = torch.randint(config.vocab_size, (2, config.context_length))
    base, _ = model(idx)
    for t in (0, 4, config.context_length - 2):
        changed = idx.clone()
        changed[:, t + 1] = (changed[:, t + 1] + 1) % config.vocab_size
        logits, _ = model(changed)
        torch.testing.assert_close(logits[:, : t + 1], base[:, : t + 1])
        assert not torch.equal(logits[:, t + 1 :], base[:, t + 1 :])  # (tiny without residuals, but there)


@pytest.mark.parametrize("config", VARIANTS, ids=_name)
def test_parameter_counts_match_the_formula(config):
    model = GPT(config)
    formula = parameter_formula(config)
    assert model.num_parameters() == formula["total"]
    names = ["token_embedding", "position_embedding", "attention", "feed_forward", "norms", "lm_head"]
    groups = dict.fromkeys(names, 0)
    for name, p in model.named_parameters():  # a tied matrix appears once, as token_embedding
        key = next(k for k in ("token_embedding", "position_embedding", "attention", "feed_forward", "lm_head")
                   if k in name) if "norm" not in name else "norms"
        groups[key] += p.numel()
    assert groups == {k: v for k, v in formula.items() if k != "total"}


def test_weight_tying_saves_one_embedding_matrix():
    tied, untied = GPT(SMALL), GPT(replace(SMALL, tie_weights=False))
    assert untied.num_parameters() - tied.num_parameters() == SMALL.vocab_size * SMALL.d_model
    assert tied.lm_head.weight is tied.token_embedding.weight


@pytest.mark.parametrize("position", POSITIONS)
def test_loss_at_init_is_close_to_ln_vocab(position):
    torch.manual_seed(0)
    config = replace(GPT_PRESETS["tiny"], position=position)
    model = GPT(config)
    idx = torch.randint(config.vocab_size, (8, config.context_length))
    _, loss = model(idx, torch.randint(config.vocab_size, idx.shape))
    assert abs(loss.item() - math.log(config.vocab_size)) < 0.05


def test_scaled_residual_init():
    model = GPT(replace(SMALL, n_layers=8, d_model=64))
    std = model.blocks[0].attention.proj.weight.std().item()
    assert std == pytest.approx(0.02 / math.sqrt(16), rel=0.1)
    assert model.blocks[0].attention.qkv.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_longer_inputs_only_where_the_scheme_allows():
    idx = torch.zeros(1, 2 * SMALL.context_length, dtype=torch.long)
    for position in ("sinusoidal", "rope", "alibi", "none"):
        logits, _ = GPT(replace(SMALL, position=position))(idx)
        assert logits.shape == (1, 24, SMALL.vocab_size)
    with pytest.raises(ValueError, match="learned position table"):
        GPT(SMALL)(idx)


def test_trace_records_every_layer_and_matches_forward():
    model = GPT(SMALL)
    idx = torch.randint(SMALL.vocab_size, (2, 7))
    trace = model.trace(idx)
    assert len(trace.hidden) == SMALL.n_layers + 1 and len(trace.attention) == SMALL.n_layers
    assert trace.attention[0].shape == (2, SMALL.n_heads, 7, 7)
    torch.testing.assert_close(trace.logits, model(idx)[0])


@pytest.mark.parametrize(
    "changes,match",
    [
        (dict(d_model=30, n_heads=4), "not divisible"),
        (dict(n_kv_heads=3), "divisor"),
        (dict(position="absolute"), "position"),
        (dict(norm="batchnorm"), "norm"),
        (dict(norm_placement="middle"), "norm_placement"),
        (dict(activation="tanh"), "activation"),
        (dict(n_layers=-1), "n_layers"),
        (dict(d_ff=-4), "d_ff"),
        (dict(dropout=1.0), "dropout"),
        (dict(d_model=12, n_heads=4, position="rope"), "head_dim must be even"),
        (dict(rope_base=1.0), "rope_base"),
        (dict(attention_window=0), "attention_window"),
        (dict(n_experts=1), "n_experts=1"),
        (dict(n_experts=2, experts_per_token=3), "more than n_experts"),
        (dict(n_experts=4, d_ff=0), "d_ff=0"),
        (dict(capacity_factor=0.0), "capacity_factor"),
        (dict(router_aux_weight=-0.1), "router_aux_weight"),
    ],
)
def test_bad_configs_fail_at_construction(changes, match):
    with pytest.raises(ValueError, match=match):
        replace(SMALL, **changes)


@pytest.mark.parametrize(
    "changes,match",
    [
        (dict(vocab_size=True), "vocab_size must be a positive integer, got True"),
        (dict(d_model=64.0), "d_model must be a positive integer, got 64.0"),
        (dict(n_kv_heads="2"), "n_kv_heads must be an integer or None"),
        (dict(tie_weights="yes"), "tie_weights must be True or False"),
        (dict(dropout="0.1"), "dropout must be a number"),
        (dict(attention_window=4.0), "attention_window must be a positive integer"),
        (dict(capacity_factor="1.25"), "capacity_factor must be a number"),
    ],
)
def test_wrong_types_raise_type_error(changes, match):
    with pytest.raises(TypeError, match=match):
        replace(SMALL, **changes)


def test_bad_inputs():
    model = GPT(SMALL)
    with pytest.raises(ValueError, match=f"outside the vocabulary 0..{SMALL.vocab_size - 1}"):
        model(torch.full((1, 4), SMALL.vocab_size))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(torch.tensor([[0, 1, -1]]))  # indexing would have wrapped -1 to the last row
    with pytest.raises(TypeError, match="int64"):
        model(torch.zeros(1, 4))
    with pytest.raises(TypeError, match="tensor of token ids, got list"):
        model([[0, 1]])
    with pytest.raises(ValueError, match="shape"):
        model(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        model(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="must be a GPTConfig"):
        GPT({"d_model": 16})


def test_ignored_targets_do_not_count():
    torch.manual_seed(0)
    model = GPT(SMALL)
    idx = torch.randint(SMALL.vocab_size, (1, 6))
    targets = torch.randint(SMALL.vocab_size, (1, 6))
    masked = targets.clone()
    masked[:, :3] = -100
    logits, loss = model(idx, masked)
    expected = torch.nn.functional.cross_entropy(logits[0, 3:], targets[0, 3:])
    torch.testing.assert_close(loss, expected)


def test_no_blocks_is_a_bigram_model():
    """n_layers=0: the logits at a position depend on that position's token alone."""
    config = replace(SMALL, n_layers=0, tie_weights=False, position="none")
    model = GPT(config)
    assert model.num_parameters() == parameter_formula(config)["total"] == 2 * 40 * 16 + 2 * 16
    idx = torch.tensor([[3, 7, 3], [5, 1, 3]])
    logits, _ = model(idx)
    torch.testing.assert_close(logits[0, 0], logits[0, 2])
    torch.testing.assert_close(logits[0, 0], logits[1, 2])


def test_forward_compiles_as_one_graph():
    """No host sync in forward (e.g. `int(idx.max())` to check the ids): torch.compile captures it whole."""
    model = GPT(SMALL)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    idx = torch.randint(SMALL.vocab_size, (2, 6))
    torch.testing.assert_close(compiled(idx, idx)[1], model(idx, idx)[1])
