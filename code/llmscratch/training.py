"""A small training loop for any model whose ``forward(x, y)`` returns ``(logits, loss)``.

    history = train(model, batches, TrainConfig(steps=2000))

What it does, and nothing more: AdamW with a learning rate that warms up linearly and then
decays along a cosine; weight decay on matrices only; gradient clipping; gradient accumulation
(`accumulation_steps` micro-batches per update); mixed precision (`precision`, see
`llmscratch.runtime.autocast`); a periodic estimate of the loss on the "train" and "val"
splits, optionally keeping the weights of the best one (`keep_best`); a progress bar; and
checkpoints.

Reproducible by construction. All randomness of a run comes from two sources seeded from
`TrainConfig.seed`: a generator that draws the batches, and torch's global generator (dropout).
Evaluation draws from its own generator, seeded by the step, so evaluating more or less often
never changes the training trajectory. A checkpoint (`llmscratch.checkpoints`) holds the model,
the optimizer, the step, the history and the random states, and is written atomically: stopping
after step k and resuming gives bit-identical weights to a run that never stopped. The batches
are moved to the device the model is on, so the same loop runs on a CPU, a CUDA GPU or an
Apple GPU.

Left out: several devices (see the scaling-out chapter), learning-rate finders, and schedules
other than warm-up plus cosine.

References: Kingma & Ba, "Adam" (ICLR 2015); Loshchilov & Hutter, "Decoupled Weight Decay
Regularization" (ICLR 2019), and "SGDR" (ICLR 2017) for the cosine schedule.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .checkpoints import CheckpointError, restore_checkpoint, save_checkpoint
from .checks import check_sizes
from .progress import progress_bar
from .runtime import PRECISIONS, autocast, device_of, eval_mode

__all__ = ["CheckpointError", "DivergenceError", "History", "TrainConfig", "evaluate_loss", "learning_rate_at",
           "train"]

Batches = Callable[[str, int, torch.Generator], "tuple[torch.Tensor, torch.Tensor]"]
OnUpdate = Callable[[int, torch.nn.Module], None]


class DivergenceError(FloatingPointError):
    """The loss stopped being a finite number; `history` holds the run up to that step."""

    def __init__(self, message: str, history: History) -> None:
        super().__init__(message)
        self.history = history


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Defaults suit the small models of Part 1 on a CPU."""

    # Optimizer updates in total; the learning-rate schedule is laid out over this many.
    steps: int = 2000
    # Examples per update: enough to average out noise, small enough for many updates a second.
    batch_size: int = 64
    # Peak learning rate. Adam's steps are about this size per weight; the names chapter's
    # sweep puts the best rate for its small MLP here.
    learning_rate: float = 3e-3
    # Linear warm-up from 0: Adam's early moment estimates are noisy, so the first steps are small.
    warmup_steps: int = 100
    # The cosine decay ends at this fraction of the peak; the small final steps settle the weights.
    min_lr_ratio: float = 0.05
    # AdamW's decoupled weight decay on matrices (not biases or norm gains), a mild pull to 0.
    weight_decay: float = 0.01
    # Adam's moment decay rates; 0.99 rather than 0.999 adapts faster in short runs.
    betas: tuple[float, float] = (0.9, 0.99)
    # Rescale the gradient if its norm exceeds this (0 = off): insurance against a rare bad batch.
    grad_clip: float = 1.0
    # Estimate train and val loss every this many steps (and at the end).
    eval_interval: int = 200
    # Batches per estimate: the estimate's noise shrinks like 1/sqrt(eval_batches * batch_size).
    eval_batches: int = 20
    # The one seed behind batch order and dropout; a run is a function of it.
    seed: int = 42
    # Micro-batches whose gradients are summed before each update: an update then sees
    # batch_size * accumulation_steps examples while memory holds batch_size at a time.
    accumulation_steps: int = 1
    # Number format of the forward pass: "fp32", or mixed "bf16" / "fp16" (runtime.autocast).
    # Mixed precision pays only where the hardware multiplies the short format natively.
    precision: str = "fp32"
    # End with the weights of the lowest validation estimate rather than the last: a long run
    # that begins to overfit still returns its best model, as early stopping would.
    keep_best: bool = False

    def __post_init__(self) -> None:
        check_sizes(self, ("steps", "batch_size", "eval_interval", "eval_batches", "accumulation_steps"))
        check_sizes(self, ("warmup_steps", "seed"), minimum=0)
        for name in ("learning_rate", "min_lr_ratio", "weight_decay", "grad_clip"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"TrainConfig.{name} must be a number, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"TrainConfig.learning_rate must be positive, got {self.learning_rate!r}")
        if self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("TrainConfig.warmup_steps must be >= 0 and min_lr_ratio in [0, 1]")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("TrainConfig.weight_decay and grad_clip must be >= 0")
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig.precision={self.precision!r}; choose one of {PRECISIONS}")
        if not isinstance(self.keep_best, bool):
            raise TypeError(f"TrainConfig.keep_best must be True or False, got {self.keep_best!r}")


@dataclass
class History:
    """What happened during training, as plain lists (JSON-ready via ``dataclasses.asdict``)."""

    step: list[int] = field(default_factory=list)  # 1, 2, ... after each update
    lr: list[float] = field(default_factory=list)  # learning rate of that update
    train_loss: list[float] = field(default_factory=list)  # loss of that update's batch
    grad_norm: list[float] = field(default_factory=list)  # gradient norm of that update, before clipping
    eval_step: list[int] = field(default_factory=list)  # steps at which the loss was estimated
    eval_train: list[float] = field(default_factory=list)
    eval_val: list[float] = field(default_factory=list)
    best_step: int | None = None  # with keep_best: the estimate whose weights the run ended with

    def record_step(self, step: int, lr: float, loss: float, grad_norm: float = math.nan) -> None:
        """One update: its number (from 1), its learning rate, its batch's loss and its gradient norm."""
        self.step.append(step)
        self.lr.append(lr)
        self.train_loss.append(loss)
        self.grad_norm.append(grad_norm)

    def record_eval(self, step: int, train_loss: float, val_loss: float) -> None:
        """One estimate of the loss on each split, made before update `step` + 1."""
        self.eval_step.append(step)
        self.eval_train.append(train_loss)
        self.eval_val.append(val_loss)

    def curve(self, points: int = 200) -> dict:
        """For committing: the per-step training loss averaged over `points` equal blocks, plus every estimate."""
        n = len(self.train_loss)
        block = max(1, n // points)
        steps, losses = [], []
        for i in range(0, n - block + 1, block):
            steps.append(self.step[i + block - 1])
            losses.append(round(sum(self.train_loss[i : i + block]) / block, 5))
        curve = {"step": steps, "train_loss_block_mean": losses, "eval_step": self.eval_step,
                 "eval_train": [round(v, 5) for v in self.eval_train],
                 "eval_val": [round(v, 5) for v in self.eval_val]}
        if self.best_step is not None:
            curve["best_step"] = self.best_step
        return curve


def learning_rate_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of update `step` (0-based): warm-up, then a cosine.

    Linear from near 0 to the peak over `warmup_steps`, then half a cosine
    down to ``min_lr_ratio`` times the peak at the last step:

    >>> cfg = TrainConfig(steps=1001, learning_rate=1.0, warmup_steps=100,
    ...                   min_lr_ratio=0.0)
    >>> [round(learning_rate_at(s, cfg), 3) for s in (0, 49, 99, 550, 1000)]
    [0.01, 0.5, 1.0, 0.5, 0.0]
    """
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - 1 - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.learning_rate * cfg.min_lr_ratio
    cosine = 0.5 * (1 + math.cos(math.pi * progress))  # from 1 down to 0
    return floor + (cfg.learning_rate - floor) * cosine


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 8192) -> float:
    """The exact mean loss of `model` over all examples (x, y), in evaluation mode."""
    device = device_of(model)
    total = 0.0
    with eval_mode(model):
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
            _, loss = model(xb, yb)
            total += float(loss) * len(xb)
    return total / len(x)


@torch.no_grad()
def _estimate(model: torch.nn.Module, batches: Batches, cfg: TrainConfig, step: int) -> tuple[float, float]:
    """Mean loss over `eval_batches` batches of each split; its own generator, seeded by step."""
    device = device_of(model)
    out = []
    with eval_mode(model):
        for split in ("train", "val"):
            generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
            losses = []
            for _ in range(cfg.eval_batches):
                x, y = batches(split, cfg.batch_size, generator)
                losses.append(float(model(x.to(device), y.to(device))[1]))
            out.append(sum(losses) / len(losses))
    return out[0], out[1]


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    # Decay matrices and embedding tables; leave biases and norm gains alone, since shrinking
    # them toward 0 is not a simpler model, only a shifted one.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=cfg.betas)


def train(
    model: torch.nn.Module,
    batches: Batches,
    cfg: TrainConfig,
    *,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_interval: int = 0,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    desc: str = "training",
    on_update: OnUpdate | None = None,
) -> History:
    """Train `model` in place for ``cfg.steps`` updates and return its `History`.

    `batches(split, batch_size, generator)` returns one batch ``(x, y)`` of split "train" or
    "val" (see `llmscratch.datasets`). With a `checkpoint` path, a checkpoint is written every
    `checkpoint_interval` steps (if > 0), when stopping early, and at the end; `resume=True`
    continues from it (it must exist and match the model and `cfg`). `stop_after` ends the run
    after that many steps in total, as an interruption would. With ``cfg.keep_best`` a run that
    completes leaves the model with the weights of its lowest validation estimate (the final
    checkpoint still holds the last weights, as a checkpoint must). `on_update(step, model)` is
    called after every update, to watch the weights (`llmscratch.diagnostics.UpdateRatios`).
    A loss that becomes infinite or NaN raises `DivergenceError`, which carries the history.
    """
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    optimizer = _optimizer(model, cfg)
    device = device_of(model)
    # float16's narrow range lets small gradients underflow to 0: scale the loss up before
    # backward and the gradients down before the update, skipping updates that overflowed.
    scaler = torch.amp.GradScaler(device.type) if cfg.precision == "fp16" else None
    history, start, best = History(), 0, None
    path = Path(checkpoint) if checkpoint is not None else None
    run = {"model": model, "optimizer": optimizer, "train_config": asdict(cfg), "batch_rng": generator}
    # A model that draws its own random numbers (an objectives.ObjectiveModel masking tokens) keeps
    # them in a `generator`; it is saved and restored with the run, so that a resumed run is exact.
    model_rng = getattr(model, "generator", None)
    model_rng = model_rng if isinstance(model_rng, torch.Generator) else None
    if resume:
        start, saved, extras = restore_checkpoint(path, **run)
        history, best = History(**saved), extras.get("best")
        if scaler is not None and "scaler" in extras:
            scaler.load_state_dict(extras["scaler"])
        if model_rng is not None and "model_rng" in extras:
            model_rng.set_state(extras["model_rng"])

    def save(step: int) -> None:
        extras = {"best": best, **({"scaler": scaler.state_dict()} if scaler is not None else {}),
                  **({"model_rng": model_rng.get_state()} if model_rng is not None else {})}
        save_checkpoint(path, step=step, history=asdict(history), extras=extras, **run)
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    model.train()
    bar = progress_bar(cfg.steps, start, desc, enabled=progress)

    def estimate(step: int) -> None:
        nonlocal best
        train_loss, val_loss = _estimate(model, batches, cfg, step)
        history.record_eval(step, train_loss, val_loss)
        bar.set_postfix_str(f"train {train_loss:.3f} val {val_loss:.3f}", refresh=False)
        if cfg.keep_best and (best is None or val_loss < best["val"]):
            weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            best = {"step": step, "val": val_loss, "model": weights}

    step = start
    while step < end:
        if step % cfg.eval_interval == 0:
            estimate(step)
        lr = learning_rate_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for _ in range(cfg.accumulation_steps):
            x, y = batches("train", cfg.batch_size, generator)
            with autocast(device, cfg.precision):
                _, loss = model(x.to(device), y.to(device))
            if cfg.accumulation_steps > 1:
                # Each micro-batch's mean loss, divided by their number, sums to the mean over all of
                # them: the same gradient as one batch of batch_size * accumulation_steps examples.
                loss = loss / cfg.accumulation_steps
            (loss if scaler is None else scaler.scale(loss)).backward()
            loss_sum += loss.item()
        if scaler is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        # The norm of all gradients as one vector; clipping rescales them if it exceeds grad_clip.
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or math.inf)
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()
        step += 1
        history.record_step(step, lr, loss_sum, float(grad_norm))
        bar.update(1)
        if not math.isfinite(history.train_loss[-1]):
            bar.close()
            raise DivergenceError(f"the loss became {history.train_loss[-1]} at step {step}; "
                                  "lower the learning rate or clip gradients", history)
        if on_update is not None:
            on_update(step, model)
        if path is not None and step < end and checkpoint_interval > 0 and step % checkpoint_interval == 0:
            save(step)
    if step == cfg.steps and (not history.eval_step or history.eval_step[-1] != step):
        estimate(step)
    bar.close()
    if path is not None:
        save(step)
    if step == cfg.steps and best is not None:
        model.load_state_dict(best["model"])
        history.best_step = best["step"]
    return history
