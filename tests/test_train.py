"""Tests of plasticity_lib.train and plasticity_lib.losses (independent computations).

Kept tiny (an MLP of width 8 on 32 examples) so the whole file runs in well under a
minute on 2 CPU cores; most time is XLA compilation, so tests share configurations.
"""

import inspect
import json
import os
import subprocess
import sys
import textwrap
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plasticity_lib.train as T
from plasticity_lib.losses import data_loss, twohot_decode, twohot_encode, twohot_loss
from plasticity_lib.models import ModelConfig, make_network
from plasticity_lib.train import (
    TrainConfig,
    evaluate,
    evaluate_task,
    init_state,
    initial_params,
    make_optimizer,
    redo_reset,
    reset_optimizer,
    train_many,
    train_steps,
    train_stream,
)

N, D, C = 32, 6, 4
X = np.random.default_rng(0).normal(size=(N, D)).astype(np.float32)


class Task(NamedTuple):
    x: jax.Array
    y: jax.Array
    mask: jax.Array


class Stream(NamedTuple):
    init: object
    next: object


def random_label_stream(x=X, num_classes=C):
    """Minimal stream (independent of tasks.py): fresh uniform labels every task."""
    x = jnp.asarray(x)
    n = x.shape[0]

    def init(key):
        return Task(x, jax.random.randint(key, (n,), 0, num_classes), jnp.ones((n,), jnp.float32))

    def next_(key, t, prev):
        return Task(prev.x, jax.random.randint(key, (n,), 0, num_classes), prev.mask)

    return Stream(init, next_)


STREAM = random_label_stream()
NET = make_network(ModelConfig(depth=1, width=8, num_outputs=C))
BASE = TrainConfig(learning_rate=1e-2, batch_size=8)
PROTOCOL = dict(num_tasks=2, steps_per_task=8, log_every=2, progress=False, keep_task_params=True)


def _leaves_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(u), np.asarray(v), equal_nan=True) for u, v in zip(la, lb))


def _same_example_task(y0=1):
    """A task whose examples are all the same, so every minibatch gives the same gradient."""
    return Task(jnp.tile(jnp.asarray(X[:1]), (N, 1)), jnp.full((N,), y0, jnp.int32), jnp.ones((N,), jnp.float32))


def _first(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[0], tree)


@pytest.fixture(scope="module")
def base_run():
    return train_stream(NET, BASE, STREAM, [0, 1], **PROTOCOL)


# ------------------------------------------------------------------------------ losses


def test_twohot_roundtrip_and_placement():
    atoms = jnp.arange(-3.0, 4.0)  # -3..3
    v = jnp.array([-3.0, -2.25, 0.0, 0.7, 2.5, 3.0, 7.0, -9.0])
    logits = jnp.asarray(np.random.default_rng(1).normal(size=(8, 1, 7)), jnp.float32)
    ls = 0.1

    @jax.jit
    def compute(v, logits):
        p = twohot_encode(v, atoms)
        return p, twohot_decode(p, atoms), twohot_loss(logits, v, atoms, ls)

    p, decoded, loss = map(np.asarray, compute(v, logits))
    assert p.shape == (8, 7)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(decoded, np.clip(v, -3, 3), atol=1e-6)
    # B.3: P(floor c) = ceil c - c, P(ceil c) = 1 - P(floor c)
    np.testing.assert_allclose(p[1, 0], 0.25, atol=1e-6)  # -2.25 -> -3 (idx 0) and -2 (idx 1)
    np.testing.assert_allclose(p[1, 1], 0.75, atol=1e-6)
    np.testing.assert_allclose(p[3, 3], 0.3, atol=1e-6)  # 0.7 -> 0 (idx 3) 0.3, 1 (idx 4) 0.7
    np.testing.assert_allclose(p[3, 4], 0.7, atol=1e-6)
    assert p[2, 3] == 1.0 and p[5, 6] == 1.0 and p[6, 6] == 1.0 and p[7, 0] == 1.0
    assert int((p[3] > 0).sum()) == 2
    # two-hot loss = cross-entropy against the (smoothed) two-hot target (numpy)
    target = (1 - ls) * p + ls / 7
    lg = np.asarray(logits[:, 0], np.float64)
    logp = lg - lg.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    np.testing.assert_allclose(loss, -(target * logp).sum(-1), rtol=1e-5)


