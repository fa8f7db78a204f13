"""The shape of the code base: small modules and functions a reader can hold in mind (see docs/architecture.md).

The import rules between layers are import-linter contracts in pyproject.toml, checked by `make lint`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dlbench"
MAX_MODULE_LINES = 400
MAX_FUNCTION_BODY_LINES = 80
MODULES = sorted(SRC.rglob("*.py"))


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_modules_and_functions_stay_small(path: Path):
    text = path.read_text()
    lines = text.count("\n")
    assert lines <= MAX_MODULE_LINES, f"{path.name} has {lines} lines; split it by job"
    for fn in _functions(ast.parse(text)):
        body = fn.body
        if ast.get_docstring(fn) and len(body) > 1:  # the docstring is documentation, not body
            body = body[1:]
        length = fn.end_lineno - body[0].lineno + 1
        assert length <= MAX_FUNCTION_BODY_LINES, (
            f"{path.name}:{fn.lineno} {fn.name}() has a {length}-line body; split it"
        )
