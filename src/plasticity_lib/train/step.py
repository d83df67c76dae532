"""One model: its state, one optimizer step, windows of steps, evaluation.

Paper: Lyle et al. (2024), App. B.2 (continual supervised learning: Adam, minibatches
drawn from the current task, a fixed number of steps per task) and §4.1 / Fig. 4 (the
interventions inside the step).

The public primitives work on ONE model and are traceable, in the purejaxrl style: a
protocol writes its training program from them and ``jax.vmap``-s it over seeds or
configurations, then ``jax.jit``-s the whole::

    def train_one(key, hparams):
        state = train.init_model_state(network, cfg, key, task.x[:2])
        def body(state, _):
            return train.train_step(network, cfg, state, hparams, task)
        return jax.lax.scan(body, state, None, length=num_steps)

    keys = plasticity_lib.keys.seed_keys(seeds)
    hp = train.hyperparams(cfg)
    states, metrics = jax.jit(jax.vmap(train_one, in_axes=(0, None)))(keys, hp)

gives, for every seed, the same numbers as ``train.init_state`` + ``train.train_steps``
(which compile the same step; tested). :func:`evaluate_task` is the engine's task-end
evaluation of one model.

A step (:func:`train_step`): draw a minibatch (``batch_size`` indices i.i.d. uniformly,
with replacement, from the task's examples with ``mask > 0``; key ``fold_in(state.rng,
g)`` at global step ``g``), compute the objective (``interventions``) and its gradient,
check divergence, apply the optimizer (``optimizers``), then the post-update transforms
(ReDo, then the weight-norm constraint).

Divergence: a model whose objective or bias/norm-parameter gradients are not finite
stops updating for the rest of the run: from then on its gradients are replaced by zeros
and its learning rate by 0 (``jnp.where``), so its parameters stay exactly as they were
(its optimizer moments keep decaying, unused). It is flagged (``diverged``,
``diverged_at_step``: the global step of the first non-finite objective/gradient) and its
later metrics are NaN. (The check precedes the update so that the selects fuse into the
optimizer's elementwise update instead of costing extra passes over the state; an update
that itself overflows, e.g. SGD with an absurd learning rate, is caught one step later,
when the objective is no longer finite: the frozen parameters are then those after that
last update.)
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import keys as K
from ..losses import LOSSES, data_loss
from ..models import Network
from . import interventions as iv
from .config import TrainConfig, hyperparams, init_config, structural
from .optimizers import make_optimizer, shampoo

__all__ = [
    "TrainState",
    "Batch",
    "init_model_state",
    "train_step",
    "evaluate_task",
    "check_compat",
    "SUM_METRICS",
]

Array = jax.Array

# Logged metrics summed (not averaged) over a log window.
SUM_METRICS = ("redo_resets",)


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


class Batch(NamedTuple):
    """A minibatch given by the caller to :func:`train_step`: ``x`` ``(B, ...)`` inputs,
    ``y`` ``(B,)`` int labels or ``(B, k)`` float targets."""

    x: Array
    y: Array


def check_compat(network: Network, cfg: TrainConfig) -> None:
    """Raise a ``ValueError`` naming the parameter if ``network`` and ``cfg`` cannot train
    together (loss vs head, ReDo on a ResNet, an unavailable optimizer)."""
    if not isinstance(network, Network):
        raise ValueError(
            f"network must be a models.Network (make_network(cfg)), got {type(network).__name__}"
        )
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    twohot_head = network.cfg.head == "twohot"
    if (cfg.loss == "twohot") != twohot_head:
        raise ValueError(
            f"TrainConfig.loss={cfg.loss!r} does not match ModelConfig.head="
            f"{network.cfg.head!r}: loss='twohot' needs head='twohot' and head='twohot' "
            "needs loss='twohot'"
        )
    if cfg.redo_every and network.cfg.arch == "resnet18":
        raise ValueError(
            "TrainConfig.redo_every > 0 (ReDo) is not supported for arch='resnet18' (paper §4.1)"
        )
    if cfg.optimizer == "shampoo":
        shampoo()  # raises when unavailable


def atoms_of(network: Network):
    """The two-hot atoms ``(n_atoms,)`` of a ``head="twohot"`` network, else None."""
    return jnp.asarray(network.atoms) if network.cfg.head == "twohot" else None


def feature_dim(network: Network, example_x) -> int:
    """Width ``d`` of the network's penultimate features for inputs shaped ``example_x``."""

    def f(x):
        p = network.init(jax.random.PRNGKey(0), x)
        return network.apply_with_intermediates(p, x)[1].features

    shape = jax.eval_shape(f, jax.ShapeDtypeStruct(example_x.shape, jnp.float32)).shape
    return int(shape[-1])


