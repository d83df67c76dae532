"""Execute the chapters and render the book (behind the ``plasticity-book`` command).

* :func:`execute` — jupytext source -> notebook -> papermill with the profile
  injected, one subprocess per chapter (``--jobs`` at once). The executed notebook,
  its claim records and figures are first written to a staging folder and moved
  into ``results/<profile>/`` only when the chapter succeeded, so an interrupted or
  failing run never leaves a half-written notebook for the book to render. A chapter
  is skipped when the content hash of (its source, the library's source, its
  parameters) matches its last successful run, unless ``force``.
* :func:`prepare` — parameterised but unexecuted notebooks (for ``pytest --nbmake``).
* :func:`build` — assemble a staging copy of the book (config, prose pages,
  executed notebooks, generated scorecard) and run ``jupyter-book build`` on it with
  execution off.
* :func:`list_chapters` — chapters, their profiles and their last runs.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from . import claims as claims_mod
from . import profiles

KERNEL_NAME = "python3"


def repo_root() -> Path:
    """The repository root: searched upwards from the working directory, then from
    this file (editable install)."""
    for start in (Path.cwd().resolve(), Path(__file__).resolve()):
        for d in (start, *start.parents):
            if (d / "_toc.yml").exists() and (d / "chapters").is_dir():
                return d
    raise FileNotFoundError("cannot find the book's repository root (a folder with _toc.yml and chapters/); run from inside the repository")


@dataclasses.dataclass(frozen=True)
class Chapter:
    stem: str  # "00_overview"
    source: Path  # chapters/00_overview.py

    @property
    def id(self) -> str:
        """The chapter id used by profiles and claims: ``ch`` + stem."""
        return f"ch{self.stem}"


def discover(root: Path | None = None) -> list[Chapter]:
    root = root or repo_root()
    return [Chapter(p.stem, p) for p in sorted((root / "chapters").glob("[0-9][0-9]_*.py"))]


def select(names: Sequence[str] | None, root: Path | None = None) -> list[Chapter]:
    """Chapters by stem, id or number prefix (``00``, ``00_overview``, ``ch00_overview``)."""
    allc = discover(root)
    if not names:
        return allc
    out = []
    for n in names:
        m = [c for c in allc if n in (c.stem, c.id, c.stem[:2], c.source.name)]
        if not m:
            raise profiles.ParameterError(
                f"unknown chapter {n!r} for --chapters; allowed: {[c.stem for c in allc]}"
            )
        out.extend(c for c in m if c not in out)
    return out


def results_root(profile: str, root: Path | None = None) -> Path:
    return (root or repo_root()) / "results" / profile


def library_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((root / "src" / "plasticity_lib").rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def content_hash(chapter: Chapter, parameters: dict[str, Any], root: Path) -> str:
    """Hash of the chapter source, the library source and the parameters."""
    h = hashlib.sha256()
    h.update(chapter.source.read_bytes())
    h.update(library_hash(root).encode())
    h.update(json.dumps(parameters, sort_keys=True).encode())
    return h.hexdigest()


def _meta_path(chapter: Chapter, profile: str, root: Path) -> Path:
    return results_root(profile, root) / f"{chapter.id}.meta.json"


def read_meta(chapter: Chapter, profile: str, root: Path | None = None) -> dict[str, Any] | None:
    p = _meta_path(chapter, profile, root or repo_root())
    return json.loads(p.read_text()) if p.exists() else None


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def to_notebook(chapter: Chapter):
    """The jupytext source as an nbformat notebook (no outputs)."""
    import jupytext

    nb = jupytext.read(chapter.source)
    nb.metadata.setdefault("kernelspec", {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"})
    for cell in nb.cells:  # papermill expects every cell to carry a tags list
        cell.metadata.setdefault("tags", [])
    return nb


def parse_overrides(items: Sequence[str] | None) -> dict[str, Any]:
    """``NAME=VALUE`` strings. VALUE is read as JSON (``5``, ``1e-3``, ``true``,
    ``[0, 8]``), else as a Python literal (``False``, ``None``, ``(0.1, 1.0)``), else kept
    as a string (``cnn``)."""
    import ast

    out: dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            raise profiles.ParameterError(f"--param expects NAME=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            try:
                out[k] = ast.literal_eval(v)
            except (ValueError, SyntaxError):
                out[k] = v
    return out


def _first_error(nb_path: Path) -> str:
    """'cell N: Ename: evalue' for the first cell with an error output."""
    import nbformat

    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception as e:  # noqa: BLE001
        return f"(could not read the executed notebook: {e})"
    code_i = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        injected = "injected-parameters" in cell.get("metadata", {}).get("tags", [])
        code_i += 0 if injected else 1  # number cells as in the chapter's source
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                return f"code cell {code_i} ({first[:60]!r}): {out.get('ename')}: {out.get('evalue')}"
    return "(no error output found in the notebook)"


@dataclasses.dataclass
class ChapterRun:
    chapter: str
    status: str  # ok | skipped | failed
    elapsed_s: float
    message: str = ""


_print_lock = threading.Lock()


def _say(msg: str) -> None:
    with _print_lock:
        print(msg, flush=True)


def _verdict_summary(claims_json: Path) -> str:
    if not claims_json.exists():
        return "no claim records"
    recs = json.loads(claims_json.read_text())["claims"]
    counts: dict[str, int] = {}
    for r in recs:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    return f"{len(recs)} claims: " + ", ".join(f"{n} {v}" for v, n in counts.items())


def run_chapter(chapter: Chapter, profile: str, overrides: dict[str, Any], force: bool, root: Path, timeout: float | None = None) -> ChapterRun:
    """Execute one chapter (see module docstring)."""
    import nbformat

    params = profiles.resolve(chapter.id, profile, **overrides)  # validate before anything runs
    parameters = {"profile": profile, **params.overrides}
    digest = content_hash(chapter, parameters, root)
    out_dir = results_root(profile, root)
    out_dir.mkdir(parents=True, exist_ok=True)
    final_nb = out_dir / f"{chapter.id}.ipynb"
    meta = read_meta(chapter, profile, root)
    if not force and meta and meta.get("hash") == digest and meta.get("status") == "ok" and final_nb.exists():
        return ChapterRun(chapter.id, "skipped", 0.0, "up to date")

    staging = out_dir / ".staging" / chapter.id
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    src_nb = staging / "input.ipynb"
    nbformat.write(to_notebook(chapter), src_nb)
    exec_nb = staging / f"{chapter.id}.ipynb"
    cmd = [sys.executable, "-m", "papermill", str(src_nb), str(exec_nb), "-k", KERNEL_NAME, "--cwd", str(root / "chapters"), "--no-progress-bar", "--no-log-output"]
    for k, v in parameters.items():
        cmd += ["-y", json.dumps({k: v})]
    env = dict(os.environ, PLASTICITY_RESULTS_DIR=str(staging))
    t0 = time.time()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        rc, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        rc, stderr = -1, f"timed out after {timeout} s"
    elapsed = time.time() - t0
    record = {
        "chapter": chapter.id,
        "source": chapter.source.relative_to(root).as_posix(),
        "profile": profile,
        "parameters": parameters,
        "hash": digest,
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
    }
    if rc != 0:
        why = _first_error(exec_nb) if exec_nb.exists() else (stderr.strip().splitlines() or ["papermill failed"])[-1]
        if exec_nb.exists():
            os.replace(exec_nb, out_dir / f"{chapter.id}.failed.ipynb")
        _write_json_atomic(_meta_path(chapter, profile, root), dict(record, status="failed", error=why, last_ok=(meta or {}).get("last_ok")))
        return ChapterRun(chapter.id, "failed", elapsed, why)

    # success: move figures, claims, then the notebook (the notebook last: its
    # presence marks a complete run)
    fig_src = staging / "figures"
    if fig_src.is_dir():
        fig_dst = out_dir / "figures"
        fig_dst.mkdir(exist_ok=True)
        for f in fig_src.iterdir():
            os.replace(f, fig_dst / f.name)
    claims_src = staging / f"{chapter.id}.claims.json"
    if claims_src.exists():
        os.replace(claims_src, out_dir / claims_src.name)
    os.replace(exec_nb, final_nb)
    (out_dir / f"{chapter.id}.failed.ipynb").unlink(missing_ok=True)
    summary = _verdict_summary(out_dir / f"{chapter.id}.claims.json")
    _write_json_atomic(_meta_path(chapter, profile, root), dict(record, status="ok", summary=summary, last_ok=record["finished"]))
    shutil.rmtree(staging, ignore_errors=True)
    return ChapterRun(chapter.id, "ok", elapsed, summary)


def execute(profile: str = "default", chapters: Sequence[str] | None = None, jobs: int = 1, force: bool = False, overrides: dict[str, Any] | None = None, timeout: float | None = None) -> int:
    """Execute chapters; returns the number of failed chapters (0 = success)."""
    if profile not in profiles.PROFILE_NAMES:
        raise profiles.ParameterError(f"unknown profile {profile!r} for --profile; allowed: {list(profiles.PROFILE_NAMES)}")
    if jobs < 1:
        raise profiles.ParameterError(f"--jobs must be a positive integer, got {jobs}")
    root = repo_root()
    selected = select(chapters, root)
    overrides = overrides or {}
    for c in selected:  # every parameter error surfaces before any chapter runs
        profiles.resolve(c.id, profile, **overrides)
    n = len(selected)
    _say(f"executing {n} chapter(s) at profile {profile!r} with {jobs} job(s)")
    t_all = time.time()
    results: list[ChapterRun] = []

    def one(i_c):
        i, c = i_c
        _say(f"[{i}/{n}] {c.id}: started")
        try:
            r = run_chapter(c, profile, overrides, force, root, timeout)
        except Exception as e:  # noqa: BLE001  (a broken chapter must not stop the others)
            r = ChapterRun(c.id, "failed", 0.0, f"{type(e).__name__}: {e}")
        status = {"ok": "ok", "skipped": "skipped (up to date)", "failed": "FAILED"}[r.status]
        _say(f"[{i}/{n}] {c.id}: {status} in {r.elapsed_s:.1f} s — {r.message}")
        return r

    with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, enumerate(selected, 1)))
    failed = [r for r in results if r.status == "failed"]
    _say(f"done in {time.time() - t_all:.1f} s: {sum(r.status == 'ok' for r in results)} executed, "
         f"{sum(r.status == 'skipped' for r in results)} up to date, {len(failed)} failed")
    for r in failed:
        _say(f"  FAILED {r.chapter}: {r.message}")
    return len(failed)


def prepare(profile: str = "smoke", chapters: Sequence[str] | None = None, overrides: dict[str, Any] | None = None) -> list[Path]:
    """Write parameterised, unexecuted notebooks to ``results/<profile>/`` (for nbmake)."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    root = repo_root()
    out_dir = results_root(profile, root)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for c in select(chapters, root):
        params = profiles.resolve(c.id, profile, **(overrides or {}))
        path = out_dir / f"{c.id}.ipynb"
        tmp = out_dir / f".{c.id}.tmp.ipynb"
        nbformat.write(to_notebook(c), tmp)
        nb = parameterize_notebook(load_notebook_node(str(tmp)), {"profile": profile, **params.overrides})
        nbformat.write(nb, tmp)
        os.replace(tmp, path)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- build

