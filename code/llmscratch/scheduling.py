"""Static and continuous batching, simulated on a request trace with a step-time model.

A server receives requests at random times, each with a prompt and an answer of a length
nobody knows in advance. It runs the model one step at a time over a batch of them:

- **static batching** takes the requests that are waiting, runs them together until the
  *longest* answer is done, and only then takes the next batch. A request that finishes early
  keeps its slot, computing padding, and a request that arrives meanwhile waits;
- **continuous batching** (Orca's iteration-level scheduling) decides again at every step:
  finished requests leave, waiting ones join (their prompt is read in that step), so no slot
  idles while anyone waits.

The simulation needs no model: a `StepCost` says how long one forward pass takes for a batch of
``rows`` sequences and ``prompt_tokens`` prompt tokens to read (the chapter fits it to the
course model's measured step times). With a `kv_slots` budget the scheduler also has to find
cache memory for every request it admits, either a **contiguous** reservation of
``max_tokens`` slots (the prompt plus the longest answer allowed), or **paged** blocks from a
`llmscratch.paging.PagedAllocator` taken as the answer grows; when a growing answer finds no
free block, the request admitted last is preempted (its blocks freed, itself sent back to the
front of the queue to be recomputed), as vLLM does.

    >>> trace = [Request(0, 0.0, 4, 3), Request(1, 0.0, 4, 1), Request(2, 0.5, 4, 1)]
    >>> cost = StepCost(fixed=1.0, per_row=0.0, per_prompt_token=0.0)  # every step takes 1 s
    >>> [round(f, 1) for f in simulate(trace, "static", 2, cost).finish]  # #2 waits for #0's batch
    [3.0, 1.0, 4.0]
    >>> [round(f, 1) for f in simulate(trace, "continuous", 2, cost).finish]  # #2 takes #1's slot
    [3.0, 1.0, 2.0]

Left out: chunked prefill (long prompts split over steps), priorities and fairness, several
model replicas, and the time the scheduler itself takes.

References: Yu et al., "Orca" (OSDI 2022); Kwon et al., "Efficient Memory Management for Large
Language Model Serving with PagedAttention" (SOSP 2023).
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .paging import OutOfBlocks, PagedAllocator

__all__ = ["Request", "ServingRun", "StepCost", "request_trace", "simulate"]


@dataclass(frozen=True)
class Request:
    """One request: when it arrives (seconds), its prompt length and its answer length in tokens."""

    id: int
    arrival: float
    prompt_tokens: int
    output_tokens: int


def request_trace(n: int, rate: float, *, prompt_tokens: tuple[int, int] = (8, 64), mean_output: float = 48,
                  max_output: int = 160, seed: int = 0) -> list[Request]:
    """`n` requests arriving as a Poisson process of `rate` per second, seeded.

    Prompt lengths are uniform in `prompt_tokens` (inclusive); answer lengths are exponential
    with mean `mean_output`, rounded up and cut at `max_output`: most are short, a few are long,
    which is the case where static batching wastes most.
    """
    if not n >= 1 or not rate > 0:
        raise ValueError(f"need n >= 1 and rate > 0, got n={n!r}, rate={rate!r}")
    rng, t, out = random.Random(seed), 0.0, []
    for i in range(n):
        t += rng.expovariate(rate)
        length = min(max_output, max(1, math.ceil(rng.expovariate(1 / mean_output))))
        out.append(Request(i, t, rng.randint(*prompt_tokens), length))
    return out


@dataclass(frozen=True)
class StepCost:
    """Seconds for one forward pass: ``fixed + per_row · rows + per_prompt_token · prompt_tokens``."""

    fixed: float  # reading every weight once, and the per-call overhead: paid whatever the batch
    per_row: float  # each sequence's own work in a decode step
    per_prompt_token: float  # reading a prompt token in a prefill

    def __call__(self, rows: int, prompt_tokens: int = 0) -> float:
        return self.fixed + self.per_row * rows + self.per_prompt_token * prompt_tokens

    @classmethod
    def fit(cls, rows: list[int], seconds: list[float], per_prompt_token: float) -> StepCost:
        """Least-squares `fixed` and `per_row` from measured decode-step times at several batch sizes."""
        per_row, fixed = np.polyfit(np.asarray(rows, float), np.asarray(seconds, float), 1)
        return cls(float(max(fixed, 0.0)), float(max(per_row, 0.0)), per_prompt_token)


@dataclass
class ServingRun:
    """What a simulation recorded: per-request times, the slot timeline, and the memory in use."""

    policy: str
    trace: list[Request]
    first_token: list[float]  # when each request's first answer token was ready
    finish: list[float]  # when its last one was
    spans: list[tuple[int, int, float, float, float]] = field(default_factory=list)  # slot, id, start, done, freed
    steps: list[tuple[float, float, int, int]] = field(default_factory=list)  # start, seconds, busy rows, batch rows
    memory: list[tuple[float, int, int]] = field(default_factory=list)  # time, used slots, held slots
    preemptions: int = 0

    @property
    def latency(self) -> np.ndarray:
        """Seconds from arrival to the last token, per request."""
        return np.array(self.finish) - np.array([r.arrival for r in self.trace])

    def summary(self) -> dict[str, float]:
        """Throughput (answer tokens/s), mean and p95 latency, time to first token, utilisation."""
        tokens = sum(r.output_tokens for r in self.trace)
        busy, held = sum(s[2] for s in self.steps), sum(s[3] for s in self.steps)
        used = sum(m[1] for m in self.memory)
        out = {"throughput": tokens / (max(self.finish) - self.trace[0].arrival),
               "mean_latency": float(self.latency.mean()), "p95_latency": float(np.percentile(self.latency, 95)),
               "mean_ttft": float(np.mean(np.array(self.first_token) - [r.arrival for r in self.trace])),
               "utilisation": busy / held, "preemptions": float(self.preemptions)}
        if self.memory:
            out["memory_used_share"] = used / max(1, sum(m[2] for m in self.memory))
            out["peak_rows"] = float(max(s[3] for s in self.steps))
        return out


def simulate(trace: list[Request], policy: str, max_batch: int, cost: StepCost, *, kv_slots: int | None = None,
             memory: str = "paged", block_size: int = 16, max_tokens: int | None = None) -> ServingRun:
    """Serve `trace` with "static" or "continuous" batching, at most `max_batch` sequences per step.

    With `kv_slots`, continuous batching admits a request only if its cache fits: `memory`
    "contiguous" reserves `max_tokens` slots per request (default: the trace's longest prompt
    plus longest answer), "paged" takes `block_size`-slot blocks as needed.
    """
    if policy not in ("static", "continuous"):
        raise ValueError(f"policy must be 'static' or 'continuous', got {policy!r}")
    if memory not in ("paged", "contiguous"):
        raise ValueError(f"memory must be 'paged' or 'contiguous', got {memory!r}")
    if not isinstance(max_batch, int) or max_batch < 1:
        raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
    trace = sorted(trace, key=lambda r: r.arrival)
    run = ServingRun(policy, trace, [math.nan] * len(trace), [math.nan] * len(trace))
    if policy == "static":
        _static(run, max_batch, cost)
    else:
        longest = max(r.prompt_tokens for r in trace) + max(r.output_tokens for r in trace)
        _continuous(run, max_batch, cost, kv_slots, memory, block_size, max_tokens or longest)
    return run


def _static(run: ServingRun, max_batch: int, cost: StepCost) -> None:
    """Take who is waiting, run until the longest answer is done, repeat."""
    trace, t, i = run.trace, 0.0, 0
    index = {r.id: k for k, r in enumerate(trace)}
    while i < len(trace):
        t = max(t, trace[i].arrival)
        batch = [r for r in trace[i:i + max_batch] if r.arrival <= t]
        i += len(batch)
        start, rows = t, len(batch)
        dt = cost(rows, sum(r.prompt_tokens for r in batch))  # the prefill writes every first token
        run.steps.append((t, dt, rows, rows))
        t += dt
        for r in batch:
            run.first_token[index[r.id]] = t
        for step in range(1, max(r.output_tokens for r in batch)):
            busy = sum(r.output_tokens > step for r in batch)  # the rest compute padding
            dt = cost(rows)
            run.steps.append((t, dt, busy, rows))
            t += dt
            for r in batch:
                if r.output_tokens == step + 1:
                    run.finish[index[r.id]] = t
        for slot, r in enumerate(batch):
            if r.output_tokens == 1:
                run.finish[index[r.id]] = run.first_token[index[r.id]]
            run.spans.append((slot, r.id, start, run.finish[index[r.id]], t))


def _continuous(run: ServingRun, max_batch: int, cost: StepCost, kv_slots: int | None, memory: str,
                block_size: int, max_tokens: int) -> None:
    """Every step: admit who fits, run one step for everyone, release who is done."""
    trace, t = run.trace, 0.0
    index = {r.id: k for k, r in enumerate(trace)}
    pages = PagedAllocator(kv_slots // block_size, block_size) if kv_slots and memory == "paged" else None
    reserved = 0  # contiguous memory held
    waiting: deque[Request] = deque()
    running: dict[int, list] = {}  # slot -> [request, tokens written, admitted at]
    arrived, done = 0, 0
    while done < len(trace):
        while arrived < len(trace) and trace[arrived].arrival <= t:
            waiting.append(trace[arrived])
            arrived += 1
        if not running and not waiting:
            t = trace[arrived].arrival
            continue
        new_prompt_tokens = 0
        while waiting and len(running) < max_batch:
            r = waiting[0]
            if pages is not None and not pages.can_allocate(r.prompt_tokens + 1):
                break
            if pages is None and kv_slots is not None and reserved + max_tokens > kv_slots:
                break
            waiting.popleft()
            if pages is not None:
                pages.allocate(r.id, r.prompt_tokens + 1)  # the prompt and the first answer token
            reserved += max_tokens
            slot = min(set(range(max_batch)) - set(running))
            running[slot] = [r, 0, t]
            new_prompt_tokens += r.prompt_tokens
        if not running:  # the first waiting request does not fit even in an empty cache
            raise ValueError(f"request {waiting[0].id} does not fit in kv_slots={kv_slots}")
        dt = cost(len(running), new_prompt_tokens)
        run.steps.append((t, dt, len(running), len(running)))
        t += dt
        for slot in sorted(running, key=lambda s: running[s][2]):
            if slot not in running:  # preempted by an earlier row of this step
                continue
            entry = running[slot]
            r = entry[0]
            entry[1] += 1
            if entry[1] == 1:
                run.first_token[index[r.id]] = t
            elif pages is not None:
                _grow(run, pages, running, waiting, slot)
            if slot in running and entry[1] == r.output_tokens:
                run.finish[index[r.id]] = t
                run.spans.append((slot, r.id, entry[2], t, t))
                del running[slot]
                reserved -= max_tokens
                done += 1
                if pages is not None:
                    pages.free(r.id)
        used = sum(e[0].prompt_tokens + e[1] for e in running.values())
        held = pages.allocated_slots if pages is not None else len(running) * max_tokens
        run.memory.append((t, used, held))


def _grow(run: ServingRun, pages: PagedAllocator, running: dict[int, list], waiting: deque, slot: int) -> None:
    """One more slot for the sequence in `slot`; preempt the newest others until it fits."""
    r = running[slot][0]
    while True:
        try:
            pages.append(r.id)
            return
        except OutOfBlocks:
            victim = max((s for s in running if s != slot), key=lambda s: running[s][2], default=None)
            if victim is None:
                raise
            pages.free(running[victim][0].id)
            waiting.appendleft(running.pop(victim)[0])  # recomputed from its prompt when readmitted
            run.preemptions += 1
