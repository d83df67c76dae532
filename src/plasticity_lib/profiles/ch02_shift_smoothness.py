"""Profile table of chapter 02, "Smoothness of the distribution shift" (§3.1, Fig. 1).

Sequential memorisation of random labels where, at each iteration, a fraction ``eps``
of the labels is re-randomised; the budget is ``iterations`` iterations of
``iteration_steps`` Adam steps *at eps = 1* and a run with fraction ``eps`` resets
``1 / eps`` times as often with ``eps * iteration_steps`` steps between resets.

* default: an MLP (2 hidden layers of 128) on 500 MNIST images average-pooled to
  14 x 14, Adam 1e-3, batch 64, 3 iterations of 3,000 steps (9,000 steps per model;
  eps = 0.01 re-randomises 5 labels every 30 steps), 5 seeds, the four fractions and
  three activations: 60 models in three compiled programs (one per activation).
  Issue 15 asks for at least 30 steps between resets at eps = 0.01 (before: 15
  iterations of 600 steps, 6 steps between resets), i.e. iterations of at least 3,000
  steps; the CPU budget then allows 3 of them (fewer iterations rather than fewer
  fractions or seeds: 4 iterations took 349 s on 2 idle cores, over the 5 minutes).
* measure_steps (K of the §2.2 plasticity measure, fixed before the claims ran): the
  number of steps in which a fresh network of the profile reaches 90 % training
  accuracy on one random labelling, from ``relabelling.steps_to_accuracy`` on seeds
  100-102 (not used by the chapter), evaluated every 25 steps, the maximum over the
  three activations and the three seeds. Default: ReLU 300-325, GELU 450-475, Leaky
  ReLU 300-325 steps -> K = 475. Smoke: the same probe at the smoke profile.
* paper: §3.1 and App. B: the CNN of B.1 (4 conv layers of 32 channels, two dense
  layers of 256) on the 50,000 CIFAR-10 training images, Adam 1e-4 (B.2's CNN
  rate), 40 iterations of 100,000 steps. The batch size is not given in the paper
  (128 is our choice); 3 seeds as in the paper's figures. Its ``measure_steps`` was not
  probed (no GPU run): re-run ``relabelling.steps_to_accuracy`` at that profile first.
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
    iterations: int = param(3, "budget in eps = 1 iterations (paper: 40)", range=(1, None))
    iteration_steps: int = param(
        3000,
        "Adam steps of one eps = 1 iteration (paper: 100,000)",
        range=(1, None),
    )
    evals_per_iteration: int = param(
        10,
        "accuracy evaluations per eps = 1 iteration",
        range=(1, None),
    )
    measure_steps: int = param(
        475,
        "K: steps of the plasticity measure on a fresh labelling (a fresh network of the "
        "profile reaches 90 % in K steps; module docstring)",
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
    measure_steps=975,  # the same probe at the smoke profile (ReLU 675-875, GELU 900-975)
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
