"""eNTK benchmark: generic (per-example gradients) vs fast (per-layer factorisation).

Workload (paper §3.3, Fig. 3): the eNTK of a mini-batch of 64 inputs for the paper MLP
(784-512x4-10, ReLU, ~1.2M parameters; App. B.1). Variants:

* ``generic``: ``entk(..., method="generic")``: per-example gradients, ``J J^T``.
* ``fast``: ``entk(..., method="fast")``: dense layers factorised per layer.
* ``fast_layernorm``: the same network with layer norm (norm parameters through the
  per-example subset route, dense layers factorised).
* ``fast_per_class``: ``output="per_class"`` (10 kernels) with the fast route.

``entk_benchmark()`` returns a list of records ``{workload, variant, seconds, ...}``
(``seconds``: median wall time of one jitted call after compilation) and prints them;
``benchmarks/engine.py`` merges them into ``benchmarks/results/engine.json``. Run
standalone with ``python benchmarks/entk.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp

from plasticity_lib.diagnostics import entk

WORKLOAD = "entk_mlp_784_512x4_10_n64"


def _network(norm: str):
    """The paper MLP from ``plasticity_lib.models`` if available, else a Dense stack."""
    try:
        from plasticity_lib.models import ModelConfig, make_network

        net = make_network(
            ModelConfig(
                arch="mlp", depth=4, width=512, activation="relu", norm=norm, num_outputs=10
            )
        )
        return net.init, net.apply, "plasticity_lib.models"
    except Exception:  # models.py not available: a plain Flax Dense stack
        import flax.linen as nn

        class MLP(nn.Module):
            @nn.compact
            def __call__(self, x):
                for _ in range(4):
                    x = nn.Dense(512)(x)
                    if norm == "layer":
                        x = nn.LayerNorm()(x)
                    x = nn.relu(x)
                return nn.Dense(10)(x)

        m = MLP()
        return m.init, m.apply, "flax Dense stack (fallback)"


def _time(fn, args, repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), compile_s, times


def entk_benchmark(
    n: int = 64, repeats: int = 10, generic_repeats: int = 3, quick: bool = False
) -> list:
    """Time generic vs fast eNTK on the paper MLP; return and print the records.

    Args:
      n: batch size (paper: 64).
      repeats: timed calls of the fast variants; generic_repeats: of the generic one.
      quick: fewer repeats and skip the layer-norm / per-class variants.
    Returns:
      list of dicts ``{workload, variant, seconds, compile_seconds, n, num_params,
      model, backend, devices, repeats, max_abs_diff_vs_generic}``.
    """
    if quick:
        repeats, generic_repeats = 3, 1
    x = jax.random.normal(jax.random.key(0), (n, 784))
    variants = [("generic", "none", "generic", "sum"), ("fast", "none", "fast", "sum")]
    if not quick:
        variants += [
            ("fast_layernorm", "layer", "fast", "sum"),
            ("fast_per_class", "none", "fast", "per_class"),
        ]
    records, kernels = [], {}
    for variant, norm, method, output in variants:
        init, apply, source = _network(norm)
        params = init(jax.random.key(1), x)
        num_params = int(sum(p.size for p in jax.tree_util.tree_leaves(params)))
        fn = jax.jit(lambda p, xx, a=apply, m=method, o=output: entk(a, p, xx, output=o, method=m))
        reps = generic_repeats if method == "generic" else repeats
        sec, comp, _ = _time(fn, (params, x), reps)
        k = fn(params, x)
        kernels[variant] = k
        rec = {
            "workload": WORKLOAD if norm == "none" else WORKLOAD + "_layernorm",
            "variant": variant,
            "seconds": sec,
            "compile_seconds": comp,
            "n": n,
            "num_params": num_params,
            "output": output,
            "model": source,
            "backend": jax.default_backend(),
            "devices": str(jax.devices()[0]),
            "cpu_count": os.cpu_count(),
            "repeats": reps,
        }
        if variant == "fast" and "generic" in kernels:
            diff = jnp.abs(kernels["fast"] - kernels["generic"])
            rec["max_abs_diff_vs_generic"] = float(jnp.max(diff))
            rec["max_rel_diff_vs_generic"] = float(
                jnp.max(diff) / jnp.max(jnp.abs(kernels["generic"]))
            )
            rec["speedup_vs_generic"] = records[0]["seconds"] / sec
        records.append(rec)
        print(json.dumps(rec), flush=True)
    return records


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    entk_benchmark(n=args.n, repeats=args.repeats, quick=args.quick)
