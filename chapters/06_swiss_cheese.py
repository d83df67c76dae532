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
# # The Swiss-cheese model: layer normalisation plus L2 keeps networks trainable
#
# *Reproduces §4.1 (interventions on each mechanism, Fig. 4), the supervised part of
# §4.2 (Fig. 5 left), the learning curves of App. D.1 (Fig. 7) and, at small scale, the
# L2 sweep of App. E.5 and the normalisation ablations of App. D.2 / E.9 of
# {cite}`lyle2024disentangling`.*
#
# ## What the paper claims
#
# The earlier chapters took plasticity loss apart into mechanisms that act
# independently: growth of the parameter (and feature) norm, drift of the
# preactivation distribution (dead, saturated and "zombie" units), and poor conditioning
# of the loss landscape. Like the holes in slices of Swiss cheese, each mechanism can
# let a network fail on its own, so a remedy must block several at once. §4.1 tries one
# intervention per mechanism on a sequence of image-classification tasks (Fig. 4):
#
# * **norm growth** — L2 regularisation, layer or batch normalisation, a hard
#   constraint on the weight norm, a penalty on the feature norm. Normalising the
#   features "does not adversely affect expressivity or learning speed", but the
#   weight-norm constraint "did interfere with optimization speed", and the feature-norm
#   penalty is less effective than layer or batch normalisation;
# * **preactivation statistics** — layer or batch normalisation before each
#   nonlinearity, or resetting dormant units with ReDo {cite}`sokar2023dormant`.
#   Normalisation helps both plasticity and per-task convergence; ReDo helps less;
# * **loss-landscape conditioning** — with layer normalisation, a squared-gradient-norm
#   penalty {cite}`barrett2021implicit,smith2021origin`, InFeR {cite}`lyle2021understanding`
#   or the Shampoo optimiser {cite}`gupta2018shampoo`: none consistently beats
#   layer normalisation plus L2.
#
# Overall, **layer normalisation {cite}`ba2016layer` combined with L2 regularisation**
# "addressed plasticity loss in all classification problems we considered" (Fig. 4), and
# §4.2 shows the combination keeps working — accuracy even *improves* from task to task

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
import functools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display
from matplotlib.ticker import MaxNLocator

from plasticity_lib import claims, data, keys, plotting, profiles, runner, stats, tasks, train
from plasticity_lib.models import ModelConfig, make_network

plotting.set_theme()

# %% [markdown]
# ## Setup
#
# The `parameters` cell is read by papermill: `profile` picks a column of the profile
# table below, any other name overrides one field (`None` keeps the profile's value).

# %% tags=["parameters"]
profile = "default"  # smoke | default | paper
seeds = None  # seeds per configuration, trained together with vmap
seed_offset = None  # first seed (seeds seed_offset, ..., seed_offset + seeds - 1)
num_tasks = None  # tasks in sequence
steps_per_task = None  # Adam steps per task
n_train = None  # training images
arch = None  # mlp | cnn | resnet18
learning_rate = None  # Adam learning rate
l2 = None  # L2 coefficient of the L2 and LN+L2 arms
norm_ablation = None  # also run the D.2 / E.9 normalisation variants

# %%
P = profiles.resolve_notebook("ch06_swiss_cheese", globals())
profiles.show("ch06_swiss_cheese")

# %% [markdown]
# | | paper (§4.1–4.2, B.1–B.2) | this chapter, default profile | why |
# |---|---|---|---|
# | data | CIFAR-10 (MNIST, CIFAR-100 "consistent", B.2) | 512 MNIST images (seeded) | note 1 |
# | network | MLP 512 × 4, CNN, ResNet-18 | MLP 128 × 2, ReLU | note 2 |
# | optimiser | Adam, $10^{-5}$ (MLP), batch size not given | Adam $10^{-3}$, batch 64 | note 3 |
# | tasks | 20 tasks × 75,000 steps | 10 tasks × 400 steps | note 4 |
# | L2 | $10^{-5}$, E.5 $10^{-6}$ | $10^{-4}$ (all parameters), E.5 $10^{-5}$, $10^{-3}$ | note 5 |
# | other coefficients | not given | see the table of arms below | note 6 |
# | Shampoo | with layer norm | **not run** | optax 0.2.8 has none (below) |
# | modes (§4.2) | `continual 0.5` / `1.0`, composite, growing | the same, all families | note 7 |
# | accuracy | end-of-task accuracy | on the task's training set after its last step | note 8 |
# | batch norm | — | batch statistics in training and evaluation | the library's convention |
# | seeds | not stated | 5, trained at once with `vmap` | intervals over seeds |
#
# Notes: (1) available offline, CPU budget. (2) CPU budget; the paper profile is the MLP
# of B.1 on CIFAR-10, `arch=cnn` / `resnet18` give the others. (3) A task converges in
# hundreds of steps instead of 75,000. (4) B.2 picks the interval so that each task
# converges; within 400 steps the baseline's minibatch accuracy on a first 512-image
# random labelling reaches 99.9 % (checked once, before the runs). (5) A run of
# $4\cdot10^3$ instead of $1.5\cdot10^6$ steps needs a stronger pull for the same norm
# control (as in the overview chapter). (6) Feature-norm penalty $10^{-3}$; ReDo every
# 100 steps with $\tau = 0.1$; gradient-norm penalty $10^{-3}$; InFeR with 10 heads,
# $\beta = 10$, coefficient 0.1: our choices, fixed before the runs, not tuned.
# (7) Composite transforms a fixed half of the images (the same half for every seed):
# the paper gives no composite fraction. (8) What a plastic network can fit.

