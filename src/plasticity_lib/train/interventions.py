"""The interventions of §4.1 / Fig. 4: pure loss terms and post-update transforms.

Paper: Lyle et al. (2024), §4.1 ("L2 regularization", weight-norm constraint,
feature-norm penalty, ReDo, squared-gradient-norm penalty, InFeR) and Fig. 4.

*Loss terms* are added to the data loss of a minibatch (one model)::

    objective = data_loss + l2 * ||theta||^2 + feature_norm_penalty * mean_b ||phi(x_b)||^2
              + grad_norm_penalty * ||grad_theta data_loss||^2
              + infer_coef * mean_b ||g(x_b) - infer_scale * g_0(x_b)||^2

(:func:`l2_penalty`, :func:`feature_norm_penalty`, :func:`grad_norm_penalty`,
:func:`infer_penalty`). ``theta`` in the L2 term is every network parameter (kernels,
biases, norm scales/offsets; the paper's "L2 regularization" of all parameters) when
``decay_params="all"``, or only the weight matrices / conv kernels (``"kernels"``); the
InFeR heads are never decayed.

*Post-update transforms* map the parameters after the optimizer's update:
:func:`redo_transform` (ReDo, Sokar et al. 2023, every ``redo_every`` steps) and then
:func:`apply_weight_norm_constraint` (every step, so the constraint always holds).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import optax

from ..models import Network
from .optimizers import is_kernel_path

__all__ = [
    "sq_norm",
    "l2_penalty",
    "feature_norm_penalty",
    "grad_norm_penalty",
    "infer_penalty",
    "kernel_norms",
    "apply_weight_norm_constraint",
    "redo_scores",
    "redo_reset",
    "redo_transform",
    "tree_get",
    "tree_set",
]

Array = jax.Array


def sq_norm(tree) -> Array:
    """``sum ||leaf||^2`` over the leaves of ``tree`` (``optax.tree_utils.tree_norm``,
    squared); float32 ``0`` for a tree without leaves."""
    if not jax.tree_util.tree_leaves(tree):
        return jnp.float32(0.0)
    return optax.tree_utils.tree_norm(tree, squared=True)


# ----------------------------------------------------------------------------- loss terms


def l2_penalty(params, coef, decay_params: str = "all") -> Array:
    """``coef * sum ||theta||^2`` over the leaves selected by ``decay_params``
    (``"all"`` | ``"kernels"``); "L2 regularization" of §4.1."""
    if decay_params == "all":
        return coef * sq_norm(params)
    leaves = [x for p, x in jax.tree_util.tree_leaves_with_path(params) if is_kernel_path(p)]
    return coef * sq_norm(leaves)


def feature_norm_penalty(features: Array, coef) -> Array:
    """``coef * mean_b ||features_b||^2`` for ``features`` ``(batch, d)`` (§4.1)."""
    return coef * jnp.mean(jnp.sum(jnp.square(features), axis=-1))


def grad_norm_penalty(grads, coef) -> Array:
    """``coef * ||grads||^2``; differentiate through ``grads`` for double backprop
    (Barrett & Dherin, 2020; §4.1)."""
    return coef * sq_norm(grads)


def infer_penalty(features: Array, aux, features0: Array, aux0, coef, scale) -> Array:
    """InFeR (Lyle et al., 2021): ``coef * mean_b ||g(x_b) - scale * g_0(x_b)||^2``.

    ``g(x) = features @ aux["kernel"] + aux["bias"]`` (``(batch, k)``, features
    ``(batch, d)``, kernel ``(d, k)``); ``g_0`` the same with the initial network's
    features and heads (treated as constants).
    """
    pred = features @ aux["kernel"] + aux["bias"]
    target = jax.lax.stop_gradient(features0 @ aux0["kernel"] + aux0["bias"])
    return coef * jnp.mean(jnp.sum(jnp.square(pred - scale * target), axis=-1))


# ------------------------------------------------------------------- weight-norm constraint


def kernel_norms(params) -> Any:
    """Tree like ``params`` of Frobenius norms (scalars) of every leaf."""
    return jax.tree_util.tree_map(lambda x: jnp.sqrt(jnp.sum(jnp.square(x))), params)


def apply_weight_norm_constraint(params, init_norms, frozen=False) -> Any:
    """Rescale every ``kernel`` leaf to its initial Frobenius norm (§4.1); others unchanged.

    ``init_norms``: ``kernel_norms(initial_params)``. ``frozen`` (bool, may be traced):
    leave ``params`` exactly unchanged (a diverged model).
    """

    def f(path, x, n0):
        if not is_kernel_path(path):
            return x
        factor = n0 / jnp.maximum(jnp.sqrt(jnp.sum(jnp.square(x))), 1e-12)
        return x * jnp.where(frozen, 1.0, factor)

    return jax.tree_util.tree_map_with_path(f, params, init_norms)


# ------------------------------------------------------------------------------------ ReDo


def _unit_mask(dormant: Array, shape: tuple, axis: int) -> Array:
    n = shape[axis]
    vec = dormant if n == dormant.shape[0] else jnp.tile(dormant, n // dormant.shape[0])
    bshape = [1] * len(shape)
    bshape[axis] = n
    return jnp.broadcast_to(vec.reshape(bshape), shape)


def tree_get(tree, path):
    """``tree[path[0]][path[1]]...`` (a path of dict keys)."""
    for k in path:
        tree = tree[k]
    return tree


def tree_set(tree: dict, path, value) -> dict:
    """A copy of the nested dict ``tree`` with the leaf at ``path`` replaced by ``value``."""
    tree = dict(tree)
    if len(path) == 1:
        tree[path[0]] = value
    else:
        tree[path[0]] = tree_set(tree[path[0]], path[1:], value)
    return tree


def redo_scores(acts: Sequence[Array], num_units: Sequence[int]) -> list:
    """ReDo scores ``s_i = E|h_i| / mean_j E|h_j|`` per hidden layer (Sokar et al., 2023).

    ``acts[l]`` ``(batch, units)`` or flattened conv ``(batch, H*W*C)`` (a unit = a channel,
    averaged over batch and positions). A layer whose units all have zero mean |h| gets
    scores 0 (all dormant). Returns a list of ``(num_units[l],)`` arrays.
    """
    out = []
    for a, c in zip(acts, num_units):
        e = jnp.mean(jnp.abs(a).reshape(a.shape[0], -1, c), axis=(0, 1))
        m = jnp.mean(e)
        out.append(jnp.where(m > 0, e / jnp.where(m > 0, m, 1.0), 0.0))
    return out


def redo_reset(network: Network, params, aux, opt_state, optimizer, acts, key, tau, example_x):
    """ReDo (Sokar et al., 2023) on one model: reset the dormant units of every hidden layer.

    A unit with ``s_i <= tau`` (``redo_scores``) gets its incoming parameters (kernel
    column / conv output channel, bias, norm scale and offset) from a fresh
    initialisation ``network.init(key, example_x)``, its outgoing weights (next layer's
    kernel rows / input channel; InFeR head rows for the last layer) set to zero, and the
    optimizer moments of all those entries zeroed (``optax.tree_map_params``).

    Returns ``(params, aux, opt_state, n_reset)`` with ``n_reset`` the number of units reset.
    """
    layers = network.unit_layers(params)
    fresh = network.init(key, example_x)
    scores = redo_scores(acts, [layer.num_units for layer in layers])
    in_masks: dict = {}
    out_masks: dict = {}
    aux_mask = jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, bool), aux)
    n_reset = jnp.int32(0)
    for li, (layer, s) in enumerate(zip(layers, scores)):
        dormant = s <= tau
        n_reset = n_reset + jnp.sum(dormant).astype(jnp.int32)
        for path, axis in layer.incoming:
            shape = tree_get(params, path).shape
            m = _unit_mask(dormant, shape, axis)
            in_masks[path] = in_masks[path] | m if path in in_masks else m
        for path, axis in layer.outgoing:
            shape = tree_get(params, path).shape
            m = _unit_mask(dormant, shape, axis)
            out_masks[path] = out_masks[path] | m if path in out_masks else m
        if li == len(layers) - 1 and aux:
            aux_mask = dict(aux_mask, kernel=_unit_mask(dormant, aux["kernel"].shape, 0))
    new = params
    for path, m in in_masks.items():
        new = tree_set(new, path, jnp.where(m, tree_get(fresh, path), tree_get(new, path)))
    for path, m in out_masks.items():
        new = tree_set(new, path, jnp.where(m, 0.0, tree_get(new, path)))
    new_aux = jax.tree_util.tree_map(lambda x, m: jnp.where(m, 0.0, x), aux, aux_mask)
    pmask = jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, bool), params)
    for path in set(in_masks) | set(out_masks):
        m = in_masks.get(path, False) | out_masks.get(path, False)
        pmask = tree_set(pmask, path, jnp.broadcast_to(m, tree_get(params, path).shape))
    new_opt = optax.tree_map_params(
        optimizer,
        lambda s, m: jnp.where(m, jnp.zeros_like(s), s),
        opt_state,
        (pmask, aux_mask),
        transform_non_params=lambda s: s,
    )
    return new, new_aux, new_opt, n_reset


def _tree_where(c, a, b):
    return jax.tree_util.tree_map(lambda x, y: jnp.where(c, x, y), a, b)


def redo_transform(
    network: Network, params, aux, opt_state, optimizer, xb, key, tau, step, every, frozen
):
    """ReDo as a post-update transform of one model: after global step ``step`` (traced
    int), when ``(step + 1) % every == 0``, :func:`redo_reset` with the activations of
    the updated network on the minibatch ``xb``; otherwise, or when ``frozen`` (a
    diverged model), the arguments unchanged.

    Returns ``(params, aux, opt_state, n_reset)`` (``n_reset`` int32, 0 when nothing ran).
    """

    def do_redo(args):
        p, a, o = args
        _, inter = network.apply_with_intermediates(p, xb)
        p2, a2, o2, n = redo_reset(network, p, a, o, optimizer, inter.acts, key, tau, xb)
        return _tree_where(frozen, (p, a, o, 0), (p2, a2, o2, n))

    def no_redo(args):
        return (*args, jnp.int32(0))

    return jax.lax.cond((step + 1) % every == 0, do_redo, no_redo, (params, aux, opt_state))
