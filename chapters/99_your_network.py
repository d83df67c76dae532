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
# # Use it on your own network
#
# *A how-to page: the diagnostics of {cite}`lyle2024disentangling` applied to a network
# that is not one of the library's models.*
#
# The chapters build their networks with `plasticity_lib.models`, but the diagnostics do
# not need that. Almost all of them are functions of arrays (a layer's activations, a
# feature matrix, a kernel) or of `(apply_fn, params, x)`, so they work with any Flax model.
# This page writes a small GELU MLP with `flax.linen`, trains it for a few hundred Adam
# steps on an MNIST subset with a plain optax loop, and applies to it, at initialisation
# and after training:
#
# | diagnostic | paper | what it needs from your model |
# |---|---|---|
# | dead, dormant, saturated, linearized units | §3.2, Fig. 2; E.3, E.8 | `(n, units)` per layer |
# | empirical NTK and its summaries | §3.3, Fig. 3; App. C | `apply_fn(params, x) -> (n, C)` |
# | feature rank | §3.2; App. E.1 | penultimate features `(n, d)` |
# | sharpness | §3.2, Fig. 3 (left) | a loss `params -> scalar` |
# | plasticity measure | §2.2 | a `models.Network`: a small adapter |
#
# The page tests no claim of the paper: it shows each call, the shapes it takes, and what
# it returns. The chapters use the same functions on the library's own models (chapter 3
# for unit death, chapter 4 for the eNTK).

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
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from plasticity_lib import data, diagnostics, keys, models, profiles, train

# %% [markdown]
# ## Setup
#
# The `parameters` cell is read by papermill: `profile` picks a column of the table below
# (`smoke`, `default`, `paper`), any other name overrides one field (`None` keeps the
# profile's value). The paper profile only scales the network up to the paper's MLP
# (512 × 4, App. B.1) and trains longer; nothing on this page depends on the profile
# except the numbers it prints.

# %% tags=["parameters"]
profile = "default"  # smoke | default | paper
seeds = None  # number of seeds, trained together with vmap
seed_offset = None  # first seed (seeds seed_offset, ..., seed_offset + seeds - 1)
width = None  # hidden width of the page's MLP
train_steps = None  # Adam steps of the page's own training loop
measure_steps = None  # Adam steps on the fresh task of the plasticity measure

# %%
P = profiles.resolve_notebook("ch99_your_network", globals())
profiles.show("ch99_your_network")

# %% [markdown]
# ## Your network
#
# Any `flax.linen` module will do. This one is an MLP with GELU written with plain
# `nn.Dense` layers, so it is not `plasticity_lib.models`' MLP. The unit diagnostics need
# each hidden layer's preactivation (the input of the nonlinearity) and activation; the
# module records them with `self.sow` in an `intermediates` collection, which costs nothing
# unless the collection is asked for (`mutable=["intermediates"]`), so `__call__` still
# returns just the logits.

# %%
ds = data.load_dataset(
    P.dataset, n=P.n_train, seed=0, flatten=True, allow_fallback=P.allow_fallback
)
x, y = jnp.asarray(ds.x), jnp.asarray(ds.y)
seed_list = list(range(P.seed_offset, P.seed_offset + P.seeds))
print(f"data: {ds.source}, x {x.shape}, y {y.shape}, {ds.num_classes} classes")


class GeluMLP(nn.Module):
    """MLP with GELU; records every hidden layer's preactivation and activation."""

    widths: tuple[int, ...]
    num_classes: int

    @nn.compact
    def __call__(self, x):  # x: (n, features) -> logits (n, num_classes)
        h = x
        for i, w in enumerate(self.widths):
            z = nn.Dense(w, name=f"hidden_{i}")(h)
            h = nn.gelu(z)
            self.sow("intermediates", "preacts", z)  # (n, w)
            self.sow("intermediates", "acts", h)  # (n, w)
        return nn.Dense(self.num_classes, name="head")(h)


model = GeluMLP(widths=(P.width,) * P.depth, num_classes=ds.num_classes)


def apply_fn(params, x):
    """Logits ``(n, C)`` of inputs ``(n, features)``: the eNTK and the losses use this."""
    return model.apply({"params": params}, x)


def intermediates(params, x):
    """``(preacts, acts)``: tuples with one ``(n, width)`` array per hidden layer."""
    _, state = model.apply({"params": params}, x, mutable=["intermediates"])
    return state["intermediates"]["preacts"], state["intermediates"]["acts"]


# %% [markdown]
# ## Training it your way
#
# A plain optax loop: Adam on minibatches of the (true) MNIST labels, one jitted
# `lax.scan` over the steps, `vmap` over the seeds. The library's training engine is not
# used; the diagnostics only need the parameters it produces. The initial parameters of
# seed $s$ come from the key `fold_in(PRNGKey(s), keys.PARAMS)`, the library's key scheme,
# which matters only for the plasticity measure below (its fresh networks use the same
# key).


