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
    # n_train = 0: the calibration picks one of calibration_sizes, each >= hessian_batch
    assert p.hessian_batch <= (p.n_train or min(p.calibration_sizes))
    assert p.num_tasks >= 2


def test_bad_parameters_are_named():
    """A measure task beyond the stream, or a Hessian batch larger than a calibration
    candidate, is refused before any compute, naming the parameter."""
    with pytest.raises(profiles.ParameterError, match="measure_tasks"):
        profiles.resolve("ch08_norm_growth", "default", num_tasks=5)
    with pytest.raises(profiles.ParameterError, match="hessian_batch"):
        profiles.resolve("ch08_norm_growth", "default", calibration_sizes=(128, 512))


def test_default_profile_calibrates_and_measures():
    """The default profile picks n_train by the calibration rule (0) and keeps the first
    and the last task end for the plasticity measure."""
    p = profiles.resolve("ch08_norm_growth", "default")
    assert p.n_train == 0
    assert min(p.measure_tasks) == 1 and max(p.measure_tasks) == p.num_tasks
    assert p.b_multiplier > 1
