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
# # Plasticity loss in five minutes
#
# *Reproduces, at small scale, the random-label experiment of §3.1 and the remedy of
# §4.1–4.2 (Fig. 4, Fig. 5 left) of {cite}`lyle2024disentangling`.*
#
# ## What the paper claims
#
# Train a network on a sequence of tasks, each a fresh random labelling of the same
# images, continuing from the parameters (and optimizer state) reached on the
# previous task. A plain network gradually loses its ability to fit each new
# labelling: its accuracy at the end of a task falls from task to task, although each
# task is exactly as hard as the first. This is *plasticity loss*
# {cite}`lyle2023understanding,dohare2021continual`. The paper traces it to several
# independent mechanisms (preactivation shift, parameter-norm growth, ...) and finds
# that guarding two of them at once — **layer normalisation** before each
# nonlinearity {cite}`ba2016layer` and **L2 regularisation** — keeps the network
# trainable across many tasks (Fig. 4, Fig. 5 left).
#
# This chapter shows both halves in a few minutes on a CPU; the later chapters take
# the mechanisms apart one at a time.

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
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from plasticity_lib import claims, data, plotting, profiles, tasks, train
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
seeds = None  # number of seeds, trained together with vmap
seed_offset = None  # first seed (seeds seed_offset, ..., seed_offset + seeds - 1)
num_tasks = None  # random-label tasks in sequence
steps_per_task = None  # Adam steps per task
n_train = None  # training images
l2 = None  # L2 coefficient of the LN+L2 network

# %%
P = profiles.resolve_notebook("ch00_overview", globals())
profiles.show("ch00_overview")

# %% [markdown]
# | | paper (§4.2, B.2) | this chapter, default profile | why |
# |---|---|---|---|
# | data | CIFAR-10 (MNIST: the same picture, B.2) | a seeded MNIST subset | offline (B.2) |
# | network | MLP 512 × 4 (also CNN, ResNet-18) | MLP, `width` × `depth` above | CPU budget |
# | optimiser | Adam, learning rate $10^{-5}$ | Adam, learning rate $10^{-3}$ | note 1 |
# | tasks | 20 tasks × 75,000 steps | `num_tasks` × `steps_per_task` above | CPU budget |
# | L2 | $10^{-5}$ | `l2` above, on every parameter | note 2 |
# | seeds | 3 | `seeds` above, trained at once with `vmap` | intervals over seeds |
#
# Notes: (1) the larger rate fits a task in about a thousand steps instead of 75,000;
# (2) a shorter run needs a stronger pull to show the same norm control. MNIST is
# available offline, and the paper reports consistent results on it (B.2).
#
# The paper profile restores the paper's MLP settings (on MNIST: the other chapters
# run CIFAR-10 at that profile).

# %% [markdown]
# ## Experiment
#
# One stream of tasks: every task assigns each of the $N$ training images a label
# drawn uniformly from the 10 classes; the network trains for a fixed number of Adam
# steps on minibatches of the current labelling, then the labels are redrawn.
# At the end of each task we record the accuracy on the whole current labelling —
# its ability to memorise the task, which is what a plastic network can do.

# %%
ds = data.load_dataset(
    P.dataset, n=P.n_train, seed=0, flatten=True, allow_fallback=P.allow_fallback
)
print(f"data: {ds.source}, x {ds.x.shape}, {ds.num_classes} classes")
stream = tasks.random_labels(ds.x, ds.num_classes)
seed_list = list(range(P.seed_offset, P.seed_offset + P.seeds))


def mlp(norm: str) -> ModelConfig:
    return ModelConfig(
        arch="mlp", width=P.width, depth=P.depth, norm=norm, num_outputs=ds.num_classes
    )


adam = dict(learning_rate=P.learning_rate, batch_size=P.batch_size)
methods = {
    "baseline": (mlp("none"), train.TrainConfig(**adam)),
    "LN+L2": (mlp("layer"), train.TrainConfig(**adam, l2=P.l2)),
}
runs = {}
for name, (model_cfg, train_cfg) in methods.items():
    print(f"training {name}: {P.seeds} seeds x {P.num_tasks} tasks x {P.steps_per_task} steps")
    runs[name] = train.train_stream(
        make_network(model_cfg),
        train_cfg,
        stream,
        seeds=seed_list,
        num_tasks=P.num_tasks,
        steps_per_task=P.steps_per_task,
        log_every=P.log_every,
        checkpoint_dir=profiles.checkpoint_dir(P),  # paper profile: resumable after a crash
    )
    print(f"  done in {runs[name].wall_time_s:.1f} s; diverged: {int(runs[name].diverged.sum())}")

# %% [markdown]
# ## Figure: accuracy at the end of each task

# %%
task_axis = np.arange(1, P.num_tasks + 1)
fig, ax = plt.subplots(figsize=(6.5, 3.8))
plotting.seed_band_lines(
    ax,
    {name: 100 * r.task_end["accuracy"] for name, r in runs.items()},
    task_axis,
    x_name="task",
    y_name="accuracy",
)
plotting.reference_line(ax, 100 / ds.num_classes, "chance")
ax.set(
    xlabel="task (fresh random labels)",
    ylabel="end-of-task training accuracy (%)",
    title=f"Random-label tasks on {ds.source.split(' (')[0]}: {P.seeds} seeds, mean and 95 % band",
)
plotting.figure(fig, "ch00_end_of_task_accuracy", P.profile)

