"""Representation diagnostics: parameter/feature/logit norms, predictive entropy,
singular-value structure of the penultimate features, and the Fig. 15 projection of the
output onto the top singular direction of the features.

Paper: Lyle et al. (2024) §3.2 (parameter norm growth, Fig. 3 left), §3.3, App. E.1
(Fig. 14: singular values of the ``n x d`` feature matrix, ``n = 128``; Fig. 15: the
output projected on the top singular direction, compared with the final-layer bias),
App. E.2 (per-layer norm growth, Fig. 17), App. E.3 (Fig. 18: logit norm, feature norm,
predictive entropy).

All functions are pure ``jax.numpy``: jit-able and vmap-able over a leading seed axis.

Rank definitions (the literature uses the same words for different quantities):

* ``effective_rank`` — Roy & Vetterli (2007): ``exp(H(p))`` with
  ``p_k = sigma_k / sum_j sigma_j`` (normalised *singular values*, not their squares).
  An identity ``n x n`` gives ``n``, a rank-1 matrix gives 1.
* ``srank`` — Kumar et al. (2021), used in the RL plasticity literature (Lyle et al.
  2022): the smallest ``k`` with ``sum_{j<=k} sigma_j >= (1 - delta) sum_j sigma_j``,
  ``delta = 0.01`` ("number of singular values holding 99% of the mass", mass = the
  *sum of singular values*, not of their squares).
* ``stable_rank`` — numerical linear algebra: ``||A||_F^2 / ||A||_2^2 =
  sum sigma^2 / sigma_max^2``. Provided for completeness; it is *not* what RL papers
  call "srank".
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

Array = jax.Array

__all__ = [
    "parameter_norms",
    "global_parameter_norm",
    "feature_norm",
    "logit_norm",
    "predictive_entropy",
    "singular_values",
    "effective_rank",
    "srank",
    "stable_rank",
    "condition_number",
    "feature_spectrum_summary",
    "top_singular_direction_output",
]


def _path_name(path) -> str:
    parts = []
    for k in path:
        if isinstance(k, jax.tree_util.DictKey):
            parts.append(str(k.key))
        elif isinstance(k, jax.tree_util.GetAttrKey):
            parts.append(str(k.name))
        elif isinstance(k, jax.tree_util.SequenceKey):
            parts.append(str(k.idx))
        else:
            parts.append(str(k))
    return "/".join(parts)


def parameter_norms(params, squared: bool = False) -> dict:
    """L2 norm of the parameters of every module and of the whole network.

    A module is the path of a leaf without its last key, with a leading ``params``
    collection name dropped, e.g. ``{"params": {"Dense_0": {"kernel", "bias"}}}`` gives
    the key ``"Dense_0"`` with ``sqrt(||kernel||^2 + ||bias||^2)``. The key ``"total"``
    holds the global norm. Paper §3.2 (Fig. 3 left), E.2 (Fig. 17).

    Args:
      params: any pytree of arrays (Flax variables dict).
      squared: return squared norms.
    Returns:
      dict ``{module_name: (), ..., "total": ()}`` (with a leading seed axis under vmap).
    """
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    groups: dict = {}
    for path, leaf in leaves:
        keys = list(path[:-1]) if len(path) > 1 else list(path)
        name = _path_name(keys)
        if name.startswith("params/"):
            name = name[len("params/") :]
        groups[name] = groups.get(name, 0.0) + jnp.sum(jnp.square(leaf))
    total = sum(groups.values())
    groups["total"] = total
    if not squared:
        groups = {k: jnp.sqrt(v) for k, v in groups.items()}
    return groups


def global_parameter_norm(params) -> Array:
    """``sqrt(sum over all leaves of ||leaf||^2)``; scalar. Paper §3.2, Fig. 3 (left)."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(params)))


def feature_norm(features: Array) -> Array:
    """Mean over inputs of the L2 norm of the feature vector: ``E_x ||phi(x)||_2``.

    Args: features ``(n, d)``. Returns scalar. Paper E.3 (Fig. 18, "feature norm").
    """
    return jnp.mean(jnp.linalg.norm(features.reshape(features.shape[0], -1), axis=-1))


def logit_norm(logits: Array) -> Array:
    """Mean over inputs of the L2 norm of the output vector: ``E_x ||f(x)||_2``.

    Args: logits ``(n, C)``. Returns scalar. Paper E.3 (Fig. 18, "logit norm").
    """
    return jnp.mean(jnp.linalg.norm(logits.reshape(logits.shape[0], -1), axis=-1))


def predictive_entropy(logits: Array) -> Array:
    """Mean entropy (nats) of ``softmax(logits)``: ``E_x [-sum_c p_c log p_c]``.

    Args: logits ``(n, C)``. Returns scalar, in ``[0, log C]``. Paper §3.2 (Fig. 2 left),
    E.3 (Fig. 18).
    """
    logp = jax.nn.log_softmax(logits, axis=-1)
    return jnp.mean(-jnp.sum(jnp.exp(logp) * logp, axis=-1))


