"""llmscratch.modern_block and the "modern" preset: matched widths, a grid of one change each, the timing helper.

- `swiglu_width` gives the width whose SwiGLU parameter count is closest to the two-matrix one
  (the hand-worked numbers of its docstring), and refuses a model without a feed-forward sublayer.
- Every entry of `NORM_GRID` differs from `NORM_BASE` in its norm or its activation only, and
  all are within 1% of its parameter count.
- ``GPT_PRESETS["modern"]`` is RMSNorm, SwiGLU, RoPE, no biases, at the four-block rung's size,
  and its GPT really has no bias, no LayerNorm and no position table.
"""

from dataclasses import asdict, replace

import pytest
import torch

from llmscratch import GPT, GPTConfig, parameter_formula
from llmscratch.blocks import RMSNorm
from llmscratch.config import GPT_PRESETS
from llmscratch.leaderboard import RUNGS as LEADERBOARD_RUNGS
from llmscratch.modern_block import NORM_BASE, NORM_GRID, parameter_gap, swiglu_width, time_norm

pytestmark = pytest.mark.usefixtures("one_thread")


def test_swiglu_width_by_hand():
    """d_model 64, GELU width 256 with biases: 2·64·256 + 256 + 64 = 33,088 parameters.
    SwiGLU at 170: 3·64·170 + 2·170 + 64 = 33,044 (44 fewer); at 171: 33,238 (150 more). So 170.
    Without biases: 32,768 against 32,640 (170) and 32,832 (171): 171."""
    config = GPTConfig(d_model=64, n_layers=1)
    assert parameter_formula(config)["feed_forward"] == 33_088
    assert swiglu_width(config) == 170 and swiglu_width(replace(config, bias=False)) == 171
    for width, count in ((170, 33_044), (171, 33_238)):
        assert parameter_formula(replace(config, activation="swiglu", d_ff=width))["feed_forward"] == count
    with pytest.raises(ValueError, match="no feed-forward"):
        swiglu_width(replace(config, d_ff=0))


@pytest.mark.parametrize("d_model, d_ff, bias", [(64, 256, True), (256, 1024, False), (48, 100, True), (8, 3, False)])
def test_swiglu_width_is_the_closest_of_all_widths(d_model, d_ff, bias):
    config = GPTConfig(d_model=d_model, n_heads=1, d_ff=d_ff, bias=bias)
    target = parameter_formula(config)["feed_forward"]

    def gap(width):
        return abs(parameter_formula(replace(config, activation="swiglu", d_ff=width))["feed_forward"] - target)

    assert gap(swiglu_width(config)) == min(gap(w) for w in range(1, 2 * d_ff + 2))


def test_the_grid_changes_one_thing_each_at_matched_parameters():
    names = [name for name, _ in NORM_GRID]
    assert names[0] == "LayerNorm, GELU" and NORM_GRID[0][1] == NORM_BASE and len(set(names)) == len(names)
    assert NORM_BASE.n_layers == 2 and NORM_BASE.norm == "layernorm" and NORM_BASE.activation == "gelu"
    base = asdict(NORM_BASE)
    for name, config in NORM_GRID[1:]:
        changed = {k for k, v in asdict(config).items() if base[k] != v}
        assert changed in ({"norm"}, {"activation"}, {"activation", "d_ff"}), (name, changed)
        assert parameter_gap(config, NORM_BASE) < 0.01, name
        assert GPT(config).num_parameters() == parameter_formula(config)["total"]
    swiglu = dict(NORM_GRID)["LayerNorm, SwiGLU"]
    assert swiglu.d_ff == swiglu_width(NORM_BASE) == 170


def test_the_modern_preset():
    modern = GPT_PRESETS["modern"]
    assert (modern.norm, modern.activation, modern.position, modern.bias) == ("rmsnorm", "swiglu", "rope", False)
    depth = dict(LEADERBOARD_RUNGS)["+ depth"]  # the leaderboard row it is compared with
    same = ("vocab_size", "context_length", "d_model", "n_layers", "n_heads", "tie_weights", "norm_placement")
    assert all(getattr(modern, k) == getattr(depth, k) for k in same)
    assert modern.d_ff == swiglu_width(replace(modern, activation="gelu", d_ff=None)) == 171
    model = GPT(modern)
    assert model.position_embedding is None and model.num_parameters() == parameter_formula(modern)["total"]
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in model.modules())
    assert sum(isinstance(m, RMSNorm) for m in model.modules()) == 2 * modern.n_layers + 1
    assert parameter_gap(replace(modern, d_ff=None, activation="gelu"), modern) < 0.01


def test_time_norm_measures_and_refuses_bad_input():
    seconds = time_norm("rmsnorm", (4, 8, 16), repeats=2, rounds=2)
    assert 0 < seconds < 1 and 0 < time_norm(torch.nn.RMSNorm(16), (4, 8, 16), repeats=2, rounds=2) < 1
    with pytest.raises(ValueError, match="unknown norm"):
        time_norm("batchnorm")
    with pytest.raises(ValueError, match="at least 1"):
        time_norm("layernorm", repeats=0)
