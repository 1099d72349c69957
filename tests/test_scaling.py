"""Scaling laws: the fits recover the laws that made their data, the compute-optimal split matches a
brute-force search, bad inputs are refused, and the sweep and its script run end to end."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from llmscratch import GPTConfig, parameter_formula
from llmscratch.flops import training_flops_per_token
from llmscratch.scaling import (
    SWEEP_SIZES,
    SWEEP_TRAIN,
    ChinchillaFit,
    budget_config,
    compute_optimal,
    fit_chinchilla,
    fit_power_law,
    isoflop_curve,
    run_sweep,
)

# Sizes and budgets on the sweep's scale: 12 sizes for one variable; 7 sizes x 5 budgets for two.
N = np.logspace(4, 7, 12)
GRID_N, GRID_D = (a.ravel() for a in np.meshgrid(np.logspace(4, 7, 7), np.logspace(5, 8, 5)))
# Laws whose losses fall from about 4-6 nats to 1-2.5, like a small GPT's on a 512-token BPE;
# alpha != beta and A != B, so a fit that swapped the two terms would fail.
POWER_LAWS = [(2.0, 30.0, 0.3), (1.0, 300.0, 0.5), (3.5, 5.0, 0.1)]
LAWS = [(2.0, 30.0, 60.0, 0.3, 0.35), (1.0, 10.0, 300.0, 0.15, 0.45)]


def _noise(shape, seed, sigma=0.005):
    """Multiplicative noise of about 0.5 %: the spread of one run's loss from seed to seed."""
    return np.exp(np.random.default_rng(seed).normal(0.0, sigma, shape))


@pytest.mark.parametrize("E, A, alpha", POWER_LAWS)
def test_power_law_recovers_its_parameters_from_exact_data(E, A, alpha):
    fit = fit_power_law(N, E + A / N**alpha)
    np.testing.assert_allclose([fit.E, fit.A, fit.alpha], [E, A, alpha], rtol=1e-6)
    assert fit.rms < 1e-8
    assert fit(1e9) == pytest.approx(E + A / 1e9**alpha, rel=1e-6)  # extrapolates the same law


def test_power_law_with_noise_stays_close():
    """Over 20 seeds the worst misses were 2 % in E, 17 % in A and 0.02 in alpha; a wrong
    fit (one that ignored the data, or mixed up E and A) misses by far more."""
    loss = (2.0 + 30.0 / N**0.3) * _noise(N.shape, seed=0)
    fit = fit_power_law(N, loss)
    assert fit.E == pytest.approx(2.0, rel=0.05)
    assert fit.A == pytest.approx(30.0, rel=0.3)
    assert fit.alpha == pytest.approx(0.3, abs=0.03)
    assert 0.003 < fit.rms < 0.03  # the noise is about 0.5 % of losses of 2.2-3.9 nats


@pytest.mark.parametrize("E, A, B, alpha, beta", LAWS)
def test_chinchilla_recovers_its_parameters_from_exact_data(E, A, B, alpha, beta):
    loss = E + A / GRID_N**alpha + B / GRID_D**beta
    fit = fit_chinchilla(GRID_N, GRID_D, loss)
    np.testing.assert_allclose([fit.E, fit.A, fit.B, fit.alpha, fit.beta], [E, A, B, alpha, beta], rtol=1e-6)
    assert fit.rms < 1e-8


def test_chinchilla_with_noise_stays_close():
    """Tolerances about twice the worst misses over 20 seeds (2 % in E, 11 % in A, 28 % in B,
    0.013 in alpha, 0.029 in beta). The data term is the worse determined: at these budgets it
    is the smaller of the two, so the same noise hides more of it."""
    loss = (2.0 + 30.0 / GRID_N**0.3 + 60.0 / GRID_D**0.35) * _noise(GRID_N.shape, seed=0)
    fit = fit_chinchilla(GRID_N, GRID_D, loss)
    assert fit.E == pytest.approx(2.0, rel=0.05)
    assert fit.A == pytest.approx(30.0, rel=0.2)
    assert fit.B == pytest.approx(60.0, rel=0.5)
    assert fit.alpha == pytest.approx(0.3, abs=0.025)
    assert fit.beta == pytest.approx(0.35, abs=0.05)


def test_huber_loss_all_but_ignores_a_diverged_run():
    """One run (smallest model, smallest budget) ends 20 % above the law: least squares bends the
    exponents towards it, Hoffmann et al.'s Huber loss (delta 1e-3) hardly moves."""
    loss = (2.0 + 30.0 / GRID_N**0.3 + 60.0 / GRID_D**0.3) * _noise(GRID_N.shape, seed=0, sigma=0.002)
    loss[np.argmin(GRID_N * GRID_D)] *= 1.2
    squares = fit_chinchilla(GRID_N, GRID_D, loss)
    huber = fit_chinchilla(GRID_N, GRID_D, loss, huber_delta=1e-3)
    assert abs(squares.alpha - 0.3) > 0.02 and abs(squares.E - 2.0) > 0.05  # the outlier matters
    assert huber.alpha == pytest.approx(0.3, abs=0.005) and huber.beta == pytest.approx(0.3, abs=0.005)
    assert huber.E == pytest.approx(2.0, rel=0.01)


