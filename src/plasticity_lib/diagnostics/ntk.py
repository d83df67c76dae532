"""Empirical neural tangent kernel (eNTK) and its summaries.

Paper: Lyle et al. (2024) §3.3 ("Characterizing networks which have lost plasticity",
Fig. 3 right: eNTK and gradient-cosine heat maps on a mini-batch of 64 inputs, the
"diagonal + low-rank" pathology, and the first-order loss-decrease argument) and App. C
(rank of the eNTK of linearized networks).

Definition
----------
For a scalar function ``f(theta, x)`` the eNTK on inputs ``x_1..x_n`` is the ``(n, n)``
Gram matrix ``K[i, j] = <grad_theta f(x_i), grad_theta f(x_j)>`` over *all* entries of
``params`` (every leaf of the pytree). A multi-output network ``f: R^d -> R^C`` is
reduced by ``output`` (static):

* ``"sum"`` (default): ``f = sum_c f_c`` (the sum of the logits; for a single-output
  regression network this is just the output). It is one backward pass, the gradient
  direction that moves all logits together.
* ``"index"``: ``f = f_index`` (one chosen logit / output unit).
* ``"per_class"``: ``(C, n, n)``, ``K_c`` for every output unit (the diagonal blocks of
  the full ``(nC, nC)`` kernel).
* ``"trace"``: ``(n, n)``, ``sum_c K_c`` (the trace over outputs of the full kernel,
  i.e. the kernel of ``<J(x_i), J(x_j)>_F`` with ``J`` the ``(C, P)`` Jacobian).

Routes
------
* ``method="generic"``: per-example gradients by ``jax.vmap(jax.grad)`` (the network is
  applied to one example at a time), contracted leaf by leaf (no flattening copy of the
  ``(n, P)`` Jacobian into one array). Works for any Flax (or plain JAX) model whose
  output row ``i`` depends only on input ``i``. Memory ``O(n P)``; per-class variants
  loop over classes with ``lax.map``.
* ``method="generic_batched"``: Jacobian of the *batched* output (``jax.jacrev`` of
  ``x -> f(params, X)``), for models that couple examples (batch normalisation with batch
  statistics). ``n`` backward passes of the full batch.
* ``method="fast"``: per-layer factorisation of the dense layers (App. C). One batched
  forward pass records the input ``a`` of every plain ``flax.linen.Dense`` call (via
  ``flax.linen.intercept_methods``) and adds a zero perturbation ``delta`` to its output;
  one VJP gives ``g = df/d(output)`` for all examples at once. For a Dense layer with
  input ``(n, d_in)``: ``K += (g g^T) * (a a^T)`` (kernel) ``+ g g^T`` (bias). Dense
  layers applied per position (input ``(n, ..., d_in)``, e.g. im2col convolutions) use
  the per-example kernel gradient ``sum_p a_p g_p^T``. Every parameter leaf that is not
  the kernel/bias of such a call (normalisation scales/offsets, convolution kernels,
  parameters of custom modules) is handled by the generic per-example route restricted
  to those leaves, so the result is exact for any model; the speed-up is the share of
  parameters in dense layers (for the paper MLP 784-512x4-10 with or without layer norm,
  >99.6%: a few ms for ``n = 64`` on CPU instead of ~1 s).
  Dense parameters are identified by object identity with the leaves of ``params``, so
  ``apply_fn`` must pass them through unchanged (true for ``module.apply`` and wrappers
  like ``lambda p, x: module.apply({"params": p}, x)``); it must not be an
  already-compiled ``jax.jit`` function (interception happens while tracing; then
  nothing is intercepted and everything falls to the generic subset route, still
  exact). Assumptions: no coupling between examples, and a Dense kernel/bias is used by
  that Dense call only (no weight tying with non-Dense code; sharing between two Dense
  calls is detected and sent to the generic route).
* ``method="auto"`` (default): ``"fast"``, or ``"generic_batched"`` if
  ``batch_coupled=True``.

All routes are jit-able (``apply_fn`` and the static options closed over) and vmap-able
over a leading seed axis of ``params``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from .representation import effective_rank

Array = jax.Array

__all__ = [
    "entk",
    "entk_generic",
    "entk_fast",
    "entk_from_layers",
    "fast_entk_supported",
    "gradient_cosine",
    "diag_rank1_fit",
    "diag_rank1_error",
    "mean_abs_offdiag_cosine",
    "grad_norm_cv",
    "kernel_effective_rank",
    "kernel_condition_number",
    "ntk_summary",
    "predicted_loss_decrease",
    "mse_loss",
    "loss_decrease_after_step",
    "LayerRecord",
]

_OUTPUTS = ("sum", "index", "per_class", "trace")


def _check_output(output: str):
    if output not in _OUTPUTS:
        raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")


def _check_index(index, num_out: int):
    """A static ``index`` must name one of the network's ``num_out`` outputs."""
    if isinstance(index, numbers.Integral) and not 0 <= index < num_out:
        raise ValueError(
            f"index={index} is out of range for output='index': the network has {num_out} "
            f"output(s), expected 0 <= index < {num_out}"
        )


