"""Tests of the residual MLP (``arch="resmlp"``) and the off-centre activation
(``ModelConfig.activation_shift``) of ``plasticity_lib.models`` (chapter 9, App. E.8 / D.3).

Every expected value is computed independently here, with numpy, from the parameter
tree: the pre-activation blocks ``h + W2 phi(norm(W1 phi(norm(h))))``, the identity of a
block whose second dense layer is zero, and ``phi(z + c)`` by hand.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib.diagnostics import plasticity, units
from plasticity_lib.models import ModelConfig, make_network
from plasticity_lib.train import TrainConfig

KEY = jax.random.PRNGKey(0)


def _x(shape, seed=1):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _np_act(name, z):
    return {
        "relu": lambda v: np.maximum(v, 0.0),
        "leaky_relu": lambda v: np.where(v >= 0, v, 0.01 * v),
        "abs": np.abs,
        "gelu": lambda v: 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v**3))),
    }[name](z)


def _np_layer_norm(z, p, eps=1e-5):
    mu = z.mean(-1, keepdims=True)
    var = ((z - mu) ** 2).mean(-1, keepdims=True)
    y = (z - mu) / np.sqrt(var + eps)
    return y * np.asarray(p["scale"]) + np.asarray(p["bias"])


def _np_dense(h, p):
    return h @ np.asarray(p["kernel"], np.float64) + np.asarray(p["bias"], np.float64)


def _np_resmlp(params, x, depth, act, norm, shift=0.0):
    """The residual MLP by hand: (outputs, [preacts], [acts])."""
    pre, acts = [], []

    def nl(z):
        z = z + shift
        pre.append(z)
        a = _np_act(act, z)
        acts.append(a)
        return a

    def nrm(z, name):
        return _np_layer_norm(z, params[name]) if norm == "layer" else z

    h = _np_dense(np.asarray(x, np.float64).reshape(len(x), -1), params["Dense_in"])
    for b in range(depth):
        y = nl(nrm(h, f"block{b}_norm1"))
        y = nl(nrm(_np_dense(y, params[f"block{b}_dense1"]), f"block{b}_norm2"))
        h = h + _np_dense(y, params[f"block{b}_dense2"])
    f = nl(nrm(h, "final_norm"))
    return _np_dense(f, params["Head"]), pre, acts


@pytest.mark.parametrize("act,norm", [("relu", "layer"), ("abs", "none"), ("gelu", "layer")])
def test_resmlp_matches_hand_computation(act, norm):
    depth, width = 3, 8
    net = make_network(
        ModelConfig(arch="resmlp", depth=depth, width=width, activation=act, norm=norm)
    )
    x = _x((5, 2, 3))  # trailing shape is flattened
    params = net.init(KEY, x)
    # perturb the norm parameters so that the affine step is exercised
    if norm == "layer":
        params = jax.tree_util.tree_map_with_path(
            lambda path, v: v + 0.1 * (len(str(path)) % 3) if "norm" in str(path) else v, params
        )
    out, inter = net.apply_with_intermediates(params, x)
    ref, pre, acts = _np_resmlp(params, x, depth, act, norm)
    np.testing.assert_allclose(out, ref, rtol=2e-4, atol=2e-5)
    assert len(inter.preacts) == len(inter.acts) == 2 * depth + 1 == len(net.layer_names)
    for got, want in zip(inter.preacts, pre):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    for got, want in zip(inter.acts, acts):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(inter.features, acts[-1], rtol=2e-4, atol=2e-5)


def test_resmlp_parameter_layout_and_names():
    net = make_network(ModelConfig(arch="resmlp", depth=2, width=6, num_outputs=4, norm="layer"))
    x = _x((3, 10))
    params = net.init(KEY, x)
    assert params["Dense_in"]["kernel"].shape == (10, 6)
    for b in range(2):
        for k in (1, 2):
            assert params[f"block{b}_dense{k}"]["kernel"].shape == (6, 6)
            assert set(params[f"block{b}_norm{k}"]) == {"scale", "bias"}
    assert params["Head"]["kernel"].shape == (6, 4)
    assert net.layer_names == ("block0_act1", "block0_act2", "block1_act1", "block1_act2", "final")
    assert net.dense_names == (
        "Dense_in",
        "block0_dense1",
        "block0_dense2",
        "block1_dense1",
        "block1_dense2",
        "Head",
    )
    _, inter = net.apply_with_intermediates(params, x)
    assert [d.shape for d in inter.dense_inputs] == [(3, 10)] + [(3, 6)] * 5
    np.testing.assert_allclose(inter.dense_inputs[-1], inter.features)
    # no norm parameters without normalisation
    plain = make_network(ModelConfig(arch="resmlp", depth=2, width=6)).init(KEY, x)
    assert not any("norm" in k for k in plain)
    # defaults: 8 blocks of width 128
    cfg = ModelConfig(arch="resmlp")
    assert (cfg.resolved_depth, cfg.resolved_width) == (8, 128)


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_zero_block_is_identity(norm):
    """With every block's second dense layer zero, the residual stream is the input
    projection throughout: outputs = Head(phi(final_norm(Dense_in(x))))."""
    depth = 4
    net = make_network(ModelConfig(arch="resmlp", depth=depth, width=8, norm=norm))
    x = _x((6, 5))
    params = net.init(KEY, x)
    for b in range(depth):
        params[f"block{b}_dense2"] = jax.tree_util.tree_map(
            jnp.zeros_like, params[f"block{b}_dense2"]
        )
    out, inter = net.apply_with_intermediates(params, x)
    h0 = _np_dense(np.asarray(x, np.float64), params["Dense_in"])
    f = np.maximum(_np_layer_norm(h0, params["final_norm"]) if norm == "layer" else h0, 0.0)
    np.testing.assert_allclose(out, _np_dense(f, params["Head"]), rtol=2e-4, atol=2e-5)
    # the input of every block's first nonlinearity is the same stream (before its norm)
    for b in range(depth):
        want = _np_layer_norm(h0, params[f"block{b}_norm1"]) if norm == "layer" else h0
        np.testing.assert_allclose(inter.preacts[2 * b], want, rtol=2e-4, atol=2e-5)
    # and a non-zero block is not the identity (the test above could fail)
    full = net.init(KEY, x)
    assert not np.allclose(net.apply(full, x), net.apply(params, x), atol=1e-3)


@pytest.mark.parametrize("c", [-1.0, 1.0])
def test_activation_shift_by_hand(c):
    x = _x((9, 7))
    cfg0 = ModelConfig(depth=2, width=5, num_outputs=3)
    cfg = ModelConfig(depth=2, width=5, num_outputs=3, activation_shift=c)
    net, net0 = make_network(cfg), make_network(cfg0)
    params = net0.init(KEY, x)
    assert jax.tree_util.tree_structure(net.init(KEY, x)) == jax.tree_util.tree_structure(params)
    out, inter = net.apply_with_intermediates(params, x)
    # by hand: relu(xW + b + c), layer by layer
    h = np.asarray(x, np.float64)
    for i in range(2):
        z = _np_dense(h, params[f"Dense_{i}"])
        np.testing.assert_allclose(inter.preacts[i], z + c, rtol=1e-5, atol=1e-5)
        h = np.maximum(z + c, 0.0)
        np.testing.assert_allclose(inter.acts[i], h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out, _np_dense(h, params["Head"]), rtol=1e-4, atol=1e-5)
    # the units diagnostics read the shifted argument: slope of relu at z + c
    slope = units.activation_slope(inter.preacts[0], "relu")
    z0 = _np_dense(np.asarray(x, np.float64), params["Dense_0"])
    np.testing.assert_array_equal(np.asarray(slope), (z0 + c > 0).astype(np.float32))
    # the shift changes the function (the check could fail)
    assert not np.allclose(net0.apply(params, x), out, atol=1e-4)


def test_zero_shift_is_the_default_network():
    x = _x((4, 6))
    a = make_network(ModelConfig(depth=2, width=5))
    b = make_network(ModelConfig(depth=2, width=5, activation_shift=0.0))
    assert ModelConfig() == ModelConfig(activation_shift=0.0)
    p = a.init(KEY, x)
    np.testing.assert_array_equal(a.apply(p, x), b.apply(p, x))


def test_shift_with_layer_norm_and_resmlp():
    """phi(LN(z) + c) in a residual MLP equals the unshifted network whose norm offsets
    are all increased by c (the affine LN bias absorbs the shift)."""
    x = _x((5, 6))
    c = 1.0
    shifted = make_network(
        ModelConfig(arch="resmlp", depth=2, width=8, norm="layer", activation_shift=c)
    )
    plain = make_network(ModelConfig(arch="resmlp", depth=2, width=8, norm="layer"))
    p = plain.init(KEY, x)
    q = {k: ({**v, "bias": v["bias"] + c} if "norm" in k else v) for k, v in p.items()}
    np.testing.assert_allclose(shifted.apply(p, x), plain.apply(q, x), rtol=1e-5, atol=1e-5)


def test_shift_must_be_finite_and_resmlp_has_no_redo():
    with pytest.raises(ValueError, match="activation_shift"):
        ModelConfig(activation_shift=float("nan"))
    net = make_network(ModelConfig(arch="resmlp", depth=1, width=4))
    with pytest.raises(ValueError, match="resmlp"):
        net.unit_layers(net.init(KEY, _x((2, 3))))


def test_resmlp_diagnostics_and_plasticity_measure_run():
    """The unit readouts and the §2.2 measure accept the residual MLP."""
    net = make_network(ModelConfig(arch="resmlp", depth=2, width=8, activation="leaky_relu"))
    x = _x((32, 6))
    params = net.init(KEY, x)
    _, inter = net.apply_with_intermediates(params, x)
    per_layer, total = units.linearized_r2_fraction(inter.preacts, "leaky_relu")
    assert per_layer.shape == (5,) and 0.0 <= float(total) <= 1.0
    _, dead = units.dead_unit_fraction(inter.acts[-1])
    assert float(dead) == 0.0  # leaky ReLU is never exactly zero on these inputs
    seeds = [0, 1]
    cfg = TrainConfig(learning_rate=1e-3, batch_size=8)
    stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a, a]), params)
    pm = plasticity.plasticity_measure(net, cfg, stacked, seeds, steps=3, x=x, num_classes=10)
    assert pm.checkpoint_loss.shape == (1, 2) and np.all(np.isfinite(pm.loss_ratio))
