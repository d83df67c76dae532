"""The book's wiring: toc, paired notebooks for Colab, parameters cells, the Colab install
cell (book/colab_cell.py) and the repository URL."""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from plasticity_lib import pipeline, profiles

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
# the reference copy of every chapter's first code cell (source and tags)
COLAB_CELL = next(
    c for c in jupytext.read(ROOT / "book" / "colab_cell.py").cells if c.cell_type == "code"
)


def _assignment(name: str) -> str:
    m = re.search(rf'^\s*{name} = "([^"]+)"', COLAB_CELL.source, re.M)
    assert m, f'book/colab_cell.py: no `{name} = "..."`'
    return m.group(1)


def test_config_essentials():
    assert CONFIG["execute"]["execute_notebooks"] == "off"
    assert CONFIG["launch_buttons"]["colab_url"].startswith("https://colab.research.google.com")
    assert (ROOT / CONFIG["bibtex_bibfiles"][0]).exists()


def test_toc_lists_every_chapter_and_the_pages():
    files = pipeline._toc_files(ROOT)
    for page in ("book/intro", "book/scorecard", "book/references"):
        assert page in files
    chapters = [f for f in files if f.startswith("chapters/")]
    assert chapters == [f"chapters/{p.stem}" for p in CHAPTERS]


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_is_paired_and_parameterised(source):
    nb = jupytext.read(source)
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), (
        f"{paired.name} missing: run `make pair` (Colab's launch button opens it)"
    )
    ipynb = nbformat.read(paired, as_version=4)
    assert [c.source for c in ipynb.cells] == [c.source for c in nb.cells], (
        f"{paired.name} is out of sync with {source.name}: run `make pair`"
    )
    assert all(not c.get("outputs") for c in ipynb.cells if c.cell_type == "code"), (
        "the paired notebook must have no outputs"
    )
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"
    assert 'profile = "default"' in tagged[0].source
    assert f"ch{source.stem}" in profiles.chapters(), "each chapter has a profile table"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_starts_with_the_colab_cell(source):
    """The first code cell is book/colab_cell.py's code cell, verbatim (tags included)."""
    first_code = next(c for c in jupytext.read(source).cells if c.cell_type == "code")
    assert first_code.source == COLAB_CELL.source, (
        f"{source.name}: the first code cell must be the Colab install cell of "
        "book/colab_cell.py, verbatim (copy it in, then `make pair`)"
    )
    assert first_code.metadata.get("tags", []) == COLAB_CELL.metadata.get("tags", [])


def test_colab_cell_installs_the_release_from_the_repository():
    import plasticity_lib

    assert "google.colab" in COLAB_CELL.source
    assert _assignment("REPO") == REPO_URL, "the repository URL of _config.yml"
    assert _assignment("BOOK_REF") == f"v{VERSION}", (
        "BOOK_REF is the tag of the version in pyproject.toml (bump both together)"
    )
    assert plasticity_lib.__version__ == VERSION
    assert "plasticity-lib[colab] @ git+{REPO}@{BOOK_REF}" in COLAB_CELL.source
    flat = re.sub(r"\s+", "", COLAB_CELL.source)  # independent of the formatter's line breaks
    assert '"-c","/tmp/colab-constraints.txt"' in flat, "Colab's jax is held by constraints"
    compile(COLAB_CELL.source, "book/colab_cell.py", "exec")


def test_colab_release_tag_has_this_library():
    """When the tag BOOK_REF exists (CI fetches tags), the library it installs in Colab is
    the library of this tree: `src/` and `pyproject.toml` unchanged since the tag."""
    tag = _assignment("BOOK_REF")
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "-q", "--verify", f"refs/tags/{tag}"],
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        pytest.skip(f"tag {tag} does not exist yet (the book workflow creates it)")
    diff = subprocess.run(
        ["git", "-C", str(ROOT), "diff", "--stat", tag, "--", "src", "pyproject.toml"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert not diff.stdout.strip(), (
        f"the library changed since {tag}, which the Colab cell installs; bump the version in "
        f"pyproject.toml and src/plasticity_lib/__init__.py (and BOOK_REF):\n{diff.stdout}"
    )
