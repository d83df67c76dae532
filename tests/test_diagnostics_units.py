"""Unit diagnostics vs independent NumPy computations on constructed activations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib.diagnostics import units as U


@pytest.fixture(scope="module")
def layers():
    rng = np.random.default_rng(0)
    z1 = rng.normal(size=(32, 10)).astype(np.float32)
    z1[:, 0] = -np.abs(z1[:, 0]) - 0.1  # dead
    z1[:, 1] = np.abs(z1[:, 1]) + 0.1  # linearized (all positive)
    z1[:, 2] = -np.abs(z1[:, 2]) - 0.1  # dead
    z2 = rng.normal(size=(32, 6)).astype(np.float32)
    z2[:, 3] = np.abs(z2[:, 3]) + 0.1
    z2[:, 4] = np.abs(z2[:, 4]) + 0.1
    return [z1, z2]


def test_dead_dormant_vs_numpy(layers):
    acts = [np.maximum(z, 0) for z in layers]
    per_layer, total = U.dead_unit_fraction([jnp.asarray(a) for a in acts])
    np_dead = [np.all(a == 0, axis=0) for a in acts]
    np.testing.assert_allclose(per_layer, [d.mean() for d in np_dead])
    np.testing.assert_allclose(total, sum(d.sum() for d in np_dead) / 16)
    assert float(per_layer[0]) == pytest.approx(0.2)
    # ReDo score
    a = acts[0]
    m = np.abs(a).mean(0)
    np.testing.assert_allclose(U.dormant_scores(a), m / m.mean(), rtol=1e-5)
    np.testing.assert_array_equal(U.dormant_units(a, 0.3), m / m.mean() <= 0.3)
    np.testing.assert_array_equal(U.dormant_units(a, 0.0), np_dead[0])
    # an all-silent layer is entirely dormant, not NaN
    assert bool(jnp.all(U.dormant_units(jnp.zeros((4, 3)))))


def test_linearized_piecewise_vs_numpy(layers):
    for z in layers:
        np.testing.assert_array_equal(U.linearized_units(z, "relu"), np.all(z > 0, 0))
        one_sign = np.all(z > 0, 0) | np.all(z < 0, 0)
        np.testing.assert_array_equal(U.linearized_units(z, "leaky_relu"), one_sign)
        np.testing.assert_array_equal(U.linearized_units(z, "abs"), one_sign)
        np.testing.assert_array_equal(U.saturated_units(z, "relu"), np.all(z <= 0, 0))
    per_layer, total = U.linearized_unit_fraction(layers, "abs")
    np.testing.assert_allclose(per_layer, [0.3, 2 / 6])
    np.testing.assert_allclose(total, 5 / 16)


def test_linearized_smooth():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(64,)).astype(np.float32)
    z = np.stack(
        [
            0.5 + 0.01 * base,  # tiny variance: linear
            2.0 * base,  # spans the nonlinearity
            -12.0 + 0.5 * base,  # saturated (constant region)
            6.0 + 0.5 * base,  # deep in the positive region of gelu/silu: linear
        ],
        axis=1,
    )
    lin_tanh = np.asarray(U.linearized_units(z, "tanh", 0.1))
    sat_tanh = np.asarray(U.saturated_units(z, "tanh", 0.1))
    np.testing.assert_array_equal(lin_tanh, [True, False, False, False])
    np.testing.assert_array_equal(sat_tanh, [False, False, True, True])
    lin_gelu = np.asarray(U.linearized_units(z, "gelu", 0.1))
    np.testing.assert_array_equal(lin_gelu, [True, False, False, True])
    np.testing.assert_array_equal(U.saturated_units(z, "gelu", 0.1), [0, 0, 1, 0])
    # slope spread vs a NumPy derivative of tanh
    s = 1 - np.tanh(z) ** 2
    np.testing.assert_allclose(U.slope_spread(z, "tanh"), s.max(0) - s.min(0), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError):
        U.linearized_units(z, "nonexistent")


def test_same_direction_vs_loop():
    rng = np.random.default_rng(2)
    n, d_in, d_out = 20, 7, 12
    feats = np.abs(rng.normal(size=(n, d_in))).astype(np.float32)  # post-ReLU features
    upd = rng.normal(size=(d_in, d_out)).astype(np.float32)
    upd[:, 0] = -np.abs(upd[:, 0])  # decreases every preactivation
    upd[:, 1] = np.abs(upd[:, 1])
    db = rng.normal(size=(d_out,)).astype(np.float32) * 0.1
    for bias in (None, db):
        neg_np = np.zeros(d_out, bool)
        pos_np = np.zeros(d_out, bool)
        for i in range(d_out):
            dz = [feats[k] @ upd[:, i] + (0 if bias is None else bias[i]) for k in range(n)]
            neg_np[i] = all(v < 0 for v in dz)
            pos_np[i] = all(v > 0 for v in dz)
        neg, pos = U.same_direction_units(upd, feats, bias)
        np.testing.assert_array_equal(neg, neg_np)
        np.testing.assert_array_equal(pos, pos_np)
        fn, fp = U.same_direction_fraction(upd, feats, bias)
        assert float(fn) == pytest.approx(neg_np.mean())
        assert float(fp) == pytest.approx(pos_np.mean())
    assert neg_np[0] and pos_np[1]


def test_weight_gradient_from_preact_grads():
    rng = np.random.default_rng(3)
    a = jnp.asarray(rng.normal(size=(9, 4)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
    b = jnp.zeros(3)
    y = jnp.asarray(rng.normal(size=(9, 3)), jnp.float32)
    loss = lambda w, b: jnp.mean(jnp.sum(jnp.tanh(a @ w + b) * y, axis=1))
    gw, gb = jax.grad(loss, (0, 1))(w, b)
    dz = jax.grad(lambda z: jnp.mean(jnp.sum(jnp.tanh(z) * y, axis=1)))(a @ w + b) * 9
    gw2, gb2 = U.weight_gradient_from_preact_grads(a, dz, "mean")
    np.testing.assert_allclose(gw2, gw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gb2, gb, rtol=1e-5, atol=1e-6)


def test_preactivation_stats_vs_numpy(layers):
    z, z0 = layers[0], layers[0] * 0.5 + 1.0
    st = U.preactivation_stats(z, z0, quantiles=(0.1, 0.5, 0.9))
    np.testing.assert_allclose(st["mean"], z.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(st["std"], z.std(), rtol=1e-5)
    np.testing.assert_allclose(st["quantiles"], np.quantile(z, [0.1, 0.5, 0.9]), rtol=1e-5)
    np.testing.assert_allclose(st["unit_std"], z.std(0).mean(), rtol=1e-5)
    sd0 = z0.std(0)
    np.testing.assert_allclose(
        st["mean_shift"], (np.abs(z.mean(0) - z0.mean(0)) / (sd0 + 1e-8)).mean(), rtol=1e-4
    )
    np.testing.assert_allclose(st["std_ratio"], 2.0, rtol=1e-4)
    w1 = np.abs(np.sort(z.ravel()) - np.sort(z0.ravel())).mean()
    np.testing.assert_allclose(st["w1"], w1, rtol=1e-5)
    per = U.preactivation_stats_per_layer(layers)
    assert per["mean"].shape == (2,) and per["quantiles"].shape == (2, 5)


def test_jit_vmap_over_seeds(layers):
    z = jnp.stack([jnp.asarray(layers[0]), -jnp.asarray(layers[0])])  # (S=2, n, units)
    f = jax.jit(jax.vmap(lambda zz: U.dead_unit_fraction([jax.nn.relu(zz)])[1]))
    out = f(z)
    for s in range(2):
        assert float(out[s]) == pytest.approx(float(np.all(np.asarray(z[s]) <= 0, 0).mean()))
    g = jax.jit(jax.vmap(lambda zz: U.linearized_unit_fraction([zz], "gelu")[1]))
    assert g(z).shape == (2,)


def test_preactivation_stats_quantile_inputs(layers):
    """quantile_inputs=k: quantiles and w1 from the first k inputs (NumPy on z[:k]);
    the moments still use every input; None / k >= batch is the default."""
    z, z0 = layers[0], layers[0] * 0.5 + 1.0
    full = U.preactivation_stats(z, z0, quantiles=(0.1, 0.5, 0.9))
    sub = jax.jit(lambda a, b: U.preactivation_stats(a, b, (0.1, 0.5, 0.9), quantile_inputs=8))(
        z, z0
    )
    np.testing.assert_allclose(sub["quantiles"], np.quantile(z[:8], [0.1, 0.5, 0.9]), rtol=1e-5)
    w1 = np.abs(np.sort(z[:8].ravel()) - np.sort(z0[:8].ravel())).mean()
    np.testing.assert_allclose(sub["w1"], w1, rtol=1e-5)
    for k in (
        "mean",
        "std",
        "unit_std",
        "unit_mean_std",
        "frac_positive",
        "mean_shift",
        "std_ratio",
    ):
        np.testing.assert_allclose(sub[k], full[k], rtol=1e-6, err_msg=k)
    for k in (None, 32, 1000):  # the whole batch: identical to the default
        same = U.preactivation_stats(z, z0, (0.1, 0.5, 0.9), quantile_inputs=k)
        for name in full:
            np.testing.assert_array_equal(same[name], full[name], err_msg=f"{k} {name}")
    # (..., units) inputs: leading axes flattened first, then the first k rows
    z3 = z.reshape(4, 8, 10)
    np.testing.assert_allclose(
        U.preactivation_stats(z3, quantile_inputs=8)["quantiles"],
        np.quantile(z[:8], [0.05, 0.25, 0.5, 0.75, 0.95]),
        rtol=1e-5,
    )
    per = U.preactivation_stats_per_layer(layers, quantile_inputs=4)
    np.testing.assert_allclose(
        per["quantiles"][1], np.quantile(layers[1][:4], [0.05, 0.25, 0.5, 0.75, 0.95]), rtol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"quantile_inputs": 0}, "quantile_inputs="),
        ({"quantile_inputs": 2.5}, "quantile_inputs="),
        ({"quantile_inputs": True}, "quantile_inputs="),
        ({"quantiles": (0.5, 1.5)}, "quantiles="),
        ({"quantiles": ()}, "quantiles="),
    ],
)
def test_preactivation_stats_bad_arguments(layers, kwargs, word):
    with pytest.raises(ValueError, match=word):
        U.preactivation_stats(layers[0], **kwargs)
