"""Chapter 3, "Death of a ReLU": the first steps after a task change.

Paper: Lyle et al. (2024), §3.2 "Linearization and preactivation distribution shift",
Fig. 2 (left: loss, predictive entropy and dead units around a label reshuffle;
middle: the preactivation distribution and the fraction of first-layer units whose
gradient has the same-sign dot product with *every* input; right: linearized units for
several activations) and App. E.3 "Death of a ReLU neuron" with Fig. 18 (logit norm,
feature norm, predictive entropy and dead units of a one-hidden-layer MLP, with the Adam
state carried over or reset at the switch).

Protocol (``run_switch``)
-------------------------
For every seed ``s`` (``k = PRNGKey(s)``, the engine's key scheme: ``fold_in(k, 0)``
initialises the network, ``root = fold_in(k, 1)`` roots the labels, ``fold_in(k, 2)``
draws the minibatches):

1. **Task A**: uniform random labels for the ``N`` training images
   (``tasks.random_labels(x).init(fold_in(root, 0))``); ``pretrain_steps`` Adam steps
   from the initialisation. The last ``edge_steps`` steps are logged at every step.
2. **Switch**: task B = fresh random labels of the same images
   (``next(fold_in(root, 1), 1, task_A)``), training continues from the converged
   parameters, in two *variants* trained side by side in one vmap: ``"keep"`` (the Adam
   moments and step count of task A carried over: the paper's §3.2 protocol and
   Fig. 18 top) and ``"reset"`` (``train.reset_optimizer``: Fig. 18 bottom). Both
   variants of one seed share parameters, labels and minibatches (common random numbers).
3. **Task B**, ``task_steps`` steps, logged at every step during the *erasing window*
   (the first ``ceil(erase_fraction * task_steps)`` steps) and the last ``edge_steps``
   steps, and every ``mid_log_every`` steps in between.

Every log evaluates ``metrics_fn`` (``make_metrics_fn``) on a fixed **probe batch**: the
first ``probe_size`` training images of a seeded permutation (``probe_indices``), with
the labels of the task being trained at that step (task A before the switch, task B
after). The engine's own ``loss`` log (mean minibatch loss over the log window) is kept
as ``train_loss``.

Metrics (per log; ``L`` hidden layers, ``Q`` quantile levels)
--------------------------------------------------------------
``probe_loss``, ``probe_accuracy``; ``entropy`` (mean predictive entropy, nats),
``logit_norm`` (``E_x ||f(x)||``), ``feature_norm`` (``E_x ||phi(x)||`` of the last
hidden layer), ``head_norm`` (Frobenius norm of the final-layer kernel), ``head_bias_norm``;
``dead`` / ``dead_layers`` (``(L,)``; activation exactly 0 on every probe input),
``linearized`` / ``linearized_layers`` (``diagnostics.units.linearized_units``: ReLU all
preactivations > 0; leaky ReLU one strict sign; GELU the smooth slope-spread criterion,
threshold 0.1, saturated units excluded), ``saturated`` (``units.saturated_units``: slope
at most 10 % of its maximum on every input; ReLU: dead), ``all_negative`` /
``all_positive`` (every preactivation ``< 0`` / ``> 0``; all hidden units pooled), ``preact_quantiles`` ``(L, Q)`` (pooled over
units and the first ``QUANTILE_INPUTS`` probe inputs), ``preact_frac_positive`` ``(L,)``; and, with
``grad_metrics=True``, the same-direction fractions below.

Same-direction gradients (Fig. 2 middle, E.3 item 3)
-----------------------------------------------------
``g = grad_theta mean_{(x,y) in probe} CE(f_theta(x), y)``: the gradient of the mean
softmax cross-entropy over the probe batch with the *current* labels at the logged
parameters. For each dense hidden layer ``l`` with kernel ``W_l`` ``(d_in, d_out)`` and
incoming features ``a_l(x)`` (the inputs for the first layer), the descent direction
``-g_{W_l}`` changes unit ``i``'s preactivation on input ``x`` by
``dz_i(x) = -<g_{W_l}[:, i], a_l(x)>`` (bias excluded: the paper's "dot product with
all incoming features"). ``same_lower_layers[l]`` is the fraction of units with
``dz_i(x) < 0`` for *every* probe input ``x``, ``same_raise_layers[l]`` with
``dz_i(x) > 0`` for every ``x``, ``same_dir_layers = lower + raise``;
``same_dir_bias_layers`` repeats the count with the bias update included. The claim uses
layer 0 (the first layer: ``same_dir_first``). We use the raw gradient, not Adam's
update: ``metrics_fn`` sees the parameters only; Adam rescales each coordinate by a
positive factor, so signs per coordinate agree but the dot products need not.

Windows used by the claims (``switch_windows``; steps counted from the switch, the log
after step ``s`` of task B has step ``s``, the last ``edge_steps`` logs of task A have
steps ``-edge_steps + 1 .. 0``)
-------------------------------------------------------------------------------------
* **pre-switch value**: mean over the last ``edge_steps`` steps of task A (per-step logs);
* **erasing window**: steps ``1 .. ceil(erase_fraction * task_steps)``;
* **first 50**: steps ``1 .. 50``; **end of the task** / **last 50**: the mean over
  the last ``edge_steps`` steps of task B (``edge_steps = 50`` at every profile);
* **erasing phase** (``ch3.features_shrink``): steps ``1 .. t*`` with ``t*`` the
  logged step at which the predictive entropy of task B peaks (the paper's definition:
  the phase in which entropy rises).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import data as data_lib
from .. import tasks as tasks_lib
from .. import train
from ..diagnostics import representation as rep
from ..diagnostics import units
from ..models import ModelConfig, Network, make_network

__all__ = [
    "EDGE_STEPS",
    "ERASE_FRACTION",
    "QUANTILES",
    "QUANTILE_INPUTS",
    "RunSpec",
    "protocol_from_params",
    "plan_runs",
    "VARIANTS",
    "SwitchProtocol",
    "SwitchRun",
    "load_inputs",
    "probe_indices",
    "label_tasks",
    "TASK_AXES",
    "make_metrics_fn",
    "run_switch",
    "switch_windows",
    "window_mean",
    "window_max",
    "switch_statistics",
    "linearized_statistics",
    "claim_statistics",
    "linearized_margin",
    "same_direction_frame",
    "summary_frame",
    "t_band",
    "curve_frame",
    "quantile_frame",
]

#: Quantile levels of the pooled preactivation distribution (Fig. 2 middle).
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Probe images whose preactivations are pooled for ``preact_quantiles`` (the first ones).
QUANTILE_INPUTS = 64
#: Steps logged at every step at the end of each task (pre-switch value, "last 50 steps").
EDGE_STEPS = 50
#: The erasing window is the first ``ERASE_FRACTION`` of task B ("first 10 % of the new task").
ERASE_FRACTION = 0.1
#: Optimizer-state variants at the switch: carried over (paper §3.2, Fig. 18 top) or reset.
VARIANTS = ("keep", "reset")


# ----------------------------------------------------------------------------- protocol


@dataclasses.dataclass(frozen=True)
class SwitchProtocol:
    """Steps and logging of one task switch.

    Attributes:
      pretrain_steps: Adam steps on task A (to convergence).
      task_steps: Adam steps on task B after the switch.
      erase_fraction: the erasing window is the first ``ceil(erase_fraction *
        task_steps)`` steps of task B, logged at every step.
      edge_steps: steps logged at every step at the end of task A (pre-switch value)
        and at the end of task B (end of the task).
      mid_log_every: log period between the erasing window and the last
        ``edge_steps`` steps; must divide that stretch.
      probe_size: images of the probe batch.
    """

    pretrain_steps: int
    task_steps: int
    erase_fraction: float = ERASE_FRACTION
    edge_steps: int = EDGE_STEPS
    mid_log_every: int = 10
    probe_size: int = 512

    @property
    def erase_steps(self) -> int:
        return int(math.ceil(self.erase_fraction * self.task_steps))

    @property
    def mid_steps(self) -> int:
        return self.task_steps - self.erase_steps - self.edge_steps

    def validate(self) -> None:
        if self.pretrain_steps <= self.edge_steps:
            raise ValueError(f"pretrain_steps={self.pretrain_steps} must exceed edge_steps={self.edge_steps}")
        if not 0 < self.erase_fraction < 1:
            raise ValueError(f"erase_fraction={self.erase_fraction} must be in (0, 1)")
        if self.mid_steps < 0:
            raise ValueError(
                f"task_steps={self.task_steps} is shorter than the erasing window ({self.erase_steps}) plus "
                f"edge_steps={self.edge_steps}"
            )
        if self.mid_steps and self.mid_steps % self.mid_log_every:
            raise ValueError(
                f"mid_log_every={self.mid_log_every} must divide the {self.mid_steps} steps between the erasing "
                "window and the last edge_steps steps"
            )


@dataclasses.dataclass
class SwitchRun:
    """Logs of one network around the switch (numpy).

    Attributes:
      name: label, e.g. ``"1 layer, relu"``.
      model_config, train_config, protocol.
      variants: ``VARIANTS`` (or a subset); seeds ``(S,)``.
      steps: ``(W,)`` step of each log counted from the switch (``<= 0``: task A).
      logs: ``name -> (V, S, W, ...)``.
      acc_a: ``(S,)`` accuracy on all of task A at the switch.
      acc_b: ``(V, S)`` accuracy on all of task B at its end.
      wall_s: wall time of the run, compilation included.
    """

    name: str
    model_config: ModelConfig
    train_config: train.TrainConfig
    protocol: SwitchProtocol
    variants: tuple
    seeds: np.ndarray
    steps: np.ndarray
    logs: dict
    acc_a: np.ndarray
    acc_b: np.ndarray
    wall_s: float

    def variant(self, v: str) -> dict:
        """``name -> (S, W, ...)`` logs of one variant."""
        i = self.variants.index(v)
        return {k: a[i] for k, a in self.logs.items()}


# ------------------------------------------------------------------------------- plan


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One network of the chapter: ``key`` (``"shallow"``, ``"deep"``, ``"panel_<act>"``),
    a label, its ``ModelConfig``, learning rate, dataset, variants and whether the
    same-direction gradients are computed."""

    key: str
    label: str
    model_config: ModelConfig
    learning_rate: float
    dataset: str
    variants: tuple
    grad_metrics: bool


