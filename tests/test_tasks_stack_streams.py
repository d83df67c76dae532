"""tasks.stack_streams: M streams as one stream over (member, seed) models (chapter 6).

Checked against each stream vmapped on its own, and, trained with the engine's public
pieces (``init_state``, ``train_steps(task_batched=True)``, ``evaluate``), against
``train.train_stream`` on the same stream and seeds (the protocol of chapter 6, App. B.2).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib import keys, tasks, train
from plasticity_lib.models import ModelConfig, make_network

N, D, C = 48, 12, 4
SEEDS = np.array([3, 4])


@pytest.fixture(scope="module")
def base():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype(np.float32)
    y = rng.integers(0, C, size=N).astype(np.int32)
    return x, y


def _streams(x, y):
    return [
        tasks.mode_stream("random_labels", x, y, C),
        tasks.mode_stream("permuted_pixels", x, y, C, "growing"),
        tasks.mode_stream("permuted_classes", x, y, C, "composite", 0.5),
    ]


def test_stacked_tasks_are_each_stream_per_seed(base):
    """Model m * S + s holds stream m's task for seed key s, at init and after next."""
    x, y = base
    streams = _streams(*base)
    stacked = tasks.stack_streams(streams)
    k0 = keys.task_keys(keys.task_root(SEEDS), 0)
    k1 = keys.task_keys(keys.task_root(SEEDS), 1)
    t0 = jax.jit(stacked.init)(k0)
    t1 = jax.jit(stacked.next)(k1, jnp.int32(1), t0)
    assert t0.x.shape == (3 * 2, N, D) and t1.y.shape == (3 * 2, N)
    for m, st in enumerate(streams):
        for s in range(len(SEEDS)):
            ref0 = st.init(k0[s])
            ref1 = st.next(k1[s], jnp.int32(1), ref0)
            for got, ref in ((t0, ref0), (t1, ref1)):
                for a, b in zip(got, ref):
                    np.testing.assert_array_equal(np.asarray(a[m * 2 + s]), np.asarray(b))
    # growing mode: one class admitted at task 0, two at task 1
    np.testing.assert_array_equal(np.asarray(t0.mask[2]), (y <= 0).astype(np.float32))
    np.testing.assert_array_equal(np.asarray(t1.mask[3]), (y <= 1).astype(np.float32))


def test_stack_streams_validates(base):
    with pytest.raises(ValueError, match="non-empty sequence of TaskStream"):
        tasks.stack_streams([])
    stacked = tasks.stack_streams(_streams(*base)[:2])
    k = keys.task_root(SEEDS)
    t0 = stacked.init(k)
    with pytest.raises(ValueError, match="expected len\\(streams\\) x len\\(keys\\)"):
        stacked.next(k[:1], jnp.int32(1), t0)


def test_stacked_protocol_matches_train_stream(base):
    """Training every (member, seed) together, one task at a time, equals
    ``train.train_stream`` on each member's stream (same keys: parameters, tasks,
    minibatches; growing mode: masked minibatches and masked evaluation)."""
    x, y = base
    streams = _streams(x, y)[:2]
    net = make_network(ModelConfig(arch="mlp", width=16, depth=1, norm="layer", num_outputs=C))
    cfg = train.TrainConfig(learning_rate=3e-3, batch_size=8, l2=1e-3)
    stacked = tasks.stack_streams(streams)
    roots = keys.task_root(SEEDS)
    state = train.init_state(net, cfg, np.tile(SEEDS, len(streams)), jnp.asarray(x[:2]))
    task = None
    acc, logs = [], []
    for t in range(3):
        k = keys.task_keys(roots, t)
        task = stacked.init(k) if t == 0 else stacked.next(k, jnp.int32(t), task)
        state, lg = train.train_steps(net, cfg, state, task, 20, log_every=10, task_batched=True)
        ev = train.evaluate(net, state.params, task.x, task.y, mask=task.mask, task_batched=True)
        acc.append(ev["accuracy"])
        logs.append(np.asarray(lg["loss"]))
    acc = np.stack(acc, 1).reshape(2, len(SEEDS), 3)
    logs = np.stack(logs, 1).reshape(2, len(SEEDS), 3, 2)
    ref = train.train_stream(  # the growing-mode member (masked tasks), trained alone
        net, cfg, streams[1], SEEDS, num_tasks=3, steps_per_task=20, log_every=10, progress=False
    )
    np.testing.assert_allclose(acc[1], ref.task_end["accuracy"], atol=1e-6)
    np.testing.assert_allclose(logs[1], ref.logs["loss"], rtol=1e-4, atol=1e-5)
    # the two members share each seed's initial parameters (common random numbers) but
    # not their tasks, so their training differs
    init = train.init_state(net, cfg, np.tile(SEEDS, 2), jnp.asarray(x[:2])).params
    for leaf in jax.tree_util.tree_leaves(init):
        np.testing.assert_array_equal(np.asarray(leaf[:2]), np.asarray(leaf[2:]))
    assert not np.allclose(logs[0], logs[1])
