"""``claims.could_fail`` (issue 15, chapter 1's ``ch1.bias_in_features``): a part that
says whether the protocol could have made the claim fail, and how it combines."""

import types

import pytest

from plasticity_lib import claims


def _book(profile="default"):
    return claims.ClaimBook("ch01_test", types.SimpleNamespace(profile=profile), dataset="mnist")


def test_could_fail_reproduced_when_the_capacity_suffices():
    p = claims.could_fail("lr × steps", 40.0, 32.0)
    assert p.verdict == "reproduced" and p.reason == "" and p.interval_verdict is None
    assert p.estimate.value == 40.0 and p.threshold == 32.0 and p.direction == ">="
    assert claims.could_fail("lr × steps", 32.0, 32.0).verdict == "reproduced"


def test_could_fail_is_uninformative_not_a_failure_when_the_capacity_falls_short():
    p = claims.could_fail("lr × steps", 1.0, 32.0, why="Adam moves a bias ~lr per step")
    assert p.verdict == "uninformative"
    assert p.interval_verdict == "not reproduced"
    assert claims.REASON_CANNOT_FAIL in p.reason and "Adam moves" in p.reason
    assert p.as_dict()["reason"] == p.reason


def test_could_fail_in_a_claim():
    book = _book()
    good = claims.part("bias / b", claims.t_interval([0.01, 0.02, 0.03]), 0.25, "<")
    bad = claims.part("bias / b", claims.t_interval([0.5, 0.6, 0.7]), 0.25, "<")
    short = claims.could_fail("lr × steps", 1.0, 32.0)
    enough = claims.could_fail("lr × steps", 40.0, 32.0)
    c1 = book.check("c1", "s", "f", parts=[good, short])
    c2 = book.check("c2", "s", "f", parts=[bad, short])
    c3 = book.check("c3", "s", "f", parts=[good, enough])
    assert c1.verdict == "uninformative" and claims.REASON_CANNOT_FAIL in c1.reason
    assert c2.verdict == "not reproduced"  # a failing part is still informative
    assert c3.verdict == "reproduced"


def test_could_fail_rejects_non_finite():
    with pytest.raises(ValueError, match="finite"):
        claims.could_fail("x", float("nan"), 1.0)
