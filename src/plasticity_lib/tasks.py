"""Nonstationary task streams: pure functions of (key, task index, previous task).

A :class:`Task` is the pytree ``(x, y, mask)`` of CONTRIBUTING.md: ``x`` ``(N, ...)``
inputs, ``y`` ``(N,)`` int32 labels or ``(N, k)`` float32 regression targets, ``mask``
``(N,)`` float32 (1 = example in the current training set). A :class:`TaskStream` is
the pair of pure functions ``init(key) -> Task`` and ``next(key, t, prev) -> Task``
(``t``: the new task's index, an int32 scalar that may be traced). Shapes and dtypes
never change from task to task, so the engine can carry the task through
``jax.lax.scan`` and ``jax.vmap`` over keys; the same key always gives the same task.

Classification streams (Lyle et al. 2024, §3.1, §4.2, App. B.2) are built from
*transformations*: pure functions ``(key, x, y) -> (x, y)`` applied to the base
dataset (:func:`random_labels_transform`, :func:`permute_classes_transform`,
:func:`permute_pixels_transform`). :func:`mode_stream` applies them in the §4.2 modes
"continual", "composite" and "growing"; :func:`random_labels`,
:func:`relabel_fraction`, :func:`permuted_classes` and :func:`permuted_pixels` are
the special cases used in §3 and App. B.2.

Also here: the random-network regression targets of App. E.1 / Fig. 16
(:func:`random_network_targets`, :func:`regression_stream`), the drifting targets of
App. E.2 (:func:`drifting_targets`) and the contextual bandit of App. B.3
(:func:`bandit_transition`).

Large inputs and ``jit``: the streams close over their base arrays. A closed-over
array becomes a constant embedded in the compiled program (compile time and memory
grow with its size: ~3 s of compilation for 250 MB on CPU). ``init`` always reads the
base ``x``; ``next`` reads it only for input transformations (pixel permutations):
label transformations and regression streams carry ``x`` over from ``prev.x``. So the
engine is best off calling ``init`` outside its big jitted scan (eagerly or in a
separate jit) and passing the resulting ``Task`` in as an argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "MODES",
    "TRANSFORMS",
    "Task",
    "TaskStream",
    "Transform",
    "Transition",
    "bandit_transition",
    "drifting_targets",
    "make_transform",
    "mode_stream",
    "permute_classes_transform",
    "permute_pixels_transform",
    "permuted_classes",
    "permuted_pixels",
    "random_labels",
    "random_labels_transform",
    "random_mlp_apply",
    "random_mlp_init",
    "random_network_targets",
    "random_subset_mask",
    "regression_stream",
    "relabel_fraction",
    "stack_streams",
    "single_task_stream",
]


class Task(NamedTuple):
    """One task: ``x`` ``(N, ...)``, ``y`` ``(N,)`` int32 or ``(N, k)`` float32,
    ``mask`` ``(N,)`` float32 (1 = in the current training set)."""

    x: jax.Array
    y: jax.Array
    mask: jax.Array


class TaskStream(NamedTuple):
    """``init(key) -> Task`` and ``next(key, t, prev_task) -> Task``; both pure and
    jittable (``t`` is the index of the task ``next`` returns; task 0 is ``init``'s)."""

    init: Callable[[jax.Array], Task]
    next: Callable[[jax.Array, jax.Array, Task], Task]


#: ``(key, x, y) -> (x, y)``: a random transformation of a whole dataset. A transform
#: that leaves ``x`` untouched may say so with the attribute ``label_only = True``; the
#: streams then carry ``x`` over from the previous task instead of reading the base
#: inputs, so ``next`` does not capture the (possibly large) input array as a constant.
Transform = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]

MODES = ("continual", "composite", "growing")


# ------------------------------------------------------------------------ validation


def _check_num_classes(num_classes) -> int:
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 1
    ):
        raise ValueError(f"num_classes={num_classes!r} must be a positive int")
    return int(num_classes)


def _check_fraction(value, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.floating, np.integer))
        or not 0.0 <= float(value) <= 1.0
    ):
        raise ValueError(f"{name}={value!r} must be a number in [0, 1]")
    return float(value)


