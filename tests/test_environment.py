"""The dependencies: pyproject.toml (lower bounds), requirements-lock.txt (the exact
known-good set that `make` and CI install) and environment.yml (conda, follows the lock)."""

import importlib.metadata
import tomllib
from pathlib import Path

import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK_FILE = ROOT / "requirements-lock.txt"
# the platform the lock is for: Python 3.11 on Linux x86-64
LOCK_ENV = default_environment() | {
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
# the extras `make` installs, and so the lock must cover
LOCKED_EXTRAS = ("book", "test")
# versions fixed by the chapter guide (the known-good set the book was checked with)
KNOWN_GOOD = {
    "jax": "0.10.2",
    "jaxlib": "0.10.2",
    "flax": "0.12.8",
    "optax": "0.2.8",
    "jupyter-book": "1.0.4.post1",
    "sphinx": "7.4.7",
    "jupytext": "1.19.6",
    "papermill": "2.7.0",
    "nbmake": "1.5.5",
    "seaborn": "0.13.2",
    "tensorflow-datasets": "4.9.10",
    "tensorflow-cpu": "2.21.0",
    "ruff": "0.17.6",
}


def _lock() -> dict[str, Version]:
    """requirements-lock.txt as {canonical name: version}; every line `name==version`."""
    pins: dict[str, Version] = {}
    for n, line in enumerate(LOCK_FILE.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        spec = list(req.specifier)
        assert len(spec) == 1 and spec[0].operator == "==" and not req.marker and not req.url, (
            f"requirements-lock.txt:{n}: {line!r} is not a plain `name==version` pin"
        )
        name = canonicalize_name(req.name)
        assert name not in pins, f"requirements-lock.txt:{n}: {req.name} pinned twice"
        pins[name] = Version(spec[0].version)
    return pins


def _requirements(*extras: str) -> list[Requirement]:
    """The project's dependencies plus those of `extras` whose markers hold on the lock's
    platform."""
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return [r for r in reqs if r.marker is None or r.marker.evaluate(LOCK_ENV)]


LOCK = _lock()


def test_pyproject_is_a_library():
    assert PROJECT["requires-python"] == ">=3.11"
    for raw in PROJECT["dependencies"]:
        req = Requirement(raw)
        assert req.specifier and all(s.operator == ">=" for s in req.specifier), (
            f"{raw!r}: library dependencies carry lower bounds only (exact pins go in the lock)"
        )
    names = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    assert "jaxlib" not in names, "jax brings its own jaxlib; no jaxlib entry"
    assert {"jax", "flax", "optax", "numpy", "tensorflow-datasets"} <= names
    extras = PROJECT["optional-dependencies"]
    assert {"gpu", "book", "test", "colab"} <= set(extras)
    assert any(
        Requirement(r).name == "jax" and "cuda12" in Requirement(r).extras for r in extras["gpu"]
    )


def test_lock_satisfies_pyproject():
    """(a) every locked version meets pyproject's bounds, for every extra."""
    bad = []
    for req in _requirements(*PROJECT["optional-dependencies"]):
        name = canonicalize_name(req.name)
        if name in LOCK and not req.specifier.contains(LOCK[name], prereleases=True):
            bad.append(f"{req}: the lock has {LOCK[name]}")
    assert not bad, "the lock violates pyproject.toml:\n" + "\n".join(bad)


def test_lock_holds_every_dependency():
    """(b) the project and its book/test extras are fully pinned (the self-reference of an
    extra, if any, is the project itself)."""
    own = canonicalize_name(PROJECT["name"])
    missing = sorted(
        str(r)
        for r in _requirements(*LOCKED_EXTRAS)
        if canonicalize_name(r.name) not in LOCK and canonicalize_name(r.name) != own
    )
    assert not missing, f"not in requirements-lock.txt: {missing}"
    assert own not in LOCK, "the lock must not pin the project itself (it is installed -e)"


def test_lock_is_the_known_good_set():
    for name, version in KNOWN_GOOD.items():
        assert LOCK.get(name) == Version(version), f"{name}: lock {LOCK.get(name)}, guide {version}"
    assert "importlib-resources" in LOCK


def test_environment_yml_follows_the_lock():
    """(c) conda: Python 3.11 and pip with the lock as constraints, nothing else."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pip = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert sorted(conda) == ["pip", "python=3.11"], (
        f"environment.yml: conda packages other than python and pip bypass the lock: {conda}"
    )
    assert pip == [["-c requirements-lock.txt", "-e .[book,test]"]], pip
    assert f"python={LOCK_ENV['python_version']}" in conda


def test_lock_is_closed_under_dependencies():
    """Every dependency of a locked package (with the extras asked for) is locked too, so
    `pip install -c` brings in nothing unpinned. Reads the installed metadata of packages
    installed at their locked version (`make` installs exactly the lock)."""
    todo = [(name, "") for name in LOCK] + [
        (canonicalize_name(r.name), e) for r in _requirements(*LOCKED_EXTRAS) for e in r.extras
    ]
    seen, unpinned = set(), set()
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if name not in LOCK or Version(dist.version) != LOCK[name]:
            continue
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is not None and not req.marker.evaluate(LOCK_ENV | {"extra": extra}):
                continue
            if extra and (req.marker is None or "extra" not in str(req.marker)):
                continue  # already checked without the extra
            dep = canonicalize_name(req.name)
            if dep not in LOCK and dep not in {"pip", "setuptools", "wheel"}:
                unpinned.add(f"{dep} (needed by {name}{f'[{extra}]' if extra else ''})")
            todo += [(dep, "")] + [(dep, e) for e in req.extras]
    assert not unpinned, f"unpinned in requirements-lock.txt: {sorted(unpinned)}"


def test_make_installs_the_lock():
    make = (ROOT / "Makefile").read_text()
    assert "LOCK   := requirements-lock.txt" in make
    stamp = next(line for line in make.splitlines() if line.startswith("STAMP"))
    assert "pyproject.toml $(LOCK)" in stamp, "the stamp hashes pyproject.toml and the lock"
    assert '-c $(LOCK) -e ".[book,test]"' in make
