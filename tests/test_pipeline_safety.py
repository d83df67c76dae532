"""Issue 21 (defects 1, 2, 3, 5 and the weaker spots on processes) and issue 20 part 5:
what `plasticity-book execute` / `build` guarantee when runs overlap, are stopped, are
killed, or when a notebook reaches the results folder some other way.

Each test builds a tiny book (one chapter, ``00_overview``, using chapter 0's real
profile table) in a temporary folder and runs real papermill kernels; the process tests
start the CLI as a subprocess and signal it.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
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

# code cell 1: imports; 2: parameters; (injected); 3: resolve + type checks; 4: a tqdm
# bar, a warning, stdout; 5: the claim record
TYPED = HEADER + textwrap.dedent(
    """
    # %%
    import os
    import warnings

    from plasticity_lib import claims, profiles

    # %% tags=["parameters"]
    profile = "default"
    learning_rate = None
    l2 = None

    # %%
    P = profiles.resolve_notebook("ch00_overview", globals())
    assert type(learning_rate) is float and learning_rate == 1e-5, repr(learning_rate)
    assert type(l2) is float and l2 == 1e-5, repr(l2)
    assert os.environ["PLASTICITY_PROFILE"] == P.profile == "smoke"

    # %%
    from tqdm import tqdm

    for _ in tqdm(range(3), desc="a progress bar"):
        pass
    warnings.warn("a warning the book keeps")
    print("to stdout")

    # %%
    book = claims.ClaimBook("ch00_overview", P, dataset="none")
    book.check("ch0.tiny", "One is positive.", "Fig. 0", "one", claims.exact(1.0), 0.0, ">")
    book.save();
    """
)

# code cell 1: imports; 2: parameters; (injected); 3: records its pids, then waits for
# $TEST_GO_FILE (at most $TEST_WAIT_S s); 4: the claim record
WAITING = HEADER + textwrap.dedent(
    """
    # %%
    import os
    import pathlib
    import time

    from plasticity_lib import claims, profiles

    # %% tags=["parameters"]
    profile = "default"

    # %%
    pathlib.Path(os.environ["TEST_PID_FILE"]).write_text(f"{os.getpid()} {os.getppid()}")
    go = pathlib.Path(os.environ.get("TEST_GO_FILE", "/nonexistent/go"))
    t0 = time.time()
    while not go.exists() and time.time() - t0 < float(os.environ.get("TEST_WAIT_S", "600")):
        time.sleep(0.1)

    # %%
    P = profiles.resolve_notebook("ch00_overview", {"profile": profile})
    book = claims.ClaimBook("ch00_overview", P, dataset="none")
    book.check("ch0.tiny", "One is positive.", "Fig. 0", "one", claims.exact(1.0), 0.0, ">")
    book.save();
    """
)


def make_book(tmp_path: Path, source: str) -> Path:
    book = tmp_path / "book"
    book.mkdir()
    shutil.copy(ROOT / "_config.yml", book / "_config.yml")
    (book / "_toc.yml").write_text(tiny_toc(ROOT))
    shutil.copytree(ROOT / "book", book / "book")
    (book / "chapters").mkdir()
    (book / "chapters" / "00_overview.py").write_text(source)
    (book / "src" / "plasticity_lib").mkdir(parents=True)
    (book / "src" / "plasticity_lib" / "lib.py").write_text("# library\n")
    return book


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.delenv("PLASTICITY_RESULTS_DIR", raising=False)
    monkeypatch.delenv("PLASTICITY_PROFILE", raising=False)
    pid_file = tmp_path / "kernel.pid"
    monkeypatch.setenv("TEST_PID_FILE", str(pid_file))
    return pid_file


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_for(pred, timeout: float, what: str):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _pids(pid_file: Path) -> tuple[int, int]:
    kernel, papermill = pid_file.read_text().split()
    return int(kernel), int(papermill)


def _cli(book: Path, *args: str, sigint=None) -> subprocess.Popen:
    """Start the CLI; ``sigint`` (e.g. ``signal.SIG_DFL``): its SIGINT disposition
    (default: inherited from the test process)."""
    env = dict(os.environ)
    env.pop("PLASTICITY_RESULTS_DIR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "plasticity_lib.cli", *args],
        cwd=book,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=None if sigint is None else (lambda: signal.signal(signal.SIGINT, sigint)),
    )


def _reap(pids) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------- defect 3: parameters


def test_floats_with_an_exponent_reach_the_notebook_as_floats(tmp_path, env, monkeypatch, capsys):
    """``--param learning_rate=1e-5`` (YAML read ``1e-05`` as a string: the chapter
    failed after 7 s); the executed notebook hides the injected cell and keeps
    warnings but not progress bars on stderr (issue 20 part 3)."""
    book = make_book(tmp_path, TYPED)
    monkeypatch.chdir(book)
    args = ["execute", "--profile", "smoke", "--param", "learning_rate=1e-5"]
    assert cli.main([*args, "--param", "l2=0.00001"]) == 0, capsys.readouterr().out
    res = book / "results" / "smoke"
    nb = json.loads((res / "ch00_overview.ipynb").read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0]["metadata"]["tags"]
    assert "learning_rate = 1e-05" in "".join(injected[0]["source"])
    outs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    stderr = "".join("".join(o["text"]) for o in outs if o.get("name") == "stderr")
    stdout = "".join("".join(o["text"]) for o in outs if o.get("name") == "stdout")
    assert "a warning the book keeps" in stderr and "to stdout" in stdout
    assert "%|" not in stderr and "a progress bar" not in stderr and "\r" not in stderr
    meta = json.loads((res / "ch00_overview.meta.json").read_text())
    assert meta["parameters"] == {"profile": "smoke", "learning_rate": 1e-5, "l2": 1e-5}
    assert pipeline.publication_problem(pipeline.discover(book)[0], "smoke", book) is None


@pytest.mark.parametrize(
    "param, words",
    [
        ("learning_rate=nan", "must be finite"),
        ("learning_rate=inf", "must be finite"),
        ("learning_rate=-inf", "must be finite"),
        ("profile=paper", "--profile paper (not --param profile=paper)"),
        ("batch_size=100000", "'batch_size' = 100000 must be <= parameter 'n_train'"),
        ("seeds=1.5", "'seeds' must be int"),
    ],
)
def test_bad_parameters_stop_before_a_kernel_starts(
    tmp_path, env, monkeypatch, capsys, param, words
):
    book = make_book(tmp_path, TYPED)
    monkeypatch.chdir(book)
    t0 = time.time()
    assert cli.main(["execute", "--profile", "smoke", "--param", param]) == 2
    assert words in capsys.readouterr().err
    assert time.time() - t0 < 10 and not (book / "results").exists()  # nothing ran


def test_allow_fallback_only_at_the_smoke_profile(tmp_path, env, monkeypatch, capsys):
    book = make_book(tmp_path, TYPED)
    monkeypatch.chdir(book)
    for cmd in ("execute", "prepare"):
        args = [cmd, "--profile", "default", "--param", "allow_fallback=true"]
        assert cli.main(args) == 2
        assert "allow_fallback=True is allowed only at the smoke profile" in capsys.readouterr().err
    assert not (book / "results").exists() and not (book / "_build").exists()


def test_parse_overrides_reads_non_finite_floats_and_refuses_profile():
    got = pipeline.parse_overrides(["a=inf", "b=-inf", "c=nan", "d=1e-5", "e=1e30"])
    assert got["a"] == float("inf") and got["b"] == float("-inf") and got["c"] != got["c"]
    assert got["d"] == 1e-5 and got["e"] == 1e30
    with pytest.raises(profiles.ParameterError, match="--profile paper"):
        pipeline.parse_overrides(["profile=paper"])


# ------------------------------------------------------------- defect 1: concurrency


def test_a_second_run_of_a_chapter_refuses_while_the_first_runs(tmp_path, env, monkeypatch):
    """Two runs of one chapter used one staging folder: the second deleted the first's
    and the published notebook had cells 'running'/'pending'."""
    book = make_book(tmp_path, WAITING)
    go = tmp_path / "go"
    monkeypatch.setenv("TEST_GO_FILE", str(go))
    first = _cli(book, "execute", "--profile", "smoke", "--force")
    try:
        _wait_for(env.exists, 180, "the first run's kernel")
        staged = list((book / "results" / "smoke" / ".staging").iterdir())
        assert len(staged) == 1 and staged[0].name.startswith("ch00_overview.")
        second = _cli(book, "execute", "--profile", "smoke", "--force")
        out2, _ = second.communicate(timeout=60)
        assert second.returncode == 1, out2
        assert "ch00_overview: REFUSED" in out2
        assert f"being executed by another plasticity-book run (pid {first.pid}," in out2
        assert staged[0].is_dir()  # the first run's staging folder is untouched
        go.touch()
        out1, _ = first.communicate(timeout=120)
        assert first.returncode == 0, out1
    finally:
        go.touch()
        if first.poll() is None:
            first.kill()
    res = book / "results" / "smoke"
    nb = pipeline._read_notebook(res / "ch00_overview.ipynb")
    assert pipeline.incomplete_cells(nb) == []
    assert pipeline.publication_problem(pipeline.discover(book)[0], "smoke", book) is None
    assert list((res / ".staging").iterdir()) == []


def test_chapter_lock_names_its_holder(tmp_path):
    with pipeline.chapter_lock(tmp_path, "ch00_overview"):
        with pytest.raises(pipeline.ChapterBusy, match=f"pid {os.getpid()}, executing since"):
            with pipeline.chapter_lock(tmp_path, "ch00_overview"):
                pass
    with pipeline.chapter_lock(tmp_path, "ch00_overview"):  # released
        pass


def test_incomplete_cells_are_named():
    import nbformat

    nb = nbformat.v4.new_notebook()
    states = ["completed", "running", "pending", None]
    for i, st in enumerate(states):
        cell = nbformat.v4.new_code_cell(f"x = {i}", execution_count=1 if st else None)
        if st:
            cell.metadata["papermill"] = {"status": st}
        nb.cells.append(cell)
    assert pipeline.incomplete_cells(nb) == [
        "code cell 2 ('x = 1') did not finish (status 'running')",
        "code cell 3 ('x = 2') never ran (status 'pending')",
        "code cell 4 ('x = 3') was not executed",
    ]


# ------------------------------------------------ defect 5 and SIGKILL: processes


def test_timeout_names_the_limit_and_the_cell(tmp_path, env, monkeypatch, capsys):
    book = make_book(tmp_path, WAITING)
    monkeypatch.chdir(book)
    t0 = time.time()
    assert cli.main(["execute", "--profile", "smoke", "--timeout", "40"]) == 1
    out = capsys.readouterr().out
    assert "FAILED ch00_overview: timed out after 40 s (--timeout 40), during code cell 3" in out
    assert time.time() - t0 < 90
    kernel, runner = _pids(env)
    _wait_for(lambda: not _alive(kernel) and not _alive(runner), 30, "the kernel to exit")
    res = book / "results" / "smoke"
    assert not (res / "ch00_overview.ipynb").exists() and list((res / ".staging").iterdir()) == []
    meta = json.loads((res / "ch00_overview.meta.json").read_text())
    assert meta["status"] == "failed" and meta["error"].startswith("timed out after 40 s")


def test_ctrl_c_says_interrupted_and_stops_the_kernel(tmp_path, env):
    """Ctrl-C at a terminal. The CLI starts with SIGINT at its default, as a foreground
    process does: a background job of a non-interactive shell (``make test &`` in a
    script, some CI runners) inherits SIGINT *ignored*, then Python installs no
    KeyboardInterrupt handler and the CLI rightly ignores the signal (session 5's
    "hang" in the clean-clone suite; see the next test)."""
    book = make_book(tmp_path, WAITING)
    proc = _cli(book, "execute", "--profile", "smoke", sigint=signal.SIG_DFL)
    try:
        _wait_for(env.exists, 180, "the kernel")
        kernel, runner = _pids(env)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=180)  # generous: CI runs two test workers at once
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "ch00_overview: INTERRUPTED" in out
    assert "interrupted (Ctrl-C) after" in out and "during code cell 3" in out, out
    _wait_for(lambda: not _alive(kernel) and not _alive(runner), 30, "the kernel to exit")
    res = book / "results" / "smoke"
    assert not (res / "ch00_overview.ipynb").exists() and list((res / ".staging").iterdir()) == []


def test_an_inherited_ignored_sigint_is_respected_and_sigterm_still_stops(tmp_path, env):
    """The diagnosis of session 5's hang, as a test: with SIGINT ignored by its parent
    (a background job of a non-interactive shell), the CLI ignores Ctrl-C as any
    program does, and SIGTERM (what CI runners and ``kill`` send) still stops it
    cleanly: nothing published, the kernel gone."""
    book = make_book(tmp_path, WAITING)
    proc = _cli(book, "execute", "--profile", "smoke", sigint=signal.SIG_IGN)
    try:
        _wait_for(env.exists, 180, "the kernel")
        kernel, runner = _pids(env)
        proc.send_signal(signal.SIGINT)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=3)  # ignored, as the shell asked
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        _wait_for(lambda: not _alive(runner), 60, f"papermill (pid {runner}) to exit")
        _wait_for(lambda: not _alive(kernel), 60, f"the kernel (pid {kernel}) to exit")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (book / "results" / "smoke" / "ch00_overview.ipynb").exists()


def test_killing_the_cli_stops_papermill_and_the_kernel(tmp_path, env):
    book = make_book(tmp_path, WAITING)
    proc = _cli(book, "execute", "--profile", "smoke")
    kernel = runner = None
    try:
        _wait_for(env.exists, 180, "the kernel")
        kernel, runner = _pids(env)
        assert _alive(kernel) and _alive(runner)
        proc.kill()  # SIGKILL: the CLI cannot clean up
        proc.wait(timeout=10)
        _wait_for(lambda: not _alive(runner), 30, f"papermill (pid {runner}) to exit")
        _wait_for(lambda: not _alive(kernel), 30, f"the kernel (pid {kernel}) to exit")
    finally:
        if proc.poll() is None:
            proc.kill()
        _reap([p for p in (kernel, runner) if p])
    assert not (book / "results" / "smoke" / "ch00_overview.ipynb").exists()


# ------------------------------------------ defect 2 / issue 20.5: stale and ad-hoc


def test_build_refuses_what_is_not_a_current_complete_result(tmp_path, env, monkeypatch, capsys):
    """`prepare` overwrote the executed notebook, `execute` said "up to date" and
    `build` rendered a notebook without outputs; other runs' claims were rendered."""
    book = make_book(tmp_path, WAITING)
    monkeypatch.setenv("TEST_WAIT_S", "0")
    monkeypatch.chdir(book)
    assert cli.main(["execute", "--profile", "smoke"]) == 0
    res = book / "results" / "smoke"
    nb_path, meta_path = res / "ch00_overview.ipynb", res / "ch00_overview.meta.json"
    claims_path = res / "ch00_overview.claims.json"
    good_nb, good_meta, good_claims = (p.read_bytes() for p in (nb_path, meta_path, claims_path))
    fix = "fix: plasticity-book execute --profile smoke --chapters 00_overview"

    def refused(words, *more):
        with pytest.raises(RuntimeError) as err:
            pipeline.build("smoke")
        msg = str(err.value)
        assert "ch00_overview: " + words in msg and fix in msg and all(m in msg for m in more)
        for p, b in ((nb_path, good_nb), (meta_path, good_meta), (claims_path, good_claims)):
            p.write_bytes(b)

    # prepare writes elsewhere; an unexecuted notebook put there by hand is refused,
    # and execute does not call it up to date
    (prepared,) = pipeline.prepare("smoke")
    assert prepared.parent == book / "_build" / "prepared" / "smoke"
    assert nb_path.read_bytes() == good_nb
    shutil.copy(prepared, nb_path)
    assert cli.main(["execute", "--profile", "smoke"]) == 0
    assert ": ok in" in capsys.readouterr().out
    good_nb, good_meta, good_claims = (p.read_bytes() for p in (nb_path, meta_path, claims_path))
    shutil.copy(prepared, nb_path)
    refused("the notebook changed after `plasticity-book execute` published it")
    # claims written by another run (a direct papermill run with PLASTICITY_RESULTS_DIR)
    rec = json.loads(claims_path.read_text())
    claims_path.write_text(json.dumps(dict(rec, seeds=3)))
    refused("its claim records changed after its run")
    # a failed last run
    meta = json.loads(good_meta)
    meta_path.write_text(json.dumps(dict(meta, status="failed", error="ValueError: boom")))
    refused("its last run failed: ValueError: boom")
    # a notebook with a cell that never ran, vouched for by its meta record
    nb = json.loads(good_nb)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    code[-1]["metadata"]["papermill"]["status"] = "pending"
    nb_path.write_text(json.dumps(nb))
    meta_path.write_text(json.dumps(dict(meta, notebook_sha256=pipeline.file_sha256(nb_path))))
    refused("code cell 4 ('P = profiles.resolve_notebook(", "never ran (status 'pending')")
    # no meta record at all
    meta_path.unlink()
    refused("no record of a `plasticity-book execute` run that published it")
    # stale: the chapter's source changed since it ran
    src = book / "chapters" / "00_overview.py"
    src.write_text(src.read_text() + "\n# %%\n1 + 1\n")
    refused("stale: its source, the library")


