"""Profile table of chapter 04, "eNTK pathologies: different roads to the same collapsed
kernel" (§3.3, Fig. 3 right; the App. B.3 plasticity probe).

Four networks on a fixed, label-ordered batch of ``entk_batch`` MNIST training images:
(a) a fresh ReLU MLP; (b) a ReLU MLP with one output trained with MSE for
``reg_steps`` Adam steps on App. E.1's targets ``sin(1e5 f_rand(x)) + reg_offset``;
(c) a ReLU and (d) a Leaky-ReLU MLP (10 outputs) after ``num_tasks`` random-label tasks
of ``steps_per_task`` Adam steps. Checkpoints: (b) every ``reg_steps // reg_checkpoints``
steps, (c)/(d) at the end of every task, plus the initialisations; each gets the eNTK
summaries (of the eNTK, of its gradient-cosine matrix, and of the kernel without bias
parameters); the plasticity probe (``probe_steps`` steps on minibatches of
``probe_batch`` of ``probe_n`` training images) runs at every checkpoint of (b) and at every
``probe_task_stride``-th task end of (c)/(d) (the last always included), once with Adam
and once with SGD at a step set per checkpoint from the largest curvature of its probe loss
(``curvature_iters`` power iterations; ``entk_pathology.probe_sgd_rate``).

The paper profile follows B.1/B.2 for the random-label runs (MLP 512 x 4, Adam 1e-5,
75,000 steps per task, 20 tasks, on MNIST); every profile runs B.3's probe length
(2000 steps). The
paper gives no optimiser settings for network (b) ("trained for a few hundred steps");
we keep Adam 1e-3 for 400 steps at every profile.
"""

from __future__ import annotations

import dataclasses

from . import param


@dataclasses.dataclass(frozen=True)
class Parameters:
    """The default profile (minutes on a 2-core CPU; what `make book` runs)."""

    dataset: str = param(
        "mnist",
        "base image dataset (flattened for the MLPs)",
        choices=("mnist", "fashion_mnist"),
    )
    n_train: int = param(
        1024,
        "training images (seeded subset), shared by all runs",
        range=(128, None),
    )
    width: int = param(128, "MLP hidden width", range=(1, None))
    depth: int = param(2, "MLP hidden layers", range=(1, None))
    batch_size: int = param(64, "Adam minibatch size of the training runs", range=(1, None))
    lr_labels: float = param(
        0.003,
        "Adam learning rate of the random-label runs (c), (d)",
        range=(0.0, None),
    )
    num_tasks: int = param(10, "random-label tasks in sequence for (c), (d)", range=(1, None))
    steps_per_task: int = param(400, "Adam steps per random-label task", range=(1, None))
    reg_offset: float = param(
        32.0,
        "mean b of network (b)'s regression targets sin(1e5 f_rand(x)) + b (App. E.1)",
        range=(None, None),
    )
    lr_regression: float = param(0.001, "Adam learning rate of network (b)", range=(0.0, None))
    reg_steps: int = param(
        400,
        "Adam steps of network (b) (the paper: 'a few hundred')",
        range=(1, None),
    )
    reg_checkpoints: int = param(
        4,
        "checkpoints along network (b)'s training (evenly spaced; divides reg_steps)",
        range=(1, None),
    )
    entk_batch: int = param(
        64,
        "inputs of the eNTK batch (balanced over classes, ordered by label)",
        range=(10, 128),
    )
    probe_n: int = param(256, "training images the plasticity probe fits", range=(8, None))
    probe_steps: int = param(
        2000,
        "steps of the plasticity probe, Adam and SGD alike (B.3: 2000)",
        range=(1, None),
    )
    probe_batch: int = param(
        16,
        "minibatch of the probe: each step sees probe_batch of the probe_n images",
        range=(1, None),
    )
    probe_task_stride: int = param(
        2,
        "probe every probe_task_stride-th task end of (c), (d) (and always the last); "
        "every checkpoint of (b)",
        range=(1, None),
    )
    probe_lr: float = param(0.001, "Adam learning rate of the probe", range=(0.0, None))
    curvature_iters: int = param(
        20,
        "power iterations for the largest Gauss-Newton eigenvalue of the probe loss, which "
        "sets the SGD probe's step at each checkpoint",
        range=(1, None),
    )
    step_fraction: float = param(
        0.01,
        "first-order check: step size eta = step_fraction / (2 lambda_max(K))",
        range=(0.0, 0.5),
    )
    seeds: int = param(5, "independent seeds (vmapped)", range=(2, None))
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
    width=32,
    batch_size=32,
    num_tasks=3,
    steps_per_task=40,
    reg_steps=40,
    reg_checkpoints=2,
    probe_n=64,
    probe_steps=20,
    probe_batch=16,
    curvature_iters=5,
    seeds=2,
    allow_fallback=True,
)


# The paper profile (the paper's settings, for a GPU): the fields that differ.
PAPER = dict(
    n_train=60000,
    width=512,
    depth=4,
    batch_size=128,
    lr_labels=1e-05,
    num_tasks=20,
    steps_per_task=75000,
    probe_n=1024,
    probe_batch=128,
    probe_task_stride=1,
)


# Bounds of one field by another (checked by `profiles.resolve`, before anything runs).
CONSTRAINTS = [
    ("batch_size", "<=", "n_train"),
    ("probe_n", "<=", "n_train"),
    ("probe_batch", "<=", "probe_n"),
    ("reg_checkpoints", "divides", "reg_steps"),
]
