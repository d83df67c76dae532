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
# fractions give more precipitous declines over the run (right). Re-randomising **1 % of
# the labels at a time "minimally interferes with performance"**, 10 % already
# accelerates the decline, and networks with Leaky ReLU show "a slightly smoother
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

# %%
P = profiles.resolve_notebook("ch02_shift_smoothness", globals())
profiles.show("ch02_shift_smoothness")

# %% [markdown]
# | | paper (§3.1, App. B) | this chapter, default profile |
# |---|---|---|
# | data | CIFAR-10, 50,000 images, random labels | 500 MNIST images, pooled to 14 × 14 (a) |
# | network | CNN of App. B.1 (4 conv × 32 channels, 2 dense × 256) | MLP, 2 hidden × 128 (b) |
# | optimiser | Adam, learning rate $10^{-4}$ (B.2) | Adam, learning rate $10^{-3}$, batch 64 (c) |
# | budget | 40 iterations × 100,000 steps | 15 iterations × 600 steps (d) |
# | fractions $\epsilon$ | $[0.01, 1]$ (the plotted values are not listed) | 0.01, 0.1, 0.5, 1 (e) |
# | activations | ReLU, GELU, Leaky ReLU (slope 0.01) | the same |
# | seeds | not stated | `seeds` above, trained at once with `vmap` (intervals over seeds) |
# | measurement | accuracy on the current labels at the end of each iteration | the same (f) |
#
# Why: (a) CPU budget; with random labels the image content matters little, the number of
# images sets the memorisation load. (b) On a CPU a convolution trains ~100× slower than an
# MLP of similar cost. (c) A larger rate memorises one labelling in a few hundred steps.
# (d) `iterations` × `iteration_steps` above: CPU budget; chosen so that a fresh network
# memorises a labelling within one iteration and the $\epsilon = 1$ stream loses plasticity
# within the budget (pilot of ReLU at $\epsilon = 1$ only, on two seeds the chapter does not
# use). (e) The grid. (f) Evaluation cost: on the iteration ends that fall on a grid
# of every $S/10$ steps (all of them for $\epsilon \ge 0.1$, every tenth for
# $\epsilon = 0.01$).
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
    errorbar=("ci", 95),
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
plotting.savefig(grid.figure, "ch02_trajectories", P.profile)
plt.show()

# %% [markdown]
# Each line follows one fraction $\epsilon$ through the same budget of optimiser steps
# and the same total number of re-drawn labels; a point is the accuracy on the current
# labels just before a relabelling (for $\epsilon = 1$ one point per iteration; for
# $\epsilon = 0.01$ the iteration ends that fall on the evaluation grid). Look at how
# steeply each line falls in the second half of the budget, and whether the
# $\epsilon = 0.01$ line stays level. The dotted line is chance.

# %% [markdown]
# ## Figure: final accuracy against the fraction re-randomised
#
# The top-left inset of Fig. 1: the end-of-run accuracy — the mean of the
# end-of-iteration accuracies that fall in the last 10 % of the budget
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
    errorbar=("ci", 95),
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
plotting.savefig(fig, "ch02_final_accuracy_vs_eps", P.profile)
plt.show()

# %% [markdown]
# Each point is the mean over seeds (bars: 95 % interval) of a network's accuracy on its
# current labels at the end of the run (the activations are drawn slightly apart along
# the axis so that their bars do not overlap). A line falling to the right means that sudden
# shifts cost more plasticity than gradual ones for the same budget and the same total
# amount of relabelling.

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
    errorbar=("ci", 95),
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
plotting.savefig(grid.figure, "ch02_accuracy_by_label_age", P.profile)
plt.show()

