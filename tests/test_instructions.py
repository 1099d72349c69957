"""llmscratch.instructions: the course's instruction data is deterministic, leak-free, correct and encodable."""

import pytest
import torch

from llmscratch.instructions import (
    END,
    EXACT_TASKS,
    TASKS,
    Example,
    encode_example,
    exact_match,
    leakage_report,
    make_instructions,
    parse_speeches,
    sft_targets,
    split_example,
    task_counts,
)

SPEAKERS = ["First Citizen", "MENENIUS", "All", "Second Citizen", "CORIOLANUS"]
WORDS = ("hungry corn dear city senate people tribune noble wars patience honour country gods mother wife "
         "friends enemies rome volsces voice voices gown market consul banish traitor soldier wounds sword "
         "fire thunder storm gentle proud anger virtue service flattery pride fortune crown river mountain").split()


def play(n_speeches=400):
    """A small play in Tiny Shakespeare's layout, with lines long enough for every task."""
    blocks = []
    for i in range(n_speeches):
        lines = [f"Speech {i} line {k}, the {WORDS[(i + k) % len(WORDS)]} and the {WORDS[(3 * i + k) % len(WORDS)]}"
                 for k in range(1 + i % 3)]
        blocks.append(SPEAKERS[i % len(SPEAKERS)] + ":\n" + "\n".join(lines))
    return "\n\n".join(blocks) + "\n"


@pytest.fixture(scope="module")
def splits():
    return make_instructions(play(), n_train=270, n_val=90, seed=1)


def test_deterministic_under_a_seed_and_different_across_seeds(splits):
    again = make_instructions(play(), n_train=270, n_val=90, seed=1)
    assert again == splits
    other = make_instructions(play(), n_train=270, n_val=90, seed=2)
    assert other["train"] != splits["train"]


def test_sizes_tasks_and_no_leakage(splits):
    assert len(splits["train"]) == 270 and len(splits["val"]) == 90
    assert task_counts(splits["train"]) == {task: 30 for task in TASKS}
    assert leakage_report(splits) == {"shared_instructions": 0, "shared_pairs": 0, "shared_speeches": 0}
    speeches = parse_speeches(play())
    cut = int(len(speeches) * 0.9)
    assert all(e.source < cut for e in splits["train"] if e.source is not None)
    assert all(e.source >= cut for e in splits["val"] if e.source is not None)


def test_every_answer_is_right(splits):
    speeches = parse_speeches(play())
    for e in splits["train"] + splits["val"]:
        if e.task == "reverse":
            assert e.response == e.instruction.split(": ", 1)[1][::-1]
        elif e.task == "uppercase":
            assert e.response == e.instruction.split(": ", 1)[1].upper()
        elif e.task == "copy":
            assert e.response == e.instruction.split(": ", 1)[1]
        elif e.task == "sort":
            assert e.response.split() == sorted(e.instruction.split(": ", 1)[1].split())
        elif e.task == "arithmetic":
            a, op, b = e.instruction.removeprefix("What is ").removesuffix("?").split()
            assert int(e.response) == (int(a) + int(b) if op == "+" else int(a) - int(b)) >= 0
        elif e.task == "count":
            letter, word = e.instruction.split("'")[1], e.instruction.split('"')[1]
            assert e.response == str(word.count(letter))
        elif e.task == "speaker":
            assert e.response == speeches[e.source].speaker and e.instruction.split('"')[1] in speeches[e.source].lines
        elif e.task == "next_speaker":
            assert e.response == speeches[e.source + 1].speaker
        else:
            lines = speeches[e.source].lines
            assert lines[lines.index(e.instruction.split('"')[1]) + 1] == e.response


def test_the_format_round_trips_and_needs_the_end_token():
    e = Example("reverse", "Reverse the letters of: honest", "tsenoh")
    assert e.text() == "### Instruction:\nReverse the letters of: honest\n\n### Response:\ntsenoh" + END
    assert split_example(e.text()) == (e.instruction, e.response)
    with pytest.raises(ValueError, match="does not end with the end-of-text token"):
        split_example(e.text()[: -len(END)])
    with pytest.raises(ValueError, match="not an example"):
        split_example("Reverse honest")


class Letters:
    """A character tokenizer with the end token, enough to test the encoding."""

    special_tokens = {END: 0}

    def encode(self, text):
        return [ord(c) for c in text]


def test_encoding_masks_the_prompt_and_refuses_what_does_not_fit():
    e = Example("copy", "Copy exactly: ab", "ab")
    ids, prompt_length = encode_example(e, Letters(), context_length=100)
    assert ids[-1] == 0 and len(ids) == len(e.prompt()) + 3 and prompt_length == len(e.prompt())
    x, y = sft_targets(ids, prompt_length)
    assert (y[: prompt_length - 1] == -100).all() and y[prompt_length - 1:].tolist() == [ord("a"), ord("b"), 0]
    assert torch.equal(sft_targets(ids, prompt_length, mask_prompt=False)[1], torch.tensor(ids[1:]))
    with pytest.raises(ValueError, match="longer than the context"):
        encode_example(e, Letters(), context_length=10)
    no_end = Letters()
    no_end.special_tokens = {}
    with pytest.raises(ValueError, match="no <\\|endoftext\\|> token"):
        encode_example(e, no_end, context_length=100)
    with pytest.raises(ValueError, match="at least one response token"):
        sft_targets(ids, len(ids))


def test_exact_match():
    e = Example("arithmetic", "What is 2 + 2?", "4")
    assert exact_match("4" + END + "junk", e) and exact_match(" 4 ", e) and not exact_match("44", e)
    with pytest.raises(ValueError, match="no single right answer"):
        exact_match("anything", Example("continue", "Continue", "a line"))
    assert "continue" not in EXACT_TASKS and len(EXACT_TASKS) == len(TASKS) - 1


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="no speeches"):
        parse_speeches("just some prose\nwithout speakers")
    with pytest.raises(ValueError, match="val_fraction"):
        make_instructions(play(), val_fraction=1.0)
    with pytest.raises(ValueError, match="too small"):
        make_instructions(play(20), n_train=900, n_val=90)


def test_the_course_dataset_on_tiny_shakespeare():
    import os

    from llmscratch import data
    if not (os.environ.get(data.MIRROR_ENV) or (data.cache_dir() / "tinyshakespeare.txt").exists()):
        pytest.skip("Tiny Shakespeare is neither cached nor mirrored here")
    from llmscratch.bpe import BPETokenizer

    splits = make_instructions(data.load_text("tinyshakespeare"))
    assert len(splits["train"]) >= 2000 and len(splits["val"]) >= 300
    assert leakage_report(splits) == {"shared_instructions": 0, "shared_pairs": 0, "shared_speeches": 0}
    tokenizer = BPETokenizer.load(data.results_dir() / "bpe_tokenizer.json")
    lengths = [len(encode_example(e, tokenizer, 256)[0]) for e in splits["train"] + splits["val"]]
    assert max(lengths) <= 256  # every example fits the course model's context
