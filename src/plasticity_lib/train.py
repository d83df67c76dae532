"""The training engine: many models trained at once in one compiled program.

Paper: Lyle et al. (2024). App. B.2 (continual supervised learning: Adam, a fixed number
of optimizer steps per task, then a new task), §4.1 / Fig. 4 (interventions: L2
regularisation and weight decay, weight-norm constraint, feature-norm penalty, ReDo,
squared-gradient-norm penalty, InFeR, Shampoo), §4.1 "Target scale" and App. B.3 (two-hot
loss with label smoothing).

Design
------
* One model = one ``(config, seed)`` pair. ``train_many`` groups configurations that
  differ only in *float hyperparameters* (``HYPER_FIELDS``: learning rate, label
  smoothing, L2, weight decay, penalty coefficients, InFeR scale, ReDo threshold) and
  trains every group in ONE jitted function: ``jax.vmap`` over the models (configs x
  seeds; the hyperparameters are traced values), ``jax.lax.scan`` over tasks' steps.
  A penalty that is zero in one config and non-zero in another puts them in different
  groups (zero means "intervention off": that code is not compiled in).
* The host loop calls the compiled function once per *chunk*, carrying the training
  state between calls (no recompilation), with a tqdm progress bar and optional atomic
  checkpoints. A chunk is ``K`` whole tasks (outer ``lax.scan`` over tasks, calling
  ``stream.next`` at each boundary; inner scans over log windows and steps; the
  task-end evaluation inside the program) or a part of one task. Task 0
  (``stream.init``) is computed once, outside the compiled program, and passed in as an
  argument; leaves that do not depend on the key (found by a conservative jaxpr
  analysis, e.g. the inputs of a label-only stream) are stored once, unbatched, instead
  of once per model. Tasks are not carried between calls: each call regenerates its
  first task inside the compiled program by replaying ``next`` for ``t = 1..t0`` (cheap
  next to training), so under ``vmap`` a leaf stays unbatched as long as the stream
  leaves it seed-independent. The compiled functions are cached (same network,
  structural config, stream, ``metrics_fn`` and protocol: no recompilation).
* Keys: model ``(seed, config)`` uses ``k = PRNGKey(seed)``: ``fold_in(k, 0)``
  initialises the parameters, ``fold_in(k, 1)`` roots the task stream (task ``t`` gets
  ``fold_in(root, t)``), ``fold_in(k, 2)`` is ``TrainState.rng`` (minibatch of global
  step ``g``: ``fold_in(rng, g)``), ``fold_in(k, 3)`` is used for ``metrics_fn``,
  ``fold_in(k, 5)`` initialises the InFeR heads. Configurations that share a seed share
  initial parameters, tasks and minibatches (common random numbers). An optional
  ``init_transform`` (e.g. ``|theta|``) maps each model's fresh parameters inside the
  compiled initialisation (``initial_params`` returns exactly those parameters).
* Reproducibility: the same seeds, code, grouping, chunking and ``metrics_fn`` give
  bit-identical numbers, also after a checkpoint resumption (tested). Anything that
  makes XLA compile a different program may change float rounding, which training
  then amplifies: how models are *grouped into one vmap* (how many models, which
  configs; on CPU chapter 6 measured up to 6e-3 in logged losses between vmap
  widths), the chunking and the sharding (agree to 1e-6 in the tiny tested runs),
  and a different ``metrics_fn``. Results are therefore *not* independent of the
  grouping at the bit level; compare configurations trained in one group, or treat
  differences between groupings as float rounding.
* Minibatches: ``batch_size`` indices drawn i.i.d. uniformly (with replacement) from the
  task's examples with ``mask > 0``, inside the scan.
* Divergence: at every step, a model whose objective or bias/norm-parameter gradients
  are not finite stops updating for the rest of the run: from then on its gradients are
  replaced by zeros and its learning rate by 0 (``jnp.where``), so its parameters stay
  exactly as they were (its optimizer moments keep decaying, unused). It is flagged
  (``diverged``, ``diverged_at_step``: the global step of the first non-finite
  objective/gradient) and its later logged metrics are NaN. Other models in the vmap are
  unaffected. (The check precedes the update so that the selects fuse into the
  optimizer's elementwise update instead of costing extra passes over the state; an
  update that itself overflows, e.g. SGD with an absurd learning rate, is caught one
  step later, when the objective is no longer finite: the frozen parameters are then
  those after that last update.)
* Devices: the model axis is sharded over all devices (``NamedSharding`` over a 1-D mesh
  ``("models",)``; padded to a multiple of the device count); the same code runs on
  one CPU, several GPUs or a TPU.

Losses and regularisers (per model, on a minibatch)
---------------------------------------------------
``objective = data_loss + l2 * ||theta||^2 + feature_norm_penalty * mean_b ||phi(x_b)||^2
+ grad_norm_penalty * ||grad_theta data_loss||^2 + infer_coef * mean_b ||g(x_b) - infer_scale
* g_0(x_b)||^2``. ``theta`` in the L2 term is every network parameter (kernels, biases,
norm scales/offsets; the paper's "L2 regularization" of all parameters) when
``decay_params="all"`` (default), or only the weight matrices / conv kernels
(``"kernels"``); the InFeR heads are never decayed. ``weight_decay`` is decoupled
(optax ``add_decayed_weights`` between the optimizer's direction and the learning
rate, as ``optax.adamw``: ``theta <- theta - lr * (direction + wd * theta)``).

Public API
----------
``TrainConfig``, ``TrainState``, ``RunResult``, ``HYPER_FIELDS``;
``train_stream(network, cfg, stream, seeds, *, num_tasks, steps_per_task, log_every,
metrics_fn=None, eval_every_task=True, keep_task_params=False, keep_initial_params=False,
progress=True, checkpoint_dir=None, chunk_steps=None, init_params=None, init_state=None,
init_transform=None, shard="auto", desc=None) -> RunResult``;
``train_many(network, cfgs, stream, seeds, **same) -> list[RunResult]``;
``initial_params(network, seeds, example_x, *, init_transform=None) -> params``;
``init_state(network, cfg, seeds, example_x, *, init_params=None, init_transform=None)
-> TrainState``;
``train_steps(network, cfg, state, task, num_steps, *, log_every=None, metrics_fn=None,
hparams=None, task_batched=False) -> (TrainState, logs)`` (``task_batched``: False,
True or per-field axes such as ``(None, 0, None)``: shared inputs, per-model labels);
``reset_optimizer(network, cfg, state) -> TrainState``;
``evaluate(network, params, x, y, loss="xent", *, mask=None, batch_size=1024,
label_smoothing=0.0, task_batched=False) -> dict`` (many models, each on its own data
with ``task_batched``); ``evaluate_task(network, params, task, loss="xent", *,
batch_size=1024, label_smoothing=0.0) -> dict`` (one model, traceable: for use inside
jitted programs); ``make_optimizer(cfg, hparams=None)``; the intervention functions
``l2_penalty``, ``apply_weight_norm_constraint``, ``feature_norm_penalty``,
``redo_reset``, ``grad_norm_penalty``, ``infer_penalty``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import jax.extend
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .losses import LOSSES, data_loss, twohot_decode, twohot_encode  # noqa: F401 (re-export)
from .models import Network
from .progress import progress_bar
from .tasks import Task

__all__ = [
    "OPTIMIZERS",
    "DECAY_PARAMS",
    "HYPER_FIELDS",
    "TrainConfig",
    "TrainState",
    "RunResult",
    "make_optimizer",
    "initial_params",
    "init_state",
    "train_steps",
    "reset_optimizer",
    "evaluate",
    "evaluate_task",
    "train_stream",
    "train_many",
    "l2_penalty",
    "apply_weight_norm_constraint",
    "feature_norm_penalty",
    "redo_reset",
    "grad_norm_penalty",
    "infer_penalty",
    "twohot_encode",
    "twohot_decode",
]

Array = jax.Array

OPTIMIZERS = ("adam", "sgd", "shampoo")
DECAY_PARAMS = ("all", "kernels")
HYPER_FIELDS = (
    "learning_rate",
    "label_smoothing",
    "l2",
    "weight_decay",
    "feature_norm_penalty",
    "grad_norm_penalty",
    "infer_coef",
    "infer_scale",
    "redo_tau",
)
# Hyperparameters whose zero/non-zero status decides whether code is compiled in.
_SWITCH_FIELDS = ("l2", "weight_decay", "feature_norm_penalty", "grad_norm_penalty", "infer_coef")
# Placeholders for the other hyperparameters in the structural (static) config.
_PLACEHOLDERS = {"learning_rate": 1.0, "label_smoothing": 0.0, "infer_scale": 1.0, "redo_tau": 0.0}
_SUM_METRICS = ("redo_resets",)


# ----------------------------------------------------------------------------------
# Configuration and state
# ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimiser, loss, regularisers and interventions of one training run. Hashable.

    Attributes:
      optimizer: ``"adam"`` (B.2) | ``"sgd"`` | ``"shampoo"`` (Fig. 4; raises: optax 0.2.8
        has no Shampoo).
      learning_rate: step size (paper: 1e-5 MLP/ResNet, 1e-4 CNN, B.2). Vmappable.
      batch_size: minibatch size (sampled inside the compiled loop).
      loss: ``"xent"`` (softmax cross-entropy) | ``"mse"`` | ``"twohot"`` (B.3; needs a
        network with ``head="twohot"``).
      label_smoothing: for ``xent`` and ``twohot`` (§4.1). Vmappable.
      adam_b1, adam_b2, adam_eps: Adam constants (optax defaults).
      momentum: SGD momentum (0 = plain SGD).
      l2: coefficient of the penalty ``l2 * ||theta||^2`` added to the loss ("L2
        regularization", §4). Vmappable.
      weight_decay: decoupled weight decay (``optax.add_decayed_weights``, scaled by the
        learning rate as in AdamW). Vmappable.
      decay_params: ``"all"`` (every network parameter) | ``"kernels"`` (weight matrices
        and conv kernels only): what ``l2`` and ``weight_decay`` act on.
      reset_optimizer_each_task: re-initialise the optimizer state (Adam moments and step
        count) at every task boundary.
      weight_norm_constraint: after every step rescale each layer's weight matrix / conv
        kernel (incl. the head) to its Frobenius norm at initialisation (§4.1).
      feature_norm_penalty: coefficient of ``mean_b ||features_b||^2`` (penultimate layer).
      redo_every: ReDo (Sokar et al., 2023) period in steps (0 = off). Every
        ``redo_every`` steps the units of each hidden layer with score
        ``s_i = E|h_i| / mean_j E|h_j| <= redo_tau`` (on the current minibatch; a conv
        unit is a channel) get fresh incoming weights (kernel column, bias, norm
        scale/offset drawn from the initialiser), zero outgoing weights, and zero Adam
        moments for all of those entries. MLP and CNN only.
      redo_tau: ReDo threshold (Sokar et al. use 0.025 and 0.1). Vmappable.
      grad_norm_penalty: coefficient of ``||grad_theta data_loss||^2`` (double backprop;
        Barrett & Dherin, 2020). Vmappable.
      infer_coef: InFeR (Lyle et al., 2021) coefficient (0 = off). ``infer_k`` extra
        linear heads ``g(x) = features(x) @ A + a`` are trained jointly to regress
        ``infer_scale * g_0(x)``, the outputs of the *initial* network and heads on the
        same minibatch. Vmappable.
      infer_k: number of InFeR heads.
      infer_scale: InFeR target scale ``beta``. Vmappable.
      eval_batch_size: batch size of the task-end full-training-set evaluation (with
        batch-statistics normalisation, the statistics are those of each eval batch).
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 128
    loss: str = "xent"
    label_smoothing: float = 0.0
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    adam_eps: float = 1e-8
    momentum: float = 0.0
    l2: float = 0.0
    weight_decay: float = 0.0
    decay_params: str = "all"
    reset_optimizer_each_task: bool = False
    weight_norm_constraint: bool = False
    feature_norm_penalty: float = 0.0
    redo_every: int = 0
    redo_tau: float = 0.1
    grad_norm_penalty: float = 0.0
    infer_coef: float = 0.0
    infer_k: int = 10
    infer_scale: float = 10.0
    eval_batch_size: int = 1024

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainConfig.optimizer={self.optimizer!r} is not allowed; choose one of {OPTIMIZERS}")
        if self.loss not in LOSSES:
            raise ValueError(f"TrainConfig.loss={self.loss!r} is not allowed; choose one of {LOSSES}")
        if self.decay_params not in DECAY_PARAMS:
            raise ValueError(
                f"TrainConfig.decay_params={self.decay_params!r} is not allowed; choose one of {DECAY_PARAMS}"
            )
        for name in ("batch_size", "infer_k", "eval_batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"TrainConfig.{name}={v!r} must be an integer >= 1")
        if not isinstance(self.redo_every, (int, np.integer)) or self.redo_every < 0:
            raise ValueError(f"TrainConfig.redo_every={self.redo_every!r} must be an integer >= 0 (0 = off)")
        if not self.learning_rate > 0:
            raise ValueError(f"TrainConfig.learning_rate={self.learning_rate!r} must be > 0")
        for name in ("l2", "weight_decay", "feature_norm_penalty", "grad_norm_penalty", "infer_coef", "redo_tau"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r} must be >= 0")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"TrainConfig.label_smoothing={self.label_smoothing!r} must be in [0, 1)")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"TrainConfig.momentum={self.momentum!r} must be in [0, 1)")


class TrainState(NamedTuple):
    """Training state of one model (or of many, with a leading model axis).

    Attributes:
      params: network parameters (``models`` docstring for the layout).
      aux: InFeR head parameters ``{"kernel": (d, k), "bias": (k,)}`` or ``{}``.
      opt_state: optax state over the pair ``(params, aux)``.
      anchor: constants of the interventions: ``"kernel_norms"`` (weight-norm
        constraint: a tree like ``params`` of initial Frobenius norms), ``"params0"`` and
        ``"aux0"`` (InFeR's initial network), or empty.
      rng: ``uint32[2]`` data key (minibatch of global step g: ``fold_in(rng, g)``).
      step: int32 number of steps taken.
      diverged: bool, frozen because of a non-finite objective or gradient.
      diverged_at_step: int32 global step of divergence (-1 if none).
    """

    params: Any
    aux: Any
    opt_state: Any
    anchor: Any
    rng: Array
    step: Array
    diverged: Array
    diverged_at_step: Array


@dataclasses.dataclass
class RunResult:
    """Result of ``train_stream`` for one config; numpy arrays, leading axis = seed.

    Attributes:
      config, model_config: the ``TrainConfig`` and ``ModelConfig``.
      seeds: ``(S,)`` int.
      num_tasks, steps_per_task, log_every: the protocol.
      log_steps: ``(num_tasks, W)`` global step count at each log (``W = steps_per_task //
        log_every``; the log after step ``s`` of task ``t`` has ``t*steps_per_task + s``).
      logs: ``name -> (S, num_tasks, W, ...)``: ``"loss"`` (data loss, mean over the
        window's minibatches, label smoothing included), ``"objective"`` (with the
        regularisers), ``"accuracy"`` (int labels) or ``"mse"`` (regression/two-hot),
        ``"redo_resets"`` (units reset in the window; ReDo only), ``"param_norm"``
        (at the log step) and every ``metrics_fn`` key (at the log step).
      task_end: ``name -> (S, num_tasks, ...)`` after each task's last step: ``"loss"``
        and ``"accuracy"`` / ``"mse"`` over all of the task's masked examples
        (``eval_every_task``), ``"param_norm"`` and every ``metrics_fn`` key.
      final_params: params tree with leading ``S``.
      final_state: ``TrainState`` with leading ``S`` (to continue: ``init_state=``).
      task_params: params tree with leading ``(S, K)`` at the end of the tasks
        ``task_params_tasks`` (``keep_task_params``), else None.
      task_params_tasks: ``(K,)`` task indices of ``task_params``.
      diverged: ``(S,)`` bool; diverged_at_step: ``(S,)`` int (-1 = never).
      wall_time_s: wall time of the whole compiled group this config was trained in
        (shared by all configs of the group), compilation included.
      num_devices: devices the model axis was sharded over.
      initial_params: params tree with leading ``S``: the parameters training started
        from (after ``init_transform``; ``init_params`` / ``init_state.params`` when
        given) if ``keep_initial_params``, else None.
    """

    config: TrainConfig
    model_config: Any
    seeds: np.ndarray
    num_tasks: int
    steps_per_task: int
    log_every: int
    log_steps: np.ndarray
    logs: dict
    task_end: dict
    final_params: Any
    final_state: Any
    task_params: Any
    task_params_tasks: np.ndarray
    diverged: np.ndarray
    diverged_at_step: np.ndarray
    wall_time_s: float
    num_devices: int
    initial_params: Any = None

    def logs_frame(self):
        """Long ``pandas.DataFrame`` of the scalar logs: seed, task, step, metric, value."""
        import pandas as pd

        rows = []
        for name, arr in self.logs.items():
            if arr.ndim != 3:
                continue
            s, t, w = np.meshgrid(np.arange(arr.shape[0]), np.arange(arr.shape[1]), np.arange(arr.shape[2]), indexing="ij")
            rows.append(pd.DataFrame({
                "seed": self.seeds[s.ravel()], "task": t.ravel(), "step": self.log_steps[t.ravel(), w.ravel()],
                "metric": name, "value": arr.ravel(),
            }))
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()

    def task_end_frame(self):
        """``pandas.DataFrame`` with one row per (seed, task) and a column per scalar metric."""
        import pandas as pd

        s, t = np.meshgrid(np.arange(len(self.seeds)), np.arange(self.num_tasks), indexing="ij")
        cols = {"seed": self.seeds[s.ravel()], "task": t.ravel()}
        for name, arr in self.task_end.items():
            if arr.ndim == 2:
                cols[name] = arr.ravel()
        return pd.DataFrame(cols)


# ----------------------------------------------------------------------------------
# Hyperparameters
# ----------------------------------------------------------------------------------


def _hparams(cfg: TrainConfig) -> dict:
    return {f: jnp.float32(getattr(cfg, f)) for f in HYPER_FIELDS}


def _structural(cfg: TrainConfig) -> TrainConfig:
    """The config with vmappable floats replaced by flags/placeholders (the static key)."""
    repl = {f: (1.0 if getattr(cfg, f) != 0 else 0.0) for f in _SWITCH_FIELDS}
    repl.update(_PLACEHOLDERS)
    return dataclasses.replace(cfg, **repl)


def _batched_hparams(cfgs: Sequence[TrainConfig], n_seeds: int) -> dict:
    """``{field: (C * S,) float32}``, config-major."""
    return {
        f: np.repeat(np.asarray([getattr(c, f) for c in cfgs], np.float32), n_seeds) for f in HYPER_FIELDS
    }


def _check_compat(network: Network, cfg: TrainConfig) -> None:
    if not isinstance(network, Network):
        raise ValueError(f"network must be a models.Network (make_network(cfg)), got {type(network).__name__}")
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    twohot_head = network.cfg.head == "twohot"
    if (cfg.loss == "twohot") != twohot_head:
        raise ValueError(
            f"TrainConfig.loss={cfg.loss!r} does not match ModelConfig.head={network.cfg.head!r}: "
            "loss='twohot' needs head='twohot' and head='twohot' needs loss='twohot'"
        )
    if cfg.redo_every and network.cfg.arch == "resnet18":
        raise ValueError("TrainConfig.redo_every > 0 (ReDo) is not supported for arch='resnet18' (paper §4.1)")
    if cfg.optimizer == "shampoo":
        _shampoo()  # raises when unavailable


def _shampoo():
    for mod in (optax, getattr(optax, "contrib", None)):
        fn = getattr(mod, "shampoo", None) or getattr(mod, "distributed_shampoo", None)
        if fn is not None:
            return fn
    raise ValueError(
        "TrainConfig.optimizer='shampoo' is not available: optax "
        f"{optax.__version__} provides no Shampoo (checked optax and optax.contrib). "
        "Choose optimizer='adam' or 'sgd'."
    )


# ----------------------------------------------------------------------------------
# Optimizer
# ----------------------------------------------------------------------------------


def _is_kernel_path(path) -> bool:
    last = path[-1]
    return getattr(last, "key", getattr(last, "name", None)) == "kernel"


def _decay_mask(cfg: TrainConfig, params) -> Any:
    if cfg.decay_params == "all":
        return jax.tree_util.tree_map(lambda _: True, params)
    return jax.tree_util.tree_map_with_path(lambda p, _: _is_kernel_path(p), params)


def make_optimizer(cfg: TrainConfig, hparams: Optional[dict] = None) -> optax.GradientTransformation:
    """The optax transformation for ``cfg`` over the trainable pair ``(params, aux)``.

    ``adam``: ``scale_by_adam``; ``sgd``: identity or momentum trace; then decoupled
    ``add_decayed_weights(weight_decay)`` on the network params selected by
    ``decay_params`` (when ``weight_decay > 0``); then ``scale_by_learning_rate``.
    ``hparams`` (dict of possibly traced scalars) overrides the float fields of ``cfg``.
    """
    hp = _hparams(cfg) if hparams is None else hparams
    parts = []
    if cfg.optimizer == "adam":
        parts.append(optax.scale_by_adam(b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.adam_eps))
    elif cfg.optimizer == "sgd":
        if cfg.momentum:
            parts.append(optax.trace(decay=cfg.momentum))
    elif cfg.optimizer == "shampoo":
        return _shampoo()(learning_rate=hp["learning_rate"])
    if cfg.weight_decay:
        parts.append(
            optax.add_decayed_weights(
                hp["weight_decay"],
                mask=lambda tr: (_decay_mask(cfg, tr[0]), jax.tree_util.tree_map(lambda _: False, tr[1])),
            )
        )
    parts.append(optax.scale_by_learning_rate(hp["learning_rate"]))
    return optax.chain(*parts)


# ----------------------------------------------------------------------------------
# Interventions (small pure functions; §4.1, Fig. 4)
# ----------------------------------------------------------------------------------


def _sq_norm(tree) -> Array:
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.float32(0.0)
    return sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves)


def l2_penalty(params, coef, decay_params: str = "all") -> Array:
    """``coef * sum ||theta||^2`` over the leaves selected by ``decay_params`` ("all" | "kernels")."""
    if decay_params == "all":
        return coef * _sq_norm(params)
    leaves = [x for p, x in jax.tree_util.tree_leaves_with_path(params) if _is_kernel_path(p)]
    return coef * _sq_norm(leaves)


def kernel_norms(params) -> Any:
    """Tree like ``params`` of Frobenius norms (scalars) of every leaf."""
    return jax.tree_util.tree_map(lambda x: jnp.sqrt(jnp.sum(jnp.square(x))), params)


def apply_weight_norm_constraint(params, init_norms, frozen=False) -> Any:
    """Rescale every ``kernel`` leaf to its initial Frobenius norm (§4.1); others unchanged.

    ``init_norms``: ``kernel_norms(initial_params)``. ``frozen`` (bool, may be traced):
    leave ``params`` exactly unchanged (a diverged model).
    """

    def f(path, x, n0):
        if not _is_kernel_path(path):
            return x
        factor = n0 / jnp.maximum(jnp.sqrt(jnp.sum(jnp.square(x))), 1e-12)
        return x * jnp.where(frozen, 1.0, factor)

    return jax.tree_util.tree_map_with_path(f, params, init_norms)


def feature_norm_penalty(features: Array, coef) -> Array:
    """``coef * mean_b ||features_b||^2`` for ``features`` ``(batch, d)`` (§4.1)."""
    return coef * jnp.mean(jnp.sum(jnp.square(features), axis=-1))


def grad_norm_penalty(grads, coef) -> Array:
    """``coef * ||grads||^2``; differentiate through ``grads`` for double backprop."""
    return coef * _sq_norm(grads)


def infer_penalty(features: Array, aux, features0: Array, aux0, coef, scale) -> Array:
    """InFeR (Lyle et al., 2021): ``coef * mean_b ||g(x_b) - scale * g_0(x_b)||^2``.

    ``g(x) = features @ aux["kernel"] + aux["bias"]`` (``(batch, k)``); ``g_0`` the same
    with the initial network's features and heads (treated as constants).
    """
    pred = features @ aux["kernel"] + aux["bias"]
    target = jax.lax.stop_gradient(features0 @ aux0["kernel"] + aux0["bias"])
    return coef * jnp.mean(jnp.sum(jnp.square(pred - scale * target), axis=-1))


def _unit_mask(dormant: Array, shape: tuple, axis: int) -> Array:
    n = shape[axis]
    vec = dormant if n == dormant.shape[0] else jnp.tile(dormant, n // dormant.shape[0])
    bshape = [1] * len(shape)
    bshape[axis] = n
    return jnp.broadcast_to(vec.reshape(bshape), shape)


def _get(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def _set(tree: dict, path, value) -> dict:
    tree = dict(tree)
    if len(path) == 1:
        tree[path[0]] = value
    else:
        tree[path[0]] = _set(tree[path[0]], path[1:], value)
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
    scores = redo_scores(acts, [l.num_units for l in layers])
    in_masks: dict = {}
    out_masks: dict = {}
    aux_mask = jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, bool), aux)
    n_reset = jnp.int32(0)
    for li, (layer, s) in enumerate(zip(layers, scores)):
        dormant = s <= tau
        n_reset = n_reset + jnp.sum(dormant).astype(jnp.int32)
        for path, axis in layer.incoming:
            shape = _get(params, path).shape
            m = _unit_mask(dormant, shape, axis)
            in_masks[path] = in_masks[path] | m if path in in_masks else m
        for path, axis in layer.outgoing:
            shape = _get(params, path).shape
            m = _unit_mask(dormant, shape, axis)
            out_masks[path] = out_masks[path] | m if path in out_masks else m
        if li == len(layers) - 1 and aux:
            aux_mask = dict(aux_mask, kernel=_unit_mask(dormant, aux["kernel"].shape, 0))
    new = params
    for path, m in in_masks.items():
        new = _set(new, path, jnp.where(m, _get(fresh, path), _get(new, path)))
    for path, m in out_masks.items():
        new = _set(new, path, jnp.where(m, 0.0, _get(new, path)))
    new_aux = jax.tree_util.tree_map(lambda x, m: jnp.where(m, 0.0, x), aux, aux_mask)
    pmask = jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, bool), params)
    for path in set(in_masks) | set(out_masks):
        m = in_masks.get(path, False) | out_masks.get(path, False)
        pmask = _set(pmask, path, jnp.broadcast_to(m, _get(params, path).shape))
    new_opt = optax.tree_map_params(
        optimizer,
        lambda s, m: jnp.where(m, jnp.zeros_like(s), s),
        opt_state,
        (pmask, aux_mask),
        transform_non_params=lambda s: s,
    )
    return new, new_aux, new_opt, n_reset


# ----------------------------------------------------------------------------------
# One model: init, step, windows of steps, evaluation
# ----------------------------------------------------------------------------------


def _atoms(network: Network):
    return jnp.asarray(network.atoms) if network.cfg.head == "twohot" else None


def _feature_dim(network: Network, example_x) -> int:
    def f(x):
        p = network.init(jax.random.PRNGKey(0), x)
        return network.apply_with_intermediates(p, x)[1].features

    return int(jax.eval_shape(f, jax.ShapeDtypeStruct(example_x.shape, jnp.float32)).shape[-1])


def _derive(keys: Array, c: int) -> Array:
    """``fold_in(k, c)`` for every key of ``keys`` ``(M, 2)`` (eager: one small compile)."""
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, jnp.uint32(c))


def _init_one(network: Network, scfg: TrainConfig, k_data, k_aux, example_x, params) -> TrainState:
    """Initial state of one model from its initial ``params``; keys ``fold_in(PRNGKey(seed),
    2 / 5)`` (module doc). The parameters themselves come from ``_initial_params``."""
    aux = {}
    if scfg.infer_coef:
        d = _feature_dim(network, example_x)
        aux = {
            "kernel": jax.random.normal(k_aux, (d, scfg.infer_k), jnp.float32) / np.sqrt(d),
            "bias": jnp.zeros((scfg.infer_k,), jnp.float32),
        }
    opt_state = make_optimizer(scfg).init((params, aux))
    anchor = {}
    if scfg.weight_norm_constraint:
        anchor["kernel_norms"] = kernel_norms(params)
    if scfg.infer_coef:
        anchor["params0"] = params
        anchor["aux0"] = aux
    return TrainState(
        params=params,
        aux=aux,
        opt_state=opt_state,
        anchor=anchor,
        rng=k_data,
        step=jnp.int32(0),
        diverged=jnp.bool_(False),
        diverged_at_step=jnp.int32(-1),
    )


def _objective(network, scfg, atoms, trainable, hp, anchor, xb, yb):
    params, aux = trainable
    need_feats = bool(scfg.feature_norm_penalty or scfg.infer_coef)

    def fwd(p):
        if need_feats:
            out, inter = network.apply_with_intermediates(p, xb)
            feats = inter.features
        else:
            out, feats = network.apply(p, xb), None
        per_ex, m = data_loss(scfg.loss, out, yb, label_smoothing=hp["label_smoothing"], atoms=atoms)
        return jnp.mean(per_ex), (m, feats)

    if scfg.grad_norm_penalty:
        (dl, (m, feats)), g = jax.value_and_grad(fwd, has_aux=True)(params)
        total = dl + grad_norm_penalty(g, hp["grad_norm_penalty"])
    else:
        dl, (m, feats) = fwd(params)
        total = dl
    if scfg.l2:
        total = total + l2_penalty(params, hp["l2"], scfg.decay_params)
    if scfg.feature_norm_penalty:
        total = total + feature_norm_penalty(feats, hp["feature_norm_penalty"])
    if scfg.infer_coef:
        _, inter0 = network.apply_with_intermediates(anchor["params0"], xb)
        total = total + infer_penalty(
            feats, aux, inter0.features, anchor["aux0"], hp["infer_coef"], hp["infer_scale"]
        )
    metrics = {"loss": dl, "objective": total}
    metrics.update({k: jnp.mean(v) for k, v in m.items()})
    return total, metrics


def _prepare(task):
    mask = task.mask
    order = jnp.argsort(-(mask > 0).astype(jnp.int32), stable=True).astype(jnp.int32)
    n_active = jnp.sum(mask > 0).astype(jnp.int32)
    return task.x, task.y, order, n_active


def _tree_where(c, a, b):
    return jax.tree_util.tree_map(lambda x, y: jnp.where(c, x, y), a, b)


def _train_step(network, scfg, atoms, state: TrainState, hp, data, g):
    """One optimizer step of one model at (unbatched) global step ``g``."""
    x, y, order, n_active = data
    k_batch, k_redo = jax.random.split(jax.random.fold_in(state.rng, g))
    u = jax.random.randint(k_batch, (scfg.batch_size,), 0, jnp.maximum(n_active, 1))
    idx = order[u]
    xb, yb = x[idx], y[idx]
    trainable = (state.params, state.aux)
    grads, metrics = jax.grad(
        lambda tr: _objective(network, scfg, atoms, tr, hp, state.anchor, xb, yb), has_aux=True
    )(trainable)
    # Divergence is decided *before* the update: the objective must be finite, and so must
    # the gradients of the small (<= 1-D: biases, norm parameters) leaves, which a
    # non-finite value created anywhere in back-propagation reaches (a full gradient-norm
    # pass would cost an extra read of every gradient per step). A diverged model gets zero
    # gradients and a zero learning rate: its parameters stay exactly as they are, and the
    # selects fuse into the optimizer's elementwise update (no extra pass over the state).
    small = [leaf for leaf in jax.tree_util.tree_leaves(grads) if leaf.ndim <= 1]
    ok = jnp.isfinite(metrics["objective"])
    if small:
        ok = ok & jnp.isfinite(_sq_norm(small))
    bad = state.diverged | ~ok
    grads = jax.tree_util.tree_map(lambda a: jnp.where(bad, jnp.zeros_like(a), a), grads)
    opt = make_optimizer(scfg, dict(hp, learning_rate=jnp.where(bad, 0.0, hp["learning_rate"])))
    updates, opt_state = opt.update(grads, state.opt_state, trainable)
    params, aux = optax.apply_updates(trainable, updates)
    if scfg.redo_every:

        def do_redo(args):
            p, a, o = args
            _, inter = network.apply_with_intermediates(p, xb)
            p2, a2, o2, n = redo_reset(network, p, a, o, opt, inter.acts, k_redo, hp["redo_tau"], xb)
            return _tree_where(bad, (p, a, o, 0), (p2, a2, o2, n))

        def no_redo(args):
            return (*args, jnp.int32(0))

        params, aux, opt_state, n_reset = jax.lax.cond(
            (g + 1) % scfg.redo_every == 0, do_redo, no_redo, (params, aux, opt_state)
        )
        metrics["redo_resets"] = n_reset.astype(jnp.float32)
    if scfg.weight_norm_constraint:  # after ReDo, so the constraint always holds
        params = apply_weight_norm_constraint(params, state.anchor["kernel_norms"], frozen=bad)
    new_state = TrainState(
        params=params,
        aux=aux,
        opt_state=opt_state,
        anchor=state.anchor,
        rng=state.rng,
        step=state.step + 1,
        diverged=bad,
        diverged_at_step=jnp.where(state.diverged | ok, state.diverged_at_step, g),
    )
    metrics = {k: jnp.where(bad, jnp.nan, v) for k, v in metrics.items()}
    return new_state, metrics


def _nan_if(bad, tree):
    def f(v):
        v = jnp.asarray(v)
        return jnp.where(bad, jnp.nan, v) if jnp.issubdtype(v.dtype, jnp.floating) else v

    return jax.tree_util.tree_map(f, tree)


def _user_metrics(metrics_fn, state, task, key, reserved):
    if metrics_fn is None:
        return {}
    out = metrics_fn(state.params, task, key)
    if not isinstance(out, dict):
        raise ValueError("metrics_fn must return a dict of arrays")
    clash = set(out) & set(reserved)
    if clash:
        raise ValueError(f"metrics_fn keys {sorted(clash)} clash with the engine's metrics {sorted(reserved)}")
    return _nan_if(state.diverged, out)


def _run_windows(network, scfg, atoms, state, hp, task, g0, n_windows, log_every, metrics_fn, metrics_root):
    """``n_windows * log_every`` steps on ``task`` starting at global step ``g0``."""
    data = _prepare(task)

    def window(st, w):
        def inner(s, i):
            return _train_step(network, scfg, atoms, s, hp, data, g0 + w * log_every + i)

        st, ms = jax.lax.scan(inner, st, jnp.arange(log_every, dtype=jnp.int32))
        logs = {k: (jnp.sum(v, 0) if k in _SUM_METRICS else jnp.mean(v, 0)) for k, v in ms.items()}
        logs["param_norm"] = jnp.where(st.diverged, jnp.nan, jnp.sqrt(_sq_norm(st.params)))
        g_end = g0 + (w + 1) * log_every
        logs.update(_user_metrics(metrics_fn, st, task, jax.random.fold_in(metrics_root, g_end), logs))
        return st, logs

    return jax.lax.scan(window, state, jnp.arange(n_windows, dtype=jnp.int32))


def _evaluate_task(network, loss_kind, atoms, params, task, label_smoothing, batch_size):
    """Mean loss and accuracy/mse over the task's masked examples, in batches.

    Batches contain only masked examples (indices cycle over them; the padding of the
    last batch is weighted 0), so batch-statistics normalisation sees only those.
    """
    x, y, order, n_active = _prepare(task)
    n = x.shape[0]
    bs = min(batch_size, n)
    n_batches = (jnp.maximum(n_active, 1) + bs - 1) // bs
    safe = jnp.maximum(n_active, 1)

    def body(j, acc):
        i = j * bs + jnp.arange(bs, dtype=jnp.int32)
        w = (i < n_active).astype(jnp.float32)
        idx = order[i % safe]
        out = network.apply(params, x[idx])
        per_ex, m = data_loss(loss_kind, out, y[idx], label_smoothing=label_smoothing, atoms=atoms)
        new = {"loss": acc["loss"] + jnp.sum(per_ex * w)}
        for k, v in m.items():
            new[k] = acc[k] + jnp.sum(v * w)
        return new

    # Metric names from an abstract evaluation of the loss.
    probe = jax.eval_shape(
        lambda: data_loss(loss_kind, network.apply(params, x[:1]), y[:1], label_smoothing=label_smoothing, atoms=atoms)
    )
    init = {"loss": jnp.float32(0.0), **{k: jnp.float32(0.0) for k in probe[1]}}
    tot = jax.lax.fori_loop(0, n_batches, body, init)
    denom = jnp.maximum(n_active, 1).astype(jnp.float32)
    return {k: v / denom for k, v in tot.items()}


def _task_at(stream, root, t, task0):
    """Task ``t`` of a stream from task 0 (``init(fold_in(root, 0))``): ``next`` for ``1..t``."""
    return jax.lax.fori_loop(1, t + 1, lambda i, tk: stream.next(jax.random.fold_in(root, i), i, tk), task0)


def _key_dependence(fn, key) -> Any:
    """Which outputs of ``fn(key)`` may depend on ``key`` (conservative jaxpr analysis).

    Returns a pytree of bools shaped like the output. An output that is a closed-over
    constant or computed only from constants is ``False``; any equation with a dependent
    input makes all its outputs dependent (sub-programs included), so ``False`` is sound.
    """
    closed, shape = jax.make_jaxpr(fn, return_shape=True)(key)
    jaxpr = closed.jaxpr
    dep = set(jaxpr.invars)

    def is_dep(v):
        return not isinstance(v, jax.extend.core.Literal) and v in dep

    for eqn in jaxpr.eqns:
        if any(is_dep(v) for v in eqn.invars):
            dep.update(eqn.outvars)
    flags = [is_dep(v) for v in jaxpr.outvars]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shape), flags)


def _initial_tasks(stream, roots):
    """Task 0 of every model: ``(task0, in_axes)``; seed-independent leaves unbatched.

    Called eagerly (outside the big compiled program), so the stream's base arrays are
    program arguments rather than embedded constants, and a leaf that does not depend on
    the key (e.g. the inputs of a label-only stream) is stored once, not once per model.
    """
    k0 = jax.random.fold_in(roots[0], 0)
    dep = _key_dependence(stream.init, k0)
    axes = jax.tree_util.tree_map(lambda d: 0 if d else None, dep)
    keys = _derive(roots, 0)
    try:
        task0 = jax.vmap(stream.init, out_axes=axes)(keys)
    except ValueError:  # pragma: no cover - JAX found a dependence we did not
        axes = jax.tree_util.tree_map(lambda _: 0, dep)
        task0 = jax.vmap(stream.init)(keys)
    return task0, axes


# ----------------------------------------------------------------------------------
# Public building blocks
# ----------------------------------------------------------------------------------


def _squeeze_model_axis(arg, ax):
    if ax is None:
        return arg
    if isinstance(ax, int):
        return jax.tree_util.tree_map(lambda a: a[0], arg)
    return type(arg)(*[_squeeze_model_axis(a, x) for a, x in zip(arg, ax)])


def _model_map(fn, in_axes, m: int):
    """``jax.vmap(fn, in_axes)`` over the model axis; for a single model (``m == 1``) ``fn``
    runs on the squeezed arguments instead (same function: on CPU a size-1 vmap makes XLA
    pick transposed layouts for the weight gradients, ~25% slower)."""
    if m != 1:
        return jax.vmap(fn, in_axes=in_axes)

    def single(*args):
        out = fn(*[_squeeze_model_axis(a, ax) for a, ax in zip(args, in_axes)])
        return jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], out)

    return single


def _seed_keys(seeds) -> Array:
    seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


def _params_batched(network: Network, params, example_x) -> bool:
    ref = jax.eval_shape(network.init, jax.random.PRNGKey(0), jax.ShapeDtypeStruct(example_x.shape, jnp.float32))
    ref_leaf = jax.tree_util.tree_leaves(ref)[0]
    leaf = jax.tree_util.tree_leaves(params)[0]
    if np.ndim(leaf) == ref_leaf.ndim:
        return False
    if np.ndim(leaf) == ref_leaf.ndim + 1:
        return True
    raise ValueError(
        f"params do not match the network: first leaf has shape {np.shape(leaf)}, expected {ref_leaf.shape} "
        "(or with one extra leading model axis)"
    )


@functools.partial(jax.jit, static_argnames=("network", "init_transform"))
def _initial_params_jit(network, init_transform, k_init, example_x):
    def one(k):
        params = network.init(k, example_x)
        return params if init_transform is None else init_transform(params)

    return jax.vmap(one)(k_init)


def _check_init_transform(network: Network, init_transform, example_x) -> None:
    """``init_transform`` must map a params tree to one of the same structure, shapes and dtypes."""
    if init_transform is None:
        return
    if not callable(init_transform):
        raise ValueError(f"init_transform must be a function params -> params, got {type(init_transform).__name__}")
    ref = jax.eval_shape(network.init, jax.random.PRNGKey(0), jax.ShapeDtypeStruct(example_x.shape, jnp.float32))
    try:
        got = jax.eval_shape(init_transform, ref)
    except Exception as e:  # noqa: BLE001 - report any failure with the parameter's name
        raise ValueError(f"init_transform failed on the network's parameters: {e}") from e
    if jax.tree_util.tree_structure(got) != jax.tree_util.tree_structure(ref) or any(
        (a.shape, a.dtype) != (b.shape, b.dtype)
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(ref))
    ):
        raise ValueError("init_transform must return a params tree with the same structure, shapes and dtypes")


def _initial_params(network, seed_keys, example_x, init_transform=None):
    """``(M, ...)`` params: ``init_transform(network.init(fold_in(key, 0), example_x))`` per model."""
    return _initial_params_jit(network, init_transform, _derive(seed_keys, 0), example_x)


@functools.partial(jax.jit, static_argnames=("network", "scfg"))
def _init_states_jit(network, scfg, k_data, k_aux, example_x, params):
    return jax.vmap(lambda b, c, p: _init_one(network, scfg, b, c, example_x, p))(k_data, k_aux, params)


def _init_cfg(scfg: TrainConfig) -> TrainConfig:
    """Only the fields that shape the initial state (fewer recompilations of the init)."""
    return dataclasses.replace(
        _structural(TrainConfig()),
        optimizer=scfg.optimizer, adam_b1=scfg.adam_b1, adam_b2=scfg.adam_b2, adam_eps=scfg.adam_eps,
        momentum=scfg.momentum, weight_decay=scfg.weight_decay, decay_params=scfg.decay_params,
        weight_norm_constraint=scfg.weight_norm_constraint, infer_coef=scfg.infer_coef, infer_k=scfg.infer_k,
    )


def _init_states(network, scfg, seed_keys, example_x, params=None, init_transform=None):
    """Initial states of the models with keys ``seed_keys`` ``(M, 2)``; ``params`` (leading
    M) or, when None, the engine's initialisation (``_initial_params``)."""
    if params is None:
        params = _initial_params(network, seed_keys, example_x, init_transform)
    return _init_states_jit(network, _init_cfg(scfg), _derive(seed_keys, 2), _derive(seed_keys, 5), example_x, params)


def initial_params(network: Network, seeds, example_x, *, init_transform: Optional[Callable] = None):
    """The parameters the engine initialises one model per seed with (leading axis ``len(seeds)``).

    Model ``seed`` gets ``init_transform(network.init(fold_in(PRNGKey(seed), 0), x))``
    (key scheme in the module doc), computed by the same compiled program as in
    ``init_state`` / ``train_stream`` / ``train_many``, so the result is bit-identical to
    the parameters those start from with the same ``init_transform``.

    Args:
      network: ``make_network(model_cfg)``.
      seeds: int or sequence of ints.
      example_x: ``(batch, ...)`` inputs of the right shape (only the shape is used).
      init_transform: optional ``params -> params`` (same structure, shapes and dtypes)
        applied to each model's fresh parameters, e.g.
        ``lambda p: jax.tree_util.tree_map(jnp.abs, p)`` (App. E.8, Fig. 24).
    Returns:
      params tree, every leaf ``(len(seeds), *leaf_shape)``.
    """
    if not isinstance(network, Network):
        raise ValueError(f"network must be a models.Network (make_network(cfg)), got {type(network).__name__}")
    ex = jnp.asarray(example_x, jnp.float32)[:2]
    _check_init_transform(network, init_transform, ex)
    return _initial_params(network, _seed_keys(seeds), ex, init_transform)


def init_state(network: Network, cfg: TrainConfig, seeds, example_x, *, init_params=None,
               init_transform: Optional[Callable] = None) -> TrainState:
    """Initial ``TrainState`` of one model per seed (leading axis ``len(seeds)``).

    Args:
      network, cfg: the model and training configuration.
      seeds: int or sequence of ints (``PRNGKey(seed)``, key scheme in the module doc).
      example_x: ``(batch, ...)`` inputs of the right shape (e.g. ``task.x[:2]``).
      init_params: optional starting parameters (e.g. a pretrained network), either one
        params tree (used for every seed) or a tree with a leading seed axis. InFeR and
        the weight-norm constraint anchor to these.
      init_transform: optional ``params -> params`` applied to each model's freshly
        initialised parameters inside the compiled initialisation (``initial_params``);
        not allowed together with ``init_params``.
    """
    _check_compat(network, cfg)
    keys = _seed_keys(seeds)
    ex = jnp.asarray(example_x, jnp.float32)[:2]
    if init_params is not None and init_transform is not None:
        raise ValueError("init_transform transforms the engine's fresh initialisation; it cannot be combined with "
                         "init_params (transform those yourself)")
    _check_init_transform(network, init_transform, ex)
    params = None
    if init_params is not None:
        if _params_batched(network, init_params, ex):
            params = jax.tree_util.tree_map(jnp.asarray, init_params)
            if jax.tree_util.tree_leaves(params)[0].shape[0] != keys.shape[0]:
                raise ValueError("init_params has a leading axis that does not match len(seeds)")
        else:
            params = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (keys.shape[0],) + np.shape(a)), init_params)
    return _init_states(network, _structural(cfg), keys, ex, params, init_transform)


