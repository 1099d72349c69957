"""llmscratch.moe: the router, capacity, the load-balancing loss, and the mixture in a GPT.

The hand-worked example used throughout: four tokens, two experts, router probabilities
(0.9, 0.1), (0.8, 0.2), (0.6, 0.4), (0.3, 0.7). Top-1 sends tokens 0, 1, 2 to expert 0 and
token 3 to expert 1, with gates 0.9, 0.8, 0.6, 0.7 (Switch keeps the probability itself).
The load-balancing loss: f = (3/4, 1/4) of the choices, P = (0.65, 0.35) mean probabilities,
so E · Σ f·P = 2 · (0.4875 + 0.0875) = 1.15. A capacity factor of 1 gives each expert
int(1 · 4 · 1 / 2) = 2 slots: expert 0 is full after tokens 0 and 1, so token 2 is dropped.
"""

import json
import math
from dataclasses import replace

import pytest
import torch

from llmscratch import GPT, GPTConfig, active_parameters, parameter_formula
from llmscratch.blocks import FeedForward
from llmscratch.flops import matmul_weights
from llmscratch.kv_cache import KVCache
from llmscratch.moe import (
    MoEFeedForward,
    capacity_mask,
    collect_routing,
    expert_capacity,
    expert_counts,
    load_balancing_loss,
    route,
    routing_entropy,
    routing_summary,
)

pytestmark = pytest.mark.usefixtures("one_thread")

PROBS = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
SMALL = GPTConfig(vocab_size=30, context_length=8, d_model=16, n_layers=2, n_heads=2, n_experts=4,
                  experts_per_token=2)


def test_top1_routing_of_the_hand_worked_example():
    r = route(PROBS.log(), k=1)
    assert r.experts.flatten().tolist() == [0, 0, 0, 1]
    torch.testing.assert_close(r.gates.flatten(), torch.tensor([0.9, 0.8, 0.6, 0.7]))  # not renormalised
    torch.testing.assert_close(r.probs, PROBS)
    assert r.kept.all()


def test_top2_gates_are_renormalised_over_the_chosen_experts():
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]])
    r = route(probs.log(), k=2)
    assert r.experts.tolist() == [[0, 1], [2, 1]]  # best first
    torch.testing.assert_close(r.gates, torch.tensor([[0.625, 0.375], [0.7 / 0.9, 0.2 / 0.9]]))
    torch.testing.assert_close(r.gates.sum(-1), torch.ones(2))


def test_load_balancing_loss_of_the_hand_worked_example_and_its_extremes():
    assert load_balancing_loss(PROBS, PROBS.argmax(-1, keepdim=True)).item() == pytest.approx(1.15)
    uniform = torch.full((6, 3), 1 / 3)
    assert load_balancing_loss(uniform, torch.tensor([[0], [1], [2], [0], [1], [2]])).item() == pytest.approx(1.0)
    collapsed = torch.tensor([[1.0, 0.0, 0.0]] * 5)
    assert load_balancing_loss(collapsed, torch.zeros(5, 1, dtype=torch.long)).item() == pytest.approx(3.0)
    # Top-2: f counts both choices of every token (here each expert once of 2 * 1 choices).
    assert load_balancing_loss(torch.tensor([[0.6, 0.4]]), torch.tensor([[0, 1]])).item() == pytest.approx(1.0)


def test_load_balancing_gradient_lowers_the_busy_expert():
    logits = PROBS.log().clone().requires_grad_(True)
    r = route(logits, k=1)
    load_balancing_loss(r.probs, r.experts).backward()
    assert (logits.grad[:, 0] > 0).all() and (logits.grad[:, 1] < 0).all()  # descent moves toward expert 1


def test_capacity_drops_the_token_that_finds_its_expert_full():
    assert expert_capacity(4, 2, 1, 1.0) == 2
    r = route(PROBS.log(), k=1, capacity=2)
    assert r.kept.flatten().tolist() == [True, True, False, True]
    assert expert_counts(r.experts, 2, r.kept).tolist() == [2, 1]
    assert route(PROBS.log(), k=1, capacity=None).kept.all()
    assert route(PROBS.log(), k=1, capacity=expert_capacity(4, 2, 1, 2.0)).kept.all()


def test_first_choices_queue_before_second_choices():
    # Token 0's second choice and token 1's first choice both want expert 1, which has one slot:
    # the first choice wins although token 0 comes first.
    experts = torch.tensor([[0, 1], [1, 0]])
    assert capacity_mask(experts, 2, capacity=1).tolist() == [[True, False], [True, False]]


