"""Networks of the paper: MLP, CNN, ResNet-18 and a residual MLP, with configurable
normalisation.

Paper: Lyle et al. (2024), App. B.1 (architectures: MLP width 512 / depth 4; CNN with
``k`` = 4 convolutional layers of 32 channels followed by fully connected layers of
width 256; ResNet-18), §4.1 / App. D.2 / E.9 (normalisation variants, layer norm
*before* batch norm when both are used), App. B.3 (two-hot categorical output head).

Public API
----------
``ModelConfig``
    Frozen, hashable dataclass (a static argument of jitted functions).
``make_network(cfg) -> Network``
    ``network.init(key, example_x) -> params``,
    ``network.apply(params, x) -> outputs``,
    ``network.apply_with_intermediates(params, x, perturbations=None)
    -> (outputs, Intermediates)``.
``Intermediates``
    NamedTuple ``(preacts, acts, features, dense_inputs)``, see its docstring.

Shapes
------
* Inputs: MLP and residual MLP ``(batch, features)`` (any trailing shape is flattened);
  CNN and
  ResNet-18 ``(batch, H, W, C)`` (``(batch, H, W)`` gets a channel axis).
* Outputs: head ``"linear"``: ``(batch, num_outputs)``; head ``"twohot"``:
  ``(batch, num_values, num_outputs)`` logits over ``num_outputs`` atoms (B.3) for each of
  ``num_values`` scalar predictions; the atom values are ``cfg.atoms()`` /
  ``network.atoms`` (``linspace(twohot_min, twohot_max, num_outputs)``; with the
  defaults -10..10 and 21 atoms they are the integers of B.3).

Parameter tree (``params`` is the plain dict ``variables["params"]``; it is the whole
model state: batch norm uses the statistics of the batch it is given, no running
averages)
--------------------------------------------------------------------------------------
MLP (``depth`` hidden layers ``i = 0..depth-1``)::

    params["Dense_i"]["kernel"]  (fan_in, width)   params["Dense_i"]["bias"] (width,)
    params["Dense_i_norm"][...]  per-unit vectors (width,) (absent when norm == "none")
    params["Head"]["kernel"]     (width, num_outputs * num_values), ["bias"]

CNN (``depth`` conv layers ``i``, then ``cnn_dense_layers`` dense layers ``j``)::

    params["Conv_i"]["kernel"]   (3, 3, C_in, channels)  (HWIO)   ["bias"] (channels,)
    params["Conv_i_norm"][...]   per-channel vectors (channels,)
    params["Dense_j"]["kernel"]  (fan_in, width)  ["bias"];  params["Dense_j_norm"]
    params["Head"]               as for the MLP

ResNet-18 (CIFAR-style stem: 3x3 conv stride 1, no max-pool; 4 stages of 2 basic
blocks, widths w, 2w, 4w, 8w, stride 2 at the first block of stages 2-4; global average
pooling; blocks ``b = 0..7``)::

    params["stem"], params["stem_norm"]
    params["block{b}_conv1"], ["block{b}_norm1"], ["block{b}_conv2"], ["block{b}_norm2"]
    params["block{b}_proj"], ["block{b}_proj_norm"]   (1x1 stride-2 shortcut, blocks 2, 4, 6)
    params["Head"]

Residual MLP (``arch="resmlp"``; ``depth`` pre-activation residual blocks ``b``, the
CPU stand-in for ResNet-18 in chapter 9 / App. E.8)::

    params["Dense_in"]            (fan_in, width)  input projection (no nonlinearity)
    params["block{b}_norm1"], ["block{b}_dense1"] (width, width),
    params["block{b}_norm2"], ["block{b}_dense2"] (width, width)
    params["final_norm"]          before the last nonlinearity
    params["Head"]                (width, num_outputs)

  Block ``b`` maps ``h -> h + dense2(phi(norm2(dense1(phi(norm1(h))))))`` (He et al.'s
  pre-activation ordering); after the last block the features are
  ``phi(final_norm(h))``. With ``block{b}_dense2`` zero (kernel and bias) block ``b`` is
  the identity.

Norm parameter leaves (``norm_affine=True``): ``"scale"``/``"bias"`` for a single
normalisation; ``"ln_scale"``, ``"ln_bias"``, ``"bn_scale"``, ``"bn_bias"`` for
``"layer_batch"``. All are per unit (dense) or per channel (conv), shape ``(units,)``.

Layers whose output feeds a nonlinearity are the *hidden layers*; their names, in order,
are ``network.layer_names`` (``"Dense_0"``, ..., ``"Conv_0"``, ..., ResNet:
``"stem"``, ``"block{b}_conv1"``, ``"block{b}_out"``; residual MLP: ``"block{b}_act1"``,
``"block{b}_act2"``, ..., ``"final"``). The dense layers (including the
head) are ``network.dense_names`` in forward order; ``Intermediates.dense_inputs[k]`` is
the input of ``params[dense_names[k]]``.

Fast eNTK route for dense layers (App. C)
-----------------------------------------
For a dense layer ``z = a @ W + b`` the eNTK contribution is
``K_W(x, x')[o, o'] = <a(x), a(x')> * <d f_o / d z (x), d f_o' / d z (x')>`` (plus the bias
term ``<d f_o/dz, d f_o'/dz>``). ``a`` is ``Intermediates.dense_inputs[k]``; the
back-propagated signals ``d f / d z`` are obtained with ``jax.vjp`` / ``jax.jacrev``
with respect to ``perturbations``: ``apply_with_intermediates(params, x,
perturbations=eps)`` adds ``eps[k]`` (shape ``(batch, fan_out_k)``, zeros for the
unperturbed function) to the *linear output* of dense layer ``k`` (before normalisation
and nonlinearity), in the order of ``network.dense_names``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "ARCHS",
    "ACTIVATIONS",
    "NORMS",
    "HEADS",
    "CONV_IMPLS",
    "KERNEL_INITS",
    "ModelConfig",
    "Intermediates",
    "UnitLayer",
    "Network",
    "make_network",
    "shift_to_biases",
    "activation_fn",
    "normalize",
    "im2col",
    "conv2d",
    "resolve_conv_impl",
]

Array = jax.Array

ARCHS = ("mlp", "cnn", "resnet18", "resmlp")
ACTIVATIONS = ("relu", "gelu", "leaky_relu", "tanh", "abs", "identity")
NORMS = (
    "none",
    "layer",
    "batch",
    "batch_center",
    "feature_scale",
    "batch_center_feature_scale",
    "layer_batch",
)
HEADS = ("linear", "twohot")
CONV_IMPLS = ("auto", "im2col", "lax")
KERNEL_INITS = ("lecun_normal", "he_normal")

_DEFAULT_DEPTH = {"mlp": 4, "cnn": 4, "resnet18": None, "resmlp": 8}
_DEFAULT_WIDTH = {"mlp": 512, "cnn": 256, "resnet18": 64, "resmlp": 128}


def _check_choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        raise ValueError(
            f"ModelConfig.{name}={value!r} is not allowed; choose one of {tuple(allowed)}"
        )


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of one network (App. B.1). Frozen and hashable.

    Attributes:
      arch: ``"mlp"`` | ``"cnn"`` | ``"resnet18"`` | ``"resmlp"`` (residual MLP of
        pre-activation blocks, see the module docstring).
      depth: MLP: number of hidden dense layers (default 4); CNN: number of 3x3 conv
        layers (default 4); residual MLP: number of residual blocks (default 8). Must be
        ``None`` for ``"resnet18"`` (fixed at 18 layers).
      width: MLP: hidden width (default 512); CNN: width of its hidden dense layers
        (default 256); ResNet-18: channels of the first stage (default 64); residual
        MLP: width of the residual stream and of every block (default 128).
      channels: CNN conv channels (default 32, B.1).
      cnn_dense_layers: CNN hidden dense layers after the convolutions (default 2,
        "two fully connected layers of 256"), followed by the linear head.
      cnn_pool_every: CNN: 2x2 max-pooling (stride 2) after every ``cnn_pool_every``-th
        conv layer (default 2: 32x32 -> 16 -> 8 for depth 4, so the flattened conv
        output has 8*8*32 = 2048 features; 0 disables pooling). Convs are stride 1, SAME.
        B.1 does not specify strides or pooling; this is our choice.
      activation: ``relu | gelu | leaky_relu (slope 0.01) | tanh | abs | identity``.
      activation_shift: a constant ``c`` added to the input of every nonlinearity:
        ``phi_c(z) = phi(z + c)`` (App. D.3, "off-centre" ReLU; default 0: none). The
        recorded ``Intermediates.preacts`` are then ``z + c``, the argument of ``phi``,
        so the unit diagnostics (``diagnostics.units``, named by ``activation``) apply
        unchanged.
      norm: normalisation applied to every hidden layer's linear output, before its
        nonlinearity (§4.1, D.2, E.9): ``none``; ``layer`` (per example, over the
        features: all units of a dense layer, all of H, W, C of a conv layer);
        ``batch`` (per unit / per channel over the batch (and H, W)); ``batch_center``
        (batch-axis mean subtraction only); ``feature_scale`` (division by the
        feature-axis standard deviation only, no centring); ``batch_center_feature_scale``
        (E.9: subtract the batch mean, then divide by the feature-axis std of the
        result); ``layer_batch`` (layer norm, then batch norm; B.1 order).
      norm_affine: learnable per-unit scale (init 1) and offset (init 0) after each
        normalisation (default True).
      norm_eps: epsilon added to variances (default 1e-5).
      use_bias: biases in dense and conv layers (default True).
      num_outputs: linear head: number of outputs; two-hot head: number of atoms.
      head: ``"linear"`` | ``"twohot"`` (categorical over atoms, B.3).
      num_values: two-hot head: number of scalar predictions (e.g. actions), each with
        ``num_outputs`` atom logits (default 1).
      twohot_min, twohot_max: two-hot atom range ``[-M, M]`` (B.3; default -10, 10).
      kernel_init: ``"lecun_normal"`` (Flax / Haiku default, variance 1/fan_in) |
        ``"he_normal"`` (variance 2/fan_in). Biases start at 0.
      conv_impl: ``"auto"`` (``"im2col"`` on CPU, ``"lax"`` elsewhere) | ``"im2col"``
        (explicit patch extraction + matmul) | ``"lax"`` (``lax.conv_general_dilated``).
        Both routes compute the same function with the same parameters. Why: on XLA:CPU
        (jax 0.10.2) the weight-gradient convolutions *inside a* ``lax.scan`` (the
        engine's training loop) get a layout (``f01b_i01o->01bf``) that misses the fast
        convolution path: a paper-CNN training step is ~60x slower than with im2col,
        although a single jitted ``grad`` outside a loop is as fast with ``lax``.
    """

    arch: str = "mlp"
    depth: Optional[int] = None
    width: Optional[int] = None
    channels: int = 32
    cnn_dense_layers: int = 2
    cnn_pool_every: int = 2
    activation: str = "relu"
    activation_shift: float = 0.0
    norm: str = "none"
    norm_affine: bool = True
    norm_eps: float = 1e-5
    use_bias: bool = True
    num_outputs: int = 10
    head: str = "linear"
    num_values: int = 1
    twohot_min: float = -10.0
    twohot_max: float = 10.0
    kernel_init: str = "lecun_normal"
    conv_impl: str = "auto"

    def __post_init__(self) -> None:
        _check_choice("arch", self.arch, ARCHS)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("norm", self.norm, NORMS)
        _check_choice("head", self.head, HEADS)
        _check_choice("kernel_init", self.kernel_init, KERNEL_INITS)
        _check_choice("conv_impl", self.conv_impl, CONV_IMPLS)
        if self.arch == "resnet18" and self.depth is not None:
            raise ValueError(
                "ModelConfig.depth must be None for arch='resnet18' (the depth is fixed)"
            )
        if self.depth is not None and self.depth < (0 if self.arch == "cnn" else 1):
            raise ValueError(f"ModelConfig.depth={self.depth!r} must be a positive integer")
        if not np.isfinite(float(self.activation_shift)):
            raise ValueError(
                f"ModelConfig.activation_shift={self.activation_shift!r} must be a finite number"
            )
        if self.width is not None and self.width < 1:
            raise ValueError(f"ModelConfig.width={self.width!r} must be a positive integer")
        for name in ("channels", "num_outputs", "num_values"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ModelConfig.{name}={getattr(self, name)!r} must be >= 1")
        if self.cnn_dense_layers < 0 or self.cnn_pool_every < 0:
            raise ValueError("ModelConfig.cnn_dense_layers and cnn_pool_every must be >= 0")
        if self.head == "twohot":
            if self.num_outputs < 2:
                raise ValueError("ModelConfig.num_outputs (number of two-hot atoms) must be >= 2")
            if not self.twohot_max > self.twohot_min:
                raise ValueError(
                    f"ModelConfig.twohot_max={self.twohot_max!r} must exceed "
                    f"twohot_min={self.twohot_min!r}"
                )
        elif self.num_values != 1:
            raise ValueError(
                "ModelConfig.num_values is only used with head='twohot'; leave it at 1"
            )

    @property
    def resolved_depth(self) -> Optional[int]:
        """Depth with the architecture default filled in (None for ResNet-18)."""
        return _DEFAULT_DEPTH[self.arch] if self.depth is None else self.depth

    @property
    def resolved_width(self) -> int:
        """Width with the architecture default filled in."""
        return _DEFAULT_WIDTH[self.arch] if self.width is None else self.width

    def atoms(self) -> np.ndarray:
        """Two-hot atom values ``(num_outputs,)`` float32 (B.3); only for head='twohot'."""
        if self.head != "twohot":
            raise ValueError("ModelConfig.atoms() needs head='twohot'")
        return np.linspace(self.twohot_min, self.twohot_max, self.num_outputs, dtype=np.float32)


class Intermediates(NamedTuple):
    """What one forward pass records (used by ``diagnostics`` and ``train``).

    Attributes:
      preacts: tuple, one array per hidden layer (``network.layer_names``): the input to
        the nonlinearity, i.e. the layer's linear output *after* normalisation (and the
        residual addition for a ResNet block output). Dense layers ``(batch, units)``;
        conv layers flattened to ``(batch, H*W*C)`` in row-major ``(H, W, C)`` order, so
        ``preacts[l].reshape(batch, H*W, C)`` recovers per-channel values (C = the
        layer's number of channels, e.g. ``params[name]["kernel"].shape[-1]``).
      acts: the same after the nonlinearity (before any pooling).
      features: penultimate representation ``(batch, d)``: the input of the head.
      dense_inputs: tuple, one ``(batch, fan_in)`` array per dense layer in
        ``network.dense_names`` order (the last one equals ``features``); with
        the ``perturbations`` hook this is what the fast dense eNTK route needs.
    """

    preacts: tuple
    acts: tuple
    features: Array
    dense_inputs: tuple


class UnitLayer(NamedTuple):
    """Where the parameters of one hidden layer's units live (used by ReDo).

    ``incoming``: ``((path, axis), ...)``: leaves whose index ``u`` along ``axis``
    belongs to unit ``u`` (kernel columns, bias, norm scale/offset). ``outgoing``:
    ``((path, axis), ...)``: leaves of the next layer whose index along ``axis``
    reads unit ``u`` (for conv -> flatten -> dense, index ``i`` reads channel
    ``i % num_units``). ``path`` is a tuple of dict keys into ``params``.
    """

    name: str
    num_units: int
    incoming: tuple
    outgoing: tuple


# ----------------------------------------------------------------------------------
# Building blocks (pure functions)
# ----------------------------------------------------------------------------------


def activation_fn(name: str) -> Callable[[Array], Array]:
    """Elementwise nonlinearity by name (``ACTIVATIONS``); leaky ReLU has slope 0.01."""
    fns = {
        "relu": jax.nn.relu,
        "gelu": jax.nn.gelu,
        "leaky_relu": lambda z: jax.nn.leaky_relu(z, negative_slope=0.01),
        "tanh": jnp.tanh,
        "abs": jnp.abs,
        "identity": lambda z: z,
    }
    if name not in fns:
        raise ValueError(f"activation={name!r} is not allowed; choose one of {ACTIVATIONS}")
    return fns[name]


def _standardize(
    x: Array, axes: tuple, eps: float, center: bool = True, scale: bool = True
) -> Array:
    mean = jnp.mean(x, axis=axes, keepdims=True)
    y = x - mean if center else x
    if scale:
        var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
        y = y * jax.lax.rsqrt(var + eps)
    return y


def normalize(x: Array, kind: str, eps: float = 1e-5) -> Array:
    """Parameter-free normalisation of a hidden layer's linear output (§4.1, D.2, E.9).

    Args:
      x: ``(batch, units)`` or ``(batch, H, W, C)``.
      kind: one of ``NORMS``. "Feature axis" = every axis but the batch axis (all units of
        a dense layer; H, W and C of a conv layer). "Batch axis" = every axis but the
        last (batch and, for conv layers, H and W: statistics per channel).
      eps: added to the variance.

    Returns an array of the shape of ``x``. ``layer_batch`` applies the layer norm then
    the batch norm (without the affine step between them; ``_Norm`` inserts it).
    """
    feat = tuple(range(1, x.ndim))
    batch = tuple(range(0, x.ndim - 1))
    if kind == "none":
        return x
    if kind == "layer":
        return _standardize(x, feat, eps)
    if kind == "batch":
        return _standardize(x, batch, eps)
    if kind == "batch_center":
        return _standardize(x, batch, eps, scale=False)
    if kind == "feature_scale":
        return _standardize(x, feat, eps, center=False)
    if kind == "batch_center_feature_scale":
        return _standardize(_standardize(x, batch, eps, scale=False), feat, eps, center=False)
    if kind == "layer_batch":
        return _standardize(_standardize(x, feat, eps), batch, eps)
    raise ValueError(f"norm={kind!r} is not allowed; choose one of {NORMS}")


def im2col(x: Array, kernel_size: int, stride: int = 1) -> Array:
    """Patches of a NHWC input for a SAME-padded convolution, by explicit slicing.

    Args:
      x: ``(batch, H, W, C)``.
    Returns:
      ``(batch, ceil(H/stride), ceil(W/stride), k*k*C)`` with feature order
      ``(kh, kw, c)``, matching ``kernel.reshape(k*k*C, C_out)`` of an HWIO kernel.
      Padding follows XLA/TF "SAME" (extra padding at the high end).
    """
    _, h, w, _ = x.shape
    k, s = kernel_size, stride
    oh, ow = -(-h // s), -(-w // s)
    ph = max((oh - 1) * s + k - h, 0)
    pw = max((ow - 1) * s + k - w, 0)
    if ph or pw:
        x = jnp.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    cols = [
        x[:, i : i + (oh - 1) * s + 1 : s, j : j + (ow - 1) * s + 1 : s, :]
        for i in range(k)
        for j in range(k)
    ]
    return cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)


def resolve_conv_impl(impl: str) -> str:
    """``"auto"`` -> ``"im2col"`` on the CPU backend, ``"lax"`` on GPU/TPU."""
    if impl == "auto":
        return "im2col" if jax.default_backend() == "cpu" else "lax"
    _check_choice("conv_impl", impl, CONV_IMPLS)
    return impl


def conv2d(x: Array, kernel: Array, stride: int = 1, impl: str = "auto") -> Array:
    """SAME-padded 2-D convolution, NHWC input, HWIO kernel, without bias.

    ``impl="im2col"`` extracts patches by slicing and multiplies by the reshaped kernel;
    ``impl="lax"`` calls ``lax.conv_general_dilated``. Same function, same parameters.
    Returns ``(batch, ceil(H/stride), ceil(W/stride), C_out)``.
    """
    impl = resolve_conv_impl(impl)
    k = kernel.shape[0]
    if impl == "lax":
        return jax.lax.conv_general_dilated(
            x, kernel, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
    patches = im2col(x, k, stride)
    return patches @ kernel.reshape(-1, kernel.shape[-1])


def _max_pool2(x: Array) -> Array:
    """2x2 max-pooling, stride 2, by reshape (an odd trailing row/column is dropped)."""
    b, h, w, c = x.shape
    x = x[:, : h - h % 2, : w - w % 2, :]
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


# ----------------------------------------------------------------------------------
# Flax modules
# ----------------------------------------------------------------------------------


def _kernel_init(name: str):
    if name == "he_normal":
        return nn.initializers.variance_scaling(2.0, "fan_in", "truncated_normal")
    return nn.initializers.lecun_normal()


class _Norm(nn.Module):
    kind: str
    affine: bool
    eps: float

    @nn.compact
    def __call__(self, x: Array) -> Array:
        c = x.shape[-1]

        def affine(y, prefix):
            if not self.affine:
                return y
            scale = self.param(prefix + "scale", nn.initializers.ones, (c,), jnp.float32)
            bias = self.param(prefix + "bias", nn.initializers.zeros, (c,), jnp.float32)
            return y * scale + bias

        if self.kind == "layer_batch":
            y = affine(normalize(x, "layer", self.eps), "ln_")
            return affine(normalize(y, "batch", self.eps), "bn_")
        return affine(normalize(x, self.kind, self.eps), "")


class _Conv(nn.Module):
    features: int
    kernel_size: int
    stride: int
    use_bias: bool
    kernel_init: str
    impl: str

    @nn.compact
    def __call__(self, x: Array) -> Array:
        shape = (self.kernel_size, self.kernel_size, x.shape[-1], self.features)
        kernel = self.param("kernel", _kernel_init(self.kernel_init), shape, jnp.float32)
        y = conv2d(x, kernel, self.stride, self.impl)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        return y


class _Model(nn.Module):
    cfg: ModelConfig

    @nn.compact
    def __call__(self, x: Array, perturbations: Optional[Sequence[Array]] = None):
        cfg = self.cfg
        act = activation_fn(cfg.activation)
        preacts: list = []
        acts: list = []
        dense_inputs: list = []

        def dense(h, features, name):
            k = len(dense_inputs)
            dense_inputs.append(h)
            z = nn.Dense(
                features,
                use_bias=cfg.use_bias,
                kernel_init=_kernel_init(cfg.kernel_init),
                name=name,
            )(h)
            if perturbations is not None:
                z = z + perturbations[k]
            return z

        def conv(h, features, name, kernel_size=3, stride=1):
            return _Conv(
                features,
                kernel_size,
                stride,
                cfg.use_bias,
                cfg.kernel_init,
                cfg.conv_impl,
                name=name,
            )(h)

        def norm(z, name):
            if cfg.norm == "none":
                return z
            return _Norm(cfg.norm, cfg.norm_affine, cfg.norm_eps, name=name)(z)

        shift = float(cfg.activation_shift)

        def nonlinearity(z):
            if shift != 0.0:  # static: the default network's program is unchanged
                z = z + shift
            preacts.append(z.reshape(z.shape[0], -1))
            a = act(z)
            acts.append(a.reshape(a.shape[0], -1))
            return a

        if cfg.arch == "mlp":
            h = x.reshape(x.shape[0], -1)
            for i in range(cfg.resolved_depth):
                h = nonlinearity(
                    norm(dense(h, cfg.resolved_width, f"Dense_{i}"), f"Dense_{i}_norm")
                )
        elif cfg.arch == "cnn":
            h = x[..., None] if x.ndim == 3 else x
            for i in range(cfg.resolved_depth):
                h = nonlinearity(norm(conv(h, cfg.channels, f"Conv_{i}"), f"Conv_{i}_norm"))
                if cfg.cnn_pool_every and (i + 1) % cfg.cnn_pool_every == 0:
                    h = _max_pool2(h)
            h = h.reshape(h.shape[0], -1)
            for j in range(cfg.cnn_dense_layers):
                h = nonlinearity(
                    norm(dense(h, cfg.resolved_width, f"Dense_{j}"), f"Dense_{j}_norm")
                )
        elif cfg.arch == "resmlp":
            w = cfg.resolved_width
            h = dense(x.reshape(x.shape[0], -1), w, "Dense_in")
            for b in range(cfg.resolved_depth):
                y = nonlinearity(norm(h, f"block{b}_norm1"))
                y = nonlinearity(norm(dense(y, w, f"block{b}_dense1"), f"block{b}_norm2"))
                h = h + dense(y, w, f"block{b}_dense2")
            h = nonlinearity(norm(h, "final_norm"))
        else:  # resnet18
            h = x[..., None] if x.ndim == 3 else x
            w = cfg.resolved_width
            h = nonlinearity(norm(conv(h, w, "stem"), "stem_norm"))
            b = 0
            for stage, mult in enumerate((1, 2, 4, 8)):
                for blk in range(2):
                    stride = 2 if (stage > 0 and blk == 0) else 1
                    out_c = w * mult
                    y = nonlinearity(
                        norm(conv(h, out_c, f"block{b}_conv1", 3, stride), f"block{b}_norm1")
                    )
                    y = norm(conv(y, out_c, f"block{b}_conv2"), f"block{b}_norm2")
                    if stride != 1 or h.shape[-1] != out_c:
                        h = norm(conv(h, out_c, f"block{b}_proj", 1, stride), f"block{b}_proj_norm")
                    h = nonlinearity(y + h)
                    b += 1
            h = jnp.mean(h, axis=(1, 2))

        features = h
        n_out = cfg.num_outputs * (cfg.num_values if cfg.head == "twohot" else 1)
        out = dense(h, n_out, "Head")
        if cfg.head == "twohot":
            out = out.reshape(out.shape[0], cfg.num_values, cfg.num_outputs)
        return out, Intermediates(tuple(preacts), tuple(acts), features, tuple(dense_inputs))


# ----------------------------------------------------------------------------------
# Network facade
# ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Network:
    """A model with pure functions over a plain ``params`` dict. Hashable by ``cfg``.

    Build with ``make_network(cfg)``. See the module docstring for the parameter layout.
    """

    cfg: ModelConfig
    module: _Model = dataclasses.field(compare=False, hash=False, repr=False)

    def init(self, key: Array, example_x: Array) -> dict:
        """Initial parameters for inputs shaped like ``example_x`` ``(batch, ...)``.

        Kernels (dense ``(fan_in, out)`` and conv HWIO) are drawn from a truncated normal
        (+-2 sd, rescaled to the target variance exactly as Flax's
        ``variance_scaling(..., "truncated_normal")``) with variance ``1/fan_in``
        (``lecun_normal``) or ``2/fan_in`` (``he_normal``), ``fan_in = prod(shape[:-1])``;
        biases and norm offsets are 0, norm scales 1. All kernels come from ONE
        ``truncated_normal`` draw of their total size (sliced in parameter-tree order):
        same distribution as Flax's per-parameter initialisers, much cheaper to compile.
        """
        x = jax.ShapeDtypeStruct(tuple(np.shape(example_x)), jnp.float32)
        shapes = jax.eval_shape(lambda x: self.module.init(jax.random.PRNGKey(0), x), x)["params"]
        leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
        names = [str(getattr(p[-1], "key", p[-1])) for p, _ in leaves]
        kernel_sizes = [int(np.prod(l.shape)) for (_, l), n in zip(leaves, names) if n == "kernel"]
        z = jax.random.truncated_normal(key, -2.0, 2.0, (max(sum(kernel_sizes), 1),), jnp.float32)
        gain = 2.0 if self.cfg.kernel_init == "he_normal" else 1.0
        out, off = [], 0
        for (_, leaf), name in zip(leaves, names):
            if name == "kernel":
                size = int(np.prod(leaf.shape))
                fan_in = int(np.prod(leaf.shape[:-1]))
                std = np.sqrt(gain / fan_in) / 0.87962566103423978
                out.append(z[off : off + size].reshape(leaf.shape) * jnp.float32(std))
                off += size
            elif name.endswith("scale"):
                out.append(jnp.ones(leaf.shape, jnp.float32))
            else:
                out.append(jnp.zeros(leaf.shape, jnp.float32))
        return jax.tree_util.tree_unflatten(treedef, out)

    def apply(self, params: dict, x: Array) -> Array:
        """Outputs: ``(batch, num_outputs)``, or ``(batch, num_values, atoms)`` (two-hot)."""
        return self.module.apply({"params": params}, x)[0]

    def apply_with_intermediates(
        self, params: dict, x: Array, perturbations: Optional[Sequence[Array]] = None
    ) -> tuple:
        """``(outputs, Intermediates)``; ``perturbations`` (optional) are added to the
        linear outputs of the dense layers (``dense_names`` order), see module docstring."""
        return self.module.apply({"params": params}, x, perturbations)

    # --- static structure -------------------------------------------------------
    @property
    def atoms(self) -> np.ndarray:
        """Two-hot atom values ``(num_outputs,)`` (head='twohot' only)."""
        return self.cfg.atoms()

    @property
    def layer_names(self) -> tuple:
        """Names of the hidden layers, one per entry of ``Intermediates.preacts``."""
        cfg = self.cfg
        if cfg.arch == "mlp":
            return tuple(f"Dense_{i}" for i in range(cfg.resolved_depth))
        if cfg.arch == "cnn":
            return tuple(f"Conv_{i}" for i in range(cfg.resolved_depth)) + tuple(
                f"Dense_{j}" for j in range(cfg.cnn_dense_layers)
            )
        if cfg.arch == "resmlp":
            names = []
            for b in range(cfg.resolved_depth):
                names += [f"block{b}_act1", f"block{b}_act2"]
            return tuple(names) + ("final",)
        names = ["stem"]
        for b in range(8):
            names += [f"block{b}_conv1", f"block{b}_out"]
        return tuple(names)

    @property
    def dense_names(self) -> tuple:
        """Dense layers in forward order, the head last (``Intermediates.dense_inputs``)."""
        cfg = self.cfg
        if cfg.arch == "mlp":
            n = cfg.resolved_depth
        elif cfg.arch == "cnn":
            n = cfg.cnn_dense_layers
        elif cfg.arch == "resmlp":
            blocks = [f"block{b}_dense{k}" for b in range(cfg.resolved_depth) for k in (1, 2)]
            return ("Dense_in", *blocks, "Head")
        else:
            n = 0
        return tuple(f"Dense_{i}" for i in range(n)) + ("Head",)

    def unit_layers(self, params: dict) -> tuple:
        """Per hidden layer, where its units' incoming/outgoing parameters are.

        Used by ReDo (Sokar et al., 2023). Supported for ``mlp`` and ``cnn`` (the paper does
        not apply ReDo to ResNets, §4.1); a conv unit is a channel.
        Returns a tuple of ``UnitLayer``.
        """
        if self.cfg.arch in ("resnet18", "resmlp"):
            raise ValueError(
                f"unit_layers/ReDo is not supported for arch={self.cfg.arch!r} (residual "
                "networks; paper §4.1 does not apply ReDo to them)"
            )
        names = self.layer_names
        out = []
        for li, name in enumerate(names):
            nxt = names[li + 1] if li + 1 < len(names) else "Head"
            num = int(params[name]["kernel"].shape[-1])
            in_axis = params[name]["kernel"].ndim - 1
            incoming = [((name, "kernel"), in_axis)]
            if "bias" in params[name]:
                incoming.append(((name, "bias"), 0))
            if name + "_norm" in params:
                for leaf in sorted(params[name + "_norm"]):
                    incoming.append(((name + "_norm", leaf), 0))
            nk = params[nxt]["kernel"]
            out_axis = 2 if nk.ndim == 4 else 0
            out.append(UnitLayer(name, num, tuple(incoming), (((nxt, "kernel"), out_axis),)))
        return tuple(out)


def make_network(cfg: ModelConfig) -> Network:
    """Build the ``Network`` for ``cfg`` (App. B.1). ``cfg`` must be a ``ModelConfig``."""
    if not isinstance(cfg, ModelConfig):
        raise ValueError(f"make_network expects a ModelConfig, got {type(cfg).__name__}")
    return Network(cfg, _Model(cfg))


def shift_to_biases(network: "Network", params: dict, c) -> dict:
    """Parameters of the *unshifted* network equal to ``network`` with
    ``activation_shift = c`` (App. D.3): ``c`` added to the bias that precedes each
    nonlinearity (the norm offset ``"bias"`` when ``cfg.norm`` is an affine
    normalisation, else the dense bias). ``phi(z + c)`` is then computed by the
    ``activation_shift = 0`` network with the returned parameters. Because Adam (and SGD)
    are invariant to a translation of the parameters, training the returned parameters
    follows the shifted network's trajectory, so shifts ``c`` can be a traced,
    ``vmap``-ed value instead of one compiled program each.

    Supported for ``arch="mlp"`` with ``use_bias`` (or an affine norm). ``c``: a scalar
    (may be traced).
    """
    cfg = network.cfg
    if cfg.arch != "mlp":
        raise ValueError(f"shift_to_biases supports arch='mlp', got {cfg.arch!r}")
    if cfg.norm != "none" and not cfg.norm_affine:
        raise ValueError("shift_to_biases needs norm_affine=True when norm is not 'none'")
    if cfg.norm == "layer_batch":
        raise ValueError("shift_to_biases does not support norm='layer_batch'")
    out = dict(params)
    for name in network.layer_names:
        key = name + "_norm" if cfg.norm != "none" else name
        if "bias" not in out[key]:
            raise ValueError(f"shift_to_biases: {key!r} has no bias (use_bias=False?)")
        out[key] = {**out[key], "bias": out[key]["bias"] + c}
    return out
