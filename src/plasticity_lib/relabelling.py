"""Gradual relabelling with an equal budget (Lyle et al. 2024, §3.1, Fig. 1).

§3.1, "Smoothness of distribution shifts": a fixed set of ``N`` images gets uniformly
random labels; at every *iteration* boundary a fraction ``eps`` of the labels is
re-randomised (exactly ``round(eps * N)`` images chosen uniformly at random, each given
a fresh uniform label) and training continues from the current parameters and
optimizer state. The budget is ``iterations`` iterations of ``iteration_steps``
optimizer steps *at eps = 1*; a run with fraction ``eps`` resets ``1 / eps`` times as
often, with ``eps * iteration_steps`` steps between resets, so every fraction takes the
same total number of steps and re-draws the same total number of labels
(``iterations * N``).

This module holds the named pieces of that protocol:

* :class:`Schedule` / :func:`make_schedule`: the equal-budget schedule, expressed on a
  *common chunk* of ``min(fractions) * iteration_steps`` steps, so that models of every
  fraction can train side by side in one ``vmap`` (fraction ``eps`` relabels at chunk
  ``j`` when ``j`` is a positive multiple of its period ``eps / min(fractions)``).
* :func:`relabel`: re-randomise exactly ``k`` labels (``k`` may be traced); the same
  numbers as ``tasks.relabel_fraction(x, C, k / N).next``.
* :func:`relabel_at_chunk`: the relabelling due at chunk ``j`` of a model, with the
  engine's key scheme (reset ``r`` uses ``fold_in(root, r)``, ``root =
  keys.task_root(seed)``), so a run of one fraction gives the numbers of
  ``train.train_stream(..., tasks.relabel_fraction(x, C, eps), ...)``.
* :func:`end_of_run`: the statistic of Fig. 1's inset, the mean of the end-of-iteration
  values in the last part of the budget.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import tasks

__all__ = ["Schedule", "make_schedule", "relabel", "relabel_at_chunk", "end_of_run"]


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The equal-budget relabelling schedule of §3.1 (all step counts are integers).

    Attributes:
      fractions: the re-randomised fractions ``eps`` ``(F,)`` (ascending).
      iterations: budget in eps = 1 iterations (paper: 40).
      iteration_steps: optimizer steps of one eps = 1 iteration (paper: 100,000).
      evals_per_iteration: evaluation points per eps = 1 iteration.
      chunk_steps: ``min(fractions) * iteration_steps``, the common chunk.
      periods: chunks between resets for each fraction (``eps / min(fractions)``).
      steps_between_resets: ``eps * iteration_steps`` for each fraction.
      resets: iterations of each fraction in the budget (``iterations / eps``: the
        initial labelling and ``iterations / eps - 1`` relabellings).
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
        """``iterations * iteration_steps``: the budget of every fraction."""
        return self.iterations * self.iteration_steps

    @property
    def eval_steps(self) -> np.ndarray:
        """``(iterations * evals_per_iteration,)`` global step of each evaluation point."""
        n = self.iterations * self.evals_per_iteration
        return (np.arange(1, n + 1) * self.chunks_per_eval * self.chunk_steps).astype(np.int64)

    def iteration_end_mask(self) -> np.ndarray:
        """``(F, n_evals)`` bool: the evaluation point is the end of an iteration of
        fraction ``f`` (a multiple of ``steps_between_resets[f]``; the evaluation comes
        before the next relabelling)."""
        steps = self.eval_steps
        return np.stack([steps % s == 0 for s in self.steps_between_resets])

    def iteration_ends(self, f: int) -> tuple[np.ndarray, np.ndarray]:
        """``(budget, mask)`` for fraction index ``f``: ``mask`` ``(n_evals,)`` selects the
        evaluation points that end an iteration, ``budget`` ``(P,)`` is their global step
        as a fraction of the budget (``step / total_steps``)."""
        mask = self.iteration_end_mask()[f]
        return self.eval_steps[mask] / self.total_steps, mask

    def eval_index(self, step: int) -> int:
        """Index of the evaluation point at global step ``step`` (raises if none)."""
        idx = np.flatnonzero(self.eval_steps == step)
        if idx.size != 1:
            raise ValueError(
                f"step={step} is not an evaluation point (every {self.eval_every} steps)"
            )
        return int(idx[0])

    @property
    def eval_every(self) -> int:
        """Steps between two evaluation points."""
        return self.chunks_per_eval * self.chunk_steps


def _as_int(value: float, what: str) -> int:
    r = int(round(value))
    if abs(value - r) > 1e-6 * max(1.0, abs(value)) or r < 1:
        raise ValueError(f"{what} = {value:g} must be a positive integer")
    return r


def make_schedule(
    fractions: Sequence[float],
    iterations: int,
    iteration_steps: int,
    evals_per_iteration: int = 10,
) -> Schedule:
    """Validate and derive the §3.1 schedule; every step count must be a whole number.

    Each fraction must be in (0, 1], ``fraction * iteration_steps`` and ``1 / fraction``
    must be integers, every fraction a whole multiple of the smallest, and
    ``iteration_steps / evals_per_iteration`` a whole multiple of the common chunk.
    E.g. ``make_schedule([0.01, 0.1, 0.5, 1], 15, 600)`` has a chunk of 6 steps,
    periods ``(1, 10, 50, 100)`` chunks and ``(1500, 150, 30, 15)`` iterations.
    """
    fr = tuple(sorted(float(f) for f in fractions))
    if not fr or len(set(fr)) != len(fr):
        raise ValueError(f"fractions={list(fractions)} must be non-empty and distinct")
    if any(not 0.0 < f <= 1.0 for f in fr):
        raise ValueError(f"fractions={list(fractions)} must lie in (0, 1]")
    iterations, iteration_steps = int(iterations), int(iteration_steps)
    evals_per_iteration = int(evals_per_iteration)
    if iterations < 1 or iteration_steps < 1 or evals_per_iteration < 1:
        raise ValueError("iterations, iteration_steps and evals_per_iteration must be >= 1")
    base = fr[0]
    chunk = _as_int(
        base * iteration_steps,
        f"min(fractions) * iteration_steps = {base} * {iteration_steps}",
    )
    periods = tuple(_as_int(f / base, f"fraction {f} / min(fractions) {base}") for f in fr)
    between = tuple(p * chunk for p in periods)
    for f in fr:
        _as_int(1.0 / f, f"1 / fraction {f}")
    eval_every = _as_int(
        iteration_steps / evals_per_iteration,
        f"iteration_steps / evals_per_iteration = {iteration_steps} / {evals_per_iteration}",
    )
    if eval_every % chunk:
        raise ValueError(
            f"the evaluation spacing {eval_every} steps must be a multiple of the chunk "
            f"{chunk} steps"
        )
    resets = tuple(iterations * iteration_steps // b for b in between)
    return Schedule(
        fr,
        iterations,
        iteration_steps,
        evals_per_iteration,
        chunk,
        periods,
        between,
        resets,
        eval_every // chunk,
    )


def relabel(key: jax.Array, y: jax.Array, k, num_classes: int) -> tuple[jax.Array, jax.Array]:
    """Re-randomise exactly ``k`` of the labels ``y`` ``(N,)`` (``k`` may be traced).

    The same computation as ``tasks.relabel_fraction(x, num_classes, k / N).next``:
    ``k_sel, k_new = split(key)``; the ``k`` examples ``random_subset_mask(k_sel, N, k)``
    get fresh uniform labels drawn with ``k_new`` (a fresh label may equal the old one,
    probability ``1 / num_classes``); the others keep theirs.

    Returns:
      ``(labels, redrawn)``: int32 ``(N,)`` and the bool ``(N,)`` mask of the ``k``
      re-drawn examples.
    """
    k_sel, k_new = jax.random.split(key)
    redrawn = tasks.random_subset_mask(k_sel, y.shape[0], k)
    _, fresh = tasks.random_labels_transform(num_classes)(k_new, None, y)
    return jnp.where(redrawn, fresh, y).astype(jnp.int32), redrawn


def relabel_at_chunk(
    root: jax.Array, chunk, period, y: jax.Array, k, num_classes: int
) -> tuple[jax.Array, jax.Array]:
    """The labels of one model for chunk ``chunk`` of :class:`Schedule` (traceable).

    A model of period ``period`` (chunks between resets) relabels before chunk ``j``
    when ``j > 0`` and ``j % period == 0``; that is its reset ``r = j // period``,
    which uses the key ``fold_in(root, r)`` (the engine's task key of task ``r``).

    Args:
      root: ``(2,)`` the model's task root (``keys.task_root``).
      chunk, period, k: int32 scalars (may be traced): the chunk index, the period in
        chunks and the number of labels re-drawn per reset.
      y: ``(N,)`` int32, the labels before the chunk.
    Returns:
      ``(labels, redrawn)``: ``(N,)`` int32 labels to train the chunk on and the bool
      ``(N,)`` mask of the labels re-drawn now (all False when no reset is due).
    """
    due = (chunk % period == 0) & (chunk > 0)
    fresh, redrawn = relabel(jax.random.fold_in(root, chunk // period), y, k, num_classes)
    return jnp.where(due, fresh, y), redrawn & due


def end_of_run(schedule: Schedule, values: np.ndarray, last: float = 0.1) -> np.ndarray:
    """``(F, S)``: mean of ``values`` ``(F, S, n_evals)`` over the iteration ends of each
    fraction that fall in the last ``last`` of the budget (global step >
    ``(1 - last) * total_steps``). §3.1's "final accuracy" (Fig. 1, top-left inset)."""
    out = []
    for f, eps in enumerate(schedule.fractions):
        budget, mask = schedule.iteration_ends(f)
        sel = budget > 1.0 - last + 1e-9
        if not sel.any():
            raise ValueError(f"no iteration end of fraction {eps} in the last {last} of the budget")
        out.append(np.asarray(values)[f][:, mask][:, sel].mean(1))
    return np.stack(out)


def steps_to_accuracy(
    network,
    cfg,
    x: jax.Array,
    num_classes: int,
    seeds: Sequence[int],
    *,
    target: float = 0.9,
    every: int = 25,
    max_steps: int = 3000,
) -> np.ndarray:
    """Steps in which a *fresh* network reaches ``target`` training accuracy on one
    uniform random labelling of ``x`` (the probe that fixes the K of the §2.2 plasticity
    measure in chapter 2, issue 15).

    Each seed ``s`` trains the engine's initialisation of seed ``s``
    (``train.init_state``) with ``cfg`` on its own labelling, drawn by
    ``tasks.random_labels(x, num_classes).init(fold_in(PRNGKey(s), 7919))`` (a key of no
    other use). The accuracy on all ``N`` images is evaluated every ``every`` steps inside
    the compiled scan (``metrics_fn`` of ``train.train_steps``).

    Args:
      network: ``models.make_network(...)``; cfg: ``train.TrainConfig``.
      x: ``(N, features)`` inputs; num_classes: classes of the random labels.
      seeds: ``(S,)`` seeds (use seeds the chapter does not use).
      target: accuracy to reach; every: evaluation period (steps); max_steps: a multiple of
        ``every``, the longest probe.
    Returns:
      ``(S,)`` int64: the first evaluated step at which the accuracy is ``>= target``
      (a multiple of ``every``), or ``-1`` when it is not reached within ``max_steps``.
    """
    from . import train as train_mod

    seeds = [int(s) for s in seeds]
    if max_steps % every:
        raise ValueError(f"max_steps={max_steps} must be a multiple of every={every}")
    stream = tasks.random_labels(x, num_classes)
    ys = jnp.stack([stream.init(jax.random.fold_in(jax.random.PRNGKey(s), 7919)).y for s in seeds])
    task = tasks.Task(x, ys, jnp.ones((x.shape[0],), jnp.float32))

    def accuracy(params, task, key):
        logits = network.apply(params, task.x)
        return {"full_accuracy": jnp.mean((jnp.argmax(logits, -1) == task.y).astype(jnp.float32))}

    state = train_mod.init_state(network, cfg, seeds, x[:2])
    _, logs = train_mod.train_steps(
        network,
        cfg,
        state,
        task,
        max_steps,
        log_every=every,
        metrics_fn=accuracy,
        task_batched=(None, 0, None),
    )
    acc = np.asarray(logs["full_accuracy"])  # (S, max_steps // every)
    reached = acc >= target
    first = (np.argmax(reached, axis=1) + 1) * every
    return np.where(reached.any(axis=1), first, -1).astype(np.int64)


__all__ += ["steps_to_accuracy"]
