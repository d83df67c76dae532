"""App. C (`plasticity_lib.linearized`): the closed-form eNTK of a linearized network vs a
hand computation and vs autodiff, the rank statements, the sign construction, and the
Fig. 24 absolute-value initialisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib import diagnostics, linearized, train
from plasticity_lib.models import ModelConfig, make_network


def _hand_case():
    # d0 = 2, one hidden layer of 2 units (unit 2 dead), scalar head.
    w1 = np.array([[1.0, 2.0], [3.0, 4.0]])
    w2 = np.array([[5.0, 6.0]])
    slopes = [np.array([1.0, 0.0])]
    return [w1, w2], slopes


def _network(pattern, depth=3, width=6, rank=3, n=10, d_in=7, seed=2, **kw):
    rng = np.random.default_rng(seed)
    x = linearized.low_rank_inputs(rng, n, d_in, rank)
    slopes = linearized.slope_pattern(rng, (width,) * depth, pattern, **kw)
    weights = linearized.sign_constructed_weights(rng, d_in, slopes)
    return x, weights, slopes


def test_closed_form_matches_hand_computation():
    weights, slopes = _hand_case()
    # f(x) = 5 (x1 + 2 x2); grad_W1 = [[5 x1, 5 x2], [0, 0]]; grad_W2 = [x1 + 2 x2, 0]
    # => Sigma = 25 I + [[1, 2], [2, 4]]
    sigma = np.array([[26.0, 2.0], [2.0, 29.0]])
    x = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]])
    k = linearized.closed_form_entk(weights, slopes, x)
    np.testing.assert_allclose(k, x @ sigma @ x.T, rtol=1e-14)
    p_lt, u = linearized.closed_form_factors(weights, slopes)
    np.testing.assert_allclose(p_lt[0], np.eye(2))
    np.testing.assert_allclose(p_lt[1], [[1.0, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(u[0], [5.0, 0.0])
    np.testing.assert_allclose(u[1], [1.0])
    # App. C as printed drops M^1 from u_1: |u_1|^2 = 61 instead of 25
    printed = np.array([[62.0, 2.0], [2.0, 65.0]])
    k_printed = linearized.closed_form_entk(weights, slopes, x, as_printed=True)
    np.testing.assert_allclose(k_printed, x @ printed @ x.T, rtol=1e-14)
    kl = linearized.closed_form_layer_kernels(weights, slopes, x)
    assert kl.shape == (2, 3, 3)
    np.testing.assert_allclose(kl.sum(0), x @ sigma @ x.T, rtol=1e-14)
    # the hand-computed per-layer kernels: K_1 = 25 X X^T, K_2 = (x1 + 2 x2)(y1 + 2 y2)
    np.testing.assert_allclose(kl[0], 25 * x @ x.T, rtol=1e-14)
    v = x @ np.array([1.0, 2.0])
    np.testing.assert_allclose(kl[1], np.outer(v, v), rtol=1e-14)


def test_hand_case_matches_autodiff():
    weights, slopes = _hand_case()
    x = np.array([[1.0, 0.5], [0.2, 1.0], [2.0, 0.1]])
    # on these positive inputs unit 2 is dead once its incoming weights are negated
    weights = [np.array([[1.0, 2.0], [-3.0, -4.0]]), weights[1]]
    real = linearized.realised_slopes(weights, x, "relu")
    np.testing.assert_array_equal(real[0], np.broadcast_to(slopes[0], (3, 2)))
    np.testing.assert_allclose(
        linearized.closed_form_entk(weights, slopes, x),
        linearized.autodiff_entk(weights, x, "relu"),
        rtol=1e-13,
    )


def test_vectorised_gradient_operator():
    rng = np.random.default_rng(0)
    p = rng.standard_normal((3, 4))
    u = rng.standard_normal(5)
    x = rng.standard_normal(4)
    grad = np.outer(u, p @ x)  # (5, 3): u (P x)^T
    a = linearized.vectorised_gradient_operator(p, u)
    assert a.shape == (15, 4)
    np.testing.assert_allclose(a @ x, grad.T.ravel(), rtol=1e-13)  # column-major vec
    np.testing.assert_allclose(a.T @ a, (u @ u) * p.T @ p, rtol=1e-12)


def test_numerical_rank_and_low_rank_inputs():
    rng = np.random.default_rng(1)
    x = linearized.low_rank_inputs(rng, 20, 9, 4)
    assert x.shape == (20, 9) and (x >= 0).all() and (np.abs(x).sum(1) > 0).all()
    assert linearized.numerical_rank(x @ x.T) == 4
    assert linearized.numerical_rank(np.zeros((3, 3))) == 0
    assert linearized.numerical_rank(np.diag([1.0, 1e-3, 1e-13])) == 2
    assert linearized.numerical_rank(np.diag([1.0, 1e-3, 1e-13]), rtol=1e-14) == 3
    # against an independent count: eigenvalues of the symmetrised matrix above rtol * max
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    k = q @ np.diag([5.0, 2.0, 1.0, 1e-9, 1e-11, 0.0]) @ q.T
    w = np.linalg.eigvalsh(0.5 * (k + k.T))
    assert linearized.numerical_rank(k) == int(np.sum(w > linearized.RANK_RTOL * w.max())) == 4
    with pytest.raises(ValueError, match="rank=4"):
        linearized.low_rank_inputs(rng, 5, 3, 4)


def test_bias_free_mlp_matches_numpy_forward():
    rng = np.random.default_rng(3)
    weights = linearized.he_normal_weights(rng, 5, (7, 4))
    assert [w.shape for w in weights] == [(7, 5), (4, 7), (1, 4)]
    x = rng.standard_normal((6, 5))
    h = x
    for w in weights[:-1]:
        z = h @ w.T
        h = np.where(z > 0, z, 0.2 * z)
    expected = h @ weights[-1].T
    with linearized.x64():
        params = [jnp.asarray(w) for w in weights]
        out = np.asarray(linearized.bias_free_mlp(params, jnp.asarray(x), "leaky_relu", 0.2))
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="activation"):
        linearized.bias_free_mlp(weights, x, "tanh")


@pytest.mark.parametrize("pattern", ["zombie", "dead", "leaky"])
def test_linearized_network_matches_autodiff(pattern):
    act = "leaky_relu" if pattern == "leaky" else "relu"
    x, weights, slopes = _network(pattern)
    # the sign construction realises the pattern on every input
    for real, m in zip(linearized.realised_slopes(weights, x, act), slopes):
        np.testing.assert_array_equal(real, np.broadcast_to(m, real.shape))
    grads = linearized.autodiff_gradients(weights, x, act)
    assert [g.shape for g in grads] == [(10, 6, 7), (10, 6, 6), (10, 6, 6), (10, 1, 6)]
    p_lt, u = linearized.closed_form_factors(weights, slopes)
    for p, uk, g in zip(p_lt, u, grads):  # eq. 2 (with M^k), for every input
        np.testing.assert_allclose(np.einsum("i,nj->nij", uk, x @ p.T), g, atol=1e-12)
    k_autodiff = linearized.autodiff_entk(weights, x, act)  # the library's eNTK
    k_layers = linearized.layer_kernels(grads)
    np.testing.assert_allclose(k_layers.sum(0), k_autodiff, rtol=1e-12)
    np.testing.assert_allclose(
        linearized.closed_form_layer_kernels(weights, slopes, x), k_layers, rtol=1e-10, atol=1e-14
    )
    k_closed = linearized.closed_form_entk(weights, slopes, x)
    assert linearized.relative_error(k_closed, k_autodiff) < 1e-12
    printed = linearized.closed_form_entk(weights, slopes, x, as_printed=True)
    if pattern == "zombie":
        assert linearized.relative_error(printed, k_autodiff) < 1e-12  # every slope 1: M^k = I
    else:
        assert linearized.relative_error(printed, k_autodiff) > 1e-3
    assert linearized.numerical_rank(x @ x.T) == 3 == linearized.numerical_rank(k_autodiff)


def test_bottleneck_keeps_rank_x_but_caps_upper_layers():
    x, weights, slopes = _network(
        "bottleneck", depth=2, width=8, rank=5, n=12, d_in=8, bottleneck_units=2
    )
    assert [int((m != 0).sum()) for m in slopes] == [2, 8]
    k = linearized.autodiff_entk(weights, x, "relu")
    assert linearized.numerical_rank(k) == linearized.numerical_rank(x @ x.T) == 5
    layer_ranks = [
        linearized.numerical_rank(kk)
        for kk in linearized.layer_kernels(linearized.autodiff_gradients(weights, x, "relu"))
    ]
    assert layer_ranks == [5, 2, 2]  # W^1 keeps rank X; the layers above see 2 live units
    with pytest.raises(ValueError, match="bottleneck_units"):
        linearized.slope_pattern(np.random.default_rng(0), (4,), "bottleneck", bottleneck_units=5)


def test_nonlinear_network_exceeds_rank_x():
    rng = np.random.default_rng(0)
    x = linearized.low_rank_inputs(rng, 16, 8, 2)
    weights = linearized.he_normal_weights(rng, 8, (32, 32))
    real = linearized.realised_slopes(weights, x, "relu")
    assert any((r.min(0) != r.max(0)).any() for r in real)  # some slopes vary
    assert linearized.numerical_rank(linearized.autodiff_entk(weights, x, "relu")) > 2


def test_float64_is_scoped_and_errors_are_named():
    _, weights, _ = _network("zombie", depth=1, width=4, rank=2, n=6, d_in=4)
    x = np.abs(np.random.default_rng(0).standard_normal((6, 4)))
    assert linearized.autodiff_entk(weights, x, "relu").dtype == np.float64
    assert jnp.zeros(1).dtype == jnp.float32  # x64 did not leak out of the context
    with pytest.raises(ValueError, match="pattern"):
        linearized.slope_pattern(np.random.default_rng(0), (4,), "sleepy")
    with pytest.raises(ValueError, match="slope vectors"):
        linearized.closed_form_factors(weights, [])
    assert linearized.relative_error(np.ones(2), np.zeros(2)) == pytest.approx(np.sqrt(2))


def test_abs_init_makes_every_unit_a_zombie_on_nonnegative_inputs():
    net = make_network(ModelConfig(arch="mlp", depth=2, width=16, num_outputs=3))
    x = jnp.asarray(np.abs(np.random.default_rng(0).standard_normal((32, 10))), jnp.float32)
    params = train.initial_params(net, [0, 1], x)
    abs_params = train.initial_params(
        net, [0, 1], x, init_transform=lambda p: jax.tree_util.tree_map(jnp.abs, p)
    )
    for a, b in zip(jax.tree_util.tree_leaves(abs_params), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(a, np.abs(b))

    def fractions(p):
        _, inter = net.apply_with_intermediates(p, x)
        return diagnostics.linearized_unit_fraction(inter.preacts, "relu")[0]

    assert (np.asarray(jax.vmap(fractions)(abs_params)) == 1.0).all()
    assert (np.asarray(jax.vmap(fractions)(params)) < 0.5).all()
