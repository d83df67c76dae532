"""Side-by-side anchor: the engine against a plain PyTorch loop (not a test).

Two sections, each run ALTERNATELY (engine, PyTorch, engine, PyTorch, ...) for
``--rounds`` rounds in one invocation, so that a change of machine load hits both sides:

* ``mlp``: chapter 00's default workload (``profiles/ch00_overview.py``): random-label
  MLP 784-256-256-10, ReLU, batch 64, Adam lr 1e-3, 5 seeds, 10 tasks x 800 steps on the
  MNIST subset of 1024 images (``plasticity_lib.data.load_dataset("mnist", n=1024,
  seed=0, flatten=True)``; random inputs of MNIST's shape if no copy of MNIST is found,
  the record says which), loss logged every 100 steps, full-set accuracy at every task
  end. The engine side is ``train.train_stream`` exactly as chapter 00 calls it (the
  baseline network, no normalisation); the PyTorch side is what a user would write: one
  ``nn.Sequential`` and one ``torch.optim.Adam`` per seed, the usual
  ``zero_grad/backward/step``, minibatches drawn with replacement (as the engine does),
  ``torch.set_num_threads(2)``.
* ``cnn``: the paper CNN (B.1: 4 conv layers of 32 channels, 2x2 max-pool after layers 2
  and 4, dense 256-256-10), batch 128, 32x32x3 random inputs (512 images), Adam lr 1e-4,
  one model: the engine's convolution routes (``ModelConfig.conv_impl``, through
  ``train.train_steps``) against PyTorch's ``nn.Conv2d`` training step (NCHW, and
  ``channels_last``).

Both sides report wall time and process CPU time (all threads); throughput is also given
as the fraction of the machine's float32 matmul roofline (``engine.matmul_gflops``;
FLOPs counted as in ``engine.py``: fwd+bwd = 3x the forward matmul/conv FLOPs, evaluation
not counted), on a wall-time and on a CPU-time basis. On a shared, loaded machine the
CPU-time ratios are the load-robust estimate (but note that idle-spinning worker threads
count as CPU time too). PyTorch is optional: when ``import torch`` fails, its side is
skipped with a message (it is never a dependency of the project).

Usage::

    python benchmarks/anchor.py                  # both sections, 2 rounds (~4 min idle)
    python benchmarks/anchor.py --quick          # 2 tasks x 400 steps, few CNN steps
    python benchmarks/anchor.py --sections cnn --rounds 3
    python benchmarks/anchor.py --cnn-routes im2col,lax   # lax.conv: ~10 s per step

Writes ``benchmarks/results/anchor.json`` (``--out``): a JSON list of records; the first
carries the machine information and the load average before/after, the last
(``summary``) the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import engine as E  # noqa: E402  (benchmarks/engine.py: roofline and FLOP conventions)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from plasticity_lib import data, tasks, train  # noqa: E402
from plasticity_lib.models import CONV_IMPLS, ModelConfig, make_network  # noqa: E402

RESULTS = os.path.join(HERE, "results", "anchor.json")

try:  # optional peer
    import torch
    import torch.nn.functional as F
    from torch import nn

    TORCH_ERROR = None
except Exception as err:  # ImportError, or a broken install
    torch = None
    TORCH_ERROR = f"{type(err).__name__}: {err}"

# chapter 00's default profile (src/plasticity_lib/profiles/ch00_overview.py)
CH00 = dict(
    n_train=1024,
    width=256,
    depth=2,
    batch_size=64,
    learning_rate=1e-3,
    num_tasks=10,
    steps_per_task=800,
    log_every=100,
    seeds=5,
)
CH00_QUICK = dict(CH00, num_tasks=2, steps_per_task=400)


def _timed(fn):
    """``(result, wall seconds, process CPU seconds)`` of ``fn()`` (which must block)."""
    c, t = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def _rates(name, variant, walls, cpus, flop, roof, roof_cpu, **extra):
    """A record: the best (minimum-wall) round and all rounds, with roofline fractions."""
    i = int(np.argmin(walls))
    wall, cpu = walls[i], cpus[i]
    gflops = flop / wall / 1e9
    cpu_gflops = flop / max(cpu, 1e-9) / 1e9
    return dict(
        workload=name,
        variant=variant,
        wall_s=wall,
        cpu_s=cpu,
        wall_s_rounds=list(walls),
        cpu_s_rounds=list(cpus),
        wall_s_median=statistics.median(walls),
        cpu_s_median=statistics.median(cpus),
        gflops=gflops,
        roofline_gflops=roof,
        roofline_fraction=gflops / roof,
        cpu_roofline_fraction=cpu_gflops / roof_cpu,
        flop=flop,
        **extra,
    )


def _print_record(r):
    sps = r.get("steps_per_s_per_model")
    sps_s = f"{sps:9.2f} steps/s/model " if sps is not None else ""
    print(
        f"  {r['workload']:8s} {r['variant']:22s} wall {r['wall_s']:7.2f} s  "
        f"CPU {r['cpu_s']:7.2f} s  {sps_s}{r['gflops']:6.1f} GFLOP/s  "
        f"roofline {100 * r['roofline_fraction']:5.1f}% (CPU-time basis "
        f"{100 * r['cpu_roofline_fraction']:5.1f}%)",
        flush=True,
    )


# ------------------------------------------------------------------------------ mlp


def _mnist_subset(n: int):
    try:
        ds = data.load_dataset("mnist", n=n, seed=0, flatten=True, allow_fallback=False)
        return np.asarray(ds.x, np.float32), str(ds.source)
    except Exception as err:
        print(f"  (MNIST not found: {err}; using random inputs of MNIST's shape)", flush=True)
        x = np.random.default_rng(0).normal(size=(n, 784)).astype(np.float32)
        return x, "random normal inputs of MNIST's shape (MNIST not found)"


def engine_mlp(x: np.ndarray, p: dict, seeds=None):
    """Chapter 00's baseline run through ``train.train_stream`` (returns the RunResult)."""
    net = make_network(
        ModelConfig(arch="mlp", width=p["width"], depth=p["depth"], norm="none", num_outputs=10)
    )
    cfg = train.TrainConfig(learning_rate=p["learning_rate"], batch_size=p["batch_size"])
    stream = tasks.random_labels(x, 10)
    res = train.train_stream(
        net,
        cfg,
        stream,
        seeds=list(range(p["seeds"])) if seeds is None else seeds,
        num_tasks=p["num_tasks"],
        steps_per_task=p["steps_per_task"],
        log_every=p["log_every"],
        # one task per compiled call (chapter 00's default at 800 steps per task); fixed
        # here so that the warm-up's program is the timed one under --quick as well
        chunk_steps=p["steps_per_task"],
        progress=False,
    )
    jax.block_until_ready(res.final_params)
    return res