def _as_inputs(x) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must have shape (N, ...) with at least 2 dims, got shape {x.shape}")
    return x


def _as_labels(y, n: int, num_classes: int) -> jax.Array:
    y_np = np.asarray(y)
    if y_np.shape != (n,):
        raise ValueError(f"y must have shape (N,) = ({n},) matching x, got shape {y_np.shape}")
    if not np.issubdtype(y_np.dtype, np.integer):
        raise ValueError(f"y must hold integer class labels, got dtype {y_np.dtype}")
    if n and (y_np.min() < 0 or y_np.max() >= num_classes):
        raise ValueError(
            f"y holds labels in [{y_np.min()}, {y_np.max()}], "
            f"outside [0, num_classes={num_classes})"
        )
    return jnp.asarray(y_np, dtype=jnp.int32)


def random_subset_mask(key: jax.Array, n: int, k) -> jax.Array:
    """Boolean ``(n,)`` mask with exactly ``k`` True entries at uniformly random places.

    ``jax.random.permutation(key, n) < k``: the entries whose random rank is below k.
    ``k`` may be a traced integer.
    """
    return jax.random.permutation(key, n) < k


# ------------------------------------------------------------------- transformations


def random_labels_transform(num_classes: int) -> Transform:
    """Fresh i.i.d. uniform labels in ``[0, num_classes)`` for every example
    (random label assignment, §3.1, App. B.2); ``x`` unchanged."""
    num_classes = _check_num_classes(num_classes)

    def transform(key, x, y):
        return x, jax.random.randint(key, y.shape, 0, num_classes, dtype=jnp.int32)

    transform.label_only = True
    return transform


def permute_classes_transform(num_classes: int) -> Transform:
    """Relabel with a random permutation ``pi`` of the class ids: ``y -> pi[y]``
    (App. B.2: "all images with the label 5 will be re-assigned the label 2")."""
    num_classes = _check_num_classes(num_classes)

    def transform(key, x, y):
        pi = jax.random.permutation(key, num_classes).astype(jnp.int32)
        return x, pi[y]

    transform.label_only = True
    return transform


def permute_pixels_transform() -> Transform:
    """Apply one random permutation to the input features of every example (App. B.2).

    ``x`` ``(N, ...)`` is flattened to ``(N, D)``, its D columns permuted, and reshaped
    back; for colour images this permutes over pixels *and* channels. Labels unchanged.
    """

    def transform(key, x, y):
        flat = x.reshape(x.shape[0], -1)
        perm = jax.random.permutation(key, flat.shape[1])
        return flat[:, perm].reshape(x.shape), y

    return transform


TRANSFORMS: dict[str, Callable[..., Transform]] = {
    "random_labels": lambda num_classes: random_labels_transform(num_classes),
    "permuted_classes": lambda num_classes: permute_classes_transform(num_classes),
    "permuted_pixels": lambda num_classes: permute_pixels_transform(),
}


def make_transform(name: str, num_classes: int) -> Transform:
    """The transformation called ``name`` (one of :data:`TRANSFORMS`)."""
    if name not in TRANSFORMS:
        raise ValueError(
            f"base_transform={name!r} is not known; allowed: {sorted(TRANSFORMS)} or a callable"
        )
    return TRANSFORMS[name](num_classes)


# ------------------------------------------------------------------------ the modes


