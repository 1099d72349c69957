"""llmscratch.memory: the closed-form memory estimate against one real AdamW step, a hand-counted
bigram, invariants in batch size, precision and weight tying, and clear errors.

The estimate and the measurement both count whole tensors (no allocator, no rounding), so they
are compared exactly: a difference of even one byte means an op now saves something the
estimate does not know about (a new PyTorch kernel, a change to the model), and the estimate,
not a tolerance, should change. PyTorch is pinned in requirements.txt.
"""

from dataclasses import replace

import pytest
import torch

from llmscratch import GPT, GPTConfig, parameter_formula
from llmscratch.kv_cache import KVCache
from llmscratch.memory import activation_counts, kv_cache_bytes, measure_memory, memory_estimate, saved_tensor_bytes

SMALL = GPTConfig(vocab_size=50, context_length=8, d_model=24, n_layers=2, n_heads=3, d_ff=40)
CONFIGS = [
    SMALL,
    replace(SMALL, position="rope"),
    replace(SMALL, position="alibi"),  # a float mask: the unfused attention path, T × T weights
    replace(SMALL, position="sinusoidal", norm_placement="post"),
    replace(SMALL, position="none", norm="none", residual=False),
    replace(SMALL, n_kv_heads=1, position="rope"),  # grouped-query attention, fused
    replace(SMALL, position="rope", attention_window=3),  # a sliding window: the fused kernel keeps its mask
    replace(SMALL, position="alibi", attention_window=3),  # the window folded into ALiBi's float mask
    replace(SMALL, norm="rmsnorm", activation="swiglu", bias=False),
    replace(SMALL, activation="relu", tie_weights=False),
    replace(SMALL, dropout=0.1),  # dropout masks, and the unfused path
    replace(SMALL, dropout=0.1, position="rope", norm="rmsnorm", norm_placement="post"),
    replace(SMALL, d_ff=0, n_layers=3),  # attention only
    replace(SMALL, n_heads=1, position="rope"),  # one head: reshapes become views
    replace(SMALL, n_heads=1, dropout=0.2),
    replace(SMALL, n_layers=0, position="none", tie_weights=False),  # the bigram rung
    replace(SMALL, n_layers=4, d_ff=None, context_length=16),
]


def _name(c: GPTConfig) -> str:
    return (f"L{c.n_layers}-H{c.n_heads}-kv{c.kv_heads}-{c.position}-{c.norm}-{c.norm_placement}-{c.activation}"
            f"-ff{c.ff_dim}-drop{c.dropout}-tie{int(c.tie_weights)}-res{int(c.residual)}")


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("config", CONFIGS, ids=_name)
def test_estimate_equals_one_measured_adamw_step(config, batch_size):
    torch.set_num_threads(1)
    estimate, measured = memory_estimate(config, batch_size), measure_memory(config, batch_size)
    assert estimate == measured  # params, grads, adam state and activations, to the byte
    assert estimate.total == measured.total
    assert sum(estimate.activation_breakdown.values()) == estimate.activations


def test_bigram_counted_by_hand():
    """No blocks, no norm, no positions: logits = lm_head(token_embedding(idx)).

    Saved for backward: the token ids (embedding), the embedding output (the LM head's input),
    the log-softmax and the targets (cross-entropy) and one scalar, the sum of the target weights.
    The embedding and head matrices are parameters and are not counted.
    """
    config = GPTConfig(vocab_size=7, context_length=5, d_model=4, n_layers=0, n_heads=1, position="none",
                       norm="none", tie_weights=False)
    B, T, d, V = 3, 5, 4, 7
    expected = 8 * B * T + 4 * B * T * d + 4 * B * T * V + 8 * B * T + 4
    torch.manual_seed(0)
    model = GPT(config)
    idx, targets = torch.randint(V, (B, T)), torch.randint(V, (B, T))
    loss, saved = saved_tensor_bytes(model, idx, targets)
    assert saved == expected == memory_estimate(config, B).activations
    loss.backward()  # the graph is intact: the hooks only looked
    assert model.lm_head.weight.grad is not None


def test_counts_of_the_small_example():
    """The docstring's model: B·T = 16 rows, d = 16, F = 64, V = 50, one layer of four heads."""
    config = GPTConfig(vocab_size=50, context_length=8, d_model=16, n_layers=1, n_heads=4)
    counts = activation_counts(config, batch_size=2)
    assert counts["linear inputs"] == (3 * 16 * 16, 0)  # qkv, up, LM head
    assert counts["norms"] == (3 * (16 * 16 + 2 * 16), 0)  # two per layer and the final norm
    assert counts["attention"] == (16 * 48 + 2 * 4 * 8 + 16 * 16, 0)  # qkv output, log-sum-exp, heads' output
    assert counts["feed-forward"] == (2 * 16 * 64, 0)  # GELU input and output
    assert counts["loss (log-softmax)"] == (16 * 50 + 1, 0)
    assert counts["token ids and targets"] == (0, 32) and counts["position indices"] == (0, 8)