# %%
def loss_fn(params, xb, yb):
    """Mean cross-entropy of the logits of ``xb`` ``(n, features)`` on labels ``yb`` ``(n,)``."""
    return optax.softmax_cross_entropy_with_integer_labels(apply_fn(params, xb), yb).mean()


optimizer = optax.adam(P.learning_rate)


def train_one(params, key):
    """``P.train_steps`` Adam steps from ``params``; returns the params and the losses."""

    def step(carry, k):
        params, opt_state = carry
        idx = jax.random.randint(k, (P.batch_size,), 0, x.shape[0])
        loss, grads = jax.value_and_grad(loss_fn)(params, x[idx], y[idx])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    carry = (params, optimizer.init(params))
    (params, _), losses = jax.lax.scan(step, carry, jax.random.split(key, P.train_steps))
    return params, losses


init = jax.jit(jax.vmap(lambda k: model.init(k, x[:2])["params"]))
params_init = init(keys.for_seeds(seed_list, keys.PARAMS))  # leaves (S, ...)
params_trained, losses = jax.jit(jax.vmap(train_one))(
    params_init, keys.for_seeds(seed_list, keys.MINIBATCH)
)
accuracy = jax.vmap(lambda p: jnp.mean(jnp.argmax(apply_fn(p, x), -1) == y))(params_trained)
print("parameter shapes (seed axis first):", jax.tree.map(jnp.shape, params_init))
print(
    f"training loss, first and last step: {losses[:, 0].mean():.3f} -> {losses[:, -1].mean():.3f}"
)
print(f"training accuracy after {P.train_steps} steps: {100 * accuracy.mean():.1f} % (seed mean)")

# %% [markdown]
# Every diagnostic below is computed for both parameter sets, the initialisation and the
# trained network, stacked into leaves of shape `(2, S, ...)`: a diagnostic written for
# ONE network is mapped over both axes with `jax.vmap(jax.vmap(...))` and compiled once.
# The tables show the mean over the seeds (and the spread over seeds of the trained
# network).

# %%
checkpoints = ["initialisation", "trained"]
both = jax.tree.map(lambda a, b: jnp.stack([a, b]), params_init, params_trained)


def per_network(fn):
    """``fn`` of one network's params (and further arguments) over the (2, S) networks."""
    return jax.jit(jax.vmap(jax.vmap(fn)))


def summary(values: dict, names: list) -> pd.DataFrame:
    """``{name: (2, S) array}`` -> rows ``names``: the mean over seeds of each checkpoint
    and the sd over seeds of the trained one (jax returns dicts with sorted keys)."""
    rows = {}
    for name in names:
        v = np.asarray(values[name], np.float64)
        row = {c: v[i].mean() for i, c in enumerate(checkpoints)}
        row["trained: sd over seeds"] = v[1].std(ddof=1) if v.shape[1] > 1 else np.nan
        rows[name] = row
    return pd.DataFrame(rows).T


x_probe, y_probe = x[: P.n_probe], y[: P.n_probe]

# %% [markdown]
# ## Dead, dormant, saturated and linearized units
#
# *What it measures* (§3.2, Fig. 2; App. E.3, E.8): units that stopped contributing. A
# **dead** unit's activation is zero on every probe input; a **dormant** unit's mean
# |activation| is a small share `tau` of its layer's average (the ReDo score of
# {cite}`sokar2023dormant`); a **saturated** unit passes (almost) no gradient on any input;
# a **linearized** ("zombie") unit acts as a linear map on the whole batch, so it adds no
# nonlinearity. For a smooth activation such as GELU the last two use the spread of the
# slope $\phi'(z)$ over the batch (module docstring of `diagnostics.units`); GELU is zero
# only at $z = 0$, so its units are practically never dead in the exact sense.
#
# *API*: `dead_unit_fraction(acts)`, `dormant_unit_fraction(acts, tau)`,
# `saturated_unit_fraction(preacts, activation)`, `linearized_unit_fraction(preacts,
# activation)`, each taking a sequence of `(n, units)` arrays (one per hidden layer) and
# returning `(per_layer (L,), total)` fractions.


# %%
def unit_status(params):
    preacts, acts = intermediates(params, x_probe)  # tuples of (n_probe, width)
    return {
        "dead": diagnostics.dead_unit_fraction(acts)[1],
        "dormant (tau = 0.025)": diagnostics.dormant_unit_fraction(acts, tau=0.025)[1],
        "saturated": diagnostics.saturated_unit_fraction(preacts, "gelu")[1],
        "linearized": diagnostics.linearized_unit_fraction(preacts, "gelu")[1],
    }


