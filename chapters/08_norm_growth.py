# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Parameter norm growth: sharpness and mechanisms over many tasks
#
# *Reproduces §3.2 "Parameter norm growth" (Fig. 3, left) of
# {cite}`lyle2024disentangling`; App. E.2 (Fig. 17) is not yet implemented (see the end).*
#
# ## What the paper claims
#
# On iterated random labels the parameter norm grows from task to task; in networks
# without normalisation the norm correlates with the sharpness (the top eigenvalue of
# the Hessian of the training loss); with layer normalisation performance on new tasks
# degrades smoothly as the norm grows; without normalisation the norm shows rapid early
# increases followed by plateaus, which the paper attributes to saturated nonlinearities.

# %% tags=["hide-input"]
import sys

if "google.colab" in sys.modules:  # in Colab: install the library (elsewhere this does nothing)
    import importlib
    import importlib.metadata
    import os
    import subprocess

    BOOK_REF = "v0.1.0"  # the release of the library this book was built from
    REPO = "https://github.com/plasticity-book/plasticity-loss-book"
    try:
        installed = importlib.metadata.version("plasticity-lib")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != BOOK_REF.removeprefix("v"):
        # hold Colab's own packages at their versions: pip adds only what Colab lacks
        keep = []
        for name in (
            "jax",
            "jaxlib",
            "jax-cuda12-plugin",
            "jax-cuda12-pjrt",
            "ml-dtypes",
            "numpy",
            "scipy",
            "pandas",
            "matplotlib",
            "flax",
            "optax",
            "protobuf",
            "tensorflow",
            "tensorflow-datasets",
            "keras",
        ):
            try:
                keep.append(f"{name}=={importlib.metadata.version(name)}\n")
            except importlib.metadata.PackageNotFoundError:
                pass
        with open("/tmp/colab-constraints.txt", "w") as f:
            f.writelines(keep)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "-c",
                "/tmp/colab-constraints.txt",
                f"plasticity-lib[colab] @ git+{REPO}@{BOOK_REF}",
            ],
            check=True,
        )
        importlib.invalidate_caches()
    os.environ.setdefault("PLASTICITY_DATA_DIR", "/content/data")

# %%
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
import pandas as pd
from IPython.display import Markdown, display

from plasticity_lib import claims, data, keys, plotting, profiles, runner, stats, tasks, train
from plasticity_lib.diagnostics import curvature, representation, units
from plasticity_lib.models import ModelConfig, make_network

plotting.set_theme()

# %% [markdown]
# ## Setup
#
# The `parameters` cell is read by papermill: `profile` picks a row of the profile table,
# any other name overrides one field (`None` keeps the profile's value).

# %% tags=["parameters"]
profile = "default"  # smoke | default | paper
seed_offset = None  # first claim seed
seeds = None  # number of claim seeds, vmapped together
dataset = None  # mnist | fashion_mnist | cifar10
arch = None  # mlp | cnn
n_train = None  # images of the subset
width = None  # hidden width
depth = None  # hidden layers
num_tasks = None  # random-label tasks
steps_per_task = None  # Adam steps per task
batch_size = None  # minibatch size
hessian_batch = None  # fixed batch of the Hessian
hessian_max_iters = None  # power-iteration cap per phase

# %%
P = profiles.resolve_notebook("ch08_norm_growth", globals())
profiles.show("ch08_norm_growth")
#: The architectures of Part A: label -> (activation, normalisation).
ARCHS = {
    "ReLU": ("relu", "none"),
    "ReLU + LN": ("relu", "layer"),
    "tanh": ("tanh", "none"),
    "ReLU + BN": ("relu", "batch"),
}
NO_NORM = ["ReLU", "tanh"]
CALIBRATION_SEEDS = [1000, 1001]  # separate from the claim seeds
CALIBRATION_WINDOW = (90.0, 99.0)

