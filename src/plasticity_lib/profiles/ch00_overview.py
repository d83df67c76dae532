"""Profile table of chapter 00, "Plasticity loss in five minutes" (§3.1, §4.2, Fig. 5 left).

An MLP on a stream of random-label tasks over an MNIST subset, with and without
layer normalisation + L2. The paper profile follows §4.2/B.2: width 512, depth 4,
Adam with learning rate 1e-5, 75,000 steps per task, 20 tasks, L2 1e-5.
"""

from __future__ import annotations

import dataclasses

from . import param


@dataclasses.dataclass(frozen=True)
class Parameters:
    """The default profile (minutes on a 2-core CPU; what `make book` runs)."""

    dataset: str = param(
        "mnist",
        "base image dataset",
        choices=("mnist", "fashion_mnist", "cifar10", "cifar100"),
    )
    n_train: int = param(1024, "training images (seeded subset)", range=(16, None))
    width: int = param(256, "MLP hidden width", range=(1, None))
    depth: int = param(2, "MLP hidden layers", range=(1, None))
    batch_size: int = param(64, "minibatch size", range=(1, None))
    learning_rate: float = param(0.001, "Adam learning rate", range=(0.0, None))
    l2: float = param(0.0001, "L2 penalty coefficient of the LN+L2 network", range=(0.0, None))
    num_tasks: int = param(10, "random-label tasks in sequence", range=(2, None))
    steps_per_task: int = param(800, "Adam steps per task", range=(1, None))
    log_every: int = param(100, "steps between logged metrics", range=(1, None))
    seeds: int = param(5, "independent seeds (vmapped)", range=(1, None))
    seed_offset: int = param(
        0,
        "first seed: the seeds are seed_offset, ..., seed_offset + seeds - 1",
        range=(0, None),
    )
    allow_fallback: bool = param(
        False,
        "use scikit-learn digits if MNIST cannot be found (smoke only)",
    )


# The smoke profile (seconds, for CI and nbmake; verdicts not evaluated):
# only the fields that differ from the default.
SMOKE = dict(
    n_train=256,
    width=64,
    num_tasks=3,
    steps_per_task=60,
    log_every=20,
    seeds=2,
    allow_fallback=True,
)


# The paper profile (the paper's settings, for a GPU): the fields that differ.
PAPER = dict(
    n_train=60000,
    width=512,
    depth=4,
    batch_size=128,
    learning_rate=1e-05,
    l2=1e-05,
    num_tasks=20,
    steps_per_task=75000,
    log_every=1000,
)


# Bounds of one field by another (checked by `profiles.resolve`, before anything runs).
CONSTRAINTS = [
    ("batch_size", "<=", "n_train"),
    ("log_every", "<=", "steps_per_task"),
]
