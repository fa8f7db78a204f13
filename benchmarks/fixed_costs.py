"""What a user waits for besides training: wall times of commands that train nothing, and of a short run.

Each command runs as a user runs it (`python -m dlbench ...` in a subprocess, so imports count), on a cache of its
own; the medians of ``--rounds`` rounds are printed, the variants alternating within each round, so a machine
that is busy for a moment does not fake a gain. ``--compare LABEL=SRC`` times another checkout's ``src`` folder
side by side (its ``PYTHONPATH``), e.g. the main branch before a change.

- ``hit``: `train` of a run the cache already holds (a small mlp on `shapes`), nothing trained;
- ``runs``: `runs` listing that one run;
- ``count``: `count-params resnet18`;
- ``short``: a short cnn run on Fashion-MNIST (5,000 training images, 2 epochs) from an empty cache, with its
  training seconds (the epochs' own time) beside its wall time.

    python benchmarks/fixed_costs.py --data /work/shared/data
    python benchmarks/fixed_costs.py --data /work/shared/data --compare before=/path/to/other/src --rounds 3
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


def training_seconds(home: Path, key: str) -> float:
    """The epochs' own seconds of run ``key`` (what the engine timed as training)."""
    import pandas as pd

    return float(pd.read_parquet(home / "epochs" / f"{key}.parquet")["seconds"].sum())


def one_round(label: str, src: Path, work: Path, data: Path, short: bool) -> dict[str, float]:
    home = work / f"{label}-cache"
    times = {}
    run(src, HIT, home, work / "shapes-data")  # trained once: the next one is a cache hit
    times["hit"] = run(src, HIT, home, work / "shapes-data")[0]
    times["runs"] = run(src, ["runs"], home, work / "shapes-data")[0]
    times["count"] = run(src, ["count-params", "resnet18"], home, work / "shapes-data")[0]
    if short:
        fresh = work / f"{label}-short"
        shutil.rmtree(fresh, ignore_errors=True)
        wall, out = run(src, SHORT, fresh, data)
        times["short"] = wall
        times["short_training"] = training_seconds(fresh, json.loads(out)["key"])
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="a folder holding fashion-mnist/ (no --data: no short run)")
    p.add_argument("--compare", action="append", default=[], help="LABEL=SRC: another checkout's src folder")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    sources = {"this": HERE} | {c.split("=", 1)[0]: Path(c.split("=", 1)[1]) for c in a.compare}
    results: dict[str, dict[str, list[float]]] = {name: {} for name in sources}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        if a.data:
            shutil.copytree(a.data / "fashion-mnist", data / "fashion-mnist")  # writable, like a user's own
        for _ in range(a.rounds):
            for name, src in sources.items():
                for k, v in one_round(name, src, work, data, a.data is not None).items():
                    results[name].setdefault(k, []).append(v)
    print(f"medians of {a.rounds} round(s), {os.cpu_count()} cores; seconds")
    cols = ["hit", "runs", "count"] + (["short", "short_training"] if a.data else [])
    print(f"{'source':10}" + "".join(f"{c:>16}" for c in cols))
    for name, res in results.items():
        print(f"{name:10}" + "".join(f"{statistics.median(res[c]):16.2f}" for c in cols))


if __name__ == "__main__":
    main()