# %% [markdown]
# ```{list-table}
# :header-rows: 1
# :widths: 20 30 30 20
# * - setting
#   - paper (§3.2)
#   - this chapter, default profile
#   - why
# * - data
#   - CIFAR-10, 15 million steps
#   - MNIST subset of `n_train` images, `num_tasks` tasks of `steps_per_task` steps
#   - 2-core CPU budget
# * - networks
#   - CNN, ResNet-18, MLPs
#   - MLP `width` × `depth`: ReLU, ReLU + LN, tanh, ReLU + BN
#   - the default profile
# * - plasticity measure
#   - performance on new tasks
#   - end-of-task accuracy (the issue allows it in place of the scorecard's measure)
#   - time; the scorecard's `plasticity_measure` is not yet computed here
# * - sharpness
#   - top Hessian eigenvalue
#   - power iteration with HVPs on a fixed batch of `hessian_batch` images with the current
#     task's labels, stopped when the estimate changes by less than the relative
#     tolerance `hessian_rtol`
#   - the issue
# ```

# %%
flatten = P.arch == "mlp"
try:
    ds = data.load_dataset(
        P.dataset, n=P.n_train, seed=0, flatten=flatten, allow_fallback=P.allow_fallback
    )
except Exception as e:  # noqa: BLE001 - a missing dataset is reported clearly
    raise RuntimeError(
        f"chapter 8 needs the {P.dataset!r} dataset under PLASTICITY_DATA_DIR "
        f"(tensorflow-datasets layout); it could not be loaded: {e}"
    ) from e
print(f"data: {ds.source}, x {ds.x.shape}, {ds.num_classes} classes")
x = jnp.asarray(ds.x, jnp.float32)
seed_list = np.arange(P.seed_offset, P.seed_offset + P.seeds)
stream = tasks.random_labels(x, ds.num_classes)
new_tasks = jax.jit(jax.vmap(stream.init))  # (S, 2) keys -> one task per seed
xh = x[: P.hessian_batch]


def model_config(activation: str, norm: str) -> ModelConfig:
    if P.arch == "cnn":
        return ModelConfig(
            arch="cnn",
            depth=P.depth,
            width=P.width,
            activation=activation,
            norm=norm,
            num_outputs=ds.num_classes,
        )
    return ModelConfig(
        arch="mlp",
        depth=P.depth,
        width=P.width,
        activation=activation,
        norm=norm,
        num_outputs=ds.num_classes,
    )


cfg = train.TrainConfig(learning_rate=P.learning_rate, batch_size=P.batch_size)


# %% [markdown]
# ## Calibration (separate seeds)
#
# A fresh ReLU network should reach `90–99 %` on the first task (the window). We
# check the profile's
# `n_train` and `steps_per_task` on the calibration seeds before the claim seeds run.


# %%
def first_task_accuracy(activation="relu", norm="none") -> np.ndarray:
    network = make_network(model_config(activation, norm))
    roots = keys.task_root(np.asarray(CALIBRATION_SEEDS))
    task = new_tasks(keys.task_keys(roots, 0))
    state = train.init_state(network, cfg, CALIBRATION_SEEDS, x[:2])
    state, _ = train.train_steps(network, cfg, state, task, P.steps_per_task, task_batched=True)
    end = train.evaluate(network, state.params, task.x, task.y, task_batched=True)
    return 100.0 * np.asarray(end["accuracy"])


calibration = first_task_accuracy()
CAL_IN = bool(
    np.all((calibration >= CALIBRATION_WINDOW[0]) & (calibration <= CALIBRATION_WINDOW[1]))
)
print(f"calibration first-task accuracy (%): {calibration}, in window: {CAL_IN}")


# %% [markdown]
# ## Training and task-end readouts
#
# Each architecture trains all claim seeds in one vmapped program; each task is one jitted
# `lax.scan` (`train.train_steps`). At each task end a vmapped readout computes the
# global and per-layer parameter norms, the sharpness, the dead and linearized (R²
# criterion of chapter 3) unit fractions, and the drift of the preactivation means and
# standard deviations from initialisation (in units of the initial standard deviation).


