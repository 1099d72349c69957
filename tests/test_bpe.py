"""llmscratch.bpe: against Hugging Face `tokenizers`, the chapter's worked example, and invariants."""

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscratch import GPT2_PATTERN, BPETokenizer, TokenizerFileError, data
from llmscratch.bpe import count_pairs, merge, pretokenize, train_fast, train_naive
from llmscratch.bpe.__main__ import main as bpe_main
from llmscratch.viz import token_spans_html

EOT = "<|endoftext|>"
PATTERNS = pytest.mark.parametrize("pattern", [GPT2_PATTERN, None], ids=["gpt2", "no-pretokenization"])
HARD_STRINGS = [
    "",
    "\x00",
    "a\x00b\x00",
    "🙂👍🏽 family: 👨‍👩‍👧",  # emoji, a skin-tone modifier, a zero-width-joiner sequence
    "e\u0301 vs é",  # combining acute accent vs precomposed
    "日本語のテキスト and English, Ελληνικά, русский, عربى",
    "  leading and trailing  \n\n\t",
    "I'll've won't 123456 $3.50!!",
    EOT,
]


def corpus_or_skip() -> str:
    """Tiny Shakespeare from the cache or the mirror, never the network (else skip)."""
    name = data.DATASETS["tinyshakespeare"].filename
    mirror = os.environ.get(data.MIRROR_ENV)
    if not (data.cache_dir() / name).exists() and not (mirror and os.path.exists(os.path.join(mirror, name))):
        pytest.skip("Tiny Shakespeare is neither cached nor in $LLMSCRATCH_DATA_MIRROR")
    return data.load_text("tinyshakespeare")


# (a) Against references ----------------------------------------------------------------------