def torch_mlp(x: np.ndarray, p: dict):
    """The same workload as a plain PyTorch loop: one model per seed, one after another.
    Returns the mean end-of-task accuracy of the last task over the seeds."""
    torch.set_num_threads(2)
    xt = torch.from_numpy(np.array(x, np.float32))  # a writable copy
    n = xt.shape[0]
    last_acc = []
    for seed in range(p["seeds"]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        w = p["width"]
        layers, d_in = [], 784
        for _ in range(p["depth"]):
            layers += [nn.Linear(d_in, w), nn.ReLU()]
            d_in = w
        model = nn.Sequential(*layers, nn.Linear(d_in, 10))
        opt = torch.optim.Adam(model.parameters(), lr=p["learning_rate"])
        losses = []
        for _task in range(p["num_tasks"]):
            y = torch.randint(0, 10, (n,), generator=gen)  # fresh random labels
            for step in range(p["steps_per_task"]):
                idx = torch.randint(0, n, (p["batch_size"],), generator=gen)
                loss = F.cross_entropy(model(xt[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if (step + 1) % p["log_every"] == 0:
                    losses.append(loss.item())
            with torch.no_grad():
                acc = (model(xt).argmax(1) == y).float().mean().item()
        last_acc.append(acc)
    return float(np.mean(last_acc))


def section_mlp(ctx: dict) -> list:
    p = CH00_QUICK if ctx["quick"] else CH00
    x, source = _mnist_subset(p["n_train"])
    model_steps = p["seeds"] * p["num_tasks"] * p["steps_per_task"]
    flop_step = E._mlp_flops_per_step(784, p["width"], p["depth"], 10, p["batch_size"])
    flop = flop_step * model_steps
    print(
        f"  workload: {p['seeds']} seeds x {p['num_tasks']} tasks x {p['steps_per_task']} "
        f"steps, batch {p['batch_size']}, MLP 784-{p['width']}x{p['depth']}-10; data: {source}",
        flush=True,
    )
    # warm-up (compilation; the same programs as the timed runs: one task per call)
    warm = dict(p, num_tasks=1)
    _, compile_wall, compile_cpu = _timed(lambda: engine_mlp(x, warm))
    print(f"  engine warm-up (compilation + 1 task): {compile_wall:.1f} s", flush=True)
    if torch is not None:
        torch_mlp(x, dict(p, num_tasks=1, steps_per_task=50, log_every=50, seeds=1))
    eng_w, eng_c, eng_acc, eng_inner = [], [], [], []
    tor_w, tor_c, tor_acc = [], [], []
    for r in range(ctx["rounds"]):
        res, w, c = _timed(lambda: engine_mlp(x, p))
        eng_w.append(w)
        eng_c.append(c)
        eng_inner.append(float(res.wall_time_s))
        eng_acc.append(float(np.mean(res.task_end["accuracy"][:, -1])))
        msg = f"  round {r + 1}: engine {w:6.2f} s wall {c:6.2f} s CPU"
        if torch is not None:
            acc, w, c = _timed(lambda: torch_mlp(x, p))
            tor_w.append(w)
            tor_c.append(c)
            tor_acc.append(acc)
            msg += f" | torch {w:6.2f} s wall {c:6.2f} s CPU"
        print(msg + f" | load {os.getloadavg()[0]:.1f}", flush=True)
    common = dict(
        model_steps=model_steps,
        flops_per_step=flop_step,
        data=source,
        workload_params=p,
    )
    roof, roof_cpu = ctx["roofline_gflops"], ctx["roofline_cpu_gflops"]
    recs = [
        _rates(
            "ch00_mlp",
            "engine_train_stream",
            eng_w,
            eng_c,
            flop,
            roof,
            roof_cpu,
            steps_per_s_per_model=model_steps / p["seeds"] / min(eng_w),
            train_stream_wall_time_s=eng_inner,
            warmup_wall_s=compile_wall,
            warmup_cpu_s=compile_cpu,
            last_task_accuracy=eng_acc,
            **common,
        )
    ]
    if torch is not None:
        recs.append(
            _rates(
                "ch00_mlp",
                "torch_loop",
                tor_w,
                tor_c,
                flop,
                roof,
                roof_cpu,
                steps_per_s_per_model=model_steps / p["seeds"] / min(tor_w),
                last_task_accuracy=tor_acc,
                torch=torch.__version__,
                torch_threads=torch.get_num_threads(),
                **common,
            )
        )
    for rec in recs:
        _print_record(rec)
    return recs


# ------------------------------------------------------------------------------ cnn


def _torch_cnn(channels_last: bool):
    c = 32
    model = nn.Sequential(
        nn.Conv2d(3, c, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c, c, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c, c, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c, c, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 8 * c, 256),
        nn.ReLU(),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


class _TorchCNN:
    """One PyTorch paper CNN with its optimizer; ``run(steps)`` trains ``steps`` steps."""

    def __init__(self, x_nhwc: np.ndarray, y: np.ndarray, channels_last: bool):
        torch.set_num_threads(2)
        torch.manual_seed(0)
        self.gen = torch.Generator().manual_seed(0)
        x = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.x, self.y = x, torch.from_numpy(y.astype(np.int64))
        self.model = _torch_cnn(channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4)

    def run(self, steps: int):
        n = self.x.shape[0]
        for _ in range(steps):
            idx = torch.randint(0, n, (128,), generator=self.gen)
            loss = F.cross_entropy(self.model(self.x[idx]), self.y[idx])
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        return loss.item()


class _EngineCNN:
    """One engine paper CNN (``conv_impl=route``); ``run(steps)`` = one ``train_steps``."""

    def __init__(self, task, route: str, steps: int):
        self.net = make_network(ModelConfig(arch="cnn", conv_impl=route))
        self.cfg = train.TrainConfig(optimizer="adam", learning_rate=1e-4, batch_size=128)
        self.task = task
        self.state = train.init_state(self.net, self.cfg, [0], task.x[:2])
        _, self.compile_wall, self.compile_cpu = _timed(lambda: self.run(steps))

    def run(self, steps: int):
        s, logs = train.train_steps(self.net, self.cfg, self.state, self.task, steps)
        jax.block_until_ready((s, logs))
        self.state = s


def section_cnn(ctx: dict) -> list:
    quick = ctx["quick"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, size=512).astype(np.int32)
    task = E._Task(jnp.asarray(x), jnp.asarray(y), jnp.ones((512,), jnp.float32))
    flop_step = E.paper_cnn_flops_per_step(128)
    routes = ctx["cnn_routes"]
    steps = {r: (1 if r == "lax" else (4 if quick else 12)) for r in routes}
    torch_steps = 4 if quick else 12
    sides: dict = {}
    for r in routes:
        print(f"  compiling engine route {r!r} ...", flush=True)
        sides[f"engine_{r}"] = (_EngineCNN(task, r, steps[r]), steps[r])
        print(f"    first call {sides[f'engine_{r}'][0].compile_wall:.1f} s", flush=True)
    if torch is not None:
        for cl in (False, True):
            m = _TorchCNN(x, y, cl)
            m.run(2)  # warm-up
            sides["torch_channels_last" if cl else "torch_nchw"] = (m, torch_steps)
    walls: dict = {k: [] for k in sides}
    cpus: dict = {k: [] for k in sides}
    for r in range(ctx["rounds"]):
        msg = f"  round {r + 1}:"
        for k, (obj, n) in sides.items():
            _, w, c = _timed(lambda: obj.run(n))
            walls[k].append(w)
            cpus[k].append(c)
            msg += f" {k} {n / w:5.2f} steps/s"
        print(msg + f" | load {os.getloadavg()[0]:.1f}", flush=True)
    recs = []
    roof, roof_cpu = ctx["roofline_gflops"], ctx["roofline_cpu_gflops"]
    for k, (obj, n) in sides.items():
        extra = dict(steps=n, batch_size=128, flops_per_step=flop_step, data="random inputs")
        if k.startswith("engine_"):
            extra.update(first_call_wall_s=obj.compile_wall, first_call_cpu_s=obj.compile_cpu)
        rec = _rates("paper_cnn", k, walls[k], cpus[k], flop_step * n, roof, roof_cpu, **extra)
        rec["steps_per_s_per_model"] = n / rec["wall_s"]
        rec["cpu_s_per_step"] = rec["cpu_s"] / n
        recs.append(rec)
        _print_record(rec)
    return recs


SECTIONS = {"mlp": section_mlp, "cnn": section_cnn}


# ------------------------------------------------------------------------------ main


def _summary(records: list) -> dict:
    by = {(r["workload"], r["variant"]): r for r in records}
    out: dict = {}
    e, t = by.get(("ch00_mlp", "engine_train_stream")), by.get(("ch00_mlp", "torch_loop"))
    if e and t:
        out["mlp_torch_over_engine_wall"] = t["wall_s"] / e["wall_s"]
        out["mlp_torch_over_engine_wall_median"] = t["wall_s_median"] / e["wall_s_median"]
        out["mlp_torch_over_engine_cpu_time"] = t["cpu_s"] / e["cpu_s"]
    if e:
        out["mlp_engine_roofline_fraction_wall"] = e["roofline_fraction"]
        out["mlp_engine_roofline_fraction_cpu_time"] = e["cpu_roofline_fraction"]
    if t:
        out["mlp_torch_roofline_fraction_wall"] = t["roofline_fraction"]
        out["mlp_torch_roofline_fraction_cpu_time"] = t["cpu_roofline_fraction"]
    cnn = {v: r for (w, v), r in by.items() if w == "paper_cnn"}
    eng = {v: r for v, r in cnn.items() if v.startswith("engine_")}
    tor = {v: r for v, r in cnn.items() if v.startswith("torch_")}
    if eng:
        best = max(eng, key=lambda v: eng[v]["steps_per_s_per_model"])
        out["cnn_best_engine_route"] = best[len("engine_") :]
        out["cnn_best_engine_steps_per_s"] = eng[best]["steps_per_s_per_model"]
        out["cnn_best_engine_cpu_s_per_step"] = eng[best]["cpu_s_per_step"]
        if "engine_im2col" in eng:
            out["cnn_best_route_over_im2col_wall"] = (
                eng[best]["steps_per_s_per_model"] / eng["engine_im2col"]["steps_per_s_per_model"]
            )
            out["cnn_best_route_over_im2col_cpu_time"] = (
                eng["engine_im2col"]["cpu_s_per_step"] / eng[best]["cpu_s_per_step"]
            )
    if eng and tor:
        tb = max(tor, key=lambda v: tor[v]["steps_per_s_per_model"])
        out["cnn_best_torch_variant"] = tb
        out["cnn_best_torch_steps_per_s"] = tor[tb]["steps_per_s_per_model"]
        out["cnn_best_torch_cpu_s_per_step"] = tor[tb]["cpu_s_per_step"]
        # > 1: the engine is faster than PyTorch
        out["cnn_engine_over_torch_wall"] = (
            eng[best]["steps_per_s_per_model"] / tor[tb]["steps_per_s_per_model"]
        )
        out["cnn_engine_over_torch_cpu_time"] = (
            tor[tb]["cpu_s_per_step"] / eng[best]["cpu_s_per_step"]
        )
    return out


def main(argv=None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="mlp,cnn", help=f"comma list of {sorted(SECTIONS)}")
    ap.add_argument("--quick", action="store_true", help="2 tasks x 400 steps; few CNN steps")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (>= 2)")
    routes = [r for r in CONV_IMPLS if r not in ("auto", "lax")]
    ap.add_argument(
        "--cnn-routes",
        default=",".join(routes),
        help=f"engine conv routes of the cnn section, from {list(CONV_IMPLS)} "
        "(lax: ~10 s per training step on CPU)",
    )
    ap.add_argument("--out", default=RESULTS)
    args = ap.parse_args(argv)
    chosen = [s for s in args.sections.split(",") if s]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown sections {unknown}; choose from {sorted(SECTIONS)}")
    if args.rounds < 1:
        raise SystemExit("--rounds must be >= 1")

    load_before = os.getloadavg()
    print(f"devices: {jax.devices()}  cpus: {os.cpu_count()}  load avg: {load_before}", flush=True)
    if torch is None:
        print(f"PyTorch unavailable ({TORCH_ERROR}): the PyTorch side is skipped.", flush=True)
    else:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    roof = E.matmul_gflops(2048)
    roof_cpu = E._cpu_rate(2 * 2048**3)
    print(
        f"  matmul roofline (jax float32 2048^3): {roof:.1f} GFLOP/s wall, "
        f"{roof_cpu:.1f} GFLOP per CPU-second",
        flush=True,
    )
    machine = dict(
        platform=platform.platform(),
        processor=platform.processor(),
        cpus=os.cpu_count(),
        devices=[str(d) for d in jax.devices()],
        jax=jax.__version__,
        torch=None if torch is None else torch.__version__,
        torch_unavailable=TORCH_ERROR,
        xla_flags=os.environ.get("XLA_FLAGS", ""),
        load_avg_before=load_before,
    )
    head = dict(
        workload="matmul",
        variant="roofline",
        gflops=roof,
        roofline_gflops=roof,
        roofline_fraction=1.0,
        cpu_gflops_per_cpu_s=roof_cpu,
        machine=machine,
    )
    if torch is not None:
        torch.set_num_threads(2)
        a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
        a @ b
        best = min(_timed(lambda: a @ b)[1] for _ in range(5))
        head["torch_matmul_gflops"] = 2 * 2048**3 / best / 1e9
        print(f"  torch matmul (2048^3): {head['torch_matmul_gflops']:.1f} GFLOP/s", flush=True)
    ctx = dict(
        roofline_gflops=roof,
        roofline_cpu_gflops=roof_cpu,
        quick=args.quick,
        rounds=args.rounds,
        cnn_routes=[r for r in args.cnn_routes.split(",") if r],
    )
    records = [head]
    t0 = time.perf_counter()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    for name in chosen:
        print(f"[{name}]", flush=True)
        records += SECTIONS[name](ctx)
        with open(args.out, "w") as fh:  # partial results, in case a later section is cut off
            json.dump(records + [dict(workload="summary", variant="partial")], fh, indent=1)
    load_after = os.getloadavg()
    machine["load_avg_after"] = load_after
    machine["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    summary = _summary(records)
    # As in engine.py: a wall-clock ratio is trustworthy only on an idle machine (1-minute
    # load average below 0.75 per core before the run); otherwise read the CPU-time one.
    wall_ok = load_before[0] < 0.75 * (os.cpu_count() or 1)
    summary.update(
        basis="wall" if wall_ok else "cpu_time",
        load_avg_1min_before=load_before[0],
        load_avg_1min_after=load_after[0],
        quick=args.quick,
        rounds=args.rounds,
        total_wall_s=time.perf_counter() - t0,
    )
    print()
    for k, v in summary.items():
        print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(records + [dict(workload="summary", variant="ratios", **summary)], fh, indent=1)
    print(f"wrote {args.out}")
    return records


if __name__ == "__main__":
    main()
