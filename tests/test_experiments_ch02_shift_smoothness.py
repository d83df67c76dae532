"""Chapter 2 protocol: equal-budget relabelling schedule, exact match with the engine."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib import claims, tasks, train
from plasticity_lib.experiments import ch02_shift_smoothness as E
from plasticity_lib.models import ModelConfig, make_network


def test_schedule_equalises_steps_and_relabelling():
    s = E.make_schedule([1.0, 0.01, 0.5, 0.1], iterations=15, iteration_steps=600, evals_per_iteration=10)
    assert s.fractions == (0.01, 0.1, 0.5, 1.0)
    assert s.chunk_steps == 6 and s.periods == (1, 10, 50, 100)
    assert s.steps_between_resets == (6, 60, 300, 600)
    assert s.resets == (1500, 150, 30, 15)
    assert s.total_steps == 9000 and s.chunks_per_eval == 10
    n = 500  # every fraction relabels the same total number of labels
    totals = {r * round(f * n) for r, f in zip(s.resets, s.fractions)}
    assert totals == {15 * n}
    steps = s.eval_steps
    assert steps[0] == 60 and steps[-1] == 9000 and len(steps) == 150
    mask = s.iteration_end_mask()
    assert mask[0].all() and mask[1].all()
    assert mask[2].sum() == 30 and mask[3].sum() == 15
    assert np.all(steps[mask[3]] % 600 == 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(fractions=[0.0, 1.0]), "in \\(0, 1\\]"),
        (dict(fractions=[0.3, 0.6]), "1 / fraction"),
        (dict(fractions=[0.2, 0.5]), "fraction 0.5 / min"),
        (dict(fractions=[0.01, 1.0], iteration_steps=150), "must be a positive integer"),
        (dict(fractions=[0.1, 1.0], evals_per_iteration=20), "multiple of the chunk"),
        (dict(fractions=[0.5, 0.5]), "distinct"),
    ],
)
def test_schedule_rejects_fractional_step_counts(kwargs, match):
    args = dict(iterations=2, iteration_steps=100, evals_per_iteration=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        E.make_schedule(**args)


_relabel_jit = jax.jit(lambda key, y, k: E.relabel(key, y, k, 10))


@pytest.mark.parametrize("eps", [0.01, 0.1, 0.5, 1.0])
def test_relabel_is_relabel_fraction_next(eps):
    n, c = 300, 10
    x = jnp.zeros((n, 3))
    stream = tasks.relabel_fraction(x, c, eps)
    prev = stream.init(jax.random.PRNGKey(1))
    key = jax.random.PRNGKey(7)
    ref = stream.next(key, 1, prev).y
    k = int(round(eps * n))
    got = _relabel_jit(key, prev.y, jnp.int32(k))  # traced k
    np.testing.assert_array_equal(np.asarray(got), np.asarray(ref))
    assert int(jnp.sum(got != prev.y)) <= k


def _tiny(n=64, d=12, width=16):
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(3), (n, d)), np.float32)
    net = make_network(ModelConfig(arch="mlp", width=width, depth=2, num_outputs=10))
    cfg = train.TrainConfig(learning_rate=3e-3, batch_size=16)
    return x, net, cfg


@pytest.fixture(scope="module")
def tiny_run():
    x, net, cfg = _tiny()
    # periods 1 and 2 chunks; evaluation grid every 10 steps (every iteration end of both)
    sch = E.make_schedule([0.5, 1.0], iterations=2, iteration_steps=20, evals_per_iteration=2)
    run = E.run_fractions(net, cfg, x, 10, sch, [0, 5], progress=False)
    return x, net, sch, run


def test_run_matches_train_stream_for_every_fraction(tiny_run):
    x, net, sch, run = tiny_run
    cfg = train.TrainConfig(learning_rate=3e-3, batch_size=16)
    assert run.accuracy.shape == (2, 2, 4) and not run.diverged.any()
    for fi, f in enumerate(sch.fractions):
        ref = train.train_stream(
            net, cfg, tasks.relabel_fraction(x, 10, f), [0, 5], num_tasks=round(2 / f),
            steps_per_task=round(20 * f), log_every=round(20 * f), progress=False,
        )
        task_steps = (np.arange(round(2 / f)) + 1) * round(20 * f)
        _, curve = E.iteration_end_curve(run, fi)
        on_grid = np.isin(task_steps, sch.eval_steps)
        np.testing.assert_allclose(curve, ref.task_end["accuracy"][:, on_grid], atol=1e-6)
        for a, b in zip(jax.tree_util.tree_leaves(run.final_params), jax.tree_util.tree_leaves(ref.final_params)):
            np.testing.assert_allclose(a[fi], b, rtol=1e-5, atol=1e-6)
        # the labels of the last iteration are the stream's last task, key scheme of the engine
        stream = tasks.relabel_fraction(x, 10, f)
        for si, seed in enumerate([0, 5]):
            root = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
            task = stream.init(jax.random.fold_in(root, 0))
            for t in range(1, round(2 / f)):
                task = stream.next(jax.random.fold_in(root, t), t, task)
            np.testing.assert_array_equal(run.final_labels[fi, si], np.asarray(task.y))


def test_in_program_evaluation_batches_like_one_pass():
    """The run's evaluation (``train.evaluate_task`` inside the jitted program) over all N
    examples: batching does not change it, and it equals one pass over the data."""
    x, net, _ = _tiny(n=50)
    params = net.init(jax.random.PRNGKey(0), jnp.asarray(x[:2]))
    y = jnp.asarray(np.arange(50) % 10, jnp.int32)
    task = tasks.Task(jnp.asarray(x), y, jnp.ones((50,), jnp.float32))
    ev = jax.jit(lambda p, t, bs: train.evaluate_task(net, p, t, batch_size=bs), static_argnums=2)
    e1, e2 = ev(params, task, 1024), ev(params, task, 16)
    logits = np.asarray(net.apply(params, jnp.asarray(x)), np.float64)
    ref_acc = float(np.mean(np.argmax(logits, -1) == np.asarray(y)))
    lse = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    ref_xent = float(np.mean(lse - logits[np.arange(50), np.asarray(y)]))
    assert float(e1["accuracy"]) == pytest.approx(ref_acc) and float(e2["accuracy"]) == pytest.approx(ref_acc)
    assert float(e1["loss"]) == pytest.approx(ref_xent, rel=1e-5)
    assert float(e2["loss"]) == pytest.approx(ref_xent, rel=1e-5)


def test_pool_images():
    x = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 16)
    p = E.pool_images(x, (4, 4, 1), 2)
    assert p.shape == (2, 4)
    np.testing.assert_allclose(p[0], [2.5, 4.5, 10.5, 12.5])
    assert E.pool_images(x, (4, 4, 1), 1) is not None
    with pytest.raises(ValueError, match="divide"):
        E.pool_images(x, (4, 4, 1), 3)


def test_end_of_run_uses_iteration_ends_in_last_tenth():
    sch = E.make_schedule([0.1, 0.5, 1.0], iterations=10, iteration_steps=10, evals_per_iteration=10)
    steps = sch.eval_steps  # 1..100
    acc = np.tile((steps / 100.0)[None, None], (3, 2, 1)).astype(np.float32)
    acc[:, 1] += 1.0
    run = E.ShiftRun(sch, np.arange(2), acc, acc * 0, acc * 0, acc * 0, np.zeros((3, 2), bool), None,
                     np.zeros((3, 2, 4), np.int32), 0.0)
    end = E.end_of_run_accuracy(run)
    # eps=0.1: iteration ends at every step, last tenth = steps 91..100; eps=0.5: 95, 100; eps=1: 100
    np.testing.assert_allclose(end[:, 0], [np.mean(np.arange(91, 101)) / 100, 0.975, 1.0], rtol=1e-6)
    np.testing.assert_allclose(end[:, 1] - end[:, 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(E.accuracy_at_step(run, 10)[:, 0], 0.1)
    with pytest.raises(ValueError):
        E.accuracy_at_step(run, 7 * 1000)
    x, v = E.iteration_end_curve(run, 2)
    np.testing.assert_allclose(x, np.arange(1, 11) / 10)


def test_spearman_of_means_statistic():
    stat = E.spearman_of_means([0.01, 0.1, 0.5, 1.0])
    falling = np.array([[0.9, 0.8, 0.5, 0.2], [0.95, 0.7, 0.6, 0.1]])
    assert stat(falling) == pytest.approx(-1.0)
    est = claims.bootstrap_interval(falling, stat)
    assert est.high == pytest.approx(-1.0)
    assert stat(falling[:, ::-1]) == pytest.approx(1.0)


def test_pool_images_keeps_image_layout():
    x = np.arange(2 * 4 * 4 * 2, dtype=np.float32).reshape(2, 4, 4, 2)
    p = E.pool_images(x, (4, 4, 2), 2)
    assert p.shape == (2, 2, 2, 2)
    np.testing.assert_allclose(p[0, 0, 0], x[0, :2, :2].mean(axis=(0, 1)))


def test_label_history_replays_the_run(tiny_run):
    x, net, sch, run = tiny_run  # fractions 0.5 and 1.0, resets every 10 and 20 steps, 40 steps
    for f in range(2):
        ages, labels = E.label_history(sch, f, [0, 5], x, 10)
        np.testing.assert_array_equal(labels, run.final_labels[f])
        assert ages.shape == (2, 64)
    ages0, _ = E.label_history(sch, 0, [0, 5], x, 10)
    assert set(np.unique(ages0)) <= {10, 20, 30, 40}
    assert np.sum(ages0 == 10, axis=1).tolist() == [32, 32]  # the last reset re-drew exactly half
    ages1, _ = E.label_history(sch, 1, [0, 5], x, 10)
    assert np.all(ages1 == 20)  # eps = 1: every label re-drawn at the start of the last iteration
    corr = E.final_correct(net, run, 0, x)
    assert corr.shape == (2, 64)
    np.testing.assert_allclose(corr.mean(1), run.accuracy[0, :, -1], atol=1e-6)