def test_xent_label_smoothing_and_mse():
    logits = jnp.array([[2.0, 0.0, -1.0]])
    y = jnp.array([0])
    loss, m = jax.jit(lambda a, b: data_loss("xent", a, b, label_smoothing=0.3))(logits, y)
    lp = np.log(np.exp([2.0, 0.0, -1.0]) / np.exp([2.0, 0.0, -1.0]).sum())
    target = 0.7 * np.array([1, 0, 0]) + 0.1
    np.testing.assert_allclose(loss, [-(target * lp).sum()], rtol=1e-5)
    assert m["accuracy"][0] == 1.0
    loss, m = jax.jit(lambda a, b: data_loss("mse", a, b))(jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 4.0]]))
    np.testing.assert_allclose(loss, [2.5]) and np.testing.assert_allclose(m["mse"], [2.5])


# --------------------------------------------------------------------- single updates


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_l2_and_decoupled_weight_decay_single_update(optimizer):
    """theta1 = theta0 - lr * (dir(g + 2*l2*theta0) + wd*theta0), dir = id (SGD) or Adam's."""
    lr, l2, wd = 0.05, 0.1, 0.3
    cfg = TrainConfig(optimizer=optimizer, learning_rate=lr, batch_size=4, l2=l2, weight_decay=wd)
    task = _same_example_task()
    st0 = init_state(NET, cfg, [3], X[:2])
    st1, logs = train_steps(NET, cfg, st0, task, 1)
    p0 = _first(st0.params)

    @jax.jit
    def hand(p0):
        g = jax.grad(lambda p: jnp.mean(data_loss("xent", NET.apply(p, task.x[:1]), task.y[:1])[0]))(p0)

        def expected(theta, grad):
            gp = grad + 2 * l2 * theta
            direction = gp if optimizer == "sgd" else gp / (jnp.abs(gp) + 1e-8)
            return theta - lr * (direction + wd * theta)

        return jax.tree_util.tree_map(expected, p0, g)

    exp = hand(p0)
    for a, b in zip(jax.tree_util.tree_leaves(_first(st1.params)), jax.tree_util.tree_leaves(exp)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)  # Adam: g/(|g|+eps) amplifies rounding of tiny g
    assert int(st1.step[0]) == 1 and logs["loss"].shape == (1, 1)


