"""A study file (TOML) read into a typed :class:`StudyFile`, with every key and type checked before anything runs.

A study file is a ``title``, an optional ``text`` and ``name``, an optional ``[quick]`` table (the scale of
``--quick``) and a non-empty ``[[sections]]`` list. Each section has a ``heading`` (the question), an optional
``text``, exactly one step table (``sweep``, ``transfer``, ``count``, ``kernels`` or ``equivariance``) and an
optional ``quick`` table that replaces some of the step's keys at ``--quick`` scale (tables are merged key by
key). The values themselves (a model name, a setting, a learning rate) are checked when the study is planned
(:mod:`dlbench.studies.plan`), by the same resolution `sweep` and `count-params` use. Every error is one line:
the file, where in it (a line for a syntax error, else the key), what is wrong and how to fix it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from dlbench.errors import UsageError

SCALAR = (str, int, float, bool)
# Types of keys: "str", "int", "bool", "list" (of scalars), "text-or-list", "table" (NAME = scalar or list).
MODEL_KEYS = {"model": "str", "dataset": "str", "settings": "table", "dataset_options": "table"}
TRAINED_KEYS = {**MODEL_KEYS, "options": "table", "untrained": "bool", "seed": "int"}
STEP_KEYS: dict[str, dict[str, str]] = {
    "sweep": {
        **MODEL_KEYS,
        "options": "table",
        "param": "str",
        "values": "list",
        "grid": "table",
        "repeats": "int",
        "name": "str",
    },
    "transfer": {
        **MODEL_KEYS,
        "options": "table",
        "modes": "list",
        "grid": "table",
        "repeats": "int",
        "name": "str",
    },
    "count": {**MODEL_KEYS, "input_size": "int", "bias": "bool"},
    "kernels": {**TRAINED_KEYS, "layer": "str", "norm": "str", "channels": "str", "max_units": "int"},
    "equivariance": {
        **TRAINED_KEYS,
        "layer": "str",
        "transform": "text-or-list",
        "shift": "str",
        "images": "int",
        "kernel_size": "int",
        "channels": "int",
        "padding": "str",
        "depth": "int",
        "per_layer": "bool",
    },
}
REQUIRED = {"sweep": ["model"], "transfer": ["model"], "count": ["model"], "kernels": ["model"]}
TOP_KEYS = {"title": "str", "name": "str", "text": "str", "quick": "table-of-tables", "sections": "sections"}
SECTION_KEYS = {
    "heading": "str",
    "text": "str",
    "quick": "table-of-tables",
    **dict.fromkeys(STEP_KEYS, "step"),
}
QUICK_KEYS = {"dataset": "str", "dataset_options": "table", "options": "table"}
TYPE_WORDS = {
    "str": "a string in quotes",
    "int": "an integer",
    "bool": "true or false",
    "list": "a list of values, e.g. [1, 2]",
    "text-or-list": "a string or a list of strings",
    "table": "a table of NAME = VALUE, e.g. { lr = 0.001 }",
    "table-of-tables": "a table",
    "sections": "a list of [[sections]] tables",
    "step": "a table",
}


class StudyFileError(UsageError):
    """A study file that cannot be run: the message names the file and the line or key, and the fix."""


@dataclass(frozen=True)
class Step:
    """One section's step: its ``kind`` (a key of ``STEP_KEYS``), its keys as written, and its quick override."""

    kind: str
    keys: dict
    quick: dict = field(default_factory=dict)

    def at(self, quick: bool) -> dict:
        """The step's keys at full scale, or with the section's ``quick`` table merged over them."""
        return merge(self.keys, self.quick) if quick else dict(self.keys)


@dataclass(frozen=True)
class Section:
    heading: str
    text: str
    step: Step
    where: str  # how errors name it: sections[2] ("heading")


@dataclass(frozen=True)
class StudyFile:
    """A checked study file. ``source`` is how errors name it: its path, or ``builtin:NAME``."""

    name: str
    title: str
    text: str
    quick: dict
    sections: list[Section]
    source: str
    toml: str  # the text read, as written (`study show`)

    def error(self, where: str, message: str) -> StudyFileError:
        return StudyFileError(f"{self.source}: {where}: {message}")


