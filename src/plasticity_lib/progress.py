"""Progress bars for long runs.

One helper, :func:`progress_bar`, so that the training engine and the experiments
modules show the same plain-text bars (``tqdm`` in text mode: no widget output, which a
rendered book could not show) and need no ``if bar is not None`` checks.
"""

from __future__ import annotations

from typing import Any


class NullBar:
    """A bar that shows nothing: what :func:`progress_bar` returns when disabled."""

    def update(self, n: int = 1) -> None:
        """Ignore ``n`` finished units."""

    def set_postfix(self, **kwargs: Any) -> None:
        """Ignore the status fields."""

    def close(self) -> None:
        """Nothing to close."""


def progress_bar(total: int, *, desc: str, unit: str, enabled: bool = True, initial: int = 0):
    """A text progress bar over ``total`` units (``tqdm``), or a :class:`NullBar`.

    Args:
      total: units of work (steps, chunks, tasks, iterations).
      desc: the label in front of the bar. unit: the name of one unit.
      enabled: False returns a :class:`NullBar` (e.g. ``progress=False`` in tests).
      initial: units already done (a run resumed from a checkpoint).
    Returns:
      an object with ``update(n)``, ``set_postfix(**fields)`` and ``close()``.
    """
    if not enabled:
        return NullBar()
    from tqdm import tqdm  # text bar: tqdm.auto would need ipywidgets

    return tqdm(total=int(total), initial=int(initial), desc=desc, unit=unit, leave=True)
