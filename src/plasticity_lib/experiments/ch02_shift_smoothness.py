"""Chapter 2: smoothness of the distribution shift (Lyle et al. 2024, §3.1, Fig. 1).

Protocol (§3.1, "Smoothness of distribution shifts")
----------------------------------------------------
Sequential memorisation of random labels. Every image of a fixed training set gets a
uniformly random label; then, at every *iteration* boundary, a fraction ``eps`` of the
labels is re-randomised (exactly ``round(eps * N)`` images chosen uniformly at random,
each given a fresh uniform label) and training continues from the current parameters
and optimizer state. The total amount of relabelling is equalised across fractions:
the budget is ``iterations`` iterations of ``iteration_steps`` optimizer steps *at
eps = 1*; a run with fraction ``eps`` resets ``1 / eps`` times as often, with
``eps * iteration_steps`` steps between resets, so every fraction gets the same total
number of steps (``iterations * iteration_steps``) and re-randomises the same total
number of labels (``iterations * N``, up to rounding).

The relabelling is exactly that of :func:`plasticity_lib.tasks.relabel_fraction`
(same key use: reset ``r`` of a model uses ``fold_in(root, r)`` with
``root = fold_in(PRNGKey(seed), 1)``, as in :func:`plasticity_lib.train.train_stream`),
and the optimizer steps are those of the engine (:func:`plasticity_lib.train.train_steps`,
minibatch of global step ``g`` from ``fold_in(rng, g)``). So a run of one fraction
gives the same numbers as ``train_stream(network, cfg, tasks.relabel_fraction(x, C,
eps), seeds, num_tasks=iterations / eps, steps_per_task=eps * iteration_steps)`` (a
unit test checks this).

Why not ``train_stream`` itself: with ``eps = 0.01`` a run has ``100 * iterations``
tasks of a few steps each. ``train_stream`` makes one host call per task and, in each
call, regenerates the current task by replaying ``next`` for ``t = 1..task`` (cost
quadratic in the number of tasks), and it trains one fraction per compiled program.
:func:`run_fractions` instead carries the labels through a ``lax.scan``, expresses all
fractions with a common chunk of ``min(fractions) * iteration_steps`` steps and a
per-model relabel schedule (fraction ``eps`` relabels at chunk ``j`` when ``j`` is a
positive multiple of ``eps / min(fractions)``), and trains every (fraction, seed) of
one network in one jitted, vmapped program: one host call per eps = 1 iteration (for
the progress bar).

Measurements
------------
At every point of an evaluation grid (every ``iteration_steps / evals_per_iteration``
steps) the accuracy (and cross-entropy) of every model on its *current* labels over
the whole training set (the engine's in-program evaluation, ``train.evaluate_task``,
in batches of ``TrainConfig.eval_batch_size``), and its parameter norm. A grid point is the end of an
iteration of fraction ``eps`` when it is a multiple of ``eps * iteration_steps``
(the evaluation happens before the next relabelling); the chapter's statistics use
only those points ("training accuracy on the current labels at the end of each
iteration", §3.1).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import tasks, train
from ..progress import progress_bar
from ..models import Network

__all__ = [
    "Schedule",
    "ShiftRun",
    "make_schedule",
    "relabel",
    "pool_images",
    "run_fractions",
    "iteration_end_curve",
    "end_of_run_accuracy",
    "accuracy_at_step",
    "spearman_of_means",
    "label_history",
    "final_correct",
]


# ---------------------------------------------------------------------------- schedule


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The equal-budget relabelling schedule of §3.1 (all step counts are integers).

    Attributes:
      fractions: the re-randomised fractions ``eps`` (ascending).
      iterations: budget in eps = 1 iterations (paper: 40).
      iteration_steps: optimizer steps of one eps = 1 iteration (paper: 100,000).
      evals_per_iteration: evaluation points per eps = 1 iteration.
      chunk_steps: ``min(fractions) * iteration_steps``, the common chunk.
      periods: chunks between resets for each fraction (``eps / min(fractions)``).
      steps_between_resets: ``eps * iteration_steps`` for each fraction.
      resets: number of resets in the budget for each fraction (``iterations / eps``
        iterations, so ``iterations / eps - 1`` relabellings after the initial labels).
      chunks_per_eval: chunks between two evaluation points.
    """

    fractions: tuple
    iterations: int
    iteration_steps: int
    evals_per_iteration: int
    chunk_steps: int
    periods: tuple
    steps_between_resets: tuple
    resets: tuple
    chunks_per_eval: int

    @property
    def total_steps(self) -> int:
        return self.iterations * self.iteration_steps

    @property
    def eval_steps(self) -> np.ndarray:
        """``(iterations * evals_per_iteration,)`` global step of each evaluation point."""
        n = self.iterations * self.evals_per_iteration
        return (np.arange(1, n + 1) * self.chunks_per_eval * self.chunk_steps).astype(np.int64)

    def iteration_end_mask(self) -> np.ndarray:
        """``(F, n_evals)`` bool: evaluation point is the end of an iteration of fraction f."""
        steps = self.eval_steps
        return np.stack([steps % s == 0 for s in self.steps_between_resets])


