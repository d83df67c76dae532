"""One way to run a long protocol: a compiled chunk, called repeatedly, with progress.

Every training protocol of the book has the same host-side shape: a jitted function
advances the state of all models by one *chunk* (some steps, a task, an iteration of a
schedule) and returns what it logged; the host calls it again and again, fetches the
logs, shows progress and finally joins the logs. :func:`run_chunks` is that loop,
written once (the purejaxrl style: the chapter writes the compiled step, this runs it).

Example (chapter 1's fine-tuning)::

    def chunk(state, i):
        return train.train_steps(net, cfg, state, task, 100, log_every=10)

    state, logs = runner.run_chunks(chunk, state, 20, desc="fine-tune", unit="step",
                                    units_per_chunk=100,
                                    postfix=lambda out: {"loss": out["loss"][:, -1].mean()})
    # logs["loss"]: (models, 20 * 10), the chunks' outputs joined along ``axis=1``

A long run (the paper profile on a GPU) passes ``checkpoint=path``: after every chunk the
carry and the outputs so far are written to ``path`` atomically (temporary file,
``fsync``, rename), and a rerun with the same ``path`` resumes after the last completed
chunk, with the same final carry and outputs as an uninterrupted run (tested). Chapters
take the path from :func:`plasticity_lib.profiles.checkpoint_path`, which names a file
only at the paper profile.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import jax
import numpy as np

from . import timing

__all__ = ["run_chunks", "progress_bar", "CheckpointMismatch"]

_FORMAT = "plasticity_lib.runner/1"


class CheckpointMismatch(ValueError):
    """A ``run_chunks`` checkpoint that does not belong to this run (other number of
    chunks, other carry structure or shapes): it is never resumed silently."""


def progress_bar(total: int, *, desc: str, unit: str, enabled: bool = True, initial: int = 0):
    """A plain-text ``tqdm`` bar over ``total`` units (``disable=not enabled``).

    Text mode (not ``tqdm.auto``): a rendered book cannot show widgets.
    """
    from tqdm import tqdm

    return tqdm(
        total=int(total),
        initial=int(initial),
        desc=desc,
        unit=unit,
        leave=True,
        disable=not enabled,
    )


def _fmt(v: Any) -> str:
    try:
        return f"{float(np.nanmean(np.asarray(v, dtype=np.float64))):.4g}"
    except (TypeError, ValueError):
        return str(v)


def run_chunks(
    chunk_fn: Callable[[Any, int], tuple[Any, Any]],
    carry: Any,
    num_chunks: int,
    *,
    desc: str,
    unit: str = "chunk",
    units_per_chunk: int = 1,
    progress: bool = True,
    postfix: Optional[Callable[[Any], Mapping[str, Any]]] = None,
    axis: Optional[int] = 1,
    start: int = 0,
    on_chunk: Optional[Callable[[int, Any, Any], None]] = None,
    checkpoint: Optional[str | os.PathLike] = None,
) -> tuple[Any, Any]:
    """Call ``carry, out = chunk_fn(carry, i)`` for ``i = start .. num_chunks - 1``.

    Args:
      chunk_fn: one compiled chunk (usually a jitted function or a call of
        ``train.train_steps``): ``(carry, chunk_index) -> (carry, out)``; ``out`` is a
        pytree of arrays (the chunk's logs), fetched to the host after each call.
      carry: the initial state (any pytree; stays on the device between calls).
      num_chunks: how many chunks in total.
      desc, unit, units_per_chunk: the progress bar's label, unit and units per chunk
        (e.g. ``unit="step", units_per_chunk=100``).
      progress: show the bar (``tqdm(disable=not progress)``).
      postfix: ``out -> {name: value}`` shown on the bar after each chunk (values are
        reduced with ``nanmean``).
      axis: the axis along which the chunks' outputs are joined
        (``np.concatenate``); ``None`` returns the list of per-chunk outputs.
      start: the first chunk index (a run resumed from a checkpoint).
      on_chunk: optional ``(i, carry, out) -> None`` called after each chunk (e.g. to
        write a checkpoint); ``out`` is already on the host.
      checkpoint: optional file path. After every chunk, the carry and the outputs so
        far are saved atomically to that path with a fingerprint of the initial carry and
        ``num_chunks`` added to its name (``run.pkl`` -> ``run-<16 hex>.pkl``, so a run
        from other initial state never resumes this one); if that file exists when the
        call starts, the run resumes after its last completed chunk (``start`` must then
        be 0). The file is kept after the last chunk, so a rerun returns the saved result
        at once.
    Returns:
      ``(carry, outs)``: the final carry (fetched to the host) and the joined outputs.
    Raises:
      CheckpointMismatch: ``checkpoint`` holds another run (number of chunks, carry
        structure or leaf shapes differ).
    """
    num_chunks, start = int(num_chunks), int(start)
    if num_chunks < 0 or not 0 <= start <= num_chunks:
        raise ValueError(f"run_chunks: need 0 <= start={start} <= num_chunks={num_chunks}")
    parts: list[Any] = []
    if checkpoint is not None:
        checkpoint = _with_fingerprint(Path(checkpoint), carry, num_chunks)
        if checkpoint.exists():
            if start:
                raise ValueError("run_chunks: give either start= or checkpoint=, not both")
            start, carry, parts = _load(checkpoint, carry, num_chunks)
    bar = progress_bar(
        num_chunks * units_per_chunk,
        desc=desc,
        unit=unit,
        enabled=progress,
        initial=start * units_per_chunk,
    )
    try:
        with timing.section("training"):  # the time account (timing)
            for i in range(start, num_chunks):
                carry, out = chunk_fn(carry, i)
                out = jax.device_get(out)
                parts.append(out)
                if postfix is not None:
                    bar.set_postfix({k: _fmt(v) for k, v in postfix(out).items()})
                bar.update(units_per_chunk)
                if checkpoint is not None:
                    _save(checkpoint, i + 1, num_chunks, carry, parts)
                if on_chunk is not None:
                    on_chunk(i, carry, out)
    finally:
        bar.close()
    carry = jax.device_get(carry)
    if axis is None or not parts:
        return carry, parts
    joined = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs, axis=axis), *parts)
    return carry, joined


def _save(path: Path, next_chunk: int, num_chunks: int, carry: Any, parts: list) -> None:
    """Write the run's state after ``next_chunk`` chunks to ``path`` atomically."""
    payload = {
        "format": _FORMAT,
        "next_chunk": next_chunk,
        "num_chunks": num_chunks,
        "carry": jax.device_get(carry),
        "parts": parts,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load(path: Path, template: Any, num_chunks: int) -> tuple[int, Any, list]:
    """``(next_chunk, carry, parts)`` from a checkpoint of :func:`run_chunks`, checked
    against this run's initial carry ``template`` and ``num_chunks``."""
    with open(path, "rb") as fh:
        payload = pickle.load(fh)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise CheckpointMismatch(f"{path} is not a run_chunks checkpoint; delete it or move it")
    if payload["num_chunks"] != num_chunks:
        raise CheckpointMismatch(
            f"{path} is a run of {payload['num_chunks']} chunks, this run has {num_chunks}; "
            "delete the file to start afresh"
        )
    carry = payload["carry"]
    want, got = jax.tree_util.tree_structure(template), jax.tree_util.tree_structure(carry)
    if want != got:
        raise CheckpointMismatch(f"{path}: the saved carry has another structure than this run's")
    for a, b in zip(jax.tree_util.tree_leaves(template), jax.tree_util.tree_leaves(carry)):
        if np.shape(a) != np.shape(b) or _dtype(a) != _dtype(b):
            raise CheckpointMismatch(
                f"{path}: saved carry leaf {np.shape(b)} {_dtype(b)} does not match "
                f"this run's {np.shape(a)} {_dtype(a)}"
            )
    return int(payload["next_chunk"]), carry, list(payload["parts"])


def _dtype(x: Any) -> str:
    """The dtype a leaf has inside a compiled chunk (a Python ``0`` is ``int32``)."""
    try:
        return str(jax.numpy.result_type(x))
    except TypeError:
        return str(getattr(x, "dtype", type(x).__name__))


def _with_fingerprint(path: Path, carry: Any, num_chunks: int) -> Path:
    """``path`` with a hash of the initial carry (structure, shapes, dtypes and sampled
    values of every leaf) and of ``num_chunks`` inserted before its suffix."""
    import hashlib

    h = hashlib.sha1(repr((num_chunks, jax.tree_util.tree_structure(carry))).encode())
    for leaf in jax.tree_util.tree_leaves(carry):
        a = np.asarray(jax.device_get(leaf))
        h.update(repr((a.shape, _dtype(leaf))).encode())
        flat = a.reshape(-1)
        if flat.dtype.kind in "biufc":
            h.update(np.ascontiguousarray(flat[:: max(1, flat.size // 100_000)]).tobytes())
    return path.with_name(f"{path.stem}-{h.hexdigest()[:16]}{path.suffix}")
