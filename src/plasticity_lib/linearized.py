"""The NTK of a linearized network, in closed form (Lyle et al. 2024, App. C).

A ReLU unit whose preactivation is positive on every input is the identity on those
inputs (a *linearized* or "zombie" unit, §3.2); a network all of whose units keep one
linear piece of their activation is locally a product of matrices. App. C derives its
empirical NTK (eNTK) in closed form and concludes that its rank cannot exceed the rank
of the inputs. This module holds that closed form, the networks that realise it, and
the float64 autodiff reference it is checked against.

Notation (paper convention, inputs as column vectors)
----------------------------------------------------
A bias-free network with ``L`` weight matrices ``W^l`` of shape ``(d_l, d_{l-1})``
(``d_0 = d_in``, ``d_L = 1``, one scalar output) and, for the hidden layers
``l = 1..L-1``, per-unit slopes ``m^l`` (``(d_l,)``) of the activation; the output
layer is linear (``m^L = 1``). If every unit stays in one linear piece of its
activation on the inputs considered, the network computes (App. C, eq. 1)

    f(x) = M^L W^L M^{L-1} W^{L-1} ... M^1 W^1 x,       M^l = diag(m^l).

With ``P_<k = M^{k-1} W^{k-1} ... M^1 W^1`` (``(d_{k-1}, d_0)``, ``P_<1 = I``),
``P_>k = M^L W^L ... M^{k+1} W^{k+1}`` (``(1, d_k)``, ``P_>L = 1``) and
``u_k = M^k P_>k^T`` (``(d_k,)``):

    grad_{W^k} f(x) = u_k (P_<k x)^T                          (d_k, d_{k-1})   eq. 2
    vec(grad_{W^k} f(x)) = A_k x,   A_k = P_<k (kron) u_k       (d_k d_{k-1}, d_0)
    A_k^T A_k = |u_k|^2 P_<k^T P_<k
    K(x, y) = x^T Sigma y,  Sigma = sum_k |u_k|^2 P_<k^T P_<k    (d_0, d_0)

(``vec`` stacks columns). App. C omits the factor ``M^k`` in ``u_k`` (its
``A_k[ij, i'] = M_>k[i] M_<k[j, i']``); ``as_printed=True`` reproduces that version.

Code convention: arrays hold inputs as *rows* (``x`` is ``(n, d_0)``), so the kernel is
``K = X Sigma X^T`` and a layer computes ``h_l = phi(h_{l-1} @ W^l.T)``. Weights are
lists ``[W^1, ..., W^L]`` of numpy arrays. The closed form is numpy float64; the
autodiff side (:func:`autodiff_entk`, :func:`autodiff_gradients`) runs inside a scoped
``jax.enable_x64(True)``, so nothing leaks into the float32 code that runs after it.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = [
    "RANK_RTOL",
    "PATTERNS",
    "low_rank_inputs",
    "slope_pattern",
    "sign_constructed_weights",
    "he_normal_weights",
    "bias_free_mlp",
    "realised_slopes",
    "closed_form_factors",
    "closed_form_entk",
    "closed_form_layer_kernels",
    "vectorised_gradient_operator",
    "numerical_rank",
    "relative_error",
    "autodiff_entk",
    "autodiff_gradients",
    "layer_kernels",
]

#: Numerical rank rule: the number of eigenvalues of a PSD matrix (``K``, or the Gram
#: matrix ``X X^T`` for ``rank X``) above ``RANK_RTOL * lambda_max``. In float64
#: round-off leaves spurious eigenvalues at about ``n * 1e-16 * lambda_max``; 1e-10 sits
#: six orders above that.
RANK_RTOL = 1e-10

#: Slope patterns of the linearized networks (all hidden layers):
#: ``zombie``: ReLU, every unit on its identity piece (slope 1);
#: ``dead``: ReLU, each unit dead (slope 0) with probability ``dead_fraction`` (at
#: least one live unit per layer), the others slope 1;
#: ``leaky``: leaky ReLU, each unit on its negative piece (slope ``leaky_slope``) with
#: probability 1/2, the others slope 1;
#: ``bottleneck``: ReLU, one hidden layer keeps exactly ``bottleneck_units`` live units,
#: every other unit slope 1.
PATTERNS = ("zombie", "dead", "leaky", "bottleneck")

ACTIVATIONS = ("relu", "leaky_relu")


def x64():
    """A scoped float64 context: ``jax.enable_x64(True)`` (jax >= 0.8), or the
    ``jax.experimental.enable_x64()`` it replaced (jax 0.7, e.g. Colab's)."""
    import jax

    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64

    return enable_x64()


def _check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r}; choose one of {ACTIVATIONS}")