def mode_stream(
    base_transform: str | Transform,
    x,
    y,
    num_classes: int,
    mode: str = "continual",
    fraction: float = 1.0,
    subset_key: jax.Array | None = None,
) -> TaskStream:
    """Classification stream in one of the §4.2 nonstationarity modes.

    Every task boundary draws a fresh random transformation ``T_t`` (``base_transform``:
    ``"random_labels"``, ``"permuted_classes"``, ``"permuted_pixels"`` or any
    :data:`Transform`) and applies it to the *base* data ``(x, y)`` of a set ``S_t`` of
    ``k = round(fraction * N)`` examples; every other example keeps its value from the
    previous task::

        x_t[i], y_t[i] = T_t(x, y)[i]          if i in S_t
                         x_{t-1}[i], y_{t-1}[i] otherwise

    * ``"continual"``: ``S_t`` drawn uniformly at random for each task (§4.2, fraction
      0.5 or 1.0 in the paper). Task 0 applies ``T_0`` to every example.
    * ``"composite"``: ``S_t = S`` is the same for all tasks; the other examples stay
      untransformed (base data) for ever. ``next`` cannot see the key that ``init``
      got, so ``S`` is drawn once from ``subset_key`` when the stream is built
      (default ``jax.random.PRNGKey(0)``): runs vmapped over seeds share ``S``
      while their transformations differ. For a subset per seed, build the stream
      inside the vmapped function with a traced ``subset_key``.
    * ``"growing"``: as "continual" (task 0 transforms everything), and the mask
      admits the examples whose base class is ``<= t``: one class at task 0, one more
      class per task (classes added in order 0, 1, ...), all classes from task
      ``num_classes - 1`` on. Transformations act on all examples; only the masked
      ones count.

    Args:
      base_transform: transformation name or callable ``(key, x, y) -> (x, y)``.
      x: ``(N, ...)`` base inputs. y: ``(N,)`` int base labels in ``[0, num_classes)``.
      num_classes: number of classes. mode: one of :data:`MODES`.
      fraction: share of examples transformed per task, in [0, 1].
      subset_key: PRNG key fixing the composite subset (composite mode only).

    Key use: ``init(key)`` applies ``T_0`` with ``key``; ``next(key, ...)`` splits
    ``k_sel, k_tr = jax.random.split(key)``, ``S_t = random_subset_mask(k_sel, N, k)``
    and ``T_t`` uses ``k_tr`` (composite: ``T_t`` uses ``key``).
    """
    num_classes = _check_num_classes(num_classes)
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not known; allowed: {list(MODES)}")
    fraction = _check_fraction(fraction, "fraction")
    if isinstance(base_transform, str):
        transform = make_transform(base_transform, num_classes)
    elif callable(base_transform):
        transform = base_transform
    else:
        raise ValueError(
            f"base_transform={base_transform!r} must be one of {sorted(TRANSFORMS)} or a callable"
        )
    if subset_key is not None and mode != "composite":
        raise ValueError(f"subset_key is only used by mode='composite', not mode={mode!r}")

    x = _as_inputs(x)
    n = x.shape[0]
    y = _as_labels(y, n, num_classes)
    k = int(round(fraction * n))
    expand = (-1,) + (1,) * (x.ndim - 1)
    if mode == "composite":
        fixed = random_subset_mask(
            jax.random.PRNGKey(0) if subset_key is None else subset_key, n, k
        )

    def mask_at(t) -> jax.Array:
        if mode == "growing":
            return (y <= jnp.asarray(t, jnp.int32)).astype(jnp.float32)
        return jnp.ones((n,), jnp.float32)

    label_only = bool(getattr(transform, "label_only", False))

    def apply(key, sel, prev_x, prev_y) -> tuple[jax.Array, jax.Array]:
        if label_only:  # x carries over; do not capture the base x in `next`
            _, ty = transform(key, prev_x, y)
            return prev_x, jnp.where(sel, ty, prev_y).astype(jnp.int32)
        tx, ty = transform(key, x, y)
        return (
            jnp.where(sel.reshape(expand), tx, prev_x).astype(x.dtype),
            jnp.where(sel, ty, prev_y).astype(jnp.int32),
        )

    def init(key) -> Task:
        sel = fixed if mode == "composite" else jnp.ones((n,), bool)
        tx, ty = apply(key, sel, x, y)
        return Task(tx, ty, mask_at(0))

    def next_(key, t, prev: Task) -> Task:
        if mode == "composite":
            sel, k_tr = fixed, key
        else:
            k_sel, k_tr = jax.random.split(key)
            sel = random_subset_mask(k_sel, n, k)
        tx, ty = apply(k_tr, sel, prev.x, prev.y)
        return Task(tx, ty, mask_at(t))

    return TaskStream(init, next_)


def random_labels(x, num_classes: int) -> TaskStream:
    """Every task draws fresh uniform labels for all of ``x`` ``(N, ...)`` (§3.1, App.
    B.2: iterated random-label memorisation). ``y`` ``(N,)`` int32."""
    x = _as_inputs(x)
    zeros = np.zeros((x.shape[0],), np.int32)
    return mode_stream("random_labels", x, zeros, num_classes, "continual", 1.0)


