"""claims: intervals against scipy/NumPy, verdict logic, JSON records."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from plasticity_lib import claims
from plasticity_lib.profiles import Params


def test_t_interval_matches_hand_computation():
    x = np.array([1.0, 2.0, 4.0])
    e = claims.t_interval(x)
    half = stats.t.ppf(0.975, 2) * x.std(ddof=1) / np.sqrt(3)
    assert e.value == pytest.approx(7 / 3)
    assert e.low == pytest.approx(7 / 3 - half)
    assert e.high == pytest.approx(7 / 3 + half)
    assert e.n == 3


def test_t_interval_rejects_nonfinite_and_empty():
    with pytest.raises(ValueError, match="non-finite"):
        claims.t_interval([1.0, np.nan])
    with pytest.raises(ValueError, match="empty"):
        claims.t_interval([])


def test_bootstrap_is_deterministic_and_covers_the_statistic():
    rng = np.random.default_rng(1)
    samples = rng.normal(size=(8, 4)) + np.arange(4)
    stat = lambda s: claims.spearman(np.arange(4), s.mean(0))  # noqa: E731
    a = claims.bootstrap_interval(samples, stat)
    b = claims.bootstrap_interval(samples, stat)
    assert a == b
    assert a.low <= a.value <= a.high


@pytest.mark.parametrize(
    "low,high,direction,expected",
    [
        (0.1, 0.5, ">", "reproduced"),
        (-0.5, -0.1, ">", "not reproduced"),
        (-0.1, 0.5, ">", "inconclusive"),
        (-0.5, -0.1, "<", "reproduced"),
        (0.1, 0.5, "<=", "not reproduced"),
    ],
)
def test_verdict_from_interval(low, high, direction, expected):
    e = claims.Estimate((low + high) / 2, low, high, "t", 3)
    assert claims.verdict_for(e, 0.0, direction) == expected


def test_exact_values_and_nan():
    assert claims.verdict_for(claims.exact(1e-10), 1e-8, "<=") == "reproduced"
    assert claims.verdict_for(claims.exact(1e-6), 1e-8, "<=") == "not reproduced"
    assert claims.verdict_for(claims.exact(float("nan")), 0, ">") == "inconclusive"
    with pytest.raises(ValueError, match="direction"):
        claims.verdict_for(claims.exact(1.0), 0, "=>")


def test_combined_parts():
    assert claims.combine_verdicts(["reproduced", "reproduced"]) == "reproduced"
    assert claims.combine_verdicts(["reproduced", "inconclusive"]) == "inconclusive"
    assert claims.combine_verdicts(["inconclusive", "not reproduced"]) == "not reproduced"


def _params(profile):
    return Params("ch99_test", profile, {"seeds": 3}, {})


def test_claimbook_records_and_saves(tmp_path):
    book = claims.ClaimBook("ch99_test", _params("default"), dataset="mnist (tfds)")
    book.check(
        "ch99.a", "A falls.", "Fig. 1", "drop", claims.t_interval([0.2, 0.3, 0.25]), 0.0, ">"
    )
    book.check(
        "ch99.b",
        "B holds in two ways.",
        "Fig. 2",
        parts=[
            claims.part("rho", claims.exact(0.95), 0.9, ">="),
            claims.part("ratio", claims.t_interval([0.9, 1.2, 1.1]), 1.0, ">"),
        ],
    )
    assert [c.verdict for c in book.claims] == ["reproduced", "inconclusive"]
    df = book.table()
    assert list(df["claim"]) == ["ch99.a", "ch99.b", ""]
    path = book.save(tmp_path)
    rec = json.loads(path.read_text())
    assert rec["chapter"] == "ch99_test" and rec["seeds"] == 3 and rec["dataset"] == "mnist (tfds)"
    assert rec["claims"][1]["parts"][1]["estimate"]["n"] == 3
    assert claims.load_records(tmp_path)[0]["claims"][0]["id"] == "ch99.a"
    with pytest.raises(ValueError, match="twice"):
        book.check("ch99.a", "again", "Fig. 1", "drop", claims.exact(1), 0, ">")


def test_smoke_profile_is_not_evaluated():
    book = claims.ClaimBook("ch99_test", _params("smoke"))
    rec = book.check("ch99.a", "A falls.", "Fig. 1", "drop", claims.exact(1.0), 0.0, ">")
    assert rec.verdict == "not evaluated (smoke)"
    assert rec.parts[0].verdict == "reproduced"  # the condition is still computed


def test_fallback_data_is_not_evaluated_outside_smoke():
    """Issue 21: allow_fallback=True at the default profile gave evaluated verdicts on
    scikit-learn's 8x8 digits."""
    src = "digits (scikit-learn fallback for mnist)"
    book = claims.ClaimBook("ch99_test", _params("default"), dataset=src)
    rec = book.check("ch99.a", "A falls.", "Fig. 1", "drop", claims.exact(1.0), 0.0, ">")
    assert rec.verdict == "not evaluated (fallback data)" and rec.evaluated_verdict == "reproduced"
    assert "not evaluated (fallback data)" in claims.VERDICTS
    smoke = claims.ClaimBook("ch99_test", _params("smoke"), dataset=src)
    assert smoke.check("ch99.a", "A.", "F", "d", claims.exact(1.0), 0.0, ">").verdict == (
        "not evaluated (smoke)"
    )
    real = claims.ClaimBook("ch99_test", _params("default"), dataset="mnist (tfds, manual files)")
    assert real.check("ch99.a", "A.", "F", "d", claims.exact(1.0), 0.0, ">").verdict == (
        "reproduced"
    )


