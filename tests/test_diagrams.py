"""The diagrams: committed files equal what the code draws now, each is an accessible, self-contained
SVG readable on a light or a dark page, and every package name written on a picture still exists in
the package (so a rename breaks this test instead of silently leaving a wrong label).
"""

from __future__ import annotations

import inspect
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import llmscratch.attention as attention_module
import llmscratch.blocks as blocks_module
import llmscratch.bpe as bpe
import llmscratch.gqa as gqa_module
import llmscratch.kv_cache as kv_cache_module
import llmscratch.lora as lora_module
import llmscratch.model as model_module
import llmscratch.moe as moe_module
import llmscratch.paging as paging_module
import llmscratch.positional as positional
import llmscratch.quantization as quantization_module
from llmscratch.attention import CausalSelfAttention, attention_weights
from llmscratch.blocks import Block
from llmscratch.bpe import BPETokenizer, count_pairs
from llmscratch.config import GPTConfig
from llmscratch.diagrams import DIAGRAMS, canvas, svg, write_all
from llmscratch.diagrams.__main__ import main
from llmscratch.diagrams.heads import K_ROWS, Q_ROW, QUERY_AT
from llmscratch.diagrams.merges import TEXT, merge_step
from llmscratch.diagrams.paging import paged_example
from llmscratch.diagrams.svg import CARD, Canvas
from llmscratch.model import GPT, Trace

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "book" / "diagrams"
NS = "{http://www.w3.org/2000/svg}"
NAMES = sorted(DIAGRAMS)


def texts(name: str) -> str:
    """All the text written on diagram `name`, one <text> element per line (tspans joined)."""
    root = ET.fromstring(svg(name))
    return "\n".join("".join(el.itertext()) for el in root.iter(f"{NS}text"))


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""
    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_six_diagrams_of_the_issue_exist_and_belong_to_real_chapters():
    assert set(NAMES) == {"attention-weighted-average", "multi-head", "rope-rotation", "transformer-block",
                          "residual-stream", "bpe-merge", "sliding-window", "paged-kv-cache",
                          "moe-routing", "kv-cache", "quantization-grids", "norm-steps",
                          "gqa-heads", "objectives", "lora-adapter"}
    for d in DIAGRAMS.values():
        assert (ROOT / d.chapter).is_file(), d.chapter
        assert d.title and 80 < len(d.alt) < 600  # one to three sentences


@pytest.mark.parametrize("name", NAMES)
def test_the_committed_file_is_what_the_code_draws(name):
    path = COMMITTED / f"{name}.svg"
    assert path.read_text(encoding="utf-8") == svg(name), \
        f"{path} is stale: run `python -m llmscratch.diagrams book/diagrams` and commit the result"


def test_no_stray_files_in_the_diagram_folder():
    assert {p.stem for p in COMMITTED.glob("*.svg")} == set(NAMES)


def test_the_command_line_writes_every_diagram(tmp_path, capsys):
    main([str(tmp_path / "out")])
    assert sorted(p.stem for p in (tmp_path / "out").glob("*.svg")) == NAMES
    assert "book/part2/gpt.md" in capsys.readouterr().out
    assert [p.name for p in write_all(tmp_path)] == [f"{n}.svg" for n in DIAGRAMS]


@pytest.mark.parametrize("name", NAMES)
def test_each_diagram_is_accessible_and_self_contained(name):
    source = svg(name)
    root = ET.fromstring(source)  # well-formed XML
    assert root.tag == f"{NS}svg" and root.get("role") == "img"
    x, y, width, height = (float(v) for v in root.get("viewBox").split())
    assert (x, y) == (0, 0) and 700 <= width <= 900 and height > 200
    title, desc = root.find(f"{NS}title"), root.find(f"{NS}desc")
    assert title.text == DIAGRAMS[name].title and desc.text == DIAGRAMS[name].alt
    assert root.get("aria-labelledby").split() == [title.get("id"), desc.get("id")]
    # Nothing fetched: no links, no external images, fonts or stylesheets.
    assert 'href="http' not in source and "href=" not in source and "url(" not in source
    assert "@import" not in source and "<image" not in source and "<script" not in source


