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
# — when the nonstationarity comes in other "modes": only part of the data changes, the
# same part always changes, or the dataset grows (Fig. 5 left). App. D.1 (Fig. 7) adds
# that a network losing plasticity shows it as *shallower* learning curves rather than
# higher plateaus.

# %% tags=["hide-input"]
import sys

if "google.colab" in sys.modules:  # in Colab: install the library (elsewhere this does nothing)
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "plasticity-lib @ git+https://github.com/plasticity-book/plasticity-loss-book"], check=True)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display
from matplotlib.ticker import FuncFormatter, MaxNLocator

from plasticity_lib import claims, data, plotting, profiles, train
from plasticity_lib.experiments import ch06_swiss_cheese as ex
from plasticity_lib.models import make_network

plotting.set_theme()

# %% [markdown]
# ## Setup
#
# The `parameters` cell is read by papermill: `profile` picks a row of the profile
# table below, any other name overrides one field (`None` keeps the profile's value).

# %% tags=["parameters"]
profile = "default"  # smoke | default | paper
seeds = None  # seeds per configuration, trained together with vmap
num_tasks = None  # tasks in sequence
steps_per_task = None  # Adam steps per task
n_train = None  # training images
arch = None  # mlp | cnn | resnet18
learning_rate = None  # Adam learning rate
l2 = None  # L2 coefficient of the L2 and LN+L2 arms
norm_ablation = None  # also run the D.2 / E.9 normalisation variants

# %%
P = profiles.resolve_notebook("ch06_swiss_cheese", globals())
display(Markdown(profiles.describe("ch06_swiss_cheese")))
P

# %% [markdown]
# | | paper (§4.1–4.2, B.1–B.2) | this chapter, default profile | why |
# |---|---|---|---|
# | data | CIFAR-10 (MNIST and CIFAR-100 "consistent", B.2) | a seeded subset of 512 MNIST training images | available offline, CPU budget |
# | network | MLP 512 × 4, CNN, ResNet-18 | MLP 128 × 2, ReLU | CPU budget; the paper profile is the MLP of B.1 on CIFAR-10, `arch=cnn` / `resnet18` give the others |
# | optimiser | Adam, learning rate $10^{-5}$ (MLP), batch size not given | Adam $10^{-3}$, batch 64 | a task converges in hundreds of steps instead of 75,000 |
# | tasks | 20 tasks × 75,000 steps | 10 tasks × 400 steps | B.2 picks the interval so that each task converges; within 400 steps the baseline's minibatch accuracy on a first 512-image random labelling reaches 99.9 % (checked once, before the runs) |
# | L2 | $10^{-5}$ (E.5 also $10^{-6}$) | $10^{-4}$, on every parameter; E.5 sweep $10^{-5}$, $10^{-3}$ | a run of $4\cdot10^3$ instead of $1.5\cdot10^6$ steps needs a stronger pull for the same norm control (as in the overview chapter) |
# | feature-norm penalty, ReDo, gradient-norm penalty, InFeR | coefficients not given | $10^{-3}$; every 100 steps with $\tau = 0.1$; $10^{-3}$; 10 heads, $\beta = 10$, coefficient 0.1 | our choices, fixed before the runs, not tuned |
# | Shampoo | with layer norm | **not run** | optax 0.2.8 has no Shampoo (shown below) |
# | modes (§4.2) | continual 0.5 / 1.0, composite, growing | the same, on all three task families; composite transforms a fixed half of the images (the same half for every seed) | the paper gives no composite fraction |
# | accuracy | end-of-task accuracy | accuracy on the current task's whole training set after its last step | what a plastic network can fit |
# | batch norm | — | batch statistics in training and evaluation (no running averages) | the library's convention |
# | seeds | not stated | 5, trained at once with `vmap` | intervals over seeds |

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
#   its norm at initialisation, $W_l \leftarrow W_l\,\lVert W_l^{(0)}\rVert_F / \lVert W_l\rVert_F$
#   (the paper's proxy for path normalisation {cite}`neyshabur2015path`);
# * **feature-norm penalty**: add $\lambda_\phi \frac{1}{B}\sum_b \lVert\phi(x_b)\rVert_2^2$,
#   with $\phi(x)$ the penultimate-layer features;
# * **ReDo**: every $k$ steps, each hidden unit $i$ of a layer with $H$ units gets the
#   score $s_i = \mathbb{E}_b\lvert h_i(x_b)\rvert \,/\, \frac{1}{H}\sum_j \mathbb{E}_b\lvert h_j(x_b)\rvert$
#   (activations $h$ on the current minibatch); units with $s_i \le \tau$ get fresh
#   incoming weights and zero outgoing weights {cite}`sokar2023dormant`;
# * **gradient-norm penalty** (with LN): add $\lambda_g \lVert\nabla_\theta \mathcal{L}(\theta)\rVert_2^2$;
# * **InFeR** (with LN): $k$ linear heads $g(x) = A^\top\phi(x) + a$ are trained to
#   regress $\beta\, g_0(x)$, the outputs of the initial network and heads: add
#   $\lambda_I \frac{1}{B}\sum_b \lVert g(x_b) - \beta\, g_0(x_b)\rVert_2^2$ {cite}`lyle2021understanding`.
#
# The table lists the arms with this profile's coefficients. Every arm is trained on
# each task family; members that share a seed share their initial weights, their tasks
# and their minibatches, so differences between arms are paired by seed.