def test_results_dir_outside_plasticity_book_is_adhoc(tmp_path, monkeypatch):
    """Issue 20 part 5 / issue 21 defect 2: a chapter run by hand, by papermill or under
    nbmake wrote its claims into the book's results/<profile>/."""
    (tmp_path / "chapters").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "chapters" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "chapters" / "sub")
    monkeypatch.delenv("PLASTICITY_RESULTS_DIR", raising=False)
    assert claims.results_dir("smoke") == tmp_path / "results" / "adhoc" / "smoke"
    book = claims.ClaimBook("ch99_test", _params("smoke"))
    book.check("ch99.a", "A falls.", "Fig. 1", "drop", claims.exact(1.0), 0.0, ">")
    assert book.save() == tmp_path / "results" / "adhoc" / "smoke" / "ch99_test.claims.json"
    monkeypatch.setenv("PLASTICITY_RESULTS_DIR", str(tmp_path / "staging"))
    assert claims.results_dir("smoke") == tmp_path / "staging"  # plasticity-book execute


def test_spearman_constant_is_nan():
    assert np.isnan(claims.spearman([1, 2, 3], [5, 5, 5]))
    assert np.isnan(claims.spearman([4.0], [2.0]))  # n = 1: both sides constant
    assert np.isnan(claims.spearman([1, 2, np.nan], [1, 2, 3]))  # NaN propagates, as scipy
    assert claims.spearman([1, 2, 3], [1, 4, 9]) == pytest.approx(1.0)


def test_spearman_exact_without_ties():
    # 1 - 6 * sum d^2 / (n (n^2 - 1)) by hand, n = 5 (n (n^2 - 1) = 120):
    # d = (0, -1, 1, 0, 0): sum d^2 = 2 -> 1 - 12/120 = 0.9 exactly
    rho = claims.spearman([1, 2, 3, 4, 5], [1, 3, 2, 4, 5])
    assert rho == 0.9 and rho >= 0.9 and isinstance(rho, float)
    # d = (-4, -1, -1, 3, 3): sum d^2 = 36 -> 1 - 216/120 = -0.8 exactly
    rho = claims.spearman([1, 2, 3, 4, 5], [5, 3, 4, 1, 2])
    assert rho == -0.8 and rho <= -0.8
    # only the ranks matter (monotone transforms, float doses)
    assert claims.spearman([0.0, 0.1, 1.0, 10.0, 100.0], np.exp([1, 3, 2, 4, 5])) == 0.9
    assert claims.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert claims.spearman(range(7), np.arange(7) ** 3) == 1.0


