"""Profile table of chapter 08, "Parameter norm growth" (§3.2, Fig. 3 left; App. E.2,
Fig. 17).

Iterated random labels on a seeded MNIST subset (the paper: CIFAR-10, 15 million
steps), four MLP architectures (ReLU, ReLU + layer norm, tanh, ReLU + batch norm),
trained together over seeds with vmap. At each task end: global and per-layer parameter
norms, the top Hessian eigenvalue of the training loss on a fixed batch (power iteration
until the estimate changes by < 1 %), the end-of-task accuracy, dead and linearized unit
fractions and the preactivation drift relative to initialisation.

The paper profile is the B.1 CNN on CIFAR-10 (CIFAR-10 must be available locally).
"""

from __future__ import annotations

import dataclasses

from . import param


@dataclasses.dataclass(frozen=True)
class Parameters:
    """The default profile (minutes on a 2-core CPU; what `make book` runs)."""

    dataset: str = param("mnist", "image dataset", choices=("mnist", "fashion_mnist", "cifar10"))
    arch: str = param("mlp", "network family: MLP or the App. B.1 CNN", choices=("mlp", "cnn"))
    n_train: int = param(512, "images of the seeded subset (calibrated)", range=(16, None))
    width: int = param(128, "hidden width", range=(1, None))
    depth: int = param(2, "hidden layers", range=(1, None))
    num_tasks: int = param(20, "random-label tasks", range=(2, None))
    steps_per_task: int = param(400, "Adam steps per task (calibrated)", range=(1, None))
    batch_size: int = param(64, "minibatch size", range=(1, None))
    learning_rate: float = param(0.001, "Adam learning rate", range=(0.0, None))
    hessian_batch: int = param(256, "fixed batch of the Hessian and unit readouts", range=(2, None))
    hessian_max_iters: int = param(100, "power-iteration cap per phase", range=(5, None))
    hessian_rtol: float = param(0.01, "power-iteration stopping rule (relative change)")
    seeds: int = param(3, "claim seeds, trained together with vmap", range=(1, None))
    seed_offset: int = param(0, "first claim seed", range=(0, None))
    allow_fallback: bool = param(
        False, "use scikit-learn digits if the dataset cannot be found (smoke only)"
    )


# The smoke profile (seconds, for CI and nbmake; verdicts not evaluated).
SMOKE = dict(
    n_train=128,
    width=32,
    num_tasks=4,
    steps_per_task=30,
    batch_size=16,
    hessian_batch=64,
    hessian_max_iters=10,
    seeds=2,
    allow_fallback=True,
)

# The paper profile (§3.2: CIFAR-10, CNN; for a GPU): the fields that differ.
PAPER = dict(
    dataset="cifar10",
    arch="cnn",
    n_train=10000,
    width=256,
    depth=4,
    num_tasks=50,
    steps_per_task=20000,
    batch_size=128,
    hessian_batch=512,
    hessian_max_iters=200,
    seeds=3,
)

CONSTRAINTS = [
    ("batch_size", "<=", "n_train"),
    ("hessian_batch", "<=", "n_train"),
]
