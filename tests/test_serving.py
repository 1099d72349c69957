"""llmscratch.serving: a left-padded batch is continued exactly as each prompt alone.

For every position scheme (learned and sinusoidal need the per-row positions, RoPE and ALiBi
only the mask) and for multi-head and multi-query attention, with and without the KV cache,
greedy and with one seeded generator per row. Then the pieces: the mask hides pads from real
tokens, positions count from each row's first real token, and a batch without the mask is wrong.
"""

import itertools

import pytest
import torch

from llmscratch import GPT, GPTConfig, generate
from llmscratch.positional import POSITION_SCHEMES
from llmscratch.serving import generate_padded, left_pad, padded_throughput

pytestmark = pytest.mark.usefixtures("one_thread")

PROMPTS = [[1, 2, 3, 4, 5, 6, 7], [9], [3, 4, 5], [30, 31, 32, 33]]
VARIANTS = list(itertools.product(POSITION_SCHEMES, (None, 1)))


def tiny(position: str = "learned", n_kv_heads: int | None = None, seed: int = 0, **fields) -> GPT:
    """A random 2-layer GPT on 40 tokens with weights spread (x10) so that no two logits nearly tie."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=40, context_length=24, d_model=32, n_layers=2, n_heads=4,
                          n_kv_heads=n_kv_heads, position=position, **fields)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(10.0)
    return model


def alone(model: GPT, n: int, **options) -> list[list[int]]:
    return [generate(model, torch.tensor([p]), n, **options)[0] for p in PROMPTS]


def test_left_pad_puts_every_last_token_in_the_last_column():
    idx, mask = left_pad(PROMPTS, pad_id=0)
    assert idx.shape == mask.shape == (4, 7)
    assert idx[:, -1].tolist() == [p[-1] for p in PROMPTS]
    assert mask.sum(dim=1).tolist() == [len(p) for p in PROMPTS]
    assert idx[1].tolist() == [0] * 6 + [9] and not mask[1, :6].any()


@pytest.mark.parametrize("position,n_kv_heads", VARIANTS, ids=[f"{p}-{kv or 'mha'}" for p, kv in VARIANTS])
@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
def test_a_padded_batch_writes_what_each_prompt_writes_alone(position, n_kv_heads, use_cache):
    model = tiny(position, n_kv_heads)
    greedy = generate_padded(model, PROMPTS, 12, temperature=0, use_cache=use_cache)
    assert greedy == alone(model, 12, temperature=0)
    seeds = [11, 12, 13, 14]
    sampled = generate_padded(model, PROMPTS, 12, use_cache=use_cache,
                              generators=[torch.Generator().manual_seed(s) for s in seeds])
    expected = [generate(model, torch.tensor([p]), 12, generator=torch.Generator().manual_seed(s))[0]
                for p, s in zip(PROMPTS, seeds)]
    assert sampled == expected


def test_a_mixture_of_experts_without_capacity_is_padded_right_too():
    """Each token is routed on its own when no capacity limit makes tokens compete, so pads change nothing."""
    model = tiny("rope", n_experts=4, experts_per_token=2)
    assert generate_padded(model, PROMPTS, 10, temperature=0) == alone(model, 10, temperature=0)


@pytest.mark.parametrize("position", POSITION_SCHEMES)
def test_padded_logits_equal_the_logits_alone(position):
    """The real positions' logits of a padded batch are those of each row alone, to rounding."""
    model = tiny(position)
    idx, mask = left_pad(PROMPTS)
    with torch.no_grad():
        padded, _ = model(idx, padding_mask=mask)  # (B, L, V)
        for row, p in enumerate(PROMPTS):
            single, _ = model(torch.tensor([p]))  # (1, len, V)
            torch.testing.assert_close(padded[row, -len(p):], single[0], atol=1e-4, rtol=1e-4)
            assert torch.isfinite(padded[row]).all()  # pads attend to themselves: no NaN anywhere


def test_without_the_mask_padding_changes_the_answer():
    """The break-it of the chapter: the same padded tensor without its mask is read as text."""
    model = tiny("rope")
    idx, mask = left_pad(PROMPTS)
    with torch.no_grad():
        masked, _ = model(idx, padding_mask=mask)
        unmasked, _ = model(idx)
        single, _ = model(torch.tensor([PROMPTS[1]]))
    torch.testing.assert_close(masked[1, -1], single[0, -1], atol=1e-4, rtol=1e-4)
    assert (unmasked[1, -1] - single[0, -1]).abs().max() > 1.0


def test_positions_count_from_the_first_real_token():
    model = tiny("learned")
    _, mask = left_pad([[1, 2, 3], [4]])
    positions = model._padded_positions(mask, 0, torch.zeros(2, 3, dtype=torch.long))
    assert positions.tolist() == [[0, 1, 2], [0, 0, 0]]
    grown = torch.cat([mask, torch.ones(2, 1, dtype=torch.bool)], dim=1)  # one generated token each
    assert model._padded_positions(grown, 3, torch.zeros(2, 1, dtype=torch.long)).tolist() == [[3], [1]]


def test_stop_id_ends_each_row_on_its_own():
    model = tiny("learned")
    free = generate_padded(model, PROMPTS, 10, temperature=0)
    stop = free[0][3]
    stopped = generate_padded(model, PROMPTS, 10, temperature=0, stop_id=stop)
    for row, ids in zip(free, stopped):
        cut = row.index(stop) if stop in row else len(row)
        assert ids == row[:cut]


def test_bad_inputs_are_refused_with_the_field_named():
    model = tiny("learned")
    with pytest.raises(ValueError, match="context_length"):
        generate_padded(model, PROMPTS, 20)
    with pytest.raises(ValueError, match="attention_window"):
        generate_padded(tiny("rope", attention_window=4), PROMPTS, 2)
    with pytest.raises(ValueError, match="generators"):
        generate_padded(model, PROMPTS, 2, generators=[torch.Generator()])
    with pytest.raises(ValueError, match="non-empty"):
        left_pad([[1], []])
    with pytest.raises(ValueError, match="padding_mask"):
        model(torch.zeros(1, 3, dtype=torch.long), padding_mask=torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(TypeError, match="padding_mask"):
        model(torch.zeros(1, 3, dtype=torch.long), padding_mask=torch.ones(1, 3))


def test_throughput_counts_every_row():
    assert padded_throughput(tiny(), PROMPTS, 3) > 0