# %%
ds = data.load_dataset(P.dataset, n=P.n_train, seed=0, flatten=(P.arch == "mlp"), allow_fallback=P.allow_fallback)
print(f"data: {ds.source}, x {ds.x.shape}, {ds.num_classes} classes")
bank = ex.StreamBank(ds.x, ds.y, ds.num_classes)
seed_list = list(range(P.seeds))

table = ex.intervention_table(P)
if P.arch == "resnet18":  # as in the paper, ReDo is not run on ResNets
    table.pop("ReDo")
pd.DataFrame({name: {"normalisation": iv.norm, "intervention": iv.description} for name, iv in table.items()}).T

# %% [markdown]
# Shampoo, the third loss-landscape intervention of Fig. 4, needs an implementation
# that optax (the optimiser library pinned here) does not provide; the engine says so
# instead of silently substituting another optimiser:

# %%
try:
    probe_net = make_network(table["LN"].model_config(P.arch, P.width, P.depth, ds.num_classes))
    train.init_state(probe_net, train.TrainConfig(optimizer="shampoo", learning_rate=P.learning_rate), [0], ds.x[:2])
except ValueError as err:
    print(f"Shampoo arm skipped: {err}")

# %% [markdown]
# ## Experiment
#
# Every arm is one compiled program: its models (arm × task family × mode × seed) are
# trained together under `vmap` (`ex.run_group`, built on the engine's
# `train.train_steps`). LN+L2 additionally runs in the §4.2 modes on all three families —
# **continual 0.5** (a random half of the images is transformed at each boundary),
# **composite** (always the same half), **growing** (one class at the first task, one
# more at each boundary, all transformed) — and, on random labels, with the other L2
# coefficients of the sweep (App. E.5).

# %%
main_specs = [ex.StreamSpec(f, "continual 1.0") for f in ex.FAMILIES]
results = {}
cpu_log = {}
for name, iv in table.items():
    members = [ex.Member(sp.label, sp) for sp in main_specs]
    if name == "LN+L2":
        members += [ex.Member(ex.StreamSpec(f, m).label, ex.StreamSpec(f, m))
                    for m in ex.MODES if m != "continual 1.0" for f in ex.FAMILIES]
        members += [ex.Member(f"L2 {c:g}", main_specs[0], (("l2", float(c)),)) for c in P.l2_sweep]
    network = make_network(iv.model_config(P.arch, P.width, P.depth, ds.num_classes))
    results[name] = ex.run_group(
        network, iv.train_config(P.learning_rate, P.batch_size), members, bank, seed_list,
        num_tasks=P.num_tasks, steps_per_task=P.steps_per_task, log_every=P.log_every,
        desc=f"{name}: {len(members)} streams x {P.seeds} seeds",
    )
    r = results[name]
    cpu_log[name] = (r.cpu_s, r.wall_s)
    print(f"{name:>22}: {len(members) * P.seeds:3d} models, CPU {r.cpu_s:6.1f} s, wall {r.wall_s:6.1f} s, "
          f"diverged {int(r.diverged.sum())}")