# %% [markdown]
# ## The protocol and the interventions
#
# A base dataset $\{(x_i, y_i)\}_{i=1}^N$ is turned into a sequence of tasks
# $t = 1, \dots, T$ (App. B.2). At each task boundary a fresh random transformation is
# drawn and applied: **random labels** gives every image a new label drawn uniformly
# from the 10 classes; **permuted classes** relabels with a random permutation $\pi_t$
# of the class ids, $y \mapsto \pi_t(y)$; **permuted pixels** applies one random
# permutation to the pixels of every image. The network then takes a fixed number of
# Adam steps {cite}`kingma2015adam` on minibatches of the current task, continuing from
# the parameters and optimiser state reached on the previous one. The **end-of-task
# accuracy** $a_t$ is the fraction of the task's images classified correctly after its
# last step.
#
# §4.2 varies *how* the data change (its "modes"): **continual** transforms a random
# fraction of the images at each boundary (all of them or half), **composite** always the
# same half, and **growing** starts with one class and admits one more at each boundary
# (everything admitted is transformed). `tasks.mode_stream` builds each stream from the
# base data; `MODES` below names the modes as the figures do.

# %%
ds = data.load_dataset(
    P.dataset, n=P.n_train, seed=0, flatten=(P.arch == "mlp"), allow_fallback=P.allow_fallback
)
print(f"data: {ds.source}, x {ds.x.shape}, {ds.num_classes} classes")
x = jnp.asarray(ds.x, jnp.float32)
seed_list = np.arange(P.seed_offset, P.seed_offset + P.seeds)

#: The task families of App. B.2 (names of `tasks.TRANSFORMS`) and their labels.
FAMILIES = {
    "random_labels": "random labels",
    "permuted_classes": "permuted classes",
    "permuted_pixels": "permuted pixels",
}
#: The §4.2 modes: label -> (`tasks.mode_stream` mode, fraction transformed per boundary).
MODES = {
    "continual 1.0": ("continual", 1.0),
    "continual 0.5": ("continual", 0.5),
    "composite 0.5": ("composite", 0.5),
    "growing": ("growing", 1.0),
}


def make_stream(family: str, mode: str = "continual 1.0") -> tasks.TaskStream:
    """One family in one §4.2 mode over the base data ("continual 1.0" is exactly
    `tasks.random_labels` / `permuted_classes` / `permuted_pixels`)."""
    return tasks.mode_stream(family, x, ds.y, ds.num_classes, *MODES[mode])


# %% [markdown]
# With data loss $\mathcal{L}(\theta)$ (softmax cross-entropy) on a minibatch
# $x_1, \dots, x_B$, the interventions of Fig. 4 are:
#
# * **L2**: minimise $\mathcal{L}(\theta) + \lambda \lVert\theta\rVert_2^2$, with
#   $\lambda$ = `l2` and $\theta$ every parameter;
# * **layer norm (LN)** / **batch norm (BN)**: before each ReLU, the preactivation
#   $z$ becomes $\gamma \odot (z - \mu)/\sqrt{\sigma^2 + \epsilon} + \beta$, with mean
#   $\mu$ and variance $\sigma^2$ taken over the units of the layer (LN, per image) or
#   over the minibatch (BN, per unit) {cite}`ba2016layer,ioffe2015batch`; $\gamma$,
#   $\beta$ are learned;
# * **weight-norm constraint**: after every step each weight matrix $W_l$ is rescaled to
#   its norm at initialisation,
#   $W_l \leftarrow W_l\,\lVert W_l^{(0)}\rVert_F / \lVert W_l\rVert_F$
#   (the paper's proxy for path normalisation {cite}`neyshabur2015path`);
# * **feature-norm penalty**: add
#   $\lambda_\phi \frac{1}{B}\sum_b \lVert\phi(x_b)\rVert_2^2$,
#   with $\phi(x)$ the penultimate-layer features;
# * **ReDo**: every $k$ steps, each hidden unit $i$ of a layer with $H$ units gets the
#   score (activations $h$ on the current minibatch)
#
#   $$s_i = \frac{\mathbb{E}_b\lvert h_i(x_b)\rvert}
#   {\frac{1}{H}\sum_j \mathbb{E}_b\lvert h_j(x_b)\rvert};$$
#
#   units with $s_i \le \tau$ get fresh incoming weights and zero outgoing weights
#   {cite}`sokar2023dormant`;
# * **gradient-norm penalty** (with LN): add
#   $\lambda_g \lVert\nabla_\theta \mathcal{L}(\theta)\rVert_2^2$;
# * **InFeR** (with LN): $k$ linear heads $g(x) = A^\top\phi(x) + a$ are trained to
#   regress $\beta\, g_0(x)$, the outputs of the initial network and heads: add
#   $\lambda_I \frac{1}{B}\sum_b \lVert g(x_b) - \beta\, g_0(x_b)\rVert_2^2$
#   {cite}`lyle2021understanding`.
#
# Each arm is a normalisation layer (`ModelConfig.norm`) and the `train.TrainConfig`
# fields that switch its intervention on; the engine implements every one of them. The
# table lists the arms with this profile's coefficients, and which panel of Fig. 4 shows
# which arms (LN+L2 is the reference in every panel).


# %%
class Arm(NamedTuple):
    """One arm of Fig. 4: its normalisation and its `TrainConfig` fields."""

    norm: str  # before each ReLU: "none" | "layer" | "batch" | ... (models.NORMS)
    fields: dict  # TrainConfig fields of the intervention (coefficients of this profile)
    description: str


ARMS = {
    "baseline": Arm("none", {}, "no intervention"),
    "L2": Arm("none", {"l2": P.l2}, f"L2 penalty {P.l2:g} on every parameter"),
    "LN": Arm("layer", {}, "layer norm before each ReLU"),
    "BN": Arm("batch", {}, "batch norm (batch statistics) before each ReLU"),
    "LN+L2": Arm("layer", {"l2": P.l2}, f"layer norm + L2 {P.l2:g}"),
    "weight-norm constraint": Arm(
        "none",
        {"weight_norm_constraint": True},
        "every weight matrix rescaled to its initial Frobenius norm after each step",
    ),
    "feature-norm penalty": Arm(
        "none",
        {"feature_norm_penalty": P.feature_norm_coef},
        f"penalty {P.feature_norm_coef:g} x mean squared norm of the penultimate features",
    ),
    "ReDo": Arm(
        "none",
        {"redo_every": P.redo_every, "redo_tau": P.redo_tau},
        f"ReDo every {P.redo_every} steps, threshold {P.redo_tau:g}",
    ),
    "LN+grad-norm penalty": Arm(
        "layer",
        {"grad_norm_penalty": P.grad_norm_coef},
        f"layer norm + penalty {P.grad_norm_coef:g} x squared gradient norm",
    ),
    "LN+InFeR": Arm(
        "layer",
        {"infer_coef": P.infer_coef, "infer_scale": P.infer_scale},
        f"layer norm + InFeR (10 heads, coefficient {P.infer_coef:g}, scale {P.infer_scale:g})",
    ),
}
if P.arch == "resnet18":  # as in the paper, ReDo is not run on ResNets
    ARMS.pop("ReDo")

