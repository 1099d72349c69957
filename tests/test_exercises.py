"""llmscratch.exercises: each checker passes a right answer and rejects plausible wrong ones."""

import math

import pytest
import torch

from llmscratch.exercises import ExerciseError, Question, check_clip_by_global_norm, check_schedule, quiz
from llmscratch.training import TrainConfig, learning_rate_at


def right_schedule(step, steps, peak, warmup, min_ratio):
    return learning_rate_at(step, TrainConfig(steps=steps, learning_rate=peak, warmup_steps=warmup,
                                              min_lr_ratio=min_ratio))


def test_the_schedule_checker_passes_the_package_and_says_so(capsys):
    check_schedule(right_schedule)
    assert "all" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        # warm-up that starts at 0 instead of peak / warmup
        (lambda s, n, p, w, r: p * s / w if s < w else right_schedule(s, n, p, w, r), "warm-up"),
        # cosine to 0 instead of to min_ratio * peak
        (lambda s, n, p, w, r: right_schedule(s, n, p, w, 0.0) if s >= w else right_schedule(s, n, p, w, r),
         "cosine decay"),
        # a full cosine period instead of half
        (lambda s, n, p, w, r: right_schedule(s, n, p, w, r) if s < w else
         p * r + (p - p * r) * 0.5 * (1 + math.cos(2 * math.pi * (s - w) / max(1, n - 1 - w))), "cosine decay"),
    ],
)
def test_the_schedule_checker_rejects_plausible_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_schedule(wrong)


def right_clip(grads, max_norm):
    total = torch.sqrt(sum((g**2).sum() for g in grads))
    return [g * min(1.0, max_norm / (float(total) + 1e-6)) for g in grads]


def test_the_clip_checker(capsys):
    check_clip_by_global_norm(right_clip)
    assert "all 4 cases" in capsys.readouterr().out

    def per_tensor(grads, max_norm):  # the classic mistake: each tensor clipped on its own
        return [g * min(1.0, max_norm / (float(g.norm()) + 1e-6)) for g in grads]

    with pytest.raises(ExerciseError, match="norm taken over all gradients together"):
        check_clip_by_global_norm(per_tensor)

    def in_place(grads, max_norm):
        out = right_clip(grads, max_norm)
        for g, o in zip(grads, out):
            g.copy_(o)
        return grads

    with pytest.raises(ExerciseError, match="changed its input"):
        check_clip_by_global_norm(in_place)
    with pytest.raises(ExerciseError, match="list of 3 tensors"):
        check_clip_by_global_norm(lambda grads, max_norm: None)


def test_a_quiz_renders_every_choice_without_scripts():
    q = quiz(Question("Which <shape>?", ("(B, T)", "(T, B)"), 0, "Batch first."))
    page = q._repr_html_()
    assert page.count("<details") == 2 and "<script" not in page
    assert "&lt;shape&gt;" in page and "Batch first." in page
    assert "a) (B, T)" in repr(q)
    with pytest.raises(ValueError):
        Question("?", ("only one",), 0, "")
    with pytest.raises(ValueError):
        Question("?", ("a", "b"), 2, "")
    with pytest.raises(ValueError):
        quiz()


def test_the_top_p_checker():
    from llmscratch.exercises import check_top_p

    def right(probs, p):
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        keep = (sorted_probs.cumsum(-1) - sorted_probs) < p
        return torch.zeros_like(keep).scatter(-1, order, keep)

    check_top_p(right)

    def strict(probs, p):  # drops the token that crosses p
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        keep = sorted_probs.cumsum(-1) <= p
        return torch.zeros_like(keep).scatter(-1, order, keep)

    with pytest.raises(ExerciseError, match="crosses p"):
        check_top_p(strict)

    def unsorted(probs, p):  # forgets to sort: keeps the first tokens in vocabulary order
        keep = (probs.cumsum(-1) - probs) < p
        return keep

    with pytest.raises(ExerciseError):
        check_top_p(unsorted)
    with pytest.raises(ExerciseError, match="boolean"):
        check_top_p(lambda probs, p: right(probs, p).float())


def test_the_compute_optimal_checker():
    from llmscratch.exercises import check_compute_optimal

    def right(E, A, B, alpha, beta, flops):
        G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
        return G * (flops / 6) ** (beta / (alpha + beta))

    check_compute_optimal(right)

    def swapped(E, A, B, alpha, beta, flops):  # the exponents the wrong way round
        G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
        return G * (flops / 6) ** (alpha / (alpha + beta))

    with pytest.raises(ExerciseError, match="expected N_opt"):
        check_compute_optimal(swapped)


def test_the_zero_memory_checker(capsys):
    from llmscratch.exercises import check_zero_memory

    def right(n_params, world_size, stage, bytes_per_value):
        params, grads, moments = n_params, n_params, 2 * n_params  # values per rank, unsharded
        if stage >= 1:
            moments /= world_size
        if stage >= 2:
            grads /= world_size
        if stage >= 3:
            params /= world_size
        return (params + grads + moments) * bytes_per_value

    check_zero_memory(right)
    assert "all 20 cases" in capsys.readouterr().out

    def off_by_one(n_params, world_size, stage, bytes_per_value):  # stage s shards what stage s + 1 does
        return right(n_params, world_size, min(stage + 1, 3), bytes_per_value)

    def one_moment(n_params, world_size, stage, bytes_per_value):  # Adam keeps two moments, not one
        return right(n_params, world_size, stage, bytes_per_value) - n_params * bytes_per_value * (
            1 / world_size if stage >= 1 else 1)

    def rounded_down(n_params, world_size, stage, bytes_per_value):  # whole values per rank
        return right(n_params // world_size * world_size, world_size, stage, bytes_per_value)

    for wrong in (off_by_one, one_moment, rounded_down):
        with pytest.raises(ExerciseError, match="shards"):
            check_zero_memory(wrong)
    with pytest.raises(ExerciseError, match="stage=0"):
        check_zero_memory(lambda n, w, s, b: None)


def test_the_sliding_window_checker(capsys):
    from llmscratch.evaluation import sliding_nlls
    from llmscratch.exercises import check_sliding_nlls

    check_sliding_nlls(lambda m, ids, ctx, stride: sliding_nlls(m, ids, ctx, stride=stride))
    assert "all" in capsys.readouterr().out

    def non_overlapping(m, ids, ctx, stride):  # ignores the stride: every window scores all T targets
        return sliding_nlls(m, ids, ctx, stride=m.context_length)

    def one_token_short(m, ids, ctx, stride):  # windows that end one token early
        stream = torch.cat([ctx[-m.context_length:], ids])
        with torch.no_grad():
            return torch.stack([torch.nn.functional.cross_entropy(
                m(stream[j : j + m.context_length][None])[0][0, -2], stream[j + m.context_length])
                for j in range(len(ids))])

    for wrong in (non_overlapping, one_token_short, lambda m, ids, ctx, stride: [0.0] * len(ids)):
        with pytest.raises(ExerciseError, match="stride"):
            check_sliding_nlls(wrong)
