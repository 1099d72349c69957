"""llmscratch.scheduling: the batching simulation keeps its books straight.

A hand-worked trace for each policy, then invariants over seeded traces: every request is
served once, after it arrives, its first token before its last; no step holds more than
`max_batch` rows or more cache memory than the budget; static batching computes padding rows
that continuous batching does not; paged memory wastes less than contiguous reservations.
"""

import math

import pytest

from llmscratch.scheduling import Request, StepCost, request_trace, simulate

UNIT = StepCost(fixed=1.0, per_row=0.0, per_prompt_token=0.0)  # every step takes one second
COST = StepCost(fixed=0.013, per_row=0.001, per_prompt_token=0.0001)


def test_hand_worked_static_and_continuous():
    """Two requests at t=0 (answers of 3 and 1 tokens), one at t=0.5 (1 token), two slots.
    Static: the third waits for the batch to end at t=3, then takes one step: done at 4.
    Continuous: the 1-token request leaves after the first step, the third joins at t=1: done at 2."""
    trace = [Request(0, 0.0, 4, 3), Request(1, 0.0, 4, 1), Request(2, 0.5, 4, 1)]
    static, continuous = simulate(trace, "static", 2, UNIT), simulate(trace, "continuous", 2, UNIT)
    assert static.finish == [3.0, 1.0, 4.0] and continuous.finish == [3.0, 1.0, 2.0]
    # Static computed 2 rows in steps 2 and 3 for one useful token each.
    assert [(s[2], s[3]) for s in static.steps] == [(2, 2), (1, 2), (1, 2), (1, 1)]
    assert static.summary()["utilisation"] == pytest.approx(5 / 7)
    assert continuous.summary()["utilisation"] == 1.0


def test_the_step_cost_fits_a_line():
    fitted = StepCost.fit([1, 2, 4, 8], [0.011, 0.012, 0.014, 0.018], per_prompt_token=1e-4)
    assert fitted.fixed == pytest.approx(0.010) and fitted.per_row == pytest.approx(0.001)
    assert fitted(3, 10) == pytest.approx(0.010 + 0.003 + 0.001)


def test_the_trace_is_seeded_and_within_its_ranges():
    a, b = request_trace(50, 5.0, seed=3), request_trace(50, 5.0, seed=3)
    assert a == b and a != request_trace(50, 5.0, seed=4)
    assert all(8 <= r.prompt_tokens <= 64 and 1 <= r.output_tokens <= 160 for r in a)
    assert all(x.arrival < y.arrival for x, y in zip(a, a[1:]))
    with pytest.raises(ValueError, match="rate"):
        request_trace(5, 0.0)


@pytest.mark.parametrize("policy,kv_slots,memory", [("static", None, "paged"), ("continuous", None, "paged"),
                                                    ("continuous", 2048, "paged"),
                                                    ("continuous", 2048, "contiguous")])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_request_is_served_once_and_in_order(policy, kv_slots, memory, seed):
    trace = request_trace(120, 25.0, seed=seed)
    run = simulate(trace, policy, 16, COST, kv_slots=kv_slots, memory=memory)
    assert not any(math.isnan(f) for f in run.finish + run.first_token)
    for r, first, last in zip(trace, run.first_token, run.finish):
        assert r.arrival < first <= last
    assert sorted(s[1] for s in run.spans) == [r.id for r in trace]  # each one finished once
    assert max(s[3] for s in run.steps) <= 16 and all(0 < s[2] <= s[3] for s in run.steps)
    if kv_slots is not None:
        assert max(m[2] for m in run.memory) <= kv_slots and all(m[1] <= m[2] for m in run.memory)
    # No slot serves two requests at once.
    for slot in {s[0] for s in run.spans}:
        held = sorted((s[2], s[4]) for s in run.spans if s[0] == slot)
        assert all(a[1] <= b[0] + 1e-12 for a, b in zip(held, held[1:]))


def test_continuous_beats_static_and_paging_beats_reserving_on_a_busy_trace():
    trace = request_trace(200, 20.0, seed=0)
    static, continuous = (simulate(trace, p, 16, COST).summary() for p in ("static", "continuous"))
    assert continuous["throughput"] > static["throughput"] and continuous["p95_latency"] < static["p95_latency"]
    assert static["utilisation"] < 0.6
    contiguous, paged = (simulate(trace, "continuous", 64, COST, kv_slots=4096, memory=m) for m in
                         ("contiguous", "paged"))
    assert paged.summary()["memory_used_share"] > 2 * contiguous.summary()["memory_used_share"]
    assert paged.summary()["peak_rows"] > contiguous.summary()["peak_rows"]


def test_paging_preempts_when_the_blocks_run_out_and_still_serves_everyone():
    trace = [Request(i, 0.0, 8, 40) for i in range(4)]  # 4 requests of 48 tokens, room for 2.5 of them
    run = simulate(trace, "continuous", 4, UNIT, kv_slots=120, memory="paged", block_size=8)
    assert run.preemptions > 0 and sorted(s[1] for s in run.spans) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="does not fit"):
        simulate(trace, "continuous", 4, UNIT, kv_slots=8, memory="paged", block_size=8)


def test_bad_arguments_are_refused():
    trace = request_trace(3, 1.0)
    for kwargs, field in [(dict(policy="fifo"), "policy"), (dict(memory="heap"), "memory"),
                          (dict(max_batch=0), "max_batch")]:
        options = dict(policy="static", max_batch=2, memory="paged") | kwargs
        with pytest.raises(ValueError, match=field):
            simulate(trace, options.pop("policy"), options.pop("max_batch"), UNIT, **options)
