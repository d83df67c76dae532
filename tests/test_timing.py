"""The time account of a chapter (``plasticity_lib.timing``, issue 22)."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import pytest

from plasticity_lib import runner, timing


@pytest.fixture(autouse=True)
def fresh_account():
    timing.reset()
    yield
    timing.reset()


def test_sections_are_exclusive_and_add_up():
    with timing.section("training"):
        time.sleep(0.2)
        with timing.section("evaluation"):
            time.sleep(0.3)
        time.sleep(0.1)
    s = timing.summary(total_s=2.0)
    assert s["evaluation_s"] == pytest.approx(0.3, abs=0.05)
    assert s["training_s"] == pytest.approx(0.3, abs=0.05)  # 0.6 s minus the inner 0.3 s
    parts = sum(s[f"{n}_s"] for n in timing.SECTIONS)
    assert parts == pytest.approx(2.0, abs=0.15)
    assert s["other_s"] == pytest.approx(2.0 - 0.6, abs=0.1)


def test_compilation_is_counted_and_not_charged_to_the_section():
    @jax.jit
    def f(x):  # a program this process has not compiled before
        return jnp.tanh(x @ x.T).sum() * 1.2345

    with timing.section("training"):
        t0 = time.perf_counter()
        f(jnp.ones((64, 33))).block_until_ready()
        wall = time.perf_counter() - t0
    s = timing.summary(total_s=10.0)
    assert s["compilations"] >= 1 and s["compile_s"] > 0
    assert s["training_s"] + s["compile_s"] == pytest.approx(wall, abs=0.1)


def test_timed_decorator_and_run_chunks_are_accounted():
    @timing.timed("evaluation")
    def slow_eval():
        time.sleep(0.2)
        return 1

    assert slow_eval() == 1

    def chunk(c, i):
        time.sleep(0.05)
        return c + 1, {"x": jnp.zeros((1, 1))}

    runner.run_chunks(chunk, 0, 4, desc="t", progress=False)
    s = timing.summary(total_s=5.0)
    assert s["evaluation_s"] == pytest.approx(0.2, abs=0.05)
    assert s["training_s"] >= 0.2


def test_bad_section_name_names_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed: training, evaluation, plotting"):
        with timing.section("compile"):
            pass


def test_format_summary():
    text = timing.format_summary(
        {
            "total_s": 81.0,
            "compile_s": 12.0,
            "training_s": 50.0,
            "evaluation_s": 9.0,
            "plotting_s": 4.0,
            "other_s": 6.0,
            "compilations": 7,
        }
    )
    assert text == (
        "total 81 s: compile 12, training 50, evaluation 9, plotting 4, other 6 (7 compiled)"
    )
    assert timing.format_summary({}) == ""


def test_pending_computation_of_the_arguments_counts_where_it_was_launched():
    @jax.jit
    def heavy(x):
        def body(c, _):
            return jnp.tanh(c @ c) / 64.0, None

        return jax.lax.scan(body, x, None, length=3000)[0]

    @timing.timed("evaluation")
    def cheap(x):
        return float(x[0, 0])  # waits for x

    x = jnp.ones((256, 256))
    heavy(x).block_until_ready()  # compiled
    timing.reset()
    t0 = time.perf_counter()
    with timing.section("training"):
        y = heavy(x)  # dispatched, not finished
        cheap(y)
    wall = time.perf_counter() - t0
    s = timing.summary(total_s=wall)
    assert s["training_s"] >= 0.8 * wall - 0.05, s
    assert s["evaluation_s"] <= 0.1 * wall, s