# %% [markdown]
# Each point is the final network's accuracy on the images whose label was last re-drawn
# the given number of iterations before the end of the run (a label never re-drawn since
# the start is as old as the whole budget). $\epsilon = 1$ has a single age (every label
# was re-drawn one iteration before the end); $\epsilon = 0.01$ spreads its labels over
# all ages. The networks trained with small $\epsilon$ miss only their youngest labels and
# fit the older ones; compare them, at the same age (0.5–1), with the $\epsilon = 1$
# network, which fails on a large share of labels it has had a whole iteration to fit.

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
# The thresholds, directions and statistics were fixed in the chapter's issue before
# the run. "End-of-run accuracy" is the mean of the end-of-iteration accuracies in the
# last 10 % of the budget (per seed). Spearman correlations are computed between
# $\epsilon$ and the seed-mean end-of-run accuracy of each fraction, with a percentile
# bootstrap over seeds (resampling whole seeds; `stats.spearman_of_seed_means`);
# differences and ratios are per seed (all fractions of a seed share initial parameters
# and labels), with a t-interval.
# For `ch2.small_benign`, "the accuracy after the first iteration" is defined as the
# $\epsilon = 0.01$ run's own accuracy at step $S$ (the end of the first
# $\epsilon = 1$-equivalent iteration), so the claim asks whether that run's accuracy
# holds up over the budget.

