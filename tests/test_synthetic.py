"""llmscratch.synthetic: templates recognised and solved, self-instruct on a model that knows one example,
wrong answers injected at a known rate, and deduplication against a pool."""

import pytest
import torch
from chartok import Chars
from test_instructions import play  # the same small play

from llmscratch import GPT, GPTConfig
from llmscratch.bigram import BigramLM, CountingBigram
from llmscratch.instructions import END, FORMAL_TASKS, SHAKESPEARE_TASKS, Example, make_instructions
from llmscratch.sft import InstructionBatches, evaluate_instructions, response_loss
from llmscratch.synthetic import (
    answer_instructions,
    dedup_against,
    inject_noise,
    label_accuracy,
    near_copies,
    recognise,
    sample_instructions,
    solve,
    task_mix,
)
from llmscratch.training import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def splits():
    return make_instructions(play(), n_train=270, n_val=90, seed=3)


def test_every_template_example_is_recognised_and_every_formal_one_solved(splits):
    for example in splits["train"] + splits["val"]:
        assert recognise(example.instruction) == example.task
        if example.task in FORMAL_TASKS:
            assert solve(example.instruction) == example.response
        else:
            assert example.task in SHAKESPEARE_TASKS and solve(example.instruction) is None


@pytest.mark.parametrize("instruction", ["Reverse the letters of: two words", "reverse the letters of: abc",
                                         "What is 3 * 4?", "Copy exactly:", "Write in capitals: x\nand more?", ""])
def test_what_follows_no_template_is_other(instruction):
    assert recognise(instruction) == "other" and solve(instruction) is None


def test_label_accuracy_counts_only_checkable_answers():
    made = [Example("arithmetic", "What is 2 + 3?", "5"), Example("arithmetic", "What is 9 - 3?", "7"),
            Example("reverse", "Reverse the letters of: ab", "ba"), Example("other", "Sing a song", "la")]
    report = label_accuracy(made)
    assert (report["checkable"], report["right"]) == (3, 2) and report["share"] == pytest.approx(2 / 3)
    assert report["tasks"] == {"reverse": {"checkable": 1, "right": 1}, "arithmetic": {"checkable": 2, "right": 1}}
    assert task_mix(made)["other"] == 1 and task_mix(made)["arithmetic"] == 2
    assert label_accuracy([Example("other", "Sing", "la")])["share"] is None


def test_noise_changes_the_given_share_to_wrong_answers_of_the_same_task(splits):
    train_examples = splits["train"]
    noisy, changed = inject_noise(train_examples, rate=0.3, seed=5)
    assert len(noisy) == len(train_examples) and len(changed) == round(0.3 * len(train_examples))
    responses = {t: {e.response for e in train_examples if e.task == t} for t in {e.task for e in train_examples}}
    for i, (before, after) in enumerate(zip(train_examples, noisy)):
        assert (before.task, before.instruction) == (after.task, after.instruction)
        if i in changed:
            assert after.response != before.response and after.response in responses[before.task]
        else:
            assert after == before
    assert inject_noise(train_examples, rate=0.3, seed=5) == (noisy, changed)
    assert inject_noise(train_examples, rate=0.3, seed=6)[1] != changed
    assert inject_noise(train_examples, rate=0.0) == (list(train_examples), [])
    with pytest.raises(ValueError, match="rate"):
        inject_noise(train_examples, rate=1.5)


def test_dedup_drops_exact_and_near_copies_of_the_pool_and_of_earlier_new_examples():
    long = "Continue this speech by MENENIUS:\n\"I tell you, friends, most charitable care have the patricians of you\""
    existing = [Example("continue", long, "x"), Example("reverse", "Reverse the letters of: honest", "tsenoh")]
    new = [Example("reverse", "reverse the letters of: HONEST!", "tsenoh"),  # the same after normalising
           Example("continue", long.replace("charitable", "charitible"), "y"),  # one letter changed
           Example("copy", "Copy exactly: the people are hungry for corn", "the people are hungry for corn"),
           Example("copy", "Copy exactly: the people are hungry for corn.", "the people are hungry for corn."),
           Example("arithmetic", "What is 12 + 30?", "42")]
    kept, counts = dedup_against(new, existing, threshold=0.8)
    assert kept == [2, 4]
    assert counts == {"kept": 2, "exact": 2, "near": 1}
    kept_alone, counts_alone = dedup_against(new, threshold=0.8)  # without the pool the first two are new
    assert kept_alone == [0, 1, 2, 4] and counts_alone["exact"] == 1


