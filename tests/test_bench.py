"""llmscratch.bench: the trainer and the bare loop compute the same function; the command runs and records."""

import json

from llmscratch import bench


def test_trainer_and_bare_loop_take_the_same_step():
    # One update from the same weights and batches: any difference would be a different training.
    assert bench.same_function() < 1e-6


def test_the_benchmark_runs_and_writes_its_figures(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["bare", "trainer", "recipe", "--steps", "3", "--threads", "1", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [r["name"] for r in record["results"]] == ["bare", "trainer", "recipe"]
    assert record["recipe_model_config"]["position"] == "rope" and record["recipe_train_config"]["steps"] == 3
    for r in record["results"]:
        assert r["steps"] == 3 and r["ms_per_iteration"] > 0 and 0 < r["val_loss"] < 5
    assert record["model_config"]["n_layers"] == 4 and record["train_config"]["batch_size"] == 12
    assert "ms/iter" in capsys.readouterr().out
