"""The adapter of ``chapters/99_your_network.py``: a ``flax.linen`` module written outside
the library, wrapped as a ``models.Network`` so that ``diagnostics.plasticity_measure``
(§2.2) can train it. Checked against independent computations: the module's own
``init`` / ``apply``, a fresh network against itself (ratio exactly 1), and the measure's
losses against a direct cross-entropy of the module on the fresh labels (rebuilt from the
documented key scheme) when the fresh-task training cannot move the parameters."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from plasticity_lib import diagnostics, keys, models, tasks, train

K = 3  # classes
SEEDS = [0, 1]
CFG = models.ModelConfig(num_outputs=K)  # placeholder: a linear head, no ReDo


class TinyGelu(nn.Module):
    """A linen MLP that is not one of the library's models."""

    width: int

    @nn.compact
    def __call__(self, x):
        h = nn.gelu(nn.Dense(self.width, name="hidden")(x))
        self.sow("intermediates", "acts", h)
        return nn.Dense(K, name="head")(h)


@dataclasses.dataclass(frozen=True)
class LinenNetwork(models.Network):
    """The page's adapter, verbatim."""

    module: nn.Module  # redeclared: compared and hashed (models.Network ignores it)

    def init(self, key, example_x):
        return self.module.init(key, example_x)["params"]

    def apply(self, params, x):
        return self.module.apply({"params": params}, x)


@pytest.fixture(scope="module")
def x():
    return jax.random.normal(jax.random.PRNGKey(7), (24, 5), jnp.float32)


def _tree_equal(a, b) -> bool:
    return jax.tree.structure(a) == jax.tree.structure(b) and all(
        np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def _fresh_labels(x, seed):
    """The measure's fresh task (random labels), rebuilt from its documented key scheme."""
    k = jax.random.fold_in(keys.for_seeds([seed], keys.PROBE)[0], 0)
    return tasks.random_labels(x, K).init(jax.random.fold_in(k, 0)).y


def _page_init(module, x):
    """The page's initialisation: ``module.init`` with ``fold_in(PRNGKey(s), PARAMS)``."""
    init = jax.vmap(lambda k: module.init(k, x[:2])["params"])
    return init(keys.for_seeds(SEEDS, keys.PARAMS))


def test_adapter_uses_the_modules_own_init_and_apply(x):
    module = TinyGelu(4)
    net = LinenNetwork(CFG, module)
    key = jax.random.PRNGKey(3)
    ref = module.init(key, x[:2])["params"]
    assert _tree_equal(net.init(key, x[:2]), ref)
    np.testing.assert_array_equal(net.apply(ref, x), module.apply({"params": ref}, x))
    # the engine's initialisation of seed s is the page's (same key scheme)
    assert _tree_equal(train.initial_params(net, SEEDS, x[:2]), _page_init(module, x))


def test_adapter_equality_follows_the_module():
    a, b, c = (LinenNetwork(CFG, TinyGelu(w)) for w in (4, 6, 4))
    assert a != b and a == c and hash(a) == hash(c)
    # why the adapter redeclares `module`: the library's facade compares `cfg` only, so
    # two different modules behind one placeholder cfg would share compiled programs
    assert models.Network(CFG, TinyGelu(4)) == models.Network(CFG, TinyGelu(6))


def test_bare_module_is_refused(x):
    module = TinyGelu(4)
    with pytest.raises(ValueError, match="models.Network"):
        diagnostics.plasticity_measure(
            module,
            train.TrainConfig(batch_size=8),
            _page_init(module, x),
            SEEDS,
            steps=1,
            x=x,
            num_classes=K,
        )


def test_fresh_network_against_itself_is_exactly_one(x):
    module = TinyGelu(4)
    net = LinenNetwork(CFG, module)
    m = diagnostics.plasticity_measure(
        net,
        train.TrainConfig(learning_rate=1e-2, batch_size=8),
        _page_init(module, x),
        SEEDS,
        steps=20,
        x=x,
        num_classes=K,
    )
    np.testing.assert_array_equal(m.loss_ratio, np.ones((1, len(SEEDS))))
    np.testing.assert_array_equal(m.accuracy_gap, np.zeros((1, len(SEEDS))))
    assert np.all(np.isfinite(m.fresh_loss))


@pytest.mark.parametrize("width", [4, 6])  # two modules behind one placeholder cfg
def test_losses_match_a_direct_evaluation_of_the_module(x, width):
    """With a vanishing SGD step the fresh-task training leaves the parameters as they
    are, so the measure's final losses are the module's cross-entropy on the fresh
    labels, at the checkpoint and at the fresh initialisation."""
    module = TinyGelu(width)
    net = LinenNetwork(CFG, module)
    fresh = _page_init(module, x)
    checkpoint = jax.tree.map(lambda a: 3.0 * a + 0.1, fresh)  # any other point
    m = diagnostics.plasticity_measure(
        net,
        train.TrainConfig(optimizer="sgd", learning_rate=1e-30, batch_size=8),
        checkpoint,
        SEEDS,
        steps=1,
        x=x,
        num_classes=K,
    )
    for j, seed in enumerate(SEEDS):
        labels = _fresh_labels(x, seed)
        for params, got in ((fresh, m.fresh_loss[j]), (checkpoint, m.checkpoint_loss[0, j])):
            p = jax.tree.map(lambda a: a[j], params)
            logits = module.apply({"params": p}, x)
            want = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            np.testing.assert_allclose(got, float(want), rtol=1e-5)