def _as_int(value: float, what: str) -> int:
    r = int(round(value))
    if abs(value - r) > 1e-6 * max(1.0, abs(value)) or r < 1:
        raise ValueError(f"{what} = {value:g} must be a positive integer")
    return r


def make_schedule(fractions: Sequence[float], iterations: int, iteration_steps: int,
                  evals_per_iteration: int = 10) -> Schedule:
    """Validate and derive the schedule; every step count must be a whole number.

    Each fraction must be in (0, 1], ``fraction * iteration_steps`` and ``1 / fraction``
    must be integers, every fraction a whole multiple of the smallest, and
    ``iteration_steps / evals_per_iteration`` a whole multiple of the common chunk.
    """
    fr = tuple(sorted(float(f) for f in fractions))
    if not fr or len(set(fr)) != len(fr):
        raise ValueError(f"fractions={list(fractions)} must be non-empty and distinct")
    if any(not 0.0 < f <= 1.0 for f in fr):
        raise ValueError(f"fractions={list(fractions)} must lie in (0, 1]")
    iterations, iteration_steps, evals_per_iteration = int(iterations), int(iteration_steps), int(evals_per_iteration)
    if iterations < 1 or iteration_steps < 1 or evals_per_iteration < 1:
        raise ValueError("iterations, iteration_steps and evals_per_iteration must be >= 1")
    base = fr[0]
    chunk = _as_int(base * iteration_steps, f"min(fractions) * iteration_steps = {base} * {iteration_steps}")
    periods = tuple(_as_int(f / base, f"fraction {f} / min(fractions) {base}") for f in fr)
    between = tuple(p * chunk for p in periods)
    for f in fr:
        _as_int(1.0 / f, f"1 / fraction {f}")
    eval_every = _as_int(iteration_steps / evals_per_iteration,
                         f"iteration_steps / evals_per_iteration = {iteration_steps} / {evals_per_iteration}")
    if eval_every % chunk:
        raise ValueError(f"the evaluation spacing {eval_every} steps must be a multiple of the chunk {chunk} steps")
    resets = tuple(iterations * iteration_steps // b for b in between)
    return Schedule(fr, iterations, iteration_steps, evals_per_iteration, chunk, periods, between, resets,
                    eval_every // chunk)


# ------------------------------------------------------------------------------ pieces


def _relabel_with_mask(key: jax.Array, y: jax.Array, k, num_classes: int):
    k_sel, k_tr = jax.random.split(key)
    sel = tasks.random_subset_mask(k_sel, y.shape[0], k)
    _, fresh = tasks.random_labels_transform(num_classes)(k_tr, None, y)
    return jnp.where(sel, fresh, y).astype(jnp.int32), sel


def relabel(key: jax.Array, y: jax.Array, k, num_classes: int) -> jax.Array:
    """Re-randomise exactly ``k`` labels of ``y`` ``(N,)`` (``k`` may be traced).

    The same computation as ``tasks.relabel_fraction(x, num_classes, k / N).next``:
    ``k_sel, k_tr = split(key)``; the ``k`` examples ``random_subset_mask(k_sel, N, k)``
    get fresh uniform labels drawn with ``k_tr``; the others keep theirs.
    """
    return _relabel_with_mask(key, y, k, num_classes)[0]


def pool_images(x: np.ndarray, image_shape: tuple, factor: int) -> np.ndarray:
    """Average-pool images by ``factor`` in height and width.

    ``x``: flattened ``(N, H*W*C)`` (returns ``(N, (H/factor)*(W/factor)*C)``) or
    ``(N, H, W, C)`` (returns ``(N, H/factor, W/factor, C)``); float32. ``factor=1``
    returns ``x`` unchanged (as float32).
    """
    x = np.asarray(x, np.float32)
    if factor == 1:
        return x
    h, w, c = image_shape
    if h % factor or w % factor:
        raise ValueError(f"pool factor {factor} must divide the image size {h}x{w}")
    img = x.reshape(x.shape[0], h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))
    return (img.reshape(x.shape[0], -1) if x.ndim == 2 else img).astype(np.float32)


# ---------------------------------------------------------------------------- the run


@dataclasses.dataclass
class ShiftRun:
    """Result of :func:`run_fractions` for one network; numpy arrays.

    Attributes:
      schedule: the :class:`Schedule`.
      seeds: ``(S,)``.
      accuracy, xent: ``(F, S, n_evals)`` on the current labels over the whole training
        set at each evaluation point (``schedule.eval_steps``).
      param_norm: ``(F, S, n_evals)``.
      train_loss: ``(F, S, n_evals)`` mean minibatch loss since the previous point.
      diverged: ``(F, S)`` bool.
      final_params: params tree with leading ``(F, S)`` axes.
      final_labels: ``(F, S, N)`` int32, the labels of the last iteration.
      wall_time_s: wall time of the run, compilation included.
    """

    schedule: Schedule
    seeds: np.ndarray
    accuracy: np.ndarray
    xent: np.ndarray
    param_norm: np.ndarray
    train_loss: np.ndarray
    diverged: np.ndarray
    final_params: object
    final_labels: np.ndarray
    wall_time_s: float


@functools.lru_cache(maxsize=16)
def _iteration_fn(network: Network, cfg: train.TrainConfig, num_classes: int, chunk: int, per_eval: int, epi: int):
    """Jitted ``(state, labels, roots, ks, periods, it, x) -> (state, labels, evals)``: one
    eps = 1 iteration (``epi`` evaluation blocks of ``per_eval`` chunks of ``chunk``
    steps) of every model (vmapped; ``x`` shared). Cached: same structure, no recompilation."""

    def one_model(st, y, root, k, period, it, x):
        mask = jnp.ones((x.shape[0],), jnp.float32)

        def chunk_body(carry, j):
            st, y = carry
            do = (j % period == 0) & (j > 0)
            y = jnp.where(do, relabel(jax.random.fold_in(root, j // period), y, k, num_classes), y)
            st1 = jax.tree_util.tree_map(lambda a: a[None], st)
            st1, logs = train.train_steps(network, cfg, st1, tasks.Task(x, y, mask), chunk, log_every=chunk)
            st = jax.tree_util.tree_map(lambda a: a[0], st1)
            return (st, y), logs["loss"][0, 0]

        def eval_body(carry, b):
            j0 = (it * epi + b) * per_eval
            carry, losses = jax.lax.scan(chunk_body, carry, j0 + jnp.arange(per_eval, dtype=jnp.int32))
            st, y = carry
            ev = train.evaluate_task(network, st.params, tasks.Task(x, y, mask), batch_size=cfg.eval_batch_size)
            pn = jnp.sqrt(sum(jnp.sum(jnp.square(a)) for a in jax.tree_util.tree_leaves(st.params)))
            out = {"accuracy": ev["accuracy"], "xent": ev["loss"], "param_norm": pn, "train_loss": jnp.mean(losses)}
            out = {name: jnp.where(st.diverged, jnp.nan, v) for name, v in out.items()}
            return carry, out

        (st, y), out = jax.lax.scan(eval_body, (st, y), jnp.arange(epi, dtype=jnp.int32))
        return st, y, out

    return jax.jit(jax.vmap(one_model, in_axes=(0, 0, 0, 0, 0, None, None)))


def run_fractions(network: Network, cfg: train.TrainConfig, x, num_classes: int, schedule: Schedule,
                  seeds: Sequence[int], *, progress: bool = True, desc: str | None = None) -> ShiftRun:
    """Train one model per (fraction, seed) on the §3.1 relabelling schedule.

    All ``F * S`` models of ``network`` train together: one jitted program (``vmap``
    over models, ``lax.scan`` over evaluation blocks and chunks, the engine's
    ``train.train_steps`` inside) called once per eps = 1 iteration. Model
    ``(f, s)`` uses ``PRNGKey(seeds[s])`` exactly as ``train.train_stream`` would:
    all fractions (and all networks) of one seed share the initial parameters, the
    initial labels and the minibatch keys.

    Args:
      network: ``make_network(model_cfg)``; x: ``(N, ...)`` float32 inputs (the
        network's input layout: flattened for an MLP, ``(N, H, W, C)`` for a CNN).
      cfg: ``train.TrainConfig`` (any optimizer / loss ``"xent"``).
      num_classes: label range. schedule: :func:`make_schedule`. seeds: ints.
    Returns:
      :class:`ShiftRun`.
    """
    t0 = time.perf_counter()
    x = jnp.asarray(x, jnp.float32)
    n = int(x.shape[0])
    seeds = np.asarray(seeds, np.int64).reshape(-1)
    n_f, n_s = len(schedule.fractions), len(seeds)
    model_seeds = np.tile(seeds, n_f)  # fraction-major
    ks = jnp.asarray(np.repeat([int(round(f * n)) for f in schedule.fractions], n_s), jnp.int32)
    periods = jnp.asarray(np.repeat(schedule.periods, n_s), jnp.int32)

    state = train.init_state(network, cfg, model_seeds, x[:2])
    roots = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(int(s)), 1) for s in model_seeds])
    stream = tasks.relabel_fraction(x, num_classes, 1.0)  # its init draws every label
    labels = jax.vmap(lambda r: stream.init(jax.random.fold_in(r, 0)).y)(roots)  # task 0, as the engine
    step_fn = _iteration_fn(network, cfg, int(num_classes), schedule.chunk_steps, schedule.chunks_per_eval,
                            schedule.evals_per_iteration)

    bar = progress_bar(schedule.iterations, desc=desc or f"{n_f} fractions x {n_s} seeds", unit="iter",
                       enabled=progress)
    outs = []
    for it in range(schedule.iterations):
        state, labels, out = step_fn(state, labels, roots, ks, periods, np.int32(it), x)
        out = jax.device_get(out)
        outs.append(out)
        bar.set_postfix(acc=f"{np.nanmean(out['accuracy'][:, -1]):.3f}")
        bar.update(1)
    bar.close()
    state = jax.device_get(state)

    def stack(name):
        a = np.concatenate([o[name] for o in outs], axis=1)  # (M, n_evals)
        return a.reshape(n_f, n_s, -1).astype(np.float32)

    return ShiftRun(
        schedule=schedule,
        seeds=seeds,
        accuracy=stack("accuracy"),
        xent=stack("xent"),
        param_norm=stack("param_norm"),
        train_loss=stack("train_loss"),
        diverged=np.asarray(state.diverged, bool).reshape(n_f, n_s),
        final_params=jax.tree_util.tree_map(lambda a: np.asarray(a).reshape((n_f, n_s) + a.shape[1:]), state.params),
        final_labels=np.asarray(jax.device_get(labels)).reshape(n_f, n_s, n),
        wall_time_s=time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------- statistics


def iteration_end_curve(run: ShiftRun, f: int, metric: str = "accuracy") -> tuple[np.ndarray, np.ndarray]:
    """``(budget_fraction (P,), values (S, P))`` at the iteration ends of fraction ``f``
    on the evaluation grid (x = global step / total budget)."""
    m = run.schedule.iteration_end_mask()[f]
    x = run.schedule.eval_steps[m] / run.schedule.total_steps
    return x, getattr(run, metric)[f][:, m]


def end_of_run_accuracy(run: ShiftRun, last: float = 0.1) -> np.ndarray:
    """``(F, S)``: mean accuracy over the iteration ends of each fraction that fall in the
    last ``last`` of the budget (global step > (1 - last) * total)."""
    out = []
    for f in range(len(run.schedule.fractions)):
        x, v = iteration_end_curve(run, f)
        sel = x > 1.0 - last + 1e-9
        if not sel.any():
            raise ValueError(f"no iteration end of fraction {run.schedule.fractions[f]} in the last {last} of the budget")
        out.append(v[:, sel].mean(1))
    return np.stack(out)


def accuracy_at_step(run: ShiftRun, step: int) -> np.ndarray:
    """``(F, S)`` accuracy at the evaluation point of global step ``step``."""
    idx = np.flatnonzero(run.schedule.eval_steps == step)
    if idx.size != 1:
        raise ValueError(f"step {step} is not an evaluation point")
    return run.accuracy[:, :, idx[0]]


def label_history(schedule: Schedule, f: int, seeds: Sequence[int], x, num_classes: int):
    """Replay the relabelling of fraction index ``f`` for every seed (no training).

    Returns ``(ages, labels)``, both ``(S, N)``: ``ages[s, i]`` is the number of steps
    between the last re-draw of example ``i``'s label (0 for a label never re-drawn since
    the initial labelling) and the end of the budget; ``labels`` are the labels of the
    last iteration (equal to ``ShiftRun.final_labels[f]``). Same keys as
    :func:`run_fractions`.
    """
    x = jnp.asarray(x)
    n = int(x.shape[0])
    k = int(round(schedule.fractions[f] * n))
    between, resets = schedule.steps_between_resets[f], schedule.resets[f]
    stream = tasks.relabel_fraction(x, num_classes, 1.0)
    roots = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(int(s)), 1) for s in np.asarray(seeds).reshape(-1)])
    y0 = jax.vmap(lambda r: stream.init(jax.random.fold_in(r, 0)).y)(roots)

    @jax.jit
    def replay(root, y):
        def body(carry, r):
            y, last = carry
            y, sel = _relabel_with_mask(jax.random.fold_in(root, r), y, k, num_classes)
            return (y, jnp.where(sel, r, last)), None

        (y, last), _ = jax.lax.scan(body, (y, jnp.zeros((n,), jnp.int32)), jnp.arange(1, resets, dtype=jnp.int32))
        return y, last

    labels, last = jax.vmap(replay)(roots, y0)
    ages = schedule.total_steps - np.asarray(last, np.int64) * between
    return ages, np.asarray(labels)


def final_correct(network: Network, run: ShiftRun, f: int, x) -> np.ndarray:
    """``(S, N)`` bool: is each example classified as its current label by the final
    parameters of fraction index ``f`` (one per seed)?"""
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a[f]), run.final_params)
    logits = jax.vmap(network.apply, in_axes=(0, None))(params, jnp.asarray(x))
    return np.asarray(jnp.argmax(logits, -1)) == run.final_labels[f]


def spearman_of_means(fractions: Sequence[float]):
    """Statistic for ``claims.bootstrap_interval``: samples ``(S, F)`` -> Spearman
    correlation between ``fractions`` and the seed-mean of each column."""
    from ..claims import spearman

    fr = np.asarray(fractions, np.float64)

    def stat(samples: np.ndarray) -> float:
        return spearman(fr, np.asarray(samples, np.float64).mean(0))

    return stat