# %%
def make_readout(network, activation):
    def xent(params, xb, yb):
        logits = network.apply(params, xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    def one(params, params0, yb, key):
        lam, _, rel = curvature.hessian_extreme_eigenvalues_converged(
            lambda p: xent(p, xh, yb), params, key, P.hessian_rtol, 5, P.hessian_max_iters
        )
        _, inter = network.apply_with_intermediates(params, xh)
        _, inter0 = network.apply_with_intermediates(params0, xh)
        dead, shift = units.drift_readouts(inter.acts, inter.preacts, inter0.preacts)
        lin = units.linearized_r2_fraction(inter.preacts, activation)[1]
        sd = jnp.mean(
            jnp.stack(
                [
                    jnp.mean(
                        jnp.abs(
                            z.reshape(-1, z.shape[-1]).std(0) - z0.reshape(-1, z0.shape[-1]).std(0)
                        )
                        / (z0.reshape(-1, z0.shape[-1]).std(0) + 1e-8)
                    )
                    for z, z0 in zip(inter.preacts, inter0.preacts)
                ]
            )
        )
        norms = representation.parameter_norms(params)
        return dict(
            norm=representation.global_parameter_norm(params),
            layer_norms=jnp.stack([norms[k] for k in sorted(norms)]),
            sharpness=lam,
            rel_change=rel,
            dead=dead,
            linearized=lin,
            mean_drift=shift,
            std_drift=sd,
        )

    return jax.jit(jax.vmap(one))


timing = {}
results = {}
layer_names = {}
for name, (activation, norm) in ARCHS.items():
    network = make_network(model_config(activation, norm))
    readout = make_readout(network, activation)
    roots = keys.task_root(seed_list)
    state = train.init_state(network, cfg, seed_list, x[:2])
    params0 = state.params
    hkeys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(roots, 7)
    layer_names[name] = sorted(
        representation.parameter_norms(jax.tree.map(lambda a: a[0], params0))
    )

    def one_task(
        carry, t, network=network, readout=readout, roots=roots, params0=params0, hkeys=hkeys
    ):
        state = carry
        task = new_tasks(keys.task_keys(roots, t))
        state, _ = train.train_steps(network, cfg, state, task, P.steps_per_task, task_batched=True)
        end = train.evaluate(network, state.params, task.x, task.y, task_batched=True)
        r = readout(state.params, params0, task.y[:, : P.hessian_batch], hkeys)
        out = dict(r, accuracy=100.0 * end["accuracy"])
        return state, jax.tree.map(lambda a: a[:, None], out)

    wall, cpu = time.perf_counter(), time.process_time()
    state, out = runner.run_chunks(
        one_task,
        state,
        P.num_tasks,
        unit="task",
        desc=f"{name}: {len(seed_list)} seeds",
        checkpoint=profiles.checkpoint_path(P, name.replace(" ", "").replace("+", "_")),
    )
    timing[name] = (time.process_time() - cpu, time.perf_counter() - wall)
    results[name] = {k: np.asarray(v, np.float64) for k, v in out.items()}

print({k: f"{w:.1f} s wall, {c:.1f} s CPU" for k, (c, w) in timing.items()})
max_rel = max(float(np.nanmax(r["rel_change"])) for r in results.values())
print(f"largest final relative change of the power iteration: {max_rel:.4f}")

# %% [markdown]
# ## Parameter norm and sharpness over tasks (Fig. 3, left)

# %%
task_axis = np.arange(1, P.num_tasks + 1)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
for name, r in results.items():
    axes[0].plot(task_axis, r["norm"].mean(0), marker="o", ms=3, label=name)
    sc = axes[1].scatter(
        r["norm"].ravel(),
        r["sharpness"].ravel(),
        c=r["accuracy"].ravel(),
        cmap="viridis",
        vmin=0,
        vmax=100,
        s=12,
        label=name,
    )
    axes[2].plot(task_axis, r["accuracy"].mean(0), marker="o", ms=3, label=name)
axes[0].set(xlabel="task", ylabel=r"parameter norm $\|\theta\|_2$")
axes[1].set(
    xlabel=r"parameter norm $\|\theta\|_2$", ylabel=r"top Hessian eigenvalue", yscale="symlog"
)
axes[2].set(xlabel="task", ylabel="end-of-task accuracy (%)")
fig.colorbar(sc, ax=axes[1], label="end-of-task accuracy (%)")
axes[0].legend(fontsize=8)
fig.tight_layout()
plotting.figure(fig, "ch08_norm_sharpness", P.profile)

# %% [markdown]
# ```{glue:figure} ch08_norm_sharpness
# ---
# name: fig-ch08-norm-sharpness
# alt: Three panels. Parameter norm against task per architecture; top Hessian eigenvalue
#   against parameter norm, one point per seed and task, coloured by end-of-task accuracy;
#   end-of-task accuracy against task per architecture.
# ---
# Left: the global parameter norm at each task end (mean over seeds). Middle: sharpness
# against norm at every task end of every seed (colour: end-of-task accuracy). Right: the
# end-of-task accuracy.
# ```

# %% [markdown]
# ## Mechanism readouts per task

# %%
fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
for name, r in results.items():
    for ax, key in zip(axes, ("dead", "linearized", "mean_drift", "std_drift")):
        ax.plot(task_axis, r[key].mean(0), marker="o", ms=3, label=name)
for ax, lab in zip(
    axes,
    (
        "dead-unit fraction",
        "linearized-unit fraction (R²)",
        "preactivation mean drift (init. sd)",
        "preactivation sd drift (relative)",
    ),
):
    ax.set(xlabel="task", ylabel=lab)
axes[0].legend(fontsize=8)
fig.tight_layout()
plotting.figure(fig, "ch08_mechanisms", P.profile)

# %% [markdown]
# ```{glue:figure} ch08_mechanisms
# ---
# name: fig-ch08-mechanisms
# alt: Four panels against task, one line per architecture: dead-unit fraction,
#   linearized-unit fraction, preactivation mean drift and standard-deviation drift.
# ---
# Mechanism readouts at each task end on the fixed batch (means over seeds): dead units,
# linearized units (chapter 3's R² criterion), and the drift of each unit's preactivation
# mean (in units of its initial standard deviation) and standard deviation (relative to
# its initial value) from initialisation.
# ```

# %% [markdown]
# ## Claims

# %%
book = claims.ClaimBook("ch08_norm_growth", P, dataset=ds.source)
book.check(
    "ch8.norm_grows",
    statement="In every architecture the global parameter norm at the last task end is "
    "larger than at the first.",
    figure="§3.2, Fig. 3 (left)",
    parts=[
        claims.part(
            f"{name}: norm last / first task end",
            claims.t_interval(r["norm"][:, -1] / r["norm"][:, 0], drop_nonfinite=True),
            1.0,
            ">",
        )
        for name, r in results.items()
    ],
)
book.check(
    "ch8.sharpness_tracks_norm",
    statement="Without normalisation, parameter norm and top Hessian eigenvalue correlate "
    "over the task ends of a seed (Spearman above 0.5).",
    figure="§3.2, Fig. 3 (left)",
    parts=[
        claims.part(
            f"{name}: Spearman(norm, sharpness) per seed",
            claims.t_interval(
                stats.spearman_per_seed(results[name]["norm"], results[name]["sharpness"]),
                drop_nonfinite=True,
            ),
            0.5,
            ">",
        )
        for name in NO_NORM
    ],
)
ln = results["ReLU + LN"]
ln_first, ln_last = stats.first_last_means(ln["accuracy"])
ln_declines = claims.part(
    "ReLU + LN: last-3 minus first-3 end-of-task accuracy (points)",
    claims.t_interval(ln_last - ln_first, drop_nonfinite=True),
    0.0,
    "<",
)
book.check(
    "ch8.ln_smooth_decline",
    statement="With layer normalisation, end-of-task accuracy declines as the norm grows "
    "(per-seed Spearman(norm, accuracy) below -0.5).",
    figure="§3.2",
    parts=[
        claims.part(
            "ReLU + LN: Spearman(norm, end-of-task accuracy) per seed",
            claims.t_interval(
                stats.spearman_per_seed(ln["norm"], ln["accuracy"]), drop_nonfinite=True
            ),
            -0.5,
            "<",
            baseline_loses=ln_declines,
        )
    ],
    note=f"decline guard: {claims.format_estimate(ln_declines.estimate)} ({ln_declines.verdict})",
)
half = P.num_tasks // 2
relu = results["ReLU"]["norm"]
book.check(
    "ch8.plateau_without_norm",
    statement="Without normalisation (ReLU) the norm grows less than half as much over the "
    "second half of the tasks as over the first.",
    figure="§3.2",
    statistic="ReLU: norm growth second half / first half (per seed)",
    estimate=claims.t_interval(
        (relu[:, -1] - relu[:, half - 1]) / (relu[:, half - 1] - relu[:, 0]), drop_nonfinite=True
    ),
    threshold=0.5,
    direction="<",
)
book.check(
    "ch8.preact_drift",
    kind="extension",
    statement="Without normalisation the preactivation mean drift grows from the first to the "
    "last task end; with batch normalisation it stays below 0.1.",
    figure="mechanism readouts",
    parts=[
        *[
            claims.part(
                f"{name}: mean drift last minus first task end",
                claims.t_interval(
                    results[name]["mean_drift"][:, -1] - results[name]["mean_drift"][:, 0],
                    drop_nonfinite=True,
                ),
                0.0,
                ">",
            )
            for name in NO_NORM
        ],
        claims.part(
            "ReLU + BN: mean drift at the last task end",
            claims.t_interval(results["ReLU + BN"]["mean_drift"][:, -1], drop_nonfinite=True),
            0.1,
            "<",
        ),
    ],
)
book.table()

# %%
book.save()
summary = pd.DataFrame(
    {
        name: {
            "norm, first task": r["norm"][:, 0].mean(),
            "norm, last task": r["norm"][:, -1].mean(),
            "sharpness, first task": r["sharpness"][:, 0].mean(),
            "sharpness, last task": r["sharpness"][:, -1].mean(),
            "accuracy, first task (%)": r["accuracy"][:, 0].mean(),
            "accuracy, last task (%)": r["accuracy"][:, -1].mean(),
            "dead, last task": r["dead"][:, -1].mean(),
            "linearized, last task": r["linearized"][:, -1].mean(),
            "mean drift, last task": r["mean_drift"][:, -1].mean(),
        }
        for name, r in results.items()
    }
).T
summary.round(3)


# %% [markdown]
# ## What we found


# %% tags=["remove-input"]
def est(claim_id, i=0):
    rec = next(c for c in book.claims if c.id == claim_id)
    return "; ".join(
        f"{p.statistic}: {claims.format_estimate(p.estimate)} ({p.verdict})" for p in rec.parts
    ) or claims.format_estimate(rec.estimate)


verdicts = {c.id: c.verdict for c in book.claims}
display(
    Markdown(
        f"Calibration on seeds {CALIBRATION_SEEDS}: a fresh ReLU network reaches "
        f"{', '.join(f'{a:.1f} %' for a in calibration)} on the first task "
        f"({'inside' if CAL_IN else 'outside'} the window {CALIBRATION_WINDOW[0]:.0f}–"
        f"{CALIBRATION_WINDOW[1]:.0f} %). The power iteration's largest final relative change "
        f"was {max_rel:.4f}.\n\n"
        + "\n".join(f"* **{cid}** ({v}): {est(cid)}" for cid, v in verdicts.items())
    )
)

# %% [markdown]
# ## Not yet implemented
#
# Part B (App. E.2, Fig. 17: uneven layer growth under three parameterisations on
# drifting regression targets) and its claims `ch8.uneven_growth` and `ch8.uneven_hurts`
# are not yet implemented; nor is the scorecard's plasticity measure (end-of-task
# accuracy stands in for it in `ch8.ln_smooth_decline`).
