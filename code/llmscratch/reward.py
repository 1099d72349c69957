"""Reward models and preference training: a GPT with a scalar head, the Bradley–Terry loss, and DPO's trainer.

    batches = PairBatches(make_pairs(splits), tokenizer, context_length=256)   # (x, y) like every batcher
    rm = RewardModel(sft_model, trainable_blocks=2)
    train(rm, batches, TrainConfig(...))            # the ordinary loop: forward(x, y) -> (rewards, loss)
    dpo = DPOModel(policy, reference, beta=0.1)
    train(dpo, batches, TrainConfig(...))

**Batches of pairs** (`PairBatches`). Each batch of B pairs is one (2B, T) tensor `x`: the B
chosen texts (prompt, response, end-of-text token), then the B rejected ones, right-padded with
the end token; `y` (2B, T) is 1 at each response's tokens (its end token included) and 0 on the
prompt and the padding. The course's `train` loop then trains a reward model or DPO unchanged.

**A reward model** reads a whole text and returns one number. `RewardModel` is a GPT whose last
hidden state, at the text's final token (its end token), goes through a linear head to a
scalar. It starts from a language model (the instruction-tuned one, as in Ouyang et al.), which
already represents the text; only the top `trainable_blocks` blocks, the final norm and the head
are trained, so the reward model is small to store. The **Bradley–Terry** model says people
prefer A to B with probability σ(r(A) − r(B)); fitting it to preference pairs is minimising
−log σ(r(chosen) − r(rejected)) (`bradley_terry_loss`). Only differences of rewards mean
anything: adding a constant to every reward changes no probability.

**DPO** (`DPOModel`) skips the reward model: its loss (`preferences.dpo_loss`) trains the policy
on the pairs directly, against a frozen reference, the model DPO starts from. Both run without
dropout, so that the log-ratio of the two compares like with like.

Left out: the PPO loop that would use a reward model to train a policy (the chapter explains
it), reward-model ensembles, and margins in the loss.

References: Bradley & Terry, "Rank Analysis of Incomplete Block Designs" (Biometrika 1952);
Ouyang et al., "Training language models to follow instructions with human feedback" (NeurIPS
2022); Rafailov et al., "Direct Preference Optimization" (NeurIPS 2023).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .instructions import END
from .model import GPT
from .pairs import Pair
from .preferences import dpo_loss, response_logprobs

__all__ = ["DPOModel", "PairBatches", "RewardModel", "bradley_terry_loss", "encode_pair_texts", "load_dpo_model",
           "load_reward_model", "score_pairs"]


def encode_pair_texts(pair: Pair, tokenizer: Any, context_length: int) -> list[tuple[list[int], int]]:
    """``[(ids, prompt_length)]`` of the chosen and the rejected text.

    Raises ValueError for a text longer than `context_length` tokens.
    """
    end_id = tokenizer.special_tokens[END]
    prompt = tokenizer.encode(pair.prompt())
    out = []
    for response in (pair.chosen, pair.rejected):
        ids = prompt + tokenizer.encode(response) + [end_id]
        if len(ids) > context_length:
            raise ValueError(f"a {pair.kind!r} pair's text is {len(ids)} tokens, longer than the context of "
                             f"{context_length}")
        out.append((ids, len(prompt)))
    return out


def _stack(rows: Sequence[tuple[list[int], int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids, _ in rows)
    x = torch.full((len(rows), width), pad_id, dtype=torch.long)
    y = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, prompt_length) in enumerate(rows):
        x[i, : len(ids)] = torch.tensor(ids)
        y[i, prompt_length: len(ids)] = 1  # the response and its end token
    return x, y


class PairBatches:
    """Random batches of preference pairs per split: ``batches(split, B, generator) -> (x, y)``, both (2B, T).

    Rows 0..B-1 of `x` are the chosen texts, rows B..2B-1 the rejected ones of the same pairs;
    `y` marks the response tokens (see the module). `batch(pairs)` stacks given pairs in order.
    """

    def __init__(self, splits: Mapping[str, Sequence[Pair]], tokenizer: Any, context_length: int) -> None:
        if END not in getattr(tokenizer, "special_tokens", {}):
            raise ValueError(f"the tokenizer has no {END} token")
        self.tokenizer, self.context_length = tokenizer, context_length
        self.end_id = tokenizer.special_tokens[END]
        self.splits: dict[str, list[list[tuple[list[int], int]]]] = {}
        for name, pairs in splits.items():
            if not pairs:
                raise ValueError(f"split {name!r} has no pairs")
            self.splits[name] = [encode_pair_texts(p, tokenizer, context_length) for p in pairs]

    def _rows(self, encoded: Sequence[list[tuple[list[int], int]]]) -> tuple[torch.Tensor, torch.Tensor]:
        return _stack([e[0] for e in encoded] + [e[1] for e in encoded], self.end_id)

    def __call__(self, split: str, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in self.splits:
            raise KeyError(f"no split {split!r}; have {sorted(self.splits)}")
        pool = self.splits[split]
        picks = torch.randint(len(pool), (batch_size,), generator=generator).tolist()
        return self._rows([pool[i] for i in picks])

    def batch(self, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        """The given pairs as one (x, y), in order."""
        return self._rows([encode_pair_texts(p, self.tokenizer, self.context_length) for p in pairs])


def _halves(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if t.shape[0] % 2:
        raise ValueError(f"a batch of pairs has an even number of rows (chosen, then rejected), got {t.shape[0]}")
    half = t.shape[0] // 2
    return t[:half], t[half:]


def bradley_terry_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    """−log σ(r_chosen − r_rejected), averaged over the pairs: the Bradley–Terry model's negative log-likelihood.

    >>> round(bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0])).item(), 4)  # (0.1269 + 0.6931) / 2
    0.41
    """
    if chosen_rewards.shape != rejected_rewards.shape:
        raise ValueError(f"chosen and rejected rewards differ in shape: {tuple(chosen_rewards.shape)} and "
                         f"{tuple(rejected_rewards.shape)}")
    return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()


class RewardModel(nn.Module):
    """A GPT trunk and a linear head: ``rewards(x, y)`` is one number per text, read at its last response token.

    A deep copy of `model` is taken; its embeddings and all but the top `trainable_blocks`
    blocks are frozen. ``forward(x, y)`` returns ``(rewards (2B,), Bradley–Terry loss)``.
    """

    def __init__(self, model: GPT, trainable_blocks: int = 2) -> None:
        super().__init__()
        if not isinstance(model, GPT):
            raise TypeError(f"model must be a GPT, got {type(model).__name__}")
        if not 0 <= trainable_blocks <= model.config.n_layers:
            raise ValueError(f"trainable_blocks must be 0 to {model.config.n_layers}, got {trainable_blocks}")
        self.gpt = copy.deepcopy(model)
        self.trainable_blocks = trainable_blocks
        for p in self.gpt.parameters():
            p.requires_grad_(False)
        for block in self.gpt.blocks[len(self.gpt.blocks) - trainable_blocks:]:
            block.requires_grad_(True)
        self.gpt.final_norm.requires_grad_(True)
        self.head = nn.Linear(model.config.d_model, 1)
        nn.init.zeros_(self.head.weight)  # every reward starts at 0: no preference before training
        nn.init.zeros_(self.head.bias)

    def rewards(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The reward of each row of `x` (N,), from the hidden state at the row's last response token (`y` == 1)."""
        if x.shape != y.shape or x.ndim != 2:
            raise ValueError(f"x and y must both be (rows, length), got {tuple(x.shape)} and {tuple(y.shape)}")
        if not bool((y.sum(dim=1) > 0).all()):
            raise ValueError("every row needs at least one response token (y == 1)")
        g = self.gpt
        h = g.embed(x)  # (N, T, d)
        for block in g.blocks:
            h = block(h)  # (N, T, d); causal, so the padding after a row's end changes nothing before it
        h = g.final_norm(h)
        last = y.shape[1] - 1 - y.flip(1).argmax(dim=1)  # (N,) index of each row's last 1
        return self.head(h[torch.arange(len(x)), last]).squeeze(-1)  # (N,)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.rewards(x, y)
        chosen, rejected = _halves(r)
        return r, bradley_terry_loss(chosen, rejected)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The weights that training changes (the top blocks, the final norm, the head): what a file needs to keep."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k in names}


