"""Profile table of chapter 05, "The NTK of a linearized network" (App. C, Fig. 24).

Two parts. The float64 algebra (closed-form vs autodiff eNTK, ranks) on random
bias-free ReLU / leaky-ReLU networks with fixed slope patterns: the grid
``depths x widths x patterns x input_ranks x configs_per_cell`` of linearized networks,
their nonlinear ReLU counterparts (one per depth x width x rank x seed, same inputs), and
dead-unit bottleneck networks. And the Fig. 24 toy: an MLP on an MNIST subset with true
labels and non-negative inputs, normal vs absolute-value initialisation, Adam.

The paper gives no numerical check of App. C, and of the Fig. 24 toy only "a small MLP
trained on a subset of MNIST" for 2000 optimizer steps. The paper profile therefore uses a
larger algebra grid and, for the toy, the App. B.1 MLP (width 512, depth 4) on 10,000
images; learning rate and batch size are our choice (Adam 1e-3, batch 128).
"""

from __future__ import annotations

import dataclasses

from . import param


@dataclasses.dataclass(frozen=True)
class Parameters:
    """The default profile (minutes on a 2-core CPU; what `make book` runs)."""

    d_in: int = param(24, "input dimension of the random algebra networks", range=(2, None))
    n_inputs: int = param(
        48,
        "inputs per configuration (the eNTK is n_inputs x n_inputs)",
        range=(2, None),
    )
    depths: tuple[int, ...] = param(
        (1, 2, 3, 4),
        "hidden layers of the algebra networks",
        range=(1, None),
    )
    widths: tuple[int, ...] = param(
        (8, 32, 128),
        "hidden widths of the algebra networks",
        range=(1, None),
    )
    patterns: tuple[str, ...] = param(
        ("zombie", "dead", "leaky"),
        "slope patterns: zombie (ReLU, all slopes 1), dead (ReLU, slopes 0/1), "
        "leaky (slopes alpha/1)",
        choices=("zombie", "dead", "leaky"),
    )
    input_ranks: tuple[int, ...] = param(
        (2, 5, 10),
        "ranks of the non-negative low-rank inputs",
        range=(1, None),
    )
    configs_per_cell: int = param(
        1,
        "random draws per grid cell (depth, width, pattern, rank)",
        range=(1, None),
    )
    leaky_slope: float = param(0.1, "negative-side slope alpha of the leaky ReLU", range=(0.0, 1.0))
    dead_fraction: float = param(
        0.5,
        "probability that a unit is dead in the 'dead' pattern",
        range=(0.0, 1.0),
    )
    bottleneck_depths: tuple[int, ...] = param(
        (1, 2, 3, 4),
        "depths of the dead-unit bottleneck networks",
        range=(1, None),
    )
    bottleneck_width: int = param(32, "width of the bottleneck networks", range=(1, None))
    bottleneck_units: tuple[int, ...] = param(
        (1, 2, 3),
        "live units left in the bottleneck layer (each < bottleneck_rank)",
        range=(1, None),
    )
    bottleneck_rank: int = param(
        10,
        "rank of the inputs of the bottleneck networks",
        range=(2, None),
    )
    spectra_depth: int = param(3, "depth of the networks in the spectra figure", range=(1, None))
    spectra_width: int = param(32, "width of the networks in the spectra figure", range=(1, None))
    spectra_rank: int = param(5, "input rank in the spectra figure", range=(1, None))
    dataset: str = param(
        "mnist",
        "image dataset of the Fig. 24 toy",
        choices=("mnist", "fashion_mnist"),
    )
    n_train: int = param(
        2048,
        "training images of the toy (seeded subset, true labels)",
        range=(16, None),
    )
    width: int = param(256, "toy MLP hidden width", range=(1, None))
    depth: int = param(
        2,
        "toy MLP hidden layers (>= 2: the paper's zombie layer is the second)",
        range=(2, None),
    )
    batch_size: int = param(128, "toy minibatch size", range=(1, None))
    learning_rate: float = param(0.001, "toy Adam learning rate", range=(0.0, None))
    steps: int = param(2000, "toy Adam steps (paper: 2000)", range=(1, None))
    log_every: int = param(50, "steps between logged metrics", range=(1, None))
    seeds: int = param(5, "independent seeds of the toy (vmapped)", range=(1, None))
    seed_offset: int = param(
        0,
        "first seed: the toy's seeds are seed_offset, ..., seed_offset + seeds - 1, and the "
        "algebra's random draws are seeds seed_offset, ..., seed_offset + configs_per_cell - 1",
        range=(0, None),
    )
    probe_size: int = param(
        64,
        "inputs used for unit diagnostics and the eNTK during the toy",
        range=(2, None),
    )
    allow_fallback: bool = param(
        False,
        "use scikit-learn digits if MNIST cannot be found (smoke only)",
    )


# The smoke profile (seconds, for CI and nbmake; verdicts not evaluated):
# only the fields that differ from the default.
SMOKE = dict(
    d_in=12,
    n_inputs=16,
    depths=(1, 2),
    widths=(8,),
    input_ranks=(2,),
    bottleneck_depths=(2,),
    bottleneck_width=8,
    bottleneck_units=(1,),
    bottleneck_rank=4,
    spectra_depth=2,
    spectra_width=8,
    spectra_rank=2,
    n_train=256,
    width=32,
    batch_size=64,
    steps=100,
    log_every=20,
    seeds=2,
    allow_fallback=True,
)


# The paper profile (the paper's settings, for a GPU): the fields that differ.
PAPER = dict(
    widths=(8, 32, 128, 512),
    input_ranks=(2, 5, 10, 20),
    configs_per_cell=3,
    bottleneck_width=128,
    bottleneck_units=(1, 2, 3, 5),
    n_train=10000,
    width=512,
    depth=4,
)


# Bounds of one field by another (checked by `profiles.resolve`, before anything runs).
CONSTRAINTS = [
    ("input_ranks", "<=", "d_in"),
    ("input_ranks", "<=", "n_inputs"),
    ("spectra_rank", "<=", "d_in"),
    ("spectra_rank", "<=", "n_inputs"),
    ("bottleneck_rank", "<=", "d_in"),
    ("bottleneck_rank", "<=", "n_inputs"),
    ("bottleneck_units", "<", "bottleneck_rank"),
    ("bottleneck_units", "<=", "bottleneck_width"),
    ("batch_size", "<=", "n_train"),
    ("probe_size", "<=", "n_train"),
    ("log_every", "<=", "steps"),
]
