"""Chapter 8: the converged power iteration against dense Hessians, and the profile table."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from plasticity_lib import profiles
from plasticity_lib.diagnostics import curvature


def test_both_ends_of_an_indefinite_spectrum():
    """A quadratic 0.5 v^T A v with a known spectrum whose largest-magnitude eigenvalue
    is negative: the second phase must still find lambda_max."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    eig = np.array([-5.0, -1.0, 0.2, 0.5, 1.5, 3.0])
    a = jnp.asarray(q @ np.diag(eig) @ q.T, jnp.float32)
    params = {"v": jnp.ones(6)}
    loss = lambda p: 0.5 * p["v"] @ a @ p["v"]
    lam_max, lam_min, rel = curvature.hessian_extreme_eigenvalues_converged(
        loss, params, jax.random.PRNGKey(0), rtol=1e-7, max_iters=3000
    )
    assert float(lam_max) == pytest.approx(3.0, rel=1e-3)
    assert float(lam_min) == pytest.approx(-5.0, rel=1e-3)


def test_tiny_classifier_matches_dense_hessian():
    """Softmax cross-entropy of a tiny ReLU network: lambda_max against eigvalsh."""
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(4), 4)
    params = {"w1": jax.random.normal(k1, (5, 6)), "w2": jax.random.normal(k2, (6, 3))}
    x = jax.random.normal(k3, (32, 5))
    y = jax.random.randint(k4, (32,), 0, 3)

    def loss(p):
        logits = jax.nn.relu(x @ p["w1"]) @ p["w2"]
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(32), y])

    flat, unravel = ravel_pytree(params)
    dense = np.asarray(jax.hessian(lambda f: loss(unravel(f)))(flat), np.float64)
    top = np.linalg.eigvalsh(0.5 * (dense + dense.T))[-1]
    lam_max, _, _ = curvature.hessian_extreme_eigenvalues_converged(
        loss, params, jax.random.PRNGKey(5), rtol=1e-7, max_iters=5000
    )
    assert float(lam_max) == pytest.approx(top, rel=1e-2)
    # the fixed-iteration estimator agrees when it is given as many iterations
    fixed = curvature.hessian_top_eigenvalue(loss, params, jax.random.PRNGKey(5), 2000)
    assert float(fixed) == pytest.approx(top, rel=1e-2)


@pytest.mark.parametrize("name", profiles.PROFILE_NAMES)
def test_profiles_resolve(name):
    p = profiles.resolve("ch08_norm_growth", name)
    assert p.hessian_batch <= p.n_train
    assert p.num_tasks >= 2
