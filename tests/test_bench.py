"""llmscratch.bench: the trainer and the bare loop compute the same function; the command runs and records."""

import json

from llmscratch import bench


def test_trainer_and_bare_loop_take_the_same_step():
    # One update from the same weights and batches: any difference would be a different training.
    assert bench.same_function() < 1e-6


def test_the_benchmark_runs_and_writes_its_figures(tmp_path, capsys, monkeypatch):
    out = tmp_path / "bench.json"
    # one ablation is enough to run the path; `run_order` below checks they are all made
    monkeypatch.setattr(bench, "ABLATIONS", {"batch 32": bench.ABLATIONS["batch 32"]})
    argv = ["bare", "trainer", "recipe", "ablations", "--steps", "3", "--threads", "1"]
    assert bench.main([*argv, "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [r["name"] for r in record["results"]] == ["bare", "trainer", "recipe", "ablation"]
    assert record["recipe_model_config"]["position"] == "rope" and record["recipe_train_config"]["steps"] == 3
    assert record["ablations"]["batch 32"]["train_config"]["batch_size"] == 12
    for r in record["results"]:
        # the batch-12 ablation takes 32/12 as many steps, to see the recipe's tokens
        assert r["steps"] == (8 if r["extra"].get("variant") == "batch 32" else 3)
        assert r["ms_per_iteration"] > 0 and 0 < r["val_loss"] < 5
    assert record["model_config"]["n_layers"] == 4 and record["train_config"]["batch_size"] == 12
    assert "ms/iter" in capsys.readouterr().out


def test_trainer_and_recipe_alternate_and_every_ablation_runs_with_every_seed():
    order = bench.run_order(["compile", "recipe", "trainer", "bare", "ablations"], [1, 2])
    assert order[:6] == [("bare", 1, None), ("trainer", 1, None), ("recipe", 1, None), ("trainer", 2, None),
                         ("recipe", 2, None), ("compile", 1, None)]
    assert order[6:] == [("ablation", seed, v) for v in bench.ABLATIONS for seed in (1, 2)]
    assert bench.run_order(["recipe"], [7]) == [("recipe", 7, None)]
    # each ablation changes exactly one thing relative to the recipe
    for variant, (model_cfg, train_cfg) in bench.ABLATIONS.items():
        changed = [k for k, v in vars(model_cfg).items() if getattr(bench.RECIPE_MODEL, k) != v]
        changed += [k for k, v in vars(train_cfg).items() if getattr(bench.RECIPE, k) != v]
        assert changed, variant
        assert variant == "the modern block" or len(set(changed) - {"d_ff", "steps"}) == 1, (variant, changed)
