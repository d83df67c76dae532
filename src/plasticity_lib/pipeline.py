"""Execute the chapters and render the book (behind the ``plasticity-book`` command).

* :func:`execute` — jupytext source -> notebook -> papermill with the profile
  injected, one subprocess per chapter (``--jobs`` at once). Each run takes a lock per
  results folder and chapter (``results/<profile>/.locks/<chapter>.lock``; a second run
  of the same chapter refuses at once, naming the process that holds it), executes in
  a staging folder of its own (``results/<profile>/.staging/<chapter>.<random>/``) and
  publishes into ``results/<profile>/`` — figures, claim records, then the notebook,
  then its ``.meta.json`` with the SHA-256 of the notebook and the claims — only when
  papermill succeeded *and* every code cell of the executed notebook completed. An
  interrupted, timed-out or failing run never leaves a half-written notebook for the
  book to render, and says what happened (the error and its cell; "timed out after N
  s during code cell k"; "interrupted (Ctrl-C) during code cell k"). Parameters go to
  papermill as JSON (no YAML round trip: ``1e-05`` stays a float), validated with
  :func:`profiles.resolve` before any kernel starts. The papermill process exits with
  the CLI (``PR_SET_PDEATHSIG`` and a watchdog), and the kernel with papermill
  (ipykernel's parent poller), so killing the CLI leaves nothing running. A chapter is
  skipped when its content hash (its source, the library's source, its parameters,
  ``requirements-lock.txt`` and the dataset files it reads) matches its last
  successful run and the published notebook is the one that run wrote, unless
  ``force``. After execution papermill's injected-parameters cell is tagged
  ``remove-cell`` and tqdm progress bars are removed from stderr (warnings stay).
* :func:`prepare` — parameterised but unexecuted notebooks, in their own folder
  ``_build/prepared/<profile>/`` (never the book's results).
* :func:`build` — assemble a staging copy of the book (config, prose pages,
  executed notebooks, generated scorecard) and run ``jupyter-book build`` on it with
  execution off. It refuses, naming the chapter and the command that fixes it, a
  notebook that ``plasticity-book execute`` did not publish, whose last run did not
  succeed, that changed since (SHA-256), whose inputs changed since (content hash) or
  whose code cells did not all complete.
* :func:`robustness` — re-execute every chapter (1) with held-out seeds
  (``seed_offset=100``) and (2) with every dataset-like parameter set to
  ``fashion_mnist``, into their own results folders (``results/robust-seeds/``,
  ``results/robust-fashion/``; ``-<profile>`` appended for a profile other than
  ``default``), never into the book's ``results/<profile>/``.
* :func:`list_chapters` — chapters, their profiles and their last runs.

Claim records and figures reach a book's results only through :func:`execute` (which
points ``PLASTICITY_RESULTS_DIR`` at its staging folder); a notebook run any other way
(papermill by hand, Jupyter, ``pytest --nbmake``) writes to ``results/adhoc/<profile>/``
(see :func:`plasticity_lib.claims.results_dir`).

The scorecard page (:func:`scorecard_markdown`, generated at build) shows per claim the
verdict of the run and of the two robustness runs when their records exist, grouped by
kind, with a headline over the paper claims only, a revisions section from
``book/claim_revisions.yml`` and the commit, date, hardware and profile of the runs.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from . import claims as claims_mod
from . import profiles, timing

KERNEL_NAME = "python3"


def repo_root() -> Path:
    """The repository root: searched upwards from the working directory, then from
    this file (editable install)."""
    for start in (Path.cwd().resolve(), Path(__file__).resolve()):
        for d in (start, *start.parents):
            if (d / "_toc.yml").exists() and (d / "chapters").is_dir():
                return d
    raise FileNotFoundError(
        "cannot find the book's repository root (a folder with _toc.yml and chapters/); "
        "run from inside the repository"
    )


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


#: JAX's persistent compilation cache, shared by every run of every profile (issue 22):
#: a re-execution (a rebuild after a prose change, robustness runs, nbmake after
#: ``execute``) loads the compiled programs instead of compiling them again. The cache is
#: keyed by the program, JAX version, backend and flags, so it never changes a number.
COMPILE_CACHE = Path("results") / ".jax-cache"


def compile_cache_env(root: Path | None = None) -> dict[str, str]:
    """Environment variables that turn on JAX's persistent compilation cache in
    ``<root>/results/.jax-cache`` for programs that take at least 0.2 s to compile
    (set either variable yourself to override)."""
    return {
        "JAX_COMPILATION_CACHE_DIR": str((root or repo_root()) / COMPILE_CACHE),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.2",
    }


def results_root(profile: str, root: Path | None = None, folder: str | None = None) -> Path:
    """``<root>/results/<folder or profile>``."""
    return (root or repo_root()) / "results" / (folder or profile)


#: The robustness runs: name -> (results folder stem, what changes, column title).
ROBUSTNESS_RUNS = {
    "seeds": ("robust-seeds", "held-out seeds: seed_offset=100", "held-out seeds"),
    "fashion": ("robust-fashion", "every dataset-like parameter = fashion_mnist", "Fashion-MNIST"),
}
ROBUST_SEED_OFFSET = 100
ROBUST_DATASET = "fashion_mnist"


def robust_folder(run: str, profile: str) -> str:
    """Results folder of a robustness run: ``robust-seeds`` / ``robust-fashion`` at the
    default profile, ``robust-seeds-<profile>`` ... at the others."""
    if run not in ROBUSTNESS_RUNS:
        raise profiles.ParameterError(
            f"unknown robustness run {run!r} for --runs; allowed: {list(ROBUSTNESS_RUNS)}"
        )
    stem = ROBUSTNESS_RUNS[run][0]
    return stem if profile == "default" else f"{stem}-{profile}"


def dataset_fields(chapter_id: str) -> list[str]:
    """The dataset-like parameters of a chapter: fields named ``dataset`` or
    ``*_dataset``."""
    fields = profiles.table(chapter_id).PROFILES["default"]
    return [k for k in fields if k == "dataset" or k.endswith("_dataset")]


def robustness_overrides(chapter_id: str, run: str) -> dict[str, Any]:
    """The parameter overrides of robustness run ``run`` for one chapter: ``seeds``:
    ``{"seed_offset": 100}``; ``fashion``: every dataset-like field = ``fashion_mnist``.

    Raises ParameterError when the chapter has no such parameter (or does not allow
    ``fashion_mnist``), naming the chapter and the run."""
    table = profiles.table(chapter_id)
    default = table.PROFILES["default"]
    if run == "seeds":
        if "seed_offset" not in default:
            raise profiles.ParameterError(
                f"{chapter_id}: robustness run 'seeds' needs a seed_offset parameter"
            )
        return {"seed_offset": ROBUST_SEED_OFFSET}
    if run == "fashion":
        fields = dataset_fields(chapter_id)
        if not fields:
            raise profiles.ParameterError(
                f"{chapter_id}: robustness run 'fashion' needs a dataset parameter"
            )
        bad = [f for f in fields if ROBUST_DATASET not in table.CHOICES.get(f, (ROBUST_DATASET,))]
        if bad:
            raise profiles.ParameterError(
                f"{chapter_id}: parameter(s) {bad} do not allow {ROBUST_DATASET!r}"
            )
        return {f: ROBUST_DATASET for f in fields}
    robust_folder(run, "default")  # raises the error naming the allowed runs
    return {}


def library_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((root / "src" / "plasticity_lib").rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


#: The lock file of the known-good environment; part of every content hash when present.
LOCK_FILE = "requirements-lock.txt"


def chapter_datasets(chapter_id: str, parameters: dict[str, Any]) -> list[str]:
    """The datasets a chapter run reads: the values of its dataset-like parameters
    (:func:`dataset_fields`) at ``parameters`` (``{"profile": ..., **overrides}``) that
    name a dataset of :mod:`plasticity_lib.data`; ``[]`` for a chapter without a
    profile table."""
    from . import data

    rest = {k: v for k, v in parameters.items() if k != "profile"}
    try:
        values = profiles.resolve(chapter_id, parameters.get("profile", "default"), **rest)
        fields = dataset_fields(chapter_id)
    except profiles.ParameterError:
        return []
    names = []
    for f in fields:
        v = values[f]
        for name in v if isinstance(v, (list, tuple)) else [v]:
            if name in data.DATASETS and name not in names:
                names.append(name)
    return sorted(names)


def content_hash(chapter: Chapter, parameters: dict[str, Any], root: Path) -> str:
    """Hash of everything a chapter's results depend on: the chapter source, the
    library source, the parameters, ``requirements-lock.txt`` (when present) and the
    source files of the datasets it reads (:func:`plasticity_lib.data.source_key`, a
    digest of the raw files' SHA-256), so an upgrade or other data re-executes."""
    from . import data

    h = hashlib.sha256()
    h.update(chapter.source.read_bytes())
    h.update(library_hash(root).encode())
    h.update(json.dumps(parameters, sort_keys=True).encode())
    lock = root / LOCK_FILE
    if lock.is_file():
        h.update(b"lock:" + hashlib.sha256(lock.read_bytes()).hexdigest().encode())
    for name in chapter_datasets(chapter.id, parameters):
        h.update(f"data:{name}:{data.source_key(name)};".encode())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _meta_path(chapter: Chapter, profile: str, root: Path, folder: str | None = None) -> Path:
    return results_root(profile, root, folder) / f"{chapter.id}.meta.json"


def read_meta(
    chapter: Chapter, profile: str, root: Path | None = None, folder: str | None = None
) -> dict[str, Any] | None:
    p = _meta_path(chapter, profile, root or repo_root(), folder)
    return json.loads(p.read_text()) if p.exists() else None


def git_commit(root: Path) -> str:
    """``git rev-parse --short=12 HEAD`` of ``root`` (+ ``"-dirty"`` when tracked files
    differ from it), or ``"unknown (not a git checkout)"``."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"


def hardware() -> str:
    """This machine in words: CPU model and core count, GPUs if ``nvidia-smi`` lists
    any, e.g. ``"AMD EPYC 7B13, 2 cores (x86_64, Linux)"``."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    out = f"{cpu}, {cores} cores ({platform.machine()}, {platform.system()})"
    if shutil.which("nvidia-smi"):
        try:
            gpus = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.split("\n")
            gpus = [g.strip() for g in gpus if g.strip()]
            if gpus:
                out += "; GPU: " + ", ".join(gpus)
        except (OSError, subprocess.SubprocessError):
            pass
    return out


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def to_notebook(chapter: Chapter):
    """The jupytext source as an nbformat notebook (no outputs)."""
    import jupytext

    nb = jupytext.read(chapter.source)
    nb.metadata.setdefault(
        "kernelspec", {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
    )
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
        if not k.isidentifier():
            raise profiles.ParameterError(
                f"--param expects NAME=VALUE with NAME a parameter name, got {it!r}"
            )
        if k == "profile":
            raise profiles.ParameterError(
                f"'profile' is not a parameter: choose the profile with --profile {v} "
                f"(not --param profile={v})"
            )
        if v.strip().lower().lstrip("+-") in ("inf", "infinity", "nan"):
            out[k] = float(v)  # read as the float it names; validation rejects it
            continue
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            try:
                out[k] = ast.literal_eval(v)
            except (ValueError, SyntaxError):
                out[k] = v
    return out


def _code_cells(nb) -> list[tuple[int | None, Any]]:
    """``(number, cell)`` of every code cell: numbered as in the chapter's source
    (papermill's injected-parameters cell gets ``None``)."""
    out: list[tuple[int | None, Any]] = []
    i = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            out.append((None, cell))
        else:
            i += 1
            out.append((i, cell))
    return out


def _cell_name(number: int | None, cell) -> str:
    first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    name = "the injected-parameters cell" if number is None else f"code cell {number}"
    return f"{name} ({first[:60]!r})"


def _read_notebook(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def _first_error(nb_path: Path) -> str:
    """'code cell N ('first line'): Ename: evalue' for the first cell with an error
    output, or ``"(no error output found in the notebook)"``."""
    try:
        nb = _read_notebook(nb_path)
    except Exception as e:  # noqa: BLE001
        return f"(could not read the executed notebook: {e})"
    for number, cell in _code_cells(nb):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"{_cell_name(number, cell)}: {out.get('ename')}: {out.get('evalue')}"
    return "(no error output found in the notebook)"


def _running_cell(nb_path: Path) -> str:
    """The cell running in a partially written notebook, in words: the one papermill
    marked ``running`` (it saves the notebook when each cell starts), else the last one
    that started (papermill marks an interrupted cell, and the cells after it,
    ``completed`` on its way out; only the cells that started have a start time)."""
    if not nb_path.exists():
        return "kernel start-up (no cell had started)"
    try:
        nb = _read_notebook(nb_path)
    except Exception:  # noqa: BLE001 - half-written: say so rather than fail
        return "an unknown cell (the partial notebook could not be read)"
    cells = _code_cells(nb)
    for number, cell in cells:
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            return _cell_name(number, cell)
    started = [
        (n, c) for n, c in cells if c.get("metadata", {}).get("papermill", {}).get("start_time")
    ]
    if not started:
        return "kernel start-up (no cell had started)"
    return _cell_name(*started[-1])


_CELL_STATE = {
    None: "was not executed",
    "pending": "never ran (status 'pending')",
    "running": "did not finish (status 'running')",
    "failed": "failed",
}


def incomplete_cells(nb) -> list[str]:
    """What keeps an executed notebook from being published or rendered: every code
    cell must have papermill's status ``completed``, no error output and (unless
    empty) an execution count. Returns one line per offending cell (``[]``: complete)."""
    problems = []
    for number, cell in _code_cells(nb):
        status = cell.get("metadata", {}).get("papermill", {}).get("status")
        if status != "completed":
            why = _CELL_STATE.get(status, f"has status {status!r}")
        elif any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            why = "has an error output"
        elif cell.source.strip() and cell.get("execution_count") is None:
            why = "has no execution count"
        else:
            continue
        problems.append(f"{_cell_name(number, cell)} {why}")
    return problems


#: A tqdm progress-bar frame: "... 40%|####      | 4/10 [00:01<00:02, 3.1it/s]" or,
#: without a total, "... 12it [00:01, 9.5it/s]".
_PROGRESS = re.compile(r"\d+%\|[^|\n]*\||\[\d+:\d\d(?::\d\d)?(?:<[^,\]]*)?(?:,[^\]]*)?\]\s*$")


def strip_progress(text: str) -> str:
    """``text`` (a stderr stream) without tqdm's progress-bar frames; every other line
    (warnings, log messages) is kept. A line redrawn with ``\\r`` keeps its last frame
    that is not a progress bar, and is dropped when all its frames are bars."""
    lines = []
    for line in text.split("\n"):
        if "\r" not in line and not _PROGRESS.search(line):
            lines.append(line)
            continue
        frames = [f for f in line.split("\r") if f.strip()]
        keep = [f for f in frames if not _PROGRESS.search(f)]
        if keep:
            lines.append(keep[-1])
        elif not frames:
            lines.append("")
    return "\n".join(lines)


def _clean_outputs(outputs: list) -> list:
    """Outputs with consecutive stderr streams merged and progress bars removed
    (a stream left empty is dropped)."""
    import nbformat

    merged: list = []
    for out in outputs:
        if (
            out.get("output_type") == "stream"
            and out.get("name") == "stderr"
            and merged
            and merged[-1].get("output_type") == "stream"
            and merged[-1].get("name") == "stderr"
        ):
            merged[-1] = nbformat.v4.new_output(
                "stream", name="stderr", text=merged[-1]["text"] + out["text"]
            )
        else:
            merged.append(out)
    cleaned = []
    for out in merged:
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            text = strip_progress(out["text"])
            if not text.strip():
                continue
            out = nbformat.v4.new_output("stream", name="stderr", text=text)
        cleaned.append(out)
    return cleaned


def finish_notebook(nb) -> None:
    """In place, after execution: tag papermill's injected-parameters cell
    ``remove-cell`` (the book hides it) and remove tqdm progress bars from stderr
    (warnings stay)."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        cell.outputs = _clean_outputs(cell.get("outputs", []))


#: Metadata key of the run-stamp cell that :func:`stamp_notebook` inserts.
STAMP_KEY = "plasticity_run_stamp"


def stamp_notebook(nb, record: dict[str, Any], timing_account: dict[str, Any]) -> None:
    """In place: a markdown cell after the chapter's title cell that says which run the
    page shows ("This run: profile ..., commit ..., executed ..., hardware ...", and the
    time account). A second stamp replaces the first."""
    import nbformat

    nb.cells = [c for c in nb.cells if not c.metadata.get(STAMP_KEY)]
    commit = record.get("commit") or "unknown"
    when = str(record.get("finished", "")).replace("T", " ")
    text = (
        f"*This run: profile {record['profile']}, commit {commit}, executed {when}, "
        f"hardware {record.get('hardware', 'unknown')}; {record.get('elapsed_s', 0):.0f} s"
    )
    if timing_account:
        text += f" ({timing.format_summary(timing_account)})"
    overrides = {k: v for k, v in (record.get("parameters") or {}).items() if k != "profile"}
    if overrides:
        text += ", parameters " + ", ".join(f"{k}={v}" for k, v in sorted(overrides.items()))
    cell = nbformat.v4.new_markdown_cell(text + ".*")
    cell.metadata[STAMP_KEY] = True
    at = 1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0
    nb.cells.insert(at, cell)


# -------------------------------------------------------------------- locks


class ChapterBusy(RuntimeError):
    """Another run holds the lock of this chapter's results."""


@contextlib.contextmanager
def chapter_lock(out_dir: Path, chapter_id: str, purpose: str = "executing"):
    """Hold ``<out_dir>/.locks/<chapter_id>.lock`` (``flock``; released by the kernel
    even when the holder is killed) or raise :class:`ChapterBusy` at once, naming the
    process that holds it."""
    import fcntl

    d = out_dir / ".locks"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{chapter_id}.lock"
    f = open(path, "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "its holder has not recorded itself yet"
        f.close()
        raise ChapterBusy(
            f"{chapter_id} in {out_dir} is being executed by another plasticity-book run "
            f"({holder}); wait for it to finish and run this again (lock file {path})"
        ) from None
    try:
        f.seek(0)
        f.truncate()
        now = dt.datetime.now().isoformat(timespec="seconds")
        f.write(f"pid {os.getpid()}, {purpose} since {now}\n")
        f.flush()
        yield path
    finally:
        try:
            f.seek(0)
            f.truncate()
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            f.close()


# ----------------------------------------------------------- the papermill child

_interrupted = threading.Event()  # set by _run_jobs on Ctrl-C; the workers stop their child
_STOP_GRACE_S = 20.0  # SIGTERM, then this long, then SIGKILL


def _exit_with_parent(parent_pid: int) -> None:
    """Make this process stop when ``parent_pid`` (the CLI) dies, even by SIGKILL:
    ``PR_SET_PDEATHSIG`` on Linux, and a watchdog thread everywhere. The stop is a
    SIGTERM (papermill then shuts its kernel down; ipykernel's parent poller is the
    last resort)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - exotic libc
            pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(_STOP_GRACE_S)
        os._exit(143)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _notebook_runner(spec_path: str) -> int:
    """The papermill child of :func:`run_chapter` (``python -c``): executes
    ``spec["input"]`` into ``spec["output"]`` with ``spec["parameters"]`` passed as
    Python values (JSON, no YAML: ``1e-05`` stays a float). SIGTERM (from the CLI on
    Ctrl-C or timeout, or because the CLI died) stops it, shutting the kernel down.
    Exit status: 0 ok, 1 a cell failed, 130 stopped."""
    spec = json.loads(Path(spec_path).read_text())
    _exit_with_parent(int(spec["parent_pid"]))

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    import papermill as pm

    try:
        pm.execute_notebook(
            spec["input"],
            spec["output"],
            parameters=spec["parameters"],
            kernel_name=spec["kernel"],
            cwd=spec["cwd"],
            progress_bar=False,
            log_output=False,
            shutdown_kernel="immediate",
        )
    except pm.PapermillExecutionError as err:
        print(f"papermill: cell failed: {err.ename}: {err.evalue}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        print(f"papermill: {err or 'interrupted'}", file=sys.stderr)
        return 130
    return 0


def _stop_child(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _run_child(
    cmd: list[str], env: dict[str, str], log: Path, timeout: float | None, exec_nb: Path
):
    """Run the papermill child in a session of its own (the terminal's Ctrl-C reaches
    the CLI only, which stops it); returns ``(outcome, returncode, elapsed_s, where)``
    with outcome ``done``, ``timeout`` or ``interrupted`` and ``where`` the cell that
    was running when it was stopped (read from the partial notebook *before* stopping
    it: papermill marks every cell ``completed`` on its way out)."""
    t0 = time.time()
    with open(log, "wb") as logf:
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    outcome, where = "done", ""
    try:
        while True:
            try:
                proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if _interrupted.is_set():
                outcome = "interrupted"
            elif timeout is not None and time.time() - t0 > timeout:
                outcome = "timeout"
            else:
                continue
            where = _running_cell(exec_nb)
            break
    finally:
        elapsed = time.time() - t0
        _stop_child(proc)
    return outcome, proc.returncode, elapsed, where


def _log_tail(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


# -------------------------------------------------------------------- execute


@dataclasses.dataclass
class ChapterRun:
    chapter: str
    status: str  # ok | skipped | failed | busy | interrupted
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


def check_fallback(chapter_id: str, profile: str, params: Any) -> None:
    """``allow_fallback=True`` (scikit-learn's 8x8 digits when the dataset is missing)
    is allowed only at the smoke profile: elsewhere the verdicts must come from the
    real data. Raises ParameterError before anything runs."""
    if profile != "smoke" and params.get("allow_fallback") is True:
        raise profiles.ParameterError(
            f"{chapter_id}: allow_fallback=True is allowed only at the smoke profile (at "
            f"profile {profile!r} the verdicts must come from the real dataset); drop "
            "--param allow_fallback=true, or use --profile smoke"
        )


def _is_published(meta: dict[str, Any] | None, digest: str | None, nb: Path) -> bool:
    """Whether ``nb`` is the notebook a successful run with content hash ``digest``
    published (``digest=None``: any hash)."""
    return bool(
        meta
        and meta.get("status") == "ok"
        and (digest is None or meta.get("hash") == digest)
        and nb.exists()
        and meta.get("notebook_sha256") == file_sha256(nb)
    )


def run_chapter(
    chapter: Chapter,
    profile: str,
    overrides: dict[str, Any],
    force: bool,
    root: Path,
    timeout: float | None = None,
    folder: str | None = None,
) -> ChapterRun:
    """Execute one chapter (see module docstring) into ``results/<folder or profile>``."""
    params = profiles.resolve(chapter.id, profile, **overrides)  # validate before anything runs
    check_fallback(chapter.id, profile, params)
    parameters = {"profile": profile, **params.overrides}
    digest = content_hash(chapter, parameters, root)
    out_dir = results_root(profile, root, folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with chapter_lock(out_dir, chapter.id):
            final_nb = out_dir / f"{chapter.id}.ipynb"
            meta = read_meta(chapter, profile, root, folder)
            if not force and _is_published(meta, digest, final_nb):
                return ChapterRun(chapter.id, "skipped", 0.0, "up to date")
            staging_root = out_dir / ".staging"
            staging_root.mkdir(exist_ok=True)
            # a staging folder of this chapter is left only by a run that was killed
            # (we hold the lock): remove it, with the pre-lock layout's folder
            for old in [staging_root / chapter.id, *staging_root.glob(f"{chapter.id}.*")]:
                shutil.rmtree(old, ignore_errors=True)
            staging = Path(tempfile.mkdtemp(prefix=f"{chapter.id}.", dir=staging_root))
            try:
                return _execute_staged(
                    chapter, profile, parameters, digest, root, timeout, folder, staging, meta
                )
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except ChapterBusy as e:
        return ChapterRun(chapter.id, "busy", 0.0, str(e))


def _execute_staged(
    chapter: Chapter,
    profile: str,
    parameters: dict[str, Any],
    digest: str,
    root: Path,
    timeout: float | None,
    folder: str | None,
    staging: Path,
    meta: dict[str, Any] | None,
) -> ChapterRun:
    """Run papermill in ``staging`` and publish (under the chapter's lock)."""
    import nbformat

    out_dir = results_root(profile, root, folder)
    src_nb = staging / "input.ipynb"
    nbformat.write(to_notebook(chapter), src_nb)
    exec_nb = staging / f"{chapter.id}.ipynb"
    spec = staging / "run.json"
    spec.write_text(
        json.dumps(
            {
                "input": str(src_nb),
                "output": str(exec_nb),
                "parameters": parameters,
                "kernel": KERNEL_NAME,
                "cwd": str(root / "chapters"),
                "parent_pid": os.getpid(),
            }
        )
    )
    code = "import sys; from plasticity_lib.pipeline import _notebook_runner as r; "
    code += "sys.exit(r(sys.argv[1]))"
    cmd = [sys.executable, "-c", code, str(spec)]
    # the kernel's claim records and figures go to staging; PLASTICITY_PROFILE agrees
    # with the injected profile (so an environment default cannot override it)
    env = dict(os.environ, PLASTICITY_RESULTS_DIR=str(staging), PLASTICITY_PROFILE=profile)
    env.update({k: v for k, v in compile_cache_env(root).items() if k not in os.environ})
    log = staging / "papermill.log"
    outcome, rc, elapsed, where = _run_child(cmd, env, log, timeout, exec_nb)
    now = dt.datetime.now().isoformat(timespec="seconds")
    record = {
        "chapter": chapter.id,
        "source": chapter.source.relative_to(root).as_posix(),
        "profile": profile,
        "parameters": parameters,
        "hash": digest,
        "finished": now,
        "elapsed_s": round(elapsed, 1),
        "commit": git_commit(root),
        "hardware": hardware(),
    }
    meta_path = _meta_path(chapter, profile, root, folder)
    if outcome == "interrupted":
        why = (
            f"interrupted (Ctrl-C) after {elapsed:.1f} s, during {where}; "
            "nothing was published (the previous results, if any, are kept)"
        )
        attempt = {"status": "interrupted", "finished": now, "error": why}
        _write_json_atomic(
            meta_path,
            dict(meta, last_attempt=attempt) if meta else dict(record, **attempt),
        )
        return ChapterRun(chapter.id, "interrupted", elapsed, why)
    why = ""
    nb = None
    if outcome == "timeout":
        why = f"timed out after {timeout:g} s (--timeout {timeout:g}), during {where}"
    elif rc != 0:
        why = _first_error(exec_nb) if exec_nb.exists() else ""
        if not why or why.startswith("("):
            tail = _log_tail(log)
            why = f"papermill exited with status {rc} during {_running_cell(exec_nb)}" + (
                f": {tail}" if tail else ""
            )
    else:
        try:
            nb = _read_notebook(exec_nb)
            problems = incomplete_cells(nb)
        except Exception as e:  # noqa: BLE001
            problems = [f"the executed notebook cannot be read ({type(e).__name__}: {e})"]
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            why = f"papermill finished but {problems[0]}{more}; nothing was published"
    if why:
        if exec_nb.exists():
            os.replace(exec_nb, out_dir / f"{chapter.id}.failed.ipynb")
        _write_json_atomic(
            meta_path,
            dict(record, status="failed", error=why, last_ok=(meta or {}).get("last_ok")),
        )
        return ChapterRun(chapter.id, "failed", elapsed, why)

    # success: figures, claims, the notebook, then the meta record that vouches for
    # them (with their SHA-256); all under the chapter's lock
    finish_notebook(nb)
    stamp_notebook(nb, record, _timing_of(staging / f"{chapter.id}.claims.json"))
    nbformat.write(nb, exec_nb)
    fig_src = staging / "figures"
    if fig_src.is_dir():
        fig_dst = out_dir / "figures"
        fig_dst.mkdir(exist_ok=True)
        for f in fig_src.iterdir():
            os.replace(f, fig_dst / f.name)
    claims_src = staging / f"{chapter.id}.claims.json"
    claims_dst = out_dir / claims_src.name
    if claims_src.exists():
        os.replace(claims_src, claims_dst)
    else:
        claims_dst.unlink(missing_ok=True)  # not this run's
    final_nb = out_dir / f"{chapter.id}.ipynb"
    os.replace(exec_nb, final_nb)
    (out_dir / f"{chapter.id}.failed.ipynb").unlink(missing_ok=True)
    summary = _verdict_summary(claims_dst)
    _write_json_atomic(
        meta_path,
        dict(
            record,
            status="ok",
            summary=summary,
            timing=_timing_of(claims_dst),
            last_ok=record["finished"],
            notebook_sha256=file_sha256(final_nb),
            claims_sha256=file_sha256(claims_dst) if claims_dst.exists() else None,
        ),
    )
    return ChapterRun(chapter.id, "ok", elapsed, summary)


def _timing_of(claims_json: Path) -> dict[str, Any]:
    """The chapter's time account (``plasticity_lib.timing``) from its claim record."""
    try:
        return dict(json.loads(claims_json.read_text()).get("timing") or {})
    except (OSError, ValueError):
        return {}


def _check_profile_and_jobs(profile: str, jobs: int) -> None:
    if profile not in profiles.PROFILE_NAMES:
        raise profiles.ParameterError(
            f"unknown profile {profile!r} for --profile; allowed: {list(profiles.PROFILE_NAMES)}"
        )
    if jobs < 1:
        raise profiles.ParameterError(f"--jobs must be a positive integer, got {jobs}")


class Interrupted(Exception):
    """Ctrl-C during :func:`execute` / :func:`robustness`: the running chapters were
    stopped and nothing half-done was published."""


@dataclasses.dataclass(frozen=True)
class _Job:
    chapter: Chapter
    overrides: dict[str, Any]
    folder: str | None  # results folder (None: the profile's)
    label: str  # how the progress lines name it


_STATUS_WORDS = {
    "ok": "ok",
    "skipped": "skipped (up to date)",
    "failed": "FAILED",
    "busy": "REFUSED",
    "interrupted": "INTERRUPTED",
}


def _run_jobs(jobs_list: list[_Job], profile: str, jobs: int, force: bool, timeout, root) -> int:
    """Run the jobs (``jobs`` at once), printing one line per start/end; returns the
    number of jobs that did not succeed. On Ctrl-C the running chapters are stopped
    (their staging folders removed, nothing published), the summary is printed and
    :class:`Interrupted` is raised."""
    n = len(jobs_list)
    t_all = time.time()
    _interrupted.clear()

    def one(i_job):
        i, job = i_job
        if _interrupted.is_set():
            return ChapterRun(job.label, "interrupted", 0.0, "not started (interrupted)")
        _say(f"[{i}/{n}] {job.label}: started")
        try:
            r = run_chapter(job.chapter, profile, job.overrides, force, root, timeout, job.folder)
        except Exception as e:  # noqa: BLE001  (a broken chapter must not stop the others)
            r = ChapterRun(job.chapter.id, "failed", 0.0, f"{type(e).__name__}: {e}")
        r = dataclasses.replace(r, chapter=job.label)
        word = _STATUS_WORDS[r.status]
        _say(f"[{i}/{n}] {job.label}: {word} in {r.elapsed_s:.1f} s — {r.message}")
        return r

    pool = cf.ThreadPoolExecutor(max_workers=jobs)
    futures = [pool.submit(one, ij) for ij in enumerate(jobs_list, 1)]
    while True:
        try:
            _, pending = cf.wait(futures, timeout=0.5)
            if not pending:
                break
        except KeyboardInterrupt:
            if not _interrupted.is_set():
                _interrupted.set()
                _say("interrupted (Ctrl-C): stopping the running chapter(s); nothing half-done "
                     "is published")  # fmt: skip
    pool.shutdown(wait=True)
    results = [f.result() for f in futures]
    bad = [r for r in results if r.status not in ("ok", "skipped")]
    count = {s: sum(r.status == s for r in results) for s in _STATUS_WORDS}
    extra = "".join(
        f", {count[s]} {w}" for s, w in (("busy", "refused"), ("interrupted", "interrupted"))
        if count[s]
    )  # fmt: skip
    _say(
        f"done in {time.time() - t_all:.1f} s: {count['ok']} executed, "
        f"{count['skipped']} up to date, {count['failed']} failed{extra}"
    )
    for r in bad:
        _say(f"  {_STATUS_WORDS[r.status]} {r.chapter}: {r.message}")
    if _interrupted.is_set():
        raise Interrupted(f"interrupted (Ctrl-C); {len(bad)} chapter run(s) did not complete")
    return len(bad)


def execute(
    profile: str = "default",
    chapters: Sequence[str] | None = None,
    jobs: int = 1,
    force: bool = False,
    overrides: dict[str, Any] | None = None,
    timeout: float | None = None,
) -> int:
    """Execute chapters; returns the number of failed chapters (0 = success)."""
    _check_profile_and_jobs(profile, jobs)
    root = repo_root()
    selected = select(chapters, root)
    overrides = overrides or {}
    for c in selected:  # every parameter error surfaces before any chapter runs
        check_fallback(c.id, profile, profiles.resolve(c.id, profile, **overrides))
    _say(f"executing {len(selected)} chapter(s) at profile {profile!r} with {jobs} job(s)")
    return _run_jobs(
        [_Job(c, overrides, None, c.id) for c in selected], profile, jobs, force, timeout, root
    )


def robustness(
    profile: str = "default",
    chapters: Sequence[str] | None = None,
    jobs: int = 1,
    force: bool = False,
    timeout: float | None = None,
    runs: Sequence[str] = tuple(ROBUSTNESS_RUNS),
) -> int:
    """Re-execute the chapters at ``profile`` for each robustness run (``seeds``:
    ``seed_offset=100``; ``fashion``: every dataset-like parameter = ``fashion_mnist``)
    into ``results/<robust_folder(run, profile)>/`` (never the book's
    ``results/<profile>/``). Chapters whose inputs did not change are skipped, as in
    :func:`execute`. Returns the number of failed runs (0 = success)."""
    _check_profile_and_jobs(profile, jobs)
    runs = list(dict.fromkeys(runs or ROBUSTNESS_RUNS))
    folders = {run: robust_folder(run, profile) for run in runs}  # checks the names
    if any(f in profiles.PROFILE_NAMES for f in folders.values()):  # pragma: no cover
        raise RuntimeError("a robustness folder would overwrite a profile's results")
    root = repo_root()
    selected = select(chapters, root)
    job_list = []
    for run in runs:
        for c in selected:
            over = robustness_overrides(c.id, run)
            # validate before anything runs
            check_fallback(c.id, profile, profiles.resolve(c.id, profile, **over))
            job_list.append(_Job(c, over, folders[run], f"{c.id} [{folders[run]}]"))
    _say(
        f"robustness: {len(selected)} chapter(s) x {len(runs)} run(s) at profile {profile!r} "
        f"({', '.join(f'{folders[r]}: {ROBUSTNESS_RUNS[r][1]}' for r in runs)}) "
        f"with {jobs} job(s)"
    )
    return _run_jobs(job_list, profile, jobs, force, timeout, root)


def prepared_root(profile: str, root: Path | None = None) -> Path:
    """Where :func:`prepare` writes: ``<root>/_build/prepared/<profile>``."""
    return (root or repo_root()) / "_build" / "prepared" / profile


def prepare(
    profile: str = "smoke",
    chapters: Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> list[Path]:
    """Write parameterised, unexecuted notebooks to ``_build/prepared/<profile>/``
    (e.g. for ``pytest --nbmake``), never to the book's ``results/<profile>/``. Run
    there, a notebook writes its claim records and figures to ``results/adhoc/``."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    root = repo_root()
    out_dir = prepared_root(profile, root)
    selected = select(chapters, root)
    resolved = {}
    for c in selected:  # every parameter error surfaces before anything is written
        resolved[c.id] = profiles.resolve(c.id, profile, **(overrides or {}))
        check_fallback(c.id, profile, resolved[c.id])
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for c in selected:
        path = out_dir / f"{c.id}.ipynb"
        tmp = out_dir / f".{c.id}.tmp.ipynb"
        nbformat.write(to_notebook(c), tmp)
        parameters = json.loads(json.dumps({"profile": profile, **resolved[c.id].overrides}))
        nb = parameterize_notebook(load_notebook_node(str(tmp)), parameters)
        nbformat.write(nb, tmp)
        os.replace(tmp, path)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- build


def scorecard_markdown(
    profile: str,
    records: list[dict[str, Any]],
    metas: dict[str, dict[str, Any]],
    robust: dict[str, list[dict[str, Any]]] | None = None,
    revisions: Sequence[dict[str, str]] = (),
    built: str | None = None,
) -> str:
    """The Reproduction scorecard page (MyST Markdown) from the claim records; see
    :mod:`plasticity_lib.scorecard`. ``robust``: ``{"seeds": records, "fashion":
    records}`` of the robustness runs that exist."""
    from . import scorecard

    titles = {k: v[2] for k, v in ROBUSTNESS_RUNS.items()}
    return scorecard.page(profile, records, metas, robust, revisions, titles, built)


def robust_records(profile: str, root: Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """``{run: claim records}`` of the robustness runs at ``profile`` that have results."""
    root = root or repo_root()
    out = {}
    for run in ROBUSTNESS_RUNS:
        recs = claims_mod.load_records(results_root(profile, root, robust_folder(run, profile)))
        if recs:
            out[run] = recs
    return out


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


def _filter_toc(toc: Any, keep: set[str]) -> Any:
    """The TOC without the chapter entries (``chapters/NN_name``) not in ``keep``."""
    if isinstance(toc, dict):
        out = {}
        for k, v in toc.items():
            out[k] = _filter_toc(v, keep)
        return out
    if isinstance(toc, list):
        return [
            _filter_toc(e, keep)
            for e in toc
            if not (
                isinstance(e, dict)
                and str(e.get("file", "")).startswith("chapters/")
                and e["file"] not in keep
            )
        ]
    return toc


def publication_problem(chapter: Chapter, profile: str, root: Path) -> str | None:
    """Why ``results/<profile>/<chapter>.ipynb`` must not be rendered, or None: it was
    not published by ``plasticity-book execute`` (no meta record with its SHA-256), its
    last run did not succeed, it or its claim records changed since that run wrote them
    (e.g. overwritten by a hand or papermill run), its inputs changed since (content
    hash: source, library, parameters, lock file, data), or a code cell did not
    complete."""
    res = results_root(profile, root)
    nb_path = res / f"{chapter.id}.ipynb"
    meta = read_meta(chapter, profile, root)
    if not meta or "notebook_sha256" not in meta:
        return "no record of a `plasticity-book execute` run that published it"
    if meta.get("status") != "ok":
        return f"its last run {meta.get('status')}: {meta.get('error', '(no error recorded)')}"
    if file_sha256(nb_path) != meta["notebook_sha256"]:
        return (
            "the notebook changed after `plasticity-book execute` published it (written by "
            "another program: an old `prepare`, papermill or a run by hand?)"
        )
    claims_path = res / f"{chapter.id}.claims.json"
    want = meta.get("claims_sha256")
    have = file_sha256(claims_path) if claims_path.exists() else None
    if want != have:
        return "its claim records changed after its run (written by another run?)"
    if content_hash(chapter, meta.get("parameters", {"profile": profile}), root) != meta["hash"]:
        return (
            "stale: its source, the library, its parameters, requirements-lock.txt or the "
            "dataset files changed since it was executed"
        )
    try:
        problems = incomplete_cells(_read_notebook(nb_path))
    except Exception as e:  # noqa: BLE001
        return f"the notebook cannot be read ({type(e).__name__}: {e})"
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return problems[0] + more
    return None


def build(
    profile: str = "default", strict: bool = False, chapters: Sequence[str] | None = None
) -> Path:
    """Render the book from the executed notebooks at ``profile``; returns index.html.

    ``chapters`` (stems, ids or numbers) renders only those chapters (a partial book:
    the others are left out of the staged table of contents and of the scorecard)."""
    import yaml

    if profile not in profiles.PROFILE_NAMES:
        raise profiles.ParameterError(
            f"unknown profile {profile!r} for --profile; allowed: {list(profiles.PROFILE_NAMES)}"
        )
    root = repo_root()
    res = results_root(profile, root)
    all_chapters = discover(root)
    toc_files = _toc_files(root)
    missing_toc = [c.stem for c in all_chapters if f"chapters/{c.stem}" not in toc_files]
    if missing_toc:
        raise FileNotFoundError(f"chapters missing from _toc.yml: {missing_toc}")
    chapters = select(chapters, root) if chapters else all_chapters
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
    with contextlib.ExitStack() as held:  # no run may publish while the book is assembled
        try:
            for c in chapters:
                held.enter_context(chapter_lock(res, c.id, "being rendered by build"))
        except ChapterBusy as e:
            raise RuntimeError(f"cannot build the book at profile {profile!r}: {e}") from None
        bad = {c: publication_problem(c, profile, root) for c in chapters}
        bad = {c: why for c, why in bad.items() if why}
        if bad:
            fix = " ".join(c.stem for c in bad)
            raise RuntimeError(
                f"cannot build the book at profile {profile!r}; these notebooks are not "
                "results of a complete, current `plasticity-book execute` run:\n"
                + "".join(f"  {c.id}: {why}\n" for c, why in bad.items())
                + f"fix: plasticity-book execute --profile {profile} --chapters {fix}"
            )
        for c in chapters:
            shutil.copy2(res / f"{c.id}.ipynb", src / "chapters" / f"{c.stem}.ipynb")
        ids = {c.id for c in chapters}
        records = [r for r in claims_mod.load_records(res) if r.get("chapter") in ids]
        metas = {c.id: (read_meta(c, profile, root) or {}) for c in chapters}
    shutil.copy2(root / "_config.yml", src / "_config.yml")
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    if len(chapters) < len(all_chapters):
        toc = _filter_toc(toc, {f"chapters/{c.stem}" for c in chapters})
    (src / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    shutil.copytree(root / "book", src / "book")
    robust = {
        k: [r for r in v if r.get("chapter") in ids]
        for k, v in robust_records(profile, root).items()
    }
    from . import scorecard

    revisions = scorecard.load_revisions(root / "book" / "claim_revisions.yml")
    card = scorecard_markdown(profile, records, metas, robust, revisions)
    (src / "book" / "scorecard.md").write_text(card)
    (res / "scorecard.md").write_text(card)
    cmd = [
        str(Path(sys.executable).with_name("jupyter-book")),
        "build",
        str(src),
        "--path-output",
        str(out),
        "--builder",
        "html",
    ]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, text=True, capture_output=True)
    sys.stdout.write(proc.stdout[-4000:])
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-8000:])
        raise RuntimeError(
            f"jupyter-book build failed (exit {proc.returncode}); see the messages above"
        )
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
                what = m.get("summary", m.get("error", ""))
                runs.append(f"{p}: {m['status']} {m['finished']} ({m['elapsed_s']} s) {what}")
                if m.get("timing"):
                    runs.append(f"  time: {timing.format_summary(m['timing'])}")
                last = m.get("last_attempt")
                if last:
                    runs.append(f"  last attempt: {last['status']} {last['finished']}")
            for run in ROBUSTNESS_RUNS:
                folder = robust_folder(run, p)
                m = read_meta(c, p, root, folder)
                if m:
                    what = m.get("summary", m.get("error", ""))
                    runs.append(f"{folder}: {m['status']} {m['finished']} {what}")
        rows.append(
            f"{c.id:28s} profiles: {avail}\n    " + ("\n    ".join(runs) if runs else "never run")
        )
    return "\n".join(rows)
