"""book/_ext/offline_mathjax.py: with a local MathJax copy the built pages load MathJax
from the book itself (math renders offline); without one they keep the CDN URL."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "book" / "_ext"


@pytest.fixture
def offline_mathjax():
    sys.path.insert(0, str(EXT))
    try:
        import offline_mathjax

        yield offline_mathjax
    finally:
        sys.path.remove(str(EXT))


def _fake_mathjax(folder: Path, mod) -> Path:
    (folder / mod.FONTS).mkdir(parents=True)
    (folder / mod.COMPONENT).write_text("/* MathJax */")
    (folder / mod.FONTS / "MathJax_Main-Regular.woff").write_bytes(b"wOFF")
    (folder / "tex-svg-full.js").write_text("/* not needed by the pages */")
    return folder


def _build(tmp_path: Path) -> str:
    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace

    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(EXT)!r})\nextensions = ['offline_mathjax']\n"
    )
    (src / "index.rst").write_text("Title\n=====\n\nInline :math:`a^2 + b^2`.\n")
    out = tmp_path / "html"
    with docutils_namespace():  # each test's app registers its nodes afresh
        app = Sphinx(src, src, out, tmp_path / "doctrees", "html", status=None, warningiserror=True)
        app.build()
    return (out / "index.html").read_text()


def test_a_local_copy_is_served_by_the_book(tmp_path, monkeypatch, offline_mathjax):
    mj = _fake_mathjax(tmp_path / "mathjax-es5", offline_mathjax)
    monkeypatch.setenv("PLASTICITY_MATHJAX_DIR", str(mj))
    assert offline_mathjax.find_mathjax() == mj
    html = _build(tmp_path)
    assert 'src="_static/mathjax/tex-chtml-full.js' in html
    assert "cdn.jsdelivr" not in html
    static = tmp_path / "html" / "_static" / "mathjax"
    assert (static / offline_mathjax.COMPONENT).read_text() == "/* MathJax */"
    assert (static / offline_mathjax.FONTS / "MathJax_Main-Regular.woff").exists()
    assert not (static / "tex-svg-full.js").exists(), "only what the pages load is copied"


def test_without_a_copy_the_pages_keep_the_cdn(tmp_path, monkeypatch, offline_mathjax):
    monkeypatch.setenv("PLASTICITY_MATHJAX_DIR", str(tmp_path / "none"))
    if offline_mathjax.find_mathjax() is not None:
        pytest.skip(f"{offline_mathjax.PACKAGE} is installed: the book serves its copy")
    html = _build(tmp_path)
    assert "cdn.jsdelivr.net/npm/mathjax@3" in html
