"""Optimizers: Adam and SGD through optax, decoupled weight decay, the Shampoo stub.

Paper: Lyle et al. (2024), App. B.2 (Adam for every continual supervised experiment),
§4.1 / Fig. 4 (weight decay among the interventions; Shampoo as a second-order
optimizer). The optimizer acts on the trainable pair ``(params, aux)``: the network
parameters and the InFeR heads (``aux``, empty unless ``infer_coef > 0``). Weight decay is
decoupled, as in ``optax.adamw``: ``theta <- theta - lr * (direction + wd * theta)``, on
the network parameters selected by ``TrainConfig.decay_params`` (never on the InFeR heads).
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import optax

from .config import TrainConfig, hyperparams

__all__ = ["make_optimizer", "decay_mask", "is_kernel_path", "shampoo"]


def is_kernel_path(path) -> bool:
    """Whether a ``tree_flatten_with_path`` path ends in a ``kernel`` leaf (a weight
    matrix or conv kernel, as opposed to a bias or a norm scale/offset)."""
    last = path[-1]
    return getattr(last, "key", getattr(last, "name", None)) == "kernel"


def decay_mask(cfg: TrainConfig, params) -> Any:
    """Tree of bools like ``params``: the leaves ``l2`` / ``weight_decay`` act on
    (``decay_params="all"``: every leaf; ``"kernels"``: the ``kernel`` leaves)."""
    if cfg.decay_params == "all":
        return jax.tree_util.tree_map(lambda _: True, params)
    return jax.tree_util.tree_map_with_path(lambda p, _: is_kernel_path(p), params)


def shampoo():
    """optax's Shampoo, if this optax has one; else a ``ValueError`` naming the choices.

    optax 0.2.8 provides none (checked ``optax`` and ``optax.contrib``), so Fig. 4's
    Shampoo arm cannot run; ``TrainConfig(optimizer="shampoo")`` fails at the first use.
    """
    for mod in (optax, getattr(optax, "contrib", None)):
        fn = getattr(mod, "shampoo", None) or getattr(mod, "distributed_shampoo", None)
        if fn is not None:
            return fn
    raise ValueError(
        "TrainConfig.optimizer='shampoo' is not available: optax "
        f"{optax.__version__} provides no Shampoo (checked optax and optax.contrib). "
        "Choose optimizer='adam' or 'sgd'."
    )


def make_optimizer(
    cfg: TrainConfig, hparams: Optional[dict] = None
) -> optax.GradientTransformation:
    """The optax transformation for ``cfg`` over the trainable pair ``(params, aux)``.

    ``adam``: ``scale_by_adam``; ``sgd``: identity or momentum trace; then decoupled
    ``add_decayed_weights(weight_decay)`` on the network params selected by
    ``decay_params`` (when ``weight_decay > 0``); then ``scale_by_learning_rate``.
    ``hparams`` (dict of possibly traced scalars) overrides the float fields of ``cfg``.
    """
    hp = hyperparams(cfg) if hparams is None else hparams
    parts = []
    if cfg.optimizer == "adam":
        parts.append(optax.scale_by_adam(b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.adam_eps))
    elif cfg.optimizer == "sgd":
        if cfg.momentum:
            parts.append(optax.trace(decay=cfg.momentum))
    elif cfg.optimizer == "shampoo":
        return shampoo()(learning_rate=hp["learning_rate"])
    if cfg.weight_decay:

        def mask(trainable):
            params, aux = trainable
            return decay_mask(cfg, params), jax.tree_util.tree_map(lambda _: False, aux)

        parts.append(optax.add_decayed_weights(hp["weight_decay"], mask=mask))
    parts.append(optax.scale_by_learning_rate(hp["learning_rate"]))
    return optax.chain(*parts)