def test_penalties_redo_and_weight_norm_constraint():
    """Objective = loss + l2 + feature-norm + grad-norm + InFeR terms (hand computed at
    theta0); ReDo runs inside the engine; kernels keep their initial norms."""
    l2, fnp, gnp, ic, isc = 1e-2, 0.05, 0.2, 0.3, 4.0
    cfg = TrainConfig(learning_rate=1e-2, batch_size=4, l2=l2, feature_norm_penalty=fnp, grad_norm_penalty=gnp,
                      infer_coef=ic, infer_scale=isc, infer_k=3, redo_every=2, redo_tau=0.5,
                      weight_norm_constraint=True)
    task = _same_example_task()
    st0 = init_state(NET, cfg, [5], X[:2])
    st, logs = train_steps(NET, cfg, st0, task, 4, log_every=1)
    p0, aux0 = _first(st0.params), _first(st0.aux)
    x0, y0 = task.x[:1], task.y[:1]

    def dl(p):
        return jnp.mean(data_loss("xent", NET.apply(p, x0), y0)[0])

    @jax.jit
    def hand(p0, aux0):
        phi = NET.apply_with_intermediates(p0, x0)[1].features
        g_inf = phi @ aux0["kernel"] + aux0["bias"]
        sq = lambda t: sum(jnp.sum(jnp.square(a)) for a in jax.tree_util.tree_leaves(t))  # noqa: E731
        return dl(p0), (dl(p0) + l2 * sq(p0) + fnp * jnp.sum(phi**2) + gnp * sq(jax.grad(dl)(p0))
                        + ic * (1 - isc) ** 2 * jnp.sum(g_inf**2))

    loss0, expected = hand(p0, aux0)
    np.testing.assert_allclose(logs["loss"][0, 0], loss0, rtol=1e-5)
    np.testing.assert_allclose(logs["objective"][0, 0], expected, rtol=1e-4)
    assert logs["redo_resets"].shape == (1, 4) and np.all(logs["redo_resets"][0, [0, 2]] == 0)
    for path, leaf in jax.tree_util.tree_leaves_with_path(_first(st.params)):
        if path[-1].key == "kernel":
            n0 = np.linalg.norm(np.asarray(T._get(p0, [k.key for k in path])))
            np.testing.assert_allclose(np.linalg.norm(leaf), n0, rtol=1e-5)
    assert not np.allclose(_first(st.params)["Dense_0"]["bias"], p0["Dense_0"]["bias"])


def test_redo_resets_only_dormant_unit():
    net = make_network(ModelConfig(depth=2, width=8, num_outputs=3))
    cfg = TrainConfig()
    x = jnp.asarray(X)
    key_init, key_redo = jax.random.PRNGKey(0), jax.random.PRNGKey(7)
    params = jax.jit(net.init)(key_init, x)
    params["Dense_0"]["bias"] = params["Dense_0"]["bias"].at[2].set(-1e3)  # unit 2 of layer 0 is dead
    opt = make_optimizer(cfg)
    opt_state = opt.init((params, {}))
    opt_state = jax.tree_util.tree_map(
        lambda a: jnp.ones_like(a) if jnp.issubdtype(a.dtype, jnp.floating) else a, opt_state)

    @jax.jit
    def run(params, opt_state):
        _, inter = net.apply_with_intermediates(params, x)
        return inter.acts, redo_reset(net, params, {}, opt_state, opt, inter.acts, key_redo, 0.0, x), \
            net.init(key_redo, x)

    acts, (newp, _, new_opt, n_reset), fresh = run(params, opt_state)
    dormant = [np.flatnonzero(np.abs(np.asarray(a)).mean(0) == 0) for a in acts]
    assert 2 in dormant[0]
    assert int(n_reset) == len(dormant[0]) + len(dormant[1])

    old = jax.tree_util.tree_map(np.array, params)
    fr = jax.tree_util.tree_map(np.array, fresh)
    exp = jax.tree_util.tree_map(np.array, params)
    changed = jax.tree_util.tree_map(lambda a: np.zeros(a.shape, bool), old)
    for li, (name, nxt) in enumerate([("Dense_0", "Dense_1"), ("Dense_1", "Head")]):
        d = dormant[li]
        exp[name]["kernel"][:, d] = fr[name]["kernel"][:, d]
        exp[name]["bias"][d] = fr[name]["bias"][d]
        changed[name]["kernel"][:, d] = True
        changed[name]["bias"][d] = True
    for li, nxt in enumerate(["Dense_1", "Head"]):
        exp[nxt]["kernel"][dormant[li], :] = 0.0
        changed[nxt]["kernel"][dormant[li], :] = True
    assert _leaves_equal(newp, exp)
    assert not np.allclose(newp["Dense_0"]["kernel"][:, 2], old["Dense_0"]["kernel"][:, 2])
    mu = new_opt[0].mu[0]
    nu = new_opt[0].nu[0]
    for m in (mu, nu):
        for a, c in zip(jax.tree_util.tree_leaves(m), jax.tree_util.tree_leaves(changed)):
            np.testing.assert_array_equal(np.asarray(a), np.where(c, 0.0, 1.0))


