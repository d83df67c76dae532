"""The same-direction units of §3.2 / Fig. 2 (middle) on a real network: the descent
direction of the probe loss, ``-grad``, changes unit ``i``'s preactivation on input
``x`` by ``<-g_i, a(x)>`` to first order (checked by a finite difference of the network),
and a hand-built network whose every unit is pushed down is counted as such."""

import jax
import jax.numpy as jnp
import numpy as np

from plasticity_lib.diagnostics import units
from plasticity_lib.models import ModelConfig, make_network


def _xent(network, params, x, y):
    logits = network.apply(params, x)
    return jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))


def test_first_order_change_of_the_preactivations():
    network = make_network(ModelConfig(arch="mlp", depth=2, width=16, num_outputs=4))
    rng = np.random.default_rng(0)
    x = jnp.asarray(np.abs(rng.normal(size=(32, 12))), jnp.float32)
    y = jnp.asarray(rng.integers(0, 4, 32))
    params = network.init(jax.random.PRNGKey(0), x[:2])
    g = jax.grad(lambda p: _xent(network, p, x, y))(params)
    _, inter = network.apply_with_intermediates(params, x)
    # a step along -g: the first layer's preactivations are affine in its weights, so the
    # difference quotient is the first-order change itself (up to float rounding)
    eps = 0.5
    stepped = jax.tree_util.tree_map(lambda p, d: p - eps * d, params, g)
    _, inter_eps = network.apply_with_intermediates(stepped, x)
    change = np.asarray(inter_eps.preacts[0] - inter.preacts[0]) / eps
    dz = units.preactivation_update(-g["Dense_0"]["kernel"], x, -g["Dense_0"]["bias"])
    np.testing.assert_allclose(change, dz, rtol=1e-3, atol=1e-4 * np.abs(change).max())
    # the fractions count the units whose change has one sign on every input
    lower, raise_ = units.same_direction_fraction(-g["Dense_0"]["kernel"], x, -g["Dense_0"]["bias"])
    np.testing.assert_allclose(lower, np.mean(np.all(change < 0, axis=0)))
    np.testing.assert_allclose(raise_, np.mean(np.all(change > 0, axis=0)))
    assert 0 < float(lower + raise_) <= 1


def test_uniform_backprop_signal_lowers_every_preactivation():
    """Non-negative inputs, every unit live and feeding only the wrong class: the descent
    direction lowers each first-layer unit on every input (and raises none)."""
    network = make_network(ModelConfig(arch="mlp", depth=1, width=8, num_outputs=2))
    x = jnp.asarray(np.abs(np.random.default_rng(0).normal(size=(20, 6))) + 0.1, jnp.float32)
    params = jax.tree_util.tree_map(jnp.abs, network.init(jax.random.PRNGKey(0), x[:2]))
    params["Dense_0"]["bias"] = jnp.full_like(params["Dense_0"]["bias"], 0.5)
    params["Head"]["kernel"] = params["Head"]["kernel"].at[:, 1].set(0.0)  # class 1: no input
    y = jnp.ones(20, jnp.int32)  # ... and class 1 is the label everywhere
    g = jax.grad(lambda p: _xent(network, p, x, y))(params)
    _, inter = network.apply_with_intermediates(params, x)
    assert float(units.dead_unit_fraction(inter.acts)[1]) == 0.0
    lower, raise_ = units.same_direction_fraction(-g["Dense_0"]["kernel"], x)
    assert float(lower) == 1.0 and float(raise_) == 0.0