#: Which arms each column of Fig. 4 shows.
PANELS = {
    "parameter/feature norm growth": (
        "baseline",
        "L2",
        "LN",
        "BN",
        "weight-norm constraint",
        "feature-norm penalty",
        "LN+L2",
    ),
    "preactivation statistics": ("baseline", "LN", "BN", "ReDo", "LN+L2"),
    "loss-landscape conditioning": ("LN", "LN+grad-norm penalty", "LN+InFeR", "LN+L2"),
}


def model_config(norm: str) -> ModelConfig:
    """The network of every arm: `arch` "mlp" (`depth` hidden layers of `width`), "cnn"
    (`depth` conv layers, dense width `width`) or "resnet18" (`depth` ignored)."""
    depth = None if P.arch == "resnet18" else P.depth
    return ModelConfig(
        arch=P.arch, width=P.width, depth=depth, norm=norm, num_outputs=ds.num_classes
    )


pd.DataFrame(
    {
        name: {
            "normalisation": arm.norm,
            "intervention": arm.description,
            "panels of Fig. 4": ", ".join(p for p, arms in PANELS.items() if name in arms),
        }
        for name, arm in ARMS.items()
    }
).T

# %% [markdown]
# Shampoo, the third loss-landscape intervention of Fig. 4, needs an implementation
# that optax (the optimiser library pinned here) does not provide; the engine says so
# instead of silently substituting another optimiser:

# %%
try:
    shampoo = train.TrainConfig(optimizer="shampoo", learning_rate=P.learning_rate)
    train.init_state(make_network(model_config("layer")), shampoo, [0], x[:2])
except ValueError as err:
    print(f"Shampoo arm skipped: {err}")

# %% [markdown]
# ## Experiment
#
# Every arm is one compiled program. Its models are the *members* of the arm — a task
# family in a §4.2 mode, possibly with its own L2 coefficient — times the seeds, all
# trained together under `vmap`: `tasks.stack_streams` advances every member's stream
# for every seed in one jitted function, `train.init_state` initialises one model per
# (member, seed), and each task is one call of `train.train_steps` (a jitted `lax.scan`
# over the task's steps, `vmap` over the models, each on its own task), followed by the
# task-end evaluation `train.evaluate` over each model's task. `runner.run_chunks` is
# the host loop over tasks, with a progress bar.
#
# Keys follow the library's scheme (`keys`): seed $s$ initialises its parameters from
# `fold_in(PRNGKey(s), PARAMS)`, roots its task stream at `fold_in(PRNGKey(s), TASKS)`
# and draws its minibatches from `fold_in(PRNGKey(s), MINIBATCH)`. Members that share a
# seed share their initial parameters (where the architecture allows), their tasks and
# their minibatches, so differences between arms and between members are paired by
# seed.


# %%
class Member(NamedTuple):
    """One stream of an arm: a task family in a §4.2 mode; `l2` (App. E.5) overrides
    the arm's L2 coefficient for this member only (a vmapped hyperparameter)."""

    family: str
    mode: str = "continual 1.0"
    l2: float | None = None


@functools.cache
def stacked_stream(specs: tuple) -> tasks.TaskStream:
    """The streams of `specs` ((family, mode), ...), stacked over (member, seed) and
    jitted once per tuple (every arm with the same members reuses the program)."""
    stacked = tasks.stack_streams([make_stream(family, mode) for family, mode in specs])
    return tasks.TaskStream(jax.jit(stacked.init), jax.jit(stacked.next))


def train_arm(name: str, arm: Arm, members: list) -> dict:
    """Train every (member, seed) of one arm in one vmapped program (App. B.2).

    Returns `{member: {"accuracy", "loss", "param_norm": (S, T), "loss_curve":
    (S, T, W), "diverged": (S,)}}`: end-of-task accuracy and loss over the task's
    (masked) examples after its last step, the parameter norm then, and the mean
    minibatch loss of each window of `log_every` steps; NaN after a divergence.
    """
    network = make_network(model_config(arm.norm))
    cfg = train.TrainConfig(learning_rate=P.learning_rate, batch_size=P.batch_size, **arm.fields)
    stream = stacked_stream(tuple((m.family, m.mode) for m in members))
    n_members, n_seeds = len(members), len(seed_list)
    n_models, windows = n_members * n_seeds, P.steps_per_task // P.log_every
    l2 = [cfg.l2 if m.l2 is None else m.l2 for m in members]
    hparams = {"l2": np.repeat(np.asarray(l2, np.float32), n_seeds)}  # member-major
    label_smoothing = np.full(n_models, cfg.label_smoothing, np.float32)
    roots = keys.task_root(seed_list)  # (S, 2): task t of seed s uses fold_in(root_s, t)
    state = train.init_state(network, cfg, np.tile(seed_list, n_members), x[:2])

    def one_task(carry, t):
        state, task = carry
        if t == 0:
            task = stream.init(keys.task_keys(roots, 0))
        else:
            task = stream.next(keys.task_keys(roots, t), jnp.int32(t), task)
        state, logs = train.train_steps(
            network,
            cfg,
            state,
            task,
            P.steps_per_task,
            log_every=P.log_every,
            hparams=hparams,
            task_batched=True,
        )
        end = train.evaluate(
            network,
            state.params,
            task.x,
            task.y,
            mask=task.mask,
            batch_size=cfg.eval_batch_size,
            label_smoothing=label_smoothing,
            task_batched=True,
        )
        out = dict(
            logs, end_accuracy=end["accuracy"], end_loss=end["loss"], diverged=state.diverged
        )
        for k in ("end_accuracy", "end_loss", "diverged"):
            out[k] = out[k][:, None]  # (models, 1): joined over tasks into (models, T)
        return (state, task), out

    wall, cpu = time.perf_counter(), time.process_time()
    _, out = runner.run_chunks(
        one_task,
        (state, None),
        P.num_tasks,
        unit="task",
        desc=f"{name}: {n_members} streams x {n_seeds} seeds",
        postfix=lambda out: {"acc": out["end_accuracy"]},
    )
    timing[name] = (time.process_time() - cpu, time.perf_counter() - wall)

    def per_member(a):  # (models, ...) -> (members, seeds, ...)
        return np.asarray(a).reshape((n_members, n_seeds) + np.shape(a)[1:])

    diverged = out["diverged"]  # (models, T): diverged by the end of task t
    param_norm = out["param_norm"].reshape(n_models, P.num_tasks, windows)[..., -1]
    arrays = {
        "accuracy": np.where(diverged, np.nan, out["end_accuracy"]).astype(np.float32),
        "loss": np.where(diverged, np.nan, out["end_loss"]).astype(np.float32),
        "param_norm": np.where(diverged, np.nan, param_norm).astype(np.float32),
        "loss_curve": out["loss"].reshape(n_models, P.num_tasks, windows),
        "diverged": diverged[:, -1],
    }
    arrays = {k: per_member(v) for k, v in arrays.items()}
    result = {m: {k: v[i] for k, v in arrays.items()} for i, m in enumerate(members)}
    print(
        f"{name:>22}: {n_models:3d} models, CPU {timing[name][0]:6.1f} s, "
        f"wall {timing[name][1]:6.1f} s, diverged {int(diverged[:, -1].sum())}"
    )
    return result


