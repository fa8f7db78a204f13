"""What a user waits for besides training: wall times of commands that train nothing, and of a short run.

Each command runs as a user runs it (`python -m dlbench ...` in a subprocess, so imports count), on a cache of its
own; the medians of ``--rounds`` rounds are printed, the variants alternating within each round, so a machine
that is busy for a moment does not fake a gain. ``--compare LABEL=SRC`` times another checkout's ``src`` folder
side by side (its ``PYTHONPATH``), e.g. the main branch before a change.

- ``hit``: `train` of a run the cache already holds (a small mlp on `shapes`), nothing trained;
- ``runs``: `runs` listing that one run;
- ``count``: `count-params resnet18`;
- ``short``: a short cnn run on Fashion-MNIST (5,000 training images, 2 epochs) from an empty cache, with its
  training seconds (the epochs' own time) beside its wall time, and ``short_ratio``, wall time over training time
  (the median of each round's ratio);
- ``long`` (with ``--long-epochs N``): the same run for N epochs, ``long_training`` and ``long_ratio`` likewise:
  the fixed costs are paid once, so the ratio falls as the training grows.

    python benchmarks/fixed_costs.py --data /work/shared/data
    python benchmarks/fixed_costs.py --data /work/shared/data --compare before=/path/to/other/src --rounds 3
    python benchmarks/fixed_costs.py --data /work/shared/data --phases   # where the short run's time goes

``--phases`` runs the short run once per source in one process whose phases are timed (wall clock, no
profiler): imports, the checks, reading the data, counting, the splits, the optimizer, the initial
validation, the epochs, the per-epoch validation, the test pass, storing the run, and the rest.

The data folder is a writable copy of ``--data``'s ``fashion-mnist/``, as a user's own is: the first load writes
the decoded copy ``fashion-mnist/dlbench-decoded/`` and later loads read it (``--phases`` writes it before
timing, so its "reading" row is what every run after the first pays; a source without the copy decodes the
``.gz`` files as before).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "src"
HIT = ["train", "--model", "mlp", "--dataset", "shapes", "--set", "width=32", "--epochs", "1"]
HIT += ["--dataset-opt", "train_size=500", "--dataset-opt", "test_size=100", "--format", "json"]
SHORT = ["train", "--model", "cnn", "--dataset", "fashion-mnist", "--train-subset", "5000", "--epochs", "2"]
SHORT += ["--format", "json"]


def run(src: Path, args: list[str], home: Path, data: Path) -> tuple[float, str]:
    """(wall seconds, stdout) of `python -m dlbench ARGS` with ``src`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(src), "DLBENCH_HOME": str(home), "DLBENCH_DATA_DIR": str(data)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dlbench", *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"dlbench {' '.join(args)} failed ({src}):\n{done.stderr[-2000:]}")
    return wall, done.stdout


PHASES = r"""
import json, sys, time
start = time.perf_counter()
spent, evals = {}, []
def timed(owner, name, label):
    f = getattr(owner, name, None)
    if f is None:
        return
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            d = time.perf_counter() - t
            evals.append(d) if label == "eval" else spent.__setitem__(label, spent.get(label, 0.0) + d)
    setattr(owner, name, wrapper)
from dlbench.cli import main
import torch
spent["imports: python, dlbench.cli, torch"] = time.perf_counter() - start
import dlbench.data.torchvision_sets as tvs, dlbench.engine.trainer as tr, dlbench.engine.loop as lp
import dlbench.sweep.checks as checks
from dlbench.cache.store import Store
timed(checks, "check_trial", "checks (model on meta, memory)")
timed(tvs, "load_set", "reading Fashion-MNIST")
timed(tr, "model_counts", "params and MACs")
timed(tr, "_device_data", "splits and device data")
timed(tr, "make_optimizer", "optimizer (imports torch._dynamo)")
timed(lp.EpochLoop, "train_epoch", "training epochs")
timed(lp.ClassifierStep, "evaluate", "eval")
timed(Store, "save", "storing the run (Parquet, weights)")
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
spent["initial validation"] = evals[0]
spent["validation after each epoch"] = sum(evals[1:-1])
spent["test pass with predictions"] = evals[-1]
total = time.perf_counter() - start
spent["the rest (CLI, output, cache checks)"] = total - sum(spent.values())
spent["total in the process"] = total
print(json.dumps(spent), file=sys.stderr)
"""


def phases(src: Path, home: Path, data: Path) -> dict[str, float]:
    """Seconds per phase of the short run, timed inside one `dlbench` process (see ``PHASES``)."""
    env = {**os.environ, "PYTHONPATH": str(src), "DLBENCH_HOME": str(home), "DLBENCH_DATA_DIR": str(data)}
    done = subprocess.run([sys.executable, "-c", PHASES, *SHORT], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the timed short run failed ({src}):\n{done.stderr[-2000:]}")
    return json.loads(done.stderr.strip().splitlines()[-1])


def write_decoded_copy(data: Path) -> None:
    """Load Fashion-MNIST once with this checkout, which leaves its decoded copy in the data folder."""
    code = "import sys; from dlbench.data import get_dataset; get_dataset('fashion-mnist').load(sys.argv[1])"
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    subprocess.run([sys.executable, "-c", code, str(data)], env=env, check=True)


def print_phases(sources: dict[str, Path], work: Path, data: Path) -> None:
    spent = {name: phases(src, work / f"{name}-phases", data) for name, src in sources.items()}
    print(f"the short run's phases, seconds (load average {os.getloadavg()[0]:.1f} at the end)")
    print(f"{'phase':40}" + "".join(f"{name:>12}" for name in spent))
    for phase in next(iter(spent.values())):
        print(f"{phase:40}" + "".join(f"{s.get(phase, float('nan')):12.2f}" for s in spent.values()))


def training_seconds(home: Path, key: str) -> float:
    """The epochs' own seconds of run ``key`` (what the engine timed as training)."""
    import pandas as pd

    return float(pd.read_parquet(home / "epochs" / f"{key}.parquet")["seconds"].sum())


def one_round(
    label: str, src: Path, work: Path, data: Path, short: bool, long_epochs: int
) -> dict[str, float]:
    home = work / f"{label}-cache"
    times = {}
    run(src, HIT, home, work / "shapes-data")  # trained once: the next one is a cache hit
    times["hit"] = run(src, HIT, home, work / "shapes-data")[0]
    times["runs"] = run(src, ["runs"], home, work / "shapes-data")[0]
    times["count"] = run(src, ["count-params", "resnet18"], home, work / "shapes-data")[0]
    runs = {"short": SHORT} if short else {}
    if short and long_epochs:
        runs["long"] = (
            SHORT[: SHORT.index("--epochs") + 1] + [str(long_epochs)] + SHORT[SHORT.index("--epochs") + 2 :]
        )
    for name, args in runs.items():
        fresh = work / f"{label}-{name}"
        shutil.rmtree(fresh, ignore_errors=True)
        wall, out = run(src, args, fresh, data)
        times[name] = wall
        times[f"{name}_training"] = training_seconds(fresh, json.loads(out)["key"])
        times[f"{name}_ratio"] = wall / times[f"{name}_training"]
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="a folder holding fashion-mnist/ (no --data: no short run)")
    p.add_argument("--compare", action="append", default=[], help="LABEL=SRC: another checkout's src folder")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--phases", action="store_true", help="time the short run's phases (needs --data)")
    p.add_argument("--long-epochs", type=int, default=0, help="also the short run for this many epochs")
    a = p.parse_args()
    sources = {"this": HERE} | {c.split("=", 1)[0]: Path(c.split("=", 1)[1]) for c in a.compare}
    results: dict[str, dict[str, list[float]]] = {name: {} for name in sources}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        if a.data:
            shutil.copytree(a.data / "fashion-mnist", data / "fashion-mnist")
            (data / "fashion-mnist").chmod(0o755)  # writable, like a user's own (copytree kept the mode)
        if a.phases and a.data:
            write_decoded_copy(data)
            return print_phases(sources, work, data)
        for _ in range(a.rounds):
            for name, src in sources.items():
                for k, v in one_round(name, src, work, data, a.data is not None, a.long_epochs).items():
                    results[name].setdefault(k, []).append(v)
    load = os.getloadavg()[0]
    print(
        f"medians of {a.rounds} round(s), {os.cpu_count()} cores, load average {load:.1f} at the end; seconds"
    )
    cols = ["hit", "runs", "count"] + (["short", "short_training", "short_ratio"] if a.data else [])
    if a.data and a.long_epochs:
        cols += ["long", "long_training", "long_ratio"]
    print(f"{'source':10}" + "".join(f"{c:>16}" for c in cols))
    for name, res in results.items():
        print(f"{name:10}" + "".join(f"{statistics.median(res[c]):16.2f}" for c in cols))


if __name__ == "__main__":
    main()
