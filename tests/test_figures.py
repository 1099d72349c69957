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
