"""llmscratch.kv_cache: generation with a KV cache writes the ids that generation without one writes.

Every attention variant (multi-head, grouped-query, multi-query) under every position scheme, on
tiny random models: feeding a sequence in pieces gives the logits of feeding it whole, and
`generate(..., use_cache=True)` returns the same ids as the cache-free loop, greedy or seeded,
batched, with stopping and penalties, and past the model's context length.
"""

import itertools

import pytest
import torch

from llmscratch import GPT, GPTConfig, MLPConfig, MLPLanguageModel, generate
from llmscratch.kv_cache import KVCache, generation_window, kv_cache_bytes, receptive_field
from llmscratch.positional import POSITION_SCHEMES
from llmscratch.sampling import generate_batch, next_token_probs

CONTEXT = 16
HEADS = {"mha": None, "gqa": 2, "mqa": 1}  # n_kv_heads for 4 query heads
VARIANTS = [dict(position=p, n_kv_heads=kv) for p, kv in itertools.product(POSITION_SCHEMES, HEADS.values())]
IDS = [f"{v['position']}-{name}" for v, name in zip(VARIANTS, itertools.cycle(HEADS))]
# The rest of the block does not touch positions, but the cache must not care how it is built either.
OTHER_BLOCKS = [dict(norm_placement="post", activation="relu"), dict(norm="rmsnorm", activation="swiglu", bias=False),
                dict(n_layers=0), dict(d_ff=0, n_layers=3)]


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(seed: int = 0, **fields) -> GPT:
    """A random 2-layer GPT of 4 heads on 40 tokens, context 16; big enough weights to have opinions."""
    torch.manual_seed(seed)
    sizes = dict(vocab_size=40, context_length=CONTEXT, d_model=32, n_layers=2, n_heads=4)
    model = GPT(GPTConfig(**(sizes | fields))).eval()
    with torch.no_grad():  # GPT-2's 0.02 init gives near-uniform logits; spread them so ids are not near-ties
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(10.0)
    return model


def prompts(batch: int = 3, length: int = 5, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 40, (batch, length), generator=torch.Generator().manual_seed(seed))


OTHER_IDS = ["post-relu", "rms-swiglu", "bigram", "attn-only"]


@pytest.mark.parametrize("fields", VARIANTS + OTHER_BLOCKS, ids=IDS + OTHER_IDS)
def test_pieces_give_the_logits_of_the_whole(fields):
    """Prefill 5 tokens, then 4, then 1 at a time: the logits of one pass over all 12, positions included."""
    model, idx = tiny(**fields), prompts(2, 12)
    whole, _ = model(idx)  # (2, 12, V)
    cache = KVCache.for_model(model)
    first, _ = model(idx[:, :5], cache=cache)
    # The prefill is the cache-free pass over the same 5 ids, to the bit.
    assert torch.equal(first, model(idx[:, :5])[0])
    pieces = [first, model(idx[:, 5:9], cache=cache)[0]]
    pieces += [model(idx[:, i:i + 1], cache=cache)[0] for i in range(9, 12)]  # (2, 1, V) each
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, atol=1e-5, rtol=1e-5)
    assert cache.length == 12
    for keys, values in zip(cache.keys, cache.values):
        assert keys.shape == values.shape == (2, model.config.kv_heads, 12, model.config.head_dim)


@pytest.mark.parametrize("fields", VARIANTS, ids=IDS)
def test_greedy_generation_with_a_cache_writes_the_same_ids(fields):
    """Batch of 3, and 30 new tokens from a 5-token prompt: past the context of 16."""
    model, idx = tiny(**fields), prompts()
    without = generate(model, idx, 30, temperature=0)
    assert generate(model, idx, 30, temperature=0, use_cache=True) == without
    assert all(len(row) == 30 for row in without)


@pytest.mark.parametrize("fields", VARIANTS, ids=IDS)
def test_seeded_sampling_with_a_cache_writes_the_same_ids(fields):
    """The same generator seed both ways: the cache changes the logits only by rounding."""
    model, idx = tiny(**fields), prompts()
    options = dict(temperature=0.8, top_k=20, top_p=0.95)
    without = generate(model, idx, 30, generator=torch.Generator().manual_seed(7), **options)
    cached = generate(model, idx, 30, generator=torch.Generator().manual_seed(7), use_cache=True, **options)
    assert cached == without


@pytest.mark.parametrize("fields", OTHER_BLOCKS, ids=OTHER_IDS)
def test_other_blocks_generate_the_same_ids(fields):
    model, idx = tiny(**fields), prompts()
    assert generate(model, idx, 24, temperature=0, use_cache=True) == generate(model, idx, 24, temperature=0)