# ----------------------------------------------------------------------------- engine


def test_optimizer_reset(base_run):
    st = T.TrainState(*[jax.tree_util.tree_map(jnp.asarray, f) for f in base_run.final_state])
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
    np.testing.assert_array_equal(r.logs["loss"][:, 0], base_run.logs["loss"][:1, 0])  # task 0 identical
    assert not np.allclose(r.logs["loss"][:, 1], base_run.logs["loss"][:1, 1])


def test_run_result_layout_and_determinism(base_run):
    r = base_run
    w = PROTOCOL["steps_per_task"] // PROTOCOL["log_every"]
    assert r.logs["loss"].shape == (2, 2, w) and r.logs["accuracy"].shape == (2, 2, w)
    assert r.task_end["loss"].shape == (2, 2) and r.task_end["accuracy"].shape == (2, 2)
    np.testing.assert_array_equal(r.log_steps[1], [10, 12, 14, 16])
    assert r.final_params["Dense_0"]["kernel"].shape == (2, D, 8)
    assert r.diverged.shape == (2,) and not r.diverged.any() and (r.diverged_at_step == -1).all()
    assert r.task_params["Dense_0"]["kernel"].shape == (2, 2, D, 8) and list(r.task_params_tasks) == [0, 1]
    assert _leaves_equal(jax.tree_util.tree_map(lambda a: a[:, -1], r.task_params), r.final_params)
    assert not np.array_equal(r.task_params["Head"]["kernel"][:, 0], r.task_params["Head"]["kernel"][:, 1])
    assert np.isfinite(r.logs["loss"]).all()
    assert not np.array_equal(r.logs["loss"][0], r.logs["loss"][1])  # seeds differ
    again = train_stream(NET, BASE, STREAM, [0, 1], **PROTOCOL)
    assert _leaves_equal((r.logs, r.task_end, r.final_params), (again.logs, again.task_end, again.final_params))
    # The task-end evaluation agrees with evaluate() on the same final task.
    root = jax.random.fold_in(jax.random.PRNGKey(0), 1)  # seed 0's task root
    task1 = jax.jit(lambda r: STREAM.next(jax.random.fold_in(r, 1), 1, STREAM.init(jax.random.fold_in(r, 0))))(root)
    ev = evaluate(NET, _first(r.final_params), task1.x, task1.y)
    np.testing.assert_allclose(ev["loss"], r.task_end["loss"][0, 1], rtol=1e-5)
    np.testing.assert_allclose(ev["accuracy"], r.task_end["accuracy"][0, 1], rtol=1e-6)


def test_train_many_groups_configs_and_flags_divergence():
    """A huge learning rate diverges; it is flagged and frozen, the other configs are unaffected."""
    net = make_network(ModelConfig(depth=1, width=8, num_outputs=C, activation="identity"))
    cfgs = [TrainConfig(optimizer="sgd", loss="mse", learning_rate=lr, batch_size=8) for lr in (1e-2, 1e6)]
    ok, bad = train_many(net, cfgs, STREAM, [0, 1], num_tasks=1, steps_per_task=12, log_every=4, progress=False)
    assert not ok.diverged.any() and np.isfinite(ok.logs["loss"]).all() and np.isfinite(ok.task_end["loss"]).all()
    assert bad.diverged.all()
    assert ((bad.diverged_at_step >= 0) & (bad.diverged_at_step < 12)).all()
    assert np.isnan(bad.logs["loss"][:, 0, -1]).all() and np.isnan(bad.task_end["loss"]).all()
    assert all(np.isfinite(a).all() for a in jax.tree_util.tree_leaves(bad.final_params))
    # same seed -> same initial parameters and minibatches in both configs: first window matches
    # a single-config run of the first config
    solo = train_stream(net, cfgs[0], STREAM, [0, 1], num_tasks=1, steps_per_task=12, log_every=4, progress=False)
    np.testing.assert_array_equal(solo.logs["loss"], ok.logs["loss"])


