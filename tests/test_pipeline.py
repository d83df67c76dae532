"""pipeline / CLI: execute, skip when unchanged, failures named, atomic outputs, build.

Runs real papermill kernels on two tiny chapters in a temporary book, so it checks
the same code path as `make book` in a few seconds.
"""

import json
import shutil
from pathlib import Path

import pytest
import yaml

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

GOOD = HEADER + '''
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
'''

BROKEN = HEADER + '''
# %%
x = 1

# %% tags=["parameters"]
profile = "default"

# %%
raise ValueError("deliberate failure in the second cell")
'''


@pytest.fixture
def tiny_book(tmp_path, monkeypatch):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    toc["parts"][0]["chapters"] = [{"file": "chapters/00_overview"}]  # the tiny book's only chapter
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
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
    assert json.loads((res / "ch00_overview.meta.json").read_text())["parameters"] == {"profile": "smoke", "seeds": 3}
    nb = json.loads((res / "ch00_overview.ipynb").read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "seeds = 3" in "".join(injected[0]["source"])


def test_failing_chapter_is_named_and_others_still_run(tiny_book, monkeypatch, capsys):
    (tiny_book / "chapters" / "01_broken.py").write_text(BROKEN)
    real_resolve = profiles.resolve
    monkeypatch.setattr(
        profiles, "resolve",
        lambda ch, profile="default", **kw: real_resolve("ch00_overview" if ch == "ch01_broken" else ch, profile, **kw),
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
    assert "unknown chapter '99' for --chapters; allowed: ['00_overview']" in capsys.readouterr().err
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
    assert (html / "chapters" / "00_overview.html").exists()


def test_list(tiny_book, capsys):
    assert cli.main(["list"]) == 0
    assert "never run" in capsys.readouterr().out
    cli.main(["execute", "--profile", "smoke"])
    capsys.readouterr()
    cli.main(["list"])
    assert "smoke: ok" in capsys.readouterr().out


def test_scorecard_markdown_lists_every_part():
    rec = {
        "chapter": "ch9", "profile": "default", "dataset": "mnist", "seeds": 3, "runtime_s": 5,
        "claims": [{
            "id": "ch9.a", "statement": "s", "figure": "Fig. 9", "verdict": "inconclusive", "note": "",
            "parts": [
                {"statistic": "rho", "estimate": {"value": 0.95, "low": None, "high": None, "method": "exact", "n": 1}, "threshold": 0.9, "direction": ">=", "verdict": "reproduced"},
                {"statistic": "ratio", "estimate": {"value": 1.1, "low": 0.9, "high": 1.3, "method": "t", "n": 3}, "threshold": 1.0, "direction": ">", "verdict": "inconclusive"},
            ],
        }],
    }
    md = pipeline.scorecard_markdown("default", [rec], {})
    assert "| `ch9.a` | Fig. 9 | rho | 0.95 | >= 0.9 | **inconclusive** |" in md
    assert "| ratio | 1.1 [0.9, 1.3] | > 1 | (inconclusive) |" in md


def test_prepare_writes_parameterised_unexecuted_notebooks(tiny_book, capsys):
    assert cli.main(["prepare", "--profile", "smoke"]) == 0
    nb = json.loads((tiny_book / "results" / "smoke" / "ch00_overview.ipynb").read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and 'profile = "smoke"' in "".join(injected[0]["source"])
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")


def test_parse_overrides_reads_json_python_literals_and_strings():
    got = pipeline.parse_overrides(["seeds=5", "lr=1e-3", "flag=true", "ablation=False", "n=None",
                                    "offsets=[0, 8]", "acts=('relu', 'gelu')", "arch=cnn", "name=a=b"])
    assert got == {"seeds": 5, "lr": 1e-3, "flag": True, "ablation": False, "n": None,
                   "offsets": [0, 8], "acts": ("relu", "gelu"), "arch": "cnn", "name": "a=b"}
    with pytest.raises(profiles.ParameterError, match="NAME=VALUE"):
        pipeline.parse_overrides(["seeds"])
