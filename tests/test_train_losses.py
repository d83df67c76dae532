"""Tests of plasticity_lib.losses (the engine's data losses) against numpy."""

import jax
import jax.numpy as jnp
import numpy as np

from plasticity_lib.losses import data_loss, twohot_decode, twohot_encode, twohot_loss


def test_twohot_roundtrip_and_placement():
    atoms = jnp.arange(-3.0, 4.0)  # -3..3
    v = jnp.array([-3.0, -2.25, 0.0, 0.7, 2.5, 3.0, 7.0, -9.0])
    logits = jnp.asarray(np.random.default_rng(1).normal(size=(8, 1, 7)), jnp.float32)
    ls = 0.1

    @jax.jit
    def compute(v, logits):
        p = twohot_encode(v, atoms)
        return p, twohot_decode(p, atoms), twohot_loss(logits, v, atoms, ls)

    p, decoded, loss = map(np.asarray, compute(v, logits))
    assert p.shape == (8, 7)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(decoded, np.clip(v, -3, 3), atol=1e-6)
    # B.3: P(floor c) = ceil c - c, P(ceil c) = 1 - P(floor c)
    np.testing.assert_allclose(p[1, 0], 0.25, atol=1e-6)  # -2.25 -> -3 (idx 0) and -2 (idx 1)
    np.testing.assert_allclose(p[1, 1], 0.75, atol=1e-6)
    np.testing.assert_allclose(p[3, 3], 0.3, atol=1e-6)  # 0.7 -> 0 (idx 3) 0.3, 1 (idx 4) 0.7
    np.testing.assert_allclose(p[3, 4], 0.7, atol=1e-6)
    assert p[2, 3] == 1.0 and p[5, 6] == 1.0 and p[6, 6] == 1.0 and p[7, 0] == 1.0
    assert int((p[3] > 0).sum()) == 2
    # two-hot loss = cross-entropy against the (smoothed) two-hot target (numpy)
    target = (1 - ls) * p + ls / 7
    lg = np.asarray(logits[:, 0], np.float64)
    logp = lg - lg.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    np.testing.assert_allclose(loss, -(target * logp).sum(-1), rtol=1e-5)


def test_xent_label_smoothing_and_mse():
    logits = jnp.array([[2.0, 0.0, -1.0]])
    y = jnp.array([0])
    loss, m = jax.jit(lambda a, b: data_loss("xent", a, b, label_smoothing=0.3))(logits, y)
    lp = np.log(np.exp([2.0, 0.0, -1.0]) / np.exp([2.0, 0.0, -1.0]).sum())
    target = 0.7 * np.array([1, 0, 0]) + 0.1
    np.testing.assert_allclose(loss, [-(target * lp).sum()], rtol=1e-5)
    assert m["accuracy"][0] == 1.0
    loss, m = jax.jit(lambda a, b: data_loss("mse", a, b))(
        jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 4.0]])
    )
    np.testing.assert_allclose(loss, [2.5])
    np.testing.assert_allclose(m["mse"], [2.5])