# ----------------------------------------------------------------------------- inputs


def low_rank_inputs(rng: np.random.Generator, n: int, d_in: int, rank: int) -> np.ndarray:
    """Non-negative inputs of exact rank ``rank``: ``X = B C``.

    ``B`` ``(n, rank)`` and ``C`` ``(rank, d_in)`` have i.i.d. ``|N(0, 1)|`` entries
    (drawn in that order from ``rng``). Returns float64 ``(n, d_in)``; every row is
    non-zero (almost surely), so every unit of a :func:`sign_constructed_weights`
    network has a strictly signed preactivation. Non-negative inputs lie in one cone,
    the only way a unit can keep one linear piece on all of them (App. C's premise).
    """
    if not 1 <= rank <= min(n, d_in):
        raise ValueError(f"rank={rank} must be in [1, min(n, d_in)] = [1, {min(n, d_in)}]")
    b = np.abs(rng.standard_normal((n, rank)))
    c = np.abs(rng.standard_normal((rank, d_in)))
    return b @ c


# --------------------------------------------------------------------------- networks


def slope_pattern(
    rng: np.random.Generator,
    widths: Sequence[int],
    pattern: str,
    leaky_slope: float = 0.1,
    dead_fraction: float = 0.5,
    bottleneck_units: int = 1,
    bottleneck_layer: int = 0,
) -> list[np.ndarray]:
    """Per-unit slopes ``m^l`` ``(d_l,)`` of every hidden layer ``l`` (``widths[l]``
    units) for one of :data:`PATTERNS`; ``bottleneck_layer`` is 0-based."""
    if pattern not in PATTERNS:
        raise ValueError(f"pattern={pattern!r}; choose one of {PATTERNS}")
    out = []
    for li, w in enumerate(widths):
        m = np.ones(w)
        if pattern == "dead":
            dead = rng.random(w) < dead_fraction
            if dead.all():
                dead[rng.integers(w)] = False
            m[dead] = 0.0
        elif pattern == "leaky":
            m[rng.random(w) < 0.5] = leaky_slope
        elif pattern == "bottleneck" and li == bottleneck_layer:
            if not 1 <= bottleneck_units <= w:
                raise ValueError(f"bottleneck_units={bottleneck_units} must be in [1, {w}]")
            m[:] = 0.0
            m[rng.choice(w, bottleneck_units, replace=False)] = 1.0
        out.append(m)
    return out


