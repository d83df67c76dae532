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
# # Target offset: large regression means cost plasticity
#
# *Reproduces §3.1 "Regression target scale" (Fig. 1, left) and App. E.1 (Figs. 11–16)
# of {cite}`lyle2024disentangling`.*
#
# ## What the paper claims
#
# A DQN agent on a contextual bandit built from an image dataset loses plasticity
# {cite}`lyle2023understanding`. The paper argues that the cause is not
# nonstationarity as such but the *mean* of the regression targets, which the agent's
# bootstrapped targets keep pushing up. To isolate it, the paper uses a **stationary**
# problem: regress random targets with a constant offset $b$, then fine-tune the
# pretrained network on fresh random targets. It reports:
#
# * a **dose-response**: the larger the pretraining offset $b$, the higher the final
#   fine-tuning loss, whether the new targets have the same offset $b$ or offset 0
#   (Fig. 1 left, Figs. 12 right and 13);
# * **layer normalisation** {cite}`ba2016layer` mitigates the effect but does not
#   remove it, particularly for zero-offset fine-tuning targets (Figs. 1, 11);
# * the mechanism: the network writes the offset into **one direction of its
#   penultimate features** rather than into the final-layer bias. The top singular
#   value of the feature matrix grows by orders of magnitude with $b$ and dwarfs the
#   others; with layer norm it is bounded, but the lower singular values still shrink
#   relative to it (Figs. 14, 15);
# * it is the target **mean**, not the target scale: zero-mean targets scaled up to
#   the same magnitude leave fine-tuning on small targets unharmed (Fig. 16).

# %% tags=["hide-input"]
import sys

if "google.colab" in sys.modules:  # in Colab: install the library (elsewhere this does nothing)
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "plasticity-lib @ git+https://github.com/plasticity-book/plasticity-loss-book"], check=True)

# %%
import time

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from plasticity_lib import claims, data, plotting, profiles
from plasticity_lib.experiments import ch01_target_offset as exp

plotting.set_theme()

# %% [markdown]
# ## Setup
#
# The `parameters` cell below is read by papermill: `profile` picks a row of the
# profile table (`smoke`, `default`, `paper`), and any other name overrides one field
# (`None` keeps the profile's value).

# %% tags=["parameters"]
profile = "default"  # smoke | default | paper
seeds = None  # number of seeds (network init, minibatches, target networks), trained together with vmap
offsets = None  # pretraining offsets b; the first must be 0, the last is b_max
alphas = None  # scales of the zero-mean control; the last must equal b_max
pre_steps = None  # Adam steps of pretraining
ft_steps = None  # Adam steps of fine-tuning
n_train = None  # training images

# %%
P = profiles.resolve_notebook("ch01_target_offset", globals())
if P.offsets[0] != 0 or list(P.offsets) != sorted(P.offsets):
    raise ValueError(f"offsets must be increasing and start at 0, got {P.offsets}")
if P.alphas[-1] != P.offsets[-1] or list(P.alphas) != sorted(P.alphas):
    raise ValueError(f"alphas must be increasing and end at b_max = {P.offsets[-1]}, got {P.alphas}")
display(Markdown(profiles.describe("ch01_target_offset")))
P

