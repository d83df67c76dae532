# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Smooth or sudden: the shape of a distribution shift sets its cost in plasticity
#
# *Reproduces §3.1, "Smoothness of distribution shifts", and Fig. 1 (right, and the
# top-left inset) of {cite}`lyle2024disentangling`.*
#
# ## What the paper claims
#
# Sequentially memorising random labellings of a fixed set of images
# {cite}`zhang2017understanding` is a simple way to make a network lose plasticity
# quickly. Prior work {cite}`lyle2023understanding` argued that the *sudden* shift in
# gradient magnitudes at each task change is responsible for much of the damage. §3.1
# tests this directly: at every iteration only a fraction
# $\epsilon$ of the labels is re-randomised, and the run is stretched so that every
# $\epsilon$ gets the same training budget and the same total amount of relabelling.
# The paper (a CNN on CIFAR-10, Fig. 1) finds that **more sudden shifts cost more
# plasticity**: the final accuracy falls as $\epsilon$ grows (top-left inset), and larger
# fractions give more precipitous declines over the run (right). Re-randomising **one
# label in a hundred at a time "minimally interferes with performance"**, one in ten
# already accelerates the decline, and networks with Leaky ReLU show "a slightly smoother
# decrease but otherwise parallel trend". The runs use ReLU, GELU and Leaky ReLU; we test
# the ordering for each of them.

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
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from plasticity_lib import (
    claims,
    data,
    diagnostics,
    keys,
    plotting,
    profiles,
    relabelling,
    runner,
    stats,
    tasks,
    train,
)
from plasticity_lib.models import ModelConfig, make_network

plotting.set_theme()

# %% [markdown]
# ## Setup
#
# The `parameters` cell below is read by papermill: `profile` picks a row of the
# profile table (`smoke`, `default`, `paper`), and any other name overrides one field
# (`None` keeps the profile's value).

# %% tags=["parameters"]
profile = "default"  # smoke | default | paper
seed_offset = None  # first seed (seeds are seed_offset, ..., seed_offset + seeds - 1)
seeds = None  # number of seeds, trained together with vmap
fractions = None  # re-randomised fractions eps
activations = None  # subset of relu, gelu, leaky_relu
iterations = None  # budget, in eps = 1 iterations
iteration_steps = None  # Adam steps of one eps = 1 iteration
n_train = None  # training images
learning_rate = None  # Adam learning rate
measure_steps = None  # K: steps of the plasticity measure on a fresh labelling

# %%
P = profiles.resolve_notebook("ch02_shift_smoothness", globals())
profiles.show("ch02_shift_smoothness")

# %% [markdown]
# | | paper (§3.1, App. B) | this chapter, default profile |
# |---|---|---|
# | data | CIFAR-10, 50,000 images, random labels | 500 MNIST images, pooled to 14 × 14 (a) |
# | network | CNN of App. B.1 (4 conv × 32 channels, 2 dense × 256) | MLP, 2 hidden × 128 (b) |
# | optimiser | Adam, learning rate $10^{-4}$ (B.2) | Adam, learning rate $10^{-3}$, batch 64 (c) |
# | budget | 40 iterations × 100,000 steps | `iterations` × `iteration_steps` above (d) |
# | interval between resets at $\epsilon = 0.01$ | 1,000 steps | `iteration_steps` / 100 steps (d) |
# | fractions $\epsilon$ | $[0.01, 1]$ (the plotted values are not listed) | `fractions` above (e) |
# | activations | ReLU, GELU, Leaky ReLU (slope 0.01) | the same |
# | seeds | not stated | `seeds` above, trained at once with `vmap` (intervals over seeds) |
# | measurement | accuracy on current labels, iteration ends | reported (f); claims: (g) |
#
# Why: (a) CPU budget; with random labels the image content matters little, the number of
# images sets the memorisation load. (b) On a CPU a convolution trains ~100× slower than an
# MLP of similar cost. (c) A larger rate memorises one labelling in a few hundred steps.
# (d) CPU budget. With the paper's schedule the labels re-drawn at $\epsilon = 0.01$ get
# 1,000 steps before the next reset; an earlier version of this chapter gave them 6, so
# that "accuracy on the current labels" mostly measured how far the network lagged
# behind labels changed a few steps before (issue 15). The iterations are now long
# enough for at least 30 steps between resets at $\epsilon = 0.01$, and the budget then
# allows only a few iterations (fewer iterations rather than fewer fractions).
# (e) The grid. (f) Evaluation cost: on the iteration ends that fall on a grid
# of every $S/10$ steps (all of them for $\epsilon \ge 0.1$, every tenth for
# $\epsilon = 0.01$). (g) Below; $K$ = `measure_steps` above.
#
# The paper profile restores the paper's CNN, CIFAR-10 and schedule (Adam $10^{-4}$ as in
# B.2; the batch size, which the paper does not give, is our choice of 128). It needs a GPU
# and was not run for this book.

