"""Profile table of page 99, "Use it on your own network" (how-to; no claims).

A small GELU MLP written with ``flax.linen`` in the page (outside the library), trained
briefly with optax on an MNIST subset, then inspected with the library's diagnostics:
unit status (§3.2, E.3, E.8), the eNTK (§3.3), the feature rank (§3.2, E.1), the sharpness
(§3.2) and the plasticity measure (§2.2). The paper profile uses the paper's MLP size
(512 x 4, App. B.1) and longer runs; the page tests no claim at any profile.
"""

from __future__ import annotations

import dataclasses

from . import param


@dataclasses.dataclass(frozen=True)
class Parameters:
    """The default profile (about a minute on a 2-core CPU)."""

    dataset: str = param(
        "mnist",
        "image dataset the network is trained on",
        choices=("mnist", "fashion_mnist"),
    )
    n_train: int = param(1024, "training images (seeded subset)", range=(16, None))
    width: int = param(128, "hidden width of the page's GELU MLP", range=(1, None))
    depth: int = param(2, "hidden layers of the page's GELU MLP", range=(1, None))
    batch_size: int = param(64, "minibatch size (training and plasticity measure)", range=(1, None))
    learning_rate: float = param(0.001, "Adam learning rate", range=(0.0, None))
    train_steps: int = param(400, "Adam steps of the page's own training loop", range=(1, None))
    n_probe: int = param(
        256, "probe inputs for unit status, feature rank and sharpness", range=(2, None)
    )
    n_ntk: int = param(
        64, "inputs of the eNTK (the paper uses a mini-batch of 64)", range=(2, None)
    )
    measure_steps: int = param(
        300, "Adam steps on the fresh task of the plasticity measure", range=(1, None)
    )
    hessian_iters: int = param(30, "power-iteration steps of the sharpness", range=(1, None))
    seeds: int = param(3, "independent seeds (vmapped)", range=(1, None))
    seed_offset: int = param(
        0,
        "first seed: the seeds are seed_offset, ..., seed_offset + seeds - 1",
        range=(0, None),
    )
    allow_fallback: bool = param(
        False,
        "use scikit-learn digits if MNIST cannot be found (smoke only)",
    )


# The smoke profile (seconds, for CI and nbmake): only the fields that differ.
SMOKE = dict(
    n_train=256,
    width=32,
    train_steps=100,
    n_probe=128,
    n_ntk=32,
    measure_steps=40,
    hessian_iters=10,
    seeds=2,
    allow_fallback=True,
)


# The paper profile (the paper's MLP, App. B.1, for a GPU): the fields that differ.
PAPER = dict(
    n_train=10000,
    width=512,
    depth=4,
    batch_size=128,
    train_steps=5000,
    n_probe=1024,
    measure_steps=2000,
    hessian_iters=50,
    seeds=5,
)


# Bounds of one field by another (checked by `profiles.resolve`, before anything runs).
CONSTRAINTS = [
    ("batch_size", "<=", "n_train"),
    ("n_probe", "<=", "n_train"),
    ("n_ntk", "<=", "n_train"),
]
