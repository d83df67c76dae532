"""``plasticity_lib.relabelling`` (§3.1): the equal-budget schedule, the relabelling step
against ``tasks.relabel_fraction``, and a program built from it against
``train.train_stream`` (the chapter's training program in miniature)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib import keys, relabelling, tasks, train
from plasticity_lib.models import ModelConfig, make_network


def test_schedule_equalises_steps_and_relabelling():
    s = relabelling.make_schedule([1.0, 0.01, 0.5, 0.1], 15, 600, evals_per_iteration=10)
    assert s.fractions == (0.01, 0.1, 0.5, 1.0)
    assert s.chunk_steps == 6 and s.periods == (1, 10, 50, 100)
    assert s.steps_between_resets == (6, 60, 300, 600)
    assert s.resets == (1500, 150, 30, 15)
    assert s.total_steps == 9000 and s.chunks_per_eval == 10 and s.eval_every == 60
    n = 500  # every fraction re-draws the same total number of labels
    totals = {r * round(f * n) for r, f in zip(s.resets, s.fractions)}
    assert totals == {15 * n}
    steps = s.eval_steps
    assert steps[0] == 60 and steps[-1] == 9000 and len(steps) == 150
    mask = s.iteration_end_mask()
    assert mask[0].all() and mask[1].all()
    assert mask[2].sum() == 30 and mask[3].sum() == 15
    assert np.all(steps[mask[3]] % 600 == 0)
    budget, m3 = s.iteration_ends(3)
    np.testing.assert_array_equal(m3, mask[3])
    np.testing.assert_allclose(budget, np.arange(1, 16) / 15)
    assert s.eval_index(600) == 9 and s.eval_index(60) == 0
    with pytest.raises(ValueError, match="not an evaluation point"):
        s.eval_index(61)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(fractions=[0.0, 1.0]), "in \\(0, 1\\]"),
        (dict(fractions=[0.3, 0.6]), "1 / fraction"),
        (dict(fractions=[0.2, 0.5]), "fraction 0.5 / min"),
        (dict(fractions=[0.01, 1.0], iteration_steps=150), "must be a positive integer"),
        (dict(fractions=[0.1, 1.0], evals_per_iteration=20), "multiple of the chunk"),
        (dict(fractions=[0.5, 0.5]), "distinct"),
        (dict(fractions=[]), "non-empty"),
        (dict(fractions=[0.5, 1.0], iterations=0), ">= 1"),
    ],
)
def test_schedule_rejects_fractional_step_counts(kwargs, match):
    args = dict(iterations=2, iteration_steps=100, evals_per_iteration=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        relabelling.make_schedule(**args)


_relabel_jit = jax.jit(lambda key, y, k: relabelling.relabel(key, y, k, 10))


@pytest.mark.parametrize("eps", [0.01, 0.1, 0.5, 1.0])
def test_relabel_is_relabel_fraction_next(eps):
    n = 300
    stream = tasks.relabel_fraction(jnp.zeros((n, 3)), 10, eps)
    prev = stream.init(jax.random.PRNGKey(1))
    key = jax.random.PRNGKey(7)
    ref = stream.next(key, 1, prev).y
    k = int(round(eps * n))
    got, redrawn = _relabel_jit(key, prev.y, jnp.int32(k))  # traced k
    np.testing.assert_array_equal(np.asarray(got), np.asarray(ref))
    assert int(redrawn.sum()) == k  # exactly k re-drawn ...
    assert np.all(np.asarray(got)[~np.asarray(redrawn)] == np.asarray(prev.y)[~redrawn])  # ... only
    # an independent re-draw: a fresh label is uniform, so about 1 / 10 of them coincide
    if k >= 150:
        same = np.mean(np.asarray(got)[np.asarray(redrawn)] == np.asarray(prev.y)[redrawn])
        assert 0.03 < same < 0.2


def test_relabel_at_chunk_replays_the_stream():
    """Fraction 0.5 on a chunk of 0.25 iterations (period 2): before chunk j = 2 r the
    labels are the stream's task r (key fold_in(root, r)); between resets they stay."""
    n, c = 40, 10
    stream = tasks.relabel_fraction(jnp.zeros((n, 2)), c, 0.5)
    root = keys.task_root([3])[0]
    y = stream.init(jax.random.fold_in(root, 0)).y
    task = stream.init(jax.random.fold_in(root, 0))
    for j in range(7):
        new, redrawn = relabelling.relabel_at_chunk(root, j, 2, y, n // 2, c)
        if j > 0 and j % 2 == 0:
            task = stream.next(jax.random.fold_in(root, j // 2), j // 2, task)
            assert int(redrawn.sum()) == n // 2
        else:
            assert not bool(redrawn.any())
            np.testing.assert_array_equal(np.asarray(new), np.asarray(y))
        np.testing.assert_array_equal(np.asarray(new), np.asarray(task.y))
        y = new


def test_end_of_run_uses_iteration_ends_in_last_tenth():
    sch = relabelling.make_schedule([0.1, 0.5, 1.0], 10, 10, evals_per_iteration=10)
    steps = sch.eval_steps  # 1..100
    acc = np.tile((steps / 100.0)[None, None], (3, 2, 1)).astype(np.float32)
    acc[:, 1] += 1.0
    end = relabelling.end_of_run(sch, acc)
    # eps=0.1: iteration ends at every step, last tenth = steps 91..100; eps=0.5: 95, 100;
    # eps=1: 100 only
    expected = [np.mean(np.arange(91, 101)) / 100, 0.975, 1.0]
    np.testing.assert_allclose(end[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(end[:, 1] - end[:, 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(relabelling.end_of_run(sch, acc, last=0.5)[2, 0], 0.8, rtol=1e-6)
    with pytest.raises(ValueError, match="no iteration end"):
        relabelling.end_of_run(sch, acc, last=0.0)


def test_program_matches_train_stream_for_every_fraction():
    """The chapter's program in miniature (all fractions in one vmap, relabelling by
    ``relabel_at_chunk`` before each chunk, ``train.train_steps`` per chunk) gives the
    numbers of ``train.train_stream`` on ``tasks.relabel_fraction`` for every fraction."""
    n, c, seeds = 64, 10, np.array([0, 5])
    x = jnp.asarray(np.asarray(jax.random.normal(jax.random.PRNGKey(3), (n, 12)), np.float32))
    net = make_network(ModelConfig(arch="mlp", width=16, depth=2, num_outputs=c))
    cfg = train.TrainConfig(learning_rate=3e-3, batch_size=16)
    sch = relabelling.make_schedule([0.5, 1.0], 2, 20, evals_per_iteration=2)
    f_count, s_count = len(sch.fractions), len(seeds)
    model_seeds = np.tile(seeds, f_count)
    roots = keys.task_root(model_seeds)
    ks = jnp.asarray(np.repeat([round(f * n) for f in sch.fractions], s_count), jnp.int32)
    periods = jnp.asarray(np.repeat(sch.periods, s_count), jnp.int32)
    init = tasks.relabel_fraction(x, c, 1.0).init
    labels = jax.vmap(lambda key: init(key).y)(keys.task_keys(roots, 0))
    mask = jnp.ones((n,), jnp.float32)

    def one_model(state, y, root, k, period):
        def chunk(carry, j):
            state, y = carry
            y, _ = relabelling.relabel_at_chunk(root, j, period, y, k, c)
            state = jax.tree.map(lambda a: a[None], state)
            state, _ = train.train_steps(net, cfg, state, tasks.Task(x, y, mask), sch.chunk_steps)
            state = jax.tree.map(lambda a: a[0], state)
            ev = train.evaluate_task(net, state.params, tasks.Task(x, y, mask))
            return (state, y), ev["accuracy"]

        total_chunks = sch.total_steps // sch.chunk_steps
        return jax.lax.scan(chunk, (state, y), jnp.arange(total_chunks, dtype=jnp.int32))

    state = train.init_state(net, cfg, model_seeds, x[:2])
    (state, labels), acc = jax.jit(jax.vmap(one_model))(state, labels, roots, ks, periods)
    acc = np.asarray(acc).reshape(f_count, s_count, -1)  # accuracy after every chunk
    for fi, f in enumerate(sch.fractions):
        ref = train.train_stream(
            net,
            cfg,
            tasks.relabel_fraction(x, c, f),
            seeds,
            num_tasks=round(2 / f),
            steps_per_task=round(20 * f),
            log_every=round(20 * f),
            progress=False,
        )
        ends = acc[fi][:, sch.periods[fi] - 1 :: sch.periods[fi]]  # the task ends
        np.testing.assert_allclose(ends, ref.task_end["accuracy"], atol=1e-6)
        for a, b in zip(
            jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(ref.final_params)
        ):
            np.testing.assert_allclose(
                np.asarray(a).reshape((f_count, s_count) + a.shape[1:])[fi],
                b,
                rtol=1e-5,
                atol=1e-6,
            )


def test_steps_to_accuracy_matches_a_chunked_loop():
    """The probe that fixes chapter 2's K, against a host loop over chunks of ``every``
    steps evaluated with ``train.evaluate`` (the same labels and initialisations)."""
    from plasticity_lib import relabelling as rl
    from plasticity_lib import tasks as tasks_mod
    from plasticity_lib import train as train_mod
    from plasticity_lib.models import ModelConfig, make_network

    x = jnp.asarray(np.random.default_rng(0).normal(size=(32, 6)), jnp.float32)
    net = make_network(ModelConfig(arch="mlp", depth=1, width=16, num_outputs=4))
    cfg = train_mod.TrainConfig(learning_rate=1e-2, batch_size=8)
    seeds, every, max_steps, target = [3, 4], 20, 400, 0.75
    got = rl.steps_to_accuracy(
        net, cfg, x, 4, seeds, target=target, every=every, max_steps=max_steps
    )
    stream = tasks_mod.random_labels(x, 4)
    ys = jnp.stack([stream.init(jax.random.fold_in(jax.random.PRNGKey(s), 7919)).y for s in seeds])
    task = tasks_mod.Task(x, ys, jnp.ones((32,), jnp.float32))
    state = train_mod.init_state(net, cfg, seeds, x[:2])
    want = [-1, -1]
    for k in range(max_steps // every):
        state, _ = train_mod.train_steps(net, cfg, state, task, every, task_batched=(None, 0, None))
        acc = np.asarray(
            train_mod.evaluate(net, state.params, x, ys, task_batched=(None, 0, None))["accuracy"]
        )
        for j in range(2):
            if want[j] < 0 and acc[j] >= target:
                want[j] = (k + 1) * every
    np.testing.assert_array_equal(got, want)
    assert (got > 0).all()
    # an unreachable target gives -1
    never = rl.steps_to_accuracy(net, cfg, x, 4, seeds, target=1.01, every=every, max_steps=40)
    np.testing.assert_array_equal(never, [-1, -1])