# %% [markdown]
# ## The protocol
#
# A training set of $N$ images $x_1, \dots, x_N$ gets uniformly random labels
# $y^{(0)}_i \in \{0, \dots, 9\}$. Training runs for a fixed budget of $T S$ Adam steps,
# where $T$ is the number of *iterations* at $\epsilon = 1$ and $S$ the steps per
# iteration. With re-randomised fraction $\epsilon$, the run is cut into $T / \epsilon$
# iterations of $\epsilon S$ steps; at the start of iteration $r \ge 1$ a uniformly random
# set $R_r$ of exactly $\epsilon N$ images gets fresh uniform labels,
#
# $$
# y^{(r)}_i = \begin{cases} u_{r,i} \sim \mathrm{Uniform}\{0, \dots, 9\} & i \in R_r,\\
# y^{(r-1)}_i & \text{otherwise,} \end{cases}
# $$
#
# and training continues from the current parameters and optimiser state. Every
# $\epsilon$ therefore takes the same number of steps, $T S$, and re-draws the same total
# number of labels, $T N$: small $\epsilon$ spreads the same amount of change thinly,
# $\epsilon = 1$ delivers it in $T$ sudden shocks. The measurement is the accuracy on the
# **current** labels over the whole training set at the end of each iteration,
# $A_\epsilon(s)$, where $s$ is the global step at which the iteration ends.
#
# That measurement is reported, but it mixes plasticity with tracking: a fully plastic
# network still misses labels re-drawn only a few steps ago. The claims therefore use the
# book's plasticity measure (§2.2, `diagnostics.plasticity_measure`): the **final
# parameters** of each run train, with a fresh Adam state, for $K$ steps on a **fresh
# uniform random labelling** of the same images, and so do fresh initialisations with
# the same labelling and the same minibatches. The statistic is the ratio of the two
# training accuracies after $K$ steps,
#
# $$
# \rho_\epsilon = \frac{\text{accuracy after } K \text{ steps from the final parameters
# of } \epsilon}{\text{accuracy after } K \text{ steps from a fresh initialisation}},
# $$
#
# per seed: 1 for a network as plastic as a fresh one, lower for one that lost
# plasticity. $K$ was fixed before the claims ran, as the number of steps in which a
# fresh network of this profile reaches a training accuracy of `target=0.9` on one random
# labelling:
# `relabelling.steps_to_accuracy` on seeds 100–102 (which the chapter does not use),
# evaluated every 25 steps, the maximum over the three activations and the three seeds
# (the profile's module docstring lists the probe's numbers). At that $K$ a fresh network
# is close to, but not at, a perfect fit, so a checkpoint can fall behind it.
#
# The data: a seeded subset of the images, average-pooled (the labels are replaced
# below, so only the images are used).

