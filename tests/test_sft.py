"""llmscratch.sft: padded, prompt-masked batches that train() takes as they are, and the instruction evaluation."""

import pytest
import torch
from chartok import Chars

from llmscratch import GPT, GPTConfig
from llmscratch.bigram import CountingBigram
from llmscratch.instructions import END, Example
from llmscratch.sft import (
    InstructionBatches,
    counting_bigram,
    evaluate_instructions,
    fine_tune_course_model,
    generate_responses,
    majority_answers,
    round_to_float16,
)

pytestmark = pytest.mark.usefixtures("one_thread")


EXAMPLES = [Example("arithmetic", "What is 2 + 2?", "4"), Example("reverse", "Reverse the letters of: ab", "ba"),
            Example("copy", "Copy exactly: a longer phrase", "a longer phrase")]


def test_batches_pad_with_the_end_token_and_mask_prompt_and_padding():
    batches = InstructionBatches({"train": EXAMPLES}, Chars(), context_length=128)
    x, y = batches("train", 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape and x.shape[1] == max(len(e.text()) - len(END) + 1 for e in EXAMPLES) - 1
    for row_x, row_y in zip(x, y):
        text = "".join(chr(int(i)) for i in row_x if i < 127)
        example = next(e for e in EXAMPLES if text.startswith(e.prompt()))
        scored = row_y[row_y != -100].tolist()
        assert scored == [ord(c) for c in example.response] + [127]  # the response and its end token, nothing else
    unmasked = InstructionBatches({"train": EXAMPLES}, Chars(), context_length=128, mask_prompt=False)
    _, y_all = unmasked("train", 16, torch.Generator().manual_seed(0))
    assert (y_all != -100).sum() > (y != -100).sum()


def test_padding_does_not_change_a_causal_models_real_positions():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=128, context_length=96, d_model=16, n_layers=1, n_heads=2, position="rope")).eval()
    batches = InstructionBatches({"train": EXAMPLES}, Chars(), context_length=96)
    x, y = batches("train", 8, torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, _ = model(x)
        for i in range(len(x)):
            n = int((y[i] != -100).nonzero().max()) + 1  # the real length of this row
            alone, _ = model(x[i:i + 1, :n])
            assert torch.allclose(logits[i, :n], alone[0], atol=1e-5)


def test_refusals():
    with pytest.raises(ValueError, match="longer than the context"):
        InstructionBatches({"train": EXAMPLES}, Chars(), context_length=20)
    with pytest.raises(ValueError, match="no examples"):
        InstructionBatches({"train": []}, Chars(), context_length=64)
    no_end = Chars()
    no_end.special_tokens = {}
    with pytest.raises(ValueError, match="no <\\|endoftext\\|> token"):
        InstructionBatches({"train": EXAMPLES}, no_end, context_length=64)


class Scripted(torch.nn.Module):
    """Writes a fixed reply for each prompt (keyed by its length), then the end token if `stop`."""

    context_length = 256

    def __init__(self, replies, stop=True):
        super().__init__()
        self.replies, self.stop = replies, stop

    def forward(self, idx):
        out = torch.zeros(idx.shape[0], idx.shape[1], 128)
        for b, row in enumerate(idx.tolist()):
            text = "".join(chr(i) for i in row if i < 127)
            prompt_end = text.index("### Response:\n") + len("### Response:\n")
            written = text[prompt_end:]
            reply = self.replies[text[:prompt_end]]
            nxt = ord(reply[len(written)]) if len(written) < len(reply) else (127 if self.stop else ord(" "))
            out[b, -1, nxt] = 50.0
        return out, None


def test_evaluation_scores_exact_format_and_stopping():
    replies = {EXAMPLES[0].prompt(): "4", EXAMPLES[1].prompt(): "ab", EXAMPLES[2].prompt(): "### oops"}
    report = evaluate_instructions(Scripted(replies), Chars(), EXAMPLES, max_new_tokens=20)
    assert report["responses"] == ["4", "ab", "### oops"]
    assert report["stopped"] == 1.0 and report["format"] == 2 / 3 and report["exact"] == 1 / 3
    assert report["tasks"]["arithmetic"] == {"exact": 1.0, "format": 1.0, "stopped": 1.0}
    assert report["tasks"]["copy"]["format"] == 0.0
    rambling = evaluate_instructions(Scripted(replies, stop=False), Chars(), EXAMPLES, max_new_tokens=20)
    assert rambling["stopped"] == 0.0 and rambling["exact"] == 0.0 and rambling["format"] == 0.0
    answers = generate_responses(Scripted(replies), Chars(), EXAMPLES[:1], max_new_tokens=1)
    assert answers == [("4", True)]  # one token of answer, then the end token: within a budget of one


def test_sft_script_on_two_steps(tmp_path, monkeypatch):
    import json

    from llmscratch import sft
    from llmscratch.scripts import sft_course
    from llmscratch.training import TrainConfig

    config = GPTConfig(vocab_size=128, context_length=96, d_model=16, n_layers=1, n_heads=2, position="rope")

    def tiny_course_model(verify=True):
        torch.manual_seed(0)
        return GPT(config).eval(), Chars()

    examples = {"train": EXAMPLES * 3, "val": EXAMPLES}
    g = torch.Generator().manual_seed(0)
    splits = {name: torch.randint(0, 127, (300,), generator=g) for name in ("train", "val", "test")}
    monkeypatch.setattr(sft_course, "load_course_model", tiny_course_model)
    monkeypatch.setattr(sft, "load_course_model", tiny_course_model)  # fine_tune_course_model
    monkeypatch.setattr(sft_course, "make_instructions", lambda text: examples)
    monkeypatch.setattr(sft_course, "load_text", lambda name: "")
    monkeypatch.setattr(sft_course, "shakespeare_bpe_splits", lambda: (None, splits, {}))
    monkeypatch.setattr(sft_course, "rung_loss", lambda model, splits: 1.5)
    monkeypatch.setattr(sft_course, "MAX_NEW_TOKENS", 4)
    monkeypatch.setattr(sft_course, "SFT_TRAIN", TrainConfig(steps=2, batch_size=2, warmup_steps=1, eval_interval=2,
                                                             eval_batches=1))
    out = tmp_path / "sft.json"
    assert sft_course.main(["--seeds", "1", "2", "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    masked, whole = result["rows"]
    assert masked["mask_prompt"] and not whole["mask_prompt"] and masked["seeds"] == [1, 2]
    assert len(masked["exact"]) == 2 and masked["shakespeare_val"] == [1.5, 1.5]
    assert result["course_model"]["stopped"] is not None and set(masked["shown"]) >= {"arithmetic", "copy"}
    saved = torch.load(out.with_suffix(".pt"), weights_only=True)
    model = GPT(GPTConfig(**saved["model_config"]))
    model.load_state_dict({k: v.float() for k, v in saved["model"].items()})


def test_the_committed_sft_run_and_model():
    import json

    from llmscratch.course import load_course_model
    from llmscratch.data import results_dir
    from llmscratch.sft import load_sft_model

    record = json.loads((results_dir() / "part5_sft.json").read_text())
    assert record["provenance"]["git_dirty"] is False
    assert [row["mask_prompt"] for row in record["rows"]] == [True, False]
    assert all(len(row["exact"]) == len(row["seeds"]) == 3 for row in record["rows"])
    tuned, tokenizer = load_sft_model()
    base, _ = load_course_model(verify=False)
    assert tuned.config == base.config and not tuned.training
    assert tokenizer.special_tokens[END] == tuned.config.vocab_size - 1
    assert any(not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), base.state_dict().values()))


def test_majority_answers_counts_each_exact_task_and_skips_the_rest():
    examples = [Example("count", "a", "1"), Example("count", "b", "2"), Example("count", "c", "2"),
                Example("arithmetic", "x", "4"), Example("continue", "y", "and so")]
    assert majority_answers(examples) == {"count": "2", "arithmetic": "4"}  # continue has no single right answer


def test_counting_bigram_counts_each_example_once_with_the_end_as_boundary():
    tok = Chars()
    end = tok.special_tokens[END]
    lm = counting_bigram(EXAMPLES, tok)
    table = CountingBigram.fit([tok.encode(e.text()[:-len(END)]) for e in EXAMPLES], tok.vocab_size, boundary_id=end)
    assert torch.equal(lm.log_probs, table.probabilities(1.0).log().float())
    # Every response ends with the end token: the pair (last response token, end) was counted.
    assert table.counts[tok.encode("4")[0], end] == 1 and table.counts[end, tok.encode("#")[0]] == len(EXAMPLES)


def test_round_to_float16_rounds_in_place_as_a_pt_file_stores_it():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=128, context_length=16, d_model=16, n_layers=1, n_heads=2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert round_to_float16(model) is model
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k].half().float())
    assert not torch.equal(model.lm_head.weight, before["lm_head.weight"])  # random weights did change


def test_fine_tune_course_model_is_seeded_and_masks_the_prompt(monkeypatch):
    from llmscratch import sft
    from llmscratch.training import TrainConfig

    config = GPTConfig(vocab_size=128, context_length=96, d_model=16, n_layers=1, n_heads=2, position="rope")
    monkeypatch.setattr(sft, "load_course_model", lambda verify=True: (GPT(config), Chars()))  # a fresh init each call
    cfg = TrainConfig(steps=3, batch_size=2, warmup_steps=1, eval_interval=3, eval_batches=1, seed=5)
    data = {"train": EXAMPLES * 2, "val": EXAMPLES}
    torch.manual_seed(0)
    a = fine_tune_course_model(data, cfg)
    torch.manual_seed(0)
    b = fine_tune_course_model(data, cfg)
    torch.manual_seed(0)
    whole = fine_tune_course_model(data, cfg, mask_prompt=False)
    assert not a.model.training and a.seconds > 0 and a.history.eval_step == [0, 3]
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())  # same run
    assert not torch.equal(a.model.lm_head.weight, whole.model.lm_head.weight)  # the prompt's loss counts
