"""Tests of the one-model step: updates, loss terms, ReDo, the weight-norm constraint,
the public single-model primitives (``init_model_state``, ``train_step``) and errors.

Independent computations: hand-written updates and objectives at theta0, numpy masks.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_common import BASE, NET, STREAM, C, N, Task, X, first, leaves_equal, same_example_task

from plasticity_lib import keys, train
from plasticity_lib.losses import data_loss
from plasticity_lib.models import ModelConfig, make_network
from plasticity_lib.train import (
    TrainConfig,
    init_state,
    make_optimizer,
    redo_reset,
    train_steps,
    train_stream,
)
from plasticity_lib.train.interventions import tree_get

# --------------------------------------------------------------------- single updates


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_l2_and_decoupled_weight_decay_single_update(optimizer):
    """theta1 = theta0 - lr * (dir(g + 2*l2*theta0) + wd*theta0), dir = id (SGD) or Adam's."""
    lr, l2, wd = 0.05, 0.1, 0.3
    cfg = TrainConfig(optimizer=optimizer, learning_rate=lr, batch_size=4, l2=l2, weight_decay=wd)
    task = same_example_task()
    st0 = init_state(NET, cfg, [3], X[:2])
    st1, logs = train_steps(NET, cfg, st0, task, 1)
    p0 = first(st0.params)

    @jax.jit
    def hand(p0):
        def loss(p):
            return jnp.mean(data_loss("xent", NET.apply(p, task.x[:1]), task.y[:1])[0])

        g = jax.grad(loss)(p0)

        def expected(theta, grad):
            gp = grad + 2 * l2 * theta
            direction = gp if optimizer == "sgd" else gp / (jnp.abs(gp) + 1e-8)
            return theta - lr * (direction + wd * theta)

        return jax.tree_util.tree_map(expected, p0, g)

    exp = hand(p0)
    for a, b in zip(jax.tree_util.tree_leaves(first(st1.params)), jax.tree_util.tree_leaves(exp)):
        # Adam: g/(|g|+eps) amplifies rounding of tiny g
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert int(st1.step[0]) == 1 and logs["loss"].shape == (1, 1)


def test_penalties_redo_and_weight_norm_constraint():
    """Objective = loss + l2 + feature-norm + grad-norm + InFeR terms (hand computed at
    theta0); ReDo runs inside the engine; kernels keep their initial norms."""
    l2, fnp, gnp, ic, isc = 1e-2, 0.05, 0.2, 0.3, 4.0
    cfg = TrainConfig(
        learning_rate=1e-2,
        batch_size=4,
        l2=l2,
        feature_norm_penalty=fnp,
        grad_norm_penalty=gnp,
        infer_coef=ic,
        infer_scale=isc,
        infer_k=3,
        redo_every=2,
        redo_tau=0.5,
        weight_norm_constraint=True,
    )
    task = same_example_task()
    st0 = init_state(NET, cfg, [5], X[:2])
    st, logs = train_steps(NET, cfg, st0, task, 4, log_every=1)
    p0, aux0 = first(st0.params), first(st0.aux)
    x0, y0 = task.x[:1], task.y[:1]

    def dl(p):
        return jnp.mean(data_loss("xent", NET.apply(p, x0), y0)[0])

    @jax.jit
    def hand(p0, aux0):
        phi = NET.apply_with_intermediates(p0, x0)[1].features
        g_inf = phi @ aux0["kernel"] + aux0["bias"]

        def sq(t):
            return sum(jnp.sum(jnp.square(a)) for a in jax.tree_util.tree_leaves(t))

        return dl(p0), (
            dl(p0)
            + l2 * sq(p0)
            + fnp * jnp.sum(phi**2)
            + gnp * sq(jax.grad(dl)(p0))
            + ic * (1 - isc) ** 2 * jnp.sum(g_inf**2)
        )

    loss0, expected = hand(p0, aux0)
    np.testing.assert_allclose(logs["loss"][0, 0], loss0, rtol=1e-5)
    np.testing.assert_allclose(logs["objective"][0, 0], expected, rtol=1e-4)
    assert logs["redo_resets"].shape == (1, 4) and np.all(logs["redo_resets"][0, [0, 2]] == 0)
    for path, leaf in jax.tree_util.tree_leaves_with_path(first(st.params)):
        if path[-1].key == "kernel":
            n0 = np.linalg.norm(np.asarray(tree_get(p0, [k.key for k in path])))
            np.testing.assert_allclose(np.linalg.norm(leaf), n0, rtol=1e-5)
    assert not np.allclose(first(st.params)["Dense_0"]["bias"], p0["Dense_0"]["bias"])


