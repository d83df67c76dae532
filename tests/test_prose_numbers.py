"""No result number is typed into a chapter's prose (issue 14, "Numbers in prose").

A markdown cell of ``chapters/*.py`` must not quote a number with a decimal point
(``0.81``) or a percent sign (``12 %``): results are generated from the run (the "What we
found" cells build their text from the run's values) or glued (``myst_nb`` ``glue``), so a
held-out-seed run cannot make the prose wrong silently. Not counted as numbers: section
references (``§4.1``, ``§4.1–4.2``), software versions (``0.2.8``) and inline code
(`` `...` ``). Allowed: the constants of :data:`ALLOWED` below (conventions of the book
and settings of the paper, cited as such), each matched with its context.

The test itself is checked on hand-made lines (``test_the_rule_on_examples``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: A number: digits with a decimal point, or digits followed by a percent sign.
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?%|(?<![\w.])\d+\.\d+(?![\w.])")

#: Spans that contain digits but are not numbers of the text.
NOT_NUMBERS = [
    re.compile(r"§\s?\d+(?:\.\d+)*(?:\s?[–-]\s?\d+(?:\.\d+)*)?"),  # section references
    re.compile(r"\b\d+\.\d+\.\d+\b"),  # software versions (optax 0.2.8)
    re.compile(r"`[^`]*`"),  # inline code
]

#: Allowed constants, each a regex matched around the number, with why it is allowed.
ALLOWED = [
    # the confidence level of every interval in the book (claims.CONFIDENCE)
    (re.compile(r"95 %"), "confidence level of the intervals"),
    # chance accuracy of ten balanced classes: a property of the task, not a result
    (re.compile(r"chance \(10 %\)"), "chance level, 10 classes"),
    # the paper's relabelled fractions, epsilon in [0.01, 1] (§3.1, Fig. 1 right)
    (
        re.compile(r"\\epsilon\s*(?:=|\\ge|\\geq)\s*0\.(?:01|1|5)\b|\[0\.01, 1\]"),
        "paper's epsilon grid",
    ),
    # Leaky ReLU's negative slope 0.01, the paper's setting (§3.1)
    (re.compile(r"slope[- ]0\.01"), "paper's Leaky ReLU slope"),
    # cross-entropy of a uniform prediction over 10 classes, log 10: a constant
    (re.compile(r"\\log 10 \\approx 2\.30?"), "log 10"),
    # the paper's training length, 20 tasks x 75,000 steps (App. B.2)
    (re.compile(r"1\.5 million steps|1\.5\s?\\cdot\s?10\^6"), "paper's 1.5M steps"),
]


def markdown_lines(path: Path):
    """``(line number, text)`` of every line of the markdown cells of a jupytext
    py:percent file (the leading ``# `` stripped), read without jupytext."""
    in_md = False
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("# %%"):
            in_md = "[markdown]" in line
            continue
        if in_md and line.startswith("#"):
            yield i, line[2:] if line.startswith("# ") else line[1:]
        elif in_md and line.strip():
            in_md = False  # a code line ends a markdown cell that lacks a header


def offending_numbers(text: str) -> list[str]:
    """The numbers of ``text`` that are neither structural nor allowed."""
    masked = text
    for pat in NOT_NUMBERS:
        masked = pat.sub(lambda m: " " * len(m.group()), masked)
    allowed_spans = [m.span() for pat, _ in ALLOWED for m in pat.finditer(masked)]
    out = []
    for m in NUMBER.finditer(masked):
        if not any(a <= m.start() and m.end() <= b for a, b in allowed_spans):
            out.append(m.group())
    return out


@pytest.mark.parametrize(
    "line, expected",
    [
        ("the loss fell to 0.81 over the run", ["0.81"]),
        ("accuracy reached 12 % on the last tasks", ["12 %"]),
        ("accuracy reached 12% on the last tasks", ["12%"]),
        ("mean and 95 % band over seeds", []),
        ("the dotted line is chance (10 %).", []),
        ("we test it at §4.1–4.2 and §3.1", []),
        ("optax 0.2.8 has none", []),
        ("the value `0.5` in code", []),
        ("fractions $\\epsilon = 0.01$ and $\\epsilon = 0.5$", []),
        ("Leaky ReLU (slope 0.01) and GELU", []),
        ("$\\log 10 \\approx 2.30$ nats", []),
        ("1.5 million steps in the paper", []),
        ("an int like 100 steps, Fig. 5, App. E.1", []),
        ("the slope varies from $-0.13$ to $0.5$", ["0.13", "0.5"]),
        ("fits to 100 % and 99.9 %", ["100 %", "99.9 %"]),
    ],
)
def test_the_rule_on_examples(line, expected):
    assert offending_numbers(line) == expected


def test_markdown_lines_reads_only_markdown_cells(tmp_path):
    src = tmp_path / "ch.py"
    src.write_text(
        "# %% [markdown]\n# The loss was 0.81.\n\n# %%\nx = 0.5  # 12 %\n"
        '# %% [markdown]\n# Second cell, 95 % band.\n# %% tags=["x"]\ny = 1\n'
    )
    assert list(markdown_lines(src)) == [(2, "The loss was 0.81."), (7, "Second cell, 95 % band.")]


def _offences() -> list[str]:
    found = []
    for path in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py")):
        for lineno, text in markdown_lines(path):
            nums = offending_numbers(text)
            if nums:
                found.append(f"{path.name}:{lineno}: {nums} in {text.strip()!r}")
    return found


def test_no_typed_numbers_in_chapter_prose():
    offences = _offences()
    assert not offences, "typed numbers in markdown cells:\n" + "\n".join(offences)
