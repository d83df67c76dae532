"""Chapter 5 (App. C): closed-form eNTK of linearized networks vs a hand computation and
vs autodiff, rank statements, the sign construction, and the Fig. 24 helpers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib import train
from plasticity_lib.experiments import ch05_linearized_ntk as E


def _hand_case():
    # d0 = 2, one hidden layer of 2 units (unit 2 dead), scalar head.
    w1 = np.array([[1.0, 2.0], [3.0, 4.0]])
    w2 = np.array([[5.0, 6.0]])
    slopes = [np.array([1.0, 0.0])]
    return [w1, w2], slopes


def test_closed_form_matches_hand_computation():
    weights, slopes = _hand_case()
    # f(x) = 5 (x1 + 2 x2); grad_W1 = [[5 x1, 5 x2], [0, 0]]; grad_W2 = [x1 + 2 x2, 0]
    # => Sigma = 25 I + [[1, 2], [2, 4]]
    sigma = np.array([[26.0, 2.0], [2.0, 29.0]])
    x = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]])
    np.testing.assert_allclose(E.closed_form_entk(weights, slopes, x), x @ sigma @ x.T, rtol=1e-14)
    p_lt, u = E.closed_form_factors(weights, slopes)
    np.testing.assert_allclose(p_lt[1], [[1.0, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(u[0], [5.0, 0.0])
    np.testing.assert_allclose(u[1], [1.0])
    # App. C as printed drops M^1 from u_1: |u_1|^2 = 61 instead of 25
    printed = np.array([[62.0, 2.0], [2.0, 65.0]])
    np.testing.assert_allclose(E.closed_form_entk(weights, slopes, x, as_printed=True), x @ printed @ x.T, rtol=1e-14)
    kl = E.closed_form_layer_kernels(weights, slopes, x)
    np.testing.assert_allclose(kl.sum(0), x @ sigma @ x.T, rtol=1e-14)


def test_kronecker_A_vectorises_the_jacobian():
    rng = np.random.default_rng(0)
    p = rng.standard_normal((3, 4))
    u = rng.standard_normal(5)
    x = rng.standard_normal(4)
    grad = np.outer(u, p @ x)  # (5, 3)
    a = E.kronecker_A(p, u)
    np.testing.assert_allclose(a @ x, grad.T.ravel(), rtol=1e-13)  # column-major vec
    np.testing.assert_allclose(a.T @ a, (u @ u) * p.T @ p, rtol=1e-12)


def test_numerical_rank_and_low_rank_inputs():
    rng = np.random.default_rng(1)
    x = E.low_rank_inputs(rng, 20, 9, 4)
    assert x.shape == (20, 9) and (x >= 0).all() and (np.abs(x).sum(1) > 0).all()
    assert E.numerical_rank(x @ x.T) == 4
    assert E.numerical_rank(np.zeros((3, 3))) == 0
    assert E.numerical_rank(np.diag([1.0, 1e-3, 1e-13])) == 2
    with pytest.raises(ValueError):
        E.low_rank_inputs(rng, 5, 3, 4)


@pytest.mark.parametrize("pattern", ["zombie", "dead", "leaky"])
def test_linearized_configuration_matches_autodiff(pattern):
    cfg = E.LinearizedConfig(depth=3, width=6, pattern=pattern, rank=3, seed=2, n=10, d_in=7)
    r = E.evaluate_linearized(cfg)
    assert r["pattern_holds"]
    for key in ("err_forward", "err_jacobian", "err_vec", "err_gram", "err_entk", "err_layers"):
        assert r[key] < 1e-12, (key, r[key])
    assert r["rank_x"] == 3 and r["rank_k"] == 3
    if pattern == "zombie":
        assert r["err_entk_printed"] < 1e-12  # every slope is 1: M^k = I
    else:
        assert r["err_entk_printed"] > 1e-3


def test_bottleneck_keeps_rank_x_but_caps_upper_layers():
    (cfg,) = E.bottleneck_configs([2], width=8, bottleneck_units=[2], rank=5, n=12, d_in=8)
    r = E.evaluate_linearized(cfg)
    assert r["pattern_holds"] and r["live_bottleneck"] == 2
    assert r["rank_k"] == r["rank_x"] == 5  # the first layer's kernel keeps rank X
    assert r["rank_layers"][-1] == 2  # the head sits above the bottleneck
    assert r["layer_bound_excess"] <= 0
    with pytest.raises(ValueError):
        E.bottleneck_configs([2], 8, [5], rank=5, n=12, d_in=8)


def test_nonlinear_network_exceeds_rank_x():
    cfg = E.LinearizedConfig(depth=2, width=32, pattern="zombie", rank=2, seed=0, n=16, d_in=8)
    r = E.evaluate_nonlinear(cfg)
    assert r["rank_x"] == 2 and r["rank_k"] > 2 and r["varying_fraction"] > 0


def test_float64_is_scoped():
    cfg = E.LinearizedConfig(depth=1, width=4, pattern="zombie", rank=2, seed=0, n=6, d_in=4)
    x, weights, _ = cfg.build()
    k = E.autodiff_entk(weights, x, "relu")
    assert k.dtype == np.float64
    assert jnp.zeros(1).dtype == jnp.float32  # x64 did not leak out of the context


def test_grid_and_statistics():
    cfgs = E.linearized_configs([1, 2], [4], ["zombie", "dead"], [2, 3], 1, n=8, d_in=5)
    assert len(cfgs) == 8 and len(set(cfgs)) == 8
    # inputs depend only on (seed, rank, n, d_in)
    np.testing.assert_array_equal(cfgs[0].inputs(), E.LinearizedConfig(2, 4, "leaky", 2, 0, 8, 5).inputs())


def test_abs_init_makes_every_unit_a_zombie_on_nonnegative_inputs():
    from plasticity_lib import models

    net = models.make_network(models.ModelConfig(arch="mlp", depth=2, width=16, num_outputs=3))
    x = np.abs(np.random.default_rng(0).standard_normal((32, 10))).astype(np.float32)
    p = train.initial_params(net, [0, 1], x)
    assert jax.tree_util.tree_leaves(p)[0].shape[0] == 2
    ref = net.init(jax.random.fold_in(jax.random.PRNGKey(1), 0), jnp.asarray(x[:2]))
    np.testing.assert_array_equal(p["Dense_0"]["kernel"][1], ref["Dense_0"]["kernel"])
    p_abs = train.initial_params(net, [0, 1], x, init_transform=E.abs_params)  # the chapter's abs init
    assert all(np.array_equal(a, np.abs(b)) for a, b in zip(jax.tree_util.tree_leaves(p_abs),
                                                            jax.tree_util.tree_leaves(p)))
    fr_abs = E.linearized_fractions(net, p_abs, x)
    fr_norm = E.linearized_fractions(net, p, x)
    assert fr_abs.shape == (2, 2) and (fr_abs == 1.0).all()
    assert (fr_norm < 0.5).all()


def test_chunk_steps():
    assert E._chunk_steps(2000, 50) == 200
    assert E._chunk_steps(100, 20) == 20
    assert 2000 % E._chunk_steps(2000, 50) == 0
