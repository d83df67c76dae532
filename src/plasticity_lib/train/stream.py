"""The stream engine: every (config, seed) trained on a task stream in one compiled program.

Paper: Lyle et al. (2024), App. B.2 (continual supervised learning: a fixed number of
optimizer steps per task, then a new task from the stream) and §3 / §4 (the experiments
that train many configurations and seeds on the same stream).

:func:`train_many` groups the configurations that share a structural config
(``config.group_configs``) and runs each group as ONE jitted function of the models
(``jax.vmap`` over configs x seeds, ``jax.lax.scan`` over tasks, log windows and steps),
called chunk by chunk by the project's one host loop (``plasticity_lib.runner.run_chunks``:
chunk -> ``device_get`` -> progress bar), with optional atomic checkpoints after every
chunk (``checkpoint``) and the model axis sharded over all devices.
:func:`train_stream` is the same for one configuration. The results are
:class:`RunResult` objects of numpy arrays with a leading seed axis.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from typing import Any, Callable, Optional, Sequence

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .. import keys as K
from .. import runner
from ..models import Network
from . import checkpoint as ckpt
from .batched import check_init_transform, init_states, model_map, params_batched
from .config import TrainConfig, batched_hyperparams, group_configs
from .optimizers import make_optimizer
from .step import (
    TrainState,
    atoms_of,
    check_compat,
    evaluate_with_atoms,
    nan_if,
    run_windows,
    user_metrics,
)

__all__ = ["RunResult", "train_stream", "train_many"]


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
            s, t, w = np.meshgrid(
                np.arange(arr.shape[0]),
                np.arange(arr.shape[1]),
                np.arange(arr.shape[2]),
                indexing="ij",
            )
            frame = {
                "seed": self.seeds[s.ravel()],
                "task": t.ravel(),
                "step": self.log_steps[t.ravel(), w.ravel()],
                "metric": name,
                "value": arr.ravel(),
            }
            rows.append(pd.DataFrame(frame))
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


# ----------------------------------------------------------------------------- task stream


def _task_at(stream, root, t, task0):
    """Task ``t`` of a stream from task 0 (``init(fold_in(root, 0))``): ``next`` for
    ``1..t`` with keys ``fold_in(root, i)`` (``keys`` module: task ``i`` of ``root``)."""

    def body(i, task):
        return stream.next(jax.random.fold_in(root, i), i, task)

    return jax.lax.fori_loop(1, t + 1, body, task0)


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
    keys0 = K.task_keys(roots, 0)
    dep = _key_dependence(stream.init, keys0[0])
    axes = jax.tree_util.tree_map(lambda d: 0 if d else None, dep)
    try:
        task0 = jax.vmap(stream.init, out_axes=axes)(keys0)
    except ValueError:  # pragma: no cover - JAX found a dependence we did not
        axes = jax.tree_util.tree_map(lambda _: 0, dep)
        task0 = jax.vmap(stream.init)(keys0)
    return task0, axes


# --------------------------------------------------------------------- the compiled chunk


@functools.lru_cache(maxsize=4)
def _stream_fns(
    network,
    scfg,
    stream,
    metrics_fn,
    steps_per_task,
    log_every,
    chunk_steps,
    eval_every_task,
    task_axes,
    keep_params,
    single=False,
):
    """The jitted chunk function of the stream engine (cached: same structure, no
    recompilation).

    ``chunk_fn(state, hp, task_roots, metric_roots, task0, g_base, t0, s0) -> (state, (logs,
    task_end, params))`` for every model (vmapped). A chunk is either ``K =
    chunk_steps // steps_per_task >= 1`` whole tasks ``t0 .. t0+K-1`` (an outer
    ``lax.scan`` over tasks, ``stream.next`` called at each boundary, inner scans over log
    windows and steps), or, when ``chunk_steps < steps_per_task``, steps ``s0 ..
    s0+chunk_steps`` of task ``t0`` (``K = 1``). Outputs have a ``K`` axis after the model
    axis; ``task_end`` (the task-end metrics) is meaningful only for chunks that end a task
    and ``params`` (task-end parameters) is ``None`` unless ``keep_params``.
    """
    atoms = atoms_of(network)
    n_tasks = max(chunk_steps // steps_per_task, 1)
    steps = min(chunk_steps, steps_per_task)
    n_windows = steps // log_every
    partial = chunk_steps < steps_per_task
    reserved_eval = ("loss", "accuracy", "mse", "param_norm")

    def task_end_metrics(st, h, mroot, task, g_base, t):
        out = {}
        if eval_every_task:
            ls, bs = h["label_smoothing"], scfg.eval_batch_size
            out.update(evaluate_with_atoms(network, scfg.loss, atoms, st.params, task, ls, bs))
        out["param_norm"] = optax.tree_utils.tree_norm(st.params)
        out = nan_if(st.diverged, out)
        g_end = g_base + (t + 1) * steps_per_task
        key = jax.random.fold_in(mroot, g_end)
        out.update(user_metrics(metrics_fn, st, task, key, reserved_eval))
        return out

    def reset_opt(st, h):
        return st._replace(opt_state=make_optimizer(scfg, h).init((st.params, st.aux)))

    def chunk_one(st, h, root, mroot, task_0, g_base, t0, s0):
        task = _task_at(stream, root, t0, task_0)

        def per_task(carry, k):
            st, task = carry
            t = t0 + k
            if scfg.reset_optimizer_each_task:
                st = jax.lax.cond((s0 == 0) & (t > 0), lambda s: reset_opt(s, h), lambda s: s, st)
            g0 = g_base + t * steps_per_task + s0
            st, logs = run_windows(
                network, scfg, atoms, st, h, task, g0, n_windows, log_every, metrics_fn, mroot
            )
            if partial:
                shape = jax.eval_shape(lambda: task_end_metrics(st, h, mroot, task, g_base, t))
                ev = jax.lax.cond(
                    s0 + steps == steps_per_task,
                    lambda: task_end_metrics(st, h, mroot, task, g_base, t),
                    lambda: jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), shape),
                )
            else:
                ev = task_end_metrics(st, h, mroot, task, g_base, t)
            if n_tasks > 1:
                nxt = stream.next(jax.random.fold_in(root, t + 1), t + 1, task)
            else:
                nxt = task
            return (st, nxt), (logs, ev, st.params if keep_params else None)

        (st, _), outs = jax.lax.scan(per_task, (st, task), jnp.arange(n_tasks, dtype=jnp.int32))
        return st, outs

    in_axes = (0, 0, 0, 0, task_axes, None, None, None)
    return jax.jit(model_map(chunk_one, in_axes, 1 if single else 2), donate_argnums=(0,))


def _default_chunk_steps(num_tasks: int, steps_per_task: int, target: int = 1000) -> int:
    """One task per chunk for long tasks; for short tasks the largest number ``K`` of whole
    tasks (a divisor of ``num_tasks``) with ``K * steps_per_task <= target``."""
    if steps_per_task >= target:
        return steps_per_task
    k = max(
        d for d in range(1, num_tasks + 1) if num_tasks % d == 0 and d * steps_per_task <= target
    )
    return k * steps_per_task


# ------------------------------------------------------------------------- host side


def _alloc(v, lead):
    """Host array ``lead + v.shape[len(lead):]``: NaN (floats) or 0, for the chunks of ``v``."""
    v = np.asarray(v)
    shape = lead + v.shape[len(lead) :]
    if np.issubdtype(v.dtype, np.floating):
        return np.full(shape, np.nan, np.float32)
    return np.zeros(shape, v.dtype)


class _RunArrays:
    """The run's host arrays, filled chunk by chunk: ``logs`` ``(M, num_tasks, W, ...)``,
    ``task_end`` ``(M, num_tasks, ...)`` and ``task_params`` ``(M, len(keep_tasks), ...)``."""

    def __init__(self, m, num_tasks, w_per_task, n_windows, n_tasks_chunk, keep_tasks):
        self.m, self.num_tasks, self.w_per_task = m, num_tasks, w_per_task
        self.n_windows, self.n_tasks_chunk, self.keep_tasks = n_windows, n_tasks_chunk, keep_tasks
        self.logs: dict = {}
        self.task_end: dict = {}
        self.task_params = None

    def add(self, out) -> None:
        """Put one chunk's host output (``chunk`` in ``_run_group``) in place."""
        t0, c, k = out["t0"], out["c"], self.n_tasks_chunk
        if not self.logs:
            lead = (self.m, self.num_tasks, self.w_per_task)
            self.logs = {name: _alloc(v, lead) for name, v in out["logs"].items()}
        w = slice(c * self.n_windows, (c + 1) * self.n_windows)
        for name, v in out["logs"].items():  # (M, K, n_windows, ...)
            self.logs[name][:, t0 : t0 + k, w] = v
        if out["task_end"] is not None:  # the chunk ends its task(s)
            if not self.task_end:
                lead = (self.m, self.num_tasks)
                self.task_end = {name: _alloc(v, lead) for name, v in out["task_end"].items()}
            for name, v in out["task_end"].items():
                self.task_end[name][:, t0 : t0 + k] = v
        if out["task_params"] is not None:  # (M, len(kept), ...)
            if self.task_params is None:
                n_keep = len(self.keep_tasks)
                self.task_params = jax.tree_util.tree_map(
                    lambda a: np.zeros((a.shape[0], n_keep) + a.shape[2:], a.dtype),
                    out["task_params"],
                )
            for i, kk in enumerate(out["kept"]):
                j = self.keep_tasks.index(t0 + kk)

                def put(dst, src, i=i, j=j):
                    dst[:, j] = src[:, i]
                    return dst

                self.task_params = jax.tree_util.tree_map(put, self.task_params, out["task_params"])


