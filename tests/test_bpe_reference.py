"""Our byte-level BPE against Hugging Face `tokenizers`, and our pre-tokenization pattern
against GPT-2's published one.

Hugging Face's BPE model is built from *our* merges and vocabulary, written in GPT-2's
printable byte alphabet; then both encode the same held-out text and must produce exactly the
same token sequence. That checks the whole encoder: the pre-tokenizer (the same pattern, run by
a different regex engine), the bytes, and the order in which merges are replayed (lowest rank
first, leftmost first among equals).

One difference is not ours: `tokenizers` runs the pattern with Oniguruma, which knows an older
Unicode than the `regex` module. On code points that Python's Unicode database
(`unicodedata.unidata_version`) leaves unassigned, such as U+0558, the two engines disagree on
what is a letter, so they cut such text differently (``"a\\u0558a"`` is one piece for us, three
for Hugging Face). The full-pipeline tests therefore draw assigned characters only; the BPE
itself is compared on any text by giving Hugging Face our pre-tokens.
"""

import functools
import os

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscratch import GPT2_PATTERN, BPETokenizer, data
from llmscratch.bpe import pretokenize

tokenizers = pytest.importorskip("tokenizers")
from tokenizers import Regex, models, pre_tokenizers  # noqa: E402

# GPT-2's pre-tokenization pattern as published in openai/gpt-2, src/encoder.py
# (Encoder.__init__: ``self.pat = re.compile(r"""...""")`` with ``import regex as re``).
GPT2_REFERENCE = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _byte_to_char() -> dict[int, str]:
    """GPT-2's byte -> printable character table (``bytes_to_unicode`` in its encoder.py).

    Bytes that are printable Latin-1 characters stand for themselves; the other 68 (controls,
    space, the non-breaking space, the soft hyphen) take the characters 256, 257, ... in byte
    order, so that the space 0x20 becomes "Ġ" (U+0120).
    """
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    table, shifted = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


BYTE_TO_CHAR = _byte_to_char()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def _chars(token: bytes) -> str:
    return "".join(BYTE_TO_CHAR[b] for b in token)


def _hugging_face(tok: BPETokenizer, own_pretokenizer: bool = True) -> "tokenizers.Tokenizer":
    """A Hugging Face tokenizer with our merges and vocabulary.

    ``own_pretokenizer=True``: the GPT-2 split, run by `tokenizers`, then the byte-level
    mapping. ``False``: the byte-level mapping alone, for input that is already pre-tokenized.
    """
    vocab = {_chars(token): i for i, token in enumerate(tok.vocab)}
    assert len(vocab) == len(tok.vocab), "two of our ids have the same bytes; token strings cannot tell them apart"
    merges = [(_chars(tok.vocab[a]), _chars(tok.vocab[b])) for a, b in tok.merges]
    hf = tokenizers.Tokenizer(models.BPE(vocab, merges))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if own_pretokenizer:
        split = pre_tokenizers.Split(Regex(tok.pattern), behavior="isolated")
        hf.pre_tokenizer = pre_tokenizers.Sequence([split, byte_level])
    else:
        hf.pre_tokenizer = byte_level
    return hf


def _ours(tok: BPETokenizer, tokens: list[str]) -> list[int]:
    """Hugging Face's token strings back to our ids, through their bytes."""
    ids = {token: i for i, token in enumerate(tok.vocab)}
    return [ids[bytes(CHAR_TO_BYTE[c] for c in token)] for token in tokens]


def _hf_encode(tok: BPETokenizer, hf: "tokenizers.Tokenizer", text: str) -> list[int]:
    encoding = hf.encode(text)
    ids = _ours(tok, encoding.tokens)
    assert ids == encoding.ids  # the vocabulary was built with our ids: both routes agree
    return ids


def _hf_encode_pretokenized(tok: BPETokenizer, hf: "tokenizers.Tokenizer", text: str) -> list[int]:
    pieces = pretokenize(text, tok.pattern)
    return _ours(tok, hf.encode(pieces, is_pretokenized=True).tokens) if pieces else []


# Training texts -------------------------------------------------------------------------------

MULTILINGUAL = """\
The quick brown fox jumps over the lazy dog; it's 12:30 and we've 4567 reasons.
Café, naïve, façade, résumé, Ærø, Łódź, Straße, señor, coração, ÉCOLE.
日本語のテキストは、ひらがなとカタカナと漢字で書かれています。東京と京都。
中文文本：我们今天学习字节对编码，明天继续。
مرحبا بالعالم، هذا نص عربي قصير للتجربة.
Ελληνικά κείμενα και русский текст, Україна, Հայերեն.
Emoji: 🦊🦊 👍🏽👍🏽 👩‍👩‍👧 👨‍💻 🇫🇷🇯🇵 ❤️ ✨ 🙂🙂
"""