@pytest.mark.parametrize("vocab_size", [300, 512])
def test_compression_matches_hugging_face(vocab_size):
    """Same vocabulary size, same GPT-2 regex, same training text: bytes per held-out token within 3%."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers, trainers

    text = corpus_or_skip()
    train, held_out = text[:200_000], text[200_000:250_000]
    hf = tokenizers.Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    hf.train_from_iterator([train], trainer)
    ours = BPETokenizer.train(train, vocab_size)
    assert ours.vocab_size == hf.get_vocab_size() == vocab_size
    n_bytes = len(held_out.encode("utf-8"))
    ours_bpt = n_bytes / len(ours.encode(held_out))
    hf_bpt = n_bytes / len(hf.encode(held_out).ids)
    assert hf.decode(hf.encode(held_out).ids) == held_out
    assert ours_bpt == pytest.approx(hf_bpt, rel=0.03)


word_lists = st.lists(st.text(alphabet="abc d", max_size=12), max_size=12)


@settings(max_examples=60)
@given(word_lists, st.sampled_from([GPT2_PATTERN, None]), st.integers(0, 30))
def test_fast_trainer_learns_the_naive_trainers_merges(words, pattern, n_merges):
    """Few letters, so that pairs repeat, overlap ("aaa") and tie; ties must break the same way."""
    text = " ".join(words)
    fast = BPETokenizer.train(text, 256 + n_merges, pattern=pattern)
    naive = BPETokenizer.train(text, 256 + n_merges, pattern=pattern, naive=True)
    assert fast.merges == naive.merges


@settings(max_examples=40)
@given(st.dictionaries(st.lists(st.integers(0, 3), max_size=10).map(tuple), st.integers(1, 5), max_size=8))
def test_trainers_agree_on_weighted_words(word_counts):
    assert train_fast(word_counts, 25) == train_naive(word_counts, 25)


def test_fast_equals_naive_on_shakespeare():
    text = corpus_or_skip()[:30_000]
    assert BPETokenizer.train(text, 400).merges == BPETokenizer.train(text, 400, naive=True).merges


@settings(max_examples=60)
@given(st.text(alphabet="ab \n", max_size=40))
def test_encode_equals_the_textbook_loop(text):
    """`encode` replays merges with a heap; the textbook loop merges the lowest-ranked pair, repeatedly."""
    tok = BPETokenizer.train("abab aab  ba\nbbb aaaa " * 3, 280, pattern=None)
    ids = list(text.encode("utf-8"))
    while len(ids) > 1:
        pair = min(zip(ids, ids[1:]), key=lambda p: tok.ranks.get(p, float("inf")))
        if pair not in tok.ranks:
            break
        ids = merge(ids, pair, 256 + tok.ranks[pair])
    assert tok.encode(text) == ids


# (b) The chapter's hand-worked example ----------------------------------------------------------


def test_hand_worked_example():
    """ "the cat sat on the mat" as one piece (no pre-tokenization), four merges.

    Step 1: "at" occurs three times (cat, sat, mat) and nothing else more than twice.
    Step 2: "th", "he" and "e " all occur twice; the tie goes to the smallest pair of ids, and
    "e " is (101, 32), smaller than "he" (104, 101) and "th" (116, 104).
    Step 3: "h" + "e " (104, 257) ties with "t" + "h" (116, 104) and wins; step 4 joins "t" to it.
    The result has tokens that cross words, which pre-tokenization forbids.
    """
    text = "the cat sat on the mat"
    tok = BPETokenizer.train(text, 260, pattern=None)
    assert [tok.vocab[i] for i in range(256, 260)] == [b"at", b"e ", b"he ", b"the "]
    assert tok.merges == [(97, 116), (101, 32), (104, 257), (116, 258)]
    assert count_pairs({text.encode(): 1}).most_common(1) == [((97, 116), 3)]
    assert tok.encode(text) == [259, 99, 256, 32, 115, 256, 32, 111, 110, 32, 259, 109, 256]
    gpt2 = BPETokenizer.train(text, 259)
    assert [gpt2.vocab[i] for i in range(256, 259)] == [b"at", b"he", b"the"]


# (c) Invariants ----------------------------------------------------------------------------------

SMALL = BPETokenizer.train("The quick brown fox 🦊 jumps; é, 日本語. " * 5 + EOT + " 123", 300, [EOT])
NO_PRE = BPETokenizer.train("The quick brown fox 🦊 jumps; é, 日本語. " * 5, 300, pattern=None)


@pytest.mark.parametrize("tok", [SMALL, NO_PRE], ids=["gpt2", "no-pretokenization"])
@given(st.text())
def test_round_trip_any_unicode(tok, text):
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize("tok", [SMALL, NO_PRE], ids=["gpt2", "no-pretokenization"])
@pytest.mark.parametrize("text", HARD_STRINGS)
def test_round_trip_hard_strings(tok, text):
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert all(0 <= i < tok.vocab_size for i in ids)


@PATTERNS
@given(st.text(alphabet="ab<|>endoftx ", max_size=30), st.text(alphabet="ab<|>endoftx ", max_size=30))
def test_special_tokens_are_never_split(pattern, left, right):
    """Merges are learnt on text full of <|endoftext|>, yet none of them crosses or contains it."""
    tok = BPETokenizer.train(("to be" + EOT + "or not" + EOT) * 20, 300, [EOT], pattern)
    eot = tok.special_tokens[EOT]
    assert eot == tok.vocab_size - 1 == 256 + len(tok.merges)
    for token in tok.vocab[256:eot]:
        # "<", "|" and ">" occur only inside the special token: no merge may touch them.
        assert not set(token) & set(b"<|>"), token
        assert not (token.endswith(b"be") and b"or" in token)  # nothing crosses it either
    text = left + EOT + right
    ids = tok.encode(text)
    assert ids.count(eot) == text.count(EOT) >= 1
    assert tok.decode(ids) == text


def test_special_token_ids_come_after_the_merges():
    tok = BPETokenizer.train("aaaa bbbb", 260, ["<|a|>", "<|b|>"])
    assert len(tok.merges) == 2 and tok.special_tokens == {"<|a|>": 258, "<|b|>": 259}
    assert tok.merges == [(97, 97), (98, 98)]
    assert tok.encode("<|b|>aaaa<|a|>") == [259, 256, 256, 258]


def test_pretokens_are_never_crossed():
    text = "hello, world. hello, world. hello, world."
    tok = BPETokenizer.train(text, 300)
    pieces = set(pretokenize(text))
    for token in tok.vocab[256:]:
        assert any(token.decode("utf-8", errors="replace") in p for p in pieces)


def test_stops_early_when_nothing_is_left_to_merge():
    tok = BPETokenizer.train("abab", 1000, pattern=None)
    assert tok.vocab[-1] == b"abab" and tok.vocab_size == 258


def test_vocab_size_too_small():
    with pytest.raises(ValueError, match="at least 257"):
        BPETokenizer.train("abc", 256, special_tokens=[EOT])
    BPETokenizer.train("abc", 257, special_tokens=[EOT])  # 256 bytes + 1 special: no merges, fine


@pytest.mark.parametrize("bad_id", [-1, 300, 10**9])
def test_decode_outside_the_vocabulary(bad_id):
    with pytest.raises(ValueError, match=f"id {bad_id} is outside"):
        SMALL.decode([65, bad_id])


def test_partial_characters_decode_with_replacement():
    """Half of an emoji is not valid UTF-8: `decode` puts U+FFFD, `decode_bytes` keeps the bytes."""
    half = list("🦊".encode())[:2]
    assert BPETokenizer([]).decode(half) == "\ufffd"
    assert BPETokenizer([]).decode_bytes(half) == b"\xf0\x9f"


@pytest.mark.parametrize(
    "merges, special, pattern, message",
    [
        ([(256, 1)], [], GPT2_PATTERN, "only ids 0..255"),
        ([(1, 2), (1, 2)], [], GPT2_PATTERN, "twice"),
        ([], [""], GPT2_PATTERN, "non-empty"),
        ([], [EOT, EOT], GPT2_PATTERN, "duplicate"),
        ([], [], "(unclosed", "not a valid regex"),
    ],
)
def test_bad_constructor_arguments(merges, special, pattern, message):
    with pytest.raises(ValueError, match=message):
        BPETokenizer(merges, special, pattern)


def test_pattern_must_cover_the_text():
    tok = BPETokenizer([], pattern=r"\w+")
    with pytest.raises(ValueError, match="does not match every character"):
        tok.encode("two words")


def test_save_load_equality(tmp_path):
    tok = BPETokenizer.train("the quick brown fox 🦊\x00 " * 4 + EOT, 290, [EOT])
    tok.provenance = {"command": "test"}
    path = tmp_path / "sub" / "tok.json"
    tok.save(path)
    again = BPETokenizer.load(path)
    assert again == tok and again.vocab == tok.vocab and again.provenance == {"command": "test"}
    assert again.encode("fox 🦊" + EOT) == tok.encode("fox 🦊" + EOT)
    assert not list(path.parent.glob(".*.part"))
    none = BPETokenizer.train("abcabc", 258, pattern=None)
    none.save(tmp_path / "none.json")
    assert BPETokenizer.load(tmp_path / "none.json").pattern is None


def _file(**changes):
    good = {"format": "llmscratch.BPETokenizer", "version": 1, "pattern": None, "special_tokens": [],
            "merges": [[97, 98]], "provenance": {}}
    good.update(changes)
    return json.dumps({k: v for k, v in good.items() if v != "DROP"})


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps([1, 2]), "not a llmscratch.BPETokenizer file"),
        (_file(format="llmscratch.CharTokenizer"), "not a llmscratch.BPETokenizer"),
        (_file(version=2), "version 2"),
        (_file(merges="DROP"), "malformed"),
        (_file(merges=[[97, 98], [300, 1]]), "inconsistent.*only ids 0..256"),
        (_file(merges=[[97, 98], [97, 98]]), "twice"),
        (_file(merges=[[97, "b"]]), "two integer ids"),
        (_file(merges=[[97, 98, 99]]), "two integer ids"),
        (_file(pattern=5), "pattern"),
        (_file(pattern="(unclosed"), "not a valid regex"),
        (_file(special_tokens=[EOT, EOT]), "duplicate"),
    ],
)
def test_load_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / "tok.json"
    path.write_text(content)
    with pytest.raises(TokenizerFileError, match=message):
        BPETokenizer.load(path)


def test_load_missing_and_binary_files(tmp_path):
    with pytest.raises(TokenizerFileError, match="no such tokenizer file"):
        BPETokenizer.load(tmp_path / "absent.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TokenizerFileError, match="is not valid JSON"):
        BPETokenizer.load(tmp_path / "bin.json")


def test_command_line_writes_a_tokenizer_with_provenance(tmp_path, monkeypatch):
    corpus_or_skip()
    out = tmp_path / "tok.json"
    assert bpe_main(["train", "--vocab-size", "300", "--out", str(out)]) == 0
    tok = BPETokenizer.load(out)
    assert tok.vocab_size == 300 and EOT in tok.special_tokens
    record = tok.provenance
    assert record["command"].startswith("python -m llmscratch.bpe train --vocab-size 300")
    assert record["wall_seconds"] > 0 and record["libraries"]["regex"]
    assert record["corpus"]["characters"] == data.DATASETS["tinyshakespeare"].size  # ASCII: chars == bytes
    assert {"machine", "python", "cpu_count"} <= set(record["hardware"])


def test_committed_tokenizer_loads():
    path = data.results_dir() / "bpe_tokenizer.json"
    tok = BPETokenizer.load(path)
    assert tok.vocab_size == 512 and tok.special_tokens == {EOT: 511} and tok.pattern == GPT2_PATTERN
    assert tok.provenance["command"].startswith("python -m llmscratch.bpe train")


# The HTML view ----------------------------------------------------------------------------------


def test_token_spans_escape_html():
    text = "<script>alert(1)</script> & \"quotes\" 'too'"
    html = token_spans_html(SMALL, text)
    assert "<script>" not in html and "</script>" not in html
    assert "&lt;" in html and "&amp;" in html
    assert html.count("<span") == html.count("</span>") >= 1


def test_token_spans_cover_the_text_and_keep_characters_whole():
    import html as html_lib
    import re

    text = "🦊 fox, 日本語 ok"
    out = token_spans_html(NO_PRE, text)
    pieces = [html_lib.unescape(p) for p in re.findall(r"<span [^>]*>(.*?)</span>", out, flags=re.S)]
    assert "".join(pieces) == text
    assert "\ufffd" not in "".join(pieces)
    titles = re.findall(r'title="tokens? ([0-9, ]+)"', out)
    assert [int(i) for t in titles for i in t.split(", ")] == NO_PRE.encode(text)


def test_progress_hook_sees_every_merge():
    seen = []

    def progress(steps):
        for step in steps:
            seen.append(step)
            yield step

    tok = BPETokenizer.train("abab cdcd abab", 262, progress=progress)
    assert tok.merges == BPETokenizer.train("abab cdcd abab", 262).merges
    assert len(seen) == len(tok.merges) == 6
