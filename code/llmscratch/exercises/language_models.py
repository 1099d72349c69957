"""Checkers for the counting and neural language models of Part 1 (bigrams, softmax, MLPs, batches).

Each checker runs the learner's function next to the package's own on ordinary, random and
edge-case inputs, and names the first case that disagrees:

* `check_bigram_counts`: the table of pair counts, against `CountingBigram.fit`;
* `check_cross_entropy`: the mean negative log-likelihood of logits, against
  `torch.nn.functional.cross_entropy`, including logits so large that a naive softmax overflows;
* `check_context_windows`: the (window, next token) examples of boundary-wrapped names, against
  `llmscratch.datasets.name_windows`;
* `check_get_batch`: random windows of a token stream and their targets shifted by one, against
  every window `llmscratch.datasets.stream_windows` lists.

Where a wrong answer looks like a slip learners often make (a boundary left out, the table
transposed, exp overflowing, the context carried over from the previous name, the last window
never drawn), the message says so in a question, never with the fix.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..bigram import CountingBigram
from ..datasets import name_windows, stream_windows
from .core import ExerciseError, call_learner, expect_tensor, passed

__all__ = ["check_bigram_counts", "check_context_windows", "check_cross_entropy", "check_get_batch"]


def _random_sequences(g: torch.Generator, n: int, vocab_size: int, boundary_id: int, max_len: int) -> list[list[int]]:
    ids = [i for i in range(vocab_size) if i != boundary_id]
    out = []
    for _ in range(n):
        length = int(torch.randint(0, max_len + 1, (1,), generator=g))
        out.append([ids[int(j)] for j in torch.randint(len(ids), (length,), generator=g)])
    return out


def check_bigram_counts(fn: Callable[[list[list[int]], int, int], torch.Tensor]) -> None:
    """Check ``fn(sequences, vocab_size, boundary_id) -> counts`` against `CountingBigram.fit`.

    `sequences` is a list of lists of token ids, without boundary tokens. Each sequence is read
    with the boundary token `boundary_id` before its first and after its last token, so a
    sequence of length L gives L + 1 pairs (an empty one gives the pair boundary -> boundary).
    ``counts`` is a (vocab_size, vocab_size) tensor of integers: ``counts[i, j]`` is how often
    token j followed token i (row = current token, column = next token).
    """
    g = torch.Generator().manual_seed(0)
    cases = [
        ("two names, '.ab.' and '.a.'", [[1, 2], [1]], 3, 0),
        ("one empty sequence", [[]], 3, 0),
        ("a token that never occurs (id 3)", [[1, 2, 1, 2], [2]], 4, 0),
        ("boundary id 4, the last id", [[0, 1, 2], [3, 3], [1]], 5, 4),
        ("200 random names, vocabulary 27", _random_sequences(g, 200, 27, 0, 9), 27, 0),
        ("100 random sequences, vocabulary 10, boundary 7", _random_sequences(g, 100, 10, 7, 6), 10, 7),
    ]
    for what, seqs, V, boundary in cases:
        where = f"{what} (vocab_size={V}, boundary_id={boundary})"
        want = CountingBigram.fit(seqs, vocab_size=V, boundary_id=boundary).counts
        got = call_learner(where, fn, [list(s) for s in seqs], V, boundary)
        if isinstance(got, torch.Tensor) and got.shape == want.shape and not torch.equal(got.long(), want):
            got_total, want_total = int(got.sum()), int(want.sum())
            if got_total != want_total:
                lengths = sum(len(s) for s in seqs)
                raise ExerciseError(
                    f"{where}: you counted {got_total} pairs, expected {want_total} "
                    f"({len(seqs)} sequence(s) with {lengths} tokens in all: does every sequence get a boundary "
                    "token before its first token and after its last?)")
            if torch.equal(got.long(), want.T):
                raise ExerciseError(f"{where}: your table is the transpose of the expected one (which index is "
                                    "the current token and which the next?)")
        expect_tensor(where, got, want, hint="row i should count the tokens that follow token i")
    passed("check_bigram_counts", len(cases))


def check_cross_entropy(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(logits, targets) -> loss`` against `torch.nn.functional.cross_entropy`.

    ``logits`` (B, V) are unnormalised scores, one row per example; ``targets`` (B,) the ids of
    the right tokens. ``loss`` is a 0-dim tensor: the mean over the B examples of
    ``-log softmax(logits[b])[targets[b]]``, in nats. It must stay finite for logits in the
    thousands, and gradients must flow back to ``logits`` (no ``.item()``, no NumPy).
    """
    g = torch.Generator().manual_seed(0)
    cases = [
        ("all logits 0 (uniform over 27)", torch.zeros(5, 27), torch.tensor([0, 3, 26, 5, 5])),
        ("one example", torch.randn(1, 27, generator=g), torch.tensor([4])),
        ("random logits, 32 examples of 27", 2 * torch.randn(32, 27, generator=g),
         torch.randint(27, (32,), generator=g)),
        ("square batch: 6 examples of 6 tokens", torch.randn(6, 6, generator=g), torch.tensor([0, 1, 2, 3, 4, 5])),
        ("logits near 1000 (exp would overflow)", 1000 + 5 * torch.randn(8, 65, generator=g),
         torch.randint(65, (8,), generator=g)),
        ("a target whose logit is 1000 below the others", torch.tensor([[0.0, 0.0, -1000.0], [1.0, 2.0, 3.0]]),
         torch.tensor([2, 0])),
    ]
    for what, logits, targets in cases:
        B = len(targets)
        where = f"{what}, logits of shape {tuple(logits.shape)}"
        want = F.cross_entropy(logits.double(), targets)
        x = logits.double().clone().requires_grad_(True)
        got = call_learner(where, fn, x, targets.clone())
        if not isinstance(got, torch.Tensor):
            raise ExerciseError(f"{where}: expected a tensor (the loss), got {type(got).__name__} "
                                "(a tensor keeps the computation that backward() needs)")
        if got.numel() != 1:
            raise ExerciseError(f"{where}: expected one number, the mean over the batch, got shape "
                                f"{tuple(got.shape)}")
        value, expected = float(got.detach()), float(want)
        if value != value or abs(value) == float("inf"):
            raise ExerciseError(f"{where}: expected {expected:.6g}, got {value} (what happens to exp(x) for "
                                "x near 1000, or to log(p) for p that rounds to 0? what can you subtract from "
                                "every logit of a row without changing its softmax?)")
        if abs(value - expected) > 1e-6 * max(1.0, abs(expected)):
            if B > 1 and abs(value - B * expected) < 1e-6 * max(1.0, abs(B * expected)):
                hint = f"your loss is {B} times too large: is it the mean over the examples?"
            elif B > 1 and abs(value - _down_columns(logits, targets)) < 1e-6 * max(1.0, abs(expected)):
                hint = "is the softmax taken over each row (the vocabulary), not down each column?"
            else:
                hint = "is it -log of the softmax probability of the target, averaged?"
            raise ExerciseError(f"{where}: expected {expected:.6g}, got {value:.6g} ({hint})")
        if not got.requires_grad:
            raise ExerciseError(f"{where}: the loss is right but no gradient can flow back to the logits "
                                "(did the computation leave PyTorch, through .item(), NumPy or detach?)")
        (grad,) = torch.autograd.grad(got.sum(), x)
        want_grad = (torch.softmax(logits.double(), dim=-1) - F.one_hot(targets, logits.shape[1])) / B
        expect_tensor(f"{where}, gradient with respect to the logits", grad, want_grad, atol=1e-7,
                      hint="the gradient of the mean loss is (softmax - one-hot) / B")
    passed("check_cross_entropy", len(cases))


