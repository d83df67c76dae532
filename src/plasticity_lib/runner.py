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
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

import jax
import numpy as np

__all__ = ["run_chunks", "progress_bar"]


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
    Returns:
      ``(carry, outs)``: the final carry (fetched to the host) and the joined outputs.
    """
    num_chunks, start = int(num_chunks), int(start)
    if num_chunks < 0 or not 0 <= start <= num_chunks:
        raise ValueError(f"run_chunks: need 0 <= start={start} <= num_chunks={num_chunks}")
    bar = progress_bar(
        num_chunks * units_per_chunk,
        desc=desc,
        unit=unit,
        enabled=progress,
        initial=start * units_per_chunk,
    )
    parts = []
    try:
        for i in range(start, num_chunks):
            carry, out = chunk_fn(carry, i)
            out = jax.device_get(out)
            parts.append(out)
            if postfix is not None:
                bar.set_postfix({k: _fmt(v) for k, v in postfix(out).items()})
            bar.update(units_per_chunk)
            if on_chunk is not None:
                on_chunk(i, carry, out)
    finally:
        bar.close()
    carry = jax.device_get(carry)
    if axis is None or not parts:
        return carry, parts
    joined = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs, axis=axis), *parts)
    return carry, joined
