"""Checkpoints of ``runner.run_chunks`` and the paper profile's guards (issues 20, 23).

A run interrupted after some chunks and started again with the same checkpoint file
ends with exactly the carry and outputs of an uninterrupted run; a checkpoint of another
run is refused; ``profiles.checkpoint_path`` names a file only at the paper profile (or
when asked by the environment); the paper profile refuses a CPU backend unless allowed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plasticity_lib import profiles, runner


@jax.jit
def _chunk(carry, i):
    """A small stateful program: a random walk with an optimizer-like nested state."""
    key, (w, stats) = carry
    key, sub = jax.random.split(key)
    steps = jax.random.normal(sub, (4, 3))
    w = w + jnp.cumsum(steps, axis=0)[-1]
    stats = {"count": stats["count"] + 1, "sq": stats["sq"] + (w**2).sum()}
    return (key, (w, stats)), {"w": w[None, :] + i, "trace": jnp.cumsum(steps, axis=0).T}


def _carry():
    return (jax.random.PRNGKey(3), (jnp.zeros(3), {"count": 0, "sq": jnp.float32(0.0)}))


class _Interrupt(Exception):
    pass


def _failing_at(n):
    def fn(carry, i):
        if i == n:
            raise _Interrupt
        return _chunk(carry, i)

    return fn


def _assert_same(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    ref_carry, ref_out = runner.run_chunks(_chunk, _carry(), 6, desc="ref", progress=False)
    path = tmp_path / "ckpt" / "run.pkl"
    with pytest.raises(_Interrupt):
        runner.run_chunks(_failing_at(4), _carry(), 6, desc="a", progress=False, checkpoint=path)
    [saved] = path.parent.glob("run-*.pkl")  # the name carries the initial carry's fingerprint
    assert not list(path.parent.glob(".*tmp*"))  # no temporary file left behind
    calls = []

    def counting(carry, i):
        calls.append(i)
        return _chunk(carry, i)

    carry, out = runner.run_chunks(counting, _carry(), 6, desc="b", progress=False, checkpoint=path)
    assert calls == [4, 5]  # resumed after the last completed chunk
    _assert_same(carry, ref_carry)
    _assert_same(out, ref_out)
    # a finished run is returned from its checkpoint without recomputing
    calls.clear()
    carry2, out2 = runner.run_chunks(
        counting, _carry(), 6, desc="c", progress=False, checkpoint=path
    )
    assert calls == []
    _assert_same(out2, ref_out)


def test_other_runs_never_resume_this_one(tmp_path):
    path = tmp_path / "run.pkl"
    ref2 = runner.run_chunks(_chunk, _carry(), 2, desc="a", progress=False, checkpoint=path)
    # other number of chunks, other initial carry: other files, computed afresh
    ref3 = runner.run_chunks(_chunk, _carry(), 3, desc="b", progress=False, checkpoint=path)
    other = (jax.random.PRNGKey(0), (jnp.zeros(3), {"count": 0, "sq": jnp.float32(0.0)}))
    runner.run_chunks(_chunk, other, 2, desc="c", progress=False, checkpoint=path)
    assert len(list(tmp_path.glob("run-*.pkl"))) == 3
    _assert_same(ref3[1]["w"][:, :6], ref2[1]["w"])  # same start: the first two chunks agree
    # a file under this run's name that is not its checkpoint is refused, not resumed
    for f in tmp_path.glob("run-*.pkl"):
        f.write_bytes(b"not a checkpoint")
    with pytest.raises(Exception):
        runner.run_chunks(_chunk, _carry(), 2, desc="d", progress=False, checkpoint=path)


def test_mismatched_checkpoint_content_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "run.pkl"
    runner.run_chunks(_chunk, _carry(), 2, desc="a", progress=False, checkpoint=path)
    [saved] = tmp_path.glob("run-*.pkl")
    # pretend another run's file has this run's name (e.g. copied by hand)
    monkeypatch.setattr(runner, "_with_fingerprint", lambda p, c, n: saved)
    with pytest.raises(runner.CheckpointMismatch, match="2 chunks"):
        runner.run_chunks(_chunk, _carry(), 3, desc="b", progress=False, checkpoint=path)
    other = (jax.random.PRNGKey(0), (jnp.zeros(5), {"count": 0, "sq": jnp.float32(0.0)}))
    with pytest.raises(runner.CheckpointMismatch, match="does not match"):
        runner.run_chunks(_chunk, other, 2, desc="c", progress=False, checkpoint=path)


def test_checkpoint_path_only_at_the_paper_profile(tmp_path, monkeypatch):
    monkeypatch.delenv(profiles.CHECKPOINT_ENV, raising=False)
    default = profiles.resolve("ch00_overview", "default")
    assert profiles.checkpoint_path(default, "stream") is None
    assert profiles.checkpoint_dir(default) is None
    paper = profiles.resolve("ch00_overview", "paper")
    p1 = profiles.checkpoint_path(paper, "stream")
    assert p1.parent.name == "ch00_overview" and p1.name.startswith("stream-paper-")
    p2 = profiles.checkpoint_path(profiles.resolve("ch00_overview", "paper", seeds=2), "stream")
    assert p1 != p2  # other parameters, other file
    assert profiles.checkpoint_path(paper, "stream") == p1  # same parameters, same file
    monkeypatch.setenv(profiles.CHECKPOINT_ENV, str(tmp_path))
    p3 = profiles.checkpoint_path(default, "pretrain")
    assert p3.parent == tmp_path / "ch00_overview"
    assert profiles.checkpoint_path(default, "train a/b: 3 x 5").name.startswith("train-a-b-3-x-5-")
    with pytest.raises(ValueError, match="name="):
        profiles.checkpoint_path(default, " / ")


def test_paper_profile_refuses_a_cpu_backend_unless_allowed(monkeypatch):
    if jax.default_backend() != "cpu":
        pytest.skip("needs a CPU backend")
    monkeypatch.delenv(profiles.ALLOW_CPU_ENV, raising=False)
    monkeypatch.delenv(profiles.PROFILE_ENV, raising=False)
    with pytest.raises(profiles.ParameterError, match="PLASTICITY_ALLOW_CPU=1"):
        profiles.resolve_notebook("ch00_overview", {"profile": "paper"})
    # the default and smoke profiles run on a CPU as always
    assert profiles.resolve_notebook("ch00_overview", {"profile": "smoke"}).profile == "smoke"
    monkeypatch.setenv(profiles.ALLOW_CPU_ENV, "1")
    assert profiles.resolve_notebook("ch00_overview", {"profile": "paper"}).profile == "paper"
