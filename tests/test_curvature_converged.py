"""The converged power iteration of chapter 8 against a dense Hessian on a tiny network."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
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


def _quadratic(eig, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(len(eig), len(eig))))
    a = jnp.asarray(q @ np.diag(eig) @ q.T, jnp.float32)
    return (lambda p: 0.5 * p["v"] @ a @ p["v"]), {"v": jnp.ones(len(eig))}


def test_top_converged_positive_and_negative_dominant():
    """lambda_max of known spectra: dominant eigenvalue positive (phase 1 alone) and
    negative (phase 2 needed), against the spectrum it was built from."""
    for eig, top in (([-1.0, 0.2, 0.5, 4.0], 4.0), ([-5.0, -1.0, 0.2, 0.5, 1.5, 3.0], 3.0)):
        loss, params = _quadratic(np.array(eig))
        lam, rel = curvature.hessian_top_eigenvalue_converged(
            loss, params, jax.random.PRNGKey(1), rtol=1e-7, max_iters=3000
        )
        assert float(lam) == pytest.approx(top, rel=1e-3)
        assert float(rel) < 1e-6


def test_top_converged_matches_dense_hessian_under_vmap():
    """A tiny tanh regression network: vmapped over two parameter sets, each estimate
    against eigvalsh of the dense Hessian (jax.hessian of the flattened loss)."""
    loss, params = _tiny_problem()
    batch = jax.tree.map(lambda a: jnp.stack([a, 1.5 * a]), params)
    lam, rel = jax.vmap(
        lambda p, k: curvature.hessian_top_eigenvalue_converged(loss, p, k, 1e-6, 5, 5000)
    )(batch, jax.random.split(jax.random.PRNGKey(2), 2))
    for i in range(2):
        p = jax.tree.map(lambda a: a[i], batch)
        flat, unravel = ravel_pytree(p)
        dense = np.asarray(jax.hessian(lambda f: loss(unravel(f)))(flat), np.float64)
        top = np.linalg.eigvalsh(0.5 * (dense + dense.T))[-1]
        assert float(lam[i]) == pytest.approx(top, rel=1e-2)