def protocol_from_params(P) -> SwitchProtocol:
    """The ``SwitchProtocol`` of a resolved profile (``profiles.resolve``)."""
    ps = SwitchProtocol(pretrain_steps=int(P.pretrain_steps), task_steps=int(P.task_steps),
                        mid_log_every=int(P.mid_log_every), probe_size=int(P.probe_size))
    ps.validate()
    return ps


def plan_runs(P, num_classes: int = 10, panel_num_classes: int = 10) -> list:
    """The networks of the chapter at profile ``P``, in run order.

    * ``shallow``: one hidden layer of ``shallow_width`` ReLU units (Fig. 18), both variants,
      same-direction gradients;
    * ``deep``: ``deep_depth`` x ``deep_width`` ReLU MLP, both variants, same-direction gradients;
    * ``panel_<act>`` for every activation of ``panel_activations`` (Fig. 2 right), Adam
      state kept: deep MLPs (``panel_arch="mlp"``; ReLU is the ``deep`` run itself, so no
      ``panel_relu`` entry) or the B.1 CNN (``panel_arch="cnn"``).
    """
    runs = [
        RunSpec("shallow", f"1 x {P.shallow_width} MLP, relu",
                ModelConfig(arch="mlp", depth=1, width=P.shallow_width, activation="relu", num_outputs=num_classes),
                P.learning_rate, P.dataset, VARIANTS, True),
        RunSpec("deep", f"{P.deep_depth} x {P.deep_width} MLP, relu",
                ModelConfig(arch="mlp", depth=P.deep_depth, width=P.deep_width, activation="relu",
                            num_outputs=num_classes),
                P.learning_rate, P.dataset, VARIANTS, True),
    ]
    for act in P.panel_activations:
        if P.panel_arch == "mlp" and act == "relu":
            continue
        if P.panel_arch == "mlp":
            cfg = ModelConfig(arch="mlp", depth=P.deep_depth, width=P.deep_width, activation=act,
                              num_outputs=panel_num_classes)
            label = f"{P.deep_depth} x {P.deep_width} MLP, {act}"
        else:
            cfg = ModelConfig(arch="cnn", activation=act, num_outputs=panel_num_classes)
            label = f"CNN (B.1), {act}"
        runs.append(RunSpec(f"panel_{act}", label, cfg, P.panel_learning_rate, P.panel_dataset, ("keep",), False))
    return runs