@pytest.mark.parametrize("name", NAMES)
def test_each_diagram_is_readable_in_dark_mode_and_small_print(name):
    """An opaque card under everything, text dark enough on it, no tiny text, no overlapping labels."""
    root = ET.fromstring(svg(name))
    width, height = (float(v) for v in root.get("viewBox").split()[2:])
    card = root.find(f"{NS}rect")
    assert card.get("fill") == CARD
    assert float(card.get("width")) >= width - 2 and float(card.get("height")) >= height - 2
    assert "opacity" not in svg(name)  # nothing lets the page show through
    for el in root.iter(f"{NS}text"):
        assert contrast(el.get("fill"), CARD) >= 4.5, (el.get("fill"), "".join(el.itertext()))
    sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)"', svg(name))]
    assert sizes and min(sizes) >= 13
    assert canvas(name).overlaps() == []


def test_the_overlap_check_can_fail():
    c = Canvas(300, 100, "t", "t", "t")
    c.text(20, 50, "a label")
    c.text(30, 52, "another")
    c.text(290, 90, "off the card")
    assert ("a label", "another") in c.overlaps() and ("off the card", "<edge of the card>") in c.overlaps()
    with pytest.raises(ValueError, match="too small"):
        c.text(0, 0, "tiny", size=11)


# Labels drawn on each picture, and the package object that must still have that name.
CONFIG = GPTConfig()
ATTENTION_LAYER = CausalSelfAttention(CONFIG)
BLOCK = Block(CONFIG)
MODEL = GPT(CONFIG)
MOE_BLOCK = Block(GPTConfig(n_experts=4))
NAMED = {
    "attention-weighted-average": [(attention_module, "causal_mask"), (attention_module, "CausalSelfAttention"),
                                   (CONFIG, "head_dim")],
    "gqa-heads": [(gqa_module, "pool_kv_heads"), (CONFIG, "n_heads"), (CONFIG, "n_kv_heads")],
    "multi-head": [(ATTENTION_LAYER, "qkv"), (ATTENTION_LAYER, "proj"), (attention_module, "split_heads"),
                   (attention_module, "merge_heads"), (CONFIG, "d_model"), (CONFIG, "n_heads"),
                   (CONFIG, "head_dim"), (CONFIG, "n_kv_heads")],
    "rope-rotation": [(positional, "apply_rope"), (positional, "rope_angles"), (CONFIG, "head_dim"),
                      (CONFIG, "rope_base"), (CONFIG, "context_length")],
    "transformer-block": [(BLOCK, "norm_1"), (BLOCK, "norm_2"), (BLOCK, "attention"), (BLOCK, "feed_forward"),
                          (blocks_module, "FeedForward"), (blocks_module, "CausalSelfAttention"),
                          (CONFIG, "norm_placement")],
    "residual-stream": [(MODEL, "token_embedding"), (MODEL, "position_embedding"), (MODEL, "blocks"),
                        (MODEL, "final_norm"), (MODEL, "lm_head"), (CONFIG, "tie_weights"), (CONFIG, "n_layers"),
                        (CONFIG, "vocab_size"), (CONFIG, "context_length"), (Trace, "hidden"), (MODEL, "trace")],
    "norm-steps": [(blocks_module, "make_norm"), (blocks_module, "RMSNorm"), (nn, "LayerNorm")],
    "bpe-merge": [(bpe, "count_pairs"), (bpe, "merge"), (bpe, "train_naive"), (bpe, "train_fast"),
                  (BPETokenizer([]), "merges"), (BPETokenizer([]), "vocab"), (CONFIG, "vocab_size")],
    "sliding-window": [(attention_module, "sliding_window_mask"), (kv_cache_module, "KVCache"),
                       (kv_cache_module.KVCache, "held"), (kv_cache_module, "receptive_field"),
                       (CONFIG, "attention_window"), (CONFIG, "n_layers")],
    "paged-kv-cache": [(paging_module, "PagedAllocator"), (paged_example(), "table"), (paged_example(), "slot"),
                       (paged_example(), "block_size")],
    "moe-routing": [(MOE_BLOCK.feed_forward, "router"), (MOE_BLOCK.feed_forward, "experts"), (CONFIG, "n_experts"),
                    (CONFIG, "experts_per_token"), (CONFIG, "d_model")],
    "kv-cache": [(kv_cache_module, "KVCache"), (kv_cache_module.KVCache, "append"), (kv_cache_module, "kv_cache_bytes"),
                 (kv_cache_module.KVCache(CONFIG), "length"), (CONFIG, "n_layers"), (CONFIG, "n_kv_heads"),
                 (CONFIG, "head_dim")],
    "objectives": [(attention_module, "prefix_lm_mask")],
    "lora-adapter": [(lora_module, "LoRALinear"), (MODEL.blocks[0].attention, "proj"),
                     (MODEL.blocks[0].feed_forward, "up"), (MODEL.blocks[0].feed_forward, "down")],
    "quantization-grids": [(quantization_module.QuantScheme(), "qmax"), (quantization_module.QuantScheme(), "bits"),
                           (quantization_module.QuantScheme(), "group_size")],
}
# Code and shapes written on each picture, and the package source they are quoted from.
QUOTED = {
    "attention-weighted-average": (attention_module, ["(B, H, T, hs)", "(B, H, T, T)", "softmax", "dim=-1"]),
    "multi-head": (attention_module, ["(B, T, H, hs) -> (B, H, T, hs)", "(B, T, d_model)", "(B, T, H*hs)",
                                      "(B, H, T, hs)", "(B, H, T, T)"]),
    "rope-rotation": (positional, ["(T, hs/2)", "2i, 2i+1", "(a cos - b sin, a sin + b cos)"]),
    "transformer-block": (blocks_module, ["x = x + attention(norm_1(x))", "x = x + feed_forward(norm_2(x))",
                                          "x = norm_1(x + attention(x))", "x = norm_2(x + feed_forward(x))"]),
    "residual-stream": (model_module, ["(B, T, vocab_size)", "(B, T, d_model)", "lm_head.weight",
                                       "token_embedding.weight"]),
    "bpe-merge": (bpe.train, ["256 + r", "new_id"]),
    "sliding-window": (attention_module, ["i - W < j <= i"]),
    "paged-kv-cache": (paging_module, ["free list", "block_size - 1", "block_size + offset"]),
    "moe-routing": (moe_module, ["probs.topk(k, dim=-1)", "top / top.sum(dim=-1, keepdim=True)"]),
    "kv-cache": (kv_cache_module, ["2 · n_layers · batch · n_kv_heads · length · head_dim"]),
    "quantization-grids": (quantization_module, ["s = max|w| / qmax", "q = round(w / s)", "z = round(-min / s)",
                                                 "s = (max - min) / (2^bits - 1)", "ŵ = s · (q - z)"]),
    "norm-steps": (blocks_module, ["x * inverse_rms"]),
    "objectives": (attention_module, ["j <= i", "j < prefix_length"]),
    "lora-adapter": (lora_module, ["(alpha / rank) B A", "W <- W + (alpha / rank) B A"]),
    "gqa-heads": (gqa_module, ["i // (n_heads / n_kv_heads)"]),
}


