"""A catalogue of wrong invocations: each is one `error:` line on stderr, a non-zero exit, no traceback, and
leaves the cache (and the working folder) exactly as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch

TINY = [
    "--dataset",
    "shapes",
    "--dataset-opt",
    "train_size=300",
    "--dataset-opt",
    "test_size=60",
    "--epochs",
    "1",
]
MLP = ["--model", "mlp", "--set", "width=8"]
SWEEP = ["--model", "mlp", *TINY]
EQ = [
    "--dataset",
    "shapes",
    "--dataset-opt",
    "train_size=60",
    "--dataset-opt",
    "test_size=60",
    "--images",
    "8",
]

# A device this machine lacks (only where it lacks it).
NO_SUCH_DEVICE = [("train-device-cuda-99", ["train", *MLP, *TINY, "--device", "cuda:99"], "--device cuda:99")]
if not torch.cuda.is_available():
    NO_SUCH_DEVICE.append(("train-device-cuda", ["train", *MLP, *TINY, "--device", "cuda"], "torch sees"))
if not torch.backends.mps.is_available():
    NO_SUCH_DEVICE.append(("train-device-mps", ["train", *MLP, *TINY, "--device", "mps"], "no apple gpu"))

# (id, argv, a phrase the one error line must contain). Placeholders: {file} an existing regular file,
# {key} the key of the cached run, {cache} the cache folder, {sweep} the name of the cached sweep (whose width
# is 8: a sweep of that name with another width is another study).
CASES = [
    # -- models / datasets
    ("models-bad-format", ["models", "--format", "xml"], "'xml' is not one of"),
    ("models-unknown-flag", ["models", "--colour"], "no such option"),
    ("datasets-bad-format", ["datasets", "--format", "yaml"], "'yaml' is not one of"),
    ("unknown-command", ["trian"], "no such command"),
    # -- count-params
    ("count-unknown-model", ["count-params", "mlpp"], "did you mean 'mlp'"),
    ("count-missing-model", ["count-params"], "missing argument"),
    ("count-bad-int", ["count-params", "mlp", "--set", "width=abc"], "must be an integer"),
    ("count-malformed-set", ["count-params", "mlp", "--set", "width"], "malformed setting"),
    ("count-unknown-setting", ["count-params", "mlp", "--set", "colour=red"], "unknown setting"),
    ("count-patch-not-divide", ["count-params", "mlpmixer", "--set", "patch_size=5"], "does not divide"),
    ("count-unknown-dataset", ["count-params", "mlp", "--dataset", "shapez"], "did you mean 'shapes'"),
    ("count-zero-width", ["count-params", "mlp", "--set", "width=0"], "width"),
    ("count-empty-list", ["count-params", "cnn", "--set", "channels=8//16"], "is a list"),
    ("count-input-size-zero", ["count-params", "cnn", "--input-size", "0"], "between 1 and 4096"),
    ("count-input-size-negative", ["count-params", "cnn", "--input-size", "-3"], "between 1 and 4096"),
    ("count-input-size-huge", ["count-params", "cnn", "--input-size", "100000"], "between 1 and 4096"),
    ("count-input-size-text", ["count-params", "cnn", "--input-size", "big"], "--input-size"),
    # -- solve-depth
    ("solve-no-target", ["solve-depth", "mlp"], "target"),
    ("solve-negative-target", ["solve-depth", "mlp", "--target", "-5"], "target"),
    ("solve-unknown-setting", ["solve-depth", "mlp", "--solve", "colour", "--target", "1000"], "colour"),
    ("solve-unknown-target-model", ["solve-depth", "mlp", "--target-model", "resnett"], "did you mean"),
    # -- train
    ("train-unknown-model", ["train", "--model", "mlpp", *TINY], "did you mean 'mlp'"),
    ("train-missing-model", ["train", *TINY], "missing option"),
    ("train-negative-lr", ["train", *MLP, *TINY, "--lr", "-0.1"], "lr must be positive"),
    ("train-zero-batch", ["train", *MLP, *TINY, "--batch-size", "0"], "batch-size must be at least 1"),
    (
        "train-zero-epochs",
        ["train", *MLP, "--dataset", "shapes", "--epochs", "0"],
        "epochs must be at least 1",
    ),
    ("train-unknown-optimizer", ["train", *MLP, *TINY, "--optimizer", "sgdd"], "optimizer must be one of"),
    ("train-lr-not-number", ["train", *MLP, *TINY, "--lr", "fast"], "'--lr'"),
    ("train-list-in-train", ["train", "--model", "mlp", "--set", "width=16,32", *TINY], "takes one value"),
    ("train-empty-value", ["train", "--model", "mlp", "--set", "width=", *TINY], "no value after '='"),
    ("train-unknown-dataset-opt", ["train", *MLP, *TINY, "--dataset-opt", "bogus=1"], "unknown"),
    (
        "train-negative-size",
        ["train", *MLP, "--dataset", "shapes", "--dataset-opt", "train_size=-5"],
        "train_size",
    ),
    ("train-bad-device", ["train", *MLP, *TINY, "--device", "cuda:x"], "device must be"),
    ("train-val-split", ["train", *MLP, *TINY, "--val-split", "1.5"], "val-split must be in"),
    # numbers that are not finite or not in range are refused before anything is written
    ("train-lr-inf", ["train", *MLP, *TINY, "--lr", "inf"], "lr must be a finite number"),
    ("train-lr-nan", ["train", *MLP, *TINY, "--lr", "nan"], "lr must be a finite number"),
    ("train-momentum-inf", ["train", *MLP, *TINY, "--momentum", "inf"], "momentum must be a finite"),
    ("train-warmup-inf", ["train", *MLP, *TINY, "--warmup-epochs", "inf"], "warmup-epochs must be a finite"),
    ("train-wd-inf", ["train", *MLP, *TINY, "--weight-decay", "-inf"], "weight-decay must be a finite"),
    ("train-seed-huge", ["train", *MLP, *TINY, "--seed", "100000000000"], "seed must be between"),
    ("train-seed-float", ["train", *MLP, *TINY, "--seed", "1e20"], "--seed"),
    ("train-input-size-huge", ["train", *MLP, *TINY, "--input-size", "100000"], "input-size must be between"),
    ("train-set-inf", ["train", "--model", "mlp", "--set", "dropout=inf", *TINY], "finite number"),
    ("train-val-split-empty", ["train", *MLP, *TINY, "--val-split", "0.9999"], "no training image"),
    (
        "train-subset-after-empty-split",
        ["train", *MLP, *TINY, "--val-split", "0.999", "--train-subset", "5"],
        "no training image",
    ),
    ("train-too-big", ["train", "--model", "mlp", "--set", "width=100000000", *TINY], "parameters"),
    *NO_SUCH_DEVICE,
    ("train-weights-folder", ["train", *MLP, *TINY, "--weights", "{cache}"], "is a folder"),
    ("train-weights-empty", ["train", *MLP, *TINY, "--weights", ""], "--weights is empty"),
    ("train-from-run-empty", ["train", *MLP, *TINY, "--from-run", ""], "--from-run is empty"),
    ("count-set-float-int", ["count-params", "mlp", "--set", "width=1e20"], "out of range"),
    (
        "train-patch-not-divide",
        ["train", "--model", "mlpmixer", "--set", "patch_size=5", *TINY],
        "does not divide",
    ),
    ("train-set-twice", ["train", *MLP, "--set", "width=4", *TINY], "given twice"),
    (
        "train-cache-under-file",
        ["train", *MLP, *TINY, "--cache-dir", "{file}/sub"],
        "is a file",
    ),
    # -- runs
    ("runs-show-unknown-key", ["runs", "show", "deadbeef"], "no cached run with key deadbeef"),
    ("runs-show-not-hex", ["runs", "show", "../../etc"], "is not a run key"),
    ("runs-rm-unknown-key", ["runs", "rm", "{key}", "deadbeef"], "no cached run with key deadbeef"),
    ("runs-bad-format", ["runs", "--format", "nope"], "'nope' is not one of"),
    ("runs-bad-status", ["runs", "--status", "okk"], "did you mean 'ok'"),
    ("runs-show-missing-key", ["runs", "show"], "missing argument"),
    # -- sweep
    ("sweep-empty-values", ["sweep", "lr", "", *SWEEP], "empty value"),
    ("sweep-jobs-inline", ["sweep", "lr", "0.1", *SWEEP, "--jobs", "2"], "--jobs is for --executor local"),
    ("sweep-jobs-zero", ["sweep", "lr", "0.1", *SWEEP, "--executor", "local", "--jobs", "0"], "at least 1"),
    ("sweep-bad-executor", ["sweep", "lr", "0.1", *SWEEP, "--executor", "slurmm"], "'slurmm' is not one of"),
    ("sweep-double-comma", ["sweep", "lr", "0.1,,0.2", *SWEEP], "empty value"),
    ("sweep-unknown-param", ["sweep", "lrr", "0.1", *SWEEP], "did you mean 'lr'"),
    ("sweep-zero-batch", ["sweep", "batch-size", "0,16", *SWEEP], "batch-size must be at least 1"),
    ("sweep-negative-lr", ["sweep", "lr", "0.1,-1", *SWEEP], "lr must be positive"),
    ("sweep-patch", ["sweep", "patch-size", "5,4", "--model", "mlpmixer", *TINY], "does not divide"),
    ("sweep-zero-repeats", ["sweep", "lr", "0.1", *SWEEP, "--repeats", "0"], "--repeats must be at least 1"),
    ("sweep-values-without-param", ["sweep", "--grid", "width=8", *SWEEP, "--repeats", "-1"], "repeats"),
    ("sweep-swept-and-fixed", ["sweep", "lr", "0.1", "--lr", "0.2", *SWEEP], "both swept and fixed"),
    ("sweep-malformed-grid", ["sweep", "--grid", "width", *SWEEP], "malformed setting"),
    ("sweep-unknown-model", ["sweep", "lr", "0.1", "--model", "resnet81", *TINY], "did you mean"),
    ("sweep-nothing", ["sweep", *SWEEP], "nothing to sweep"),
    ("sweep-no-defaults", ["sweep", "grad-clip", *SWEEP], "no default values"),
    ("sweep-cache-under-file", ["sweep", "lr", "0.1", *SWEEP, "--cache-dir", "{file}/sub"], "is a file"),
    # every trial is checked before the first one trains, and the output folders before any work
    ("sweep-val-split-empty", ["sweep", "val-split", "0.1,0.9999", *SWEEP], "no training image"),
    ("sweep-figures-dir-file", ["sweep", "lr", "0.1", *SWEEP, "--figures-dir", "{file}"], "is a file"),
    (
        "sweep-figures-dir-under-file",
        ["sweep", "lr", "0.1", *SWEEP, "--figures-dir", "{file}/f"],
        "is a file",
    ),
    ("sweep-too-big", ["sweep", "width", "8,100000000", *SWEEP], "parameters"),
    ("sweep-too-big-fixed", ["sweep", "lr", "0.1", *SWEEP, "--set", "width=100000000"], "more than the"),
    ("sweep-name-empty", ["sweep", "lr", "0.1", *SWEEP, "--name", " "], "--name is empty"),
    ("sweep-name-taken", ["sweep", "lr", "0.1", *SWEEP, "--name", "{sweep}"], "holds another study"),
    # -- visualize-kernels
    ("kernels-unknown-run", ["visualize-kernels", "--run", "deadbeef"], "no cached run with key deadbeef"),
    ("kernels-no-target", ["visualize-kernels"], "--run"),
    (
        "kernels-unknown-layer",
        ["visualize-kernels", "--model", "cnn", "--untrained", "--layer", "nope"],
        "nope",
    ),
    ("kernels-bad-norm", ["visualize-kernels", "--model", "cnn", "--untrained", "--norm", "bogus"], "bogus"),
    (
        "kernels-out-under-file",
        ["visualize-kernels", "--model", "cnn", "--untrained", "--out", "{file}/sub/k.png"],
        "sub",
    ),
    # -- equivariance
    ("equi-unknown-layer", ["equivariance", "--layer", "nope", *EQ], "nope"),
    ("equi-unknown-transform", ["equivariance", "--transform", "bogus", *EQ], "bogus"),
    ("equi-bad-shift", ["equivariance", "--shift", "a,b", *EQ], "shift"),
    ("equi-even-kernel", ["equivariance", "--kernel-size", "4", *EQ], "odd"),
    ("equi-zero-images", ["equivariance", *EQ, "--images", "0"], "images"),
    ("equi-bad-padding", ["equivariance", "--padding", "reflect", *EQ], "padding"),
    ("equi-out-under-file", ["equivariance", *EQ, "--out", "{file}/x.png"], "is a file"),
    ("equi-out-folder", ["equivariance", *EQ, "--out", "{cache}"], "png"),
    (
        "kernels-out-file-parent",
        ["visualize-kernels", "--model", "cnn", "--untrained", "--out", "{file}/k.png"],
        "is a file",
    ),
    ("equi-unknown-run", ["equivariance", "--run", "deadbeef"], "no cached run with key deadbeef"),
    # -- report
    ("report-bad-format", ["report", "--format", "pdf"], "'pdf' is not one of"),
    ("report-unknown-sweep", ["report", "--sweep", "nope", "--out", "r.md"], "nope"),
    ("report-bad-since", ["report", "--since", "yesterday", "--out", "r.md"], "since"),
    ("report-out-under-file", ["report", "--out", "{file}/sub/r.md"], "sub"),
    ("report-out-pdf", ["report", "--out", "r.pdf"], ".md, .markdown, .html, .htm"),
    ("report-out-no-extension", ["report", "--out", "r"], "not 'no extension'"),
    ("report-out-dev-null", ["report", "--out", "/dev/null"], "not a regular file"),
    ("report-out-dev-stdout", ["report", "--out", "/dev/stdout"], "symlink"),
]


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def seeded_cache(tmp_path_factory) -> tuple[Path, str]:
    """A cache holding one finished tiny sweep (one run), shared read-only by every case."""
    from dlbench.cache import Store
    from dlbench.sweep.grid import plan_sweep
    from dlbench.sweep.inline import run_sweep

    root = tmp_path_factory.mktemp("seeded")
    plan = plan_sweep(
        "mlp",
        "shapes",
        [("lr", ["0.05"])],
        settings={"width": "8"},
        dataset_options={"train_size": "300", "test_size": "60"},
        options={"epochs": "1"},
    )
    store = Store(root / "cache")
    run_sweep(plan, store, data_dir=root / "data")
    return root / "cache", plan.trials[0].config.key, plan.name


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c[0]) for c in CASES],
)
def test_bad_invocation_is_one_line_and_changes_nothing(case, cli, seeded_cache, tmp_path, monkeypatch):
    _, argv, needle = case
    cache = tmp_path / "cache"
    shutil.copytree(seeded_cache[0], cache)
    monkeypatch.setenv("DLBENCH_HOME", str(cache))
    work = tmp_path / "work"
    work.mkdir()
    (work / "afile").write_text("not a folder")
    monkeypatch.chdir(work)
    data = tmp_path / "data"  # DLBENCH_DATA_DIR (conftest): nothing may be downloaded or made there either
    subs = {
        "{file}": str(work / "afile"),
        "{key}": seeded_cache[1],
        "{cache}": str(cache),
        "{sweep}": seeded_cache[2],
    }
    args = []
    for a in argv:
        for k, v in subs.items():
            a = a.replace(k, v)
        args.append(a)
    before, work_before, data_before = _snapshot(cache), _snapshot(work), data.exists()

    res = cli(*args)

    lines = res.err.strip().splitlines()
    assert res.code not in (0, None), res
    assert len(lines) == 1 and lines[0].startswith("error: "), res
    assert "Traceback" not in res.err and "internal error" not in res.err, res
    assert needle.lower() in lines[0].lower(), (needle, res)
    assert _snapshot(cache) == before, "the cache changed"
    assert _snapshot(work) == work_before, "files were written in the working folder"
    assert data.exists() == data_before, "the data folder was made"


def test_catalogue_is_large_and_covers_every_command():
    assert len(CASES) >= 40
    commands = {c[1][0] for c in CASES}
    assert {
        "models",
        "datasets",
        "count-params",
        "solve-depth",
        "train",
        "runs",
        "sweep",
        "visualize-kernels",
        "equivariance",
        "report",
    } <= commands


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_cache_folder_is_one_line(cli, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        res = cli("train", *MLP, *TINY, "--cache-dir", ro / "cache")
    finally:
        ro.chmod(0o755)
    lines = res.err.strip().splitlines()
    assert res.code == 2 and len(lines) == 1 and "cache folder" in lines[0], res
