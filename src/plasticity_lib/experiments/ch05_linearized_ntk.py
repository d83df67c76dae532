"""Chapter 5: the empirical NTK of a linearized network (Lyle et al. 2024, App. C).

Paper: App. C ("Neural tangent kernel for linearized networks"), the theoretical side
of §3.2's "zombie" (linearized) units, and the toy experiment of App. E.8 / Fig. 24
(an MLP whose parameters are all mapped to their absolute value, so that on
non-negative inputs every hidden unit starts linearized).

Notation (paper convention, inputs as column vectors)
----------------------------------------------------
A bias-free network with ``L`` weight matrices ``W^l`` of shape ``(d_l, d_{l-1})``
(``d_0 = d_in``, ``d_L = 1``, one scalar output) and, for the hidden layers
``l = 1..L-1``, per-unit slopes ``m^l`` (``(d_l,)``) of the activation; the output
layer is linear (``m^L = 1``). If every unit stays in one linear piece of its
activation on the inputs considered, the network computes

    f(x) = M^L W^L M^{L-1} W^{L-1} ... M^1 W^1 x,       M^l = diag(m^l).

With ``P_<k = M^{k-1} W^{k-1} ... M^1 W^1`` (``(d_{k-1}, d_0)``, ``P_<1 = I``),
``P_>k = M^L W^L ... M^{k+1} W^{k+1}`` (``(1, d_k)``, ``P_>L = 1``) and
``u_k = M^k P_>k^T`` (``(d_k,)``):

    grad_{W^k} f(x) = u_k (P_<k x)^T                          (d_k, d_{k-1})
    vec(grad_{W^k} f(x)) = A_k x,   A_k = P_<k (kron) u_k       (d_k d_{k-1}, d_0)
    A_k^T A_k = |u_k|^2 P_<k^T P_<k
    K(x, y) = x^T Sigma y,  Sigma = sum_k |u_k|^2 P_<k^T P_<k    (d_0, d_0)

(``vec`` stacks columns). The paper's App. C omits the factor ``M^k`` in ``u_k``
(its ``A_k[ij, i'] = M_>k[i] M_<k[j, i']``); :func:`closed_form_factors` with
``as_printed=True`` reproduces that version for comparison.

Code convention: arrays here hold inputs as *rows* (``x`` is ``(n, d_0)``), so the
kernel is ``K = X Sigma X^T`` and a layer computes ``h_l = phi(h_{l-1} @ W^l.T)``.

Everything in the algebra part is float64: the closed form in numpy, the autodiff side
with the library's eNTK (:func:`plasticity_lib.diagnostics.ntk.entk`, generic route)
inside a scoped ``jax.enable_x64(True)`` context, so that nothing leaks into the
float32 code that runs after it. Functions return numpy arrays / pandas frames.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Sequence

import numpy as np

from ..progress import progress_bar

__all__ = [
    "RANK_RTOL",
    "PATTERNS",
    "LinearizedConfig",
    "low_rank_inputs",
    "slope_pattern",
    "sign_constructed_weights",
    "nonlinear_weights",
    "mlp_apply",
    "realised_slopes",
    "closed_form_factors",
    "closed_form_entk",
    "closed_form_layer_kernels",
    "kronecker_A",
    "numerical_rank",
    "relative_error",
    "autodiff_entk",
    "autodiff_layer_kernels",
    "evaluate_linearized",
    "evaluate_nonlinear",
    "linearized_configs",
    "bottleneck_configs",
    "run_algebra",
    "spectra_frame",
    "algebra_statistics",
    "stationary_stream",
    "abs_params",
    "linearized_fractions",
    "unit_metrics_fn",
    "entk_effective_rank",
    "run_zombie_toy",
]

#: Numerical rank rule used throughout the chapter: the number of eigenvalues of a PSD
#: matrix (``K``, or the Gram matrix ``X X^T`` for ``rank X``) above
#: ``RANK_RTOL * lambda_max``. In float64 round-off leaves spurious eigenvalues at about
#: ``n * 1e-16 * lambda_max``; 1e-10 sits six orders above that.
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


# ----------------------------------------------------------------------------- inputs


def low_rank_inputs(rng: np.random.Generator, n: int, d_in: int, rank: int) -> np.ndarray:
    """Non-negative inputs of exact rank ``rank``: ``X = B C`` with ``B`` ``(n, rank)``
    and ``C`` ``(rank, d_in)`` of i.i.d. ``|N(0, 1)|`` entries. float64 ``(n, d_in)``;
    every row is non-zero (almost surely), so every unit of a sign-constructed network
    has a strictly signed preactivation."""
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
    """Per-unit slopes ``m^l`` ``(d_l,)`` for every hidden layer (see ``PATTERNS``)."""
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


def nonlinear_weights(rng: np.random.Generator, d_in: int, widths: Sequence[int]) -> list[np.ndarray]:
    """A standard (genuinely nonlinear) ReLU MLP: He-normal ``N(0, 2/fan_in)`` hidden
    weights, ``N(0, 1/fan_in)`` linear head; bias-free. ``[W^1, ..., W^L]``."""
    dims = [d_in, *widths]
    ws = [rng.standard_normal((dims[i + 1], dims[i])) * math.sqrt(2.0 / dims[i]) for i in range(len(widths))]
    ws.append(rng.standard_normal((1, dims[-1])) / math.sqrt(dims[-1]))
    return ws


def _act(activation: str, negative_slope: float):
    import jax

    if activation == "relu":
        return jax.nn.relu
    if activation == "leaky_relu":
        return lambda z: jax.nn.leaky_relu(z, negative_slope=negative_slope)
    raise ValueError(f"activation={activation!r}; choose 'relu' or 'leaky_relu'")


def mlp_apply(params, x, activation: str = "relu", negative_slope: float = 0.1):
    """Bias-free MLP ``h_l = phi(h_{l-1} @ W^l.T)``, linear head. ``params`` is the list
    ``[W^1, ..., W^L]`` (paper convention shapes); ``x`` ``(n, d_0)`` -> ``(n, 1)``.
    Pure ``jax.numpy`` (works in float32 or, inside ``jax.enable_x64``, float64)."""
    phi = _act(activation, negative_slope)
    h = x
    for w in params[:-1]:
        h = phi(h @ w.T)
    return h @ params[-1].T


def realised_slopes(weights, x: np.ndarray, activation: str, negative_slope: float = 0.1) -> list[np.ndarray]:
    """The slope ``phi'(z)`` of every hidden unit on every input: list of ``(n, d_l)``
    (numpy float64 forward pass). ReLU: 1 if ``z > 0`` else 0; leaky: 1 or the slope."""
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
    """``(P_lt, u)``: lists over ``k = 1..L`` of ``P_<k`` ``(d_{k-1}, d_0)`` and
    ``u_k = M^k P_>k^T`` ``(d_k,)`` (module docstring). ``as_printed=True`` drops the
    factor ``M^k`` (``u_k = P_>k^T``), as App. C's ``A_k`` does."""
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
    """Per-layer kernels ``K_k = |u_k|^2 (X P_<k^T)(X P_<k^T)^T``, ``(L, n, n)``."""
    x = np.asarray(x, np.float64)
    p_lt, u = closed_form_factors(weights, slopes, as_printed)
    return np.stack([(uk @ uk) * (x @ p.T) @ (x @ p.T).T for p, uk in zip(p_lt, u)])