# %% [markdown]
# **Targets.** For inputs $x$ (images), a randomly initialised network
# $f_{\theta_\text{rand}}$ with a scalar output (two ReLU layers of 64 units, never
# trained) and $M = 10^5$, the pretraining targets are
#
# $$y(x) = b + \sin\!\big(M f_{\theta_\text{rand}}(x)\big),$$
#
# a pseudo-random value in $[b-1, b+1]$ for each image (mean $b$, variance about
# $1/2$): the network has to memorise them. The zero-mean control of Fig. 16 replaces
# the offset by a scaled smooth function, $y(x) = \alpha\, s(x) + \sin(M
# f_{\theta_\text{rand}}(x))$, where $s$ is a second random network's output
# standardised over the training images (mean 0, standard deviation 1). With
# $\alpha = b_\text{max}$ both kinds of targets have the same second moment
# $\mathbb{E}[y^2] \approx b_\text{max}^2 + 1/2$; only the offset targets have a large
# mean. **Fine-tuning** starts from the pretrained parameters with a fresh Adam state
# and regresses targets of the same form from a *different* random network, with
# offset $b$ ("same offset") or $0$ ("zero offset"); after the $\alpha$ control it is
# always $\alpha = 0$, offset 0. The statistic is App. E.1's: the final fine-tuning loss
# (mean squared error), averaged over the last 10 iterates (the minibatch losses of
# the last 10 Adam steps).
#
# | | paper (App. E.1) | this chapter, default profile | why |
# |---|---|---|---|
# | inputs | 10,000 CIFAR-10 images | a seeded subset of MNIST, `n_train` above | available offline; the issue fixes MNIST for the default profile |
# | network | CNN of App. B.1, with and without layer norm | MLP `width` × `depth` (ReLU), with and without layer norm before each nonlinearity | on a CPU, convolutions train ~100× slower than an MLP |
# | optimiser | Adam, learning rate $10^{-3}$, batch 512 | Adam, learning rate $10^{-3}$, batch `batch_size` | CPU budget |
# | offsets | $b \in \{0, 8, 16, 32\}$ (and mean-100 targets for the SVD) | $b \in$ `offsets` above | one more doubling to $b_\text{max} = 64$ |
# | steps | not given (Fig. 13 skips the first 1,000 fine-tuning steps) | `pre_steps` pretraining, `ft_steps` fine-tuning | CPU budget |
# | seeds | 3 target seeds | `seeds` above; a seed fixes network init, minibatches and both target networks, shared by all offsets | intervals over seeds, paired comparisons |
# | final loss | average over seeds and the last 10 SGD iterates | the same | — |
# | feature SVD | $n = 128$ random inputs | `n_probe` training images (fixed subset) | — |
# | Fig. 16 control | $c + \alpha f_\theta(x) + \sigma(x)$, values of $\alpha$ not given | $c = 0$, $\alpha \in$ `alphas`, $s$ standardised, $\sigma = \sin(M f_{\theta_\text{rand}})$ | our reading; $\alpha_\text{max} = b_\text{max}$ matches the second moment |
#
# The paper profile uses the CNN on 10,000 CIFAR-10 images with batch 512 and
# $b \in \{0, 8, 16, 32, 100\}$ (a GPU run).

# %% [markdown]
# ## Experiment
#
# Every (target condition, seed) pair is one model; all models of one network train
# together in one compiled, vmapped program (first the pretraining of every condition,
# then every fine-tuning job). Without normalisation there are the offsets $b$ and the
# $\alpha$ control; with layer norm, the offsets.

# %%
flat = P.arch == "mlp"
ds = data.load_dataset(P.dataset, n=P.n_train, seed=0, flatten=flat, allow_fallback=P.allow_fallback)
probe_idx = np.random.default_rng(1).choice(len(ds.x), size=min(P.n_probe, len(ds.x)), replace=False)
x_probe = ds.x[np.sort(probe_idx)]
print(f"data: {ds.source}, x {ds.x.shape}; probe inputs for the SVD: {len(x_probe)}")

t0, c0 = time.time(), time.process_time()
runs = exp.offset_experiment(
    ds.x, x_probe, seeds=list(range(P.seeds)), offsets=P.offsets, alphas=P.alphas,
    width=P.width, depth=P.depth, arch=P.arch, batch_size=P.batch_size, learning_rate=P.learning_rate,
    pre_steps=P.pre_steps, ft_steps=P.ft_steps, pre_log_every=P.pre_log_every, chunk_steps=P.chunk_steps,
)
for norm, run in runs.items():
    print(f"{norm:>5}: {len(run.pre_conditions)} pretraining targets, {len(run.jobs)} fine-tuning jobs, "
          f"{run.wall_time_s:.0f} s; diverged models: {int(run.pre_diverged.sum())} (pretraining), "
          f"{int(run.ft_diverged.sum())} (fine-tuning)")
