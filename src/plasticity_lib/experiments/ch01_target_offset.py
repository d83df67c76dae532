"""Chapter 1: regression target offset and plasticity (Lyle et al. 2024, §3.1, App. E.1).

Protocol (App. E.1, Figs. 1 left, 11-16)
----------------------------------------
*Pretraining*: a network regresses (MSE) the stationary targets

    y(x) = b + alpha * s(x) + sin(M f_rand(x)),

where ``f_rand`` is a randomly initialised network (``M = 1e5``, so the sine part is a
pseudo-random value in [-1, 1] per input), ``b`` the *offset* and ``s`` a second random
network's output standardised over the inputs (the smooth part of Fig. 16's zero-mean
control, scaled by ``alpha``; ``alpha = 0`` in the offset experiment). The targets are
those of :func:`plasticity_lib.tasks.random_network_targets` (same key split, same
networks), assembled by :func:`make_targets` from per-seed parts so that a seed's targets
do not depend on the other conditions of the run.

*Fine-tuning*: from the pretrained parameters, with a fresh optimizer, the network
regresses new targets drawn from a *different* random network, with offset ``b`` again
("same") or 0 ("zero"); for the alpha control, fine-tuning targets have ``alpha = 0`` and
offset 0. The statistic of App. E.1 is the final fine-tuning loss averaged over the last
10 iterates: we log the minibatch loss in windows of :data:`FINAL_WINDOW` = 10 steps and
take the last window.

Vectorisation
-------------
Every (condition, seed) pair is one model; all models of one network (with or without
layer norm) train in one jitted, vmapped scan (``train.train_steps`` with per-model
targets and shared inputs, ``task_batched=(None, 0, None)``). Models are ordered
condition-major: model ``i = c * S + s``. A seed fixes the network initialisation, the
minibatch sequence and the target networks, so conditions that share a seed differ
*only* in their targets' offset / scale (common random numbers).

Keys: model of seed ``s`` is initialised by ``init_state`` from ``PRNGKey(s)``;
pretraining targets use ``fold_in(PRNGKey(s), PRETRAIN_TAG)``, fine-tuning targets
``fold_in(PRNGKey(s), FINETUNE_TAG)`` (a different target network, for every offset
alike); the fine-tuning optimizer state is fresh and its minibatch key comes from seed
``s + FINETUNE_SEED_SHIFT``.

Diagnostics (App. E.1, Figs. 14-15): on ``n = 128`` probe inputs, the singular values of
the (uncentred) ``n x d`` penultimate feature matrix, and the output carried by its top
singular direction compared with the final-layer bias
(:func:`plasticity_lib.diagnostics.representation.top_singular_direction_output`), and
the share of dead penultimate units (``diagnostics.units.dead_units``).

Statistics for the claims: :func:`spearman_estimate` (Spearman correlation of a dose
with the seed-mean response, bootstrap over seeds) and :func:`ratio_estimate` (ratio of
seed-means, bootstrap over seeds, seeds resampled jointly for paired conditions).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import claims, tasks, train
from ..progress import progress_bar
from ..diagnostics import representation, units
from ..models import ModelConfig, make_network

__all__ = [
    "FINAL_WINDOW",
    "PRETRAIN_TAG",
    "FINETUNE_TAG",
    "FINETUNE_SEED_SHIFT",
    "OffsetRun",
    "target_parts",
    "make_targets",
    "run_phase",
    "feature_diagnostics",
    "pretrain_finetune",
    "offset_experiment",
    "spearman_estimate",
    "ratio_estimate",
    "difference_of_ratios_estimate",
    "dose_frame",
    "curve_frame",
    "claim_estimates",
]

FINAL_WINDOW = 10  # "final loss averaged over the last 10 iterates" (App. E.1)
PRETRAIN_TAG = 101
FINETUNE_TAG = 202
FINETUNE_SEED_SHIFT = 10_000


# ------------------------------------------------------------------------- targets


def target_parts(key: jax.Array, x, M: float = 1e5, target_width: int = 64, target_depth: int = 2) -> tuple:
    """The two random parts of one seed's targets, ``(hf, smooth)``, each ``(N,)``.

    ``hf = sin(M f_hf(x))`` and ``smooth`` = the standardised output of a second random
    network, exactly as in ``tasks.random_network_targets(key, x, offset, M, alpha)``
    ``= offset + alpha * smooth + hf`` (same key split ``k_hf, k_smooth =
    jax.random.split(key)``, same networks ``tasks.random_mlp_init``).
    """
    x = jnp.asarray(x, jnp.float32)
    in_dim = int(np.prod(x.shape[1:]))
    k_hf, k_smooth = jax.random.split(key)
    hf = jnp.sin(M * tasks.random_mlp_apply(tasks.random_mlp_init(k_hf, in_dim, target_width, target_depth), x))
    sm = tasks.random_mlp_apply(tasks.random_mlp_init(k_smooth, in_dim, target_width, target_depth), x)
    return hf, (sm - sm.mean()) / (sm.std() + 1e-12)


def make_targets(x, seeds: Sequence[int], conditions: Sequence[tuple], tag: int, M: float = 1e5,
                 target_width: int = 64, target_depth: int = 2) -> jax.Array:
    """Targets ``(C * S, N, 1)`` for every (condition, seed), condition-major:
    ``y[c * S + s] = offset_c + alpha_c * smooth_s + hf_s`` (:func:`target_parts`).

    Args:
      x: ``(N, D)`` inputs.
      seeds: S ints; seed ``s`` draws its target networks from ``fold_in(PRNGKey(s), tag)``
        (the same networks for every condition, so conditions differ only in
        ``offset`` / ``alpha``).
      conditions: C pairs ``(offset, alpha)``.
      tag: :data:`PRETRAIN_TAG` or :data:`FINETUNE_TAG`.
      M, target_width, target_depth: see ``tasks.random_network_targets``.

    The parts are computed one seed at a time by the same compiled program
    (``jax.lax.map``), because ``sin(1e5 f)`` amplifies the float rounding of ``f``, and
    rounding can depend on how a computation is batched: this way a seed's targets do
    not depend on which other seeds and conditions are in the run (the network with and
    without layer norm, or a run with fewer offsets, see exactly the same targets).
    """
    x = jnp.asarray(x, jnp.float32)
    keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(int(s)), tag) for s in seeds])
    hf, sm = jax.jit(lambda ks: jax.lax.map(lambda k: target_parts(k, x, M, target_width, target_depth), ks))(keys)
    offs = jnp.asarray([float(c[0]) for c in conditions], jnp.float32)[:, None, None]
    alphas = jnp.asarray([float(c[1]) for c in conditions], jnp.float32)[:, None, None]
    y = offs + alphas * sm[None] + hf[None]  # (C, S, N)
    return y.reshape(-1, x.shape[0], 1).astype(jnp.float32)


# ------------------------------------------------------------------------ training


def run_phase(network, cfg: train.TrainConfig, x, y, model_seeds: Sequence[int], num_steps: int,
              log_every: int, init_params=None, chunk_steps: Optional[int] = None,
              progress: bool = True, desc: str = "") -> tuple:
    """Train M models (one per row of ``y``) from scratch or from ``init_params``.

    A fresh optimizer state (``train.init_state``; with ``init_params`` the models start
    from those parameters: "fine-tuning with a fresh optimizer"). The steps run in
    ``train.train_steps`` calls of ``chunk_steps`` steps (one compiled program, reused),
    so a progress bar can show them.

    Args:
      network, cfg: model and training configuration (``cfg.loss == "mse"``).
      x: ``(N, D)`` inputs, shared. y: ``(M, N, 1)`` per-model targets.
      model_seeds: M ints (``init_state`` keys: initial params, minibatches).
      num_steps, log_every: steps and logging window (``log_every`` divides
        ``chunk_steps``, which divides ``num_steps``).
      init_params: params tree with a leading axis M, or None.
    Returns:
      ``(state, logs)``: final ``TrainState`` and ``{name: (M, num_steps // log_every)}``
      numpy logs (``"loss"`` is the mean minibatch loss of each window).
    """
    x = jnp.asarray(x, jnp.float32)
    m = int(y.shape[0])
    if len(model_seeds) != m:
        raise ValueError(f"len(model_seeds)={len(model_seeds)} does not match y.shape[0]={m}")
    chunk = num_steps if chunk_steps is None else min(int(chunk_steps), num_steps)
    if num_steps % chunk or chunk % log_every:
        raise ValueError(f"chunk_steps={chunk} must divide num_steps={num_steps} and be a multiple of log_every={log_every}")
    state = train.init_state(network, cfg, list(model_seeds), x[:2], init_params=init_params)
    # Inputs and mask shared by the M models (stored once), targets per model.
    task = tasks.Task(x, jnp.asarray(y, jnp.float32), jnp.ones((x.shape[0],), jnp.float32))
    axes = (None, 0, None)
    bar = progress_bar(num_steps, desc=desc or f"{m} models", unit="step", enabled=progress)
    parts: list = []
    for _ in range(num_steps // chunk):
        state, logs = train.train_steps(network, cfg, state, task, chunk, log_every=log_every, task_batched=axes)
        logs = jax.device_get(logs)
        parts.append(logs)
        bar.update(chunk)
        bar.set_postfix(loss=f"{np.nanmean(logs['loss'][:, -1]):.4g}")
    bar.close()
    out = {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
    return jax.device_get(state), out


def feature_diagnostics(network, params, x_probe) -> dict:
    """Penultimate-feature spectrum and the Fig. 15 projection for every model.

    Args:
      params: params tree with a leading model axis M. x_probe: ``(n, D)`` inputs.
    Returns:
      numpy dict: ``sv`` ``(M, min(n, d))`` singular values (descending, uncentred),
      ``top_mean`` ``(M,)`` mean over inputs of the output carried by the top singular
      direction, ``top_per_input`` ``(M, n)``, ``bias`` ``(M,)`` final-layer bias,
      ``output_mean`` ``(M,)`` mean network output, ``feature_norm`` ``(M,)``,
      ``dead_fraction`` ``(M,)`` share of penultimate units that are zero on every probe
      input (``diagnostics.units.dead_units``).
    """
    x_probe = jnp.asarray(x_probe, jnp.float32)

    @jax.jit
    def one(p):
        out, inter = network.apply_with_intermediates(p, x_probe)
        feats = inter.features
        head = p["Head"]
        top = representation.top_singular_direction_output(feats, head["kernel"], head.get("bias"))
        return {
            "sv": representation.singular_values(feats),
            "top_mean": top["mean"][0],
            "top_per_input": top["per_input"][:, 0],
            "bias": top["bias"][0],
            "output_mean": jnp.mean(out[:, 0]),
            "feature_norm": representation.feature_norm(feats),
            "dead_fraction": jnp.mean(units.dead_units(feats).astype(jnp.float32)),
        }

    return {k: np.asarray(v) for k, v in jax.device_get(jax.lax.map(one, params)).items()}


@dataclasses.dataclass
class OffsetRun:
    """Pretrain -> fine-tune results of one network (``norm``) over conditions and seeds.

    Attributes:
      norm: ``"none"`` or ``"layer"``.
      seeds: ``(S,)``.
      pre_conditions: C pairs ``(offset, alpha)`` of pretraining.
      jobs: J triples ``(pre_index, ft_offset, ft_alpha)`` of fine-tuning.
      pre_logs / ft_logs: ``{name: (C | J, S, W)}`` windowed minibatch logs.
      pre_log_every / ft_log_every: window lengths (steps).
      pre_diag / ft_diag: :func:`feature_diagnostics` after pretraining / fine-tuning,
        each entry reshaped to ``(C | J, S, ...)``.
      pre_diverged / ft_diverged: ``(C | J, S)`` bool.
      wall_time_s: wall time of this network's runs.
    """

    norm: str
    seeds: np.ndarray
    pre_conditions: list
    jobs: list
    pre_logs: dict
    ft_logs: dict
    pre_log_every: int
    ft_log_every: int
    pre_diag: dict
    ft_diag: dict
    pre_diverged: np.ndarray
    ft_diverged: np.ndarray
    wall_time_s: float

    def pre_index(self, offset: float, alpha: float = 0.0) -> int:
        """Index of the pretraining condition ``(offset, alpha)``."""
        key = (float(offset), float(alpha))
        for i, c in enumerate(self.pre_conditions):
            if (float(c[0]), float(c[1])) == key:
                return i
        raise KeyError(f"no pretraining condition {key}; have {self.pre_conditions}")

    def job_index(self, pre_offset: float, ft_offset: float, pre_alpha: float = 0.0, ft_alpha: float = 0.0) -> int:
        """Index of the fine-tuning job from ``(pre_offset, pre_alpha)`` to ``(ft_offset, ft_alpha)``."""
        c = self.pre_index(pre_offset, pre_alpha)
        key = (c, float(ft_offset), float(ft_alpha))
        for j, job in enumerate(self.jobs):
            if (int(job[0]), float(job[1]), float(job[2])) == key:
                return j
        raise KeyError(f"no fine-tuning job {key}")

    def final_loss(self, pre_offset: float, target: str = "zero", pre_alpha: float = 0.0) -> np.ndarray:
        """``(S,)`` final fine-tuning loss (mean minibatch loss over the last
        :data:`FINAL_WINDOW` steps) after pretraining on ``(pre_offset, pre_alpha)`` and
        fine-tuning on ``target``: ``"zero"`` (offset 0, alpha 0) or ``"same"`` (offset
        ``pre_offset``, alpha 0)."""
        ft_offset = {"zero": 0.0, "same": float(pre_offset)}[target]
        j = self.job_index(pre_offset, ft_offset, pre_alpha, 0.0)
        return self.ft_logs["loss"][j, :, -1]

    def final_pretrain_loss(self, offset: float, alpha: float = 0.0) -> np.ndarray:
        """``(S,)`` final pretraining loss (last window)."""
        return self.pre_logs["loss"][self.pre_index(offset, alpha), :, -1]


def _dedupe(items):
    out: list = []
    for it in items:
        if it not in out:
            out.append(it)
    return out


def pretrain_finetune(network, cfg: train.TrainConfig, x, seeds: Sequence[int], pre_conditions: Sequence[tuple],
                      ft_targets: Sequence[tuple], pre_steps: int, ft_steps: int, x_probe, pre_log_every: int = 50,
                      ft_log_every: int = FINAL_WINDOW, chunk_steps: Optional[int] = None, M: float = 1e5,
                      progress: bool = True, label: str = "") -> OffsetRun:
    """Pretrain every ``(offset, alpha)`` condition, then run the fine-tuning jobs.

    Args:
      network: the model (``num_outputs=1``). cfg: ``TrainConfig(loss="mse", ...)``.
      x: ``(N, D)`` training inputs. seeds: S ints. x_probe: ``(n, D)`` probe inputs.
      pre_conditions: pairs ``(offset, alpha)`` (duplicates are trained once).
      ft_targets: 4-tuples ``(pre_offset, pre_alpha, ft_offset, ft_alpha)``: fine-tune the
        model pretrained on ``(pre_offset, pre_alpha)`` on targets ``(ft_offset,
        ft_alpha)`` (duplicates are trained once).
      pre_steps / ft_steps: Adam steps of each phase.
      pre_log_every / ft_log_every: logging windows; the final fine-tuning loss is the
        last ``ft_log_every``-step window (10 in App. E.1).
      chunk_steps: steps per compiled call (progress granularity); must divide both
        phases' step counts.
    Returns:
      :class:`OffsetRun`.
    """
    t0 = time.perf_counter()
    seeds = [int(s) for s in seeds]
    S = len(seeds)
    pre = _dedupe([(float(o), float(a)) for o, a in pre_conditions])
    jobs = []
    for po, pa, fo, fa in ft_targets:
        c = pre.index((float(po), float(pa)))
        jobs.append((c, float(fo), float(fa)))
    jobs = _dedupe(jobs)
    x = jnp.asarray(x, jnp.float32)
    norm = network.cfg.norm
    tag = label or f"norm={norm}"

    y_pre = make_targets(x, seeds, pre, PRETRAIN_TAG, M)
    state, pre_logs = run_phase(network, cfg, x, y_pre, seeds * len(pre), pre_steps, pre_log_every,
                                chunk_steps=chunk_steps, progress=progress,
                                desc=f"pretrain {tag}: {len(pre)} targets x {S} seeds")
    pre_params = state.params
    pre_div = np.asarray(state.diverged).reshape(len(pre), S)
    pre_diag = feature_diagnostics(network, pre_params, x_probe)
    del y_pre

    # fine-tuning: model (j, s) starts from pretrained model (jobs[j][0], s)
    src = np.asarray([jobs[j][0] * S + s for j in range(len(jobs)) for s in range(S)])
    init = jax.tree_util.tree_map(lambda a: np.asarray(a)[src], pre_params)
    y_ft = make_targets(x, seeds, [(fo, fa) for _, fo, fa in jobs], FINETUNE_TAG, M)
    ft_seeds = [s + FINETUNE_SEED_SHIFT for s in seeds] * len(jobs)
    state, ft_logs = run_phase(network, cfg, x, y_ft, ft_seeds, ft_steps, ft_log_every, init_params=init,
                               chunk_steps=chunk_steps, progress=progress,
                               desc=f"fine-tune {tag}: {len(jobs)} jobs x {S} seeds")
    ft_div = np.asarray(state.diverged).reshape(len(jobs), S)
    ft_diag = feature_diagnostics(network, state.params, x_probe)

    def shape(d, c):
        return {k: v.reshape((c, S) + v.shape[1:]) for k, v in d.items()}

    return OffsetRun(
        norm=norm, seeds=np.asarray(seeds), pre_conditions=pre, jobs=jobs,
        pre_logs=shape(pre_logs, len(pre)), ft_logs=shape(ft_logs, len(jobs)),
        pre_log_every=pre_log_every, ft_log_every=ft_log_every,
        pre_diag=shape(pre_diag, len(pre)), ft_diag=shape(ft_diag, len(jobs)),
        pre_diverged=pre_div, ft_diverged=ft_div, wall_time_s=time.perf_counter() - t0,
    )


def offset_experiment(x, x_probe, *, seeds: Sequence[int], offsets: Sequence[float], alphas: Sequence[float],
                      width: int, depth: int, norms: Sequence[str] = ("none", "layer"), batch_size: int = 128,
                      learning_rate: float = 1e-3, pre_steps: int = 1000, ft_steps: int = 1000,
                      pre_log_every: int = 50, chunk_steps: Optional[int] = None, arch: str = "mlp",
                      progress: bool = True) -> dict:
    """The chapter's whole protocol: ``{norm: OffsetRun}``.

    For every norm: pretrain on offsets ``b`` (alpha 0), fine-tune each on offset ``b``
    ("same") and 0 ("zero"). For ``norm == "none"`` also pretrain on the zero-mean
    alpha-scaled targets (offset 0, ``alpha`` in ``alphas``) and fine-tune them on
    alpha = 0, offset 0 targets (Fig. 16). MLP on flattened inputs (``arch="mlp"``) or
    the CNN of App. B.1 (``arch="cnn"``, inputs ``(N, H, W, C)``).
    """
    runs = {}
    for norm in norms:
        net = make_network(ModelConfig(arch=arch, width=width, depth=depth, norm=norm, num_outputs=1))
        cfg = train.TrainConfig(loss="mse", batch_size=batch_size, learning_rate=learning_rate)
        pre = [(float(b), 0.0) for b in offsets]
        ft = [(float(b), 0.0, float(b), 0.0) for b in offsets] + [(float(b), 0.0, 0.0, 0.0) for b in offsets]
        if norm == "none":
            pre += [(0.0, float(a)) for a in alphas]
            ft += [(0.0, float(a), 0.0, 0.0) for a in alphas]
        runs[norm] = pretrain_finetune(net, cfg, x, seeds, pre, ft, pre_steps, ft_steps, x_probe,
                                       pre_log_every=pre_log_every, chunk_steps=chunk_steps, progress=progress,
                                       label="no norm" if norm == "none" else f"norm={norm}")
    return runs


# ---------------------------------------------------------------------- statistics


def spearman_estimate(samples: np.ndarray, doses: Sequence[float]) -> claims.Estimate:
    """Spearman correlation of ``doses`` with the seed-mean of ``samples`` ``(S, len(doses))``
    (``claims.spearman``, exact rational arithmetic), with a percentile bootstrap over seeds
    (``claims.bootstrap_interval``)."""
    doses = np.asarray(doses, np.float64)
    x = np.asarray(samples, np.float64)
    if x.ndim != 2 or x.shape[1] != doses.size:
        raise ValueError(f"samples must be (seeds, {doses.size}), got {x.shape}")
    return claims.bootstrap_interval(x, lambda s: claims.spearman(doses, s.mean(axis=0)))


def ratio_estimate(numerator: np.ndarray, denominator: np.ndarray) -> claims.Estimate:
    """``mean(numerator) / mean(denominator)`` over seeds, bootstrap over seeds (paired:
    seed ``i`` of both arrays is resampled together)."""
    pair = np.stack([np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)], axis=1)
    return claims.bootstrap_interval(pair, lambda s: s[:, 0].mean() / s[:, 1].mean())


def difference_of_ratios_estimate(num_a, den_a, num_b, den_b) -> claims.Estimate:
    """``mean(num_a)/mean(den_a) - mean(num_b)/mean(den_b)``, paired bootstrap over seeds."""
    st = np.stack([np.asarray(v, np.float64) for v in (num_a, den_a, num_b, den_b)], axis=1)
    return claims.bootstrap_interval(
        st, lambda s: s[:, 0].mean() / s[:, 1].mean() - s[:, 2].mean() / s[:, 3].mean())


# -------------------------------------------------------------------- tidy frames


def dose_frame(runs: dict, offsets: Sequence[float]):
    """Long DataFrame of final fine-tuning losses: columns ``network``, ``target``
    (same / zero offset), ``offset``, ``seed``, ``loss``."""
    import pandas as pd

    rows = []
    for norm, run in runs.items():
        net = "no normalization" if norm == "none" else "layer norm"
        for target in ("same", "zero"):
            for b in offsets:
                for s, v in zip(run.seeds, run.final_loss(b, target)):
                    rows.append({"network": net, "target": f"{target} offset", "offset": float(b),
                                 "seed": int(s), "loss": float(v)})
    return pd.DataFrame(rows)


def curve_frame(logs: np.ndarray, log_every: int, seeds, skip_steps: int = 0, every: int = 1, **labels):
    """Long DataFrame ``(seed, step, loss)`` from ``(S, W)`` windowed losses (window
    ``log_every`` steps, the point at the window's end), dropping windows that end at or
    before ``skip_steps`` and keeping every ``every``-th window."""
    import pandas as pd

    S, W = logs.shape
    steps = (np.arange(W) + 1) * log_every
    keep = np.nonzero(steps > skip_steps)[0][::every]
    df = pd.DataFrame({
        "seed": np.repeat(np.asarray(seeds), keep.size),
        "step": np.tile(steps[keep], S),
        "loss": logs[:, keep].reshape(-1),
    })
    for k, v in labels.items():
        df[k] = v
    return df


# ------------------------------------------------------------------------- claims


def claim_estimates(runs: dict, offsets: Sequence[float], alphas: Sequence[float]) -> dict:
    """The statistics of the chapter's claims (issue 5), as ``claims.Estimate`` s.

    ``runs``: ``{"none": OffsetRun, "layer": OffsetRun}``; ``offsets`` start at 0 and end
    at ``b_max``; ``alphas[-1]`` is the largest alpha of the control. Keys:

    * ``rho_same`` / ``rho_zero``: Spearman ρ(b, seed-mean final loss), no norm;
    * ``ratio_same`` / ``ratio_zero``: loss(b_max) / loss(0), ratio of seed-means, no norm;
    * ``ratio_zero_ln``: the same with layer norm, zero-offset targets;
    * ``ratio_zero_gap``: ``ratio_zero - ratio_zero_ln`` (paired bootstrap);
    * ``sigma1_growth`` / ``sigma1_growth_ln``: σ₁(b_max) / σ₁(0) of the penultimate
      features after pretraining (ratio of seed-means);
    * ``sigma21_change_ln``: (σ₂/σ₁)(b_max) / (σ₂/σ₁)(0), layer norm;
    * ``top_mean_over_b``: mean over inputs of the output carried by the top singular
      direction at b_max, divided by b_max (t-interval), no norm;
    * ``bias_over_b``: |final-layer bias| / b_max (t-interval), no norm;
    * ``alpha_ratio``: zero-target fine-tuning loss after pretraining on alpha_max
      zero-mean targets over that after alpha = 0 (= b = 0) pretraining.
    All bootstrap intervals resample seeds (paired across conditions).
    """
    offsets = [float(b) for b in offsets]
    if offsets[0] != 0.0:
        raise ValueError(f"offsets must start at 0, got {offsets}")
    b0, bmax = offsets[0], offsets[-1]
    none, ln = runs["none"], runs["layer"]

    def losses(run, target):
        return np.stack([run.final_loss(b, target) for b in offsets], axis=1)  # (S, B)

    def sv(run, b, k):
        return run.pre_diag["sv"][run.pre_index(b), :, k]

    out = {}
    for target in ("same", "zero"):
        L = losses(none, target)
        out[f"rho_{target}"] = spearman_estimate(L, offsets)
        out[f"ratio_{target}"] = ratio_estimate(L[:, -1], L[:, 0])
    Lz, Lz_ln = losses(none, "zero"), losses(ln, "zero")
    out["ratio_zero_ln"] = ratio_estimate(Lz_ln[:, -1], Lz_ln[:, 0])
    out["ratio_zero_gap"] = difference_of_ratios_estimate(Lz[:, -1], Lz[:, 0], Lz_ln[:, -1], Lz_ln[:, 0])
    out["sigma1_growth"] = ratio_estimate(sv(none, bmax, 0), sv(none, b0, 0))
    out["sigma1_growth_ln"] = ratio_estimate(sv(ln, bmax, 0), sv(ln, b0, 0))
    out["sigma21_change_ln"] = ratio_estimate(sv(ln, bmax, 1) / sv(ln, bmax, 0), sv(ln, b0, 1) / sv(ln, b0, 0))
    i = none.pre_index(bmax)
    out["top_mean_over_b"] = claims.t_interval(none.pre_diag["top_mean"][i] / bmax)
    out["bias_over_b"] = claims.t_interval(np.abs(none.pre_diag["bias"][i]) / bmax)
    amax = float(alphas[-1])
    out["alpha_ratio"] = ratio_estimate(none.final_loss(0.0, "zero", pre_alpha=amax), none.final_loss(0.0, "zero"))
    return out