# %% [markdown]
# The main run: every arm on the three families (`continual 1.0`). LN+L2 additionally
# runs in the other §4.2 modes on all three families and, on random labels, with the
# other L2 coefficients of the sweep (App. E.5).

# %%
MAIN = [Member(family) for family in FAMILIES]
RL = MAIN[0]  # random labels, continual 1.0
LN_L2_MEMBERS = (
    MAIN
    + [Member(family, mode) for mode in MODES if mode != "continual 1.0" for family in FAMILIES]
    + [Member("random_labels", l2=float(c)) for c in P.l2_sweep]
)
timing = {}
results = {
    name: train_arm(name, arm, LN_L2_MEMBERS if name == "LN+L2" else MAIN)
    for name, arm in ARMS.items()
}

# %% [markdown]
# With `norm_ablation`, the normalisation variants `norm_variants` of App. D.2 / E.9
# (each with L2, on random labels): mean subtraction alone along the batch axis
# (`batch_center`), division by the standard deviation alone along the feature axis
# (`feature_scale`), the combination of the two that E.9 found slightly better than
# standard layer or batch norm (`batch_center_feature_scale`), layer norm followed by
# batch norm (`layer_batch`, the paper's order when both are used) and plain batch norm
# (`batch`), next to LN + L2.

# %%
ablation = {}
if P.norm_ablation:
    for norm in P.norm_variants:
        variant = Arm(norm, {"l2": P.l2}, f"{norm} + L2")
        ablation[norm] = train_arm(f"{norm}+L2", variant, [RL])[RL]
total_cpu = sum(c for c, _ in timing.values())
total_wall = sum(w for _, w in timing.values())
print(f"training total: CPU {total_cpu:.0f} s, wall {total_wall:.0f} s")

# %% [markdown]
# ## Figure 4: end-of-task accuracy under each intervention

# %%
TASK_AXIS = np.arange(1, P.num_tasks + 1)
tab10 = sns.color_palette("tab10", 10)  # blue, orange, green, red, purple, brown, pink, ...
COLORS = {
    "baseline": "black",
    "L2": tab10[1],  # orange
    "LN": tab10[2],  # green
    "BN": tab10[4],  # purple
    "LN+L2": tab10[3],  # red
    "weight-norm constraint": tab10[5],  # brown
    "feature-norm penalty": tab10[6],  # pink
    "ReDo": tab10[8],  # olive
    "LN+grad-norm penalty": tab10[9],  # cyan
    "LN+InFeR": tab10[0],  # blue
}
METRICS = {"accuracy": "end-of-task accuracy (%)", "loss": "end-of-task loss (log scale)"}


def end_of_task(run: dict, key: str = "accuracy") -> np.ndarray:
    """(seeds, tasks) end-of-task `key` of one member's run; accuracy in points (%)."""
    return 100.0 * run[key] if key == "accuracy" else run[key]


def accuracy_ylim(curves: dict) -> tuple:
    """From 98 % (lower if a curve goes lower) to just above 100 %."""
    return min(np.nanmin(list(curves.values())) - 0.3, 98.0), 100.3


def integer_ticks(axes) -> None:
    for ax in np.ravel(axes):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def lines_over_tasks(ax, curves: dict, y: str, hue: str, palette, legend: bool) -> None:
    """Each (seeds, tasks) curve as its mean over seeds with a 95 % band, against the task."""
    plotting.seed_band_lines(
        ax,
        curves,
        TASK_AXIS,
        x_name="task",
        y_name=y,
        hue=hue,
        palette=palette,
        markersize=4,
        legend=legend,
    )


fig, axes = plt.subplots(len(FAMILIES), len(PANELS), figsize=(15, 10.5), sharex=True)
for j, (panel, arms) in enumerate(PANELS.items()):
    arms = [a for a in arms if a in ARMS]
    for i, (family, label) in enumerate(FAMILIES.items()):
        ax, bottom = axes[i, j], i == len(FAMILIES) - 1
        curves = {arm: end_of_task(results[arm][Member(family)]) for arm in arms}
        lines_over_tasks(ax, curves, "accuracy", "intervention", COLORS, bottom)
        ax.set(
            xlabel="task" if bottom else "",
            ylabel=f"{label}\nend-of-task accuracy (%)" if j == 0 else "",
            ylim=accuracy_ylim(curves),
            title=panel if i == 0 else "",
        )
    axes[-1, j].legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=9)