def closed_form_entk(weights, slopes, x, as_printed: bool = False) -> np.ndarray:
    """``K(X, X) = X Sigma X^T`` with ``Sigma = sum_k |u_k|^2 P_<k^T P_<k``; ``(n, n)``."""
    x = np.asarray(x, np.float64)
    p_lt, u = closed_form_factors(weights, slopes, as_printed)
    sigma = sum((uk @ uk) * (p.T @ p) for p, uk in zip(p_lt, u))
    return x @ sigma @ x.T


def kronecker_A(p_lt_k: np.ndarray, u_k: np.ndarray) -> np.ndarray:
    """``A_k = P_<k (kron) u_k`` ``(d_k d_{k-1}, d_0)``: ``A_k[j d_k + i, i'] =
    u_k[i] P_<k[j, i']``, so that ``vec(grad_{W^k} f(x)) = A_k x`` with column-major
    ``vec`` (``vec(G) = G.T.ravel()``)."""
    return np.kron(p_lt_k, u_k[:, None])


# ------------------------------------------------------------------------------ ranks


def numerical_rank(k: np.ndarray, rtol: float = RANK_RTOL) -> int:
    """Number of eigenvalues of the (symmetrised) PSD matrix ``k`` above
    ``rtol * lambda_max``. For ``rank X`` pass the Gram matrix ``X X^T``."""
    k = np.asarray(k, np.float64)
    w = np.linalg.eigvalsh(0.5 * (k + k.T))
    top = w.max()
    if top <= 0:
        return 0
    return int(np.sum(w > rtol * top))


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b||_F / ||b||_F`` (``b`` the reference; 0 when both are zero)."""
    nb = np.linalg.norm(b)
    d = np.linalg.norm(np.asarray(a) - np.asarray(b))
    return float(d / nb) if nb > 0 else float(d)


# ---------------------------------------------------------------------------- autodiff


def autodiff_entk(weights, x, activation: str, negative_slope: float = 0.1) -> np.ndarray:
    """The eNTK of the *actual* network (its activation, not the slope pattern) by the
    library's generic autodiff route, in float64. ``(n, n)`` numpy."""
    import jax
    import jax.numpy as jnp

    from plasticity_lib.diagnostics import ntk

    with jax.enable_x64(True):
        params = [jnp.asarray(w, jnp.float64) for w in weights]
        apply = lambda p, xx: mlp_apply(p, xx, activation, negative_slope)
        k = ntk.entk(apply, params, jnp.asarray(x, jnp.float64), method="generic")
        out = np.asarray(k, np.float64)
    return out


