"""Chapter 04: eNTK pathologies of networks that lost plasticity (§3.3, Fig. 3 right).

Paper: Lyle et al. (2024) §3.3 ("Characterizing networks which have lost plasticity"):
the empirical NTK ``K[i, j] = <grad_theta f(x_i), grad_theta f(x_j)>`` on a batch of
64 inputs, its gradient-cosine normalisation, the diagonal + rank-1 pathology, the
first-order loss-decrease argument, and (App. B.3) the plasticity probe.

Protocol pieces used by ``chapters/04_entk_pathologies.py``:

* :func:`label_ordered_batch` -- the fixed eNTK batch, balanced over classes and
  ordered by label so that class blocks are contiguous in the heat maps.
* :func:`train_random_label_run` -- networks (c)/(d): ``train.train_stream`` on
  ``tasks.random_labels`` with the parameters kept at every task end.
* :func:`train_offset_regression_run` -- network (b): ``train.train_stream`` on the
  stationary ``tasks.regression_stream`` (App. E.1 targets ``sin(1e5 f_rand(x)) + b``)
  with the training split into equal "tasks" only to keep checkpoints.
* :func:`checkpoint_kernels`, :func:`kernel_summaries` -- eNTK (trace over outputs) and
  its ``diagnostics.ntk_summary`` at every checkpoint, vmapped over seeds x checkpoints.
* :func:`probe_losses` -- ``diagnostics.probe_vmapped`` at every checkpoint.
* :func:`first_order_check` -- predicted (``diagnostics.predicted_loss_decrease``) vs
  actual (``diagnostics.loss_decrease_after_step``) decrease of one gradient step.
* :func:`pathology_score`, :func:`spearman_per_seed` -- the ``ch4.diagnostic`` statistic.

Conventions
-----------
* The kernel shown and summarised is the *trace* eNTK ``K = sum_c K_c`` over the C output
  units (``entk(output="trace")``): ``K[i, j] = <J(x_i), J(x_j)>_F`` with ``J`` the
  ``(C, P)`` Jacobian. For the one-output regression network (b) it is the plain eNTK.
* The first-order check uses a *scalar* network function, as in §3.3: ``f = sum_c f_c``
  (``entk(output="sum")``), the paper's objective ``l = ||f(theta, X) - y||^2`` and plain
  gradient descent ``theta' = theta - eta grad l``, for which
  ``l(theta) - l(theta') = 4 eta r^T K r + O(eta^2)`` with ``r = f(theta, X) - y``.
* Checkpoint arrays have shape ``(S, K, ...)``: seeds x checkpoints; checkpoint 0 is the
  initialisation.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import diagnostics as dg
from .. import tasks, train
from ..models import ModelConfig, Network, make_network

__all__ = [
    "NETWORK_LABELS",
    "Run",
    "label_ordered_batch",
    "probe_indices",
    "classifier_config",
    "regression_config",
    "train_random_label_run",
    "train_offset_regression_run",
    "checkpoint_kernels",
    "kernel_summaries",
    "inactive_unit_fraction",
    "probe_keys",
    "probe_losses",
    "first_order_check",
    "pathology_score",
    "spearman_per_seed",
    "SUMMARY_KEYS",
]

NETWORK_LABELS = {
    "a": "(a) random init.",
    "b": "(b) large-offset regression",
    "c": "(c) ReLU, random labels",
    "d": "(d) Leaky ReLU, random labels",
}

SUMMARY_KEYS = (
    "diag_rank1_error",
    "mean_abs_offdiag_cosine",
    "grad_norm_cv",
    "effective_rank",
)


# --------------------------------------------------------------------------- inputs


def label_ordered_batch(y: np.ndarray, n: int, num_classes: int) -> np.ndarray:
    """Indices of a batch of ``n`` examples balanced over classes, ordered by label.

    Class ``c`` contributes ``n // num_classes`` examples, plus one for the first
    ``n % num_classes`` classes; within a class the examples are the first ones in
    dataset order (deterministic). Raises if a class has too few examples.

    Args:
      y: ``(N,)`` int labels; n: batch size; num_classes: number of classes.
    Returns:
      ``(n,)`` int64 indices into ``y``, sorted by ``y`` (class blocks contiguous).
    """
    y = np.asarray(y)
    base, extra = divmod(int(n), int(num_classes))
    out = []
    for c in range(num_classes):
        k = base + (1 if c < extra else 0)
        idx = np.flatnonzero(y == c)[:k]
        if len(idx) < k:
            raise ValueError(f"class {c} has {len(idx)} examples, need {k} for a balanced batch of {n}")
        out.append(idx)
    return np.concatenate(out).astype(np.int64)


def probe_indices(num_examples: int, probe_n: int, seed: int = 0) -> np.ndarray:
    """``probe_n`` distinct indices in ``[0, num_examples)``, drawn with
    ``numpy.random.default_rng(seed)`` and sorted (the probe's inputs, App. B.3)."""
    if probe_n > num_examples:
        raise ValueError(f"probe_n={probe_n} exceeds the {num_examples} training examples")
    return np.sort(np.random.default_rng(seed).choice(num_examples, probe_n, replace=False))


# --------------------------------------------------------------------------- runs


@dataclasses.dataclass
class Run:
    """One training run with its checkpoints.

    Attributes:
      name: ``"b"``, ``"c"`` or ``"d"``.
      network: the ``Network``.
      params: params tree with leading ``(S, K)``: seeds x checkpoints, checkpoint 0 =
        initialisation.
      positions: ``(K,)`` training progress of each checkpoint (steps for (b), tasks
        completed for (c)/(d)).
      position_name: label of ``positions``.
      result: the engine's ``RunResult``.
    """

    name: str
    network: Network
    params: Any
    positions: np.ndarray
    position_name: str
    result: Any

    @property
    def num_checkpoints(self) -> int:
        return int(self.positions.shape[0])

    def at(self, k: int):
        """Params of checkpoint ``k`` for every seed (leading ``S``)."""
        return jax.tree_util.tree_map(lambda a: a[:, k], self.params)


def classifier_config(width: int, depth: int, activation: str, num_classes: int) -> ModelConfig:
    """MLP classifier of (a), (c), (d): ``depth`` x ``width``, no normalisation."""
    return ModelConfig(arch="mlp", width=width, depth=depth, activation=activation, num_outputs=num_classes)


def regression_config(width: int, depth: int) -> ModelConfig:
    """One-output ReLU MLP of network (b)."""
    return ModelConfig(arch="mlp", width=width, depth=depth, activation="relu", num_outputs=1)


def _with_init(res) -> Any:
    """The run's checkpoints with its initialisation first: ``res.initial_params`` (kept by
    the engine, ``keep_initial_params=True``) and ``res.task_params`` ``(S, K, ...)`` ->
    ``(S, K+1, ...)``."""
    return jax.tree_util.tree_map(
        lambda a, b: np.concatenate([np.asarray(a)[:, None], np.asarray(b)], axis=1), res.initial_params,
        res.task_params,
    )


def train_random_label_run(
    x: np.ndarray, num_classes: int, activation: str, *, width: int, depth: int, seeds: Sequence[int],
    num_tasks: int, steps_per_task: int, learning_rate: float, batch_size: int, name: str,
    progress: bool = True,
) -> Run:
    """Networks (c)/(d): Adam on ``num_tasks`` random labellings of ``x`` (§3.1, B.2).

    The parameters at every task end are kept (``keep_task_params=True``); with the
    initialisation (``keep_initial_params=True``) that gives ``num_tasks + 1``
    checkpoints per seed.
    """
    net = make_network(classifier_config(width, depth, activation, num_classes))
    cfg = train.TrainConfig(learning_rate=learning_rate, batch_size=batch_size)
    stream = tasks.random_labels(x, num_classes)
    res = train.train_stream(
        net, cfg, stream, seeds=list(seeds), num_tasks=num_tasks, steps_per_task=steps_per_task,
        log_every=steps_per_task, keep_task_params=True, keep_initial_params=True, progress=progress,
        desc=f"({name}) {activation}",
    )
    params = _with_init(res)
    return Run(name, net, params, np.arange(num_tasks + 1), "random-label tasks completed", res)


def train_offset_regression_run(
    x: np.ndarray, *, offset: float, width: int, depth: int, seeds: Sequence[int], steps: int,
    checkpoints: int, learning_rate: float, batch_size: int, name: str = "b", progress: bool = True,
) -> Run:
    """Network (b): MSE regression on App. E.1's targets ``sin(1e5 f_rand(x)) + offset``.

    The stream is stationary (``regression_stream(resample=False)``: the same targets for
    every "task"); the ``steps`` are split into ``checkpoints`` equal tasks only so that
    the engine keeps the parameters after each. The target network is drawn per seed.
    """
    if steps % checkpoints:
        raise ValueError(f"checkpoints={checkpoints} must divide steps={steps}")
    net = make_network(regression_config(width, depth))
    cfg = train.TrainConfig(learning_rate=learning_rate, batch_size=batch_size, loss="mse")
    stream = tasks.regression_stream(x, offset=float(offset))
    per = steps // checkpoints
    res = train.train_stream(
        net, cfg, stream, seeds=list(seeds), num_tasks=checkpoints, steps_per_task=per,
        log_every=per, keep_task_params=True, keep_initial_params=True, progress=progress,
        desc=f"({name}) offset {offset:g}",
    )
    params = _with_init(res)
    return Run(name, net, params, np.arange(checkpoints + 1) * per, "Adam steps on the offset targets", res)


# --------------------------------------------------------------------------- eNTK


def _flat2(tree):
    """(S, K, ...) leaves -> (S*K, ...), plus (S, K)."""
    leaf = jax.tree_util.tree_leaves(tree)[0]
    s, k = leaf.shape[:2]
    return jax.tree_util.tree_map(lambda a: jnp.reshape(jnp.asarray(a), (s * k,) + a.shape[2:]), tree), (s, k)


def checkpoint_kernels(network: Network, params, xb, output: str = "trace") -> np.ndarray:
    """eNTK of every checkpoint: ``(S, K, n, n)`` float32 numpy (vmapped, one jit).

    Args:
      network: the run's network; params: tree with leading ``(S, K)``.
      xb: ``(n, d)`` the eNTK batch; output: ``entk`` output reduction.
    """
    flat, (s, k) = _flat2(params)
    xb = jnp.asarray(xb)
    fn = jax.jit(jax.vmap(lambda p: dg.entk(network.apply, p, xb, output=output)))
    kk = np.asarray(fn(flat))
    return kk.reshape((s, k) + kk.shape[1:])


def pathology_score(effective_rank, n: int):
    """``ch4.diagnostic``'s eNTK pathology score: ``1 - erank(K) / n``.

    ``erank`` is the Roy--Vetterli effective rank of the eNTK on the ``n`` batch inputs
    (``diagnostics.kernel_effective_rank``, in ``[1, n]``), so the score lies in
    ``[0, 1 - 1/n]``: 0 for a kernel with a flat spectrum, near 1 for a collapsed
    (rank-1) kernel. Fixed before the run (see the chapter)."""
    return 1.0 - np.asarray(effective_rank, dtype=np.float64) / float(n)


def kernel_summaries(kernels: np.ndarray) -> dict:
    """``diagnostics.ntk_summary`` of every kernel ``(..., n, n)`` -> ``name -> (...)``
    numpy arrays, plus ``"pathology_score"`` (:func:`pathology_score`)."""
    kk = jnp.asarray(kernels)
    lead = kk.shape[:-2]
    n = kk.shape[-1]
    flat = kk.reshape((-1, n, n))
    out = jax.jit(jax.vmap(dg.ntk_summary))(flat)
    res = {name: np.asarray(v).reshape(lead) for name, v in out.items()}
    res["pathology_score"] = pathology_score(res["effective_rank"], n)
    return res


def inactive_unit_fraction(network: Network, params, x) -> np.ndarray:
    """Fraction of hidden units whose preactivation is ``<= 0`` on every input of ``x``
    (dead units for ReLU; units stuck on the negative slope for Leaky ReLU), per
    checkpoint: ``(S, K)``."""
    flat, (s, k) = _flat2(params)
    x = jnp.asarray(x)

    def one(p):
        _, inter = network.apply_with_intermediates(p, x)
        off = [jnp.all(z <= 0, axis=0) for z in inter.preacts]
        return jnp.sum(jnp.stack([o.sum() for o in off])) / sum(o.shape[0] for o in off)

    return np.asarray(jax.jit(jax.vmap(one))(flat)).reshape(s, k)


# --------------------------------------------------------------------------- probe


def probe_keys(seeds: Sequence[int], root: int = 4) -> jax.Array:
    """One probe key per seed, ``fold_in(PRNGKey(root), seed)``: every checkpoint of a
    seed (and every run) gets the same perturbation ``eta`` (like-for-like)."""
    return jnp.stack([jax.random.fold_in(jax.random.PRNGKey(root), int(s)) for s in seeds])


def probe_losses(network: Network, params, x_probe, keys, *, steps: int, lr: float) -> np.ndarray:
    """App. B.3 plasticity probe at every checkpoint: final probe loss ``(S, K)``.

    ``diagnostics.probe_vmapped`` over the flattened seeds x checkpoints; ``keys`` ``(S,)``
    (:func:`probe_keys`) is repeated over checkpoints, so within a seed all checkpoints
    fit the same ``eta``. Full-batch Adam with a fresh state, ``steps`` steps.
    """
    flat, (s, k) = _flat2(params)
    kk = jnp.repeat(jnp.asarray(keys), k, axis=0)
    xp = jnp.asarray(x_probe)
    fn = jax.jit(lambda p, key: dg.probe_vmapped(network.apply, p, xp, key, steps=steps, lr=lr))
    return np.asarray(fn(flat, kk)).reshape(s, k)


# --------------------------------------------------------------------------- first order


def first_order_check(network: Network, params, xb, keys, step_fraction: float = 0.01) -> dict:
    """Predicted vs actual loss decrease of one small gradient step (§3.3), per seed.

    For each seed's params: scalar output ``f = sum_c f_c``; targets
    ``y = f(theta, X) + eta(X)`` with ``eta`` the probe's high-frequency perturbation
    (``diagnostics.probe_perturbation``, amplitude 1, key of that seed), so the residual
    ``r = f - y = -eta`` asks the network to move its outputs to a new target; the paper's
    objective ``l = ||f(theta, X) - y||^2``; one gradient-descent step
    ``theta' = theta - eta_lr grad l`` with ``eta_lr = step_fraction / (2 lambda_max(K))``,
    ``K = entk(output="sum")``. Then (``diagnostics.predicted_loss_decrease`` with
    ``reduction="sum"``) ``pred = 4 eta_lr r^T K r`` and (``loss_decrease_after_step``)
    ``actual = l(theta) - l(theta')``.

    Why this step size: in the linearised model the residual becomes
    ``(I - 2 eta_lr K) r``, so every eigen-direction of the residual shrinks by at most
    ``step_fraction``, and the Gauss--Newton second-order term is at most
    ``eta_lr lambda_max = step_fraction / 2`` of the first-order one, whatever the
    scale of ``K`` (which differs by orders of magnitude between the networks).

    Args:
      network; params: tree with leading ``S``; xb: ``(n, d)``; keys: ``(S,)`` PRNG keys;
      step_fraction: see above.
    Returns:
      dict of ``(S,)`` numpy arrays: ``predicted``, ``actual``, ``rel_error``
      (``|actual - predicted| / |actual|``), ``lr``, ``loss`` (before the step),
      ``lambda_max``.
    """
    xb = jnp.asarray(xb)
    n = xb.shape[0]

    def one(p, key):
        f = jnp.sum(jnp.reshape(network.apply(p, xb), (n, -1)), axis=1)
        eta = dg.probe_perturbation(xb, 1, key)[:, 0]
        y = jax.lax.stop_gradient(f) + eta
        r = f - y
        k = dg.entk(network.apply, p, xb, output="sum")
        lam = jnp.linalg.eigvalsh(0.5 * (k + k.T))[-1]
        lr = step_fraction / (2.0 * lam)
        pred = dg.predicted_loss_decrease(k, r, lr, reduction="sum")
        actual = dg.loss_decrease_after_step(network.apply, p, xb, y, lr, output="sum", reduction="sum")
        loss = jnp.sum(r**2)
        return dict(predicted=pred, actual=actual, rel_error=jnp.abs(actual - pred) / jnp.abs(actual),
                    lr=lr, loss=loss, lambda_max=lam)

    out = jax.jit(jax.vmap(one))(jax.tree_util.tree_map(jnp.asarray, params), jnp.asarray(keys))
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


# --------------------------------------------------------------------------- statistics


def spearman_per_seed(score: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Spearman rank correlation between ``score`` and ``target`` over the checkpoints
    of each seed: ``(S, K)`` x ``(S, K)`` -> ``(S,)`` (NaN if either is constant)."""
    from scipy import stats

    score, target = np.asarray(score), np.asarray(target)
    if score.shape != target.shape or score.ndim != 2:
        raise ValueError(f"need two (S, K) arrays of the same shape, got {score.shape} and {target.shape}")
    out = []
    for a, b in zip(score, target):
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            out.append(np.nan)
        else:
            out.append(stats.spearmanr(a, b).statistic)
    return np.asarray(out, dtype=np.float64)