integer_ticks(axes)
fig.suptitle(f"End-of-task training accuracy, {P.seeds} seeds (mean and 95 % band)", y=1.0)
fig.tight_layout()
plotting.savefig(fig, "ch06_fig4_interventions", P.profile)
plt.show()
# %% [markdown]
# Rows are the task families, columns the three groups of interventions of Fig. 4; every
# panel has its own y-axis (at least 98–100 %), and LN+L2 (red) is the reference in each.
# Look at the top row: on random labels the unregularised baseline (black) fits each new
# labelling a little less well from task to task, while LN+L2 and the other normalised
# arms stay at 100 %; the feature-norm penalty (pink, left column) falls far below the
# baseline with the coefficient used here. In the right-hand column every arm has layer
# normalisation and no L2. On permuted classes and permuted pixels nearly every arm
# stays at 100 %: with the true labels there is little plasticity to lose at this scale.

# %% [markdown]
# ## What the accuracy ceiling hides: end-of-task loss


# %%
def family_panels(key: str, ylabel: str, **subplots):
    """End-of-task `key` of every arm against task (log scale), one panel per family."""
    fig, axes = plt.subplots(1, len(FAMILIES), figsize=(15, 4.2), **subplots)
    for ax, (family, label) in zip(axes, FAMILIES.items()):
        curves = {arm: end_of_task(results[arm][Member(family)], key) for arm in ARMS}
        lines_over_tasks(ax, curves, key, "intervention", COLORS, ax is axes[-1])
        ax.set(title=label, xlabel="task", ylabel=ylabel)
    plotting.plain_log_y(axes)
    integer_ticks(axes)
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9)
    fig.tight_layout()
    return fig


fig = family_panels("loss", "end-of-task training loss (log scale)")
plotting.savefig(fig, "ch06_end_of_task_loss", P.profile)
plt.show()

# %% [markdown]
# The cross-entropy over each task's whole training set after its last step, on a log
# scale (each panel has its own scale). Where every arm fits its tasks to 100 %
# accuracy, the loss still shows how far each network gets within the step budget: a
# network that learns more slowly on later tasks ends them at a higher loss. Read the
# trend of each line from left to right. On random labels the baseline's loss climbs
# steeply, the normalised arms start lower and climb more slowly, the weight-norm
# constraint stays high but flat, and InFeR is the one arm whose loss falls after its
# first task. The claims below use accuracy, as fixed in advance; this figure is
# descriptive.

# %% [markdown]
# ## Parameter norm over tasks

# %%
fig = family_panels("param_norm", r"parameter norm $\|\theta\|_2$ (log scale)", sharey=True)
plotting.savefig(fig, "ch06_param_norm", P.profile)
plt.show()

# %% [markdown]
# The norm of all parameters at the end of each task (log scale). Every arm without L2
# keeps growing its norm from task to task; L2 and LN+L2 slow the growth (over ten short
# tasks it has not levelled off yet), and the weight-norm constraint keeps the weight
# matrices at their initial norms by construction, so only its biases move. Normalised
# networks are free to let their weights grow because their output does not depend on
# the scale of the incoming weights (App. F).

# %% [markdown]
# ## Figure 7: learning curves early and late

