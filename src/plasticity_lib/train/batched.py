"""Many models at once: initialisation, steps and evaluation with a leading model axis.

Paper: Lyle et al. (2024), App. B.2 (the training protocol), App. E.8 (initialisation
transforms such as ``|theta|``).

The functions here take and return states and parameters with a leading model axis
``M`` (one model per seed; ``keys`` module for the key scheme) and run the one-model
primitives of ``step`` in one jitted ``jax.vmap``: :func:`initial_params`,
:func:`init_state`, :func:`train_steps` (a custom protocol's block of steps, e.g.
pretrain then fine-tune), :func:`reset_optimizer` and :func:`evaluate`. The compiled
programs are cached: calling again with the same network, structural config and
protocol does not recompile.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from .. import keys as K
from ..losses import LOSSES
from ..models import Network
from ..tasks import Task
from .config import TrainConfig, full_hyperparams, init_config, structural
from .optimizers import make_optimizer
from .step import (
    TrainState,
    atoms_of,
    check_compat,
    evaluate_with_atoms,
    init_from_params,
    run_windows,
)

__all__ = [
    "initial_params",
    "init_state",
    "reset_optimizer",
    "train_steps",
    "evaluate",
    "model_map",
    "task_axes",
    "params_batched",
    "check_init_transform",
    "init_states",
]


# ------------------------------------------------------------------------------- helpers


def _squeeze_model_axis(arg, ax):
    if ax is None:
        return arg
    if isinstance(ax, int):
        return jax.tree_util.tree_map(lambda a: a[0], arg)
    return type(arg)(*[_squeeze_model_axis(a, x) for a, x in zip(arg, ax)])


def model_map(fn, in_axes, m: int):
    """``jax.vmap(fn, in_axes)`` over the model axis; for a single model (``m == 1``) ``fn``
    runs on the squeezed arguments instead (same function: on CPU a size-1 vmap makes XLA
    pick transposed layouts for the weight gradients, ~25% slower)."""
    if m != 1:
        return jax.vmap(fn, in_axes=in_axes)

    def single(*args):
        out = fn(*[_squeeze_model_axis(a, ax) for a, ax in zip(args, in_axes)])
        return jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], out)

    return single


def _reference_params(network: Network, example_x):
    shape = jax.ShapeDtypeStruct(example_x.shape, jnp.float32)
    return jax.eval_shape(network.init, jax.random.PRNGKey(0), shape)


def params_batched(network: Network, params, example_x) -> bool:
    """Whether ``params`` has a leading model axis (False: one model's tree); raises if it
    matches neither."""
    ref_leaf = jax.tree_util.tree_leaves(_reference_params(network, example_x))[0]
    leaf = jax.tree_util.tree_leaves(params)[0]
    if np.ndim(leaf) == ref_leaf.ndim:
        return False
    if np.ndim(leaf) == ref_leaf.ndim + 1:
        return True
    raise ValueError(
        f"params do not match the network: first leaf has shape {np.shape(leaf)}, expected "
        f"{ref_leaf.shape} (or with one extra leading model axis)"
    )


def check_init_transform(network: Network, init_transform, example_x) -> None:
    """``init_transform`` must map a params tree to one of the same structure, shapes and
    dtypes; raise a ``ValueError`` naming it otherwise."""
    if init_transform is None:
        return
    if not callable(init_transform):
        raise ValueError(
            "init_transform must be a function params -> params, got "
            f"{type(init_transform).__name__}"
        )
    ref = _reference_params(network, example_x)
    try:
        got = jax.eval_shape(init_transform, ref)
    except Exception as e:  # noqa: BLE001 - report any failure with the parameter's name
        raise ValueError(f"init_transform failed on the network's parameters: {e}") from e
    if jax.tree_util.tree_structure(got) != jax.tree_util.tree_structure(ref) or any(
        (a.shape, a.dtype) != (b.shape, b.dtype)
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(ref))
    ):
        raise ValueError(
            "init_transform must return a params tree with the same structure, shapes and dtypes"
        )


@functools.partial(jax.jit, static_argnames=("network", "init_transform"))
def _initial_params_jit(network, init_transform, k_init, example_x):
    def one(k):
        params = network.init(k, example_x)
        return params if init_transform is None else init_transform(params)

    return jax.vmap(one)(k_init)


def _initial_params(network, seed_keys, example_x, init_transform=None):
    """``(M, ...)`` params: ``init_transform(network.init(fold_in(key, PARAMS), x))``."""
    k_init = K.derive(seed_keys, K.PARAMS)
    return _initial_params_jit(network, init_transform, k_init, example_x)


@functools.partial(jax.jit, static_argnames=("network", "scfg"))
def _init_states_jit(network, scfg, k_data, k_aux, example_x, params):
    def one(b, c, p):
        return init_from_params(network, scfg, b, c, example_x, p)

    return jax.vmap(one)(k_data, k_aux, params)


def init_states(network, scfg, seed_keys, example_x, params=None, init_transform=None):
    """Initial states of the models with root keys ``seed_keys`` ``(M, 2)``; ``params``
    (leading M) or, when None, the engine's initialisation (``initial_params``)."""
    if params is None:
        params = _initial_params(network, seed_keys, example_x, init_transform)
    k_data = K.derive(seed_keys, K.MINIBATCH)
    k_aux = K.derive(seed_keys, K.INFER)
    return _init_states_jit(network, init_config(scfg), k_data, k_aux, example_x, params)


# ------------------------------------------------------------------------ initialisation


def initial_params(
    network: Network, seeds, example_x, *, init_transform: Optional[Callable] = None
):
    """The parameters the engine initialises one model per seed with (leading axis
    ``len(seeds)``).

    Model ``seed`` gets ``init_transform(network.init(fold_in(PRNGKey(seed), PARAMS), x))``
    (``keys`` module), computed by the same compiled program as in ``init_state`` /
    ``train_stream`` / ``train_many``, so the result is bit-identical to the parameters
    those start from with the same ``init_transform``.

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
        raise ValueError(
            f"network must be a models.Network (make_network(cfg)), got {type(network).__name__}"
        )
    ex = jnp.asarray(example_x, jnp.float32)[:2]
    check_init_transform(network, init_transform, ex)
    return _initial_params(network, K.seed_keys(seeds), ex, init_transform)


def init_state(
    network: Network,
    cfg: TrainConfig,
    seeds,
    example_x,
    *,
    init_params=None,
    init_transform: Optional[Callable] = None,
) -> TrainState:
    """Initial ``TrainState`` of one model per seed (leading axis ``len(seeds)``).

    Args:
      network, cfg: the model and training configuration.
      seeds: int or sequence of ints (``PRNGKey(seed)``, key scheme in ``keys``).
      example_x: ``(batch, ...)`` inputs of the right shape (e.g. ``task.x[:2]``).
      init_params: optional starting parameters (e.g. a pretrained network), either one
        params tree (used for every seed) or a tree with a leading seed axis. InFeR and
        the weight-norm constraint anchor to these.
      init_transform: optional ``params -> params`` applied to each model's freshly
        initialised parameters inside the compiled initialisation (``initial_params``);
        not allowed together with ``init_params``.
    """
    check_compat(network, cfg)
    keys = K.seed_keys(seeds)
    ex = jnp.asarray(example_x, jnp.float32)[:2]
    if init_params is not None and init_transform is not None:
        raise ValueError(
            "init_transform transforms the engine's fresh initialisation; it cannot be "
            "combined with init_params (transform those yourself)"
        )
    check_init_transform(network, init_transform, ex)
    params = None
    m = keys.shape[0]
    if init_params is not None:
        if params_batched(network, init_params, ex):
            params = jax.tree_util.tree_map(jnp.asarray, init_params)
            if jax.tree_util.tree_leaves(params)[0].shape[0] != m:
                raise ValueError("init_params has a leading axis that does not match len(seeds)")
        else:
            params = jax.tree_util.tree_map(
                lambda a: jnp.broadcast_to(a, (m,) + np.shape(a)), init_params
            )
    return init_states(network, structural(cfg), keys, ex, params, init_transform)


@functools.partial(jax.jit, static_argnames=("network", "scfg"))
def _reset_opt(network, scfg, state):
    opt_state = jax.vmap(lambda p, a: make_optimizer(scfg).init((p, a)))(state.params, state.aux)
    return state._replace(opt_state=opt_state)


def reset_optimizer(network: Network, cfg: TrainConfig, state: TrainState) -> TrainState:
    """``state`` (leading model axis) with a freshly initialised optimizer state."""
    check_compat(network, cfg)
    return _reset_opt(network, structural(cfg), state)


# ---------------------------------------------------------------------------- train_steps


@functools.lru_cache(maxsize=64)
def _train_steps_fn(network, scfg, num_steps, log_every, metrics_fn, axes, task_type, single):
    atoms = atoms_of(network)
    n_windows = num_steps // log_every

    def one(state, hp, task, g0, mroot):
        return run_windows(
            network, scfg, atoms, state, hp, task, g0, n_windows, log_every, metrics_fn, mroot
        )

    axes = task_type(*axes) if isinstance(axes, tuple) else axes
    return jax.jit(model_map(one, (0, 0, axes, None, 0), 1 if single else 2))


def task_axes(task, task_batched, m: int, what: str = "task"):
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
            raise ValueError(
                f"task_batched={task_batched!r} must be a bool or a tuple of per-field axes "
                "(0 or None)"
            )
        if len(axes) != len(fields) or any(a not in (0, None) or isinstance(a, bool) for a in axes):
            raise ValueError(
                f"task_batched={task_batched!r} must give one axis (0 or None) for each of the "
                f"{len(fields)} fields of the {what}, e.g. (None, 0, None) for shared inputs x "
                "and per-model labels y"
            )
        axes = tuple(None if a is None else 0 for a in axes)
        key = axes
    for i, (a, leaf) in enumerate(zip(axes, fields)):
        if a == 0 and (np.ndim(leaf) == 0 or np.shape(leaf)[0] != m):
            name = getattr(task, "_fields", None)
            name = name[i] if name else f"field {i}"
            raise ValueError(
                f"{what}.{name} has shape {np.shape(leaf)} but task_batched says it has a "
                f"leading model axis of {m}"
            )
    return key


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
    is ``state.step[0]`` (minibatch keys ``fold_in(state.rng, step)``). Each model runs
    the one-model ``train_step`` (``jax.vmap`` over the model axis, ``lax.scan`` over
    the steps).

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
    check_compat(network, cfg)
    log_every = num_steps if log_every is None else log_every
    if num_steps < 1 or log_every < 1 or num_steps % log_every:
        raise ValueError(
            f"num_steps={num_steps} must be a positive multiple of log_every={log_every}"
        )
    m = int(np.shape(state.step)[0])
    hp = full_hyperparams(cfg, hparams, m)
    axes = task_axes(task, task_batched, m)
    task_type = type(task) if isinstance(axes, tuple) else None
    fn = _train_steps_fn(
        network,
        structural(cfg),
        int(num_steps),
        int(log_every),
        metrics_fn,
        axes,
        task_type,
        m == 1,
    )
    mroot = K.derive(state.rng, K.METRICS)
    g0 = jnp.asarray(state.step)[0].astype(jnp.int32)
    return fn(state, hp, task, g0, mroot)


# ------------------------------------------------------------------------------ evaluate


@functools.lru_cache(maxsize=32)
def _evaluate_fn(network, loss, batch_size, batched, data_axes=(None, None, None), ls_axis=None):
    atoms = atoms_of(network)

    def one(params, x, y, mask, ls):
        return evaluate_with_atoms(network, loss, atoms, params, Task(x, y, mask), ls, batch_size)

    if batched:
        one = jax.vmap(one, in_axes=(0, *data_axes, ls_axis))
    return jax.jit(one)


def evaluate(
    network: Network,
    params,
    x,
    y,
    loss: str = "xent",
    *,
    mask=None,
    batch_size: int = 1024,
    label_smoothing=0.0,
    task_batched=False,
) -> dict:
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
        axes = task_axes(Task(x, y, dummy), task_batched, m_params, "evaluation data")
        data_axes = tuple(axes) if isinstance(axes, tuple) else (axes,) * 3
    if mask is None:
        mask = jnp.ones((x.shape[1] if data_axes[0] == 0 else x.shape[0],), jnp.float32)
    ex = x[0, :2] if data_axes[0] == 0 else x[:2]
    batched = params_batched(network, params, ex)
    if not batched and (any(a == 0 for a in data_axes) or ls.ndim):
        raise ValueError(
            "per-model data (task_batched) or label_smoothing need params with a leading model axis"
        )
    if ls.ndim and ls.shape != (jax.tree_util.tree_leaves(params)[0].shape[0],):
        raise ValueError(
            f"label_smoothing has shape {ls.shape}; give a scalar or one value per model"
        )
    ls_axis = 0 if ls.ndim else None
    fn = _evaluate_fn(network, loss, int(batch_size), bool(batched), data_axes, ls_axis)
    out = fn(params, x, y, mask, ls)
    return {k: np.asarray(v) for k, v in out.items()}