@pytest.mark.parametrize("fields", [VARIANTS[0], dict(position="rope", n_kv_heads=2)], ids=["learned-mha", "rope-gqa"])
def test_stopping_and_penalties_with_a_cache(fields):
    """A stop id that some rows reach and others do not, a repetition penalty and n-gram blocking."""
    model, idx = tiny(**fields), prompts(4)
    free = generate(model, idx, 40, temperature=0)
    stop_id = free[0][3]  # row 0 stops after three tokens; the others whenever they meet it
    options = dict(stop_id=stop_id, repetition_penalty=1.3, no_repeat_ngram_size=2, temperature=1.0)
    without = generate(model, idx, 40, generator=torch.Generator().manual_seed(3), **options)
    cached = generate(model, idx, 40, generator=torch.Generator().manual_seed(3), use_cache=True, **options)
    assert cached == without
    assert stop_id not in sum(cached, [])
    greedy = dict(stop_id=stop_id, repetition_penalty=1.3, no_repeat_ngram_size=3, temperature=0)
    assert generate(model, idx, 40, use_cache=True, **greedy) == generate(model, idx, 40, **greedy)


def test_the_cache_feeds_one_token_a_step_until_the_window_is_full():
    """Prompt 5, context 16: the model reads 5 ids, then 1 per step while the row fits the window;
    from the step whose row exceeds 16 ids it reads the cropped window of 16, as without a cache."""
    model, idx = tiny(position="rope"), prompts(2, 5)
    read = []
    model.register_forward_pre_hook(lambda module, args: read.append(args[0].shape[1]))
    generate(model, idx, 15, temperature=0, use_cache=True)
    assert read == [5] + [1] * 11 + [CONTEXT] * 3  # rows of 5 .. 16 ids fit; rows of 17, 18, 19 are cropped


def test_a_prompt_longer_than_the_context():
    model, idx = tiny(position="learned", n_kv_heads=2), prompts(2, CONTEXT + 7)
    assert generate(model, idx, 6, temperature=0, use_cache=True) == generate(model, idx, 6, temperature=0)


def test_prompts_of_different_lengths():
    """`generate_batch` passes use_cache on to one `generate` per prompt length."""
    model, rows = tiny(position="sinusoidal", n_kv_heads=1), prompts(4, 9).tolist()
    batch = [rows[0][:2], rows[1], rows[2][:2], rows[3][:6]]
    options = dict(temperature=1.0, top_p=0.9)
    without = generate_batch(model, batch, 12, generator=torch.Generator().manual_seed(5), **options)
    assert generate_batch(model, batch, 12, generator=torch.Generator().manual_seed(5), use_cache=True,
                          **options) == without


def test_no_new_tokens_and_one_row():
    model, idx = tiny(position="alibi"), prompts(1, 3)
    assert generate(model, idx, 0, use_cache=True) == [[]]
    assert generate(model, idx, 9, temperature=0, use_cache=True) == generate(model, idx, 9, temperature=0)


def test_the_cache_holds_what_the_formula_says():
    model = tiny(n_kv_heads=2)
    cache = KVCache.for_model(model)
    assert cache.nbytes == 0
    model(prompts(3, 7), cache=cache)
    assert cache.nbytes == kv_cache_bytes(model.config, batch_size=3, length=7)


def test_bad_caches_raise():
    model, idx = tiny(), prompts(2, 4)
    with pytest.raises(ValueError, match="targets"):
        model(idx, idx, cache=KVCache.for_model(model))
    with pytest.raises(ValueError, match="another shape"):
        model(idx, cache=KVCache.for_model(tiny(n_kv_heads=1)))
    with pytest.raises(TypeError, match="KVCache"):
        model(idx, cache={"keys": []})
    cache = KVCache.for_model(model)
    model(idx, cache=cache)
    with pytest.raises(ValueError, match="holds 2 rows"):
        model(prompts(3, 1), cache=cache)
    with pytest.raises(ValueError, match="learned position table"):
        model(prompts(2, CONTEXT - 3), cache=cache)  # 4 + 13 > 16
    with pytest.raises(TypeError, match="needs a GPT"):
        generate(MLPLanguageModel(MLPConfig(vocab_size=40, context_length=3)), prompts(1, 3), 2, use_cache=True)
    with pytest.raises(TypeError, match="GPTConfig"):
        kv_cache_bytes({"n_layers": 2}, 1, 4)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        kv_cache_bytes(model.config, 0, 4)
    with pytest.raises(TypeError, match="length must be an integer"):
        kv_cache_bytes(model.config, 1, 4.0)


def test_attention_weights_with_a_cache_cover_the_stored_keys():
    """One new query at position 5 of a 6-token sequence: its weights over 6 keys are the last row of the whole."""
    model, idx = tiny(position="alibi", n_kv_heads=2), prompts(1, 6)
    layer = model.blocks[0].attention
    x = model.embed(idx)  # (1, 6, d)
    _, whole = layer(x, return_weights=True)  # (1, H, 6, 6)
    cache = KVCache(model.config)
    layer(x[:, :5], cache=cache)
    cache.length = 5  # GPT.forward advances it; here the layer is used alone
    _, last = layer(x[:, 5:], return_weights=True, cache=cache)  # (1, H, 1, 6)
    torch.testing.assert_close(last, whole[:, :, 5:], atol=1e-6, rtol=1e-5)


