"""Learning from a verifier: sample a group of answers per prompt, reward the right ones, and take GRPO's step.

    cfg = GRPOConfig(steps=60, prompts_per_step=8, group_size=8)
    history = train_grpo(policy, tokenizer, train_examples, cfg)   # policy trained in place
    history["reward"]                                               # the share of right samples, per step

Where an answer can be checked exactly, the check is the reward: `verify` gives 1 to a sampled
answer that is exactly the expected one (and stopped at the end token) and 0 to anything else.
No reward model, nothing to hack but the check itself.

One step (`grpo_step`):

1. draw `prompts_per_step` training prompts and sample `group_size` answers to each from the
   policy, at `temperature`, at most `max_new_tokens` tokens;
2. score every answer with `verify`, and turn the scores into advantages relative to each prompt's
   group (`preferences.grpo_advantages`): a right answer among wrong ones gets a large positive
   advantage, a group that is all right or all wrong gets 0 and teaches nothing;
3. compute every sampled token's log-probability under the policy (with gradients) and under the
   frozen reference, and descend `preferences.grpo_loss`: the policy gradient, −advantage ·
   log π(token), plus `kl_weight` times an estimate of KL(π ‖ π_ref).

The policy samples in evaluation mode (no dropout) and is scored the same way, so that the
log-probabilities it is trained on are those of the distribution it sampled from.

Left out: PPO's ratio clipping and several updates per batch of samples (one update per batch
makes the ratio 1, where clipping does nothing), a value network, and partial credit.

References: Shao et al., "DeepSeekMath" (2024) for GRPO; Williams, "Simple statistical
gradient-following algorithms" (Machine Learning, 1992) for REINFORCE; DeepSeek-AI,
"DeepSeek-R1" (2025) for rewards from verifiers at scale.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .instructions import END, EXACT_TASKS, Example, exact_match
from .preferences import grpo_advantages, grpo_loss, token_logprobs
from .progress import progress_bar
from .sampling import generate_batch

__all__ = ["GRPOConfig", "grpo_step", "sample_group", "train_grpo", "verify"]


@dataclass(frozen=True)
class GRPOConfig:
    """One GRPO run. The defaults fit a CPU: a few hundred sampled answers per step."""

    steps: int = 60
    prompts_per_step: int = 8    # prompts per update
    group_size: int = 8          # answers sampled per prompt: the baseline each answer is judged against
    temperature: float = 1.0     # sampling as the model is, so that the group explores
    max_new_tokens: int = 12     # the exact tasks' answers are short; a longer answer is wrong anyway
    learning_rate: float = 1e-5  # small: every step pushes on a few sampled answers only
    kl_weight: float = 0.04      # DeepSeekMath's β for the KL penalty
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise ValueError(f"group_size must be at least 2 (advantages are relative to the group), "
                             f"got {self.group_size}")
        for name in ("steps", "prompts_per_step", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 to sample a group, got {self.temperature}")
        if self.kl_weight < 0 or not self.learning_rate > 0:
            raise ValueError("kl_weight must be >= 0 and learning_rate > 0")


def verify(answer: str, stopped: bool, example: Example) -> float:
    """1.0 when the answer stopped at the end token and is exactly the expected response, else 0.0."""
    return float(stopped and exact_match(answer, example))


def sample_group(policy: torch.nn.Module, tokenizer: Any, examples: Sequence[Example], cfg: GRPOConfig,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """Sample `cfg.group_size` answers to each example: ``(ids, answer_mask, rewards, texts)``.

    `ids` (N, T) is each prompt followed by one sampled answer (and its end token, if it stopped),
    right-padded with the end token, N = len(examples) · group_size, the answers to one prompt in
    consecutive rows; `answer_mask` (N, T) is True at the answer's tokens; `rewards`
    (len(examples), group_size) are `verify`'s scores; `texts` the decoded answers.
    """
    bad = [e.task for e in examples if e.task not in EXACT_TASKS]
    if bad:
        raise ValueError(f"a verifier needs tasks with one right answer; {bad[0]!r} is not one of {EXACT_TASKS}")
    end_id = tokenizer.special_tokens[END]
    prompts = [tokenizer.encode(e.prompt()) for e in examples for _ in range(cfg.group_size)]
    was = policy.training
    policy.eval()
    with torch.no_grad():
        answers = generate_batch(policy, prompts, cfg.max_new_tokens, temperature=cfg.temperature, stop_id=end_id,
                                 generator=generator, use_cache=True)
    policy.train(was)
    rows, texts, rewards = [], [], []
    for i, (prompt, answer) in enumerate(zip(prompts, answers)):
        stopped = len(answer) < cfg.max_new_tokens  # generate leaves the stop token out
        text = tokenizer.decode(answer)
        rows.append((prompt, answer + ([end_id] if stopped else [])))
        texts.append(text)
        rewards.append(verify(text, stopped, examples[i // cfg.group_size]))
    width = max(len(p) + len(a) for p, a in rows)
    ids = torch.full((len(rows), width), end_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (prompt, answer) in enumerate(rows):
        ids[i, : len(prompt) + len(answer)] = torch.tensor(prompt + answer)
        mask[i, len(prompt): len(prompt) + len(answer)] = True
    return ids, mask, torch.tensor(rewards).view(len(examples), cfg.group_size), texts


def grpo_step(policy: torch.nn.Module, reference: torch.nn.Module, optimizer: torch.optim.Optimizer, tokenizer: Any,
              examples: Sequence[Example], cfg: GRPOConfig, generator: torch.Generator) -> dict[str, float]:
    """One update on fresh samples (see the module): the mean reward, the loss, the KL estimate, the share
    of groups that had both right and wrong answers (the only ones with a gradient), and the number of
    tokens in the sampled rows (prompt and answer: each is run through the policy three times, to
    sample, to train, and through the reference)."""
    ids, mask, rewards, _ = sample_group(policy, tokenizer, examples, cfg, generator)
    advantages = grpo_advantages(rewards).flatten()  # (N,)
    was = policy.training
    policy.eval()  # no dropout: train on the distribution that was sampled
    with torch.no_grad():
        ref = token_logprobs(reference, ids, mask)
    logps = token_logprobs(policy, ids, mask)
    loss, kl = grpo_loss(logps, advantages, ref, mask, cfg.kl_weight)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
    optimizer.step()
    policy.train(was)
    spread = (rewards.max(dim=1).values > rewards.min(dim=1).values).float().mean()
    tokens = int((ids.shape[1] - mask.flip(1).int().argmax(dim=1)).sum())  # each row's last answer token + 1
    return {"reward": float(rewards.mean()), "loss": float(loss.detach()), "kl": float(kl),
            "informative": float(spread), "tokens": float(tokens)}


def train_grpo(policy: torch.nn.Module, tokenizer: Any, examples: Sequence[Example], cfg: GRPOConfig,
               reference: torch.nn.Module | None = None, progress: bool = True,
               on_step: Any = None) -> dict[str, list[float]]:
    """Train `policy` in place for ``cfg.steps`` GRPO steps on prompts drawn from `examples`; its history.

    The reference is a frozen copy of the policy as it starts, unless given. `on_step(step,
    policy)` is called after every update (to evaluate along the way). The history has one value
    per step of "reward", "loss", "kl", "informative", "tokens" (see `grpo_step`) and "seconds" (the wall
    time so far).
    """
    pool = [e for e in examples if e.task in EXACT_TASKS]
    if not pool:
        raise ValueError(f"no examples of the exact tasks {EXACT_TASKS}")
    reference = copy.deepcopy(reference if reference is not None else policy).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=cfg.learning_rate,
                                  weight_decay=0.0)
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    history: dict[str, list[float]] = {"reward": [], "loss": [], "kl": [], "informative": [], "tokens": [],
                                       "seconds": []}
    bar = progress_bar(cfg.steps, 0, "GRPO", enabled=progress)
    t0 = time.time()
    for step in range(1, cfg.steps + 1):
        picks = torch.randint(len(pool), (cfg.prompts_per_step,), generator=generator).tolist()
        stats = grpo_step(policy, reference, optimizer, tokenizer, [pool[i] for i in picks], cfg, generator)
        for key, value in stats.items():
            history[key].append(value)
        history["seconds"].append(time.time() - t0)
        bar.update(1)
        bar.set_postfix_str(f"reward {stats['reward']:.2f} kl {stats['kl']:.3f}", refresh=False)
        if on_step is not None:
            on_step(step, policy)
    bar.close()
    return history
