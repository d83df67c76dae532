"""The eNTK along training (§3.3; chapter 4): the label-ordered eNTK batch, per-checkpoint
maps, kernel summaries and the pathology score, and the first-order check with a
lambda_max-normalised step, each against an independent computation. Tiny networks and
synthetic inputs, no dataset needed."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib import diagnostics, entk_pathology, profiles, stats
from plasticity_lib.models import ModelConfig, make_network

D, C = 12, 3


def _x(n=16, seed=0):
    return np.random.default_rng(seed).normal(size=(n, D)).astype(np.float32)


def _checkpoints(net, seeds=(0, 1), num=3):
    """Params ``(S, K, ...)`` of ``num`` different random initialisations per seed, and
    the list of lists of single-model params (the independent reference)."""
    x = jnp.asarray(_x(2))
    single = [[net.init(jax.random.PRNGKey(10 * s + k), x) for k in range(num)] for s in seeds]
    stacked = jax.tree_util.tree_map(
        lambda *leaves: np.stack(leaves).reshape((len(seeds), num) + leaves[0].shape),
        *[p for row in single for p in row],
    )
    return stacked, single


@pytest.fixture(scope="module")
def net():
    return make_network(ModelConfig(arch="mlp", width=8, depth=2, num_outputs=C))


# --------------------------------------------------------------------------- eNTK batch


def test_label_ordered_batch_balanced_and_sorted():
    y = np.array([2, 0, 1, 1, 0, 2, 2, 0, 1, 0, 1, 2])
    idx = entk_pathology.label_ordered_batch(y, 7, 3)
    # by hand: 7 = 2 * 3 + 1, so class 0 gives 3 examples, classes 1 and 2 give 2 each,
    # the first ones in dataset order
    assert idx.tolist() == [1, 4, 7, 2, 3, 0, 5]
    assert y[idx].tolist() == [0, 0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="class 1 has 0 examples"):
        entk_pathology.label_ordered_batch(np.zeros(5, int), 4, 2)


# --------------------------------------------------------------------------- map_checkpoints


def test_map_checkpoints_matches_a_loop_over_seeds_and_checkpoints(net):
    params, single = _checkpoints(net)
    xb = jnp.asarray(_x(6))
    kernels = entk_pathology.map_checkpoints(
        lambda p: diagnostics.entk(net.apply, p, xb, output="trace"), params
    )
    assert isinstance(kernels, np.ndarray) and kernels.shape == (2, 3, 6, 6)
    # independent route: explicit per-example gradients, one model at a time
    generic = jax.jit(lambda p: diagnostics.entk_generic(net.apply, p, xb, output="trace"))
    for s, row in enumerate(single):
        for k, p in enumerate(row):
            ref = np.asarray(generic(p))
            np.testing.assert_allclose(kernels[s, k], ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


def test_map_checkpoints_repeats_per_seed_arguments(net):
    params, single = _checkpoints(net)
    x = jnp.asarray(_x(8))
    keys = jnp.stack([jax.random.PRNGKey(7), jax.random.PRNGKey(8)])
    out = entk_pathology.map_checkpoints(
        lambda p, key: diagnostics.plasticity_probe(net.apply, p, x, key, steps=3, lr=1e-3),
        params,
        keys,
    )
    assert out.shape == (2, 3)
    one = jax.jit(
        lambda p, key: diagnostics.plasticity_probe(net.apply, p, x, key, steps=3, lr=1e-3)
    )
    for s, row in enumerate(single):
        for k, p in enumerate(row):
            ref = one(p, keys[s])
            assert float(out[s, k]) == pytest.approx(float(ref), rel=1e-5)
    # pytree outputs keep their structure
    tree = entk_pathology.map_checkpoints(lambda p: {"a": p["Head"]["bias"].sum()}, params)
    np.testing.assert_allclose(tree["a"], params["Head"]["bias"].sum(-1), rtol=1e-6)


# --------------------------------------------------------------------------- summaries


def test_pathology_score_by_hand():
    assert entk_pathology.pathology_score(64.0, 64) == pytest.approx(0.0)
    assert entk_pathology.pathology_score(1.0, 64) == pytest.approx(1 - 1 / 64)
    out = entk_pathology.pathology_score(np.float32([16.0, 32.0]), 64)
    assert out.dtype == np.float64 and out.tolist() == [0.75, 0.5]


def test_kernel_summaries_flat_and_collapsed_kernels():
    n = 8
    stack = np.stack([np.eye(n), np.ones((n, n)) + 1e-6 * np.eye(n)]).astype(np.float32)
    s = entk_pathology.kernel_summaries(stack[None])  # leading (1, 2)
    assert s["pathology_score"].shape == (1, 2)
    # flat spectrum: erank n, score 0; all-ones: one eigenvalue n, erank ~ 1
    assert s["effective_rank"][0, 0] == pytest.approx(n, rel=1e-5)
    assert s["pathology_score"][0, 0] == pytest.approx(0.0, abs=1e-5)
    assert s["pathology_score"][0, 1] == pytest.approx(1 - 1 / n, abs=1e-3)
    # the identity has no off-diagonal cosine; the all-ones kernel has cosine 1 everywhere
    assert s["mean_abs_offdiag_cosine"][0].tolist() == pytest.approx([0.0, 1.0], abs=1e-5)
    # equal gradient norms: no spread
    assert s["grad_norm_cv"][0].tolist() == pytest.approx([0.0, 0.0], abs=1e-5)


def test_kernel_summaries_match_ntk_summary_one_by_one():
    rng = np.random.default_rng(3)
    g = rng.normal(size=(2, 3, 6, 20)).astype(np.float32)
    kernels = g @ np.swapaxes(g, -1, -2)  # PSD Gram matrices
    s = entk_pathology.kernel_summaries(kernels)
    one = jax.jit(diagnostics.ntk_summary)
    for i in range(2):
        for j in range(3):
            ref = one(jnp.asarray(kernels[i, j]))
            for key, val in ref.items():
                assert s[key][i, j] == pytest.approx(float(val), rel=1e-4, abs=1e-6)
            erank = float(ref["effective_rank"])
            assert s["pathology_score"][i, j] == pytest.approx(1 - erank / 6, rel=1e-6)


# --------------------------------------------------------------------------- first order


def _first_order(net, params, x, key, step_fraction):
    """The §3.3 check as chapter 4 runs it: f = sum of outputs, y = f + xi, one GD step
    of size step_fraction / (2 lambda_max(K)) on ||f - y||^2 (one compile for both
    step sizes: ``step_fraction`` is traced)."""

    @jax.jit
    def run(params, key, step_fraction):
        f = jnp.sum(net.apply(params, x), axis=1)
        xi = diagnostics.probe_perturbation(x, 1, key)[:, 0]
        y = f + xi
        k = diagnostics.entk(net.apply, params, x, output="sum")
        lam = jnp.linalg.eigvalsh(0.5 * (k + k.T))[-1]
        lr = step_fraction / (2.0 * lam)
        pred = diagnostics.predicted_loss_decrease(k, f - y, lr, reduction="sum")
        actual = diagnostics.loss_decrease_after_step(
            net.apply, params, x, y, lr, output="sum", reduction="sum"
        )
        return pred, actual, lr * 2 * lam, jnp.sum(xi**2)

    return [[float(v) for v in run(params, key, eps)] for eps in step_fraction]


def test_first_order_check_with_normalised_step(net):
    x = jnp.asarray(_x(16))
    params = net.init(jax.random.PRNGKey(0), x[:2])
    key = jax.random.PRNGKey(5)
    small, large = _first_order(net, params, x, key, (0.01, 1.5))
    pred, actual, fraction, xi2 = small
    assert fraction == pytest.approx(0.01, rel=1e-5)
    assert pred > 0 and actual > 0
    assert abs(actual - pred) / actual < 0.05
    # the loss before the step is ||xi||^2 and one step cannot remove more than all of it
    assert actual < xi2
    # a step past the linear regime breaks the first-order prediction: the check can fail
    pred, actual, _, _ = large
    assert abs(actual - pred) / abs(actual) > 0.05


# --------------------------------------------------------------------------- profile


def test_profiles_resolve():
    for prof in ("smoke", "default", "paper"):
        P = profiles.resolve("ch04_entk_pathologies", prof)
        assert P.reg_steps % P.reg_checkpoints == 0
        assert P.probe_n <= P.n_train and P.entk_batch <= 128
    d = profiles.resolve("ch04_entk_pathologies", "default")
    assert d.seeds >= 3 and d.num_tasks + 1 + d.reg_checkpoints + 1 >= 12 and not d.allow_fallback
    with pytest.raises(profiles.ParameterError):
        profiles.resolve("ch04_entk_pathologies", "default", step_fraction=2.0)


# --------------------------------------------------------------------------- cosine matrix


def test_cosine_summaries_by_hand_and_against_numpy():
    rng = np.random.default_rng(7)
    n = 6
    # one shared direction plus noise, and one input with a gradient 1000 times larger
    g = rng.normal(size=(n, 30)) * 0.1 + rng.normal(size=(1, 30))
    g[0] *= 1000.0
    k = (g @ g.T).astype(np.float32)
    s = entk_pathology.kernel_summaries(k[None])
    # independent: cosine matrix by numpy, eigenvalues by numpy, erank by its definition
    norms = np.linalg.norm(g, axis=1)
    cos = (g @ g.T) / np.outer(norms, norms)
    w = np.clip(np.linalg.eigvalsh(cos), 0, None)
    p = w / w.sum()
    erank = np.exp(-np.sum(p[p > 0] * np.log(p[p > 0])))
    assert s["cos_effective_rank"][0] == pytest.approx(erank, rel=1e-3)
    assert s["cos_pathology_score"][0] == pytest.approx(1 - erank / n, rel=1e-3)
    ref = float(diagnostics.diag_rank1_error(jnp.asarray(cos, jnp.float32)))
    assert s["cos_diag_rank1_error"][0] == pytest.approx(ref, rel=1e-3, abs=1e-5)
    # the raw kernel is dominated by input 0 (near rank one) while the cosines are not
    assert s["effective_rank"][0] < 1.01 < s["cos_effective_rank"][0]


def test_cosine_diag_rank1_error_of_exact_structures():
    n = 8
    u = np.linspace(0.5, 1.0, n)
    # diagonal + rank one with unequal scales: the cosine matrix is exactly diag + rank one
    k = np.diag(np.linspace(1, 3, n)) + np.outer(u, u)
    s = entk_pathology.kernel_summaries(k[None].astype(np.float32))
    assert s["cos_diag_rank1_error"][0] == pytest.approx(0.0, abs=1e-3)
    # a block-diagonal kernel (two independent groups) is not
    b = np.kron(np.eye(2), np.ones((n // 2, n // 2))) + 0.1 * np.eye(n)
    s = entk_pathology.kernel_summaries(b[None].astype(np.float32))
    assert s["cos_diag_rank1_error"][0] > 0.3


# --------------------------------------------------------------------------- no-bias kernel


def test_entk_without_bias_matches_a_flattened_jacobian(net):
    x = jnp.asarray(_x(5))
    params = net.init(jax.random.PRNGKey(3), x[:2])
    # independent: the full (n C, P) Jacobian by jacrev, bias columns removed by name
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    jac = jax.jacrev(lambda v: net.apply(unravel(v), x).reshape(-1))(flat)  # (n*C, P)
    mask = jax.flatten_util.ravel_pytree(
        jax.tree_util.tree_map_with_path(
            lambda path, a: jnp.full(a.shape, path[-1].key != "bias", jnp.float32), params
        )
    )[0]
    jw = np.asarray(jac * mask).reshape(x.shape[0], C, -1)
    ref = np.einsum("icp,jcp->ij", jw, jw)  # trace over outputs
    got = np.asarray(entk_pathology.entk_without_bias(net.apply, params, x, output="trace"))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    # the biases' share: full kernel minus the weights' kernel is the bias kernel, whose
    # head part alone is C on every entry (d f_c / d b_c = 1)
    full = np.asarray(diagnostics.entk(net.apply, params, x, output="trace"))
    jb = np.asarray(jac * (1 - mask)).reshape(x.shape[0], C, -1)
    np.testing.assert_allclose(full - got, np.einsum("icp,jcp->ij", jb, jb), rtol=1e-3, atol=1e-4)
    assert np.all(full - got >= C - 1e-4)


# --------------------------------------------------------------------------- SGD rate rule


def test_sgd_rate_by_rule():
    grid = [0.01, 0.1, 1.0]
    # lowest mean loss wins
    assert entk_pathology.sgd_rate_by_rule(grid, [[0.3, 0.2], [0.01, 0.02], [0.1, 0.1]]) == 0.1
    # a rate at which any fresh network diverged is never chosen
    assert entk_pathology.sgd_rate_by_rule(grid, [[0.3, 0.2], [0.1, 0.1], [1e-4, np.nan]]) == 0.1
    # ties go to the smaller rate
    assert entk_pathology.sgd_rate_by_rule(grid, [[0.5, 0.5], [0.1, 0.1], [0.1, 0.1]]) == 0.1
    with pytest.raises(ValueError, match="diverged at every"):
        entk_pathology.sgd_rate_by_rule(grid, [[np.inf, 1], [np.nan, 1], [np.inf, 1]])
    with pytest.raises(ValueError, match="must be"):
        entk_pathology.sgd_rate_by_rule(grid, [[0.1, 0.1]])


def test_worst_if_nonfinite_ranks_divergence_last():
    out = entk_pathology.worst_if_nonfinite([0.2, np.nan, 0.1, np.inf])
    assert out[0] == 0.2 and out[2] == 0.1
    assert out[1] == out[3] == np.finfo(np.float64).max
    rho = stats.spearman_per_seed(np.array([[1.0, 2.0, 3.0]]), np.array([[0.1, 0.2, out[1]]]))
    assert rho[0] == pytest.approx(1.0)


# --------------------------------------------------------------------------- SGD step by curvature


def test_gauss_newton_top_eigenvalue_against_the_full_jacobian(net):
    x = jnp.asarray(_x(10, seed=3))
    p = net.init(jax.random.PRNGKey(5), x)
    flat, unravel = jax.flatten_util.ravel_pytree(p)
    # independent: the full (n C) x P Jacobian, the Gauss-Newton matrix of the mean squared
    # error over n C entries, its largest eigenvalue by numpy
    jac = np.asarray(jax.jacfwd(lambda v: net.apply(unravel(v), x).reshape(-1))(flat))
    h = 2.0 / jac.shape[0] * jac.T @ jac
    exact = np.linalg.eigvalsh(h.astype(np.float64))[-1]
    lam = entk_pathology.gauss_newton_top_eigenvalue(net.apply, p, x, jax.random.PRNGKey(0), 200)
    assert float(lam) == pytest.approx(exact, rel=1e-3)
    few = entk_pathology.gauss_newton_top_eigenvalue(net.apply, p, x, jax.random.PRNGKey(0), 2)
    assert float(few) <= exact * (1 + 1e-4)  # a Rayleigh quotient never exceeds it
    # the step: B / (n lambda); every minibatch's curvature times the step is at most 1
    step = entk_pathology.probe_sgd_rate(net.apply, p, x, jax.random.PRNGKey(0), 4, 200)
    assert float(step) == pytest.approx(4 / (10 * exact), rel=1e-3)
    for rows in ([0, 1, 2, 3], [6, 7, 8, 9], [0, 3, 5, 9]):
        xr = x[np.asarray(rows)]
        jb = np.asarray(jax.jacfwd(lambda v: net.apply(unravel(v), xr).reshape(-1))(flat))
        hb = 2.0 / jb.shape[0] * jb.T @ jb
        assert float(step) * np.linalg.eigvalsh(hb.astype(np.float64))[-1] <= 1.0 + 1e-3
    # jit- and vmap-able over stacked checkpoints
    params, single = _checkpoints(net)
    two = jax.tree_util.tree_map(lambda a: jnp.asarray(a[:, 0]), params)
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    fn = jax.jit(
        jax.vmap(lambda q, k: entk_pathology.gauss_newton_top_eigenvalue(net.apply, q, x, k, 50))
    )
    out = np.asarray(fn(two, keys))
    for s in range(2):
        one = entk_pathology.gauss_newton_top_eigenvalue(net.apply, single[s][0], x, keys[s], 50)
        assert out[s] == pytest.approx(float(one), rel=1e-4)
