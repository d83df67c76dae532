"""The rendered smoke book, read as a reader sees it: the HTML that `make book-smoke`
(``plasticity-book build --profile smoke --strict``) writes to ``_build/smoke/_build/html``.

Run after that build (the Makefile's ``book-smoke`` target does, with
``PLASTICITY_BOOK_HTML`` set). Without ``PLASTICITY_BOOK_HTML`` the tests read
``_build/smoke/_build/html`` when it exists and is newer than what it is built from, and
skip otherwise (``make unit`` runs before the book is built).
"""

from __future__ import annotations

import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HTML = ROOT / "_build" / "smoke" / "_build" / "html"
PROFILE = "smoke"


def _book_html() -> Path:
    env = os.environ.get("PLASTICITY_BOOK_HTML")
    if env:
        html = Path(env)
        assert (html / "index.html").exists(), (
            f"PLASTICITY_BOOK_HTML={env}: no built book there "
            f"(run `plasticity-book build --profile {PROFILE} --strict` first)"
        )
        return html
    html = DEFAULT_HTML
    stamp = html / ".buildinfo"
    if not stamp.exists():
        pytest.skip(
            f"no built smoke book in {html.relative_to(ROOT)}: run `make book-smoke` "
            "(these tests run after it there)"
        )
    sources = [ROOT / "_config.yml", *sorted((ROOT / "results" / PROFILE).glob("ch*.ipynb"))]
    newer = [p.name for p in sources if p.exists() and p.stat().st_mtime > stamp.stat().st_mtime]
    if newer:
        pytest.skip(
            f"the built smoke book is older than {newer[:3]}: run `make book-smoke` "
            "(or set PLASTICITY_BOOK_HTML to test it as it is)"
        )
    return html


@pytest.fixture(scope="module")
def html_dir() -> Path:
    return _book_html()


def _pages(html: Path) -> list[Path]:
    pages = sorted(p for sub in ("chapters", "book") for p in (html / sub).glob("*.html"))
    assert pages, f"no pages under {html}/chapters or {html}/book"
    return pages


# --------------------------------------------------------------------------- text of a page

#: elements (tags or classes) whose text is not prose: code, scripts, math (class ``math``)
SKIP = {"pre", "code", "script", "style", "textarea", "kbd", "samp", "math"}
#: elements that start a new line of text
BLOCK = {
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "td",
    "th",
    "tr",
    "table",
    "thead",
    "tbody",
    "br",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "figure",
    "figcaption",
    "dd",
    "dt",
    "dl",
    "section",
    "article",
    "main",
    "blockquote",
    "details",
    "summary",
    "caption",
}
VOID = {"br", "img", "hr", "meta", "link", "input", "source", "wbr", "area", "col"}


class _Text(HTMLParser):
    """The text of the page's ``<main>``, one line per source line / block, without the
    text of the elements whose tag or one of whose classes is in ``skip``."""

    def __init__(self, skip: set[str]):
        super().__init__(convert_charrefs=True)
        self.skip_tags = skip
        self.parts: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # (tag, skipped)
        self.skip = 0
        self.main = 0

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            if tag == "br":
                self.parts.append("\n")
            return
        classes = (dict(attrs).get("class") or "").split()
        skipped = tag in self.skip_tags or any(c in self.skip_tags for c in classes)
        self.stack.append((tag, skipped))
        self.main += tag == "main"
        self.skip += skipped
        if tag in BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in VOID or all(t != tag for t, _ in self.stack):
            return
        while self.stack:  # tolerate unclosed children
            top, skipped = self.stack.pop()
            self.main -= top == "main"
            self.skip -= skipped
            if top == tag:
                break
        if tag in BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if self.main and not self.skip:
            self.parts.append(data)


def prose_lines(page: Path, skip: set[str] = SKIP) -> list[str]:
    """The text lines of ``<main>``, without the text of the ``skip`` elements (default:
    code and scripts)."""
    p = _Text(skip)
    p.feed(page.read_text(encoding="utf-8"))
    return [ln.strip() for ln in "".join(p.parts).splitlines() if ln.strip()]


