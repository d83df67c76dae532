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
# L2 sweep of App. E.5, the normalisation ablations of App. D.2 / E.9 and a test of the
# independence of mechanisms of App. F of {cite}`lyle2024disentangling`.*
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
# ("improving accuracy over time", Fig. 5 left) — when the data change in other ways
# (continual, composite and growing modes).
#
# App. F adds why one remedy is not enough: two mechanisms are *independent* "if there
# exist learning problems where completely mitigating one mechanism does not prevent
# plasticity loss due to the other". Layer normalisation removes preactivation drift but
# leaves the parameter norm free to grow; L2 bounds the norm but not the drift. This
# chapter tests that with a 2 × 2 design on two streams built for each mechanism.

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
import concurrent.futures
import functools
import math
import threading
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

from plasticity_lib import (
    claims,
    data,
    diagnostics,
    keys,
    plotting,
    profiles,
    runner,
    stats,
    tasks,
    train,
)
from plasticity_lib import timing as time_account
from plasticity_lib.diagnostics import units
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
independence = None  # also run the App. F independence test (streams N and P)

# %%
P = profiles.resolve_notebook("ch06_swiss_cheese", globals())
profiles.show("ch06_swiss_cheese")

# %% [markdown]
# | | paper (§4.1–4.2, B.1–B.2) | this chapter, default profile | why |
# |---|---|---|---|
# | data | CIFAR-10 (MNIST, CIFAR-100 "consistent", B.2) | 1,024 MNIST images, calibrated | note 1 |
# | network | MLP 512 × 4, CNN, ResNet-18 | MLP 128 × 2, ReLU | note 2 |
# | optimiser | Adam, $10^{-5}$ (MLP), batch size not given | Adam $10^{-3}$, batch 64 | note 3 |
# | tasks | 20 tasks × 75,000 steps | 6 tasks × 400 steps | notes 4, 10 |
# | L2 | $10^{-5}$, E.5 $10^{-6}$ | $10^{-4}$ (all parameters), E.5 $10^{-5}$, $10^{-3}$ | note 5 |
# | other coefficients | not given | see the table of arms below | note 6 |
# | Shampoo | with layer norm | **not run** | optax 0.2.8 has none (below) |
# | modes (§4.2) | `continual 0.5` / `1.0`, composite, growing | the same, all families | note 7 |
# | accuracy | end-of-task accuracy | on the task's training set after its last step | note 8 |
# | batch norm | — | batch statistics in training and evaluation | the library's convention |
# | seeds | not stated | 3, trained at once with `vmap` | intervals over seeds; note 10 |
# | D.2 / E.9 variants | five normalisation variants | two (`norm_variants`) | note 10 |
# | plasticity (§2.2) | — | fresh labelling, final vs fresh parameters | the book's measure |
# | independence (App. F) | long CNN runs (Fig. 8) | 2 × 2 design, streams N and P | note 9 |
#
# Notes: (1) available offline, CPU budget. (2) CPU budget; the paper profile is the MLP
# of B.1 on CIFAR-10, `arch=cnn` / `resnet18` give the others. (3) A task converges in
# hundreds of steps instead of 75,000. (4) B.2 picks the interval so that each task
# converges. The number of images was chosen before any sequence was run, on the first
# task only: the smallest candidate size at which a fresh baseline ends its first random
# labelling inside the window of 90 to 99 per cent accuracy within `steps_per_task` steps
# (2 seeds; the check is rerun below, "Calibrating the difficulty"). With 512 images
# (the previous default) every arm fitted every task completely, so no accuracy claim
# could fail. MNIST reached the window; Fashion-MNIST was not needed. (5) A run of
# thousands of steps (`num_tasks` × `steps_per_task`) instead of $1.5\cdot10^6$ steps needs a
# stronger pull for the same norm control (as in the overview chapter). (6) Feature-norm penalty
# $10^{-3}$; ReDo every 100 steps with $\tau = 10^{-1}$; gradient-norm penalty $10^{-3}$; InFeR with
# 10 heads, $\beta = 10$, coefficient $10^{-1}$: our choices, fixed before the runs, not tuned.
# (7) Composite transforms a fixed half of the images (the same half for every seed):
# the paper gives no composite fraction. (8) What a plastic network can fit.
# (9) Stream N is calibrated the same way for its own step budget (`n_train_short`
# images, `steps_short` steps). The paper's evidence for norm growth in normalised
# networks comes from 20 tasks × 75,000 steps; forty tasks of a hundred steps is a far
# shorter horizon, so LN alone may not yet lose plasticity here. (10) The 10-minute
# budget: with 10 tasks, 5 seeds and all five variants the chapter took about 1,980 CPU
# seconds (27 minutes of wall time on a shared machine), almost all of it training.
# Fixed before the run that uses them, and recorded in the claim-revision history:
# 6 tasks (the fewest that give separate first-3 and last-3 windows), 3 seeds, and two of
# the five variants (no claim depends on them). The calibration (`n_train`,
# `steps_per_task`) and stream N (40 tasks) are unchanged; the paper profile keeps
# 5 seeds and all five variants.

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


class Setting(NamedTuple):
    """The base data and schedule of a sequence: stream P (the main run, `n_train` images,
    `num_tasks` x `steps_per_task`) or stream N of the independence test (below)."""

    name: str
    x: jax.Array  # (N, features) base images
    y: np.ndarray  # (N,) true labels
    num_tasks: int
    steps_per_task: int
    log_every: int


MAIN_SETTING = Setting("P", x, ds.y, P.num_tasks, P.steps_per_task, P.log_every)
SETTINGS = {"P": MAIN_SETTING}


def make_stream(
    family: str, mode: str = "continual 1.0", setting: Setting = MAIN_SETTING
) -> tasks.TaskStream:
    """One family in one §4.2 mode over the base data ("continual 1.0" is exactly
    `tasks.random_labels` / `permuted_classes` / `permuted_pixels`)."""
    return tasks.mode_stream(family, setting.x, setting.y, ds.num_classes, *MODES[mode])


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
# ## Calibrating the difficulty on the first task
#
# The paper's premise is that a single task converges within the interval between task
# changes (B.2), and the claims below compare accuracies: if every arm fits every task
# completely, no accuracy claim can fail. So the number of images was chosen on the
# **first task only**, before any sequence was run: a fresh baseline (no intervention)
# trains on the first random labelling of `n` images for `steps_per_task` Adam steps
# (2 seeds), for each candidate size in `calibration_sizes`, and `n_train` is a size whose
# end-of-task accuracy lies inside the window below. Stream N of the independence test
# (further down) was calibrated the same way for its own budget (`n_train_short` images,
# `steps_short` steps). The check is rerun here, on the data of this run, so a reader (or
# a run on another dataset) sees whether the window still holds; the profile's values
# are not changed by it.

# %%
#: Programs trained at a time, in threads. The programs are independent: while one is
#: compiled (XLA compiles on one core) or runs its host loop, another trains, so both
#: cores of a small CPU stay busy. Each computes what it computes alone (same inputs,
#: same program). On an accelerator they run one at a time (with progress bars).
WORKERS = 2 if jax.default_backend() == "cpu" else 1
program_log = {}  # program -> one line (models, wall seconds, diverged seeds)
cell_cost = {}  # cell -> (CPU seconds of the process, wall seconds)


