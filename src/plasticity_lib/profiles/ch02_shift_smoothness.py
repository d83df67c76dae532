"""Profile table of chapter 02, "Smoothness of the distribution shift" (§3.1, Fig. 1).

Sequential memorisation of random labels where, at each iteration, a fraction ``eps``
of the labels is re-randomised; the budget is ``iterations`` iterations of
``iteration_steps`` Adam steps *at eps = 1* and a run with fraction ``eps`` resets
``1 / eps`` times as often with ``eps * iteration_steps`` steps between resets.

* default: an MLP (2 hidden layers of 128) on 500 MNIST images average-pooled to
  14 x 14, Adam 1e-3, batch 64, 15 iterations of 600 steps (9,000 steps per model),
  5 seeds, the four fractions and three activations: 60 models in three compiled
  programs (one per activation). The scale was chosen so that a fresh network
  memorises one labelling within an iteration and the eps = 1 stream loses plasticity
  within the budget (a pilot of the ReLU eps = 1 stream with seeds 100 and 101, which
  the chapter does not use; no other fraction or activation was piloted).
* paper: §3.1 and App. B: the CNN of B.1 (4 conv layers of 32 channels, two dense
  layers of 256) on the 50,000 CIFAR-10 training images, Adam 1e-4 (B.2's CNN
  rate), 40 iterations of 100,000 steps. The batch size is not given in the paper
  (128 is our choice); 3 seeds as in the paper's figures.
"""

from __future__ import annotations

import dataclasses

from . import param


@dataclasses.dataclass(frozen=True)
class Parameters:
    """The default profile (minutes on a 2-core CPU; what `make book` runs)."""

    dataset: str = param(
        "mnist",
        "base image dataset (labels are replaced by random ones)",
        choices=("mnist", "fashion_mnist", "cifar10", "cifar100"),
    )
    arch: str = param("mlp", "network: MLP or the CNN of App. B.1", choices=("mlp", "cnn"))
    n_train: int = param(500, "training images (seeded subset)", range=(16, None))
    pool: int = param(
        2,
        "average-pooling factor of the images (2: 28x28 -> 14x14)",
        choices=(1, 2, 4),
    )
    width: int = param(128, "MLP hidden width / CNN dense width", range=(1, None))
    depth: int = param(2, "MLP hidden layers / CNN conv layers", range=(1, None))
    batch_size: int = param(64, "minibatch size", range=(1, None))
    learning_rate: float = param(0.001, "Adam learning rate", range=(0.0, None))
    fractions: tuple[float, ...] = param(
        (0.01, 0.1, 0.5, 1.0),
        "re-randomised fractions eps (must include 0.01 and 1.0 for the claims)",
        range=(0.0, 1.0),
    )
    activations: tuple[str, ...] = param(
        ("relu", "gelu", "leaky_relu"),
        "activation functions, one compiled program each",
        choices=("relu", "gelu", "leaky_relu"),
    )
    iterations: int = param(15, "budget in eps = 1 iterations (paper: 40)", range=(1, None))
    iteration_steps: int = param(
        600,
        "Adam steps of one eps = 1 iteration (paper: 100,000)",
        range=(1, None),
    )
    evals_per_iteration: int = param(
        10,
        "accuracy evaluations per eps = 1 iteration",
        range=(1, None),
    )
    seeds: int = param(5, "independent seeds (vmapped with the fractions)", range=(1, None))
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
    n_train=100,
    pool=4,
    width=32,
    batch_size=32,
    iterations=3,
    iteration_steps=100,
    evals_per_iteration=5,
    seeds=2,
    allow_fallback=True,
)


# The paper profile (the paper's settings, for a GPU): the fields that differ.
PAPER = dict(
    dataset="cifar10",
    arch="cnn",
    n_train=50000,
    pool=1,
    width=256,
    depth=4,
    batch_size=128,
    learning_rate=0.0001,
    iterations=40,
    iteration_steps=100000,
    seeds=3,
)


# Bounds of one field by another (checked by `profiles.resolve`, before anything runs).
CONSTRAINTS = [
    ("batch_size", "<=", "n_train"),
    ("evals_per_iteration", "<=", "iteration_steps"),
]