def sign_constructed_weights(
    rng: np.random.Generator, d_in: int, slopes: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Weights ``[W^1, ..., W^L]`` (``(d_l, d_{l-1})``) of a bias-free ReLU / leaky-ReLU
    network that realises the slope pattern ``slopes`` on *every* non-negative input.

    A unit with slope 1 must sit on the positive piece, any other slope (0: dead ReLU,
    ``alpha``: leaky negative piece) on the negative one; call that sign ``s_u``. If the
    ``j``-th input of the layer has the same sign ``sigma_j`` on every input (true for
    non-negative network inputs, and by induction for every layer), the weights
    ``W_uj = s_u sigma_j |G_uj|`` give ``z_u = s_u sum_j |G_uj| |h_j|``: strictly of sign
    ``s_u`` whenever ``h != 0``. ``G_uj ~ N(0, 1) / fan_in`` (keeps positive signals
    O(1)); the linear head is ``N(0, 1/fan_in)``.
    """
    sigma = np.ones(d_in)
    weights = []
    for m in slopes:
        s = np.where(m == 1.0, 1.0, -1.0)
        g = np.abs(rng.standard_normal((m.shape[0], sigma.shape[0]))) / sigma.shape[0]
        weights.append(g * s[:, None] * np.where(sigma == 0, 1.0, sigma)[None, :])
        sigma = np.where(m == 1.0, 1.0, np.where(m == 0.0, 0.0, -1.0))
    fan = sigma.shape[0]
    weights.append(rng.standard_normal((1, fan)) / math.sqrt(fan))
    return weights


def he_normal_weights(
    rng: np.random.Generator, d_in: int, widths: Sequence[int]
) -> list[np.ndarray]:
    """A standard (genuinely nonlinear) bias-free ReLU MLP: He-normal ``N(0, 2/fan_in)``
    hidden weights, ``N(0, 1/fan_in)`` linear head. ``[W^1, ..., W^L]``."""
    dims = [d_in, *widths]
    ws = [
        rng.standard_normal((dims[i + 1], dims[i])) * math.sqrt(2.0 / dims[i])
        for i in range(len(widths))
    ]
    ws.append(rng.standard_normal((1, dims[-1])) / math.sqrt(dims[-1]))
    return ws


def bias_free_mlp(weights, x, activation: str = "relu", negative_slope: float = 0.1):
    """The network of App. C: ``h_l = phi(h_{l-1} @ W^l.T)``, linear head.

    ``weights`` is the list ``[W^1, ..., W^L]`` (paper-convention shapes), ``x``
    ``(n, d_0)``; returns ``(n, 1)``. Pure ``jax.numpy`` (float32, or float64 inside
    ``jax.enable_x64``), so ``jax.grad`` differentiates it.
    """
    import jax

    _check_activation(activation)
    if activation == "relu":
        phi = jax.nn.relu
    else:
        phi = lambda z: jax.nn.leaky_relu(z, negative_slope=negative_slope)  # noqa: E731
    h = x
    for w in weights[:-1]:
        h = phi(h @ w.T)
    return h @ weights[-1].T


def realised_slopes(
    weights, x: np.ndarray, activation: str, negative_slope: float = 0.1
) -> list[np.ndarray]:
    """The slope ``phi'(z)`` of every hidden unit on every input: list of ``(n, d_l)``
    (numpy float64 forward pass). ReLU: 1 if ``z > 0`` else 0; leaky: 1 or the slope."""
    _check_activation(activation)
    h = np.asarray(x, np.float64)
    out = []
    for w in weights[:-1]:
        z = h @ w.T
        if activation == "relu":
            m = (z > 0).astype(np.float64)
            h = np.maximum(z, 0.0)
        else:
            m = np.where(z > 0, 1.0, negative_slope)
            h = np.where(z > 0, z, negative_slope * z)
        out.append(m)
    return out


# -------------------------------------------------------------------------- closed form


def closed_form_factors(weights, slopes, as_printed: bool = False):
    """The factors of App. C's closed form: ``(P_lt, u)``.

    Lists over ``k = 1..L`` of ``P_<k`` ``(d_{k-1}, d_0)`` and ``u_k = M^k P_>k^T``
    ``(d_k,)`` (module docstring) for ``weights`` ``[W^1, ..., W^L]`` and the hidden
    layers' ``slopes`` ``[m^1, ..., m^{L-1}]``. ``as_printed=True`` drops the factor
    ``M^k`` (``u_k = P_>k^T``), as App. C's ``A_k`` does.
    """
    w = [np.asarray(a, np.float64) for a in weights]
    L = len(w)
    ms = [np.asarray(m, np.float64) for m in slopes] + [np.ones(w[-1].shape[0])]
    if len(ms) != L:
        raise ValueError(f"{len(slopes)} slope vectors for {L} weight matrices; need L-1")
    p_lt = [np.eye(w[0].shape[1])]
    for k in range(L - 1):
        p_lt.append(ms[k][:, None] * (w[k] @ p_lt[-1]))
    p_gt = [None] * L
    p_gt[L - 1] = np.ones((1, 1))
    for k in range(L - 2, -1, -1):
        p_gt[k] = (p_gt[k + 1] * ms[k + 1][None, :]) @ w[k + 1]
    u = [p_gt[k][0] * (1.0 if as_printed else ms[k]) for k in range(L)]
    return p_lt, u


def closed_form_layer_kernels(weights, slopes, x, as_printed: bool = False) -> np.ndarray:
    """Per-layer kernels ``K_k = |u_k|^2 (X P_<k^T)(X P_<k^T)^T``, ``(L, n, n)``; they
    sum to :func:`closed_form_entk`."""
    x = np.asarray(x, np.float64)
    p_lt, u = closed_form_factors(weights, slopes, as_printed)
    return np.stack([(uk @ uk) * (x @ p.T) @ (x @ p.T).T for p, uk in zip(p_lt, u)])


def closed_form_entk(weights, slopes, x, as_printed: bool = False) -> np.ndarray:
    """App. C's eNTK ``K(X, X) = X Sigma X^T`` with ``Sigma = sum_k |u_k|^2 P_<k^T P_<k``.

    ``x`` ``(n, d_0)`` (inputs as rows) -> ``(n, n)`` float64.
    """
    x = np.asarray(x, np.float64)
    p_lt, u = closed_form_factors(weights, slopes, as_printed)
    sigma = sum((uk @ uk) * (p.T @ p) for p, uk in zip(p_lt, u))
    return x @ sigma @ x.T


def vectorised_gradient_operator(p_below: np.ndarray, u: np.ndarray) -> np.ndarray:
    """App. C's ``A_k = P_<k (kron) u_k``, ``(d_k d_{k-1}, d_0)``.

    ``A_k[j d_k + i, i'] = u_k[i] P_<k[j, i']``, so that ``vec(grad_{W^k} f(x)) = A_k x``
    with column-major ``vec`` (``vec(G) = G.T.ravel()``). ``p_below`` is ``P_<k``
    ``(d_{k-1}, d_0)``, ``u`` is ``u_k`` ``(d_k,)``.
    """
    return np.kron(p_below, u[:, None])


# ------------------------------------------------------------------------------ ranks


def numerical_rank(k: np.ndarray, rtol: float = RANK_RTOL) -> int:
    """Number of eigenvalues of the (symmetrised) PSD matrix ``k`` ``(n, n)`` above
    ``rtol * lambda_max`` (``numpy.linalg.matrix_rank`` with ``hermitian=True``). For
    ``rank X`` pass the Gram matrix ``X X^T``."""
    k = np.asarray(k, np.float64)
    return int(np.linalg.matrix_rank(0.5 * (k + k.T), rtol=rtol, hermitian=True))


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b||_F / ||b||_F`` (``b`` the reference; ``||a - b||_F`` when ``b = 0``)."""
    nb = np.linalg.norm(b)
    d = np.linalg.norm(np.asarray(a) - np.asarray(b))
    return float(d / nb) if nb > 0 else float(d)


# ---------------------------------------------------------------------------- autodiff


def autodiff_entk(weights, x, activation: str, negative_slope: float = 0.1) -> np.ndarray:
    """The eNTK of the *actual* network (its activation, not a slope pattern) by the
    library's generic autodiff route (``diagnostics.ntk.entk``), in float64.

    ``x`` ``(n, d_0)`` -> ``(n, n)`` numpy float64.
    """
    import jax.numpy as jnp

    from plasticity_lib.diagnostics import ntk

    _check_activation(activation)
    with x64():
        params = [jnp.asarray(w, jnp.float64) for w in weights]

        def apply(p, xx):
            return bias_free_mlp(p, xx, activation, negative_slope)

        k = ntk.entk(apply, params, jnp.asarray(x, jnp.float64), method="generic")
        out = np.asarray(k, np.float64)
    return out


def autodiff_gradients(weights, x, activation: str, negative_slope: float = 0.1):
    """Per-example gradients ``grad_{W^k} f(x_i)`` by ``jax.vmap(jax.grad)``, in float64.

    Returns a list over ``k = 1..L`` of ``(n, d_k, d_{k-1})`` numpy arrays.
    """
    import jax
    import jax.numpy as jnp

    _check_activation(activation)
    with x64():
        params = [jnp.asarray(w, jnp.float64) for w in weights]
        xs = jnp.asarray(x, jnp.float64)

        def f_one(p, xi):
            return bias_free_mlp(p, xi[None], activation, negative_slope)[0, 0]

        g = jax.vmap(jax.grad(f_one), (None, 0))(params, xs)
        grads = [np.asarray(gk, np.float64) for gk in g]
    return grads


def layer_kernels(grads) -> np.ndarray:
    """Per-layer Gram matrices ``K_k[i, j] = <grads[k][i], grads[k][j]>`` of per-example
    gradients (list of ``(n, ...)``) -> ``(L, n, n)``; their sum is the eNTK."""
    n = grads[0].shape[0]
    return np.stack([gk.reshape(n, -1) @ gk.reshape(n, -1).T for gk in grads])
