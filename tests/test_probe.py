"""Plasticity probe (App. B.3): runs jitted and vmapped; a fresh network fits the
probe better than a degenerate (all-dead) one."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib.diagnostics import probe as P


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(32)(x))
        x = nn.relu(nn.Dense(32)(x))
        return nn.Dense(2)(x)


def _kill(params):
    """All first-layer ReLUs dead on every input: only the output bias can learn."""
    p = jax.tree_util.tree_map(lambda a: a, params)
    p["params"]["Dense_0"]["bias"] = jnp.full_like(p["params"]["Dense_0"]["bias"], -100.0)
    return p


def test_perturbation_properties():
    x = jax.random.normal(jax.random.key(0), (64, 5))
    e1 = P.probe_perturbation(x, 3, jax.random.key(1), amplitude=2.0)
    e2 = P.probe_perturbation(x, 3, jax.random.key(1), amplitude=2.0)
    assert e1.shape == (64, 3)
    np.testing.assert_array_equal(e1, e2)
    assert float(jnp.max(jnp.abs(e1))) <= 2.0
    # high frequency: nearly uncorrelated with the input, variance ~ amplitude^2 / 2
    assert 1.2 < float(jnp.var(e1)) < 2.8
    corr = np.corrcoef(np.asarray(x[:, 0]), np.asarray(e1[:, 0]))[0, 1]
    assert abs(corr) < 0.35


def test_probe_vmapped_fresh_beats_dead():
    x = jax.random.normal(jax.random.key(0), (64, 5))
    m = MLP()
    keys = jax.random.split(jax.random.key(1), 2)
    fresh = jax.vmap(lambda k: m.init(k, x))(keys)
    dead = jax.vmap(_kill)(fresh)
    stacked = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), fresh, dead)

    run = jax.jit(
        lambda ps, k: P.probe_vmapped(m.apply, ps, x, k, steps=100, lr=3e-3, return_curve=True)
    )
    final, curve = run(stacked, jax.random.key(2))
    assert final.shape == (4,) and curve.shape == (4, 100)
    final = np.asarray(final)
    # initial loss = mean eta^2 ~ 0.5; fresh nets fit it, dead nets cannot
    assert np.all(np.asarray(curve[:, 0]) > 0.2)
    assert np.all(final[:2] < 0.5 * final[2:].min())
    assert np.all(final[2:] > 0.25)
    # per-member keys are accepted too (checked abstractly: no second compile)
    final2 = jax.eval_shape(
        lambda ps, k: P.probe_vmapped(m.apply, ps, x, k, steps=100, lr=3e-3),
        stacked,
        jax.random.split(jax.random.key(2), 4),
    )
    assert final2.shape == (4,)

    p0 = jax.tree_util.tree_map(lambda a: a[0], fresh)
    pd = jax.tree_util.tree_map(lambda a: a[0], dead)
    ratio = jax.jit(
        lambda a, b: P.probe_ratio(m.apply, a, b, x, jax.random.key(2), steps=100, lr=3e-3)
    )(pd, p0)
    assert float(ratio) == pytest.approx(final[2] / final[0], rel=1e-3)
    assert float(ratio) > 2.0


def _linear_problem():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(16, 4)), jnp.float32)
    w0 = jnp.asarray(rng.normal(size=(4, 3)) * 0.3, jnp.float32)
    return x, w0, (lambda w, xb: xb @ w)


def test_sgd_probe_on_linear_model_matches_hand_computation():
    """f(W; X) = X W, target Y = X W0 + eta, loss (1/(nC)) ||X W - Y||^2, so gradient
    descent is W <- W - lr * (2/(nC)) X^T (X W - Y); run it in float64 NumPy."""
    x, w0, apply = _linear_problem()
    key, steps, lr = jax.random.key(5), 25, 0.05
    final, curve = jax.jit(
        lambda w: P.plasticity_probe(
            apply, w, x, key, steps=steps, lr=lr, optimizer="sgd", return_curve=True
        )
    )(w0)
    k_eta, _ = jax.random.split(key)
    eta = np.asarray(P.probe_perturbation(x, 3, k_eta), np.float64)
    X, W = np.asarray(x, np.float64), np.asarray(w0, np.float64)
    Y = X @ W + eta
    n, c = Y.shape
    losses = []
    for _ in range(steps):
        r = X @ W - Y
        losses.append(np.mean(r**2))
        W = W - lr * (2.0 / (n * c)) * X.T @ r
    np.testing.assert_allclose(curve, losses, rtol=1e-4)
    np.testing.assert_allclose(final, np.mean((X @ W - Y) ** 2), rtol=1e-4)
    assert losses[0] == pytest.approx(np.mean(eta**2), rel=1e-12)  # starts at mean eta^2
    # the same optimizer given as an optax transformation: identical numbers
    import optax

    final2 = jax.jit(
        lambda w: P.plasticity_probe(apply, w, x, key, steps=steps, optimizer=optax.sgd(lr))
    )(w0)
    assert float(final2) == float(final)


def test_default_optimizer_is_adam_and_unchanged():
    import optax

    x, w0, apply = _linear_problem()
    key = jax.random.key(6)
    run = lambda **kw: np.asarray(  # noqa: E731
        jax.jit(
            lambda w: P.plasticity_probe(
                apply, w, x, key, steps=30, lr=1e-2, return_curve=True, **kw
            )
        )(w0)[1]
    )
    default = run()
    np.testing.assert_array_equal(default, run(optimizer="adam"))
    np.testing.assert_array_equal(default, run(optimizer=optax.adam(1e-2)))
    assert not np.array_equal(default, run(optimizer="sgd"))
    # through probe_vmapped / probe_ratio too
    stacked = jnp.stack([w0, 2 * w0])
    a = P.probe_vmapped(apply, stacked, x, key, steps=30, lr=1e-2, optimizer="sgd")
    b = jax.vmap(
        lambda w: P.plasticity_probe(apply, w, x, key, steps=30, lr=1e-2, optimizer="sgd")
    )(stacked)
    np.testing.assert_array_equal(a, b)
    r = P.probe_ratio(apply, w0, 2 * w0, x, key, steps=30, lr=1e-2, optimizer="sgd")
    assert float(r) == pytest.approx(float(a[0] / a[1]), rel=1e-6)


@pytest.mark.parametrize("bad", ["rmsprop", "Adam", 3, None])
def test_unknown_probe_optimizer_is_rejected(bad):
    x, w0, apply = _linear_problem()
    with pytest.raises(ValueError, match=r"optimizer=.*allowed: \['adam', 'sgd'\]"):
        P.plasticity_probe(apply, w0, x, jax.random.key(0), steps=2, optimizer=bad)


def _stacked_checkpoints(groups=2, seeds=3, trained=2, shared=True):
    """A tiny MLP's checkpoints ``(G * S, K + 1, ...)``, group-major; checkpoint 0 the
    initialisation of the model's seed (shared across groups when ``shared``)."""
    d, c = 5, 3
    rng = np.random.default_rng(0)
    init = rng.normal(size=(seeds, d, c)).astype(np.float32)
    w = np.empty((groups * seeds, trained + 1, d, c), np.float32)
    for g in range(groups):
        for s in range(seeds):
            w[g * seeds + s, 0] = init[s] if shared else rng.normal(size=(d, c))
            w[g * seeds + s, 1:] = rng.normal(size=(trained, d, c))
    return {"w": w, "b": np.zeros((groups * seeds, trained + 1, c), np.float32)}