def _memorised_model(text_example: Example) -> GPT:
    """A tiny GPT trained on one example's whole text until it writes it back."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=128, context_length=64, d_model=32, n_layers=1, n_heads=2, position="rope"))
    batches = InstructionBatches({"train": [text_example], "val": [text_example]}, Chars(), 64, mask_prompt=False)
    train(model, batches, TrainConfig(steps=150, batch_size=2, learning_rate=1e-2, warmup_steps=5, eval_interval=150,
                                      eval_batches=1, weight_decay=0.0), progress=False)
    return model.eval()


def test_self_instruct_on_a_model_that_knows_one_example():
    example = Example("arithmetic", "What is 2 + 2?", "4")
    model = _memorised_model(example)
    sampled = sample_instructions(model, Chars(), n=6, seed=0, batch_size=4)
    assert len(sampled) == 6 and sampled.count("What is 2 + 2?") >= 5
    assert sample_instructions(model, Chars(), n=6, seed=0, batch_size=4) == sampled  # reproducible
    made = answer_instructions(model, Chars(), sampled + [None])
    assert all(e.instruction == "What is 2 + 2?" and e.task == "arithmetic" and e.response == "4"
               for e in made if e.instruction == "What is 2 + 2?")
    assert label_accuracy(made)["share"] == 1.0
    # A model that never reaches the response header writes nothing usable.
    torch.manual_seed(1)
    untrained = GPT(GPTConfig(vocab_size=128, context_length=64, d_model=16, n_layers=1, n_heads=2, position="rope"))
    assert sample_instructions(untrained, Chars(), n=3, seed=0, max_tokens=8) == [None] * 3
    assert answer_instructions(untrained, Chars(), [None, None]) == []
    with pytest.raises(ValueError, match="temperature"):
        sample_instructions(model, Chars(), n=2, temperature=0.0)


def test_the_bigram_module_scores_by_the_gpt_protocol():
    examples = [Example("arithmetic", "What is 2 + 2?", "4"), Example("copy", "Copy exactly: ab", "ab")]
    tok = Chars()
    texts = [tok.encode(e.text()[: -len(END)]) for e in examples]
    bigram = CountingBigram.fit(texts, 128, boundary_id=127)
    lm = BigramLM(bigram, smoothing=1.0)
    # The response loss is the bigram's own log-probabilities of the response tokens and the end, averaged.
    logp = bigram.probabilities(1.0).log()
    by_hand = []
    for e in examples:
        ids = tok.encode(e.prompt()) + tok.encode(e.response) + [127]
        start = len(tok.encode(e.prompt()))
        by_hand += [-float(logp[ids[t - 1], ids[t]]) for t in range(start, len(ids))]
    assert response_loss(lm, tok, examples) == pytest.approx(sum(by_hand) / len(by_hand), rel=1e-5)
    report = evaluate_instructions(lm, tok, examples, max_new_tokens=4)
    assert len(report["responses"]) == 2
    with pytest.raises(ValueError, match="shape"):
        lm(torch.tensor([1, 2]))


def test_near_copies_keep_the_template_and_a_right_answer(splits):
    from llmscratch.dedup import jaccard, shingles

    train_examples = splits["train"]
    out, chosen = near_copies(train_examples, sources=12, copies=5, seed=2)
    assert out[: len(train_examples)] == train_examples and len(out) == len(train_examples) + 60
    copies = out[len(train_examples):]
    for k, i in enumerate(chosen):
        source = train_examples[i]
        for copy in copies[5 * k: 5 * k + 5]:
            assert copy.task == source.task and recognise(copy.instruction) == source.task
            assert copy.instruction != source.instruction
            assert jaccard(shingles(copy.instruction), shingles(source.instruction)) > 0.4
            if copy.task in FORMAL_TASKS:
                assert solve(copy.instruction) == copy.response
            else:
                assert copy.response == source.response
    assert near_copies(train_examples, sources=12, copies=5, seed=2) == (out, chosen)
    kept, counts = dedup_against(out, threshold=0.7)
    dropped = set(range(len(out))) - set(kept)
    assert len(dropped & set(range(len(train_examples), len(out)))) >= 40  # most copies found
    with pytest.raises(ValueError, match="sources"):
        near_copies(train_examples, sources=len(train_examples) + 1, copies=1)


def test_synthetic_script_on_two_steps(tmp_path, monkeypatch, splits):
    import json

    from llmscratch import sft
    from llmscratch.scripts import sft_course, synthetic_course

    config = GPTConfig(vocab_size=128, context_length=512, d_model=16, n_layers=1, n_heads=2, position="rope")

    def tiny_course_model(verify=True):
        torch.manual_seed(0)
        return GPT(config).eval(), Chars()

    small = {"train": splits["train"][:60], "val": splits["val"][:18]}
    corpus = {name: torch.randint(0, 127, (300,), generator=torch.Generator().manual_seed(0))
              for name in ("train", "val", "test")}
    monkeypatch.setattr(sft, "load_course_model", tiny_course_model)  # fine_tune_course_model
    monkeypatch.setattr(synthetic_course, "make_instructions", lambda text: small)
    monkeypatch.setattr(synthetic_course, "load_text", lambda name: "")
    monkeypatch.setattr(synthetic_course, "shakespeare_bpe_splits", lambda: (None, corpus, {}))
    monkeypatch.setattr(sft_course, "rung_loss", lambda model, splits: 1.5)
    monkeypatch.setattr(sft_course, "MAX_NEW_TOKENS", 4)
    monkeypatch.setattr(synthetic_course, "SOURCES", 3)
    monkeypatch.setattr(synthetic_course, "COPIES", 2)
    monkeypatch.setattr(synthetic_course, "SFT_TRAIN", TrainConfig(steps=2, batch_size=2, warmup_steps=1,
                                                                   eval_interval=2, eval_batches=1))
    out = tmp_path / "synthetic.json"
    assert synthetic_course.main(["--seeds", "1", "2", "--generate", "5", "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert [row["name"] for row in result["rows"]] == list(synthetic_course.SETTINGS)
    examples = [row["examples"] for row in result["rows"]]
    assert examples[0] == examples[2] == 60 and examples[3] == 30 + 6 and examples[4] <= examples[3]
    assert all(len(row["response_loss"]) == 2 and row["seeds"] == [1, 2] for row in result["rows"])
    assert result["generated"]["sampled"] == 5 and result["noise"]["changed"] == 18
    assert 0 <= result["repetitive"]["recall"] <= 1
    saved = torch.load(out.with_suffix(".pt"), weights_only=True)
    GPT(GPTConfig(**saved["model_config"])).load_state_dict({k: v.float() for k, v in saved["model"].items()})


def test_the_committed_synthetic_run_and_writer():
    import json

    from llmscratch.data import results_dir
    from llmscratch.scripts import synthetic_course
    from llmscratch.sft import load_tuned_model

    record = json.loads((results_dir() / "part5_synthetic.json").read_text())
    assert record["provenance"]["git_dirty"] is False
    assert [row["name"] for row in record["rows"]] == list(synthetic_course.SETTINGS)
    assert all(len(row["response_loss"]) == 3 for row in record["rows"])
    assert len(record["generated"]["examples"]) == record["generated"]["answered"]
    writer, tokenizer = load_tuned_model("part5_synthetic.pt", "synthetic_course")
    assert not writer.training and writer.config.vocab_size == tokenizer.vocab_size
