"""Build the sdist and wheel as PyPI would receive them, and check them (`make test` runs this).

Both are built into a temporary folder (never ./dist) with ``python -m build --no-isolation`` (offline: the
build tools come from the test extras), then ``twine check --strict`` checks their metadata and that the README
renders on PyPI, and this script looks inside: the wheel holds the package with ``py.typed`` and the built-in
studies (package data) and no test files, its metadata has the project URLs, classifiers and license, and its
long description (the README) has no relative link, which PyPI could not resolve. Exits non-zero with one line per problem.

    python scripts/check_dist.py
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def build(out: Path) -> tuple[Path, Path]:
    """The sdist and the wheel (built from that sdist, so a file missing from it fails here)."""
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)], check=True
    )
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        sys.exit(f"expected one sdist and one wheel in {out}, found {[p.name for p in out.iterdir()]}")
    return sdists[0], wheels[0]


def wheel_problems(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(z.read(meta_name).decode())
    problems = []
    if "dlbench/py.typed" not in names:
        problems.append("the wheel has no dlbench/py.typed")
    studies = sorted(p.name for p in (ROOT / "src/dlbench/studies/builtin").glob("*.toml"))
    missing = [s for s in studies if f"dlbench/studies/builtin/{s}" not in names]
    if missing:
        problems.append(f"the wheel lacks the built-in studies {', '.join(missing)} (package data)")
    tests = [n for n in names if re.search(r"(^|/)(tests?/|test_[^/]*\.py$|conftest\.py$)", n)]
    if tests:
        problems.append(f"the wheel holds test files: {', '.join(tests[:5])}")
    outside = sorted({n.split("/")[0] for n in names} - {"dlbench", meta_name.split("/")[0]})
    if outside:
        problems.append(f"the wheel installs more than the package: {', '.join(outside)}")
    urls = meta.get_all("Project-URL") or []
    if not any(u.startswith("Repository, https://") for u in urls):
        problems.append("the metadata has no Repository URL")
    classifiers = meta.get_all("Classifier") or []
    for needed in ("Typing :: Typed", "Programming Language :: Python :: 3 :: Only"):
        if needed not in classifiers:
            problems.append(f"the metadata lacks the classifier {needed!r}")
    if meta.get("License-Expression") != "MIT":
        problems.append(f"License-Expression is {meta.get('License-Expression')!r}, not 'MIT'")
    if meta.get("Description-Content-Type") != "text/markdown":
        problems.append("the long description is not declared as Markdown")
    description = meta.get_payload()
    relative = [t for t in LINK.findall(description) if not t.startswith(("https://", "http://", "#"))]
    if relative:
        problems.append(f"the README has links PyPI cannot resolve: {', '.join(relative[:5])}")
    return problems


def sdist_problems(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    needed = (
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "src/dlbench/py.typed",
        "src/dlbench/cli/_app.py",
        "tests/conftest.py",
        "tests/test_packaging.py",
        "docs/data.md",
        "scripts/check_dist.py",
    )
    return [f"the sdist lacks {n}" for n in needed if n not in names]


def main() -> None:
    # setuptools leaves these in the tree even when the dists go elsewhere: remove them unless they were there.
    byproducts = [p for p in (ROOT / "build", ROOT / "src" / "dlbench.egg-info") if not p.exists()]
    try:
        with tempfile.TemporaryDirectory(prefix="dlbench-dist-") as tmp:
            sdist, wheel = build(Path(tmp))
            twine = [sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)]
            subprocess.run(twine, check=True)
            problems = wheel_problems(wheel) + sdist_problems(sdist)
    finally:
        for path in byproducts:
            shutil.rmtree(path, ignore_errors=True)
    for line in problems:
        print(f"check_dist: {line}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check_dist: {sdist.name} and {wheel.name} pass twine check --strict and hold what they should")


if __name__ == "__main__":
    main()