# ---------------------------------------------------------------------------------- state


def init_from_params(
    network: Network, scfg: TrainConfig, k_data, k_aux, example_x, params
) -> TrainState:
    """Initial state of one model from its initial ``params``, with data key ``k_data``
    (``fold_in(PRNGKey(seed), keys.MINIBATCH)``) and InFeR key ``k_aux``
    (``keys.INFER``)."""
    aux = {}
    if scfg.infer_coef:
        d = feature_dim(network, example_x)
        aux = {
            "kernel": jax.random.normal(k_aux, (d, scfg.infer_k), jnp.float32) / np.sqrt(d),
            "bias": jnp.zeros((scfg.infer_k,), jnp.float32),
        }
    opt_state = make_optimizer(scfg).init((params, aux))
    anchor = {}
    if scfg.weight_norm_constraint:
        anchor["kernel_norms"] = iv.kernel_norms(params)
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


def init_model_state(
    network: Network,
    cfg: TrainConfig,
    key,
    example_x,
    *,
    params=None,
    init_transform: Optional[Callable] = None,
) -> TrainState:
    """Initial ``TrainState`` of ONE model; traceable (``jax.vmap`` it over keys).

    Args:
      network, cfg: the model and training configuration.
      key: the model's root key ``PRNGKey(seed)`` (``keys.seed_keys(seeds)[i]``); the
        parameters use ``fold_in(key, keys.PARAMS)``, the minibatches ``keys.MINIBATCH``,
        the InFeR heads ``keys.INFER``, as in ``train.init_state``.
      example_x: ``(batch, ...)`` inputs of the right shape (only the shape is used).
      params: optional starting parameters (no model axis); InFeR and the weight-norm
        constraint anchor to these.
      init_transform: optional ``params -> params`` applied to the fresh parameters
        (e.g. ``|theta|``, App. E.8); not with ``params``.
    Returns:
      ``TrainState`` without a model axis. With the same seed its parameters, optimizer
      state and keys are bit-identical to the corresponding entry of
      ``train.init_state(network, cfg, seeds, example_x)``; the anchors computed from the
      parameters (the weight-norm constraint's initial kernel norms, InFeR's initial
      heads) may differ from it at float rounding (1 ulp), because XLA compiles them in
      another program (``init_state`` runs two: parameters, then the rest).
    """
    check_compat(network, cfg)
    if params is not None and init_transform is not None:
        raise ValueError(
            "init_transform transforms the fresh initialisation; it cannot be combined "
            "with params (transform those yourself)"
        )
    ex = jnp.asarray(example_x, jnp.float32)[:2]
    if params is None:
        params = network.init(jax.random.fold_in(key, K.PARAMS), ex)
        if init_transform is not None:
            params = init_transform(params)
    k_data = jax.random.fold_in(key, K.MINIBATCH)
    k_aux = jax.random.fold_in(key, K.INFER)
    return init_from_params(network, init_config(structural(cfg)), k_data, k_aux, ex, params)


# ------------------------------------------------------------------------------ the step


def objective(network, scfg, atoms, trainable, hp, anchor, xb, yb):
    """``(objective, metrics)`` of one model on the minibatch ``(xb, yb)``: the data
    loss plus the loss terms compiled in by ``scfg`` (module doc of ``interventions``)."""
    params, aux = trainable
    need_feats = bool(scfg.feature_norm_penalty or scfg.infer_coef)

    def fwd(p):
        if need_feats:
            out, inter = network.apply_with_intermediates(p, xb)
            feats = inter.features
        else:
            out, feats = network.apply(p, xb), None
        per_ex, m = data_loss(
            scfg.loss, out, yb, label_smoothing=hp["label_smoothing"], atoms=atoms
        )
        return jnp.mean(per_ex), (m, feats)

    if scfg.grad_norm_penalty:
        (dl, (m, feats)), g = jax.value_and_grad(fwd, has_aux=True)(params)
        total = dl + iv.grad_norm_penalty(g, hp["grad_norm_penalty"])
    else:
        dl, (m, feats) = fwd(params)
        total = dl
    if scfg.l2:
        total = total + iv.l2_penalty(params, hp["l2"], scfg.decay_params)
    if scfg.feature_norm_penalty:
        total = total + iv.feature_norm_penalty(feats, hp["feature_norm_penalty"])
    if scfg.infer_coef:
        _, inter0 = network.apply_with_intermediates(anchor["params0"], xb)
        total = total + iv.infer_penalty(
            feats, aux, inter0.features, anchor["aux0"], hp["infer_coef"], hp["infer_scale"]
        )
    metrics = {"loss": dl, "objective": total}
    metrics.update({k: jnp.mean(v) for k, v in m.items()})
    return total, metrics