def _check_square(k, fn: str, batched: bool = False):
    """``k`` must be ``(n, n)`` (``(..., n, n)`` when ``batched``)."""
    s = jnp.shape(k)
    if (len(s) < 2 if batched else len(s) != 2) or s[-1] != s[-2]:
        want = "(..., n, n)" if batched else f"(n, n) (for a seed axis: jax.vmap({fn}))"
        raise ValueError(f"{fn}: k must be a square kernel {want}, got shape {s}")


def _rows(out: Array, n: int) -> Array:
    """Network output -> ``(n, C)``."""
    return jnp.reshape(out, (n, -1))


def _num_params(params) -> int:
    return int(sum(math.prod(jnp.shape(x)) for x in jax.tree_util.tree_leaves(params)))


def _gram_tree(grads) -> Array:
    """``sum_leaves G_leaf G_leaf^T`` for per-example gradients with leading axis n."""
    leaves = jax.tree_util.tree_leaves(grads)
    n = leaves[0].shape[0]
    k = 0.0
    for g in leaves:
        g2 = jnp.reshape(g, (n, -1))
        k = k + g2 @ g2.T
    return k


# --------------------------------------------------------------------------- generic


def entk_generic(
    apply_fn: Callable,
    params: Any,
    x: Array,
    output: str = "sum",
    index: int = 0,
    batch_coupled: bool = False,
) -> Array:
    """eNTK by explicit per-example gradients (reference route; see module docstring).

    Args:
      apply_fn: ``apply_fn(params, x_batch) -> outputs`` with ``outputs`` of shape
        ``(batch,)``, ``(batch, C)`` (or any ``(batch, ...)``, flattened to ``C``).
      params: pytree; every leaf is differentiated.
      x: ``(n, ...)`` inputs.
      output: ``"sum" | "index" | "per_class" | "trace"`` (static).
      index: output unit for ``output="index"`` (static).
      batch_coupled: if True, differentiate the batched output (``jacrev``) instead of
        applying the network to one example at a time.
    Returns:
      ``(n, n)`` float32, or ``(C, n, n)`` for ``"per_class"``.
    """
    _check_output(output)
    n = x.shape[0]

    if not batch_coupled:

        def f_single(p, xi):
            return jnp.reshape(apply_fn(p, xi[None]), (-1,))

        def grads_for(select):
            g = jax.vmap(jax.grad(lambda p, xi: select(f_single(p, xi))), (None, 0))
            return g(params, x)

    else:

        def grads_for(select):
            def fvec(p):
                return jax.vmap(select)(_rows(apply_fn(p, x), n))

            return jax.jacrev(fvec)(params)

    if output == "sum":
        return _gram_tree(grads_for(jnp.sum))
    if output == "index":
        _check_index(index, math.prod(jax.eval_shape(apply_fn, params, x).shape[1:]))
        return _gram_tree(grads_for(lambda o: o[index]))
    out_shape = jax.eval_shape(apply_fn, params, x).shape
    num_out = math.prod(out_shape[1:]) if len(out_shape) > 1 else 1
    per_class = jax.lax.map(lambda c: _gram_tree(grads_for(lambda o: o[c])), jnp.arange(num_out))
    if output == "per_class":
        return per_class
    return jnp.sum(per_class, axis=0)


# --------------------------------------------------------------------------- fast


