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
  :func:`pathology_score`, the effective-rank deficit ``1 - erank / n``, and the same
  summaries of the *gradient-cosine matrix* ``C = D^{-1/2} K D^{-1/2}`` (the normalised
  kernel of Fig. 3's top row; :func:`cosine_summary`), on which a few inputs with large
  gradients cannot dominate the diagonal + rank-1 error or the spectrum.
* :func:`entk_without_bias` -- the eNTK of the weights alone (every leaf named ``bias``
  held fixed): the head bias adds the same constant to every entry of ``K``.
* :func:`probe_sgd_rate` -- the step of chapter 4's SGD plasticity probe at one
  checkpoint, from the curvature of the probe loss there (:func:`gauss_newton_top_eigenvalue`):
  one that no minibatch can make unstable in the linearised model.
* :func:`worst_if_nonfinite` -- the rank a diverged probe gets; :func:`sgd_rate_by_rule`,
  the earlier rule (one rate for every checkpoint, chosen on fresh networks).

Checkpoint arrays have shape ``(S, K, ...)``; in the chapter checkpoint 0 is the
initialisation.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import diagnostics, timing

__all__ = [
    "label_ordered_batch",
    "map_checkpoints",
    "pathology_score",
    "cosine_summary",
    "kernel_summaries",
    "entk_without_bias",
    "gauss_newton_top_eigenvalue",
    "probe_sgd_rate",
    "sgd_rate_by_rule",
    "worst_if_nonfinite",
]


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


@timing.timed("evaluation")  # the diagnostics along training: "evaluation" time
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


def cosine_summary(k, num_iters: int = 100) -> dict:
    """Summaries of the gradient-cosine matrix of one eNTK (§3.3, Fig. 3 top row).

    ``C = D^{-1/2} K D^{-1/2}`` (``diagnostics.gradient_cosine``; unit diagonal wherever
    ``K_ii > 0``) removes the per-input gradient norms, so a few inputs with huge
    gradients cannot make ``K`` look "diagonal + rank one" or low-rank by themselves.

    Args:
      k: ``(n, n)`` eNTK.
      num_iters: iterations of ``diagnostics.diag_rank1_fit``.
    Returns:
      dict of scalars: ``cos_diag_rank1_error`` (``diagnostics.diag_rank1_error(C)``,
      relative to ``||C||_F``) and ``cos_effective_rank`` (Roy--Vetterli effective rank
      of ``C``, in ``[1, n]``).
    """
    c = diagnostics.gradient_cosine(k)
    return {
        "cos_diag_rank1_error": diagnostics.diag_rank1_error(c, num_iters),
        "cos_effective_rank": diagnostics.kernel_effective_rank(c),
    }


def _both_summaries(k) -> dict:
    return {**diagnostics.ntk_summary(k), **cosine_summary(k)}


# one jitted function for every call: a stack shape seen before is not compiled again
_summaries_of_stack = jax.jit(jax.vmap(_both_summaries))


def kernel_summaries(kernels) -> dict:
    """``diagnostics.ntk_summary`` and :func:`cosine_summary` of every kernel of a stack.

    Args:
      kernels: ``(..., n, n)`` eNTKs (e.g. ``(S, K, n, n)``: seeds x checkpoints).
    Returns:
      dict ``name -> (...)`` numpy array for every ``ntk_summary`` and
      ``cosine_summary`` key, plus ``"pathology_score"`` (:func:`pathology_score` of
      ``"effective_rank"``, the raw kernel) and ``"cos_pathology_score"`` (of
      ``"cos_effective_rank"``, the cosine matrix).
    """
    stack = jnp.asarray(kernels)
    lead, n = stack.shape[:-2], stack.shape[-1]
    out = _summaries_of_stack(stack.reshape((-1, n, n)))
    res = {name: np.asarray(v).reshape(lead) for name, v in out.items()}
    res["pathology_score"] = pathology_score(res["effective_rank"], n)
    res["cos_pathology_score"] = pathology_score(res["cos_effective_rank"], n)
    return res


def _is_bias(path) -> bool:
    last = path[-1]
    name = getattr(last, "key", getattr(last, "name", None))
    return name == "bias"


def entk_without_bias(apply_fn: Callable, params: Any, x, output: str = "trace"):
    """The eNTK over every parameter except the biases (§3.3, Fig. 3).

    ``K_W[i, j] = sum over non-bias leaves of <d f(x_i) / d w, d f(x_j) / d w>``: the
    leaves whose key is ``"bias"`` (Flax ``Dense`` biases, including the head's) are held
    fixed at their values in ``params``. The head bias alone adds ``1`` per output to
    every entry of the full kernel (``C`` for ``output="trace"``), pulling all gradient
    cosines towards 1; ``K_W`` shows the structure without it. Computed as the full
    eNTK (``diagnostics.entk``, fast per-layer route) minus the eNTK of the bias leaves
    alone (``diagnostics.entk_generic`` restricted to them: per-example gradients of a few
    hundred parameters), which is exact because the eNTK is a sum over parameters; a
    per-example route over all weights would cost ``n C`` gradients of every weight per
    kernel. jit- and vmap-able.

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, C)`` (or ``(n,)``).
      params: pytree (leaves with key ``"bias"`` excluded).
      x: ``(n, ...)`` inputs.
      output: as in ``diagnostics.entk`` (``"sum"``, ``"index"`` with index 0,
        ``"per_class"``, ``"trace"``).
    Returns:
      ``(n, n)`` float32 (``(C, n, n)`` for ``"per_class"``).
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    leaves = [leaf for _, leaf in flat]
    bias = [_is_bias(path) for path, _ in flat]
    biases = [i for i, b in enumerate(bias) if b]
    k_full = diagnostics.entk(apply_fn, params, x, output=output)
    if not biases:
        return k_full

    def bias_apply(bias_leaves, xb):
        full = list(leaves)
        for i, leaf in zip(biases, bias_leaves):
            full[i] = leaf
        return apply_fn(jax.tree_util.tree_unflatten(treedef, full), xb)

    k_bias = diagnostics.entk_generic(bias_apply, [leaves[i] for i in biases], x, output)
    return k_full - k_bias


def worst_if_nonfinite(values) -> np.ndarray:
    """``values`` (float64 numpy) with every non-finite entry (a diverged probe: NaN or
    inf) replaced by the largest float64, so that it ranks as the worst fit."""
    v = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(v), v, np.finfo(np.float64).max)


def sgd_rate_by_rule(grid, final_losses) -> float:
    """The SGD learning rate of chapter 4's plasticity probe, by a rule fixed in advance.

    B.3 chose the probe's length as "sufficient for most networks to solve the probe task
    at a random initialization"; the SGD rate is chosen the same way, on fresh
    initialisations only (never on a trained checkpoint): the rate of ``grid`` with the
    lowest mean final probe loss over the fresh networks, a non-finite loss (divergence)
    counting as infinitely bad; ties go to the smaller rate.

    Args:
      grid: ``(G,)`` candidate learning rates.
      final_losses: ``(G, M)`` final probe losses of ``M`` fresh networks at each rate.
    Returns:
      the chosen rate (float).
    Raises:
      ValueError: shapes disagree, or every rate diverged on some network.
    """
    grid = np.asarray(grid, dtype=np.float64)
    losses = np.asarray(final_losses, dtype=np.float64)
    if losses.ndim != 2 or losses.shape[0] != grid.shape[0]:
        raise ValueError(f"final_losses must be (G, M) with G={len(grid)}, got {losses.shape}")
    mean = np.where(np.all(np.isfinite(losses), axis=1), losses.mean(axis=1), np.inf)
    if not np.any(np.isfinite(mean)):
        raise ValueError("the probe diverged at every learning rate of the grid")
    best = np.flatnonzero(mean == mean.min())
    return float(grid[best].min())


def gauss_newton_top_eigenvalue(apply_fn: Callable, params: Any, x, key, num_iters: int = 20):
    """Largest eigenvalue of the Gauss--Newton matrix of the probe loss at ``params``.

    The probe loss is the mean squared error over the ``n`` inputs and ``C`` outputs
    (``diagnostics.plasticity_probe``), so its Gauss--Newton matrix is
    ``H = (2 / (n C)) J^T J`` with ``J`` the ``(n C) x P`` Jacobian of the outputs. Its
    largest eigenvalue is that of ``(2 / (n C)) J J^T``, estimated by ``num_iters`` power
    iterations in output space (one ``vjp`` and one ``jvp`` each) from a random start
    drawn from ``key``; the result is the Rayleigh quotient of the last iterate, which
    never exceeds the true eigenvalue. jit- and vmap-able.

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, C)`` (or ``(n,)``).
      params: pytree.
      x: ``(n, ...)`` inputs.
      key: PRNG key of the start vector.
      num_iters: power iterations (static).
    Returns:
      scalar float32.
    """
    n = x.shape[0]

    def outputs(p):
        return jnp.reshape(apply_fn(p, x), (n, -1))

    out, pullback = jax.vjp(outputs, params)
    _, pushforward = jax.linearize(outputs, params)
    v = jax.random.normal(key, out.shape, out.dtype)
    v = v / jnp.linalg.norm(v)

    def body(_, carry):
        v, _ = carry
        (g,) = pullback(v)  # J^T v
        w = pushforward(g)  # J J^T v
        lam = jnp.vdot(v, w)  # Rayleigh quotient (|v| = 1)
        return w / jnp.maximum(jnp.linalg.norm(w), 1e-30), lam

    _, lam = jax.lax.fori_loop(0, num_iters, body, (v, jnp.zeros((), out.dtype)))
    return 2.0 * lam / out.size


def probe_sgd_rate(apply_fn: Callable, params: Any, x, key, batch_size: int, num_iters: int = 20):
    """Step of chapter 4's SGD plasticity probe at one checkpoint: ``B / (n lambda)``.

    ``lambda`` is :func:`gauss_newton_top_eigenvalue` of the probe loss on all ``n``
    probe inputs and ``B`` the probe's minibatch size. Every minibatch's Gauss--Newton
    matrix ``H_B = (2 / (B C)) J_B^T J_B`` satisfies ``J_B^T J_B <= J^T J``, hence
    ``lambda_max(H_B) <= (n / B) lambda``, so the step times the largest curvature of any
    minibatch loss is at most 1: half the stability limit (2) of gradient descent, in the
    linearised model. The step scales with each checkpoint's largest stable step, the
    setting of §3.3's argument (a step limited by the largest eigenvalue, so that a
    collapsed kernel only follows residuals along its few large directions), instead of
    one rate for kernels whose scales differ by orders of magnitude. jit- and vmap-able.

    Args:
      apply_fn, params, x, key, num_iters: as in :func:`gauss_newton_top_eigenvalue`.
      batch_size: the probe's minibatch ``B`` (``n`` for full batches).
    Returns:
      scalar float32.
    """
    lam = gauss_newton_top_eigenvalue(apply_fn, params, x, key, num_iters)
    return batch_size / (x.shape[0] * lam)