def relabel_fraction(x, num_classes: int, eps: float) -> TaskStream:
    """Random labels re-randomised gradually (§3.1, "Smoothness of distribution shifts").

    ``init`` draws uniform labels for all ``N`` examples; each ``next`` picks exactly
    ``round(eps * N)`` examples uniformly at random (Python rounding) and gives them
    fresh uniform draws (which may coincide with the old label, probability
    ``1 / num_classes``); all other labels carry over. ``eps`` in [0, 1]; the paper
    sweeps ``eps`` in [0.01, 1]. Same key use as :func:`mode_stream` "continual".
    """
    eps = _check_fraction(eps, "eps")
    x = _as_inputs(x)
    zeros = np.zeros((x.shape[0],), np.int32)
    return mode_stream("random_labels", x, zeros, num_classes, "continual", eps)


def permuted_classes(x, y, num_classes: int) -> TaskStream:
    """Each task relabels the base data with a fresh random permutation of the class
    ids, ``y_t = pi_t[y]`` (App. B.2)."""
    return mode_stream("permuted_classes", x, y, num_classes, "continual", 1.0)


def permuted_pixels(x, y) -> TaskStream:
    """Each task applies a fresh random permutation to the flattened input features
    of the base data, keeping ``x``'s shape; labels unchanged (App. B.2)."""
    y_np = np.asarray(y)
    num_classes = int(y_np.max()) + 1 if y_np.size else 1
    return mode_stream("permuted_pixels", x, y, num_classes, "continual", 1.0)


# ----------------------------------------------------------- regression targets (E.1)


def random_mlp_init(key: jax.Array, in_dim: int, width: int = 64, depth: int = 2) -> tuple:
    """Parameters ``((W_1, b_1), ..., (W_{depth+1}, b_{depth+1}))`` of a random MLP.

    ``depth`` ReLU hidden layers of ``width`` units and a scalar linear output. Weights
    are Gaussian with He scaling ``W ~ N(0, 2 / fan_in)`` for the hidden layers and
    ``N(0, 1 / fan_in)`` for the output layer; biases are zero. Never trained: it only
    defines target functions (App. E.1's ``f_{theta_rand}``).
    """
    if depth < 0 or width < 1 or in_dim < 1:
        raise ValueError(
            f"need in_dim >= 1, width >= 1, depth >= 0; got {in_dim=}, {width=}, {depth=}"
        )
    dims = [in_dim] + [width] * depth + [1]
    keys = jax.random.split(key, len(dims) - 1)
    params = []
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        gain = 2.0 if i < depth else 1.0
        w = jax.random.normal(keys[i], (fan_in, fan_out), jnp.float32) * math.sqrt(gain / fan_in)
        params.append((w, jnp.zeros((fan_out,), jnp.float32)))
    return tuple(params)


def random_mlp_apply(params: tuple, x) -> jax.Array:
    """Output ``(N,)`` of :func:`random_mlp_init`'s MLP on ``x`` ``(N, ...)`` (flattened).

    Matmuls use ``Precision.HIGHEST`` so that accelerators do not round to bf16/TF32:
    ``sin(1e5 * f)`` amplifies any change of ``f``.
    """
    h = jnp.asarray(x, jnp.float32).reshape(x.shape[0], -1)
    for i, (w, b) in enumerate(params):
        h = jnp.dot(h, w, precision=jax.lax.Precision.HIGHEST) + b
        if i < len(params) - 1:
            h = jax.nn.relu(h)
    return h[:, 0]


