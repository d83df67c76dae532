"""Tests of plasticity_lib.tasks against independent computations (small, CPU-fast)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib import tasks as T

N, C = 400, 10
KEY = jax.random.PRNGKey(42)


def _unique_images(n=N, shape=(4, 4, 3)):
    """x[i] holds distinct values, so any non-identity permutation changes it and the
    permutation can be read back from the values."""
    d = int(np.prod(shape))
    return (
        (np.arange(n)[:, None] * 1000 + np.arange(d)[None, :])
        .reshape((n, *shape))
        .astype(np.float32)
    )


def _labels(n=N, seed=0):
    return np.random.default_rng(seed).integers(0, C, n).astype(np.int32)


def _run(stream, key, num_tasks):
    """Tasks 0..num_tasks-1 with a lax.scan carrying the Task; stacked (x, y, mask)."""
    k_init, k_next = jax.random.split(key)
    first = stream.init(k_init)

    def body(task, inp):
        k, t = inp
        task = stream.next(k, t, task)
        return task, task

    keys = jax.random.split(k_next, num_tasks - 1)
    _, rest = jax.lax.scan(body, first, (keys, jnp.arange(1, num_tasks, dtype=jnp.int32)))
    return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)


def _run_eagerly(stream, key, num_tasks):
    """Reference for _run: a plain Python loop of init/next calls, no scan, no jit."""
    k_init, k_next = jax.random.split(key)
    tasks = [stream.init(k_init)]
    for t, k in enumerate(jax.random.split(k_next, num_tasks - 1), start=1):
        tasks.append(stream.next(k, jnp.int32(t), tasks[-1]))
    return jax.tree.map(lambda *a: jnp.stack(a), *tasks)


# ----------------------------------------------------------------- label streams


def test_random_labels_range_uniform_fresh():
    s = T.random_labels(np.zeros((N, 3), np.float32), C)
    t0 = s.init(KEY)
    t1 = s.next(jax.random.PRNGKey(1), jnp.int32(1), t0)
    for task in (t0, t1):
        y = np.asarray(task.y)
        assert task.y.dtype == jnp.int32 and y.shape == (N,)
        assert y.min() >= 0 and y.max() < C
        counts = np.bincount(y, minlength=C)
        chi2 = ((counts - N / C) ** 2 / (N / C)).sum()
        assert chi2 < 40.0, counts  # chi2(9 dof): P(>40) ~ 1e-5
        np.testing.assert_array_equal(task.mask, 1.0)
    agree = (np.asarray(t0.y) == np.asarray(t1.y)).mean()
    assert 0.04 < agree < 0.16  # fresh labels agree ~1/C of the time


@pytest.mark.parametrize("eps", [0.01, 0.1, 0.5, 1.0])
def test_relabel_fraction_changes_exactly_the_requested_draws(eps):
    s = T.relabel_fraction(np.zeros((N, 2), np.float32), C, eps)
    k = int(round(eps * N))
    prev = s.init(KEY)
    key = jax.random.PRNGKey(7)
    # Sentinel labels: exactly k positions get a fresh draw, all others carry over.
    sentinel = prev._replace(y=jnp.full((N,), -1, jnp.int32))
    new = np.asarray(s.next(key, jnp.int32(1), sentinel).y)
    assert (new != -1).sum() == k
    assert new[new != -1].min() >= 0 and new.max() < C
    # Independent recomputation of the documented key use.
    k_sel, k_tr = jax.random.split(key)
    chosen = np.asarray(jax.random.permutation(k_sel, N)) < k
    draws = np.asarray(jax.random.randint(k_tr, (N,), 0, C, dtype=jnp.int32))
    np.testing.assert_array_equal(np.where(chosen, draws, -1), new)
    real = np.asarray(s.next(key, jnp.int32(1), prev).y)
    np.testing.assert_array_equal(real[~chosen], np.asarray(prev.y)[~chosen])
    np.testing.assert_array_equal(real[chosen], draws[chosen])


def test_permuted_classes_is_a_bijection_of_labels():
    y = _labels()
    s = T.permuted_classes(np.zeros((N, 2), np.float32), y, C)
    tasks = _run_eagerly(s, KEY, 3)
    maps = []
    for ty in np.asarray(tasks.y):
        pi = {}
        for a, b in zip(y, ty):
            assert pi.setdefault(int(a), int(b)) == b  # a function of the class
        assert sorted(pi.values()) == sorted(pi.keys())  # injective, onto the classes
        maps.append(tuple(pi[c] for c in range(C)))
    assert len(set(maps)) == 3  # a fresh permutation per task


def test_permuted_pixels_is_one_permutation_per_task():
    x, y = _unique_images(), _labels()
    s = T.permuted_pixels(x, y)
    tasks = _run_eagerly(s, KEY, 3)
    assert tasks.x.shape == (3, *x.shape)
    base = x.reshape(N, -1)
    perms = []
    for tx, ty in zip(np.asarray(tasks.x), np.asarray(tasks.y)):
        flat = tx.reshape(N, -1)
        np.testing.assert_array_equal(np.sort(flat, 1), np.sort(base, 1))
        perm = (flat[0] - base[0, 0]).astype(int)  # read back from the unique values
        np.testing.assert_array_equal(flat, base[:, perm])  # same permutation for all rows
        np.testing.assert_array_equal(ty, y)
        perms.append(tuple(perm))
    assert len(set(perms)) == 3


# ---------------------------------------------------------------------- the modes


def _changed_rows(task_x, base_x):
    return np.any(
        np.asarray(task_x).reshape(len(base_x), -1) != base_x.reshape(len(base_x), -1), axis=1
    )


def test_composite_reuses_the_same_subset():
    x, y = _unique_images(), _labels()
    s = T.mode_stream(
        "permuted_pixels", x, y, C, "composite", 0.5, subset_key=jax.random.PRNGKey(3)
    )
    tasks = _run_eagerly(s, KEY, 4)
    changed = [_changed_rows(tx, x) for tx in tasks.x]
    assert changed[0].sum() == N // 2
    for c in changed[1:]:
        np.testing.assert_array_equal(c, changed[0])
    expected = np.asarray(T.random_subset_mask(jax.random.PRNGKey(3), N, N // 2))
    np.testing.assert_array_equal(changed[0], expected)
    other = T.mode_stream(
        "permuted_pixels", x, y, C, "composite", 0.5, subset_key=jax.random.PRNGKey(4)
    )
    assert not np.array_equal(_changed_rows(other.init(KEY).x, x), changed[0])


@pytest.mark.parametrize("fraction", [0.5, 1.0])
def test_continual_changes_the_requested_fraction(fraction):
    x, y = _unique_images(), _labels()
    s = T.mode_stream("permuted_pixels", x, y, C, "continual", fraction)
    prev = s.init(KEY)
    assert _changed_rows(prev.x, x).all()  # task 0 transforms everything
    new = s.next(jax.random.PRNGKey(5), jnp.int32(1), prev)
    moved = _changed_rows(new.x, np.asarray(prev.x))
    assert moved.sum() == int(round(fraction * N))
    # Labels under continual random relabelling: exactly fraction * N fresh draws.
    s2 = T.mode_stream("random_labels", x, y, C, "continual", fraction)
    sentinel = T.Task(prev.x, jnp.full((N,), -1, jnp.int32), prev.mask)
    assert (np.asarray(s2.next(jax.random.PRNGKey(5), 1, sentinel).y) != -1).sum() == int(
        round(fraction * N)
    )
    if fraction < 1:  # and the chosen subset differs between tasks (unlike composite)
        newer = s.next(jax.random.PRNGKey(6), jnp.int32(2), new)
        assert not np.array_equal(_changed_rows(newer.x, np.asarray(new.x)), moved)


def test_growing_adds_one_class_per_task():
    y = _labels()
    s = T.mode_stream("random_labels", np.zeros((N, 2), np.float32), y, C, "growing", 1.0)
    tasks = _run_eagerly(s, KEY, C + 2)
    for t, m in enumerate(np.asarray(tasks.mask)):
        present = set(np.unique(y[m == 1.0]).tolist())
        assert present == set(range(min(t + 1, C)))
        np.testing.assert_array_equal(m, (y <= t).astype(np.float32))
    # The transformation acts on what is there: fresh random labels each task.
    assert not np.array_equal(np.asarray(tasks.y[1]), np.asarray(tasks.y[2]))


# -------------------------------------------------------------- jit / vmap / scan


def _streams():
    x, y = _unique_images(), _labels()
    xf = x.reshape(N, -1)
    # One stream per code path (random_labels is relabel_fraction with eps = 1, and
    # continual mode with any transform is the relabel_fraction path).
    return {
        "relabel_fraction": T.relabel_fraction(xf, C, 0.25),
        "permuted_classes": T.permuted_classes(xf, y, C),
        "permuted_pixels": T.permuted_pixels(x, y),
        "composite": T.mode_stream("random_labels", xf, y, C, "composite", 0.5),
        "growing": T.mode_stream("permuted_pixels", x, y, C, "growing", 1.0),
        "regression": T.regression_stream(xf, offset=3.0, resample=True, width=4, depth=1),
    }


def test_streams_jit_vmap_scan_and_determinism():
    streams = _streams()
    keys = jax.random.split(KEY, 2)
    # One compilation for all streams (compiling is the slow part on CPU).
    run = jax.jit(jax.vmap(lambda k: {n: _run(s, k, 3) for n, s in streams.items()}))
    batched = run(keys)  # scan itself enforces identical Task shapes/dtypes across tasks
    again = run(keys)
    for name, stream in streams.items():
        leaves = jax.tree.leaves(batched[name])
        for a, b in zip(leaves, jax.tree.leaves(again[name])):
            np.testing.assert_array_equal(a, b)  # same key, same numbers
        assert any(not np.array_equal(a[0], a[1]) for a in leaves), name  # keys matter
        ref = _run_eagerly(stream, keys[1], 3)
        for a, b in zip(leaves, jax.tree.leaves(ref)):
            assert a.shape[1:] == b.shape and a.dtype == b.dtype, name
            if name == "regression" and a.ndim == 4:
                # y = offset + sin(1e5 f(x)): the 1e5 amplifies float32 rounding
                # differences between batched and unbatched matmuls, so across
                # programs only the distribution is comparable (documented).
                assert abs(float(a[1].mean()) - float(b.mean())) < 0.2
                continue
            np.testing.assert_allclose(
                np.asarray(a[1]), np.asarray(b), rtol=1e-6, atol=1e-6, err_msg=name
            )


def test_label_streams_do_not_capture_inputs_in_next():
    x = np.zeros((N, 50), np.float32)
    s = T.permuted_classes(x, _labels(), C)
    task = s.init(KEY)
    consts = jax.make_jaxpr(s.next)(KEY, jnp.int32(1), task).consts
    assert all(np.size(c) < x.size for c in consts)


# ----------------------------------------------------------------- regression (E.1)


def test_random_mlp_matches_numpy_forward_pass():
    x = np.random.default_rng(1).normal(size=(16, 2, 3)).astype(np.float32)
    params = T.random_mlp_init(KEY, 6, width=8, depth=2)
    h = x.reshape(16, -1).astype(np.float64)
    for i, (w, b) in enumerate(params):
        h = h @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
        if i < len(params) - 1:
            h = np.maximum(h, 0)
    np.testing.assert_allclose(
        np.asarray(T.random_mlp_apply(params, x)), h[:, 0], rtol=1e-4, atol=1e-5
    )
    w1 = np.asarray(params[0][0])
    assert abs(w1.std() - np.sqrt(2 / 6)) < 0.25 * np.sqrt(2 / 6)  # He init


@pytest.mark.parametrize("offset", [0.0, 8.0, 32.0])
def test_random_network_targets_offset_and_shape(offset):
    x = np.random.default_rng(2).normal(size=(N, 20)).astype(np.float32)
    y = np.asarray(T.random_network_targets(KEY, x, offset=offset, width=16))
    assert y.shape == (N, 1) and y.dtype == np.float32
    assert abs(y.mean() - offset) < 0.15  # sd of the mean: (0.5 / N) ** 0.5 = 0.035
    assert np.all(np.abs(y - offset) <= 1.0 + 1e-5)
    assert 0.35 < y.var() < 0.65  # sin of a "random phase": variance 1/2
    # E.1 formula, recomputed from its parts with the documented key split.
    k_hf, _ = jax.random.split(KEY)
    f = T.random_mlp_apply(T.random_mlp_init(k_hf, 20, 16, 2), x)
    np.testing.assert_allclose(y[:, 0], offset + np.sin(1e5 * np.asarray(f)), atol=1e-5)


def test_scaled_smooth_targets_fig16():
    x = np.random.default_rng(3).normal(size=(N, 20)).astype(np.float32)
    base = np.asarray(T.random_network_targets(KEY, x, width=16))
    for alpha in (1.0, 10.0):
        y = np.asarray(T.random_network_targets(KEY, x, alpha=alpha, width=16))
        smooth = y - base  # alpha * f_smooth, standardised
        assert abs(smooth.mean()) < 1e-3 * alpha and abs(smooth.std() - alpha) < 1e-3 * alpha
        assert abs(y.mean()) < 0.15  # zero-mean targets when c = 0


def test_regression_stream_stationary_and_resampled():
    x = np.random.default_rng(4).normal(size=(N, 5)).astype(np.float32)
    stat = T.regression_stream(x, offset=16.0, width=8)
    t0 = stat.init(KEY)
    t1 = stat.next(jax.random.PRNGKey(1), jnp.int32(1), t0)
    np.testing.assert_array_equal(t0.y, t1.y)
    fine = T.regression_stream(x, offset=16.0, width=8, resample=True, next_offset=0.0)
    f1 = fine.next(jax.random.PRNGKey(1), jnp.int32(1), fine.init(KEY))
    assert abs(float(f1.y.mean())) < 0.2 and f1.y.shape == (N, 1)


def test_drifting_targets():
    y = jnp.arange(6.0).reshape(3, 2)
    for t in (0, 7, 100):
        np.testing.assert_allclose(
            T.drifting_targets(y, t), np.asarray(y) + np.sin(t / 20), rtol=1e-6
        )
    traced = jax.jit(T.drifting_targets)(y, jnp.int32(31))
    np.testing.assert_allclose(traced, np.asarray(y) + np.sin(31 / 20), rtol=1e-6)


# ------------------------------------------------------------------- bandit (B.3)


def test_bandit_transition():
    x, y = _unique_images(N, (2, 2, 1)), _labels()
    tr = T.bandit_transition(KEY, x, y, C, reward_scale=2.5)
    assert tr.obs.shape == x.shape and tr.next_obs.shape == x.shape
    np.testing.assert_array_equal(tr.obs, x)
    a, r = np.asarray(tr.action), np.asarray(tr.reward)
    assert a.min() >= 0 and a.max() < C and np.bincount(a, minlength=C).std() / (N / C) < 0.35
    np.testing.assert_array_equal(r, np.where(a == y, 2.5, 0.0))
    assert 0.04 < (r > 0).mean() < 0.16
    rows = {tuple(v) for v in x.reshape(N, -1)}
    assert all(tuple(v) in rows for v in np.asarray(tr.next_obs).reshape(N, -1))
    vm = jax.vmap(lambda k: T.bandit_transition(k, x, y, C, batch_size=8))(jax.random.split(KEY, 3))
    assert vm.obs.shape == (3, 8, 2, 2, 1) and vm.action.shape == vm.reward.shape == (3, 8)


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "call, word",
    [
        (
            lambda: T.mode_stream(
                "random_labels", np.zeros((4, 2)), np.zeros(4, int), C, "sometimes"
            ),
            "mode",
        ),
        (
            lambda: T.mode_stream(
                "random_labels", np.zeros((4, 2)), np.zeros(4, int), C, "continual", 1.5
            ),
            "fraction",
        ),
        (lambda: T.mode_stream("shuffle", np.zeros((4, 2)), np.zeros(4, int), C), "base_transform"),
        (lambda: T.relabel_fraction(np.zeros((4, 2)), C, -0.1), "eps"),
        (lambda: T.random_labels(np.zeros((4, 2)), 0), "num_classes"),
        (lambda: T.permuted_classes(np.zeros((4, 2)), np.array([0, 1, 2, 10]), C), "num_classes"),
        (lambda: T.permuted_classes(np.zeros((4, 2)), np.zeros(3, int), C), "y"),
        (lambda: T.regression_stream(np.zeros((4, 2)), next_offset=0.0), "next_offset"),
        (
            lambda: T.mode_stream(
                "random_labels", np.zeros((4, 2)), np.zeros(4, int), C, subset_key=KEY
            ),
            "subset_key",
        ),
        (
            lambda: T.bandit_transition(KEY, np.zeros((4, 2)), np.zeros(4, int), C, batch_size=0),
            "batch_size",
        ),
    ],
)
def test_bad_parameters_raise_named_value_errors(call, word):
    with pytest.raises(ValueError, match=word):
        call()