def autodiff_layer_kernels(weights, x, activation: str, negative_slope: float = 0.1):
    """Autodiff per-example gradients in float64: returns ``(grads, K_layers)`` where
    ``grads[k]`` is ``(n, d_k, d_{k-1})`` (``grad_{W^k} f(x_i)``) and ``K_layers`` is
    ``(L, n, n)`` (the per-layer Gram matrices, summing to the eNTK)."""
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        params = [jnp.asarray(w, jnp.float64) for w in weights]
        xs = jnp.asarray(x, jnp.float64)
        f1 = lambda p, xi: mlp_apply(p, xi[None], activation, negative_slope)[0, 0]
        g = jax.vmap(jax.grad(f1), (None, 0))(params, xs)
        grads = [np.asarray(gk, np.float64) for gk in g]
    n = xs.shape[0]
    kl = np.stack([gk.reshape(n, -1) @ gk.reshape(n, -1).T for gk in grads])
    return grads, kl


# --------------------------------------------------------------------------- configs


@dataclasses.dataclass(frozen=True)
class LinearizedConfig:
    """One random network + input set. ``widths`` are the hidden widths (depth =
    ``len(widths)``); ``rank`` the rank of the inputs; ``seed`` feeds
    ``numpy.random.default_rng`` (see :meth:`inputs` and :meth:`build`)."""

    depth: int
    width: int
    pattern: str
    rank: int
    seed: int
    n: int = 48
    d_in: int = 24
    leaky_slope: float = 0.1
    dead_fraction: float = 0.5
    bottleneck_units: int = 1

    @property
    def widths(self) -> tuple:
        return (self.width,) * self.depth

    @property
    def activation(self) -> str:
        return "leaky_relu" if self.pattern == "leaky" else "relu"

    @property
    def bottleneck_layer(self) -> int:
        """The hidden layer (0-based) that is the bottleneck: the middle one."""
        return self.depth // 2 if self.depth > 1 else 0

    def inputs(self) -> np.ndarray:
        """The inputs ``(n, d_in)``: they depend only on ``(seed, rank, n, d_in)``, so
        every pattern, depth and width (and the nonlinear network) sees the same ``X``."""
        rng = np.random.default_rng([self.seed, self.rank, self.n, self.d_in])
        return low_rank_inputs(rng, self.n, self.d_in, self.rank)

    def build(self):
        """``(x, weights, slopes)`` of the linearized network."""
        x = self.inputs()
        rng = np.random.default_rng([self.seed, self.depth, self.width, self.rank, PATTERNS.index(self.pattern)])
        slopes = slope_pattern(
            rng, self.widths, self.pattern, self.leaky_slope, self.dead_fraction,
            self.bottleneck_units, self.bottleneck_layer,
        )
        weights = sign_constructed_weights(rng, self.d_in, slopes)
        return x, weights, slopes