def test_redo_resets_only_dormant_unit():
    net = make_network(ModelConfig(depth=2, width=8, num_outputs=3))
    cfg = TrainConfig()
    x = jnp.asarray(X)
    key_init, key_redo = jax.random.PRNGKey(0), jax.random.PRNGKey(7)
    params = jax.jit(net.init)(key_init, x)
    # unit 2 of layer 0 is dead
    params["Dense_0"]["bias"] = params["Dense_0"]["bias"].at[2].set(-1e3)
    opt = make_optimizer(cfg)
    opt_state = opt.init((params, {}))
    opt_state = jax.tree_util.tree_map(
        lambda a: jnp.ones_like(a) if jnp.issubdtype(a.dtype, jnp.floating) else a, opt_state
    )

    @jax.jit
    def run(params, opt_state):
        _, inter = net.apply_with_intermediates(params, x)
        reset = redo_reset(net, params, {}, opt_state, opt, inter.acts, key_redo, 0.0, x)
        return inter.acts, reset, net.init(key_redo, x)

    acts, (newp, _, new_opt, n_reset), fresh = run(params, opt_state)
    dormant = [np.flatnonzero(np.abs(np.asarray(a)).mean(0) == 0) for a in acts]
    assert 2 in dormant[0]
    assert int(n_reset) == len(dormant[0]) + len(dormant[1])

    old = jax.tree_util.tree_map(np.array, params)
    fr = jax.tree_util.tree_map(np.array, fresh)
    exp = jax.tree_util.tree_map(np.array, params)
    changed = jax.tree_util.tree_map(lambda a: np.zeros(a.shape, bool), old)
    for li, name in enumerate(["Dense_0", "Dense_1"]):
        d = dormant[li]
        exp[name]["kernel"][:, d] = fr[name]["kernel"][:, d]
        exp[name]["bias"][d] = fr[name]["bias"][d]
        changed[name]["kernel"][:, d] = True
        changed[name]["bias"][d] = True
    for li, nxt in enumerate(["Dense_1", "Head"]):
        exp[nxt]["kernel"][dormant[li], :] = 0.0
        changed[nxt]["kernel"][dormant[li], :] = True
    assert leaves_equal(newp, exp)
    assert not np.allclose(newp["Dense_0"]["kernel"][:, 2], old["Dense_0"]["kernel"][:, 2])
    mu = new_opt[0].mu[0]
    nu = new_opt[0].nu[0]
    for m in (mu, nu):
        for a, c in zip(jax.tree_util.tree_leaves(m), jax.tree_util.tree_leaves(changed)):
            np.testing.assert_array_equal(np.asarray(a), np.where(c, 0.0, 1.0))


# ----------------------------------------------------------- the one-model primitives


def test_train_step_vmapped_by_hand_equals_train_steps():
    """A training program written from the one-model primitives (init_model_state,
    train_step in a lax.scan), vmapped by hand over 2 seeds with per-seed learning
    rates, gives the numbers of init_state + train_steps."""
    seeds = [0, 1]
    cfg = TrainConfig(learning_rate=1e-2, batch_size=8, l2=1e-3, label_smoothing=0.1)
    labels = jax.random.randint(jax.random.PRNGKey(2), (N,), 0, C)
    mask = jnp.asarray(np.arange(N) < 24, jnp.float32)  # the draw must skip unmasked examples
    task = Task(jnp.asarray(X), labels, mask)
    lrs = jnp.asarray([1e-2, 3e-3], jnp.float32)
    num_steps = 6

    def one(key, lr):
        hp = dict(train.hyperparams(cfg), learning_rate=lr)
        state0 = train.init_model_state(NET, cfg, key, X[:2])

        def body(state, _):
            return train.train_step(NET, cfg, state, hp, task)

        return state0, jax.lax.scan(body, state0, None, length=num_steps)

    st0, (st, metrics) = jax.jit(jax.vmap(one))(keys.seed_keys(seeds), lrs)
    ref0 = init_state(NET, cfg, seeds, X[:2])
    assert leaves_equal(st0, ref0)  # the same initial state, bit for bit
    ref, logs = train_steps(
        NET, cfg, ref0, task, num_steps, log_every=1, hparams={"learning_rate": lrs}
    )
    assert metrics["loss"].shape == (2, num_steps)
    for name in ("loss", "objective", "accuracy"):
        np.testing.assert_allclose(metrics[name], logs[name], rtol=1e-6, atol=1e-7)
    for a, b in zip(jax.tree_util.tree_leaves(st), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    assert np.array_equal(st.step, [num_steps, num_steps])
    assert not np.allclose(metrics["loss"][0], metrics["loss"][1])  # seeds differ


def test_train_step_on_a_given_batch_is_sgd():
    """train_step with a Batch uses exactly that minibatch: SGD gives theta - lr * grad."""
    lr = 0.1
    cfg = TrainConfig(optimizer="sgd", learning_rate=lr, batch_size=4)
    batch = train.Batch(jnp.asarray(X[:5]), jnp.asarray([0, 1, 2, 3, 0], jnp.int32))
    state = train.init_model_state(NET, cfg, jax.random.PRNGKey(4), X[:2])
    new, metrics = jax.jit(lambda s: train.train_step(NET, cfg, s, None, batch))(state)

    def loss(p):
        return jnp.mean(data_loss("xent", NET.apply(p, batch.x), batch.y)[0])

    g = jax.jit(jax.grad(loss))(state.params)
    expected = jax.tree_util.tree_map(lambda p, d: p - lr * d, state.params, g)
    for a, b in zip(jax.tree_util.tree_leaves(new.params), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(metrics["loss"], loss(state.params), rtol=1e-6)
    assert int(new.step) == 1 and not bool(new.diverged)
    with pytest.raises(ValueError, match="hparams lacks"):
        train.train_step(NET, cfg, state, {"learning_rate": 0.1}, batch)


# ---------------------------------------------------------------------------- errors


def test_errors_name_the_bad_parameter():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="shampoo"):
        init_state(NET, TrainConfig(optimizer="shampoo"), [0], X[:2])
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="hinge")
    with pytest.raises(ValueError, match="head"):
        init_state(NET, TrainConfig(loss="twohot"), [0], X[:2])
    with pytest.raises(ValueError, match="head"):
        train.init_model_state(NET, TrainConfig(loss="twohot"), jax.random.PRNGKey(0), X[:2])
    with pytest.raises(ValueError, match="log_every"):
        train_stream(
            NET, BASE, STREAM, [0], num_tasks=1, steps_per_task=10, log_every=3, progress=False
        )
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig(learning_rate=0.0)
    with pytest.raises(ValueError, match="l2"):
        st = init_state(NET, BASE, [0], X[:2])
        train_steps(NET, BASE, st, same_example_task(), 1, hparams={"l2": 0.1})