def random_network_targets(
    key: jax.Array,
    x,
    offset=0.0,
    M: float = 1e5,
    alpha=0.0,
    width: int = 64,
    depth: int = 2,
) -> jax.Array:
    """Random regression targets ``(N, 1)`` float32 on inputs ``x`` ``(N, ...)``.

    ``target(x) = offset + alpha * f_smooth(x) + sin(M * f_hf(x))``

    * ``alpha = 0`` (default) gives App. E.1's ``f_target(x) = sin(M f_{theta_rand}(x)) + b``
      with ``b = offset``, ``M = 1e5`` (Figs. 1, 11-13: offsets ``b in {0, 8, 16, 32}``).
    * ``offset = c`` and ``alpha > 0`` give Fig. 16's ``c + alpha f_theta(x) + sigma(x)``.
      Our reading: ``sigma(x) = sin(M f_hf(x))`` is the same high-frequency part as in
      E.1 and ``f_smooth`` is a second random network's output, *standardised over the
      given x* (zero mean, unit standard deviation), so that with ``c = 0`` the targets
      have mean ~0 and ``alpha`` is exactly the scale of the smooth part.

    ``f_hf`` and ``f_smooth`` are independent :func:`random_mlp_init` networks
    (``k_hf, k_smooth = jax.random.split(key)``). ``offset`` and ``alpha`` may be traced.
    The values of ``sin(M f)`` depend on float32 rounding, so they are reproducible
    for a key on one platform, not bit-identical across CPU and GPU.
    """
    x = jnp.asarray(x, jnp.float32)
    in_dim = int(np.prod(x.shape[1:]))
    k_hf, k_smooth = jax.random.split(key)
    hf = jnp.sin(M * random_mlp_apply(random_mlp_init(k_hf, in_dim, width, depth), x))
    s = random_mlp_apply(random_mlp_init(k_smooth, in_dim, width, depth), x)
    s = (s - s.mean()) / (s.std() + 1e-12)
    return (offset + alpha * s + hf)[:, None].astype(jnp.float32)


def regression_stream(
    x,
    offset=0.0,
    M: float = 1e5,
    alpha=0.0,
    width: int = 64,
    depth: int = 2,
    resample: bool = False,
    next_offset=None,
) -> TaskStream:
    """:func:`random_network_targets` as a :class:`TaskStream` (App. E.1, Fig. 16).

    ``init(key)``: targets of the target network drawn from ``key`` with ``offset``.
    ``next``: with ``resample=False`` (stationary, the "pretraining" problem) returns
    the previous task unchanged; with ``resample=True`` draws a fresh target network
    from its key, with offset ``next_offset`` (default: ``offset``) -- e.g. E.1's
    fine-tuning targets with ``b`` or 0. ``y`` is ``(N, 1)`` float32, mask all ones.
    """
    if next_offset is not None and not resample:
        raise ValueError("next_offset is only used with resample=True")
    x = _as_inputs(x).astype(jnp.float32)
    n = x.shape[0]
    later_offset = offset if next_offset is None else next_offset

    def init(key) -> Task:
        return Task(
            x,
            random_network_targets(key, x, offset, M, alpha, width, depth),
            jnp.ones((n,), jnp.float32),
        )

    def next_(key, t, prev: Task) -> Task:
        if not resample:
            return prev
        # prev.x is x: reading it from the carried task avoids capturing x as a constant.
        return Task(
            prev.x,
            random_network_targets(key, prev.x, later_offset, M, alpha, width, depth),
            prev.mask,
        )

    return TaskStream(init, next_)


def drifting_targets(y, t) -> jax.Array:
    """App. E.2's drifting regression targets ``y + sin(t / 20)``.

    ``y``: fixed targets (any shape); ``t``: the number of optimisation steps taken so
    far (int or traced scalar) -- *not* a task index: the training engine must call this
    at every step with the step counter. Returns float32 with ``y``'s shape.
    """
    return jnp.asarray(y, jnp.float32) + jnp.sin(jnp.asarray(t, jnp.float32) / 20.0)


# ------------------------------------------------------------- contextual bandit (B.3)