def linearized_configs(depths, widths, patterns, input_ranks, seeds_per_cell, n, d_in,
                       leaky_slope=0.1, dead_fraction=0.5) -> list[LinearizedConfig]:
    """The full grid depth x width x pattern x input rank x seed (``seeds_per_cell``
    random draws of inputs, pattern and weights per cell)."""
    return [
        LinearizedConfig(depth, width, pattern, r, s, n, d_in, leaky_slope, dead_fraction)
        for depth, width, pattern, r, s in itertools.product(
            depths, widths, patterns, input_ranks, range(seeds_per_cell))
    ]


def bottleneck_configs(depths, width, bottleneck_units, rank, n, d_in, seed=0) -> list[LinearizedConfig]:
    """ReLU networks whose middle hidden layer keeps ``b`` live units, ``b`` in
    ``bottleneck_units`` (each ``< rank`` so the bottleneck is narrower than ``rank X``)."""
    bad = [b for b in bottleneck_units if b >= rank]
    if bad:
        raise ValueError(f"bottleneck_units {bad} must be < rank={rank} (the claim's premise)")
    return [
        LinearizedConfig(d, width, "bottleneck", rank, seed, n, d_in, bottleneck_units=b)
        for d, b in itertools.product(depths, bottleneck_units)
    ]


# ------------------------------------------------------------------------ evaluation


