"""``plotting.seed_band_lines``, ``reference_line`` and ``class_block_ticks``: what they
draw, checked against the data they were given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from plasticity_lib import plotting  # noqa: E402


def test_seed_band_lines_draw_the_seed_mean_of_each_curve():
    rng = np.random.default_rng(0)
    curves = {"A": rng.normal(size=(4, 5)), "B": 10 + rng.normal(size=(4, 5))}
    x = np.arange(1, 6)
    fig, ax = plt.subplots()
    df = plotting.seed_band_lines(ax, curves, x, x_name="task", y_name="accuracy")
    assert len(df) == 2 * 4 * 5 and set(df.columns) == {"seed", "task", "accuracy", "method"}
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 5]
    assert len(lines) == 2
    for line, values in zip(lines, curves.values()):
        np.testing.assert_allclose(line.get_xdata(), x)
        np.testing.assert_allclose(line.get_ydata(), values.mean(0))
        assert line.get_marker() == "o"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A", "B"]
    plt.close(fig)


def test_seed_band_lines_band_is_the_t_interval_of_the_seeds():
    # one curve, 3 seeds at 2 points: the band's edges at each x are the Student-t
    # interval of the seed values there (t_{0.975, 2} = 4.3027), not a bootstrap
    values = np.array([[1.0, 10.0], [2.0, 12.0], [3.0, 14.0]])
    fig, ax = plt.subplots()
    plotting.seed_band_lines(ax, {"A": values}, [0, 1])
    (band,) = ax.collections
    ys = np.concatenate([path.vertices[:, 1] for path in band.get_paths()])
    t = 4.302652729911275
    half = t * values.std(axis=0, ddof=1) / np.sqrt(3)
    expected = np.concatenate([values.mean(0) - half, values.mean(0) + half])
    np.testing.assert_allclose(np.sort(np.unique(np.round(ys, 9))), np.sort(expected), rtol=1e-9)
    plt.close(fig)


def test_reference_line_and_its_label():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 20])
    plotting.reference_line(ax, 10.0, "chance")
    plotting.reference_line(ax, 5.0)
    flat = [line for line in ax.get_lines() if np.all(np.asarray(line.get_ydata()) == 10.0)]
    assert len(flat) == 1 and flat[0].get_linestyle() == ":"
    (text,) = ax.texts  # the unlabelled line adds no text
    assert text.get_text().strip() == "chance" and text.get_position()[1] == 10.0
    plt.close(fig)


def test_class_block_ticks_one_tick_per_class_at_its_centre():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    fig, ax = plt.subplots()
    ax.imshow(np.zeros((9, 9)))
    plotting.class_block_ticks(ax, labels)
    # by hand: blocks [0, 2], [3, 4], [5, 8] -> centres 1, 3.5, 6.5; edges at 2.5, 4.5
    np.testing.assert_allclose(ax.get_xticks(), [1.0, 3.5, 6.5])
    np.testing.assert_allclose(ax.get_yticks(), [1.0, 3.5, 6.5])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    lines = ax.get_lines()
    horizontal = sorted(float(ln.get_ydata()[0]) for ln in lines if ln.get_xdata()[0] == 0)
    vertical = sorted(float(ln.get_xdata()[0]) for ln in lines if ln.get_ydata()[0] == 0)
    assert horizontal == [2.5, 4.5] and vertical == [2.5, 4.5]
    plt.close(fig)
