"""Progress bars for long runs (compatibility alias).

The project's progress bar is :func:`plasticity_lib.runner.progress_bar`: a plain-text
``tqdm`` bar (no widget output, which a rendered book could not show), silenced with
tqdm's own ``disable=`` when ``enabled=False``, so callers need no ``if bar is not None``
checks. This module re-exports it for the code that imports it from here.
"""

from __future__ import annotations

from .runner import progress_bar

__all__ = ["progress_bar"]