class LayerRecord(NamedTuple):
    """One intercepted ``flax.linen.Dense`` call (fast route).

    ``inputs``: the layer input ``a`` ``(n, ..., d_in)`` (None in the static layout);
    ``out_shape``/``out_dtype``: of the layer output; ``use_bias``; ``leaves``: indices
    of its kernel and bias in ``jax.tree_util.tree_leaves(params)`` (None where the
    parameter is not a leaf of ``params`` as given); ``factorize``: whether the layer is
    handled by the factorisation (set in the layout).
    """

    inputs: Any
    out_shape: tuple
    out_dtype: Any
    use_bias: bool
    leaves: tuple
    factorize: bool = False


def _is_plain_dense(module) -> bool:
    return isinstance(module, nn.Dense) and type(module).__call__ is nn.Dense.__call__


def _run_recorded(apply_fn, params, x, deltas=None):
    """Apply ``apply_fn(params, x)`` while recording every plain ``nn.Dense`` call.

    Returns ``(outputs, [LayerRecord])``. ``deltas``: optional dict ``{k: array}``; the
    array is added to the output of the k-th recorded Dense call.
    """
    records: list = []
    ids = {id(leaf): i for i, leaf in enumerate(jax.tree_util.tree_leaves(params))}

    def interceptor(next_fun, args, kwargs, context):
        mod = context.module
        if context.method_name != "__call__" or not _is_plain_dense(mod):
            return next_fun(*args, **kwargs)
        a = args[0] if args else kwargs["inputs"]
        variables = mod.variables.get("params", {})
        kernel_idx = ids.get(id(variables.get("kernel")))
        bias_idx = ids.get(id(variables.get("bias"))) if mod.use_bias else None
        out = next_fun(*args, **kwargs)
        k = len(records)
        records.append(
            LayerRecord(a, tuple(out.shape), out.dtype, bool(mod.use_bias), (kernel_idx, bias_idx))
        )
        if deltas is not None and k in deltas:
            out = out + deltas[k]
        return out

    with nn.intercept_methods(interceptor):
        out = apply_fn(params, x)
    return out, records


def _record_layout(apply_fn, params, x) -> list:
    """Static layout (abstract trace, no computation): the recorded Dense calls with
    ``factorize`` decided. A call is factorised when its kernel (and bias, if any) are
    leaves of ``params``, no other Dense call uses them, and its input is at least 2-D.
    """
    layout: list = []

    def probe(p, xx):
        out, recs = _run_recorded(apply_fn, p, xx)
        layout.extend(r._replace(inputs=jnp.ndim(r.inputs)) for r in recs)
        return out

    jax.eval_shape(probe, params, x)
    uses: dict = {}
    for r in layout:
        for i in r.leaves:
            if i is not None:
                uses[i] = uses.get(i, 0) + 1
    out = []
    for r in layout:
        kernel_idx, bias_idx = r.leaves
        ok = kernel_idx is not None and (not r.use_bias or bias_idx is not None)
        ok = ok and all(uses.get(i, 0) == 1 for i in r.leaves if i is not None)
        ok = ok and r.inputs >= 2
        out.append(r._replace(inputs=None, factorize=bool(ok)))
    return out


def _rest_leaves(layout, params) -> list:
    covered = {i for r in layout if r.factorize for i in r.leaves if i is not None}
    n_leaves = len(jax.tree_util.tree_leaves(params))
    return [i for i in range(n_leaves) if i not in covered]


def fast_entk_supported(apply_fn: Callable, params: Any, x: Array) -> tuple[bool, str]:
    """Whether the fast route factorises *every* parameter (pure per-layer route).

    If not, ``method="fast"`` is still exact: the remaining parameters (normalisation
    scales/offsets, convolution kernels, ...) go through per-example gradients. Traces
    ``apply_fn`` abstractly (no computation). Returns ``(all_factorised, message)``.
    """
    layout = _record_layout(apply_fn, params, x)
    leaves = jax.tree_util.tree_leaves(params)
    rest = _rest_leaves(layout, params)
    n_rest = sum(math.prod(jnp.shape(leaves[i])) for i in rest)
    total = _num_params(params)
    n_fact = sum(r.factorize for r in layout)
    msg = (
        f"{n_fact} of {len(layout)} intercepted Dense calls factorised; {total - n_rest} of "
        f"{total} parameters factorised, {n_rest} through per-example gradients"
    )
    if not layout:
        msg += " (no Dense call intercepted: is apply_fn an already-jitted function?)"
    return n_rest == 0, msg