def check_context_windows(
    fn: Callable[[list[list[int]], int, int], tuple[torch.Tensor, torch.Tensor]],
) -> None:
    """Check ``fn(sequences, context_length, boundary_id) -> (X, Y)`` against `name_windows`.

    Every sequence is read as ``context_length`` boundary tokens, its ids, then one boundary
    token. Each of its ids and the closing boundary is one example: ``X`` (N, context_length)
    holds the ``context_length`` tokens before it (boundary tokens where the window reaches past
    the start of the sequence), ``Y`` (N,) the token itself. A sequence of length L gives L + 1
    examples, in order, sequence after sequence; no window reaches back into the previous one.
    """
    g = torch.Generator().manual_seed(0)
    cases = [
        ("'em' with a window of 3", [[5, 13]], 3, 0),
        ("two names, window of 1 (the bigram's pairs)", [[1, 2, 3], [4, 5]], 1, 0),
        ("a name longer than the window", [[1, 2, 3, 4, 5, 6]], 2, 0),
        ("an empty sequence between two names", [[1, 2], [], [3]], 3, 0),
        ("boundary id 9", [[1, 2, 3], [4]], 4, 9),
        ("50 random names, window of 8", _random_sequences(g, 50, 27, 0, 10), 8, 0),
    ]
    for what, seqs, T, boundary in cases:
        where = f"{what} (context_length={T}, boundary_id={boundary})"
        want_x, want_y = name_windows(seqs, T, boundary)
        got = call_learner(where, fn, [list(s) for s in seqs], T, boundary)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise ExerciseError(f"{where}: expected a pair (X, Y), got {type(got).__name__}")
        got_x, got_y = got
        n_want = len(want_y)
        for name, t, shape in (("X", got_x, (n_want, T)), ("Y", got_y, (n_want,))):
            if isinstance(t, torch.Tensor) and tuple(t.shape) != shape and t.ndim >= 1 and len(t) != n_want:
                raise ExerciseError(f"{where}: {name} has {len(t)} examples, expected {n_want} (a sequence of "
                                    "length L gives L + 1 examples: its tokens and the end; is the closing "
                                    "boundary a target?)")
        expect_tensor(f"{where}: Y", got_y, want_y, hint="each target is the next token of the padded sequence")
        if isinstance(got_x, torch.Tensor) and got_x.shape == want_x.shape and not torch.equal(got_x, want_x):
            k = int((got_x != want_x).any(dim=1).nonzero()[0])
            raise ExerciseError(
                f"{where}: example {k} (target {int(want_y[k])}) should have the window {want_x[k].tolist()}, "
                f"got {got_x[k].tolist()} (does every sequence start from a window of boundary tokens, and does "
                "the window slide one token at a time?)")
        expect_tensor(f"{where}: X", got_x, want_x)
    passed("check_context_windows", len(cases))