@pytest.mark.parametrize("name", NAMES)
def test_every_package_name_on_a_picture_still_exists(name):
    drawn = texts(name)
    for owner, attribute in NAMED[name]:
        assert hasattr(owner, attribute), f"{name} labels {attribute!r}, which {owner!r} no longer has"
        assert attribute in drawn, f"{name} should show {attribute!r}"
    module, quotes = QUOTED[name]
    source = inspect.getsource(module)
    squeezed = re.sub(r"\s+", "", drawn)  # a quote may be broken over two lines of the picture
    for quote in quotes:
        assert quote in source, f"{name} quotes {quote!r}, no longer in {module.__name__}"
        assert re.sub(r"\s+", "", quote.replace("->", "→").replace("-", "−")) in squeezed.replace("-", "−"), \
            f"{name} should show {quote!r}"


def test_the_config_choices_drawn_are_real():
    assert GPTConfig(norm_placement="post").norm_placement == "post" and CONFIG.norm_placement == "pre"
    assert MODEL.lm_head.weight is MODEL.token_embedding.weight  # the tie the picture draws
    assert len(MODEL.blocks) == CONFIG.n_layers and CONFIG.position == "learned"


def test_the_norm_numbers_drawn_come_from_the_package():
    from llmscratch.diagrams.norms import VECTOR, norm_steps

    drawn = texts("norm-steps").replace("−", "-")
    steps = norm_steps()
    x = torch.tensor(VECTOR)
    torch.testing.assert_close(torch.tensor(steps["layernorm"][-1][1]), nn.functional.layer_norm(x, (4,)))
    torch.testing.assert_close(torch.tensor(steps["rmsnorm"][-1][1]), x / x.pow(2).mean().sqrt())
    assert abs(sum(steps["layernorm"][-1][1])) < 1e-6 and min(steps["rmsnorm"][-1][1]) > 0
    for _, values in steps["layernorm"] + steps["rmsnorm"]:
        for v in values:
            assert f"{v:.2f}" in drawn


