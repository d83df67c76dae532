"""Chapter 6: the Swiss-cheese model -- interventions on each mechanism, and LN + L2.

Paper: Lyle et al. (2024), §4.1 / Fig. 4 (interventions on parameter-norm growth,
preactivation statistics and loss-landscape conditioning), §4.2 / Fig. 5 left (layer
normalisation + L2 across the nonstationarity "modes"), App. D.1 / Fig. 7 (per-task
learning curves), D.2 / Fig. 8 and E.9 / Fig. 25 (normalisation components), E.5 /
Fig. 20 (L2 sweep), App. B.2 (the continual classification protocol).

What this module adds to the engine
-----------------------------------
``train.train_many`` trains one *stream* per call and puts configurations that differ
only in float hyperparameters into one compiled program. This chapter runs the same
intervention on several streams (three task families x four modes), which all have the
same shapes. :func:`run_group` therefore trains every ``(member, seed)`` of a *group*
-- one network + one structural ``TrainConfig``; members may differ in their stream
(:class:`StreamSpec`) and in float hyperparameters -- in ONE vmapped program, through
the engine's public building blocks: ``train.init_state`` and ``train.train_steps``
with ``task_batched=True`` (one jitted ``lax.scan`` over a task's steps, ``vmap`` over
the models; a Python loop over *tasks* only). On a CPU this matters: a step of a
small MLP costs several times more per model in a vmap of 3 models than in one of 15+.

Keys follow the engine (``train`` module docstring), so a member trained here gives
the same numbers as ``train.train_stream`` on the same stream and seed (tested):
``k = PRNGKey(seed)``; ``fold_in(k, 0)`` initialises the parameters,
``fold_in(k, 1)`` roots the stream (task ``t`` from ``fold_in(root, t)``),
``fold_in(k, 2)`` draws the minibatches. Members that share a seed share initial
parameters (where the architecture allows), tasks and minibatches: common random
numbers, so per-seed differences between interventions are paired.

Task-end metrics (accuracy and loss over all of the task's masked examples, in batches
of ``TrainConfig.eval_batch_size``, so batch norm sees only masked examples) come from
the engine's ``train.evaluate`` with ``task_batched=True`` (every model on its own
task, one vmapped program).

Claim statistics (fixed in the chapter's issue) live here too: :func:`first_last`,
:func:`slopes`, :func:`interval_gap`.

Public API
----------
``FAMILIES``, ``MODES``, ``StreamSpec``, ``make_stream``, ``Member``, ``GroupResult``,
``run_group``, ``intervention_table``, ``tidy_end_of_task``, ``tidy_curves``,
``first_last``, ``slopes``, ``interval_gap``.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import tasks, train
from ..progress import progress_bar
from ..models import ModelConfig, Network, make_network

__all__ = [
    "FAMILIES",
    "FAMILY_LABELS",
    "MODES",
    "StreamSpec",
    "make_stream",
    "Member",
    "GroupResult",
    "StreamBank",
    "run_group",
    "Intervention",
    "intervention_table",
    "PANELS",
    "tidy_end_of_task",
    "tidy_curves",
    "first_last",
    "slopes",
    "interval_gap",
    "cpu_seconds",
]

#: The task families of App. B.2 (names of ``tasks.TRANSFORMS``).
FAMILIES = ("random_labels", "permuted_classes", "permuted_pixels")
FAMILY_LABELS = {
    "random_labels": "random labels",
    "permuted_classes": "permuted classes",
    "permuted_pixels": "permuted pixels",
}
#: The §4.2 modes: label -> (``tasks.mode_stream`` mode, fraction of examples transformed).
#: The paper gives the fractions 0.5 and 1.0 for "continual"; for "composite" it gives
#: none (we use 0.5, the fixed half); "growing" transforms everything admitted so far.
MODES = {
    "continual 1.0": ("continual", 1.0),
    "continual 0.5": ("continual", 0.5),
    "composite 0.5": ("composite", 0.5),
    "growing": ("growing", 1.0),
}


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """One nonstationary classification stream: a family in a §4.2 mode."""

    family: str = "random_labels"
    mode: str = "continual 1.0"

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"StreamSpec.family={self.family!r} is not known; allowed: {list(FAMILIES)}")
        if self.mode not in MODES:
            raise ValueError(f"StreamSpec.mode={self.mode!r} is not known; allowed: {list(MODES)}")

    @property
    def label(self) -> str:
        return f"{FAMILY_LABELS[self.family]} / {self.mode}"


def make_stream(spec: StreamSpec, x, y, num_classes: int) -> tasks.TaskStream:
    """``tasks.mode_stream`` for ``spec`` over the base data ``x`` ``(N, D)``, ``y`` ``(N,)``.

    "continual 1.0" of the families is exactly ``tasks.random_labels`` /
    ``permuted_classes`` / ``permuted_pixels``. The composite subset is the library's
    default (``subset_key = PRNGKey(0)``): the same half of the examples for every seed.
    """
    mode, fraction = MODES[spec.mode]
    return tasks.mode_stream(spec.family, x, y, num_classes, mode, fraction)


@dataclasses.dataclass(frozen=True)
class Member:
    """One member of a group: a name, its stream and float-hyperparameter overrides.

    ``hparams``: ``((field, value), ...)`` over ``train.HYPER_FIELDS`` (a tuple, so the
    member is hashable); they must keep every penalty's zero/non-zero status of the
    group's ``TrainConfig`` (the engine compiles an intervention in or out).
    """

    name: str
    spec: StreamSpec
    hparams: tuple = ()


@dataclasses.dataclass
class GroupResult:
    """Everything :func:`run_group` recorded, numpy, axes ``(member, seed, task[, window])``.

    Attributes:
      members: the :class:`Member` list; seeds ``(S,)``.
      task_end: ``"accuracy"``, ``"loss"`` (over the task's masked examples, after its
        last step) and ``"param_norm"``: ``(C, S, T)``.
      logs: the engine's per-window logs (``"loss"``, ``"accuracy"``, ``"objective"``,
        ``"param_norm"``, ``"redo_resets"`` with ReDo): ``(C, S, T, W)``.
      window_steps: ``(W,)`` steps into the task at the end of each log window.
      diverged: ``(C, S)`` bool.
      wall_s, cpu_s: wall-clock and process CPU seconds of the group (compilation
        included; CPU time counts every thread of the process).
    """

    network_cfg: ModelConfig
    train_cfg: train.TrainConfig
    members: list
    seeds: np.ndarray
    num_tasks: int
    steps_per_task: int
    task_end: dict
    logs: dict
    window_steps: np.ndarray
    diverged: np.ndarray
    wall_s: float
    cpu_s: float

    def index(self, name: str) -> int:
        names = [m.name for m in self.members]
        if name not in names:
            raise KeyError(f"no member {name!r}; members: {names}")
        return names.index(name)

    def get(self, name: str, key: str = "accuracy") -> np.ndarray:
        """``task_end[key]`` of member ``name``: ``(S, T)``."""
        return self.task_end[key][self.index(name)]


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ----------------------------------------------------------------------------------
# Many streams, one program
# ----------------------------------------------------------------------------------


class StreamBank:
    """The base dataset and, per :class:`StreamSpec`, the stream's jitted, seed-vmapped
    ``init`` and ``next`` (built once, shared by every group that uses the spec).

    Args:
      x: ``(N, ...)`` base inputs (flattened for an MLP). y: ``(N,)`` int labels.
      num_classes: number of classes.
    """

    def __init__(self, x, y, num_classes: int):
        self.x = jnp.asarray(x, jnp.float32)
        self.y = np.asarray(y)
        self.num_classes = int(num_classes)
        self._fns: dict = {}

    def stream(self, spec: StreamSpec) -> tasks.TaskStream:
        return make_stream(spec, self.x, self.y, self.num_classes)

    def fns(self, specs: Sequence[StreamSpec]):
        """``(init, next)`` for a tuple of specs, jitted once per tuple (one program for
        all of them): ``init(keys (S, 2)) -> tuple of Task`` and
        ``next(keys, t, prev tuple) -> tuple of Task``, one Task per spec with leading
        seed axis S."""
        specs = tuple(specs)
        if specs not in self._fns:
            streams = [self.stream(sp) for sp in specs]

            def init(keys):
                return tuple(jax.vmap(st.init)(keys) for st in streams)

            def nxt(keys, t, prev):
                return tuple(jax.vmap(st.next, in_axes=(0, None, 0))(keys, t, p) for st, p in zip(streams, prev))

            self._fns[specs] = (jax.jit(init), jax.jit(nxt))
        return self._fns[specs]


def run_group(
    network: Network,
    cfg: train.TrainConfig,
    members: Sequence[Member],
    bank: "StreamBank",
    seeds: Sequence[int],
    *,
    num_tasks: int,
    steps_per_task: int,
    log_every: int,
    progress: bool = True,
    desc: Optional[str] = None,
) -> GroupResult:
    """Train every ``(member, seed)`` on its member's stream, all in one vmapped program.

    Protocol (App. B.2): task 0 is ``stream.init``; each task runs ``steps_per_task``
    optimizer steps on minibatches of the current task (``train.train_steps``; the
    optimizer state carries over task boundaries), then the task-end accuracy and loss
    over the task's masked examples are recorded and the stream draws the next task.

    Args:
      network, cfg: the architecture and the (structural) training configuration shared
        by the group; members override float hyperparameters only.
      members: the :class:`Member` list (model order: member-major, then seed).
      bank: the :class:`StreamBank` of the base dataset.
      seeds: one model per seed per member.
      num_tasks, steps_per_task, log_every: the protocol (``log_every`` divides
        ``steps_per_task``).
      progress: a tqdm bar over tasks.
    Returns:
      :class:`GroupResult`.
    """
    members = list(members)
    if not members:
        raise ValueError("members is empty")
    names = [mb.name for mb in members]
    if len(set(names)) != len(names):
        raise ValueError(f"member names must be unique, got {names}")
    seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
    if seeds.size == 0:
        raise ValueError("seeds is empty")
    if num_tasks < 1 or steps_per_task < 1 or log_every < 1 or steps_per_task % log_every:
        raise ValueError(f"need num_tasks, steps_per_task, log_every >= 1 and log_every | steps_per_task; got "
                         f"{num_tasks}, {steps_per_task}, {log_every}")
    t_wall, t_cpu = time.perf_counter(), cpu_seconds()
    n_mem, n_seed = len(members), len(seeds)
    # Streams: one per distinct spec, all advanced by one compiled function.
    specs = tuple(dict.fromkeys(mb.spec for mb in members))
    init_fn, next_fn = bank.fns(specs)
    where = [specs.index(mb.spec) for mb in members]
    roots = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(int(s)), 1) for s in seeds])  # (S, 2)

    def keys_at(t):
        return jax.vmap(jax.random.fold_in, in_axes=(0, None))(roots, jnp.uint32(t))

    # Hyperparameters per model (member-major, seed-minor).
    hp: dict = {}
    for f in train.HYPER_FIELDS:
        vals = [dict(mb.hparams).get(f, getattr(cfg, f)) for mb in members]
        hp[f] = np.repeat(np.asarray(vals, np.float32), n_seed)
    bad = [k for mb in members for k, _ in mb.hparams if k not in train.HYPER_FIELDS]
    if bad:
        raise ValueError(f"unknown hyperparameter(s) {bad}; allowed: {train.HYPER_FIELDS}")

    model_seeds = np.tile(seeds, n_mem)
    state = train.init_state(network, cfg, model_seeds, bank.x[:2])

    cur = init_fn(keys_at(0))  # one Task per spec, leading axis S
    ls = hp["label_smoothing"]
    task_end = {k: np.full((n_mem, n_seed, num_tasks), np.nan, np.float32) for k in ("accuracy", "loss", "param_norm")}
    logs: dict = {}
    bar = progress_bar(num_tasks, desc=desc or f"{n_mem} members x {n_seed} seeds", unit="task", enabled=progress)
    for t in range(num_tasks):
        if t > 0:
            k = keys_at(t)
            cur = next_fn(k, jnp.int32(t), cur)
        task = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a, 0), *[cur[i] for i in where])
        state, lg = train.train_steps(network, cfg, state, task, steps_per_task, log_every=log_every,
                                      hparams=hp, task_batched=True)
        lg = jax.device_get(lg)
        if not logs:
            w = steps_per_task // log_every
            logs = {k: np.full((n_mem * n_seed, num_tasks, w) + np.shape(v)[2:], np.nan, np.float32) for k, v in lg.items()}
        for k, v in lg.items():
            logs[k][:, t] = v
        ev = train.evaluate(network, state.params, task.x, task.y, mask=task.mask, batch_size=cfg.eval_batch_size,
                            label_smoothing=ls, task_batched=True)
        diverged = np.asarray(state.diverged)
        pn = lg["param_norm"][:, -1]  # after the task's last step
        for k, v in (("accuracy", ev["accuracy"]), ("loss", ev["loss"]), ("param_norm", pn)):
            v = np.where(diverged, np.nan, v)
            task_end[k][:, :, t] = v.reshape(n_mem, n_seed)
        bar.set_postfix(task=t, acc=f"{np.nanmean(ev['accuracy']):.3f}")
        bar.update(1)
    bar.close()
    logs = {k: v.reshape((n_mem, n_seed) + v.shape[1:]) for k, v in logs.items()}
    return GroupResult(
        network_cfg=network.cfg,
        train_cfg=cfg,
        members=members,
        seeds=seeds,
        num_tasks=num_tasks,
        steps_per_task=steps_per_task,
        task_end=task_end,
        logs=logs,
        window_steps=(np.arange(steps_per_task // log_every) + 1) * log_every,
        diverged=np.asarray(state.diverged).reshape(n_mem, n_seed),
        wall_s=time.perf_counter() - t_wall,
        cpu_s=cpu_seconds() - t_cpu,
    )


# ----------------------------------------------------------------------------------
# The interventions of Fig. 4
# ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Intervention:
    """One arm of Fig. 4: a name, its normalisation and its ``TrainConfig`` fields."""

    name: str
    norm: str
    train_kwargs: tuple  # ((field, value), ...)
    description: str

    def model_config(self, arch: str, width: int, depth: int, num_outputs: int) -> ModelConfig:
        """The network: ``arch`` "mlp" (``depth`` hidden layers of ``width``), "cnn"
        (``depth`` conv layers, dense width ``width``) or "resnet18" (``depth`` ignored)."""
        return ModelConfig(arch=arch, width=width, depth=None if arch == "resnet18" else depth, norm=self.norm,
                           num_outputs=num_outputs)

    def train_config(self, learning_rate: float, batch_size: int) -> train.TrainConfig:
        return train.TrainConfig(learning_rate=learning_rate, batch_size=batch_size, **dict(self.train_kwargs))


#: Which interventions each panel of Fig. 4 shows (LN + L2 is the reference in every panel).
PANELS = {
    "parameter/feature norm growth": ("baseline", "L2", "LN", "BN", "weight-norm constraint", "feature-norm penalty", "LN+L2"),
    "preactivation statistics": ("baseline", "LN", "BN", "ReDo", "LN+L2"),
    "loss-landscape conditioning": ("LN", "LN+grad-norm penalty", "LN+InFeR", "LN+L2"),
}


def intervention_table(P: Any) -> dict:
    """The interventions of Fig. 4 with the coefficients of the profile ``P``.

    ``P`` needs ``l2``, ``feature_norm_coef``, ``redo_every``, ``redo_tau``,
    ``grad_norm_coef``, ``infer_coef``, ``infer_scale``. Shampoo is not here: optax
    0.2.8 has none (``train.TrainConfig(optimizer="shampoo")`` raises in training).
    """
    return {
        "baseline": Intervention("baseline", "none", (), "no intervention"),
        "L2": Intervention("L2", "none", (("l2", P.l2),), f"L2 penalty {P.l2:g} on every parameter"),
        "LN": Intervention("LN", "layer", (), "layer norm before each ReLU"),
        "BN": Intervention("BN", "batch", (), "batch norm (batch statistics) before each ReLU"),
        "LN+L2": Intervention("LN+L2", "layer", (("l2", P.l2),), f"layer norm + L2 {P.l2:g}"),
        "weight-norm constraint": Intervention(
            "weight-norm constraint", "none", (("weight_norm_constraint", True),),
            "every weight matrix rescaled to its initial Frobenius norm after each step"),
        "feature-norm penalty": Intervention(
            "feature-norm penalty", "none", (("feature_norm_penalty", P.feature_norm_coef),),
            f"penalty {P.feature_norm_coef:g} x mean squared norm of the penultimate features"),
        "ReDo": Intervention(
            "ReDo", "none", (("redo_every", P.redo_every), ("redo_tau", P.redo_tau)),
            f"ReDo every {P.redo_every} steps, threshold {P.redo_tau:g}"),
        "LN+grad-norm penalty": Intervention(
            "LN+grad-norm penalty", "layer", (("grad_norm_penalty", P.grad_norm_coef),),
            f"layer norm + penalty {P.grad_norm_coef:g} x squared gradient norm"),
        "LN+InFeR": Intervention(
            "LN+InFeR", "layer", (("infer_coef", P.infer_coef), ("infer_scale", P.infer_scale)),
            f"layer norm + InFeR (10 heads, coefficient {P.infer_coef:g}, scale {P.infer_scale:g})"),
    }


# ----------------------------------------------------------------------------------
# Tidy frames for seaborn
# ----------------------------------------------------------------------------------


def tidy_end_of_task(results: dict) -> "Any":
    """Long DataFrame of task-end metrics from ``{group name: GroupResult}``.

    Columns: ``intervention`` (the group name), ``member``, ``family``, ``mode``,
    ``seed``, ``task`` (1-based), ``accuracy`` (%), ``loss``, ``param_norm``.
    """
    import pandas as pd

    rows = []
    for gname, r in results.items():
        c, s, t = r.task_end["accuracy"].shape
        for ci, mb in enumerate(r.members):
            for si in range(s):
                rows.append(pd.DataFrame({
                    "intervention": gname, "member": mb.name, "family": FAMILY_LABELS[mb.spec.family],
                    "mode": mb.spec.mode, "seed": int(r.seeds[si]), "task": np.arange(1, t + 1),
                    "accuracy": 100.0 * r.task_end["accuracy"][ci, si], "loss": r.task_end["loss"][ci, si],
                    "param_norm": r.task_end["param_norm"][ci, si],
                }))
    return pd.concat(rows, ignore_index=True)


def tidy_curves(result: GroupResult, member: str, tasks_to_show: Sequence[int], key: str = "loss") -> "Any":
    """Long DataFrame of one member's per-window learning curves on some tasks (0-based).

    Columns: ``seed``, ``task`` (1-based), ``step`` (steps into the task), ``key``.
    """
    import pandas as pd

    ci = result.index(member)
    arr = result.logs[key][ci]  # (S, T, W)
    rows = []
    for t in tasks_to_show:
        for si in range(arr.shape[0]):
            rows.append(pd.DataFrame({"seed": int(result.seeds[si]), "task": int(t) + 1,
                                      "step": result.window_steps, key: arr[si, t]}))
    return pd.concat(rows, ignore_index=True)


# ----------------------------------------------------------------------------------
# Claim statistics (issue 10)
# ----------------------------------------------------------------------------------


def first_last(acc: np.ndarray, k: int = 3) -> tuple:
    """Per-seed mean end-of-task accuracy over the first ``k`` and the last ``k`` tasks.

    ``acc`` ``(S, T)`` -> ``(first (S,), last (S,))``; needs ``T >= k``.
    """
    acc = np.asarray(acc, np.float64)
    if acc.ndim != 2 or acc.shape[1] < k:
        raise ValueError(f"acc must be (seeds, tasks >= {k}), got {acc.shape}")
    return acc[:, :k].mean(1), acc[:, -k:].mean(1)


def slopes(acc: np.ndarray) -> np.ndarray:
    """Least-squares slope of end-of-task accuracy against the task index, per seed.

    ``acc`` ``(S, T)`` -> ``(S,)`` (accuracy units per task).
    """
    acc = np.asarray(acc, np.float64)
    if acc.ndim != 2 or acc.shape[1] < 2:
        raise ValueError(f"acc must be (seeds, tasks >= 2), got {acc.shape}")
    t = np.arange(acc.shape[1], dtype=np.float64)
    tc = t - t.mean()
    return ((acc - acc.mean(1, keepdims=True)) * tc).sum(1) / (tc ** 2).sum()


def interval_gap(a, b) -> float:
    """Lower end of interval ``a`` minus the upper end of interval ``b`` (two ``Estimate``).

    Positive exactly when ``a``'s interval lies entirely above ``b``'s. Without
    intervals (one seed) the point values are used.
    """
    lo = a.value if a.low is None else a.low
    hi = b.value if b.high is None else b.high
    return float(lo - hi)