print(f"wall {time.time() - t0:.0f} s, process CPU {time.process_time() - c0:.0f} s")

# %% [markdown]
# ## Fine-tuning learning curves (Fig. 13)

# %%
NET = {"none": "no normalization", "layer": "layer norm"}
plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")


def plain_log_y(axes):
    """Log y-axis with ticks written as plain numbers: at 1, 2, 5 x 10^k when the axis
    spans less than three decades, else at the powers of ten."""
    for ax in np.ravel(axes):
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        subs = (1.0, 2.0, 5.0) if np.log10(hi / lo) < 3 else (1.0,)
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=subs))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
B = [float(b) for b in P.offsets]
skip = P.ft_steps // 10
frames = []
for norm, run in runs.items():
    for target in ("same", "zero"):
        for b in B:
            j = run.job_index(b, b if target == "same" else 0.0)
            frames.append(exp.curve_frame(run.ft_logs["loss"][j], run.ft_log_every, run.seeds, skip_steps=skip,
                                          network=NET[norm], target=f"{target} offset", b=f"{b:g}"))
curves = pd.concat(frames, ignore_index=True)
g = sns.relplot(data=curves, x="step", y="loss", hue="b", col="network", row="target", kind="line",
                errorbar=("ci", 95), height=3.0, aspect=1.35, palette="viridis",
                facet_kws={"sharey": "row", "margin_titles": True})
plain_log_y(g.axes)
g.set_axis_labels("fine-tuning step", "minibatch MSE")
g.set_titles(col_template="{col_name}", row_template="{row_name} targets")
sns.move_legend(g, "lower center", bbox_to_anchor=(0.45, -0.07), ncol=len(B) + 1, title="pretraining offset b")
g.figure.suptitle(f"Fine-tuning after pretraining with offset b ({P.seeds} seeds, mean and 95 % band)", y=1.02)
plotting.savefig(g.figure, "ch01_finetune_curves", P.profile)
plt.show()

# %% [markdown]
# Fine-tuning loss (log scale) of networks pretrained with each offset $b$; the first
# 10 % of fine-tuning is left out, as the paper leaves out its first 1,000 steps. Top:
# the new targets keep the offset $b$; bottom: they are centred at 0. Every task is
# equally hard (random values of variance about 1/2 around the offset), so the curves
# would coincide if pretraining left no trace. Without normalisation they fan out with
# $b$ in both rows. With layer norm (right) the same-offset curves stay close together,
# while zero-offset fine-tuning is slowed about as much as without normalisation: after
# the largest offsets the loss hardly moves below 0.5, the loss of predicting 0.

# %% [markdown]
# ## Dose-response (Fig. 1 left, Fig. 12 right)

# %%
dose = exp.dose_frame(runs, B)
g = sns.relplot(data=dose, x="offset", y="loss", hue="target", col="network", kind="line", marker="o",
                errorbar=("ci", 95), height=3.4, aspect=1.15)
plain_log_y(g.axes)
g.set(xticks=B)
g.set_axis_labels("pretraining target offset b", "final fine-tuning MSE\n(last 10 steps)")
g.set_titles("{col_name}")
g.legend.set_title("fine-tuning targets")
plotting.savefig(g.figure, "ch01_dose_response", P.profile)
plt.show()
dose.groupby(["network", "target", "offset"])["loss"].mean().unstack("offset").round(4)

# %% [markdown]
# Final fine-tuning loss (log scale, mean and 95 % band over seeds) against the offset of
# the pretraining targets. The fine-tuning task is equally hard for every $b$, so a flat
# line would mean no loss of plasticity; a rising line is the paper's dose-response.
# Without normalisation both lines rise with $b$ (the zero-offset line levels off near
# 0.5, the loss of predicting 0, where nothing of the new targets has been learnt).
# Layer norm flattens the same-offset line, not the zero-offset one. The table gives
# the seed means.