# %%
ds = data.load_dataset(
    P.dataset,
    n=P.n_train,
    seed=0,
    flatten=P.arch == "mlp",
    allow_fallback=P.allow_fallback,
)
h, w, c = data.DATASETS[P.dataset][0]
pooled = np.asarray(ds.x, np.float32).reshape(-1, h // P.pool, P.pool, w // P.pool, P.pool, c)
pooled = pooled.mean(axis=(2, 4)).astype(np.float32)  # (N, H / pool, W / pool, C)
x = jnp.asarray(pooled.reshape(len(pooled), -1) if P.arch == "mlp" else pooled)
N, C = x.shape[0], ds.num_classes
print(f"data: {ds.source}, inputs {x.shape}, {C} classes (labels replaced by random ones)")

# %% [markdown]
# The schedule (`relabelling.make_schedule`): every fraction is expressed on a common
# *chunk* of $\min_\epsilon \epsilon \cdot S$ steps; fraction $\epsilon$ relabels before
# every $(\epsilon / \min_\epsilon \epsilon)$-th chunk. Accuracy is evaluated every
# $S / 10$ steps; a point counts as the end of an iteration of $\epsilon$ when it is a
# multiple of $\epsilon S$ (the evaluation comes before the next relabelling).

# %%
schedule = relabelling.make_schedule(
    P.fractions, P.iterations, P.iteration_steps, P.evals_per_iteration
)
redrawn_per_reset = [int(round(f * N)) for f in schedule.fractions]
pd.DataFrame(
    {
        "fraction eps": schedule.fractions,
        "labels re-drawn per reset": redrawn_per_reset,
        "steps between resets": schedule.steps_between_resets,
        "iterations in the budget": schedule.resets,
        "labels re-drawn in total": np.multiply(schedule.resets, redrawn_per_reset),
        "steps in total": schedule.total_steps,
    }
).set_index("fraction eps")

# %% [markdown]
# ## Experiment
#
# Every (fraction, seed) pair is one model; model $m$ has fraction
# $\epsilon_{\lfloor m / \text{seeds} \rfloor}$ and seed $m \bmod \text{seeds}$. All
# fractions (and activations) of one seed share the initial parameters, the initial
# labels and the minibatch draws, and reset $r$ of a model draws its labels from the
# seed's task key $r$, exactly as `train.train_stream` on `tasks.relabel_fraction` would
# (a unit test checks that the two give the same numbers).

# %%
seed_list = np.arange(P.seed_offset, P.seed_offset + P.seeds)
n_fractions, n_seeds = len(schedule.fractions), len(seed_list)
model_seeds = np.tile(seed_list, n_fractions)  # fraction-major: model m = (m // seeds, m % seeds)
roots = keys.task_root(model_seeds)  # (fractions * seeds, 2): reset r uses fold_in(root, r)
relabel_count = jnp.asarray(np.repeat(redrawn_per_reset, n_seeds), jnp.int32)
period = jnp.asarray(np.repeat(schedule.periods, n_seeds), jnp.int32)  # chunks between resets
first_task = tasks.relabel_fraction(x, C, 1.0).init  # task 0: uniform labels for all N
# (fractions * seeds, N) initial labels, from each model's task key 0
initial_labels = jax.vmap(lambda key: first_task(key).y)(keys.task_keys(roots, 0))
train_cfg = train.TrainConfig(learning_rate=P.learning_rate, batch_size=P.batch_size)

# %% [markdown]
# The training program of one model, for one $\epsilon = 1$ iteration of the budget: a
# `lax.scan` over evaluation blocks, each a `lax.scan` over chunks. Before each chunk the
# schedule's relabelling is applied (`relabelling.relabel_at_chunk`; the step at which
# each label was last re-drawn is carried along for the label-age diagnostic below), then
# the chunk's Adam steps run (`train.train_steps`); after each block the model is
# evaluated on its current labels over the whole training set (`train.evaluate_task`).
# `vmap` runs all models together and `jit` compiles the program once per network.


# %%
def make_iteration(network):
    """``(carry, roots, k, period, it, x) -> (carry, logs)`` for all models (vmapped);
    ``carry = (TrainState, labels (M, N), redrawn_at (M, N))``, logs ``(M, blocks)``."""
    chunk, blocks = schedule.chunk_steps, schedule.evals_per_iteration

    def one_model(carry, root, k, period, it, x):
        mask = jnp.ones((x.shape[0],), jnp.float32)

        def train_chunk(carry, j):
            state, y, redrawn_at = carry
            y, redrawn = relabelling.relabel_at_chunk(root, j, period, y, k, C)
            redrawn_at = jnp.where(redrawn, j * chunk, redrawn_at)  # global step of the draw
            state = jax.tree.map(lambda a: a[None], state)  # train_steps takes a model axis
            task = tasks.Task(x, y, mask)
            state, logs = train.train_steps(network, train_cfg, state, task, chunk)
            return (jax.tree.map(lambda a: a[0], state), y, redrawn_at), logs["loss"][0, 0]

        def block(carry, b):
            first = (it * blocks + b) * schedule.chunks_per_eval
            chunks = first + jnp.arange(schedule.chunks_per_eval, dtype=jnp.int32)
            carry, losses = jax.lax.scan(train_chunk, carry, chunks)
            state, y, _ = carry
            ev = train.evaluate_task(
                network, state.params, tasks.Task(x, y, mask), batch_size=train_cfg.eval_batch_size
            )
            out = {
                "accuracy": ev["accuracy"],
                "xent": ev["loss"],
                "param_norm": diagnostics.global_parameter_norm(state.params),
                "train_loss": jnp.mean(losses),
            }
            return carry, {name: jnp.where(state.diverged, jnp.nan, v) for name, v in out.items()}

        return jax.lax.scan(block, carry, jnp.arange(blocks, dtype=jnp.int32))

    return jax.jit(jax.vmap(one_model, in_axes=(0, 0, 0, 0, None, None)))


def by_fraction(a):
    """``(fractions * seeds, ...)`` -> ``(fractions, seeds, ...)``."""
    return np.asarray(a).reshape((n_fractions, n_seeds) + np.shape(a)[1:])


# %% [markdown]
# One compiled program per activation trains every (fraction, seed) pair; `runner.run_chunks`
# calls it once per $\epsilon = 1$ iteration of the budget (the progress bar's unit).

# %%
runs, nets = {}, {}
for act in P.activations:
    nets[act] = network = make_network(
        ModelConfig(arch=P.arch, width=P.width, depth=P.depth, activation=act, num_outputs=C)
    )
    print(f"{act}: {n_fractions} fractions x {n_seeds} seeds, {schedule.total_steps} steps each")
    t0, c0 = time.perf_counter(), time.process_time()
    state = train.init_state(network, train_cfg, model_seeds, x[:2])
    iteration = make_iteration(network)
    (state, labels, redrawn_at), logs = runner.run_chunks(
        lambda carry, it: iteration(carry, roots, relabel_count, period, np.int32(it), x),
        (state, initial_labels, jnp.zeros((n_fractions * n_seeds, N), jnp.int32)),
        schedule.iterations,
        desc=act,
        unit="iter",
        postfix=lambda out: {"acc": out["accuracy"][:, -1]},
        checkpoint=profiles.checkpoint_path(P, act),  # paper profile: resumable
    )
    runs[act] = {name: by_fraction(v) for name, v in logs.items()}  # (fractions, seeds, evals) each
    runs[act].update(
        diverged=by_fraction(state.diverged),
        params=jax.tree.map(by_fraction, state.params),
        labels=by_fraction(labels),  # (fractions, seeds, N): the labels of the last iteration
        label_age=schedule.total_steps - by_fraction(redrawn_at),  # (fractions, seeds, N) steps
    )
    print(
        f"  done: {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU "
        f"(all threads); diverged models: {int(runs[act]['diverged'].sum())}"
    )

# %% [markdown]
# ## The plasticity measure of the final networks
#
# For every activation, one compiled program (`diagnostics.plasticity_measure`) trains the
# final parameters of every (fraction, seed) pair and one fresh initialisation per seed
# (the engine's initialisation of that seed: the parameters every fraction started from)
# for $K$ steps on the seed's fresh labelling, with the same minibatches and the same
# Adam configuration, and evaluates them on all $N$ images.

# %%
measure = {}
for act in runs:
    t0 = time.perf_counter()
    measure[act] = diagnostics.plasticity_measure(
        nets[act],
        train_cfg,
        runs[act]["params"],  # (fractions, seeds, ...): one checkpoint per fraction
        seed_list,
        steps=P.measure_steps,
        x=x,
        num_classes=C,
    )
    print(
        f"{act}: fresh labelling, {P.measure_steps} steps: fresh networks "
        f"{100 * np.mean(measure[act].fresh_accuracy):.1f} %, final networks by eps "
        + ", ".join(f"{100 * a:.1f} %" for a in measure[act].checkpoint_accuracy.mean(1))
        + f" ({time.perf_counter() - t0:.0f} s)"
    )
# (fractions, seeds): accuracy after K steps relative to the fresh network of the same seed
relative = {act: m.checkpoint_accuracy / m.fresh_accuracy[None, :] for act, m in measure.items()}

# %% [markdown]
# ## Figure: accuracy over the training budget
#
# The right-hand side of Fig. 1: for each activation, the accuracy on the current labels
# at the end of every iteration, against the share of the total budget spent.

# %%
ACT_NAMES = {"relu": "ReLU", "gelu": "GELU", "leaky_relu": "Leaky ReLU"}
EPS = "re-randomised\nfraction $\\epsilon$"  # the legend's title
frames = []
for act, run in runs.items():
    for fi, eps in enumerate(schedule.fractions):
        budget, mask = schedule.iteration_ends(fi)  # iteration ends on the evaluation grid
        frames.append(
            plotting.long_frame(
                100 * run["accuracy"][fi][:, mask],  # (seeds, points)
                x=budget,
                x_name="budget",
                y_name="accuracy",
                activation=ACT_NAMES[act],
                eps=f"{eps:g}",
            )
        )
traj = pd.concat(frames, ignore_index=True).rename(columns={"eps": EPS})
grid = sns.relplot(
    data=traj,
    kind="line",
    x="budget",
    y="accuracy",
    hue=EPS,
    col="activation",
    errorbar=plotting.t_band,
    lw=1.4,
    height=3.8,
    aspect=1.05,
)
grid.set_titles("{col_name}").set(xlim=(0, 1.0))
grid.set_axis_labels("fraction of the training budget", "accuracy on current labels (%)")
grid.figure.subplots_adjust(wspace=0.12)  # room for the x tick labels
for ax in grid.axes.flat:
    plotting.reference_line(ax, 100 / C)
grid.figure.suptitle(
    f"End-of-iteration training accuracy, {P.seeds} seeds (mean and 95 % band)", y=1.03
)
plotting.figure(grid.figure, "ch02_trajectories", P.profile)

# %% [markdown]
# ```{glue:figure} ch02_trajectories
# ---
# name: fig-ch02-trajectories
# alt: Accuracy on the current labels against the fraction of the training budget, one
#   panel per activation, one line per re-randomised fraction epsilon with a band over
#   seeds, and a dotted line at chance.
# ---
# Each line follows one fraction $\epsilon$ through the same budget of optimiser steps
# and the same total number of re-drawn labels; a point is the accuracy on the current
# labels just before a relabelling (for $\epsilon = 1$ one point per iteration; for
# $\epsilon = 0.01$ the iteration ends that fall on the evaluation grid). Look at how
# steeply each line falls in the second half of the budget, and whether the
# $\epsilon = 0.01$ line stays level. The dotted line is chance.
# ```

# %% [markdown]
# ## Figure: plasticity of the final networks against the fraction re-randomised
#
# The statistic of the claims: the accuracy after $K$ steps on a fresh labelling from
# the final parameters, relative to fresh initialisations (left), and the two accuracies
# themselves (right; the fresh networks do not depend on $\epsilon$).

# %%
rel_frame = pd.concat(
    [
        plotting.long_frame(
            100 * relative[act].T,  # (seeds, fractions)
            x=plotting.log_dodge(schedule.fractions, k, len(runs)),
            x_name="eps",
            y_name="relative accuracy",
            activation=ACT_NAMES[act],
        )
        for k, act in enumerate(runs)
    ],
    ignore_index=True,
)
abs_frame = pd.concat(
    [
        plotting.long_frame(
            100 * measure[act].checkpoint_accuracy.T,
            x=plotting.log_dodge(schedule.fractions, k, len(runs)),
            x_name="eps",
            y_name="accuracy",
            activation=ACT_NAMES[act],
        )
        for k, act in enumerate(runs)
    ],
    ignore_index=True,
)
fig, axes = plt.subplots(1, 2, figsize=(12.4, 3.9), layout="constrained")
line_kws = dict(
    hue="activation", marker="o", errorbar=plotting.t_band, err_style="bars", err_kws={"capsize": 3}
)
sns.lineplot(data=rel_frame, x="eps", y="relative accuracy", ax=axes[0], **line_kws)
sns.lineplot(data=abs_frame, x="eps", y="accuracy", ax=axes[1], legend=False, **line_kws)
for k, act in enumerate(runs):
    axes[1].axhline(
        100 * np.mean(measure[act].fresh_accuracy), color=f"C{k}", ls="--", lw=1.0, alpha=0.8
    )
for ax in axes:
    plotting.log_x_ticks(ax, schedule.fractions)
    ax.set_xlabel(r"fraction of labels re-randomised per iteration, $\epsilon$ (log scale)")
axes[0].axhline(100, color="grey", ls=":", lw=1.0)
axes[0].set(
    ylabel="accuracy relative to a fresh network (%)",
    title=f"Plasticity measure after {P.measure_steps} steps on a fresh labelling",
)
axes[1].set(
    ylabel="training accuracy on the fresh labelling (%)",
    title="Final networks (points) and fresh networks (dashed)",
)
plotting.reference_line(axes[1], 100 / C)
plotting.figure(fig, "ch02_plasticity_measure_vs_eps", P.profile)

# %% [markdown]
# ```{glue:figure} ch02_plasticity_measure_vs_eps
# ---
# name: fig-ch02-plasticity-measure-vs-eps
# alt: Two panels against the fraction epsilon on a log axis, points with interval bars,
#   one line per activation. Left, accuracy relative to a fresh network with a dotted
#   line at parity. Right, the final networks' accuracy with dashed lines at the fresh
#   networks and a dotted line at chance.
# ---
# Each point is the mean over seeds (bars: 95 % interval) for the network trained through
# the whole budget with fraction $\epsilon$. Left: a line falling to the right means that
# sudden shifts cost more plasticity than gradual ones for the same budget and the same
# total amount of relabelling; the dotted line is a network as plastic as a fresh one.
# Right: the accuracies behind the ratio; the dashed lines are the fresh networks of each
# activation, the dotted line chance.
# ```

# %% [markdown]
# ## Figure: final accuracy against the fraction re-randomised
#
# The top-left inset of Fig. 1: the end-of-run accuracy — the mean of the
# end-of-iteration accuracies that fall in the last tenth of the budget
# (`relabelling.end_of_run`) — against $\epsilon$.

# %%
end = {act: relabelling.end_of_run(schedule, run["accuracy"]) for act, run in runs.items()}
inset = pd.concat(
    [
        plotting.long_frame(
            100 * end[act].T,  # (seeds, fractions)
            x=plotting.log_dodge(schedule.fractions, k, len(runs)),  # side by side
            x_name="eps",
            y_name="accuracy",
            activation=ACT_NAMES[act],
        )
        for k, act in enumerate(runs)
    ],
    ignore_index=True,
)
fig, ax = plt.subplots(figsize=(6.2, 3.9))
sns.lineplot(
    data=inset,
    x="eps",
    y="accuracy",
    hue="activation",
    marker="o",
    errorbar=plotting.t_band,
    err_style="bars",
    err_kws={"capsize": 3},
    ax=ax,
)
plotting.log_x_ticks(ax, schedule.fractions)
ax.set(
    xlabel=r"fraction of labels re-randomised per iteration, $\epsilon$ (log scale)",
    ylabel="end-of-run accuracy (%)",
    title="Accuracy on the current labels, last 10 % of the budget",
)
plotting.reference_line(ax, 100 / C)
plotting.figure(fig, "ch02_final_accuracy_vs_eps", P.profile)

# %% [markdown]
# ```{glue:figure} ch02_final_accuracy_vs_eps
# ---
# name: fig-ch02-final-accuracy-vs-eps
# alt: End-of-run accuracy against the fraction epsilon on a log axis, one line of
#   points with interval bars per activation, drawn slightly apart, and a dotted line at
#   chance.
# ---
# Each point is the mean over seeds (bars: 95 % interval) of a network's accuracy on its
# current labels at the end of the run (the activations are drawn slightly apart along
# the axis so that their bars do not overlap). A line falling to the right means that sudden
# shifts cost more plasticity than gradual ones for the same budget and the same total
# amount of relabelling.
# ```

# %%
at_first = schedule.eval_index(schedule.iteration_steps)
first = {act: run["accuracy"][:, :, at_first] for act, run in runs.items()}  # (fractions, seeds)
pd.DataFrame(
    [
        {
            "activation": ACT_NAMES[act],
            "eps": eps,
            "after first iteration (%)": 100 * first[act][fi].mean(),
            "end of run (%)": 100 * end[act][fi].mean(),
            "final parameter norm": runs[act]["param_norm"][fi, :, -1].mean(),
        }
        for act in runs
        for fi, eps in enumerate(schedule.fractions)
    ]
).set_index(["activation", "eps"]).round(2)

# %% [markdown]
# "After first iteration" is the accuracy on the current labels at step $S$, the end of
# the first $\epsilon = 1$-equivalent iteration (for $\epsilon = 0.01$ the end of its
# hundredth iteration); "end of run" is the statistic of the inset.
#
# ## A closer look: how old is a label the network gets wrong?
#
# With a small fraction, the labels at any moment have very different *ages*: some were
# re-drawn a few steps ago, others long before. A network that is still fully plastic
# can nevertheless miss the newest ones simply because it has not had the steps to fit
# them yet — a *tracking lag* that has nothing to do with lost plasticity and that
# shrinks as the time to fit a fresh label becomes small next to the budget. This
# diagnostic (not one of the claims) takes, for every image, how many steps
# before the end of the run its label was last re-drawn (`label_age`, carried by the
# training program), and scores the final network separately on labels of each age.

# %%
S = schedule.iteration_steps
AGE_EDGES = [0.02, 0.05, 0.1, 0.2, 0.5, 1.0]  # in eps = 1 iterations (S steps)
AGE_NAMES = ["≤ 0.02", "0.02–0.05", "0.05–0.1", "0.1–0.2", "0.2–0.5", "0.5–1", "> 1"]


def final_correct(act, fi):
    """``(seeds, N)`` bool: the final network of fraction ``fi`` predicts the current label."""
    params = jax.tree.map(lambda a: jnp.asarray(a[fi]), runs[act]["params"])
    logits = jax.vmap(nets[act].apply, in_axes=(0, None))(params, x)
    return np.asarray(jnp.argmax(logits, -1)) == runs[act]["labels"][fi]


def accuracy_by_age(correct, ages):
    """Per seed and age bin: accuracy (%) on the labels of that age and their share (%)."""
    bins = np.digitize(ages / S, AGE_EDGES, right=True)  # (seeds, N)
    frame = pd.DataFrame(
        {
            "seed": np.repeat(np.arange(n_seeds), N),
            "age": np.asarray(AGE_NAMES)[bins.ravel()],
            "correct": correct.ravel(),
        }
    )
    group = frame.groupby(["seed", "age"], sort=False)["correct"]
    return pd.DataFrame(
        {"accuracy": 100 * group.mean(), "share": 100 * (group.size() / N)}
    ).reset_index()


final_ok = {(act, fi): final_correct(act, fi) for act in runs for fi in range(n_fractions)}
# the relabelling depends only on the seed: the label ages are those of every activation
label_ages = {fi: runs[P.activations[0]]["label_age"][fi] for fi in range(n_fractions)}
by_age = pd.concat(
    [
        accuracy_by_age(final_ok[act, fi], label_ages[fi]).assign(
            activation=ACT_NAMES[act], eps=f"{eps:g}"
        )
        for act in runs
        for fi, eps in enumerate(schedule.fractions)
    ],
    ignore_index=True,
)
grid = sns.catplot(
    data=by_age.rename(columns={"eps": EPS}),
    kind="point",
    x="age",
    y="accuracy",
    hue=EPS,
    col="activation",
    order=AGE_NAMES,
    errorbar=plotting.t_band,
    dodge=0.45,
    markersize=4,
    linewidth=1.2,
    height=3.8,
    aspect=1.05,
)
grid.set_titles("{col_name}").set_xticklabels(rotation=35, ha="right", rotation_mode="anchor")
grid.set_axis_labels("", "final accuracy on those labels (%)")
grid.figure.subplots_adjust(wspace=0.12)  # room for the x tick labels
for ax in grid.axes.flat:
    plotting.reference_line(ax, 100 / C)
grid.figure.supxlabel(
    "age of the label at the end of the run: steps since it was last re-drawn, "
    f"in iterations of {S} steps",
    y=-0.1,
    fontsize="medium",
)
grid.figure.suptitle(
    "Final accuracy by the age of the label (mean and 95 % interval over seeds)", y=1.03
)
plotting.figure(grid.figure, "ch02_accuracy_by_label_age", P.profile)

# %% [markdown]
# ```{glue:figure} ch02_accuracy_by_label_age
# ---
# name: fig-ch02-accuracy-by-label-age
# alt: Final accuracy against the age of the label (binned), one panel per activation,
#   points with interval bars, one line per fraction epsilon, and a dotted line at
#   chance.
# ---
# Each point is the final network's accuracy on the images whose label was last re-drawn
# the given number of iterations before the end of the run (a label never re-drawn since
# the start is as old as the whole budget). $\epsilon = 1$ has a single age (every label
# was re-drawn one iteration before the end); $\epsilon = 0.01$ spreads its labels over
# all ages. A tracking lag shows as young labels fitted at a lower rate than old ones;
# lost plasticity shows as old labels missed too. Compare the small fractions, at the
# same age (a half to one iteration), with the $\epsilon = 1$ network, whose labels have
# all had a whole iteration to be fitted.
# ```

# %%
first_act = ACT_NAMES[P.activations[0]]
share = (
    by_age[by_age.activation == first_act]
    .groupby(["eps", "age"], sort=False)["share"]
    .mean()
    .unstack("age")
    .reindex(columns=AGE_NAMES)
)
share.round(1).rename_axis(columns="share of the labels (%) by age")

# %% [markdown]
# The share of the labels in each age bin at the end of the run (the same for every
# activation: the relabelling depends only on the seed).

# %% [markdown]
# ## Claim checks
#
# The thresholds and directions were fixed in the chapter's issue before the run; issue
# 15 replaced the statistic of the three ordering claims by the plasticity measure above
# (before: the end-of-run accuracy on the current labels) and lengthened the iterations.
# Spearman correlations are computed between $\epsilon$ and the seed mean of the
# relative accuracy $\rho_\epsilon$ of each fraction, with a percentile bootstrap over
# seeds (resampling whole seeds; `stats.spearman_of_seed_means`); differences and ratios
# are per seed (all fractions of a seed share initial parameters, labels and the fresh
# labelling of the measure), with a t-interval. The difference part declares the
# ceiling of its inputs: when the final networks of both compared fractions fit the
# fresh labelling almost perfectly within $K$ steps (`claims.Bound`), the part is
# uninformative. `ch2.gelu_parallel` is of kind `extension`: the paper states the
# ordering for ReLU and Leaky ReLU, not for GELU.
#
# `ch2.small_benign` keeps its statistic and threshold: the end-of-run accuracy on the
# current labels (the mean of the end-of-iteration accuracies in the last tenth of the
# budget, per seed) relative to "the accuracy after the first iteration", defined as the
# $\epsilon = 0.01$ run's own accuracy at step $S$ (the end of the first
# $\epsilon = 1$-equivalent iteration), so the claim asks whether that run's accuracy
# holds up over the budget. It carries the scorecard's ceiling rule (`claims.Bound` at
# accuracy 1, the tolerance in the code below): when every seed of both accuracies is at
# the ceiling, the ratio could not have fallen, and the claim is uninformative. It is
# uninformative too when some seed's accuracy after the first iteration is not at least
# halfway from chance to perfect accuracy (`claims.FirstTask`): a ratio of chance-level accuracies
# is about 1 whatever the shifts do.

# %%
fr = list(schedule.fractions)
lo, hi = 0, len(fr) - 1  # the smallest and largest fraction (0.01 and 1 at every profile)


def spearman_finite(values):
    """Spearman rho(eps, seed mean) over the seeds finite at every fraction ``(F, S)``."""
    keep, _ = claims.finite_seeds(values.T)
    return stats.spearman_of_seed_means(values.T[keep], fr)


rho = {act: spearman_finite(relative[act]) for act in runs}
rho_old = {act: stats.spearman_of_seed_means(end[act].T, fr) for act in runs}  # reported
book = claims.ClaimBook("ch02_shift_smoothness", P, dataset=ds.source)
for act in runs:
    book.note_diverged(ACT_NAMES[act], runs[act]["diverged"].ravel())
MEASURE = f"accuracy after K={P.measure_steps} steps on a fresh labelling / fresh network's"
if "relu" in runs:
    book.check(
        "ch2.sudden_worse",
        kind="paper",
        statement=(
            "With ReLU, the plasticity left at the end of the run falls as the re-randomised "
            "fraction grows: sudden shifts cost more plasticity."
        ),
        figure="§3.1, Fig. 1 (top-left inset, right)",
        parts=[
            claims.part(
                f"ReLU: Spearman rho(eps, seed-mean {MEASURE})",
                rho["relu"],
                -0.8,
                "<=",
            ),
            claims.part(
                f"ReLU: {MEASURE}, eps={fr[hi]:g} minus eps={fr[lo]:g} (per seed)",
                claims.t_interval(relative["relu"][hi] - relative["relu"][lo], drop_nonfinite=True),
                0.0,
                "<",
                bound=claims.Bound(
                    1.0,
                    0.005,
                    {
                        f"eps={fr[hi]:g}": measure["relu"].checkpoint_accuracy[hi],
                        f"eps={fr[lo]:g}": measure["relu"].checkpoint_accuracy[lo],
                    },
                ),
            ),
        ],
    )
    book.check(
        "ch2.small_benign",
        kind="paper",
        statement=(
            "Re-randomising only 1 % of the labels at a time minimally interferes with performance."
        ),
        figure="§3.1, Fig. 1 (right)",
        statistic=(
            f"ReLU, eps={fr[lo]:g}: end-of-run accuracy / accuracy after the first "
            "iteration (per seed)"
        ),
        estimate=claims.t_interval(end["relu"][lo] / first["relu"][lo], drop_nonfinite=True),
        threshold=0.95,
        direction=">=",
        # issue 14's ceiling rule: a ratio of two accuracies both at 100 % cannot fall
        bound=claims.Bound(
            1.0,
            0.005,
            arms={"end of run": end["relu"][lo], "after the first iteration": first["relu"][lo]},
        ),
        # a ratio of two chance-level accuracies is about 1: the first iteration must have
        # been learned well above chance (issue 21's guard for a "keeps" claim)
        first_task=claims.FirstTask(first["relu"][lo], chance=1 / C),
    )
for act, cid, kind in (
    ("leaky_relu", "ch2.leaky_parallel", "paper"),
    ("gelu", "ch2.gelu_parallel", "extension"),
):
    if act in runs:
        book.check(
            cid,
            kind=kind,
            statement=(
                f"{ACT_NAMES[act]} networks show the same ordering: the plasticity left at the "
                "end of the run falls as the fraction grows."
            ),
            figure="§3.1, Fig. 1 (top-left inset, right)",
            statistic=f"{ACT_NAMES[act]}: Spearman rho(eps, seed-mean {MEASURE})",
            estimate=rho[act],
            threshold=-0.8,
            direction="<=",
        )
book.save()
book.table()

# %% [markdown]
# The revised claims: their verdict before issue 15 (the published book: end-of-run
# accuracy on the current labels, iterations of a fifth of the present length) and now.

# %%
OLD = {  # the published default-profile verdicts before issue 15
    "ch2.sudden_worse": "not reproduced",
    "ch2.small_benign": "reproduced",
    "ch2.leaky_parallel": "not reproduced",
    "ch2.gelu_parallel": "not reproduced",
}
pd.DataFrame(
    [
        {
            "claim": c.id,
            "kind": c.kind,
            "old verdict": OLD.get(c.id, "–"),
            "new verdict": c.verdict,
            "new value(s)": "; ".join(claims.format_estimate(p.estimate) for p in c.parts),
        }
        for c in book.claims
    ]
).set_index("claim")

# %% [markdown]
# ## What we found

# %% tags=["remove-input"]
verdicts = {c.id: c.verdict for c in book.claims}


def pct(a):
    return f"{100 * np.nanmean(a):.1f} %"


lines = [
    f"In this run ({P.profile} profile, {ds.source}, {P.seeds} seeds, {P.iterations} "
    f"iterations of {P.iteration_steps} steps at eps = 1, so {schedule.steps_between_resets[lo]} "
    f"steps between resets at eps = {fr[lo]:g}) the plasticity measure of the final networks "
    f"(accuracy after K = {P.measure_steps} steps on a fresh labelling, relative to fresh "
    "networks; mean over seeds) was:",
    "",
    "| activation | " + " | ".join(f"eps = {f:g}" for f in fr) + " | fresh network |",
    "|---|" + "---|" * (len(fr) + 1),
]
for act in runs:
    cells = " | ".join(pct(relative[act][fi]) for fi in range(len(fr)))
    fresh = pct(measure[act].fresh_accuracy)
    lines.append(f"| {ACT_NAMES[act]} | {cells} | accuracy {fresh} |")
lines += [
    "",
    "and the end-of-run accuracy on the current labels (the old statistic, reported):",
    "",
    "| activation | " + " | ".join(f"eps = {f:g}" for f in fr) + " | Spearman rho |",
    "|---|" + "---|" * (len(fr) + 1),
]
for act in runs:
    cells = " | ".join(pct(end[act][fi]) for fi in range(len(fr)))
    lines.append(f"| {ACT_NAMES[act]} | {cells} | {rho_old[act].value:.2f} |")
lines.append("")
if "relu" in runs:
    diff = relative["relu"][hi] - relative["relu"][lo]
    lines.append(
        f"For ReLU the Spearman correlation of the plasticity measure with eps over the "
        f"{len(fr)} fractions was {claims.format_estimate(rho['relu'])} and the eps = "
        f"{fr[hi]:g} minus eps = {fr[lo]:g} difference "
        f"{100 * np.nanmean(diff):+.1f} points (interval "
        f"{claims.format_estimate(claims.t_interval(100 * diff, drop_nonfinite=True))}) "
        f"(`ch2.sudden_worse`: **{verdicts['ch2.sudden_worse']}**; before this revision: "
        f"{OLD['ch2.sudden_worse']}). The eps = {fr[lo]:g} run kept "
        f"{100 * np.nanmean(end['relu'][lo] / first['relu'][lo]):.1f} % of its accuracy on the "
        f"current labels after the first iteration ({pct(first['relu'][lo])}) "
        f"(`ch2.small_benign`: **{verdicts['ch2.small_benign']}**)."
    )
for act, cid in (("leaky_relu", "ch2.leaky_parallel"), ("gelu", "ch2.gelu_parallel")):
    if act in runs:
        lines.append(
            f"{ACT_NAMES[act]}: Spearman rho = {claims.format_estimate(rho[act])}, plasticity "
            f"measure at eps = {fr[hi]:g}: {pct(relative[act][hi])} of a fresh network's "
            f"accuracy (`{cid}`: **{verdicts[cid]}**; before: {OLD[cid]})."
        )
lines += ["", "By the age of the label at the end of the run (the diagnostic figure):", ""]
young = label_ages[lo] <= 0.1 * S  # re-drawn in the last tenth of an iteration
older = label_ages[lo] > 0.2 * S  # older than a fifth of an iteration
same_age = (label_ages[lo] > 0.5 * S) & (label_ages[lo] <= S)  # as eps = 1's
for act in runs:
    ok = final_ok[act, lo]
    lines.append(
        f"- {ACT_NAMES[act]}, eps = {fr[lo]:g}: the {100 * young.mean():.1f} % of labels "
        f"re-drawn in the last {int(0.1 * S)} steps were fitted at "
        f"{100 * ok[young].mean():.1f} %, the older ones at {100 * ok[~young].mean():.1f} % "
        f"(those older than {int(0.2 * S)} steps at {100 * ok[older].mean():.1f} %), "
        f"and those re-drawn {int(0.5 * S)}–{S} steps before the end at "
        f"{100 * ok[same_age].mean():.1f} %; eps = {fr[hi]:g}, whose labels are all "
        f"{S} steps old: {100 * final_ok[act, hi].mean():.1f} %."
    )
lines += [
    "",
    f"With batch {P.batch_size} of {N} images an image is visited about once every "
    f"{N / P.batch_size:.0f} steps.",
]


def agrees(cid):
    return verdicts.get(cid) == "reproduced"


ordering = ["ch2.sudden_worse", "ch2.leaky_parallel", "ch2.gelu_parallel"]
held = [cid for cid in ordering if agrees(cid)]
missed = [cid for cid in ordering if cid in verdicts and not agrees(cid)]
if not book.evaluated:
    reading = "At this profile the verdicts are not evaluated. "
elif not held:
    reading = (
        "The paper's ordering does not hold on the plasticity measure for any activation "
        "at this scale. "
    )
else:
    reading = "The paper's ordering holds on the plasticity measure for " + ", ".join(
        f"`{c}`" for c in held
    )
    failed = [c for c in missed if verdicts[c] == "not reproduced"]
    open_ = [c for c in missed if verdicts[c] != "not reproduced"]  # inconclusive, ...
    for words, ids in (("it does not hold for", failed), ("it is not established for", open_)):
        if ids:
            reading += f"; {words} " + ", ".join(f"`{c}` ({verdicts[c]})" for c in ids)
    reading += ". "
if book.evaluated and "relu" in runs:
    smallest = np.nanmean(relative["relu"][lo])
    reading += (
        f"Even the most gradual stream left the ReLU network at {100 * smallest:.1f} % of a "
        f"fresh network's accuracy after K steps (eps = {fr[lo]:g}), against "
        f"{100 * np.nanmean(relative['relu'][hi]):.1f} % for eps = {fr[hi]:g}: gradual shifts "
        "cost less plasticity here, not none. "
    )
    ceiling = min(float(np.nanmin(end[act].mean(1))) for act in runs)
    if ceiling >= 0.99:
        reading += (
            "The old statistic cannot tell the fractions apart at this scale: every fraction "
            f"of every activation ended the run at {100 * ceiling:.1f} % or more on its current "
            "labels, so the statistic of `ch2.small_benign` sits at its ceiling (it could "
            "hardly have failed; its definition is unchanged by issue 15 and its verdict is "
            "shown as computed). "
        )
lines += [
    "",
    "**Reading the verdicts.** "
    + reading
    + f"The budget has {P.iterations} iterations at eps = 1 ({P.iterations} labellings for "
    "the sudden stream against the paper's 40); the paper profile restores the paper's "
    "schedule.",
]
display(Markdown("\n".join(lines)))

# %% [markdown]
# **Why the measure changed.** With the short iterations of the earlier version of this
# chapter, a fraction re-drawn every few steps left many labels barely fitted at every
# evaluation: {numref}`fig-ch02-accuracy-by-label-age` shows such a *tracking lag* (the
# youngest labels are
# fitted at a lower rate than the older ones), and it lowers the accuracy on the current
# labels of the small fractions without any loss of plasticity. The plasticity measure
# asks the paper's §2.2 question instead — how well do the final parameters fit a *new*
# labelling, compared with a fresh network — so a lag on the old stream does not enter
# it. The longer iterations shrink the lag as well (compare
# {numref}`fig-ch02-accuracy-by-label-age` with
# the tables above).
#
# **What the paper profile would change.** It restores the CNN, CIFAR-10 and 40
# iterations of 100,000 steps (1,000 steps between resets at $\epsilon = 0.01$); its $K$
# must first be probed at that profile with `relabelling.steps_to_accuracy`. It needs a GPU
# and was not run for this book.
#
# At the smoke profile the numbers above only show that the code runs.
