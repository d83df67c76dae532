"""Shared tiny setup of the train tests (an MLP of width 8 on 32 examples).

Kept tiny so the train tests run in well under a minute on 2 CPU cores; most time is XLA
compilation, so the tests share configurations (and one cached base run).
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from plasticity_lib.models import ModelConfig, make_network
from plasticity_lib.train import TrainConfig, train_stream

N, D, C = 32, 6, 4
X = np.random.default_rng(0).normal(size=(N, D)).astype(np.float32)


class Task(NamedTuple):
    x: jax.Array
    y: jax.Array
    mask: jax.Array


class Stream(NamedTuple):
    init: object
    next: object


def random_label_stream(x=X, num_classes=C):
    """Minimal stream (independent of tasks.py): fresh uniform labels every task."""
    x = jnp.asarray(x)
    n = x.shape[0]

    def init(key):
        return Task(x, jax.random.randint(key, (n,), 0, num_classes), jnp.ones((n,), jnp.float32))

    def next_(key, t, prev):
        return Task(prev.x, jax.random.randint(key, (n,), 0, num_classes), prev.mask)

    return Stream(init, next_)


STREAM = random_label_stream()
NET = make_network(ModelConfig(depth=1, width=8, num_outputs=C))
BASE = TrainConfig(learning_rate=1e-2, batch_size=8)
PROTOCOL = dict(num_tasks=2, steps_per_task=8, log_every=2, progress=False, keep_task_params=True)


@functools.cache
def base_run():
    """``train_stream(NET, BASE, STREAM, [0, 1], **PROTOCOL)``, computed once per session."""
    return train_stream(NET, BASE, STREAM, [0, 1], **PROTOCOL)


def leaves_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(
        np.array_equal(np.asarray(u), np.asarray(v), equal_nan=True) for u, v in zip(la, lb)
    )


def same_example_task(y0=1):
    """A task whose examples are all the same, so every minibatch gives the same gradient."""
    return Task(
        jnp.tile(jnp.asarray(X[:1]), (N, 1)),
        jnp.full((N,), y0, jnp.int32),
        jnp.ones((N,), jnp.float32),
    )


def first(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[0], tree)