# Sliding-window attention and the rolling cache.
WINDOW = 5
STREAMING = ["rope", "alibi", "none"]  # relative schemes: the cache rolls on past the context
WINDOWED = [dict(position=p, n_kv_heads=kv, attention_window=WINDOW) for p in POSITION_SCHEMES for kv in (None, 1)]
WINDOWED_IDS = [f"{v['position']}-{'mha' if v['n_kv_heads'] is None else 'mqa'}" for v in WINDOWED]


@pytest.mark.parametrize("fields", WINDOWED, ids=WINDOWED_IDS)
def test_a_rolling_cache_gives_the_logits_of_the_whole(fields):
    """Prefill 7 tokens (past the window of 5), then 3, then 1 at a time up to 14: the logits of one
    windowed pass over all 14, while every layer holds at most 5 positions."""
    model, idx = tiny(**fields), prompts(2, 14)
    whole, _ = model(idx)  # (2, 14, V)
    cache = KVCache.for_model(model)
    pieces = [model(idx[:, :7], cache=cache)[0]]
    assert cache.held == WINDOW and cache.length == 7
    pieces.append(model(idx[:, 7:10], cache=cache)[0])
    for i in range(10, 14):
        pieces.append(model(idx[:, i:i + 1], cache=cache)[0])
        assert cache.held == WINDOW
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, atol=1e-5, rtol=1e-5)
    assert cache.nbytes == kv_cache_bytes(model.config, batch_size=2, length=14)
    assert cache.nbytes == kv_cache_bytes(model.config, batch_size=2, length=WINDOW)  # stopped growing


@pytest.mark.parametrize("position", list(POSITION_SCHEMES))
def test_a_window_hides_tokens_beyond_the_receptive_field(position):
    """One layer sees W tokens back, two layers 2(W - 1) + 1: changing a token further back changes
    nothing at the last position; changing the oldest token inside the reach does change it."""
    for n_layers in (1, 2):
        model, idx = tiny(position=position, n_layers=n_layers, attention_window=4), prompts(1, 12)
        reach = receptive_field(model.config)
        assert reach == n_layers * 3 + 1
        last = model(idx)[0][0, -1]
        far, near = idx.clone(), idx.clone()
        far[0, : 12 - reach] = (far[0, : 12 - reach] + 1) % 40  # every token out of reach changed
        near[0, 12 - reach] = (near[0, 12 - reach] + 1) % 40  # the oldest token in reach changed
        torch.testing.assert_close(model(far)[0][0, -1], last, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(model(near)[0][0, -1], last, atol=1e-3)
        future = idx.clone()
        future[0, -1] = (future[0, -1] + 1) % 40
        torch.testing.assert_close(model(future)[0][0, :-1], model(idx)[0][0, :-1])  # still causal


def recompute(model: GPT, idx: torch.Tensor, steps: int, generator: torch.Generator | None, **options) -> list:
    """The reference: every step runs the whole sequence so far, uncropped, and samples as `generate` does."""
    written = idx
    for _ in range(steps):
        probs = next_token_probs(model(written)[0][:, -1], **options)  # (B, V)
        written = torch.cat([written, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return written[:, idx.shape[1]:].tolist()


@pytest.mark.parametrize("position", STREAMING)
def test_rolling_cache_generation_equals_full_recomputation(position):
    """Greedy and seeded sampling, 40 new tokens from a 3-token prompt: within the window of 5, past
    it, and past the context of 16, with no refill. The cache-free loop (fed the receptive field)
    writes the same ids too."""
    model, idx = tiny(position=position, n_kv_heads=2, attention_window=WINDOW), prompts(2, 3)
    for options in (dict(temperature=0), dict(temperature=0.9, top_k=20)):
        ref = recompute(model, idx, 40, torch.Generator().manual_seed(11), **options)
        cached = generate(model, idx, 40, generator=torch.Generator().manual_seed(11), use_cache=True, **options)
        free = generate(model, idx, 40, generator=torch.Generator().manual_seed(11), **options)
        assert cached == ref == free


def test_a_streaming_cache_is_never_refilled():
    """Prompt 5, 30 new tokens, window 5, context 16: the model reads 5 ids, then 1 per step, forever."""
    model, idx = tiny(position="rope", attention_window=WINDOW), prompts(2, 5)
    read = []
    model.register_forward_pre_hook(lambda module, args: read.append(args[0].shape[1]))
    generate(model, idx, 30, temperature=0, use_cache=True)
    assert read == [5] + [1] * 29
    assert KVCache.for_model(model).streaming and generation_window(model) == 2 * (WINDOW - 1) + 1


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
def test_absolute_positions_with_a_window_refill_past_the_context(position):
    """A table of absolute positions cannot roll on: past context_length the cache is refilled from
    the cropped window, as without a window, and the ids are those of the cache-free loop."""
    model, idx = tiny(position=position, attention_window=WINDOW), prompts(2, 5)
    assert not KVCache.for_model(model).streaming and generation_window(model) == CONTEXT
    assert generate(model, idx, 25, temperature=0, use_cache=True) == generate(model, idx, 25, temperature=0)
