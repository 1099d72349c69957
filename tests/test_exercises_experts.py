"""llmscratch.exercises.experts: the top-k routing checker passes the package's answer and rejects real slips."""

import pytest
import torch

from llmscratch.exercises import ExerciseError, check_top_k_routing
from llmscratch.moe import route


def package(logits, k):
    r = route(logits, k)
    return r.experts, r.gates


def test_the_checker_passes_the_package_and_any_order_of_the_chosen_experts(capsys):
    check_top_k_routing(package)
    check_top_k_routing(lambda logits, k: tuple(t.flip(-1) for t in package(logits, k)))
    assert capsys.readouterr().out.count("check_top_k_routing: all 6 cases") == 2


def always_renormalised(logits, k):
    top, experts = logits.softmax(-1).topk(k, dim=-1)
    return experts, top / top.sum(-1, keepdim=True)


def never_renormalised(logits, k):
    top, experts = logits.softmax(-1).topk(k, dim=-1)
    return experts, top


@pytest.mark.parametrize(
    "wrong, message",
    [
        (always_renormalised, "Switch keeps the probability itself"),
        (never_renormalised, "renormalised over the chosen experts"),
        (lambda logits, k: tuple(reversed(logits.topk(k, dim=-1))), "softmax probability of its expert"),
        (lambda logits, k: (logits.topk(k, dim=0).indices.t()[: len(logits)], logits.topk(k, dim=-1).values),
         "expected experts|expected experts of shape"),
        (lambda logits, k: ((-logits).topk(k, dim=-1).indices, logits.softmax(-1).topk(k, dim=-1).values),
         "are they the k largest"),
        (lambda logits, k: package(logits, k)[1], "expected a pair"),
    ],
)
def test_the_checker_rejects_plausible_slips(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_top_k_routing(wrong)


def test_the_checker_names_the_case():
    with pytest.raises(ExerciseError, match=r"4 tokens, 2 experts, k=1 \(the chapter's example\)"):
        check_top_k_routing(always_renormalised)
    with pytest.raises(ExerciseError, match="your function raised ValueError"):
        check_top_k_routing(lambda logits, k: (_ for _ in ()).throw(ValueError("no")))
    assert torch.equal(route(torch.zeros(1, 2), 1).gates, torch.tensor([[0.5]]))