@pytest.mark.parametrize("n_tokens, n_experts, k, factor", [(64, 4, 1, 1.0), (64, 4, 2, 1.25), (10, 8, 2, 0.5)])
def test_no_expert_takes_more_than_its_capacity(n_tokens, n_experts, k, factor):
    torch.manual_seed(0)
    capacity = expert_capacity(n_tokens, n_experts, k, factor)
    r = route(torch.randn(n_tokens, n_experts) * 3, k, capacity)
    assert expert_counts(r.experts, n_experts, r.kept).max() <= capacity
    # Whatever was dropped was over the limit: its expert is full.
    full = expert_counts(r.experts, n_experts, r.kept) == capacity
    assert full[r.experts[~r.kept]].all()


def _moe(k, n_experts=4, capacity_factor=None, activation="gelu"):
    torch.manual_seed(1)
    return MoEFeedForward(8, [FeedForward(8, 12, activation) for _ in range(n_experts)], k, capacity_factor)


def _reference(moe, x):
    """The mixture one token at a time, one chosen expert at a time: the sum of gate times output."""
    tokens = x.reshape(-1, x.shape[-1])
    r = route(moe.router(tokens), moe.k)
    rows = [sum(r.gates[n, j] * moe.experts[int(r.experts[n, j])](tokens[n]) for j in range(moe.k))
            for n in range(len(tokens))]
    return torch.stack(rows).reshape(x.shape)


@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("activation", ["gelu", "swiglu"])
def test_mixture_equals_the_token_by_token_reference(k, activation):
    moe = _moe(k, activation=activation)
    x = torch.randn(3, 5, 8)
    torch.testing.assert_close(moe(x), _reference(moe, x))


def test_identical_experts_reduce_to_the_dense_network():
    """With renormalised gates (k = 2) the gates sum to 1; with k = 1 the output is scaled by the top probability."""
    dense = FeedForward(8, 12)
    x = torch.randn(2, 6, 8)
    for k in (1, 2):
        moe = _moe(k)
        for expert in moe.experts:
            expert.load_state_dict(dense.state_dict())
        top = route(moe.router(x.reshape(-1, 8)), k).probs.max(-1).values.reshape(2, 6, 1)
        torch.testing.assert_close(moe(x), dense(x) * (top if k == 1 else 1.0))


def test_capacity_applies_in_training_only_and_drops_whole_tokens_to_zero():
    moe = _moe(1, n_experts=2, capacity_factor=0.5)
    x = torch.randn(1, 8, 8)
    moe.train()
    out = moe(x)
    kept = moe.last_routing.kept.flatten()
    assert kept.sum() <= 2 * expert_capacity(8, 2, 1, 0.5) and not kept.all()
    assert (out.reshape(8, 8)[~kept] == 0).all() and (out.reshape(8, 8)[kept] != 0).any()
    moe.eval()
    moe(x)
    assert moe.last_routing.kept.all()


@pytest.mark.parametrize("k", [1, 2])
def test_the_language_model_loss_alone_reaches_the_router(k):
    model = GPT(replace(SMALL, experts_per_token=k, router_aux_weight=0.0))
    idx = torch.randint(0, 30, (2, 8))
    model(idx, idx)[1].backward()
    for block in model.blocks:
        assert block.feed_forward.router.weight.grad.abs().sum() > 0


def test_training_loss_adds_the_weighted_mean_aux_loss_and_evaluation_does_not():
    torch.manual_seed(0)
    model = GPT(replace(SMALL, router_aux_weight=0.5))
    idx = torch.randint(0, 30, (2, 8))
    _, loss = model(idx, idx)
    aux = torch.stack([b.feed_forward.aux_loss for b in model.blocks]).mean()
    torch.testing.assert_close(loss, model.last_lm_loss + 0.5 * aux)
    assert model.last_aux_loss.item() == pytest.approx(aux.item()) and model.last_aux_loss.item() >= 1.0 - 1e-6
    model.eval()
    _, eval_loss = model(idx, idx)
    torch.testing.assert_close(eval_loss, model.last_lm_loss)
    torch.testing.assert_close(eval_loss, torch.nn.functional.cross_entropy(model(idx)[0].flatten(0, 1),
                                                                           idx.flatten()))


@pytest.mark.parametrize("changes", [{}, {"experts_per_token": 1}, {"activation": "swiglu", "bias": False},
                                     {"n_experts": 8, "d_ff": 24}])
def test_parameter_and_active_parameter_counts(changes):
    config = replace(SMALL, **changes)
    model = GPT(config)
    assert model.num_parameters() == parameter_formula(config)["total"]
    expert = sum(p.numel() for p in model.blocks[0].feed_forward.experts[0].parameters())
    idle = config.n_layers * (config.n_experts - config.experts_per_token) * expert
    assert active_parameters(config) == model.num_parameters() - idle
    dense = replace(config, n_experts=0)
    router = config.d_model * config.n_experts
    assert matmul_weights(config) - matmul_weights(dense) == config.n_layers * (
        (config.experts_per_token - 1) * (matmul_weights(dense) - matmul_weights(replace(dense, d_ff=0)))
        // config.n_layers + router)
    assert active_parameters(dense) == parameter_formula(dense)["total"]


def test_a_model_without_blocks_has_no_router_loss():
    model = GPT(replace(SMALL, n_layers=0))
    idx = torch.randint(0, 30, (2, 8))
    _, loss = model(idx, idx)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(model(idx)[0].flatten(0, 1), idx.flatten()))
    assert model.last_aux_loss is None