def test_spearman_every_permutation_of_five_is_the_exact_rational():
    from fractions import Fraction
    from itertools import permutations

    x = np.arange(1, 6)
    for perm in permutations(range(1, 6)):
        d2 = sum((i - j) ** 2 for i, j in zip(x, perm))
        expected = float(Fraction(120 - 6 * d2, 120))  # a multiple of 0.1, correctly rounded
        assert claims.spearman(x, perm) == expected, (perm, d2)


def test_spearman_with_ties_by_hand():
    # x ranks (1, 2.5, 2.5, 4), y ranks (1, 2, 3, 4): centred (-1.5, 0, 0, 1.5) and
    # (-1.5, -.5, .5, 1.5): Sxy = 4.5, Sxx = 4.5, Syy = 5 -> rho = 4.5 / sqrt(22.5) = sqrt(0.9)
    rho = claims.spearman([1, 2, 2, 3], [1, 2, 3, 4])
    assert abs(rho - math.sqrt(0.9)) <= 1.2e-16
    # rational with ties: ranks (1.5,1.5,3.5,3.5,5.5,5.5) vs (1.5,1.5,5.5,5.5,3.5,3.5):
    # centred (-2,-2,0,0,2,2) and (-2,-2,2,2,0,0): Sxy = 8, Sxx = Syy = 16 -> 0.5 exactly
    assert claims.spearman([1, 1, 2, 2, 3, 3], [1, 1, 3, 3, 2, 2]) == 0.5
    assert claims.spearman([1, 1, 2, 2], [1, 1, 2, 2]) == 1.0
    assert claims.spearman([1, 1, 2, 2], [1, 2, 1, 2]) == 0.0


def test_spearman_matches_scipy_on_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(2, 30))
        x, y = rng.integers(0, 5, n), rng.normal(size=n)  # x has ties, y does not
        if np.ptp(x) == 0:
            continue
        assert claims.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-14)


@pytest.mark.parametrize(
    "x, y, word",
    [
        ([1, 2, 3], [1, 2], "same length"),
        ([[1, 2], [3, 4]], [[1, 2], [3, 4]], "one-dimensional"),
        ([], [], "empty"),
    ],
)
def test_spearman_bad_inputs(x, y, word):
    with pytest.raises(ValueError, match=word):
        claims.spearman(x, y)


# --------------------------------------------------------------- informativeness rules
# Hand-made estimates: each rule is checked on numbers whose verdict is known by hand.


def _iv(low, high):
    """An estimate with the interval [low, high] (value at the midpoint)."""
    return claims.Estimate((low + high) / 2, low, high, "t", 3)


def test_existing_records_unchanged_without_new_options(tmp_path):
    """No new option: the same keys, verdicts and numbers as before the rules existed."""
    book = claims.ClaimBook("ch99_test", _params("default"))
    book.check("ch99.a", "A.", "Fig. 1", "drop", claims.t_interval([0.2, 0.3, 0.25]), 0.0, ">")
    rec = json.loads(book.save(tmp_path).read_text())
    c = rec["claims"][0]
    assert set(c) == {"id", "kind", "statement", "figure", "parts", "verdict", "note"}
    assert set(c["parts"][0]) == {"statistic", "estimate", "threshold", "direction", "verdict"}
    assert set(c["parts"][0]["estimate"]) == {"value", "low", "high", "method", "n"}
    assert c["verdict"] == "reproduced" and "diverged_seeds" not in rec


def test_ceiling_makes_a_part_uninformative():
    # both arms at >= 99.5 % on every seed: a "does not fall" test could not have failed
    b = claims.Bound(1.0, 0.005, {"baseline": [1.0, 0.996, 1.0], "LN": [0.999, 1.0, 0.995]})
    p = claims.part("LN minus baseline", _iv(-0.001, 0.002), -0.02, ">", bound=b)
    assert p.verdict == "uninformative" and p.interval_verdict == "reproduced"
    assert p.reason.startswith("all arms at the ceiling")
    # one seed of one arm below the tolerance: the bound does not apply
    b2 = claims.Bound(1.0, 0.005, {"baseline": [1.0, 0.994, 1.0], "LN": [1.0, 1.0, 1.0]})
    p2 = claims.part("LN minus baseline", _iv(-0.001, 0.002), -0.02, ">", bound=b2)
    assert p2.verdict == "reproduced" and p2.reason == "" and p2.interval_verdict is None
    # the bound overrides a "not reproduced" too: at the ceiling nothing could pass either
    p3 = claims.part("LN beats baseline by 5 points", _iv(-0.001, 0.001), 0.05, ">", bound=b)
    assert p3.verdict == "uninformative" and p3.interval_verdict == "not reproduced"