print(f"fraction of all {P.depth} x {P.width} hidden units, on {P.n_probe} probe inputs")
summary(
    per_network(unit_status)(both), ["dead", "dormant (tau = 0.025)", "saturated", "linearized"]
)

# %% [markdown]
# ## The empirical NTK
#
# *What it measures* (§3.3, Fig. 3; App. C): the kernel
# $K_{ij} = \langle \nabla_\theta f(x_i), \nabla_\theta f(x_j) \rangle$ on a mini-batch,
# here for $f$ the sum of the logits. Its off-diagonal entries say how much a gradient step
# on one input moves the output on another (interference); the paper finds that networks
# that lost plasticity have a kernel close to "diagonal plus rank one", with a low
# effective rank.
#
# *API*: `entk(apply_fn, params, x)` with `apply_fn(params, x) -> (n, C)`, any params
# pytree, `x` `(n, ...)`; returns `(n, n)`. The fast route factorises every plain `nn.Dense`
# call it finds while tracing `apply_fn` (it must not be jitted already);
# `fast_entk_supported` says whether it covers every parameter. `ntk_summary(K)` gives the
# scalar summaries of Fig. 3 (rank-one error, mean |cosine|, effective rank, ...).

# %%
x_ntk = x[: P.n_ntk]
one_network = jax.tree.map(lambda a: a[0], params_init)
print(
    "fast route covers every parameter:",
    diagnostics.fast_entk_supported(apply_fn, one_network, x_ntk),
)


NTK_SUMMARIES = ["mean_diag", "mean_abs_offdiag_cosine", "diag_rank1_error", "effective_rank"]


def kernel_summary(params):
    k = diagnostics.entk(apply_fn, params, x_ntk)  # (n_ntk, n_ntk)
    s = diagnostics.ntk_summary(k)
    return {name: s[name] for name in NTK_SUMMARIES}


print(f"eNTK on {P.n_ntk} inputs, output = sum of the logits")
summary(per_network(kernel_summary)(both), NTK_SUMMARIES)

# %% [markdown]
# ## Feature rank
#
# *What it measures* (§3.2; App. E.1, Fig. 14): how many directions the penultimate
# representation $\phi(x)$ (the input of the head) really uses. A collapsing rank is one
# of the candidate causes of plasticity loss the paper examines. The **effective rank**
# {cite}`roy2007effective` is the exponential of the entropy of the normalised singular
# values; the **srank** {cite}`kumar2020implicit` counts the singular values that hold all
# but a share `delta` of their sum.
#
# *API*: `singular_values(features)` with features `(n, d)` returns `(min(n, d),)`;
# `effective_rank(sv)` and `srank(sv, delta)` return scalars.


# %%
def feature_rank(params):
    _, acts = intermediates(params, x_probe)
    sv = diagnostics.singular_values(acts[-1])  # features (n_probe, width) -> (min(n, d),)
    return {
        "effective rank": diagnostics.effective_rank(sv),
        "srank (delta = 0.01)": diagnostics.srank(sv, delta=0.01),
    }


print(f"penultimate features ({P.n_probe} probe inputs x {P.width} units)")
summary(per_network(feature_rank)(both), ["effective rank", "srank (delta = 0.01)"])

# %% [markdown]
# ## Sharpness
#
# *What it measures* (§3.2, Fig. 3 left): the largest eigenvalue $\lambda_{\max}$ of the
# Hessian of the training loss at the parameters: how sharply the loss curves along its
# steepest direction. The paper finds that it grows with the parameter norm, and that a
# sharp point is a poor place to start optimising a new task from. The estimate runs
# power iteration with Hessian-vector products, so the Hessian is never formed.
#
# *API*: `hessian_top_eigenvalue(loss_fn, params, key, num_iters)` (alias `sharpness`),
# with `loss_fn: params -> scalar` closing over the data; returns a scalar.
# `global_parameter_norm(params)` is shown beside it.


# %%
def curvature(params, key):
    loss_of = lambda p: loss_fn(p, x_probe, y_probe)
    return {
        "training loss (probe)": loss_of(params),
        "sharpness": diagnostics.hessian_top_eigenvalue(
            loss_of, params, key, num_iters=P.hessian_iters
        ),
        "parameter norm": diagnostics.global_parameter_norm(params),
    }


hessian_keys = jnp.stack([keys.for_seeds(seed_list, keys.METRICS)] * 2)  # (2, S, 2)
print(
    f"Hessian of the mean cross-entropy on {P.n_probe} probe inputs, {P.hessian_iters} iterations"
)
summary(
    per_network(curvature)(both, hessian_keys),
    ["training loss (probe)", "sharpness", "parameter norm"],
)

