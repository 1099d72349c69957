"""llmscratch.distributed: two processes under torchrun take the steps of one process with the same global batch."""

import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
import torch.distributed as dist

from llmscratch import TextBatches, train
from llmscratch.distributed import (
    ShardedBatches,
    global_history,
    rank_and_world_size,
    replica_divergence,
    toy_batches,
    toy_config,
    toy_model,
    train_data_parallel,
)
from llmscratch.scripts.train_ddp import main

STEPS, BATCH = 6, 8  # a global batch of 8: 4 examples on each of two ranks
needs_gloo = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="this torch build has no gloo backend")


def unique_examples(split, batch_size, generator):
    """Batches whose examples are distinct ids (drawn without replacement): slices compare as sets."""
    ids = torch.randperm(1000, generator=generator)[:batch_size]  # (B,)
    return ids.unsqueeze(1), ids  # (B, 1), (B,)


def max_difference(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max(float((sa[k] - sb[k]).abs().max()) for k in sa)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_the_slices_are_disjoint_and_make_up_the_global_batch(world_size):
    x, y = unique_examples("train", 12, torch.Generator().manual_seed(0))
    slices = [ShardedBatches(unique_examples, rank, world_size)("train", 12, torch.Generator().manual_seed(0))
              for rank in range(world_size)]
    assert [len(sx) for sx, _ in slices] == [12 // world_size] * world_size
    ids = [set(sy.tolist()) for _, sy in slices]
    assert sum(len(s) for s in ids) == 12 and set().union(*ids) == set(y.tolist())  # disjoint, and all of it
    assert torch.equal(torch.cat([sx for sx, _ in slices]), x) and torch.equal(torch.cat([sy for _, sy in slices]), y)


def test_every_rank_draws_what_one_process_draws():
    """Targets at every position (B, T) are sliced like the inputs, and a rank's generator ends where one
    process's does, so the next global batch is the same one too."""
    batches = TextBatches({"train": torch.arange(200)}, context_length=5, every_position=True)
    whole, g = [], torch.Generator().manual_seed(3)
    for _ in range(2):
        whole.append(batches("train", 6, g))
    for rank in range(3):
        shard, g = ShardedBatches(batches, rank, 3), torch.Generator().manual_seed(3)
        for x, y in whole:
            sx, sy = shard("train", 6, g)
            assert sx.shape == sy.shape == (2, 5)
            assert torch.equal(sx, x[2 * rank : 2 * rank + 2]) and torch.equal(sy, y[2 * rank : 2 * rank + 2])


def test_a_global_batch_that_does_not_split_evenly_is_an_error():
    with pytest.raises(ValueError, match="global batch of 7 examples does not split evenly over 2 processes"):
        ShardedBatches(unique_examples, 0, 2)("train", 7, torch.Generator())
    with pytest.raises(ValueError, match="got rank 2, world_size 2"):
        ShardedBatches(unique_examples, 2, 2)
    with pytest.raises(TypeError, match="world_size must be an integer"):
        ShardedBatches(unique_examples, 0, 2.0)


def test_checkpoints_and_keep_best_are_refused_even_on_one_process(tmp_path):
    model, batches, cfg = toy_model(), toy_batches(), toy_config(2, BATCH)
    with pytest.raises(ValueError, match="checkpointing a data-parallel run is left out"):
        train_data_parallel(model, batches, cfg, checkpoint=tmp_path / "ckpt.pt", progress=False)
    with pytest.raises(ValueError, match="keep_best is left out"):
        train_data_parallel(model, batches, replace(cfg, keep_best=True), progress=False)
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def one_process():
    """The course's plain `train` with the whole global batch, in float64 so that rounding is ~1e-14."""
    model = toy_model(dtype=torch.float64)
    history = train(model, toy_batches(), toy_config(STEPS, BATCH), progress=False)
    return model, history


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """The script under torchrun: two processes on the CPU, gloo, each with one thread."""
    out = tmp_path_factory.mktemp("ddp") / "two.pt"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "llmscratch.scripts.train_ddp", "--out", str(out), "--steps", str(STEPS),
               "--batch-size", str(BATCH), "--dtype", "float64", "--no-progress"]
    done = subprocess.run(command, env=env, cwd=out.parent, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 process(es)" in done.stdout
    saved = torch.load(out, weights_only=True)
    model = toy_model(dtype=torch.float64)
    model.load_state_dict(saved["model"])
    return model, saved


@needs_gloo
def test_two_processes_end_with_the_weights_of_one(one_process, two_processes):
    (single, _), (ddp, saved) = one_process, two_processes
    assert saved["world_size"] == 2
    assert saved["replica_divergence"] == 0.0  # rank 1 holds exactly rank 0's weights
    for p, q in zip(single.parameters(), ddp.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-10)


@needs_gloo
def test_the_averaged_history_is_the_one_process_history(one_process, two_processes):
    """Each rank logged its own slices' losses; their average over the ranks is the global batch's loss."""
    (_, history), (_, saved) = one_process, two_processes
    ddp = saved["history"]
    assert ddp["step"] == history.step and ddp["eval_step"] == history.eval_step == [0, STEPS]
    for name in ("train_loss", "eval_train", "eval_val"):
        assert ddp[name] == pytest.approx(getattr(history, name), rel=0, abs=1e-10), name


@needs_gloo
def test_without_the_all_reduce_the_ranks_would_not_agree(one_process, two_processes):
    """Rank 0 training alone on its slices ends elsewhere: the match above needed rank 1's gradients."""
    (single, _), (ddp, _) = one_process, two_processes
    alone = toy_model(dtype=torch.float64)
    train(alone, ShardedBatches(toy_batches(), 0, 2), toy_config(STEPS, BATCH), progress=False)
    assert max_difference(alone, ddp) > 1e-4 and max_difference(alone, single) > 1e-4


def test_outside_a_process_group_the_script_is_the_plain_loop(one_process, tmp_path, monkeypatch, capsys):
    """Started without torchrun, the same script trains on one process: bit-identical to `train`."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert rank_and_world_size() == (0, 1)
    single, history = one_process
    out = tmp_path / "one.pt"
    assert main(["--out", str(out), "--steps", str(STEPS), "--batch-size", str(BATCH), "--dtype", "float64",
                 "--no-progress", "--threads", str(torch.get_num_threads())]) == 0
    assert "1 process(es)" in capsys.readouterr().out
    saved = torch.load(out, weights_only=True)
    assert saved["world_size"] == 1 and saved["replica_divergence"] == 0.0
    assert all(torch.equal(saved["model"][k], v) for k, v in single.state_dict().items())
    assert saved["history"]["train_loss"] == history.train_loss
    assert global_history(history) is history and replica_divergence(single) == 0.0
