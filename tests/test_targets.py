"""``plasticity_lib.targets``: the random regression targets of App. E.1 (Figs. 11-16),
checked against ``tasks.random_network_targets`` and an independent float64 numpy
computation of the same random networks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib import keys, targets, tasks


def _x(n=32, d=12, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _numpy_mlp(params, x):
    """float64 numpy forward pass of a ``tasks.random_mlp_init`` network."""
    h = np.asarray(x, np.float64)
    for i, (w, b) in enumerate(params):
        h = h @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
        if i < len(params) - 1:
            h = np.maximum(h, 0.0)
    return h[:, 0]


def test_target_parts_match_an_independent_numpy_computation():
    x = _x()
    key = jax.random.PRNGKey(3)
    high_frequency, smooth = (np.asarray(a) for a in targets.target_parts(key, x, width=16))
    k_hf, k_smooth = jax.random.split(key)
    f_hf = _numpy_mlp(tasks.random_mlp_init(k_hf, 12, 16, 2), x)
    f_smooth = _numpy_mlp(tasks.random_mlp_init(k_smooth, 12, 16, 2), x)
    ref_smooth = (f_smooth - f_smooth.mean()) / f_smooth.std()
    np.testing.assert_allclose(smooth, ref_smooth, rtol=1e-4, atol=1e-4)
    assert abs(smooth.mean()) < 1e-5 and smooth.std() == pytest.approx(1.0, abs=1e-5)
    # sin(1e5 f) amplifies the float32 rounding of f (~1e-7 relative) to ~1e-2
    ref_hf = np.sin(1e5 * f_hf)
    assert np.all(np.abs(high_frequency) <= 1.0)
    np.testing.assert_allclose(high_frequency, ref_hf, atol=0.1)
    assert np.corrcoef(high_frequency, ref_hf)[0, 1] > 0.99


def test_target_parts_are_the_parts_of_random_network_targets():
    x = _x()
    key = jax.random.PRNGKey(5)
    high_frequency, smooth = targets.target_parts(key, x)
    plain = tasks.random_network_targets(key, x, offset=0.0)[:, 0]
    scaled = tasks.random_network_targets(key, x, offset=2.0, alpha=3.0)[:, 0]
    np.testing.assert_allclose(plain, high_frequency, atol=1e-6)
    np.testing.assert_allclose(scaled, 2.0 + 3.0 * smooth + high_frequency, atol=1e-5)


def test_offset_targets_condition_major_and_conditions_differ_only_in_offset_and_scale():
    x = _x()
    seed_keys = keys.for_seeds([0, 1], 101)
    conditions = [(0.0, 0.0), (8.0, 0.0), (0.0, 3.0)]
    y = np.asarray(targets.offset_targets(x, seed_keys, conditions))
    assert y.shape == (6, 32, 1) and y.dtype == np.float32
    # row c * S + s: same seed, offset 8 is offset 0 shifted by 8 (same target networks)
    np.testing.assert_allclose(y[2] - y[0], 8.0, atol=1e-5)
    np.testing.assert_allclose(y[3] - y[1], 8.0, atol=1e-5)
    # alpha = 3: 3 * smooth + the same high-frequency part; zero mean, larger spread
    for s in range(2):
        high_frequency, smooth = (np.asarray(a) for a in targets.target_parts(seed_keys[s], x))
        np.testing.assert_allclose(y[4 + s, :, 0], 3.0 * smooth + high_frequency, atol=0.1)
        np.testing.assert_allclose(y[4 + s] - y[s], 3.0 * smooth[:, None], atol=1e-5)
    assert abs(y[4].mean()) < 0.3 and y[4].std() > 2.0
    assert not np.allclose(y[0], y[1])  # seeds differ
    # a seed's targets do not depend on the other seeds and conditions of the run
    alone = np.asarray(targets.offset_targets(x, seed_keys[1:], [(8.0, 0.0)]))
    np.testing.assert_array_equal(alone[0], y[3])
    # another key (the fine-tuning tag) draws other target networks
    other = np.asarray(targets.offset_targets(x, keys.for_seeds([0], 202), [(0.0, 0.0)]))
    assert not np.allclose(other[0], y[0])


def test_offset_targets_rejects_bad_arguments():
    x = _x()
    with pytest.raises(ValueError, match="target_keys"):
        targets.offset_targets(x, jax.random.PRNGKey(0), [(0.0, 0.0)])
    with pytest.raises(ValueError, match="conditions"):
        targets.offset_targets(x, keys.for_seeds([0], 101), [])
    with pytest.raises(ValueError, match="conditions"):
        targets.offset_targets(x, keys.for_seeds([0], 101), [(0.0, 0.0, 1.0)])


def test_offset_targets_jit_traces_keys_not_values():
    """Two calls with different keys give different targets from the same program."""
    x = jnp.asarray(_x(8, 4))
    a = targets.offset_targets(x, keys.for_seeds([0], 101), [(1.0, 0.0)])
    b = targets.offset_targets(x, keys.for_seeds([1], 101), [(1.0, 0.0)])
    assert a.shape == b.shape == (1, 8, 1) and not np.allclose(a, b)


def test_constant_predictor_loss_is_the_mse_of_the_best_constant():
    """The floor of issue 15: the MSE of predicting the target mean, checked against a
    brute-force minimisation over constants, shift-invariant (same floor for offset b and
    offset 0), and about 1/2 for the sin(M f) targets (variance of a uniform phase)."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=(3, 50)) * np.array([[1.0], [2.0], [0.1]])
    floor = targets.constant_predictor_loss(y)
    grid = np.linspace(-3, 3, 20001)
    brute = [min(np.mean((row[None] - grid[:, None]) ** 2, axis=1)) for row in y]
    np.testing.assert_allclose(floor, brute, rtol=1e-5)
    np.testing.assert_allclose(targets.constant_predictor_loss(y[..., None] + 32.0), floor)
    y_ft = np.asarray(targets.offset_targets(_x(), keys.for_seeds([0, 1], 202), [(8.0, 0.0)]))
    assert np.all(np.abs(targets.constant_predictor_loss(y_ft) - 0.5) < 0.15)
    with pytest.raises(ValueError, match="targets"):
        targets.constant_predictor_loss(np.zeros((2, 3, 2)))