# %% [markdown]
# ## The plasticity measure (§2.2)
#
# *What it measures* (§2.2): the paper's definition of plasticity. A network has lost
# plasticity when it cannot optimise a new objective as well as a freshly initialised
# network. `plasticity_measure` trains each checkpoint (with a fresh optimizer state) and
# a fresh initialisation of the same seed on the same fresh task (a random labelling of
# `x`) with the same minibatches, and reports both final losses and accuracies, their
# ratio `loss_ratio` (above 1: plasticity lost) and `accuracy_gap`.
#
# *API*: `plasticity_measure(network, cfg, params, seeds, steps=K, x=x,
# num_classes=C)`, with `cfg` a `train.TrainConfig` (optimizer, learning rate, batch
# size), `params` leaves `(C, S, ...)` or `(S, ...)`, one integer seed per column.
#
# Unlike the others it *trains*, with the library's engine (`train.init_state`,
# `train.train_steps`, `train.evaluate_task`), so it needs more than an `apply_fn`. The
# engine takes a `models.Network` and checks that it is one; passing the linen module
# itself fails:

# %%
fresh_task_cfg = train.TrainConfig(learning_rate=P.learning_rate, batch_size=P.batch_size)
try:
    diagnostics.plasticity_measure(
        model, fresh_task_cfg, params_init, seed_list, steps=1, x=x, num_classes=ds.num_classes
    )
except ValueError as e:
    print("ValueError:", e)

# %% [markdown]
# What the engine uses of a `models.Network`:
#
# - `network.init(key, example_x) -> params`: the fresh initialisations (with key
#   `fold_in(PRNGKey(seed), keys.PARAMS)`) and the parameter shapes;
# - `network.apply(params, x) -> (n, C)`: the outputs, for training and evaluation;
# - `network.cfg.head` and `network.cfg.arch`: checks of the loss (`"twohot"` needs a
#   two-hot head) and of ReDo;
# - `==` and `hash`: the network is a static argument of the engine's compiled programs,
#   so two networks that compute different functions must not compare equal;
# - only for some `TrainConfig` options: `apply_with_intermediates` (feature-norm penalty,
#   InFeR) and `unit_layers` (ReDo). The adapter below leaves them out, so those options
#   do not work with it.
#
# `models.Network(cfg, module)` itself is not the adapter: its `init` redraws every
# `kernel` with the library's initialiser (ignoring the module's own), its `apply` takes
# element `[0]` of the module's output (the library's modules return `(outputs,
# intermediates)`), and it compares and hashes by `cfg` alone. The smallest adapter is a
# subclass that calls the module's own `init` and `apply` and makes the module part of
# `==` and `hash` (linen modules are frozen dataclasses, compared by their fields):


# %%
@dataclasses.dataclass(frozen=True)
class LinenNetwork(models.Network):
    """A ``models.Network`` over a linen module whose ``__call__`` returns the outputs."""

    module: nn.Module  # redeclared: compared and hashed (models.Network ignores it)

    def init(self, key, example_x):
        return self.module.init(key, example_x)["params"]

    def apply(self, params, x):
        return self.module.apply({"params": params}, x)


# cfg only answers the engine's checks: a linear head (cross-entropy), no ReDo
net = LinenNetwork(models.ModelConfig(num_outputs=ds.num_classes), model)
print(
    "same initialisation as the page's:",
    jax.tree.all(
        jax.tree.map(jnp.array_equal, train.initial_params(net, seed_list, x[:2]), params_init)
    ),
)

measure = diagnostics.plasticity_measure(
    net,
    fresh_task_cfg,
    both,  # leaves (C = 2 checkpoints, S seeds, ...)
    seed_list,
    steps=P.measure_steps,
    x=x,
    num_classes=ds.num_classes,
)
print(
    f"fresh task: random labels of the {x.shape[0]} training images, {P.measure_steps} Adam "
    f"steps; checkpoint 'initialisation' against the fresh network, loss ratio exactly 1: "
    f"{bool(np.all(measure.loss_ratio[0] == 1.0))}"
)
measure.frame(checkpoints).round(4)

# %% [markdown]
# The `initialisation` rows are a check of the wiring: that checkpoint *is* the fresh
# network of its seed (same parameters, task and minibatches), so its ratio is exactly
# one. The `trained` rows are the measure of the page's network after its MNIST training.
#
# ## What to take away
#
# - Unit status, eNTK, feature rank and sharpness need no adapter: give them the arrays
#   (`sow` the layers you want to inspect) or an `apply_fn(params, x)`, and `vmap` them
#   over seeds and checkpoints.
# - The plasticity measure trains with the library's engine and needs a `models.Network`:
#   the `LinenNetwork` adapter above (an `init`, an `apply`, a placeholder `cfg`, and the
#   module in `==`/`hash`) is enough for the optimizer, learning rate, batch size, loss and
#   L2 options of `TrainConfig`.
# - Only the numbers printed by the code are results of this run; none is typed here.
