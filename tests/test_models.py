"""Tests of plasticity_lib.models: shapes, normalisation statistics, conv routes, eNTK hook."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib.models import (
    NORMS,
    ModelConfig,
    conv2d,
    im2col,
    make_network,
    normalize,
)

KEY = jax.random.PRNGKey(0)


def _x(shape, seed=1, shift=0.0):
    """Test inputs from numpy (no compilation)."""
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * 2.0 + shift, jnp.float32)


def test_mlp_intermediates_shapes_and_layout():
    net = make_network(ModelConfig(depth=3, width=16, num_outputs=5, norm="layer"))
    x = _x((7, 12))
    params = jax.jit(net.init)(KEY, x)
    assert params["Dense_0"]["kernel"].shape == (12, 16)
    assert params["Head"]["kernel"].shape == (16, 5)
    assert set(params["Dense_1_norm"]) == {"scale", "bias"}
    out, inter = jax.jit(net.apply_with_intermediates)(params, x)
    assert out.shape == (7, 5)
    assert len(inter.preacts) == len(inter.acts) == 3 == len(net.layer_names)
    assert all(p.shape == (7, 16) for p in inter.preacts)
    assert inter.features.shape == (7, 16)
    assert [d.shape for d in inter.dense_inputs] == [(7, 12), (7, 16), (7, 16), (7, 16)]
    assert net.dense_names == ("Dense_0", "Dense_1", "Dense_2", "Head")
    np.testing.assert_allclose(inter.acts[1], jax.nn.relu(inter.preacts[1]))
    np.testing.assert_allclose(inter.dense_inputs[-1], inter.features)
    np.testing.assert_allclose(jax.jit(net.apply)(params, x), out, rtol=1e-6)


def test_cnn_and_resnet_intermediates_shapes():
    # Shapes only: abstract evaluation, nothing is compiled.
    def shapes(net, x):
        def f(x):
            p = net.init(KEY, x)
            return p, net.apply_with_intermediates(p, x)

        return jax.eval_shape(f, x)

    cnn = make_network(
        ModelConfig(arch="cnn", depth=2, channels=4, width=8, cnn_pool_every=1, num_outputs=3)
    )
    x = jax.ShapeDtypeStruct((2, 8, 8, 3), jnp.float32)
    p, (out, inter) = shapes(cnn, x)
    assert out.shape == (2, 3)
    # conv layers flattened (H*W*C) before pooling; pooling 8 -> 4 -> 2; two dense layers of 8
    assert [a.shape for a in inter.preacts] == [(2, 8 * 8 * 4), (2, 4 * 4 * 4), (2, 8), (2, 8)]
    assert inter.dense_inputs[0].shape == (2, 2 * 2 * 4)
    assert cnn.layer_names == ("Conv_0", "Conv_1", "Dense_0", "Dense_1")

    res = make_network(ModelConfig(arch="resnet18", width=2, norm="layer", num_outputs=3))
    x = jax.ShapeDtypeStruct((2, 8, 8, 1), jnp.float32)
    p, (out, inter) = shapes(res, x)
    assert out.shape == (2, 3)
    assert len(inter.preacts) == 17 == len(res.layer_names)
    assert inter.preacts[0].shape == (2, 8 * 8 * 2) and inter.preacts[-1].shape == (2, 1 * 1 * 16)
    assert inter.features.shape == (2, 16)
    assert "block2_proj" in p and "block1_proj" not in p


def test_twohot_head_shape_and_atoms():
    cfg = ModelConfig(depth=1, width=8, head="twohot", num_outputs=21, num_values=3)
    net = make_network(cfg)
    x = _x((4, 5))
    out = jax.eval_shape(lambda x: net.apply(net.init(KEY, x), x), x)
    assert out.shape == (4, 3, 21)
    np.testing.assert_array_equal(net.atoms, np.arange(-10, 11, dtype=np.float32))


@pytest.mark.parametrize("norm", NORMS)
def test_norm_statistics(norm):
    x = _x((32, 24), shift=3.0)  # off-centre inputs so centring is visible
    y = np.asarray(jax.jit(normalize, static_argnums=(1, 2))(x, norm, 1e-6))
    x = np.asarray(x)
    row_m, row_s = y.mean(1), y.std(1)
    col_m, col_s = y.mean(0), y.std(0)
    if norm == "none":
        np.testing.assert_array_equal(y, x)
    elif norm == "layer":
        np.testing.assert_allclose(row_m, 0, atol=1e-5)
        np.testing.assert_allclose(row_s, 1, atol=1e-4)
    elif norm in ("batch", "layer_batch"):  # layer_batch ends with the batch norm
        np.testing.assert_allclose(col_m, 0, atol=1e-5)
        np.testing.assert_allclose(col_s, 1, atol=1e-4)
    elif norm == "batch_center":
        np.testing.assert_allclose(col_m, 0, atol=1e-5)
        np.testing.assert_allclose(col_s, x.std(0), rtol=1e-5)  # no rescaling
    elif norm == "feature_scale":
        np.testing.assert_allclose(row_s, 1, atol=1e-4)
        np.testing.assert_allclose(row_m, x.mean(1) / x.std(1), rtol=1e-4)  # no centring
    elif norm == "batch_center_feature_scale":
        c = x - x.mean(0)
        np.testing.assert_allclose(y, c / c.std(1, keepdims=True), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(row_s, 1, atol=1e-4)


@pytest.mark.parametrize("norm", ["layer", "batch", "layer_batch"])
def test_network_preacts_are_normalised(norm):
    """Inside a network (affine at init = identity) the recorded preacts are normalised."""
    net = make_network(ModelConfig(depth=2, width=16, norm=norm))
    x = _x((64, 10), shift=1.0)
    _, inter = jax.jit(lambda x: net.apply_with_intermediates(net.init(KEY, x), x))(x)
    z = np.asarray(inter.preacts[1])
    axis = 1 if norm == "layer" else 0
    np.testing.assert_allclose(z.mean(axis), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis), 1, atol=1e-2)


def test_conv_layer_norm_is_over_hwc():
    net = make_network(
        ModelConfig(arch="cnn", depth=1, channels=4, width=8, norm="layer", cnn_pool_every=0)
    )
    x = _x((3, 6, 6, 2), shift=1.0)
    _, inter = jax.jit(lambda x: net.apply_with_intermediates(net.init(KEY, x), x))(x)
    z = np.asarray(inter.preacts[0])  # (3, 6*6*4)
    np.testing.assert_allclose(z.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(1), 1, atol=1e-3)


def test_im2col_matches_lax_conv_function_and_gradients():
    x = _x((2, 7, 6, 3))
    for k, stride in [(3, 2), (1, 2)]:
        kern = _x((k, k, 3, 5), seed=3)
        a = jax.jit(conv2d, static_argnums=(2, 3))(x, kern, stride, "im2col")
        b = jax.jit(conv2d, static_argnums=(2, 3))(x, kern, stride, "lax")
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert im2col(x, 3, 1).shape == (2, 7, 6, 27)

    cfg = dict(arch="cnn", depth=2, channels=4, width=8, norm="batch")
    n_i = make_network(ModelConfig(**cfg, conv_impl="im2col"))
    n_l = make_network(ModelConfig(**cfg, conv_impl="lax"))
    x = _x((4, 8, 8, 3))
    params = jax.jit(n_i.init)(KEY, x)

    def loss(net):
        return lambda p: jnp.sum(net.apply(p, x) ** 2)

    (l_i, g_i), (l_l, g_l) = [jax.jit(jax.value_and_grad(loss(n)))(params) for n in (n_i, n_l)]
    np.testing.assert_allclose(l_i, l_l, rtol=1e-4)
    scale = max(float(np.abs(b).max()) for b in jax.tree_util.tree_leaves(g_l))
    for a, b in zip(jax.tree_util.tree_leaves(g_i), jax.tree_util.tree_leaves(g_l)):
        # float32 sums in different orders; biases before batch norm have ~0 gradient (noise)
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5 * scale)


def test_dense_entk_route_matches_jacobian():
    """d f / d W_k = dense_inputs[k] (outer) d f / d z_k, z_k perturbed via ``perturbations``."""
    net = make_network(
        ModelConfig(depth=2, width=6, num_outputs=3, norm="layer", activation="tanh")
    )
    x = _x((1, 4))
    params = jax.jit(net.init)(KEY, x)

    @jax.jit
    def pieces(params):
        _, inter = net.apply_with_intermediates(params, x)
        eps = tuple(jnp.zeros((1, params[n]["kernel"].shape[1])) for n in net.dense_names)
        delta = jax.jacrev(lambda e: net.apply_with_intermediates(params, x, e)[0][0])(
            eps
        )  # (3, 1, fan_out)
        jac = jax.jacrev(lambda p: net.apply(p, x)[0])(params)
        return inter, delta, jac

    inter, delta, jac = pieces(params)
    for k, name in enumerate(net.dense_names):
        expected = jnp.einsum("i,oj->oij", inter.dense_inputs[k][0], delta[k][:, 0, :])
        np.testing.assert_allclose(jac[name]["kernel"], expected, rtol=1e-4, atol=1e-6)


def test_unit_layers_for_redo():
    net = make_network(
        ModelConfig(arch="cnn", depth=1, channels=4, width=8, cnn_dense_layers=1, norm="layer")
    )
    p = jax.eval_shape(net.init, KEY, jax.ShapeDtypeStruct((1, 4, 4, 1), jnp.float32))
    layers = net.unit_layers(p)
    assert [l.name for l in layers] == ["Conv_0", "Dense_0"]
    assert layers[0].num_units == 4 and ((("Conv_0", "kernel"), 3) in layers[0].incoming)
    assert layers[0].outgoing == ((("Dense_0", "kernel"), 0),)
    assert layers[1].outgoing == ((("Head", "kernel"), 0),)


def test_config_errors_name_the_parameter():
    with pytest.raises(ValueError, match="activation"):
        ModelConfig(activation="swish")
    with pytest.raises(ValueError, match="norm"):
        ModelConfig(norm="group")
    with pytest.raises(ValueError, match="arch"):
        ModelConfig(arch="vit")
    with pytest.raises(ValueError, match="depth"):
        ModelConfig(arch="resnet18", depth=3)
    with pytest.raises(ValueError, match="num_values"):
        ModelConfig(num_values=2)
    assert hash(ModelConfig()) == hash(ModelConfig())
