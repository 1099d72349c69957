"""Diagrams of the course's ideas, drawn as SVG by code so that their labels are the package's names.

Plots show what a model did; these show what an idea *is*. The pictures:

- ``attention-weighted-average``: one query against every key, scaled, causally masked,
  softmaxed, and the weighted sum of the values (self-attention chapter);
- ``multi-head``: ``d_model`` split into ``n_heads`` slices of ``head_dim``, each head attending,
  the heads concatenated and mixed by ``proj`` (multi-head attention chapter);
- ``rope-rotation``: a feature pair of a query turned by ``p · ω_i``, the angle between a query
  and a key depending only on their offset, and the speed of every pair (positions chapter);
- ``transformer-block``: pre-norm and post-norm blocks side by side (transformer block chapter);
- ``residual-stream``: embeddings, the stream every block reads and adds to, the final norm and
  the tied ``lm_head`` (GPT chapter);
- ``bpe-merge``: one merge step on a short text, computed with ``count_pairs`` and ``merge``
  (byte-pair encoding chapter);
- ``sliding-window``: the band that ``sliding_window_mask`` cuts out of the causal triangle, and
  the rolling ``KVCache`` that keeps the last ``attention_window`` positions (long-context chapter);
- ``paged-kv-cache``: two sequences' block tables pointing into shared fixed-size blocks, against
  contiguous reservations, allocated by ``PagedAllocator`` (serving chapter);
- ``moe-routing``: one token through the router to its top-2 experts, the gates and the sum,
  computed with ``llmscratch.moe.route`` (mixture-of-experts chapter);
- ``kv-cache``: one generation step without a cache (every position recomputed) and with one
  (stored keys and values, one new column), and the cache's size (KV-cache chapter);
- ``quantization-grids``: one row of weights rounded to an absmax and a zero-point int4 grid,
  and a row with an outlier under per-channel and group-wise scales (quantization chapter);
- ``norm-steps``: one vector through LayerNorm (centre, then scale) and RMSNorm (scale only),
  computed with ``make_norm`` (norms and activations chapter);
- ``gqa-heads``: eight query heads reading eight, two or one key/value heads, with the cache per
  token of each (GQA chapter);
- ``lora-adapter``: a frozen weight beside its two low-rank factors, the sum and the merge, with
  the course model's trainable count from ``add_lora`` (LoRA chapter).

Every picture is a self-contained SVG: an opaque light card (an SVG inside ``<img>`` cannot follow
the book's dark-mode switch), a ``<title>`` and a ``<desc>`` that carry the alt text, system fonts,
no links. The numbers on them (attention weights, rotation speeds, pair counts) are computed by the
package's functions when the picture is drawn. Regenerate the committed files with

    python -m llmscratch.diagrams book/diagrams

and `DIAGRAMS` gives each one's title and alt text for a ``{figure}`` directive:

    >>> DIAGRAMS["multi-head"].chapter
    'book/part2/multi-head-attention.md'
    >>> svg("multi-head").startswith("<svg")
    True

Left out: anything animated or interactive (the chapters' plots are), and pictures of training.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .adapters import draw_lora
from .cache import draw_gqa, draw_kv_cache
from .experts import draw_moe_routing
from .grids import draw_grids
from .heads import draw_attention, draw_multi_head, draw_rope
from .layers import draw_block, draw_residual_stream
from .merges import draw_bpe_merge
from .norms import draw_norm_steps
from .objectives import draw_objectives
from .paging import draw_paged_cache
from .svg import Canvas
from .windows import draw_sliding_window

__all__ = ["DIAGRAMS", "Diagram", "canvas", "svg", "write_all"]


class Diagram(NamedTuple):
    """A picture: its title, its alt text (also the SVG's ``<desc>``), its chapter, and how to draw it."""

    title: str
    alt: str
    chapter: str
    draw: Callable[[str, str, str], Canvas]


DIAGRAMS: dict[str, Diagram] = {
    "attention-weighted-average": Diagram(
        "Attention as a weighted average",
        "Four tokens, the query at position 2. Its query vector q is multiplied with each token's key k and "
        "divided by the square root of head_dim; causal_mask sets the future key's score to minus infinity; "
        "softmax turns the scores into weights that sum to 1, the future key getting 0; the output is the "
        "weighted sum of the value vectors v.",
        "book/part2/self-attention.md", draw_attention),
    "multi-head": Diagram(
        "Multi-head attention: split, attend, concatenate",
        "The input x of d_model features goes through the qkv projection and is split into q, k and v, each "
        "cut into n_heads slices of head_dim features. Each head attends with its own slice; the head outputs "
        "are concatenated back to d_model features and mixed by the output projection proj.",
        "book/part2/multi-head-attention.md", draw_multi_head),
    "rope-rotation": Diagram(
        "RoPE rotates query and key pairs by position",
        "A pair of query features drawn as an arrow in the plane turns by the angle omega_i at each position. "
        "A query at m and a key at n, drawn for two position pairs with the same offset m minus n, keep the "
        "same angle between them, hence the same score. Dials show each of the head's feature pairs turning "
        "at its own speed, from many turns to almost none.",
        "book/part2/positions.md", draw_rope),
    "transformer-block": Diagram(
        "The transformer block, pre-norm and post-norm",
        "Two blocks side by side. Pre-norm: x = x + attention(norm_1(x)), then x = x + feed_forward(norm_2(x)), "
        "so the residual stream passes only through additions. Post-norm: x = norm_1(x + attention(x)), then "
        "x = norm_2(x + feed_forward(x)), so the stream passes through both norms.",
        "book/part2/transformer-block.md", draw_block),
    "residual-stream": Diagram(
        "The residual stream through the GPT",
        "Token ids go through token_embedding, position ids through position_embedding, and their sum starts "
        "the residual stream. Each block's attention and feed_forward read the stream through a norm and add "
        "their output back to it. At the end, final_norm and lm_head turn the stream into logits; lm_head "
        "shares its weight with token_embedding when tie_weights is on.",
        "book/part2/gpt.md", draw_residual_stream),
    "bpe-merge": Diagram(
        "One byte-pair merge step",
        "The text 'the cat sat on the mat' as byte ids. count_pairs counts adjacent pairs; the most frequent, "
        "'a' followed by 't' (bytes 97 and 116), occurs three times. merge replaces each occurrence by the new "
        "id 256, and the sequence gets three tokens shorter.",
        "book/part1/bpe.md", draw_bpe_merge),
    "sliding-window": Diagram(
        "Sliding-window attention and its rolling cache",
        "Left: the mask of 8 positions with a window of 3, a band of three diagonals: query i sees key j when "
        "i - W < j <= i; older keys, which the causal mask would show, are hidden. Right: a rolling KVCache at "
        "steps 5, 6 and 7 keeps only the last 3 positions, appending the new token's key and dropping the "
        "oldest, so its memory stays at W positions; through n_layers layers a token still reaches "
        "n_layers (W - 1) + 1 tokens back.",
        "book/part4/long-context.md", draw_sliding_window),
    "paged-kv-cache": Diagram(
        "A paged KV cache: block tables into shared blocks",
        "Two sequences, A with 10 tokens and B with 6, stored in blocks of block_size 4 slots. A's block table "
        "is [0, 1, 3] and B's is [2, 4], so their blocks interleave in memory and the other blocks stay on the "
        "free list; only the last block of each sequence has empty slots. Below, contiguous reservations of "
        "max_tokens 16 per sequence hold the same tokens with 16 empty slots.",
        "book/part4/serving.md", draw_paged_cache),
    "moe-routing": Diagram(
        "Top-2 routing of one token among four experts",
        "A token vector x goes through the router, whose softmax gives each of the four experts a probability. "
        "The two most probable experts run on x; the other two stay idle and cost nothing. Their outputs are "
        "multiplied by the gates, the two probabilities renormalised to sum to 1, and added to give y.",
        "book/part4/moe.md", draw_moe_routing),
    "kv-cache": Diagram(
        "The KV cache: recompute everything, or store keys and values",
        "One generation step over five tokens and three layers. Without a cache, every layer computes queries, "
        "keys and values for all five positions again, and only the last position's logits are used. With a "
        "KVCache, the first four positions' keys and values are read from the cache and only the new token is "
        "computed, its position starting at cache.length. Below, the cache's size: 2 times n_layers, batch, "
        "n_kv_heads, length and head_dim numbers.",
        "book/part4/kv-cache.md", draw_kv_cache),
    "quantization-grids": Diagram(
        "Absmax and zero-point grids, and a scale per group",
        "Sixteen mostly positive weights rounded to int4. The absmax grid is symmetric around zero, so half "
        "its levels lie below the smallest weight, unused; the zero-point grid spans the row's minimum to its "
        "maximum and rounds more finely. Below, a row of 64 small weights with one outlier: one scale per row "
        "rounds every small weight to zero, one scale per group of 32 only those of the outlier's group.",
        "book/part4/quantization.md", draw_grids),
    "norm-steps": Diagram(
        "LayerNorm and RMSNorm on one vector",
        "The vector x = (3, 1, 5, 7), mean 4, drawn as bars. LayerNorm subtracts the mean, leaving bars on both "
        "sides of zero, then divides by the standard deviation. RMSNorm skips the subtraction and only divides "
        "x by its root mean square, the square root of 21, so every feature keeps its sign.",
        "book/part4/norms-activations.md", draw_norm_steps),
    "gqa-heads": Diagram(
        "Multi-head, grouped-query and multi-query attention",
        "Eight query heads q0 to q7 in three rows. Multi-head: each reads its own key and value head, eight in "
        "all. Grouped-query with n_kv_heads = 2: heads q0 to q3 share k0, v0 and q4 to q7 share k1, v1. "
        "Multi-query: all eight share one. The cache per token shrinks in proportion to n_kv_heads.",
        "book/part4/gqa.md", draw_gqa),
    "objectives": Diagram(
        "Causal, prefix and masked language models: one mask rule, three prefix lengths",
        "Three panels over the six words To be or not to be. Causal: prefix_length 0, a lower-triangular mask, "
        "every position predicts the next word. Prefix: prefix_length 3, the first three keys seen by every "
        "query, only positions from the prefix's last onward predict the next word. Masked: the whole window "
        "seen by every query, two words replaced by the MASK token, and only those two positions predict the word "
        "that was there.",
        "book/part4/objectives.md", draw_objectives),
    "lora-adapter": Diagram(
        "A LoRA adapter beside a frozen weight",
        "The input x goes through the frozen 256 by 256 weight W of an attention output projection, and through "
        "the adapter: A, 8 by 256, random at the start, then B, 256 by 8, zero at the start, scaled by alpha over "
        "rank. The two outputs are added. The adapter has 4,096 numbers against W's 65,536. Merging adds "
        "(alpha / rank) B A into W once.",
        "book/part5/lora.md", draw_lora),
}


def canvas(name: str) -> Canvas:
    """The drawn `Canvas` of diagram `name` (its text boxes can be checked for overlaps)."""
    d = DIAGRAMS[name]
    return d.draw(name, d.title, d.alt)


def svg(name: str) -> str:
    """The SVG document of diagram `name`."""
    return canvas(name).render()


def write_all(directory: str | Path) -> list[Path]:
    """Write every diagram to ``directory/<name>.svg``; return the paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in DIAGRAMS:
        path = out / f"{name}.svg"
        path.write_text(svg(name), encoding="utf-8")
        paths.append(path)
    return paths
