"""Throughput benchmark of the training engine (not a test).

Measures optimizer steps per second per model with ``plasticity_lib.train.train_steps``
(the compiled scan the stream engine uses), after compilation, with
``block_until_ready``. ``steps_per_s_per_model`` = (optimizer steps summed over the models)
/ (wall time) / (number of models): for ``vmap8`` and ``sequential8`` it is how fast each
of 8 models gets trained when all 8 must be; the aggregate rate is 8 times that.
Workloads:

* ``paper_mlp``: 784-512x4-10 MLP (App. B.1), Adam, batch 128;
* ``small_mlp``: 784-128x2-10, Adam, batch 64;

each as ``single`` (one model), ``vmap8`` (8 seeds vmapped in one program) and
``sequential8`` (8 single models trained one after another); plus the machine's float32
matmul rate (``roofline``: a large ``jnp.dot``), the achieved GFLOP/s of each variant
(fwd+bwd counted as 3x the forward matmul FLOPs) and its fraction of the roofline; and
the paper CNN (4 conv layers of 32 channels, batch 128, 32x32x3 inputs) with the
``im2col`` and ``lax`` convolution routes.

Sections are functions registered in ``SECTIONS``; each returns a list of records
``{"workload", "variant", "steps_per_s_per_model", "gflops", "roofline_gflops",
"roofline_fraction", ...}``. Other sections (e.g. ``entk`` from the diagnostics module)
register themselves with ``register_section(name, fn)`` where ``fn(ctx) -> records``
and ``ctx`` holds ``roofline_gflops`` and ``quick``.

Usage::

    python benchmarks/engine.py                 # all sections
    python benchmarks/engine.py --sections mlp  # some sections
    python benchmarks/engine.py --quick         # fewer steps (smoke)

Writes ``benchmarks/results/engine.json``: a JSON list of records (the ``matmul``
``roofline`` record carries the machine information and load average, a final
``summary``/``targets`` record says whether the target was met: the paper MLP's single
model at >= 70 % of the matmul roofline; the vmap8/sequential8 ratio is reported for
information, its former 3x target is retired). The comparison with a plain PyTorch loop
is ``benchmarks/anchor.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from plasticity_lib.models import ModelConfig, make_network
from plasticity_lib.train import TrainConfig, init_state, train_steps

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "engine.json")


class _Task(NamedTuple):
    x: jax.Array
    y: jax.Array
    mask: jax.Array


SECTIONS: dict[str, Callable] = {}


def register_section(name: str, fn: Callable) -> None:
    """Add a benchmark section ``fn(ctx: dict) -> list[dict]`` (records as above)."""
    SECTIONS[name] = fn


# ---------------------------------------------------------------------------- helpers


_CPU_TIMES: list = []  # process CPU seconds of the best run of the last _best_time call
_TIMED_STEPS: list = []  # steps per model in the last timed run


def _best_time(fn, repeats: int) -> float:
    """Minimum wall time of ``fn()`` (which must block) over ``repeats`` runs.

    Also records the process CPU time (all threads) of that run in ``_CPU_TIMES[-1]``: on
    a shared machine the CPU-time ratio is a load-robust estimate of the wall-time ratio
    an idle machine would show.
    """
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        c, t = time.process_time(), time.perf_counter()
        fn()
        dt, dc = time.perf_counter() - t, time.process_time() - c
        if dt < best:
            best, best_cpu = dt, dc
    _CPU_TIMES.append(best_cpu)
    return best


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """float32 GFLOP/s of an ``(n, n) @ (n, n)`` product (jitted, best of ``repeats``)."""
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
    b = jnp.asarray(np.random.default_rng(1).normal(size=(n, n)), jnp.float32)
    f = jax.jit(jnp.dot)
    f(a, b).block_until_ready()
    dt = _best_time(lambda: f(a, b).block_until_ready(), repeats)
    return 2 * n**3 / dt / 1e9


def _cpu_rate(flop: float) -> float:
    """GFLOP per CPU-second of the last timed run."""
    return flop / max(_CPU_TIMES[-1], 1e-9) / 1e9


def _mlp_flops_per_step(in_dim: int, width: int, depth: int, out: int, batch: int) -> float:
    dims = [in_dim] + [width] * depth + [out]
    fwd = 2 * batch * sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    return 3.0 * fwd


def paper_cnn_flops_per_step(batch: int = 128) -> float:
    """fwd+bwd matmul/conv FLOPs (3x forward) of one paper-CNN step (B.1, 32x32x3 inputs):
    convs 32x32 (3->32, 32->32), pool, 16x16 (32->32 x2), pool, then dense
    8*8*32 -> 256 -> 256 -> 10."""
    conv = 2 * batch * 9 * (32 * 32 * (3 * 32 + 32 * 32) + 16 * 16 * (32 * 32 * 2))
    dense = 2 * batch * (8 * 8 * 32 * 256 + 256 * 256 + 256 * 10)
    return 3.0 * (conv + dense)


def _random_task(n: int, shape: tuple, classes: int = 10, seed: int = 0) -> _Task:
    rng = np.random.default_rng(seed)
    return _Task(
        jnp.asarray(rng.normal(size=(n,) + shape), jnp.float32),
        jnp.asarray(rng.integers(0, classes, size=n), jnp.int32),
        jnp.ones((n,), jnp.float32),
    )


def _throughput(net, cfg, task, n_models: int, steps: int, repeats: int) -> float:
    """Steps per second per model of ``train_steps`` on ``n_models`` vmapped models."""
    state = init_state(net, cfg, list(range(n_models)), task.x[:2])
    state, _ = train_steps(net, cfg, state, task, steps)  # compile + warm-up
    jax.block_until_ready(state)
    holder = [state]

    def run():
        s, logs = train_steps(net, cfg, holder[0], task, steps)
        jax.block_until_ready((s, logs))
        holder[0] = s

    dt = _best_time(run, repeats)
    _TIMED_STEPS.append(steps)
    return steps / dt


def _sequential_throughput(net, cfg, task, n_models: int, steps: int, repeats: int) -> float:
    """Per-model steps/s when ``n_models`` single models are trained one after another:
    ``steps`` divided by the wall time of all ``n_models`` runs (so that it compares with
    ``vmap8``, where every model advances ``steps`` in one run)."""
    states = [init_state(net, cfg, [i], task.x[:2]) for i in range(n_models)]
    s, _ = train_steps(net, cfg, states[0], task, steps)  # compile
    jax.block_until_ready(s)

    def run():
        for i in range(n_models):
            s, logs = train_steps(net, cfg, states[i], task, steps)
            jax.block_until_ready((s, logs))
            states[i] = s

    dt = _best_time(run, repeats)
    _TIMED_STEPS.append(steps)
    return steps / dt  # each model advanced ``steps`` in the time all of them took


# ---------------------------------------------------------------------------- sections


def section_mlp(ctx: dict) -> list:
    """Paper MLP and small MLP: single / vmap8 / sequential8."""
    quick = ctx["quick"]
    roof = ctx["roofline_gflops"]
    records = []
    workloads = [
        ("paper_mlp", dict(width=512, depth=4), 128, 40 if quick else 200),
        ("small_mlp", dict(width=128, depth=2), 64, 100 if quick else 1000),
    ]
    for name, arch, batch, steps in workloads:
        net = make_network(ModelConfig(arch="mlp", num_outputs=10, **arch))
        cfg = TrainConfig(optimizer="adam", learning_rate=1e-4, batch_size=batch)
        task = _random_task(4096, (784,))
        flops = _mlp_flops_per_step(784, arch["width"], arch["depth"], 10, batch)
        reps = 2 if quick else 3
        variants = {
            "single": lambda: _throughput(net, cfg, task, 1, steps, reps),
            "vmap8": lambda: _throughput(net, cfg, task, 8, max(steps // 4, 10), reps),
            "sequential8": lambda: _sequential_throughput(
                net, cfg, task, 8, max(steps // 4, 10), reps
            ),
        }
        for variant, fn in variants.items():
            sps = fn()
            n_models = 1 if variant == "single" else 8
            gflops = sps * n_models * flops / 1e9
            cpu_frac = _cpu_rate(flops * n_models * _TIMED_STEPS[-1]) / ctx["roofline_cpu_gflops"]
            records.append(
                dict(
                    workload=name,
                    variant=variant,
                    steps_per_s_per_model=sps,
                    gflops=gflops,
                    roofline_gflops=roof,
                    roofline_fraction=gflops / roof,
                    cpu_roofline_fraction=cpu_frac,
                    models=n_models,
                    batch_size=batch,
                    flops_per_step=flops,
                )
            )
            print(
                f"  {name:10s} {variant:12s} {sps:9.1f} steps/s/model  {gflops:7.1f} GFLOP/s "
                f"({100 * gflops / roof:5.1f}% of roofline; CPU-time basis {100 * cpu_frac:5.1f}%)",
                flush=True,
            )
    return records


def section_cnn(ctx: dict) -> list:
    """Paper CNN (B.1), batch 128, 32x32x3: im2col vs lax.conv routes (single model), and
    im2col with 4 models vmapped; few steps."""
    roof = ctx["roofline_gflops"]
    records = []
    task = _random_task(512, (32, 32, 3))
    flops = paper_cnn_flops_per_step(128)
    variants = [
        ("im2col", 1, 4 if ctx["quick"] else 10),
        ("lax", 1, 1),
        ("im2col", 4, 2 if ctx["quick"] else 4),
    ]
    if ctx.get("slow"):
        variants.append(("lax", 4, 1))  # grouped convolutions under vmap: ~100x slower on CPU
    for impl, n_models, steps in variants:
        net = make_network(ModelConfig(arch="cnn", conv_impl=impl))
        cfg = TrainConfig(optimizer="adam", learning_rate=1e-4, batch_size=128)
        t0 = time.perf_counter()
        sps = _throughput(net, cfg, task, n_models, steps, 1)
        gflops = sps * n_models * flops / 1e9
        cpu_frac = _cpu_rate(flops * n_models * steps) / ctx["roofline_cpu_gflops"]
        variant = f"single_{impl}" if n_models == 1 else f"vmap{n_models}_{impl}"
        records.append(
            dict(
                workload="paper_cnn",
                variant=variant,
                steps_per_s_per_model=sps,
                gflops=gflops,
                roofline_gflops=roof,
                roofline_fraction=gflops / roof,
                cpu_roofline_fraction=cpu_frac,
                models=n_models,
                batch_size=128,
                flops_per_step=flops,
                section_wall_s=time.perf_counter() - t0,
            )
        )
        print(
            f"  paper_cnn  {variant:14s} {sps:9.2f} steps/s/model  {gflops:7.1f} GFLOP/s "
            f"({100 * gflops / roof:5.1f}% of roofline; CPU-time basis {100 * cpu_frac:5.1f}%)",
            flush=True,
        )
    return records


register_section("mlp", section_mlp)
register_section("cnn", section_cnn)


def _try_register_external() -> None:
    """Sections contributed by sibling scripts, if present: ``benchmarks/entk.py`` (the
    diagnostics module's eNTK timings: ``entk_benchmark(quick=...) -> records``), or any
    module defining ``register(register_section)``."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    for mod_name in ("entk",):
        try:
            mod = __import__(mod_name)
        except Exception as err:  # a broken optional section must not stop the engine benchmark
            print(f"(section {mod_name!r} unavailable: {err})")
            continue
        if hasattr(mod, "register"):
            mod.register(register_section)
        elif hasattr(mod, "entk_benchmark"):
            register_section("entk", lambda ctx, mod=mod: mod.entk_benchmark(quick=ctx["quick"]))


# ---------------------------------------------------------------------------- main


def main(argv=None) -> list:
    _try_register_external()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma list of {sorted(SECTIONS)}"
    )
    ap.add_argument("--quick", action="store_true", help="fewer steps")
    ap.add_argument(
        "--slow", action="store_true", help="also lax.conv under vmap (minutes per step on CPU)"
    )
    ap.add_argument("--out", default=RESULTS)
    args = ap.parse_args(argv)
    chosen = [s for s in args.sections.split(",") if s]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown sections {unknown}; choose from {sorted(SECTIONS)}")

    load_before = os.getloadavg()
    print(f"devices: {jax.devices()}  cpus: {os.cpu_count()}  load avg: {load_before}", flush=True)
    roof = matmul_gflops(2048)
    roof_cpu = _cpu_rate(2 * 2048**3)
    print(
        f"  matmul roofline (float32 2048^3 product): {roof:.1f} GFLOP/s wall, "
        f"{roof_cpu:.1f} GFLOP per "
        "CPU-second",
        flush=True,
    )
    ctx = {
        "roofline_gflops": roof,
        "roofline_cpu_gflops": roof_cpu,
        "quick": args.quick,
        "slow": args.slow,
    }
    machine = dict(
        platform=platform.platform(),
        processor=platform.processor(),
        cpus=os.cpu_count(),
        devices=[str(d) for d in jax.devices()],
        jax=jax.__version__,
        load_avg_before=load_before,
    )
    records = [
        dict(
            workload="matmul",
            variant="roofline",
            steps_per_s_per_model=None,
            gflops=roof,
            roofline_gflops=roof,
            roofline_fraction=1.0,
            cpu_gflops_per_cpu_s=roof_cpu,
            machine=machine,
        )
    ]
    for name in chosen:
        print(f"[{name}]", flush=True)
        records += SECTIONS[name](ctx)

    by = {(r["workload"], r["variant"]): r for r in records}
    # Wall-clock ratios are meaningful only on an otherwise idle machine; on a shared,
    # loaded one (1-minute load average above ~0.75 per core *before* the run) the
    # verdicts use the CPU-time basis. The load after the run is not used: the
    # benchmark's own threads raise it to about one per core.
    wall_ok = load_before[0] < 0.75 * (os.cpu_count() or 1)
    basis = "wall" if wall_ok else "cpu_time"
    summary = {
        "basis": basis,
        "load_avg_1min_before": load_before[0],
        "load_avg_1min_after": os.getloadavg()[0],
    }
    if ("paper_mlp", "single") in by:
        r = by[("paper_mlp", "single")]
        summary["paper_mlp_single_roofline_fraction_wall"] = r["roofline_fraction"]
        summary["paper_mlp_single_roofline_fraction_cpu_time"] = r["cpu_roofline_fraction"]
        f = r["roofline_fraction"] if wall_ok else r["cpu_roofline_fraction"]
        summary["target_a_met"] = bool(f >= 0.70)
    if ("small_mlp", "vmap8") in by and ("small_mlp", "sequential8") in by:
        # Information only: the former target (b), vmap8 >= 3x sequential8, is retired
        # (issue 22): one model already runs near the matmul roofline on this CPU, so no
        # batching of the same FLOPs can make each model 3x faster. The side-by-side
        # comparison with a plain PyTorch loop is benchmarks/anchor.py.
        v, q = by[("small_mlp", "vmap8")], by[("small_mlp", "sequential8")]
        wall_ratio = v["steps_per_s_per_model"] / q["steps_per_s_per_model"]
        cpu_ratio = v["cpu_roofline_fraction"] / q["cpu_roofline_fraction"]
        summary["small_mlp_vmap8_over_sequential8_wall"] = wall_ratio
        summary["small_mlp_vmap8_over_sequential8_cpu_time"] = cpu_ratio

    print("\n| workload | variant | steps/s/model | GFLOP/s | roofline | fraction |")
    print("|---|---|---|---|---|---|")

    def fmt(v, spec):
        return "" if v is None else format(v, spec)

    for r in records:
        if "gflops" not in r:  # records of other sections (e.g. entk: seconds per call)
            continue
        print(
            f"| {r['workload']} | {r['variant']} | {fmt(r.get('steps_per_s_per_model'), '.2f')} | "
            f"{fmt(r.get('gflops'), '.1f')} | {fmt(r.get('roofline_gflops'), '.1f')} | "
            f"{fmt(r.get('roofline_fraction'), '.2f')} |"
        )
    for k, v in summary.items():
        print(f"{k}: {v}")
    machine["load_avg_after"] = os.getloadavg()
    machine["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    out = records + [
        dict(
            workload="summary",
            variant="targets",
            steps_per_s_per_model=None,
            gflops=None,
            roofline_gflops=roof,
            roofline_fraction=None,
            **summary,
        )
    ]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)
    print(f"wrote {args.out}")
    return records


if __name__ == "__main__":
    main()