def test_a_direct_papermill_run_writes_to_results_adhoc(tmp_path, env, monkeypatch):
    """Issue 21 defect 2 / issue 20 part 5: a run not started by plasticity-book."""
    book = make_book(tmp_path, WAITING)
    monkeypatch.setenv("TEST_WAIT_S", "0")
    import nbformat

    nb = book / "ch.ipynb"

    nbformat.write(pipeline.to_notebook(pipeline.discover(book)[0]), nb)
    env_ = dict(os.environ)
    env_.pop("PLASTICITY_RESULTS_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "papermill", str(nb), str(book / "out.ipynb"), "-p", "profile",
         "smoke", "--no-progress-bar"],
        cwd=book, env=env_, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (book / "results" / "adhoc" / "smoke" / "ch00_overview.claims.json").is_file()
    assert not (book / "results" / "smoke").exists()


def test_content_hash_covers_the_lock_file_and_the_data(tmp_path, monkeypatch):
    from plasticity_lib import data

    book = make_book(tmp_path, WAITING)
    ch = pipeline.discover(book)[0]
    params = {"profile": "smoke"}
    assert pipeline.chapter_datasets(ch.id, params) == ["mnist"]
    assert pipeline.chapter_datasets(ch.id, {"profile": "smoke", "dataset": "cifar10"}) == [
        "cifar10"
    ]
    raw = tmp_path / "raw" / "mnist"
    raw.mkdir(parents=True)
    for f in data.expected_files("mnist"):
        (raw / f).write_bytes(b"one copy")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(raw.parent))
    h0 = pipeline.content_hash(ch, params, book)
    (book / "requirements-lock.txt").write_text("jax==0.4.30\n")
    h1 = pipeline.content_hash(ch, params, book)
    (book / "requirements-lock.txt").write_text("jax==0.4.31\n")
    h2 = pipeline.content_hash(ch, params, book)
    (raw / data.expected_files("mnist")[0]).write_bytes(b"another copy")
    h3 = pipeline.content_hash(ch, params, book)
    assert len({h0, h1, h2, h3}) == 4
    assert pipeline.content_hash(ch, params, book) == h3  # deterministic


def test_strip_progress_keeps_warnings():
    bar = "\rtrain 1 cfg x 2 seeds:   0%|          | 0/1 [00:00<?, ?chunk/s]"
    done = "\rtrain 1 cfg x 2 seeds: 100%|██████████| 1/1 [00:18<00:00, 18.67s/chunk, loss=1.6]"
    assert pipeline.strip_progress(bar + done + "\n") == ""
    assert pipeline.strip_progress("\r5it [00:01,  4.9it/s]\n") == ""
    warn = "/x.py:3: UserWarning: careful\n  warnings.warn('careful')\n"
    assert pipeline.strip_progress(warn + bar + done + "\n") == warn
    text = "50% of the seeds | diverged\n"
    assert pipeline.strip_progress(text) == text
