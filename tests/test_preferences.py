"""llmscratch.preferences: DPO's loss, GRPO's advantages and loss, and response log-probabilities, by hand."""

import math

import pytest
import torch

from llmscratch import GPT, GPTConfig
from llmscratch.preferences import dpo_loss, grpo_advantages, grpo_loss, response_kl, response_logprobs


def test_dpo_loss_by_hand():
    pc, pr = torch.tensor([-1.0, -4.0]), torch.tensor([-3.0, -2.0])
    rc, rr = torch.tensor([-2.0, -3.0]), torch.tensor([-2.0, -2.5])
    loss, chosen, rejected = dpo_loss(pc, pr, rc, rr, beta=0.5)
    # pair 1: 0.5 * ((-1 + 2) - (-3 + 2)) = 1.0; pair 2: 0.5 * ((-4 + 3) - (-2 + 2.5)) = -0.75
    want = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(0.75))) / 2
    assert abs(loss.item() - want) < 1e-6
    assert chosen.tolist() == [0.5, -0.5] and rejected.tolist() == [-0.5, 0.25]
    assert not chosen.requires_grad
    # Equal policy and reference: every pair at log 2.
    assert abs(dpo_loss(rc, rr, rc, rr, 0.1)[0].item() - math.log(2)) < 1e-6


def test_dpo_loss_gradient_raises_chosen_and_lowers_rejected():
    pc, pr = torch.tensor([-2.0], requires_grad=True), torch.tensor([-2.0], requires_grad=True)
    loss, _, _ = dpo_loss(pc, pr, torch.tensor([-2.0]), torch.tensor([-2.0]), beta=1.0)
    loss.backward()
    assert pc.grad.item() < 0 < pr.grad.item()  # descending the loss raises chosen, lowers rejected
    assert abs(pc.grad.item() + 0.5) < 1e-6  # -beta * sigmoid(-0) = -0.5


@pytest.mark.parametrize("beta", [0, -0.1, True, "0.1"])
def test_dpo_refuses_a_bad_beta(beta):
    t = torch.zeros(2)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(t, t, t, t, beta)


def test_dpo_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        dpo_loss(torch.zeros(2), torch.zeros(3), torch.zeros(2), torch.zeros(2), 0.1)


def test_grpo_advantages_by_hand():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 1.0]])
    adv = grpo_advantages(rewards)
    # Group 1: mean 0.25, std sqrt(0.1875) = 0.4330: (0.75, -0.25 x 3) / 0.4330.
    s = math.sqrt(0.1875)
    assert torch.allclose(adv[0], torch.tensor([0.75 / s, -0.25 / s, -0.25 / s, -0.25 / s]))
    assert adv[1].tolist() == [0.0] * 4  # nothing to learn from a group that all failed
    assert torch.allclose(adv[2], torch.tensor([0.25 / s, 0.25 / s, -0.75 / s, 0.25 / s]))
    assert torch.allclose(adv.sum(dim=1), torch.zeros(3), atol=1e-6)
    with pytest.raises(ValueError, match="group_size >= 2"):
        grpo_advantages(torch.ones(3, 1))


def test_grpo_loss_by_hand():
    logps = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0]], requires_grad=True)
    ref = torch.tensor([[-1.0, -1.0, 0.0], [-0.5, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    adv = torch.tensor([1.0, -2.0])
    loss, kl = grpo_loss(logps, adv, ref, mask, kl_weight=0.1)
    k3 = math.exp(1.0) - 1.0 - 1  # token (0, 1): r = -1 - (-2) = 1
    answer_0 = (-(1.0 * -1.0) + -(1.0 * -2.0) + 0.1 * k3) / 2
    answer_1 = -(-2.0 * -0.5)
    assert abs(loss.item() - (answer_0 + answer_1) / 2) < 1e-6
    assert abs(kl.item() - (k3 / 2 + 0.0) / 2) < 1e-6
    loss.backward()
    assert logps.grad[0, 2] == 0 and logps.grad[1, 1] == 0  # masked tokens get no gradient
    with pytest.raises(ValueError, match="kl_weight"):
        grpo_loss(logps, adv, ref, mask, kl_weight=-1)


def test_response_logprobs_sum_only_the_response():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, context_length=8, d_model=16, n_layers=1, n_heads=2)).eval()
    ids = torch.randint(0, 11, (2, 6), generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[0, 0, 0, 1, 1, 0], [0, 1, 1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        got = response_logprobs(model, ids, mask)
        logp = model(ids)[0].log_softmax(-1)
    want = [logp[0, 2, ids[0, 3]] + logp[0, 3, ids[0, 4]], sum(logp[1, t - 1, ids[1, t]] for t in range(1, 6))]
    assert torch.allclose(got, torch.stack(want), atol=1e-5)
    with pytest.raises(ValueError, match="first token"):
        response_logprobs(model, ids, torch.ones(2, 6, dtype=torch.bool))
    with pytest.raises(TypeError, match="boolean"):
        response_logprobs(model, ids, mask.int())


def test_response_kl_is_zero_for_equal_models_and_matches_the_definition():
    torch.manual_seed(0)
    a = GPT(GPTConfig(vocab_size=11, context_length=8, d_model=16, n_layers=1, n_heads=2)).eval()
    b = GPT(GPTConfig(vocab_size=11, context_length=8, d_model=16, n_layers=1, n_heads=2)).eval()
    ids = torch.randint(0, 11, (2, 6), generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[0, 0, 0, 1, 1, 0], [0, 1, 1, 1, 1, 1]], dtype=torch.bool)
    assert response_kl(a, a, ids, mask) == 0.0
    with torch.no_grad():
        p, q = a(ids)[0].softmax(-1), b(ids)[0].softmax(-1)
    # Response tokens at (0, 3), (0, 4) and (1, 1..5) are predicted from the position before each.
    terms = [float((p[i, t - 1] * (p[i, t - 1] / q[i, t - 1]).log()).sum())
             for i in range(2) for t in range(1, 6) if mask[i, t]]
    assert abs(response_kl(a, b, ids, mask) - sum(terms) / len(terms)) < 1e-5
    assert response_kl(a, b, ids, mask) > 0