# --------------------------------------------------------------------------------- data


def load_inputs(dataset: str, n_train: int, *, center: bool, flatten: bool = True, allow_fallback: bool = False,
                seed: int = 0):
    """Inputs of the chapter: ``(x float32 (N, ...), source str)``.

    ``center=False`` adds the per-pixel training mean back (``Dataset.pixel_mean``), so
    pixels are in [0, 1] (non-negative, as in the paper's §3.2 MNIST MLP); ``True`` keeps
    the library's centred inputs. Labels are not returned: every task draws its own.
    (Kept rather than ``load_dataset(center=False)``: that differs by float rounding,
    which the chapter's chaotic training turns into different numbers.)
    """
    ds = data_lib.load_dataset(dataset, n=n_train, seed=seed, flatten=flatten, allow_fallback=allow_fallback)
    x = np.asarray(ds.x, np.float32)
    if not center:
        x = x + np.asarray(ds.pixel_mean, np.float32)
    return x, ds.source, ds.num_classes


def probe_indices(n: int, probe_size: int, seed: int = 0) -> np.ndarray:
    """The probe batch: the first ``min(probe_size, n)`` entries of a seeded permutation."""
    return np.sort(np.random.default_rng(seed).permutation(n)[: min(int(probe_size), int(n))]).astype(np.int32)


