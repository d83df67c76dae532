"""`tasks.single_task_stream`: the one-task stream of a stationary dataset (App. E.8)."""

import jax
import jax.numpy as jnp
import numpy as np

from plasticity_lib import tasks


def test_single_task_stream_is_the_dataset():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([0, 2, 1, 2])
    stream = tasks.single_task_stream(x, y)
    t0 = jax.jit(stream.init)(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(t0.x, x)
    np.testing.assert_array_equal(t0.y, y)
    assert t0.y.dtype == jnp.int32 and t0.mask.dtype == jnp.float32
    np.testing.assert_array_equal(t0.mask, np.ones(4))
    t1 = jax.jit(stream.next)(jax.random.PRNGKey(1), jnp.int32(1), t0)
    for a, b in zip(t1, t0):
        np.testing.assert_array_equal(a, b)
    t_other = stream.init(jax.random.PRNGKey(7))  # the key is ignored
    np.testing.assert_array_equal(t_other.x, t0.x)