class DPOModel(nn.Module):
    """A policy trained with DPO against a frozen reference: ``forward(x, y) -> (implicit rewards (2B,), loss)``.

    `policy` is trained in place; the reference is a frozen copy of `reference` (default: of the
    policy as it starts). Dropout stays off in both (``train()`` keeps them in evaluation mode).
    """

    def __init__(self, policy: GPT, beta: float, reference: GPT | None = None) -> None:
        super().__init__()
        dpo_loss(torch.zeros(1), torch.zeros(1), torch.zeros(1), torch.zeros(1), beta)  # refuses beta <= 0
        self.policy, self.beta = policy, beta
        self.reference = copy.deepcopy(reference if reference is not None else policy)
        self.reference.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> DPOModel:
        super().train(mode)
        self.policy.eval()
        self.reference.eval()
        return self

    def logps(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed response log-probabilities of each row under the policy and under the reference: (N,), (N,)."""
        mask = y.bool()
        with torch.no_grad():
            ref = response_logprobs(self.reference, x, mask)
        return response_logprobs(self.policy, x, mask), ref

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        policy, ref = self.logps(x, y)
        (pc, pr), (rc, rr) = _halves(policy), _halves(ref)
        loss, chosen, rejected = dpo_loss(pc, pr, rc, rr, self.beta)
        return torch.cat([chosen, rejected]), loss


@torch.no_grad()
def score_pairs(model: nn.Module, batches: PairBatches, pairs: Sequence[Pair], batch_size: int = 32) -> torch.Tensor:
    """Each pair's (chosen, rejected) score under `model` (a `RewardModel`'s rewards, a `DPOModel`'s implicit
    rewards): (len(pairs), 2), in evaluation mode."""
    was = model.training
    model.eval()
    out = []
    for i in range(0, len(pairs), batch_size):
        x, y = batches.batch(pairs[i: i + batch_size])
        scores, _ = model(x, y)
        out.append(torch.stack(_halves(scores), dim=1))
    model.train(was)
    return torch.cat(out)


def load_dpo_model() -> tuple[GPT, Any]:
    """The committed DPO model (``data/part5_dpo.pt``: the main β, seed 42) and the course tokenizer; CPU, float32."""
    from .sft import load_tuned_model

    return load_tuned_model("part5_dpo.pt", "dpo_course")


def load_reward_model() -> RewardModel:
    """The committed reward model: ``data/part5_reward.pt`` (its trained top, float16 on disk) on the instruction-tuned
    model. CPU, float32, evaluation mode; raises `FileNotFoundError` naming the command that makes it."""
    from .data import results_dir
    from .sft import load_sft_model

    path = results_dir() / "part5_reward.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run python -m llmscratch.scripts.reward_model")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    rm = RewardModel(load_sft_model()[0], saved["trainable_blocks"])
    missing = set(rm.trainable_state()) - set(saved["weights"])
    if missing:
        raise ValueError(f"{path} lacks {sorted(missing)[:3]}...: it was made for another reward model")
    rm.load_state_dict({k: v.float() for k, v in saved["weights"].items()}, strict=False)
    return rm.eval()