#: ``train_steps(task_batched=...)`` / ``train.evaluate`` axes of :func:`label_tasks`'s
#: tasks: inputs and mask shared by all models, labels per model.
TASK_AXES = (None, 0, None)


def label_tasks(x, num_classes: int, seeds: Sequence[int]):
    """Tasks A and B of every seed: two ``tasks.Task`` whose labels ``y`` are ``(S, N)``
    (one labelling per seed) and whose inputs ``x`` ``(N, ...)`` and mask ``(N,)`` are
    shared (no seed axis; :data:`TASK_AXES`).

    Keys follow the engine (``train`` module doc): ``root = fold_in(PRNGKey(seed), 1)``,
    task ``t`` uses ``fold_in(root, t)``; task B = ``stream.next(fold_in(root, 1), 1, A)``.
    """
    stream = tasks_lib.random_labels(x, num_classes)
    roots = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(int(s)), 1) for s in seeds])

    def both(root):
        a = stream.init(jax.random.fold_in(root, 0))
        b = stream.next(jax.random.fold_in(root, 1), jnp.int32(1), a)
        return a, b

    axes = tasks_lib.Task(*TASK_AXES)
    return jax.jit(jax.vmap(both, out_axes=(axes, axes)))(roots)


# ------------------------------------------------------------------------------ metrics


def _xent(logits, y):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, y[:, None], axis=-1)[:, 0]


def make_metrics_fn(network: Network, probe_idx, *, grad_metrics: bool = True,
                    quantiles: Sequence[float] = QUANTILES, quantile_inputs: int = QUANTILE_INPUTS) -> Callable:
    """``metrics_fn(params, task, key) -> dict`` for the engine (see the module docstring).

    Args:
      network: a linear-head classification network (MLP or CNN).
      probe_idx: ``(P,)`` int indices of the probe images in ``task.x``.
      grad_metrics: also compute the same-direction fractions (one backward pass over
        the probe batch per log; dense hidden layers only).
      quantiles: levels of ``preact_quantiles``.
      quantile_inputs: the quantiles pool the preactivations of the first
        ``quantile_inputs`` probe images (all units): sorting the whole probe batch at
        every step would cost more than everything else in the metrics.
    """
    idx = jnp.asarray(np.asarray(probe_idx, np.int32))
    activation = network.cfg.activation
    qs = tuple(float(q) for q in quantiles)
    n_quantile = int(min(quantile_inputs, idx.shape[0]))
    hidden_dense = [k for k, n in enumerate(network.dense_names) if n != "Head"]
    dense_names = network.dense_names

    def loss_fn(params, x, y):
        logits, inter = network.apply_with_intermediates(params, x)
        return jnp.mean(_xent(logits, y)), (logits, inter)

    def metrics_fn(params, task, key):
        del key
        x = task.x[idx]
        y = task.y[idx]
        if grad_metrics:
            (loss, (logits, inter)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y)
        else:
            loss, (logits, inter) = loss_fn(params, x, y)
        dead_l, dead = units.dead_unit_fraction(inter.acts)
        lin_l, lin = units.linearized_unit_fraction(inter.preacts, activation)
        sat_l, sat = units.saturated_unit_fraction(inter.preacts, activation)
        neg_l, neg = units.layer_fractions([jnp.all(z < 0, axis=0) for z in inter.preacts])
        pos_l, pos = units.layer_fractions([jnp.all(z > 0, axis=0) for z in inter.preacts])
        pre = units.preactivation_stats_per_layer(inter.preacts, quantiles=qs, quantile_inputs=n_quantile)
        out = {
            "probe_loss": loss,
            "probe_accuracy": jnp.mean((jnp.argmax(logits, -1) == y).astype(jnp.float32)),
            "entropy": rep.predictive_entropy(logits),
            "logit_norm": rep.logit_norm(logits),
            "feature_norm": rep.feature_norm(inter.features),
            "head_norm": jnp.sqrt(jnp.sum(jnp.square(params["Head"]["kernel"]))),
            "head_bias_norm": jnp.sqrt(jnp.sum(jnp.square(params["Head"]["bias"])))
            if "bias" in params["Head"] else jnp.float32(0.0),
            "dead": dead,
            "dead_layers": dead_l,
            "linearized": lin,
            "linearized_layers": lin_l,
            "saturated": sat,
            "all_negative": neg,
            "all_positive": pos,
            "preact_quantiles": pre["quantiles"],
            "preact_frac_positive": pre["frac_positive"],
        }
        if grad_metrics and hidden_dense:
            lower, raise_, lower_b, raise_b = [], [], [], []
            for k in hidden_dense:
                g = grads[dense_names[k]]
                a = inter.dense_inputs[k].reshape(x.shape[0], -1)
                dz = units.preactivation_update(-g["kernel"], a)  # (P, units): one matmul
                lower.append(jnp.mean(jnp.all(dz < 0, axis=0).astype(jnp.float32)))
                raise_.append(jnp.mean(jnp.all(dz > 0, axis=0).astype(jnp.float32)))
                dzb = dz - g["bias"] if "bias" in g else dz
                lower_b.append(jnp.mean(jnp.all(dzb < 0, axis=0).astype(jnp.float32)))
                raise_b.append(jnp.mean(jnp.all(dzb > 0, axis=0).astype(jnp.float32)))
            out["same_lower_layers"] = jnp.stack(lower)
            out["same_raise_layers"] = jnp.stack(raise_)
            out["same_dir_layers"] = out["same_lower_layers"] + out["same_raise_layers"]
            out["same_dir_bias_layers"] = jnp.stack(lower_b) + jnp.stack(raise_b)
            out["same_dir_first"] = out["same_dir_layers"][0]
        return out

    return metrics_fn