def check_get_batch(fn: Callable[[torch.Tensor, int, int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Check ``fn(data, context_length, batch_size, generator) -> (x, y)``, random windows of a stream.

    ``data`` is a 1-D tensor of token ids. ``x`` (batch_size, context_length) holds windows of
    ``context_length`` consecutive tokens, each starting at a position drawn uniformly, with
    `generator` only, from every position that leaves a token after the window. ``y`` has the
    same shape: each window shifted one token on, so ``y[b, t]`` is the token after ``x[b, t]``
    and ``y[:, -1]`` is the token after the window (what `get_batch(..., every_position=True)`
    returns; without it, the package returns only that last column).
    """
    g = torch.Generator().manual_seed(0)
    n = 0
    cases = [(torch.randperm(1000, generator=g), 8, 64), (torch.randperm(50, generator=g), 1, 32),
             (torch.randperm(10, generator=g), 8, 200), (torch.randperm(9, generator=g), 8, 5)]
    for data, T, B in cases:
        where = f"a stream of {len(data)} tokens, context_length={T}, batch_size={B}"
        windows, _ = stream_windows(data, T)  # (N - T, T): every window that has a token after it
        position = torch.empty(int(data.max()) + 1, dtype=torch.long)
        position[data] = torch.arange(len(data))  # the ids are distinct, so an id gives its position
        got = call_learner(where, fn, data.clone(), T, B, torch.Generator().manual_seed(1))
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise ExerciseError(f"{where}: expected a pair (x, y), got {type(got).__name__}")
        x, y = got
        for name, t in (("x", x), ("y", y)):
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != (B, T):
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ExerciseError(f"{where}: expected {name} of shape {(B, T)}, got {shape}")
        if x.dtype != torch.long or y.dtype != torch.long or not torch.isin(x, data).all():
            raise ExerciseError(f"{where}: x and y should hold token ids of the stream (integers), got dtypes "
                                f"{x.dtype} and {y.dtype}")
        starts = position[x[:, 0]]  # (B,)
        for b in range(B):
            s = int(starts[b])
            if s >= len(windows) or not torch.equal(x[b], windows[s]):
                raise ExerciseError(f"{where}: row {b} of x is not a window of {T} consecutive tokens with a "
                                    f"token after it (it starts at position {s}; the last such window starts "
                                    f"at {len(windows) - 1})")
            if not torch.equal(y[b], data[s + 1 : s + T + 1]):
                raise ExerciseError(f"{where}: row {b} of y should be its window shifted one token on, "
                                    f"{data[s + 1 : s + T + 1].tolist()}, got {y[b].tolist()} (is y[b, t] the "
                                    "token after x[b, t]?)")
        again = call_learner(where, fn, data.clone(), T, B, torch.Generator().manual_seed(1))
        if not all(isinstance(t, torch.Tensor) for t in again) or not torch.equal(again[0], x):
            raise ExerciseError(f"{where}: two generators seeded alike gave different batches (is every random "
                                "draw made with the generator you are given?)")
        if len(windows) > 1 and B >= 32:
            drawn = set(starts.tolist())
            if len(windows) - 1 not in drawn and len(windows) <= 3:
                raise ExerciseError(f"{where}: {B} draws never took the last window (start {len(windows) - 1}), "
                                    f"whose target is the stream's last token (how many starts leave a token "
                                    "after the window?)")
            if len(drawn) == 1:
                raise ExerciseError(f"{where}: all {B} windows start at position {s} (are the starts random?)")
        n += 1
    passed("check_get_batch", n)


def _down_columns(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The loss a softmax over the batch (dim 0) instead of the vocabulary gives: a common slip."""
    logp = torch.log_softmax(logits.double(), dim=0)  # (B, V), each column sums to 1
    return float(-logp[torch.arange(len(targets)), targets].mean())