def run_programs(cell: str, jobs: list, account: str = "training") -> list:
    """`[fn(*args) for fn, args in jobs]`, `WORKERS` at a time (in the order given: start
    the longest first); then the lines of the programs it ran, and the cell's CPU and wall
    time (the CPU time of both cores: the programs overlap)."""
    cpu, wall, before = time.process_time(), time.perf_counter(), set(program_log)
    with time_account.section(account):  # the chapter's time account (plasticity_lib.timing)
        if WORKERS > 1 and len(jobs) > 1:
            with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
                out = list(pool.map(lambda job: job[0](*job[1]), jobs))
        else:
            out = [fn(*args) for fn, args in jobs]
    cell_cost[cell] = (time.process_time() - cpu, time.perf_counter() - wall)
    for name in sorted(set(program_log) - before):
        print(program_log[name])
    print(f"{cell}: CPU {cell_cost[cell][0]:.0f} s, wall {cell_cost[cell][1]:.0f} s")
    return out


CALIBRATION_WINDOW = (90.0, 99.0)  # first-task accuracy (%) of a fresh baseline, issue 16
CALIBRATION_SEEDS = [0, 1]


def first_task_accuracy(sizes: list, steps: int) -> np.ndarray:
    """(len(sizes), 2) end-of-task accuracy (%) of fresh baselines (seeds
    `CALIBRATION_SEEDS`) on the first random labelling of the seeded `n`-image subset, for
    each `n` in `sizes`, after `steps` Adam steps. One compiled program: the subsets are
    padded to the largest and masked (minibatches and evaluation see masked images only)."""
    n_max, n_seeds = max(sizes), len(CALIBRATION_SEEDS)
    roots = keys.task_root(np.asarray(CALIBRATION_SEEDS))
    fields = []
    for n in sizes:
        sub = data.load_dataset(
            P.dataset, n=n, seed=0, flatten=(P.arch == "mlp"), allow_fallback=P.allow_fallback
        )
        xs = jnp.asarray(sub.x, jnp.float32)
        task = jax.vmap(tasks.random_labels(xs, sub.num_classes).init)(keys.task_keys(roots, 0))
        pad = [(0, 0), (0, n_max - n)]
        fields.append(
            (
                jnp.pad(task.x, pad + [(0, 0)] * (task.x.ndim - 2)),
                jnp.pad(task.y, pad),
                jnp.pad(task.mask, pad),
            )
        )
    task = tasks.Task(*(jnp.concatenate(f) for f in zip(*fields)))  # (sizes * seeds, n_max)
    network = make_network(model_config("none"))
    cfg = train.TrainConfig(learning_rate=P.learning_rate, batch_size=min(P.batch_size, *sizes))
    state = train.init_state(network, cfg, CALIBRATION_SEEDS * len(sizes), task.x[0, :2])
    state, _ = train.train_steps(network, cfg, state, task, steps, task_batched=True)
    end = train.evaluate(network, state.params, task.x, task.y, mask=task.mask, task_batched=True)
    return 100.0 * np.asarray(end["accuracy"]).reshape(len(sizes), n_seeds)


calibration_runs = [(sorted({*P.calibration_sizes, P.n_train}), P.steps_per_task, "P")]
if P.independence:
    calibration_runs.append(([P.n_train_short], P.steps_short, "N"))
rows = []
accuracies = run_programs("calibration", [(first_task_accuracy, r[:2]) for r in calibration_runs])
for (sizes, steps, stream_name), accs in zip(calibration_runs, accuracies):
    for n, acc in zip(sizes, accs):
        chosen = n == (P.n_train if stream_name == "P" else P.n_train_short)
        in_window = (acc >= CALIBRATION_WINDOW[0]) & (acc <= CALIBRATION_WINDOW[1])
        rows.append(
            {
                "stream": stream_name,
                "images": n,
                "steps": steps,
                **{f"seed {s} (%)": a for s, a in zip(CALIBRATION_SEEDS, acc)},
                "in window": bool(np.all(in_window)),
                "profile value": "yes" if chosen else "",
            }
        )
calibration = pd.DataFrame(rows)
calibration.round(2)

# %% [markdown]
# Each row is one candidate size: the first-task accuracy of the two fresh baselines
# and whether both lie inside the window; "profile value" marks the sizes this run uses
# (stream P: `n_train`; stream N: `n_train_short`).

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
# the host loop over tasks. Members with the same family and mode share their tasks
# (the stream is advanced once). The programs are independent, so they run two at a
# time in threads (`run_programs`): while one is being compiled, which uses one core,
# the other trains; each computes exactly what it would compute alone.
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


def locked_cache(fn):
    """`functools.cache` behind a lock: programs running in threads (below) that ask for
    the same jitted function at once get the same object (compiled once, not twice)."""
    cached, lock = functools.cache(fn), threading.Lock()

    @functools.wraps(fn)
    def inner(*args):
        with lock:
            return cached(*args)

    return inner


@locked_cache
def stacked_stream(specs: tuple, setting: str = "P") -> tasks.TaskStream:
    """The streams of `specs` ((family, mode), ...: distinct pairs) over the base data of
    `SETTINGS[setting]`, stacked over (stream, seed) and jitted once per tuple (every arm
    with the same streams reuses the program)."""
    streams = [make_stream(family, mode, SETTINGS[setting]) for family, mode in specs]
    stacked = tasks.stack_streams(streams)
    return tasks.TaskStream(jax.jit(stacked.init), jax.jit(stacked.next))


@jax.jit
def take_models(task: tasks.Task, rows: jax.Array) -> tasks.Task:
    """The task of each model: row `rows[i]` of the stacked streams' task."""
    return jax.tree_util.tree_map(lambda a: a[rows], task)


PROBE_IMAGES = 512  # base images on which the unit readouts are computed


@locked_cache
def unit_readouts(network):
    """`(params, params0, x) -> (dead, shift)` for M models at once (jitted): the fraction
    of dead ReLU units (zero on every probe input, all hidden layers pooled; §3.2) and the
    per-unit standardised shift of the mean preactivation from the model's own
    initialisation, `mean_i |mu_i - mu0_i| / sigma0_i`, averaged over layers
    (`units.drift_readouts`, §3.2 / Fig. 2)."""

    def one(params, params0, xp):
        _, inter = network.apply_with_intermediates(params, xp)
        _, inter0 = network.apply_with_intermediates(params0, xp)
        return units.drift_readouts(inter.acts, inter.preacts, inter0.preacts)

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None)))


