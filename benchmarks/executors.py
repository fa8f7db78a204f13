"""Wall time of one sweep run inline against the same sweep on local worker processes, side by side in one run.

Each variant trains the same trials from an empty cache in a subprocess (`dlbench sweep ... --no-figures`), so
imports and worker start-up are counted as a user pays them. The variants alternate over ``--rounds`` rounds and
the median is reported, so a machine that is busy in one moment does not fake a gain.

    python benchmarks/executors.py                      # 4 cnn trials on `shapes`, inline vs --jobs 2
    python benchmarks/executors.py --jobs 2 4 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP = ["sweep", "lr", "0.05,0.02,0.01,0.005", "--model", "cnn", "--dataset", "shapes"]
SWEEP += [
    "--dataset-opt",
    "train_size=4000",
    "--dataset-opt",
    "test_size=1000",
    "--epochs",
    "2",
    "--no-figures",
]


def timed(args: list[str], root: Path, data: Path) -> float:
    env = {**os.environ, "DLBENCH_HOME": str(root), "DLBENCH_DATA_DIR": str(data)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dlbench", *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[2])
    parser.add_argument("--rounds", type=int, default=1)
    a = parser.parse_args()
    variants = {"inline": []} | {f"--jobs {j}": ["--executor", "local", "--jobs", str(j)] for j in a.jobs}
    seconds: dict[str, list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        timed([*SWEEP[:2], "0.05", *SWEEP[3:], "--epochs", "1"], Path(tmp) / "warm", data)  # the shapes file
        for r in range(a.rounds):
            for name, extra in variants.items():
                seconds[name].append(timed([*SWEEP, *extra], Path(tmp) / f"{r}-{name}", data))
    base = statistics.median(seconds["inline"])
    print(f"{len(SWEEP[2].split(','))} trials, {os.cpu_count()} cores, median of {a.rounds} round(s)")
    for name, values in seconds.items():
        med = statistics.median(values)
        print(f"{name:>10}: {med:6.1f} s   speed-up over inline {base / med:4.2f}x")


if __name__ == "__main__":
    main()
