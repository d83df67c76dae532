"""Public diagnostics reject wrong shapes and indices at their entry points, with a
``ValueError`` naming the argument and the expected shape (issue 21, weaker spots).

Before, ``dormant_scores`` / ``singular_values`` flattened extra axes silently (a seed
axis was mixed into the inputs), non-square kernels failed inside JAX, and
``entk(output="index", index=99)`` on a 3-output network returned an all-zero kernel
(fast route) or the last output's kernel (generic route)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib.diagnostics import ntk as NTK
from plasticity_lib.diagnostics import representation as R
from plasticity_lib.diagnostics import units as U

RNG = np.random.default_rng(0)


def _a(*shape):
    return jnp.asarray(np.abs(RNG.normal(size=shape)), jnp.float32)


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize("shape", [(8,), (3, 16, 8), (2, 3, 4, 5, 6)])
def test_dormant_scores_rejects_other_ranks(shape):
    with pytest.raises(ValueError, match=r"acts must be \(batch, units\).*got shape") as e:
        U.dormant_scores(_a(*shape))
    assert str(shape) in str(e.value)
    with pytest.raises(ValueError, match="acts must be"):
        U.dormant_units(_a(*shape))
    with pytest.raises(ValueError, match="acts must be"):
        U.dormant_unit_fraction([_a(16, 8), _a(*shape)])


def test_dormant_scores_accepts_dense_and_conv_layers_and_vmap():
    a = _a(16, 8)
    m = np.abs(np.asarray(a)).mean(0)
    np.testing.assert_allclose(U.dormant_scores(a), m / m.mean(), rtol=1e-5)
    conv = _a(4, 3, 3, 5)  # a channel is one unit
    assert U.dormant_scores(conv).shape == (5,)
    np.testing.assert_allclose(
        U.dormant_scores(conv), U.dormant_scores(conv.reshape(-1, 5)), rtol=1e-6
    )
    stacked = _a(3, 16, 8)  # (seeds, batch, units): vmap, as the error says
    per_seed = jax.vmap(U.dormant_scores)(stacked)
    assert per_seed.shape == (3, 8)
    np.testing.assert_allclose(per_seed[1], U.dormant_scores(stacked[1]), rtol=1e-6)


@pytest.mark.parametrize(
    "update, features, bias, match",
    [
        ((4, 5), (6, 3), None, r"update must be \(d_in, d_out\) and features \(n, d_in\)"),
        ((4, 5), (6,), None, r"got update \(4, 5\) and features \(6,\)"),
        ((4, 5), (2, 6, 4), None, r"features \(2, 6, 4\)"),
        ((4,), (6, 4), None, r"got update \(4,\)"),
        ((4, 5), (6, 4), (4,), r"bias_update must be \(d_out,\) = \(5,\).*got \(4,\)"),
        ((4, 5), (6, 4), (6, 5), r"bias_update must be \(d_out,\)"),
    ],
)
def test_same_direction_shapes(update, features, bias, match):
    upd, feats = _a(*update), _a(*features)
    b = None if bias is None else _a(*bias)
    for fn in (U.same_direction_fraction, U.same_direction_units, U.preactivation_update):
        with pytest.raises(ValueError, match=match):
            fn(upd, feats, b)


def test_same_direction_fraction_still_computes():
    upd, feats, b = -_a(4, 5), _a(6, 4), _a(5)
    neg, pos = U.same_direction_fraction(upd, feats)
    assert float(neg) == 1.0 and float(pos) == 0.0
    dz = np.asarray(feats) @ np.asarray(upd) + np.asarray(b)
    neg, pos = U.same_direction_fraction(upd, feats, b)
    assert float(neg) == np.mean(np.all(dz < 0, axis=0))
    assert float(pos) == np.mean(np.all(dz > 0, axis=0))


# --------------------------------------------------------------------------- representation


def test_singular_values_rejects_non_matrices():
    for shape in [(3, 20, 8), (20,)]:
        with pytest.raises(ValueError, match=r"matrix must be 2-D \(n, d\), got shape") as e:
            R.singular_values(_a(*shape))
        assert str(shape) in str(e.value)
    with pytest.raises(ValueError, match="matrix must be 2-D"):
        R.feature_spectrum_summary(_a(3, 20, 8))
    fs = _a(3, 20, 8)
    sv = jax.vmap(R.singular_values)(fs)
    np.testing.assert_allclose(sv[2], np.linalg.svd(np.asarray(fs[2]), compute_uv=False), 1e-4)


# --------------------------------------------------------------------------- kernels

KERNEL_FNS = [
    NTK.kernel_effective_rank,
    NTK.kernel_condition_number,
    NTK.diag_rank1_error,
    NTK.diag_rank1_fit,
    NTK.mean_abs_offdiag_cosine,
    NTK.grad_norm_cv,
    NTK.ntk_summary,
]


@pytest.mark.parametrize("fn", KERNEL_FNS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 3), (5,)])
def test_kernel_summaries_need_one_square_kernel(fn, shape):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: k must be a square kernel \(n, n\)"):
        fn(_a(*shape))


def test_gradient_cosine_takes_square_kernels_with_leading_axes():
    for shape in [(3, 4), (2, 3, 4), (5,)]:
        with pytest.raises(ValueError, match=r"gradient_cosine: k must be a square kernel"):
            NTK.gradient_cosine(_a(*shape))
    g = _a(2, 5, 7)
    ks = g @ jnp.swapaxes(g, -1, -2)
    c = NTK.gradient_cosine(ks)
    assert c.shape == (2, 5, 5)
    np.testing.assert_allclose(jnp.diagonal(c, axis1=-2, axis2=-1), 1.0, rtol=1e-5)


def test_checks_are_static_under_jit_and_vmap():
    with pytest.raises(ValueError, match="square kernel"):
        jax.jit(NTK.kernel_effective_rank)(_a(3, 4))
    k = jnp.eye(6)
    ranks = jax.jit(jax.vmap(NTK.kernel_effective_rank))(jnp.stack([k, k]))
    np.testing.assert_allclose(ranks, 6.0, rtol=1e-5)
    assert float(NTK.diag_rank1_error(jnp.ones((6, 6)) + jnp.eye(6))) < 1e-4


# --------------------------------------------------------------------------- entk index


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(nn.relu(nn.Dense(8)(x)))


@pytest.fixture(scope="module")
def net():
    x = jax.random.normal(jax.random.key(0), (5, 4))
    m = MLP()
    return m, m.init(jax.random.key(1), x), x


@pytest.mark.parametrize("method", ["fast", "generic", "generic_batched"])
@pytest.mark.parametrize("index", [99, -1])
def test_entk_index_out_of_range(net, method, index):
    m, p, x = net
    with pytest.raises(ValueError, match=rf"index={index} is out of range.*3 output\(s\)"):
        NTK.entk(m.apply, p, x, output="index", index=index, method=method)


@pytest.mark.parametrize("method", ["fast", "generic"])
def test_entk_valid_index_matches_per_class(net, method):
    m, p, x = net
    per_class = NTK.entk(m.apply, p, x, output="per_class", method="generic")
    k2 = NTK.entk(m.apply, p, x, output="index", index=2, method=method)
    np.testing.assert_allclose(k2, per_class[2], rtol=1e-4, atol=1e-6)
    k2 = jax.jit(lambda q: NTK.entk(m.apply, q, x, output="index", index=2, method=method))(p)
    np.testing.assert_allclose(k2, per_class[2], rtol=1e-4, atol=1e-6)


def test_loss_helpers_check_index(net):
    m, p, x = net
    y = jnp.zeros(x.shape[0])
    with pytest.raises(ValueError, match=r"index=3 is out of range"):
        NTK.mse_loss(m.apply, p, x, y, output="index", index=3)
    with pytest.raises(ValueError, match=r"index=99 is out of range"):
        NTK.loss_decrease_after_step(m.apply, p, x, y, 0.1, output="index", index=99)
    assert np.isfinite(float(NTK.mse_loss(m.apply, p, x, y, output="index", index=2)))