def evaluate_linearized(cfg: LinearizedConfig, keep_kernels: bool = False) -> dict:
    """All App. C checks for one linearized configuration (float64).

    Returns a dict with the configuration, ``pattern_holds`` (every unit in its
    designated linear piece on every input), the relative Frobenius errors of each
    derivation step against autodiff — ``err_forward`` (eq. 1: product of matrices vs
    the network), ``err_jacobian`` (eq. 2, corrected), ``err_vec`` (``A_k x`` vs the
    vectorised gradient), ``err_gram`` (``A_k^T A_k = |u_k|^2 P_<k^T P_<k``),
    ``err_entk`` (closed form vs the library eNTK), ``err_entk_printed`` (App. C's
    ``A_k`` without ``M^k``), ``err_layers`` (per-layer kernels) — and the numerical
    ranks ``rank_x``, ``rank_k``, ``rank_layers`` (per-layer kernels ``K_k``, ``k =
    1..L``), ``live`` (live units per hidden layer), ``live_min`` (the fewest),
    ``live_bottleneck``, ``layer_bound_excess`` (``max_k rank K_k - min(rank X, live
    units of the layers below k)``: <= 0 is the corrected bottleneck statement) and
    ``u1_norm`` (``|u_1|``; ``rank K = rank X`` whenever it is non-zero). With ``keep_kernels`` also ``K``, ``X`` arrays.
    """
    x, weights, slopes = cfg.build()
    act = cfg.activation
    real = realised_slopes(weights, x, act, cfg.leaky_slope)
    holds = all(np.array_equal(r, np.broadcast_to(m, r.shape)) for r, m in zip(real, slopes))

    # eq. (1): the network equals the product of matrices
    p_lt, u = closed_form_factors(weights, slopes)
    end_to_end = (p_lt[-1].T @ (weights[-1].T))[:, 0]  # f(x) = x . (W^L P_<L)
    import jax

    with jax.enable_x64(True):
        import jax.numpy as jnp

        f_net = np.asarray(mlp_apply([jnp.asarray(w) for w in weights], jnp.asarray(x), act, cfg.leaky_slope))[:, 0]
    err_forward = relative_error(x @ end_to_end, f_net)

    grads, k_layers_ad = autodiff_layer_kernels(weights, x, act, cfg.leaky_slope)
    err_jac, err_vec, err_gram = 0.0, 0.0, 0.0
    for k, (p, uk, g) in enumerate(zip(p_lt, u, grads)):
        closed = np.einsum("i,nj->nij", uk, x @ p.T)  # u_k (P_<k x)^T for every x
        err_jac = max(err_jac, relative_error(closed, g))
        a = kronecker_A(p, uk)
        vec_ad = np.transpose(g, (0, 2, 1)).reshape(g.shape[0], -1)  # column-major vec
        err_vec = max(err_vec, relative_error(x @ a.T, vec_ad))
        err_gram = max(err_gram, relative_error(a.T @ a, (uk @ uk) * p.T @ p))

    k_ad = autodiff_entk(weights, x, act, cfg.leaky_slope)
    k_cf = closed_form_entk(weights, slopes, x)
    k_pr = closed_form_entk(weights, slopes, x, as_printed=True)
    k_layers_cf = closed_form_layer_kernels(weights, slopes, x)
    live = [int(np.sum(m != 0)) for m in slopes]
    rank_x = numerical_rank(x @ x.T)
    rank_layers = [numerical_rank(kk) for kk in k_layers_ad]
    # corrected bottleneck statement: rank K_k <= min(rank X, live units of layers 1..k-1)
    bounds = [min([rank_x, *live[:k]]) for k in range(len(rank_layers))]
    out = dict(
        depth=cfg.depth, width=cfg.width, pattern=cfg.pattern, rank_in=cfg.rank, seed=cfg.seed,
        n=cfg.n, d_in=cfg.d_in, bottleneck_units=cfg.bottleneck_units if cfg.pattern == "bottleneck" else None,
        pattern_holds=bool(holds),
        err_forward=err_forward, err_jacobian=err_jac, err_vec=err_vec, err_gram=err_gram,
        err_entk=relative_error(k_cf, k_ad), err_entk_printed=relative_error(k_pr, k_ad),
        err_layers=relative_error(k_layers_cf, k_layers_ad),
        rank_x=rank_x, rank_k=numerical_rank(k_ad), rank_layers=rank_layers, live=live,
        layer_bound_excess=max(r - b for r, b in zip(rank_layers, bounds)),
        live_min=min(live), live_bottleneck=live[cfg.bottleneck_layer] if cfg.pattern == "bottleneck" else None,
        u1_norm=float(np.linalg.norm(u[0])),
    )
    if keep_kernels:
        out.update(K=k_ad, X=x, K_layers=k_layers_ad)
    return out


def evaluate_nonlinear(cfg: LinearizedConfig, keep_kernels: bool = False) -> dict:
    """The genuinely nonlinear counterpart of ``cfg``: the same inputs (same seed), a
    He-normal ReLU network of the same depth and width. Returns ``rank_x``,
    ``rank_k`` (library eNTK, float64), ``varying_fraction`` (fraction of hidden units
    whose slope changes across the inputs) and, with ``keep_kernels``, ``K``/``X``."""
    x = cfg.inputs()
    rng = np.random.default_rng([cfg.seed, cfg.depth, cfg.width, cfg.rank, 99])
    weights = nonlinear_weights(rng, cfg.d_in, cfg.widths)
    real = realised_slopes(weights, x, "relu")
    varying = np.concatenate([r.min(axis=0) != r.max(axis=0) for r in real])
    k = autodiff_entk(weights, x, "relu")
    out = dict(
        depth=cfg.depth, width=cfg.width, pattern="nonlinear", rank_in=cfg.rank, seed=cfg.seed,
        n=cfg.n, d_in=cfg.d_in, rank_x=numerical_rank(x @ x.T), rank_k=numerical_rank(k),
        varying_fraction=float(varying.mean()),
    )
    if keep_kernels:
        out.update(K=k, X=x)
    return out