# %% [markdown]
# ## Where the offset lives: the penultimate features (Figs. 14, 15)
#
# Stack the penultimate features $\phi(x_i) \in \mathbb{R}^d$ of $n$ probe images into
# $F \in \mathbb{R}^{n \times d}$ (not centred) with singular values
# $\sigma_1 \ge \sigma_2 \ge \dots$ and top right-singular vector $v_1$. The network's
# output is $F w + c$ with final-layer weights $w \in \mathbb{R}^d$ and bias
# $c \in \mathbb{R}$; the part carried by the top direction is $F v_1 v_1^\top w$.

# %%
rows = []
for norm, run in runs.items():
    for stage, diag, index in (("after pretraining", run.pre_diag, lambda b: run.pre_index(b)),
                               ("after fine-tuning, offset 0", run.ft_diag, lambda b: run.job_index(b, 0.0))):
        for b in B:
            sv = diag["sv"][index(b)]  # (S, k)
            for s in range(sv.shape[0]):
                for k in range(sv.shape[1]):
                    rows.append({"network": NET[norm], "stage": stage, "b": f"{b:g}", "seed": s,
                                 "index": k + 1, "singular value": sv[s, k]})
spectra = pd.DataFrame(rows)
g = sns.relplot(data=spectra, x="index", y="singular value", hue="b", col="network", row="stage", kind="line",
                errorbar=("ci", 95), height=3.0, aspect=1.35, palette="viridis", facet_kws={"margin_titles": True})
g.set(yscale="log")
g.set_axis_labels("singular value index k", r"$\sigma_k$ of the $n \times d$ features")
g.set_titles(col_template="{col_name}", row_template="{row_name}")
sns.move_legend(g, "lower center", bbox_to_anchor=(0.45, -0.07), ncol=len(B) + 1, title="pretraining offset b")
plotting.savefig(g.figure, "ch01_feature_spectra", P.profile)
plt.show()

# %% [markdown]
# Singular values of the penultimate feature matrix on the probe images (log scale),
# per pretraining offset, mean and 95 % band over seeds. Without normalisation the top
# singular value climbs with $b$ while the rest of the spectrum does not follow: one
# direction of feature space dominates. Layer norm bounds the feature norm, so
# $\sigma_1$ barely moves, but the rest of the spectrum sinks with $b$; where it drops
# to about $10^{-7}$ the feature matrix has lost rank (numerically zero singular
# values). The bottom row shows the spectra after fine-tuning on zero-offset targets.
# The table below gives the share of penultimate units that are dead (zero on every
# probe image), seed means: the rank loss of the layer-norm features is dead units. In
# the default run about two thirds of the layer-norm network's penultimate units are
# dead after pretraining with $b \ge 32$ (none at $b = 0$), and a third or more of the
# unnormalised network's after any $b > 0$.

# %%
dead = pd.DataFrame({
    (NET[norm], stage): {f"b = {b:g}": float(diag["dead_fraction"][index(run, b)].mean()) for b in B}
    for norm, run in runs.items()
    for stage, diag, index in (("after pretraining", run.pre_diag, lambda r, b: r.pre_index(b)),
                               ("after fine-tuning, offset 0", run.ft_diag, lambda r, b: r.job_index(b, 0.0)))
}).T
dead.round(3)

# %%
rows = []
for norm, run in runs.items():
    for stage, diag, index in (("after pretraining", run.pre_diag, lambda b: run.pre_index(b)),
                               ("after fine-tuning, offset 0", run.ft_diag, lambda b: run.job_index(b, 0.0))):
        for b in B:
            i = index(b)
            for s in range(len(run.seeds)):
                rows.append({"network": NET[norm], "stage": stage, "b": b, "seed": s,
                             "quantity": "output along top feature direction", "value": diag["top_mean"][i, s]})
                rows.append({"network": NET[norm], "stage": stage, "b": b, "seed": s,
                             "quantity": "final-layer bias", "value": diag["bias"][i, s]})
proj = pd.DataFrame(rows)
g = sns.relplot(data=proj, x="b", y="value", hue="quantity", col="network", row="stage", kind="line", marker="o",
                errorbar=("ci", 95), height=3.0, aspect=1.5, legend=False,
                facet_kws={"sharey": "row", "margin_titles": True})