# %%
CURVE_ARMS = ["baseline", "LN+L2"]
show = sorted({0, 1, P.num_tasks - 2, P.num_tasks - 1})
window_steps = np.arange(1, P.steps_per_task // P.log_every + 1) * P.log_every
fig, axes = plt.subplots(
    len(FAMILIES), len(CURVE_ARMS), figsize=(11, 10), sharex=True, sharey="row"
)
for i, (family, label) in enumerate(FAMILIES.items()):
    for j, arm in enumerate(CURVE_ARMS):
        ax, loss_curve = axes[i, j], results[arm][Member(family)]["loss_curve"]  # (S, T, W)
        plotting.seed_band_lines(
            ax,
            {f"task {t + 1}": loss_curve[:, t] for t in show},
            window_steps,
            x_name="step",
            y_name="loss",
            hue="task",
            palette="viridis",
            markersize=4,
            legend=(i == 0 and j == len(CURVE_ARMS) - 1),
        )
        ax.set(
            xlabel="steps into the task" if i == len(FAMILIES) - 1 else "",
            ylabel=f"{label}\ntraining loss (log scale)" if j == 0 else "",
            title=arm if i == 0 else "",
        )
plotting.plain_log_y(axes)
axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
fig.tight_layout()
plotting.savefig(fig, "ch06_fig7_learning_curves", P.profile)
plt.show()

# %% [markdown]
# Each curve is the mean cross-entropy on the minibatches of a window of `log_every`
# steps (plotted at the window's end), for the first two and the last two
# tasks. A network that loses plasticity shows it as a curve that falls more slowly on
# later tasks (a shallower curve, App. D.1), not necessarily as a higher plateau.

# %% [markdown]
# ## Figure 5 (left): LN+L2 across the §4.2 modes

# %%
FAMILY_COLORS = dict(zip(FAMILIES.values(), sns.color_palette("colorblind", len(FAMILIES))))
fig, axes = plt.subplots(2, len(MODES), figsize=(15, 7.2), sharex=True)
for j, mode in enumerate(MODES):
    for i, (key, ylabel) in enumerate(METRICS.items()):
        ax = axes[i, j]
        curves = {
            label: end_of_task(results["LN+L2"][Member(family, mode)], key)
            for family, label in FAMILIES.items()
        }
        lines_over_tasks(ax, curves, key, "family", FAMILY_COLORS, (i == 1 and j == len(MODES) - 1))
        ax.set(
            xlabel="task" if i == 1 else "",
            ylabel=ylabel if j == 0 else "",
            title=mode if i == 0 else "",
        )
        if key == "accuracy":
            ax.set_ylim(accuracy_ylim(curves))
plotting.plain_log_y(axes[1])
integer_ticks(axes)
axes[1, -1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9)
fig.suptitle("LN+L2 in the §4.2 modes", y=1.0)
fig.tight_layout()
plotting.savefig(fig, "ch06_fig5_modes", P.profile)
plt.show()

# %% [markdown]
# LN+L2 in each mode of §4.2 (columns), one line per task family: end-of-task accuracy
# (top; the claim is that it does not trend down) and end-of-task loss (bottom). In the
# growing mode the first task holds a single class (trivially fitted on permuted
# classes and pixels) and each task adds one, so later tasks are larger; in the
# composite mode half of the images never change.

# %% [markdown]
# ## Appendix E.5 and D.2 / E.9: the L2 coefficient and the parts of a normalisation layer


# %%
settings = {"LN, no L2": results["LN"][RL], f"LN + L2 {P.l2:g}": results["LN+L2"][RL]}
for c in P.l2_sweep:
    settings[f"LN + L2 {c:g}"] = results["LN+L2"][Member("random_labels", l2=float(c))]
panels = [("setting", settings, "L2 sweep with layer norm (E.5)", "mako")]
if ablation:
    variants = {f"{norm} + L2": run for norm, run in ablation.items()}
    variants["layer + L2"] = results["LN+L2"][RL]
    panels.append(
        ("intervention", variants, "normalisation variants + L2 (D.2, E.9)", "colorblind")
    )
fig, axes = plt.subplots(
    2, len(panels), figsize=(6.8 * len(panels), 7.5), squeeze=False, sharex=True
)
for j, (hue, runs, title, palette) in enumerate(panels):
    for i, (key, ylabel) in enumerate(METRICS.items()):
        ax = axes[i, j]
        curves = {name: end_of_task(run, key) for name, run in runs.items()}
        lines_over_tasks(ax, curves, key, hue, palette, (i == 1))
        ax.set(
            xlabel="task" if i == 1 else "",
            ylabel=ylabel,
            title=f"{title}, random labels" if i == 0 else "",
        )
        if key == "loss":
            plotting.plain_log_y(ax)
            ax.legend(fontsize=8, loc="upper left")
        else:
            ax.set_ylim(accuracy_ylim(curves))
integer_ticks(axes)
fig.tight_layout()
plotting.savefig(fig, "ch06_appendix_l2_norms", P.profile)
plt.show()

# %% [markdown]
# Left: the L2 coefficient of LN+L2 on random labels, end-of-task accuracy (top) and
# loss (bottom); "LN, no L2" is the LN arm of Fig. 4. E.5 found that a smaller penalty
# than the default closes most of the gap in peak accuracy while keeping plasticity,
# and that an overly large one slows training. Here every setting fits 100 %; in the
# loss, the strongest penalty keeps the end-of-task loss nearly flat from task to task
# (from a higher start), while the weaker ones let it climb almost as fast as no L2
# over these ten short tasks. Right (with `norm_ablation`): which component of the
# normalisation layer matters. Mean subtraction alone along the batch axis
# (`batch_center`) ends the tasks at the highest loss and division by the feature-axis
# standard deviation alone (`feature_scale`) at the lowest — in line with D.2, which
# attributes most of the benefit of normalisation to the rescaling.

# %% [markdown]
# ## Claim checks
#
# All statistics use the end-of-task accuracy in percentage points, per seed, with 95 %
# intervals over the seeds; the rules below were fixed in the chapter's issue before
# any run.
#
# * `ch6.baseline_loses`: on random labels, the baseline's mean over the last three
#   tasks minus its mean over the first three; t-interval of the per-seed differences
#   entirely below 0.
# * `ch6.ln_l2_keeps`: the same difference for LN+L2, on each task family (one
#   condition per family); the interval's lower end must be at least −2 points.
# * `ch6.ln_l2_best`: for each family and each single intervention (L2, LN, BN,
#   weight-norm constraint, feature-norm penalty, ReDo), the t-interval of the
#   intervention's last-three-task accuracy must not lie entirely above LN+L2's. Each
#   condition's statistic is the lower end of the intervention's interval minus the
#   upper end of LN+L2's: the condition fails exactly when it is positive.
# * `ch6.modes_hold`: for each mode and family, the least-squares slope of LN+L2's
#   end-of-task accuracy against the task index, per seed; its t-interval must include
#   or exceed 0, so each condition's statistic is the upper end of that interval
#   (the whole interval is in the note).
# * `ch6.weightnorm_slows`: first-task end accuracy of the weight-norm constraint minus
#   the baseline's, per seed, on random labels (where a task takes the whole step
#   budget to fit); t-interval entirely below 0.


# %%
def accuracy(arm: str, member: Member) -> np.ndarray:
    """(seeds, tasks) end-of-task accuracy in percentage points."""
    return end_of_task(results[arm][member])


def finite_rows(a: np.ndarray) -> np.ndarray:
    """Drop the seeds of a diverged run (NaN accuracies); the table below reports them."""
    return a[np.all(np.isfinite(a), axis=1)]


book = claims.ClaimBook("ch06_swiss_cheese", P, dataset=ds.source)

first, last = stats.first_last_means(finite_rows(accuracy("baseline", RL)))
book.check(
    "ch6.baseline_loses",
    kind="paper",
    statement="Without intervention, end-of-task accuracy on random-label tasks falls: "
    "the last three tasks are fitted worse than the first three.",
    figure="§4.1, Fig. 4",
    statistic="baseline, random labels: last-3 minus first-3 end-of-task accuracy (points)",
    estimate=claims.t_interval(last - first),
    threshold=0.0,
    direction="<",
)

parts = []
for member, label in zip(MAIN, FAMILIES.values()):
    first, last = stats.first_last_means(finite_rows(accuracy("LN+L2", member)))
    parts.append(
        claims.part(
            f"LN+L2, {label}: last-3 minus first-3 accuracy (points)",
            claims.t_interval(last - first),
            -2.0,
            ">=",
        )
    )
book.check(
    "ch6.ln_l2_keeps",
    kind="paper",
    statement="With layer normalisation and L2, end-of-task accuracy over the last three "
    "tasks is at least the first three tasks' minus 2 points.",
    figure="§4.1–4.2, Fig. 4",
    parts=parts,
)

SINGLE = ("L2", "LN", "BN", "weight-norm constraint", "feature-norm penalty", "ReDo")
single = [arm for arm in SINGLE if arm in ARMS]
parts = []
for member, label in zip(MAIN, FAMILIES.values()):
    ref = claims.t_interval(stats.first_last_means(finite_rows(accuracy("LN+L2", member)))[1])
    for arm in single:
        est = claims.t_interval(stats.first_last_means(finite_rows(accuracy(arm, member)))[1])
        gap = claims.Estimate(
            stats.interval_gap(est, ref),
            None,
            None,
            f"lower end of {arm}'s t-interval ({claims.format_estimate(est)}) "
            f"minus upper end of LN+L2's ({claims.format_estimate(ref)})",
            est.n,
        )
        parts.append(
            claims.part(
                f"{label}: {arm} last-3 interval low minus LN+L2 interval high (points)",
                gap,
                0.0,
                "<=",
            )
        )
book.check(
    "ch6.ln_l2_best",
    kind="paper",
    statement="On each task family, no single intervention (L2, LN, BN, weight-norm "
    "constraint, feature-norm penalty, ReDo) reaches a last-three-task accuracy whose "
    "interval lies entirely above LN+L2's.",
    figure="§4.1, Fig. 4",
    parts=parts,
)

parts, notes, mode_slopes = [], [], []
for mode in MODES:
    for family, label in FAMILIES.items():
        slope = claims.t_interval(
            stats.trend_slopes(finite_rows(accuracy("LN+L2", Member(family, mode))))
        )
        mode_slopes.append(slope)
        high = slope.value if slope.high is None else slope.high
        parts.append(
            claims.part(
                f"{mode}, {label}: upper end of the slope's t-interval (points/task)",
                claims.Estimate(
                    high, None, None, f"slope {claims.format_estimate(slope)}", slope.n
                ),
                0.0,
                ">=",
            )
        )
        notes.append(f"{mode}, {label}: slope {claims.format_estimate(slope)} points/task")
book.check(
    "ch6.modes_hold",
    kind="paper",
    statement="In every §4.2 mode (continual 0.5 and 1.0, composite, growing), LN+L2's "
    "end-of-task accuracy does not trend down over tasks.",
    figure="§4.2, Fig. 5 (left)",
    parts=parts,
    note="; ".join(notes),
)

weight_norm, base = accuracy("weight-norm constraint", RL), accuracy("baseline", RL)
keep = np.isfinite(weight_norm[:, 0]) & np.isfinite(base[:, 0])
book.check(
    "ch6.weightnorm_slows",
    kind="paper",
    statement="Constraining each weight matrix to its initial norm slows optimisation: "
    "lower accuracy than the baseline at the end of the first task.",
    figure="§4.1, Fig. 4 (left)",
    statistic="random labels: weight-norm constraint minus baseline, first-task end "
    "accuracy (points)",
    estimate=claims.t_interval(weight_norm[keep, 0] - base[keep, 0]),
    threshold=0.0,
    direction="<",
)
book.table()

# %%
book.save()
rows = []
for arm in ARMS:
    for member, label in zip(MAIN, FAMILIES.values()):
        run = results[arm][member]
        acc = accuracy(arm, member)
        first, last = stats.first_last_means(acc)
        loss_first, loss_last = stats.first_last_means(run["loss"])
        rows.append(
            {
                "intervention": arm,
                "family": label,
                "first task (%)": np.nanmean(acc[:, 0]),
                "first 3 tasks (%)": np.nanmean(first),
                "last 3 tasks (%)": np.nanmean(last),
                "loss, first 3 tasks": np.nanmean(loss_first),
                "loss, last 3 tasks": np.nanmean(loss_last),
                "final parameter norm": np.nanmean(run["param_norm"][:, -1]),
                "diverged seeds": int(run["diverged"].sum()),
            }
        )
summary = pd.DataFrame(rows)
summary["loss ratio, last / first"] = summary["loss, last 3 tasks"] / summary["loss, first 3 tasks"]
names = list(ARMS)
summary.pivot(index="intervention", columns="family", values="last 3 tasks (%)").loc[names].round(2)

# %% [markdown]
# Mean end-of-task accuracy over the last three tasks (%), per intervention and task
# family. Below, the end-of-task training loss over the last three tasks divided by that
# over the first three (above 1: later tasks are fitted less well within the same
# number of steps):

# %%
summary.pivot(index="intervention", columns="family", values="loss ratio, last / first").loc[
    names
].round(2)

# %% [markdown]
# The full summary (means over seeds):

# %%
summary.round(4)

# %% [markdown]
# ## What we found

# %% tags=["remove-input"]
v = {c.id: c.verdict for c in book.claims}
s = summary.set_index(["intervention", "family"])
fam0 = FAMILIES["random_labels"]


def cell(arm, family, col):
    return s.loc[(arm, family), col]


def est(claim_id, i=0):
    record = next(c for c in book.claims if c.id == claim_id)
    return claims.format_estimate(record.parts[i].estimate)


def last3(run: dict, key: str = "accuracy") -> float:
    """Mean over seeds of the mean over the last three tasks."""
    return float(stats.first_last_means(run[key])[1].mean())


def loss_ratio(run: dict) -> float:
    """Mean end-of-task loss over the last three tasks / over the first three."""
    first, last = stats.first_last_means(run["loss"])
    return float(np.mean(last) / np.mean(first))


ratio = s["loss ratio, last / first"]
best_other = max(single, key=lambda a: cell(a, fam0, "last 3 tasks (%)"))
worst_other = min(single, key=lambda a: cell(a, fam0, "last 3 tasks (%)"))
n_fail = sum(
    p.verdict != "reproduced" for c in book.claims if c.id == "ch6.ln_l2_best" for p in c.parts
)
mode_ratio_txt = ", ".join(
    f"{mode}: "
    + "/".join(f"{loss_ratio(results['LN+L2'][Member(family, mode)]):.2g}" for family in FAMILIES)
    for mode in MODES
)
sweep_runs = {c: results["LN+L2"][Member("random_labels", l2=float(c))] for c in P.l2_sweep}
sweep_txt = ", ".join(
    f"{c:g}: {100 * last3(run):.2f} % (loss ratio {loss_ratio(run):.2g})"
    for c, run in sweep_runs.items()
)
ab_txt = ""
if ablation:
    ab_txt = (
        "* **Normalisation variants + L2** (D.2, E.9; random labels, last three tasks): "
        + ", ".join(
            f"{norm} {100 * last3(run):.2f} % (loss ratio {loss_ratio(run):.2g})"
            for norm, run in ablation.items()
        )
        + "."
    )
pc, pp = FAMILIES["permuted_classes"], FAMILIES["permuted_pixels"]
base_first3 = cell("baseline", fam0, "first 3 tasks (%)")
base_last3 = cell("baseline", fam0, "last 3 tasks (%)")
ln_l2_last3 = cell("LN+L2", fam0, "last 3 tasks (%)")
highest = max(e.value if e.high is None else e.high for e in mode_slopes)
lowest = min(e.value if e.low is None else e.low for e in mode_slopes)
display(
    Markdown(f"""
In this run ({P.profile} profile, {ds.source}, {P.n_train} images,
{P.arch.upper()} {P.width} × {P.depth}, {P.seeds} seeds, {P.num_tasks} tasks of
{P.steps_per_task} steps; the training took {total_cpu:.0f} s of CPU time,
{total_wall:.0f} s of wall time):

* **Baseline on random labels** (`ch6.baseline_loses`: **{v["ch6.baseline_loses"]}**):
  end-of-task accuracy {base_first3:.2f} % over the first three tasks, {base_last3:.2f} %
  over the last three (difference {est("ch6.baseline_loses")} points); its end-of-task
  loss grew {ratio[("baseline", fam0)]:.2g}-fold and its parameter norm reached
  {cell("baseline", fam0, "final parameter norm"):.0f}.
* **LN+L2** (`ch6.ln_l2_keeps`: **{v["ch6.ln_l2_keeps"]}**): last-three minus first-three
  accuracy {est("ch6.ln_l2_keeps", 0)}, {est("ch6.ln_l2_keeps", 1)} and
  {est("ch6.ln_l2_keeps", 2)} points on random labels, permuted classes and permuted
  pixels. Its end-of-task loss still grew {ratio[("LN+L2", fam0)]:.2g}-fold on random
  labels (baseline {ratio[("baseline", fam0)]:.2g}-fold), {ratio[("LN+L2", pc)]:.2g}-fold
  on permuted classes and {ratio[("LN+L2", pp)]:.2g}-fold on permuted pixels.
* **No single intervention beats LN+L2** (`ch6.ln_l2_best`: **{v["ch6.ln_l2_best"]}**,
  {n_fail} of {3 * len(single)} conditions failed): on random labels the best single
  intervention over the last three tasks was {best_other}
  ({cell(best_other, fam0, "last 3 tasks (%)"):.2f} % against LN+L2's {ln_l2_last3:.2f} %).
  The lowest was {worst_other} ({cell(worst_other, fam0, "last 3 tasks (%)"):.1f} %;
  baseline {base_last3:.2f} %).
* **Modes** (`ch6.modes_hold`: **{v["ch6.modes_hold"]}**): the largest upper end of a
  slope interval was {highest:.3g} points per task, the smallest lower end {lowest:.3g}.
  LN+L2's end-of-task loss ratio (last three / first three tasks; random labels /
  permuted classes / permuted pixels): {mode_ratio_txt}.
* **Weight-norm constraint** (`ch6.weightnorm_slows`: **{v["ch6.weightnorm_slows"]}**):
  first-task accuracy on random labels
  {cell("weight-norm constraint", fam0, "first task (%)"):.2f} % against the baseline's
  {cell("baseline", fam0, "first task (%)"):.2f} % (difference
  {est("ch6.weightnorm_slows")} points).
* **Loss-landscape arms** (with LN, no L2), random labels, last three tasks: LN
  {cell("LN", fam0, "last 3 tasks (%)"):.2f} %, + gradient-norm penalty
  {cell("LN+grad-norm penalty", fam0, "last 3 tasks (%)"):.2f} %, + InFeR
  {cell("LN+InFeR", fam0, "last 3 tasks (%)"):.2f} % (loss ratios
  {ratio[("LN", fam0)]:.2g}, {ratio[("LN+grad-norm penalty", fam0)]:.2g},
  {ratio[("LN+InFeR", fam0)]:.2g}). Shampoo was not run (no optax implementation).
* **E.5 sweep** (LN + L2 on random labels, last three tasks): {P.l2:g}:
  {ln_l2_last3:.2f} % (loss ratio {ratio[("LN+L2", fam0)]:.2g}); {sweep_txt}.
{ab_txt}
""")
)

# %% [markdown]
# **Reading these results.** At the default profile every claim is tested on tasks that
# are small for the network: 512 images, which a 128 × 2 MLP fits in a few hundred Adam
# steps. The two families with true MNIST labels are fitted to 100 % by every arm on
# every task, and so is every mode of LN+L2; on those streams the accuracy claims hold
# at the ceiling and test only that an intervention does no harm. The informative
# comparisons are on random labels, where the baseline's decline is real but small
# (about one point over ten tasks, growing with the task index), the weight-norm
# constraint is measurably slower on the first task, and the feature-norm penalty with
# our (untuned) coefficient loses far more accuracy than doing nothing. The end-of-task
# *loss* shows what the accuracy ceiling hides: on random labels the baseline ends its
# late tasks at a several-fold higher loss than its early ones, with shallower learning
# curves (Fig. 7, App. D.1), while LN+L2's loss grows by a smaller factor but does grow —
# at this scale LN+L2 slows plasticity loss rather than abolishing it, and the paper's
# stronger statement for §4.2 (accuracy *improving* over 20 tasks, Fig. 5 left) is
# neither confirmed nor contradicted by a test at 100 %. Two side results go beyond the
# claims: InFeR, slow on the first task, is the only arm whose end-of-task loss falls
# over later tasks, and a ten-times stronger L2 (E.5) holds LN's loss almost constant.
# Harder tasks — the paper profile's CIFAR-10 with 75,000 steps per task, or more images
# per task here — would move the arms off the ceiling and make `ch6.ln_l2_keeps`,
# `ch6.ln_l2_best` and `ch6.modes_hold` bite. At the smoke profile the numbers above
# only show that the code runs.