def scorecard_markdown(profile: str, records: list[dict[str, Any]], metas: dict[str, dict[str, Any]]) -> str:
    """The Reproduction scorecard page (MyST Markdown) from the claim records."""
    lines = [
        "# Reproduction scorecard",
        "",
        f"Every claim check of the book at the **{profile}** profile, gathered from the claim "
        "records written next to the executed chapters. A claim is *reproduced* when the whole "
        "95 % interval of its statistic lies on the side of the threshold the paper's statement "
        "predicts, *not reproduced* when it lies entirely on the other side, and *inconclusive* "
        "when it straddles the threshold. Thresholds were fixed before the runs, from the paper's "
        "statements. At the smoke profile nothing is evaluated: the smoke run only checks that "
        "the code runs.",
        "",
    ]
    if not records:
        lines += ["No claim records were found: run `plasticity-book execute` first.", ""]
        return "\n".join(lines)
    counts: dict[str, int] = {}
    for r in records:
        for c in r["claims"]:
            counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    lines += ["**Summary:** " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) + ".", ""]
    lines += [
        "| claim | paper | statistic | measured [95 % CI] | threshold | verdict | profile | dataset | seeds | runtime |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    for r in records:
        runtime = metas.get(r["chapter"], {}).get("elapsed_s", r.get("runtime_s"))
        for c in r["claims"]:
            for i, p in enumerate(c["parts"]):
                e = claims_mod.Estimate(**p["estimate"])
                first = i == 0
                lines.append(
                    "| "
                    + " | ".join(
                        [
                            f"`{c['id']}`" if first else "",
                            esc(c["figure"]) if first else "",
                            esc(p["statistic"]),
                            esc(claims_mod.format_estimate(e)),
                            esc(f"{p['direction']} {claims_mod._fmt(p['threshold'])}"),
                            f"**{c['verdict']}**" if first else f"({p['verdict']})",
                            r["profile"] if first else "",
                            esc(r.get("dataset", "")) if first else "",
                            esc(r.get("seeds", "")) if first else "",
                            f"{runtime:.0f} s" if first and isinstance(runtime, (int, float)) else "",
                        ]
                    )
                    + " |"
                )
    lines += ["", "## The statements", ""]
    for r in records:
        for c in r["claims"]:
            note = f" *Note:* {c['note']}" if c.get("note") else ""
            lines.append(f"- `{c['id']}` ({esc(c['figure'])}): {c['statement']}{note}")
    lines.append("")
    return "\n".join(lines)


def _toc_files(root: Path) -> list[str]:
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            for key in ("chapters", "sections"):
                walk(e.get(key))
            for part in e.get("parts", []) or []:
                walk(part.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []) or []:
        walk(part.get("chapters"))
    return files


def build(profile: str = "default", strict: bool = False) -> Path:
    """Render the book from the executed notebooks at ``profile``; returns index.html."""
    if profile not in profiles.PROFILE_NAMES:
        raise profiles.ParameterError(f"unknown profile {profile!r} for --profile; allowed: {list(profiles.PROFILE_NAMES)}")
    root = repo_root()
    res = results_root(profile, root)
    chapters = discover(root)
    toc_files = _toc_files(root)
    missing_toc = [c.stem for c in chapters if f"chapters/{c.stem}" not in toc_files]
    if missing_toc:
        raise FileNotFoundError(f"chapters missing from _toc.yml: {missing_toc}")
    missing = [c.id for c in chapters if not (res / f"{c.id}.ipynb").exists()]
    if missing:
        raise FileNotFoundError(
            f"no executed notebook at profile {profile!r} for {missing} in {res}; "
            f"run `plasticity-book execute --profile {profile}` first"
        )
    out = root / "_build" / profile
    src = out / "src"
    shutil.rmtree(src, ignore_errors=True)
    (src / "chapters").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, src / name)
    shutil.copytree(root / "book", src / "book")
    for c in chapters:
        shutil.copy2(res / f"{c.id}.ipynb", src / "chapters" / f"{c.stem}.ipynb")
    records = claims_mod.load_records(res)
    metas = {c.id: (read_meta(c, profile, root) or {}) for c in chapters}
    card = scorecard_markdown(profile, records, metas)
    (src / "book" / "scorecard.md").write_text(card)
    (res / "scorecard.md").write_text(card)
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(src), "--path-output", str(out), "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, text=True, capture_output=True)
    sys.stdout.write(proc.stdout[-4000:])
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-8000:])
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}); see the messages above")
    index = out / "_build" / "html" / "index.html"
    if not index.exists():
        raise RuntimeError(f"jupyter-book finished but {index} is missing")
    return index


def list_chapters(profiles_to_show: Sequence[str] = profiles.PROFILE_NAMES) -> str:
    root = repo_root()
    rows = []
    for c in discover(root):
        try:
            avail = ",".join(profiles.table(c.id).PROFILES)
        except profiles.ParameterError as e:
            avail = f"(no profile table: {e})"
        runs = []
        for p in profiles_to_show:
            m = read_meta(c, p, root)
            if m:
                runs.append(f"{p}: {m['status']} {m['finished']} ({m['elapsed_s']} s) {m.get('summary', m.get('error', ''))}")
        rows.append(f"{c.id:28s} profiles: {avail}\n    " + ("\n    ".join(runs) if runs else "never run"))
    return "\n".join(rows)