def entk_from_layers(records: Sequence[LayerRecord], grads: Sequence[Array]) -> Array:
    """Combine per-layer inputs and output-gradients of dense layers into their eNTK
    contribution (fast route core, App. C factorisation).

    For every layer with input ``a`` ``(n, d_in)`` and output gradient ``g``
    (``(n, d_out)``, or ``(C, n, d_out)`` for per-class kernels):
    ``(g g^T) * (a a^T)`` for the kernel ``+ g g^T`` for the bias (if ``use_bias``).
    Inputs with extra middle axes ``(n, ..., d_in)`` (a dense layer applied per position)
    use per-example kernel gradients ``sum_p a_p g_p^T`` instead.

    Args:
      records: ``LayerRecord`` list (``inputs`` and ``use_bias`` are used).
      grads: matching list of output gradients.
    Returns:
      ``(n, n)`` or ``(C, n, n)``.
    """
    k = 0.0
    per_class = False
    for r, g in zip(records, grads):
        a = r.inputs
        per_class = g.ndim == a.ndim + 1
        if not per_class:
            g = g[None]
        n = a.shape[0]
        if a.ndim == 2:
            gg = jnp.einsum("cio,cjo->cij", g, g)
            kl = gg * (a @ a.T)[None]
            if r.use_bias:
                kl = kl + gg
        else:
            a3 = jnp.reshape(a, (n, -1, a.shape[-1]))
            g4 = jnp.reshape(g, (g.shape[0], n, -1, g.shape[-1]))
            jw = jnp.einsum("npi,cnpo->cnio", a3, g4)
            kl = jnp.einsum("cnio,cmio->cnm", jw, jw)
            if r.use_bias:
                gb = jnp.sum(g4, axis=2)
                kl = kl + jnp.einsum("cno,cmo->cnm", gb, gb)
        k = k + kl
    return k if per_class else k[0]


def entk_fast(
    apply_fn: Callable,
    params: Any,
    x: Array,
    output: str = "sum",
    index: int = 0,
) -> Array:
    """eNTK with dense layers factorised per layer (see module docstring).

    Every plain ``flax.linen.Dense`` call whose kernel/bias are leaves of ``params`` is
    handled in closed form from one batched forward/backward pass; all other parameter
    leaves (normalisation parameters, convolutions, ...) by per-example gradients
    restricted to those leaves (``entk_generic`` on the subset). Same arguments and
    return value as ``entk_generic``; assumes no coupling between examples.
    """
    _check_output(output)
    layout = _record_layout(apply_fn, params, x)
    rest = _rest_leaves(layout, params)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    n = x.shape[0]
    k_total = 0.0

    fact = [i for i, r in enumerate(layout) if r.factorize]
    if fact:
        deltas0 = {i: jnp.zeros(layout[i].out_shape, layout[i].out_dtype) for i in fact}

        def f(deltas):
            out, recs = _run_recorded(apply_fn, params, x, deltas)
            return _rows(out, n), [recs[i].inputs for i in fact]

        out, vjp_fn, inputs = jax.vjp(f, deltas0, has_aux=True)
        recs = [layout[i]._replace(inputs=a) for i, a in zip(fact, inputs)]
        num_out = out.shape[1]
        if output == "sum":
            (grads,) = vjp_fn(jnp.ones_like(out))
        elif output == "index":
            _check_index(index, num_out)
            (grads,) = vjp_fn(jnp.zeros_like(out).at[:, index].set(1.0))
        else:
            eye = jnp.eye(num_out, dtype=out.dtype)
            cot = jnp.broadcast_to(eye[:, None, :], (num_out, n, num_out))
            (grads,) = jax.vmap(vjp_fn)(cot)
        k_fact = entk_from_layers(recs, [grads[i] for i in fact])
        k_total = jnp.sum(k_fact, axis=0) if output == "trace" else k_fact

    if rest:

        def sub_apply(rest_leaves, xb):
            full = list(leaves)
            for i, leaf in zip(rest, rest_leaves):
                full[i] = leaf
            return apply_fn(jax.tree_util.tree_unflatten(treedef, full), xb)

        k_rest = entk_generic(sub_apply, [leaves[i] for i in rest], x, output, index)
        k_total = k_total + k_rest
    return k_total