@functools.partial(jax.jit, static_argnames=("network", "scfg"))
def _reset_opt(network, scfg, state):
    opt_state = jax.vmap(lambda p, a: make_optimizer(scfg).init((p, a)))(state.params, state.aux)
    return state._replace(opt_state=opt_state)


def reset_optimizer(network: Network, cfg: TrainConfig, state: TrainState) -> TrainState:
    """``state`` (leading model axis) with a freshly initialised optimizer state."""
    _check_compat(network, cfg)
    return _reset_opt(network, _structural(cfg), state)


@functools.lru_cache(maxsize=64)
def _train_steps_fn(network, scfg, num_steps, log_every, metrics_fn, task_axes, task_type, single=False):
    atoms = _atoms(network)

    def one(state, hp, task, g0, mroot):
        return _run_windows(network, scfg, atoms, state, hp, task, g0, num_steps // log_every, log_every, metrics_fn, mroot)

    axes = task_type(*task_axes) if isinstance(task_axes, tuple) else task_axes
    vm = _model_map(one, (0, 0, axes, None, 0), 1 if single else 2)
    return jax.jit(vm)


def _task_axes(task, task_batched, m: int, what: str = "task"):
    """Normalise ``task_batched`` (False | True | per-field axes) to vmap ``in_axes`` for
    ``task`` (a tuple / NamedTuple of arrays): ``None``, ``0`` or a tuple of ``0``/``None``
    (one per field). Checks that every batched field has leading axis ``m``."""
    fields = tuple(task)
    if isinstance(task_batched, (bool, np.bool_)):
        axes = tuple(0 if task_batched else None for _ in fields)
        key = 0 if task_batched else None
    else:
        try:
            axes = tuple(task_batched)
        except TypeError:
            raise ValueError(f"task_batched={task_batched!r} must be a bool or a tuple of per-field axes (0 or None)")
        if len(axes) != len(fields) or any(a not in (0, None) or isinstance(a, bool) for a in axes):
            raise ValueError(
                f"task_batched={task_batched!r} must give one axis (0 or None) for each of the {len(fields)} fields "
                f"of the {what}, e.g. (None, 0, None) for shared inputs x and per-model labels y"
            )
        axes = tuple(None if a is None else 0 for a in axes)
        key = axes
    for i, (a, leaf) in enumerate(zip(axes, fields)):
        if a == 0 and (np.ndim(leaf) == 0 or np.shape(leaf)[0] != m):
            name = getattr(task, "_fields", None)
            name = name[i] if name else f"field {i}"
            raise ValueError(
                f"{what}.{name} has shape {np.shape(leaf)} but task_batched says it has a leading model axis of {m}"
            )
    return key


def _full_hparams(cfg: TrainConfig, hparams: Optional[dict], m: int) -> dict:
    hp = {f: np.full((m,), getattr(cfg, f), np.float32) for f in HYPER_FIELDS}
    for k, v in (hparams or {}).items():
        if k not in HYPER_FIELDS:
            raise ValueError(f"hparams key {k!r} is not a vmappable hyperparameter; allowed: {HYPER_FIELDS}")
        hp[k] = np.broadcast_to(np.asarray(v, np.float32), (m,)).copy()
    for f in _SWITCH_FIELDS:
        if (np.any(hp[f] != 0)) != bool(getattr(cfg, f)):
            raise ValueError(
                f"hparams[{f!r}] switches the intervention on/off relative to cfg.{f}={getattr(cfg, f)}; "
                "set cfg.{f} non-zero to compile it in"
            )
    return {k: jnp.asarray(v) for k, v in hp.items()}


def train_steps(
    network: Network,
    cfg: TrainConfig,
    state: TrainState,
    task,
    num_steps: int,
    *,
    log_every: Optional[int] = None,
    metrics_fn: Optional[Callable] = None,
    hparams: Optional[dict] = None,
    task_batched=False,
):
    """Run ``num_steps`` optimizer steps of every model in ``state`` on ``task`` (jitted).

    For custom protocols (pretrain then fine-tune, continue with or without
    ``reset_optimizer``). All models advance together; the global step of the first step
    is ``state.step[0]`` (minibatch keys ``fold_in(state.rng, step)``).

    Args:
      state: ``TrainState`` with leading model axis M (``init_state``).
      task: a ``Task`` ``(x (N, ...), y (N,) | (N, k), mask (N,))``.
      num_steps: steps to run; a multiple of ``log_every``.
      log_every: window of the logs (default ``num_steps``: one row).
      metrics_fn: ``(params, task, key) -> dict`` evaluated at each log (per model). Pass
        the same function object to reuse the compiled program.
      hparams: optional ``{field: float or (M,) array}`` overriding ``HYPER_FIELDS``.
      task_batched: which fields of ``task`` have a leading model axis M: False (the
        task is shared by all models), True (every field: one task per model), or a
        tuple with one entry per field, ``0`` (per model) or ``None`` (shared), e.g.
        ``(None, 0, None)`` for inputs and mask shared by all models and labels ``(M, N)``
        per model; a shared field is stored once instead of M times (as
        ``train_stream`` does for seed-independent stream leaves).
    Returns:
      ``(state, logs)``; ``logs[name]`` is ``(M, num_steps // log_every, ...)``.
    """
    _check_compat(network, cfg)
    log_every = num_steps if log_every is None else log_every
    if num_steps < 1 or log_every < 1 or num_steps % log_every:
        raise ValueError(f"num_steps={num_steps} must be a positive multiple of log_every={log_every}")
    m = int(np.shape(state.step)[0])
    hp = _full_hparams(cfg, hparams, m)
    axes = _task_axes(task, task_batched, m)
    fn = _train_steps_fn(network, _structural(cfg), int(num_steps), int(log_every), metrics_fn, axes,
                         type(task) if isinstance(axes, tuple) else None, m == 1)
    mroot = _derive(state.rng, 3)
    g0 = jnp.asarray(state.step)[0].astype(jnp.int32)
    return fn(state, hp, task, g0, mroot)


def evaluate(network: Network, params, x, y, loss: str = "xent", *, mask=None, batch_size: int = 1024,
             label_smoothing=0.0, task_batched=False) -> dict:
    """Mean loss and accuracy (int labels) or mse over ``(x, y)`` in batches (the engine's
    task-end evaluation, ``evaluate_task``), for one model or M models in one jitted vmap.

    Args:
      params: one params tree, or a tree with a leading model axis M (then every entry of
        the result has that axis).
      x: ``(N, ...)`` inputs; y: ``(N,)`` int labels or ``(N, k)`` targets; mask: ``(N,)``,
        only examples with ``mask > 0`` count (default: all). Shared by all models unless
        ``task_batched``.
      loss: ``"xent"`` | ``"mse"`` | ``"twohot"`` (must match the network's head).
      batch_size: evaluation batch size (batch-statistics normalisation sees one batch
        of masked examples at a time).
      label_smoothing: scalar, or ``(M,)`` (one per model; leading-M params only).
      task_batched: M models each on its own data: False (default: data shared), True
        (``x``, ``y`` and, if given, ``mask`` have a leading axis M: ``(M, N, ...)``,
        ``(M, N)``, ``(M, N)``), or per-field axes over ``(x, y, mask)`` as in
        ``train_steps``, e.g. ``(None, 0, 0)``: shared inputs, per-model labels and masks.
        Needs leading-M ``params``.
    Returns:
      ``{"loss", "accuracy" | "mse"}``: numpy arrays, ``()`` or ``(M,)``.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r} is not allowed; choose one of {LOSSES}")
    if (loss == "twohot") != (network.cfg.head == "twohot"):
        raise ValueError(f"loss={loss!r} does not match the network's head={network.cfg.head!r}")
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    mask = None if mask is None else jnp.asarray(mask, jnp.float32)
    ls = jnp.asarray(label_smoothing, jnp.float32)
    if isinstance(task_batched, (bool, np.bool_)) and not task_batched:
        data_axes = (None, None, None)
    else:
        if isinstance(task_batched, (bool, np.bool_)):
            task_batched = (0, 0, 0 if mask is not None else None)
        elif mask is None and isinstance(task_batched, (tuple, list)) and len(task_batched) == 3:
            task_batched = (*task_batched[:2], None)  # the default mask is shared
        m_params = np.shape(jax.tree_util.tree_leaves(params)[0])[0]
        dummy = mask if mask is not None else jnp.zeros((0,))
        axes = _task_axes(Task(x, y, dummy), task_batched, m_params, "evaluation data")
        data_axes = tuple(axes) if isinstance(axes, tuple) else (axes,) * 3
    if mask is None:
        mask = jnp.ones((x.shape[1] if data_axes[0] == 0 else x.shape[0],), jnp.float32)
    ex = x[0, :2] if data_axes[0] == 0 else x[:2]
    batched = _params_batched(network, params, ex)
    if not batched and (any(a == 0 for a in data_axes) or ls.ndim):
        raise ValueError("per-model data (task_batched) or label_smoothing need params with a leading model axis")
    if ls.ndim and ls.shape != (jax.tree_util.tree_leaves(params)[0].shape[0],):
        raise ValueError(f"label_smoothing has shape {ls.shape}; give a scalar or one value per model")
    fn = _evaluate_fn(network, loss, int(batch_size), bool(batched), data_axes, 0 if ls.ndim else None)
    out = fn(params, x, y, mask, ls)
    return {k: np.asarray(v) for k, v in out.items()}


def evaluate_task(network: Network, params, task, loss: str = "xent", *, batch_size: int = 1024,
                  label_smoothing=0.0) -> dict:
    """The engine's task-end evaluation of ONE model; traceable (call it inside ``jit``,
    ``vmap``, ``scan``: e.g. a custom protocol's in-program evaluation).

    Mean loss (label smoothing included) and accuracy (int labels) or mse over the
    examples of ``task`` with ``mask > 0``, in batches of ``batch_size`` that contain only
    masked examples (the last batch is padded with weight 0), so batch-statistics
    normalisation sees only those.

    Args:
      params: one params tree (no model axis).
      task: ``Task(x (N, ...), y (N,) | (N, k), mask (N,))``.
      loss: ``"xent"`` | ``"mse"`` | ``"twohot"``.
      label_smoothing: scalar (may be traced).
    Returns:
      ``{"loss": (), "accuracy" | "mse": ()}`` float32 (jax arrays).
    """
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r} is not allowed; choose one of {LOSSES}")
    return _evaluate_task(network, loss, _atoms(network), params, task, label_smoothing, int(batch_size))


@functools.lru_cache(maxsize=32)
def _evaluate_fn(network, loss, batch_size, batched, data_axes=(None, None, None), ls_axis=None):
    atoms = _atoms(network)

    def one(params, x, y, mask, ls):
        return _evaluate_task(network, loss, atoms, params, Task(x, y, mask), ls, batch_size)

    if batched:
        one = jax.vmap(one, in_axes=(0, *data_axes, ls_axis))
    return jax.jit(one)


# ----------------------------------------------------------------------------------
# The stream engine
# ----------------------------------------------------------------------------------


def _group_configs(cfgs: Sequence[TrainConfig]) -> list:
    groups: dict = {}
    for i, c in enumerate(cfgs):
        groups.setdefault(_structural(c), []).append(i)
    return list(groups.items())


def _fingerprint(network, cfgs, seeds, num_tasks, steps_per_task, log_every, chunk_steps, eval_every_task,
                 keep_tasks, metrics_fn, stream, has_init, task0=None, init_tree=None, init_transform=None,
                 transformed_params=None) -> str:
    """Hash of everything that determines a run: configs, protocol, function names, and the
    content of task 0 and of given initial parameters/state (sampled: at most ~1e6 values
    per array), so that a checkpoint of other data is never resumed by mistake. An
    ``init_transform`` enters by name and by the content of the parameters it produced
    (``transformed_params``), and only when given, so runs without one keep their
    earlier fingerprints."""

    def name(f):
        return None if f is None else f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', repr(f))}"

    h = hashlib.sha1()
    h.update(repr((
        network.cfg, tuple(cfgs), tuple(int(s) for s in seeds), num_tasks, steps_per_task, log_every, chunk_steps,
        eval_every_task, tuple(keep_tasks), name(metrics_fn), name(stream.init), name(stream.next), has_init,
    )).encode())
    if init_transform is not None:
        h.update(repr(("init_transform", name(init_transform))).encode())
        init_tree = (init_tree, transformed_params)
    for leaf in jax.tree_util.tree_leaves((task0, init_tree)):
        a = np.asarray(leaf)
        h.update(repr((a.shape, str(a.dtype))).encode())
        flat = a.reshape(-1)
        h.update(np.ascontiguousarray(flat[:: max(1, flat.size // 1_000_000)]).tobytes())
    return h.hexdigest()[:16]


def _save_checkpoint(path, meta, state, logs, task_end, task_params) -> None:
    payload = {"meta": np.asarray(json.dumps(meta))}
    for i, leaf in enumerate(jax.tree_util.tree_leaves(state)):
        payload[f"state/{i}"] = np.asarray(leaf)
    for k, v in logs.items():
        payload[f"logs/{k}"] = v
    for k, v in task_end.items():
        payload[f"task_end/{k}"] = v
    if task_params is not None:
        for i, leaf in enumerate(jax.tree_util.tree_leaves(task_params)):
            payload[f"task_params/{i}"] = leaf
    tmp = f"{path}.tmp{os.getpid()}.npz"
    with open(tmp, "wb") as fh:
        np.savez(fh, **payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _load_checkpoint(path, state_template, task_params_template):
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        leaves, treedef = jax.tree_util.tree_flatten(state_template)
        new_leaves = []
        for i, ref in enumerate(leaves):
            arr = z[f"state/{i}"]
            if arr.shape != np.shape(ref):
                raise ValueError(f"checkpoint {path} does not match this run (state leaf {i}: {arr.shape} vs {np.shape(ref)})")
            new_leaves.append(arr)
        state = jax.tree_util.tree_unflatten(treedef, new_leaves)
        logs = {k[5:]: z[k] for k in z.files if k.startswith("logs/")}
        task_end = {k[9:]: z[k] for k in z.files if k.startswith("task_end/")}
        task_params = None
        if task_params_template is not None:
            tl, tdef = jax.tree_util.tree_flatten(task_params_template)
            task_params = jax.tree_util.tree_unflatten(tdef, [z[f"task_params/{i}"] for i in range(len(tl))])
    return meta, state, logs, task_end, task_params


def train_stream(
    network: Network,
    cfg: TrainConfig,
    stream,
    seeds,
    *,
    num_tasks: int,
    steps_per_task: int,
    log_every: int,
    metrics_fn: Optional[Callable] = None,
    eval_every_task: bool = True,
    keep_task_params=False,
    keep_initial_params: bool = False,
    progress: bool = True,
    checkpoint_dir: Optional[str] = None,
    chunk_steps: Optional[int] = None,
    init_params=None,
    init_state: Optional[TrainState] = None,
    init_transform: Optional[Callable] = None,
    shard="auto",
    desc: Optional[str] = None,
) -> RunResult:
    """Train one model per seed on a task stream (B.2) in one jitted, vmapped scan.

    Same arguments as ``train_many`` with a single ``cfg``. Returns a ``RunResult`` whose
    arrays have a leading seed axis. (The keyword list repeats ``train_many``'s on
    purpose, so that both signatures stay explicit; a unit test keeps them in sync.)
    """
    return train_many(
        network, [cfg], stream, seeds, num_tasks=num_tasks, steps_per_task=steps_per_task, log_every=log_every,
        metrics_fn=metrics_fn, eval_every_task=eval_every_task, keep_task_params=keep_task_params,
        keep_initial_params=keep_initial_params, progress=progress, checkpoint_dir=checkpoint_dir,
        chunk_steps=chunk_steps, init_params=init_params, init_state=init_state, init_transform=init_transform,
        shard=shard, desc=desc,
    )[0]


def train_many(
    network: Network,
    cfgs: Sequence[TrainConfig],
    stream,
    seeds,
    *,
    num_tasks: int,
    steps_per_task: int,
    log_every: int,
    metrics_fn: Optional[Callable] = None,
    eval_every_task: bool = True,
    keep_task_params=False,
    keep_initial_params: bool = False,
    progress: bool = True,
    checkpoint_dir: Optional[str] = None,
    chunk_steps: Optional[int] = None,
    init_params=None,
    init_state: Optional[TrainState] = None,
    init_transform: Optional[Callable] = None,
    shard="auto",
    desc: Optional[str] = None,
) -> list:
    """Train every ``(config, seed)`` on a nonstationary task stream (B.2); one program per group.

    Configs that differ only in ``HYPER_FIELDS`` (with the same zero/non-zero pattern of
    the penalties) are trained together in one jitted, vmapped scan.

    Args:
      network: ``make_network(model_cfg)``.
      cfgs: sequence of ``TrainConfig``.
      stream: ``TaskStream(init: key -> Task, next: (key, t, prev) -> Task)``.
      seeds: sequence of ints (one model per seed per config).
      num_tasks: tasks in sequence (task 0 = ``stream.init``).
      steps_per_task: optimizer steps per task.
      log_every: steps per log window (divides ``chunk_steps``).
      metrics_fn: ``(params, task, key) -> dict of arrays`` per model, evaluated at every
        log step and at every task end (traced; keep it cheap).
      eval_every_task: full-training-set loss/accuracy at each task end.
      keep_task_params: True (all tasks), False, or a sequence of task indices whose
        end-of-task parameters are kept (host memory: models x tasks x params).
      keep_initial_params: keep the parameters training starts from in
        ``RunResult.initial_params`` (e.g. to study the initialisation next to the
        task-end checkpoints).
      progress: tqdm bar over chunks.
      checkpoint_dir: if set, after every chunk the run is saved atomically to
        ``checkpoint_dir/engine_<fingerprint>.npz``; a rerun with the same arguments
        (and the same task-0 data and initial parameters: the fingerprint samples their
        content) resumes from it; a finished run is loaded without training.
      chunk_steps: steps per compiled call: a divisor of ``steps_per_task`` (part of a
        task), or ``K * steps_per_task`` with ``K`` dividing ``num_tasks`` (K whole tasks in
        one call: an outer ``lax.scan`` over tasks). Default: one task per call when
        ``steps_per_task >= 1000``, else as many whole tasks as fit in 1000 steps.
      init_params: starting params: one tree for all seeds, or a tree with a leading seed
        axis (e.g. ``previous.final_params``).
      init_state: a ``TrainState`` with a leading seed axis to continue from (e.g.
        ``previous.final_state``; its optimizer state must match every config). The
        global step continues from ``init_state.step``.
      init_transform: ``params -> params`` (same structure, shapes and dtypes) applied to
        each model's freshly initialised parameters inside the compiled initialisation,
        e.g. ``lambda p: jax.tree_util.tree_map(jnp.abs, p)`` (App. E.8). Not with
        ``init_params`` / ``init_state``. ``initial_params`` gives the same parameters.
      shard: ``"auto"``/True (shard models over all devices) or False.
      desc: progress-bar label.
    Returns:
      list of ``RunResult``, in the order of ``cfgs``.
    """
    cfgs = list(cfgs)
    if not cfgs:
        raise ValueError("cfgs is empty")
    for c in cfgs:
        _check_compat(network, c)
    seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
    if seeds.size == 0:
        raise ValueError("seeds is empty")
    for name, v in (("num_tasks", num_tasks), ("steps_per_task", steps_per_task), ("log_every", log_every)):
        if int(v) < 1:
            raise ValueError(f"{name}={v} must be >= 1")
    if steps_per_task % log_every:
        raise ValueError(f"log_every={log_every} must divide steps_per_task={steps_per_task}")
    chunk_steps = _default_chunk_steps(num_tasks, steps_per_task) if chunk_steps is None else int(chunk_steps)
    if chunk_steps < 1:
        raise ValueError(f"chunk_steps={chunk_steps} must be >= 1")
    if chunk_steps < steps_per_task:
        if steps_per_task % chunk_steps or chunk_steps % log_every:
            raise ValueError(
                f"chunk_steps={chunk_steps} (< steps_per_task) must divide steps_per_task={steps_per_task} and be "
                f"a multiple of log_every={log_every}"
            )
    elif chunk_steps % steps_per_task or num_tasks % (chunk_steps // steps_per_task):
        raise ValueError(
            f"chunk_steps={chunk_steps} (>= steps_per_task) must be K * steps_per_task={steps_per_task} with K "
            f"dividing num_tasks={num_tasks}"
        )
    if init_params is not None and init_state is not None:
        raise ValueError("give init_params or init_state, not both")
    if init_transform is not None and (init_params is not None or init_state is not None):
        raise ValueError("init_transform transforms the engine's fresh initialisation; it cannot be combined with "
                         "init_params or init_state (transform those yourself)")
    if keep_task_params is True:
        keep_tasks = list(range(num_tasks))
    elif keep_task_params is False or keep_task_params is None:
        keep_tasks = []
    else:
        keep_tasks = sorted(int(t) for t in keep_task_params)
        if any(t < 0 or t >= num_tasks for t in keep_tasks):
            raise ValueError(f"keep_task_params={keep_task_params!r}: task indices must be in [0, {num_tasks})")

    results: list = [None] * len(cfgs)
    for scfg, idxs in _group_configs(cfgs):
        group = [cfgs[i] for i in idxs]
        res = _run_group(
            network, scfg, group, stream, seeds, num_tasks, steps_per_task, log_every, chunk_steps, metrics_fn,
            eval_every_task, keep_tasks, progress, checkpoint_dir, init_params, init_state, shard, desc,
            init_transform, bool(keep_initial_params),
        )
        for i, r in zip(idxs, res):
            results[i] = r
    return results


@functools.lru_cache(maxsize=4)
def _stream_fns(network, scfg, stream, metrics_fn, steps_per_task, log_every, chunk_steps, eval_every_task, task_axes,
                keep_params, single=False):
    """The jitted chunk function of the stream engine (cached: same structure, no recompilation).

    ``chunk_fn(state, hp, task_roots, metric_roots, task0, g_base, t0, s0) -> (state, (logs,
    task_end, params))`` for every model (vmapped). A chunk is either ``K =
    chunk_steps // steps_per_task >= 1`` whole tasks ``t0 .. t0+K-1`` (an outer
    ``lax.scan`` over tasks, ``stream.next`` called at each boundary, inner scans over log
    windows and steps), or, when ``chunk_steps < steps_per_task``, steps ``s0 ..
    s0+chunk_steps`` of task ``t0`` (``K = 1``). Outputs have a ``K`` axis after the model
    axis; ``task_end`` (the task-end metrics) is meaningful only for chunks that end a task
    and ``params`` (task-end parameters) is ``None`` unless ``keep_params``.
    """
    atoms = _atoms(network)
    n_tasks = max(chunk_steps // steps_per_task, 1)
    steps = min(chunk_steps, steps_per_task)
    n_windows = steps // log_every
    partial = chunk_steps < steps_per_task
    reserved_eval = ("loss", "accuracy", "mse", "param_norm")

    def task_end_metrics(st, h, mroot, task, g_base, t):
        out = {}
        if eval_every_task:
            out.update(_evaluate_task(network, scfg.loss, atoms, st.params, task, h["label_smoothing"],
                                      scfg.eval_batch_size))
        out["param_norm"] = jnp.sqrt(_sq_norm(st.params))
        out = _nan_if(st.diverged, out)
        g_end = g_base + (t + 1) * steps_per_task
        out.update(_user_metrics(metrics_fn, st, task, jax.random.fold_in(mroot, g_end), reserved_eval))
        return out

    def chunk_one(st, h, root, mroot, task_0, g_base, t0, s0):
        task = _task_at(stream, root, t0, task_0)

        def per_task(carry, k):
            st, task = carry
            t = t0 + k
            if scfg.reset_optimizer_each_task:
                st = jax.lax.cond(
                    (s0 == 0) & (t > 0),
                    lambda s: s._replace(opt_state=make_optimizer(scfg, h).init((s.params, s.aux))),
                    lambda s: s,
                    st,
                )
            g0 = g_base + t * steps_per_task + s0
            st, logs = _run_windows(network, scfg, atoms, st, h, task, g0, n_windows, log_every, metrics_fn, mroot)
            if partial:
                shape = jax.eval_shape(lambda: task_end_metrics(st, h, mroot, task, g_base, t))
                ev = jax.lax.cond(
                    s0 + steps == steps_per_task,
                    lambda: task_end_metrics(st, h, mroot, task, g_base, t),
                    lambda: jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), shape),
                )
            else:
                ev = task_end_metrics(st, h, mroot, task, g_base, t)
            nxt = stream.next(jax.random.fold_in(root, t + 1), t + 1, task) if n_tasks > 1 else task
            return (st, nxt), (logs, ev, st.params if keep_params else None)

        (st, _), outs = jax.lax.scan(per_task, (st, task), jnp.arange(n_tasks, dtype=jnp.int32))
        return st, outs

    m = 1 if single else 2
    return jax.jit(_model_map(chunk_one, (0, 0, 0, 0, task_axes, None, None, None), m), donate_argnums=(0,))


def _default_chunk_steps(num_tasks: int, steps_per_task: int, target: int = 1000) -> int:
    """One task per chunk for long tasks; for short tasks the largest number ``K`` of whole
    tasks (a divisor of ``num_tasks``) with ``K * steps_per_task <= target``."""
    if steps_per_task >= target:
        return steps_per_task
    k = max(d for d in range(1, num_tasks + 1) if num_tasks % d == 0 and d * steps_per_task <= target)
    return k * steps_per_task


def _run_group(network, scfg, cfgs, stream, seeds, num_tasks, steps_per_task, log_every, chunk_steps, metrics_fn,
               eval_every_task, keep_tasks, progress, checkpoint_dir, init_params, init_state0, shard, desc,
               init_transform=None, keep_initial=False):
    t_start = time.perf_counter()
    n_cfg, n_seed = len(cfgs), len(seeds)
    m = n_cfg * n_seed
    devices = jax.devices()
    n_dev = len(devices) if (shard in ("auto", True) and len(devices) > 1) else 1
    m_pad = -(-m // n_dev) * n_dev
    pad = np.concatenate([np.arange(m), np.full(m_pad - m, m - 1, dtype=np.int64)]).astype(np.int64)

    # Per-model seeds, keys and hyperparameters (config-major, padded).
    model_seeds = np.tile(seeds, n_cfg)[pad]
    seed_keys = _seed_keys(model_seeds)
    hp = {k: jnp.asarray(v[pad]) for k, v in _batched_hparams(cfgs, n_seed).items()}
    task_roots = _derive(seed_keys, 1)
    metric_roots = _derive(seed_keys, 3)

    task0, task_axes = _initial_tasks(stream, task_roots)
    x0 = task0.x
    example_x = jnp.zeros((2,) + tuple(x0.shape[1 if task_axes.x is None else 2:]), jnp.float32)
    seed_pos = np.tile(np.arange(n_seed), n_cfg)[pad]
    if init_state0 is not None:
        state = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)[seed_pos]), init_state0)
    else:
        params = None
        if init_params is not None:
            if _params_batched(network, init_params, example_x):
                params = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)[seed_pos]), init_params)
            else:
                params = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(jnp.asarray(a), (m_pad,) + np.shape(a)), init_params)
        _check_init_transform(network, init_transform, example_x)
        state = _init_states(network, scfg, seed_keys, example_x, params, init_transform)
    g_base = int(np.asarray(state.step)[0])
    params0 = jax.device_get(state.params) if keep_initial else None  # before any training or resumption

    mesh = None
    if n_dev > 1:
        mesh = Mesh(np.asarray(devices), ("models",))
        sh = NamedSharding(mesh, PartitionSpec("models"))
        state, hp, task_roots, metric_roots = jax.device_put((state, hp, task_roots, metric_roots), sh)
        rep = NamedSharding(mesh, PartitionSpec())
        task0 = type(task0)(*[jax.device_put(a, sh if ax == 0 else rep) for a, ax in zip(task0, task_axes)])

    chunk_fn = _stream_fns(network, scfg, stream, metrics_fn, steps_per_task, log_every, chunk_steps,
                           bool(eval_every_task), task_axes, bool(keep_tasks), m_pad == 1)
    n_tasks_chunk = max(chunk_steps // steps_per_task, 1)
    steps_chunk = min(chunk_steps, steps_per_task)
    n_windows = steps_chunk // log_every
    g_base_arr = np.int32(g_base)

    chunks_per_task = steps_per_task // steps_chunk
    total_chunks = (num_tasks // n_tasks_chunk) * chunks_per_task
    w_per_task = steps_per_task // log_every
    logs: dict = {}
    task_end: dict = {}
    task_params = None
    done = 0

    ckpt_path = None
    fp = None
    if checkpoint_dir is not None:
        os.makedirs(checkpoint_dir, exist_ok=True)
        fp = _fingerprint(network, cfgs, seeds, num_tasks, steps_per_task, log_every, chunk_steps, eval_every_task,
                          keep_tasks, metrics_fn, stream, (init_params is not None, init_state0 is not None, n_dev),
                          task0, init_params if init_params is not None else init_state0, init_transform,
                          state.params if init_transform is not None else None)
        ckpt_path = os.path.join(checkpoint_dir, f"engine_{fp}.npz")
        if os.path.exists(ckpt_path):
            tp_template = None
            if keep_tasks:
                tp_template = jax.tree_util.tree_map(
                    lambda a: np.zeros((a.shape[0], len(keep_tasks)) + a.shape[1:], a.dtype), state.params)
            meta, loaded, logs, task_end, task_params = _load_checkpoint(ckpt_path, state, tp_template)
            if meta.get("fingerprint") != fp:
                raise ValueError(f"checkpoint {ckpt_path} has a different fingerprint")
            done = int(meta["chunks_done"])
            state = jax.tree_util.tree_map(jnp.asarray, loaded)
            if mesh is not None:
                state = jax.device_put(state, NamedSharding(mesh, PartitionSpec("models")))
            t_start -= float(meta.get("wall_time_s", 0.0))

    bar = progress_bar(total_chunks, desc=desc or f"train {n_cfg} cfg x {n_seed} seeds", unit="chunk",
                       enabled=progress, initial=done)

    def alloc(v, lead):  # v: (M, K, ...) chunk output -> (M, num_tasks, ...) host array
        v = np.asarray(v)
        shape = lead + v.shape[len(lead):]
        return np.full(shape, np.nan, np.float32) if np.issubdtype(v.dtype, np.floating) else np.zeros(shape, v.dtype)

    for ci in range(done, total_chunks):
        tc, c = divmod(ci, chunks_per_task)
        t0 = tc * n_tasks_chunk
        s0 = c * steps_chunk
        state, (chunk_logs, ev, tparams) = chunk_fn(state, hp, task_roots, metric_roots, task0, g_base_arr,
                                                    np.int32(t0), np.int32(s0))
        chunk_logs, ev, tparams = jax.device_get((chunk_logs, ev, tparams))
        if not logs:
            logs = {k: alloc(v, (m_pad, num_tasks, w_per_task)) for k, v in chunk_logs.items()}
        for k, v in chunk_logs.items():  # (M, K, n_windows, ...)
            logs[k][:, t0:t0 + n_tasks_chunk, c * n_windows:(c + 1) * n_windows] = v
        if s0 + steps_chunk == steps_per_task:  # the chunk ends its task(s)
            if not task_end:
                task_end = {k: alloc(v, (m_pad, num_tasks)) for k, v in ev.items()}
            for k, v in ev.items():
                task_end[k][:, t0:t0 + n_tasks_chunk] = v
            for kk in range(n_tasks_chunk):
                t = t0 + kk
                if t not in keep_tasks:
                    continue
                if task_params is None:
                    task_params = jax.tree_util.tree_map(
                        lambda a: np.zeros((a.shape[0], len(keep_tasks)) + a.shape[2:], a.dtype), tparams)
                j = keep_tasks.index(t)

                def put(dst, src, kk=kk, j=j):
                    dst[:, j] = src[:, kk]
                    return dst

                task_params = jax.tree_util.tree_map(put, task_params, tparams)
        loss_now = np.nanmean(chunk_logs["loss"][:, -1, -1]) if "loss" in chunk_logs else float("nan")
        bar.set_postfix(task=t0 + n_tasks_chunk - 1, loss=f"{loss_now:.4g}")
        bar.update(1)
        if ckpt_path is not None:
            meta = {"fingerprint": fp, "chunks_done": ci + 1, "wall_time_s": time.perf_counter() - t_start}
            _save_checkpoint(ckpt_path, meta, jax.device_get(state), logs, task_end, task_params)
    bar.close()

    state = jax.device_get(state)
    wall = time.perf_counter() - t_start
    log_steps = (g_base + np.arange(num_tasks)[:, None] * steps_per_task
                 + (np.arange(w_per_task)[None, :] + 1) * log_every).astype(np.int64)
    out = []
    for ci_, cfg in enumerate(cfgs):
        sl = slice(ci_ * n_seed, (ci_ + 1) * n_seed)
        take = lambda a: np.asarray(a)[sl]  # noqa: E731
        fstate = jax.tree_util.tree_map(take, state)
        out.append(RunResult(
            config=cfg,
            model_config=network.cfg,
            seeds=seeds.copy(),
            num_tasks=num_tasks,
            steps_per_task=steps_per_task,
            log_every=log_every,
            log_steps=log_steps,
            logs={k: v[sl] for k, v in logs.items()},
            task_end={k: v[sl] for k, v in task_end.items()},
            final_params=fstate.params,
            final_state=fstate,
            task_params=None if task_params is None else jax.tree_util.tree_map(take, task_params),
            task_params_tasks=np.asarray(keep_tasks, np.int64),
            diverged=np.asarray(fstate.diverged, bool),
            diverged_at_step=np.asarray(fstate.diverged_at_step, np.int64),
            wall_time_s=wall,
            num_devices=n_dev,
            initial_params=None if params0 is None else jax.tree_util.tree_map(take, params0),
        ))
    return out
