"""Chapter 6 experiment module: many streams in one program, equal to the engine; claim statistics."""

import jax
import numpy as np
import pytest

from plasticity_lib import claims, train
from plasticity_lib.experiments import ch06_swiss_cheese as ex
from plasticity_lib.models import ModelConfig, make_network

N, D, C = 48, 12, 4
SPECS = [ex.StreamSpec("random_labels"), ex.StreamSpec("permuted_pixels", "growing")]


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype(np.float32)
    y = rng.integers(0, C, size=N).astype(np.int32)
    net = make_network(ModelConfig(arch="mlp", width=16, depth=1, norm="layer", num_outputs=C))
    cfg = train.TrainConfig(learning_rate=3e-3, batch_size=8, l2=1e-3)
    bank = ex.StreamBank(x, y, C)
    members = [ex.Member(sp.label, sp) for sp in SPECS]
    g = ex.run_group(net, cfg, members, bank, [0, 1], num_tasks=3, steps_per_task=20, log_every=10, progress=False)
    return x, y, net, cfg, bank, g


def test_stream_spec_validates():
    with pytest.raises(ValueError, match="family"):
        ex.StreamSpec("shuffled", "continual 1.0")
    with pytest.raises(ValueError, match="mode"):
        ex.StreamSpec("random_labels", "continual 0.3")
    assert ex.StreamSpec().label == "random labels / continual 1.0"


def test_run_group_matches_train_stream(setup):
    """A member trained in a group equals train.train_stream on the same stream and seeds
    (same keys: initial parameters, tasks, minibatches; growing mode: masked evaluation)."""
    x, y, net, cfg, bank, g = setup
    assert g.task_end["accuracy"].shape == (2, 2, 3)
    assert g.logs["loss"].shape == (2, 2, 3, 2)
    np.testing.assert_array_equal(g.window_steps, [10, 20])
    assert not g.diverged.any() and g.cpu_s > 0
    sp = SPECS[1]
    ref = train.train_stream(net, cfg, ex.make_stream(sp, x, y, C), [0, 1], num_tasks=3, steps_per_task=20,
                             log_every=10, progress=False)
    got = g.task_end
    np.testing.assert_allclose(got["accuracy"][1], ref.task_end["accuracy"], atol=1e-6)
    np.testing.assert_allclose(got["loss"][1], ref.task_end["loss"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["param_norm"][1], ref.task_end["param_norm"], rtol=1e-5)
    np.testing.assert_allclose(g.logs["loss"][1], ref.logs["loss"], rtol=1e-4, atol=1e-5)
    # the two members share seeds, hence initial parameters, but not tasks
    assert not np.allclose(g.logs["loss"][0], g.logs["loss"][1])


def test_member_hparams_are_vmapped(setup):
    """Members that differ in a float hyperparameter train together; the override acts."""
    x, y, net, cfg, bank, g = setup
    sp = SPECS[0]
    members = [ex.Member("a", sp), ex.Member("b", sp, (("l2", 1e-1),))]
    g2 = ex.run_group(net, cfg, members, bank, [0, 1], num_tasks=3, steps_per_task=20, log_every=10, progress=False)
    np.testing.assert_allclose(g2.get("a", "param_norm"), g.task_end["param_norm"][0], rtol=1e-6)
    assert np.all(g2.get("b", "param_norm")[:, -1] < g2.get("a", "param_norm")[:, -1])
    with pytest.raises(ValueError, match="switches"):
        ex.run_group(net, cfg, [ex.Member("c", sp, (("l2", 0.0),))], bank, [0], num_tasks=1, steps_per_task=10,
                     log_every=10, progress=False)
    with pytest.raises(ValueError, match="unique"):
        ex.run_group(net, cfg, [members[0], members[0]], bank, [0], num_tasks=1, steps_per_task=10, log_every=10,
                     progress=False)
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        ex.run_group(net, cfg, [ex.Member("d", sp, (("lr", 1.0),))], bank, [0], num_tasks=1, steps_per_task=10,
                     log_every=10, progress=False)


def test_per_model_evaluation_matches_engine_on_masked_examples(setup):
    """run_group's task-end evaluation (``train.evaluate`` with ``task_batched=True``) on a
    growing-mode task (some examples masked out) equals evaluating the model alone."""
    x, y, net, cfg, bank, g = setup
    params = net.init(jax.random.PRNGKey(0), x[:2])
    task = bank.stream(SPECS[1]).init(jax.random.PRNGKey(1))  # growing: one class admitted
    assert 0 < float(task.mask.sum()) < N
    add = lambda a: np.asarray(a)[None]  # noqa: E731
    t1 = jax.tree_util.tree_map(add, task)
    got = train.evaluate(net, jax.tree_util.tree_map(add, params), t1.x, t1.y, mask=t1.mask, task_batched=True)
    ref = train.evaluate(net, params, task.x, task.y, mask=task.mask)
    np.testing.assert_allclose(got["accuracy"][0], ref["accuracy"], atol=1e-6)
    np.testing.assert_allclose(got["loss"][0], ref["loss"], rtol=1e-5)


def test_intervention_table_builds_configs():
    class P:
        l2, feature_norm_coef, redo_every, redo_tau = 1e-4, 1e-3, 50, 0.1
        grad_norm_coef, infer_coef, infer_scale = 1e-3, 0.1, 10.0

    table = ex.intervention_table(P)
    for panel in ex.PANELS.values():
        assert set(panel) <= set(table)
    assert table["weight-norm constraint"].train_config(1e-3, 32).weight_norm_constraint
    assert table["ReDo"].train_config(1e-3, 32).redo_every == 50
    assert table["LN+InFeR"].train_config(1e-3, 32).infer_coef == 0.1
    assert table["LN+L2"].model_config("mlp", 8, 2, 10).norm == "layer"
    assert table["BN"].model_config("resnet18", 8, 2, 10).depth is None


def test_claim_statistics():
    acc = np.array([[1.0, 1.0, 1.0, 0.9, 0.8, 0.7], [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]])
    first, last = ex.first_last(acc)
    np.testing.assert_allclose(first, [1.0, 0.9])
    np.testing.assert_allclose(last, [0.8, 0.6])
    np.testing.assert_allclose(ex.slopes(acc), np.polyfit(np.arange(6), acc.T, 1)[0])
    np.testing.assert_allclose(ex.slopes(np.ones((3, 5))), 0.0)
    a = claims.Estimate(5.0, 4.0, 6.0)
    b = claims.Estimate(2.0, 1.0, 3.0)
    assert ex.interval_gap(a, b) == pytest.approx(1.0)
    assert ex.interval_gap(b, a) == pytest.approx(-5.0)
    with pytest.raises(ValueError):
        ex.first_last(np.ones((2, 2)))


def test_tidy_frames(setup):
    g = setup[-1]
    df = ex.tidy_end_of_task({"LN+L2": g})
    assert len(df) == 2 * 2 * 3 and set(df["task"]) == {1, 2, 3} and df["accuracy"].max() <= 100
    assert set(df["family"]) == {"random labels", "permuted pixels"}
    cv = ex.tidy_curves(g, SPECS[0].label, [0, 2])
    assert len(cv) == 2 * 2 * 2 and set(cv["step"]) == {10, 20} and set(cv["task"]) == {1, 3}
