"""Loss-landscape curvature: sharpness (top Hessian eigenvalue) by power iteration.

Paper: Lyle et al. (2024) §3.2 ("Parameter norm growth": "parameter norm tends to
correlate with the sharpness as measured by the Hessian", Fig. 3 left).

Sharpness is ``lambda_max(H)``, the largest (algebraic) eigenvalue of the Hessian
``H = d^2 L / d theta^2`` of a scalar loss at ``params``. It is computed matrix-free with
Hessian-vector products ``Hv = jvp(grad L)(theta; v)`` (forward-over-reverse) and a fixed
number of power iterations from a seeded Gaussian start, so it is jit-able and
vmap-able over seeds (``jax.vmap(lambda p, k: sharpness(loss_of(p), ...))``).

Plain power iteration converges to the eigenvalue of largest *magnitude*, which is
negative when a negative eigenvalue dominates (away from minima). We therefore run a
second power iteration on ``H - lambda_a I`` (``lambda_a`` the first estimate); this
returns the other end of the spectrum. Together they give both ``lambda_max`` and
``lambda_min`` regardless of which dominates (cost: ``2 * num_iters`` HVPs).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

Array = jax.Array

__all__ = ["hvp", "hessian_extreme_eigenvalues", "hessian_top_eigenvalue", "sharpness"]


def hvp(loss_fn: Callable[[Any], Array], params: Any, v: Any) -> Any:
    """Hessian-vector product ``H(params) v`` of a scalar ``loss_fn(params)``.

    Args:
      loss_fn: ``params -> scalar``; params: pytree; v: pytree with the same structure.
    Returns:
      pytree like ``params``.
    """
    return jax.jvp(jax.grad(loss_fn), (params,), (v,))[1]


def hessian_extreme_eigenvalues(
    loss_fn: Callable[[Any], Array], params: Any, key: Array, num_iters: int = 50
) -> tuple[Array, Array]:
    """``(lambda_max, lambda_min)`` of the Hessian of ``loss_fn`` at ``params``.

    Phase 1: ``num_iters`` power iterations ``v <- Hv / ||Hv||`` from ``N(0, I)`` (drawn
    with ``key``); ``lambda_a = v^T H v`` is the eigenvalue of largest magnitude.
    Phase 2: ``num_iters`` power iterations on ``H - lambda_a I`` from a second Gaussian
    start, whose Rayleigh quotient ``v^T H v`` converges to the *other* end of the
    spectrum. Both phases run in one ``lax.fori_loop`` with a single HVP per iteration
    (``2 * num_iters + 2`` HVPs in total). Accuracy depends on the spectral gaps.

    Args:
      loss_fn: ``params -> scalar`` (close over the data batch).
      params: pytree.
      key: PRNG key for the start vectors.
      num_iters: iterations per phase (static).
    Returns:
      two scalars ``(lambda_max, lambda_min)``.
    """
    flat, unravel = ravel_pytree(params)
    grad_flat = lambda f: ravel_pytree(jax.grad(loss_fn)(unravel(f)))[0]
    # Linearize the gradient once: every matvec is then one tangent (HVP) pass only.
    _, hvp_lin = jax.linearize(grad_flat, flat)

    k1, k2 = jax.random.split(key)
    unit = lambda v: v / (jnp.linalg.norm(v) + 1e-30)
    v0 = unit(jax.random.normal(k1, flat.shape, flat.dtype))
    v1 = unit(jax.random.normal(k2, flat.shape, flat.dtype))
    n = num_iters

    def body(i, carry):
        v, lam_a, _ = carry
        w = hvp_lin(v)
        rho = jnp.vdot(v, w)  # Rayleigh quotient of H at the current (unit) v
        lam_a = jnp.where(i == n, rho, lam_a)
        shifted = unit(w - lam_a * v)
        v_next = jnp.where(i < n, unit(w), jnp.where(i == n, v1, shifted))
        return v_next, lam_a, rho

    _, lam_a, lam_b = jax.lax.fori_loop(
        0, 2 * n + 2, body, (v0, jnp.zeros((), flat.dtype), jnp.zeros((), flat.dtype))
    )
    return jnp.maximum(lam_a, lam_b), jnp.minimum(lam_a, lam_b)


def hessian_top_eigenvalue(
    loss_fn: Callable[[Any], Array], params: Any, key: Array, num_iters: int = 50
) -> Array:
    """Sharpness: the largest algebraic Hessian eigenvalue ``lambda_max`` (§3.2).

    Same arguments as ``hessian_extreme_eigenvalues``. Returns a scalar.
    """
    return hessian_extreme_eigenvalues(loss_fn, params, key, num_iters)[0]


sharpness = hessian_top_eigenvalue


def _converging_power_iteration(loss_fn, params, rtol: float, min_iters: int):
    """Shared by the ``*_converged`` estimators: ``(flat, hvp, phase)`` where ``flat`` is
    the raveled ``params`` ``(P,)``, ``hvp`` the linearised Hessian-vector product and
    ``phase(v0, shift, cap) -> (rho, rel)`` power iteration on ``H - shift I`` from the
    unit vector ``v0`` until the Rayleigh quotient ``rho`` (of ``H``) changes by less than
    ``rtol`` relative (at least ``min_iters``, at most ``cap`` iterations; ``cap`` may be
    a traced per-member value under ``vmap``); ``rel`` is its last relative change."""
    flat, unravel = ravel_pytree(params)
    grad_flat = lambda f: ravel_pytree(jax.grad(loss_fn)(unravel(f)))[0]
    _, hvp_lin = jax.linearize(grad_flat, flat)
    unit = lambda v: v / (jnp.linalg.norm(v) + 1e-30)
    zero = jnp.zeros((), flat.dtype)

    def phase(v0, shift, cap):
        def cond(c):
            i, _, _, rel = c
            return (i < cap) & ((i < min_iters) | (rel >= rtol))

        def body(c):
            i, v, rho_old, _ = c
            w = hvp_lin(v)
            rho = jnp.vdot(v, w)
            rel = jnp.abs(rho - rho_old) / (jnp.abs(rho) + 1e-30)
            return i + 1, unit(w - shift * v), rho, rel

        _, _, rho, rel = jax.lax.while_loop(cond, body, (0, v0, zero, zero + jnp.inf))
        return rho, rel

    return flat, hvp_lin, phase


def hessian_extreme_eigenvalues_converged(
    loss_fn: Callable[[Any], Array],
    params: Any,
    key: Array,
    rtol: float = 0.01,
    min_iters: int = 5,
    max_iters: int = 200,
) -> tuple[Array, Array, Array]:
    """``(lambda_max, lambda_min, rel_change)`` with a convergence rule (chapter 8).

    The same two phases as ``hessian_extreme_eigenvalues``, but each phase iterates until
    the Rayleigh quotient changes by less than ``rtol`` (relative) between two successive
    iterations (at least ``min_iters``, at most ``max_iters`` iterations per phase;
    ``lax.while_loop``, so under ``vmap`` every member runs until the slowest converges).
    ``rel_change`` is the larger of the two phases' last relative changes: below ``rtol``
    unless a phase hit ``max_iters``.
    """
    flat, _, phase = _converging_power_iteration(loss_fn, params, rtol, min_iters)
    k1, k2 = jax.random.split(key)
    unit = lambda v: v / (jnp.linalg.norm(v) + 1e-30)
    zero = jnp.zeros((), flat.dtype)
    lam_a, rel_a = phase(unit(jax.random.normal(k1, flat.shape, flat.dtype)), zero, max_iters)
    lam_b, rel_b = phase(unit(jax.random.normal(k2, flat.shape, flat.dtype)), lam_a, max_iters)
    return jnp.maximum(lam_a, lam_b), jnp.minimum(lam_a, lam_b), jnp.maximum(rel_a, rel_b)


__all__ += ["hessian_extreme_eigenvalues_converged"]


def hessian_top_eigenvalue_converged(
    loss_fn: Callable[[Any], Array],
    params: Any,
    key: Array,
    rtol: float = 0.01,
    min_iters: int = 5,
    max_iters: int = 200,
) -> tuple[Array, Array]:
    """``(lambda_max, rel_change)``: the sharpness of §3.2 (Fig. 3 left) with the
    convergence rule of :func:`hessian_extreme_eigenvalues_converged`, at about half
    its cost when the spectrum's largest-magnitude eigenvalue is positive (chapter 8).

    Phase 1 iterates ``v <- Hv / ||Hv||`` until the Rayleigh quotient ``lambda_a``
    changes by less than ``rtol``. If ``lambda_a >= 0`` it is the largest eigenvalue
    (``|lambda_a| >= |lambda_i|`` for all ``i`` gives ``lambda_a >= lambda_i``) and phase
    2 runs no iteration; only if ``lambda_a < 0`` does phase 2 iterate on
    ``H - lambda_a I`` (whose dominant eigenvector is that of ``lambda_max``). Under
    ``vmap`` the members with ``lambda_a >= 0`` stop after phase 1 (``lax.while_loop``
    with a per-member iteration cap). ``rel_change`` is the last relative change of the
    phase that gave ``lambda_max`` (below ``rtol`` unless that phase hit ``max_iters``).

    Args:
      loss_fn: ``params -> scalar`` (close over the data batch); params: pytree;
      key: PRNG key of the two Gaussian start vectors; rtol, min_iters, max_iters: the
        stopping rule per phase.
    Returns:
      two scalars ``(lambda_max, rel_change)``.
    """
    flat, _, phase = _converging_power_iteration(loss_fn, params, rtol, min_iters)
    k1, k2 = jax.random.split(key)
    unit = lambda v: v / (jnp.linalg.norm(v) + 1e-30)
    zero = jnp.zeros((), flat.dtype)
    lam_a, rel_a = phase(unit(jax.random.normal(k1, flat.shape, flat.dtype)), zero, max_iters)
    cap_b = jnp.where(lam_a < 0, max_iters, 0)
    lam_b, rel_b = phase(unit(jax.random.normal(k2, flat.shape, flat.dtype)), lam_a, cap_b)
    positive = lam_a >= 0
    return jnp.where(positive, lam_a, jnp.maximum(lam_a, lam_b)), jnp.where(positive, rel_a, rel_b)


__all__ += ["hessian_top_eigenvalue_converged"]