def _run_group(
    network,
    scfg,
    cfgs,
    stream,
    seeds,
    *,
    num_tasks,
    steps_per_task,
    log_every,
    chunk_steps,
    metrics_fn,
    eval_every_task,
    keep_tasks,
    progress,
    checkpoint_dir,
    init_params,
    init_state0,
    shard,
    desc,
    init_transform,
    keep_initial,
):
    """Train one group of configs (one structural config ``scfg``) x ``seeds`` in one
    compiled program, chunk by chunk; returns one ``RunResult`` per config."""
    t_start = time.perf_counter()
    n_cfg, n_seed = len(cfgs), len(seeds)
    m = n_cfg * n_seed
    devices = jax.devices()
    n_dev = len(devices) if (shard in ("auto", True) and len(devices) > 1) else 1
    m_pad = -(-m // n_dev) * n_dev
    pad = np.concatenate([np.arange(m), np.full(m_pad - m, m - 1, dtype=np.int64)])
    pad = pad.astype(np.int64)

    # Per-model seeds, keys and hyperparameters (config-major, padded).
    model_seeds = np.tile(seeds, n_cfg)[pad]
    seed_keys = K.seed_keys(model_seeds)
    hp = {k: jnp.asarray(v[pad]) for k, v in batched_hyperparams(cfgs, n_seed).items()}
    task_roots = K.derive(seed_keys, K.TASKS)
    metric_roots = K.derive(seed_keys, K.METRICS)

    task0, task_axes = _initial_tasks(stream, task_roots)
    x0 = task0.x
    example_x = jnp.zeros((2,) + tuple(x0.shape[1 if task_axes.x is None else 2 :]), jnp.float32)
    seed_pos = np.tile(np.arange(n_seed), n_cfg)[pad]
    if init_state0 is not None:
        state = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)[seed_pos]), init_state0)
    else:
        params = None
        if init_params is not None:
            if params_batched(network, init_params, example_x):
                params = jax.tree_util.tree_map(
                    lambda a: jnp.asarray(np.asarray(a)[seed_pos]), init_params
                )
            else:
                params = jax.tree_util.tree_map(
                    lambda a: jnp.broadcast_to(jnp.asarray(a), (m_pad,) + np.shape(a)), init_params
                )
        check_init_transform(network, init_transform, example_x)
        state = init_states(network, scfg, seed_keys, example_x, params, init_transform)
    g_base = int(np.asarray(state.step)[0])
    # the parameters before any training or resumption
    params0 = jax.device_get(state.params) if keep_initial else None

    # Devices: the model axis sharded over a 1-D mesh ("models",).
    models_sharding = None
    if n_dev > 1:
        mesh = Mesh(np.asarray(devices), ("models",))
        models_sharding = NamedSharding(mesh, PartitionSpec("models"))
        state, hp, task_roots, metric_roots = jax.device_put(
            (state, hp, task_roots, metric_roots), models_sharding
        )
        rep = NamedSharding(mesh, PartitionSpec())
        task0 = type(task0)(
            *[
                jax.device_put(a, models_sharding if ax == 0 else rep)
                for a, ax in zip(task0, task_axes)
            ]
        )

    chunk_fn = _stream_fns(
        network,
        scfg,
        stream,
        metrics_fn,
        steps_per_task,
        log_every,
        chunk_steps,
        bool(eval_every_task),
        task_axes,
        bool(keep_tasks),
        m_pad == 1,
    )
    n_tasks_chunk = max(chunk_steps // steps_per_task, 1)
    steps_chunk = min(chunk_steps, steps_per_task)
    n_windows = steps_chunk // log_every
    g_base_arr = np.int32(g_base)
    chunks_per_task = steps_per_task // steps_chunk
    total_chunks = (num_tasks // n_tasks_chunk) * chunks_per_task
    w_per_task = steps_per_task // log_every
    arrays = _RunArrays(m_pad, num_tasks, w_per_task, n_windows, n_tasks_chunk, keep_tasks)
    done = 0

    # Checkpoints: resume from the run's file if there is one.
    ckpt_path = fp = None
    if checkpoint_dir is not None:
        has_init = (init_params is not None, init_state0 is not None, n_dev)
        init_tree = init_params if init_params is not None else init_state0
        transformed = state.params if init_transform is not None else None
        fp = ckpt.fingerprint(
            network,
            cfgs,
            seeds,
            num_tasks,
            steps_per_task,
            log_every,
            chunk_steps,
            eval_every_task,
            keep_tasks,
            metrics_fn,
            stream,
            has_init,
            task0,
            init_tree,
            init_transform,
            transformed,
        )
        ckpt_path = ckpt.checkpoint_path(checkpoint_dir, fp)
        if os.path.exists(ckpt_path):
            tp_template = None
            if keep_tasks:
                tp_template = jax.tree_util.tree_map(
                    lambda a: np.zeros((a.shape[0], len(keep_tasks)) + a.shape[1:], a.dtype),
                    state.params,
                )
            meta, loaded, logs, task_end, task_params = ckpt.load_checkpoint(
                ckpt_path, state, tp_template
            )
            if meta.get("fingerprint") != fp:
                raise ValueError(f"checkpoint {ckpt_path} has a different fingerprint")
            done = int(meta["chunks_done"])
            arrays.logs, arrays.task_end, arrays.task_params = logs, task_end, task_params
            state = jax.tree_util.tree_map(jnp.asarray, loaded)
            if models_sharding is not None:
                state = jax.device_put(state, models_sharding)
            t_start -= float(meta.get("wall_time_s", 0.0))

    def chunk(state, ci):
        """One compiled chunk; its output (fetched by ``run_chunks``) says where it goes."""
        tc, c = divmod(ci, chunks_per_task)
        t0, s0 = tc * n_tasks_chunk, c * steps_chunk
        state, (logs, ev, tparams) = chunk_fn(
            state, hp, task_roots, metric_roots, task0, g_base_arr, np.int32(t0), np.int32(s0)
        )
        ends = s0 + steps_chunk == steps_per_task
        kept = [kk for kk in range(n_tasks_chunk) if ends and t0 + kk in keep_tasks]
        if kept:  # only the kept tasks' parameters travel to the host
            sel = np.asarray(kept)
            tparams = jax.tree_util.tree_map(lambda a: a[:, sel], tparams)
        out = {"t0": t0, "c": c, "logs": logs, "task_end": ev if ends else None}
        out.update(task_params=tparams if kept else None, kept=kept)
        return state, out

    def on_chunk(ci, state, out):
        arrays.add(out)
        if ckpt_path is not None:
            meta = {
                "fingerprint": fp,
                "chunks_done": ci + 1,
                "wall_time_s": time.perf_counter() - t_start,
            }
            host_state = jax.device_get(state)
            ckpt.save_checkpoint(
                ckpt_path, meta, host_state, arrays.logs, arrays.task_end, arrays.task_params
            )

    def postfix(out):
        loss = out["logs"].get("loss")
        loss = float("nan") if loss is None else loss[:, -1, -1]
        return {"task": out["t0"] + n_tasks_chunk - 1, "loss": loss}

    state, _ = runner.run_chunks(
        chunk,
        state,
        total_chunks,
        desc=desc or f"train {n_cfg} cfg x {n_seed} seeds",
        unit="chunk",
        progress=progress,
        postfix=postfix,
        axis=None,
        start=done,
        on_chunk=on_chunk,
    )

    wall = time.perf_counter() - t_start
    windows = (np.arange(w_per_task)[None, :] + 1) * log_every
    log_steps = g_base + np.arange(num_tasks)[:, None] * steps_per_task + windows
    log_steps = log_steps.astype(np.int64)
    out = []
    for ci_, cfg in enumerate(cfgs):
        sl = slice(ci_ * n_seed, (ci_ + 1) * n_seed)
        take = lambda a: np.asarray(a)[sl]  # noqa: E731
        fstate = jax.tree_util.tree_map(take, state)
        task_params = arrays.task_params
        result = RunResult(
            config=cfg,
            model_config=network.cfg,
            seeds=seeds.copy(),
            num_tasks=num_tasks,
            steps_per_task=steps_per_task,
            log_every=log_every,
            log_steps=log_steps,
            logs={k: v[sl] for k, v in arrays.logs.items()},
            task_end={k: v[sl] for k, v in arrays.task_end.items()},
            final_params=fstate.params,
            final_state=fstate,
            task_params=None if task_params is None else jax.tree_util.tree_map(take, task_params),
            task_params_tasks=np.asarray(keep_tasks, np.int64),
            diverged=np.asarray(fstate.diverged, bool),
            diverged_at_step=np.asarray(fstate.diverged_at_step, np.int64),
            wall_time_s=wall,
            num_devices=n_dev,
            initial_params=None if params0 is None else jax.tree_util.tree_map(take, params0),
        )
        out.append(result)
    return out


# ---------------------------------------------------------------------------- public API


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
        network,
        [cfg],
        stream,
        seeds,
        num_tasks=num_tasks,
        steps_per_task=steps_per_task,
        log_every=log_every,
        metrics_fn=metrics_fn,
        eval_every_task=eval_every_task,
        keep_task_params=keep_task_params,
        keep_initial_params=keep_initial_params,
        progress=progress,
        checkpoint_dir=checkpoint_dir,
        chunk_steps=chunk_steps,
        init_params=init_params,
        init_state=init_state,
        init_transform=init_transform,
        shard=shard,
        desc=desc,
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
    """Train every ``(config, seed)`` on a nonstationary task stream (B.2); one program per
    group.

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
        check_compat(network, c)
    seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
    if seeds.size == 0:
        raise ValueError("seeds is empty")
    for name, v in (
        ("num_tasks", num_tasks),
        ("steps_per_task", steps_per_task),
        ("log_every", log_every),
    ):
        if int(v) < 1:
            raise ValueError(f"{name}={v} must be >= 1")
    if steps_per_task % log_every:
        raise ValueError(f"log_every={log_every} must divide steps_per_task={steps_per_task}")
    if chunk_steps is None:
        chunk_steps = _default_chunk_steps(num_tasks, steps_per_task)
    chunk_steps = int(chunk_steps)
    if chunk_steps < 1:
        raise ValueError(f"chunk_steps={chunk_steps} must be >= 1")
    if chunk_steps < steps_per_task:
        if steps_per_task % chunk_steps or chunk_steps % log_every:
            raise ValueError(
                f"chunk_steps={chunk_steps} (< steps_per_task) must divide steps_per_task="
                f"{steps_per_task} and be a multiple of log_every={log_every}"
            )
    elif chunk_steps % steps_per_task or num_tasks % (chunk_steps // steps_per_task):
        raise ValueError(
            f"chunk_steps={chunk_steps} (>= steps_per_task) must be K * steps_per_task="
            f"{steps_per_task} with K dividing num_tasks={num_tasks}"
        )
    if init_params is not None and init_state is not None:
        raise ValueError("give init_params or init_state, not both")
    if init_transform is not None and (init_params is not None or init_state is not None):
        raise ValueError(
            "init_transform transforms the engine's fresh initialisation; it cannot be "
            "combined with init_params or init_state (transform those yourself)"
        )
    if keep_task_params is True:
        keep_tasks = list(range(num_tasks))
    elif keep_task_params is False or keep_task_params is None:
        keep_tasks = []
    else:
        keep_tasks = sorted(int(t) for t in keep_task_params)
        if any(t < 0 or t >= num_tasks for t in keep_tasks):
            raise ValueError(
                f"keep_task_params={keep_task_params!r}: task indices must be in [0, {num_tasks})"
            )

    protocol = dict(
        num_tasks=num_tasks,
        steps_per_task=steps_per_task,
        log_every=log_every,
        chunk_steps=chunk_steps,
        metrics_fn=metrics_fn,
        eval_every_task=eval_every_task,
        keep_tasks=keep_tasks,
        progress=progress,
        checkpoint_dir=checkpoint_dir,
        init_params=init_params,
        init_state0=init_state,
        shard=shard,
        desc=desc,
        init_transform=init_transform,
        keep_initial=bool(keep_initial_params),
    )
    results: list = [None] * len(cfgs)
    for scfg, idxs in group_configs(cfgs):
        group = [cfgs[i] for i in idxs]
        for i, r in zip(idxs, _run_group(network, scfg, group, stream, seeds, **protocol)):
            results[i] = r
    return results
