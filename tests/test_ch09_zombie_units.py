"""Tests of chapter 9's library pieces: the off-centre shift absorbed into the biases
(``models.shift_to_biases``, App. D.3), checked against ``ModelConfig.activation_shift``
and against an Adam trajectory computed independently; and the chapter's profile table
(the issue's minimum sizes at the default profile, ResNet-18 on CIFAR-10 at the paper
profile)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from plasticity_lib import profiles
from plasticity_lib.models import ModelConfig, make_network, shift_to_biases

KEY = jax.random.PRNGKey(0)


def _x(shape, seed=1):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


@pytest.mark.parametrize("norm", ["none", "layer"])
@pytest.mark.parametrize("c", [-1.0, 1.0])
def test_shift_to_biases_is_the_shifted_function(norm, c):
    x = _x((7, 6))
    shifted = make_network(ModelConfig(depth=3, width=9, norm=norm, activation_shift=c))
    plain = make_network(ModelConfig(depth=3, width=9, norm=norm))
    p = plain.init(KEY, x)
    q = shift_to_biases(plain, p, c)
    out_s, inter_s = shifted.apply_with_intermediates(p, x)
    out_p, inter_p = plain.apply_with_intermediates(q, x)
    np.testing.assert_allclose(out_s, out_p, rtol=1e-5, atol=1e-5)
    for a, b in zip(inter_s.preacts, inter_p.preacts):  # both record the argument of phi
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # only the pre-nonlinearity biases moved, by exactly c
    moved = [k for k in p if not np.array_equal(p[k]["bias"], q[k]["bias"])]
    expect = [f"Dense_{i}" + ("_norm" if norm != "none" else "") for i in range(3)]
    assert sorted(moved) == sorted(expect)
    for k in moved:
        np.testing.assert_allclose(q[k]["bias"] - p[k]["bias"], c, atol=1e-6)
    assert not np.allclose(plain.apply(p, x), out_s, atol=1e-4)  # the shift matters


def test_shift_to_biases_gives_the_same_adam_trajectory():
    """Five Adam steps of the shifted network from p equal five steps of the plain
    network from shift_to_biases(p), the biases staying c apart."""
    x, y = _x((16, 5)), jnp.asarray(np.arange(16) % 3)
    c = 1.0
    shifted = make_network(ModelConfig(depth=2, width=6, num_outputs=3, activation_shift=c))
    plain = make_network(ModelConfig(depth=2, width=6, num_outputs=3))
    opt = optax.adam(1e-2)

    def run(net, params):
        state = opt.init(params)
        for _ in range(5):
            loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(
                net.apply(p, x), y
            ).mean()
            g = jax.grad(loss)(params)
            u, state = opt.update(g, state, params)
            params = optax.apply_updates(params, u)
        return params

    p = plain.init(KEY, x)
    a = run(shifted, p)
    b = run(plain, shift_to_biases(plain, p, c))
    np.testing.assert_allclose(shifted.apply(a, x), plain.apply(b, x), rtol=1e-4, atol=1e-5)
    back = shift_to_biases(plain, b, -c)
    for k in a:
        for leaf in a[k]:
            np.testing.assert_allclose(a[k][leaf], back[k][leaf], rtol=1e-4, atol=1e-5)
    assert not np.allclose(a["Dense_0"]["kernel"], p["Dense_0"]["kernel"])  # it trained


def test_shift_to_biases_rejects_unsupported_networks():
    net = make_network(ModelConfig(arch="resmlp", depth=1, width=4))
    with pytest.raises(ValueError, match="mlp"):
        shift_to_biases(net, net.init(KEY, _x((2, 3))), 1.0)
    net = make_network(ModelConfig(depth=1, width=4, use_bias=False))
    with pytest.raises(ValueError, match="bias"):
        shift_to_biases(net, net.init(KEY, _x((2, 3))), 1.0)


def test_profiles_follow_the_issue():
    d = profiles.resolve("ch09_zombie_units", "default")
    assert d.res_arch == "resmlp" and d.res_depth >= 8 and d.res_width >= 128
    assert d.num_tasks >= 10 and d.dataset == "mnist" and d.seeds >= 3
    assert set(d.activations) == {"relu", "gelu", "leaky_relu", "abs"}
    assert tuple(d.shifts) == (-1.0, 0.0, 1.0)
    assert len(d.depths) == 3 and len(d.widths) == 3 and d.mlp_depth == 4
    assert list(d.depths) == sorted(d.depths) and list(d.widths) == sorted(d.widths)
    assert d.mlp_width in d.widths and d.mlp_depth in d.depths
    seeds = set(range(d.seed_offset, d.seed_offset + d.seeds))
    calib = range(d.calibration_seed_offset, d.calibration_seed_offset + d.calibration_seeds)
    assert seeds.isdisjoint(calib)  # the learning rate is tuned on other seeds
    p = profiles.resolve("ch09_zombie_units", "paper")
    assert p.res_arch == "resnet18" and p.dataset == "cifar10"
    assert tuple(p.widths) == (64, 256, 1024) and tuple(p.depths) == (2, 4, 8)
    for prof in ("smoke", "default", "paper"):
        r = profiles.resolve("ch09_zombie_units", prof)
        assert r.n_train % r.probe_size == 0


def test_shifted_biases_train_like_the_shifted_network_in_the_engine():
    """The chapter's off-centre runs: the engine (`train.init_state` with
    ``init_params=shift_to_biases(...)``, `train.train_steps` with a per-model learning
    rate) trains the plain network from the shifted biases exactly like the network with
    ``activation_shift=c`` from the engine's own initialisation, model by model."""
    from plasticity_lib import tasks, train

    x = _x((24, 5))
    y = jnp.asarray(np.arange(24) % 3, jnp.int32)
    seeds, cs, lrs = [0, 1], [-1.0, 1.0], [3e-3, 1e-2]
    plain = make_network(ModelConfig(depth=2, width=6, num_outputs=3))
    cfg = train.TrainConfig(learning_rate=1e-3, batch_size=8)
    p0 = train.initial_params(plain, seeds, x[:2])
    shifted_p0 = jax.vmap(lambda p, c: shift_to_biases(plain, p, c))(p0, jnp.asarray(cs))
    state = train.init_state(plain, cfg, seeds, x[:2], init_params=shifted_p0)
    task = tasks.Task(x, jnp.stack([y, (y + 1) % 3]), jnp.ones(24, jnp.float32))
    hp = {"learning_rate": np.asarray(lrs, np.float32)}
    state, _ = train.train_steps(
        plain, cfg, state, task, 20, hparams=hp, task_batched=(None, 0, None)
    )
    for m in range(2):
        net_c = make_network(ModelConfig(depth=2, width=6, num_outputs=3, activation_shift=cs[m]))
        one = train.TrainConfig(learning_rate=lrs[m], batch_size=8)
        st = train.init_state(net_c, one, [seeds[m]], x[:2])
        st, _ = train.train_steps(net_c, one, st, tasks.Task(x, task.y[m], task.mask), 20)
        got = plain.apply(jax.tree.map(lambda a: a[m], state.params), x)
        want = net_c.apply(jax.tree.map(lambda a: a[0], st.params), x)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        p_init = plain.apply(jax.tree.map(lambda a: a[m], shifted_p0), x)
        assert not np.allclose(got, p_init, atol=1e-3)  # it trained