class Transition(NamedTuple):
    """A batch of bandit transitions: ``obs`` ``(B, ...)``, ``action`` ``(B,)`` int32,
    ``reward`` ``(B,)`` float32, ``next_obs`` ``(B, ...)``."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array


def bandit_transition(
    key: jax.Array,
    x,
    y,
    num_actions: int,
    batch_size: int | None = None,
    reward_scale=1.0,
) -> Transition:
    """Transitions of App. B.3's contextual bandit over an image dataset.

    States are images ``x`` ``(N, ...)`` with labels ``y`` ``(N,)``; a uniform random
    policy picks ``action`` in ``[0, num_actions)``; ``reward = reward_scale`` (the
    paper's ``alpha``) if ``action == label`` else 0; the next state is a uniformly
    random image. With ``batch_size=None`` the batch is the whole dataset in order
    (``obs = x``); otherwise ``batch_size`` states drawn uniformly with replacement.
    Key use: ``k_obs, k_act, k_next = jax.random.split(key, 3)``.
    """
    num_actions = _check_num_classes(num_actions)
    x, y = jnp.asarray(x), jnp.asarray(y, jnp.int32)
    n = x.shape[0]
    k_obs, k_act, k_next = jax.random.split(key, 3)
    if batch_size is None:
        idx = jnp.arange(n)
    elif isinstance(batch_size, (int, np.integer)) and batch_size >= 1:
        idx = jax.random.randint(k_obs, (int(batch_size),), 0, n)
    else:
        raise ValueError(f"batch_size={batch_size!r} must be None or a positive int")
    action = jax.random.randint(k_act, idx.shape, 0, num_actions, dtype=jnp.int32)
    reward = jnp.where(action == y[idx], reward_scale, 0.0).astype(jnp.float32)
    next_obs = x[jax.random.randint(k_next, idx.shape, 0, n)]
    return Transition(x[idx], action, reward, next_obs)


# ------------------------------------------------------------------------ many streams at once


def _concat_tasks(parts: list) -> Task:
    return jax.tree_util.tree_map(lambda *a: jnp.concatenate(a, axis=0), *parts)


def stack_streams(streams) -> TaskStream:
    """``M`` streams as ONE stream over ``M x S`` models, for ``S`` seed keys.

    For training several streams in one vmapped program (chapter 6: the App. B.2 task
    families in the §4.2 modes, one group of models per intervention). The models are
    member-major: model ``m * S + s`` follows ``streams[m]`` with the key of seed ``s``,
    so models of different streams that share a seed draw from the same keys (common
    random numbers, paired comparisons).

    * ``init(keys (S, 2)) -> Task`` with leading axis ``M * S``: model ``m * S + s`` is
      ``streams[m].init(keys[s])``.
    * ``next(keys (S, 2), t, prev) -> Task``: ``prev`` has leading axis ``M * S``;
      model ``m * S + s`` is ``streams[m].next(keys[s], t, prev[m * S + s])``.

    Both are pure and jittable (``jax.jit`` them once and reuse them). The streams must
    produce tasks of the same shapes and dtypes (e.g. one base dataset in several modes).
    """
    streams = tuple(streams)
    if not streams or not all(isinstance(s, TaskStream) for s in streams):
        raise ValueError(
            f"stack_streams: `streams` must be a non-empty sequence of TaskStream, got {streams!r}"
        )

    def init(keys) -> Task:
        return _concat_tasks([jax.vmap(s.init)(keys) for s in streams])

    def next_(keys, t, prev: Task) -> Task:
        n_seeds = keys.shape[0]
        n_models = jax.tree_util.tree_leaves(prev)[0].shape[0]
        if n_models != len(streams) * n_seeds:
            raise ValueError(
                f"stack_streams: prev has {n_models} models, expected len(streams) x len(keys) = "
                f"{len(streams)} x {n_seeds}"
            )
        parts = []
        for m, s in enumerate(streams):
            own = jax.tree_util.tree_map(lambda a: a[m * n_seeds : (m + 1) * n_seeds], prev)
            parts.append(jax.vmap(s.next, in_axes=(0, None, 0))(keys, t, own))
        return _concat_tasks(parts)

    return TaskStream(init, next_)


def single_task_stream(x, y) -> TaskStream:
    """A stationary "stream" of one task: the dataset ``(x, y)`` itself, every example in
    the training set (``mask = 1``), for the engine with ``num_tasks=1`` (e.g. App. E.8,
    Fig. 24: an MLP trained on an MNIST subset with its true labels).

    ``x`` ``(N, ...)`` inputs, ``y`` ``(N,)`` int labels. ``init`` ignores its key and
    ``next`` returns the previous task unchanged.
    """
    task = Task(jnp.asarray(x), jnp.asarray(y, jnp.int32), jnp.ones(np.shape(y)[0], jnp.float32))
    return TaskStream(init=lambda key: task, next=lambda key, t, prev: prev)
