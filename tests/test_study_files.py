"""`dlbench study`: a study file runs section by section through the cache, reruns train nothing, the report
follows the file's sections; every built-in study plans at both scales; bad files are one line each."""

from __future__ import annotations

import os
import re
import subprocess
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import pytest

TINY = """
title = "Tiny study"
text = "Two sweeps, a count table and a kernels figure on shapes."

[[sections]]
heading = "Which activation?"
text = "ReLU against tanh."
[sections.sweep]
model = "mlp"
dataset = "shapes"
param = "activation"
values = ["relu", "tanh"]
settings = { width = 16 }
dataset_options = { train_size = 300, test_size = 100 }
options = { epochs = 1, batch_size = 64 }

[[sections]]
heading = "Which learning rate?"
[sections.sweep]
model = "mlp"
dataset = "shapes"
grid = { lr = [0.1, 0.03] }
settings = { width = 16 }
dataset_options = { train_size = 300, test_size = 100 }
options = { epochs = 1, batch_size = 64 }

[[sections]]
heading = "How many parameters?"
[sections.count]
model = "mlp"
dataset = "shapes"
settings = { width = [16, 32] }

[[sections]]
heading = "What do the kernels look like?"
[sections.kernels]
model = "cnn"
dataset = "shapes"
settings = { width = 4, depth = 1 }
dataset_options = { train_size = 300, test_size = 100 }
options = { epochs = 1, batch_size = 64 }
"""


def starts(log: Path) -> list[str]:
    if not log.exists():
        return []
    return [line.split()[1] for line in log.read_text().splitlines() if line.split()[2] == "start"]


