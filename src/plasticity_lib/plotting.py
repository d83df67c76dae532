"""The book's figure style and helpers (seaborn).

* :func:`set_theme` — one seaborn theme for the whole book (called by every chapter).
* :func:`long_frame` — turn a ``(seeds, x)`` array into a long DataFrame for
  seaborn's mean-and-band plots (``errorbar=t_band``: the t-interval over seeds).
* :func:`savefig` — save a figure as PNG next to the executed notebook
  (``results/<profile>/figures``) so it can be looked at outside the book.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas

PALETTE = "colorblind"


def set_theme() -> None:
    """The seaborn theme used by every chapter (legible at book width)."""
    import matplotlib
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=1.0)
    matplotlib.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 130,
            "savefig.bbox": "tight",
            "axes.titlesize": "medium",
            "axes.titleweight": "bold",
            "legend.frameon": False,
        }
    )
    from . import timing

    timing.install_plotting_timer()  # rendering counts as "plotting" in the time account


def long_frame(
    values: np.ndarray, x: Sequence | None = None, x_name: str = "x", y_name: str = "y", **labels
) -> "pandas.DataFrame":
    """A long DataFrame from per-seed curves.

    Args:
      values: ``(seeds, len(x))`` array.
      x: the x coordinates (default ``range(len)``).
      labels: constant columns added to every row (e.g. ``method="LN+L2"``).
    Returns:
      DataFrame with columns ``seed``, ``x_name``, ``y_name`` and the labels.
    """
    import pandas as pd

    v = np.asarray(values)
    if v.ndim == 1:
        v = v[None]
    if v.ndim != 2:
        raise ValueError(f"long_frame: `values` must be (seeds, points), got shape {v.shape}")
    xs = np.arange(v.shape[1]) if x is None else np.asarray(x)
    if len(xs) != v.shape[1]:
        raise ValueError(
            f"long_frame: len(x)={len(xs)} does not match values.shape[1]={v.shape[1]}"
        )
    seeds = np.repeat(np.arange(v.shape[0]), v.shape[1])
    df = pd.DataFrame({"seed": seeds, x_name: np.tile(xs, v.shape[0]), y_name: v.reshape(-1)})
    for k, val in labels.items():
        df[k] = val
    return df


def figure_dir(profile: str) -> Path:
    from .claims import results_dir

    return results_dir(profile) / "figures"


def savefig(fig, name: str, profile: str) -> Path:
    """Save ``fig`` as ``<results>/figures/<name>.png`` (atomic) and return the path."""
    d = figure_dir(profile)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.png"
    tmp = d / f".{name}.tmp.png"
    fig.savefig(tmp)
    os.replace(tmp, path)
    return path


def plain_log_y(axes) -> None:
    """Log y-axis on every axes of ``axes`` (one ``Axes`` or an array of them), with the
    ticks written as plain numbers (``0.5``, ``20``, not ``5 x 10^-1``): at 1, 2, 5 x 10^k
    when the axis spans less than three decades, else at the powers of ten.

    Call it after the data are drawn (it reads the axis limits).
    """
    import matplotlib.ticker as ticker

    plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
    for ax in np.ravel(axes):
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        subs = (1.0, 2.0, 5.0) if np.log10(hi / lo) < 3 else (1.0,)
        ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def seed_band_lines(
    ax,
    curves: dict,
    x: Sequence,
    *,
    x_name: str = "x",
    y_name: str = "y",
    hue: str = "method",
    **kwargs,
):
    """One line per curve: the mean over seeds with its 95 % t-band (:func:`t_band`, by
    ``seaborn.lineplot``).

    Args:
      ax: the matplotlib ``Axes`` to draw on.
      curves: ``{label: (seeds, len(x)) array}``; the labels name the lines.
      x: ``(points,)`` x coordinates shared by every curve.
      x_name, y_name: column names of the long frame (seaborn's default axis labels).
      hue: column that holds the labels (the legend's title).
      kwargs: passed on to ``seaborn.lineplot`` (default ``marker="o"``).
    Returns:
      the long ``pandas.DataFrame`` drawn (:func:`long_frame` of each curve, concatenated).
    """
    import pandas as pd
    import seaborn as sns

    frames = [
        long_frame(v, x=x, x_name=x_name, y_name=y_name, **{hue: label})
        for label, v in curves.items()
    ]
    df = pd.concat(frames, ignore_index=True)
    kwargs.setdefault("marker", "o")
    sns.lineplot(data=df, x=x_name, y=y_name, hue=hue, errorbar=t_band, ax=ax, **kwargs)
    return df


def reference_line(
    ax, y: float, label: str | None = None, *, fontsize: float = 9, below: bool = False
) -> None:
    """A dotted grey horizontal line at ``y`` (a chance level, the loss of no fit, ...),
    labelled at the left edge of ``ax`` (above the line, or below it with ``below``)."""
    import matplotlib.transforms as mtransforms

    ax.axhline(y, color="grey", ls=":", lw=1)
    if label:
        trans = mtransforms.blended_transform_factory(ax.transAxes, ax.transData)
        va = "top" if below else "bottom"
        ax.text(0.01, y, f" {label}", transform=trans, color="grey", fontsize=fontsize, va=va)


def log_x_ticks(ax, ticks: Sequence[float]) -> None:
    """Log x-axis on ``ax`` with major ticks exactly at ``ticks`` ``(K,)`` (e.g. the
    conditions of a sweep), written as plain numbers (``0.01``, ``1``); no minor labels."""
    import matplotlib.ticker as ticker

    ticks = [float(t) for t in ticks]
    ax.set_xscale("log")
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def log_dodge(values: Sequence[float], index: int, count: int, factor: float = 1.08) -> list:
    """Positions of group ``index`` of ``count`` groups drawn side by side on a log axis.

    Each value ``v`` of ``values`` ``(K,)`` becomes ``v * factor ** (index - (count - 1) / 2)``:
    the groups are spread symmetrically around ``v`` by a constant *ratio*, so that their
    error bars do not overlap whatever the decade.
    """
    if not 0 <= index < count:
        raise ValueError(f"log_dodge: need 0 <= index < count, got index={index}, count={count}")
    if factor <= 0:
        raise ValueError(f"log_dodge: factor={factor} must be positive")
    shift = factor ** (index - (count - 1) / 2)
    return [v * shift for v in values]


def class_block_ticks(ax, labels: Sequence[int]) -> None:
    """Label the rows and columns of a heat map of inputs sorted by class (e.g. an eNTK
    on a label-ordered batch, §3.3 / Fig. 3): thin lines between the class blocks and
    one tick per block, at its centre, naming the class.

    Args:
      ax: the ``Axes`` of an ``imshow`` of an ``(n, n)`` matrix.
      labels: ``(n,)`` class of each row/column, sorted (blocks contiguous).
    """
    labels = np.asarray(labels)
    starts = np.r_[0, np.flatnonzero(np.diff(labels)) + 1]
    for edge in starts[1:] - 0.5:
        ax.axhline(edge, color="k", lw=0.4, alpha=0.5)
        ax.axvline(edge, color="k", lw=0.4, alpha=0.5)
    ends = np.r_[starts[1:], len(labels)]
    centres = (starts + ends - 1) / 2
    names = [str(labels[s]) for s in starts]
    ax.set_xticks(centres, names, fontsize=7)
    ax.set_yticks(centres, names, fontsize=7)
    ax.tick_params(length=0)
    ax.grid(False)


def t_band(values, confidence: float = 0.95) -> tuple:
    """The Student-t interval of the mean of ``values`` (one per seed, ``(S,)``), as
    seaborn's ``errorbar=`` callable: ``sns.lineplot(..., errorbar=plotting.t_band)``.

    The book's bands are 95 % intervals over seeds; this is the same t-interval as the
    claims (``claims.t_interval``: deterministic, unlike seaborn's bootstrap). Non-finite
    values are left out; fewer than two values give ``(mean, mean)`` (no band).
    """
    from .claims import t_interval

    v = np.asarray(values, np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size < 2:
        m = float(v.mean()) if v.size else float("nan")
        return m, m
    est = t_interval(v, confidence)
    return est.low, est.high


def switch_line(ax, step: float = 0.5) -> None:
    """A dashed grey vertical line at ``step`` on ``ax``: the task switch, between the
    last step of the old task (0) and the first of the new one (1)."""
    ax.axvline(step, color="grey", ls="--", lw=1)


def t_band_lines(ax, data, hue: str, *, x: str = "step", y: str = "value", **kwargs):
    """One line per ``hue`` level of the long frame ``data`` (one row per seed and ``x``):
    the mean over seeds with its 95 % t-band (:func:`t_band`), by ``seaborn.lineplot``
    on ``ax``; ``kwargs`` go to ``lineplot`` (e.g. ``legend=False``)."""
    import seaborn as sns

    return sns.lineplot(data=data, x=x, y=y, hue=hue, errorbar=t_band, ax=ax, **kwargs)


#: The mime-type prefix under which myst-nb's ``glue`` keeps an output for the book only.
GLUE_PREFIX = "application/papermill.record/"


def figure(fig, name: str, profile: str, *, close: bool = True) -> None:
    """Save ``fig`` as :func:`savefig` does and show it once, *glued* under ``name``, so
    that the book places it as a numbered figure with a caption and alt text.

    In the chapter, the code cell ends with (instead of ``savefig`` + ``plt.show()``)::

        plotting.figure(fig, "ch02_final_accuracy_vs_eps", P.profile)

    and the markdown cell after it holds the figure::

        ```{glue:figure} ch02_final_accuracy_vs_eps
        :name: fig-ch02-final-accuracy-vs-eps
        :alt: End-of-run accuracy against eps on a log axis, one line per activation.

        End-of-run accuracy against the fraction $\\epsilon$ re-randomised ...
        ```

    which the prose cites as ``{numref}`fig-ch02-final-accuracy-vs-eps``` ("Figure 3").

    The single display output carries the PNG twice: as ``image/png``, which Jupyter
    and Colab show under the cell, and under :data:`GLUE_PREFIX` with myst-nb's
    ``scrapbook`` metadata, which the book pastes at the ``{glue:figure}``; myst-nb
    then drops the output from the code cell, so the book shows the figure once, with
    its caption. The image is the saved PNG (at ``savefig.dpi``), shown at the figure's
    size at ``figure.dpi``. Outside IPython nothing is displayed. ``close`` closes
    ``fig``, so that the inline backend does not show it a second time. Returns None
    (nothing is echoed when the call ends a cell); the PNG is
    ``figure_dir(profile) / f"{name}.png"``.
    """
    import base64
    import struct

    import matplotlib

    path = savefig(fig, name, profile)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython comes with the notebook stack
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        png = path.read_bytes()
        width = struct.unpack(">I", png[16:20])[0]  # the IHDR chunk
        saved_dpi = matplotlib.rcParams["savefig.dpi"]
        saved_dpi = fig.dpi if saved_dpi == "figure" else float(saved_dpi)
        bundle = {
            "image/png": base64.b64encode(png).decode("ascii"),
            "text/plain": f"<Figure {name}>",
        }
        data = {**bundle, **{GLUE_PREFIX + k: v for k, v in bundle.items()}}
        metadata = {
            "image/png": {"width": round(width * fig.dpi / saved_dpi)},
            "scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX},
        }
        display(data, raw=True, metadata=metadata)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
