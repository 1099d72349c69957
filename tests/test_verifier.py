"""llmscratch.verifier: sampled groups, the verifier's rewards, and GRPO's update."""

import pytest
import torch
from chartok import Chars

from llmscratch import GPT, GPTConfig
from llmscratch.instructions import END, Example
from llmscratch.verifier import GRPOConfig, grpo_step, sample_group, train_grpo, verify

pytestmark = pytest.mark.usefixtures("one_thread")


EXAMPLES = [Example("copy", "Copy exactly: a", "a"), Example("arithmetic", "What is 1 + 1?", "2")]


def tiny(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=128, context_length=64, d_model=16, n_layers=1, n_heads=2, dropout=0.0))


def test_verify_needs_the_exact_answer_and_a_stop():
    e = EXAMPLES[1]
    assert verify("2", True, e) == 1.0 and verify(" 2 ", True, e) == 1.0
    assert verify("2", False, e) == 0.0 and verify("3", True, e) == 0.0


def test_sample_group_rows_masks_and_rewards():
    cfg = GRPOConfig(group_size=3, max_new_tokens=4)
    ids, mask, rewards, texts = sample_group(tiny(), Chars(), EXAMPLES, cfg, torch.Generator().manual_seed(0))
    assert ids.shape[0] == mask.shape[0] == 6 and rewards.shape == (2, 3) and len(texts) == 6
    for row in range(6):
        example = EXAMPLES[row // 3]
        prompt = Chars().encode(example.prompt())
        assert ids[row, : len(prompt)].tolist() == prompt and not mask[row, : len(prompt)].any()
        answer = ids[row][mask[row]].tolist()
        stopped = answer[-1] == 127 and len(answer) <= 4
        assert Chars().decode([t for t in answer if t != 127]) == texts[row].replace(END, "")
        assert rewards[row // 3, row % 3] == verify(texts[row], stopped, example)
    with pytest.raises(ValueError, match="one right answer"):
        sample_group(tiny(), Chars(), [Example("continue", "Go on", "x")], cfg, torch.Generator())


def test_a_group_that_all_succeeds_teaches_nothing(monkeypatch):
    from llmscratch import verifier

    real = verifier.sample_group

    def all_right(*args):
        ids, mask, rewards, texts = real(*args)
        return ids, mask, torch.ones_like(rewards), texts

    monkeypatch.setattr(verifier, "sample_group", all_right)
    policy = tiny()
    cfg = GRPOConfig(group_size=4, max_new_tokens=4, learning_rate=1e-2)
    before = [p.detach().clone() for p in policy.parameters()]
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.learning_rate, weight_decay=0.0)
    stats = grpo_step(policy, tiny(), optimizer, Chars(), EXAMPLES, cfg, torch.Generator().manual_seed(0))
    assert stats["reward"] == 1.0 and stats["informative"] == 0.0
    # Advantages all 0, and the policy equals the reference: no gradient, no change.
    assert all(torch.equal(a, b) for a, b in zip(before, policy.parameters()))
    # One right answer in a group: now the weights move.
    def one_right(*args):
        ids, mask, _, texts = real(*args)
        return ids, mask, torch.eye(2, 4), texts  # each prompt's first answer right, the rest wrong

    monkeypatch.setattr(verifier, "sample_group", one_right)
    stats = grpo_step(policy, tiny(), optimizer, Chars(), EXAMPLES, cfg, torch.Generator().manual_seed(0))
    assert stats["informative"] == 1.0
    assert not all(torch.equal(a, b) for a, b in zip(before, policy.parameters()))


def test_train_grpo_moves_the_policy_not_the_reference_and_records_history():
    policy, start = tiny(), tiny()
    examples = [Example("copy", f"Copy exactly: {c}", c) for c in "abcdefgh"]
    cfg = GRPOConfig(steps=3, prompts_per_step=2, group_size=4, max_new_tokens=3, learning_rate=1e-2, seed=1)
    seen = []
    history = train_grpo(policy, Chars(), examples, cfg, progress=False, on_step=lambda step, m: seen.append(step))
    assert seen == [1, 2, 3] and all(len(v) == 3 for v in history.values())
    assert all(0.0 <= r <= 1.0 for r in history["reward"]) and history["kl"][0] == 0.0
    # Random models rarely answer right: whether the weights moved depends on the draws, so run again the same way.
    again = tiny()
    assert train_grpo(again, Chars(), examples, cfg, progress=False)["reward"] == history["reward"]
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), policy.parameters()))
    with pytest.raises(ValueError, match="group_size"):
        GRPOConfig(group_size=1)
    with pytest.raises(ValueError, match="no examples"):
        train_grpo(start, Chars(), [Example("continue", "Go on", "x")], cfg, progress=False)


def test_step_counts_the_tokens_of_the_sampled_rows(monkeypatch):
    from llmscratch import verifier

    real = verifier.sample_group
    seen = {}

    def spy(*args):
        out = real(*args)
        seen["ids"], seen["mask"] = out[0], out[1]
        return out

    monkeypatch.setattr(verifier, "sample_group", spy)
    policy = tiny()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    stats = grpo_step(policy, tiny(), optimizer, Chars(), EXAMPLES, GRPOConfig(group_size=3, max_new_tokens=4),
                      torch.Generator().manual_seed(0))
    lengths = [int(row.nonzero().max()) + 1 for row in seen["mask"]]  # each row's prompt and answer
    assert stats["tokens"] == sum(lengths)


def test_grpo_script_on_two_steps(tmp_path, monkeypatch):
    import json

    from llmscratch.scripts import grpo_course

    examples = [Example("copy", f"Copy exactly: {c}", c) for c in "abcdefgh"]
    monkeypatch.setattr(grpo_course, "load_sft_model", lambda: (tiny(), Chars()))
    monkeypatch.setattr(grpo_course, "make_instructions", lambda text: {"train": examples, "val": examples[:3]})
    monkeypatch.setattr(grpo_course, "load_text", lambda name: "")
    monkeypatch.setattr(grpo_course, "EVAL_EVERY", 1)
    monkeypatch.setattr(grpo_course, "GRPO", GRPOConfig(steps=2, prompts_per_step=2, group_size=2, max_new_tokens=3))
    out = tmp_path / "grpo.json"
    assert grpo_course.main(["--seeds", "1", "2", "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert [r["seed"] for r in result["runs"]] == [1, 2]
    run = result["runs"][0]
    assert [e["step"] for e in run["evals"]] == [0, 1, 2] and len(run["history"]["tokens"]) == 2
    assert set(run["evals"][0]) == {"step", "greedy", "sampled", "greedy_tasks", "sampled_tasks"}
