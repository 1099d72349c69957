"""with_window keeps the weights and changes only what attention sees; peak_memory measures a
known allocation; length_losses scores each length and window, and refuses what the model refuses."""

import json
import math
import sys

import pytest
import torch

from llmscratch import GPT, GPTConfig, generate
from llmscratch.long_context import (
    length_losses,
    length_report,
    peak_memory,
    sequence_nlls,
    tensor_peak_memory,
    time_call,
    with_window,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**fields) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**(dict(vocab_size=30, context_length=16, d_model=32, n_layers=2, n_heads=4) | fields)))


def test_with_window_copies_the_weights_and_sets_only_the_window():
    model = tiny(position="rope")
    windowed = with_window(model, 4)
    assert windowed.config.attention_window == 4 and model.config.attention_window is None
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), windowed.state_dict().values()))
    idx = torch.randint(0, 30, (2, 12), generator=torch.Generator().manual_seed(1))
    full, _ = model.eval()(idx)
    torch.testing.assert_close(with_window(model, 12)(idx)[0], full)  # a window as long as the input: no change
    torch.testing.assert_close(windowed(idx)[0][:, :4], full[:, :4])  # the first 4 positions see all they had
    assert not torch.allclose(windowed(idx)[0][:, 4:], full[:, 4:], atol=1e-4)
    # The windowed copy generates past its context of 16 with a streaming cache.
    assert len(generate(windowed, idx[:, :3], 40, temperature=0, use_cache=True)[0]) == 40
    with pytest.raises(TypeError, match="GPT"):
        with_window(torch.nn.Linear(2, 2), 4)
    with pytest.raises(ValueError, match="attention_window"):
        with_window(model, 0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")
def test_peak_memory_sees_a_temporary_that_is_freed_before_returning():
    """A 32 MiB tensor made and dropped inside the call: the peak sees it although nothing survives."""
    def make_and_drop():
        x = torch.ones(8 * 2**20)  # 8 Mi floats = 32 MiB, touched by the fill
        return float(x[0])
    result, peak = peak_memory(make_and_drop)
    assert result == 1.0
    assert 31 * 2**20 < peak < 40 * 2**20
    _, small = peak_memory(lambda: torch.ones(16))
    assert small < 2 * 2**20


def test_tensor_peak_memory_counts_what_is_alive_at_once():
    """The portable count (macOS, Windows): two 4 MiB temporaries alive together, then freed; views are free."""
    def two_at_once():
        a = torch.ones(2**20)  # 4 MiB
        b = a * 2  # another 4 MiB while a lives
        view = b.view(2, -1).transpose(0, 1)  # a view: no new storage
        return float(view.sum())
    result, peak = tensor_peak_memory(two_at_once)
    assert result == 2.0 * 2**20
    assert 8 * 2**20 <= peak < 8 * 2**20 + 4096
    def one_after_another():
        for _ in range(3):
            x = torch.ones(2**20)
            del x
        return None
    _, peak = tensor_peak_memory(one_after_another)
    assert 4 * 2**20 <= peak < 8 * 2**20  # freed tensors are taken off again
    # Attention's plain form holds (H, T, T) score matrices; the tiled form does not.
    from llmscratch.attention import scaled_dot_product_attention
    from llmscratch.tiled_attention import tiled_attention
    q = k = v = torch.randn(1, 2, 512, 16)
    _, plain = tensor_peak_memory(lambda: scaled_dot_product_attention(q, k, v, is_causal=True))
    _, tiled = tensor_peak_memory(lambda: tiled_attention(q, k, v, is_causal=True, block_size=64))
    matrix = 2 * 512 * 512 * 4
    assert plain >= matrix and tiled < matrix / 4


def test_time_call_is_the_fastest_run():
    calls = []
    assert time_call(lambda: calls.append(1), repeats=3) >= 0 and len(calls) == 3
    with pytest.raises(ValueError, match="repeats"):
        time_call(lambda: None, repeats=0)


def test_length_losses_one_curve_per_length_and_window():
    model = tiny(position="rope")
    stream = torch.randint(0, 30, (200,), generator=torch.Generator().manual_seed(2))
    out = length_losses(model, stream, [8, 32], windows=(None, 4))
    assert set(out) == {(8, None), (32, None), (8, 4), (32, 4)}
    assert out[(32, 4)].shape == (32,)
    torch.testing.assert_close(out[(8, 4)][:4], out[(8, None)][:4])  # identical until the window bites
    with pytest.raises(ValueError, match="learned position table"):
        length_losses(tiny(position="learned"), stream, [32])


def test_sequence_nlls_rows_average_to_position_losses_and_the_report_counts_characters():
    model = tiny(position="alibi")
    stream = torch.randint(0, 30, (100,), generator=torch.Generator().manual_seed(3))
    nlls = sequence_nlls(model, stream, 16, batch_size=2)  # 100 // 17 = 5 sequences
    assert nlls.shape == (5, 16)
    from llmscratch import position_losses
    torch.testing.assert_close(nlls.mean(0), position_losses(model, stream, 16))
    torch.testing.assert_close(sequence_nlls(model, stream, 16, sequences=2), nlls[:2])
    with pytest.raises(ValueError, match="holds 5 sequences"):
        sequence_nlls(model, stream, 16, sequences=6)
    # Hand-worked report: two sequences of two targets, losses ln 2 each; token 0 spells 1 character,
    # token 1 spells 3, so 4 · ln 2 nats = 4 bits over 1 + 3 + 1 + 3 = 8 characters: 0.5 bits per character.
    losses = torch.full((2, 2), math.log(2))
    report = length_report(losses, torch.tensor([[0, 1], [0, 1]]), torch.tensor([1.0, 3.0]))
    assert report["bits_per_char"] == 0.5 and report["nats_per_token"] == round(math.log(2), 5)
    assert report["per_sequence"] == [round(math.log(2), 5)] * 2 and len(report["curve"]) == 2


class _Chars:
    """A tokenizer whose id i spells i % 3 + 1 characters."""

    def decode(self, ids):
        return "x" * (ids[0] % 3 + 1)


def test_the_script_writes_every_length_and_window(tmp_path, monkeypatch):
    from llmscratch.scripts import long_context as script

    model = tiny(position="rope", context_length=8)
    val = torch.randint(0, 30, (300,), generator=torch.Generator().manual_seed(4))
    monkeypatch.setattr(script, "load_course_model", lambda: (model, _Chars()))
    monkeypatch.setattr(script, "course_model_record", lambda: {"provenance": {"git_commit": "abc"}})
    monkeypatch.setattr(script, "shakespeare_bpe_splits", lambda: (None, {"val": val}, {"val": 600}))
    monkeypatch.setattr(script, "WINDOWS", (None, 8, 4))
    out = tmp_path / "long.json"
    assert script.main(["--lengths", "8", "32", "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    keys = [(r["length"], r["window"]) for r in result["runs"]]
    assert keys == [(8, None), (32, None), (32, 8), (8, 4), (32, 4)]  # a window >= the length is skipped
    assert result["provenance"]["command"].startswith("python -m llmscratch.scripts.long_context")
    first = result["runs"][0]
    assert first["sequences"] == 300 // 9 and len(first["curve"]) == 8