def prepare(task):
    """``(x, y, order, n_active)``: the task's arrays, its example indices with the
    masked (``mask > 0``) ones first, and how many are masked."""
    mask = task.mask
    order = jnp.argsort(-(mask > 0).astype(jnp.int32), stable=True).astype(jnp.int32)
    n_active = jnp.sum(mask > 0).astype(jnp.int32)
    return task.x, task.y, order, n_active


def _update(network, scfg, atoms, state: TrainState, hp, xb, yb, k_redo, g):
    """The step of one model on the minibatch ``(xb, yb)`` at global step ``g``."""
    trainable = (state.params, state.aux)
    grads, metrics = jax.grad(
        lambda tr: objective(network, scfg, atoms, tr, hp, state.anchor, xb, yb), has_aux=True
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
        ok = ok & jnp.isfinite(iv.sq_norm(small))
    bad = state.diverged | ~ok
    grads = jax.tree_util.tree_map(lambda a: jnp.where(bad, jnp.zeros_like(a), a), grads)
    lr = jnp.where(bad, 0.0, hp["learning_rate"])
    opt = make_optimizer(scfg, dict(hp, learning_rate=lr))
    updates, opt_state = opt.update(grads, state.opt_state, trainable)
    params, aux = optax.apply_updates(trainable, updates)
    # Post-update transforms: ReDo, then the weight-norm constraint (so it always holds).
    if scfg.redo_every:
        params, aux, opt_state, n_reset = iv.redo_transform(
            network,
            params,
            aux,
            opt_state,
            opt,
            xb,
            k_redo,
            hp["redo_tau"],
            g,
            scfg.redo_every,
            bad,
        )
        metrics["redo_resets"] = n_reset.astype(jnp.float32)
    if scfg.weight_norm_constraint:
        params = iv.apply_weight_norm_constraint(params, state.anchor["kernel_norms"], bad)
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


def step_prepared(network, scfg, atoms, state: TrainState, hp, data, g):
    """One optimizer step of one model at (unbatched) global step ``g`` on ``data =
    prepare(task)``: the minibatch is drawn with ``fold_in(state.rng, g)``."""
    x, y, order, n_active = data
    k_batch, k_redo = jax.random.split(jax.random.fold_in(state.rng, g))
    u = jax.random.randint(k_batch, (scfg.batch_size,), 0, jnp.maximum(n_active, 1))
    idx = order[u]
    return _update(network, scfg, atoms, state, hp, x[idx], y[idx], k_redo, g)


def train_step(
    network: Network,
    cfg: TrainConfig,
    state: TrainState,
    hparams: Optional[dict],
    data,
    *,
    step=None,
):
    """One optimizer step of ONE model (App. B.2, §4.1); traceable: ``jax.vmap`` it.

    Args:
      network, cfg: the model and training configuration. ``cfg`` decides the structure
        (optimizer, loss, which interventions are compiled in: a zero coefficient is
        "off"); the float values come from ``hparams``.
      state: ``TrainState`` of one model (no model axis): ``init_model_state``.
      hparams: ``{field: () float}`` for every field of ``HYPER_FIELDS``
        (``hyperparams(cfg)``, possibly with traced or vmapped values), or None
        (``cfg``'s values).
      data: a ``Task`` ``(x (N, ...), y (N,) | (N, k), mask (N,))``: the minibatch of
        ``cfg.batch_size`` examples is drawn from its masked examples with key
        ``fold_in(state.rng, step)`` (the engine's draw; in a ``lax.scan`` the sort of
        the mask is hoisted out of the loop by XLA), or a ``Batch(x (B, ...), y (B,...))``
        used as given.
      step: global step ``g`` (int32, may be traced; default ``state.step``): the
        minibatch key and ReDo's period.
    Returns:
      ``(state, metrics)``: the updated state and ``{"loss", "objective", "accuracy" |
      "mse", ["redo_resets"]}`` scalars of this step's minibatch (NaN once diverged).
    """
    check_compat(network, cfg)
    scfg = structural(cfg)
    hp = hyperparams(cfg) if hparams is None else hparams
    missing = [f for f in hyperparams(cfg) if f not in hp]
    if missing:
        raise ValueError(f"hparams lacks {missing}; give every field (train.hyperparams(cfg))")
    g = state.step if step is None else jnp.asarray(step, jnp.int32)
    atoms = atoms_of(network)
    if isinstance(data, Batch) or not hasattr(data, "mask"):
        _, k_redo = jax.random.split(jax.random.fold_in(state.rng, g))
        return _update(network, scfg, atoms, state, hp, data[0], data[1], k_redo, g)
    return step_prepared(network, scfg, atoms, state, hp, prepare(data), g)


# ------------------------------------------------------------------------ windows of steps


def nan_if(bad, tree):
    """``tree`` with its floating leaves replaced by NaN where ``bad``."""

    def f(v):
        v = jnp.asarray(v)
        return jnp.where(bad, jnp.nan, v) if jnp.issubdtype(v.dtype, jnp.floating) else v

    return jax.tree_util.tree_map(f, tree)


def user_metrics(metrics_fn, state, task, key, reserved):
    """``metrics_fn(params, task, key)`` of one model (NaN once diverged); checks that it
    returns a dict whose keys do not clash with the engine's ``reserved`` names."""
    if metrics_fn is None:
        return {}
    out = metrics_fn(state.params, task, key)
    if not isinstance(out, dict):
        raise ValueError("metrics_fn must return a dict of arrays")
    clash = set(out) & set(reserved)
    if clash:
        raise ValueError(
            f"metrics_fn keys {sorted(clash)} clash with the engine's metrics {sorted(reserved)}"
        )
    return nan_if(state.diverged, out)


def run_windows(
    network, scfg, atoms, state, hp, task, g0, n_windows, log_every, metrics_fn, metrics_root
):
    """``n_windows * log_every`` steps of one model on ``task`` from global step ``g0``.

    Returns ``(state, logs)`` with ``logs[name]`` ``(n_windows, ...)``: the window's mean
    (``SUM_METRICS``: sum) of the step metrics, ``"param_norm"`` and the ``metrics_fn``
    values (key ``fold_in(metrics_root, g)`` at the window's last global step ``g``).
    """
    data = prepare(task)

    def window(st, w):
        def inner(s, i):
            return step_prepared(network, scfg, atoms, s, hp, data, g0 + w * log_every + i)

        st, ms = jax.lax.scan(inner, st, jnp.arange(log_every, dtype=jnp.int32))
        logs = {k: (jnp.sum(v, 0) if k in SUM_METRICS else jnp.mean(v, 0)) for k, v in ms.items()}
        norm = optax.tree_utils.tree_norm(st.params)
        logs["param_norm"] = jnp.where(st.diverged, jnp.nan, norm)
        g_end = g0 + (w + 1) * log_every
        key = jax.random.fold_in(metrics_root, g_end)
        logs.update(user_metrics(metrics_fn, st, task, key, logs))
        return st, logs

    return jax.lax.scan(window, state, jnp.arange(n_windows, dtype=jnp.int32))


# ------------------------------------------------------------------------------ evaluation


def evaluate_with_atoms(network, loss_kind, atoms, params, task, label_smoothing, batch_size):
    """Mean loss and accuracy/mse of one model over the task's masked examples, in batches.

    Batches contain only masked examples (indices cycle over them; the padding of the
    last batch is weighted 0), so batch-statistics normalisation sees only those.
    """
    x, y, order, n_active = prepare(task)
    n = x.shape[0]
    bs = min(batch_size, n)
    n_batches = (jnp.maximum(n_active, 1) + bs - 1) // bs
    safe = jnp.maximum(n_active, 1)

    def loss_of(xs, ys):
        out = network.apply(params, xs)
        return data_loss(loss_kind, out, ys, label_smoothing=label_smoothing, atoms=atoms)

    def body(j, acc):
        i = j * bs + jnp.arange(bs, dtype=jnp.int32)
        w = (i < n_active).astype(jnp.float32)
        idx = order[i % safe]
        per_ex, m = loss_of(x[idx], y[idx])
        new = {"loss": acc["loss"] + jnp.sum(per_ex * w)}
        for k, v in m.items():
            new[k] = acc[k] + jnp.sum(v * w)
        return new

    # Metric names from an abstract evaluation of the loss.
    probe = jax.eval_shape(lambda: loss_of(x[:1], y[:1]))
    init = {"loss": jnp.float32(0.0), **{k: jnp.float32(0.0) for k in probe[1]}}
    tot = jax.lax.fori_loop(0, n_batches, body, init)
    denom = jnp.maximum(n_active, 1).astype(jnp.float32)
    return {k: v / denom for k, v in tot.items()}


def evaluate_task(
    network: Network,
    params,
    task,
    loss: str = "xent",
    *,
    batch_size: int = 1024,
    label_smoothing=0.0,
) -> dict:
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
    atoms = atoms_of(network)
    return evaluate_with_atoms(network, loss, atoms, params, task, label_smoothing, int(batch_size))
