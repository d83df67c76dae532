"""Unit-level diagnostics: dead, dormant, linearized ("zombie") and saturated units,
same-direction gradient updates and preactivation statistics.

Paper: Lyle et al. (2024), §3.2 ("Linearization and preactivation distribution shift"),
Fig. 2 (dead units and "gradients with negative dot product with *all* incoming
features" after a task change), App. E.3 (death of a ReLU neuron, Fig. 18) and App. E.8
(unit linearization, Fig. 23).

Conventions
-----------
* A *layer array* is ``(batch, units)``; more generally ``(..., units)``: every axis but
  the last indexes inputs (for a conv layer pass ``(batch, H, W, channels)`` or
  ``(batch * H * W, channels)`` to treat a channel as one unit, as Sokar et al. do).
* Per-unit functions return a boolean or float array of shape ``(units,)``.
* ``*_fraction`` functions take a sequence of layer arrays (e.g.
  ``Intermediates.acts``) and return ``(per_layer, total)``: a float32 ``(L,)`` array
  of per-layer fractions and the scalar fraction over all units of all layers
  (layers weighted by their width).
* Everything is a pure ``jax.numpy`` function: jit-able, and vmap-able over a leading
  seed axis (``jax.vmap(dead_unit_fraction)(acts_with_seed_axis)``). Activation names
  and thresholds that change the computation's structure are static Python values.

Definitions chosen where the literature disagrees
-------------------------------------------------
* **Dead** (Lin et al., 2016; the paper's Fig. 2): the unit's *activation* is zero
  (``|h| <= atol``, default exactly zero) on every input of the probe batch. This is the
  ReLU-family notion; it needs no threshold.
* **Dormant** (Sokar et al., 2023, "ReDo"): score
  ``s_i = E_x|h_i(x)| / ((1/H) sum_j E_x|h_j(x)|)`` and the unit is dormant when
  ``s_i <= tau``. Sokar et al. use ``tau = 0`` (then dormant = dead) and
  ``tau in {0.025, 0.1}``; the default here is ``tau = 0.025``. If every unit of the
  layer has zero mean |activation| all units are dormant (score defined as 0).
* **Linearized / zombie** (§3.2, E.8): the unit acts as a linear map on the probe batch.
  For piecewise-linear activations this is exact: ``relu``: every preactivation ``> 0``
  (the all-negative case is *dead*, counted separately); ``leaky_relu`` and ``abs``:
  every preactivation of one strict sign. For smooth activations (``gelu``, ``silu``,
  ``tanh``, ``sigmoid``, ``elu``, ``softplus``) there is no exact notion; we use the
  spread of the slope over the batch relative to the activation's whole slope range,
  ``r_i = (max_x phi'(z_i(x)) - min_x phi'(z_i(x))) / (sup phi' - inf phi')``, and call
  the unit linearized when ``r_i <= threshold`` (default 0.1) *and* it is not
  saturated (below). The range (not the std) is used so that the smooth criterion
  reduces to the exact one for piecewise-linear activations (there ``r_i = 0`` iff all
  preactivations lie in one linear piece).
* **Saturated** (smooth analogue of dead; "a tanh with very large preactivations"):
  ``max_x |phi'(z_i(x))| <= threshold * sup|phi'|``: the unit passes (almost) no
  gradient on any input. For ``relu`` this is "all preactivations <= 0".
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

__all__ = [
    "ACTIVATIONS",
    "activation_slope",
    "dead_units",
    "dormant_scores",
    "dormant_units",
    "linearized_units",
    "saturated_units",
    "slope_spread",
    "layer_fractions",
    "dead_unit_fraction",
    "dormant_unit_fraction",
    "linearized_unit_fraction",
    "saturated_unit_fraction",
    "preactivation_update",
    "same_direction_units",
    "same_direction_fraction",
    "weight_gradient_from_preact_grads",
    "preactivation_stats",
    "preactivation_stats_per_layer",
]

# name -> (function, inf phi', sup phi', piecewise-linear?)
# Slope bounds measured on a fine grid (|z| <= 30); for gelu the tanh approximation
# (jax/flax default) and the exact erf form agree to 1e-4.
ACTIVATIONS = {
    "relu": (jax.nn.relu, 0.0, 1.0, True),
    "leaky_relu": (jax.nn.leaky_relu, 0.01, 1.0, True),
    "abs": (jnp.abs, -1.0, 1.0, True),
    "identity": (lambda z: z, 1.0, 1.0, True),
    "gelu": (jax.nn.gelu, -0.12899, 1.12899, False),
    "silu": (jax.nn.silu, -0.09984, 1.09984, False),
    "swish": (jax.nn.silu, -0.09984, 1.09984, False),
    "tanh": (jnp.tanh, 0.0, 1.0, False),
    "sigmoid": (jax.nn.sigmoid, 0.0, 0.25, False),
    "elu": (jax.nn.elu, 0.0, 1.0, False),
    "softplus": (jax.nn.softplus, 0.0, 1.0, False),
}


def _check_activation(activation: str):
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; supported: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[activation]


def _flat_units(x: Array) -> Array:
    """``(..., units) -> (inputs, units)``."""
    x = jnp.asarray(x)
    if x.ndim == 1:
        return x[None, :]
    return x.reshape(-1, x.shape[-1])


def activation_slope(preacts: Array, activation: str) -> Array:
    """Elementwise slope ``phi'(z)`` of a named activation.

    Args:
      preacts: any shape.
      activation: a key of ``ACTIVATIONS`` (static).
    Returns:
      array of the same shape. For relu the slope at exactly 0 is taken as 0.
    """
    fn, _, _, _ = _check_activation(activation)
    z = jnp.asarray(preacts)
    _, slope = jax.jvp(fn, (z,), (jnp.ones_like(z),))
    return slope


# --------------------------------------------------------------------------- dead/dormant


def dead_units(acts: Array, atol: float = 0.0) -> Array:
    """Dead units: activation is (numerically) zero on every input.

    ``dead_i = all_x |h_i(x)| <= atol`` (Lin et al., 2016; paper §3.2, Fig. 2, E.3).

    Args:
      acts: ``(batch, units)`` (or ``(..., units)``) post-activation values.
      atol: absolute tolerance, default 0 (exact zeros, the ReLU case).
    Returns:
      bool ``(units,)``.
    """
    a = _flat_units(acts)
    return jnp.all(jnp.abs(a) <= atol, axis=0)


def dormant_scores(acts: Array) -> Array:
    """ReDo dormancy score of Sokar et al. (2023).

    ``s_i = E_x|h_i(x)| / ((1/H) sum_j E_x|h_j(x)|)`` with the expectation over the probe
    batch and ``H`` the layer width. Paper §3.2 cites this notion of "dormant" units.

    Args:
      acts: ``(batch, units)``, or a conv layer's ``(batch, H, W, channels)`` (a channel
        is one unit). Other ranks raise ``ValueError``: a 1-D array is one input or one
        unit, and a 3-D one is likely ``(seeds, batch, units)`` (use ``jax.vmap``).
    Returns:
      float ``(units,)``; all zeros if the whole layer is silent.
    """
    if jnp.ndim(acts) not in (2, 4):
        raise ValueError(
            f"dormant_scores: acts must be (batch, units) or (batch, H, W, channels), got "
            f"shape {jnp.shape(acts)}; for a seed axis use jax.vmap(dormant_scores)(acts), "
            f"for one input pass (1, units)"
        )
    a = _flat_units(acts)
    m = jnp.mean(jnp.abs(a), axis=0)
    denom = jnp.mean(m)
    return jnp.where(denom > 0, m / jnp.where(denom > 0, denom, 1.0), 0.0)


def dormant_units(acts: Array, tau: float = 0.025) -> Array:
    """Dormant units: ReDo score ``s_i <= tau`` (Sokar et al., 2023; default tau 0.025).

    Args:
      acts: ``(batch, units)``.
      tau: threshold (``tau = 0`` gives dead units in the exact-zero sense).
    Returns:
      bool ``(units,)``.
    """
    return dormant_scores(acts) <= tau


# --------------------------------------------------------------------------- linearized


def slope_spread(preacts: Array, activation: str) -> Array:
    """Relative spread of the slope over the batch (the smooth linearization score).

    ``r_i = (max_x phi'(z_i(x)) - min_x phi'(z_i(x))) / (sup phi' - inf phi')``, in [0, 1].
    Paper §3.2/E.8: a unit whose slope barely changes over its inputs acts linearly.

    Args:
      preacts: ``(batch, units)``.
      activation: static name (see ``ACTIVATIONS``).
    Returns:
      float ``(units,)``.
    """
    _, lo, hi, _ = _check_activation(activation)
    s = activation_slope(_flat_units(preacts), activation)
    span = hi - lo
    spread = jnp.max(s, axis=0) - jnp.min(s, axis=0)
    return spread / span if span > 0 else jnp.zeros_like(spread)


def saturated_units(preacts: Array, activation: str = "relu", threshold: float = 0.1) -> Array:
    """Saturated units: (almost) zero slope on every input, so no gradient flows.

    ``max_x |phi'(z_i(x))| <= threshold * sup|phi'|``; for ``relu`` exactly "all
    preactivations <= 0" (threshold ignored); ``leaky_relu``/``abs``/``identity`` never
    saturate. Paper §3.2 (a tanh in its constant region).

    Args:
      preacts: ``(batch, units)``.
      activation: static name.
      threshold: relative slope threshold for smooth activations.
    Returns:
      bool ``(units,)``.
    """
    _, lo, hi, piecewise = _check_activation(activation)
    z = _flat_units(preacts)
    if activation == "relu":
        return jnp.all(z <= 0, axis=0)
    if piecewise:
        return jnp.zeros(z.shape[-1], dtype=bool)
    s = jnp.abs(activation_slope(z, activation))
    return jnp.max(s, axis=0) <= threshold * max(abs(lo), abs(hi))


def linearized_units(preacts: Array, activation: str = "relu", threshold: float = 0.1) -> Array:
    """Linearized ("zombie") units: the unit is (nearly) linear on the whole batch.

    * ``relu``: all preactivations ``> 0``.
    * ``leaky_relu``, ``abs``: all ``> 0`` or all ``< 0``.
    * ``identity``: every unit.
    * smooth activations: ``slope_spread <= threshold`` and not ``saturated_units``.

    See the module docstring for why this definition. Paper §3.2, Fig. 2 (right), E.8
    (Fig. 23).

    Args:
      preacts: ``(batch, units)`` preactivations (inputs to the nonlinearity).
      activation: static name.
      threshold: relative threshold for smooth activations (ignored otherwise).
    Returns:
      bool ``(units,)``.
    """
    _, _, _, piecewise = _check_activation(activation)
    z = _flat_units(preacts)
    if activation == "relu":
        return jnp.all(z > 0, axis=0)
    if activation in ("leaky_relu", "abs"):
        return jnp.all(z > 0, axis=0) | jnp.all(z < 0, axis=0)
    if activation == "identity":
        return jnp.ones(z.shape[-1], dtype=bool)
    assert not piecewise
    flat = slope_spread(z, activation) <= threshold
    return flat & ~saturated_units(z, activation, threshold)


# --------------------------------------------------------------------------- per layer


def layer_fractions(masks: Sequence[Array]) -> tuple[Array, Array]:
    """Per-layer and total fraction of ``True`` in a sequence of unit masks.

    Args:
      masks: sequence of bool ``(units_l,)`` arrays (widths may differ).
    Returns:
      ``(per_layer (L,), total ())`` float32; total = count / total number of units.
    """
    masks = [jnp.asarray(m) for m in masks]
    per_layer = jnp.stack([jnp.mean(m.astype(jnp.float32)) for m in masks])
    count = sum(jnp.sum(m.astype(jnp.float32)) for m in masks)
    total = count / sum(m.shape[-1] for m in masks)
    return per_layer, total


def _as_seq(layers) -> Sequence[Array]:
    if isinstance(layers, (list, tuple)):
        return layers
    return (layers,)


def dead_unit_fraction(acts: Sequence[Array], atol: float = 0.0):
    """Fraction of dead units per layer and overall (see ``dead_units``).

    Args:
      acts: sequence of ``(batch, units_l)`` activations (e.g. ``Intermediates.acts``),
        or a single array.
    Returns:
      ``(per_layer (L,), total ())``.
    """
    return layer_fractions([dead_units(a, atol) for a in _as_seq(acts)])


def dormant_unit_fraction(acts: Sequence[Array], tau: float = 0.025):
    """Fraction of ReDo-dormant units per layer and overall (see ``dormant_units``).

    Returns ``(per_layer (L,), total ())``.
    """
    return layer_fractions([dormant_units(a, tau) for a in _as_seq(acts)])


def linearized_unit_fraction(
    preacts: Sequence[Array], activation: str = "relu", threshold: float = 0.1
):
    """Fraction of linearized (zombie) units per layer and overall.

    Args:
      preacts: sequence of ``(batch, units_l)`` preactivations.
      activation: static name; threshold: for smooth activations.
    Returns:
      ``(per_layer (L,), total ())``.
    """
    return layer_fractions([linearized_units(z, activation, threshold) for z in _as_seq(preacts)])


def saturated_unit_fraction(
    preacts: Sequence[Array], activation: str = "relu", threshold: float = 0.1
):
    """Fraction of saturated units per layer and overall (see ``saturated_units``)."""
    return layer_fractions([saturated_units(z, activation, threshold) for z in _as_seq(preacts)])


# --------------------------------------------------------------------------- directions


def preactivation_update(
    update: Array, features: Array, bias_update: Optional[Array] = None
) -> Array:
    """First-order change of each unit's preactivation on each input.

    ``dz_i(x) = <dw_i, a(x)> + db_i`` where ``dw_i`` is column ``i`` of the update of the
    layer's kernel (the unit's incoming weights) and ``a(x)`` the layer's input.

    Args:
      update: ``(d_in, d_out)`` kernel update (e.g. ``-lr * grad`` or an optax update).
      features: ``(n, d_in)`` incoming features ``a(x)``.
      bias_update: optional ``(d_out,)``.
    Returns:
      ``(n, d_out)``.
    """
    su, sf = jnp.shape(update), jnp.shape(features)
    if len(su) != 2 or len(sf) != 2 or sf[1] != su[0]:
        raise ValueError(
            f"update must be (d_in, d_out) and features (n, d_in) with the same d_in, got "
            f"update {su} and features {sf}"
        )
    if bias_update is not None and jnp.shape(bias_update) != (su[1],):
        raise ValueError(
            f"bias_update must be (d_out,) = ({su[1]},) for update {su}, got "
            f"{jnp.shape(bias_update)}"
        )
    dz = jnp.asarray(features) @ jnp.asarray(update)
    if bias_update is not None:
        dz = dz + jnp.asarray(bias_update)
    return dz


def same_direction_units(
    update: Array,
    features: Array,
    bias_update: Optional[Array] = None,
    eps: float = 0.0,
) -> tuple[Array, Array]:
    """Units whose update moves the preactivation the same way on every input.

    Paper Fig. 2 (middle) and E.3 item 3: "in many units the gradient has a negative dot
    product with all inputs". With ``dz`` from ``preactivation_update``:
    ``all_negative_i = all_x dz_i(x) < -eps`` and ``all_positive_i = all_x dz_i(x) > eps``.
    Pass the *update* (``-lr * grad`` for SGD); passing the raw gradient swaps the two.
    Without ``bias_update`` this is the paper's "dot product with all incoming features".

    Args:
      update: ``(d_in, d_out)``; features: ``(n, d_in)``; bias_update: ``(d_out,)``.
      eps: margin (default 0: strict sign).
    Returns:
      ``(all_negative, all_positive)``, bool ``(d_out,)`` each.
    """
    dz = preactivation_update(update, features, bias_update)
    return jnp.all(dz < -eps, axis=0), jnp.all(dz > eps, axis=0)


def same_direction_fraction(
    update: Array,
    features: Array,
    bias_update: Optional[Array] = None,
    eps: float = 0.0,
) -> tuple[Array, Array]:
    """Fractions of units with all-negative / all-positive preactivation updates.

    Same arguments as ``same_direction_units``. Returns ``(frac_negative, frac_positive)``
    scalars.
    """
    neg, pos = same_direction_units(update, features, bias_update, eps)
    return jnp.mean(neg.astype(jnp.float32)), jnp.mean(pos.astype(jnp.float32))


def weight_gradient_from_preact_grads(
    features: Array, preact_grads: Array, reduction: str = "mean"
) -> tuple[Array, Array]:
    """Kernel and bias gradient of a dense layer from per-example preactivation grads.

    ``dL/dW = reduce_x a(x) (dL/dz(x))^T``, ``dL/db = reduce_x dL/dz(x)``.

    Args:
      features: ``(n, d_in)`` layer inputs; preact_grads: ``(n, d_out)``.
      reduction: ``"mean"`` or ``"sum"`` over the batch (static).
    Returns:
      ``(kernel_grad (d_in, d_out), bias_grad (d_out,))``.
    """
    gw = jnp.asarray(features).T @ jnp.asarray(preact_grads)
    gb = jnp.sum(preact_grads, axis=0)
    if reduction == "mean":
        n = features.shape[0]
        gw, gb = gw / n, gb / n
    elif reduction != "sum":
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    return gw, gb


# --------------------------------------------------------------------------- statistics


def _check_quantile_args(quantiles, quantile_inputs) -> None:
    if quantile_inputs is not None and (
        not isinstance(quantile_inputs, (int, np.integer))
        or isinstance(quantile_inputs, bool)
        or quantile_inputs < 1
    ):
        raise ValueError(
            f"quantile_inputs={quantile_inputs!r} is not allowed; allowed: None (all inputs) "
            "or a positive int"
        )
    try:
        q = np.asarray(quantiles, dtype=np.float64)
    except jax.errors.TracerArrayConversionError:  # traced levels cannot be checked here
        return
    if q.ndim > 1 or q.size == 0 or not np.all((q >= 0) & (q <= 1)):
        raise ValueError(
            f"quantiles={quantiles!r} is not allowed; allowed: a non-empty sequence of "
            "levels in [0, 1]"
        )


def preactivation_stats(
    preacts: Array,
    init_preacts: Optional[Array] = None,
    quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
    quantile_inputs: Optional[int] = None,
) -> dict:
    """Distribution statistics of one layer's preactivations (paper §2.1, §3.2, Fig. 2).

    Pooled over inputs and units: ``mean``, ``std``, ``quantiles`` (``(Q,)``).
    Per unit then averaged: ``unit_std`` (mean over units of the std over inputs) and
    ``unit_mean_std`` (std over units of the per-unit mean). ``frac_positive``: fraction
    of all entries > 0.
    If ``init_preacts`` (same shape, the network at initialization on the same inputs) is
    given, also the shift from initialization:
    ``mean_shift = mean_i |mu_i - mu0_i| / (sigma0_i + 1e-8)`` (per-unit standardized
    mean shift), ``std_ratio = mean_i sigma_i / (sigma0_i + 1e-8)``, and ``w1`` the
    1-Wasserstein distance between the pooled distributions (mean absolute difference of
    sorted values).

    Cost: ``quantiles`` and ``w1`` sort the pooled ``batch * units`` entries (``w1`` sorts
    both layers' arrays), ``O(B U log(B U))`` per layer, which dominates everything else
    here when called at every logged step on a large probe batch. ``quantile_inputs = k``
    pools only the first ``k`` inputs (rows, all units) for these two statistics, i.e.
    sorts ``k * units`` entries; the moment statistics (``mean``, ``std``, ``unit_*``,
    ``frac_positive``, ``mean_shift``, ``std_ratio``) always use every input. Take the
    first rows only of a batch in random order (a class-sorted batch would bias them).
    The default ``None`` uses every input (unchanged results).

    Args:
      preacts: ``(batch, units)`` (or ``(..., units)``: every leading axis indexes inputs
        and is flattened to ``batch`` first).
      init_preacts: optional, same shape.
      quantiles: static tuple of levels in [0, 1] (``Q`` of them).
      quantile_inputs: static; None (default: all inputs) or a positive int ``k``: the
        pooled ``quantiles`` and ``w1`` use the first ``min(k, batch)`` inputs only.
    Returns:
      dict of scalars (and ``quantiles`` ``(Q,)``).
    Raises:
      ValueError: ``quantile_inputs`` not None or a positive int; ``quantiles`` not a
        non-empty sequence of levels in [0, 1].
    """
    _check_quantile_args(quantiles, quantile_inputs)
    z = _flat_units(preacts)
    rows = z.shape[0] if quantile_inputs is None else min(int(quantile_inputs), z.shape[0])
    q = jnp.asarray(quantiles, dtype=z.dtype)
    mu_i = jnp.mean(z, axis=0)
    sd_i = jnp.std(z, axis=0)
    out = {
        "mean": jnp.mean(z),
        "std": jnp.std(z),
        "quantiles": jnp.quantile(z[:rows].reshape(-1), q),
        "unit_std": jnp.mean(sd_i),
        "unit_mean_std": jnp.std(mu_i),
        "frac_positive": jnp.mean((z > 0).astype(jnp.float32)),
    }
    if init_preacts is not None:
        z0 = _flat_units(init_preacts)
        mu0 = jnp.mean(z0, axis=0)
        sd0 = jnp.std(z0, axis=0)
        out["mean_shift"] = jnp.mean(jnp.abs(mu_i - mu0) / (sd0 + 1e-8))
        out["std_ratio"] = jnp.mean(sd_i / (sd0 + 1e-8))
        out["w1"] = jnp.mean(
            jnp.abs(jnp.sort(z[:rows].reshape(-1)) - jnp.sort(z0[:rows].reshape(-1)))
        )
    return out


def preactivation_stats_per_layer(
    preacts: Sequence[Array],
    init_preacts: Optional[Sequence[Array]] = None,
    quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
    quantile_inputs: Optional[int] = None,
) -> dict:
    """``preactivation_stats`` for every layer, stacked: each value gets a leading
    ``(L,)`` axis (``quantiles`` becomes ``(L, Q)``).

    Args:
      preacts: sequence of ``(batch, units_l)``; init_preacts: same structure or None.
      quantiles, quantile_inputs: as in ``preactivation_stats`` (applied to every layer).
    """
    preacts = _as_seq(preacts)
    inits = _as_seq(init_preacts) if init_preacts is not None else [None] * len(preacts)
    stats = [
        preactivation_stats(z, z0, quantiles, quantile_inputs) for z, z0 in zip(preacts, inits)
    ]
    return {k: jnp.stack([s[k] for s in stats]) for k in stats[0]}


# --------------------------------------------------------------------------- linearity (R^2)
#
# One criterion of linearity for every activation (issue 15; chapters 3 and 9): a unit is
# *linearized on a batch* when the least-squares linear fit of phi(z) on z over the batch
# explains at least 99 % of the variance of phi(z) (R^2 >= 0.99) and phi(z) is not
# constant on the batch (constant = dead or saturated: counted by
# :func:`constant_output_units`, never as linearized).
#
# Relation to the sign criterion of :func:`linearized_units` (ReLU / Leaky ReLU): a unit of
# one strict sign on the whole batch has phi(z) = a z exactly, so R^2 = 1 and it is
# linearized by both criteria (a ReLU unit negative on every input is constant: dead). The
# converse holds when both signs carry a real share of the batch (a ReLU unit with a
# quarter of its inputs negative has R^2 of about 0.9), but not in the limit of a few
# barely negative inputs: R^2 tends to 1 as the minority side shrinks (for z ~ N(2, 1)
# about 3 % of the inputs are negative and R^2 is about 0.994), so the R^2 criterion counts
# such a unit as (approximately) linear where the sign criterion does not. Chapters that
# use it report the sign criterion beside it.

R2_THRESHOLD = 0.99
CONSTANT_ATOL = 1e-6


def linear_fit_r2(preacts: Array, activation: str) -> tuple[Array, Array]:
    """R^2 of the least-squares linear fit of ``phi(z)`` on ``z`` over the batch, per unit.

    ``R^2_i = cov(z_i, phi(z_i))^2 / (var(z_i) var(phi(z_i)))`` over the inputs of the batch
    (the squared Pearson correlation; the fraction of the variance of ``phi(z_i)`` explained
    by ``a + b z_i`` with least-squares ``a, b``). Paper §3.2, Fig. 2 (right), E.8.

    Args:
      preacts: ``(batch, units)`` (or ``(..., units)``) preactivations ``z``.
      activation: static name, a key of ``ACTIVATIONS``.
    Returns:
      ``(r2, phi_std)``: float32 ``(units,)`` each. ``r2`` is in ``[0, 1]`` (0 where
      ``z`` or ``phi(z)`` has zero variance on the batch); ``phi_std`` is the standard
      deviation of ``phi(z_i)`` over the batch.
    """
    fn, _, _, _ = _check_activation(activation)
    z = _flat_units(preacts).astype(jnp.float32)
    p = fn(z)
    zc = z - jnp.mean(z, axis=0)
    pc = p - jnp.mean(p, axis=0)
    szz = jnp.sum(zc * zc, axis=0)
    spp = jnp.sum(pc * pc, axis=0)
    szp = jnp.sum(zc * pc, axis=0)
    denom = szz * spp
    safe = jnp.where(denom > 0, denom, 1.0)
    r2 = jnp.where(denom > 0, jnp.clip(szp * szp / safe, 0.0, 1.0), 0.0)
    return r2, jnp.std(p, axis=0)


def constant_output_units(preacts: Array, activation: str, atol: float = CONSTANT_ATOL) -> Array:
    """Units whose output ``phi(z)`` is constant on the batch: ``std_x phi(z_i(x)) <= atol``.

    The dead (ReLU: every ``z <= 0``) and fully saturated units of the R^2 criterion,
    excluded from :func:`linearized_units_r2` and counted separately.

    Args:
      preacts: ``(batch, units)`` preactivations; activation: static name; atol: absolute
        tolerance on the standard deviation (float32 round-off).
    Returns:
      bool ``(units,)``.
    """
    _, phi_std = linear_fit_r2(preacts, activation)
    return phi_std <= atol


def linearized_units_r2(
    preacts: Array,
    activation: str,
    r2_threshold: float = R2_THRESHOLD,
    atol: float = CONSTANT_ATOL,
) -> Array:
    """Linearized units by the one criterion for every activation (issue 15).

    A unit is linearized on the batch when ``linear_fit_r2 >= r2_threshold`` (default
    0.99) and its output is not constant (``constant_output_units``). See the section
    comment above for how this relates to the sign criterion of ``linearized_units``.

    Args:
      preacts: ``(batch, units)`` (or ``(..., units)``) preactivations.
      activation: static name; r2_threshold: minimum R^2; atol: see
        ``constant_output_units``.
    Returns:
      bool ``(units,)``.
    """
    r2, phi_std = linear_fit_r2(preacts, activation)
    return (r2 >= r2_threshold) & (phi_std > atol)


def linearized_r2_fraction(
    preacts: Sequence[Array],
    activation: str,
    r2_threshold: float = R2_THRESHOLD,
    atol: float = CONSTANT_ATOL,
):
    """Fraction of linearized units (R^2 criterion) per layer and overall.

    Args:
      preacts: sequence of ``(batch, units_l)`` preactivations (or one array).
      activation, r2_threshold, atol: as in ``linearized_units_r2``.
    Returns:
      ``(per_layer (L,), total ())`` float32.
    """
    return layer_fractions(
        [linearized_units_r2(z, activation, r2_threshold, atol) for z in _as_seq(preacts)]
    )


def constant_output_fraction(
    preacts: Sequence[Array], activation: str, atol: float = CONSTANT_ATOL
):
    """Fraction of constant-output units (``constant_output_units``) per layer and overall.

    Returns:
      ``(per_layer (L,), total ())`` float32.
    """
    return layer_fractions([constant_output_units(z, activation, atol) for z in _as_seq(preacts)])


__all__ += [
    "R2_THRESHOLD",
    "CONSTANT_ATOL",
    "linear_fit_r2",
    "constant_output_units",
    "linearized_units_r2",
    "linearized_r2_fraction",
    "constant_output_fraction",
]


# ------------------------------------------------------------- drift readouts (chapter 6)


def drift_readouts(
    acts: Sequence[Array], preacts: Sequence[Array], init_preacts: Sequence[Array]
) -> tuple[Array, Array]:
    """Two readouts of preactivation drift on one probe batch (§3.2, Fig. 2; App. F).

    * ``dead``: the fraction of dead units (``dead_units``: zero on every probe input),
      all hidden layers pooled (``dead_unit_fraction``'s total);
    * ``shift``: the per-unit standardised shift of the mean preactivation from the
      network at initialisation, ``mean_i |mu_i - mu0_i| / (sigma0_i + 1e-8)`` per layer
      (``preactivation_stats``' ``mean_shift``), averaged over the layers with equal
      weight.

    Args:
      acts: sequence of ``(batch, units_l)`` activations of the network (``Intermediates.acts``).
      preacts: the same network's ``(batch, units_l)`` preactivations on the same inputs.
      init_preacts: the preactivations of the network at initialisation on the same inputs
        (same shapes as ``preacts``).
    Returns:
      ``(dead (), shift ())`` float32 scalars; jit- and vmap-able.
    """
    preacts, init_preacts = _as_seq(preacts), _as_seq(init_preacts)
    if len(preacts) != len(init_preacts):
        raise ValueError(
            f"drift_readouts: {len(preacts)} preactivation layers but {len(init_preacts)} "
            "at initialisation"
        )
    dead = dead_unit_fraction(acts)[1]
    shifts = []
    for z, z0 in zip(preacts, init_preacts):
        z, z0 = _flat_units(z), _flat_units(z0)
        shifts.append(jnp.mean(jnp.abs(z.mean(0) - z0.mean(0)) / (z0.std(0) + 1e-8)))
    return dead, jnp.mean(jnp.stack(shifts))


__all__ += ["drift_readouts"]
