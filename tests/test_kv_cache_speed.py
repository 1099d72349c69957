"""llmscratch.scripts.kv_cache_speed: the timing helpers time the right steps and write the same ids both ways."""

import time

import pytest
import torch

from llmscratch import GPT, GPTConfig
from llmscratch.scripts.kv_cache_speed import speed_table, step_times, tokens_per_second

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def small():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=30, context_length=12, d_model=16, n_layers=1, n_heads=2, position="rope")).eval()


def test_tokens_per_second_returns_the_same_ids_with_and_without_the_cache(small):
    prompt = torch.tensor([[1, 2, 3]])
    rate, ids = tokens_per_second(small, prompt, 6, use_cache=False)
    cached_rate, cached_ids = tokens_per_second(small, prompt, 6, use_cache=True, repeats=2, clock=time.perf_counter)
    assert ids == cached_ids and len(ids[0]) == 6
    assert rate > 0 and cached_rate > 0


def test_step_times_stop_at_the_window(small):
    prompt = torch.tensor([[1, 2, 3]])  # 3 ids: steps feed 3, 4, ..., 12 ids, so 10 fit the window of 12
    assert len(step_times(small, prompt, 50, use_cache=False)) == 10
    assert len(step_times(small, prompt, 4, use_cache=True)) == 4
    assert all(t >= 0 for t in step_times(small, prompt, 10, use_cache=True))


def test_speed_table_marks_lengths_past_the_window(small):
    rows = speed_table(small, torch.tensor([[1, 2, 3]]), [10, 11], repeats=1)
    assert [r["past_window"] for r in rows] == [False, True]  # 3 + 10 - 1 = 12 ids fit; 13 do not
    assert all(r["same_ids"] for r in rows)