def test_minibatches_come_from_masked_examples():
    """Unmasked examples have huge regression targets: sampling one would show in the loss."""
    n = 16
    y = np.zeros((n, 2), np.float32)
    y[n // 2:] = 1e4
    mask = (np.arange(n) < n // 2).astype(np.float32)
    x = jnp.asarray(X[:n])

    def init(key):
        return Task(x, jnp.asarray(y), jnp.asarray(mask))

    stream = Stream(init, lambda key, t, prev: prev)
    net = make_network(ModelConfig(depth=1, width=8, num_outputs=2))
    r = train_stream(net, TrainConfig(loss="mse", batch_size=16, learning_rate=1e-3), stream, [0], num_tasks=1,
                     steps_per_task=10, log_every=5, progress=False)
    assert r.logs["loss"].max() < 100 and r.task_end["mse"].max() < 100
    ev = evaluate(net, _first(r.final_params), x, jnp.asarray(y), "mse", mask=jnp.asarray(mask), batch_size=3)
    out = np.asarray(jax.jit(net.apply)(_first(r.final_params), x[: n // 2]))
    np.testing.assert_allclose(ev["loss"], np.mean(out**2), rtol=1e-5)


def test_checkpoint_resume_is_identical(base_run, tmp_path, monkeypatch):
    kw = dict(PROTOCOL, chunk_steps=4)  # half-task chunks (base_run: both tasks in one call)
    full = train_stream(NET, BASE, STREAM, [0, 1], **kw)
    # chunking does not change the numbers
    np.testing.assert_allclose(full.logs["loss"], base_run.logs["loss"], rtol=1e-6)
    np.testing.assert_allclose(full.task_end["loss"], base_run.task_end["loss"], rtol=1e-6)
    saves = []
    orig = T._save_checkpoint

    def interrupted(*a, **k):
        orig(*a, **k)
        saves.append(1)
        if len(saves) == 3:
            raise RuntimeError("simulated interruption")

    monkeypatch.setattr(T, "_save_checkpoint", interrupted)
    with pytest.raises(RuntimeError, match="simulated"):
        train_stream(NET, BASE, STREAM, [0, 1], checkpoint_dir=str(tmp_path), **kw)
    monkeypatch.setattr(T, "_save_checkpoint", orig)
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].endswith(".npz")  # no temp file left behind
    resumed = train_stream(NET, BASE, STREAM, [0, 1], checkpoint_dir=str(tmp_path), **kw)
    assert len(saves) == 3  # the resumed run did not go through the patched function
    assert _leaves_equal((full.logs, full.task_end, full.final_state),
                         (resumed.logs, resumed.task_end, resumed.final_state))
    loaded = train_stream(NET, BASE, STREAM, [0, 1], checkpoint_dir=str(tmp_path), **kw)  # finished: no training
    assert _leaves_equal(loaded.final_params, full.final_params)


def _abs(params):
    return jax.tree_util.tree_map(jnp.abs, params)


def test_init_transform_is_abs_of_default_init():
    """init_transform maps the engine's fresh parameters: exactly |theta| of the default init
    (an independent network.init with the key scheme), wherever the engine initialises."""
    seeds = [0, 3]
    ref = [NET.init(jax.random.fold_in(jax.random.PRNGKey(s), 0), jnp.asarray(X[:2])) for s in seeds]
    p = initial_params(NET, seeds, X)
    p_abs = initial_params(NET, seeds, X, init_transform=_abs)
    for i, r in enumerate(ref):
        assert _leaves_equal(_first(jax.tree_util.tree_map(lambda a: a[i:i + 1], p)), r)
        assert _leaves_equal(_first(jax.tree_util.tree_map(lambda a: a[i:i + 1], p_abs)), _abs(r))
    # init_state (another config: another init program for the optimizer state) starts from the same params
    cfg = TrainConfig(learning_rate=1e-2, batch_size=8, weight_norm_constraint=True)
    st = init_state(NET, cfg, seeds, X[:2], init_transform=_abs)
    assert _leaves_equal(st.params, p_abs)
    np.testing.assert_allclose(st.anchor["kernel_norms"]["Dense_0"]["kernel"],  # anchored to the transformed init
                               np.linalg.norm(np.abs(np.asarray(p["Dense_0"]["kernel"], np.float64)), axis=(1, 2)),
                               rtol=1e-6)
    # the stream engine: kept initial parameters, and the same run as starting from init_params
    a = train_stream(NET, BASE, STREAM, seeds, init_transform=_abs, keep_initial_params=True, **PROTOCOL)
    b = train_stream(NET, BASE, STREAM, seeds, init_params=p_abs, keep_initial_params=True, **PROTOCOL)
    assert _leaves_equal(a.initial_params, p_abs) and _leaves_equal(b.initial_params, p_abs)
    assert _leaves_equal((a.logs, a.task_end, a.final_params), (b.logs, b.task_end, b.final_params))
    with pytest.raises(ValueError, match="init_transform"):
        train_stream(NET, BASE, STREAM, seeds, init_transform=_abs, init_params=p_abs, **PROTOCOL)
    with pytest.raises(ValueError, match="init_transform"):
        init_state(NET, BASE, seeds, X[:2], init_params=p_abs, init_transform=_abs)
    with pytest.raises(ValueError, match="init_transform"):
        initial_params(NET, seeds, X, init_transform=lambda q: jax.tree_util.tree_map(lambda v: v[..., :1], q))


def test_keep_initial_params(base_run):
    r = train_stream(NET, BASE, STREAM, [0, 1], keep_initial_params=True, **PROTOCOL)
    assert base_run.initial_params is None
    assert _leaves_equal(r.initial_params, initial_params(NET, [0, 1], X))
    assert _leaves_equal((r.logs, r.final_params), (base_run.logs, base_run.final_params))  # nothing else changes
    # continuing a run: the kept parameters are those it continued from
    c = train_stream(NET, BASE, STREAM, [0, 1], init_state=r.final_state, keep_initial_params=True, **PROTOCOL)
    assert _leaves_equal(c.initial_params, r.final_params)


def test_train_stream_and_train_many_signatures_agree():
    """train_stream repeats train_many's keyword list (explicit signatures): keep them in sync."""
    a = inspect.signature(train_stream).parameters
    b = inspect.signature(train_many).parameters
    assert [k for k in a if k != "cfg"] == [k for k in b if k != "cfgs"]
    for k in a:
        if k not in ("cfg", "network", "stream", "seeds"):
            assert a[k].default == b[k].default and a[k].kind == b[k].kind, k
    src = inspect.getsource(train_stream)
    for k in a:
        if a[k].kind == inspect.Parameter.KEYWORD_ONLY:
            assert f"{k}={k}" in src, f"train_stream does not forward {k}"


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
    sa, la = train_steps(NET, BASE, st0, shared, 6, log_every=2, metrics_fn=mf, task_batched=(None, 0, None))
    sb, lb = train_steps(NET, BASE, st0, copied, 6, log_every=2, metrics_fn=mf, task_batched=True)
    diff = max(float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
               for u, v in zip(jax.tree_util.tree_leaves((la, sa.params)), jax.tree_util.tree_leaves((lb, sb.params))))
    assert diff <= 1e-6, diff
    for i, s in enumerate(seeds):  # each model alone, on its own labels
        si, li = train_steps(NET, BASE, init_state(NET, BASE, [s], X[:2]), Task(jnp.asarray(X), y[i], shared.mask), 6,
                             log_every=2, metrics_fn=mf)
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
    one = lambda i: jax.tree_util.tree_map(lambda a: np.asarray(a)[i], params)  # noqa: E731
    got = evaluate(NET, params, xs, ys, mask=masks, batch_size=8, label_smoothing=ls, task_batched=True)
    shared = evaluate(NET, params, X, ys, mask=masks, batch_size=8, task_batched=(None, 0, 0))
    assert got["loss"].shape == (m,) and got["accuracy"].shape == (m,)
    for i in range(m):
        ref = evaluate(NET, one(i), xs[i], ys[i], mask=masks[i], batch_size=8, label_smoothing=float(ls[i]))
        np.testing.assert_allclose(got["loss"][i], ref["loss"], rtol=1e-6)
        np.testing.assert_allclose(got["accuracy"][i], ref["accuracy"], atol=1e-7)
        ref = evaluate(NET, one(i), X, ys[i], mask=masks[i], batch_size=8)
        np.testing.assert_allclose(shared["loss"][i], ref["loss"], rtol=1e-6)
        # independent: numpy over the masked examples
        logits = np.asarray(NET.apply(one(i), jnp.asarray(X)), np.float64)
        keep = masks[i] > 0
        lse = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
        np.testing.assert_allclose(shared["loss"][i], np.mean((lse - logits[np.arange(N), ys[i]])[keep]), rtol=1e-5)
        np.testing.assert_allclose(shared["accuracy"][i], np.mean((logits.argmax(-1) == ys[i])[keep]), atol=1e-7)
    # the traceable single-model function gives the same numbers inside jit/vmap
    tr = jax.jit(jax.vmap(lambda p, t: evaluate_task(NET, p, t, batch_size=8)))(
        params, Task(jnp.broadcast_to(jnp.asarray(X), (m, N, D)), jnp.asarray(ys), jnp.asarray(masks)))
    np.testing.assert_allclose(np.asarray(tr["loss"]), shared["loss"], rtol=1e-6)
    with pytest.raises(ValueError, match="leading model axis"):
        evaluate(NET, one(0), xs, ys, task_batched=True)
    with pytest.raises(ValueError, match="leading model axis"):
        evaluate(NET, params, xs[:2], ys[:2], task_batched=True)


_SHARD_SCRIPT = textwrap.dedent("""
    import json, sys, jax, numpy as np
    sys.path.insert(0, sys.argv[1])
    import test_train as tt
    from plasticity_lib.train import train_stream
    assert len(jax.devices()) == 2, jax.devices()
    kw = dict(tt.PROTOCOL)
    a = train_stream(tt.NET, tt.BASE, tt.STREAM, [0, 1, 2], shard=True, **kw)
    b = train_stream(tt.NET, tt.BASE, tt.STREAM, [0, 1, 2], shard=False, **kw)
    diff = max(float(np.max(np.abs(u - v))) for u, v in zip(
        jax.tree_util.tree_leaves((a.logs, a.task_end, a.final_params)),
        jax.tree_util.tree_leaves((b.logs, b.task_end, b.final_params))))
    print(json.dumps({"devices": [a.num_devices, b.num_devices], "max_abs_diff": diff}))
""")


def test_sharded_equals_unsharded():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", _SHARD_SCRIPT, here], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["devices"] == [2, 1]
    assert res["max_abs_diff"] <= 1e-6, res


def test_errors_name_the_bad_parameter():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="shampoo"):
        init_state(NET, TrainConfig(optimizer="shampoo"), [0], X[:2])
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="hinge")
    with pytest.raises(ValueError, match="head"):
        init_state(NET, TrainConfig(loss="twohot"), [0], X[:2])
    with pytest.raises(ValueError, match="log_every"):
        train_stream(NET, BASE, STREAM, [0], num_tasks=1, steps_per_task=10, log_every=3, progress=False)
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig(learning_rate=0.0)
