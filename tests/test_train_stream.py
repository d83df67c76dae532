"""Tests of the stream engine (train_stream / train_many): result layout, determinism,
grouping, divergence, masked minibatches, kept parameters, sharding over devices.

Independent computations: a stream written here (not tasks.py), evaluate() on a task
rebuilt from the key scheme by hand, a single-config run against the grouped run.
"""

import inspect
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
from train_common import (
    BASE,
    NET,
    PROTOCOL,
    STREAM,
    C,
    D,
    Stream,
    Task,
    X,
    base_run,
    first,
    leaves_equal,
)

from plasticity_lib.models import ModelConfig, make_network
from plasticity_lib.train import (
    TrainConfig,
    evaluate,
    initial_params,
    train_many,
    train_stream,
)


def test_run_result_layout_and_determinism():
    r = base_run()
    w = PROTOCOL["steps_per_task"] // PROTOCOL["log_every"]
    assert r.logs["loss"].shape == (2, 2, w) and r.logs["accuracy"].shape == (2, 2, w)
    assert r.task_end["loss"].shape == (2, 2) and r.task_end["accuracy"].shape == (2, 2)
    np.testing.assert_array_equal(r.log_steps[1], [10, 12, 14, 16])
    assert r.final_params["Dense_0"]["kernel"].shape == (2, D, 8)
    assert r.diverged.shape == (2,) and not r.diverged.any() and (r.diverged_at_step == -1).all()
    assert r.task_params["Dense_0"]["kernel"].shape == (2, 2, D, 8)
    assert list(r.task_params_tasks) == [0, 1]
    assert leaves_equal(jax.tree_util.tree_map(lambda a: a[:, -1], r.task_params), r.final_params)
    head = r.task_params["Head"]["kernel"]
    assert not np.array_equal(head[:, 0], head[:, 1])
    assert np.isfinite(r.logs["loss"]).all()
    assert not np.array_equal(r.logs["loss"][0], r.logs["loss"][1])  # seeds differ
    again = train_stream(NET, BASE, STREAM, [0, 1], **PROTOCOL)
    assert leaves_equal(
        (r.logs, r.task_end, r.final_params), (again.logs, again.task_end, again.final_params)
    )
    # The task-end evaluation agrees with evaluate() on the same final task.
    root = jax.random.fold_in(jax.random.PRNGKey(0), 1)  # seed 0's task root

    def task_1(root):
        task0 = STREAM.init(jax.random.fold_in(root, 0))
        return STREAM.next(jax.random.fold_in(root, 1), 1, task0)

    task1 = jax.jit(task_1)(root)
    ev = evaluate(NET, first(r.final_params), task1.x, task1.y)
    np.testing.assert_allclose(ev["loss"], r.task_end["loss"][0, 1], rtol=1e-5)
    np.testing.assert_allclose(ev["accuracy"], r.task_end["accuracy"][0, 1], rtol=1e-6)
    frame = r.task_end_frame()
    assert len(frame) == 4 and set(frame.columns) >= {"seed", "task", "loss", "accuracy"}
    logs = r.logs_frame()
    assert len(logs) == sum(v.size for v in r.logs.values() if v.ndim == 3)


def test_train_many_groups_configs_and_flags_divergence():
    """A huge learning rate diverges; it is flagged and frozen, the other configs are
    unaffected."""
    net = make_network(ModelConfig(depth=1, width=8, num_outputs=C, activation="identity"))
    cfgs = [
        TrainConfig(optimizer="sgd", loss="mse", learning_rate=lr, batch_size=8)
        for lr in (1e-2, 1e6)
    ]
    kw = dict(num_tasks=1, steps_per_task=12, log_every=4, progress=False)
    ok, bad = train_many(net, cfgs, STREAM, [0, 1], **kw)
    assert not ok.diverged.any() and np.isfinite(ok.logs["loss"]).all()
    assert np.isfinite(ok.task_end["loss"]).all()
    assert bad.diverged.all()
    assert ((bad.diverged_at_step >= 0) & (bad.diverged_at_step < 12)).all()
    assert np.isnan(bad.logs["loss"][:, 0, -1]).all() and np.isnan(bad.task_end["loss"]).all()
    assert all(np.isfinite(a).all() for a in jax.tree_util.tree_leaves(bad.final_params))
    # same seed -> same initial parameters and minibatches in both configs: first window
    # matches a single-config run of the first config
    solo = train_stream(net, cfgs[0], STREAM, [0, 1], **kw)
    np.testing.assert_array_equal(solo.logs["loss"], ok.logs["loss"])


def test_minibatches_come_from_masked_examples():
    """Unmasked examples have huge regression targets: sampling one would show in the loss."""
    n = 16
    y = np.zeros((n, 2), np.float32)
    y[n // 2 :] = 1e4
    mask = (np.arange(n) < n // 2).astype(np.float32)
    x = jnp.asarray(X[:n])

    def init(key):
        return Task(x, jnp.asarray(y), jnp.asarray(mask))

    stream = Stream(init, lambda key, t, prev: prev)
    net = make_network(ModelConfig(depth=1, width=8, num_outputs=2))
    cfg = TrainConfig(loss="mse", batch_size=16, learning_rate=1e-3)
    r = train_stream(
        net, cfg, stream, [0], num_tasks=1, steps_per_task=10, log_every=5, progress=False
    )
    assert r.logs["loss"].max() < 100 and r.task_end["mse"].max() < 100
    params = first(r.final_params)
    ev = evaluate(net, params, x, jnp.asarray(y), "mse", mask=jnp.asarray(mask), batch_size=3)
    out = np.asarray(jax.jit(net.apply)(params, x[: n // 2]))
    np.testing.assert_allclose(ev["loss"], np.mean(out**2), rtol=1e-5)


def test_keep_initial_params():
    run = base_run()
    r = train_stream(NET, BASE, STREAM, [0, 1], keep_initial_params=True, **PROTOCOL)
    assert run.initial_params is None
    assert leaves_equal(r.initial_params, initial_params(NET, [0, 1], X))
    # nothing else changes
    assert leaves_equal((r.logs, r.final_params), (run.logs, run.final_params))
    # continuing a run: the kept parameters are those it continued from
    c = train_stream(
        NET, BASE, STREAM, [0, 1], init_state=r.final_state, keep_initial_params=True, **PROTOCOL
    )
    assert leaves_equal(c.initial_params, r.final_params)


def test_train_stream_and_train_many_signatures_agree():
    """train_stream repeats train_many's keyword list (explicit signatures): keep them in
    sync."""
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


_SHARD_SCRIPT = textwrap.dedent("""
    import json, sys, jax, numpy as np
    sys.path.insert(0, sys.argv[1])
    import train_common as tt
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
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(
        [sys.executable, "-c", _SHARD_SCRIPT, here],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["devices"] == [2, 1]
    assert res["max_abs_diff"] <= 1e-6, res
