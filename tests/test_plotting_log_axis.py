"""``plotting.plain_log_y``: log axes whose ticks read as plain numbers."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from plasticity_lib import plotting  # noqa: E402


def test_plain_log_y_narrow_and_wide_ranges():
    fig, axes = plt.subplots(1, 2)
    axes[0].plot([0, 1], [0.3, 30.0])  # two decades: ticks at 1, 2, 5 x 10^k
    axes[1].plot([0, 1], [1e-3, 1e3])  # six decades: ticks at the powers of ten
    plotting.plain_log_y(axes)
    for ax in axes:
        assert ax.get_yscale() == "log"
    fmt = axes[0].yaxis.get_major_formatter()
    assert fmt(0.5, 0) == "0.5" and fmt(20.0, 0) == "20" and fmt(1e-3, 0) == "0.001"
    lo, hi = axes[0].get_ylim()
    narrow = [t for t in axes[0].yaxis.get_major_locator().tick_values(lo, hi) if lo <= t <= hi]
    np.testing.assert_allclose(narrow, [0.5, 1, 2, 5, 10, 20])
    lo, hi = axes[1].get_ylim()
    wide = [t for t in axes[1].yaxis.get_major_locator().tick_values(lo, hi) if lo <= t <= hi]
    assert np.allclose(np.log10(wide), np.round(np.log10(wide)))  # powers of ten only
    assert axes[0].yaxis.get_minor_formatter()(3.0, 0) == ""
    plt.close(fig)


def test_plain_log_y_accepts_one_axes():
    fig, ax = plt.subplots()
    ax.plot([1, 2], [1.0, 4.0])
    plotting.plain_log_y(ax)
    assert ax.get_yscale() == "log"
    plt.close(fig)
