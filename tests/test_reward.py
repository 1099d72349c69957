"""llmscratch.pairs and llmscratch.reward: preference pairs, batches of them, the reward model and DPO's trainer."""

import math
import random

import pytest
import torch
from chartok import Chars
from test_instructions import play  # the same small play

from llmscratch import GPT, GPTConfig
from llmscratch.instructions import END, Example, make_instructions
from llmscratch.pairs import KINDS, make_pairs, spoil
from llmscratch.preferences import dpo_loss, response_logprobs
from llmscratch.reward import DPOModel, PairBatches, RewardModel, bradley_terry_loss, score_pairs
from llmscratch.training import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")




@pytest.fixture(scope="module")
def splits():
    return make_instructions(play(), n_train=180, n_val=90, seed=0)


def test_pairs_are_deterministic_balanced_and_spoiled_as_their_kind(splits):
    pairs = make_pairs(splits, seed=0)
    assert pairs == make_pairs(splits, seed=0) and pairs != make_pairs(splits, seed=1)
    assert len(pairs["train"]) == 180 and len(pairs["val"]) == 90  # every example gives one pair
    counts = {k: sum(p.kind == k for p in pairs["train"]) for k in KINDS}
    assert min(counts.values()) >= 30, counts
    for p in pairs["train"] + pairs["val"]:
        assert p.chosen != p.rejected
        answer = p.example.response
        if p.kind == "correct":
            assert p.chosen == answer and p.rejected != answer
        elif p.kind == "complete":
            assert p.chosen == answer and answer.startswith(p.rejected) and len(p.rejected) < len(answer)
        elif p.kind == "format":
            assert p.rejected.startswith(answer + "\n\n### Instruction:\n")
        else:
            assert answer in p.chosen and answer in p.rejected
    # The polite pairs' phrases differ between the splits.
    tone = {s: {p.rejected.replace(p.example.response, "") for p in pairs[s] if p.kind == "polite"} for s in pairs}
    assert tone["train"] and tone["val"] and not tone["train"] & tone["val"]


def test_spoil_refuses_what_it_cannot_do():
    rng = random.Random(0)
    one = Example("count", "How many?", "2")
    assert spoil(one, "complete", rng, [one], [one]) is None  # a one-letter answer has no truncation
    assert spoil(Example("continue", "Go on", "a b c"), "correct", rng, [], []) is None
    with pytest.raises(ValueError, match="unknown kind"):
        spoil(one, "nice", rng, [one], [one])
    with pytest.raises(ValueError, match="kinds"):
        make_pairs({"train": [one]}, kinds=["nice"])


def test_pair_batches_put_chosen_then_rejected_and_mark_responses(splits):
    pairs = make_pairs(splits)["train"][:5]
    batches = PairBatches({"train": pairs}, Chars(), context_length=512)
    x, y = batches.batch(pairs)
    assert x.shape == (10, x.shape[1]) and y.shape == x.shape
    for i, p in enumerate(pairs):
        for row, response in ((i, p.chosen), (i + 5, p.rejected)):
            marked = x[row][y[row] == 1].tolist()
            assert marked == Chars().encode(response) + [127]
            assert x[row, : len(p.prompt())].tolist() == Chars().encode(p.prompt())
    with pytest.raises(ValueError, match="longer than the context"):
        PairBatches({"train": pairs}, Chars(), context_length=20)


def test_bradley_terry_by_hand():
    loss = bradley_terry_loss(torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0]))
    want = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(2.0))) / 2
    assert abs(loss.item() - want) < 1e-6
    shifted = bradley_terry_loss(torch.tensor([11.0, 9.0]), torch.tensor([10.0, 11.0]))
    assert abs(shifted.item() - want) < 1e-6  # only differences of rewards count


def tiny_gpt(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=128, context_length=512, d_model=32, n_layers=2, n_heads=2, dropout=0.0))