# smartquotes turn "---" into an em dash and "--" into an en dash
_SEP_CELL = r"\s*:?[-\u2013\u2014]+:?\s*"
TABLE_SEPARATOR = re.compile(rf"^\|?{_SEP_CELL}(\|{_SEP_CELL})+\|?$")


def raw_table_rows(lines: list[str]) -> list[str]:
    """Lines of text that are markdown table syntax left unrendered: a separator row
    (``|---|---|``, ``| :-- | --: |``) or a row of two or more cells (``| a | b |``)."""
    return [
        ln
        for ln in lines
        if TABLE_SEPARATOR.match(ln)
        or (ln.startswith("|") and ln.endswith("|") and ln.count("|") >= 3)
    ]


def test_raw_table_detector():
    """The detector itself: CommonMark's rendering of a table, smart dashes included."""
    rendered = [
        "| activation | eps = 0.01 | eps = 1 |",
        "|\u2014|\u2014|\u2014|",
        "| ReLU | 28.0 % | 27.5 % |",
    ]
    assert raw_table_rows(rendered) == rendered
    assert raw_table_rows(["| :--- | ---: |"]) == ["| :--- | ---: |"]
    prose = ["the norm |x| of a vector", "a | b", "|x|", "Fig. 1 | caption"]
    assert raw_table_rows(prose) == []


# --------------------------------------------------------------------------- the tests


def test_tables_render_as_tables(html_dir):
    """No page shows markdown table syntax as text: ``display(Markdown(...))`` output is
    parsed as MyST (``nb_render_markdown_format: myst`` in _config.yml)."""
    bad = {}
    for page in _pages(html_dir):
        rows = raw_table_rows(prose_lines(page))
        if rows:
            bad[page.relative_to(html_dir).as_posix()] = rows[:3]
    assert not bad, f"raw markdown table rows in the rendered book: {bad}"


def test_math_is_parsed(html_dir):
    """No page shows a ``$`` in its prose: every ``$...$`` / ``$$...$$`` of the chapters'
    markdown (and of ``display(Markdown(...))``) was parsed as math. A display-math
    block inside a list item needs a blank line before and after it, else it is read as
    inline ``$`` pairs and the rest of the paragraph shifts by one dollar."""
    import yaml

    # HTML outputs (pandas tables) are typeset in the browser (_config.yml: MathJax
    # processes class text_html with $ delimiters), so their $ are left to MathJax
    sphinx = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    skip = set(SKIP)
    if "text_html" in sphinx.get("myst_mathjax_classes", "").split("|") and ["$", "$"] in (
        sphinx.get("mathjax3_config", {}).get("tex", {}).get("inlineMath", [])
    ):
        skip.add("text_html")
    bad = {}
    for page in _pages(html_dir):
        lines = [ln for ln in prose_lines(page, skip) if "$" in ln]
        if lines:
            bad[page.relative_to(html_dir).as_posix()] = [ln[:90] for ln in lines[:3]]
    assert not bad, f"unparsed $ math in the rendered book: {bad}"


def test_injected_parameters_cell_is_hidden(html_dir):
    """Papermill's injected-parameters cell is removed from the pages (``remove-cell``)."""
    shown = [
        p.relative_to(html_dir).as_posix()
        for p in _pages(html_dir)
        if "tag_injected-parameters" in p.read_text(encoding="utf-8")
    ]
    assert not shown, f"papermill's injected-parameters cell is shown on {shown}"


def test_every_chapter_is_stamped(html_dir):
    """Every chapter says which run it shows: profile, commit, date and hardware."""
    missing = {}
    for page in sorted((html_dir / "chapters").glob("*.html")):
        text = " ".join(prose_lines(page, skip={"script", "style"}))
        at = text.find("This run:")
        stamp = text[at : at + 400] if at >= 0 else ""
        need = [f"profile {PROFILE}", "commit", "executed", "hardware"]
        lacks = [w for w in need if w not in stamp]
        if lacks:
            missing[page.name] = lacks
    assert not missing, f"chapters without a complete run stamp: {missing}"