for (stage, _), ax in g.axes_dict.items():
    ax.plot(B, B if stage == "after pretraining" else np.zeros(len(B)), ls=":", color="grey", lw=1.5)
g.set(xticks=B)
g.set_axis_labels("pretraining target offset b", "contribution to the output")
g.set_titles(col_template="{col_name}", row_template="{row_name}")
pal = sns.color_palette()
handles = [plt.Line2D([], [], color=pal[0], marker="o", label="output along the top feature direction (mean over inputs)"),
           plt.Line2D([], [], color=pal[1], marker="o", label="final-layer bias"),
           plt.Line2D([], [], color="grey", ls=":", label="mean of the targets last trained on")]
g.figure.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.08), ncol=2)
plotting.savefig(g.figure, "ch01_top_direction_vs_bias", P.profile)
plt.show()

# %% [markdown]
# Mean over the probe images of the output carried by the top singular direction of
# the features, $\frac1n\sum_i (F v_1 v_1^\top w)_i$, and the final-layer bias $c$,
# against the pretraining offset; the dotted line is the mean of the targets the network
# was last trained on (hidden under the blue line where they agree). After pretraining,
# the top feature direction carries the whole offset while the bias stays near zero,
# with and without layer norm: the network encodes $b$ in its features, not in the bias
# that could represent it with a single parameter. After zero-offset fine-tuning
# (bottom, its own y-scale) the top direction's contribution is back within a few
# tenths of zero; in the layer-norm networks pretrained with large offsets a small
# positive bias and a negative top-direction contribution cancel.

# %% [markdown]
# ## Mean, not scale (Fig. 16)

# %%
none = runs["none"]
rows = []
for kind, levels in (("offset b (targets with mean b)", B), ("scale α (zero-mean targets)", [0.0, *P.alphas])):
    for v in levels:
        losses = none.final_loss(v, "zero") if kind.startswith("offset") else none.final_loss(0.0, "zero", pre_alpha=v)
        for s, l in enumerate(losses):
            rows.append({"pretraining targets": kind, "magnitude": v, "seed": s, "loss": l})
ctrl = pd.DataFrame(rows)
amax = float(P.alphas[-1])
curve_rows = [
    exp.curve_frame(none.ft_logs["loss"][none.job_index(0.0, 0.0)], none.ft_log_every, none.seeds, pretraining="b = 0, α = 0"),
    exp.curve_frame(none.ft_logs["loss"][none.job_index(B[-1], 0.0)], none.ft_log_every, none.seeds, pretraining=f"offset b = {B[-1]:g}"),
    exp.curve_frame(none.ft_logs["loss"][none.job_index(0.0, 0.0, pre_alpha=amax)], none.ft_log_every, none.seeds,
                    pretraining=f"scale α = {amax:g}"),
]
fig, axes = plt.subplots(1, 2, figsize=(11.5, 3.9), gridspec_kw={"width_ratios": [1, 1.1]})
ax = axes[0]
sns.lineplot(data=ctrl, x="magnitude", y="loss", hue="pretraining targets", marker="o", errorbar=("ci", 95), ax=ax)
plain_log_y(ax)
ax.set(xticks=B, xlabel="pretraining magnitude: offset b or scale α",
       ylabel="final fine-tuning MSE on\nzero-mean targets (last 10 steps)", title="Final loss")
ax.legend(title="pretraining targets", fontsize=9)
ax = axes[1]
sns.lineplot(data=pd.concat(curve_rows, ignore_index=True), x="step", y="loss", hue="pretraining", errorbar=("ci", 95),
             ax=ax, palette=["0.3", sns.color_palette()[0], sns.color_palette()[1]])
plain_log_y(ax)
ax.set(xlabel="fine-tuning step", ylabel="minibatch MSE", title="Fine-tuning on zero-mean targets")
ax.legend(title="pretrained on", fontsize=9)
fig.suptitle(f"No normalization: large target mean vs large zero-mean target scale ({P.seeds} seeds, mean and 95 % band)",
             y=1.03)