@pytest.mark.parametrize("config", [SMALL, replace(SMALL, position="rope"), replace(SMALL, dropout=0.1)], ids=_name)
def test_activations_grow_linearly_with_batch_and_the_rest_does_not(config):
    e2, e3, e4 = (memory_estimate(config, b) for b in (2, 3, 4))
    assert e4.activations - e3.activations == e3.activations - e2.activations > 0
    assert (e2.params, e2.grads, e2.adam) == (e4.params, e4.grads, e4.adam)


def test_unfused_attention_grows_quadratically_with_context():
    """With dropout, softmax weights, mask and dropped weights are 3 B·H·T² floats per layer."""
    config = replace(SMALL, dropout=0.1)
    short, long = (activation_counts(replace(config, context_length=t), 2)["attention"][0] for t in (8, 16))
    fused_short, fused_long = (activation_counts(replace(SMALL, context_length=t), 2)["attention"][0] for t in (8, 16))
    B, H, L = 2, SMALL.n_heads, SMALL.n_layers
    assert long - 2 * short == L * 3 * B * H * (16**2 - 2 * 8**2)
    assert fused_long == 2 * fused_short  # the fused kernel: linear in T


def test_bytes_per_value_and_weight_tying():
    tied, untied = SMALL, replace(SMALL, tie_weights=False)
    half = memory_estimate(tied, 2, bytes_per_value=2)
    full = memory_estimate(tied, 2, bytes_per_value=4)
    assert full.params == 2 * half.params == 4 * parameter_formula(tied)["total"]
    saved = memory_estimate(untied, 2).params - full.params
    assert saved == 4 * SMALL.vocab_size * SMALL.d_model  # one V × d matrix fewer
    # AdamW: two moments for the matrix, and one step counter for the extra tensor
    assert memory_estimate(untied, 2).adam - full.adam == 2 * saved + 4


@pytest.mark.parametrize("bad, error", [(dict(batch_size=0), ValueError), (dict(batch_size=2.0), TypeError),
                                        (dict(bytes_per_value=0), ValueError), (dict(bytes_per_value=True), TypeError)])
def test_bad_arguments_raise(bad, error):
    kwargs = dict(config=SMALL, batch_size=2, bytes_per_value=4) | bad
    name, value = next(iter(bad.items()))
    with pytest.raises(error, match=f"{name} must be a positive integer, got {value!r}"):
        memory_estimate(**kwargs)


def test_unmodelled_attention_path_and_wrong_config_raise():
    with pytest.raises(ValueError, match="grouped-query"):
        memory_estimate(replace(SMALL, n_kv_heads=1, position="alibi"), 2)
    with pytest.raises(TypeError, match="must be a GPTConfig"):
        memory_estimate({"d_model": 16}, 2)



@pytest.mark.parametrize("n_kv_heads", [None, 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("batch_size, length", [(1, 1), (3, 7), (2, 16)])
def test_kv_cache_formula_equals_the_bytes_the_model_stores(n_kv_heads, batch_size, length):
    """2 · n_layers · B · n_kv_heads · length · head_dim numbers, counted from the cache's own tensors
    after a prefill of `length` ids and one decode step."""
    config = replace(SMALL, n_heads=4, n_kv_heads=n_kv_heads, n_layers=3, position="rope")
    model = GPT(config).eval()
    cache = KVCache.for_model(model)
    with torch.no_grad():
        model(torch.zeros(batch_size, length, dtype=torch.long), cache=cache)
        model(torch.zeros(batch_size, 1, dtype=torch.long), cache=cache)
    measured = sum(t.numel() * t.element_size() for t in cache.keys + cache.values)
    assert measured == cache.nbytes == kv_cache_bytes(config, batch_size, length + 1)
    # Fewer key/value heads, a smaller cache by the same factor: what grouped-query attention buys.
    mha = kv_cache_bytes(replace(config, n_kv_heads=None), batch_size, length + 1)
    assert measured * config.n_heads == mha * config.kv_heads
    assert kv_cache_bytes(config, batch_size, length + 1, bytes_per_value=2) * 2 == measured