def test_reward_reads_the_last_response_token_and_ignores_padding(splits):
    rm = RewardModel(tiny_gpt(), trainable_blocks=1)
    torch.nn.init.normal_(rm.head.weight)
    pairs = make_pairs(splits)["train"][:4]
    batches = PairBatches({"train": pairs}, Chars(), context_length=512)
    x, y = batches.batch(pairs)
    together = rm.rewards(x, y)
    for i in range(len(x)):
        n = int(y[i].nonzero().max()) + 1
        alone = rm.rewards(x[i: i + 1, :n], y[i: i + 1, :n])
        torch.testing.assert_close(alone, together[i: i + 1], atol=1e-5, rtol=1e-5)


def test_reward_model_freezes_the_trunk_and_learns_the_pairs(splits):
    base = tiny_gpt()
    rm = RewardModel(base, trainable_blocks=1)
    trainable = {n for n, p in rm.named_parameters() if p.requires_grad}
    assert trainable == set(rm.trainable_state()) and all(n.startswith(("gpt.blocks.1.", "gpt.final_norm", "head"))
                                                          for n in trainable)
    frozen = {n: p.detach().clone() for n, p in rm.named_parameters() if not p.requires_grad}
    pairs = make_pairs(splits, kinds=["format"])  # an easy kind: the rejected text runs on
    batches = PairBatches(pairs, Chars(), context_length=512)
    before = score_pairs(rm, batches, pairs["val"])
    assert (before == 0).all()  # a zero head: no preference yet
    train(rm, batches, TrainConfig(steps=40, batch_size=8, learning_rate=3e-3, warmup_steps=0, eval_interval=40,
                                   eval_batches=1, seed=0), progress=False)
    after = score_pairs(rm, batches, pairs["val"])
    assert (after[:, 0] > after[:, 1]).float().mean() > 0.9
    assert all(torch.equal(p, frozen[n]) for n, p in rm.named_parameters() if n in frozen)
    assert all(torch.equal(p, q) for p, q in zip(base.parameters(), tiny_gpt().parameters()))  # a copy was trained
    with pytest.raises(ValueError, match="trainable_blocks"):
        RewardModel(base, trainable_blocks=3)


def test_dpo_model_loss_equals_the_function_on_response_logprobs(splits):
    policy, reference = tiny_gpt(0), tiny_gpt(1)
    dpo = DPOModel(policy, beta=0.3, reference=reference)
    pairs = make_pairs(splits)["train"][:3]
    batches = PairBatches({"train": pairs}, Chars(), context_length=512)
    x, y = batches.batch(pairs)
    rewards, loss = dpo(x, y)
    with torch.no_grad():
        lp, lr = response_logprobs(policy, x, y.bool()), response_logprobs(reference, x, y.bool())
    want, chosen, rejected = dpo_loss(lp[:3], lp[3:], lr[:3], lr[3:], 0.3)
    torch.testing.assert_close(loss, want)
    torch.testing.assert_close(rewards, torch.cat([chosen, rejected]))
    assert not any(p.requires_grad for p in dpo.reference.parameters())
    dpo.train()
    assert not dpo.policy.training and not dpo.reference.training  # no dropout in either
    same = DPOModel(tiny_gpt(0), beta=0.3)  # the reference defaults to the policy's start: loss log 2
    assert abs(same(x, y)[1].item() - math.log(2)) < 1e-5
    with pytest.raises(ValueError, match="beta"):
        DPOModel(policy, beta=0.0)


def _tiny_sft(monkeypatch, module, splits):
    """Point a Part 5 script at a tiny model, the small play's examples, and no corpus."""
    config = GPTConfig(vocab_size=128, context_length=512, d_model=16, n_layers=2, n_heads=2, position="rope")

    def tiny_sft_model():
        torch.manual_seed(0)
        return GPT(config).eval(), Chars()

    small = {name: v[:27] for name, v in splits.items()}
    monkeypatch.setattr(module, "load_sft_model", tiny_sft_model)
    monkeypatch.setattr(module, "make_instructions", lambda text: small)
    monkeypatch.setattr(module, "load_text", lambda name: "")


