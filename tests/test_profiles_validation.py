"""profiles.resolve: non-finite floats, numbers passed as text, cross-field bounds
(``CONSTRAINTS``) and ``profile`` given as an override (issue 21, defect 3)."""

import importlib
import math
import types

import pytest

from plasticity_lib import cli, profiles
from plasticity_lib.profiles import ParameterError

CH0 = "ch00_overview"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_float_is_rejected_by_name(bad):
    with pytest.raises(ParameterError, match=r"'learning_rate' must be finite"):
        profiles.resolve(CH0, "smoke", learning_rate=bad)
    # NaN passed every range comparison before (step_fraction has range (0, 0.5))
    with pytest.raises(ParameterError, match=r"'step_fraction' must be finite"):
        profiles.resolve("ch04_entk_pathologies", "smoke", step_fraction=bad)
    # each element of a tuple-of-float parameter
    with pytest.raises(ParameterError, match=r"'l2_sweep' must be finite"):
        profiles.resolve("ch06_swiss_cheese", "smoke", l2_sweep=[1e-5, bad])


def test_int_beyond_the_float_range_is_not_finite():
    with pytest.raises(ParameterError, match=r"'l2' must be finite.*beyond the float range"):
        profiles.resolve(CH0, "smoke", l2=10**400)


def test_ints_and_large_floats_validate_as_floats():
    P = profiles.resolve(CH0, "smoke", learning_rate=1, l2=1e30)
    assert P.learning_rate == 1.0 and type(P.learning_rate) is float
    assert P.l2 == 1e30
    assert profiles.resolve(CH0, "smoke", learning_rate=1e-05).learning_rate == 1e-05
    offsets = profiles.resolve("ch01_target_offset", "smoke", offsets=[0, 8, 64]).offsets
    assert offsets == (0.0, 8.0, 64.0) and all(type(b) is float for b in offsets)


def test_number_passed_as_text_gets_an_actionable_message():
    with pytest.raises(ParameterError) as e:
        profiles.resolve(CH0, "smoke", learning_rate="1e-05")
    msg = str(e.value)
    assert "'learning_rate' must be float, got '1e-05' (str)" in msg
    assert "number passed as text" in msg and "1.0e-05" in msg
    with pytest.raises(ParameterError, match=r"'1e-05' is a number passed as text"):
        profiles.resolve("ch06_swiss_cheese", "smoke", l2_sweep=["1e-05", 0.001])
    with pytest.raises(ParameterError) as e:  # a word stays a plain type error
        profiles.resolve(CH0, "smoke", learning_rate="fast")
    assert "passed as text" not in str(e.value)


def test_batch_size_is_bounded_by_n_train():
    with pytest.raises(ParameterError) as e:
        profiles.resolve(CH0, "smoke", batch_size=100_000, n_train=16)
    assert "'batch_size' = 100000 must be <= parameter 'n_train' = 16" in str(e.value)
    # the bound is on the resolved values: a profile value can be the other side
    with pytest.raises(ParameterError, match=r"'batch_size' = 64 must be <= .*'n_train' = 16"):
        profiles.resolve(CH0, "default", n_train=16)
    assert profiles.resolve(CH0, "smoke", batch_size=16, n_train=16).batch_size == 16


@pytest.mark.parametrize(
    "chapter, overrides, message",
    [
        (CH0, {"log_every": 61}, "'log_every' = 61 must be <= parameter 'steps_per_task' = 60"),
        ("ch01_target_offset", {"n_probe": 257}, "'n_probe' = 257 must be <= parameter 'n_train'"),
        ("ch02_shift_smoothness", {"batch_size": 101}, "'batch_size' = 101 must be <="),
        ("ch03_relu_death", {"probe_size": 300}, "'probe_size' = 300 must be <= "),
        ("ch04_entk_pathologies", {"reg_checkpoints": 3}, "'reg_checkpoints' = 3 must divide"),
        ("ch04_entk_pathologies", {"probe_n": 300}, "'probe_n' = 300 must be <= "),
        (
            "ch05_linearized_ntk",
            {"bottleneck_units": (1, 4)},
            "'bottleneck_units' = (1, 4) must each be < parameter 'bottleneck_rank' = 4",
        ),
        ("ch05_linearized_ntk", {"input_ranks": (2, 13)}, "'input_ranks' = (2, 13) must each"),
        ("ch06_swiss_cheese", {"log_every": 21}, "'log_every' = 21 must be <= "),
    ],
)
def test_chapter_constraints(chapter, overrides, message):
    with pytest.raises(ParameterError) as e:
        profiles.resolve(chapter, "smoke", **overrides)
    assert message in str(e.value)


@pytest.mark.parametrize("chapter", profiles.chapters())
def test_every_chapter_declares_well_formed_constraints(chapter):
    t = profiles.table(chapter)
    assert t.CONSTRAINTS, f"{chapter} declares no CONSTRAINTS"
    for left, op, right in t.CONSTRAINTS:
        assert op in profiles.OPS and {left, right} <= set(t.PROFILES["default"])


def test_malformed_constraint_is_a_parameter_error():
    mod = importlib.import_module(f"plasticity_lib.profiles.{CH0}")
    fake = types.SimpleNamespace(
        __name__="fake", __doc__="", Parameters=mod.Parameters, CONSTRAINTS=[("batch", "<=", "n")]
    )
    with pytest.raises(ParameterError, match=r"bad constraint \('batch', '<=', 'n'\)"):
        profiles._from_dataclass("ch99_fake", fake)
    fake.CONSTRAINTS = [("batch_size", "~", "n_train")]
    with pytest.raises(ParameterError, match="bad constraint"):
        profiles._from_dataclass("ch99_fake", fake)


def test_profile_as_an_override_says_use_profile():
    with pytest.raises(ParameterError, match=r"use --profile paper instead of --param profile"):
        profiles.resolve(CH0, "smoke", profile="paper")  # what --param profile=paper does
    assert profiles.resolve(CH0, profile="paper").profile == "paper"  # keyword still works
    assert profiles.resolve(CH0, "smoke", profile=None).profile == "smoke"
    assert profiles.resolve(CH0).profile == "default"


def test_cli_param_profile_is_a_clear_error(capsys):
    # validation happens before any notebook is written or run
    argv = ["execute", "--profile", "smoke", "--chapters", "00", "--param", "profile=paper"]
    assert cli.main(argv) == 2  # was an uncaught TypeError from resolve's signature
    err = capsys.readouterr().err
    assert "--profile paper" in err and "--param profile=paper" in err


def test_plasticity_profile_env_picks_the_profile_left_at_default(monkeypatch):
    from plasticity_lib import profiles

    monkeypatch.setenv("PLASTICITY_PROFILE", "smoke")
    monkeypatch.setenv("PLASTICITY_ALLOW_CPU", "1")  # the paper profile refuses a CPU
    assert profiles.resolve_notebook("ch00_overview", {"profile": "default"}).profile == "smoke"
    assert profiles.resolve_notebook("ch00_overview", {"profile": "paper"}).profile == "paper"
    monkeypatch.setenv("PLASTICITY_PROFILE", "fast")
    with pytest.raises(profiles.ParameterError, match="PLASTICITY_PROFILE"):
        profiles.resolve_notebook("ch00_overview", {"profile": "default"})
