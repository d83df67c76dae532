"""Profile table of chapter 03, "Death of a ReLU" (§3.2, Fig. 2, App. E.3, Fig. 18).

Train an MLP to convergence on one random labelling of MNIST images (task A), reshuffle
the labels (task B) and continue from the converged parameters, with the Adam state
carried over or reset; log every step through the erasing window. Networks: a
one-hidden-layer ReLU MLP (Fig. 18), a deep ReLU MLP, and deep networks with the other
activations of ``panel_activations`` (Fig. 2 right: CNNs on CIFAR-10 in the paper; MLPs
on MNIST at the default profile).

Fixed at every profile (not fields; ``plasticity_lib.switch``): 50 steps logged at every
step at the end of each task (the pre-switch value and the "last 50 steps"), the erasing
window = the first 10 % of task B.

The paper profile follows B.1/B.2 where the paper states them (width 512, depth 4, Adam
with learning rate 1e-5 for MLPs and 1e-4 for the CNN, 75,000 steps per task) and uses all
60,000 MNIST training images (§3.2 does not state the subset); it is not run here.
"""

from __future__ import annotations

import dataclasses

from . import param


@dataclasses.dataclass(frozen=True)
class Parameters:
    """The default profile (minutes on a 2-core CPU; what `make book` runs)."""

    dataset: str = param(
        "mnist",
        "images of the ReLU MLPs (random labels)",
        choices=("mnist", "fashion_mnist", "cifar10", "cifar100"),
    )
    n_train: int = param(1024, "training images (seeded subset)", range=(16, None))
    center_inputs: bool = param(
        False,
        "subtract the per-pixel mean (False: pixels in [0, 1], as in the paper's §3.2 MLP)",
    )
    shallow_width: int = param(256, "width of the one-hidden-layer MLP (Fig. 18)", range=(1, None))
    deep_depth: int = param(4, "hidden layers of the deep MLP", range=(1, None))
    deep_width: int = param(128, "width of the deep MLP", range=(1, None))
    panel_arch: str = param(
        "mlp",
        "architecture of the activation panel (Fig. 2 right): mlp (deep MLP) or cnn (B.1 CNN)",
        choices=("mlp", "cnn"),
    )
    panel_dataset: str = param(
        "mnist",
        "images of the activation panel",
        choices=("mnist", "fashion_mnist", "cifar10", "cifar100"),
    )
    panel_n_train: int = param(
        1024,
        "training images of the activation panel when its data differ from the MLPs' (CNN)",
        range=(16, None),
    )
    panel_activations: tuple[str, ...] = param(
        ("relu", "gelu", "leaky_relu"),
        "activations of the panel (relu reuses the deep ReLU run when panel_arch is mlp)",
        choices=("relu", "gelu", "leaky_relu", "tanh", "abs"),
    )
    learning_rate: float = param(0.001, "Adam learning rate of the MLPs", range=(0.0, None))
    panel_learning_rate: float = param(
        0.001,
        "Adam learning rate of the activation panel",
        range=(0.0, None),
    )
    batch_size: int = param(128, "minibatch size", range=(1, None))
    pretrain_steps: int = param(1500, "Adam steps on task A (to convergence)", range=(51, None))
    task_steps: int = param(1500, "Adam steps on task B after the switch", range=(60, None))
    mid_log_every: int = param(
        20,
        "log period between the erasing window and the last 50 steps",
        range=(1, None),
    )
    probe_size: int = param(
        512,
        "training images in the fixed probe batch of the diagnostics",
        range=(2, None),
    )
    seeds: int = param(5, "independent seeds (vmapped)", range=(1, None))
    seed_offset: int = param(
        0,
        "first seed: the seeds are seed_offset, ..., seed_offset + seeds - 1",
        range=(0, None),
    )
    allow_fallback: bool = param(
        False,
        "use scikit-learn digits if the data cannot be found (smoke only)",
    )


# The smoke profile (seconds, for CI and nbmake; verdicts not evaluated):
# only the fields that differ from the default.
SMOKE = dict(
    n_train=256,
    shallow_width=64,
    deep_depth=2,
    deep_width=32,
    panel_n_train=256,
    batch_size=64,
    pretrain_steps=100,
    task_steps=500,
    probe_size=128,
    seeds=2,
    allow_fallback=True,
)


# The paper profile (the paper's settings, for a GPU): the fields that differ.
PAPER = dict(
    n_train=60000,
    shallow_width=512,
    deep_width=512,
    panel_arch="cnn",
    panel_dataset="cifar10",
    panel_n_train=50000,
    learning_rate=1e-05,
    panel_learning_rate=0.0001,
    pretrain_steps=75000,
    task_steps=75000,
    mid_log_every=50,
)


# Bounds of one field by another (checked by `profiles.resolve`, before anything runs).
CONSTRAINTS = [
    ("batch_size", "<=", "n_train"),
    ("probe_size", "<=", "n_train"),
    ("mid_log_every", "<=", "task_steps"),
]