def test_floor_side_and_nonfinite_arm_values():
    # training losses within 0.01 of 0 (their floor) on every finite seed of both arms;
    # the NaN seed (diverged) is ignored
    b = claims.Bound(0.0, 0.01, {"a": [0.001, 0.0, 0.009], "b": [0.0, 0.002, np.nan]}, "floor")
    assert b.at_bound and b.reason().startswith("all arms at the floor")
    p = claims.part("loss ratio", _iv(0.9, 1.1), 1.5, "<", bound=b)
    assert p.verdict == "uninformative"
    # an arm with no finite value is not at the bound (nothing shows it is)
    assert not claims.Bound(0.0, 0.01, {"a": [0.0], "b": [np.nan]}, "floor").at_bound
    assert not claims.Bound(0.0, 0.01, {"a": [0.0, 0.011]}, "floor").at_bound


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"value": 1.0, "tolerance": 0.005, "arms": {"a": [1.0]}, "side": "top"}, "side"),
        ({"value": 1.0, "tolerance": -1.0, "arms": {"a": [1.0]}}, "tolerance"),
        ({"value": float("nan"), "tolerance": 0.0, "arms": {"a": [1.0]}}, "value"),
        ({"value": 1.0, "tolerance": 0.0, "arms": {}}, "arms"),
        ({"value": 1.0, "tolerance": 0.0, "arms": {"a": []}}, "empty"),
    ],
)
def test_bound_rejects_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        claims.Bound(**kwargs)


def test_no_loss_to_prevent_claim_level():
    book = claims.ClaimBook("ch99_test", _params("default"))
    # the baseline's drop straddles 0: not reproduced as a loss of plasticity
    book.check("ch99.base_falls", "Baseline falls.", "Fig. 1", "drop", _iv(-0.01, 0.03), 0.0, ">")
    keeps = book.check(
        "ch99.keeps", "LN keeps.", "Fig. 1", "change", _iv(-0.01, 0.01), -0.02, ">",
        baseline_loses="ch99.base_falls",
    )  # fmt: skip
    assert keeps.verdict == "uninformative"
    assert keeps.reason.startswith("the baseline did not lose plasticity on this stream")
    assert keeps.as_dict()["baseline_loses"] == {"ch99.base_falls": "inconclusive"}
    # a reproduced baseline loss: the keeps claim is informative and keeps its verdict
    book.check("ch99.base2", "Baseline falls.", "Fig. 1", "drop", _iv(0.1, 0.3), 0.0, ">")
    keeps2 = book.check(
        "ch99.keeps2", "LN keeps.", "Fig. 1", "change", _iv(-0.01, 0.01), -0.02, ">",
        baseline_loses=book.claims[-1],
    )  # fmt: skip
    assert keeps2.verdict == "reproduced" and keeps2.reason == ""
    # a failed keeps test stays not reproduced (it lost plasticity: informative)
    fails = book.check(
        "ch99.keeps3", "LN keeps.", "Fig. 1", "change", _iv(-0.3, -0.1), -0.02, ">",
        baseline_loses="ch99.base_falls",
    )  # fmt: skip
    assert fails.verdict == "not reproduced"
    with pytest.raises(ValueError, match="not a claim recorded earlier"):
        book.check("ch99.x", "s", "f", "s", _iv(0, 1), 0, ">", baseline_loses="ch99.nope")


