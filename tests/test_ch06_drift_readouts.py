"""Chapter 6's drift readouts (`diagnostics.units.drift_readouts`) against numpy, and the
chapter's profile (issue 16: calibrated sizes, stream N of at least 30 tasks)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib import profiles
from plasticity_lib.diagnostics import units


def _numpy_readouts(acts, preacts, init_preacts):
    a = [np.asarray(x, np.float64) for x in acts]
    dead = sum(np.all(x == 0, axis=0).sum() for x in a) / sum(x.shape[1] for x in a)
    shifts = [
        np.mean(np.abs(z.mean(0) - z0.mean(0)) / (z0.std(0) + 1e-8))
        for z, z0 in zip(
            (np.asarray(z, np.float64) for z in preacts),
            (np.asarray(z, np.float64) for z in init_preacts),
        )
    ]
    return dead, float(np.mean(shifts))


def test_drift_readouts_match_numpy():
    rng = np.random.default_rng(0)
    z0 = [rng.normal(size=(64, 8)), rng.normal(size=(64, 4))]
    z = [z0[0] + rng.normal(size=8) * 2.0, z0[1] - 3.0]  # shifted unit means
    z[0][:, :3] = -np.abs(z[0][:, :3]) - 0.1  # three units negative on every input
    acts = [np.maximum(v, 0.0) for v in z]
    dead, shift = units.drift_readouts(
        [jnp.asarray(v, jnp.float32) for v in acts],
        [jnp.asarray(v, jnp.float32) for v in z],
        [jnp.asarray(v, jnp.float32) for v in z0],
    )
    want_dead, want_shift = _numpy_readouts(acts, z, z0)
    assert float(dead) == pytest.approx(want_dead)
    assert float(dead) >= 3 / 12
    assert float(shift) == pytest.approx(want_shift, rel=1e-4)


def test_drift_readouts_zero_at_initialisation_and_vmappable():
    rng = np.random.default_rng(1)
    z0 = jnp.asarray(rng.normal(size=(3, 32, 6)), jnp.float32)  # 3 models
    dead, shift = jax.vmap(lambda z: units.drift_readouts([jax.nn.relu(z)], [z], [z]))(z0)
    assert dead.shape == shift.shape == (3,)
    np.testing.assert_allclose(np.asarray(shift), 0.0, atol=1e-7)


def test_drift_readouts_layer_mismatch():
    z = jnp.ones((4, 2))
    with pytest.raises(ValueError, match="layers"):
        units.drift_readouts([z], [z, z], [z])


def test_ch06_profile_issue16_settings():
    p = profiles.resolve("ch06_swiss_cheese", "default")
    assert p.n_train in p.calibration_sizes  # the calibrated size is among the candidates
    assert p.num_tasks_short >= 30  # issue 16: stream N has at least 30 tasks
    assert p.independence
    smoke = profiles.resolve("ch06_swiss_cheese", "smoke")
    assert smoke.num_tasks_short >= 6  # first-3 / last-3 windows do not overlap
