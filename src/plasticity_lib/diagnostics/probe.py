"""Plasticity probe of App. B.3: can the network still fit a perturbation of itself?

Paper: Lyle et al. (2024) App. B.3 (contextual bandits; also used for §3.1/Fig. 1):
"we take a network checkpoint, initialize a fresh optimizer, and train the network to
fit a perturbation of its initial outputs on a subset of inputs ... the objective ...
at step ``k`` ... ``||f(theta_T; X) - f(theta_k; X) + eta(X)||^2``, where ``eta`` is a
high-frequency function of the input ``X``", for 2000 steps.

Definitions used here
---------------------
* Target: ``y(X) = f(theta_T; X) + eta(X)``, computed once from the checkpoint (the
  paper's sign convention ``f(theta_T) - f(theta_k) + eta`` is the same objective with
  ``eta -> -eta``, which has the same distribution).
* ``eta(x)_c = amplitude * sin(frequency * <r_c, vec(x)>)``, ``r_c ~ N(0, I / d_in)``
  drawn from ``key`` independently for each of the ``C`` outputs. With the default
  ``frequency = 100`` the phase changes by many periods between distinct inputs, so
  ``eta`` behaves like a fixed random target per input with values in
  ``[-amplitude, amplitude]`` (variance ``amplitude^2 / 2``) — a deterministic,
  high-frequency function of the input, as in App. E.1's ``sin(M f_rand(x))`` targets.
* Probe loss: mean over inputs and outputs of the squared error,
  ``(1/(n C)) ||f(theta_k; X) - y(X)||^2`` (the paper's ``||.||^2`` up to the constant
  ``1/(nC)``). Full-batch Adam (``optax.adam(lr)``, fresh state) for ``steps`` steps in a
  ``lax.scan``; optional random mini-batches of ``batch_size``. The paper does not name
  the probe's optimizer; ``optimizer=`` selects another one (``"sgd"``, or any
  ``optax.GradientTransformation``), always with a fresh state.
* The reported number is the probe loss after the last step, on all of ``X``. A network
  that cannot move its outputs keeps a loss near ``amplitude^2 / 2``; a plastic one
  drives it towards 0. ``probe_ratio`` divides by the same probe (same ``key``, hence the
  same ``eta`` and mini-batches) run from a fresh initialization: ratio > 1 means less
  plastic than a fresh network.

Everything is jit-able and vmap-able; ``probe_vmapped`` vmaps over a leading axis of
stacked parameters (seeds and/or checkpoints).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

Array = jax.Array

__all__ = [
    "PROBE_OPTIMIZERS",
    "make_probe_optimizer",
    "probe_perturbation",
    "plasticity_probe",
    "probe_ratio",
    "probe_vmapped",
    "probe_checkpoints",
]


#: Optimizer names accepted by ``plasticity_probe(optimizer=...)``: name -> optax factory of lr.
PROBE_OPTIMIZERS = {
    "adam": optax.adam,  # default: optax.adam(lr) (b1 0.9, b2 0.999, eps 1e-8)
    "sgd": optax.sgd,  # plain gradient descent: theta <- theta - lr * grad
}


def make_probe_optimizer(
    optimizer: "str | optax.GradientTransformation" = "adam", lr: float = 1e-3
) -> optax.GradientTransformation:
    """The probe's optimizer: a name of ``PROBE_OPTIMIZERS`` with learning rate ``lr``,
    or an ``optax.GradientTransformation`` returned as is (``lr`` unused: the
    transformation carries its own step size).

    Raises:
      ValueError: ``optimizer`` is neither a known name nor a GradientTransformation.
    """
    if isinstance(optimizer, str):
        if optimizer not in PROBE_OPTIMIZERS:
            raise ValueError(
                f"optimizer={optimizer!r} is not allowed; allowed: {sorted(PROBE_OPTIMIZERS)} "
                "or an optax.GradientTransformation"
            )
        return PROBE_OPTIMIZERS[optimizer](lr)
    if isinstance(optimizer, optax.GradientTransformation) or (
        callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))
    ):
        return optimizer
    raise ValueError(
        f"optimizer={optimizer!r} is not allowed; allowed: {sorted(PROBE_OPTIMIZERS)} "
        "or an optax.GradientTransformation"
    )


def probe_perturbation(
    x: Array,
    num_outputs: int,
    key: Array,
    amplitude: float = 1.0,
    frequency: float = 100.0,
) -> Array:
    """High-frequency perturbation ``eta(X)`` ``(n, C)`` (see module docstring).

    Args:
      x: ``(n, ...)`` inputs; num_outputs: ``C`` (static); key: PRNG key.
      amplitude, frequency: scalars.
    Returns:
      ``(n, C)`` float32 in ``[-amplitude, amplitude]``.
    """
    xf = jnp.reshape(x, (x.shape[0], -1)).astype(jnp.float32)
    r = jax.random.normal(key, (xf.shape[1], num_outputs)) / jnp.sqrt(xf.shape[1])
    return amplitude * jnp.sin(frequency * (xf @ r))


def plasticity_probe(
    apply_fn: Callable,
    params: Any,
    x: Array,
    key: Array,
    steps: int = 2000,
    lr: float = 1e-3,
    amplitude: float = 1.0,
    frequency: float = 100.0,
    batch_size: Optional[int] = None,
    return_curve: bool = False,
    optimizer: "str | optax.GradientTransformation" = "adam",
):
    """Run the B.3 plasticity probe from checkpoint ``params``.

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, C)`` (or ``(n,)``).
      params: checkpoint ``theta_T`` (pytree).
      x: ``(n, ...)`` probe inputs (e.g. a subset of the training/replay inputs).
      key: PRNG key for ``eta`` and the mini-batches.
      steps: optimizer steps (static; the paper uses 2000).
      lr: learning rate of a named ``optimizer`` (ignored when ``optimizer`` is a
        GradientTransformation).
      amplitude, frequency: of ``eta``.
      batch_size: static; None = full batch.
      return_curve: static; also return the per-step training loss ``(steps,)`` (on the
        batch used at that step, before the update).
      optimizer: static; ``"adam"`` (default, ``optax.adam(lr)``), ``"sgd"``
        (``optax.sgd(lr)``), or an ``optax.GradientTransformation`` (e.g.
        ``optax.sgd(0.1, momentum=0.9)``). A fresh optimizer state is initialised
        from ``params`` either way.
    Returns:
      final probe loss (scalar), or ``(final_loss, curve)`` with ``curve`` ``(steps,)``.
    Raises:
      ValueError: unknown ``optimizer`` (names the allowed values).
    """
    opt = make_probe_optimizer(optimizer, lr)
    n = x.shape[0]
    k_eta, k_batch = jax.random.split(key)
    f0 = jax.lax.stop_gradient(jnp.reshape(apply_fn(params, x), (n, -1)))
    target = f0 + probe_perturbation(x, f0.shape[1], k_eta, amplitude, frequency)

    def loss_fn(p, xb, yb):
        out = jnp.reshape(apply_fn(p, xb), (xb.shape[0], -1))
        return jnp.mean(jnp.square(out - yb))

    grad_fn = jax.value_and_grad(loss_fn)

    def step(carry, k):
        p, s = carry
        if batch_size is None:
            xb, yb = x, target
        else:
            idx = jax.random.choice(k, n, (batch_size,), replace=False)
            xb, yb = x[idx], target[idx]
        loss, g = grad_fn(p, xb, yb)
        upd, s = opt.update(g, s, p)
        p = optax.apply_updates(p, upd)
        return (p, s), loss

    keys = jax.random.split(k_batch, steps)
    (p_final, _), curve = jax.lax.scan(step, (params, opt.init(params)), keys)
    final = loss_fn(p_final, x, target)
    if return_curve:
        return final, curve
    return final


def probe_ratio(
    apply_fn: Callable,
    params: Any,
    fresh_params: Any,
    x: Array,
    key: Array,
    **probe_kwargs,
) -> Array:
    """``plasticity_probe(params) / plasticity_probe(fresh_params)`` with the same ``key``
    (same ``eta``). ``fresh_params``: a fresh initialization of the same network.
    Keyword arguments go to ``plasticity_probe`` (not ``return_curve``). Scalar; > 1 means
    the checkpoint fits the probe worse than a fresh network.
    """
    probe_kwargs.pop("return_curve", None)
    a = plasticity_probe(apply_fn, params, x, key, **probe_kwargs)
    b = plasticity_probe(apply_fn, fresh_params, x, key, **probe_kwargs)
    return a / b


def _key_is_batched(key) -> bool:
    key = jnp.asarray(key) if not hasattr(key, "dtype") else key
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key.ndim >= 1
    return key.ndim >= 2


def probe_vmapped(
    apply_fn: Callable,
    stacked_params: Any,
    x: Array,
    key: Array,
    **probe_kwargs,
):
    """``plasticity_probe`` vmapped over the leading axis of ``stacked_params``.

    Args:
      stacked_params: pytree whose leaves have a leading axis ``S`` (seeds, or
        checkpoints of one run stacked with ``jax.tree.map(jnp.stack, ...)``).
      key: one key (the same ``eta`` for every member: a like-for-like comparison) or a
        batch of ``S`` keys.
      x: ``(n, ...)`` shared probe inputs.
    Returns:
      ``(S,)`` final probe losses (or ``((S,), (S, steps))`` with ``return_curve``).

    For seeds x checkpoints ``(S, T, ...)`` leaves, nest it:
    ``jax.vmap(lambda p: probe_vmapped(apply_fn, p, x, key, ...))(params_st)`` -> ``(S, T)``.
    """
    fn = lambda p, k: plasticity_probe(apply_fn, p, x, k, **probe_kwargs)
    in_axes = (0, 0 if _key_is_batched(key) else None)
    return jax.vmap(fn, in_axes=in_axes)(stacked_params, key)


def probe_checkpoints(
    apply_fn: Callable,
    ckpts: Any,
    x: Array,
    probe_keys: Array,
    num_groups: int,
    **probe_kwargs,
):
    """Final B.3 probe losses of every checkpoint of ``M`` models, checkpoint 0 probed
    once per seed, in ONE compiled, vmapped call.

    The models are group-major, ``m = group * S + seed`` with ``S = M // num_groups``
    (e.g. the arms of one network in chapter 7); the models of one seed share their
    initialisation (checkpoint 0) and their ``probe_keys`` row, so the probe from
    checkpoint 0 is the same computation for every group of a seed: it runs once per seed
    (on the first group's rows) and its loss is shared. The result equals probing every
    ``(model, checkpoint)`` separately with ``plasticity_probe`` (tested), with
    ``S + M K`` probes instead of ``M (K + 1)``.

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, C)``.
      ckpts: pytree, every leaf ``(M, K + 1, ...)``; index 0 of axis 1 the initialisation.
      x: ``(n, ...)`` probe inputs (closed over: the same for every probe).
      probe_keys: ``(M, 2)`` (or ``(M,)`` typed) PRNG keys, one per model.
      num_groups: number of groups ``G`` (``M`` must be a multiple of it).
      **probe_kwargs: passed to ``plasticity_probe`` (``steps``, ``lr``, ``batch_size``
        ...; not ``return_curve``).
    Returns:
      ``(M, K + 1)`` numpy array of final probe losses.
    Raises:
      ValueError: ``M`` not a multiple of ``num_groups``; the models of one seed do not
        share their checkpoint 0 or their probe key (then sharing would not be exact).
    """
    probe_kwargs.pop("return_curve", None)
    leaves = [np.asarray(a) for a in jax.tree.leaves(ckpts)]
    m, k1 = leaves[0].shape[:2]
    if num_groups < 1 or m % num_groups:
        raise ValueError(
            f"probe_checkpoints: num_groups={num_groups!r} must be >= 1 and divide the "
            f"number of models M={m}"
        )
    s = m // num_groups
    keys_np = (
        np.asarray(jax.random.key_data(probe_keys))
        if jax.dtypes.issubdtype(jnp.asarray(probe_keys).dtype, jax.dtypes.prng_key)
        else np.asarray(probe_keys)
    )
    for g in range(1, num_groups):
        rows = slice(g * s, (g + 1) * s)
        if not all(np.array_equal(a[rows, 0], a[:s, 0]) for a in leaves):
            raise ValueError(
                "probe_checkpoints: the models of one seed must share their initial "
                f"parameters (checkpoint 0); group {g} differs from group 0"
            )
        if not np.array_equal(keys_np[rows], keys_np[:s]):
            raise ValueError(
                "probe_checkpoints: the models of one seed must share their probe key; "
                f"group {g} differs from group 0"
            )
    num = k1 - 1  # trained checkpoints per model
    init0 = jax.tree.map(lambda a: np.asarray(a)[:s, 0], ckpts)
    trained = jax.tree.map(lambda a: np.asarray(a)[:, 1:].reshape(-1, *a.shape[2:]), ckpts)
    params = jax.tree.map(lambda a, b: np.concatenate([a, b]), init0, trained)
    k_all = jnp.concatenate([probe_keys[:s], jnp.repeat(probe_keys, num, axis=0)])
    run = jax.jit(jax.vmap(lambda p, key: plasticity_probe(apply_fn, p, x, key, **probe_kwargs)))
    losses = np.asarray(run(params, k_all))
    at_init = np.tile(losses[:s], num_groups)[:, None]  # (M, 1): model m = group * S + seed
    return np.concatenate([at_init, losses[s:].reshape(m, num)], axis=1)