def train_arm(name: str, arm: Arm, members: list, setting: Setting = MAIN_SETTING) -> dict:
    """Train every (member, seed) of one arm in one vmapped program (App. B.2).

    Returns `{member: {"accuracy", "loss", "param_norm", "dead", "shift": (S, T),
    "loss_curve": (S, T, W), "diverged": (S,), "params": final parameters (S, ...)}}`:
    end-of-task accuracy and loss over the task's (masked) examples after its last step,
    the parameter norm, the dead-unit fraction and the preactivation mean shift then (on
    the first `PROBE_IMAGES` base images), and the mean minibatch loss of each window of
    `log_every` steps; NaN after a divergence.
    """
    network = make_network(model_config(arm.norm))
    cfg = train.TrainConfig(learning_rate=P.learning_rate, batch_size=P.batch_size, **arm.fields)
    n_members, n_seeds = len(members), len(seed_list)
    # Members with the same family and mode (and seed) have the same tasks: each stream is
    # advanced once, and model (member i, seed s) trains on row (stream of i) x S + s.
    specs = tuple(dict.fromkeys((m.family, m.mode) for m in members))
    stream = stacked_stream(specs, setting.name)
    rows = jnp.asarray(
        [specs.index((m.family, m.mode)) * n_seeds + s for m in members for s in range(n_seeds)]
    )
    n_models, windows = n_members * n_seeds, setting.steps_per_task // setting.log_every
    readouts, probe_x = unit_readouts(network), setting.x[:PROBE_IMAGES]
    l2 = [cfg.l2 if m.l2 is None else m.l2 for m in members]
    hparams = {"l2": np.repeat(np.asarray(l2, np.float32), n_seeds)}  # member-major
    label_smoothing = np.full(n_models, cfg.label_smoothing, np.float32)
    roots = keys.task_root(seed_list)  # (S, 2): task t of seed s uses fold_in(root_s, t)
    state = train.init_state(network, cfg, np.tile(seed_list, n_members), setting.x[:2])

    def one_task(carry, t):
        state, streams_task, params0 = carry
        if t == 0:
            streams_task = stream.init(keys.task_keys(roots, 0))
        else:
            streams_task = stream.next(keys.task_keys(roots, t), jnp.int32(t), streams_task)
        task = take_models(streams_task, rows)
        state, logs = train.train_steps(
            network,
            cfg,
            state,
            task,
            setting.steps_per_task,
            log_every=setting.log_every,
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
        dead, shift = readouts(state.params, params0, probe_x)
        out = dict(
            logs,
            end_accuracy=end["accuracy"],
            end_loss=end["loss"],
            diverged=state.diverged,
            dead=dead,
            shift=shift,
        )
        for k in ("end_accuracy", "end_loss", "diverged", "dead", "shift"):
            out[k] = out[k][:, None]  # (models, 1): joined over tasks into (models, T)
        return (state, streams_task, params0), out

    wall = time.perf_counter()
    (state, _, _), out = runner.run_chunks(
        one_task,
        (state, None, state.params),
        setting.num_tasks,
        unit="task",
        desc=f"{name}: {n_members} streams x {n_seeds} seeds",
        progress=threading.current_thread() is threading.main_thread(),  # no bars in threads
        postfix=lambda out: {"acc": out["end_accuracy"]},
        checkpoint=profiles.checkpoint_path(P, name),  # paper profile: resumable
    )
    wall = time.perf_counter() - wall

    def per_member(a):  # (models, ...) -> (members, seeds, ...)
        return np.asarray(a).reshape((n_members, n_seeds) + np.shape(a)[1:])

    diverged = out["diverged"]  # (models, T): diverged by the end of task t
    param_norm = out["param_norm"].reshape(n_models, setting.num_tasks, windows)[..., -1]
    arrays = {
        key: np.where(diverged, np.nan, out[src]).astype(np.float32)
        for key, src in (("accuracy", "end_accuracy"), ("loss", "end_loss"))
        + (("dead", "dead"), ("shift", "shift"))
    }
    arrays["param_norm"] = np.where(diverged, np.nan, param_norm).astype(np.float32)
    arrays["loss_curve"] = out["loss"].reshape(n_models, setting.num_tasks, windows)
    arrays["diverged"] = diverged[:, -1]
    arrays = {k: per_member(v) for k, v in arrays.items()}
    params = jax.tree_util.tree_map(per_member, state.params)  # leaves (members, seeds, ...)
    result = {m: {k: v[i] for k, v in arrays.items()} for i, m in enumerate(members)}
    for i, m in enumerate(members):
        result[m]["params"] = jax.tree_util.tree_map(lambda a, i=i: a[i], params)
    program_log[name] = (
        f"{name:>29}: {n_models:3d} models, wall {wall:6.1f} s, "
        f"diverged {int(diverged[:, -1].sum())}"
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
#: Arms trained inside the program of their L2 twin (same network, same compiled step):
#: their members join the twin's with an L2 coefficient of 0, so the L2 term and its
#: gradient are exactly zero and they train as they would alone (one compilation fewer).
GUESTS = {"L2": "baseline", "LN+L2": "LN"}


def train_with_guest(name: str, members: list, setting: Setting = MAIN_SETTING) -> dict:
    """`{arm: {member: run}}` for arm `name` and, if it has one, its guest arm (`GUESTS`),
    trained in one program; the guest's members are `members`' `continual 1.0` ones."""
    guest = GUESTS.get(name) if P.l2 > 0 else None
    if guest is None:
        return {name: train_arm(name, ARMS[name], members, setting)}
    host = ARMS[name]
    assert ARMS[guest].norm == host.norm and {**ARMS[guest].fields, "l2": P.l2} == host.fields
    own = [m for m in members if m.mode == "continual 1.0" and m.l2 is None]
    zero = {m: Member(m.family, m.mode, 0.0) for m in own}
    label = f"{name} + {guest}" + ("" if setting is MAIN_SETTING else f" ({setting.name})")
    run = train_arm(label, host, members + list(zero.values()), setting)
    return {
        name: {m: run[m] for m in members},
        guest: {m: run[z] for m, z in zero.items()},
    }


def program_cost(name: str, members: list) -> float:
    """Rough training cost of arm `name`'s program (to start the longest first): its
    models (with a guest's), x 3 for the double backpropagation of the gradient penalty."""
    n = len(members)
    if name in GUESTS and P.l2 > 0:
        n += sum(m.mode == "continual 1.0" and m.l2 is None for m in members)
    return n * (3.0 if ARMS[name].fields.get("grad_norm_penalty") else 1.0)


main_jobs = [
    (name, LN_L2_MEMBERS if name == "LN+L2" else MAIN)
    for name in ARMS
    if name not in GUESTS.values() or P.l2 == 0
]
main_jobs.sort(key=lambda job: -program_cost(*job))
results = {}
for run in run_programs("main run", [(train_with_guest, job) for job in main_jobs]):
    results.update(run)
results = {name: results[name] for name in ARMS}  # in the order of ARMS

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
    variants = [Arm(norm, {"l2": P.l2}, f"{norm} + L2") for norm in P.norm_variants]
    runs = run_programs(
        "normalisation variants",
        [(train_arm, (f"{v.norm}+L2", v, [RL])) for v in variants],
    )
    ablation = {v.norm: run[RL] for v, run in zip(variants, runs)}

# %% [markdown]
# ## Independence of mechanisms (App. F): a 2 × 2 design on two streams
#
# App. F calls two mechanisms independent "if there exist learning problems where
# completely mitigating one mechanism does not prevent plasticity loss due to the other".
# The test crosses the two mitigations, {none, L2, LN, LN+L2}, on two streams built so
# that a different mechanism matters on each:
#
# * **stream N** (norm growth): many short random-label tasks (`num_tasks_short` tasks of
#   `steps_short` steps on `n_train_short` images). Layer normalisation removes the
#   preactivation drift, but a normalised layer's output does not depend on the scale
#   of its incoming weights, so their norm is free to grow, and Adam's fixed step then
#   changes the normalised function less and less (the effective step size shrinks):
#   LN alone is expected to lose plasticity, LN+L2 not;
# * **stream P** (preactivation shift): the calibrated random-label stream of the main
#   run (its none, L2, LN and LN+L2 arms are reused). L2 bounds the norm but not the
#   drift of the preactivations, so dead and drifting units can still accumulate: L2
#   alone is expected to lose plasticity, LN+L2 not.
#
# Beside the verdict, the mechanism readouts: LN's parameter-norm growth on N, and L2's
# dead-unit fraction and preactivation mean shift on P.

# %%
IND_ARMS = ("baseline", "L2", "LN", "LN+L2")
results_n = {}
if P.independence:
    ds_short = data.load_dataset(
        P.dataset,
        n=P.n_train_short,
        seed=0,
        flatten=(P.arch == "mlp"),
        allow_fallback=P.allow_fallback,
    )
    SETTINGS["N"] = Setting(
        "N",
        jnp.asarray(ds_short.x, jnp.float32),
        ds_short.y,
        P.num_tasks_short,
        P.steps_short,
        P.steps_short,
    )
    n_jobs = [
        (train_with_guest, (name, [RL], SETTINGS["N"]))
        for name in IND_ARMS
        if name not in GUESTS.values() or P.l2 == 0
    ]
    for runs in run_programs("stream N", n_jobs):
        results_n.update({arm: run[RL] for arm, run in runs.items()})
    results_n = {name: results_n[name] for name in IND_ARMS}

# %% [markdown]
# ## The plasticity measure of §2.2 at the end of each sequence
#
# From the final parameters of every arm and family, with a fresh optimiser state, the
# network trains on a **fresh random labelling** of the `n_train` base images for
# `measure_steps` steps; fresh initialisations of the same seeds train on the same
# labelling with the same minibatches (`diagnostics.plasticity_measure`). Both train with
# plain Adam at the chapter's learning rate, the same for every arm, so the measure asks
# only how good a starting point the parameters are (§2.2), and every arm with the same
# normalisation is measured in one compiled program. The accuracy gap (fresh minus final,
# in points; above 0: plasticity lost) and the loss ratio (final over fresh; above 1:
# plasticity lost) are shown in {numref}`fig-ch06-plasticity-measure`. The networks of
# stream N are measured
# the same way.


# %%
def measure_all(checkpoints: dict) -> dict:
    """`{key: {"gap": (S,) points, "ratio": (S,), "final", "fresh": (S,) %}}` for
    `checkpoints` `{key: (norm, params with leaves (S, ...))}`: the §2.2 measure, one
    compiled program per normalisation (all of its checkpoints stacked on axis C)."""
    cfg = train.TrainConfig(learning_rate=P.learning_rate, batch_size=P.batch_size)
    norms = list(dict.fromkeys(n for n, _ in checkpoints.values()))
    names = {norm: [k for k, (n, _) in checkpoints.items() if n == norm] for norm in norms}

    def measure(norm):
        params = jax.tree_util.tree_map(
            lambda *a: np.stack(a), *[checkpoints[k][1] for k in names[norm]]
        )  # leaves (C checkpoints, S seeds, ...)
        wall = time.perf_counter()
        pm = diagnostics.plasticity_measure(
            make_network(model_config(norm)),
            cfg,
            params,
            seed_list,
            steps=P.measure_steps,
            x=x,
            num_classes=ds.num_classes,
        )
        program_log[f"measure, norm {norm}"] = (
            f"plasticity measure, norm {norm}: {len(names[norm])} checkpoints x "
            f"{len(seed_list)} seeds, wall {time.perf_counter() - wall:.1f} s"
        )
        return pm

    jobs = sorted(((measure, (norm,)) for norm in norms), key=lambda j: -len(names[j[1][0]]))
    out = {}
    for (_, (norm,)), pm in zip(jobs, run_programs("plasticity measure", jobs, "evaluation")):
        for i, k in enumerate(names[norm]):
            out[k] = {
                "gap": 100.0 * pm.accuracy_gap[i],
                "ratio": pm.loss_ratio[i],
                "final": 100.0 * pm.checkpoint_accuracy[i],
                "fresh": 100.0 * pm.fresh_accuracy,
            }
    return out


checkpoints = {(arm, m): (ARMS[arm].norm, results[arm][m]["params"]) for arm in ARMS for m in MAIN}
checkpoints.update({(arm, "N"): (ARMS[arm].norm, run["params"]) for arm, run in results_n.items()})
measured = measure_all(checkpoints)
plasticity = {arm: {m: measured[(arm, m)] for m in MAIN} for arm in ARMS}
plasticity_n = {arm: measured[(arm, "N")] for arm in results_n}
total_cpu = sum(c for c, _ in cell_cost.values())
total_wall = sum(w for _, w in cell_cost.values())
print(f"calibration, training and measures: CPU {total_cpu:.0f} s, wall {total_wall:.0f} s")

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
    """From 98 % (lower if a curve's band goes lower) to just above 100 %."""
    lows = [plotting.t_band(c[:, t])[0] for c in curves.values() for t in range(c.shape[1])]
    return min(np.nanmin(lows) - 0.3, 98.0), 100.3


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
plotting.figure(fig, "ch06_fig4_interventions", P.profile)
# %% [markdown]
# ```{glue:figure} ch06_fig4_interventions
# ---
# name: fig-ch06-fig4-interventions
# alt: A grid of end-of-task accuracy against the task, one row per task family and one
#   column per group of interventions, one line per intervention with a band over seeds.
# ---
# Rows are the task families, columns the three groups of interventions of Fig. 4; every
# panel has its own y-axis (ending just above full accuracy), and LN+L2 (red) is the
# reference in each. Read each line from left to right: a network that loses plasticity
# fits each new task less well than the previous ones within the same step budget. The
# random-label row is the one where the first task itself takes the whole budget (the
# calibration above); with the true labels (permuted classes and pixels) a task is far
# easier for the same network, and arms near full accuracy there cannot show a decline
# (the claims' ceiling guards mark those parts uninformative). In the right-hand column
# every arm has layer normalisation and no L2.
# ```

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
plotting.figure(fig, "ch06_end_of_task_loss", P.profile)

# %% [markdown]
# ```{glue:figure} ch06_end_of_task_loss
# ---
# name: fig-ch06-end-of-task-loss
# alt: End-of-task training loss against the task on a log axis, one panel per task
#   family, one line per intervention with a band over seeds.
# ---
# The cross-entropy over each task's whole training set after its last step, on a log
# scale (each panel has its own scale). Where arms fit their tasks (nearly) completely,
# the loss still shows how far each network gets within the step budget: a network that
# learns more slowly on later tasks ends them at a higher loss. Read the trend of each
# line from left to right. The claims below use accuracy, as fixed in advance; this
# figure is descriptive.
# ```

# %% [markdown]
# ## Parameter norm over tasks

# %%
fig = family_panels("param_norm", r"parameter norm $\|\theta\|_2$ (log scale)", sharey=True)
plotting.figure(fig, "ch06_param_norm", P.profile)

# %% [markdown]
# ```{glue:figure} ch06_param_norm
# ---
# name: fig-ch06-param-norm
# alt: Parameter norm against the task on a shared log axis, one panel per task family,
#   one line per intervention with a band over seeds.
# ---
# The norm of all parameters at the end of each task (log scale). Arms without L2 are
# free to grow their norm from task to task; L2 and LN+L2 pull it back, and the
# weight-norm constraint keeps the weight matrices at their initial norms by
# construction, so only its biases move. Normalised networks can let their weights grow
# without changing their output, because a normalised layer does not depend on the
# scale of its incoming weights (App. F).
# ```

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
plotting.figure(fig, "ch06_fig7_learning_curves", P.profile)

# %% [markdown]
# ```{glue:figure} ch06_fig7_learning_curves
# ---
# name: fig-ch06-fig7-learning-curves
# alt: Training loss against the step within a task on a log axis, one row per task
#   family and one column for the baseline and for LN+L2, one line per task shown with a
#   band over seeds.
# ---
# Each curve is the mean cross-entropy on the minibatches of a window of `log_every`
# steps (plotted at the window's end), for the first two and the last two
# tasks. A network that loses plasticity shows it as a curve that falls more slowly on
# later tasks (a shallower curve, App. D.1), not necessarily as a higher plateau.
# ```

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
plotting.figure(fig, "ch06_fig5_modes", P.profile)

# %% [markdown]
# ```{glue:figure} ch06_fig5_modes
# ---
# name: fig-ch06-fig5-modes
# alt: End-of-task accuracy (top row) and loss on a log axis (bottom row) against the
#   task, one column per mode, one line per task family with a band over seeds.
# ---
# LN+L2 in each mode of §4.2 (columns), one line per task family: end-of-task accuracy
# (top; the claim is that it does not trend down) and end-of-task loss (bottom). In the
# growing mode the first task holds a single class (trivially fitted on permuted
# classes and pixels) and each task adds one, so later tasks are larger; in the
# composite mode half of the images never change.
# ```

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
plotting.figure(fig, "ch06_appendix_l2_norms", P.profile)

# %% [markdown]
# ```{glue:figure} ch06_appendix_l2_norms
# ---
# name: fig-ch06-appendix-l2-norms
# alt: End-of-task accuracy (top) and loss on a log axis (bottom) against the task on
#   random labels, one line per L2 setting (left) and, where run, one line per
#   normalisation variant (right), with a band over seeds.
# ---
# Left: the L2 coefficient of LN+L2 on random labels, end-of-task accuracy (top) and
# loss (bottom); "LN, no L2" is the LN arm of Fig. 4. E.5 found that a smaller penalty
# than the default closes most of the gap in peak accuracy while keeping plasticity,
# and that an overly large one slows training: look for the trade-off between a lower
# start and a flatter trend. Right (with `norm_ablation`): which component of the
# normalisation layer matters: mean subtraction alone along the batch axis
# (`batch_center`), division by the feature-axis standard deviation alone
# (`feature_scale`), their combination, and the standard layers. D.2 attributes most of
# the benefit of normalisation to the rescaling. The numbers are in "What we found".
# ```

# %% [markdown]
# ## The plasticity measure (§2.2) per arm and family

# %%
rows = [
    {"intervention": arm, "family": label, "seed": int(seed), "gap": g, "ratio": r}
    for arm in ARMS
    for family, label in FAMILIES.items()
    for seed, g, r in zip(
        seed_list,
        plasticity[arm][Member(family)]["gap"],
        plasticity[arm][Member(family)]["ratio"],
    )
]
pm_frame = pd.DataFrame(rows)
fig, axes = plt.subplots(2, len(FAMILIES), figsize=(15, 8.5), sharex=True, sharey="row")
for j, label in enumerate(FAMILIES.values()):
    sub = pm_frame[pm_frame["family"] == label]
    for i, (col, ylabel) in enumerate(
        [
            ("gap", "accuracy gap, fresh − final (points)"),
            ("ratio", "loss ratio, final / fresh (log scale)"),
        ]
    ):
        ax = axes[i, j]
        sns.stripplot(
            data=sub,
            x="intervention",
            y=col,
            hue="intervention",
            palette=COLORS,
            ax=ax,
            size=4,
            alpha=0.6,
            legend=False,
        )
        sns.pointplot(
            data=sub,
            x="intervention",
            y=col,
            color="black",
            errorbar=None,
            markers="D",
            linestyles="none",
            ax=ax,
        )
        plotting.reference_line(ax, 0.0 if col == "gap" else 1.0)
        ax.set(title=label if i == 0 else "", xlabel="", ylabel=ylabel if j == 0 else "")
        if col == "ratio":
            ax.set_yscale("log")
        plt.setp(ax.get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor")
fig.suptitle(
    f"Plasticity measure after {P.num_tasks} tasks: a fresh random labelling, "
    f"{P.measure_steps} steps from the final parameters vs from fresh initialisations",
    y=1.0,
)
fig.tight_layout()
plotting.figure(fig, "ch06_plasticity_measure", P.profile)

# %% [markdown]
# ```{glue:figure} ch06_plasticity_measure
# ---
# name: fig-ch06-plasticity-measure
# alt: Two rows of strip plots per intervention (accuracy gap, and loss ratio on a log
#   axis), one panel per task family, one dot per seed, a black diamond at the mean, and
#   a dotted reference line.
# ---
# Each dot is one seed, the diamond the mean over seeds. Top: the accuracy a fresh
# network reaches on the fresh labelling minus what the trained network reaches (above
# the dotted line: the trained network has lost plasticity in the paper's §2.2 sense).
# Bottom: the ratio of their final training losses (above 1: the same). The measure is
# the same for every family (a random labelling of the base images), so it asks whether
# the parameters left by each sequence are a worse starting point than a fresh
# initialisation, independently of how hard that sequence's own tasks were.
# ```

# %% [markdown]
# ## Independence of mechanisms: the 2 × 2 design on streams N and P

# %%
if P.independence:
    IND_COLORS = {arm: COLORS[arm] for arm in IND_ARMS}
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    panels = [
        (
            "N",
            results_n,
            [
                ("accuracy", "end-of-task accuracy (%)"),
                ("param_norm", r"parameter norm $\|\theta\|_2$ (log scale)"),
                ("shift", "preactivation mean shift"),
            ],
        ),
        (
            "P",
            {arm: results[arm][RL] for arm in IND_ARMS},
            [
                ("accuracy", "end-of-task accuracy (%)"),
                ("dead", "dead units (%)"),
                ("shift", "preactivation mean shift"),
            ],
        ),
    ]
    for i, (stream_name, runs, keys_) in enumerate(panels):
        n_tasks = SETTINGS[stream_name].num_tasks
        for j, (key, ylabel) in enumerate(keys_):
            ax = axes[i, j]
            scale = 100.0 if key in ("accuracy", "dead") else 1.0
            curves = {arm: scale * run[key] for arm, run in runs.items()}
            plotting.seed_band_lines(
                ax,
                curves,
                np.arange(1, n_tasks + 1),
                x_name="task",
                y_name=key,
                hue="intervention",
                palette=IND_COLORS,
                markersize=3,
                legend=(i == 0 and j == 2),
            )
            ax.set(xlabel="task", ylabel=ylabel, title=f"stream {stream_name}")
            if key == "param_norm":
                plotting.plain_log_y(ax)
    axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9)
    integer_ticks(axes)
    fig.tight_layout()
    plotting.figure(fig, "ch06_independence", P.profile)

# %% [markdown]
# ```{glue:figure} ch06_independence
# ---
# name: fig-ch06-independence
# alt: Two rows of panels against the task (stream N on top with accuracy, parameter
#   norm and mean shift; stream P below with accuracy, dead units and mean shift), one
#   line per intervention with a band over seeds.
# ---
# Top row, stream N (many short random-label tasks): end-of-task accuracy, the parameter
# norm and the preactivation mean shift (per unit, standardised by the unit's spread at
# initialisation) at the end of each task. Bottom row, stream P (the main random-label
# stream): end-of-task accuracy, the fraction of dead ReLU units and the preactivation
# mean shift. The design asks whether LN-only (green) falls on N while LN+L2 (red)
# holds, and whether L2-only (orange) falls on P while LN+L2 holds. The readouts show
# the mechanism the stream was built for: norm growth of the LN networks on N, dead and
# drifting units of the unnormalised networks on P.
# ```

# %% [markdown]
# ## Claim checks
#
# All statistics use the end-of-task accuracy in percentage points, per seed, with 95 %
# intervals over the seeds (Student t); the rules were fixed in the chapter's issues
# before any run. "Last-3 minus first-3" is, per seed, the mean end-of-task accuracy over
# the last three tasks minus that over the first three. Every accuracy part carries a
# ceiling guard: when every seed of every compared arm is within half a point of full
# accuracy on the tasks that enter the statistic, the part is *uninformative* (it could
# not have failed).
#
# * `ch6.baseline_loses`: the baseline's last-3 minus first-3 on random labels; interval
#   entirely below 0. The same statistic on the other two families (not part of this
#   claim) decides whether a "keeps" part on that family is informative.
# * `ch6.ln_l2_keeps`: LN+L2's last-3 minus first-3 on each family; lower end at least
#   −2 points. A family's part is uninformative where the baseline's loss on that family
#   is not reproduced, or where the first task was not learned well above chance.
# * `ch6.ln_l2_best`: for each family and **every** other arm (including the baseline,
#   LN+InFeR and LN+grad-norm penalty), the per-seed difference of last-3 accuracies,
#   arm minus LN+L2; not reproduced when its interval lies entirely above +1 point,
#   reproduced when its upper end is at most +1 point.
# * `ch6.modes_hold`: for each §4.2 mode and family, LN+L2's last-3 minus first-3 has its
#   interval above −2 points (the baseline guard uses the family's `continual 1.0`
#   baseline: the baseline is not run in the other modes).
# * `ch6.modes_improve`: that interval lies above 0 in at least half of the mode × family
#   cells (the paper: "improving accuracy over time").
# * `ch6.weightnorm_slows`: first-task end accuracy of the weight-norm constraint minus
#   the baseline's, on random labels; interval entirely below 0.
# * `ch6.independent` (App. F): on stream N, LN-only's last-3 minus first-3 has its
#   interval below 0 while LN+L2's is above −2 points; on stream P, the same for L2-only
#   against LN+L2. The two LN+L2 parts are guarded by the baseline's loss on the same
#   stream. The mechanism readouts are reported in the note, not as verdict parts.


# %%
def accuracy(arm: str, member: Member) -> np.ndarray:
    """(seeds, tasks) end-of-task accuracy in percentage points (NaN: diverged seed)."""
    return end_of_task(results[arm][member])


CEILING, CEILING_TOL = 100.0, 0.5  # points: "at the ceiling" = every seed >= 99.5 %
CHANCE = 1.0 / ds.num_classes


def ends(a: np.ndarray) -> np.ndarray:
    """(S, 6): the end-of-task accuracies that enter a last-3 / first-3 statistic."""
    return np.concatenate([a[:, :3], a[:, -3:]], axis=1)


def ceiling(**arms) -> claims.Bound:
    """The ceiling guard of an accuracy part: `arms` {name: per-seed accuracies (points)}."""
    return claims.Bound(CEILING, CEILING_TOL, arms)


def change(a: np.ndarray) -> claims.Estimate:
    """t-interval of the per-seed last-3 minus first-3 accuracy of (S, T) `a` (points)."""
    first, last = stats.first_last_means(a)
    return claims.t_interval(last - first, drop_nonfinite=True)


book = claims.ClaimBook("ch06_swiss_cheese", P, dataset=ds.source)
for arm in ARMS:
    book.note_diverged(arm, sum(results[arm][m]["diverged"] for m in MAIN))

baseline_part = {
    family: claims.part(
        f"baseline, {label}: last-3 minus first-3 end-of-task accuracy (points)",
        change(accuracy("baseline", Member(family))),
        0.0,
        "<",
        bound=ceiling(baseline=ends(accuracy("baseline", Member(family)))),
    )
    for family, label in FAMILIES.items()
}
book.check(
    "ch6.baseline_loses",
    kind="paper",
    statement="Without intervention, end-of-task accuracy on random-label tasks falls: "
    "the last three tasks are fitted worse than the first three.",
    figure="§4.1, Fig. 4",
    parts=[baseline_part["random_labels"]],
    note="; ".join(
        f"{FAMILIES[f]}: {claims.format_estimate(p.estimate)} ({p.verdict})"
        for f, p in baseline_part.items()
    ),
)


def keeps_part(statistic, a, threshold, direction, baseline):
    """A "keeps plasticity" part on (S, T) accuracies `a`: ceiling guard, the baseline's
    loss on the same stream (`baseline`, a Part) and the chance-level first-task guard."""
    return claims.part(
        statistic,
        change(a),
        threshold,
        direction,
        bound=ceiling(**{"LN+L2": ends(a)}),
        baseline_loses=baseline,
        first_task=claims.FirstTask(a[:, 0] / 100.0, chance=CHANCE),
    )


book.check(
    "ch6.ln_l2_keeps",
    kind="paper",
    statement="With layer normalisation and L2, end-of-task accuracy over the last three "
    "tasks is at least the first three tasks' minus 2 points, on each task family.",
    figure="§4.1–4.2, Fig. 4",
    parts=[
        keeps_part(
            f"LN+L2, {label}: last-3 minus first-3 accuracy (points)",
            accuracy("LN+L2", Member(family)),
            -2.0,
            ">=",
            baseline_part[family],
        )
        for family, label in FAMILIES.items()
    ],
)

OTHERS = [arm for arm in ARMS if arm != "LN+L2"]
parts, best_gaps = [], {}
for family, label in FAMILIES.items():
    ref = accuracy("LN+L2", Member(family))
    for arm in OTHERS:
        a = accuracy(arm, Member(family))
        gap = claims.t_interval(
            stats.first_last_means(a)[1] - stats.first_last_means(ref)[1], drop_nonfinite=True
        )
        best_gaps[(arm, label)] = gap
        parts.append(
            claims.part(
                f"{label}: {arm} minus LN+L2, last-3 accuracy (points)",
                gap,
                1.0,
                "<=",
                bound=ceiling(**{arm: a[:, -3:], "LN+L2": ref[:, -3:]}),
            )
        )
book.check(
    "ch6.ln_l2_best",
    kind="paper",
    statement="On each task family, no other intervention (single ones, and LN with InFeR or "
    "a gradient-norm penalty) fits the last three tasks more than 1 point better than LN+L2.",
    figure="§4.1, Fig. 4",
    parts=parts,
)

parts, mode_changes = [], {}
for mode in MODES:
    for family, label in FAMILIES.items():
        a = accuracy("LN+L2", Member(family, mode))
        mode_changes[(mode, label)] = (change(a), ends(a))
        parts.append(
            keeps_part(
                f"{mode}, {label}: LN+L2 last-3 minus first-3 accuracy (points)",
                a,
                -2.0,
                ">",
                baseline_part[family],
            )
        )
book.check(
    "ch6.modes_hold",
    kind="paper",
    statement="In every §4.2 mode (continual 0.5 and 1.0, composite, growing) and task "
    "family, LN+L2's last-3 minus first-3 end-of-task accuracy is above −2 points.",
    figure="§4.2, Fig. 5 (left)",
    parts=parts,
)

improving = [cell for cell, (e, _) in mode_changes.items() if e.low is not None and e.low > 0]
book.check(
    "ch6.modes_improve",
    kind="paper",
    statement="LN+L2's end-of-task accuracy improves over time: its last-3 minus first-3 "
    "interval lies above 0 in at least half of the §4.2 mode × family cells.",
    figure="§4.2, Fig. 5 (left)",
    statistic=f"cells (of {len(mode_changes)}) whose last-3 minus first-3 interval is above 0",
    estimate=claims.exact(len(improving)),
    threshold=float(math.ceil(len(mode_changes) / 2)),
    direction=">=",
    bound=claims.Bound(
        CEILING,
        CEILING_TOL,
        {f"{mode}, {label}": e[:, :3] for (mode, label), (_, e) in mode_changes.items()},
    ),
    note="improving: " + (", ".join(f"{m} / {f}" for m, f in improving) or "none"),
)

weight_norm, base = accuracy("weight-norm constraint", RL), accuracy("baseline", RL)
book.check(
    "ch6.weightnorm_slows",
    kind="paper",
    statement="Constraining each weight matrix to its initial norm slows optimisation: "
    "lower accuracy than the baseline at the end of the first task.",
    figure="§4.1, Fig. 4 (left)",
    statistic="random labels: weight-norm constraint minus baseline, first-task end "
    "accuracy (points)",
    estimate=claims.t_interval(weight_norm[:, 0] - base[:, 0], drop_nonfinite=True),
    threshold=0.0,
    direction="<",
    bound=ceiling(**{"weight-norm constraint": weight_norm[:, 0], "baseline": base[:, 0]}),
)


def growth(a: np.ndarray) -> claims.Estimate:
    """t-interval of the per-seed ratio last / first task-end value of (S, T) `a`."""
    return claims.t_interval(a[:, -1] / a[:, 0], drop_nonfinite=True)


readout_txt = ""
if P.independence:
    ind_streams = {
        "N": {name: end_of_task(run) for name, run in results_n.items()},
        "P": {name: accuracy(name, RL) for name in IND_ARMS},
    }
    none_n = claims.part(
        "stream N: baseline last-3 minus first-3 accuracy (points)",
        change(ind_streams["N"]["baseline"]),
        0.0,
        "<",
        bound=ceiling(baseline=ends(ind_streams["N"]["baseline"])),
    )
    guards = {"N": none_n, "P": baseline_part["random_labels"]}
    parts = []
    for stream_name, single_arm in (("N", "LN"), ("P", "L2")):
        a = ind_streams[stream_name][single_arm]
        parts.append(
            claims.part(
                f"stream {stream_name}: {single_arm}-only last-3 minus first-3 accuracy (points)",
                change(a),
                0.0,
                "<",
                bound=ceiling(**{single_arm: ends(a)}),
            )
        )
        parts.append(
            keeps_part(
                f"stream {stream_name}: LN+L2 last-3 minus first-3 accuracy (points)",
                ind_streams[stream_name]["LN+L2"],
                -2.0,
                ">",
                guards[stream_name],
            )
        )
    ln_n, l2_p = results_n["LN"], results["L2"][RL]
    readouts_ind = {
        "LN on N: parameter norm, last / first task": growth(ln_n["param_norm"]),
        "LN+L2 on N: parameter norm, last / first task": growth(results_n["LN+L2"]["param_norm"]),
        "L2 on P: dead-unit fraction, first task (%)": claims.t_interval(
            100 * l2_p["dead"][:, 0], drop_nonfinite=True
        ),
        "L2 on P: dead-unit fraction, last task (%)": claims.t_interval(
            100 * l2_p["dead"][:, -1], drop_nonfinite=True
        ),
        "L2 on P: preactivation mean shift, first task": claims.t_interval(
            l2_p["shift"][:, 0], drop_nonfinite=True
        ),
        "L2 on P: preactivation mean shift, last task": claims.t_interval(
            l2_p["shift"][:, -1], drop_nonfinite=True
        ),
    }
    readout_txt = "; ".join(f"{k}: {claims.format_estimate(e)}" for k, e in readouts_ind.items())
    book.check(
        "ch6.independent",
        kind="paper",
        statement="Mitigating one mechanism does not prevent plasticity loss through the other "
        "(App. F): on a stream of many short tasks LN alone loses accuracy and LN+L2 does not; "
        "on the random-label stream L2 alone loses accuracy and LN+L2 does not.",
        figure="App. F, Fig. 8",
        parts=parts,
        note=f"baseline on N: {claims.format_estimate(none_n.estimate)} ({none_n.verdict}); "
        f"readouts (not verdict parts): {readout_txt}",
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
                "plasticity: accuracy gap (points)": np.nanmean(plasticity[arm][member]["gap"]),
                "plasticity: loss ratio": np.nanmean(plasticity[arm][member]["ratio"]),
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


def record(claim_id):
    return next(c for c in book.claims if c.id == claim_id)


def est(claim_id, i=0):
    return claims.format_estimate(record(claim_id).parts[i].estimate)


def part_verdicts(claim_id) -> str:
    """ "3 reproduced, 2 uninformative, ..." over the parts of a claim."""
    counts = pd.Series([p.verdict for p in record(claim_id).parts]).value_counts()
    return ", ".join(f"{n} {verdict}" for verdict, n in counts.items())


def last3(run: dict, key: str = "accuracy") -> float:
    """Mean over seeds of the mean over the last three tasks."""
    return float(np.nanmean(stats.first_last_means(run[key])[1]))


def loss_ratio(run: dict) -> float:
    """Mean end-of-task loss over the last three tasks / over the first three."""
    first, last = stats.first_last_means(run["loss"])
    return float(np.nanmean(last) / np.nanmean(first))


ratio = s["loss ratio, last / first"]
cal = calibration.set_index(["stream", "images"])
seed_cols = [f"seed {s} (%)" for s in CALIBRATION_SEEDS]


def cal_accs(stream_name: str, n: int) -> str:
    """ "96.9 % and 96.4 %": the calibration accuracies of one candidate size."""
    return " and ".join(f"{a:.1f} %" for a in cal.loc[(stream_name, n), seed_cols])


def inside(stream_name: str, n: int) -> str:
    return "inside" if cal.loc[(stream_name, n), "in window"] else "outside"


cal_txt = (
    f"{P.n_train} images reach {cal_accs('P', P.n_train)} on the first random labelling "
    f"after {P.steps_per_task} steps ({inside('P', P.n_train)} the window "
    f"{CALIBRATION_WINDOW[0]:.0f}–{CALIBRATION_WINDOW[1]:.0f} %); other candidates: "
    + ", ".join(
        f"{n} images {cal_accs('P', n)}"
        for n in sorted({*P.calibration_sizes, P.n_train})
        if n != P.n_train
    )
)
if P.independence:
    cal_txt += (
        f"; stream N: {P.n_train_short} images after {P.steps_short} steps reach "
        f"{cal_accs('N', P.n_train_short)} ({inside('N', P.n_train_short)} the window)"
    )
worst_gap = max(best_gaps.items(), key=lambda kv: kv[1].value)
n_best = len(record("ch6.ln_l2_best").parts)
mode_txt = "; ".join(
    f"{mode} / {label}: {claims.format_estimate(e)}"
    for (mode, label), (e, _) in mode_changes.items()
)
keeps_txt = ", ".join(
    f"{label} {est('ch6.ln_l2_keeps', i)} ({record('ch6.ln_l2_keeps').parts[i].verdict})"
    for i, label in enumerate(FAMILIES.values())
)
pm_txt = ", ".join(
    f"{arm} {cell(arm, fam0, 'plasticity: accuracy gap (points)'):.1f}" for arm in ARMS
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
ind_txt = ""
if P.independence:
    ind = record("ch6.independent")
    ind_txt = (
        f"* **Independence** (`ch6.independent`: **{v['ch6.independent']}**): on stream N "
        f"({P.num_tasks_short} tasks of {P.steps_short} steps) LN-only's last-3 minus first-3 "
        f"is {claims.format_estimate(ind.parts[0].estimate)} points ({ind.parts[0].verdict}) "
        f"and LN+L2's {claims.format_estimate(ind.parts[1].estimate)} ({ind.parts[1].verdict}); "
        f"on stream P L2-only's is {claims.format_estimate(ind.parts[2].estimate)} "
        f"({ind.parts[2].verdict}) and LN+L2's "
        f"{claims.format_estimate(ind.parts[3].estimate)} ({ind.parts[3].verdict}). "
        f"Baseline on N: {claims.format_estimate(none_n.estimate)} ({none_n.verdict}). "
        f"Readouts: {readout_txt}. Plasticity measure on N (accuracy gap, points): "
        + ", ".join(f"{a} {np.nanmean(m['gap']):.1f}" for a, m in plasticity_n.items())
        + "."
    )
pc, pp = FAMILIES["permuted_classes"], FAMILIES["permuted_pixels"]
display(
    Markdown(f"""
In this run ({P.profile} profile, {ds.source}, {P.n_train} images,
{P.arch.upper()} {P.width} × {P.depth}, {P.seeds} seeds, {P.num_tasks} tasks of
{P.steps_per_task} steps; calibration, training and plasticity measures took
{total_cpu:.0f} s of CPU time, {total_wall:.0f} s of wall time, {WORKERS} programs at a time):

* **Calibration** (first task only, fresh baseline, 2 seeds): {cal_txt}.
* **Baseline** (`ch6.baseline_loses`: **{v["ch6.baseline_loses"]}**): on random labels
  end-of-task accuracy {cell("baseline", fam0, "first 3 tasks (%)"):.2f} % over the first
  three tasks, {cell("baseline", fam0, "last 3 tasks (%)"):.2f} % over the last three
  (difference {est("ch6.baseline_loses")} points); its end-of-task loss changed
  {ratio[("baseline", fam0)]:.2g}-fold. The same statistic on the other families (the
  guards of the "keeps" parts): {record("ch6.baseline_loses").note}.
* **LN+L2 keeps** (`ch6.ln_l2_keeps`: **{v["ch6.ln_l2_keeps"]}**): last-3 minus first-3
  {keeps_txt} points.
* **LN+L2 is best** (`ch6.ln_l2_best`: **{v["ch6.ln_l2_best"]}**; {n_best} parts:
  {part_verdicts("ch6.ln_l2_best")}): the largest difference (arm minus LN+L2, last-3
  accuracy) was {worst_gap[0][0]} on {worst_gap[0][1]}, {claims.format_estimate(worst_gap[1])}
  points. On random labels LN+L2 ended at {cell("LN+L2", fam0, "last 3 tasks (%)"):.2f} %
  over the last three tasks.
* **Modes** (`ch6.modes_hold`: **{v["ch6.modes_hold"]}**, {part_verdicts("ch6.modes_hold")};
  `ch6.modes_improve`: **{v["ch6.modes_improve"]}**, {len(improving)} of
  {len(mode_changes)} cells improving): LN+L2's last-3 minus first-3 per mode and
  family: {mode_txt}.
* **Weight-norm constraint** (`ch6.weightnorm_slows`: **{v["ch6.weightnorm_slows"]}**):
  first-task accuracy on random labels
  {cell("weight-norm constraint", fam0, "first task (%)"):.2f} % against the baseline's
  {cell("baseline", fam0, "first task (%)"):.2f} % (difference
  {est("ch6.weightnorm_slows")} points).
* **Plasticity measure** (§2.2; fresh labelling, {P.measure_steps} steps; accuracy gap
  fresh minus final in points, random-labels family): {pm_txt}.
{ind_txt}
* **E.5 sweep** (LN + L2 on random labels, last three tasks): {P.l2:g}:
  {cell("LN+L2", fam0, "last 3 tasks (%)"):.2f} % (loss ratio
  {ratio[("LN+L2", fam0)]:.2g}); {sweep_txt}.
{ab_txt}
""")
)

# %% [markdown]
# **Reading these results.** The verdicts above are decided on tasks calibrated so that
# a fresh network needs its whole step budget for the first random labelling (without
# this, at the previous default of 512 images, every arm was at full accuracy and the
# accuracy claims could not fail). Parts marked *uninformative* are those where every
# compared arm still sits at the ceiling (typically the two families with true labels,
# which are much easier for the same network), or where the baseline did not lose
# plasticity on that family in the same run, so a "keeps plasticity" statement had
# nothing to prevent. The §2.2 measure asks the question in one common form for every
# arm: a fresh random labelling learned from the final parameters against a fresh
# initialisation. The independence test is a short-horizon version of App. F: the
# paper's evidence for norm growth with normalisation comes from 20 tasks of 75,000
# steps, and forty tasks of a hundred steps may be too short for LN alone to lose
# plasticity through the growth of its parameter norm, whatever the mechanism readouts
# show. At the paper profile (CIFAR-10, 75,000 steps per task) the same claims run
# unchanged. At the smoke profile the numbers above only show that the code runs.
