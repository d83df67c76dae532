"""The task switch of §3.2: train to convergence, change the task, watch the first steps.

Paper: Lyle et al. (2024), §3.2 "Linearization and preactivation distribution shift"
(Fig. 2: loss, predictive entropy and dead units around a label reshuffle) and App. E.3
"Death of a ReLU neuron" (Fig. 18: the same with the Adam state carried over or reset).

A network is trained on task A for ``pretrain_steps`` steps, the labels are reshuffled
(task B) and training continues for ``task_steps`` steps from the converged parameters.
What happens in the first steps after the switch is fast, so the logging is dense there
and sparse later. :class:`SwitchProtocol` is that schedule, with the step axis of its
logs and the windows over which the claims average; :class:`SwitchRun` holds the logs
of one network, ``(variants, seeds, logs, ...)``, with the optimizer-state *variants*
at the switch side by side (:data:`VARIANTS`).

Steps are counted from the switch: the log after step ``s`` of task B has step ``s``
(``1 .. task_steps``); the last ``edge_steps`` per-step logs of task A have steps
``-edge_steps + 1 .. 0``.

Logging schedule (each entry a *phase* ``(num_steps, log_every, with_metrics)``, one
call of ``train.train_steps``):

* task A: ``pretrain_steps - edge_steps`` steps unlogged, then ``edge_steps`` steps
  logged at every step (the pre-switch value);
* task B: the *erasing window*, the first ``erase_steps = ceil(erase_fraction *
  task_steps)`` steps, logged at every step (in chunks of ``edge_steps`` when they
  divide it, so the compiled program of the last phase is reused); the middle stretch
  logged every ``mid_log_every`` steps; the last ``edge_steps`` steps at every step.

Windows (boolean masks over the step axis, :meth:`SwitchProtocol.windows`):
``pre`` (steps <= 0: the last ``edge_steps`` steps of task A), ``post`` (task B),
``erase`` (``1 .. erase_steps``), ``first50`` (``1 .. 50``) and ``end`` (the last
``edge_steps`` steps of task B).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple, Optional, Sequence

import numpy as np

__all__ = [
    "EDGE_STEPS",
    "ERASE_FRACTION",
    "VARIANTS",
    "Phase",
    "SwitchProtocol",
    "SwitchRun",
    "window_mean",
    "window_max",
    "peak_step",
    "largest_relative_fall",
]

#: Steps logged at every step at the end of each task (pre-switch value, "last 50 steps").
EDGE_STEPS = 50
#: The erasing window is the first ``ERASE_FRACTION`` of task B ("first 10 % of the new task").
ERASE_FRACTION = 0.1
#: Optimizer-state variants at the switch: carried over (paper §3.2, Fig. 18 top) or reset
#: (``train.reset_optimizer``, Fig. 18 bottom).
VARIANTS = ("keep", "reset")


class Phase(NamedTuple):
    """One call of ``train.train_steps``: ``num_steps`` steps, one log every
    ``log_every`` steps, with the probe metrics (``with_metrics``) or only the engine's
    minibatch loss."""

    num_steps: int
    log_every: int
    with_metrics: bool = True


@dataclasses.dataclass(frozen=True)
class SwitchProtocol:
    """Steps and logging of one task switch (module docstring).

    Attributes:
      pretrain_steps: optimizer steps on task A (to convergence).
      task_steps: optimizer steps on task B after the switch.
      erase_fraction: the erasing window is the first ``ceil(erase_fraction *
        task_steps)`` steps of task B, logged at every step.
      edge_steps: steps logged at every step at the end of task A (the pre-switch value)
        and at the end of task B (the end of the task).
      mid_log_every: log period between the erasing window and the last ``edge_steps``
        steps; must divide that stretch.
      probe_size: inputs of the probe batch on which the diagnostics are computed.
    """

    pretrain_steps: int
    task_steps: int
    erase_fraction: float = ERASE_FRACTION
    edge_steps: int = EDGE_STEPS
    mid_log_every: int = 10
    probe_size: int = 512

    @property
    def erase_steps(self) -> int:
        """Steps of the erasing window, ``ceil(erase_fraction * task_steps)``."""
        return int(math.ceil(self.erase_fraction * self.task_steps))

    @property
    def mid_steps(self) -> int:
        """Steps between the erasing window and the last ``edge_steps`` steps of task B."""
        return self.task_steps - self.erase_steps - self.edge_steps

    def validate(self) -> "SwitchProtocol":
        """Raise ``ValueError`` naming the field if the schedule is impossible; returns self."""
        if self.pretrain_steps <= self.edge_steps:
            raise ValueError(
                f"pretrain_steps={self.pretrain_steps} must exceed edge_steps={self.edge_steps}"
            )
        if not 0 < self.erase_fraction < 1:
            raise ValueError(f"erase_fraction={self.erase_fraction} must be in (0, 1)")
        if self.mid_steps < 0:
            raise ValueError(
                f"task_steps={self.task_steps} is shorter than the erasing window "
                f"({self.erase_steps}) plus edge_steps={self.edge_steps}"
            )
        if self.mid_steps and self.mid_steps % self.mid_log_every:
            raise ValueError(
                f"mid_log_every={self.mid_log_every} must divide the {self.mid_steps} steps "
                "between the erasing window and the last edge_steps steps"
            )
        return self

    @property
    def task_a_phases(self) -> tuple:
        """Phases of task A: the unlogged stretch, then ``edge_steps`` per-step logs."""
        quiet = self.pretrain_steps - self.edge_steps
        return (Phase(quiet, quiet, False), Phase(self.edge_steps, 1))

    @property
    def task_b_phases(self) -> tuple:
        """Phases of task B: the erasing window (per step), the middle stretch (every
        ``mid_log_every`` steps, if any) and the last ``edge_steps`` steps (per step)."""
        e = self.erase_steps
        chunk = self.edge_steps if e % self.edge_steps == 0 else e
        phases = [Phase(chunk, 1)] * (e // chunk)
        if self.mid_steps:
            phases.append(Phase(self.mid_steps, self.mid_log_every))
        phases.append(Phase(self.edge_steps, 1))
        return tuple(phases)

    @property
    def steps(self) -> np.ndarray:
        """``(W,)`` int64 step of every log, counted from the switch: the ``edge_steps``
        per-step logs of task A (``<= 0``) followed by the logs of task B's phases."""
        e, m = self.erase_steps, self.mid_steps
        mid = e + self.mid_log_every * (np.arange(m // self.mid_log_every) + 1) if m else []
        t = self.task_steps
        return np.concatenate(
            [
                np.arange(-self.edge_steps + 1, 1),
                np.arange(1, e + 1),
                np.asarray(mid, np.int64),
                np.arange(t - self.edge_steps + 1, t + 1),
            ]
        ).astype(np.int64)

    def windows(self, steps: Optional[np.ndarray] = None) -> dict:
        """Boolean masks ``(W,)`` over ``steps`` (default :attr:`steps`): ``pre``,
        ``post``, ``erase``, ``first50``, ``end`` (module docstring)."""
        s = self.steps if steps is None else np.asarray(steps)
        return {
            "pre": s <= 0,
            "post": s >= 1,
            "erase": (s >= 1) & (s <= self.erase_steps),
            "first50": (s >= 1) & (s <= 50),
            "end": s > self.task_steps - self.edge_steps,
        }


@dataclasses.dataclass
class SwitchRun:
    """Logs of one network around the switch (numpy).

    Attributes:
      name: label of the network, e.g. ``"1 x 256 MLP, relu"``.
      protocol: the :class:`SwitchProtocol` it ran.
      variants: the optimizer-state variants (a subset of :data:`VARIANTS`), ``V``.
      seeds: ``(S,)`` the seeds.
      logs: ``name -> (V, S, W, ...)`` over the step axis ``protocol.steps`` ``(W,)``;
        the engine's minibatch ``loss`` is called ``train_loss``.
      acc_a: ``(S,)`` accuracy on all of task A at the switch.
      acc_b: ``(V, S)`` accuracy on all of task B at its end.
    """

    name: str
    protocol: SwitchProtocol
    variants: tuple
    seeds: np.ndarray
    logs: dict
    acc_a: np.ndarray
    acc_b: np.ndarray

    @classmethod
    def from_logs(cls, name, protocol, variants, seeds, pre, post, acc_a, acc_b) -> "SwitchRun":
        """Join the logs of the two tasks into ``(V, S, W, ...)`` arrays.

        Args:
          pre: ``name -> (S, edge_steps, ...)``: the per-step logs at the end of task A,
            shared by every variant.
          post: ``name -> (V * S, W_B, ...)``: the logs of task B, variant-major on the
            model axis (``V`` blocks of ``S`` seeds).
          acc_a: ``(S,)``; acc_b: ``(V * S,)`` or ``(V, S)``.
        Only the names logged in both tasks are kept.
        """
        variants, seeds = tuple(variants), np.asarray(seeds)
        v, s = len(variants), len(seeds)
        logs = {}
        for key in post:
            if key not in pre:
                continue
            a = np.asarray(pre[key])
            a = np.broadcast_to(a[None], (v,) + a.shape)
            b = np.asarray(post[key]).reshape((v, s) + np.shape(post[key])[1:])
            logs["train_loss" if key == "loss" else key] = np.concatenate([a, b], axis=2)
        steps = protocol.steps
        width = next(iter(logs.values())).shape[2]
        if width != steps.shape[0]:
            raise ValueError(f"logs have {width} entries, protocol.steps has {steps.shape[0]}")
        acc_b = np.asarray(acc_b).reshape(v, s)
        return cls(name, protocol, variants, seeds, logs, np.asarray(acc_a), acc_b)

    @property
    def steps(self) -> np.ndarray:
        """``(W,)`` step of every log (``protocol.steps``)."""
        return self.protocol.steps

    @property
    def windows(self) -> dict:
        """The protocol's windows over :attr:`steps`."""
        return self.protocol.windows()

    def variant(self, v: str) -> dict:
        """``name -> (S, W, ...)`` logs of one variant."""
        i = self.variants.index(v)
        return {k: a[i] for k, a in self.logs.items()}

    def frame(
        self,
        metric: str,
        *,
        layer: Optional[int] = None,
        min_step: Optional[int] = None,
        max_step: Optional[int] = None,
        relative: bool = False,
        variants: Optional[Sequence[str]] = None,
        **labels,
    ):
        """Long ``pandas.DataFrame`` (seed, step, value, variant, labels...) of one
        scalar metric, for seaborn's mean-and-band plots.

        Args:
          metric: a key of :attr:`logs`.
          layer: picks one entry of a per-layer metric ``(V, S, W, L)``.
          min_step, max_step: keep the steps in ``[min_step, max_step]``.
          relative: divide each curve by its pre-switch value (mean over ``pre``).
          variants: a subset of :attr:`variants` (default all).
          labels: constant columns.
        """
        import pandas as pd

        from .plotting import long_frame

        a = np.asarray(self.logs[metric], np.float64)
        if layer is not None:
            a = a[..., layer]
        if a.ndim != 3:
            raise ValueError(
                f"{metric} has shape {self.logs[metric].shape}; pass layer= for a per-layer metric"
            )
        if relative:
            a = a / window_mean(a, self.steps <= 0)[..., None]
        keep = np.ones(self.steps.shape, bool)
        if min_step is not None:
            keep &= self.steps >= min_step
        if max_step is not None:
            keep &= self.steps <= max_step
        frames = [
            long_frame(a[i][:, keep], x=self.steps[keep], x_name="step", y_name="value", variant=v)
            for i, v in enumerate(self.variants)
            if variants is None or v in variants
        ]
        df = pd.concat(frames, ignore_index=True)
        for k, val in labels.items():
            df[k] = val
        return df


def window_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of ``values`` ``(..., W)`` over the log axis (the last) restricted to ``mask``
    ``(W,)`` bool: ``(...)``."""
    return np.asarray(values)[..., mask].mean(-1)


def window_max(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Max of ``values`` ``(..., W)`` over the log axis restricted to ``mask``: ``(...)``."""
    return np.asarray(values)[..., mask].max(-1)


def peak_step(values: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Step after the switch at which each curve of ``values`` ``(S, W)`` peaks: ``(S,)``
    float64, the first maximum over the logs with ``steps >= 1`` (e.g. the end of the
    erasing phase, where the predictive entropy of task B peaks)."""
    steps = np.asarray(steps)
    post = np.flatnonzero(steps >= 1)
    return steps[post[np.argmax(np.asarray(values)[:, post], axis=1)]].astype(np.float64)


def largest_relative_fall(values: np.ndarray, steps: np.ndarray, last_step) -> np.ndarray:
    """Largest relative fall below the pre-switch value, ``1 - min_t x_t / x_pre``, over
    the steps ``1 .. last_step[i]`` of each curve ``i``.

    Args:
      values: ``(S, W)`` curves (e.g. the feature norm); ``x_pre`` is the mean over the
        logs with ``steps <= 0``.
      steps: ``(W,)`` the step axis.
      last_step: ``(S,)`` the last step of each curve's phase (e.g. :func:`peak_step`).
    Returns:
      ``(S,)`` float.
    """
    a, steps = np.asarray(values), np.asarray(steps)
    pre = window_mean(a, steps <= 0)
    falls = []
    for i in range(a.shape[0]):
        phase = (steps >= 1) & (steps <= last_step[i])
        falls.append(1.0 - a[i, phase].min() / pre[i])
    return np.asarray(falls)


#: Logs in each of the two equal windows of the dead-unit recovery test (issue 15).
RECOVERY_LOGS = 20


def peak_centred_mean(
    values: np.ndarray, steps: np.ndarray, peak_mask: np.ndarray, width: int = RECOVERY_LOGS
) -> np.ndarray:
    """Mean over ``width`` consecutive logs of task B centred on each curve's maximum.

    The maximum of curve ``i`` is taken over the logs selected by ``peak_mask`` (e.g. the
    erasing window; the first maximum when tied); the window is the ``width`` logs from
    index ``argmax - width // 2`` on, shifted (never shrunk) to stay inside the logs of
    task B (``steps >= 1``) when the maximum lies near the switch or the end.

    Args:
      values: ``(S, W)`` curves over the step axis ``steps`` ``(W,)``.
      peak_mask: ``(W,)`` bool, where to look for the maximum (a subset of task B).
      width: logs in the window (<= the number of task-B logs).
    Returns:
      ``(S,)`` float64.
    """
    a, steps = np.asarray(values, np.float64), np.asarray(steps)
    post = np.flatnonzero(steps >= 1)
    if width < 1 or width > post.size:
        raise ValueError(f"width={width} must be in [1, {post.size}] (the logs of task B)")
    cand = np.flatnonzero(np.asarray(peak_mask) & (steps >= 1))
    if cand.size == 0:
        raise ValueError("peak_mask selects no log of task B")
    out = []
    for i in range(a.shape[0]):
        peak = cand[np.argmax(a[i, cand])]
        start = int(np.clip(peak - width // 2, post[0], post[-1] - width + 1))
        out.append(a[i, start : start + width].mean())
    return np.asarray(out)


def last_logs_mean(values: np.ndarray, width: int = RECOVERY_LOGS) -> np.ndarray:
    """``(S,)``: mean of each curve ``(S, W)`` over its last ``width`` logs (the end of
    task B; with the default schedule these are the last ``width`` steps, logged at every
    step)."""
    a = np.asarray(values, np.float64)
    if width < 1 or width > a.shape[-1]:
        raise ValueError(f"width={width} must be in [1, {a.shape[-1]}]")
    return a[..., -width:].mean(-1)


__all__ += ["RECOVERY_LOGS", "peak_centred_mean", "last_logs_mean"]