def entk(
    apply_fn: Callable,
    params: Any,
    x: Array,
    output: str = "sum",
    index: int = 0,
    method: str = "auto",
    batch_coupled: bool = False,
) -> Array:
    """Empirical NTK ``K[i, j] = <grad_theta f(x_i), grad_theta f(x_j)>`` (§3.3, Fig. 3).

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, C)`` (or ``(n,)``); not already jitted if the
        fast route is to find the dense layers.
      params: pytree (all leaves are differentiated), optionally with a seed axis when
        called under ``jax.vmap``.
      x: ``(n, ...)`` inputs (the paper uses a mini-batch of 64).
      output: ``"sum"`` (default; sum of the outputs) | ``"index"`` (output ``index``) |
        ``"per_class"`` (``(C, n, n)``) | ``"trace"`` (``sum_c K_c``). Static.
      index: static output index for ``"index"``.
      method: ``"auto"`` | ``"fast"`` | ``"generic"`` | ``"generic_batched"``.
      batch_coupled: the model couples examples (batch statistics): forces
        ``"generic_batched"`` under ``"auto"``.
    Returns:
      ``(n, n)`` float32, or ``(C, n, n)`` for ``"per_class"``.

    Example::

        K = jax.jit(lambda p, x: entk(net.apply, p, x))(params, x)
        Ks = jax.vmap(lambda p: entk(net.apply, p, x))(stacked_params)  # (S, n, n)
    """
    if method == "auto":
        method = "generic_batched" if batch_coupled else "fast"
    if method == "fast":
        return entk_fast(apply_fn, params, x, output, index)
    if method == "generic":
        return entk_generic(apply_fn, params, x, output, index, batch_coupled=False)
    if method == "generic_batched":
        return entk_generic(apply_fn, params, x, output, index, batch_coupled=True)
    raise ValueError(f"unknown method {method!r}")


# --------------------------------------------------------------------------- summaries


def gradient_cosine(k: Array, eps: float = 1e-12) -> Array:
    """Gradient cosine matrix ``C = D^{-1/2} K D^{-1/2}``, ``D = diag(K)``
    (Fig. 3, top row). Inputs with zero gradient get zero rows/columns.

    Args: k ``(n, n)`` (or ``(..., n, n)``). Returns same shape.
    """
    _check_square(k, "gradient_cosine", batched=True)
    d = jnp.sqrt(jnp.clip(jnp.diagonal(k, axis1=-2, axis2=-1), 0.0, None))
    inv = jnp.where(d > eps, 1.0 / jnp.where(d > eps, d, 1.0), 0.0)
    return k * inv[..., :, None] * inv[..., None, :]


def _offdiag_mask(n: int) -> Array:
    return 1.0 - jnp.eye(n)


def diag_rank1_fit(k: Array, num_iters: int = 100) -> tuple[Array, Array, Array]:
    """Best "diagonal + symmetric rank-1" approximation ``D + lam u u^T`` of ``K``.

    Problem: ``min_{D diagonal, lam in R, ||u|| = 1} ||K - D - lam u u^T||_F``. For any
    rank-1 part the optimal ``D`` makes the diagonal residual zero, so this equals the
    best symmetric rank-1 fit to the *off-diagonal* entries (rank-1 matrix completion
    with a missing diagonal). Solved by hard-impute / EM alternating minimisation: start
    from ``K`` with a zero diagonal; repeat: take the eigenpair of largest ``|lam|`` of
    the current matrix, replace its diagonal by ``lam u_i^2``. Each step does not
    increase the off-diagonal residual; ``num_iters`` fixed (static) for jit.

    Args:
      k: ``(n, n)`` symmetric.
      num_iters: iterations (default 100).
    Returns:
      ``(d (n,), lam (), u (n,))`` with ``D = diag(d)``.
    """
    _check_square(k, "diag_rank1_fit")
    k = 0.5 * (k + k.T)
    n = k.shape[0]
    off = _offdiag_mask(n)
    eye = jnp.eye(n, dtype=k.dtype)

    def top_pair(m):
        w, v = jnp.linalg.eigh(m)
        i = jnp.argmax(jnp.abs(w))
        return w[i], v[:, i]

    def body(_, m):
        lam, u = top_pair(m)
        return k * off + eye * (lam * u * u)[None, :]

    m = jax.lax.fori_loop(0, num_iters, body, k * off)
    lam, u = top_pair(m)
    d = jnp.diagonal(k) - lam * u * u
    return d, lam, u


