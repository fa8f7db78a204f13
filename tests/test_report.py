"""`dlbench report`: Markdown and HTML reports from small real sweeps on `shapes`, checked file by file and
in a real headless browser."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dlbench.cli import main

TINY = [
    "--dataset",
    "shapes",
    "--dataset-opt",
    "train_size=800",
    "--dataset-opt",
    "test_size=200",
    "--epochs",
    "1",
]
EVIL = "<script>alert(1)</script>"
PNG = b"\x89PNG\r\n\x1a\n"


def run_cli(*args) -> tuple[int, str, str]:
    """`dlbench ARGS` in this process, returning (exit code, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """Two tiny sweeps (one named with a script tag), a kernel figure and an equivariance figure."""
    root = tmp_path_factory.mktemp("report")
    dirs = ["--cache-dir", root / "cache", "--data-dir", root / "data"]
    steps = [
        [
            "sweep",
            "lr",
            "0.2,0.02",
            "--model",
            "cnn",
            "--set",
            "channels=4/8",
            "--set",
            "head_width=16",
            *TINY,
        ],
        ["sweep", "activation", "relu,sigmoid", "--model", "mlp", "--set", "width=32", "--name", EVIL, *TINY],
        ["visualize-kernels", "--model", "cnn", "--untrained", "--dataset", "shapes"],
        ["equivariance", "--layer", "conv", "--padding", "circular", "--images", "16"],
    ]
    for args in steps:
        code, out, err = run_cli(*args, *dirs)
        assert code == 0, (args, out[-2000:], err[-2000:])
    return root


def report(cache: Path, out: Path, *extra) -> tuple[int, str, str]:
    return run_cli(
        "report", "--out", out, "--cache-dir", cache / "cache", "--data-dir", cache / "data", *extra
    )


def md_images(text: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


def html_images(text: str) -> list[str]:
    return re.findall(r'<img [^>]*src="([^"]*)"', text)


def test_markdown_has_every_section_and_every_linked_figure(cache, tmp_path):
    out = tmp_path / "study" / "report.md"
    code, stdout, err = report(cache, out)
    assert code == 0, err
    assert "wrote" in stdout and "2 sweeps" in stdout
    text = out.read_text()
    # one section per sweep, in name order ('<' sorts before 'l'), each with its tables and commands
    assert text.count("## Sweep ") == 2
    assert text.index("## Sweep \\<script\\>") < text.index("## Sweep lr-cnn-shapes")
    for heading in (
        "**Swept**",  # in a collapsed <details> block after the results and figures
        "**Held fixed**",
        "<details>",
        "### Results",
        "### Final accuracy against the swept value",
        "### Training curves",
        "### Confusion matrix of the best trial",
        "### Gradient norms by layer kind",
        "### Per-step training loss",
        "### Best against worst on test images",
        "### Reproduce",
    ):
        assert text.count(heading) == 2, heading
    assert text.count("★ best by validation accuracy") == 2
    assert "| lr | params | trainable | seconds_per_epoch |" in text
    assert "| head_width | setting | 16 | given |" in text  # held fixed, given on the command line
    assert "| epochs | option | 1 | given |" in text
    assert "dlbench sweep lr 0.2,0.02 --model cnn" in text
    # parameter counts: one table per model, with a reproducing count-params command
    assert "## Parameter counts" in text
    assert "dlbench count-params mlp --dataset shapes --set activation=relu,sigmoid --set width=32" in text
    assert "dlbench count-params cnn --dataset shapes --set channels=4/8 --set head_width=16" in text
    # recorded figures and the environment
    assert "## Kernel and equivariance figures" in text and "dlbench visualize-kernels" in text
    assert "dlbench equivariance --layer conv" in text
    assert "## Environment" in text and "| device_name | torch_version |" in text
    # every linked figure exists, is a PNG, and lives in report_files/ beside the report
    links = md_images(text)
    assert len(links) >= 2 * 3 + 2
    for link in links:
        assert link.startswith("report_files/") and ".." not in link
        assert (out.parent / link).read_bytes()[:8] == PNG
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.md", "report_files"]
    # every contents link names a heading's GitHub anchor (rendered text, lower case, punctuation dropped)
    anchors: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            base = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().replace("\\", "").lower()).replace(
                " ", "-"
            )
            n = sum(1 for a in anchors if re.fullmatch(re.escape(base) + r"(-\d+)?", a))
            anchors.append(base if n == 0 else f"{base}-{n}")
    toc = re.findall(r"\]\(#([^)]+)\)", text)
    assert len(toc) >= 2 * 8 and set(toc) <= set(anchors), set(toc) - set(anchors)
    assert text.index("### Results") < text.index("<details>") < text.index("### Reproduce")
    # the best-vs-worst comparison: an image strip and its table, or an honest note
    for section in text.split("### Best against worst on test images")[1:]:
        section = section.split("###")[0]
        assert "| index | true | best | worst |" in section or "No " in section


def test_html_is_one_self_contained_escaped_file(cache, tmp_path):
    out = tmp_path / "report.html"
    code, _, err = report(cache, out)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no figures folder
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert EVIL not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script" not in text.lower()
    srcs = html_images(text)
    md = tmp_path / "md" / "report.md"
    report(cache, md)
    assert len(srcs) == len(md_images(md.read_text()))
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG
    assert text.count("<table>") >= 2 * 3 + 2
    assert text.count('class="best"') == 2


def test_same_cache_gives_the_same_bytes(cache, tmp_path):
    for name in ("report.md", "report.html"):
        a, b = tmp_path / "a" / name, tmp_path / "b" / name
        assert report(cache, a)[0] == 0 and report(cache, b)[0] == 0
        assert a.read_bytes() == b.read_bytes(), name
    for png in (tmp_path / "a" / "report_files").iterdir():
        assert png.read_bytes() == (tmp_path / "b" / "report_files" / png.name).read_bytes(), png.name


def test_filters(cache, tmp_path):
    out = tmp_path / "r.md"
    assert report(cache, out, "--sweep", "lr-cnn-shapes")[0] == 0
    text = out.read_text()
    assert "## Sweep lr-cnn-shapes" in text and "script" not in text
    assert "kernels" in text and "equivariance: " not in text  # figures of the selected sweep's model only
    assert report(cache, out, "--model", "mlp")[0] == 0
    text = out.read_text()
    assert text.count("## Sweep ") == 1 and "lr-cnn-shapes" not in text and "### cnn on shapes" not in text
    assert report(cache, out, "--since", "2000-01-01", "--dataset", "shapes")[0] == 0
    assert out.read_text().count("## Sweep ") == 2
    code, _, err = report(cache, out, "--since", "2999-01-01")
    assert code == 2 and "nothing in the cache" in err and "--since 2999-01-01" in err
    code, _, err = report(cache, out, "--since", "yesterday")
    assert code == 2 and "ISO date" in err
    code, _, err = report(cache, out, "--sweep", "lr-cnn-shape")
    assert code == 2 and "did you mean 'lr-cnn-shapes'" in err
    code, _, err = report(cache, out, "--dataset", "cifar10")
    assert code == 2 and "nothing in the cache" in err


def test_empty_cache_and_unwritable_out(cache, tmp_path):
    code, out, err = run_cli("report", "--out", tmp_path / "r.md", "--cache-dir", tmp_path / "empty")
    assert code == 2 and err.count("\n") == 1
    assert "no results in the cache at" in err and "dlbench sweep" in err
    assert not (tmp_path / "r.md").exists() and not (tmp_path / "empty").exists()
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    code, _, err = report(cache, blocker / "report.md")
    assert code == 2 and err.count("\n") == 1 and "cannot write the report" in err
    code, _, err = report(cache, tmp_path / "r.md", "--format", "html")
    assert code == 2 and "does not match" in err


def test_missing_test_images_are_a_note(cache, tmp_path, monkeypatch):
    from dlbench.cache import Store
    from dlbench.data._registry import DatasetSpec
    from dlbench.errors import DatasetError
    from dlbench.report.build import Selection, build_report
    from dlbench.report.markdown import render_markdown

    def fail(self, *a, **k):
        raise DatasetError("shapes files are missing; put them in the data folder")

    monkeypatch.setattr(DatasetSpec, "load", fail)
    rep = build_report(Store(cache / "cache"), Selection(sweeps=["lr-cnn-shapes"]), cache / "data")
    text = render_markdown(rep, "x_files")
    if "| index | true | best | worst |" in text:  # there were images to show
        assert (
            "The test images are not shown: the dataset could not be loaded (shapes files are missing" in text
        )


def test_many_trials_are_capped_and_best_and_worst_always_drawn():
    from dlbench.report.plots import MAX_CURVES
    from dlbench.report.plots import pick_curves as _pick

    keys = [f"k{i:03d}" for i in range(200)]
    picked = _pick(keys, "k150", "k003")
    assert len(picked) == MAX_CURVES and {"k150", "k003"} <= set(picked)
    assert picked == sorted(picked)
    assert _pick(keys[:5], "k001", None) == keys[:5]


def test_importing_the_command_does_not_import_torch():
    code = "import sys, dlbench.cli.report, dlbench.cli._app; print('torch' in sys.modules)"
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")},
    )
    assert res.stdout.strip() == "False"