# %% [markdown]
# With `norm_ablation`, the normalisation variants `norm_variants` of App. D.2 / E.9
# (each with L2, on random labels): mean subtraction alone along the batch axis (`batch_center`),
# division by the standard deviation alone along the feature axis (`feature_scale`),
# the combination of the two that E.9 found slightly better than standard layer or
# batch norm (`batch_center_feature_scale`), layer norm followed by batch norm
# (`layer_batch`, the paper's order when both are used) and plain batch norm (`batch`),
# next to LN + L2.

# %%
ablation = {}
if P.norm_ablation:
    for norm in P.norm_variants:
        iv = ex.Intervention(f"{norm}+L2", norm, (("l2", P.l2),), "")
        ablation[norm] = ex.run_group(
            make_network(iv.model_config(P.arch, P.width, P.depth, ds.num_classes)),
            iv.train_config(P.learning_rate, P.batch_size), [ex.Member("random labels", main_specs[0])], bank,
            seed_list, num_tasks=P.num_tasks, steps_per_task=P.steps_per_task, log_every=P.log_every,
            desc=f"{norm}+L2",
        )
        cpu_log[f"{norm}+L2"] = (ablation[norm].cpu_s, ablation[norm].wall_s)
total_cpu = sum(c for c, _ in cpu_log.values())
total_wall = sum(w for _, w in cpu_log.values())
print(f"training total: CPU {total_cpu:.0f} s, wall {total_wall:.0f} s")

# %% [markdown]
# ## Figure 4: end-of-task accuracy under each intervention

# %%
df = ex.tidy_end_of_task(results)
main = df[df["member"].isin([sp.label for sp in main_specs])]
names = list(table)
tab = dict(zip(["blue", "orange", "green", "red", "purple", "brown", "pink", "grey", "olive", "cyan"],
               sns.color_palette("tab10", 10)))
colors = {"baseline": "black", "L2": tab["orange"], "LN": tab["green"], "BN": tab["purple"], "LN+L2": tab["red"],
          "weight-norm constraint": tab["brown"], "feature-norm penalty": tab["pink"], "ReDo": tab["olive"],
          "LN+grad-norm penalty": tab["cyan"], "LN+InFeR": tab["blue"]}
families = [ex.FAMILY_LABELS[f] for f in ex.FAMILIES]


