"""``plotting.log_x_ticks`` and ``plotting.log_dodge``: a log x-axis with ticks at the
conditions of a sweep, and groups drawn side by side at a constant ratio."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from plasticity_lib import plotting  # noqa: E402


def test_log_x_ticks_at_the_conditions():
    fig, ax = plt.subplots()
    ax.plot([0.01, 0.1, 0.5, 1.0], [1, 2, 3, 4])
    plotting.log_x_ticks(ax, (0.01, 0.1, 0.5, 1.0))
    assert ax.get_xscale() == "log"
    np.testing.assert_allclose(ax.get_xticks(), [0.01, 0.1, 0.5, 1.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.01", "0.1", "0.5", "1"]
    assert ax.xaxis.get_minor_formatter()(0.2, 0) == ""
    plt.close(fig)


def test_log_dodge_is_symmetric_in_log_space():
    values = [0.01, 0.1, 1.0]
    groups = [plotting.log_dodge(values, k, 3) for k in range(3)]
    np.testing.assert_allclose(groups[1], values)  # the middle group stays in place
    np.testing.assert_allclose(groups[0], [v / 1.08 for v in values])
    np.testing.assert_allclose(groups[2], [v * 1.08 for v in values])
    two = [plotting.log_dodge(values, k, 2, factor=4.0) for k in range(2)]
    np.testing.assert_allclose(np.log(two[1]) - np.log(values), np.log(2.0))  # 4 ** 0.5
    np.testing.assert_allclose(np.log(values) - np.log(two[0]), np.log(2.0))
    with pytest.raises(ValueError, match="index"):
        plotting.log_dodge(values, 3, 3)
    with pytest.raises(ValueError, match="factor"):
        plotting.log_dodge(values, 0, 2, factor=0.0)
