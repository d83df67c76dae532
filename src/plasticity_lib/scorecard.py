"""The reproduction scorecard page (MyST Markdown with HTML tables), generated at build.

Built by ``plasticity-book build`` (:func:`plasticity_lib.pipeline.build`) from

* the claim records ``results/<profile>/*.claims.json`` (:mod:`plasticity_lib.claims`),
* the records of the two robustness runs when they exist
  (``results/robust-seeds[-<profile>]/``, ``results/robust-fashion[-<profile>]/``,
  written by ``plasticity-book robustness``),
* the chapters' run metadata (``*.meta.json``: commit, hardware, date),
* ``book/claim_revisions.yml``: the history of claims whose definition changed.

Layout (readable at 1,280 px without horizontal scrolling): a run line (profile,
commit, dates, hardware), a headline over the **paper** claims only (reproduced / not
reproduced / inconclusive / uninformative, and how many reproduced ones are robust: the
default run and both robustness runs agree), then one table per kind (paper,
derivation, extension) whose columns are the claim id (a link to the claim's row in its
chapter, :func:`claims.claim_anchor`), the verdict (coloured), the two robustness
verdicts and the robust mark when present, and the paper reference; the statement,
statistics, thresholds, measured values and reasons go in a details row under each
claim. Last, the revisions section.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import claims as claims_mod

#: verdict -> (background, text colour); readable in light and dark themes.
VERDICT_COLOURS = {
    "reproduced": ("#d1f2d9", "#0b5d1e"),
    "not reproduced": ("#ffd8d3", "#8a1c0f"),
    "inconclusive": ("#fff1bf", "#6b4b00"),
    "uninformative": ("#e3e6ea", "#3b424a"),
    "not evaluated (smoke)": ("#dfe9f5", "#24425f"),
    "not evaluated (fallback data)": ("#dfe9f5", "#24425f"),
}
KIND_TITLES = {
    "paper": "Paper claims",
    "derivation": "Derivation checks",
    "extension": "Extensions",
}
HEADLINE_VERDICTS = ("reproduced", "not reproduced", "inconclusive", "uninformative")
REVISION_KEYS = ("id", "date", "old_definition", "old_verdict", "new_definition", "reason")

_STYLE = """<style>
.bd-main .bd-content .bd-article-container {max-width: 100%;}
table.scorecard {width: 100%; table-layout: fixed; border-collapse: collapse;
  font-size: 0.9em; margin-bottom: 1.5em;}
table.scorecard th, table.scorecard td {padding: 0.3em 0.4em; vertical-align: top;
  overflow-wrap: break-word; word-break: normal; hyphens: none; text-align: left;}
table.scorecard td code {overflow-wrap: anywhere;}
table.scorecard tr.claim td {border-top: 1px solid rgba(128, 128, 128, 0.45);}
table.scorecard tr.details td {font-size: 0.88em; padding-top: 0; padding-bottom: 0.6em;}
table.scorecard tr.details ul {margin: 0.2em 0 0.2em 1.2em; padding: 0;}
table.scorecard span.verdict {display: inline-block; padding: 0.05em 0.45em;
  border-radius: 0.6em; font-weight: 600; white-space: normal;}
