"""The eNTK of networks that lost plasticity, measured along their training (§3.3).

Paper: Lyle et al. (2024) §3.3 ("Characterizing networks which have lost plasticity",
Fig. 3 right): the empirical NTK ``K[i, j] = <grad_theta f(x_i), grad_theta f(x_j)>`` of
a network on a mini-batch of 64 inputs, its summaries (gradient cosines, the
"diagonal + rank-1" pathology, effective rank), and the conclusion that the eNTK is
useful "as a diagnostic tool for the loss of plasticity".

What chapter 4 needs beyond :mod:`plasticity_lib.diagnostics.ntk`:

* :func:`label_ordered_batch` -- the fixed eNTK batch, balanced over classes and ordered
  by label (class blocks contiguous in the Fig. 3 heat maps).
* :func:`map_checkpoints` -- a per-model function at every checkpoint of every seed
  (params with leading ``(S, K)``: seeds x checkpoints), in one jitted ``vmap``.
* :func:`kernel_summaries` -- ``diagnostics.ntk_summary`` of a stack of kernels, plus
  :func:`pathology_score`, the effective-rank deficit ``1 - erank(K) / n`` that the
  chapter's ``ch4.diagnostic`` claim ranks checkpoints by.

Checkpoint arrays have shape ``(S, K, ...)``; in the chapter checkpoint 0 is the
initialisation.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import diagnostics

__all__ = ["label_ordered_batch", "map_checkpoints", "pathology_score", "kernel_summaries"]


def label_ordered_batch(y: np.ndarray, n: int, num_classes: int) -> np.ndarray:
    """Indices of a batch of ``n`` examples balanced over classes, ordered by label.

    Class ``c`` contributes ``n // num_classes`` examples, plus one for the first
    ``n % num_classes`` classes; within a class the examples are the first ones in
    dataset order (deterministic). §3.3 / Fig. 3 use "a mini-batch of 64 inputs".

    Args:
      y: ``(N,)`` int labels.
      n: batch size.
      num_classes: number of classes ``C`` (labels in ``[0, C)``).
    Returns:
      ``(n,)`` int64 indices into ``y``, sorted by ``y`` (class blocks contiguous).
    Raises:
      ValueError: a class has fewer examples than its share of ``n``.
    """
    y = np.asarray(y)
    base, extra = divmod(int(n), int(num_classes))
    out = []
    for c in range(num_classes):
        k = base + (1 if c < extra else 0)
        idx = np.flatnonzero(y == c)[:k]
        if len(idx) < k:
            raise ValueError(
                f"class {c} has {len(idx)} examples, need {k} for a balanced batch of n={n}"
            )
        out.append(idx)
    return np.concatenate(out).astype(np.int64)


def map_checkpoints(fn: Callable, params: Any, *per_seed: Any) -> Any:
    """``fn(model_params, *model_args)`` at every checkpoint of every seed.

    The ``(S, K)`` leading axes of ``params`` are flattened to ``S * K`` models (seed
    major) and ``fn`` runs under one ``jax.jit(jax.vmap(fn))``; each argument of
    ``per_seed`` (leading axis ``S``, e.g. one probe key per seed) is repeated over the
    ``K`` checkpoints of its seed, so every checkpoint of a seed sees the same value.
    Arrays that every model shares (an input batch) belong in ``fn``'s closure.

    Args:
      fn: a function of one model's params (and its per-seed arguments) returning a
        pytree of arrays.
      params: params pytree whose leaves have leading axes ``(S, K)``.
      per_seed: pytrees with leading axis ``S``.
    Returns:
      ``fn``'s outputs as numpy arrays with leading axes ``(S, K)``.
    """
    leaf = jax.tree_util.tree_leaves(params)[0]
    s, k = leaf.shape[:2]
    flat = jax.tree_util.tree_map(
        lambda a: jnp.reshape(jnp.asarray(a), (s * k,) + a.shape[2:]), params
    )
    args = [
        jax.tree_util.tree_map(lambda a: jnp.repeat(jnp.asarray(a), k, axis=0), arg)
        for arg in per_seed
    ]
    out = jax.jit(jax.vmap(fn))(flat, *args)
    return jax.tree_util.tree_map(lambda a: np.asarray(a).reshape((s, k) + a.shape[1:]), out)


def pathology_score(effective_rank, n: int) -> np.ndarray:
    """The eNTK pathology score ``1 - erank(K) / n`` (float64 numpy, same shape).

    ``erank`` is the Roy--Vetterli effective rank of the eNTK on the ``n`` batch inputs
    (``diagnostics.kernel_effective_rank``, in ``[1, n]``), so the score lies in
    ``[0, 1 - 1/n]``: 0 for a kernel with a flat spectrum, near 1 for a kernel collapsed
    onto one direction. Chapter 4 fixed it before the run as the score by which the eNTK
    should rank checkpoints like the plasticity probe (§3.3's "diagnostic tool").
    """
    return 1.0 - np.asarray(effective_rank, dtype=np.float64) / float(n)


def kernel_summaries(kernels) -> dict:
    """``diagnostics.ntk_summary`` of every kernel of a stack.

    Args:
      kernels: ``(..., n, n)`` eNTKs (e.g. ``(S, K, n, n)``: seeds x checkpoints).
    Returns:
      dict ``name -> (...)`` numpy array for every ``ntk_summary`` key, plus
      ``"pathology_score"`` (:func:`pathology_score` of ``"effective_rank"``).
    """
    stack = jnp.asarray(kernels)
    lead, n = stack.shape[:-2], stack.shape[-1]
    out = jax.jit(jax.vmap(diagnostics.ntk_summary))(stack.reshape((-1, n, n)))
    res = {name: np.asarray(v).reshape(lead) for name, v in out.items()}
    res["pathology_score"] = pathology_score(res["effective_rank"], n)
    return res
