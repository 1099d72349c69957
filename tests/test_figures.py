"""llmscratch.figures: the ablation chart sorts, subtracts and colours as its docstring says."""

import pytest

from llmscratch.figures import ablation_bars


def test_ablation_bars_sort_by_cost_and_mark_only_separated_ranges():
    fig = ablation_bars({"small": [1.01, 1.03, 0.99], "big": [1.5, 1.6, 1.4]}, [1.0, 1.02, 0.98], "t")
    bar = fig.data[0]
    assert list(bar.y) == ["without big", "without small"]  # largest cost first
    assert list(bar.x) == pytest.approx([0.5, 0.01])  # mean minus the full model's mean
    assert list(bar.marker.color) == ["#d62728", "#bbbbbb"]  # the small one overlaps the full model's runs
    assert list(bar.error_x.array) == pytest.approx([0.1, 0.02])
    assert list(bar.error_x.arrayminus) == pytest.approx([0.1, 0.02])


def test_attention_panels_blank_the_future_and_share_one_scale():
    import torch

    from llmscratch.figures import attention_panels

    weights = torch.tril(torch.ones(3, 3))
    weights = weights / weights.sum(-1, keepdim=True)  # (T, T) causal averages
    fig = attention_panels([("a", weights, "xyz"), ("b", weights.numpy(), ["x", "y", "z"])], "t")
    assert len(fig.data) == 2
    for trace in fig.data:
        z = [list(row) for row in trace.z]
        assert z[0] == [1.0, None, None] and z[2] == [0.333, 0.333, 0.333]  # row = query; future left blank
        assert (trace.zmin, trace.zmax) == (0, 1)
    assert [t.showscale for t in fig.data] == [False, True]  # one colour bar for all panels


def test_training_curves_draws_train_val_and_the_baseline():
    from llmscratch.figures import training_curves
    from llmscratch.training import History

    h = History()
    for step in range(1, 5):
        h.record_step(step, 0.1, 3.0 - 0.1 * step)
    h.record_eval(4, 2.7, 2.8)
    fig = training_curves({"run": h}, smooth=2, baseline=3.5)
    names = [t.name for t in fig.data]
    assert names == ["run: train", "run: val", "run: learning rate"]
    assert list(fig.data[0].y) == pytest.approx([2.9, 2.85, 2.75, 2.65])  # moving average over 2 updates
    assert list(fig.data[1].y) == [2.8]
    assert fig.layout.shapes[0].y0 == 3.5  # the baseline line
    with pytest.raises(ValueError):
        training_curves({})


def test_expert_utilisation_shares_and_hover_examples():
    import torch

    from llmscratch.figures import expert_utilisation

    tokens = torch.tensor([5, 5, 7, 9])
    experts = [torch.tensor([[0], [0], [0], [1]]), torch.tensor([[1, 2], [1, 2], [2, 0], [2, 0]])]
    fig = expert_utilisation(experts, tokens, 3, decode=lambda ids: f"t{ids[0]}")
    heat = fig.data[0]
    assert [list(r) for r in heat.z] == [[0.75, 0.25, 0.0], [0.25, 0.25, 0.5]]
    assert heat.customdata[0][0].startswith("3 tokens; most often: 't5' ×2, 't7' ×1")
    assert heat.customdata[0][2] == "0 tokens; most often: none"
    assert list(heat.y) == ["layer 0", "layer 1"]