def test_study_runs_reruns_from_the_cache_and_reports_its_sections_in_order(cli, tmp_path, monkeypatch):
    study = tmp_path / "tiny.toml"
    study.write_text(TINY)
    log = tmp_path / "train.log"
    monkeypatch.setenv("DLBENCH_TRAIN_LOG", str(log))

    planned = cli("study", "run", study, "--plan", "--format", "json")
    assert planned.code == 0, planned
    assert not log.exists() and not Path(os.environ["DLBENCH_HOME"], "runs").exists()  # --plan trains nothing

    first = cli("study", "run", study)
    assert first.code == 0, first
    assert len(starts(log)) == 5  # 2 + 2 sweep trials and the kernels model
    assert "report --study tiny --out report.html" in first.out

    again = cli("study", "run", study)
    assert again.code == 0, again
    assert len(starts(log)) == 5  # nothing trained the second time

    from dlbench.cache import Store

    record = Store(Path(os.environ["DLBENCH_HOME"])).get_study_run("tiny")
    assert record["file"] == TINY and [s["kind"] for s in record["sections"]] == [
        "sweep",
        "sweep",
        "count",
        "kernels",
    ]
    assert record["sections"][1]["sweep"] == "tiny-2-lr-mlp-shapes"
    assert record["sections"][0]["step"]["values"] == ["relu", "tanh"]

    replanned = cli("study", "run", study, "--plan", "--format", "csv")
    assert replanned.out.count(",cached") == 5 and "to train" not in replanned.out

    out = tmp_path / "report" / "study.md"
    res = cli("report", "--study", "tiny", "--out", out)
    assert res.code == 0, res
    text = out.read_text()
    tops = re.findall(r"^## (.+)$", text, flags=re.M)
    assert tops == [
        "1. Which activation?",
        "2. Which learning rate?",
        "3. How many parameters?",
        "4. What do the kernels look like?",
        "Environment",
    ]
    assert text.index("ReLU against tanh.") < text.index("### Sweep tiny-1-activation-mlp-shapes")
    assert text.index("### Sweep tiny-2-lr-mlp-shapes") < text.index("| 32 | 99,722 |")
    assert "dlbench visualize-kernels --run" in text.split("## 4.")[1]
    assert len(list((out.parent / "study_files").glob("kernels-*.png"))) == 1

    # HTML, built in a fresh process: the study's report reads records only, no engine and no model
    html = tmp_path / "report" / "study.html"
    code = (
        "import sys; from pathlib import Path; from dlbench.cache import Store; "
        "from dlbench.report.write import write_report; "
        f"write_report(Store(Path({os.environ['DLBENCH_HOME']!r})), Path({str(html)!r}), study='tiny'); "
        "print(sorted(m for m in sys.modules if m.startswith(('dlbench.engine', 'dlbench.models', "
        "'dlbench.studies'))))"
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": src}
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "[]"
    page = html.read_text()
    assert (
        page.index("1. Which activation?")
        < page.index("2. Which learning rate?")
        < page.index("4. What do the")
    )
    assert page.count("<img") >= 7  # the sweeps' figures and the kernels figure, embedded


def test_report_study_refuses_an_unknown_study_and_other_filters(cli, tmp_path):
    res = cli("report", "--study", "nope", "--out", tmp_path / "r.md")
    assert res.code != 0 and "unknown study 'nope'" in res.err
    res = cli("report", "--study", "nope", "--sweep", "x", "--out", tmp_path / "r.md")
    assert res.code == 2 and "drop --sweep x" in res.err and not (tmp_path / "r.md").exists()


def _names() -> list[str]:
    from dlbench.studies.builtin import builtin_names

    return builtin_names()


@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
@pytest.mark.parametrize("name", _names())
def test_every_builtin_study_parses_and_plans_without_training(name, quick, monkeypatch):
    from dlbench.studies.builtin import load_builtin
    from dlbench.studies.plan import plan_study

    monkeypatch.setattr("dlbench.engine.train", lambda *a, **k: pytest.fail("planning trained"))
    study = load_builtin(name)
    plan = plan_study(study, quick=quick)
    configs = plan.configs()
    assert len(plan.sections) == len(study.sections) >= 4
    assert len(configs) >= 5
    assert all(len(c.key) >= 16 for _, _, c in configs)
    names = [ps.sweep.name for ps in plan.sections if ps.sweep]
    assert len(names) == len(set(names)) and all(n.startswith(name) for n in names)
    if quick:  # no real files here: shapes stands in, one epoch on a subset
        assert {c.dataset for _, _, c in configs} == {"shapes"}
        assert max(c.options.epochs for _, _, c in configs) <= 3
    else:
        assert {c.dataset for _, _, c in configs} <= {"cifar10", "fashion-mnist"}


def test_list_and_show_print_the_builtins_as_files(cli, tmp_path):
    listed = cli("study", "list", "--format", "csv")
    assert listed.code == 0
    names = _names()
    assert len(names) == 5 and all(n in listed.out for n in names)
    shown = cli("study", "show", names[0])
    assert tomllib.loads(shown.out)["title"]
    copy = tmp_path / "copy.toml"
    copy.write_text(shown.out)
    assert cli("study", "run", copy, "--plan").code == 0
    res = cli("study", "show", "activation-lr")
    assert res.code == 2 and "unknown built-in study 'activation-lr'" in res.err


SECTION = '[[sections]]\nheading = "Q"\n[sections.sweep]\nmodel = "mlp"\ndataset = "shapes"\nparam = "lr"\n'
BAD = {
    "unknown top-level key": ('title = "T"\ntitel = "x"\n' + SECTION, "titel: unknown key"),
    "unknown section key": (
        'title = "T"\n' + SECTION.replace('heading = "Q"\n', 'heading = "Q"\nquestion = "x"\n'),
        "sections[1].question: unknown key",
    ),
    "unknown step key": (
        'title = "T"\n' + SECTION + "valuse = [1]\n",
        "sections[1].sweep.valuse: unknown key",
    ),
    "two steps": (
        'title = "T"\n' + SECTION + '[sections.count]\nmodel = "mlp"\n',
        "sections[1]: two steps (sweep and count)",
    ),
    "no step": ('title = "T"\n[[sections]]\nheading = "Q"\n', "sections[1]: no step"),
    "wrong type": (
        'title = "T"\n' + SECTION + 'repeats = "two"\n',
        "sections[1].sweep.repeats: must be an integer",
    ),
    "unknown model": ('title = "T"\n' + SECTION.replace('"mlp"', '"mlq"'), "unknown model 'mlq'"),
    "unknown param": ('title = "T"\n' + SECTION.replace('"lr"', '"lrr"'), "unknown sweep parameter 'lrr'"),
    "invalid value": ('title = "T"\n' + SECTION + "values = [-1.0]\n", "lr"),
    "toml syntax": ('title = "T"\n' + SECTION + "values = 1e-3 1e-4\nrepeats = 1\n", "not valid TOML"),
    "empty sections": ('title = "T"\nsections = []\n', "'sections' is empty"),
    "no title": (SECTION, "'title' is missing"),
    "duplicate heading": ('title = "T"\n' + SECTION + SECTION, "also the heading of sections[1]"),
    "unknown option": (
        'title = "T"\n' + SECTION + "options = { lrate = 0.1 }\n",
        "unknown training option 'lrate'",
    ),
    "values without param": (
        'title = "T"\n' + SECTION.replace('param = "lr"\n', "") + "values = [1]\n",
        "'values' without 'param'",
    ),
    "unknown quick key": (
        'title = "T"\n' + SECTION + "[sections.quick]\nepochs = 1\n",
        "sections[1].quick.epochs",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_study_file_is_one_line_naming_the_file_and_key(case, cli, tmp_path):
    body, expected = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(body)
    res = cli("study", "run", path)
    assert res.code == 2, res
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, res.err
    assert str(path) in lines[0] and expected in lines[0], lines[0]
    assert not Path(os.environ["DLBENCH_HOME"]).exists()  # nothing written
    if case == "toml syntax":
        assert "line 8" in lines[0]


def test_executor_flags_are_checked_before_anything_runs(cli, tmp_path):
    res = cli("study", "run", "mlp-training-and-transfer", "--jobs", "2")
    assert res.code == 2 and "--executor local" in res.err
    res = cli("study", "run", "mlp-training-and-transfer", "--slurm-partition", "gpu")
    assert res.code == 2 and "--executor slurm" in res.err
    res = cli("study", "run", "mlp-training-and-transfer", "--fuse", "sometimes")
    assert res.code == 2 and "--fuse must be auto, off or a group size" in res.err
    assert not Path(os.environ["DLBENCH_HOME"]).exists()


def test_an_unknown_builtin_name_says_how_to_find_one(cli):
    res = cli("study", "run", "no-such-study", "--plan")
    assert res.code == 2 and "dlbench study list" in res.err and len(res.err.strip().splitlines()) == 1


QUICK = """
title = "Quick rules"
[quick]
dataset = "shapes"
dataset_options = { train_size = 600, test_size = 200 }
options = { epochs = 1, batch_size = 32, train_subset = 500 }

[[sections]]
heading = "Which batch size?"
[sections.sweep]
model = "mlp"
dataset = "fashion-mnist"
param = "batch_size"
values = [16, 64]
options = { epochs = 20, lr = 0.1 }
[sections.quick]
values = [8]
settings = { width = 8 }
options = { train_subset = 200 }

[[sections]]
heading = "How large?"
[sections.count]
model = "mlp"
dataset = "fashion-mnist"
"""


def test_the_quick_scale_merges_its_tables_and_stands_in_for_absent_files(tmp_path):
    from dlbench.studies.file import parse_study
    from dlbench.studies.plan import plan_study

    study = parse_study(QUICK, "quick.toml", "quick")
    full = plan_study(study, data_dir=tmp_path / "empty")
    assert [(c.dataset, c.options.epochs, c.options.batch_size) for _, _, c in full.configs()] == [
        ("fashion-mnist", 20, 16),
        ("fashion-mnist", 20, 64),
    ]
    quick = plan_study(study, quick=True, data_dir=tmp_path / "empty")
    (_, label, c), *rest = quick.configs()
    assert (
        not rest and label == "batch_size=8"
    )  # the section's values; [quick] batch_size is swept, so left out
    assert (c.dataset, c.dataset_options["train_size"], c.options.epochs, c.options.lr) == (
        "shapes",
        600,
        1,
        0.1,
    )
    assert c.options.train_subset == 200 and c.model_settings["width"] == 8  # the section's quick table wins
    assert quick.sections[0].sweep.name == "quick-quick-1-batch-size-mlp-shapes"
    assert quick.sections[1].count.title.startswith("mlp on fashion-mnist")  # counting needs no files


def test_the_quick_scale_keeps_real_files_when_present(tmp_path):
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / "fashion-mnist").is_dir():
        pytest.skip("no Fashion-MNIST files (set DLBENCH_TEST_DATA)")
    from dlbench.studies.file import parse_study
    from dlbench.studies.plan import plan_study

    quick = plan_study(parse_study(QUICK, "quick.toml", "quick"), quick=True, data_dir=SHARED_DATA)
    [(_, _, c)] = quick.configs()
    assert c.dataset == "fashion-mnist" and c.options.train_subset == 200 and c.dataset_options == {}
