"""Profile table of chapter 08, "Parameter norm growth" (§3.2, Fig. 3 left; App. E.2,
Fig. 17).

Iterated random labels on a seeded MNIST subset (the paper: CIFAR-10, 15 million
steps), four MLP architectures (ReLU, ReLU + layer norm, tanh, ReLU + batch norm),
trained together over seeds with vmap. At each task end: global and per-layer parameter
norms, the top Hessian eigenvalue of the training loss on a fixed batch (power iteration
until the estimate changes by < 1 %), the end-of-task accuracy, dead and linearized unit
fractions and the preactivation drift relative to initialisation; at the task ends
``measure_tasks`` the plasticity measure of §2.2 (``diagnostics.plasticity_measure``).
``n_train = 0`` picks the subset size by the chapter's calibration rule (the smallest of
``calibration_sizes`` whose first-task accuracy lies in 90-99 % on the calibration seeds).

Part B (App. E.2, Fig. 17): a small MLP regresses fixed random inputs onto
``y + sin(t / 20)`` under three parameterisations (standard; a multiplier
``b_multiplier`` on the input layer; the same on the output layer, each with its
initialisation divided by the multiplier so the function at initialisation is the
standard one), then trains on fresh targets for ``b_new_steps`` steps.

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
    n_train: int = param(
        0, "images of the seeded subset; 0: the calibration rule picks it", range=(0, None)
    )
    calibration_sizes: tuple[int, ...] = param(
        (256, 384, 512, 768, 1024, 1536),
        "candidate subset sizes of the first-task calibration (rule fixed in the chapter)",
    )
    archs: tuple[str, ...] = param(
        ("ReLU", "ReLU + LN", "tanh", "ReLU + BN"),
        "architectures of Part A (a claim needing an absent one is not checked)",
        choices=("ReLU", "ReLU + LN", "tanh", "ReLU + BN"),
    )
    width: int = param(128, "hidden width", range=(1, None))
    depth: int = param(2, "hidden layers", range=(1, None))
    num_tasks: int = param(20, "random-label tasks", range=(2, None))
    steps_per_task: int = param(200, "Adam steps per task", range=(1, None))
    batch_size: int = param(64, "minibatch size", range=(1, None))
    learning_rate: float = param(0.001, "Adam learning rate", range=(0.0, None))
    hessian_batch: int = param(256, "fixed batch of the Hessian and unit readouts", range=(2, None))
    hessian_max_iters: int = param(100, "power-iteration cap per phase", range=(5, None))
    hessian_rtol: float = param(0.01, "power-iteration stopping rule (relative change)")
    measure_tasks: tuple[int, ...] = param(
        (1, 10, 20), "task ends (1-based) where the plasticity measure is computed"
    )
    measure_steps: int = param(
        200, "Adam steps of the plasticity measure's fresh task", range=(1, None)
    )
    b_inputs: int = param(128, "Part B: fixed random inputs", range=(2, None))
    b_dim: int = param(16, "Part B: input dimension", range=(1, None))
    b_width: int = param(64, "Part B: hidden width (two hidden layers)", range=(1, None))
    b_steps: int = param(
        3000, "Part B: full-batch Adam steps on the drifting targets", range=(1, None)
    )
    b_new_steps: int = param(500, "Part B: steps K on the new task", range=(1, None))
    b_learning_rate: float = param(0.001, "Part B: Adam learning rate", range=(0.0, None))
    b_multiplier: float = param(
        10.0,
        "Part B: the layer multiplier of the input / output parameterisations",
        range=(0.0, None),
    )
    seeds: int = param(3, "claim seeds, trained together with vmap", range=(1, None))
    seed_offset: int = param(0, "first claim seed", range=(0, None))
    allow_fallback: bool = param(
        False, "use scikit-learn digits if the dataset cannot be found (smoke only)"
    )


# The smoke profile (seconds, for CI and nbmake; verdicts not evaluated).
SMOKE = dict(
    archs=("ReLU", "ReLU + LN"),  # compile time: two programs fewer per architecture
    n_train=0,
    calibration_sizes=(128,),  # one size: the calibration reuses the training program
    measure_tasks=(1, 4),
    measure_steps=20,
    b_inputs=16,
    b_width=16,
    b_steps=100,
    b_new_steps=20,
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
    archs=("ReLU", "ReLU + LN", "tanh", "ReLU + BN"),
    dataset="cifar10",
    arch="cnn",
    n_train=10000,  # CIFAR-10: fixed, not calibrated
    calibration_sizes=(10000,),
    width=256,
    depth=4,
    num_tasks=50,
    steps_per_task=20000,
    batch_size=128,
    hessian_batch=512,
    hessian_max_iters=200,
    measure_tasks=(1, 10, 25, 50),
    measure_steps=20000,
    b_steps=20000,
    b_new_steps=2000,
    seeds=3,
)

CONSTRAINTS = [
    ("batch_size", "<=", "calibration_sizes"),
    ("hessian_batch", "<=", "calibration_sizes"),
    ("measure_tasks", "<=", "num_tasks"),
]
