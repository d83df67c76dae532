"""The book's key scheme: which ``fold_in`` index of a seed's key is used for what.

Every model is identified by an integer seed ``s``; its root key is ``PRNGKey(s)`` and
each use of randomness derives its own key with ``fold_in(PRNGKey(s), PURPOSE)``. The
training engine (:mod:`plasticity_lib.train`) and every chapter use these names, so
that configurations sharing a seed share initial parameters, tasks and minibatches
(common random numbers), and a chapter's protocol reads ``keys.task_root(seeds)``
instead of ``fold_in(PRNGKey(s), 1)``.

========= ===== ============================================================
purpose   index use
========= ===== ============================================================
PARAMS    0     initial parameters (``network.init``)
TASKS     1     root of the task stream: task ``t`` uses ``fold_in(root, t)``
MINIBATCH 2     ``TrainState.rng``: minibatch of global step ``g`` is ``fold_in(rng, g)``
METRICS   3     the key passed to a ``metrics_fn``
PROBE     4     plasticity probes (fresh tasks drawn to test a checkpoint)
INFER     5     the InFeR heads' initialisation (§4.1, Lyle et al. 2022)
========= ===== ============================================================

Chapters that need keys for something else (e.g. the target networks of chapter 1,
App. E.1) pick a tag above the table (``fold_in(seed_key(s), tag)`` with tag >= 10) and
name it in their own code.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

PARAMS = 0
TASKS = 1
MINIBATCH = 2
METRICS = 3
PROBE = 4
INFER = 5

__all__ = [
    "PARAMS",
    "TASKS",
    "MINIBATCH",
    "METRICS",
    "PROBE",
    "INFER",
    "seed_keys",
    "derive",
    "for_seeds",
    "task_root",
    "task_keys",
]


def seed_keys(seeds: Sequence[int] | np.ndarray) -> jax.Array:
    """``(S, 2)`` root keys ``PRNGKey(s)`` of the integer ``seeds`` ``(S,)``."""
    seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


def derive(keys: jax.Array, purpose: int) -> jax.Array:
    """``fold_in(k, purpose)`` for every key of ``keys`` ``(S, 2)`` -> ``(S, 2)``."""
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, jnp.uint32(purpose))


def for_seeds(seeds: Sequence[int] | np.ndarray, purpose: int) -> jax.Array:
    """``(S, 2)`` keys ``fold_in(PRNGKey(s), purpose)``, one per seed (computed per seed,
    bit-identical to a Python loop over ``seeds``)."""
    seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
    return jnp.stack([jax.random.fold_in(jax.random.PRNGKey(int(s)), purpose) for s in seeds])


def task_root(seeds: Sequence[int] | np.ndarray) -> jax.Array:
    """``(S, 2)`` roots of the seeds' task streams (``purpose = TASKS``)."""
    return for_seeds(seeds, TASKS)


def task_keys(roots: jax.Array, t) -> jax.Array:
    """``(S, 2)`` keys of task ``t`` (``fold_in(root, t)``) for every root ``(S, 2)``."""
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(roots, jnp.uint32(t))