HELD_OUT = [
    "Zoë's café in Kraków served crème brûlée — naïvely, 3×.",
    "東京都の天気は晴れ。我们明天见！",
    "العربية: السلام عليكم ورحمة الله",
    "Family 👩‍👩‍👧 and 👨‍👩‍👧‍👦, flags 🇫🇷🇩🇪🇯🇵🏳️‍🌈, skin tones 👋🏻👋🏿, keycap 1️⃣ #️⃣.",
    "e\u0301 vs é, ﬁ ligature, ＦＵＬＬ width, Ⅻ numerals, ½ ² ٣",
    "  leading and trailing spaces  \n\n\t\r\n mixed\u00a0nbsp\u3000ideographic space ",
    "I'll've won't they're We'VE it’s '' 's 't ' s",
    "\x00\x01\x7f control bytes, tabs\t\tand a bell \x07",
    "",
]


def _shakespeare() -> str:
    """Tiny Shakespeare from the cache or the mirror, never the network (else skip)."""
    name = data.DATASETS["tinyshakespeare"].filename
    mirror = os.environ.get(data.MIRROR_ENV)
    if not (data.cache_dir() / name).exists() and not (mirror and os.path.exists(os.path.join(mirror, name))):
        pytest.skip("Tiny Shakespeare is neither cached nor in $LLMSCRATCH_DATA_MIRROR")
    return data.load_text("tinyshakespeare")


@functools.cache
def _trained(corpus: str) -> tuple[BPETokenizer, str]:
    """A tokenizer trained on `corpus`, and held-out text of the same kind."""
    if corpus == "multilingual":
        # Merges that join the bytes of accented letters, CJK, Arabic and emoji.
        return BPETokenizer.train(MULTILINGUAL * 3, 400), "\n".join(HELD_OUT)
    text = _shakespeare()
    return BPETokenizer.train(text[:200_000], 400), text[-30_000:]


CORPORA = pytest.mark.parametrize("corpus", ["multilingual", "shakespeare"])

# (a) Against references ----------------------------------------------------------------------


def test_byte_table_is_hugging_faces():
    """Our copy of GPT-2's byte table equals the one `tokenizers` uses."""
    assert sorted(BYTE_TO_CHAR.values()) == sorted(pre_tokenizers.ByteLevel.alphabet())
    assert BYTE_TO_CHAR[ord(" ")] == "Ġ" and BYTE_TO_CHAR[ord("\n")] == "Ċ"
    text = "".join(map(chr, range(1, 0x800))) + "日🦊"  # every byte that valid UTF-8 can hold
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    [(mapped, _)] = byte_level.pre_tokenize_str(text)
    assert mapped == _chars(text.encode("utf-8"))


@CORPORA
def test_ids_equal_hugging_faces_on_held_out_text(corpus):
    """Exactly the same ids as Hugging Face's BPE with our merges, on text the merges never saw."""
    tok, held_out = _trained(corpus)
    assert tok.vocab_size == 400
    non_ascii = [token for token in tok.vocab[256:] if max(token) >= 0x80]
    assert bool(non_ascii) == (corpus == "multilingual")  # Shakespeare's text is ASCII
    hf = _hugging_face(tok)
    for text in [held_out, *HELD_OUT]:
        ours = tok.encode(text)
        assert _hf_encode(tok, hf, text) == ours, text[:80]
        assert tok.decode(ours) == text
    # Not vacuous: the merges do their work on the held-out text.
    assert len(tok.encode(held_out)) < 0.8 * len(held_out.encode("utf-8"))


@CORPORA
def test_ids_equal_hugging_faces_on_the_training_text_and_every_token(corpus):
    """Every merge gets exercised: on the training text, and on the text of each merged token
    alone (where a missing or misordered merge shows as a different split)."""
    tok, _ = _trained(corpus)
    hf = _hugging_face(tok)
    text = MULTILINGUAL * 3 if corpus == "multilingual" else _shakespeare()[:200_000]
    ours = tok.encode(text)
    # Most merged tokens survive in the output; the rest were steps towards longer ones.
    assert len(set(ours) & set(range(256, tok.vocab_size))) > 0.75 * len(tok.merges)
    assert _hf_encode(tok, hf, text) == ours
    words = [token.decode("utf-8") for token in tok.vocab[256:] if _is_utf8(token)]
    assert len(words) > 0.5 * len(tok.merges)
    for word in words:
        assert _hf_encode(tok, hf, word) == tok.encode(word), word