def diag_rank1_error(k: Array, num_iters: int = 100, normalize: str = "full") -> Array:
    """Relative Frobenius error of the best diagonal + rank-1 approximation (Fig. 3).

    ``min_{D, lam, u} ||K - D - lam u u^T||_F / ||K||_F`` (``normalize="full"``, the
    definition used in the book). Small values mean the off-diagonal structure of ``K``
    is (close to) rank one: all inputs interfere through one shared direction, the
    pathology of plasticity-lost networks in §3.3. Note that a purely diagonal ``K``
    (no interference at all) also gives 0; ``normalize="offdiag"`` divides by the
    off-diagonal norm ``||K - diag K||_F`` instead, measuring how much of the
    off-diagonal interference the rank-1 term explains (0 iff the off-diagonal part is
    exactly rank-1 completable; ``nan`` if ``K`` is diagonal).

    Args:
      k: ``(n, n)``; num_iters: see ``diag_rank1_fit``; normalize: ``"full"`` or
        ``"offdiag"`` (static).
    Returns:
      scalar.
    """
    _check_square(k, "diag_rank1_error")
    d, lam, u = diag_rank1_fit(k, num_iters)
    ks = 0.5 * (k + k.T)
    resid = ks - jnp.diag(d) - lam * jnp.outer(u, u)
    num = jnp.linalg.norm(resid)
    if normalize == "full":
        return num / jnp.linalg.norm(ks)
    if normalize == "offdiag":
        return num / jnp.linalg.norm(ks * _offdiag_mask(k.shape[0]))
    raise ValueError(f"normalize must be 'full' or 'offdiag', got {normalize!r}")


def mean_abs_offdiag_cosine(k: Array) -> Array:
    """Mean of ``|cos(grad f(x_i), grad f(x_j))|`` over ``i != j`` (interference
    magnitude, Fig. 3 top row). Args: k ``(n, n)``. Returns scalar."""
    _check_square(k, "mean_abs_offdiag_cosine")
    c = gradient_cosine(k)
    n = k.shape[-1]
    return jnp.sum(jnp.abs(c) * _offdiag_mask(n)) / (n * (n - 1))


def grad_norm_cv(k: Array) -> Array:
    """Coefficient of variation of the per-input gradient norms ``sqrt(diag K)``:
    ``std / mean`` (Fig. 3: "greater gradient norm variance across inputs"). Scalar."""
    _check_square(k, "grad_norm_cv")
    g = jnp.sqrt(jnp.clip(jnp.diagonal(k), 0.0, None))
    return jnp.std(g) / jnp.mean(g)


def _psd_eigs(k: Array) -> Array:
    w = jnp.linalg.eigvalsh(0.5 * (k + k.T))
    return jnp.clip(w, 0.0, None)[::-1]


def kernel_effective_rank(k: Array) -> Array:
    """Roy–Vetterli effective rank of the PSD kernel (eigenvalues = singular values,
    negative round-off clipped to 0). Scalar in ``[1, n]``. App. C (rank of the eNTK)."""
    _check_square(k, "kernel_effective_rank")
    return effective_rank(_psd_eigs(k))


def kernel_condition_number(k: Array) -> Array:
    """``lambda_max / lambda_min`` of the PSD kernel (eigenvalues clipped at 0, so a
    singular kernel gives ``inf``). Scalar. §3.3 ("an ill-conditioned eNTK")."""
    _check_square(k, "kernel_condition_number")
    w = _psd_eigs(k)
    return w[0] / w[-1]