# ---------------------------------------------------------------------------------- run


def _tile_labels(task, reps: int):
    """``task`` with its per-model labels repeated ``reps`` times along the model axis."""
    return task._replace(y=jnp.concatenate([jnp.asarray(task.y)] * reps, axis=0))


def _concat_logs(parts: Sequence[dict]) -> dict:
    keys = parts[0].keys()
    return {k: np.concatenate([np.asarray(p[k]) for p in parts], axis=1) for k in keys}


def run_switch(
    model_cfg: ModelConfig,
    train_cfg: train.TrainConfig,
    x,
    num_classes: int,
    seeds: Sequence[int],
    protocol: SwitchProtocol,
    *,
    variants: Sequence[str] = VARIANTS,
    grad_metrics: bool = True,
    name: str = "",
    probe_seed: int = 0,
    progress: Optional[Callable[[str], None]] = print,
) -> SwitchRun:
    """Train on task A, switch labels, train on task B; log around the switch (module doc).

    Args:
      model_cfg, train_cfg: the network and Adam settings (``train_cfg`` must not reset
        the optimizer by itself: the reset is the ``"reset"`` variant).
      x: ``(N, ...)`` inputs; num_classes: label range.
      seeds: one model per seed (vmapped), per variant.
      protocol: ``SwitchProtocol``.
      variants: subset of ``VARIANTS``.
      grad_metrics: compute the same-direction fractions.
      progress: called with a line of text after every phase (None: silent).
    Returns:
      ``SwitchRun``.
    """
    protocol.validate()
    variants = tuple(variants)
    if not variants or any(v not in VARIANTS for v in variants):
        raise ValueError(f"variants={variants!r}; choose from {VARIANTS}")
    if train_cfg.reset_optimizer_each_task:
        raise ValueError("train_cfg.reset_optimizer_each_task must be False (the reset is a variant here)")
    seeds = np.asarray(list(seeds), np.int64)
    t0 = time.perf_counter()
    c0 = _cpu_s()
    say = progress or (lambda s: None)
    network = make_network(model_cfg)
    x = jnp.asarray(x, jnp.float32)
    n_seed = len(seeds)
    task_a, task_b = label_tasks(x, num_classes, seeds)
    probe = probe_indices(x.shape[0], protocol.probe_size, probe_seed)
    metrics_fn = make_metrics_fn(network, probe, grad_metrics=grad_metrics)
    ps = protocol

    def steps(state, task, n, log_every, with_metrics=True):
        st, lg = train.train_steps(network, train_cfg, state, task, n, log_every=log_every,
                                   metrics_fn=metrics_fn if with_metrics else None, task_batched=TASK_AXES)
        return st, jax.device_get(lg)

    # Task A.
    state = train.init_state(network, train_cfg, seeds, x[:2])
    n_quiet = ps.pretrain_steps - ps.edge_steps
    state, lg_a = steps(state, task_a, n_quiet, n_quiet, with_metrics=False)
    state, pre = steps(state, task_a, ps.edge_steps, 1)
    acc_a = _accuracy(network, state.params, task_a, train_cfg.eval_batch_size)
    say(f"[{name}] task A: {ps.pretrain_steps} steps, accuracy on task A {100 * acc_a.mean():.1f} % "
        f"(wall {time.perf_counter() - t0:.0f} s, CPU {_cpu_s() - c0:.0f} s)")

    # Switch: variants side by side on the model axis (variant-major).
    states = []
    for v in variants:
        states.append(state if v == "keep" else train.reset_optimizer(network, train_cfg, state))
    state_b = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a, axis=0), *states)
    tb = _tile_labels(task_b, len(variants))
    parts = []
    # The erasing window runs in chunks of edge_steps when it can, reusing the compiled
    # per-step program of the last edge_steps steps (one compilation less).
    chunk = ps.edge_steps if ps.erase_steps % ps.edge_steps == 0 else ps.erase_steps
    for _ in range(ps.erase_steps // chunk):
        state_b, lg = steps(state_b, tb, chunk, 1)
        parts.append(lg)
    if ps.mid_steps:
        state_b, lg = steps(state_b, tb, ps.mid_steps, ps.mid_log_every)
        parts.append(lg)
    state_b, lg = steps(state_b, tb, ps.edge_steps, 1)
    parts.append(lg)
    post = _concat_logs(parts)
    acc_b = _accuracy(network, state_b.params, tb, train_cfg.eval_batch_size).reshape(len(variants), n_seed)
    say(f"[{name}] task B: {ps.task_steps} steps, accuracy on task B "
        + ", ".join(f"{v} {100 * acc_b[i].mean():.1f} %" for i, v in enumerate(variants))
        + f" (wall {time.perf_counter() - t0:.0f} s, CPU {_cpu_s() - c0:.0f} s)")

    # Assemble (V, S, W, ...): the pre-switch logs are shared by the variants.
    logs = {}
    for k in post:
        if k not in pre:
            continue
        a = np.asarray(pre[k])
        a = np.broadcast_to(a[None], (len(variants),) + a.shape)
        b = np.asarray(post[k]).reshape((len(variants), n_seed) + np.shape(post[k])[1:])
        logs["train_loss" if k == "loss" else k] = np.concatenate([a, b], axis=2)
    mid = (ps.erase_steps + ps.mid_log_every * (np.arange(ps.mid_steps // ps.mid_log_every) + 1)
           if ps.mid_steps else np.zeros((0,), np.int64))
    step_axis = np.concatenate([
        np.arange(-ps.edge_steps + 1, 1),
        np.arange(1, ps.erase_steps + 1),
        mid,
        np.arange(ps.task_steps - ps.edge_steps + 1, ps.task_steps + 1),
    ]).astype(np.int64)
    assert step_axis.shape[0] == next(iter(logs.values())).shape[2]
    return SwitchRun(name, model_cfg, train_cfg, ps, variants, seeds, step_axis, logs, acc_a, acc_b,
                     time.perf_counter() - t0)


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process so far."""
    t = os.times()
    return t.user + t.system


def _accuracy(network: Network, params, task, batch_size: int) -> np.ndarray:
    """Accuracy of every model (leading axis) on all of its own labels (``task.y`` ``(M, N)``)."""
    return train.evaluate(network, params, task.x, task.y, mask=task.mask, batch_size=batch_size,
                          task_batched=TASK_AXES)["accuracy"]


# ---------------------------------------------------------------------------- windows


def switch_windows(steps: np.ndarray, protocol: SwitchProtocol) -> dict:
    """Boolean masks over ``steps`` (see the module docstring): ``pre``, ``post``,
    ``erase``, ``first50``, ``end``."""
    s = np.asarray(steps)
    t = protocol.task_steps
    return {
        "pre": s <= 0,
        "post": s >= 1,
        "erase": (s >= 1) & (s <= protocol.erase_steps),
        "first50": (s >= 1) & (s <= 50),
        "end": s > t - protocol.edge_steps,
    }


def window_mean(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the log axis (axis -1 of ``(..., W)``) restricted to ``mask``."""
    return np.asarray(a)[..., mask].mean(-1)


def window_max(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Max over the log axis restricted to ``mask``."""
    return np.asarray(a)[..., mask].max(-1)


def switch_statistics(run: SwitchRun, variant: str = "keep") -> dict:
    """Per-seed statistics of one variant used by the claims; each value is ``(S,)``.

    Keys: ``entropy_pre``, ``entropy_peak`` (max over task B), ``entropy_end``,
    ``entropy_peak_step``; ``dead_pre``, ``dead_max`` (max over the erasing window),
    ``dead_end``, ``dead_spike`` (= max - pre); ``same_first50``, ``same_last50``
    (first-layer same-direction fraction); ``feat_fall``, ``head_fall`` (largest
    relative fall ``1 - min x / x_pre`` over steps ``1..t*``, ``t*`` the entropy peak);
    ``linearized_pre``, ``linearized_max`` (erasing window), ``linearized_end``.
    """
    lg = run.variant(variant)
    w = switch_windows(run.steps, run.protocol)
    post_idx = np.flatnonzero(w["post"])
    out = {}
    h = lg["entropy"]
    out["entropy_pre"] = window_mean(h, w["pre"])
    out["entropy_peak"] = window_max(h, w["post"])
    out["entropy_end"] = window_mean(h, w["end"])
    peak_pos = post_idx[np.argmax(h[:, post_idx], axis=1)]
    out["entropy_peak_step"] = run.steps[peak_pos].astype(np.float64)
    d = lg["dead"]
    out["dead_pre"] = window_mean(d, w["pre"])
    out["dead_max"] = window_max(d, w["erase"])
    out["dead_end"] = window_mean(d, w["end"])
    out["dead_spike"] = out["dead_max"] - out["dead_pre"]
    if "same_dir_first" in lg:
        out["same_first50"] = window_mean(lg["same_dir_first"], w["first50"])
        out["same_last50"] = window_mean(lg["same_dir_first"], w["end"])
    for key, name in (("feature_norm", "feat_fall"), ("head_norm", "head_fall")):
        a = lg[key]
        pre = window_mean(a, w["pre"])
        falls = []
        for i in range(a.shape[0]):
            phase = (run.steps >= 1) & (run.steps <= out["entropy_peak_step"][i])
            falls.append(1.0 - a[i, phase].min() / pre[i])
        out[name] = np.asarray(falls)
    lin = lg["linearized"]
    out["linearized_pre"] = window_mean(lin, w["pre"])
    out["linearized_max"] = window_max(lin, w["erase"])
    out["linearized_end"] = window_mean(lin, w["end"])
    for key in ("all_negative", "all_positive", "saturated"):
        if key in lg:
            out[f"{key}_pre"] = window_mean(lg[key], w["pre"])
            out[f"{key}_max"] = window_max(lg[key], w["erase"])
            out[f"{key}_end"] = window_mean(lg[key], w["end"])
    return out


def linearized_statistics(run: SwitchRun, variant: str = "keep") -> dict:
    """``linearized_pre``, ``linearized_max``, ``linearized_end`` (``(S,)`` each)."""
    s = switch_statistics(run, variant)
    return {k: s[k] for k in ("linearized_pre", "linearized_max", "linearized_end")}


def claim_statistics(run: SwitchRun) -> dict:
    """Per-seed values ``(S,)`` of the chapter's claim statistics for one ReLU network.

    Every "at least k x" condition is written as a difference so that a zero baseline
    needs no division (``a >= k b  <=>  a - k b >= 0``):

    * ``entropy_rise`` = peak - pre (>= 0.5 nats), ``entropy_fall`` = peak - end (>= 0.25);
    * ``dead_ratio_margin`` = max - 1.5 pre (>= 0), ``dead_above`` = max - pre (>= 0.05),
      ``dead_recovers`` = max - end (> 0);
    * ``adam_reset_margin`` = spike(reset) - 0.75 spike(keep) (<= 0; needs both variants);
    * ``same_dir_margin`` = first-50 - 2 last-50 same-direction fraction, first layer (> 0);
    * ``feature_minus_head_fall`` = relative fall of the feature norm minus that of the
      final-layer weight norm over the erasing phase (> 0), ``feature_fall`` (> 0).
    """
    k = switch_statistics(run, "keep")
    out = {
        "entropy_rise": k["entropy_peak"] - k["entropy_pre"],
        "entropy_fall": k["entropy_peak"] - k["entropy_end"],
        "dead_ratio_margin": k["dead_max"] - 1.5 * k["dead_pre"],
        "dead_above": k["dead_max"] - k["dead_pre"],
        "dead_recovers": k["dead_max"] - k["dead_end"],
        "feature_minus_head_fall": k["feat_fall"] - k["head_fall"],
        "feature_fall": k["feat_fall"],
    }
    if "same_first50" in k:
        out["same_dir_margin"] = k["same_first50"] - 2.0 * k["same_last50"]
    if "reset" in run.variants:
        r = switch_statistics(run, "reset")
        out["adam_reset_margin"] = r["dead_spike"] - 0.75 * k["dead_spike"]
    return out


def linearized_margin(run: SwitchRun) -> np.ndarray:
    """Per-seed ``max_erase L - 1.5 L_pre`` of the linearized fraction (``ch3.linearized_spike``, > 0)."""
    s = linearized_statistics(run, "keep")
    return s["linearized_max"] - 1.5 * s["linearized_pre"]


def same_direction_frame(runs: dict, variant: str = "keep"):
    """Seed means of the same-direction fractions per network and dense hidden layer:
    lowering / raising / either (bias excluded) and either with the bias update included,
    over steps 1-50 after the switch and over the last 50 steps of task B."""
    import pandas as pd

    rows = []
    for run in runs.values():
        lg = run.variant(variant)
        if "same_lower_layers" not in lg:
            continue
        w = switch_windows(run.steps, run.protocol)
        for layer in range(lg["same_lower_layers"].shape[-1]):
            row = {"network": run.name, "layer": layer}
            for key, label in (("same_lower_layers", "lowers"), ("same_raise_layers", "raises"),
                               ("same_dir_layers", "either"), ("same_dir_bias_layers", "either, with bias")):
                a = lg[key][..., layer]
                row[f"{label}: steps 1-50"] = float(window_mean(a, w["first50"]).mean())
                row[f"{label}: last 50"] = float(window_mean(a, w["end"]).mean())
            rows.append(row)
    return pd.DataFrame(rows)


def summary_frame(runs: dict):
    """Seed means of the switch statistics: one row per (network, variant)."""
    import pandas as pd

    rows = []
    for key, run in runs.items():
        for v in run.variants:
            st = switch_statistics(run, v)
            row = {"network": run.name, "variant": v,
                   "task A acc (%)": 100 * run.acc_a.mean(),
                   "task B acc (%)": 100 * run.acc_b[run.variants.index(v)].mean()}
            for name in ("entropy_pre", "entropy_peak", "entropy_end", "entropy_peak_step", "dead_pre",
                         "dead_max", "dead_end", "same_first50", "same_last50", "feat_fall", "head_fall",
                         "linearized_pre", "linearized_max", "linearized_end", "all_negative_pre",
                         "all_negative_max", "all_negative_end", "all_positive_pre", "all_positive_max",
                         "all_positive_end", "saturated_pre", "saturated_max", "saturated_end"):
                if name in st:
                    row[name] = float(np.mean(st[name]))
            rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- frames


def t_band(values, confidence: float = 0.95) -> tuple:
    """Student-t interval of the mean of ``values`` (one per seed): seaborn's ``errorbar=``.

    The book's bands are 95 % intervals over seeds; this is the t-interval (fast and
    deterministic, unlike seaborn's bootstrap). One value gives ``(v, v)``.
    """
    from scipy import stats

    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        m = float(v.mean()) if v.size else float("nan")
        return m, m
    half = float(stats.t.ppf(0.5 + confidence / 2, v.size - 1)) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean() - half), float(v.mean() + half)


def curve_frame(run: SwitchRun, metric: str, *, layer: Optional[int] = None, min_step: Optional[int] = None,
                max_step: Optional[int] = None, relative: bool = False, variants: Optional[Sequence[str]] = None,
                **labels):
    """Long ``pandas.DataFrame`` (variant, seed, step, value, labels...) of one scalar metric.

    Args:
      layer: picks one entry of a per-layer metric ``(V, S, W, L)``.
      min_step, max_step: keep steps in ``[min_step, max_step]``.
      relative: divide each curve by its pre-switch value (mean over the last
        ``edge_steps`` steps of task A).
      variants: subset of ``run.variants`` (default all).
      labels: constant columns.
    """
    import pandas as pd

    a = np.asarray(run.logs[metric], np.float64)
    if layer is not None:
        a = a[..., layer]
    if a.ndim != 3:
        raise ValueError(f"{metric} has shape {run.logs[metric].shape}; pass layer= for per-layer metrics")
    if relative:
        a = a / window_mean(a, run.steps <= 0)[..., None]
    keep = np.ones(run.steps.shape, bool)
    if min_step is not None:
        keep &= run.steps >= min_step
    if max_step is not None:
        keep &= run.steps <= max_step
    frames = []
    for vi, v in enumerate(run.variants):
        if variants is not None and v not in variants:
            continue
        for si, s in enumerate(run.seeds):
            frames.append(pd.DataFrame({"variant": v, "seed": int(s), "step": run.steps[keep],
                                        "value": a[vi, si, keep]}))
    df = pd.concat(frames, ignore_index=True)
    for k, val in labels.items():
        df[k] = val
    return df


def quantile_frame(run: SwitchRun, variant: str = "keep", layer: int = 0, max_step: Optional[int] = None):
    """Seed-mean preactivation quantiles of one layer: DataFrame step x ``q<level>`` columns."""
    import pandas as pd

    q = run.variant(variant)["preact_quantiles"][..., layer, :].mean(0)  # (W, Q)
    keep = np.ones(run.steps.shape, bool) if max_step is None else run.steps <= max_step
    df = pd.DataFrame(q[keep], columns=[f"q{lv:g}" for lv in QUANTILES])
    df.insert(0, "step", run.steps[keep])
    return df