def run_algebra(P, progress: bool = True) -> dict:
    """Run every float64 check of the chapter for the resolved profile ``P``.

    Uses the fields ``depths``, ``widths``, ``patterns``, ``input_ranks``,
    ``configs_per_cell``, ``n_inputs``, ``d_in``, ``leaky_slope``, ``dead_fraction``,
    ``bottleneck_depths``, ``bottleneck_width``, ``bottleneck_units``,
    ``bottleneck_rank``. Returns ``{"linearized", "nonlinear", "bottleneck"}``
    pandas DataFrames (one row per configuration; see :func:`evaluate_linearized`).
    """
    import pandas as pd

    lin_cfgs = linearized_configs(P.depths, P.widths, P.patterns, P.input_ranks, P.configs_per_cell,
                                  P.n_inputs, P.d_in, P.leaky_slope, P.dead_fraction)
    nl_cfgs = [c for c in lin_cfgs if c.pattern == lin_cfgs[0].pattern]
    bn_cfgs = bottleneck_configs(P.bottleneck_depths, P.bottleneck_width, P.bottleneck_units,
                                 P.bottleneck_rank, P.n_inputs, P.d_in)
    groups = {"linearized": (lin_cfgs, evaluate_linearized), "nonlinear": (nl_cfgs, evaluate_nonlinear),
              "bottleneck": (bn_cfgs, evaluate_linearized)}
    out = {}
    for name, (cfgs, fn) in groups.items():
        rows = []
        bar = progress_bar(len(cfgs), desc=f"{name} configurations", unit="config", enabled=progress)
        for c in cfgs:
            rows.append(fn(c))
            bar.update(1)
        bar.close()
        out[name] = pd.DataFrame(rows)
    return out


def spectra_frame(cfg: LinearizedConfig, patterns: Sequence[str] = ("zombie", "dead", "leaky")):
    """Normalised eNTK eigenvalues ``lambda_i / lambda_1`` (descending) of the
    linearized networks of ``cfg`` with each pattern and of its nonlinear counterpart
    (all on the same inputs ``cfg.inputs()``). Returns ``(DataFrame, rank_x)``,
    the frame with columns ``network``, ``index`` (1-based), ``eigenvalue``."""
    import pandas as pd

    rows = []
    rank_x = None
    for pat in patterns:
        c = dataclasses.replace(cfg, pattern=pat)
        r = evaluate_linearized(c, keep_kernels=True)
        rank_x = r["rank_x"]
        w = np.sort(np.linalg.eigvalsh(0.5 * (r["K"] + r["K"].T)))[::-1]
        for i, v in enumerate(w / w[0]):
            rows.append(dict(network=f"linearized ({pat})", index=i + 1, eigenvalue=v))
    r = evaluate_nonlinear(dataclasses.replace(cfg, pattern=patterns[0]), keep_kernels=True)
    w = np.sort(np.linalg.eigvalsh(0.5 * (r["K"] + r["K"].T)))[::-1]
    for i, v in enumerate(w / w[0]):
        rows.append(dict(network="nonlinear ReLU", index=i + 1, eigenvalue=v))
    return pd.DataFrame(rows), rank_x


# ------------------------------------------------------------------- Fig. 24 toy (E.8)


def stationary_stream(x, y):
    """A one-task "stream" (the true labels, every example in the training set), for
    ``train.train_stream`` with ``num_tasks=1``."""
    import jax.numpy as jnp

    from plasticity_lib import tasks

    xj, yj = jnp.asarray(x), jnp.asarray(y, jnp.int32)
    task = tasks.Task(xj, yj, jnp.ones(yj.shape[0], jnp.float32))
    return tasks.TaskStream(init=lambda key: task, next=lambda key, t, prev: prev)


