"""Profile table of chapter 09, "Zombie units in deep residual networks, off-centre
activations, depth and width" (App. E.8 / Fig. 23, App. D.3 / Fig. 9, App. D.4 / Fig. 10).

Three experiments on two nonstationarities of App. B.2 (random labels, permuted classes):

* a residual network (default: the residual MLP ``arch="resmlp"``, the CPU stand-in for
  the paper's ResNet-18; paper profile: ResNet-18 on CIFAR-10) with ReLU, GELU, Leaky
  ReLU and |x|, with and without layer normalisation; per task the end-of-task loss and
  accuracy, the fraction of linearized ("zombie") units by the R^2 criterion of chapter
  3 and the dead fraction of the penultimate layer;
* an MLP with the off-centre ReLU ``phi(z) = relu(z + c)``, ``c`` in ``shifts``, with and
  without layer normalisation, random labels (D.3);
* MLPs of several depths at fixed width and several widths at fixed depth (D.4).

The learning rate of the MLPs is tuned once for the depth-4 MLP on calibration seeds (the
candidate with the highest mean last-3-task accuracy over both streams) and not re-tuned.
"""

from __future__ import annotations

import dataclasses

from . import param


@dataclasses.dataclass(frozen=True)
class Parameters:
    """The default profile (minutes on a 2-core CPU; what `make book` runs)."""

    dataset: str = param("mnist", "image dataset", choices=("mnist", "fashion_mnist", "cifar10"))
    downsample: int = param(
        2, "average-pool the images by this factor (1 = full resolution)", range=(1, None)
    )
    n_train: int = param(256, "training images (seeded subset)", range=(16, None))
    num_tasks: int = param(10, "tasks in sequence", range=(4, None))
    steps_per_task: int = param(100, "Adam steps per task", range=(1, None))
    batch_size: int = param(32, "minibatch size", range=(1, None))
    probe_size: int = param(
        256, "training images on which the unit readouts are computed", range=(8, None)
    )
    res_arch: str = param(
        "resmlp", "residual network of the zombie experiment", choices=("resmlp", "resnet18")
    )
    res_depth: int = param(8, "residual MLP: residual blocks", range=(1, None))
    res_width: int = param(
        128, "residual MLP width / ResNet-18 first-stage channels", range=(1, None)
    )
    res_lr: float = param(0.001, "Adam learning rate of the residual network", range=(0.0, None))
    activations: tuple[str, ...] = param(
        ("relu", "gelu", "leaky_relu", "abs"), "activations of the residual network"
    )
    shifts: tuple[float, ...] = param((-1.0, 0.0, 1.0), "off-centre shifts c (D.3)")
    mlp_width: int = param(128, "MLP width (off-centre runs, depth sweep)", range=(1, None))
    mlp_depth: int = param(4, "MLP depth (off-centre runs, width sweep)", range=(1, None))
    depths: tuple[int, ...] = param((2, 4, 8), "depth sweep (three values, increasing)")
    widths: tuple[int, ...] = param((32, 128, 512), "width sweep (three values, increasing)")
    lr_candidates: tuple[float, ...] = param(
        (0.0003, 0.001, 0.003), "learning rates tried for the depth-4 MLP (calibration)"
    )
    calibration_seeds: int = param(2, "calibration seeds (not the claim seeds)", range=(1, None))
    calibration_seed_offset: int = param(1000, "first calibration seed", range=(0, None))
    seeds: int = param(3, "seeds, trained together with vmap", range=(1, None))
    seed_offset: int = param(0, "first seed", range=(0, None))
    allow_fallback: bool = param(
        False, "use scikit-learn digits if the dataset cannot be found (smoke only)"
    )


# The smoke profile (seconds, for CI and nbmake; verdicts not evaluated).
SMOKE = dict(
    n_train=64,
    downsample=4,
    num_tasks=4,
    steps_per_task=10,
    batch_size=16,
    probe_size=32,
    res_depth=1,
    res_width=16,
    activations=("abs",),
    mlp_width=16,
    mlp_depth=2,
    depths=(2, 3),
    widths=(16, 32),
    lr_candidates=(0.001, 0.003),
    calibration_seeds=1,
    seeds=2,
    allow_fallback=True,
)


# The paper profile (App. E.8, D.3, D.4; for a GPU): the fields that differ.
PAPER = dict(
    dataset="cifar10",
    downsample=1,
    n_train=10000,
    num_tasks=20,
    steps_per_task=5000,
    batch_size=128,
    probe_size=500,
    res_arch="resnet18",
    res_width=64,
    res_lr=0.0001,
    mlp_width=512,
    depths=(2, 4, 8),
    widths=(64, 256, 1024),
    lr_candidates=(0.00003, 0.0001, 0.0003, 0.001),
    calibration_seeds=2,
    seeds=3,
)


CONSTRAINTS = [
    ("batch_size", "<=", "n_train"),
    ("probe_size", "divides", "n_train"),
]
