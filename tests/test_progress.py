"""The shared progress bar: a tqdm text bar when enabled, silent (tqdm's disable=) otherwise."""

from plasticity_lib import runner
from plasticity_lib.progress import progress_bar


def test_progress_alias_is_the_runner_bar():
    assert progress_bar is runner.progress_bar


def test_disabled_bar_is_silent(capsys):
    bar = progress_bar(10, desc="x", unit="step", enabled=False)
    assert bar.disable
    bar.update(3)
    bar.set_postfix(loss="1.0")
    bar.close()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_enabled_bar_counts_and_resumes(capsys):
    bar = progress_bar(10, desc="train", unit="chunk", initial=4)
    bar.update(2)
    assert bar.n == 6 and bar.total == 10
    bar.set_postfix(loss="0.5")
    bar.close()
    err = capsys.readouterr().err
    assert "train" in err and "6/10" in err and "chunk" in err and "loss=0.5" in err