</style>"""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def badge(verdict: str | None) -> str:
    """A coloured verdict label (``"—"`` when there is none)."""
    if not verdict:
        return '<span title="not run">—</span>'
    bg, fg = VERDICT_COLOURS.get(verdict, ("#eeeeee", "#222222"))
    return f'<span class="verdict" style="background:{bg};color:{fg}">{esc(verdict)}</span>'


def chapter_href(chapter_id: str, claim_id: str) -> str:
    """Link from ``book/scorecard.html`` to the claim's row in its chapter's page."""
    stem = chapter_id[2:] if chapter_id.startswith("ch") else chapter_id
    return f"../chapters/{stem}.html#{claims_mod.claim_anchor(claim_id)}"


def load_revisions(path: str | Path) -> list[dict[str, str]]:
    """The entries of ``book/claim_revisions.yml`` (``revisions:`` list), validated.

    Each entry needs the keys :data:`REVISION_KEYS` (``old_verdict`` one of the
    claims' verdicts); a missing file gives no entries.

    Raises:
      ValueError: naming the entry and the missing or bad key.
    """
    import yaml

    p = Path(path)
    if not p.exists():
        return []
    doc = yaml.safe_load(p.read_text()) or {}
    if not isinstance(doc, Mapping) or not isinstance(doc.get("revisions", []) or [], list):
        raise ValueError(f"{p}: expected a mapping with a 'revisions:' list")
    out = []
    for i, entry in enumerate(doc.get("revisions") or []):
        if not isinstance(entry, Mapping):
            raise ValueError(f"{p}: revision {i} is not a mapping with keys {list(REVISION_KEYS)}")
        missing = [k for k in REVISION_KEYS if entry.get(k) in (None, "")]
        if missing:
            raise ValueError(
                f"{p}: revision {i} ({entry.get('id', '?')}) lacks {missing}; every entry needs "
                f"{list(REVISION_KEYS)}"
            )
        if entry["old_verdict"] not in claims_mod.VERDICTS:
            raise ValueError(
                f"{p}: revision {i} ({entry['id']}): old_verdict={entry['old_verdict']!r} is "
                f"not one of {list(claims_mod.VERDICTS)}"
            )
        out.append({k: str(entry[k]) for k in REVISION_KEYS})
    return out


def _verdicts_by_id(records: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {c["id"]: c["verdict"] for r in records for c in r.get("claims", [])}


def robust_mark(verdict: str, others: Sequence[str | None]) -> str:
    """``"✓"`` when every robustness verdict exists and equals ``verdict``, ``"✗"`` when
    one differs, ``"—"`` when one is missing."""
    if any(o is None for o in others) or not others:
        return "—"
    return "✓" if all(o == verdict for o in others) else "✗"


def run_line(profile: str, metas: Mapping[str, Mapping[str, Any]], built: str) -> str:
    """One paragraph: profile, commit(s), dates and hardware of the runs."""
    commits = sorted({m["commit"] for m in metas.values() if m.get("commit")})
    hw = sorted({m["hardware"] for m in metas.values() if m.get("hardware")})
    dates = sorted(m["finished"] for m in metas.values() if m.get("finished"))
    when = (
        "not recorded"
        if not dates
        else (dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}")
    )
    return (
        f"**Run:** profile `{profile}` · commit "
        + (", ".join(f"`{c}`" for c in commits) if commits else "not recorded")
        + f" · chapters executed {when} · hardware: "
        + ("; ".join(hw) if hw else "not recorded")
        + f" · page built {built}."
    )


def _details(
    c: Mapping[str, Any], r: Mapping[str, Any], meta: Mapping[str, Any], robust_cells: list
) -> str:
    parts = []
    for p in c.get("parts", []):
        e = claims_mod.Estimate(**p["estimate"])
        thr = claims_mod.format_threshold(p["direction"], p["threshold"], p.get("threshold_high"))
        why = f" — {esc(p['reason'])}" if p.get("reason") else ""
        parts.append(
            f"<li>{esc(p['statistic'])}: <b>{esc(claims_mod.format_estimate(e))}</b>, "
            f"threshold {esc(thr)} ({esc(p['verdict'])}{why})</li>"
        )
    bits = [f"{esc(c.get('statement', ''))}"]
    if c.get("note"):
        bits.append(f" <i>Note:</i> {esc(c['note'])}")
    bits.append("<ul>" + "".join(parts) + "</ul>")
    if c.get("reason"):
        bits.append(f"<i>Reason:</i> {esc(c['reason'])}<br>")
    runtime = meta.get("elapsed_s", r.get("runtime_s"))
    facts = [
        f"dataset {esc(r.get('dataset', '') or '?')}",
        f"seeds {esc(r.get('seeds', '?'))}",
    ]
    if isinstance(runtime, (int, float)):
        facts.append(f"chapter runtime {runtime:.0f} s")
    if c.get("dropped_seeds"):
        facts.append(f"{c['dropped_seeds']} diverged seed(s) dropped")
    bits.append(" · ".join(facts))
    colspan = 3 + len(robust_cells)
    return f'<tr class="details"><td colspan="{colspan}">{"".join(bits)}</td></tr>'


def claims_table(
    rows: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
    metas: Mapping[str, Mapping[str, Any]],
    robust: Mapping[str, dict[str, str]],
    titles: Mapping[str, str],
) -> str:
    """One HTML table (no blank lines, so MyST keeps it as one raw block)."""
    runs = list(robust)
    if runs:
        widths = ["24%", "16%"] + ["15%"] * len(runs) + ["9%"]
        widths.append(f"{100 - 40 - 15 * len(runs) - 9}%")
    else:
        widths = ["34%", "22%", "44%"]
    head = ["claim", "verdict"] + [titles[k] for k in runs] + (["robust"] if runs else [])
    head.append("paper")
    out = ['<table class="scorecard">', "<colgroup>"]
    out += [f'<col style="width:{w}">' for w in widths]
    out += ["</colgroup>", "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head)]
    out += ["</tr></thead>", "<tbody>"]
    for c, r in rows:
        others = [robust[k].get(c["id"]) for k in runs]
        cells = [
            f'<a href="{esc(chapter_href(r["chapter"], c["id"]))}"><code>{esc(c["id"])}</code></a>',
            badge(c["verdict"]),
        ]
        cells += [badge(o) for o in others]
        if runs:
            cells.append(esc(robust_mark(c["verdict"], others)))
        cells.append(esc(c.get("figure", "")))
        out.append('<tr class="claim">' + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
        meta = metas.get(r["chapter"], {})
        out.append(_details(c, r, meta, others + ([None] if runs else [])))
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def revisions_section(revisions: Sequence[Mapping[str, str]]) -> list[str]:
    lines = ["## Revisions", ""]
    lines.append(
        "Every change of a claim's definition after a published book is listed here, from "
        "`book/claim_revisions.yml` (tracked), so that no claim is silently redefined."
    )
    lines.append("")
    if not revisions:
        lines += ["No claim has been redefined yet.", ""]
        return lines
    out = ['<table class="scorecard">', "<colgroup>"]
    out += [f'<col style="width:{w}">' for w in ("20%", "11%", "25%", "22%", "22%")]
    out += ["</colgroup>", "<thead><tr>"]
    out += [f"<th>{h}</th>" for h in ("claim", "date", "before", "now", "reason")]
    out += ["</tr></thead>", "<tbody>"]
    for e in revisions:
        out.append(
            '<tr class="claim">'
            f"<td><code>{esc(e['id'])}</code></td><td>{esc(e['date'])}</td>"
            f"<td>{esc(e['old_definition'])}<br>{badge(e['old_verdict'])}</td>"
            f"<td>{esc(e['new_definition'])}</td><td>{esc(e['reason'])}</td></tr>"
        )
    out += ["</tbody>", "</table>"]
    return lines + ["\n".join(out), ""]


def page(
    profile: str,
    records: Sequence[Mapping[str, Any]],
    metas: Mapping[str, Mapping[str, Any]],
    robust: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    revisions: Sequence[Mapping[str, str]] = (),
    titles: Mapping[str, str] | None = None,
    built: str | None = None,
) -> str:
    """The scorecard page (MyST Markdown).

    Args:
      profile: the profile of the run.
      records: the claim records (``claims.load_records``) of the run.
      metas: ``{chapter id: meta}`` of the run (commit, hardware, finished, elapsed_s).
      robust: ``{run name: records}`` of the robustness runs that exist (e.g.
        ``{"seeds": [...], "fashion": [...]}``); empty or None when none were run.
      revisions: :func:`load_revisions` entries.
      titles: ``{run name: column title}``.
      built: the build time shown (default: now).
    """
    built = built or dt.datetime.now().isoformat(timespec="minutes")
    robust_v = {k: _verdicts_by_id(v) for k, v in (robust or {}).items() if v}
    titles = dict(titles or {})
    for k in robust_v:
        titles.setdefault(k, k)
    lines = [
        "---",
        "html_theme.sidebar_secondary.remove: true",
        "---",
        "",
        "# Reproduction scorecard",
        "",
        f"Every claim check of the book at the **{profile}** profile, gathered from the claim "
        "records written next to the executed chapters. A claim is *reproduced* when the whole "
        "95 % interval of its statistic lies on the side of the threshold the paper's statement "
        "predicts (inside the band, for a sized statement), *not reproduced* when it lies "
        "entirely on the other side (outside the band), *inconclusive* when it straddles the "
        "threshold, and *uninformative* when the test could not have failed: every compared "
        "arm at a ceiling or floor, no loss of plasticity to prevent, or a first task not "
        "learned above chance (the reason is given). Thresholds were fixed before the runs, "
        "from the paper's statements. At the smoke profile nothing is evaluated: the smoke "
        "run only checks that the code runs.",
        "",
        run_line(profile, metas, built),
        "",
    ]
    if not records:
        lines += ["No claim records were found: run `plasticity-book execute` first.", ""]
        lines += revisions_section(revisions)
        return "\n".join(lines)
    rows_by_kind: dict[str, list] = {k: [] for k in claims_mod.KINDS}
    for r in records:
        for c in r.get("claims", []):
            rows_by_kind.setdefault(c.get("kind", "paper"), []).append((c, r))
    paper = rows_by_kind.get("paper", [])
    counts = {v: 0 for v in HEADLINE_VERDICTS}
    for c, _ in paper:
        counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    head = ", ".join(f"**{n} {v}**" for v, n in counts.items() if n or v in HEADLINE_VERDICTS)
    lines.append(f"**Headline (paper claims only):** {len(paper)} claims: {head}.")
    runs_all = [k for k in ("seeds", "fashion") if k in robust_v] + [
        k for k in robust_v if k not in ("seeds", "fashion")
    ]
    robust_v = {k: robust_v[k] for k in runs_all}
    if len(robust_v) >= 2:
        n_rep = [c for c, _ in paper if c["verdict"] == "reproduced"]
        n_rob = [
            c for c in n_rep if all(robust_v[k].get(c["id"]) == "reproduced" for k in robust_v)
        ]
        lines.append(
            f"Of the {len(n_rep)} reproduced paper claims, **{len(n_rob)} "
            f"{'is' if len(n_rob) == 1 else 'are'} robust**: also "
            "reproduced in both robustness runs ("
            + " and ".join(esc(titles[k]) for k in robust_v)
            + ")."
        )
    elif robust_v:
        lines.append(
            "Only one robustness run has results ("
            + esc(titles[next(iter(robust_v))])
            + "); robustness needs both (`plasticity-book robustness`)."
        )
    else:
        lines.append(
            "The robustness runs (held-out seeds, Fashion-MNIST) have not been run for this "
            "profile: `make robustness` adds their columns."
        )
    singular = {"derivation": "derivation check", "extension": "extension"}
    others = [
        f"{len(rows_by_kind[k])} {singular[k]}{'' if len(rows_by_kind[k]) == 1 else 's'}"
        for k in ("derivation", "extension")
        if rows_by_kind.get(k)
    ]
    if others:
        lines.append("Not counted in the headline: " + " and ".join(others) + ".")
    lines += ["", _STYLE, ""]
    for kind in [*claims_mod.KINDS, *[k for k in rows_by_kind if k not in claims_mod.KINDS]]:
        rows = rows_by_kind.get(kind) or []
        if not rows:
            continue
        kc: dict[str, int] = {}
        for c, _ in rows:
            kc[c["verdict"]] = kc.get(c["verdict"], 0) + 1
        lines += [f"## {KIND_TITLES.get(kind, kind)}", ""]
        lines.append(", ".join(f"{n} {v}" for v, n in kc.items()) + ".")
        lines += ["", claims_table(rows, metas, robust_v, titles), ""]
    lines += revisions_section(revisions)
    return "\n".join(lines)