def test_scorecard_is_stamped(html_dir):
    text = " ".join(prose_lines(html_dir / "book" / "scorecard.html", skip={"script", "style"}))
    for word in (f"profile {PROFILE}", "commit", "hardware"):
        assert word in text, f"the scorecard's run line lacks {word!r}"


def _mathjax_scripts(page: Path) -> list[str]:
    return re.findall(r'<script[^>]+src="([^"]*mathjax[^"]*)"', page.read_text(encoding="utf-8"))


def test_math_is_served_by_the_book(html_dir):
    """With a local MathJax installed (``sphinx-mathjax-offline``), every page with math
    loads it from the book's ``_static`` folder, never from a CDN: math renders offline."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import offline_mathjax
    finally:
        sys.path.pop(0)
    if offline_mathjax.find_mathjax() is None:
        pytest.skip(
            "no local MathJax copy installed (pip install sphinx-mathjax-offline): "
            "the book loads MathJax from the CDN"
        )
    with_math = {p: s for p in _pages(html_dir) if (s := _mathjax_scripts(p))}
    assert with_math, "no page loads MathJax (is there no math in the book?)"
    remote = {p.name: s for p, s in with_math.items() if any("://" in u for u in s)}
    assert not remote, f"pages loading MathJax from the network: {remote}"
    component = html_dir / "_static" / "mathjax" / offline_mathjax.COMPONENT
    fonts = html_dir / "_static" / "mathjax" / offline_mathjax.FONTS
    assert component.is_file() and any(fonts.glob("*.woff")), (
        f"{component} or its fonts are missing from the built book"
    )


#: a tqdm bar: "37%|███▋      | 37/100"
PROGRESS_BAR = re.compile(r"\d+%\|[^|\n]{0,60}\| *\d+/\d+")


def test_stderr_shows_no_progress_bars(html_dir):
    """stderr is shown (``nb_output_stderr: show``: warnings reach the reader), without
    tqdm's bars (``pipeline.finish_notebook`` strips them at execution)."""
    bad = {}
    for page in sorted((html_dir / "chapters").glob("*.html")):
        s = page.read_text(encoding="utf-8")
        n = len(PROGRESS_BAR.findall(s))
        if n:
            bad[page.name] = n
    assert not bad, f"progress bars on the pages (count per page): {bad}"


def test_every_figure_is_numbered_with_caption_and_alt_text(html_dir):
    """Every image in a chapter's content sits in a numbered ``<figure>`` with a caption
    and has alt text."""

    class Figures(HTMLParser):
        def __init__(self):
            super().__init__()
            self.depth = 0  # inside <figure>
            self.main = 0
            self.bad: list[str] = []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "main":
                self.main += 1
            elif tag == "figure":
                self.depth += 1
            elif tag == "img" and self.main:
                src = a.get("src", "")
                if "_images/" in src and (not self.depth or not a.get("alt")):
                    self.bad.append(src.rsplit("/", 1)[-1][:16])

        def handle_endtag(self, tag):
            if tag == "figure":
                self.depth -= 1
            elif tag == "main":
                self.main -= 1

    bad = {}
    for page in sorted((html_dir / "chapters").glob("*.html")):
        f = Figures()
        f.feed(page.read_text(encoding="utf-8"))
        if f.bad:
            bad[page.name] = len(f.bad)
        captions = len(re.findall(r'<span class="caption-number">Figure \d+', page.read_text()))
        figures = page.read_text(encoding="utf-8").count("<figure")
        if captions < figures:
            bad[page.name + " (figures without a number)"] = figures - captions
    assert not bad, f"images outside a numbered, captioned figure or without alt text: {bad}"
