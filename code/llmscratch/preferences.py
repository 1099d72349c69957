"""Learning from preferences and from a verifier: response log-probabilities, the DPO loss, and GRPO's advantages.

    chosen, rejected = response_logprobs(policy, ids_c, mask_c), response_logprobs(policy, ids_r, mask_r)
    loss, chosen_rewards, rejected_rewards = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=0.1)

**Response log-probabilities** (`response_logprobs`): the sum, over the tokens of a response only,
of log p(token | everything before it). The prompt's tokens are context, not something the model
is judged on, so a mask picks the response.

**DPO** (Rafailov et al., 2023) trains the policy directly on preference pairs, with a frozen
copy of the starting model as the reference. A response's *implicit reward* is
β · (log π(y | x) − log π_ref(y | x)), how much more likely the policy makes it than the reference
did; the loss is −log σ(reward of the chosen − reward of the rejected), averaged over pairs, as
in the paper's reference implementation. β sets how far from the reference the policy may go:
small β, large steps in log-probability for the same loss.

**GRPO's advantages** (Shao et al., 2024): sample a group of answers to one prompt, score each
with a verifier (1 right, 0 wrong), and use each reward minus the group's mean, divided by the
group's standard deviation, as that answer's advantage. No value network is needed: the group is
the baseline. A group whose answers all score the same teaches nothing (all advantages are 0).

Left out: PPO's clipped ratio and value network (GRPO's loss here is the plain policy gradient
with a KL penalty, one update per batch of samples), and DPO's variants (IPO, KTO).

References: Rafailov et al., "Direct Preference Optimization" (NeurIPS 2023); Shao et al.,
"DeepSeekMath" (2024) for GRPO; Schulman et al., "Approximating KL Divergence" (2020) for the k3
estimator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["dpo_loss", "grpo_advantages", "grpo_loss", "response_kl", "response_logprobs", "token_logprobs"]


def token_logprobs(model: torch.nn.Module, ids: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Each response token's log-probability, 0 elsewhere: (B, T), aligned with `ids`.

    `ids` (B, T) are prompt and response token ids; `response_mask` (B, T) is True at the
    response's tokens (padding and prompt False). Token t is scored from position t − 1, so the
    first token of a sequence is never scored, and column 0 is always 0.
    """
    if ids.shape != response_mask.shape or ids.ndim != 2:
        raise ValueError(f"ids and response_mask must both be (batch, length), got {tuple(ids.shape)} and "
                         f"{tuple(response_mask.shape)}")
    if response_mask.dtype != torch.bool:
        raise TypeError(f"response_mask must be boolean, got {response_mask.dtype}")
    if bool(response_mask[:, 0].any()):
        raise ValueError("the first token cannot be part of a response: nothing comes before it to predict it from")
    logits, _ = model(ids)  # (B, T, V)
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)  # (B, T-1)
    return F.pad(logp * response_mask[:, 1:], (1, 0))  # (B, T): token t's log-probability in column t


def response_logprobs(model: torch.nn.Module, ids: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Summed log-probabilities of the response tokens of each sequence: (B,). See `token_logprobs`."""
    return token_logprobs(model, ids, response_mask).sum(dim=-1)


@torch.no_grad()
def response_kl(policy: torch.nn.Module, reference: torch.nn.Module, ids: torch.Tensor,
                response_mask: torch.Tensor) -> float:
    """KL(π ‖ π_ref) of the next-token distributions, exact over the vocabulary, averaged over the response tokens.

    At every position that predicts a response token (as in `response_logprobs`), the two
    models' whole distributions are compared: Σ_v π(v) (log π(v) − log π_ref(v)). How far the
    policy has moved from the reference on these texts, in nats per token; 0 when they are equal.
    """
    if ids.shape != response_mask.shape or ids.ndim != 2:
        raise ValueError(f"ids and response_mask must both be (batch, length), got {tuple(ids.shape)} and "
                         f"{tuple(response_mask.shape)}")
    logp = F.log_softmax(policy(ids)[0][:, :-1].float(), dim=-1)  # (B, T-1, V)
    logq = F.log_softmax(reference(ids)[0][:, :-1].float(), dim=-1)
    kl = (logp.exp() * (logp - logq)).sum(dim=-1)  # (B, T-1)
    mask = response_mask[:, 1:].float()
    return float((kl * mask).sum() / mask.sum().clamp(min=1))


def dpo_loss(
    policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor, beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO loss averaged over the pairs, and each pair's implicit rewards (detached): (loss, chosen, rejected).

    All four inputs are (B,) summed response log-probabilities (`response_logprobs`).

    >>> t = torch.tensor
    >>> loss, c, r = dpo_loss(t([-1.0]), t([-3.0]), t([-2.0]), t([-2.0]), 0.5)
    >>> round(loss.item(), 4), c.tolist(), r.tolist()   # -log sigmoid(0.5 * ((-1 + 2) - (-3 + 2))) = -log sigmoid(1)
    (0.3133, [0.5], [-0.5])
    """
    if not isinstance(beta, (int, float)) or isinstance(beta, bool) or not beta > 0:
        raise ValueError(f"beta must be a positive number, got {beta!r}")
    logps = (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    shapes = {tuple(t.shape) for t in logps}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"the four log-probabilities must be (batch,) tensors of one shape, got {sorted(shapes)}")
    chosen_logratio = policy_chosen_logps - ref_chosen_logps
    rejected_logratio = policy_rejected_logps - ref_rejected_logps
    losses = -F.logsigmoid(beta * (chosen_logratio - rejected_logratio))  # (B,)
    return losses.mean(), beta * chosen_logratio.detach(), beta * rejected_logratio.detach()


def grpo_advantages(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Group-relative advantages: each reward minus its group's mean, over the group's standard deviation.

    `rewards` is (prompts, group_size). The standard deviation is the population one (divide by
    the group size); a group whose rewards are all equal (a spread below `eps`) gets advantages of 0.

    >>> grpo_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])).tolist()
    [[1.0, -1.0, -1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    """
    if rewards.ndim != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be (prompts, group_size >= 2), got {tuple(rewards.shape)}")
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, correction=0, keepdim=True)
    return torch.where(std > eps, centred / std.clamp(min=eps), torch.zeros_like(centred))


def grpo_loss(
    logps: torch.Tensor, advantages: torch.Tensor, ref_logps: torch.Tensor, token_mask: torch.Tensor, kl_weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The policy-gradient loss with a KL penalty to the reference, per token: (loss, mean KL).

    `logps` and `ref_logps` (N, T) are each sampled token's log-probability under the policy and
    the frozen reference, `advantages` (N,) one per sampled answer, `token_mask` (N, T) True at the
    answer's tokens. The loss is −advantage · log π(token) plus `kl_weight` times the k3 estimate
    of KL(π ‖ π_ref), exp(r) − r − 1 with r = log π_ref − log π (never negative), averaged over
    each answer's tokens, then over answers.
    """
    if kl_weight < 0:
        raise ValueError(f"kl_weight must be >= 0, got {kl_weight}")
    if logps.shape != ref_logps.shape or logps.shape != token_mask.shape or advantages.shape != logps.shape[:1]:
        raise ValueError("logps, ref_logps and token_mask must be (N, T) and advantages (N,)")
    r = ref_logps - logps
    kl = torch.exp(r) - r - 1  # (N, T)
    per_token = -advantages[:, None] * logps + kl_weight * kl
    mask = token_mask.float()
    per_answer = (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    mean_kl = ((kl * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)).mean()
    return per_answer.mean(), mean_kl.detach()
