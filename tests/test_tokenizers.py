"""llmscratch.tokenizers.CharTokenizer: round trips, special tokens, files, and loud errors."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmscratch import CharTokenizer, TokenizerFileError

SPECIAL = "<|endoftext|>"


def test_docstring_example():
    """The module docstring's worked example: special token first, then sorted characters."""
    tok = CharTokenizer.train("hello", special_tokens=["."])
    assert tok.tokens == [".", "e", "h", "l", "o"]
    assert tok.encode("hello.") == [2, 1, 3, 3, 4, 0]
    assert tok.decode([2, 1, 3, 3, 4]) == "hello"


@given(st.text())
def test_round_trip_any_unicode(text):
    """Emoji, NUL, combining marks, mixed scripts, the empty string: decode(encode(s)) == s."""
    tok = CharTokenizer.train(text)
    assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode(text)) == len(text)


@given(st.lists(st.sampled_from(["a", "b", "<", "|", SPECIAL, "\x00", "é", "🙂"])))
def test_special_tokens_are_single_ids(pieces):
    text = "".join(pieces)
    tok = CharTokenizer.train("ab<|\x00é🙂", special_tokens=[SPECIAL])
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert ids.count(tok.stoi[SPECIAL]) == text.count(SPECIAL)


def test_special_token_characters_do_not_leak_into_the_vocabulary():
    tok = CharTokenizer.train(f"ab{SPECIAL}ba", special_tokens=[SPECIAL])
    assert tok.tokens == [SPECIAL, "a", "b"]


def test_unknown_character_is_named():
    tok = CharTokenizer.train("abc")
    with pytest.raises(ValueError, match=r"'z' \(U\+007A\)"):
        tok.encode("abz")


@pytest.mark.parametrize("bad_id", [-1, 3, 10**6])
def test_decode_outside_the_vocabulary(bad_id):
    tok = CharTokenizer.train("abc")
    with pytest.raises(ValueError, match=f"id {bad_id} is outside"):
        tok.decode([0, bad_id])


@pytest.mark.parametrize(
    "chars, special, message",
    [(["a", "a"], [], "duplicate"), (["ab"], [], "length 1"), (["a"], [""], "non-empty"), (["a"], ["a"], "duplicate")],
)
def test_bad_vocabulary(chars, special, message):
    with pytest.raises(ValueError, match=message):
        CharTokenizer(chars, special)


def test_save_load_equality(tmp_path):
    tok = CharTokenizer.train("the quick brown fox 🦊\x00", special_tokens=[".", SPECIAL])
    path = tmp_path / "sub" / "tok.json"
    tok.save(path)
    again = CharTokenizer.load(path)
    assert again == tok
    assert again.encode("fox 🦊.") == tok.encode("fox 🦊.")
    assert not list(path.parent.glob(".*.part"))


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps([1, 2]), "not a llmscratch.CharTokenizer file"),
        (json.dumps({"format": "llmscratch.BPETokenizer", "version": 1}), "not a llmscratch.CharTokenizer"),
        (json.dumps({"format": "llmscratch.CharTokenizer", "version": 99, "chars": [], "special_tokens": []}),
         "version 99"),
        (json.dumps({"format": "llmscratch.CharTokenizer", "version": 1, "chars": ["a"]}), "malformed"),
        (json.dumps({"format": "llmscratch.CharTokenizer", "version": 1, "chars": ["ab"], "special_tokens": []}),
         "malformed"),
    ],
)
def test_load_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / "tok.json"
    path.write_text(content)
    with pytest.raises(TokenizerFileError, match=message):
        CharTokenizer.load(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(TokenizerFileError, match="no such tokenizer file"):
        CharTokenizer.load(tmp_path / "absent.json")


def test_load_binary_garbage(tmp_path):
    path = tmp_path / "tok.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TokenizerFileError, match="is not valid JSON"):
        CharTokenizer.load(path)