def singular_values(matrix: Array, center: bool = False) -> Array:
    """Singular values, descending, of an ``(n, d)`` matrix (e.g. penultimate features).

    Not centred by default: in E.1 the *top* singular direction is the one carrying the
    constant ("bias") component of the features, which centring would remove.

    Args:
      matrix: ``(n, d)``.
      center: subtract the column means first.
    Returns:
      ``(min(n, d),)``.
    """
    if jnp.ndim(matrix) != 2:
        raise ValueError(
            f"singular_values: matrix must be 2-D (n, d), got shape {jnp.shape(matrix)}; "
            f"for a seed axis use jax.vmap(singular_values)(matrix)"
        )
    m = matrix.reshape(matrix.shape[0], -1)
    if center:
        m = m - jnp.mean(m, axis=0, keepdims=True)
    return jnp.linalg.svd(m, compute_uv=False)


def effective_rank(sv: Array, eps: float = 1e-12) -> Array:
    """Effective rank of Roy & Vetterli (2007): ``exp(-sum_k p_k log p_k)``,
    ``p_k = sigma_k / sum_j sigma_j``.

    Args:
      sv: ``(k,)`` non-negative singular values (or eigenvalues of a PSD matrix).
    Returns:
      scalar in ``[1, k]`` (0 for an all-zero spectrum).
    """
    s = jnp.clip(sv, 0.0, None)
    tot = jnp.sum(s)
    p = s / jnp.where(tot > 0, tot, 1.0)
    h = -jnp.sum(jnp.where(p > eps, p * jnp.log(jnp.where(p > eps, p, 1.0)), 0.0))
    return jnp.where(tot > 0, jnp.exp(h), 0.0)


def srank(sv: Array, delta: float = 0.01) -> Array:
    """Number of singular values holding a ``1 - delta`` share of the singular-value sum
    (Kumar et al., 2021): ``min{k : sum_{j<=k} sigma_j >= (1 - delta) sum_j sigma_j}``.

    Args:
      sv: ``(k,)`` singular values (any order; sorted internally).
      delta: default 0.01 (the "99% of the mass" count).
    Returns:
      int32 scalar.
    """
    s = jnp.sort(jnp.clip(sv, 0.0, None))[::-1]
    c = jnp.cumsum(s)
    return jnp.sum(c < (1.0 - delta) * c[-1]).astype(jnp.int32) + 1


def stable_rank(sv: Array) -> Array:
    """Numerical stable rank ``sum sigma^2 / max sigma^2`` (not Kumar's srank). Scalar."""
    s2 = jnp.square(sv)
    m = jnp.max(s2)
    return jnp.sum(s2) / jnp.where(m > 0, m, 1.0)


def condition_number(sv: Array) -> Array:
    """``sigma_max / sigma_min`` over the given singular values (``inf`` if the smallest
    is 0). For an ``(n, d)`` feature matrix this uses all ``min(n, d)`` values. Scalar."""
    return jnp.max(sv) / jnp.min(sv)


def feature_spectrum_summary(features: Array, delta: float = 0.01) -> dict:
    """Spectrum summary of an ``(n, d)`` feature matrix (paper E.1, Fig. 14).

    Returns dict with ``singular_values`` ``(min(n,d),)``, ``sigma_max``,
    ``effective_rank``, ``srank`` (``delta``), ``stable_rank``, ``condition_number``,
    ``top_share`` (``sigma_1 / sum sigma``) and ``feature_norm``.
    """
    sv = singular_values(features)
    return {
        "singular_values": sv,
        "sigma_max": sv[0],
        "effective_rank": effective_rank(sv),
        "srank": srank(sv, delta),
        "stable_rank": stable_rank(sv),
        "condition_number": condition_number(sv),
        "top_share": sv[0] / jnp.sum(sv),
        "feature_norm": feature_norm(features),
    }


def top_singular_direction_output(
    features: Array, kernel: Array, bias: Optional[Array] = None
) -> dict:
    """Contribution of the top singular direction of the features to the output
    (paper E.1, Fig. 15).

    With the SVD ``F = U S V^T`` of the (uncentred) ``(n, d)`` feature matrix and top
    right-singular vector ``v1``, the projected features are ``F v1 v1^T`` and the
    projected output is ``F v1 v1^T W`` (no bias), ``W`` the final-layer kernel
    ``(d, C)``. The projection is invariant to the sign of ``v1``.

    Args:
      features: ``(n, d)`` penultimate features on the probe inputs.
      kernel: ``(d, C)`` final-layer kernel (a ``(d,)`` kernel is treated as ``C = 1``).
      bias: optional ``(C,)`` final-layer bias, returned for comparison.
    Returns:
      dict with ``per_input`` ``(n, C)`` projected outputs, ``mean`` ``(C,)`` and ``std``
      ``(C,)`` over inputs, ``full_mean`` ``(C,)`` the mean of the full output
      ``F W + b``, ``top_singular_value`` and ``bias`` ``(C,)`` (zeros if not given).
    """
    f = features.reshape(features.shape[0], -1)
    w = kernel if kernel.ndim == 2 else kernel[:, None]
    _, s, vt = jnp.linalg.svd(f, full_matrices=False)
    v1 = vt[0]
    proj = (f @ v1)[:, None] * v1[None, :]
    per_input = proj @ w
    b = jnp.zeros(w.shape[1], f.dtype) if bias is None else jnp.reshape(bias, (-1,))
    return {
        "per_input": per_input,
        "mean": jnp.mean(per_input, axis=0),
        "std": jnp.std(per_input, axis=0),
        "full_mean": jnp.mean(f @ w + b, axis=0),
        "top_singular_value": s[0],
        "bias": b,
    }
