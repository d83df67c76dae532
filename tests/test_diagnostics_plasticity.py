"""The §2.2 plasticity measure (diagnostics.plasticity) on hand-built networks.

* A ReLU MLP whose hidden biases are -100 has every unit dead on every input: its output
  is the head's bias, a constant. The best a constant predictor can do on a labelling
  with empirical class frequencies ``p`` is the entropy ``H(p)`` (cross-entropy) and
  ``max(p)`` (accuracy), so the dead checkpoint's final loss is at least ``H(p)`` and
  its accuracy at most ``max(p)``, computed here from the labels by hand; a fresh
  network fits the same random labels, so the loss ratio is far above 1.
* A checkpoint that is the fresh initialisation itself trains exactly like the fresh
  network (same parameters, task and minibatches): ratio exactly 1, gap exactly 0.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib import keys, tasks, train
from plasticity_lib.diagnostics import plasticity_measure
from plasticity_lib.models import ModelConfig, make_network

N, D, K = 128, 16, 10
SEEDS = [3, 7]


@pytest.fixture(scope="module")
def setup():
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (N, D)), np.float32)
    net = make_network(ModelConfig(arch="mlp", width=64, depth=2, num_outputs=K))
    cfg = train.TrainConfig(learning_rate=1e-2, batch_size=N)
    fresh = train.initial_params(net, SEEDS, x)
    dead = jax.tree_util.tree_map(lambda a: a, fresh)
    dead = {k: dict(v) for k, v in dead.items()}
    for name in dead:
        if name.startswith("Dense_"):
            dead[name]["bias"] = jnp.full_like(dead[name]["bias"], -100.0)
    both = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), fresh, dead)  # (C=2, S, ...)
    m = plasticity_measure(net, cfg, both, SEEDS, steps=300, x=x, num_classes=K)
    return x, net, cfg, m


def _fresh_labels(x, seed):
    """The measure's fresh task, rebuilt from the documented key scheme."""
    k = jax.random.fold_in(keys.for_seeds([seed], keys.PROBE)[0], 0)
    return np.asarray(tasks.random_labels(x, K).init(jax.random.fold_in(k, 0)).y)


def test_shapes_and_fresh_network_against_itself(setup):
    _, _, _, m = setup
    assert m.checkpoint_loss.shape == (2, 2) and m.fresh_loss.shape == (2,)
    assert m.seeds.tolist() == SEEDS and m.steps == 300
    np.testing.assert_array_equal(m.loss_ratio[0], np.ones(2))  # exactly 1
    np.testing.assert_array_equal(m.accuracy_gap[0], np.zeros(2))
    assert np.all(m.fresh_accuracy > 0.9)  # the fresh network memorises 128 labels


def test_dead_network_cannot_fit(setup):
    x, _, _, m = setup
    for j, seed in enumerate(SEEDS):
        y = _fresh_labels(x, seed)
        p = np.bincount(y, minlength=K) / N
        entropy = float(-(p[p > 0] * np.log(p[p > 0])).sum())
        assert m.checkpoint_loss[1, j] >= entropy - 1e-4  # a constant predictor's best
        assert m.checkpoint_accuracy[1, j] <= p.max() + 1e-6
    assert np.all(m.loss_ratio[1] > 10.0)
    assert np.all(m.accuracy_gap[1] > 0.6)
    df = m.frame(["fresh", "dead"])
    assert len(df) == 4 and set(df["checkpoint"]) == {"fresh", "dead"}


def test_one_checkpoint_and_explicit_stream(setup):
    x, net, cfg, m = setup
    fresh = train.initial_params(net, SEEDS, x)
    one = plasticity_measure(
        net, cfg, fresh, SEEDS, steps=300, stream=tasks.random_labels(x, K)
    )  # (S, ...) params: C = 1; the same task and minibatches as above
    assert one.checkpoint_loss.shape == (1, 2)
    np.testing.assert_allclose(one.fresh_loss, m.fresh_loss, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(one.loss_ratio, np.ones((1, 2)))


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"steps": 0}, "steps"),
        ({"steps": 5, "x": None}, "either stream"),
        ({"steps": 5, "num_classes": None}, "num_classes"),
        ({"steps": 5, "seeds": [1, 2, 3]}, "seeds"),
    ],
)
def test_bad_arguments(setup, kwargs, word):
    x, net, cfg, _ = setup
    args = dict(x=x, num_classes=K, seeds=SEEDS)
    args.update(kwargs)
    fresh = train.initial_params(net, SEEDS, x)
    with pytest.raises(ValueError, match=word):
        plasticity_measure(net, cfg, fresh, **args)


def test_per_seed_inputs_stream(setup):
    """A stream whose inputs depend on the key (permuted pixels): the inputs are drawn
    per seed; a fresh network against itself is still exactly 1."""
    x, net, cfg, _ = setup
    y = np.arange(N) % K
    fresh = train.initial_params(net, SEEDS, x)
    m = plasticity_measure(net, cfg, fresh, SEEDS, steps=50, stream=tasks.permuted_pixels(x, y))
    np.testing.assert_array_equal(m.loss_ratio, np.ones((1, 2)))
    assert np.all(np.isfinite(m.fresh_loss)) and m.fresh_loss[0] != m.fresh_loss[1]
