"""Tests of the model-batched functions: init_state / initial_params (init_transform),
train_steps with per-field task axes, reset_optimizer, evaluate with per-model data.

Independent computations: each model alone, numpy over the masked examples, the key
scheme written out by hand.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_common import (
    BASE,
    NET,
    PROTOCOL,
    STREAM,
    C,
    D,
    N,
    Task,
    X,
    base_run,
    first,
    leaves_equal,
)

from plasticity_lib import train
from plasticity_lib.losses import data_loss
from plasticity_lib.train import (
    TrainConfig,
    evaluate,
    evaluate_task,
    init_state,
    initial_params,
    reset_optimizer,
    train_steps,
    train_stream,
)


def test_optimizer_reset():
    run = base_run()
    st = train.TrainState(*[jax.tree_util.tree_map(jnp.asarray, f) for f in run.final_state])
    assert int(st.opt_state[0].count[0]) == PROTOCOL["num_tasks"] * PROTOCOL["steps_per_task"]
    assert any(np.abs(a).sum() > 0 for a in jax.tree_util.tree_leaves(st.opt_state[0].mu))
    fresh = reset_optimizer(NET, BASE, st)
    assert int(fresh.opt_state[0].count[0]) == 0
    for a in jax.tree_util.tree_leaves((fresh.opt_state[0].mu, fresh.opt_state[0].nu)):
        assert np.all(np.asarray(a) == 0)
    # Inside the engine: the moments restart at each task boundary.
    cfg = TrainConfig(learning_rate=1e-2, batch_size=8, reset_optimizer_each_task=True)
    r = train_stream(NET, cfg, STREAM, [0], **PROTOCOL)
    assert int(r.final_state.opt_state[0].count[0]) == PROTOCOL["steps_per_task"]
    # task 0 identical, task 1 not
    np.testing.assert_array_equal(r.logs["loss"][:, 0], run.logs["loss"][:1, 0])
    assert not np.allclose(r.logs["loss"][:, 1], run.logs["loss"][:1, 1])


def _abs(params):
    return jax.tree_util.tree_map(jnp.abs, params)


def test_init_transform_is_abs_of_default_init():
    """init_transform maps the engine's fresh parameters: exactly |theta| of the default init
    (an independent network.init with the key scheme), wherever the engine initialises."""
    seeds = [0, 3]
    ref = [
        NET.init(jax.random.fold_in(jax.random.PRNGKey(s), 0), jnp.asarray(X[:2])) for s in seeds
    ]
    p = initial_params(NET, seeds, X)
    p_abs = initial_params(NET, seeds, X, init_transform=_abs)
    for i, r in enumerate(ref):
        assert leaves_equal(first(jax.tree_util.tree_map(lambda a: a[i : i + 1], p)), r)
        assert leaves_equal(first(jax.tree_util.tree_map(lambda a: a[i : i + 1], p_abs)), _abs(r))
    # init_state (another config: another init program for the optimizer state) starts from
    # the same params
    cfg = TrainConfig(learning_rate=1e-2, batch_size=8, weight_norm_constraint=True)
    st = init_state(NET, cfg, seeds, X[:2], init_transform=_abs)
    assert leaves_equal(st.params, p_abs)
    kernel = np.abs(np.asarray(p["Dense_0"]["kernel"], np.float64))
    np.testing.assert_allclose(  # anchored to the transformed init
        st.anchor["kernel_norms"]["Dense_0"]["kernel"],
        np.linalg.norm(kernel, axis=(1, 2)),
        rtol=1e-6,
    )
    # the one-model initialisation, vmapped by hand, gives the same state
    one = jax.vmap(lambda k: train.init_model_state(NET, cfg, k, X[:2], init_transform=_abs))(
        jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    )
    assert leaves_equal(one.params, st.params) and leaves_equal(one.opt_state, st.opt_state)
    assert leaves_equal((one.rng, one.step), (st.rng, st.step))
    for a, b in zip(jax.tree_util.tree_leaves(one.anchor), jax.tree_util.tree_leaves(st.anchor)):
        np.testing.assert_allclose(a, b, rtol=1e-6)  # another XLA program: 1 ulp
    # the stream engine: kept initial parameters, and the same run as starting from init_params
    a = train_stream(
        NET, BASE, STREAM, seeds, init_transform=_abs, keep_initial_params=True, **PROTOCOL
    )
    b = train_stream(
        NET, BASE, STREAM, seeds, init_params=p_abs, keep_initial_params=True, **PROTOCOL
    )
    assert leaves_equal(a.initial_params, p_abs) and leaves_equal(b.initial_params, p_abs)
    assert leaves_equal((a.logs, a.task_end, a.final_params), (b.logs, b.task_end, b.final_params))
    with pytest.raises(ValueError, match="init_transform"):
        train_stream(NET, BASE, STREAM, seeds, init_transform=_abs, init_params=p_abs, **PROTOCOL)
    with pytest.raises(ValueError, match="init_transform"):
        init_state(NET, BASE, seeds, X[:2], init_params=p_abs, init_transform=_abs)
    with pytest.raises(ValueError, match="init_transform"):
        initial_params(
            NET, seeds, X, init_transform=lambda q: jax.tree_util.tree_map(lambda v: v[..., :1], q)
        )


def test_train_steps_per_field_task_axes_equal_broadcast_inputs():
    """Shared inputs (task_batched=(None, 0, None)) give the same training as the inputs
    copied once per model (task_batched=True), and as each model trained alone."""
    seeds = [0, 1, 2]
    m = len(seeds)
    y = jax.random.randint(jax.random.PRNGKey(9), (m, N), 0, C)

    def mf(p, task, key):  # a metrics_fn that reads the (shared or copied) inputs
        return {"probe_loss": jnp.mean(data_loss("xent", NET.apply(p, task.x[:8]), task.y[:8])[0])}

    st0 = init_state(NET, BASE, seeds, X[:2])
    shared = Task(jnp.asarray(X), y, jnp.ones((N,), jnp.float32))
    copied = Task(jnp.broadcast_to(jnp.asarray(X), (m, N, D)), y, jnp.ones((m, N), jnp.float32))
    kw = dict(log_every=2, metrics_fn=mf)
    sa, la = train_steps(NET, BASE, st0, shared, 6, task_batched=(None, 0, None), **kw)
    sb, lb = train_steps(NET, BASE, st0, copied, 6, task_batched=True, **kw)
    diff = max(
        float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
        for u, v in zip(
            jax.tree_util.tree_leaves((la, sa.params)), jax.tree_util.tree_leaves((lb, sb.params))
        )
    )
    assert diff <= 1e-6, diff
    for i, s in enumerate(seeds):  # each model alone, on its own labels
        alone = init_state(NET, BASE, [s], X[:2])
        task_i = Task(jnp.asarray(X), y[i], shared.mask)
        si, li = train_steps(NET, BASE, alone, task_i, 6, **kw)
        np.testing.assert_allclose(li["loss"][0], la["loss"][i], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(li["probe_loss"][0], la["probe_loss"][i], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="task_batched"):
        train_steps(NET, BASE, st0, shared, 2, task_batched=(None, 0))
    with pytest.raises(ValueError, match="leading model axis"):
        train_steps(NET, BASE, st0, shared, 2, task_batched=(0, 0, None))


def test_evaluate_per_model_tasks_equals_each_model_alone():
    """evaluate(task_batched=...) of M models, each on its own data (labels, masks, inputs,
    label smoothing), equals evaluating each model separately."""
    m = 3
    params = initial_params(NET, [0, 1, 2], X)
    rng = np.random.default_rng(4)
    xs = rng.normal(size=(m, N, D)).astype(np.float32)
    ys = rng.integers(0, C, size=(m, N)).astype(np.int32)
    masks = (rng.random((m, N)) < 0.6).astype(np.float32)
    ls = np.asarray([0.0, 0.1, 0.3], np.float32)

    def one(i):
        return jax.tree_util.tree_map(lambda a: np.asarray(a)[i], params)

    got = evaluate(
        NET, params, xs, ys, mask=masks, batch_size=8, label_smoothing=ls, task_batched=True
    )
    shared = evaluate(NET, params, X, ys, mask=masks, batch_size=8, task_batched=(None, 0, 0))
    assert got["loss"].shape == (m,) and got["accuracy"].shape == (m,)
    for i in range(m):
        ref = evaluate(
            NET, one(i), xs[i], ys[i], mask=masks[i], batch_size=8, label_smoothing=float(ls[i])
        )
        np.testing.assert_allclose(got["loss"][i], ref["loss"], rtol=1e-6)
        np.testing.assert_allclose(got["accuracy"][i], ref["accuracy"], atol=1e-7)
        ref = evaluate(NET, one(i), X, ys[i], mask=masks[i], batch_size=8)
        np.testing.assert_allclose(shared["loss"][i], ref["loss"], rtol=1e-6)
        # independent: numpy over the masked examples
        logits = np.asarray(NET.apply(one(i), jnp.asarray(X)), np.float64)
        keep = masks[i] > 0
        lse = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
        nll = lse - logits[np.arange(N), ys[i]]
        np.testing.assert_allclose(shared["loss"][i], np.mean(nll[keep]), rtol=1e-5)
        acc = np.mean((logits.argmax(-1) == ys[i])[keep])
        np.testing.assert_allclose(shared["accuracy"][i], acc, atol=1e-7)
    # the traceable single-model function gives the same numbers inside jit/vmap
    tasks = Task(jnp.broadcast_to(jnp.asarray(X), (m, N, D)), jnp.asarray(ys), jnp.asarray(masks))
    tr = jax.jit(jax.vmap(lambda p, t: evaluate_task(NET, p, t, batch_size=8)))(params, tasks)
    np.testing.assert_allclose(np.asarray(tr["loss"]), shared["loss"], rtol=1e-6)
    with pytest.raises(ValueError, match="leading model axis"):
        evaluate(NET, one(0), xs, ys, task_batched=True)
    with pytest.raises(ValueError, match="leading model axis"):
        evaluate(NET, params, xs[:2], ys[:2], task_batched=True)