def test_no_loss_to_prevent_part_level_per_stream():
    # two streams: the baseline loses plasticity on the first only
    lost = claims.part("baseline drop, stream A", _iv(0.1, 0.2), 0.0, ">")
    kept = claims.part("baseline drop, stream B", _iv(-0.05, -0.01), 0.0, ">")
    a = claims.part("LN change, stream A", _iv(-0.01, 0.0), -0.02, ">", baseline_loses=lost)
    b = claims.part("LN change, stream B", _iv(-0.01, 0.0), -0.02, ">", baseline_loses=kept)
    assert a.verdict == "reproduced" and b.verdict == "uninformative"
    assert "baseline did not lose plasticity" in b.reason
    book = claims.ClaimBook("ch99_test", _params("default"))
    rec = book.check("ch99.keeps", "LN keeps on both.", "Fig. 6", parts=[a, b])
    assert rec.verdict == "uninformative"  # one part uninformative, none not reproduced
    assert "baseline did not lose plasticity" in rec.reason
    with pytest.raises(ValueError, match="claim id can only be given to ClaimBook.check"):
        claims.part("x", _iv(0, 1), 0, ">", baseline_loses="ch99.a")


def test_chance_level_guard():
    # issue 21 defect 4: learning_rate=10, every arm at chance, 0 [0, 0] > -0.02 "passed"
    book = claims.ClaimBook("ch99_test", _params("default"))
    at_chance = claims.FirstTask([0.1, 0.11, 0.09], chance=0.1)
    assert at_chance.required == pytest.approx(0.55)  # half-way from chance to 1
    rec = book.check(
        "ch99.keeps", "LN keeps.", "Fig. 4", "change", claims.exact(0.0), -0.02, ">",
        first_task=at_chance,
    )  # fmt: skip
    assert rec.verdict == "uninformative"
    assert rec.reason.startswith("the first task was not learned well above chance")
    learned = claims.FirstTask({"LN": [0.98, 0.97], "base": [0.99, 0.6]}, chance=0.1)
    rec2 = book.check(
        "ch99.keeps2", "LN keeps.", "Fig. 4", "change", claims.exact(0.0), -0.02, ">",
        first_task=learned,
    )  # fmt: skip
    assert rec2.verdict == "reproduced"
    # an explicit margin: 0.6 is not >= 0.1 + 0.6
    strict = claims.FirstTask([0.98, 0.6], chance=0.1, margin=0.6)
    assert not strict.learned
    with pytest.raises(ValueError, match="chance"):
        claims.FirstTask([0.5], chance=1.5)
    with pytest.raises(ValueError, match="margin"):
        claims.FirstTask([0.5], chance=0.1, margin=0.0)


@pytest.mark.parametrize(
    "low, high, expected",
    [
        (0.4, 0.6, "reproduced"),  # inside [0.35, 0.65]
        (0.35, 0.65, "reproduced"),  # inclusive ends
        (0.05, 0.2, "not reproduced"),  # entirely below ("nearly removes the spike")
        (0.7, 0.9, "not reproduced"),  # entirely above
        (0.3, 0.5, "inconclusive"),  # straddles the low end
        (0.6, 0.8, "inconclusive"),  # straddles the high end
        (0.2, 0.8, "inconclusive"),  # covers the band
    ],
)
def test_band_is_two_sided(low, high, expected):
    p = claims.band("spike ratio, reset / no reset", _iv(low, high), 0.35, 0.65)
    assert p.verdict == expected and p.direction == "in"
    assert p.as_dict()["threshold_high"] == 0.65


def test_band_exact_values_and_bad_band():
    assert claims.band("r", claims.exact(0.5), 0.35, 0.65).verdict == "reproduced"
    assert claims.band("r", claims.exact(0.1), 0.35, 0.65).verdict == "not reproduced"
    assert claims.band("r", claims.exact(float("nan")), 0.35, 0.65).verdict == "inconclusive"
    with pytest.raises(ValueError, match="low <= high"):
        claims.band("r", claims.exact(0.5), 0.65, 0.35)
    assert claims.format_threshold("in", 0.35, 0.65) == "in [0.35, 0.65]"


@pytest.mark.parametrize(
    "parts, expected",
    [
        (["reproduced", "uninformative"], "uninformative"),
        (["inconclusive", "uninformative"], "uninformative"),
        (["not reproduced", "uninformative"], "not reproduced"),
        (["reproduced", "reproduced"], "reproduced"),
        (["reproduced", "inconclusive"], "inconclusive"),
    ],
)
def test_combination_with_uninformative(parts, expected):
    assert claims.combine_verdicts(parts) == expected