# %%
fr = list(schedule.fractions)
lo, hi = 0, len(fr) - 1  # the smallest and largest fraction (0.01 and 1 at every profile)
rho = {act: stats.spearman_of_seed_means(end[act].T, fr) for act in runs}
book = claims.ClaimBook("ch02_shift_smoothness", P, dataset=ds.source)
if "relu" in runs:
    book.check(
        "ch2.sudden_worse",
        kind="paper",
        statement=(
            "With ReLU, the accuracy at the end of the run falls as the re-randomised "
            "fraction grows: sudden shifts cost more plasticity."
        ),
        figure="§3.1, Fig. 1 (top-left inset, right)",
        parts=[
            claims.part(
                "ReLU: Spearman rho(eps, seed-mean end-of-run accuracy)",
                rho["relu"],
                -0.8,
                "<=",
            ),
            claims.part(
                f"ReLU: end-of-run accuracy, eps={fr[hi]:g} minus eps={fr[lo]:g} "
                "(fraction, per seed)",
                claims.t_interval(end["relu"][hi] - end["relu"][lo]),
                0.0,
                "<",
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
        estimate=claims.t_interval(end["relu"][lo] / first["relu"][lo]),
        threshold=0.95,
        direction=">=",
    )
for act, cid in (("leaky_relu", "ch2.leaky_parallel"), ("gelu", "ch2.gelu_parallel")):
    if act in runs:
        book.check(
            cid,
            kind="paper",
            statement=(
                f"{ACT_NAMES[act]} networks show the same ordering: final accuracy falls "
                "as the fraction grows."
            ),
            figure="§3.1, Fig. 1 (top-left inset, right)",
            statistic=f"{ACT_NAMES[act]}: Spearman rho(eps, seed-mean end-of-run accuracy)",
            estimate=rho[act],
            threshold=-0.8,
            direction="<=",
        )
book.save()
book.table()
# %% [markdown]
# ## What we found

# %% tags=["remove-input"]
verdicts = {c.id: c.verdict for c in book.claims}


def pct(a):
    return f"{100 * np.mean(a):.1f} %"


lines = [
    f"In this run ({P.profile} profile, {ds.source}, {P.seeds} seeds, {P.iterations} "
    f"iterations of {P.iteration_steps} steps at eps = 1) the end-of-run accuracy (mean over "
    "seeds) was:",
    "",
    "| activation | " + " | ".join(f"eps = {f:g}" for f in fr) + " |",
    "|---|" + "---|" * len(fr),
]
for act in runs:
    cells = " | ".join(pct(end[act][fi]) for fi in range(len(fr)))
    lines.append(f"| {ACT_NAMES[act]} | {cells} |")
lines.append("")
if "relu" in runs:
    lines.append(
        f"For ReLU, eps = {fr[hi]:g} ended at {pct(end['relu'][hi])} (after its first "
        f"iteration: {pct(first['relu'][hi])}) against {pct(end['relu'][lo])} for "
        f"eps = {fr[lo]:g} (difference "
        f"{100 * np.mean(end['relu'][hi] - end['relu'][lo]):+.1f} points), but the "
        f"Spearman correlation over the {len(fr)} fractions was {rho['relu'].value:.2f} "
        f"(`ch2.sudden_worse`: **{verdicts['ch2.sudden_worse']}**). The eps = {fr[lo]:g} "
        f"run kept {100 * np.mean(end['relu'][lo] / first['relu'][lo]):.1f} % of its "
        f"accuracy after the first iteration ({pct(first['relu'][lo])}) "
        f"(`ch2.small_benign`: **{verdicts['ch2.small_benign']}**)."
    )
for act, cid in (("leaky_relu", "ch2.leaky_parallel"), ("gelu", "ch2.gelu_parallel")):
    if act in runs:
        lines.append(
            f"{ACT_NAMES[act]}: Spearman rho = {rho[act].value:.2f}, eps = {fr[hi]:g} ended "
            f"at {pct(end[act][hi])} (`{cid}`: **{verdicts[cid]}**)."
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
display(Markdown("\n".join(lines)))

# %% [markdown]
# **Where we agree with the paper** (default profile). Sudden shifts are the costly ones
# at the sudden end of the scale: with ReLU, the $\epsilon = 1$ stream memorises every
# labelling for the first half of the budget and then collapses on its last labellings
# (the numbers above), while the same budget and the same number of re-drawn labels
# delivered 1 % at a time leaves the network able to fit new labels to the end — its
# accuracy does not erode over the run (`ch2.small_benign`), and on labels as old as
# those of the $\epsilon = 1$ network (a half to one iteration) it fits nearly all of
# them where the $\epsilon = 1$ network fits about half. Leaky ReLU follows the same
# course with a gentler decline, the paper's "slightly smoother decrease but otherwise
# parallel trend". The $\epsilon = 1$ minus $\epsilon = 0.01$ difference of
# `ch2.sudden_worse` is clearly negative.
#
# **Where we do not.** The ordering over all four fractions is not monotone at this
# scale: end-of-run accuracy *rises* from the smallest fraction through the middle ones
# and only then falls at $\epsilon = 1$ (the table above), so the Spearman correlations
# miss the −0.8 threshold and `ch2.sudden_worse`, `ch2.leaky_parallel` and
# `ch2.gelu_parallel` are not reproduced. GELU barely loses plasticity at $\epsilon = 1$
# within this budget.
#
# **Why, and what scale would change it.** The shortfall of the small fractions is a
# tracking lag, not lost plasticity. The label-age figure shows that their networks fit
# nearly every label older than about a fifth of an iteration and miss only the
# freshest ones, which are fitted at a far lower rate (the list above). A freshly
# re-drawn label takes some number $L$ of steps to be fitted (each image is visited only
# once every few steps, see above). At the end of an iteration of fraction $\epsilon$ the
# youngest labels are $\epsilon S$ steps old, and the labels younger than $L$ make up about
# $L / S$ of all labels as long as $\epsilon S < L$ (none once $\epsilon S \ge L$). The
# smaller $\epsilon$, the more of these labels are caught barely fitted — a lag unrelated
# to plasticity, which shrinks for every $\epsilon$ as the iteration length $S$ grows
# relative to $L$. With the paper's 100,000
# steps per iteration we expect it to be small (the paper reports that re-randomising 1 %
# at a time "minimally interferes with performance"), and the order of the inset would
# then be decided by plasticity alone; the $\epsilon = 0.5$ stream, which shows no decline
# in our iterations, would also have 40 iterations in which to start one. One
# exploratory run outside this chapter's budget points that way: the default profile with
# iterations twice as long (`iteration_steps=1200`, `activations=["relu"]`, `seeds=3`)
# shrank the lag of $\epsilon = 0.01$, $\epsilon = 0.5$ began to decline in its last
# iterations, and ReLU's Spearman correlation moved towards −0.8 but stayed short of it
# (its numbers are not quoted here, as this page does not run it). Longer iterations
# still, and the paper profile itself, would settle it; neither fits this chapter's
# 5-minute CPU budget.
#
# At the smoke profile the numbers above only show that the code runs.
