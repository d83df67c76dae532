"""The plasticity measure of §2.2: train on a fresh task from a checkpoint and from scratch.

Paper: Lyle et al. (2024), §2.2: "we will say that a network has lost plasticity if it is
unable to optimize its objective function as effectively as a randomly initialized
network. Plasticity can thus be thought of as the quality of a particular point in
parameter space to serve as a starting point for optimization."

Protocol (one number per checkpoint and seed)
---------------------------------------------
For each seed ``s`` (the integer seed of the run the checkpoints come from):

1. A *fresh task* is drawn from ``stream`` with the key
   ``k_s = fold_in(fold_in(PRNGKey(s), keys.PROBE), task_index)``: the task is
   ``stream.init(fold_in(k_s, 0))``. For classification, ``stream =
   tasks.random_labels(x, num_classes)`` (the default when ``x`` and ``num_classes`` are
   given): a fresh uniform random labelling of the same inputs.
2. Every checkpoint ``c`` of seed ``s`` trains on that task for ``steps`` optimizer steps
   of ``cfg`` (the engine's training step: ``train.init_state`` with the checkpoint's
   parameters and a **fresh optimizer state**, then ``train.train_steps``), with the
   minibatches of key ``fold_in(k_s, 1)``.
3. A *fresh initialisation* of seed ``s`` (``fresh_params``; by default
   ``train.initial_params(network, seeds)``: the parameters the engine initialises seed
   ``s`` with) trains on **the same task with the same minibatches**.
4. Both are evaluated on the whole fresh task (``train.evaluate_task``: mean training
   loss, and accuracy for integer labels).

Reported per checkpoint and seed: the final training loss and accuracy of the
checkpoint and of the fresh network, ``loss_ratio = checkpoint_loss / fresh_loss`` (> 1:
the checkpoint optimises the fresh task less well than a fresh network: plasticity
lost; a checkpoint that *is* the fresh initialisation gives exactly 1) and
``accuracy_gap = fresh_accuracy - checkpoint_accuracy`` (> 0: plasticity lost), plus
``loss_difference = checkpoint_loss - fresh_loss``.

All models (``C`` checkpoints x ``S`` seeds, plus ``S`` fresh networks) are initialised,
trained (``lax.scan`` over steps inside the engine) and evaluated in ONE jitted program,
vmapped over a flat model axis of size ``(C + 1) * S``. Fields of the fresh task that do
not depend on the key (e.g. the inputs of a label-only stream) are passed to the
program once, not once per model.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import keys as keys_mod
from .. import tasks as tasks_mod
from .. import train as train_mod

__all__ = ["PlasticityMeasure", "plasticity_measure"]


@dataclasses.dataclass
class PlasticityMeasure:
    """Result of :func:`plasticity_measure` (numpy arrays; ``C`` checkpoints, ``S`` seeds).

    Attributes:
      seeds: ``(S,)`` int, the seeds (columns of every ``(C, S)`` array).
      steps: optimizer steps trained on the fresh task.
      checkpoint_loss, checkpoint_accuracy: ``(C, S)`` final training loss / accuracy on
        the fresh task of the network started from each checkpoint (accuracy is None for
        regression tasks).
      fresh_loss, fresh_accuracy: ``(S,)`` the same for the fresh initialisations.
      loss_ratio: ``(C, S)`` ``checkpoint_loss / fresh_loss`` (> 1: plasticity lost).
      loss_difference: ``(C, S)`` ``checkpoint_loss - fresh_loss``.
      accuracy_gap: ``(C, S)`` ``fresh_accuracy - checkpoint_accuracy`` (> 0: plasticity
        lost), or None for regression.
    """

    seeds: np.ndarray
    steps: int
    checkpoint_loss: np.ndarray
    checkpoint_accuracy: Optional[np.ndarray]
    fresh_loss: np.ndarray
    fresh_accuracy: Optional[np.ndarray]

    @property
    def loss_ratio(self) -> np.ndarray:
        return self.checkpoint_loss / self.fresh_loss[None, :]

    @property
    def loss_difference(self) -> np.ndarray:
        return self.checkpoint_loss - self.fresh_loss[None, :]

    @property
    def accuracy_gap(self) -> Optional[np.ndarray]:
        if self.checkpoint_accuracy is None or self.fresh_accuracy is None:
            return None
        return self.fresh_accuracy[None, :] - self.checkpoint_accuracy

    def frame(self, checkpoint_names: Optional[Sequence[Any]] = None):
        """A long pandas DataFrame: one row per (checkpoint, seed) with every quantity."""
        import pandas as pd

        c, s = self.checkpoint_loss.shape
        names = list(range(c)) if checkpoint_names is None else list(checkpoint_names)
        if len(names) != c:
            raise ValueError(f"checkpoint_names has {len(names)} entries; expected {c}")
        rows = []
        for i in range(c):
            for j in range(s):
                row = {
                    "checkpoint": names[i],
                    "seed": int(self.seeds[j]),
                    "checkpoint_loss": float(self.checkpoint_loss[i, j]),
                    "fresh_loss": float(self.fresh_loss[j]),
                    "loss_ratio": float(self.loss_ratio[i, j]),
                }
                if self.accuracy_gap is not None:
                    row["checkpoint_accuracy"] = float(self.checkpoint_accuracy[i, j])
                    row["fresh_accuracy"] = float(self.fresh_accuracy[j])
                    row["accuracy_gap"] = float(self.accuracy_gap[i, j])
                rows.append(row)
        return pd.DataFrame(rows)


def _leaf_ndim(network, example_x) -> int:
    ref = jax.eval_shape(
        network.init,
        jax.random.PRNGKey(0),
        jax.ShapeDtypeStruct(np.shape(example_x), jnp.float32),
    )
    return jax.tree_util.tree_leaves(ref)[0].ndim


def _task_keys(seeds: np.ndarray, task_index: int) -> tuple[jax.Array, jax.Array]:
    """``(S, 2)`` task keys and ``(S, 2)`` minibatch keys of the fresh task."""
    root = keys_mod.for_seeds(seeds, keys_mod.PROBE)
    k = jax.vmap(jax.random.fold_in, in_axes=(0, None))(root, jnp.uint32(task_index))
    fold = jax.vmap(jax.random.fold_in, in_axes=(0, None))
    return fold(k, jnp.uint32(0)), fold(k, jnp.uint32(1))


def _fresh_tasks(stream, task_keys: jax.Array):
    """The fresh task of every seed: ``(fields, axes)`` with seed-independent fields
    stored once (axis None) and the others stacked over seeds (axis 0).

    A field counts as seed-independent when two different keys give identical values
    (e.g. the inputs of a label-only stream); only the seed-dependent fields are
    computed under ``vmap``, so shared inputs are never copied once per seed."""
    probe_a = stream.init(jax.random.PRNGKey(1_000_003))
    probe_b = stream.init(jax.random.PRNGKey(2_000_029))
    shared = tuple(bool(np.array_equal(a, b)) for a, b in zip(probe_a, probe_b))
    dep = [i for i, s in enumerate(shared) if not s]

    @jax.jit
    def per_seed(ks):
        return jax.vmap(lambda k: tuple(stream.init(k)[i] for i in dep))(ks)

    stacked = per_seed(task_keys) if dep else ()
    fields, it = [], iter(stacked)
    for i, s in enumerate(shared):
        fields.append(jnp.asarray(probe_a[i]) if s else next(it))
    return type(probe_a)(*fields), tuple(None if s else 0 for s in shared)


@functools.lru_cache(maxsize=16)
def _program(network, cfg, steps: int, model_seeds: tuple, task_axes: tuple, reps: int, loss: str):
    """The one jitted program: init (fresh optimizer state), train, evaluate all models."""

    def tile(a):  # (S, ...) -> (reps * S, ...): model m uses seed m % S
        return jnp.tile(a, (reps,) + (1,) * (a.ndim - 1))

    def run(params, task, rng):
        example_x = task.x[0, :2] if task_axes[0] == 0 else task.x[:2]
        state = train_mod.init_state(network, cfg, list(model_seeds), example_x, init_params=params)
        state = state._replace(rng=tile(rng))
        model_task = type(task)(*[f if ax is None else tile(f) for f, ax in zip(task, task_axes)])
        batched = tuple(None if ax is None else 0 for ax in task_axes)
        state, _ = train_mod.train_steps(
            network, cfg, state, model_task, steps, task_batched=batched
        )

        def evaluate(p, *fields):
            t = tasks_mod.Task(*fields)
            return train_mod.evaluate_task(
                network,
                p,
                t,
                loss,
                batch_size=cfg.eval_batch_size,
                label_smoothing=cfg.label_smoothing,
            )

        return jax.vmap(evaluate, in_axes=(0, *batched))(state.params, *model_task)

    return jax.jit(run)


def plasticity_measure(
    network,
    cfg,
    params,
    seeds: Sequence[int],
    *,
    steps: int,
    stream=None,
    x=None,
    num_classes: Optional[int] = None,
    fresh_params=None,
    task_index: int = 0,
) -> PlasticityMeasure:
    """The §2.2 plasticity measure of checkpoints against fresh initialisations.

    Args:
      network: ``models.make_network(cfg)``.
      cfg: ``train.TrainConfig`` of the fresh-task training (optimizer, learning rate,
        batch size, loss, regularisers); the optimizer state always starts fresh.
      params: checkpoint parameters, every leaf ``(C, S, *leaf_shape)`` (``C``
        checkpoints of each of the ``S`` seeds) or ``(S, *leaf_shape)`` (one checkpoint).
      seeds: ``(S,)`` the integer seeds of the runs the checkpoints come from: they pick
        the fresh task and minibatches (module docstring) and, by default, the fresh
        initialisations.
      steps: optimizer steps on the fresh task (K).
      stream: a ``tasks.TaskStream``; its ``init`` draws the fresh task. Or give ``x``
        ``(N, ...)`` and ``num_classes``: the fresh task is then a random labelling of
        ``x`` (``tasks.random_labels``).
      fresh_params: the fresh initialisations, leaves ``(S, *leaf_shape)``; default
        ``train.initial_params(network, seeds, x)`` (the engine's initialisation of each
        seed, so checkpoint 0 of a run kept with ``keep_initial_params`` gives a ratio of
        exactly 1).
      task_index: draw a different fresh task (0, 1, ...) for the same seeds.
    Returns:
      :class:`PlasticityMeasure` (``(C, S)`` arrays; ``C = 1`` for ``(S, ...)`` params).
    Raises:
      ValueError: wrong ``params`` / ``fresh_params`` shapes, ``steps`` < 1, or neither
        ``stream`` nor ``x`` and ``num_classes`` given (or both).
    """
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"plasticity_measure: steps={steps!r} must be an integer >= 1")
    if not isinstance(task_index, (int, np.integer)) or task_index < 0:
        raise ValueError(f"plasticity_measure: task_index={task_index!r} must be an int >= 0")
    if (stream is None) == (x is None):
        raise ValueError(
            "plasticity_measure: give either stream= (a tasks.TaskStream) or x= and "
            "num_classes= (a random labelling of x), not both"
        )
    if stream is None:
        if num_classes is None:
            raise ValueError("plasticity_measure: x= needs num_classes= (random labels)")
        stream = tasks_mod.random_labels(x, num_classes)
    seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
    s = int(seeds.size)
    if s < 1:
        raise ValueError("plasticity_measure: seeds is empty; give one int per seed")

    task_keys, mb_keys = _task_keys(seeds, int(task_index))
    task, task_axes = _fresh_tasks(stream, task_keys)
    example_x = task.x[0, :2] if task_axes[0] == 0 else task.x[:2]
    nd = _leaf_ndim(network, example_x)
    leaf = jax.tree_util.tree_leaves(params)[0]
    if np.ndim(leaf) == nd + 1:
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], params)
    elif np.ndim(leaf) != nd + 2:
        raise ValueError(
            f"plasticity_measure: params' first leaf has shape {np.shape(leaf)}; expected "
            f"(C, S, ...) or (S, ...) with S = {s} and {nd} parameter axes"
        )
    c, s_params = np.shape(jax.tree_util.tree_leaves(params)[0])[:2]
    if s_params != s:
        raise ValueError(
            f"plasticity_measure: params have {s_params} seeds on axis 1 but seeds has {s}"
        )
    if fresh_params is None:
        fresh_params = train_mod.initial_params(network, list(seeds), example_x)
    fleaf = jax.tree_util.tree_leaves(fresh_params)[0]
    if np.ndim(fleaf) != nd + 1 or np.shape(fleaf)[0] != s:
        raise ValueError(
            f"plasticity_measure: fresh_params' first leaf has shape {np.shape(fleaf)}; "
            f"expected (S, ...) with S = {s}"
        )
    # Model m = i * S + j: checkpoint i (i = C: the fresh network) of seed j.
    all_params = jax.tree_util.tree_map(
        lambda ck, fr: jnp.concatenate(
            [jnp.reshape(ck, (c * s, *np.shape(ck)[2:])), jnp.asarray(fr)], axis=0
        ),
        params,
        fresh_params,
    )
    reps = int(c) + 1
    model_seeds = tuple(int(v) for v in np.tile(seeds, reps))
    fn = _program(network, cfg, int(steps), model_seeds, task_axes, reps, cfg.loss)
    out = fn(all_params, task, mb_keys)
    loss = np.asarray(out["loss"], np.float64).reshape(reps, s)
    acc = out.get("accuracy")
    acc = None if acc is None else np.asarray(acc, np.float64).reshape(reps, s)
    return PlasticityMeasure(
        seeds=seeds,
        steps=int(steps),
        checkpoint_loss=loss[:-1],
        checkpoint_accuracy=None if acc is None else acc[:-1],
        fresh_loss=loss[-1],
        fresh_accuracy=None if acc is None else acc[-1],
    )
