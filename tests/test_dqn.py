"""Tests of the DQN pieces of chapter 7 (App. B.3): the bandit environment, the two-hot
encoding, Bellman targets and TD losses, the optimal Q-function, and the probe of a
Q-network's values. Each is checked against an independent computation by hand."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib import dqn, losses, tasks
from plasticity_lib.diagnostics import probe
from plasticity_lib.models import make_network

# ----------------------------------------------------------------- the environment


def test_bandit_rewards_match_labels():
    n, a = 50, 10
    rng = np.random.default_rng(0)
    labels = rng.integers(0, a, n)
    x = np.arange(n, dtype=np.float32)[:, None]  # the state's feature is its index
    tr = tasks.bandit_transition(jax.random.PRNGKey(3), x, labels, a, batch_size=400)
    idx = np.asarray(tr.obs[:, 0]).astype(int)
    action = np.asarray(tr.action)
    expected = (action == labels[idx]).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(tr.reward), expected)
    assert set(np.asarray(tr.next_obs[:, 0]).astype(int)) <= set(range(n))
    assert 0 <= action.min() and action.max() < a
    # uniform behaviour policy: about one reward in A
    assert abs(expected.mean() - 1 / a) < 0.05


# ----------------------------------------------------------------- two-hot encoding


def test_twohot_round_trip_at_and_between_atoms():
    m = dqn.twohot_bound(0.9)
    atoms = np.arange(-m, m + 1, dtype=np.float32)
    at = atoms.copy()
    enc = np.asarray(losses.twohot_encode(at, atoms))
    np.testing.assert_allclose(enc, np.eye(len(atoms)), atol=1e-6)  # one-hot at the atoms
    between = np.array([-9.25, -0.5, 0.1, 3.7, 9.99], np.float32)
    enc = np.asarray(losses.twohot_encode(between, atoms))
    for v, p in zip(between, enc):
        lo = math.floor(v)
        i = int(lo + m)
        np.testing.assert_allclose(p[i], math.ceil(v) - v, atol=1e-6)  # P(floor c) = ceil c - c
        np.testing.assert_allclose(p[i + 1], 1 - (math.ceil(v) - v), atol=1e-6)
        assert np.count_nonzero(p > 1e-7) == 2
    np.testing.assert_allclose(np.asarray(losses.twohot_decode(enc, atoms)), between, atol=1e-5)


@pytest.mark.parametrize("gamma,m", [(0.0, 1), (0.5, 2), (0.9, 10), (0.99, 100)])
def test_twohot_bound_and_atoms(gamma, m):
    assert dqn.twohot_bound(gamma) == m
    cfg = dqn.q_network_config("twohot", 10, gamma=gamma, width=8, depth=1)
    np.testing.assert_array_equal(cfg.atoms(), np.arange(-m, m + 1, dtype=np.float32))
    assert cfg.num_values == 10
    with pytest.raises(ValueError):
        dqn.twohot_bound(1.0)


# ------------------------------------------------------- Bellman targets and TD losses


def test_bellman_target_of_a_fixed_q_table():
    q_next = np.array([[0.0, 2.0, 1.0], [5.0, -1.0, 4.0]], np.float32)
    reward = np.array([1.0, 0.0], np.float32)
    gamma = 0.9
    by_hand = np.array([1.0 + 0.9 * 2.0, 0.0 + 0.9 * 5.0], np.float32)
    np.testing.assert_allclose(np.asarray(dqn.bellman_target(reward, q_next, gamma)), by_hand)
    np.testing.assert_allclose(np.asarray(dqn.bellman_target(reward, q_next, 0.0)), reward)


def test_td_losses_by_hand():
    q = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]], np.float32)
    action = np.array([2, 1])
    target = np.array([4.0, 2.0], np.float32)
    np.testing.assert_allclose(np.asarray(dqn.td_loss("mse", q, action, target)), [1.0, 9.0])
    # Huber, delta 1: 0.5 d^2 for |d| <= 1, |d| - 0.5 beyond
    np.testing.assert_allclose(np.asarray(dqn.td_loss("huber", q, action, target)), [0.5, 2.5])
    atoms = np.arange(-3, 4, dtype=np.float32)
    logits = np.random.default_rng(1).normal(size=(2, 3, 7)).astype(np.float32)
    for eps in (0.0, 0.1):
        got = np.asarray(
            dqn.td_loss("twohot", logits, action, target - 1.5, atoms=atoms, label_smoothing=eps)
        )
        for b in range(2):
            c = float(target[b] - 1.5)
            p = np.zeros(7)
            lo = int(math.floor(c)) + 3
            p[lo] = math.ceil(c) - c if c != math.floor(c) else 1.0
            if c != math.floor(c):
                p[lo + 1] = 1 - p[lo]
            p = (1 - eps) * p + eps / 7
            z = logits[b, action[b]].astype(np.float64)
            logp = z - np.log(np.exp(z - z.max()).sum()) - z.max()
            np.testing.assert_allclose(got[b], -(p * logp).sum(), rtol=1e-5)
    with pytest.raises(ValueError):
        dqn.td_loss("twohot", logits, action, target)


def test_q_values_of_a_twohot_head_are_expectations():
    cfg = dqn.q_network_config("twohot", 4, gamma=0.5, width=8, depth=1)
    net = make_network(cfg)
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 6))
    params = net.init(jax.random.PRNGKey(1), x)
    logits = np.asarray(net.apply(params, x), np.float64)  # (5, 4, 5 atoms)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    by_hand = (p * np.arange(-2, 3)).sum(-1)
    np.testing.assert_allclose(np.asarray(dqn.q_values(net, params, x)), by_hand, rtol=1e-5)
    lin = make_network(dqn.q_network_config("mse", 4, width=8, depth=1))
    lp = lin.init(jax.random.PRNGKey(1), x)
    np.testing.assert_array_equal(dqn.q_values(lin, lp, x), lin.apply(lp, x))


# -------------------------------------------------------------- the optimal Q-function


@pytest.mark.parametrize("gamma", [0.0, 0.9, 0.99])
def test_optimal_q_solves_the_bellman_equation(gamma):
    a = 10
    labels = np.random.default_rng(2).integers(0, a, 40)
    q = np.asarray(dqn.optimal_q(labels, a, gamma), np.float64)
    reward = (np.arange(a)[None, :] == labels[:, None]).astype(np.float64)
    # next state uniform over the dataset, independent of (s, a)
    bellman = reward + gamma * q.max(axis=1).mean()
    np.testing.assert_allclose(q, bellman, rtol=1e-5)
    # mean target under Q* and the uniform behaviour policy: mean over states and actions
    np.testing.assert_allclose(
        bellman.mean(), dqn.optimal_mean_target(gamma, a), rtol=1e-5, atol=1e-6
    )
    if gamma == 0.9:
        assert abs(dqn.optimal_mean_target(gamma, a) - 9.1) < 1e-9


def test_target_mean_after_is_value_iteration():
    gamma, a = 0.9, 10
    v, means = 0.0, []
    for _ in range(30):
        means.append(1 / a + gamma * v)  # mean target with the current target network
        v = 1 + gamma * v  # one exact target update: V <- max_a r + gamma V
    np.testing.assert_allclose(
        np.asarray(dqn.target_mean_after(np.arange(30), gamma, a)), means, rtol=1e-5
    )
    assert abs(float(dqn.target_mean_after(500, gamma, a)) - 9.1) < 1e-4


# ---------------------------------------------------------- the probe of Q-networks


def test_probe_of_q_values_ratio_and_saturated_softmax():
    """The B.3 probe on a two-hot Q-network's values: a checkpoint equal to the
    initialisation has ratio exactly 1; a network whose softmax is saturated (logits
    scaled up 1000-fold) cannot move its decoded values and fits the probe worse."""
    cfg = dqn.q_network_config("twohot", 3, gamma=0.0, width=16, depth=1)
    net = make_network(cfg)
    x = jax.random.normal(jax.random.PRNGKey(0), (32, 5))
    params = net.init(jax.random.PRNGKey(1), x)
    saturated = dict(params)
    saturated["Head"] = jax.tree.map(lambda w: 1000.0 * w, params["Head"])

    def apply_fn(p, xs):
        return dqn.q_values(net, p, xs)

    kw = dict(steps=200, lr=1e-2, amplitude=0.5)
    key = jax.random.PRNGKey(4)
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, a, b]), params, saturated)
    loss = np.asarray(probe.probe_vmapped(apply_fn, stacked, x, key, **kw))
    assert loss[0] == loss[1]  # same params, same eta and minibatches: ratio 1
    assert loss[2] / loss[0] > 2.0
