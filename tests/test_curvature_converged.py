"""The converged power iteration of chapter 8 against a dense Hessian on a tiny network."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from plasticity_lib.diagnostics import curvature


def _tiny_problem():
    k = jax.random.PRNGKey(0)
    k1, k2, k3, k4 = jax.random.split(k, 4)
    params = {
        "w1": jax.random.normal(k1, (3, 4)) * 0.8,
        "b1": jnp.zeros(4),
        "w2": jax.random.normal(k2, (4, 2)) * 0.8,
    }
    x = jax.random.normal(k3, (16, 3))
    y = jax.random.normal(k4, (16, 2))

    def loss(p):
        h = jnp.tanh(x @ p["w1"] + p["b1"])
        return jnp.mean((h @ p["w2"] - y) ** 2)

    return loss, params


def test_matches_dense_hessian():
    loss, params = _tiny_problem()
    flat, unravel = ravel_pytree(params)
    dense = jax.hessian(lambda f: loss(unravel(f)))(flat)
    eig = np.linalg.eigvalsh(np.asarray(dense, np.float64))
    lam_max, lam_min, rel = curvature.hessian_extreme_eigenvalues_converged(
        loss, params, jax.random.PRNGKey(1), rtol=1e-6, max_iters=5000
    )
    # the largest-magnitude eigenvalue is found by the first phase
    top = eig[np.argmax(np.abs(eig))]
    assert abs(float(lam_max if top > 0 else lam_min) - top) < 1e-3 * abs(top)
    assert float(rel) < 1e-6


def test_stopping_rule_bounds_relative_change():
    loss, params = _tiny_problem()
    _, _, rel = curvature.hessian_extreme_eigenvalues_converged(
        loss, params, jax.random.PRNGKey(2), rtol=0.01, max_iters=1000
    )
    assert float(rel) < 0.01


def test_vmap_over_seeds():
    loss, params = _tiny_problem()
    ks = jax.random.split(jax.random.PRNGKey(3), 3)
    fn = jax.vmap(
        lambda k: curvature.hessian_extreme_eigenvalues_converged(
            loss, params, k, rtol=1e-6, max_iters=5000
        )[0]
    )
    lam = np.asarray(fn(ks))
    assert np.allclose(lam, lam[0], rtol=1e-3)
