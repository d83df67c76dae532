"""The training engine: many models trained at once in one compiled program.

Paper: Lyle et al. (2024). App. B.2 (continual supervised learning: Adam, a fixed number
of optimizer steps per task, then a new task), §4.1 / Fig. 4 (interventions: L2
regularisation and weight decay, weight-norm constraint, feature-norm penalty, ReDo,
squared-gradient-norm penalty, InFeR, Shampoo), §4.1 "Target scale" and App. B.3 (two-hot
loss with label smoothing).

Modules (one concern each)
--------------------------
``config``         ``TrainConfig``, ``HYPER_FIELDS``, hyperparameter batching, the
                   structural (static) part of a config.
``optimizers``     ``make_optimizer`` (Adam / SGD through optax, decoupled weight decay,
                   decay masks), the Shampoo stub.
``interventions``  pure loss terms (``l2_penalty``, ``feature_norm_penalty``,
                   ``grad_norm_penalty``, ``infer_penalty``) and post-update transforms
                   (ReDo: ``redo_reset``; ``apply_weight_norm_constraint``).
``step``           ONE model: ``TrainState``, ``init_model_state``, ``train_step``,
                   ``evaluate_task`` (traceable: callers ``jax.vmap`` them).
``batched``        M models with a leading model axis: ``initial_params``, ``init_state``,
                   ``train_steps``, ``reset_optimizer``, ``evaluate``.
``stream``         the stream engine: ``train_stream``, ``train_many``, ``RunResult``,
                   sharding over devices.
``checkpoint``     atomic saves, fingerprints, resumption.

Design
------
* One model = one ``(config, seed)`` pair. ``train_many`` groups configurations that
  differ only in *float hyperparameters* (``HYPER_FIELDS``: learning rate, label
  smoothing, L2, weight decay, penalty coefficients, InFeR scale, ReDo threshold) and
  trains every group in ONE jitted function: ``jax.vmap`` over the models (configs x
  seeds; the hyperparameters are traced values), ``jax.lax.scan`` over tasks' steps.
  A penalty that is zero in one config and non-zero in another puts them in different
  groups (zero means "intervention off": that code is not compiled in).
* The host loop (``plasticity_lib.runner.run_chunks``, the project's one host loop) calls
  the compiled function once per *chunk*, carrying the training state between calls (no
  recompilation), with a tqdm progress bar and optional atomic checkpoints. A chunk is
  ``K`` whole tasks (outer ``lax.scan`` over tasks, calling ``stream.next`` at each
  boundary; inner scans over log windows and steps; the task-end evaluation inside the
  program) or a part of one task. Task 0 (``stream.init``) is computed once, outside the
  compiled program, and passed in as an argument; leaves that do not depend on the key
  (found by a conservative jaxpr analysis, e.g. the inputs of a label-only stream) are
  stored once, unbatched, instead of once per model. Tasks are not carried between
  calls: each call regenerates its first task inside the compiled program by replaying
  ``next`` for ``t = 1..t0`` (cheap next to training), so under ``vmap`` a leaf stays
  unbatched as long as the stream leaves it seed-independent. The compiled functions are
  cached (same network, structural config, stream, ``metrics_fn`` and protocol: no
  recompilation).
* Keys (``plasticity_lib.keys``): model ``(seed, config)`` uses ``k = PRNGKey(seed)``:
  ``fold_in(k, PARAMS=0)`` initialises the parameters, ``fold_in(k, TASKS=1)`` roots the
  task stream (task ``t`` gets ``fold_in(root, t)``), ``fold_in(k, MINIBATCH=2)`` is
  ``TrainState.rng`` (minibatch of global step ``g``: ``fold_in(rng, g)``),
  ``fold_in(k, METRICS=3)`` is used for ``metrics_fn`` (``train_steps``: ``fold_in(rng,
  METRICS)``), ``fold_in(k, INFER=5)`` initialises the InFeR heads. Configurations that
  share a seed share initial parameters, tasks and minibatches (common random numbers).
  An optional ``init_transform`` (e.g. ``|theta|``) maps each model's fresh parameters
  inside the compiled initialisation (``initial_params`` returns exactly those
  parameters).
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
  unaffected. (Details in ``step``.)
* Devices: the model axis is sharded over all devices (``NamedSharding`` over a 1-D mesh
  ``("models",)``; padded to a multiple of the device count); the same code runs on
  one CPU, several GPUs or a TPU.

Losses and regularisers (per model, on a minibatch)
---------------------------------------------------
``objective = data_loss + l2 * ||theta||^2 + feature_norm_penalty * mean_b ||phi(x_b)||^2
+ grad_norm_penalty * ||grad_theta data_loss||^2 + infer_coef * mean_b ||g(x_b) -
infer_scale * g_0(x_b)||^2`` (``plasticity_lib.losses`` for the data losses,
``interventions`` for the terms). ``theta`` in the L2 term is every network parameter
(kernels, biases, norm scales/offsets; the paper's "L2 regularization" of all
parameters) when ``decay_params="all"`` (default), or only the weight matrices / conv
kernels (``"kernels"``); the InFeR heads are never decayed. ``weight_decay`` is decoupled
(optax ``add_decayed_weights`` between the optimizer's direction and the learning rate,
as ``optax.adamw``: ``theta <- theta - lr * (direction + wd * theta)``).

Public API
----------
``TrainConfig``, ``TrainState``, ``RunResult``, ``HYPER_FIELDS``, ``OPTIMIZERS``,
``DECAY_PARAMS``;
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

The one-model primitives (purejaxrl style: write the program, ``jax.vmap`` and
``jax.jit`` it): ``init_model_state(network, cfg, key, example_x, *, params=None,
init_transform=None) -> TrainState``; ``train_step(network, cfg, state, hparams, data,
*, step=None) -> (TrainState, metrics)`` (``data``: a ``Task`` to draw the minibatch
from, or a ``Batch(x, y)``); ``hyperparams(cfg) -> {field: float32}``.
"""

from .. import timing as _timing
from ..losses import LOSSES, data_loss, twohot_decode, twohot_encode
from .batched import (
    evaluate,
    init_state,
    initial_params,
    reset_optimizer,
    train_steps,
)
from .config import DECAY_PARAMS, HYPER_FIELDS, OPTIMIZERS, TrainConfig, hyperparams
from .interventions import (
    apply_weight_norm_constraint,
    feature_norm_penalty,
    grad_norm_penalty,
    infer_penalty,
    kernel_norms,
    l2_penalty,
    redo_reset,
    redo_scores,
)
from .optimizers import make_optimizer
from .step import Batch, TrainState, evaluate_task, init_model_state, train_step
from .stream import RunResult, train_many, train_stream

# host-level evaluation counts as "evaluation" in the chapter's time account; compile
# events are counted from here on
evaluate = _timing.timed("evaluation")(evaluate)
_timing.install()

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
    # one-model primitives (added with the package)
    "Batch",
    "hyperparams",
    "init_model_state",
    "train_step",
    # also importable as before: data_loss, LOSSES, kernel_norms, redo_scores
    "data_loss",
    "LOSSES",
    "kernel_norms",
    "redo_scores",
]
