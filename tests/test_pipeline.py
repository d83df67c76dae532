"""pipeline / CLI: execute, skip when unchanged, failures named, atomic outputs, build.

Runs real papermill kernels on two tiny chapters in a temporary book, so it checks
the same code path as `make book` in a few seconds.
"""

import json
import shutil
from pathlib import Path

import pytest
from book_common import tiny_toc

from plasticity_lib import cli, pipeline, profiles

ROOT = Path(__file__).resolve().parents[1]

HEADER = """# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---
"""

GOOD = (
    HEADER
    + """
# %% [markdown]
# # A tiny chapter

# %%
from plasticity_lib import claims, profiles

# %% tags=["parameters"]
profile = "default"
seeds = None

# %%
P = profiles.resolve_notebook("ch00_overview", globals())
book = claims.ClaimBook("ch00_overview", P, dataset="none")
book.check("ch0.tiny", "One is positive.", "Fig. 0", "one", claims.exact(1.0), 0.0, ">")
book.save();

# %%
book.table()
"""
)

BROKEN = (
    HEADER
    + """
# %%
x = 1

# %% tags=["parameters"]
profile = "default"

# %%
raise ValueError("deliberate failure in the second cell")
"""
)


@pytest.fixture
def tiny_book(tmp_path, monkeypatch):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "_toc.yml").write_text(tiny_toc(ROOT))
    shutil.copytree(ROOT / "book", tmp_path / "book")
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "00_overview.py").write_text(GOOD)
    (tmp_path / "src" / "plasticity_lib").mkdir(parents=True)
    (tmp_path / "src" / "plasticity_lib" / "lib.py").write_text("# library\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLASTICITY_RESULTS_DIR", raising=False)
    return tmp_path


