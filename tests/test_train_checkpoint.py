"""Checkpoint / resume of the stream engine: an interrupted run resumes bit-identically."""

import os

import jax
import numpy as np
import pytest
from train_common import BASE, NET, PROTOCOL, STREAM, base_run, leaves_equal

from plasticity_lib.train import checkpoint, train_stream


def test_checkpoint_resume_is_identical(tmp_path, monkeypatch):
    run = base_run()
    kw = dict(PROTOCOL, chunk_steps=4)  # half-task chunks (base_run: both tasks in one call)
    full = train_stream(NET, BASE, STREAM, [0, 1], **kw)
    # chunking does not change the numbers
    np.testing.assert_allclose(full.logs["loss"], run.logs["loss"], rtol=1e-6)
    np.testing.assert_allclose(full.task_end["loss"], run.task_end["loss"], rtol=1e-6)
    saves = []
    orig = checkpoint.save_checkpoint

    def interrupted(*a, **k):
        orig(*a, **k)
        saves.append(1)
        if len(saves) == 3:
            raise RuntimeError("simulated interruption")

    monkeypatch.setattr(checkpoint, "save_checkpoint", interrupted)
    with pytest.raises(RuntimeError, match="simulated"):
        train_stream(NET, BASE, STREAM, [0, 1], checkpoint_dir=str(tmp_path), **kw)
    monkeypatch.setattr(checkpoint, "save_checkpoint", orig)
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].endswith(".npz")  # no temp file left behind
    resumed = train_stream(NET, BASE, STREAM, [0, 1], checkpoint_dir=str(tmp_path), **kw)
    assert len(saves) == 3  # the resumed run did not go through the patched function
    assert leaves_equal(
        (full.logs, full.task_end, full.final_state),
        (resumed.logs, resumed.task_end, resumed.final_state),
    )
    # finished: loaded without training
    loaded = train_stream(NET, BASE, STREAM, [0, 1], checkpoint_dir=str(tmp_path), **kw)
    assert leaves_equal(loaded.final_params, full.final_params)


def test_checkpoint_keeps_task_params_and_rejects_other_runs(tmp_path):
    """Kept task parameters survive a resume; a file of another run is never loaded."""
    kw = dict(PROTOCOL, chunk_steps=4, keep_task_params=[1])
    a = train_stream(NET, BASE, STREAM, [0, 1], checkpoint_dir=str(tmp_path), **kw)
    b = train_stream(NET, BASE, STREAM, [0, 1], checkpoint_dir=str(tmp_path), **kw)  # loaded
    assert leaves_equal(a.task_params, b.task_params) and list(b.task_params_tasks) == [1]
    ref = jax.tree_util.tree_map(lambda v: v[:, 1:], base_run().task_params)  # other chunking
    for u, v in zip(jax.tree_util.tree_leaves(a.task_params), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    other = train_stream(NET, BASE, STREAM, [0, 2], checkpoint_dir=str(tmp_path), **kw)
    assert len(os.listdir(tmp_path)) == 2  # its own file, not the first run's
    assert not np.array_equal(
        other.final_params["Head"]["kernel"], a.final_params["Head"]["kernel"]
    )
