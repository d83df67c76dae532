"""Shared by the pipeline tests: the table of contents of a one-chapter tiny book."""

from __future__ import annotations

from pathlib import Path

import yaml


def tiny_toc(root: Path) -> str:
    """The repository's ``_toc.yml`` with chapter 00 as the only chapter page (the other
    parts that list chapter pages, e.g. Tools, are dropped; Results stays)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    toc["parts"][0]["chapters"] = [{"file": "chapters/00_overview"}]
    toc["parts"] = [toc["parts"][0]] + [
        part
        for part in toc["parts"][1:]
        if not any(c["file"].startswith("chapters/") for c in part["chapters"])
    ]
    return yaml.safe_dump(toc, sort_keys=False)
