"""Checkpoints of the stream engine: atomic saves, fingerprints, resumption.

A long run (the paper profile on a GPU) saves its state after every compiled chunk to
``checkpoint_dir/engine_<fingerprint>.npz``, atomically (written to a temporary file,
``fsync``-ed, then renamed), so a run that dies leaves either the previous or the new
checkpoint, never a torn one. The fingerprint hashes everything that determines the run
(configs, protocol, function names, the content of task 0 and of given initial
parameters), so a rerun with the same arguments resumes where it stopped, bit-identically
(tested), and a checkpoint of another run is never resumed by mistake.
"""

from __future__ import annotations

import hashlib
import json
import os

import jax
import numpy as np

__all__ = ["fingerprint", "save_checkpoint", "load_checkpoint", "checkpoint_path"]


def _name(f):
    if f is None:
        return None
    return f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', repr(f))}"


def fingerprint(
    network,
    cfgs,
    seeds,
    num_tasks,
    steps_per_task,
    log_every,
    chunk_steps,
    eval_every_task,
    keep_tasks,
    metrics_fn,
    stream,
    has_init,
    task0=None,
    init_tree=None,
    init_transform=None,
    transformed_params=None,
) -> str:
    """Hash (16 hex digits) of everything that determines a run: configs, protocol,
    function names, and the content of task 0 and of given initial parameters/state
    (sampled: at most ~1e6 values per array), so that a checkpoint of other data is never
    resumed by mistake. An ``init_transform`` enters by name and by the content of the
    parameters it produced (``transformed_params``), and only when given, so runs without
    one keep their earlier fingerprints."""
    h = hashlib.sha1()
    protocol = (
        network.cfg,
        tuple(cfgs),
        tuple(int(s) for s in seeds),
        num_tasks,
        steps_per_task,
        log_every,
        chunk_steps,
        eval_every_task,
        tuple(keep_tasks),
        _name(metrics_fn),
        _name(stream.init),
        _name(stream.next),
        has_init,
    )
    h.update(repr(protocol).encode())
    if init_transform is not None:
        h.update(repr(("init_transform", _name(init_transform))).encode())
        init_tree = (init_tree, transformed_params)
    for leaf in jax.tree_util.tree_leaves((task0, init_tree)):
        a = np.asarray(leaf)
        h.update(repr((a.shape, str(a.dtype))).encode())
        flat = a.reshape(-1)
        h.update(np.ascontiguousarray(flat[:: max(1, flat.size // 1_000_000)]).tobytes())
    return h.hexdigest()[:16]


def checkpoint_path(checkpoint_dir: str, fp: str) -> str:
    """``checkpoint_dir/engine_<fp>.npz`` (the directory is created)."""
    os.makedirs(checkpoint_dir, exist_ok=True)
    return os.path.join(checkpoint_dir, f"engine_{fp}.npz")


def save_checkpoint(path, meta, state, logs, task_end, task_params) -> None:
    """Write ``meta`` (JSON), the state's leaves, the logs, task-end metrics and kept
    task parameters to ``path`` (``.npz``) atomically: temporary file, ``fsync``, rename."""
    payload = {"meta": np.asarray(json.dumps(meta))}
    for i, leaf in enumerate(jax.tree_util.tree_leaves(state)):
        payload[f"state/{i}"] = np.asarray(leaf)
    for k, v in logs.items():
        payload[f"logs/{k}"] = v
    for k, v in task_end.items():
        payload[f"task_end/{k}"] = v
    if task_params is not None:
        for i, leaf in enumerate(jax.tree_util.tree_leaves(task_params)):
            payload[f"task_params/{i}"] = leaf
    tmp = f"{path}.tmp{os.getpid()}.npz"
    with open(tmp, "wb") as fh:
        np.savez(fh, **payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path, state_template, task_params_template):
    """``(meta, state, logs, task_end, task_params)`` from ``path``; the state (numpy
    leaves) takes the structure of ``state_template`` and must match its shapes."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        leaves, treedef = jax.tree_util.tree_flatten(state_template)
        new_leaves = []
        for i, ref in enumerate(leaves):
            arr = z[f"state/{i}"]
            if arr.shape != np.shape(ref):
                raise ValueError(
                    f"checkpoint {path} does not match this run (state leaf {i}: "
                    f"{arr.shape} vs {np.shape(ref)})"
                )
            new_leaves.append(arr)
        state = jax.tree_util.tree_unflatten(treedef, new_leaves)
        logs = {k[5:]: z[k] for k in z.files if k.startswith("logs/")}
        task_end = {k[9:]: z[k] for k in z.files if k.startswith("task_end/")}
        task_params = None
        if task_params_template is not None:
            tl, tdef = jax.tree_util.tree_flatten(task_params_template)
            task_params = jax.tree_util.tree_unflatten(
                tdef, [z[f"task_params/{i}"] for i in range(len(tl))]
            )
    return meta, state, logs, task_end, task_params
