"""Where a chapter's time goes: compilation, compiled training, evaluation, plotting.

A reader waiting for a chapter wants to know whether the minutes go into training (the
work the chapter is about), into XLA compiling the programs, or into evaluation and
plotting around them (issue 22). This module keeps one exclusive account per process:

* ``compile``: JAX tracing, lowering and XLA compilation (and loading a program from the
  persistent compilation cache), from :mod:`jax.monitoring` events;
* ``training``: the host loop of the engine (:func:`plasticity_lib.runner.run_chunks`,
  which ``train.train_stream`` and the chapters' own protocols use), compilation excluded;
* ``evaluation``: evaluation and diagnostics entry points (``train.evaluate``,
  ``train.evaluate_task``, ``diagnostics.plasticity_measure``, the probe), compilation
  and any training they run excluded;
* ``plotting``: rendering figures (``FigureCanvasBase.print_figure``: the notebook's
  inline PNGs and ``savefig``);
* ``other``: the rest of the wall time since the process started (imports, data, eager
  array code, statistics, tables).

Sections nest and the account is exclusive: time spent in an inner section (or in
compilation) is not counted again in the outer one, so the parts add up to the total.
:func:`summary` is written into every chapter's claim record (``timing``) and shown by
``plasticity-book list``.

Usage::

    with timing.section("training"):
        ...
    timing.summary()  # {"total_s": ..., "compile_s": ..., "training_s": ..., ...}
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from typing import Any, Callable

__all__ = [
    "SECTIONS",
    "section",
    "timed",
    "summary",
    "format_summary",
    "reset",
    "install",
    "install_plotting_timer",
]

#: The accounts of :func:`summary`, in display order.
SECTIONS = ("compile", "training", "evaluation", "plotting", "other")

#: jax.monitoring duration events that are compilation (tracing, lowering, XLA, cache load).
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
    "/jax/compilation_cache/cache_retrieval_time_sec",
)

_lock = threading.Lock()
_totals: dict[str, float] = {}
_counts: dict[str, int] = {}
_stack: list[list] = []  # [name, seconds of children] per open section (main thread)
_start = time.time()
_installed = False


def reset() -> None:
    """Start a new account now (tests; a chapter never needs it)."""
    global _start
    with _lock:
        _totals.clear()
        _counts.clear()
        _stack.clear()
        _start = time.time()


def _add(name: str, seconds: float) -> None:
    _totals[name] = _totals.get(name, 0.0) + seconds


def _on_duration(event: str, duration: float, **_: Any) -> None:
    if event not in COMPILE_EVENTS:
        return
    with _lock:
        _add("compile", float(duration))
        if event == "/jax/core/compile/backend_compile_duration":
            _counts["compile"] = _counts.get("compile", 0) + 1
        elif event == "/jax/compilation_cache/cache_retrieval_time_sec":
            _counts["cache_hits"] = _counts.get("cache_hits", 0) + 1
        if _stack:
            _stack[-1][1] += float(duration)


def install() -> None:
    """Listen to JAX's compile events (idempotent; ``plasticity_lib.train`` calls it)."""
    global _installed
    if _installed:
        return
    import jax

    jax.monitoring.register_event_duration_secs_listener(_on_duration)
    _installed = True


@contextlib.contextmanager
def section(name: str):
    """Count the wall time of the ``with`` block as ``name`` (exclusive of nested
    sections and of compilation inside it). Only the main thread is accounted."""
    if name not in SECTIONS or name in ("compile", "other"):
        raise ValueError(f"timing.section: name={name!r}; allowed: training, evaluation, plotting")
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    install()
    t0 = time.perf_counter()
    entry = [name, 0.0]
    _stack.append(entry)
    try:
        yield
    finally:
        dt = time.perf_counter() - t0
        with _lock:
            if _stack and _stack[-1] is entry:
                _stack.pop()
            _add(name, max(dt - entry[1], 0.0))
            if _stack:
                _stack[-1][1] += dt


def timed(name: str) -> Callable[[Callable], Callable]:
    """Decorator: every call of the function is a :func:`section` ``name``.

    JAX dispatches asynchronously: the arguments (e.g. the parameters a training chunk
    just returned) may still be computing when the call starts. The wrapper waits for
    them first (``jax.block_until_ready``), so that their computation is counted in the
    section that launched it, not in this one."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            if _installed and threading.current_thread() is threading.main_thread():
                import jax

                jax.block_until_ready((args, kwargs))
            with section(name):
                return fn(*args, **kwargs)

        return inner

    return wrap


def install_plotting_timer() -> None:
    """Count figure rendering (``FigureCanvasBase.print_figure``) as ``plotting``."""
    from matplotlib.backend_bases import FigureCanvasBase

    original = FigureCanvasBase.print_figure
    if getattr(original, "_plasticity_timed", False):
        return
    wrapped = timed("plotting")(original)
    wrapped._plasticity_timed = True
    FigureCanvasBase.print_figure = wrapped


def summary(total_s: float | None = None) -> dict[str, float | int]:
    """The account so far: ``total_s`` (wall time since the process started, or the
    given total), ``<section>_s`` for each of :data:`SECTIONS` (``other_s`` = the rest),
    ``compilations`` (XLA compilations) and ``cache_hits`` (programs loaded from JAX's
    persistent cache), rounded to 0.1 s."""
    from .claims import _process_start_time

    with _lock:
        totals = dict(_totals)
        counts = dict(_counts)
    if total_s is None:
        total_s = time.time() - min(_process_start_time(), _start)
    out: dict[str, float | int] = {"total_s": round(total_s, 1)}
    named = 0.0
    for name in SECTIONS[:-1]:
        out[f"{name}_s"] = round(totals.get(name, 0.0), 1)
        named += totals.get(name, 0.0)
    out["other_s"] = round(max(total_s - named, 0.0), 1)
    out["compilations"] = counts.get("compile", 0)
    out["cache_hits"] = counts.get("cache_hits", 0)
    return out


def format_summary(t: dict[str, Any]) -> str:
    """``"total 81 s: compile 12, training 50, evaluation 9, plotting 4, other 6"``."""
    if not t:
        return ""
    parts = ", ".join(f"{n} {t.get(f'{n}_s', 0):.0f}" for n in SECTIONS)
    return f"total {t.get('total_s', 0):.0f} s: {parts} ({t.get('compilations', 0)} compiled)"