def merge(base: dict, over: dict) -> dict:
    """``over`` on ``base``: tables merged key by key (one level), everything else replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = {**out[k], **v} if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_study(text: str, source: str, name: str) -> StudyFile:
    """Read and check the TOML ``text`` of a study (``source`` names it in errors; ``name`` is the default name).

    Raises:
        StudyFileError: Not TOML (with the line), an unknown or missing key, a value of the wrong type, no
            sections, a section with no step or two, or two sections with the same heading.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyFileError(f"{source}: not valid TOML: {exc}; fix that line") from None
    _check_keys(doc, TOP_KEYS, source, "")
    for key in ("title", "sections"):
        if key not in doc:
            hint = 'title = "What this study asks"' if key == "title" else "[[sections]] tables"
            raise StudyFileError(f"{source}: '{key}' is missing; add {hint}")
    if not doc["sections"]:
        raise StudyFileError(f"{source}: 'sections' is empty; add at least one [[sections]] table")
    quick = doc.get("quick", {})
    _check_keys(quick, QUICK_KEYS, source, "quick")
    sections, seen = [], {}
    for i, raw in enumerate(doc["sections"], start=1):
        section = _section(raw, i, source)
        if section.heading in seen:
            raise StudyFileError(
                f"{source}: sections[{i}].heading: '{section.heading}' is also the heading of "
                f"sections[{seen[section.heading]}]; give each section its own question"
            )
        seen[section.heading] = i
        sections.append(section)
    study_name = str(doc.get("name") or name).strip()
    if not study_name:
        raise StudyFileError(f"{source}: 'name' is empty; give the study a name or leave 'name' out")
    return StudyFile(study_name, doc["title"], doc.get("text", ""), quick, sections, source, text)


def _section(raw, i: int, source: str) -> Section:
    where = f"sections[{i}]"
    if not isinstance(raw, dict):
        raise StudyFileError(f"{source}: {where}: must be a table; write it as [[sections]]")
    _check_keys(raw, SECTION_KEYS, source, where)
    if not str(raw.get("heading", "")).strip():
        raise StudyFileError(f'{source}: {where}: no heading; add heading = "the question this section asks"')
    steps = [k for k in STEP_KEYS if k in raw]
    if not steps:
        raise StudyFileError(
            f"{source}: {where}: no step; add one table of: {', '.join(f'[sections.{k}]' for k in STEP_KEYS)}"
        )
    if len(steps) > 1:
        raise StudyFileError(
            f"{source}: {where}: two steps ({' and '.join(steps)}); give each its own [[sections]] entry"
        )
    kind = steps[0]
    named = f'{where} ("{raw["heading"]}")'
    _check_keys(raw[kind], STEP_KEYS[kind], source, f"{where}.{kind}")
    _check_keys(raw.get("quick", {}), STEP_KEYS[kind], source, f"{where}.quick")
    for key in REQUIRED.get(kind, []):
        if key not in raw[kind]:
            raise StudyFileError(f"{source}: {where}.{kind}: '{key}' is missing; add {key} = \"...\"")
    return Section(
        raw["heading"].strip(),
        raw.get("text", "").strip(),
        Step(kind, raw[kind], raw.get("quick", {})),
        named,
    )


def _check_keys(table: dict, allowed: dict[str, str], source: str, where: str) -> None:
    """Unknown keys (with the closest known one) and values of the wrong type are refused."""
    if not isinstance(table, dict):
        raise StudyFileError(f"{source}: {where}: must be a table; write it as [{where}]")
    for key, value in table.items():
        at = f"{where}.{key}" if where else key
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
            fix = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(allowed)}"
            raise StudyFileError(f"{source}: {at}: unknown key; {fix}")
        kind = allowed[key]
        if not _is(kind, value):
            got = type(value).__name__
            raise StudyFileError(f"{source}: {at}: must be {TYPE_WORDS[kind]}, got {got} {value!r}")


def _is(kind: str, value) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list) and bool(value) and all(isinstance(v, SCALAR) for v in value)
    if kind == "text-or-list":
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    if kind == "table":
        return isinstance(value, dict) and all(_scalar_or_list(v) for v in value.values())
    if kind == "sections":
        return isinstance(value, list)
    return isinstance(value, dict)  # table-of-tables, step


def _scalar_or_list(value) -> bool:
    return isinstance(value, SCALAR) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, SCALAR) for v in value)
    )


def text(value) -> str:
    """A TOML value as the command line would give it (``1e-05``, ``true``, a list as ``32/64``)."""
    if isinstance(value, list):
        return "/".join(text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def read_study_file(path: Path) -> StudyFile:
    """Read and check the study file ``path``.

    Raises:
        StudyFileError: The file is missing, unreadable or not a valid study (see :func:`parse_study`).
    """
    path = Path(path).expanduser()
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyFileError(
            f"{path}: no such file; give a study file or a built-in name (see `dlbench study list`)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyFileError(f"{path}: cannot read it ({exc}); give a readable UTF-8 TOML file") from None
    return parse_study(raw, str(path), path.stem)
