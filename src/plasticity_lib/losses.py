"""Loss functions of the engine: cross-entropy, MSE and the two-hot categorical loss.

Paper: Lyle et al. (2024), §3.2 and App. B.2 (softmax cross-entropy classification,
label smoothing §4.1 "Target scale"), App. B.3 (the "two-hot" trick: a regression target
``c`` becomes a distribution on the two nearest atoms, ``P(floor c) = ceil c - c``,
``P(ceil c) = 1 - P(floor c)``, trained with cross-entropy), regression with squared error
(§3.1 regression to random targets).

Every ``*_loss`` function returns a *per-example* loss ``(batch,)``; the engine averages.
The cross-entropies are optax's (``optax.smooth_labels``, ``optax.softmax_cross_entropy``).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import optax

__all__ = [
    "LOSSES",
    "twohot_encode",
    "twohot_decode",
    "softmax_cross_entropy_loss",
    "mse_loss",
    "twohot_loss",
    "data_loss",
]

Array = jax.Array

LOSSES = ("xent", "mse", "twohot")


def twohot_encode(values: Array, atoms: Array) -> Array:
    """Two-hot encoding of real values on a sorted grid of atoms (App. B.3).

    Args:
      values: ``(...)`` real targets; clipped to ``[atoms[0], atoms[-1]]``.
      atoms: ``(n,)`` strictly increasing atom values (need not be evenly spaced).
    Returns:
      ``(..., n)`` probabilities: for ``atoms[i] <= c <= atoms[i+1]`` mass
      ``(atoms[i+1] - c) / (atoms[i+1] - atoms[i])`` on atom ``i`` and the rest on atom
      ``i + 1`` (for unit spacing: ``P(floor c) = ceil c - c``). A value equal to an atom
      puts all its mass on that atom. ``twohot_decode(twohot_encode(v)) == clip(v)``.
    """
    atoms = jnp.asarray(atoms, jnp.float32)
    v = jnp.clip(jnp.asarray(values, jnp.float32), atoms[0], atoms[-1])
    n = atoms.shape[0]
    idx = jnp.clip(jnp.searchsorted(atoms, v, side="right") - 1, 0, n - 2)
    lo, hi = atoms[idx], atoms[idx + 1]
    w_hi = (v - lo) / (hi - lo)
    return (
        jax.nn.one_hot(idx, n) * (1.0 - w_hi)[..., None]
        + jax.nn.one_hot(idx + 1, n) * w_hi[..., None]
    )


def twohot_decode(probs: Array, atoms: Array) -> Array:
    """Expected value ``sum_i probs[..., i] * atoms[i]`` ``(...)`` of a distribution on atoms."""
    return jnp.sum(probs * jnp.asarray(atoms, jnp.float32), axis=-1)


def softmax_cross_entropy_loss(
    logits: Array, y: Array, label_smoothing: float | Array = 0.0
) -> Array:
    """Per-example softmax cross-entropy ``(batch,)``.

    Args:
      logits: ``(batch, C)``.
      y: ``(batch,)`` int labels, or ``(batch, C)`` float target distributions.
      label_smoothing: ``eps``: target ``(1 - eps) * onehot + eps / C`` (may be traced).
    """
    c = logits.shape[-1]
    target = jax.nn.one_hot(y, c) if jnp.issubdtype(y.dtype, jnp.integer) else y
    return optax.softmax_cross_entropy(logits, optax.smooth_labels(target, label_smoothing))


def mse_loss(outputs: Array, y: Array) -> Array:
    """Per-example squared error averaged over output dimensions ``(batch,)``.

    ``y`` is ``(batch, k)`` float targets, ``(batch,)`` floats for a single output, or
    ``(batch,)`` int labels (regressed as one-hot vectors).
    """
    if jnp.issubdtype(y.dtype, jnp.integer):
        y = jax.nn.one_hot(y, outputs.shape[-1])
    elif y.ndim == outputs.ndim - 1:
        y = y[..., None]
    return jnp.mean(jnp.square(outputs - y), axis=-1)


def twohot_loss(
    logits: Array, y: Array, atoms: Array, label_smoothing: float | Array = 0.0
) -> Array:
    """Per-example two-hot cross-entropy ``(batch,)`` (App. B.3), averaged over values.

    Args:
      logits: ``(batch, V, n_atoms)``.
      y: ``(batch, V)`` (or ``(batch,)`` when ``V == 1``) real targets.
      atoms: ``(n_atoms,)``.
      label_smoothing: mixes the two-hot target with the uniform distribution (§4.1).
    """
    if y.ndim == 1:
        y = y[:, None]
    target = optax.smooth_labels(twohot_encode(y, atoms), label_smoothing)
    return jnp.mean(optax.softmax_cross_entropy(logits, target), axis=-1)


def data_loss(
    kind: str,
    outputs: Array,
    y: Array,
    *,
    label_smoothing: float | Array = 0.0,
    atoms: Optional[Array] = None,
) -> tuple[Array, dict]:
    """Per-example loss and per-example metrics for a loss kind.

    Returns ``(loss (batch,), metrics)`` where metrics has ``"accuracy"`` (argmax equals
    the label; int labels only) or ``"mse"`` (squared error of the prediction averaged over
    outputs; for two-hot the prediction is the decoded expectation), each ``(batch,)``.
    """
    if kind == "xent":
        loss = softmax_cross_entropy_loss(outputs, y, label_smoothing)
    elif kind == "mse":
        loss = mse_loss(outputs, y)
    elif kind == "twohot":
        if atoms is None:
            raise ValueError("loss='twohot' needs the atoms of a head='twohot' network")
        loss = twohot_loss(outputs, y, atoms, label_smoothing)
    else:
        raise ValueError(f"loss={kind!r} is not allowed; choose one of {LOSSES}")
    metrics = {}
    if jnp.issubdtype(y.dtype, jnp.integer):
        metrics["accuracy"] = (jnp.argmax(outputs, axis=-1) == y).astype(jnp.float32)
    elif kind == "twohot":
        pred = twohot_decode(jax.nn.softmax(outputs, axis=-1), atoms)
        yy = y[:, None] if y.ndim == 1 else y
        metrics["mse"] = jnp.mean(jnp.square(pred - yy), axis=-1)
    elif kind == "mse":
        metrics["mse"] = loss
    else:  # xent with soft targets: accuracy against the target's argmax
        metrics["accuracy"] = (jnp.argmax(outputs, axis=-1) == jnp.argmax(y, axis=-1)).astype(
            jnp.float32
        )
    return loss, metrics
