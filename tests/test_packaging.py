"""PyPI-ready metadata: the README's links work on PyPI and name files of this tree, the package is typed, and
scripts/check_dist.py (run by `make test` on the real sdist and wheel) finds what it must find."""

from __future__ import annotations

import importlib.util
import re
import sys
import zipfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _check_dist():
    spec = importlib.util.spec_from_file_location("check_dist", ROOT / "scripts" / "check_dist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_links_are_absolute_and_name_files_of_this_tree():
    """PyPI shows the README without the repository beside it: a relative link would lead nowhere there."""
    blob = PROJECT["urls"]["Repository"] + "/blob/main/"
    links = LINK.findall((ROOT / "README.md").read_text())
    assert len(links) > 10
    for link in links:
        if link.startswith("#"):
            continue
        assert link.startswith(("https://", "http://")), (
            f"README.md: relative link {link}; write {blob}{link}"
        )
        if link.startswith(blob):
            path = link[len(blob) :].split("#")[0]
            assert (ROOT / path).is_file(), f"README.md links to {path}, which is not in the repository"


def test_the_metadata_a_pypi_page_shows():
    assert PROJECT["readme"] == "README.md" and PROJECT["license"] == "MIT"
    assert {"Homepage", "Documentation", "Repository", "Issues", "Changelog"} <= set(PROJECT["urls"])
    for url in PROJECT["urls"].values():
        blob = PROJECT["urls"]["Repository"] + "/blob/main/"
        if url.startswith(blob):
            assert (ROOT / url[len(blob) :]).is_file(), url
    assert "Typing :: Typed" in PROJECT["classifiers"] and len(PROJECT["keywords"]) >= 5
    supported = {c.rsplit(" ", 1)[-1] for c in PROJECT["classifiers"] if re.fullmatch(r".*:: 3\.\d+", c)}
    assert min(supported, key=lambda v: int(v.split(".")[1])) == PROJECT["requires-python"].lstrip(">=")
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")]  # the SPDX expression rules
    assert (ROOT / "src" / "dlbench" / "py.typed").is_file()
    assert {"build", "twine", "setuptools"} <= {
        re.split(r"[<>=\[ ]", r)[0] for r in PROJECT["optional-dependencies"]["test"]
    }


def _wheel(tmp_path: Path, files: dict[str, str], description: str) -> Path:
    meta = (
        "Metadata-Version: 2.4\nName: dlbench\nVersion: 0.1.0\nLicense-Expression: MIT\n"
        "Project-URL: Repository, https://github.com/dlbench/dlbench\n"
        "Classifier: Typing :: Typed\nClassifier: Programming Language :: Python :: 3 :: Only\n"
        f"Description-Content-Type: text/markdown\n\n{description}"
    )
    path = tmp_path / "dlbench-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in {**files, "dlbench-0.1.0.dist-info/METADATA": meta}.items():
            z.writestr(name, text)
    return path


def test_the_dist_check_finds_a_missing_py_typed_test_files_and_relative_links(tmp_path):
    check = _check_dist()
    studies = {
        f"dlbench/studies/builtin/{p.name}": "" for p in (ROOT / "src/dlbench/studies/builtin").glob("*.toml")
    }
    assert len(studies) == 5
    files = {"dlbench/__init__.py": "", "dlbench/py.typed": "", **studies}
    good = _wheel(tmp_path, files, "[docs](https://x.org/a.md)")
    assert check.wheel_problems(good) == []
    (tmp_path / "bad").mkdir()
    bad = _wheel(
        tmp_path / "bad",
        {"dlbench/__init__.py": "", "tests/test_x.py": "", "dlbench/conftest.py": ""},
        "[docs](docs/train.md) and [top](#install)",
    )
    problems = check.wheel_problems(bad)
    assert any("py.typed" in p for p in problems)
    assert any("tests/test_x.py" in p and "dlbench/conftest.py" in p for p in problems)
    assert any("installs more than the package: tests" in p for p in problems)
    assert any("docs/train.md" in p and "#install" not in p for p in problems)
    assert any("lacks the built-in studies" in p and "mlp-training-and-transfer.toml" in p for p in problems)
