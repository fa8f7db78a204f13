"""The built-in studies: one TOML file each in ``dlbench/studies/builtin/`` (package data, in the wheel).

Each reproduces a classic small-vision-model assignment end to end on its real dataset, with a ``--quick``
scale that finishes on a laptop CPU in minutes. `dlbench study show NAME` prints the file to copy and edit.
"""

from __future__ import annotations

from importlib import resources

from dlbench.errors import UnknownNameError
from dlbench.studies.file import StudyFile, parse_study

FOLDER = "builtin"


def _files() -> dict[str, object]:
    folder = resources.files("dlbench.studies").joinpath(FOLDER)
    return {p.name[: -len(".toml")]: p for p in folder.iterdir() if p.name.endswith(".toml")}


def builtin_names() -> list[str]:
    """The built-in studies' names, sorted."""
    return sorted(_files())


def builtin_text(name: str) -> str:
    """The TOML text of built-in study ``name``.

    Raises:
        UnknownNameError: No built-in study of that name (with the closest names).
    """
    files = _files()
    if name not in files:
        raise UnknownNameError(
            "built-in study", name, list(files), hint="see `dlbench study list`, or give a .toml file"
        )
    return files[name].read_text(encoding="utf-8")


def load_builtin(name: str) -> StudyFile:
    """Built-in study ``name``, read and checked like any study file."""
    return parse_study(builtin_text(name), f"builtin:{name}", name)
