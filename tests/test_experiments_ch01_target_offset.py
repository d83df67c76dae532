"""Chapter 1 (target offset): targets, the pretrain -> fine-tune protocol, diagnostics and
the claim statistics, on tiny problems (fast)."""

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from plasticity_lib import claims, tasks, train
from plasticity_lib.experiments import ch01_target_offset as exp
from plasticity_lib.models import ModelConfig, make_network


def _x(n=32, d=12, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_make_targets_condition_major_and_offsets_only_shift():
    x = _x()
    y = np.asarray(exp.make_targets(x, [0, 1], [(0.0, 0.0), (8.0, 0.0), (0.0, 3.0)], exp.PRETRAIN_TAG))
    assert y.shape == (6, 32, 1)
    # same seed, different offset: identical up to the shift (same target network)
    np.testing.assert_allclose(y[2] - y[0], 8.0, atol=1e-4)
    np.testing.assert_allclose(y[3] - y[1], 8.0, atol=1e-4)
    # seeds differ
    assert not np.allclose(y[0], y[1])
    # matches the library's targets with the documented key (up to float rounding, which
    # sin(1e5 * f) amplifies: vmapped and direct calls round f differently)
    ref = np.asarray(tasks.random_network_targets(jax.random.fold_in(jax.random.PRNGKey(1), exp.PRETRAIN_TAG), x, 8.0))
    np.testing.assert_allclose(y[3], ref, atol=0.2)
    assert np.corrcoef(y[3][:, 0], ref[:, 0])[0, 1] > 0.98
    # a seed's targets do not depend on the other seeds and conditions of the run
    alone = np.asarray(exp.make_targets(x, [1], [(8.0, 0.0)], exp.PRETRAIN_TAG))
    np.testing.assert_array_equal(alone[0], y[3])
    # alpha control: zero mean, larger spread
    assert abs(y[4].mean()) < 0.3 and y[4].std() > 2.0
    # fine-tuning targets come from a different network
    y_ft = np.asarray(exp.make_targets(x, [0], [(0.0, 0.0)], exp.FINETUNE_TAG))
    assert not np.allclose(y_ft[0], y[0])


def test_run_phase_vmapped_models_are_independent_and_deterministic():
    x = _x(16, 6)
    net = make_network(ModelConfig(arch="mlp", width=8, depth=1, num_outputs=1))
    cfg = train.TrainConfig(loss="mse", batch_size=4, learning_rate=1e-2)
    y = np.asarray(exp.make_targets(x, [0, 1], [(0.0, 0.0), (4.0, 0.0)], exp.PRETRAIN_TAG))
    st, logs = exp.run_phase(net, cfg, x, y, [0, 1, 0, 1], 20, 5, chunk_steps=10, progress=False)
    assert logs["loss"].shape == (4, 4)
    st2, logs2 = exp.run_phase(net, cfg, x, y, [0, 1, 0, 1], 20, 5, chunk_steps=10, progress=False)
    np.testing.assert_array_equal(logs["loss"], logs2["loss"])  # same seed -> same numbers
    # model 3 (offset 4, seed 1) equals a run of that model alone
    _, logs3 = exp.run_phase(net, cfg, x, y[3:4], [1], 20, 5, chunk_steps=10, progress=False)
    np.testing.assert_allclose(logs["loss"][3], logs3["loss"][0], rtol=1e-4)
    # offset-4 models start with a much larger loss than offset-0 ones
    assert logs["loss"][2:, 0].min() > logs["loss"][:2, 0].max()


def test_feature_diagnostics_top_direction_carries_a_constant_feature():
    net = make_network(ModelConfig(arch="mlp", width=8, depth=1, num_outputs=1))
    x = _x(20, 5)
    params = net.init(jax.random.PRNGKey(0), jnp.asarray(x[:2]))
    # make one hidden unit a large constant (bias 100, zero weights) read by the head
    params = jax.tree_util.tree_map(lambda a: a, params)
    params["Dense_0"]["kernel"] = params["Dense_0"]["kernel"].at[:, 0].set(0.0)
    params["Dense_0"]["bias"] = params["Dense_0"]["bias"].at[0].set(100.0)
    params["Head"]["kernel"] = params["Head"]["kernel"].at[0, 0].set(0.5)
    params["Head"]["bias"] = params["Head"]["bias"].at[0].set(0.25)
    batched = jax.tree_util.tree_map(lambda a: jnp.stack([a, a]), params)
    d = exp.feature_diagnostics(net, batched, x)
    assert d["sv"].shape == (2, 8) and np.all(np.diff(d["sv"][0]) <= 1e-3)
    assert d["sv"][0, 0] > 100 * np.sqrt(20) * 0.99
    np.testing.assert_allclose(d["top_mean"][0], 50.0, rtol=0.05)  # 0.5 * 100 along the constant direction
    np.testing.assert_allclose(d["bias"], 0.25)
    assert d["dead_fraction"].shape == (2,) and 0.0 <= d["dead_fraction"][0] < 1.0
    out = np.asarray(net.apply(params, jnp.asarray(x)))[:, 0]
    np.testing.assert_allclose(d["output_mean"][0], out.mean(), rtol=1e-5)


def test_pretrain_finetune_dedupes_and_indexes():
    x = _x(16, 6)
    net = make_network(ModelConfig(arch="mlp", width=8, depth=1, num_outputs=1))
    cfg = train.TrainConfig(loss="mse", batch_size=4, learning_rate=1e-2)
    pre = [(0.0, 0.0), (4.0, 0.0), (0.0, 0.0), (0.0, 4.0)]
    ft = [(0.0, 0.0, 0.0, 0.0), (4.0, 0.0, 4.0, 0.0), (4.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0), (0.0, 4.0, 0.0, 0.0)]
    run = exp.pretrain_finetune(net, cfg, x, [0, 1], pre, ft, 20, 20, x[:8], pre_log_every=10, progress=False)
    assert run.pre_conditions == [(0.0, 0.0), (4.0, 0.0), (0.0, 4.0)]
    assert len(run.jobs) == 4
    assert run.pre_logs["loss"].shape == (3, 2, 2)
    assert run.ft_logs["loss"].shape == (4, 2, 2)
    assert run.pre_diag["sv"].shape == (3, 2, 8)
    assert run.final_loss(4.0, "same").shape == (2,)
    np.testing.assert_array_equal(run.final_loss(0.0, "same"), run.final_loss(0.0, "zero"))
    np.testing.assert_array_equal(run.final_loss(0.0, "zero", pre_alpha=4.0),
                                  run.ft_logs["loss"][run.job_index(0.0, 0.0, pre_alpha=4.0), :, -1])
    with pytest.raises(KeyError):
        run.pre_index(8.0)
    # fine-tuning really starts from the pretrained parameters: the loss of the first
    # fine-tuning window on offset-4 targets after offset-4 pretraining is far below that
    # of offset-4 targets at initialisation (~16)
    assert run.ft_logs["loss"][run.job_index(4.0, 4.0), :, 0].mean() < run.pre_logs["loss"][1, :, 0].mean()


def test_statistics():
    rng = np.random.default_rng(0)
    doses = [0, 8, 16, 32]
    L = np.array([1.0, 2.0, 4.0, 8.0]) * (1 + 0.05 * rng.normal(size=(5, 4)))
    e = exp.spearman_estimate(L, doses)
    assert e.value == pytest.approx(1.0) and e.low is not None and e.low >= 0.8
    r = exp.ratio_estimate(L[:, -1], L[:, 0])
    assert r.value == pytest.approx(L[:, -1].mean() / L[:, 0].mean())
    assert r.low < r.value < r.high
    d = exp.difference_of_ratios_estimate(L[:, -1], L[:, 0], L[:, 1], L[:, 0])
    assert d.value == pytest.approx(r.value - L[:, 1].mean() / L[:, 0].mean())
    assert claims.verdict_for(d, 0.0, ">") == "reproduced"
    with pytest.raises(ValueError):
        exp.spearman_estimate(L[:, :3], doses)
    # one adjacent swap among 5 doses is exactly rho = 0.9 (scipy: 0.8999999999999998)
    assert claims.spearman([0, 8, 16, 32, 64], [1.0, 3.0, 2.0, 4.0, 5.0]) == 0.9
    assert claims.verdict_for(claims.exact(claims.spearman([0, 1, 2, 3, 4], [1, 3, 2, 4, 5])), 0.9, ">=") == "reproduced"


def test_curve_frame_skips_and_labels():
    logs = np.arange(12, dtype=float).reshape(2, 6)
    df = exp.curve_frame(logs, 10, [0, 1], skip_steps=20, every=2, network="a")
    assert sorted(df["step"].unique()) == [30, 50]
    assert set(df["network"]) == {"a"} and len(df) == 4


def _fake_run(norm, offsets, alphas, S, loss_of, sv_of, top_of, bias=0.1):
    pre = [(float(b), 0.0) for b in offsets] + [(0.0, float(a)) for a in alphas]
    jobs = []
    for c, (b, a) in enumerate(pre):
        if a == 0.0:
            jobs += [(c, b, 0.0), (c, 0.0, 0.0)]
        else:
            jobs += [(c, 0.0, 0.0)]
    jobs = exp._dedupe(jobs)
    ft = np.zeros((len(jobs), S, 3))
    for j, (c, fo, fa) in enumerate(jobs):
        ft[j, :, -1] = loss_of(pre[c], fo) * (1 + 0.01 * np.arange(S))
    sv = np.zeros((len(pre), S, 4))
    top = np.zeros((len(pre), S))
    for c, cond in enumerate(pre):
        sv[c] = sv_of(cond)
        top[c] = top_of(cond)
    diag = {"sv": sv, "top_mean": top, "bias": np.full((len(pre), S), bias)}
    return exp.OffsetRun(norm, np.arange(S), pre, jobs, {"loss": np.zeros((len(pre), S, 2))}, {"loss": ft}, 10, 10,
                         diag, diag, np.zeros((len(pre), S), bool), np.zeros((len(jobs), S), bool), 0.0)


def test_claim_estimates_on_synthetic_runs():
    offsets, alphas, S = [0.0, 8.0, 16.0, 64.0], [64.0], 4
    none = _fake_run("none", offsets, alphas, S,
                     loss_of=lambda pre, fo: 0.01 * (1 + pre[0]) if pre[1] == 0 else 0.012,
                     sv_of=lambda c: np.array([10 + 10 * c[0], 5, 2, 1]), top_of=lambda c: c[0] * 0.95)
    ln = _fake_run("layer", offsets, [], S, loss_of=lambda pre, fo: 0.01 * (1 + 0.1 * pre[0]),
                   sv_of=lambda c: np.array([10 + 0.1 * c[0], 5 / (1 + c[0]), 2, 1]), top_of=lambda c: c[0])
    est = exp.claim_estimates({"none": none, "layer": ln}, offsets, alphas)
    assert est["rho_same"].value == pytest.approx(1.0) and est["rho_zero"].value == pytest.approx(1.0)
    assert est["ratio_zero"].value == pytest.approx(65.0, rel=0.02)
    assert est["ratio_zero_ln"].value == pytest.approx(7.4, rel=0.02)
    assert est["ratio_zero_gap"].value == pytest.approx(65.0 - 7.4, rel=0.02)
    assert est["sigma1_growth"].value == pytest.approx(65.0)
    assert est["sigma1_growth_ln"].value == pytest.approx(16.4 / 10)
    assert est["sigma21_change_ln"].value < 0.05
    assert est["top_mean_over_b"].value == pytest.approx(0.95)
    assert est["bias_over_b"].value == pytest.approx(0.1 / 64)
    assert est["alpha_ratio"].value == pytest.approx(1.2, rel=0.02)
    with pytest.raises(ValueError):
        exp.claim_estimates({"none": none, "layer": ln}, [8.0, 64.0], alphas)