# %% [markdown]
# ```{glue:figure} ch00_end_of_task_accuracy
# ---
# name: fig-ch00-end-of-task-accuracy
# alt: End-of-task training accuracy against the task index, one line per network with a
#   band over seeds, and a dotted line at chance.
# ---
# Accuracy on the whole current labelling at the end of each task (mean and 95 % band
# over seeds). What to see: whether the plain MLP (baseline) fits each new labelling less
# well than the one before, while the network with layer normalisation and L2 keeps
# fitting them. The dotted line is chance (10 %).
# ```

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.4))
plotting.seed_band_lines(
    ax,
    {name: r.task_end["param_norm"] for name, r in runs.items()},
    task_axis,
    x_name="task",
    y_name="parameter norm",
)
ax.set(
    xlabel="task",
    ylabel=r"parameter norm $\|\theta\|_2$",
    title="Parameter norm at the end of each task",
)
plotting.figure(fig, "ch00_param_norm", P.profile)

# %% [markdown]
# ```{glue:figure} ch00_param_norm
# ---
# name: fig-ch00-param-norm
# alt: Global parameter norm at the end of each task, one line per network with a band
#   over seeds.
# ---
# Parameter norm $\|\theta\|_2$ at the end of each task (mean and 95 % band over seeds).
# What to see: the baseline's norm grows task after task — one of the mechanisms the paper
# identifies (§3.2, "parameter norm growth") — while L2 holds the LN+L2 network's norm
# back.
# ```

# %% [markdown]
# ## Claim checks
#
# Both statistics compare the mean end-of-task accuracy over the **first three**
# tasks with that over the **last three**, per seed, with a t-interval over seeds.
# Thresholds were fixed before running: the baseline claim needs the drop to be
# positive; the LN+L2 claim allows at most a 2-point fall (the tolerance the
# Swiss-cheese chapter uses for the same statement). A "keeps plasticity" verdict counts
# only if it could have failed: the LN+L2 claim is *uninformative* unless the baseline's
# fall is reproduced in the same run and every LN+L2 seed learned the first task well
# above chance (at least halfway from chance to perfect accuracy; `claims.FirstTask`).


# %%
def first_minus_last(acc: np.ndarray) -> np.ndarray:
    """(seeds, tasks) accuracy -> per-seed mean of the first 3 tasks minus the last 3."""
    return acc[:, :3].mean(1) - acc[:, -3:].mean(1)


book = claims.ClaimBook("ch00_overview", P, dataset=ds.source)
book.check(
    "ch0.baseline_falls",
    statement="Without intervention, a network trained on a sequence of random-label tasks "
    "fits later tasks worse than the first ones (plasticity loss).",
    figure="§3.1, Fig. 5 (left)",
    statistic="baseline: mean end-of-task accuracy, first 3 tasks minus last 3 (fraction)",
    estimate=claims.t_interval(first_minus_last(runs["baseline"].task_end["accuracy"])),
    threshold=0.0,
    direction=">",
    kind="paper",
)
book.check(
    "ch0.ln_l2_keeps",
    statement="With layer normalisation and L2 regularisation the end-of-task accuracy "
    "does not fall.",
    figure="§4.1–4.2, Fig. 4, Fig. 5 (left)",
    statistic="LN+L2: mean end-of-task accuracy, last 3 tasks minus first 3 (fraction)",
    estimate=claims.t_interval(-first_minus_last(runs["LN+L2"].task_end["accuracy"])),
    threshold=-0.02,
    direction=">",
    kind="paper",
    # a "keeps" claim is informative only where the baseline lost plasticity in this run
    # and LN+L2 learned the first task well above chance (the scorecard's rules)
    baseline_loses="ch0.baseline_falls",
    first_task=claims.FirstTask(
        runs["LN+L2"].task_end["accuracy"][:, 0], chance=1 / ds.num_classes
    ),
)
book.table()

# %%
book.save()
summary = pd.DataFrame(
    {
        name: {
            "first 3 tasks (%)": 100 * r.task_end["accuracy"][:, :3].mean(),
            "last 3 tasks (%)": 100 * r.task_end["accuracy"][:, -3:].mean(),
            "final parameter norm": r.task_end["param_norm"][:, -1].mean(),
            "diverged seeds": int(r.diverged.sum()),
        }
        for name, r in runs.items()
    }
).T
summary.round(2)

# %% [markdown]
# ## What we found

# %% tags=["remove-input"]
base, ln = runs["baseline"].task_end["accuracy"], runs["LN+L2"].task_end["accuracy"]
verdicts = {c.id: c.verdict for c in book.claims}


def norm_growth(name: str) -> float:
    """Mean parameter norm at the last task's end over that at the first task's end."""
    norms = runs[name].task_end["param_norm"]
    return norms[:, -1].mean() / norms[:, 0].mean()


display(
    Markdown(f"""
In this run ({P.profile} profile, {ds.source}, {P.seeds} seeds, {P.num_tasks} tasks of
{P.steps_per_task} steps) the baseline's end-of-task accuracy went from
{100 * base[:, :3].mean():.1f} % over the first three tasks to {100 * base[:, -3:].mean():.1f} %
over the last three (`ch0.baseline_falls`: **{verdicts["ch0.baseline_falls"]}**), while LN+L2 went
from {100 * ln[:, :3].mean():.1f} % to {100 * ln[:, -3:].mean():.1f} % (`ch0.ln_l2_keeps`:
**{verdicts["ch0.ln_l2_keeps"]}**). The baseline's parameter norm grew
{norm_growth("baseline"):.1f}-fold from the first task's end to the last, LN+L2's
{norm_growth("LN+L2"):.2f}-fold.

This agrees in direction with the paper's Fig. 4 and Fig. 5 (left). It is a scaled-down
run — hundreds of steps per task instead of 75,000, a thousand MNIST images instead of
CIFAR-10 — so the baseline's decline starts only after several tasks and is steep once it
starts; the paper's longer runs show a more gradual decay. At the smoke profile the numbers
above only show that the code runs.
""")
)
