"""Deep Q-learning on the contextual bandit of App. B.3: Q-values, Bellman targets, TD losses.

Paper: Lyle et al. (2024) §4.1 "Target scale" (Fig. 5 right), App. B.3 (contextual
bandits, the two-hot trick), App. E.6 (Fig. 21); DQN of Mnih et al. (2015).

The environment (:func:`plasticity_lib.tasks.bandit_transition`): a state is an image,
the ``A`` actions are the classes, the reward is ``r`` (1 here) when the action equals
the label and 0 otherwise, and the next state is a uniformly random image. The DQN
target of a transition ``(s, a, r, s')`` is

    y = r + gamma * max_a' Q_target(s', a'),

with ``Q_target`` a periodically refreshed copy of the online network. The pieces here
are the named concepts a chapter assembles into its training program:

* :func:`q_network_config` -- the Q-network: the book's MLP (or the B.1 CNN) with a
  linear head of ``A`` outputs (regression) or a two-hot head of ``A x (2M + 1)`` logits
  over the atoms ``{-M, ..., M}``, ``M = twohot_bound(gamma)`` (B.3);
* :func:`q_values` -- ``Q(s, .)`` ``(B, A)``: the linear outputs, or the expectation of
  the softmax over the atoms for a two-hot head;
* :func:`bellman_target` -- ``y`` above;
* :func:`td_loss` -- the per-transition loss of the taken action: squared error, Huber
  (DQN's clipped TD error) or the two-hot cross-entropy (optionally label-smoothed);
* :func:`optimal_q`, :func:`optimal_mean_target`, :func:`target_mean_after` -- the
  optimal Q-function of this bandit and the mean DQN target it implies, derived in
  chapter 7: with uniform next states, ``V* = r / (1 - gamma)`` and
  ``Q*(s, a) = r 1[a = label(s)] + gamma r / (1 - gamma)``.

Every function is jit- and vmap-able (``gamma`` and ``label_smoothing`` may be traced).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax

from . import losses
from .models import ModelConfig, Network

__all__ = [
    "TD_LOSSES",
    "twohot_bound",
    "q_network_config",
    "q_values",
    "q_from_outputs",
    "bellman_target",
    "td_loss",
    "optimal_q",
    "optimal_mean_target",
    "target_mean_after",
]

Array = jax.Array

#: ``td_loss`` kinds: squared TD error, Huber (delta 1, as DQN), two-hot cross-entropy (B.3).
TD_LOSSES = ("mse", "huber", "twohot")


def twohot_bound(gamma: float, reward: float = 1.0) -> int:
    """The integer bound ``M`` on ``|Q|`` of B.3's two-hot trick: ``ceil(r / (1 - gamma))``,
    at least 1 (``gamma = 0.9`` -> 10, ``0.99`` -> 100, ``0`` -> 1). ``gamma < 1``."""
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma={gamma!r} must lie in [0, 1)")
    # round first: 1 / (1 - 0.9) is 10.000000000000002 in floating point
    return max(1, math.ceil(round(float(reward) / (1.0 - float(gamma)), 9)))


def q_network_config(
    loss: str,
    num_actions: int,
    *,
    gamma: float = 0.0,
    arch: str = "mlp",
    width: int | None = None,
    depth: int | None = None,
    norm: str = "none",
    reward: float = 1.0,
) -> ModelConfig:
    """The Q-network's ``ModelConfig`` for a TD loss kind.

    Regression (``"mse"``, ``"huber"``): linear head with ``num_actions`` outputs.
    ``"twohot"``: head ``(num_actions, 2M + 1)`` logits over the atoms ``{-M, ..., M}``
    (unit spacing), ``M = twohot_bound(gamma, reward)``. ``norm="layer"`` puts layer
    normalisation before each hidden nonlinearity (§4.1).
    """
    if loss not in TD_LOSSES:
        raise ValueError(f"loss={loss!r} is not allowed; choose one of {TD_LOSSES}")
    common = dict(arch=arch, width=width, depth=depth, norm=norm)
    if loss != "twohot":
        return ModelConfig(num_outputs=int(num_actions), **common)
    m = twohot_bound(gamma, reward)
    return ModelConfig(
        head="twohot",
        num_values=int(num_actions),
        num_outputs=2 * m + 1,
        twohot_min=-float(m),
        twohot_max=float(m),
        **common,
    )


def q_values(network: Network, params, x: Array) -> Array:
    """``Q(s, a)`` for every state of ``x`` ``(B, ...)`` and action: ``(B, A)``.

    Linear head: the outputs. Two-hot head: ``sum_i softmax(logits)_i * atom_i`` per
    action (``losses.twohot_decode``)."""
    return q_from_outputs(network, network.apply(params, x))


def q_from_outputs(network: Network, outputs: Array) -> Array:
    """Q-values ``(B, A)`` from the network's outputs (``network.apply``): the outputs of a
    linear head, the softmax expectation over the atoms of a two-hot head
    ``(B, A, n_atoms)``."""
    if network.cfg.head != "twohot":
        return outputs
    atoms = jnp.asarray(network.atoms)
    return losses.twohot_decode(jax.nn.softmax(outputs, axis=-1), atoms)


def bellman_target(reward: Array, next_q: Array, gamma: float | Array) -> Array:
    """DQN target ``reward + gamma * max_a next_q[:, a]`` ``(B,)``, without gradient.

    Args:
      reward: ``(B,)``; next_q: ``(B, A)`` target-network Q-values of the next states;
      gamma: discount (scalar, may be traced). The bandit never terminates.
    """
    return jax.lax.stop_gradient(reward + gamma * jnp.max(next_q, axis=-1))


def td_loss(
    kind: str,
    outputs: Array,
    action: Array,
    target: Array,
    *,
    atoms: Array | None = None,
    label_smoothing: float | Array = 0.0,
    huber_delta: float = 1.0,
) -> Array:
    """Per-transition TD loss of the taken action ``(B,)``.

    Args:
      kind: ``"mse"`` ``(Q(s,a) - y)^2``; ``"huber"`` ``optax.huber_loss`` with
        ``huber_delta`` (DQN's clipped error: quadratic inside ``delta``, linear
        outside; ``0.5 x^2`` near 0); ``"twohot"`` cross-entropy between
        ``softmax(logits(s, a))`` and the two-hot encoding of ``y`` on ``atoms``, mixed
        with the uniform distribution by ``label_smoothing`` (§4.1).
      outputs: ``(B, A)`` Q-values (regression) or ``(B, A, n_atoms)`` logits (two-hot).
      action: ``(B,)`` int; target: ``(B,)`` Bellman targets.
    """
    idx = jnp.arange(outputs.shape[0])
    if kind == "mse":
        return jnp.square(outputs[idx, action] - target)
    if kind == "huber":
        return optax.huber_loss(outputs[idx, action], target, delta=huber_delta)
    if kind == "twohot":
        if atoms is None:
            raise ValueError("td_loss('twohot') needs the atoms of the two-hot head")
        logits = outputs[idx, action][:, None, :]  # (B, 1, n_atoms): one value each
        return losses.twohot_loss(logits, target, atoms, label_smoothing)
    raise ValueError(f"kind={kind!r} is not allowed; choose one of {TD_LOSSES}")


def optimal_q(labels: Array, num_actions: int, gamma: float, reward: float = 1.0) -> Array:
    """The optimal Q-function of the bandit ``(N, A)``:
    ``Q*(s, a) = reward 1[a = label(s)] + gamma reward / (1 - gamma)``.

    Derivation (chapter 7): the next state is uniform and independent of the action, so
    ``V*(s') = max_a Q*(s', a)`` is the same ``V`` for every state, and
    ``V = reward + gamma V`` gives ``V = reward / (1 - gamma)``."""
    labels = jnp.asarray(labels, jnp.int32)
    hit = jax.nn.one_hot(labels, num_actions) * reward
    return hit + gamma * reward / (1.0 - gamma)


def optimal_mean_target(gamma: float, num_actions: int, reward: float = 1.0) -> float:
    """Mean DQN target under ``Q*`` and the uniform behaviour policy:
    ``reward / A + gamma reward / (1 - gamma)`` (= 9.1 at ``gamma = 0.9``, ``A = 10``)."""
    return reward / num_actions + gamma * reward / (1.0 - gamma)


def target_mean_after(k, gamma: float, num_actions: int, reward: float = 1.0):
    """Mean DQN target after ``k`` target-network updates of an agent that fits its
    targets exactly and starts from ``Q = 0``: exact value iteration gives
    ``V_k = reward (1 - gamma^k) / (1 - gamma)``, and the mean target is
    ``reward / A + gamma V_k`` (``k`` array-like; tends to :func:`optimal_mean_target`)."""
    k = jnp.asarray(k, jnp.float32)
    v_k = reward * (1.0 - gamma**k) / (1.0 - gamma)
    return reward / num_actions + gamma * v_k