def plain_log(ax):
    """Log-scale y-axis with plain tick labels (0.5, 2, 30 rather than 5 x 10^-1)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    def minor(v, _):  # label minor ticks only when the axis spans less than about a decade
        lo, hi = ax.get_ylim()
        return f"{v:g}" if lo > 0 and np.log10(hi / lo) < 1.2 else ""

    ax.yaxis.set_minor_formatter(FuncFormatter(minor))
    ax.tick_params(axis="y", which="minor", labelsize=8)


fig, axes = plt.subplots(len(families), len(ex.PANELS), figsize=(15, 10.5), sharex=True)
for j, (panel, arms) in enumerate(ex.PANELS.items()):
    arms = [a for a in arms if a in table]
    for i, fam in enumerate(families):
        ax = axes[i, j]
        sub = main[(main["family"] == fam) & main["intervention"].isin(arms)]
        sns.lineplot(data=sub, x="task", y="accuracy", hue="intervention", hue_order=arms, palette=colors,
                     errorbar=("ci", 95), marker="o", markersize=4, ax=ax, legend=(i == len(families) - 1))
        ax.set(xlabel="task" if i == len(families) - 1 else "", ylabel=f"{fam}\nend-of-task accuracy (%)" if j == 0 else "",
               ylim=(min(sub["accuracy"].min() - 0.3, 98.0), 100.3))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if i == 0:
            ax.set_title(panel)
    axes[-1, j].legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=9)
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
def loss_panels(frame, axes, hue, hue_order, palette, legend_ax):
    """End-of-task training loss (log scale) against task, one panel per family."""
    for ax, fam in zip(axes, families):
        sns.lineplot(data=frame[frame["family"] == fam], x="task", y="loss", hue=hue, hue_order=hue_order,
                     palette=palette, errorbar=("ci", 95), marker="o", markersize=4, ax=ax, legend=(ax is legend_ax))
        ax.set(title=fam, xlabel="task", ylabel="end-of-task training loss (log scale)")
        plain_log(ax)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


fig, axes = plt.subplots(1, len(families), figsize=(15, 4.2))
loss_panels(main, axes, "intervention", names, colors, axes[-1])
axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9)
fig.tight_layout()
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
fig, axes = plt.subplots(1, len(families), figsize=(15, 4.2), sharey=True)
for ax, fam in zip(axes, families):
    sns.lineplot(data=main[main["family"] == fam], x="task", y="param_norm", hue="intervention", hue_order=names,
                 palette=colors, errorbar=("ci", 95), marker="o", markersize=4, ax=ax, legend=(ax is axes[-1]))
    ax.set(title=fam, xlabel="task", ylabel=r"parameter norm $\|\theta\|_2$ (log scale)")
    plain_log(ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9)
fig.tight_layout()
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
curve_arms = ["baseline", "LN+L2"]
show = sorted({0, 1, P.num_tasks - 2, P.num_tasks - 1})
task_names = [f"task {t + 1}" for t in show]
fig, axes = plt.subplots(len(families), len(curve_arms), figsize=(11, 10), sharex=True, sharey="row")
for i, (fam, sp) in enumerate(zip(families, main_specs)):
    for j, arm in enumerate(curve_arms):
        ax = axes[i, j]
        cv = ex.tidy_curves(results[arm], sp.label, show, key="loss")
        cv["task"] = cv["task"].map(lambda t: f"task {t}")
        sns.lineplot(data=cv, x="step", y="loss", hue="task", hue_order=task_names, palette="viridis",
                     errorbar=("ci", 95), marker="o", markersize=4, ax=ax, legend=(i == 0 and j == len(curve_arms) - 1))
        ax.set(xlabel="steps into the task" if i == len(families) - 1 else "",
               ylabel=f"{fam}\ntraining loss (log scale)" if j == 0 else "")
        plain_log(ax)
        if i == 0:
            ax.set_title(arm)
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
lnl2 = df[(df["intervention"] == "LN+L2") & ~df["member"].str.startswith("L2 ")]
fam_colors = dict(zip(families, sns.color_palette("colorblind", len(families))))
fig, axes = plt.subplots(2, len(ex.MODES), figsize=(15, 7.2), sharex=True)
for j, mode in enumerate(ex.MODES):
    sub = lnl2[lnl2["mode"] == mode]
    for i, (key, label) in enumerate((("accuracy", "end-of-task accuracy (%)"), ("loss", "end-of-task loss (log scale)"))):
        ax = axes[i, j]
        sns.lineplot(data=sub, x="task", y=key, hue="family", hue_order=families, palette=fam_colors,
                     errorbar=("ci", 95), marker="o", markersize=4, ax=ax, legend=(i == 1 and j == len(ex.MODES) - 1))
        ax.set(xlabel="task" if i == 1 else "", ylabel=label if j == 0 else "", title=mode if i == 0 else "")
        if key == "loss":
            plain_log(ax)
        else:
            ax.set_ylim(min(sub["accuracy"].min() - 0.3, 98.0), 100.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
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
rl = main_specs[0].label
sweep_rows = [df[(df["intervention"] == "LN") & (df["member"] == rl)].assign(setting="LN, no L2")]
sweep_rows.append(df[(df["intervention"] == "LN+L2") & (df["member"] == rl)].assign(setting=f"LN + L2 {P.l2:g}"))
for c in P.l2_sweep:
    sweep_rows.append(df[(df["intervention"] == "LN+L2") & (df["member"] == f"L2 {c:g}")].assign(setting=f"LN + L2 {c:g}"))
sweep = pd.concat(sweep_rows, ignore_index=True)
ncols = 2 if ablation else 1
fig, axes = plt.subplots(2, ncols, figsize=(6.8 * ncols, 7.5), squeeze=False, sharex=True)
frames = [("setting", sweep, "L2 sweep with layer norm (E.5)")]
if ablation:
    abl = ex.tidy_end_of_task({f"{k} + L2": v for k, v in ablation.items()})
    abl = pd.concat([abl, sweep[sweep["setting"] == f"LN + L2 {P.l2:g}"].assign(intervention="layer + L2")],
                    ignore_index=True)
    frames.append(("intervention", abl, "normalisation variants + L2 (D.2, E.9)"))
for j, (hue, frame, title) in enumerate(frames):
    for i, (key, label) in enumerate((("accuracy", "end-of-task accuracy (%)"), ("loss", "end-of-task loss (log scale)"))):
        ax = axes[i, j]
        sns.lineplot(data=frame, x="task", y=key, hue=hue, errorbar=("ci", 95), marker="o", markersize=4, ax=ax,
                     palette="mako" if j == 0 else "colorblind", legend=(i == 1))
        ax.set(xlabel="task" if i == 1 else "", ylabel=label, title=f"{title}, random labels" if i == 0 else "")
        if key == "loss":
            plain_log(ax)
            ax.legend(fontsize=8, loc="upper left")
        else:
            ax.set_ylim(min(frame["accuracy"].min() - 0.3, 98.0), 100.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
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
def acc(arm: str, member: str) -> np.ndarray:
    """(seeds, tasks) end-of-task accuracy in percentage points."""
    return 100.0 * results[arm].get(member, "accuracy")


def finite_rows(a: np.ndarray) -> np.ndarray:
    """Drop the seeds of a diverged run (NaN accuracies); they are reported in the table below."""
    return a[np.all(np.isfinite(a), axis=1)]


book = claims.ClaimBook("ch06_swiss_cheese", P, dataset=ds.source)

first, last = ex.first_last(finite_rows(acc("baseline", rl)))
book.check(
    "ch6.baseline_loses",
    statement="Without intervention, end-of-task accuracy on random-label tasks falls: the last three tasks are fitted worse than the first three.",
    figure="§4.1, Fig. 4",
    statistic="baseline, random labels: last-3 minus first-3 end-of-task accuracy (points)",
    estimate=claims.t_interval(last - first), threshold=0.0, direction="<",
)

parts = []
for fam, sp in zip(families, main_specs):
    first, last = ex.first_last(finite_rows(acc("LN+L2", sp.label)))
    parts.append(claims.part(f"LN+L2, {fam}: last-3 minus first-3 accuracy (points)",
                             claims.t_interval(last - first), -2.0, ">="))
book.check(
    "ch6.ln_l2_keeps",
    statement="With layer normalisation and L2, end-of-task accuracy over the last three tasks is at least the first three tasks' minus 2 points.",
    figure="§4.1–4.2, Fig. 4",
    parts=parts,
)

single = [a for a in ("L2", "LN", "BN", "weight-norm constraint", "feature-norm penalty", "ReDo") if a in table]
parts = []
for fam, sp in zip(families, main_specs):
    ref = claims.t_interval(ex.first_last(finite_rows(acc("LN+L2", sp.label)))[1])
    for arm in single:
        est = claims.t_interval(ex.first_last(finite_rows(acc(arm, sp.label)))[1])
        gap = claims.Estimate(ex.interval_gap(est, ref), None, None,
                              f"lower end of {arm}'s t-interval ({claims.format_estimate(est)}) "
                              f"minus upper end of LN+L2's ({claims.format_estimate(ref)})", est.n)
        parts.append(claims.part(f"{fam}: {arm} last-3 interval low minus LN+L2 interval high (points)", gap, 0.0, "<="))
book.check(
    "ch6.ln_l2_best",
    statement="On each task family, no single intervention (L2, LN, BN, weight-norm constraint, feature-norm penalty, ReDo) reaches a last-three-task accuracy whose interval lies entirely above LN+L2's.",
    figure="§4.1, Fig. 4",
    parts=parts,
)

parts, notes = [], []
for mode in ex.MODES:
    for fam, f in zip(families, ex.FAMILIES):
        sl = claims.t_interval(ex.slopes(finite_rows(acc("LN+L2", ex.StreamSpec(f, mode).label))))
        hi = sl.value if sl.high is None else sl.high
        parts.append(claims.part(f"{mode}, {fam}: upper end of the slope's t-interval (points/task)",
                                 claims.Estimate(hi, None, None, f"slope {claims.format_estimate(sl)}", sl.n),
                                 0.0, ">="))
        notes.append(f"{mode}, {fam}: slope {claims.format_estimate(sl)} points/task")
book.check(
    "ch6.modes_hold",
    statement="In every §4.2 mode (continual 0.5 and 1.0, composite, growing), LN+L2's end-of-task accuracy does not trend down over tasks.",
    figure="§4.2, Fig. 5 (left)",
    parts=parts,
    note="; ".join(notes),
)

wn, base = acc("weight-norm constraint", rl), acc("baseline", rl)
keep = np.isfinite(wn[:, 0]) & np.isfinite(base[:, 0])
book.check(
    "ch6.weightnorm_slows",
    statement="Constraining each weight matrix to its initial norm slows optimisation: lower accuracy than the baseline at the end of the first task.",
    figure="§4.1, Fig. 4 (left)",
    statistic="random labels: weight-norm constraint minus baseline, first-task end accuracy (points)",
    estimate=claims.t_interval(wn[keep, 0] - base[keep, 0]), threshold=0.0, direction="<",
)
book.table()

# %%
book.save();
rows = []
for arm in names:
    for fam, sp in zip(families, main_specs):
        a = acc(arm, sp.label)
        f3, l3 = ex.first_last(a)
        lf3, ll3 = ex.first_last(results[arm].get(sp.label, "loss"))
        rows.append({"intervention": arm, "family": fam, "first task (%)": np.nanmean(a[:, 0]),
                     "first 3 tasks (%)": np.nanmean(f3), "last 3 tasks (%)": np.nanmean(l3),
                     "loss, first 3 tasks": np.nanmean(lf3), "loss, last 3 tasks": np.nanmean(ll3),
                     "final parameter norm": np.nanmean(results[arm].get(sp.label, "param_norm")[:, -1]),
                     "diverged seeds": int(results[arm].diverged[results[arm].index(sp.label)].sum())})
summary = pd.DataFrame(rows)
summary["loss ratio, last / first"] = summary["loss, last 3 tasks"] / summary["loss, first 3 tasks"]
summary.pivot(index="intervention", columns="family", values="last 3 tasks (%)").loc[names].round(2)

# %% [markdown]
# Mean end-of-task accuracy over the last three tasks (%), per intervention and task
# family. Below, the end-of-task training loss over the last three tasks divided by that
# over the first three (above 1: later tasks are fitted less well within the same
# number of steps):

# %%
summary.pivot(index="intervention", columns="family", values="loss ratio, last / first").loc[names].round(2)

# %% [markdown]
# The full summary (means over seeds):

# %%
summary.round(4)

# %% [markdown]
# ## What we found

# %% tags=["remove-input"]
v = {c.id: c.verdict for c in book.claims}
s = summary.set_index(["intervention", "family"])
fam0 = families[0]


def cell(arm, fam, col):
    return s.loc[(arm, fam), col]


def est(claim_id, i=0):
    return claims.format_estimate(next(c for c in book.claims if c.id == claim_id).parts[i].estimate)


ratio = s["loss ratio, last / first"]
best_other = max(single, key=lambda a: cell(a, fam0, "last 3 tasks (%)"))
worst_other = min(single, key=lambda a: cell(a, fam0, "last 3 tasks (%)"))
n_fail = sum(p.verdict != "reproduced" for c in book.claims if c.id == "ch6.ln_l2_best" for p in c.parts)
slopes_all = [claims.t_interval(ex.slopes(finite_rows(acc("LN+L2", ex.StreamSpec(f, m).label))))
              for m in ex.MODES for f in ex.FAMILIES]
mode_loss = {m: {fam: ex.first_last(results["LN+L2"].get(ex.StreamSpec(f, m).label, "loss")) for fam, f in zip(families, ex.FAMILIES)}
             for m in ex.MODES}
mode_ratio_txt = ", ".join(
    f"{m}: " + "/".join(f"{np.mean(l3) / np.mean(f3):.2g}" for f3, l3 in mode_loss[m].values()) for m in ex.MODES
)
sweep_txt = ", ".join(
    f"{c:g}: {100 * ex.first_last(results['LN+L2'].get(f'L2 {c:g}'))[1].mean():.2f} % "
    f"(loss ratio {np.mean(ex.first_last(results['LN+L2'].get(f'L2 {c:g}', 'loss'))[1]) / np.mean(ex.first_last(results['LN+L2'].get(f'L2 {c:g}', 'loss'))[0]):.2g})"
    for c in P.l2_sweep
)
ab_txt = ""
if ablation:
    ab_txt = ("* **Normalisation variants + L2** (D.2, E.9; random labels, last three tasks): " + ", ".join(
        f"{k} {100 * ex.first_last(r.get('random labels'))[1].mean():.2f} % (loss ratio "
        f"{np.mean(ex.first_last(r.get('random labels', 'loss'))[1]) / np.mean(ex.first_last(r.get('random labels', 'loss'))[0]):.2g})"
        for k, r in ablation.items()) + ".")
display(Markdown(f"""
In this run ({P.profile} profile, {ds.source}, {P.n_train} images, {P.arch.upper()} {P.width} × {P.depth}, {P.seeds} seeds,
{P.num_tasks} tasks of {P.steps_per_task} steps; the training took {total_cpu:.0f} s of CPU time, {total_wall:.0f} s of
wall time):