def test_the_report_builds_no_model(cache, tmp_path):
    """The report reads recorded results only: neither the engine nor the models are imported to build it."""
    code = (
        "import sys; from pathlib import Path; from dlbench.cache import Store; "
        "from dlbench.report.write import write_report; "
        f"write_report(Store(Path({str(cache / 'cache')!r})), Path({str(tmp_path / 'r.md')!r}), "
        f"data_dir=Path({str(cache / 'data')!r})); "
        "print(sorted(m for m in sys.modules if m.startswith(('dlbench.engine', 'dlbench.models', "
        "'dlbench.analysis.params'))))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")},
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "[]"
    text = (tmp_path / "r.md").read_text()
    assert "## Parameter counts" in text and "| params | trainable | macs |" in text


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe:
        return exe
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "chromium"],
            capture_output=True,
            timeout=600,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        exe = shutil.which("chromium")
        if exe:
            return exe
        pytest.skip("chromium is not installed and `apt-get install -y chromium` failed")
    pytest.skip("chromium is not installed and cannot be installed here (not root or no apt-get)")


def test_html_report_renders_in_a_headless_browser(cache, tmp_path):
    exe = _chromium()
    out = tmp_path / "report.html"
    assert report(cache, out)[0] == 0
    text = out.read_text()
    n_images = len(html_images(text))
    # a probe copy: after load, count tables, images and broken images (naturalWidth 0) into data attributes
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load',function(){var i=[].slice.call(document.images);"
        "document.body.dataset.images=i.length;document.body.dataset.tables="
        "document.querySelectorAll('table').length;document.body.dataset.broken="
        "i.filter(function(x){return !x.complete||x.naturalWidth===0}).length;"
        # tables that scroll sideways in their container, and the page's own width, at 1920 px
        "document.body.dataset.clipped=[].slice.call(document.querySelectorAll('table')).filter(function(t){"
        "var p=t.parentElement;return t.scrollWidth>t.clientWidth||p.scrollWidth>p.clientWidth||"
        "t.getBoundingClientRect().right>document.documentElement.clientWidth}).length;"
        "document.body.dataset.page=document.documentElement.scrollWidth;"
        "document.body.dataset.view=document.documentElement.clientWidth;});</script>"
    )
    probe.write_text(text.replace("</body>", script + "</body>"))
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    for width in (1920, 1366):  # a desktop and a laptop screen
        dom = subprocess.run(
            [
                exe,
                *flags,
                f"--window-size={width},900",
                "--virtual-time-budget=10000",
                "--dump-dom",
                probe.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert dom.returncode == 0, dom.stderr[-2000:]
        body = re.search(r"<body[^>]*>", dom.stdout).group(0)
        assert f'data-images="{n_images}"' in body and 'data-broken="0"' in body, body
        assert int(re.search(r'data-tables="(\d+)"', body).group(1)) == text.count("<table>")
        assert 'data-clipped="0"' in body, body  # no table scrolls: every column fits the page
        page, view = (int(re.search(rf'data-{k}="(\d+)"', body).group(1)) for k in ("page", "view"))
        assert width - 40 < view and page <= view, body
    shot = tmp_path / "shot.png"
    res = subprocess.run(
        [exe, *flags, f"--screenshot={shot}", "--window-size=1280,4000", out.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert (
        shot.read_bytes()[:8] == PNG and shot.stat().st_size > 50_000
    )  # a page with figures, not a blank one
    if os.environ.get("DLBENCH_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["DLBENCH_KEEP_SCREENSHOT"])


def test_parameter_counts_come_from_records_and_count_tables():
    """params, trainable and macs as recorded in the runs rows ("-" where absent); count-params tables after."""
    from dlbench.report.blocks import Command, Heading, Report, Table
    from dlbench.report.markdown import render_markdown
    from dlbench.report.sections.params import params_section
    from dlbench.resolve import resolve_config
    from dlbench.sweep.study import Axis, Study, StudyTrial

    configs = [
        resolve_config("mlp", "shapes", {"width": w}, {"train_size": "100"}, {"epochs": "1"})
        for w in ("8", "16")
    ]
    study = Study(
        "w",
        "mlp",
        "shapes",
        [Axis("width", "setting", ["8", "16"])],
        [StudyTrial(c.key, {"width": w}) for c, w in zip(configs, ("8", "16"), strict=True)],
    )
    runs = {
        configs[0].key: {
            "config": configs[0].canonical_json(),
            "params": 123,
            "trainable": 100,
            "macs": 4567,
        },
        configs[1].key: {"config": configs[1].canonical_json(), "params": 456, "trainable": 456},
    }
    counts = [
        {
            "title": "mlp widths on cifar10",
            "command": "dlbench count-params mlp --dataset cifar10 --set 'width=8,16'",
            "columns": ["width", "params"],
            "rows": [{"width": 8, "params": 24_714}, {"width": 16, "params": 49_610}],
            "created": "2026-01-01T00:00:00",
        }
    ]
    blocks = params_section([study], runs, counts)
    [table, recorded] = [b for b in blocks if isinstance(b, Table)]
    assert table.columns == ["width", "params", "trainable", "macs"]
    assert table.rows == [
        {"width": "8", "params": 123, "trainable": 100, "macs": 4567},
        {"width": "16", "params": 456, "trainable": 456, "macs": None},
    ]
    assert recorded.rows == counts[0]["rows"]
    commands = [b.text for b in blocks if isinstance(b, Command)]
    assert commands == ["dlbench count-params mlp --dataset shapes --set width=8,16", counts[0]["command"]]
    assert [b.text for b in blocks if isinstance(b, Heading)][-1] == "mlp widths on cifar10"
    text = render_markdown(Report("t", "h", blocks), "x")
    assert "| 16 | 456 | 456 | - |" in text and "| 8 | 123 | 100 | 4,567 |" in text
    assert "A - under macs" not in text  # the recorded table has no macs column
    counts[0]["columns"] = ["params", "trainable", "macs"]
    counts[0]["rows"] = [{"params": 24_371_444, "trainable": 24_371_444, "macs": None}]
    text = render_markdown(Report("t", "h", params_section([study], runs, counts)), "x")
    assert "A - under macs: the forward pass fails at this input" in text
    assert text.index("A - under macs") < text.index(counts[0]["command"])  # "the command below"


def test_out_dash_is_standard_output(cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, err = report(cache, "-")
    assert code == 0, err
    assert stdout.startswith("# ") and "## Sweep lr-cnn-shapes" in stdout
    assert md_images(stdout) == []  # no folder beside stdout to link figures from: each is named instead
    assert "left out on standard output" in stdout
    assert err.startswith("note: ") and "figures left out" in err and err.count("\n") == 1
    code, html, err = report(cache, "-", "--format", "html")
    assert code == 0 and err == ""
    assert html.startswith("<!DOCTYPE html>") and html_images(html)  # HTML embeds them as always
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere: no `-` file, no `-_files/`


@pytest.mark.skipif(os.geteuid() != 0, reason="only root could replace /dev/null")
def test_out_never_replaces_what_is_not_a_regular_file(cache, tmp_path):
    import stat

    link = tmp_path / "null.md"
    link.symlink_to("/dev/null")
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    target_dir = tmp_path / "elsewhere"
    target_dir.mkdir()
    (tmp_path / "r_files").symlink_to(target_dir)  # Markdown's figures folder, redirected
    for out, needle in (
        ("/dev/null", "not a regular file"),
        ("/dev/stdout", "a symlink"),
        (link, "a symlink"),
        (fifo, "not a regular file"),
        (tmp_path / "r.md", "r_files: it is a symlink"),
    ):
        code, stdout, err = report(cache, out)
        assert code == 2 and stdout == "" and err.count("\n") == 1, (out, err)
        assert err.startswith("error: ") and needle in err, (out, err)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert link.is_symlink() and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert list(target_dir.iterdir()) == [] and not (tmp_path / "r.md").exists()


def test_out_with_an_unknown_extension_is_refused(cache, tmp_path):
    for name in ("r.pdf", "report", "r.txt"):
        code, _, err = report(cache, tmp_path / name)
        assert code == 2 and err.count("\n") == 1, err
        assert ".md, .markdown, .html, .htm" in err and "- for standard output" in err
    assert list(tmp_path.iterdir()) == []


def test_the_figures_folder_keeps_the_report_s_own_name():
    from dlbench.report.write import figures_dir_for

    assert figures_dir_for(Path("/x/Report.md")) == Path("/x/Report_files")
    long = figures_dir_for(Path("/x/" + "é" * 126 + ".md"))  # 252 bytes of stem: too long with _files
    assert len(long.name.encode()) <= 255 and long.name.endswith("_files")


def test_trials_whose_slurm_job_failed_are_rows_of_the_report(tmp_path):
    from dlbench.cache import Store

    dirs = ["--cache-dir", tmp_path / "cache", "--data-dir", tmp_path / "data"]
    args = ["sweep", "lr", "0.1,0.02", "--model", "mlp", "--set", "width=16", *TINY, "--no-figures"]
    assert run_cli(*args, *dirs)[0] == 0
    store = Store(tmp_path / "cache")
    (study,) = store.sweeps()
    lost = study["trials"][1]["key"]
    config = store.get(lost)["config"]
    store.remove(lost)  # as if its job had been cancelled before storing it
    why = (
        "its job was cancelled (scancel, or an administrator); job 17, log /x/17_0_log.err: *** CANCELLED ***"
    )
    store.save_jobs(
        study["name"],
        {lost: {"job_id": "17", "log_dir": "/x", "config": config, "failure": ["cancelled", why]}},
    )
    code, _, err = run_cli("report", "--out", tmp_path / "r.md", *dirs)
    assert code == 0, err
    text = (tmp_path / "r.md").read_text()
    results = text.split("### Results")[1].split("###")[0]
    assert "| 0.02 | - | - |" in results and "| cancelled |" in results and "| **0.1** ★ |" in results
    assert "Trial lr=0.02: cancelled (its job was cancelled" in text and "17_0_log.err" in text
    assert "2 trials of mlp" in text


def test_figures_drawn_in_worker_processes_are_the_serial_bytes(cache, tmp_path, monkeypatch):
    """Without the figures `sweep` kept, the report draws them: forked workers and serial drawing (forced by
    DLBENCH_REPORT_WORKERS) give the same report and figure files, the very figures `sweep` drew."""
    from dlbench.report import workers

    copy = tmp_path / "copy"
    shutil.copytree(cache, copy)
    kept = {p.parent.name + "/" + p.name: p.read_bytes() for p in (copy / "cache" / "sweeps").glob("*/*.png")}
    assert len(kept) >= 2 * 4
    for folder in (copy / "cache" / "sweeps").iterdir():
        if folder.is_dir():
            shutil.rmtree(folder)
    pools = []
    real_pool = workers.ProcessPoolExecutor
    monkeypatch.setattr(workers, "ProcessPoolExecutor", lambda *a, **k: pools.append(a) or real_pool(*a, **k))
    outs = {}
    for n in ("1", "2"):
        monkeypatch.setenv(workers.WORKERS_ENV, n)
        outs[n] = tmp_path / n / "report.md"
        assert report(copy, outs[n])[0] == 0
    if "fork" in __import__("multiprocessing").get_all_start_methods():
        assert pools == [(2,)]  # the second report only: two sweeps to draw, two workers
    assert outs["1"].read_bytes() == outs["2"].read_bytes()
    serial = sorted((tmp_path / "1" / "report_files").iterdir())
    assert [p.name for p in serial] == sorted(p.name for p in (tmp_path / "2" / "report_files").iterdir())
    for png in serial:
        assert png.read_bytes() == (tmp_path / "2" / "report_files" / png.name).read_bytes(), png.name
    drawn = {p.read_bytes() for p in serial}
    assert set(kept.values()) <= drawn  # the report draws what `sweep` drew


def test_report_workers_come_from_the_environment(monkeypatch, cache, tmp_path):
    from dlbench.report.workers import WORKERS_ENV, report_workers

    monkeypatch.setenv(WORKERS_ENV, "3")
    fork = "fork" in __import__("multiprocessing").get_all_start_methods()
    assert report_workers(5) == (3 if fork else 1)
    assert report_workers(2) == (2 if fork else 1)  # never more workers than studies to draw
    assert report_workers(1) == 1  # one study: no pool
    monkeypatch.setenv(WORKERS_ENV, "1")
    assert report_workers(5) == 1
    monkeypatch.setenv(WORKERS_ENV, "two")
    code, out, err = report(cache, tmp_path / "r.md")
    assert code != 0 and "DLBENCH_REPORT_WORKERS='two'" in err and "Traceback" not in err
    assert not (tmp_path / "r.md").exists()