def _is_utf8(token: bytes) -> bool:
    try:
        token.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


ASSIGNED = st.characters(exclude_categories=("Cn", "Cs"))  # see the module docstring
# Short runs of characters the pattern and the merges care about, so that words, contractions,
# digit runs and whitespace runs occur often enough to matter.
FRAGMENTS = st.sampled_from([
    "the", " the", "qu", "ick", "fox", "'s", "'t", "'re", "'ll", "'", "’", " ", "  ", "\n", "\n\n", "\t",
    "\r\n", "\u00a0", "\u3000", "1", "23", "456", ".", ",", "!?", "é", "ç", "日本", "語", "مر", "حبا",
    "🦊", "👍🏽", "👩‍👩‍👧", "🇫🇷", "\u200d", "\u0301", "\x00",
])
BIASED_TEXT = st.lists(FRAGMENTS, max_size=25).map("".join)
# Built once: hypothesis calls each test hundreds of times.
_HF_FULL = _hugging_face(_trained("multilingual")[0])
_HF_BPE_ONLY = _hugging_face(_trained("multilingual")[0], own_pretokenizer=False)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(ASSIGNED, max_size=60), BIASED_TEXT))
def test_ids_equal_hugging_faces_on_any_text(text):
    """The whole pipeline, Hugging Face's pre-tokenizer included, on text of assigned characters."""
    tok, _ = _trained("multilingual")
    assert _hf_encode(tok, _HF_FULL, text) == tok.encode(text)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=60), BIASED_TEXT))
def test_merges_replay_as_hugging_faces_on_any_text(text):
    """Any text at all, unassigned code points included: Hugging Face's BPE on our pre-tokens."""
    tok, _ = _trained("multilingual")
    assert _hf_encode_pretokenized(tok, _HF_BPE_ONLY, text) == tok.encode(text)


# The pattern against GPT-2's ----------------------------------------------------------------


# Single characters and contraction endings the pattern treats specially, joined at random, so
# that every pair of them (a space before digits, an apostrophe before "ll", ...) comes up.
PATTERN_ATOMS = st.sampled_from([
    "'", "’", "s", "t", "re", "ve", "m", "ll", "d", "S", "T", "a", "é", "日", "ا",
    " ", "  ", "\n", "\t", "\r", "\x0b", "\x1c", "\u00a0", "\u2028", "\u3000",
    "1", "٣", "Ⅻ", "½", "²", ".", "!", "$", "🦊", "\u0301", "\u200d", "\x00",
])
PATTERN_TEXT = st.lists(PATTERN_ATOMS, max_size=30).map("".join)
# Something, an apostrophe, something: every contraction, in either case, and near misses.
CONTRACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["", "a", "I", " ", "\n", "1", "'", "é"]),
        st.sampled_from(["'", "’", "' "]),
        st.sampled_from(["s", "t", "re", "ve", "m", "ll", "d", "S", "T", "RE", "Ve", "M", "LL", "D",
                         "r", "l", "v", "e", "x", "1", " ", ""]),
    ).map("".join),
    max_size=8,
).map("".join)


@settings(max_examples=600, deadline=None)
@given(text=st.one_of(st.text(max_size=80), PATTERN_TEXT, CONTRACTIONS, BIASED_TEXT))
def test_pattern_cuts_as_gpt2s(text):
    """Our `GPT2_PATTERN` groups the contractions as ``'(?:[sdmt]|ll|ve|re)``; GPT-2 lists them
    one by one. No contraction is a prefix of another, so the order of the list cannot matter,
    and the two patterns must cut every string identically."""
    assert regex.findall(GPT2_PATTERN, text) == regex.findall(GPT2_REFERENCE, text)


@pytest.mark.parametrize(
    "text, pieces",
    [
        ("I'll've won't", ["I", "'ll", "'ve", " won", "'t"]),
        ("I'm we'd they're", ["I", "'m", " we", "'d", " they", "'re"]),
        ("it'S", ["it", "'", "S"]),  # case-sensitive, as GPT-2's
        ("a  b\n\n c", ["a", " ", " b", "\n\n", " c"]),
        ("x   ", ["x", "   "]),
        ("🦊 2024! x", ["🦊", " 2024", "!", " x"]),
        ("a 12 ٣", ["a", " 12", " ٣"]),
    ],
)
def test_pattern_worked_examples(text, pieces):
    assert regex.findall(GPT2_REFERENCE, text) == pieces
    assert regex.findall(GPT2_PATTERN, text) == pieces