def test_claim_with_uninformative_and_not_reproduced_parts():
    b = claims.Bound(1.0, 0.005, {"a": [1.0, 1.0], "b": [1.0, 1.0]})
    book = claims.ClaimBook("ch99_test", _params("default"))
    rec = book.check(
        "ch99.mixed", "Two conditions.", "Fig. 6",
        parts=[
            claims.part("at ceiling", _iv(0.0, 0.0), -0.02, ">", bound=b),
            claims.part("fails", _iv(-0.5, -0.1), 0.0, ">"),
        ],
    )  # fmt: skip
    assert rec.verdict == "not reproduced"
    with pytest.raises(ValueError, match="each part its own bound"):
        book.check("ch99.y", "s", "f", parts=[claims.part("x", _iv(0, 1), 0, ">")], bound=b)


def test_diverged_seeds_are_dropped_counted_and_saved(tmp_path):
    # t_interval raises by default (as before) but drops and counts on request
    vals = [0.2, np.nan, 0.3, np.inf, 0.25]
    with pytest.raises(ValueError, match="drop_nonfinite"):
        claims.t_interval(vals)
    e = claims.t_interval(vals, drop_nonfinite=True)
    ref = claims.t_interval([0.2, 0.3, 0.25])
    assert (e.value, e.low, e.high, e.n, e.dropped) == (ref.value, ref.low, ref.high, 3, 2)
    assert "2 dropped" in e.method
    # fewer than 2 finite seeds: no interval, the verdict is inconclusive (not a pass)
    one = claims.t_interval([np.nan, 0.5, np.nan], drop_nonfinite=True)
    assert one.n == 1 and one.dropped == 2 and one.low is None and one.too_few_seeds
    none = claims.t_interval([np.nan, np.nan], drop_nonfinite=True)
    assert math.isnan(none.value) and none.n == 0
    book = claims.ClaimBook("ch99_test", _params("default"))
    rec = book.check("ch99.div", "A falls.", "Fig. 1", "drop", one, 0.0, ">")
    assert rec.verdict == "inconclusive" and "fewer than 2 finite seeds" in rec.reason
    book.check("ch99.ok", "B falls.", "Fig. 1", "drop", e, 0.0, ">")
    assert book.note_diverged("baseline", np.array([False, True, False, True, False])) == 2
    saved = json.loads(book.save(tmp_path).read_text())
    assert saved["diverged_seeds"] == {"baseline": 2}
    assert saved["claims"][0]["dropped_seeds"] == 2 and saved["claims"][1]["dropped_seeds"] == 2
    assert saved["claims"][0]["parts"][0]["estimate"]["dropped"] == 2
    # a single seed without any dropped keeps the old behaviour (point value decides)
    assert claims.verdict_for(claims.t_interval([0.5]), 0.0, ">") == "reproduced"


def test_constant_series_are_not_called_diverged():
    """A per-seed correlation of a series that never changes is NaN; the record says
    so instead of "diverged" (chapter 8's LN seeds at 100 % on every task)."""
    rho = [np.nan, -0.7, np.nan]
    why = "constant series: correlation undefined"
    e = claims.t_interval(rho, drop_nonfinite=True, dropped_as=why)
    assert e.too_few_seeds and e.dropped_as == why and why in e.method
    book = claims.ClaimBook("ch99_test", _params("default"))
    rec = book.check("ch99.c", "C falls.", "Fig. 1", "rho", e, -0.5, "<")
    assert rec.verdict == "inconclusive"
    assert "2 seed(s) dropped: constant series" in rec.reason and "diverged" not in rec.reason
    assert e.as_dict()["dropped_as"] == why
    # the default wording and record are unchanged
    d = claims.t_interval([np.nan, 0.5, 0.6], drop_nonfinite=True)
    assert (
        d.dropped_as is None
        and "dropped_as" not in d.as_dict()
        and d.method.endswith("(1 dropped)")
    )
    b = claims.bootstrap_interval(
        np.array([[np.nan], [1.0], [2.0]]), lambda s: s.mean(), drop_nonfinite=True, dropped_as=why
    )
    assert b.dropped == 1 and b.dropped_as == why and why in b.method
    with pytest.raises(ValueError, match="dropped_as=.*needs drop_nonfinite=True"):
        claims.t_interval([0.1, 0.2], dropped_as=why)
    with pytest.raises(ValueError, match="dropped_as must be a non-empty str"):
        claims.t_interval([0.1, 0.2], drop_nonfinite=True, dropped_as="")