* **Baseline on random labels** (`ch6.baseline_loses`: **{v["ch6.baseline_loses"]}**): end-of-task accuracy
  {cell("baseline", fam0, "first 3 tasks (%)"):.2f} % over the first three tasks, {cell("baseline", fam0, "last 3 tasks (%)"):.2f} %
  over the last three (difference {est("ch6.baseline_loses")} points); its end-of-task loss grew
  {ratio[("baseline", fam0)]:.2g}-fold and its parameter norm reached {cell("baseline", fam0, "final parameter norm"):.0f}.
* **LN+L2** (`ch6.ln_l2_keeps`: **{v["ch6.ln_l2_keeps"]}**): last-three minus first-three accuracy
  {est("ch6.ln_l2_keeps", 0)}, {est("ch6.ln_l2_keeps", 1)} and {est("ch6.ln_l2_keeps", 2)} points on random labels, permuted
  classes and permuted pixels. Its end-of-task loss still grew {ratio[("LN+L2", fam0)]:.2g}-fold on random labels
  (baseline {ratio[("baseline", fam0)]:.2g}-fold), {ratio[("LN+L2", families[1])]:.2g}-fold on permuted classes and
  {ratio[("LN+L2", families[2])]:.2g}-fold on permuted pixels.
* **No single intervention beats LN+L2** (`ch6.ln_l2_best`: **{v["ch6.ln_l2_best"]}**, {n_fail} of
  {3 * len(single)} conditions failed): on random labels the best single intervention over the last three tasks was
  {best_other} ({cell(best_other, fam0, "last 3 tasks (%)"):.2f} % against LN+L2's {cell("LN+L2", fam0, "last 3 tasks (%)"):.2f} %).
  The lowest was {worst_other} ({cell(worst_other, fam0, "last 3 tasks (%)"):.1f} %; baseline {cell("baseline", fam0, "last 3 tasks (%)"):.2f} %).
* **Modes** (`ch6.modes_hold`: **{v["ch6.modes_hold"]}**): the largest upper end of a slope interval was
  {max(e.value if e.high is None else e.high for e in slopes_all):.3g} points per task, the smallest lower end
  {min(e.value if e.low is None else e.low for e in slopes_all):.3g}. LN+L2's end-of-task loss ratio (last three / first
  three tasks; random labels / permuted classes / permuted pixels): {mode_ratio_txt}.