plotting.savefig(fig, "ch01_mean_not_scale", P.profile)
plt.show()

# %% [markdown]
# Left: final loss of fine-tuning on zero-mean targets ($b = 0$, $\alpha = 0$) after
# pretraining either on targets with offset $b$ or on zero-mean targets whose smooth
# part is scaled by $\alpha$ (networks without normalisation). Equal $b$ and $\alpha$
# give targets of the same second moment; only the offset targets have a large mean.
# If only the mean mattered, the $\alpha$ line would stay at the level of its first
# point. Right: the fine-tuning curves behind the largest magnitudes (log scale),
# with $b = \alpha = 0$ pretraining for reference.

# %% [markdown]
# ## Claim checks
#
# Thresholds and statistics are those fixed in the chapter's issue before the run.
# Ratios are ratios of seed-means, with a percentile bootstrap over seeds (seeds
# resampled jointly across the conditions they share); the Spearman correlation is
# between $b$ and the seed-mean final loss, with the same bootstrap. "b_max" is the
# largest offset of the profile.

# %%
est = exp.claim_estimates(runs, B, P.alphas)
bmax = B[-1]
book = claims.ClaimBook("ch01_target_offset", P, dataset=ds.source)
book.check(
    "ch1.dose_same",
    statement="Without normalization, the final fine-tuning loss on targets with the pretraining offset grows with the offset b (dose-response).",
    figure="§3.1, Fig. 1 (left), Fig. 12 (right), Fig. 13",
    parts=[
        claims.part("no norm, same-offset targets: Spearman ρ(b, seed-mean final loss)", est["rho_same"], 0.9, ">="),
        claims.part(f"no norm, same-offset targets: loss(b={bmax:g}) / loss(b=0)", est["ratio_same"], 1.0, ">"),
    ],
)
book.check(
    "ch1.dose_zero",
    statement="Without normalization, the final fine-tuning loss on zero-offset targets grows with the pretraining offset b.",
    figure="§3.1, Fig. 1 (left), Fig. 12 (right), Fig. 13",
    parts=[
        claims.part("no norm, zero-offset targets: Spearman ρ(b, seed-mean final loss)", est["rho_zero"], 0.9, ">="),
        claims.part(f"no norm, zero-offset targets: loss(b={bmax:g}) / loss(b=0)", est["ratio_zero"], 1.0, ">"),
    ],
)
book.check(
    "ch1.ln_partial",
    statement="Layer normalization mitigates but does not eliminate the effect of the pretraining offset on zero-offset fine-tuning.",
    figure="§3.1, Fig. 1 (left), Fig. 11",
    parts=[
        claims.part(f"zero-offset loss(b={bmax:g})/loss(0): no norm minus layer norm", est["ratio_zero_gap"], 0.0, ">"),
        claims.part(f"layer norm, zero-offset targets: loss(b={bmax:g}) / loss(b=0)", est["ratio_zero_ln"], 1.0, ">"),
    ],
)
book.check(
    "ch1.feature_blowup",
    statement="Without layer norm the top singular value of the penultimate features grows by orders of magnitude with the offset; layer norm bounds it, but the lower singular values still shrink relative to the top one.",
    figure="App. E.1, Fig. 14",
    parts=[
        claims.part(f"no norm: σ₁(b={bmax:g}) / σ₁(b=0) after pretraining", est["sigma1_growth"], 10.0, ">="),
        claims.part(f"layer norm: σ₁(b={bmax:g}) / σ₁(b=0) after pretraining", est["sigma1_growth_ln"], 3.0, "<"),
        claims.part(f"layer norm: (σ₂/σ₁)(b={bmax:g}) / (σ₂/σ₁)(b=0) after pretraining", est["sigma21_change_ln"], 1.0, "<"),
    ],
)
book.check(
    "ch1.bias_in_features",
    statement="The offset is carried by the top singular direction of the features, not by the final-layer bias.",
    figure="App. E.1, Fig. 15",
    parts=[
        claims.part(f"no norm, b={bmax:g}: mean output along the top feature direction / b", est["top_mean_over_b"], 0.75, ">"),
        claims.part(f"no norm, b={bmax:g}: mean output along the top feature direction / b", est["top_mean_over_b"], 1.25, "<"),
        claims.part(f"no norm, b={bmax:g}: |final-layer bias| / b", est["bias_over_b"], 0.25, "<"),
    ],
)
book.check(
    "ch1.mean_not_scale",
    statement="Pretraining on zero-mean targets scaled up to the same magnitude does not hurt fine-tuning on small zero-mean targets: it is the target mean, not the scale.",
    figure="App. E.1, Fig. 16",
    parts=[
        claims.part(f"no norm: zero-target loss after α={P.alphas[-1]:g} / after α=0 pretraining", est["alpha_ratio"], 1.5, "<"),
    ],
)
book.table()

