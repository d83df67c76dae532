"""The random regression targets of App. E.1 (Figs. 1 left, 11-16), one seed at a time.

App. E.1 regresses pseudo-random targets with an offset ``b``,

    y(x) = b + sin(M f_rand(x)),        M = 1e5,

where ``f_rand`` is a randomly initialised, never trained scalar network: ``sin(M f)``
is a pseudo-random value in ``[-1, 1]`` for each input, which the network has to
memorise. Fig. 16's zero-mean control adds a smooth part scaled by ``alpha`` instead of
the offset, ``y(x) = alpha s(x) + sin(M f_rand(x))``, with ``s`` a second random
network's output standardised over the inputs (our reading of the paper's
``c + alpha f_theta(x) + sigma(x)`` with ``c = 0``).

:func:`target_parts` computes the two random parts of one key, exactly as
:func:`plasticity_lib.tasks.random_network_targets` does (same key split, same
networks); :func:`offset_targets` assembles the targets of many (offset, alpha)
conditions and seeds from those parts. Because ``sin(1e5 f)`` amplifies the float
rounding of ``f`` and rounding can depend on how a computation is batched, the parts
are computed one key at a time by one compiled program (``jax.lax.map``): a seed's
targets do not depend on which other seeds and conditions are in the run.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import tasks

__all__ = ["target_parts", "offset_targets", "constant_predictor_loss"]


def target_parts(
    key: jax.Array, x, M: float = 1e5, width: int = 64, depth: int = 2
) -> tuple[jax.Array, jax.Array]:
    """The two random parts of one key's targets, ``(high_frequency, smooth)``, each ``(N,)``.

    ``high_frequency = sin(M f_hf(x))`` and ``smooth`` is the output of a second random
    network standardised over ``x`` (mean 0, standard deviation 1), so that
    ``tasks.random_network_targets(key, x, offset, M, alpha)[:, 0]`` equals
    ``offset + alpha * smooth + high_frequency`` (same key split
    ``k_hf, k_smooth = jax.random.split(key)``, same ``tasks.random_mlp_init`` networks of
    ``depth`` ReLU layers of ``width`` units).

    Args:
      key: one PRNG key ``(2,)``.
      x: ``(N, ...)`` inputs (flattened by the random networks).
      M: frequency of the high-frequency part (App. E.1: ``1e5``).
      width, depth: the random networks' hidden width and number of hidden layers.
    """
    x = jnp.asarray(x, jnp.float32)
    in_dim = int(np.prod(x.shape[1:]))
    k_hf, k_smooth = jax.random.split(key)
    f_hf = tasks.random_mlp_apply(tasks.random_mlp_init(k_hf, in_dim, width, depth), x)
    smooth = tasks.random_mlp_apply(tasks.random_mlp_init(k_smooth, in_dim, width, depth), x)
    return jnp.sin(M * f_hf), (smooth - smooth.mean()) / (smooth.std() + 1e-12)


def offset_targets(
    x,
    target_keys: jax.Array,
    conditions: Sequence[tuple[float, float]],
    M: float = 1e5,
    width: int = 64,
    depth: int = 2,
) -> jax.Array:
    """Targets ``(C * S, N, 1)`` of every (condition, key), condition-major (App. E.1).

    ``y[c * S + s] = offset_c + alpha_c * smooth_s + high_frequency_s``, the parts of key
    ``s`` (:func:`target_parts`): conditions that share a key share their target
    networks and differ only in ``offset`` / ``alpha`` (common random numbers).

    Args:
      x: ``(N, ...)`` inputs.
      target_keys: ``(S, 2)`` keys, one per seed (e.g. ``keys.for_seeds(seeds, tag)``).
      conditions: C pairs ``(offset b, scale alpha)``.
      M, width, depth: see :func:`target_parts`.
    Returns:
      float32 ``(C * S, N, 1)``; model ``c * S + s`` regresses row ``c * S + s``.
    """
    x = jnp.asarray(x, jnp.float32)
    target_keys = jnp.asarray(target_keys)
    if target_keys.ndim != 2:
        raise ValueError(f"target_keys must be (S, 2) keys, got shape {target_keys.shape}")
    if not conditions or any(len(c) != 2 for c in conditions):
        raise ValueError(f"conditions must be non-empty pairs (offset, alpha), got {conditions}")
    high_frequency, smooth = jax.jit(
        lambda ks: jax.lax.map(lambda k: target_parts(k, x, M, width, depth), ks)
    )(target_keys)
    offsets = jnp.asarray([float(c[0]) for c in conditions], jnp.float32)[:, None, None]
    alphas = jnp.asarray([float(c[1]) for c in conditions], jnp.float32)[:, None, None]
    y = offsets + alphas * smooth[None] + high_frequency[None]  # (C, S, N)
    return y.reshape(-1, x.shape[0], 1).astype(jnp.float32)


def constant_predictor_loss(y) -> np.ndarray:
    """The loss floor of a regression task (issue 15): the mean squared error of the best
    constant predictor, i.e. of predicting each model's target mean, ``(M,)``.

    A network that has learnt nothing of its targets but their mean sits at this loss (in
    App. E.1, large-offset pretraining leaves fine-tuning there); loss comparisons between
    arms that all sit at it compare floors, not plasticity.

    Args:
      y: ``(M, N)`` or ``(M, N, 1)`` targets, one row per model (e.g. a slice of
        :func:`offset_targets`).
    Returns:
      float64 ``(M,)``: ``mean_i (y[m, i] - mean_j y[m, j])^2``, the population variance.
    """
    y = np.asarray(y, np.float64)
    if y.ndim == 3 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.ndim != 2:
        raise ValueError(f"y must be (M, N) or (M, N, 1) targets, got shape {y.shape}")
    return np.mean((y - y.mean(axis=1, keepdims=True)) ** 2, axis=1)