def test_coefficients_stay_non_negative():
    # A pure power law (E = 0): the fit finds E = 0, not a small negative number.
    pure = fit_power_law(N, 30.0 / N**0.3)
    assert 0.0 <= pure.E < 1e-6 and pure.alpha == pytest.approx(0.3, rel=1e-6)
    # Loss that rises with size: unconstrained least squares would take A < 0; the fit says A = 0,
    # a flat line (its alpha means nothing).
    rising = fit_power_law(N, 3.0 + 0.1 * np.log(N))
    assert rising.A == 0.0 and rising.E > 0.0
    np.testing.assert_allclose(rising(N), rising.E)


def test_predictions_have_the_shape_of_their_input():
    fit = ChinchillaFit(E=2.0, A=30.0, B=60.0, alpha=0.3, beta=0.35)
    assert isinstance(fit(1e6, 1e7), float)
    assert fit(np.array([1e5, 1e6]), 1e7).shape == (2,)
    assert fit(torch.tensor([1e5, 1e6]), torch.tensor([1e7, 1e8])).shape == (2,)


@pytest.mark.parametrize("flops", [1e12, 1e15, 1e18])
@pytest.mark.parametrize("law", LAWS)
def test_compute_optimal_matches_a_brute_force_search(law, flops):
    """The closed form against the minimum of the IsoFLOP curve on a log grid (1.4e-4 apart)."""
    fit = ChinchillaFit(*law)
    n_opt, d_opt = compute_optimal(fit, flops)
    n = np.logspace(0, 16, 2 ** 18 + 1)
    n = n[flops / (6 * n) >= 1]  # at least one token
    losses = isoflop_curve(fit, flops, n)
    best = int(np.argmin(losses))
    assert 0 < best < len(n) - 1  # a minimum inside the grid, not at its edge
    assert n_opt == pytest.approx(n[best], rel=2e-4)
    assert d_opt == pytest.approx(flops / (6 * n_opt), rel=1e-12)
    assert fit(n_opt, d_opt) <= losses[best] + 1e-12


def test_compute_optimal_grows_by_the_predicted_exponent():
    E, A, B, alpha, beta = LAWS[1]
    fit = ChinchillaFit(E, A, B, alpha, beta)
    n_opt, d_opt = compute_optimal(fit, np.array([1e14, 1e15]))
    assert n_opt[1] / n_opt[0] == pytest.approx(10 ** (beta / (alpha + beta)), rel=1e-12)
    assert d_opt[1] / d_opt[0] == pytest.approx(10 ** (alpha / (alpha + beta)), rel=1e-12)
    assert compute_optimal(fit, 1e15) == pytest.approx((n_opt[1], d_opt[1]), rel=1e-12)


def test_isoflop_curve_is_the_law_along_the_line():
    fit = ChinchillaFit(*LAWS[0])
    n = np.logspace(3, 8, 11)
    np.testing.assert_allclose(isoflop_curve(fit, 1e15, n), fit(n, 1e15 / (6 * n)), rtol=1e-12)


BAD_POWER_LAW = [
    (([1e4, 1e5, 1e6], [3.0, 2.5]), ValueError),  # lengths differ
    (([1e4, 1e5], [3.0, 2.5]), ValueError),  # fewer points than parameters
    (([1e4, 1e4, 1e5, 1e5], [3.0, 3.1, 2.5, 2.6]), ValueError),  # two sizes cannot fix alpha
    (([0.0, 1e5, 1e6], [3.0, 2.5, 2.2]), ValueError),  # a size of 0
    (([1e4, 1e5, 1e6], [3.0, -2.5, 2.2]), ValueError),  # a negative loss
    (([1e4, 1e5, 1e6], [3.0, math.nan, 2.2]), ValueError),
    (([[1e4, 1e5, 1e6]], [[3.0, 2.5, 2.2]]), ValueError),  # not one-dimensional
    ((["1e4", "1e5", "1e6"], [3.0, 2.5, 2.2]), TypeError),
    ((None, [3.0, 2.5, 2.2]), TypeError),
    (([True, False, True], [3.0, 2.5, 2.2]), TypeError),
]


@pytest.mark.parametrize("args, error", BAD_POWER_LAW)
def test_fit_power_law_refuses_bad_input(args, error):
    with pytest.raises(error):
        fit_power_law(*args)