# %%
book.save();

# %% [markdown]
# ## What we found

# %% tags=["remove-input"]
v = {c.id: c.verdict for c in book.claims}
f = claims.format_estimate
none, ln = runs["none"], runs["layer"]
m = lambda a: float(np.mean(a))  # noqa: E731
j_alpha = none.job_index(0.0, 0.0, pre_alpha=float(P.alphas[-1]))
half = none.ft_logs["loss"].shape[-1] // 2 - 1
display(Markdown(f"""
In this run ({P.profile} profile, {ds.source}, {P.arch.upper()} {P.width}×{P.depth}, {P.seeds} seeds,
{P.pre_steps} pretraining and {P.ft_steps} fine-tuning steps, $b \\in$ {{{", ".join(f"{b:g}" for b in B)}}}):

* **Dose-response without normalisation.** Fine-tuning on same-offset targets ended at a loss of
  {m(none.final_loss(0, "same")):.3g} after $b = 0$ pretraining and {m(none.final_loss(bmax, "same")):.3g} after
  $b = {bmax:g}$ (ratio {f(est["ratio_same"])}, Spearman ρ {f(est["rho_same"])}: `ch1.dose_same` **{v["ch1.dose_same"]}**);
  on zero-offset targets {m(none.final_loss(0, "zero")):.3g} vs {m(none.final_loss(bmax, "zero")):.3g}
  (ratio {f(est["ratio_zero"])}, ρ {f(est["rho_zero"])}: `ch1.dose_zero` **{v["ch1.dose_zero"]}**).
* **Layer norm.** With layer norm the zero-offset ratio loss(b={bmax:g})/loss(0) was {f(est["ratio_zero_ln"])}
  against {f(est["ratio_zero"])} without (difference {f(est["ratio_zero_gap"])}: `ch1.ln_partial`
  **{v["ch1.ln_partial"]}**); the zero-offset losses themselves were {m(ln.final_loss(0, "zero")):.3g} and
  {m(ln.final_loss(bmax, "zero")):.3g} with layer norm, {m(none.final_loss(0, "zero")):.3g} and
  {m(none.final_loss(bmax, "zero")):.3g} without. On same-offset targets the layer-norm network ended at
  {m(ln.final_loss(0, "same")):.3g} ($b = 0$) and {m(ln.final_loss(bmax, "same")):.3g} ($b = {bmax:g}$), a ratio of
  {m(ln.final_loss(bmax, "same")) / m(ln.final_loss(0, "same")):.2g}.
* **Features.** σ₁ of the penultimate features grew {f(est["sigma1_growth"])}-fold from $b = 0$ to $b = {bmax:g}$ without
  normalisation and {f(est["sigma1_growth_ln"])}-fold with layer norm, where σ₂/σ₁ changed by a factor
  {f(est["sigma21_change_ln"])} (`ch1.feature_blowup` **{v["ch1.feature_blowup"]}**). At $b = {bmax:g}$ the top feature
  direction carried {f(est["top_mean_over_b"])} of the offset and the final-layer bias {f(est["bias_over_b"])}
  (`ch1.bias_in_features` **{v["ch1.bias_in_features"]}**).
* **Mean, not scale.** After pretraining on zero-mean targets with α = {P.alphas[-1]:g} the zero-target fine-tuning loss
  was {f(est["alpha_ratio"])} times that after α = 0 (`ch1.mean_not_scale` **{v["ch1.mean_not_scale"]}**); after
  offset-{bmax:g} pretraining it was {f(est["ratio_zero"])} times. The α = {P.alphas[-1]:g} loss was still falling at the
  end: {m(none.ft_logs["loss"][j_alpha, :, half]):.3g} halfway through fine-tuning, {m(none.final_loss(0, "zero", pre_alpha=float(P.alphas[-1]))):.3g} at the end.

At the smoke profile these numbers only show that the code runs.
"""))