def test_a_guard_outranks_too_few_seeds():
    """Too few finite seeds alone is inconclusive; when a rule also says no data could
    decide (here every arm at the ceiling), the part is uninformative, with both reasons."""
    few = claims.t_interval([np.nan, 0.0, np.nan], drop_nonfinite=True)
    plain = claims.part("acc change", few, -0.02, ">")
    assert plain.verdict == "inconclusive"
    capped = claims.part(
        "acc change", few, -0.02, ">", bound=claims.Bound(1.0, 0.005, {"LN": [1.0, 1.0, 1.0]})
    )
    assert capped.verdict == "uninformative" and capped.interval_verdict == "inconclusive"
    assert "fewer than 2 finite seeds" in capped.reason and "ceiling" in capped.reason
    # a bound that does not bind leaves the too-few verdict alone
    free = claims.part(
        "acc change", few, -0.02, ">", bound=claims.Bound(1.0, 0.005, {"LN": [0.7, 0.8, 0.9]})
    )
    assert free.verdict == "inconclusive"


def test_bootstrap_and_finite_seeds_drop_paired_rows():
    a = np.array([0.9, 0.8, np.nan, 0.7])
    b = np.array([0.5, np.inf, 0.4, 0.3])
    keep, dropped = claims.finite_seeds(a, b)
    assert keep.tolist() == [True, False, False, True] and dropped == 2
    e = claims.bootstrap_interval(
        np.stack([a, b], 1), lambda s: s[:, 0].mean(), drop_nonfinite=True
    )
    assert e.dropped == 2 and e.n == 2 and e.value == pytest.approx(0.8)
    few = claims.bootstrap_interval(
        np.stack([a, b], 1)[1:3], lambda s: s[:, 0].mean(), drop_nonfinite=True
    )
    assert few.too_few_seeds and claims.verdict_for(few, 0, ">") == "inconclusive"
    with pytest.raises(ValueError, match="same leading seed axis"):
        claims.finite_seeds(a, b[:3])


def test_smoke_keeps_reasons_and_evaluated_verdict():
    book = claims.ClaimBook("ch99_test", _params("smoke"))
    base = book.check("ch99.b", "Base falls.", "Fig. 1", "drop", _iv(0.1, 0.2), 0.0, ">")
    assert base.verdict == "not evaluated (smoke)" and base.evaluated_verdict == "reproduced"
    keeps = book.check(
        "ch99.k", "LN keeps.", "Fig. 1", "c", _iv(0.0, 0.01), -0.02, ">", baseline_loses="ch99.b"
    )
    assert keeps.verdict == "not evaluated (smoke)" and keeps.evaluated_verdict == "reproduced"


def test_table_html_has_claim_anchors_and_reasons():
    book = claims.ClaimBook("ch99_test", _params("default"))
    book.check("ch99.a", "A.", "Fig. 1", "drop", _iv(0.1, 0.2), 0.0, ">")
    book.check(
        "ch99.b", "B.", "Fig. 1", "acc change", _iv(0.0, 0.0), -0.02, ">",
        bound=claims.Bound(1.0, 0.005, {"LN": [1.0, 1.0]}),
    )  # fmt: skip
    df = book.table()
    html = df._repr_html_()
    assert '<td id="claim-ch99-a">ch99.a</td>' in html
    assert f'<td id="{claims.claim_anchor("ch99.b")}">ch99.b</td>' in html
    assert list(df["reason"])[1].startswith("all arms at the ceiling")
    assert claims.claim_anchor("ch3.adam_reset.halves") == "claim-ch3-adam_reset-halves"