* **Weight-norm constraint** (`ch6.weightnorm_slows`: **{v["ch6.weightnorm_slows"]}**): first-task accuracy on random labels
  {cell("weight-norm constraint", fam0, "first task (%)"):.2f} % against the baseline's {cell("baseline", fam0, "first task (%)"):.2f} %
  (difference {est("ch6.weightnorm_slows")} points).
* **Loss-landscape arms** (with LN, no L2), random labels, last three tasks: LN {cell("LN", fam0, "last 3 tasks (%)"):.2f} %,
  + gradient-norm penalty {cell("LN+grad-norm penalty", fam0, "last 3 tasks (%)"):.2f} %, + InFeR
  {cell("LN+InFeR", fam0, "last 3 tasks (%)"):.2f} % (loss ratios {ratio[("LN", fam0)]:.2g}, {ratio[("LN+grad-norm penalty", fam0)]:.2g},
  {ratio[("LN+InFeR", fam0)]:.2g}). Shampoo was not run (no optax implementation).
* **E.5 sweep** (LN + L2 on random labels, last three tasks): {P.l2:g}: {cell("LN+L2", fam0, "last 3 tasks (%)"):.2f} %
  (loss ratio {ratio[("LN+L2", fam0)]:.2g}); {sweep_txt}.
{ab_txt}
"""))

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
