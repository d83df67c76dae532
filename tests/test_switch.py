"""The task-switch protocol of §3.2 (``plasticity_lib.switch``): schedule, step axis,
windows, joined logs and window statistics, against hand-written values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib import keys, profiles, switch, tasks, train
from plasticity_lib.models import ModelConfig, make_network

TINY = switch.SwitchProtocol(
    pretrain_steps=12, task_steps=50, erase_fraction=0.1, edge_steps=5, mid_log_every=4
)
# By hand: 5 per-step logs of task A (-4..0), the erasing window 1..5, every 4th step
# from 9 to 45, the last 5 steps 46..50.
TINY_STEPS = np.r_[np.arange(-4, 1), 1, 2, 3, 4, 5, 5 + 4 * np.arange(1, 11), 46, 47, 48, 49, 50]


def test_schedule_and_step_axis():
    assert TINY.erase_steps == 5 and TINY.mid_steps == 40
    assert TINY.task_a_phases == (switch.Phase(7, 7, False), switch.Phase(5, 1, True))
    # erase_steps (5) is a multiple of edge_steps (5): one chunk of 5, then 40 by 4, then 5
    assert TINY.task_b_phases == ((5, 1, True), (40, 4, True), (5, 1, True))
    np.testing.assert_array_equal(TINY.steps, TINY_STEPS)
    # the phases cover every step, and log as many times as the step axis has entries
    assert sum(p.num_steps for p in TINY.task_a_phases) == TINY.pretrain_steps
    assert sum(p.num_steps for p in TINY.task_b_phases) == TINY.task_steps
    logs_b = sum(p.num_steps // p.log_every for p in TINY.task_b_phases)
    assert TINY.edge_steps + logs_b == len(TINY.steps)
    # the default profile: 150-step erasing window in 3 chunks of 50, 1300 steps by 20
    default = switch.SwitchProtocol(pretrain_steps=1500, task_steps=1500, mid_log_every=20)
    assert default.task_b_phases == ((50, 1, True),) * 3 + ((1300, 20, True), (50, 1, True))
    # an erasing window that is not a multiple of edge_steps is one chunk
    odd = switch.SwitchProtocol(pretrain_steps=60, task_steps=120, mid_log_every=2)
    assert odd.erase_steps == 12
    assert odd.task_b_phases == ((12, 1, True), (58, 2, True), (50, 1, True))
    # no middle stretch: the erasing window and the last edge_steps steps only
    short = switch.SwitchProtocol(pretrain_steps=60, task_steps=100, erase_fraction=0.5)
    assert short.validate().mid_steps == 0
    assert short.task_b_phases == ((50, 1, True), (50, 1, True))
    np.testing.assert_array_equal(short.steps, np.arange(-49, 101))


def test_windows():
    w = TINY.windows()
    s = TINY_STEPS
    np.testing.assert_array_equal(w["pre"], s <= 0)
    assert w["pre"].sum() == 5 and w["post"].sum() == len(s) - 5
    np.testing.assert_array_equal(s[w["erase"]], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(s[w["end"]], [46, 47, 48, 49, 50])
    # steps 1..50: here every log of task B
    np.testing.assert_array_equal(w["first50"], w["post"])
    w2 = TINY.windows(np.array([0, 1, 50, 51]))
    np.testing.assert_array_equal(w2["first50"], [False, True, True, False])


def test_validation_names_the_field():
    with pytest.raises(ValueError, match="mid_log_every"):
        switch.SwitchProtocol(
            pretrain_steps=12, task_steps=30, edge_steps=5, mid_log_every=5
        ).validate()
    with pytest.raises(ValueError, match="pretrain_steps"):
        switch.SwitchProtocol(pretrain_steps=5, task_steps=30, edge_steps=5).validate()
    with pytest.raises(ValueError, match="task_steps"):
        switch.SwitchProtocol(pretrain_steps=60, task_steps=40, edge_steps=50).validate()
    with pytest.raises(ValueError, match="erase_fraction"):
        switch.SwitchProtocol(pretrain_steps=60, task_steps=60, erase_fraction=1.0).validate()
    for name in profiles.PROFILE_NAMES:  # every profile of chapter 3 gives a valid schedule
        p = profiles.resolve("ch03_relu_death", name)
        switch.SwitchProtocol(
            pretrain_steps=p.pretrain_steps, task_steps=p.task_steps,
            mid_log_every=p.mid_log_every, probe_size=p.probe_size,
        ).validate()  # fmt: skip


def test_from_logs_joins_tasks_and_variants():
    s, w_b = 3, len(TINY_STEPS) - TINY.edge_steps
    rng = np.random.default_rng(0)
    pre = {"loss": rng.random((s, 5)), "entropy": rng.random((s, 5)), "q": rng.random((s, 5, 2))}
    post = {"loss": rng.random((2 * s, w_b)), "entropy": rng.random((2 * s, w_b)),
            "q": rng.random((2 * s, w_b, 2)), "only_b": rng.random((2 * s, w_b))}  # fmt: skip
    run = switch.SwitchRun.from_logs(
        "x", TINY, switch.VARIANTS, [7, 8, 9], pre, post, np.ones(s), np.arange(2 * s)
    )
    assert set(run.logs) == {"train_loss", "entropy", "q"}  # only names logged in both tasks
    assert run.logs["entropy"].shape == (2, s, len(TINY_STEPS))
    assert run.logs["q"].shape == (2, s, len(TINY_STEPS), 2)
    for v in range(2):  # task A's logs are shared; task B's are variant-major blocks of seeds
        np.testing.assert_array_equal(run.logs["entropy"][v, :, :5], pre["entropy"])
        np.testing.assert_array_equal(
            run.logs["entropy"][v, :, 5:], post["entropy"][v * s : (v + 1) * s]
        )
    np.testing.assert_array_equal(run.acc_b, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(run.variant("reset")["q"], run.logs["q"][1])
    with pytest.raises(ValueError, match="protocol.steps"):
        short = {k: a[:, :-1] for k, a in post.items()}
        switch.SwitchRun.from_logs("x", TINY, switch.VARIANTS, [7, 8, 9], pre, short, 0, 0)


def _curve_run(curves: dict, variants=("keep",)):
    """A SwitchRun of one seed whose curves are given over TINY_STEPS (same in every variant)."""
    logs = {
        k: np.broadcast_to(np.asarray(v, float), (len(variants), 1) + np.shape(v)).copy()
        for k, v in curves.items()
    }
    return switch.SwitchRun(
        "fake", TINY, variants, np.array([0]), logs, np.ones(1), np.ones((len(variants), 1))
    )


def test_window_statistics_on_constructed_curves():
    s = TINY_STEPS
    ent = np.where(s <= 0, 0.1, np.where(s == 3, 2.0, 1.0))  # peak 2.0 at step 3
    feat = np.where(s <= 0, 10.0, np.where(s == 2, 5.0, np.where(s == 4, 2.0, 8.0)))
    w = TINY.windows()
    np.testing.assert_allclose(switch.window_mean(ent[None], w["pre"]), [0.1])
    np.testing.assert_allclose(switch.window_max(ent[None], w["post"]), [2.0])
    np.testing.assert_allclose(switch.window_mean(ent[None], w["end"]), [1.0])
    np.testing.assert_array_equal(switch.peak_step(ent[None], s), [3.0])
    # a tie: the first maximum; logs before the switch never count
    tie = np.where(s == 2, 5.0, np.where(s == 40, 5.0, np.where(s <= 0, 9.0, 0.0)))
    np.testing.assert_array_equal(switch.peak_step(tie[None], s), [2.0])
    # the fall over steps 1..3 is 1 - 5/10 (the 2.0 at step 4 lies outside the phase)
    np.testing.assert_allclose(switch.largest_relative_fall(feat[None], s, [3.0]), [0.5])
    np.testing.assert_allclose(switch.largest_relative_fall(feat[None], s, [4.0]), [0.8])
    two = np.stack([feat, 2 * feat])  # two seeds, each relative to its own pre-switch value
    np.testing.assert_allclose(switch.largest_relative_fall(two, s, [3.0, 4.0]), [0.5, 0.8])


def test_frame_is_long_and_relative():
    s = TINY_STEPS
    feat = np.where(s <= 0, 10.0, 5.0)
    run = _curve_run({"feature_norm": feat, "layers": np.stack([feat, -feat], -1)}, switch.VARIANTS)
    df = run.frame("feature_norm", relative=True, min_step=1, max_step=5, net="a")
    assert len(df) == 2 * 5 and set(df.variant) == set(switch.VARIANTS) and set(df.net) == {"a"}
    np.testing.assert_allclose(df.value, 0.5)
    np.testing.assert_array_equal(sorted(set(df.step)), [1, 2, 3, 4, 5])
    df = run.frame("layers", layer=1, variants=("reset",))
    assert len(df) == len(s) and set(df.variant) == {"reset"}
    np.testing.assert_allclose(df.value[df.step <= 0], -10.0)
    with pytest.raises(ValueError, match="layer="):
        run.frame("layers")


def test_protocol_runs_in_the_engine():
    """A tiny switch through train.train_steps: the phases' logs fill the step axis, task
    A's logs are shared by the variants and the reset changes the first step after the
    switch (same parameters, labels and minibatches)."""
    x = jnp.asarray(np.abs(np.random.default_rng(0).normal(size=(48, 12))), jnp.float32)
    network = make_network(ModelConfig(arch="mlp", depth=1, width=8, num_outputs=3))
    cfg = train.TrainConfig(learning_rate=1e-2, batch_size=8)
    stream = tasks.random_labels(x, 3)
    roots = keys.task_root([0, 1])
    axes = tasks.Task(None, 0, None)
    task_a = jax.vmap(stream.init, out_axes=axes)(keys.task_keys(roots, 0))
    task_b = jax.vmap(lambda k, a: stream.next(k, 1, a), in_axes=(0, axes), out_axes=axes)(
        keys.task_keys(roots, 1), task_a
    )

    def metrics_fn(params, task, key):
        logits = network.apply(params, task.x[:16])
        return {"mean_logit": jnp.mean(logits)}

    def run(state, task, phases):
        logs = []
        for n, every, with_metrics in phases:
            state, lg = train.train_steps(
                network, cfg, state, task, n, log_every=every, task_batched=axes,
                metrics_fn=metrics_fn if with_metrics else None,
            )  # fmt: skip
            logs.append(jax.device_get(lg))
        return state, logs

    state = train.init_state(network, cfg, [0, 1], x[:2])
    state, (_, pre) = run(state, task_a, TINY.task_a_phases)
    both = [state, train.reset_optimizer(network, cfg, state)]
    state = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *both)
    task_b = task_b._replace(y=jnp.concatenate([task_b.y] * 2))
    state, parts = run(state, task_b, TINY.task_b_phases)
    post = {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
    r = switch.SwitchRun.from_logs("tiny", TINY, switch.VARIANTS, [0, 1], pre, post, 0, [0] * 4)
    m = r.logs["mean_logit"]
    assert m.shape == (2, 2, len(TINY_STEPS)) and np.all(np.isfinite(m))
    pre_mask = r.windows["pre"]
    np.testing.assert_array_equal(m[0][:, pre_mask], m[1][:, pre_mask])
    assert not np.allclose(m[0][:, ~pre_mask], m[1][:, ~pre_mask])
    assert not np.allclose(m[0, 0], m[0, 1])  # seeds differ


def test_peak_centred_mean_and_last_logs_by_hand():
    """The equal windows of the dead-unit recovery test, against hand-picked indices."""
    steps = TINY_STEPS  # logs: 5 of task A (indices 0-4), task B from index 5 on
    w = len(steps)
    erase = TINY.windows(steps)["erase"]  # steps 1..5 = indices 5..9
    a = np.zeros((3, w))
    a[0, 7] = 10.0  # peak at index 7 (step 3): window of 4 from index 5 (shifted into B)
    a[1, 9] = 8.0  # peak at the last erasing log, index 9: window indices 7..10
    a[1, 10] = 4.0
    a[2, 2] = 99.0  # a pre-switch maximum is ignored (outside task B)
    a[2, 6] = 2.0  # peak at index 6: window shifted to start at 5
    a[:, -4:] = [[1, 2, 3, 4]] * 3
    got = switch.peak_centred_mean(a, steps, erase, width=4)
    np.testing.assert_allclose(got, [a[0, 5:9].mean(), a[1, 7:11].mean(), a[2, 5:9].mean()])
    np.testing.assert_allclose(switch.last_logs_mean(a, width=4), [2.5, 2.5, 2.5])
    # near the end the window is shifted left, never shrunk
    end_peak = np.zeros((1, w))
    end_peak[0, -1] = 6.0
    everywhere = steps >= 1
    assert switch.peak_centred_mean(end_peak, steps, everywhere, width=4)[0] == 6.0 / 4
    with pytest.raises(ValueError):
        switch.peak_centred_mean(a, steps, erase, width=w)
    with pytest.raises(ValueError):
        switch.last_logs_mean(a, width=0)