def abs_params(params):
    """Fig. 24's initialisation: every parameter mapped to its absolute value (a params
    tree, with or without a leading seed axis). Passed to the engine as
    ``init_transform``, it maps each model's fresh parameters inside the compiled
    initialisation (``train.initial_params(network, seeds, x, init_transform=abs_params)``
    gives them)."""
    import jax
    import jax.numpy as jnp

    return jax.tree_util.tree_map(jnp.abs, params)


def linearized_fractions(network, params, x, activation: str = "relu") -> np.ndarray:
    """Fraction of linearized (zombie) units of every hidden layer on inputs ``x``
    (``diagnostics.units.linearized_unit_fraction``), for params with a leading seed
    axis. Returns ``(S, num_hidden_layers)``."""
    import jax
    import jax.numpy as jnp

    from plasticity_lib.diagnostics import units

    xj = jnp.asarray(x)

    def one(p):
        _, inter = network.apply_with_intermediates(p, xj)
        return units.linearized_unit_fraction(inter.preacts, activation)[0]

    return np.asarray(jax.jit(jax.vmap(one))(params))


def unit_metrics_fn(network, probe_x, activation: str = "relu"):
    """``metrics_fn`` for the engine: per-hidden-layer fractions of linearized and of
    dead units on a fixed probe batch, logged during training."""
    import jax.numpy as jnp

    from plasticity_lib.diagnostics import units

    probe = jnp.asarray(probe_x)

    def metrics(params, task, key):
        _, inter = network.apply_with_intermediates(params, probe)
        lin, _ = units.linearized_unit_fraction(inter.preacts, activation)
        dead, _ = units.dead_unit_fraction(inter.acts)
        return {"linearized_fraction": lin, "dead_fraction": dead}

    return metrics


def entk_effective_rank(network, params, x) -> np.ndarray:
    """Roy-Vetterli effective rank of the eNTK (library ``entk``, sum of the logits)
    on inputs ``x`` for params with a leading seed axis. ``(S,)`` (float32 model)."""
    import jax
    import jax.numpy as jnp

    from plasticity_lib.diagnostics import ntk

    xj = jnp.asarray(x)
    fn = jax.jit(jax.vmap(lambda p: ntk.kernel_effective_rank(ntk.entk(network.apply, p, xj))))
    return np.asarray(fn(params))


