"""Run profiles: one table per chapter, validated before any computation.

Each chapter ``chNN_name`` has a module ``plasticity_lib.profiles.chNN_name`` with

* ``Parameters``: a frozen dataclass whose fields are the chapter's parameters at the
  **default** profile (minutes on a 2-core CPU, enough seeds to test the claims), each
  declared with :func:`param` — its default value, what it means, and optionally its
  allowed ``choices`` (categorical) or inclusive ``range=(low, high)`` (numbers);
* ``SMOKE`` and ``PAPER``: the two other profiles as *deltas* of the default (only the
  fields that differ): smoke runs in seconds, for CI; paper has the paper's settings,
  for a GPU;
* optionally ``CONSTRAINTS``: bounds of one field by another, as ``(left, op, right)``
  with two field names and ``op`` one of ``<``, ``<=``, ``>``, ``>=``, ``divides``, e.g.
  ``("batch_size", "<=", "n_train")``; a tuple-valued side must hold for each element.

A chapter displays its table with :func:`show` (all three profiles side by side).

:func:`resolve` picks a profile and applies overrides; every mistake (an unknown
profile, an unknown field, a value of the wrong type, a NaN or infinite float, a value
outside ``CHOICES`` or ``RANGES``, a broken ``CONSTRAINTS`` bound, ``profile`` given as
an override) raises :class:`ParameterError` naming it and the allowed values.
:func:`resolve_notebook` does the same from a notebook's globals, so a parameter
injected by papermill that the chapter does not know is caught too.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import operator
import os
import pkgutil
import types
from typing import Any, Mapping

PROFILE_NAMES = ("smoke", "default", "paper")
#: Picks the profile of a notebook whose ``profile`` is left at "default"
#: (``PLASTICITY_PROFILE=smoke pytest --nbmake chapters/``); plasticity-book execute sets it.
PROFILE_ENV = "PLASTICITY_PROFILE"
#: Set to 1 to run the paper profile on a CPU (it refuses otherwise: its settings are
#: sized for a GPU, and a CPU run would take days without saying why).
ALLOW_CPU_ENV = "PLASTICITY_ALLOW_CPU"
#: Where :func:`checkpoint_path` puts checkpoints (default ``<repo>/results/checkpoints``);
#: setting it also turns checkpoints on at the smoke and default profiles.
CHECKPOINT_ENV = "PLASTICITY_CHECKPOINT_DIR"

# ``CONSTRAINTS`` operators: ``(left, op, right)`` holds when ``OPS[op](left, right)``.
OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "divides": lambda a, b: a != 0 and b % a == 0,
}


def param(default: Any, doc: str, *, choices: tuple | None = None, range: tuple | None = None):
    """A field of a chapter's ``Parameters`` dataclass.

    Args:
      default: the value at the default profile (lists are written as tuples).
      doc: what the parameter is (shown in the chapter's table and in error messages).
      choices: allowed values of a categorical parameter (each element of a tuple value).
      range: inclusive ``(low, high)`` bounds of a number (either may be None).
    """
    meta = {"doc": doc}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if range is not None:
        meta["range"] = tuple(range)
    return dataclasses.field(default=default, metadata=meta)


class ParameterError(ValueError):
    """A bad profile or parameter; the message names it and the allowed values."""


class Params(Mapping[str, Any]):
    """Resolved, read-only parameters: attribute and item access (``P.seeds``)."""

    def __init__(
        self, chapter: str, profile: str, values: dict[str, Any], overrides: dict[str, Any]
    ):
        object.__setattr__(self, "_d", dict(values, profile=profile))
        object.__setattr__(self, "chapter", chapter)
        object.__setattr__(self, "profile", profile)
        object.__setattr__(self, "overrides", dict(overrides))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._d[name]
        except KeyError:
            raise AttributeError(
                f"{self.chapter}: no parameter {name!r}; known: {sorted(self._d)}"
            ) from None

    def __setattr__(self, name, value):
        raise AttributeError("Params are read-only; pass overrides to resolve()")

    def __getitem__(self, k):
        return self._d[k]

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._d)

    def __repr__(self) -> str:
        over = f", overrides={self.overrides}" if self.overrides else ""
        return f"Params({self.chapter}, profile={self.profile!r}{over})"


def chapters() -> list[str]:
    """The chapter ids that have a profile table."""
    import plasticity_lib.profiles as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("ch"))


def _from_dataclass(chapter: str, mod: types.ModuleType) -> types.SimpleNamespace:
    """``PROFILES`` / ``CHOICES`` / ``RANGES`` / ``DESCRIPTION`` of a ``Parameters`` module."""
    fields = dataclasses.fields(mod.Parameters)
    default = {f.name: f.default for f in fields}
    profiles = {"default": dict(default)}
    for name in ("smoke", "paper"):
        delta = dict(getattr(mod, name.upper(), {}))
        unknown = sorted(set(delta) - set(default))
        if unknown:
            raise ParameterError(f"{chapter}: profile {name!r} sets unknown field(s) {unknown}")
        profiles[name] = dict(default, **delta)
    constraints = [tuple(c) for c in getattr(mod, "CONSTRAINTS", ())]
    for c in constraints:
        if len(c) != 3 or c[1] not in OPS or not {c[0], c[2]} <= set(default):
            raise ParameterError(
                f"{chapter}: bad constraint {c!r}; expected (field, op, field) with op in "
                f"{list(OPS)} and fields among {sorted(default)}"
            )
    return types.SimpleNamespace(
        __name__=mod.__name__,
        __doc__=mod.__doc__,
        Parameters=mod.Parameters,
        PROFILES=profiles,
        CHOICES={f.name: f.metadata["choices"] for f in fields if "choices" in f.metadata},
        RANGES={f.name: f.metadata["range"] for f in fields if "range" in f.metadata},
        CONSTRAINTS=constraints,
        DESCRIPTION={f.name: f.metadata.get("doc", "") for f in fields},
    )


def table(chapter: str) -> types.SimpleNamespace:
    """The profile table of ``chapter``: ``PROFILES`` (all three, full), ``CHOICES``,
    ``RANGES``, ``CONSTRAINTS``, ``DESCRIPTION`` and the ``Parameters`` dataclass."""
    known = chapters()
    if chapter not in known:
        raise ParameterError(f"unknown chapter {chapter!r}; chapters with a profile table: {known}")
    mod = importlib.import_module(f"plasticity_lib.profiles.{chapter}")
    if hasattr(mod, "Parameters"):
        mod = _from_dataclass(chapter, mod)
    missing = [p for p in PROFILE_NAMES if p not in mod.PROFILES]
    if missing:
        raise ParameterError(f"{chapter}: profile table lacks {missing}")
    keys = [set(mod.PROFILES[p]) for p in PROFILE_NAMES]
    if any(k != keys[0] for k in keys):
        raise ParameterError(f"{chapter}: the profiles do not define the same fields: {keys}")
    return mod


def _type_ok(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) == 0:
            return False
        if len(default) == 0:
            return True
        return all(_type_ok(v, default[0]) for v in value)
    if default is None:
        return True
    return isinstance(value, type(default))


def _type_name(default: Any) -> str:
    if isinstance(default, (list, tuple)):
        inner = type(default[0]).__name__ if default else "any"
        return f"a non-empty list of {inner}"
    return type(default).__name__


def _is_float_param(reference: Any) -> bool:
    if isinstance(reference, (list, tuple)):
        return len(reference) > 0 and isinstance(reference[0], float)
    return isinstance(reference, float)


def _number_as_text(value: Any) -> str | None:
    """The first string in ``value`` (a value or a list) that reads as a finite number."""
    for v in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(v, str):
            try:
                if math.isfinite(float(v)):
                    return v
            except ValueError:
                pass
    return None


def _yaml_float(x: float) -> str:
    """``x`` as YAML 1.1 (papermill's) reads a float: with a dot in the mantissa."""
    s = repr(x)
    return s.replace("e", ".0e") if "e" in s and "." not in s else s


def _as_finite_float(chapter: str, name: str, v: Any) -> float:
    try:
        f = float(v)
    except OverflowError:  # an int beyond the float range
        got = f"an integer of {len(str(abs(v)))} digits, beyond the float range"
    else:
        if math.isfinite(f):
            return f
        got = repr(v)
    raise ParameterError(f"{chapter}: parameter {name!r} must be finite, got {got}")


def _check_value(chapter: str, mod: types.ModuleType, name: str, value: Any, reference: Any) -> Any:
    if not _type_ok(value, reference):
        msg = (
            f"{chapter}: parameter {name!r} must be {_type_name(reference)}, "
            f"got {value!r} ({type(value).__name__})"
        )
        text = _number_as_text(value) if _is_float_param(reference) else None
        if text is not None:
            msg += (
                f"; {text!r} is a number passed as text (YAML 1.1, which papermill uses, "
                f"reads an exponent without a dot as a string): pass the number "
                f"{float(text)!r} itself (in a YAML parameter write {_yaml_float(float(text))})"
            )
        raise ParameterError(msg)
    if isinstance(reference, tuple) and isinstance(value, list):
        value = tuple(value)
    if isinstance(reference, float):
        value = _as_finite_float(chapter, name, value)
    elif _is_float_param(reference):
        value = tuple(_as_finite_float(chapter, name, v) for v in value)
    choices = getattr(mod, "CHOICES", {}).get(name)
    if choices is not None:
        items = value if isinstance(value, (list, tuple)) else [value]
        bad = [v for v in items if v not in choices]
        if bad:
            raise ParameterError(
                f"{chapter}: parameter {name!r} has invalid value(s) {bad}; "
                f"allowed: {list(choices)}"
            )
    rng = getattr(mod, "RANGES", {}).get(name)
    if rng is not None:
        low, high = rng
        items = value if isinstance(value, (list, tuple)) else [value]
        for v in items:
            if (low is not None and v < low) or (high is not None and v > high):
                lo = "-inf" if low is None else low
                hi = "inf" if high is None else high
                raise ParameterError(
                    f"{chapter}: parameter {name!r} = {v!r} is outside the allowed range "
                    f"[{lo}, {hi}]"
                )
    return value


def _check_constraints(chapter: str, mod: types.ModuleType, values: dict[str, Any]) -> None:
    for left, op, right in getattr(mod, "CONSTRAINTS", ()):
        a, b = values[left], values[right]
        items_a = a if isinstance(a, (list, tuple)) else [a]
        items_b = b if isinstance(b, (list, tuple)) else [b]
        if not all(OPS[op](x, y) for x in items_a for y in items_b):
            each = " each" if isinstance(a, (list, tuple)) else ""
            verb = "divide" if op == "divides" else f"be {op}"
            every = "every element of " if isinstance(b, (list, tuple)) else ""
            raise ParameterError(
                f"{chapter}: parameter {left!r} = {a!r} must{each} {verb} {every}"
                f"parameter {right!r} = {b!r}"
            )


def resolve(chapter: str, profile: str | None = None, /, **overrides: Any) -> Params:
    """The parameters of ``chapter`` at ``profile`` with single fields overridden.

    ``None`` overrides are ignored (a notebook's parameters cell uses ``None`` for
    "keep the profile's value"). ``profile`` may be given by keyword
    (``resolve(chapter, profile="smoke")``); given positionally *and* as an override it
    is an error (``--param profile=paper``: the profile is chosen with ``--profile``).
    """
    value = overrides.pop("profile", None)
    if value is not None:
        if profile is not None:
            raise ParameterError(
                f"{chapter}: 'profile' is not a parameter: use --profile {value} instead of "
                f"--param profile={value} (in Python: resolve({chapter!r}, {value!r}))"
            )
        profile = value
    if profile is None:
        profile = "default"
    if profile not in PROFILE_NAMES:
        raise ParameterError(
            f"unknown profile {profile!r} for parameter 'profile'; allowed: {list(PROFILE_NAMES)}"
        )
    mod = table(chapter)
    base = dict(mod.PROFILES[profile])
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ParameterError(
            f"{chapter}: unknown parameter(s) {unknown}; allowed: {['profile', *sorted(base)]}"
        )
    for name, value in list(base.items()):
        base[name] = _check_value(chapter, mod, name, value, value)
    for name, value in overrides.items():
        base[name] = _check_value(chapter, mod, name, value, mod.PROFILES[profile][name])
    _check_constraints(chapter, mod, base)
    return Params(chapter, profile, base, overrides)


_NOTEBOOK_BUILTINS = {"In", "Out", "exit", "quit", "get_ipython", "open"}


def resolve_notebook(chapter: str, namespace: Mapping[str, Any]) -> Params:
    """:func:`resolve` from a notebook's ``globals()``.

    Every public, non-module, non-callable global is taken as a parameter; call
    this right after the ``parameters`` cell (and papermill's injected cell), before
    defining any other variables. ``profile`` picks the profile; every other name
    must be a field of the chapter's table (``None`` keeps the profile's value).
    """
    params = {}
    for name, value in namespace.items():
        if name.startswith("_") or name in _NOTEBOOK_BUILTINS:
            continue
        if isinstance(value, types.ModuleType) or callable(value):
            continue
        params[name] = value
    profile = params.pop("profile", "default")
    env = os.environ.get(PROFILE_ENV, "").strip()
    if env and profile == "default":  # left at its default: the environment picks
        if env not in PROFILE_NAMES:
            raise ParameterError(
                f"unknown profile {env!r} in ${PROFILE_ENV}; allowed: {list(PROFILE_NAMES)}"
            )
        profile = env
    resolved = resolve(chapter, profile, **params)
    if profile == "paper":
        _refuse_cpu(chapter)
    return resolved


def _refuse_cpu(chapter: str) -> None:
    """The paper profile on a CPU backend: a clear refusal unless ``$PLASTICITY_ALLOW_CPU``."""
    if os.environ.get(ALLOW_CPU_ENV, "").strip() in ("1", "true", "yes"):
        return
    import jax

    backend = jax.default_backend()
    if backend == "cpu":
        raise ParameterError(
            f"{chapter}: the paper profile needs a GPU or TPU, and JAX's backend is 'cpu' "
            f"(devices: {jax.devices()}). Install the GPU extra (pip install "
            f"'plasticity-lib[gpu]') on a machine with a GPU, or set {ALLOW_CPU_ENV}=1 to run "
            "it on the CPU anyway (e.g. with small --param overrides, to check it runs)."
        )


def checkpoint_dir(params: Params):
    """The folder for ``train.train_stream(checkpoint_dir=...)`` (which names its own
    fingerprinted files): the folder of :func:`checkpoint_path`, or ``None``."""
    path = checkpoint_path(params, "stream")
    return None if path is None else str(path.parent)


def checkpoint_path(params: Params, name: str):
    """The checkpoint file of one long run of a chapter, or ``None`` (no checkpoints).

    At the paper profile (or whenever ``$PLASTICITY_CHECKPOINT_DIR`` is set) a chapter
    passes this path to ``runner.run_chunks(checkpoint=...)`` or
    ``train.train_stream(checkpoint_dir=...)``, so a long GPU run that dies resumes
    after its last completed chunk when the chapter is executed again. The file is
    ``<dir>/<chapter>/<name>-<profile>-<hash>.pkl``, where the hash covers every
    parameter value: a run with other parameters never resumes this one.

    Args:
      params: the chapter's resolved :class:`Params`.
      name: the run within the chapter (e.g. ``"pretrain"`` or a progress-bar label);
        anything other than letters, digits, ``-`` and ``_`` becomes ``-``.
    Returns:
      ``pathlib.Path`` or ``None`` at the smoke and default profiles (unless the
      environment variable is set).
    """
    import hashlib
    import json
    import re
    from pathlib import Path

    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", str(name)).strip("-")
    if not slug:
        raise ValueError(f"checkpoint_path: name={name!r} needs a letter or digit")
    env = os.environ.get(CHECKPOINT_ENV, "").strip()
    if not env and params.profile != "paper":
        return None
    if env:
        root = Path(env)
    else:
        here = Path.cwd().resolve()
        repo = next(
            (d for d in (here, *here.parents) if (d / "chapters").is_dir()),
            here,
        )
        root = repo / "results" / "checkpoints"
    digest = hashlib.sha1(
        json.dumps(dict(params), sort_keys=True, default=repr).encode()
    ).hexdigest()[:12]
    return root / params.chapter / f"{slug}-{params.profile}-{digest}.pkl"


def show(chapter: str):
    """The chapter's three profiles side by side, as a pandas DataFrame (one row per
    parameter: smoke, default, paper and what it means); rendered as a table in the
    book. Values that differ from the default are the profiles' deltas."""
    import pandas as pd

    mod = table(chapter)
    desc = getattr(mod, "DESCRIPTION", {})
    rows = {}
    for f in mod.PROFILES["default"]:
        rows[f] = {p: _show_value(mod.PROFILES[p][f]) for p in PROFILE_NAMES}
        rows[f]["meaning"] = desc.get(f, "")
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "parameter"
    return df


def _show_value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(_show_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def describe(chapter: str) -> str:
    """A Markdown table of the chapter's profiles (for the chapter's setup section)."""
    mod = table(chapter)
    desc = getattr(mod, "DESCRIPTION", {})
    fields = list(mod.PROFILES["default"])
    lines = ["| parameter | smoke | default | paper | meaning |", "|---|---|---|---|---|"]
    for f in fields:
        vals = [mod.PROFILES[p][f] for p in PROFILE_NAMES]
        lines.append(f"| `{f}` | " + " | ".join(f"`{v}`" for v in vals) + f" | {desc.get(f, '')} |")
    return "\n".join(lines)