def _tanh_apply(p, x):
    return jnp.tanh(x @ p["w"] + p["b"])


def test_probe_checkpoints_shares_checkpoint_zero_and_matches_one_by_one():
    groups, seeds, trained = 2, 3, 2
    ckpts = _stacked_checkpoints(groups, seeds, trained)
    x = jax.random.normal(jax.random.key(1), (8, 5))
    seed_keys = jax.random.split(jax.random.PRNGKey(7), seeds)  # (S, 2) raw keys
    probe_keys = jnp.tile(seed_keys, (groups, 1))  # (G * S, 2): a seed's key in every group
    kw = dict(steps=20, lr=1e-2, batch_size=4)
    got = P.probe_checkpoints(_tanh_apply, ckpts, x, probe_keys, groups, **kw)
    assert got.shape == (groups * seeds, trained + 1)
    # independent computation: every (model, checkpoint) probed on its own
    one = jax.jit(lambda p, key: P.plasticity_probe(_tanh_apply, p, x, key, **kw))
    want = np.array(
        [
            [
                float(one(jax.tree.map(lambda a, m=m, k=k: a[m, k], ckpts), probe_keys[m]))
                for k in range(trained + 1)
            ]
            for m in range(groups * seeds)
        ]
    )
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # checkpoint 0 is one number per seed, the same in every group
    np.testing.assert_array_equal(got[:seeds, 0], got[seeds:, 0])


def test_probe_checkpoints_refuses_unshared_initialisation_or_keys():
    x = jax.random.normal(jax.random.key(1), (8, 5))
    keys = jnp.tile(jax.random.split(jax.random.PRNGKey(7), 3), (2, 1))
    with pytest.raises(ValueError, match="share their initial parameters"):
        P.probe_checkpoints(_tanh_apply, _stacked_checkpoints(shared=False), x, keys, 2, steps=2)
    other = jax.random.split(jax.random.PRNGKey(8), 6)
    with pytest.raises(ValueError, match="share their probe key"):
        P.probe_checkpoints(_tanh_apply, _stacked_checkpoints(), x, other, 2, steps=2)
    with pytest.raises(ValueError, match="num_groups=4"):
        P.probe_checkpoints(_tanh_apply, _stacked_checkpoints(), x, keys, 4, steps=2)
