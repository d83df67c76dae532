"""The pretrain -> fine-tune protocol of App. E.1 as chapter 1 writes it from library
pieces: ``train.init_state`` (fresh optimizer, optionally from pretrained parameters),
``train.train_steps`` with shared inputs and per-model targets, ``runner.run_chunks``,
and the Fig. 14-15 feature diagnostics, on tiny problems."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib import diagnostics, keys, runner, targets, tasks, train
from plasticity_lib.models import ModelConfig, make_network

NET = make_network(ModelConfig(arch="mlp", width=8, depth=1, num_outputs=1))
CFG = train.TrainConfig(loss="mse", batch_size=4, learning_rate=1e-2)
X = jnp.asarray(np.random.default_rng(0).normal(size=(16, 6)), jnp.float32)


def _phase(y, model_seeds, num_steps, chunk, log_every, init_params=None):
    state = train.init_state(NET, CFG, model_seeds, X[:2], init_params=init_params)
    task = tasks.Task(X, jnp.asarray(y), jnp.ones((X.shape[0],), jnp.float32))

    def run_chunk(state, _):
        return train.train_steps(
            NET, CFG, state, task, chunk, log_every=log_every, task_batched=(None, 0, None)
        )

    return runner.run_chunks(
        run_chunk, state, num_steps // chunk, desc="", unit="step", progress=False
    )


def test_chunked_phase_equals_one_call_and_models_are_independent():
    y = targets.offset_targets(X, keys.for_seeds([0, 1], 101), [(0.0, 0.0), (4.0, 0.0)])
    state, logs = _phase(y, [0, 1, 0, 1], 20, 10, 5)
    assert logs["loss"].shape == (4, 4)
    # two chunks of 10 steps are the same program as one call of 20 steps
    _, one_call = _phase(y, [0, 1, 0, 1], 20, 20, 5)
    np.testing.assert_allclose(logs["loss"], one_call["loss"], rtol=1e-6)
    # deterministic
    _, again = _phase(y, [0, 1, 0, 1], 20, 10, 5)
    np.testing.assert_array_equal(logs["loss"], again["loss"])
    # model 3 (offset 4, seed 1) trains as it would alone
    _, alone = _phase(y[3:4], [1], 20, 10, 5)
    np.testing.assert_allclose(logs["loss"][3], alone["loss"][0], rtol=1e-4)
    # offset-4 models start with a much larger loss than offset-0 ones (E[y^2] ~ 16.5)
    assert logs["loss"][2:, 0].min() > logs["loss"][:2, 0].max()


def test_fine_tuning_starts_from_the_pretrained_parameters_with_a_fresh_optimizer():
    y = targets.offset_targets(X, keys.for_seeds([0, 1], 101), [(4.0, 0.0)])
    pretrained, pre_logs = _phase(y, [0, 1], 40, 20, 10)
    y_ft = targets.offset_targets(X, keys.for_seeds([0, 1], 202), [(4.0, 0.0)])
    fresh = train.init_state(NET, CFG, [10_000, 10_001], X[:2], init_params=pretrained.params)
    for a, b in zip(
        jax.tree_util.tree_leaves(fresh.params), jax.tree_util.tree_leaves(pretrained.params)
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.all(np.asarray(fresh.step) == 0)
    adam_moments = [
        np.asarray(v) for v in jax.tree_util.tree_leaves(fresh.opt_state) if np.ndim(v) > 1
    ]
    assert adam_moments and all(np.all(m == 0) for m in adam_moments)
    _, ft_logs = _phase(y_ft, [10_000, 10_001], 10, 10, 10, init_params=pretrained.params)
    # the pretrained network already predicts the offset: its first fine-tuning window is
    # far below the first pretraining window (a network at initialisation, loss ~16)
    assert ft_logs["loss"][:, 0].max() < pre_logs["loss"][:, 0].min()


def test_feature_diagnostics_of_a_network_with_a_constant_unit():
    """One hidden unit is the constant 100 (zero weights, bias 100), read by the head with
    weight 0.5: the top singular direction carries 0.5 * 100 = 50 of the output."""
    x = X[:12]
    params = NET.init(jax.random.PRNGKey(0), x[:2])
    params["Dense_0"]["kernel"] = params["Dense_0"]["kernel"].at[:, 0].set(0.0)
    params["Dense_0"]["bias"] = params["Dense_0"]["bias"].at[0].set(100.0)
    params["Dense_0"]["kernel"] = params["Dense_0"]["kernel"].at[:, 1].set(0.0)
    params["Dense_0"]["bias"] = params["Dense_0"]["bias"].at[1].set(-1.0)  # a dead unit
    params["Head"]["kernel"] = params["Head"]["kernel"].at[0, 0].set(0.5)
    params["Head"]["bias"] = params["Head"]["bias"].at[0].set(0.25)
    features = NET.apply_with_intermediates(params, x)[1].features
    head = params["Head"]
    top = diagnostics.representation.top_singular_direction_output(
        features, head["kernel"], head["bias"]
    )
    sv = np.asarray(diagnostics.representation.singular_values(features))
    reference = np.linalg.svd(np.asarray(features, np.float64), compute_uv=False)
    np.testing.assert_allclose(sv, reference, rtol=1e-4, atol=1e-4)
    assert sv[0] >= 100 * np.sqrt(12) * 0.99
    assert float(top["mean"][0]) == pytest.approx(50.0, rel=0.05)
    assert float(top["bias"][0]) == pytest.approx(0.25)
    dead = np.asarray(diagnostics.units.dead_units(features))
    np.testing.assert_array_equal(dead, np.all(np.asarray(features) == 0.0, axis=0))
    assert dead[1] and not dead[0]