def test_execute_skip_and_reexecute(tiny_book, capsys):
    assert cli.main(["execute", "--profile", "smoke"]) == 0
    res = tiny_book / "results" / "smoke"
    assert (res / "ch00_overview.ipynb").exists()
    rec = json.loads((res / "ch00_overview.claims.json").read_text())
    assert rec["claims"][0]["verdict"] == "not evaluated (smoke)"
    assert not (res / ".staging" / "ch00_overview").exists()
    out = capsys.readouterr().out
    assert "[1/1] ch00_overview: ok in" in out

    assert cli.main(["execute", "--profile", "smoke"]) == 0
    assert "skipped (up to date)" in capsys.readouterr().out

    # a library change re-executes; so does a parameter change
    (tiny_book / "src" / "plasticity_lib" / "lib.py").write_text("# library, changed\n")
    assert cli.main(["execute", "--profile", "smoke"]) == 0
    assert ": ok in" in capsys.readouterr().out
    assert cli.main(["execute", "--profile", "smoke", "--param", "seeds=3"]) == 0
    assert ": ok in" in capsys.readouterr().out
    assert json.loads((res / "ch00_overview.meta.json").read_text())["parameters"] == {
        "profile": "smoke",
        "seeds": 3,
    }
    nb = json.loads((res / "ch00_overview.ipynb").read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "seeds = 3" in "".join(injected[0]["source"])
    # the page says which run it shows, once, after the title cell
    stamps = [c for c in nb["cells"] if c["metadata"].get("plasticity_run_stamp")]
    assert len(stamps) == 1 and nb["cells"].index(stamps[0]) == 1
    text = "".join(stamps[0]["source"])
    assert text.startswith("*This run: profile smoke, commit ")
    for word in ("executed ", "hardware ", "parameters seeds=3"):
        assert word in text, (word, text)
    # the time account of the run is in its claim record and its meta record
    meta = json.loads((res / "ch00_overview.meta.json").read_text())
    rec = json.loads((res / "ch00_overview.claims.json").read_text())
    assert meta["timing"] == rec["timing"] and rec["timing"]["total_s"] > 0
    assert {f"{n}_s" for n in ("compile", "training", "evaluation", "plotting", "other")} <= set(
        rec["timing"]
    )


def test_failing_chapter_is_named_and_others_still_run(tiny_book, monkeypatch, capsys):
    (tiny_book / "chapters" / "01_broken.py").write_text(BROKEN)
    real_resolve = profiles.resolve
    monkeypatch.setattr(
        profiles,
        "resolve",
        lambda ch, profile="default", **kw: real_resolve(
            "ch00_overview" if ch == "ch01_broken" else ch, profile, **kw
        ),
    )
    assert cli.main(["execute", "--profile", "smoke", "--jobs", "2"]) == 1
    out = capsys.readouterr().out
    assert "ch00_overview: ok" in out
    assert "FAILED ch01_broken: code cell 3" in out and "ValueError: deliberate failure" in out
    res = tiny_book / "results" / "smoke"
    assert (res / "ch00_overview.ipynb").exists()
    assert not (res / "ch01_broken.ipynb").exists()  # nothing half-done for the book
    assert (res / "ch01_broken.failed.ipynb").exists()
    assert json.loads((res / "ch01_broken.meta.json").read_text())["status"] == "failed"


def test_bad_inputs_give_clear_errors(tiny_book, capsys):
    assert cli.main(["execute", "--profile", "smoke", "--chapters", "99"]) == 2
    assert (
        "unknown chapter '99' for --chapters; allowed: ['00_overview']" in capsys.readouterr().err
    )
    assert cli.main(["execute", "--profile", "smoke", "--param", "sedes=3"]) == 2
    assert "unknown parameter(s) ['sedes']" in capsys.readouterr().err
    assert cli.main(["execute", "--profile", "smoke", "--param", "seeds"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    assert cli.main(["execute", "--jobs", "0"]) == 2
    assert "--jobs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["execute", "--profile", "fast"])
    assert "invalid choice: 'fast'" in capsys.readouterr().err
    assert cli.main(["build", "--profile", "paper"]) == 2
    assert "run `plasticity-book execute --profile paper` first" in capsys.readouterr().err


def test_build_renders_chapter_and_scorecard(tiny_book, capsys):
    assert cli.main(["execute", "--profile", "smoke"]) == 0
    assert cli.main(["build", "--profile", "smoke", "--strict"]) == 0
    html = tiny_book / "_build" / "smoke" / "_build" / "html"
    assert "book built:" in capsys.readouterr().out
    card = (html / "book" / "scorecard.html").read_text()
    assert "ch0.tiny" in card and "not evaluated (smoke)" in card
    # the claim id links to the anchor of its row in the chapter's claim table
    assert 'href="../chapters/00_overview.html#claim-ch0-tiny"' in card
    chapter = (html / "chapters" / "00_overview.html").read_text()
    assert 'id="claim-ch0-tiny"' in chapter
    meta = json.loads((tiny_book / "results" / "smoke" / "ch00_overview.meta.json").read_text())
    assert meta["hardware"] and meta["commit"]
    assert f"hardware: {meta['hardware']}" in (tiny_book / "results/smoke/scorecard.md").read_text()


def test_list(tiny_book, capsys):
    assert cli.main(["list"]) == 0
    assert "never run" in capsys.readouterr().out
    cli.main(["execute", "--profile", "smoke"])
    capsys.readouterr()
    cli.main(["list"])
    out = capsys.readouterr().out
    assert "smoke: ok" in out
    assert "time: total " in out and "compile " in out and "training " in out


def _part(stat, value, low, high, thr, direction, verdict, **extra):
    est = {"value": value, "low": low, "high": high, "method": "t", "n": 3}
    return dict(
        statistic=stat, estimate=est, threshold=thr, direction=direction, verdict=verdict, **extra
    )


def _claim(cid, verdict, kind="paper", parts=None, **extra):
    parts = parts or [_part("stat", 0.5, 0.4, 0.6, 0.0, ">", verdict)]
    return dict(
        id=cid, kind=kind, statement=f"{cid} holds.", figure="Fig. 9", verdict=verdict,
        note="", parts=parts, **extra,
    )  # fmt: skip


def _record(chapter, claims_):
    return {"chapter": chapter, "profile": "default", "dataset": "mnist (tfds)", "seeds": 3,
            "runtime_s": 5, "claims": claims_}  # fmt: skip


RECORDS = [
    _record(
        "ch09_test",
        [
            _claim("ch9.a", "reproduced"),
            _claim("ch9.b", "reproduced"),
            _claim("ch9.c", "not reproduced"),
            _claim(
                "ch9.d",
                "uninformative",
                parts=[
                    _part(
                        "acc change",
                        0.0,
                        0.0,
                        0.0,
                        -0.02,
                        ">",
                        "uninformative",
                        reason="all arms at the ceiling (LN: every seed >= 0.995)",
                    ),
                    _part(
                        "spike ratio", 0.5, 0.4, 0.6, 0.35, "in", "reproduced", threshold_high=0.65
                    ),
                ],  # fmt: skip
                reason="all arms at the ceiling (LN: every seed >= 0.995)",
            ),
            _claim("ch9.e", "inconclusive"),
            _claim("ch9.closed_form", "reproduced", kind="derivation"),
            _claim("ch9.control", "not reproduced", kind="extension"),
        ],
    )
]
METAS = {"ch09_test": {"commit": "abc123def456", "hardware": "Test CPU, 2 cores",
                       "finished": "2026-11-22T10:00:00", "elapsed_s": 12.0}}  # fmt: skip


def test_scorecard_groups_kinds_and_counts_paper_claims_only():
    md = pipeline.scorecard_markdown("default", RECORDS, METAS, built="2026-11-22T11:00")
    assert (
        "**Headline (paper claims only):** 5 claims: **2 reproduced**, **1 not reproduced**, "
        "**1 inconclusive**, **1 uninformative**." in md
    )
    assert "Not counted in the headline: 1 derivation check and 1 extension." in md
    paper, rest = md.split("## Derivation checks")
    derivation, extension = rest.split("## Extensions")
    assert "ch9.a" in paper and "ch9.closed_form" not in paper and "ch9.control" not in paper
    assert "ch9.closed_form" in derivation and "ch9.control" in extension.split("## Revisions")[0]
    # the verdict is the column right after the id, coloured; links to the chapter's anchor
    row = next(line for line in md.splitlines() if "ch9.c</code>" in line)
    assert row.startswith(
        '<tr class="claim"><td><a href="../chapters/09_test.html#claim-ch9-c"><code>ch9.c'
    )
    assert '</a></td><td><span class="verdict" style="background:#ffd8d3' in row
    # statistic, threshold and reasons in the details row; the band is printed as a band
    assert "threshold in [0.35, 0.65]" in md and "all arms at the ceiling" in md
    assert "commit `abc123def456`" in md and "hardware: Test CPU, 2 cores" in md
    assert "profile `default`" in md and "2026-11-22T10:00:00" in md
    assert "have not been run for this profile" in md and "held-out seeds</th>" not in md
    assert "No claim has been redefined yet." in md
    # raw HTML blocks must not contain blank lines (MyST would end the block there)
    for block in md.split("<table")[1:]:
        assert "\n\n" not in block.split("</table>")[0]


def test_scorecard_robustness_columns_and_robust_count():
    seeds = [_record("ch09_test", [_claim("ch9.a", "reproduced"), _claim("ch9.b", "inconclusive"),
                                  _claim("ch9.c", "not reproduced")])]  # fmt: skip
    fashion = [_record("ch09_test", [_claim("ch9.a", "reproduced"), _claim("ch9.b", "reproduced"),
                                    _claim("ch9.c", "not reproduced")])]  # fmt: skip
    md = pipeline.scorecard_markdown(
        "default", RECORDS, METAS, {"seeds": seeds, "fashion": fashion}
    )
    assert "Of the 2 reproduced paper claims, **1 is robust**" in md
    assert "<th>held-out seeds</th><th>Fashion-MNIST</th><th>robust</th>" in md
    rows = {ln.split("<code>")[1].split("<")[0]: ln for ln in md.splitlines() if "claim-ch9-" in ln}
    assert rows["ch9.a"].count('class="verdict"') == 3 and "<td>✓</td>" in rows["ch9.a"]
    assert "<td>✗</td>" in rows["ch9.b"]  # inconclusive with held-out seeds: not robust
    assert "<td>✓</td>" in rows["ch9.c"]  # all three agree (not reproduced)
    assert "<td>—</td>" in rows["ch9.d"]  # no robustness record for this claim


def test_revisions_file_is_valid_and_rendered(tmp_path):
    from plasticity_lib import scorecard

    assert scorecard.load_revisions(ROOT / "book" / "claim_revisions.yml") is not None
    good = tmp_path / "rev.yml"
    good.write_text(
        "revisions:\n"
        "  - id: ch9.a\n    date: 2026-11-22\n    old_definition: 'ratio < 1'\n"
        "    old_verdict: reproduced\n    new_definition: 'ratio in [0.35, 0.65]'\n"
        "    reason: 'sized statement'\n"
    )
    revs = scorecard.load_revisions(good)
    assert revs == [{"id": "ch9.a", "date": "2026-11-22", "old_definition": "ratio < 1",
                     "old_verdict": "reproduced", "new_definition": "ratio in [0.35, 0.65]",
                     "reason": "sized statement"}]  # fmt: skip
    md = pipeline.scorecard_markdown("default", RECORDS, METAS, revisions=revs)
    assert "<td><code>ch9.a</code></td><td>2026-11-22</td><td>ratio &lt; 1<br>" in md
    bad = tmp_path / "bad.yml"
    bad.write_text("revisions:\n  - id: ch9.a\n    date: 2026-11-22\n")
    with pytest.raises(ValueError, match="lacks \\['old_definition'"):
        scorecard.load_revisions(bad)
    bad.write_text(
        "revisions:\n  - {id: x, date: d, old_definition: a, old_verdict: passed,"
        " new_definition: b, reason: r}\n"
    )
    with pytest.raises(ValueError, match="old_verdict='passed'"):
        scorecard.load_revisions(bad)


def test_robustness_runs_into_their_own_folders(tiny_book, capsys):
    assert cli.main(["robustness", "--profile", "smoke", "--chapters", "00"]) == 0
    out = capsys.readouterr().out
    assert "ch00_overview [robust-seeds-smoke]: ok" in out
    assert "ch00_overview [robust-fashion-smoke]: ok" in out
    res = tiny_book / "results"
    assert not (res / "smoke").exists()  # never the book's results folder
    seeds = json.loads((res / "robust-seeds-smoke" / "ch00_overview.claims.json").read_text())
    fashion = json.loads((res / "robust-fashion-smoke" / "ch00_overview.claims.json").read_text())
    assert seeds["parameters"]["seed_offset"] == 100 and seeds["parameters"]["dataset"] == "mnist"
    assert fashion["parameters"]["dataset"] == "fashion_mnist"
    assert fashion["parameters"]["seed_offset"] == 0
    assert cli.main(["robustness", "--profile", "smoke", "--runs", "seeds"]) == 0
    assert "robust-seeds-smoke]: skipped (up to date)" in capsys.readouterr().out
    # the scorecard of the smoke build shows both runs' verdicts
    assert cli.main(["execute", "--profile", "smoke"]) == 0
    assert cli.main(["build", "--profile", "smoke"]) == 0
    card = (res / "smoke" / "scorecard.md").read_text()
    assert "<th>held-out seeds</th><th>Fashion-MNIST</th><th>robust</th>" in card
    with pytest.raises(SystemExit):
        cli.main(["robustness", "--runs", "bogus"])
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_robustness_overrides_of_the_real_chapters():
    assert pipeline.robustness_overrides("ch00_overview", "seeds") == {"seed_offset": 100}
    assert pipeline.robustness_overrides("ch03_relu_death", "fashion") == {
        "dataset": "fashion_mnist",
        "panel_dataset": "fashion_mnist",
    }
    assert pipeline.robust_folder("seeds", "default") == "robust-seeds"
    assert pipeline.robust_folder("fashion", "smoke") == "robust-fashion-smoke"
    with pytest.raises(profiles.ParameterError, match="allowed: \\['seeds', 'fashion'\\]"):
        pipeline.robust_folder("colours", "default")


def test_prepare_writes_parameterised_unexecuted_notebooks(tiny_book, capsys):
    assert cli.main(["prepare", "--profile", "smoke"]) == 0
    assert not (tiny_book / "results").exists()  # never the book's results
    nb = json.loads(
        (tiny_book / "_build" / "prepared" / "smoke" / "ch00_overview.ipynb").read_text()
    )
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and 'profile = "smoke"' in "".join(injected[0]["source"])
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")


def test_parse_overrides_reads_json_python_literals_and_strings():
    got = pipeline.parse_overrides(
        [
            "seeds=5",
            "lr=1e-3",
            "flag=true",
            "ablation=False",
            "n=None",
            "offsets=[0, 8]",
            "acts=('relu', 'gelu')",
            "arch=cnn",
            "name=a=b",
        ]
    )
    assert got == {
        "seeds": 5,
        "lr": 1e-3,
        "flag": True,
        "ablation": False,
        "n": None,
        "offsets": [0, 8],
        "acts": ("relu", "gelu"),
        "arch": "cnn",
        "name": "a=b",
    }
    with pytest.raises(profiles.ParameterError, match="NAME=VALUE"):
        pipeline.parse_overrides(["seeds"])
