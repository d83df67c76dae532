"""Representation diagnostics vs matrices with known spectra and NumPy references."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib.diagnostics import representation as R


def test_effective_rank_known_spectra():
    n = 16
    assert float(R.effective_rank(R.singular_values(jnp.eye(n)))) == pytest.approx(n, rel=1e-5)
    u = np.arange(1.0, 9.0)[:, None] * np.linspace(-1, 1, 5)[None, :]
    assert float(R.effective_rank(R.singular_values(jnp.asarray(u, jnp.float32)))) == pytest.approx(
        1.0, abs=1e-3
    )
    assert float(R.effective_rank(jnp.array([3.0, 3.0, 0.0, 0.0]))) == pytest.approx(2.0, rel=1e-5)
    s = np.array([4.0, 2.0, 1.0, 1.0])
    p = s / s.sum()
    assert float(R.effective_rank(jnp.asarray(s))) == pytest.approx(
        np.exp(-(p * np.log(p)).sum()), rel=1e-5
    )
    assert float(R.effective_rank(jnp.zeros(3))) == 0.0


def test_srank_stable_rank_condition():
    s = np.array([100.0, 10.0, 1.0, 0.5, 0.01])
    c = np.cumsum(s) / s.sum()
    expected = int(np.argmax(c >= 0.99)) + 1
    assert int(R.srank(jnp.asarray(s))) == expected == 3
    assert int(R.srank(jnp.asarray(s[::-1].copy()))) == 3  # order-independent
    assert int(R.srank(jnp.ones(7))) == 7
    assert float(R.stable_rank(jnp.asarray(s))) == pytest.approx((s**2).sum() / 1e4, rel=1e-5)
    assert float(R.condition_number(jnp.asarray(s))) == pytest.approx(1e4, rel=1e-4)


def test_norms_and_entropy():
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(2)(nn.relu(nn.Dense(5)(x)))

    params = Net().init(jax.random.key(0), jnp.ones((1, 3)))
    norms = R.parameter_norms(params)
    p = params["params"]
    for name in ("Dense_0", "Dense_1"):
        ref = np.sqrt(sum((np.asarray(v) ** 2).sum() for v in p[name].values()))
        assert float(norms[name]) == pytest.approx(ref, rel=1e-5)
    assert float(norms["total"]) == pytest.approx(float(R.global_parameter_norm(params)), rel=1e-6)
    assert set(norms) == {"Dense_0", "Dense_1", "total"}

    logits = jnp.zeros((4, 10))
    assert float(R.predictive_entropy(logits)) == pytest.approx(np.log(10), rel=1e-6)
    assert float(R.predictive_entropy(jnp.eye(10)[:4] * 100.0)) < 1e-6
    f = jnp.array([[3.0, 4.0], [0.0, 1.0]])
    assert float(R.feature_norm(f)) == pytest.approx(3.0)
    assert float(R.logit_norm(f)) == pytest.approx(3.0)


def test_top_singular_direction_output():
    rng = np.random.default_rng(0)
    n, d, c = 128, 16, 3
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    f = 50.0 * direction[None, :] * (1 + 0.01 * rng.normal(size=(n, 1))) + 0.1 * rng.normal(
        size=(n, d)
    )
    w = rng.normal(size=(d, c))
    b = np.array([0.1, -0.2, 0.3])
    out = R.top_singular_direction_output(
        jnp.asarray(f, jnp.float32), jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32)
    )
    _, s, vt = np.linalg.svd(f, full_matrices=False)
    ref = (f @ vt[0])[:, None] * vt[0][None, :] @ w
    np.testing.assert_allclose(out["per_input"], ref, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(out["mean"], ref.mean(0), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(out["full_mean"], (f @ w + b).mean(0), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(out["bias"], b, rtol=1e-6)
    assert float(out["top_singular_value"]) == pytest.approx(s[0], rel=1e-4)
    # the constant direction carries (nearly) all of the output: a learned "bias"
    np.testing.assert_allclose(out["mean"], (f @ w).mean(0), rtol=0.05, atol=0.05)
    summ = R.feature_spectrum_summary(jnp.asarray(f, jnp.float32))
    assert float(summ["effective_rank"]) < 2.0 and float(summ["top_share"]) > 0.5


def test_vmap_over_seeds():
    rng = np.random.default_rng(1)
    fs = jnp.asarray(rng.normal(size=(3, 20, 8)), jnp.float32)
    out = jax.jit(jax.vmap(R.feature_spectrum_summary))(fs)
    assert out["singular_values"].shape == (3, 8)
    assert out["srank"].shape == (3,)
    for i in range(3):
        s = np.linalg.svd(np.asarray(fs[i]), compute_uv=False)
        np.testing.assert_allclose(out["singular_values"][i], s, rtol=1e-4)
