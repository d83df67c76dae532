"""Configuration of a training run and the batching of its hyperparameters.

Paper: Lyle et al. (2024), App. B.2 (optimiser, learning rates, steps per task), §4.1 /
Fig. 4 (the interventions and their coefficients), App. B.3 (two-hot loss, label
smoothing).

A :class:`TrainConfig` has two kinds of fields. The *float hyperparameters*
(:data:`HYPER_FIELDS`: learning rate, label smoothing, L2, weight decay, the penalty
coefficients, the InFeR scale, the ReDo threshold) are traced values in the compiled
program, so configurations that differ only in them train together in one ``vmap``. Every
other field is *structural*: it changes the program (which optimizer, which loss, which
interventions are compiled in). A penalty coefficient is both: its value is traced, but
whether it is zero decides whether its code is compiled in (:data:`SWITCH_FIELDS`).
:func:`structural` maps a config to its structural part, the static key of the compiled
programs; :func:`group_configs` groups configs that share one.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import jax.numpy as jnp
import numpy as np

from ..losses import LOSSES

__all__ = [
    "OPTIMIZERS",
    "DECAY_PARAMS",
    "HYPER_FIELDS",
    "SWITCH_FIELDS",
    "TrainConfig",
    "hyperparams",
    "structural",
    "init_config",
    "batched_hyperparams",
    "full_hyperparams",
    "group_configs",
]

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
SWITCH_FIELDS = ("l2", "weight_decay", "feature_norm_penalty", "grad_norm_penalty", "infer_coef")
# Placeholders for the other hyperparameters in the structural (static) config.
_PLACEHOLDERS = {"learning_rate": 1.0, "label_smoothing": 0.0, "infer_scale": 1.0, "redo_tau": 0.0}


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
            raise ValueError(
                f"TrainConfig.optimizer={self.optimizer!r} is not allowed; "
                f"choose one of {OPTIMIZERS}"
            )
        if self.loss not in LOSSES:
            raise ValueError(
                f"TrainConfig.loss={self.loss!r} is not allowed; choose one of {LOSSES}"
            )
        if self.decay_params not in DECAY_PARAMS:
            raise ValueError(
                f"TrainConfig.decay_params={self.decay_params!r} is not allowed; "
                f"choose one of {DECAY_PARAMS}"
            )
        for name in ("batch_size", "infer_k", "eval_batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"TrainConfig.{name}={v!r} must be an integer >= 1")
        if not isinstance(self.redo_every, (int, np.integer)) or self.redo_every < 0:
            raise ValueError(
                f"TrainConfig.redo_every={self.redo_every!r} must be an integer >= 0 (0 = off)"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"TrainConfig.learning_rate={self.learning_rate!r} must be > 0")
        for name in (
            "l2",
            "weight_decay",
            "feature_norm_penalty",
            "grad_norm_penalty",
            "infer_coef",
            "redo_tau",
        ):
            if not getattr(self, name) >= 0:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r} must be >= 0")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(
                f"TrainConfig.label_smoothing={self.label_smoothing!r} must be in [0, 1)"
            )
        if not 0 <= self.momentum < 1:
            raise ValueError(f"TrainConfig.momentum={self.momentum!r} must be in [0, 1)")


def hyperparams(cfg: TrainConfig) -> dict:
    """``{field: () float32}`` for every field of :data:`HYPER_FIELDS`: the traced
    hyperparameters of one model (the ``hparams`` argument of ``train_step``)."""
    return {f: jnp.float32(getattr(cfg, f)) for f in HYPER_FIELDS}


def structural(cfg: TrainConfig) -> TrainConfig:
    """The config with vmappable floats replaced by flags/placeholders (the static key)."""
    repl = {f: (1.0 if getattr(cfg, f) != 0 else 0.0) for f in SWITCH_FIELDS}
    repl.update(_PLACEHOLDERS)
    return dataclasses.replace(cfg, **repl)


def init_config(scfg: TrainConfig) -> TrainConfig:
    """Only the fields that shape the initial state (fewer recompilations of the init)."""
    return dataclasses.replace(
        structural(TrainConfig()),
        optimizer=scfg.optimizer,
        adam_b1=scfg.adam_b1,
        adam_b2=scfg.adam_b2,
        adam_eps=scfg.adam_eps,
        momentum=scfg.momentum,
        weight_decay=scfg.weight_decay,
        decay_params=scfg.decay_params,
        weight_norm_constraint=scfg.weight_norm_constraint,
        infer_coef=scfg.infer_coef,
        infer_k=scfg.infer_k,
    )


def batched_hyperparams(cfgs: Sequence[TrainConfig], n_seeds: int) -> dict:
    """``{field: (C * S,) float32}`` for ``C`` configs times ``S`` seeds, config-major."""
    return {
        f: np.repeat(np.asarray([getattr(c, f) for c in cfgs], np.float32), n_seeds)
        for f in HYPER_FIELDS
    }


def full_hyperparams(cfg: TrainConfig, hparams: Optional[dict], m: int) -> dict:
    """``{field: (m,) float32}``: ``cfg``'s values, overridden by ``hparams`` (a float or
    an ``(m,)`` array per field). Raises if a key is not in :data:`HYPER_FIELDS` or if an
    override switches an intervention on/off relative to ``cfg`` (the structure)."""
    hp = {f: np.full((m,), getattr(cfg, f), np.float32) for f in HYPER_FIELDS}
    for k, v in (hparams or {}).items():
        if k not in HYPER_FIELDS:
            raise ValueError(
                f"hparams key {k!r} is not a vmappable hyperparameter; allowed: {HYPER_FIELDS}"
            )
        hp[k] = np.broadcast_to(np.asarray(v, np.float32), (m,)).copy()
    for f in SWITCH_FIELDS:
        if (np.any(hp[f] != 0)) != bool(getattr(cfg, f)):
            raise ValueError(
                f"hparams[{f!r}] switches the intervention on/off relative to "
                f"cfg.{f}={getattr(cfg, f)}; set cfg.{f} non-zero to compile it in"
            )
    return {k: jnp.asarray(v) for k, v in hp.items()}


def group_configs(cfgs: Sequence[TrainConfig]) -> list:
    """``[(structural config, [indices into cfgs]), ...]`` in order of first appearance."""
    groups: dict = {}
    for i, c in enumerate(cfgs):
        groups.setdefault(structural(c), []).append(i)
    return list(groups.items())