# %% [markdown]
# **Reading the default run.** The paper's dose-response reproduces for both kinds of
# fine-tuning targets, and so does its mechanism: the network writes the offset into
# the top singular direction of its penultimate features, whose singular value grows
# with $b$ (about 34-fold from $b = 0$ to $64$ here, against the paper's $O(10^3)$ to
# $O(10^8)$ for mean-100 targets in a CNN), while the final-layer bias stays near zero.
# On same-offset targets the loss ties between $b = 8$ and $b = 16$; ρ = 0.9 is exactly
# the value of one tie-break among five offsets, which the claim's threshold admits.
#
# Layer norm behaves more sharply than the paper's "mitigates, does not eliminate". It
# removes most of the same-offset effect (a ratio of about 2 between $b = 64$ and
# $b = 0$, against about 9 without normalisation) but none of the zero-offset effect:
# there the layer-norm network ends *higher* than the unnormalised one at $b = 8$ and 16,
# and from $b = 32$ on both sit near 0.5 — the loss of predicting 0, i.e. almost nothing
# of the new targets learnt. So `ch1.ln_partial` is inconclusive: the zero-offset ratio is
# about the same with and without layer norm, and the interval of their difference
# contains 0. The dead-unit table points to why layer norm does not help here: after
# large-offset pretraining most of its penultimate units are dead, the "saturating units"
# the paper mentions for large offsets in App. E.1.
#
# The $\alpha$ control does not reproduce at this scale: zero-mean targets of large
# scale hurt zero-target fine-tuning even more than offsets of the same magnitude, at
# every magnitude tried. The fine-tuning curves at the largest magnitude show why the
# statistic fails there: after offset pretraining the network removes the offset within
# about a hundred steps and then stalls near 0.5 (lost plasticity), whereas after
# $\alpha$ pretraining it is still unlearning the old input-dependent function of
# standard deviation $\alpha$ when fine-tuning ends, its loss falling steadily. The final
# loss after 600 steps therefore measures unfinished unlearning more than lost ability to
# learn. Longer fine-tuning narrows the gap but does not close it: in one exploratory run
# outside this chapter's budget (default settings, the same five seeds, only the
# $b = \alpha = 0$, $\alpha = 64$ and $b = 64$ pretraining conditions, fine-tuned for
# 3,000 steps; measured once, 2026-11-21) the ratio loss($\alpha = 64$) / loss($\alpha = 0$)
# fell from 111 after 600 steps to 56, 38 and 28 after 1,000, 2,000 and 3,000 steps —
# still far above the claim's 1.5 — while the $b = 64$ ratio went from 13 to 5.5. Rerun
# the whole chapter with `--param ft_steps=3000` to test the claim at that length.
# Whether a smaller spread of the smooth part would change the picture (the paper gives
# neither its values of $\alpha$ nor the scale of $f_\theta$; we standardise it) is not
# tested here.
#
# **Scale.** This is a small version of App. E.1: an MLP on 4,096 MNIST images for 1,000
# pretraining and 600 fine-tuning steps, where the paper trains a CNN on 10,000 CIFAR-10
# images. The paper profile (`profile="paper"`, a GPU) runs the CNN setting with $b$ up
# to 100 and 5,000 fine-tuning steps.