def test_fit_chinchilla_refuses_bad_input():
    loss = 2.0 + 30.0 / GRID_N**0.3 + 60.0 / GRID_D**0.3
    with pytest.raises(ValueError, match="5 parameters"):
        fit_chinchilla(GRID_N[:4], GRID_D[:4], loss[:4])
    with pytest.raises(ValueError, match="differ in length"):
        fit_chinchilla(GRID_N, GRID_D[:-1], loss)
    with pytest.raises(ValueError, match="distinct"):  # one budget: beta cannot be fitted
        fit_chinchilla(GRID_N, np.full_like(GRID_D, 1e6), loss)
    with pytest.raises(ValueError, match="positive"):
        fit_chinchilla(GRID_N, -GRID_D, loss)


def test_compute_optimal_refuses_what_has_no_optimum():
    fit = ChinchillaFit(*LAWS[0])
    with pytest.raises(ValueError):
        compute_optimal(fit, 0.0)
    with pytest.raises(ValueError):
        isoflop_curve(fit, -1.0, [1e6])
    with pytest.raises(ValueError, match="fall with both"):  # B = 0: more data never helps
        compute_optimal(replace(fit, B=0.0), 1e15)


# --- The sweep ---------------------------------------------------------------------------------

TINY_SIZES = {"a": GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layers=1, n_heads=2),
              "b": GPTConfig(vocab_size=20, context_length=8, d_model=32, n_layers=2, n_heads=2)}
TINY_TRAIN = replace(SWEEP_TRAIN, batch_size=4, warmup_steps=1)  # 32 tokens a step


def _random_splits(vocab_size, sizes=(("train", 2000), ("val", 1000))):
    g = torch.Generator().manual_seed(0)
    return {name: torch.randint(0, vocab_size, (n,), generator=g) for name, n in sizes}


def test_budget_config_counts_whole_steps():
    cfg = budget_config(131_072 + 1000, 64)  # 1,024 tokens a step; the rest is dropped
    assert cfg.steps == 128 and cfg.warmup_steps == 12 and cfg.eval_interval == 128
    assert budget_config(2_097_152, 64).warmup_steps == SWEEP_TRAIN.warmup_steps
    with pytest.raises(ValueError, match="one step"):
        budget_config(1000, 64)


def test_sweep_records_every_run():
    torch.set_num_threads(1)
    splits = _random_splits(20)
    runs = run_sweep(TINY_SIZES, [64, 100], splits, TINY_TRAIN, progress=False)
    assert [(r["name"], r["tokens"], r["steps"]) for r in runs] == [
        ("a", 64, 2), ("a", 96, 3), ("b", 64, 2), ("b", 96, 3)]
    for run in runs:
        config = GPTConfig(**run["config"])
        counts = parameter_formula(config)
        assert run["num_parameters"] == counts["total"]
        assert run["non_embedding_parameters"] == (counts["total"] - counts["token_embedding"]
                                                   - counts["position_embedding"])
        assert run["training_flops"] == training_flops_per_token(config) * run["tokens"]
        assert abs(run["val_loss"] - math.log(20)) < 0.5  # a few steps on random tokens
        assert run["seed"] == 42 and run["wall_seconds"] >= 0
    with pytest.raises(ValueError, match="one step"):  # refused before anything trains
        run_sweep(TINY_SIZES, [64, 16], splits, TINY_TRAIN, progress=False)


def test_sweep_sizes_span_the_planned_range():
    counts = [parameter_formula(c)["total"] - parameter_formula(c)["token_embedding"]
              - parameter_formula(c)["position_embedding"] for c in SWEEP_SIZES.values()]
    assert len(counts) >= 6 and counts == sorted(counts)
    assert 15_000 < counts[0] < 30_000 and 1_500_000 < counts[-1] < 2_500_000


def test_sweep_script_writes_json_with_provenance(tmp_path, monkeypatch):
    from llmscratch.scripts import scaling_sweep as script

    splits = _random_splits(512, (("train", 3000), ("val", 1500)))
    monkeypatch.setattr(script, "shakespeare_bpe_splits", lambda: (None, splits, {"val": 3000}))
    out = tmp_path / "sweep.json"
    assert script.main(["--quick", "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert result["sizes"] == list(SWEEP_SIZES)[:2] and result["budgets"] == [8192, 16384]
    assert [r["tokens"] for r in result["runs"]] == [8192, 16384] * 2
    for run in result["runs"]:
        assert run["val_bits_per_char"] == pytest.approx(run["val_loss"] / math.log(2) / 2.0, abs=1e-4)
    assert result["provenance"]["command"].startswith("python -m llmscratch.scripts.scaling_sweep --quick")
    with pytest.raises(SystemExit):  # steps come from the budgets
        script.main(["--steps", "3", "--out", str(out)])
    with pytest.raises(SystemExit):  # less than one step
        script.main(["--budgets", "100", "--out", str(out), "--no-progress"])