def test_residual_projections_of_every_expert_get_the_scaled_init():
    torch.manual_seed(0)
    model = GPT(replace(SMALL, d_model=64, d_ff=256, n_heads=4))
    stds = [float(e.down.weight.detach().std()) for b in model.blocks for e in b.feed_forward.experts]
    expected = 0.02 / math.sqrt(2 * SMALL.n_layers)
    assert all(abs(s - expected) < 0.2 * expected for s in stds)


def test_cached_generation_equals_the_whole_sequence():
    torch.manual_seed(0)
    model = GPT(replace(SMALL, position="rope")).eval()
    idx = torch.randint(0, 30, (2, 8))
    whole, _ = model(idx)
    cache = KVCache.for_model(model)
    pieces = [model(idx[:, :5], cache=cache)[0]] + [model(idx[:, t : t + 1], cache=cache)[0] for t in range(5, 8)]
    torch.testing.assert_close(torch.cat(pieces, 1), whole)


def test_routing_records_and_summaries():
    torch.manual_seed(0)
    model = GPT(SMALL)
    idx = torch.randint(0, 30, (3, 8))
    routings = collect_routing(model, idx)
    assert len(routings) == 2 and routings[0].experts.shape == (24, 2)
    assert all(not r.experts.requires_grad for r in routings)
    summary = routing_summary(model, torch.randint(0, 30, (40,)))
    assert 0.0 <= summary["entropy_bits_min"] <= summary["entropy_bits_mean"] <= 2.0
    assert 0.25 <= summary["busiest_share"] <= 1.0
    assert routing_entropy(torch.tensor([3, 0, 3, 0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="n_experts > 0"):
        collect_routing(GPT(replace(SMALL, n_experts=0)), idx)
    with pytest.raises(ValueError, match="shorter than one window"):
        routing_summary(model, torch.randint(0, 30, (5,)))


def test_bad_routing_arguments_raise():
    with pytest.raises(ValueError, match="k must be between"):
        route(torch.zeros(3, 2), k=3)
    with pytest.raises(ValueError, match=r"shape \(N, E\)"):
        route(torch.zeros(3), k=1)
    with pytest.raises(ValueError, match="capacity_factor"):
        expert_capacity(4, 2, 1, 0.0)
    with pytest.raises(ValueError, match="n_experts >= 2"):
        MoEFeedForward(8, [FeedForward(8, 12)], 1)


def test_sweep_script_records_routing_for_models_with_experts(tmp_path, monkeypatch):
    from llmscratch.scripts import ablation_ladder, moe_sweep
    from llmscratch.training import TrainConfig

    tiny = GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layers=1, n_heads=2)
    monkeypatch.setattr(moe_sweep, "MOE_ENTRIES", [("dense", tiny), ("moe", replace(tiny, n_experts=2,
                                                                                    experts_per_token=1))])
    monkeypatch.setattr(moe_sweep, "LADDER_TRAIN", TrainConfig(steps=2, batch_size=4, warmup_steps=1,
                                                               eval_interval=2, eval_batches=1))
    g = torch.Generator().manual_seed(0)
    splits = {name: torch.randint(0, 20, (300,), generator=g) for name in ("train", "val", "test")}
    fake = lambda: (None, splits, {"train": 900, "val": 900, "test": 900})  # noqa: E731
    monkeypatch.setattr(moe_sweep, "shakespeare_bpe_splits", fake)
    monkeypatch.setattr(ablation_ladder, "shakespeare_bpe_splits", fake)
    out = tmp_path / "moe.json"
    assert moe_sweep.main(["--seeds", "1", "2", "--out", str(out), "--no-progress"]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["name"] for r in rows] == ["dense", "moe"]
    assert "measures" not in rows[0]
    assert len(rows[1]["measures"]["entropy_bits_mean"]) == 2
    assert all(0.0 <= e <= 1.0 for e in rows[1]["measures"]["entropy_bits_mean"])
    assert rows[1]["num_parameters"] == parameter_formula(GPTConfig(**rows[1]["config"]))["total"]
    assert moe_sweep.main(["--seeds", "1", "--only", "moe", "--out", str(out), "--no-progress"]) == 0
    assert [r["name"] for r in json.loads(out.read_text())["rows"]] == ["moe"]
    with pytest.raises(SystemExit, match="no row named"):
        moe_sweep.main(["--only", "nine experts", "--out", str(out)])