def _chunk_steps(steps: int, log_every: int) -> int:
    """Steps per compiled call: about a tenth of the run (a multiple of ``log_every``
    dividing ``steps``), so the engine's progress bar moves."""
    if steps % log_every:
        return steps  # the engine reports the mismatch
    windows = steps // log_every
    for d in range(max(1, windows // 10), windows + 1):
        if windows % d == 0:
            return d * log_every
    return steps


def run_zombie_toy(P, progress: bool = True) -> dict:
    """Fig. 24: an MLP on an MNIST subset with its true labels and non-negative
    (uncentred) inputs, trained from a normal initialisation and from the same
    initialisation with every parameter mapped to ``|.|``.

    Profile fields: ``dataset``, ``n_train``, ``width``, ``depth``, ``batch_size``,
    ``learning_rate``, ``steps``, ``log_every``, ``seeds``, ``probe_size``,
    ``allow_fallback``. Both runs use the same seeds, hence (engine key scheme) the same
    minibatch sequence: the comparison is paired seed by seed.

    Returns a dict: ``source`` (the dataset that ran), ``network``, ``runs``
    (``{"normal": RunResult, "abs": RunResult}``), ``init_linearized``
    (``{name: (S, L)}`` on the whole training subset), ``init_linearized_probe`` (the
    same on the probe batch used by the logged metrics), ``entk_erank``
    (``{name: {"init": (S,), "final": (S,)}}`` on ``probe_size`` inputs).
    """
    from plasticity_lib import data, models, train

    # Fig. 24 needs non-negative inputs (pixels / 255 in [0, 1], not centred): with them
    # and all-positive weights every ReLU unit starts on its identity piece.
    ds = data.load_dataset(P.dataset, n=P.n_train, seed=0, flatten=True, center=False,
                           allow_fallback=P.allow_fallback)
    x = np.asarray(ds.x, np.float32)
    y = np.asarray(ds.y)
    network = models.make_network(models.ModelConfig(
        arch="mlp", depth=P.depth, width=P.width, activation="relu", norm="none",
        num_outputs=int(ds.num_classes)))
    cfg = train.TrainConfig(optimizer="adam", learning_rate=P.learning_rate, batch_size=P.batch_size, loss="xent")
    seeds = list(range(P.seeds))
    stream = stationary_stream(x, y)
    probe = x[: P.probe_size]
    # The engine's initialisation, as is or with every parameter mapped to |.| (inside the
    # compiled initialisation); the parameters it started from are kept for the diagnostics.
    transforms = {"normal": None, "abs": abs_params}
    out = {"source": ds.source, "network": network, "runs": {}, "init_linearized": {},
           "init_linearized_probe": {}, "entk_erank": {}}
    metrics = unit_metrics_fn(network, probe)
    for name, transform in transforms.items():
        res = train.train_stream(
            network, cfg, stream, seeds, num_tasks=1, steps_per_task=P.steps, log_every=P.log_every,
            metrics_fn=metrics, init_transform=transform, keep_initial_params=True, progress=progress,
            desc=f"{name} init", chunk_steps=_chunk_steps(P.steps, P.log_every))
        p0 = res.initial_params
        out["init_linearized"][name] = linearized_fractions(network, p0, x)
        out["init_linearized_probe"][name] = linearized_fractions(network, p0, probe)
        out["runs"][name] = res
        out["entk_erank"][name] = {
            "init": entk_effective_rank(network, p0, probe),
            "final": entk_effective_rank(network, res.final_params, probe),
        }
    return out


def algebra_statistics(alg: dict) -> dict:
    """The chapter's claim statistics from :func:`run_algebra`'s frames.

    Keys: ``n_linearized`` (linearized configurations incl. bottlenecks),
    ``pattern_share`` (share whose slope pattern holds on every input),
    ``max_err_entk``, ``max_err_steps`` (largest error of any derivation step),
    ``max_err_printed_min``/``median_err_printed`` (App. C's printed ``A_k``, patterns with
    non-unit slopes), ``rank_excess`` (max ``rank K - rank X``), ``rank_equal_share``
    (share with ``rank K == rank X``), ``n_dead`` / ``dead_excess`` (configurations
    with fewer live units in some layer than ``rank X``; max ``rank K - live_min``),
    ``layer_bound_excess`` (max over those of the corrected per-layer statement),
    ``n_nonlinear`` / ``nonlinear_min_excess`` (min ``rank K - rank X``) and
    ``nonlinear_varying`` (mean share of units whose slope varies over the inputs).
    """
    import pandas as pd

    lin = pd.concat([alg["linearized"], alg["bottleneck"]], ignore_index=True)
    nl = alg["nonlinear"]
    dead = lin[lin.live_min < lin.rank_x]
    nonunit = lin[lin.pattern != "zombie"]
    steps = ["err_forward", "err_jacobian", "err_vec", "err_gram", "err_entk", "err_layers"]
    return dict(
        n_linearized=int(len(lin)),
        pattern_share=float(lin.pattern_holds.mean()),
        max_err_entk=float(lin.err_entk.max()),
        max_err_steps=float(lin[steps].to_numpy().max()),
        min_err_printed=float(nonunit.err_entk_printed.min()) if len(nonunit) else float("nan"),
        median_err_printed=float(nonunit.err_entk_printed.median()) if len(nonunit) else float("nan"),
        rank_excess=int((lin.rank_k - lin.rank_x).max()),
        rank_equal_share=float((lin.rank_k == lin.rank_x).mean()),
        n_dead=int(len(dead)),
        dead_excess=int((dead.rank_k - dead.live_min).max()) if len(dead) else None,
        layer_bound_excess=int(dead.layer_bound_excess.max()) if len(dead) else None,
        n_nonlinear=int(len(nl)),
        nonlinear_min_excess=int((nl.rank_k - nl.rank_x).min()),
        nonlinear_varying=float(nl.varying_fraction.mean()),
    )