def test_reward_script_on_two_steps(tmp_path, monkeypatch, splits):
    import json

    from llmscratch.scripts import reward_model

    _tiny_sft(monkeypatch, reward_model, splits)
    monkeypatch.setattr(reward_model, "RM_TRAIN", TrainConfig(steps=2, batch_size=2, warmup_steps=1, eval_interval=2,
                                                              eval_batches=1))
    out = tmp_path / "rm.json"
    assert reward_model.main(["--seeds", "1", "2", "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    full, ablation = result["rows"]
    assert full["kinds"] == list(KINDS) and "format" not in ablation["kinds"] and full["seeds"] == [1, 2]
    assert len(full["accuracy"]) == 2 and set(full["accuracy"][0]) == {"all", *KINDS}
    n = len(result["held_out"]["kinds"])
    assert len(full["rewards"]) == n == len(result["held_out"]["lengths"]) == 27
    assert set(result["baselines"]) == {"longer is better", "instruction-tuned model, mean log-probability per token",
                                        "counting bigram of the chosen texts, mean log-probability per token"}
    saved = torch.load(out.with_suffix(".pt"), weights_only=True)
    assert saved["trainable_blocks"] == reward_model.TRAINABLE_BLOCKS
    rm = RewardModel(GPT(GPTConfig(vocab_size=128, context_length=512, d_model=16, n_layers=2, n_heads=2,
                                   position="rope")), saved["trainable_blocks"])
    assert set(saved["weights"]) == set(rm.trainable_state())


def test_dpo_script_on_two_steps(tmp_path, monkeypatch, splits):
    import json

    from llmscratch.scripts import dpo_course

    _tiny_sft(monkeypatch, dpo_course, splits)
    g = torch.Generator().manual_seed(0)
    corpus = {name: torch.randint(0, 127, (300,), generator=g) for name in ("train", "val", "test")}
    monkeypatch.setattr(dpo_course, "shakespeare_bpe_splits", lambda: (None, corpus, {}))
    monkeypatch.setattr(dpo_course, "rung_loss", lambda model, splits: 1.5)
    monkeypatch.setattr(dpo_course, "MAX_NEW_TOKENS", 4)
    monkeypatch.setattr(dpo_course, "DPO_TRAIN", TrainConfig(steps=2, batch_size=2, warmup_steps=1, eval_interval=2,
                                                             eval_batches=1))
    out = tmp_path / "dpo.json"
    assert dpo_course.main(["--seeds", "1", "2", "--betas", "0.1", "0.5", "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    runs = [(r["method"], r["beta"], r["seed"]) for r in result["runs"]]
    assert runs == [("dpo", 0.1, 1), ("dpo", 0.5, 1), ("dpo", 0.1, 2), ("sft", 0.1, 1), ("sft", 0.1, 2)]
    assert result["sft_model"]["kl"] == 0.0 and result["sft_model"]["margin"] == 0.0
    assert all(r["kl"] > 0 and set(r["preference"]) == {"all", *KINDS} for r in result["runs"])
    assert all("weights" not in r for r in result["runs"])
    saved = torch.load(out.with_suffix(".pt"), weights_only=True)
    model = GPT(GPTConfig(**saved["model_config"]))
    model.load_state_dict({k: v.float() for k, v in saved["model"].items()})


def test_the_committed_reward_and_dpo_runs_and_models():
    import json

    from llmscratch.data import results_dir
    from llmscratch.reward import load_dpo_model, load_reward_model
    from llmscratch.sft import load_sft_model

    reward = json.loads((results_dir() / "part5_reward.json").read_text())
    dpo = json.loads((results_dir() / "part5_dpo.json").read_text())
    for record in (reward, dpo):
        assert record["provenance"]["git_dirty"] is False
    assert [len(row["accuracy"]) for row in reward["rows"]] == [3, 3]
    assert sum(r["method"] == "dpo" and r["beta"] == dpo["main_beta"] for r in dpo["runs"]) == 3
    assert sum(r["method"] == "sft" for r in dpo["runs"]) == 3
    sft, _ = load_sft_model()
    rm = load_reward_model()
    assert not rm.training and rm.trainable_blocks == reward["trainable_blocks"]
    tuned, tokenizer = load_dpo_model()
    assert tuned.config == sft.config and tokenizer.special_tokens[END] == sft.config.vocab_size - 1
    assert any(not torch.equal(a, b) for a, b in zip(tuned.parameters(), sft.parameters()))
