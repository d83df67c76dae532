"""The one linearity criterion of ``diagnostics.units`` (issue 15): R^2 >= 0.99 of the
least-squares linear fit of phi(z) on z over the batch, phi(z) not constant; tested
against numpy's least squares and against the sign criterion for ReLU / Leaky ReLU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib.diagnostics import units

NP_ACT = {
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z >= 0, z, 0.01 * z),
    "gelu": lambda z: np.asarray(jax.nn.gelu(jnp.asarray(z, jnp.float32)), np.float64),
}


def lstsq_r2(z, phi):
    """R^2 of ``phi ~ a + b z`` by numpy least squares, per column (float64)."""
    out = []
    for j in range(z.shape[1]):
        design = np.stack([np.ones_like(z[:, j]), z[:, j]], 1)
        coef, *_ = np.linalg.lstsq(design, phi[:, j], rcond=None)
        resid = phi[:, j] - design @ coef
        tot = np.sum((phi[:, j] - phi[:, j].mean()) ** 2)
        out.append(1.0 - np.sum(resid**2) / tot if tot > 0 else 0.0)
    return np.asarray(out)


def preacts(rng, batch=512):
    """Units with means from -4 to 4 standard deviations: dead, mixed and one-signed."""
    means = np.linspace(-4.0, 4.0, 81)
    scales = rng.uniform(0.5, 2.0, size=means.size)
    return (rng.normal(size=(batch, means.size)) + means) * scales


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "gelu"])
def test_r2_matches_numpy_least_squares(activation):
    z = preacts(np.random.default_rng(1))
    r2, phi_std = units.linear_fit_r2(jnp.asarray(z, jnp.float32), activation)
    phi = NP_ACT[activation](z)
    ref = lstsq_r2(z, phi)
    varying = phi.std(0) > 1e-6
    np.testing.assert_allclose(np.asarray(r2)[varying], ref[varying], atol=2e-5)
    np.testing.assert_allclose(np.asarray(phi_std), phi.std(0), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_sign_criterion_for_piecewise_linear(activation):
    """ReLU / Leaky ReLU: a unit of one strict sign on the batch is linearized (R^2 = 1;
    a ReLU unit negative everywhere is constant = dead, not linearized); a unit whose
    minority sign holds at least 10 % of the batch is not. Independent computation: the
    signs counted with numpy."""
    z = preacts(np.random.default_rng(2))
    lin = np.asarray(units.linearized_units_r2(jnp.asarray(z, jnp.float32), activation))
    const = np.asarray(units.constant_output_units(jnp.asarray(z, jnp.float32), activation))
    pos, neg = (z > 0).all(0), (z < 0).all(0)
    one_sign = pos | (neg if activation == "leaky_relu" else False)
    minority = np.minimum((z > 0).mean(0), (z < 0).mean(0))
    clear = pos | neg | (minority >= 0.1)  # one sign, or both signs carry a real share
    assert clear.sum() >= 30 and (minority >= 0.1).sum() >= 8
    np.testing.assert_array_equal(lin[clear], one_sign[clear])
    # one-signed units are linearized by both criteria, whatever the share
    assert lin[one_sign].all()
    np.testing.assert_array_equal(const, neg if activation == "relu" else np.zeros_like(neg))
    # the old sign criterion of linearized_units is the same on these units
    old = np.asarray(units.linearized_units(jnp.asarray(z, jnp.float32), activation))
    np.testing.assert_array_equal(old, one_sign)


def test_few_barely_negative_inputs_count_as_linear():
    """The documented difference: R^2 -> 1 as the minority side shrinks, so a ReLU unit
    with a few barely negative inputs is linearized by R^2 but not by the sign rule."""
    z = np.linspace(0.5, 3.0, 200)
    z[:3] = [-0.01, -0.02, -0.03]
    z = z[:, None]
    assert bool(units.linearized_units_r2(jnp.asarray(z, jnp.float32), "relu")[0])
    assert not bool(units.linearized_units(jnp.asarray(z, jnp.float32), "relu")[0])


def test_gelu_cases_and_fractions():
    """GELU: far positive = linear; straddling the bend = not; far negative (output
    ~ 0) = constant; the fractions average the masks per layer and over all units."""
    base = np.linspace(-1.0, 1.0, 256)[:, None]
    z = np.concatenate([6.0 + base, 0.0 + 2.0 * base, -30.0 + base], axis=1)
    zj = jnp.asarray(z, jnp.float32)
    np.testing.assert_array_equal(
        np.asarray(units.linearized_units_r2(zj, "gelu")), [True, False, False]
    )
    np.testing.assert_array_equal(
        np.asarray(units.constant_output_units(zj, "gelu")), [False, False, True]
    )
    per_layer, total = units.linearized_r2_fraction([zj, zj[:, :1]], "gelu")
    np.testing.assert_allclose(np.asarray(per_layer), [1 / 3, 1.0])
    assert float(total) == pytest.approx(2 / 4)
    _, const_total = units.constant_output_fraction([zj], "gelu")
    assert float(const_total) == pytest.approx(1 / 3)
    # jit- and vmap-able over a leading seed axis
    r2 = jax.jit(jax.vmap(lambda a: units.linear_fit_r2(a, "gelu")[0]))(jnp.stack([zj, zj]))
    assert r2.shape == (2, 3)