def ntk_summary(k: Array, num_iters: int = 100) -> dict:
    """All scalar eNTK summaries of §3.3 / Fig. 3 in one dict.

    Keys: ``diag_rank1_error`` (normalised by ``||K||_F``), ``offdiag_rank1_error``
    (normalised by the off-diagonal norm), ``mean_abs_offdiag_cosine``,
    ``grad_norm_cv``, ``effective_rank``, ``condition_number``, ``trace``,
    ``mean_diag``, ``mean_offdiag``.
    """
    _check_square(k, "ntk_summary")
    n = k.shape[-1]
    off = _offdiag_mask(n)
    d, lam, u = diag_rank1_fit(k, num_iters)
    ks = 0.5 * (k + k.T)
    resid = jnp.linalg.norm(ks - jnp.diag(d) - lam * jnp.outer(u, u))
    return {
        "diag_rank1_error": resid / jnp.linalg.norm(ks),
        "offdiag_rank1_error": resid / jnp.linalg.norm(ks * off),
        "mean_abs_offdiag_cosine": mean_abs_offdiag_cosine(k),
        "grad_norm_cv": grad_norm_cv(k),
        "effective_rank": kernel_effective_rank(k),
        "condition_number": kernel_condition_number(k),
        "trace": jnp.trace(k),
        "mean_diag": jnp.mean(jnp.diagonal(k)),
        "mean_offdiag": jnp.sum(k * off) / (n * (n - 1)),
    }


# --------------------------------------------------------------------------- first order


def _scalar_output(out: Array, n: int, output: str, index: int) -> Array:
    o = _rows(out, n)
    if output == "sum":
        return jnp.sum(o, axis=1)
    if output == "index":
        _check_index(index, o.shape[1])
        return o[:, index]
    raise ValueError("loss helpers take output='sum' or 'index' (a scalar per input)")


def mse_loss(
    apply_fn: Callable,
    params: Any,
    x: Array,
    y: Array,
    output: str = "sum",
    index: int = 0,
    reduction: str = "half_mean",
) -> Array:
    """Squared loss on the scalar output used by ``entk`` (``output`` = sum / index).

    ``reduction="half_mean"`` (book convention): ``L = (1/(2n)) sum_i (f(x_i) - y_i)^2``;
    ``reduction="sum"`` (the paper's §3.3 convention): ``L = sum_i (f(x_i) - y_i)^2``.

    Args: x ``(n, ...)``, y ``(n,)``. Returns scalar.
    """
    r = _scalar_output(apply_fn(params, x), x.shape[0], output, index) - y
    if reduction == "half_mean":
        return 0.5 * jnp.mean(r**2)
    if reduction == "sum":
        return jnp.sum(r**2)
    raise ValueError(f"reduction must be 'half_mean' or 'sum', got {reduction!r}")


def predicted_loss_decrease(
    k: Array, residual: Array, lr: float, reduction: str = "half_mean"
) -> Array:
    """First-order loss decrease of one gradient-descent step (§3.3).

    With ``r = f(theta, X) - y`` ``(n,)`` and ``J`` the ``(n, P)`` Jacobian (``K = J J^T``),
    ``grad L = c J^T r`` and ``L(theta) - L(theta - lr grad L) = lr ||grad L||^2 + O(lr^2)
    = lr c^2 r^T K r``, where ``c = 1/n`` for ``reduction="half_mean"``
    (``L = (1/(2n)) ||r||^2``) and ``c = 2`` for ``"sum"`` (the paper's ``||r||^2``,
    where the paper drops the constant ``4 lr``).

    Args:
      k: ``(n, n)`` eNTK of the scalar output used in the loss.
      residual: ``(n,)``; lr: step size.
    Returns:
      scalar predicted decrease (positive = the loss goes down).
    """
    n = residual.shape[0]
    if reduction == "half_mean":
        c = 1.0 / n
    elif reduction == "sum":
        c = 2.0
    else:
        raise ValueError(f"reduction must be 'half_mean' or 'sum', got {reduction!r}")
    return lr * c**2 * (residual @ (k @ residual))


def loss_decrease_after_step(
    apply_fn: Callable,
    params: Any,
    x: Array,
    y: Array,
    lr: float,
    output: str = "sum",
    index: int = 0,
    reduction: str = "half_mean",
) -> Array:
    """Actual decrease ``L(theta) - L(theta - lr grad L)`` of ``mse_loss`` after one full
    batch gradient-descent step (to check ``predicted_loss_decrease``). Scalar."""
    loss = lambda p: mse_loss(apply_fn, p, x, y, output, index, reduction)
    l0, g = jax.value_and_grad(loss)(params)
    new = jax.tree_util.tree_map(lambda p, gp: p - lr * gp, params, g)
    return l0 - loss(new)