def test_the_merge_step_drawn_is_the_packages_first_merge():
    ids, ranked, pair, after = merge_step()
    assert ids == list(TEXT.encode()) and ranked[0] == (pair, count_pairs({tuple(ids): 1})[pair])
    assert BPETokenizer.train(TEXT, vocab_size=257, pattern=None).merges == [pair]
    assert BPETokenizer([pair]).vocab[256] == b"at" and after.count(256) == ranked[0][1] == 3
    assert len(after) == len(ids) - 3


def test_the_attention_numbers_drawn_come_from_the_package():
    drawn = texts("attention-weighted-average")
    weights = attention_weights(torch.tensor([Q_ROW] * 4), torch.tensor(K_ROWS), is_causal=True)[QUERY_AT]
    assert float(weights.sum()) == pytest.approx(1.0) and float(weights[QUERY_AT + 1]) == 0.0
    for w in weights.tolist():
        assert f"{w:.2f}" in drawn
    assert "−∞" in drawn


def test_the_sliding_window_drawn_is_the_packages_mask():
    from llmscratch.diagrams.windows import LENGTH, WINDOW
    band = attention_module.sliding_window_mask(LENGTH, WINDOW)
    root = ET.fromstring(svg("sliding-window"))
    blue = sum(1 for el in root.iter(f"{NS}rect") if el.get("fill") == "#0072b2")
    assert blue == int(band.sum()) + 1  # every cell the mask keeps, and the legend's swatch
    assert f"sliding_window_mask({LENGTH}, {WINDOW})" in texts("sliding-window")


def test_the_objective_masks_drawn_are_the_packages():
    from llmscratch.diagrams.objectives import PANELS, WORDS
    positions = torch.arange(len(WORDS))
    mask = attention_module.prefix_lm_mask
    seen = sum(int(mask(positions, positions, torch.tensor([p])).sum()) for _, p, _ in PANELS)
    root = ET.fromstring(svg("objectives"))
    coloured = sum(1 for el in root.iter(f"{NS}rect") if el.get("fill") in ("#0072b2", "#009e73"))
    assert coloured == seen + 2  # every cell a mask keeps, and the two legend swatches
    assert texts("objectives").count("MASK") == 2 and "prefix_length" in texts("objectives")


def test_the_paged_cache_drawn_is_the_allocators():
    pages, drawn = paged_example(), texts("paged-kv-cache")
    for seq in ("A", "B"):
        assert f'table("{seq}") = {pages.table(seq)}' in drawn
        assert f"sequence {seq}: {pages.length(seq)} tokens" in drawn
    assert f"{pages.wasted_slots} empty slots" in drawn and pages.num_free == drawn.count("free list")


def test_the_routing_drawn_is_the_packages():
    from llmscratch.diagrams.experts import SCORES, K

    drawn = texts("moe-routing")
    r = moe_module.route(torch.tensor([SCORES]), K)
    for p in r.probs[0].tolist():
        assert f"p = {p:.2f}" in drawn
    for g in r.gates[0].tolist():
        assert f"g = {g:.2f}" in drawn
    assert float(r.gates.sum()) == pytest.approx(1.0) and drawn.count("idle") == len(SCORES) - K


def test_the_grids_drawn_are_the_packages():
    from llmscratch.diagrams.grids import ABSMAX, OUTLIER_ROW, ROW, ZERO_POINT, grid_levels

    drawn = texts("quantization-grids")
    for scheme in (ABSMAX, ZERO_POINT):
        levels, rounded, scale, zero = grid_levels(scheme)
        assert len(levels) == scheme.qmax - scheme.qmin + 1 and f"s = {scale:.3f}" in drawn
        assert all(min(abs(r - v) for v in levels) < 1e-6 for r in rounded)  # every value is on the grid
        assert max(abs(a - b) for a, b in zip(ROW, rounded)) <= scale / 2 + 1e-6
    assert len(OUTLIER_ROW) == 64 and max(OUTLIER_ROW) == 0.9


def test_the_lora_counts_drawn_are_the_packages():
    from llmscratch.diagrams.adapters import RANK, course_counts
    from llmscratch.experiments import RECIPES

    drawn = texts("lora-adapter")
    d = RECIPES["course"].model.d_model
    layer = lora_module.LoRALinear(nn.Linear(d, d), RANK)
    adapter = layer.lora_a.numel() + layer.lora_b.numel()
    assert f"({d} + {d}) · {RANK} = {adapter:,}" in drawn and f"{d * d:,} numbers" in drawn
    assert f"{adapter:,} numbers against W's {d * d:,}" in DIAGRAMS["lora-adapter"].alt
    trainable, total = course_counts()
    assert f"{trainable:,} trainable of {total:,}" in drawn
